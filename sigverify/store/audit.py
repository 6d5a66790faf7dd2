"""Append-only audit trail of verifications and the clerk's decisions (sqlite3, no Qt).

Two tables live in the library database:

- ``audit_verifications``: one row per verification (who, when, which customer, which questioned file
  and its SHA-256, which model and weights, distances, score, verdict, where it came from).
- ``audit_decisions``: the clerk's final decision (accept / refer / reject, optional reason) as a
  *separate appended row* referencing the verification, so no row ever needs to change.

Append-only is enforced by SQLite itself: ``BEFORE UPDATE`` and ``BEFORE DELETE`` triggers on both
tables ``RAISE(ABORT)`` (and a ``BEFORE INSERT`` trigger refuses ``INSERT OR REPLACE`` of an existing id,
which would otherwise delete the old row without firing the delete trigger), so even a raw ``sqlite3`` session cannot change or remove a record without
first dropping the triggers (which a periodic ``verify_append_only`` check reports). This module has
no update or delete API at all. Every append runs in its own transaction on a WAL database with
``synchronous=FULL``: a process killed mid-write leaves either the whole record or none of it.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import sqlite3
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from sigverify.errors import SigverifyError
from sigverify.hashing import sha256_bytes, sha256_file

DECISIONS = ("accept", "refer", "reject")
#: the clerk decision that agrees with each verdict zone (anything else is an override)
VERDICT_DECISION = {"genuine": "accept", "refer": "refer", "forgery": "reject"}
SOURCES = ("gui", "cli", "batch", "api")

AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_verifications (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    time_utc          TEXT NOT NULL,
    operator          TEXT NOT NULL,
    source            TEXT NOT NULL,
    customer_id       TEXT,
    questioned_name   TEXT NOT NULL,
    questioned_sha256 TEXT NOT NULL,
    model_id          TEXT NOT NULL,
    weights_sha256    TEXT NOT NULL,
    metric            TEXT NOT NULL,
    distances         TEXT NOT NULL,
    distance          REAL NOT NULL,
    score             REAL NOT NULL,
    verdict           TEXT NOT NULL,
    threshold_accept  REAL,
    threshold_reject  REAL,
    reference_ids     TEXT NOT NULL DEFAULT '[]',
    details           TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_verifications_customer ON audit_verifications(customer_id, id);
CREATE TABLE IF NOT EXISTS audit_decisions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    verification_id  INTEGER NOT NULL REFERENCES audit_verifications(id),
    time_utc         TEXT NOT NULL,
    operator         TEXT NOT NULL,
    source           TEXT NOT NULL,
    decision         TEXT NOT NULL CHECK (decision IN ('accept', 'refer', 'reject')),
    overrides_verdict INTEGER NOT NULL,
    reason           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_decisions_verification ON audit_decisions(verification_id, id);
CREATE TRIGGER IF NOT EXISTS audit_verifications_no_update BEFORE UPDATE ON audit_verifications
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS audit_verifications_no_delete BEFORE DELETE ON audit_verifications
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS audit_decisions_no_update BEFORE UPDATE ON audit_decisions
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS audit_decisions_no_delete BEFORE DELETE ON audit_decisions
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be deleted'); END;
-- INSERT OR REPLACE deletes the old row without firing DELETE triggers: refuse any reuse of an id
CREATE TRIGGER IF NOT EXISTS audit_verifications_no_replace BEFORE INSERT ON audit_verifications
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_verifications WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be replaced'); END;
CREATE TRIGGER IF NOT EXISTS audit_decisions_no_replace BEFORE INSERT ON audit_decisions
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_decisions WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be replaced'); END;
"""

APPEND_ONLY_TRIGGERS = ("audit_verifications_no_update", "audit_verifications_no_delete",
                        "audit_verifications_no_replace", "audit_decisions_no_update", "audit_decisions_no_delete",
                        "audit_decisions_no_replace")

