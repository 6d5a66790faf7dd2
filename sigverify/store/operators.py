"""Operators, roles, sign-in sessions, the operator event log and per-customer threshold overrides
(sqlite3, no Qt).

Everything lives in the library database (``library.sqlite3``), beside the customers and the audit trail:

- ``operators``            one row per account: login name (the *operator id* written into every audit
                           record; unique, never reused, so a removed operator's old records still name
                           exactly one account), display name, role, password hash, lock state, failed
                           sign-in count. Removing an operator marks the row removed; it is never deleted.
- ``operator_sessions``    sign-in sessions (the SHA-256 of a random token; the token itself is only
                           given to the client): source (gui / cli), expiry, sign-out time.
- ``operator_config``      the authentication mode chosen at first run (``single`` or ``multi``) and the
                           idle-lock time.
- ``operator_events``      **append-only** (SQLite triggers refuse UPDATE / DELETE / REPLACE, like the
                           audit tables): sign-in, failed and throttled sign-ins, sign-out, idle lock,
                           account changes, supervisor reviews of cases, setting changes, threshold
                           overrides. Each row carries the operator id that did it.
- ``threshold_overrides``  append-only history of per-customer threshold multipliers set by a supervisor
                           (bounded ``OVERRIDE_LIMITS``, with a reason); the newest row of a customer
                           applies, and a row with scale 1.0 clears it.

Passwords are hashed with **scrypt** from Python's standard library (``hashlib.scrypt``, OpenSSL's
implementation): memory-hard, no native dependency to package, parameters stored in each hash so they
can be raised later. Wrong passwords are audited and rate-limited: after ``FREE_ATTEMPTS`` failures in a
row each further attempt must wait (doubling, up to ``MAX_DELAY_S``), and after ``LOCK_AFTER`` failures
in a row the account is locked until an administrator unlocks it.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from sigverify.errors import SigverifyError

ROLES = ("clerk", "supervisor", "administrator")
ROLE_RANK = {r: i for i, r in enumerate(ROLES)}
MODES = ("single", "multi")
#: failed sign-ins in a row that are answered at once; after that each attempt waits
FREE_ATTEMPTS = 3
#: first wait after FREE_ATTEMPTS failures (seconds), doubled for each further failure
BASE_DELAY_S = 5.0
MAX_DELAY_S = 300.0
#: failed sign-ins in a row that lock the account (an administrator unlocks it)
LOCK_AFTER = 10
MIN_PASSWORD_LEN = 8
#: bounds of a supervisor's per-customer threshold multiplier
OVERRIDE_LIMITS = (0.8, 1.25)
DEFAULT_IDLE_LOCK_MIN = 5
CLI_SESSION_HOURS = 12
#: scrypt cost: N=2^14, r=8, p=1 (16 MiB, ~50 ms), the parameters the Python docs and OWASP name
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

OPERATORS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS operators (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name    TEXT NOT NULL DEFAULT '',
    role            TEXT NOT NULL CHECK (role IN ('clerk', 'supervisor', 'administrator')),
    password_hash   TEXT NOT NULL,
    created_utc     TEXT NOT NULL,
    locked          INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    last_failed_utc TEXT,
    removed_utc     TEXT
);
-- operators are never deleted: their audit records must keep naming them
CREATE TRIGGER IF NOT EXISTS operators_no_delete BEFORE DELETE ON operators
BEGIN SELECT RAISE(ABORT, 'operators are never deleted: remove marks them removed'); END;
CREATE TABLE IF NOT EXISTS operator_sessions (
    token_sha256 TEXT PRIMARY KEY,
    operator_id  INTEGER NOT NULL REFERENCES operators(id),
    source       TEXT NOT NULL,
    created_utc  TEXT NOT NULL,
    expires_utc  TEXT NOT NULL,
    ended_utc    TEXT
);
CREATE TABLE IF NOT EXISTS operator_config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS operator_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    time_utc    TEXT NOT NULL,
    operator_id INTEGER,
    operator    TEXT NOT NULL,
    event       TEXT NOT NULL,
    case_id     INTEGER,
    customer_id TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    details     TEXT NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS operator_events_case ON operator_events(case_id, id);
CREATE TABLE IF NOT EXISTS threshold_overrides (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL,
    scale       REAL NOT NULL CHECK (scale >= {OVERRIDE_LIMITS[0]} AND scale <= {OVERRIDE_LIMITS[1]}),
    reason      TEXT NOT NULL,
    operator_id INTEGER NOT NULL,
    operator    TEXT NOT NULL,
    time_utc    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS threshold_overrides_customer ON threshold_overrides(customer_id, id);
-- the questioned image of a case, kept for its review and report (its SHA-256 matches the audit record)
CREATE TABLE IF NOT EXISTS case_images (
    verification_id INTEGER PRIMARY KEY,
    file_name       TEXT NOT NULL,
    image           BLOB NOT NULL,
    image_sha256    TEXT NOT NULL,
    stored_utc      TEXT NOT NULL
);
"""
_APPEND_ONLY = ("operator_events", "threshold_overrides")
for _t in _APPEND_ONLY:
    OPERATORS_SCHEMA += f"""
CREATE TRIGGER IF NOT EXISTS {_t}_no_update BEFORE UPDATE ON {_t}
BEGIN SELECT RAISE(ABORT, '{_t} is append-only: records cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS {_t}_no_delete BEFORE DELETE ON {_t}
BEGIN SELECT RAISE(ABORT, '{_t} is append-only: records cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS {_t}_no_replace BEFORE INSERT ON {_t}
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM {_t} WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, '{_t} is append-only: records cannot be replaced'); END;
"""


