"""Fine-tuning wizard: adapt the model to a bank's own reference signatures (Model > Fine-tune...).

Pages: Data (folder, per-writer counts, thumbnails, warnings) -> Preview (before / after
preprocessing) -> Settings (base model, loss, epochs, device, advanced, time estimate) -> Training
(progress, ETA, live loss / validation-EER plot, log, Cancel) -> Result (before / after on held-out
writers, ROC curves, name + save, "Use this model now").

All work runs in the core (``sigverify.train.finetune``) through the GUI's one job type
(:class:`~sigverify.gui.jobs.JobRunner`): progress and the per-epoch rows (partial results) arrive on
the GUI thread; a failure arrives as the exception, logged with its traceback and shown on the page.
Cancelling stops the worker within about a second and nothing is written: the model is only saved when
the clerk presses Save (atomic write into the user model folder).

The before/after figures are only trusted when they were measured on the same held-out writers and on
at least ``MIN_HELD_OUT_WRITERS`` of them: otherwise (or when the fine-tuned model is worse) the result
page says so loudly and "Use this model now" needs an explicit confirmation, never one click.
"""

from __future__ import annotations

import itertools
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from sigverify.gui.imageutil import numpy_to_pixmap
from sigverify.gui.jobs import JobRunner, error_text

SCAN, TRAIN = "scan", "train"
#: What the wizard adapts (FinetuneConfig.adapt); the default is finetune_loop.DEFAULT_ADAPT.
ADAPT_CHOICES = [
    ("Decision only: background writers + thresholds (fastest)", "stage"),
    ("Decision + projection layer", "head"),
    ("Decision + projection + last convolutional block (slower)", "block"),
]

LOSS_CHOICES = [
    ("Triplet, batch-hard mining (recommended)", "triplet", "batch-hard"),
    ("Triplet, semi-hard mining (slower)", "triplet", "semi-hard"),
    ("Contrastive", "contrastive", "batch-hard"),
]


def html_escape(x) -> str:
    import html

    return html.escape(str(x))


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.1f}%"


MIN_HELD_OUT_WRITERS = 10  # below this the before/after figures are not a basis for using the model
WORSE_MARGIN = 0.005  # an EER this much higher after fine-tuning counts as worse


def assess_result(result) -> tuple[str, list[str]]:
    """Can the fine-tuned model be used on the strength of its figures? Returns (status, reasons) with
    status "ok", "unreliable" (too few or different held-out writers, not measured) or "worse"."""
    b, a = getattr(result, "before", None), getattr(result, "after", None)
    if a is None or b is None:
        return "unreliable", ["no held-out writers: the accuracy before and after fine-tuning was not measured"]
    reasons: list[str] = []
    status = "ok"
    if b.writers != a.writers:
        status = "unreliable"
        reasons.append(
            f"before ({b.writers} writers) and after ({a.writers} writers) were not measured on the same held-out writers"
        )
    if a.writers < MIN_HELD_OUT_WRITERS:
        status = "unreliable"
        reasons.append(
            f"measured on only {a.writers} held-out writer(s); at least {MIN_HELD_OUT_WRITERS} are "
            "needed for figures you can rely on (add writers or raise the held-out fraction)"
        )
    worse = []
    if a.eer > b.eer + WORSE_MARGIN:
        worse.append(f"skilled-forgery EER {_pct(b.eer)} \u2192 {_pct(a.eer)}")
    if a.eer_random > b.eer_random + WORSE_MARGIN:
        worse.append(f"random-forgery EER {_pct(b.eer_random)} \u2192 {_pct(a.eer_random)}")
    clerk = ((getattr(result, "card", None) and result.card.metrics.get("validation", {})) or {}).get("clerk") or {}
    ks = sorted(set(clerk.get("before") or {}) & set(clerk.get("after") or {}), key=int)
    if ks:  # the decision a clerk sees (questioned vs K specimens), at the largest K measured
        cb, ca = clerk["before"][ks[-1]].get("eer"), clerk["after"][ks[-1]].get("eer")
        if cb is not None and ca is not None and ca > cb + WORSE_MARGIN:
            worse.append(f"decision EER with {ks[-1]} specimens {_pct(cb)} \u2192 {_pct(ca)}")
    if worse:
        status = "worse"
        reasons.insert(0, "the fine-tuned model is worse than the base model: " + "; ".join(worse))
    return status, reasons


