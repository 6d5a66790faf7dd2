"""Sign-in in the GUI: first-run choice, sign-in dialog (wrong passwords, throttling), idle lock, sign-out,
the signed-in operator in the audit trail, the questioned image kept with the case, File > Export case
report."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from helpers import SMALL, write_sig  # noqa: E402

from sigverify.store.library import Library  # noqa: E402
from sigverify.store.operators import FREE_ATTEMPTS, AccessDenied, OperatorStore  # noqa: E402

PW = "correct horse 1"
TIMEOUT = 30000


def multi_user(db):
    with Library(db) as lib:
        st = OperatorStore.for_library(lib)
        admin = st.setup_multi_user("admin", PW, "Ada Admin")
        st.add(admin, "clerk1", PW, "clerk", "Carl Clerk")
        st.add(admin, "super1", PW, "supervisor", "Sue Super")


@pytest.fixture
def window(library_window):
    return library_window  # tests/gui/conftest.py


def answer(monkeypatch, *steps):
    """Each modal dialog the UI opens is answered by the next step (a function of the dialog)."""
    from sigverify.gui import signin

    seen = []
    todo = list(steps)

    def fake_exec(self, dlg):
        seen.append(type(dlg).__name__)
        return todo.pop(0)(dlg) if todo else False

    monkeypatch.setattr(signin.OperatorUI, "exec_dialog", fake_exec)
    return seen


def sign_in(user, pw=PW):
    def step(dlg):
        dlg.user.setText(user)
        dlg.password.setText(pw)
        return dlg.try_sign_in()

    return step


def test_first_run_single_user(window, monkeypatch):
    from sigverify.gui.signin import install_operator_ui

    def choose_single(dlg):
        dlg.single.setChecked(True)
        return dlg.try_accept()

    seen = answer(monkeypatch, choose_single)
    ui = install_operator_ui(window)
    assert seen == ["FirstRunDialog"] and ui is not None
    assert ui.store.mode == "single" and ui.operator.role == "administrator"
    assert window.library_controller.library.audit.operator == ui.operator.username
    assert not window.library_controller.actions["operator"].isVisible()  # no free-text names
    assert not ui.actions["signout"].isEnabled() and ui.actions["queue"].isEnabled()
    assert "Signed in:" in ui.actions["who"].text()


def test_first_run_multi_user_then_sign_in(window, monkeypatch):
    from sigverify.gui.signin import install_operator_ui

    def choose_multi(dlg):
        dlg.multi.setChecked(True)
        dlg.user.setText("boss")
        dlg.password.setText(PW)
        dlg.confirm.setText(PW + "x")
        assert not dlg.try_accept() and "differ" in dlg.error.text()
        dlg.confirm.setText(PW)
        return dlg.try_accept()

    seen = answer(monkeypatch, choose_multi, sign_in("boss"))
    ui = install_operator_ui(window)
    assert seen == ["FirstRunDialog", "SignInDialog"] and ui.operator.username == "boss"
    assert ui.store.mode == "multi" and [e.event for e in ui.store.events()][-1] == "signin"


def test_no_first_run_skips_only_the_choice_and_stores_nothing(window, monkeypatch, db):
    """--no-first-run / SIGVERIFY_NO_FIRST_RUN (screenshots, kiosk): no first-run dialog on a fresh library,
    the local operator for this start only (the next normal start still asks); sign-in stays required."""
    from sigverify.gui.app import build_parser, no_first_run
    from sigverify.gui.signin import install_operator_ui

    seen = answer(monkeypatch)  # any dialog shown would be recorded
    ui = install_operator_ui(window, first_run=False)
    assert seen == [] and ui is not None and ui.operator.role == "administrator"
    assert ui.store.mode is None  # no choice made: the next normal start shows the first-run dialog
    assert window.library_controller.library.audit.operator == ui.operator.username
    assert [e.details.get("no_first_run") for e in ui.store.events(event="signin")] == [True]
    ui.close()
    assert no_first_run(build_parser().parse_args(["--no-first-run"]))
    monkeypatch.setenv("SIGVERIFY_NO_FIRST_RUN", "1")
    assert no_first_run(build_parser().parse_args([]))
    monkeypatch.setenv("SIGVERIFY_NO_FIRST_RUN", "0")
    assert not no_first_run(build_parser().parse_args([]))


def test_no_first_run_still_asks_for_the_password_on_a_shared_install(window, monkeypatch, db):
    from sigverify.gui.signin import install_operator_ui

    multi_user(db)
    seen = answer(monkeypatch, sign_in("clerk1"))
    ui = install_operator_ui(window, first_run=False)
    assert seen == ["SignInDialog"] and ui.operator.username == "clerk1"


def test_cancelled_sign_in_quits(window, monkeypatch, db):
    from sigverify.gui.signin import install_operator_ui

    multi_user(db)
    answer(monkeypatch, lambda dlg: False)
    assert install_operator_ui(window) is None


def test_sign_in_dialog_wrong_passwords_throttle(qtbot, db):
    from sigverify.gui.signin import SignInDialog

    multi_user(db)
    with Library(db) as lib:
        st = OperatorStore.for_library(lib)
        dlg = SignInDialog(st)
        qtbot.addWidget(dlg)
        dlg.user.setText("clerk1")
        for _ in range(FREE_ATTEMPTS):
            dlg.password.setText("wrong password")
            assert not dlg.try_sign_in()
            assert "wrong user name or password" in dlg.error.text() and dlg.password.text() == ""
        dlg.password.setText(PW)
        assert not dlg.try_sign_in()  # throttled: the right password must wait too
        assert "try again in" in dlg.error.text() and not dlg.sign_in_button.isEnabled()
        assert dlg.session is None
        assert [e.event for e in st.events(operator_id=st.require("clerk1").id)].count("signin_failed") == FREE_ATTEMPTS


def test_idle_lock_hides_the_window_and_asks_again(window, monkeypatch, db):
    from sigverify.gui.signin import IdleWatcher, install_operator_ui

    multi_user(db)
    hidden = []

    def unlock(dlg):
        hidden.append(window.centralWidget().isHidden())
        assert dlg.user.text() == "clerk1" and "locked" in dlg.windowTitle()
        return sign_in("clerk1")(dlg)

    answer(monkeypatch, sign_in("clerk1"), unlock)
    ui = install_operator_ui(window)
    assert ui.operator.username == "clerk1"
    t = [0.0]
    w = IdleWatcher(5, clock=lambda: t[0])
    fired = []
    w.idle.connect(lambda: fired.append(1))
    t[0] = 299
    assert not w.check()
    t[0] = 301
    assert w.check() and fired == [1] and not w.check()  # once until re-armed
    w.stop()
    assert ui.lock()
    assert hidden == [True] and not window.centralWidget().isHidden()
    assert [e.event for e in ui.store.events()][-2:] == ["idle_lock", "signin"]


def test_lock_not_unlocked_closes(window, monkeypatch, db):
    from sigverify.gui.signin import install_operator_ui

    multi_user(db)
    answer(monkeypatch, sign_in("clerk1"), lambda dlg: False)
    ui = install_operator_ui(window)
    window.show()
    assert not ui.lock()
    assert not window.isVisible() and ui.store.events()[-1].event == "signout"


def test_sign_out_hands_over(window, monkeypatch, db):
    from sigverify.gui.signin import install_operator_ui

    multi_user(db)
    answer(monkeypatch, sign_in("clerk1"), sign_in("super1"))
    ui = install_operator_ui(window)
    assert ui.sign_out() and ui.operator.username == "super1"
    assert window.library_controller.library.audit.operator == "super1"
    assert ui.actions["queue"].isEnabled()


def test_non_interactive_needs_a_token_in_multi_user_mode(window, db, monkeypatch):
    from sigverify.gui.signin import install_operator_ui

    multi_user(db)
    monkeypatch.delenv("SIGVERIFY_TOKEN", raising=False)
    with pytest.raises(AccessDenied):
        install_operator_ui(window, interactive=False)
    with Library(db) as lib:
        tok = OperatorStore.for_library(lib).sign_in("clerk1", PW, "cli").token
    monkeypatch.setenv("SIGVERIFY_TOKEN", tok)
    assert install_operator_ui(window, interactive=False).operator.username == "clerk1"


def test_case_recorded_under_the_operator_with_image_and_report(qtbot, window, monkeypatch, db, tmp_path):
    from sigverify.gui.queue_ui import export_case_report
    from sigverify.gui.signin import install_operator_ui

    multi_user(db)
    answer(monkeypatch, sign_in("clerk1"))
    ui = install_operator_ui(window)
    ctl = window.library_controller
    with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
        ctl.load_customer("C1")
    q = write_sig(tmp_path / "q.png", "Alice Smith", 77, size=SMALL)
    with qtbot.waitSignal(window.case.case_recorded, timeout=TIMEOUT) as sig:
        window.set_questioned(str(q))
    vid = sig.args[0]
    assert ctl.library.audit.get(vid).operator == "clerk1"
    kept = ui.store.case_image(vid)
    assert kept is not None and kept[1] == q.read_bytes()
    export = ui.actions["export"]
    assert export in window.menu("file").actions()
    out = export_case_report(ui, vid, path=str(tmp_path / "case.pdf"))
    assert out and (tmp_path / "case.pdf").read_bytes().startswith(b"%PDF-")


def test_verdict_settings_need_a_supervisor_and_are_recorded(window, monkeypatch, db):
    from PySide6.QtWidgets import QMessageBox

    from sigverify.gui.signin import install_operator_ui

    multi_user(db)
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    answer(monkeypatch, sign_in("clerk1"), sign_in("super1"))
    ui = install_operator_ui(window)
    cmp = window.comparison
    assert not cmp.confirm_verdict_change("the distance metric", "use the cosine distance")
    assert "supervisor role" in shown[-1] and ui.store.events(event="setting_changed") == []
    assert ui.sign_out() and ui.operator.username == "super1"
    assert cmp.confirm_verdict_change("the model", "switch to mine.safetensors")
    e = ui.store.events(event="setting_changed")[-1]
    assert e.operator == "super1" and e.details["key"] == "active_model" and "mine.safetensors" in e.details["new"]


def test_threshold_override_moves_the_gauge(qtbot, window, monkeypatch, db, tmp_path):
    from sigverify.gui.signin import install_operator_ui

    multi_user(db)
    answer(monkeypatch, sign_in("clerk1"))
    ui = install_operator_ui(window)
    ctl = window.library_controller
    gauge = window.verdict_panel.gauge
    accepts = []
    for k, scale in enumerate((None, 1.2)):
        if scale is not None:
            ui.store.set_threshold_override(ui.store.require("super1"), "C1", scale, "tremor")
        with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
            ctl.load_customer("C1")
        q = write_sig(tmp_path / f"q{k}.png", "Alice Smith", 70 + k, size=SMALL)
        with qtbot.waitSignal(window.case.case_recorded, timeout=TIMEOUT) as sig:
            window.set_questioned(str(q))
        accepts.append(gauge.thresholds()[0])
        rec = ctl.library.audit.get(sig.args[0])
        assert rec.threshold_accept == pytest.approx(accepts[-1])
    assert accepts[1] == pytest.approx(accepts[0] * 1.2, rel=1e-5)
    assert "threshold override x1.20" in window.verdict_panel.details.text()


def test_manage_operators_dialog(window, monkeypatch, db):
    from sigverify.gui.signin import install_operator_ui

    multi_user(db)
    answer(monkeypatch, sign_in("admin"))
    ui = install_operator_ui(window)
    assert ui.actions["operators"].isEnabled()
    dlg = ui.manage_operators()
    assert dlg.table.rowCount() == 3
    dlg.new_user.setText("clerk9")
    dlg.new_password.setText("short")
    assert not dlg.add_operator() and "at least 8" in dlg.error.text()
    dlg.new_password.setText(PW)
    dlg.new_role.setCurrentText("supervisor")
    assert dlg.add_operator() and ui.store.require("clerk9").role == "supervisor"
    row = next(i for i, o in enumerate(dlg.ops) if o.username == "clerk1")
    dlg.table.selectRow(row)
    assert dlg.act("lock") and ui.store.require("clerk1").locked
    assert dlg.act("unlock") and not ui.store.require("clerk1").locked
    dlg.ask_text = lambda *a, **k: "left the bank"
    assert dlg.act("remove") and ui.store.require("clerk1").status() == "removed"
    assert dlg.table.rowCount() == 4  # removed operators stay listed
    dlg.table.selectRow(next(i for i, o in enumerate(dlg.ops) if o.username == "admin"))
    dlg.role_box.setCurrentText("clerk")
    assert not dlg.act("role") and "last administrator" in dlg.error.text()
