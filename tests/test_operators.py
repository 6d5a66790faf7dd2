"""Operators, roles, sign-in, rate limits, locks, sessions, the event log and threshold overrides."""

from __future__ import annotations

import sqlite3

import pytest

from sigverify.app import operators as appops
from sigverify.errors import SigverifyError
from sigverify.store.library import Library
from sigverify.store.operators import (
    FREE_ATTEMPTS,
    LOCK_AFTER,
    AccessDenied,
    OperatorStore,
    SignInThrottled,
    check_password,
    hash_password,
    require_role,
)

PW = "correct horse 1"


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def lib(tmp_path):
    with Library(tmp_path / "lib.sqlite3") as lib:
        yield lib


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(lib, clock):
    st = OperatorStore.for_library(lib, clock)
    admin = st.setup_multi_user("admin", PW, "Ada Admin")
    st.add(admin, "clerk1", PW, "clerk", "Carl Clerk")
    st.add(admin, "super1", PW, "supervisor", "Sue Super")
    return st


def test_scrypt_hash_is_salted_and_checks():
    h1, h2 = hash_password(PW), hash_password(PW)
    assert h1.startswith("scrypt$16384$8$1$") and h1 != h2  # random salt
    assert PW not in h1
    assert check_password(PW, h1) and check_password(PW, h2)
    assert not check_password(PW + "x", h1) and not check_password(PW, "garbage")


def test_password_never_stored_plain(store, lib):
    rows = lib._conn.execute("SELECT password_hash FROM operators").fetchall()
    assert len(rows) == 3 and all(r[0].startswith("scrypt$") and PW not in r[0] for r in rows)


def test_sign_in_roles_and_session(store):
    s = store.sign_in("clerk1", PW, "cli")
    assert s.operator.username == "clerk1" and s.operator.role == "clerk" and s.token
    assert store.session_operator(s.token).id == s.operator.id
    # the token is not in the database, only its digest
    assert s.token not in str(store._conn.execute("SELECT * FROM operator_sessions").fetchall())
    assert [e.event for e in store.events(operator_id=s.operator.id)][-1] == "signin"
    with pytest.raises(AccessDenied, match="supervisor role"):
        require_role(s.operator, "supervisor", "reviewing")
    assert require_role(store.require("admin"), "supervisor").username == "admin"
    store.sign_out(s.token)
    with pytest.raises(AccessDenied, match="signed out"):
        store.session_operator(s.token)
    with pytest.raises(AccessDenied, match="unknown session"):
        store.session_operator("forged-token")


def test_session_expires(store, clock):
    s = store.sign_in("clerk1", PW, "cli")
    clock.t += 13 * 3600
    with pytest.raises(AccessDenied, match="expired"):
        store.session_operator(s.token)


def test_wrong_passwords_are_audited_rate_limited_then_lock(store, clock):
    for i in range(FREE_ATTEMPTS):
        with pytest.raises(AccessDenied, match="wrong user name or password"):
            store.sign_in("clerk1", "nope-nope", "gui")
    # the next attempt must wait, even with the right password, and it does not check it
    with pytest.raises(SignInThrottled) as exc:
        store.sign_in("clerk1", PW, "gui")
    assert 4.0 < exc.value.retry_after_s <= 5.0
    clock.t += 5.1
    s = store.sign_in("clerk1", PW, "gui")  # after the wait the right password works and resets the count
    assert store.require("clerk1").failed_attempts == 0 and s.operator.username == "clerk1"
    events = [e.event for e in store.events(operator_id=s.operator.id)]
    assert events.count("signin_failed") == FREE_ATTEMPTS and "signin_throttled" in events
    # LOCK_AFTER failures in a row lock the account; the right password is refused then
    for i in range(LOCK_AFTER):
        clock.t += 400
        with pytest.raises(AccessDenied):
            store.sign_in("clerk1", "nope-nope", "gui")
    assert store.require("clerk1").locked
    clock.t += 400
    with pytest.raises(AccessDenied, match="locked"):
        store.sign_in("clerk1", PW, "gui")
    admin = store.require("admin")
    store.unlock(admin, "clerk1", "called the branch")
    assert store.sign_in("clerk1", PW, "gui").operator.username == "clerk1"


def test_unknown_user_is_audited_without_naming_an_account(store):
    with pytest.raises(AccessDenied, match="wrong user name or password"):
        store.sign_in("mallory", PW)
    e = store.events(event="signin_failed")[-1]
    assert e.operator_id is None and e.details["username"] == "mallory" and e.details["why"] == "unknown operator"


