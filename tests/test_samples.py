"""Tests for the synthetic signature generator (sigverify.samples)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sigverify.samples import draw_cheque_scan, draw_signature, write_demo_samples

SMALL = (150, 400)  # (H, W): keeps the tests fast


def _norm_mask(img: np.ndarray, shape=(48, 128)) -> np.ndarray:
    """Ink mask cropped to its bounding box, resized and slightly dilated."""
    ink = img < 128
    ys, xs = np.nonzero(ink)
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8) * 255
    small = cv2.resize(crop, (shape[1], shape[0]), interpolation=cv2.INTER_AREA) > 0
    return cv2.dilate(small.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ma, mb = _norm_mask(a), _norm_mask(b)
    return float((ma & mb).sum() / max(1, (ma | mb).sum()))


def test_deterministic():
    a = draw_signature("Alice", 7, variation=0.8, size=SMALL)
    b = draw_signature("Alice", 7, variation=0.8, size=SMALL)
    assert np.array_equal(a, b)
    f1 = draw_signature("Alice", 7, variation=0.5, forged=True, size=SMALL)
    f2 = draw_signature("Alice", 7, variation=0.5, forged=True, size=SMALL)
    assert np.array_equal(f1, f2)


@pytest.mark.parametrize("forged", [False, True])
def test_image_format(forged):
    img = draw_signature("Bob Martens", 3, variation=0.7, forged=forged, size=SMALL)
    assert img.dtype == np.uint8
    assert img.shape == SMALL
    ink = (img < 128).mean()
    assert 0.005 < ink < 0.25, ink  # has ink, but mostly paper
    assert np.median(img) > 230  # white-ish background
    assert img.min() < 80  # dark ink
    # margins stay clear: the signature is inside the image
    border = np.concatenate([img[:2].ravel(), img[-2:].ravel(), img[:, :2].ravel(), img[:, -2:].ravel()])
    assert border.min() > 200


def test_default_size():
    assert draw_signature("Carol", 0).shape == (300, 800)


def test_genuine_variation_closer_than_other_names():
    names = ["Alice", "Bob Martens", "Zoe Kowalczyk"]
    for name in names:
        g1 = draw_signature(name, 1, variation=0.7, size=SMALL)
        g2 = draw_signature(name, 2, variation=0.7, size=SMALL)
        assert not np.array_equal(g1, g2)  # natural variation
        same = _iou(g1, g2)
        for other in names:
            if other == name:
                continue
            o = draw_signature(other, 1, variation=0.7, size=SMALL)
            assert same > _iou(g1, o) + 0.1, (name, other)


def test_forgery_differs_from_genuine():
    g = draw_signature("Alice", 1, variation=0.0, size=SMALL)
    f = draw_signature("Alice", 1, variation=0.0, forged=True, size=SMALL)
    assert not np.array_equal(g, f)


def test_cheque_scan_is_colour():
    img = draw_cheque_scan("Alice", 1, size=SMALL)
    assert img.dtype == np.uint8 and img.shape == SMALL + (3,)
    b, g, r = (img[..., i].astype(int) for i in range(3))
    assert ((b - r) > 60).mean() > 0.003  # blue ink present


def test_write_demo_samples(tmp_path):
    paths = write_demo_samples(tmp_path)
    names = {p.name for p in paths}
    assert {"alice_ref1.png", "alice_questioned_forgery.png", "bob_ref2.png", "alice_cheque_scan.jpg"} <= names
    for p in paths:
        assert p.stat().st_size < 60_000
        assert cv2.imread(str(p)) is not None
