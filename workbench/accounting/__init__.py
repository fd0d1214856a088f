"""GB/T 32150 greenhouse-gas accounting: formulas (one module per source), engine, cube.

- :mod:`.combustion` fuel combustion · :mod:`.process` carbonate decomposition ·
  :mod:`.indirect` purchased/exported electricity and heat · :mod:`.gases` non-CO2 via GWP ·
  :mod:`.total` the enterprise total · :mod:`.efficiency` carbon efficiency and intensity
- :func:`account` activity records → ledger (calls the formula functions; the sources, signs and
  edition come from a regime, :mod:`workbench.regimes`); :func:`to_cube` ledger → xarray cube
- ``SOURCES``, ``SIGN``, ``SOURCE_NAMES_ZH/EN``, ``edition_for_year``: GB/T 32150's, re-exported
  from :mod:`workbench.regimes.gbt32150`
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


def summarize(ledger, regime=None):
    """Totals a report needs: total, by source (signed), by gas, by facility.

    ``by_source`` lists every source of ``regime`` (default: the ledger's ``standard`` attribute,
    else GB/T 32150), zero where the ledger has none."""
    from ..regimes import get_regime

    reg = get_regime(regime if regime is not None else ledger.attrs.get("standard"))
    stray = sorted(set(ledger["source"]) - set(reg.source_keys))
    if stray:
        raise AccountingError(f"ledger sources {stray} are not sources of {reg.name} (pass the ledger's regime)")
    by_source = {s: float(ledger.loc[ledger["source"] == s, "tco2e"].sum()) for s in reg.source_keys}
    return {
        "total_tco2e": float(ledger["tco2e"].sum()),
        "by_source": by_source,
        "by_gas": ledger.groupby("gas")["tco2e"].sum().astype(float).to_dict(),
        "by_facility": ledger.groupby("facility")["tco2e"].sum().astype(float).to_dict(),
    }
