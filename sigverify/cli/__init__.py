"""sigverify-cli: the command-line twin of every GUI action.

Exit codes (every subcommand):
  0  match: verdict "genuine" (or the command succeeded)
  1  no match: verdict "forgery"
  2  refer to a supervisor
  3  error (general)         4  image cannot be loaded     5  no signature on the image (blank)
  6  model refused/missing   7  data folder problem        8  cancelled (Ctrl+C)
  9  audit trail damaged or tampered with (``audit verify``)  10 bad command-line usage
Unexpected errors exit 3 with one line on stderr (a JSON error object under --json) and the
traceback in the rotating log <user data folder>/logs/sigverify-cli.log.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

EXIT_MATCH, EXIT_NO_MATCH, EXIT_REFER = 0, 1, 2
EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 3, 10, 8
EXIT_AUDIT = 9
VERDICT_EXIT = {"genuine": EXIT_MATCH, "forgery": EXIT_NO_MATCH, "refer": EXIT_REFER}

#: Subcommand modules; each has ``register(subparsers)`` adding parsers whose ``func(args) -> int``.
COMMAND_MODULES = [
    "sigverify.cli.core",
    "sigverify.cli.locate",
    "sigverify.cli.training",
    "sigverify.cli.library",
    "sigverify.cli.bench",
    "sigverify.cli.finetune",
    "sigverify.cli.operators",
    "sigverify.cli.export",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors must not collide with verdict exit code 2
        self.print_usage(sys.stderr)
        if "--json" in sys.argv[1:] or "--json" in (_CURRENT_ARGV or []):
            print(json.dumps({"error": message, "error_type": "UsageError", "exit_code": EXIT_USAGE}))
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


_CURRENT_ARGV: list[str] | None = None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (batch sizes, limits, worker counts)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {v})")
    return v


def log_path():
    """The rotating error log of the command line (tracebacks of unexpected errors)."""
    from sigverify.paths import user_data_dir

    return user_data_dir() / "logs" / "sigverify-cli.log"


def log_exception(exc: BaseException, argv=None) -> str | None:
    """Append ``exc``'s traceback to the rotating log; returns the log path (None if it cannot be written)."""
    import logging
    from logging.handlers import RotatingFileHandler

    try:
        path = log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        logger = logging.getLogger("sigverify.cli.errors")
        logger.propagate = False
        logger.setLevel(logging.ERROR)
        if not any(getattr(h, "baseFilename", None) == str(path) for h in logger.handlers):
            for h in list(logger.handlers):
                logger.removeHandler(h)
                h.close()
            h = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8", errors="replace")
            h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(h)
        logger.error("unexpected error in sigverify-cli %s", " ".join(map(str, argv or [])), exc_info=exc)
        for h in logger.handlers:
            h.flush()
        return str(path)
    except Exception:  # the log is best effort: a full disk must not hide the real error
        return None


def describe_unexpected(exc: BaseException) -> str:
    """One line for an error no code path expected (disk full, path too long, database locked...)."""
    import errno
    import sqlite3

    from sigverify.safetext import display_name

    if isinstance(exc, OSError):
        where = f"{display_name(exc.filename)}: " if getattr(exc, "filename", None) else ""
        if exc.errno == errno.ENOSPC:
            return f"{where}the disk is full; free some space and run the command again"
        if exc.errno == errno.ENAMETOOLONG:
            return f"{where[:120]}the path is too long"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"{where}permission denied"
        if exc.errno == errno.EROFS:
            return f"{where}the file system is read-only"
        return f"{where}{exc.strerror or exc}"
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        if "disk is full" in text or "disk i/o error" in text:
            return (
                "the disk is full (or failing): the library database could not be written; free some space "
                "and run the command again (a batch resumes where it stopped)"
            )
        if "locked" in text or "busy" in text:
            return "the library database is busy (another sigverify is writing to it); try again in a moment"
        return f"database error: {exc}"
    if isinstance(exc, MemoryError):
        return "not enough memory for this operation"
    if isinstance(exc, UnicodeError):
        return f"a file or folder name could not be read as text ({exc.__class__.__name__})"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"unexpected error ({type(exc).__name__}{': ' + text if text else ''})"


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
        from sigverify.safetext import terminal_safe

        print(terminal_safe(text))


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


def _print_error(args, exc: BaseException, message: str, code: int, extra: dict | None = None) -> None:
    from sigverify.safetext import display_name, terminal_safe

    message = " ".join(display_name(message).split("\n"))  # one line
    if getattr(args, "json", False):
        d = {"error": message, "error_type": type(exc).__name__, "exit_code": code}
        d.update(extra or {})
        try:
            print(json.dumps(d, default=str))
        except (OSError, ValueError):
            pass
    try:
        print(f"sigverify-cli: error: {terminal_safe(message)}", file=sys.stderr)
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every exception ends here: expected ones (``SigverifyError``) with their exit
    code, anything else with exit 3, a one-line message (a JSON error object under ``--json``) and the
    traceback in the rotating log (``log_path()``)."""
    global _CURRENT_ARGV
    from sigverify.errors import SigverifyError

    _CURRENT_ARGV = list(argv) if argv is not None else None
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        return 0
    except SigverifyError as exc:
        extra = {}
        if getattr(exc, "first_bad", None):
            extra["first_bad"] = exc.first_bad
        _print_error(args, exc, str(exc), exc.exit_code, extra)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the CLI's edge: nothing may escape as a traceback / exit 1
        where = log_exception(exc, argv if argv is not None else sys.argv[1:])
        extra = {"log": where} if where else {}
        msg = describe_unexpected(exc) + (f" (details in {where})" if where else "")
        _print_error(args, exc, msg, EXIT_ERROR, extra)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
