"""Reduction scenarios and the MAC curve (issue 15 point 6), worked by hand.

The small lake of ``tests/status_lake.py`` (filled through the ingest path): ent-a burns 2.5 万Nm3
of natural gas on F01 in March 2026 and is billed 3 MWh (March) and 2 MWh (April) of grid electricity
at 0.5306 tCO2/MWh (MEE/NBS national 2023).  Factors from GB/T 32151.22-2024 Table C.1
(accounting-facts.md): natural gas 389.31 GJ/万Nm3, 15.3 tC/TJ, 99 %; diesel 42.652 GJ/t,
20.2 tC/TJ, 98 %.  Residual grid mix (MEE national 2023, excluding market-traded non-fossil):
0.6096 tCO2/MWh.  The demo cement plant (catalog) checks carbon efficiency: its value added is read
from its monthly CSV here, not from the code.
"""
from __future__ import annotations

import math

import intake
import numpy as np
import pandas as pd
import pytest
from status_lake import build as build_small_lake

from workbench.inventory.compute import compute_inventory, compute_inventory_from_lake
from workbench.models.scenarios import (
    Cost,
    EfficiencyGain,
    FuelSwitch,
    GreenElectricity,
    OnsitePV,
    ScenarioError,
    capital_recovery_factor,
    evaluate,
    mac_curve,
    mac_plot,
    parse_price,
)

GAS_GJ = 2.5 * 389.31                                   # 973.275 GJ
GAS_T = GAS_GJ * 15.3e-3 * 0.99 * 44 / 12               # 54.0547… tCO2
GRID = 0.5306
GRID_T = 5.0 * GRID                                     # 2.653 tCO2
TOTAL = GAS_T + GRID_T
PRICES = {"natural_gas": "3 元/Nm3", "grid": "0.65 元/kWh", "green_electricity": "0.70 元/kWh",
          "diesel": "8000 元/t"}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = build_small_lake(tmp_path_factory.mktemp("scenarios-small"))
    return compute_inventory_from_lake(root, "ent-a", "2026-03", "2026-04")


@pytest.fixture(scope="module")
def demo(demo_data):
    cat = intake.open_catalog(str(demo_data / "catalog.yaml"))
    return compute_inventory(cat, "2025-01", "2025-12")


def test_the_base_is_the_hand_computed_inventory(small):
    assert small.total_tco2e == pytest.approx(TOTAL, rel=1e-9)


def test_fuel_switch_keeps_the_useful_heat(small):
    r = evaluate(small, FuelSwitch(from_item="natural_gas", to_item="diesel"))
    diesel = r.after.ledger[r.after.ledger["item"] == "diesel"]
    assert diesel["quantity"].sum() == pytest.approx(GAS_GJ / 42.652, rel=1e-9)       # 22.819 t
    assert diesel["activity_gj"].sum() == pytest.approx(GAS_GJ, rel=1e-9)
    diesel_t = GAS_GJ * 20.2e-3 * 0.98 * 44 / 12                                       # 70.65 tCO2
    assert r.after.total_tco2e == pytest.approx(diesel_t + GRID_T, rel=1e-9)
    assert r.avoided_tco2e == pytest.approx(GAS_T - diesel_t, rel=1e-9) and r.avoided_tco2e < 0
    assert not (r.after.ledger["item"] == "natural_gas").any()
    # the added row names its lever and the record it replaces; the library's factors, not a site value
    assert diesel["record_id"].iloc[0] == "ledger.csv:2~fuel_switch:natural_gas->diesel#s1"
    assert "fuel switch" in r.after.activity.loc[r.after.activity["item"] == "diesel", "document"].iloc[0]
    assert diesel["data_tier"].iloc[0] == "proxy"
    # half of it, with a boiler half as efficient on diesel: the same diesel energy as above / 2 × 2
    r2 = evaluate(small, FuelSwitch(from_item="natural_gas", to_item="diesel", share=0.5, efficiency_ratio=2.0))
    gas2 = r2.after.ledger[r2.after.ledger["item"] == "natural_gas"]
    assert gas2["quantity"].sum() == pytest.approx(1.25)
    assert r2.after.ledger.loc[r2.after.ledger["item"] == "diesel", "activity_gj"].sum() == pytest.approx(GAS_GJ)


