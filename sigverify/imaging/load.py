"""Load any image a clerk may bring into an RGB uint8 array.

Pillow does the decoding (EXIF orientation, palette, CMYK JPEG, 16-bit, multi-page TIFF, WebP) and
its decompression-bomb guard; everything that can go wrong becomes an ``ImageLoadError`` with a
message a clerk can act on.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sigverify.errors import ImageLoadError

#: Largest image accepted (pixels). A 600 dpi A4 page is ~35 Mpx; anything far above is a bomb.
MAX_PIXELS = 60_000_000
SUPPORTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file and return an (H, W, 3) uint8 RGB array (alpha composited over white)."""
    p = Path(path)
    if not p.exists():
        if p.is_symlink():
            raise ImageLoadError(f"{p.name}: the link points to a file that does not exist")
        raise ImageLoadError(f"{p}: no such file")
    if p.is_dir():
        raise ImageLoadError(f"{p.name}: is a folder, not an image file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ImageLoadError(f"{p.name}: cannot be read ({exc.strerror or exc})") from exc
    return load_image_bytes(data, name=p.name)


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 0
        scale = 255.0 / (65535.0 if hi > 255 else max(hi, 255.0))
        grey = np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo) if hi > lo else np.ones_like(arr)
        grey = np.clip(np.nan_to_num(arr, nan=1.0) * 255 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("LA", "La", "PA"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "RGBa"):
        rgba = np.asarray(img.convert("RGBA"))
        a8 = rgba[:, :, 3]
        rgb8 = rgba[:, :, :3]
        if a8.min() != a8.max() and rgb8.min() == rgb8.max() and rgb8.min() > 127:
            # Alpha-only image: the colour channels are one light value and the shape lives in the
            # alpha channel alone (a mask exported by a drawing tool). The alpha is the ink.
            grey = (255 - a8).astype(np.uint8)
            return np.repeat(grey[:, :, None], 3, axis=2)
        alpha = a8[:, :, None].astype(np.float32) / 255.0
        out = rgb8.astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if mode == "1":
        img = img.convert("L")
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def load_image_bytes(data: bytes, name: str = "image") -> np.ndarray:
    """Decode image bytes (from a file or the clipboard) to (H, W, 3) uint8 RGB."""
    if not data:
        raise ImageLoadError(f"{name}: the file is empty (0 bytes)")
    head = data[:8]
    if head.startswith(b"%PDF"):
        raise ImageLoadError(f"{name}: is a PDF document, not an image; export the page as PNG or JPEG")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
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
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode == "CMYK":
                img = img.convert("RGB")
            return _to_rgb(img)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"{name}: image is too large to open safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(
            f"{name}: not a recognised image (supported: PNG, JPEG, TIFF, BMP, WebP)"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc)
        if "truncated" in msg.lower() or isinstance(exc, EOFError):
            raise ImageLoadError(f"{name}: the image file is truncated or damaged") from exc
        raise ImageLoadError(f"{name}: the image file is damaged or unsupported ({msg})") from exc
    except MemoryError as exc:
        raise ImageLoadError(f"{name}: not enough memory to open this image") from exc
