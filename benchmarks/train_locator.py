"""Fit the dense signature locator (``assets/models/locator.safetensors``) on synthetic cheques.

The cheques are composed at run time by ``sigverify.imaging.synth_cheque`` from the *train* writers of
the shipped model's split (``--data``, never copied into the project): the train layouts, half of them
perturbed (``variant``: fields moved, the signature field moved / boxed / relabelled), some unsigned,
some grey. The held-out layouts (``LAYOUTS_HELD_OUT``) and the validation / test writers are never used
here; ``--check`` reports locate IoU on validation writers over every layout.

    # make the training pages (network inputs + targets only, no images kept), ~1 s a cheque
    python benchmarks/train_locator.py --make 900 --cache /tmp/locator-data.npz
    # fit (a few minutes on one core) and install the weights
    python benchmarks/train_locator.py --cache /tmp/locator-data.npz --fit
    # check on validation writers, every layout
    python benchmarks/train_locator.py --check 60
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

import cv2  # noqa: E402

from sigverify.imaging import locate as L  # noqa: E402
from sigverify.imaging.load import load_image  # noqa: E402
from sigverify.imaging.synth_cheque import ALL_LAYOUTS, LAYOUTS_HELD_OUT, LAYOUTS_TRAIN, box_iou, make_cheque  # noqa: E402


def _writers(split: Path, part: str) -> list[str]:
    return list(json.loads(split.read_text())[part])


def _images(data: Path, writer: str) -> list[Path]:
    d = data / writer / "genuine"
    return sorted(p for p in d.iterdir() if p.suffix.lower() in (".png", ".jpg", ".tif", ".bmp")) if d.is_dir() else []


def cheque_for(seed: int, data: Path, writers: list[str], layouts, signed: bool, variant: bool):
    rng = np.random.default_rng(seed)
    w = writers[int(rng.integers(0, len(writers)))]
    gens = _images(data, w)
    others = [o for o in writers if o != w]
    hands = []
    for _ in range(2):
        g = _images(data, others[int(rng.integers(0, len(others)))])
        if g:
            hands.append(load_image(g[int(rng.integers(0, len(g)))]))
    sig = load_image(gens[int(rng.integers(0, len(gens)))]) if signed and gens else None
    layout = layouts[int(rng.integers(0, len(layouts)))]
    return make_cheque(sig, hands, seed, layout=layout, variant=variant)


def sample(image: np.ndarray, truth) -> tuple[np.ndarray, np.ndarray] | None:
    """(network input uint8, target map float32 in [0, 1]) of one page, or None on a blank page."""
    grey, sat, s, flat, mask, lines, clean = L.prepare(image)
    if mask is None:
        return None
    x = L.locator_input(flat, mask, clean, sat)
    h, w = mask.shape
    box = np.zeros((h, w), np.float32)
    if truth is not None:
        tx, ty, tw, th = truth
        box[int(ty * s) : int(np.ceil((ty + th) * s)), int(tx * s) : int(np.ceil((tx + tw) * s))] = 1.0
    target = cv2.resize(box, (L.LOC_W // 4, L.LOC_H // 4), interpolation=cv2.INTER_AREA)
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8), target


def cmd_make(args) -> int:
    data = Path(args.data)
    writers = _writers(Path(args.split), "train")
    X, Y = [], []
    t0 = time.time()
    for i in range(args.make):
        seed = 200_000 + i
        signed = i % 8 != 7
        c = cheque_for(seed, data, writers, LAYOUTS_TRAIN, signed, variant=i % 2 == 1)
        img = c.image
        if i % 7 == 3:  # some grey scans
            img = np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        r = sample(img, c.signature_box)
        if r is not None:
            X.append(r[0])
            Y.append(r[1])
        if i % 50 == 0:
            print(f"  {i}/{args.make} cheques, {time.time() - t0:.0f} s", flush=True)
    np.savez(args.cache, X=np.stack(X), Y=np.stack(Y))
    print(f"saved {len(X)} pages to {args.cache}")
    return 0


def cmd_fit(args) -> int:
    import torch
    from safetensors.torch import save_file

    from sigverify.atomic import atomic_path

    z = np.load(args.cache)
    X = torch.from_numpy(z["X"].astype(np.float32) / 255.0)
    Y = torch.from_numpy(z["Y"])
    n = len(X)
    torch.manual_seed(0)
    net = L.dense_net()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps = args.epochs * ((n + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    pos_w = torch.tensor(3.0)
    t0 = time.time()
    g = torch.Generator().manual_seed(0)
    for ep in range(args.epochs):
        perm = torch.randperm(n, generator=g)
        tot = 0.0
        for b in range(0, n, args.batch):
            idx = perm[b : b + args.batch]
            xb, yb = X[idx], Y[idx]
            # brightness / contrast jitter of the darkness channel (scanners differ)
            xb = xb.clone()
            xb[:, 0] *= torch.empty(len(idx), 1, 1).uniform_(0.7, 1.3)
            out = net(xb)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out, yb, pos_weight=pos_w)
            p = torch.sigmoid(out)
            dice = 1 - (2 * (p * yb).sum((1, 2)) + 1) / (p.sum((1, 2)) + yb.sum((1, 2)) + 1)
            loss = loss + 0.5 * dice.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
        print(f"  epoch {ep + 1}/{args.epochs}: loss {tot / n:.4f}, {time.time() - t0:.0f} s", flush=True)
    out = Path(args.out or L.locator_path())
    sd = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(out) as tmp:
        save_file(
            sd,
            str(tmp),
            metadata={
                "kind": "dense",
                "what": "sigverify signature locator (dense map of the signature's box)",
                "input": f"{L.LOC_CHANNELS}x{L.LOC_H}x{L.LOC_W}",
                "trained_on": f"{n} synthetic cheques, train writers, layouts {','.join(LAYOUTS_TRAIN)} (+ variants)",
                "epochs": str(args.epochs),
            },
        )
    os.chmod(out, 0o644)
    print(f"saved {out}")
    return 0


def cmd_check(args) -> int:
    data = Path(args.data)
    writers = _writers(Path(args.split), "val")
    res: dict[str, list[float]] = {}
    times = []
    for i in range(args.check):
        lay = ALL_LAYOUTS[i % len(ALL_LAYOUTS)]
        c = cheque_for(70_000 + i, data, writers, (lay,), True, False)
        t = time.process_time()
        loc = L.locate(c.image)
        times.append(time.process_time() - t)
        res.setdefault(lay, []).append(box_iou(loc.region, c.signature_box))
    unsigned = 0
    n_un = max(6, args.check // 5)
    for j in range(n_un):
        c = cheque_for(80_000 + j, data, writers, ALL_LAYOUTS, False, False)
        unsigned += not L.locate(c.image).signature_found
    for k, v in res.items():
        print(f"  {k:5s} median IoU {np.median(v):.2f}, IoU>=0.5 {np.mean(np.array(v) >= 0.5):.2f} ({len(v)})")
    tr = np.array([v for k in LAYOUTS_TRAIN for v in res.get(k, [])])
    ho = np.array([v for k in LAYOUTS_HELD_OUT for v in res.get(k, [])])
    print(
        f"train layouts: median {np.median(tr):.2f}, >=0.5 {np.mean(tr >= 0.5):.2f} | held-out layouts: median "
        f"{np.median(ho):.2f}, >=0.5 {np.mean(ho >= 0.5):.2f} | unsigned 'no signature' {unsigned}/{n_un} | "
        f"locate CPU {1000 * np.median(times):.0f} ms median"
    )
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--split", default=str(ROOT / "assets" / "models" / "sigverify-base.split.json"))
    ap.add_argument("--make", type=int, default=0, help="make this many training pages into --cache")
    ap.add_argument("--fit", action="store_true", help="fit on --cache and save the weights")
    ap.add_argument("--check", type=int, default=0, help="locate IoU on this many validation-writer cheques")
    ap.add_argument("--cache", default="/tmp/locator-data.npz")
    ap.add_argument("--out", default=None, help="weights file (default: the shipped one)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args(argv)
    rc = 0
    if args.make:
        rc = rc or cmd_make(args)
    if args.fit:
        rc = rc or cmd_fit(args)
    if args.check:
        rc = rc or cmd_check(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
