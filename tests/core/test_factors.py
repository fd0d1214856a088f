"""Factor library (workbench.core.factors): provenance, look-up rules, overrides, GWP sets.

Expected values are the published figures as listed in /work/shared/reference/accounting-facts.md
(GB/T 32151.22-2024 Table C.1, MEE/NBS electricity notices, IPCC GWP-100 tables), typed here by hand.
"""
from __future__ import annotations

from importlib import resources

import pandas as pd
import pytest
from click.testing import CliRunner

from workbench.cli.main import main
from workbench.core.factors import (
    FACTOR_FILES,
    Factor,
    FactorLibrary,
    FactorNotFoundError,
    UnknownItemError,
    UnknownRegionError,
    default_library,
)
from workbench.core.units import UnitError, parse_unit

REL = 1e-12
KINDS = {"ncv", "carbon_content", "oxidation_rate", "emission_factor", "gwp"}


def _csv(name: str) -> pd.DataFrame:
    path = resources.files("workbench.core.factors") / "data" / name
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.concat([_csv(f).assign(_file=f) for f in FACTOR_FILES], ignore_index=True)


@pytest.fixture(scope="module")
def lib() -> FactorLibrary:
    return default_library()


# --------------------------------------------------------------------------- the shipped tables
def test_every_row_has_provenance(raw):
    for col in ("factor_id", "factor_set", "item", "kind", "value", "unit", "document", "table", "verified"):
        blank = raw[col].str.strip().eq("")
        assert not blank.any(), f"{col} blank in {raw.loc[blank, 'factor_id'].tolist()}"
    assert set(raw["verified"].str.lower()) <= {"true", "false"}
    assert set(raw["kind"]) <= KINDS


def test_factor_ids_are_unique(raw):
    dup = raw.loc[raw["factor_id"].duplicated(), "factor_id"].tolist()
    assert dup == []


def test_every_factor_item_is_in_items_csv(raw):
    items = set(_csv("items.csv")["item"])
    assert set(raw["item"]) - items == set()


def test_every_region_is_in_regions_csv(raw):
    regions = set(_csv("regions.csv")["region"])
    used = set(raw["region"]) - {""}
    assert used - regions == set()


def test_regions_parent_chain_ends_at_cn():
    reg = _csv("regions.csv")
    parents = dict(zip(reg["region"], reg["parent"]))
    for r in reg["region"]:
        seen = [r]
        while parents[seen[-1]]:
            seen.append(parents[seen[-1]])
            assert len(seen) < 5
        assert seen[-1] == "CN"


def test_every_unit_parses_and_every_value_is_a_number(raw):
    for u in raw["unit"].unique():
        parse_unit(u)
    assert pd.to_numeric(raw["value"], errors="coerce").notna().all()


def test_items_have_unique_codes_and_known_categories():
    items = _csv("items.csv")
    assert not items["item"].duplicated().any()
    assert set(items["category"]) <= {"fuel", "carbonate", "electricity", "heat", "gas"}
    for u in items["default_unit"]:
        parse_unit(u)


def test_library_refuses_duplicate_ids(raw):
    table = pd.concat([raw, raw.iloc[[0]]], ignore_index=True).drop(columns="_file")
    with pytest.raises(ValueError, match="duplicate factor ids"):
        FactorLibrary(table)


def test_unverified_figures_are_marked(raw):
    # the reference marks raw-coal CC/OF and the circulating NDRC table as UNVERIFIED
    unv = raw[raw["verified"].str.lower() == "false"]
    assert set(unv["factor_set"]) >= {"NDRC-circulating-UNVERIFIED"}
    assert {"ndrc-guideline:raw_coal:carbon_content", "ndrc-guideline:raw_coal:oxidation_rate"} <= set(unv["factor_id"])


