"""Customer reference library store: customers, their reference signatures and cached embeddings
(SQL only: no image decoding, no preprocessing, no model, no decision; no Qt).

One SQLite database file (``library.sqlite3`` in ``user_data_dir()`` unless a path is given) holds

- ``customers``        account id (primary key), name, notes, creation time
- ``reference_images`` the enrolled specimens: image bytes (BLOB) and SHA-256, file name, date enrolled,
                       optional expiry, active flag, removal time (removed specimens stay for the audit
                       trail unless purged)
- ``embeddings``       embedding per (reference, model id), keyed by the specimen image; computed and
                       refreshed by ``sigverify.app.library_service.LibraryService`` (enrol, refresh,
                       or lazily when a customer's references are used)
- the append-only audit tables (see ``sigverify.store.audit``)

The database runs in WAL mode with ``synchronous=FULL``; every change is one transaction, so a process
killed mid-write leaves the database consistent. One ``Library`` may be shared between the GUI thread
and one worker thread: every statement runs under the instance's lock.

Reading specimen files, preprocessing, embedding, the customer's thresholds and verification live one
layer up, in ``sigverify.app.library_service`` (which applies a supervisor's override and decides through
the one decision path).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from sigverify.errors import SigverifyError
from sigverify.hashing import sha256_bytes
from sigverify.safetext import display_name
from sigverify.store.audit import AuditLog, utc_now

SCHEMA_VERSION = 1
DB_FILE_NAME = "library.sqlite3"


LIBRARY_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS customers (
    account_id  TEXT PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    notes       TEXT NOT NULL DEFAULT '',
    created_utc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS customers_name ON customers(name COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS reference_images (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   TEXT NOT NULL REFERENCES customers(account_id) ON DELETE CASCADE,
    file_name    TEXT NOT NULL,
    image        BLOB NOT NULL,
    image_sha256 TEXT NOT NULL,
    enrolled_utc TEXT NOT NULL,
    expires_utc  TEXT,
    active       INTEGER NOT NULL DEFAULT 1,
    removed_utc  TEXT
);
CREATE INDEX IF NOT EXISTS reference_images_account ON reference_images(account_id);
CREATE TABLE IF NOT EXISTS embeddings (
    reference_id INTEGER NOT NULL REFERENCES reference_images(id) ON DELETE CASCADE,
    model_id     TEXT NOT NULL,
    dim          INTEGER NOT NULL,
    vector       BLOB NOT NULL,
    computed_utc TEXT NOT NULL,
    image_sha256 TEXT,
    digest       TEXT,
    PRIMARY KEY (reference_id, model_id)
);
CREATE TABLE IF NOT EXISTS batch_runs (
    run_key      TEXT PRIMARY KEY,
    input        TEXT NOT NULL,
    n_items      INTEGER NOT NULL,
    model_id     TEXT NOT NULL,
    settings     TEXT NOT NULL DEFAULT '{}',
    created_utc  TEXT NOT NULL,
    finished_utc TEXT
);
CREATE TABLE IF NOT EXISTS batch_results (
    run_key    TEXT NOT NULL REFERENCES batch_runs(run_key),
    item_index INTEGER NOT NULL,
    item_key   TEXT NOT NULL,
    customer   TEXT NOT NULL,
    file       TEXT NOT NULL,
    verdict    TEXT NOT NULL DEFAULT '',
    score      REAL,
    distance   REAL,
    error      TEXT NOT NULL DEFAULT '',
    audit_id   INTEGER,
    warnings   TEXT NOT NULL DEFAULT '[]',
    done_utc   TEXT NOT NULL,
    PRIMARY KEY (run_key, item_index)
);
CREATE UNIQUE INDEX IF NOT EXISTS batch_results_item_key ON batch_results(item_key);
"""


def _migrate_embeddings(conn: sqlite3.Connection) -> None:
    """Databases from before the cache was keyed by the specimen image: add the key columns (rows
    without them count as missing and are recomputed when next used)."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(embeddings)")}
    with conn:
        for col in ("image_sha256", "digest"):
            if col not in cols:
                conn.execute(f"ALTER TABLE embeddings ADD COLUMN {col} TEXT")


def embedding_digest(model_id: str, image_sha256: str, vector: bytes) -> str:
    """What a cached embedding is checked against: its model, its specimen image and its bytes."""
    return sha256_bytes(model_id.encode("utf-8") + b"\n" + image_sha256.encode("ascii", "replace") + b"\n" + vector)


def default_db_path() -> Path:
    from sigverify.paths import user_data_dir

    return user_data_dir() / DB_FILE_NAME


def parse_time(value: str | datetime | None) -> str | None:
    """ISO date or date-time (naive = UTC) -> canonical UTC text ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except (ValueError, TypeError) as exc:
            raise SigverifyError(f"{value!r} is not a date (use YYYY-MM-DD or an ISO date-time)") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, ValueError) as exc:  # e.g. 0001-01-01T00:00+14:00 falls before year 1 in UTC
        raise SigverifyError(f"{value!r} is out of the supported date range") from exc


