"""The supervisor's referral queue, the per-customer threshold override dialog and File > Export case
report (Qt widgets over ``sigverify.app.referrals`` / ``sigverify.app.report``; no rule lives here).

The queue lists the cases waiting for a supervisor (referred by the clerk, or a clerk's override of the
model's verdict: four eyes). Choosing one shows the questioned signature beside the specimens, the
gauge with the recorded thresholds, the verdict, the clerk's decision and note. Approve / Reject need a
reason; the core refuses a review by the clerk who decided the case.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sigverify.errors import SigverifyError
from sigverify.gui.gauge import DistanceGauge
from sigverify.store.operators import OVERRIDE_LIMITS

COLUMNS = ["Case", "Time (UTC)", "Customer", "Verdict", "Distance", "Clerk", "Clerk's decision", "Why"]
VERDICT_WORD = {"genuine": "GENUINE", "refer": "REFER", "forgery": "FORGERY"}


def _thumb(data: bytes | None, w: int = 220, h: int = 110, text: str = "no image") -> QLabel:
    lab = QLabel()
    lab.setFixedSize(w, h)
    lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
    lab.setStyleSheet("background: white; border: 1px solid #9aa;")
    pm = QPixmap()
    if data and pm.loadFromData(data):
        lab.setPixmap(pm.scaled(w - 6, h - 6, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
    else:
        lab.setText(text)
    return lab


class QueueDialog(QDialog):
    """Non-modal queue window for supervisors."""

    reviewed = Signal(int, str)  # case id, final decision

    def __init__(self, ui, parent=None):
        super().__init__(parent)
        from sigverify.app.referrals import ReferralQueue

        self.ui = ui
        self.queue = ReferralQueue(ui.library, ui.store)
        self.cases: list = []
        self.setWindowTitle("Supervisor's referral queue")
        self.resize(1100, 680)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.summary = QLabel("")
        self.summary.setStyleSheet("font-weight: bold;")
        top.addWidget(self.summary, 1)
        self.show_closed = QCheckBox("Show &closed cases too")
        self.show_closed.toggled.connect(self.refresh)
        top.addWidget(self.show_closed)
        self.refresh_button = QPushButton("&Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.refresh_button)
        lay.addLayout(top)

        split = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.setAccessibleName("Cases waiting for a supervisor")
        self.table.itemSelectionChanged.connect(self._selected)
        split.addWidget(self.table)

        detail = QWidget()
        dl = QVBoxLayout(detail)
        self.images = QHBoxLayout()
        self.images.setAlignment(Qt.AlignmentFlag.AlignLeft)
        dl.addLayout(self.images)
        mid = QHBoxLayout()
        self.gauge = DistanceGauge()
        self.gauge.setMinimumSize(320, 210)
        mid.addWidget(self.gauge, 2)
        self.info = QLabel("Choose a case.")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop)
        mid.addWidget(self.info, 3)
        dl.addLayout(mid, 1)
        form = QHBoxLayout()
        form.addWidget(QLabel("Supervisor's &reason:"))
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("required: what you checked (e.g. compared with the account opening card)")
        self.reason.setAccessibleName("Supervisor's reason")
        form.itemAt(0).widget().setBuddy(self.reason)
        form.addWidget(self.reason, 1)
        self.approve_button = QPushButton("\u2714 &Approve")
        self.reject_button = QPushButton("\u2716 Re&ject")
        self.report_button = QPushButton("Export &report\u2026")
        self.approve_button.clicked.connect(lambda: self.review(True))
        self.reject_button.clicked.connect(lambda: self.review(False))
        self.report_button.clicked.connect(self.export_report)
        for b in (self.approve_button, self.reject_button, self.report_button):
            form.addWidget(b)
        dl.addLayout(form)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        dl.addWidget(self.note)
        split.addWidget(detail)
        split.setSizes([170, 500])
        lay.addWidget(split, 1)
        self.refresh()

    # ---- data ----
    def refresh(self) -> None:
        keep = self.current().id if self.current() is not None else None
        self.cases = self.queue.cases() if self.show_closed.isChecked() else self.queue.queue()
        if self.show_closed.isChecked():
            self.cases = list(reversed(self.cases))
        n_wait = sum(1 for c in self.cases if c.status == "awaiting_review") if self.show_closed.isChecked() else len(self.cases)
        self.summary.setText(
            f"{n_wait} case(s) waiting for a supervisor"
            + (f" \u00b7 {len(self.cases)} shown" if self.show_closed.isChecked() else "")
        )
        self.table.setRowCount(len(self.cases))
        for i, c in enumerate(self.cases):
            d = c.clerk_decision
            vals = [
                f"#{c.id}",
                c.record.time_utc.replace("T", " ")[:16],
                c.record.customer_id or "-",
                VERDICT_WORD.get(c.record.verdict, c.record.verdict),
                f"{c.record.distance:.3f}",
                d.operator if d else "-",
                (d.decision if d else "-") + (" (override)" if d and d.overrides_verdict else ""),
                c.why if c.status == "awaiting_review" else c.status.replace("_", " "),
            ]
            for j, v in enumerate(vals):
                self.table.setItem(i, j, QTableWidgetItem(v))
        self.table.resizeColumnsToContents()
        row = next((i for i, c in enumerate(self.cases) if c.id == keep), 0 if self.cases else -1)
        if row >= 0:
            self.table.selectRow(row)
        self._selected()

    def current(self):
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self.cases):
            return None
        return self.cases[rows[0].row()]

    def _clear_images(self) -> None:
        while self.images.count():
            it = self.images.takeAt(0)
            w = it.widget()
            if w is not None:
                w.hide()
                w.setParent(None)
                w.deleteLater()

    def _selected(self) -> None:
        c = self.current()
        self._clear_images()
        waiting = c is not None and c.status == "awaiting_review"
        for b in (self.approve_button, self.reject_button):
            b.setEnabled(waiting)
        self.report_button.setEnabled(c is not None)
        self.reason.setEnabled(waiting)
        if c is None:
            self.info.setText("No case is waiting for a supervisor." if not self.cases else "Choose a case.")
            self.gauge.clear()
            return
        rec = c.record
        kept = self.ui.store.case_image(rec.id)
        col = QVBoxLayout()
        box = QWidget()
        box.setLayout(col)
        col.addWidget(_thumb(kept[1] if kept else None, text="questioned image\nnot kept"))
        cap = QLabel("<b>Questioned</b>")
        cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
        col.addWidget(cap)
        self.images.addWidget(box)
        for rid in rec.reference_ids[:4]:
            try:
                data = self.ui.library.reference_image(rid)
            except SigverifyError:
                data = None
            col = QVBoxLayout()
            box = QWidget()
            box.setLayout(col)
            col.addWidget(_thumb(data, 180, 110))
            cap = QLabel(f"specimen #{rid}")
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            col.addWidget(cap)
            self.images.addWidget(box)
        if rec.threshold_accept is not None and rec.threshold_reject is not None:
            self.gauge.set_thresholds(
                rec.threshold_accept, rec.threshold_reject, max(rec.threshold_reject * 1.5, rec.distance * 1.1)
            )
            self.gauge.set_result(
                rec.distance,
                rec.score,
                rec.verdict if rec.verdict in VERDICT_WORD else None,
                list(rec.distances),
                f"{(rec.details or {}).get('aggregate', 'mean')} of {len(rec.distances)}",
            )
        d = c.clerk_decision
        cust = self.ui.library.get_customer(rec.customer_id) if rec.customer_id else None
        lines = [
            f"<b>Case #{rec.id}</b> \u00b7 {cust.label if cust else (rec.customer_id or 'no customer')}",
            f"Model verdict: <b>{VERDICT_WORD.get(rec.verdict, rec.verdict)}</b> \u00b7 distance "
            f"{rec.distance:.4f} \u00b7 score {rec.score:.0f}/100 \u00b7 model {rec.model_id}",
            f"Verified {rec.time_utc.replace('T', ' ')[:19]} UTC by {rec.operator} ({rec.source})",
        ]
        if d is not None:
            lines.append(
                f"Clerk's decision: <b>{d.decision.upper()}</b> by {d.operator}"
                + (" \u2014 <b>overrides the model</b>" if d.overrides_verdict else "")
            )
            lines.append(f"Clerk's note: <i>{_esc(d.reason) or '(none)'}</i>")
        if c.threshold_override:
            lines.append(f"Customer threshold override in force: \u00d7{c.threshold_override:.2f}")
        if c.review is not None:
            lines.append(f"Reviewed by {c.review.operator}: {c.review.event.replace('_', ' ')} \u2014 {_esc(c.review.reason)}")
        elif waiting:
            from sigverify.app.referrals import final_decision

            lines.append(
                f"Approve \u2192 final decision <b>{final_decision(d.decision, True)}</b>; "
                f"Reject \u2192 <b>{final_decision(d.decision, False)}</b>"
            )
        self.info.setText("<br>".join(lines))

    # ---- actions ----
    def review(self, approve: bool) -> bool:
        c = self.current()
        if c is None:
            return False
        try:
            done = self.queue.review(self.ui.operator, c.id, approve, self.reason.text())
        except SigverifyError as exc:
            self.note.setText(f"\u26a0 {exc}")
            return False
        self.note.setText(
            f"Case #{done.id} {'approved' if approve else 'rejected'}: final decision "
            f"{done.final.decision} (audit decision #{done.final.id})."
        )
        self.reason.clear()
        self.reviewed.emit(done.id, done.final.decision)
        self.refresh()
        return True

    def export_report(self) -> None:
        c = self.current()
        if c is not None:
            export_case_report(self.ui, c.id, self)


def _esc(s: str) -> str:
    import html

    return html.escape(s or "")


def open_queue(ui) -> QueueDialog | None:
    if not ui.allowed("supervisor", "the referral queue"):
        return None
    dlg = ui.queue_dialog
    if dlg is None or not dlg.isVisible():
        dlg = QueueDialog(ui, ui.window)
        ui.queue_dialog = dlg
    else:
        dlg.refresh()
    dlg.show()
    dlg.raise_()
    return dlg


def export_case_report(ui, case_id: int | None, parent=None, path: str | None = None) -> str | None:
    """Ask for a file name (unless ``path``) and write the case's PDF report."""
    from sigverify.app.report import write_case_report

    parent = parent or ui.window
    if case_id is None:
        QMessageBox.information(
            parent,
            "Export case report",
            "There is no recorded case on screen. Verify a "
            "signature of a library customer first, or open the report from the queue.",
        )
        return None
    if path is None:
        path, _ = QFileDialog.getSaveFileName(parent, "Export case report", f"case-{case_id}.pdf", "PDF (*.pdf)")
        if not path:
            return None
    try:
        info = write_case_report(ui.library, case_id, path, ui.store, generated_by=ui.operator.username if ui.operator else None)
    except SigverifyError as exc:
        QMessageBox.warning(parent, "Export case report", str(exc))
        return None
    sb = getattr(ui.window, "statusBar", None)
    if callable(sb):
        sb().showMessage(f"Case report written: {info.path}", 8000)
    return str(info.path)


