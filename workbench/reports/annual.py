"""The annual greenhouse-gas report (年度温室气体排放报告) per GB/T 32150, and the monthly and quarterly
reports made by the same machinery — HTML, PDF (WeasyPrint, CJK fonts embedded, text selectable)
and an XLSX workbook of the reporting tables; Chinese by default, English on request.

One pipeline: the inventory of the period is :func:`workbench.inventory.compute.compute_inventory_from_lake`
(or :func:`~workbench.inventory.compute.compute_inventory` over a catalog, the quick path); every
table of the report is derived here from that inventory, the lake's batch records (raw file names
and SHA-256), the data status (:func:`workbench.reports.status.data_status`) and the uncertainty
of the inventory's ledger (:mod:`workbench.accounting.uncertainty`, IPCC 2006 Vol. 1 Ch. 3
approaches 1 and 2).  Nothing is re-keyed: a reported figure is the inventory's.

Edition by reporting year (GB/T 32150-2015 to 2025, GB/T 32150—2025 from 2026) is the regime's
(:meth:`workbench.core.regime.Regime.edition`); the 2025 edition's report names its clauses
(§7.5.2–7.5.8), lists waste and fugitive emissions (none recorded by the workbench), and reports
the activity data by the priority of its table 2 and the quality assurance of §8.

Sections (``report_layout``): the regime's (报告主体基本信息 · 温室气体排放量 · 活动水平数据及来源 ·
排放因子数据及来源 · 其他希望说明的情况) with the workbench's carbon efficiency
(:data:`workbench.reports.inventory.WORKBENCH_SECTIONS`), and this report's boundary, emission
sources, data quality and uncertainty.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.core.boundary import CLASSIFICATION_NAMES_ZH
from workbench.core.errors import WorkbenchError
from workbench.reports.inventory import figures as inventory_figures
from workbench.reports.inventory import png_base64, report_sections

__all__ = [
    "EDITIONS",
    "FORMATS",
    "SHEETS",
    "AnnualReport",
    "ReportError",
    "ReportPeriod",
    "annual_report",
    "build_report",
    "factor_reasons",
    "parse_period",
    "periodic_report",
    "render_html",
    "report_layout",
    "report_paths",
    "write_pdf",
    "write_report",
    "write_xlsx",
]

#: the formats a report can be written in
FORMATS = ("html", "pdf", "xlsx", "json")
LANGUAGES = ("zh", "en")
#: the font the HTML and the PDF name (Debian's fonts-noto-cjk); WeasyPrint embeds a subset
CJK_FONT = "Noto Sans CJK SC"


class ReportError(WorkbenchError, ValueError):
    """A report that cannot be made from what was given (a period, language or format it does not know,
    an enterprise the data source does not hold)."""


# ------------------------------------------------------------------------------------ periods
@dataclass(frozen=True)
class ReportPeriod:
    """A reporting period: ``text`` as given (``2025``, ``2025-Q3``, ``2025-07``), its ``kind``
    (``year`` · ``quarter`` · ``month``), ``year`` and first/last month (``YYYY-MM``)."""

    text: str
    kind: str
    year: int
    start: str
    end: str

    def label(self, language: str = "zh") -> str:
        if self.kind == "year":
            return f"{self.year} 年度" if language == "zh" else f"{self.year}"
        if self.kind == "quarter":
            q = (int(self.start[5:]) - 1) // 3 + 1
            return f"{self.year} 年第 {q} 季度" if language == "zh" else f"{self.year} Q{q}"
        m = int(self.start[5:])
        return f"{self.year} 年 {m} 月" if language == "zh" else pd.Timestamp(f"{self.start}-01").strftime("%B %Y")


def parse_period(period) -> ReportPeriod:
    """``2025`` (a year), ``2025-Q3`` (a quarter) or ``2025-07`` (a month) → :class:`ReportPeriod`."""
    text = str(period).strip()
    m = re.fullmatch(r"(\d{4})(?:-(?:Q([1-4])|(\d{2})))?", text, flags=re.IGNORECASE)
    if not m or (m.group(3) and not 1 <= int(m.group(3)) <= 12):
        raise ReportError(f"period {text!r}: write a year (2025), a quarter (2025-Q3) or a month (2025-07)")
    year = int(m.group(1))
    if not 1990 <= year <= 2200:
        raise ReportError(f"period {text!r}: {year} is not a reporting year")
    if m.group(2):
        q = int(m.group(2))
        return ReportPeriod(f"{year}-Q{q}", "quarter", year, f"{year}-{3 * q - 2:02d}", f"{year}-{3 * q:02d}")
    if m.group(3):
        mm = f"{year}-{int(m.group(3)):02d}"
        return ReportPeriod(mm, "month", year, mm, mm)
    return ReportPeriod(str(year), "year", year, f"{year}-01", f"{year}-12")


# ------------------------------------------------------------------------------------ editions and layout
#: What the report says about each edition of GB/T 32150 (accounting-facts.md, "Standards in force").
EDITIONS = {
    "GB/T 32150-2015": {
        "published": "2015-11-21", "in_force": "",
        "clauses": {},
        "extra_sources": (),
        "quality_clause": "", "tiers_clause": "",
    },
    "GB/T 32150-2025": {
        "published": "2025-12-31", "in_force": "2026-07-01",
        "clauses": {"combustion": "§7.5.2", "process": "§7.5.3", "purchased_electricity": "§7.5.6–7.5.7",
                    "purchased_heat": "§7.5.6–7.5.7", "exported_electricity": "§7.5.6–7.5.7",
                    "exported_heat": "§7.5.6–7.5.7", "total": "§7.5.8"},
        "extra_sources": (("waste", "废弃物处理排放", "Waste treatment", "§7.5.4"),
                          ("fugitive", "逸散排放", "Fugitive emissions", "§7.5.5")),
        "quality_clause": "GB/T 32150—2025 §8", "tiers_clause": "GB/T 32150—2025 表 2 / Table 2",
    },
}


@dataclass(frozen=True)
class Section:
    """A section of the report: what it holds (``content``), its titles and the clause it answers."""

    content: str
    title_zh: str
    title_en: str
    clause: str = ""

    def title(self, language: str) -> str:
        return self.title_zh if language == "zh" else self.title_en


def report_layout(regime, edition: str) -> list[tuple[int, Section]]:
    """(number, section) of the report for ``regime`` in ``edition``: the regime's sections with the
    workbench's carbon efficiency (:func:`workbench.reports.inventory.report_sections`), then this
    report's boundary and emission sources after the reporting entity, data quality and uncertainty
    before the regime's "other" section."""
    secs = [Section(s.content, s.title_zh, s.title_en, s.clause) for _, s in report_sections(regime)]
    ed = EDITIONS.get(edition, {})
    after_entity = [Section("boundary", "核算边界", "Accounting boundary", "GB/T 32150"),
                    Section("sources", "排放源识别", "Emission sources", edition)]
    quality = (Section("quality", "数据质量管理", "Data quality assurance", ed["quality_clause"])
               if ed.get("quality_clause") else Section("quality", "数据质量", "Data quality", ""))
    before_other = [quality, Section("uncertainty", "不确定性", "Uncertainty", "IPCC 2006 GL Vol. 1 Ch. 3")]
    at = next((i + 1 for i, s in enumerate(secs) if s.content == "entity"), 0)
    secs[at:at] = after_entity
    at = next((i for i, s in enumerate(secs) if s.content == "other"), len(secs))
    secs[at:at] = before_other
    return list(enumerate(secs, start=1))


