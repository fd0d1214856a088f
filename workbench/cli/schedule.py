"""``workbench schedule``: scheduled notebook runs (issue 14, point 2).

    workbench schedule list     [--schedules PATH] [--db URL] [--now ISO] [--count N] [--json]
    workbench schedule run-due  [--schedules PATH] [--db URL] [--now ISO] [--restate]   # cron / systemd timers
    workbench schedule run NAME [--at ISO] [--schedules PATH] [--db URL]               # a period again, by hand
    workbench schedule serve    [--schedules PATH] [--db URL] [--no-catch-up]          # long-running (APScheduler)
    workbench schedule history  [--name NAME] [--db URL] [--limit N] [--json]
    workbench schedule show RUN [--db URL] [--json]
    workbench schedule diff RUN_A RUN_B [--db URL] [--html FILE]

``--schedules`` defaults to ``$WORKBENCH_SCHEDULES`` or ``schedules/`` (a file or a folder of
YAML files), ``--db`` to ``$WORKBENCH_SCHEDULE_DB`` or ``data/schedule.db`` (a plain path is a
SQLite file; PostgreSQL by URL).  A time without an offset (``--now 2026-04-02T07:00``) is
Asia/Shanghai time.  ``run-due`` and ``run`` exit 1 when a run failed (cron mails it).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import click

from workbench.cli.errors import fail

__all__ = ["schedule_group"]

_schedules_option = click.option(
    "--schedules", "schedules_path", type=click.Path(exists=True, path_type=Path), default=None,
    help="Schedules YAML file or folder (default $WORKBENCH_SCHEDULES or schedules/).")
_db_option = click.option(
    "--db", "db", default=None,
    help="Run store: SQLAlchemy URL or SQLite file (default $WORKBENCH_SCHEDULE_DB or data/schedule.db).")


def _time(text: str | None, option: str) -> dt.datetime | None:
    """An ISO date-time (offset optional: Asia/Shanghai) or date, else exit 2 naming the option."""
    if text is None:
        return None
    from zoneinfo import ZoneInfo

    from workbench.schedule.spec import DEFAULT_TIMEZONE

    t = text.strip()
    try:
        v = dt.datetime.fromisoformat(t)
    except ValueError:
        fail(f"{option} {text!r}: not a date and time — write ISO 8601, e.g. 2026-04-02T07:00 or "
             "2026-04-02T07:00+08:00")
    return v if v.tzinfo else v.replace(tzinfo=ZoneInfo(DEFAULT_TIMEZONE))


def _store(db: str | None, *, create: bool = True):
    from workbench.schedule.store import RunStore

    return RunStore(db, create=create)


def _schedules(path: Path | None):
    from workbench.schedule.spec import load_schedules

    if path is None:
        path = Path(os.environ.get("WORKBENCH_SCHEDULES") or "schedules")
        if not path.exists():
            fail(f"schedules {path}: no such file or folder (give --schedules FILE, or set $WORKBENCH_SCHEDULES)")
    return load_schedules(path)


def _local(text: str | None) -> str:
    """A stored UTC time shown in Asia/Shanghai (minutes)."""
    if not text:
        return "–"
    from zoneinfo import ZoneInfo

    from workbench.schedule.spec import DEFAULT_TIMEZONE

    return dt.datetime.fromisoformat(text).astimezone(ZoneInfo(DEFAULT_TIMEZONE)).isoformat(timespec="minutes")


def _period(params: dict | None) -> str:
    p = params or {}
    if p.get("period_start") or p.get("period_end"):
        a, b = p.get("period_start"), p.get("period_end")
        return str(a) if a == b or not b else f"{a}..{b}"
    for k in ("period", "year"):
        if p.get(k) not in (None, ""):
            return str(p[k])
    return ""


@click.group("schedule")
def schedule_group():
    """Scheduled notebook runs: schedules in YAML, every run recorded, restatements with their diff."""


@schedule_group.command("list")
@_schedules_option
@_db_option
@click.option("--now", "now_text", default=None, help="Count from this time instead of the clock (ISO 8601).")
@click.option("--count", type=click.IntRange(1, 100), default=3, show_default=True, help="Next fire times shown.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per schedule.")
def schedule_list(schedules_path, db, now_text, count, as_json):
    """The schedules with their next run times and their last run."""
    from workbench.schedule.cron import next_fire_times
    from workbench.schedule.runner import due_times
    from workbench.schedule.store import default_url

    now = _time(now_text, "--now") or dt.datetime.now(dt.UTC)
    url = db or default_url()
    path = url.removeprefix("sqlite:///")
    store = _store(url, create=False) if "://" in path or Path(path).exists() else None   # none yet: no runs
    try:
        schedules = _schedules(schedules_path)
        out = []
        for s in schedules:
            nxt = [t.isoformat(timespec="minutes") for t in next_fire_times(s.trigger, now.astimezone(s.tz), count)]
            last = store.last_run(s.name) if store else None
            due = [t.isoformat(timespec="minutes") for t in due_times(s, store, now)] if store else []
            out.append({"name": s.name, "notebook": s.notebook, "cron": s.cron, "timezone": s.timezone,
                        "enabled": s.enabled, "next": nxt, "due": due,
                        "last_run": None if last is None else {"id": last["id"], "status": last["status"],
                                                                "scheduled_for": _local(last["scheduled_for"]),
                                                                "kind": last["kind"]}})
    finally:
        if store:
            store.dispose()
    if as_json:
        for o in out:
            click.echo(json.dumps(o, ensure_ascii=False))
        return
    for o in out:
        state = "" if o["enabled"] else " (disabled)"
        click.echo(f"{o['name']}{state}: {o['notebook']}  cron '{o['cron']}' {o['timezone']}")
        click.echo(f"  next: {', '.join(o['next']) or '—'}")
        if o["due"]:
            click.echo(f"  due now: {', '.join(o['due'])}")
        lr = o["last_run"]
        click.echo("  last run: " + ("none" if lr is None else
                                     f"{lr['id']} {lr['status']} ({lr['kind']}) for {lr['scheduled_for']}"))


def _report(outcomes, *, echo: bool = True) -> None:
    for o in outcomes if echo else ():
        click.echo(o.line())
    if any(o.status == "failed" for o in outcomes):
        sys.exit(1)


@schedule_group.command("run-due")
@_schedules_option
@_db_option
@click.option("--now", "now_text", default=None, help="Run what is due at this time instead of the clock (ISO 8601).")
@click.option("--restate", is_flag=True,
              help="Also run again every past period whose input data were corrected since (restatements).")
def schedule_run_due(schedules_path, db, now_text, restate):
    """Run every schedule's fire times due since its last recorded run (for cron or a systemd timer;
    running it twice runs nothing twice; missed fire times are caught up once)."""
    from workbench.schedule.runner import restate as do_restate
    from workbench.schedule.runner import run_due

    now = _time(now_text, "--now")
    store = _store(db)
    try:
        schedules = _schedules(schedules_path)
        done = run_due(schedules, store, now=now, log=click.echo)
        if restate:
            done += do_restate(schedules, store, log=click.echo)
    finally:
        store.dispose()
    if not done:
        click.echo("nothing due")
    _report(done, echo=False)


@schedule_group.command("run")
@click.argument("name")
@click.option("--at", "at_text", default=None,
              help="Run the period of the latest fire time at or before this time (ISO 8601; default: now).")
@_schedules_option
@_db_option
def schedule_run(name, at_text, schedules_path, db):
    """Run schedule NAME now for one period (again): a re-run, or a restatement when its input data
    changed since that period's last run; the diff against that run is written beside the outputs."""
    from workbench.schedule.cron import latest_fire_time
    from workbench.schedule.runner import run_schedule

    at = _time(at_text, "--at")
    store = _store(db)
    try:
        schedules = {s.name: s for s in _schedules(schedules_path)}
        if name not in schedules:
            fail(f"schedule {name!r}: not in the schedules ({', '.join(sorted(schedules)) or 'none'})")
        s = schedules[name]
        when = at or dt.datetime.now(dt.UTC)
        at = latest_fire_time(s.trigger, when)      # the period is that of the fire time it stands for
        if at is None:
            fail(f"schedule {name!r}: no fire time at or before {when.isoformat(timespec='minutes')}")
        out = run_schedule(s, store, at, trigger="manual")
    finally:
        store.dispose()
    if out is not None and out.previous_run_id and out.status == "succeeded":
        click.echo(f"compared with run {out.previous_run_id}: {out.change}")
    _report([out] if out else [])