def test_efficiency_gain_on_a_node_and_on_the_whole_plant(small):
    r = evaluate(small, EfficiencyGain(saving=0.1, nodes=("F01",)))
    # F01: the gas and March's F01 share of the bill (1,501.513623 kWh) — not the enterprise node's rows
    f01_grid = small.ledger.loc[(small.ledger["node_id"] == "F01") & (small.ledger["item"] == "grid"), "tco2e"].sum()
    assert r.avoided_tco2e == pytest.approx(0.1 * (GAS_T + f01_grid), rel=1e-9)
    whole = evaluate(small, EfficiencyGain(saving=0.1))
    assert whole.avoided_tco2e == pytest.approx(0.1 * TOTAL, rel=1e-9)
    only_power = evaluate(small, EfficiencyGain(saving=0.2, items=("电力",)))       # an alias of grid
    assert only_power.avoided_tco2e == pytest.approx(0.2 * GRID_T, rel=1e-9)


def test_onsite_pv_month_by_month(small):
    # 12 MWh a year spread by days: March 31/365 × 12, April 30/365 × 12, all used on site
    r = evaluate(small, OnsitePV(annual_mwh=12.0))
    used = 12.0 * (31 + 30) / 365
    assert r.avoided_tco2e == pytest.approx(used * GRID, rel=1e-9)
    assert any("days" in n for n in r.notes)
    # capacity × specific yield and a profile: 100 kWp × 1,200 kWh/kWp = 120 MWh; March 10 %, April 10 %
    prof = [0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05]
    big = evaluate(small, OnsitePV(capacity_kwp=100, yield_kwh_per_kwp=1200, monthly_profile=prof))
    # 12 MWh a month > each month's purchase: the grid goes to 0, the surplus curtailed
    assert big.after.summary["by_source"]["purchased_electricity"] == pytest.approx(0.0, abs=1e-12)
    assert big.avoided_tco2e == pytest.approx(GRID_T, rel=1e-9)
    exp = evaluate(small, OnsitePV(capacity_kwp=100, yield_kwh_per_kwp=1200, monthly_profile=prof, export_surplus=True))
    surplus = (12.0 - 3.0) + (12.0 - 2.0)                                              # MWh exported
    assert exp.after.summary["by_source"]["exported_electricity"] == pytest.approx(-surplus * GRID, rel=1e-9)
    assert exp.avoided_tco2e == pytest.approx(GRID_T + surplus * GRID, rel=1e-9)


def test_green_electricity_and_the_residual_mix(small):
    half = evaluate(small, GreenElectricity(share=0.5))
    assert half.avoided_tco2e == pytest.approx(0.5 * GRID_T, rel=1e-9)
    green = half.after.ledger[half.after.ledger["item"] == "green_electricity"]
    assert green["quantity"].sum() == pytest.approx(2.5) and (green["tco2e"] == 0).all()
    assert set(green["emission_factor_id"]) == {"nonfossil:CN"}
    resid = evaluate(small, GreenElectricity(share=0.5, residual_mix=True))
    assert resid.after.total_tco2e == pytest.approx(GAS_T + 2.5 * 0.6096, rel=1e-9)
    # 3 MWh a year, spread by each month's purchase: 3 × 3/(5 × 12/2) in March — 0.3 MWh, 0.2 in April
    some = evaluate(small, GreenElectricity(annual_mwh=3.0))
    assert some.avoided_tco2e == pytest.approx(0.5 * GRID, rel=1e-9)
    full = evaluate(small, GreenElectricity(share=1.0))
    assert full.after.summary["by_source"]["purchased_electricity"] == pytest.approx(0.0, abs=1e-12)


