"""The clerk's case in the main window (issue 13): decision controls in the verdict panel on the
verdict's safe side, overrides need a reason, one record per case (re-runs shown, not recorded), an
undecided case asked about before it is replaced or the app quits, verdict settings confirmed, the
window fitting the screen with whole labels, the gauge on the model's thresholds from the start, and
the one job type (partial results, cancel, exception objects, failures on screen)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import write_sig
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QApplication

from sigverify.gui.main_window import MainWindow, fit_size
from sigverify.paths import samples_dir

SAMPLES = samples_dir()
REFS = [str(SAMPLES / f"alice_ref{i}.png") for i in (1, 2, 3)]
Q_FORGERY = str(SAMPLES / "alice_questioned_forgery.png")
Q_GENUINE = str(SAMPLES / "alice_questioned_genuine.png")
TIMEOUT = 30000
SAFE = {"genuine": "accept", "refer": "refer", "forgery": "reject"}


@pytest.fixture
def win(audited_window):
    return audited_window  # tests/gui/conftest.py


def verify(qtbot, w, q, refs=REFS):
    with qtbot.waitSignal(w.verification_done, timeout=TIMEOUT) as b:
        if refs is not None:
            w.set_references(refs)
        w.set_questioned(q)
    assert w.wait_idle(TIMEOUT)
    return b.args[0]


def records(w):
    """Verification records (the audit notes of setting changes are not cases)."""
    from sigverify.app.settings_audit import is_setting_note

    return sum(1 for r in w.case.library.audit.records() if not is_setting_note(r))


def test_enter_records_the_verdicts_safe_side_and_nothing_else(qtbot, win):
    res = verify(qtbot, win, Q_FORGERY)
    d = win.verdict_panel.decision
    safe = SAFE[res.decision.verdict.zone]
    assert QApplication.focusWidget() is d.buttons[safe]  # the focus follows the verdict
    for name, b in d.buttons.items():
        assert b.autoDefault() == (name == safe)  # only the safe button answers Enter
    other = next(x for x in d.buttons if x != safe)
    qtbot.keyClick(d.buttons[other], Qt.Key.Key_Return)  # Enter on an override button: nothing
    assert win.case.current.decision is None and d.in_override() is None
    with qtbot.waitSignal(win.case.decision_recorded, timeout=TIMEOUT) as b:
        qtbot.keyClick(d.buttons[safe], Qt.Key.Key_Return)
    vid, decision = b.args
    assert decision == safe
    fd = win.case.library.audit.get(vid).final_decision
    assert fd.decision == safe and not fd.overrides_verdict
    # a second Enter records nothing (the buttons are done until the next case)
    qtbot.keyClick(d.buttons[safe], Qt.Key.Key_Return)
    assert len(win.case.library.audit.get(vid).decisions) == 1
    assert not any(b.isEnabled() for b in d.buttons.values())


def test_an_override_needs_a_reason_and_never_goes_through_enter(qtbot, win):
    res = verify(qtbot, win, Q_FORGERY)
    d = win.verdict_panel.decision
    safe = SAFE[res.decision.verdict.zone]
    override = "accept" if safe != "accept" else "reject"
    d.buttons[override].click()
    assert d.in_override() == override and d.override_row.isVisible()
    assert QApplication.focusWidget() is d.reason and not d.confirm.isEnabled()
    assert not d.confirm.autoDefault() and not d.confirm.isDefault()
    qtbot.keyClick(d.reason, Qt.Key.Key_Return)  # bare Enter in the empty reason box
    assert win.case.current.decision is None
    qtbot.keyClicks(d.reason, "signature confirmed by phone")
    qtbot.keyClick(d.reason, Qt.Key.Key_Return)  # still not recorded: only "Record override" records
    assert win.case.current.decision is None
    assert not win.case.decide(override, "")  # the controller refuses an override without a reason
    with qtbot.waitSignal(win.case.decision_recorded, timeout=TIMEOUT):
        d.confirm.click()
    fd = win.case.library.audit.get(win.case.current.audit_id).final_decision
    assert fd.decision == override and fd.overrides_verdict and fd.reason == "signature confirmed by phone"


def test_escape_leaves_the_override(qtbot, win):
    res = verify(qtbot, win, Q_FORGERY)
    d = win.verdict_panel.decision
    safe = SAFE[res.decision.verdict.zone]
    d.buttons["accept" if safe != "accept" else "reject"].click()
    qtbot.keyClick(d.reason, Qt.Key.Key_Escape)
    assert d.in_override() is None and not d.override_row.isVisible()


def test_a_new_verdict_moves_the_focus_to_its_own_safe_side(qtbot, win, tmp_path):
    """The old popup kept the focus on Accept: the next forgery verdict was accepted by one Enter."""
    verify(qtbot, win, Q_GENUINE)
    d = win.verdict_panel.decision
    win.case.decide(d.safe_decision())
    for i in range(3):
        q = write_sig(tmp_path / f"other{i}.png", "Somebody Else", 40 + i)
        res = verify(qtbot, win, str(q), refs=None)
        safe = SAFE[res.decision.verdict.zone]
        assert QApplication.focusWidget() is d.buttons[safe]
        assert d.buttons[safe].isEnabled() and win.case.current.decision is None
        win.case.decide(safe)


def test_rerun_after_a_setting_or_model_change_is_shown_not_recorded(qtbot, win):
    verify(qtbot, win, Q_FORGERY)
    assert records(win) == 1
    asked = []
    win.comparison.confirm = lambda title, text: asked.append(text) or True
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.metric_actions["cosine"].trigger()
    assert asked and "re-run" in asked[0]
    assert records(win) == 1 and win.verdict_panel.rerun_label.isVisible()
    assert "Re-run" in win.verdict_panel.rerun_label.text() and "#1" in win.verdict_panel.rerun_label.text()
    assert win.comparison.setting_notes and "cosine" in win.comparison.setting_notes[-1]
    # the change is noted in the audit trail itself: chained, naming the setting and the case on screen
    from sigverify.app.settings_audit import setting_notes

    notes = setting_notes(win.case.library.audit)
    assert len(notes) == 1 and notes[0].verdict == "note" and notes[0].decisions == []
    d = notes[0].details
    assert (d["setting"], d["old"], d["new"]) == ("metric", "euclidean", "cosine")
    assert d["case_on_screen"] == win.case.current.audit_id
    assert win.case.library.audit.verify_chain().ok
    from sigverify.verify.service import Verifier

    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.set_verifier(Verifier(win.current_verifier().model, "cpu"))  # a model switch re-embeds and re-runs
    assert win.wait_idle(TIMEOUT)
    assert records(win) == 1 and win.case.current.reruns >= 2
    # the decision still goes to the one record
    win.case.decide(SAFE[win.case.current.verdict])
    assert win.case.library.audit.get(1).final_decision is not None


def test_a_declined_setting_change_changes_nothing(qtbot, win):
    verify(qtbot, win, Q_FORGERY)
    win.comparison.confirm = lambda title, text: False
    win.metric_actions["cosine"].trigger()
    assert win.current_verifier().metric == "euclidean" and win.metric_actions["euclidean"].isChecked()
    adapt = win.current_verifier().adapt_to_person
    win.act_adapt.trigger()
    assert win.current_verifier().adapt_to_person == adapt and win.act_adapt.isChecked() == adapt


def test_the_closest_reference_policy_is_gone(win):
    """It kept the thresholds fitted for the mean (more skilled forgeries shown as genuine)."""
    texts = [a.text() for a in win.menu("settings").findChildren(type(win.act_adapt))]
    assert not any("closest" in t.lower() or "(min)" in t for t in texts)
    from sigverify.gui.settings import AppSettings, qsettings

    qsettings().setValue("inference/aggregate", "min")
    assert AppSettings.load().aggregate == "mean"


def test_undecided_case_is_asked_about_before_it_is_replaced_or_the_app_quits(qtbot, win):
    verify(qtbot, win, Q_FORGERY)
    asked = []
    win.case.ask = lambda text: asked.append(text) or "back"
    win.set_questioned(Q_GENUINE)
    win.clear()
    assert len(asked) == 2 and "no decision yet" in asked[0]
    assert win.questioned().source == Q_FORGERY and win.result() is not None  # kept on screen
    assert QApplication.focusWidget() is win.verdict_panel.decision.buttons[win.verdict_panel.decision.safe_decision()]
    win.close()
    assert len(asked) == 3 and win.isVisible()  # quitting was refused: the case is still undecided
    win.case.decide(win.verdict_panel.decision.safe_decision())
    win.set_questioned(Q_GENUINE)  # decided: no question any more
    assert len(asked) == 3
    assert win.wait_idle(TIMEOUT)


def test_an_undecided_case_can_be_left(qtbot, win):
    verify(qtbot, win, Q_FORGERY)
    win.case.ask = lambda text: "leave"
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.set_questioned(Q_GENUINE)
    assert win.questioned().source == Q_GENUINE and records(win) == 2


def test_verdict_panel_names_the_questioned_file(qtbot, win):
    verify(qtbot, win, Q_FORGERY)
    assert win.verdict_panel.questioned_name() == "Questioned: alice_questioned_forgery.png"
    assert win.verdict_panel.file_label.toolTip() == Q_FORGERY


def test_gauge_shows_the_models_thresholds_before_the_first_comparison(qtbot):
    w = MainWindow()  # the model loads in the background
    qtbot.addWidget(w)
    try:
        with qtbot.waitSignal(w.verifier_changed, timeout=TIMEOUT):
            pass
        cal = w.current_verifier().calibration
        acc, rej, _ = w.gauge.thresholds()
        assert (acc, rej) == pytest.approx((cal.accept, cal.reject)) and (acc, rej) != (0.6, 0.9)
        assert w.gauge.value() is None
    finally:
        w.jobs.shutdown()


def test_only_calibrated_policies_are_offered_and_a_change_is_confirmed_and_noted(qtbot, win, monkeypatch):
    v = win.current_verifier()
    acts = win.comparison.policy_actions
    win.comparison.sync_settings_menu()
    offered = {p for p, a in acts.items() if a.isEnabled() and a.isVisible()}
    assert offered == set(v.policies) and "min" in offered  # the shipped card calibrates each of them
    for p in offered:  # each has thresholds of its own in the card
        assert v.card.decision_calibration(v.metric, p, 3)[0] is not None
    assert acts[v.aggregate].isChecked() and "default" in acts[v.card.default_policy].text()
    verify(qtbot, win, Q_FORGERY)
    asked = []
    win.comparison.confirm = lambda title, text: asked.append(text) or True
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT) as b:
        acts["min"].trigger()
    assert asked and win.current_verifier().aggregate == "min" and acts["min"].isChecked()
    res = b.args[0]
    cal, _ = v.card.decision_calibration(v.metric, "min", 3)
    assert res.decision.aggregate == "min" and res.decision.verdict.reject == pytest.approx(
        cal.reject * res.decision.person_scale, rel=0.3
    )
    assert records(win) == 1 and win.verdict_panel.rerun_label.isVisible()  # a re-run, not a new record
    from sigverify.app.settings_audit import setting_notes
    from sigverify.gui.settings import AppSettings

    (note,) = setting_notes(win.case.library.audit)
    assert note.details["setting"] == "threshold_policy" and note.details["new"] == "min"
    assert AppSettings.load().policy == "min"
    # a card without thresholds for "min": the policy is not offered
    dec = {m: {p: k for p, k in by.items() if p != "min"} for m, by in v.card.decision.items() if m in ("euclidean", "cosine")}
    monkeypatch.setattr(v.card, "decision", {**v.card.decision, **dec})
    v.aggregate = "mean"
    win.comparison.sync_settings_menu()
    assert not acts["min"].isEnabled() and not acts["min"].isVisible()
    win.comparison.set_policy("min")
    assert v.aggregate == "mean"


# ------------------------------------------------------------------------------------------ screen
def test_fit_size_stays_inside_the_available_geometry():
    assert fit_size(QSize(1366, 728)) == QSize(1280, 688)
    assert fit_size(QSize(960, 510)) == QSize(944, 470)  # 1920x1080 at 200 %, minus a task bar
    assert fit_size(QSize(2560, 1400)) == QSize(1280, 800)


def test_the_window_fits_200_percent_on_1920x1080_with_the_library(qtbot, win, tmp_path):
    """960 x 540 logical pixels: the minimum size of the whole window (library toolbar included) fits,
    so the verdict and the decision are never pushed off-screen."""
    from sigverify.gui.library_ui import install_library_ui

    ctl = install_library_ui(win, db_path=tmp_path / "lib.sqlite3")
    try:
        hint = win.minimumSizeHint()
        assert hint.width() <= 944 and hint.height() <= 500, hint
        win.resize(hint.width(), 500)
        verify(qtbot, win, Q_FORGERY)
        QApplication.processEvents()
        panel = win.verdict_panel
        for w in (panel.gauge, panel.decision, *panel.decision.buttons.values()):
            assert w.isVisible() and w.visibleRegion().boundingRect().size() == w.size(), w
        for b in panel.decision.buttons.values():  # whole words on the buttons
            assert b.width() >= b.fontMetrics().horizontalAdvance(b.text().replace("&", ""))
        t = win.ref_pane.title_label
        assert t.text() == "Reference" and t.width() >= t.fontMetrics().horizontalAdvance("Reference")
        assert ctl.search.edit.isVisible() and ctl.search.edit.width() >= 150
    finally:
        ctl.close()


def truncated_texts(window) -> list[str]:
    """Visible one-line labels and buttons whose text is wider than the widget (cut off)."""
    from PySide6.QtWidgets import QAbstractButton, QLabel

    from sigverify.gui.panes import ElidedLabel

    out = []
    for wd in window.findChildren(QLabel) + window.findChildren(QAbstractButton):
        text = wd.text().replace("&", "")
        if not wd.isVisible() or not text or "<" in text or isinstance(wd, ElidedLabel):
            continue  # rich text and elided file names (full text in the tooltip) are not cut
        if isinstance(wd, QLabel) and wd.wordWrap():
            continue
        need = max(wd.fontMetrics().horizontalAdvance(t) for t in text.split("\n"))
        if need > wd.contentsRect().width() + 1:
            out.append(f"{type(wd).__name__} {text!r}: {need} > {wd.contentsRect().width()}")
    return out


@pytest.mark.parametrize("size", [(944, 470), (1280, 688)], ids=["1920x1080@200%", "1366x768"])
def test_the_whole_app_fits_after_a_case_with_whole_labels(qtbot, win, tmp_path, size):
    """The app as started (library search, operator in the status bar) after a comparison: its minimum
    size fits the screen (200 %: 960 x 540 logical minus a task bar), the verdict, the gauge and the
    decision are wholly visible, no label or button text is cut, the gauge's labels do not overlap."""
    from sigverify.gui.library_ui import install_library_ui
    from sigverify.gui.signin import install_operator_ui

    ctl = install_library_ui(win, db_path=tmp_path / "lib.sqlite3")
    ui = install_operator_ui(win, interactive=False)
    try:
        win.fit_on_show = False
        win.resize(*size)
        verify(qtbot, win, Q_FORGERY)
        for _ in range(3):
            QApplication.processEvents()
        hint = win.minimumSizeHint()
        assert hint.width() <= size[0] and hint.height() <= size[1], hint
        assert win.size() == QSize(*size)
        assert win.toolbar.isVisible() == (size[1] >= 620)  # short windows: the View toolbar is in the menu
        panel = win.verdict_panel
        for w in (panel.gauge, panel.decision, *panel.decision.buttons.values(), panel.file_label):
            assert w.isVisible() and w.visibleRegion().boundingRect().size() == w.size(), w
        assert panel.gauge.height() >= 190 and panel.gauge.width() >= 220
        assert truncated_texts(win) == []
        g = panel.gauge
        g.grab()  # paint once: the label rectangles and the verdict block position are known
        a, b = g._label_rects
        assert not a.intersects(b)
        assert ctl.search.edit.isVisible() and ctl.search.edit.width() >= 150
    finally:
        ui.close()
        ctl.close()


