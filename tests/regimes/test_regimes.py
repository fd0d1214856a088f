"""The methodology seam: regimes (GB/T 32150 and plug-ins), sectors, and the engine, inventory and
report following the regime they are given.

Known answers by hand (factors typed from the published tables, not read from the package):
    natural gas NCV 389.31 GJ/万Nm3, CC 15.3 tC/TJ, OF 99 % · grid CN 2023 0.5306 tCO2/MWh
    heat 0.11 tCO2/GJ · SF6 GWP AR5 23500
    clinker E = Q × [(CaO − CaO_nc) × 44/56 + (MgO − MgO_nc) × 44/40]
"""
from __future__ import annotations

import ast
import importlib
import re
import sys
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import pytest

from workbench import regimes
from workbench.accounting import (
    SIGN,
    SOURCE_NAMES_EN,
    SOURCE_NAMES_ZH,
    SOURCES,
    AccountingError,
    account,
    summarize,
    to_cube,
)
from workbench.core.activity import ActivityDataError, normalize_activity
from workbench.core.units import Q_
from workbench.inventory.compute import compute_inventory, enterprise_products
from workbench.lake.catalog import open_catalog, write_demo_catalog
from workbench.regimes import (
    EmissionSource,
    Product,
    RegimeError,
    ReportSection,
    Sector,
    UnknownRegimeError,
    get_regime,
)
from workbench.regimes.gbt32150 import GBT32150
from workbench.regimes.sectors import cement
from workbench.reports.inventory import render_html, report_sections

ROOT = Path(__file__).resolve().parents[2]
REL = 1e-12
NG_PER_WAN_NM3 = 389.31 * 15.3e-3 * 0.99 * 44 / 12   # tCO2 per 万Nm3 natural gas


# =========================================================================== a plugged-in regime
class GrossRegime(GBT32150):
    """A test regime: exported energy reported but not netted (sign 0), and a fugitive source for
    non-CO2 gases (the 2025 edition's E_fugitive) — defined without touching the engine."""

    name = "Test gross inventory"
    aliases = ("test-gross",)
    sources = tuple(
        EmissionSource(s.key, s.name_zh, s.name_en, 0 if s.key.startswith("exported_") else s.sign,
                       s.categories - {"gas"} or s.categories, s.aliases, s.clause)
        for s in GBT32150.sources
    ) + (EmissionSource("fugitive", "逸散排放", "Fugitive", +1, {"gas"}, ("逸散排放", "逸散")),)
    report_sections = (
        ReportSection("entity", "主体", "Entity"),
        ReportSection("emissions", "排放", "Gross emissions"),
        ReportSection("other", "说明", "Notes"),
    )
    report_notes = ("Exported energy is reported, not subtracted.",)
    total_label_zh = "总排放"
    total_label_en = "Gross total"
    default_gwp = "AR6"
    sectors = MappingProxyType({})

    def edition(self, year):
        return f"TEST-{year}"


@pytest.fixture
def gross():
    reg = regimes.register(GrossRegime())
    yield reg
    regimes.unregister(reg)


ROWS = [
    dict(record_id="g", facility="F01", source="combustion", item="natural_gas", quantity=2, unit="万Nm3", period="2025-01"),
    dict(record_id="e", facility="F01", source="purchased_electricity", item="grid", quantity=500, unit="MWh", period="2025-01"),
    dict(record_id="x", facility="F02", source="exported_heat", item="heat", quantity=100, unit="GJ", period="2025-01"),
]


