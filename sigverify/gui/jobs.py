"""The GUI's one background-job type: every long task (model loading, embedding, library refresh,
enrolment, batch runs, fine-tuning) runs through :class:`JobRunner`.

A job is ``fn(progress, should_stop)`` run in the runner's ``QThreadPool``:

- ``progress(fraction, message, partial=None)`` reports progress; a non-None ``partial`` is a partial
  result (e.g. one epoch's row of the fine-tuning curve) delivered to ``on_partial`` in order;
- ``should_stop()`` is True once the job was cancelled or superseded (cooperative stop);
- a ``Cancelled`` exception (or returning after a cancel) ends it as cancelled;
- any other exception reaches ``on_error`` **as the exception object**, after it was logged with its
  traceback (``logging``, logger ``sigverify.gui.jobs``). A job without ``on_error`` is not silent: the
  runner's ``unhandled_error(slot, exc)`` signal fires and the window shows it on screen.

All callbacks run on the GUI thread (the per-job signal carrier is owned by the runner and lives in the
GUI thread; the worker only emits). One live job per *slot*: a new ``submit`` to a slot cancels the
previous job and its late results are dropped by job id. Nothing here is ever deleted from the worker
thread, so a job cannot outlive its carrier (the cause of the old "already deleted" crash).
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from sigverify.progress import Progress, ShouldStop

log = logging.getLogger(__name__)

ProgressFn = Progress  # progress(fraction, message, partial=None): the one type of sigverify.progress
StopFn = ShouldStop
JobFn = Callable[[ProgressFn, StopFn], Any]


def error_text(exc: BaseException) -> str:
    """The message a clerk sees for a job's exception."""
    from sigverify.errors import SigverifyError

    if isinstance(exc, SigverifyError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        return "not enough memory for this task"
    return f"unexpected error: {type(exc).__name__}: {exc}"


class JobSignals(QObject):
    progress = Signal(int, float, str)  # job id, 0..1, message
    partial = Signal(int, object)  # job id, a partial result
    finished = Signal(int, object)  # job id, result
    failed = Signal(int, object)  # job id, the exception object
    cancelled = Signal(int)


class _Runnable(QRunnable):
    def __init__(self, job_id: int, slot: str, fn: JobFn, signals: JobSignals, stop: threading.Event, soft: threading.Event):
        super().__init__()
        self.job_id, self.slot, self.fn, self.signals, self._stop, self._soft = job_id, slot, fn, signals, stop, soft
        self.setAutoDelete(True)

    def _progress(self, frac: float, msg: str = "", partial: Any = None, *_ignored) -> None:
        if self._stop.is_set() and not self._soft.is_set():
            return
        self.signals.progress.emit(self.job_id, float(frac), str(msg))
        if partial is not None:
            self.signals.partial.emit(self.job_id, partial)

    def run(self) -> None:  # worker thread: touch no widget here
        from sigverify.errors import Cancelled, SigverifyError

        try:
            result = self.fn(self._progress, self._stop.is_set)
        except Cancelled:
            self.signals.cancelled.emit(self.job_id)
        except BaseException as exc:  # noqa: BLE001 - every failure is reported, never crashes the app
            if isinstance(exc, SigverifyError):
                log.warning("background job %r failed: %s", self.slot, exc, exc_info=exc)
            else:
                log.error("background job %r failed", self.slot, exc_info=exc)
            self.signals.failed.emit(self.job_id, exc)
        else:
            if self._stop.is_set() and not self._soft.is_set():
                self.signals.cancelled.emit(self.job_id)
            else:
                self.signals.finished.emit(self.job_id, result)


@dataclass
class _Entry:
    slot: str
    stop: threading.Event
    soft: threading.Event
    signals: JobSignals
    on_done: Callable[[Any], None] | None
    on_error: Callable[[BaseException], None] | None
    on_progress: Progress | None
    on_cancel: Callable[[], None] | None
    on_partial: Callable[[Any], None] | None
    running: bool = True
    extra: dict = field(default_factory=dict)


class JobRunner(QObject):
    """Runs jobs in its own thread pool; one live job per slot; stale results dropped.

    Callbacks (GUI thread, newest job of the slot only): ``on_done(result)``, ``on_error(exc)``,
    ``on_progress(fraction, message)``, ``on_partial(obj)``, ``on_cancel()``.
    """

    busy_changed = Signal(str, bool)  # slot, busy
    unhandled_error = Signal(str, object)  # slot, exception: a job without on_error failed
    job_failed = Signal(str, object)  # slot, exception: every failure (for a log view / tests)

    def __init__(self, parent: QObject | None = None, threads: int = 2):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._ids = itertools.count(1)
        self._current: dict[str, int] = {}
        self._jobs: dict[int, _Entry] = {}

    def submit(
        self,
        slot: str,
        fn: JobFn,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Progress | None = None,
        on_cancel: Callable[[], None] | None = None,
        on_partial: Callable[[Any], None] | None = None,
    ) -> int:
        self.cancel(slot, notify=False)
        jid = next(self._ids)
        sig = JobSignals(self)  # owned by the runner (GUI thread), disconnected and dropped when the job ends
        stop, soft = threading.Event(), threading.Event()
        self._jobs[jid] = _Entry(slot, stop, soft, sig, on_done, on_error, on_progress, on_cancel, on_partial)
        self._current[slot] = jid
        sig.finished.connect(self._finished)
        sig.failed.connect(self._failed)
        sig.progress.connect(self._progressed)
        sig.partial.connect(self._partial)
        sig.cancelled.connect(self._cancelled)
        self.busy_changed.emit(slot, True)
        self.pool.start(_Runnable(jid, slot, fn, sig, stop, soft))
        return jid

    def current(self, slot: str) -> int | None:
        return self._current.get(slot)

    def is_busy(self, slot: str | None = None) -> bool:
        if slot is None:
            return bool(self._current)
        return slot in self._current

    def cancel(self, slot: str, notify: bool = True) -> bool:
        """Ask the slot's job to stop; its later results are dropped. ``on_cancel`` runs at once if ``notify``."""
        jid = self._current.pop(slot, None)
        if jid is None:
            return False
        e = self._jobs.get(jid)
        if e is not None:
            e.stop.set()
            if notify and e.on_cancel:
                e.on_cancel()
        self.busy_changed.emit(slot, False)
        return True

    def request_stop(self, slot: str) -> bool:
        """Ask the slot's job to stop early but still deliver what it returns (a partial result, e.g. a
        batch report of the items done so far) through ``on_done``."""
        jid = self._current.get(slot)
        e = self._jobs.get(jid) if jid is not None else None
        if e is None:
            return False
        e.soft.set()
        e.stop.set()
        return True

    def cancel_all(self) -> None:
        for slot in list(self._current):
            self.cancel(slot, notify=False)

    def shutdown(self, wait_ms: int = 3000) -> bool:
        """Cancel everything and wait for the threads (window close). True when all stopped in time."""
        self.cancel_all()
        self.pool.clear()
        return self.pool.waitForDone(wait_ms)

    def wait(self, slot: str | None = None, timeout_ms: int = 30000) -> bool:
        """Process events until the slot (or every slot) is idle (tests, scripts)."""
        import time

        from PySide6.QtWidgets import QApplication

        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline:
            QApplication.processEvents()
            if not self.is_busy(slot):
                return True
            time.sleep(0.005)
        return False

    # -- queued slots (GUI thread) -------------------------------------------------------------
    def _take(self, jid: int) -> _Entry | None:
        e = self._jobs.pop(jid, None)
        if e is None:
            return None
        e.signals.deleteLater()  # the worker emitted its last signal; safe to drop the carrier now
        if self._current.get(e.slot) != jid:
            return None  # superseded or cancelled: ignore the stale result
        del self._current[e.slot]
        self.busy_changed.emit(e.slot, False)
        return e

    def _finished(self, jid: int, result: object) -> None:
        e = self._take(jid)
        if e and e.on_done:
            e.on_done(result)

    def _failed(self, jid: int, exc: object) -> None:
        slot = self._jobs[jid].slot if jid in self._jobs else ""
        e = self._take(jid)
        if e is None:
            return
        self.job_failed.emit(slot, exc)
        if e.on_error:
            e.on_error(exc)
        else:
            self.unhandled_error.emit(slot, exc)

    def _cancelled(self, jid: int) -> None:
        e = self._take(jid)
        if e and e.on_cancel:
            e.on_cancel()

    def _progressed(self, jid: int, frac: float, msg: str) -> None:
        e = self._jobs.get(jid)
        if e and self._current.get(e.slot) == jid and e.on_progress:
            e.on_progress(frac, msg)

    def _partial(self, jid: int, obj: object) -> None:
        e = self._jobs.get(jid)
        if e and self._current.get(e.slot) == jid and e.on_partial:
            e.on_partial(obj)


__all__ = ["JobRunner", "JobSignals", "error_text", "ProgressFn", "StopFn"]
