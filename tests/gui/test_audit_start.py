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


def test_the_start_up_warning_is_readable_and_answered_from_the_keyboard(qtbot, tmp_path):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    from sigverify.gui.app import audit_warning_box

    box = audit_warning_box(None, "The audit trail of the library failed its integrity check: record #1 changed")
    qtbot.addWidget(box)
    box.show()
    qtbot.waitExposed(box)
    ok = box.button(QMessageBox.StandardButton.Ok)
    assert box.defaultButton() is ok and box.escapeButton() is ok
    assert "record #1" in box.text() and box.icon() == QMessageBox.Icon.Critical
    with qtbot.waitSignal(box.finished, timeout=5000):
        qtbot.keyClick(box, Qt.Key.Key_Return)  # Enter answers it: no mouse needed
    assert box.clickedButton() is ok and not box.isVisible()
