"""The emission cube: an ``xarray.Dataset`` over (period × facility × source), built from the ledger.

Variables
---------
tco2e (period, facility, source)       signed emissions (exported sources negative)
total_tco2e (period, facility)         Σ over sources
value_added (period, facility)         万元, where known (NaN elsewhere)
carbon_efficiency (period, facility)   tCO2e/万元 where value added is known
enterprise_* (period)                  the same for the whole enterprise
output_<product>, intensity_<product>  output (in the product's unit) and tCO2e per unit where known

The source axis is the regime's sources (:mod:`workbench.regimes`; the ledger's ``standard``
attribute names it, default GB/T 32150).  Roll-ups of the cube equal sums of the ledger (tested).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from workbench.accounting.efficiency import carbon_efficiency, carbon_intensity
from workbench.accounting.engine import AccountingError
from workbench.core.regime import Regime, get_regime

__all__ = ["to_cube", "cube_to_frame"]


def to_cube(ledger: pd.DataFrame, *, value_added: pd.DataFrame | None = None,
            output: pd.DataFrame | None = None, enterprise: str | None = None,
            facility_names: dict | None = None, regime: Regime | str | None = None) -> xr.Dataset:
    """Build the cube.

    ``value_added``: columns ``period, node_id, value_added`` (万元); a row on the enterprise node
    (``enterprise``) gives the enterprise figure.  ``output``: columns ``period, node_id, product,
    quantity`` and optionally ``unit`` (default t).  Rows for facilities absent from the ledger are
    ignored.  ``regime`` (default: the ledger's ``standard`` attribute, else GB/T 32150) gives the
    source axis; a ledger source the regime does not define is an error, never dropped.
    """
    reg = get_regime(regime if regime is not None else ledger.attrs.get("standard"))
    sources = reg.source_keys
    stray = sorted(set(ledger["source"].unique()) - set(sources))
    if stray:
        raise AccountingError(f"ledger sources {stray} are not sources of {reg.name} (pass the ledger's regime)")
    periods = sorted(ledger["period"].unique())
    # facilities with emissions, plus those where only output or value added is known
    extra = set()
    for frame in (value_added, output):
        if frame is not None and len(frame):
            extra |= set(frame.loc[frame["period"].isin(periods), "node_id"]) - {enterprise}
    facilities = sorted(set(ledger["facility"].unique()) | extra)
    g = ledger.groupby(["period", "facility", "source"], observed=True)["tco2e"].sum()
    full = pd.MultiIndex.from_product([periods, facilities, list(sources)],
                                      names=["period", "facility", "source"])
    arr = g.reindex(full, fill_value=0.0).to_numpy().reshape(len(periods), len(facilities), len(sources))
    ds = xr.Dataset(
        {"tco2e": (("period", "facility", "source"), arr)},
        coords={"period": periods, "facility": facilities, "source": list(sources)},
    )
    ds["tco2e"].attrs.update(units="tCO2e", long_name="emissions (signed: exported negative)")
    ds["total_tco2e"] = ds["tco2e"].sum("source")
    ds["total_tco2e"].attrs.update(units="tCO2e")
    ds["enterprise_tco2e"] = ds["total_tco2e"].sum("facility")
    ds["enterprise_tco2e"].attrs.update(units="tCO2e")
    if facility_names:
        ds = ds.assign_coords(facility_name=("facility", [facility_names.get(f, f) for f in facilities]))
    if value_added is not None and len(value_added):
        va = value_added.groupby(["period", "node_id"])["value_added"].sum()
        fac = np.full((len(periods), len(facilities)), np.nan)
        for (p, node), v in va.items():
            if p in periods and node in facilities and node != enterprise:
                fac[periods.index(p), facilities.index(node)] = v
        ds["value_added"] = (("period", "facility"), fac)
        ds["value_added"].attrs.update(units="万元")
        ds["carbon_efficiency"] = (("period", "facility"),
                                   carbon_efficiency(ds["total_tco2e"].values, fac))
        ds["carbon_efficiency"].attrs.update(units="tCO2e/万元")
        ent = np.full(len(periods), np.nan)
        if enterprise is not None:
            for (p, node), v in va.items():
                if p in periods and node == enterprise:
                    ent[periods.index(p)] = v
        ds["enterprise_value_added"] = (("period",), ent)
        ds["enterprise_value_added"].attrs.update(units="万元")
        ds["enterprise_carbon_efficiency"] = (("period",),
                                              carbon_efficiency(ds["enterprise_tco2e"].values, ent))
        ds["enterprise_carbon_efficiency"].attrs.update(units="tCO2e/万元")
    if output is not None and len(output):
        out = output.groupby(["product", "period", "node_id"])["quantity"].sum()
        units = (output.groupby("product")["unit"].first().to_dict() if "unit" in output else {})
        for product in sorted(output["product"].unique()):
            unit = units.get(product) or "t"
            q = np.full((len(periods), len(facilities)), np.nan)
            for (prod, p, node), v in out.items():
                if prod == product and p in periods and node in facilities:
                    q[periods.index(p), facilities.index(node)] = v
            ds[f"output_{product}"] = (("period", "facility"), q)
            ds[f"output_{product}"].attrs.update(units=unit)
            ds[f"intensity_{product}"] = (("period", "facility"),
                                          carbon_intensity(ds["total_tco2e"].values, q))
            ds[f"intensity_{product}"].attrs.update(units=f"tCO2e/{unit} {product}")
    ds.attrs.update({k: str(v) for k, v in ledger.attrs.items()})
    return ds


def cube_to_frame(ds: xr.Dataset) -> pd.DataFrame:
    """The cube's tco2e as a tidy frame (period, facility, source, tco2e)."""
    return ds["tco2e"].to_dataframe().reset_index()[["period", "facility", "source", "tco2e"]]
