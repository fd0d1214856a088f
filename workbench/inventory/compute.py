"""The periodic greenhouse-gas inventory (温室气体清单) of an enterprise, from a catalog.

Reads boundary, activity ledger, production/value added, meters and readings through an Intake
catalog, accounts the activity records under the enterprise's regime (``reporting_standard`` of
its metadata; default GB/T 32150, :mod:`workbench.regimes`), builds the cube, and cross-checks the
ledger against the meters (a verifier's first question).

Products (the denominators of product intensities) are the enterprise's ``products`` (in
``enterprise.json``: ``[{"product": "clinker", "column": "clinker_t", "unit": "t", "name_zh": "熟料",
"name_en": "clinker"}, …]``), else those the regime defines for the enterprise's ``sector``, else
for its GB/T 4754 ``industry_code`` (C3011 → cement).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from workbench.accounting import account, carbon_intensity, summarize, to_cube
from workbench.core.activity import normalize_activity
from workbench.core.boundary import Boundary
from workbench.core.factors import default_library
from workbench.core.units import convert
from workbench.inventory.allocation import allocate_by_submeters
from workbench.inventory.readings import activity_from_meters, meter_consumption
from workbench.regimes import Product, Regime, RegimeError, default_regime, get_regime

__all__ = ["Inventory", "compute_inventory", "compute_inventory_from_lake", "months", "reaccount"]


def months(period_start: str, period_end: str) -> list[str]:
    """Calendar months from ``period_start`` to ``period_end`` inclusive (``YYYY-MM``)."""
    try:
        rng = pd.period_range(pd.Period(period_start, "M"), pd.Period(period_end, "M"), freq="M")
    except Exception as exc:
        raise ValueError(f"bad period range {period_start!r}..{period_end!r}: {exc}") from None
    if len(rng) == 0:
        raise ValueError(f"period_start {period_start} is after period_end {period_end}")
    return [str(p) for p in rng]


@dataclass
class Inventory:
    enterprise: dict
    period_start: str
    period_end: str
    boundary: Boundary
    activity: pd.DataFrame
    ledger: pd.DataFrame
    cube: xr.Dataset
    summary: dict
    factors_used: pd.DataFrame
    efficiency: pd.DataFrame
    meter_check: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list = field(default_factory=list)
    regime: Regime = field(default_factory=default_regime)
    products: tuple = ()
    #: what :func:`reaccount` needs to account changed activity data the same way
    library: object = None
    region: str | None = None
    value_added_table: pd.DataFrame | None = None
    output_table: pd.DataFrame | None = None

    @property
    def total_tco2e(self) -> float:
        return self.summary["total_tco2e"]

    def by_source(self) -> pd.DataFrame:
        """Emissions by the regime's sources, in its order, with their names (signed)."""
        src = self.regime.sources
        return pd.DataFrame({
            "source": [s.key for s in src],
            "name_zh": [s.name_zh for s in src],
            "name_en": [s.name_en for s in src],
            "tco2e": [self.summary["by_source"][s.key] for s in src],
        })

    def by_facility(self) -> pd.DataFrame:
        t = self.cube["tco2e"].sum("period").to_pandas()
        t["total"] = t.sum(axis=1)
        names = {f: self.boundary.name(f, "zh") if f in self.boundary.nodes.index else f for f in t.index}
        t.insert(0, "name", [names[f] for f in t.index])
        return t

    def monthly(self) -> pd.DataFrame:
        return self.cube["tco2e"].sum("facility").to_pandas()