@schedule_group.command("serve")
@_schedules_option
@_db_option
@click.option("--no-catch-up", is_flag=True, help="Do not run the fire times missed while the service was down.")
def schedule_serve(schedules_path, db, no_catch_up):
    """Run the schedules in a long-running scheduler (APScheduler) until SIGTERM or Ctrl-C."""
    from workbench.schedule.service import serve

    store = _store(db)
    try:
        schedules = _schedules(schedules_path)

        def log(line):
            click.echo(line)
            sys.stdout.flush()

        code = serve(schedules, store, catch_up=not no_catch_up, log=log)
    finally:
        store.dispose()
    sys.exit(code)


@schedule_group.command("history")
@click.option("--name", default=None, help="Only the runs of this schedule.")
@_db_option
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The run records as JSON (one object per line).")
def schedule_history(name, db, limit, as_json):
    """The recorded runs, newest first: period, kind (first, rerun, restatement), status, change."""
    store = _store(db, create=False)
    try:
        rows = store.history(name, limit)
    finally:
        store.dispose()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False, default=str))
        return
    if not rows:
        click.echo("no runs recorded" + (f" of {name}" if name else ""))
        return
    click.echo(f"{'run':>5}  {'schedule':<20} {'period':<16} {'scheduled for':<22} {'kind':<18} {'status':<10} "
               f"{'duration':>9}  {'trigger':<8} {'inputs':<12} change / error")
    for r in rows:
        dur = f"{r['duration_s']:.1f} s" if r.get("duration_s") is not None else "–"
        prev = f" (of {r['previous_run_id']})" if r.get("previous_run_id") else ""
        tail = r.get("error") or r.get("change") or ""
        click.echo(f"{r['id']:>5}  {r['schedule']:<20} {_period(r.get('parameters')):<16} "
                   f"{_local(r['scheduled_for']):<22} {r['kind'] + prev:<18} {r['status']:<10} {dur:>9}  "
                   f"{r['trigger']:<8} {(r.get('input_hash') or '')[:12]:<12} {tail}")


