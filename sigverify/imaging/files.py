"""Which files are images, and folders expanded to their images: the one implementation (no Qt).

``SUPPORTED_SUFFIXES`` (defined beside the loader in ``imaging.load``) is the one list of image file
suffixes; the GUI's file dialogs, the CLI, the library and the data-set scanner all use it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from sigverify.imaging.load import SUPPORTED_SUFFIXES


def is_image_file(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file()


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder`` (not recursive, hidden files too), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)


def expand_images_checked(items: Iterable[str | os.PathLike], max_per_folder: int | None = None) -> tuple[list[str], list[str]]:
    """Files stay as given (the loader judges them); folders become their image files, sorted.

    Returns ``(files, problems)``: a folder without images, or with more than ``max_per_folder``
    (only the first are kept), is a problem sentence, not a silent empty success.
    """
    files: list[str] = []
    problems: list[str] = []
    for it in items:
        p = Path(it)
        if not p.is_dir():
            files.append(str(it))
            continue
        imgs = [str(q) for q in list_images(p)]
        if not imgs:
            problems.append(f"folder '{p.name}' contains no images ({', '.join(s[1:] for s in SUPPORTED_SUFFIXES)})")
        elif max_per_folder is not None and len(imgs) > max_per_folder:
            problems.append(f"folder '{p.name}' has {len(imgs)} images; only the first {max_per_folder} are used")
            imgs = imgs[:max_per_folder]
        files += imgs
    return files, problems


def image_name_filter() -> str:
    """The file-dialog filter for images, from the one suffix list: ``"Images (*.png ...);;All files (*)"``."""
    return "Images (" + " ".join(f"*{s}" for s in SUPPORTED_SUFFIXES) + ");;All files (*)"


def expand_images(items: Iterable[str | os.PathLike]) -> list[str]:
    """``expand_images_checked`` without the problem list (an image-less folder adds nothing)."""
    return expand_images_checked(items)[0]


__all__ = [
    "SUPPORTED_SUFFIXES",
    "is_image_file",
    "list_images",
    "expand_images",
    "expand_images_checked",
    "image_name_filter",
]
