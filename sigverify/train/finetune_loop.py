"""Fine-tuning, step 2: the loop. The frozen part of the base model is run once over the images (plus
augmented copies) and its output cached; the trainable part is trained on the cached features, with
the trainer's PK sampler (P writers x K genuine + F forgeries) and its warm-up + cosine learning-rate
schedule. What is trainable (``FinetuneConfig.adapt``):

- ``head``: the embedding projection only (the whole trunk frozen, its 768-d output cached);
- ``block``: the last convolutional block and the embedding projection (everything below the last
  block frozen, its feature maps cached; the fully-connected layers between stay frozen, their batch
  norm statistics too);
- ``stage``: nothing in the network - only the writer-dependent decision stage is adapted
  (``finetune._fit_decision_stage``). No Qt."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from sigverify.errors import DataError
from sigverify.progress import format_duration

LOSSES = ("contrastive", "triplet")
MININGS = ("batch-hard", "semi-hard")
HEADS = ("embed", "lowrank")
ADAPTS = ("stage", "head", "block")
DEFAULT_ADAPT = "stage"  # measured best on a new collection (benchmarks/finetune_real.py; README)


def default_epochs(adapt: str) -> int:
    """Epochs a run of ``adapt`` gets unless told (``block`` steps cost ~25x a head step)."""
    return 12 if adapt == "block" else 30


COHORTS = ("auto", "bank", "base+bank", "base+bank+within")


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
    adapt: str = "head"  # what is adapted: "head", "block" (last conv block + projection) or "stage" (decision only)
    # decision-stage cohort: "bank" writers, "base+bank" (shipped + bank), "base+bank+within" (+ the bank
    # writers' within-writer scatter, verify.writer.with_within_writer_scatter); auto: by ``adapt``
    cohort: str = "auto"
    stage_search: bool = False  # choose the writer stage's mix / regularisation on the held-out writers

    def cohort_kind(self) -> str:
        """The cohort actually used: the shipped one only stays valid for an unchanged network."""
        if self.cohort != "auto":
            return self.cohort
        return "base+bank" if self.adapt == "stage" else "bank"

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise DataError(f"unknown loss {self.loss!r} (use {' or '.join(LOSSES)})")
        if self.mining not in MININGS:
            raise DataError(f"unknown mining {self.mining!r} (use {' or '.join(MININGS)})")
        if self.head not in HEADS:
            raise DataError(f"unknown head {self.head!r} (use {' or '.join(HEADS)})")
        if self.adapt not in ADAPTS:
            raise DataError(f"unknown adaptation {self.adapt!r} (use {', '.join(ADAPTS)})")
        if self.cohort not in COHORTS:
            raise DataError(f"unknown cohort {self.cohort!r} (use {', '.join(COHORTS)})")
        if self.epochs < 1:
            raise DataError("epochs must be at least 1")
        if not (0 < self.lr < 1):
            raise DataError("the learning rate must be between 0 and 1")
        if not (0 <= self.val_frac < 1):
            raise DataError("the validation fraction must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)

    def sampler_config(self):
        """The trainer's ``TrainConfig`` with this run's batch shape (for ``PKSampler``)."""
        from sigverify.train.trainer import TrainConfig

        return TrainConfig(
            writers_per_batch=self.writers_per_batch,
            genuine_per_writer=self.genuine_per_writer,
            forgeries_per_writer=self.forgeries_per_writer,
            seed=self.seed,
        )


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

        def apply_to(self, net) -> None:
            _copy_embed(net, self.merged())

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

        def apply_to(self, net) -> None:
            _copy_embed(net, self.lin)

    embed = base_net.embed
    return LowRankHead(embed, cfg.rank) if cfg.head == "lowrank" else FullHead(embed)


def _copy_embed(net, lin) -> None:
    torch = _torch()
    with torch.no_grad():
        net.embed.weight.copy_(lin.weight.detach().to(net.embed.weight.device))
        net.embed.bias.copy_(lin.bias.detach().to(net.embed.bias.device))


def last_block_index(net) -> int:
    """Index in ``net.features`` where the last convolutional block starts (the block and the pooling after it)."""
    from torch import nn

    idx = [i for i, m in enumerate(net.features) if any(isinstance(x, nn.Conv2d) for x in m.modules())]
    if not idx:
        raise DataError("the model has no convolutional block to unfreeze")
    return idx[-1]


def below_block(net):
    """The frozen part for ``adapt="block"``: everything below the last convolutional block."""
    return net.features[: last_block_index(net)]


def make_tail(base_net):
    """``adapt="block"``: a trainable copy of the last convolutional block (+ the pooling after it) and of
    the embedding projection, with a frozen copy of the fully-connected layers between them. Batch-norm
    statistics and dropout stay in evaluation mode (a bank's batches are too small to re-estimate them)."""
    from torch import nn

    start = last_block_index(base_net)

    class BlockTail(nn.Module):
        def __init__(self):
            super().__init__()
            self.start = start
            self.block = copy.deepcopy(base_net.features[start:])
            self.fc = copy.deepcopy(base_net.head)
            self.embed = copy.deepcopy(base_net.embed)
            for p in self.fc.parameters():
                p.requires_grad_(False)
            for m in (self.block, self.embed):
                for p in m.parameters():
                    p.requires_grad_(True)

        def train(self, mode: bool = True):
            super().train(mode)
            for m in self.modules():
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout)):
                    m.eval()
            return self

        def forward(self, f):
            return self.embed(self.fc(self.block(f)))

        def apply_to(self, net) -> None:
            """Put the trained block and projection into ``net`` (a SigNet of the base architecture)."""
            dev = next(net.parameters()).device
            net.features[self.start :].load_state_dict({k: v.to(dev) for k, v in self.block.state_dict().items()})
            _copy_embed(net, self.embed)

    return BlockTail()


