"""The sigverify main window: layout (Reference and Questioned panes, views, the verdict panel), the
File / View / Help menus, the status bar and drag-and-drop. Nothing else.

The work lives in controllers, each in its own module and each declaring its own menus:

- :class:`~sigverify.gui.comparison.ComparisonController` (``win.comparison``): model session, loading
  signatures, verifying, verdict-changing settings; the Model and Settings menus;
- :class:`~sigverify.gui.case_controller.CaseController` (``win.case``): the case on screen, its one
  audit record and the clerk's decision (controls in the verdict panel);
- the customer library (``sigverify.gui.library_ui``, Library menu) and training
  (``sigverify.gui.models_ui``, items in the Model menu) attach through ``win.menu(key)``.

Public hooks (stable, documented in docs/gui.md): ``add_menu(title, key)``, ``menu(key)``,
``set_references``, ``set_reference_signatures``, ``start_customer_case``, ``set_questioned``,
``set_verifier``, ``switch_model``, ``current_verifier``, ``may_replace_case``, ``show_error``; signals
``verification_done``, ``verifier_changed``, ``model_failed``, ``model_fallback``, ``customer_changed``.
"""

from __future__ import annotations

import html
import json
import time
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from sigverify.gui.case_controller import CaseController
from sigverify.gui.comparison import MODEL, QUE, REF, ComparisonController
from sigverify.gui.panes import (
    IMAGE_SUFFIXES,
    ORIGINAL,
    OVERLAY,
    PREPROCESSED,
    OverlayPane,
    QuestionedPane,
    ReferencePane,
    SignaturePane,
    local_files_from_mime,
)
from sigverify.gui.settings import AppSettings
from sigverify.gui.verdict_panel import VerdictPanel

IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"
DEFAULT_SIZE = QSize(1280, 800)
VERDICT_PANEL_WIDTH = (280, 380)  # min / max logical px: the verdict and the decision buttons always fit
#: below this window height (logical px; 1920x1080 at 200 % is 540) the View toolbar folds into the View
#: menu (same actions and shortcuts), so the gauge and the decision keep their room
COMPACT_HEIGHT = 620

STYLE = """
QMainWindow, QWidget#central { background: #eef1f4; }
QFrame#pane { background: #ffffff; border: 1px solid #cfd6dd; border-radius: 8px; }
QFrame#pane[active="true"] { border: 2px solid #0072B2; }
QLabel#paneTitle { font-size: 15px; font-weight: 600; color: #1d2733; }
QLabel#paneCount { color: #5f6b77; padding-left: 6px; }
QLabel#paneCaption { color: #5f6b77; }
QLabel#rerun { background: #e8f1fb; color: #0b3d66; border-radius: 4px; padding: 4px 6px; }
QLabel#banner { background: #fff3b0; color: #4a3b00; border-bottom: 1px solid #e3cf6a; padding: 7px 14px;
                font-weight: 600; }
QLabel#modelWarning { background: #fde9d2; color: #6b3500; border-bottom: 1px solid #f0c08a; padding: 7px 14px; }
QLabel#modelError, QLabel#jobError { background: #fdecea; color: #8a1c12; border-bottom: 1px solid #f1b0a8;
                                     padding: 7px 14px; }
QLabel#details { color: #1d2733; }
QLabel#decisionState { color: #2d3a47; }
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


def fit_size(available: QSize, wanted: QSize = DEFAULT_SIZE, frame: QSize = QSize(16, 40)) -> QSize:
    """The window size for a screen's available geometry: ``wanted`` or less, never off-screen."""
    return QSize(
        max(320, min(wanted.width(), available.width() - frame.width())),
        max(240, min(wanted.height(), available.height() - frame.height())),
    )


