"""Identifiers from the master data (issue 11, point 1): `workbench idnode register --enterprise ID`
registers an enterprise's boundary nodes and meters (removed ones too) from
`workbench.registry.MasterData`, under the enterprise's prefix, idempotently;
`records_from_master_data` builds the records from plain tables (the identifiers layer does not
read the registry)."""
from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from enterprises import enterprise_folder, master_data

from workbench.cli.main import main
from workbench.core.boundary import Boundary
from workbench.identifiers.model import (
    IdentifierError,
    decode_json_value,
    meter_identifiers,
    records_from_master_data,
)
from workbench.identifiers.store import HandleStore

PREFIXES = {"ent-a": "88.100.1", "ent-b": "88.100.2"}
# ent-a's boundary lists no meters; ent-b's lists its main meter M0001 as a meter-level node (as the
# demo's boundaries do), with its identifier
BOUNDARY = ("node_id,parent_id,level,name_zh,classification,identifier\n"
            "E,,enterprise,{e} 厂,,\nF1,E,facility,熟料线,main_production,\nF1.P1,F1,process,回转窑,,\n"
            "F2,E,facility,食堂,non_production,\n")
METER_NODE = "M0001,F1.P1,meter,总表,,88.100.2/meter.M0001\n"
METERS = ("meter_id,node_id,unit,register,rollover,installed,removed,replaces,serial,item,source,identifier\n"
          "M0001,F1.P1,kWh,cumulative,99999999,2020-01-01,,,{e}-1,grid,purchased_electricity,\n"
          "M0002,F2,Nm3,interval,,2020-01-01,2024-06-30,,{e}-2,natural_gas,combustion,\n"
          "M0003,F2,Nm3,interval,,2024-06-30,,M0002,{e}-3,natural_gas,combustion,\n"
          "M0004,F1.P1,kWh,interval,,2099-01-01,,,{e}-4,grid,purchased_electricity,{p}/meter.kiln-spare\n")


def _folder(tmp_path, eid):
    doc = {"enterprise_id": eid, "name_zh": f"{eid} 厂", "identifier_prefix": PREFIXES[eid]}
    return enterprise_folder(tmp_path, doc, BOUNDARY.format(e=eid) + (METER_NODE if eid == "ent-b" else ""),
                             METERS.format(e=eid, p=PREFIXES[eid]))


@pytest.fixture
def md(tmp_path):
    """Two enterprises in one master-data database, with the same node and meter ids."""
    with master_data(tmp_path / "registry.db", [_folder(tmp_path, eid) for eid in PREFIXES]) as store:
        yield store


def _values(rec):
    return [(v.index, v.type, v.value if v.type != "DESC" else decode_json_value(v)) for v in rec.values]


# --------------------------------------------------------------------------- records


def test_records_of_boundary_nodes_and_meters(md):
    a = "88.100.1"
    recs = {str(r.identifier): r for r in records_from_master_data(md.boundary("ent-a"), md.meters("ent-a"), a)}
    # 4 boundary nodes + 4 meters (the removed M0002 and the future M0004 too)
    assert sorted(recs) == sorted([f"{a}/node.E", f"{a}/node.F1", f"{a}/node.F1.P1", f"{a}/node.F2",
                                   f"{a}/meter.M0001", f"{a}/meter.M0002", f"{a}/meter.M0003",
                                   f"{a}/meter.kiln-spare"])
    admin = {"handle": f"0.NA/{a}", "index": 200, "permissions": "011111110011"}
    assert _values(recs[f"{a}/meter.M0003"]) == [
        (1, "DESC", {"kind": "meter", "name_zh": "", "name_en": "", "meter_id": "M0003", "serial": "ent-a-3",
                     "source": "combustion", "item": "natural_gas", "unit": "Nm3", "register": "interval",
                     "installed": "2024-06-30", "replaces": "M0002", "is_main": False, "measures": "F2",
                     "replaces_identifier": f"{a}/meter.M0002", "classification_effective": "non_production",
                     "classification_zh": "非生产"}),
        (2, "REF", f"{a}/node.F2"),
        (100, "HS_ADMIN", admin)]
    m2 = decode_json_value(recs[f"{a}/meter.M0002"].get(1))
    assert (m2["removed"], m2["installed"]) == ("2024-06-30", "2020-01-01")       # its validity interval
    assert decode_json_value(recs[f"{a}/meter.M0001"].get(1))["rollover"] == 99999999.0
    # the measured nodes point down to their meters, after the boundary's own children
    assert [v.value for v in recs[f"{a}/node.F2"].by_type("REF.CHILD")] == [f"{a}/meter.M0002", f"{a}/meter.M0003"]
    assert [v.value for v in recs[f"{a}/node.F1.P1"].by_type("REF.CHILD")] == [f"{a}/meter.M0001",
                                                                               f"{a}/meter.kiln-spare"]
    assert [v.value for v in recs[f"{a}/node.E"].by_type("REF.CHILD")] == [f"{a}/node.F1", f"{a}/node.F2"]