CSV_COLUMNS = ["verification_id", "time_utc", "operator", "source", "customer_id", "questioned_name",
               "questioned_sha256", "model_id", "weights_sha256", "metric", "distances", "distance", "score",
               "verdict", "threshold_accept", "threshold_reject", "reference_ids", "decision", "decision_source",
               "decision_operator", "decision_time_utc", "overrides_verdict", "reason"]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_operator() -> str:
    """``SIGVERIFY_OPERATOR`` if set (the GUI sets it from its settings), else the OS user name."""
    env = os.environ.get("SIGVERIFY_OPERATOR", "").strip()
    if env:
        return env
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (some service accounts)
        return "unknown"


@dataclass
class Decision:
    id: int
    verification_id: int
    time_utc: str
    operator: str
    source: str
    decision: str
    overrides_verdict: bool
    reason: str


@dataclass
class AuditRecord:
    """One verification and every decision appended for it (latest last)."""

    id: int
    time_utc: str
    operator: str
    source: str
    customer_id: str | None
    questioned_name: str
    questioned_sha256: str
    model_id: str
    weights_sha256: str
    metric: str
    distances: list[float]
    distance: float
    score: float
    verdict: str
    threshold_accept: float | None
    threshold_reject: float | None
    reference_ids: list[int]
    details: dict
    decisions: list[Decision] = field(default_factory=list)

    @property
    def final_decision(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None

    def to_dict(self) -> dict:
        d = asdict(self)
        fd = self.final_decision
        d["final_decision"] = None if fd is None else fd.decision
        return d

    def csv_row(self) -> dict:
        fd = self.final_decision
        return {"verification_id": self.id, "time_utc": self.time_utc, "operator": self.operator,
                "source": self.source, "customer_id": self.customer_id or "", "questioned_name": self.questioned_name,
                "questioned_sha256": self.questioned_sha256, "model_id": self.model_id,
                "weights_sha256": self.weights_sha256, "metric": self.metric,
                "distances": " ".join(f"{x:.6f}" for x in self.distances), "distance": f"{self.distance:.6f}",
                "score": f"{self.score:.2f}", "verdict": self.verdict,
                "threshold_accept": "" if self.threshold_accept is None else f"{self.threshold_accept:.6f}",
                "threshold_reject": "" if self.threshold_reject is None else f"{self.threshold_reject:.6f}",
                "reference_ids": " ".join(map(str, self.reference_ids)),
                "decision": fd.decision if fd else "", "decision_source": fd.source if fd else "",
                "decision_operator": fd.operator if fd else "", "decision_time_utc": fd.time_utc if fd else "",
                "overrides_verdict": ("yes" if fd.overrides_verdict else "no") if fd else "",
                "reason": fd.reason if fd else ""}


@dataclass
class VerificationEntry:
    """What ``AuditLog.append_verification`` stores (built by ``entry_from_result`` or by hand)."""

    questioned_name: str
    questioned_sha256: str
    model_id: str
    weights_sha256: str
    metric: str
    distances: Sequence[float]
    distance: float
    score: float
    verdict: str
    customer_id: str | None = None
    threshold_accept: float | None = None
    threshold_reject: float | None = None
    reference_ids: Sequence[int] = ()
    details: dict = field(default_factory=dict)


def entry_from_decision(decision, questioned_name: str, questioned_sha256: str, verifier,
                        customer_id: str | None = None, reference_ids: Sequence[int] = (),
                        details: dict | None = None) -> VerificationEntry:
    """Build an entry from a core ``ReferenceDecision`` and the ``Verifier`` that produced it."""
    v = decision.verdict
    det = {"aggregate": decision.aggregate, "min_distance": decision.min_distance,
           "mean_distance": decision.mean_distance, "reference_spread": decision.ref_spread,
           "person_threshold_scale": decision.person_scale, "warnings": list(decision.warnings),
           "random_weights": bool(verifier.card.random_init)}
    det.update(details or {})
    return VerificationEntry(questioned_name=questioned_name, questioned_sha256=questioned_sha256,
                             model_id=verifier.model.model_id, weights_sha256=verifier.card.weights_sha256 or "",
                             metric=verifier.metric, distances=list(decision.distances), distance=v.distance,
                             score=v.score, verdict=v.zone, customer_id=customer_id, threshold_accept=v.accept,
                             threshold_reject=v.reject, reference_ids=list(reference_ids), details=det)


def questioned_identity(sig) -> tuple[str, str]:
    """(file name, SHA-256) of a questioned ``Signature``: the file's bytes when it is a file, else
    the bytes of its original (or network input) image, marked ``array:``."""
    src = str(getattr(sig, "source", "") or "")
    if src and os.path.isfile(src):
        return os.path.basename(src), sha256_file(src)
    pre = getattr(sig, "preprocessed", None)
    arr = None
    if pre is not None:
        arr = pre.stages.get("original") if getattr(pre, "stages", None) else None
        if arr is None:
            arr = pre.input
    data = b"" if arr is None else arr.tobytes()
    return (os.path.basename(src) or "image"), "array:" + sha256_bytes(data)


class AuditLog:
    """Append-only access to the audit tables of a library database.

    ``conn`` is an open ``sqlite3.Connection`` (WAL, synchronous=FULL) and ``lock`` the lock that
    guards it; ``Library.audit`` hands out one sharing the library's connection.
    """

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock | None = None, operator: str | None = None):
        self._conn = conn
        self._lock = lock or threading.RLock()
        self.operator = operator or default_operator()

    @staticmethod
    def ensure_schema(conn: sqlite3.Connection) -> None:
        conn.executescript(AUDIT_SCHEMA)

    # ---- append ---------------------------------------------------------------------------------
    def append_verification(self, entry: VerificationEntry, source: str = "gui", operator: str | None = None) -> int:
        return self.append_many([entry], source, operator)[0]

    def append_many(self, entries: Iterable[VerificationEntry], source: str = "gui",
                    operator: str | None = None, decide_automatically: bool = False) -> list[int]:
        """Append verifications in one transaction (all or nothing). With ``decide_automatically``
        each also gets a decision row equal to its verdict, with ``source`` as the decision source
        (batch runs: nobody looked at them)."""
        if source not in SOURCES:
            raise SigverifyError(f"audit source must be one of {', '.join(SOURCES)}")
        op = operator or self.operator
        ids: list[int] = []
        with self._lock:
            with self._conn:  # one transaction; rolled back on any error
                for e in entries:
                    t = utc_now()
                    cur = self._conn.execute(
                        "INSERT INTO audit_verifications (time_utc, operator, source, customer_id, questioned_name,"
                        " questioned_sha256, model_id, weights_sha256, metric, distances, distance, score, verdict,"
                        " threshold_accept, threshold_reject, reference_ids, details)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (t, op, source, e.customer_id, e.questioned_name, e.questioned_sha256, e.model_id,
                         e.weights_sha256, e.metric, json.dumps([float(x) for x in e.distances]), float(e.distance),
                         float(e.score), e.verdict, _opt_float(e.threshold_accept), _opt_float(e.threshold_reject),
                         json.dumps([int(x) for x in e.reference_ids]), json.dumps(e.details, default=str)))
                    vid = int(cur.lastrowid)
                    ids.append(vid)
                    if decide_automatically:
                        self._conn.execute(
                            "INSERT INTO audit_decisions (verification_id, time_utc, operator, source, decision,"
                            " overrides_verdict, reason) VALUES (?,?,?,?,?,0,'')",
                            (vid, t, op, source, VERDICT_DECISION.get(e.verdict, "refer")))
        return ids

    def append_decision(self, verification_id: int, decision: str, reason: str = "",
                        operator: str | None = None, source: str = "clerk") -> int:
        """Append the clerk's final decision for a verification. A decision that differs from the
        verdict is flagged as an override (a reason is recommended there but not required)."""
        decision = (decision or "").strip().lower()
        if decision not in DECISIONS:
            raise SigverifyError(f"decision must be one of {', '.join(DECISIONS)} (got {decision!r})")
        with self._lock:
            row = self._conn.execute("SELECT verdict FROM audit_verifications WHERE id = ?",
                                     (int(verification_id),)).fetchone()
            if row is None:
                raise SigverifyError(f"no verification #{verification_id} in the audit log")
            overrides = int(VERDICT_DECISION.get(row[0]) != decision)
            with self._conn:
                cur = self._conn.execute(
                    "INSERT INTO audit_decisions (verification_id, time_utc, operator, source, decision,"
                    " overrides_verdict, reason) VALUES (?,?,?,?,?,?,?)",
                    (int(verification_id), utc_now(), operator or self.operator, source, decision, overrides,
                     (reason or "").strip()))
                return int(cur.lastrowid)

    # ---- read -----------------------------------------------------------------------------------
    def records(self, customer_id: str | None = None, limit: int | None = None,
                newest_first: bool = False) -> list[AuditRecord]:
        q = "SELECT * FROM audit_verifications"
        args: list = []
        if customer_id is not None:
            q += " WHERE customer_id = ?"
            args.append(customer_id)
        q += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit:
            q += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            rows = self._conn.execute(q, args).fetchall()
            ids = [r["id"] for r in rows]
            decs: dict[int, list[Decision]] = {i: [] for i in ids}
            if ids:
                # chunked IN lists keep under SQLite's variable limit
                for k in range(0, len(ids), 500):
                    part = ids[k:k + 500]
                    for d in self._conn.execute(
                            f"SELECT * FROM audit_decisions WHERE verification_id IN ({','.join('?' * len(part))})"
                            " ORDER BY id", part):
                        decs[d["verification_id"]].append(Decision(
                            d["id"], d["verification_id"], d["time_utc"], d["operator"], d["source"], d["decision"],
                            bool(d["overrides_verdict"]), d["reason"]))
        return [AuditRecord(r["id"], r["time_utc"], r["operator"], r["source"], r["customer_id"], r["questioned_name"],
                            r["questioned_sha256"], r["model_id"], r["weights_sha256"], r["metric"],
                            json.loads(r["distances"]), r["distance"], r["score"], r["verdict"], r["threshold_accept"],
                            r["threshold_reject"], json.loads(r["reference_ids"]), json.loads(r["details"]),
                            decs.get(r["id"], [])) for r in rows]

    def history(self, customer_id: str, limit: int | None = None) -> list[AuditRecord]:
        """A customer's verifications, newest first."""
        return self.records(customer_id, limit, newest_first=True)

    def get(self, verification_id: int) -> AuditRecord | None:
        with self._lock:
            r = self._conn.execute("SELECT customer_id FROM audit_verifications WHERE id = ?",
                                   (int(verification_id),)).fetchone()
        if r is None:
            return None
        return next((x for x in self.records(r[0]) if x.id == int(verification_id)), None)

    def count(self) -> tuple[int, int]:
        with self._lock:
            v = self._conn.execute("SELECT COUNT(*) FROM audit_verifications").fetchone()[0]
            d = self._conn.execute("SELECT COUNT(*) FROM audit_decisions").fetchone()[0]
        return int(v), int(d)

    def verify_append_only(self) -> list[str]:
        """Names of append-only triggers that are missing (empty list = protection intact)."""
        with self._lock:
            have = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        return [t for t in APPEND_ONLY_TRIGGERS if t not in have]

    # ---- export ---------------------------------------------------------------------------------
    def to_csv_text(self, customer_id: str | None = None, records: list[AuditRecord] | None = None) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        for rec in self.records(customer_id) if records is None else records:
            w.writerow(rec.csv_row())
        return buf.getvalue()

    def export_csv(self, path: str | os.PathLike, customer_id: str | None = None) -> int:
        """Write the log (or one customer's part) as CSV, atomically. Returns the number of records."""
        from sigverify.atomic import write_text_atomic

        recs = self.records(customer_id)
        write_text_atomic(Path(path), self.to_csv_text(records=recs))
        return len(recs)


def _opt_float(x) -> float | None:
    return None if x is None else float(x)


__all__ = ["AuditLog", "AuditRecord", "Decision", "VerificationEntry", "entry_from_decision", "questioned_identity",
           "default_operator", "sha256_bytes", "sha256_file", "DECISIONS", "VERDICT_DECISION", "utc_now"]