class AccessDenied(SigverifyError):
    """Not signed in, unknown / removed / locked operator, wrong password, or a role too low.

    Exit code 11 in the CLI (not a verdict code; 9 is the audit trail's integrity error)."""

    exit_code = 11


class SignInThrottled(AccessDenied):
    """Too many wrong passwords in a row: wait ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def utc_text(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------------------------------- hashing
def hash_password(password: str, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) for a new random 16-byte salt."""
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(dk)}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, want = stored.split("$")
        if kind != "scrypt":
            return False
        dk = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=256 * 1024 * 1024,
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(dk, base64.b64decode(want))


_DUMMY_HASH: str | None = None


def _burn_time(password: str) -> None:
    """Hash against a dummy so an unknown user name takes as long as a wrong password."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password("x" * 12)
    check_password(password, _DUMMY_HASH)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------- records
@dataclass
class Operator:
    id: int
    username: str
    display_name: str
    role: str
    created_utc: str
    locked: bool
    failed_attempts: int
    removed_utc: str | None
    has_password: bool = True

    @property
    def active(self) -> bool:
        return self.removed_utc is None and not self.locked

    @property
    def label(self) -> str:
        return f"{self.display_name} ({self.username})" if self.display_name else self.username

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def status(self) -> str:
        return "removed" if self.removed_utc else ("locked" if self.locked else "active")

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "created_utc": self.created_utc,
            "status": self.status(),
            "failed_attempts": self.failed_attempts,
        }


@dataclass
class Session:
    operator: Operator
    token: str | None  # only for a fresh sign-in; the database keeps its SHA-256
    source: str
    created_utc: str
    expires_utc: str


@dataclass
class OperatorEvent:
    id: int
    time_utc: str
    operator_id: int | None
    operator: str
    event: str
    case_id: int | None
    customer_id: str | None
    reason: str
    details: dict

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ThresholdOverride:
    id: int
    customer_id: str
    scale: float
    reason: str
    operator_id: int
    operator: str
    time_utc: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def require_role(operator: Operator | None, role: str, action: str = "this") -> Operator:
    """Raise ``AccessDenied`` unless ``operator`` is signed in, active and has at least ``role``."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")
    if operator is None:
        raise AccessDenied(f"sign in first: {action} needs the {role} role")
    if operator.removed_utc:
        raise AccessDenied(f"operator {operator.username!r} has been removed")
    if operator.locked:
        raise AccessDenied(f"operator {operator.username!r} is locked: an administrator must unlock the account")
    if not operator.has_role(role):
        raise AccessDenied(f"{action} needs the {role} role ({operator.username} is a {operator.role})")
    return operator


