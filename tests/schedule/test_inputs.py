"""The input hash: a correction in the lake changes it, nothing else does (compaction, roll-up, a
duplicate upload, another month, another enterprise); restate re-runs exactly the corrected periods."""
from __future__ import annotations

import pandas as pd
import pytest
from schedule_helpers import FakeExecutor, at
from status_lake import METERS, _readings, _series, build

from connectors import activity_file
from workbench.ingestion import ingest
from workbench.schedule.inputs import input_manifest, months_of
from workbench.schedule.runner import restate, run_due
from workbench.schedule.spec import load_schedules
from workbench.schedule.store import RunStore

TABLES = ["activity", "consumption", "invoices", "production"]


def scope(root, month="2026-03", enterprise="ent-a"):
    return {"lake": str(root.base_url), "enterprise": enterprise, "start": month, "end": month, "tables": TABLES}


def correction(tmp_path, name="ledger-correction.csv", quantity=0.5, period="2026-03"):
    p = tmp_path / name
    p.write_text("source,item,quantity,unit,period,node_id,document\n"
                 f"combustion,natural_gas,{quantity},万Nm3,{period},F01,gas ledger correction\n", encoding="utf-8")
    return activity_file.read(p)


def test_months_of():
    assert months_of("2026-03", "2026-03") == ["2026-03"]
    assert months_of("2025-Q4", "2025-Q4") == ["2025-10", "2025-11", "2025-12"]
    assert months_of("2025", "2025")[::11] == ["2025-01", "2025-12"]
    with pytest.raises(ValueError):
        months_of("2026-13", "2026-13")


def test_a_correction_changes_the_hash_and_nothing_else_does(tmp_path):
    root = build(tmp_path)
    a = root.for_enterprise("ent-a")
    m0 = input_manifest(scope(root))
    h0, april0 = m0["sha256"], input_manifest(scope(root, "2026-04"))["sha256"]
    assert len(h0) == 64
    # what March reads: the gas ledger (1 row), the March readings' consumption, the March bill
    listed = {(b["table"], b["raw_name"]): b["rows"] for b in m0["batches_listed"]}
    assert listed[("activity", "ledger.csv")] == 1 and listed[("invoices", "bills.pdf")] == 1
    assert ("consumption", "march.csv") in listed and ("consumption", "april.csv") not in listed

    files_before = set(a.files()["path"])
    a.compact(before="2026-05-01")                        # every March and April day into the cold tier
    assert set(a.files()["path"]) != files_before
    assert input_manifest(scope(root))["sha256"] == h0, "compaction changed the hash"

    ingest(a, activity_file.read(tmp_path / "ledger.csv"), sender="bob")     # the same file a third time
    assert a.batches()["status"].iloc[-1] == "duplicate_upload"
    assert input_manifest(scope(root))["sha256"] == h0, "a duplicate upload changed the hash"

    may = _series("E0", "2026-05-01", 96, 1.0)
    ingest(a, _readings(may, "may.csv"), sender="alice")                    # another month
    ingest(a, correction(tmp_path, "april-gas.csv", 1.0, "2026-04"), sender="bob")
    assert input_manifest(scope(root))["sha256"] == h0, "another month's data changed March's hash"
    assert input_manifest(scope(root, "2026-04"))["sha256"] != april0

    b = root.for_enterprise("ent-b")
    ingest(b, correction(tmp_path, "b-gas.csv"), sender="dave")             # another enterprise's March
    assert input_manifest(scope(root))["sha256"] == h0, "another enterprise's data changed the hash"

    a.rollup(older_than_s=0, min_files=2)
    assert input_manifest(scope(root))["sha256"] == h0, "a roll-up changed the hash"

    rep = ingest(a, correction(tmp_path), sender="bob")                     # the correction of March
    m1 = input_manifest(scope(root))
    assert m1["sha256"] != h0
    new = [x for x in m1["batches_listed"] if x["batch_id"] == rep.batch_id]
    assert new == [{**new[0], "table": "activity", "rows": 1, "raw_name": "ledger-correction.csv"}]

    meters = METERS.copy()
    meters.loc[meters["meter_id"] == "E1", "is_main"] = "true"              # the meter register corrected
    a.register_meters(meters)
    assert input_manifest(scope(root))["sha256"] not in (h0, m1["sha256"])


def test_restate_reruns_exactly_the_corrected_periods(tmp_path, tiny_notebook):
    root = build(tmp_path)
    f = tmp_path / "s.yaml"
    f.write_text(f"""schedules:
  - name: monthly
    notebook: {tiny_notebook}
    cron: "0 6 2 * *"
    output: {tmp_path / 'out'}/${{name}}
    start: 2026-04-01
    parameters:
      period: ${{month-1}}
    inputs:
      lake: {root.base_url}
      enterprise: ent-a
      start: ${{month-1}}
      end: ${{month-1}}
""", encoding="utf-8")
    (s,) = load_schedules(f)
    store = RunStore(f"sqlite:///{tmp_path / 'runs.db'}")
    ex = FakeExecutor()
    first = run_due([s], store, now=at(2026, 5, 10), execute=ex)             # periods March and April
    assert [(o.kind, ex.calls[i]["period"]) for i, o in enumerate(first)] == [("first", "2026-03"),
                                                                              ("first", "2026-04")]
    assert store.get(first[0].id)["input_hash"] != store.get(first[1].id)["input_hash"]
    assert restate([s], store, execute=ex) == []                            # nothing corrected
    ingest(root.for_enterprise("ent-a"), correction(tmp_path), sender="bob")   # March corrected
    done = restate([s], store, execute=ex)
    assert [(o.kind, o.previous_run_id, o.scheduled_for) for o in done] == [("restatement", first[0].id,
                                                                             at(2026, 4, 2, 6))]
    assert ex.calls[-1]["period"] == "2026-03"
    rec = store.get(done[0].id)
    assert rec["trigger"] == "restate" and rec["slot"] is None
    note = (tmp_path / "out" / "monthly" / f"run-{done[0].id:05d}" / "restatement.md").read_text(encoding="utf-8")
    assert "ledger-correction.csv" in note and "data were corrected" in note
    assert restate([s], store, execute=ex) == []                            # restated once
    assert len(pd.DataFrame(store.history())) == 3
    store.dispose()