@dataclass
class Customer:
    account_id: str
    name: str
    notes: str
    created_utc: str
    n_active: int = 0
    n_total: int = 0

    @property
    def needs_more_specimens(self) -> bool:
        from sigverify.verify.reference import MIN_REFS_FOR_ADAPTATION

        return self.n_active < MIN_REFS_FOR_ADAPTATION

    @property
    def label(self) -> str:
        return f"{self.account_id} - {self.name}" if self.name else self.account_id

    def to_dict(self) -> dict:
        return {
            "account_id": self.account_id,
            "name": self.name,
            "notes": self.notes,
            "created_utc": self.created_utc,
            "active_references": self.n_active,
            "total_references": self.n_total,
            "needs_more_specimens": self.needs_more_specimens,
        }


@dataclass
class Reference:
    id: int
    account_id: str
    file_name: str
    image_sha256: str
    enrolled_utc: str
    expires_utc: str | None
    active: bool
    removed_utc: str | None

    def status(self, now: str | None = None) -> str:
        if self.removed_utc:
            return "removed"
        if not self.active:
            return "inactive"
        if self.expires_utc and self.expires_utc <= (now or utc_now()):
            return "expired"
        return "active"

    @property
    def usable(self) -> bool:
        return self.status() == "active"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "file_name": self.file_name,
            "image_sha256": self.image_sha256,
            "enrolled_utc": self.enrolled_utc,
            "expires_utc": self.expires_utc,
            "active": self.active,
            "removed_utc": self.removed_utc,
            "status": self.status(),
        }


def _reference(r: sqlite3.Row) -> Reference:
    return Reference(
        r["id"],
        r["account_id"],
        r["file_name"],
        r["image_sha256"],
        r["enrolled_utc"],
        r["expires_utc"],
        bool(r["active"]),
        r["removed_utc"],
    )


@dataclass(frozen=True)
class SpecimenFile:
    """A specimen to store: its (display) file name, its bytes and their SHA-256."""

    file_name: str
    data: bytes
    sha256: str


