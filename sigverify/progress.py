"""The one progress-callback type of every long job (no Qt).

A long core function takes ``progress`` and ``should_stop`` keyword arguments:

- ``progress(fraction, message)`` or ``progress(fraction, message, info)``: ``fraction`` in 0..1, a short
  message for a status line or progress bar, and optionally ``info``, a dict of partial results
  (a training epoch's row: loss, validation EER, ...). Receivers accept both forms.
- ``should_stop()`` is polled between steps; when it returns True the job raises ``Cancelled`` (or
  returns its partial result marked cancelled, where that is documented).

The GUI turns these into signals in its job runner; the CLI drives a tqdm bar.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol


class Progress(Protocol):
    def __call__(self, fraction: float, message: str, info: dict[str, Any] | None = None, /) -> None: ...


ShouldStop = Callable[[], bool]

__all__ = ["Progress", "ShouldStop"]


def format_duration(s: float) -> str:
    """Seconds as '42 s' or '3 min 05 s' (ETAs in progress messages, the wizard's estimate)."""
    s = max(0, int(round(s)))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


__all__ += ["format_duration"]