# --------------------------------------------------------------------------- published values
@pytest.mark.parametrize("item,kind,value,unit", [
    # GB/T 32151.22-2024 Table C.1
    ("natural_gas", "ncv", 389.31, "GJ/(10^4 Nm3)"),
    ("natural_gas", "carbon_content", 15.3, "tC/TJ"),
    ("natural_gas", "oxidation_rate", 99, "percent"),
    ("diesel", "ncv", 42.652, "GJ/t"),
    ("diesel", "carbon_content", 20.2, "tC/TJ"),
    ("diesel", "oxidation_rate", 98, "percent"),
    ("anthracite", "ncv", 26.7, "GJ/t"),
    ("coke_oven_gas", "ncv", 179.81, "GJ/(10^4 Nm3)"),
    # GB/T 2589 raw coal average NCV
    ("raw_coal", "ncv", 20.908, "GJ/t"),
    # heat default, stoichiometric CaCO3
    ("heat", "emission_factor", 0.11, "tCO2/GJ"),
    ("limestone", "emission_factor", 0.4397, "tCO2/t"),
    ("dolomite", "emission_factor", 0.4773, "tCO2/t"),
])
def test_published_default_values(lib, item, kind, value, unit):
    f = lib.lookup(item, kind, year=2025)
    assert f.value == pytest.approx(value, rel=REL)
    assert parse_unit(f.unit) == parse_unit(unit)
    assert f.document and f.table


def test_caco3_factor_is_the_stoichiometric_ratio(lib):
    # M(CO2) = 12.011 + 2 × 15.999 = 44.009; M(CaCO3) = 40.078 + 12.011 + 3 × 15.999 = 100.086
    ratio = (12.011 + 2 * 15.999) / (40.078 + 12.011 + 3 * 15.999)
    f = lib.lookup("limestone", "emission_factor")
    assert f.value == pytest.approx(0.4397, rel=REL)
    assert round(ratio, 4) == 0.4397


def test_heat_default_is_0_11(lib):
    f = lib.lookup("热力", "emission_factor", year=2025, region="CN-ZJ")
    assert f.value == pytest.approx(0.11, rel=REL)
    assert f.quantity.to("tCO2/GJ").magnitude == pytest.approx(0.11, rel=REL)


# --------------------------------------------------------------------------- names
@pytest.mark.parametrize("name,code", [
    ("原煤", "raw_coal"), ("煤炭", "raw_coal"), ("天然气", "natural_gas"), ("NG", "natural_gas"),
    ("Natural gas", "natural_gas"), ("柴油", "diesel"), ("石灰石", "limestone"), ("碳酸钙", "limestone"),
    ("CaCO3", "limestone"), ("电力", "grid"), ("热力", "heat"), ("蒸汽", "heat"), ("六氟化硫", "sf6"),
    ("SF6", "sf6"), ("甲烷", "ch4"), ("LNG", "lng"), ("raw_coal", "raw_coal"), ("Raw coal", "raw_coal"),
])
def test_item_code_by_chinese_or_english_name(lib, name, code):
    assert lib.item_code(name) == code


def test_lookup_by_chinese_name_returns_the_same_factor(lib):
    assert lib.lookup("天然气", "ncv").factor_id == lib.lookup("natural_gas", "ncv").factor_id
    assert lib.lookup("原煤", "ncv").value == pytest.approx(20.908, rel=REL)


def test_unknown_item(lib):
    with pytest.raises(UnknownItemError) as exc:
        lib.lookup("unobtainium", "ncv")
    assert "unobtainium" in str(exc.value)


def test_factor_not_found(lib):
    with pytest.raises(FactorNotFoundError):
        lib.lookup("grid", "ncv")


@pytest.mark.parametrize("name,code", [
    ("浙江", "CN-ZJ"), ("CN-ZJ", "CN-ZJ"), ("Zhejiang", "CN-ZJ"), ("华东", "CN-GRID-EAST"),
    ("华东电网", "CN-GRID-EAST"), ("全国", "CN"), ("national", "CN"), (None, "CN"), ("", "CN"),
])
def test_region_names(lib, name, code):
    assert lib.region_code(name) == code


