"""End to end on the demo cement plant, loaded into its lake through the ordinary ingest path:
product footprints from the inventory add back to it, the CLI commands (footprint, label, CBAM
export) give the package's numbers, and a label made by the CLI, approved and published, resolves
from its scanned QR code to its footprint."""
from __future__ import annotations

import json
import math

import httpx
import pytest
import zxingcpp
from click.testing import CliRunner
from openpyxl import load_workbook
from PIL import Image

from workbench.cli.main import main
from workbench.demo.load import load_demo
from workbench.identifiers import HandleRecord, LocalNode
from workbench.inventory.compute import compute_inventory_from_lake
from workbench.lake.store import Lake
from workbench.products.cbam import cbam_report
from workbench.products.footprint import product_footprints
from workbench.products.label import footprint_of_record
from workbench.products.store import LabelStore, publish

SPAN = ("2025-01", "2025-03")


@pytest.fixture(scope="module")
def demo_root(demo_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("products-lake") / "lake"
    load_demo(demo_data, root, enterprise="demo-cement")
    return root


@pytest.fixture(scope="module")
def inv(demo_root):
    return compute_inventory_from_lake(Lake(demo_root), "demo-cement", *SPAN)


@pytest.fixture(scope="module")
def res(inv):
    return product_footprints(inv)


def test_footprints_add_back_to_the_inventory(inv, res):
    c = res.check()
    assert c["ledger_tco2e"] == pytest.approx(inv.total_tco2e, rel=1e-12)
    assert c["allocated_tco2e"] == pytest.approx(inv.total_tco2e, rel=1e-12) and c["excluded_tco2e"] == 0
    assert abs(c["chain_residual_tco2e"]) < 1e-6 and c["largest_pool_residual_tco2e"] < 1e-9
    # all the clinker is ground into cement: a tonne of cement carries the plant's emissions ÷ its cement,
    # which the inventory itself reports as the enterprise's tCO2e per t of cement
    cement_t = float(inv.efficiency["output_cement_t"].sum())
    assert res["cement"].output == pytest.approx(cement_t)
    assert res["cement"].per_unit_tco2e == pytest.approx(inv.total_tco2e / cement_t, rel=1e-9)
    m = res.monthly[res.monthly["product"] == "cement"].set_index("period")["per_unit_tco2e"]
    eff = inv.efficiency.set_index("period")["enterprise_tco2e_per_t_cement"]
    assert m.to_dict() == pytest.approx(eff.to_dict(), rel=1e-9)
    # clinker: its kiln line (F01), the exported-heat credit (the kiln's waste heat) and a share of the rest
    cl, ce = res["clinker"], res["cement"]
    led = inv.ledger
    own = float(led.loc[led["facility"] == "F01", "tco2e"].sum() + led.loc[led["source"] == "exported_heat", "tco2e"].sum())
    assert own < cl.attributed_tco2e < inv.total_tco2e
    assert cl.attributed_tco2e + ce.attributed_tco2e == pytest.approx(inv.total_tco2e, rel=1e-12)
    for f in res.footprints.values():
        assert f.energy_rating.rated and f.energy_rating.grade in (1, 2, 3, None)


def test_cli_footprint_json_is_the_packages(demo_root, res, tmp_path):
    r = CliRunner().invoke(main, ["product", "footprint", "--enterprise", "demo-cement", "--period", SPAN[1],
                                  "--start", SPAN[0], "--lake", str(demo_root), "--json",
                                  "--pact", str(tmp_path / "pact.json")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    pact = {p["productNameCompany"]: p for p in json.loads((tmp_path / "pact.json").read_text(encoding="utf-8"))}
    assert float(pact["cement"]["pcf"]["pcfExcludingBiogenicUptake"]) == pytest.approx(
        res["cement"].per_unit_tco2e, abs=5e-7)                               # kgCO2e per kg = tCO2e per t
    got = {f["product"]: f for f in doc["footprints"]}
    for p, f in res.footprints.items():
        assert got[p]["kgco2e_per_unit"] == pytest.approx(f.kgco2e_per_unit, rel=1e-12)
        assert got[p]["energy_rating"]["label_en"] == f.energy_rating.label_en
    assert doc["check"]["allocation_residual_tco2e"] == pytest.approx(0, abs=1e-6)
    r = CliRunner().invoke(main, ["product", "footprint", "--enterprise", "demo-cement", "--period", SPAN[1],
                                  "--start", SPAN[0], "--lake", str(demo_root), "--allocation", "economic"])
    assert r.exit_code == 2 and "price" in r.output


def test_cli_label_pending_then_approved_published_and_scanned(demo_root, res, tmp_path):
    db = f"sqlite:///{tmp_path / 'labels.db'}"
    with LocalNode(prefix="88.123.4567", scrypt_n=2**10) as node:
        r = CliRunner().invoke(main, ["product", "label", "--enterprise", "demo-cement", "--product", "cement",
                                      "--period", SPAN[1], "--start", SPAN[0], "--lake", str(demo_root),
                                      "--out", str(tmp_path / "out"), "--node", node.url, "--db", db,
                                      "--by", "analyst-li"])
        assert r.exit_code == 0, r.output
        store = LabelStore(db)
        try:
            (lab,) = store.pending(enterprise="demo-cement")
            assert lab.identifier == "88.123.4567/label.pcf.2025-01_2025-03.cement" and lab.created_by == "analyst-li"
            assert lab.kgco2e_per_unit == pytest.approx(res["cement"].kgco2e_per_unit, rel=1e-12)
            assert {row["record_id"] for row in lab.evidence["ledger"]} == set(res.ledger["record_id"])
            png = next((tmp_path / "out").glob("*.png"))
            url = zxingcpp.read_barcodes(Image.open(png))[0].text
            assert httpx.get(url, timeout=10).status_code == 404          # pending: not on the node yet
            store.approve(lab.label_id, who="reviewer-zhao")
            with node.client() as c:
                publish(lab.label_id, c, store=store, who="reviewer-zhao")
            assert store.get(lab.label_id).status == "published"
        finally:
            store.dispose()
        fp = footprint_of_record(HandleRecord.from_json(httpx.get(url, timeout=10).json()))
    assert fp["kgco2e_per_unit"] == pytest.approx(res["cement"].kgco2e_per_unit, rel=1e-9)
    assert fp["energy"]["indicator"] == "cement_energy"
    r = CliRunner().invoke(main, ["product", "labels", "--db", db, "--enterprise", "demo-cement"])
    assert r.exit_code == 0 and "published" in r.output


def test_cli_cbam_export(demo_root, tmp_path):
    out = tmp_path / "cbam" / "demo-2025.xlsx"
    r = CliRunner().invoke(main, ["cbam", "export", "--enterprise", "demo-cement", "--year", "2025", "--out",
                                  str(out), "--lake", str(demo_root), "--exported", "cement=40000"])
    assert r.exit_code == 0, r.output
    inv = compute_inventory_from_lake(Lake(demo_root), "demo-cement", "2025-01", "2025-12")
    rep = cbam_report(inv, exported={"cement": 40000})
    doc = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    prod = {row["E production process"]: row for row in doc["sheets"]["Summary_Products"]}
    for g in ("cement", "clinker"):
        assert prod[f"{g} production"]["K SEE total (tCO2e/t)"] == pytest.approx(rep.see(g)["total"], rel=1e-12)
    wb = load_workbook(out)
    assert wb.sheetnames[0] == "A_InstData" and "Summary_Communication" in wb.sheetnames
    # from the same ledger: the processes' direct emissions are the ledger's CO2 from fuels and process,
    # and their electricity is the ledger's purchased electricity
    led = inv.ledger
    co2 = led[led["source"].isin(["combustion", "process"]) & (led["gas"] == "CO2")]["tco2e"].sum()
    assert rep.processes["dir_em_tco2e"].sum() == pytest.approx(co2, rel=1e-12)
    mwh = rep.sheets["C_Emissions&Energy"].set_index("field").at["Electricity consumed (purchased)", "value"]
    assert rep.processes["electricity_mwh"].sum() == pytest.approx(mwh, rel=1e-12)
    el = led[led["source"] == "purchased_electricity"]
    assert mwh == pytest.approx(float(el["quantity"].sum()), rel=1e-9)        # the demo's bills are in MWh
    # Eq. 55's floor did not bite, so the goods leaving (cement) carry every CBAM-direct tonne
    heat = -float(led.loc[led["source"] == "exported_heat", "tco2e"].sum())
    cement = rep.goods.loc["cement"]
    assert cement["embedded_direct_tco2e"] == pytest.approx(co2 - heat, rel=1e-9)
    assert math.isclose(cement["see_total"], cement["see_direct"] + cement["see_indirect"])