# ------------------------------------------------------------------------------------ labels
#: text of the report in each language: key → (zh, en)
TEXT = {
    "title": ("温室气体排放报告", "Greenhouse-gas emissions report"),
    "title_year": ("温室气体排放报告", "Annual greenhouse-gas emissions report"),
    "title_quarter": ("温室气体排放报告", "Quarterly greenhouse-gas emissions report"),
    "title_month": ("温室气体排放报告", "Monthly greenhouse-gas emissions report"),
    "total": ("排放总量", "Total emissions"),
    "value_added": ("工业增加值", "Value added"),
    "carbon_efficiency": ("碳效（单位增加值排放）", "Carbon efficiency (emissions per value added)"),
    "uncertainty": ("不确定性（95 % 置信区间半宽）", "Uncertainty (half the 95 % interval)"),
    "name": ("名称", "Name"), "credit_code": ("统一社会信用代码", "Unified social credit code"),
    "industry": ("行业", "Industry"), "region": ("地区", "Region"), "address": ("地址", "Address"),
    "legal": ("法定代表人", "Legal representative"), "contact": ("联系人", "Contact"),
    "prefix": ("标识前缀", "Identifier prefix"), "period": ("报告期", "Reporting period"),
    "standard": ("核算标准", "Standard"), "edition_rule": ("版本选择", "Edition"),
    "gwp": ("全球变暖潜势", "GWP"), "library": ("因子库版本", "Factor library"),
    "generated": ("生成时间", "Generated"), "enterprise_id": ("企业编号", "Enterprise id"),
    "boundary_text": (("核算边界为报告主体的主要生产系统、辅助生产系统和直接为生产服务的附属生产系统；"
                       "核算气体为 CO2、CH4、N2O、HFCs、PFCs、SF6、NF3；生物质燃烧产生的 CO2 单独报告，不计入总量。"),
                      ("The boundary is the reporting entity's main production, auxiliary production and the "
                       "ancillary systems directly serving production; the gases are CO2, CH4, N2O, HFCs, PFCs, SF6 "
                       "and NF3; CO2 from biomass combustion is reported separately and not in the total.")),
    "gases_here": ("本报告期出现的气体", "Gases in this period"),
    "facilities": ("设施", "Facilities"),
    "formula": ("排放总量计算式", "Total"),
    "not_recorded": ("工作台未记录此类排放源（不适用）", "no such source is recorded by the workbench (not applicable)"),
    "by_source": ("按排放源", "By source"), "by_gas": ("按温室气体", "By gas"),
    "by_facility": ("按设施", "By facility"), "monthly": ("月度排放", "Monthly emissions"),
    "by_class": ("按分项", "By 分项 class"),
    "activity_intro": ("每项活动数据的来源：数据级别、取数依据（台账、发票或计量）、原始文件及其 SHA-256、数据湖批次。",
                       ("Where each activity datum comes from: data tier, basis (ledger, bill or meters), the raw "
                        "file with its SHA-256 and the lake batch.")),
    "raw_files": ("原始文件", "Raw files"),
    "factors_intro": ("每个排放因子的数值、来源文件与表号、年份、地区及选用理由。",
                      "Each factor's value, document and table, year, region and why it was chosen."),
    "unverified_note": ("标注 UNVERIFIED 的因子取自未经核实的转录，正式报送前须核对原文。",
                        ("Factors marked UNVERIFIED come from unverified transcriptions: check the official text "
                         "before regulatory use.")),
    "eff_intro": ("碳效 = 排放总量 ÷ 工业增加值（tCO2e/万元）；产品碳排放强度 = 排放 ÷ 产量。",
                  ("Carbon efficiency = total emissions ÷ value added (tCO2e per 10⁴ CNY); product intensity = "
                   "emissions ÷ output.")),
    "no_value_added": ("本期无增加值数据，碳效无法计算。", ("No value added for the period: carbon efficiency cannot be "
                       "computed.")),
    "quality_summary": ("数据质量概况", "Overview"), "tiers": ("活动数据级别", "Activity data by tier"),
    "tiers_2025": ("活动数据优先级（一级 > 二级（记录换算） > 替代数据（说明相似工艺））",
                   ("Activity-data priority (primary > secondary (conversion recorded) > proxy (similar process "
                    "documented))")),
    "bases": ("取数依据", "Basis of the activity data"),
    "reconciliation": ("账单与计量核对", "Bills and ledger against meters"),
    "quarantine": ("隔离数据", "Quarantined rows"), "source_coverage": ("排放源数据覆盖", "Activity data coverage"),
    "meter_quality": ("计量完整率", "Meter completeness"), "none": ("无", "none"),
    "no_lake": ("数据来自文件目录（快速路径），无数据湖状态；以下为台账与计量核对。",
                "The data come from a file catalog (quick path): no lake status; the ledger-vs-meter check follows."),
    "a1": ("方法 1：误差传播", "Approach 1: error propagation"),
    "a2": ("方法 2：蒙特卡洛模拟", "Approach 2: Monte Carlo"),
    "a1_short": ("方法 1", "approach 1"), "a2_short": ("方法 2", "approach 2"),
    "a1_text": (("乘积 U = √(ΣU_i²)；求和 U = √(Σ(U_i·x_i)²) / |Σx_i|。同一类别内各记录共用同一输入误差（完全相关），"
                 "类别之间相互独立。"),
                ("Product U = √(ΣU_i²); sum U = √(Σ(U_i·x_i)²) / |Σx_i|. Within a category the records share each "
                 "input's error (fully correlated); categories are independent.")),
    "a2_text": (("对每类输入按其分布抽样（同一类别共用一次抽样），逐条重算排放并汇总至数据立方体；"
                 "U = (P97.5 − P2.5) / 2 / |均值|。"),
                ("Each input is drawn from its distribution (one draw per category), every record recomputed and "
                 "summed into the cube; U = (P97.5 − P2.5) / 2 / |mean|.")),
    "inputs": ("不确定性输入及来源", "Uncertainty inputs and their sources"),
    "assumption_note": ("标注“假设（UNVERIFIED）”的不确定性为工作台的缺省假设，应以企业自身数据替换。",
                        ("Uncertainties marked “assumption (UNVERIFIED)” are the workbench's placeholders: replace "
                         "them with the enterprise's own figures.")),
    "samples": ("抽样次数", "Draws"), "seed": ("随机种子", "Seed"),
    "mc_mean": ("均值", "Mean"), "notes": ("说明", "Notes"),
    "edition_text": (("GB/T 32150—2025 于 2025-12-31 发布、2026-07-01 实施；报告年度 ≤ 2025 适用 2015 版，"
                      "2026 年起适用 2025 版。"),
                     ("GB/T 32150—2025 was published on 2025-12-31 and is in force from 2026-07-01; reporting "
                      "years up to 2025 follow the 2015 edition, from 2026 the 2025 edition.")),
    "footer": ("由碳效工作台生成", "Generated by the Carbon Efficiency Workbench"),
    "yes": ("是", "yes"), "no": ("否", "no"),
}

