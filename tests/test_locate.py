"""Signatures on documents: locating them on cheques, cleaning a document region, the locate CLI and
--crop / region in compare and verify. Every image is drawn here (sigverify.samples), never a dataset scan."""

import json

import cv2
import numpy as np
import pytest
from helpers import rgb, signature

from sigverify.cli import main
from sigverify.errors import BlankImageError
from sigverify.imaging import locate as L
from sigverify.imaging.preprocess import PreprocessConfig, preprocess
from sigverify.imaging.synth_cheque import LAYOUTS_HELD_OUT, LAYOUTS_TRAIN, box_iou, make_cheque, signature_area

# Known gaps (issue 15, not reached yet): measured failures kept visible instead of deleted.
GAP = pytest.mark.xfail(strict=False, reason="known gap of the document path (see docs/cheques.md)")
UNSIGNED_GAP = pytest.mark.xfail(
    strict=False,
    reason="unsigned pages: the dense locator still fires on a stamp or handwriting near the signature line on "
    "some (8 of 12 validation cheques reported 'no signature'; see docs/cheques.md)",
)


def hands():
    return [signature("Bob Jones", 7, size=(200, 560)), signature("Carla Diaz", 8, size=(200, 560))]


@pytest.fixture(scope="module")
def cheques():
    out = []
    for i, layout in enumerate(LAYOUTS_TRAIN[:2] + LAYOUTS_HELD_OUT):
        out.append(make_cheque(signature("Alice Smith", 20 + i, size=(260, 700)), hands(), 300 + i, layout=layout))
    return out


def ink_iou(a, b):
    k = np.ones((3, 3), np.uint8)
    a, b = cv2.dilate((a > 96).astype(np.uint8), k) > 0, cv2.dilate((b > 96).astype(np.uint8), k) > 0
    return (a & b).sum() / max((a | b).sum(), 1)


# ------------------------------------------------------------------------------------------ locating


def test_signature_located_on_cheques_including_held_out_layouts(cheques):
    for c in cheques:
        loc = L.locate(c.image)
        assert loc.is_document and loc.signature_found, c.layout
        assert box_iou(loc.region, c.signature_box) >= 0.5, (c.layout, loc.region, c.signature_box)


@GAP
def test_region_is_in_original_pixels_and_used_by_preprocess(cheques):
    c = cheques[0]
    pre = preprocess(c.image, keep_stages=True)
    assert pre.document and pre.region_source == "located"
    x, y, w, h = pre.region
    H, W = c.image.shape[:2]
    assert 0 <= x and 0 <= y and x + w <= W and y + h <= H
    assert box_iou(pre.region, c.signature_box) >= 0.5
    # what the network sees is the signature alone: close to the same signature preprocessed clean
    sig_only = preprocess(signature("Alice Smith", 20, size=(260, 700))).input
    assert ink_iou(pre.input, sig_only) > 0.35
    for k in ("region", "grey", "mask", "lines", "cleaned", "input"):
        assert k in pre.stages and pre.stages[k].dtype == np.uint8


@UNSIGNED_GAP
def test_unsigned_cheque_is_no_signature_never_compared():
    c = make_cheque(None, hands(), 77, layout="uk", stamps=1)
    loc = L.locate(c.image)
    assert loc.is_document and not loc.signature_found and loc.region is None
    with pytest.raises(BlankImageError) as e:
        preprocess(c.image)
    assert e.value.exit_code == 5 and "no signature" in str(e.value)


def test_clean_crop_is_not_a_document_and_keeps_the_trained_pipeline():
    for name, seed in (("Alice Smith", 1), ("Bob Jones", 2), ("Eve Martin", 3)):
        sig = signature(name, seed, size=(240, 640))
        a = L.analyse(sig)
        assert not a.is_document, a.reasons
        pre = preprocess(sig)
        assert pre.region_source == "ink" and not pre.document
        assert np.array_equal(pre.input, preprocess(sig, document=False).input)
        # the region of a clean crop is its ink
        ys, xs = np.nonzero(sig < 128)
        x, y, w, h = pre.region
        assert x <= xs.min() + 2 and y <= ys.min() + 2 and x + w >= xs.max() - 2 and y + h >= ys.max() - 2


def test_deterministic(cheques):
    c = cheques[1]
    a, b = preprocess(c.image), preprocess(c.image)
    assert a.region == b.region and np.array_equal(a.input, b.input)


# ------------------------------------------------------------------------------ cleaning a document


@pytest.fixture(scope="module")
def sig():
    return signature("Alice Smith", 1, size=(240, 640))


