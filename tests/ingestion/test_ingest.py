"""The whole write path on the demo: raw → mapping → preparation → curated, quality on ingest,
idempotency, conflicts, retrieval, and the lake/import/quality commands."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from connectors import ConnectorResult, parquet
from workbench.cli.main import main
from workbench.core.meters import read_meters
from workbench.demo.load import load_demo
from workbench.ingestion import ingest
from workbench.ingestion.mapping import Mapping
from workbench.lake.store import Lake


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
    rep = ingest(lake, again, sender="test")
    assert rep.status == "duplicate_upload"
    # the same readings in other bytes (a CSV export of March): all duplicates, nothing written
    march = pd.read_parquet(demo_data / "readings.parquet")
    march = march[(march["ts"] >= "2025-03-01") & (march["ts"] < "2025-03-08") & (march["meter_id"] == "M0002")]
    res = ConnectorResult(march.assign(quantity="interval", unit="kWh"), {"source": "re-export"}, kind="readings",
                          raw=march.to_csv(index=False).encode(), raw_name="march.csv")
    rep = ingest(lake, res, sender="test")
    assert rep.rows_curated == 0 and rep.rows_duplicate == len(march)
    pd.testing.assert_frame_equal(lake.sql("SELECT count(*) AS n, sum(value) AS s FROM readings"), before)


def test_a_revised_value_is_quarantined_not_overwritten(demo_data, demo_lake):
    lake, _ = demo_lake
    r = pd.read_parquet(demo_data / "readings.parquet")
    one = r[(r["meter_id"] == "M0003") & (r["ts"] == pd.Timestamp("2025-05-05 10:00"))].head(1)
    revised = one.assign(value=one["value"] + 1.0, quantity="interval", unit="kWh")
    rep = ingest(lake, ConnectorResult(revised, {"source": "revision"}, kind="readings"), sender="test")
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
    rep = ingest(lake, ConnectorResult(data, {"source": "scada"}, kind="readings"), sender="t", mapping=mapping)
    assert rep.rows_curated == 2 and rep.rows_quarantined == 1
    assert set(lake.sql("SELECT meter_id FROM readings")["meter_id"]) == {"M0002", "M0003"}
    q = lake.sql("SELECT row, reason, payload FROM quarantine")
    assert q["row"].tolist() == [4] and "EM-9999" in q["reason"][0] and "EM-9999" in q["payload"][0]


def test_lake_cli_sql_compact_batches(tmp_path, demo_data):
    root = str(tmp_path / "lake")
    runner = CliRunner()
    r = runner.invoke(main, ["import", str(demo_data / "activity.csv"), "--kind", "manual", "--lake", root,
                             "--sender", "user:li", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["stored"] == 73
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

    ingest(lake, batch("2026-03-01 00:00", [100.0, 101.0, 103.0]), sender="t")
    ingest(lake, batch("2026-03-11 00:00", [250.0, 252.5]), sender="t")          # ten days later
    c = lake.sql("SELECT ts, value, quality_flag FROM consumption ORDER BY ts")
    # intervals: 101-100, 103-101, then the gap from 03-01 00:30 to 03-11 00:00 (250-103), 252.5-250
    assert c["value"].tolist() == pytest.approx([1.0, 2.0, 147.0, 2.5])
    assert c["quality_flag"].iloc[2] == "gap_spanning"


# ------------------------------------------------------------------------------ watermarks
def _register_lake(tmp_path, meters=("C1", "C2")):
    lake = Lake(tmp_path / "lake")
    lake.register_meters(pd.DataFrame({"meter_id": list(meters), "node_id": "F01", "unit": "kWh",
                                       "item": "grid", "register": "cumulative"}))
    return lake


def _batch(rows, name):
    """rows: (meter, local time, register kWh)."""
    df = pd.DataFrame(rows, columns=["meter_id", "ts", "value"])
    df["ts"] = pd.to_datetime(df["ts"]).dt.tz_localize("Asia/Shanghai")
    df["unit"] = "kWh"
    return ConnectorResult(df, {"source": "stream"}, kind="readings", raw=df.to_csv().encode(), raw_name=name)


def test_watermarks_follow_each_write(tmp_path):
    lake = _register_lake(tmp_path)
    ingest(lake, _batch([("C1", "2026-03-01 00:00", 100.0), ("C1", "2026-03-01 00:15", 101.0),
                        ("C2", "2026-03-01 00:00", 7.0)], "a.csv"), sender="t")
    b = lake.batches()
    assert (pd.to_datetime(b["finished_at"]) >= pd.to_datetime(b["stored_at"])).all()   # curated after raw
    w = lake.watermarks("readings").set_index("meter_id")
    assert w.loc["C1", "ts"] == pd.Timestamp("2026-03-01 00:15") and w.loc["C1", "value"] == 101.0
    assert w.loc["C2", "ts"] == pd.Timestamp("2026-03-01 00:00") and w.loc["C2", "value"] == 7.0
    c = lake.watermarks("consumption").set_index("meter_id")
    assert list(c.index) == ["C1"] and c.loc["C1", "ts"] == pd.Timestamp("2026-03-01 00:00")
    # an older batch never moves a watermark back
    ingest(lake, _batch([("C2", "2026-02-28 23:45", 6.0)], "b.csv"), sender="t")
    assert lake.watermarks("readings", ["C2"])["ts"].tolist() == [pd.Timestamp("2026-03-01 00:00")]
    with pytest.raises(ValueError):
        lake.watermarks("activity")


def test_a_stream_of_new_batches_reads_no_files(tmp_path, monkeypatch):
    """Batches later than every watermark are stored without one DuckDB look-up, and the register
    still continues across them (hand-computed consumption)."""
    lake = _register_lake(tmp_path)
    ingest(lake, _batch([("C1", "2026-03-01 00:00", 100.0), ("C1", "2026-03-01 00:15", 101.0)], "1.csv"), sender="t")

    def no_reads(*a, **k):
        raise AssertionError("the lake's files were read for a batch of new readings")

    monkeypatch.setattr(Lake, "connect", no_reads)
    for k, (t, v) in enumerate([("2026-03-01 00:30", 103.0), ("2026-03-01 00:45", 103.5)]):
        rep = ingest(lake, _batch([("C1", t, v)], f"s{k}.csv"), sender="t")
        assert rep.status == "stored" and rep.rows_curated == 1
    monkeypatch.undo()
    c = lake.sql("SELECT ts, value FROM consumption ORDER BY ts")
    assert c["value"].tolist() == pytest.approx([1.0, 2.0, 0.5])


def test_each_meter_continues_from_its_own_last_reading(tmp_path):
    """A batch mixing a late meter with a current one: each meter's register continues from its
    own latest stored reading, not from the batch's earliest time."""
    lake = _register_lake(tmp_path)
    ingest(lake, _batch([("C1", "2026-03-01 00:00", 100.0), ("C1", "2026-03-01 00:15", 101.0),
                        ("C1", "2026-03-01 00:30", 102.0)], "1.csv"), sender="t")
    rep = ingest(lake, _batch([("C2", "2026-02-28 08:00", 50.0), ("C1", "2026-03-01 00:45", 104.0)], "2.csv"),
                      sender="t")
    assert rep.rows_quarantined == 0
    c = lake.sql("SELECT meter_id, ts, value FROM consumption WHERE meter_id = 'C1' ORDER BY ts")
    assert c["value"].tolist() == pytest.approx([1.0, 1.0, 2.0])


