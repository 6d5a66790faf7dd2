"""Synthetic handwritten signatures drawn by the project itself.

These images are *not* taken from any dataset: every stroke is generated
procedurally from a pen trajectory.  They are used for the demo samples in
``assets/samples``, for screenshots and for tests that need realistic-looking
signature images without shipping personal data.

Model
-----
* A *writer style* is derived deterministically from the name (slant, letter
  widths, loop sizes, how many letters stay legible, flourish type, pen width).
* Every lowercase letter is a short sequence of cursive control points in
  x-height units (baseline ``y=0``, x-height ``y=1``, ascender ``y~2``,
  descender ``y~-1``).  The letters are chained into one pen stroke per word and
  interpolated with a centripetal Catmull-Rom spline; a flourish/underline, dots
  and t-bars are separate strokes.
* ``variation`` perturbs the style the way one writer varies between two
  signatures (control-point jitter, slant, scale, baseline, rotation).
* ``forged=True`` imitates a skilled forgery: the overall shape is kept but the
  proportions differ, the line is drawn slowly (tremor, uniform pressure, blunt
  ends, small hesitations).
* The trajectory is rendered supersampled with anti-aliased ``cv2.line``
  segments whose width follows a pen-pressure model (thin when fast, thicker on
  downstrokes, tapered at the start and end of fast strokes).

Regenerate the demo images with ``python -m sigverify.samples assets/samples``.
"""

from __future__ import annotations

import hashlib
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "draw_signature",
    "signature_alpha",
    "draw_cheque_scan",
    "write_demo_samples",
]

# ---------------------------------------------------------------------------
# Letter shapes (cursive lowercase), in x-height units.  Each entry:
#   (control points of the main stroke, extra strokes e.g. i-dots / t-bars)
# The first point is the entry (ligature from the previous letter), the last
# point the exit.  The advance of a letter is the x of its exit point.
# ---------------------------------------------------------------------------
_O = [(0.0, 0.2), (0.55, 0.9), (0.25, 0.97), (0.0, 0.5), (0.15, 0.03), (0.5, 0.3), (0.65, 0.97)]

