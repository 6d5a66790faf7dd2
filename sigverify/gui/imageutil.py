"""numpy <-> QImage conversions (copies, so the arrays and images never share memory)."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def numpy_to_qimage(arr: np.ndarray) -> QImage:
    """(H, W) uint8 grey, (H, W, 3) uint8 RGB or (H, W, 4) uint8 RGBA -> a QImage that owns its pixels."""
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    a = np.ascontiguousarray(a)
    if a.ndim == 2:
        h, w = a.shape
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8)
    elif a.ndim == 3 and a.shape[2] == 3:
        h, w, _ = a.shape
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888)
    elif a.ndim == 3 and a.shape[2] == 4:
        h, w, _ = a.shape
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGBA8888)
    else:
        raise ValueError(f"cannot show an array of shape {a.shape} as an image")
    return img.copy()  # detach from the numpy buffer


def numpy_to_pixmap(arr: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(numpy_to_qimage(arr))


def qimage_to_numpy(img: QImage) -> np.ndarray:
    """Any QImage -> (H, W, 3) uint8 RGB (alpha composited over white, e.g. a pasted screenshot clip)."""
    if img.isNull():
        raise ValueError("empty image")
    if img.hasAlphaChannel():
        rgba = img.convertToFormat(QImage.Format.Format_RGBA8888)
        a = _view(rgba, 4).astype(np.float32)
        alpha = a[:, :, 3:4] / 255.0
        out = a[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
    rgb = img.convertToFormat(QImage.Format.Format_RGB888)
    return _view(rgb, 3).copy()


def _view(img: QImage, channels: int) -> np.ndarray:
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, : w * channels].reshape(h, w, channels).copy()


def ink_overlay(ref_input: np.ndarray, q_input: np.ndarray) -> np.ndarray:
    """Two preprocessed network inputs (ink = 255) drawn on one white canvas: reference in blue,
    questioned in orange (Okabe-Ito, colour-blind safe); where both have ink, a dark overlap colour."""
    h = max(ref_input.shape[0], q_input.shape[0])
    w = max(ref_input.shape[1], q_input.shape[1])
    a = np.zeros((h, w), np.float32)
    b = np.zeros((h, w), np.float32)
    a[: ref_input.shape[0], : ref_input.shape[1]] = ref_input / 255.0
    b[: q_input.shape[0], : q_input.shape[1]] = q_input / 255.0
    white = np.array([255, 255, 255], np.float32)
    blue = np.array(REF_RGB, np.float32)
    orange = np.array(Q_RGB, np.float32)
    both = np.array(BOTH_RGB, np.float32)
    out = np.broadcast_to(white, (h, w, 3)).copy()
    ab = (a * b)[..., None]
    a_only = (a * (1 - b))[..., None]
    b_only = (b * (1 - a))[..., None]
    rest = 1 - ab - a_only - b_only
    out = out * rest + blue * a_only + orange * b_only + both * ab
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


REF_RGB = (0, 114, 178)  # Okabe-Ito blue
Q_RGB = (230, 159, 0)  # Okabe-Ito orange
BOTH_RGB = (40, 40, 40)  # overlap: near black
