"""GB/T 32150 accounting: the pure formulas, the engine (ledger) and the cube.

Known answers are computed by hand from the standard's formulas with the published factors:
    E_combustion = FC × NCV × CC × OF × 44/12   (CC in tC/TJ = 1e-3 tC/GJ, OF a fraction)
    E_process    = M × P × EF                    E_electricity = MWh × EF_grid
    E_heat       = GJ × EF_heat                  E_gas = m × GWP
    E_total      = combustion + process + purchased − exported
Factor values (GB/T 32151.22-2024 Table C.1, GB/T 2589, MEE/NBS notices, IPCC GWP-100):
    raw coal   NCV 20.908 GJ/t (GB/T 2589), CC 26.37 tC/TJ, OF 94 % (NDRC guideline, UNVERIFIED)
    natural gas NCV 389.31 GJ/万Nm3, CC 15.3 tC/TJ, OF 99 %
    diesel     NCV 42.652 GJ/t, CC 20.2 tC/TJ, OF 98 %
    CaCO3 0.4397 tCO2/t · heat 0.11 tCO2/GJ · grid CN 2023 0.5306, ZJ 2023 0.4974, East 2022 0.5617
    SF6 AR5 23500, AR6 25200
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pint
import pytest

from workbench.accounting import (
    LEDGER_COLUMNS,
    SIGN,
    SOURCES,
    AccountingError,
    account,
    carbon_efficiency,
    carbon_intensity,
    cube_to_frame,
    edition_for_year,
    summarize,
    to_cube,
    total_emissions,
)
from workbench.accounting.combustion import (
    activity_energy,
    combustion_emissions,
    emission_factor_from_carbon_content,
    fuel_combustion,
)
from workbench.accounting.gases import co2_equivalent
from workbench.accounting.indirect import (
    electricity_emissions,
    factor_emissions,
    heat_emissions,
)
from workbench.accounting.process import carbonate_decomposition
from workbench.core.activity import ActivityDataError
from workbench.core.factors import default_library
from workbench.core.units import Q_, parse_unit
from workbench.regimes.sectors.cement import (
    CO2_PER_CAO,
    CO2_PER_MGO,
    clinker_calcination,
)

REL = 1e-12
C2CO2 = 44 / 12

# hand-computed emissions of the fuels at their defaults, per unit of fuel
RAW_COAL_PER_T = 20.908 * 26.37e-3 * 0.94 * C2CO2     # GJ/t × tC/GJ × OF × 44/12 → tCO2/t
NG_PER_WAN_NM3 = 389.31 * 15.3e-3 * 0.99 * C2CO2      # tCO2 per 万Nm3
DIESEL_PER_T = 42.652 * 20.2e-3 * 0.98 * C2CO2        # tCO2/t


def Qu(value, unit):
    """A pint quantity from a workbench unit spelling (万Nm3, GJ/(10^4 Nm3), …)."""
    return Q_(value, parse_unit(unit))


def acc(rows, **kw):
    kw.setdefault("year", 2025)
    return account(pd.DataFrame(rows), **kw)


def one(row, **kw):
    return acc([row], **kw).iloc[0]


# =========================================================================== pure formulas
class TestCombustionFormulas:
    def test_activity_energy_gas_in_wan_nm3(self):
        ad = activity_energy(Qu(10, "万Nm3"), Qu(389.31, "GJ/(10^4 Nm3)"))
        assert ad.to("GJ").magnitude == pytest.approx(10 * 389.31, rel=REL)

    def test_activity_energy_gas_in_nm3(self):
        ad = activity_energy(Qu(100_000, "Nm3"), Qu(389.31, "GJ/(10^4 Nm3)"))
        assert ad.to("GJ").magnitude == pytest.approx(100_000 / 1e4 * 389.31, rel=REL)

    def test_activity_energy_ncv_in_kj_per_kg(self):
        # NDRC form: FC (t) × NCV (kJ/kg) × 1e-6 → TJ;  here in GJ
        ad = activity_energy(Qu(100, "t"), Qu(20908, "kJ/kg"))
        assert ad.to("GJ").magnitude == pytest.approx(100 * 20908 * 1e-6 * 1e3, rel=REL)

    def test_activity_energy_mismatch_is_an_error(self):
        with pytest.raises(pint.DimensionalityError):
            activity_energy(Qu(100, "t"), Qu(389.31, "GJ/(10^4 Nm3)"))
        with pytest.raises(pint.DimensionalityError):
            activity_energy(Qu(100, "m3"), Qu(389.31, "GJ/(10^4 Nm3)"))

    def test_emission_factor_from_carbon_content_percent_and_fraction(self):
        expected = 15.3e-3 * 0.99 * 44 / 12  # tC/TJ → tC/GJ × OF × 44/12 = tCO2/GJ
        ef1 = emission_factor_from_carbon_content(Qu(15.3, "tC/TJ"), Qu(99, "percent"))
        ef2 = emission_factor_from_carbon_content(Qu(15.3, "tC/TJ"), 0.99)
        assert ef1.to("tCO2/GJ").magnitude == pytest.approx(expected, rel=REL)
        assert ef2.to("tCO2/GJ").magnitude == pytest.approx(expected, rel=REL)

    def test_fuel_combustion_natural_gas(self):
        e = fuel_combustion(Qu(10, "万Nm3"), Qu(389.31, "GJ/(10^4 Nm3)"), Qu(15.3, "tC/TJ"), Qu(99, "%"))
        expected = 10 * 389.31 * 15.3e-3 * 0.99 * 44 / 12  # 10 万Nm3 × NCV × CC × OF × 44/12
        assert e.to("tCO2").magnitude == pytest.approx(expected, rel=REL)

    def test_fuel_combustion_vectorised(self):
        fc = Qu(np.array([1.0, 18.5, 0.0]), "t")
        e = fuel_combustion(fc, Qu(42.652, "GJ/t"), Qu(20.2, "tC/TJ"), 0.98)
        expected = np.array([1.0, 18.5, 0.0]) * 42.652 * 20.2e-3 * 0.98 * 44 / 12
        np.testing.assert_allclose(e.to("tCO2").magnitude, expected, rtol=1e-12)


class TestProcessFormulas:
    def test_carbonate_with_purity_fraction_and_percent(self):
        expected = 150_000 * 0.93 * 0.4397  # M × P × EF
        e1 = carbonate_decomposition(Qu(150_000, "t"), Qu(0.4397, "tCO2/t"), 0.93)
        e2 = carbonate_decomposition(Qu(150_000, "t"), Qu(0.4397, "tCO2/t"), Qu(93, "percent"))
        assert e1.to("tCO2").magnitude == pytest.approx(expected, rel=REL)
        assert e2.to("tCO2").magnitude == pytest.approx(expected, rel=REL)

    def test_carbonate_default_purity_is_one(self):
        e = carbonate_decomposition(Qu(100, "吨"), Qu(0.4397, "tCO2/t"))
        assert e.magnitude == pytest.approx(100 * 0.4397, rel=REL)

    def test_carbonate_mass_in_kg(self):
        e = carbonate_decomposition(Qu(2500, "kg"), Qu(0.4397, "tCO2/t"))
        assert e.to("tCO2").magnitude == pytest.approx(2.5 * 0.4397, rel=REL)

    def test_clinker_calcination(self):
        # E = Q × [(CaO − CaO_nc) × 44/56 + (MgO − MgO_nc) × 44/40]
        expected = 1000 * ((0.65 - 0.01) * 44 / 56 + (0.02 - 0.005) * 44 / 40)
        e = clinker_calcination(Qu(1000, "t"), 0.65, 0.02, 0.01, 0.005)
        assert e.to("tCO2").magnitude == pytest.approx(expected, rel=REL)

    def test_clinker_calcination_percent_inputs_and_defaults(self):
        expected = 1000 * (0.65 * 44 / 56 + 0.02 * 44 / 40)
        e = clinker_calcination(Qu(1000, "t"), Qu(65, "percent"), Qu(2, "percent"))
        assert e.to("tCO2").magnitude == pytest.approx(expected, rel=REL)

    def test_stoichiometric_constants(self):
        assert CO2_PER_CAO.magnitude == pytest.approx(44 / 56, rel=REL)
        assert CO2_PER_MGO.magnitude == pytest.approx(44 / 40, rel=REL)


class TestIndirectAndGasFormulas:
    @pytest.mark.parametrize("qty,unit,mwh", [(1000, "kWh", 1.0), (9850, "MWh", 9850.0), (2, "万kWh", 20.0)])
    def test_electricity_units(self, qty, unit, mwh):
        e = electricity_emissions(Qu(qty, unit), Qu(0.5306, "tCO2/MWh"))
        assert e.to("tCO2").magnitude == pytest.approx(mwh * 0.5306, rel=REL)

    def test_heat(self):
        assert heat_emissions(Qu(1200, "GJ"), Qu(0.11, "tCO2/GJ")).magnitude == pytest.approx(1200 * 0.11, rel=REL)
        # 1,000,000 MJ = 1000 GJ
        assert heat_emissions(Qu(1e6, "MJ"), Qu(0.11, "tCO2/GJ")).magnitude == pytest.approx(1000 * 0.11, rel=REL)

    def test_factor_emissions_mismatch(self):
        with pytest.raises(pint.DimensionalityError):
            factor_emissions(Qu(10, "t"), Qu(0.5306, "tCO2/MWh"))

    def test_co2_equivalent(self):
        assert co2_equivalent(Qu(0.003, "t"), Qu(23500, "tCO2e/t")).magnitude == pytest.approx(0.003 * 23500, rel=REL)
        assert co2_equivalent(Qu(3, "kg"), Qu(25200, "tCO2e/t")).magnitude == pytest.approx(0.003 * 25200, rel=REL)

    def test_total_emissions(self):
        expected = 100 + 20 + 50 + 5 - 7 - 3
        assert total_emissions(100, 20, 50, 5, 7, 3) == pytest.approx(expected, rel=REL)
        assert total_emissions(exported_heat=3) == pytest.approx(-3, rel=REL)

    def test_signs(self):
        assert SIGN == {"combustion": 1, "process": 1, "purchased_electricity": 1, "purchased_heat": 1,
                        "exported_electricity": -1, "exported_heat": -1}

    @pytest.mark.parametrize("year,edition", [(2015, "GB/T 32150-2015"), (2025, "GB/T 32150-2015"),
                                              (2026, "GB/T 32150-2025"), (2030, "GB/T 32150-2025"),
                                              (None, "GB/T 32150-2015")])
    def test_edition_for_year(self, year, edition):
        assert edition_for_year(year) == edition


# =========================================================================== the engine
class TestCombustion:
    def test_raw_coal_defaults(self):
        r = one(dict(source="combustion", item="raw_coal", quantity=100, unit="t", period="2025-03"))
        expected = 100 * 20.908 * 26.37e-3 * 0.94 * 44 / 12  # FC × NCV × CC × OF × 44/12
        assert r.tco2e == pytest.approx(expected, rel=REL)
        assert r.activity_gj == pytest.approx(100 * 20.908, rel=REL)
        assert r.oxidation_rate == pytest.approx(0.94, rel=REL)
        assert r.method == "FC×NCV×CC×OF×44/12"
        assert r.ncv_factor_id == "gbt2589:raw_coal:ncv"
        assert r.carbon_content_factor_id == "ndrc-guideline:raw_coal:carbon_content"
        assert r.oxidation_rate_factor_id == "ndrc-guideline:raw_coal:oxidation_rate"
        assert "UNVERIFIED" in r.notes

    def test_natural_gas_in_wan_nm3_and_nm3_agree(self):
        led = acc([dict(source="combustion", item="natural_gas", quantity=10, unit="万Nm3", period="2025-03"),
                   dict(source="combustion", item="natural_gas", quantity=100_000, unit="Nm3", period="2025-03"),
                   dict(source="combustion", item="天然气", quantity=10, unit="10⁴ Nm³", period="2025-03")])
        expected = 10 * 389.31 * 15.3e-3 * 0.99 * 44 / 12  # 10 万Nm3 × NCV 389.31 GJ/万Nm3 × CC × OF × 44/12
        np.testing.assert_allclose(led["tco2e"], [expected] * 3, rtol=1e-12)
        np.testing.assert_allclose(led["activity_gj"], [10 * 389.31] * 3, rtol=1e-12)

    def test_diesel(self):
        r = one(dict(source="combustion", item="柴油", quantity=18.5, unit="吨", period="2025-03"))
        expected = 18.5 * 42.652 * 20.2e-3 * 0.98 * 44 / 12
        assert r.tco2e == pytest.approx(expected, rel=REL)
        assert r.emission_factor == pytest.approx(20.2e-3 * 0.98 * 44 / 12, rel=REL)
        assert r.ef_unit == "tCO2/GJ"

    def test_diesel_in_kg(self):
        r = one(dict(source="combustion", item="diesel", quantity=18500, unit="kg", period="2025-03"))
        assert r.tco2e == pytest.approx(18.5 * 42.652 * 20.2e-3 * 0.98 * 44 / 12, rel=REL)

    def test_site_measured_ncv(self):
        r = one(dict(source="combustion", item="raw_coal", quantity=12000, unit="t", period="2025-06",
                     ncv=22.35, ncv_unit="GJ/t"))
        expected = 12000 * 22.35 * 26.37e-3 * 0.94 * 44 / 12  # site NCV, default CC and OF
        assert r.tco2e == pytest.approx(expected, rel=REL)
        assert r.ncv == pytest.approx(22.35, rel=REL)
        assert r.ncv_factor_id.startswith("site:")
        assert r.carbon_content_factor_id == "ndrc-guideline:raw_coal:carbon_content"
        assert "site-measured ncv" in r.notes

    def test_site_measured_ncv_in_kj_per_kg(self):
        r = one(dict(source="combustion", item="raw_coal", quantity=12000, unit="t", period="2025-06",
                     ncv=22350, ncv_unit="kJ/kg"))
        # 22,350 kJ/kg = 22.35 GJ/t
        assert r.tco2e == pytest.approx(12000 * 22.35 * 26.37e-3 * 0.94 * 44 / 12, rel=REL)

    def test_site_measured_ncv_for_gas_per_nm3(self):
        r = one(dict(source="combustion", item="natural_gas", quantity=2, unit="万Nm3", period="2025-06",
                     ncv=0.0360, ncv_unit="GJ/Nm3"))
        # 2 万Nm3 = 20,000 Nm3 × 0.0360 GJ/Nm3 = 720 GJ
        assert r.activity_gj == pytest.approx(20_000 * 0.0360, rel=REL)
        assert r.tco2e == pytest.approx(20_000 * 0.0360 * 15.3e-3 * 0.99 * 44 / 12, rel=REL)

    @pytest.mark.parametrize("of", [95, "95", 0.95, "95%"])
    def test_carbon_content_and_oxidation_override(self, of):
        r = one(dict(source="combustion", item="raw_coal", quantity=100, unit="t", period="2025-03",
                     carbon_content=27.0, carbon_content_unit="tC/TJ", oxidation_rate=of))
        expected = 100 * 20.908 * 27.0e-3 * 0.95 * 44 / 12  # default NCV, site CC 27.0 tC/TJ, OF 95 %
        assert r.tco2e == pytest.approx(expected, rel=REL)
        assert r.carbon_content == pytest.approx(27.0, rel=REL)
        assert r.oxidation_rate == pytest.approx(0.95, rel=REL)
        assert r.carbon_content_factor_id.startswith("site:")
        assert r.oxidation_rate_factor_id.startswith("site:")
        assert r.ncv_factor_id == "gbt2589:raw_coal:ncv"

    def test_carbon_content_in_other_unit(self):
        # 0.0270 tC/GJ = 27.0 tC/TJ
        r = one(dict(source="combustion", item="raw_coal", quantity=100, unit="t", period="2025-03",
                     carbon_content=0.0270, carbon_content_unit="tC/GJ"))
        assert r.tco2e == pytest.approx(100 * 20.908 * 27.0e-3 * 0.94 * 44 / 12, rel=REL)

    def test_emission_factor_override_per_tonne(self):
        r = one(dict(source="combustion", item="diesel", quantity=5, unit="t", period="2025-03",
                     emission_factor=3.1, ef_unit="tCO2/t"))
        assert r.tco2e == pytest.approx(5 * 3.1, rel=REL)  # FC × EF
        assert r.method == "FC×EF"
        assert r.emission_factor_id.startswith("site:")

    def test_emission_factor_override_per_gj(self):
        r = one(dict(source="combustion", item="diesel", quantity=5, unit="t", period="2025-03",
                     emission_factor=0.074, ef_unit="tCO2/GJ"))
        assert r.tco2e == pytest.approx(5 * 42.652 * 0.074, rel=REL)  # FC × NCV × EF
        assert r.method == "FC×NCV×EF"

    def test_emission_factor_override_per_wan_nm3_with_nm3(self):
        r = one(dict(source="combustion", item="natural_gas", quantity=50_000, unit="Nm3", period="2025-03",
                     emission_factor=21.6, ef_unit="tCO2/万Nm3"))
        assert r.tco2e == pytest.approx(50_000 / 1e4 * 21.6, rel=REL)

    @pytest.mark.parametrize("unit,gj", [("GJ", 100.0), ("tce", 100 * 29.3076), ("MJ", 0.1)])
    def test_fuel_given_as_energy_needs_no_ncv(self, unit, gj):
        r = one(dict(source="combustion", item="raw_coal", quantity=100, unit=unit, period="2025-03"))
        assert r.activity_gj == pytest.approx(gj, rel=REL)
        assert r.tco2e == pytest.approx(gj * 26.37e-3 * 0.94 * 44 / 12, rel=REL)
        assert r.ncv_factor_id == ""

    def test_ncv_unit_that_does_not_fit_the_quantity(self):
        # refused while the activity data is normalised (the unit its factor is per), before any accounting
        with pytest.raises(ActivityDataError) as exc:
            acc([dict(source="combustion", item="natural_gas", quantity=5, unit="万Nm3", period="2025-03",
                      ncv=38.9, ncv_unit="GJ/t")])
        msg = str(exc.value)
        assert "row 2" in msg and "unit" in msg and "万Nm3" in msg


class TestProcess:
    def test_limestone_with_purity(self):
        r = one(dict(source="process", item="limestone", quantity=150_000, unit="t", period="2025-06", purity=0.93))
        assert r.tco2e == pytest.approx(150_000 * 0.93 * 0.4397, rel=REL)  # M × P × EF
        assert r.method == "M×P×EF"
        assert r.emission_factor_id == "stoich:limestone:emission_factor"
        assert r.purity == pytest.approx(0.93, rel=REL)

    @pytest.mark.parametrize("purity", [93, "93%", "0.93"])
    def test_limestone_purity_spellings(self, purity):
        r = one(dict(source="process", item="石灰石", quantity=150_000, unit="吨", period="2025-06", purity=purity))
        assert r.tco2e == pytest.approx(150_000 * 0.93 * 0.4397, rel=REL)

    def test_limestone_without_purity(self):
        r = one(dict(source="process", item="limestone", quantity=100, unit="t", period="2025-06"))
        assert r.tco2e == pytest.approx(100 * 0.4397, rel=REL)
        assert r.purity == pytest.approx(1.0, rel=REL)
        assert "purity not given" in r.notes

    def test_carbonate_with_site_factor(self):
        r = one(dict(source="process", item="dolomite", quantity=100, unit="t", period="2025-06",
                     emission_factor=0.46, ef_unit="tCO2/t", purity=0.9))
        assert r.tco2e == pytest.approx(100 * 0.9 * 0.46, rel=REL)


class TestIndirect:
    @pytest.mark.parametrize("qty,unit,mwh", [(9_850_000, "kWh", 9850.0), (9850, "MWh", 9850.0),
                                              (985, "万kWh", 9850.0), (9_850_000, "度", 9850.0)])
    def test_purchased_electricity_units(self, qty, unit, mwh):
        r = one(dict(source="purchased_electricity", item="grid", quantity=qty, unit=unit, period="2025-06"))
        # reporting year 2025, region CN: latest national factor ≤ 2025 is the 2023 one, 0.5306
        assert r.tco2e == pytest.approx(mwh * 0.5306, rel=REL)
        assert r.emission_factor_id == "mee-avg:CN:2023"
        assert "2023" in r.notes

    def test_purchased_electricity_year_and_region(self):
        led = acc([
            dict(source="purchased_electricity", item="grid", quantity=1000, unit="kWh", period="2023-05", region="CN-ZJ"),
            dict(source="purchased_electricity", item="grid", quantity=2, unit="万kWh", period="2022-05", region="浙江"),
            dict(source="purchased_electricity", item="grid", quantity=10, unit="MWh", period="2021-05", region="浙江"),
            dict(source="purchased_electricity", item="grid", quantity=10, unit="MWh", period="2022-05"),
        ])
        expected = [1.0 * 0.4974,   # 1 MWh × ZJ 2023
                    20 * 0.5617,    # 20 MWh × East China grid 2022 (no ZJ 2022 value)
                    10 * 0.5568,    # 10 MWh × national 2021 (no ZJ or East 2021 value)
                    10 * 0.5366]    # 10 MWh × national 2022
        np.testing.assert_allclose(led["tco2e"], expected, rtol=1e-12)
        assert led["emission_factor_id"].tolist() == ["mee-avg:CN-ZJ:2023", "mee-avg:CN-GRID-EAST:2022",
                                                      "mee-avg:CN:2021", "mee-avg:CN:2022"]

    def test_region_argument_is_the_default_region(self):
        led = acc([dict(source="purchased_electricity", item="grid", quantity=10, unit="MWh", period="2023-05"),
                   dict(source="purchased_electricity", item="grid", quantity=10, unit="MWh", period="2023-05",
                        region="四川")], region="华北")
        np.testing.assert_allclose(led["tco2e"], [10 * 0.6361, 10 * 0.1564], rtol=1e-12)

    def test_site_grid_factor(self):
        r = one(dict(source="purchased_electricity", item="grid", quantity=500, unit="kWh", period="2025-01",
                     emission_factor=0.45, ef_unit="tCO2/MWh"))
        assert r.tco2e == pytest.approx(0.5 * 0.45, rel=REL)

    def test_purchased_heat(self):
        r = one(dict(source="purchased_heat", item="heat", quantity=1200, unit="GJ", period="2025-06"))
        assert r.tco2e == pytest.approx(1200 * 0.11, rel=REL)
        assert r.emission_factor_id == "default:heat:emission_factor"

    def test_exported_electricity_and_heat_are_negative(self):
        led = acc([dict(source="exported_electricity", item="grid", quantity=3, unit="万kWh", period="2023-06",
                        region="CN-ZJ"),
                   dict(source="exported_heat", item="heat", quantity=8500, unit="GJ", period="2025-06")])
        np.testing.assert_allclose(led["tco2e"], [-(30 * 0.4974), -(8500 * 0.11)], rtol=1e-12)
        assert led["sign"].tolist() == [-1, -1]
        np.testing.assert_allclose(led["emission_t"], [30 * 0.4974, 8500 * 0.11], rtol=1e-12)


class TestGases:
    def test_sf6_ar5_vs_ar6(self):
        row = dict(source="process", item="sf6", quantity=0.003, unit="t", period="2025-06")
        r5 = one(row)
        r6 = one(row, gwp="AR6")
        assert r5.tco2e == pytest.approx(0.003 * 23500, rel=REL)
        assert r6.tco2e == pytest.approx(0.003 * 25200, rel=REL)
        assert (r5.gwp_factor_id, r6.gwp_factor_id) == ("ar5:sf6:gwp", "ar6:sf6:gwp")
        assert r5.gas == "SF6" and r5.emission_t == pytest.approx(0.003, rel=REL)
        assert r5.method == "m×GWP"

    def test_gwp_through_library(self):
        r = one(dict(source="process", item="六氟化硫", quantity=3, unit="kg", period="2025-06"),
                library=default_library("AR4"))
        assert r.tco2e == pytest.approx(0.003 * 22800, rel=REL)

    def test_ch4(self):
        led = acc([dict(source="process", item="ch4", quantity=2, unit="t", period="2025-06")], gwp="AR6")
        assert led["tco2e"].iloc[0] == pytest.approx(2 * 27.9, rel=REL)

    def test_co2_rows_weigh_one(self):
        r = one(dict(source="purchased_heat", item="heat", quantity=1, unit="GJ", period="2025-06"))
        assert r.gwp == 1.0 and r.gas == "CO2"


# =========================================================================== a whole inventory
MIXED = [
    dict(record_id="c1", facility="F01", source="combustion", item="raw_coal", quantity=100, unit="t", period="2025-01"),
    dict(record_id="c2", facility="F02", source="combustion", item="natural_gas", quantity=2, unit="万Nm3", period="2025-01"),
    dict(record_id="c3", facility="F01", source="combustion", item="diesel", quantity=10, unit="t", period="2025-02"),
    dict(record_id="p1", facility="F01", source="process", item="limestone", quantity=1000, unit="t", period="2025-01", purity=0.9),
    dict(record_id="p2", facility="F02", source="process", item="sf6", quantity=0.001, unit="t", period="2025-02"),
    dict(record_id="e1", facility="F01", source="purchased_electricity", item="grid", quantity=500, unit="MWh", period="2025-01"),
    dict(record_id="e2", facility="F02", source="purchased_electricity", item="grid", quantity=100_000, unit="kWh", period="2025-02"),
    dict(record_id="h1", facility="F02", source="purchased_heat", item="heat", quantity=300, unit="GJ", period="2025-01"),
    dict(record_id="x1", facility="F01", source="exported_electricity", item="grid", quantity=50, unit="MWh", period="2025-02"),
    dict(record_id="x2", facility="F02", source="exported_heat", item="heat", quantity=100, unit="GJ", period="2025-02"),
]
# hand computation of MIXED, by source (year 2025, region CN → grid 0.5306; AR5)
MIXED_BY_SOURCE = {
    "combustion": 100 * RAW_COAL_PER_T + 2 * NG_PER_WAN_NM3 + 10 * DIESEL_PER_T,
    "process": 1000 * 0.9 * 0.4397 + 0.001 * 23500,
    "purchased_electricity": 500 * 0.5306 + 100 * 0.5306,
    "purchased_heat": 300 * 0.11,
    "exported_electricity": -(50 * 0.5306),
    "exported_heat": -(100 * 0.11),
}


@pytest.fixture(scope="module")
def mixed():
    return acc(MIXED)


class TestLedger:
    def test_columns_and_one_row_per_record(self, mixed):
        assert list(mixed.columns) == LEDGER_COLUMNS
        assert mixed["record_id"].tolist() == [r["record_id"] for r in MIXED]
        assert mixed["row"].tolist() == list(range(2, 2 + len(MIXED)))

    def test_by_source_and_total(self, mixed):
        for s in SOURCES:
            got = mixed.loc[mixed["source"] == s, "tco2e"].sum()
            assert got == pytest.approx(MIXED_BY_SOURCE[s], rel=1e-12), s
        expected_total = total_emissions(
            MIXED_BY_SOURCE["combustion"], MIXED_BY_SOURCE["process"],
            MIXED_BY_SOURCE["purchased_electricity"], MIXED_BY_SOURCE["purchased_heat"],
            -MIXED_BY_SOURCE["exported_electricity"], -MIXED_BY_SOURCE["exported_heat"])
        assert mixed["tco2e"].sum() == pytest.approx(expected_total, rel=1e-12)
        s = summarize(mixed)
        assert s["total_tco2e"] == pytest.approx(expected_total, rel=1e-12)
        assert set(s["by_source"]) == set(SOURCES)
        assert s["by_gas"]["SF6"] == pytest.approx(0.001 * 23500, rel=1e-12)

    def test_every_row_carries_factor_ids_that_resolve(self, mixed):
        lib = default_library()
        table = lib.table.set_index("factor_id")
        for r in mixed.itertuples():
            ids = r.factor_ids.split(";")
            assert ids and all(ids), r.record_id
            for fid in ids:
                assert fid in table.index, f"{r.record_id}: {fid} is not in the factor library"
            # the value in the ledger is the value of the library row named by the id
            if r.ncv_factor_id:
                assert r.ncv == pytest.approx(table.at[r.ncv_factor_id, "value"], rel=REL)
            if r.carbon_content_factor_id:
                assert r.carbon_content == pytest.approx(table.at[r.carbon_content_factor_id, "value"], rel=REL)
            if r.oxidation_rate_factor_id:  # library in percent, ledger as a fraction
                assert r.oxidation_rate == pytest.approx(table.at[r.oxidation_rate_factor_id, "value"] / 100, rel=REL)
            if r.emission_factor_id:
                assert r.emission_factor == pytest.approx(table.at[r.emission_factor_id, "value"], rel=REL)
            if r.gwp_factor_id:
                assert r.gwp == pytest.approx(table.at[r.gwp_factor_id, "value"], rel=REL)

    def test_expected_factor_ids_per_source(self, mixed):
        ids = dict(zip(mixed["record_id"], mixed["factor_ids"]))
        assert ids["c2"] == ("gbt32151.22-2024:natural_gas:ncv;gbt32151.22-2024:natural_gas:carbon_content;"
                             "gbt32151.22-2024:natural_gas:oxidation_rate")
        assert ids["p1"] == "stoich:limestone:emission_factor"
        assert ids["p2"] == "ar5:sf6:gwp"
        assert ids["e1"] == "mee-avg:CN:2023"
        assert ids["h1"] == "default:heat:emission_factor"
        assert ids["x2"] == "default:heat:emission_factor"

    def test_site_ids_name_the_record(self):
        r = one(dict(source="combustion", item="raw_coal", quantity=1, unit="t", period="2025-01",
                     ncv=22, ncv_unit="GJ/t"))
        site_ids = [i for i in r.factor_ids.split(";") if i.startswith("site:")]
        assert site_ids == [r.ncv_factor_id]
        assert "row2" in r.ncv_factor_id
        lib_ids = [i for i in r.factor_ids.split(";") if not i.startswith("site:")]
        assert set(lib_ids) <= set(default_library().table["factor_id"])

    def test_edition_by_year(self):
        led = acc([dict(source="purchased_heat", item="heat", quantity=1, unit="GJ", period="2025-12"),
                   dict(source="purchased_heat", item="heat", quantity=1, unit="GJ", period="2026-01")])
        assert led["edition"].tolist() == ["GB/T 32150-2015", "GB/T 32150-2025"]
        assert led["year"].tolist() == [2025, 2026]

    def test_year_argument_for_records_without_period(self):
        led = account(pd.DataFrame([dict(source="purchased_heat", item="heat", quantity=1, unit="GJ")]), year=2026)
        assert led["edition"].iloc[0] == "GB/T 32150-2025"
        assert led["period"].iloc[0] == "2026"

    def test_no_period_and_no_year_is_an_error(self):
        with pytest.raises(AccountingError, match="row 2"):
            account(pd.DataFrame([dict(source="purchased_heat", item="heat", quantity=1, unit="GJ")]))

    def test_facility_scoped_override_in_the_engine(self):
        lib = default_library().with_override("raw_coal", "ncv", 23.0, "GJ/t", document="F01 lab", facility="F01")
        led = acc([dict(facility="F01", source="combustion", item="raw_coal", quantity=10, unit="t", period="2025-01"),
                   dict(facility="F02", source="combustion", item="raw_coal", quantity=10, unit="t", period="2025-01")],
                  library=lib)
        np.testing.assert_allclose(led["tco2e"], [10 * 23.0 * 26.37e-3 * 0.94 * 44 / 12,
                                                  10 * 20.908 * 26.37e-3 * 0.94 * 44 / 12], rtol=1e-12)
        assert led["ncv_factor_id"].tolist() == ["site:F01:raw_coal:ncv", "gbt2589:raw_coal:ncv"]

    def test_facility_override_reaches_records_on_its_processes(self):
        from workbench.core.boundary import Boundary

        b = Boundary(pd.DataFrame({
            "node_id": ["ENT", "F01", "F01.W1", "F01.W1.P1", "F02"],
            "parent_id": ["", "ENT", "F01", "F01.W1", "ENT"],
            "level": ["enterprise", "facility", "workshop", "process", "facility"],
        }))
        lib = default_library().with_override("raw_coal", "ncv", 23.0, "GJ/t", document="F01 lab", facility="F01")
        act = pd.DataFrame([dict(node_id="F01.W1.P1", source="combustion", item="raw_coal", quantity=10, unit="t", period="2025-01"),
                            dict(node_id="F02", source="combustion", item="raw_coal", quantity=10, unit="t", period="2025-01")])
        led = account(act, lib, boundary=b)
        assert led["ncv"].tolist() == [23.0, 20.908]  # the kiln under F01 takes F01's lab value
        assert led["facility"].tolist() == ["F01", "F02"]

    def test_factor_set_choice(self):
        led = acc([dict(source="purchased_electricity", item="grid", quantity=10, unit="MWh", period="2023-01")],
                  factor_sets={("electricity", "emission_factor"): ["MEE-fossil-only"]})
        assert led["tco2e"].iloc[0] == pytest.approx(10 * 0.8273, rel=REL)

    def test_attrs(self, mixed):
        assert mixed.attrs["gwp_set"] == "AR5"
        assert mixed.attrs["factor_library_version"] == default_library().version
        assert mixed.attrs["standard"] == "GB/T 32150"

    def test_default_facility_is_the_enterprise(self):
        r = one(dict(source="purchased_heat", item="heat", quantity=1, unit="GJ", period="2025-01"))
        assert r.facility == "enterprise" and r.node_id == "enterprise"


# =========================================================================== the cube
class TestCube:
    def test_rollups_equal_ledger_sums(self, mixed):
        ds = to_cube(mixed)
        assert ds["tco2e"].dims == ("period", "facility", "source")
        by_period = mixed.groupby("period")["tco2e"].sum()
        for p, v in by_period.items():
            assert float(ds["enterprise_tco2e"].sel(period=p)) == pytest.approx(v, rel=1e-12)
            assert float(ds["tco2e"].sel(period=p).sum()) == pytest.approx(v, rel=1e-12)
        for f, v in mixed.groupby("facility")["tco2e"].sum().items():
            assert float(ds["total_tco2e"].sel(facility=f).sum()) == pytest.approx(v, rel=1e-12)
        for s in SOURCES:
            assert float(ds["tco2e"].sel(source=s).sum()) == pytest.approx(MIXED_BY_SOURCE[s], rel=1e-12)
        for (p, f, s), v in mixed.groupby(["period", "facility", "source"])["tco2e"].sum().items():
            assert float(ds["tco2e"].sel(period=p, facility=f, source=s)) == pytest.approx(v, rel=1e-12)
        assert float(ds["tco2e"].sum()) == pytest.approx(mixed["tco2e"].sum(), rel=1e-12)
        # empty cells are zero, exported cells negative
        assert float(ds["tco2e"].sel(period="2025-01", facility="F01", source="exported_heat")) == 0.0
        assert float(ds["tco2e"].sel(period="2025-02", facility="F01", source="exported_electricity")) < 0

    def test_cube_to_frame(self, mixed):
        fr = cube_to_frame(to_cube(mixed))
        assert len(fr) == 2 * 2 * 6
        assert fr["tco2e"].sum() == pytest.approx(mixed["tco2e"].sum(), rel=1e-12)

    def test_carbon_efficiency_where_value_added_is_known(self, mixed):
        va = pd.DataFrame([dict(period="2025-01", node_id="F01", value_added=1000.0),
                           dict(period="2025-02", node_id="F02", value_added=250.0),
                           dict(period="2025-01", node_id="ENT", value_added=4000.0),
                           dict(period="2025-01", node_id="F99", value_added=1.0)])  # not in the ledger: ignored
        ds = to_cube(mixed, value_added=va, enterprise="ENT")
        tot = mixed.groupby(["period", "facility"])["tco2e"].sum()
        ce = ds["carbon_efficiency"]
        assert float(ce.sel(period="2025-01", facility="F01")) == pytest.approx(tot["2025-01", "F01"] / 1000.0, rel=1e-12)
        assert float(ce.sel(period="2025-02", facility="F02")) == pytest.approx(tot["2025-02", "F02"] / 250.0, rel=1e-12)
        assert np.isnan(float(ce.sel(period="2025-02", facility="F01")))
        assert np.isnan(float(ce.sel(period="2025-01", facility="F02")))
        assert np.isnan(float(ds["value_added"].sel(period="2025-01", facility="F02")))
        ent = ds["enterprise_carbon_efficiency"]
        jan = mixed.loc[mixed["period"] == "2025-01", "tco2e"].sum()
        assert float(ent.sel(period="2025-01")) == pytest.approx(jan / 4000.0, rel=1e-12)
        assert np.isnan(float(ent.sel(period="2025-02")))
        assert ds["carbon_efficiency"].attrs["units"] == "tCO2e/万元"

    def test_intensity_per_product(self, mixed):
        out = pd.DataFrame([dict(period="2025-01", node_id="F01", product="clinker", quantity=800.0),
                            dict(period="2025-02", node_id="F01", product="clinker", quantity=0.0)])
        ds = to_cube(mixed, output=out)
        tot = mixed.groupby(["period", "facility"])["tco2e"].sum()
        it = ds["intensity_clinker"]
        assert float(it.sel(period="2025-01", facility="F01")) == pytest.approx(tot["2025-01", "F01"] / 800.0, rel=1e-12)
        assert np.isnan(float(it.sel(period="2025-02", facility="F01")))  # zero output: no intensity
        assert np.isnan(float(it.sel(period="2025-01", facility="F02")))
        assert float(ds["output_clinker"].sel(period="2025-01", facility="F01")) == 800.0

    def test_facility_names(self, mixed):
        ds = to_cube(mixed, facility_names={"F01": "熟料线"})
        assert ds["facility_name"].values.tolist() == ["熟料线", "F02"]


class TestEfficiencyFunctions:
    def test_carbon_efficiency(self):
        assert float(carbon_efficiency(90, 3200)) == pytest.approx(90 / 3200, rel=REL)
        # 32,000,000 元 = 3200 万元
        assert float(carbon_efficiency(90, 3.2e7, "元")) == pytest.approx(90 / 3200, rel=REL)
        assert np.isnan(carbon_efficiency(90, 0.0))
        assert np.isnan(carbon_efficiency(90, np.nan))
        np.testing.assert_allclose(carbon_efficiency([10, 20], [5, -1]), [2.0, np.nan])

    def test_carbon_intensity(self):
        assert float(carbon_intensity(800, 1000)) == pytest.approx(0.8, rel=REL)
        assert np.isnan(carbon_intensity(800, 0))


# =========================================================================== the engine calls the formulas
# Each source once: the hand computation from the standard's formula, the clause-level formula
# function (the documented one) and the engine's ledger must give the same number.
FORMULA_CASES = {
    # FC × NCV × CC × OF × 44/12: 100 t raw coal, NCV 20.908 GJ/t, CC 26.37 tC/TJ, OF 94 %
    "combustion": (dict(source="combustion", item="raw_coal", quantity=100, unit="t", period="2025-03"),
                   100 * 20.908 * 26.37e-3 * 0.94 * 44 / 12,
                   lambda: fuel_combustion(Qu(100, "t"), Qu(20.908, "GJ/t"), Qu(26.37, "tC/TJ"), Qu(94, "%"))),
    # M × P × EF: 150,000 t limestone, 93 % CaCO3, 0.4397 tCO2/t
    "process": (dict(source="process", item="limestone", quantity=150_000, unit="t", period="2025-06", purity=0.93),
                150_000 * 0.93 * 0.4397,
                lambda: carbonate_decomposition(Qu(150_000, "t"), Qu(0.4397, "tCO2/t"), 0.93)),
    # AD × EF_grid: 9,850,000 kWh = 9850 MWh × 0.5306 (national 2023, the latest ≤ 2025)
    "purchased_electricity": (dict(source="purchased_electricity", item="grid", quantity=9_850_000, unit="kWh",
                                   period="2025-06"),
                              9850 * 0.5306,
                              lambda: electricity_emissions(Qu(9_850_000, "kWh"), Qu(0.5306, "tCO2/MWh"))),
    # AD × EF_heat: 1200 GJ × 0.11 tCO2/GJ
    "purchased_heat": (dict(source="purchased_heat", item="heat", quantity=1200, unit="GJ", period="2025-06"),
                       1200 * 0.11,
                       lambda: heat_emissions(Qu(1200, "GJ"), Qu(0.11, "tCO2/GJ"))),
    # subtracted: −(30 MWh × 0.5306)
    "exported_electricity": (dict(source="exported_electricity", item="grid", quantity=3, unit="万kWh", period="2025-06"),
                             -(30 * 0.5306),
                             lambda: -electricity_emissions(Qu(3, "万kWh"), Qu(0.5306, "tCO2/MWh"))),
    # subtracted: −(8500 GJ × 0.11)
    "exported_heat": (dict(source="exported_heat", item="heat", quantity=8500, unit="GJ", period="2025-06"),
                      -(8500 * 0.11),
                      lambda: -heat_emissions(Qu(8500, "GJ"), Qu(0.11, "tCO2/GJ"))),
}


class TestEngineCallsTheFormulas:
    @pytest.mark.parametrize("source", list(FORMULA_CASES))
    def test_hand_formula_function_and_engine_agree(self, source):
        record, hand, formula = FORMULA_CASES[source]
        assert formula().to("tCO2").magnitude == pytest.approx(hand, rel=REL)
        assert one(record).tco2e == pytest.approx(hand, rel=REL)

    def test_every_source_has_a_case(self):
        assert set(FORMULA_CASES) == set(SOURCES)

    def test_gas_hand_formula_function_and_engine_agree(self):
        hand = 0.003 * 23500  # m × GWP, SF6 AR5
        assert co2_equivalent(Qu(3, "kg"), Qu(23500, "tCO2e/t")).magnitude == pytest.approx(hand, rel=REL)
        assert one(dict(source="process", item="sf6", quantity=3, unit="kg", period="2025-06")).tco2e == pytest.approx(hand, rel=REL)

    # (module, function, record, what the engine's result must become when the function's result doubles)
    SPIES = [
        ("combustion", "activity_energy",
         dict(source="combustion", item="raw_coal", quantity=100, unit="t", period="2025-03"),
         2 * 100 * 20.908 * 26.37e-3 * 0.94 * 44 / 12),
        ("combustion", "emission_factor_from_carbon_content",
         dict(source="combustion", item="natural_gas", quantity=10, unit="万Nm3", period="2025-03"),
         2 * 10 * 389.31 * 15.3e-3 * 0.99 * 44 / 12),
        ("combustion", "combustion_emissions",
         dict(source="combustion", item="diesel", quantity=5, unit="t", period="2025-03", emission_factor=3.1, ef_unit="tCO2/t"),
         2 * 5 * 3.1),
        ("process", "carbonate_decomposition",
         dict(source="process", item="limestone", quantity=1000, unit="t", period="2025-06", purity=0.9),
         2 * 1000 * 0.9 * 0.4397),
        ("indirect", "electricity_emissions",
         dict(source="purchased_electricity", item="grid", quantity=500, unit="MWh", period="2025-01"),
         2 * 500 * 0.5306),
        ("indirect", "heat_emissions",
         dict(source="exported_heat", item="heat", quantity=100, unit="GJ", period="2025-02"),
         -2 * 100 * 0.11),
        ("gases", "co2_equivalent",
         dict(source="process", item="sf6", quantity=0.001, unit="t", period="2025-02"),
         2 * 0.001 * 23500),
    ]

    @pytest.mark.parametrize("module,name,record,doubled", SPIES, ids=[s[1] for s in SPIES])
    def test_engine_result_is_the_formula_functions(self, monkeypatch, module, name, record, doubled):
        """Double what the formula function returns: the ledger must double with it."""
        import importlib

        mod = importlib.import_module(f"workbench.accounting.{module}")
        original = getattr(mod, name)
        calls = []

        def spy(*args):
            calls.append(args)
            return original(*args) * 2

        monkeypatch.setattr(mod, name, spy)
        r = one(record)
        assert calls, f"the engine did not call {module}.{name}"
        assert all(isinstance(a, pint.Quantity) for a in calls[0])
        assert r.tco2e == pytest.approx(doubled, rel=REL)

    def test_formulas_are_called_once_per_unit_group_on_whole_columns(self, monkeypatch):
        import workbench.accounting.indirect as indirect

        original = indirect.electricity_emissions
        calls = []

        def spy(ad, ef):
            calls.append((str(ad.units), len(ad.magnitude)))
            return original(ad, ef)

        monkeypatch.setattr(indirect, "electricity_emissions", spy)
        rows = ([dict(source="purchased_electricity", item="grid", quantity=100 + i, unit="MWh", period="2025-01")
                 for i in range(30)]
                + [dict(source="purchased_electricity", item="grid", quantity=1000 * i, unit="kWh", period="2025-01")
                   for i in range(20)])
        led = acc(rows)
        assert sorted(calls) == [("kilowatt_hour", 20), ("megawatt_hour", 30)]
        expected = [(100 + i) * 0.5306 for i in range(30)] + [i * 0.5306 for i in range(20)]
        np.testing.assert_allclose(led["tco2e"], expected, rtol=1e-12)

    def test_fuel_formulas_take_pint_arrays(self):
        """The vectorised call the engine makes: arrays of FC, NCV, CC and OF."""
        fc = Qu(np.array([100.0, 12_000.0]), "t")
        ncv = Qu(np.array([20.908, 22.35]), "GJ/t")
        ad = activity_energy(fc, ncv)
        ef = emission_factor_from_carbon_content(Qu(np.array([26.37, 26.37]), "tC/TJ"), Qu(np.array([94.0, 94.0]), "percent"))
        e = combustion_emissions(ad, ef)
        np.testing.assert_allclose(e.to("tCO2").magnitude,
                                   np.array([100 * 20.908, 12_000 * 22.35]) * 26.37e-3 * 0.94 * 44 / 12, rtol=1e-12)
