"""Synthetic test images (never dataset scans)."""

from __future__ import annotations

import numpy as np

from sigverify.samples import draw_signature


def signature(name: str = "Alice Smith", seed: int = 0, variation: float = 0.6, size=(240, 640)) -> np.ndarray:
    """A synthetic grey signature (uint8, dark ink on white)."""
    return draw_signature(name, seed, variation=variation, size=size)


def rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)
