"""Append-only audit trail of verifications and the clerk's decisions (sqlite3, no Qt).

Two tables live in the library database:

- ``audit_verifications``: one row per verification (who, when, which customer, which questioned file
  and its SHA-256, which model and weights, distances, score, verdict, where it came from).
- ``audit_decisions``: the clerk's final decision (accept / refer / reject, optional reason) as a
  *separate appended row* referencing the verification, so no row ever needs to change.

Append-only is enforced by SQLite itself: ``BEFORE UPDATE`` and ``BEFORE DELETE`` triggers on both
tables ``RAISE(ABORT)`` (and a ``BEFORE INSERT`` trigger refuses ``INSERT OR REPLACE`` of an existing id,
which would otherwise delete the old row without firing the delete trigger), so even a raw ``sqlite3`` session cannot
change or remove a record without
first dropping the triggers (which a periodic ``verify_append_only`` check reports). This module has
no update or delete API at all. Every append runs in its own transaction on a WAL database with
``synchronous=FULL``: a process killed mid-write leaves either the whole record or none of it.

Tamper evidence (issue 14): every record (verification or decision) also gets an entry in
``audit_chain`` in the same transaction: ``seq`` (1, 2, 3 ... without gaps), the record's canonical
JSON (``content``: every column as stored, sorted keys), ``prev_hash`` and ``hash = SHA-256(prev_hash
"\n" kind "\n" content)``. The chain head (seq + hash) is also written, atomically, to an anchor
file outside the database (``anchor_path_for``), so truncating the tables, swapping them for copies
or rebuilding them shows too. ``AuditLog.verify_chain`` checks everything and names the first bad
record; ``check_audit`` is the Qt-free start-up check. Missing audit objects (tables, triggers) of
an established trail are never re-created: the log refuses to append (``AuditIntegrityError``,
exit code 9) until an administrator has looked at it.
"""

from __future__ import annotations

import contextlib
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

from sigverify.errors import AuditIntegrityError, SigverifyError
from sigverify.hashing import sha256_bytes, sha256_file
from sigverify.safetext import csv_row, display_name

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

