"""Text that is safe to store, print and export (no Qt).

- ``display_name``: a file name / path as text that can always be encoded as UTF-8 (names that are not
  valid UTF-8 on disk arrive in Python with lone surrogates; SQLite, JSON and the terminal refuse them).
- ``terminal_safe``: control characters (ANSI escape sequences, carriage returns, bells, C1 controls)
  removed, so a customer name or a reason cannot rewrite the clerk's terminal.
- ``csv_cell``: the OWASP rule against CSV / formula injection: a cell starting with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return gets a leading ``'`` so a spreadsheet shows it as text.
"""

from __future__ import annotations

import os
import re

#: ANSI / VT100 escape sequences (CSI ... final byte, OSC ... BEL/ST, and two-byte ESC x)
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
#: C0 controls except tab and newline, DEL, C1 controls
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def display_name(value: str | os.PathLike | bytes) -> str:
    """Text for a file name that may not be valid UTF-8: undecodable bytes become U+FFFD."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    s = os.fspath(value)
    if isinstance(s, bytes):
        return s.decode("utf-8", "replace")
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return (
            s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if _only_escapes(s)
            else s.encode("utf-8", "replace").decode("utf-8", "replace")
        )


def _only_escapes(s: str) -> bool:
    try:
        s.encode("utf-8", "surrogateescape")
        return True
    except UnicodeEncodeError:
        return False


def terminal_safe(text: str) -> str:
    """``text`` without escape sequences and control characters (newlines and tabs are kept)."""
    text = display_name(str(text))
    return _CONTROL.sub("", _ANSI.sub("", text))


def csv_cell(value):
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection rule)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    value = display_name(value)
    if value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_row(row: dict, text_columns=None) -> dict:
    """``csv_cell`` applied to every string value of ``row`` (or only to ``text_columns``)."""
    return {k: (csv_cell(v) if (text_columns is None or k in text_columns) else v) for k, v in row.items()}


__all__ = ["display_name", "terminal_safe", "csv_cell", "csv_row"]