def compute_inventory(cat, period_start: str, period_end: str, *, enterprise: str | None = None,
                      gwp: str = "AR5", region: str | None = None, meter_check: bool = True,
                      allocate: bool = True) -> Inventory:
    """Inventory of the months ``period_start``..``period_end`` from catalog ``cat``.

    ``allocate``: split enterprise-level bills (purchased electricity/heat) over the facilities by
    their sub-meter shares (:mod:`workbench.inventory.allocation`), so facility figures and product
    intensities carry their energy; totals are unchanged.  ``meter_check``: reconcile the ledger
    with the meters.
    """
    lib = default_library(gwp.upper())
    wanted = months(period_start, period_end)
    info = dict(cat.metadata.get("enterprise") or {})
    regime = get_regime(info.get("reporting_standard"))
    boundary = Boundary(cat["boundary"].read())
    ent = enterprise or boundary.enterprise
    if ent not in boundary.nodes.index:
        raise ValueError(f"enterprise node '{ent}' is not in the boundary")
    raw = cat["activity"].read()
    raw["period"] = raw["period"].astype(str)
    sel = raw[raw["period"].isin(wanted)]
    if sel.empty:
        raise ValueError(f"no activity records for {period_start}..{period_end} "
                         f"(the catalog has {raw['period'].min()}..{raw['period'].max()})")
    metered = consumption = None
    if (meter_check or allocate) and "readings" in cat and "meters" in cat:
        consumption = _consumption(cat, wanted)
        metered = activity_from_meters(consumption, enterprise=ent, library=lib)
    sel = sel.assign(_row=sel.index.to_numpy() + 2)  # the row in the ledger file, kept through allocation
    if allocate and metered is not None:
        sel = allocate_by_submeters(sel, metered, enterprise=ent)
    activity = normalize_activity(sel.drop(columns="_row"), origin="activity", library=lib, regime=regime)
    activity["row"] = sel["_row"].to_numpy()
    region = region or info.get("region")
    ledger = account(activity, lib, region=region, boundary=boundary, regime=regime)
    monthly = cat["monthly"].read()
    monthly["period"] = monthly["period"].astype(str)
    monthly = monthly[monthly["period"].isin(wanted)]
    va = monthly.dropna(subset=["value_added_10k_cny"]).rename(columns={"value_added_10k_cny": "value_added"})
    products, product_notes = enterprise_products(info, regime)
    output, missing = _product_output(monthly, products)
    if missing and info.get("products"):
        product_notes.append("products without an output column in the production table: "
                             + ", ".join(f"{p.product} ('{p.column}')" for p in missing))
    inv = _assemble(info, regime, boundary, ent, wanted, lib, activity, ledger,
                    va[["period", "node_id", "value_added"]], output, products, product_notes, region=region)
    if meter_check and metered is not None:
        inv.meter_check = _meter_check(consumption, metered, ledger)
    return inv


def _assemble(info, regime, boundary, ent, wanted, lib, activity, ledger, value_added, output, products,
              notes, *, region=None) -> Inventory:
    """Cube, summary, carbon efficiency, product intensities and factors of an accounted ledger."""
    names = {n: boundary.name(n, "zh") for n in boundary.nodes.index}
    cube = to_cube(ledger, value_added=value_added, output=output, enterprise=ent, facility_names=names,
                   regime=regime)
    summary = summarize(ledger, regime)
    eff = pd.DataFrame({
        "period": cube["period"].values,
        "tco2e": cube["enterprise_tco2e"].values,
        "value_added": cube["enterprise_value_added"].values if "enterprise_value_added" in cube else np.nan,
        "carbon_efficiency": cube["enterprise_carbon_efficiency"].values if "enterprise_carbon_efficiency" in cube else np.nan,
    })
    for p in products:
        if f"output_{p.product}" in cube:
            # per unit of product: whole-enterprise emissions ÷ output (the product's note says what
            # the output includes, e.g. cement includes its clinker: the intensities are not additive)
            out = cube[f"output_{p.product}"].sum("facility", min_count=1).values
            u = _unit_tag(p.unit)
            eff[f"output_{p.product}_{u}"] = out
            eff[f"enterprise_tco2e_per_{u}_{p.product}"] = carbon_intensity(cube["enterprise_tco2e"].values, out)
    total_va = float(np.nansum(eff["value_added"])) if eff["value_added"].notna().all() else np.nan
    summary["value_added"] = total_va
    summary["carbon_efficiency"] = summary["total_tco2e"] / total_va if total_va and total_va > 0 else np.nan
    factors = _factors_used(ledger, lib)
    all_notes = sorted({n for n in ledger["notes"] if n}) + list(notes)
    return Inventory(info, wanted[0], wanted[-1], boundary, activity, ledger, cube, summary, factors, eff,
                     notes=all_notes, regime=regime, products=tuple(products), library=lib, region=region,
                     value_added_table=value_added, output_table=output)


