"""``workbench schedule serve``: one APScheduler job per schedule, the missed fire times caught up at
start, a clean stop on SIGTERM that lets the running notebook finish and records it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from schedule_helpers import FakeExecutor, at

from workbench.schedule.service import build_scheduler, serve
from workbench.schedule.spec import load_schedules
from workbench.schedule.store import RunStore

REPO = Path(__file__).resolve().parents[2]


def _file(tmp_path, nb) -> Path:
    f = tmp_path / "s.yaml"
    f.write_text(f"""schedules:
  - name: every-minute
    notebook: {nb}
    cron: "* * * * *"
    output: {tmp_path / 'out'}/${{name}}
    parameters:
      period: ${{date}}
  - name: monthly
    notebook: {nb}
    cron: "0 6 2 * *"
    output: {tmp_path / 'out'}/${{name}}
    parameters:
      period: ${{month-1}}
  - name: paused
    notebook: {nb}
    cron: "0 6 2 * *"
    enabled: false
""", encoding="utf-8")
    return f


def test_one_job_per_enabled_schedule(tiny_notebook, tmp_path):
    store = RunStore(f"sqlite:///{tmp_path / 'runs.db'}")
    sched = build_scheduler(load_schedules(_file(tmp_path, tiny_notebook)), store)
    jobs = {j.id: j for j in sched.get_jobs()}
    assert set(jobs) == {"every-minute", "monthly"}
    # the job's trigger is the schedule's: after 2 April 2026 08:00 the monthly one fires on 2 May 06:00
    assert jobs["monthly"].trigger.get_next_fire_time(None, at(2026, 4, 2, 8)) == at(2026, 5, 2, 6)
    assert jobs["every-minute"].trigger.get_next_fire_time(None, at(2026, 4, 2, 8, 0, 30)) == at(2026, 4, 2, 8, 1)
    store.dispose()


def test_serve_catches_up_and_stops(tiny_notebook, tmp_path):
    """In a thread (no signals there): the catch-up runs each schedule's latest fire time, then a
    stop returns 0 with the scheduler shut down."""
    store = RunStore(f"sqlite:///{tmp_path / 'runs.db'}")
    ex, lines, stop = FakeExecutor(), [], threading.Event()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("code", serve(
        load_schedules(_file(tmp_path, tiny_notebook)), store, execute=ex, log=lines.append, stop=stop)))
    t.start()
    deadline = time.monotonic() + 30
    while len(store.history()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    t.join(30)
    assert not t.is_alive() and result["code"] == 0
    runs = store.history()
    assert sorted(r["schedule"] for r in runs) == ["every-minute", "monthly"]
    assert {r["trigger"] for r in runs} == {"serve"} and {r["status"] for r in runs} == {"succeeded"}
    assert lines[0].startswith("serving 2 schedule(s)") and lines[-1] == "stopped"
    store.dispose()


def test_serve_stops_cleanly_on_sigterm(tiny_notebook, tmp_path):
    """The command as systemd runs it: SIGTERM while the catch-up notebook runs — the notebook
    finishes, its run is recorded succeeded, the process exits 0."""
    f = _file(tmp_path, tiny_notebook)
    db = tmp_path / "runs.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, "-m", "workbench.cli", "schedule", "serve", "--schedules", str(f),
                          "--db", str(db)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        running = []
        while time.monotonic() < deadline and not running:
            time.sleep(0.2)
            if db.exists():
                store = RunStore(str(db))
                running = store.history()
                store.dispose()
        assert running, "serve started no run"
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, out
    assert "SIGTERM: stopping" in out and out.rstrip().endswith("stopped"), out
    store = RunStore(str(db))
    runs = store.history()
    store.dispose()
    assert runs and all(r["status"] == "succeeded" and r["trigger"] == "serve" for r in runs), runs
    assert all((Path(r["output_dir"]) / "figures.csv").exists() for r in runs)