def test_a_meter_that_is_a_boundary_node_keeps_one_record(md):
    b = "88.100.2"
    recs = records_from_master_data(md.boundary("ent-b"), md.meters("ent-b"), b)
    assert len(recs) == 5 + 3                                 # 5 nodes (M0001 one of them) + M0002..M0004
    m1 = next(r for r in recs if str(r.identifier) == f"{b}/meter.M0001")
    desc = decode_json_value(m1.get(1))
    # the node's description (its names, its level, its 分项 class inherited from F1) and the meter's columns
    assert {k: desc[k] for k in ("kind", "name_zh", "node_id", "level", "classification_effective", "meter_id",
                                 "measures", "unit", "register", "serial")} == \
        {"kind": "meter", "name_zh": "总表", "node_id": "M0001", "level": "meter",
         "classification_effective": "main_production", "meter_id": "M0001", "measures": "F1.P1", "unit": "kWh",
         "register": "cumulative", "serial": "ent-b-1"}
    assert m1.get(2).value == f"{b}/node.F1.P1"
    kiln = next(r for r in recs if str(r.identifier) == f"{b}/node.F1.P1")
    assert [v.value for v in kiln.by_type("REF.CHILD")] == [f"{b}/meter.M0001", f"{b}/meter.kiln-spare"]


def test_meter_identifiers_one_rule_and_its_errors(md):
    boundary, meters = md.boundary("ent-b"), md.meters("ent-b")
    assert {m: str(i) for m, i in meter_identifiers(boundary, meters, "88.100.2").items()} == {
        "M0001": "88.100.2/meter.M0001", "M0002": "88.100.2/meter.M0002", "M0003": "88.100.2/meter.M0003",
        "M0004": "88.100.2/meter.kiln-spare"}
    bad = meters.copy()
    bad.loc[bad["meter_id"] == "M0004", "identifier"] = "88.100.1/meter.kiln-spare"
    with pytest.raises(IdentifierError, match="'88.100.1/meter.kiln-spare' of meter 'M0004' is not under prefix"):
        meter_identifiers(boundary, bad, "88.100.2")
    bad = meters.copy()
    bad.loc[bad["meter_id"] == "M0001", "identifier"] = "88.100.2/meter.main"
    with pytest.raises(IdentifierError, match="meter 'M0001': identifier '88.100.2/meter.main' in the meters, "
                                              "'88.100.2/meter.M0001' in the boundary"):
        meter_identifiers(boundary, bad, "88.100.2")
    bad = meters.copy()
    bad.loc[bad["meter_id"] == "M0003", "identifier"] = "88.100.2/node.F2"
    with pytest.raises(IdentifierError, match="given to both node 'F2' and meter 'M0003'"):
        meter_identifiers(boundary, bad, "88.100.2")
    lost = pd.concat([meters, pd.DataFrame([{"meter_id": "M0009", "node_id": "F9", "unit": "kWh"}])])
    with pytest.raises(IdentifierError, match="meter 'M0009': measures node 'F9', which is not in the boundary"):
        records_from_master_data(boundary, lost, "88.100.2")
    # plain tables are enough: no master data needed
    b = Boundary(pd.DataFrame({"node_id": ["E", "P"], "parent_id": ["", "E"], "level": ["enterprise", "process"]}))
    recs = records_from_master_data(b, [{"meter_id": "X1", "node_id": "P", "unit": "t"}], "88.9.9")
    assert [str(r.identifier) for r in recs] == ["88.9.9/node.E", "88.9.9/node.P", "88.9.9/meter.X1"]