#: column headers of the reporting tables: key → (zh, en)
COLUMNS = {
    "source": ("排放源", "Source"), "name": ("名称", "Name"), "tco2e": ("排放量 tCO2e", "tCO2e"),
    "share": ("占比", "Share"), "gas": ("气体", "Gas"), "mass_t": ("气体质量 t", "Mass of gas (t)"),
    "gwp": ("GWP", "GWP"), "facility": ("设施", "Facility"), "total": ("合计", "Total"),
    "period": ("月份", "Month"), "item": ("品种", "Item"), "item_name": ("品种名称", "Item name"),
    "unit": ("单位", "Unit"), "quantity": ("活动数据", "Quantity"), "records": ("记录数", "Records"),
    "data_tier": ("数据级别", "Data tier"), "basis": ("取数依据", "Basis"), "documents": ("数据来源", "Documents"),
    "lake_batches": ("数据湖批次", "Lake batches"), "raw_files": ("原始文件", "Raw files"),
    "raw_sha256": ("原始文件 SHA-256", "Raw SHA-256"), "batch_id": ("批次", "Batch"), "kind": ("类型", "Kind"),
    "raw_name": ("文件名", "File"), "sha256": ("SHA-256", "SHA-256"), "size": ("字节", "Bytes"),
    "connector": ("连接器", "Connector"), "sender": ("发送方", "Sender"), "received_at": ("接收时间", "Received"),
    "rows_curated": ("入湖行数", "Rows stored"), "used_for": ("用途", "Used for"),
    "factor_id": ("因子编号", "Factor id"), "items": ("品种", "Items"), "value": ("数值", "Value"),
    "factor_set": ("因子集", "Factor set"), "document": ("文件", "Document"), "table": ("表/条款", "Table"),
    "year": ("年份", "Year"), "region": ("地区", "Region"), "verified": ("已核实", "Verified"),
    "reason": ("选用理由", "Why chosen"), "value_unit": ("数值 单位", "Value"),
    "source_doc": ("来源文件与表号", "Document, table"), "node_id": ("节点", "Node"), "parent_id": ("上级", "Parent"),
    "level": ("层级", "Level"), "classification": ("分项", "Class"), "identifier": ("标识", "Identifier"),
    "sign": ("计入方式", "Enters the total"), "clause": ("条款/公式", "Clause / formula"),
    "value_added": ("增加值 万元", "Value added (10⁴ CNY)"),
    "carbon_efficiency": ("碳效 tCO2e/万元", "Carbon efficiency (tCO2e/10⁴ CNY)"),
    "indicator": ("指标", "Indicator"), "month": ("月份", "Month"), "reason_q": ("原因", "Reason"),
    "rows": ("行数", "Rows"), "lake_table": ("数据表", "Lake table"), "batches": ("批次数", "Batches"),
    "months": ("月数", "Months"),
    "months_missing": ("缺数月数", "Months without data"), "billed": ("账单/台账量", "Billed"),
    "meters": ("计量量", "Metered"), "difference": ("差额", "Difference"), "ratio": ("比值", "Ratio"),
    "flagged_months": ("超差月数", "Months beyond tolerance"), "status": ("状态", "Status"),
    "completeness": ("完整率", "Completeness"), "meter_id": ("计量器具", "Meter"),
    "u_activity_pct": ("活动数据 U %", "Activity U %"), "u_factors_pct": ("因子 U %", "Factors U %"),
    "u_pct": ("U %", "U %"), "variance_share": ("方差贡献", "Share of variance"),
    "u_ncv_pct": ("低位发热量 U %", "NCV U %"), "u_carbon_content_pct": ("含碳量 U %", "Carbon content U %"),
    "u_oxidation_rate_pct": ("氧化率 U %", "Oxidation U %"), "u_emission_factor_pct": ("排放因子 U %", "EF U %"),
    "u_purity_pct": ("纯度 U %", "Purity U %"), "u_gwp_pct": ("GWP U %", "GWP U %"),
    "mean": ("均值", "Mean"), "u_approach1_pct": ("方法 1 U %", "Approach 1 U %"), "p2_5": ("P2.5", "P2.5"),
    "p97_5": ("P97.5", "P97.5"),
    "input": ("输入", "Input"), "category": ("类别", "Category"), "distribution": ("分布", "Distribution"),
    "source_text": ("来源", "Source of the figure"),
}

#: sheets of the workbook: table key → (zh, en) sheet names (≤ 31 characters)
SHEETS = {
    "summary": ("汇总", "Summary"), "entity": ("报告主体", "Entity"), "boundary": ("核算边界", "Boundary"),
    "sources": ("排放源", "Sources"), "by_source": ("按排放源", "By source"), "by_gas": ("按气体", "By gas"),
    "by_facility": ("按设施", "By facility"), "monthly": ("月度", "Monthly"),
    "activity": ("活动数据", "Activity data"), "raw_files": ("原始文件", "Raw files"),
    "factors": ("排放因子", "Factors"), "efficiency": ("碳效", "Carbon efficiency"),
    "quality_summary": ("数据质量", "Data quality"), "data_tiers": ("数据级别", "Data tiers"),
    "source_coverage": ("数据覆盖", "Coverage"), "reconciliation": ("账单计量核对", "Reconciliation"),
    "quarantine": ("隔离数据", "Quarantine"), "meter_completeness": ("计量完整率", "Meter completeness"),
    "uncertainty_approach1": ("不确定性-方法1", "Uncertainty approach 1"),
    "uncertainty_approach2": ("不确定性-方法2", "Uncertainty approach 2"),
    "uncertainty_inputs": ("不确定性输入", "Uncertainty inputs"), "ledger": ("核算明细", "Ledger"),
}

LEVEL_NAMES = {"enterprise": ("企业", "enterprise"), "facility": ("设施", "facility"),
               "workshop": ("车间", "workshop"), "process": ("工序", "process"), "meter": ("计量点", "meter")}
CLASS_NAMES_EN = {"main_production": "main production", "auxiliary": "auxiliary production",
                  "non_production": "non-production", "external_supply": "external supply"}
INPUT_NAMES = {"activity": ("活动数据", "activity data"), "ncv": ("低位发热量", "net calorific value"),
               "carbon_content": ("单位热值含碳量", "carbon content"), "oxidation_rate": ("碳氧化率", "oxidation rate"),
               "emission_factor": ("排放因子", "emission factor"), "purity": ("纯度", "purity"), "gwp": ("GWP", "GWP")}
STATUS_NAMES = {"sourced": ("有出处", "sourced"), "definition": ("按定义", "by definition"),
                "assumption": ("假设（UNVERIFIED）", "assumption (UNVERIFIED)"), "override": ("用户设定", "user override")}
BASIS_NAMES = {"ledger": ("台账", "ledger"), "invoice": ("发票/账单", "bill"), "meters": ("计量", "meters")}


def _t(key: str, language: str) -> str:
    zh, en = TEXT[key]
    return zh if language == "zh" else en


def _pick(pair, language: str) -> str:
    return pair[0] if language == "zh" else pair[1]


# ------------------------------------------------------------------------------------ factor reasons
_SELECTION_ZH = (
    (r"no (\d{4}) value published; latest data year (\d{4}) used", r"无 \1 年发布值，采用最新数据年 \2"),
    (r"no factor for ([\w-]+); ([\w-]+) used", r"无 \1 因子，采用 \2"),
    (r"no value for (\d{4}) or earlier; earliest data year (\d{4}) used", r"无 \1 年及以前数值，采用最早数据年 \2"),
    (r"no reporting year given; latest data year (\d{4}) used", r"未给报告年度，采用最新数据年 \1"),
    (r"site-measured value overrides the default", "实测值优先于缺省值"),
)


def _selection_zh(text: str) -> str:
    out = []
    for part in [p.strip() for p in str(text).split(";") if p.strip()]:
        for pat, rep in _SELECTION_ZH:
            if re.fullmatch(pat, part):
                part = re.sub(pat, rep, part)
                break
        out.append(part)
    return "；".join(out)


def _unverified(table: pd.DataFrame, fid: str) -> str:
    if fid in table.index and not bool(table.at[fid, "verified"]):
        return f" — {table.at[fid, 'note'] or 'UNVERIFIED'}"
    return ""