Report = Callable[..., None]  # report(fraction, message[, row])


class TrunkPass:
    """The frozen trunk run over image batches (optionally augmented), reporting progress with an ETA
    over all ``total`` images of the stage; ``check_stop`` is polled between batches."""

    def __init__(
        self,
        fast_net,
        cfg: FinetuneConfig,
        device,
        rng: np.random.Generator,
        total: int,
        report: Report,
        check_stop: Callable[[], None],
        part=None,
    ):
        self.fast, self.cfg, self.device, self.rng = fast_net, cfg, device, rng
        self.part = part if part is not None else fast_net.trunk  # the frozen part whose output is cached
        self.total, self.report, self.check_stop = total, report, check_stop
        self.done = 0
        self.t0 = time.perf_counter()

    def __call__(self, images: np.ndarray, augment: bool):
        from sigverify.imaging.augment import augment_input

        torch = _torch()
        out = []
        for i in range(0, len(images), self.cfg.trunk_batch):
            self.check_stop()
            chunk = images[i : i + self.cfg.trunk_batch]
            if augment:
                chunk = np.stack([augment_input(im, self.rng, 0.7) for im in chunk])
            x = torch.from_numpy(chunk.astype(np.float32) / 255.0)[:, None].to(self.device)
            with torch.inference_mode():
                out.append(self.part(x.contiguous(memory_format=torch.channels_last)).float().contiguous().cpu())
            self.done += len(chunk)
            el = time.perf_counter() - self.t0
            eta = el / self.done * (self.total - self.done)
            self.report(
                0.15 + 0.55 * self.done / max(self.total, 1),
                f"computing base-model features {self.done}/{self.total} (ETA {format_duration(eta)} for this stage)",
            )
        if out:
            return torch.cat(out)
        probe = torch.zeros(1, 1, *self.fast.input_hw, device=self.device)
        with torch.inference_mode():
            return torch.zeros(0, *self.part(probe).shape[1:])

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0


@dataclass
class HeadRun:
    head: object  # the trained head (best epoch loaded), eval mode
    history: list[dict]
    best_epoch: int
    notes: list[str] = field(default_factory=list)


def train_head(
    net,
    feats_train: list,
    trn,
    feats_val,
    val,
    before,
    cfg: FinetuneConfig,
    device,
    rng: np.random.Generator,
    metric: str,
    report: Report,
    check_stop: Callable[[], None],
    t0: float,
    head=None,
) -> HeadRun:
    """Train the head on cached trunk features: PK batches from ``trn`` (each image drawn from one of the
    cached feature copies at random), the trainer's schedule, best epoch by held-out EER (skilled + random)
    when ``val`` is given. ``before`` (the base model on ``val``) is epoch 0. ``head``: the module to train
    (default: ``make_head(net, cfg)``; ``make_tail`` for ``adapt="block"``)."""
    torch = _torch()
    import torch.nn.functional as F

    from sigverify.train.evaluate import evaluate_embeddings
    from sigverify.train.losses import contrastive_loss, triplet_loss
    from sigverify.train.trainer import PKSampler, warmup_cosine_lr

    torch.manual_seed(cfg.seed)
    head = (head if head is not None else make_head(net, cfg)).to(device).train()
    params = [p for p in head.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = PKSampler(trn, cfg.sampler_config(), rng)
    pool = torch.stack(feats_train).to(device)  # (copies+1, N, D)
    copies = pool.shape[0] - 1
    batch_n = min(cfg.writers_per_batch, len(sampler.writers)) * (cfg.genuine_per_writer + cfg.forgeries_per_writer)
    steps_per_epoch = max(4, math.ceil(len(trn.images) * (1 + copies) / max(batch_n, 1)))
    total = cfg.epochs * steps_per_epoch
    warm = max(1, total // 20)

    def lr_at(step: int) -> float:
        return warmup_cosine_lr(step, warm, (step - warm) / max(1, total - warm), cfg.lr, 0.05)

    def batch():
        idx, lab, gen, _ = sampler.batch()
        which = torch.from_numpy(rng.integers(0, pool.shape[0], len(idx)))
        idx = torch.from_numpy(idx)
        return pool[which, idx], torch.from_numpy(lab).to(device), torch.from_numpy(gen).to(device)

    def pair_loss(e, yy, gg):
        if cfg.loss == "triplet":
            return triplet_loss(e, yy, gg, cfg.triplet_margin, cfg.mining)
        return contrastive_loss(e, yy, gg, cfg.margin)

    def val_eval(h) -> dict:
        if val is None:
            return {}
        h.eval()
        with torch.inference_mode():
            e = torch.cat([F.normalize(h(c.to(device)), dim=1).cpu() for c in feats_val.split(256)]).numpy()
        h.train()
        r = evaluate_embeddings(e, val.writers, val.genuine, val.digests, metric)
        return {"val_eer": r.eer, "val_eer_random": r.eer_random, "val_auc": r.auc}

    history: list[dict] = []
    notes: list[str] = []
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
    head.eval()
    return HeadRun(head, history, best_epoch, notes)


class cpu_threads:  # noqa: N801 - used as a context manager
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


__all__ = [
    "FinetuneConfig",
    "LOSSES",
    "MININGS",
    "HEADS",
    "ADAPTS",
    "COHORTS",
    "DEFAULT_ADAPT",
    "default_epochs",
    "make_head",
    "make_tail",
    "below_block",
    "last_block_index",
    "TrunkPass",
    "HeadRun",
    "train_head",
    "cpu_threads",
]
