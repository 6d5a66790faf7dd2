"""Turn a scan into the network's input, SigNet-style, robust to what real cheques carry.

Pipeline (each stage kept as an image for the GUI when ``keep_stages=True``):

1. ``grey``       colour -> grey; red/magenta stamps dropped where blue/black pen ink is also present
2. ``flat``       flat-field: divide by a smooth background estimate, so tints, shading, patterned
                  security backgrounds and the scanner's grey level all become pure white
3. ``mask``       Otsu threshold on a lightly blurred copy (blur only locates the ink), speckle removed
4. ``cleaned``    skew from long printed lines corrected, printed lines / boxes removed (pen strokes
                  crossing them are kept), the signature region chosen (printed words far from the main
                  ink cluster dropped)
5. ``input``      crop to ink, scale to fit, centre by centre of mass on the canvas, invert (ink = 255,
                  background = 0) at the network's input size

The network sees only the *binary* ink shape (anti-aliased by the final area resize): no grey level of
paper or ink can leak into it, which is what lets the model learn writers instead of scanners.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields

import cv2
import numpy as np

from sigverify.errors import BlankImageError

cv2.setNumThreads(1)

DOCUMENT_MIN_SIDE = 1000  # px: only an image this large on its long side can be taken for a whole page


@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocessing parameters; stored in (and read from) the model card."""

    input_height: int = 150
    input_width: int = 220
    margin: float = 0.05  # blank border kept around the ink, fraction of the input size
    work_max_side: int = 900  # scans are reduced to this size before processing (speed)
    remove_lines: bool = True
    remove_stamps: bool = True
    deskew: bool = False  # off by default: long pen flourishes look like printed lines
    select_region: bool = True
    min_ink_fraction: float = 0.0005  # below this the page counts as blank

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "PreprocessConfig":
        d = d or {}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Preprocessed:
    input: np.ndarray  # (H, W) uint8, ink 255 on 0
    stages: dict[str, np.ndarray] = field(default_factory=dict)
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)  # x, y, w, h of the ink in the work image
    skew_deg: float = 0.0
    ink_fraction: float = 0.0
    region: tuple[int, int, int, int] | None = None  # x, y, w, h of the signature in the original image
    document: bool = False  # True: located / cleaned as a document (cheque, form), not as a clean crop
    cues: list[str] = field(default_factory=list)  # why it counted as a document
    region_source: str = "ink"  # "ink" (clean crop: the ink's box), "located" (found on a document), "crop" (given)


