"""The signature's region on a cheque in the GUI: drawn on the original view, corrected with the crop
tool (drag a rectangle), the rectangle used in the audit record. Cheques are drawn here (synth_cheque
from sigverify.samples signatures), never dataset scans."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import signature
from PySide6.QtCore import QPoint, Qt

from sigverify.gui.crop import CROP_RGB, LOCATED_RGB, CropDialog, draw_region, shows_region
from sigverify.gui.panes import ORIGINAL, signature_display
from sigverify.imaging.synth_cheque import make_cheque
from sigverify.paths import samples_dir

REFS = [str(samples_dir() / f"alice_ref{i}.png") for i in (1, 2, 3)]
TIMEOUT = 30000


@pytest.fixture(scope="module")
def cheque(tmp_path_factory):
    d = tmp_path_factory.mktemp("cheque")
    c = make_cheque(
        signature("Alice Smith", 31, size=(260, 700)),
        [signature("Bob Jones", 7, size=(200, 560)), signature("Carla Diaz", 8, size=(200, 560))],
        401,
        layout="uk",
        stamps=1,
    )
    p = d / "cheque.png"
    cv2.imwrite(str(p), c.image[..., ::-1])
    return str(p), c


@pytest.fixture
def win(audited_window):
    return audited_window  # tests/gui/conftest.py


def test_draw_region_marks_the_rectangle_only():
    img = np.full((200, 300, 3), 255, np.uint8)
    out = draw_region(img, (50, 40, 100, 80), "located")
    assert tuple(out[40, 100]) == LOCATED_RGB and tuple(out[100, 50]) == LOCATED_RGB
    assert tuple(out[100, 100]) == (255, 255, 255) and img.min() == 255  # inside untouched, input not changed
    assert tuple(draw_region(img, (50, 40, 100, 80), "crop")[40, 100]) == CROP_RGB


def test_crop_dialog_drag_gives_the_rectangle_in_image_pixels(qtbot):
    img = np.full((600, 1200, 3), 250, np.uint8)
    dlg = CropDialog(img, (10, 10, 50, 50))
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    assert dlg.chosen() == (10, 10, 50, 50)
    v = dlg.view
    a, b = v.mapFromScene(300.0, 200.0), v.mapFromScene(900.0, 500.0)
    qtbot.mousePress(v.viewport(), Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(v.viewport(), pos=QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    qtbot.mouseMove(v.viewport(), pos=b)
    qtbot.mouseRelease(v.viewport(), Qt.MouseButton.LeftButton, pos=b)
    x, y, w, h = dlg.chosen()
    tol = 1200 / max(1, v.viewport().width()) * 3 + 2  # a few screen pixels
    assert abs(x - 300) <= tol and abs(y - 200) <= tol and abs(w - 600) <= 2 * tol and abs(h - 300) <= 2 * tol
    assert dlg.use_button.isEnabled() and "Rectangle" in dlg.size_label.text()


def test_located_region_shown_and_crop_tool_reverifies_and_is_audited(qtbot, win, cheque):
    path, c = cheque
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.set_references(REFS)
        win.set_questioned(path)
    assert win.wait_idle(TIMEOUT)
    q = win.q_pane.signature()
    pre = q.preprocessed
    assert pre.region_source == "located" and shows_region(pre)
    # (whether the automatic region is right is tests/test_locate.py's business; here: wrong -> crop)
    shown = signature_display(q, ORIGINAL)
    x, y, w, h = pre.region
    assert tuple(shown[y + h // 2, x]) == LOCATED_RGB  # the region is drawn on the original view
    assert "found on the document" in win.q_pane.info.text()
    assert win.q_pane.crop_button.isEnabled()
    # the clerk corrects the rectangle: the questioned signature is read again from it and re-verified
    sx, sy, sw, sh = c.signature_box
    rect = (max(0, sx - 20), max(0, sy - 20), sw + 40, sh + 40)
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT) as blk:
        win.q_pane.crop_chosen.emit(rect)
    assert win.wait_idle(TIMEOUT)
    res = blk.args[0]
    assert res.questioned.preprocessed.region == rect and res.questioned.preprocessed.region_source == "crop"
    assert res.questioned.source == path
    assert "cropped by hand" in win.q_pane.info.text()
    assert tuple(signature_display(res.questioned, ORIGINAL)[rect[1] + rect[3] // 2, rect[0]]) == CROP_RGB
    # the clerk's decision records the case, with the rectangle used
    d = win.verdict_panel.decision
    safe = {"genuine": "accept", "refer": "refer", "forgery": "reject"}[res.decision.verdict.zone]
    with qtbot.waitSignal(win.case.decision_recorded, timeout=TIMEOUT) as b:
        qtbot.keyClick(d.buttons[safe], Qt.Key.Key_Return)
    rec = win.case.library.audit.get(b.args[0])
    # the re-crop is a comparison of its own: a second record, with the rectangle used
    assert rec.details["questioned_region"] == list(rect) and rec.details["region_source"] == "crop"
    audit = win.case.library.audit
    assert audit.count()[0] == 2 and audit.get(rec.id - 1).details["region_source"] == "located"
    # a model switch re-runs the same case (the same rectangle): shown as a re-run, not recorded again
    from sigverify.verify.service import Verifier

    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT) as blk:
        win.set_verifier(Verifier(win.current_verifier().model, "cpu"))
    assert win.wait_idle(TIMEOUT)
    assert blk.args[0].questioned.preprocessed.region == rect
    assert audit.count()[0] == 2 and win.verdict_panel.rerun_label.isVisible()
    assert win.case.current.audit_id == rec.id and win.case.current.decision == safe
    # the same rectangle again is the same case: no third record
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.q_pane.crop_chosen.emit(rect)
    assert win.wait_idle(TIMEOUT)
    assert audit.count()[0] == 2


def test_a_recrop_of_an_undecided_case_is_asked_about_first(qtbot, win, cheque):
    path, c = cheque
    with qtbot.waitSignal(win.verification_done, timeout=TIMEOUT):
        win.set_references(REFS)
        win.set_questioned(path)
    assert win.wait_idle(TIMEOUT)
    asked = []
    win.case.ask = lambda text: asked.append(text) or "back"
    sx, sy, sw, sh = c.signature_box
    win.q_pane.crop_chosen.emit((sx, sy, sw, sh))
    assert win.wait_idle(TIMEOUT)
    assert asked and "re-crop" in asked[0]
    assert win.q_pane.signature().preprocessed.region_source == "located"  # "Go back": nothing changed
    assert win.case.library.audit.count()[0] == 1
    win.case.ask = lambda text: "leave"
