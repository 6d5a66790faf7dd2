"""Offline fine-tuning: adapt a trained model to a bank's own reference signatures in about a minute on CPU.

What is trained, and why it is fast
-----------------------------------
The convolutional trunk of the base model (``SigNet.trunk``: convolutions + two fully-connected layers)
is FROZEN. It runs once over every image (plus ``augment_copies`` lightly augmented copies of each
training image, ``augment_input``) and its features are cached in memory. Only the head - the
``embed`` projection from trunk features to the 128-d embedding - is then trained on those cached
features, with contrastive or triplet (batch-hard / semi-hard) loss: genuine-vs-genuine positives,
skilled forgeries and other writers' genuine signatures (random forgeries) as negatives. A step costs
one small matrix product, so dozens of epochs take seconds; the single trunk pass dominates.

``head="lowrank"`` trains a rank-``rank`` residual update of the projection instead (fewer free
parameters for very small sets). Either way the result merges exactly into the ``embed`` layer, so
the fine-tuned model is a plain SigNet of the base architecture: base trunk + tuned head.

Validation is by writer: ``val_frac`` of the writers are held out, the base and the tuned head are
compared on them every epoch (EER skilled / random), the best epoch is kept, and the decision
thresholds are recalibrated on them. With too few writers for a held-out group the base model's
calibration is kept and the result says so.

Long work reports through ``progress(fraction, message, row)`` and stops within about a second when
``should_stop()`` turns true (``Cancelled``). Nothing is written by :func:`finetune`; saving is a
separate, atomic step (:func:`save_finetuned`). No Qt here.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from sigverify.errors import Cancelled, DataError

ProgressFn = Callable[[float, str, dict], None]
StopFn = Callable[[], bool]

MIN_GENUINE_PER_WRITER = 4  # below this the wizard warns: too few references to learn a writer
MIN_VAL_WRITERS = 2  # a held-out group needs 2+ writers (random forgeries come from other writers)
MIN_TRAIN_WRITERS = 2

LOSSES = ("contrastive", "triplet")
MININGS = ("batch-hard", "semi-hard")
HEADS = ("embed", "lowrank")


@dataclass
class FinetuneConfig:
    epochs: int = 30
    lr: float = 1e-4  # Adam on a pretrained projection (weights ~0.02): larger rates wreck it in a few steps
    loss: str = "triplet"  # or "contrastive" (triplet measured better on held-out real writers)
    mining: str = "batch-hard"  # triplet mining: batch-hard / semi-hard (semi-hard: ~2x slower head steps)
    margin: float = 1.0  # contrastive margin (unit vectors: distances in [0, 2])
    triplet_margin: float = 0.3
    head: str = "embed"  # "embed": the whole projection; "lowrank": a rank-`rank` residual adapter on it
    rank: int = 16
    weight_decay: float = 1e-4
    random_weight: float = 0.0  # share of the pair loss computed with random negatives only (rest: skilled + random)
    anchor_weight: float = 1e-3  # L2 pull of the head back toward the base weights (small sets overfit)
    val_frac: float = 0.3  # fraction of WRITERS held out for validation / calibration
    augment_copies: int = 2  # augmented copies of each training image whose trunk features are cached too
    writers_per_batch: int = 16
    genuine_per_writer: int = 4
    forgeries_per_writer: int = 2
    seed: int = 0
    device: str = "cpu"
    trunk_batch: int = 32

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise DataError(f"unknown loss {self.loss!r} (use {' or '.join(LOSSES)})")
        if self.mining not in MININGS:
            raise DataError(f"unknown mining {self.mining!r} (use {' or '.join(MININGS)})")
        if self.head not in HEADS:
            raise DataError(f"unknown head {self.head!r} (use {' or '.join(HEADS)})")
        if self.epochs < 1:
            raise DataError("epochs must be at least 1")
        if not (0 < self.lr < 1):
            raise DataError("the learning rate must be between 0 and 1")
        if not (0 <= self.val_frac < 1):
            raise DataError("the validation fraction must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)


# ============================================================================ data check (wizard page 1)
@dataclass
class DataReport:
    """What a reference folder holds, and what is wrong with it (shown before fine-tuning)."""

    folder: str
    data: object  # SignatureSet
    cached: object  # CachedSet (preprocessed with ``preprocess``)
    preprocess: dict
    counts: dict[str, dict[str, int]]  # writer -> {"genuine", "forgery", "usable_genuine"}
    warnings: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    blank: list[str] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)
    few_genuine: list[str] = field(default_factory=list)

    @property
    def n_writers(self) -> int:
        return len(self.counts)

    @property
    def n_images(self) -> int:
        return int(len(self.cached.images))

    @property
    def trainable_writers(self) -> int:
        return sum(1 for c in self.counts.values() if c["usable_genuine"] >= 2)

    @property
    def ok(self) -> bool:
        return self.trainable_writers >= MIN_TRAIN_WRITERS

    def summary(self) -> dict:
        g = int(self.cached.genuine.sum()) if len(self.cached.genuine) else 0
        return {"folder": Path(self.folder).name, "writers": self.n_writers, "images": self.n_images,
                "genuine": g, "forgeries": self.n_images - g, "unreadable": len(self.unreadable),
                "blank": len(self.blank), "duplicate_groups": len(self.duplicates)}


def writer_label(writer: str) -> str:
    """'dataset/writer' -> 'writer' for display."""
    return writer.split("/", 1)[1] if "/" in writer else writer


def check_data(folder, preprocess=None, progress: ProgressFn | None = None,
               should_stop: StopFn | None = None, workers: int = 0, name: str | None = None) -> DataReport:
    """Scan and preprocess a reference folder (or a ``SignatureSet``); list per-writer counts and the problems a clerk should
    fix first: writers with fewer than 4 genuine images, unreadable files, blank scans and
    byte-identical duplicate files."""
    from sigverify.imaging.preprocess import PreprocessConfig
    from sigverify.train.cache import build_cache
    from sigverify.train.datasets import scan_root

    from sigverify.train.datasets import SignatureSet

    cfg = preprocess if preprocess is not None else PreprocessConfig()
    if isinstance(folder, SignatureSet):  # an already scanned set (benchmarks: a subset of writers)
        data, folder = folder, name or "selected-writers"
        if not data.samples:
            raise DataError("no signatures selected")
    else:
        data = scan_root(folder)
    say = (lambda f, m: progress(f, m, {})) if progress else None
    cached = build_cache(data, cfg, workers, say, should_stop)
    blank = [p for p, e in cached.failed if "no signature" in e or "blank" in e or "empty image" in e]
    unreadable = [(p, e) for p, e in cached.failed if p not in set(blank)]
    by_digest: dict[str, list[str]] = {}
    for p, d in zip(cached.paths, cached.digests):
        by_digest.setdefault(str(d), []).append(str(p))
    dups = [sorted(v) for v in by_digest.values() if len(v) > 1]
    counts: dict[str, dict[str, int]] = {}
    for w, c in data.counts().items():
        m = (cached.writers == w) & cached.genuine
        usable = len(set(map(str, cached.digests[m])))
        counts[w] = {"genuine": c.get("genuine", 0), "forgery": c.get("forgery", 0), "usable_genuine": usable}
    few = sorted(w for w, c in counts.items() if c["usable_genuine"] < MIN_GENUINE_PER_WRITER)
    warnings = []
    if few:
        names = ", ".join(writer_label(w) for w in few[:8]) + (" ..." if len(few) > 8 else "")
        warnings.append(f"{len(few)} writer(s) have fewer than {MIN_GENUINE_PER_WRITER} usable genuine signatures "
                        f"({names}); they add little and may be skipped")
    if unreadable:
        warnings.append(f"{len(unreadable)} file(s) could not be read and will be skipped "
                        f"(e.g. {Path(unreadable[0][0]).name}: {unreadable[0][1]})")
    if blank:
        warnings.append(f"{len(blank)} scan(s) look blank (no ink found) and will be skipped (e.g. {Path(blank[0]).name})")
    if dups:
        warnings.append(f"{sum(len(d) for d in dups)} files are byte-identical copies in {len(dups)} group(s) "
                        f"(e.g. {', '.join(Path(p).name for p in dups[0][:3])}); each counts once as a reference")
    rep = DataReport(str(folder), data, cached, cfg.to_dict(), counts, warnings, unreadable, blank, dups, few)
    if not rep.ok:
        rep.warnings.insert(0, f"fine-tuning needs at least {MIN_TRAIN_WRITERS} writers with 2 or more genuine "
                               f"signatures each; this folder has {rep.trainable_writers}")
    return rep


def preview_samples(report: DataReport, n: int = 6, seed: int = 0, thumb_height: int = 120) -> list[dict]:
    """A few images before (raw scan, downscaled) and after preprocessing, for the wizard's preview."""
    import cv2

    from sigverify.imaging.load import load_image

    c = report.cached
    if not len(c.images):
        return []
    rng = np.random.default_rng(seed)
    # one image per writer first, then fill up
    order = []
    seen = set()
    for i in rng.permutation(len(c.images)):
        if c.writers[i] not in seen:
            seen.add(c.writers[i])
            order.append(int(i))
    order += [int(i) for i in rng.permutation(len(c.images)) if int(i) not in order]
    out = []
    for i in order[:n]:
        try:
            grey = cv2.cvtColor(load_image(str(c.paths[i])), cv2.COLOR_RGB2GRAY)
        except Exception:  # noqa: BLE001 - preview only
            continue
        h, w = grey.shape
        s = thumb_height / max(h, 1)
        raw = cv2.resize(grey, (max(1, int(w * s)), thumb_height), interpolation=cv2.INTER_AREA)
        out.append({"path": str(c.paths[i]), "writer": str(c.writers[i]), "genuine": bool(c.genuine[i]),
                    "raw": raw, "preprocessed": 255 - c.images[i]})  # show dark ink on white
    return out


