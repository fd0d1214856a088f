"""Uncertainty of an inventory, IPCC 2006 Vol. 1 Ch. 3 (workbench.accounting.uncertainty).

Known answers by hand from the rules of approach 1:
    product  U = sqrt(ΣU_i²)                 sum  U = sqrt(Σ(U_i·x_i)²) / |Σx_i|
and the emissions of the records by hand from GB/T 32150's formulas with the published factors:
    natural gas 2.5 万Nm3 × 389.31 GJ/万Nm3 × 15.3 tC/TJ × 0.99 × 44/12          (GB/T 32151.22-2024 Table C.1)
    grid        5 MWh × 0.5306 tCO2/MWh                                          (MEE/NBS national 2023)
Monte Carlo (approach 2) agrees with approach 1 within its sampling error where the model is linear.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.accounting import account
from workbench.accounting.uncertainty import (
    DEFAULT_UNCERTAINTIES,
    UncertaintyError,
    approach1,
    draw_factors,
    interval_uncertainty,
    ledger_inputs,
    lognormal_parameters,
    monte_carlo,
    product_uncertainty,
    resolve_uncertainty,
    sum_uncertainty,
    uncertainty_table,
)

C2CO2 = 44 / 12
GAS_T = 2.5 * 389.31 * 15.3e-3 * 0.99 * C2CO2          # 54.054720… tCO2
GRID_T = 5 * 0.5306                                     # 2.653 tCO2
# default uncertainties (%): fuel activity 5 (IPCC), default NCV 5, CC 5, OF 2; other activity 5, grid EF 10
U_GAS = math.sqrt(5 ** 2 + 5 ** 2 + 5 ** 2 + 2 ** 2)    # √79 = 8.888 %
U_GRID = math.sqrt(5 ** 2 + 10 ** 2)                    # √125 = 11.180 %
#: factor uncertainties set to zero: the emissions are then linear in the (uncertain) activity data
LINEAR = {"ncv": 0, "carbon_content": 0, "oxidation_rate": 0, "emission_factor": 0, "purity": 0, "gwp": 0}


def ledger(rows):
    return account(pd.DataFrame(rows), year=2026)


@pytest.fixture(scope="module")
def two_sources():
    return ledger([{"source": "combustion", "item": "natural_gas", "quantity": 2.5, "unit": "万Nm3", "period": "2026-03"},
                   {"source": "purchased_electricity", "item": "grid", "quantity": 5, "unit": "MWh", "period": "2026-03"}])


# ------------------------------------------------------------------------- the rules
def test_product_rule():
    assert product_uncertainty(5, 7) == pytest.approx(math.sqrt(74))
    assert product_uncertainty(3, 4) == pytest.approx(5.0)
    assert product_uncertainty() == 0.0
    np.testing.assert_allclose(product_uncertainty([3, 6], [4, 8]), [5, 10])
    with pytest.raises(UncertaintyError):
        product_uncertainty(-1, 2)


def test_sum_rule_two_sources():
    # 1000 t at √74 % and 500 t at √104 %: √((√74·1000)² + (√104·500)²)/1500 = √(74e6 + 26e6)/1500 = 10,000/1500
    assert sum_uncertainty([1000, 500], [math.sqrt(74), math.sqrt(104)]) == pytest.approx(100 / 15)
    # a negative term (exported energy): √((10·1000)² + (10·200)²)/|1000 − 200| = √104e6/800
    assert sum_uncertainty([1000, -200], [10, 10]) == pytest.approx(math.sqrt(104e6) / 800)
    assert math.isnan(sum_uncertainty([100, -100], [5, 5]))
    with pytest.raises(UncertaintyError):
        sum_uncertainty([1, 2], [5])


def test_distributions_have_mean_one_and_the_normal_sd():
    z = np.random.default_rng(1).standard_normal(400_000)
    for dist in ("normal", "lognormal"):
        f = draw_factors(z, 10.0, dist)
        assert f.mean() == pytest.approx(1.0, abs=1e-3)
        assert f.std() == pytest.approx(0.10 / 1.959964, rel=0.01)
    mu, sigma = lognormal_parameters(10.0)
    s = 0.10 / 1.959964
    assert sigma == pytest.approx(math.sqrt(math.log(1 + s * s))) and mu == pytest.approx(-sigma ** 2 / 2)
    with pytest.raises(UncertaintyError):
        draw_factors(z, 5, "uniform")
    st = interval_uncertainty(np.array([90.0, 100, 110] * 1000))
    assert st["mean"] == pytest.approx(100) and st["u_pct"] == pytest.approx(10.0)


# ------------------------------------------------------------------------- defaults and their provenance
def test_defaults_carry_their_provenance():
    t = uncertainty_table()
    fossil = resolve_uncertainty(t, "activity", "fuel", "raw_coal", "primary")
    assert fossil["u_pct"] == 5.0 and fossil["status"] == "sourced" and "IPCC 2006" in fossil["source"]
    assert "Vol. 1 Ch. 3" in fossil["source"]
    for d in DEFAULT_UNCERTAINTIES:
        assert d.status in ("sourced", "assumption", "definition"), d
        if d.status == "assumption":
            assert "UNVERIFIED" in d.source and not d.verified, d
    assert [d for d in DEFAULT_UNCERTAINTIES if d.status == "sourced"] == [DEFAULT_UNCERTAINTIES[0]]


def test_overrides_win_and_the_most_specific_row_applies():
    t = uncertainty_table({"activity:fuel": 1.0, "activity:fuel:natural_gas": (3.0, "lognormal"),
                           "emission_factor:electricity:grid": {"u_pct": 4, "source": "supplier certificate"}})
    assert resolve_uncertainty(t, "activity", "fuel", "raw_coal", "primary")["u_pct"] == 1.0
    ng = resolve_uncertainty(t, "activity", "fuel", "natural_gas", "primary")
    assert (ng["u_pct"], ng["distribution"], ng["status"]) == (3.0, "lognormal", "override")
    grid = resolve_uncertainty(t, "emission_factor", "electricity", "grid", "default")
    assert (grid["u_pct"], grid["source"]) == (4.0, "supplier certificate")
    assert resolve_uncertainty(t, "ncv", "fuel", "coal", "site")["u_pct"] == 2.0     # site beats default
    for bad in ({"activity": -1}, {"activity": "many"}, {"nonsense": 1}, {"activity:a:b:c:d": 1}):
        with pytest.raises(UncertaintyError):
            uncertainty_table(bad)


# ------------------------------------------------------------------------- approach 1 over a ledger
def test_approach1_two_sources_by_hand(two_sources):
    led = two_sources
    assert led["tco2e"].to_numpy() == pytest.approx([GAS_T, GRID_T])      # the records, by hand
    a = approach1(led)
    cats = a.categories.set_index("item")
    assert cats.at["natural_gas", "u_pct"] == pytest.approx(U_GAS)
    assert cats.at["natural_gas", "u_activity_pct"] == pytest.approx(5.0)
    assert cats.at["natural_gas", "u_factors_pct"] == pytest.approx(math.sqrt(5 ** 2 + 5 ** 2 + 2 ** 2))
    assert cats.at["grid", "u_pct"] == pytest.approx(U_GRID)
    want = math.sqrt((U_GAS * GAS_T) ** 2 + (U_GRID * GRID_T) ** 2) / (GAS_T + GRID_T)   # 8.4885 %
    assert a.u_pct == pytest.approx(want) and want == pytest.approx(8.4885, abs=1e-3)
    assert a.total_tco2e == pytest.approx(GAS_T + GRID_T)
    assert a.half_width_tco2e == pytest.approx(want * (GAS_T + GRID_T) / 100)
    assert cats["variance_share"].sum() == pytest.approx(1.0)
    assert dict(zip(a.by_source["source"], a.by_source["u_pct"])) == pytest.approx(
        {"combustion": U_GAS, "purchased_electricity": U_GRID})


def test_records_of_one_category_share_their_errors():
    """Two months of one bill: the category keeps the product rule's U (fully correlated), it does
    not shrink by √2 as independent records would."""
    led = ledger([{"source": "purchased_electricity", "item": "grid", "quantity": 3, "unit": "MWh", "period": "2026-03"},
                  {"source": "purchased_electricity", "item": "grid", "quantity": 2, "unit": "MWh", "period": "2026-04"}])
    a = approach1(led)
    assert len(a.categories) == 1 and a.u_pct == pytest.approx(U_GRID)
    by_record = approach1(led, category_by=("record_id",))      # each record its own category
    assert by_record.u_pct == pytest.approx(U_GRID * math.sqrt(3 ** 2 + 2 ** 2) / 5)


def test_site_measured_factors_and_overrides_reach_the_ledger():
    led = ledger([{"source": "combustion", "item": "natural_gas", "quantity": 2.5, "unit": "万Nm3", "period": "2026-03",
                       "ncv": 380, "ncv_unit": "GJ/(10^4 Nm3)", "document": "lab report"}])
    inp = ledger_inputs(led).set_index("input")
    assert inp.at["ncv", "basis"] == "site" and inp.at["ncv", "u_pct"] == 2.0
    assert inp.at["carbon_content", "basis"] == "default" and inp.at["carbon_content", "u_pct"] == 5.0
    a = approach1(led, uncertainty_table({"activity:fuel": 1.0}))
    assert a.u_pct == pytest.approx(math.sqrt(1 + 2 ** 2 + 5 ** 2 + 2 ** 2))


def test_an_unknown_method_is_named():
    led = ledger([{"source": "purchased_electricity", "item": "grid", "quantity": 1, "unit": "MWh", "period": "2026-03"}])
    led.loc[0, "method"] = "guesswork"
    with pytest.raises(UncertaintyError, match="guesswork"):
        approach1(led)


# ------------------------------------------------------------------------- approach 2
def test_monte_carlo_agrees_with_approach1_for_a_linear_model(two_sources):
    table = uncertainty_table(LINEAR)                  # only the activity data are uncertain: E is linear in them
    a = approach1(two_sources, table)
    want = math.sqrt((5 * GAS_T) ** 2 + (5 * GRID_T) ** 2) / (GAS_T + GRID_T)
    assert a.u_pct == pytest.approx(want)
    mc = monte_carlo(two_sources, table, n=40_000, seed=7)
    # sampling error of the half-width of a 95 % interval from n normal draws: ≈ 0.7 %/√(n/20,000) relative
    assert mc.total["u_pct"] == pytest.approx(a.u_pct, rel=0.03)
    sd = want / 100 / 1.96 * (GAS_T + GRID_T)
    assert abs(mc.total["mean"] - (GAS_T + GRID_T)) < 4 * sd / math.sqrt(mc.n)
    by_src = mc.by_source.set_index("source")
    assert by_src.at["combustion", "u_pct"] == pytest.approx(5.0, rel=0.03)
    assert by_src.at["purchased_electricity", "u_pct"] == pytest.approx(5.0, rel=0.03)


def test_monte_carlo_close_to_approach1_for_the_products(two_sources):
    """With every input uncertain the model is a product; for U's of a few % the first-order rule and the
    simulation differ by far less than the U itself."""
    a = approach1(two_sources)
    for dist in ("normal", "lognormal"):
        mc = monte_carlo(two_sources, n=40_000, seed=11, distribution=dist)
        assert mc.total["u_pct"] == pytest.approx(a.u_pct, rel=0.05)
        assert mc.total["p2_5"] < GAS_T + GRID_T < mc.total["p97_5"]


def test_monte_carlo_is_seeded_and_fills_the_cube():
    led = ledger([{"source": "combustion", "item": "natural_gas", "quantity": 2.5, "unit": "万Nm3", "period": "2026-03"},
                  {"source": "purchased_electricity", "item": "grid", "quantity": 3, "unit": "MWh", "period": "2026-03"},
                  {"source": "purchased_electricity", "item": "grid", "quantity": 2, "unit": "MWh", "period": "2026-04"},
                  {"source": "exported_heat", "item": "heat", "quantity": 10, "unit": "GJ", "period": "2026-04"}])
    m1 = monte_carlo(led, n=2_000, seed=3)
    m2 = monte_carlo(led, n=2_000, seed=3, block=500)          # the same draws, in smaller blocks
    m3 = monte_carlo(led, n=2_000, seed=4)
    np.testing.assert_array_equal(m1.samples, m2.samples)
    assert not np.array_equal(m1.samples, m3.samples)
    cube = m1.cube
    assert set(cube.dims) == {"period", "facility", "source"}
    assert float(cube["tco2e"].sum()) == pytest.approx(led["tco2e"].sum())
    assert float(cube["tco2e"].sel(period="2026-04", source="exported_heat").sum()) == pytest.approx(-10 * 0.11)
    assert float(cube["mean"].sum()) == pytest.approx(m1.total["mean"], rel=1e-9)
    assert m1.total_tco2e == pytest.approx(led["tco2e"].sum())
    with pytest.raises(UncertaintyError):
        monte_carlo(led, n=10)
