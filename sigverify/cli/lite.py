"""sigverify-lite: the verify-only command line of the lean bundle (onnxruntime, no torch).

    sigverify-lite compare A.png B.png [--json]
    sigverify-lite verify QUESTIONED.png REF1.png [REF2.png ...] [--aggregate mean|min] [--json]
    sigverify-lite info [--json]

The model is the shipped ONNX export (``assets/models/sigverify-base.onnx``, verified against its
sidecar) or ``--model NAME.onnx`` (``sigverify-cli export --format onnx`` makes one). Same decisions
and exit codes as ``sigverify-cli`` (0 genuine, 1 forgery, 2 refer; 3 error, 4 image, 5 blank, 6 model,
10 usage). Branch workstations that never fine-tune run this; training needs the full bundle.
"""

from __future__ import annotations

import argparse
import json
import sys

from sigverify.cli import VERDICT_EXIT, emit


def _default_model() -> str:
    from sigverify.paths import default_model_path

    return str(default_model_path().with_suffix(".onnx"))


def _verifier(args):
    from sigverify.verify.service import Verifier

    kw = {"aggregate": args.aggregate} if getattr(args, "aggregate", None) else {}
    return Verifier(args.model or _default_model(), device="cpu", metric=args.metric, **kw)


def cmd_compare(args) -> int:
    d = _verifier(args).compare(args.a, args.b)
    emit(args, d, f"{d['verdict_text']} (score {d['score']:.0f}/100, distance {d['distance']:.3f}, {d['elapsed_ms']:.0f} ms)")
    return VERDICT_EXIT.get(d["verdict"], 3)


def cmd_verify(args) -> int:
    r = _verifier(args).verify(args.questioned, args.references, keep_stages=False)
    d = r.to_dict()
    v = r.decision.verdict
    emit(args, d, f"{v.zone}: score {v.score:.0f}/100, distance {v.distance:.3f} against {len(r.references)} reference(s)")
    return VERDICT_EXIT.get(v.zone, 3)


def cmd_info(args) -> int:
    from sigverify.model.onnx_backend import open_onnx_model, read_sidecar

    path = args.model or _default_model()
    m = open_onnx_model(path)
    meta = read_sidecar(path)
    d = {
        "model_id": m.model_id,
        "path": str(path),
        "backend": "onnxruntime",
        "card": m.card.to_dict(),
        "onnx_sha256": meta["onnx_sha256"],
        "parity_max_abs_diff": meta.get("parity_max_abs_diff"),
    }
    emit(args, d, f"{m.model_id} (onnxruntime, {path})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from sigverify import __version__
    from sigverify.cli import _Parser

    p = _Parser(prog="sigverify-lite", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"sigverify-lite {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def common(sp):
        sp.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
        sp.add_argument("--model", help="ONNX model (default: the shipped sigverify-base.onnx)")
        sp.add_argument("--metric", choices=["euclidean", "cosine"], default=None)

    sp = sub.add_parser("compare", help="two signatures: distance, score, verdict")
    sp.add_argument("a")
    sp.add_argument("b")
    common(sp)
    sp.set_defaults(func=cmd_compare)
    sp = sub.add_parser("verify", help="a questioned signature against one or more references")
    sp.add_argument("questioned")
    sp.add_argument("references", nargs="+")
    sp.add_argument("--aggregate", choices=["mean", "min", "writer"], default=None)
    common(sp)
    sp.set_defaults(func=cmd_verify)
    sp = sub.add_parser("info", help="the model card of the ONNX model")
    common(sp)
    sp.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    from sigverify.errors import SigverifyError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SigverifyError as exc:
        msg = " ".join(str(exc).split("\n"))
        if args.json:
            print(json.dumps({"error": msg, "error_type": type(exc).__name__, "exit_code": exc.exit_code}))
        print(f"sigverify-lite: error: {msg}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
