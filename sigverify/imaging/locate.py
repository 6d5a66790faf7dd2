"""Find the signature on a whole cheque or form, and tell documents from clean signature crops.

A clean signature crop (what the shipped model was trained on) is ink on paper and nothing else. A
document - a cheque, a form, or a cheque-like scan of a signature field - carries printed structure:
long straight printed lines, printed text, boxes, stamps. ``analyse`` looks for that structure on a
reduced copy of the page (about 1000 px on the long side, a few milliseconds) and, on a document, scores
every ink cluster as "the signature" or not:

1. ink mask: grey, flat-field (security backgrounds and tints go), Otsu threshold;
2. printed lines: straight segments (Hough) at any angle within ``MAX_LINE_ANGLE`` of the page's axes,
   kept only where the ink along them is continuous and of one thin thickness; erased pixel column by
   pixel column *across* the line, except where the ink there is thicker than the line (a pen stroke
   crossing it);
3. ink clusters (words, fields, stamps): the line-free mask grown a little and split into connected
   parts;
4. per cluster, cues of handwriting vs print (glyph count, glyph-height and baseline regularity, stroke
   width spread, colour saturation and grey level), of the signature field (a printed line just below,
   its length and place on the page, vertical lines either side = a box such as the amount box) and of
   place (signatures sit low and right; payee, amount and date do not);
5. a small two-layer network (``assets/models/locator.safetensors``, trained on synthetic cheques by
   ``benchmarks/cheques.py --train-locator``; a hand-set fallback when the file is missing) turns the
   cues into a signature score; the best cluster above ``FOUND_SCORE`` and its neighbours that also
   look like handwriting on the same line form the region.

The region is returned in the *original* image's pixels (x, y, w, h). No region on a document means
"no signature": the caller raises ``BlankImageError`` (exit code 5), the page is never compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

cv2.setNumThreads(1)

WORK_SIDE = 800  # long side of the reduced page the analysis runs on
MAX_LINE_ANGLE = 11.0  # degrees off the horizontal (or vertical) a printed line may run
PAGE_SIDE = 1000  # px: a whole page (cheque, form) is at least this long; smaller scans are one field
FOUND_SCORE = 0.5  # signature score a cluster needs for the page to count as signed
NEIGHBOUR_SCORE = 0.25  # ... and a neighbour to be joined to it

FEATURES = (
    "cx",
    "cy",
    "w",
    "h",
    "log_ink",
    "fill",
    "n_glyphs",
    "glyph_h",
    "glyph_h_cv",
    "base_sd",
    "stroke",
    "stroke_cv",
    "sat",
    "dark",
    "line_below",
    "line_len",
    "line_cx",
    "line_cy",
    "boxed",
    "aspect",
    "rel_h",
    "rank_ink",
    "right_of_line_mid",
    "printed_row",
)


@dataclass
class Cluster:
    box: tuple[int, int, int, int]  # x, y, w, h in work pixels
    ink: int
    features: np.ndarray
    score: float = 0.0


@dataclass
class Analysis:
    """What ``analyse`` found; boxes in work pixels unless said otherwise."""

    scale: float  # work = original * scale
    shape: tuple[int, int]  # original (h, w)
    mask: np.ndarray  # work ink mask (uint8 0/1), before line removal
    clean: np.ndarray  # work ink mask with printed lines erased
    lines: list[tuple[float, ...]] = field(default_factory=list)  # x1, y1, x2, y2, thickness, wobble
    clusters: list[Cluster] = field(default_factory=list)
    skew_deg: float = 0.0
    is_document: bool = False
    reasons: list[str] = field(default_factory=list)
    region: tuple[int, int, int, int] | None = None  # original pixels
    region_work: tuple[int, int, int, int] | None = None
    score: float = 0.0
    blank: bool = False
    paper_saturation: float = 0.0  # median colour saturation of the paper (0: grey scan)
    heat: np.ndarray | None = None  # the dense locator's signature map (documents only)

    @property
    def is_page(self) -> bool:
        """A whole document page (cheque, form): printed fields around the signature, to be searched."""
        return self.is_document and "many fields" in self.reasons and max(self.shape) >= PAGE_SIDE

    @property
    def signature_found(self) -> bool:
        return self.region is not None


# ----------------------------------------------------------------------------------------------- ink


def work_image(image: np.ndarray, side: int = WORK_SIDE) -> tuple[np.ndarray, np.ndarray | None, float]:
    """(grey work image, colour saturation at work size or None for grey scans, scale)."""
    h, w = image.shape[:2]
    s = min(1.0, side / max(h, w))
    size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
    sat = None
    if image.ndim == 3:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        # colour: a nearest-neighbour sample at work size is enough (and ~10x cheaper than converting the
        # whole scan)
        hsv = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_NEAREST), cv2.COLOR_RGB2HSV)
        sat = hsv[..., 1]
    else:
        grey = image
    if s < 1.0:
        f = int(1 / s)
        if f >= 2:  # an integer area reduction first: OpenCV's fast path, then the small remainder
            grey = cv2.resize(grey, (w // f, h // f), interpolation=cv2.INTER_AREA)
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    if sat is not None:
        grey = _drop_stamp_colours(grey, hsv)
    return grey, sat, s


def _drop_stamp_colours(grey: np.ndarray, hsv: np.ndarray) -> np.ndarray:
    """Paint ink of stamp colours (red, orange, yellow, green, magenta) as paper, when other ink remains:
    pens on cheques are blue, black or violet."""
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    stamp = (sat > 80) & (val < 240) & ((hue <= 14) | ((hue >= 20) & (hue <= 90)) | (hue >= 155))
    n = int(stamp.sum())
    if n == 0:
        return grey
    other = (grey < 150) & ~stamp
    if int(other.sum()) < 0.3 * n:
        return grey  # a red (or green) signature on its own stays
    spread = cv2.dilate(stamp.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~(other & (sat < 60))
    out = grey.copy()
    out[spread] = 255
    return out


def flat_field(grey: np.ndarray) -> np.ndarray:
    from sigverify.imaging.preprocess import _flat_field

    return _flat_field(grey)


def ink_mask(flat: np.ndarray) -> np.ndarray | None:
    """Otsu ink mask of a flat-fielded page (the preprocessing's own threshold), or None when there is no
    real ink (blank paper, specks)."""
    from sigverify.errors import BlankImageError
    from sigverify.imaging.preprocess import _threshold

    try:
        return _threshold(flat, 0.0005, flat)
    except BlankImageError:
        return None


# --------------------------------------------------------------------------------------------- lines


def _profile(mask: np.ndarray, x1: float, y1: float, x2: float, y2: float, r: int):
    """Samples across a segment: (2r+1, N) ink values and the pixel coordinates of each sample."""
    length = math.hypot(x2 - x1, y2 - y1)
    n = max(2, int(length))
    t = np.linspace(0.0, 1.0, n)
    dx, dy = (x2 - x1) / length, (y2 - y1) / length
    nx, ny = -dy, dx
    off = np.arange(-r, r + 1, dtype=np.float32)[:, None]
    xs = np.rint(x1 + (x2 - x1) * t[None, :] + off * nx).astype(np.int32)
    ys = np.rint(y1 + (y2 - y1) * t[None, :] + off * ny).astype(np.int32)
    h, w = mask.shape
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    xs_c, ys_c = np.clip(xs, 0, w - 1), np.clip(ys, 0, h - 1)
    vals = mask[ys_c, xs_c].astype(bool) & inside
    return vals, xs_c, ys_c


def _runs(vals: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample column, the ink run through the line's centre: (has_ink, start, end) offsets."""
    # centre: the ink offset nearest 0 within +-2
    c = np.full(vals.shape[1], -1, np.int32)
    for d in (0, -1, 1, -2, 2):
        hit = (c < 0) & vals[r + d]
        c[hit] = r + d
    has = c >= 0
    cc = np.where(has, c, r)
    idx = np.arange(2 * r + 1, dtype=np.int32)[:, None]
    gap_after = ~vals & (idx > cc[None, :])
    gap_before = ~vals & (idx < cc[None, :])
    # the first paper sample after the centre (none: the run reaches the profile's edge) ...
    first_after = np.where(gap_after.any(0), gap_after.argmax(0), 2 * r + 1)
    # ... and the last one before it
    last_before = np.where(gap_before.any(0), 2 * r - gap_before[::-1].argmax(0), -1)
    end = np.where(has, first_after - 1, cc).astype(np.int32)
    start = np.where(has, last_before + 1, cc).astype(np.int32)
    return has, start, end


def find_lines(mask: np.ndarray, min_len: int) -> list[tuple[float, float, float, float, float, float]]:
    """Straight, thin, continuous lines within ``MAX_LINE_ANGLE`` of horizontal or vertical:
    (x1, y1, x2, y2, thickness, wobble); wobble (px) is low for printed lines, higher for pen strokes."""
    h, w = mask.shape
    # Hough on a half-size copy (4x fewer votes), segments refined on the full mask below
    f = 2 if max(h, w) >= 400 else 1
    m2 = cv2.resize(mask, (w // f, h // f), interpolation=cv2.INTER_AREA) if f > 1 else mask
    ml = max(20, min_len // f)
    segs = cv2.HoughLinesP(
        m2 * 255, 1, np.pi / 180, threshold=max(20, ml // 2), minLineLength=ml, maxLineGap=max(3, ml // 6)
    )  # bridge the gaps where pen strokes cross
    if segs is None:
        return []
    found: list[tuple[float, ...]] = []
    segs = sorted((np.asarray(segs).reshape(-1, 4) * f + (f // 2)).tolist(), key=lambda s: -math.hypot(s[2] - s[0], s[3] - s[1]))
    r = max(7, int(0.012 * max(h, w)))
    for x1, y1, x2, y2 in segs[:40]:
        ang = math.degrees(math.atan2(y2 - y1, x2 - x1)) % 180
        off_h = min(ang, 180 - ang)
        off_v = abs(ang - 90)
        if min(off_h, off_v) > MAX_LINE_ANGLE:
            continue
        # one line shows up as many near-duplicate segments: skip those along a line already found
        dup = False
        for fx1, fy1, fx2, fy2, *_ in found:
            L = math.hypot(fx2 - fx1, fy2 - fy1)
            ux, uy = (fx2 - fx1) / L, (fy2 - fy1) / L
            d1 = abs((x1 - fx1) * uy - (y1 - fy1) * ux)
            d2 = abs((x2 - fx1) * uy - (y2 - fy1) * ux)
            t1 = (x1 - fx1) * ux + (y1 - fy1) * uy
            t2 = (x2 - fx1) * ux + (y2 - fy1) * uy
            if d1 < 5 and d2 < 5 and min(t1, t2) > -10 and max(t1, t2) < L + 10:
                dup = True
                break
        if dup:
            continue
        vals, _, _ = _profile(mask, x1, y1, x2, y2, r)
        has, start, end = _runs(vals, r)
        if has.mean() < 0.85:
            continue  # not continuous: text along a row, not a printed line
        run = (end - start + 1)[has]
        thick = float(np.median(run))
        if thick > r or (run <= thick + 1).mean() < 0.6:
            continue  # thick or of irregular thickness: pen strokes, a dense text row
        # printed lines are ruler-straight and of one thickness; pen strokes wobble and swell
        only = has & ((end - start + 1) <= thick + 1)
        cen = ((start + end) / 2.0)[only]
        tt = np.nonzero(only)[0].astype(np.float64)
        fit = np.polyval(np.polyfit(tt, cen, 1), tt) if len(tt) > 2 else cen
        wobble = float(np.std(cen - fit)) + float(np.std((end - start + 1)[only]))
        found.append((float(x1), float(y1), float(x2), float(y2), thick, wobble))
    return found


def erase_lines(mask: np.ndarray, lines) -> np.ndarray:
    """Remove printed lines; where a pen stroke crosses one (the ink across it is thicker than the
    line) the column is kept, so strokes stay connected."""
    out = mask.copy()
    r = max(7, int(0.012 * max(mask.shape)))
    for x1, y1, x2, y2, thick, *_ in lines:
        # run the segment a little past its ends: Hough segments stop short of the line's caps
        L = math.hypot(x2 - x1, y2 - y1)
        ux, uy = (x2 - x1) / L, (y2 - y1) / L
        ext = 6
        ax1, ay1, ax2, ay2 = x1 - ux * ext, y1 - uy * ext, x2 + ux * ext, y2 + uy * ext
        vals, xs, ys = _profile(mask, ax1, ay1, ax2, ay2, r)
        has, start, end = _runs(vals, r)
        run = end - start + 1
        line_only = has & (run <= thick + 2) & (start > 0) & (end < 2 * r)
        offs = np.arange(2 * r + 1)[:, None]
        # erase the run plus one pixel of anti-aliased edge on each side
        sel = line_only[None, :] & (offs >= start[None, :] - 1) & (offs <= end[None, :] + 1)
        out[ys[sel], xs[sel]] = 0
    # specks the sampled erase missed (a line at an angle is sampled on a rounded grid): small pieces of
    # ink wholly inside the erased band go too
    erased = (mask > 0) & (out == 0)
    if erased.any():
        band = cv2.dilate(erased.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        n, lab, st, _ = cv2.connectedComponentsWithStats(out, connectivity=8)
        if n > 1:
            inside = np.bincount(lab[band & (out > 0)], minlength=n)
            small = (st[:, cv2.CC_STAT_AREA] <= 40) & (inside >= st[:, cv2.CC_STAT_AREA])
            small[0] = False
            if small.any():
                out[small[lab]] = 0
    return out


def _skew(lines) -> float:
    num = den = 0.0
    for x1, y1, x2, y2, *_ in lines:
        ang = math.degrees(math.atan2(y2 - y1, x2 - x1))
        if ang > 90:
            ang -= 180
        if ang < -90:
            ang += 180
        if abs(ang) <= MAX_LINE_ANGLE:
            L = math.hypot(x2 - x1, y2 - y1)
            num += ang * L
            den += L
    return num / den if den else 0.0


# ------------------------------------------------------------------------------------------ clusters


def _cluster_features(
    rgb: np.ndarray | None, flat: np.ndarray, clean: np.ndarray, lines, skew: float, dist: np.ndarray | None
) -> list[Cluster]:
    """Ink clusters and their cues; with ``dist`` None only what the document cues need (box, ink, the
    printed-row cue), which is several times cheaper."""
    h, w = clean.shape
    kx = max(5, int(0.014 * max(h, w)))
    ky = max(3, int(0.006 * max(h, w)))
    grown = cv2.dilate(clean, cv2.getStructuringElement(cv2.MORPH_RECT, (kx, ky)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    if n <= 1:
        return []
    glyph_n, glyph_lab, glyph_st, _ = cv2.connectedComponentsWithStats(clean, connectivity=8)
    ink_per = stats[:, cv2.CC_STAT_AREA].copy()
    ink_per[0] = 0
    # which cluster each glyph belongs to: the cluster under the middle of its box (grown ink covers it)
    gx = np.clip(glyph_st[:, 0] + glyph_st[:, 2] // 2, 0, w - 1)
    gy = np.clip(glyph_st[:, 1] + glyph_st[:, 3] // 2, 0, h - 1)
    g_cl = labels[gy, gx].astype(np.int32)
    g_cl[0] = 0
    # ink pixels per cluster: glyph areas summed per cluster
    ink_per = np.bincount(g_cl[1:], weights=glyph_st[1:, cv2.CC_STAT_AREA], minlength=n).astype(np.int64)
    ink_per[0] = 0
    sat = rgb
    big = max(1, int(ink_per[1:].max()))
    min_ink = max(12, int(0.002 * big), int(3e-5 * h * w))
    order_ink = np.argsort(-ink_per[1:]) + 1
    rank = np.empty(n, np.int32)
    rank[order_ink] = np.arange(1, n)
    hor = []
    ver = []
    for x1, y1, x2, y2, *_ in lines:
        ang = math.degrees(math.atan2(y2 - y1, x2 - x1)) % 180
        (hor if min(ang, 180 - ang) <= MAX_LINE_ANGLE else ver).append((x1, y1, x2, y2))
    tan = math.tan(math.radians(skew))
    clusters: list[Cluster] = []
    max_h = 1
    raw = []
    real = np.nonzero(glyph_st[:, cv2.CC_STAT_AREA] >= 4)[0]
    real = real[real > 0]
    g_order = real[np.argsort(g_cl[real], kind="stable")]
    g_bounds = np.searchsorted(g_cl[g_order], np.arange(n + 1))
    for i in range(1, n):
        if ink_per[i] < min_ink:
            continue
        x, y, cw, ch = (int(v) for v in stats[i, :4])
        gl = g_order[g_bounds[i] : g_bounds[i + 1]]
        gh = glyph_st[gl, cv2.CC_STAT_HEIGHT].astype(np.float64)
        gb = (glyph_st[gl, cv2.CC_STAT_TOP] + glyph_st[gl, cv2.CC_STAT_HEIGHT]).astype(np.float64)
        med_h = float(np.median(gh)) if len(gh) else float(ch)
        cv_h = float(np.std(gh) / max(np.mean(gh), 1)) if len(gh) > 1 else 1.0
        base_sd = float(np.std(gb) / max(med_h, 1)) if len(gb) > 1 else 1.0
        # printed text row: many small glyphs of one height on one baseline
        printed_row = float(len(gh) >= 5 and cv_h < 0.22 and base_sd < 0.15 and med_h < 0.12 * h)
        if dist is None:
            f = dict.fromkeys(FEATURES, 0.0)
            f.update(cx=(x + cw / 2) / w, cy=(y + ch / 2) / h, w=cw / w, h=ch / h, glyph_h=med_h / h)
            f["printed_row"] = printed_row
            raw.append((i, (x, y, cw, ch), int(ink_per[i]), f))
            max_h = max(max_h, ch)
            continue
        sel = labels[y : y + ch, x : x + cw] == i
        ink_sel = sel & clean[y : y + ch, x : x + cw].astype(bool)
        dv = dist[y : y + ch, x : x + cw][ink_sel]
        stroke = float(np.mean(dv)) if dv.size else 0.0
        stroke_cv = float(np.std(dv) / max(stroke, 1e-3)) if dv.size else 0.0
        s_med = float(np.median(sat[y : y + ch, x : x + cw][ink_sel])) / 255.0 if sat is not None and dv.size else 0.0
        dark = float(np.percentile(flat[y : y + ch, x : x + cw][ink_sel], 25)) / 255.0 if dv.size else 1.0
        # the nearest horizontal line below the cluster's centre that overlaps it horizontally
        cxp, cyp = x + cw / 2, y + ch / 2
        best = None
        for x1, y1, x2, y2 in hor:
            lx0, lx1 = min(x1, x2), max(x1, x2)
            ov = min(x + cw, lx1) - max(x, lx0)
            if ov < 0.3 * min(cw, lx1 - lx0):
                continue
            yl = y1 + (y2 - y1) * ((min(max(cxp, lx0), lx1) - x1) / max(x2 - x1, 1e-6))
            rel = (yl - (y + ch)) / max(ch, 1)
            if -0.8 <= rel <= 0.6 and (best is None or abs(rel) < abs(best[0])):
                best = (rel, lx1 - lx0, (lx0 + lx1) / 2, yl)
        boxed = 0.0
        for x1, y1, x2, y2 in ver:
            vy0, vy1 = min(y1, y2), max(y1, y2)
            if vy0 <= cyp <= vy1 and (vy1 - vy0) < 3 * ch + 20:
                boxed += 0.5 if abs((x1 + x2) / 2 - x) < 0.25 * w else 0.0
        # deskewed centre
        cy_d = cyp - (cxp - w / 2) * tan
        f = dict(
            cx=cxp / w,
            cy=cy_d / h,
            w=cw / w,
            h=ch / h,
            log_ink=math.log1p(ink_per[i]) / 10,
            fill=ink_sel.mean(),
            n_glyphs=min(len(gh), 40) / 40,
            glyph_h=med_h / h,
            glyph_h_cv=min(cv_h, 2),
            base_sd=min(base_sd, 2),
            stroke=stroke / 5,
            stroke_cv=stroke_cv,
            sat=s_med,
            dark=dark,
            line_below=1.0 if best else 0.0,
            line_len=(best[1] / w) if best else 0.0,
            line_cx=(best[2] / w) if best else 0.0,
            line_cy=(best[3] / h) if best else 0.0,
            boxed=min(boxed, 1.0),
            aspect=math.log(max(cw, 1) / max(ch, 1)) / 3,
            rel_h=0.0,
            rank_ink=1.0 / rank[i],
            right_of_line_mid=((cxp - best[2]) / w) if best else 0.0,
            printed_row=printed_row,
        )
        raw.append((i, (x, y, cw, ch), int(ink_per[i]), f))
        max_h = max(max_h, ch)
    for i, box, ink, f in raw:
        f["rel_h"] = box[3] / max_h
        if f["printed_row"] and f["glyph_h"] * h > 0.5 * max_h:
            f["printed_row"] = 0.0  # glyphs as tall as the tallest writing: not small print
        clusters.append(Cluster(box, ink, np.array([f[k] for k in FEATURES], np.float32)))
    return clusters


# --------------------------------------------------------------------------------------------- score


class _Scorer:
    def __init__(self, params: dict[str, np.ndarray] | None):
        self.params = params

    def __call__(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0, np.float32)
        if self.params is None:
            return _hand_score(X)
        p = self.params
        Z = (X - p["mean"]) / p["std"]
        H = np.maximum(Z @ p["w1"] + p["b1"], 0)
        o = H @ p["w2"] + p["b2"]
        return (1 / (1 + np.exp(-o.ravel()))).astype(np.float32)


def _hand_score(X: np.ndarray) -> np.ndarray:
    """Fallback when no trained locator is installed: low and right, over a line, not print."""
    ix = {k: i for i, k in enumerate(FEATURES)}
    s = (
        1.5 * X[:, ix["cy"]]
        + 1.0 * X[:, ix["cx"]]
        + 1.0 * X[:, ix["line_below"]]
        + 1.0 * X[:, ix["rel_h"]]
        - 2.0 * X[:, ix["printed_row"]]
        - 1.0 * X[:, ix["boxed"]]
        + 0.5 * X[:, ix["log_ink"]]
        - 3.0
    )
    return (1 / (1 + np.exp(-2 * s))).astype(np.float32)


_SCORER: _Scorer | None = None


def locator_path():
    from sigverify.paths import assets_dir

    return assets_dir() / "models" / "locator.safetensors"


def scorer() -> _Scorer:
    """The cluster scorer: the hand-set cues (used when no dense locator is installed)."""
    global _SCORER
    if _SCORER is None:
        _SCORER = _Scorer(None)
    return _SCORER


def set_scorer(params: dict[str, np.ndarray] | None) -> None:
    """Use these cluster-scorer weights (None: the hand-set cues) - for experiments and tests."""
    global _SCORER
    _SCORER = _Scorer(params) if params is not None else None


# ------------------------------------------------------------------------------ the dense locator

# A small fully convolutional network maps the reduced page (ink darkness, ink mask, ink mask without
# printed lines, colour of the ink; plus x / y coordinate planes) to a coarse "inside the signature's
# box" map; the box of its strongest blob is the region. It sees handwriting vs print, the printed
# line and label under the signature field, boxes and stamps, and where on the page it is, all at once.
# Trained on synthetic cheques of train writers (``benchmarks/train_locator.py``); ~0.06 GFLOP a page.
LOC_H, LOC_W = 176, 384  # network input (rows, columns); the output map is a quarter of that
LOC_CHANNELS = 4
MIN_SIGNATURE_CELLS = 40  # map cells (of 96 x 44) a signature's blob covers at least (measured: >= 69)

_DENSE = None  # (module or None,) once loaded


def locator_input(flat: np.ndarray, mask: np.ndarray, clean: np.ndarray, sat: np.ndarray | None) -> np.ndarray:
    """(LOC_CHANNELS, LOC_H, LOC_W) float32 network input from the work-size analysis images."""
    size = (LOC_W, LOC_H)
    x = np.empty((LOC_CHANNELS, LOC_H, LOC_W), np.float32)
    x[0] = 1.0 - cv2.resize(flat, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x[1] = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    x[2] = cv2.resize(clean.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    if sat is not None:
        x[3] = cv2.resize((sat.astype(np.float32) / 255.0) * mask, size, interpolation=cv2.INTER_AREA)
    else:
        x[3] = 0.0
    return x


def dense_net():
    """The locator network (torch module, untrained)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class DenseLocator(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(LOC_CHANNELS + 2, 8, 3, 2, 1)
            self.c2 = nn.Conv2d(8, 16, 3, 2, 1)
            self.c3 = nn.Conv2d(16, 24, 3, 2, 1)
            self.d1 = nn.Conv2d(24, 24, 3, 1, 1)
            self.d2 = nn.Conv2d(24, 24, 3, 1, 2, dilation=2)
            self.d4 = nn.Conv2d(24, 24, 3, 1, 4, dilation=4)
            self.d8 = nn.Conv2d(24, 24, 3, 1, 8, dilation=8)
            self.u = nn.Conv2d(40, 12, 3, 1, 1)
            self.out = nn.Conv2d(12, 1, 1)

        def forward(self, x):
            n, _, h, w = x.shape
            yy = torch.linspace(0, 1, h, device=x.device).view(1, 1, h, 1).expand(n, 1, h, w)
            xx = torch.linspace(0, 1, w, device=x.device).view(1, 1, 1, w).expand(n, 1, h, w)
            x = torch.cat([x, xx, yy], 1)
            a = F.relu(self.c1(x))
            b = F.relu(self.c2(a))
            c = F.relu(self.c3(b))
            c = F.relu(self.d1(c))
            c = c + F.relu(self.d2(c))
            c = c + F.relu(self.d4(c))
            c = c + F.relu(self.d8(c))
            up = F.interpolate(c, size=b.shape[-2:], mode="nearest")
            return self.out(F.relu(self.u(torch.cat([b, up], 1))))[:, 0]

    return DenseLocator()


def dense_locator():
    """The installed dense locator (eval mode), or None when ``locator.safetensors`` is missing / not one."""
    global _DENSE
    if _DENSE is None:
        net = None
        p = locator_path()
        if p.is_file():
            from safetensors import safe_open
            from safetensors.torch import load_file

            with safe_open(str(p), "pt") as f:
                kind = (f.metadata() or {}).get("kind")
            if kind == "dense":
                net = dense_net()
                net.load_state_dict(load_file(str(p)))
                net.eval()
        _DENSE = (net,)
    return _DENSE[0]


def set_dense_locator(net) -> None:
    """Use this network (None: load the installed file again) - for training and tests."""
    global _DENSE
    _DENSE = (net,) if net is not None else None


def dense_heat(x: np.ndarray, net=None) -> np.ndarray:
    """Signature map (LOC_H/4, LOC_W/4) in [0, 1] for one ``locator_input``."""
    import torch

    net = net or dense_locator()
    with torch.no_grad():
        o = net(torch.from_numpy(x[None]))
    return torch.sigmoid(o[0]).numpy()


def _dense_region(a: "Analysis", heat: np.ndarray) -> tuple[tuple[int, int, int, int] | None, float]:
    """Box (work pixels) of the strongest blob of the map, tightened to the ink inside it."""
    peak = float(heat.max())
    if peak < FOUND_SCORE:
        return None, peak
    on = (heat >= 0.5).astype(np.uint8)
    n, lab, st, _ = cv2.connectedComponentsWithStats(on, connectivity=8)
    mass = np.bincount(lab.ravel(), weights=heat.ravel(), minlength=n)
    mass[0] = 0
    best = int(np.argmax(mass))
    if st[best, cv2.CC_STAT_AREA] < MIN_SIGNATURE_CELLS:
        return None, peak  # a speck of a map: a word or a mark, not a signature
    gx, gy, gw, gh = (int(v) for v in st[best, :4])
    h, w = a.clean.shape
    fy, fx = h / heat.shape[0], w / heat.shape[1]
    x0, y0 = int(gx * fx), int(gy * fy)
    x1, y1 = int(math.ceil((gx + gw) * fx)), int(math.ceil((gy + gh) * fy))
    # tighten to the ink: a map cell is ~1/100 of the page, the signature's ink edge is sharper
    sub = a.clean[y0:y1, x0:x1]
    if sub.any():
        rows, cols = np.nonzero(sub.any(1))[0], np.nonzero(sub.any(0))[0]
        mx, my = max(1, int(0.5 * fx)), max(1, int(0.5 * fy))
        x0, x1 = x0 + max(0, cols[0] - mx), x0 + min(x1 - x0, cols[-1] + 1 + mx)
        y0, y1 = y0 + max(0, rows[0] - my), y0 + min(y1 - y0, rows[-1] + 1 + my)
    return (x0, y0, x1 - x0, y1 - y0), float(heat[lab == best].max())


# ----------------------------------------------------------------------------------------- analysis


def prepare(image: np.ndarray):
    """The reduced page's (grey, saturation, scale, flat, ink mask, printed lines, mask without them);
    mask, lines and clean are None on blank paper."""
    grey, sat, s = work_image(image)
    flat = flat_field(grey)
    mask = ink_mask(flat)
    if mask is None:
        return grey, sat, s, flat, None, None, None
    lines = find_lines(mask, max(40, int(0.18 * mask.shape[1])))
    clean = erase_lines(mask, lines) if lines else mask
    return grey, sat, s, flat, mask, lines, clean


def analyse(image: np.ndarray, score: bool = True) -> Analysis:
    """Look for printed structure and, on a document, for the signature. ``image``: RGB or grey uint8."""
    h0, w0 = image.shape[:2]
    grey, sat, s, flat, mask, lines, clean = prepare(image)
    if mask is None:
        empty = np.zeros(grey.shape, np.uint8)
        return Analysis(s, (h0, w0), empty, empty, blank=True)
    skew = _skew(lines)
    a = Analysis(s, (h0, w0), mask, clean, lines, skew_deg=skew)
    if sat is not None:
        a.paper_saturation = float(np.median(sat[::4, ::4][mask[::4, ::4] == 0]))
    a.clusters = _cluster_features(sat, flat, clean, lines, skew, None)
    a.is_document, a.reasons = _document_cues(a)
    net = dense_locator() if (score and a.is_page) else None
    if net is not None:
        a.heat = dense_heat(locator_input(flat, mask, clean, sat), net)
    elif score and a.is_page:
        # no dense locator installed: the clusters' cues and the hand-set scorer
        dist = cv2.distanceTransform(clean, cv2.DIST_L2, 3)
        a.clusters = _cluster_features(sat, flat, clean, lines, skew, dist)
        if a.clusters:
            for c, v in zip(a.clusters, scorer()(np.stack([c.features for c in a.clusters]))):
                c.score = float(v)
    if not a.is_document or not a.is_page:
        # a clean crop, or a signature-field scan (a printed line, a label, a stamp, but not the fields
        # of a whole page): the signature is what the scan is of - its region is the ink (without
        # printed lines on a document)
        ys, xs = np.nonzero(clean if a.is_document and clean.any() else mask)
        a.region_work = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        a.region = to_original(a.region_work, s, (h0, w0), pad=0.0)
        a.score = 1.0
    elif a.heat is not None:
        a.region_work, a.score = _dense_region(a, a.heat)
        a.region = to_original(a.region_work, s, (h0, w0), pad=0.02) if a.region_work else None
    elif score:
        a.region_work, a.score = _choose(a)
        a.region = to_original(a.region_work, s, (h0, w0), pad=0.06) if a.region_work else None
    return a


PRINTED_WOBBLE = 1.0  # px: straighter and more even than this is a ruler line, not a pen stroke


def _document_cues(a: Analysis) -> tuple[bool, list[str]]:
    """Printed structure: two points or more make a document. Clean signature scans (every image of the
    training collections, measured) score below that: pen underlines and Devanagari head strokes are
    straight but not ruler-straight, and handwriting is not rows of same-height glyphs."""
    h, w = a.mask.shape
    reasons = []
    points = 0
    ys, xs = np.nonzero(a.clean)
    ix0, ix1 = np.percentile(xs, [1, 99]) if len(xs) else (0, 0)
    # ruler-straight, even, and long for its thickness (phone-drawn strokes are even and straight too,
    # but short and thick)
    printed = [
        ln for ln in a.lines if ln[5] < PRINTED_WOBBLE and math.hypot(ln[2] - ln[0], ln[3] - ln[1]) >= max(40.0, 40 * ln[4])
    ]
    long_h = []
    for x1, y1, x2, y2, t, wob in printed:
        L = math.hypot(x2 - x1, y2 - y1)
        if abs(y2 - y1) < abs(x2 - x1) and L >= 0.3 * w:
            beyond = max(ix0 - min(x1, x2), max(x1, x2) - ix1) if len(xs) else L
            if beyond >= 0.02 * w or L >= 0.6 * w:
                long_h.append(L)
    if long_h:
        points += 2 if (len(long_h) >= 2 or max(long_h) >= 0.6 * w) else 1
        reasons.append("printed line")
    if len(printed) >= 3:
        points += 2
        reasons.append("printed lines")
    n_print = sum(1 for c in a.clusters if c.features[FEATURES.index("printed_row")] > 0.5)
    if n_print:
        points += 2 if n_print >= 3 else 1
        reasons.append("printed text")
    if len(a.clusters) >= 8:
        points += 1
        reasons.append("many fields")
    if a.paper_saturation > 8:
        points += 1
        reasons.append("tinted paper")
    return points >= 2, reasons


def _choose(a: Analysis) -> tuple[tuple[int, int, int, int] | None, float]:
    cl = a.clusters
    if not cl:
        return None, 0.0
    best = max(range(len(cl)), key=lambda i: cl[i].score)
    if cl[best].score < FOUND_SCORE:
        return None, cl[best].score
    x, y, bw, bh = cl[best].box
    box = [x, y, x + bw, y + bh]
    used = {best}
    ip = FEATURES.index("printed_row")
    ink0 = cl[best].ink
    changed = True
    while changed:
        changed = False
        for i, c in enumerate(cl):
            if i in used or c.features[ip] > 0.5:
                continue
            cx, cy, cw, ch = c.box
            hgap = max(box[0] - (cx + cw), cx - box[2], 0)
            vgap = max(box[1] - (cy + ch), cy - box[3], 0)
            vov = min(box[3], cy + ch) - max(box[1], cy)
            refh = box[3] - box[1]
            # a neighbour that also looks like the signature, on the same line of writing ...
            side = c.score >= NEIGHBOUR_SCORE and hgap <= 0.8 * refh and vov >= 0.3 * min(ch, refh) and ch <= 1.6 * refh
            # ... or a small piece of pen ink right at it (dots, a flourish, a stroke cut by a line)
            piece = c.ink < 0.35 * ink0 and c.score >= 0.05 and hgap <= 0.25 * refh and vgap <= 0.25 * refh and ch <= refh
            if side or piece:
                box = [min(box[0], cx), min(box[1], cy), max(box[2], cx + cw), max(box[3], cy + ch)]
                used.add(i)
                changed = True
    return (box[0], box[1], box[2] - box[0], box[3] - box[1]), cl[best].score


def to_original(box, scale: float, shape: tuple[int, int], pad: float = 0.0) -> tuple[int, int, int, int]:
    x, y, w, h = box
    px, py = pad * w + 2, pad * h + 2
    H, W = shape
    x0 = max(0, int(math.floor((x - px) / scale)))
    y0 = max(0, int(math.floor((y - py) / scale)))
    x1 = min(W, int(math.ceil((x + w + px) / scale)))
    y1 = min(H, int(math.ceil((y + h + py) / scale)))
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))


@dataclass
class Location:
    region: tuple[int, int, int, int] | None
    signature_found: bool
    is_document: bool
    score: float
    reasons: list[str]

    def to_dict(self) -> dict:
        return {
            "region": list(self.region) if self.region else None,
            "signature_found": self.signature_found,
            "document": self.is_document,
            "score": round(self.score, 3),
            "cues": self.reasons,
        }


def locate(image: np.ndarray) -> Location:
    """Where the signature is (original pixels), or ``region=None`` when the page has none."""
    a = analyse(image)
    return Location(a.region, a.signature_found, a.is_document, a.score, a.reasons)


def parse_crop(text: str) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` -> a crop rectangle (ValueError with a clear message when malformed)."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise ValueError(f"crop must be x,y,w,h (four whole numbers), got {text!r}")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"crop must be x,y,w,h (four whole numbers), got {text!r}") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ValueError(f"crop needs x, y >= 0 and w, h > 0, got {text!r}")
    return (x, y, w, h)


__all__ = [
    "analyse",
    "locate",
    "Analysis",
    "Location",
    "find_lines",
    "erase_lines",
    "parse_crop",
    "to_original",
    "FEATURES",
    "set_scorer",
    "scorer",
    "locator_path",
]
