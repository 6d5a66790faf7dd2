"""Model menu additions: "Fine-tune on my references..." (the wizard) and "Manage models..." (saved user
models with their cards: switch, rename, delete). ``install_training_ui(main_window)`` wires both into any
window offering the MainWindow hooks (``add_menu`` / ``switch_model`` / ``current_verifier``)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

DASH = "\u2014"


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


MIN_COMPARABLE_WRITERS = 10  # an EER measured on fewer writers is not shown as comparable


def measured_on(card) -> tuple[int | None, str]:
    """(number of writers, what they were) behind the EER shown for a model: the held-out writers of a
    fine-tuning run, or the test writers of a trained model."""
    if card is None:
        return None, ""
    m = card.metrics or {}
    val = m.get("validation") or {}
    after = val.get("after") or {}
    if after:
        n = after.get("writers", val.get("writers"))
        return (int(n) if n is not None else None), "held-out writers of its fine-tuning data"
    test = m.get("test") or {}
    first = test.get("all") or (next(iter(test.values())) if test else {})
    if isinstance(first, dict) and first:
        n = first.get("writers")
        if n is None and test:
            n = sum(int(v.get("writers", 0)) for v in test.values() if isinstance(v, dict)) or None
        return (int(n) if n is not None else None), "test writers never seen in training"
    return None, ""


def eer_cell(card, eer) -> tuple[str, bool]:
    """The Skilled EER cell text and whether it is comparable with the other models' figures."""
    if eer is None:
        return "\u2014", False
    n, what = measured_on(card)
    if n is None:
        return f"{_pct(eer)} (writers unknown)", False
    if n < MIN_COMPARABLE_WRITERS:
        return f"({_pct(eer)} on {n} writer{'s' if n != 1 else ''}: too few to compare)", False
    return f"{_pct(eer)} on {n} writers", True


def card_html(m) -> str:
    """A readable summary of a model card (plus the raw JSON) for the details pane."""
    if m.card is None:
        return f"<p><b>{html.escape(m.path.name)}</b></p><p style='color:#8a1c12'>{html.escape(m.error or '')}</p>"
    c = m.card
    s = m.summary()
    tr = c.training or {}
    rows = [
        ("Name", c.name),
        ("File", str(m.path)),
        ("Created", s["created"]),
        ("Architecture", c.architecture),
        ("Base model", c.base_model or "\u2014"),
        ("Shipped", "yes (read-only)" if m.shipped else "no"),
    ]
    data = tr.get("data") if isinstance(tr.get("data"), dict) else None
    if data:
        rows.append(
            (
                "Fine-tuned on",
                f"folder \u201c{data.get('folder')}\u201d: {data.get('writers')} writers, {data.get('images')} images",
            )
        )
    n, what = measured_on(c)
    if n is not None:
        rows.append(
            (
                "Measured on",
                f"{n} {what}"
                + ("" if n >= MIN_COMPARABLE_WRITERS else " \u2014 too few writers: not comparable with other models"),
            )
        )
    if s.get("eer_before") is not None or s.get("eer_after") is not None:
        rows.append(("Skilled EER (held-out)", f"{_pct(s.get('eer_before')) or DASH} \u2192 {_pct(s.get('eer_after'))}"))
        rows.append(
            ("Random EER (held-out)", f"{_pct(s.get('eer_random_before')) or DASH} \u2192 {_pct(s.get('eer_random_after'))}")
        )
    if tr.get("seconds") is not None:
        rows.append(("Training time", f"{tr['seconds']} s on {tr.get('device', '?')}"))
    if tr.get("calibration"):
        rows.append(("Calibration", tr["calibration"]))
    if c.random_init:
        rows.append(("Warning", "UNTRAINED random weights"))
    body = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    raw = html.escape(json.dumps({k: v for k, v in c.to_dict().items() if k != "intended_use"}, indent=1)[:20000])
    return f"<table cellspacing=4>{body}</table><p><b>Model card</b></p><pre>{raw}</pre>"