# =========================================================================== GB/T 32150, the default
class TestGBT32150:
    def test_is_the_default_and_found_by_its_names(self):
        reg = get_regime()
        assert reg.name == "GB/T 32150"
        for name in ("GB/T 32150", "gbt32150", "GB/T 32150-2015", "GB/T 32150—2025", " gb/t-32150 "):
            assert get_regime(name) is reg

    def test_sources_signs_and_names(self):
        reg = get_regime()
        assert reg.source_keys == ("combustion", "process", "purchased_electricity", "purchased_heat",
                                   "exported_electricity", "exported_heat")
        # E = combustion + process + purchased − exported (GB/T 32150—2025 §7.5.8)
        assert reg.signs == {"combustion": 1, "process": 1, "purchased_electricity": 1, "purchased_heat": 1,
                             "exported_electricity": -1, "exported_heat": -1}
        assert reg.source("exported_heat").name_zh == "输出热力排放"
        assert reg.source("combustion").categories == {"fuel"}
        assert reg.source("process").categories == {"carbonate", "gas"}

    def test_accounting_names_are_the_regimes(self):
        reg = get_regime()
        assert SOURCES == reg.source_keys and SIGN == reg.signs
        assert SOURCE_NAMES_ZH == reg.source_names("zh") and SOURCE_NAMES_EN == reg.source_names("en")

    @pytest.mark.parametrize("year,edition", [(2025, "GB/T 32150-2015"), (2026, "GB/T 32150-2025"), (None, "GB/T 32150-2015")])
    def test_edition_by_reporting_year(self, year, edition):
        assert get_regime().edition(year) == edition

    def test_report_sections_are_the_ndrc_format(self):
        secs = get_regime().report_sections
        assert [s.title_zh for s in secs] == ["报告主体基本信息", "温室气体排放量", "活动水平数据及来源",
                                              "排放因子数据及来源", "其他希望说明的情况"]
        # the workbench puts its carbon-efficiency section before "other"
        numbered = [(n, s.content) for n, s in report_sections(get_regime())]
        assert numbered == [(1, "entity"), (2, "emissions"), (3, "activity"), (4, "factors"), (5, "efficiency"), (6, "other")]

    def test_default_gwp(self):
        assert get_regime().default_gwp == "AR5"

    def test_declared_as_an_entry_point_in_pyproject(self):
        eps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]
        value = eps[regimes.ENTRY_POINT_GROUP]["gbt32150"]
        assert EntryPoint("gbt32150", value, regimes.ENTRY_POINT_GROUP).load() is get_regime()


class TestCementSector:
    def test_products_and_industry_code(self):
        reg = get_regime()
        s = reg.sector("cement")
        assert [(p.product, p.unit, p.column, p.name_zh) for p in s.products] == [
            ("clinker", "t", "clinker_t", "熟料"), ("cement", "t", "cement_t", "水泥")]
        assert "includes its clinker" in s.product("cement").note
        assert s.standard == "GB/T 32151.8"
        assert reg.sector_for(industry_code="C3011") is s
        assert reg.sector_for(industry_code="3011") is s
        assert reg.sector_for(standard="GB/T 32151.8") is s
        assert reg.sector_for(sector="textile", industry_code="C1711") is None

    def test_clinker_calcination(self):
        # 1000 t clinker, CaO 65 % (1 % non-carbonate), MgO 2 % (0.5 % non-carbonate)
        expected = 1000 * ((0.65 - 0.01) * 44 / 56 + (0.02 - 0.005) * 44 / 40)
        f = get_regime().sector("cement").process_formulas["clinker_calcination"]
        assert f is cement.clinker_calcination
        assert f(Q_(1000, "t"), 0.65, 0.02, 0.01, 0.005).to("tCO2").magnitude == pytest.approx(expected, rel=REL)

    def test_clinker_calcination_vectorised(self):
        e = cement.clinker_calcination(Q_(np.array([1000.0, 2000.0]), "t"), np.array([0.65, 0.66]), np.array([0.02, 0.01]))
        expected = np.array([1000 * (0.65 * 44 / 56 + 0.02 * 44 / 40), 2000 * (0.66 * 44 / 56 + 0.01 * 44 / 40)])
        np.testing.assert_allclose(e.to("tCO2").magnitude, expected, rtol=1e-12)

    def test_the_accounting_layer_has_no_cement_formula(self):
        # sector formulas live with their sector, above the accounting layer
        from workbench.accounting import process

        assert not hasattr(process, "clinker_calcination")
        assert "clinker_calcination" not in vars(process)  # not defined in general code


# general code: every module of the layers that know no sector (sectors live in workbench/regimes)
GENERAL_CODE = sorted(str(f.relative_to(ROOT)) for pkg in ("core", "accounting", "lake", "ingestion", "inventory", "reports")
                      for f in (ROOT / "workbench" / pkg).rglob("*.py"))
