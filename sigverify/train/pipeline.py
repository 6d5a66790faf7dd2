"""End-to-end jobs shared by the CLI and the GUI: train a model from a data folder, calibrate it on
validation writers, evaluate it writer-independently and write it with its card."""

from __future__ import annotations

import hashlib
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sigverify.imaging.preprocess import PreprocessConfig
from sigverify.model.card import METRICS, ModelCard
from sigverify.model.network import SigNet
from sigverify.progress import Progress
from sigverify.train.cache import CachedSet, build_cache
from sigverify.train.datasets import SignatureSet, WriterSplit, scan_root, split_writers
from sigverify.train.evaluate import EvalResult, evaluate_embeddings
from sigverify.train.trainer import TrainConfig, embed_cached, train
from sigverify.verify.calibration import fit_calibration

DATA_TERMS = (
    "Trained on research datasets (CEDAR; ICDAR SigComp 2011 Dutch; BHSig260 Hindi) published "
    "for research use; cite their authors. Not trained on any bank's customers: fine-tune on "
    "your own references before relying on it."
)


def cached_set(
    data: SignatureSet,
    cfg: PreprocessConfig,
    cache_dir: str | os.PathLike | None,
    progress=None,
    should_stop=None,
    augment_seed: int | None = None,
    workers: int = 0,
) -> CachedSet:
    """Preprocess ``data`` once; reuse a cache file keyed by file list + preprocessing parameters."""
    if cache_dir is None:
        return build_cache(data, cfg, workers, progress, should_stop, augment_seed)
    key = hashlib.sha256(repr((sorted(s.path for s in data.samples), cfg.to_dict(), augment_seed)).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"cache-{key}.npz"
    if path.exists():
        return CachedSet.load(path)
    c = build_cache(data, cfg, workers, progress, should_stop, augment_seed)
    c.save(path)
    return c


def _align(variant: CachedSet, clean: CachedSet) -> CachedSet:
    """Variant images in ``clean``'s order; where the messy copy failed, the clean image stands in."""
    pos = {p: i for i, p in enumerate(variant.paths)}
    imgs = (
        np.stack([variant.images[pos[p]] if p in pos else clean.images[j] for j, p in enumerate(clean.paths)])
        if len(clean.paths)
        else clean.images
    )
    return CachedSet(imgs, clean.writers, clean.genuine, clean.datasets, clean.paths, clean.digests, [])


def calibrate(net: SigNet, val: CachedSet, device) -> dict:
    emb = embed_cached(net, val.images, device)
    out = {}
    for metric in METRICS:
        r = evaluate_embeddings(emb, val.writers, val.genuine, val.digests, metric)
        out[metric] = fit_calibration(r.distances["pos"], r.distances["skilled"], r.distances["random"]).__dict__
    return out


def evaluate_set(net: SigNet, data: CachedSet, device, metric: str, threshold: float | None) -> dict[str, EvalResult]:
    """Per dataset, plus "all" pooled when there are several."""
    emb = embed_cached(net, data.images, device)
    out = {}
    for ds in sorted(set(map(str, data.datasets))):
        m = data.datasets == ds
        out[ds] = evaluate_embeddings(emb[m], data.writers[m], data.genuine[m], data.digests[m], metric, threshold)
    if len(out) > 1:
        out["all"] = evaluate_embeddings(emb, data.writers, data.genuine, data.digests, metric, threshold)
    return out


@dataclass
class TrainJobResult:
    model_path: Path
    card: ModelCard
    test: dict[str, EvalResult]
    split: WriterSplit
    seconds: float


def train_job(
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    cfg: TrainConfig,
    *,
    name: str | None = None,
    split: WriterSplit | None = None,
    cache_dir: str | os.PathLike | None = None,
    scan_variants: int = 0,
    preprocess: PreprocessConfig | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int = 0,
    init: str | os.PathLike | None = None,
    name_identities: bool = False,
) -> TrainJobResult:
    """``init``: start from this model's weights (fine-tune the whole trunk) instead of random ones.
    ``name_identities``: collections whose writers signed several names (crossmedia-zh) are learned per
    (writer, name), with other writers' images of the same name as hard negatives (train/identities.py)."""
    from sigverify.model.embedder import resolve_device
    from sigverify.model.weights import save_model

    t0 = time.perf_counter()
    pcfg = preprocess or PreprocessConfig()
    data = scan_root(data_dir)
    split = split or split_writers(data, seed=cfg.seed)
    say = (lambda f, m: progress(f, m, {})) if progress else None

    def stage(lo, hi):
        return (lambda f, m: say(lo + (hi - lo) * f, m)) if say else None

    full = cached_set(data, pcfg, cache_dir, stage(0, 0.05), should_stop, None, workers)
    variants = [cached_set(data, pcfg, cache_dir, stage(0.05, 0.1), should_stop, s + 1, workers) for s in range(scan_variants)]
    tr_mask = np.isin(full.writers, split.train)
    variants = [_align(v, full.select(tr_mask)) for v in variants]
    trn, val, tst = full.select(tr_mask), full.of_writers(split.val), full.of_writers(split.test)
    if name_identities:
        from sigverify.train.identities import name_identities as relabel

        trn, val, tst = relabel(trn, 12, cfg.seed), relabel(val, 8, cfg.seed + 1), relabel(tst, 8, cfg.seed + 2)
        variants = [relabel(v, 12, cfg.seed) for v in variants]
    start = None
    if init is not None:
        from sigverify.model.weights import load_model

        start = load_model(init, "cpu").network

    def tprog(f, m, row):
        if progress:
            progress(0.1 + 0.85 * f, m, row)

    net, state = train(
        trn,
        val,
        cfg,
        variants=variants,
        init=start,
        checkpoint=checkpoint,
        resume=resume,
        progress=tprog,
        should_stop=should_stop,
    )
    device = resolve_device(cfg.device)
    cal = calibrate(net, val, device) if len(val.images) else {}
    metric = "euclidean"
    thr = cal[metric]["eer_threshold"] if cal else None
    test = evaluate_set(net, tst, device, metric, thr) if len(tst.images) else {}
    card = ModelCard(
        name=name or Path(out).stem,
        architecture=cfg.architecture,
        embedding_dim=net.embedding_dim,
        preprocessing=pcfg.to_dict(),
        distance=metric,
        calibration=cal,
        training={
            "data": str(data_dir),
            "datasets": data.datasets,
            "writers": {"train": len(split.train), "val": len(split.val), "test": len(split.test)},
            "split": {"train": split.train, "val": split.val, "test": split.test, "seed": split.seed},
            "images": int(len(trn.images)),
            "scan_variants": len(variants),
            "config": cfg.to_dict(),
            "init": str(init) if init else None,
            "name_identities": name_identities,
            "best_step": state.best_step,
            "seconds": round(time.perf_counter() - t0, 1),
            "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
            "host": f"{platform.system()} {platform.machine()}, torch {torch.__version__}",
            "terms": DATA_TERMS,
            "history": [h for h in state.history if "val_eer" in h],
        },
        metrics={"test": {k: v.to_dict() for k, v in test.items()}},
    )
    path = save_model(net, card, out)
    if progress:
        progress(1.0, f"saved {path}", {})
    return TrainJobResult(path, card, test, split, time.perf_counter() - t0)
