"""The inventory reads the lake (issue 11, point 3): filled only through the ordinary ingest paths,
with one datum per period, source and item (bill, else ledger, else meters for purchased
electricity; ledger first for fuels), the reconciliation in the report, and every ledger row naming
its lake batch and the SHA-256 of its raw file."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from connectors import ConnectorResult, activity_file
from workbench.cli.main import main
from workbench.core.factors import default_library
from workbench.core.units import convert
from workbench.demo.load import load_demo
from workbench.ingestion import ingest
from workbench.inventory.compute import compute_inventory, compute_inventory_from_lake
from workbench.lake.catalog import open_catalog
from workbench.lake.store import Lake

BOUNDARY = pd.DataFrame([("ENT", "", "enterprise", "示例厂", "Demo plant", ""),
                         ("F01", "ENT", "facility", "一车间", "Shop 1", "main_production"),
                         ("F02", "ENT", "facility", "二车间", "Shop 2", "auxiliary")],
                        columns=["node_id", "parent_id", "level", "name_zh", "name_en", "classification"])
METERS = pd.DataFrame([("E0", "ENT", "purchased_electricity", "grid", "kWh", "interval", "true"),
                       ("E1", "F01", "purchased_electricity", "grid", "kWh", "interval", "false"),
                       ("E2", "F02", "purchased_electricity", "grid", "kWh", "interval", "false")],
                      columns=["meter_id", "node_id", "source", "item", "unit", "register", "is_main"])
INFO = {"enterprise_id": "plant-x", "name_zh": "示例厂", "region": "CN-ZJ", "reporting_standard": "GB/T 32150",
        "products": [{"product": "widget", "column": "widget_t", "unit": "t"}]}


def _grid_ef_per_mwh(year=2026):
    ef = default_library().lookup("grid", "emission_factor", year=year, region="CN-ZJ")
    return float(convert(ef.value, ef.unit, "tCO2/MWh"))


def _plant(tmp_path, *, bill: float | None, ledger: float | None, with_meters: bool = True):
    """One enterprise's lake with January 2026 purchased electricity in a bill, the ledger and/or
    the meters (E1 300, E2 600 kWh per hour for 31 days; E0 the main meter, 1,000 kWh per hour),
    a natural-gas ledger record, and the month's value added and output."""
    root = Lake(tmp_path / "lake")
    lk = root.for_enterprise("plant-x")
    lk.register_boundary(BOUNDARY)
    lk.register_meters(METERS)
    lk.register_enterprise(INFO)
    if with_meters:
        ts = pd.date_range("2026-01-01", "2026-01-31 23:00", freq="h", tz="Asia/Shanghai")
        df = pd.concat([pd.DataFrame({"meter_id": m, "ts": ts, "value": v, "unit": "kWh"})
                        for m, v in (("E0", 1000.0), ("E1", 300.0), ("E2", 600.0))], ignore_index=True)
        ingest(lk, ConnectorResult(df, {"source": "ems"}, kind="readings", raw=df.to_csv().encode(),
                                  raw_name="ems.csv"), sender="t")
    rows = ["source,item,quantity,unit,period,node_id,document"]
    if ledger is not None:
        rows.append(f"purchased_electricity,grid,{ledger},MWh,2026-01,ENT,energy ledger")
    rows.append("combustion,natural_gas,2.5,万Nm3,2026-01,F01,gas ledger")
    f = tmp_path / "activity.csv"
    f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ingest(lk, activity_file.read(f), sender="t")
    if bill is not None:
        inv = pd.DataFrame([{"date": "2026-02-03", "period": "2026-01", "supplier": "国网浙江", "account_no": "3301",
                             "item": "grid", "quantity": bill, "unit": "MWh", "amount": 1.0e5, "currency": "CNY",
                             "needs_review": False}])
        ingest(lk, ConnectorResult(inv, {"source": "invoice-ocr"}, kind="invoice", raw=b"%PDF bill image",
                                  raw_name="bill.pdf"), sender="t")
    prod = tmp_path / "monthly.csv"
    prod.write_text("period,node_id,widget_t,value_added_10k_cny\n2026-01,F01,1200,\n2026-01,ENT,,500\n",
                    encoding="utf-8")
    from connectors import production

    ingest(lk, production.read(prod, products=INFO["products"]), sender="t")
    return root, f


