"""Customer library in the GUI: Library menu, customer search box, Enrol / Manage references / History /
Batch dialogs, background embedding refresh, and the clerk's decision bar after each verification.

``install_library_ui(main_window)`` wires it into any window that offers the MainWindow hooks
``add_menu(title)``, ``addToolBar(toolbar)``, ``set_reference_signatures(sigs, label)``,
``current_verifier()`` and the signal ``verification_done(VerificationResult)`` (and, when present,
``verifier_changed(Verifier)``). All slow work (loading references, enrolling, refreshing embeddings,
batch runs) runs in a ``_Worker`` thread calling the Qt-free core with ``progress``/``should_stop``
callbacks; the worker only emits signals, widgets are touched on the GUI thread only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QDate, QObject, QStringListModel, Qt, QThread, Signal
from PySide6.QtGui import QAction, QPixmap
from PySide6.QtWidgets import (QCheckBox, QCompleter, QDateEdit, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QHeaderView, QInputDialog, QLabel, QLineEdit, QListWidget, QMessageBox,
                               QPlainTextEdit, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QToolBar,
                               QVBoxLayout, QWidget)

from sigverify.errors import Cancelled
from sigverify.store.audit import DECISIONS, VERDICT_DECISION
from sigverify.store.library import Library, account_of

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp);;All files (*)"
SETTING_DB = "library/db_path"
SETTING_OPERATOR = "audit/operator"
ZONE_COLOUR = {"genuine": "#1b7a3d", "refer": "#8a6d00", "forgery": "#a3261b"}


def _settings():
    try:
        from sigverify.gui.settings import qsettings

        return qsettings()
    except Exception:  # noqa: BLE001 - settings module missing: plain QSettings
        from PySide6.QtCore import QSettings

        return QSettings("sigverify", "sigverify")


# ==================================================================================== worker thread
class _Worker(QThread):
    """Runs ``fn(progress, should_stop)`` off the GUI thread; reports through queued signals only."""

    progressed = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, fn: Callable[[Callable[[float, str], None], Callable[[], bool]], Any],
                 parent: QObject | None = None):
        super().__init__(parent)
        self._fn = fn

    def cancel(self) -> None:
        self.requestInterruption()

    def run(self) -> None:  # worker thread: no widget access here
        try:
            res = self._fn(lambda f, m="": self.progressed.emit(float(f), str(m)), self.isInterruptionRequested)
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # noqa: BLE001 - every error becomes a message for the clerk
            self.failed.emit(str(exc) or type(exc).__name__)
        else:
            self.succeeded.emit(res)


# ==================================================================================== controller
class LibraryController(QObject):
    """Owns the library database and the current customer of one main window."""

    customer_loaded = Signal(str)  # account id whose references are now in the Reference pane
    audit_recorded = Signal(int)  # verification id appended to the audit log
    decision_recorded = Signal(int, str)  # verification id, decision
    embeddings_refreshed = Signal(object)  # RefreshReport
    message = Signal(str)

    def __init__(self, window, db_path: str | os.PathLike | None = None,
                 verifier_provider: Callable[[], Any] | None = None):
        super().__init__(window)
        self.window = window
        self.verifier_provider = verifier_provider or getattr(window, "current_verifier", lambda: None)
        s = _settings()
        path = db_path or s.value(SETTING_DB, "") or None
        self.library = Library(path, operator=(s.value(SETTING_OPERATOR, "") or None))
        self.current: str | None = None  # account id loaded into the Reference pane
        self._current_sources: set[str] = set()
        self._workers: set[_Worker] = set()
        self.decision_bar: DecisionBar | None = None
        self.refresh_worker: _Worker | None = None
        self._dialogs: list[QDialog] = []
        self.last_error = ""

    # ---- plumbing ----
    def verifier(self):
        v = self.verifier_provider()
        if v is None:
            raise RuntimeError("the model is still loading; try again in a moment")
        return v

    def start(self, fn, on_done=None, on_failed=None, on_progress=None, on_cancelled=None) -> _Worker:
        w = _Worker(fn, self)
        if on_progress:
            w.progressed.connect(on_progress)
        w.succeeded.connect(on_done or (lambda _r: None))
        w.failed.connect(on_failed or self._show_error)
        if on_cancelled:
            w.cancelled.connect(on_cancelled)
        self._workers.add(w)
        w.finished.connect(lambda: self._workers.discard(w))
        w.finished.connect(w.deleteLater)
        w.start()
        return w

    def busy(self) -> bool:
        return any(w.isRunning() for w in self._workers)

    def wait_idle(self, ms: int = 30000) -> bool:
        return all(w.wait(ms) for w in list(self._workers))

    def _show_error(self, msg: str) -> None:
        """Status bar + a non-modal message box (never blocks the event loop)."""
        self._status(f"Library: {msg}")
        self.last_error = msg
        box = QMessageBox(QMessageBox.Icon.Warning, "Customer library", msg, QMessageBox.StandardButton.Ok,
                          self.window)
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.show()

    def _status(self, text: str, ms: int = 8000) -> None:
        self.message.emit(text)
        sb = getattr(self.window, "statusBar", None)
        if callable(sb):
            sb().showMessage(text, ms)

    def close(self) -> None:
        """Cancel running jobs, wait for them, close the database (safe to call twice)."""
        for w in list(self._workers):
            w.cancel()
            w.wait(30000)
        self.library.close()

    # ---- customers ----
    def load_customer(self, account_id: str) -> _Worker | None:
        """Load the customer's active references into the Reference pane (in the background)."""
        try:
            v = self.verifier()
            c = self.library.require_customer(account_id)
        except Exception as exc:  # noqa: BLE001
            self._show_error(str(exc))
            return None
        if c.n_active == 0:
            self._show_error(f"{c.label} has no active reference signature. Enrol specimens first "
                             "(Library \u25b8 Enrol signatures\u2026).")
            return None
        self._status(f"Loading the references of {c.label}\u2026", 0)

        def done(sigs) -> None:
            self.current = c.account_id
            self._current_sources = {s.source for s in sigs}
            label = c.label + (" \u2014 add more specimens" if len(sigs) < 3 else "")
            self.window.set_reference_signatures(sigs, label)
            self._status(f"{c.label}: {len(sigs)} reference signature(s) loaded"
                         + (" \u2014 fewer than 3: add more specimens" if len(sigs) < 3 else ""))
            self.customer_loaded.emit(c.account_id)

        return self.start(lambda p, s: self.library.load_signatures(c.account_id, v), done)

    # ---- audit of the main window's verifications ----
    def on_verification_done(self, result) -> None:
        """Audit a verification made against the loaded customer's references, then offer the decision."""
        if self.current is None:
            return
        srcs = [r.source for r in getattr(result, "references", [])]
        if not srcs or any(account_of(s) != self.current for s in srcs):
            return  # references were changed by hand: not this customer's library set
        try:
            vid = self.library.audit_result(result, self.current, self.verifier(), source="gui")
        except Exception as exc:  # noqa: BLE001
            self._show_error(f"the verification could not be written to the audit log: {exc}")
            return
        self.audit_recorded.emit(vid)
        if self.decision_bar is None:
            self.decision_bar = DecisionBar(self, self.window)
        self.decision_bar.offer(vid, self.current, result)

    def record_decision(self, vid: int, decision: str, reason: str) -> bool:
        try:
            self.library.audit.append_decision(vid, decision, reason)
        except Exception as exc:  # noqa: BLE001
            self._show_error(str(exc))
            return False
        self._status(f"Decision recorded: {decision} (audit #{vid})")
        self.decision_recorded.emit(vid, decision)
        return True

    # ---- model change ----
    def refresh_embeddings(self, verifier=None) -> _Worker | None:
        """Compute the reference embeddings missing for the (new) model, in the background."""
        v = verifier or self.verifier_provider()
        if v is None:
            return None
        if self.refresh_worker is not None and self.refresh_worker.isRunning():
            self.refresh_worker.cancel()
            self.refresh_worker.wait(10000)
        if self.library.stale_count(v) == 0:
            return None
        dlg = ProgressDialog("Updating the reference library", self.window)

        def done(rep) -> None:
            dlg.finish(f"{rep.computed} reference embedding(s) computed for {rep.model_id}"
                       + (f"; {len(rep.errors)} could not be processed" if rep.errors else ""))
            self.embeddings_refreshed.emit(rep)

        w = self.start(lambda p, s: self.library.refresh_embeddings(v, p, s), done,
                       lambda m: dlg.finish(f"Failed: {m}"), dlg.set_progress,
                       lambda: dlg.finish("Cancelled: the rest is computed when a customer is used"))
        dlg.cancel_requested.connect(w.cancel)
        dlg.show()
        self.refresh_worker = w
        return w

    def on_verifier_changed(self, verifier) -> None:
        self.refresh_embeddings(verifier)

    # ---- settings ----
    def set_operator(self, name: str) -> None:
        name = name.strip()
        _settings().setValue(SETTING_OPERATOR, name)
        from sigverify.store.audit import default_operator

        self.library.audit.operator = name or default_operator()


