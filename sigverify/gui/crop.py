"""The signature's region on a document, drawn on the original scan, and a crop tool to correct it.

On a cheque or form the core locates the signature (``Preprocessed.region``, original pixels). The
questioned pane draws that rectangle on the original view (green: found automatically, blue: chosen by
hand) and offers "Crop…": a dialog showing the whole scan in which the clerk drags a rectangle around
the signature. The rectangle is sent back through ``QuestionedPane.crop_chosen``; ``attach`` (called
once by the main window) re-reads the questioned signature with that crop in a worker, and the case
then verifies and records it: the rectangle used is part of the audit record (``questioned_region``,
``region_source`` in the record's details).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from sigverify.gui.imageutil import numpy_to_pixmap

LOCATED_RGB = (0, 150, 70)
CROP_RGB = (30, 90, 220)


def region_colour(source: str | None) -> tuple[int, int, int]:
    return CROP_RGB if source == "crop" else LOCATED_RGB


def draw_region(image: np.ndarray, region, source: str | None = "located") -> np.ndarray:
    """A copy of ``image`` (grey or RGB) with the region's rectangle drawn (line width ~0.4 % of the scan)."""
    import cv2

    img = np.ascontiguousarray(image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)).copy()
    if not region:
        return img
    x, y, w, h = (int(v) for v in region)
    t = max(2, int(round(0.004 * max(img.shape[:2]))))
    cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), region_colour(source), t, cv2.LINE_AA)
    return img


def shows_region(pre) -> bool:
    """Draw the rectangle only where it tells the clerk something: a located or hand-cut region of a
    document (a clean crop's region is simply all of its ink)."""
    return bool(getattr(pre, "region", None)) and getattr(pre, "region_source", "ink") in ("located", "crop")


def region_caption(pre) -> str:
    """One line for the pane's details: where on the document the signature was taken from."""
    if not shows_region(pre):
        return ""
    x, y, w, h = pre.region
    how = "cropped by hand" if pre.region_source == "crop" else "found on the document"
    return f"Signature region: {w} \u00d7 {h} px at ({x}, {y}), {how}"


class CropView(QGraphicsView):
    """The whole scan; drag with the left mouse button to draw the rectangle."""

    rect_changed = Signal()

    def __init__(self, image: np.ndarray, region=None, parent: QWidget | None = None):
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self._h, self._w = image.shape[:2]
        self._item = QGraphicsPixmapItem(numpy_to_pixmap(image))
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._item)
        self._rect_item = QGraphicsRectItem()
        pen = QPen(QColor(*CROP_RGB))
        pen.setWidth(3)
        pen.setCosmetic(True)
        self._rect_item.setPen(pen)
        self._rect_item.setBrush(QColor(30, 90, 220, 40))
        self._scene.addItem(self._rect_item)
        self._origin: QPointF | None = None
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setMinimumSize(480, 260)
        self.setAccessibleName("Scan: drag a rectangle around the signature")
        if region:
            self.set_rect(region)

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)

    def showEvent(self, e) -> None:  # noqa: N802
        super().showEvent(e)
        self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)

    def _clip(self, p: QPointF) -> QPointF:
        return QPointF(min(max(p.x(), 0.0), float(self._w)), min(max(p.y(), 0.0), float(self._h)))

    def mousePressEvent(self, e) -> None:  # noqa: N802
        if e.button() == Qt.MouseButton.LeftButton:
            self._origin = self._clip(self.mapToScene(e.position().toPoint()))
            self._rect_item.setRect(QRectF(self._origin, self._origin))
            e.accept()
            return
        super().mousePressEvent(e)

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        if self._origin is not None:
            p = self._clip(self.mapToScene(e.position().toPoint()))
            self._rect_item.setRect(QRectF(self._origin, p).normalized())
            self.rect_changed.emit()
            e.accept()
            return
        super().mouseMoveEvent(e)

    def mouseReleaseEvent(self, e) -> None:  # noqa: N802
        if self._origin is not None and e.button() == Qt.MouseButton.LeftButton:
            self.mouseMoveEvent(e)
            self._origin = None
            self.rect_changed.emit()
            e.accept()
            return
        super().mouseReleaseEvent(e)

    def set_rect(self, region) -> None:
        x, y, w, h = (float(v) for v in region)
        self._rect_item.setRect(QRectF(x, y, w, h))
        self.rect_changed.emit()

    def rect(self) -> tuple[int, int, int, int] | None:  # noqa: A003 - the chosen rectangle, image pixels
        r = self._rect_item.rect().normalized().intersected(QRectF(0, 0, self._w, self._h))
        x, y, w, h = int(round(r.x())), int(round(r.y())), int(round(r.width())), int(round(r.height()))
        if w < 8 or h < 8:
            return None
        return (x, y, w, h)


