"""The scheduled path end to end with the real inventory notebook (papermill) on a small lake:
run-due records a run, a correction in the lake makes a re-run of the period a restatement whose
diff names the changed figures with the right delta, an unchanged re-run is "no change".

The three notebook runs (≈10 s each) are made once for the module (``runs``)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from status_lake import build

from connectors import activity_file
from workbench.cli.main import main
from workbench.ingestion import ingest
from workbench.schedule.diff import diff_runs
from workbench.schedule.store import RunStore

REPO = Path(__file__).resolve().parents[2]

# The correction: 0.5 万Nm3 (5,000 Nm3) more natural gas burnt in F01 in March 2026.  GB/T 32150
# (fuel combustion, FC × NCV × CC × OF × 44/12) with the factors of GB/T 32151.22-2024 Table C.1
# for natural gas: NCV 389.31 GJ/万Nm3, carbon content 15.3 tC/TJ = 15.3e-3 tC/GJ, oxidation 99 %
DELTA = 0.5 * 389.31 * 15.3e-3 * 0.99 * 44 / 12          # = 10.810944045 tCO2


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scheduled")
    root = build(tmp)
    schedules = tmp / "schedules.yaml"
    schedules.write_text(f"""schedules:
  - name: ent-a-monthly
    notebook: {REPO / 'notebooks' / 'inventory.ipynb'}
    cron: "0 6 2 * *"
    output: {tmp / 'out'}/${{name}}
    parameters:
      lake: {root.base_url}
      enterprise_id: ent-a
      period_start: ${{month-1}}
      period_end: ${{month-1}}