def test_a_long_customer_name_does_not_widen_the_window(qtbot, win):
    before = win.minimumSizeHint().width()
    sigs = [win.current_verifier().load(p) for p in REFS]
    win.set_reference_signatures(sigs, "C0042 - " + "Maximiliane Alexandra von Hohenzollern-Sigmaringen " * 3)
    QApplication.processEvents()
    assert win.minimumSizeHint().width() <= before
    assert win.ref_pane.title_label.text() == "Reference"


# ------------------------------------------------------------------------------------------ jobs
def test_jobs_partial_results_cancel_and_errors_as_exceptions(qtbot, win, caplog):
    from sigverify.errors import ImageLoadError
    from sigverify.gui.jobs import JobRunner

    runner = JobRunner(win)
    parts, done = [], []

    def work(progress, stop):
        for i in range(3):
            progress((i + 1) / 3, f"step {i}", {"row": i})
        return "ok"

    runner.submit("a", work, done.append, on_partial=parts.append)
    assert runner.wait("a")
    assert done == ["ok"] and parts == [{"row": 0}, {"row": 1}, {"row": 2}]

    errors = []

    def bad(progress, stop):
        raise ImageLoadError("the file is truncated")

    with caplog.at_level(logging.WARNING, logger="sigverify.gui.jobs"):
        runner.submit("b", bad, done.append, errors.append)
        assert runner.wait("b")
    assert isinstance(errors[0], ImageLoadError) and "truncated" in str(errors[0])
    assert any(r.exc_info for r in caplog.records)  # logged with its traceback

    import threading

    gate = threading.Event()
    cancelled = []

    def slow(progress, stop):
        gate.wait(5)
        return "late"

    runner.submit("c", slow, done.append, on_cancel=lambda: cancelled.append(True))
    runner.cancel("c")
    gate.set()
    runner.shutdown()
    QApplication.processEvents()
    assert cancelled == [True] and "late" not in done


