"""Euclidean and cosine distance between embeddings (lower = more alike)."""

from __future__ import annotations

import numpy as np

from sigverify.errors import SigverifyError


def distance(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> float:
    return float(pairwise_distances(a[None], b[None], metric)[0, 0])


def pairwise_distances(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """(N, D) x (M, D) -> (N, M) distances."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if metric == "euclidean":
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return np.sqrt(np.maximum(sq, 0.0))
    if metric == "cosine":
        na = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        nb = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return np.clip(1.0 - na @ nb.T, 0.0, 2.0)
    raise SigverifyError(f"unknown distance metric {metric!r} (use euclidean or cosine)")


def paired_distances(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Row i of ``a`` against row i of ``b``: (N, D) x (N, D) -> (N,) distances."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if metric == "euclidean":
        return np.sqrt(((a - b) ** 2).sum(1))
    if metric == "cosine":
        na = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        nb = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return np.clip(1.0 - (na * nb).sum(1), 0.0, 2.0)
    raise SigverifyError(f"unknown distance metric {metric!r} (use euclidean or cosine)")
