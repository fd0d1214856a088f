"""The annual GHG report (issue 14, point 1): its numbers are the accounting's, the edition follows
the reporting year, the PDF carries selectable Chinese text in embedded fonts, the XLSX holds the
reporting tables, English on request, the monthly/quarterly reports from the same machinery, the
CLI and the papermill notebook.

Two lakes, both filled through the ordinary ingest path:

* the demo cement plant (2025 → GB/T 32150-2015), master data in a registry beside the lake;
* the small lake of ``tests/status_lake.py`` (2026 → GB/T 32150—2025), worked by hand: ent-a burns
  2.5 万Nm3 of natural gas on F01 in March (2.5 × 389.31 GJ/万Nm3 × 15.3 tC/TJ × 0.99 × 44/12 tCO2,
  GB/T 32151.22-2024 Table C.1) and is billed 3,000 kWh (March) and 2,000 kWh (April) of grid
  electricity at 0.5306 tCO2/MWh (MEE/NBS national 2023; no 2026 value published); March's bill is
  split by the sub-meter E1 on F01 (1,488 kWh) against the main meter E0 (2,973 kWh), April's stays on
  the enterprise node (E1 sent nothing).  No value added: no carbon efficiency.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from status_lake import build as build_small_lake

from workbench.accounting.uncertainty import approach1
from workbench.cli.main import main
from workbench.demo.load import load_demo
from workbench.inventory.compute import compute_inventory, compute_inventory_from_lake
from workbench.lake.catalog import open_catalog
from workbench.lake.store import Lake
from workbench.regimes import GBT32150
from workbench.reports.annual import (
    SHEETS,
    ReportError,
    annual_report,
    build_report,
    parse_period,
    periodic_report,
    render_html,
    report_layout,
)

C2CO2 = 44 / 12
GAS_T = 2.5 * 389.31 * 15.3e-3 * 0.99 * C2CO2
EF_GRID = 0.5306
ELEC_T = (3.0 + 2.0) * EF_GRID                          # MWh × tCO2/MWh
F01_ELEC_T = 3.0 * 1488 / 2973 * EF_GRID                # March's bill × E1/E0
ENT_ELEC_T = ELEC_T - F01_ELEC_T
U_GAS = math.sqrt(5 ** 2 + 5 ** 2 + 5 ** 2 + 2 ** 2)     # % (activity IPCC 5, NCV 5, CC 5, OF 2)
U_GRID = math.sqrt(5 ** 2 + 10 ** 2)                    # % (activity 5, grid EF 10)


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def demo_root(demo_data, tmp_path_factory):
    """The demo cement plant as `demo load` makes it: master data in ``registry.db`` beside the lake."""
    from workbench.registry import MasterData, import_enterprise

    root = tmp_path_factory.mktemp("annual-demo") / "lake"
    md = MasterData(f"sqlite:///{root.parent / 'registry.db'}")
    try:
        import_enterprise(md, demo_data, who="test")
        load_demo(demo_data, root, enterprise="demo-cement", master=md)
    finally:
        md.dispose()
    return root


@pytest.fixture(scope="module")
def demo_report(demo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("annual-report")
    return annual_report(Lake(demo_root), "demo-cement", 2025, output_dir=out,
                         formats=("html", "pdf", "xlsx", "json"))


@pytest.fixture(scope="module")
def demo_inventory(demo_root):
    """The package's inventory of the year, computed independently of the report."""
    return compute_inventory_from_lake(Lake(demo_root), "demo-cement", "2025-01", "2025-12")


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> str:
    """The root (a path) of the small lake."""
    return build_small_lake(tmp_path_factory.mktemp("annual-small")).base_url


@pytest.fixture(scope="module")
def small_report(small_root, tmp_path_factory):
    return annual_report(small_root, "ent-a", 2026, output_dir=tmp_path_factory.mktemp("annual-small-out"),
                         formats=("html", "xlsx", "json"))


