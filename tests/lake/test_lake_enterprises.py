"""Many enterprises in one lake (issue 11, point 2): two enterprises with the SAME meter ids and
node ids ingested into one root; every read path — retrieve, SQL views, the catalog, the live view,
the quality rules, the CLI — returns only the enterprise's own rows, and each row says whose it is."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from connectors import ConnectorResult
from workbench.cli.main import main
from workbench.ingestion import ingest
from workbench.inventory.realtime import live_view
from workbench.lake.catalog import open_catalog, write_lake_catalog
from workbench.lake.quality import evaluate
from workbench.lake.store import Lake
from workbench.registry.codes import CodeError

BOUNDARY = pd.DataFrame([("ENT", "", "enterprise", "企业", "Co.", ""),
                         ("F01", "ENT", "facility", "一车间", "Shop 1", "main_production"),
                         ("F01.P1", "F01", "process", "工序", "Process", "")],
                        columns=["node_id", "parent_id", "level", "name_zh", "name_en", "classification"])
METERS = pd.DataFrame([("E1", "F01.P1", "purchased_electricity", "grid", "kWh", "interval", "false")],
                      columns=["meter_id", "node_id", "source", "item", "unit", "register", "is_main"])
# each enterprise's meter E1 draws its own constant load: A 10 kWh, B 1,000 kWh per 15 min
LOAD = {"ent-a": 10.0, "ent-b": 1000.0}


def _readings(value: float) -> ConnectorResult:
    ts = pd.date_range("2026-03-02 08:00", periods=8, freq="15min", tz="Asia/Shanghai")
    df = pd.DataFrame({"meter_id": "E1", "ts": ts, "value": value, "unit": "kWh"})
    return ConnectorResult(df, {"source": "ems"}, kind="readings", raw=df.to_csv().encode(), raw_name="r.csv")


@pytest.fixture
def lake(tmp_path):
    root = Lake(tmp_path / "lake")
    for eid, load in LOAD.items():
        lk = root.for_enterprise(eid)
        lk.register_boundary(BOUNDARY)
        lk.register_meters(METERS)
        assert ingest(root, _readings(load), sender="test", enterprise=eid).status == "stored"
        bad = pd.DataFrame({"meter_id": ["E1"], "ts": [pd.Timestamp("2026-03-02 10:00", tz="Asia/Shanghai")],
                            "value": [-1.0], "unit": ["kWh"]})
        ingest(root, ConnectorResult(bad, {"source": "ems"}, kind="readings", raw=f"{eid} bad".encode(),
                                    raw_name="bad.csv"), sender="test", enterprise=eid)
    return root


def test_every_read_path_sees_only_its_enterprise(lake, tmp_path):
    assert lake.enterprises() == ["ent-a", "ent-b"]
    for eid, load in LOAD.items():
        # retrieve
        r = lake.retrieve("readings", enterprise=eid)
        assert len(r) == 8 and set(r["value"]) == {load} and set(r["enterprise_id"]) == {eid}
        c = lake.retrieve("consumption", node="F01", enterprise=eid)
        assert c["value"].sum() == pytest.approx(8 * load)
        # SQL views (also the registries: batches, meters)
        s = lake.sql("SELECT count(*) AS n, sum(value) AS s, min(enterprise_id) AS e FROM readings", enterprise=eid)
        assert (s["n"][0], s["s"][0], s["e"][0]) == (8, 8 * load, eid)
        assert len(lake.sql("SELECT * FROM batches", enterprise=eid)) == 2
        q = lake.sql("SELECT reason, enterprise_id FROM quarantine", enterprise=eid)
        assert len(q) == 1 and q["enterprise_id"][0] == eid
        # the catalog of the enterprise
        cat = open_catalog(write_lake_catalog(tmp_path / f"{eid}.yaml", "lake", enterprise=eid))
        assert set(cat["readings"].read()["value"]) == {load}
        # the live view (kW over the last 30 min = 2 intervals of `load` kWh)
        v = live_view(lake.for_enterprise(eid), window="30min", now="2026-03-02 10:00").set_index("facility")
        assert v.loc["F01", "power_kw"] == pytest.approx(2 * load / 0.5)
        # the quality rules evaluate over the enterprise's own views
        con = lake.connect(enterprise=eid)
        try:
            res = evaluate(con, {"rules": [{"id": "complete", "kind": "completeness", "min": 0.5}]},
                           period=("2026-03-02 08:00", "2026-03-02 10:00"))
        finally:
            con.close()
        assert set(res.results["passed"]) == {True}
    # the root's own (unnamed) enterprise holds nothing of theirs
    assert lake.tables() == []
    assert lake.retrieve("readings").empty


def test_an_enterprise_id_must_be_well_formed(tmp_path):
    with pytest.raises(CodeError, match="enterprise_id"):
        Lake(tmp_path / "lake", enterprise="../ent-a")
    with pytest.raises(CodeError):
        Lake(tmp_path / "lake").retrieve("readings", enterprise="Ent A")


def test_cli_ingest_and_sql_take_the_enterprise(tmp_path):
    lake_root = tmp_path / "lake"
    activity = tmp_path / "activity.csv"
    runner = CliRunner()
    for eid, q in (("ent-a", 12.5), ("ent-b", 700.0)):
        activity.write_text(f"source,item,quantity,unit,period\ncombustion,natural_gas,{q},万Nm3,2026-01\n",
                            encoding="utf-8")
        r = runner.invoke(main, ["lake", "ingest", str(activity), "--kind", "activity", "--lake", str(lake_root),
                                 "--enterprise", eid])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["rows_curated"] == 1
    for eid, q in (("ent-a", 12.5), ("ent-b", 700.0)):
        r = runner.invoke(main, ["lake", "sql", "SELECT quantity, enterprise_id FROM activity", "--lake",
                                 str(lake_root), "--enterprise", eid, "--format", "json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output) == [{"quantity": q, "enterprise_id": eid}]
    r = runner.invoke(main, ["lake", "sql", "SELECT 1", "--lake", str(lake_root), "--enterprise", "Bad Id"])
    assert r.exit_code == 2 and "enterprise_id" in r.output
