"""Customer library in the GUI: the Library menu, the customer search box, the Enrol / Manage references /
History / Batch dialogs and the background embedding refresh.

``install_library_ui(main_window)`` attaches it to a :class:`~sigverify.gui.main_window.MainWindow`
through its declared hooks (``add_menu(title, key)``, ``start_customer_case``, ``may_replace_case``,
``case``, ``show_error``). The case on screen is recorded by the window's case controller in this
library's audit log (one case -> one record; the decision controls are in the verdict panel).

All slow work (loading a customer, enrolling, refreshing embeddings, batch runs) runs in the GUI's one
job type (:class:`~sigverify.gui.jobs.JobRunner`); failures arrive as exception objects, are logged
with their tracebacks and shown on screen.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QDate, QObject, QStringListModel, Qt, Signal
from PySide6.QtGui import QAction, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QCompleter,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from sigverify.app.library_service import LibraryService
from sigverify.gui.comparison import _confirm  # one Yes/No question box for the window's controllers
from sigverify.gui.jobs import JobRunner, error_text
from sigverify.imaging.files import image_name_filter
from sigverify.store.library import Library

log = logging.getLogger(__name__)

IMAGE_FILTER = image_name_filter()  # from the one list of image suffixes (imaging.load)
SETTING_DB = "library/db_path"
SETTING_OPERATOR = "audit/operator"
CUSTOMER, REFRESH = "customer", "refresh"


def _settings():
    from sigverify.gui.settings import qsettings

    return qsettings()


# ==================================================================================== controller
class LibraryController(QObject):
    """Owns the library database and the current customer of one main window."""

    customer_loaded = Signal(str)  # account id whose references are now in the Reference pane
    references_changed = Signal(str)  # account id whose specimens were enrolled / removed / expired
    embeddings_refreshed = Signal(object)  # RefreshReport
    message = Signal(str)

    def __init__(self, window, db_path: str | os.PathLike | None = None):
        super().__init__(window)
        self.window = window
        s = _settings()
        path = db_path or s.value(SETTING_DB, "") or None
        self.library = Library(path, operator=(s.value(SETTING_OPERATOR, "") or None))
        self.current: str | None = None  # account id loaded into the Reference pane
        self.jobs = JobRunner(self, threads=1)  # one database writer at a time
        self.jobs.unhandled_error.connect(lambda slot, exc: self._show_error(error_text(exc)))
        self.refresh_dialog: ProgressDialog | None = None
        self._dialogs: list[QDialog] = []
        self.last_error = ""
        #: asked before specimens are removed: ``confirm(title, text) -> bool`` (tests replace it)
        self.confirm: Callable[[str, str], bool] = lambda title, text: _confirm(self.window, title, text)
        window.case.set_library(self.library)
        window.customer_changed.connect(self._customer_changed)

    # ---- plumbing ----
    def verifier(self):
        v = self.window.current_verifier()
        if v is None:
            raise RuntimeError("the model is still loading; try again in a moment")
        return v

    def service(self, verifier=None) -> LibraryService:
        """The library service (enrol, embeddings, thresholds, cases) for ``verifier`` (default: the
        window's current one); the store itself is only SQL."""
        return LibraryService(self.library, verifier if verifier is not None else self.verifier())

    def start(
        self, fn, on_done=None, on_failed=None, on_progress=None, on_cancelled=None, slot: str | None = None, on_partial=None
    ) -> int:
        """Run ``fn(progress, should_stop)`` as a job (slot: one live job per slot; default: a new slot)."""
        return self.jobs.submit(
            slot or f"job{time.monotonic_ns()}", fn, on_done, on_failed, on_progress, on_cancelled, on_partial
        )

    def busy(self) -> bool:
        return self.jobs.is_busy()

    def wait_idle(self, ms: int = 30000) -> bool:
        return self.jobs.wait(None, ms)

    def _show_error(self, msg: str) -> None:
        """On screen: the window's red bar, the status bar and a non-modal message box."""
        self.last_error = msg
        self.window.show_error(f"Library: {msg}")
        box = QMessageBox(QMessageBox.Icon.Warning, "Customer library", msg, QMessageBox.StandardButton.Ok, self.window)
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.show()

    def _status(self, text: str, ms: int = 8000) -> None:
        self.message.emit(text)
        self.window.statusBar().showMessage(text, ms)

    def close(self) -> None:
        """Cancel running jobs, wait for them, close the database (safe to call twice)."""
        self.jobs.shutdown(30000)
        self.library.close()

    # ---- customers ----
    def _customer_changed(self, account_id) -> None:
        if account_id is None:
            self.current = None

    def load_customer(self, account_id: str, keep_questioned: bool = False) -> int | None:
        """Load the customer's active references into the Reference pane (in the background). A new
        customer starts a new case (the questioned pane is cleared); an undecided case is asked about."""
        try:
            v = self.verifier()
            c = self.library.require_customer(account_id)
        except Exception as exc:  # noqa: BLE001
            self._show_error(error_text(exc) if not isinstance(exc, RuntimeError) else str(exc))
            return None
        if c.n_active == 0:
            self._show_error(
                f"{c.label} has no active reference signature. Enrol specimens first (Library \u25b8 Enrol signatures\u2026)."
            )
            return None
        what = "use the changed references" if keep_questioned else f"start a case for {c.label}"
        if not self.window.may_replace_case(what):
            return None
        self._status(f"Loading the references of {c.label}\u2026", 0)

        def done(sigs) -> None:
            self.current = c.account_id
            label = c.label + (" \u2014 add more specimens" if len(sigs) < 3 else "")
            if keep_questioned:
                self.window.set_reference_signatures(sigs, label, c.account_id)
            else:
                self.window.start_customer_case(sigs, label, c.account_id)
            self._status(
                f"{c.label}: {len(sigs)} reference signature(s) loaded"
                + (" \u2014 fewer than 3: add more specimens" if len(sigs) < 3 else "")
            )
            self.customer_loaded.emit(c.account_id)

        return self.start(
            lambda p, s: self.service(v).reference_signatures(c.account_id),
            done,
            lambda exc: self._show_error(f"the references of {c.label} could not be loaded: {error_text(exc)}"),
            slot=CUSTOMER,
        )

    def library_changed(self, account_id: str) -> None:
        """Specimens of ``account_id`` changed: dialogs and the main window follow."""
        self.references_changed.emit(account_id)
        if account_id == self.current:
            c = self.library.get_customer(account_id)
            if c is None or c.n_active == 0:
                self.window.set_reference_signatures([], "", account_id)
                self._status(f"{account_id}: no active reference signature left")
            else:
                self.load_customer(account_id, keep_questioned=True)

    # ---- model change ----
    def refresh_embeddings(self, verifier=None) -> int | None:
        """Compute the reference embeddings missing for the (new) model, in the background; a failure
        is shown (the progress dialog and the window's error bar), never silent."""
        v = verifier or self.window.current_verifier()
        if v is None:
            return None
        self.jobs.cancel(REFRESH, notify=False)
        svc = self.service(v)
        if svc.stale_count() == 0:
            return None
        if self.refresh_dialog is None:
            self.refresh_dialog = ProgressDialog("Updating the reference library", self.window)
            self.refresh_dialog.cancel_requested.connect(lambda: self.jobs.cancel(REFRESH))
        dlg = self.refresh_dialog
        dlg.restart()

        def done(rep) -> None:
            dlg.finish(
                f"{rep.computed} reference embedding(s) computed for {rep.model_id}"
                + (f"; {len(rep.errors)} could not be processed" if rep.errors else "")
            )
            self.embeddings_refreshed.emit(rep)
            if rep.errors:
                self.window.show_error(f"Library update: {len(rep.errors)} specimen(s) could not be processed")

        def failed(exc) -> None:
            msg = f"The reference library could not be updated for {v.card.name}: {error_text(exc)}"
            dlg.finish(msg)
            self.window.show_error(msg)

        jid = self.start(
            lambda p, s: svc.refresh(p, s),
            done,
            failed,
            dlg.set_progress,
            lambda: dlg.finish("Cancelled: the rest is computed when a customer is used"),
            slot=REFRESH,
        )
        dlg.show()
        return jid

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
    """Non-modal progress with a Cancel button (refresh, enrol). One dialog, reused."""

    cancel_requested = Signal()

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setModal(False)
        lay = QVBoxLayout(self)
        self.label = QLabel("Starting\u2026")
        self.label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.button = QPushButton("Cancel")
        self.button.clicked.connect(self._clicked)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        lay.addWidget(self.button, 0, Qt.AlignmentFlag.AlignRight)
        self.done_ = False

    def restart(self) -> None:
        self.done_ = False
        self.bar.setValue(0)
        self.label.setText("Starting\u2026")
        self.button.setText("Cancel")
        self.button.setEnabled(True)

    def set_progress(self, f: float, msg: str) -> None:
        self.bar.setValue(int(1000 * max(0.0, min(1.0, f))))
        self.label.setText(msg)

    def finish(self, msg: str) -> None:
        self.done_ = True
        self.label.setText(msg)
        self.button.setText("Close")
        self.button.setEnabled(True)

    def _clicked(self) -> None:
        if self.done_:
            self.close()
        else:
            self.button.setEnabled(False)
            self.label.setText("Cancelling\u2026")
            self.cancel_requested.emit()


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
        for text, slot in (
            ("Add files\u2026", self.add_files),
            ("Add folder\u2026", self.add_folder),
            ("Remove", self.remove_selected),
        ):
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
        self.job: int | None = None

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
            lines = [f"Enrolled {len(rep.added)} specimen(s) for {acc}; {c.n_active if c else 0} active reference(s) now."]
            if c is not None and c.needs_more_specimens:
                lines.append("Fewer than 3 active references: add more specimens for a per-customer threshold.")
            lines += [f"Skipped {Path(p).name}: {e}" for p, e in rep.errors]
            self.result.setText("\n".join(lines))
            if rep.added:
                self.files.clear()
                self.ctl.library_changed(acc)
            self.enrolled.emit(rep)

        def failed(exc) -> None:
            self.enrol_button.setEnabled(True)
            self.result.setText(f"Enrolment failed: {error_text(exc)}")

        self.job = self.ctl.start(
            lambda p, s: self.ctl.service(v).enrol(
                acc, paths, name=name or None, notes=notes or None, expires=expires, progress=p, should_stop=s
            ),
            done,
            failed,
            lambda f, m: self.progress.setValue(int(1000 * f)),
        )


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
        self.buttons: dict[str, QPushButton] = {}
        for key, text, slot in (
            ("remove", "&Remove\u2026", self.remove_selected),
            ("expire", "Mark &expired\u2026", self.expire_selected),
            ("enrol", "Enrol &more\u2026", self.enrol_more),
            ("load", "&Load into Reference pane", self.load),
        ):
            b = QPushButton(text)
            b.setAutoDefault(False)  # Enter never removes or expires a specimen
            b.clicked.connect(lambda _=False, f=slot: f())
            self.buttons[key] = b
            row.addWidget(b)
        row.addStretch(1)
        close = QPushButton("Close")
        close.setDefault(True)
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
        v = self.ctl.window.current_verifier()
        if v is not None and c.n_active:
            st = self.ctl.service(v).status(self.account_id)
            text += (
                f" Thresholds for this customer: genuine \u2264 {st.threshold_accept:.3f}, "
                f"forgery &gt; {st.threshold_reject:.3f} (scale {st.person_scale:.2f})."
            )
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

    def _names(self, ids: list[int]) -> str:
        lib = self.ctl.library
        names = [lib.get_reference(i).file_name for i in ids[:5]]
        return ", ".join(names) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")

    def _change_selected(self, verb: str, title: str, question: str, change) -> int:
        """Confirm, apply ``change(ref_id)`` to every selected specimen, then the window follows."""
        ids = self.selected_ids()
        if not ids:
            self.status.setText(f"Select the specimen(s) to {verb} first.")
            return 0
        if not self.ctl.confirm(title, question.format(n=len(ids), acc=self.account_id, names=self._names(ids))):
            return 0
        for rid in ids:
            change(rid)
        self.reload()
        self.ctl.library_changed(self.account_id)
        return len(ids)

    def remove_selected(self) -> int:
        """Remove the selected specimens after a confirmation; the main window follows. Returns how many."""
        return self._change_selected(
            "remove",
            "Remove specimens",
            "Remove {n} specimen(s) of {acc} ({names})?\n\nThey are no longer used for verification; "
            "the audit trail keeps its records.",
            self.ctl.library.remove_reference,
        )

    def expire_selected(self) -> int:
        return self._change_selected(
            "mark expired",
            "Mark specimens expired",
            "Mark {n} specimen(s) of {acc} ({names}) as expired?",
            self.ctl.library.expire_reference,
        )

    def enrol_more(self) -> None:
        dlg = EnrolDialog(self.ctl, self.account_id, self)
        dlg.enrolled.connect(lambda _r: self.reload())
        dlg.show()

    def load(self) -> None:
        self.ctl.load_customer(self.account_id)


class HistoryDialog(QDialog):
    """A customer's audited verifications and decisions; CSV export."""

    COLS = ["#", "Time (UTC)", "Operator", "Source", "Questioned", "Verdict", "Score", "Decision", "Override", "Reason"]

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
            vals = [
                str(r.id),
                r.time_utc.replace("T", " ")[:19],
                r.operator,
                r.source,
                r.questioned_name,
                r.verdict,
                f"{r.score:.0f}",
                fd.decision if fd else "\u2014",
                ("yes" if fd.overrides_verdict else "") if fd else "",
                fd.reason if fd else "",
            ]
            for j, val in enumerate(vals):
                self.table.setItem(i, j, QTableWidgetItem(val))

    def export(self, path: str | None = None) -> int | None:
        if not path:
            path, _ = QFileDialog.getSaveFileName(
                self, "Export audit history", f"audit_{self.account_id}.csv", "CSV files (*.csv)"
            )
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
        self.job: int | None = None
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
        self.job = self.ctl.start(job, self._done, self._failed, self._progress, slot="batch")

    def _progress(self, f: float, msg: str) -> None:
        self.progress.setValue(int(1000 * f))
        self.state.setText(msg)

    def _done(self, rep) -> None:
        self.report = rep
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if not rep.cancelled:
            self.progress.setValue(1000)
        self.state.setText(
            ("Cancelled \u2014 partial results written to " if rep.cancelled else "Done \u2014 results in ") + self.output.text()
        )
        self.summary.setPlainText(rep.summary_text())
        self.finished_report.emit(rep)

    def _failed(self, exc) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.state.setText(f"Batch failed: {error_text(exc)}")
        self.ctl.window.show_error(f"Batch verification failed: {error_text(exc)}")

    def cancel(self) -> None:
        if self.job is not None and self.ctl.jobs.current("batch") == self.job:
            self.cancel_button.setEnabled(False)
            self.state.setText("Cancelling after the current batch\u2026")
            self.ctl.jobs.request_stop("batch")  # run_batch returns its partial report: shown as the result


class CustomerSearch(QWidget):
    """Incremental search box (account id or name) with a completer list."""

    chosen = Signal(str)  # account id

    def __init__(self, ctl: LibraryController, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Customer: account id or name\u2026")
        self.edit.setClearButtonEnabled(True)
        self.edit.setMinimumWidth(200)
        self.model = QStringListModel(self)
        self.completer = QCompleter(self.model, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.edit.setCompleter(self.completer)
        self._ids: dict[str, str] = {}
        self._last: tuple = ()
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

    def _choose(self, acc: str) -> None:
        """Emit ``chosen`` once per choice: Enter in the completer also fires returnPressed (the old
        double load, two records 17 ms apart)."""
        now = time.monotonic()
        if self._last == (acc,) or (self._last and self._last[0] == acc and now - self._last[1] < 0.5):
            return
        self._last = (acc, now)
        self.chosen.emit(acc)

    def _activated(self, label: str) -> None:
        acc = self._ids.get(label)
        if acc:
            self._choose(acc)

    def _return(self) -> None:
        text = self.edit.text().strip()
        if text in self._ids:
            self._choose(self._ids[text])
            return
        if not text:
            return
        exact = self.ctl.library.get_customer(text)
        if exact:
            self._choose(exact.account_id)
            return
        matches = self.ctl.library.search(text, 2)
        if len(matches) == 1:
            self._choose(matches[0].account_id)
        else:
            self.ctl._status(f"No single customer matches {text!r}" if matches else f"No customer matches {text!r}")


# ==================================================================================== install
def install_library_ui(main_window, db_path: str | os.PathLike | None = None) -> LibraryController:
    """Add the Library menu and the customer search toolbar to ``main_window``; its cases are recorded in
    this library's audit log."""
    ctl = LibraryController(main_window, db_path)
    menu = main_window.add_menu("&Library", key="library")
    tb = QToolBar("Customer", main_window)
    tb.setObjectName("customerToolbar")
    tb.setMovable(False)
    search = CustomerSearch(ctl, tb)
    tb.addWidget(QLabel(" Customer: "))
    tb.addWidget(search)
    ctl.current_label = QLabel("")
    ctl.current_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    ctl.current_label.setMinimumWidth(40)
    tb.addWidget(ctl.current_label)
    # Its own toolbar row: the search box is never pushed into a hidden overflow (200 % scaling).
    main_window.addToolBarBreak()
    main_window.addToolBar(tb)
    search.chosen.connect(ctl.load_customer)

    def show_customer(acc) -> None:
        c = ctl.library.get_customer(acc) if acc else None
        ctl.current_label.setText(
            f"  {c.label} \u00b7 {c.n_active} reference(s)" + (" \u00b7 add more specimens" if c.needs_more_specimens else "")
            if c
            else ""
        )
        ctl.current_label.setToolTip(ctl.current_label.text().strip())

    ctl.customer_loaded.connect(show_customer)
    ctl.references_changed.connect(lambda acc: show_customer(acc) if acc == ctl.current else None)
    main_window.customer_changed.connect(lambda acc: show_customer(acc) if acc is None else None)

    def find() -> None:
        if not search.edit.isVisible():  # e.g. the toolbar was hidden: ask in a dialog instead
            text, ok = QInputDialog.getText(main_window, "Find customer", "Account id or name:")
            if ok and text.strip():
                search.edit.setText(text.strip())
                search._return()
            return
        search.edit.setFocus()
        search.edit.selectAll()

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
        name, ok = QInputDialog.getText(
            main_window,
            "Operator name",
            "Name recorded in the audit trail (empty = your login name):",
            text=ctl.library.audit.operator,
        )
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
        "find": add("&Find customer\u2026", find, "Ctrl+K"),
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

    main_window.verifier_changed.connect(ctl.on_verifier_changed)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:  # stop background jobs and close the database before the app goes away
        app.aboutToQuit.connect(ctl.close)
    ctl.search = search
    ctl.toolbar = tb
    ctl.menu = menu
    main_window.library_controller = ctl
    return ctl


__all__ = [
    "install_library_ui",
    "LibraryController",
    "EnrolDialog",
    "ManageReferencesDialog",
    "HistoryDialog",
    "BatchDialog",
    "CustomerSearch",
]
