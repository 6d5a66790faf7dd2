"""Signatures on cheques: locate IoU and pair EER on synthetic cheque scans vs the same writers' clean scans.

The cheques are composed at run time by ``sigverify.imaging.synth_cheque`` from dataset signatures
(``--data``, never copied into the project). Writers come from the shipped model's writer split
(``assets/models/sigverify-base.split.json``): the locator (``benchmarks/train_locator.py``) is trained on
"train" writers and the train layouts; everything reported uses "test" writers (``--part val`` for
choosing), and reports held-out layouts separately.

    # report: locate IoU / unsigned pages, pair EER and the clerk's protocol, clean vs cheque scans
    python benchmarks/cheques.py --writers 10 --per-writer 6 --unsigned 12 --json out.json
    # CPU time of locate + preprocess on whole cheques, one thread
    python benchmarks/cheques.py --speed 12 [--drawn]

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


def cmd_speed(args) -> int:
    """CPU time of locate + preprocess on whole 300-dpi cheques, one thread (validation writers)."""
    import cv2
    import torch

    from sigverify.imaging.preprocess import preprocess

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    data = Path(args.data)
    if data.is_dir() and not args.drawn:
        writers = _writers(Path(args.split), "val")
        pages = [_make(60_000 + i, data, writers, LAYOUTS_TRAIN + LAYOUTS_HELD_OUT).image for i in range(args.speed)]
    else:  # no dataset here (or asked): the project's own drawn signatures
        from sigverify.samples import draw_signature

        names = ("Alice Smith", "Bob Jones", "Carla Diaz", "Eve Martin", "Dan Okafor")
        layouts = LAYOUTS_TRAIN + LAYOUTS_HELD_OUT
        pages = []
        for i in range(args.speed):
            sig = draw_signature(names[i % 5], 100 + i, size=(260, 700))
            hands = [draw_signature(names[(i + j) % 5], 200 + i + j, size=(200, 560)) for j in (1, 2)]
            pages.append(make_cheque(sig, hands, 60_000 + i, layout=layouts[i % len(layouts)]).image)
    L.analyse(pages[0])  # warm up (the locator network loads once)
    cpu, loc = [], []
    for img in pages:
        for _ in range(3):
            t = time.process_time()
            L.analyse(img)
            t1 = time.process_time()
            try:
                preprocess(img)
            except Exception:
                pass
            t2 = time.process_time()
            loc.append(t1 - t)
            cpu.append(t2 - t1)
    print(
        f"{len(pages)} cheques ~{pages[0].shape[1]}x{pages[0].shape[0]}, one thread, CPU time median: "
        f"locate {1000 * np.median(loc):.1f} ms, locate + preprocess {1000 * np.median(cpu):.1f} ms "
        f"(90th percentile {1000 * np.percentile(cpu, 90):.1f} ms)"
    )
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--split", default=str(ROOT / "assets" / "models" / "sigverify-base.split.json"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--writers", type=int, default=16)
    ap.add_argument("--per-writer", type=int, default=6)
    ap.add_argument("--unsigned", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed", type=int, default=0, help="only time locate + preprocess on this many cheques")
    ap.add_argument("--drawn", action="store_true", help="--speed on cheques signed with drawn signatures")
    ap.add_argument("--references", type=int, default=3, help="K clean specimens in the clerk's protocol")
    ap.add_argument("--part", default="test", help="writers of the split to report on (val: for choosing)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.speed:
        return cmd_speed(args)
    return cmd_eval(args)


if __name__ == "__main__":
    sys.exit(main())