def test_the_bill_is_the_datum_meters_allocate_and_check(tmp_path):
    root, _ = _plant(tmp_path, bill=750.0, ledger=740.0)
    inv = compute_inventory_from_lake(root, "plant-x", "2026-01", "2026-01")
    ef = _grid_ef_per_mwh()
    elec = inv.ledger[inv.ledger["source"] == "purchased_electricity"]
    assert set(elec["basis"]) == {"invoice"}
    # the 750 MWh bill is split by the sub-meters (E1 : E2 : residual = 300 : 600 : 100 kWh/h)
    by_node = elec.groupby("node_id")["quantity"].sum()
    assert by_node.to_dict() == pytest.approx({"F01": 225.0, "F02": 450.0, "ENT": 75.0})
    assert elec["tco2e"].sum() == pytest.approx(750.0 * ef, rel=1e-9)
    r = inv.meter_check.set_index(["source", "item"]).loc[("purchased_electricity", "grid")]
    # meters (main meter E0): 1,000 kWh × 744 h = 744 MWh, against the 750 MWh bill
    assert (r["basis"], r["invoice"], r["ledger"], r["meters"]) == ("invoice", 750.0, 740.0, pytest.approx(744.0))
    assert r["difference_pct"] == pytest.approx((744.0 - 750.0) / 750.0 * 100)
    assert r["min_completeness"] == pytest.approx(0.25)            # hourly readings of a 15-min meter
    # value added and output from the lake's production table
    assert inv.summary["value_added"] == 500.0
    assert inv.summary["carbon_efficiency"] == pytest.approx(inv.summary["total_tco2e"] / 500.0)
    assert inv.efficiency["output_widget_t"].tolist() == [1200.0]


def test_without_a_bill_the_ledger_then_the_meters(tmp_path):
    root, _ = _plant(tmp_path / "a", bill=None, ledger=740.0)
    inv = compute_inventory_from_lake(root, "plant-x", "2026-01", "2026-01")
    elec = inv.ledger[inv.ledger["source"] == "purchased_electricity"]
    assert set(elec["basis"]) == {"ledger"} and elec["quantity"].sum() == pytest.approx(740.0)
    root, _ = _plant(tmp_path / "b", bill=None, ledger=None)
    inv = compute_inventory_from_lake(root, "plant-x", "2026-01", "2026-01")
    elec = inv.ledger[inv.ledger["source"] == "purchased_electricity"]
    assert set(elec["basis"]) == {"meters"}
    assert elec["quantity"].sum() == pytest.approx(744.0)           # the main meter fixes the total
    assert elec.groupby("node_id")["quantity"].sum().to_dict() == pytest.approx(
        {"F01": 223.2, "F02": 446.4, "ENT": 74.4})                # 300/600 kWh/h × 744 h, residual on ENT
    assert any("activity data from the meters" in n for n in inv.notes)


def test_every_ledger_row_names_its_batch_and_raw_file(tmp_path):
    root, ledger_file = _plant(tmp_path, bill=750.0, ledger=740.0)
    inv = compute_inventory_from_lake(root, "plant-x", "2026-01", "2026-01")
    lk = root.for_enterprise("plant-x")
    batches = lk.batches().set_index("batch_id")
    gas = inv.ledger[inv.ledger["item"] == "natural_gas"].iloc[0]
    assert gas["raw_sha256"] == hashlib.sha256(ledger_file.read_bytes()).hexdigest()
    assert batches.at[gas["lake_batch"], "kind"] == "activity"
    bill_rows = inv.ledger[inv.ledger["basis"] == "invoice"]
    assert set(bill_rows["raw_sha256"]) == {hashlib.sha256(b"%PDF bill image").hexdigest()}
    assert inv.ledger["lake_batch"].notna().all() and (inv.ledger["raw_sha256"] != "").all()
    assert set(inv.ledger["enterprise_id"]) == {"plant-x"}


@pytest.fixture(scope="module")
def demo_lake(demo_data, tmp_path_factory):
    """The demo cement plant as `demo load` makes it: master data imported into a registry next to
    the lake (``registry.db``), the lake's meters, boundary and record from there, files ingested."""
    from workbench.registry import MasterData, import_enterprise

    root = tmp_path_factory.mktemp("demo-lake") / "lake"
    md = MasterData(f"sqlite:///{root.parent / 'registry.db'}")
    try:
        import_enterprise(md, demo_data, who="test")
        load_demo(demo_data, root, enterprise="demo-cement", master=md)
    finally:
        md.dispose()
    return root


