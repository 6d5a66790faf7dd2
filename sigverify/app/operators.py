"""Who is working: sign-in for the GUI and the CLI, role checks, audited setting changes, per-customer
threshold overrides applied to a decision (Qt-free).

- GUI: ``OperatorStore.sign_in`` (or the single-user operator), ``require_role`` before a
  verdict-changing setting, ``record_setting_change`` after it.
- CLI: ``cli_login`` writes a session token file (``session.token`` in the user data folder, owner
  read/write only); every later command resolves the operator with ``resolve_cli_operator``: the
  ``SIGVERIFY_TOKEN`` environment variable first, else the token file. Unknown, expired, signed-out
  tokens, removed and locked operators are refused (``AccessDenied``, exit code 9). In single-user mode
  (or before the first-run choice) the one local operator is used and no token is needed.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from sigverify.errors import SigverifyError
from sigverify.store.operators import OVERRIDE_LIMITS, ROLES, AccessDenied, Operator, OperatorStore, Session, require_role

TOKEN_ENV = "SIGVERIFY_TOKEN"
TOKEN_FILE_NAME = "session.token"

#: settings that change verdicts: only a supervisor or an administrator may change them
VERDICT_SETTINGS = {
    "metric": "the distance metric",
    "aggregate": "the mean / minimum aggregate",
    "adapt_to_person": "per-person thresholds",
    "threshold_policy": "the threshold policy",
    "active_model": "the active model",
    "threshold_override": "a per-customer threshold override",
    "finetune": "fine-tuning a model",
}


def open_store(library) -> OperatorStore:
    """The operator store of a ``Library`` (same database, connection and lock)."""
    return OperatorStore.for_library(library)


def token_file() -> Path:
    from sigverify.paths import user_data_dir

    return user_data_dir() / TOKEN_FILE_NAME


def cli_login(store: OperatorStore, username: str, password: str) -> Session:
    """Sign in for the command line and keep the token in the user data folder (mode 0600)."""
    if store.mode == "single":
        raise SigverifyError("this is a single-user install: no sign-in is needed")
    if store.mode is None:
        raise SigverifyError("no operators are set up yet: run `sigverify-cli operator setup` first")
    sess = store.sign_in(username, password, source="cli")
    from sigverify.atomic import write_text_atomic

    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, sess.token + "\n")
    try:
        os.chmod(path, 0o600)
    except OSError:  # pragma: no cover - file systems without modes
        pass
    return sess


def current_token() -> str | None:
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    p = token_file()
    try:
        return p.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def cli_logout(store: OperatorStore) -> Operator | None:
    tok = current_token()
    op = None
    if tok:
        try:
            op = store.session_operator(tok)
        except AccessDenied:
            op = None
        store.sign_out(tok, op, source="cli")
    p = token_file()
    if p.exists() and not os.environ.get(TOKEN_ENV):
        p.unlink()
    return op


def resolve_cli_operator(store: OperatorStore, explicit: str | None = None) -> Operator:
    """The operator a CLI command runs as. ``explicit`` (``--operator``) must name that same operator:
    it can no longer be used to write another name into the audit trail."""
    if store.mode in (None, "single"):
        op = store.single_operator()
    else:
        op = store.session_operator(current_token() or "")
    if explicit and explicit.strip().lower() != op.username.lower():
        known = store.get(explicit.strip())
        if known is None:
            raise AccessDenied(f"unknown operator {explicit.strip()!r}: the audit trail names signed-in operators only")
        raise AccessDenied(
            f"--operator {explicit.strip()!r} is not the signed-in operator ({op.username}); sign in as that operator instead"
        )
    return op


def require_setting_role(operator: Operator | None, key: str) -> Operator:
    """``require_role`` for a setting: verdict-changing settings need the supervisor role, others clerk."""
    if key in VERDICT_SETTINGS:
        return require_role(operator, "supervisor", f"changing {VERDICT_SETTINGS[key]}")
    return require_role(operator, "clerk", f"changing {key}")


def record_setting_change(store: OperatorStore, operator: Operator | None, key: str, old, new, reason: str = "") -> int | None:
    """Check the role for ``key`` and append a ``setting_changed`` event (None when nothing changed)."""
    op = require_setting_role(operator, key)
    if old == new:
        return None
    return store.log(op, "setting_changed", reason=reason, details={"key": key, "old": old, "new": new})


def threshold_scale(store: OperatorStore | None, customer_id: str | None) -> float:
    """The supervisor's threshold multiplier in force for a customer (1.0 when none)."""
    if store is None or not customer_id:
        return 1.0
    ov = store.threshold_override(customer_id)
    return 1.0 if ov is None else float(ov.scale)


def apply_threshold_override(decision, calibration, scale: float, reason: str = ""):
    """A ``ReferenceDecision`` with its verdict retaken on thresholds multiplied by ``scale`` (on top of
    the per-person scale). ``scale`` 1.0 returns the decision unchanged. The gauge draws
    ``verdict.accept`` / ``verdict.reject``, so the moved zones show there."""
    from sigverify.verify.calibration import verdict_for

    lo, hi = OVERRIDE_LIMITS
    if not lo <= scale <= hi:
        raise SigverifyError(f"threshold multiplier {scale} is outside {lo}..{hi}")
    if abs(scale - 1.0) < 1e-12:
        return decision
    total = float(decision.person_scale) * float(scale)
    v = verdict_for(decision.verdict.distance, calibration, total)
    note = f"supervisor threshold override x{scale:.2f}" + (f" ({reason})" if reason else "")
    out = replace(decision, verdict=v, warnings=[*decision.warnings, note])
    try:
        out.threshold_override = float(scale)  # read by the report and the gauge caption
    except AttributeError:  # pragma: no cover - slotted dataclass
        pass
    return out


__all__ = [
    "open_store",
    "case_options",
    "bind_cli_operator",
    "cli_login",
    "cli_logout",
    "resolve_cli_operator",
    "current_token",
    "token_file",
    "require_role",
    "require_setting_role",
    "record_setting_change",
    "threshold_scale",
    "apply_threshold_override",
    "VERDICT_SETTINGS",
    "TOKEN_ENV",
    "ROLES",
    "AccessDenied",
]


def bind_cli_operator(library, explicit: str | None = None) -> Operator:
    """Resolve the CLI's operator for ``library`` and make its audit log write that operator's id."""
    op = resolve_cli_operator(open_store(library), explicit)
    library.audit.operator = op.username
    return op


def case_options(library, customer_id: str | None) -> dict:
    """Decision options for a library customer's case: ``{"threshold_scale": s}`` when a supervisor's
    override is in force, else ``{}``. Pass them to ``sigverify.app.case.build_case``."""
    s = threshold_scale(open_store(library), customer_id)
    return {"threshold_scale": s} if s != 1.0 else {}
