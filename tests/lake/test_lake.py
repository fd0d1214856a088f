"""The lake: raw zone, curated hot/cold tiers, manifest, compaction crash safety, SQL."""
from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from connectors import ConnectorResult, activity_file
from workbench.ingestion import ingest
from workbench.inventory.quickcalc import template_path
from workbench.lake.store import Lake, LakeError


@pytest.fixture
def lake(tmp_path):
    return Lake(tmp_path / "lake")


def _activity(periods=("2025-05", "2025-06"), q=100.0):
    rows = [dict(source="purchased_electricity", item="grid", quantity=q + i, unit="MWh", period=p,
                 node_id="ENT", document=f"bill {p}") for i, p in enumerate(periods)]
    df = pd.DataFrame(rows)
    return ConnectorResult(df, {"source": "erp", "connector": "test", "origin": "unit-test"}, kind="activity",
                           raw=df.to_csv(index=False).encode(), raw_name="bills.csv")


def test_raw_zone_keeps_bytes_exactly_and_immutable(lake):
    res = activity_file.read(template_path("example"))
    rep = ingest(lake, res, sender="user:alice")
    assert rep.status == "stored" and rep.rows_curated == 8
    assert lake.read_raw(rep.batch_id) == template_path("example").read_bytes()
    mode = os.stat(rep.raw_path).st_mode
    assert not (mode & stat.S_IWUSR)  # read-only on disk
    b = lake.batches().set_index("batch_id").loc[rep.batch_id]
    assert b["sha256"] == res.metadata["sha256"] and b["sender"] == "user:alice"
    assert b["source"] == "activity-template" and b["connector"] == "activity_file"
    assert b["received_at"] and b["stored_at"]


def test_duplicate_upload_changes_nothing(lake):
    r1 = ingest(lake, _activity(), sender="a")
    before = lake.sql("SELECT * FROM activity ORDER BY record_id")
    r2 = ingest(lake, _activity(), sender="b")
    assert r2.status == "duplicate_upload" and r2.duplicate_of == r1.batch_id and r2.raw_path is None
    pd.testing.assert_frame_equal(lake.sql("SELECT * FROM activity ORDER BY record_id"), before)
    assert list(lake.batches()["status"]) == ["stored", "duplicate_upload"]


def test_bad_activity_rows_are_quarantined_with_reason(lake):
    df = pd.DataFrame([
        dict(source="combustion", item="raw_coal", quantity="12", unit="t", period="2025-06"),
        dict(source="combustion", item="unobtainium", quantity="5", unit="t", period="2025-06"),
        dict(source="combustion", item="diesel", quantity="abc", unit="t", period="2025-06"),
    ])
    rep = ingest(lake, ConnectorResult(df, {"source": "manual"}, kind="activity"), sender="u")
    assert rep.rows_curated == 1 and rep.rows_quarantined == 2
    q = lake.sql("SELECT row, reason, payload FROM quarantine ORDER BY row")
    assert q["row"].tolist() == [3, 4]
    assert "unknown item 'unobtainium'" in q["reason"][0] and "not a number" in q["reason"][1]
    assert "unobtainium" in q["payload"][0]


def test_compaction_moves_hot_to_cold_and_reads_see_both(lake):
    ingest(lake, _activity(("2025-05", "2025-06")), sender="a")
    ingest(lake, _activity(("2025-06", "2025-07"), q=500.0), sender="a")
    total = lake.sql("SELECT sum(quantity) AS s, count(*) AS n FROM activity")
    rep = lake.compact(before="2025-07-01")
    assert rep["months"] == 2 and rep["rows"] == 3
    f = lake.files("activity")
    assert set(f["tier"]) == {"hot", "cold"}
    pd.testing.assert_frame_equal(lake.sql("SELECT sum(quantity) AS s, count(*) AS n FROM activity"), total)


