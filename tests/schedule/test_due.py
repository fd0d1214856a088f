"""What is due and when (injected ``now``, fire times worked out from the calendar by hand):
idempotence, catch-up, the run record's bookkeeping, failures — on SQLite and PostgreSQL.  The
notebook is not executed here (a fake executor); tests/schedule/test_runs.py runs the real one."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from schedule_helpers import FakeExecutor, at

from workbench.schedule.runner import due_times, run_due, run_schedule
from workbench.schedule.spec import load_schedules
from workbench.schedule.store import RunStore


def _schedules(tmp_path, nb, extra: str = "", name: str = "monthly", cron: str = "0 6 2 * *"):
    f = tmp_path / f"{name}.yaml"
    f.write_text(f"schedules:\n  - name: {name}\n    notebook: {nb}\n    cron: '{cron}'\n"
                 f"    output: {tmp_path / 'out'}/${{name}}\n"
                 f"    parameters:\n      period: ${{month-1}}\n{extra}", encoding="utf-8")
    return load_schedules(f)


@pytest.fixture
def store(db_url):
    s = RunStore(db_url)
    yield s
    s.dispose()


def test_a_new_schedule_runs_its_latest_fire_time_once(store, tiny_notebook, tmp_path):
    """No run yet: only the latest fire time at or before now (2 April 06:00 for 10 April) is due —
    not every month since the epoch; run-due twice at the same now runs it once."""
    (s,) = _schedules(tmp_path, tiny_notebook)
    assert due_times(s, store, at(2026, 4, 10, 12)) == [at(2026, 4, 2, 6)]
    ex = FakeExecutor()
    done = run_due([s], store, now=at(2026, 4, 10, 12), execute=ex)
    assert [(o.status, o.kind) for o in done] == [("succeeded", "first")]
    assert [c["period"] for c in ex.calls] == ["2026-03"]
    assert run_due([s], store, now=at(2026, 4, 10, 12), execute=ex) == []
    assert run_due([s], store, now=at(2026, 5, 2, 5, 59), execute=ex) == []       # a minute before the next
    assert len(ex.calls) == 1
    rec = store.get(done[0].id)
    assert rec["slot"] == "monthly@2026-04-01T22:00:00+00:00" and rec["scheduled_for"] == "2026-04-01T22:00:00+00:00"
    assert rec["parameters"] == {"period": "2026-03", "output_dir": rec["output_dir"]}
    assert rec["output_dir"].endswith("out/monthly/run-00001")
    assert [o["path"] for o in rec["outputs"]] == ["figures.csv"] and len(rec["outputs"][0]["sha256"]) == 64
    assert rec["trigger"] == "run-due" and "@" in rec["triggered_by"]


def test_missed_fire_times_are_caught_up_once_each(store, tiny_notebook, tmp_path):
    """Last run for 2 January; the machine was off until 10 April: the fire times of 2 February,
    2 March and 2 April run, oldest first, each with its own period (January, February, March)."""
    (s,) = _schedules(tmp_path, tiny_notebook)
    ex = FakeExecutor()
    run_due([s], store, now=at(2026, 1, 2, 7), execute=ex)
    assert [c["period"] for c in ex.calls] == ["2025-12"]
    done = run_due([s], store, now=at(2026, 4, 10), execute=ex)
    assert [o.scheduled_for for o in done] == [at(2026, 2, 2, 6), at(2026, 3, 2, 6), at(2026, 4, 2, 6)]
    assert [c["period"] for c in ex.calls] == ["2025-12", "2026-01", "2026-02", "2026-03"]
    assert run_due([s], store, now=at(2026, 4, 10), execute=ex) == []
    assert len(store.history("monthly")) == 4


def test_catch_up_is_bounded_and_start_is_respected(store, tiny_notebook, tmp_path):
    (s,) = _schedules(tmp_path, tiny_notebook, "    max_catch_up: 2\n    start: 2026-01-01\n")
    # from start (1 January): 2 January … 2 June are 6 fire times; only the latest 2 run
    assert due_times(s, store, at(2026, 6, 10)) == [at(2026, 5, 2, 6), at(2026, 6, 2, 6)]
    (s2,) = _schedules(tmp_path, tiny_notebook, "    start: 2026-03-01\n", name="from-march")
    assert due_times(s2, store, at(2026, 6, 10)) == [at(2026, 3, 2, 6), at(2026, 4, 2, 6), at(2026, 5, 2, 6),
                                                     at(2026, 6, 2, 6)]
    (s3,) = _schedules(tmp_path, tiny_notebook, "    enabled: false\n", name="paused")
    assert due_times(s3, store, at(2026, 6, 10)) == []


def test_a_fire_time_runs_once_whoever_takes_it(store, tiny_notebook, tmp_path):
    """Two schedulers at once (a cron run-due and a serve): the slot is a unique column — the one
    that comes second gets nothing and executes nothing."""
    (s,) = _schedules(tmp_path, tiny_notebook)
    ex = FakeExecutor()
    first = run_schedule(s, store, at(2026, 4, 2, 6), trigger="serve", slot=True, execute=ex)
    second = run_schedule(s, store, at(2026, 4, 2, 6), trigger="run-due", slot=True, execute=ex)
    assert first is not None and second is None and len(ex.calls) == 1
    # a manual run of the same period is not a slot: it runs, as a re-run of the first
    again = run_schedule(s, store, at(2026, 4, 2, 6), trigger="manual", execute=ex)
    assert (again.kind, again.previous_run_id, again.change) == ("rerun", first.id, "no change")
    assert store.get(again.id)["slot"] is None


def test_a_failed_run_is_recorded_and_the_others_go_on(store, tiny_notebook, tmp_path):
    (s,) = _schedules(tmp_path, tiny_notebook)
    (w,) = _schedules(tmp_path, tiny_notebook, name="weekly", cron="0 6 * * 1")
    ex = FakeExecutor(fail_schedules={"monthly"})
    done = run_due([s, w], store, now=at(2026, 4, 10, 12), execute=ex)
    by = {o.schedule: o for o in done}
    assert by["monthly"].status == "failed" and by["weekly"].status == "succeeded"
    rec = store.get(by["monthly"].id)
    assert rec["error"] == "RuntimeError: planned failure for 2026-03"
    assert rec["status"] == "failed" and rec["finished_at"] and rec["duration_s"] >= 0
    # not retried by the scheduler: the slot is taken
    assert run_due([s, w], store, now=at(2026, 4, 10, 12), execute=ex) == []


def test_a_run_whose_process_died_is_marked_interrupted(store, tiny_notebook, tmp_path):
    import socket
    import subprocess
    import sys

    (_s,) = _schedules(tmp_path, tiny_notebook)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    rid = store.start(schedule="monthly", notebook="x.ipynb", parameters={}, params_key="k",
                      scheduled_for="2026-04-01T22:00:00+00:00", slot="monthly@2026-04-01T22:00:00+00:00",
                      kind="first", trigger="run-due", host=socket.gethostname(), pid=int(dead.stdout))
    live = store.start(schedule="monthly", notebook="x.ipynb", parameters={}, params_key="k",
                       scheduled_for="2026-05-01T22:00:00+00:00", kind="first", trigger="manual", pid=os.getpid())
    assert store.mark_interrupted() == [rid]
    assert store.get(rid)["status"] == "failed" and "interrupted" in store.get(rid)["error"]
    assert store.get(live)["status"] == "running"


def test_run_due_from_the_command_line(tiny_notebook, tmp_path):
    """The CLI with --now: one run, then nothing due; list shows the next fire times."""
    from click.testing import CliRunner

    from workbench.cli.main import main

    (_s,) = _schedules(tmp_path, tiny_notebook)
    f = tmp_path / "monthly.yaml"
    db = tmp_path / "runs.db"
    r = CliRunner().invoke(main, ["schedule", "run-due", "--schedules", str(f), "--db", str(db), "--now",
                                  "2026-04-10T12:00"])
    assert r.exit_code == 0, r.output
    assert "run 1 monthly @ 2026-04-02T06:00+08:00: succeeded (first)" in r.output
    r = CliRunner().invoke(main, ["schedule", "run-due", "--schedules", str(f), "--db", str(db), "--now",
                                  "2026-04-10T12:00+08:00"])
    assert r.exit_code == 0 and r.output.strip() == "nothing due", r.output
    r = CliRunner().invoke(main, ["schedule", "list", "--schedules", str(f), "--db", str(db), "--now",
                                  "2026-04-10T12:00", "--count", "2"])
    assert r.exit_code == 0, r.output
    assert "next: 2026-05-02T06:00+08:00, 2026-06-02T06:00+08:00" in r.output
    assert "last run: 1 succeeded (first) for 2026-04-02T06:00+08:00" in r.output
    r = CliRunner().invoke(main, ["schedule", "history", "--db", str(db), "--name", "monthly"])
    assert r.exit_code == 0 and "2026-03" in r.output and "first" in r.output, r.output
    r = CliRunner().invoke(main, ["schedule", "history", "--db", str(tmp_path / "none.db")])
    assert r.exit_code == 2 and "none.db" in r.output, r.output
    r = CliRunner().invoke(main, ["schedule", "diff", "1", "7", "--db", str(db)])
    assert r.exit_code == 2 and "run 7" in r.output, r.output


def test_unreadable_inputs_and_a_failing_notebook_are_failed_runs(tiny_notebook, tmp_path):
    """Inputs that cannot be read (no such lake): recorded failed, the notebook not started.  A
    notebook that raises (papermill, for real): recorded failed with the notebook's error."""
    store = RunStore(f"sqlite:///{tmp_path / 'runs.db'}")
    (s,) = _schedules(tmp_path, tiny_notebook, f"    inputs: {{lake: {tmp_path / 'nowhere'}, enterprise: e1}}\n",
                      name="no-lake")
    ex = FakeExecutor()
    (o,) = run_due([s], store, now=at(2026, 4, 10), execute=ex)
    assert o.status == "failed" and ex.calls == []
    assert store.get(o.id)["error"] == f"inputs: lake {tmp_path / 'nowhere'}: no such folder"
    (f,) = _schedules(tmp_path, tiny_notebook, "      fail: true\n", name="fails")
    o = run_schedule(f, store, at(2026, 4, 2, 6), trigger="manual")
    rec = store.get(o.id)
    assert rec["status"] == "failed" and rec["error"].startswith("RuntimeError: planned failure"), rec["error"]
    assert "tiny.ipynb" in {x["path"] for x in rec["outputs"]}        # the executed notebook, kept for reading
    store.dispose()


def test_run_by_hand_takes_the_period_of_the_fire_time_before(tiny_notebook, tmp_path):
    """``schedule run NAME --at 2026-04-10`` stands for the fire time of 2 April 06:00 (period March),
    as the scheduled run of that period does; it is a manual run, not a slot."""
    from click.testing import CliRunner

    from workbench.cli.main import main

    _schedules(tmp_path, tiny_notebook)
    db = tmp_path / "runs.db"
    r = CliRunner().invoke(main, ["schedule", "run", "monthly", "--schedules", str(tmp_path / "monthly.yaml"),
                                  "--db", str(db), "--at", "2026-04-10T12:00"])
    assert r.exit_code == 0, r.output
    store = RunStore(str(db))
    (rec,) = store.history()
    assert (rec["scheduled_for"], rec["parameters"]["period"], rec["trigger"], rec["slot"]) == (
        "2026-04-01T22:00:00+00:00", "2026-03", "manual", None)
    assert (Path(rec["output_dir"]) / "figures.csv").read_text(encoding="utf-8") == "period,value\n2026-03,1\n"
    store.dispose()
