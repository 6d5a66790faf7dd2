"""Signatures on cheques: locate IoU and pair EER on synthetic cheque scans vs the same writers' clean scans.

The cheques are composed at run time by ``sigverify.imaging.synth_cheque`` from dataset signatures
(``--data``, never copied into the project). Writers come from the shipped model's writer split
(``assets/models/sigverify-base.split.json``): the locator is trained on "train" writers and the train
layouts; everything reported uses "test" writers, and reports held-out layouts separately.

    # fit the small locator network (assets/models/locator.safetensors), ~3 min on one core
    python benchmarks/cheques.py --train-locator --cheques 300
    # report: locate IoU / unsigned pages, pair EER (EVALUATION.md pair protocol) clean vs cheque
    python benchmarks/cheques.py --writers 16 --per-writer 6 --json out.json

Conditions compared for the EER (same images, same writers, same pairs):
  clean     the dataset scans as they are
  area      a cheque-like scan of the signature area (printed line, label, stamps, background, JPEG)
  area_doc  the same scans, cleaned as documents (``document=True``)
  cheque    the whole cheque, the signature located automatically
  mixed     clean references vs questioned whole cheques (what a clerk does)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sigverify.imaging import locate as L  # noqa: E402
from sigverify.imaging.load import load_image  # noqa: E402
from sigverify.imaging.synth_cheque import (
    LAYOUTS_HELD_OUT,
    LAYOUTS_TRAIN,
    box_iou,
    make_cheque,
    signature_area,
)


def _writers(split_path: Path, part: str) -> list[str]:
    return list(json.loads(split_path.read_text())[part])


def _images(data: Path, writer: str, kind: str) -> list[Path]:
    d = data / writer / kind
    return sorted(p for p in d.iterdir() if p.suffix.lower() in (".png", ".jpg", ".tif", ".bmp")) if d.is_dir() else []


def _cluster_labels(a: L.Analysis, truth) -> np.ndarray:
    """1 for clusters (mostly) inside the true signature box."""
    out = np.zeros(len(a.clusters), np.float32)
    if truth is None:
        return out
    for i, c in enumerate(a.clusters):
        box = L.to_original(c.box, a.scale, a.shape, pad=0.0)
        x, y, w, h = box
        tx, ty, tw, th = truth
        ix = max(0, min(x + w, tx + tw) - max(x, tx))
        iy = max(0, min(y + h, ty + th) - max(y, ty))
        out[i] = float(ix * iy >= 0.5 * w * h)
    return out


def _features_for(img, truth):
    a = L.analyse(img, score=False)
    if a.blank or not a.clusters:
        return None, None
    return np.stack([c.features for c in a.clusters]), _cluster_labels(a, truth)


def train_mlp(X: np.ndarray, y: np.ndarray, hidden: int = 16, epochs: int = 600, seed: int = 0) -> dict:
    """Two-layer network, weighted logistic loss, Adam, full batch - a few seconds in numpy."""
    rng = np.random.default_rng(seed)
    mean, std = X.mean(0), X.std(0) + 1e-3
    Z = (X - mean) / std
    d = Z.shape[1]
    p = {
        "w1": rng.normal(0, 1 / np.sqrt(d), (d, hidden)),
        "b1": np.zeros(hidden),
        "w2": rng.normal(0, 1 / np.sqrt(hidden), (hidden, 1)),
        "b2": np.zeros(1),
    }
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    pos_w = (len(y) - y.sum()) / max(y.sum(), 1)
    wts = np.where(y > 0.5, pos_w, 1.0)
    wts /= wts.sum()
    lr, b1, b2 = 0.02, 0.9, 0.999
    for t in range(1, epochs + 1):
        H = np.maximum(Z @ p["w1"] + p["b1"], 0)
        o = (H @ p["w2"] + p["b2"]).ravel()
        s = 1 / (1 + np.exp(-o))
        g_o = (s - y) * wts
        g = {"w2": H.T @ g_o[:, None], "b2": np.array([g_o.sum()])}
        g_h = (g_o[:, None] @ p["w2"].T) * (H > 0)
        g["w1"] = Z.T @ g_h + 1e-4 * p["w1"]
        g["b1"] = g_h.sum(0)
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v2[k] = b2 * v2[k] + (1 - b2) * g[k] ** 2
            p[k] -= lr * (m[k] / (1 - b1**t)) / (np.sqrt(v2[k] / (1 - b2**t)) + 1e-8)
    out = {k: v.astype(np.float32) for k, v in p.items()}
    out["mean"], out["std"] = mean.astype(np.float32), std.astype(np.float32)
    out["n_features"] = np.array([X.shape[1]], np.int32)
    return out


def _make(rng_seed: int, data: Path, writers: list[str], layouts, signed: bool = True):
    rng = np.random.default_rng(rng_seed)
    w = writers[int(rng.integers(0, len(writers)))]
    gens = _images(data, w, "genuine")
    others = [o for o in writers if o != w]
    hands = []
    for _ in range(2):
        o = others[int(rng.integers(0, len(others)))]
        g = _images(data, o, "genuine")
        if g:
            hands.append(load_image(g[int(rng.integers(0, len(g)))]))
    sig = load_image(gens[int(rng.integers(0, len(gens)))]) if signed and gens else None
    layout = layouts[int(rng.integers(0, len(layouts)))]
    return make_cheque(sig, hands, rng_seed, layout=layout)


def cmd_train(args) -> int:

    if args.from_cache:
        z = np.load(args.from_cache, allow_pickle=False)
        return _fit_and_save(args, z["X"], z["y"])
    data = Path(args.data)
    writers = _writers(Path(args.split), "train")
    Xs, ys = [], []
    t0 = time.time()
    for i in range(args.cheques):
        signed = i % 10 != 9
        c = _make(10_000 + i, data, writers, LAYOUTS_TRAIN, signed)
        views = [(c.image, c.signature_box)]
        if signed and c.signature_box and i % 3 == 0:
            views.append(signature_area(c, i))  # cheque-like scans of the signature field, too
        for img, truth in views:
            X, y = _features_for(img, truth)
            if X is not None:
                Xs.append(X)
                ys.append(y)
        if i % 25 == 0:
            print(f"  {i}/{args.cheques} cheques, {time.time() - t0:.0f} s", flush=True)
    X, y = np.concatenate(Xs), np.concatenate(ys)
    print(f"{len(X)} clusters, {int(y.sum())} signature clusters")
    if args.cache:
        np.savez(args.cache, X=X, y=y)  # features only (no images): refit with --from-cache
    return _fit_and_save(args, X, y)


def _fit_and_save(args, X, y) -> int:
    from safetensors.numpy import save_file

    from sigverify.atomic import atomic_path

    params = train_mlp(X, y)
    L.set_scorer(params)
    s = L.scorer()(X)
    print(f"training accuracy {((s > 0.5) == (y > 0.5)).mean():.3f}")
    out = Path(args.out or L.locator_path())
    with atomic_path(out) as tmp:
        save_file(
            params,
            str(tmp),
            metadata={
                "what": "sigverify signature locator (cluster scorer)",
                "features": ",".join(L.FEATURES),
                "trained_on": f"{args.cheques} synthetic cheques, train writers, layouts {','.join(LAYOUTS_TRAIN)}",
            },
        )
    os.chmod(out, 0o644)
    print(f"saved {out}")
    return 0


def _eer_block(emb_a, emb_b, writers, genuine, metric, thr):
    from sigverify.train.evaluate import eer, make_pairs
    from sigverify.verify.distances import paired_distances

    ps = make_pairs(writers, genuine, None, 0)

    def dist(pairs):
        if not pairs:
            return np.zeros(0)
        a = np.array([p[0] for p in pairs])
        b = np.array([p[1] for p in pairs])
        return paired_distances(emb_a[a], emb_b[b], metric)

    pos, sk, rd = dist(ps.pos), dist(ps.skilled), dist(ps.random)
    return {
        "eer_skilled": eer(pos, sk).eer,
        "eer_random": eer(pos, rd).eer,
        "frr_at_threshold": float((pos > thr).mean()) if len(pos) else None,
        "far_skilled_at_threshold": float((sk <= thr).mean()) if len(sk) else None,
        "pairs": {"positive": len(pos), "skilled": len(sk), "random": len(rd)},
    }


def _clerk_block(emb_q, emb_spec, writers, genuine, verifier, k: int, seed: int = 0) -> dict:
    """The clerk's protocol (EVALUATION.md) at one K: specimens from ``emb_spec`` (clean scans, as a bank
    holds them), questioned from ``emb_q`` (the condition), each decided by the app's own rule."""
    from sigverify.app.case import decide
    from sigverify.train.clerk import KINDS, trials
    from sigverify.train.evaluate import eer

    scores = {kind: [] for kind in KINDS}
    zones = {kind: [] for kind in KINDS}
    for _w, kind, q, spec in trials(writers, genuine, k, None, seed):
        d = decide(verifier, emb_q[q], emb_spec[spec])
        zones[kind].append(d.verdict.zone)
        scores[kind].append(float(d.decision_score))
    pos, sk, rd = (np.array(scores[x]) for x in KINDS)

    def frac(kind, zone):
        return float(np.mean([z == zone for z in zones[kind]])) if zones[kind] else None

    return {
        "k": k,
        "eer": eer(pos, sk).eer if len(sk) and len(pos) else None,
        "eer_random": eer(pos, rd).eer if len(rd) and len(pos) else None,
        "genuine_accepted": frac("genuine", "genuine"),
        "genuine_rejected": frac("genuine", "forgery"),
        "skilled_accepted": frac("skilled", "genuine"),
        "random_accepted": frac("random", "genuine"),
        "questioned": {kind: len(zones[kind]) for kind in KINDS},
    }