def reaccount(inv: Inventory, activity: pd.DataFrame, *, factor_sets: dict | None = None,
              notes=()) -> Inventory:
    """The inventory of the same enterprise, months, boundary, regime, factor library, region, value
    added and outputs with other activity records — a what-if (:mod:`workbench.models.scenarios`) or
    a correction — accounted by the same engine.

    ``activity``: normalised records (:func:`workbench.core.activity.normalize_activity`, as
    ``inv.activity``); rows whose ``record_id`` is in ``inv.ledger`` keep their lineage columns
    (basis, lake batch, raw file).  ``factor_sets``: the library's factor-set choice changed for this
    accounting only (e.g. the residual grid mix).  The result carries no meter check.
    """
    from workbench.core.factors import FactorLibrary

    if inv.library is None:
        raise ValueError("this inventory does not carry its factor library (made before reaccount existed)")
    lib = inv.library
    if factor_sets:
        lib = FactorLibrary(lib.table, gwp_set=lib.gwp_set, factor_sets={**lib.factor_sets, **factor_sets},
                            items=lib.items, regions=lib.regions)
    wanted = months(inv.period_start, inv.period_end)
    ledger = account(activity, lib, region=inv.region, boundary=inv.boundary, regime=inv.regime)
    lineage = [c for c in ("enterprise_id", "basis", "lake_batch", "raw_sha256") if c in inv.ledger.columns]
    if lineage:
        stamp = dict(ledger.attrs)
        known = inv.ledger[["record_id", *lineage]].drop_duplicates("record_id")
        ledger = ledger.merge(known, on="record_id", how="left")
        if "enterprise_id" in lineage:
            ledger["enterprise_id"] = ledger["enterprise_id"].fillna(inv.enterprise.get("enterprise_id", ""))
            ledger.insert(0, "enterprise_id", ledger.pop("enterprise_id"))
        ledger.attrs.update(stamp)
    return _assemble(inv.enterprise, inv.regime, inv.boundary, inv.boundary.enterprise, wanted, lib, activity, ledger,
                     inv.value_added_table, inv.output_table, list(inv.products), list(notes), region=inv.region)


def compute_inventory_from_lake(lake, enterprise: str | None, period_start: str, period_end: str, *,
                                registry=None, gwp: str = "AR5", region: str | None = None,
                                allocate: bool = True) -> Inventory:
    """Inventory of the months ``period_start``..``period_end`` of ``enterprise`` from its lake —
    filled only through the ordinary ingest paths.

    The enterprise's record and boundary come from the master data (``registry``, a
    :class:`workbench.registry.MasterData`) when given, else from what the lake holds
    (:meth:`workbench.lake.store.Lake.enterprise_info`, the registered boundary).  The activity data are
    the lake's ledger records, bills and metered consumption, one of them the datum per period,
    source and item (:mod:`workbench.inventory.sources`); value added and outputs come from the lake's
    ``production`` table (a later batch supersedes an earlier one for the same period, node,
    measure and product).  Every ledger row names its basis, its lake batch and the SHA-256 of the
    raw file (``basis``, ``lake_batch``, ``raw_sha256``); ``meter_check`` is the reconciliation.
    """
    from workbench.inventory.sources import gather

    lk = lake.for_enterprise(enterprise)
    lib = default_library(gwp.upper())
    wanted = months(period_start, period_end)
    if registry is not None and enterprise:
        info = registry.record(enterprise)
        boundary = registry.boundary(enterprise)
        accounts = registry.table("accounts", enterprise)
    else:
        info = lk.enterprise_info()
        nodes = lk.boundary()
        if nodes.empty:
            raise ValueError(f"the lake of {enterprise or 'the root'} has no boundary (register the enterprise's "
                             "boundary or pass the master data)")
        boundary = Boundary(nodes)
        accounts = None
    info.setdefault("enterprise_id", enterprise or "")
    regime = get_regime(info.get("reporting_standard"))
    ent = boundary.enterprise
    got = gather(lk, wanted, ent, accounts=accounts, library=lib)
    if got.activity.empty:
        raise ValueError(f"no activity data for {wanted[0]}..{wanted[-1]} in the lake of {enterprise or 'the root'}")
    sel = got.activity.copy()
    if allocate and len(got.metered):       # a bill or ledger total on the enterprise node; metered rows sit already
        metered_basis = sel["basis"].eq("meters")
        sel = pd.concat([allocate_by_submeters(sel[~metered_basis], got.metered, enterprise=ent), sel[metered_basis]],
                        ignore_index=True)
    lineage = sel[["record_id", "basis", "lake_batch", "raw_sha256"]].copy()
    overrides = [c for c in ("ncv", "ncv_unit", "carbon_content", "carbon_content_unit", "oxidation_rate",
                             "emission_factor", "ef_unit", "purity", "gas", "facility", "region") if c in sel]
    base = ["record_id", "node_id", "period", "source", "item", "quantity", "unit", "data_tier", "document"]
    activity = normalize_activity(sel[base + overrides], origin="lake", library=lib, regime=regime)
    activity["row"] = np.arange(len(activity)) + 1
    region = region or info.get("region")
    ledger = account(activity, lib, region=region, boundary=boundary, regime=regime)
    stamp = dict(ledger.attrs)              # library version, GWP set, standard: merge() drops them
    ledger = ledger.merge(lineage.drop_duplicates("record_id"), on="record_id", how="left")
    ledger.insert(0, "enterprise_id", enterprise or "")
    ledger.attrs.update(stamp)
    value_added, output = _lake_production(lk, wanted)
    products, product_notes = enterprise_products(info, regime)
    if products and output is not None:
        output = output[output["product"].isin([p.product for p in products])]
    inv = _assemble(info, regime, boundary, ent, wanted, lib, activity, ledger, value_added, output, products,
                    product_notes + got.notes, region=region)
    inv.meter_check = got.reconciliation
    return inv