@pytest.mark.parametrize("crash", ["write", "commit"])
def test_crash_during_compaction_loses_and_duplicates_nothing(lake, crash):
    for k in range(3):
        ingest(lake, _activity(("2025-04", "2025-05", "2025-06"), q=100.0 * (k + 1)), sender="a")
    expected = lake.sql("SELECT record_id, quantity, batch_id FROM activity ORDER BY batch_id, record_id")
    with pytest.raises(LakeError, match="simulated crash"):
        lake.compact(before="2025-06-01", _crash_after=crash)
    after_crash = lake.sql("SELECT record_id, quantity, batch_id FROM activity ORDER BY batch_id, record_id")
    pd.testing.assert_frame_equal(after_crash, expected)
    # a new lake object (a restarted process) sees the same, and a second compaction completes
    again = Lake(lake.url)
    pd.testing.assert_frame_equal(again.sql("SELECT record_id, quantity, batch_id FROM activity ORDER BY batch_id, record_id"), expected)
    again.compact(before="2025-06-01")
    pd.testing.assert_frame_equal(again.sql("SELECT record_id, quantity, batch_id FROM activity ORDER BY batch_id, record_id"), expected)
    # no orphan or retired file is left on disk
    on_disk = {str(p) for p in (again.metadata_path.parent / "curated").rglob("*.parquet")}
    assert on_disk == set(again.files()["path"])


def test_sql_and_duckdb_views(lake):
    ingest(lake, _activity(), sender="a")
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM activity").fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM batches").fetchone()[0] == 1
    con.close()


def test_any_fsspec_url_works_as_root(tmp_path):
    lake = Lake("memory://lake-test", metadata=tmp_path / "meta.db")
    rep = ingest(lake, _activity(), sender="a")
    assert rep.rows_curated == 2
    assert lake.sql("SELECT count(*) AS n FROM activity")["n"][0] == 2
    lake.compact(before="2030-01-01")
    assert lake.sql("SELECT count(*) AS n FROM activity")["n"][0] == 2


def test_lake_catalog_reads_through_intake_with_filters(tmp_path):
    import intake

    from workbench.lake.catalog import write_lake_catalog

    lake = Lake(tmp_path / "lake")
    lake.register_boundary(pd.DataFrame({"node_id": ["ENT", "F01"], "parent_id": ["", "ENT"],
                                         "level": ["enterprise", "facility"],
                                         "identifier": ["88.1.2/ent", "88.1.2/f01"]}))
    df = pd.DataFrame([dict(source="purchased_electricity", item="grid", quantity=1.0, unit="MWh", period="2025-05", node_id="F01"),
                       dict(source="combustion", item="diesel", quantity=2.0, unit="t", period="2025-06", node_id="ENT")])
    ingest(lake, ConnectorResult(df, {"source": "erp"}, kind="activity"), sender="a")
    write_lake_catalog(tmp_path / "lake.yaml", "lake")
    cat = intake.from_yaml_file(str(tmp_path / "lake.yaml"))
    assert len(cat["activity"].read()) == 2
    assert cat["activity"].read(node="F01")["item"].tolist() == ["grid"]
    assert len(cat["activity"].read(node="ENT")) == 2  # the enterprise and everything below it
    assert cat["activity"].read(identifier="88.1.2/f01")["node_id"].tolist() == ["F01"]
    assert cat["activity"].read(start="2025-06-01")["item"].tolist() == ["diesel"]
    assert cat["activity"].read(source="erp", category="combustion")["item"].tolist() == ["diesel"]
    assert cat["activity"].read(source="nope").empty
    with pytest.raises(LakeError, match="identifier"):
        cat["activity"].read(identifier="88.9.9/none")


def test_committed_lake_catalog():
    from pathlib import Path

    import yaml

    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "catalogs" / "lake.yaml").read_text(encoding="utf-8"))
    assert {"readings", "consumption", "activity", "quarantine", "quality_results"} <= set(spec["entries"])
    assert all(e["kwargs"]["root"] == "{CATALOG_DIR}/../data/lake" for e in spec["entries"].values())