def local_user_name() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in the environment
        name = "local"
    name = re.sub(r"[^A-Za-z0-9._@-]", "_", name).lstrip("._@-") or "local"
    return name[:64]


# ---------------------------------------------------------------------------------------------- the store
class OperatorStore:
    """Operator accounts, sessions and the operator event log in a library database.

    ``OperatorStore.for_library(lib)`` shares the ``Library``'s connection and lock (so it is safe
    beside it in the GUI and a worker thread). ``clock`` returns the current time in seconds (tests
    move it forward to check rate limits and expiry).
    """

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock | None = None, clock: Callable[[], float] = time.time):
        self._conn = conn
        self._lock = lock or threading.RLock()
        self.clock = clock
        with self._lock:
            conn.executescript(OPERATORS_SCHEMA)

    @classmethod
    def for_library(cls, library, clock: Callable[[], float] = time.time) -> "OperatorStore":
        return cls(library._conn, library._lock, clock)

    def now(self) -> str:
        return utc_text(self.clock())

    # ---- config ---------------------------------------------------------------------------------
    def _config(self, key: str) -> str | None:
        with self._lock:
            r = self._conn.execute("SELECT value FROM operator_config WHERE key = ?", (key,)).fetchone()
        return None if r is None else str(r[0])

    def _set_config(self, key: str, value: str) -> None:
        with self._lock, self._conn:
            self._conn.execute("INSERT OR REPLACE INTO operator_config (key, value) VALUES (?, ?)", (key, value))

    @property
    def mode(self) -> str | None:
        """``single`` (personal install, no passwords), ``multi`` (sign-in required) or None (first run)."""
        return self._config("auth_mode")

    def setup_single_user(self, username: str | None = None) -> Operator:
        """First-run choice for a personal install: one administrator account, signed in automatically."""
        if self.mode is not None:
            raise SigverifyError(f"the sign-in mode is already chosen ({self.mode}-user)")
        name = _check_username(username or local_user_name())
        with self._lock:
            op = self.get(name)
            if op is None:
                op = self._insert(name, "", "administrator", "")
            self._set_config("auth_mode", "single")
            self._set_config("single_operator_id", str(op.id))
        self.log(op, "mode_chosen", details={"mode": "single"})
        return self.require(op.id)

    def setup_multi_user(self, admin_username: str, password: str, display_name: str = "") -> Operator:
        """First-run choice for a shared install: the first administrator account."""
        if self.mode is not None:
            raise SigverifyError(f"the sign-in mode is already chosen ({self.mode}-user)")
        op = self.add(None, admin_username, password, "administrator", display_name, _first=True)
        self._set_config("auth_mode", "multi")
        self.log(op, "mode_chosen", details={"mode": "multi"})
        return op

    def single_operator(self) -> Operator:
        """The one operator of a single-user install (created on demand when no mode is chosen yet)."""
        oid = self._config("single_operator_id")
        if oid is not None:
            return self.require(int(oid))
        name = local_user_name()
        op = self.get(name)
        if op is None:
            op = self._insert(name, "", "administrator", "")
        return op

    @property
    def idle_lock_minutes(self) -> float:
        v = self._config("idle_lock_minutes")
        return float(v) if v is not None else float(DEFAULT_IDLE_LOCK_MIN)

    def set_idle_lock_minutes(self, actor: Operator, minutes: float) -> None:
        require_role(actor, "administrator", "changing the idle lock")
        if not 0 < float(minutes) <= 240:
            raise SigverifyError("the idle lock must be between 1 minute and 4 hours")
        old = self.idle_lock_minutes
        self._set_config("idle_lock_minutes", str(float(minutes)))
        self.log(actor, "setting_changed", details={"key": "idle_lock_minutes", "old": old, "new": float(minutes)})

    # ---- accounts -------------------------------------------------------------------------------
    def _row(self, r) -> Operator:
        return Operator(
            int(r["id"]),
            r["username"],
            r["display_name"],
            r["role"],
            r["created_utc"],
            bool(r["locked"]),
            int(r["failed_attempts"]),
            r["removed_utc"],
            bool(r["password_hash"]),
        )

    def _fetch(self, where: str, args) -> sqlite3.Row | None:
        with self._lock:
            cur = self._conn.execute(f"SELECT * FROM operators WHERE {where}", args)
            cur.row_factory = sqlite3.Row
            return cur.fetchone()

    def get(self, key: int | str) -> Operator | None:
        """By id (int) or user name (str, case-insensitive); removed operators included."""
        r = self._fetch("id = ?", (key,)) if isinstance(key, int) else self._fetch("username = ?", (str(key).strip(),))
        return None if r is None else self._row(r)

    def require(self, key: int | str) -> Operator:
        op = self.get(key)
        if op is None:
            raise AccessDenied(f"unknown operator {key!r}")
        return op

    def list(self, include_removed: bool = True) -> list[Operator]:
        with self._lock:
            cur = self._conn.execute(
                "SELECT * FROM operators" + ("" if include_removed else " WHERE removed_utc IS NULL") + " ORDER BY id"
            )
            cur.row_factory = sqlite3.Row
            return [self._row(r) for r in cur.fetchall()]

    def _insert(self, username: str, display_name: str, role: str, pw_hash: str) -> Operator:
        with self._lock, self._conn:
            cur = self._conn.execute(
                "INSERT INTO operators (username, display_name, role, password_hash, created_utc) VALUES (?,?,?,?,?)",
                (username, display_name, role, pw_hash, self.now()),
            )
            oid = int(cur.lastrowid)
        return self.require(oid)

    def add(
        self,
        actor: Operator | None,
        username: str,
        password: str,
        role: str = "clerk",
        display_name: str = "",
        _first: bool = False,
    ) -> Operator:
        """Create an account (administrators only, except the first one at set-up)."""
        if not _first:
            require_role(actor, "administrator", "adding an operator")
        if role not in ROLES:
            raise SigverifyError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
        username = _check_username(username)
        _check_password(password)
        if self.get(username) is not None:
            raise SigverifyError(
                f"the user name {username!r} is taken (also by removed operators: names are "
                "never reused, so old audit records stay unambiguous)"
            )
        op = self._insert(username, (display_name or "").strip(), role, hash_password(password))
        self.log(actor or op, "operator_added", details={"operator_id": op.id, "username": op.username, "role": role})
        return op

    def _update(self, oid: int, sql: str, args=()) -> None:
        with self._lock, self._conn:
            self._conn.execute(f"UPDATE operators SET {sql} WHERE id = ?", (*args, oid))

    def _active_admins(self) -> int:
        with self._lock:
            return int(
                self._conn.execute(
                    "SELECT COUNT(*) FROM operators WHERE role = 'administrator' AND removed_utc IS NULL AND locked = 0"
                ).fetchone()[0]
            )

    def set_role(self, actor: Operator, username: str, role: str) -> Operator:
        require_role(actor, "administrator", "changing a role")
        if role not in ROLES:
            raise SigverifyError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
        op = self._live(username)
        if op.role == "administrator" and role != "administrator" and self._active_admins() <= 1:
            raise SigverifyError("the last administrator cannot lose the role: make another administrator first")
        self._update(op.id, "role = ?", (role,))
        self.log(actor, "role_changed", details={"operator_id": op.id, "username": op.username, "old": op.role, "new": role})
        return self.require(op.id)

    def set_password(self, actor: Operator, username: str, password: str) -> None:
        op = self._live(username)
        if actor is None or actor.id != op.id:
            require_role(actor, "administrator", "resetting another operator's password")
        _check_password(password)
        self._update(op.id, "password_hash = ?, failed_attempts = 0", (hash_password(password),))
        self.log(actor, "password_changed", details={"operator_id": op.id, "username": op.username})

    def lock(self, actor: Operator, username: str, reason: str = "") -> Operator:
        require_role(actor, "administrator", "locking an account")
        op = self._live(username)
        if op.role == "administrator" and self._active_admins() <= 1:
            raise SigverifyError("the last active administrator cannot be locked")
        self._update(op.id, "locked = 1")
        self._end_sessions(op.id)
        self.log(actor, "account_locked", reason=reason, details={"operator_id": op.id, "username": op.username})
        return self.require(op.id)

    def unlock(self, actor: Operator, username: str, reason: str = "") -> Operator:
        require_role(actor, "administrator", "unlocking an account")
        op = self._live(username)
        self._update(op.id, "locked = 0, failed_attempts = 0, last_failed_utc = NULL")
        self.log(actor, "account_unlocked", reason=reason, details={"operator_id": op.id, "username": op.username})
        return self.require(op.id)

    def remove(self, actor: Operator, username: str, reason: str = "") -> Operator:
        """Take an account out of use. The row stays (marked removed) so every audit record that names
        it still resolves; the name is never given to anyone else."""
        require_role(actor, "administrator", "removing an operator")
        op = self._live(username)
        if op.id == actor.id:
            raise SigverifyError("you cannot remove your own account")
        if op.role == "administrator" and self._active_admins() <= 1:
            raise SigverifyError("the last administrator cannot be removed")
        self._update(op.id, "removed_utc = ?", (self.now(),))
        self._end_sessions(op.id)
        self.log(actor, "operator_removed", reason=reason, details={"operator_id": op.id, "username": op.username})
        return self.require(op.id)

    def _live(self, username: str) -> Operator:
        op = self.require(username)
        if op.removed_utc:
            raise SigverifyError(f"operator {op.username!r} was removed on {op.removed_utc[:10]}")
        return op

    # ---- sign-in --------------------------------------------------------------------------------
    def retry_after(self, op: Operator) -> float:
        """Seconds before the next sign-in attempt of ``op`` is accepted (0 = now)."""
        n = op.failed_attempts
        if n < FREE_ATTEMPTS:
            return 0.0
        r = self._fetch("id = ?", (op.id,))
        last = parse_utc(r["last_failed_utc"]) if r["last_failed_utc"] else 0.0
        delay = min(BASE_DELAY_S * 2 ** (n - FREE_ATTEMPTS), MAX_DELAY_S)
        return max(0.0, last + delay - self.clock())

    def sign_in(self, username: str, password: str, source: str = "gui") -> Session:
        """Check the password and open a session. Wrong passwords, unknown names, removed and locked
        accounts raise ``AccessDenied`` (each attempt is written to the event log)."""
        name = (username or "").strip()
        op = self.get(name) if name else None
        if op is None or op.removed_utc:
            _burn_time(password or "")
            self.log(
                None,
                "signin_failed",
                details={
                    "username": name[:64],
                    "why": "unknown operator" if op is None else "removed operator",
                    "source": source,
                },
            )
            raise AccessDenied("wrong user name or password")
        if op.locked:
            self.log(op, "signin_refused", details={"why": "account locked", "source": source})
            raise AccessDenied(f"the account {op.username!r} is locked: ask an administrator to unlock it")
        wait = self.retry_after(op)
        if wait > 0:
            self.log(op, "signin_throttled", details={"retry_after_s": round(wait, 1), "source": source})
            raise SignInThrottled(f"too many wrong passwords: try again in {int(wait + 0.999)} s", wait)
        r = self._fetch("id = ?", (op.id,))
        if not r["password_hash"]:
            self.log(op, "signin_refused", details={"why": "no password (single-user account)", "source": source})
            raise AccessDenied(f"{op.username!r} has no password yet: an administrator must set one")
        if not check_password(password or "", r["password_hash"]):
            n = op.failed_attempts + 1
            lock = n >= LOCK_AFTER
            self._update(op.id, "failed_attempts = ?, last_failed_utc = ?, locked = ?", (n, self.now(), int(lock or op.locked)))
            self.log(op, "signin_failed", details={"failed_attempts": n, "source": source})
            if lock:
                self.log(op, "account_locked", reason=f"{n} wrong passwords in a row", details={"operator_id": op.id})
                raise AccessDenied(
                    f"wrong password; after {n} wrong passwords in a row the account {op.username!r}"
                    " is locked: ask an administrator to unlock it"
                )
            raise AccessDenied("wrong user name or password")
        self._update(op.id, "failed_attempts = 0, last_failed_utc = NULL")
        op = self.require(op.id)
        sess = self._open_session(op, source)
        self.log(op, "signin", details={"source": source})
        return sess

    def _open_session(self, op: Operator, source: str, hours: float = CLI_SESSION_HOURS) -> Session:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        created, expires = utc_text(now), utc_text(now + hours * 3600)
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT INTO operator_sessions (token_sha256, operator_id, source, created_utc, expires_utc) VALUES (?,?,?,?,?)",
                (_token_digest(token), op.id, source, created, expires),
            )
        return Session(op, token, source, created, expires)

    def session_operator(self, token: str) -> Operator:
        """The operator of a live session token; ``AccessDenied`` for unknown, ended or expired tokens
        and for operators removed or locked since."""
        tok = (token or "").strip()
        if not tok:
            raise AccessDenied("not signed in: run `sigverify-cli operator login` (or set SIGVERIFY_TOKEN)")
        with self._lock:
            r = self._conn.execute(
                "SELECT operator_id, expires_utc, ended_utc FROM operator_sessions WHERE token_sha256 = ?", (_token_digest(tok),)
            ).fetchone()
        if r is None:
            raise AccessDenied("unknown session token: sign in again (`sigverify-cli operator login`)")
        if r[2] is not None:
            raise AccessDenied("this session was signed out: sign in again")
        if parse_utc(r[1]) <= self.clock():
            raise AccessDenied("the session has expired: sign in again")
        op = self.require(int(r[0]))
        return require_role(op, "clerk", "using sigverify")

    def sign_out(self, token: str | None = None, operator: Operator | None = None, source: str = "gui") -> None:
        if token:
            with self._lock:
                r = self._conn.execute(
                    "SELECT operator_id FROM operator_sessions WHERE token_sha256 = ?", (_token_digest(token),)
                ).fetchone()
            with self._lock, self._conn:
                self._conn.execute(
                    "UPDATE operator_sessions SET ended_utc = ? WHERE token_sha256 = ? AND ended_utc IS NULL",
                    (self.now(), _token_digest(token)),
                )
            if r is not None and operator is None:
                operator = self.get(int(r[0]))
        if operator is not None:
            self.log(operator, "signout", details={"source": source})

    def _end_sessions(self, oid: int) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE operator_sessions SET ended_utc = ? WHERE operator_id = ? AND ended_utc IS NULL", (self.now(), oid)
            )

    # ---- event log ------------------------------------------------------------------------------
    def log(
        self,
        actor: Operator | None,
        event: str,
        case_id: int | None = None,
        customer_id: str | None = None,
        reason: str = "",
        details: dict | None = None,
    ) -> int:
        """Append one event (append-only table). ``actor`` None = nobody signed in (failed sign-ins)."""
        with self._lock, self._conn:
            cur = self._conn.execute(
                "INSERT INTO operator_events (time_utc, operator_id, operator, event, case_id, customer_id, reason,"
                " details) VALUES (?,?,?,?,?,?,?,?)",
                (
                    self.now(),
                    None if actor is None else actor.id,
                    "" if actor is None else actor.username,
                    event,
                    case_id,
                    customer_id,
                    (reason or "").strip(),
                    json.dumps(details or {}, default=str),
                ),
            )
            return int(cur.lastrowid)

    def events(
        self, case_id: int | None = None, event: str | None = None, operator_id: int | None = None, limit: int | None = None
    ) -> list[OperatorEvent]:
        q, args = "SELECT * FROM operator_events WHERE 1=1", []
        for col, val in (("case_id", case_id), ("event", event), ("operator_id", operator_id)):
            if val is not None:
                q += f" AND {col} = ?"
                args.append(val)
        q += " ORDER BY id"
        if limit:
            q = f"SELECT * FROM ({q.replace(' ORDER BY id', ' ORDER BY id DESC')} LIMIT {int(limit)}) ORDER BY id"
        with self._lock:
            cur = self._conn.execute(q, args)
            cur.row_factory = sqlite3.Row
            rows = cur.fetchall()
        return [
            OperatorEvent(
                int(r["id"]),
                r["time_utc"],
                r["operator_id"],
                r["operator"],
                r["event"],
                r["case_id"],
                r["customer_id"],
                r["reason"],
                json.loads(r["details"]),
            )
            for r in rows
        ]

    # ---- per-customer threshold overrides ---------------------------------------------------------
    def set_threshold_override(self, actor: Operator, customer_id: str, scale: float, reason: str) -> ThresholdOverride:
        """A supervisor's multiplier on a customer's thresholds (bounded, reason required); 1.0 clears it."""
        require_role(actor, "supervisor", "a per-customer threshold override")
        lo, hi = OVERRIDE_LIMITS
        try:
            scale = float(scale)
        except (TypeError, ValueError) as exc:
            raise SigverifyError(f"the threshold multiplier must be a number (got {scale!r})") from exc
        if not lo <= scale <= hi:
            raise SigverifyError(f"the threshold multiplier must be between {lo} and {hi} (got {scale})")
        if not (reason or "").strip():
            raise SigverifyError("a reason is required for a threshold override")
        cid = (customer_id or "").strip()
        if not cid:
            raise SigverifyError("a customer account id is required")
        old = self.threshold_override(cid)
        with self._lock, self._conn:
            cur = self._conn.execute(
                "INSERT INTO threshold_overrides (customer_id, scale, reason, operator_id,"
                " operator, time_utc) VALUES (?,?,?,?,?,?)",
                (cid, scale, reason.strip(), actor.id, actor.username, self.now()),
            )
            oid = int(cur.lastrowid)
        self.log(
            actor,
            "threshold_override",
            customer_id=cid,
            reason=reason,
            details={"old": None if old is None else old.scale, "new": scale, "override_id": oid},
        )
        return self._overrides(cid)[-1]

    def _overrides(self, customer_id: str) -> list[ThresholdOverride]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, customer_id, scale, reason, operator_id, operator, time_utc FROM"
                " threshold_overrides WHERE customer_id = ? ORDER BY id",
                (customer_id,),
            ).fetchall()
        return [ThresholdOverride(int(r[0]), r[1], float(r[2]), r[3], int(r[4]), r[5], r[6]) for r in rows]

    def threshold_override(self, customer_id: str | None) -> ThresholdOverride | None:
        """The override in force for a customer (None when none or cleared)."""
        if not customer_id:
            return None
        hist = self._overrides(customer_id)
        return hist[-1] if hist and abs(hist[-1].scale - 1.0) > 1e-12 else None

    def threshold_history(self, customer_id: str) -> list[ThresholdOverride]:
        return self._overrides(customer_id)

    # ---- questioned images of cases ---------------------------------------------------------------
    def put_case_image(self, verification_id: int, file_name: str, data: bytes, digest: str) -> bool:
        """Keep a case's questioned image (the first one stored wins). False when one was already kept."""
        with self._lock, self._conn:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO case_images (verification_id, file_name, image,"
                " image_sha256, stored_utc) VALUES (?,?,?,?,?)",
                (int(verification_id), file_name, data, digest, self.now()),
            )
            return cur.rowcount == 1

    def case_image(self, verification_id: int) -> tuple[str, bytes, str] | None:
        """(file name, image bytes, SHA-256 as in the audit record) or None."""
        with self._lock:
            r = self._conn.execute(
                "SELECT file_name, image, image_sha256 FROM case_images WHERE verification_id = ?", (int(verification_id),)
            ).fetchone()
        return None if r is None else (r[0], bytes(r[1]), r[2])


def _check_username(name: str) -> str:
    name = (name or "").strip()
    if not _USERNAME_RE.match(name):
        raise SigverifyError("a user name is 1-64 letters, digits, '.', '_', '-' or '@' (no spaces)")
    return name


def _check_password(pw: str) -> None:
    if len(pw or "") < MIN_PASSWORD_LEN:
        raise SigverifyError(f"a password needs at least {MIN_PASSWORD_LEN} characters")


__all__ = [
    "OperatorStore",
    "Operator",
    "Session",
    "OperatorEvent",
    "ThresholdOverride",
    "AccessDenied",
    "SignInThrottled",
    "require_role",
    "hash_password",
    "check_password",
    "ROLES",
    "MODES",
    "OVERRIDE_LIMITS",
    "FREE_ATTEMPTS",
    "LOCK_AFTER",
    "local_user_name",
]
