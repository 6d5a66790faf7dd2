"""The app checks the audit trail at start and warns (blocking) when it is broken (issue 14)."""

from __future__ import annotations

import sqlite3

from sigverify.gui.app import audit_warning
from sigverify.store.library import Library


def test_intact_trail_gives_no_warning(tmp_path):
    db = tmp_path / "lib.sqlite"
    with Library(db):
        pass
    assert audit_warning(None, interactive=False, db_path=db) is None


def test_dropped_trigger_is_named_at_start(tmp_path):
    db = tmp_path / "lib.sqlite"
    with Library(db):
        pass
    con = sqlite3.connect(db)
    trig = [r[0] for r in con.execute("select name from sqlite_master where type='trigger'")]
    assert trig
    for t in trig:
        con.execute(f'drop trigger "{t}"')
    con.commit()
    con.close()
    text = audit_warning(None, interactive=False, db_path=db)
    assert text and "integrity" in text
