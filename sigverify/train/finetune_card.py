"""Fine-tuning, step 3: the new model's card (recalibrated thresholds, provenance, before/after figures)
and saving it (weights + card, atomically, in the user's model folder). No Qt."""

from __future__ import annotations

import copy
import datetime as _dt
import os
import platform
import re
from pathlib import Path

from sigverify.errors import DataError


def calibration_from_embeddings(emb, val) -> dict:
    """Thresholds and score mapping for every metric, fitted on the held-out writers' embeddings."""
    from sigverify.model.card import METRICS
    from sigverify.train.evaluate import evaluate_embeddings
    from sigverify.verify.calibration import fit_calibration

    out = {}
    for metric in METRICS:
        r = evaluate_embeddings(emb, val.writers, val.genuine, val.digests, metric)
        out[metric] = fit_calibration(r.distances["pos"], r.distances["skilled"], r.distances["random"]).__dict__
    return out


def base_threshold(card, metric: str) -> float | None:
    from sigverify.errors import ModelError

    try:
        return float(card.metric_calibration(metric).eer_threshold)
    except ModelError:  # no calibration for this metric
        return None


def model_name_for(folder_label: str) -> str:
    return f"finetuned-{re.sub(r'[^A-Za-z0-9_.-]+', '-', folder_label).strip('-') or 'references'}"


def build_card(
    base,
    *,
    name: str | None,
    calibration: dict,
    data_summary: dict,
    cfg,
    best_epoch: int,
    cal_note: str,
    seconds: float,
    trunk_seconds: float,
    device,
    notes: list[str],
    history: list[dict],
    before,
    after,
    val_writers: int,
):
    """The fine-tuned model's card: the base model's architecture and preprocessing, the new calibration,
    and where it came from (base model, data, configuration, timing, held-out before/after)."""
    import torch

    from sigverify.model.card import ModelCard

    base_id = base.model_id if getattr(base, "path", None) or base.card.weights_sha256 else base.card.name
    return ModelCard(
        name=name or model_name_for(data_summary["folder"]),
        architecture=base.card.architecture,
        embedding_dim=base.card.embedding_dim,
        preprocessing=copy.deepcopy(base.card.preprocessing),
        distance=base.card.distance,
        calibration=calibration,
        random_init=False,
        base_model=base_id,
        training={
            "kind": "finetune",
            "method": _method(cfg),
            "base_model": base_id,
            "base_random_init": bool(base.card.random_init),
            "data": data_summary,
            "config": cfg.to_dict(),
            "best_epoch": best_epoch,
            "calibration": cal_note,
            "seconds": round(seconds, 1),
            "trunk_seconds": round(trunk_seconds, 1),
            "device": str(device),
            "host": f"{platform.system()} {platform.machine()}, torch {torch.__version__}",
            "finished": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "notes": notes,
            "history": [{k: v for k, v in h.items() if k != "eta_s"} for h in history],
        },
        metrics={
            "validation": {
                "before": before.to_dict() if before else None,
                "after": after.to_dict() if after else None,
                "writers": val_writers,
            }
        },
    )


def _method(cfg) -> str:
    adapt = getattr(cfg, "adapt", "head")
    if adapt == "stage":
        return "network unchanged; decision stage adapted (cohort + thresholds from the bank's writers)"
    if adapt == "block":
        return "layers below the last conv block frozen (features cached); last conv block + embedding projection trained"
    return "frozen trunk, cached features, trained embedding head" + (
        " (low-rank residual adapter, merged)" if cfg.head == "lowrank" else ""
    )


def save_curves_for(result, prefix: str | os.PathLike) -> list[str]:
    """ROC / DET PNGs of base vs fine-tuned on the held-out writers ([] when none were held out)."""
    from sigverify.train.evaluate import save_curves

    if result.before is None or result.after is None:
        return []
    return save_curves({"base": result.before, "fine-tuned": result.after}, str(prefix), "held-out writers")


def model_filename(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.strip()).strip("-.") or "finetuned"
    return stem[:80]


def save_finetuned(result, name: str | None = None, out: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
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
    cohort = getattr(result, "cohort", None)
    if cohort is not None and (card.decision or {}).get("cohort") is not None:
        # the bank's cohort first, under a name carrying its hash: an old card never meets a new cohort
        from sigverify.hashing import sha256_file
        from sigverify.verify.writer import save_cohort

        tmp = save_cohort(path.with_name(path.stem + ".cohort.tmp.safetensors"), cohort)
        sha = sha256_file(tmp)
        final = path.with_name(f"{path.stem}.cohort-{sha[:12]}.safetensors")
        os.replace(tmp, final)
        card.decision["cohort"].update(file=final.name, sha256=sha)
    elif (card.decision or {}).get("cohort") is not None:
        card.decision = {}  # no cohort to go with it: the model decides by the mean policy
    p = save_model(result.network, card, path)
    result.card = card
    return p


__all__ = ["calibration_from_embeddings", "base_threshold", "build_card", "save_curves_for", "model_filename", "save_finetuned"]