def _to_grey(rgb: np.ndarray, remove_stamps: bool) -> np.ndarray:
    if rgb.ndim == 2:
        return rgb
    if rgb.shape[2] == 3 and rgb.shape[0] * rgb.shape[1] > 0:
        # a grey scan decoded as RGB: one plane, compared in OpenCV (~4x cheaper than numpy's strided views)
        r, g, b = cv2.split(rgb)
        if cv2.norm(r, g, cv2.NORM_INF) == 0 and cv2.norm(g, b, cv2.NORM_INF) == 0:
            return r
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if not remove_stamps:
        return grey
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    coloured = (sat > 80) & (val < 235)
    reddish = coloured & ((hue <= 12) | (hue >= 140))  # red, pink, magenta, purple stamps
    n_red = int(reddish.sum())
    if n_red == 0:
        return grey
    dark_other = (grey < 150) & ~reddish
    # Only drop the red ink if there is other (pen) ink to keep: a red-ink signature stays.
    if int(dark_other.sum()) < 0.15 * n_red:
        return grey
    spread = cv2.dilate(reddish.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    spread &= ~(dark_other & ~reddish & (sat < 60))  # never erase dark neutral pen strokes
    out = grey.copy()
    out[spread] = 255
    return out


def _flat_field(grey: np.ndarray) -> np.ndarray:
    h, w = grey.shape
    f = max(1, int(round(max(h, w) / 160)))
    small = cv2.resize(grey, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    k = 7
    bg = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    bg = cv2.medianBlur(bg, 5)
    bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    # grey / max(bg, 1) * 255, clipped and truncated to uint8: the same float32 operations in place
    np.maximum(bg, 1.0, out=bg)
    flat = grey.astype(np.float32)
    np.divide(flat, bg, out=flat)
    np.multiply(flat, 255.0, out=flat)
    np.minimum(flat, 255.0, out=flat)  # never below 0: grey >= 0, bg >= 1
    return flat.astype(np.uint8)


def _threshold(flat: np.ndarray, min_ink_fraction: float, grey_before_flat: np.ndarray) -> np.ndarray:
    h, w = flat.shape
    k = 3 if max(h, w) < 900 else 5
    blurred = cv2.GaussianBlur(flat, (k, k), 0)
    t, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Otsu on a page of paper only splits noise: require real contrast against the white paper.
    t = min(t, 230.0)
    # mask = blurred < t (integer pixels: <= ceil(t) - 1), as 0/1 uint8
    mask = cv2.threshold(blurred, math.ceil(t) - 1, 1, cv2.THRESH_BINARY_INV)[1]
    # one joint histogram of (flat grey level, ink or paper) gives every statistic below in one pass
    hist2 = cv2.calcHist([flat, mask], [0, 1], None, [256, 2], [0, 256, 0, 2]).astype(np.float64)
    paper_hist, ink_hist = hist2[:, 0], hist2[:, 1]
    n_ink = int(ink_hist.sum())
    if n_ink / mask.size < min_ink_fraction:
        if float(np.median(grey_before_flat)) < 60:
            raise BlankImageError(
                "no signature found: the page is (almost) entirely dark - an underexposed or "
                "inverted scan, or a covered scanner lid"
            )
        raise BlankImageError("no signature found: the page looks blank (no ink)")
    levels = np.arange(256, dtype=np.float64)
    n_paper = mask.size - n_ink
    if n_paper:
        cum = np.cumsum(paper_hist)
        lo, hi = int(np.searchsorted(cum, (n_paper - 1) // 2 + 1)), int(np.searchsorted(cum, n_paper // 2 + 1))
        paper_med = (lo + hi) / 2.0  # = np.median of the paper pixels
        # mean and standard deviation as cv2.meanStdDev computes them (exact integer sums, times 1/n)
        scale = 1.0 / n_paper
        mean = float(paper_hist @ levels) * scale
        paper_sd = math.sqrt(max(float(paper_hist @ (levels * levels)) * scale - mean * mean, 0.0))
    else:
        paper_med, paper_sd = 255.0, 0.0
    ink_mean = float(ink_hist @ levels) * (1.0 / n_ink)  # = cv2.mean(flat, mask=mask)
    # Otsu on plain paper just splits the noise: ink must stand well clear of the paper's own spread.
    if paper_med - ink_mean < max(25.0, 4.0 * paper_sd):
        raise BlankImageError("no signature found: the page looks blank (no ink)")
    # speckle: drop tiny connected components
    # (Grana's block-based labelling: the same components as the default algorithm, ~3x faster here)
    # 16-bit labels (half the memory traffic) whenever the most components an 8-connected mask can hold
    # fit in them: the same labels
    ltype = cv2.CV_16U if ((h + 1) // 2) * ((w + 1) // 2) < 65535 else cv2.CV_32S
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, ltype, cv2.CCL_GRANA)
    min_area = max(3, int(2e-5 * h * w))
    keep = np.zeros(n, dtype=bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep[1:] = areas >= min_area
    if not keep[1:].all():  # nothing to drop: the mask stays as it is
        mask = keep[labels].astype(np.uint8)
        n_ink = int(areas[keep[1:]].sum())
    if n_ink / mask.size < min_ink_fraction:
        raise BlankImageError("no signature found: only specks or noise on the page")
    return mask


def _estimate_skew(mask: np.ndarray) -> float:
    """Angle (degrees) of long straight printed lines, or 0 when there are none."""
    h, w = mask.shape
    lines = cv2.HoughLinesP(
        mask * 255, 1, np.pi / 360, threshold=max(40, int(0.3 * w)), minLineLength=int(0.45 * w), maxLineGap=max(3, w // 200)
    )
    if lines is None:
        return 0.0
    angles = []
    for x1, y1, x2, y2 in np.asarray(lines).reshape(-1, 4):
        a = math.degrees(math.atan2(y2 - y1, x2 - x1))
        if abs(a) < 15:
            angles.append(a)
    if not angles:
        return 0.0
    a = float(np.median(angles))
    return a if abs(a) >= 0.3 else 0.0


def _rotate(img: np.ndarray, angle: float, border: int) -> np.ndarray:
    h, w = img.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=border)


def _remove_lines(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    kw, kh = max(25, int(0.4 * w)), max(25, int(0.7 * h))
    # A line survives the opening only where a row (column) holds at least kw (kh) ink pixels:
    # when none does, skip the two large morphological openings (same result, several ms saved).
    if mask.sum(1).max() < kw and mask.sum(0).max() < kh:
        return mask
    out = mask.copy()
    horiz = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (kw, 1)))
    vert = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, kh)))
    lines = (horiz | vert).astype(bool)
    if not lines.any():
        return mask
    out[lines] = 0
    # Keep pen strokes that cross the line: restore line pixels bridging ink above and below.
    bridged = cv2.morphologyEx(out, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 7)))
    bridged_v = cv2.morphologyEx(out, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (7, 1)))
    restore = lines & ((horiz.astype(bool) & bridged.astype(bool)) | (vert.astype(bool) & bridged_v.astype(bool)))
    out[restore] = 1
    return out


