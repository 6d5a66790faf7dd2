"""Property-based tests (hypothesis): preprocessing and loading never fail in an unexpected way.

For any uint8 image of 8..400 px a side, grey or RGB, ``preprocess`` returns exactly a (150, 220)
uint8 network input - or raises a ``SigverifyError`` with a message. Nothing else, ever.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from sigverify.errors import ImageLoadError, SigverifyError
from sigverify.imaging.load import load_image_bytes
from sigverify.imaging.preprocess import PreprocessConfig, preprocess

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = ("noise", "constant", "strokes", "strokes_on_tint", "lines_and_strokes", "gradient", "salt")


def _render(kind: str, h: int, w: int, rgb: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        img = rng.integers(0, 256, (h, w, 3) if rgb else (h, w), dtype=np.uint8)
        return img
    if kind == "constant":
        v = int(rng.integers(0, 256))
        return np.full((h, w, 3) if rgb else (h, w), v, np.uint8)
    if kind == "gradient":
        g = np.linspace(int(rng.integers(0, 256)), int(rng.integers(0, 256)), w)[None, :].repeat(h, 0)
        img = g.astype(np.uint8)
    elif kind == "salt":
        img = np.full((h, w), 250, np.uint8)
        img[rng.random((h, w)) < rng.uniform(0, 0.05)] = 0
    else:
        paper = int(rng.integers(170, 256)) if kind == "strokes_on_tint" else 255
        img = np.full((h, w), paper, np.uint8)
        for _ in range(int(rng.integers(1, 8))):
            pts = np.stack([rng.integers(0, w, 6), rng.integers(0, h, 6)], axis=1).astype(np.int32)
            cv2.polylines(img, [pts], False, int(rng.integers(0, 120)), int(rng.integers(1, 4)))
        if kind == "lines_and_strokes":
            y = int(rng.integers(0, h))
            cv2.line(img, (0, y), (w - 1, y), 60, 1)
            x = int(rng.integers(0, w))
            cv2.line(img, (x, 0), (x, h - 1), 60, 1)
    if rgb:
        img = np.repeat(img[:, :, None], 3, axis=2)
        if kind in ("strokes", "lines_and_strokes"):  # a red stamp-coloured blob on some
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.circle(img, c, max(2, min(h, w) // 6), (220, 30, 40), 2)
    return img


def _check(img: np.ndarray, cfg: PreprocessConfig | None = None) -> None:
    try:
        out = preprocess(img, cfg)
    except SigverifyError as exc:
        assert str(exc), "an error must carry a message"
        return
    x = out.input
    assert x.shape == (150, 220) and x.dtype == np.uint8
    assert np.isfinite(x.astype(np.float32)).all()
    assert x.max() > 0, "a success must contain ink"
    assert 0.0 <= out.ink_fraction <= 1.0


@SETTINGS
@given(
    h=st.integers(8, 400), w=st.integers(8, 400), rgb=st.booleans(), kind=st.sampled_from(KINDS), seed=st.integers(0, 2**31 - 1)
)
def test_preprocess_any_image_gives_input_or_clear_error(h, w, rgb, kind, seed):
    _check(_render(kind, h, w, rgb, seed))


@SETTINGS
@given(
    img=hnp.arrays(
        np.uint8,
        st.tuples(st.integers(8, 48), st.integers(8, 48)) | st.tuples(st.integers(8, 48), st.integers(8, 48), st.just(3)),
    )
)
def test_preprocess_arbitrary_small_arrays(img):
    _check(img)


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(8, 400),
    w=st.integers(8, 400),
    seed=st.integers(0, 2**31 - 1),
    remove_lines=st.booleans(),
    select_region=st.booleans(),
    deskew=st.booleans(),
    margin=st.floats(0.0, 0.3),
)
def test_preprocess_any_config(h, w, seed, remove_lines, select_region, deskew, margin):
    cfg = PreprocessConfig(remove_lines=remove_lines, select_region=select_region, deskew=deskew, margin=margin)
    _check(_render("lines_and_strokes", h, w, True, seed), cfg)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(8, 300), w=st.integers(8, 300), seed=st.integers(0, 2**31 - 1))
def test_preprocess_is_deterministic(h, w, seed):
    img = _render("strokes", h, w, False, seed)
    try:
        a = preprocess(img).input
    except SigverifyError:
        return
    assert np.array_equal(a, preprocess(img.copy()).input)


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=2048),
    prefix=st.sampled_from(
        [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"II*\x00", b"MM\x00*", b"BM", b"RIFF", b"GIF89a", b"%PDF"]
    ),
)
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_load_bytes_never_crashes(data, prefix):
    try:
        img = load_image_bytes(prefix + data, name="fuzz.png")
    except ImageLoadError as exc:
        assert str(exc).startswith("fuzz.png: ")
        return
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


@settings(max_examples=30, deadline=None)
@given(
    img=hnp.arrays(np.uint8, st.tuples(st.integers(8, 64), st.integers(8, 64), st.sampled_from([1, 3, 4]))),
    fmt=st.sampled_from(["PNG", "BMP", "TIFF", "WEBP"]),
)
def test_lossless_round_trip(img, fmt):
    if img.shape[2] == 1:
        img = img[:, :, 0]
    elif img.shape[2] == 4 and fmt == "BMP":  # Pillow's BMP alpha handling is not ours to test
        img = img[:, :, :3]
    if fmt == "WEBP":
        pytest.importorskip("PIL.WebPImagePlugin")
    b = io.BytesIO()
    kw = {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(img).save(b, fmt, **kw)
    out = load_image_bytes(b.getvalue())
    if img.ndim == 2:
        assert np.array_equal(out[..., 0], img) and np.array_equal(out[..., 1], img)
    elif img.shape[2] == 3:
        assert np.array_equal(out, img)
    else:  # RGBA: composited over white
        a = img[..., 3:4].astype(np.float64) / 255
        expect = np.clip(img[..., :3] * a + 255 * (1 - a) + 0.5, 0, 255).astype(np.uint8)
        assert np.abs(out.astype(int) - expect.astype(int)).max() <= 1
