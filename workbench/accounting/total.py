"""Enterprise total, GB/T 32150-2015 and GB/T 32150—2025 §7.5.8::

    E = E_combustion + E_process + E_purchased_electricity + E_purchased_heat
        − E_exported_electricity − E_exported_heat

(the 2025 edition adds E_waste and E_fugitive to the direct part).
"""
from __future__ import annotations

__all__ = ["SOURCES", "SIGN", "SOURCE_NAMES_ZH", "total_emissions", "edition_for_year"]

#: The source categories (分类) in the order reports list them.
SOURCES = (
    "combustion",
    "process",
    "purchased_electricity",
    "purchased_heat",
    "exported_electricity",
    "exported_heat",
)
SIGN = {s: (-1 if s.startswith("exported_") else 1) for s in SOURCES}
SOURCE_NAMES_ZH = {
    "combustion": "燃料燃烧排放",
    "process": "过程排放",
    "purchased_electricity": "购入电力排放",
    "purchased_heat": "购入热力排放",
    "exported_electricity": "输出电力排放",
    "exported_heat": "输出热力排放",
}
SOURCE_NAMES_EN = {
    "combustion": "Fuel combustion",
    "process": "Process",
    "purchased_electricity": "Purchased electricity",
    "purchased_heat": "Purchased heat",
    "exported_electricity": "Exported electricity",
    "exported_heat": "Exported heat",
}


def total_emissions(combustion=0.0, process=0.0, purchased_electricity=0.0, purchased_heat=0.0,
                    exported_electricity=0.0, exported_heat=0.0):
    """E_total with exported electricity and heat subtracted (all arguments non-negative)."""
    return (combustion + process + purchased_electricity + purchased_heat
            - exported_electricity - exported_heat)


def edition_for_year(year: int | None) -> str:
    """GB/T 32150 edition in force for a reporting year: 2025 edition from 2026 on."""
    return "GB/T 32150-2025" if year is not None and year >= 2026 else "GB/T 32150-2015"
