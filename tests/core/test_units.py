"""Units of Chinese energy statistics (workbench.core.units).

Every expected number is the definition of the unit, written out by hand:
1 tce = 7,000 kcal/kg = 29.3076 GJ (GB/T 2589); 万 = 10⁴; 1 MWh = 1,000 kWh; 1 GJ = 1,000 MJ.
"""
from __future__ import annotations

import math

import numpy as np
import pint
import pytest

from workbench.core.units import (
    CO2_PER_C,
    Q_,
    UnitError,
    UnitMismatchError,
    conversion_factor,
    convert,
    normalize_unit,
    parse_unit,
    ureg,
)

REL = 1e-12


# --------------------------------------------------------------------------- energy
def test_tce_is_29_3076_gj():
    # 1 tce = 7000 kcal/kg × 1000 kg × 4.1868 kJ/kcal = 29,307.6 MJ = 29.3076 GJ
    assert conversion_factor("tce", "GJ") == pytest.approx(7000 * 1000 * 4.1868 / 1e6, rel=REL)
    assert conversion_factor("tce", "GJ") == pytest.approx(29.3076, rel=REL)


def test_tce_chinese_spellings():
    assert conversion_factor("吨标准煤", "GJ") == pytest.approx(29.3076, rel=REL)
    assert conversion_factor("吨标煤", "GJ") == pytest.approx(29.3076, rel=REL)


def test_kgce_is_one_thousandth_of_tce():
    assert conversion_factor("kgce", "GJ") == pytest.approx(29.3076 / 1000, rel=REL)
    assert conversion_factor("千克标准煤", "MJ") == pytest.approx(29.3076, rel=REL)  # 29.3076 GJ/t = 29.3076 MJ/kg
    assert conversion_factor("tce", "kgce") == pytest.approx(1000, rel=REL)


def test_wan_tce():
    assert conversion_factor("万tce", "GJ") == pytest.approx(1e4 * 29.3076, rel=REL)


def test_gj_mj_tj_kj():
    assert conversion_factor("GJ", "MJ") == pytest.approx(1000, rel=REL)
    assert conversion_factor("MJ", "GJ") == pytest.approx(1e-3, rel=REL)
    assert conversion_factor("TJ", "GJ") == pytest.approx(1000, rel=REL)
    assert conversion_factor("吉焦", "兆焦") == pytest.approx(1000, rel=REL)
    assert conversion_factor("kJ", "GJ") == pytest.approx(1e-6, rel=REL)


def test_electricity_units():
    assert conversion_factor("kWh", "MWh") == pytest.approx(1e-3, rel=REL)
    assert conversion_factor("MWh", "kWh") == pytest.approx(1000, rel=REL)
    # 万kWh = 10⁴ kWh = 10 MWh
    assert conversion_factor("万kWh", "MWh") == pytest.approx(1e4 / 1e3, rel=REL)
    assert conversion_factor("万kWh", "kWh") == pytest.approx(1e4, rel=REL)
    assert conversion_factor("10^4 kWh", "MWh") == pytest.approx(10, rel=REL)
    assert conversion_factor("亿kWh", "MWh") == pytest.approx(1e8 / 1e3, rel=REL)
    # 1 kWh = 3.6 MJ
    assert conversion_factor("kWh", "MJ") == pytest.approx(3.6, rel=REL)


@pytest.mark.parametrize("spelling", ["kWh", "千瓦时", "度", "kW*h", "kW·h"])
def test_kwh_spellings(spelling):
    assert conversion_factor(spelling, "kWh") == pytest.approx(1.0, rel=REL)


# --------------------------------------------------------------------------- gas volume
@pytest.mark.parametrize("spelling", [
    "万Nm3", "10^4Nm3", "10^4 Nm3", "10⁴ Nm³", "10⁴Nm³", "10**4 Nm3", "1e4 Nm3", "万Nm³", "万 Nm3",
])
def test_wan_nm3_spellings_are_1e4_nm3(spelling):
    assert conversion_factor(spelling, "Nm3") == pytest.approx(1e4, rel=REL)
    assert parse_unit(spelling) == ureg.wan_Nm3


@pytest.mark.parametrize("spelling", ["Nm3", "Nm³", "标方", "标准立方米"])
def test_nm3_spellings(spelling):
    assert conversion_factor(spelling, "Nm3") == pytest.approx(1.0, rel=REL)


def test_ncv_per_wan_nm3():
    # 389.31 GJ per 10⁴ Nm³ = 0.038931 GJ/Nm³
    assert conversion_factor("GJ/(10^4 Nm3)", "GJ/Nm3") == pytest.approx(1 / 1e4, rel=REL)
    assert conversion_factor("GJ/10^4Nm3", "GJ/万Nm3") == pytest.approx(1.0, rel=REL)
    # 10⁵ Nm³ = 10 万Nm³ → 10 × 389.31 GJ
    ncv = Q_(389.31, parse_unit("GJ/(10^4 Nm3)"))
    assert (ncv * Q_(1e5, "Nm3")).to("GJ").magnitude == pytest.approx(10 * 389.31, rel=REL)


def test_m3_and_nm3_do_not_convert():
    with pytest.raises(UnitMismatchError) as exc:
        conversion_factor("m3", "Nm3")
    assert "'m3'" in str(exc.value) and "'Nm3'" in str(exc.value)
    with pytest.raises(UnitMismatchError):
        conversion_factor("立方米", "标方")
    with pytest.raises(UnitMismatchError):
        conversion_factor("万Nm3", "m3")


def test_scaled_unit_without_definition_is_an_error():
    # 10⁴ m³ (actual volume) has no defined unit; the workbench will not invent a scale silently
    with pytest.raises(UnitError, match="scale"):
        parse_unit("10^4 m3")


