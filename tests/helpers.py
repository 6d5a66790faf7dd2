"""Synthetic test images (never dataset scans)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sigverify.samples import draw_signature


def signature(name: str = "Alice Smith", seed: int = 0, variation: float = 0.6, size=(240, 640)) -> np.ndarray:
    """A synthetic grey signature (uint8, dark ink on white)."""
    return draw_signature(name, seed, variation=variation, size=size)


def rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


NAMES = ["Alice Smith", "Bob Jones", "Carla Diaz", "Dmitri Ivanov", "Eve Martin", "Farid Khan"]


def make_set(root: Path, n_writers: int = 6, n_gen: int = 4, n_forg: int = 2, size=(160, 420)) -> Path:
    """A tiny data folder in the training layout: ``root/writer<i>/{genuine,forgery}/<n>.png``."""
    for w, name in enumerate(NAMES[:n_writers]):
        for kind, n, forged in (("genuine", n_gen, False), ("forgery", n_forg, True)):
            d = Path(root) / f"writer{w}" / kind
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = draw_signature(name, 100 * w + i + (50 if forged else 0), variation=0.6, forged=forged, size=size)
                cv2.imwrite(str(d / f"{i}.png"), img)
    return Path(root)


SMALL = (90, 240)  # small synthetic signatures keep the library/batch tests fast


def write_sig(path, name: str = "Alice Smith", seed: int = 0, forged: bool = False, size=SMALL) -> Path:
    """Write one small synthetic signature PNG (creating its folder) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), draw_signature(name, seed, variation=0.6, forged=forged, size=size))
    return path
