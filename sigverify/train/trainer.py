"""The training loop: seeded, resumable, with progress / cancel / checkpoint callbacks.

The GUI wizard and ``sigverify-cli train`` both drive ``train``. It reads preprocessed uint8 arrays
(``CachedSet``), samples P writers x K genuine (+ skilled forgeries) per batch, augments them like real
scans, and optimises a writer-classification loss (who wrote it) plus contrastive or triplet loss
(genuine vs random and skilled forgeries). AMP on GPU, float32 on CPU.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sigverify.errors import Cancelled, DataError
from sigverify.imaging.augment import augment_input
from sigverify.model.network import SigNet, build_network
from sigverify.progress import Progress
from sigverify.train.cache import CachedSet
from sigverify.train.evaluate import evaluate_embeddings
from sigverify.train.losses import CosineMarginClassifier, contrastive_loss, triplet_loss


@dataclass
class TrainConfig:
    architecture: str = "signet-s"
    loss: str = "contrastive"  # or "triplet"
    mining: str = "batch-hard"  # triplet mining: batch-hard / semi-hard
    margin: float = 1.0  # contrastive margin (unit-length embeddings: distances in [0, 2])
    triplet_margin: float = 0.3
    writer_loss_weight: float = 1.0  # cosine-margin writer classification beside the pair loss
    steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    writers_per_batch: int = 16
    genuine_per_writer: int = 4
    forgeries_per_writer: int = 2
    augment: bool = True
    augment_strength: float = 1.0
    seed: int = 0
    device: str = "auto"
    eval_every: int = 200
    checkpoint_every: int = 200
    threads: int = 0  # CPU threads (0 = torch default)
    time_budget_s: float = 0.0  # > 0: the schedule runs on max(step / steps, elapsed / budget) and stops at 1
    balance_datasets: bool = False  # each collection gets the same share of the writers in a batch
    select_per_dataset: bool = False  # keep the checkpoint with the best mean of per-collection validation EERs

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainState:
    step: int = 0
    history: list[dict] = field(default_factory=list)  # {"step", "loss", ...} and eval rows
    best_score: float = float("inf")
    best_step: int = -1
    elapsed_s: float = 0.0


ProgressFn = Progress  # progress(fraction, message, row): see sigverify.progress


def warmup_cosine_lr(step: int, warm: int, t: float, lr: float, floor: float) -> float:
    """The learning-rate schedule of training and fine-tuning: linear warm-up over ``warm`` steps, then
    a cosine from ``lr`` down to ``floor * lr`` as the progress ``t`` goes from 0 to 1."""
    if step < warm:
        return lr * (step + 1) / warm
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


class PKSampler:
    """Batches of P writers x (K genuine + F forgeries); alternative variants (e.g. messy-scan
    copies of the same images) are drawn at random when given."""

    def __init__(self, data: CachedSet, cfg: TrainConfig, rng: np.random.Generator):
        self.data, self.cfg, self.rng = data, cfg, rng
        self.gen: dict[str, np.ndarray] = {}
        self.forg: dict[str, np.ndarray] = {}
        for w in np.unique(data.writers):
            m = data.writers == w
            g = np.nonzero(m & data.genuine)[0]
            if len(g) >= 2:
                self.gen[w] = g
                self.forg[w] = np.nonzero(m & ~data.genuine)[0]
        self.writers = sorted(self.gen)
        if len(self.writers) < 2:
            raise DataError("training needs at least 2 writers with 2 or more genuine signatures each")
        self.label = {w: i for i, w in enumerate(self.writers)}
        self.weights = None
        if cfg.balance_datasets:  # every collection the same share, whatever its writer count
            ds_of = {w: str(data.datasets[self.gen[w][0]]) for w in self.writers}
            n = {d: sum(1 for w in self.writers if ds_of[w] == d) for d in set(ds_of.values())}
            wts = np.array([1.0 / n[ds_of[w]] for w in self.writers])
            self.weights = wts / wts.sum()

    def batch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        c, rng = self.cfg, self.rng
        P = min(c.writers_per_batch, len(self.writers))
        ws = rng.choice(len(self.writers), P, replace=False, p=self.weights)
        idx, lab, gen = [], [], []
        for wi in ws:
            w = self.writers[wi]
            g = self.gen[w]
            take = rng.choice(g, min(c.genuine_per_writer, len(g)), replace=False)
            idx += list(take)
            lab += [wi] * len(take)
            gen += [True] * len(take)
            f = self.forg[w]
            if len(f) and c.forgeries_per_writer:
                take = rng.choice(f, min(c.forgeries_per_writer, len(f)), replace=False)
                idx += list(take)
                lab += [wi] * len(take)
                gen += [False] * len(take)
        return np.array(idx), np.array(lab), np.array(gen), ws


def _images_for(idx: np.ndarray, variants: list[np.ndarray], cfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    out = []
    for i in idx:
        img = variants[rng.integers(len(variants))][i] if len(variants) > 1 else variants[0][i]
        if cfg.augment:
            img = augment_input(img, rng, cfg.augment_strength)
        out.append(img)
    return np.stack(out)


@torch.inference_mode()
def embed_cached(net: SigNet, images: np.ndarray, device: torch.device, batch: int = 128) -> np.ndarray:
    was = net.training
    net.eval()
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch].astype(np.float32) / 255.0)[:, None].to(device)
        out.append(net(x).float().cpu().numpy())
    net.train(was)
    return np.concatenate(out) if out else np.zeros((0, net.embedding_dim), np.float32)


def validate(net: SigNet, val: CachedSet, device: torch.device, metric: str = "euclidean") -> dict:
    """Pooled validation EERs, plus one pair per collection (``val_by_dataset``) when there are several,
    and ``val_score``: the mean over collections of skilled + random EER (a collection without
    forgeries counts its random EER only), so a collection with many writers cannot hide another."""
    emb = embed_cached(net, val.images, device)
    r = evaluate_embeddings(emb, val.writers, val.genuine, val.digests, metric)
    out = {"val_eer": r.eer, "val_eer_random": r.eer_random, "val_auc": r.auc}
    dss = sorted(set(map(str, val.datasets)))
    if len(dss) > 1:
        per, scores = {}, []
        for ds in dss:
            m = val.datasets == ds
            e = evaluate_embeddings(emb[m], val.writers[m], val.genuine[m], val.digests[m], metric)
            per[ds] = {"eer": e.eer, "eer_random": e.eer_random}
            scores.append(sum(x for x in (e.eer, e.eer_random) if x == x))
        out["val_by_dataset"] = per
        out["val_score"] = float(np.mean(scores))
    return out


def _save_checkpoint(path: Path, net, head, opt, state: TrainState, cfg: TrainConfig, best_net_state=None) -> None:
    """Checkpoint = safetensors (model, writer head, Adam moments, best weights) + JSON (step, history)."""
    from safetensors.torch import save_file

    from sigverify.atomic import atomic_path, write_text_atomic

    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tensors.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in head.state_dict().items()})
    if best_net_state is not None:
        tensors.update({f"best.{k}": v.cpu().contiguous() for k, v in best_net_state.items()})
    osd = opt.state_dict()
    for pid, st in osd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = (
                    v.detach().cpu().contiguous().reshape(v.shape) if v.dim() else v.detach().cpu().reshape(1)
                )
    with atomic_path(path.with_suffix(".safetensors")) as tmp:
        save_file(tensors, str(tmp))
    meta = {"state": asdict(state), "config": cfg.to_dict(), "param_groups": osd["param_groups"]}
    write_text_atomic(path.with_suffix(".json"), json.dumps(meta))


def _load_checkpoint(path: Path, net, head, opt) -> tuple[TrainState, dict | None]:
    from safetensors.torch import load_file

    tensors = load_file(str(path.with_suffix(".safetensors")))
    meta = json.loads(path.with_suffix(".json").read_text())
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    osd = opt.state_dict()
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v.reshape(()) if name == "step" else v
    osd["state"] = state
    osd["param_groups"] = meta["param_groups"]
    opt.load_state_dict(osd)
    return TrainState(**meta["state"]), best


def train(
    train_set: CachedSet,
    val_set: CachedSet | None,
    cfg: TrainConfig,
    *,
    variants: list[CachedSet] | None = None,
    init: SigNet | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[SigNet, TrainState]:
    """Train and return (best network by validation EER, state). Raises ``Cancelled`` if stopped.

    ``variants``: extra CachedSets aligned image-for-image with ``train_set`` (e.g. messy-scan copies);
    each step draws every image from one of them at random. ``checkpoint``: path stem for periodic
    checkpoints; with ``resume`` an existing checkpoint there is continued.
    """
    from sigverify.model.embedder import resolve_device
    from sigverify.train.datasets import seed_everything

    device = resolve_device(cfg.device)
    if cfg.threads and device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    sampler = PKSampler(train_set, cfg, rng)
    net = init if init is not None else build_network(cfg.architecture, input_hw=train_set.images.shape[1:])
    net.to(device).train()
    head = CosineMarginClassifier(net.embedding_dim, len(sampler.writers)).to(device)
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = TrainState()
    best_state = None
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt and resume and ckpt.with_suffix(".json").exists():
        state, best_state = _load_checkpoint(ckpt, net, head, opt)
        rng = np.random.default_rng([cfg.seed, state.step])
        sampler.rng = rng
    warm = max(1, min(200, cfg.steps // 10))

    def progress_frac(step: int) -> float:
        f = step / cfg.steps
        if cfg.time_budget_s > 0:
            f = max(f, state.elapsed_s / cfg.time_budget_s)
        return min(f, 1.0)

    def lr_at(step: int) -> float:
        t = max((step - warm) / max(1, cfg.steps - warm), progress_frac(step))
        return warmup_cosine_lr(step, warm, t, cfg.lr, 0.02)

    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    pools = [train_set.images] + [v.images for v in (variants or [])]
    t_start = time.perf_counter() - state.elapsed_s
    running = None
    while state.step < cfg.steps and progress_frac(state.step) < 1.0:
        if should_stop and should_stop():
            raise Cancelled("training cancelled")
        idx, lab, gen, _ = sampler.batch()
        x = torch.from_numpy(_images_for(idx, pools, cfg, rng).astype(np.float32) / 255.0)[:, None].to(device)
        y = torch.from_numpy(lab).to(device)
        g = torch.from_numpy(gen).to(device)
        for grp in opt.param_groups:
            grp["lr"] = lr_at(state.step)
        with torch.autocast(device.type, enabled=use_amp):
            emb = net(x)
        emb = emb.float()
        if cfg.loss == "triplet":
            pair = triplet_loss(emb, y, g, cfg.triplet_margin, cfg.mining)
        elif cfg.loss == "contrastive":
            pair = contrastive_loss(emb, y, g, cfg.margin)
        else:
            raise ValueError(f"unknown loss {cfg.loss!r} (contrastive or triplet)")
        wl = head(emb[g], y[g]) if cfg.writer_loss_weight > 0 else emb.sum() * 0
        loss = pair + cfg.writer_loss_weight * wl
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        scaler.step(opt)
        scaler.update()
        state.step += 1
        lv = float(loss.detach())
        running = lv if running is None else 0.95 * running + 0.05 * lv
        state.elapsed_s = time.perf_counter() - t_start
        row = {
            "step": state.step,
            "loss": lv,
            "pair_loss": float(pair.detach()),
            "writer_loss": float(wl.detach()),
            "lr": lr_at(state.step - 1),
            "elapsed_s": state.elapsed_s,
        }
        evaluated = False
        last = state.step >= cfg.steps or progress_frac(state.step) >= 1.0
        if val_set is not None and len(val_set.images) and (state.step % cfg.eval_every == 0 or last):
            row.update(validate(net, val_set, device))
            score = row["val_score"] if cfg.select_per_dataset and "val_score" in row else row["val_eer"] + row["val_eer_random"]
            if score < state.best_score:
                state.best_score, state.best_step = score, state.step
                best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            evaluated = True
        if evaluated or state.step % 10 == 0 or last:
            state.history.append(row)
        if progress:
            frac = progress_frac(state.step)
            eta = state.elapsed_s / max(frac, 1e-9) * (1 - frac)
            msg = f"step {state.step}/{cfg.steps}  loss {running:.4f}  ETA {eta:.0f}s"
            if evaluated:
                msg += f"  val EER {100 * row['val_eer']:.1f}% (random {100 * row['val_eer_random']:.1f}%)"
                for ds, e in row.get("val_by_dataset", {}).items():
                    msg += f"  {ds[:8]} {100 * e['eer']:.1f}/{100 * e['eer_random']:.1f}"
            progress(frac, msg, row)
        if ckpt and (state.step % cfg.checkpoint_every == 0 or last):
            _save_checkpoint(ckpt, net, head, opt, state, cfg, best_state)
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return net, state
