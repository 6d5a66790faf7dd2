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


def evaluate(base, new_net, cached, metric: str, base_thr, new_thr, device) -> dict:
    """Trunk once over the evaluation images, both heads on the same features; per dataset + all."""
    import torch

    from sigverify.train.evaluate import evaluate_embeddings

    feats = []
    net = base.network.to(device).eval()
    with torch.inference_mode():
        for i in range(0, len(cached.images), 64):
            x = torch.from_numpy(cached.images[i : i + 64].astype(np.float32) / 255.0)[:, None].to(device)
            feats.append(net.trunk(x).float())
        f = torch.cat(feats)
        eb = net.project(f).cpu().numpy()
        en = new_net.to(device).eval().project(f).cpu().numpy()
    out = {}
    groups = {ds: cached.datasets == ds for ds in sorted(set(map(str, cached.datasets)))}
    if len(groups) > 1:
        groups["all"] = np.ones(len(cached.images), bool)
    for ds, m in groups.items():
        b = evaluate_embeddings(eb[m], cached.writers[m], cached.genuine[m], cached.digests[m], metric, base_thr)
        a = evaluate_embeddings(en[m], cached.writers[m], cached.genuine[m], cached.digests[m], metric, new_thr)
        out[ds] = {"before": b, "after": a}
    return out, eb, en


def clerk_before_after(base, res, held, eb, en, ks=(1, 3, 5)) -> dict:
    """The clerk's protocol on the evaluation writers: the base model's own decision (its card's policy
    and thresholds) vs the fine-tuned model's (its adapted decision stage), both through the app's
    decision path."""
    import tempfile

    from sigverify.app.case import decide
    from sigverify.train.clerk import clerk_protocol
    from sigverify.train.finetune import save_finetuned
    from sigverify.verify.service import Verifier

    def fn(v):
        def f(q, refs):
            d = decide(v, q, refs)
            return d.verdict.zone, float(d.decision_score)

        return f

    with tempfile.TemporaryDirectory() as tmp:
        vb = Verifier(base, "cpu", aggregate=None)
        vn = Verifier(save_finetuned(res, out=Path(tmp) / "ft.safetensors"), "cpu", aggregate=None)
        return {
            "policy_before": vb.aggregate,
            "policy_after": vn.aggregate,
            "before": clerk_protocol(eb, held.writers, held.genuine, fn(vb), ks, held.digests),
            "after": clerk_protocol(en, held.writers, held.genuine, fn(vn), ks, held.digests),
        }


