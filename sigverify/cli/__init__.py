"""sigverify-cli: the command-line twin of every GUI action.

Exit codes (every subcommand):
  0  match: verdict "genuine" (or the command succeeded)
  1  no match: verdict "forgery"
  2  refer to a supervisor
  3  error (general)         4  image cannot be loaded     5  no signature on the image (blank)
  6  model refused/missing   7  data folder problem        8  cancelled (Ctrl+C)
  10 bad command-line usage
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

EXIT_MATCH, EXIT_NO_MATCH, EXIT_REFER = 0, 1, 2
EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 3, 10, 8
VERDICT_EXIT = {"genuine": EXIT_MATCH, "forgery": EXIT_NO_MATCH, "refer": EXIT_REFER}

#: Subcommand modules; each has ``register(subparsers)`` adding parsers whose ``func(args) -> int``.
COMMAND_MODULES = [
    "sigverify.cli.core",
    "sigverify.cli.training",
    "sigverify.cli.library",
    "sigverify.cli.bench",
    "sigverify.cli.finetune",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors must not collide with verdict exit code 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def add_common(p: argparse.ArgumentParser, model: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    if model:
        p.add_argument("--model", help="model .safetensors file (default: the shipped model)")
        p.add_argument("--device", default=None, help="auto (default), cpu or cuda")


def _finite(o):
    """JSON has no NaN/Infinity: undefined numbers (e.g. an EER with no pairs) become null."""
    import math

    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def emit(args, data: dict, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(_finite(data), indent=2, default=_json_default, allow_nan=False))
    else:
        print(text)


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def build_parser() -> argparse.ArgumentParser:
    from sigverify import __version__

    parser = _Parser(prog="sigverify-cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sigverify {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sigverify.errors import SigverifyError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except SigverifyError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc), "error_type": type(exc).__name__, "exit_code": exc.exit_code}))
        print(f"sigverify-cli: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