def test_redelivery_and_revisions_at_or_before_the_watermark_are_checked_against_the_files(tmp_path):
    lake = _register_lake(tmp_path)
    first = [("C1", "2026-03-01 00:00", 100.0), ("C1", "2026-03-01 00:15", 101.0), ("C1", "2026-03-01 00:30", 102.0)]
    ingest(lake, _batch(first, "1.csv"), sender="t")
    # the same readings again in another envelope (e.g. an MQTT redelivery) plus one new one
    rep = ingest(lake, _batch(first[1:] + [("C1", "2026-03-01 00:45", 103.0)], "2.csv"), sender="t")
    assert (rep.rows_curated, rep.rows_duplicate, rep.rows_quarantined) == (1, 2, 0)
    # a revised value for a stored time is quarantined with the stored value named
    rep = ingest(lake, _batch([("C1", "2026-03-01 00:15", 101.7)], "3.csv"), sender="t")
    assert rep.rows_curated == 0 and rep.rows_quarantined >= 1
    assert lake.sql("SELECT count(*) AS n FROM readings")["n"][0] == 4
    assert lake.sql("SELECT sum(value) AS s FROM consumption")["s"][0] == pytest.approx(3.0)


def test_watermarks_are_built_once_for_a_lake_written_before_them(tmp_path):
    import sqlite3

    lake = _register_lake(tmp_path)
    ingest(lake, _batch([("C1", "2026-03-01 00:00", 100.0), ("C1", "2026-03-01 00:15", 101.0),
                        ("C2", "2026-03-01 00:00", 7.0)], "a.csv"), sender="t")
    want = {t: lake.watermarks(t).sort_values("meter_id").reset_index(drop=True) for t in ("readings", "consumption")}
    db = sqlite3.connect(lake.metadata_path)
    db.execute("DELETE FROM watermarks")
    db.execute("DELETE FROM state WHERE key = 'watermarks'")
    db.commit()
    db.close()
    old = Lake(tmp_path / "lake")                   # as if opened by the new version for the first time
    for t, w in want.items():               # when the files were committed is not in them
        got = old.watermarks(t).sort_values("meter_id").reset_index(drop=True)
        assert got["stored_at"].isna().all()
        pd.testing.assert_frame_equal(got.drop(columns="stored_at"), w.drop(columns="stored_at"))
    rep = ingest(old, _batch([("C1", "2026-03-01 00:15", 101.0), ("C1", "2026-03-01 00:30", 104.0)], "b.csv"),
                     sender="t")
    assert (rep.rows_curated, rep.rows_duplicate) == (1, 1)