def test_a_background_failure_nobody_handles_is_shown_on_screen(qtbot, win):
    def boom(progress, stop):
        raise RuntimeError("worker exploded")

    win.jobs.submit("misc", boom)
    qtbot.waitUntil(win.job_error.isVisible, timeout=TIMEOUT)
    assert "worker exploded" in win.job_error.text() and "worker exploded" in win.statusBar().currentMessage()


# ------------------------------------------------------------------------------------------ fine-tuning figures
def _ev(writers, eer, eer_random=0.05):
    return SimpleNamespace(
        writers=writers, eer=eer, eer_random=eer_random, far=0.1, frr=0.1, far_random=0.0, pairs={"positive": 10, "skilled": 10}
    )


def test_fine_tuning_assessment():
    from sigverify.gui.wizard import assess_result

    assert assess_result(SimpleNamespace(before=_ev(12, 0.2), after=_ev(12, 0.15)))[0] == "ok"
    st, why = assess_result(SimpleNamespace(before=_ev(2, 0.39), after=_ev(2, 0.11)))
    assert st == "unreliable" and "only 2 held-out" in why[0]
    st, why = assess_result(SimpleNamespace(before=_ev(12, 0.15), after=_ev(12, 0.25)))
    assert st == "worse" and "worse" in why[0]
    st, why = assess_result(SimpleNamespace(before=_ev(20, 0.2), after=_ev(12, 0.1)))
    assert st == "unreliable" and "same held-out writers" in why[0]
    assert assess_result(SimpleNamespace(before=None, after=None))[0] == "unreliable"


def test_manage_models_does_not_compare_a_2_writer_figure_with_a_54_writer_one():
    from sigverify.gui.models_ui import eer_cell

    tuned = SimpleNamespace(metrics={"validation": {"after": {"eer": 0.113, "writers": 2}, "writers": 2}})
    shipped = SimpleNamespace(metrics={"test": {"all": {"eer": 0.221, "writers": 54}}})
    t, comparable_t = eer_cell(tuned, 0.113)
    s, comparable_s = eer_cell(shipped, 0.221)
    assert not comparable_t and "2 writers" in t and "too few" in t
    assert comparable_s and s == "22.1% on 54 writers"
    assert Path(__file__).exists()