# ============================================================================ time estimate
#: Seconds per image on a 2-core CPU (measured with a training job running beside it, signet-s,
#: 150x220): preprocessing, and one trunk pass (an augmented copy costs one more pass).
SEC_PREPROCESS = 0.012
SEC_TRUNK = {"signet-s": 0.009, "signet-half": 0.022, "signet": 0.075}
SEC_STEP = 0.008  # one head step on cached features (batch of ~100)


def estimate_seconds(n_images: int, epochs: int, augment_copies: int = 2, architecture: str = "signet-s",
                     device: str = "cpu", preprocessed: bool = False, val_frac: float = 0.3) -> float:
    """Rough wall time of :func:`finetune` on a 2-core CPU (a GPU does the trunk pass ~20x faster)."""
    n = max(int(n_images), 0)
    trunk = SEC_TRUNK.get(architecture, 0.01) * (1 - val_frac + val_frac / (1 + augment_copies)) * n * (1 + augment_copies)
    if device not in ("cpu", None) and not str(device).startswith("cpu"):
        trunk /= 20
    steps = epochs * max(1, math.ceil(n * (1 - val_frac) / 96))
    return (0 if preprocessed else SEC_PREPROCESS * n) + trunk + SEC_STEP * steps + 0.05 * epochs + 2.0