# --------------------------------------------------------------------------- mass and money
def test_mass_units():
    assert conversion_factor("t", "kg") == pytest.approx(1000, rel=REL)
    assert conversion_factor("吨", "kg") == pytest.approx(1000, rel=REL)
    assert conversion_factor("吨", "t") == pytest.approx(1.0, rel=REL)
    assert conversion_factor("kg", "t") == pytest.approx(1e-3, rel=REL)
    assert conversion_factor("公斤", "千克") == pytest.approx(1.0, rel=REL)
    assert conversion_factor("万t", "t") == pytest.approx(1e4, rel=REL)
    assert conversion_factor("万吨", "t") == pytest.approx(1e4, rel=REL)


def test_wan_yuan_is_1e4_cny():
    assert conversion_factor("万元", "CNY") == pytest.approx(1e4, rel=REL)
    assert conversion_factor("元", "CNY") == pytest.approx(1.0, rel=REL)
    assert conversion_factor("CNY", "万元") == pytest.approx(1e-4, rel=REL)
    assert conversion_factor("亿元", "万元") == pytest.approx(1e8 / 1e4, rel=REL)


def test_percent():
    assert conversion_factor("%", "dimensionless") == pytest.approx(0.01, rel=REL)
    assert conversion_factor("percent", "dimensionless") == pytest.approx(0.01, rel=REL)
    assert normalize_unit("%") == "percent"


# --------------------------------------------------------------------------- carbon and CO2
def test_tc_and_tco2_do_not_convert():
    with pytest.raises(UnitMismatchError) as exc:
        conversion_factor("tC", "tCO2")
    assert "'tC'" in str(exc.value) and "'tCO2'" in str(exc.value)
    assert exc.value.from_unit == "tC" and exc.value.to_unit == "tCO2"


def test_co2_per_c_is_44_over_12():
    assert CO2_PER_C.to("tCO2/tC").magnitude == pytest.approx(44 / 12, rel=REL)
    assert (Q_(12, "tC") * CO2_PER_C).to("tCO2").magnitude == pytest.approx(44, rel=REL)


def test_tco2e_equals_tco2_and_kg():
    assert conversion_factor("tCO2e", "tCO2") == pytest.approx(1.0, rel=REL)
    assert conversion_factor("kgCO2", "tCO2") == pytest.approx(1e-3, rel=REL)
    assert conversion_factor("kgCO2e", "tCO2e") == pytest.approx(1e-3, rel=REL)


def test_carbon_content_per_tj_to_per_gj():
    # tables give CC in tC/TJ; 1 TJ = 1000 GJ
    assert conversion_factor("tC/TJ", "tC/GJ") == pytest.approx(1e-3, rel=REL)


# --------------------------------------------------------------------------- errors
def test_mismatch_error_names_both_units():
    with pytest.raises(UnitMismatchError) as exc:
        conversion_factor("kWh", "t")
    msg = str(exc.value)
    assert "'kWh'" in msg and "'t'" in msg
    assert exc.value.from_unit == "kWh" and exc.value.to_unit == "t"
    assert isinstance(exc.value, UnitError) and isinstance(exc.value, ValueError)


def test_mismatch_money_vs_energy():
    with pytest.raises(UnitMismatchError) as exc:
        conversion_factor("万元", "GJ")
    assert "万元" in str(exc.value) and "GJ" in str(exc.value)


@pytest.mark.parametrize("junk", ["bananas", "xyz/t", "Nm4", "3 t", "吨吨吨"])
def test_unknown_unit_error(junk):
    with pytest.raises(UnitError) as exc:
        parse_unit(junk)
    assert not isinstance(exc.value, UnitMismatchError)
    assert junk in str(exc.value)


@pytest.mark.parametrize("blank", ["", "   ", None, float("nan")])
def test_missing_unit_error(blank):
    with pytest.raises(UnitError, match="missing unit"):
        normalize_unit(blank)


def test_unknown_unit_in_conversion():
    with pytest.raises(UnitError, match="bananas"):
        conversion_factor("bananas", "t")


# --------------------------------------------------------------------------- round trips, vectors
@pytest.mark.parametrize("a,b", [
    ("tce", "GJ"), ("kgce", "MJ"), ("万Nm3", "Nm3"), ("万kWh", "kWh"), ("MWh", "GJ"),
    ("吨", "kg"), ("万元", "CNY"), ("GJ/(10^4 Nm3)", "MJ/Nm3"), ("tC/TJ", "tC/GJ"),
])
def test_round_trip(a, b):
    x = np.array([0.0, 1.0, 12.345, 9850.0, 1.8e6])
    back = convert(convert(x, a, b), b, a)
    np.testing.assert_allclose(back, x, rtol=1e-12)
    assert conversion_factor(a, b) * conversion_factor(b, a) == pytest.approx(1.0, rel=REL)


def test_convert_mixed_units_vectorised():
    out = convert([1, 2, 3, 4], ["万Nm3", "Nm3", "万Nm3", "10^4Nm3"], "Nm3")
    np.testing.assert_allclose(out, [1e4, 2.0, 3e4, 4e4], rtol=1e-12)


def test_convert_mixed_units_with_a_bad_one_raises():
    with pytest.raises(UnitMismatchError):
        convert([1, 2], ["t", "kWh"], "kg")


def test_pint_quantities_share_the_registry():
    q = Q_(1, "tce") + Q_(29.3076, "GJ")
    assert q.to("GJ").magnitude == pytest.approx(2 * 29.3076, rel=REL)
    with pytest.raises(pint.DimensionalityError):
        Q_(1, "tC").to("tCO2")
    assert math.isclose(Q_(1, "万元").to("CNY").magnitude, 1e4, rel_tol=REL)
