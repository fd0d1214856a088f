"""notebooks/scenarios.ipynb executed with papermill on the demo cement plant's lake (its built-in example
measures), its figures checked by hand and against the package.

By hand, over 2025 (12 months, 365 days): the grid factor of Zhejiang 2023 is 0.4974 tCO2/MWh (MEE/NBS
公告2025年第47号); 10 GWh of green electricity avoid 10,000 × 0.4974 t for 10⁷ kWh × (0.68 − 0.65) 元;
5 MWp × 1,000 kWh/kWp of PV, each month's share (days/365) below the month's purchase, avoid 5,000 MWh ×
0.4974 t; 5 % of the cement mill's (F02) purchased electricity; 20 % of the kiln's (F01) coal energy burnt as
natural gas at 389.31 GJ/万Nm3, 15.3 tC/TJ, 99 % oxidised (GB/T 32151.22-2024 Table C.1).  Annual costs by
CRF = r(1+r)^n / ((1+r)^n − 1).  The plant's coal, its energy and the cement mill's kWh are the inventory's
input data (its ledger); value added is read from the demo's monthly CSV.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from notebook_run import execute_notebook

from workbench.demo.load import load_demo
from workbench.inventory.compute import compute_inventory_from_lake
from workbench.lake.store import Lake
from workbench.models.scenario_config import load_config
from workbench.models.scenarios import evaluate

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "scenarios.ipynb"
EF = 0.4974                                   # tCO2/MWh, Zhejiang 2023
GAS_T_PER_GJ = 15.3e-3 * 0.99 * 44 / 12       # tCO2/GJ of natural gas


def crf(r, n):
    return r * (1 + r) ** n / ((1 + r) ** n - 1)


@pytest.fixture(scope="module")
def run(demo_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scenarios-notebook")
    load_demo(demo_data, tmp / "lake", enterprise="demo-cement")
    out = tmp / "scenarios.ipynb"
    execute_notebook(str(NOTEBOOK), str(out), cwd=str(tmp), execution_timeout=300,
                     parameters={"lake_root": str(tmp / "lake"), "enterprise": "demo-cement", "start": "2025-01",
                                 "end": "2025-12", "config": None, "lang": "en"})
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not any(o.get("output_type") == "error" for o in outputs)
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    lines = {ln.split(" ", 1)[0]: json.loads(ln.split(" ", 1)[1]) for ln in text.splitlines()
             if ln.split(" ", 1)[0] in ("CONFIG", "MAC", "PACKAGE")}
    inv = compute_inventory_from_lake(Lake(tmp / "lake"), "demo-cement", "2025-01", "2025-12")
    return nb, outputs, text, lines, inv


def test_each_measure_by_hand(run):
    _, _, _, lines, inv = run
    mac = lines["MAC"]
    names = list(mac)
    # cheapest first: the mill, PV, green power, the kiln's gas
    assert [n.split(" ")[0] for n in names] == ["水泥磨能效", "屋顶光伏", "绿电采购", "窑头煤改气"]
    mill, pv, green, gas = (mac[n] for n in names)
    assert green["avoided_tco2e"] == pytest.approx(10000 * EF) and green["cost_cny"] == pytest.approx(1e7 * 0.03)
    assert pv["avoided_tco2e"] == pytest.approx(5000 * EF)
    assert pv["cost_cny"] == pytest.approx(1.75e7 * crf(0.06, 25) + 1.5e5 - 5e6 * 0.65)
    led = inv.ledger
    f02_mwh = led.loc[(led["item"] == "grid") & led["facility"].eq("F02"), "quantity"].sum()
    assert mill["avoided_tco2e"] == pytest.approx(0.05 * f02_mwh * EF)
    assert mill["cost_cny"] == pytest.approx(3e6 * crf(0.08, 15) - 0.05 * f02_mwh * 650)
    coal = led[(led["item"] == "raw_coal") & led["facility"].eq("F01")]
    coal_gj, coal_t, coal_co2 = coal["activity_gj"].sum(), coal["quantity"].sum(), coal["tco2e"].sum()
    assert gas["avoided_tco2e"] == pytest.approx(0.2 * (coal_co2 - coal_gj * GAS_T_PER_GJ))
    gas_10k_nm3 = 0.2 * coal_gj / 389.31
    assert gas["cost_cny"] == pytest.approx(2e6 * crf(0.08, 10) - 0.2 * coal_t * 900 + gas_10k_nm3 * 36000)
    # these measures hardly interact: each increment is its abatement alone
    for m in (mill, pv, green):
        assert m["incremental_tco2e"] == pytest.approx(m["avoided_tco2e"])


def test_the_package_is_the_packages_evaluation(run, demo_data):
    _, _, text, lines, inv = run
    cfg = load_config(lines["CONFIG"])
    assert [lv.kind for lv in cfg.package] == ["fuel_switch", "onsite_pv", "efficiency", "green_electricity"]
    s = lines["PACKAGE"]
    want = evaluate(inv, cfg.package, name=cfg.name, prices=cfg.prices).summary()
    for k in ("before_tco2e", "after_tco2e", "avoided_tco2e", "cost_cny", "carbon_efficiency_after"):
        assert s[k] == pytest.approx(want[k], rel=1e-12), k
    monthly = pd.read_csv(demo_data / "monthly.csv")
    va = monthly.loc[monthly["period"].astype(str).str.startswith("2025"), "value_added_10k_cny"].dropna().sum()
    assert s["before_tco2e"] == pytest.approx(inv.total_tco2e) and s["value_added"] == pytest.approx(va)
    assert s["carbon_efficiency_before"] == pytest.approx(inv.total_tco2e / va)
    assert s["carbon_efficiency_after"] == pytest.approx(s["after_tco2e"] / va)
    assert f"carbon efficiency 碳效率 {inv.total_tco2e / va:.4f} tCO2e/万元" in text
    # the package acts demand first: the mill's 5 % cuts its whole purchase, then the PV (5 GWh) and the green
    # power (10 GWh) each stay below every month's remaining purchase — so here the measures do not interact
    # and the package avoids exactly what they avoid alone
    alone = sum(v["avoided_tco2e"] for v in lines["MAC"].values())
    assert s["avoided_tco2e"] == pytest.approx(alone, rel=1e-9)


def test_the_notebook_shows_its_tables_and_plots(run):
    _nb, outputs, text, _, _ = run
    plots = [o for o in outputs if o.get("output_type") == "execute_result"
             and "application/vnd.holoviews_exec.v0+json" in o.get("data", {})]
    assert len(plots) == 2                                                             # MAC curve, by-source bars
    assert ":Rectangles" in text and ":Bars" in text
    for needle in ("rows_changed", "fuel switch raw_coal → natural_gas", "green_electricity", "before_carbon_efficiency"):
        assert needle in text, needle
    src = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in src.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and all(p in params[0].source for p in ("lake_root", "config", "lang", "enterprise"))
    assert not any(c.get("outputs") for c in src.cells if c.cell_type == "code")
    assert any("CRF" in c.source and "资本回收系数" in c.source for c in src.cells if c.cell_type == "markdown")
