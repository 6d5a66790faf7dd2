"""bench: speed benchmarks (pair end to end, preprocessing, CPU batch vs plain, GPU, GUI cold start)."""

from __future__ import annotations

import sys

from sigverify.cli import add_common, emit


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="measure speed: one pair end to end, preprocessing, batch embedding, GPU throughput, GUI cold start"
    )
    add_common(p)
    p.add_argument("--reps", type=int, default=40, help="repetitions of the timed pair / preprocessing loops")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for the CPU batch-vs-plain comparison, both sides (default 1; 0 = torch default)",
    )
    p.add_argument("--cpu-images", type=int, default=64, help="images in the CPU batch measurement")
    p.add_argument("--gpu-batch", type=int, nargs="+", default=[256, 1024], help="GPU batch sizes")
    p.add_argument("--compile", action="store_true", help="torch.compile the GPU network")
    p.add_argument("--no-gpu", action="store_true", help="skip the GPU measurement")
    p.add_argument("--no-cold-start", action="store_true", help="skip the GUI cold start and import costs")
    p.add_argument("--profile", action="store_true", help="also print a cProfile of the pair loop (stderr)")
    p.add_argument("--batch-items", type=int, default=120, help="items in the end-to-end batch measurement (0 = skip)")
    p.add_argument(
        "--ray",
        type=int,
        nargs="*",
        default=None,
        metavar="WORKERS",
        help="also measure the Ray engine on a local Ray with these worker counts (default 1 2; needs the 'cluster' extra)",
    )
    p.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime vs torch measurement")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from sigverify import bench

    quiet = getattr(args, "json", False)
    res = bench.run_benchmarks(
        model_path=args.model,
        reps=args.reps,
        cold_start=not args.no_cold_start,
        gpu=not args.no_gpu,
        gpu_batch_sizes=tuple(args.gpu_batch),
        gpu_compile=args.compile,
        threads=args.threads or None,
        cpu_images=args.cpu_images,
        batch_items=max(0, args.batch_items),
        onnx=not args.no_onnx,
        ray_workers=() if args.ray is None else tuple(args.ray or (1, 2)),
        progress=None if quiet else (lambda f, s, *_: print(f"... {s}", file=sys.stderr, flush=True)),
    )
    if args.profile:
        import tempfile

        from sigverify.verify.service import Verifier

        with tempfile.TemporaryDirectory() as td:
            a, b = bench.make_images(td, 2)
            print(bench.profile_pair(Verifier(args.model, device="cpu"), a, b), file=sys.stderr)
    emit(args, res, bench.format_table(res))
    return 0
