"""Main window: drag-and-drop, paste, workers, bad inputs, views, settings, hooks, --screenshot,
a refused start-up model (fallback to the shipped model; --screenshot --model fails fast)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication

from sigverify.gui.app import main as app_main
from sigverify.gui.gauge import ZONES
from sigverify.gui.imageutil import numpy_to_qimage, qimage_to_numpy
from sigverify.gui.main_window import MainWindow
from sigverify.gui.settings import AppSettings
from sigverify.paths import samples_dir

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = samples_dir()
REFS = [str(SAMPLES / f"alice_ref{i}.png") for i in (1, 2, 3)]
Q_FORGERY = str(SAMPLES / "alice_questioned_forgery.png")
Q_GENUINE = str(SAMPLES / "alice_questioned_genuine.png")
TIMEOUT = 30000
pytestmark = pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")


@pytest.fixture
def make_window(qtbot, loaded_model):
    from sigverify.verify.service import Verifier

    wins = []

    def make(with_verifier: bool = True) -> MainWindow:
        w = MainWindow(verifier=Verifier(loaded_model, "cpu") if with_verifier else None)
        qtbot.addWidget(w)
        w.show()
        wins.append(w)
        return w

    yield make
    for w in wins:
        w.jobs.shutdown()


@pytest.fixture
def win(make_window):
    return make_window()


def drawn_signature(seed: int = 0, size=(220, 600)) -> np.ndarray:
    """A cursive-ish scribble drawn with OpenCV, RGB uint8 (dark ink on white)."""
    rng = np.random.default_rng(seed)
    img = np.full((*size, 3), 255, np.uint8)
    x = np.linspace(40, size[1] - 40, 300)
    y = size[0] / 2 + 40 * np.sin(x / 23.0 + seed) + rng.normal(0, 3, x.size).cumsum() * 0.2
    pts = np.stack([x, y], 1).astype(np.int32)
    cv2.polylines(img, [pts], False, (20, 20, 60), 3, cv2.LINE_AA)
    return img


def drop_files(widget, paths) -> bool:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = widget.rect().center()
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    ev = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)
    return ev.isAccepted()


def wait_idle(qtbot, w: MainWindow) -> None:
    qtbot.waitUntil(lambda: w.current_verifier() is not None and not w.is_busy(), timeout=TIMEOUT)


def test_drag_and_drop_onto_panes_runs_a_verification(qtbot, win):
    assert drop_files(win.ref_pane, REFS)
    wait_idle(qtbot, win)
    assert len(win.references()) == 3 and win.result() is None
    assert win.ref_pane.strip.count() == 3
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT) as blocker:
        assert drop_files(win.q_pane, [Q_FORGERY])
    res = blocker.args[0]
    assert res is win.result()
    assert res.questioned.source == Q_FORGERY and len(res.references) == 3
    assert len(res.decision.distances) == 3
    assert win.gauge.zone() == res.decision.verdict.zone in ZONES
    assert win.gauge.value() == pytest.approx(res.decision.verdict.distance)
    assert win.gauge.reference_distances() == pytest.approx(res.decision.distances)
    assert "ms" in win.last_label.text() and res.elapsed_ms > 0
    # untrained (random) weights are flagged; the shipped trained model is not
    assert win.banner.isVisible() == res.random_weights
    assert win.untrained_badge.isVisible() == res.random_weights
    assert "CPU" in win.device_label.text()
    assert res.to_dict()["random_weights"] is res.random_weights is win.current_verifier().card.random_init


def test_drop_folder_and_drops_outside_the_panes(qtbot, win, tmp_path):
    folder = tmp_path / "alice"
    folder.mkdir()
    for r in REFS:
        (folder / Path(r).name).write_bytes(Path(r).read_bytes())
    (folder / "notes.txt").write_text("not an image")
    assert drop_files(win, [folder])  # first drop on the window: the reference set
    assert "reference" in win.statusBar().currentMessage()
    wait_idle(qtbot, win)
    assert len(win.references()) == 3
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        assert drop_files(win, [Q_GENUINE])  # second drop: the questioned signature
        assert "questioned" in win.statusBar().currentMessage()
    assert win.questioned().source == Q_GENUINE


def test_paste_clipboard_image_into_focused_pane(qtbot, win):
    win.set_references(REFS)
    wait_idle(qtbot, win)
    QApplication.clipboard().setImage(numpy_to_qimage(drawn_signature(3)))
    win.q_pane.setFocus()
    qtbot.waitUntil(lambda: win.focused_pane() is win.q_pane or win.q_pane.hasFocus(), timeout=2000)
    win._last_pane = win.q_pane  # offscreen windows may not get activated; focus tracking is tested above
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT) as blocker:
        win.act_paste.trigger()
    q = blocker.args[0].questioned
    assert q.source.startswith("clipboard")
    assert q.preprocessed.stages["original"].shape == (220, 600, 3)
    assert len(win.references()) == 3


def test_paste_without_image_shows_message(qtbot, win):
    QApplication.clipboard().setText("hello")
    assert not win.q_pane.paste_from_clipboard()
    assert "clipboard" in win.q_pane.error_text()


def test_qimage_numpy_roundtrip():
    a = drawn_signature(1, (50, 80))
    assert np.array_equal(qimage_to_numpy(numpy_to_qimage(a)), a)
    rgba = QImage(10, 12, QImage.Format.Format_ARGB32)
    rgba.fill(Qt.GlobalColor.transparent)
    assert (qimage_to_numpy(rgba) == 255).all()  # transparent becomes white paper


def bad_inputs(tmp_path: Path) -> dict[str, Path]:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(Path(REFS[0]).read_bytes()[:300])  # truncated PNG
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 800), 255, np.uint8))
    text = tmp_path / "letter.docx"
    text.write_bytes(b"PK\x03\x04 this is not an image")
    huge = tmp_path / "huge.png"
    cv2.imwrite(str(huge), np.full((9000, 7000), 255, np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return {"corrupt": corrupt, "blank": blank, "unsupported": text, "huge": huge, "missing": tmp_path / "nope.png"}


def test_bad_questioned_file_shows_a_message_and_clears_the_verdict(qtbot, win, tmp_path):
    """A failed load must not leave the previous cheque's verdict up (it would read as this file's)."""
    win.set_references(REFS)
    for kind, path in bad_inputs(tmp_path).items():
        with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
            win.set_questioned(Q_GENUINE)
        assert win.verdict_panel.questioned_name() == f"Questioned: {Path(Q_GENUINE).name}"
        win.set_questioned(str(path))
        wait_idle(qtbot, win)
        msg = win.q_pane.error_text()
        assert msg and win.q_pane.message.isVisible(), kind
        assert win.result() is None and win.questioned() is None, kind
        assert win.gauge.value() is None and win.gauge.zone() is None, kind
        assert win.verdict_panel.questioned_name() == "", kind
        assert not any(b.isEnabled() for b in win.verdict_panel.decision.buttons.values()), kind
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.set_questioned(Q_GENUINE)
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    win.set_references([str(empty)])
    assert "no images" in win.ref_pane.error_text()
    assert len(win.references()) == 3
    # A reference drop where only some files are bad: the good ones are used, the rest reported.
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.set_references(REFS[:2] + [str(tmp_path / "blank.png")])
    assert len(win.references()) == 2 and "skipped" in win.ref_pane.message.text()


def test_new_request_supersedes_running_one(qtbot, win):
    win.set_references(REFS)
    wait_idle(qtbot, win)
    got = []
    win.verification_done.connect(got.append)
    win.set_questioned(Q_FORGERY)
    win.set_questioned(Q_GENUINE)  # supersedes the first before it finishes
    wait_idle(qtbot, win)
    qtbot.wait(50)
    assert [r.questioned.source for r in got] == [Q_GENUINE]


def test_cancel_keeps_the_ui_usable(qtbot, win):
    win.set_references(REFS * 4)
    assert win.ref_pane.is_busy()
    win.cancel("reference")
    assert not win.ref_pane.is_busy()
    wait_idle(qtbot, win)
    assert win.references() == []
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.set_references(REFS)
        win.set_questioned(Q_GENUINE)


def test_views_overlay_zoom_and_reference_removal(qtbot, win):
    win.set_references(REFS)
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.set_questioned(Q_FORGERY)
    assert win.ref_pane.view.has_image() and win.q_pane.view.has_image()
    win.act_toggle_view.trigger()
    assert win.view_mode() == "preprocessed" and "network input" in win.q_pane.caption.text()
    win.view_actions["overlay"].trigger()
    assert win.stack.currentWidget() is win.overlay_pane and win.overlay_pane.current_image()
    assert win.overlay_pane.combo.count() == 3
    win.set_view_mode("original")
    s0 = win.q_pane.view.current_scale()
    win.act_zoom_in.trigger()
    assert win.q_pane.view.current_scale() == pytest.approx(s0 * 1.25) and not win.q_pane.view.is_fit()
    win.act_fit.trigger()
    assert win.q_pane.view.is_fit()
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT) as blocker:
        win.ref_pane.select(1)
        win.ref_pane.remove_button.click()
    assert len(blocker.args[0].references) == 2
    win.act_clear.trigger()
    assert win.result() is None and win.gauge.zone() is None and not win.references()


def test_settings_are_remembered_across_windows(qtbot, make_window):
    w1 = make_window()
    w1.metric_actions["cosine"].trigger()
    w1.act_adapt.trigger()  # on -> off
    assert w1.current_verifier().metric == "cosine"
    w1.close()
    s = AppSettings.load()
    assert (s.metric, s.aggregate, s.adapt_to_person) == ("cosine", "mean", False)
    w2 = make_window(with_verifier=False)  # loads the model in the background, with the saved settings
    with qtbot.waitSignal(w2.verifier_changed, timeout=TIMEOUT):
        pass
    v = w2.current_verifier()
    # the decision policy is the model card's (as in the CLI): the shipped model's writer-dependent stage
    assert (v.metric, v.aggregate, v.adapt_to_person) == ("cosine", v.card.default_policy, False)
    assert w2.metric_actions["cosine"].isChecked()
    assert not w2.act_adapt.isChecked()


def test_recent_files_and_try_sample(qtbot, win):
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT) as blocker:
        win.act_sample.trigger()
    assert len(blocker.args[0].references) == 3
    assert any(r.startswith("Q\t") for r in AppSettings.load().recent)
    win.recent_menu.aboutToShow.emit()
    assert any("Questioned" in a.text() for a in win.recent_menu.actions())


def test_public_hooks(qtbot, win, tmp_path):
    lib = win.add_menu("&Library")
    acts = win.menuBar().actions()
    assert acts.index(lib.menuAction()) == acts.index(win.help_menu.menuAction()) - 1
    v = win.current_verifier()
    sigs = [v.load(p) for p in REFS[:2]]
    win.set_reference_signatures(sigs, "Alice Example (acct 0042)")
    assert win.ref_pane.title_label.text() == "Reference"  # the title is never shortened or widened
    assert "Alice Example" in win.ref_pane.subtitle_label.toolTip()
    assert win.menu("library") is lib and win.menu("model") is win.model_menu
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.set_questioned(Q_GENUINE)
    # A bad model keeps the current one and says so, without a modal dialog.
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a model")
    with qtbot.waitSignal(win.model_failed, timeout=TIMEOUT):
        win.switch_model(str(bad))
    assert win.current_verifier() is v and win.model_error.isVisible()
    # set_verifier re-embeds what is loaded and verifies again.
    from sigverify.verify.service import Verifier

    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.set_verifier(Verifier(v.model, "cpu"))
    assert win.current_verifier() is not v


def test_keyboard_shortcuts_and_mnemonics(win):
    titles = [a.text() for a in win.menuBar().actions()]
    assert titles[:5] == ["&File", "&View", "&Model", "&Settings", "&Help"]
    assert win.act_open_ref.shortcut().toString() == "Ctrl+O"
    assert win.act_paste.shortcut().toString() == "Ctrl+V"
    assert win.view_actions["overlay"].shortcut().toString() == "Ctrl+3"
    assert win.ref_pane.focusPolicy() & Qt.FocusPolicy.TabFocus


def test_screenshot_option_in_a_subprocess(tmp_path):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SIGVERIFY_SETTINGS_DIR=str(tmp_path / "s"))
    t0 = time.time()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "sigverify.gui.app",
            "--reference",
            *REFS,
            "--questioned",
            Q_FORGERY,
            "--size",
            "1280x800",
            "--screenshot",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    img = QImage(str(out))
    assert (img.width(), img.height()) == (1280, 800)  # an explicit --size is kept, even beyond the screen
    assert out.stat().st_size > 10_000 and time.time() - t0 < 60


def test_screenshot_option_fails_cleanly(tmp_path, capsys):
    out = tmp_path / "shot.png"
    assert (
        app_main(
            ["--reference", REFS[0], "--questioned", str(tmp_path / "missing.png"), "--screenshot", str(out), "--timeout", "30"]
        )
        != 0
    )
    assert "error" in capsys.readouterr().err and not out.exists()
    assert app_main(["--screenshot", str(out)]) != 0


# ------------------------------------------------------------------ a refused model at start-up
def tampered_model(tmp_path: Path, name: str = "tampered") -> Path:
    """A real model file with one byte flipped: its card's sha256 no longer matches, so it is refused."""
    from sigverify.model.weights import random_model, save_model

    m = random_model()
    p = save_model(m.network, m.card, tmp_path / f"{name}.safetensors")
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    return p