@schedule_group.command("show")
@click.argument("run")
@_db_option
@click.option("--json", "as_json", is_flag=True)
def schedule_show(run, db, as_json):
    """Everything recorded about one run: parameters, code version, input batches, outputs with SHA-256."""
    store = _store(db, create=False)
    try:
        r = store.get(run)
    finally:
        store.dispose()
    if as_json:
        click.echo(json.dumps(r, ensure_ascii=False, default=str, indent=1))
        return
    for k in ("id", "schedule", "notebook", "notebook_sha256", "scheduled_for", "kind", "previous_run_id", "change",
              "status", "error", "trigger", "triggered_by", "code_version", "input_hash", "output_dir", "diff_path",
              "started_at", "finished_at", "duration_s", "host", "pid"):
        v = r.get(k)
        if v not in (None, ""):
            click.echo(f"{k:<16} {_local(v) if k == 'scheduled_for' else v}")
    click.echo("parameters:")
    for k, v in (r.get("parameters") or {}).items():
        click.echo(f"  {k} = {v!r}")
    batches = (r.get("input_manifest") or {}).get("batches_listed", [])
    click.echo(f"input batches ({len(batches)}):")
    for b in batches:
        click.echo(f"  {b['table']:<12} {b['batch_id']}  {b['rows']:>8} rows  {b.get('raw_name', '')}")
    click.echo(f"outputs ({len(r.get('outputs') or [])}):")
    for o in r.get("outputs") or []:
        click.echo(f"  {o['sha256'][:16]}  {o['bytes']:>10}  {o['path']}")


@schedule_group.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@_db_option
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the diff as HTML to this file.")
def schedule_diff(run_a, run_b, db, html_out):
    """What changed from run RUN_A to run RUN_B: input batches, figures (total, by source, by facility:
    before, after, delta) and the rows of every output table."""
    from workbench.schedule.diff import diff_runs, to_html, to_markdown

    store = _store(db, create=False)
    try:
        a, b = store.get(run_a), store.get(run_b)
    finally:
        store.dispose()
    d = diff_runs(a, b)
    if a["schedule"] != b["schedule"]:
        d.notes.append(f"the runs are of different schedules ({a['schedule']}, {b['schedule']})")
    click.echo(to_markdown(d), nl=False)
    if html_out is not None:
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(to_html(d), encoding="utf-8")
