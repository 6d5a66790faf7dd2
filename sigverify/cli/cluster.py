"""The ``--engine ray`` options and branch of ``sigverify-cli batch`` (the engine: sigverify/cluster/ray_batch.py)."""

from __future__ import annotations

from sigverify.errors import DataError


def add_arguments(p) -> None:
    """The Ray options of ``sigverify-cli batch``."""
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process (default); ray: Ray Data over a manifest (extra 'cluster')",
    )
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--ray-workers", type=int, default=1, help="embedding actors (model loaded once per actor)")
    p.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray (without --address)")
    p.add_argument(
        "--ray-gpus-per-worker",
        type=float,
        default=0.0,
        help="GPUs per embedding actor (e.g. 1, or 0.5 to share one); 0 = CPU actors (default)",
    )


def cli_batch(args, library_cm, verifier) -> int:
    """``sigverify-cli batch MANIFEST --engine ray``: the CLI opens the library and the verifier."""
    from sigverify.cli import emit
    from sigverify.cli.training import CliProgress

    if args.ray_workers < 1 or args.ray_cpus < 1 or args.batch_size < 1:
        raise DataError("--ray-workers, --ray-cpus and --batch-size must be 1 or more")
    from sigverify.cluster.ray_batch import read_manifest, run_ray_batch

    items = read_manifest(args.input)
    bar = CliProgress("batch (ray)", quiet=args.quiet or args.json)
    try:
        with library_cm as lib:
            rep = run_ray_batch(
                items,
                lib,
                verifier,
                args.out,
                address=args.address,
                workers=args.ray_workers,
                num_cpus=args.ray_cpus,
                batch_size=args.batch_size,
                audit=not args.no_audit,
                progress=bar,
                gpus_per_worker=max(0.0, args.ray_gpus_per_worker),
            )
    finally:
        bar.close()
    d = rep.ray_summary | ({"results": [r.to_dict() for r in rep.results]} if args.json else {})
    emit(
        args,
        d,
        rep.summary_text() + f"\nresults written to {args.out} and {d['results_parquet']} "
        f"({d['audit_appended']} audit record(s) appended, {d['audit_already_merged']} already there)",
    )
    if args.strict and rep.errors:
        return 3
    return 0
