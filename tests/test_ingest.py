"""The whole write path on the demo: raw → mapping → preparation → curated, quality on ingest,
idempotency, conflicts, retrieval, and the lake/import/quality commands."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from connectors import ConnectorResult, parquet
from workbench.cli import main
from workbench.demo_lake import load_demo
from workbench.lake import Lake
from workbench.mapping import Mapping
from workbench.readings import read_meters


@pytest.fixture(scope="module")
def demo_lake(demo_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-lake") / "lake"
    reports = load_demo(demo_data, root)
    return Lake(root), reports


def test_demo_loads_with_every_reading_accounted_for(demo_data, demo_lake):
    lake, reports = demo_lake
    r = reports["readings"]
    raw_rows = len(pd.read_parquet(demo_data / "readings.parquet"))
    assert r["rows_in"] == raw_rows
    # every incoming row is curated, counted as an identical duplicate, or quarantined — none lost
    assert r["rows_curated"] + r["rows_duplicate"] + r["rows_quarantined"] == raw_rows
    q = lake.sql("SELECT reason FROM quarantine")
    assert len(q) == r["rows_quarantined"] and q["reason"].str.contains("conflicting duplicate").all()
    assert lake.sql("SELECT count(*) AS n FROM readings")["n"][0] == r["rows_curated"]
    assert reports["activity"]["rows_curated"] == len(pd.read_csv(demo_data / "activity.csv"))


def test_quality_rules_ran_on_ingest_and_found_the_planted_anomalies(demo_data, demo_lake):
    lake, _ = demo_lake
    res = lake.sql("SELECT rule, kind, target, period, passed FROM quality_results")
    failed = res[~res["passed"].astype(bool)]
    anomalies = pd.read_csv(demo_data / "anomalies.csv")
    # each labelled meter of these kinds has a failed result naming it
    by_kind = {"spike": "spikes", "counter_reset": "counter-resets", "rollover": "rollovers",
               "stuck": "stuck", "meter_replacement": "meter-replacements"}
    for kind, rule in by_kind.items():
        meters = set(anomalies.loc[anomalies["kind"] == kind, "meter_id"])
        hit = set(failed.loc[failed["rule"] == rule, "target"])
        assert meters and meters <= hit | {t for t in hit if any(m in t for m in meters)}, (kind, meters, hit)
    gaps = set(anomalies.loc[anomalies["kind"] == "gap", "meter_id"])
    assert gaps <= set(failed.loc[failed["rule"].str.startswith("completeness"), "target"])


def test_reingesting_the_same_readings_changes_nothing(demo_data, demo_lake):
    lake, _ = demo_lake
    before = lake.sql("SELECT count(*) AS n, sum(value) AS s FROM readings")
    meters = read_meters(demo_data / "meters.csv")
    again = parquet.read(demo_data / "readings.parquet", meters=meters, source="demo-meters")
    rep = lake.ingest(again, sender="test")
    assert rep.status == "duplicate_upload"
    # the same readings in other bytes (a CSV export of March): all duplicates, nothing written
    march = pd.read_parquet(demo_data / "readings.parquet")
    march = march[(march["ts"] >= "2025-03-01") & (march["ts"] < "2025-03-08") & (march["meter_id"] == "M0002")]
    res = ConnectorResult(march.assign(quantity="interval", unit="kWh"), {"source": "re-export"}, kind="readings",
                          raw=march.to_csv(index=False).encode(), raw_name="march.csv")
    rep = lake.ingest(res, sender="test")
    assert rep.rows_curated == 0 and rep.rows_duplicate == len(march)
    pd.testing.assert_frame_equal(lake.sql("SELECT count(*) AS n, sum(value) AS s FROM readings"), before)


def test_a_revised_value_is_quarantined_not_overwritten(demo_data, demo_lake):
    lake, _ = demo_lake
    r = pd.read_parquet(demo_data / "readings.parquet")
    one = r[(r["meter_id"] == "M0003") & (r["ts"] == pd.Timestamp("2025-05-05 10:00"))].head(1)
    revised = one.assign(value=one["value"] + 1.0, quantity="interval", unit="kWh")
    rep = lake.ingest(ConnectorResult(revised, {"source": "revision"}, kind="readings"), sender="test")
    assert rep.rows_curated == 0 and rep.rows_quarantined == 1
    q = lake.sql(f"SELECT reason FROM quarantine WHERE batch_id = '{rep.batch_id}'")
    assert "conflicts with stored value" in q["reason"][0]
    stored = lake.sql("SELECT value FROM readings WHERE meter_id = 'M0003' AND ts = TIMESTAMP '2025-05-05 10:00'")
    assert stored["value"].tolist() == [pytest.approx(float(one["value"].iloc[0]))]


def test_retrieval_by_node_identifier_time_and_source(demo_data, demo_lake):
    lake, _ = demo_lake
    b = pd.read_csv(demo_data / "boundary.csv", dtype=str, keep_default_na=False)
    kiln = b[b["name_en"].str.contains("kiln", case=False) & b["level"].eq("process")].iloc[0]
    df = lake.retrieve("consumption", node=kiln["node_id"], start="2025-03-01", end="2025-04-01")
    meters = read_meters(demo_data / "meters.csv")
    assert set(df["meter_id"]) == set(meters.loc[meters["node_id"] == kiln["node_id"], "meter_id"])
    assert df["ts"].min() >= pd.Timestamp("2025-03-01") and df["ts"].max() < pd.Timestamp("2025-04-01")
    by_id = lake.retrieve("consumption", identifier=kiln["identifier"], start="2025-03-01", end="2025-04-01")
    assert len(by_id) == len(df)
    f01 = lake.retrieve("consumption", node="F01", start="2025-03-01", end="2025-03-02")
    assert set(df["meter_id"]) < set(f01["meter_id"])
    assert lake.retrieve("consumption", source="demo-meters", start="2025-03-01", end="2025-03-02").shape[0] > 0
    assert lake.retrieve("consumption", source="nobody", start="2025-03-01", end="2025-03-02").empty
    elec = lake.retrieve("activity", category="purchased_electricity")
    assert set(elec["item"]) == {"grid"} and len(elec) == 12


def test_unmapped_codes_are_quarantined_with_reason(tmp_path, demo_data):
    lake = Lake(tmp_path / "lake")
    lake.register_meters(read_meters(demo_data / "meters.csv"))
    mapping = Mapping(pd.DataFrame([
        {"source": "scada", "kind": "meter", "code": "EM-0002", "meter_id": "M0002"},
        {"source": "*", "kind": "meter", "code": "EM-0003", "meter_id": "M0003"},
    ]))
    data = pd.DataFrame({"meter_id": ["EM-0002", "EM-0003", "EM-9999"],
                         "ts": pd.to_datetime(["2025-03-01 00:00"] * 3), "quantity": "interval",
                         "value": [1.0, 2.0, 3.0], "unit": "kWh"})
    rep = lake.ingest(ConnectorResult(data, {"source": "scada"}, kind="readings"), sender="t", mapping=mapping)
    assert rep.rows_curated == 2 and rep.rows_quarantined == 1
    assert set(lake.sql("SELECT meter_id FROM readings")["meter_id"]) == {"M0002", "M0003"}
    q = lake.sql("SELECT row, reason, payload FROM quarantine")
    assert q["row"].tolist() == [4] and "EM-9999" in q["reason"][0] and "EM-9999" in q["payload"][0]


def test_lake_cli_sql_compact_batches(tmp_path, demo_data):
    root = str(tmp_path / "lake")
    runner = CliRunner()
    r = runner.invoke(main, ["import", "manual", str(demo_data / "activity.csv"), "--lake", root, "--sender", "user:li"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output[: r.output.rindex("}") + 1])["rows_curated"] == 73
    r = runner.invoke(main, ["lake", "sql", "SELECT count(*) AS n FROM activity", "--lake", root, "--format", "json"])
    assert json.loads(r.output) == [{"n": 73}]
    r = runner.invoke(main, ["lake", "compact", "--lake", root, "--before", "2030-01-01"])
    assert r.exit_code == 0 and json.loads(r.output)["rows"] == 73
    r = runner.invoke(main, ["lake", "sql", "SELECT count(*) AS n FROM activity", "--lake", root, "--format", "json"])
    assert json.loads(r.output) == [{"n": 73}]
    r = runner.invoke(main, ["lake", "batches", "--lake", root])
    assert "user:li" in r.output
    r = runner.invoke(main, ["lake", "sql", "SELEC nonsense", "--lake", root])
    assert r.exit_code == 2 and "error" in r.output.lower()


def test_lake_ingest_cli_quarantines_bad_rows(tmp_path, demo_data):
    f = tmp_path / "bills.csv"
    f.write_text("来源,品种,数量,单位,期间\n购入电力,电力,100,MWh,2025-01\n购入电力,电力,abc,MWh,2025-02\n", encoding="gbk")
    root = str(tmp_path / "lake")
    r = CliRunner().invoke(main, ["lake", "ingest", str(f), "--lake", root, "--kind", "activity", "--source", "erp"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["rows_curated"] == 1 and rep["rows_quarantined"] == 1


def test_quality_report_cli(tmp_path, demo_lake):
    lake, _ = demo_lake
    r = CliRunner().invoke(main, ["quality", "report", "--lake", lake.url, "--period", "2025-03",
                                  "--out", str(tmp_path / "q")])
    assert r.exit_code == 0, r.output
    html = next((tmp_path / "q").glob("*.html")).read_text(encoding="utf-8")
    assert "数据质量报告" in html and "data:image/png;base64," in html


def test_register_continues_across_batches_days_apart(tmp_path):
    """The previous stored reading is found when it is older than the recent partitions the ingest
    path looks at first: the first interval of a later batch spans the gap (hand-computed)."""
    from connectors import ConnectorResult

    lake = Lake(tmp_path / "lake")
    lake.register_meters(pd.DataFrame({"meter_id": ["C1"], "node_id": ["F01"], "unit": ["kWh"],
                                       "item": ["grid"], "register": ["cumulative"]}))

    def batch(start, values):
        ts = pd.date_range(start, periods=len(values), freq="15min", tz="Asia/Shanghai")
        df = pd.DataFrame({"meter_id": "C1", "ts": ts, "value": values, "unit": "kWh"})
        return ConnectorResult(df, {"source": "t"}, kind="readings", raw=df.to_csv().encode(), raw_name=f"{start}.csv")

    lake.ingest(batch("2026-03-01 00:00", [100.0, 101.0, 103.0]), sender="t")
    lake.ingest(batch("2026-03-11 00:00", [250.0, 252.5]), sender="t")          # ten days later
    c = lake.sql("SELECT ts, value, quality_flag FROM consumption ORDER BY ts")
    # intervals: 101-100, 103-101, then the gap from 03-01 00:30 to 03-11 00:00 (250-103), 252.5-250
    assert c["value"].tolist() == pytest.approx([1.0, 2.0, 147.0, 2.5])
    assert c["quality_flag"].iloc[2] == "gap_spanning"
