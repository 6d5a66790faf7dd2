"""Audit notes for settings that change a verdict (Qt-free).

A supervisor's change of the model, the distance metric, the per-person thresholds or the threshold
policy changes what the next verification says. The operator event log already records it
(``sigverify.app.operators.record_setting_change``); this module also puts a **note into the audit
trail**, so whoever reads the hash-chained trail sees, between the records, when and by whom the
verdict rules changed and which case was on screen.

The audit log (``sigverify.store.audit``) has no note kind of its own and its chain format stays as it
is: a note is appended through the public ``AuditLog.append_verification`` as a record marked
``details["kind"] == "setting_note"`` with verdict ``"note"``, no distances and no decision. It is
chained, tamper-evident and append-only like every record; ``is_setting_note`` tells readers (the
referral queue, the history) to show it as a note and never as a case to decide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sigverify.hashing import sha256_bytes
from sigverify.store.audit import AuditLog, AuditRecord, VerificationEntry

NOTE_KIND = "setting_note"
NOTE_VERDICT = "note"
NOTE_NAME = "(setting changed)"


@dataclass
class SettingChange:
    """One verdict-changing setting change, as noted in the audit trail."""

    key: str  # a ``sigverify.app.operators.VERDICT_SETTINGS`` key, e.g. "metric"
    change: str  # in words, e.g. "use the cosine distance"
    old: object = None
    new: object = None
    confirmed: bool = True  # the operator confirmed it with a case on screen (or no case was on screen)
    case_audit_id: int | None = None  # the recorded case on screen when the setting changed
    customer_id: str | None = None


def note_setting_change(
    audit: AuditLog,
    change: SettingChange,
    *,
    model_id: str = "",
    weights_sha256: str = "",
    metric: str = "",
    operator: str | None = None,
    source: str = "gui",
) -> int:
    """Append the audit note for ``change``; returns its record id. Raises what the audit log raises
    (``AuditIntegrityError`` on a broken trail: nothing is written then)."""
    details = {
        "kind": NOTE_KIND,
        "setting": change.key,
        "change": change.change,
        "old": change.old,
        "new": change.new,
        "confirmed": bool(change.confirmed),
    }
    if change.case_audit_id is not None:
        details["case_on_screen"] = int(change.case_audit_id)
    payload = json.dumps(details, sort_keys=True, default=str).encode("utf-8")
    entry = VerificationEntry(
        questioned_name=NOTE_NAME,
        questioned_sha256="note:" + sha256_bytes(payload),
        model_id=model_id or "-",
        weights_sha256=weights_sha256 or "",
        metric=metric or "-",
        distances=[],
        distance=0.0,
        score=0.0,
        verdict=NOTE_VERDICT,
        customer_id=change.customer_id,
        details=details,
    )
    return audit.append_verification(entry, source, operator)


def is_setting_note(record: AuditRecord) -> bool:
    """True for a note written by ``note_setting_change`` (not a verification, nothing to decide)."""
    return (record.details or {}).get("kind") == NOTE_KIND


def setting_notes(audit: AuditLog, customer_id: str | None = None) -> list[AuditRecord]:
    """The setting notes in the trail, oldest first (``customer_id``: those made on that customer's case)."""
    return [r for r in audit.records(customer_id) if is_setting_note(r)]


def describe(record: AuditRecord) -> str:
    """One line for a note: "2026-12-02T10:12:55Z root: metric: use the cosine distance (case #3 on screen)"."""
    d = record.details or {}
    where = f" (case #{d['case_on_screen']} on screen)" if d.get("case_on_screen") is not None else ""
    return f"{record.time_utc} {record.operator}: {d.get('setting', '?')}: {d.get('change', '')}{where}"


__all__ = [
    "SettingChange",
    "note_setting_change",
    "is_setting_note",
    "setting_notes",
    "describe",
    "NOTE_KIND",
    "NOTE_VERDICT",
]