CHAIN_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_chain (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('verification', 'decision')),
    record_id  INTEGER NOT NULL,
    content    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    UNIQUE (kind, record_id)
);
CREATE TRIGGER IF NOT EXISTS audit_chain_no_update BEFORE UPDATE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS audit_chain_no_delete BEFORE DELETE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS audit_chain_no_replace BEFORE INSERT ON audit_chain
WHEN NEW.seq IS NOT NULL AND EXISTS (SELECT 1 FROM audit_chain WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be replaced'); END;
"""
#: Lookup indexes (not part of the trail: the hash chain covers the records, never the schema). Created
#: with a new database and added once to an existing one when it is opened (``_ensure_indexes``).
AUDIT_INDEXES = {
    # the batch's idempotency lookup (a re-run, or the Ray merge after a crash: which records already
    # carry these batch_item_keys). Without it every lookup parses the JSON of the whole trail.
    "audit_verifications_batch_item_key": "CREATE INDEX IF NOT EXISTS audit_verifications_batch_item_key"
    " ON audit_verifications (json_extract(details, '$.batch_item_key')) WHERE source = 'batch'",
}
AUDIT_TABLES = ("audit_verifications", "audit_decisions", "audit_chain")
CHAIN_TRIGGERS = ("audit_chain_no_update", "audit_chain_no_delete", "audit_chain_no_replace")
GENESIS_HASH = "0" * 64
ANCHOR_FORMAT = "sigverify-audit-anchor/1"
#: meta key set once the chained audit trail exists in a database (it must never vanish again)
CHAIN_META_KEY = "audit_chain"

APPEND_ONLY_TRIGGERS = (
    "audit_verifications_no_update",
    "audit_verifications_no_delete",
    "audit_verifications_no_replace",
    "audit_decisions_no_update",
    "audit_decisions_no_delete",
    "audit_decisions_no_replace",
)

CSV_COLUMNS = [
    "verification_id",
    "time_utc",
    "operator",
    "source",
    "customer_id",
    "questioned_name",
    "questioned_sha256",
    "model_id",
    "weights_sha256",
    "metric",
    "distances",
    "distance",
    "score",
    "verdict",
    "threshold_accept",
    "threshold_reject",
    "reference_ids",
    "decision",
    "decision_source",
    "decision_operator",
    "decision_time_utc",
    "overrides_verdict",
    "reason",
    "chain_seq",
    "record_hash",
    "prev_hash",
    "decision_hash",
]


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
    record_hash: str = ""  # this decision's hash in the audit chain


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
    chain_seq: int | None = None  # position in the audit chain
    record_hash: str = ""  # SHA-256 chain hash of this verification
    prev_hash: str = ""  # the hash before it in the chain

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
        return {
            "verification_id": self.id,
            "time_utc": self.time_utc,
            "operator": self.operator,
            "source": self.source,
            "customer_id": self.customer_id or "",
            "questioned_name": self.questioned_name,
            "questioned_sha256": self.questioned_sha256,
            "model_id": self.model_id,
            "weights_sha256": self.weights_sha256,
            "metric": self.metric,
            "distances": " ".join(f"{x:.6f}" for x in self.distances),
            "distance": f"{self.distance:.6f}",
            "score": f"{self.score:.2f}",
            "verdict": self.verdict,
            "threshold_accept": "" if self.threshold_accept is None else f"{self.threshold_accept:.6f}",
            "threshold_reject": "" if self.threshold_reject is None else f"{self.threshold_reject:.6f}",
            "reference_ids": " ".join(map(str, self.reference_ids)),
            "decision": fd.decision if fd else "",
            "decision_source": fd.source if fd else "",
            "decision_operator": fd.operator if fd else "",
            "decision_time_utc": fd.time_utc if fd else "",
            "overrides_verdict": ("yes" if fd.overrides_verdict else "no") if fd else "",
            "reason": fd.reason if fd else "",
            "chain_seq": "" if self.chain_seq is None else self.chain_seq,
            "record_hash": self.record_hash,
            "prev_hash": self.prev_hash,
            "decision_hash": fd.record_hash if fd else "",
        }


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


def entry_from_decision(
    decision,
    questioned_name: str,
    questioned_sha256: str,
    verifier,
    customer_id: str | None = None,
    reference_ids: Sequence[int] = (),
    details: dict | None = None,
) -> VerificationEntry:
    """Build an entry from a core ``ReferenceDecision`` and the ``Verifier`` that produced it."""
    v = decision.verdict
    det = {
        "aggregate": decision.aggregate,
        "min_distance": decision.min_distance,
        "mean_distance": decision.mean_distance,
        "reference_spread": decision.ref_spread,
        "person_threshold_scale": decision.person_scale,
        "warnings": list(decision.warnings),
        "random_weights": bool(verifier.card.random_init),
    }
    det.update(details or {})
    return VerificationEntry(
        questioned_name=questioned_name,
        questioned_sha256=questioned_sha256,
        model_id=verifier.model.model_id,
        weights_sha256=verifier.card.weights_sha256 or "",
        metric=verifier.metric,
        distances=list(decision.distances),
        distance=v.distance,
        score=v.score,
        verdict=v.zone,
        customer_id=customer_id,
        threshold_accept=v.accept,
        threshold_reject=v.reject,
        reference_ids=list(reference_ids),
        details=det,
    )


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

    def __init__(
        self,
        conn: sqlite3.Connection,
        lock: threading.RLock | None = None,
        operator: str | None = None,
        anchor_path: str | os.PathLike | None = None,
        problems: Sequence[str] = (),
    ):
        self._conn = conn
        self._lock = lock or threading.RLock()
        self.operator = operator or default_operator()
        #: the chain-head anchor file outside the database (None: no anchor kept, e.g. in-memory tests)
        self.anchor_path = Path(anchor_path) if anchor_path else None
        #: what was found wrong when the database was opened (missing audit objects); appends refuse
        self.problems: list[str] = list(problems)

    @staticmethod
    def ensure_schema(conn: sqlite3.Connection) -> None:
        """Create the audit objects of a *new* database (kept for callers of the old API); use
        ``open_schema`` to open an existing one without silently re-creating what is missing."""
        conn.executescript(AUDIT_SCHEMA)
        conn.executescript(CHAIN_SCHEMA)

    @staticmethod
    def open_schema(conn: sqlite3.Connection, anchor_path: str | os.PathLike | None = None) -> list[str]:
        """Prepare the audit objects of a library database; returns the problems found (empty = fine).

        - a new database (no audit object, no anchor): every object is created;
        - a database from before the hash chain (audit tables, no chain, no anchor, not marked): the
          chain is added and the existing records are chained in id order (once, recorded in meta);
        - an established trail (marked in meta, or an anchor exists) with any table or trigger missing:
          nothing is re-created; the missing objects are returned as problems."""
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
        audit_objects = set(AUDIT_TABLES) | set(APPEND_ONLY_TRIGGERS) | set(CHAIN_TRIGGERS)
        have_meta = "meta" in names and conn.execute("SELECT 1 FROM meta WHERE key = ?", (CHAIN_META_KEY,)).fetchone() is not None
        anchor = read_anchor(anchor_path)
        # an anchor at entry 0 (a trail that never held a record) does not make a new database suspicious
        if have_meta or (anchor is not None and int(anchor.get("seq", 0) or 0) > 0):
            missing = [n for n in (*AUDIT_TABLES, *APPEND_ONLY_TRIGGERS, *CHAIN_TRIGGERS) if n not in names]
            problems = [f"audit object {n!r} is missing (dropped or renamed); it is not re-created" for n in missing]
            if not have_meta and not missing:
                problems.append("the database's audit-chain marker is missing although an anchor exists")
            if "audit_verifications" in names:
                _ensure_indexes(conn)
            return problems
        legacy = bool(names & audit_objects)
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            for stmt in _statements(AUDIT_SCHEMA + CHAIN_SCHEMA):
                conn.execute(stmt)
            for stmt in AUDIT_INDEXES.values():
                conn.execute(stmt)
            if legacy:
                _chain_existing(conn)
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                (CHAIN_META_KEY, "sha256/1" + (" migrated " + utc_now() if legacy else "")),
            )
        if anchor_path:
            head = conn.execute("SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1").fetchone()
            write_anchor(anchor_path, int(head[0]) if head else 0, head[1] if head else GENESIS_HASH)
        return []

    def _refuse_if_broken(self) -> None:
        if self.problems:
            raise AuditIntegrityError(
                "the audit trail is damaged or was tampered with ("
                + "; ".join(self.problems)
                + "): no verification can be recorded. Run 'sigverify-cli audit verify' and ask an administrator",
                {"problem": self.problems[0]},
            )

    def _chain_append(self, kind: str, table: str, record_id: int) -> tuple[int, str]:
        """Inside the caller's write transaction: add ``record_id`` of ``table`` to the chain."""
        content = canonical_json(_select_dict(self._conn, table, record_id))
        head = self._conn.execute("SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (int(head[0]) + 1, head[1]) if head else (1, GENESIS_HASH)
        h = chain_hash(prev, kind, content)
        self._conn.execute(
            "INSERT INTO audit_chain (seq, kind, record_id, content, prev_hash, hash) VALUES (?,?,?,?,?,?)",
            (seq, kind, record_id, content, prev, h),
        )
        return seq, h

    def _begin_write(self) -> None:
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading the chain head

    def _after_commit(self, head: tuple[int, str] | None) -> None:
        if head is None or self.anchor_path is None:
            return
        try:
            with _anchor_lock(self.anchor_path):  # two writers must not move the anchor backwards
                current = read_anchor(self.anchor_path)
                if current is None or int(current.get("seq", 0)) < head[0]:
                    write_anchor(self.anchor_path, head[0], head[1])
        except (OSError, SigverifyError):
            pass  # the record is committed; a lagging anchor is reported (as a warning) by verify_chain

    # ---- append ---------------------------------------------------------------------------------
    def append_verification(self, entry: VerificationEntry, source: str = "gui", operator: str | None = None) -> int:
        return self.append_many([entry], source, operator)[0]

    def append_many(
        self,
        entries: Iterable[VerificationEntry],
        source: str = "gui",
        operator: str | None = None,
        decide_automatically: bool = False,
        in_transaction=None,
    ) -> list[int]:
        """Append verifications in one transaction (all or nothing). With ``decide_automatically``
        each also gets a decision row equal to its verdict, with ``source`` as the decision source
        (batch runs: nobody looked at them). ``in_transaction(conn, ids)``, if given, runs inside the
        same transaction (the batch stores its result rows there, so results and audit records are
        committed together or not at all)."""
        if source not in SOURCES:
            raise SigverifyError(f"audit source must be one of {', '.join(SOURCES)}")
        self._refuse_if_broken()
        op = display_name(operator or self.operator)
        ids: list[int] = []
        head = None
        with self._lock:
            with self._conn:  # one transaction; rolled back on any error
                self._begin_write()
                for e in entries:
                    t = utc_now()
                    cur = self._conn.execute(
                        "INSERT INTO audit_verifications (time_utc, operator, source, customer_id, questioned_name,"
                        " questioned_sha256, model_id, weights_sha256, metric, distances, distance, score, verdict,"
                        " threshold_accept, threshold_reject, reference_ids, details)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            t,
                            op,
                            source,
                            e.customer_id,
                            display_name(e.questioned_name),
                            e.questioned_sha256,
                            e.model_id,
                            e.weights_sha256,
                            e.metric,
                            json.dumps([float(x) for x in e.distances]),
                            float(e.distance),
                            float(e.score),
                            e.verdict,
                            _opt_float(e.threshold_accept),
                            _opt_float(e.threshold_reject),
                            json.dumps([int(x) for x in e.reference_ids]),
                            json.dumps(e.details, default=str),
                        ),
                    )
                    vid = int(cur.lastrowid)
                    ids.append(vid)
                    head = self._chain_append("verification", "audit_verifications", vid)
                    if decide_automatically:
                        cur = self._conn.execute(
                            "INSERT INTO audit_decisions (verification_id, time_utc, operator, source, decision,"
                            " overrides_verdict, reason) VALUES (?,?,?,?,?,0,'')",
                            (vid, t, op, source, VERDICT_DECISION.get(e.verdict, "refer")),
                        )
                        head = self._chain_append("decision", "audit_decisions", int(cur.lastrowid))
                if in_transaction is not None:
                    in_transaction(self._conn, ids)
        self._after_commit(head)
        return ids

    def append_decision(
        self, verification_id: int, decision: str, reason: str = "", operator: str | None = None, source: str = "clerk"
    ) -> int:
        """Append the clerk's final decision for a verification. A decision that differs from the
        verdict is flagged as an override (a reason is recommended there but not required)."""
        decision = (decision or "").strip().lower()
        if decision not in DECISIONS:
            raise SigverifyError(f"decision must be one of {', '.join(DECISIONS)} (got {decision!r})")
        self._refuse_if_broken()
        with self._lock:
            row = self._conn.execute("SELECT verdict FROM audit_verifications WHERE id = ?", (int(verification_id),)).fetchone()
            if row is None:
                raise SigverifyError(f"no verification #{verification_id} in the audit log")
            overrides = int(VERDICT_DECISION.get(row[0]) != decision)
            with self._conn:
                self._begin_write()
                cur = self._conn.execute(
                    "INSERT INTO audit_decisions (verification_id, time_utc, operator, source, decision,"
                    " overrides_verdict, reason) VALUES (?,?,?,?,?,?,?)",
                    (
                        int(verification_id),
                        utc_now(),
                        display_name(operator or self.operator),
                        source,
                        decision,
                        overrides,
                        display_name((reason or "").strip()),
                    ),
                )
                did = int(cur.lastrowid)
                head = self._chain_append("decision", "audit_decisions", did)
        self._after_commit(head)
        return did

    # ---- read -----------------------------------------------------------------------------------
    def records(self, customer_id: str | None = None, limit: int | None = None, newest_first: bool = False) -> list[AuditRecord]:
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
            chain: dict = {}
            if ids:
                # chunked IN lists keep under SQLite's variable limit
                for k in range(0, len(ids), 500):
                    part = ids[k : k + 500]
                    for d in self._conn.execute(
                        f"SELECT * FROM audit_decisions WHERE verification_id IN ({','.join('?' * len(part))}) ORDER BY id", part
                    ):
                        decs[d["verification_id"]].append(
                            Decision(
                                d["id"],
                                d["verification_id"],
                                d["time_utc"],
                                d["operator"],
                                d["source"],
                                d["decision"],
                                bool(d["overrides_verdict"]),
                                d["reason"],
                            )
                        )
            chain = self._chain_rows(ids, [d.id for ds in decs.values() for d in ds])
            for ds in decs.values():
                for d in ds:
                    d.record_hash = chain.get(("decision", d.id), (None, "", ""))[1]
        return [
            AuditRecord(
                r["id"],
                r["time_utc"],
                r["operator"],
                r["source"],
                r["customer_id"],
                r["questioned_name"],
                r["questioned_sha256"],
                r["model_id"],
                r["weights_sha256"],
                r["metric"],
                json.loads(r["distances"]),
                r["distance"],
                r["score"],
                r["verdict"],
                r["threshold_accept"],
                r["threshold_reject"],
                json.loads(r["reference_ids"]),
                json.loads(r["details"]),
                decs.get(r["id"], []),
                *chain.get(("verification", r["id"]), (None, "", "")),
            )
            for r in rows
        ]

    def history(self, customer_id: str, limit: int | None = None) -> list[AuditRecord]:
        """A customer's verifications, newest first."""
        return self.records(customer_id, limit, newest_first=True)

    def get(self, verification_id: int) -> AuditRecord | None:
        with self._lock:
            r = self._conn.execute("SELECT customer_id FROM audit_verifications WHERE id = ?", (int(verification_id),)).fetchone()
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
        return [t for t in (*APPEND_ONLY_TRIGGERS, *CHAIN_TRIGGERS) if t not in have]

    def _chain_rows(self, verification_ids: Sequence[int], decision_ids: Sequence[int]) -> dict:
        """{(kind, record id): (seq, hash, prev_hash)} for the given records (empty if no chain table)."""
        out: dict = {}
        try:
            for kind, idl in (("verification", list(verification_ids)), ("decision", list(decision_ids))):
                for k in range(0, len(idl), 500):
                    part = idl[k : k + 500]
                    for r in self._conn.execute(
                        "SELECT record_id, seq, hash, prev_hash FROM audit_chain WHERE kind = ? AND record_id IN"
                        f" ({','.join('?' * len(part))})",
                        [kind, *part],
                    ):
                        out[(kind, int(r[0]))] = (int(r[1]), r[2], r[3])
        except sqlite3.OperationalError:  # chain table missing: reported by verify_chain
            return {}
        return out

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest chain entry; (0, GENESIS_HASH) for an empty trail."""
        with self._lock:
            r = self._conn.execute("SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(r[0]), r[1]) if r else (0, GENESIS_HASH)

    def verify_chain(self) -> "AuditCheck":
        """Check the whole trail: audit objects present, every chain link and hash, every record equal
        to what was chained, no record outside the chain, and the chain head against the anchor file."""
        chk = AuditCheck(anchor_path=str(self.anchor_path) if self.anchor_path else None)
        with self._lock:
            conn = self._conn
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
            for n in (*AUDIT_TABLES, *APPEND_ONLY_TRIGGERS, *CHAIN_TRIGGERS):
                if n not in names:
                    chk.fail("missing_object", f"audit object {n!r} is missing (dropped or renamed)", object=n)
            anchor = read_anchor(self.anchor_path) if self.anchor_path else None
            if "audit_chain" in names:
                prev, expect_seq = GENESIS_HASH, 1
                live = {t: {} for t in ("audit_verifications", "audit_decisions") if t in names}
                for t in live:
                    cur = conn.execute(f"SELECT * FROM {t} ORDER BY id")
                    cols = [d[0] for d in cur.description]
                    live[t] = {int(r[0]): dict(zip(cols, r)) for r in cur}
                chained = {"audit_verifications": set(), "audit_decisions": set()}
                for seq, kind, rid, content, prev_hash, h in conn.execute(
                    "SELECT seq, kind, record_id, content, prev_hash, hash FROM audit_chain ORDER BY seq"
                ):
                    label = f"{kind} #{rid} (chain entry {seq})"
                    chk.records += 1
                    if seq != expect_seq:
                        chk.fail(
                            "gap",
                            f"chain entries {expect_seq}..{seq - 1} are missing before {label}",
                            seq=seq,
                            kind=kind,
                            record_id=rid,
                        )
                    if prev_hash != prev:
                        chk.fail(
                            "link",
                            f"{label} does not follow the entry before it (previous hash differs)",
                            seq=seq,
                            kind=kind,
                            record_id=rid,
                        )
                    if chain_hash(prev_hash, kind, content) != h:
                        chk.fail(
                            "hash", f"{label}: the chain entry was altered (hash mismatch)", seq=seq, kind=kind, record_id=rid
                        )
                    table = "audit_verifications" if kind == "verification" else "audit_decisions"
                    if table in live:
                        chained[table].add(int(rid))
                        row = live[table].get(int(rid))
                        try:
                            stored = json.loads(content)
                        except ValueError:
                            stored = None
                        if row is None:
                            chk.fail(
                                "deleted",
                                f"{label} is missing from {table} (deleted or the table replaced)",
                                seq=seq,
                                kind=kind,
                                record_id=rid,
                            )
                        elif stored is None or any(_norm(row.get(k)) != _norm(v) for k, v in stored.items()):
                            fields = [] if stored is None else [k for k, v in stored.items() if _norm(row.get(k)) != _norm(v)]
                            chk.fail(
                                "changed",
                                f"{label} was changed after it was recorded"
                                + (f" (field {', '.join(fields)})" if fields else ""),
                                seq=seq,
                                kind=kind,
                                record_id=rid,
                                fields=fields,
                            )
                    prev, expect_seq = h, seq + 1
                chk.head_seq, chk.head_hash = expect_seq - 1, prev
                for table, kind in (("audit_verifications", "verification"), ("audit_decisions", "decision")):
                    for rid in sorted(set(live.get(table, {})) - chained[table]):
                        chk.fail(
                            "unchained",
                            f"{kind} #{rid} is not in the hash chain (written behind the application's back)",
                            kind=kind,
                            record_id=rid,
                        )
                chk.verifications = len(live.get("audit_verifications", {}))
                chk.decisions = len(live.get("audit_decisions", {}))
            if self.anchor_path is not None:
                if anchor is None:
                    if chk.head_seq > 0:
                        chk.fail(
                            "anchor_missing",
                            f"the anchor file {self.anchor_path} is missing, so truncation "
                            "cannot be ruled out (re-anchor with 'sigverify-cli audit verify --reanchor' after "
                            "checking the trail)",
                        )
                else:
                    chk.anchor_seq, chk.anchor_hash = int(anchor.get("seq", 0)), str(anchor.get("hash", ""))
                    if chk.anchor_seq > chk.head_seq:
                        chk.fail(
                            "truncated",
                            f"the trail has {chk.head_seq} chain entries but its anchor recorded "
                            f"{chk.anchor_seq}: records were removed or the tables replaced",
                            seq=chk.head_seq + 1,
                        )
                    elif chk.anchor_seq > 0 and "audit_chain" in names:
                        r = conn.execute("SELECT hash FROM audit_chain WHERE seq = ?", (chk.anchor_seq,)).fetchone()
                        if r is None or r[0] != chk.anchor_hash:
                            chk.fail(
                                "anchor_mismatch",
                                f"chain entry {chk.anchor_seq} does not match the anchor file: the trail was rebuilt or replaced",
                                seq=chk.anchor_seq,
                            )
                    if chk.head_seq > chk.anchor_seq:
                        chk.warnings.append(
                            f"the anchor is {chk.head_seq - chk.anchor_seq} entry(ies) behind the "
                            "chain (a crash between commit and anchor update); harmless"
                        )
        chk.problems.sort(key=lambda p: (p.get("seq") is None, p.get("seq") or 0))
        return chk

    def reanchor(self) -> "AuditCheck":
        """Write the anchor at the current chain head - only when the chain itself is intact (an
        administrator's step after a moved database or a lost anchor file)."""
        chk = self.verify_chain()
        real = [p for p in chk.problems if p["type"] not in ("anchor_missing", "anchor_mismatch", "truncated")]
        if real:
            raise AuditIntegrityError(f"cannot re-anchor a damaged trail: {real[0]['message']}", real[0])
        if self.anchor_path is None:
            raise SigverifyError("this audit log has no anchor file")
        write_anchor(self.anchor_path, chk.head_seq, chk.head_hash)
        return self.verify_chain()

    # ---- export ---------------------------------------------------------------------------------
    def to_csv_text(self, customer_id: str | None = None, records: list[AuditRecord] | None = None) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        for rec in self.records(customer_id) if records is None else records:
            w.writerow(csv_row(rec.csv_row()))  # formulas neutralised (OWASP)
        return buf.getvalue()

    def export_csv(self, path: str | os.PathLike, customer_id: str | None = None) -> int:
        """Write the log (or one customer's part) as CSV, atomically. Returns the number of records."""
        from sigverify.atomic import write_text_atomic

        recs = self.records(customer_id)
        write_text_atomic(Path(path), self.to_csv_text(records=recs))
        return len(recs)


def _opt_float(x) -> float | None:
    return None if x is None else float(x)


# ---- the hash chain ---------------------------------------------------------------------------------
def canonical_json(record: dict) -> str:
    """The canonical text of one record: every column, sorted keys, no spaces, UTF-8 (not ASCII-escaped)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_hash(prev_hash: str, kind: str, content: str) -> str:
    """SHA-256 of the previous entry's hash, the record kind and the record's canonical JSON."""
    return sha256_bytes(f"{prev_hash}\n{kind}\n{content}".encode("utf-8"))


def _norm(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _select_dict(conn: sqlite3.Connection, table: str, record_id: int) -> dict:
    cur = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (int(record_id),))
    row = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], tuple(row)))


def _statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (trigger bodies contain ';')."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    return out


def _ensure_indexes(conn: sqlite3.Connection) -> list[str]:
    """Migration: add the lookup indexes an existing database lacks (built once, in one transaction;
    a read-only database keeps working without them). Returns the names added."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    todo = [name for name in AUDIT_INDEXES if name not in have]
    if not todo:
        return []
    try:
        with conn:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            for name in todo:
                conn.execute(AUDIT_INDEXES[name])
    except sqlite3.OperationalError:  # read-only or busy: lookups fall back to a scan, nothing breaks
        return []
    return todo


def _chain_existing(conn: sqlite3.Connection) -> int:
    """Chain the records of a database from before the hash chain (in time order, inside the
    caller's transaction). Returns the number of entries added."""
    head = conn.execute("SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (int(head[0]), head[1]) if head else (0, GENESIS_HASH)
    todo = [
        ("verification", "audit_verifications", int(r[0]), r[1])
        for r in conn.execute(
            "SELECT id, time_utc FROM audit_verifications WHERE id NOT IN"
            " (SELECT record_id FROM audit_chain WHERE kind = 'verification')"
        )
    ]
    todo += [
        ("decision", "audit_decisions", int(r[0]), r[1])
        for r in conn.execute(
            "SELECT id, time_utc FROM audit_decisions WHERE id NOT IN (SELECT record_id FROM audit_chain WHERE kind = 'decision')"
        )
    ]
    todo.sort(key=lambda t: (t[3], t[0] != "verification", t[2]))
    for kind, table, rid, _t in todo:
        content = canonical_json(_select_dict(conn, table, rid))
        seq, h = seq + 1, chain_hash(prev, kind, content)
        conn.execute(
            "INSERT INTO audit_chain (seq, kind, record_id, content, prev_hash, hash) VALUES (?,?,?,?,?,?)",
            (seq, kind, rid, content, prev, h),
        )
        prev = h
    return len(todo)


def anchor_path_for(db_path: str | os.PathLike) -> Path:
    """Where the chain-head anchor of the database at ``db_path`` is kept: in the user data folder,
    apart from the database (``audit-anchors/<SHA-256 of the database's absolute path>.json``)."""
    from sigverify.paths import user_data_dir

    key = sha256_bytes(os.fsencode(str(Path(db_path).resolve())))[:24]
    return user_data_dir() / "audit-anchors" / f"{key}.json"


@contextlib.contextmanager
def _anchor_lock(anchor: Path):
    """An exclusive OS lock on ``<anchor>.lock`` (POSIX ``flock``; elsewhere no lock: the anchor may then
    lag behind the chain after concurrent writers, which ``verify_chain`` reports as a warning)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    anchor.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(anchor.with_name(anchor.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_anchor(path: str | os.PathLike | None) -> dict | None:
    """The anchor's content, or None when there is none. A damaged anchor reads as seq -1 (a problem)."""
    if not path:
        return None
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"format": "damaged", "seq": 10**12, "hash": ""}
    if not isinstance(d, dict) or d.get("format") != ANCHOR_FORMAT:
        return {"format": "damaged", "seq": 10**12, "hash": ""}
    return d


def write_anchor(path: str | os.PathLike, seq: int, head_hash: str, database: str | None = None) -> None:
    from sigverify.atomic import write_text_atomic

    write_text_atomic(
        Path(path),
        json.dumps(
            {"format": ANCHOR_FORMAT, "seq": int(seq), "hash": head_hash, "database": database, "time_utc": utc_now()}, indent=1
        ),
    )


@dataclass
class AuditCheck:
    """The result of ``AuditLog.verify_chain``: ``ok`` when nothing is wrong; ``first_bad`` names the
    first bad record (``problems`` sorted by chain position)."""

    anchor_path: str | None = None
    records: int = 0  # chain entries
    verifications: int = 0
    decisions: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    anchor_seq: int | None = None
    anchor_hash: str | None = None
    problems: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fail(self, problem_type: str, message: str, **where) -> None:
        self.problems.append({"type": problem_type, "message": message, **where})

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> dict | None:
        return self.problems[0] if self.problems else None

    def message(self) -> str:
        if self.ok:
            return (
                f"audit trail intact: {self.records} chain entries ({self.verifications} verification(s), "
                f"{self.decisions} decision(s)), head {self.head_hash[:16]}"
                + (f", anchored at entry {self.anchor_seq}" if self.anchor_seq is not None else "")
            )
        more = f" (and {len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
        return f"audit trail BROKEN: {self.problems[0]['message']}{more}"

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "records": self.records,
            "verifications": self.verifications,
            "decisions": self.decisions,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "anchor_path": self.anchor_path,
            "anchor_seq": self.anchor_seq,
            "anchor_hash": self.anchor_hash,
            "first_bad": self.first_bad,
            "problems": self.problems,
            "warnings": self.warnings,
            "message": self.message(),
        }


def check_audit(db_path: str | os.PathLike | None = None) -> AuditCheck:
    """Qt-free start-up check of the audit trail of the library database at ``db_path`` (default:
    the user's library). The GUI calls it at start and shows a blocking warning unless ``.ok``.
    A database that cannot be opened at all counts as broken too."""
    from sigverify.store.library import Library, default_db_path

    path = Path(db_path) if db_path else default_db_path()
    if not path.exists():
        chk = AuditCheck(anchor_path=str(anchor_path_for(path)))
        if read_anchor(anchor_path_for(path)) is not None:
            chk.fail("truncated", f"{path}: the library database is missing but its audit anchor exists")
        return chk
    try:
        with Library(path) as lib:
            return lib.audit.verify_chain()
    except SigverifyError as exc:
        chk = AuditCheck(anchor_path=str(anchor_path_for(path)))
        chk.fail("unreadable", str(exc))
        return chk


__all__ = [
    "AuditLog",
    "AuditRecord",
    "Decision",
    "VerificationEntry",
    "entry_from_decision",
    "questioned_identity",
    "default_operator",
    "sha256_bytes",
    "sha256_file",
    "DECISIONS",
    "VERDICT_DECISION",
    "utc_now",
    "AuditCheck",
    "check_audit",
    "anchor_path_for",
    "canonical_json",
    "chain_hash",
    "GENESIS_HASH",
]