# ============================================================================ live plot
class CurvePlot(QWidget):
    """Training loss (left axis, blue) and validation EER (right axis, orange) per epoch (QPainter)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(170)
        self.loss: list[tuple[float, float]] = []
        self.eer: list[tuple[float, float]] = []
        self.eer_random: list[tuple[float, float]] = []
        self.epochs = 1

    def clear(self, epochs: int = 1) -> None:
        self.loss, self.eer, self.eer_random, self.epochs = [], [], [], max(1, epochs)
        self.update()

    def add(self, row: dict) -> None:
        e = float(row.get("epoch", len(self.loss) + 1))
        if row.get("loss") is not None:
            self.loss.append((e, float(row["loss"])))
        if row.get("val_eer") is not None and math.isfinite(row["val_eer"]):
            self.eer.append((e, float(row["val_eer"])))
        if row.get("val_eer_random") is not None and math.isfinite(row["val_eer_random"]):
            self.eer_random.append((e, float(row["val_eer_random"])))
        self.update()

    def paintEvent(self, _ev) -> None:  # noqa: N802 (Qt naming)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#ffffff"))
        m_l, m_r, m_t, m_b = 46, 46, 22, 26
        area = QRectF(m_l, m_t, max(10, self.width() - m_l - m_r), max(10, self.height() - m_t - m_b))
        p.setPen(QPen(QColor("#cfd6dd"), 1))
        p.drawRect(area)
        f = QFont(self.font())
        f.setPointSizeF(max(7.0, f.pointSizeF() * 0.85))
        p.setFont(f)
        lmax = max([v for _, v in self.loss] + [1e-6]) * 1.1
        emax = max([v for _, v in self.eer + self.eer_random] + [0.05]) * 1.1
        emax = min(1.0, emax)

        def pt(e: float, v: float, vmax: float) -> QPointF:
            x = area.left() + area.width() * (e / self.epochs)
            y = area.bottom() - area.height() * (v / vmax if vmax > 0 else 0)
            return QPointF(x, y)

        def line(series, vmax, colour, dash=False):
            if not series:
                return
            pen = QPen(QColor(colour), 2)
            if dash:
                pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            path = QPainterPath(pt(*series[0], vmax))
            for e, v in series[1:]:
                path.lineTo(pt(e, v, vmax))
            p.drawPath(path)
            for e, v in series:
                p.drawEllipse(pt(e, v, vmax), 2, 2)

        line(self.loss, lmax, "#0072B2")
        line(self.eer, emax, "#D55E00")
        line(self.eer_random, emax, "#E69F00", dash=True)
        p.setPen(QColor("#1d2733"))
        p.drawText(QRectF(0, area.top() - 4, m_l - 4, 14), Qt.AlignmentFlag.AlignRight, f"{lmax:.2g}")
        p.drawText(QRectF(0, area.bottom() - 10, m_l - 4, 14), Qt.AlignmentFlag.AlignRight, "0")
        p.drawText(QRectF(area.right() + 4, area.top() - 4, m_r, 14), Qt.AlignmentFlag.AlignLeft, f"{100 * emax:.0f}%")
        p.drawText(QRectF(area.right() + 4, area.bottom() - 10, m_r, 14), Qt.AlignmentFlag.AlignLeft, "0%")
        p.drawText(
            QRectF(area.left(), area.bottom() + 4, area.width(), 16), Qt.AlignmentFlag.AlignCenter, f"epoch (of {self.epochs})"
        )
        p.setPen(QColor("#0072B2"))
        p.drawText(QRectF(area.left() + 4, 3, 200, 16), Qt.AlignmentFlag.AlignLeft, "\u2014 training loss")
        p.setPen(QColor("#D55E00"))
        p.drawText(
            QRectF(area.right() - 330, 3, 330, 16),
            Qt.AlignmentFlag.AlignRight,
            "\u2014 val EER skilled   - - random (held-out writers)",
        )
        p.end()


# ============================================================================ page 1: data
class DataPage(QWizardPage):
    def __init__(self, wiz: "FinetuneWizard"):
        super().__init__()
        self.wiz = wiz
        self.setTitle("1. Reference signatures")
        self.setSubTitle(
            "Choose a folder with one sub-folder per writer: <writer>/genuine/ (and optionally "
            "<writer>/forgery/), or one customer's folder of signature images."
        )
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("folder with <writer>/genuine/*.png")
        self.folder_edit.returnPressed.connect(lambda: self.set_folder(self.folder_edit.text()))
        browse = QPushButton("&Browse\u2026")
        browse.clicked.connect(self._browse)
        self.rescan = QPushButton("&Scan")
        self.rescan.clicked.connect(lambda: self.set_folder(self.folder_edit.text()))
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        row.addWidget(self.rescan)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Writer", "Genuine", "Forgeries", "Status"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbs.setIconSize(Qt_size(150, 60))
        self.thumbs.setMaximumHeight(110)
        self.thumbs.setFlow(QListWidget.Flow.LeftToRight)
        self.thumbs.setWrapping(False)
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("QLabel { background: #fff3b0; color: #4a3b00; padding: 6px; border-radius: 4px; }")
        self.warnings.hide()
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.thumbs)
        lay.addWidget(self.warnings)

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Reference signatures folder", self.folder_edit.text())
        if d:
            self.set_folder(d)

    def set_folder(self, folder: str) -> None:
        folder = folder.strip()
        self.folder_edit.setText(folder)
        if not folder:
            return
        self.wiz.report = None
        self.wiz.previews = []
        self.table.setRowCount(0)
        self.thumbs.clear()
        self.warnings.hide()
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText("Reading and preprocessing the images\u2026")
        self.completeChanged.emit()

        def job(progress, stop):
            from sigverify.gui.finetune_format import preview_samples
            from sigverify.train.finetune import check_data

            rep = check_data(folder, None, lambda f, m, r=None: progress(0.9 * f, m), stop)
            progress(0.95, "preparing previews")
            return rep, preview_samples(rep, 8)

        self.wiz.jobs.submit(
            SCAN,
            job,
            self._scanned,
            self._failed,
            lambda f, m: (self.progress.setValue(int(1000 * f)), self.status.setText(m)),
            lambda: self._failed("scan cancelled"),
        )

    def _failed(self, exc) -> None:
        msg = error_text(exc) if isinstance(exc, BaseException) else str(exc)
        self.progress.hide()
        self.status.setText(f"<span style='color:#8a1c12'>{msg}</span>")
        self.completeChanged.emit()

    def _scanned(self, res) -> None:
        from sigverify.train.finetune import MIN_GENUINE_PER_WRITER, writer_label

        rep, previews = res
        self.wiz.report, self.wiz.previews = rep, previews
        self.progress.hide()
        s = rep.summary()
        self.status.setText(
            f"<b>{s['writers']}</b> writer(s), <b>{s['images']}</b> usable image(s) "
            f"({s['genuine']} genuine, {s['forgeries']} forgeries)"
        )
        self.table.setRowCount(len(rep.counts))
        for r, (w, c) in enumerate(sorted(rep.counts.items())):
            ok = c["usable_genuine"] >= MIN_GENUINE_PER_WRITER
            vals = [
                writer_label(w),
                str(c["genuine"]),
                str(c["forgery"]),
                "ok" if ok else f"only {c['usable_genuine']} usable genuine (< {MIN_GENUINE_PER_WRITER})",
            ]
            for col, v in enumerate(vals):
                it = QTableWidgetItem(v)
                if not ok:
                    it.setBackground(QColor("#fff3b0"))
                self.table.setItem(r, col, it)
        for pv in previews:
            it = QListWidgetItem(writer_label(pv["writer"]))
            it.setIcon(numpy_to_pixmap(pv["raw"]))
            it.setToolTip(pv["path"])
            self.thumbs.addItem(it)
        if rep.warnings:
            self.warnings.setText("<b>Before you go on:</b><ul>" + "".join(f"<li>{w}</li>" for w in rep.warnings) + "</ul>")
            self.warnings.show()
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802
        return self.wiz.report is not None and self.wiz.report.ok and not self.wiz.jobs.is_busy(SCAN)


def Qt_size(w: int, h: int):  # noqa: N802 - tiny helper
    from PySide6.QtCore import QSize

    return QSize(w, h)


# ============================================================================ page 2: preview
class PreviewPage(QWizardPage):
    def __init__(self, wiz: "FinetuneWizard"):
        super().__init__()
        self.wiz = wiz
        self.setTitle("2. Preview")
        self.setSubTitle(
            "A sample of scans before (left) and after (right) preprocessing: what the model sees. "
            "If signatures are cut off or mostly noise, fix the scans before fine-tuning."
        )
        self.inner = QWidget()
        self.grid = QGridLayout(self.inner)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.inner)
        QVBoxLayout(self).addWidget(scroll)

    def initializePage(self) -> None:  # noqa: N802
        from sigverify.train.finetune import writer_label

        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w:
                w.deleteLater()
        for c, t in enumerate(("Scan", "Preprocessed (network input)", "")):
            lab = QLabel(f"<b>{t}</b>")
            self.grid.addWidget(lab, 0, c)
        for r, pv in enumerate(self.wiz.previews, start=1):
            a, b = QLabel(), QLabel()
            a.setPixmap(numpy_to_pixmap(pv["raw"]).scaledToHeight(80, Qt.TransformationMode.SmoothTransformation))
            b.setPixmap(numpy_to_pixmap(pv["preprocessed"]).scaledToHeight(80, Qt.TransformationMode.SmoothTransformation))
            b.setFrameShape(QFrame.Shape.Box)
            self.grid.addWidget(a, r, 0)
            self.grid.addWidget(b, r, 1)
            self.grid.addWidget(QLabel(f"{writer_label(pv['writer'])}\n{'genuine' if pv['genuine'] else 'forgery'}"), r, 2)
        self.preview_count = len(self.wiz.previews)


# ============================================================================ page 3: settings
class SettingsPage(QWizardPage):
    def __init__(self, wiz: "FinetuneWizard"):
        super().__init__()
        self.wiz = wiz
        self.setTitle("3. Settings")
        self.setSubTitle(
            "By default the model stays as it is and only its decision (the background writers it "
            "compares with, and its thresholds) is fitted to your writers. Training the projection or "
            "the last convolutional block is slower and measured no better on a new collection."
        )
        from sigverify.train.finetune_loop import DEFAULT_ADAPT

        self.adapt = QComboBox()
        for label, key in ADAPT_CHOICES:
            self.adapt.addItem(label, key)
        self.adapt.setCurrentIndex(max(self.adapt.findData(DEFAULT_ADAPT), 0))
        self.adapt.currentIndexChanged.connect(self._adapt_chosen)
        self.base = QComboBox()
        self.base.activated.connect(self._base_chosen)
        self.loss = QComboBox()
        for label, _, _ in LOSS_CHOICES:
            self.loss.addItem(label)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(30)
        self.device = QComboBox()
        self.device.addItem("CPU", "cpu")
        torch = sys.modules.get("torch")
        try:
            if torch is not None and torch.cuda.is_available():
                self.device.addItem(f"GPU ({torch.cuda.get_device_name(0)})", "cuda")
        except Exception:  # noqa: BLE001 - a broken CUDA setup just means "CPU only"
            pass
        form = QFormLayout()
        form.addRow("&Base model:", self.base)
        form.addRow("&Adapt:", self.adapt)
        form.addRow("&Loss:", self.loss)
        form.addRow("&Epochs:", self.epochs)
        form.addRow("&Device:", self.device)
        self.adv_toggle = QToolButton()
        self.adv_toggle.setText("Show advanced settings")
        self.adv_toggle.setCheckable(True)
        self.adv_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.adv_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.adv = QGroupBox("Advanced")
        af = QFormLayout(self.adv)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 0.5)
        self.lr.setSingleStep(1e-5)
        self.lr.setValue(1e-4)
        self.val_frac = QDoubleSpinBox()
        self.val_frac.setRange(0.0, 0.6)
        self.val_frac.setSingleStep(0.05)
        self.val_frac.setValue(0.3)
        self.augment = QSpinBox()
        self.augment.setRange(0, 5)
        self.augment.setValue(2)
        self.head = QComboBox()
        self.head.addItem("Whole projection layer", "embed")
        self.head.addItem("Low-rank adapter (very small sets)", "lowrank")
        self.seed = QSpinBox()
        self.seed.setRange(0, 10**6)
        af.addRow("Learning &rate:", self.lr)
        af.addRow("&Validation writers (fraction held out):", self.val_frac)
        af.addRow("&Augmented copies per image:", self.augment)
        af.addRow("&Trained part:", self.head)
        af.addRow("&Seed:", self.seed)
        self.adv.hide()
        self.adv_toggle.toggled.connect(self._toggle_adv)
        self.estimate = QLabel("")
        self.estimate.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.adv_toggle)
        lay.addWidget(self.adv)
        lay.addStretch(1)
        lay.addWidget(self.estimate)
        for w in (self.epochs, self.augment):
            w.valueChanged.connect(self.update_estimate)
        self.val_frac.valueChanged.connect(self.update_estimate)
        for w in (self.device, self.base):
            w.currentIndexChanged.connect(self.update_estimate)
        self._filled = False
        self._adapt_chosen()

    def _adapt_chosen(self, *_a) -> None:
        from sigverify.train.finetune_loop import default_epochs

        adapt = self.adapt.currentData()
        self.epochs.blockSignals(True)
        self.epochs.setValue(default_epochs(adapt))
        self.epochs.blockSignals(False)
        for w in (self.loss, self.epochs, self.augment, self.lr, self.head):
            w.setEnabled(adapt != "stage")  # nothing is trained
        self.update_estimate()

    def _toggle_adv(self, on: bool) -> None:
        self.adv.setVisible(on)
        self.adv_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.adv_toggle.setText("Hide advanced settings" if on else "Show advanced settings")

    def fill_models(self) -> None:
        from sigverify.paths import default_model_path
        from sigverify.store.models import list_models

        keep = self.base.currentData()
        self.base.blockSignals(True)
        self.base.clear()
        if default_model_path().exists():
            self.base.addItem("Shipped model (sigverify-base)", "")
        else:
            self.base.addItem("Shipped model (not installed: UNTRAINED random weights)", "")
        seen = {str(default_model_path())}
        for m in list_models(include_shipped=False):
            self.base.addItem(f"{m.name} (saved {m.created[:10]})", str(m.path))
            seen.add(str(m.path))
        cur = self.wiz.current_model_path()
        if cur and cur not in seen:
            self.base.addItem(f"Current model ({Path(cur).name})", cur)
            seen.add(cur)
        if self.wiz.base_path and self.wiz.base_path not in seen:
            self.base.addItem(f"{Path(self.wiz.base_path).name}", self.wiz.base_path)
        self.base.addItem("Other model file\u2026", "__browse__")
        want = self.wiz.base_path or keep or cur or ""
        i = self.base.findData(want)
        self.base.setCurrentIndex(max(i, 0))
        self.base.blockSignals(False)

    def _base_chosen(self, idx: int) -> None:
        if self.base.itemData(idx) != "__browse__":
            return
        p, _ = QFileDialog.getOpenFileName(self, "Base model", "", "Models (*.safetensors)")
        if p:
            self.wiz.base_path = p
            self.fill_models()
        else:
            self.base.setCurrentIndex(0)

    def initializePage(self) -> None:  # noqa: N802
        if not self._filled:
            self.fill_models()
            self._filled = True
        self.update_estimate()

    def base_model_path(self) -> str | None:
        d = self.base.currentData()
        return None if d in (None, "", "__browse__") else str(d)

    def config(self):
        from sigverify.train.finetune import FinetuneConfig

        _, loss, mining = LOSS_CHOICES[self.loss.currentIndex()]
        return FinetuneConfig(
            epochs=self.epochs.value(),
            lr=self.lr.value(),
            loss=loss,
            mining=mining,
            val_frac=self.val_frac.value(),
            augment_copies=self.augment.value(),
            head=self.head.currentData(),
            adapt=self.adapt.currentData(),
            seed=self.seed.value(),
            device=self.device.currentData(),
        )

    def update_estimate(self) -> None:
        from sigverify.train.finetune import estimate_seconds, format_duration

        rep = self.wiz.report
        if rep is None:
            self.estimate.setText("")
            return
        dev = self.device.currentData() or "cpu"
        s = estimate_seconds(
            rep.n_images,
            self.epochs.value(),
            self.augment.value(),
            "signet-s",
            dev,
            preprocessed=True,
            val_frac=self.val_frac.value(),
            adapt=self.adapt.currentData(),
        )
        work = "" if self.adapt.currentData() == "stage" else f" and {self.epochs.value()} epochs"
        text = (
            f"<b>Estimated time:</b> about {format_duration(s)} on the "
            f"{'GPU' if dev != 'cpu' else 'CPU'} for {rep.n_images} images{work} "
            "(the window stays usable; you can cancel at any time)."
        )
        held = int(round(rep.n_writers * self.val_frac.value()))
        if held < MIN_HELD_OUT_WRITERS:
            text += (
                f"<p style='background:#fdecea;color:#8a1c12;padding:6px'><b>\u26a0 About {held} writer(s) will "
                f"be held out</b> to measure the result; at least {MIN_HELD_OUT_WRITERS} are needed for figures "
                "you can rely on. The model can be saved, but it cannot be switched to without an explicit "
                "confirmation. Add writers, or raise the held-out fraction (Advanced).</p>"
            )
        self.estimate.setText(text)


# ============================================================================ page 4: training
class TrainingPage(QWizardPage):
    def __init__(self, wiz: "FinetuneWizard"):
        super().__init__()
        self.wiz = wiz
        self.setTitle("4. Fine-tuning")
        self.setSubTitle(
            "Computing the base model's features once, then training the chosen part and fitting the decision. "
            "Cancel stops within seconds and saves nothing."
        )
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.eta = QLabel("")
        self.plot = CurvePlot()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.cancel_btn = QPushButton("&Cancel fine-tuning")
        self.cancel_btn.clicked.connect(self.cancel)
        self.restart_btn = QPushButton("&Start again")
        self.restart_btn.clicked.connect(self.start)
        self.restart_btn.hide()
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_btn)
        row.addWidget(self.restart_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.eta)
        lay.addWidget(self.plot, 2)
        lay.addWidget(self.log, 1)
        self.state = "idle"  # idle / running / done / cancelled / failed
        self._t0 = 0.0

    def initializePage(self) -> None:  # noqa: N802
        self.start()

    def cleanupPage(self) -> None:  # noqa: N802 - going Back: stop the run
        if self.state == "running":
            self.cancel()

    def start(self) -> None:
        self.wiz.result = None
        self.wiz.saved_path = None
        s = self.wiz.settings_page
        cfg = s.config()
        base_path = s.base_model_path()
        rep = self.wiz.report
        self.plot.clear(cfg.epochs)
        self.log.clear()
        self.bar.setValue(0)
        self.state = "running"
        self.cancel_btn.setEnabled(True)
        self.cancel_btn.show()
        self.restart_btn.hide()
        self._t0 = time.perf_counter()
        run = next(self.wiz._run_ids)
        self.wiz._run = run
        curve_dir = self.wiz.temp_dir()
        self.append(
            f"base model: {Path(base_path).name if base_path else 'shipped default'}; loss {cfg.loss}"
            + (f" ({cfg.mining})" if cfg.loss == "triplet" else "")
            + f"; {cfg.epochs} epochs; lr {cfg.lr:g}; device {cfg.device}"
        )

        def job(progress, stop):
            from sigverify.model.embedder import open_model
            from sigverify.train.finetune import finetune, save_curves_for

            base = open_model(base_path, "cpu")

            def prog(f, m, row=None):
                progress(f, m, dict(row) if row else None)  # a row is a partial result: the live curve

            res = finetune(rep, base, cfg, progress=prog, should_stop=stop)
            if stop():
                from sigverify.errors import Cancelled

                raise Cancelled("cancelled")
            curves = save_curves_for(res, str(Path(curve_dir) / f"run{run}"))
            return res, curves

        self.wiz.jobs.submit(
            TRAIN,
            job,
            self._done,
            self._failed,
            self._progress,
            self._cancelled,
            on_partial=lambda row, r=run: self.on_row(r, row),
        )
        self.completeChanged.emit()

    def append(self, line: str) -> None:
        self.log.appendPlainText(f"[{time.strftime('%H:%M:%S')}] {line}")

    def _progress(self, f: float, msg: str) -> None:
        self.bar.setValue(int(1000 * f))
        el = time.perf_counter() - self._t0
        from sigverify.train.finetune import format_duration

        eta = el / f * (1 - f) if f > 0.02 else None
        self.eta.setText(
            f"{msg}\nelapsed {format_duration(el)}" + (f", about {format_duration(eta)} left" if eta is not None else "")
        )
        self.wiz.training_progress.emit(f, msg)

    def on_row(self, run: int, row: dict) -> None:
        if run != self.wiz._run or self.state != "running":
            return
        self.plot.add(row)
        if row.get("epoch") is not None:
            txt = f"epoch {row['epoch']}"
            if row.get("loss") is not None:
                txt += f"  loss {row['loss']:.4f}"
            if row.get("val_eer") is not None:
                txt += f"  val EER {_pct(row['val_eer'])} (random {_pct(row.get('val_eer_random'))})"
            self.append(txt if row.get("epoch") else "base model on held-out writers: " + txt.split("  ", 1)[-1])
        self.wiz.training_row.emit(row)

    def cancel(self) -> None:
        if self.state != "running":
            return
        self.append("cancelling\u2026")
        self.wiz.jobs.cancel(TRAIN)  # calls _cancelled at once; the worker stops at its next check

    def _cancelled(self) -> None:
        self.state = "cancelled"
        self.append("cancelled: nothing was saved")
        self.eta.setText("Cancelled. Nothing was saved.")
        self.cancel_btn.hide()
        self.restart_btn.show()
        self.completeChanged.emit()
        self.wiz.training_finished.emit("cancelled")

    def _failed(self, exc) -> None:
        msg = error_text(exc) if isinstance(exc, BaseException) else str(exc)
        self.state = "failed"
        self.append(f"failed: {msg}")
        self.eta.setText(f"<span style='color:#8a1c12'>Fine-tuning failed: {msg}</span>")
        self.cancel_btn.hide()
        self.restart_btn.show()
        self.completeChanged.emit()
        self.wiz.training_finished.emit("failed")

    def _done(self, res) -> None:
        from sigverify.train.finetune import format_duration

        result, curves = res
        self.wiz.result, self.wiz.curves = result, curves
        self.state = "done"
        self.bar.setValue(1000)
        self.cancel_btn.hide()
        self.restart_btn.show()
        self.append(f"finished in {format_duration(result.seconds)}")
        for n in result.notes:
            self.append(f"note: {n}")
        self.eta.setText(f"Finished in {format_duration(result.seconds)}. Press Next for the result.")
        self.completeChanged.emit()
        self.wiz.training_finished.emit("done")

    def isComplete(self) -> bool:  # noqa: N802
        return self.state == "done" and self.wiz.result is not None


# ============================================================================ page 5: result
class ResultPage(QWizardPage):
    def __init__(self, wiz: "FinetuneWizard"):
        super().__init__()
        self.wiz = wiz
        self.setTitle("5. Result")
        self.setSubTitle("Accuracy on writers held out from fine-tuning, before (base model) and after.")
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["", "Base model", "Fine-tuned"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(200)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.roc = QLabel("")
        self.roc.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.roc.setMinimumSize(340, 310)
        self.name = QLineEdit()
        self.save_btn = QPushButton("&Save model")
        self.save_btn.clicked.connect(self.save)
        self.use_btn = QPushButton("&Use this model now")
        self.use_btn.clicked.connect(self.use_now)
        self.warning = QLabel("")  # loud: too few / different held-out writers, or a worse model
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(
            "QLabel { background: #fdecea; color: #8a1c12; border: 1px solid #f1b0a8; "
            "padding: 6px; border-radius: 4px; font-weight: 600; }"
        )
        self.warning.hide()
        self.use_anyway = QCheckBox("I have read the warning and still want to use this model")
        self.use_anyway.toggled.connect(self._update_use)
        self.use_anyway.hide()
        self.assessment: tuple[str, list[str]] = ("unreliable", [])
        self.status = QLabel("The model is not saved until you press Save.")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        name_label = QLabel("Model &name:")
        name_label.setBuddy(self.name)
        row.addWidget(name_label)
        row.addWidget(self.name, 1)
        row.addWidget(self.save_btn)
        row.addWidget(self.use_btn)
        top = QHBoxLayout()
        top.addWidget(self.table, 1)
        top.addWidget(self.roc, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(top, 1)
        lay.addWidget(self.notes)
        lay.addWidget(self.warning)
        lay.addWidget(self.use_anyway)
        lay.addLayout(row)
        lay.addWidget(self.status)

    def _update_use(self) -> None:
        ok = self.assessment[0] == "ok"
        self.use_btn.setEnabled(ok or self.use_anyway.isChecked())

    def initializePage(self) -> None:  # noqa: N802
        r = self.wiz.result
        if r is None:
            return
        b, a = r.before, r.after
        rows = [
            ("Skilled-forgery EER", b and b.eer, a and a.eer),
            ("Random-forgery EER", b and b.eer_random, a and a.eer_random),
            ("False accept rate (skilled) at threshold", b and b.far, a and a.far),
            ("False reject rate at threshold", b and b.frr, a and a.frr),
            ("False accept rate (random) at threshold", b and b.far_random, a and a.far_random),
        ]
        self.table.setRowCount(len(rows))
        for i, (lab, x, y) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(lab))
            self.table.setItem(i, 1, QTableWidgetItem(_pct(x)))
            self.table.setItem(i, 2, QTableWidgetItem(_pct(y)))
        note = []
        if a is not None:
            note.append(
                f"Measured on {a.writers} held-out writer(s) ({a.pairs.get('positive', 0)} genuine pairs, "
                f"{a.pairs.get('skilled', 0)} skilled-forgery pairs). Base: its own threshold; fine-tuned: "
                f"recalibrated threshold."
            )
        note += r.notes
        if r.card.training.get("base_random_init"):
            note.append("The base model has UNTRAINED random weights.")
        self.notes.setText("\n".join(note))
        roc = next((c for c in self.wiz.curves if c.endswith("_roc.png")), None)
        if roc and Path(roc).exists():
            self.roc.setPixmap(
                QPixmap(roc).scaled(340, 310, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            )
        else:
            self.roc.setText("(no ROC curve: no held-out writers)")
        self.name.setText(r.card.name + time.strftime("-%Y%m%d-%H%M"))
        self.status.setText("The model is not saved until you press Save.")
        self.save_btn.setEnabled(True)
        self.assessment = assess_result(r)
        status, reasons = self.assessment
        if status == "ok":
            self.warning.hide()
            self.use_anyway.hide()
        else:
            head = {
                "worse": "Do not use this model: it is worse than the base model.",
                "unreliable": "These figures are not reliable enough to switch to this model.",
            }[status]
            self.warning.setText("\u26a0 " + head + "<ul>" + "".join(f"<li>{html_escape(x)}</li>" for x in reasons) + "</ul>")
            self.warning.show()
            self.use_anyway.show()
        self.use_anyway.setChecked(False)
        self._update_use()

    def save(self) -> str | None:
        from sigverify.errors import SigverifyError
        from sigverify.train.finetune import save_finetuned

        if self.wiz.saved_path:
            return self.wiz.saved_path
        name = self.name.text().strip()
        if not name:
            self.status.setText("<span style='color:#8a1c12'>Give the model a name first.</span>")
            return None
        try:
            p = save_finetuned(self.wiz.result, name)
        except (SigverifyError, OSError) as exc:
            self.status.setText(f"<span style='color:#8a1c12'>Not saved: {exc}</span>")
            return None
        self.wiz.saved_path = str(p)
        self.save_btn.setEnabled(False)
        self.status.setText(f"Saved as {p}")
        self.wiz.model_saved.emit(str(p))
        return str(p)

    def use_now(self) -> None:
        if self.assessment[0] != "ok" and not self.use_anyway.isChecked():
            self.status.setText(
                "<span style='color:#8a1c12'>Read the warning first: this model needs an explicit confirmation.</span>"
            )
            return
        mw = self.wiz.main_window
        cmp = getattr(mw, "comparison", None)
        if cmp is not None and not cmp.confirm_verdict_change("the model", "switch to the fine-tuned model"):
            return
        p = self.save()
        if p and mw is not None:
            self.wiz.main_window.switch_model(p)
            self.status.setText(f"Saved as {p}; the main window now uses it.")


# ============================================================================ the wizard
class FinetuneWizard(QWizard):
    training_progress = Signal(float, str)
    training_row = Signal(object)
    training_finished = Signal(str)  # "done" / "cancelled" / "failed"
    model_saved = Signal(str)

    def __init__(self, main_window=None, parent: QWidget | None = None, folder: str | None = None, base_path: str | None = None):
        super().__init__(parent or main_window)
        self.setWindowTitle("Fine-tune on my references")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.resize(820, 640)
        self.main_window = main_window
        self.base_path = str(base_path) if base_path else None
        self.jobs = JobRunner(self, threads=1)
        self.report = None
        self.previews: list[dict] = []
        self.result = None
        self.curves: list[str] = []
        self.saved_path: str | None = None
        self._tmp: str | None = None
        self._run_ids = itertools.count(1)
        self._run = 0
        self.data_page = DataPage(self)
        self.preview_page = PreviewPage(self)
        self.settings_page = SettingsPage(self)
        self.training_page = TrainingPage(self)
        self.result_page = ResultPage(self)
        for p in (self.data_page, self.preview_page, self.settings_page, self.training_page, self.result_page):
            self.addPage(p)
        self.finished.connect(self._cleanup)
        if folder:
            self.data_page.set_folder(str(folder))

    def current_model_path(self) -> str | None:
        mw = self.main_window
        v = mw.current_verifier() if mw is not None and hasattr(mw, "current_verifier") else None
        p = getattr(getattr(v, "model", None), "path", None) if v is not None else None
        return str(p) if p else None

    def temp_dir(self) -> str:
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="sigverify-finetune-")
        return self._tmp

    def reject(self) -> None:
        self.jobs.cancel_all()
        super().reject()

    def _cleanup(self, *_):
        self.jobs.shutdown(3000)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


__all__ = ["FinetuneWizard", "CurvePlot"]