def test_device_telemetry_of_other_quantities_is_kept_idempotently(tmp_path):
    """Power and voltage from a smart meter go to the telemetry table with their own units; the same
    rows again are duplicates; a revised value and a bad unit are quarantined with their reason."""
    lake = _register_lake(tmp_path)
    t0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")

    def result(rows, name, readings=()):
        tel = pd.DataFrame(rows, columns=["device_id", "ts", "quantity", "value", "unit"])
        tel["ts"] = t0 + pd.to_timedelta(tel["ts"], unit="s")
        tel["row"] = range(len(tel))
        data = pd.DataFrame(list(readings), columns=["meter_id", "ts", "value", "unit"])
        return ConnectorResult(data, {"source": "mqtt", "telemetry": tel}, kind="readings",
                               raw=(name + tel.to_csv()).encode(), raw_name=name)

    rep = ingest(lake, result([("D1", 0, "power", 12.5, "kW"), ("D1", 0, "voltage", 230.1, "V"),
                              ("D1", 60, "power", 13.0, "kW"), ("D1", 60, "power", 13.0, "kW")], "1"), sender="t")
    assert (rep.rows_curated, rep.rows_duplicate, rep.rows_quarantined) == (3, 1, 0)
    got = lake.sql("SELECT device_id, ts, quantity, value, unit FROM telemetry ORDER BY quantity, ts")
    assert got["unit"].tolist() == ["kW", "kW", "V"] and got["value"].tolist() == [12.5, 13.0, 230.1]
    # stored as local time like every curated table (UTC+8)
    assert got["ts"].iloc[0] == pd.Timestamp("2026-03-01 08:00")
    rep = ingest(lake, result([("D1", 60, "power", 13.0, "kW"), ("D1", 0, "voltage", 231.0, "V"),
                              ("D1", 120, "power", 1.0, "kWx"), ("D1", 180, "power", 14.0, "kW")], "2"),
                      sender="t")
    assert (rep.rows_curated, rep.rows_duplicate, rep.rows_quarantined) == (1, 1, 2)
    q = lake.sql("SELECT reason FROM quarantine ORDER BY reason")["reason"].tolist()
    assert any("conflicts with stored value 230.1" in r for r in q) and any(r.startswith("unit:") for r in q)
    assert lake.watermarks("telemetry").set_index("quantity").loc["power", "ts"] == pd.Timestamp("2026-03-01 08:03")
    # retrieval (seed §8.3): by device, time and boundary node (the gateway records where a device sits)
    got = lake.retrieve("telemetry", meter="D1", start="2026-03-01 08:01", end="2026-03-01 08:04")
    assert sorted(got["value"]) == [13.0, 14.0]
    tel = pd.DataFrame({"device_id": ["D2"], "node_id": ["F02.P1"], "ts": [t0], "quantity": ["temperature"],
                        "value": [81.5], "unit": ["degC"]})
    lake.register_boundary(pd.DataFrame({"node_id": ["ENT", "F02", "F02.P1"], "parent_id": ["", "ENT", "F02"],
                                         "level": ["enterprise", "facility", "process"]}))
    ingest(lake, ConnectorResult(tel.iloc[:0].rename(columns={"device_id": "meter_id"})[["meter_id", "ts", "value"]],
                                {"source": "mqtt", "telemetry": tel}, kind="readings", raw=b"3"), sender="t")
    by_node = lake.retrieve("telemetry", node="F02")
    assert by_node["device_id"].tolist() == ["D2"] and by_node["value"].tolist() == [81.5]