def _on_field(sig, angle=0.0, line=True, label=True):
    """The signature on a signature field: a printed line running past it, a printed label; the whole
    field scanned ``angle`` degrees off (the signature turns with the line, as on a skewed scan)."""
    h, w = sig.shape
    page = np.full((h + 120, w + 300), 250, np.uint8)
    page[40 : 40 + h, 150 : 150 + w] = np.minimum(page[40 : 40 + h, 150 : 150 + w], sig)
    ys, xs = np.nonzero(sig < 128)
    y = 40 + int(np.percentile(ys, 80))
    if line:
        cv2.line(page, (20, y), (page.shape[1] - 20, y), 50, 3, cv2.LINE_AA)
    if label:
        cv2.putText(page, "AUTHORISED SIGNATURE", (40, y + 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 40, 2, cv2.LINE_AA)
    if angle:
        H, W = page.shape
        m = cv2.getRotationMatrix2D((W / 2, H / 2), angle, 1.0)
        page = cv2.warpAffine(page, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=250)
    return page


@pytest.mark.parametrize("angle", [0.0, 4.0, -8.0])
def test_printed_line_at_an_angle_removed_crossing_strokes_kept(sig, angle):
    base = preprocess(sig).input
    page = _on_field(sig, angle)
    pre = preprocess(page, keep_stages=True, document=True)
    assert pre.document
    raw = preprocess(page, PreprocessConfig(remove_lines=False), document=False).input
    assert ink_iou(pre.input, base) > ink_iou(raw, base) + 0.1
    if not angle:
        assert ink_iou(pre.input, base) > 0.6
    else:
        assert abs(pre.skew_deg + angle) < 1.0  # deskewed from the line: the signature turned back
        # the same field scanned as skewed but without its line cannot be deskewed: the line is what helps
        unlined = preprocess(_on_field(sig, angle, line=False, label=False), document=True).input
        assert ink_iou(pre.input, base) > ink_iou(unlined, base) + 0.1
        assert ink_iou(pre.input, base) > (0.6 if abs(angle) <= 5 else 0.4)


@pytest.mark.parametrize("angle", [0.0, 6.0, -10.0])
def test_erase_lines_keeps_strokes_that_cross(angle):
    m = np.zeros((300, 800), np.uint8)
    dy = np.tan(np.radians(angle)) * 700
    p1, p2 = (50, int(150 + dy / 2)), (750, int(150 - dy / 2))
    cv2.line(m, p1, p2, 1, 3)
    for x in (200, 400, 600):  # pen strokes crossing the line
        cv2.line(m, (x - 20, 60), (x + 20, 240), 1, 4)
    lines = L.find_lines(m, 200)
    assert lines, "the printed line was not found"
    out = L.erase_lines(m, lines)
    # the line is gone away from the strokes ...
    line_only = np.zeros_like(m)
    cv2.line(line_only, p1, p2, 1, 3)
    far = line_only.copy()
    for x in (200, 400, 600):
        far[:, x - 40 : x + 41] = 0
    assert out[far.astype(bool)].mean() < 0.05
    # ... and every crossing stroke is still one connected piece across it
    for x in (200, 400, 600):
        n, _ = cv2.connectedComponents(out[:, x - 35 : x + 36])
        assert n - 1 == 1, (angle, x)


def _stamped(page, colour):
    """A stamp (ring with a word, box with a date) inked over the page: stamp ink darkens what is under
    it (multiplied, as ink on paper), it does not paint over the signature."""
    layer = np.zeros(page.shape[:2], np.uint8)
    cx, cy = page.shape[1] // 2 + 120, page.shape[0] // 2
    cv2.circle(layer, (cx, cy), 90, 255, 6, cv2.LINE_AA)
    cv2.putText(layer, "PAID", (cx - 55, cy + 15), cv2.FONT_HERSHEY_SIMPLEX, 1.3, 255, 4, cv2.LINE_AA)
    cv2.rectangle(layer, (40, 30), (230, 110), 255, 5)
    cv2.putText(layer, "12 MAR 2024", (52, 80), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 255, 2, cv2.LINE_AA)
    a = (layer.astype(np.float32) / 255.0)[..., None]
    tint = np.array(colour, np.float32) / 250.0
    return np.clip(page.astype(np.float32) * (1 - a + a * tint), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "colour",
    [
        (200, 30, 40),
        pytest.param(
            (40, 70, 190),
            marks=pytest.mark.xfail(
                strict=False, reason="a stamp of the pen's own colour over the signature: needs shape-based ring removal"
            ),
        ),
        (120, 120, 120),
        (30, 30, 30),
    ],
)
def test_stamps_of_any_colour_removed(sig, colour):
    blue_ink = np.array([20, 40, 160], np.float32)
    alpha = (255 - sig.astype(np.float32)) / 255.0
    page = np.full(sig.shape + (3,), 250, np.float32) * (1 - alpha[..., None]) + blue_ink * alpha[..., None]
    page = _frame(page.astype(np.uint8))
    clean_input = preprocess(page, document=True).input
    stamped = _stamped(page, colour)
    out = preprocess(stamped, document=True).input
    kept = preprocess(stamped, PreprocessConfig(remove_stamps=False), document=True).input
    assert ink_iou(out, clean_input) > 0.6, colour
    assert ink_iou(out, clean_input) > ink_iou(kept, clean_input) + 0.1


def _frame(img):
    """A signature-field scan: the printed line and label around a signature."""
    h, w = img.shape[:2]
    page = np.full((h + 140, w + 300, 3), 250, np.uint8)
    page[40 : 40 + h, 150 : 150 + w] = img
    y = 40 + int(0.8 * h)
    cv2.line(page, (20, y), (page.shape[1] - 20, y), (50, 50, 50), 3, cv2.LINE_AA)
    cv2.putText(page, "SIGNATURE", (40, y + 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (40, 40, 40), 2, cv2.LINE_AA)
    return page


def test_printed_label_near_signature_dropped(sig):
    base = preprocess(sig).input
    page = _on_field(sig, line=True, label=True)
    assert ink_iou(preprocess(page, document=True).input, base) > 0.6


def test_crop_rectangle_is_used_and_reported(sig):
    page = _on_field(sig)
    h, w = sig.shape
    pre = preprocess(page, crop=(100, 20, w + 100, h + 60))
    assert pre.region == (100, 20, w + 100, h + 60) and pre.region_source == "crop" and pre.document
    with pytest.raises(BlankImageError):
        preprocess(page, crop=(page.shape[1] + 5, 0, 50, 50))
    with pytest.raises(ValueError):
        L.parse_crop("1,2,3")


def test_signature_area_scan_located(cheques):
    c = cheques[0]
    area, box = signature_area(c, 1)
    pre = preprocess(area)
    assert box_iou(pre.region, box) >= 0.4


# --------------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def files(tmp_path_factory, cheques):
    d = tmp_path_factory.mktemp("locate")
    paths = {}
    cv2.imwrite(str(d / "cheque.jpg"), cheques[0].image[..., ::-1])
    cv2.imwrite(str(d / "unsigned.jpg"), make_cheque(None, hands(), 78, layout="us").image[..., ::-1])
    cv2.imwrite(str(d / "clean.png"), signature("Alice Smith", 21, size=(240, 640)))
    cv2.imwrite(str(d / "clean2.png"), signature("Alice Smith", 22, size=(240, 640)))
    for k in ("cheque.jpg", "unsigned.jpg", "clean.png", "clean2.png"):
        paths[k.split(".")[0]] = str(d / k)
    return paths


def _json(capsys, argv):
    code = main(argv + ["--json"])
    return code, json.loads(capsys.readouterr().out)


def test_cli_locate_json(capsys, files, cheques):
    code, out = _json(capsys, ["locate", files["cheque"], files["clean"]])
    assert code == 0 and [set(("path", "region", "signature_found")) <= set(o) for o in out] == [True, True]
    assert out[0]["signature_found"] and box_iou(out[0]["region"], cheques[0].signature_box) >= 0.5
    assert out[1]["region_source"] == "ink" and not out[1]["document"]


@UNSIGNED_GAP
def test_cli_locate_unsigned_is_no_signature(capsys, files):
    code, out = _json(capsys, ["locate", files["unsigned"], files["clean"]])
    assert code == 5 and out[0]["region"] is None and out[0]["signature_found"] is False and out[1]["signature_found"]


@UNSIGNED_GAP
def test_cli_compare_unsigned_is_no_signature(capsys, files):
    code, d = _json(capsys, ["compare", files["unsigned"], files["clean"]])
    assert code == 5 and "no signature" in d["error"]


def test_cli_compare_reports_regions_and_takes_crop(capsys, files, cheques):
    code, d = _json(capsys, ["compare", files["cheque"], files["clean"]])
    assert box_iou(d["regions"]["a"]["region"], cheques[0].signature_box) >= 0.5
    assert d["regions"]["b"]["region_source"] == "ink"
    x, y, w, h = cheques[0].signature_box
    crop = f"{max(0, x - 30)},{max(0, y - 30)},{w + 60},{h + 60}"
    code, d = _json(capsys, ["compare", files["cheque"], files["clean"], "--crop", crop])
    assert d["regions"]["a"]["region"] == [int(v) for v in crop.split(",")]
    assert d["regions"]["a"]["region_source"] == "crop"


def test_cli_verify_reports_regions(capsys, files):
    code, d = _json(capsys, ["verify", files["cheque"], files["clean"], files["clean2"]])
    assert d["regions"]["questioned"]["region_source"] == "located"
    assert [r["region_source"] for r in d["regions"]["references"]] == ["ink", "ink"]
    code, d = _json(capsys, ["verify", files["cheque"], files["clean"], "--crop", "10,10,400,200"])
    assert d["regions"]["questioned"]["region"] == [10, 10, 400, 200]


def test_colour_and_grey_cheque_agree(cheques):
    c = cheques[2]
    grey = cv2.cvtColor(c.image, cv2.COLOR_RGB2GRAY)
    a, b = L.locate(c.image), L.locate(rgb(grey))
    assert a.signature_found and b.signature_found
    assert box_iou(a.region, b.region) > 0.5
