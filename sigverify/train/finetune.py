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
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sigverify.errors import Cancelled, DataError
from sigverify.model.card import MetricCalibration
from sigverify.progress import Progress, ShouldStop, format_duration
from sigverify.train.finetune_card import (
    base_threshold,
    build_card,
    calibration_from_embeddings,
    model_filename,
    save_curves_for,
    save_finetuned,
)
from sigverify.train.finetune_data import (
    MIN_GENUINE_PER_WRITER,
    MIN_TRAIN_WRITERS,
    MIN_VAL_WRITERS,
    DataReport,
    check_data,
    split_writers,
    writer_label,
)
from sigverify.train.finetune_loop import (
    ADAPTS,
    COHORTS,
    HEADS,
    LOSSES,
    MININGS,
    FinetuneConfig,
    TrunkPass,
    below_block,
    cpu_threads,
    last_block_index,
    make_head,
    make_tail,
    train_head,
)

#: Seconds per image on a 2-core CPU (measured with a training job running beside it, signet-s,
#: 150x220): preprocessing, and one trunk pass (an augmented copy costs one more pass).
SEC_PREPROCESS = 0.012
SEC_TRUNK = {"signet-s": 0.009, "signet-half": 0.022, "signet": 0.075}
SEC_STEP = 0.008  # one head step on cached features (batch of ~100)
#: ``adapt="block"``: one training step of the last conv block (+ frozen FC, projection) on a batch of ~96
#: cached feature maps, and the forward pass of one image through it (validation every epoch).
SEC_BLOCK_STEP = {"signet-s": 0.25, "signet-half": 0.5, "signet": 2.0}
SEC_BLOCK_FWD = {"signet-s": 0.0012, "signet-half": 0.004, "signet": 0.015}
SEC_STAGE_FIT = 8.0  # fitting the decision stage on the held-out writers + clerk before/after (3 policies x 3 K)


def estimate_seconds(
    n_images: int,
    epochs: int,
    augment_copies: int = 2,
    architecture: str = "signet-s",
    device: str = "cpu",
    preprocessed: bool = False,
    val_frac: float = 0.3,
    adapt: str = "head",
    batch: int = 96,
) -> float:
    """Rough wall time of :func:`finetune` on a 2-core CPU (a GPU does the network passes ~20x faster).
    The step count follows ``train_head``: ``epochs`` x (training images x (1 + copies) / batch)."""
    n = max(int(n_images), 0)
    gpu = device not in ("cpu", None) and not str(device).startswith("cpu")
    copies = 0 if adapt == "stage" else max(0, int(augment_copies))
    n_train, n_val = n * (1 - val_frac), n * val_frac
    trunk = SEC_TRUNK.get(architecture, 0.01) * (n_train * (1 + copies) + n_val)
    pre = 0 if preprocessed else SEC_PREPROCESS * n
    fit = SEC_STAGE_FIT if val_frac > 0 else 0.0
    if adapt == "stage":
        return pre + (trunk / 20 if gpu else trunk) + fit + 2.0
    steps = epochs * max(4, math.ceil(n_train * (1 + copies) / batch))
    if adapt == "block":
        train = SEC_BLOCK_STEP.get(architecture, 0.3) * steps + SEC_BLOCK_FWD.get(architecture, 0.003) * n_val * epochs
    else:
        train = SEC_STEP * steps + 0.05 * epochs
    if gpu:
        trunk /= 20
        train /= 20 if adapt == "block" else 1
    return pre + trunk + train + fit + 2.0


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
    cohort: object = None  # (M, D) embeddings of the bank's training writers for the decision stage (saved beside)


