"""Background jobs: model loading and signature embedding run in a QThreadPool, never on the GUI thread.

A :class:`Job` runs ``fn(progress, should_stop)`` in a worker thread and reports through a
:class:`JobSignals` carrier that lives in the GUI thread (queued connections, so slots run on the
GUI thread). Every job has an id; :class:`JobRunner` keeps the latest id per *slot* ("reference",
"questioned", "model") so a newer request supersedes an older one: the old job is asked to stop and
its late result is ignored.
"""

from __future__ import annotations

import itertools
import logging
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


class JobSignals(QObject):
    progress = Signal(int, float, str)  # job id, 0..1, message
    finished = Signal(int, object)  # job id, result
    failed = Signal(int, str)  # job id, user-facing message
    cancelled = Signal(int)


class Job(QRunnable):
    def __init__(self, job_id: int, fn: Callable[[ProgressFn, StopFn], Any], signals: JobSignals):
        super().__init__()
        self.job_id = job_id
        self.fn = fn
        self.signals = signals
        self._stop = threading.Event()
        self.setAutoDelete(True)

    def cancel(self) -> None:
        self._stop.set()

    def is_cancelled(self) -> bool:
        return self._stop.is_set()

    def _progress(self, frac: float, msg: str) -> None:
        if not self._stop.is_set():
            self.signals.progress.emit(self.job_id, float(frac), str(msg))

    def run(self) -> None:  # worker thread: touch no widget here
        from sigverify.errors import Cancelled, SigverifyError

        try:
            result = self.fn(self._progress, self.is_cancelled)
        except Cancelled:
            self.signals.cancelled.emit(self.job_id)
        except SigverifyError as exc:
            self.signals.failed.emit(self.job_id, str(exc))
        except MemoryError:
            self.signals.failed.emit(self.job_id, "not enough memory for this image")
        except Exception as exc:  # a bug or an unexpected library error: report it, never crash the app
            log.error("background job failed:\n%s", traceback.format_exc())
            self.signals.failed.emit(self.job_id, f"unexpected error: {type(exc).__name__}: {exc}")
        else:
            if self._stop.is_set():
                self.signals.cancelled.emit(self.job_id)
            else:
                self.signals.finished.emit(self.job_id, result)


class JobRunner(QObject):
    """Starts jobs in its own thread pool; one live job per slot, stale results dropped.

    ``on_done(result)``, ``on_error(message)``, ``on_progress(frac, message)`` and ``on_cancel()``
    are called on the GUI thread, and only for the newest job of the slot.
    """

    busy_changed = Signal(str, bool)  # slot, busy

    def __init__(self, parent: QObject | None = None, threads: int = 2):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._ids = itertools.count(1)
        self._current: dict[str, int] = {}
        self._jobs: dict[int, tuple[str, Job, JobSignals, dict]] = {}

    def submit(self, slot: str, fn: Callable[[ProgressFn, StopFn], Any], on_done: Callable[[Any], None],
               on_error: Callable[[str], None] | None = None,
               on_progress: Callable[[float, str], None] | None = None,
               on_cancel: Callable[[], None] | None = None) -> int:
        self.cancel(slot, notify=False)
        jid = next(self._ids)
        sig = JobSignals()
        job = Job(jid, fn, sig)
        cbs = {"done": on_done, "error": on_error, "progress": on_progress, "cancel": on_cancel}
        self._jobs[jid] = (slot, job, sig, cbs)
        self._current[slot] = jid
        sig.finished.connect(self._finished)
        sig.failed.connect(self._failed)
        sig.progress.connect(self._progressed)
        sig.cancelled.connect(self._cancelled)
        self.busy_changed.emit(slot, True)
        self.pool.start(job)
        return jid

    def current(self, slot: str) -> int | None:
        return self._current.get(slot)

    def is_busy(self, slot: str | None = None) -> bool:
        if slot is None:
            return bool(self._current)
        return slot in self._current

    def cancel(self, slot: str, notify: bool = True) -> bool:
        jid = self._current.pop(slot, None)
        if jid is None:
            return False
        entry = self._jobs.get(jid)
        if entry:
            entry[1].cancel()
            cb = entry[3]["cancel"]
            if notify and cb:
                cb()
        self.busy_changed.emit(slot, False)
        return True

    def cancel_all(self) -> None:
        for slot in list(self._current):
            self.cancel(slot, notify=False)

    def shutdown(self, wait_ms: int = 3000) -> None:
        self.cancel_all()
        self.pool.clear()
        self.pool.waitForDone(wait_ms)

    # -- queued slots (GUI thread) -------------------------------------------------------------
    def _take(self, jid: int) -> dict | None:
        entry = self._jobs.pop(jid, None)
        if entry is None:
            return None
        slot = entry[0]
        if self._current.get(slot) != jid:
            return None  # superseded or cancelled: ignore the stale result
        del self._current[slot]
        self.busy_changed.emit(slot, False)
        return entry[3]

    def _finished(self, jid: int, result: object) -> None:
        cbs = self._take(jid)
        if cbs:
            cbs["done"](result)

    def _failed(self, jid: int, msg: str) -> None:
        cbs = self._take(jid)
        if cbs and cbs["error"]:
            cbs["error"](msg)

    def _cancelled(self, jid: int) -> None:
        cbs = self._take(jid)
        if cbs and cbs["cancel"]:
            cbs["cancel"]()

    def _progressed(self, jid: int, frac: float, msg: str) -> None:
        entry = self._jobs.get(jid)
        if entry and self._current.get(entry[0]) == jid and entry[3]["progress"]:
            entry[3]["progress"](frac, msg)