def cmd_eval(args) -> int:
    from sigverify.errors import SigverifyError
    from sigverify.imaging.preprocess import preprocess
    from sigverify.verify.service import Verifier

    data = Path(args.data)
    test = _writers(Path(args.split), args.part)
    rng = np.random.default_rng(args.seed)
    chosen = sorted(rng.choice(test, size=min(args.writers, len(test)), replace=False).tolist())
    v = Verifier(args.model, "cpu")
    cfg = v.embedder.preprocess_config
    metric = v.metric
    thr = float(v.calibration.eer_threshold)  # the shipped global threshold (FAR / FRR in the card)
    inputs = {"clean": [], "area": [], "area_doc": [], "cheque": []}
    writers, genuine = [], []
    loc = {"train_layouts": [], "held_out_layouts": []}
    rejected = {"clean": 0, "area": 0, "area_doc": 0, "cheque": 0}
    t_pre = []
    t0 = time.time()
    k = 0
    for w in chosen:
        files = [(p, True) for p in _images(data, w, "genuine")[: args.per_writer]]
        files += [(p, False) for p in _images(data, w, "forgery")[: max(1, args.per_writer // 2)]]
        others = [o for o in test if o != w]
        for p, g in files:
            k += 1
            img = load_image(p)
            hands = [load_image(_images(data, others[(k + j) % len(others)], "genuine")[0]) for j in range(2)]
            layout = (LAYOUTS_HELD_OUT + LAYOUTS_TRAIN)[k % 6]
            c = make_cheque(img, hands, 50_000 + k, layout=layout)
            area, _ = signature_area(c, k)
            row = {}
            for name, im in (("clean", img), ("area", area), ("area_doc", area), ("cheque", c.image)):
                try:
                    ts = time.perf_counter()
                    pre = preprocess(im, cfg, document=True if name == "area_doc" else None)
                    if name == "cheque":
                        t_pre.append(time.perf_counter() - ts)
                        key = "held_out_layouts" if layout in LAYOUTS_HELD_OUT else "train_layouts"
                        loc[key].append(box_iou(pre.region, c.signature_box))
                    row[name] = pre.input
                except SigverifyError:
                    rejected[name] += 1
                    row[name] = None
                    if name == "cheque":
                        key = "held_out_layouts" if layout in LAYOUTS_HELD_OUT else "train_layouts"
                        loc[key].append(0.0)
            if any(x is None for x in row.values()):
                continue  # keep the same images in every condition
            for name in inputs:
                inputs[name].append(row[name])
            writers.append(w)
            genuine.append(g)
        print(f"  {w}: {len(writers)} images so far, {time.time() - t0:.0f} s", flush=True)
    # unsigned cheques must be reported as "no signature"
    unsigned_ok = 0
    n_unsigned = args.unsigned
    for j in range(n_unsigned):
        c = _make(90_000 + j, data, test, LAYOUTS_HELD_OUT + LAYOUTS_TRAIN, signed=False)
        try:
            preprocess(c.image, cfg)
        except SigverifyError:
            unsigned_ok += 1
    writers_a, genuine_a = np.array(writers), np.array(genuine)
    emb = {n: v.embedder.embed_arrays(x) for n, x in inputs.items()}
    res = {
        "model": v.model.model_id,
        "metric": metric,
        "threshold": thr,
        "writers": len(set(writers)),
        "images": len(writers),
        "rejected": rejected,
        "unsigned_reported_no_signature": f"{unsigned_ok}/{n_unsigned}",
        "locate_iou": {
            k2: {
                "median": float(np.median(x)) if x else None,
                "iou>=0.5": float(np.mean(np.array(x) >= 0.5)) if x else None,
                "n": len(x),
            }
            for k2, x in loc.items()
        },
        "locate_preprocess_ms_median": round(1000 * float(np.median(t_pre)), 1) if t_pre else None,
    }
    for n in ("clean", "area", "area_doc", "cheque"):
        res[n] = _eer_block(emb[n], emb[n], writers_a, genuine_a, metric, thr)
    res["mixed"] = _eer_block(emb["clean"], emb["cheque"], writers_a, genuine_a, metric, thr)
    # the clerk's protocol: the questioned image (in each condition) against K clean specimens
    res["clerk"] = {n: _clerk_block(emb[n], emb["clean"], writers_a, genuine_a, v, args.references) for n in inputs}
    text = json.dumps(res, indent=2, default=float)
    print(text)
    if args.json:
        from sigverify.atomic import atomic_path

        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(text)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--split", default=str(ROOT / "assets" / "models" / "sigverify-base.split.json"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--train-locator", action="store_true")
    ap.add_argument("--cheques", type=int, default=300)
    ap.add_argument("--out", default=None, help="locator weights file (default: the shipped one)")
    ap.add_argument("--cache", default=None, help="also save the cluster features (.npz) for refits")
    ap.add_argument("--from-cache", default=None, help="refit the locator from saved cluster features")
    ap.add_argument("--writers", type=int, default=16)
    ap.add_argument("--per-writer", type=int, default=6)
    ap.add_argument("--unsigned", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--references", type=int, default=3, help="K clean specimens in the clerk's protocol")
    ap.add_argument("--part", default="test", help="writers of the split to report on (val: for choosing)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return cmd_train(args) if args.train_locator else cmd_eval(args)


if __name__ == "__main__":
    sys.exit(main())
