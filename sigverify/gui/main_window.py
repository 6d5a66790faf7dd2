"""The sigverify main window: Reference and Questioned panes, views, the distance gauge, menus.

The window only wires widgets to the Qt-free core (``sigverify.verify.service.Verifier``): model
loading and embedding run in a :class:`~sigverify.gui.workers.JobRunner`; the cheap decision
(distances against already-embedded signatures) runs on the GUI thread.

Public hooks for other features (kept stable, documented in docs/gui.md):

- ``add_menu(title) -> QMenu``: a top-level menu, inserted before Help;
- ``set_references(paths)``, ``set_reference_signatures(sigs, label)``, ``set_questioned(path)``;
- ``set_verifier(verifier)``, ``switch_model(path)``, ``current_verifier()``;
- signals ``verification_done(VerificationResult)``, ``verifier_changed(Verifier)``, ``model_failed(str)``,
  ``model_fallback(str)``.

At start-up a refused model (``model_path`` or the saved one: tampered, truncated, wrong architecture,
missing) is replaced by the shipped model (or random weights) and the reason is shown without a modal
dialog; ``fallback=False`` (``--screenshot --model``) makes such a refusal a failure instead.
"""

from __future__ import annotations

import html
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QFileDialog, QFrame, QHBoxLayout, QLabel,
                               QMainWindow, QMenu, QMessageBox, QSplitter, QStackedWidget, QTextBrowser, QToolBar,
                               QVBoxLayout, QWidget)

from sigverify.gui.gauge import DistanceGauge
from sigverify.gui.panes import (ORIGINAL, OVERLAY, PREPROCESSED, IMAGE_SUFFIXES, OverlayPane, QuestionedPane,
                                 ReferencePane, SignaturePane, expand_paths, local_files_from_mime)
from sigverify.gui.settings import AGGREGATES, DEVICES, METRICS, AppSettings
from sigverify.gui.workers import JobRunner

REF, QUE, MODEL = "reference", "questioned", "model"
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"
DEVICE_TEXT = {"auto": "&Automatic (GPU if available)", "cpu": "&CPU", "cuda": "&GPU (CUDA)"}

STYLE = """
QMainWindow, QWidget#central { background: #eef1f4; }
QFrame#pane { background: #ffffff; border: 1px solid #cfd6dd; border-radius: 8px; }
QFrame#pane[active="true"] { border: 2px solid #0072B2; }
QLabel#paneTitle { font-size: 15px; font-weight: 600; color: #1d2733; }
QLabel#paneCount { color: #5f6b77; padding-left: 6px; }
QLabel#paneCaption { color: #5f6b77; }
QLabel#banner { background: #fff3b0; color: #4a3b00; border-bottom: 1px solid #e3cf6a; padding: 7px 14px;
                font-weight: 600; }
QLabel#modelWarning { background: #fde9d2; color: #6b3500; border-bottom: 1px solid #f0c08a; padding: 7px 14px; }
QLabel#modelError { background: #fdecea; color: #8a1c12; border-bottom: 1px solid #f1b0a8; padding: 7px 14px; }
QLabel#details { color: #1d2733; }
QLabel#untrained { background: #ffd84d; color: #3d3000; border-radius: 3px; padding: 1px 6px; font-weight: 700; }
QFrame#footer { background: #f7f9fa; border: 1px solid #e1e6eb; border-radius: 4px; }
QListWidget { border: 1px solid #e1e6eb; border-radius: 4px; background: #f7f9fa; }
QToolBar { background: #f7f8fa; border-bottom: 1px solid #d5dbe1; spacing: 4px; padding: 3px 8px; }
QToolBar QToolButton { padding: 4px 10px; border-radius: 4px; }
QToolBar QToolButton:checked { background: #d6e6f5; color: #0b3d66; font-weight: 600; }
QStatusBar { background: #f7f8fa; border-top: 1px solid #d5dbe1; }
QStatusBar QLabel { padding: 0 8px; color: #2d3a47; }
"""


def _icon() -> QIcon:
    from sigverify.paths import assets_dir

    icon = QIcon()
    d = assets_dir() / "icons"
    for n in (16, 32, 48, 64, 128, 256):
        p = d / f"sigverify-{n}.png"
        if p.exists():
            icon.addFile(str(p), QSize(n, n))
    return icon


