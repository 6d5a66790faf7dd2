"""Render assets/icons/sigverify.svg to PNG icons of the standard sizes.

Usage::

    QT_QPA_PLATFORM=offscreen python packaging/render_icons.py [SVG] [OUT_DIR]

Writes ``sigverify-<N>.png`` for N in 16, 32, 48, 64, 128, 256, 512.  Uses
PySide6's QtSvg; if that module is missing, a cv2 re-drawing of the same
design is used instead (slightly simplified).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SIZES = (16, 32, 48, 64, 128, 256, 512)
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SVG = ROOT / "assets" / "icons" / "sigverify.svg"


def render_qt(svg: Path, out_dir: Path, sizes=SIZES) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (keeps Qt alive)
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise RuntimeError(f"invalid SVG: {svg}")
    out = []
    for n in sizes:
        img = QImage(n, n, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(Qt.GlobalColor.transparent)
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        renderer.render(p)
        p.end()
        path = out_dir / f"sigverify-{n}.png"
        if not img.save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
        out.append(path)
    return out


def _bezier(p0, p1, p2, p3, n=24):
    import numpy as np

    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2, p3 = (np.array(p, dtype=float) for p in (p0, p1, p2, p3))
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def render_cv2(out_dir: Path, sizes=SIZES) -> list[Path]:
    """Fallback without QtSvg: the same design drawn with OpenCV at 1024 px."""
    import cv2
    import numpy as np

    S = 2  # 512-unit design drawn at 1024 px
    big = np.zeros((512 * S, 512 * S, 4), dtype=np.uint8)

    def P(pts):
        return [np.round(np.asarray(pts, dtype=float) * S * 16).astype(np.int32)]

    # tile with diagonal gradient
    yy, xx = np.mgrid[0 : 512 * S, 0 : 512 * S] / (512.0 * S)
    t = ((xx + yy) / 2)[..., None]
    c0, c1 = np.array([214, 111, 42, 255]), np.array([107, 47, 11, 255])  # BGRA
    grad = (c0 * (1 - t) + c1 * t).astype(np.uint8)
    mask = np.zeros((512 * S, 512 * S), dtype=np.uint8)
    r = 104
    cv2.rectangle(mask, (24 * S + r * S, 24 * S), (488 * S - r * S, 488 * S), 255, -1)
    cv2.rectangle(mask, (24 * S, 24 * S + r * S), (488 * S, 488 * S - r * S), 255, -1)
    for cx, cy in ((128, 128), (384, 128), (128, 384), (384, 384)):
        cv2.circle(mask, (cx * S, cy * S), r * S, 255, -1, cv2.LINE_AA)
    big[mask > 0] = grad[mask > 0]
    white = (255, 255, 255, 255)
    cv2.line(big, (84 * S, 372 * S), (300 * S, 372 * S), (190, 160, 120, 255), 8 * S, cv2.LINE_AA)
    segs = [
        ((80, 330), (112, 300), (128, 206), (158, 196)),
        ((158, 196), (186, 188), (170, 300), (150, 330)),
        ((150, 330), (140, 346), (168, 312), (188, 282)),
        ((188, 282), (204, 258), (214, 262), (210, 292)),
        ((210, 292), (206, 322), (226, 314), (244, 286)),
        ((244, 286), (258, 264), (268, 270), (266, 296)),
        ((266, 296), (264, 318), (284, 306), (302, 284)),
    ]
    sig = np.vstack([_bezier(*s) for s in segs])
    cv2.polylines(big, P(sig), False, white, 20 * S, cv2.LINE_AA, 4)
    th = np.deg2rad(38)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])

    def nib(pts):
        return np.asarray(pts, dtype=float) @ rot.T + [306, 280]

    cv2.fillPoly(big, P(nib([(0, 0), (-42, -74), (-34, -106), (34, -106), (42, -74)])), white, cv2.LINE_AA, 4)
    cv2.fillPoly(big, P(nib([(-34, -168), (34, -168), (34, -116), (-34, -116)])), white, cv2.LINE_AA, 4)
    navy = (107, 47, 11, 255)
    cv2.polylines(big, P(nib([(0, -6), (0, -60)])), False, navy, 7 * S, cv2.LINE_AA, 4)
    cv2.circle(big, tuple(int(v) for v in nib([(0, -66)])[0] * S), 9 * S, navy, -1, cv2.LINE_AA)
    cv2.circle(big, (370 * S, 376 * S), 88 * S, navy, -1, cv2.LINE_AA)
    cv2.circle(big, (370 * S, 376 * S), 74 * S, (110, 180, 40, 255), -1, cv2.LINE_AA)
    cv2.polylines(big, P([(332, 378), (360, 406), (410, 350)]), False, white, 22 * S, cv2.LINE_AA, 4)
    out = []
    for n in sizes:
        img = cv2.resize(big, (n, n), interpolation=cv2.INTER_AREA)
        path = out_dir / f"sigverify-{n}.png"
        cv2.imwrite(str(path), img)
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    svg = Path(argv[0]) if argv else DEFAULT_SVG
    out_dir = Path(argv[1]) if len(argv) > 1 else svg.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        import PySide6.QtSvg  # noqa: F401
    except ImportError:
        print("PySide6.QtSvg not available; drawing the icon with OpenCV", file=sys.stderr)
        paths = render_cv2(out_dir)
    else:
        paths = render_qt(svg, out_dir)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
