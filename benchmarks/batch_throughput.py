"""Batch verification throughput: N synthetic questioned images against a few library customers.

    python benchmarks/batch_throughput.py [--n 500] [--customers 5] [--refs 3] [--size 300x800]
                                          [--device cpu] [--workers 2] [--batch-size 64] [--no-audit]

Makes everything in a temporary folder (synthetic signatures from ``sigverify.samples``, never real
data), enrols the customers, then times ``sigverify.batch.run_batch`` over a folder of
``<customer id>/`` sub-folders and prints images/s with the split between reading + preprocessing,
embedding (batched inference), deciding and the audit-log writes. Image generation and enrolment are
not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="questioned images (default 500)")
    ap.add_argument("--customers", type=int, default=5)
    ap.add_argument("--refs", type=int, default=3, help="reference specimens per customer")
    ap.add_argument("--size", default="300x800", help="HxW of the synthetic scans (default 300x800)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=None, help="preprocessing threads (default: cores, max 4)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-audit", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import cv2
    import torch

    from sigverify.app.library_service import LibraryService
    from sigverify.batch import load_items, run_batch
    from sigverify.samples import draw_signature
    from sigverify.store.library import Library
    from sigverify.verify.service import Verifier

    h, w = (int(x) for x in args.size.lower().split("x"))
    names = ["Alice Smith", "Bob Jones", "Carol King", "Dan Brown", "Eve Adams", "Frank Moore", "Grace Lee", "Hugo Weiss"]
    with tempfile.TemporaryDirectory(prefix="sigverify-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        v = Verifier(None, args.device)
        v.embedder.batch_size = args.batch_size
        lib = Library(root / "library.sqlite3", operator="benchmark")
        for c in range(args.customers):
            name = names[c % len(names)] + ("" if c < len(names) else f" {c}")
            refs = []
            for i in range(args.refs):
                p = root / "refs" / f"C{c:03d}_{i}.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(p), draw_signature(name, i, 0.6, size=(h, w)))
                refs.append(p)
            LibraryService(lib, v).enrol(f"C{c:03d}", refs, name=name)
        qdir = root / "questioned"
        for k in range(args.n):
            c = k % args.customers
            name = names[c % len(names)] + ("" if c < len(names) else f" {c}")
            p = qdir / f"C{c:03d}" / f"q{k:05d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), draw_signature(name, 1000 + k, 0.6, forged=(k % 3 == 0), size=(h, w)))
        setup_s = time.perf_counter() - t0

        items = load_items(qdir)
        rep = run_batch(items, lib, v, audit=not args.no_audit, batch_size=args.batch_size, workers=args.workers)
        lib.close()

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    d = rep.summary_dict()
    d.update(
        {
            "n": args.n,
            "image_size": f"{h}x{w}",
            "customers": args.customers,
            "refs_per_customer": args.refs,
            "batch_size": args.batch_size,
            "workers": args.workers or min(4, max(1, os.cpu_count() or 1)),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "setup_s": round(setup_s, 1),
            "load_average": [round(x, 2) for x in load] if load else None,
        }
    )
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        t = d["timing_s"]
        tot = rep.elapsed_s or 1.0
        print(
            f"batch throughput: {rep.images_per_s:.1f} images/s  ({rep.processed} images {h}x{w} in "
            f"{rep.elapsed_s:.2f} s, {len(rep.errors)} error(s))"
        )
        print(
            f"  device {rep.device}; {d['workers']} preprocessing thread(s); batch size {args.batch_size}; "
            f"{os.cpu_count()} CPU core(s); load average {d['load_average']}"
        )
        print(
            f"  read+preprocess {t['read_preprocess']:.2f} s ({100 * t['read_preprocess'] / tot:.0f}%)  "
            f"embed {t['embed']:.2f} s ({100 * t['embed'] / tot:.0f}%)  decide {t['decide']:.2f} s  "
            f"audit {t['audit']:.2f} s"
        )
        print(
            f"  per image: preprocess {1000 * t['read_preprocess'] / max(rep.processed, 1):.1f} ms, "
            f"embed {1000 * t['embed'] / max(rep.processed, 1):.1f} ms"
        )
        print(f"  verdicts {d['verdicts']} (model {rep.model_id}; untrained weights give meaningless verdicts)")
    return 0 if not rep.errors else 1


if __name__ == "__main__":
    sys.exit(main())