class MainWindow(QMainWindow):
    """See the module docstring for the public hooks."""

    verification_done = Signal(object)  # VerificationResult of every finished comparison
    verifier_changed = Signal(object)  # the new Verifier (startup load, switch_model, device change)
    model_failed = Signal(str)  # a model could not be loaded (message shown in the window too)
    model_fallback = Signal(str)  # the start-up model was refused and another one is used (shown too)

    def __init__(self, verifier=None, model_path: str | None = None, device: str | None = None,
                 settings: AppSettings | None = None, parent: QWidget | None = None, fallback: bool = True):
        super().__init__(parent)
        self.settings = settings or AppSettings.load()
        self._model_override = model_path  # from --model: used now, not persisted
        self._device_override = device
        self._fallback = fallback  # start-up only: use the shipped model when the chosen one is refused
        self._model_unavailable = False  # start-up load failed and no other model is coming
        self._verifier = None
        self._pending: dict[str, Callable[[], None]] = {}
        self._ref_skipped: list[tuple[str, str]] = []
        self._ref_label = ""
        self._result = None
        self._t_request: float | None = None
        self._mode = ORIGINAL
        self._last_pane: SignaturePane | None = None
        self._info_dialog: QDialog | None = None
        self.jobs = JobRunner(self)
        self.jobs.busy_changed.connect(self._busy_changed)

        self.setWindowTitle("sigverify \u2014 signature verification")
        self.setWindowIcon(_icon())
        self.setStyleSheet(STYLE)
        self.resize(1280, 800)
        self.setAcceptDrops(True)
        self._build_ui()
        self._build_menus()
        self._build_statusbar()
        self._update_model_ui()
        self.set_view_mode(ORIGINAL)
        QApplication.instance().focusChanged.connect(self._focus_changed)
        if verifier is not None:
            self.set_verifier(verifier)
        else:
            self._load_model(self._model_override or self.settings.model_path or None, fallback=self._fallback)

    # ============================================================================ public hooks
    def add_menu(self, title: str) -> QMenu:
        """A new top-level menu (e.g. "&Library", "&Training"), inserted before Help."""
        menu = QMenu(title, self)
        self.menuBar().insertMenu(self.help_menu.menuAction(), menu)
        return menu

    def current_verifier(self):
        """The active ``Verifier``, or None while the model is still loading."""
        return self._verifier

    def model_unavailable(self) -> bool:
        """True when the start-up model failed to load and no other model is being loaded."""
        return self._verifier is None and self._model_unavailable and not self.jobs.is_busy(MODEL)

    def set_verifier(self, verifier) -> None:
        """Use ``verifier`` from now on; loaded signatures are embedded again with its model."""
        self._verifier = verifier
        self._pending.pop(MODEL, None)
        self._model_unavailable = False
        self.model_error.hide()
        self.model_warning.hide()
        self._update_model_ui()
        self._sync_settings_menu()
        self.verifier_changed.emit(verifier)
        self._reembed()
        for key in (REF, QUE):
            fn = self._pending.pop(key, None)
            if fn:
                fn()

    def switch_model(self, path: str, persist: bool = True) -> int:
        """Load the model at ``path`` in the background and switch to it (the fine-tuning wizard's
        "use this model now"). On failure the current model stays and the error is shown. Returns the job id."""
        return self._load_model(str(path), persist=persist)

    def set_references(self, paths: list[str], add: bool = False) -> None:
        """Load reference signature files (folders are expanded); replaces the set unless ``add``."""
        self._t_request = time.perf_counter()
        files, problems = expand_paths([str(p) for p in paths])
        self.ref_pane.clear_message()
        if not files:
            self.ref_pane.show_error("; ".join(problems) or "no file given")
            return
        self._remember(("R", *files))
        label = "" if add else None

        def job() -> None:
            v = self._verifier
            self.jobs.submit(REF, lambda prog, stop: v.load_many(files, True, prog, stop),
                             lambda res: self._refs_loaded(res, problems, add, label),
                             lambda msg: self._job_error(self.ref_pane, msg),
                             self.ref_pane.set_progress, lambda: self._job_cancelled(self.ref_pane))
        self._run_or_defer(REF, job)

    def set_reference_signatures(self, sigs: list, label: str = "") -> None:
        """Use already-embedded ``Signature`` objects (made with ``current_verifier()``) as the reference
        set, e.g. from the customer library; ``label`` names the account holder in the pane title."""
        self.jobs.cancel(REF, notify=False)
        self._t_request = time.perf_counter()
        self._ref_skipped = []
        self._ref_label = label
        self.ref_pane.clear_message()
        self.ref_pane.set_signatures(list(sigs))
        self._update_titles()
        self._after_inputs_changed()

    def set_questioned(self, path: str) -> None:
        """Load the questioned signature file and verify it against the references."""
        self._t_request = time.perf_counter()
        files, problems = expand_paths([str(path)])
        self.q_pane.clear_message()
        if not files:
            self.q_pane.show_error("; ".join(problems) or "no file given")
            return
        note = f"{len(files)} files given: only the first, {Path(files[0]).name}, is the questioned signature" \
            if len(files) > 1 else ""
        f = files[0]
        self._remember(("Q", f))

        def job() -> None:
            v = self._verifier
            self.jobs.submit(QUE, lambda prog, stop: v.load_many([f], True, prog, stop),
                             lambda res: self._q_loaded(res, note),
                             lambda msg: self._job_error(self.q_pane, msg),
                             self.q_pane.set_progress, lambda: self._job_cancelled(self.q_pane))
        self._run_or_defer(QUE, job)

    def set_questioned_image(self, rgb, source: str = "clipboard") -> None:
        """A questioned signature from an RGB uint8 array (paste)."""
        self._array_job(QUE, rgb, source)

    def add_reference_image(self, rgb, source: str = "clipboard") -> None:
        """Add a reference signature from an RGB uint8 array (paste)."""
        self._array_job(REF, rgb, source)

    def result(self):
        """The last ``VerificationResult`` (None before the first comparison or after Clear)."""
        return self._result

    def is_busy(self) -> bool:
        return self.jobs.is_busy()

    def references(self) -> list:
        return self.ref_pane.signatures()

    def questioned(self):
        return self.q_pane.signature()

    def clear(self) -> None:
        """Start a new comparison: both panes and the gauge are emptied."""
        self.jobs.cancel(REF, notify=False)
        self.jobs.cancel(QUE, notify=False)
        self._ref_skipped, self._ref_label, self._result = [], "", None
        self.ref_pane.set_signatures([])
        self.q_pane.set_signature(None)
        for p in (self.ref_pane, self.q_pane):
            p.clear_message()
            p.set_busy(False)
        self._update_titles()
        self._show_result(None)
        self.statusBar().showMessage("Cleared \u2014 ready for a new comparison", 4000)

    def set_view_mode(self, mode: str) -> None:
        """"original", "preprocessed" or "overlay"."""
        if mode not in (ORIGINAL, PREPROCESSED, OVERLAY):
            raise ValueError(f"unknown view mode {mode!r}")
        self._mode = mode
        self.view_actions[mode].setChecked(True)
        if mode == OVERLAY:
            self.stack.setCurrentWidget(self.overlay_pane)
            self._refresh_overlay()
        else:
            self.stack.setCurrentWidget(self.side_by_side)
            self.ref_pane.set_view_mode(mode)
            self.q_pane.set_view_mode(mode)

    def view_mode(self) -> str:
        return self._mode

    # ============================================================================ UI building
    def _build_ui(self) -> None:
        central = QWidget()
        central.setObjectName("central")
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self.banner = QLabel("\u26a0  Untrained demo weights \u2014 verdicts are meaningless. "
                             "Open a trained model (Model \u203a Open model\u2026) before real use.")
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.model_error = QLabel()
        self.model_error.setObjectName("modelError")
        self.model_error.setWordWrap(True)
        self.model_error.hide()
        self.model_warning = QLabel()  # start-up fallback: the chosen model was refused, another is in use
        self.model_warning.setObjectName("modelWarning")
        self.model_warning.setWordWrap(True)
        self.model_warning.hide()
        outer.addWidget(self.banner)
        outer.addWidget(self.model_error)
        outer.addWidget(self.model_warning)

        body = QHBoxLayout()
        body.setContentsMargins(14, 12, 14, 12)
        body.setSpacing(12)
        outer.addLayout(body, 1)

        self.ref_pane = ReferencePane()
        self.q_pane = QuestionedPane()
        self.side_by_side = QSplitter(Qt.Orientation.Horizontal)
        self.side_by_side.setChildrenCollapsible(False)
        self.side_by_side.setHandleWidth(12)
        self.side_by_side.addWidget(self.ref_pane)
        self.side_by_side.addWidget(self.q_pane)
        self.side_by_side.setStretchFactor(0, 1)
        self.side_by_side.setStretchFactor(1, 1)
        self.side_by_side.setSizes([1000, 1000])
        self.overlay_pane = OverlayPane()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.side_by_side)
        self.stack.addWidget(self.overlay_pane)
        body.addWidget(self.stack, 1)

        # Result panel: gauge and details.
        self.result_panel = QFrame()
        self.result_panel.setObjectName("pane")
        self.result_panel.setFixedWidth(372)
        rl = QVBoxLayout(self.result_panel)
        rl.setContentsMargins(12, 10, 12, 12)
        rl.setSpacing(6)
        t = QLabel("Verdict")
        t.setObjectName("paneTitle")
        rl.addWidget(t)
        self.gauge = DistanceGauge()
        rl.addWidget(self.gauge, 1)
        self.details = QLabel()
        self.details.setObjectName("details")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rl.addWidget(self.details, 0)
        self.result_message = QLabel()
        self.result_message.setWordWrap(True)
        self.result_message.hide()
        rl.addWidget(self.result_message)
        note = QLabel("Verdicts are advisory. Cases marked Refer or Forgery go to a supervisor.")
        note.setObjectName("paneCaption")
        note.setWordWrap(True)
        rl.addWidget(note)
        body.addWidget(self.result_panel)
        self.setCentralWidget(central)

        for pane, role in ((self.ref_pane, REF), (self.q_pane, QUE)):
            pane.cancel_requested.connect(lambda r=role: self.cancel(r))
            pane.open_requested.connect(lambda r=role: self.open_dialog(r))
            pane.clear_requested.connect(lambda r=role: self._clear_role(r))
        self.ref_pane.files_dropped.connect(lambda files: self._dropped(REF, files))
        self.q_pane.files_dropped.connect(lambda files: self._dropped(QUE, files))
        self.ref_pane.image_pasted.connect(lambda arr: self.add_reference_image(arr, self._clip_name()))
        self.q_pane.image_pasted.connect(lambda arr: self.set_questioned_image(arr, self._clip_name()))
        self.ref_pane.add_requested.connect(lambda: self.open_dialog(REF, add=True))
        self.ref_pane.remove_requested.connect(self.remove_reference)
        self.ref_pane.selection_changed.connect(lambda _i: self._refresh_overlay())
        self.overlay_pane.reference_chosen.connect(self.ref_pane.select)
        self._show_result(None)
        # Tab order: reference pane and its buttons, questioned pane and its buttons.
        order = [self.ref_pane, self.ref_pane.open_button, self.ref_pane.add_button, self.ref_pane.clear_button,
                 self.ref_pane.strip, self.ref_pane.remove_button, self.q_pane, self.q_pane.open_button,
                 self.q_pane.clear_button]
        for a, b in zip(order, order[1:]):
            QWidget.setTabOrder(a, b)

    def _action(self, text: str, slot, shortcut=None, tip: str = "", checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                a.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        a.setCheckable(checkable)
        if slot is not None:
            a.triggered.connect(slot)
        return a

    def _build_menus(self) -> None:
        mb = self.menuBar()
        SK = QKeySequence.StandardKey
        # File
        m = mb.addMenu("&File")
        self.act_open_ref = self._action("Open &reference\u2026", lambda: self.open_dialog(REF), SK.Open,
                                         "Open the account holder's reference signatures (replaces the set)")
        self.act_add_ref = self._action("&Add reference\u2026", lambda: self.open_dialog(REF, add=True),
                                        "Ctrl+Shift+A", "Add signatures to the reference set")
        self.act_open_q = self._action("Open &questioned\u2026", lambda: self.open_dialog(QUE), "Ctrl+Shift+O",
                                       "Open the signature to verify")
        self.act_paste = self._action("&Paste image", self.paste, SK.Paste,
                                      "Paste an image into the focused pane")
        self.act_clear = self._action("&Clear", self.clear, SK.New, "Empty both panes for a new comparison")
        self.recent_menu = QMenu("Recent &files", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.act_quit = self._action("&Quit", self.close, SK.Quit)
        for a in (self.act_open_ref, self.act_add_ref, self.act_open_q):
            m.addAction(a)
        m.addMenu(self.recent_menu)
        m.addSeparator()
        m.addAction(self.act_paste)
        m.addAction(self.act_clear)
        m.addSeparator()
        m.addAction(self.act_quit)
        self.file_menu = m
        # View
        m = mb.addMenu("&View")
        self.view_group = QActionGroup(self)
        self.view_actions = {
            ORIGINAL: self._action("&Original scans", lambda: self.set_view_mode(ORIGINAL), "Ctrl+1",
                                   "Show the scans as they were loaded", True),
            PREPROCESSED: self._action("&Preprocessed (network input)", lambda: self.set_view_mode(PREPROCESSED),
                                       "Ctrl+2", "Show what the model sees after cleaning and normalising", True),
            OVERLAY: self._action("O&verlay", lambda: self.set_view_mode(OVERLAY), "Ctrl+3",
                                  "Draw both signatures on one canvas (blue reference, orange questioned)", True),
        }
        for a in self.view_actions.values():
            self.view_group.addAction(a)
            m.addAction(a)
        self.act_toggle_view = self._action("&Toggle original / preprocessed", self.toggle_view, "Ctrl+T")
        m.addAction(self.act_toggle_view)
        m.addSeparator()
        self.act_zoom_in = self._action("Zoom &in", lambda: self._zoom("in"), ["Ctrl++", "Ctrl+="])
        self.act_zoom_out = self._action("Zoom &out", lambda: self._zoom("out"), "Ctrl+-")
        self.act_fit = self._action("&Fit to window", lambda: self._zoom("fit"), "Ctrl+0")
        for a in (self.act_zoom_in, self.act_zoom_out, self.act_fit):
            m.addAction(a)
        # Model
        m = mb.addMenu("&Model")
        self.act_open_model = self._action("&Open model\u2026", self.open_model_dialog, "Ctrl+M",
                                           "Load a trained or fine-tuned model (.safetensors)")
        self.act_default_model = self._action("Use &default model", self.use_default_model)
        self.act_model_info = self._action("Model &info\u2026", self.show_model_info, "Ctrl+I",
                                           "Show the model card: training data, accuracy, thresholds")
        for a in (self.act_open_model, self.act_default_model, self.act_model_info):
            m.addAction(a)
        self.model_menu = m
        # Settings
        m = mb.addMenu("&Settings")
        dm = m.addMenu("&Device")
        self.device_group = QActionGroup(self)
        self.device_actions = {}
        for d in DEVICES:
            a = self._action(DEVICE_TEXT[d], lambda _c=False, d=d: self.set_device(d), checkable=True)
            self.device_group.addAction(a)
            dm.addAction(a)
            self.device_actions[d] = a
        mm = m.addMenu("Distance &metric")
        self.metric_group = QActionGroup(self)
        self.metric_actions = {}
        for x in METRICS:
            a = self._action(f"&{x.capitalize()}", lambda _c=False, x=x: self.set_metric(x), checkable=True)
            self.metric_group.addAction(a)
            mm.addAction(a)
            self.metric_actions[x] = a
        pm = m.addMenu("&Threshold policy")
        self.agg_group = QActionGroup(self)
        self.agg_actions = {}
        for x, txt in (("mean", "Compare with the &mean distance to the references"),
                       ("min", "Compare with the &closest reference (min)")):
            a = self._action(txt, lambda _c=False, x=x: self.set_aggregate(x), checkable=True)
            self.agg_group.addAction(a)
            pm.addAction(a)
            self.agg_actions[x] = a
        pm.addSeparator()
        self.act_adapt = self._action("&Adapt thresholds to the person (3+ references)", self.set_adapt,
                                      checkable=True)
        pm.addAction(self.act_adapt)
        self.settings_menu = m
        # Help
        m = mb.addMenu("&Help")
        self.act_sample = self._action("&Try a sample", self.try_sample, "F5",
                                       "Load Alice's demo references and a questioned sample, and verify")
        self.act_about = self._action("&About sigverify", self.show_about, SK.HelpContents)
        m.addAction(self.act_sample)
        m.addSeparator()
        m.addAction(self.act_about)
        self.help_menu = m
        self._sync_settings_menu()

        # Toolbar: the view toggle and zoom, always one click away.
        tb = QToolBar("View")
        tb.setObjectName("viewToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addWidget(QLabel(" View: "))
        # Short toolbar labels (the menu keeps the long ones), so a second toolbar fits beside it.
        self.view_actions[ORIGINAL].setIconText("Original")
        self.view_actions[PREPROCESSED].setIconText("Preprocessed")
        for a in self.view_actions.values():
            tb.addAction(a)
        tb.addSeparator()
        for a in (self.act_zoom_out, self.act_fit, self.act_zoom_in):
            tb.addAction(a)
        tb.addSeparator()
        tb.addAction(self.act_sample)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.untrained_badge = QLabel("UNTRAINED")
        self.untrained_badge.setObjectName("untrained")
        self.untrained_badge.setToolTip("Random weights: verdicts are meaningless")
        self.model_label = QLabel("Model: loading\u2026")
        self.device_label = QLabel("Device: \u2026")
        self.last_label = QLabel("No verification yet")
        for w in (self.model_label, self.untrained_badge, self.device_label, self.last_label):
            sb.addPermanentWidget(w)
        self.untrained_badge.hide()

    # ============================================================================ model
    def _load_model(self, path: str | None, persist: bool = False, fallback: bool = False) -> int:
        """Load ``path`` (None: the shipped model) in a worker, then ``set_verifier``. With ``fallback``
        (start-up only) a refused model is replaced by the shipped one (or random weights) and the reason
        is shown; otherwise a refusal fails (``model_failed``) and the current model, if any, stays."""
        s = self.settings
        device = self._device_override or s.device
        metric, agg, adapt = s.metric or None, s.aggregate, s.adapt_to_person
        self.model_label.setText("Model: loading\u2026" if self._verifier is None else self.model_label.text())
        self.statusBar().showMessage(f"Loading model {Path(path).name if path else '(default)'}\u2026")

        def fn(progress, stop):
            from sigverify.errors import ModelError
            from sigverify.model.embedder import open_model, open_model_or_fallback, resolve_device
            from sigverify.verify.service import Verifier

            notes = []
            dev = device
            try:
                torch_dev = resolve_device(dev)
            except ModelError as exc:
                if dev == "cpu" or not ("CUDA" in str(exc) or "device" in str(exc)):
                    raise
                notes.append(f"{exc}; using the CPU")
                dev = "cpu"
                torch_dev = resolve_device(dev)
            warning = None
            if fallback:  # never raises for a refused model: shipped model or random weights instead
                loaded, warning = open_model_or_fallback(path, torch_dev)
            else:
                loaded = open_model(path, torch_dev)
            try:
                return Verifier(loaded, dev, metric, agg, adapt), notes, warning
            except ModelError as exc:
                if metric and "calibration" in str(exc):
                    notes.append(f"{exc}; using the model's own metric")
                    return Verifier(loaded, dev, None, agg, adapt), notes, warning
                raise

        def done(res) -> None:
            v, notes, warning = res
            if persist:
                self.settings.model_path = path or ""
                self.settings.save()
            self.set_verifier(v)
            msgs = list(notes)
            if warning:  # non-modal: an amber bar above the panes and the status bar
                text = f"Model {Path(path).name} was refused \u2014 {warning}" if path else warning
                self.model_warning.setText("\u26a0  " + text)
                self.model_warning.setToolTip(str(path) if path else "")
                self.model_warning.show()
                msgs.insert(0, text)
                self.model_fallback.emit(text)
            if msgs:
                self.statusBar().showMessage("; ".join(msgs), 15000)
            else:
                self.statusBar().showMessage(f"Model {v.card.name} ready on {v.device_text}", 5000)

        def failed(msg: str) -> None:
            text = f"The model could not be loaded: {msg}"
            if self._verifier is None and path and fallback:
                text += " \u2014 falling back to the default model."
                self._model_override = None
                QTimer.singleShot(0, lambda: self._load_model(None, fallback=True))
            elif self._verifier is not None:
                text += " \u2014 the current model stays in use."
            else:
                if path:
                    text += " \u2014 no other model is used."
                self._model_unavailable = True  # nothing else will load: wait_idle gives up at once
                self.model_label.setText("Model: none")
            self.model_error.setText("\u26a0  " + text)
            self.model_error.show()
            self.statusBar().showMessage(text, 10000)
            self.model_failed.emit(text)

        return self.jobs.submit(MODEL, fn, done, failed)

    def open_model_dialog(self) -> None:
        from sigverify.paths import user_models_dir

        start = str(user_models_dir()) if user_models_dir().is_dir() else self.settings.last_dir
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start, "sigverify models (*.safetensors);;All files (*)")
        if path:
            self.switch_model(path)

    def use_default_model(self) -> None:
        self._model_override = None
        self._load_model(None, persist=True)

    def _update_model_ui(self) -> None:
        v = self._verifier
        if v is None:
            self.model_label.setText("Model: loading\u2026")
            self.device_label.setText("Device: \u2026")
            self.banner.hide()
            self.untrained_badge.hide()
            return
        card = v.card
        self.model_label.setText(f"Model: {card.name}")
        self.model_label.setToolTip(str(v.model.path) if v.model.path else "built-in")
        self.device_label.setText(f"Device: {v.device_text}")
        self.banner.setVisible(bool(card.random_init))
        self.untrained_badge.setVisible(bool(card.random_init))
        self._update_titles()

    def _sync_settings_menu(self) -> None:
        s = self.settings
        self.device_actions[self._device_override or s.device if (self._device_override or s.device) in DEVICES
                            else "auto"].setChecked(True)
        torch = sys.modules.get("torch")  # imported by the model-loading worker; never on the GUI thread
        if torch is not None:
            self.device_actions["cuda"].setEnabled(bool(torch.cuda.is_available()))
        metric = self._verifier.metric if self._verifier is not None else (s.metric or "euclidean")
        self.metric_actions.get(metric, self.metric_actions["euclidean"]).setChecked(True)
        self.agg_actions[s.aggregate if s.aggregate in AGGREGATES else "mean"].setChecked(True)
        self.act_adapt.setChecked(bool(s.adapt_to_person))

    # ============================================================================ settings
    def set_metric(self, metric: str) -> None:
        v = self._verifier
        if v is not None:
            try:
                cal = v.card.metric_calibration(metric)
            except Exception as exc:
                self.statusBar().showMessage(str(exc), 8000)
                self._sync_settings_menu()
                return
            v.metric, v.calibration = metric, cal
        self.settings.metric = metric
        self.settings.save()
        self._sync_settings_menu()
        self.statusBar().showMessage(f"Distance metric: {metric}", 4000)
        self._after_inputs_changed(keep_time=False)

    def set_aggregate(self, aggregate: str) -> None:
        self.settings.aggregate = aggregate
        self.settings.save()
        if self._verifier is not None:
            self._verifier.aggregate = aggregate
        self._sync_settings_menu()
        self._after_inputs_changed(keep_time=False)

    def set_adapt(self, on: bool) -> None:
        self.settings.adapt_to_person = bool(on)
        self.settings.save()
        if self._verifier is not None:
            self._verifier.adapt_to_person = bool(on)
        self._sync_settings_menu()
        self._after_inputs_changed(keep_time=False)

    def set_device(self, device: str) -> None:
        self.settings.device = device
        self.settings.save()
        self._device_override = None
        self._sync_settings_menu()
        if self._verifier is not None:
            path = self._verifier.model.path
            self._load_model(str(path) if path else None)

    # ============================================================================ loading jobs
    def _run_or_defer(self, key: str, fn: Callable[[], None]) -> None:
        pane = self.ref_pane if key == REF else self.q_pane
        if self._verifier is None:
            self._pending[key] = fn
            pane.set_busy(True, "Waiting for the model\u2026")
        else:
            fn()

    def _array_job(self, key: str, rgb, source: str) -> None:
        self._t_request = time.perf_counter()
        pane = self.ref_pane if key == REF else self.q_pane
        pane.clear_message()

        def job() -> None:
            v = self._verifier
            if key == REF:
                self.jobs.submit(REF, lambda p, s: ([v.signature_from_array(rgb, source)], []),
                                 lambda res: self._refs_loaded(res, [], True, None),
                                 lambda msg: self._job_error(pane, msg), pane.set_progress,
                                 lambda: self._job_cancelled(pane))
            else:
                self.jobs.submit(QUE, lambda p, s: ([v.signature_from_array(rgb, source)], []),
                                 lambda res: self._q_loaded(res, ""), lambda msg: self._job_error(pane, msg),
                                 pane.set_progress, lambda: self._job_cancelled(pane))
        self._run_or_defer(key, job)

    def _refs_loaded(self, res, problems: list[str], add: bool, label: str | None) -> None:
        ok, bad = res
        msgs = list(problems) + [m for _, m in bad]
        if not ok:
            self.ref_pane.show_error("No usable reference signature: " + "; ".join(msgs)
                                     + (" \u2014 the previous references are kept." if self.ref_pane.signatures() else ""))
            return
        if add:
            sigs = self.ref_pane.signatures() + ok
            self._ref_skipped = self._ref_skipped + bad
            select = len(sigs) - 1
        else:
            sigs, self._ref_skipped, select = ok, list(bad), 0
            self._ref_label = label or ""
        self.ref_pane.set_signatures(sigs, select)
        if msgs:
            self.ref_pane.show_warning(f"{len(msgs)} file(s) skipped: " + "; ".join(msgs))
        self._update_titles()
        self._after_inputs_changed()

    def _q_loaded(self, res, note: str) -> None:
        ok, bad = res
        if not ok:
            msg = "; ".join(m for _, m in bad) or "no signature found"
            self.q_pane.show_error(msg + (" \u2014 the previous signature is kept." if self.q_pane.signature() else ""))
            return
        self.q_pane.set_signature(ok[0])
        if note:
            self.q_pane.show_warning(note)
        self._after_inputs_changed()

    def _job_error(self, pane: SignaturePane, msg: str) -> None:
        pane.show_error(msg + (" \u2014 the previous comparison is kept." if self._result is not None else ""))

    def _job_cancelled(self, pane: SignaturePane) -> None:
        pane.set_busy(False)
        self.statusBar().showMessage("Cancelled", 3000)

    def cancel(self, role: str) -> None:
        """Cancel the running load of ``role`` ("reference" / "questioned")."""
        self._pending.pop(role, None)
        if not self.jobs.cancel(role):
            (self.ref_pane if role == REF else self.q_pane).set_busy(False)

    def _busy_changed(self, slot: str, busy: bool) -> None:
        if slot == MODEL:
            return
        pane = self.ref_pane if slot == REF else self.q_pane
        pane.set_busy(busy, "Reading and embedding\u2026")

    def _reembed(self) -> None:
        """Embed the loaded signatures again with the current model (after a model or device change)."""
        v = self._verifier
        refs, q = self.ref_pane.signatures(), self.q_pane.signature()

        def redo(sigs):
            def fn(progress, stop):
                out, bad = [], []
                for i, s in enumerate(sigs):
                    if stop():
                        from sigverify.errors import Cancelled
                        raise Cancelled("cancelled")
                    orig = (s.preprocessed.stages or {}).get("original")
                    try:
                        out.append(v.signature_from_array(orig, s.source) if orig is not None else v.load(s.source))
                    except Exception as exc:  # noqa: BLE001 - reported per signature
                        bad.append((s.source, str(exc)))
                    progress((i + 1) / len(sigs), "re-embedding")
                return out, bad
            return fn

        if refs:
            sel = self.ref_pane.selected_index()
            self.jobs.submit(REF, redo(refs), lambda res: self._reembedded_refs(res, sel),
                             lambda m: self._job_error(self.ref_pane, m), self.ref_pane.set_progress)
        if q is not None:
            self.jobs.submit(QUE, redo([q]), lambda res: self._q_loaded(res, ""),
                             lambda m: self._job_error(self.q_pane, m), self.q_pane.set_progress)

    def _reembedded_refs(self, res, sel: int) -> None:
        ok, bad = res
        self.ref_pane.set_signatures(ok, sel)
        if bad:
            self.ref_pane.show_warning("; ".join(m for _, m in bad))
        self._after_inputs_changed(keep_time=False)

    # ============================================================================ verification
    def _after_inputs_changed(self, keep_time: bool = True) -> None:
        self._refresh_overlay()
        refs, q, v = self.ref_pane.signatures(), self.q_pane.signature(), self._verifier
        if self.jobs.is_busy(REF) or self.jobs.is_busy(QUE):
            return  # the other side is still loading; verify when it lands
        if not refs or q is None or v is None:
            self._show_result(None)
            if refs and q is None:
                self.statusBar().showMessage("References ready \u2014 now add the questioned signature", 6000)
            elif q is not None and not refs:
                self.statusBar().showMessage("Questioned signature ready \u2014 now add the references", 6000)
            return
        from sigverify.verify.service import VerificationResult

        t0 = self._t_request if keep_time and self._t_request is not None else time.perf_counter()
        try:
            dec = v.decide(q, refs)
        except Exception as exc:  # noqa: BLE001 - e.g. embeddings from another model
            self._show_result(None, f"The comparison failed: {exc}")
            return
        elapsed = (time.perf_counter() - t0) * 1000
        self._t_request = None
        res = VerificationResult(q, refs, dec, v.metric, v.model.model_id, v.card.random_init, elapsed,
                                 list(self._ref_skipped))
        self._result = res
        self._show_result(res)
        self.last_label.setText(f"Last verification {datetime.now():%H:%M:%S} \u00b7 {elapsed:.0f} ms")
        self.statusBar().showMessage(f"Verdict: {dec.verdict.text}", 8000)
        self.verification_done.emit(res)

    def _show_result(self, res, message: str = "") -> None:
        if message:
            self.result_message.setText("\u26a0 " + message)
            self.result_message.setStyleSheet("color:#8a1c12;")
            self.result_message.show()
        else:
            self.result_message.hide()
        v = self._verifier
        if res is None:
            if v is not None:
                cal = v.calibration
                self.gauge.set_thresholds(cal.accept, cal.reject, cal.reject * 1.6)
            self.gauge.clear()
            self.details.setText("<p style='color:#5f6b77'>Drop the account holder's reference signatures on the "
                                 "left pane and the signature to verify on the right pane (or press F5 to try "
                                 "a sample).</p>")
            return
        dec = res.decision
        vd = dec.verdict
        mx = max(vd.reject * 1.6, max(dec.distances) * 1.05, vd.accept * 1.2)
        self.gauge.set_thresholds(vd.accept, vd.reject, mx)
        n = len(dec.distances)
        cap = (f"{dec.aggregate} of {n} references" if n > 1 else "1 reference")
        self.gauge.set_result(vd.distance, vd.score, vd.zone, dec.distances if n > 1 else None, cap)
        rows = [
            ("Distance", f"{vd.distance:.3f} ({cap}, {res.metric})"),
            ("Genuine if", f"\u2264 {vd.accept:.3f}"),
            ("Forgery if", f"&gt; {vd.reject:.3f}"),
        ]
        if abs(dec.person_scale - 1.0) > 1e-6:
            rows.append(("Person", f"thresholds \u00d7{dec.person_scale:.2f} (own variation)"))
        if n > 1:
            rows.append(("Per ref.", ", ".join(f"#{i + 1} {d:.3f}" for i, d in enumerate(dec.distances))))
        rows.append(("Time", f"{res.elapsed_ms:.0f} ms"))
        table = "".join(f"<tr><td style='color:#5f6b77; padding-right:10px'>{k}</td><td>{val}</td></tr>"
                        for k, val in rows)
        extra = "".join(f"<p style='color:#6b4500; margin-top:4px'>\u26a0 {html.escape(w)}</p>" for w in dec.warnings)
        if res.random_weights:
            extra += "<p style='color:#6b4500; margin-top:4px'><b>Untrained model:</b> this verdict is meaningless.</p>"
        self.details.setText(f"<table cellspacing='0' cellpadding='1'>{table}</table>{extra}")

    def _refresh_overlay(self) -> None:
        if self._mode == OVERLAY:
            self.overlay_pane.set_content(self.ref_pane.signatures(), self.q_pane.signature(),
                                          self.ref_pane.selected_index())

    def remove_reference(self, index: int) -> None:
        sigs = self.ref_pane.signatures()
        if not (0 <= index < len(sigs)):
            return
        gone = sigs.pop(index)
        self.ref_pane.set_signatures(sigs, min(index, len(sigs) - 1))
        self.statusBar().showMessage(f"Removed reference {Path(gone.source).name}", 4000)
        self._update_titles()
        self._after_inputs_changed(keep_time=False)

    def _update_titles(self) -> None:
        self.ref_pane.title_label.setText(f"Reference \u2014 {self._ref_label}" if self._ref_label else "Reference")

    # ============================================================================ user actions
    def _dropped(self, role: str, files: list[str]) -> None:
        if role == REF:
            self.set_references(files)
        else:
            self.set_questioned(files[0]) if len(files) == 1 else self._questioned_many(files)

    def _questioned_many(self, files: list[str]) -> None:
        self.set_questioned(files[0])
        if self.q_pane.error_text() == "":
            self.q_pane.show_warning(f"{len(files)} files dropped: only {Path(files[0]).name} is verified")

    def _auto_role(self) -> str:
        if not self.ref_pane.signatures() and not self.jobs.is_busy(REF):
            return REF
        return QUE

    def dragEnterEvent(self, e) -> None:  # noqa: N802
        if local_files_from_mime(e.mimeData()) or e.mimeData().hasImage():
            e.acceptProposedAction()
        else:
            e.ignore()

    def dragMoveEvent(self, e) -> None:  # noqa: N802
        self.dragEnterEvent(e)

    def dropEvent(self, e) -> None:  # noqa: N802
        """A drop outside the panes: the first becomes the reference set, later ones the questioned signature."""
        role = self._auto_role()
        pane = self.ref_pane if role == REF else self.q_pane
        if pane.handle_mime(e.mimeData()):
            e.acceptProposedAction()
            what = "reference signatures" if role == REF else "questioned signature"
            self.statusBar().showMessage(f"Dropped outside the panes: used as the {what} "
                                         f"(drop on a pane to choose)", 8000)
        else:
            e.ignore()

    def paste(self) -> None:
        """Ctrl+V: paste into the focused pane (or the sensible one, like a window drop)."""
        pane = self._last_pane
        if pane is None:
            pane = self.ref_pane if self._auto_role() == REF else self.q_pane
            self.statusBar().showMessage(f"Pasted into the {pane._title} pane", 5000)
        pane.paste_from_clipboard()

    def _clip_name(self) -> str:
        return f"clipboard {datetime.now():%H:%M:%S}"

    def _focus_changed(self, _old, new) -> None:
        for pane in (self.ref_pane, self.q_pane):
            inside = new is not None and (new is pane or pane.isAncestorOf(new))
            pane.set_active(inside)
            if inside:
                self._last_pane = pane

    def focused_pane(self) -> SignaturePane | None:
        return self._last_pane

    def toggle_view(self) -> None:
        self.set_view_mode(PREPROCESSED if self._mode == ORIGINAL else ORIGINAL)

    def _zoom(self, how: str) -> None:
        views = [self.overlay_pane.view] if self._mode == OVERLAY else [self.ref_pane.view, self.q_pane.view]
        for v in views:
            {"in": v.zoom_in, "out": v.zoom_out, "fit": v.fit}[how]()

    def open_dialog(self, role: str, add: bool = False) -> None:
        title = {REF: "Open reference signatures", QUE: "Open the questioned signature"}[role]
        if role == REF:
            paths, _ = QFileDialog.getOpenFileNames(self, title, self.settings.last_dir, IMAGE_FILTER)
        else:
            p, _ = QFileDialog.getOpenFileName(self, title, self.settings.last_dir, IMAGE_FILTER)
            paths = [p] if p else []
        if not paths:
            return
        self.settings.last_dir = str(Path(paths[0]).parent)
        if role == REF:
            self.set_references(paths, add=add)
        else:
            self.set_questioned(paths[0])

    def _clear_role(self, role: str) -> None:
        self.cancel(role)
        if role == REF:
            self._ref_skipped, self._ref_label = [], ""
            self.ref_pane.set_signatures([])
            self._update_titles()
            self.ref_pane.clear_message()
        else:
            self.q_pane.set_signature(None)
            self.q_pane.clear_message()
        self._result = None
        self._after_inputs_changed(keep_time=False)

    def _remember(self, entry: tuple) -> None:
        self.settings.add_recent("\t".join(entry))
        self.settings.save()

    def _fill_recent(self) -> None:
        m = self.recent_menu
        m.clear()
        if not self.settings.recent:
            a = m.addAction("(none)")
            a.setEnabled(False)
            return
        for i, entry in enumerate(self.settings.recent):
            parts = entry.split("\t")
            kind, files = parts[0], parts[1:]
            if not files:
                continue
            names = ", ".join(Path(f).name for f in files[:2]) + (f" (+{len(files) - 2})" if len(files) > 2 else "")
            label = f"&{(i + 1) % 10} {'Reference' if kind == 'R' else 'Questioned'}: {names}"
            a = m.addAction(label)
            a.setToolTip("\n".join(files))
            if kind == "R":
                a.triggered.connect(lambda _c=False, f=files: self.set_references(f))
            else:
                a.triggered.connect(lambda _c=False, f=files[0]: self.set_questioned(f))
        m.addSeparator()
        m.addAction("Clear recent files", self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.recent = []
        self.settings.save()

    def try_sample(self) -> None:
        """Help > Try a sample: Alice's three references against a questioned sample."""
        from sigverify.paths import samples_dir

        d = samples_dir()
        refs = [str(d / f"alice_ref{i}.png") for i in (1, 2, 3)]
        q = d / "alice_questioned_forgery.png"
        if not all(Path(r).exists() for r in refs) or not q.exists():
            self.statusBar().showMessage(f"The demo samples are missing from {d}", 8000)
            return
        self.clear()
        self.set_references(refs)
        self.set_questioned(str(q))
        self.statusBar().showMessage("Sample: Alice's references vs a questioned signature (a forgery)", 8000)

    # ============================================================================ dialogs
    def model_summary_html(self) -> str:
        v = self._verifier
        if v is None:
            return "<p>The model is still loading.</p>"
        c = v.card
        cal = v.calibration
        rows = [("Name", c.name), ("Architecture", c.architecture), ("Model id", v.model.model_id),
                ("File", str(v.model.path) if v.model.path else "built-in (no file)"),
                ("Device", v.device_text), ("Metric", f"{v.metric} (card default: {c.distance})"),
                ("Thresholds", f"genuine \u2264 {cal.accept:.3f}, forgery &gt; {cal.reject:.3f} "
                               f"(EER threshold {cal.eer_threshold:.3f})"),
                ("Created", c.created or "\u2014"), ("Base model", c.base_model or "\u2014")]
        if c.metrics:
            rows.append(("Accuracy", html.escape(", ".join(f"{k}: {val}" for k, val in c.metrics.items()
                                                           if not isinstance(val, (dict, list))))[:600]))
        warn = ("<p style='background:#fff3b0;padding:6px'><b>Untrained demo weights:</b> verdicts are "
                "meaningless.</p>") if c.random_init else ""
        t = "".join(f"<tr><td><b>{k}</b></td><td>{html.escape(str(val)) if k not in ('Thresholds', 'Accuracy') else val}"
                    f"</td></tr>" for k, val in rows)
        return f"{warn}<table cellpadding='3'>{t}</table><p>{html.escape(c.intended_use)}</p>"

    def show_model_info(self) -> None:
        v = self._verifier
        dlg = QDialog(self)
        dlg.setWindowTitle("Model information")
        dlg.resize(640, 520)
        lay = QVBoxLayout(dlg)
        tb = QTextBrowser()
        body = self.model_summary_html()
        if v is not None:
            body += "<h4>Model card</h4><pre>" + html.escape(json.dumps(v.card.to_dict(), indent=2)) + "</pre>"
        tb.setHtml(body)
        lay.addWidget(tb)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        bb.rejected.connect(dlg.close)
        lay.addWidget(bb)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._info_dialog = dlg
        dlg.show()

    def show_about(self) -> None:
        from sigverify import __version__

        QMessageBox.about(self, "About sigverify",
                          f"<h3>sigverify {__version__}</h3><p>Offline signature verification for bank clerks. "
                          f"Verdicts are advisory: 'refer' and 'forgery' go to a supervisor.</p>"
                          f"{self.model_summary_html()}")

    # ============================================================================ lifecycle
    def closeEvent(self, e) -> None:  # noqa: N802
        self.settings.save()
        self.jobs.shutdown()
        super().closeEvent(e)

    def wait_idle(self, timeout_ms: int = 60000) -> bool:
        """Process events until no job runs (for scripts and the --screenshot mode). False on timeout,
        or at once when the start-up model failed to load and no other model is coming."""
        deadline = time.monotonic() + timeout_ms / 1000
        app = QApplication.instance()
        while time.monotonic() < deadline:
            app.processEvents()
            if self._verifier is not None and not self.jobs.is_busy() and not self._pending:
                return True
            if self.model_unavailable():
                return False
            time.sleep(0.01)
        return False


__all__ = ["MainWindow"]
