"""Signature identities for collections whose writers signed several names.

In ``crossmedia-zh`` every writer signed the same 10 names (``nameKK_<medium>_NN.png``). A bank
customer has one signature, so the unit a verifier learns is (writer, name): its genuine images are
that writer's images of that name across media, and another writer's image of the *same* name is a
hard "same text, other hand" negative — the closest thing this collection has to a skilled forgery.

``name_identities`` relabels such a collection and adds those hard negatives as forgery rows, so the
trainer (hard negatives in every batch), the validation (a skilled-like EER per collection) and the
evaluation protocols treat it like any collection with forgeries. Other collections pass unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sigverify.train.cache import CachedSet

NAME_RE = re.compile(r"^(name\d+)_", re.IGNORECASE)
NAME_DATASETS = ("crossmedia-zh",)


def name_of(path: str) -> str | None:
    m = NAME_RE.match(Path(str(path)).name)
    return m.group(1).lower() if m else None


def name_identities(
    cs: CachedSet, negatives_per_identity: int = 8, seed: int = 0, datasets: tuple[str, ...] = NAME_DATASETS
) -> CachedSet:
    """Relabel writers of ``datasets`` as ``writer#name`` and add up to ``negatives_per_identity``
    same-name images of other writers (in ``cs``) as that identity's forgeries. Seeded."""
    rng = np.random.default_rng(seed)
    names = np.array([name_of(p) if str(d) in datasets else None for p, d in zip(cs.paths, cs.datasets)], dtype=object)
    touched = np.array([n is not None for n in names])
    if not touched.any():
        return cs
    writers = cs.writers.astype(object).copy()
    for i in np.nonzero(touched)[0]:
        writers[i] = f"{cs.writers[i]}#{names[i]}"
    writers = writers.astype(str)
    rows = [np.arange(len(cs.paths))]
    new_writers = [writers]
    new_genuine = [cs.genuine.copy()]
    gen_touched = touched & cs.genuine
    by_name: dict[tuple[str, str], np.ndarray] = {}
    for n in sorted({names[i] for i in np.nonzero(gen_touched)[0]}):
        for ds in datasets:
            by_name[(ds, n)] = np.nonzero(gen_touched & (names == n) & (cs.datasets == ds))[0]
    extra_idx, extra_w = [], []
    for ident in sorted(set(writers[gen_touched])):
        first = int(np.nonzero(writers == ident)[0][0])
        pool = by_name.get((str(cs.datasets[first]), names[first]), np.zeros(0, int))
        base = cs.writers[first]
        pool = pool[cs.writers[pool] != base]
        if not len(pool) or negatives_per_identity <= 0:
            continue
        take = rng.choice(pool, min(negatives_per_identity, len(pool)), replace=False)
        extra_idx += list(take)
        extra_w += [ident] * len(take)
    if extra_idx:
        ei = np.array(extra_idx)
        rows.append(ei)
        new_writers.append(np.array(extra_w, dtype=str))
        new_genuine.append(np.zeros(len(ei), bool))
    idx = np.concatenate(rows)
    return CachedSet(
        cs.images[idx],
        np.concatenate(new_writers).astype(str),
        np.concatenate(new_genuine),
        cs.datasets[idx],
        cs.paths[idx],
        cs.digests[idx],
        cs.failed,
    )