def test_killing_the_compaction_process_loses_and_duplicates_nothing(tmp_path):
    """SIGKILL a real `workbench lake compact` process at several moments; the lake stays exact."""
    import signal
    import subprocess
    import sys
    import time

    lake = Lake(tmp_path / "lake")
    for k in range(12):  # many small hot files over several months
        periods = [f"2025-{m:02d}" for m in range(1, 13)]
        ingest(lake, _activity(periods, q=1000.0 * (k + 1)), sender="a")
    expected = lake.sql("SELECT record_id, quantity, batch_id FROM activity ORDER BY batch_id, record_id")
    code = ("import sys; from workbench.lake.store import Lake; Lake(sys.argv[1]).compact(before='2030-01-01')")
    for delay in (0.05, 0.2, 0.4, 0.8, 1.2):
        p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "lake")])
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        got = Lake(tmp_path / "lake").sql("SELECT record_id, quantity, batch_id FROM activity ORDER BY batch_id, record_id")
        pd.testing.assert_frame_equal(got, expected)
    final = Lake(tmp_path / "lake")
    final.compact(before="2030-01-01")
    pd.testing.assert_frame_equal(final.sql("SELECT record_id, quantity, batch_id FROM activity ORDER BY batch_id, record_id"),
                                  expected)
    assert set(final.files("activity")["tier"]) == {"cold"}
    on_disk = {str(p) for p in (tmp_path / "lake" / "curated").rglob("*") if p.is_file()}
    assert on_disk == set(final.files()["path"])


def test_rollup_merges_a_days_small_hot_files_and_keeps_every_row(tmp_path):
    """A gateway writes a hot file per batch; rollup merges the older ones of a day into one hot
    file (readers see the same rows), leaves recent ones, and two rollups of the same files never
    both commit (no row doubled)."""
    lake = Lake(tmp_path / "lake")
    lake.register_meters(pd.DataFrame({"meter_id": ["C1"], "node_id": "F01", "unit": "kWh", "item": "grid",
                                       "register": "cumulative"}))
    for k in range(12):
        ts = pd.Timestamp("2026-03-01 00:00", tz="Asia/Shanghai") + pd.Timedelta(minutes=15 * k)
        df = pd.DataFrame({"meter_id": ["C1"], "ts": [ts], "value": [100.0 + k], "unit": "kWh"})
        ingest(lake, ConnectorResult(df, {"source": "s"}, kind="readings", raw=df.to_csv().encode()), sender="t")
    before = lake.sql("SELECT * FROM readings ORDER BY ts")
    assert len(lake.files("readings")) == 12
    assert lake.rollup(older_than_s=3600, min_files=5)["groups"] == 0       # none old enough
    taken = lake.files("readings")
    first = lake.rollup(older_than_s=0, min_files=5, grace_s=3600)            # retired files kept a while
    assert first["groups"] == 2 and first["hot_files"] == 12 + 11            # readings + consumption
    assert len(lake.files("readings")) == 1 and lake.files("readings")["tier"].tolist() == ["hot"]
    pd.testing.assert_frame_equal(lake.sql("SELECT * FROM readings ORDER BY ts"), before)
    assert lake.sql("SELECT sum(value) AS s FROM consumption")["s"][0] == pytest.approx(11.0)
    # a second merge of inputs another one already took is dropped, its file removed
    assert lake._merge("readings", taken, "hot", "2026-03-01") is False
    assert len(lake.sql("SELECT * FROM readings")) == 12
    assert lake.gc(grace_s=3600) == 0 and lake.gc() == 23                     # after the grace: deleted
    on_disk = {str(p) for p in (tmp_path / "lake" / "curated").rglob("*.parquet")}
    assert on_disk == set(lake.files()["path"])
