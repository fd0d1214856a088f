"""GB/T 32150 greenhouse-gas accounting: formulas (one module per source), engine, cube.

- :mod:`.combustion` fuel combustion · :mod:`.process` carbonates and clinker ·
  :mod:`.indirect` purchased/exported electricity and heat · :mod:`.gases` non-CO2 via GWP ·
  :mod:`.total` the enterprise total · :mod:`.efficiency` carbon efficiency and intensity
- :func:`account` activity records → ledger; :func:`to_cube` ledger → xarray cube
"""
from .cube import cube_to_frame, to_cube
from .efficiency import carbon_efficiency, carbon_intensity
from .engine import LEDGER_COLUMNS, AccountingError, account
from .total import SIGN, SOURCE_NAMES_EN, SOURCE_NAMES_ZH, SOURCES, edition_for_year, total_emissions

__all__ = [
    "account", "to_cube", "cube_to_frame", "carbon_efficiency", "carbon_intensity",
    "LEDGER_COLUMNS", "AccountingError", "SOURCES", "SIGN", "SOURCE_NAMES_ZH", "SOURCE_NAMES_EN",
    "total_emissions", "edition_for_year", "summarize",
]


def summarize(ledger):
    """Totals a report needs: total, by source (signed), by gas, by facility."""
    by_source = {s: float(ledger.loc[ledger["source"] == s, "tco2e"].sum()) for s in SOURCES}
    return {
        "total_tco2e": float(ledger["tco2e"].sum()),
        "by_source": by_source,
        "by_gas": ledger.groupby("gas")["tco2e"].sum().astype(float).to_dict(),
        "by_facility": ledger.groupby("facility")["tco2e"].sum().astype(float).to_dict(),
    }
