"""Synthetic filled-in cheques for testing and benchmarking signature location and document cleaning.

``make_cheque`` composes a 300-dpi-like colour scan of a bank cheque from a *signature image* (any grey
or colour scan of ink on paper: a dataset image at benchmark time, a drawn sample in tests) and a few
*handwriting images* for the payee, amount and words fields (other writers' ink). Nothing here reads
files: callers pass the images, so no dataset image is ever copied into the project.

What a cheque gets (seeded, deterministic): a layout (field positions, label texts, line styles), a
tinted security background (guilloche waves, fine hatching), printed bank name / labels / MICR line,
handwritten payee / amount / date in other hands, the signature over a printed signature line at a small
angle, stamps of several colours (circles, boxes, dates), pen colour, scanner blur / noise, a small
rotation of the whole scan and JPEG compression. The signature's box in the returned image is the ground
truth for locate IoU.

Layouts ``LAYOUTS_TRAIN`` are for developing / fitting the locator; ``LAYOUTS_HELD_OUT`` are never used
for that and are what benchmarks report on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

LAYOUTS_TRAIN = ("us", "uk", "eu", "in")
LAYOUTS_HELD_OUT = ("box", "wide")
ALL_LAYOUTS = LAYOUTS_TRAIN + LAYOUTS_HELD_OUT

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
)
_SCRIPT_FONTS = (cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
_PEN_RGB = {"blue": (25, 45, 150), "black": (25, 25, 30), "darkblue": (20, 30, 90), "violet": (70, 30, 120)}
_STAMP_RGB = {
    "red": (200, 35, 45),
    "blue": (40, 70, 190),
    "green": (30, 140, 60),
    "purple": (120, 40, 150),
    "grey": (120, 120, 120),
    "black": (40, 40, 40),
}
_PRINT_RGB = ((30, 30, 35), (25, 35, 80), (60, 60, 65), (40, 50, 60))


@dataclass
class Cheque:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    signature_box: tuple[int, int, int, int] | None  # x, y, w, h of the signature ink (None: unsigned)
    layout: str
    meta: dict = field(default_factory=dict)


def ink_alpha(img: np.ndarray) -> np.ndarray:
    """Ink coverage in [0, 1] of a scan of ink on paper (paper level estimated, background removed)."""
    g = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    g = g.astype(np.float32)
    paper = float(np.percentile(g, 90))
    paper = max(paper, 1.0)
    a = np.clip((paper - g) / paper, 0, 1)
    a[a < 0.12] = 0  # scanner background and noise
    top = float(np.percentile(a[a > 0], 90)) if (a > 0).any() else 1.0
    a = np.clip(a / max(top, 0.2), 0, 1)
    # specks (scanner dust, dataset borders) would inflate the signature's box
    m = (a > 0.3).astype(np.uint8)
    n, lab, st, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n > 1:
        big = st[1:, cv2.CC_STAT_AREA].max()
        keep = np.zeros(n, bool)
        keep[1:] = st[1:, cv2.CC_STAT_AREA] >= max(8, 0.01 * big)
        grown = cv2.dilate(keep[lab].astype(np.uint8), np.ones((3, 3), np.uint8))
        a = a * grown
    return a


def _trim(a: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(a > 0.3)
    if len(ys) == 0:
        return a
    return a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _fit(a: np.ndarray, height: int, max_width: int) -> np.ndarray:
    h, w = a.shape
    s = min(height / max(h, 1), max_width / max(w, 1))
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    return cv2.resize(a, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def _rotate_alpha(a: np.ndarray, deg: float) -> np.ndarray:
    from sigverify.imaging.document import rotate_whole

    return rotate_whole(a, deg, cv2.INTER_LINEAR)


def _paste(layer: np.ndarray, a: np.ndarray, x: int, y: int) -> tuple[int, int, int, int]:
    """Max-composite alpha ``a`` into ``layer`` at (x, y), clipped; returns the pasted box."""
    H, W = layer.shape
    h, w = a.shape
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        return (0, 0, 0, 0)
    sub = a[y0 - y : y1 - y, x0 - x : x1 - x]
    np.maximum(layer[y0:y1, x0:x1], sub, out=layer[y0:y1, x0:x1])
    return (x0, y0, x1 - x0, y1 - y0)


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    base = np.array(rng.choice([(236, 242, 238), (240, 236, 226), (232, 238, 246), (246, 240, 240), (248, 248, 246)]), np.float32)
    base += rng.uniform(-4, 4, 3)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    yy, xx = np.mgrid[0:h:4, 0:w:4].astype(np.float32)
    pat = np.zeros_like(xx)
    for _ in range(int(rng.integers(2, 5))):
        f1, f2 = rng.uniform(0.01, 0.05, 2)
        ph = rng.uniform(0, 6.28)
        pat += np.sin(xx * f1 + 8 * np.sin(yy * f2 + ph))
    pat = (np.abs(pat) < rng.uniform(0.15, 0.35)).astype(np.float32)
    pat = cv2.resize(pat, (w, h), interpolation=cv2.INTER_LINEAR)
    strength = rng.uniform(8, 30)
    col = rng.uniform(0.5, 1.2, 3).astype(np.float32)
    img -= pat[..., None] * strength * col
    # a pale logo-like rosette / watermark
    cx, cy, r = int(rng.uniform(0.3, 0.7) * w), int(rng.uniform(0.3, 0.7) * h), int(rng.uniform(0.15, 0.3) * h)
    ros = np.zeros((h, w), np.uint8)
    for k in range(24):
        cv2.ellipse(ros, (cx, cy), (r, r // 3), k * 7.5, 0, 360, 255, 2, cv2.LINE_AA)
    img -= (ros.astype(np.float32) / 255.0)[..., None] * rng.uniform(5, 18)
    return img


def _text(layer: np.ndarray, s: str, x: int, y: int, scale: float, thick: int, font: int) -> tuple[int, int, int, int]:
    (tw, th), base = cv2.getTextSize(s, font, scale, thick)
    cv2.putText(layer, s, (int(x), int(y)), font, scale, 255, thick, cv2.LINE_AA)
    return (int(x), int(y - th), int(tw), int(th + base))


def _hand_text(s: str, height: int, rng: np.random.Generator) -> np.ndarray:
    font = _SCRIPT_FONTS[int(rng.integers(0, len(_SCRIPT_FONTS)))]
    scale = height / 22.0
    thick = max(2, int(round(height / 18)))
    (tw, th), base = cv2.getTextSize(s, font, scale, thick)
    pad = thick * 4
    a = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
    cv2.putText(a, s, (pad, pad + th), font, scale, 255, thick, cv2.LINE_AA)
    # handwriting is not a font: shear and a wavy baseline
    af = a.astype(np.float32) / 255.0
    h, w = af.shape
    m = np.float32([[1, rng.uniform(-0.35, 0.1), 0], [0, 1, 0]])
    m[0, 2] = -m[0, 1] * h / 2
    af = cv2.warpAffine(af, m, (w, h))
    return _trim(af)


# Layout: fractions of the cheque (W, H). sig = (x0, x1, y_line); labels near it.
_LAYOUT_SPECS = {
    "us": dict(
        date=(0.62, 0.80, 0.22),
        payee=(0.14, 0.70, 0.38),
        amount_box=(0.76, 0.95, 0.31, 0.42),
        words=(0.05, 0.80, 0.52),
        memo=(0.05, 0.42, 0.80),
        sig=(0.56, 0.93, 0.80),
        sig_label=("", "below"),
        payee_label="PAY TO THE ORDER OF",
    ),
    "uk": dict(
        date=(0.70, 0.93, 0.14),
        payee=(0.08, 0.70, 0.30),
        amount_box=(0.72, 0.95, 0.40, 0.52),
        words=(0.08, 0.68, 0.46),
        memo=None,
        sig=(0.62, 0.95, 0.76),
        sig_label=("Please sign above", "below"),
        payee_label="Pay",
    ),
    "eu": dict(
        date=(0.55, 0.75, 0.66),
        payee=(0.10, 0.85, 0.42),
        amount_box=(0.70, 0.95, 0.12, 0.24),
        words=(0.10, 0.85, 0.28),
        memo=(0.05, 0.40, 0.66),
        sig=(0.60, 0.92, 0.84),
        sig_label=("Signature", "left"),
        payee_label="A l'ordre de",
    ),
    "in": dict(
        date=(0.72, 0.95, 0.12),
        payee=(0.06, 0.80, 0.30),
        amount_box=(0.74, 0.95, 0.42, 0.54),
        words=(0.06, 0.70, 0.44),
        memo=None,
        sig=(0.64, 0.95, 0.74),
        sig_label=("Authorised Signatory", "below"),
        payee_label="PAY",
    ),
    # held out: the signature inside a printed box; a wide cheque with the signature low and more central
    "box": dict(
        date=(0.66, 0.92, 0.16),
        payee=(0.10, 0.74, 0.34),
        amount_box=(0.77, 0.96, 0.28, 0.40),
        words=(0.04, 0.74, 0.50),
        memo=(0.04, 0.36, 0.78),
        sig=(0.50, 0.90, 0.80),
        sig_label=("SIGNATURE", "box"),
        payee_label="PAY TO",
    ),
    "wide": dict(
        date=(0.74, 0.96, 0.10),
        payee=(0.12, 0.66, 0.28),
        amount_box=(0.70, 0.96, 0.25, 0.36),
        words=(0.04, 0.66, 0.42),
        memo=(0.04, 0.30, 0.74),
        sig=(0.45, 0.80, 0.76),
        sig_label=("Signature(s)", "below"),
        payee_label="Payee",
    ),
}


_SIG_LABELS = ("Signature", "Sign here", "Authorised signature", "For the account holder", "Drawer", "")


def _vary(spec: dict, rng: np.random.Generator) -> dict:
    """A perturbed copy of a layout: fields shifted, the signature field moved, boxed or relabelled."""
    out = dict(spec)
    jx, jy = rng.uniform(-0.04, 0.04), rng.uniform(-0.05, 0.05)
    for k in ("date", "payee", "words", "memo"):
        if out.get(k):
            a, b, y = out[k]
            out[k] = (min(max(a + jx, 0.03), 0.8), min(max(b + jx, 0.2), 0.96), min(max(y + jy, 0.08), 0.85))
    a0, a1, b0, b1 = out["amount_box"]
    ay = rng.uniform(-0.06, 0.1)
    out["amount_box"] = (a0, a1, min(max(b0 + ay, 0.08), 0.7), min(max(b1 + ay, 0.2), 0.8))
    x0, x1, y = out["sig"]
    width = min(max(x1 - x0 + rng.uniform(-0.1, 0.05), 0.22), 0.5)
    x0 = min(max(x0 + rng.uniform(-0.18, 0.08), 0.3), 0.96 - width)
    out["sig"] = (x0, x0 + width, min(max(y + rng.uniform(-0.06, 0.06), 0.68), 0.88))
    lab = str(rng.choice(_SIG_LABELS))
    out["sig_label"] = (lab or "SIGNATURE", "box") if rng.random() < 0.3 else (lab, str(rng.choice(["below", "left"])))
    return out


def _line(layer: np.ndarray, x0: int, x1: int, y: int, thick: int, angle_deg: float = 0.0, dotted: bool = False) -> None:
    dy = int(round(np.tan(np.radians(angle_deg)) * (x1 - x0)))
    if not dotted:
        cv2.line(layer, (x0, y), (x1, y - dy), 255, thick, cv2.LINE_AA)
        return
    n = max(2, (x1 - x0) // 14)
    for i in range(n):
        xa = x0 + (x1 - x0) * i // n
        xb = xa + (x1 - x0) // n // 2
        ya = y - int(round(dy * (xa - x0) / max(1, x1 - x0)))
        yb = y - int(round(dy * (xb - x0) / max(1, x1 - x0)))
        cv2.line(layer, (xa, ya), (xb, yb), 255, thick, cv2.LINE_AA)


def _stamp(h: int, w: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    a = np.zeros((h, w), np.uint8)
    t = max(3, int(rng.uniform(0.02, 0.04) * min(h, w)))
    font = _FONTS[int(rng.integers(0, 3))]
    words = ["PAID", "RECEIVED", "CLEARED", "VOID", "COPY", "PROCESSED"]
    word = words[int(rng.integers(0, len(words)))]
    month = ["JAN", "MAR", "JUN", "SEP", "NOV"][int(rng.integers(0, 5))]
    date = f"{int(rng.integers(1, 29)):02d} {month} 20{int(rng.integers(10, 30))}"
    if kind == "circle":
        r = min(h, w) // 2 - t
        cv2.circle(a, (w // 2, h // 2), r, 255, t, cv2.LINE_AA)
        cv2.circle(a, (w // 2, h // 2), int(r * 0.78), 255, max(2, t // 2), cv2.LINE_AA)
        s = r / 110.0
        (tw, th), _ = cv2.getTextSize(word, font, s, max(2, t // 2))
        cv2.putText(a, word, (w // 2 - tw // 2, h // 2 + th // 2), font, s, 255, max(2, t // 2), cv2.LINE_AA)
    elif kind == "box":
        cv2.rectangle(a, (t, t), (w - t, h - t), 255, t, cv2.LINE_AA)
        s = (h / 2.6) / 30.0
        (tw, th), _ = cv2.getTextSize(word, font, s, max(2, t // 2))
        cv2.putText(a, word, (max(t * 2, w // 2 - tw // 2), h // 2), font, s, 255, max(2, t // 2), cv2.LINE_AA)
        s2 = s * 0.6
        (tw2, th2), _ = cv2.getTextSize(date, font, s2, max(1, t // 3))
        cv2.putText(
            a, date, (max(t * 2, w // 2 - tw2 // 2), h // 2 + int(1.6 * th2) + t), font, s2, 255, max(1, t // 3), cv2.LINE_AA
        )
    else:  # date stamp: text only
        s = h / 40.0
        cv2.putText(a, date, (t, h * 2 // 3), font, s, 255, max(2, t // 2), cv2.LINE_AA)
    af = a.astype(np.float32) / 255.0
    # stamp ink is uneven
    noise = cv2.resize(rng.uniform(0.55, 1.0, (max(2, h // 6), max(2, w // 6))).astype(np.float32), (w, h))
    return _rotate_alpha(af * noise, float(rng.uniform(-25, 25)))


def make_cheque(
    signature: np.ndarray | None,
    hands: list[np.ndarray],
    seed: int,
    layout: str | None = None,
    size: tuple[int, int] | None = None,
    stamps: int | None = None,
    jpeg: bool = True,
    rotation: float | None = None,
    pen: str | None = None,
    variant: bool = False,
) -> Cheque:
    """Compose a filled cheque.

    ``signature``: a scan of the signature (ink on paper, grey or RGB) or None for an unsigned cheque.
    ``hands``: >= 1 scans of other writers' ink, used as the handwritten payee and amount-in-words.
    ``variant``: perturb the layout (fields moved, the signature field moved / boxed / relabelled; a
    separate random stream, so a cheque without it is the same for the same seed) - more layouts for
    fitting the locator.
    """
    rng = np.random.default_rng(seed)
    layout = layout or str(rng.choice(LAYOUTS_TRAIN))
    spec = _LAYOUT_SPECS[layout]
    if variant:
        spec = _vary(spec, np.random.default_rng([seed, 15]))
    if size is None:
        W = int(rng.integers(2150, 2600))
        H = int(W * rng.uniform(0.40, 0.47)) if layout != "wide" else int(W * rng.uniform(0.36, 0.40))
    else:
        H, W = size
    bg = _background(H, W, rng)
    printed = np.zeros((H, W), np.uint8)
    pen = pen or str(rng.choice(list(_PEN_RGB)))
    pen_rgb = np.array(_PEN_RGB[pen], np.float32) + rng.uniform(-10, 10, 3)
    font = _FONTS[int(rng.integers(0, len(_FONTS)))]
    fs = W / 2400.0
    lt = max(2, int(round(rng.uniform(2, 4) * fs)))

    # bank name, address, cheque number, MICR
    _text(
        printed,
        str(rng.choice(["FIRST NATIONAL BANK", "Bank of Examples", "CITY SAVINGS BANK", "Union Credit", "Banque Exemple"])),
        int(0.04 * W),
        int(0.10 * H),
        1.6 * fs,
        max(2, int(3 * fs)),
        font,
    )
    _text(printed, "123 Main Street, Springfield", int(0.04 * W), int(0.15 * H), 0.8 * fs, max(1, int(2 * fs)), font)
    _text(printed, f"No. {int(rng.integers(100000, 999999))}", int(0.82 * W), int(0.07 * H), 0.9 * fs, max(1, int(2 * fs)), font)
    micr = (
        f"C{int(rng.integers(100000, 999999))}C A{int(rng.integers(10**8, 10**9 - 1))}A {int(rng.integers(10**9, 10**10 - 1))}C"
    )
    _text(printed, micr, int(0.10 * W), int(0.95 * H), 1.3 * fs, max(2, int(3 * fs)), cv2.FONT_HERSHEY_PLAIN)

    hand = np.zeros((H, W), np.float32)
    # date
    dx0, dx1, dy = spec["date"]
    _text(printed, "Date", int(dx0 * W) - int(110 * fs), int(dy * H), 0.9 * fs, max(1, int(2 * fs)), font)
    _line(printed, int(dx0 * W), int(dx1 * W), int(dy * H) + 6, lt)
    d = _hand_text(f"{int(rng.integers(1, 29))}/{int(rng.integers(1, 13))}/20{int(rng.integers(10, 30))}", int(60 * fs), rng)
    _paste(hand, d, int(dx0 * W + rng.uniform(0.05, 0.3) * (dx1 - dx0) * W), int(dy * H) - d.shape[0] + 4)
    # payee
    px0, px1, py = spec["payee"]
    _text(printed, spec["payee_label"], int(0.03 * W), int(py * H), 0.85 * fs, max(1, int(2 * fs)), font)
    lbl_w = cv2.getTextSize(spec["payee_label"], font, 0.85 * fs, max(1, int(2 * fs)))[0][0]
    px0 = max(px0, (0.03 * W + lbl_w + 20) / W)
    _line(printed, int(px0 * W), int(px1 * W), int(py * H) + 6, lt)
    hs = [hands[i % len(hands)] for i in range(3)] if hands else []
    if hs:
        a = _fit(_trim(ink_alpha(hs[0])), int(rng.uniform(80, 120) * fs), int((px1 - px0) * W * 0.7))
        _paste(hand, a, int(px0 * W + rng.uniform(0.02, 0.2) * (px1 - px0) * W), int(py * H) - int(a.shape[0] * 0.8))
    # amount box with figures
    ax0, ax1, ay0, ay1 = spec["amount_box"]
    cv2.rectangle(printed, (int(ax0 * W), int(ay0 * H)), (int(ax1 * W), int(ay1 * H)), 255, lt, cv2.LINE_AA)
    _text(
        printed,
        str(rng.choice(["$", "EUR", "Rs.", "GBP"])),
        int(ax0 * W) - int(90 * fs),
        int(ay1 * H) - 10,
        1.1 * fs,
        max(2, int(3 * fs)),
        font,
    )
    amt = _hand_text(f"{int(rng.integers(10, 99999)):,}.{int(rng.integers(0, 99)):02d}", int(70 * fs), rng)
    amt = _fit(amt, int(70 * fs), int((ax1 - ax0) * W * 0.85))
    _paste(hand, amt, int(ax0 * W) + 15, int((ay0 + ay1) / 2 * H - amt.shape[0] / 2))
    # amount in words
    wx0, wx1, wy = spec["words"]
    _line(printed, int(wx0 * W), int(wx1 * W), int(wy * H) + 6, lt, dotted=bool(rng.random() < 0.3))
    _text(printed, "DOLLARS" if layout == "us" else "only", int(wx1 * W) + 10, int(wy * H), 0.8 * fs, max(1, int(2 * fs)), font)
    if len(hs) > 1:
        a = _fit(_trim(ink_alpha(hs[1])), int(rng.uniform(70, 110) * fs), int((wx1 - wx0) * W * 0.6))
        _paste(hand, a, int(wx0 * W + 20), int(wy * H) - int(a.shape[0] * 0.8))
    else:
        a = _hand_text("Two hundred and five", int(70 * fs), rng)
        _paste(hand, a, int(wx0 * W + 20), int(wy * H) - a.shape[0])
    if spec["memo"]:
        mx0, mx1, my = spec["memo"]
        _text(printed, "Memo", int(mx0 * W), int(my * H), 0.8 * fs, max(1, int(2 * fs)), font)
        _line(printed, int(mx0 * W) + int(110 * fs), int(mx1 * W), int(my * H) + 6, lt)
        if rng.random() < 0.5:
            a = _hand_text(str(rng.choice(["rent", "invoice 42", "gift", "books"])), int(55 * fs), rng)
            _paste(hand, a, int(mx0 * W) + int(140 * fs), int(my * H) - a.shape[0] + 4)

    # signature line (may run a few degrees off the page's axes) + label
    sx0, sx1, sy = spec["sig"]
    sx0, sx1 = sx0 + rng.uniform(-0.03, 0.02), sx1 + rng.uniform(-0.02, 0.02)
    line_angle = float(rng.uniform(-1.5, 1.5))
    y_line = int(sy * H + rng.uniform(-0.02, 0.02) * H)
    _line(printed, int(sx0 * W), int(sx1 * W), y_line, lt, line_angle)
    lab, where = spec["sig_label"]
    if lab and where == "below":
        _text(printed, lab, int((sx0 + 0.05) * W), y_line + int(45 * fs), 0.75 * fs, max(1, int(2 * fs)), font)
    elif lab and where == "left":
        _text(printed, lab, int(sx0 * W) - int(190 * fs), y_line, 0.75 * fs, max(1, int(2 * fs)), font)
    elif where == "box":
        bx0, by0 = int((sx0 - 0.02) * W), int(y_line - 0.26 * H)
        cv2.rectangle(printed, (bx0, by0), (int((sx1 + 0.02) * W), y_line + int(0.06 * H)), 255, lt, cv2.LINE_AA)
        _text(printed, lab, bx0 + 10, by0 + int(30 * fs), 0.6 * fs, max(1, int(2 * fs)), font)

    sig_layer = np.zeros((H, W), np.float32)
    sig_box = None
    sig_angle = 0.0
    if signature is not None:
        sa = _trim(ink_alpha(signature))
        sig_h = int(rng.uniform(150, 260) * fs)
        sa = _fit(sa, sig_h, int((sx1 - sx0) * W * rng.uniform(0.8, 1.05)))
        sig_angle = float(rng.uniform(-6, 6))
        sa = _rotate_alpha(sa, sig_angle)
        cx = int((sx0 + sx1) / 2 * W + rng.uniform(-0.05, 0.05) * W - sa.shape[1] / 2)
        cy = int(y_line - sa.shape[0] * rng.uniform(0.55, 0.85))
        _paste(sig_layer, sa, cx, cy)
    # stamps (several colours), sometimes over the signature
    n_st = int(rng.integers(0, 3)) if stamps is None else stamps
    stamp_layers = []
    for k in range(n_st):
        kind = str(rng.choice(["circle", "box", "date"]))
        sh = int(rng.uniform(0.16, 0.28) * H)
        sw = sh if kind == "circle" else int(sh * rng.uniform(1.6, 2.4))
        st = _stamp(sh, sw, rng, kind)
        if k == 0 and rng.random() < 0.5:
            x, y = int(sx0 * W + rng.uniform(-0.1, 0.25) * W), int(y_line - rng.uniform(0.1, 0.3) * H)
        else:
            x, y = int(rng.uniform(0.05, 0.8) * W), int(rng.uniform(0.05, 0.75) * H)
        lay = np.zeros((H, W), np.float32)
        _paste(lay, st, x, y)
        col = _STAMP_RGB[str(rng.choice(list(_STAMP_RGB)))]
        stamp_layers.append((lay * rng.uniform(0.55, 0.85), np.array(col, np.float32)))

    img = bg
    pa = printed.astype(np.float32)[..., None] / 255.0
    img = img * (1 - pa) + np.array(_PRINT_RGB[int(rng.integers(0, len(_PRINT_RGB)))], np.float32) * pa
    for lay, col in stamp_layers:
        img = img * (1 - lay[..., None]) + col * lay[..., None]
    hand_pen = np.array(_PEN_RGB[str(rng.choice(list(_PEN_RGB)))], np.float32)
    ha = hand[..., None] * 0.92
    img = img * (1 - ha) + hand_pen * ha
    sa3 = sig_layer[..., None] * 0.93
    img = img * (1 - sa3) + pen_rgb * sa3

    # scanner: blur, illumination, noise, rotation, JPEG
    img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.1)))
    img *= np.linspace(1.0, rng.uniform(0.94, 1.0), W, dtype=np.float32)[None, :, None]
    img += rng.normal(0, rng.uniform(1, 3), img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    rot = float(rng.uniform(-3, 3)) if rotation is None else float(rotation)
    if rot:
        m = cv2.getRotationMatrix2D((W / 2, H / 2), rot, 1.0)
        img = cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        sig_layer = cv2.warpAffine(sig_layer, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
    if signature is not None:
        ys, xs = np.nonzero(sig_layer > 0.3)
        if len(ys):
            sig_box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    if jpeg:
        q = int(rng.integers(55, 95))
        ok, enc = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        img = cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return Cheque(
        img,
        sig_box,
        layout,
        {"pen": pen, "stamps": n_st, "rotation": rot, "line_angle": line_angle, "signature_angle": sig_angle, "y_line": y_line},
    )


def signature_area(cheque: Cheque, seed: int = 0) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A "cheque-like scan of the signature area": the signature box with generous margins (printed line,
    label, stamps, background included). Returns the crop and the signature box inside it."""
    if cheque.signature_box is None:
        raise ValueError("unsigned cheque has no signature area")
    rng = np.random.default_rng(seed)
    x, y, w, h = cheque.signature_box
    H, W = cheque.image.shape[:2]
    mx0, mx1 = int(w * rng.uniform(0.1, 0.35)), int(w * rng.uniform(0.1, 0.35))
    my0, my1 = int(h * rng.uniform(0.15, 0.4)), int(h * rng.uniform(0.3, 0.6))
    x0, y0, x1, y1 = max(0, x - mx0), max(0, y - my0), min(W, x + w + mx1), min(H, y + h + my1)
    return cheque.image[y0:y1, x0:x1].copy(), (x - x0, y - y0, w, h)


def box_iou(a, b) -> float:
    if a is None or b is None:
        return 0.0
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


__all__ = ["Cheque", "make_cheque", "signature_area", "box_iou", "ink_alpha", "LAYOUTS_TRAIN", "LAYOUTS_HELD_OUT", "ALL_LAYOUTS"]