def test_unknown_region(lib):
    with pytest.raises(UnknownRegionError, match="Atlantis"):
        lib.lookup("grid", "emission_factor", year=2023, region="Atlantis")


def test_region_chain(lib):
    assert lib.region_chain("浙江") == ["CN-ZJ", "CN-GRID-EAST", "CN"]
    assert lib.region_chain("CN") == ["CN"]


# --------------------------------------------------------------------------- grid factor: year and region
def test_grid_province_exact_year(lib):
    f = lib.lookup("grid", "emission_factor", year=2023, region="CN-ZJ")
    assert (f.factor_id, f.value, f.year, f.region) == ("mee-avg:CN-ZJ:2023", 0.4974, 2023, "CN-ZJ")
    assert f.selection == ""
    assert "公告2025年第47号" in f.document


def test_grid_latest_year_not_after_reporting_year(lib):
    # nothing published for 2025 yet: the 2023 Zhejiang factor (latest ≤ 2025)
    f = lib.lookup("grid", "emission_factor", year=2025, region="浙江")
    assert f.value == pytest.approx(0.4974, rel=REL)
    assert f.year == 2023
    assert "2025" in f.selection and "2023" in f.selection


def test_grid_province_falls_back_to_grid_region(lib):
    # no provincial factor for 2022 → East China grid 2022 = 0.5617
    f = lib.lookup("grid", "emission_factor", year=2022, region="CN-ZJ")
    assert f.value == pytest.approx(0.5617, rel=REL)
    assert (f.region, f.year) == ("CN-GRID-EAST", 2022)
    assert "CN-ZJ" in f.selection and "CN-GRID-EAST" in f.selection


def test_grid_falls_back_to_national(lib):
    # neither Zhejiang nor East China published for 2021 → national 2021 = 0.5568
    f = lib.lookup("grid", "emission_factor", year=2021, region="CN-ZJ")
    assert f.value == pytest.approx(0.5568, rel=REL)
    assert (f.region, f.year) == ("CN", 2021)
    assert "CN-ZJ" in f.selection and "CN used" in f.selection


def test_grid_region_and_year_fallback_combined(lib):
    # Tibet: no provincial factor; South-West grid only for 2022 → 0.2268, both fallbacks stated
    f = lib.lookup("grid", "emission_factor", year=2023, region="CN-XZ")
    assert f.value == pytest.approx(0.2268, rel=REL)
    assert (f.region, f.year) == ("CN-GRID-SOUTHWEST", 2022)
    assert "CN-XZ" in f.selection and "CN-GRID-SOUTHWEST" in f.selection
    assert "no 2023 value" in f.selection and "2022" in f.selection


def test_grid_earliest_when_none_earlier(lib):
    # reporting year 2020 precedes every published national factor → the earliest, 2021 = 0.5568
    f = lib.lookup("grid", "emission_factor", year=2020, region="CN")
    assert f.value == pytest.approx(0.5568, rel=REL)
    assert f.year == 2021
    assert "earliest" in f.selection and "2020" in f.selection


def test_grid_national_by_year(lib):
    assert lib.lookup("grid", "emission_factor", year=2021).value == pytest.approx(0.5568, rel=REL)
    assert lib.lookup("grid", "emission_factor", year=2022).value == pytest.approx(0.5366, rel=REL)
    assert lib.lookup("grid", "emission_factor", year=2023).value == pytest.approx(0.5306, rel=REL)
    assert lib.lookup("grid", "emission_factor", year=2030).value == pytest.approx(0.5306, rel=REL)


def test_grid_regional_by_year(lib):
    assert lib.lookup("grid", "emission_factor", year=2021, region="华北").value == pytest.approx(0.7120, rel=REL)
    assert lib.lookup("grid", "emission_factor", year=2022, region="华北").value == pytest.approx(0.6776, rel=REL)
    assert lib.lookup("grid", "emission_factor", year=2023, region="华北").value == pytest.approx(0.6361, rel=REL)
    # Beijing 2023 provincial, Beijing 2022 → North China grid 2022
    assert lib.lookup("grid", "emission_factor", year=2023, region="北京").value == pytest.approx(0.5554, rel=REL)
    assert lib.lookup("grid", "emission_factor", year=2022, region="北京").value == pytest.approx(0.6776, rel=REL)