# ------------------------------------------------------------------------------------ numbers
def test_the_report_numbers_are_the_accounting(demo_report, demo_inventory):
    f, inv = demo_report.figures, demo_inventory
    assert f["total_tco2e"] == pytest.approx(inv.total_tco2e, rel=1e-12)
    assert f["by_source"] == pytest.approx(inv.summary["by_source"], rel=1e-12, abs=1e-9)
    assert f["by_gas"] == pytest.approx(inv.summary["by_gas"], rel=1e-12)
    assert f["by_facility"] == pytest.approx(inv.summary["by_facility"], rel=1e-12)
    assert f["value_added"] == pytest.approx(inv.summary["value_added"])
    assert f["carbon_efficiency"] == pytest.approx(inv.total_tco2e / inv.summary["value_added"])
    assert sum(f["monthly"].values()) == pytest.approx(inv.total_tco2e, rel=1e-12)
    # the report's tables add up to the same total
    t = demo_report.tables
    assert t["by_source"]["tco2e"].sum() == pytest.approx(inv.total_tco2e, rel=1e-12)
    assert t["by_facility"]["total"].sum() == pytest.approx(inv.total_tco2e, rel=1e-12)
    assert t["by_gas"]["tco2e"].sum() == pytest.approx(inv.total_tco2e, rel=1e-12)
    assert t["activity"]["tco2e"].sum() == pytest.approx(inv.total_tco2e, rel=1e-12)
    assert t["activity"]["records"].sum() == len(inv.ledger)
    sf6 = t["by_gas"].set_index("gas").loc["SF6"]
    assert sf6["tco2e"] == pytest.approx(sf6["mass_t"] * 23500)            # AR5 GWP of SF6
    # uncertainty: the report's approach 1 is the ledger's
    assert f["uncertainty_approach1_pct"] == pytest.approx(approach1(inv.ledger).u_pct)
    assert f["monte_carlo_p2_5_tco2e"] < f["total_tco2e"] < f["monte_carlo_p97_5_tco2e"]
    assert 0 < f["uncertainty_approach2_pct"] < 20
    # the JSON file holds the same figures
    assert json.loads(demo_report.paths["json"].read_text(encoding="utf-8")) == f


def test_the_small_lake_by_hand(small_report, small_root):
    f = small_report.figures
    assert f["total_tco2e"] == pytest.approx(GAS_T + ELEC_T, rel=1e-9)
    assert f["by_source"]["combustion"] == pytest.approx(GAS_T, rel=1e-9)
    assert f["by_source"]["purchased_electricity"] == pytest.approx(ELEC_T, rel=1e-9)
    assert f["by_gas"] == pytest.approx({"CO2": GAS_T + ELEC_T})
    assert f["by_facility"] == pytest.approx({"F01": GAS_T + F01_ELEC_T, "ENT": ENT_ELEC_T}, rel=1e-9)
    assert f["monthly"] == pytest.approx({"2026-03": GAS_T + 3.0 * EF_GRID, "2026-04": 2.0 * EF_GRID}, rel=1e-9)
    assert f["value_added"] is None and f["carbon_efficiency"] is None
    want_u = math.sqrt((U_GAS * GAS_T) ** 2 + (U_GRID * ELEC_T) ** 2) / (GAS_T + ELEC_T)
    assert f["uncertainty_approach1_pct"] == pytest.approx(want_u)
    # traceability: the gas ledger file and the bills, by name and SHA-256, the duplicate upload not counted
    raw = small_report.tables["raw_files"].set_index("raw_name")
    batches = Lake(small_root, enterprise="ent-a").batches()
    stored = batches[batches["status"] == "stored"].set_index("raw_name")
    assert set(raw.index) == {"ledger.csv", "bills.pdf"}
    for name in raw.index:
        assert raw.at[name, "sha256"] == stored.at[name, "sha256"]
        assert raw.at[name, "batch_id"] == stored.at[name, "batch_id"]
    act = small_report.tables["activity"].set_index("item")
    assert act.at["natural_gas", "raw_files"] == "ledger.csv" and act.at["grid", "raw_files"] == "bills.pdf"
    assert act.at["grid", "quantity"] == pytest.approx(5000.0) and act.at["grid", "unit"] == "kWh"
    # the data status of the lake: 2 + 1 quarantined readings of E0/E9 in March, and the bill checks
    q = dict(zip(small_report.tables["quality_summary"]["indicator"], small_report.tables["quality_summary"]["value"]))
    assert q["隔离行数"] == small_report.status.quarantine["rows"].sum() > 0
    html = small_report.paths["html"].read_text(encoding="utf-8")
    assert "本期无增加值数据" in html