# a word, not a part of one ("replacement" is no cement)
SECTOR_WORDS = re.compile(r"(?<![a-z])(clinker|cement)|熟料|水泥")
ALLOWED: set = set()


@pytest.mark.parametrize("path", GENERAL_CODE)
def test_no_sector_specific_literals_in_general_code(path):
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    found = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
             and id(n) not in docstrings and SECTOR_WORDS.search(n.value.lower())
             and (path, n.value) not in ALLOWED]
    assert not found, f"{path}: sector-specific literals {found}"


def test_no_sector_words_in_the_report_template():
    text = (ROOT / "workbench/reports/templates/inventory.html.j2").read_text(encoding="utf-8").lower()
    assert not SECTOR_WORDS.search(text)


# =========================================================================== the registry
class TestRegistry:
    def test_unknown_regime_names_the_known_ones(self):
        with pytest.raises(UnknownRegimeError, match="GB/T 32150"):
            get_regime("ISO 99999")

    def test_a_name_cannot_be_taken_twice(self, gross):
        class Clash(GrossRegime):
            aliases = ()
        with pytest.raises(RegimeError, match="taken"):
            regimes.register(Clash())
        assert get_regime("test-gross") is gross

    def test_malformed_regimes_are_refused(self):
        with pytest.raises(RegimeError, match="sign"):
            EmissionSource("x", "x", "x", 2, {"fuel"})
        with pytest.raises(RegimeError, match="categor"):
            EmissionSource("x", "x", "x", 1, {"steam"})
        with pytest.raises(RegimeError, match="content"):
            ReportSection("appendix", "附录", "Appendix")

        class Dup(GrossRegime):
            name = "dup"
            aliases = ()
            sources = GBT32150.sources + GBT32150.sources[:1]
        with pytest.raises(RegimeError, match="duplicate"):
            regimes.register(Dup())

    def test_entry_point_of_another_package(self, tmp_path, monkeypatch):
        """A researcher's package declares a regime under `workbench.regimes`; no workbench file changes."""
        (tmp_path / "wb_test_regime.py").write_text(
            "from workbench.regimes.gbt32150 import GBT32150\n"
            "from workbench.regimes import EmissionSource\n"
            "class NetOnlyElectricity(GBT32150):\n"
            "    name = 'Test electricity only'\n"
            "    aliases = ()\n"
            "    sources = tuple(s for s in GBT32150.sources if 'electricity' in s.key)\n"
            "REGIME = NetOnlyElectricity()\n", encoding="utf-8")
        dist = tmp_path / "wb_test_regime-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wb-test-regime\nVersion: 0.1\n", encoding="utf-8")
        (dist / "entry_points.txt").write_text("[workbench.regimes]\ntest_electricity_only = wb_test_regime:REGIME\n",
                                               encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))
        importlib.invalidate_caches()
        try:
            assert "test_electricity_only" in regimes.available()
            reg = get_regime("Test electricity only")
            assert reg.source_keys == ("purchased_electricity", "exported_electricity")
            led = account(pd.DataFrame([ROWS[1], dict(ROWS[1], record_id="y", source="exported_electricity",
                                                      quantity=50)]), regime="test_electricity_only")
            np.testing.assert_allclose(led["tco2e"], [500 * 0.5306, -50 * 0.5306], rtol=1e-12)
            with pytest.raises(ActivityDataError, match="unknown source 'combustion'"):
                account(pd.DataFrame(ROWS[:1]), regime=reg)
        finally:
            regimes.unregister("Test electricity only")
            sys.modules.pop("wb_test_regime", None)

    def test_broken_entry_point_says_which(self, tmp_path, monkeypatch):
        dist = tmp_path / "wb_broken-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wb-broken\nVersion: 0.1\n", encoding="utf-8")
        (dist / "entry_points.txt").write_text("[workbench.regimes]\nbroken = wb_no_such_module:REGIME\n", encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))
        with pytest.raises(RegimeError, match="entry point 'broken'"):
            get_regime("broken")