class ManageModelsDialog(QDialog):
    """Saved models with their cards; switch to one, rename or delete it (never the shipped model)."""

    def __init__(self, main_window=None, parent: QWidget | None = None):
        super().__init__(parent or main_window)
        self.main_window = main_window
        self.setWindowTitle("Manage models")
        self.resize(900, 520)
        self.models: list = []
        #: asked before an unproven model is used: ``confirm(title, text) -> bool`` (tests replace it)
        self.confirm = lambda title, text: (
            QMessageBox.question(
                self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No
            )
            == QMessageBox.StandardButton.Yes
        )
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Name", "In use", "Created", "Base model", "Skilled EER (measured on)"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.itemSelectionChanged.connect(self._selected)
        self.table.doubleClicked.connect(lambda _i: self.use_selected())
        self.details = QTextBrowser()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setSizes([520, 380])
        self.use_btn = QPushButton("&Use this model")
        self.rename_btn = QPushButton("&Rename\u2026")
        self.delete_btn = QPushButton("&Delete\u2026")
        self.use_btn.clicked.connect(self.use_selected)
        self.rename_btn.clicked.connect(lambda: self.rename_selected())
        self.delete_btn.clicked.connect(lambda: self.delete_selected())
        self.status = QLabel("")
        self.status.setWordWrap(True)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        bb.rejected.connect(self.reject)
        row = QHBoxLayout()
        for b in (self.use_btn, self.rename_btn, self.delete_btn):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(bb)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.status)
        lay.addLayout(row)
        self.refresh()

    def _shipped_active(self) -> bool:
        mw = self.main_window
        v = mw.current_verifier() if mw is not None else None
        return v is not None and getattr(v.model, "path", None) is None and not v.card.random_init

    def _active_path(self) -> str | None:
        mw = self.main_window
        v = mw.current_verifier() if mw is not None else None
        p = getattr(getattr(v, "model", None), "path", None) if v is not None else None
        return str(Path(p).resolve()) if p else None

    def refresh(self, select: str | None = None) -> None:
        from sigverify.store.models import clean_orphans, list_models

        clean_orphans()
        self.models = list_models()
        active = self._active_path()
        self.table.setRowCount(len(self.models))
        self.active_row = None
        for r, m in enumerate(self.models):
            s = m.summary()
            in_use = active == str(m.path.resolve()) or (active is None and m.shipped and self._shipped_active())
            if in_use:
                self.active_row = r
            name = s["name"] + ("  (shipped)" if m.shipped else "")
            eer, comparable = eer_cell(m.card, s.get("eer_after"))
            n, what = measured_on(m.card)
            vals = [name, "\u2713 active" if in_use else "", s["created"][:16].replace("T", " "), s.get("base_model") or "", eer]
            for c, v in enumerate(vals):
                it = QTableWidgetItem(v)
                if in_use:
                    f = it.font()
                    f.setBold(True)
                    it.setFont(f)
                if c == 4:
                    it.setToolTip(f"measured on {n} {what}" if n is not None else "how it was measured is unknown")
                    if not comparable:
                        it.setForeground(Qt.GlobalColor.darkGray)
                if m.error:
                    it.setForeground(Qt.GlobalColor.darkRed)
                    it.setToolTip(m.error)
                self.table.setItem(r, c, it)
        self.table.resizeColumnToContents(1)
        if self.models:
            idx = next((i for i, m in enumerate(self.models) if select and str(m.path) == str(select)), 0)
            self.table.selectRow(idx)
        self._selected()

    def selected(self):
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.models[rows[0].row()] if rows and rows[0].row() < len(self.models) else None

    def select_path(self, path: str) -> bool:
        for i, m in enumerate(self.models):
            if str(m.path) == str(path):
                self.table.selectRow(i)
                return True
        return False

    def _selected(self) -> None:
        m = self.selected()
        self.details.setHtml(card_html(m) if m else "<p>No saved models yet: use Model \u203a Fine-tune on my references.</p>")
        user = m is not None and not m.shipped
        self.use_btn.setEnabled(m is not None and m.card is not None)
        self.rename_btn.setEnabled(user)
        self.delete_btn.setEnabled(user)

    def use_selected(self) -> bool:
        """Switch the main window to the selected model: a model whose figures are unreliable or worse
        than its base needs an explicit confirmation, and so does any verdict-changing switch."""
        m = self.selected()
        if m is None or self.main_window is None or m.card is None:
            return False
        n, what = measured_on(m.card)
        s = m.summary()
        problems = []
        if n is None or n < MIN_COMPARABLE_WRITERS:
            problems.append(f"its accuracy was measured on {n if n is not None else 'an unknown number of'} writer(s) only")
        if s.get("eer_before") is not None and s.get("eer_after") is not None and s["eer_after"] > s["eer_before"] + 0.005:
            problems.append(
                f"it is worse than its base model (skilled EER {_pct(s['eer_before'])} \u2192 {_pct(s['eer_after'])})"
            )
        if (
            problems
            and not m.shipped
            and not self.confirm("Use an unproven model?", f"Use \u201c{m.name}\u201d although " + " and ".join(problems) + "?")
        ):
            self.status.setText(f"Not switched: {'; '.join(problems)}.")
            return False
        cmp = getattr(self.main_window, "comparison", None)
        if cmp is not None and not cmp.confirm_verdict_change("the model", f"switch to {m.name}"):
            return False
        self.main_window.switch_model(str(m.path))
        self.status.setText(f"Switching to {m.name}\u2026")
        return True

    def rename_selected(self, new_name: str | None = None) -> str | None:
        from sigverify.errors import SigverifyError
        from sigverify.store.models import rename_model

        m = self.selected()
        if m is None or m.shipped:
            return None
        if new_name is None:
            new_name, ok = QInputDialog.getText(self, "Rename model", "New name:", text=m.name)
            if not ok:
                return None
        was_active = self._active_path() == str(m.path.resolve())
        try:
            new = rename_model(m.path, new_name)
        except (SigverifyError, OSError) as exc:
            self.status.setText(f"<span style='color:#8a1c12'>Not renamed: {html.escape(str(exc))}</span>")
            return None
        if was_active and self.main_window is not None:
            self.main_window.switch_model(str(new))  # keep using it under its new file name
        self.status.setText(f"Renamed to {new.name}")
        self.refresh(select=str(new))
        return str(new)

    def delete_selected(self, confirm: bool = True) -> bool:
        from sigverify.errors import SigverifyError
        from sigverify.store.models import delete_model

        m = self.selected()
        if m is None or m.shipped:
            return False
        if self._active_path() == str(m.path.resolve()):
            self.status.setText("<span style='color:#8a1c12'>This model is in use: switch to another model first.</span>")
            return False
        if (
            confirm
            and QMessageBox.question(self, "Delete model", f"Delete the model \u201c{m.name}\u201d? This cannot be undone.")
            != QMessageBox.StandardButton.Yes
        ):
            return False
        try:
            delete_model(m.path)
        except (SigverifyError, OSError) as exc:
            self.status.setText(f"<span style='color:#8a1c12'>Not deleted: {html.escape(str(exc))}</span>")
            return False
        self.status.setText(f"Deleted {m.name}")
        self.refresh()
        return True