def test_locked_account_sessions_end(store):
    s = store.sign_in("clerk1", PW, "cli")
    store.lock(store.require("admin"), "clerk1", "left the bank")
    with pytest.raises(AccessDenied, match="signed out|locked"):
        store.session_operator(s.token)


def test_removed_operator_kept_and_readable(store, lib):
    s = store.sign_in("clerk1", PW, "cli")
    from sigverify.store.audit import VerificationEntry

    vid = lib.audit.append_verification(
        VerificationEntry("q.png", "ab" * 32, "m", "w", "euclidean", [0.1], 0.1, 90.0, "genuine"),
        "cli",
        operator=s.operator.username,
    )
    store.remove(store.require("admin"), "clerk1", "left")
    op = store.get("clerk1")
    assert op is not None and op.status() == "removed" and op.label == "Carl Clerk (clerk1)"
    assert lib.audit.get(vid).operator == "clerk1"  # the old record still names the account
    with pytest.raises(AccessDenied):
        store.sign_in("clerk1", PW)
    with pytest.raises(AccessDenied):
        store.session_operator(s.token)
    with pytest.raises(SigverifyError, match="taken"):  # never reused
        store.add(store.require("admin"), "clerk1", PW, "clerk")
    with pytest.raises(sqlite3.DatabaseError, match="never deleted"):
        with lib._conn:
            lib._conn.execute("DELETE FROM operators WHERE username = 'clerk1'")


def test_only_admins_manage_accounts_and_last_admin_is_kept(store):
    clerk, sup, admin = store.require("clerk1"), store.require("super1"), store.require("admin")
    for fn in (
        lambda: store.add(sup, "x1", PW),
        lambda: store.lock(clerk, "super1"),
        lambda: store.remove(sup, "clerk1"),
        lambda: store.set_role(sup, "clerk1", "supervisor"),
    ):
        with pytest.raises(AccessDenied, match="administrator"):
            fn()
    with pytest.raises(SigverifyError, match="last administrator"):
        store.set_role(admin, "admin", "clerk")
    with pytest.raises(SigverifyError, match="at least 8"):
        store.add(admin, "shorty", "abc")
    with pytest.raises(SigverifyError, match="user name"):
        store.add(admin, "two words", PW)
    assert store.set_role(admin, "clerk1", "supervisor").role == "supervisor"