# =========================================================================== the engine under a regime
class TestEngineFollowsTheRegime:
    def test_signs_sources_edition_and_gwp_come_from_the_regime(self, gross):
        rows = ROWS + [dict(record_id="f", facility="F02", source="逸散排放", item="sf6", quantity=1, unit="kg",
                            period="2026-02")]
        led = account(pd.DataFrame(rows), regime="test-gross")
        # exported heat reported (emission_t) but, with sign 0, not in the total; SF6 under fugitive at AR6
        assert led["source"].tolist() == ["combustion", "purchased_electricity", "exported_heat", "fugitive"]
        assert led["sign"].tolist() == [1, 1, 0, 1]
        np.testing.assert_allclose(led["emission_t"], [2 * NG_PER_WAN_NM3, 500 * 0.5306, 100 * 0.11, 0.001], rtol=1e-12)
        np.testing.assert_allclose(led["tco2e"], [2 * NG_PER_WAN_NM3, 500 * 0.5306, 0.0, 0.001 * 25200], rtol=1e-12)
        assert led["edition"].tolist() == ["TEST-2025", "TEST-2025", "TEST-2025", "TEST-2026"]
        assert led.attrs["standard"] == "Test gross inventory" and led.attrs["gwp_set"] == "AR6"
        s = summarize(led)
        assert list(s["by_source"]) == list(gross.source_keys)
        assert s["by_source"]["fugitive"] == pytest.approx(0.001 * 25200, rel=REL)
        cube = to_cube(led)
        assert cube["source"].values.tolist() == list(gross.source_keys)
        assert float(cube["tco2e"].sum()) == pytest.approx(led["tco2e"].sum(), rel=REL)

    def test_the_default_is_unchanged_by_a_registered_regime(self, gross):
        led = account(pd.DataFrame(ROWS))
        np.testing.assert_allclose(led["tco2e"], [2 * NG_PER_WAN_NM3, 500 * 0.5306, -100 * 0.11], rtol=1e-12)
        assert led.attrs["standard"] == "GB/T 32150"

    def test_a_source_the_regime_does_not_accept_is_an_error(self, gross):
        # SF6 under process: GB/T 32150 accepts it, the gross regime reports gases as fugitive
        act = normalize_activity(pd.DataFrame([dict(source="process", item="sf6", quantity=1, unit="kg",
                                                    period="2025-01")]))
        with pytest.raises(AccountingError, match="row 2, column 'item'.*gas.*process"):
            account(act, regime=gross)
        led = account(act.assign(source="fugitive"), regime=gross)
        assert led["tco2e"].iloc[0] == pytest.approx(0.001 * 25200, rel=REL)
        with pytest.raises(AccountingError, match="'fugitive' is not a source of GB/T 32150"):
            account(act.assign(source="fugitive"))

    def test_a_cube_of_another_regimes_ledger_needs_that_regime(self, gross):
        led = account(pd.DataFrame([dict(source="逸散", item="sf6", quantity=1, unit="kg", period="2025-01")]),
                      regime=gross)
        led.attrs.clear()
        with pytest.raises(AccountingError, match="fugitive"):
            to_cube(led)
        assert float(to_cube(led, regime=gross)["tco2e"].sel(source="fugitive").sum()) == pytest.approx(0.001 * 25200)


# =========================================================================== inventory and report
def _enterprise_folder(tmp_path, enterprise: dict, monthly: pd.DataFrame) -> Path:
    """A small enterprise (boundary, ledger, production) with its catalog; no meters."""
    pd.DataFrame({
        "node_id": ["ENT", "F01", "F02"], "parent_id": ["", "ENT", "ENT"],
        "level": ["enterprise", "facility", "facility"],
        "name_zh": ["示例企业", "一车间", "二车间"], "name_en": ["Example", "Line 1", "Line 2"],
        "classification": ["", "main_production", "main_production"],
    }).to_csv(tmp_path / "boundary.csv", index=False)
    act = pd.DataFrame([
        dict(record_id="g1", node_id="F01", period="2025-01", source="combustion", item="natural_gas", quantity=2, unit="万Nm3"),
        dict(record_id="g2", node_id="F01", period="2025-02", source="combustion", item="natural_gas", quantity=3, unit="万Nm3"),
        dict(record_id="e1", node_id="ENT", period="2025-01", source="purchased_electricity", item="grid", quantity=500, unit="MWh"),
        dict(record_id="x1", node_id="F02", period="2025-02", source="exported_heat", item="heat", quantity=100, unit="GJ"),
    ])
    act.to_csv(tmp_path / "activity.csv", index=False)
    monthly.to_csv(tmp_path / "monthly.csv", index=False)
    write_demo_catalog(tmp_path / "catalog.yaml", enterprise=enterprise)
    return tmp_path / "catalog.yaml"


