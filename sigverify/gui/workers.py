"""Moved: the GUI's one background-job type is :mod:`sigverify.gui.jobs` (kept as an alias)."""

from sigverify.gui.jobs import JobRunner, JobSignals, ProgressFn, StopFn, error_text  # noqa: F401

__all__ = ["JobRunner", "JobSignals", "ProgressFn", "StopFn", "error_text"]