def factor_reasons(factors: pd.DataFrame, library=None, language: str = "zh") -> pd.DataFrame:
    """``factors`` (the inventory's ``factors_used``) with ``factor_set`` and ``reason`` — why each factor
    was chosen: a site measurement overriding the default, or the factor library's default set for
    the item's category and kind, with the library's selection note (region or year fallback)."""
    from workbench.core.factors import DEFAULT_SETS, default_library

    lib = library or default_library()
    f = factors.copy()
    if f.empty:
        return f.assign(factor_set=pd.Series(dtype=str), reason=pd.Series(dtype=str))
    table = lib.table.set_index("factor_id")
    sets, reasons = [], []
    for r in f.itertuples(index=False):
        fid, kind = str(r.factor_id), str(r.kind)
        fset = str(table.at[fid, "factor_set"]) if fid in table.index else "site"
        sets.append(fset)
        sel = str(getattr(r, "selection", "") or "")
        if fid not in table.index or fset == "site" or fid.startswith("site:"):
            base = ("实测值优先于缺省值（见记录的数据来源文件）" if language == "zh"
                    else "site-measured value overrides the default (see the record's document)")
            reasons.append(base)
            continue
        items = [i.strip() for i in str(r.items).split(",") if i.strip()]
        try:
            cat = lib.category(items[0]) if items else ""
        except Exception:  # noqa: BLE001 - an item unknown to this library
            cat = ""
        default = fset in DEFAULT_SETS.get((cat, kind), []) or kind == "gwp"
        if language == "zh":
            base = (f"因子库对“{cat or '—'}/{kind}”的缺省因子集 {fset}" if default
                    else f"因子集 {fset}（该品种唯一可用）")
            if kind == "gwp":
                base = f"所选 GWP 集 {fset}（100 年）"
            year = getattr(r, "year", None)
            if year is not None and not (isinstance(year, float) and math.isnan(year)) and not sel:
                base += f"；数据年 {int(year)}"
            reasons.append(base + (f"；{_selection_zh(sel)}" if sel else "") + _unverified(table, fid))
        else:
            base = (f"the factor library's default set for {cat or '–'}/{kind}: {fset}" if default
                    else f"factor set {fset} (the one holding this item)")
            if kind == "gwp":
                base = f"the chosen GWP set {fset} (100-year)"
            year = getattr(r, "year", None)
            if year is not None and not (isinstance(year, float) and math.isnan(year)) and not sel:
                base += f"; data year {int(year)}"
            reasons.append(base + (f"; {sel}" if sel else "") + _unverified(table, fid))
    f["factor_set"] = sets
    f["reason"] = reasons
    return f


# ------------------------------------------------------------------------------------ the report
@dataclass
class AnnualReport:
    """An annual (or monthly / quarterly) GHG report.

    ``inventory`` the :class:`workbench.inventory.compute.Inventory` of the period; ``paths``
    {format: Path} of the files written; ``figures`` the reported numbers (JSON-ready: totals by
    source, gas and facility in tCO2e, value added in 万元, carbon efficiency in tCO2e/万元,
    uncertainty in %, data-quality counts); ``tables`` the reporting tables (what the XLSX holds);
    ``approach1`` / ``monte_carlo`` the uncertainty (:mod:`workbench.accounting.uncertainty`);
    ``status`` the data status (:class:`workbench.reports.status.DataStatus`, None without a lake).
    """

    enterprise: str
    period: ReportPeriod
    edition: str
    language: str
    inventory: object
    figures: dict
    tables: dict
    sections: list
    approach1: object = None
    monte_carlo: object = None
    status: object = None
    paths: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict, repr=False)
    generated: str = ""
    headers: dict = field(default_factory=dict, repr=False)

    @property
    def year(self) -> int:
        return self.period.year


def _is_catalog(source) -> bool:
    if hasattr(source, "entries") or type(source).__name__ == "Catalog":
        return True
    return isinstance(source, (str, Path)) and str(source).lower().endswith((".yaml", ".yml"))


def _open_registry(registry):
    """(MasterData or None, whether we opened it)."""
    if registry is None or registry == "":
        return None, False
    if isinstance(registry, (str, Path)):
        from workbench.registry import MasterData

        url = str(registry)
        if "://" not in url:
            url = f"sqlite:///{Path(url).resolve()}"
        return MasterData(url), True
    return registry, False


def _inventory(source, enterprise, period: ReportPeriod, registry, gwp):
    """(inventory, the enterprise's lake or None)."""
    from workbench.inventory.compute import (
        compute_inventory,
        compute_inventory_from_lake,
    )

    if _is_catalog(source):
        from workbench.lake.catalog import open_catalog

        cat = open_catalog(source) if isinstance(source, (str, Path)) else source
        inv = compute_inventory(cat, period.start, period.end, gwp=gwp)
        got = inv.enterprise.get("enterprise_id")
        if enterprise and got and got != enterprise:
            raise ReportError(f"the catalog holds enterprise '{got}', not '{enterprise}'")
        return inv, None
    from workbench.lake.store import Lake

    lake = Lake(str(source)) if isinstance(source, (str, Path)) else source
    md, opened = _open_registry(registry)
    try:
        inv = compute_inventory_from_lake(lake, enterprise, period.start, period.end, registry=md, gwp=gwp)
    finally:
        if opened:
            md.dispose()
    return inv, lake.for_enterprise(enterprise)


def _num(x):
    if x is None:
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) or math.isinf(x) else x


def _split(v) -> list[str]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    return [p.strip() for p in re.split(r"[;,]", str(v)) if p.strip()]


def _join(values) -> str:
    return "; ".join(dict.fromkeys(v for v in values if v))


def _documents(docs, limit: int = 4) -> str:
    """The distinct documents behind some records, months folded (``… 2025-01`` … ``… 2025-12`` →
    ``… YYYY-MM (×12)``) and a bill's allocation note dropped; at most ``limit`` named."""
    pats: dict = {}
    for d in docs:
        d = re.sub(r"\s*[—-]+\s*allocated .*$", "", str(d)).strip()
        if not d:
            continue
        p = re.sub(r"\b\d{4}-\d{2}\b", "YYYY-MM", d)
        pats[p] = pats.get(p, 0) + 1
    out = [p + (f" (×{n})" if n > 1 else "") for p, n in pats.items()]
    more = len(out) - limit
    return "; ".join(out[:limit]) + (f"; … (+{more})" if more > 0 else "")


def _item_names(lib, items, language) -> dict:
    out = {}
    for it in items:
        try:
            info = lib.item_info(it)
            out[it] = info.get(f"name_{language}") or it
        except Exception:  # noqa: BLE001 - an item the library does not know keeps its code
            out[it] = it
    return out