def test_a_package_acts_demand_first_whatever_the_order_written(small):
    # 10 % less energy everywhere, then 12 MWh/year of PV covers 12 × 61/365 MWh of what is still bought
    pv_used = 12.0 * (31 + 30) / 365
    want = 0.1 * TOTAL + pv_used * GRID
    a = evaluate(small, [OnsitePV(annual_mwh=12.0), EfficiencyGain(saving=0.1)])
    b = evaluate(small, [EfficiencyGain(saving=0.1), OnsitePV(annual_mwh=12.0)])
    assert a.avoided_tco2e == pytest.approx(want, rel=1e-9) and b.avoided_tco2e == pytest.approx(want, rel=1e-9)
    assert list(a.steps["lever"]) == ["efficiency", "onsite_pv"] and list(a.steps["given"]) == [2, 1]
    assert a.steps["description_zh"].iloc[1] == "分布式光伏"
    # the same lever twice: each step's rows have their own ids; 30 % then half the rest is 65 % green
    twice = evaluate(small, [GreenElectricity(share=0.3), GreenElectricity(share=0.5)])
    assert twice.avoided_tco2e == pytest.approx(0.65 * GRID_T, rel=1e-9)
    assert twice.after.ledger["record_id"].is_unique
    assert twice.after.ledger.loc[twice.after.ledger["item"] == "green_electricity", "quantity"].sum() == pytest.approx(3.25)


def test_costs_by_hand(small):
    crf = 0.08 * 1.08 ** 10 / (1.08 ** 10 - 1)                                        # 0.149029
    assert capital_recovery_factor(0.08, 10) == pytest.approx(crf)
    assert capital_recovery_factor(0.0, 4) == 0.25
    r = evaluate(small, GreenElectricity(share=0.5, cost=Cost(capex_cny=1e6, lifetime_years=10, discount_rate=0.08)),
                 prices=PRICES)
    energy = -2500 * 0.65 + 2500 * 0.70                                                 # 元: the kWh re-priced
    assert r.energy_cost_change_cny == pytest.approx(energy)
    assert r.cost_cny == pytest.approx(1e6 * crf * 2 / 12 + energy)                   # two months
    assert r.cost_per_tco2e == pytest.approx(r.cost_cny / (0.5 * GRID_T))
    s = r.summary()
    assert s["months"] == 2 and s["avoided_tco2e"] == pytest.approx(0.5 * GRID_T)
    assert parse_price("3.6 元/Nm3") == (3.6, "CNY/Nm3")
    # 3 元/Nm3 is 30,000 元 per 万Nm3: a 10 % cut of 2.5 万Nm3 saves 7,500 元
    e = evaluate(small, EfficiencyGain(saving=0.1, items=("natural_gas",)), prices=PRICES)
    assert e.energy_cost_change_cny == pytest.approx(-7500.0)
    # no cost and no prices: nothing to rank
    assert math.isnan(evaluate(small, EfficiencyGain(saving=0.1)).cost_per_tco2e)


def test_mac_curve_orders_and_interacts(small):
    crv = mac_curve(small, {
        "green half": GreenElectricity(share=0.5),
        "efficiency 10 %": EfficiencyGain(saving=0.1, cost=Cost(annual_opex_cny=12000)),
        "to diesel": FuelSwitch(from_item="natural_gas", to_item="diesel"),
    }, prices=PRICES)
    assert list(crv["measure"]) == ["efficiency 10 %", "green half", "to diesel"]
    assert list(crv["on_curve"]) == [True, True, False]                              # diesel adds emissions
    eff_cost = 12000 * 2 / 12 - 7500 - 500 * 0.65                                       # 元: O&M − gas − power
    eff_t = 0.1 * TOTAL
    assert crv.loc[0, "cost_cny"] == pytest.approx(eff_cost)
    assert crv.loc[0, "cost_per_tco2e"] == pytest.approx(eff_cost / eff_t)
    assert crv.loc[1, "avoided_tco2e"] == pytest.approx(0.5 * GRID_T)                   # alone
    # after the efficiency gain only 4.5 MWh are bought: half of it is 2.25 MWh green
    assert crv.loc[1, "incremental_tco2e"] == pytest.approx(2.25 * GRID, rel=1e-9)
    assert crv.loc[1, "incremental_cost_per_tco2e"] == pytest.approx(2250 * 0.05 / (2.25 * GRID))
    assert crv.loc[1, "x0"] == pytest.approx(eff_t) and crv.loc[1, "x1"] == pytest.approx(eff_t + 2.25 * GRID)
    assert crv.loc[1, "cumulative_after_tco2e"] == pytest.approx(TOTAL - eff_t - 2.25 * GRID)
    assert math.isnan(crv.loc[2, "incremental_tco2e"])
    plot = mac_plot(crv)
    assert len(plot.data) == 2