def pct(x) -> str:
    return "  n/a" if x is None or not np.isfinite(x) else f"{100 * x:5.1f}%"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="model .safetensors, 'default', 'random', or a training checkpoint")
    ap.add_argument("--data", required=True, help="data root, e.g. ../shared/data")
    ap.add_argument("--split", required=True, help="writer split JSON of the base model (runs/split.json)")
    ap.add_argument("--per-dataset", action="store_true", help="one fine-tune per dataset instead of one pooled")
    ap.add_argument("--datasets", nargs="*", help="only these datasets (folder names)")
    ap.add_argument("--max-writers", type=int, default=0, help="at most this many test writers per dataset (dev)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--loss", choices=["contrastive", "triplet"], default="triplet")
    ap.add_argument("--mining", choices=["batch-hard", "semi-hard"], default="batch-hard")
    ap.add_argument("--head", choices=["embed", "lowrank"], default="embed")
    ap.add_argument("--augment-copies", type=int, default=2)
    ap.add_argument("--val-frac", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--workers", type=int, default=0, help="preprocessing processes")
    ap.add_argument("--curves", help="ROC/DET PNG prefix for the pooled evaluation writers")
    ap.add_argument("--json", help="write all numbers to this JSON file")
    args = ap.parse_args(argv)

    import torch

    from sigverify.imaging.preprocess import PreprocessConfig  # noqa: F401 (warm import before timing)
    from sigverify.model.embedder import resolve_device
    from sigverify.train.cache import build_cache
    from sigverify.train.datasets import WriterSplit, scan_root
    from sigverify.train.finetune import FinetuneConfig, check_data, finetune

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    base = load_base(args.base, str(dev))
    split = WriterSplit.load(args.split)
    data = scan_root(args.data)
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
        print("error: none of the split's test writers are in --data", file=sys.stderr)
        return 7
    print(f"base model: {base.model_id}{' (UNTRAINED random weights)' if base.card.random_init else ''}")
    print(f"device: {dev} ({torch.get_num_threads()} threads), {os.cpu_count()} CPUs")
    print(
        f"test writers of the split in --data: {len(tune_w) + len(held_w)} -> fine-tune on {len(tune_w)}, "
        f"evaluate on {len(held_w)} held-out writers"
    )
    metric = base.card.distance
    try:
        base_thr = base.card.metric_calibration(metric).eer_threshold
    except Exception:  # noqa: BLE001
        base_thr = None
    pcfg = base.card.preprocess_config
    t = time.perf_counter()
    held = build_cache(data.subset(held_w), pcfg, args.workers)
    print(f"preprocessed {len(held.images)} evaluation images in {time.perf_counter() - t:.1f}s")

    groups = (
        {"pooled": tune_w}
        if not args.per_dataset
        else {ds: [w for w in tune_w if w.startswith(ds + "/")] for ds in sorted({w.split("/", 1)[0] for w in tune_w})}
    )
    report: dict = {
        "base": base.model_id,
        "base_random_init": bool(base.card.random_init),
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "tune_writers": len(tune_w),
        "eval_writers": len(held_w),
        "config": None,
        "runs": {},
    }
    for gname, ws in groups.items():
        sub = data.subset(ws)
        cfg = FinetuneConfig(
            epochs=args.epochs,
            lr=args.lr,
            loss=args.loss,
            mining=args.mining,
            head=args.head,
            augment_copies=args.augment_copies,
            val_frac=args.val_frac,
            seed=args.seed,
            device=str(dev),
        )
        report["config"] = cfg.to_dict()
        t0 = time.perf_counter()
        rep = check_data(sub, pcfg, workers=args.workers, name=f"test-writers-{gname}")
        t_pre = time.perf_counter() - t0
        last = {"t": time.perf_counter()}

        def prog(f, m, row):
            if row.get("epoch") and (row["epoch"] % 5 == 0 or row["epoch"] == 1) or time.perf_counter() - last["t"] > 15:
                last["t"] = time.perf_counter()
                print(f"  [{gname}] {100 * f:3.0f}% {m}", flush=True)

        res = finetune(rep, base, cfg, progress=prog)
        t_ft = res.seconds
        held_g = held if gname == "pooled" else held.select(held.datasets == gname)
        ev, eb, en = evaluate(base, res.network, held_g, metric, base_thr, res.card.calibration[metric]["eer_threshold"], dev)
        clerk = clerk_before_after(base, res, held_g, eb, en)
        print(
            f"\n== fine-tune group {gname}: {len(ws)} writers, {rep.n_images} images "
            f"(preprocessing {t_pre:.1f}s + fine-tune {t_ft:.1f}s = {t_pre + t_ft:.1f}s; trunk pass "
            f"{res.card.training['trunk_seconds']}s; best epoch {res.card.training['best_epoch']})"
        )
        for n in res.notes:
            print(f"   note: {n}")
        print(
            f"   {'eval set':20s} {'writers':>7s}  {'skilled EER':>19s}  {'random EER':>19s}"
            "   FAR/FRR at threshold (before -> after)"
        )
        rows = {}
        for ds, r in ev.items():
            b, a = r["before"], r["after"]
            print(
                f"   {ds:20s} {a.writers:7d}  {pct(b.eer)} -> {pct(a.eer)}  {pct(b.eer_random)} -> {pct(a.eer_random)}"
                f"   {pct(b.far)}/{pct(b.frr)} -> {pct(a.far)}/{pct(a.frr)}"
            )
            rows[ds] = {"before": b.to_dict(), "after": a.to_dict()}
        report["runs"][gname] = {
            "tune_writers": len(ws),
            "tune_images": rep.n_images,
            "preprocess_s": round(t_pre, 2),
            "finetune_s": round(t_ft, 2),
            "trunk_s": res.card.training["trunk_seconds"],
            "best_epoch": res.card.training["best_epoch"],
            "notes": res.notes,
            "eval": rows,
            "validation": res.card.metrics["validation"],
            "clerk": clerk,
        }
        print(f"   clerk's protocol on the evaluation writers ({clerk['policy_before']} -> {clerk['policy_after']} policy):")
        for k in clerk["after"]:
            b, a = clerk["before"][k], clerk["after"][k]
            print(
                f"     K={k}: EER {pct(b['eer'])} -> {pct(a['eer'])}  genuine accepted {pct(b['genuine_accepted'])} -> "
                f"{pct(a['genuine_accepted'])}  rejected {pct(b['genuine_rejected'])} -> {pct(a['genuine_rejected'])}  "
                f"skilled accepted {pct(b['skilled_accepted'])} -> {pct(a['skilled_accepted'])}  ({a['writers']} writers)"
            )
        if args.curves and gname == "pooled":
            from sigverify.train.evaluate import save_curves

            key = "all" if "all" in ev else next(iter(ev))
            paths = save_curves({"base": ev[key]["before"], "fine-tuned": ev[key]["after"]}, args.curves, "held-out test writers")
            print("   curves: " + ", ".join(paths))
    if args.json:
        from sigverify.atomic import write_text_atomic
        from sigverify.cli import _finite

        write_text_atomic(args.json, json.dumps(_finite(report), indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