def export_current_case(ui) -> str | None:
    case = getattr(ui.window, "case", None)
    cur = getattr(case, "current", None)
    return export_case_report(ui, getattr(cur, "audit_id", None))


class ThresholdOverrideDialog(QDialog):
    """A supervisor's bounded multiplier on one customer's thresholds, with a reason."""

    def __init__(self, ui, customer_id: str = "", parent=None):
        super().__init__(parent)
        self.ui = ui
        self.setWindowTitle("Customer threshold override")
        lay = QVBoxLayout(self)
        lo, hi = OVERRIDE_LIMITS
        intro = QLabel(
            f"Widen (above 1) or narrow (below 1) the genuine / refer / forgery thresholds for one "
            f"customer, e.g. for a tremor. Bounded to \u00d7{lo:.2f}\u2013\u00d7{hi:.2f}; every change is "
            "recorded with your reason."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.customer = QLineEdit(customer_id)
        self.scale = QDoubleSpinBox()
        self.scale.setRange(lo, hi)
        self.scale.setSingleStep(0.01)
        self.scale.setDecimals(2)
        self.scale.setValue(1.0)
        self.reason = QLineEdit()
        form.addRow("&Customer account id:", self.customer)
        form.addRow("Threshold &multiplier:", self.scale)
        form.addRow("&Reason:", self.reason)
        lay.addLayout(form)
        self.current = QLabel("")
        lay.addWidget(self.current)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #a3261b;")
        self.error.setWordWrap(True)
        lay.addWidget(self.error)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        bb.accepted.connect(self.save)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)
        self.customer.editingFinished.connect(self._show_current)
        self._show_current()

    def _show_current(self) -> None:
        cid = self.customer.text().strip()
        ov = self.ui.store.threshold_override(cid) if cid else None
        self.current.setText(
            f"In force now: \u00d7{ov.scale:.2f} by {ov.operator} ({ov.reason})" if ov else "No override in force." if cid else ""
        )
        if ov is not None:
            self.scale.setValue(ov.scale)

    def save(self) -> bool:
        cid = self.customer.text().strip()
        try:
            self.ui.library.require_customer(cid)
            self.result_override = self.ui.store.set_threshold_override(
                self.ui.operator, cid, self.scale.value(), self.reason.text()
            )
        except SigverifyError as exc:
            self.error.setText(str(exc))
            return False
        self.accept()
        return True


def open_threshold_override(ui) -> ThresholdOverrideDialog | None:
    if not ui.allowed("supervisor", "a per-customer threshold override"):
        return None
    cur = getattr(getattr(ui.window, "case", None), "customer_id", None) or ""
    dlg = ThresholdOverrideDialog(ui, cur or "", ui.window)
    dlg.show()
    return dlg


__all__ = [
    "QueueDialog",
    "ThresholdOverrideDialog",
    "open_queue",
    "open_threshold_override",
    "export_case_report",
    "export_current_case",
]