def test_screenshot_with_a_refused_model_exits_promptly_with_an_error(tmp_path):
    bad = tampered_model(tmp_path)
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SIGVERIFY_SETTINGS_DIR=str(tmp_path / "s"))
    t0 = time.monotonic()
    # --timeout 120: before the fix the process waited for it (or silently used another model)
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "sigverify.gui.app",
            "--model",
            str(bad),
            "--reference",
            *REFS,
            "--questioned",
            Q_FORGERY,
            "--screenshot",
            str(out),
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    elapsed = time.monotonic() - t0
    assert p.returncode not in (0, None), p.stdout + p.stderr
    assert "sigverify: error:" in p.stderr and bad.name in p.stderr and "refusing it" in p.stderr, p.stderr
    assert not out.exists()
    assert elapsed < 60, elapsed  # interpreter + torch import; the model failure itself ends it at once


@pytest.mark.parametrize("kind", ["tampered", "truncated", "missing", "wrong_architecture"])
def test_refused_start_up_model_falls_back_to_the_shipped_model(qtbot, tmp_path, monkeypatch, kind):
    from sigverify.model.weights import random_model, save_model

    good = random_model(seed=1)
    shipped = save_model(good.network, good.card, tmp_path / "shipped" / "base.safetensors")
    monkeypatch.setattr("sigverify.paths.default_model_path", lambda: shipped)
    if kind == "tampered":
        bad = tampered_model(tmp_path)
    elif kind == "truncated":
        bad = tampered_model(tmp_path, "truncated")
        bad.write_bytes(bad.read_bytes()[:1000])
    elif kind == "missing":
        bad = tmp_path / "gone.safetensors"
    else:  # the card claims an architecture the weights do not fit
        import json

        m = random_model()
        bad = save_model(m.network, m.card, tmp_path / "arch.safetensors")
        card = bad.with_suffix(".json")
        d = json.loads(card.read_text())
        d["embedding_dim"] = int(d.get("embedding_dim") or 128) * 2
        card.write_text(json.dumps(d))
    failed: list[str] = []
    w = MainWindow(model_path=str(bad), device="cpu")
    qtbot.addWidget(w)
    w.model_failed.connect(failed.append)
    w.show()
    try:
        with qtbot.waitSignal(w.model_fallback, timeout=TIMEOUT) as blocker:
            pass
        v = w.current_verifier()
        assert v is not None and v.model.path == shipped
        msg = blocker.args[0]
        assert f"Model {bad.name} was refused" in msg and "shipped model" in msg and "instead" in msg
        assert w.model_warning.isVisible() and bad.name in w.model_warning.text()
        assert not failed and not w.model_error.isVisible()
        assert not QApplication.activeModalWidget()  # a warning, not a dialog
        with qtbot.waitSignal(w.verification_done, timeout=TIMEOUT):  # the window works normally
            w.set_references(REFS[:2])
            w.set_questioned(Q_GENUINE)
    finally:
        w.jobs.shutdown()


