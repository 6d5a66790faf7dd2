"""Audit notes of verdict-changing settings (sigverify/app/settings_audit.py): chained like every record,
never a case to decide, refused on a broken trail."""

from __future__ import annotations

import sqlite3

import pytest

from sigverify.app.referrals import ReferralQueue
from sigverify.app.settings_audit import SettingChange, describe, is_setting_note, note_setting_change, setting_notes
from sigverify.errors import AuditIntegrityError
from sigverify.store.audit import VerificationEntry
from sigverify.store.library import Library


def _verification(lib, verdict="forgery"):
    e = VerificationEntry("q.png", "ab" * 32, "m", "w", "euclidean", [0.9], 0.9, 3.0, verdict, customer_id=None)
    return lib.audit.append_verification(e, "gui", "clerk1")


def test_a_note_is_chained_named_and_not_a_case(tmp_path):
    lib = Library(tmp_path / "lib.sqlite3")
    try:
        case_id = _verification(lib)
        nid = note_setting_change(
            lib.audit,
            SettingChange("metric", "use the cosine distance", "euclidean", "cosine", case_audit_id=case_id),
            model_id="sigverify-base",
            metric="euclidean",
            operator="sup1",
        )
        assert nid > case_id
        rec = lib.audit.get(nid)
        assert is_setting_note(rec) and not is_setting_note(lib.audit.get(case_id))
        assert rec.operator == "sup1" and rec.verdict == "note" and rec.decisions == []
        assert rec.details["setting"] == "metric" and rec.details["new"] == "cosine"
        assert rec.details["case_on_screen"] == case_id
        assert "metric: use the cosine distance (case #" in describe(rec)
        assert [r.id for r in setting_notes(lib.audit)] == [nid]
        assert lib.audit.verify_chain().ok  # the note is part of the hash chain
        # the referral queue lists the verification, never the note
        ids = [c.record.id for c in ReferralQueue(lib).cases()]
        assert case_id in ids and nid not in ids
    finally:
        lib.close()


def test_a_tampered_note_breaks_the_chain(tmp_path):
    db = tmp_path / "lib.sqlite3"
    lib = Library(db)
    try:
        nid = note_setting_change(lib.audit, SettingChange("active_model", "switch to mine.safetensors"))
    finally:
        lib.close()
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER audit_verifications_no_update")
    con.execute("UPDATE audit_verifications SET details = '{}' WHERE id = ?", (nid,))
    con.commit()
    con.close()
    lib = Library(db)
    try:
        assert not lib.audit.verify_chain().ok
        with pytest.raises(AuditIntegrityError):  # a broken trail takes no note either
            note_setting_change(lib.audit, SettingChange("metric", "use the cosine distance"))
    finally:
        lib.close()
