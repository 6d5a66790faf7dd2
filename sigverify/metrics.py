"""Verification error metrics on distances (lower = same writer): ROC, EER, AUC. numpy only, no Qt.

One module below ``verify`` (calibration) and ``train`` (evaluation, fine-tuning), so neither imports
the other for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EER:
    eer: float
    threshold: float


def roc_curve(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (thresholds, far, frr) for accept-if-distance<=t, over every distinct score."""
    pos = np.sort(np.asarray(pos, np.float64))
    neg = np.sort(np.asarray(neg, np.float64))
    ts = np.unique(np.concatenate([[-np.inf], pos, neg]))
    far = np.searchsorted(neg, ts, side="right") / max(len(neg), 1)
    frr = 1.0 - np.searchsorted(pos, ts, side="right") / max(len(pos), 1)
    return ts, far, frr


def eer(pos: np.ndarray, neg: np.ndarray) -> EER:
    """Equal error rate, linearly interpolated where FAR and FRR cross along the ROC curve."""
    if len(pos) == 0 or len(neg) == 0:
        return EER(float("nan"), float("nan"))
    ts, far, frr = roc_curve(pos, neg)
    diff = far - frr  # increasing from -1 to +1
    i = int(np.searchsorted(diff, 0.0))
    if i == 0:
        return EER(float(frr[0]), float(ts[1] if len(ts) > 1 else ts[0]))
    if i >= len(ts):
        return EER(float(far[-1]), float(ts[-1]))
    d0, d1 = diff[i - 1], diff[i]
    w = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    e = (1 - w) * (far[i - 1] + frr[i - 1]) / 2 + w * (far[i] + frr[i]) / 2
    t0 = ts[i - 1] if np.isfinite(ts[i - 1]) else ts[i]
    return EER(float(e), float(t0 + w * (ts[i] - t0)))


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(distance of a random positive < distance of a random negative), ties counting half
    (the Mann-Whitney U statistic over |pos| * |neg|)."""
    pos = np.sort(np.asarray(pos, np.float64))
    neg = np.asarray(neg, np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    below = np.searchsorted(pos, neg, side="left")  # positives strictly closer than each negative
    ties = np.searchsorted(pos, neg, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (len(pos) * len(neg)))


def rates_at(pos: np.ndarray, neg: np.ndarray, threshold: float) -> tuple[float | None, float | None]:
    """(FAR on ``neg``, FRR on ``pos``) when accepting distance <= ``threshold`` (None for an empty side)."""
    pos, neg = np.asarray(pos), np.asarray(neg)
    far = float((neg <= threshold).mean()) if len(neg) else None
    frr = float((pos > threshold).mean()) if len(pos) else None
    return far, frr


__all__ = ["EER", "roc_curve", "eer", "auc", "rates_at"]
