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
        # colour: a strided sample is enough (and ~10x cheaper than converting the whole scan)
        f = max(1, int(1 / s))
        sub = np.ascontiguousarray(image[::f, ::f])
        hsv = cv2.resize(cv2.cvtColor(sub, cv2.COLOR_RGB2HSV), size, interpolation=cv2.INTER_NEAREST)
        sat = hsv[..., 1]
    else:
        grey = image
    if s < 1.0:
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
    """Otsu ink mask of a flat-fielded page, or None when there is no real ink (blank paper)."""
    h, w = flat.shape
    k = 3 if max(h, w) < 900 else 5
    blurred = cv2.GaussianBlur(flat, (k, k), 0)
    t, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    t = min(t, 230.0)
    mask = (blurred < t).astype(np.uint8)
    if mask.mean() < 0.0005:
        return None
    paper = 1 - mask
    mp, sp = cv2.meanStdDev(flat, mask=paper)
    ink_mean = float(cv2.mean(flat, mask=mask)[0])
    if float(mp[0, 0]) - ink_mean < max(25.0, 4.0 * float(sp[0, 0])):
        return None
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(3, int(2e-5 * h * w))
    mask = keep[labels].astype(np.uint8)
    return mask if mask.mean() >= 0.0005 else None


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
    start, end = cc.copy(), cc.copy()
    cols = np.arange(vals.shape[1])
    go = has.copy()
    for _ in range(2 * r):
        nxt = start - 1
        ok = go & (nxt >= 0)
        ok &= vals[np.clip(nxt, 0, 2 * r), cols]
        start = np.where(ok, nxt, start)
        go = ok
    go = has.copy()
    for _ in range(2 * r):
        nxt = end + 1
        ok = go & (nxt <= 2 * r)
        ok &= vals[np.clip(nxt, 0, 2 * r), cols]
        end = np.where(ok, nxt, end)
        go = ok
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
    rgb: np.ndarray | None, flat: np.ndarray, clean: np.ndarray, lines, skew: float, dist: np.ndarray
) -> list[Cluster]:
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
    for i in range(1, n):
        if ink_per[i] < min_ink:
            continue
        x, y, cw, ch = (int(v) for v in stats[i, :4])
        sel = labels[y : y + ch, x : x + cw] == i
        ink_sel = sel & clean[y : y + ch, x : x + cw].astype(bool)
        gl = np.nonzero(g_cl == i)[0]
        gl = gl[glyph_st[gl, cv2.CC_STAT_AREA] >= 4]
        gh = glyph_st[gl, cv2.CC_STAT_HEIGHT].astype(np.float64)
        gb = (glyph_st[gl, cv2.CC_STAT_TOP] + glyph_st[gl, cv2.CC_STAT_HEIGHT]).astype(np.float64)
        med_h = float(np.median(gh)) if len(gh) else float(ch)
        cv_h = float(np.std(gh) / max(np.mean(gh), 1)) if len(gh) > 1 else 1.0
        base_sd = float(np.std(gb) / max(med_h, 1)) if len(gb) > 1 else 1.0
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
        # printed text row: many small glyphs of one height on one baseline
        printed_row = float(len(gh) >= 5 and cv_h < 0.22 and base_sd < 0.15 and med_h < 0.12 * h)
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
    global _SCORER
    if _SCORER is None:
        params = None
        p = locator_path()
        if p.is_file():
            from safetensors.numpy import load_file

            params = load_file(str(p))
            if params.get("n_features", np.zeros(1)).ravel()[0] != len(FEATURES):
                params = None
        _SCORER = _Scorer(params)
    return _SCORER


def set_scorer(params: dict[str, np.ndarray] | None) -> None:
    """Use these locator weights (None: the installed file) - for training and tests."""
    global _SCORER
    _SCORER = _Scorer(params) if params is not None else None


# ----------------------------------------------------------------------------------------- analysis


def analyse(image: np.ndarray, score: bool = True) -> Analysis:
    """Look for printed structure and, on a document, for the signature. ``image``: RGB or grey uint8."""
    h0, w0 = image.shape[:2]
    grey, sat, s = work_image(image)
    flat = flat_field(grey)
    mask = ink_mask(flat)
    if mask is None:
        empty = np.zeros(grey.shape, np.uint8)
        return Analysis(s, (h0, w0), empty, empty, blank=True)
    h, w = mask.shape
    min_len = max(40, int(0.18 * w))
    lines = find_lines(mask, min_len)
    clean = erase_lines(mask, lines) if lines else mask
    skew = _skew(lines)
    a = Analysis(s, (h0, w0), mask, clean, lines, skew_deg=skew)
    if sat is not None:
        a.paper_saturation = float(np.median(sat[::4, ::4][mask[::4, ::4] == 0]))
    dist = cv2.distanceTransform(clean, cv2.DIST_L2, 3)
    a.clusters = _cluster_features(sat, flat, clean, lines, skew, dist)
    a.is_document, a.reasons = _document_cues(a)
    if score and a.clusters:
        sc = scorer()(np.stack([c.features for c in a.clusters]))
        for c, v in zip(a.clusters, sc):
            c.score = float(v)
    if not a.is_document:
        ys, xs = np.nonzero(mask)
        a.region_work = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        a.region = to_original(a.region_work, s, (h0, w0), pad=0.0)
        a.score = 1.0
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
