"""Schedules in YAML: period templates, cron fire times (hand-computed from the calendar) and the
one-line errors naming file and key."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from schedule_helpers import at

from workbench.schedule.cron import (
    CronError,
    cron_trigger,
    fire_times,
    latest_fire_time,
    next_fire_times,
)
from workbench.schedule.periods import TemplateError, expand
from workbench.schedule.spec import ScheduleFileError, load_schedules

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ templates
@pytest.mark.parametrize("text, when, expected", [
    # 15 January 2026: the month before is December 2025, the quarter before is 2025 Q4 (Oct–Dec)
    ("${month-1}", dt.date(2026, 1, 15), "2025-12"),
    ("${month}", dt.date(2026, 1, 15), "2026-01"),
    ("${month+1}", dt.date(2026, 12, 15), "2027-01"),
    ("${month-13}", dt.date(2026, 1, 15), "2024-12"),
    ("${quarter-1}", dt.date(2026, 1, 15), "2025-Q4"),
    ("${quarter-1.start}", dt.date(2026, 1, 15), "2025-10"),
    ("${quarter-1.end}", dt.date(2026, 1, 15), "2025-12"),
    ("${quarter}", dt.date(2026, 8, 31), "2026-Q3"),
    ("${quarter.start}..${quarter.end}", dt.date(2026, 8, 31), "2026-07..2026-09"),
    ("${year-1}", dt.date(2026, 1, 15), "2025"),
    ("${year-1.start}", dt.date(2026, 1, 15), "2025-01"),
    ("${year-1.end}", dt.date(2026, 1, 15), "2025-12"),
    ("${date}", dt.date(2026, 3, 1), "2026-03-01"),
    ("${date-1}", dt.date(2026, 3, 1), "2026-02-28"),          # 2026 is not a leap year
    ("${month-1.end}", dt.date(2024, 3, 10), "2024-02-29"),    # 2024 is
    ("${month.start}", dt.date(2024, 3, 10), "2024-03-01"),
    ("output/${name}/$${x}", dt.date(2026, 1, 1), "output/demo/${x}"),
    ("plain text", dt.date(2026, 1, 1), "plain text"),
])
def test_templates(text, when, expected):
    assert expand(text, when, name="demo") == expected


def test_a_year_placeholder_is_an_int_when_asked():
    assert expand("${year-1}", dt.date(2026, 1, 15), integer=True) == 2025
    assert expand("${year-1.start}", dt.date(2026, 1, 15), integer=True) == "2025-01"
    assert expand("${year-1}", dt.date(2026, 1, 15)) == "2025"
    assert expand(7, dt.date(2026, 1, 15)) == 7
    assert expand(["${month-1}", "x"], dt.date(2026, 1, 15)) == ["2025-12", "x"]


@pytest.mark.parametrize("text", ["${month-x}", "${week}", "${date.start}", "${month", "${quarter-1.middle}"])
def test_bad_templates_are_named(text):
    with pytest.raises(TemplateError) as e:
        expand(text, dt.date(2026, 1, 1))
    assert "$" in str(e.value)


# ------------------------------------------------------------------------------------------ cron
def test_monthly_fire_times():
    """'0 6 2 * *': 06:00 on the 2nd — after 2 April 2026 08:00 come 2 May, 2 June, 2 July."""
    t = cron_trigger("0 6 2 * *")
    assert next_fire_times(t, at(2026, 4, 2, 8, 0), 3) == [at(2026, 5, 2, 6), at(2026, 6, 2, 6), at(2026, 7, 2, 6)]
    # a fire time is not "after" itself; it is the latest at or before itself
    assert next_fire_times(t, at(2026, 4, 2, 6, 0), 1) == [at(2026, 5, 2, 6)]
    assert latest_fire_time(t, at(2026, 4, 2, 6, 0)) == at(2026, 4, 2, 6)
    assert latest_fire_time(t, at(2026, 4, 2, 5, 59)) == at(2026, 3, 2, 6)
    assert fire_times(t, at(2026, 1, 2, 6), at(2026, 4, 10)) == [at(2026, 2, 2, 6), at(2026, 3, 2, 6), at(2026, 4, 2, 6)]
    assert fire_times(t, at(2026, 1, 2, 6), at(2026, 4, 10), limit=2) == [at(2026, 3, 2, 6), at(2026, 4, 2, 6)]


def test_weekday_numbers_are_crons():
    """2 April 2026 is a Thursday.  Cron's 0 and 7 are Sunday (APScheduler's own 0 is Monday)."""
    now = at(2026, 4, 2, 8, 0)
    assert next_fire_times(cron_trigger("0 6 * * 0"), now, 2) == [at(2026, 4, 5, 6), at(2026, 4, 12, 6)]
    assert next_fire_times(cron_trigger("0 6 * * 7"), now, 1) == [at(2026, 4, 5, 6)]
    assert next_fire_times(cron_trigger("0 6 * * sun"), now, 1) == [at(2026, 4, 5, 6)]
    # Monday to Friday at 07:30: Friday 3rd, then Monday 6th
    assert next_fire_times(cron_trigger("30 7 * * 1-5"), now, 2) == [at(2026, 4, 3, 7, 30), at(2026, 4, 6, 7, 30)]
    # Friday to Sunday (5-7)
    assert next_fire_times(cron_trigger("0 6 * * 5-7"), now, 3) == [at(2026, 4, 3, 6), at(2026, 4, 4, 6),
                                                                  at(2026, 4, 5, 6)]
    # every second weekday from Sunday: Sun, Tue, Thu, Sat → Sat 4th, Sun 5th, Tue 7th
    assert next_fire_times(cron_trigger("0 6 * * */2"), now, 3) == [at(2026, 4, 4, 6), at(2026, 4, 5, 6),
                                                                  at(2026, 4, 7, 6)]


def test_day_of_month_or_day_of_week_as_cron():
    """'0 6 1 * 1': the 1st of the month OR a Monday.  Latest before Thu 2 April 08:00: Wed 1 April
    (the 1st; Monday 30 March is earlier); next: Mondays 6, 13, 20 April, then Friday 1 May."""
    t = cron_trigger("0 6 1 * 1")
    assert latest_fire_time(t, at(2026, 4, 2, 8)) == at(2026, 4, 1, 6)
    assert next_fire_times(t, at(2026, 4, 2, 8), 4) == [at(2026, 4, 6, 6), at(2026, 4, 13, 6), at(2026, 4, 20, 6),
                                                       at(2026, 4, 27, 6)]
    assert next_fire_times(t, at(2026, 4, 28, 8), 1) == [at(2026, 5, 1, 6)]


def test_quarterly_in_another_timezone():
    t = cron_trigger("0 7 5 1,4,7,10 *", "UTC")
    got = next_fire_times(t, dt.datetime(2026, 4, 2, tzinfo=dt.UTC), 2)
    assert got == [dt.datetime(2026, 4, 5, 7, tzinfo=dt.UTC), dt.datetime(2026, 7, 5, 7, tzinfo=dt.UTC)]


@pytest.mark.parametrize("expr", ["0 6 2 *", "0 6 2 * * *", "0 66 2 * *", "0 6 2 * 9", "0 6 L * *", "@monthly",
                                  "0 6 * * 5-1"])
def test_bad_cron(expr):
    with pytest.raises(CronError):
        cron_trigger(expr)


# ------------------------------------------------------------------------------------------ YAML
GOOD = """\
defaults:
  timezone: Asia/Shanghai
  output: out/${{name}}