def test_refused_saved_model_falls_back_to_random_weights_when_none_is_shipped(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr("sigverify.paths.default_model_path", lambda: tmp_path / "none.safetensors")
    bad = tampered_model(tmp_path)
    s = AppSettings.load()
    s.model_path = str(bad)
    s.save()
    w = MainWindow(device="cpu")  # no --model: the saved one is used
    qtbot.addWidget(w)
    w.show()
    try:
        with qtbot.waitSignal(w.model_fallback, timeout=TIMEOUT) as blocker:
            pass
        assert "UNTRAINED" in blocker.args[0] and bad.name in blocker.args[0]
        assert w.current_verifier().card.random_init and w.banner.isVisible() and w.model_warning.isVisible()
        assert AppSettings.load().model_path == str(bad)  # the user's choice is not silently rewritten
        # switching at run time still refuses without a fallback: the current model stays
        v = w.current_verifier()
        with qtbot.waitSignal(w.model_failed, timeout=TIMEOUT):
            w.switch_model(str(bad))
        assert w.current_verifier() is v and w.model_error.isVisible()
    finally:
        w.jobs.shutdown()


def test_strict_window_reports_a_refused_model_and_wait_idle_returns_at_once(qtbot, tmp_path):
    bad = tampered_model(tmp_path)
    w = MainWindow(model_path=str(bad), device="cpu", fallback=False)
    qtbot.addWidget(w)
    try:
        with qtbot.waitSignal(w.model_failed, timeout=TIMEOUT) as blocker:
            pass
        assert "refusing it" in blocker.args[0] and w.current_verifier() is None
        t0 = time.monotonic()
        assert w.wait_idle(60000) is False and w.model_unavailable()
        assert time.monotonic() - t0 < 5
    finally:
        w.jobs.shutdown()