def test_traceability_to_the_demo_files(demo_report, demo_data):
    raw = demo_report.tables["raw_files"].set_index("raw_name")
    assert raw.at["activity.csv", "sha256"] == hashlib.sha256((demo_data / "activity.csv").read_bytes()).hexdigest()
    assert raw.at["monthly.csv", "sha256"] == hashlib.sha256((demo_data / "monthly.csv").read_bytes()).hexdigest()
    led = demo_report.inventory.ledger
    assert set(led["lake_batch"]) <= set(demo_report.tables["raw_files"]["batch_id"])
    f = demo_report.tables["factors"]
    assert len(f) == len(demo_report.inventory.factors_used) and (f["reason"].str.len() > 0).all()
    coal = f[f["factor_id"] == "ndrc-guideline:raw_coal:carbon_content"].iloc[0]
    assert "UNVERIFIED" in coal["reason"] and not coal["verified"]
    grid = f[f["factor_id"] == "mee-avg:CN-ZJ:2023"].iloc[0]
    assert "2023" in grid["reason"] and "MEE-average" in grid["reason"]


# ------------------------------------------------------------------------------------ editions
def test_the_edition_follows_the_reporting_year(demo_report, small_report):
    assert demo_report.edition == "GB/T 32150-2015" == GBT32150.edition(2025)
    assert small_report.edition == "GB/T 32150-2025" == GBT32150.edition(2026)
    assert set(small_report.inventory.ledger["edition"]) == {"GB/T 32150-2025"}
    old, new = ({s.content: s for _, s in report_layout(GBT32150, e)} for e in ("GB/T 32150-2015",
                                                                                       "GB/T 32150-2025"))
    assert [s for s in old] == [s for s in new]
    for content in ("entity", "boundary", "sources", "emissions", "activity", "factors", "efficiency", "quality",
                    "uncertainty", "other"):
        assert content in old
    assert new["quality"].clause == "GB/T 32150—2025 §8" and old["quality"].clause == ""
    html_2015 = demo_report.paths["html"].read_text(encoding="utf-8")
    html_2025 = small_report.paths["html"].read_text(encoding="utf-8")
    for text in ("§7.5.8", "§7.5.2", "逸散排放", "废弃物处理排放", "GB/T 32150—2025 §8", "表 2"):
        assert text in html_2025 and text not in html_2015, text
    src = small_report.tables["sources"].set_index("source")
    assert src.at["fugitive", "records"] == 0 and src.at["waste", "tco2e"] == 0