# ==================================================================================== widgets
class ProgressDialog(QDialog):
    """Non-modal progress with a Cancel button (refresh, enrol)."""

    cancel_requested = Signal()

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setModal(False)
        lay = QVBoxLayout(self)
        self.label = QLabel("Starting\u2026")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.button = QPushButton("Cancel")
        self.button.clicked.connect(self._clicked)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        lay.addWidget(self.button, 0, Qt.AlignmentFlag.AlignRight)
        self.done_ = False

    def set_progress(self, f: float, msg: str) -> None:
        self.bar.setValue(int(1000 * max(0.0, min(1.0, f))))
        self.label.setText(msg)

    def finish(self, msg: str) -> None:
        self.done_ = True
        self.label.setText(msg)
        self.button.setText("Close")

    def _clicked(self) -> None:
        if self.done_:
            self.close()
        else:
            self.button.setEnabled(False)
            self.label.setText("Cancelling\u2026")
            self.cancel_requested.emit()


class DecisionBar(QDialog):
    """Small non-modal window after an audited verification: the clerk's final decision."""

    def __init__(self, ctl: LibraryController, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.setWindowTitle("Clerk's decision")
        self.setModal(False)
        self.setWindowFlag(Qt.WindowType.Tool, True)
        self.vid: int | None = None
        self.verdict = ""
        lay = QVBoxLayout(self)
        self.info = QLabel()
        self.info.setWordWrap(True)
        lay.addWidget(self.info)
        row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for d, text in (("accept", "&Accept"), ("refer", "Re&fer"), ("reject", "&Reject")):
            b = QPushButton(text)
            b.clicked.connect(lambda _=False, d=d: self.decide(d))
            self.buttons[d] = b
            row.addWidget(b)
        lay.addLayout(row)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Reason (recommended when you override the verdict)")
        lay.addWidget(self.reason)
        self.note = QLabel()
        self.note.setStyleSheet("color:#5f6b77;")
        lay.addWidget(self.note)

    def offer(self, vid: int, account_id: str, result) -> None:
        self.vid = vid
        v = result.decision.verdict
        self.verdict = v.zone
        self.info.setText(f"<b>{account_id}</b> \u2014 {Path(str(result.questioned.source)).name}<br>"
                          f"Verdict: <b style='color:{ZONE_COLOUR.get(v.zone, '#000')}'>{v.text}</b> "
                          f"(score {v.score:.0f}/100). Audit record #{vid}.")
        self.reason.clear()
        suggested = VERDICT_DECISION.get(v.zone, "refer")
        for d, b in self.buttons.items():
            b.setDefault(d == suggested)
            b.setEnabled(True)
        self.note.setText("Choosing a different decision than the verdict is recorded as an override.")
        self.show()
        self.raise_()

    def decide(self, decision: str) -> None:
        if self.vid is None or decision not in DECISIONS:
            return
        if self.ctl.record_decision(self.vid, decision, self.reason.text()):
            self.note.setText(f"Recorded: {decision}.")
            self.vid = None
            self.hide()


class EnrolDialog(QDialog):
    """Enrol reference signatures (files or folders) for a new or existing customer."""

    enrolled = Signal(object)  # EnrolReport

    def __init__(self, ctl: LibraryController, account_id: str | None = None, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.setWindowTitle("Enrol reference signatures")
        self.resize(560, 460)
        form = QFormLayout()
        self.account = QLineEdit(account_id or "")
        self.name = QLineEdit()
        self.notes = QLineEdit()
        c = ctl.library.get_customer(account_id) if account_id else None
        if c:
            self.name.setText(c.name)
            self.notes.setText(c.notes)
        self.has_expiry = QCheckBox("Specimens expire on")
        self.expiry = QDateEdit(QDate.currentDate().addYears(5))
        self.expiry.setCalendarPopup(True)
        self.expiry.setEnabled(False)
        self.has_expiry.toggled.connect(self.expiry.setEnabled)
        exp_row = QHBoxLayout()
        exp_row.addWidget(self.has_expiry)
        exp_row.addWidget(self.expiry)
        exp_row.addStretch(1)
        form.addRow("Account id:", self.account)
        form.addRow("Name:", self.name)
        form.addRow("Notes:", self.notes)
        form.addRow("Expiry:", exp_row)
        self.files = QListWidget()
        btns = QHBoxLayout()
        for text, slot in (("Add files\u2026", self.add_files), ("Add folder\u2026", self.add_folder),
                           ("Remove", self.remove_selected)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            btns.addWidget(b)
        btns.addStretch(1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.result = QLabel()
        self.result.setWordWrap(True)
        self.box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.enrol_button = self.box.addButton("Enrol", QDialogButtonBox.ButtonRole.ActionRole)
        self.enrol_button.clicked.connect(self.enrol)
        self.box.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(QLabel("Specimen images (at least 3 for a per-customer threshold):"))
        lay.addWidget(self.files)
        lay.addLayout(btns)
        lay.addWidget(self.progress)
        lay.addWidget(self.result)
        lay.addWidget(self.box)
        self.worker: _Worker | None = None

    def set_files(self, paths) -> None:
        for p in paths:
            self.files.addItem(str(p))

    def paths(self) -> list[str]:
        return [self.files.item(i).text() for i in range(self.files.count())]

    def add_files(self) -> None:
        fs, _ = QFileDialog.getOpenFileNames(self, "Reference signature images", "", IMAGE_FILTER)
        self.set_files(fs)

    def add_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder of reference signatures")
        if d:
            self.set_files([d])

    def remove_selected(self) -> None:
        for it in self.files.selectedItems():
            self.files.takeItem(self.files.row(it))

    def enrol(self) -> None:
        acc = self.account.text().strip()
        if not acc or not self.paths():
            self.result.setText("Enter an account id and add at least one image.")
            return
        try:
            v = self.ctl.verifier()
        except RuntimeError as exc:
            self.result.setText(str(exc))
            return
        lib, paths = self.ctl.library, self.paths()
        name, notes = self.name.text(), self.notes.text()
        expires = self.expiry.date().toString("yyyy-MM-dd") if self.has_expiry.isChecked() else None
        self.enrol_button.setEnabled(False)
        self.progress.setValue(0)
        self.progress.show()
        self.result.setText("Checking and enrolling\u2026")

        def done(rep) -> None:
            self.enrol_button.setEnabled(True)
            self.progress.setValue(1000)
            c = lib.get_customer(acc)
            lines = [f"Enrolled {len(rep.added)} specimen(s) for {acc}; "
                     f"{c.n_active if c else 0} active reference(s) now."]
            if c is not None and c.needs_more_specimens:
                lines.append("Fewer than 3 active references: add more specimens for a per-customer threshold.")
            lines += [f"Skipped {Path(p).name}: {e}" for p, e in rep.errors]
            self.result.setText("\n".join(lines))
            if rep.added:
                self.files.clear()
            self.enrolled.emit(rep)

        def failed(msg: str) -> None:
            self.enrol_button.setEnabled(True)
            self.result.setText(f"Enrolment failed: {msg}")

        self.worker = self.ctl.start(lambda p, s: lib.enrol(acc, paths, v, name=name or None, notes=notes or None,
                                                            expires=expires, progress=p, should_stop=s),
                                     done, failed, lambda f, m: self.progress.setValue(int(1000 * f)))


class ManageReferencesDialog(QDialog):
    """A customer's specimens: remove, mark expired, enrol more, load into the Reference pane."""

    COLS = ["#", "Specimen", "Enrolled", "Expires", "Status"]

    def __init__(self, ctl: LibraryController, account_id: str, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.account_id = account_id
        self.resize(680, 440)
        self.table = QTableWidget(0, len(self.COLS))
        self.table.setHorizontalHeaderLabels(self.COLS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._preview)
        self.preview = QLabel()
        self.preview.setMinimumHeight(90)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.status = QLabel()
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        for text, slot in (("Remove", self.remove_selected), ("Mark expired", self.expire_selected),
                           ("Enrol more\u2026", self.enrol_more), ("Load into Reference pane", self.load)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            row.addWidget(b)
        row.addStretch(1)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        row.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.status)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.preview)
        lay.addLayout(row)
        self.reload()

    def reload(self) -> None:
        lib = self.ctl.library
        c = lib.require_customer(self.account_id)
        self.setWindowTitle(f"References of {c.label}")
        refs = lib.references(self.account_id)
        self.table.setRowCount(len(refs))
        for i, r in enumerate(refs):
            vals = [str(r.id), r.file_name, r.enrolled_utc[:10], (r.expires_utc or "")[:10], r.status()]
            for j, val in enumerate(vals):
                it = QTableWidgetItem(val)
                it.setData(Qt.ItemDataRole.UserRole, r.id)
                self.table.setItem(i, j, it)
        text = f"<b>{c.label}</b>: {c.n_active} active of {len(refs)} specimen(s)."
        v = self.ctl.verifier_provider()
        if v is not None and c.n_active:
            st = lib.customer_status(self.account_id, v)
            text += (f" Thresholds for this customer: genuine \u2264 {st.threshold_accept:.3f}, "
                     f"forgery &gt; {st.threshold_reject:.3f} (scale {st.person_scale:.2f}).")
        if c.needs_more_specimens:
            text += " <span style='color:#a3261b'><b>Add more specimens</b> (at least 3 active).</span>"
        self.status.setText(text)

    def selected_ids(self) -> list[int]:
        rows = sorted({ix.row() for ix in self.table.selectedIndexes()})
        return [int(self.table.item(r, 0).data(Qt.ItemDataRole.UserRole)) for r in rows]

    def _preview(self) -> None:
        ids = self.selected_ids()
        if not ids:
            self.preview.clear()
            return
        pix = QPixmap()
        pix.loadFromData(self.ctl.library.reference_image(ids[0]))
        if not pix.isNull():
            pix = pix.scaled(320, 90, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.preview.setPixmap(pix)

    def remove_selected(self) -> None:
        for rid in self.selected_ids():
            self.ctl.library.remove_reference(rid)
        self.reload()

    def expire_selected(self) -> None:
        for rid in self.selected_ids():
            self.ctl.library.expire_reference(rid)
        self.reload()

    def enrol_more(self) -> None:
        dlg = EnrolDialog(self.ctl, self.account_id, self)
        dlg.enrolled.connect(lambda _r: self.reload())
        dlg.show()

    def load(self) -> None:
        self.ctl.load_customer(self.account_id)


class HistoryDialog(QDialog):
    """A customer's audited verifications and decisions; CSV export."""

    COLS = ["#", "Time (UTC)", "Operator", "Source", "Questioned", "Verdict", "Score", "Decision", "Override",
            "Reason"]

    def __init__(self, ctl: LibraryController, account_id: str, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.account_id = account_id
        self.setWindowTitle(f"History of {account_id}")
        self.resize(900, 420)
        self.table = QTableWidget(0, len(self.COLS))
        self.table.setHorizontalHeaderLabels(self.COLS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(len(self.COLS) - 1, QHeaderView.ResizeMode.Stretch)
        export = QPushButton("Export CSV\u2026")
        export.clicked.connect(self.export)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addWidget(QLabel("The audit trail is append-only: records cannot be changed or deleted."))
        row.addStretch(1)
        row.addWidget(export)
        row.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addLayout(row)
        self.reload()

    def reload(self) -> None:
        recs = self.ctl.library.audit.history(self.account_id)
        self.table.setRowCount(len(recs))
        for i, r in enumerate(recs):
            fd = r.final_decision
            vals = [str(r.id), r.time_utc.replace("T", " ")[:19], r.operator, r.source, r.questioned_name, r.verdict,
                    f"{r.score:.0f}", fd.decision if fd else "\u2014",
                    ("yes" if fd.overrides_verdict else "") if fd else "", fd.reason if fd else ""]
            for j, val in enumerate(vals):
                self.table.setItem(i, j, QTableWidgetItem(val))

    def export(self, path: str | None = None) -> int | None:
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Export audit history", f"audit_{self.account_id}.csv",
                                                  "CSV files (*.csv)")
        if not path:
            return None
        n = self.ctl.library.audit.export_csv(path, self.account_id)
        self.ctl._status(f"Exported {n} audit record(s) to {path}")
        return n


class BatchDialog(QDialog):
    """Batch verification of a CSV / folder against the library, with progress bar and Cancel."""

    finished_report = Signal(object)  # BatchReport

    def __init__(self, ctl: LibraryController, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.setWindowTitle("Batch verification")
        self.resize(640, 420)
        self.input = QLineEdit()
        self.input.setPlaceholderText("CSV (customer_id,questioned_path) or folder of <customer id>/ sub-folders")
        self.output = QLineEdit()
        in_row, out_row = QHBoxLayout(), QHBoxLayout()
        in_row.addWidget(self.input, 1)
        for text, slot in (("CSV\u2026", self.pick_csv), ("Folder\u2026", self.pick_folder)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            in_row.addWidget(b)
        out_row.addWidget(self.output, 1)
        b = QPushButton("\u2026")
        b.clicked.connect(self.pick_output)
        out_row.addWidget(b)
        form = QFormLayout()
        form.addRow("Input:", in_row)
        form.addRow("Results CSV:", out_row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.state = QLabel("")
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        row = QHBoxLayout()
        row.addStretch(1)
        for b in (self.start_button, self.cancel_button, close):
            row.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.state)
        lay.addWidget(self.summary, 1)
        lay.addLayout(row)
        self.worker: _Worker | None = None
        self.report = None

    def pick_csv(self) -> None:
        p, _ = QFileDialog.getOpenFileName(self, "Batch CSV", "", "CSV files (*.csv);;All files (*)")
        if p:
            self.input.setText(p)
            self._default_out(p)

    def pick_folder(self) -> None:
        p = QFileDialog.getExistingDirectory(self, "Folder of customer sub-folders")
        if p:
            self.input.setText(p)
            self._default_out(p)

    def _default_out(self, p: str) -> None:
        if not self.output.text():
            q = Path(p)
            self.output.setText(str(q.parent / f"{q.stem}_results.csv"))

    def pick_output(self) -> None:
        p, _ = QFileDialog.getSaveFileName(self, "Results CSV", self.output.text(), "CSV files (*.csv)")
        if p:
            self.output.setText(p)

    def start(self) -> None:
        from sigverify.batch import load_items, run_batch

        src, out = self.input.text().strip(), self.output.text().strip()
        if not src or not out:
            self.state.setText("Choose the input and the results file first.")
            return
        try:
            v = self.ctl.verifier()
            items = load_items(src)
        except Exception as exc:  # noqa: BLE001
            self.state.setText(str(exc))
            return
        lib = self.ctl.library

        def job(progress, should_stop):
            rep = run_batch(items, lib, v, progress, should_stop)
            rep.write_csv(out)
            return rep

        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.summary.clear()
        self.state.setText(f"Verifying {len(items)} image(s)\u2026")
        self.worker = self.ctl.start(job, self._done, self._failed, self._progress)

    def _progress(self, f: float, msg: str) -> None:
        self.progress.setValue(int(1000 * f))
        self.state.setText(msg)

    def _done(self, rep) -> None:
        self.report = rep
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if not rep.cancelled:
            self.progress.setValue(1000)
        self.state.setText(("Cancelled \u2014 partial results written to " if rep.cancelled else "Done \u2014 results in ")
                           + self.output.text())
        self.summary.setPlainText(rep.summary_text())
        self.finished_report.emit(rep)

    def _failed(self, msg: str) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.state.setText(f"Batch failed: {msg}")

    def cancel(self) -> None:
        if self.worker is not None:
            self.cancel_button.setEnabled(False)
            self.state.setText("Cancelling after the current batch\u2026")
            self.worker.cancel()


class CustomerSearch(QWidget):
    """Incremental search box (account id or name) with a completer list."""

    chosen = Signal(str)  # account id

    def __init__(self, ctl: LibraryController, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Customer: account id or name\u2026")
        self.edit.setClearButtonEnabled(True)
        self.edit.setMinimumWidth(260)
        self.model = QStringListModel(self)
        self.completer = QCompleter(self.model, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.edit.setCompleter(self.completer)
        self._ids: dict[str, str] = {}
        self.edit.textEdited.connect(self.update_matches)
        self.completer.activated.connect(self._activated)
        self.edit.returnPressed.connect(self._return)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit)

    def update_matches(self, text: str) -> list[str]:
        labels = []
        self._ids = {}
        for c in self.ctl.library.search(text, 25):
            lab = c.label + (" (add more specimens)" if c.needs_more_specimens else "")
            labels.append(lab)
            self._ids[lab] = c.account_id
        self.model.setStringList(labels)
        return labels

    def _activated(self, label: str) -> None:
        acc = self._ids.get(label)
        if acc:
            self.chosen.emit(acc)

    def _return(self) -> None:
        text = self.edit.text().strip()
        if text in self._ids:
            self.chosen.emit(self._ids[text])
            return
        if not text:
            return
        exact = self.ctl.library.get_customer(text)
        if exact:
            self.chosen.emit(exact.account_id)
            return
        matches = self.ctl.library.search(text, 2)
        if len(matches) == 1:
            self.chosen.emit(matches[0].account_id)
        else:
            self.ctl._status(f"No single customer matches {text!r}" if matches else f"No customer matches {text!r}")


# ==================================================================================== install
def install_library_ui(main_window, db_path: str | os.PathLike | None = None,
                       verifier_provider: Callable[[], Any] | None = None) -> LibraryController:
    """Add the Library menu, the customer search toolbar and the audit decision bar to ``main_window``."""
    ctl = LibraryController(main_window, db_path, verifier_provider)
    menu = main_window.add_menu("&Library")
    tb = QToolBar("Customer", main_window)
    tb.setObjectName("customerToolbar")
    search = CustomerSearch(ctl, tb)
    tb.addWidget(QLabel(" Customer: "))
    tb.addWidget(search)
    ctl.current_label = QLabel("")
    tb.addWidget(ctl.current_label)
    main_window.addToolBar(tb)
    search.chosen.connect(ctl.load_customer)

    def on_loaded(acc: str) -> None:
        c = ctl.library.get_customer(acc)
        if c:
            ctl.current_label.setText(f"  {c.label} \u00b7 {c.n_active} reference(s)"
                                      + (" \u00b7 add more specimens" if c.needs_more_specimens else ""))
    ctl.customer_loaded.connect(on_loaded)

    def need_customer() -> str | None:
        if ctl.current:
            return ctl.current
        text = search.edit.text().strip()
        c = ctl.library.get_customer(text) if text else None
        if c is None and text:
            found = ctl.library.search(text, 2)
            c = found[0] if len(found) == 1 else None
        if c is None:
            acc, ok = QInputDialog.getText(main_window, "Customer", "Account id:")
            c = ctl.library.get_customer(acc.strip()) if ok and acc.strip() else None
            if ok and acc.strip() and c is None:
                ctl._show_error(f"unknown customer {acc.strip()!r}")
        return c.account_id if c else None

    def show(dlg: QDialog) -> QDialog:
        ctl._dialogs = [d for d in ctl._dialogs if d.isVisible()] + [dlg]
        dlg.show()
        return dlg

    def manage() -> None:
        acc = need_customer()
        if acc:
            show(ManageReferencesDialog(ctl, acc, main_window))

    def history() -> None:
        acc = need_customer()
        if acc:
            show(HistoryDialog(ctl, acc, main_window))

    def export_all() -> None:
        p, _ = QFileDialog.getSaveFileName(main_window, "Export the audit log", "audit_log.csv", "CSV files (*.csv)")
        if p:
            n = ctl.library.audit.export_csv(p)
            ctl._status(f"Exported {n} audit record(s) to {p}")

    def operator() -> None:
        name, ok = QInputDialog.getText(main_window, "Operator name",
                                        "Name recorded in the audit trail (empty = your login name):",
                                        text=ctl.library.audit.operator)
        if ok:
            ctl.set_operator(name)

    def add(text: str, slot, shortcut: str | None = None) -> QAction:
        a = QAction(text, main_window)
        if shortcut:
            a.setShortcut(shortcut)
        a.triggered.connect(lambda _=False: slot())
        menu.addAction(a)
        return a

    ctl.actions = {
        "find": add("&Find customer\u2026", lambda: (search.edit.setFocus(), search.edit.selectAll()), "Ctrl+K"),
        "enrol": add("&Enrol signatures\u2026", lambda: show(EnrolDialog(ctl, ctl.current, main_window))),
        "manage": add("&Manage references\u2026", manage),
        "history": add("&History\u2026", history),
    }
    menu.addSeparator()
    ctl.actions["batch"] = add("&Batch verification\u2026", lambda: show(BatchDialog(ctl, main_window)))
    ctl.actions["refresh"] = add("&Update embeddings for the current model", ctl.refresh_embeddings)
    menu.addSeparator()
    ctl.actions["export"] = add("E&xport audit log\u2026", export_all)
    ctl.actions["operator"] = add("&Operator name\u2026", operator)

    main_window.verification_done.connect(ctl.on_verification_done)
    changed = getattr(main_window, "verifier_changed", None)
    if changed is not None:
        changed.connect(ctl.on_verifier_changed)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:  # stop background jobs and close the database before the app goes away
        app.aboutToQuit.connect(ctl.close)
    ctl.search = search
    ctl.toolbar = tb
    ctl.menu = menu
    main_window.library_controller = ctl
    return ctl


__all__ = ["install_library_ui", "LibraryController", "EnrolDialog", "ManageReferencesDialog", "HistoryDialog",
           "BatchDialog", "DecisionBar", "CustomerSearch"]
