"""Mechanism models (issue 15 point 1) on a hand-made ledger: every expected figure is worked by hand
from the formulas (tce = 29.3076 GJ; electricity 3.6 GJ/MWh) and the GB 16780-2021 limits
(applications.md §2), never from the code."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.models.mechanism import (
    CEMENT_INDICATORS,
    Indicator,
    ModelError,
    best_period_level,
    best_periods,
    compare,
    mechanism_table,
    process_energy,
    specific_consumption,
)
from workbench.products.energy import rate

TCE = 29.3076  # GJ per tce


def _ledger() -> pd.DataFrame:
    """Four months of a two-process plant: the kiln (F01.W02.P01) burns coal, the raw mill
    (F01.W01.P01) and the cement mill (F02.W01.P01) take grid electricity; an office (F04) is outside
    both processes."""
    rows = []
    coal_gj = {"2025-01": 293076.0, "2025-02": 263768.4, "2025-03": 322383.6, "2025-04": 293076.0}
    for p, gj in coal_gj.items():
        rows += [
            {"period": p, "node_id": "F01.W02.P01", "source": "combustion", "quantity": gj / 20.0, "unit": "t", "sign": 1,
                 "activity_gj": gj, "tco2e": gj * 0.09},
            {"period": p, "node_id": "F01.W01.P01", "source": "purchased_electricity", "quantity": 5000.0, "unit": "MWh",
                 "sign": 1, "activity_gj": 0.0, "tco2e": 2500.0},
            {"period": p, "node_id": "F02.W01.P01", "source": "purchased_electricity", "quantity": 3000.0, "unit": "MWh",
                 "sign": 1, "activity_gj": 0.0, "tco2e": 1500.0},
            {"period": p, "node_id": "F04", "source": "purchased_electricity", "quantity": 100.0, "unit": "MWh", "sign": 1,
                 "activity_gj": 0.0, "tco2e": 50.0},
        ]
    return pd.DataFrame(rows)


OUTPUTS = pd.DataFrame({"clinker": [100000.0, 100000.0, 100000.0, 100000.0],
                        "cement": [125000.0, 125000.0, 125000.0, 150000.0]},
                       index=pd.Index(["2025-01", "2025-02", "2025-03", "2025-04"], name="period"))


def test_specific_consumption_by_hand():
    # 12,000 tce for 100,000 t → 120 kgce/t; 5,000 MWh for 125,000 t → 40 kWh/t; no output → NaN
    got = specific_consumption([12000.0, 5000.0, 7.0], [100000.0, 125000.0, 0.0])
    assert got[0] == pytest.approx(120.0) and got[1] == pytest.approx(40.0) and math.isnan(got[2])
    assert specific_consumption([300000.0], [100000.0], scale=1.0)[0] == pytest.approx(3.0)   # GJ/t


def test_process_energy_sums_the_nodes_below():
    pe = process_energy(_ledger(), ["F01"])
    jan = pe.loc["2025-01"]
    assert jan["fuel_gj"] == pytest.approx(293076.0)
    assert jan["fuel_tce"] == pytest.approx(10000.0)                       # 293,076 / 29.3076
    assert jan["electricity_mwh"] == pytest.approx(5000.0)                 # the office is not in F01
    # 10,000 tce + 5,000 MWh × 3.6 / 29.3076 = 10,000 + 614.1755 tce
    assert jan["energy_tce"] == pytest.approx(10000.0 + 5000.0 * 3.6 / TCE, rel=1e-9)
    assert jan["tco2e"] == pytest.approx(293076.0 * 0.09 + 2500.0)
    assert jan["rows"] == 2
    assert process_energy(_ledger(), ["F09"])["energy_tce"].sum() == 0     # no such node: zeros, not an error


def test_exported_energy_counts_negative():
    led = pd.DataFrame([{"period": "2025-01", "node_id": "F05", "source": "exported_heat", "quantity": 1000.0, "unit": "GJ",
                             "sign": -1, "activity_gj": 0.0, "tco2e": -110.0}])
    pe = process_energy(led, ["F05"])
    assert pe.loc["2025-01", "heat_gj"] == pytest.approx(-1000.0)
    assert pe.loc["2025-01", "energy_tce"] == pytest.approx(-1000.0 / TCE)


def test_best_periods_lowest_quartile():
    v = [3.0, 2.0, np.nan, 5.0, 1.0, 4.0, 2.5, 6.0, 7.0]        # 8 finite → k = ceil(0.25 × 8) = 2
    assert best_periods(v).sum() == 2
    assert np.flatnonzero(best_periods(v)).tolist() == [1, 4]      # the 2.0 and the 1.0
    assert np.flatnonzero(best_periods([5.0, 4.0, 3.0], quantile=0.25)).tolist() == [2]   # k = max(1, ceil(.75)) = 1
    with pytest.raises(ModelError):
        best_periods([1.0], quantile=0)


def test_best_period_level_is_output_weighted():
    # months: 110/1000, 90/500, 100/1000 → values 110, 180, 100 kgce/t; best (k=1) = month 3: 100
    assert best_period_level([110.0, 90.0, 100.0], [1000.0, 500.0, 1000.0]) == pytest.approx(100.0)
    # best half (k = 2): months 1 and 3 → 1000 × 210 / 2000 = 105
    assert best_period_level([110.0, 90.0, 100.0], [1000.0, 500.0, 1000.0], quantile=0.5) == pytest.approx(105.0)


def test_mechanism_table_and_comparison_by_hand():
    t = mechanism_table(_ledger(), OUTPUTS, CEMENT_INDICATORS)
    kiln = t[t["indicator"] == "kiln_heat_gj"].set_index("period")["value"]
    # 293,076 GJ / 100,000 t = 2.93076 GJ/t; Feb 0.9× and Mar 1.1×
    assert kiln.to_dict() == pytest.approx({"2025-01": 2.93076, "2025-02": 2.637684, "2025-03": 3.223836,
                                            "2025-04": 2.93076})
    fuel = t[t["indicator"] == "clinker_fuel"].set_index("period")["value"]
    assert fuel["2025-01"] == pytest.approx(100.0)              # 10,000 tce / 100,000 t
    el = t[t["indicator"] == "cement_electricity"].set_index("period")["value"]
    assert el["2025-01"] == pytest.approx(24.0) and el["2025-04"] == pytest.approx(20.0)   # 3,000 MWh / 125 or 150 kt
    # cement comprehensive energy, January: F02 3,000 MWh = 368.5051 tce; clinker ground = 100,000 t at
    # (10,000 + 614.1755) tce / 100,000 t = 106.141755 kgce/t → 10,614.1755 tce; (368.5051 + 10,614.1755) / 125 kt
    cem = t[(t["indicator"] == "cement_energy")].set_index("period")
    e_cl = (10000.0 + 5000.0 * 3.6 / TCE) / 100000.0 * 1000.0
    exp = (3000.0 * 3.6 / TCE + 100000.0 * e_cl / 1000.0) / 125000.0 * 1000.0
    assert cem.at["2025-01", "value"] == pytest.approx(exp, rel=1e-9)
    assert exp == pytest.approx(87.86144, abs=1e-4)
    assert cem.at["2025-01", "clinker_percent"] == pytest.approx(80.0)      # 100,000 / 125,000

    c = compare(t, rate=rate).set_index("indicator")
    # span clinker fuel: 4 × 10,000 tce × (1 + 0.9 + 1.1 + 1)/4 = 40,000 tce over 400,000 t → 100 kgce/t
    assert c.at["clinker_fuel", "value"] == pytest.approx(100.0)
    # best quartile of 4 months: k = 1, February at 90 kgce/t; saving (100 − 90) × 400,000 t / 1000 = 4,000 tce
    assert c.at["clinker_fuel", "best"] == pytest.approx(90.0)
    assert c.at["clinker_fuel", "best_periods"] == "2025-02"
    assert c.at["clinker_fuel", "gap_to_best_pct"] == pytest.approx(100.0 * 10.0 / 90.0)
    assert c.at["clinker_fuel", "saving"] == pytest.approx(4000.0)
    # GB 16780-2021 熟料综合煤耗 94/100/109: 100 kgce/t is grade 2 (≤ 100), 8.26 % under the limit
    assert c.at["clinker_fuel", "grade"] == 2 and c.at["clinker_fuel", "limit"] == 109.0
    assert c.at["clinker_fuel", "gap_to_limit_pct"] == pytest.approx(100.0 * (100.0 - 109.0) / 109.0)
    # 熟料综合电耗 5,000 MWh / 100,000 t = 50 kWh/t: grade 2 (48 < 50 ≤ 57)
    assert c.at["clinker_electricity", "value"] == pytest.approx(50.0) and c.at["clinker_electricity", "grade"] == 2
    # cement energy limits corrected for the output-weighted clinker share:
    # (80 × 3 × 125,000 + 66.6667 × 150,000) / 525,000 → P = 400,000 / 525,000 = 76.190476 %;
    # grade 3 = 94 + (76.190476 − 75) × 1.20 = 95.428571 kgce/t
    assert c.at["cement_energy", "clinker_percent"] == pytest.approx(100.0 * 400000.0 / 525000.0)
    assert c.at["cement_energy", "limit"] == pytest.approx(94.0 + (100.0 * 400000.0 / 525000.0 - 75.0) * 1.20)
    # indicators with no GB counterpart carry no limit
    assert math.isnan(c.at["kiln_heat_gj", "limit"]) and pd.isna(c.at["kiln_heat_gj", "grade"])


def test_compare_without_a_rater_leaves_limits_empty():
    c = compare(mechanism_table(_ledger(), OUTPUTS, CEMENT_INDICATORS[:2])).set_index("indicator")
    assert math.isnan(c.at["clinker_fuel", "limit"]) and c.at["clinker_fuel", "standard"] == ""


def test_bad_input_names_what_is_wrong():
    with pytest.raises(ModelError, match="missing columns"):
        process_energy(pd.DataFrame({"period": ["2025-01"]}), ["F01"])
    with pytest.raises(ModelError, match="product 'steel'"):
        mechanism_table(_ledger(), OUTPUTS, [Indicator("x", ("F01",), "energy_tce", "steel", "kgce/t")])


def test_steel_indicators_per_t_rolled_by_hand():
    from workbench.models.mechanism import STEEL_INDICATORS, indicators_for

    assert indicators_for("steel") == STEEL_INDICATORS and indicators_for("unknown") == ()
    led = pd.DataFrame([
        {"period": "2025-01", "node_id": "F01.W01.P01", "source": "purchased_electricity", "quantity": 40000.0,
         "unit": "MWh", "sign": 1, "activity_gj": 0.0, "tco2e": 20000.0},
        {"period": "2025-01", "node_id": "F02.W01.P01", "source": "combustion", "quantity": 50.0, "unit": "10^4 Nm3",
         "sign": 1, "activity_gj": 120000.0, "tco2e": 6700.0},
        {"period": "2025-01", "node_id": "F02.W02.P01", "source": "purchased_electricity", "quantity": 9000.0,
         "unit": "MWh", "sign": 1, "activity_gj": 0.0, "tco2e": 4500.0},
    ])
    out = pd.DataFrame({"billet": [100000.0], "rebar": [96000.0]}, index=pd.Index(["2025-01"], name="period"))
    c = compare(mechanism_table(led, out, STEEL_INDICATORS), rate=rate).set_index("indicator")
    assert c.at["eaf_electricity", "value"] == pytest.approx(400.0)            # 40,000 MWh / 100 kt
    assert c.at["reheating_heat_gj", "value"] == pytest.approx(1.25)           # 120,000 GJ / 96 kt
    assert c.at["rolling_electricity", "value"] == pytest.approx(93.75)        # 9,000 MWh / 96 kt
    # rolling energy: 120,000 / 29.3076 + 9,000 × 3.6 / 29.3076 = 4,094.4874 + 1,105.5153 tce → / 96 kt
    assert c.at["rolling_energy", "value"] == pytest.approx((120000.0 + 32400.0) / TCE / 96.0, rel=1e-9)
    assert c.at["rolling_energy", "value"] == pytest.approx(54.1669, abs=1e-4)
    assert c["limit"].isna().all() and "UNVERIFIED" in c.at["rolling_energy", "basis"]   # no limit is applied