def test_carbon_efficiency_before_and_after_on_the_demo(demo, demo_data):
    monthly = pd.read_csv(demo_data / "monthly.csv")
    va = monthly.loc[monthly["period"].astype(str).str.startswith("2025"), "value_added_10k_cny"].dropna().sum()
    grid_t = demo.summary["by_source"]["purchased_electricity"]
    r = evaluate(demo, GreenElectricity(share=1.0))
    s = r.summary()
    assert s["value_added"] == pytest.approx(va)
    assert s["carbon_efficiency_before"] == pytest.approx(demo.total_tco2e / va)
    assert s["after_tco2e"] == pytest.approx(demo.total_tco2e - grid_t)
    assert s["carbon_efficiency_after"] == pytest.approx((demo.total_tco2e - grid_t) / va)
    # the month by month view sums to the totals, and facilities move only by their electricity
    m = r.monthly()
    assert m["after_tco2e"].sum() == pytest.approx(s["after_tco2e"])
    fac = r.by_facility()
    assert fac["change_tco2e"].sum() == pytest.approx(-grid_t)
    # a package on the demo: four levers, each logged, demand first
    pkg = evaluate(demo, [FuelSwitch(from_item="raw_coal", to_item="natural_gas", share=0.2, nodes=("F01",)),
                          OnsitePV(annual_mwh=5000), EfficiencyGain(saving=0.05, nodes=("F02",)),
                          GreenElectricity(annual_mwh=10000)])
    assert list(pkg.steps["lever"]) == ["fuel_switch", "efficiency", "onsite_pv", "green_electricity"]   # by phase
    assert (pkg.steps["rows_changed"] > 0).all()
    assert pkg.after.total_tco2e < demo.total_tco2e
    # the unchanged rows keep their lineage
    assert pkg.after.ledger["document"].str.contains("scenario").any()


@pytest.mark.parametrize("lever, message", [
    (FuelSwitch(from_item="natural_gas", to_item="diesel", share=1.5), "share"),
    (FuelSwitch(from_item="raw_coal", to_item="natural_gas"), "no raw_coal"),
    (FuelSwitch(from_item="natural_gas", to_item="grid"), "not a fuel"),
    (EfficiencyGain(saving=0.1, nodes=("F99",)), "F99"),
    (EfficiencyGain(saving=1.2), "saving"),
    (OnsitePV(), "annual_mwh"),
    (OnsitePV(annual_mwh=10, monthly_profile=(0.5, 0.5)), "12"),
    (GreenElectricity(), "annual_mwh"),
])
def test_bad_levers_say_what_is_wrong(small, lever, message):
    with pytest.raises(ScenarioError, match=message):
        evaluate(small, lever)


def test_bad_costs_and_prices(small):
    with pytest.raises(ScenarioError, match="lifetime_years and discount_rate"):
        Cost(capex_cny=1e6)
    with pytest.raises(ScenarioError, match="no price for green_electricity"):
        evaluate(small, GreenElectricity(share=0.5), prices={"grid": "0.65 元/kWh"})
    with pytest.raises(ScenarioError, match="does not convert"):
        evaluate(small, GreenElectricity(share=0.5), prices={"grid": "0.65 元/t", "green_electricity": "0.7 元/kWh"})
    with pytest.raises(ScenarioError, match="a number and a unit"):
        parse_price("cheap")
    with pytest.raises(ScenarioError, match="at least one"):
        evaluate(small, [])
    assert np.isfinite(evaluate(small, GreenElectricity(share=0.5), prices=PRICES).cost_per_tco2e)
