"""Master data (issue 11, point 1): enterprises, boundaries, meters with validity intervals, products
and supplier accounts in one audited store, loaded from enterprise folders — the demo's, and ones a
user writes by hand (only the required fields and columns), with one clear error per bad input."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from workbench.cli.main import main
from workbench.registry import MasterData, RegistryError, import_enterprise
from workbench.registry.codes import (
    CodeError,
    check_industry_code,
    check_region,
    check_timezone,
    check_uscc,
    province_of,
    uscc_check_character,
)


@pytest.fixture
def store(tmp_path):
    s = MasterData(f"sqlite:///{tmp_path / 'registry.db'}")
    yield s
    s.dispose()


@pytest.fixture
def cement(demo_data, tmp_path):
    """The demo cement plant's folder (its enterprise.json names it demo-cement)."""
    d = tmp_path / "cement"
    shutil.copytree(demo_data, d, ignore=shutil.ignore_patterns("*.parquet", "enterprises"))
    doc = json.loads((d / "enterprise.json").read_text(encoding="utf-8"))
    doc.setdefault("enterprise_id", "demo-cement")
    (d / "enterprise.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return d


def _folder(tmp_path, name, enterprise: dict, boundary: str, meters: str | None = None, **files) -> object:
    d = tmp_path / name
    d.mkdir()
    (d / "enterprise.json").write_text(json.dumps(enterprise, ensure_ascii=False), encoding="utf-8")
    (d / "boundary.csv").write_text(boundary, encoding="utf-8")
    if meters is not None:
        (d / "meters.csv").write_text(meters, encoding="utf-8")
    for fname, text in files.items():
        (d / fname.replace("_", ".")).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return d


MINI_BOUNDARY = "node_id,parent_id,level\nE,,enterprise\nF1,E,facility\nF1.P1,F1,process\n"


# --------------------------------------------------------------------------- codes
def test_codes_follow_their_standards():
    # GB 32100's own example code, and its check character computed by hand:
    # Σ c_i·W_i over "91350100M000100Y4" = 9·1+1·3+3·9+5·27+0+1·26+0+0+21·20(M)+0+0+0+1·8+0+0+30·30(Y)+4·28
    #   = 9+3+27+135+26+420+8+900+112 = 1640; 1640 mod 31 = 28; 31 − 28 = 3
    assert uscc_check_character("91350100M000100Y4") == "3"
    assert check_uscc("91350100m000100y43") == "91350100M000100Y43"
    for bad, why in (("91350100M000100Y44", "check character"), ("91350100M000100Y4", "18 characters"),
                     ("91350100M00010OY43", "18 characters"), ("91990100M000100Y43", "no province")):
        with pytest.raises(CodeError, match=why):
            check_uscc(bad)
    assert check_region("cn-zj") == "CN-ZJ" and check_region("330522") == "330522"
    assert province_of("330522") == "CN-ZJ" and province_of("CN-SD") == "CN-SD"
    for bad in ("CN-XX", "ZJ", "990522", "33052"):
        with pytest.raises(CodeError, match="region"):
            check_region(bad)
    assert check_industry_code("c3011") == "C3011" and check_industry_code("D4411") == "D4411"
    with pytest.raises(CodeError, match="division 50 is not in section C"):
        check_industry_code("C5011")
    with pytest.raises(CodeError, match="GB/T 4754"):
        check_industry_code("C30111")
    assert check_timezone("Asia/Shanghai") == "Asia/Shanghai"
    with pytest.raises(CodeError, match="IANA"):
        check_timezone("Asia/Beijing")


# --------------------------------------------------------------------------- the demo
def test_the_demo_enterprise_imports_once_and_reads_back(store, cement):
    rep = import_enterprise(store, cement, who="test")
    ent = json.loads((cement / "enterprise.json").read_text(encoding="utf-8"))
    n_nodes = len((cement / "boundary.csv").read_text(encoding="utf-8").splitlines()) - 1
    n_meters = len((cement / "meters.csv").read_text(encoding="utf-8").splitlines()) - 1
    assert rep.enterprise == "created" and rep.enterprise_id == "demo-cement"
    assert rep.tables["boundary_nodes"]["created"] == n_nodes and rep.tables["meters"]["created"] == n_meters
    e = store.enterprise("demo-cement")
    assert (e["name_zh"], e["uscc"], e["region"], e["industry_code"]) == \
        (ent["name_zh"], ent["unified_social_credit_code"], ent["region"], ent["industry_code"])
    assert e["reporting_standard"] == "GB/T 32150"                       # other keys kept as attributes
    assert store.boundary("demo-cement").enterprise == "ENT"
    m = store.meters("demo-cement")
    assert len(m) == n_meters and set(m["register"]) <= {"interval", "cumulative"}
    # the replaced gas meter and its successor (the demo swaps them on one day): each in service
    # only in its own interval — the old one up to the day before, the new one from that day
    old = m[m["removed"].notna()].iloc[0]
    new = m[m["replaces"] == old["meter_id"]].iloc[0]
    assert new["installed"] == old["removed"]
    day_before = (pd.Timestamp(old["removed"]) - pd.Timedelta(days=1)).date().isoformat()
    in_service = {d: set(store.meters("demo-cement", at=d)["meter_id"]) for d in (day_before, old["removed"])}
    assert old["meter_id"] in in_service[day_before] and new["meter_id"] not in in_service[day_before]
    assert old["meter_id"] not in in_service[old["removed"]] and new["meter_id"] in in_service[old["removed"]]
    audit_rows = len(store.audit_log("demo-cement"))
    n_products = len(ent.get("products", []))
    assert audit_rows == 1 + n_nodes + n_meters + n_products                # one row per created record
    assert store.table("products", "demo-cement")["product"].tolist() == sorted(p["product"] for p in
                                                                               ent.get("products", []))
    again = import_enterprise(store, cement, who="test")                 # the same files: nothing changes
    assert again.enterprise == "unchanged" and again.tables["meters"] == {
        "created": 0, "updated": 0, "deleted": 0, "kept": 0, "unchanged": n_meters}
    assert len(store.audit_log("demo-cement")) == audit_rows


def test_changes_are_audited_and_missing_rows_kept_unless_pruned(store, cement):
    import_enterprise(store, cement, who="first")
    lines = (cement / "meters.csv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    gone = rows[-1].split(",")[0]
    changed = rows[0].split(",")
    changed[header.split(",").index("serial")] = "NEW-SERIAL-1"
    (cement / "meters.csv").write_text("\n".join([header, ",".join(changed), *rows[1:-1]]) + "\n", encoding="utf-8")
    rep = import_enterprise(store, cement, who="second")
    assert rep.tables["meters"]["updated"] == 1 and rep.kept == {"meters": [gone]}
    log = store.audit_log("demo-cement")
    upd = log[(log["what"] == "update") & (log["key"] == changed[0])].iloc[0]
    assert upd["who"] == "second" and upd["before"]["serial"] != "NEW-SERIAL-1" and upd["after"]["serial"] == "NEW-SERIAL-1"
    assert gone in set(store.meters("demo-cement")["meter_id"])           # kept
    rep = import_enterprise(store, cement, who="third", prune=True)
    assert rep.tables["meters"]["deleted"] == 1 and gone not in set(store.meters("demo-cement")["meter_id"])
    d = store.audit_log("demo-cement")
    assert d[(d["what"] == "delete")]["key"].tolist() == [gone]


# --------------------------------------------------------------------------- hand-written folders
def test_a_hand_written_folder_needs_only_the_required_fields(store, tmp_path):
    d = _folder(tmp_path, "mini", {"enterprise_id": "mini-plant", "name_zh": "小厂"}, MINI_BOUNDARY,
                "meter_id,node_id,unit\nG1,F1.P1,Nm3\nE1,F1,万kWh\n")
    rep = import_enterprise(store, d)
    assert rep.tables["meters"]["created"] == 2
    m = store.meters("mini-plant").set_index("meter_id")
    assert m.at["G1", "register"] == "interval" and not m.at["G1", "is_main"] and m.at["E1", "unit"] == "万kWh"
    assert store.enterprise("mini-plant")["timezone"] == "Asia/Shanghai"


def test_a_column_the_file_does_not_carry_keeps_what_the_platform_stored(store, tmp_path):
    """`devices register` writes meters' device links back; re-importing a meters.csv without a
    device_id column must keep them (nothing lost silently), while an explicit empty cell clears."""
    d = _folder(tmp_path, "mini", {"enterprise_id": "mini-plant", "name_zh": "小厂"}, MINI_BOUNDARY,
                "meter_id,node_id,unit\nG1,F1.P1,Nm3\nE1,F1,万kWh\n")
    import_enterprise(store, d)
    assert store.set_meter_devices("mini-plant", {"G1": "GW-7"}, who="devices") == ["G1"]
    rep = import_enterprise(store, d)
    assert rep.tables["meters"]["updated"] == 0 and rep.tables["meters"]["unchanged"] == 2
    assert store.meters("mini-plant").set_index("meter_id").at["G1", "device_id"] == "GW-7"
    # a unit changed in the file is still taken, the link still kept
    (d / "meters.csv").write_text("meter_id,node_id,unit\nG1,F1.P1,m3\nE1,F1,万kWh\n", encoding="utf-8")
    import_enterprise(store, d)
    g1 = store.meters("mini-plant").set_index("meter_id").loc["G1"]
    assert (g1["unit"], g1["device_id"]) == ("m3", "GW-7")
    # the column present and empty: the file says "no device"
    (d / "meters.csv").write_text("meter_id,node_id,unit,device_id\nG1,F1.P1,m3,\nE1,F1,万kWh,\n", encoding="utf-8")
    import_enterprise(store, d, who="alice")
    assert store.meters("mini-plant").set_index("meter_id").at["G1", "device_id"] in ("", None)
    last = store.audit_log("mini-plant").iloc[-1]
    assert (last["who"], last["after"]["device_id"] or "", last["before"]["device_id"]) == ("alice", "", "GW-7")


def test_gbk_files_are_read_and_the_guess_is_reported(store, tmp_path):
    boundary = "node_id,parent_id,level,name_zh\nE,,enterprise,示例纺织\nF1,E,facility,染整车间\n"
    d = _folder(tmp_path, "gbk", {"enterprise_id": "gbk-plant", "name_zh": "示例纺织"}, "")
    (d / "boundary.csv").write_bytes(boundary.encode("gbk"))
    rep = import_enterprise(store, d)
    assert rep.encodings["boundary.csv"].startswith("gb18030 (guessed")
    assert store.boundary("gbk-plant").name("F1") == "染整车间"
    with pytest.raises(RegistryError, match="not utf-8 text"):
        import_enterprise(store, d, encoding="utf-8")


@pytest.mark.parametrize("meters,where", [
    ("meter_id,node_id,unit\nM1,NOPE,kWh\n", "meters.csv, row 2, column 'node_id': 'NOPE' is not a node"),
    ("meter_id,node_id,unit\nM1,F1,kWhh\n", "meters.csv, row 2, column 'unit'"),
    ("meter_id,node_id,unit,register\nM1,F1,kWh,total\n", "row 2, column 'register'"),
    ("meter_id,node_id,unit,replaces\nM1,F1,kWh,M9\n", "row 2, column 'replaces'"),
    ("meter_id,node_id,unit,installed,removed\nM1,F1,kWh,2024-05-01,2024-01-01\n", "row 2, column 'removed'"),
    ("meter_id,node_id,unit,installed\nM1,F1,kWh,soon\n", "row 2, column 'installed'"),
    ("meter_id,node_id,unit,rollover\nM1,F1,kWh,-5\n", "row 2, column 'rollover'"),
    ("meter_id,node_id,unit,is_main\nM1,F1,kWh,maybe\n", "row 2, column 'is_main'"),
    ("meter_id,node_id,unit\nM1,F1,kWh\nM1,F1.P1,kWh\n", "row 2, column 'meter_id'"),
    ("meter_id,node_id,unit,source\nM1,F1,kWh,electricity\n", "row 2, column 'source'"),
    ("meter_id,unit\nM1,kWh\n", "meters.csv, row 1, column 'node_id': required column is missing"),
])
def test_bad_meters_name_file_row_and_column(store, tmp_path, meters, where):
    d = _folder(tmp_path, "bad", {"enterprise_id": "bad-plant", "name_en": "Bad"}, MINI_BOUNDARY, meters)
    with pytest.raises(RegistryError) as err:
        import_enterprise(store, d)
    assert where in str(err.value) and "\n" not in str(err.value)
    assert store.enterprise_ids() == []                                  # nothing stored


@pytest.mark.parametrize("doc,where", [
    ({"name_zh": "无编号"}, "column 'enterprise_id': required"),
    ({"enterprise_id": "Bad_ID", "name_zh": "x"}, "enterprise_id 'Bad_ID'"),
    ({"enterprise_id": "x-plant"}, "a name is required"),
    ({"enterprise_id": "x-plant", "name_zh": "x", "unified_social_credit_code": "91350100M000100Y44"},
     "check character"),
    ({"enterprise_id": "x-plant", "name_zh": "x", "industry_code": "C5011"}, "division 50"),
    ({"enterprise_id": "x-plant", "name_zh": "x", "region": "Zhejiang"}, "region 'Zhejiang'"),
    ({"enterprise_id": "x-plant", "name_zh": "x", "timezone": "UTC+8"}, "time zone"),
    ({"enterprise_id": "x-plant", "name_zh": "x", "identifier_prefix": "99.1"}, "identifier prefix"),
])
def test_bad_enterprise_files_are_refused(store, tmp_path, doc, where):
    d = _folder(tmp_path, "e", doc, MINI_BOUNDARY)
    with pytest.raises(RegistryError, match="enterprise.json") as err:
        import_enterprise(store, d)
    assert where in str(err.value)


def test_bad_boundaries_are_refused(store, tmp_path):
    for i, (text, why) in enumerate((("node_id,parent_id\nE,\n", "column 'level'"),
                                     ("node_id,parent_id,level\nE,,enterprise\nF1,X,facility\n", "unknown parent"),
                                     ("node_id,parent_id,level\nE,,enterprise\n,E,facility\n", "row 3, column 'node_id'"))):
        d = _folder(tmp_path, f"b{i}", {"enterprise_id": "b-plant", "name_zh": "b"}, text)
        with pytest.raises(RegistryError, match="boundary.csv") as err:
            import_enterprise(store, d)
        assert why in str(err.value)


# --------------------------------------------------------------------------- many enterprises
def test_one_enterprises_reads_never_return_anothers_rows(store, cement, tmp_path):
    import_enterprise(store, cement)
    d = _folder(tmp_path, "other", {"enterprise_id": "other-plant", "name_zh": "另一家",
                                    "products": [{"product": "yarn", "column": "yarn_t", "unit": "t"}]},
                MINI_BOUNDARY, "meter_id,node_id,unit\nM0001,F1.P1,kWh\n",
                accounts_csv="account,supplier,source,item\n3301-778899,国网浙江,purchased_electricity,grid\n")
    import_enterprise(store, d)
    assert store.enterprise_ids() == ["demo-cement", "other-plant"]
    mine = store.meters("other-plant")
    assert mine["meter_id"].tolist() == ["M0001"] and mine["node_id"].tolist() == ["F1.P1"]  # same id, own row
    assert store.meters("demo-cement").set_index("meter_id").at["M0001", "node_id"] == "ENT"
    assert store.table("products", "other-plant")["product"].tolist() == ["yarn"]
    assert store.table("accounts", "other-plant")["supplier"].tolist() == ["国网浙江"]
    assert store.table("accounts", "demo-cement").empty
    assert set(store.boundary("other-plant").nodes.index) == {"E", "F1", "F1.P1"}
    with pytest.raises(RegistryError, match="unknown enterprise 'third' .known: demo-cement, other-plant"):
        store.meters("third")


def test_cli_import_and_show(cement, tmp_path):
    db = str(tmp_path / "reg.db")
    r = CliRunner().invoke(main, ["registry", "import", str(cement), "--registry", db])
    assert r.exit_code == 0, r.output
    assert "demo-cement: enterprise created" in r.output and "meters" in r.output
    r = CliRunner().invoke(main, ["registry", "import", str(cement), "--registry", db, "--json"])
    assert json.loads(r.output)["enterprise"] == "unchanged"
    r = CliRunner().invoke(main, ["registry", "show", "--registry", db])
    assert "demo-cement" in r.output and "C3011" in r.output
    r = CliRunner().invoke(main, ["registry", "show", "--registry", db, "--enterprise", "demo-cement", "--json"])
    doc = json.loads(r.output)
    assert doc["enterprise"]["enterprise_id"] == "demo-cement" and len(doc["meters"]) > 10
    r = CliRunner().invoke(main, ["registry", "show", "--registry", db, "--enterprise", "nope"])
    assert r.exit_code == 2 and "unknown enterprise 'nope'" in r.output
    bad = _folder(tmp_path, "bad", {"enterprise_id": "bad-plant", "name_zh": "b"}, MINI_BOUNDARY,
                  "meter_id,node_id,unit\nM1,NOPE,kWh\n")
    r = CliRunner().invoke(main, ["registry", "import", str(bad), "--registry", db])
    assert r.exit_code == 2 and "row 2, column 'node_id'" in r.output
    r = CliRunner().invoke(main, ["registry", "audit", "--registry", db, "--enterprise", "demo-cement", "--limit", "2"])
    assert r.exit_code == 0 and "create meters  demo-cement/" in r.output