def _tables(inv, lake, period: ReportPeriod, edition: str, language: str, status, a1, mc, inputs, gwp) -> dict:
    """Every reporting table, derived from the inventory, the lake's batches, the status and the uncertainty."""
    from workbench.core.factors import default_library

    lib = default_library(gwp)
    regime = inv.regime
    led = inv.ledger
    names = regime.source_names(language)
    b = inv.boundary
    ed = EDITIONS.get(edition, {})
    items = _item_names(lib, sorted(set(led["item"].astype(str))), language)
    t: dict = {}
    total = float(inv.summary["total_tco2e"])

    # entity
    e = inv.enterprise
    industry = " ".join(x for x in (e.get("industry_code", ""), e.get(f"industry_name_{language}", "")) if x)
    contact = " ".join(x for x in (e.get("contact_person", e.get("contact", "")), e.get("contact_phone", ""),
                                   e.get("contact_email", "")) if x)
    rows = [("enterprise_id", e.get("enterprise_id", "")),
            ("name", " / ".join(x for x in (e.get("name_zh", ""), e.get("name_en", "")) if x)),
            ("credit_code", e.get("uscc", e.get("unified_social_credit_code", ""))), ("industry", industry),
            ("region", e.get("region", "")), ("address", e.get("address", "")),
            ("legal", e.get("legal_representative", "")), ("contact", contact),
            ("prefix", e.get("identifier_prefix", "")), ("period", f"{period.start} – {period.end}"),
            ("standard", f"{edition} {regime.title_zh if language == 'zh' else regime.title_en}"
                         + (f"; {e['sector_standard']}" if e.get("sector_standard") else "")),
            ("edition_rule", _t("edition_text", language)),
            ("gwp", f"{gwp} (100-year)"),
            ("library", str(lib.version))]
    t["entity"] = pd.DataFrame([(_t(k, language), v) for k, v in rows], columns=["indicator", "value"])

    # boundary (down to the processes; the meters are the data-quality tables')
    nodes = b.nodes[b.nodes["level"] != "meter"].reset_index(drop=True)
    cls = b.classification_of(nodes["node_id"]).to_numpy() if len(nodes) else []
    t["boundary"] = pd.DataFrame({
        "node_id": nodes["node_id"], "parent_id": nodes["parent_id"],
        "level": [_pick(LEVEL_NAMES.get(x, (x, x)), language) for x in nodes["level"]],
        "name": [b.name(n, language) for n in nodes["node_id"]],
        "classification": [(CLASSIFICATION_NAMES_ZH.get(c, c) if language == "zh" else CLASS_NAMES_EN.get(c, c))
                           for c in cls],
        "identifier": nodes["identifier"]})

    # emission sources
    src_rows = []
    for s in regime.sources:
        g = led[led["source"] == s.key]
        clause = s.clause.split(": ", 1)[-1] if ": " in s.clause else s.clause
        if ed.get("clauses", {}).get(s.key):
            clause = f"{edition.replace('-2025', '—2025')} {ed['clauses'][s.key]}: {clause}"
        elif edition in EDITIONS:       # the 2015 edition: no clause numbers of the 2025 edition
            clause = re.sub(r"\s*\(§[\d.–-]+\)", "", clause)
        sign = {1: ("加", "added"), -1: ("减", "subtracted"), 0: ("单列，不计入", "reported, not in the total")}[s.sign]
        src_rows.append({"source": s.key, "name": getattr(s, f"name_{language}"), "sign": _pick(sign, language),
                         "clause": clause, "records": len(g),
                         "items": ", ".join(items.get(i, i) for i in sorted(set(g["item"].astype(str)))),
                         "tco2e": float(g["tco2e"].sum())})
    for key, zh, en, clause in ed.get("extra_sources", ()):
        src_rows.append({"source": key, "name": zh if language == "zh" else en, "sign": _pick(("加", "added"), language),
                         "clause": f"GB/T 32150—2025 {clause}", "records": 0, "items": _t("not_recorded", language),
                         "tco2e": 0.0})
    t["sources"] = pd.DataFrame(src_rows)

    # emissions by source, gas, facility, month
    bs = inv.by_source()
    t["by_source"] = pd.DataFrame({"source": bs["source"], "name": [names[s] for s in bs["source"]],
                                   "tco2e": bs["tco2e"],
                                   "share": bs["tco2e"] / total if total else np.nan})
    gas_rows = []
    for gname, g in led.groupby("gas", sort=True):
        mass = float((g["emission_t"] * g["sign"]).sum())
        gwps = sorted(set(g["gwp"].round(6)))
        gas_rows.append({"gas": gname, "mass_t": mass, "gwp": ", ".join(f"{x:g}" for x in gwps),
                         "tco2e": float(g["tco2e"].sum())})
    t["by_gas"] = pd.DataFrame(gas_rows, columns=["gas", "mass_t", "gwp", "tco2e"])
    bf = inv.by_facility()
    fac = pd.DataFrame({"facility": bf.index.astype(str),
                        "name": [b.name(f, language) if f in b.nodes.index else f for f in bf.index]})
    for s in regime.source_keys:
        fac[s] = bf[s].to_numpy() if s in bf else 0.0
    fac["total"] = bf["total"].to_numpy()
    t["by_facility"] = fac
    mo = inv.monthly()
    monthly = pd.DataFrame({"period": mo.index.astype(str)})
    for s in regime.source_keys:
        monthly[s] = mo[s].to_numpy() if s in mo else 0.0
    monthly["total"] = mo.sum(axis=1).to_numpy()
    t["monthly"] = monthly

    # activity data and their sources, raw files
    batches = lake.batches() if lake is not None else pd.DataFrame()
    bmeta = batches.set_index("batch_id") if len(batches) else pd.DataFrame()
    has_lineage = "lake_batch" in led
    led_b = led.assign(_batches=led["lake_batch"].map(_split) if has_lineage else [[] for _ in range(len(led))],
                       _basis=led["basis"].astype(str) if "basis" in led else "")
    act_rows = []
    for (src, item, unit), g in led_b.groupby(["source", "item", "unit"], sort=False):
        bids = list(dict.fromkeys(x for lst in g["_batches"] for x in lst))
        files = [str(bmeta.at[x, "raw_name"]) for x in bids if len(bmeta) and x in bmeta.index]
        shas = list(dict.fromkeys(x for v in g.get("raw_sha256", []) for x in _split(v)))
        act_rows.append({
            "source": src, "name": names.get(src, src), "item": item, "item_name": items.get(item, item),
            "unit": unit, "quantity": float(g["quantity"].sum()), "records": len(g),
            "data_tier": _join(sorted(set(g["data_tier"].astype(str)))),
            "basis": _join(_pick(BASIS_NAMES.get(x, (x, x)), language) for x in sorted(set(g["_basis"]))),
            "documents": _documents(g["document"].astype(str)),
            "lake_batches": _join(bids), "raw_files": _join(files), "raw_sha256": _join(shas),
            "tco2e": float(g["tco2e"].sum())})
    t["activity"] = pd.DataFrame(act_rows)
    used = {}
    for lst, src in zip(led_b["_batches"], led_b["source"]):
        for x in lst:
            used.setdefault(x, set()).add(names.get(src, src))
    if lake is not None:
        try:
            prod = lake.retrieve("production")
        except Exception:  # noqa: BLE001 - a lake without a production table
            prod = pd.DataFrame()
        if len(prod) and "batch_id" in prod:
            p = prod[prod["period"].astype(str).isin(list(inv.efficiency["period"].astype(str)))]
            for x in pd.unique(p["batch_id"].astype(str)):
                used.setdefault(x, set()).add(_t("value_added", language))
    raw_rows = []
    for bid, uses in used.items():
        r = bmeta.loc[bid] if len(bmeta) and bid in bmeta.index else None
        raw_rows.append({"batch_id": bid, "kind": "" if r is None else r["kind"],
                         "raw_name": "" if r is None else r["raw_name"], "sha256": "" if r is None else r["sha256"],
                         "size": None if r is None else r["size"], "source": "" if r is None else r["source"],
                         "connector": "" if r is None else r["connector"], "sender": "" if r is None else r["sender"],
                         "received_at": "" if r is None else r["received_at"],
                         "rows_curated": None if r is None else r["rows_curated"],
                         "used_for": ", ".join(sorted(uses))})
    if lake is None:                         # the quick path: the catalog's files
        raw_rows = [{"batch_id": "", "kind": "catalog", "raw_name": str(d), "sha256": "", "size": None,
                     "source": "", "connector": "", "sender": "", "received_at": "", "rows_curated": None,
                     "used_for": ""} for d in sorted(set(led["document"].astype(str)))]
    t["raw_files"] = pd.DataFrame(raw_rows, columns=["batch_id", "kind", "raw_name", "sha256", "size", "source",
                                                     "connector", "sender", "received_at", "rows_curated",
                                                     "used_for"])

    # factors with the reason each was chosen
    fr = factor_reasons(inv.factors_used, lib, language)
    cols = ["factor_id", "kind", "items", "value", "unit", "factor_set", "document", "table", "year", "region",
            "verified", "records", "reason"]
    t["factors"] = fr[[c for c in cols if c in fr]] if len(fr) else pd.DataFrame(columns=cols)
    f = t["factors"]
    if "year" in f:
        f["year"] = [("" if pd.isna(y) else str(int(y))) for y in pd.to_numeric(f["year"], errors="coerce")]
    t["factors_view"] = pd.DataFrame({      # the HTML/PDF's narrower view of the same rows
        "factor_id": f["factor_id"], "kind": f["kind"], "items": f["items"],
        "value_unit": [f"{v:g} {u}" for v, u in zip(f["value"], f["unit"])],
        "source_doc": [", ".join(x for x in (str(d), str(tb)) if x and x != "nan") for d, tb in
                       zip(f["document"], f["table"])],
        "year": f["year"], "region": f["region"], "verified": f["verified"], "reason": f["reason"]})

    # carbon efficiency
    eff = inv.efficiency.copy()
    tot_row = {"period": "合计" if language == "zh" else "Total", "tco2e": float(eff["tco2e"].sum()),
               "value_added": inv.summary.get("value_added"), "carbon_efficiency": inv.summary.get("carbon_efficiency")}
    for p in inv.products:                   # the year's output and intensity: Σ emissions ÷ Σ output
        oc = next((c for c in eff.columns if c.startswith(f"output_{p.product}_")), None)
        if oc is None:
            continue
        u = oc[len(f"output_{p.product}_"):]
        out = float(eff[oc].sum(min_count=1)) if eff[oc].notna().any() else np.nan
        tot_row[oc] = out
        tot_row[f"enterprise_tco2e_per_{u}_{p.product}"] = tot_row["tco2e"] / out if out and out > 0 else np.nan
    t["efficiency"] = pd.concat([eff, pd.DataFrame([tot_row])], ignore_index=True)

    # data quality
    # share of the gross emissions (|tCO2e|, exported energy counted) by data tier
    by_tier = led.assign(_abs=led["tco2e"].abs()).groupby(led["data_tier"].astype(str))
    tier = by_tier.agg(records=("tco2e", "size"), tco2e=("tco2e", "sum"), gross=("_abs", "sum")).reset_index()
    gross = float(tier["gross"].sum())
    tier["share"] = tier.pop("gross") / gross if gross else np.nan
    t["data_tiers"] = tier
    q = []
    if status is not None:
        m = status.meters
        months_n = len(status.months)
        q += [("months", months_n), ("meters in service", int(m["meter_id"].nunique()) if len(m) else 0),
              ("mean meter completeness", float(m["completeness"].mean()) if len(m) else None),
              ("meter-months below 99 %", int((m["completeness"] < 0.99).sum()) if len(m) else 0),
              ("quarantined rows", int(status.quarantine["rows"].sum()) if len(status.quarantine) else 0),
              ("imports (batches)", len(status.imports)),
              ("source-months without a ledger record or bill",
               int(status.sources["missing"].sum()) if len(status.sources) else 0),
              ("reconciliation months beyond tolerance",
               int(status.reconciliation["flagged"].sum()) if len(status.reconciliation) else 0),
              ("tolerance of the reconciliation", status.tolerance)]
        zh_q = {"months": "月数", "meters in service": "在用计量器具", "mean meter completeness": "计量平均完整率",
                "meter-months below 99 %": "完整率低于 99 % 的器具·月", "quarantined rows": "隔离行数",
                "imports (batches)": "导入批次", "source-months without a ledger record or bill": "缺台账/账单的排放源·月",
                "reconciliation months beyond tolerance": "核对超差的月份", "tolerance of the reconciliation": "核对容差"}
        q = [(zh_q[k] if language == "zh" else k, v) for k, v in q]
        s = status.sources
        cov = (s.groupby(["source", "item"], sort=False)
               .agg(months=("month", "size"), months_missing=("missing", "sum"),
                    basis=("basis", lambda x: _join(sorted(set(x))))).reset_index()) if len(s) else \
            pd.DataFrame(columns=["source", "item", "months", "months_missing", "basis"])
        cov.insert(1, "name", [names.get(x, x) for x in cov["source"]])
        t["source_coverage"] = cov
        r = status.reconciliation
        if len(r):
            rec = (r.groupby(["source", "item", "unit"], sort=False)
                   .agg(billed=("billed", "sum"), meters=("meters", lambda x: x.sum(min_count=1)),
                        flagged_months=("flagged", "sum"),
                        status=("status", lambda x: _join(sorted(set(x))))).reset_index())
            rec["difference"] = rec["billed"] - rec["meters"]
            with np.errstate(divide="ignore", invalid="ignore"):
                rec["ratio"] = np.where(rec["meters"] > 0, rec["billed"] / rec["meters"], np.nan)
            rec = rec[["source", "item", "unit", "billed", "meters", "difference", "ratio", "flagged_months", "status"]]
        else:
            rec = pd.DataFrame(columns=["source", "item", "unit", "billed", "meters", "difference", "ratio",
                                        "flagged_months", "status"])
        t["reconciliation"] = rec
        qs = status.quarantine.rename(columns={"reason": "reason_q", "table": "lake_table"})
        t["quarantine"] = qs
        mc_ = (m.groupby(["meter_id", "source", "item", "unit"], sort=True)
               .agg(completeness=("completeness", "mean"), months=("month", "size")).reset_index()) if len(m) else \
            pd.DataFrame(columns=["meter_id", "source", "item", "unit", "completeness", "months"])
        t["meter_completeness"] = mc_
    else:
        mcheck = inv.meter_check if inv.meter_check is not None else pd.DataFrame()
        t["reconciliation"] = mcheck
    q.append((_t("tiers", language) + " — primary", float(tier.loc[tier["data_tier"] == "primary", "share"].sum())
              if gross else None))
    t["quality_summary"] = pd.DataFrame({"indicator": [k for k, _ in q], "value": pd.Series([v for _, v in q],
                                                                                        dtype=object)})

    # uncertainty
    a1c = a1.categories.copy()
    a1c.insert(1, "name", [names.get(x, x) for x in a1c["source"]])
    a1c.insert(3, "item_name", [items.get(x, x) for x in a1c["item"]])
    t["uncertainty_approach1"] = a1c.drop(columns=["category_key"])
    a2 = mc.by_source.copy()
    order = {k: i for i, k in enumerate(regime.source_keys)}
    a2 = a2.sort_values("source", key=lambda s: s.map(order)).reset_index(drop=True)
    a2.insert(1, "name", [names.get(x, x) for x in a2["source"]])
    a1_src = a1.by_source.set_index("source")["u_pct"]
    a2.insert(3, "u_approach1_pct", [a1_src.get(x, np.nan) for x in a2["source"]])
    tot = {"source": "total", "name": _t("total", language), "tco2e": mc.total_tco2e, "u_approach1_pct": a1.u_pct,
           **{k: mc.total[k] for k in ("mean", "p2_5", "p97_5", "u_pct")}}
    t["uncertainty_approach2"] = pd.concat([a2, pd.DataFrame([tot])], ignore_index=True)
    ui = inputs.drop_duplicates(["input", "category", "item", "basis"]).copy()
    ui["input"] = [_pick(INPUT_NAMES.get(x, (x, x)), language) for x in ui["input"]]
    ui["status"] = [_pick(STATUS_NAMES.get(x, (x, x)), language) for x in ui["status"]]
    ui["item_name"] = [items.get(x, x) for x in ui["item"]]
    t["uncertainty_inputs"] = ui[["input", "category", "item", "item_name", "basis", "u_pct", "distribution",
                                  "status", "source"]].rename(columns={"source": "source_text"}).reset_index(drop=True)

    # summary and the ledger itself
    s = inv.summary
    summ = [(_t("total", language), total, "tCO2e")]
    summ += [(names[k], v, "tCO2e") for k, v in s["by_source"].items()]
    summ += [(_t("value_added", language), _num(s.get("value_added")), "万元"),
             (_t("carbon_efficiency", language), _num(s.get("carbon_efficiency")), "tCO2e/万元"),
             (_t("a1", language) + " U", a1.u_pct, "%"), (_t("a2", language) + " U", mc.total["u_pct"], "%"),
             ("P2.5", mc.total["p2_5"], "tCO2e"), ("P97.5", mc.total["p97_5"], "tCO2e"),
             (_t("standard", language), edition, ""), (_t("period", language), period.text, "")]
    t["summary"] = pd.DataFrame(summ, columns=["indicator", "value", "unit"])
    ledger = led.copy()
    ledger.attrs = {}
    t["ledger"] = ledger
    return t


