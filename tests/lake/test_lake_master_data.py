"""The lake takes an enterprise's meters, boundary and record from the master data (issue 11, point 1):
`Lake.register_master_data`, `workbench lake sync --enterprise ID`, `demo load`."""
from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from enterprises import enterprise_folder, master_data

from connectors import ConnectorResult
from workbench.cli.main import main
from workbench.ingestion import ingest
from workbench.lake.store import Lake, LakeError
from workbench.registry import import_enterprise

BOUNDARY = "node_id,parent_id,level,name_zh\nE,,enterprise,厂\nF1,E,facility,车间\n"
# the same meter id in two enterprises, measured in different units and kinds
METERS = {"ent-a": "meter_id,node_id,unit,register,rollover,source,item\nM1,F1,kWh,cumulative,1000,purchased_electricity,grid\n",
          "ent-b": "meter_id,node_id,unit,register,source,item\nM1,F1,Nm3,interval,combustion,natural_gas\n"}


def _folder(tmp_path, eid):
    doc = {"enterprise_id": eid, "name_zh": f"{eid} 厂", "products": [{"product": "widget", "unit": "t"}]}
    return enterprise_folder(tmp_path, doc, BOUNDARY, METERS[eid])


@pytest.fixture
def md(tmp_path):
    with master_data(tmp_path / "registry.db", [_folder(tmp_path, eid) for eid in METERS]) as store:
        yield store


def _readings(values, unit):
    ts = pd.date_range("2026-03-01", periods=len(values), freq="15min")
    data = pd.DataFrame({"meter_id": "M1", "ts": ts, "value": values, "unit": unit})
    return ConnectorResult(data, {"source": "ems"}, kind="readings", raw=data.to_csv().encode(), raw_name="r.csv")


def test_each_enterprises_lake_takes_its_own_register_from_the_master_data(md, tmp_path):
    root = tmp_path / "lake"
    for eid in METERS:
        n = Lake(root, enterprise=eid).register_master_data(md)
        assert n == {"meters": 1, "boundary_nodes": 2}
    a, b = Lake(root, enterprise="ent-a"), Lake(root, enterprise="ent-b")
    ma, mb = a.meters(normalized=True).iloc[0], b.meters(normalized=True).iloc[0]
    assert (ma["unit"], ma["register"], ma["rollover"]) == ("kWh", "cumulative", 1000.0)
    assert (mb["unit"], mb["register"]) == ("Nm3", "interval")
    assert a.enterprise_info()["products"] == [{"product": "widget", "unit": "t"}]
    assert a.enterprise_info()["enterprise_id"] == "ent-a" and set(a.boundary()["node_id"]) == {"E", "F1"}
    # the register drives preparation: ent-a's cumulative register 990 → 5 rolls over (capacity 1000)
    # to 15 kWh; ent-b's interval values are the consumption
    ingest(a, _readings([980.0, 990.0, 5.0], "kWh"), sender="t")
    ingest(b, _readings([2.0, 3.0, 4.0], "Nm3"), sender="t")
    assert a.sql("SELECT sum(value) AS v FROM consumption")["v"][0] == pytest.approx(10.0 + 15.0)
    assert b.sql("SELECT sum(value) AS v FROM consumption")["v"][0] == pytest.approx(9.0)


def test_a_change_in_the_master_data_reaches_the_lake_at_the_next_sync(md, tmp_path):
    lake = Lake(tmp_path / "lake", enterprise="ent-a")
    lake.register_master_data(md)
    d = tmp_path / "ent-a"
    (d / "meters.csv").write_text(METERS["ent-a"].replace(",1000,", ",99999,"), encoding="utf-8")
    import_enterprise(md, d, who="alice")
    assert lake.meters(normalized=True)["rollover"].iloc[0] == 1000.0      # not yet
    lake.register_master_data(md)
    assert lake.meters(normalized=True)["rollover"].iloc[0] == 99999.0


def test_the_root_lake_and_unknown_enterprises_are_refused(md, tmp_path):
    with pytest.raises(LakeError, match="needs an enterprise's lake"):
        Lake(tmp_path / "lake").register_master_data(md)
    with pytest.raises(Exception, match="unknown enterprise 'ent-z'"):
        Lake(tmp_path / "lake", enterprise="ent-z").register_master_data(md)


def test_cli_sync(md, tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    root = str(tmp_path / "lake")
    r = CliRunner().invoke(main, ["lake", "sync", "--enterprise", "ent-b", "--registry", url, "--lake", root])
    assert r.exit_code == 0, r.output
    assert "ent-b: 1 meters and 2 boundary nodes from the master data" in r.output
    assert Lake(root, enterprise="ent-b").meters()["unit"].tolist() == ["Nm3"]
    assert Lake(root, enterprise="ent-a").meters().empty                  # only the one asked for
    bad = CliRunner().invoke(main, ["lake", "sync", "--enterprise", "ent-z", "--registry", url, "--lake", root])
    assert bad.exit_code == 2 and "unknown enterprise 'ent-z'" in bad.output
    missing = CliRunner().invoke(main, ["lake", "sync", "--enterprise", "ent-a", "--registry",
                                        str(tmp_path / "nowhere.db"), "--lake", root])
    assert missing.exit_code == 2 and "no such database" in missing.output