def test_grid_no_year_takes_latest(lib):
    f = lib.lookup("grid", "emission_factor", region="CN")
    assert (f.year, f.value) == (2023, 0.5306)
    assert "latest" in f.selection


def test_requested_factor_set(lib):
    f = lib.lookup("grid", "emission_factor", year=2022, region="CN", factor_set="MEE-fossil-only")
    assert (f.factor_id, f.value) == ("mee-fossil:CN:2022", 0.8325)
    f = lib.lookup("grid", "emission_factor", year=2023, factor_set="carbon-market-power-2023-2025")
    assert f.value == pytest.approx(0.5703, rel=REL)


def test_missing_factor_set_falls_back_and_says_so(lib):
    f = lib.lookup("grid", "emission_factor", year=2023, region="CN", factor_set="no-such-set")
    assert f.factor_id == "mee-avg:CN:2023"
    assert "no-such-set" in f.selection
    assert not f.selection.rstrip().endswith(";")


def test_library_level_factor_set_choice(lib):
    alt = FactorLibrary(lib.table, factor_sets={("fuel", "ncv"): ["NDRC-circulating-UNVERIFIED"]})
    f = alt.lookup("diesel", "ncv", year=2025)
    assert f.value == pytest.approx(43.33, rel=REL)
    assert not f.verified
    assert "[UNVERIFIED]" in f.provenance


def test_factor_provenance_and_quantity(lib):
    f = lib.lookup("natural_gas", "ncv")
    assert isinstance(f, Factor)
    assert "GB/T 32151.22-2024" in f.provenance and "Table C.1" in f.provenance
    assert f.quantity.to("GJ/Nm3").magnitude == pytest.approx(389.31 / 1e4, rel=REL)


# --------------------------------------------------------------------------- overrides
def test_site_override_wins_and_keeps_its_document(lib):
    site = lib.with_override("原煤", "ncv", 22.35, "GJ/t", document="lab report 2025-06 #17", table="sheet 3")
    f = site.lookup("raw_coal", "ncv", year=2025)
    assert f.value == pytest.approx(22.35, rel=REL)
    assert f.factor_set == "site"
    assert f.document == "lab report 2025-06 #17" and f.table == "sheet 3"
    assert "site-measured" in f.selection
    assert site.overrides["document"].tolist() == ["lab report 2025-06 #17"]
    # the original library is untouched
    assert lib.lookup("raw_coal", "ncv", year=2025).value == pytest.approx(20.908, rel=REL)
    assert len(lib.overrides) == 0


def test_facility_override_only_for_that_facility(lib):
    site = lib.with_override("raw_coal", "ncv", 23.0, "GJ/t", document="F01 lab", facility="F01")
    assert site.lookup("raw_coal", "ncv", year=2025, facility="F01").value == pytest.approx(23.0, rel=REL)
    assert site.lookup("raw_coal", "ncv", year=2025, facility="F02").value == pytest.approx(20.908, rel=REL)
    assert site.lookup("raw_coal", "ncv", year=2025).value == pytest.approx(20.908, rel=REL)


def test_facility_override_beats_enterprise_override(lib):
    site = (lib.with_override("raw_coal", "ncv", 23.0, "GJ/t", document="F01 lab", facility="F01")
               .with_override("raw_coal", "ncv", 21.0, "GJ/t", document="enterprise lab"))
    assert site.lookup("raw_coal", "ncv", facility="F01").value == pytest.approx(23.0, rel=REL)
    assert site.lookup("raw_coal", "ncv", facility="F01").document == "F01 lab"
    assert site.lookup("raw_coal", "ncv", facility="F02").value == pytest.approx(21.0, rel=REL)
    assert site.lookup("raw_coal", "ncv").document == "enterprise lab"
    assert len(site.overrides) == 2


