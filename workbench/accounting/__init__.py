"""GB/T 32150 greenhouse-gas accounting: formulas (one module per source), engine, cube.

- :mod:`.combustion` fuel combustion · :mod:`.process` carbonate decomposition ·
  :mod:`.indirect` purchased/exported electricity and heat · :mod:`.gases` non-CO2 via GWP ·
  :mod:`.total` the enterprise total · :mod:`.efficiency` carbon efficiency and intensity
- :func:`account` activity records → ledger (calls the formula functions; the sources, signs and
  edition come from a regime, :mod:`workbench.regimes`); :func:`to_cube` ledger → xarray cube
- ``SOURCES``, ``SIGN``, ``SOURCE_NAMES_ZH/EN``, ``edition_for_year``: the default regime's
  (GB/T 32150, :mod:`workbench.regimes.gbt32150`), looked up through the core's regime registry
  when first asked for — the accounting layer never imports a regime
"""
from workbench.accounting.cube import cube_to_frame, to_cube
from workbench.accounting.efficiency import carbon_efficiency, carbon_intensity
from workbench.accounting.engine import LEDGER_COLUMNS, AccountingError, account
from workbench.accounting.total import total_emissions
from workbench.core.regime import default_regime, get_regime

__all__ = [
    "account", "to_cube", "cube_to_frame", "carbon_efficiency", "carbon_intensity",
    "LEDGER_COLUMNS", "AccountingError", "SOURCES", "SIGN", "SOURCE_NAMES_ZH", "SOURCE_NAMES_EN",
    "total_emissions", "edition_for_year", "summarize",
]


def summarize(ledger, regime=None):
    """Totals a report needs: total, by source (signed), by gas, by facility.

    ``by_source`` lists every source of ``regime`` (default: the ledger's ``standard`` attribute,
    else GB/T 32150), zero where the ledger has none."""
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


def __getattr__(name):
    # the default regime's names, resolved through the registry (regimes sit above this layer)
    attrs = {"SOURCES": lambda r: r.source_keys, "SIGN": lambda r: r.signs,
             "SOURCE_NAMES_ZH": lambda r: r.source_names("zh"), "SOURCE_NAMES_EN": lambda r: r.source_names("en"),
             "edition_for_year": lambda r: r.edition}
    if name in attrs:
        return attrs[name](default_regime())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