def _lake_production(lake, wanted) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(value added per period and node, outputs) of the lake's production table; the latest
    batch wins for a repeated period, node, measure and product."""
    p = lake.retrieve("production")
    va_cols = ["period", "node_id", "value_added"]
    if p.empty:
        return pd.DataFrame(columns=va_cols), None
    p = p[p["period"].astype(str).isin(wanted)]
    b = lake.batches()
    order = dict(zip(b["batch_id"], b["stored_at"]))
    p = p.assign(_at=p["batch_id"].map(order)).sort_values("_at")
    p = p.drop_duplicates(["period", "node_id", "measure", "product"], keep="last")
    va = p[p["measure"] == "value_added"].copy()
    va["value_added"] = convert(va["quantity"].to_numpy(), va["unit"].to_numpy(), "万元") if len(va) else []
    out = p[p["measure"] == "output"][["period", "node_id", "product", "quantity", "unit"]]
    return va[va_cols].reset_index(drop=True), (out.reset_index(drop=True) if len(out) else None)


def enterprise_products(info: dict, regime: Regime) -> tuple[list[Product], list[str]]:
    """The enterprise's products and notes on where they came from.

    ``info["products"]`` (enterprise.json) when given; else the products the regime defines for
    ``info["sector"]``, else for the GB/T 4754 ``industry_code``, else for the ``sector_standard``;
    else none (an inventory without product intensities, with a note saying so).
    """
    given = info.get("products")
    if given:
        if not isinstance(given, list):
            raise ValueError(f"enterprise 'products' must be a list of objects, not {type(given).__name__}")
        try:
            products = [Product.from_mapping(p) for p in given]
        except RegimeError as exc:
            raise ValueError(f"enterprise 'products': {exc}") from None
        codes = [p.product for p in products]
        if len(set(codes)) != len(codes):
            raise ValueError(f"enterprise 'products': a product appears twice in {codes}")
        return products, []
    sector = regime.sector_for(info.get("sector"), info.get("industry_code"), info.get("sector_standard"))
    if sector is None:
        note = (f"no product intensities: the enterprise lists no 'products' and {regime.name} defines no "
                f"sector for it (sector {info.get('sector') or '–'}, industry {info.get('industry_code') or '–'}; "
                f"sectors: {', '.join(regime.sectors) or 'none'})")
        return [], [note]
    return list(sector.products), []


def _product_output(monthly: pd.DataFrame, products) -> tuple[pd.DataFrame | None, list]:
    """Output rows (period, node_id, product, quantity, unit) from the production table's product
    columns; also the products whose column is absent."""
    rows, missing = [], []
    for p in products:
        if p.column not in monthly:
            missing.append(p)
            continue
        o = monthly.dropna(subset=[p.column])
        rows.append(pd.DataFrame({"period": o["period"], "node_id": o["node_id"], "product": p.product,
                                  "quantity": pd.to_numeric(o[p.column]), "unit": p.unit}))
    return (pd.concat(rows, ignore_index=True) if rows else None), missing


def _unit_tag(unit: str) -> str:
    """A unit as a column-name part: ``t`` → ``t``, ``10^4 m`` → ``10_4_m``."""
    return "_".join(filter(None, re.split(r"\W+", unit))) or "unit"


def _factors_used(ledger: pd.DataFrame, lib) -> pd.DataFrame:
    rows = []
    t = lib.table.set_index("factor_id")
    for kind, col in (("ncv", "ncv_factor_id"), ("carbon_content", "carbon_content_factor_id"),
                      ("oxidation_rate", "oxidation_rate_factor_id"), ("emission_factor", "emission_factor_id"),
                      ("gwp", "gwp_factor_id")):
        used = ledger[ledger[col] != ""].groupby(col)
        for fid, g in used:
            items = ", ".join(sorted(set(g["item"])))
            if fid in t.index:
                r = t.loc[fid]
                sel = sorted({lib.lookup(it, kind, year=int(y), region=rg).selection
                              for it, y, rg in g[["item", "year", "region"]].drop_duplicates().itertuples(index=False)})
                rows.append({"factor_id": fid, "kind": kind, "items": items, "value": r["value"],
                             "unit": r["unit"], "document": r["document"], "table": r["table"],
                             "year": None if pd.isna(r["year"]) else int(r["year"]), "region": r["region"],
                             "verified": bool(r["verified"]), "records": len(g),
                             "selection": "; ".join(x for x in sel if x)})
            else:  # a site-measured value given on the record itself
                vals = g[{"ncv": "ncv", "carbon_content": "carbon_content", "oxidation_rate": "oxidation_rate",
                          "emission_factor": "emission_factor", "gwp": "gwp"}[kind]]
                rows.append({"factor_id": fid, "kind": kind, "items": items, "value": float(vals.iloc[0]),
                             "unit": g[{"ncv": "ncv_unit", "carbon_content": "carbon_content_unit",
                                        "emission_factor": "ef_unit"}.get(kind, "ncv_unit")].iloc[0] if kind != "oxidation_rate" else "fraction",
                             "document": "; ".join(sorted(set(g["document"]))) or "site-measured",
                             "table": "site measurement", "year": None, "region": "", "verified": True,
                             "records": len(g), "selection": "site-measured value overrides the default"})
    return pd.DataFrame(rows)


def _local_parquet(reader) -> str | None:
    """The local path behind a catalog's Parquet entry, so DuckDB can scan it without pandas."""
    try:
        url = reader.kwargs["args"][0].url
    except (AttributeError, KeyError, IndexError, TypeError):
        return None
    if isinstance(url, str) and url.startswith("file://"):
        url = url[len("file://"):]
    return url if isinstance(url, str) and "://" not in url else None


