"""Preprocessing invariants: shape/range, ink survives, backgrounds and scan defects do not leak."""

import cv2
import numpy as np
import pytest
from helpers import rgb, signature

from sigverify.errors import BlankImageError
from sigverify.imaging import PreprocessConfig, preprocess


def iou(a, b):
    a, b = a > 96, b > 96
    return (a & b).sum() / max((a | b).sum(), 1)


def close(a, b, min_iou=0.6):
    # compare after a 3x3 dilation so one-pixel shifts of thin strokes do not count
    k = np.ones((3, 3), np.uint8)
    return iou(cv2.dilate(a, k), cv2.dilate(b, k)) >= min_iou


@pytest.fixture(scope="module")
def sig():
    return signature("Alice Smith", 1, size=(240, 640))


@pytest.fixture(scope="module")
def base(sig):
    return preprocess(sig).input


def test_shape_range_and_ink(sig, base):
    assert base.shape == (150, 220) and base.dtype == np.uint8
    assert base.max() == 255 and base.min() == 0
    ink = (base > 127).mean()
    assert 0.01 < ink < 0.4
    # border is background (inverted: 0) - the ink is centred with a margin
    assert base[:3].max() < 64 and base[-3:].max() < 64


def test_other_input_size_from_config(sig):
    out = preprocess(sig, PreprocessConfig(input_height=155, input_width=220)).input
    assert out.shape == (155, 220)


def test_deterministic(sig, base):
    assert np.array_equal(preprocess(sig).input, base)


def test_stages_available(sig):
    st = preprocess(sig, keep_stages=True).stages
    for k in ("grey", "flat", "mask", "cleaned", "input"):
        assert k in st and st[k].dtype == np.uint8


@pytest.mark.parametrize("paper", [255, 235, 200, 170])
def test_background_grey_never_leaks(sig, base, paper):
    ink = 255 - sig.astype(np.float32)
    img = np.clip(paper - ink * (paper / 255.0), 0, 255).astype(np.uint8)
    out = preprocess(img).input
    assert close(out, base, 0.75)


def test_uneven_tinted_background(sig, base):
    h, w = sig.shape
    grad = np.linspace(150, 250, w)[None, :].repeat(h, 0)
    tint = np.stack([grad * 0.95, grad, grad * 0.85], 2)
    alpha = (255 - sig.astype(np.float32)) / 255.0
    img = (tint * (1 - alpha[..., None]) + 20 * alpha[..., None]).astype(np.uint8)
    assert close(preprocess(img).input, base, 0.7)


def test_translation_and_scale_barely_matter(sig, base):
    padded = np.full((600, 1400), 255, np.uint8)
    padded[300:540, 700:1340] = sig
    assert close(preprocess(padded).input, base, 0.6)
    other = preprocess(signature("Bob Jones", 1, size=(240, 640))).input
    assert not close(other, base, 0.4)  # a different signature is far below these overlaps
    big = cv2.resize(sig, None, fx=1.6, fy=1.6, interpolation=cv2.INTER_CUBIC)
    assert close(preprocess(big).input, base, 0.6)


def test_ruled_line_through_the_ink_is_removed(sig, base):
    img = sig.copy()
    ys, xs = np.nonzero(sig < 128)
    y = int(np.percentile(ys, 70))
    cv2.line(img, (0, y), (img.shape[1] - 1, y), 60, 2)
    out = preprocess(img).input
    assert close(out, base, 0.6)
    # and the line really was there to remove: without line removal it shows up
    raw = preprocess(img, PreprocessConfig(remove_lines=False)).input
    assert iou(out, base) > iou(raw, base)


def test_red_stamp_dropped_blue_ink_kept(sig, base):
    alpha = (255 - sig.astype(np.float32)) / 255.0
    paper = np.full(sig.shape + (3,), 250, np.float32)
    blue = np.array([20, 40, 160], np.float32)
    img = paper * (1 - alpha[..., None]) + blue * alpha[..., None]
    img = img.astype(np.uint8)
    stamp = img.copy()
    cv2.circle(stamp, (320, 120), 80, (200, 30, 40), 5)
    cv2.putText(stamp, "PAID", (260, 135), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (200, 30, 40), 4)
    out = preprocess(stamp).input
    assert close(out, preprocess(img).input, 0.7)
    assert close(preprocess(img).input, base, 0.7)  # blue ink = same signature as black ink


def test_printed_words_away_from_signature_dropped(sig, base):
    page = np.full((520, 900), 255, np.uint8)
    page[220:460, 130:770] = sig
    cv2.putText(page, "PAY TO THE ORDER OF", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 1)
    out = preprocess(page).input
    assert close(out, base, 0.7)


def test_speckle_and_jpeg(sig, base):
    rng = np.random.default_rng(0)
    img = sig.copy()
    img[rng.integers(0, img.shape[0], 300), rng.integers(0, img.shape[1], 300)] = 0
    assert close(preprocess(img).input, base, 0.7)
    ok, enc = cv2.imencode(".jpg", sig, [cv2.IMWRITE_JPEG_QUALITY, 25])
    assert close(preprocess(cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)).input, base, 0.7)


def test_skewed_scan_still_finds_signature(sig, base):
    h, w = sig.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 4, 1.0)
    rot = cv2.warpAffine(sig, m, (w, h), borderValue=255)
    out = preprocess(rot).input
    assert (out > 127).mean() > 0.01
    assert close(out, base, 0.35)


@pytest.mark.parametrize(
    "img", [np.full((200, 300), 255, np.uint8), np.zeros((200, 300), np.uint8), np.full((200, 300, 3), 128, np.uint8)]
)
def test_blank_and_flat_pages_raise(img):
    with pytest.raises(BlankImageError):
        preprocess(img)


def test_colour_and_grey_give_same_input(sig, base):
    assert close(preprocess(rgb(sig)).input, base, 0.95)