def _product_headers(inv, language: str) -> dict:
    """Headers of the efficiency table's product columns (``output_cement_t`` → 水泥产量 t)."""
    out = {}
    for p in inv.products:
        name = (p.name_zh if language == "zh" else p.name_en) or p.product
        for c in inv.efficiency.columns:
            if c.startswith(f"output_{p.product}_"):
                u = c[len(f"output_{p.product}_"):]
                out[c] = f"{name}产量 {p.unit}" if language == "zh" else f"{name} output ({p.unit})"
                out[f"enterprise_tco2e_per_{u}_{p.product}"] = (f"单位{name}排放 tCO2e/{p.unit}" if language == "zh"
                                                               else f"tCO2e per {p.unit} {name}")
    return out


def _figures(inv, period, edition, language, a1, mc, status, tables, gwp) -> dict:
    s = inv.summary
    q = {}
    if status is not None:
        m = status.meters
        q = {"mean_meter_completeness": _num(m["completeness"].mean()) if len(m) else None,
             "quarantined_rows": int(status.quarantine["rows"].sum()) if len(status.quarantine) else 0,
             "reconciliation_flagged_months": int(status.reconciliation["flagged"].sum())
             if len(status.reconciliation) else 0}
    return {
        "enterprise": inv.enterprise.get("enterprise_id", ""), "name_zh": inv.enterprise.get("name_zh", ""),
        "name_en": inv.enterprise.get("name_en", ""), "period": period.text, "period_kind": period.kind,
        "period_start": period.start, "period_end": period.end, "year": period.year, "edition": edition,
        "regime": inv.regime.name, "language": language, "gwp_set": gwp,
        "total_tco2e": _num(s["total_tco2e"]),
        "by_source": {k: _num(v) for k, v in s["by_source"].items()},
        "by_gas": {k: _num(v) for k, v in s["by_gas"].items()},
        "by_facility": {str(k): _num(v) for k, v in s["by_facility"].items()},
        "monthly": {str(k): _num(v) for k, v in inv.monthly().sum(axis=1).items()},
        "value_added": _num(s.get("value_added")), "carbon_efficiency": _num(s.get("carbon_efficiency")),
        "units": {"tco2e": "tCO2e", "value_added": "万元", "carbon_efficiency": "tCO2e/万元", "uncertainty": "%"},
        "uncertainty_approach1_pct": _num(a1.u_pct),
        "uncertainty_approach1_by_source_pct": {r.source: _num(r.u_pct) for r in a1.by_source.itertuples()},
        "uncertainty_approach2_pct": _num(mc.total["u_pct"]),
        "monte_carlo_mean_tco2e": _num(mc.total["mean"]), "monte_carlo_p2_5_tco2e": _num(mc.total["p2_5"]),
        "monte_carlo_p97_5_tco2e": _num(mc.total["p97_5"]), "monte_carlo_draws": mc.n, "monte_carlo_seed": mc.seed,
        "ledger_rows": len(inv.ledger), "raw_files": len(tables["raw_files"]),
        "factors": len(inv.factors_used),
        "unverified_factors": int((~inv.factors_used["verified"].astype(bool)).sum()) if len(inv.factors_used) else 0,
        **q,
    }