def format_duration(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


# ============================================================================ the head
def _torch():
    import torch

    return torch


def make_head(base_net, cfg: FinetuneConfig):
    """A trainable copy of the base projection (``embed``): full, or base + low-rank residual update."""
    torch = _torch()
    from torch import nn

    class LowRankHead(nn.Module):
        def __init__(self, embed: nn.Linear, rank: int):
            super().__init__()
            self.base = copy.deepcopy(embed)
            for p in self.base.parameters():
                p.requires_grad_(False)
            d_in = embed.in_features
            self.down = nn.Parameter(torch.randn(d_in, rank) / math.sqrt(d_in))
            self.up = nn.Parameter(torch.zeros(rank, d_in))  # zero: starts exactly at the base model

        def forward(self, f):
            return self.base(f + (f @ self.down) @ self.up)

        def merged(self) -> nn.Linear:
            """W (f + f D U) = (W + W U^T D^T) f  ->  one Linear of the base shape."""
            lin = copy.deepcopy(self.base)
            with torch.no_grad():
                w = self.base.weight
                lin.weight.copy_(w + w @ (self.down @ self.up).T)
            return lin

    class FullHead(nn.Module):
        def __init__(self, embed: nn.Linear):
            super().__init__()
            self.lin = copy.deepcopy(embed)
            for p in self.lin.parameters():
                p.requires_grad_(True)

        def forward(self, f):
            return self.lin(f)

        def merged(self) -> nn.Linear:
            return copy.deepcopy(self.lin)

    embed = base_net.embed
    return LowRankHead(embed, cfg.rank) if cfg.head == "lowrank" else FullHead(embed)


class _cpu_threads:  # noqa: N801 - used as a context manager
    """Temporarily use ``n`` torch CPU threads (0: leave as is)."""

    def __init__(self, n: int):
        self.n, self.old = n, None

    def __enter__(self):
        torch = _torch()
        if self.n:
            self.old = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self.old:
            _torch().set_num_threads(self.old)
        return False


# ============================================================================ fine-tune
@dataclass
class FinetuneResult:
    network: object  # SigNet: base trunk + tuned head (eval mode, CPU)
    card: object  # ModelCard (not yet saved: weights_sha256 empty)
    before: object | None  # EvalResult of the base model on the held-out writers
    after: object | None  # EvalResult of the fine-tuned model on the held-out writers
    history: list[dict]
    seconds: float
    notes: list[str]
    split: dict  # {"train": n writers, "val": n writers}

    def metrics_text(self) -> str:
        if self.before is None or self.after is None:
            return "no held-out writers: before/after accuracy not measured"
        b, a = self.before, self.after
        return (f"held-out writers: {a.writers}\n"
                f"  skilled-forgery EER  base {100 * b.eer:5.1f}%  ->  fine-tuned {100 * a.eer:5.1f}%\n"
                f"  random-forgery EER   base {100 * b.eer_random:5.1f}%  ->  fine-tuned {100 * a.eer_random:5.1f}%\n"
                f"  at the threshold: FAR {_pct(b.far)} / FRR {_pct(b.frr)} (base)  ->  "
                f"FAR {_pct(a.far)} / FRR {_pct(a.frr)} (fine-tuned, recalibrated)")


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.1f}%"