def test_event_log_is_append_only(store, lib):
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        with lib._conn:
            lib._conn.execute("UPDATE operator_events SET operator = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        with lib._conn:
            lib._conn.execute("DELETE FROM operator_events")


def test_single_user_mode(lib):
    st = OperatorStore.for_library(lib)
    assert st.mode is None
    op = st.setup_single_user("jane")
    assert st.mode == "single" and op.role == "administrator" and not op.has_password
    assert appops.resolve_cli_operator(st).username == "jane"
    with pytest.raises(AccessDenied, match="unknown operator 'anyone'"):
        appops.resolve_cli_operator(st, "anyone")
    with pytest.raises(SigverifyError, match="already chosen"):
        st.setup_multi_user("admin", PW)
    with pytest.raises(AccessDenied):  # no password: cannot be signed into from elsewhere
        st.sign_in("jane", "")


def test_cli_login_token_file_and_env(store, tmp_path, monkeypatch):
    monkeypatch.setenv("SIGVERIFY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(appops.TOKEN_ENV, raising=False)
    with pytest.raises(AccessDenied, match="not signed in"):
        appops.resolve_cli_operator(store)
    s = appops.cli_login(store, "clerk1", PW)
    f = appops.token_file()
    assert f.read_text().strip() == s.token and (f.stat().st_mode & 0o777) == 0o600
    assert appops.resolve_cli_operator(store).username == "clerk1"
    assert appops.resolve_cli_operator(store, "CLERK1").username == "clerk1"
    with pytest.raises(AccessDenied, match="not the signed-in operator"):
        appops.resolve_cli_operator(store, "super1")
    with pytest.raises(AccessDenied, match="unknown operator"):
        appops.resolve_cli_operator(store, "anyone")
    s2 = store.sign_in("super1", PW, "cli")
    monkeypatch.setenv(appops.TOKEN_ENV, s2.token)  # the environment token wins over the file
    assert appops.resolve_cli_operator(store).username == "super1"
    monkeypatch.setenv(appops.TOKEN_ENV, "not-a-token")
    with pytest.raises(AccessDenied, match="unknown session"):
        appops.resolve_cli_operator(store)
    monkeypatch.delenv(appops.TOKEN_ENV)
    assert appops.cli_logout(store).username == "clerk1"
    assert not f.exists()
    with pytest.raises(AccessDenied, match="signed out|not signed in"):
        appops.resolve_cli_operator(store)


def test_verdict_settings_need_supervisor_and_are_audited(store):
    clerk, sup = store.require("clerk1"), store.require("super1")
    with pytest.raises(AccessDenied, match="supervisor role"):
        appops.record_setting_change(store, clerk, "metric", "euclidean", "cosine")
    assert appops.record_setting_change(store, clerk, "ui_scale", 1, 2) is not None  # not verdict-changing
    eid = appops.record_setting_change(store, sup, "active_model", "sigverify-base", "mine")
    e = store.events(event="setting_changed")[-1]
    assert (
        e.id == eid and e.operator_id == sup.id and e.details == {"key": "active_model", "old": "sigverify-base", "new": "mine"}
    )
    assert appops.record_setting_change(store, sup, "metric", "cosine", "cosine") is None  # no change, no event


def test_threshold_override_bounded_reasoned_and_audited(store):
    clerk, sup = store.require("clerk1"), store.require("super1")
    with pytest.raises(AccessDenied):
        store.set_threshold_override(clerk, "ACC-1", 1.1, "shaky hand")
    with pytest.raises(SigverifyError, match="between 0.8 and 1.25"):
        store.set_threshold_override(sup, "ACC-1", 1.5, "too much")
    with pytest.raises(SigverifyError, match="reason"):
        store.set_threshold_override(sup, "ACC-1", 1.1, "  ")
    ov = store.set_threshold_override(sup, "ACC-1", 1.1, "tremor after an illness")
    assert store.threshold_override("ACC-1").scale == pytest.approx(1.1) and ov.operator == "super1"
    assert appops.threshold_scale(store, "ACC-1") == pytest.approx(1.1)
    assert appops.threshold_scale(store, "ACC-2") == 1.0
    store.set_threshold_override(sup, "ACC-1", 1.0, "recovered")
    assert store.threshold_override("ACC-1") is None and len(store.threshold_history("ACC-1")) == 2
    e = store.events(event="threshold_override")
    assert [x.details["new"] for x in e] == [1.1, 1.0] and e[0].customer_id == "ACC-1"


def test_apply_threshold_override_moves_the_verdict():
    import numpy as np

    from sigverify.model.card import MetricCalibration
    from sigverify.verify.reference import verify_against_references

    cal = MetricCalibration(accept=1.0, reject=2.0, eer_threshold=1.5, score_a=4.0, score_b=1.5, ref_spread=0.0)
    q = np.array([1.05, 0.0], np.float32)
    refs = np.zeros((1, 2), np.float32)
    dec = verify_against_references(q, refs, cal, "euclidean", "mean", False)
    assert dec.verdict.zone == "refer"
    wider = appops.apply_threshold_override(dec, cal, 1.1, "tremor")
    assert wider.verdict.zone == "genuine" and wider.verdict.accept == pytest.approx(1.1)
    assert wider.verdict.reject == pytest.approx(2.2) and "override x1.10" in wider.warnings[-1]
    assert appops.apply_threshold_override(dec, cal, 1.0) is dec
    with pytest.raises(SigverifyError):
        appops.apply_threshold_override(dec, cal, 2.0)


def test_override_applied_in_library_verification(tmp_path, verifier):
    from helpers import write_sig

    from sigverify.app.library_service import LibraryService

    refs = [write_sig(tmp_path / f"r{i}.png", seed=i) for i in range(3)]
    q1, q2 = write_sig(tmp_path / "q1.png", seed=5), write_sig(tmp_path / "q2.png", seed=6)
    with Library(tmp_path / "lib.sqlite3") as lib:
        st = OperatorStore.for_library(lib)
        admin = st.setup_multi_user("admin", PW)
        sup = st.add(admin, "super1", PW, "supervisor")
        svc = LibraryService(lib, verifier)
        svc.enrol("ACC-7", refs)
        plain = svc.verify("ACC-7", q1)
        st.set_threshold_override(sup, "ACC-7", 1.2, "tremor")
        wider = svc.verify("ACC-7", q2)
        a0, a1 = plain.decision.verdict.accept, wider.decision.verdict.accept
        assert a1 == pytest.approx(a0 * 1.2, rel=1e-6)  # same specimens: same per-person scale
        assert wider.decision.threshold_override == pytest.approx(1.2)
        assert any("override x1.20" in w for w in wider.decision.warnings)
        rec = lib.audit.get(wider.audit_id)
        assert rec.threshold_accept == pytest.approx(a1) and rec.details["threshold_override"] == pytest.approx(1.2)
        assert "threshold_override" not in lib.audit.get(plain.audit_id).details