def test_register_readings_out_of_order_are_kept_and_counted_once(tmp_path):
    """Two writers splitting one register's stream (odd / even readings, each batch committed whole,
    in either order), a redelivery, and a backfill before the first stored reading: every reading
    is stored once, the out-of-order ones flagged, and consumption sums to last − first."""
    lake = _register_lake(tmp_path)
    t0 = pd.Timestamp("2026-03-01 00:00")
    reading = {k: (str(t0 + k * pd.Timedelta("15min")), 100.0 + 1.5 * k) for k in range(-4, 21)}

    def rows(ks):
        return [("C1", *reading[k]) for k in ks]

    ingest(lake, _batch(rows(range(1, 21, 2)), "odd.csv"), sender="gw-1")          # 1, 3, …, 19
    rep = ingest(lake, _batch(rows(range(0, 21, 2)), "even.csv"), sender="gw-2")   # 0, 2, …, 20
    assert rep.rows_quarantined == 0 and rep.counts["late"] == 9 and rep.counts["early"] == 1
    rep = ingest(lake, _batch(rows([5, 6, 20]), "again.csv"), sender="gw-1")       # redelivered
    assert (rep.rows_curated, rep.rows_duplicate, rep.rows_quarantined) == (0, 3, 0)
    rep = ingest(lake, _batch(rows([-4, -3, -2, -1]), "backfill.csv"), sender="import")
    assert rep.rows_curated == 4 and rep.counts["early"] == 4
    r = lake.sql("SELECT ts, value, quality_flag FROM readings ORDER BY ts")
    assert len(r) == 25 and r["ts"].is_unique
    assert set(r.loc[r["quality_flag"].str.contains("late"), "value"]) == {100.0 + 1.5 * k for k in range(2, 19, 2)}
    c = lake.sql("SELECT ts, value FROM consumption ORDER BY ts")
    assert c["ts"].is_unique and c["value"].sum() == pytest.approx(reading[20][1] - reading[-4][1])
    assert "quarantine" not in lake.tables()


def test_a_backfill_in_naive_local_time_extends_the_register_backwards(tmp_path):
    """Naive times are local (UTC+8) on the out-of-order path too: a backfill written as naive
    strings lands before the first stored reading at the right instant, and its last interval
    closes on that stored reading (hand-computed)."""
    lake = _register_lake(tmp_path)
    ingest(lake, _batch([("C1", "2026-03-01 08:00", 200.0), ("C1", "2026-03-01 08:15", 201.0)], "1.csv"), sender="t")
    df = pd.DataFrame({"meter_id": "C1", "ts": ["2026-03-01 07:30:00", "2026-03-01 07:45:00"], "value": [197.0, 199.5],
                       "unit": "kWh"})
    rep = ingest(lake, ConnectorResult(df, {"source": "file"}, kind="readings", raw=df.to_csv().encode()), sender="t")
    assert rep.counts["early"] == 2 and rep.rows_quarantined == 0
    c = lake.sql("SELECT ts, value FROM consumption ORDER BY ts")
    assert c["ts"].dt.strftime("%H:%M").tolist() == ["07:30", "07:45", "08:00"]
    assert c["value"].tolist() == pytest.approx([2.5, 0.5, 1.0])
