"""train and eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sigverify.cli import add_common, emit


class CliProgress:
    """A tqdm progress bar on stderr driven by ``progress(fraction, message, row)`` callbacks."""

    def __init__(self, desc: str, quiet: bool = False):
        from tqdm import tqdm

        self.bar = tqdm(total=1000, desc=desc, file=sys.stderr, disable=quiet, bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")
        self.n = 0
        self.quiet = quiet

    def __call__(self, fraction: float, message: str, row: dict | None = None) -> None:
        target = int(1000 * min(max(fraction, 0.0), 1.0))
        if target > self.n:
            self.bar.update(target - self.n)
            self.n = target
        self.bar.set_postfix_str(message[:90], refresh=False)
        if row and "val_eer" in row and not self.quiet:
            self.bar.write(message, file=sys.stderr)

    def close(self):
        self.bar.close()


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on a data folder (<writer>/{genuine,forgery}/*.png)")
    p.add_argument("data", help="dataset folder, or a folder of datasets")
    p.add_argument("--out", required=True, help="output model path (.safetensors; the card is written beside it)")
    p.add_argument("--name", help="model name for the card (default: file stem)")
    p.add_argument("--arch", default="signet-s", help="signet-s (default), signet-half or signet")
    p.add_argument("--loss", choices=["contrastive", "triplet"], default="contrastive")
    p.add_argument("--mining", choices=["batch-hard", "semi-hard"], default="batch-hard")
    p.add_argument("--writer-loss", type=float, default=1.0, help="weight of the writer-classification loss (0 = off)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--time-budget", type=float, default=0, help="minutes: stop (with the LR schedule completed) after this long")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = default)")
    p.add_argument("--batch-writers", type=int, default=16)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--scan-variants", type=int, default=0, help="messy-scan copies of every image to mix in")
    p.add_argument("--split", help="writer split JSON to use (written by a previous run); default: new seeded split")
    p.add_argument("--split-out", help="write the writer split used to this JSON file")
    p.add_argument("--cache-dir", help="keep preprocessed arrays here and reuse them")
    p.add_argument("--checkpoint", help="checkpoint path stem (resumable with --resume)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=0, help="processes for preprocessing")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--init", help="start from this model's weights (fine-tune the whole network)")
    p.add_argument("--balance", action="store_true", help="every collection the same share of each batch")
    p.add_argument("--select-per-dataset", action="store_true",
                   help="keep the checkpoint with the best mean of per-collection validation EERs")
    p.add_argument("--name-identities", action="store_true",
                   help="learn multi-name collections (crossmedia-zh) per (writer, name) with same-name hard negatives")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="writer-independent EER / AUC / FAR / FRR on a data folder (see EVALUATION.md)")
    p.add_argument("data")
    add_common(p)
    p.add_argument("--metric", choices=["euclidean", "cosine"])
    p.add_argument("--split", help="a split JSON: evaluate only its writers of --part")
    p.add_argument("--part", default="test", choices=["train", "val", "test"])
    p.add_argument("--curves", help="save ROC and DET curves as PREFIX_roc.png / PREFIX_det.png")
    p.add_argument("--report", help="also write the JSON report to this file")
    p.add_argument("--cache-dir")
    p.add_argument("--seed", type=int, default=0, help="seed of the random-forgery pair sample")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)


def cmd_train(args) -> int:
    from sigverify.train.datasets import WriterSplit
    from sigverify.train.pipeline import train_job
    from sigverify.train.trainer import TrainConfig

    cfg = TrainConfig(architecture=args.arch, loss=args.loss, mining=args.mining, writer_loss_weight=args.writer_loss,
                      steps=args.steps, lr=args.lr, writers_per_batch=args.batch_writers, augment=not args.no_augment,
                      seed=args.seed, device=args.device, eval_every=args.eval_every,
                      time_budget_s=args.time_budget * 60, threads=args.threads, balance_datasets=args.balance,
                      select_per_dataset=args.select_per_dataset)
    split = WriterSplit.load(args.split) if args.split else None
    bar = CliProgress("train", args.quiet)
    try:
        res = train_job(args.data, args.out, cfg, name=args.name, split=split, cache_dir=args.cache_dir,
                        scan_variants=args.scan_variants, checkpoint=args.checkpoint, resume=args.resume,
                        progress=bar, workers=args.workers, init=args.init, name_identities=args.name_identities)
    finally:
        bar.close()
    if args.split_out:
        res.split.save(args.split_out)
    d = {"model": str(res.model_path), "seconds": round(res.seconds, 1),
         "test": {k: v.to_dict() for k, v in res.test.items()}}
    lines = [f"saved {res.model_path} in {res.seconds:.0f}s"] + [
        f"  {k:20s} skilled EER {100 * v.eer:5.1f}%  random EER {100 * v.eer_random:5.1f}%  AUC {v.auc:.3f}  ({v.writers} writers)"
        for k, v in res.test.items()]
    emit(args, d, "\n".join(lines))
    return 0


def cmd_eval(args) -> int:
    from sigverify.errors import DataError
    from sigverify.model.embedder import open_model, resolve_device
    from sigverify.train.datasets import WriterSplit, scan_root
    from sigverify.train.evaluate import save_curves
    from sigverify.train.pipeline import cached_set, evaluate_set

    dev = resolve_device(args.device)
    model = open_model(args.model, dev)
    data = scan_root(args.data)
    if args.split:
        part = getattr(WriterSplit.load(args.split), args.part)
        data = data.subset(part)
        if not data.samples:
            raise DataError(f"none of the {args.part} writers of {args.split} are in {args.data}")
    bar = CliProgress("preprocess", args.quiet)
    try:
        cs = cached_set(data, model.card.preprocess_config, args.cache_dir, lambda f, m: bar(f, m))
    finally:
        bar.close()
    metric = args.metric or model.card.distance
    thr = model.card.metric_calibration(metric).eer_threshold if model.card.calibration else None
    res = evaluate_set(model.network, cs, dev, metric, thr)
    main_key = "all" if "all" in res else next(iter(res))
    d = res[main_key].to_dict()
    d.update({"model": model.model_id, "random_weights": model.card.random_init, "data": str(args.data),
              "failed_files": [{"path": p, "error": e} for p, e in cs.failed]})
    if len(res) > 1:
        d["datasets"] = {k: v.to_dict() for k, v in res.items() if k != "all"}
    if args.curves:
        d["curves"] = save_curves({model.card.name: res[main_key]}, args.curves, Path(args.data).name)
    if args.report:
        from sigverify.atomic import write_text_atomic

        write_text_atomic(args.report, json.dumps(d, indent=2))
    lines = [f"model {model.model_id} on {args.data} ({metric} distance)"]
    for k, v in res.items():
        far = f"FAR {100 * v.far:.1f}% FRR {100 * v.frr:.1f}% @ {v.threshold:.3f}" if v.threshold is not None else ""
        lines.append(f"  {k:20s} skilled EER {100 * v.eer:5.1f}%  random EER {100 * v.eer_random:5.1f}%  AUC {v.auc:.3f}  "
                     f"{far}  writers {v.writers}  pairs {v.pairs}")
    if cs.failed:
        lines.append(f"  {len(cs.failed)} file(s) could not be used (see --json)")
    emit(args, d, "\n".join(lines))
    return 0
