"""GB/T 32150 工业企业温室气体排放核算和报告通则 — the workbench's default regime.

Sources and the total (GB/T 32150-2015; GB/T 32150—2025 §7.5.8)::

    E = E_combustion + E_process + E_purchased_electricity + E_purchased_heat
        − E_exported_electricity − E_exported_heat

so the two exported sources have sign −1 (the 2025 edition adds E_waste and E_fugitive to the
direct part; no record of the workbench carries them yet, so they are not sources here).

Edition by reporting year: GB/T 32150—2025 was published 2025-12-31 and is in force from
2026-07-01; the workbench applies the 2015 edition to reporting years up to 2025 and the 2025
edition from reporting year 2026 (reference: accounting-facts.md, "Standards in force").

Report sections: the reporting format of the NDRC guidelines (发改办气候〔2013〕2526号) that
GB/T 32151 mirrors — 1 报告主体基本信息 · 2 温室气体排放量 · 3 活动水平数据及来源 ·
4 排放因子数据及来源 · 5 其他希望说明的情况.  Biomass CO2 is reported separately, not in the total.

Sectors (GB/T 32151 parts): cement (GB/T 32151.8, :mod:`.sectors.cement`).
"""
from __future__ import annotations

from types import MappingProxyType

from workbench.core.regime import EmissionSource, Regime, ReportSection
from workbench.regimes.sectors import SECTORS

__all__ = ["GBT32150", "REGIME", "SOURCES", "SIGN", "SOURCE_NAMES_ZH", "SOURCE_NAMES_EN",
           "SOURCE_ALIASES", "SOURCE_CATEGORIES", "edition_for_year"]

_BOTH = "GB/T 32150-2015; GB/T 32150—2025 "


class GBT32150(Regime):
    """GB/T 32150 (2015 edition to reporting year 2025, 2025 edition from 2026)."""

    name = "GB/T 32150"
    aliases = ("GB/T 32150-2015", "GB/T 32150-2025", "GB/T 32150—2025", "gbt32150")
    title_zh = "工业企业温室气体排放核算和报告通则"
    title_en = "General guideline of greenhouse gas emissions accounting and reporting for industrial enterprises"
    sources = (
        EmissionSource("combustion", "燃料燃烧排放", "Fuel combustion", +1, {"fuel"},
                       ("燃料燃烧", "燃料燃烧排放", "化石燃料燃烧", "燃烧", "fuel_combustion"),
                       _BOTH + "§7.5.2: Σ FC × NCV × CC × OF × 44/12"),
        EmissionSource("process", "过程排放", "Process", +1, {"carbonate", "gas"},
                       ("过程排放", "工业生产过程", "工业生产过程排放", "过程", "process_emission"),
                       _BOTH + "§7.5.3: Σ M × P × EF (carbonates); non-CO2 gases m × GWP"),
        EmissionSource("purchased_electricity", "购入电力排放", "Purchased electricity", +1, {"electricity"},
                       ("购入电力", "购入电力排放", "外购电力", "净购入电力", "electricity"),
                       _BOTH + "§7.5.6–7.5.7: AD × EF_grid"),
        EmissionSource("purchased_heat", "购入热力排放", "Purchased heat", +1, {"heat"},
                       ("购入热力", "购入热力排放", "外购热力", "heat"),
                       _BOTH + "§7.5.6–7.5.7: AD × EF_heat"),
        EmissionSource("exported_electricity", "输出电力排放", "Exported electricity", -1, {"electricity"},
                       ("输出电力", "输出电力排放", "外供电力"),
                       _BOTH + "§7.5.6–7.5.7: AD × EF_grid, subtracted (§7.5.8)"),
        EmissionSource("exported_heat", "输出热力排放", "Exported heat", -1, {"heat"},
                       ("输出热力", "输出热力排放", "外供热力"),
                       _BOTH + "§7.5.6–7.5.7: AD × EF_heat, subtracted (§7.5.8)"),
    )
    report_sections = (
        ReportSection("entity", "报告主体基本信息", "Reporting entity", "NDRC reporting format §1"),
        ReportSection("emissions", "温室气体排放量", "Emissions", "NDRC reporting format §2"),
        ReportSection("activity", "活动水平数据及来源", "Activity data and sources", "NDRC reporting format §3"),
        ReportSection("factors", "排放因子数据及来源", "Emission factors and sources", "NDRC reporting format §4"),
        ReportSection("other", "其他希望说明的情况", "Other information", "NDRC reporting format §5"),
    )
    report_notes = (
        ("生物质燃烧CO2单独报告，不计入总量 (none in this inventory). "
         "Biomass CO2 is reported separately and not in the total."),
    )
    total_label_zh = "合计"
    total_label_en = "Total (exported electricity and heat subtracted)"
    default_gwp = "AR5"
    sectors = MappingProxyType(dict(SECTORS))

    def edition(self, year: int | None) -> str:
        """GB/T 32150 edition for a reporting year: the 2025 edition from 2026 on, else 2015."""
        return "GB/T 32150-2025" if year is not None and year >= 2026 else "GB/T 32150-2015"


#: the instance the registry serves (entry point ``workbench.regimes: gbt32150``)
REGIME = GBT32150().validate()

# The module-level names the workbench has always imported from workbench.accounting.
SOURCES = REGIME.source_keys
SIGN = REGIME.signs
SOURCE_NAMES_ZH = REGIME.source_names("zh")
SOURCE_NAMES_EN = REGIME.source_names("en")
SOURCE_ALIASES = {s.key: list(s.aliases) for s in REGIME.sources}
SOURCE_CATEGORIES = {s.key: set(s.categories) for s in REGIME.sources}
edition_for_year = REGIME.edition