# by hand (GB/T 32150, CN grid 2023 for 2025): January 2 万Nm3 gas + 500 MWh; February 3 万Nm3 − 100 GJ heat
JAN = 2 * NG_PER_WAN_NM3 + 500 * 0.5306
FEB = 3 * NG_PER_WAN_NM3 - 100 * 0.11


def _inventory(tmp_path, enterprise, monthly):
    cat = open_catalog(_enterprise_folder(tmp_path, enterprise, monthly))
    return compute_inventory(cat, "2025-01", "2025-02", meter_check=False, allocate=False)


CEMENT_MONTHLY = pd.DataFrame({"period": ["2025-01", "2025-01", "2025-02", "2025-02", "2025-01", "2025-02"],
                               "node_id": ["F01", "F02", "F01", "F02", "ENT", "ENT"],
                               "clinker_t": [800.0, None, 900.0, None, None, None],
                               "cement_t": [None, 1000.0, None, 1200.0, None, None],
                               "value_added_10k_cny": [None, None, None, None, 300.0, 400.0]})


class TestInventoryProducts:
    @pytest.mark.parametrize("enterprise", [
        {"industry_code": "C3011"},                                  # the GB/T 4754 class
        {"sector": "cement"},                                        # the sector
        {"sector": "cement", "products": [                           # the enterprise's own list
            {"product": "clinker", "column": "clinker_t", "unit": "t", "name_zh": "熟料", "name_en": "clinker"},
            {"product": "cement", "column": "cement_t", "unit": "t", "name_zh": "水泥", "name_en": "cement"}]},
    ], ids=["industry-code", "sector", "products"])
    def test_cement_products_from_any_source(self, tmp_path, enterprise):
        inv = _inventory(tmp_path, enterprise, CEMENT_MONTHLY)
        assert inv.total_tco2e == pytest.approx(JAN + FEB, rel=REL)
        eff = inv.efficiency.set_index("period")
        assert eff.at["2025-01", "enterprise_tco2e_per_t_clinker"] == pytest.approx(JAN / 800, rel=REL)
        assert eff.at["2025-02", "enterprise_tco2e_per_t_cement"] == pytest.approx(FEB / 1200, rel=REL)
        assert eff.at["2025-02", "output_cement_t"] == 1200.0
        assert [p.product for p in inv.products] == ["clinker", "cement"]

    def test_products_of_another_sector_from_enterprise_json(self, tmp_path):
        """A textile mill's fabric in metres: nothing in the workbench knows textiles, the products say it."""
        monthly = pd.DataFrame({"period": ["2025-01", "2025-02", "2025-01", "2025-02"], "node_id": ["F01", "F01", "ENT", "ENT"],
                                "fabric_m": [50_000.0, 40_000.0, None, None], "value_added_10k_cny": [None, None, 100.0, 90.0]})
        ent = {"sector": "textile", "industry_code": "C1713",
               "products": [{"product": "fabric", "column": "fabric_m", "unit": "m", "name_zh": "坯布", "name_en": "grey fabric"}]}
        inv = _inventory(tmp_path, ent, monthly)
        eff = inv.efficiency.set_index("period")
        assert eff.at["2025-01", "enterprise_tco2e_per_m_fabric"] == pytest.approx(JAN / 50_000, rel=REL)
        assert inv.cube["output_fabric"].attrs["units"] == "m"
        assert float(inv.cube["intensity_fabric"].sel(period="2025-02", facility="F01")) == pytest.approx(
            3 * NG_PER_WAN_NM3 / 40_000, rel=REL)
        assert not any("product" in n for n in inv.notes)

    def test_no_products_known_is_said_not_guessed(self, tmp_path):
        monthly = CEMENT_MONTHLY.drop(columns=["clinker_t", "cement_t"])
        inv = _inventory(tmp_path, {"sector": "steel", "industry_code": "C3120"}, monthly)
        assert inv.total_tco2e == pytest.approx(JAN + FEB, rel=REL)
        assert not [c for c in inv.efficiency.columns if c.startswith("output_")]
        assert any("no product intensities" in n and "steel" in n for n in inv.notes)

    def test_declared_product_without_its_column_is_noted(self, tmp_path):
        ent = {"products": [{"product": "clinker", "column": "clinker_t"}, {"product": "slag", "column": "slag_t"}]}
        inv = _inventory(tmp_path, ent, CEMENT_MONTHLY)
        assert "output_clinker_t" in inv.efficiency
        assert any("slag ('slag_t')" in n for n in inv.notes)

    @pytest.mark.parametrize("products,match", [
        ([{"column": "x_t"}], "needs at least 'product'"),
        ([{"product": "clinker", "colum": "clinker_t"}], "unknown key"),
        ([{"product": "clinker", "unit": "furlongs of stuff"}], "unit"),
        ([{"product": "a"}, {"product": "a"}], "twice"),
        ({"product": "a"}, "must be a list"),
    ])
    def test_malformed_products_are_errors(self, products, match):
        with pytest.raises(ValueError, match=match):
            enterprise_products({"products": products}, get_regime())

    def test_product_defaults(self):
        p = Product.from_mapping({"product": "clinker"})
        assert (p.unit, p.column) == ("t", "clinker_t")
        with pytest.raises(RegimeError, match="identifier"):
            Product("熟料")


