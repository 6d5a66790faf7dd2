"""Clean a signature cut out of a document (cheque, form, signature-field scan) down to its ink.

Used by ``preprocess`` only for documents or when asked (a crop rectangle, ``document=True``): a clean
signature crop keeps the original pipeline, byte for byte, because that is what the shipped model was
trained on. Stages (each kept as an image when ``keep_stages``):

``grey``      colour -> grey
``decolour``  ink of another colour than the pen's removed (stamps of any colour, printed matter in
              black when the pen is blue): the pen's colour is the colour class holding most ink near the
              middle of the region
``flat``      flat-field (tints and security backgrounds -> white)
``mask``      ink mask
``lines``     straight printed lines at any angle up to ~11 degrees removed, pen strokes crossing them kept
``stamps``    stamp outlines (circles, boxes) and the printed words inside them removed, whatever their
              colour; stamps lighter than the pen (grey) removed by grey level
``deskewed``  rotated so the printed signature line is horizontal (when there was one)
``cleaned``   printed text near the signature (regular glyph rows) and stray marks far from it dropped
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sigverify.errors import BlankImageError
from sigverify.imaging.locate import _skew, erase_lines, find_lines

ERASE_WOBBLE = 1.3  # px: a line straighter than this is printed and erased (pen strokes wobble more)
_NAMES = ("neutral", "red", "yellow", "green", "cyan", "blue", "magenta")
_STAMP_ONLY = (1, 2, 3)  # red, yellow / orange, green: stamp colours, never a pen's (unless all the ink is)


def _colour_classes(rgb: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Per pixel colour class: 0 = neutral (grey / black), 1..6 = hue sectors of 30 degrees, 7 = between
    (faint edges of coloured strokes): by chroma (max - min of R, G, B), which unlike HSV saturation
    does not blow up the noise of dark pixels."""
    r, g, b = cv2.split(rgb)
    chroma = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
    coloured = (chroma > 35) & ink
    cls = np.full(ink.shape, 7, np.int8)
    cls[chroma < 18] = 0
    hue = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 0][coloured].astype(np.int32)
    cls[coloured] = 1 + (((hue + 15) % 180) // 30)
    return cls


def _non_pen(rgb: np.ndarray, flat: np.ndarray, ink: np.ndarray) -> tuple[np.ndarray, str]:
    """Ink pixels of another colour than the pen's (stamps of any colour; printed matter in black when the
    pen is blue): (bool mask, pen class name). The pen is the colour class holding the most *dark* ink
    near the middle of the region (stamps are lighter than pen strokes, print is thin); a class that
    could be a pen (neutral, blue, violet) is removed only when the pen is clearly another class - a
    signature must never be erased because a stamp outweighs it."""
    cls = _colour_classes(rgb, ink)
    h, w = ink.shape
    # how much of the region's width each colour's ink spans (a signature runs along the field; a stamp,
    # however heavy, is compact)
    bins = np.minimum((np.arange(w) * 64) // max(w, 1), 63)
    ys, xs = np.nonzero(ink)
    per = np.zeros((8, 64))
    np.add.at(per, (cls[ys, xs], bins[xs]), 1.0)
    votes = ((per >= max(3.0, 0.02 * h)).sum(1) + 1e-4 * per.sum(1))[:7]
    pen = int(np.argmax(votes))
    pen_like = votes.copy()
    pen_like[list(_STAMP_ONLY)] = 0
    if pen in _STAMP_ONLY and pen_like.sum() >= 0.2 * votes.sum():
        pen = int(np.argmax(pen_like))  # a red / green stamp outweighs the strokes: the pen is still not red
    out = np.zeros(ink.shape, bool)
    for c in range(7):
        if c == pen or votes[c] == 0:
            continue
        # the pen spans the field widest; a coloured pen's strokes are never neutral (their faint edges are
        # "between"), so neutral ink goes; another pen-like colour only when it clearly spans less
        if c in _STAMP_ONLY or (c == 0 and pen != 0) or votes[pen] >= 2.0 * votes[c]:
            out |= ink & (cls == c)
    if pen != 0 and out.any():
        # a coloured pen: neutral pixels touching its strokes stay (overlaps, dark cores); its faint edges
        # are "between" and never removed
        near_pen = cv2.dilate((ink & (cls == pen)).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        out &= ~(near_pen & (cls == 0))
    if out.any():
        # pen strokes under a stamp read as the stamp's colour: gaps the removal would cut into the pen's
        # strokes (up to a stamp line's width) are bridged back
        keep = (ink & ~out).astype(np.uint8)
        closed = cv2.morphologyEx(keep, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
        out &= ~closed.astype(bool)
    return out, _NAMES[pen]


def _drop_light_ink(mask: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Ink clearly lighter than the pen's stroke cores (grey stamps, faint print), pixel by pixel: a pixel
    goes when even the darkest ink around it (5x5) is light, so the pale edges of pen strokes stay."""
    ink = mask.astype(bool)
    if ink.sum() < 50:
        return mask
    pen = float(np.percentile(flat[ink], 5))
    core = cv2.erode(flat, np.ones((5, 5), np.uint8))
    light = ink & (core > pen + max(45.0, 0.5 * (245.0 - pen)))
    if not light.any() or light.sum() > 0.6 * ink.sum():
        return mask
    return (ink & ~light).astype(np.uint8)


def _stamps(mask: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Remove stamp outlines (rings, boxes) and what is printed inside them; grey stamps by grey level."""
    h, w = mask.shape
    mask = _drop_light_ink(mask, flat)
    n, lab, st, cen = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return mask
    out = mask.copy()
    areas = st[:, cv2.CC_STAT_AREA]
    # grey level of each component (mean of the flat image under it)
    dark = np.bincount(lab.ravel(), weights=flat.ravel().astype(np.float64), minlength=n) / np.maximum(areas, 1)
    big = np.argsort(-areas[1:])[:60] + 1
    pen_dark = float(np.average(dark[big[:5]], weights=areas[big[:5]]))
    removed = np.zeros(n, bool)
    for i in big:
        x, y, cw, ch = (int(v) for v in st[i, :4])
        if cw < 0.12 * min(h, w) or ch < 0.12 * min(h, w):
            continue
        fill = areas[i] / float(cw * ch)
        if fill > 0.25:
            continue
        ys, xs = np.nonzero(lab[y : y + ch, x : x + cw] == i)
        # ring: the pixels sit at one distance from the centre
        cx, cy = xs.mean(), ys.mean()
        d = np.hypot(xs - cx, ys - cy)
        ring = np.mean(np.abs(d - np.median(d)) < 0.12 * np.median(d)) > 0.7 and 0.7 < cw / max(ch, 1) < 1.4
        # box: the pixels sit near the component's rotated bounding rectangle
        rect = cv2.minAreaRect(np.stack([xs, ys], 1).astype(np.float32))
        (rcx, rcy), (rw, rh), ang = rect
        th = math.radians(ang)
        u = (xs - rcx) * math.cos(th) + (ys - rcy) * math.sin(th)
        v = -(xs - rcx) * math.sin(th) + (ys - rcy) * math.cos(th)
        edge = np.minimum(np.abs(np.abs(u) - rw / 2), np.abs(np.abs(v) - rh / 2))
        box = np.mean(edge < max(3.0, 0.06 * min(rw, rh))) > 0.75
        if ring or box:
            removed[i] = True
            # what is printed inside the stamp: small components wholly inside its box (stamp words are
            # a fraction of the stamp's height; pen strokes through it are larger or cross its edge)
            inside = (
                (st[:, 0] >= x)
                & (st[:, 1] >= y)
                & (st[:, 0] + st[:, 2] <= x + cw)
                & (st[:, 1] + st[:, 3] <= y + ch)
                & (st[:, 3] < 0.4 * ch)
            )
            inside[0] = False
            removed |= inside
    # grey stamps: components clearly lighter than the pen's stroke cores
    for i in big:
        if dark[i] > pen_dark + 60 and areas[i] > 30:
            removed[i] = True
    if removed.any():
        out[removed[lab]] = 0
    return out


def rotate_whole(img: np.ndarray, angle: float, interpolation: int = cv2.INTER_NEAREST) -> np.ndarray:
    """Rotate a one-channel image by ``angle`` degrees onto a canvas large enough that nothing is cut
    off (the border is 0)."""
    h, w = img.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * s + w * c) + 2, int(h * c + w * s) + 2
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(img, m, (nw, nh), flags=interpolation, borderValue=0)


def _printed(line, w: int, h: int) -> bool:
    x1, y1, x2, y2, _thick, wobble = line
    across = abs(x2 - x1) >= 0.45 * w if abs(x2 - x1) >= abs(y2 - y1) else abs(y2 - y1) >= 0.45 * h
    return wobble < ERASE_WOBBLE and across


def _drop_labels(mask: np.ndarray, lines) -> np.ndarray:
    """Drop the printed label of a signature line: small glyphs wholly below the line ("Please sign
    above", "Authorised signatory") or just before its left end on its baseline ("Signature")."""
    h, w = mask.shape
    hor = []
    for x1, y1, x2, y2, *_ in lines:
        if abs(x2 - x1) >= 0.25 * w and abs(y2 - y1) <= 0.2 * abs(x2 - x1):
            hor.append((x1, y1, x2, y2) if x1 <= x2 else (x2, y2, x1, y1))
    if not hor:
        return mask
    n, lab, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 2:
        return mask
    areas = st[1:, cv2.CC_STAT_AREA]
    ref = float(st[1:, cv2.CC_STAT_HEIGHT][np.argsort(-areas)[:5]].max())
    drop = np.zeros(n, bool)
    for i in range(1, n):
        x, y, cw, ch = (int(v) for v in st[i, :4])
        if ch >= 0.22 * ref:
            continue
        cx = x + cw / 2
        for x1, y1, x2, y2 in hor:
            yl = y1 + (y2 - y1) * (min(max(cx, x1), x2) - x1) / max(x2 - x1, 1e-6)
            below = y > yl + max(4.0, 0.08 * ref) and y < yl + 1.2 * ref and x1 - 0.1 * w <= cx <= x2 + 0.05 * w
            before = x + cw < x1 + 3 and abs((y + ch) - yl) < max(0.25 * ref, 6) and x1 - (x + cw) < 0.35 * w
            if below or before:
                drop[i] = True
                break
    if not drop.any():
        return mask
    return (~drop[lab] & mask.astype(bool)).astype(np.uint8)


def _drop_print_rows(mask: np.ndarray) -> np.ndarray:
    """Drop rows of small printed glyphs (a label such as "Please sign above") even where they touch the
    signature's cluster: >= 4 glyphs far smaller than the writing, of similar height, side by side on one
    baseline."""
    n, lab, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 6:
        return mask
    hs = st[1:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    areas = st[1:, cv2.CC_STAT_AREA]
    big = np.argsort(-areas)[:5]
    ref = float(hs[big].max())
    idx = np.nonzero((hs < 0.3 * ref) & (areas >= 3))[0]
    if len(idx) < 4 or len(idx) > 400:
        return mask
    x, y, w, h = (st[1:, k][idx].astype(np.float64) for k in range(4))
    bottom = y + h
    hm = np.maximum(np.minimum.outer(h, h), 1)
    gap = np.maximum(x[None, :] - (x + w)[:, None], x[:, None] - (x + w)[None, :])
    link = (np.abs(bottom[:, None] - bottom[None, :]) < np.maximum(1.5, 0.12 * hm)) & (gap < 1.0 * hm)
    link &= np.maximum.outer(h, h) < 1.5 * hm
    # groups: connected parts of the link graph
    group = -np.ones(len(idx), np.int32)
    g = 0
    for i in range(len(idx)):
        if group[i] >= 0:
            continue
        stack, group[i] = [i], g
        while stack:
            j = stack.pop()
            for m in np.nonzero(link[j] & (group < 0))[0]:
                group[m] = g
                stack.append(int(m))
        g += 1
    drop = np.zeros(n, bool)
    for gi in range(g):
        mem = np.nonzero(group == gi)[0]
        if len(mem) < 4:
            continue
        hh = h[mem]
        if np.std(hh) / max(np.mean(hh), 1) < 0.3 and np.median(hh) < 0.2 * ref:
            drop[idx[mem] + 1] = True
    if not drop.any():
        return mask
    return (~drop[lab] & mask.astype(bool)).astype(np.uint8)


def _drop_print(mask: np.ndarray) -> np.ndarray:
    """Drop rows of printed text (many small glyphs of one height on one baseline) that are much smaller
    than the handwriting, and tiny marks far from the main ink."""
    mask = _drop_print_rows(mask)
    h, w = mask.shape
    kx, ky = max(5, int(0.03 * w)), max(3, int(0.02 * h))
    grown = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, (kx, ky)))
    n, lab, st, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    if n <= 2:
        return mask
    gn, glab, gst, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    gx = np.clip(gst[:, 0] + gst[:, 2] // 2, 0, w - 1)
    gy = np.clip(gst[:, 1] + gst[:, 3] // 2, 0, h - 1)
    g_cl = lab[gy, gx]
    g_cl[0] = 0
    ink = np.bincount(g_cl[1:], weights=gst[1:, cv2.CC_STAT_AREA], minlength=n)
    ink[0] = 0
    main = int(np.argmax(ink))
    main_h = st[main, cv2.CC_STAT_HEIGHT]
    drop = np.zeros(n, bool)
    real = np.nonzero(gst[:, cv2.CC_STAT_AREA] >= 3)[0]
    real = real[real > 0]
    order = real[np.argsort(g_cl[real], kind="stable")]
    bounds = np.searchsorted(g_cl[order], np.arange(n + 1))
    for i in range(1, n):
        if i == main:
            continue
        gl = order[bounds[i] : bounds[i + 1]]
        gh = gst[gl, cv2.CC_STAT_HEIGHT].astype(np.float64)
        if len(gh) >= 3:
            cv_h = np.std(gh) / max(np.mean(gh), 1)
            bottoms = gst[gl, 1] + gst[gl, 3]
            base_sd = np.std(bottoms) / max(np.median(gh), 1)
            med = np.median(gh)
            regular = cv_h < 0.25 and base_sd < 0.2 and med < 0.4 * main_h
            tiny = cv_h < 0.45 and base_sd < 0.45 and med < 0.2 * main_h  # small print: a label
            if len(gh) >= 4 and (regular or tiny):
                drop[i] = True
                continue
        # small marks well away from the signature (label fragments, dust, cut-off stamps)
        x, y, cw, ch = st[i, :4]
        mx, my, mw, mh = st[main, :4]
        gap_x = max(mx - (x + cw), x - (mx + mw), 0)
        gap_y = max(my - (y + ch), y - (my + mh), 0)
        if ink[i] < 0.08 * ink[main] and (gap_x > 0.15 * mw or gap_y > 0.25 * mh):
            drop[i] = True
    if not drop.any():
        return mask
    keep_glyph = ~drop[g_cl]
    keep_glyph[0] = False
    return keep_glyph[glab].astype(np.uint8)


def clean_document(image: np.ndarray, cfg, keep_stages: bool = False):
    """(ink mask 0/1, skew degrees, stages) of a document region; raises BlankImageError when no ink."""
    from sigverify.imaging.preprocess import _flat_field, _select_region, _threshold

    stages: dict[str, np.ndarray] = {}
    h, w = image.shape[:2]
    scale = min(1.0, cfg.work_max_side / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if keep_stages:
        stages["grey"] = grey
    flat = _flat_field(grey)
    mask = _threshold(flat, cfg.min_ink_fraction, grey)
    if keep_stages:
        stages["flat"] = flat
        stages["mask"] = (255 - mask * 255).astype(np.uint8)
    mh, mw = mask.shape
    skew = 0.0
    lines = []
    before_lines = mask.astype(bool)
    # printed lines first, on the whole ink (a line is continuous there; removing other colours first
    # would cut it into dashes that no longer look like a line)
    if cfg.remove_lines:
        # only ruler-straight lines running across the region: a gently curved pen flourish wobbles more
        # or is shorter (a piece of it can be straight)
        lines = [ln for ln in find_lines(mask, max(30, int(0.3 * min(mw, 2 * mh)))) if _printed(ln, mw, mh)]
        before_lines = mask.astype(bool)
        if lines:
            mask = erase_lines(mask, lines)
            skew = _skew(lines)
        if keep_stages:
            stages["lines"] = (255 - mask * 255).astype(np.uint8)
    if image.ndim == 3 and cfg.remove_stamps:
        other, _pen = _non_pen(image, flat, mask.astype(bool))
        if other.any() and other.sum() < 0.8 * mask.sum():
            # threshold again without the other colours: dark stamps pull the Otsu threshold down and thin
            # the pen's strokes; the printed lines found above stay erased
            lined = before_lines & ~mask.astype(bool)
            grey2 = grey.copy()
            grey2[cv2.dilate(other.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~(mask.astype(bool) & ~other)] = (
                255
            )
            try:
                mask2 = _threshold(_flat_field(grey2), cfg.min_ink_fraction, grey2).astype(bool)
            except BlankImageError:
                mask2 = mask.astype(bool)
            mask = (mask2 & ~other & ~lined).astype(np.uint8)
        if keep_stages:
            stages["decolour"] = (255 - mask * 255).astype(np.uint8)
    if cfg.remove_stamps:
        mask = _stamps(mask, flat)
        if keep_stages:
            stages["stamps"] = (255 - mask * 255).astype(np.uint8)
    if cfg.remove_lines and lines:
        mask = _drop_labels(mask, lines)
    if abs(skew) >= 0.3:
        mask = rotate_whole(mask, skew)
        if keep_stages:
            stages["deskewed"] = (255 - mask * 255).astype(np.uint8)
    else:
        skew = 0.0
    if not mask.any():
        raise BlankImageError("no signature found after removing printed lines and stamps")
    mask = _drop_print(mask)
    if cfg.select_region:
        mask = _select_region(mask)
    if not mask.any():
        raise BlankImageError("no signature found after removing printed matter")
    if keep_stages:
        stages["cleaned"] = (255 - mask * 255).astype(np.uint8)
    return mask, skew, stages


__all__ = ["clean_document"]
