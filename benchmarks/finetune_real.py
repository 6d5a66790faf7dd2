"""Fine-tuning on real signatures: does adapting the head to a "bank's" own writers help on NEW writers?

    python benchmarks/finetune_real.py --base assets/models/sigverify-base.safetensors \\
        --data ../shared/data --split runs/split.json

Takes the split's TEST writers (never seen by the base model in training or validation), shuffles them
(seeded) per dataset and uses half of each dataset's test writers to fine-tune ("the bank's
reference set") and the other half as held-out evaluation writers. Prints the skilled / random EER of
the base model and of the fine-tuned model on the evaluation writers (per dataset and pooled), FAR /
FRR at each model's own threshold (base: its card; fine-tuned: recalibrated on its validation writers),
and the fine-tuning wall time on this machine (CPU unless --device cuda).

``--per-dataset`` fine-tunes one model per dataset (a bank has one script / one scanner) instead of one
on all datasets' tuning writers together. ``--base`` also accepts ``random`` (untrained weights, to
develop the script) or a training checkpoint stem/file from ``sigverify-cli train --checkpoint``
(its ``net.*`` tensors and ``best.*`` if present). Writes nothing except ``--json`` / ``--curves``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def load_base(spec: str, device: str = "cpu"):
    """A LoadedModel from a model file, 'default', 'random', or a training checkpoint."""
    from sigverify.model.embedder import open_model
    from sigverify.model.weights import random_model

    if spec == "random":
        return random_model(device=device)
    if spec in ("default", ""):
        return open_model(None, device)
    p = Path(spec)
    card_ok = p.with_suffix(".json").exists() and json.loads(p.with_suffix(".json").read_text()).get("format", "").startswith(
        "sigverify-model-card"
    )
    if p.suffix == ".safetensors" and card_ok:
        return open_model(p, device)
    return _from_checkpoint(p, device)


def _from_checkpoint(p: Path, device: str):
    """Network weights from a trainer checkpoint (``<stem>.safetensors`` + ``<stem>.json``); calibration
    is a placeholder (the fine-tuned model is recalibrated anyway; the base's FAR/FRR are then indicative)."""
    from safetensors.torch import load_file

    from sigverify.model.card import ModelCard
    from sigverify.model.network import build_network
    from sigverify.model.weights import LoadedModel
    from sigverify.verify.calibration import placeholder_calibration

    st = p.with_suffix(".safetensors")
    meta = json.loads(p.with_suffix(".json").read_text())
    arch = meta["config"]["architecture"]
    tensors = load_file(str(st))
    prefix = "best." if any(k.startswith("best.") for k in tensors) else "net."
    net = build_network(arch)
    net.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    net.eval().to(device)
    step = meta.get("state", {}).get("best_step" if prefix == "best." else "step")
    card = ModelCard(name=f"{p.stem}-step{step}", architecture=arch, calibration=placeholder_calibration())
    return LoadedModel(net, card, None)


def split_test_writers(data, test_writers: list[str], seed: int) -> tuple[list[str], list[str]]:
    """Per dataset: half of its test writers to fine-tune on, the other half to evaluate on."""
    tune, held = [], []
    by_ds: dict[str, list[str]] = {}
    have = set(data.writers)
    for w in sorted(test_writers):
        if w in have:
            by_ds.setdefault(w.split("/", 1)[0], []).append(w)
    for ds, ws in sorted(by_ds.items()):
        rng = random.Random(f"{seed}/finetune-bench/{ds}")
        rng.shuffle(ws)
        k = len(ws) // 2
        tune += ws[:k]
        held += ws[k:]
    return sorted(tune), sorted(held)


def lower_features(base, cached, device):
    """Base-model features below the last conv block of every evaluation image (computed once)."""
    import torch

    from sigverify.train.finetune_loop import below_block

    net = base.network.to(device).eval()
    low = below_block(net)
    out = []
    with torch.inference_mode():
        for i in range(0, len(cached.images), 64):
            x = torch.from_numpy(cached.images[i : i + 64].astype(np.float32) / 255.0)[:, None].to(device)
            out.append(low(x).float().cpu())
    return torch.cat(out)


def embed_from_lower(net, low, device) -> np.ndarray:
    import torch

    from sigverify.train.finetune_loop import last_block_index

    net = net.to(device).eval()
    k = last_block_index(net)
    with torch.inference_mode():
        return torch.cat([net.project(net.head(net.features[k:](c.to(device)))).cpu() for c in low.split(256)]).numpy()


def pair_eval(emb, cached, metric: str, thr) -> dict:
    """Pairs on the evaluation writers, per dataset (+ all)."""
    from sigverify.train.evaluate import evaluate_embeddings

    out = {}
    groups = {ds: cached.datasets == ds for ds in sorted(set(map(str, cached.datasets)))}
    if len(groups) > 1:
        groups["all"] = np.ones(len(cached.images), bool)
    for ds, m in groups.items():
        out[ds] = evaluate_embeddings(emb[m], cached.writers[m], cached.genuine[m], cached.digests[m], metric, thr)
    return out


def clerk_of(model, held, emb, ks) -> dict:
    """The clerk's protocol on the evaluation writers through the app's decision path (``app.case.decide``)
    with ``model``'s own policy, cohort and thresholds."""
    from sigverify.app.case import decide
    from sigverify.train.clerk import clerk_protocol
    from sigverify.verify.service import Verifier

    v = Verifier(model, "cpu", aggregate=None)

    def f(q, refs):
        d = decide(v, q, refs)
        return d.verdict.zone, float(d.decision_score)

    return {"policy": v.aggregate, **clerk_protocol(emb, held.writers, held.genuine, f, ks, held.digests)}


#: The options compared (FinetuneConfig overrides); "base" is the shipped model's own decision.
OPTIONS = {
    "head": dict(adapt="head"),
    "head+cohort": dict(adapt="head", cohort="base+bank"),
    "stage": dict(adapt="stage"),
    "stage-bank": dict(adapt="stage", cohort="bank"),
    "stage+within": dict(adapt="stage", cohort="base+bank+within"),
    "stage+search": dict(adapt="stage", stage_search=True),
    "head+search": dict(adapt="head", cohort="base+bank", stage_search=True),
    "block": dict(adapt="block"),
    "block-anchored": dict(adapt="block", anchor_weight=0.05),
    "block+cohort": dict(adapt="block", cohort="base+bank"),
}


def pct(x) -> str:
    return "  n/a" if x is None or not np.isfinite(x) else f"{100 * x:5.1f}%"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="model .safetensors, 'default', 'random', or a training checkpoint")
    ap.add_argument("--data", required=True, help="data root, e.g. ../shared/data")
    ap.add_argument("--split", help="writer split JSON of the base model: half of its test writers tune, half evaluate")
    ap.add_argument("--collection", help="instead of --split: a collection the base model never saw (e.g. svc2004)")
    ap.add_argument("--tune", type=int, default=20, help="with --collection: writers to fine-tune on (seeded); the rest evaluate")
    ap.add_argument("--datasets", nargs="*", help="with --split: only these datasets (folder names)")
    ap.add_argument("--max-writers", type=int, default=0, help="with --split: at most this many test writers per dataset")
    ap.add_argument("--options", nargs="*", default=["head", "stage", "block"], help=f"compared: {', '.join(OPTIONS)}")
    ap.add_argument("--ks", type=int, nargs="*", default=[5], help="specimens per decision for the clerk's protocol")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default: FinetuneConfig's)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--augment-copies", type=int, default=None)
    ap.add_argument("--val-frac", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--workers", type=int, default=0, help="preprocessing processes")
    ap.add_argument("--cache-dir", default=None, help="keep the preprocessed evaluation images here")
    ap.add_argument("--json", help="write all numbers to this JSON file")
    args = ap.parse_args(argv)

    import torch

    from sigverify.model.embedder import resolve_device
    from sigverify.train.datasets import WriterSplit, scan_root
    from sigverify.train.finetune import FinetuneConfig, check_data, finetune, save_finetuned
    from sigverify.train.identities import name_identities
    from sigverify.train.pipeline import cached_set

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    base = load_base(args.base, str(dev))
    data = scan_root(args.data)
    if args.collection:
        ws = sorted(w for w in data.writers if w.split("/", 1)[0] == args.collection)
        seen = set(base.card.training.get("split", {}).get("train", []) or []) if base.card.training else set()
        if not ws:
            print(f"error: no writers of {args.collection} in --data", file=sys.stderr)
            return 7
        if seen & set(ws):
            print(f"warning: the base model trained on {len(seen & set(ws))} of these writers", file=sys.stderr)
        random.Random(f"{args.seed}/finetune-bench/{args.collection}").shuffle(ws)
        tune_w, held_w = sorted(ws[: args.tune]), sorted(ws[args.tune :])
    else:
        if not args.split:
            print("error: give --split or --collection", file=sys.stderr)
            return 7
        split = WriterSplit.load(args.split)
        if args.datasets:
            data = data.subset([w for w in data.writers if w.split("/", 1)[0] in set(args.datasets)])
        test = list(split.test)
        if args.max_writers:
            keep = []
            for ds in sorted({w.split("/", 1)[0] for w in test}):
                keep += sorted(w for w in test if w.startswith(ds + "/"))[: args.max_writers]
            test = keep
        tune_w, held_w = split_test_writers(data, test, args.seed)
    if not tune_w or not held_w:
        print("error: no writers to tune on / evaluate on", file=sys.stderr)
        return 7
    print(f"base model: {base.model_id}{' (UNTRAINED random weights)' if base.card.random_init else ''}")
    print(f"device: {dev} ({torch.get_num_threads()} threads), {os.cpu_count()} CPUs")
    print(f"fine-tune on {len(tune_w)} writers, evaluate on {len(held_w)} other writers")
    metric = base.card.distance
    try:
        base_thr = base.card.metric_calibration(metric).eer_threshold
    except Exception:  # noqa: BLE001
        base_thr = None
    pcfg = base.card.preprocess_config
    t = time.perf_counter()
    held = name_identities(cached_set(data.subset(held_w), pcfg, args.cache_dir, workers=args.workers), 8, 1)
    low = lower_features(base, held, dev)
    print(f"evaluation images: {len(held.images)} ({time.perf_counter() - t:.1f}s preprocessing + base features)")
    ks = tuple(args.ks)

    t0 = time.perf_counter()
    rep = check_data(data.subset(tune_w), pcfg, workers=args.workers, name="tune-writers")
    rep.cached = name_identities(rep.cached, 8, 1)  # crossmedia-zh: (writer, name) identities, same-name negatives
    t_pre = time.perf_counter() - t0
    print(f"tuning set: {rep.n_images} images preprocessed in {t_pre:.1f}s")

    emb_b = embed_from_lower(base.network, low, dev)
    rows = {"base": {"pairs": pair_eval(emb_b, held, metric, base_thr), "clerk": clerk_of(base, held, emb_b, ks), "seconds": 0.0}}
    report: dict = {
        "base": base.model_id,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "tune_writers": tune_w,
        "eval_writers": len(held_w),
        "preprocess_s": round(t_pre, 2),
        "runs": {},
    }
    import tempfile

    for opt in args.options:
        from sigverify.train.finetune_loop import default_epochs

        over = dict(OPTIONS[opt])
        over.setdefault("epochs", default_epochs(over.get("adapt", "head")))  # what the CLI and the wizard run
        for k in ("epochs", "lr", "augment_copies"):
            if getattr(args, k) is not None:
                over[k] = getattr(args, k)
        cfg = FinetuneConfig(val_frac=args.val_frac, seed=args.seed, device=str(dev), **over)
        last = {"t": time.perf_counter()}

        def prog(f, m, row, opt=opt, last=last):
            if time.perf_counter() - last["t"] > 20:
                last["t"] = time.perf_counter()
                print(f"  [{opt}] {100 * f:3.0f}% {m}", flush=True)

        res = finetune(rep, base, cfg, progress=prog)
        with tempfile.TemporaryDirectory() as tmp:
            model = load_base(str(save_finetuned(res, out=Path(tmp) / "ft.safetensors")), "cpu")
            emb = embed_from_lower(model.network, low, dev)
            thr = res.card.calibration[metric]["eer_threshold"]
            rows[opt] = {"pairs": pair_eval(emb, held, metric, thr), "clerk": clerk_of(model, held, emb, ks)}
        val = res.card.metrics["validation"]
        rows[opt].update(
            seconds=res.seconds,
            best_epoch=res.card.training["best_epoch"],
            notes=res.notes,
            val_pairs=val["after"]["eer"] if val.get("after") else None,
            val_clerk={k: v.get("eer") for k, v in (val.get("clerk") or {}).get("after", {}).items()},
            val_clerk_before={k: v.get("eer") for k, v in (val.get("clerk") or {}).get("before", {}).items()},
        )
        r, p = rows[opt], rows[opt]["pairs"]
        pk = "all" if "all" in p else next(iter(p))
        c = r["clerk"].get(str(ks[-1]), {})
        print(
            f"  [{opt}] done in {res.seconds:.1f}s (best epoch {r['best_epoch']}): pairs {pct(p[pk].eer)} / "
            f"{pct(p[pk].eer_random)}, clerk K={ks[-1]} EER {pct(c.get('eer'))}; validation pairs {pct(r['val_pairs'])}, "
            f"clerk {r['val_clerk']} (before {r['val_clerk_before']}) " + "; ".join(res.notes),
            flush=True,
        )

    key = "all" if "all" in rows["base"]["pairs"] else next(iter(rows["base"]["pairs"]))
    print(f"\n== {len(held_w)} evaluation writers ({key}); fine-tuned on {len(tune_w)} writers ({rep.n_images} images)")
    head = f"{'option':12s} {'pairs skilled':>13s} {'random':>7s}"
    for k in ks:
        head += f" | K={k} EER  gen acc  gen rej  sk acc  sk rej"
    print(head + " | seconds | validation (tuning writers' held-out): pairs, clerk EER")
    for opt, r in rows.items():
        p = r["pairs"][key]
        line = f"{opt:12s} {pct(p.eer):>13s} {pct(p.eer_random):>7s}"
        for k in ks:
            c = r["clerk"].get(str(k), {})
            line += " | " + "  ".join(
                pct(c.get(x)) for x in ("eer", "genuine_accepted", "genuine_rejected", "skilled_accepted", "skilled_rejected")
            )
        vc = ", ".join(f"K={k} {pct(v)}" for k, v in (r.get("val_clerk") or {}).items())
        line += f" | {r['seconds']:7.1f} | {pct(r.get('val_pairs'))}, {vc}"
        print(line)
        report["runs"][opt] = {
            "pairs": {ds: x.to_dict() for ds, x in r["pairs"].items()},
            **{k: v for k, v in r.items() if k != "pairs"},
        }
    if args.json:
        from sigverify.atomic import write_text_atomic
        from sigverify.cli import _finite

        write_text_atomic(args.json, json.dumps(_finite(report), indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
