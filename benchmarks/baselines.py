"""Reference points for the shipped model, measured with the EVALUATION.md protocol on the same
test writers: (1) plain normalised cross-correlation of the preprocessed inputs, (2) the same
network with random (untrained) weights, (3) a trained model, (4) score fusion of a trained model's
distance with the cross-correlation distance, the weight chosen on the split's validation writers.

    python benchmarks/baselines.py --data ../shared/data --split runs/split.json \
        [--model assets/models/sigverify-base.safetensors]

Prints one row per dataset and method: skilled EER, random EER, AUC.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from sigverify.model.embedder import open_model
from sigverify.model.weights import random_model
from sigverify.train.datasets import WriterSplit, scan_root
from sigverify.train.evaluate import evaluate_embeddings
from sigverify.train.pipeline import cached_set
from sigverify.train.trainer import embed_cached


def xcorr_embeddings(images: np.ndarray) -> np.ndarray:
    """Blurred, downsampled, zero-mean unit-norm pixel vectors: Euclidean distance between them is a
    monotone function of normalised cross-correlation."""
    out = []
    for im in images:
        small = cv2.resize(cv2.GaussianBlur(im, (0, 0), 2.0), (110, 75), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
        small -= small.mean()
        out.append(small / max(np.linalg.norm(small), 1e-6))
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--split", required=True)
    ap.add_argument("--part", default="test")
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--cache-dir", default="cache")
    a = ap.parse_args()
    split = WriterSplit.load(a.split)
    data = scan_root(a.data).subset(getattr(split, a.part))
    models = {"random-init signet-s": random_model()}
    for m in a.model:
        lm = open_model(m)
        models[lm.card.name] = lm
    cs = cached_set(data, next(iter(models.values())).card.preprocess_config, a.cache_dir)
    embs = {"cross-correlation": xcorr_embeddings(cs.images)}
    for name, lm in models.items():
        embs[name] = embed_cached(lm.network, cs.images, torch.device("cpu"))
    fusion = {}
    if a.model:  # choose the fusion weight on validation writers, never on the reported ones
        val = cached_set(scan_root(a.data).subset(split.val), next(iter(models.values())).card.preprocess_config, a.cache_dir)
        lm = open_model(a.model[0])
        ev_net = embed_cached(lm.network, val.images, torch.device("cpu"))
        ev_x = xcorr_embeddings(val.images)
        best = None
        for lam in (0.0, 0.25, 0.5, 1.0, 2.0):
            # concatenating scaled vectors = fusing squared Euclidean distances: d^2 = d_net^2 + lam * d_x^2
            r = evaluate_embeddings(np.hstack([ev_net, np.sqrt(lam) * ev_x]), val.writers, val.genuine, val.digests)
            score = r.eer + r.eer_random
            print(f"validation fusion lambda={lam}: skilled EER {100 * r.eer:.1f}% random {100 * r.eer_random:.1f}%")
            if best is None or score < best[0]:
                best = (score, lam)
        lam = best[1]
        fusion[f"fusion net+xcorr (lambda={lam})"] = np.hstack([embs[lm.card.name], np.sqrt(lam) * embs["cross-correlation"]])
    embs.update(fusion)
    print(f"{'dataset':20s} {'method':28s} {'skilled EER':>12s} {'random EER':>11s} {'AUC':>6s} writers")
    for ds in sorted(set(map(str, cs.datasets))):
        m = cs.datasets == ds
        for name, e in embs.items():
            r = evaluate_embeddings(e[m], cs.writers[m], cs.genuine[m], cs.digests[m], "euclidean")
            print(f"{ds:20s} {name:28s} {100 * r.eer:11.1f}% {100 * r.eer_random:10.1f}% {r.auc:6.3f} {r.writers}")


if __name__ == "__main__":
    main()
