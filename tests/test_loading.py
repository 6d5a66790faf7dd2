"""Every loader case of the core issue: formats, bit depths, colour modes, EXIF, and clear errors."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import rgb, signature
from PIL import Image

from sigverify.errors import BlankImageError, ImageLoadError
from sigverify.imaging import load as load_mod
from sigverify.imaging import load_image, load_image_bytes, preprocess_file


@pytest.fixture(scope="module")
def sig():
    return signature(size=(200, 520))


def _ink_bbox(arr):
    grey = arr.mean(2) if arr.ndim == 3 else arr
    ys, xs = np.nonzero(grey < 128)
    return xs.min(), ys.min(), xs.max(), ys.max()


@pytest.mark.parametrize(
    "fmt,suffix,kw",
    [
        ("PNG", ".png", {}),
        ("JPEG", ".jpg", {"quality": 92}),
        ("TIFF", ".tif", {}),
        ("BMP", ".bmp", {}),
        ("WEBP", ".webp", {"lossless": True}),
    ],
)
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


@pytest.mark.parametrize(
    "data,needle",
    [
        (b"", "empty"),
        (b"%PDF-1.4\n...", "PDF"),
        (b"hello, I am text", "not a recognised image"),
        (bytes(range(256)) * 4, "not a recognised image"),
    ],
)
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


# ---- issue 14: hostile files (FIFOs, devices, PostScript, size caps, memory bound) -------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
def test_fifo_is_refused_without_blocking(tmp_path):
    f = tmp_path / "f.png"
    os.mkfifo(f)  # opening it for reading would block forever without a writer
    with pytest.raises(ImageLoadError, match="named pipe"):
        load_image(f)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_device_file_is_refused_without_reading():
    with pytest.raises(ImageLoadError, match="is a device"):
        load_image("/dev/zero")  # reading it would never end


def test_symlink_to_device_is_refused(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    link = tmp_path / "scan.png"
    link.symlink_to("/dev/zero")
    with pytest.raises(ImageLoadError, match="is a device"):
        load_image(link)


@pytest.mark.parametrize(
    "data",
    [
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{} loop\n",  # would hang Ghostscript
        b"\xc5\xd0\xd3\xc6" + b"\0" * 40,  # DOS EPS binary header
    ],
)
def test_postscript_never_reaches_an_interpreter(tmp_path, data, monkeypatch):
    import PIL.EpsImagePlugin as eps

    def boom(*a, **k):
        raise AssertionError("the EPS plug-in must never be used")

    monkeypatch.setattr(eps, "Ghostscript", boom)
    monkeypatch.setattr(eps.EpsImageFile, "_open", boom)
    p = tmp_path / "cheque.png"
    p.write_bytes(data)
    with pytest.raises(ImageLoadError, match="not an image|not a recognised image"):
        load_image(p)


def test_only_allow_listed_decoders(tmp_path, sig):
    for fmt in ("GIF", "PPM", "TGA", "ICO"):
        b = io.BytesIO()
        Image.fromarray(sig[:200, :250]).save(b, fmt)
        with pytest.raises(ImageLoadError, match="not supported|not a recognised image"):
            load_image_bytes(b.getvalue(), f"x.{fmt.lower()}")


def test_byte_cap_is_checked_before_reading(tmp_path, sig, monkeypatch):
    p = tmp_path / "s.png"
    Image.fromarray(sig).save(p)
    monkeypatch.setattr(load_mod, "MAX_FILE_BYTES", p.stat().st_size - 1)
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(p)
    assert not opened  # refused from the size alone


def test_over_long_path_and_non_utf8_name(tmp_path, sig):
    with pytest.raises(ImageLoadError, match="too long"):
        load_image(tmp_path / ("x" * 300 + ".png"))
    name = os.fsdecode(b"caf\xe9-sig.png")  # Latin-1 bytes: not valid UTF-8
    p = tmp_path / name
    Image.fromarray(sig).save(p, "PNG")
    assert load_image(p).shape == sig.shape + (3,)
    q = tmp_path / os.fsdecode(b"bad\xff.png")
    q.write_bytes(b"junk")
    with pytest.raises(ImageLoadError) as err:
        load_image(q)
    str(err.value).encode("utf-8")  # the message is printable text (no lone surrogates)
    assert "\ufffd" in str(err.value)


def test_large_image_is_reduced_before_any_full_size_copy(tmp_path):
    """A 6000x6000 RGBA PNG (over the 16 Mpx decode budget) is reduced in strips; the preprocessed input
    matches the one from a copy drawn at a quarter of the size."""
    from sigverify.imaging.preprocess import preprocess

    small = signature(size=(300, 300))
    big = cv2_resize(small, 20)
    a = np.zeros(big.shape + (4,), np.uint8)
    a[..., 3] = 255 - big
    p = tmp_path / "big.png"
    Image.fromarray(a, "RGBA").save(p)
    arr = load_image(p)
    assert arr.shape[0] * arr.shape[1] <= load_mod.DECODE_PIXELS
    ref = preprocess(rgb(cv2_resize(small, arr.shape[0] // 300))).input.astype(float)
    got = preprocess(arr).input.astype(float)
    assert np.corrcoef(ref.ravel(), got.ravel())[0, 1] > 0.97


def cv2_resize(grey, factor):
    import cv2

    return cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def test_exif_orientation_applies_to_reduced_images(tmp_path, monkeypatch):
    img = np.full((200, 400), 255, np.uint8)
    img[20:60, 20:120] = 0  # ink top-left
    im = Image.fromarray(img)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    p = tmp_path / "o.jpg"
    im.save(p, exif=exif, quality=95)
    monkeypatch.setattr(load_mod, "DECODE_PIXELS", 200 * 400 // 4)  # force a reduction by 2
    arr = load_image(p)
    assert arr.shape[:2] == (200, 100)  # portrait after rotation, half size
    x0, y0, x1, y1 = _ink_bbox(arr)
    assert x0 > 50 and y0 < 30  # the ink is now top-right


_PEAK = r"""
import resource, sys
from sigverify.imaging.load import load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
a = load_image(sys.argv[1])
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, a.shape[0], a.shape[1])
"""

_MAKE = r"""
import sys
from PIL import Image, ImageDraw
n = int(sys.argv[2])
im = Image.new("RGBA", (n, n), (0, 0, 0, 0))
d = ImageDraw.Draw(im)
for i in range(40):
    d.line((i * 150, 100, n - 100, n - i * 120), fill=(0, 0, 0, 255), width=9)
im.save(sys.argv[1])
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux behaviour")
def test_peak_memory_of_one_large_image_is_bounded(tmp_path):
    """Issue 14: a 7700x7700 RGBA PNG (a few hundred KB) used to peak at 2.8 GB (full-size float copies).
    The bound now is the decoded 8-bit image (4 bytes/px = 237 MB here) + one quarter-size copy;
    measured ~300 MiB (2718 MiB with the old loader). Fresh subprocesses: the peak is this image's alone."""
    p = tmp_path / "big.png"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    subprocess.run([sys.executable, "-c", _MAKE, str(p), "7700"], check=True, env=env, timeout=120)
    assert p.stat().st_size < 2_000_000
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(p)], check=True, env=env, capture_output=True, text=True, timeout=120
    ).stdout.split()
    peak_mib, h, w = float(out[0]), int(out[1]), int(out[2])
    assert h * w <= load_mod.DECODE_PIXELS
    assert peak_mib < 450, f"peak grew by {peak_mib:.0f} MiB"