def build_report(source, enterprise: str | None, period, *, registry=None, language: str = "zh", gwp: str = "AR5",
                 uncertainties=None, draws: int = 10_000, seed: int = 20251, distribution: str | None = None,
                 images: bool = True) -> AnnualReport:
    """The report of ``period`` (:func:`parse_period`) without writing files.

    Parameters
    ----------
    source : Lake, lake root (path or URL), or an Intake catalog (object or ``.yaml`` path)
        Where the inventory comes from; a lake also gives the raw files' batches and the data status.
    enterprise : str
        The enterprise (its lake in the root).
    registry : MasterData or URL, optional
        Master data for the enterprise's record and boundary (default: what its lake holds).
    language : ``zh`` or ``en``
    gwp : str
        GWP set (AR5 default).
    uncertainties : mapping, optional
        Overrides of the default uncertainties (:func:`workbench.accounting.uncertainty.uncertainty_table`).
    draws, seed, distribution :
        The Monte Carlo (approach 2): number of draws, seed, ``normal``/``lognormal`` for every input
        (default: each input's own).
    images : bool
        Draw the figures (matplotlib) for the HTML/PDF.
    """
    from workbench.accounting.uncertainty import (
        approach1,
        ledger_inputs,
        monte_carlo,
        uncertainty_table,
    )

    if language not in LANGUAGES:
        raise ReportError(f"language '{language}' (zh or en)")
    p = period if isinstance(period, ReportPeriod) else parse_period(period)
    inv, lake = _inventory(source, enterprise, p, registry, gwp)
    regime = inv.regime
    edition = regime.edition(p.year)
    status = None
    if lake is not None:
        from workbench.reports.status import data_status

        status = data_status(lake, start=p.start, end=p.end, imports=None)
    table = uncertainty_table(uncertainties)
    inputs = ledger_inputs(inv.ledger, table, distribution=distribution)
    a1 = approach1(inv.ledger, table, inputs=inputs)
    mc = monte_carlo(inv.ledger, table, n=draws, seed=seed, distribution=distribution, inputs=inputs)
    gwp = str(gwp).upper()
    tables = _tables(inv, lake, p, edition, language, status, a1, mc, inputs, gwp)
    rep = AnnualReport(enterprise=enterprise or inv.enterprise.get("enterprise_id", ""), period=p, edition=edition,
                       language=language, inventory=inv, figures=_figures(inv, p, edition, language, a1, mc, status,
                                                                          tables, gwp),
                       tables=tables, sections=report_layout(regime, edition), approach1=a1, monte_carlo=mc,
                       status=status, generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
                       headers=_product_headers(inv, language))
    if images:
        rep.images = _images(rep)
    return rep


def _images(rep: AnnualReport) -> dict:
    from matplotlib.figure import Figure

    figs = inventory_figures(rep.inventory)
    out = {k: png_base64(f) for k, f in figs.items()}
    mc = rep.monte_carlo
    fig = Figure(figsize=(8, 3.0))
    ax = fig.subplots()
    ax.hist(mc.samples, bins=60, color="#7fb7a8", edgecolor="white")
    for x, ls in ((mc.total["p2_5"], "--"), (mc.total["mean"], "-"), (mc.total["p97_5"], "--")):
        ax.axvline(x, color="#2b6a4a", ls=ls, lw=1)
    ax.axvline(mc.total_tco2e, color="#b5562c", lw=1.2, label="inventory")
    ax.set_xlabel("tCO2e")
    ax.set_title(f"Monte Carlo, {mc.n:,} draws: mean, P2.5, P97.5")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out["monte_carlo"] = png_base64(fig)
    return out


# ------------------------------------------------------------------------------------ rendering
def _fmt(v, digits: int = 3) -> str:
    if v is None or v is pd.NA or v is pd.NaT:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "✓" if v else "✗"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return "–" if math.isnan(v) else f"{v:,.{digits}f}"
    return str(v)


def _header(col: str, language: str, source_names: dict, extra: dict | None = None) -> str:
    if extra and col in extra:
        return extra[col]
    if col in COLUMNS:
        return _pick(COLUMNS[col], language)
    if col in source_names:
        return source_names[col]
    return col