def _split(cached, cfg: FinetuneConfig) -> tuple[list[str], list[str]]:
    import random

    writers = sorted({str(w) for w, g in zip(cached.writers, cached.genuine) if g})
    usable = [w for w in writers if len(set(map(str, cached.digests[(cached.writers == w) & cached.genuine]))) >= 2]
    rng = random.Random(f"finetune/{cfg.seed}")
    ws = list(usable)
    rng.shuffle(ws)
    n_val = int(round(len(ws) * cfg.val_frac)) if cfg.val_frac > 0 else 0
    if cfg.val_frac > 0:
        n_val = max(n_val, MIN_VAL_WRITERS)
    if n_val < MIN_VAL_WRITERS or len(ws) - n_val < MIN_TRAIN_WRITERS:
        return sorted(ws), []
    return sorted(ws[n_val:]), sorted(ws[:n_val])


def _calibration_from_embeddings(emb, val) -> dict:
    from sigverify.model.card import METRICS
    from sigverify.train.evaluate import evaluate_embeddings
    from sigverify.verify.calibration import fit_calibration

    out = {}
    for metric in METRICS:
        r = evaluate_embeddings(emb, val.writers, val.genuine, val.digests, metric)
        out[metric] = fit_calibration(r.distances["pos"], r.distances["skilled"], r.distances["random"]).__dict__
    return out


def _base_threshold(card, metric: str) -> float | None:
    try:
        return float(card.metric_calibration(metric).eer_threshold)
    except Exception:  # noqa: BLE001 - no calibration for this metric
        return None