class CropDialog(QDialog):
    """Choose the signature's rectangle on the whole scan."""

    def __init__(self, image: np.ndarray, region=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Choose the signature")
        self.setModal(True)
        self.hint = QLabel(
            "Drag a rectangle around the signature only \u2014 not the payee, amount or date. "
            "The printed line, label and stamps inside it are removed automatically."
        )
        self.hint.setWordWrap(True)
        self.view = CropView(image, region, self)
        self.size_label = QLabel("")
        self.size_label.setObjectName("paneCaption")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.use_button = QPushButton("Use this rectangle")
        self.use_button.setDefault(True)
        self.buttons.addButton(self.use_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.hint)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.size_label)
        lay.addWidget(self.buttons)
        self.view.rect_changed.connect(self._update)
        self._update()
        h, w = image.shape[:2]
        self.resize(min(1100, max(560, w // 2)), min(700, max(380, h // 2 + 140)))

    def _update(self) -> None:
        r = self.view.rect()
        self.use_button.setEnabled(r is not None)
        self.size_label.setText(
            "No rectangle yet: drag one around the signature"
            if r is None
            else f"Rectangle: x {r[0]}, y {r[1]}, {r[2]} \u00d7 {r[3]} px"
        )

    def chosen(self) -> tuple[int, int, int, int] | None:
        return self.view.rect()


def choose_crop(parent: QWidget | None, image: np.ndarray, region=None) -> tuple[int, int, int, int] | None:
    """Run the crop dialog; the rectangle (original pixels) or None when cancelled."""
    dlg = CropDialog(image, region, parent)
    return dlg.chosen() if dlg.exec() == QDialog.DialogCode.Accepted else None


def recrop_job(verifier, sig, rect):
    """Worker function: the questioned signature again, from ``rect`` of its original scan."""
    orig = sig.preprocessed.stages.get("original")

    def fn(progress, stop):
        return [verifier.signature_from_array(orig, sig.source, True, crop=tuple(rect))], []

    return fn


def attach(window) -> None:
    """Connect the questioned pane's crop tool to the comparison: a chosen rectangle re-reads the
    questioned signature with that crop (in the worker) and verification runs again."""
    pane, comp = window.q_pane, window.comparison

    def on_crop(rect) -> None:
        sig = pane.signature()
        v = getattr(comp, "_verifier", None)
        if sig is None or v is None or sig.preprocessed.stages.get("original") is None:
            return
        # a re-crop is a new comparison with a record of its own: an undecided case is asked about first
        if not window.may_replace_case("re-crop the questioned signature"):
            return
        comp.jobs.submit(
            "questioned",
            recrop_job(v, sig, rect),
            lambda res: comp._q_loaded(res, ""),
            lambda exc: pane.show_error(str(exc)),
            pane.set_progress,
            lambda: pane.set_busy(False),
        )

    pane.crop_chosen.connect(on_crop)


__all__ = [
    "draw_region",
    "shows_region",
    "region_caption",
    "CropView",
    "CropDialog",
    "choose_crop",
    "attach",
    "recrop_job",
    "region_colour",
]
