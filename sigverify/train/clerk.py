"""The clerk's protocol of ../shared/EVALUATION.md: a questioned signature against K specimens.

For each writer with at least K+1 genuine images (seeded draw): K genuine images are the specimens;
the writer's other genuine images, all its skilled forgeries and as many other writers' genuine images
as questioned genuine ones are the questioned signatures. Each is decided by ``decide`` — the app's own
decision (same aggregate, per-person adaptation, cohort normalisation and card thresholds) — and the
verdict rates a clerk would see are pooled over writers, with the EER of the decision's score (the one
number the thresholds are applied to).
"""

from __future__ import annotations

import random
from typing import Callable

import numpy as np

from sigverify.train.evaluate import eer

#: decide(questioned_embedding, specimen_embeddings) -> (zone, score); lower score = more genuine.
DecideFn = Callable[[np.ndarray, np.ndarray], tuple[str, float]]
KINDS = ("genuine", "skilled", "random")


def _unique(idx: list[int], digests: np.ndarray | None) -> list[int]:
    if digests is None:
        return idx
    seen, out = set(), []
    for i in idx:
        if digests[i] not in seen:
            seen.add(digests[i])
            out.append(i)
    return out


def trials(writers: np.ndarray, genuine: np.ndarray, k: int, digests: np.ndarray | None = None, seed: int = 0):
    """Yield (writer, kind, questioned index, specimen indices) of the protocol at one K (seeded)."""
    by_w: dict[str, tuple[list[int], list[int]]] = {}
    for i, (w, g) in enumerate(zip(map(str, writers), genuine)):
        by_w.setdefault(w, ([], []))[0 if g else 1].append(i)
    all_gen = np.array([i for i, g in enumerate(genuine) if g], dtype=int)
    wstr = np.array(list(map(str, writers)))
    for w in sorted(by_w):
        G, F = by_w[w]
        G = _unique(G, digests)
        if len(G) < k + 1:
            continue
        rng = random.Random(f"{seed}/{k}/{w}")
        spec = rng.sample(G, k)
        qg = [i for i in G if i not in spec]
        others = all_gen[wstr[all_gen] != w] if len(all_gen) else all_gen
        qr = [int(others[rng.randrange(len(others))]) for _ in qg] if len(others) else []
        for kind, qs in (("genuine", qg), ("skilled", F), ("random", qr)):
            for q in qs:
                yield w, kind, q, spec


def clerk_scores(
    emb: np.ndarray,
    writers: np.ndarray,
    genuine: np.ndarray,
    decide: DecideFn,
    k: int,
    digests: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, list[str]], int]:
    """Decision scores and zones by kind at one K, and the number of writers decided."""
    scores: dict[str, list[float]] = {kind: [] for kind in KINDS}
    zones: dict[str, list[str]] = {kind: [] for kind in KINDS}
    seen = set()
    for w, kind, q, spec in trials(writers, genuine, k, digests, seed):
        seen.add(w)
        z, s = decide(emb[q], emb[spec])
        zones[kind].append(z)
        scores[kind].append(s)
    return {kind: np.array(v, np.float64) for kind, v in scores.items()}, zones, len(seen)


def clerk_protocol(
    emb: np.ndarray,
    writers: np.ndarray,
    genuine: np.ndarray,
    decide: DecideFn,
    ks=(1, 3, 5),
    digests: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, dict]:
    """Per K (as a string key): eer, eer_random, verdict fractions, writers and counts."""
    out: dict[str, dict] = {}
    for k in ks:
        scores, zones, n_writers = clerk_scores(emb, writers, genuine, decide, k, digests, seed)
        if not n_writers:
            continue
        pos, sk, rd = (scores[x] for x in KINDS)

        def frac(kind: str, zone: str) -> float | None:
            z = zones[kind]
            return float(np.mean([x == zone for x in z])) if z else None

        out[str(k)] = {
            "eer": eer(pos, sk).eer if len(sk) else None,
            "eer_random": eer(pos, rd).eer if len(rd) else None,
            "genuine_accepted": frac("genuine", "genuine"),
            "genuine_referred": frac("genuine", "refer"),
            "genuine_rejected": frac("genuine", "forgery"),
            "skilled_accepted": frac("skilled", "genuine"),
            "skilled_referred": frac("skilled", "refer"),
            "skilled_rejected": frac("skilled", "forgery"),
            "random_accepted": frac("random", "genuine"),
            "random_referred": frac("random", "refer"),
            "random_rejected": frac("random", "forgery"),
            "writers": n_writers,
            "questioned": {kind: len(zones[kind]) for kind in KINDS},
        }
    return out