class TestReportFollowsTheRegime:
    def test_sections_names_and_total_label_come_from_the_regime(self, tmp_path, gross):
        inv = _inventory(tmp_path, {"reporting_standard": "test-gross", "sector": "cement"}, CEMENT_MONTHLY)
        assert inv.regime is gross
        # exported heat is reported but, under this regime, not subtracted
        assert inv.total_tco2e == pytest.approx(JAN + 3 * NG_PER_WAN_NM3, rel=REL)
        html = render_html(inv, images={k: "" for k in ("by_source", "by_facility", "monthly", "carbon_efficiency")})
        for heading in ("<h2>1 主体 Entity</h2>", "<h2>2 排放 Gross emissions</h2>", "<h2>3 碳效 Carbon efficiency</h2>",
                        "<h2>4 说明 Notes</h2>", "<th>总排放</th><th>Gross total</th>", "<td>逸散排放</td><td>Fugitive</td>",
                        "<li>Exported energy is reported, not subtracted.</li>"):
            assert heading in html, heading
        for gbt in ("活动水平数据及来源", "排放因子数据及来源", "exported electricity and heat subtracted", "生物质"):
            assert gbt not in html
        assert list(inv.by_source()["source"]) == list(gross.source_keys)

    def test_gbt32150_report_sections(self, tmp_path):
        inv = _inventory(tmp_path, {"reporting_standard": "GB/T 32150", "industry_code": "C3011"}, CEMENT_MONTHLY)
        html = render_html(inv, images={k: "" for k in ("by_source", "by_facility", "monthly", "carbon_efficiency")})
        heads = [line for line in html.splitlines() if line.startswith("<h2>")]
        assert heads == ["<h2>1 报告主体基本信息 Reporting entity</h2>", "<h2>2 温室气体排放量 Emissions</h2>",
                         "<h2>3 活动水平数据及来源 Activity data and sources</h2>",
                         "<h2>4 排放因子数据及来源 Emission factors and sources</h2>",
                         "<h2>5 碳效 Carbon efficiency</h2>", "<h2>6 其他希望说明的情况 Other information</h2>"]
        assert "<th>合计</th><th>Total (exported electricity and heat subtracted)</th>" in html

    def test_unknown_reporting_standard_is_an_error(self, tmp_path):
        with pytest.raises(UnknownRegimeError, match="ISO 14064-1"):
            _inventory(tmp_path, {"reporting_standard": "ISO 14064-1"}, CEMENT_MONTHLY)


def test_sector_is_frozen_data():
    s = get_regime().sector("cement")
    assert isinstance(s, Sector)
    with pytest.raises(TypeError):
        s.process_formulas["x"] = print
