"""Every loader case of the core issue: formats, bit depths, colour modes, EXIF, and clear errors."""

import io

import numpy as np
import pytest
from PIL import Image

from sigverify.errors import BlankImageError, ImageLoadError
from sigverify.imaging import load_image, load_image_bytes, preprocess_file

from helpers import rgb, signature


@pytest.fixture(scope="module")
def sig():
    return signature(size=(200, 520))


def _ink_bbox(arr):
    grey = arr.mean(2) if arr.ndim == 3 else arr
    ys, xs = np.nonzero(grey < 128)
    return xs.min(), ys.min(), xs.max(), ys.max()


@pytest.mark.parametrize("fmt,suffix,kw", [
    ("PNG", ".png", {}), ("JPEG", ".jpg", {"quality": 92}), ("TIFF", ".tif", {}), ("BMP", ".bmp", {}),
    ("WEBP", ".webp", {"lossless": True}),
])
def test_formats_load_to_rgb(tmp_path, sig, fmt, suffix, kw):
    p = tmp_path / f"s{suffix}"
    Image.fromarray(sig).save(p, fmt, **kw)
    arr = load_image(p)
    assert arr.dtype == np.uint8 and arr.shape == sig.shape + (3,)
    assert abs(float(arr.mean()) - float(sig.mean())) < 3
    assert preprocess_file(p).input.shape == (150, 220)


def test_16bit_grey_png_is_scaled(tmp_path, sig):
    p = tmp_path / "s16.png"
    Image.fromarray(sig.astype(np.uint16) * 257).save(p)
    arr = load_image(p)
    assert arr.dtype == np.uint8
    assert np.abs(arr[..., 0].astype(int) - sig).max() <= 1


def test_rgba_alpha_composited_over_white(tmp_path, sig):
    a = np.zeros(sig.shape + (4,), np.uint8)
    a[..., 3] = 255 - sig  # black ink only where alpha says so; transparent elsewhere
    p = tmp_path / "alpha.png"
    Image.fromarray(a, "RGBA").save(p)
    arr = load_image(p)
    assert min(arr[0, 0].tolist()) >= 240  # (almost) transparent -> white paper
    assert (arr.mean(2) < 100).sum() > 100  # ink visible


def test_palette_and_bilevel(tmp_path, sig):
    p = tmp_path / "pal.png"
    Image.fromarray(rgb(sig)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(p)
    assert load_image(p).shape == sig.shape + (3,)
    b = tmp_path / "bw.png"
    Image.fromarray(sig).convert("1").save(b)
    assert preprocess_file(b).input.max() == 255


def test_cmyk_jpeg(tmp_path, sig):
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb(sig)).convert("CMYK").save(p, "JPEG", quality=95)
    arr = load_image(p)
    assert arr.shape == sig.shape + (3,)
    assert abs(float(arr.mean()) - float(sig.mean())) < 12


def test_multipage_tiff_uses_first_page(tmp_path, sig):
    p = tmp_path / "multi.tif"
    blank = Image.fromarray(np.full_like(sig, 255))
    Image.fromarray(sig).save(p, save_all=True, append_images=[blank])
    arr = load_image(p)
    assert (arr.mean(2) < 128).sum() > 100  # page 1 has the ink, page 2 is blank


def test_exif_orientation_is_applied(tmp_path):
    img = np.full((100, 300), 255, np.uint8)
    img[40:60, 10:120] = 0  # ink on the left
    p = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    Image.fromarray(img).save(p, "JPEG", exif=exif.tobytes(), quality=95)
    arr = load_image(p)
    assert arr.shape[:2] == (300, 100)  # transposed
    x0, y0, x1, y1 = _ink_bbox(arr)
    assert y1 < 150  # the ink that was on the left is now at the top


@pytest.mark.parametrize("data,needle", [
    (b"", "empty"),
    (b"%PDF-1.4\n...", "PDF"),
    (b"hello, I am text", "not a recognised image"),
    (bytes(range(256)) * 4, "not a recognised image"),
])
def test_bad_bytes_clear_errors(data, needle):
    with pytest.raises(ImageLoadError, match=needle):
        load_image_bytes(data, "x.png")


def test_truncated_png(tmp_path, sig):
    buf = io.BytesIO()
    Image.fromarray(sig).save(buf, "PNG")
    p = tmp_path / "trunc.png"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match="truncated|damaged"):
        load_image(p)


def test_missing_dir_and_symlink(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)
    link = tmp_path / "dangling.png"
    link.symlink_to(tmp_path / "gone.png")
    with pytest.raises(ImageLoadError, match="link"):
        load_image(link)


def test_decompression_bomb_rejected_without_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000), 1).save(p)  # tiny file, 144 Mpx
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(p)


def test_blank_page_is_reported(tmp_path):
    p = tmp_path / "white.png"
    Image.fromarray(np.full((300, 500), 250, np.uint8)).save(p)
    with pytest.raises(BlankImageError, match="no signature"):
        preprocess_file(p)
