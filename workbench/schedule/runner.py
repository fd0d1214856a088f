"""Running schedules: what is due, one run from start to record, restatements.

**Due.**  A schedule's fire times come from its cron expression in its timezone
(:mod:`workbench.schedule.cron`).  :func:`due_times` of a schedule at ``now`` are the fire times
after the latest one the store has a run for (``slot``) and at or before ``now`` — oldest first,
at most ``max_catch_up`` (the latest ones), never before ``start``.  A schedule with no run yet
is due for its latest fire time only (or every one since ``start`` when it sets one).  Each fire
time is a slot that runs once: :func:`run_due` twice at the same ``now`` runs nothing the second
time, and two processes at once cannot both take a slot (a unique column of the store).  A
missed fire time (the machine was off) is caught up by the next :func:`run_due`, with the
parameters of *its* period.  A failed run — the notebook raised, or its inputs cannot be read
(no such lake or enterprise) — is recorded ``failed`` with the error and not retried by the
scheduler (a notebook that fails would fail every tick); run it again with ``workbench schedule run``.

**One run** (:func:`run_schedule`): parameters for the fire time (templates filled in), the
input manifest and its hash (:mod:`workbench.schedule.inputs`), the previous succeeded run of the
same schedule and parameters — none: ``first``; the same input hash: ``rerun``; another:
``restatement`` — then a ``running`` row, the notebook executed by papermill into
``OUTPUT/run-NNNNN/``, every output file with its SHA-256, and for a rerun or restatement the
comparison with the previous run (:mod:`workbench.schedule.diff`) written beside the outputs as
``restatement.md``/``.html`` (``rerun.md``/``.html``) and summed up in the record (``no change``
or what changed).

**Restate** (:func:`restate`): for every schedule, the latest succeeded run of each period whose
inputs have changed since (the manifest's hash now differs) is run again — a restatement.
"""
from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import socket
import traceback
from dataclasses import dataclass
from pathlib import Path

from workbench.schedule import diff as _diff
from workbench.schedule.cron import fire_times, latest_fire_time
from workbench.schedule.inputs import (
    InputError,
    code_version,
    input_manifest,
    manifest_hash,
    sha256_file,
)
from workbench.schedule.spec import Schedule, notebook_parameters
from workbench.schedule.store import RunStore, utc_text

__all__ = [
    "RunOutcome",
    "due_times",
    "execute_notebook",
    "params_key",
    "restate",
    "run_due",
    "run_schedule",
    "who",
]

TRIGGERS = ("run-due", "serve", "manual", "restate")


@dataclass
class RunOutcome:
    """What one run did (its record is ``store.get(id)``)."""

    id: int
    schedule: str
    scheduled_for: dt.datetime
    status: str
    kind: str
    change: str
    output_dir: str
    error: str = ""
    previous_run_id: int | None = None

    def line(self) -> str:
        at = self.scheduled_for.isoformat(timespec="minutes")
        prev = f" of run {self.previous_run_id}" if self.previous_run_id else ""
        what = f"{self.kind}{prev}" + (f": {self.change}" if self.change else "")
        tail = f" — {self.error}" if self.error else ""
        return f"run {self.id} {self.schedule} @ {at}: {self.status} ({what}) {self.output_dir}{tail}"