_LETTERS: dict[str, tuple[list[tuple[float, float]], list[list[tuple[float, float]]]]] = {
    "a": (_O + [(0.62, 0.3), (0.72, 0.0), (0.95, 0.25)], []),
    "b": (
        [
            (0, 0.2),
            (0.35, 1.4),
            (0.45, 2.0),
            (0.25, 2.05),
            (0.15, 1.5),
            (0.15, 0.4),
            (0.25, 0.0),
            (0.6, 0.3),
            (0.62, 0.8),
            (0.42, 0.7),
            (0.78, 0.72),
        ],
        [],
    ),
    "c": ([(0, 0.2), (0.6, 0.85), (0.45, 1.0), (0.1, 0.7), (0.1, 0.15), (0.45, 0.0), (0.8, 0.25)], []),
    "d": (_O + [(0.72, 1.3), (0.78, 2.0), (0.7, 1.2), (0.65, 0.2), (0.75, 0.0), (1.0, 0.25)], []),
    "e": ([(0, 0.15), (0.45, 0.45), (0.55, 0.8), (0.35, 0.92), (0.15, 0.6), (0.2, 0.1), (0.5, 0.0), (0.8, 0.25)], []),
    "f": (
        [
            (0, 0.2),
            (0.35, 1.2),
            (0.45, 2.0),
            (0.3, 2.1),
            (0.25, 1.5),
            (0.25, 0.0),
            (0.2, -0.9),
            (0.1, -0.8),
            (0.3, 0.0),
            (0.55, 0.35),
            (0.8, 0.3),
        ],
        [],
    ),
    "g": (_O + [(0.6, 0.0), (0.5, -0.9), (0.3, -1.0), (0.25, -0.6), (0.6, -0.1), (0.9, 0.25)], []),
    "h": (
        [
            (0, 0.2),
            (0.3, 1.3),
            (0.4, 2.0),
            (0.2, 2.0),
            (0.15, 1.3),
            (0.1, 0.0),
            (0.25, 0.7),
            (0.5, 0.95),
            (0.65, 0.6),
            (0.65, 0.1),
            (0.9, 0.2),
        ],
        [],
    ),
    "i": ([(0, 0.15), (0.25, 0.8), (0.3, 0.95), (0.25, 0.3), (0.35, 0.0), (0.55, 0.25)], [[(0.33, 1.45), (0.38, 1.5)]]),
    "j": ([(0, 0.15), (0.3, 0.9), (0.3, 0.0), (0.2, -0.9), (0.0, -0.9), (0.1, -0.5), (0.55, 0.2)], [[(0.33, 1.45), (0.38, 1.5)]]),
    "k": (
        [
            (0, 0.2),
            (0.3, 1.3),
            (0.4, 2.0),
            (0.2, 2.0),
            (0.15, 1.3),
            (0.1, 0.0),
            (0.25, 0.65),
            (0.55, 0.9),
            (0.5, 0.55),
            (0.25, 0.45),
            (0.55, 0.3),
            (0.65, 0.0),
            (0.85, 0.2),
        ],
        [],
    ),
    "l": ([(0, 0.2), (0.3, 1.3), (0.4, 2.0), (0.2, 2.0), (0.15, 1.3), (0.15, 0.2), (0.3, 0.0), (0.55, 0.25)], []),
    "m": (
        [
            (0, 0.1),
            (0.1, 0.8),
            (0.15, 0.95),
            (0.15, 0.0),
            (0.2, 0.6),
            (0.35, 0.95),
            (0.45, 0.6),
            (0.45, 0.0),
            (0.5, 0.6),
            (0.65, 0.95),
            (0.75, 0.6),
            (0.75, 0.05),
            (0.95, 0.2),
        ],
        [],
    ),
    "n": ([(0, 0.1), (0.1, 0.8), (0.15, 0.95), (0.15, 0.0), (0.25, 0.6), (0.45, 0.95), (0.6, 0.6), (0.6, 0.05), (0.8, 0.2)], []),
    "o": (
        [
            (0, 0.2),
            (0.45, 0.95),
            (0.2, 0.9),
            (0.05, 0.45),
            (0.2, 0.0),
            (0.5, 0.15),
            (0.5, 0.8),
            (0.45, 0.95),
            (0.6, 0.8),
            (0.8, 0.8),
        ],
        [],
    ),
    "p": (
        [
            (0, 0.1),
            (0.2, 0.9),
            (0.2, 0.0),
            (0.15, -1.0),
            (0.2, 0.0),
            (0.3, 0.6),
            (0.55, 0.9),
            (0.7, 0.5),
            (0.5, 0.05),
            (0.25, 0.15),
            (0.55, 0.1),
            (0.85, 0.25),
        ],
        [],
    ),
    "q": (_O + [(0.6, 0.0), (0.6, -1.0), (0.55, -0.4), (0.9, 0.1)], []),
    "r": ([(0, 0.1), (0.2, 0.85), (0.3, 0.95), (0.35, 0.7), (0.5, 0.8), (0.55, 0.4), (0.6, 0.0), (0.8, 0.2)], []),
    "s": ([(0, 0.1), (0.3, 0.95), (0.5, 0.5), (0.5, 0.15), (0.3, 0.0), (0.15, 0.15), (0.5, 0.1), (0.8, 0.25)], []),
    "t": (
        [(0, 0.2), (0.3, 1.2), (0.35, 1.7), (0.3, 1.0), (0.25, 0.2), (0.4, 0.0), (0.65, 0.25)],
        [[(0.05, 1.1), (0.35, 1.17), (0.65, 1.2)]],
    ),
    "u": ([(0, 0.1), (0.15, 0.9), (0.1, 0.2), (0.25, 0.0), (0.45, 0.3), (0.55, 0.95), (0.5, 0.2), (0.6, 0.0), (0.8, 0.2)], []),
    "v": ([(0, 0.1), (0.15, 0.9), (0.25, 0.2), (0.35, 0.0), (0.55, 0.5), (0.6, 0.95), (0.55, 0.8), (0.8, 0.8)], []),
    "w": (
        [
            (0, 0.1),
            (0.1, 0.9),
            (0.15, 0.1),
            (0.3, 0.0),
            (0.4, 0.6),
            (0.45, 0.1),
            (0.6, 0.0),
            (0.75, 0.9),
            (0.7, 0.75),
            (0.95, 0.8),
        ],
        [],
    ),
    "x": ([(0, 0.1), (0.2, 0.8), (0.35, 0.9), (0.45, 0.5), (0.55, 0.0), (0.75, 0.2)], [[(0.65, 0.9), (0.42, 0.45), (0.2, 0.0)]]),
    "y": (
        [
            (0, 0.1),
            (0.15, 0.9),
            (0.1, 0.2),
            (0.25, 0.0),
            (0.45, 0.3),
            (0.55, 0.95),
            (0.5, 0.0),
            (0.4, -0.9),
            (0.2, -1.0),
            (0.2, -0.6),
            (0.6, -0.1),
            (0.9, 0.25),
        ],
        [],
    ),
    "z": (
        [
            (0, 0.1),
            (0.2, 0.9),
            (0.55, 0.95),
            (0.3, 0.3),
            (0.15, 0.0),
            (0.45, 0.1),
            (0.5, -0.6),
            (0.3, -0.8),
            (0.4, -0.3),
            (0.8, 0.2),
        ],
        [],
    ),
}