schedules:
  - name: monthly
    notebook: {nb}
    cron: "0 6 2 * *"
    parameters:
      period: ${{month-1}}
  - name: yearly
    notebook: {nb}
    cron: "0 8 15 1 *"
    timezone: UTC
    parameters:
      year: ${{year-1}}
"""


def test_a_good_file(tiny_notebook, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(GOOD.format(nb=tiny_notebook), encoding="utf-8")
    m, y = load_schedules(f)
    assert (m.name, m.timezone, m.output, y.timezone) == ("monthly", "Asia/Shanghai", "out/${name}", "UTC")
    assert m.resolve(at(2026, 4, 2, 6)) == {"period": "2026-03"}
    # the notebook's default for year is an int: ${year-1} comes as one
    assert y.resolve(dt.datetime(2026, 1, 15, 8, tzinfo=dt.UTC)) == {"year": 2025}
    assert m.output_folder(at(2026, 4, 2, 6)) == Path("out/monthly").resolve()


def test_the_shipped_demo_schedules_load(monkeypatch):
    monkeypatch.chdir(REPO)
    names = [s.name for s in load_schedules(REPO / "schedules")]
    assert "cement-monthly" in names and len(names) == len(set(names))
    s = next(s for s in load_schedules(REPO / "schedules") if s.name == "cement-quarterly")
    p = s.resolve(at(2026, 1, 5, 7))
    assert (p["period_start"], p["period_end"], p["enterprise_id"]) == ("2025-10", "2025-12", "demo-cement")
    assert p["lake"] == str((REPO / "data" / "lake").resolve())


def _one(nb, **over) -> str:
    base = {"name": "s1", "notebook": str(nb), "cron": '"0 6 2 * *"', "parameters": "{period: '${month-1}'}"}
    base.update(over)
    return "schedules:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in base.items() if v is not None) + "\n"


BAD = [
    # (file text builder, the key the message must name, a word of the message)
    (lambda nb: _one(nb, cron=None), "schedules[0].cron", "missing"),
    (lambda nb: _one(nb, cron='"0 6 2 *"'), "schedules[0].cron", "not 5"),
    (lambda nb: _one(nb, cron='"0 25 2 * *"'), "schedules[0].cron", "(23)"),
    (lambda nb: _one(nb, timezone="Mars/Olympus"), "schedules[0].timezone", "not a timezone"),
    (lambda nb: _one(nb, crn='"0 6 2 * *"'), "schedules[0].crn", "not a schedule key"),
    (lambda nb: _one(nb, parameters="{period: '${month-x}'}"), "schedules[0].parameters.period", "${month-x}"),
    (lambda nb: _one(nb, parameters="{nope: 1}"), "schedules[0].parameters.nope", "not a parameter"),
    (lambda nb: _one(nb, parameters="[1, 2]"), "schedules[0].parameters", "mapping"),
    (lambda nb: _one(nb, notebook="missing.ipynb"), "schedules[0].notebook", "no such notebook"),
    (lambda nb: _one(nb, notebook="report.txt"), "schedules[0].notebook", ".ipynb"),
    (lambda nb: _one(nb, name='"two words"'), "schedules[0].name", "letters"),
    (lambda nb: _one(nb, start="2026-02-30"), "schedules[0].start", "not a date"),
    (lambda nb: _one(nb, max_catch_up=0), "schedules[0].max_catch_up", "≥ 1"),
    (lambda nb: _one(nb, enabled="maybe"), "schedules[0].enabled", "true or false"),
    (lambda nb: _one(nb, inputs="{tables: [weather]}"), "schedules[0].inputs.tables", "weather"),
    (lambda nb: _one(nb, inputs="{lake: x, color: red}"), "schedules[0].inputs.color", "not an inputs key"),
    (lambda nb: _one(nb, output='"out/${nme}"'), "schedules[0].output", "${nme}"),
    (lambda nb: _one(nb) + f"  - name: s1\n    notebook: {nb}\n    cron: '0 6 * * *'\n", "schedules[1].name",
     "already the name"),
    (lambda nb: _one(nb) + f"  - name: s2\n    notebook: {nb}\n    cron: '0 6 * *'\n", "schedules[1].cron", "not 5"),
    (lambda nb: "schedules: [unclosed\n", "line", "not valid YAML"),
    (lambda nb: "", "empty", "empty"),
    (lambda nb: "jobs: []\n", "jobs", "not a key"),
    (lambda nb: "schedules: 3\n", "schedules", "not a list"),
    (lambda nb: "just text\n", "not a schedules file", "schedules"),
    (lambda nb: "- one\n- two\n", "schedules[0]", "not a mapping"),
    (lambda nb: "defaults: {cronn: x}\nschedules: []\n", "schedules", "not a list"),
    (lambda nb: f"defaults: {{cronn: x}}\nschedules:\n  - name: a\n    notebook: {nb}\n    cron: '* * * * *'\n",
     "defaults.cronn", "not a schedule key"),
]


@pytest.mark.parametrize("build, key, word", BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_bad_files_are_one_line_naming_file_and_key(build, key, word, tiny_notebook, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(build(tiny_notebook), encoding="utf-8")
    with pytest.raises(ScheduleFileError) as e:
        load_schedules(f)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(f)), msg
    assert key in msg and word in msg, msg


def test_names_are_unique_across_a_folder(tiny_notebook, tmp_path):
    (tmp_path / "a.yaml").write_text(_one(tiny_notebook), encoding="utf-8")
    (tmp_path / "b.yml").write_text(_one(tiny_notebook), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a schedule", encoding="utf-8")
    with pytest.raises(ScheduleFileError) as e:
        load_schedules(tmp_path)
    assert str(e.value).startswith(str(tmp_path / "b.yml")) and "schedules[0].name" in str(e.value)
    assert "a.yaml" in str(e.value)


def test_the_cli_refuses_a_bad_file_in_one_line(tiny_notebook, tmp_path):
    from workbench.cli.main import main

    f = tmp_path / "bad.yaml"
    f.write_text(_one(tiny_notebook, cron='"0 6 2 *"'), encoding="utf-8")
    for cmd in (["list"], ["run-due", "--db", str(tmp_path / "r.db")], ["serve", "--db", str(tmp_path / "r.db")]):
        r = CliRunner().invoke(main, ["schedule", *cmd, "--schedules", str(f)])
        assert r.exit_code == 2, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and "bad.yaml" in lines[0] and "schedules[0].cron" in lines[0], r.output