def who() -> str:
    """``user@host`` of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return f"{user}@{socket.gethostname()}"


def params_key(params: dict) -> str:
    """SHA-256 of the parameters that make a run's report what it is (all but ``output_dir``)."""
    p = {k: v for k, v in params.items() if k != "output_dir"}
    return hashlib.sha256(json.dumps(p, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def execute_notebook(notebook: Path, parameters: dict, output_dir: Path) -> Path:
    """Execute ``notebook`` with papermill into ``output_dir`` (its working folder); the executed
    notebook's path.  Raises papermill's ``PapermillExecutionError`` when a cell fails."""
    import papermill as pm

    out = Path(output_dir) / Path(notebook).name
    pm.execute_notebook(str(notebook), str(out), parameters=parameters, progress_bar=False, kernel_name="python3",
                        cwd=str(output_dir))
    return out


def _error_line(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        cell = getattr(exc, "exec_count", None)
        return f"{ename}: {evalue}" + (f" (cell {cell})" if cell else "")
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:2000]


def _outputs(folder: Path) -> list[dict]:
    out = []
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name not in _diff.NOTE_NAMES:
            out.append({"path": f.relative_to(folder).as_posix(), "sha256": sha256_file(f), "bytes": f.stat().st_size})
    return out


def _tz_now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        from zoneinfo import ZoneInfo

        from workbench.schedule.spec import DEFAULT_TIMEZONE

        return now.replace(tzinfo=ZoneInfo(DEFAULT_TIMEZONE))
    return now


def due_times(schedule: Schedule, store: RunStore, now: dt.datetime | None = None) -> list[dt.datetime]:
    """The fire times of ``schedule`` to run at ``now`` (see the module doc), oldest first."""
    if not schedule.enabled:
        return []
    now = _tz_now(now).astimezone(schedule.tz)
    trig = schedule.trigger
    last = store.last_slot(schedule.name)
    start = dt.datetime.combine(schedule.start, dt.time(), schedule.tz) - dt.timedelta(microseconds=1) \
        if schedule.start else None
    if last is not None:
        after = dt.datetime.fromisoformat(last)
        if start is not None and start > after:
            after = start
    elif start is not None:
        after = start
    else:
        latest = latest_fire_time(trig, now)
        return [latest] if latest is not None else []
    return fire_times(trig, after, now, limit=schedule.max_catch_up)


def run_schedule(schedule: Schedule, store: RunStore, at: dt.datetime, *, trigger: str = "manual",
                 slot: bool = False, parameters: dict | None = None, execute=execute_notebook,
                 triggered_by: str | None = None) -> RunOutcome | None:
    """Run ``schedule`` for its fire time ``at`` and record it (see the module doc).

    ``slot``: the scheduler's run of that fire time (``None`` is returned when another process
    has it); ``parameters``: run with these (a restatement re-uses a past run's) instead of
    the schedule's for ``at``; ``execute(notebook, parameters, output_dir)``: the executor
    (papermill by default)."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger {trigger!r}: one of {TRIGGERS}")
    at = at.astimezone(schedule.tz)
    params = dict(parameters) if parameters is not None else schedule.resolve(at)
    params.pop("output_dir", None)
    key = params_key(params)
    manifest, input_error = {}, ""
    try:
        manifest = input_manifest(schedule.input_scope(params, at))
    except InputError as exc:             # recorded as a failed run: an operator sees it in the history
        input_error = f"inputs: {exc}"
    previous = store.previous(schedule.name, key)
    ihash = manifest_hash(manifest)
    if previous is None:
        kind = "first"
    else:
        kind = "rerun" if previous.get("input_hash") == ihash else "restatement"
    nb = schedule.notebook_path()
    started = dt.datetime.now(dt.UTC)
    run_id = store.start(schedule=schedule.name, notebook=str(schedule.notebook), parameters=params,
                         notebook_sha256=sha256_file(nb) if nb.is_file() else "", params_key=key,
                         scheduled_for=utc_text(at), slot=f"{schedule.name}@{utc_text(at)}" if slot else None,
                         kind=kind, previous_run_id=previous["id"] if previous else None, trigger=trigger,
                         triggered_by=triggered_by or who(), code_version=code_version(), input_hash=ihash,
                         input_manifest=manifest)
    if run_id is None:
        return None
    if input_error:
        store.finish(run_id, status="failed", started=started, error=input_error, outputs=[])
        return RunOutcome(run_id, schedule.name, at, "failed", kind, "", "", input_error,
                          previous["id"] if previous else None)
    base = schedule.output_folder(at)
    folder = base / f"run-{run_id:05d}"
    n = 1
    while folder.exists():                                # a store started afresh over old outputs
        folder = base / f"run-{run_id:05d}-{n}"
        n += 1
    status, error = "succeeded", ""
    try:
        folder.mkdir(parents=True)
        run_params = dict(params)
        try:
            if "output_dir" in notebook_parameters(nb):
                run_params["output_dir"] = str(folder)
        except (OSError, ValueError, SyntaxError):
            pass
        store.update(run_id, output_dir=str(folder), parameters=run_params)
        execute(nb, run_params, folder)
    except (KeyboardInterrupt, SystemExit):
        store.finish(run_id, status="failed", started=started, error="interrupted", output_dir=str(folder),
                     outputs=_outputs(folder) if folder.is_dir() else [])
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the notebook is the run's, recorded
        status, error = "failed", _error_line(exc)
        if os.environ.get("WORKBENCH_SCHEDULE_TRACEBACK"):
            traceback.print_exc()
    outputs = _outputs(folder) if folder.is_dir() else []
    change, diff_path = "", None
    if status == "succeeded" and previous is not None:
        try:
            record = {**store.get(run_id), "outputs": outputs}
            d = _diff.diff_runs(previous, record)
            change = d.summary()
            name = "restatement" if kind == "restatement" else "rerun"
            diff_path = folder / f"{name}.md"
            diff_path.write_text(_diff.to_markdown(d), encoding="utf-8")
            (folder / f"{name}.html").write_text(_diff.to_html(d), encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - the run stands; the comparison's failure is said
            change, diff_path = f"not compared with run {previous['id']}: {_error_line(exc)}", None
    store.finish(run_id, status=status, started=started, error=error or None, outputs=outputs, change=change or None,
                 diff_path=str(diff_path) if diff_path else None)
    return RunOutcome(run_id, schedule.name, at, status, kind, change, str(folder), error,
                      previous["id"] if previous else None)


def run_due(schedules: list[Schedule], store: RunStore, *, now: dt.datetime | None = None, trigger: str = "run-due",
            execute=execute_notebook, log=None, should_stop=None) -> list[RunOutcome]:
    """Run every fire time due at ``now`` (default: the clock) of every schedule (see the module
    doc); the runs made, oldest first per schedule.  ``log(line)`` is told about each;
    ``should_stop()`` true ends the loop before the next run (the service's stop)."""
    store.mark_interrupted()
    done: list[RunOutcome] = []
    for s in schedules:
        for at in due_times(s, store, now):
            if should_stop is not None and should_stop():
                return done
            out = run_schedule(s, store, at, trigger=trigger, slot=True, execute=execute)
            if out is not None:
                done.append(out)
                if log:
                    log(out.line())
    return done


def restate(schedules: list[Schedule], store: RunStore, *, execute=execute_notebook, log=None,
            names: list[str] | None = None) -> list[RunOutcome]:
    """Run again, as restatements, the periods whose inputs changed since their latest run."""
    done: list[RunOutcome] = []
    for s in schedules:
        if names and s.name not in names:
            continue
        for prev in store.latest_per_key(s.name):
            at = dt.datetime.fromisoformat(prev["scheduled_for"])
            params = {k: v for k, v in (prev.get("parameters") or {}).items() if k != "output_dir"}
            try:
                now_hash = manifest_hash(input_manifest(s.input_scope(params, at)))
            except InputError as exc:
                if log:
                    log(f"{s.name} run {prev['id']}: inputs not readable — {exc}")
                continue
            if now_hash == (prev.get("input_hash") or ""):
                continue
            out = run_schedule(s, store, at, trigger="restate", parameters=params, execute=execute)
            if out is not None:
                done.append(out)
                if log:
                    log(out.line())
    return done
