"""Scheduled report runs (issue 14, point 2): schedules in YAML, run records, restatements.

* :mod:`~workbench.schedule.spec` — schedules in YAML (:func:`load_schedules`, :class:`Schedule`),
  period templates in parameters (:mod:`~workbench.schedule.periods`: ``${month-1}``,
  ``${quarter-1.start}`` …), cron expressions (:mod:`~workbench.schedule.cron`);
* :mod:`~workbench.schedule.store` — every run recorded (:class:`RunStore`, SQLite or PostgreSQL);
* :mod:`~workbench.schedule.inputs` — the input hash over the lake batches a run reads, the code version;
* :mod:`~workbench.schedule.runner` — what is due (:func:`run_due`), one run (:func:`run_schedule`),
  restatements (:func:`restate`); notebooks executed with papermill;
* :mod:`~workbench.schedule.diff` — figures and rows that changed between two runs;
* :mod:`~workbench.schedule.service` — the long-running scheduler (:func:`serve`, APScheduler).

``workbench schedule list | run-due | run | serve | history | diff`` (``workbench/cli/schedule.py``).
"""
from __future__ import annotations

import importlib

_API = {
    "Schedule": "spec", "ScheduleError": "spec", "ScheduleFileError": "spec", "load_schedules": "spec",
    "RunStore": "store", "RunStoreError": "store", "RunNotFound": "store",
    "input_manifest": "inputs", "code_version": "inputs",
    "run_due": "runner", "run_schedule": "runner", "restate": "runner", "due_times": "runner",
    "diff_runs": "diff", "to_markdown": "diff", "to_html": "diff",
    "serve": "service", "build_scheduler": "service",
}
__all__ = ["RunNotFound", "RunStore", "RunStoreError", "Schedule", "ScheduleError", "ScheduleFileError",
           "build_scheduler", "code_version", "diff_runs", "due_times", "input_manifest", "load_schedules", "restate",
           "run_due", "run_schedule", "serve", "to_html", "to_markdown"]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f"workbench.schedule.{_API[name]}"), name)
    raise AttributeError(f"module 'workbench.schedule' has no attribute {name!r}")