def _select_region(mask: np.ndarray) -> np.ndarray:
    """Keep the signature: the heaviest ink cluster plus clusters beside it on the same text line.

    Works on a 4x reduced copy (clusters are coarse by nature), which keeps it to about a millisecond.
    """
    h, w = mask.shape
    f = 4
    small = (cv2.resize(mask * 255, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    k = max(3, int(0.04 * max(h, w) / f))
    grown = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    if n <= 2:
        return mask
    mass = np.bincount(labels[small.astype(bool)], minlength=n).astype(np.float64)
    mass[0] = 0
    main = int(np.argmax(mass))
    my, mh = stats[main, cv2.CC_STAT_TOP], stats[main, cv2.CC_STAT_HEIGHT]
    keep = np.zeros(n, dtype=bool)
    keep[main] = True
    for i in range(1, n):
        if i == main or mass[i] == 0:
            continue
        y, hh = stats[i, cv2.CC_STAT_TOP], stats[i, cv2.CC_STAT_HEIGHT]
        overlap = min(my + mh, y + hh) - max(my, y)
        if mass[i] >= 0.25 * mass[main] and overlap > 0.3 * min(mh, hh):
            keep[i] = True
        elif mass[i] >= 0.6 * mass[main]:
            keep[i] = True
    if keep[1:].all():
        return mask
    region = keep[labels].astype(np.uint8)
    region = cv2.resize(region, (w, h), interpolation=cv2.INTER_NEAREST)
    region = cv2.dilate(region, np.ones((f + 1, f + 1), np.uint8))
    return region & mask


def _place(mask: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    bx, by, bw, bh = cv2.boundingRect(mask)
    x0, x1, y0, y1 = bx, bx + bw, by, by + bh
    crop = mask[y0:y1, x0:x1].astype(np.float32)
    H, W = cfg.input_height, cfg.input_width
    avail_h, avail_w = H * (1 - 2 * cfg.margin), W * (1 - 2 * cfg.margin)
    ch, cw = crop.shape
    s = min(avail_h / ch, avail_w / cw)
    nh, nw = max(1, int(round(ch * s))), max(1, int(round(cw * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    small = cv2.resize(crop * 255.0, (nw, nh), interpolation=interp)
    # centre of mass of the ink goes to the canvas centre, as far as the ink still fits
    m = cv2.moments(small)
    cy = m["m01"] / m["m00"] if m["m00"] > 0 else nh / 2
    cx = m["m10"] / m["m00"] if m["m00"] > 0 else nw / 2
    top = int(round(H / 2 - cy))
    left = int(round(W / 2 - cx))
    top = min(max(top, 0), H - nh)
    left = min(max(left, 0), W - nw)
    canvas = np.zeros((H, W), np.float32)
    canvas[top : top + nh, left : left + nw] = small
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8), (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def preprocess(
    image: np.ndarray,
    config: PreprocessConfig | None = None,
    keep_stages: bool = False,
    crop: tuple[int, int, int, int] | None = None,
    document: bool | None = None,
) -> Preprocessed:
    """Preprocess an RGB (H, W, 3) or grey (H, W) uint8 image into the network input.

    ``crop`` (x, y, w, h in the image's pixels): use only that rectangle, cleaned as a document.
    ``document``: None (default) decides by itself - a clean signature crop keeps the original pipeline
    unchanged, a page with printed structure (cheque, form, signature-field scan) gets the signature
    located (``sigverify.imaging.locate``) and cleaned as a document (``sigverify.imaging.document``);
    True forces the document path, False the clean-crop path. ``Preprocessed.region`` says where the
    signature was taken from, in the original image's pixels.
    """
    cfg = config or PreprocessConfig()
    if image is None or image.size == 0 or image.ndim not in (2, 3):
        raise BlankImageError("empty image")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if crop is not None:
        return _preprocess_document(image, cfg, keep_stages, _clip_crop(crop, image.shape), ["crop given"], "crop")
    if document is None and max(image.shape[:2]) < DOCUMENT_MIN_SIDE:
        # Cheap gate first: the automatic document path is only for whole pages (long side >= 1000 px),
        # so a smaller image is a clean crop whatever the analysis would find - skip it (~16 ms).
        return _preprocess_clean(image, cfg, keep_stages)
    if document is not False:
        from sigverify.imaging.locate import analyse

        a = analyse(image, score=True)
        # Automatic document handling only for whole pages (cheques, forms: printed fields around the
        # signature). A signature-field scan or a signature on a ruled line keeps the clean-crop pipeline
        # (which already removes straight ruled lines) unless asked: the document cleaning is not yet
        # better than it there (tests/test_locate.py marks the known gaps).
        page = a.is_document and "many fields" in a.reasons and max(image.shape[:2]) >= DOCUMENT_MIN_SIDE
        if page or (document and not a.blank):
            if a.region is None:
                raise BlankImageError(
                    "no signature found: the page has printed fields ("
                    + ", ".join(a.reasons)
                    + ") but no handwritten signature was found on it - crop it by hand if "
                    "there is one"
                )
            return _preprocess_document(image, cfg, keep_stages, a.region, a.reasons, "located")
    return _preprocess_clean(image, cfg, keep_stages)


def _clip_crop(crop, shape) -> tuple[int, int, int, int]:
    H, W = shape[:2]
    x, y, w, h = (int(v) for v in crop)
    x0, y0 = min(max(0, x), W - 1), min(max(0, y), H - 1)
    x1, y1 = min(W, x + w), min(H, y + h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise BlankImageError(f"the crop rectangle {x},{y},{w},{h} lies outside the {W}x{H} image")
    return (x0, y0, x1 - x0, y1 - y0)


def _preprocess_document(
    image: np.ndarray, cfg: PreprocessConfig, keep_stages: bool, region: tuple[int, int, int, int], cues: list[str], source: str
) -> Preprocessed:
    from sigverify.imaging.document import clean_document

    x, y, w, h = region
    part = np.ascontiguousarray(image[y : y + h, x : x + w])
    mask, skew, stages = clean_document(part, cfg, keep_stages)
    net, bbox = _place(mask, cfg)
    if keep_stages:
        stages = {"region": part, **stages, "input": net}
    return Preprocessed(
        input=net,
        stages=stages,
        bbox=bbox,
        skew_deg=skew,
        ink_fraction=float(mask.mean()),
        region=(int(x), int(y), int(w), int(h)),
        document=True,
        cues=list(cues),
        region_source=source,
    )


def _preprocess_clean(image: np.ndarray, cfg: PreprocessConfig, keep_stages: bool) -> Preprocessed:
    """The clean-crop pipeline (what the shipped model was trained on): keep its output unchanged."""
    h0, w0 = image.shape[:2]
    h, w = image.shape[:2]
    scale = min(1.0, cfg.work_max_side / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    stages: dict[str, np.ndarray] = {}
    grey = _to_grey(image, cfg.remove_stamps)
    flat = _flat_field(grey)
    mask = _threshold(flat, cfg.min_ink_fraction, grey)
    if keep_stages:
        stages["grey"] = grey
        stages["flat"] = flat
        stages["mask"] = (255 - mask * 255).astype(np.uint8)
    skew = 0.0
    if cfg.deskew and cfg.remove_lines and max(mask.shape) >= 200:
        skew = _estimate_skew(mask)
        if skew:
            mask = _rotate(mask, skew, 0)
    if cfg.remove_lines:
        mask = _remove_lines(mask)
    if cfg.select_region:
        mask = _select_region(mask)
    if not mask.any():
        raise BlankImageError("no signature found after removing printed lines")
    if keep_stages:
        stages["cleaned"] = (255 - mask * 255).astype(np.uint8)
    net, bbox = _place(mask, cfg)
    if keep_stages:
        stages["input"] = net
    bx, by, bw, bh = bbox
    if scale < 1.0:
        region = (
            int(bx / scale),
            int(by / scale),
            min(w0, int(math.ceil((bx + bw) / scale))) - int(bx / scale),
            min(h0, int(math.ceil((by + bh) / scale))) - int(by / scale),
        )
    else:
        region = (int(bx), int(by), int(bw), int(bh))
    return Preprocessed(input=net, stages=stages, bbox=bbox, skew_deg=skew, ink_fraction=float(mask.mean()), region=region)


def preprocess_named(
    image: np.ndarray,
    name: str,
    config: PreprocessConfig | None = None,
    keep_stages: bool = False,
    crop: tuple[int, int, int, int] | None = None,
    document: bool | None = None,
) -> Preprocessed:
    """``preprocess`` for a loaded file: a blank-page error names it, and with ``keep_stages`` the loaded
    image is kept as ``stages['original']``."""
    try:
        out = preprocess(image, config, keep_stages, crop=crop, document=document)
    except BlankImageError as exc:
        raise BlankImageError(f"{name}: {exc}") from exc
    if keep_stages:
        out.stages = {"original": image, **out.stages}
    return out


def preprocess_file(
    path: str | os.PathLike,
    config: PreprocessConfig | None = None,
    keep_stages: bool = False,
    crop: tuple[int, int, int, int] | None = None,
    document: bool | None = None,
) -> Preprocessed:
    from sigverify.imaging.load import load_image

    return preprocess_named(load_image(path), os.path.basename(str(path)), config, keep_stages, crop, document)