def finetune(source, base, cfg: FinetuneConfig | None = None, *, name: str | None = None,
             progress: ProgressFn | None = None, should_stop: StopFn | None = None, workers: int = 0):
    """Fine-tune the head of ``base`` (a ``LoadedModel``) on ``source``: a folder, or a
    :class:`DataReport` from :func:`check_data` (its preprocessed images are reused when the base
    model's preprocessing matches). Returns a :class:`FinetuneResult`; writes nothing."""
    torch = _torch()
    import torch.nn.functional as F

    from sigverify.imaging.augment import augment_input
    from sigverify.model.card import ModelCard
    from sigverify.model.embedder import resolve_device
    from sigverify.train.evaluate import evaluate_embeddings
    from sigverify.train.losses import contrastive_loss, triplet_loss

    cfg = cfg or FinetuneConfig()
    cfg.validate()
    t0 = time.perf_counter()
    stop = should_stop or (lambda: False)
    notes: list[str] = []

    def report(f: float, msg: str, row: dict | None = None) -> None:
        if progress:
            progress(min(max(f, 0.0), 1.0), msg, row or {})

    def check_stop() -> None:
        if stop():
            raise Cancelled("fine-tuning cancelled; nothing was saved")

    # ---- 1. data (preprocessed once)
    pcfg = base.card.preprocess_config
    if isinstance(source, DataReport) and source.preprocess == pcfg.to_dict():
        rep = source
    else:
        src = source.data if isinstance(source, DataReport) else source
        label = Path(source.folder).name if isinstance(source, DataReport) else None
        rep = check_data(src, pcfg, lambda f, m, r=None: report(0.15 * f, m), stop, workers, label)
    check_stop()
    if not rep.ok:
        raise DataError(rep.warnings[0])
    cached = rep.cached
    train_w, val_w = _split(cached, cfg)
    if not val_w:
        notes.append(f"too few writers ({len(train_w)}) for a held-out validation group: all were used for "
                     f"training, before/after accuracy was not measured and the base model's calibration is kept")
    trn = cached.of_writers(train_w)
    val = cached.of_writers(val_w) if val_w else None

    # ---- 2. frozen trunk, run once (plus augmented copies of the training images)
    device = resolve_device(cfg.device)
    net = copy.deepcopy(base.network).to(device).eval()
    from sigverify.model.embedder import fuse_for_inference

    fast = fuse_for_inference(net).to(device).to(memory_format=torch.channels_last)  # BN folded: ~1.5x faster
    rng = np.random.default_rng(cfg.seed)
    copies = max(0, int(cfg.augment_copies))
    n_trunk = len(trn.images) * (1 + copies) + (len(val.images) if val is not None else 0)
    done = 0
    t_trunk = time.perf_counter()

    def trunk_features(images: np.ndarray, augment: bool) -> np.ndarray:
        nonlocal done
        out = []
        for i in range(0, len(images), cfg.trunk_batch):
            check_stop()
            chunk = images[i:i + cfg.trunk_batch]
            if augment:
                chunk = np.stack([augment_input(im, rng, 0.7) for im in chunk])
            x = torch.from_numpy(chunk.astype(np.float32) / 255.0)[:, None].to(device)
            with torch.inference_mode():
                out.append(fast.trunk(x.contiguous(memory_format=torch.channels_last)).float().cpu())
            done += len(chunk)
            el = time.perf_counter() - t_trunk
            eta = el / done * (n_trunk - done)
            report(0.15 + 0.55 * done / max(n_trunk, 1),
                   f"computing base-model features {done}/{n_trunk} (ETA {format_duration(eta)} for this stage)")
        return torch.cat(out) if out else torch.zeros(0, net.embed.in_features)

    feats_train = [trunk_features(trn.images, False)] + [trunk_features(trn.images, True) for _ in range(copies)]
    feats_val = trunk_features(val.images, False) if val is not None else None
    trunk_s = time.perf_counter() - t_trunk

    # ---- 3. base model on the held-out writers
    metric = base.card.distance if base.card.distance in ("euclidean", "cosine") else "euclidean"
    before = None
    if val is not None:
        with torch.inference_mode():
            emb_b = net.project(feats_val.to(device)).cpu().numpy()
        before = evaluate_embeddings(emb_b, val.writers, val.genuine, val.digests, metric,
                                     _base_threshold(base.card, metric))
    check_stop()

    # ---- 4. train the head on cached features. Its steps are tiny: on CPU one thread is faster than two
    # (a second OpenMP thread preempted by other work - e.g. a training job - slows each step ~15x).
    with _cpu_threads(1 if device.type == "cpu" else 0):
        torch.manual_seed(cfg.seed)
        head = make_head(net, cfg).to(device).train()
        params = [p for p in head.parameters() if p.requires_grad]
        anchor = [p.detach().clone() for p in params]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        writers_arr = trn.writers
        wlist = sorted(set(map(str, writers_arr)))
        wid = {w: i for i, w in enumerate(wlist)}
        labels = torch.tensor([wid[str(w)] for w in writers_arr], device=device)
        gen_t = torch.from_numpy(trn.genuine.copy()).to(device)
        g_idx = {w: np.nonzero((writers_arr == w) & trn.genuine)[0] for w in wlist}
        f_idx = {w: np.nonzero((writers_arr == w) & ~trn.genuine)[0] for w in wlist}
        g_idx = {w: v for w, v in g_idx.items() if len(v) >= 2}
        pk_writers = sorted(g_idx)
        pool = torch.stack(feats_train).to(device)  # (copies+1, N, D)
        batch_n = min(cfg.writers_per_batch, len(pk_writers)) * (cfg.genuine_per_writer + cfg.forgeries_per_writer)
        steps_per_epoch = max(4, math.ceil(len(trn.images) * (1 + copies) / max(batch_n, 1)))
        total = cfg.epochs * steps_per_epoch
        warm = max(1, total // 20)

        def lr_at(step: int) -> float:
            if step < warm:
                return cfg.lr * (step + 1) / warm
            t = (step - warm) / max(1, total - warm)
            return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))

        def batch():
            P = min(cfg.writers_per_batch, len(pk_writers))
            idx = []
            for wi in rng.choice(len(pk_writers), P, replace=False):
                w = pk_writers[wi]
                g = g_idx[w]
                idx += list(rng.choice(g, min(cfg.genuine_per_writer, len(g)), replace=False))
                f = f_idx[w]
                if len(f) and cfg.forgeries_per_writer:
                    idx += list(rng.choice(f, min(cfg.forgeries_per_writer, len(f)), replace=False))
            idx = torch.from_numpy(np.array(idx))
            which = torch.from_numpy(rng.integers(0, pool.shape[0], len(idx)))
            return pool[which, idx], labels[idx], gen_t[idx]

        def val_eval(h) -> dict:
            if val is None:
                return {}
            h.eval()
            with torch.inference_mode():
                e = F.normalize(h(feats_val.to(device)), dim=1).cpu().numpy()
            h.train()
            r = evaluate_embeddings(e, val.writers, val.genuine, val.digests, metric)
            return {"val_eer": r.eer, "val_eer_random": r.eer_random, "val_auc": r.auc}

        history: list[dict] = []
        best_score, best_state, best_epoch = float("inf"), None, 0
        if before is not None:
            history.append({"epoch": 0, "step": 0, "loss": None, "val_eer": before.eer, "val_eer_random": before.eer_random})
            best_score = before.eer + before.eer_random
            best_state = copy.deepcopy(head.state_dict())
        step = 0
        t_head = time.perf_counter()
        for epoch in range(1, cfg.epochs + 1):
            losses = []
            for _ in range(steps_per_epoch):
                check_stop()
                x, y, g = batch()
                for grp in opt.param_groups:
                    grp["lr"] = lr_at(step)
                emb = F.normalize(head(x), dim=1)
                def pair_loss(e, yy, gg):
                    if cfg.loss == "triplet":
                        return triplet_loss(e, yy, gg, cfg.triplet_margin, cfg.mining)
                    return contrastive_loss(e, yy, gg, cfg.margin)

                loss = pair_loss(emb, y, g) if cfg.random_weight < 1 else emb.sum() * 0
                if cfg.random_weight > 0:  # the same batch without its forgeries: random negatives only
                    loss = (1 - cfg.random_weight) * loss + cfg.random_weight * pair_loss(emb[g], y[g], g[g])
                if cfg.anchor_weight > 0:
                    loss = loss + cfg.anchor_weight * sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 5.0)
                opt.step()
                step += 1
                losses.append(float(loss.detach()))
            row = {"epoch": epoch, "step": step, "loss": float(np.mean(losses)), "lr": lr_at(step - 1)}
            row.update(val_eval(head))
            if "val_eer" in row:
                score = row["val_eer"] + row["val_eer_random"]
                if score < best_score - 1e-9:
                    best_score, best_state, best_epoch = score, copy.deepcopy(head.state_dict()), epoch
            elapsed = time.perf_counter() - t_head
            eta = elapsed / epoch * (cfg.epochs - epoch)
            row["elapsed_s"] = time.perf_counter() - t0
            row["eta_s"] = eta
            history.append(row)
            msg = f"epoch {epoch}/{cfg.epochs}  loss {row['loss']:.4f}"
            if "val_eer" in row:
                msg += f"  val EER {100 * row['val_eer']:.1f}% (random {100 * row['val_eer_random']:.1f}%)"
            report(0.7 + 0.27 * epoch / cfg.epochs, msg + f"  ETA {format_duration(eta)}", row)
        if val is None:
            best_epoch = cfg.epochs
        elif best_state is not None:
            head.load_state_dict(best_state)
            if best_epoch == 0:
                notes.append("no epoch beat the base model on the held-out writers: the tuned head equals the base head")
        check_stop()

        # ---- 5. the new network: base trunk + merged head; recalibration on the held-out writers
        head.eval()
        new_net = copy.deepcopy(base.network).cpu().eval()
        merged = head.merged().cpu()
        with torch.no_grad():
            new_net.embed.weight.copy_(merged.weight)
            new_net.embed.bias.copy_(merged.bias)
        after = None
        calibration = copy.deepcopy(base.card.calibration)
        cal_note = "kept from the base model (too few writers for a held-out validation group)"
        if val is not None:
            with torch.inference_mode():
                emb_a = new_net.project(feats_val.cpu()).numpy()
            calibration = _calibration_from_embeddings(emb_a, val)
            after = evaluate_embeddings(emb_a, val.writers, val.genuine, val.digests, metric,
                                        calibration[metric]["eer_threshold"])
            cal_note = f"recalibrated on {len(val_w)} held-out writers"
        seconds = time.perf_counter() - t0
        s = rep.summary()
        s.update({"train_writers": len(train_w), "val_writers": len(val_w), "train_images": int(len(trn.images)),
                  "val_images": int(len(val.images)) if val is not None else 0})
        base_id = base.model_id if getattr(base, "path", None) or base.card.weights_sha256 else base.card.name
        card = ModelCard(
            name=name or f"finetuned-{re.sub(r'[^A-Za-z0-9_.-]+', '-', s['folder']).strip('-') or 'references'}",
            architecture=base.card.architecture, embedding_dim=base.card.embedding_dim,
            preprocessing=copy.deepcopy(base.card.preprocessing), distance=base.card.distance,
            calibration=calibration, random_init=False, base_model=base_id,
            training={"kind": "finetune", "method": "frozen trunk, cached features, trained embedding head"
                      + (" (low-rank residual adapter, merged)" if cfg.head == "lowrank" else ""),
                      "base_model": base_id, "base_random_init": bool(base.card.random_init),
                      "data": s, "config": cfg.to_dict(), "best_epoch": best_epoch,
                      "calibration": cal_note, "seconds": round(seconds, 1), "trunk_seconds": round(trunk_s, 1),
                      "device": str(device), "host": f"{platform.system()} {platform.machine()}, torch {torch.__version__}",
                      "finished": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
                      "notes": notes, "history": [{k: v for k, v in h.items() if k != "eta_s"} for h in history]},
            metrics={"validation": {"before": before.to_dict() if before else None,
                                    "after": after.to_dict() if after else None,
                                    "writers": len(val_w)}},
        )
        report(1.0, f"done in {format_duration(seconds)}" + (f"; {notes[0]}" if notes else ""), {})
        return FinetuneResult(new_net, card, before, after, history, seconds, notes,
                              {"train": len(train_w), "val": len(val_w)})