# --------------------------------------------------------------------------- CLI


def _register(*args):
    return CliRunner().invoke(main, ["idnode", "register", *[str(a) for a in args]])


def test_cli_registers_each_enterprise_under_its_prefix_idempotently(md, db_url):
    for eid, n_nodes, n in (("ent-a", 4, 8), ("ent-b", 5, 8)):
        r = _register("--enterprise", eid, "--registry", md.url, "--db", db_url, "--sender", "t")
        assert r.exit_code == 0, r.output
        assert r.output.strip() == f"{eid}: {n} identifiers ({n_nodes} boundary nodes, 4 meters): {n} new, " \
                                   "0 updated, 0 unchanged"
    store = HandleStore(db_url)
    assert store.list("88.100.1")[0] == 8 and store.list("88.100.2")[0] == 8
    a, b = store.get("88.100.1/meter.M0001"), store.get("88.100.2/meter.M0001")   # same meter id, two objects
    assert decode_json_value(a.get(1))["serial"] == "ent-a-1" and decode_json_value(b.get(1))["serial"] == "ent-b-1"
    n_audit = len(store.audit_rows())
    assert n_audit == 16
    r = _register("--enterprise", "ent-a", "--registry", md.url, "--db", db_url)
    assert r.exit_code == 0 and "8 identifiers (4 boundary nodes, 4 meters): 0 new, 0 updated, 8 unchanged" in r.output
    assert len(store.audit_rows()) == n_audit
    # it reads the master data: a device link written there shows in the meter's record
    md.set_meter_devices("ent-a", {"M0003": "ent-a.M0003"}, who="devices")
    r = _register("--enterprise", "ent-a", "--registry", md.url, "--db", db_url)
    assert "0 new, 1 updated, 7 unchanged" in r.output
    assert decode_json_value(store.get("88.100.1/meter.M0003").get(1))["device_id"] == "ent-a.M0003"
    store.engine.dispose()


def test_cli_bad_inputs_exit_2_with_one_line(md, tmp_path):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    r = _register("--enterprise", "nope", "--registry", md.url, "--db", db)
    assert r.exit_code == 2 and r.output == "error: unknown enterprise 'nope' (known: ent-a, ent-b)\n"
    r = _register("--enterprise", "ent-a", "--registry", tmp_path / "missing.db", "--db", db)
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "no such database" in r.output
    r = _register("--enterprise", "ent-b", "--registry", md.url, "--db", db, "--prefix", "88.100.1")
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert "'88.100.2/meter.M0001' of node 'M0001' is not under prefix '88.100.1'" in r.output
    md.put_enterprise({**md.enterprise("ent-a"), "identifier_prefix": ""}, who="editor")
    r = _register("--enterprise", "ent-a", "--registry", md.url, "--db", db)
    assert r.exit_code == 2 and "has no identifier_prefix in the master data; give --prefix" in r.output
    # a meter with no unit still has an identity: registered, without a unit
    rows = md.meters("ent-b").to_dict("records")
    rows[2]["unit"] = None
    md.sync("meters", "ent-b", rows, who="editor")
    r = _register("--enterprise", "ent-b", "--registry", md.url, "--db", db)
    assert r.exit_code == 0, r.output
    desc = decode_json_value(HandleStore(db).get("88.100.2/meter.M0003").get(1))
    assert "unit" not in desc and desc["meter_id"] == "M0003"
