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


def _pen_decolour(rgb: np.ndarray, grey: np.ndarray, ink: np.ndarray) -> tuple[np.ndarray, str]:
    """Grey image with the ink of non-pen colour classes painted as paper; returns (grey, pen class)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hue, sat = hsv[..., 0].astype(np.int32), hsv[..., 1]
    coloured = (sat > 70) & ink
    # colour classes: 0 = neutral, 1..6 = hue sectors of 30 degrees (OpenCV hue is 0..179)
    cls = np.zeros(grey.shape, np.int8)
    cls[coloured] = 1 + (((hue[coloured] + 15) % 180) // 30)
    h, w = grey.shape
    yy = (np.arange(h, dtype=np.float32) - h / 2) / (0.35 * h)
    xx = (np.arange(w, dtype=np.float32) - w / 2) / (0.35 * w)
    wgt = np.exp(-(yy[:, None] ** 2) - (xx[None, :] ** 2))
    votes = np.bincount(cls[ink].ravel(), weights=wgt[ink].ravel(), minlength=7)
    pen = int(np.argmax(votes))
    total = votes.sum()
    names = ["neutral", "red", "yellow", "green", "cyan", "blue", "magenta"]
    other = ink & (cls != pen)
    if pen != 0:
        # a coloured pen: neutral edge pixels of its own strokes are kept (anti-aliasing, overlaps)
        near_pen = cv2.dilate((ink & (cls == pen)).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        other &= ~(near_pen & (cls == 0))
    if not other.any() or votes[pen] < 0.2 * total:
        return grey, names[pen]
    out = grey.copy()
    spread = cv2.dilate(other.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    spread &= ~(ink & (cls == pen))
    out[spread] = 255
    return out, names[pen]


def _stamps(mask: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Remove stamp outlines (rings, boxes) and what is printed inside them; grey stamps by grey level."""
    h, w = mask.shape
    n, lab, st, cen = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return mask
    out = mask.copy()
    areas = st[:, cv2.CC_STAT_AREA]
    # grey level of each component's stroke core (25th percentile of the flat image under it)
    dark = np.full(n, 255.0)
    big = np.argsort(-areas[1:])[:60] + 1
    for i in big:
        x, y, cw, ch = st[i, :4]
        v = flat[y : y + ch, x : x + cw][lab[y : y + ch, x : x + cw] == i]
        dark[i] = float(np.percentile(v, 25))
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


def _drop_print(mask: np.ndarray) -> np.ndarray:
    """Drop rows of printed text (many small glyphs of one height on one baseline) that are much smaller
    than the handwriting, and tiny marks far from the main ink."""
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
    for i in range(1, n):
        if i == main:
            continue
        gl = np.nonzero((g_cl == i) & (gst[:, cv2.CC_STAT_AREA] >= 3))[0]
        gh = gst[gl, cv2.CC_STAT_HEIGHT].astype(np.float64)
        if len(gh) >= 3:
            cv_h = np.std(gh) / max(np.mean(gh), 1)
            bottoms = gst[gl, 1] + gst[gl, 3]
            base_sd = np.std(bottoms) / max(np.median(gh), 1)
            if cv_h < 0.35 and base_sd < 0.3 and np.median(gh) < 0.5 * main_h:
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
    from sigverify.imaging.preprocess import _flat_field, _rotate, _select_region, _threshold

    stages: dict[str, np.ndarray] = {}
    h, w = image.shape[:2]
    scale = min(1.0, cfg.work_max_side / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if keep_stages:
        stages["grey"] = grey
    if image.ndim == 3 and cfg.remove_stamps:
        flat0 = _flat_field(grey)
        ink0 = flat0 < min(230, int(cv2.threshold(flat0, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]))
        if ink0.any():
            grey, _pen = _pen_decolour(image, grey, ink0)
        if keep_stages:
            stages["decolour"] = grey
    flat = _flat_field(grey)
    mask = _threshold(flat, cfg.min_ink_fraction, grey)
    if keep_stages:
        stages["flat"] = flat
        stages["mask"] = (255 - mask * 255).astype(np.uint8)
    mh, mw = mask.shape
    skew = 0.0
    if cfg.remove_lines:
        lines = find_lines(mask, max(30, int(0.3 * min(mw, 2 * mh))))
        if lines:
            mask = erase_lines(mask, lines)
            skew = _skew(lines)
        if keep_stages:
            stages["lines"] = (255 - mask * 255).astype(np.uint8)
    if cfg.remove_stamps:
        mask = _stamps(mask, flat)
        if keep_stages:
            stages["stamps"] = (255 - mask * 255).astype(np.uint8)
    if abs(skew) >= 0.3:
        mask = _rotate(mask, skew, 0)
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