def _model_menu(main_window):
    """The Model menu the comparison controller declared (``menu("model")``), else a new one."""
    return main_window.menu("model") or main_window.add_menu("&Model", key="model")


class TrainingUI:
    """What ``install_training_ui`` added: the two actions and the open dialogs."""

    def __init__(self, main_window):
        self.main_window = main_window
        self.wizard = None
        self.manager = None
        self.actions: dict[str, QAction] = {}

    def open_wizard(self, folder: str | None = None, base_path: str | None = None):
        from sigverify.gui.wizard import FinetuneWizard

        if self.wizard is not None and self.wizard.isVisible():
            self.wizard.raise_()
            self.wizard.activateWindow()
            return self.wizard
        self.wizard = FinetuneWizard(self.main_window, folder=folder, base_path=base_path)
        self.wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.wizard.model_saved.connect(lambda _p: self.manager.refresh() if self.manager and self.manager.isVisible() else None)
        self.wizard.show()
        return self.wizard

    def open_manager(self):
        if self.manager is None:
            self.manager = ManageModelsDialog(self.main_window)
        else:
            self.manager.refresh()
        self.manager.show()
        self.manager.raise_()
        return self.manager


def install_training_ui(main_window) -> TrainingUI:
    """Add "Fine-tune on my references..." and "Manage models..." to the window's Model menu."""
    ui = TrainingUI(main_window)
    menu = _model_menu(main_window)
    menu.addSeparator()
    a = QAction("&Fine-tune on my references\u2026", main_window)
    a.setStatusTip("Adapt the model to your bank's own reference signatures (about a minute on CPU)")
    a.triggered.connect(lambda _=False: ui.open_wizard())
    menu.addAction(a)
    b = QAction("&Manage models\u2026", main_window)
    b.setStatusTip("Saved models with their cards: switch, rename, delete")
    b.triggered.connect(lambda _=False: ui.open_manager())
    menu.addAction(b)
    ui.actions = {"finetune": a, "manage": b}
    ui.menu = menu
    main_window.training_ui = ui
    return ui


__all__ = ["install_training_ui", "ManageModelsDialog", "TrainingUI", "card_html"]