class MainWindow(QMainWindow):
    """See the module docstring for the public hooks."""

    verification_done = Signal(object)  # VerificationResult of every finished comparison
    verifier_changed = Signal(object)  # the new Verifier (startup load, switch_model, device change)
    model_failed = Signal(str)  # a model could not be loaded (message shown in the window too)
    model_fallback = Signal(str)  # the start-up model was refused and another one is used (shown too)
    customer_changed = Signal(object)  # account id of the customer whose case starts (None: ad-hoc)

    def __init__(
        self,
        verifier=None,
        model_path: str | None = None,
        device: str | None = None,
        settings: AppSettings | None = None,
        parent: QWidget | None = None,
        fallback: bool = True,
    ):
        super().__init__(parent)
        self.settings = settings or AppSettings.load()
        self._mode = ORIGINAL
        self._last_pane: SignaturePane | None = None
        self._info_dialog: QDialog | None = None
        self._menus: dict[str, QMenu] = {}
        self.fit_on_show = True  # False: keep an explicit size (``--size``) even beyond the screen
        self._sized = False
        self.comparison = ComparisonController(self, model_path, device, fallback)
        self.jobs = self.comparison.jobs

        self.setWindowTitle("sigverify \u2014 signature verification")
        self.setWindowIcon(_icon())
        self.setStyleSheet(STYLE)
        self.setAcceptDrops(True)
        self._build_ui()
        self.case = CaseController(self, self.verdict_panel)
        self._build_menus()
        self._build_statusbar()
        self.update_model_ui()
        self.set_view_mode(ORIGINAL)
        self.fit_to_screen()
        QApplication.instance().focusChanged.connect(self._focus_changed)
        self.comparison.start(verifier)

    # ============================================================================ public hooks
    def add_menu(self, title: str, key: str | None = None) -> QMenu:
        """A new top-level menu, inserted before Help; ``key`` (e.g. "library") names it for ``menu(key)``."""
        menu = QMenu(title, self)
        self.menuBar().insertMenu(self.help_menu.menuAction(), menu)
        self._menus[key or title.replace("&", "").strip().lower()] = menu
        return menu

    def menu(self, key: str) -> QMenu | None:
        """A menu declared with ``add_menu(..., key)``: "file", "view", "model", "settings", "help", ..."""
        return self._menus.get(key)

    def make_action(self, text: str, slot, shortcut=None, tip: str = "", checkable: bool = False) -> QAction:
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

    def current_verifier(self):
        """The active ``Verifier``, or None while the model is still loading."""
        return self.comparison.current_verifier()

    def model_unavailable(self) -> bool:
        return self.comparison.model_unavailable()

    def set_verifier(self, verifier) -> None:
        self.comparison.set_verifier(verifier)

    def switch_model(self, path: str, persist: bool = True) -> int:
        """Load the model at ``path`` in the background and switch to it; on failure the current model stays."""
        return self.comparison.switch_model(path, persist)

    def may_replace_case(self, what: str) -> bool:
        """Ask before an undecided case is replaced by ``what``; False = keep the case on screen."""
        return self.case.may_replace(what)

    def set_references(self, paths: list[str], add: bool = False) -> None:
        """Load reference signature files (folders are expanded); replaces the set unless ``add``."""
        if self.may_replace_case("use other references"):
            self.comparison.set_references(paths, add)

    def set_reference_signatures(self, sigs: list, label: str = "", customer_id: str | None = None) -> None:
        """Already-embedded ``Signature`` objects (made with ``current_verifier()``) as the reference set."""
        self.comparison.set_reference_signatures(sigs, label, customer_id)

    def start_customer_case(self, sigs: list, label: str, customer_id: str) -> None:
        """A customer's references start a new case: the questioned pane is cleared."""
        self.comparison.start_customer_case(sigs, label, customer_id)

    def set_questioned(self, path: str) -> None:
        """Load the questioned signature file and verify it against the references."""
        if self.may_replace_case("verify another signature"):
            self.comparison.set_questioned(path)

    def set_questioned_image(self, rgb, source: str = "clipboard") -> None:
        if self.may_replace_case("verify another signature"):
            self.comparison.array_job(QUE, rgb, source)

    def add_reference_image(self, rgb, source: str = "clipboard") -> None:
        if self.may_replace_case("change the references"):
            self.comparison.array_job(REF, rgb, source)

    def remove_reference(self, index: int) -> None:
        if self.may_replace_case("change the references"):
            self.comparison.remove_reference(index)

    def result(self):
        """The last ``VerificationResult`` (None before the first comparison, after Clear or a failed load)."""
        return self.comparison.result()

    def is_busy(self) -> bool:
        return self.jobs.is_busy()

    def references(self) -> list:
        return self.ref_pane.signatures()

    def questioned(self):
        return self.q_pane.signature()

    def clear(self) -> None:
        """Start a new comparison: both panes and the gauge are emptied."""
        if not self.may_replace_case("clear the window"):
            return
        self.comparison.clear()
        self.statusBar().showMessage("Cleared \u2014 ready for a new comparison", 4000)

    def cancel(self, role: str) -> None:
        """Cancel the running load of ``role`` ("reference" / "questioned")."""
        self.comparison.cancel(role)

    def show_error(self, text: str) -> None:
        """A background failure nobody else reported: a red bar above the panes and the status bar."""
        self.job_error.setText("\u26a0  " + text)
        self.job_error.show()
        self.statusBar().showMessage(text, 15000)

    def set_view_mode(self, mode: str) -> None:
        """ "original", "preprocessed" or "overlay"."""
        if mode not in (ORIGINAL, PREPROCESSED, OVERLAY):
            raise ValueError(f"unknown view mode {mode!r}")
        self._mode = mode
        self.view_actions[mode].setChecked(True)
        if mode == OVERLAY:
            self.stack.setCurrentWidget(self.overlay_pane)
            self.refresh_overlay()
        else:
            self.stack.setCurrentWidget(self.side_by_side)
            self.ref_pane.set_view_mode(mode)
            self.q_pane.set_view_mode(mode)

    def view_mode(self) -> str:
        return self._mode

    # compatibility views of the controllers' widgets
    @property
    def gauge(self):
        return self.verdict_panel.gauge

    @property
    def details(self):
        return self.verdict_panel.details

    @property
    def metric_actions(self):
        return self.comparison.metric_actions

    @property
    def device_actions(self):
        return self.comparison.device_actions

    @property
    def act_adapt(self):
        return self.comparison.act_adapt

    @property
    def model_menu(self) -> QMenu:
        return self.menu("model")

    # ============================================================================ screen
    def fit_to_screen(self) -> None:
        """Size and place the window inside the available geometry of the screen it opens on."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(DEFAULT_SIZE)
            return
        avail = screen.availableGeometry()
        size = fit_size(avail.size())
        self.resize(size)
        self.move(
            avail.x() + max(0, (avail.width() - size.width()) // 2),
            avail.y() + max(0, (avail.height() - size.height() - 30) // 2),
        )

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        self._apply_compact()

    def is_compact(self) -> bool:
        return self.height() < COMPACT_HEIGHT

    def _apply_compact(self) -> None:
        """Short windows (200 % scaling): secondary toolbar actions live in the View menu only."""
        tb = getattr(self, "toolbar", None)
        if tb is not None and tb.isHidden() != self.is_compact():
            tb.setVisible(not self.is_compact())

    def showEvent(self, e) -> None:  # noqa: N802
        super().showEvent(e)
        if not self._sized and self.fit_on_show:
            self._sized = True
            QTimer.singleShot(0, self._keep_on_screen)

    def _keep_on_screen(self) -> None:
        screen = self.screen()
        if screen is None:
            return
        avail = screen.availableGeometry()
        fr = self.frameGeometry()
        if fr.width() > avail.width() or fr.height() > avail.height():
            extra = QSize(fr.width() - self.width(), fr.height() - self.height())
            self.resize(fit_size(avail.size(), self.size(), extra))
        fr = self.frameGeometry()
        x = min(max(fr.x(), avail.x()), avail.right() - fr.width() + 1)
        y = min(max(fr.y(), avail.y()), avail.bottom() - fr.height() + 1)
        if (x, y) != (fr.x(), fr.y()):
            self.move(max(x, avail.x()), max(y, avail.y()))

    # ============================================================================ UI building
    def _build_ui(self) -> None:
        central = QWidget()
        central.setObjectName("central")
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self.banner = QLabel(
            "\u26a0  Untrained demo weights \u2014 verdicts are meaningless. "
            "Open a trained model (Model \u203a Open model\u2026) before real use."
        )
        self.banner.setObjectName("banner")
        self.model_error = QLabel()
        self.model_error.setObjectName("modelError")
        self.model_warning = QLabel()  # start-up fallback: the chosen model was refused, another is in use
        self.model_warning.setObjectName("modelWarning")
        self.job_error = QLabel()  # a background job failed and nobody else said so
        self.job_error.setObjectName("jobError")
        for lab in (self.banner, self.model_error, self.model_warning, self.job_error):
            lab.setWordWrap(True)
            lab.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            lab.hide()
            outer.addWidget(lab)

        body = QHBoxLayout()
        body.setContentsMargins(10, 8, 10, 8)
        body.setSpacing(10)
        outer.addLayout(body, 1)

        self.ref_pane = ReferencePane()
        self.q_pane = QuestionedPane()
        self.side_by_side = QSplitter(Qt.Orientation.Horizontal)
        self.side_by_side.setChildrenCollapsible(False)
        self.side_by_side.setHandleWidth(10)
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

        self.verdict_panel = VerdictPanel()
        self.verdict_panel.setMinimumWidth(VERDICT_PANEL_WIDTH[0])
        self.verdict_panel.setMaximumWidth(VERDICT_PANEL_WIDTH[1])
        self.result_panel = self.verdict_panel
        body.addWidget(self.verdict_panel)
        self.setCentralWidget(central)

        c = self.comparison
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
        self.ref_pane.selection_changed.connect(lambda _i: self.refresh_overlay())
        self.overlay_pane.reference_chosen.connect(self.ref_pane.select)
        from sigverify.gui.crop import attach as attach_crop_tool

        attach_crop_tool(self)  # the questioned pane's Crop… re-reads the signature from the chosen rectangle
        c.show_result(None)
        # Tab order: reference pane and its buttons, questioned pane and its buttons, the decision.
        d = self.verdict_panel.decision
        order = [
            self.ref_pane,
            self.ref_pane.open_button,
            self.ref_pane.clear_button,
            self.ref_pane.strip,
            self.ref_pane.add_button,
            self.ref_pane.remove_button,
            self.q_pane,
            self.q_pane.open_button,
            self.q_pane.clear_button,
            d.buttons["accept"],
            d.buttons["refer"],
            d.buttons["reject"],
            d.reason,
            d.confirm,
            d.back,
        ]
        for a, b in zip(order, order[1:]):
            QWidget.setTabOrder(a, b)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        SK = QKeySequence.StandardKey
        A = self.make_action
        m = mb.addMenu("&File")
        self._menus["file"] = m
        self.act_open_ref = A(
            "Open &reference\u2026",
            lambda: self.open_dialog(REF),
            SK.Open,
            "Open the account holder's reference signatures (replaces the set)",
        )
        self.act_add_ref = A(
            "&Add reference\u2026", lambda: self.open_dialog(REF, add=True), "Ctrl+Shift+A", "Add signatures to the reference set"
        )
        self.act_open_q = A(
            "Open &questioned\u2026", lambda: self.open_dialog(QUE), "Ctrl+Shift+O", "Open the signature to verify"
        )
        self.act_paste = A("&Paste image", self.paste, SK.Paste, "Paste an image into the focused pane")
        self.act_clear = A("&Clear", self.clear, SK.New, "Empty both panes for a new comparison")
        self.recent_menu = QMenu("Recent &files", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.act_quit = A("&Quit", self.close, SK.Quit)
        for a in (self.act_open_ref, self.act_add_ref, self.act_open_q):
            m.addAction(a)
        m.addMenu(self.recent_menu)
        m.addSeparator()
        m.addAction(self.act_paste)
        m.addAction(self.act_clear)
        m.addSeparator()
        m.addAction(self.act_quit)
        self.file_menu = m
        m = mb.addMenu("&View")
        self._menus["view"] = m
        self.view_group = QActionGroup(self)
        self.view_actions = {
            ORIGINAL: A(
                "&Original scans", lambda: self.set_view_mode(ORIGINAL), "Ctrl+1", "Show the scans as they were loaded", True
            ),
            PREPROCESSED: A(
                "&Preprocessed (network input)",
                lambda: self.set_view_mode(PREPROCESSED),
                "Ctrl+2",
                "Show what the model sees after cleaning and normalising",
                True,
            ),
            OVERLAY: A(
                "O&verlay",
                lambda: self.set_view_mode(OVERLAY),
                "Ctrl+3",
                "Draw both signatures on one canvas (blue reference, orange questioned)",
                True,
            ),
        }
        for a in self.view_actions.values():
            self.view_group.addAction(a)
            m.addAction(a)
        self.act_toggle_view = A("&Toggle original / preprocessed", self.toggle_view, "Ctrl+T")
        m.addAction(self.act_toggle_view)
        m.addSeparator()
        self.act_zoom_in = A("Zoom &in", lambda: self._zoom("in"), ["Ctrl++", "Ctrl+="])
        self.act_zoom_out = A("Zoom &out", lambda: self._zoom("out"), "Ctrl+-")
        self.act_fit = A("&Fit to window", lambda: self._zoom("fit"), "Ctrl+0")
        for a in (self.act_zoom_in, self.act_zoom_out, self.act_fit):
            m.addAction(a)
        m = mb.addMenu("&Help")
        self._menus["help"] = m
        self.act_sample = A(
            "&Try a sample", self.try_sample, "F5", "Load Alice's demo references and a questioned sample, and verify"
        )
        self.act_about = A("&About sigverify", self.show_about, SK.HelpContents)
        m.addAction(self.act_sample)
        m.addSeparator()
        m.addAction(self.act_about)
        self.help_menu = m
        self.comparison.build_menus()  # Model and Settings: declared by the comparison controller

        tb = QToolBar("View")
        tb.setObjectName("viewToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addWidget(QLabel(" View: "))
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
        self.device_label.setToolTip("Where the model runs")
        self.last_label = QLabel("No verification yet")
        for w in (self.model_label, self.untrained_badge, self.device_label, self.last_label):
            sb.addPermanentWidget(w)

        self.untrained_badge.hide()

    def update_model_ui(self) -> None:
        v = self.current_verifier()
        if v is None:
            self.model_label.setText("Model: loading\u2026")
            self.device_label.setText("Device: \u2026")
            self.banner.hide()
            self.untrained_badge.hide()
            return
        card = v.card
        self.model_label.setText(f"Model: {card.name}")
        self.model_label.setToolTip(str(v.model.path) if v.model.path else "built-in")
        self.device_label.setText(v.device_text)  # "CPU (2 threads)" / "GPU (name)": short, the status bar fits 200 %
        self.banner.setVisible(bool(card.random_init))
        self.untrained_badge.setVisible(bool(card.random_init))
        self.update_titles()

    def update_titles(self) -> None:
        self.ref_pane.set_subtitle(self.comparison._ref_label)

    def refresh_overlay(self) -> None:
        if self._mode == OVERLAY:
            self.overlay_pane.set_content(self.ref_pane.signatures(), self.q_pane.signature(), self.ref_pane.selected_index())

    def remember(self, entry: tuple) -> None:
        self.settings.add_recent("\t".join(entry))
        self.settings.save()

    # ============================================================================ user actions
    def _dropped(self, role: str, files: list[str]) -> None:
        if role == REF:
            self.set_references(files)
        elif len(files) == 1:
            self.set_questioned(files[0])
        else:
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
            self.statusBar().showMessage(f"Dropped outside the panes: used as the {what} (drop on a pane to choose)", 8000)
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
        if self.may_replace_case("clear a pane"):
            self.comparison.clear_role(role)

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
        if not self.may_replace_case("try the sample"):
            return
        self.comparison.clear()
        self.comparison.set_references(refs)
        self.comparison.set_questioned(str(q))
        self.statusBar().showMessage("Sample: Alice's references vs a questioned signature (a forgery)", 8000)

    # ============================================================================ dialogs
    def model_summary_html(self) -> str:
        v = self.current_verifier()
        if v is None:
            return "<p>The model is still loading.</p>"
        c = v.card
        cal = v.calibration
        rows = [
            ("Name", c.name),
            ("Architecture", c.architecture),
            ("Model id", v.model.model_id),
            ("File", str(v.model.path) if v.model.path else "built-in (no file)"),
            ("Device", v.device_text),
            ("Metric", f"{v.metric} (card default: {c.distance})"),
            (
                "Thresholds",
                f"genuine \u2264 {cal.accept:.3f}, forgery &gt; {cal.reject:.3f} (EER threshold {cal.eer_threshold:.3f})",
            ),
            ("Created", c.created or "\u2014"),
            ("Base model", c.base_model or "\u2014"),
        ]
        if c.metrics:
            rows.append(
                (
                    "Accuracy",
                    html.escape(", ".join(f"{k}: {val}" for k, val in c.metrics.items() if not isinstance(val, (dict, list))))[
                        :600
                    ],
                )
            )
        warn = (
            ("<p style='background:#fff3b0;padding:6px'><b>Untrained demo weights:</b> verdicts are meaningless.</p>")
            if c.random_init
            else ""
        )
        t = "".join(
            f"<tr><td><b>{k}</b></td><td>{html.escape(str(val)) if k not in ('Thresholds', 'Accuracy') else val}</td></tr>"
            for k, val in rows
        )
        return f"{warn}<table cellpadding='3'>{t}</table><p>{html.escape(c.intended_use)}</p>"

    def show_model_info(self) -> None:
        v = self.current_verifier()
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

        QMessageBox.about(
            self,
            "About sigverify",
            f"<h3>sigverify {__version__}</h3><p>Offline signature verification for bank clerks. "
            f"Verdicts are advisory: 'refer' and 'forgery' go to a supervisor.</p>"
            f"{self.model_summary_html()}",
        )

    # ============================================================================ lifecycle
    def closeEvent(self, e) -> None:  # noqa: N802
        if not self.may_replace_case("quit"):
            e.ignore()
            return
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
            if self.current_verifier() is not None and not self.jobs.is_busy() and not self.comparison._pending:
                return True
            if self.model_unavailable():
                return False
            time.sleep(0.01)
        return False


__all__ = ["MainWindow", "fit_size", "MODEL"]
