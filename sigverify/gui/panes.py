"""The Reference and Questioned panes, the overlay view and the zoomable image view they share.

Panes accept drag-and-drop of files and folders, Ctrl+V paste of an image (or copied files), and show
every problem as a non-modal message inside the pane. They hold the loaded signatures but never call
the core themselves: the main window does the loading in a worker and hands the result back.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFrame,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sigverify.gui.imageutil import BOTH_RGB, Q_RGB, REF_RGB, ink_overlay, numpy_to_pixmap, qimage_to_numpy
from sigverify.imaging.files import SUPPORTED_SUFFIXES as IMAGE_SUFFIXES  # noqa: F401  (the one list; re-exported)

ORIGINAL, PREPROCESSED, OVERLAY = "original", "preprocessed", "overlay"
MAX_FOLDER_FILES = 200
FOOTER_H = 104  # reference thumbnail strip and questioned details share this height (aligned images)


def expand_paths(paths: list[str]) -> tuple[list[str], list[str]]:
    """Files stay as they are (the core judges them); folders become their image files, sorted.

    Returns (files, problems): a folder without images is a problem, not an empty success.
    """
    from sigverify.imaging.files import expand_images_checked

    return expand_images_checked(paths, MAX_FOLDER_FILES)


def local_files_from_mime(mime: QMimeData) -> list[str]:
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


def image_from_mime(mime: QMimeData) -> np.ndarray | None:
    if not mime.hasImage():
        return None
    data = mime.imageData()
    img = data if isinstance(data, QImage) else QImage(data) if data is not None else QImage()
    if isinstance(data, QPixmap):
        img = data.toImage()
    if img.isNull():
        return None
    return qimage_to_numpy(img)


def signature_display(sig, mode: str) -> np.ndarray:
    """What a pane shows for a signature: the original scan or the network input (dark ink on white)."""
    pre = sig.preprocessed
    if mode == ORIGINAL:
        orig = (pre.stages or {}).get("original")
        if orig is not None:
            from sigverify.gui.crop import draw_region, shows_region

            return draw_region(orig, pre.region, pre.region_source) if shows_region(pre) else orig
    return 255 - pre.input


class ImageView(QGraphicsView):
    """Zoomable view of one image: fit to the window by default; zoom keeps until Fit."""

    def __init__(self, placeholder: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._item)
        self._fit = True
        self._zoom = 1.0
        self._placeholder = placeholder
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QColor("#ffffff"))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMinimumSize(160, 110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.viewport().update()

    def set_image(self, arr: np.ndarray | None) -> None:
        if arr is None:
            self._item.setPixmap(QPixmap())
            self._scene.setSceneRect(QRectF())
        else:
            pm = numpy_to_pixmap(arr)
            self._item.setPixmap(pm)
            self._scene.setSceneRect(QRectF(pm.rect()))
        self._apply()

    def has_image(self) -> bool:
        return not self._item.pixmap().isNull()

    def zoom_in(self) -> None:
        self._set_zoom(self.current_scale() * 1.25)

    def zoom_out(self) -> None:
        self._set_zoom(self.current_scale() / 1.25)

    def fit(self) -> None:
        self._fit = True
        self._apply()

    def is_fit(self) -> bool:
        return self._fit

    def current_scale(self) -> float:
        return self.transform().m11()

    def _set_zoom(self, z: float) -> None:
        self._fit = False
        self._zoom = min(max(z, 0.05), 16.0)
        self._apply()

    def _apply(self) -> None:
        self.resetTransform()
        if not self.has_image():
            return
        if self._fit:
            r = self._scene.sceneRect()
            vw, vh = max(1, self.viewport().width() - 16), max(1, self.viewport().height() - 16)
            s = min(vw / r.width(), vh / r.height(), 4.0)
            self.scale(s, s)
        else:
            self.scale(self._zoom, self._zoom)

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        if self._fit:
            self._apply()

    def drawForeground(self, painter: QPainter, rect) -> None:  # noqa: N802
        if self.has_image() or not self._placeholder:
            return
        painter.save()
        painter.resetTransform()
        vr = self.viewport().rect().adjusted(14, 14, -14, -14)
        pen = painter.pen()
        pen.setColor(QColor("#9aa3ad"))
        pen.setStyle(Qt.PenStyle.DashLine)
        pen.setWidthF(1.5)
        painter.setPen(pen)
        painter.drawRoundedRect(vr, 10, 10)
        painter.setPen(QColor("#5f6b77"))
        painter.drawText(vr, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
        painter.restore()


class ElidedLabel(QLabel):
    """A one-line label that never widens its pane: ``text()`` is the whole text (also the tooltip),
    painted with an ellipsis in the middle when the label is narrower (file names can be any length)."""

    def __init__(self, text: str = "", parent: QWidget | None = None, mode=Qt.TextElideMode.ElideMiddle):
        super().__init__(text, parent)
        self._mode = mode
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(20, super().minimumSizeHint().height())

    def is_elided(self) -> bool:
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()

    def paintEvent(self, _e) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        r = self.contentsRect()
        p.setPen(self.palette().color(self.foregroundRole()))
        text = self.fontMetrics().elidedText(self.text(), self._mode, r.width())
        p.drawText(r, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        p.end()


class MessageLabel(QLabel):
    """Non-modal message inside a pane: red for errors, amber for warnings, hidden when empty."""

    STYLES = {
        "error": "background:#fdecea; color:#8a1c12; border:1px solid #f1b0a8;",
        "warning": "background:#fff4e0; color:#6b4500; border:1px solid #f0cf8f;",
        "info": "background:#e8f1fb; color:#174a7c; border:1px solid #b7d0ee;",
    }

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._kind = ""
        self.hide()

    def show_message(self, text: str, kind: str = "error") -> None:
        if not text:
            self.clear_message()
            return
        self._kind = kind
        prefix = {"error": "\u26a0 ", "warning": "\u26a0 ", "info": ""}.get(kind, "")
        self.setText(prefix + text)
        self.setStyleSheet(f"QLabel {{ {self.STYLES.get(kind, '')} border-radius:4px; padding:6px 8px; }}")
        self.setAccessibleName(f"{kind}: {text}")
        self.show()

    def clear_message(self) -> None:
        self._kind = ""
        self.setText("")
        self.hide()

    def kind(self) -> str:
        return self._kind


class SignaturePane(QFrame):
    """Common part of the two input panes."""

    files_dropped = Signal(list)  # list[str] of local paths (files and/or folders)
    image_pasted = Signal(object)  # np.ndarray RGB uint8
    open_requested = Signal()
    clear_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, title: str, placeholder: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("pane")
        self.setProperty("active", False)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(f"{title} pane")
        self._mode = ORIGINAL
        self._title = title

        self.title_label = QLabel(title)
        self.title_label.setObjectName("paneTitle")
        self.title_label.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)  # never shortened
        self.subtitle_label = QLabel("")  # e.g. the customer: elided, never widens the window
        self.subtitle_label.setObjectName("paneSubtitle")
        self.subtitle_label.setTextFormat(Qt.TextFormat.PlainText)
        self.subtitle_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.subtitle_label.hide()
        self.count_label = QLabel("")
        self.count_label.setObjectName("paneCount")
        self.open_button = QToolButton()
        self.open_button.setText("Open\u2026")
        self.open_button.setToolTip(f"Open {title.lower()} signature files")
        self.open_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.open_button.clicked.connect(self.open_requested)
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.clear_button.clicked.connect(self.clear_requested)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.setSpacing(3)  # compact: both panes and the verdict fit 960 logical px (1920 px at 200 %)
        head.addWidget(self.title_label)
        head.addWidget(self.subtitle_label, 1)
        head.addWidget(self.count_label)
        head.addStretch(0)
        head.addWidget(self.open_button)
        head.addWidget(self.clear_button)

        self.view = ImageView(placeholder)
        self.caption = ElidedLabel("")  # the file name is shortened in the middle, never the pane title
        self.caption.setObjectName("paneCaption")

        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(True)
        self.progress.setMaximumHeight(18)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.busy_row = QWidget()
        br = QHBoxLayout(self.busy_row)
        br.setContentsMargins(0, 0, 0, 0)
        br.addWidget(self.progress, 1)
        br.addWidget(self.cancel_button)
        self.busy_row.hide()

        self.message = MessageLabel()

        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(10, 8, 10, 10)
        self.layout_.setSpacing(8)
        self.layout_.addLayout(head)
        self.layout_.addWidget(self.view, 1)
        self.layout_.addWidget(self.caption)

    def _finish_layout(self) -> None:
        self.layout_.addWidget(self.busy_row)
        self.layout_.addWidget(self.message)

    # -- state ----------------------------------------------------------------------------------
    def set_active(self, active: bool) -> None:
        if self.property("active") != active:
            self.setProperty("active", active)
            self.style().unpolish(self)
            self.style().polish(self)

    def set_subtitle(self, text: str) -> None:
        """A second, elided part of the title (the customer's name): the title itself stays whole."""
        self._subtitle = text
        self.subtitle_label.setToolTip(text)
        self.subtitle_label.setVisible(bool(text))
        self._elide_subtitle()

    def _elide_subtitle(self) -> None:
        text = getattr(self, "_subtitle", "")
        if text:
            w = max(20, self.subtitle_label.width())
            self.subtitle_label.setText(
                self.subtitle_label.fontMetrics().elidedText("\u2014 " + text, Qt.TextElideMode.ElideRight, w)
            )

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        self._elide_subtitle()

    def showEvent(self, e) -> None:  # noqa: N802
        super().showEvent(e)
        # The title keeps its full width with the style sheet's font ("Reference" never reads "Refer").
        t = self.title_label
        t.ensurePolished()
        t.setMinimumWidth(t.fontMetrics().horizontalAdvance(t.text()) + 6)

    def set_busy(self, busy: bool, text: str = "Loading\u2026") -> None:
        self.busy_row.setVisible(busy)
        if busy:
            self.progress.setValue(0)
            self.progress.setFormat(text)

    def is_busy(self) -> bool:
        return not self.busy_row.isHidden()

    def set_progress(self, frac: float, text: str) -> None:
        self.progress.setValue(int(round(frac * 100)))
        self.progress.setFormat(f"{text} (%p%)" if text else "%p%")

    def show_error(self, text: str) -> None:
        self.message.show_message(text, "error")

    def show_warning(self, text: str) -> None:
        self.message.show_message(text, "warning")

    def clear_message(self) -> None:
        self.message.clear_message()

    def error_text(self) -> str:
        return self.message.text() if self.message.kind() == "error" else ""

    def set_view_mode(self, mode: str) -> None:
        self._mode = mode if mode in (ORIGINAL, PREPROCESSED) else self._mode
        self.refresh()

    def refresh(self) -> None:  # overridden
        pass

    # -- drag and drop, paste ----------------------------------------------------------------
    def dragEnterEvent(self, e) -> None:  # noqa: N802
        mime = e.mimeData()
        if local_files_from_mime(mime) or mime.hasImage():
            e.acceptProposedAction()
            self.set_active(True)
        else:
            e.ignore()

    def dragMoveEvent(self, e) -> None:  # noqa: N802
        mime = e.mimeData()
        if local_files_from_mime(mime) or mime.hasImage():
            e.acceptProposedAction()
        else:
            e.ignore()

    def dragLeaveEvent(self, e) -> None:  # noqa: N802
        self.set_active(self.hasFocus())

    def dropEvent(self, e) -> None:  # noqa: N802
        self.set_active(self.hasFocus())
        if self.handle_mime(e.mimeData()):
            e.acceptProposedAction()
        else:
            e.ignore()

    def handle_mime(self, mime: QMimeData) -> bool:
        files = local_files_from_mime(mime)
        if files:
            self.files_dropped.emit(files)
            return True
        if mime.hasImage():
            try:
                arr = image_from_mime(mime)
            except (ValueError, MemoryError) as exc:
                self.show_error(f"the pasted image cannot be used: {exc}")
                return False
            if arr is None:
                self.show_error("the clipboard image is empty")
                return False
            self.image_pasted.emit(arr)
            return True
        if mime.hasUrls():
            self.show_error("only local files can be used (not web links)")
        else:
            self.show_error("the clipboard holds no image and no image file; copy an image first")
        return False

    def paste_from_clipboard(self) -> bool:
        return self.handle_mime(QApplication.clipboard().mimeData())

    def focusInEvent(self, e) -> None:  # noqa: N802
        super().focusInEvent(e)
        self.set_active(True)

    def focusOutEvent(self, e) -> None:  # noqa: N802
        super().focusOutEvent(e)
        self.set_active(False)


def _short(source: str) -> str:
    if source.startswith("clipboard") or os.path.sep not in source and "/" not in source:
        return source
    return Path(source).name


class ReferencePane(SignaturePane):
    """One or more reference signatures: a thumbnail strip, one selected, remove button."""

    selection_changed = Signal(int)
    remove_requested = Signal(int)
    add_requested = Signal()

    THUMB = QSize(88, 52)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(
            "Reference", "Drop the account holder's reference signatures here\n(files or a folder), or paste with Ctrl+V", parent
        )
        self._sigs: list = []
        self.add_button = QToolButton()
        self.add_button.setText("Add\u2026")
        self.add_button.setToolTip("Add more reference signatures to this set")
        self.add_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.add_button.clicked.connect(self.add_requested)

        self.strip = QListWidget()
        self.strip.setViewMode(QListWidget.ViewMode.IconMode)
        self.strip.setFlow(QListWidget.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setMovement(QListWidget.Movement.Static)
        self.strip.setIconSize(self.THUMB)
        self.strip.setSpacing(4)
        self.strip.setFixedHeight(FOOTER_H)
        self.strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.strip.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.strip.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.strip.setWordWrap(False)
        self.strip.setUniformItemSizes(True)
        self.strip.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.strip.setAcceptDrops(False)
        self.strip.setAccessibleName("Reference thumbnails")
        self.strip.currentRowChanged.connect(self._row_changed)
        self.remove_button = QToolButton()
        self.remove_button.setText("Remove")
        self.remove_button.setToolTip("Remove the selected reference signature (Delete)")
        self.remove_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self.selected_index()))
        self.remove_button.setEnabled(False)
        # Remove sits beside the thumbnails it acts on: the title row stays narrow (200 % on 1920x1080)
        strip_row = QHBoxLayout()
        strip_row.setContentsMargins(0, 0, 0, 0)
        strip_row.setSpacing(6)
        strip_row.addWidget(self.strip, 1)
        set_buttons = QVBoxLayout()  # Add / Remove act on the thumbnail set beside them
        set_buttons.setContentsMargins(0, 0, 0, 0)
        set_buttons.setSpacing(4)
        for b in (self.add_button, self.remove_button):
            b.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            b.setMinimumWidth(b.fontMetrics().horizontalAdvance("Remove") + 20)
            set_buttons.addWidget(b)
        set_buttons.addStretch(1)
        strip_row.addLayout(set_buttons)
        self.layout_.addLayout(strip_row)
        self._finish_layout()
        self._update_count()
        # the count never widens the window when a set is loaded: room for "99 signatures" from the start
        self.count_label.setMinimumWidth(self.count_label.fontMetrics().horizontalAdvance("99 signatures") + 8)

    def keyPressEvent(self, e) -> None:  # noqa: N802
        if e.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self._sigs:
            self.remove_requested.emit(self.selected_index())
            return
        if e.key() in (Qt.Key.Key_Left, Qt.Key.Key_Right) and self._sigs:
            step = -1 if e.key() == Qt.Key.Key_Left else 1
            self.select(min(max(self.selected_index() + step, 0), len(self._sigs) - 1))
            return
        super().keyPressEvent(e)

    def signatures(self) -> list:
        return list(self._sigs)

    def set_signatures(self, sigs: list, select: int = 0) -> None:
        self._sigs = list(sigs)
        self.strip.blockSignals(True)
        self.strip.clear()
        for i, s in enumerate(self._sigs):
            thumb = signature_display(s, ORIGINAL)
            pm = numpy_to_pixmap(thumb).scaled(
                self.THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            canvas = QPixmap(self.THUMB)
            canvas.fill(QColor("white"))
            p = QPainter(canvas)
            p.drawPixmap((self.THUMB.width() - pm.width()) // 2, (self.THUMB.height() - pm.height()) // 2, pm)
            p.end()
            it = QListWidgetItem(QIcon(canvas), f"{i + 1}. {_short(s.source)}")
            it.setToolTip(s.source)
            it.setSizeHint(QSize(self.THUMB.width() + 30, self.THUMB.height() + 26))
            self.strip.addItem(it)
        self.strip.blockSignals(False)
        if self._sigs:
            self.strip.setCurrentRow(min(max(select, 0), len(self._sigs) - 1))
        self.remove_button.setEnabled(bool(self._sigs))
        self._update_count()
        self.refresh()

    def selected_index(self) -> int:
        r = self.strip.currentRow()
        return r if 0 <= r < len(self._sigs) else (0 if self._sigs else -1)

    def selected(self):
        i = self.selected_index()
        return self._sigs[i] if i >= 0 else None

    def select(self, i: int) -> None:
        if 0 <= i < len(self._sigs):
            self.strip.setCurrentRow(i)

    def _row_changed(self, row: int) -> None:
        self.refresh()
        self.selection_changed.emit(row)

    def _update_count(self) -> None:
        n = len(self._sigs)
        self.count_label.setText(f"{n} signature{'s' if n != 1 else ''}" if n else "")

    def refresh(self) -> None:
        s = self.selected()
        self.view.set_image(None if s is None else signature_display(s, self._mode))
        if s is None:
            self.caption.setText("")
        else:
            what = "original scan" if self._mode == ORIGINAL else "network input (as the model sees it)"
            self.caption.setText(f"{self.selected_index() + 1} of {len(self._sigs)}: {_short(s.source)} \u2014 {what}")
            self.caption.setToolTip(s.source)


class QuestionedPane(SignaturePane):
    """The one signature to verify (e.g. cut from a cheque)."""

    crop_chosen = Signal(object)  # (x, y, w, h) the clerk drew on the original scan (gui/crop.py)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Questioned", "Drop the signature to verify here\n(e.g. from the cheque), or paste with Ctrl+V", parent)
        self._sig = None
        self.footer = QFrame()
        self.footer.setObjectName("footer")
        self.footer.setFixedHeight(FOOTER_H)
        fl = QHBoxLayout(self.footer)
        fl.setContentsMargins(8, 6, 8, 6)
        fl.setSpacing(12)
        self.input_thumb = QLabel()
        self.input_thumb.setFixedSize(QSize(int((FOOTER_H - 14) * 220 / 150), FOOTER_H - 14))
        self.input_thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.input_thumb.setToolTip("What the model sees: the cleaned, size-normalised network input")
        self.info = QLabel("No questioned signature yet")
        self.info.setObjectName("paneCaption")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.PlainText)
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        fl.addWidget(self.input_thumb)
        fl.addWidget(self.info, 1)
        self.crop_button = QToolButton()
        self.crop_button.setText("Crop\u2026")
        self.crop_button.setToolTip("Wrong part of the cheque? Drag a rectangle around the signature")
        self.crop_button.setEnabled(False)
        self.crop_button.clicked.connect(self._crop)
        fl.addWidget(self.crop_button, 0, Qt.AlignmentFlag.AlignTop)
        self.layout_.addWidget(self.footer)
        self._finish_layout()

    #: the footer's details are shown only when this many px are left for them (else: the tooltip)
    INFO_MIN_W = 150

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        self._fit_footer()

    def _fit_footer(self) -> None:
        fl = self.footer.layout()
        m = fl.contentsMargins()
        room = (
            self.footer.width()
            - m.left()
            - m.right()
            - self.input_thumb.width()
            - self.crop_button.sizeHint().width()
            - 2 * fl.spacing()
        )
        self.info.setVisible(room >= self.INFO_MIN_W)  # its size policy is Ignored: no layout feedback

    def signature(self):
        return self._sig

    def set_signature(self, sig) -> None:
        self._sig = sig
        self.count_label.setText("")
        self.refresh()

    def refresh(self) -> None:
        s = self._sig
        self.view.set_image(None if s is None else signature_display(s, self._mode))
        if s is None:
            self.caption.setText("")
        else:
            what = "original scan" if self._mode == ORIGINAL else "network input (as the model sees it)"
            self.caption.setText(f"{_short(s.source)} \u2014 {what}")
            self.caption.setToolTip(s.source)
        self._update_footer()

    def _update_footer(self) -> None:
        s = self._sig
        self.crop_button.setEnabled(s is not None and (s.preprocessed.stages or {}).get("original") is not None)
        if s is None:
            self.input_thumb.clear()
            self.info.setText("No questioned signature yet")
            self.footer.setToolTip("")
            return
        inp = s.preprocessed.input
        pm = numpy_to_pixmap(255 - inp).scaled(
            self.input_thumb.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        self.input_thumb.setPixmap(pm)
        orig = (s.preprocessed.stages or {}).get("original")
        lines = []
        if orig is not None:
            lines.append(f"Scan: {orig.shape[1]} \u00d7 {orig.shape[0]} px")
        lines.append(f"Network input: {inp.shape[1]} \u00d7 {inp.shape[0]} px, ink {100 * (inp > 127).mean():.1f} %")
        from sigverify.gui.crop import region_caption

        if region_caption(s.preprocessed):
            lines.append(region_caption(s.preprocessed))
        lines.append(f"Source: {s.source}")
        self.info.setText("\n".join(lines))
        self.footer.setToolTip("\n".join(lines))

    def _crop(self) -> None:
        from sigverify.gui.crop import choose_crop

        s = self._sig
        orig = None if s is None else (s.preprocessed.stages or {}).get("original")
        if orig is None:
            return
        rect = choose_crop(self, orig, s.preprocessed.region)
        if rect is not None:
            self.crop_chosen.emit(rect)


class OverlayPane(QFrame):
    """Both network inputs on one canvas: reference blue, questioned orange, overlap dark."""

    reference_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("pane")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Overlay view")
        title = QLabel("Overlay")
        title.setObjectName("paneTitle")
        self.combo = QComboBox()
        self.combo.setAccessibleName("Reference shown in the overlay")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setMinimumContentsLength(16)
        self.combo.currentIndexChanged.connect(self._chosen)
        head = QHBoxLayout()
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(QLabel("Reference:"))
        head.addWidget(self.combo)
        legend = QHBoxLayout()
        for rgb, text in ((REF_RGB, "reference"), (Q_RGB, "questioned"), (BOTH_RGB, "both (overlap)")):
            sw = QLabel()
            pm = QPixmap(14, 14)
            pm.fill(QColor(*rgb))
            sw.setPixmap(pm)
            legend.addWidget(sw)
            legend.addWidget(QLabel(text))
            legend.addSpacing(14)
        legend.addStretch(1)
        self.view = ImageView("The overlay needs a reference and a questioned signature")
        self.caption = QLabel("Both signatures after preprocessing (size and position normalised), drawn on one canvas")
        self.caption.setObjectName("paneCaption")
        self.caption.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 12)
        lay.setSpacing(8)
        lay.addLayout(head)
        lay.addWidget(self.view, 1)
        lay.addLayout(legend)
        lay.addWidget(self.caption)
        self._refs: list = []
        self._q = None

    def _chosen(self, i: int) -> None:
        self._render()
        if i >= 0:
            self.reference_chosen.emit(i)

    def set_content(self, refs: list, questioned, selected: int) -> None:
        self._refs, self._q = list(refs), questioned
        self.combo.blockSignals(True)
        self.combo.clear()
        for i, s in enumerate(self._refs):
            self.combo.addItem(f"{i + 1}. {_short(s.source)}")
        if self._refs:
            self.combo.setCurrentIndex(min(max(selected, 0), len(self._refs) - 1))
        self.combo.blockSignals(False)
        self._render()

    def _render(self) -> None:
        i = self.combo.currentIndex()
        if self._q is None or not self._refs or i < 0:
            self.view.set_image(None)
            return
        self.view.set_image(ink_overlay(self._refs[i].preprocessed.input, self._q.preprocessed.input))

    def current_image(self) -> bool:
        return self.view.has_image()