def render_html(rep: AnnualReport, *, for_pdf: bool = False) -> str:
    """The report as one self-contained HTML document (figures embedded as PNG); ``for_pdf`` adds the
    page rules WeasyPrint uses (A4, page numbers) and shortens the SHA-256 in the running text."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("workbench.reports", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["num"] = _fmt
    lang = rep.language
    inv = rep.inventory
    names = inv.regime.source_names(lang)
    kind_title = {"year": "title_year", "quarter": "title_quarter", "month": "title_month"}[rep.period.kind]

    def table(key, digits=None, columns=None):
        df = rep.tables.get(key)
        if df is None:
            return {"columns": [], "rows": []}
        cols = list(columns or df.columns)
        digits = digits or {}
        rows = []
        for r in df[cols].itertuples(index=False):
            rows.append([(_fmt(v, digits.get(c, 3)), isinstance(v, (int, float, np.integer, np.floating))
                          and not isinstance(v, (bool, np.bool_))) for c, v in zip(cols, r)])
        return {"columns": [_header(c, lang, names, rep.headers) for c in cols], "keys": cols, "rows": rows}

    ent = inv.enterprise
    ed = EDITIONS.get(rep.edition, {})
    plus = [names[s.key] for s in inv.regime.sources if s.sign > 0]
    minus = [names[s.key] for s in inv.regime.sources if s.sign < 0]
    plus[2:2] = [zh if lang == "zh" else en for _, zh, en, _ in ed.get("extra_sources", ())]
    formula = "E = " + " + ".join(plus) + "".join(f" − {m}" for m in minus)
    if ed.get("clauses", {}).get("total"):
        formula += f"  (GB/T 32150—2025 {ed['clauses']['total']})"
    return env.get_template("annual.html.j2").render(
        rep=rep, inv=inv, ent=ent, lang=lang, t=lambda k: _t(k, lang), for_pdf=for_pdf, font=CJK_FONT,
        title=_t(kind_title, lang), period_label=rep.period.label(lang),
        heading=(f"{rep.period.label(lang)}{_t(kind_title, lang)}" if lang == "zh"
                 else f"{_t(kind_title, lang)} {rep.period.label(lang)}"), fig=rep.figures, images=rep.images,
        sections=[(n, s.title(lang), s) for n, s in rep.sections], table=table, formula=formula,
        gases=sorted(set(inv.ledger["gas"].astype(str))), name=(ent.get("name_zh") if lang == "zh" else
                                                                 ent.get("name_en")) or ent.get("enterprise_id", ""),
        other_name=(ent.get("name_en") if lang == "zh" else ent.get("name_zh")) or "",
        facilities=[(f, inv.boundary.name(f, lang)) for f in inv.boundary.facilities()],
        notes=list(inv.notes) + list(inv.regime.report_notes),
        has_status=rep.status is not None, mc=rep.monte_carlo, a1=rep.approach1,
        mc_distribution=(rep.monte_carlo.distribution if rep.monte_carlo.distribution != "table" else
                         ("各输入按其分布" if lang == "zh" else "each input's own distribution")),
        tiers_title=(f"{_t('tiers_2025', lang)} — {ed['tiers_clause']}" if ed.get("tiers_clause")
                     else _t("tiers", lang)),
        no_va=rep.figures.get("value_added") is None,
    )


def write_pdf(html: str, path) -> Path:
    """``html`` → PDF with WeasyPrint (fonts embedded as subsets by WeasyPrint; the text stays text)."""
    from weasyprint import HTML

    path = Path(path)
    HTML(string=html, base_url=str(path.parent)).write_pdf(str(path))
    return path


def write_xlsx(rep: AnnualReport, path) -> Path:
    """The reporting tables as one workbook (sheet names and headers in the report's language)."""
    from openpyxl.utils import get_column_letter

    path = Path(path)
    lang = rep.language
    names = rep.inventory.regime.source_names(lang)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for key, pair in SHEETS.items():
            df = rep.tables.get(key)
            if df is None:
                continue
            out = df.copy()
            out.attrs = {}
            for c in out.columns:
                if out[c].dtype == object:
                    out[c] = out[c].map(lambda v: v if isinstance(v, (str, int, float, bool)) or v is None
                                        else str(v))
            if key != "ledger":
                out.columns = [_header(c, lang, names, rep.headers) for c in out.columns]
            sheet = _pick(pair, lang)[:31]
            out.to_excel(xw, sheet_name=sheet, index=False)
            ws = xw.sheets[sheet]
            ws.freeze_panes = "A2"
            for i, c in enumerate(out.columns, start=1):
                width = min(60, max(8, len(str(c)) + 2, *(len(str(v)) + 1 for v in out.iloc[:50, i - 1])))
                ws.column_dimensions[get_column_letter(i)].width = width
    return path


def report_paths(output_dir, enterprise: str, period, language: str = "zh", formats=FORMATS) -> dict:
    """{format: Path} of the files a report writes: ``ghg_report_<enterprise>_<period>_<language>.<ext>``."""
    p = period if isinstance(period, ReportPeriod) else parse_period(period)
    out = Path(output_dir)
    stem = f"ghg_report_{enterprise or 'enterprise'}_{p.text}_{language}"
    return {f: out / f"{stem}.{f}" for f in formats}


def _check_formats(formats) -> tuple:
    if isinstance(formats, str):
        formats = tuple(x.strip() for x in formats.split(",") if x.strip())
    formats = tuple(dict.fromkeys(str(f).lower() for f in formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ReportError(f"format {', '.join(bad) or '(none)'}: choose from {', '.join(FORMATS)}")
    return formats


def write_report(rep: AnnualReport, output_dir, formats=("html", "pdf", "xlsx")) -> dict:
    """Write ``rep`` in ``formats`` into ``output_dir``; sets and returns ``rep.paths``."""
    formats = _check_formats(formats)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = report_paths(out, rep.enterprise, rep.period, rep.language, formats)
    if "html" in paths:
        paths["html"].write_text(render_html(rep), encoding="utf-8")
    if "pdf" in paths:
        write_pdf(render_html(rep, for_pdf=True), paths["pdf"])
    if "xlsx" in paths:
        write_xlsx(rep, paths["xlsx"])
    if "json" in paths:
        paths["json"].write_text(json.dumps(rep.figures, ensure_ascii=False, indent=2), encoding="utf-8")
    rep.paths = paths
    return paths


def periodic_report(lake, enterprise: str, period, *, output_dir=None, language: str = "zh",
                    formats=("html", "pdf", "xlsx"), registry=None, **options) -> AnnualReport:
    """The GHG report of ``period`` — a year (``2025``), a quarter (``2025-Q3``) or a month (``2025-07``)
    — of ``enterprise`` from ``lake`` (a :class:`workbench.lake.store.Lake`, a lake root, or an Intake
    catalog), written as ``formats`` into ``output_dir`` (default ``output/report-<enterprise>-<period>`` in the
    working directory).
    ``options`` go to :func:`build_report` (``gwp``, ``uncertainties``, ``draws``, ``seed``, ``distribution``)."""
    formats = _check_formats(formats)
    rep = build_report(lake, enterprise, period, registry=registry, language=language,
                       images=bool({"html", "pdf"} & set(formats)), **options)
    if output_dir is None:
        output_dir = Path("output") / f"report-{rep.enterprise}-{rep.period.text}"
    write_report(rep, output_dir, formats)
    return rep


def annual_report(lake, enterprise: str, year: int, *, output_dir=None, language: str = "zh",
                  formats=("html", "pdf", "xlsx"), registry=None, **options) -> AnnualReport:
    """The annual GHG report of ``enterprise`` for reporting ``year`` (GB/T 32150-2015 for years up to
    2025, GB/T 32150—2025 from 2026): :func:`periodic_report` of the year.  Returns the
    :class:`AnnualReport` (``.inventory``, ``.paths`` {format: Path}, ``.figures``)."""
    try:
        y = int(year)
    except (TypeError, ValueError):
        raise ReportError(f"year {year!r}: not a year") from None
    if str(y) != str(year).strip():
        raise ReportError(f"year {year!r}: not a year")
    return periodic_report(lake, enterprise, str(y), output_dir=output_dir, language=language, formats=formats,
                           registry=registry, **options)