def finetune(
    source,
    base,
    cfg: FinetuneConfig | None = None,
    *,
    name: str | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    workers: int = 0,
):
    """Fine-tune the head of ``base`` (a ``LoadedModel``) on ``source``: a folder, or a
    :class:`DataReport` from :func:`check_data` (its preprocessed images are reused when the base
    model's preprocessing matches). Returns a :class:`FinetuneResult`; writes nothing."""
    import torch

    from sigverify.model.embedder import fuse_for_inference, resolve_device
    from sigverify.train.evaluate import evaluate_embeddings

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

    # ---- 1. data (preprocessed once), split by writer
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
    train_w, val_w = split_writers(cached, cfg.val_frac, cfg.seed)
    if not val_w:
        notes.append(
            f"too few writers ({len(train_w)}) for a held-out validation group: all were used for "
            f"training, before/after accuracy was not measured and the base model's calibration is kept"
        )
    trn = cached.of_writers(train_w)
    val = cached.of_writers(val_w) if val_w else None

    # ---- 2. frozen trunk, run once (plus augmented copies of the training images)
    device = resolve_device(cfg.device)
    net = copy.deepcopy(base.network).to(device).eval()
    fast = fuse_for_inference(net).to(device).to(memory_format=torch.channels_last)  # BN folded: ~1.5x faster
    rng = np.random.default_rng(cfg.seed)
    copies = max(0, int(cfg.augment_copies))
    block = cfg.adapt == "block"
    if cfg.adapt == "stage":
        copies = 0  # nothing is trained: no augmented copies
    n_total = len(trn.images) * (1 + copies) + (len(val.images) if val is not None else 0)
    part = below_block(fast) if block else None  # fused and unfused share the top-level block indices
    trunk = TrunkPass(fast, cfg, device, rng, n_total, report, check_stop, part)
    feats_train = [trunk(trn.images, False)] + [trunk(trn.images, True) for _ in range(copies)]
    feats_val = trunk(val.images, False) if val is not None else None
    trunk_s = trunk.seconds
    rest = _rest_of(net, block)  # cached features -> base embeddings

    # ---- 3. base model on the held-out writers
    metric = base.card.distance if base.card.distance in ("euclidean", "cosine") else "euclidean"
    before, emb_b = None, None
    if val is not None:
        emb_b = _project(rest, feats_val)
        before = evaluate_embeddings(emb_b, val.writers, val.genuine, val.digests, metric, base_threshold(base.card, metric))
    check_stop()

    # ---- 4. train the head on cached features. Its steps are tiny: on CPU one thread is faster than two
    # (a second OpenMP thread preempted by other work - e.g. a training job - slows each step ~15x).
    # (``block`` too: measured 0.17 s per step on one thread, 0.2-0.4 s on two beside a training job).
    with cpu_threads(1 if device.type == "cpu" else 0):
        if cfg.adapt == "stage":
            from sigverify.train.finetune_loop import HeadRun

            run = HeadRun(None, [], 0, ["network unchanged: only the decision stage was adapted to the bank"])
        else:
            tail = make_tail(net) if block else None
            run = train_head(
                net, feats_train, trn, feats_val, val, before, cfg, device, rng, metric, report, check_stop, t0, tail
            )
        notes += run.notes

        # ---- 5. the new network: base + trained part; recalibration on the held-out writers
        new_net = copy.deepcopy(base.network).cpu().eval()
        if run.head is not None:
            run.head.cpu().apply_to(new_net)
        new_rest = _rest_of(new_net, block)
        after = None
        calibration = copy.deepcopy(base.card.calibration)
        cal_note = "kept from the base model (too few writers for a held-out validation group)"
        if val is not None:
            emb_a = _project(new_rest, feats_val)
            calibration = calibration_from_embeddings(emb_a, val)
            after = evaluate_embeddings(
                emb_a, val.writers, val.genuine, val.digests, metric, calibration[metric]["eer_threshold"]
            )
            cal_note = f"recalibrated on {len(val_w)} held-out writers"
        cohort_emb, clerk = None, None
        if val is not None:
            emb_t = _project(new_rest, feats_train[0])
            cohort_emb, clerk = _fit_decision_stage(
                base, emb_t, trn, emb_b, emb_a, val, calibration, cfg.cohort_kind(), cfg.stage_search
            )
        seconds = time.perf_counter() - t0
        s = rep.summary()
        s.update(
            {
                "train_writers": len(train_w),
                "val_writers": len(val_w),
                "train_images": int(len(trn.images)),
                "val_images": int(len(val.images)) if val is not None else 0,
            }
        )
        card = build_card(
            base,
            name=name,
            calibration=calibration,
            data_summary=s,
            cfg=cfg,
            best_epoch=run.best_epoch,
            cal_note=cal_note,
            seconds=seconds,
            trunk_seconds=trunk_s,
            device=device,
            notes=notes,
            history=run.history,
            before=before,
            after=after,
            val_writers=len(val_w),
        )
        if clerk is not None:
            card.decision = clerk.pop("decision")
            card.metrics["validation"]["clerk"] = clerk
        report(1.0, f"done in {format_duration(seconds)}" + (f"; {notes[0]}" if notes else ""), {})
        return FinetuneResult(
            new_net, card, before, after, run.history, seconds, notes, {"train": len(train_w), "val": len(val_w)}, cohort_emb
        )


class _Rest:
    """Cached features -> unit embeddings: the part of ``net`` above what was cached."""

    def __init__(self, net, block: bool):
        self.net, self.start = net, (last_block_index(net) if block else None)

    def __call__(self, f):
        if self.start is None:
            return self.net.project(f)
        return self.net.project(self.net.head(self.net.features[self.start :](f)))

    @property
    def device(self):
        return next(self.net.parameters()).device


def _rest_of(net, block: bool) -> _Rest:
    return _Rest(net, block)


def _project(rest: _Rest, feats) -> np.ndarray:
    """``rest`` over cached features, in chunks (eval mode, no gradients)."""
    import torch

    with torch.inference_mode():
        out = [rest(c.to(rest.device)).float().cpu() for c in feats.split(256)]
    return torch.cat(out).numpy() if out else np.zeros((0, rest.net.embedding_dim), np.float32)


#: ``stage_search``: the writer stage's settings tried on the bank's held-out writers.
SEARCH_MIX = (0.0, 0.25, 0.5, 0.75, 1.0)
SEARCH_REG = (0.1, 0.3, 1.0, 3.0)