""", encoding="utf-8")
    db = tmp / "runs.db"
    common = ["--schedules", str(schedules), "--db", str(db)]
    cli = CliRunner()
    out = {"tmp": tmp, "db": db, "common": common, "root": root}
    out["due1"] = cli.invoke(main, ["schedule", "run-due", *common, "--now", "2026-04-02T07:00"])
    out["due2"] = cli.invoke(main, ["schedule", "run-due", *common, "--now", "2026-04-02T07:00"])
    p = tmp / "ledger-correction.csv"
    p.write_text("source,item,quantity,unit,period,node_id,document\n"
                 "combustion,natural_gas,0.5,万Nm3,2026-03,F01,gas ledger correction\n", encoding="utf-8")
    out["batch"] = ingest(root.for_enterprise("ent-a"), activity_file.read(p), sender="bob").batch_id
    out["restated"] = cli.invoke(main, ["schedule", "run", "ent-a-monthly", *common, "--at", "2026-04-02T06:00"])
    out["rerun"] = cli.invoke(main, ["schedule", "run", "ent-a-monthly", *common, "--at", "2026-04-02T06:00"])
    store = RunStore(str(db))
    out["r"] = {r["id"]: r for r in store.history()}
    store.dispose()
    return out


def test_run_due_runs_the_due_period_once(runs):
    assert runs["due1"].exit_code == 0, runs["due1"].output
    assert "run 1 ent-a-monthly @ 2026-04-02T06:00+08:00: succeeded (first)" in runs["due1"].output
    assert runs["due2"].exit_code == 0 and runs["due2"].output.strip() == "nothing due"
    assert sorted(runs["r"]) == [1, 2, 3]


def test_the_run_record(runs):
    r = runs["r"][1]
    assert (r["schedule"], r["status"], r["kind"], r["trigger"]) == ("ent-a-monthly", "succeeded", "first", "run-due")
    assert r["scheduled_for"] == "2026-04-01T22:00:00+00:00"
    p = r["parameters"]
    assert (p["period_start"], p["period_end"], p["enterprise_id"]) == ("2026-03", "2026-03", "ent-a")
    assert p["output_dir"] == r["output_dir"] and Path(p["lake"]).is_absolute()
    assert r["code_version"].startswith(("git:", "workbench "))
    assert len(r["input_hash"]) == 64 and int(r["input_hash"], 16) >= 0
    nb = REPO / "notebooks" / "inventory.ipynb"
    assert r["notebook_sha256"] == hashlib.sha256(nb.read_bytes()).hexdigest()
    assert r["duration_s"] > 0 and r["finished_at"] > r["started_at"] and "@" in r["triggered_by"]
    outs = {o["path"]: o for o in r["outputs"]}
    assert {"ledger_2026-03.parquet", "inventory_2026-03.xlsx", "inventory_2026-03.html", "cube_2026-03.parquet",
            "inventory.ipynb"} <= set(outs)
    for name, o in outs.items():                         # the recorded SHA-256 is the file's
        f = Path(r["output_dir"]) / name
        assert o["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest() and o["bytes"] == f.stat().st_size
    # the inputs: the batches of March the inventory read
    names = {(b["table"], b["raw_name"]) for b in r["input_manifest"]["batches_listed"]}
    assert {("activity", "ledger.csv"), ("consumption", "march.csv"), ("invoices", "bills.pdf")} <= names
    assert ("consumption", "april.csv") not in names


def test_the_hash_changed_when_the_correction_was_ingested(runs):
    r1, r2, r3 = (runs["r"][i] for i in (1, 2, 3))
    assert r2["input_hash"] != r1["input_hash"] and r3["input_hash"] == r2["input_hash"]
    assert runs["batch"] in {b["batch_id"] for b in r2["input_manifest"]["batches_listed"]}
    assert runs["batch"] not in {b["batch_id"] for b in r1["input_manifest"]["batches_listed"]}


def test_a_correction_makes_a_restatement_with_the_changed_figures(runs):
    assert runs["restated"].exit_code == 0, runs["restated"].output
    r1, r2 = runs["r"][1], runs["r"][2]
    assert (r2["kind"], r2["previous_run_id"], r2["trigger"], r2["slot"]) == ("restatement", 1, "manual", None)
    assert r2["scheduled_for"] == r1["scheduled_for"]
    assert "compared with run 1: 3 figure(s) changed" in runs["restated"].output
    d = diff_runs(r1, r2)
    figs = {(f.group, f.key): f for f in d.figures}
    # exactly these figures changed, each by the hand-computed delta (electricity, ENT: unchanged)
    assert set(figs) == {("total", ""), ("source", "combustion"), ("facility", "F01")}
    for f in figs.values():
        assert f.delta == pytest.approx(DELTA, rel=1e-9)
    # before: 2.5 万Nm3 of gas (5 × DELTA) + the March bill's electricity, from run 1's own ledger
    led1 = pd.read_parquet(Path(r1["output_dir"]) / "ledger_2026-03.parquet")
    assert figs[("source", "combustion")].before == pytest.approx(5 * DELTA, rel=1e-9)
    assert figs[("total", "")].after == pytest.approx(led1["tco2e"].sum() + DELTA, rel=1e-9)
    ledger = next(t for t in d.tables if t.table == "ledger_2026-03.parquet")
    added = [x for x in ledger.rows if x.change == "added"]
    assert ledger.key == ["record_id"] and ledger.added == 1 and ledger.removed == 0
    assert added[0].key == "ledger-correction.csv:2" and added[0].after == pytest.approx(DELTA, rel=1e-9)
    assert [x["batch_id"] for x in d.inputs_added] == [runs["batch"]] and not d.inputs_removed
    # the readable diff beside run 2's outputs
    md = Path(r2["diff_path"]).read_text(encoding="utf-8")
    assert Path(r2["diff_path"]) == Path(r2["output_dir"]) / "restatement.md"
    assert "# Restatement 重述 — ent-a-monthly 2026-03" in md
    before = led1["tco2e"].sum()
    assert f"| total 排放总量 | {before:,.6f} | {before + DELTA:,.6f} | +{DELTA:,.6f} |" in md
    assert f"+{DELTA:,.6f}" in md and "ledger-correction.csv" in md
    html = (Path(r2["output_dir"]) / "restatement.html").read_text(encoding="utf-8")
    assert "<table>" in html and f"+{DELTA:,.6f}" in html and "Restatement 重述" in html
    # the record's change says what happened
    assert r2["change"].startswith("3 figure(s) changed")


def test_an_unchanged_rerun_is_no_change(runs):
    assert runs["rerun"].exit_code == 0, runs["rerun"].output
    r3 = runs["r"][3]
    assert (r3["kind"], r3["previous_run_id"], r3["change"]) == ("rerun", 2, "no change")
    md = (Path(r3["output_dir"]) / "rerun.md").read_text(encoding="utf-8")
    assert "**Result 结论:** no change." in md and "unchanged 未变" in md
    assert not (Path(r3["output_dir"]) / "restatement.md").exists()


def test_schedule_diff_history_and_show(runs, tmp_path):
    common = ["--db", str(runs["db"])]
    r = CliRunner().invoke(main, ["schedule", "diff", "1", "2", *common, "--html", str(tmp_path / "d.html")])
    assert r.exit_code == 0, r.output
    assert f"by source 分类: Fuel combustion 燃料燃烧排放 | {5 * DELTA:,.6f} | {6 * DELTA:,.6f} | +{DELTA:,.6f} |" \
        in r.output
    assert "by facility 设施: F01" in r.output and "ENT" not in r.output.split("## Changed rows")[0]
    assert "<table>" in (tmp_path / "d.html").read_text(encoding="utf-8")
    r = CliRunner().invoke(main, ["schedule", "history", *common])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["3", "2", "1"]
    assert "restatement (of 1)" in lines[1] and "rerun (of 2)" in lines[0] and "no change" in lines[0]
    r = CliRunner().invoke(main, ["schedule", "history", *common, "--json", "--name", "ent-a-monthly"])
    assert [json.loads(x)["kind"] for x in r.output.splitlines()] == ["rerun", "restatement", "first"]
    r = CliRunner().invoke(main, ["schedule", "show", "2", *common])
    assert r.exit_code == 0 and "ledger-correction.csv" in r.output and "restatement" in r.output, r.output
