"""The writer-dependent stage: a customer's specimens against a shipped cohort of background writers.

A distance alone treats every customer alike. Here each customer gets a linear classifier of their own,
built in closed form at decision time from their K specimen embeddings and a *cohort*: embeddings of
genuine signatures of training writers, shipped beside the model (never images). It is exemplar-LDA
(Hariharan, Malik and Ramanan 2012; the writer-dependent stage of the SigNet-features recipe with a
shared background covariance instead of an SVM per customer):

    w = (S + r * tr(S)/D * I)^-1 (mean(specimens) - mean(cohort))        S: cohort covariance
    lda(q) = 1 - (w.q - w.mean(cohort)) / (w.mean(specimens) - w.mean(cohort))

``lda`` is 0 at the specimens' mean and 1 at the cohort's, so it is comparable across customers. The
decision score mixes it with the mean distance normalised by the specimens' own spread:

    score = (1 - mix) * lda(q) + mix * mean_distance(q, specimens) * ref_spread / spread(specimens)

(with fewer than two specimens the spread is the validation writers' ``ref_spread``). Thresholds for the
score are fitted on validation writers by the clerk's protocol, per number of specimens (model card
``decision``). One decision takes well under a millisecond on a CPU (a 128x128 matrix-vector product).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sigverify.errors import ModelError
from sigverify.verify.distances import pairwise_distances

COHORT_TENSOR = "cohort"


@dataclass
class Cohort:
    embeddings: np.ndarray  # (M, D) float32
    mean: np.ndarray  # (D,)
    inv: np.ndarray  # (D, D) regularised inverse covariance
    reg: float

    @classmethod
    def from_embeddings(cls, emb: np.ndarray, reg: float = 0.1) -> "Cohort":
        emb = np.asarray(emb, np.float64)
        if emb.ndim != 2 or len(emb) < 10 or not np.isfinite(emb).all():
            raise ModelError("a cohort needs at least 10 finite embeddings")
        cov = np.cov(emb.T)
        d = len(cov)
        inv = np.linalg.inv(cov + reg * np.trace(cov) / d * np.eye(d))
        return cls(emb.astype(np.float32), emb.mean(0), inv, float(reg))

    def lda_score(self, q: np.ndarray, refs: np.ndarray) -> float:
        mu_r = np.asarray(refs, np.float64).mean(0)
        w = self.inv @ (mu_r - self.mean)
        a, b = float(w @ self.mean), float(w @ mu_r)
        return 1.0 - (float(w @ np.asarray(q, np.float64)) - a) / max(b - a, 1e-9)


def writer_score(
    q: np.ndarray, refs: np.ndarray, cohort: Cohort, ref_spread: float, mix: float, metric: str = "euclidean"
) -> tuple[float, float | None]:
    """(score, spread of the specimens or None); lower = more like the specimens."""
    refs = np.atleast_2d(refs)
    d = pairwise_distances(np.asarray(q)[None], refs, metric)[0]
    spread = None
    if len(refs) >= 2:
        rr = pairwise_distances(refs, refs, metric)
        spread = float(rr[np.triu_indices(len(refs), 1)].mean())
    norm = spread if spread and spread > 1e-9 else ref_spread
    dist_part = float(d.mean()) * ref_spread / norm
    return (1 - mix) * cohort.lda_score(q, refs) + mix * dist_part, spread


def save_cohort(path: str | os.PathLike, emb: np.ndarray) -> Path:
    from safetensors.numpy import save_file

    from sigverify.atomic import atomic_path

    with atomic_path(path) as tmp:
        save_file({COHORT_TENSOR: np.ascontiguousarray(emb, np.float32)}, str(tmp))
    return Path(path)


def load_cohort(path: str | os.PathLike, sha256: str | None, reg: float) -> Cohort:
    """Load a cohort file; refuse it when its SHA-256 differs from the card's."""
    from safetensors.numpy import load

    from sigverify.hashing import sha256_bytes

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"{p.name}: the model's cohort file cannot be read ({exc})") from exc
    if sha256 and sha256_bytes(data) != sha256:
        raise ModelError(f"{p.name}: cohort file does not match the model card (SHA-256 differs)")
    try:
        emb = load(data)[COHORT_TENSOR]
    except Exception as exc:  # safetensors raises its own error types
        raise ModelError(f"{p.name}: not a cohort file ({exc})") from exc
    return Cohort.from_embeddings(emb, reg)


def with_within_writer_scatter(cohort_emb: np.ndarray, emb: np.ndarray, writers: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``cohort_emb`` plus, for each embedding of ``emb``, its deviation from its own writer's mean added to
    the cohort's mean. The result has the cohort's mean and a covariance that blends the cohort's total
    scatter with the writers' *within-writer* scatter (by count), so the exemplar-LDA direction of
    :meth:`Cohort.lda_score` discounts the directions in which one writer's own signatures vary (Fisher
    LDA). Stored as a plain cohort file: the decision path is unchanged. Writers with one embedding add
    nothing."""
    cohort_emb = np.asarray(cohort_emb, np.float64)
    emb = np.asarray(emb, np.float64)
    mu = cohort_emb.mean(0)
    extra = []
    for w in sorted(set(map(str, writers))):
        m = np.array([str(x) == w for x in writers])
        if m.sum() < 2:
            continue
        e = emb[m]
        extra.append(mu + scale * (e - e.mean(0)) * np.sqrt(len(e) / (len(e) - 1)))
    if not extra:
        return cohort_emb.astype(np.float32)
    return np.concatenate([cohort_emb, *extra]).astype(np.float32)