# ============================================================================ saving
def save_curves_for(result: FinetuneResult, prefix: str | os.PathLike) -> list[str]:
    """ROC / DET PNGs of base vs fine-tuned on the held-out writers ([] when none were held out)."""
    from sigverify.train.evaluate import save_curves

    if result.before is None or result.after is None:
        return []
    return save_curves({"base": result.before, "fine-tuned": result.after}, str(prefix), "held-out writers")


def model_filename(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.strip()).strip("-.") or "finetuned"
    return stem[:80]


def save_finetuned(result: FinetuneResult, name: str | None = None, out: str | os.PathLike | None = None,
                   overwrite: bool = False) -> Path:
    """Write the fine-tuned model (weights + card, atomically). Default place: the user model folder,
    file named after ``name``; an existing file is not replaced unless ``overwrite``."""
    from sigverify.model.weights import save_model
    from sigverify.paths import user_models_dir

    card = copy.deepcopy(result.card)
    if name:
        card.name = name.strip()
    if out is None:
        d = user_models_dir()
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{model_filename(card.name)}.safetensors"
    else:
        path = Path(out)
        if path.suffix != ".safetensors":
            path = path.with_suffix(".safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise DataError(f"a model named {path.name} already exists; choose another name")
    card.created = ""
    card.weights_sha256 = ""
    p = save_model(result.network, card, path)
    result.card = card
    return p


__all__ = ["FinetuneConfig", "FinetuneResult", "DataReport", "check_data", "preview_samples", "finetune",
           "estimate_seconds", "format_duration", "save_finetuned", "save_curves_for", "model_filename",
           "writer_label", "MIN_GENUINE_PER_WRITER"]