def _consumption(cat, wanted) -> pd.DataFrame:
    meters = cat["meters"].read()
    meters["is_main"] = meters["is_main"].astype(str).str.lower().eq("true")
    start = pd.Period(wanted[0], "M").start_time.strftime("%Y-%m-%d")
    end = (pd.Period(wanted[-1], "M") + 1).start_time.strftime("%Y-%m-%d")
    return meter_consumption(_local_parquet(cat["readings"]) or cat["readings"].read(), meters,
                             start=start, end=end)


def _meter_check(cons, metered, ledger) -> pd.DataFrame:
    """Ledger vs meters, per month, source and item (electricity, fuels, heat) — a reconciliation."""
    m = metered.groupby(["period", "source", "item", "unit"], as_index=False)["quantity"].sum()
    led_units = {(s, it): g["unit"].iloc[0] for (s, it), g in m.groupby(["source", "item"])}
    rows = []
    for (p, s, it), g in ledger.groupby(["period", "source", "item"]):
        if (s, it) not in led_units:
            continue
        u = led_units[(s, it)]
        q = float(convert(g["quantity"].to_numpy(), g["unit"].to_numpy(), u).sum())
        mq = m[(m["period"] == p) & (m["source"] == s) & (m["item"] == it)]["quantity"].sum()
        comp = cons[(cons["period"] == p) & (cons["source"] == s) & (cons["item"] == it)]["completeness"]
        rows.append({"period": p, "source": s, "item": it, "unit": u, "ledger": q, "meters": float(mq),
                     "difference_pct": (mq - q) / q * 100 if q else np.nan,
                     "min_completeness": float(comp.min()) if len(comp) else np.nan})
    return pd.DataFrame(rows)