_CAP_HEIGHT = 2.4


def _seed_of(*parts: object) -> int:
    text = "|".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


@dataclass
class _Style:
    """Writer style; fixed for a given name."""

    slant: float
    letter_width: float
    spacing: float
    cap_scale: float
    legible: int
    tail_decay: float
    flourish: str
    rotation: float
    pen_width: float
    point_jitter: np.ndarray  # per control point offsets (generated lazily)
    dots: bool
    baseline_wave: float


def _make_style(name: str) -> _Style:
    rng = np.random.default_rng(_seed_of("style", name.strip().lower()))
    n_letters = sum(c.isalpha() for c in name)
    return _Style(
        slant=float(rng.uniform(0.12, 0.45)),
        letter_width=float(rng.uniform(0.85, 1.25)),
        spacing=float(rng.uniform(-0.05, 0.12)),
        cap_scale=float(rng.uniform(1.0, 1.3)),
        legible=int(rng.integers(max(2, n_letters // 2), max(3, n_letters + 1))),
        tail_decay=float(rng.uniform(0.55, 0.85)),
        flourish=str(rng.choice(["return", "underline", "paraph", "loop_underline"])),
        rotation=float(rng.uniform(-4.0, 4.0)),
        pen_width=float(rng.uniform(2.3, 3.1)),
        point_jitter=rng.normal(0.0, 0.07, size=(512, 2)),
        dots=bool(rng.random() < 0.6),
        baseline_wave=float(rng.uniform(0.0, 0.15)),
    )


# ---------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------


def _catmull_rom(points: np.ndarray, step: float = 0.02) -> np.ndarray:
    """Centripetal Catmull-Rom spline through ``points`` (N,2), densely sampled."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 2:
        return pts.copy()
    # drop consecutive duplicates (they break the centripetal parametrisation)
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-6
    pts = pts[keep]
    if len(pts) < 2:
        return pts.copy()
    ext = np.vstack([2 * pts[0] - pts[1], pts, 2 * pts[-1] - pts[-2]])
    out = [pts[:1]]
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        t0 = 0.0
        t1 = t0 + max(np.linalg.norm(p1 - p0), 1e-6) ** 0.5
        t2 = t1 + max(np.linalg.norm(p2 - p1), 1e-6) ** 0.5
        t3 = t2 + max(np.linalg.norm(p3 - p2), 1e-6) ** 0.5
        n = max(2, int(np.ceil(np.linalg.norm(p2 - p1) / step)))
        t = np.linspace(t1, t2, n + 1)[1:, None]
        a1 = (t1 - t) / (t1 - t0) * p0 + (t - t0) / (t1 - t0) * p1
        a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
        a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
        b1 = (t2 - t) / (t2 - t0) * a1 + (t - t0) / (t2 - t0) * a2
        b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
        out.append((t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2)
    return np.vstack(out)


def _smooth_noise(rng: np.random.Generator, n: int, corr: float) -> np.ndarray:
    """Low-pass filtered white noise of length ``n`` with unit-ish std."""
    raw = rng.normal(size=n + 64)
    k = max(1, int(corr))
    kernel = np.hanning(2 * k + 1)
    kernel /= kernel.sum()
    sm = np.convolve(raw, kernel, mode="same")[32 : 32 + n]
    std = sm.std()
    return sm / std if std > 0 else sm


# ---------------------------------------------------------------------------
# Trajectory construction
# ---------------------------------------------------------------------------


@dataclass
class _Stroke:
    ctrl: np.ndarray  # control points (x-height units, y up)
    kind: str  # "word" | "flourish" | "dot" | "bar"


def _build_strokes(name: str, style: _Style, rng: np.random.Generator | None, variation: float, forged: bool) -> list[_Stroke]:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    words = [w for w in "".join(c if c.isalpha() else " " for c in plain).split() if w]
    if not words:
        words = ["x"]
    v = variation
    strokes: list[_Stroke] = []
    jit_idx = 0
    x = 0.0
    letters_done = 0
    width_scale = style.letter_width
    cap_scale = style.cap_scale
    spacing = style.spacing
    if rng is not None:
        width_scale *= 1.0 + rng.normal(0, 0.05 * v)
        cap_scale *= 1.0 + rng.normal(0, 0.05 * v)
        spacing += rng.normal(0, 0.03 * v)
    if forged:
        frng = np.random.default_rng(_seed_of("forger", name))
        width_scale *= frng.choice([0.82, 1.2])
        cap_scale *= frng.uniform(0.8, 0.9)
        spacing += frng.uniform(0.08, 0.15)

    for wi, word in enumerate(words):
        word = word.lower()
        ctrl: list[np.ndarray] = []
        extras: list[np.ndarray] = []
        amp = 1.0
        for li, ch in enumerate(word):
            base, marks = _LETTERS.get(ch, _LETTERS["n"])
            pts = np.array(base, dtype=np.float64)
            is_cap = li == 0
            tail = letters_done >= style.legible and not is_cap
            if tail:
                # degraded, illegible end of the signature: flattened humps
                amp *= style.tail_decay
                pts = np.array(_LETTERS["n"][0] if li % 2 else _LETTERS["u"][0], dtype=np.float64)
                pts[:, 1] = 0.1 + (pts[:, 1] - 0.1) * max(amp, 0.25)
                pts[:, 0] *= 0.8
                marks = []
            pts[:, 0] *= width_scale
            mk = [np.array(m, dtype=np.float64) * [width_scale, 1.0] for m in marks]
            if is_cap:
                top = max(pts[:, 1].max(), 1.0)
                sy = _CAP_HEIGHT * cap_scale / top
                sx = 1.75 * sy / (2.0 if top < 1.5 else 1.2)
                pts[:, 0] *= sx
                pts[:, 1] = np.where(pts[:, 1] > 0, pts[:, 1] * sy, pts[:, 1] * min(sy, 1.4))
                mk = [m * [sx, sy] for m in mk]
                # lead-in swoop from below-left into the capital
                lead = np.array([[-0.5, -0.35], [-0.15, 0.05]]) * [sx, 1.0]
                pts = np.vstack([lead, pts[1:]])
            # personal letterforms (style) + sample-to-sample variation
            n = len(pts)
            jit = style.point_jitter[(jit_idx + np.arange(n)) % len(style.point_jitter)]
            jit_idx += n
            pts = pts + jit * (1.6 if is_cap else 1.0)
            if rng is not None:
                pts = pts + rng.normal(0, 0.045 * v, size=pts.shape) * (1.5 if is_cap else 1.0)
            if forged:
                pts = pts + np.random.default_rng(_seed_of("fpts", name, wi, li)).normal(0, 0.05, size=pts.shape)
            pts[:, 0] += x
            mk = [m + [x, 0.0] for m in mk]
            if ctrl:
                pts = pts[1:]  # ligature: previous exit is this entry
            ctrl.append(pts)
            if style.dots or forged:
                extras.extend(mk)
            x = float(pts[-1, 0]) + spacing
            letters_done += 1
        strokes.append(_Stroke(np.vstack(ctrl), "word"))
        for m in extras:
            strokes.append(_Stroke(m, "dot" if len(m) == 2 else "bar"))
        x += 0.9  # gap between words

    # ------------------------------------------------------------------ flourish
    x0 = float(strokes[0].ctrl[:, 0].min())
    last_word = [s for s in strokes if s.kind == "word"][-1]
    end = last_word.ctrl[-1]
    xe = float(end[0])
    span = xe - x0
    fl = style.flourish
    if fl == "return":
        pts = np.array(
            [
                end,
                end + [0.35, 0.5],
                end + [0.45, -0.2],
                [xe - 0.15 * span, -0.85],
                [x0 + 0.45 * span, -0.95],
                [x0 + 0.05 * span, -0.7],
            ]
        )
        kind_join = True
    elif fl == "underline":
        pts = np.array(
            [[x0 + 0.05 * span, -0.75], [x0 + 0.35 * span, -0.95], [x0 + 0.7 * span, -0.85], [xe + 0.3, -0.6], [xe + 0.6, -0.2]]
        )
        kind_join = False
    elif fl == "paraph":
        pts = np.array(
            [
                end,
                end + [0.3, 0.8],
                end + [0.0, 1.1],
                end + [-0.25, 0.5],
                end + [0.3, -0.5],
                [xe - 0.3 * span, -1.0],
                [x0 + 0.1 * span, -0.9],
                [x0 + 0.25 * span, -0.7],
            ]
        )
        kind_join = True
    else:  # loop_underline
        pts = np.array(
            [
                [x0 + 0.1 * span, -0.6],
                [x0 + 0.5 * span, -0.95],
                [xe + 0.2, -0.75],
                [xe + 0.5, -0.3],
                [xe + 0.15, -0.15],
                [xe + 0.1, -0.7],
                [xe + 0.9, -0.85],
            ]
        )
        kind_join = False
    if rng is not None:
        pts = pts + rng.normal(0, 0.07 * v, size=pts.shape)
    if forged:
        # forgers simplify and shrink the fast flourish
        c = pts.mean(axis=0)
        pts = c + (pts - c) * [0.85, 0.7]
    if kind_join:
        last_word.ctrl = np.vstack([last_word.ctrl, pts[1:]])
    else:
        strokes.append(_Stroke(pts, "flourish"))
    return strokes


def _transform(path: np.ndarray, slant: float, rot_deg: float, wave_amp: float, wave_phase: float) -> np.ndarray:
    p = path.copy()
    p[:, 0] = p[:, 0] + slant * p[:, 1]
    p[:, 1] = p[:, 1] + wave_amp * np.sin(p[:, 0] * 0.45 + wave_phase)
    th = np.deg2rad(rot_deg)
    c, s = np.cos(th), np.sin(th)
    return np.stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]], axis=1)


def signature_alpha(
    name: str, seed: int, variation: float = 0.0, forged: bool = False, size: tuple[int, int] = (300, 800)
) -> np.ndarray:
    """Ink coverage (H,W) float32 in [0,1] of a synthetic signature.

    Same arguments as :func:`draw_signature`; useful to composite the ink on
    other backgrounds / in other colours.
    """
    h, w = int(size[0]), int(size[1])
    style = _make_style(name)
    variation = float(max(0.0, variation))
    rng = np.random.default_rng(_seed_of("sample", name.strip().lower(), seed, forged))
    vrng = rng if variation > 0 else None
    strokes = _build_strokes(name, style, vrng, variation, forged)

    slant = style.slant
    rot = style.rotation
    wave = style.baseline_wave
    phase = _seed_of("phase", name) % 628 / 100.0
    scale_var = 1.0
    shift = np.zeros(2)
    if variation > 0:
        slant += rng.normal(0, 0.05 * variation)
        rot += rng.normal(0, 1.5 * variation)
        wave += abs(rng.normal(0, 0.05 * variation))
        phase += rng.normal(0, 0.4 * variation)
        scale_var = 1.0 + rng.normal(0, 0.04 * variation)
        shift = rng.normal(0, 0.02 * variation, size=2)
    if forged:
        frng = np.random.default_rng(_seed_of("forger-geo", name))
        slant += frng.choice([-1, 1]) * frng.uniform(0.1, 0.18)
        rot += frng.uniform(-2.5, 2.5)

    paths = []
    for s in strokes:
        dense = _catmull_rom(s.ctrl, step=0.015)
        paths.append((_transform(dense, slant, rot, wave, phase), s.kind))

    allp = np.vstack([p for p, _ in paths])
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    ext = np.maximum(hi - lo, 1e-6)
    margin = 0.08
    fit = min(w * (1 - 2 * margin) / ext[0], h * (1 - 2 * margin) / ext[1]) * scale_var
    centre = (lo + hi) / 2

    ss = 3  # supersampling
    H, W = h * ss, w * ss
    canvas = np.zeros((H, W), dtype=np.uint8)
    pen = style.pen_width * (h / 300.0)
    pen *= 1.15 if forged else 1.0
    prng = np.random.default_rng(_seed_of("pressure", name, seed, forged))
    frac = 16  # cv2 shift bits -> 1/16 px precision

    for path, kind in paths:
        pix = np.empty_like(path)
        pix[:, 0] = (path[:, 0] - centre[0]) * fit + w / 2 + shift[0] * w
        pix[:, 1] = -(path[:, 1] - centre[1]) * fit + h / 2 + shift[1] * h
        if forged and len(pix) > 4:
            # physiological tremor of slow, drawn (not written) lines
            n = len(pix)
            trem = np.stack([_smooth_noise(prng, n, 3), _smooth_noise(prng, n, 3)], axis=1)
            pix = pix + trem * 0.35 * (h / 300.0)
        n = len(pix)
        if n < 2:
            continue
        seg = np.linalg.norm(np.diff(pix, axis=0), axis=1)
        kw = min(9, len(seg))
        speed = np.convolve(seg, np.ones(kw) / kw, mode="same")
        spd = speed / (np.median(speed) + 1e-6)
        dy = np.diff(pix[:, 1])
        down = np.clip(dy / (seg + 1e-6), 0, 1)  # moving down the page
        if forged:
            width = pen * (0.95 + 0.1 * down) * (1 + 0.05 * _smooth_noise(prng, n - 1, 20))
        else:
            width = pen * np.clip(1.5 - 0.6 * spd, 0.35, 1.3) * (0.75 + 0.5 * down)
            width *= 1 + 0.08 * _smooth_noise(prng, n - 1, 40)
            # tapered entry/exit of fast strokes
            t = np.linspace(0, 1, n - 1)
            taper_len = 0.06 if kind == "word" else 0.25
            if kind in ("dot",):
                taper = np.ones_like(t)
            else:
                taper = np.clip(np.minimum(t, 1 - t) / taper_len, 0.25, 1.0) ** 0.7
            width *= taper
        ink = np.clip(215 + 40 * (width / pen - 0.6), 150, 255)
        gaps = np.zeros(n - 1, dtype=bool)
        if forged and kind == "word":
            # hesitations: the forger lifts/pauses the pen a few times
            for _ in range(int(prng.integers(1, 4))):
                k = int(prng.integers(n // 6, max(n // 6 + 1, 5 * n // 6)))
                gaps[k : k + 2] = True
        q = np.round(pix * ss * frac).astype(np.int64)
        for i in range(n - 1):
            if gaps[i]:
                continue
            th = max(1, int(round(width[i] * ss)))
            cv2.line(canvas, (int(q[i, 0]), int(q[i, 1])), (int(q[i + 1, 0]), int(q[i + 1, 1])), int(ink[i]), th, cv2.LINE_AA, 4)
        if forged and kind == "word":
            # blunt, blobby stroke start/end (pen resting on the paper)
            for j in (0, n - 1):
                r = max(1, int(round(pen * 0.75 * ss)))
                cv2.circle(canvas, (int(q[j, 0]), int(q[j, 1])), r * frac, 255, -1, cv2.LINE_AA, 4)

    alpha = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.45)  # slight ink bleed
    return np.clip(alpha, 0.0, 1.0)


def _paper(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    low = cv2.resize(rng.normal(0, 1, size=(6, 16)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    gx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    return 247.0 + 1.0 * low + 1.5 * gx


def draw_signature(
    name: str, seed: int, variation: float = 0.0, forged: bool = False, size: tuple[int, int] = (300, 800)
) -> np.ndarray:
    """Draw a synthetic handwritten signature of ``name``.

    Parameters
    ----------
    name:
        The signed name; it alone fixes the writer's style and letter shapes.
    seed:
        Seed of this particular sample (natural variation, pressure, paper).
    variation:
        0 gives the writer's canonical signature; ~0.5-1.0 the natural
        variation between genuine signatures of one writer.
    forged:
        Produce a skilled-forgery-like imitation of ``name``'s signature.
    size:
        ``(height, width)`` of the output image.

    Returns
    -------
    np.ndarray
        uint8 greyscale ``(H, W)`` image: white-ish paper, dark ink.
    """
    h, w = int(size[0]), int(size[1])
    alpha = signature_alpha(name, seed, variation, forged, (h, w))
    rng = np.random.default_rng(_seed_of("paper", name, seed, forged))
    paper = _paper(h, w, rng)
    ink_level = float(rng.uniform(28, 45))
    img = paper * (1.0 - alpha) + ink_level * alpha
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _guilloche(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Light security-print background pattern (BGR uint8)."""
    tint = np.array([236, 244, 240], dtype=np.float32)  # pale green-cream (BGR)
    bg = np.empty((h, w, 3), dtype=np.float32)
    bg[:] = tint
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bg += (3.0 * np.sin(xx / w * np.pi))[..., None] * np.array([1.0, -0.5, 0.3], dtype=np.float32)
    pattern = np.zeros((h * 2, w * 2), dtype=np.uint8)
    t = np.linspace(0, 2 * np.pi, 900)
    for k in range(14):
        ph = k * 2 * np.pi / 14
        xs = np.linspace(-40, 2 * w + 40, 900)
        for f, a in ((6.0, 22.0), (9.0, 14.0)):
            ys = (2 * h) * (k + 0.5) / 14 + a * np.sin(f * t + ph) + 0.6 * a * np.sin(2.0 * f * t - ph)
            pts = np.stack([xs, ys], axis=1)
            cv2.polylines(pattern, [np.round(pts * 16).astype(np.int32)], False, 255, 1, cv2.LINE_AA, 4)
    # rosette in the right part
    cx, cy, R = 2 * w * 0.82, 2 * h * 0.38, 2 * h * 0.3
    for k in range(36):
        ph = k * 2 * np.pi / 36
        r = R * (0.7 + 0.3 * np.cos(7 * t + ph))
        pts = np.stack([cx + r * np.cos(t + ph / 7), cy + r * np.sin(t + ph / 7)], axis=1)
        cv2.polylines(pattern, [np.round(pts * 16).astype(np.int32)], True, 255, 1, cv2.LINE_AA, 4)
    pat = cv2.resize(pattern, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    line_col = np.array([205, 222, 214], dtype=np.float32)
    bg = bg * (1 - 0.8 * pat[..., None]) + line_col * 0.8 * pat[..., None]
    return bg


def draw_cheque_scan(name: str, seed: int, variation: float = 0.5, size: tuple[int, int] = (300, 800)) -> np.ndarray:
    """A "realistic scan" of a signature on a cheque signature field.

    Returns a BGR uint8 image: tinted guilloche background, a printed signature
    line crossing the lower part of the signature, caption text and blue ink,
    with mild blur and sensor noise.
    """
    h, w = int(size[0]), int(size[1])
    rng = np.random.default_rng(_seed_of("cheque", name, seed))
    bg = _guilloche(h, w, rng)
    alpha = signature_alpha(name, seed, variation, False, (h, w))
    # printed signature line through the lower part of the ink
    rows = np.where(alpha.max(axis=1) > 0.3)[0]
    y_line = int(rows[0] + 0.72 * (rows[-1] - rows[0])) if len(rows) else int(h * 0.7)
    printed8 = np.zeros((h, w), dtype=np.uint8)
    cv2.line(printed8, (int(w * 0.05), y_line), (int(w * 0.95), y_line), 255, 2, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(printed8, "AUTHORISED SIGNATURE", (int(w * 0.05), y_line + 24), font, 0.5, 215, 1, cv2.LINE_AA)
    cv2.putText(printed8, "Please do not sign outside this box", (int(w * 0.62), y_line + 24), font, 0.38, 180, 1, cv2.LINE_AA)
    printed = printed8.astype(np.float32) / 255.0
    print_col = np.array([90, 80, 70], dtype=np.float32)
    img = bg * (1 - printed[..., None]) + print_col * printed[..., None]
    ink_col = np.array([150, 55, 25], dtype=np.float32)  # ballpoint blue (BGR)
    a = alpha[..., None] * 0.93
    img = img * (1 - a) + ink_col * a
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img += rng.normal(0, 2.0, size=img.shape).astype(np.float32)
    # slight uneven scanner illumination
    gy = np.linspace(1.0, 0.97, h, dtype=np.float32)[:, None, None]
    img *= gy
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_demo_samples(out_dir: str | Path) -> list[Path]:
    """Write the demo sample images into ``out_dir``; returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = [cv2.IMWRITE_PNG_COMPRESSION, 9]
    jobs = {
        "alice_ref1.png": ("Alice", 1, 0.7, False),
        "alice_ref2.png": ("Alice", 2, 0.7, False),
        "alice_ref3.png": ("Alice", 3, 0.7, False),
        "alice_questioned_genuine.png": ("Alice", 11, 0.8, False),
        "alice_questioned_forgery.png": ("Alice", 21, 0.5, True),
        "bob_ref1.png": ("Bob Martens", 1, 0.7, False),
        "bob_ref2.png": ("Bob Martens", 2, 0.7, False),
    }
    written = []
    for fname, (nm, sd, var, forged) in jobs.items():
        p = out / fname
        ok = cv2.imwrite(str(p), draw_signature(nm, sd, var, forged), png)
        if not ok:
            raise OSError(f"could not write {p}")
        written.append(p)
    p = out / "alice_cheque_scan.jpg"
    if not cv2.imwrite(str(p), draw_cheque_scan("Alice", 31, 0.7, size=(320, 900)), [cv2.IMWRITE_JPEG_QUALITY, 88]):
        raise OSError(f"could not write {p}")
    written.append(p)
    return written


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -m sigverify.samples OUT_DIR", file=sys.stderr)
        return 2
    for p in write_demo_samples(argv[0]):
        print(f"{p}  ({p.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
