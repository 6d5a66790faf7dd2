"""Model menu additions: "Fine-tune on my references..." (the wizard) and "Manage models..." (saved user
models with their cards: switch, rename, delete). ``install_training_ui(main_window)`` wires both into any
window offering the MainWindow hooks (``add_menu`` / ``switch_model`` / ``current_verifier``)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QInputDialog,
                               QLabel, QMessageBox, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                               QTextBrowser, QVBoxLayout, QWidget)


DASH = "\u2014"


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def card_html(m) -> str:
    """A readable summary of a model card (plus the raw JSON) for the details pane."""
    if m.card is None:
        return f"<p><b>{html.escape(m.path.name)}</b></p><p style='color:#8a1c12'>{html.escape(m.error or '')}</p>"
    c = m.card
    s = m.summary()
    tr = c.training or {}
    rows = [("Name", c.name), ("File", str(m.path)), ("Created", s["created"]), ("Architecture", c.architecture),
            ("Base model", c.base_model or "\u2014"), ("Shipped", "yes (read-only)" if m.shipped else "no")]
    data = tr.get("data") if isinstance(tr.get("data"), dict) else None
    if data:
        rows.append(("Fine-tuned on", f"folder \u201c{data.get('folder')}\u201d: {data.get('writers')} writers, "
                                      f"{data.get('images')} images"))
    if s.get("eer_before") is not None or s.get("eer_after") is not None:
        rows.append(("Skilled EER (held-out)", f"{_pct(s.get('eer_before')) or DASH} \u2192 {_pct(s.get('eer_after'))}"))
        rows.append(("Random EER (held-out)",
                     f"{_pct(s.get('eer_random_before')) or DASH} \u2192 {_pct(s.get('eer_random_after'))}"))
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
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Name", "Created", "Base model", "Skilled EER", "Writers"])
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
        for r, m in enumerate(self.models):
            s = m.summary()
            name = s["name"] + ("  (shipped)" if m.shipped else "") + ("  \u2713 in use" if active == str(m.path.resolve()) else "")
            vals = [name, s["created"][:16].replace("T", " "), s.get("base_model") or "", _pct(s.get("eer_after")),
                    "" if s.get("writers") is None else str(s["writers"])]
            for c, v in enumerate(vals):
                it = QTableWidgetItem(v)
                if m.error:
                    it.setForeground(Qt.GlobalColor.darkRed)
                    it.setToolTip(m.error)
                self.table.setItem(r, c, it)
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

    def use_selected(self) -> None:
        m = self.selected()
        if m is None or self.main_window is None:
            return
        self.main_window.switch_model(str(m.path))
        self.status.setText(f"Switching to {m.name}\u2026")

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
            self.status.setText("<span style='color:#8a1c12'>This model is in use: switch to another model first."
                                "</span>")
            return False
        if confirm and QMessageBox.question(self, "Delete model", f"Delete the model \u201c{m.name}\u201d? "
                                            "This cannot be undone.") != QMessageBox.StandardButton.Yes:
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
