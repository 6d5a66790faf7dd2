"""finetune: adapt a model to a bank's own reference folder (decision stage, head or last conv block)."""

from __future__ import annotations

import sys

from sigverify.cli import add_common, emit
from sigverify.train.finetune_loop import ADAPTS, COHORTS, DEFAULT_ADAPT, default_epochs


def register(sub) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a model on your own reference folder (<writer>/{genuine,forgery}/)",
        description="Fine-tune the embedding head of a model on DATA (frozen trunk: about a minute "
        "on CPU for a bank-sized set). Prints EER before/after on held-out writers.",
    )
    p.add_argument("data", help="folder: <writer>/genuine/*.png (+ optional <writer>/forgery/*.png)")
    p.add_argument("--base", default="default", help="base model .safetensors, or 'default' (the shipped model)")
    p.add_argument("--out", help="output .safetensors (default: the user model folder, named after --name)")
    p.add_argument("--name", help="model name for the card (default: finetuned-<folder>)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: 30 for head, 12 for block)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--loss", choices=["contrastive", "triplet"], default="triplet")
    p.add_argument("--mining", choices=["batch-hard", "semi-hard"], default="batch-hard", help="triplet mining")
    p.add_argument(
        "--head",
        choices=["embed", "lowrank"],
        default="embed",
        help="train the whole projection (default) or a low-rank residual adapter on it",
    )
    p.add_argument(
        "--adapt",
        choices=list(ADAPTS),
        default=DEFAULT_ADAPT,
        help="what is adapted: 'stage' (the decision stage only: cohort + thresholds from the bank's writers), "
        "'head' (+ the embedding projection) or 'block' (+ the last convolutional block); default %(default)s",
    )
    p.add_argument(
        "--cohort",
        choices=list(COHORTS),
        default="auto",
        help="decision-stage cohort (auto: the shipped cohort + the bank's writers when the network is unchanged)",
    )
    p.add_argument("--augment-copies", type=int, default=2, help="augmented copies per training image (features cached)")
    p.add_argument("--val-frac", type=float, default=0.3, help="fraction of writers held out for validation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="processes for preprocessing (0 = in this process)")
    p.add_argument("--curves", help="save ROC / DET curves (base vs fine-tuned) as PREFIX_roc.png / PREFIX_det.png")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.add_argument("--quiet", action="store_true")
    add_common(p, model=False)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.set_defaults(func=cmd_finetune)


def _pct(x) -> str:
    import math

    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def cmd_finetune(args) -> int:
    from sigverify.cli.training import CliProgress
    from sigverify.model.embedder import open_model, resolve_device
    from sigverify.train.finetune import FinetuneConfig, finetune, save_curves_for, save_finetuned

    dev = resolve_device(args.device)
    base = open_model(None if args.base in ("default", "", None) else args.base, dev)
    cfg = FinetuneConfig(
        epochs=args.epochs or default_epochs(args.adapt),
        adapt=args.adapt,
        cohort=args.cohort,
        lr=args.lr,
        loss=args.loss,
        mining=args.mining,
        head=args.head,
        augment_copies=args.augment_copies,
        val_frac=args.val_frac,
        seed=args.seed,
        device=str(dev),
    )
    bar = CliProgress("finetune", args.quiet)
    try:
        res = finetune(args.data, base, cfg, name=args.name, progress=bar, workers=args.workers)
    finally:
        bar.close()
    path = save_finetuned(res, args.name, args.out, overwrite=args.overwrite)
    curves = save_curves_for(res, args.curves) if args.curves else []
    b, a = res.before, res.after
    clerk = res.card.metrics.get("validation", {}).get("clerk") or {}
    d = {
        "model": str(path),
        "name": res.card.name,
        "base_model": res.card.base_model,
        "seconds": round(res.seconds, 1),
        "data": res.card.training["data"],
        "before": b.to_dict() if b else None,
        "after": a.to_dict() if a else None,
        "adapt": cfg.adapt,
        "clerk": {part: {k: v.get("eer") for k, v in (clerk.get(part) or {}).items()} for part in ("before", "after")},
        "notes": res.notes,
        "curves": curves,
    }
    lines = [f"saved {path} ({res.card.name}) in {res.seconds:.1f}s  [base: {res.card.base_model}]"]
    if b is not None and a is not None:
        lines += [
            f"held-out writers: {a.writers}",
            f"  skilled EER  before {_pct(b.eer):>6}  after {_pct(a.eer):>6}",
            f"  random  EER  before {_pct(b.eer_random):>6}  after {_pct(a.eer_random):>6}",
            f"  at threshold: before FAR {_pct(b.far)} FRR {_pct(b.frr)}  |  after (recalibrated) "
            f"FAR {_pct(a.far)} FRR {_pct(a.frr)}",
        ]
    for k in sorted(set(clerk.get("before") or {}) & set(clerk.get("after") or {}), key=int):
        lines.append(
            f"  decision with {k} specimen(s): EER before {_pct(clerk['before'][k].get('eer')):>6}  "
            f"after {_pct(clerk['after'][k].get('eer')):>6}"
        )
    lines += [f"note: {n}" for n in res.notes]
    lines += [f"curves: {c}" for c in curves]
    emit(args, d, "\n".join(lines))
    if base.card.random_init and not args.json:
        print("warning: the base model has UNTRAINED random weights", file=sys.stderr)
    return 0