class Library:
    """The reference library and its audit log, in one SQLite file."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        operator: str | None = None,
        timeout: float = 30.0,
        anchor_path: str | os.PathLike | None = None,
    ):
        from sigverify.atomic import check_output_path
        from sigverify.store.audit import anchor_path_for

        # a regular file or a new path only: never /dev/null (it left /dev/null-journal), a FIFO or a folder
        self.path = check_output_path(Path(path) if path else default_db_path(), "library database")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.anchor_path = Path(anchor_path) if anchor_path else anchor_path_for(self.path)
        try:
            conn = sqlite3.connect(str(self.path), timeout=timeout, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            conn.executescript(LIBRARY_SCHEMA)
            _migrate_embeddings(conn)
            # never re-creates missing audit objects of an established trail (they are reported instead)
            audit_problems = AuditLog.open_schema(conn, self.anchor_path)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                with conn:
                    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise SigverifyError(
                    f"{self.path.name}: library database is from a newer sigverify "
                    f"(schema {row[0]} > {SCHEMA_VERSION}); update the application"
                )
        except sqlite3.DatabaseError as exc:
            raise SigverifyError(f"{self.path}: cannot open the library database ({exc})") from exc
        self.journal_mode = str(mode).lower()
        self._conn = conn
        self._lock = threading.RLock()
        self.audit = AuditLog(conn, self._lock, operator, self.anchor_path, audit_problems)

    # ---- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _q(self, sql: str, args: Sequence = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def integrity_check(self) -> str:
        return str(self._q("PRAGMA integrity_check")[0][0])

    # ---- customers ------------------------------------------------------------------------------
    def add_customer(self, account_id: str, name: str | None = None, notes: str | None = None) -> Customer:
        """Create a customer, or update the name / notes of an existing one (when given)."""
        account_id = (account_id or "").strip()
        if not account_id:
            raise SigverifyError("an account id is required")
        with self._lock, self._conn:
            self._upsert_customer(account_id, name, notes, utc_now())
        return self.require_customer(account_id)

    def _upsert_customer(self, account_id: str, name: str | None, notes: str | None, now: str) -> None:
        """Inside an open transaction: create the customer if new; set name / notes when given."""
        self._conn.execute(
            "INSERT OR IGNORE INTO customers (account_id, name, notes, created_utc) VALUES (?,?,?,?)",
            (account_id, (name or "").strip(), (notes or "").strip(), now),
        )
        if name is not None:
            self._conn.execute("UPDATE customers SET name = ? WHERE account_id = ?", (name.strip(), account_id))
        if notes is not None:
            self._conn.execute("UPDATE customers SET notes = ? WHERE account_id = ?", (notes.strip(), account_id))

    def _customers(
        self,
        where: str = "",
        args: Sequence = (),
        order: str = "c.account_id",
        order_args: Sequence = (),
        limit: int | None = None,
    ):
        now = utc_now()
        sql = (
            "SELECT c.*, "
            " (SELECT COUNT(*) FROM reference_images r WHERE r.account_id = c.account_id AND r.active = 1"
            "   AND r.removed_utc IS NULL AND (r.expires_utc IS NULL OR r.expires_utc > ?)) AS n_active,"
            " (SELECT COUNT(*) FROM reference_images r WHERE r.account_id = c.account_id"
            "   AND r.removed_utc IS NULL) AS n_total"
            f" FROM customers c {where} ORDER BY {order}"
        )
        params = [now, *args, *order_args]
        if limit:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [
            Customer(r["account_id"], r["name"], r["notes"], r["created_utc"], r["n_active"], r["n_total"])
            for r in self._q(sql, params)
        ]

    def get_customer(self, account_id: str) -> Customer | None:
        found = self._customers("WHERE c.account_id = ?", [account_id])
        return found[0] if found else None

    def require_customer(self, account_id: str) -> Customer:
        c = self.get_customer(account_id)
        if c is None:
            raise SigverifyError(f"unknown customer {account_id!r}: not in the reference library")
        return c

    def customers(self) -> list[Customer]:
        return self._customers()

    def search(self, text: str, limit: int = 20) -> list[Customer]:
        """Customers whose account id starts with / contains ``text`` or whose name contains it
        (case-insensitive); exact and prefix id matches first."""
        t = (text or "").strip()
        if not t:
            return self._customers(limit=limit)
        esc = t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{esc}%"
        return self._customers(
            "WHERE c.account_id LIKE ? ESCAPE '\\' OR c.name LIKE ? ESCAPE '\\'",
            [like, like],
            order="(c.account_id = ? COLLATE NOCASE) DESC, (c.account_id LIKE ? ESCAPE '\\') DESC, c.account_id",
            order_args=[t, esc + "%"],
            limit=limit,
        )

    def remove_customer(self, account_id: str) -> None:
        """Delete a customer with their specimens and embeddings (the audit trail is kept)."""
        self.require_customer(account_id)
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM customers WHERE account_id = ?", (account_id,))

    # ---- references -----------------------------------------------------------------------------
    def kept_digests(self, account_id: str) -> dict[str, int]:
        """SHA-256 -> reference id of the customer's kept (not removed) specimens."""
        return {
            r["image_sha256"]: int(r["id"])
            for r in self._q(
                "SELECT id, image_sha256 FROM reference_images WHERE account_id = ? AND removed_utc IS NULL", [account_id]
            )
        }

    def add_specimens(
        self,
        account_id: str,
        specimens: Sequence[SpecimenFile],
        *,
        name: str | None = None,
        notes: str | None = None,
        expires: str | datetime | None = None,
        model_id: str | None = None,
        embeddings: Sequence[np.ndarray] | None = None,
    ) -> list[int]:
        """All or nothing: the customer (created if new), its name / notes (when given) and every
        specimen (with its embedding under ``model_id`` when given) in one transaction. Returns the new
        reference ids in order."""
        account_id = (account_id or "").strip()
        if not account_id:
            raise SigverifyError("an account id is required")
        if embeddings is not None and (model_id is None or len(embeddings) != len(specimens)):
            raise ValueError("one embedding per specimen, with its model id")
        exp = parse_time(expires)
        now = utc_now()
        added: list[int] = []
        with self._lock, self._conn:
            self._upsert_customer(account_id, name, notes, now)
            for k, sp in enumerate(specimens):
                cur = self._conn.execute(
                    "INSERT INTO reference_images (account_id, file_name, image, image_sha256, enrolled_utc,"
                    " expires_utc, active) VALUES (?,?,?,?,?,?,1)",
                    (account_id, sp.file_name, sp.data, sp.sha256, now, exp),
                )
                rid = int(cur.lastrowid)
                added.append(rid)
                if embeddings is not None:
                    self._put_embedding(rid, str(model_id), embeddings[k], sp.sha256)
        return added

    def _put_embedding(self, ref_id: int, model_id: str, emb: np.ndarray, image_sha256: str) -> None:
        v = np.asarray(emb, np.float32)
        b = v.tobytes()
        self._conn.execute(
            "INSERT OR REPLACE INTO embeddings (reference_id, model_id, dim, vector, computed_utc,"
            " image_sha256, digest) VALUES (?,?,?,?,?,?,?)",
            (ref_id, model_id, int(v.shape[0]), b, utc_now(), image_sha256, embedding_digest(model_id, image_sha256, b)),
        )

    def references(self, account_id: str, include_removed: bool = False) -> list[Reference]:
        sql = "SELECT * FROM reference_images WHERE account_id = ?"
        if not include_removed:
            sql += " AND removed_utc IS NULL"
        return [_reference(r) for r in self._q(sql + " ORDER BY id", [account_id])]

    def active_references(self, account_id: str) -> list[Reference]:
        now = utc_now()
        return [r for r in self.references(account_id) if r.status(now) == "active"]

    def get_reference(self, ref_id: int) -> Reference:
        rows = self._q("SELECT * FROM reference_images WHERE id = ?", [int(ref_id)])
        if not rows:
            raise SigverifyError(f"no reference #{ref_id} in the library")
        return _reference(rows[0])

    def reference_image(self, ref_id: int) -> bytes:
        rows = self._q("SELECT image FROM reference_images WHERE id = ?", [int(ref_id)])
        if not rows:
            raise SigverifyError(f"no reference #{ref_id} in the library")
        return bytes(rows[0][0])

    def remove_reference(self, ref_id: int, purge: bool = False) -> Reference:
        """Take a specimen out of use. By default it is kept (marked removed) so past audit records
        stay reproducible; ``purge`` deletes the image and its embeddings for good."""
        ref = self.get_reference(ref_id)
        with self._lock, self._conn:
            if purge:
                self._conn.execute("DELETE FROM reference_images WHERE id = ?", (int(ref_id),))
            else:
                self._conn.execute(
                    "UPDATE reference_images SET active = 0, removed_utc = ? WHERE id = ? AND removed_utc IS NULL",
                    (utc_now(), int(ref_id)),
                )
        return ref if purge else self.get_reference(ref_id)

    def expire_reference(self, ref_id: int, when: str | datetime | None = None) -> Reference:
        """Set a specimen's expiry (default: now, i.e. expired from this moment)."""
        self.get_reference(ref_id)
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE reference_images SET expires_utc = ? WHERE id = ?", (parse_time(when) or utc_now(), int(ref_id))
            )
        return self.get_reference(ref_id)

    def set_reference_active(self, ref_id: int, active: bool, expires: str | datetime | None = "keep") -> Reference:
        self.get_reference(ref_id)
        with self._lock, self._conn:
            self._conn.execute("UPDATE reference_images SET active = ? WHERE id = ?", (int(bool(active)), int(ref_id)))
            if expires != "keep":
                self._conn.execute("UPDATE reference_images SET expires_utc = ? WHERE id = ?", (parse_time(expires), int(ref_id)))
        return self.get_reference(ref_id)

    # ---- embeddings -----------------------------------------------------------------------------
    def specimen_images(self, ref_ids: Sequence[int]) -> list[tuple[int, str, bytes]]:
        """(reference id, file name, image bytes) of the given specimens, in id order."""
        out: list[tuple[int, str, bytes]] = []
        ids = [int(i) for i in ref_ids]
        for k in range(0, len(ids), 500):
            part = ids[k : k + 500]
            out += [
                (int(r["id"]), r["file_name"], bytes(r["image"]))
                for r in self._q(
                    f"SELECT id, file_name, image FROM reference_images WHERE id IN ({','.join('?' * len(part))}) ORDER BY id",
                    part,
                )
            ]
        return out

    def put_embeddings(self, model_id: str, rows: Iterable[tuple[int, np.ndarray, str]]) -> None:
        """Store ``(reference id, embedding, SHA-256 of the bytes embedded)`` rows in one transaction."""
        with self._lock, self._conn:
            for rid, emb, image_sha256 in rows:
                self._put_embedding(int(rid), model_id, emb, image_sha256)

    def cached_embeddings(self, ref_ids: Sequence[int], model_id: str) -> dict[int, np.ndarray]:
        """Reference id -> cached embedding under ``model_id`` (rows that fail their key are left out)."""
        out: dict[int, np.ndarray] = {}
        ids = list(ref_ids)
        for k in range(0, len(ids), 500):
            part = ids[k : k + 500]
            for r in self._q(
                "SELECT e.reference_id, e.vector, e.dim, e.image_sha256, e.digest, r.image_sha256"
                " FROM embeddings e JOIN reference_images r ON r.id = e.reference_id"
                f" WHERE e.model_id = ? AND e.reference_id IN ({','.join('?' * len(part))})",
                [model_id, *part],
            ):
                vec = bytes(r[1])
                # keyed by the specimen image and the model: a row moved to another specimen, a changed
                # vector or a row from before the key counts as missing and is recomputed
                if r[3] is None or r[3] != r[5] or r[4] != embedding_digest(model_id, r[3], vec) or len(vec) != 4 * int(r[2]):
                    continue
                out[int(r[0])] = np.frombuffer(vec, np.float32).copy()
        return out

    def kept_reference_ids(self) -> list[int]:
        """Ids of every kept (not removed) specimen, in id order."""
        return [int(r[0]) for r in self._q("SELECT id FROM reference_images WHERE removed_utc IS NULL ORDER BY id")]

    # ---- batch runs (durable, resumable results; see sigverify.batch) -----------------------------------
    def batch_start(self, run_key: str, input_name: str, n_items: int, model_id: str, settings: dict | None = None) -> None:
        import json

        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO batch_runs (run_key, input, n_items, model_id, settings,"
                " created_utc) VALUES (?,?,?,?,?,?)",
                (run_key, display_name(input_name), int(n_items), model_id, json.dumps(settings or {}), utc_now()),
            )

    def batch_done(self, run_key: str) -> dict[int, dict]:
        """Stored results of a run that need no new attempt (verified items; errors are retried)."""
        import json

        return {
            int(r["item_index"]): {
                "customer": r["customer"],
                "file": r["file"],
                "verdict": r["verdict"],
                "score": r["score"],
                "distance": r["distance"],
                "error": r["error"],
                "audit_id": r["audit_id"],
                "warnings": json.loads(r["warnings"] or "[]"),
                "item_key": r["item_key"],
            }
            for r in self._q("SELECT * FROM batch_results WHERE run_key = ? AND error = ''", [run_key])
        }

    def batch_store(self, conn, run_key: str, rows) -> None:
        """Store ``(index, item_key, BatchResult)`` rows; inside ``conn``'s open transaction when given
        (the audit append's), else in a transaction of their own."""
        import json

        def write(c):
            c.executemany(
                "INSERT OR REPLACE INTO batch_results (run_key, item_index, item_key, customer, file, verdict, score,"
                " distance, error, audit_id, warnings, done_utc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        run_key,
                        int(i),
                        key,
                        display_name(r.customer),
                        display_name(r.file),
                        r.verdict or "",
                        None if r.score is None else float(r.score),
                        None if r.distance is None else float(r.distance),
                        display_name(r.error or ""),
                        r.audit_id,
                        json.dumps(list(r.warnings)),
                        utc_now(),
                    )
                    for i, key, r in rows
                ],
            )

        if conn is not None:
            write(conn)
            return
        with self._lock, self._conn:
            write(self._conn)

    def batch_finish(self, run_key: str) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE batch_runs SET finished_utc = ? WHERE run_key = ? AND finished_utc IS NULL", (utc_now(), run_key)
            )

    def stats(self) -> dict:
        r = self._q("SELECT (SELECT COUNT(*) FROM customers), (SELECT COUNT(*) FROM reference_images WHERE removed_utc IS NULL)")[
            0
        ]
        try:
            n_audit = self._q("SELECT COUNT(*) FROM audit_verifications")[0][0]
        except sqlite3.OperationalError:  # the audit table is missing (reported by audit.problems)
            n_audit = None
        return {
            "path": str(self.path),
            "customers": r[0],
            "references": r[1],
            "audit_records": n_audit,
            "journal_mode": self.journal_mode,
            "audit_problems": list(self.audit.problems),
        }


__all__ = [
    "Library",
    "Customer",
    "Reference",
    "SpecimenFile",
    "default_db_path",
    "embedding_digest",
    "parse_time",
]