def _search_stage(cohort_emb, emb, val, pair, metric) -> tuple[float, float, dict]:
    """(reg, mix) of the writer stage with the lowest threshold-free decision EER (clerk's protocol,
    mean over K = 3 and 5 where the writers allow) on the held-out writers."""
    from sigverify.train import decision as dec
    from sigverify.train.clerk import clerk_scores
    from sigverify.train.evaluate import eer
    from sigverify.verify.writer import Cohort

    best, table = None, []
    for reg in SEARCH_REG:
        cohort = Cohort.from_embeddings(cohort_emb, reg)
        for mix in SEARCH_MIX:
            errs = []
            for k in (3, 5):
                sc, _, n = clerk_scores(
                    emb, val.writers, val.genuine, dec._decider(pair, metric, "writer", cohort, mix), k, val.digests
                )
                if n and len(sc["genuine"]) and len(sc["skilled"]):
                    errs.append(eer(sc["genuine"], sc["skilled"]).eer)
            if not errs:
                continue
            e = float(np.mean(errs))
            table.append({"reg": reg, "mix": mix, "eer": e})
            if best is None or e < best[0] - 1e-9:
                best = (e, reg, mix)
    if best is None:
        return dec.COHORT_REG, dec.COHORT_MIX, {}
    return best[1], best[2], {"fitted_on": "held-out writers", "tried": table}


def _fit_decision_stage(
    base, emb_train, trn, emb_before, emb_after, val, calibration, cohort_kind: str = "bank", search: bool = False
):
    """The fine-tuned model's decision stage, adapted to the bank: cohort = its training writers'
    genuine signatures (``cohort_kind="base+bank"``: added to the base model's shipped cohort, valid
    only while the network is the base's), per-policy per-K thresholds fitted by the clerk's protocol on
    the held-out writers; plus the clerk's-protocol EER before (the base model's own decision) and
    after, on the same held-out writers. (None, None) when too few signatures for a cohort."""
    from sigverify.train import decision as dec
    from sigverify.train.clerk import clerk_protocol
    from sigverify.verify.service import Verifier
    from sigverify.verify.writer import Cohort

    bv = Verifier(base, "cpu", aggregate=None)
    cohort_emb, _ = dec.pick_cohort(emb_train, trn, dec.COHORT_SIZE)
    source = "genuine signatures of the bank's training writers"
    if cohort_kind.startswith("base+bank") and bv.cohort is not None:
        cohort_emb = np.concatenate([bv.cohort.embeddings.astype(np.float32), cohort_emb.astype(np.float32)])
        source = f"the base model's cohort ({len(bv.cohort.embeddings)}) + " + source
    if cohort_kind.endswith("+within"):
        from sigverify.verify.writer import with_within_writer_scatter

        g = trn.genuine
        cohort_emb = with_within_writer_scatter(cohort_emb, emb_train[g], trn.writers[g])
        source += " + their within-writer scatter"
    if len(cohort_emb) < 10:
        return None, None
    metric = base.card.distance
    pair = MetricCalibration.from_dict(calibration[metric])
    reg, mix, searched = dec.COHORT_REG, dec.COHORT_MIX, None
    if search:
        reg, mix, searched = _search_stage(cohort_emb, emb_after, val, pair, metric)
    cohort = Cohort.from_embeddings(cohort_emb, reg)
    decision = dec.fit_decisions(emb_after, val, calibration, cohort, mix=mix)
    decision["default"] = "writer"
    decision["cohort"] = {
        "file": "",
        "sha256": "",
        "n": int(len(cohort_emb)),
        "reg": reg,
        "mix": mix,
        "source": source,
    }
    if searched:
        decision["cohort"]["search"] = searched
    decision["targets"] = {"skilled_far": dec.FAR_TARGET, "genuine_frr": dec.FRR_TARGET, "fitted_on": "held-out writers"}

    def before_fn(q, refs):
        d = bv.decide_embeddings(q, refs)
        return d.verdict.zone, float(d.decision_score)

    fitted = {int(k): MetricCalibration.from_dict(c) for k, c in decision[metric]["writer"].items()}

    def after_fn(q, refs):
        k = max([k for k in fitted if k <= len(refs)] or [min(fitted)])
        return dec._decider(pair, metric, "writer", cohort, mix, fitted[k])(q, refs)

    ks = (1, 3, 5)
    b = clerk_protocol(emb_before, val.writers, val.genuine, before_fn, ks, val.digests)
    a = clerk_protocol(emb_after, val.writers, val.genuine, after_fn, ks, val.digests)
    return cohort_emb, {
        "decision": decision,
        "policy_before": bv.aggregate,
        "before": b,
        "after": a,
        "note": "EER is threshold-free; verdict rates 'after' use thresholds fitted on these same writers",
    }


__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "DataReport",
    "check_data",
    "finetune",
    "estimate_seconds",
    "format_duration",
    "save_finetuned",
    "save_curves_for",
    "model_filename",
    "writer_label",
    "make_head",
    "split_writers",
    "MIN_GENUINE_PER_WRITER",
    "MIN_VAL_WRITERS",
    "MIN_TRAIN_WRITERS",
    "LOSSES",
    "MININGS",
    "HEADS",
    "ADAPTS",
    "COHORTS",
]
