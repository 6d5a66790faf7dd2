"""train and eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from sigverify.cli import add_common, emit


class CliProgress:
    """A tqdm progress bar on stderr driven by ``progress(fraction, message, row)`` callbacks."""

    def __init__(self, desc: str, quiet: bool = False):
        from tqdm import tqdm

        self.bar = tqdm(
            total=1000, desc=desc, file=sys.stderr, disable=quiet, bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}"
        )
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
    p.add_argument(
        "--select-per-dataset",
        action="store_true",
        help="keep the checkpoint with the best mean of per-collection validation EERs",
    )
    p.add_argument(
        "--name-identities",
        action="store_true",
        help="learn multi-name collections (crossmedia-zh) per (writer, name) with same-name hard negatives",
    )
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
    p.add_argument(
        "--references",
        type=int,
        nargs="+",
        metavar="K",
        help="also run the clerk's protocol: questioned vs K specimens with the app's own decision (e.g. 1 3 5)",
    )
    p.add_argument(
        "--policy", choices=["mean", "min", "writer"], help="decision policy for --references (default: the model card's)"
    )
    p.add_argument(
        "--no-name-identities",
        action="store_true",
        help="do not split multi-name writers (crossmedia-zh) into (writer, name) identities",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("calibrate", help="fit the decision stage (cohort + per-K thresholds) of a model on validation writers")
    p.add_argument("data", help="data folder (the model's training collections)")
    add_common(p)
    p.add_argument(
        "--split", required=True, help="writer split JSON: cohort from its train writers, thresholds on its val writers"
    )
    p.add_argument("--out", required=True, help="where to write the recalibrated model (.safetensors + card + cohort)")
    p.add_argument("--datasets", nargs="*", help="only these collections (default: the card's training collections)")
    p.add_argument("--far", type=float, default=None, help="skilled-forgery accept rate target (default 0.02)")
    p.add_argument("--frr", type=float, default=None, help="genuine reject rate target (default 0.03)")
    p.add_argument("--cache-dir")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_calibrate)


def cmd_train(args) -> int:
    from sigverify.train.datasets import WriterSplit
    from sigverify.train.pipeline import train_job
    from sigverify.train.trainer import TrainConfig

    cfg = TrainConfig(
        architecture=args.arch,
        loss=args.loss,
        mining=args.mining,
        writer_loss_weight=args.writer_loss,
        steps=args.steps,
        lr=args.lr,
        writers_per_batch=args.batch_writers,
        augment=not args.no_augment,
        seed=args.seed,
        device=args.device,
        eval_every=args.eval_every,
        time_budget_s=args.time_budget * 60,
        threads=args.threads,
        balance_datasets=args.balance,
        select_per_dataset=args.select_per_dataset,
    )
    split = WriterSplit.load(args.split) if args.split else None
    bar = CliProgress("train", args.quiet)
    try:
        res = train_job(
            args.data,
            args.out,
            cfg,
            name=args.name,
            split=split,
            cache_dir=args.cache_dir,
            scan_variants=args.scan_variants,
            checkpoint=args.checkpoint,
            resume=args.resume,
            progress=bar,
            workers=args.workers,
            init=args.init,
            name_identities=args.name_identities,
        )
    finally:
        bar.close()
    if args.split_out:
        res.split.save(args.split_out)
    d = {"model": str(res.model_path), "seconds": round(res.seconds, 1), "test": {k: v.to_dict() for k, v in res.test.items()}}
    lines = [f"saved {res.model_path} in {res.seconds:.0f}s"] + [
        f"  {k:20s} skilled EER {100 * v.eer:5.1f}%  random EER {100 * v.eer_random:5.1f}%"
        f"  AUC {v.auc:.3f}  ({v.writers} writers)"
        for k, v in res.test.items()
    ]
    emit(args, d, "\n".join(lines))
    return 0


def _cached(data, writers, cfg, args):
    """Preprocessed arrays of ``writers`` (all when None). With --cache-dir the whole folder is cached
    once and subsets are selected from it, so evaluating another split never preprocesses again."""
    from sigverify.train.pipeline import cached_set

    bar = CliProgress("preprocess", args.quiet)
    try:
        if args.cache_dir or writers is None:
            cs = cached_set(data, cfg, args.cache_dir, lambda f, m: bar(f, m))
            return cs if writers is None else cs.of_writers(writers)
        return cached_set(data.subset(writers), cfg, None, lambda f, m: bar(f, m))
    finally:
        bar.close()


def _relabel(cs, args):
    if getattr(args, "no_name_identities", False):
        return cs
    from sigverify.train.identities import name_identities

    return name_identities(cs, 8, args.seed + 1 if hasattr(args, "seed") else 1)


def cmd_eval(args) -> int:
    from sigverify.app.session import open_session
    from sigverify.errors import DataError
    from sigverify.train.clerk import clerk_protocol
    from sigverify.train.datasets import WriterSplit, scan_root
    from sigverify.train.evaluate import evaluate_embeddings, save_curves

    session = open_session(args.model, args.device, args.metric, args.policy, True)
    verifier = session.verifier
    model = verifier.model
    data = scan_root(args.data)
    writers = None
    if args.split:
        writers = set(getattr(WriterSplit.load(args.split), args.part)) & set(data.writers)
        if not writers:
            raise DataError(f"none of the {args.part} writers of {args.split} are in {args.data}")
    cs = _cached(data, writers, model.card.preprocess_config, args)
    metric = verifier.metric
    thr = verifier.calibration.eer_threshold if model.card.calibration else None
    emb_raw = verifier.embedder.embed_arrays(list(cs.images))
    full, cs = cs, _relabel(cs, args)
    emb = emb_raw[full.rows_of(cs.paths)]
    res = {}
    for ds in sorted(set(map(str, cs.datasets))):
        m = cs.datasets == ds
        res[ds] = evaluate_embeddings(emb[m], cs.writers[m], cs.genuine[m], cs.digests[m], metric, thr, args.seed)
    if len(res) > 1:
        res["all"] = evaluate_embeddings(emb, cs.writers, cs.genuine, cs.digests, metric, thr, args.seed)
    clerk = {}
    if args.references:
        if any(k < 1 for k in args.references):
            raise DataError("--references: K must be 1 or more")
        from sigverify.app.case import decide

        def decide_fn(q, refs):
            d = decide(verifier, q, refs)
            return d.verdict.zone, float(d.decision_score)

        for ds in res:
            m = np.ones(len(cs.paths), bool) if ds == "all" else cs.datasets == ds
            clerk[ds] = clerk_protocol(
                emb[m], cs.writers[m], cs.genuine[m], decide_fn, tuple(args.references), cs.digests[m], args.seed
            )
    main_key = "all" if "all" in res else next(iter(res))
    d = res[main_key].to_dict()
    d.update(
        {
            "model": model.model_id,
            "random_weights": model.card.random_init,
            "data": str(args.data),
            "failed_files": [{"path": p, "error": e} for p, e in cs.failed],
        }
    )
    if args.references:
        d["references"] = clerk[main_key]
        d["policy"] = verifier.aggregate
    if len(res) > 1:
        d["datasets"] = {k: v.to_dict() for k, v in res.items() if k != "all"}
        if args.references:
            for k in d["datasets"]:
                d["datasets"][k]["references"] = clerk[k]
    if args.curves:
        d["curves"] = save_curves({model.card.name: res[main_key]}, args.curves, Path(args.data).name)
    if args.report:
        from sigverify.atomic import write_text_atomic
        from sigverify.cli import _finite

        write_text_atomic(args.report, json.dumps(_finite(d), indent=2, default=float))
    lines = [f"model {model.model_id} on {args.data} ({metric} distance)"]

    def pct(x):
        return "  -  " if x is None or x != x else f"{100 * x:5.1f}"

    for k, v in res.items():
        far = (
            f"FAR {100 * v.far:.1f}% FRR {100 * v.frr:.1f}% @ {v.threshold:.3f}"
            if v.threshold is not None and v.far is not None
            else ""
        )
        lines.append(
            f"  {k:20s} skilled EER {pct(v.eer)}%  random EER {pct(v.eer_random)}%  AUC {v.auc:.3f}  "
            f"{far}  writers {v.writers}  pairs {v.pairs}"
        )
    if args.references:
        lines.append(
            f"clerk's protocol ({verifier.aggregate} policy): EER skilled/random; genuine accepted/referred/rejected; "
            "skilled accepted/rejected; random accepted"
        )
        for ds, per_k in clerk.items():
            for kk, r in per_k.items():
                lines.append(
                    f"  {ds:20s} K={kk}  EER {pct(r['eer'])} / {pct(r['eer_random'])}  genuine {pct(r['genuine_accepted'])} "
                    f"{pct(r['genuine_referred'])} {pct(r['genuine_rejected'])}  skilled {pct(r['skilled_accepted'])} "
                    f"{pct(r['skilled_rejected'])}  random {pct(r['random_accepted'])}  writers {r['writers']}"
                )
    if cs.failed:
        lines.append(f"  {len(cs.failed)} file(s) could not be used (see --json)")
    emit(args, d, "\n".join(lines))
    return 0


def cmd_calibrate(args) -> int:
    from sigverify.errors import DataError
    from sigverify.model.embedder import open_model, resolve_device
    from sigverify.model.weights import save_model
    from sigverify.train import decision as dec
    from sigverify.train.datasets import WriterSplit, scan_root
    from sigverify.verify.service import Verifier

    dev = resolve_device(args.device)
    model = open_model(args.model, dev)
    split = WriterSplit.load(args.split)
    data = scan_root(args.data)
    keep = set(args.datasets or model.card.training.get("datasets") or data.datasets)
    writers = {w for w in data.writers if w.split("/")[0] in keep}
    if not writers:
        raise DataError(f"no writers of {sorted(keep)} in {args.data}")
    cs = _cached(data, writers, model.card.preprocess_config, args)
    emb_all = Verifier(model, str(dev)).embedder.embed_arrays(list(cs.images))
    trn, val = cs.of_writers(split.train), cs.of_writers(split.val)
    if not len(val.paths) or not len(trn.paths):
        raise DataError("the split has no train or no validation writers in these collections")
    trn_emb = emb_all[cs.rows_of(trn.paths)]
    val = _relabel(val, args)
    val_emb = emb_all[cs.rows_of(val.paths)]
    card = model.card
    card.training = dict(
        card.training, decision_fitted_on={"val_writers": len(set(split.val) & set(data.writers)), "datasets": sorted(keep)}
    )
    dec.attach_decision(
        card,
        args.out,
        trn_emb,
        trn,
        val_emb,
        val,
        far_target=args.far if args.far is not None else dec.FAR_TARGET,
        frr_target=args.frr if args.frr is not None else dec.FRR_TARGET,
    )
    path = save_model(model.network, card, args.out)
    d = {"model": str(path), "decision": card.decision}
    lines = [f"saved {path}  (default policy {card.decision['default']}, cohort {card.decision['cohort']['n']} embeddings)"]
    for metric, pols in card.decision.items():
        if metric not in ("euclidean", "cosine"):
            continue
        for pol, by_k in pols.items():
            for k, c in by_k.items():
                e = c["expected"]
                lines.append(
                    f"  {metric:9s} {pol:6s} K={k}: accept <= {c['accept']:.3f}, reject > {c['reject']:.3f}; validation: "
                    f"genuine accepted {100 * (e['genuine_accepted'] or 0):.1f}%, "
                    f"rejected {100 * (e['genuine_rejected'] or 0):.1f}%,"
                    f" skilled accepted {100 * (e['skilled_accepted'] or 0):.1f}%"
                )
    emit(args, d, "\n".join(lines))
    return 0