# ------------------------------------------------------------------------------------ files
def test_the_pdf_has_selectable_chinese_text_in_embedded_fonts(demo_report):
    from pypdf import PdfReader

    r = PdfReader(str(demo_report.paths["pdf"]))
    text = "\n".join(p.extract_text() for p in r.pages)
    total = demo_report.figures["total_tco2e"]
    for s in ("浙江示例水泥有限公司", "温室气体排放报告", "报告主体基本信息", "排放因子数据及来源", "不确定性",
              f"{total:,.1f}", f"{total:,.3f}", "GB/T 32150-2015"):
        assert s in text, s
    fonts = {}
    for page in r.pages:
        for f in page["/Resources"]["/Font"].values():
            f = f.get_object()
            desc = (f["/DescendantFonts"][0].get_object() if "/DescendantFonts" in f else f)["/FontDescriptor"]
            fonts[str(f["/BaseFont"])] = any(k in desc.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    assert any("Noto-Sans-CJK-SC" in name for name in fonts), fonts
    assert all(fonts.values()), fonts                     # every font embedded


def test_the_workbook_holds_the_reporting_tables(demo_report):
    import openpyxl

    wb = openpyxl.load_workbook(demo_report.paths["xlsx"], read_only=True)
    assert wb.sheetnames == [zh for zh, _ in SHEETS.values()]
    by_source = pd.read_excel(demo_report.paths["xlsx"], sheet_name="按排放源")
    assert by_source["排放量 tCO2e"].sum() == pytest.approx(demo_report.figures["total_tco2e"], rel=1e-12)
    summary = pd.read_excel(demo_report.paths["xlsx"], sheet_name="汇总")
    assert float(summary.iloc[0]["数值"]) == pytest.approx(demo_report.figures["total_tco2e"], rel=1e-12)
    ledger = pd.read_excel(demo_report.paths["xlsx"], sheet_name="核算明细")
    assert len(ledger) == len(demo_report.inventory.ledger) and ledger["raw_sha256"].str.len().eq(64).all()
    a1 = pd.read_excel(demo_report.paths["xlsx"], sheet_name="不确定性-方法1")
    assert a1["排放量 tCO2e"].sum() == pytest.approx(demo_report.figures["total_tco2e"], rel=1e-9)


def test_english(demo_root, tmp_path):
    rep = build_report(Lake(demo_root), "demo-cement", "2025", language="en", images=False, draws=1000)
    html = render_html(rep)
    for s in ("Annual greenhouse-gas emissions report 2025", "Reporting entity", "Emission sources",
              "Activity data and sources", "Why chosen", "Approach 1: error propagation", "Fuel combustion",
              "Zhejiang Demo Cement Co., Ltd."):
        assert s in html, s
    for s in ("报告主体基本信息", "排放源识别", "选用理由"):
        assert s not in html, s
    assert rep.figures["total_tco2e"] == pytest.approx(rep.inventory.total_tco2e)
    import openpyxl

    from workbench.reports.annual import write_xlsx

    path = write_xlsx(rep, tmp_path / "en.xlsx")
    assert openpyxl.load_workbook(path, read_only=True).sheetnames == [en for _, en in SHEETS.values()]


# ------------------------------------------------------------------------------------ periods
def test_periods():
    assert parse_period("2025") == parse_period(2025)
    assert (parse_period("2025").start, parse_period("2025").end) == ("2025-01", "2025-12")
    q = parse_period("2025-q3")
    assert (q.text, q.kind, q.start, q.end) == ("2025-Q3", "quarter", "2025-07", "2025-09")
    m = parse_period("2025-07")
    assert (m.kind, m.start, m.end) == ("month", "2025-07", "2025-07")
    assert parse_period("2025-Q3").label("zh") == "2025 年第 3 季度" and m.label("en") == "July 2025"
    for bad in ("2025-13", "2025-Q5", "25", "2025-02-30", "twenty", "1800"):
        with pytest.raises(ReportError):
            parse_period(bad)


def test_monthly_and_quarterly_reports(demo_report, demo_root, tmp_path):
    month = periodic_report(Lake(demo_root), "demo-cement", "2025-07", output_dir=tmp_path, formats=("json",),
                            draws=500)
    assert month.figures["total_tco2e"] == pytest.approx(demo_report.figures["monthly"]["2025-07"], rel=1e-12)
    assert month.paths["json"].name == "ghg_report_demo-cement_2025-07_zh.json"
    quarter = periodic_report(Lake(demo_root), "demo-cement", "2025-Q3", output_dir=tmp_path, formats=("json",),
                              draws=500)
    want = sum(demo_report.figures["monthly"][m] for m in ("2025-07", "2025-08", "2025-09"))
    assert quarter.figures["total_tco2e"] == pytest.approx(want, rel=1e-12)
    assert quarter.figures["period_kind"] == "quarter" and list(quarter.figures["monthly"]) == ["2025-07", "2025-08",
                                                                                                "2025-09"]
    with pytest.raises(ReportError):
        periodic_report(Lake(demo_root), "demo-cement", "2025", output_dir=tmp_path, formats=("docx",))


def test_from_a_catalog_and_with_the_master_data(demo_data, demo_root, tmp_path):
    """The quick path over files gives the same numbers as the inventory over the catalog; the master data
    (a registry URL) the same as the lake's own record."""
    rep = periodic_report(demo_data / "catalog.yaml", "demo-cement", "2025-03", output_dir=tmp_path,
                          formats=("json", "html"), draws=500)
    inv = compute_inventory(open_catalog(demo_data / "catalog.yaml"), "2025-03", "2025-03")
    assert rep.figures["total_tco2e"] == pytest.approx(inv.total_tco2e, rel=1e-12) and rep.status is None
    with_md = periodic_report(Lake(demo_root), "demo-cement", "2025-03", output_dir=tmp_path, formats=("json",),
                              registry=f"sqlite:///{demo_root.parent / 'registry.db'}", draws=500)
    assert with_md.figures["total_tco2e"] == pytest.approx(inv.total_tco2e, rel=1e-12)
    with pytest.raises(ReportError, match="demo-cement"):
        periodic_report(demo_data / "catalog.yaml", "someone-else", "2025-03", output_dir=tmp_path, formats=("json",))


# ------------------------------------------------------------------------------------ CLI and notebook
def test_cli_report_annual_and_periodic(small_root, tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["report", "annual", "--enterprise", "ent-a", "--year", "2026", "--lake", str(small_root),
                             "--out", str(tmp_path), "--format", "json", "--format", "html", "--language", "en",
                             "--draws", "500"])
    assert r.exit_code == 0, r.output
    path = tmp_path / "ghg_report_ent-a_2026_en.json"
    assert str(path) in r.output and json.loads(path.read_text())["total_tco2e"] == pytest.approx(GAS_T + ELEC_T)
    assert (tmp_path / "ghg_report_ent-a_2026_en.html").exists()
    r = runner.invoke(main, ["report", "periodic", "--enterprise", "ent-a", "--period", "2026-04", "--lake",
                             str(small_root), "--out", str(tmp_path), "--format", "json", "--draws", "500"])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "ghg_report_ent-a_2026-04_zh.json").read_text(encoding="utf-8"))
    assert doc["total_tco2e"] == pytest.approx(2.0 * EF_GRID) and doc["edition"] == "GB/T 32150-2025"
    for args, words in ((["--period", "2026-13"], "2026-13"), (["--period", "2026-Q3", "--enterprise", "nobody"],
                                                               "nobody")):
        base = ["report", "periodic", "--enterprise", "ent-a", "--lake", str(small_root), "--out", str(tmp_path)]
        r = runner.invoke(main, base + args)
        assert r.exit_code == 2 and words in r.output, r.output
    assert not (Path(small_root) / "enterprises" / "nobody").exists()


def test_the_notebook_runs_with_papermill(small_root, tmp_path):
    from workbench.reports.run import run_annual_notebook

    out = run_annual_notebook(enterprise="ent-a", year=2026, lake=small_root, output_dir=tmp_path, progress=False)
    assert set(out) == {"notebook", "html", "pdf", "xlsx"}
    nb = json.loads(Path(out["notebook"]).read_text(encoding="utf-8"))
    params = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert params and "ent-a" in "".join(params[0]["source"])
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert f"{GAS_T + ELEC_T:,.3f}" in text and "GB/T 32150-2025" in text
    html = Path(out["html"]).read_text(encoding="utf-8")
    assert "温室气体排放报告" in html and f"{GAS_T + ELEC_T:,.1f}" in html