def test_the_demo_from_its_lake_equals_the_demo_from_its_files(demo_data, demo_lake):
    """Two independent paths over the same data — the files through the catalog (DuckDB
    consumption, the ledger CSV) and the lake (ingested readings, activity, production) — give
    the same inventory."""
    lake_inv = compute_inventory_from_lake(Lake(demo_lake), "demo-cement", "2025-01", "2025-06")
    file_inv = compute_inventory(open_catalog(demo_data / "catalog.yaml"), "2025-01", "2025-06")
    assert lake_inv.total_tco2e == pytest.approx(file_inv.total_tco2e, rel=1e-12)
    for k, v in file_inv.summary["by_source"].items():
        assert lake_inv.summary["by_source"][k] == pytest.approx(v, rel=1e-12, abs=1e-9)
    assert lake_inv.summary["value_added"] == pytest.approx(file_inv.summary["value_added"])
    # the facilities' shares of the electricity bill come from the meters: the same, since both
    # paths share one consumption algorithm (workbench.core.registers, issue 11 point 4)
    assert lake_inv.summary["by_facility"] == pytest.approx(file_inv.summary["by_facility"], rel=1e-9)
    # the lake's register and record came from the master data: the same as the files say
    meters = pd.read_csv(demo_data / "meters.csv", dtype=str, keep_default_na=False)
    lake_meters = Lake(demo_lake, enterprise="demo-cement").meters()
    assert sorted(lake_meters["meter_id"]) == sorted(meters["meter_id"])
    assert dict(zip(lake_meters["meter_id"], lake_meters["unit"])) == dict(zip(meters["meter_id"], meters["unit"]))


def test_the_inventory_with_the_master_data_equals_the_lakes_own_record(demo_lake):
    from workbench.registry import MasterData

    md = MasterData(f"sqlite:///{demo_lake.parent / 'registry.db'}")
    try:
        with_md = compute_inventory_from_lake(Lake(demo_lake), "demo-cement", "2025-01", "2025-03", registry=md)
    finally:
        md.dispose()
    alone = compute_inventory_from_lake(Lake(demo_lake), "demo-cement", "2025-01", "2025-03")
    assert with_md.total_tco2e == pytest.approx(alone.total_tco2e, rel=1e-12)
    assert with_md.summary["by_facility"] == pytest.approx(alone.summary["by_facility"], rel=1e-12)
    assert [p.product for p in with_md.products] == [p.product for p in alone.products] != []


def test_cli_report_inventory_json_from_a_lake_filled_by_ingest_commands(demo_data, tmp_path):
    lake = str(tmp_path / "lake")
    runner = CliRunner()
    r = runner.invoke(main, ["lake", "load-demo", str(demo_data), "--lake", lake, "--enterprise", "demo-cement"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["report", "inventory", "--enterprise", "demo-cement", "--lake", lake,
                             "--period", "2025-03", "--start", "2025-01", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    for k in ("enterprise", "period_start", "period_end", "total_tco2e", "by_source", "by_facility", "value_added",
              "carbon_efficiency"):
        assert k in doc
    assert doc["enterprise"] == "demo-cement" and (doc["period_start"], doc["period_end"]) == ("2025-01", "2025-03")
    assert set(doc["by_source"]) == {"combustion", "process", "purchased_electricity", "purchased_heat",
                                     "exported_electricity", "exported_heat"}
    assert doc["by_source"]["exported_heat"] < 0
    assert doc["total_tco2e"] == pytest.approx(sum(doc["by_source"].values()))
    assert doc["carbon_efficiency"] == pytest.approx(doc["total_tco2e"] / doc["value_added"])
    r = runner.invoke(main, ["report", "inventory", "--enterprise", "nobody-here", "--lake", lake,
                             "--period", "2025-03", "--json"])
    assert r.exit_code == 2 and "no boundary" in r.output


def test_the_inventory_notebook_runs_from_the_lake(demo_lake, tmp_path):
    """The scheduled path: papermill executes notebooks/inventory.ipynb against the lake."""
    from workbench.reports.run import run_inventory_notebook

    paths = run_inventory_notebook(period_end="2025-02", period_start="2025-01", lake=demo_lake,
                                   enterprise_id="demo-cement", output_dir=tmp_path / "out", progress=False)
    html = Path(paths["html"]).read_text(encoding="utf-8")
    assert "Activity datum" in html and "浙江示例水泥有限公司" in html
    ledger = pd.read_parquet(paths["ledger"])
    assert set(ledger["enterprise_id"]) == {"demo-cement"} and (ledger["raw_sha256"].str.len() == 64).all()