def test_override_needs_a_document_and_a_valid_unit(lib):
    with pytest.raises(ValueError, match="document"):
        lib.with_override("raw_coal", "ncv", 22.0, "GJ/t", document="")
    with pytest.raises(UnitError):
        lib.with_override("raw_coal", "ncv", 22.0, "bananas/t", document="lab")
    with pytest.raises(UnknownItemError):
        lib.with_override("unobtainium", "ncv", 22.0, "GJ/t", document="lab")


# --------------------------------------------------------------------------- GWP
@pytest.mark.parametrize("gwp_set,gas,value", [
    ("SAR", "sf6", 23900), ("AR4", "sf6", 22800), ("AR5", "sf6", 23500), ("AR6", "sf6", 25200),
    ("SAR", "ch4", 21), ("AR4", "ch4", 25), ("AR5", "ch4", 28), ("AR6", "ch4", 27.9),
    ("AR4", "n2o", 298), ("AR5", "n2o", 265), ("AR6", "n2o", 273),
    ("AR4", "nf3", 17200), ("AR5", "nf3", 16100), ("AR6", "nf3", 17400),
    ("AR5", "hfc_134a", 1300), ("AR6", "hfc_134a", 1530), ("AR6", "ch4_fossil", 29.8),
    ("AR5", "co2", 1),
])
def test_gwp_sets(gwp_set, gas, value):
    f = default_library(gwp_set).lookup(gas, "gwp")
    assert f.value == pytest.approx(value, rel=REL)
    assert f.factor_set == gwp_set


def test_gwp_by_chinese_name_and_default_set(lib):
    assert lib.gwp_set == "AR5"
    assert lib.lookup("六氟化硫", "gwp").value == pytest.approx(23500, rel=REL)
    assert lib.with_gwp("ar6").lookup("六氟化硫", "gwp").value == pytest.approx(25200, rel=REL)


@pytest.mark.parametrize("bad", ["AR7", "TAR", ""])
def test_unknown_gwp_set(lib, bad):
    with pytest.raises(ValueError, match="unknown GWP set"):
        FactorLibrary(gwp_set=bad)
    with pytest.raises(ValueError, match="unknown GWP set"):
        lib.with_gwp(bad)


def test_factor_sets_table(lib):
    t = lib.factor_sets_table()
    assert {"GBT32151.22-2024", "MEE-average", "stoichiometric", "default-heat", "AR5"} <= set(t["factor_set"])
    assert t["factors"].sum() == len(lib.table)


# --------------------------------------------------------------------------- `workbench factors`
def test_cli_factors_lookup_chinese_name():
    r = CliRunner().invoke(main, ["factors", "lookup", "天然气", "ncv"])
    assert r.exit_code == 0, r.output
    assert "gbt32151.22-2024:natural_gas:ncv: 389.31" in r.output
    assert "GB/T 32151.22-2024" in r.output


def test_cli_factors_lookup_grid_states_the_choice():
    r = CliRunner().invoke(main, ["factors", "lookup", "grid", "emission_factor", "--year", "2022",
                                  "--region", "浙江"])
    assert r.exit_code == 0, r.output
    assert "mee-avg:CN-GRID-EAST:2022: 0.5617" in r.output
    assert "chosen:" in r.output and "CN-GRID-EAST" in r.output


def test_cli_factors_lookup_gwp_set():
    r = CliRunner().invoke(main, ["factors", "lookup", "sf6", "gwp", "--gwp", "AR4"])
    assert r.exit_code == 0, r.output
    assert "22800" in r.output


def test_cli_factors_lookup_unknown_item_exits_2():
    r = CliRunner().invoke(main, ["factors", "lookup", "unobtainium", "ncv"])
    assert r.exit_code == 2
    assert "unobtainium" in r.output


def test_cli_factors_sets():
    r = CliRunner().invoke(main, ["factors", "sets"])
    assert r.exit_code == 0, r.output
    assert "MEE-average" in r.output and "GBT32151.22-2024" in r.output
