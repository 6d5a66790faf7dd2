"""Load any image a clerk may bring into an RGB uint8 array, safely.

Pillow does the decoding (EXIF orientation, palette, CMYK JPEG, 16-bit, multi-page TIFF, WebP) and
its decompression-bomb guard; everything that can go wrong becomes an ``ImageLoadError`` with a
message a clerk can act on.

Guards, in the order they apply (each before any work the next one would do):

1. **Regular files only**: ``os.stat`` before opening; folders, FIFOs, sockets and device nodes
   (``/dev/zero``, ``mkfifo f.png``) are refused without being opened, and the opened descriptor is
   checked again (``fstat``) so a file swapped for a FIFO in between is refused too.
2. **Byte cap** (``MAX_FILE_BYTES``): the size is checked before reading and at most the cap + 1 bytes
   are ever read.
3. **Format allow-list** (``ALLOWED_FORMATS``): only PNG, JPEG, TIFF, BMP and WebP decoders are
   consulted (``Image.open(..., formats=...)``); PostScript / EPS (which Pillow would hand to
   Ghostscript), PDF and every other plug-in are never reached.
4. **Pixel limit** (``MAX_PIXELS``, from the header) and Pillow's bomb guard.
5. **Pixel budget** (``DECODE_PIXELS``): a larger image is reduced *in the decoder* where the format
   allows it (JPEG ``draft``: 1/2, 1/4, 1/8 scale) and otherwise by an integer box ``reduce`` right after
   decoding, before any conversion, transpose or float copy; the colour conversions work in row chunks.

Memory bound for one image of W x H <= 60 Mpx above the budget: the decoded 8-bit image (at most 4
bytes per pixel: 240 MB at the limit; a JPEG is decoded at 1/2-1/8 scale instead) + the reduced image
(<= 16 Mpx x 4 bytes) + its uint8 RGB array; conversions and float temporaries work on strips / row
chunks. Only one such image is decoded at a time per process (``_LARGE_DECODE``), so a batch with 4
reader threads adds at most 3 images under the budget (<= 16 Mpx each). Measured (test_loading): a
7700 x 7700 RGBA PNG raises the peak RSS of a fresh process by ~300 MiB (it was 2.7 GiB before).
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import stat
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sigverify.atomic import file_kind
from sigverify.errors import ImageLoadError
from sigverify.safetext import display_name

#: Largest image accepted (pixels). A 600 dpi A4 page is ~35 Mpx; anything far above is a bomb.
MAX_PIXELS = 60_000_000
#: Images above this many pixels are reduced (integer factor) before any full-size copy is made.
DECODE_PIXELS = 16_000_000
#: Largest image file read (bytes), checked before reading.
MAX_FILE_BYTES = 50 * 1024 * 1024
SUPPORTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
#: The only Pillow decoders ever consulted (MPO is how Pillow names multi-picture camera JPEGs).
ALLOWED_FORMATS = ("PNG", "JPEG", "MPO", "TIFF", "BMP", "DIB", "WEBP")
_CHUNK_ROWS = 512
#: one image above the decode budget is decoded at a time per process (batch runs up to 4 loads at once)
_LARGE_DECODE = threading.BoundedSemaphore(1)


def _open_formats() -> list[str]:
    """The allowed formats that have an opener registered (MPO images are opened by the JPEG one)."""
    Image.init()
    return [f for f in ALLOWED_FORMATS if f in Image.OPEN]


def _file_kind(mode: int) -> str:
    kind = file_kind(mode)
    return kind if kind == "not a regular file" else f"{kind}, not an image file"


def read_image_file(path: str | os.PathLike, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular image file, refusing folders, devices, FIFOs and over-large files
    before reading (never blocks on a FIFO, never reads more than ``max_bytes`` + 1 bytes)."""
    max_bytes = MAX_FILE_BYTES if max_bytes is None else int(max_bytes)
    p = Path(path)
    name = display_name(p.name) or display_name(str(p))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise ImageLoadError(f"{name}: the link points to a file that does not exist") from None
        raise ImageLoadError(f"{display_name(str(p))}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ImageLoadError(f"{name[:80]}...: the path is too long") from exc
        if exc.errno == errno.ENOTDIR:
            raise ImageLoadError(f"{display_name(str(p))}: no such file") from exc
        raise ImageLoadError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise ImageLoadError(f"{name}: is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageLoadError(f"{name}: is {_file_kind(st.st_mode)}")
    if st.st_size > max_bytes:
        raise ImageLoadError(
            f"{name}: the file is too large ({st.st_size / 1e6:.0f} MB; limit {max_bytes / 1e6:.0f} MB) for a signature image"
        )
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise ImageLoadError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    try:
        st2 = os.fstat(fd)
        if not stat.S_ISREG(st2.st_mode):  # swapped between stat and open
            raise ImageLoadError(f"{name}: is {_file_kind(st2.st_mode)}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ImageLoadError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ImageLoadError(f"{name}: the file is too large (limit {max_bytes / 1e6:.0f} MB) for a signature image")
    return data


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file and return an (H, W, 3) uint8 RGB array (alpha composited over white)."""
    p = Path(path)
    return load_image_bytes(read_image_file(p), name=display_name(p.name))


def _grey3(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """RGBA uint8 -> RGB uint8, alpha over white, in row chunks (bounded float temporaries)."""
    h = rgba.shape[0]
    out = np.empty(rgba.shape[:2] + (3,), np.uint8)
    for y in range(0, h, _CHUNK_ROWS):
        part = rgba[y : y + _CHUNK_ROWS]
        alpha = part[:, :, 3:4].astype(np.float32) / 255.0
        o = part[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        out[y : y + _CHUNK_ROWS] = np.clip(o + 0.5, 0, 255).astype(np.uint8)
    return out


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img)
        hi = float(arr.max()) if arr.size else 0.0
        scale = 255.0 / (65535.0 if hi > 255 else max(hi, 255.0))
        grey = np.empty(arr.shape, np.uint8)
        for y in range(0, arr.shape[0], _CHUNK_ROWS):
            grey[y : y + _CHUNK_ROWS] = np.clip(arr[y : y + _CHUNK_ROWS].astype(np.float64) * scale + 0.5, 0, 255)
        return _grey3(grey)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo) if hi > lo else np.ones_like(arr)
        grey = np.clip(np.nan_to_num(arr, nan=1.0) * 255 + 0.5, 0, 255).astype(np.uint8)
        return _grey3(grey)
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("LA", "La", "PA"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "RGBa"):
        rgba = np.asarray(img.convert("RGBA") if mode != "RGBA" else img)
        a8 = rgba[:, :, 3]
        rgb8 = rgba[:, :, :3]
        if a8.min() != a8.max() and rgb8.min() == rgb8.max() and rgb8.min() > 127:
            # Alpha-only image: the colour channels are one light value and the shape lives in the
            # alpha channel alone (a mask exported by a drawing tool). The alpha is the ink.
            return _grey3((255 - a8).astype(np.uint8))
        return _composite_over_white(rgba)
    if mode == "1":
        img = img.convert("L")
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def reduce_factor(w: int, h: int, budget: int | None = None) -> int:
    """Smallest integer factor that brings a W x H image within ``budget`` pixels (``DECODE_PIXELS``)."""
    budget = DECODE_PIXELS if budget is None else budget
    if w * h <= budget:
        return 1
    return int(math.ceil(math.sqrt(w * h / budget)))


_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _reduce_in_strips(img: Image.Image, k: int, rows_out: int = 64) -> Image.Image:
    """Box-reduce ``img`` by ``k`` strip by strip, so no full-size copy or conversion is ever made
    (Pillow's own ``reduce`` of an RGBA image converts it to premultiplied RGBa at full size first).
    Each strip is reduced by Pillow (premultiplied alpha, so compositing the result over white equals
    compositing then reducing); the EXIF orientation is applied to the small result."""
    w, h = img.size
    ow, oh = max(1, w // k), max(1, h // k)
    mode = img.mode
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in img.info):
        target, work = "RGBA", "RGBa"
    elif mode.startswith("I"):
        target = work = "I"
    elif mode == "F":
        target = work = "F"
    elif mode in ("L", "1"):
        target = work = "L"
    else:
        target = work = "RGB"
    out = Image.new(target, (ow, oh))
    for oy in range(0, oh, rows_out):
        n = min(rows_out, oh - oy)
        strip = img.crop((0, oy * k, ow * k, (oy + n) * k))
        if strip.mode != work:
            strip = strip.convert(work)
        small = strip.reduce(k)
        if small.mode != target:
            small = small.convert(target)
        out.paste(small, (0, oy))
    method = _ORIENTATION.get(img.getexif().get(0x0112, 1))
    return out.transpose(method) if method is not None else out


def _not_an_image_message(data: bytes, name: str) -> str:
    head = data[:16].lstrip()
    if head.startswith(b"%!PS") or data[:4] == b"\xc5\xd0\xd3\xc6":
        return f"{name}: is a PostScript / EPS document, not an image; export the signature as PNG or JPEG"
    if head.startswith(b"GIF8"):
        return f"{name}: GIF images are not supported (supported: PNG, JPEG, TIFF, BMP, WebP)"
    return f"{name}: not a recognised image (supported: PNG, JPEG, TIFF, BMP, WebP)"


def load_image_bytes(data: bytes, name: str = "image") -> np.ndarray:
    """Decode image bytes (from a file or the clipboard) to (H, W, 3) uint8 RGB."""
    name = display_name(name)
    if not data:
        raise ImageLoadError(f"{name}: the file is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise ImageLoadError(f"{name}: the image is too large (limit {MAX_FILE_BYTES / 1e6:.0f} MB)")
    head = data[:8]
    if head.startswith(b"%PDF"):
        raise ImageLoadError(f"{name}: is a PDF document, not an image; export the page as PNG or JPEG")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=_open_formats())
            if img.format not in ALLOWED_FORMATS:  # defence in depth: never decode anything else
                raise ImageLoadError(_not_an_image_message(data, name))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageLoadError(
                    f"{name}: image is too large ({w}x{h} = {w * h / 1e6:.0f} Mpx; limit "
                    f"{MAX_PIXELS / 1e6:.0f} Mpx). Scan the signature at 300 dpi or crop it."
                )
            if w < 8 or h < 8:
                raise ImageLoadError(f"{name}: image is too small ({w}x{h} pixels) to hold a signature")
            try:
                img.seek(0)  # first page of a multi-page TIFF
            except EOFError:
                pass
            k = reduce_factor(w, h)
            with _LARGE_DECODE if k > 1 else contextlib.nullcontext():
                if k > 1 and img.format in ("JPEG", "MPO"):
                    img.draft(None, (max(8, w // k), max(8, h // k)))  # decode at 1/2, 1/4 or 1/8 scale
                img.load()
                k = reduce_factor(*img.size)
                # a reduced image already carries the EXIF orientation (applied on the small copy)
                img = _reduce_in_strips(img, k) if k > 1 else ImageOps.exif_transpose(img)
            if img.mode == "CMYK":
                img = img.convert("RGB")
            return _to_rgb(img)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"{name}: image is too large to open safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(_not_an_image_message(data, name)) from exc
    except (OSError, SyntaxError, ValueError, EOFError, TypeError) as exc:
        msg = str(exc)
        if "truncated" in msg.lower() or isinstance(exc, EOFError):
            raise ImageLoadError(f"{name}: the image file is truncated or damaged") from exc
        raise ImageLoadError(f"{name}: the image file is damaged or unsupported ({msg})") from exc
    except MemoryError as exc:
        raise ImageLoadError(f"{name}: not enough memory to open this image") from exc


def decode_and_preprocess(data: bytes, name: str, config=None, keep_stages: bool = False):
    """Image bytes (a stored specimen, a batch file) -> ``Preprocessed`` (the original under
    ``stages['original']`` when ``keep_stages``)."""
    from sigverify.imaging.preprocess import preprocess_named

    return preprocess_named(load_image_bytes(data, name=name), name, config, keep_stages)
