"""``workbench schedule serve``: a long-running scheduler on APScheduler.

One APScheduler job per enabled schedule, on the schedule's cron trigger
(:func:`workbench.schedule.cron.cron_trigger`), in a ``BackgroundScheduler`` with ONE worker
thread (notebooks run one after another; ``coalesce``, no misfire limit: a job late because the
previous notebook ran long still runs).  Each job calls :func:`workbench.schedule.runner.run_due`
for its schedule, so the store decides what is due: a ``serve`` and a cron/systemd ``run-due``
on the same store never run a fire time twice, and fire times missed while the service was down
are caught up at start (the ``catch-up`` job, unless ``catch_up=False``).

Stopping: SIGTERM or SIGINT (Ctrl-C) stops taking new runs and waits for the running notebook to
finish (its record completes; fire times not started yet are left to the next start's catch-up); a second signal stops at once (the run is recorded ``failed —
interrupted`` by the next ``run-due`` or ``serve`` on the same host).
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import threading

from workbench.schedule.cron import next_fire_times
from workbench.schedule.runner import execute_notebook, run_due

__all__ = ["build_scheduler", "serve"]


def build_scheduler(schedules, store, *, execute=execute_notebook, log=None, should_stop=None):
    """A (not started) ``BackgroundScheduler`` with one job per enabled schedule."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    sched = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)},
                                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
                                timezone=dt.UTC)

    def tick(schedule):
        try:
            run_due([schedule], store, trigger="serve", execute=execute, log=log, should_stop=should_stop)
        except Exception as exc:  # noqa: BLE001 - the service goes on; the failure is shown
            if log:
                log(f"{schedule.name}: {type(exc).__name__}: {exc}")

    for s in schedules:
        if s.enabled:
            sched.add_job(tick, trigger=s.trigger, args=[s], id=s.name, name=s.name, replace_existing=True)
    return sched


def serve(schedules, store, *, catch_up: bool = True, execute=execute_notebook, log=print,
          stop: threading.Event | None = None) -> int:
    """Run the schedules until SIGTERM/SIGINT (or ``stop`` is set); 0 on a clean stop."""
    stop = stop or threading.Event()
    sched = build_scheduler(schedules, store, execute=execute, log=log, should_stop=stop.is_set)
    signals = (signal.SIGTERM, signal.SIGINT)
    old = {}
    main = threading.current_thread() is threading.main_thread()

    def on_signal(signum, _frame):
        if stop.is_set():
            log("stopping now (second signal): the running notebook is abandoned")
            os._exit(128 + signum)
        log(f"{signal.Signals(signum).name}: stopping — waiting for a running notebook to finish "
            "(send it again to stop at once)")
        stop.set()

    if main:
        for s in signals:
            old[s] = signal.signal(s, on_signal)
    try:
        sched.start()
        if catch_up:
            def catch():
                try:
                    run_due(schedules, store, trigger="serve", execute=execute, log=log, should_stop=stop.is_set)
                except Exception as exc:  # noqa: BLE001
                    log(f"catch-up: {type(exc).__name__}: {exc}")
            sched.add_job(catch, id="catch-up", name="catch-up")
        now = dt.datetime.now(dt.UTC)
        log(f"serving {sum(s.enabled for s in schedules)} schedule(s) from {store.engine.url.render_as_string(True)} "
            f"(pid {os.getpid()}; SIGTERM or Ctrl-C stops)")
        for s in schedules:
            if s.enabled:
                nxt = next_fire_times(s.trigger, now, 1)
                log(f"  {s.name}: next {nxt[0].isoformat(timespec='minutes') if nxt else '—'} ({s.cron}, {s.timezone})")
        while not stop.wait(1.0):
            pass
        sched.shutdown(wait=True)
        log("stopped")
        return 0
    finally:
        if sched.running:
            sched.shutdown(wait=False)
        for s, h in old.items():
            signal.signal(s, h)
