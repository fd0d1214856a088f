"""The footprint explorer's figures (碳足迹浏览): one selection — an enterprise's lake, a span of
months and a boundary node (the enterprise, a facility or a workshop) — and the frames an app
draws from it.  The app computes nothing itself: every number here is the package's inventory
(:func:`workbench.inventory.compute.compute_inventory_from_lake`, the path of ``workbench report
inventory --lake``) for the same selection.

* :func:`footprint` → :class:`Footprint`: the selection's ledger rows (the inventory's own rows,
  not recomputed), total tCO2e, value added (万元), carbon efficiency (tCO2e/万元, by
  :func:`workbench.accounting.carbon_efficiency`, the unit the cube and the report use), the same
  for the same months a year earlier and the change;
* :func:`sankey_flows`: energy carrier (item) → emission source → facility → workshop, tCO2e and
  energy (GJ) where the activity is energy;
* :func:`trend_by_source`: month × source tCO2e;
* :func:`drill_down`: a node's children with their tCO2e, down to its meters (consumption from the
  lake's metered consumption, tCO2e at the inventory's factor);
* :func:`heatmap_frame`: meter × time values read from the lake with the filters in the SQL, for
  datashader.

Signs: exported sources (exported electricity, exported heat) are negative in the ledger, as
GB/T 32150 subtracts them; every frame here keeps that sign, so each of its sums equals the
footprint total.  See :func:`sankey_flows` for how a Sankey draws them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.accounting import carbon_efficiency
from workbench.core.boundary import Boundary
from workbench.core.units import convert
from workbench.inventory.compute import Inventory, compute_inventory_from_lake, months

__all__ = ["Footprint", "drill_down", "footprint", "footprint_of", "heatmap_frame", "sankey_flows",
           "trend_by_source"]

#: the ledger's message when the lake has no activity data for the months asked
_NO_DATA = "no activity data"


@dataclass
class Footprint:
    """The figures of one selection.

    ``ledger``: the inventory ledger's rows of the node and every node below it (all the ledger's
    columns: ``period``, ``node_id``, ``facility``, ``source``, ``item``, ``quantity``/``unit``,
    ``activity_gj``, factor ids, ``tco2e`` signed, ``basis``, ``lake_batch`` …).
    ``total_tco2e`` (tCO2e, signed sum of ``ledger``), ``value_added`` (万元, NaN unless known for
    every month), ``carbon_efficiency`` (tCO2e/万元, NaN without value added).  ``last_year_*``:
    the same for the same months one year earlier, ``None`` when that year has no data for the
    node; ``change_tco2e`` (tCO2e) and ``change_pct`` (% of last year) ``None`` then too.
    ``consumption``: the lake's monthly consumption per meter of the months (the columns of
    :func:`workbench.inventory.sources.lake_meter_consumption`), for :func:`drill_down`.
    ``inventory``: the whole enterprise's inventory the figures come from.
    """

    enterprise_id: str
    node_id: str
    level: str
    period_start: str
    period_end: str
    boundary: Boundary
    ledger: pd.DataFrame
    total_tco2e: float
    value_added: float
    carbon_efficiency: float
    last_year_ledger: pd.DataFrame | None = None
    last_year_tco2e: float | None = None
    last_year_value_added: float | None = None
    last_year_carbon_efficiency: float | None = None
    change_tco2e: float | None = None
    change_pct: float | None = None
    consumption: pd.DataFrame = field(default_factory=pd.DataFrame)
    inventory: Inventory | None = None
    notes: list = field(default_factory=list)

    @property
    def months(self) -> list[str]:
        return months(self.period_start, self.period_end)

    def summary(self) -> dict:
        """The headline figures as a dict (units in the keys' docs of :class:`Footprint`)."""
        keys = ("enterprise_id", "node_id", "level", "period_start", "period_end", "total_tco2e", "value_added",
                "carbon_efficiency", "last_year_tco2e", "last_year_value_added", "last_year_carbon_efficiency",
                "change_tco2e", "change_pct")
        return {k: getattr(self, k) for k in keys}


def _under(boundary: Boundary, nodes, node: str) -> np.ndarray:
    """Whether each of ``nodes`` is ``node`` or lies below it (nodes absent from the boundary: no)."""
    known = boundary.nodes.index
    hit = {n: (n in known and node in boundary.ancestors(n)) for n in pd.unique(pd.Series(nodes, dtype=str))}
    return pd.Series(nodes, dtype=str).map(hit).fillna(False).to_numpy(dtype=bool)


def _value_added(inv: Inventory, node: str) -> float:
    """Value added (万元) of ``node`` over the inventory's months from its cube: the enterprise's,
    or a facility's; NaN unless every month has it (the summary's rule), and for lower nodes."""
    cube = inv.cube
    if node == inv.boundary.enterprise:
        return float(inv.summary.get("value_added", np.nan))
    if "value_added" not in cube or node not in cube["facility"].values:
        return np.nan
    v = cube["value_added"].sel(facility=node).values
    return float(np.sum(v)) if len(v) and not np.isnan(v).any() else np.nan


def _figures(inv: Inventory, node: str) -> tuple[pd.DataFrame, float, float, float]:
    rows = inv.ledger[_under(inv.boundary, inv.ledger["node_id"], node)].reset_index(drop=True)
    total = float(rows["tco2e"].sum())
    va = _value_added(inv, node)
    return rows, total, va, float(carbon_efficiency(total, va))


def footprint_of(inventory: Inventory, node: str | None = None, *, last_year: Inventory | None = None,
                 consumption: pd.DataFrame | None = None, enterprise_id: str | None = None) -> Footprint:
    """The footprint of ``node`` (default: the enterprise) in an inventory already computed (an app
    may keep one per span and change only the node); ``last_year``: the inventory of the same
    months a year earlier, if any."""
    b = inventory.boundary
    node = node or b.enterprise
    if node not in b.nodes.index:
        raise ValueError(f"boundary node '{node}' is not in the enterprise's boundary")
    rows, total, va, ce = _figures(inventory, node)
    fp = Footprint(enterprise_id=enterprise_id or str(inventory.enterprise.get("enterprise_id", "")), node_id=node,
                   level=str(b.nodes.at[node, "level"]), period_start=inventory.period_start,
                   period_end=inventory.period_end, boundary=b, ledger=rows, total_tco2e=total, value_added=va,
                   carbon_efficiency=ce, inventory=inventory, notes=list(inventory.notes),
                   consumption=consumption if consumption is not None else pd.DataFrame())
    if last_year is not None and node in last_year.boundary.nodes.index:
        prev, ptotal, pva, pce = _figures(last_year, node)
        if len(prev):
            fp.last_year_ledger, fp.last_year_tco2e = prev, ptotal
            fp.last_year_value_added, fp.last_year_carbon_efficiency = pva, pce
            fp.change_tco2e = total - ptotal
            fp.change_pct = (total - ptotal) / abs(ptotal) * 100 if ptotal else None
    return fp


def footprint(lake, start: str, end: str, node: str | None = None, *, enterprise: str | None = None,
              registry=None, gwp: str = "AR5", region: str | None = None, last_year: bool = True) -> Footprint:
    """The footprint of ``node`` (default: the enterprise root) for the months ``start``..``end``
    (``YYYY-MM``, inclusive) from an enterprise's lake.

    ``lake``: a :class:`workbench.lake.store.Lake` (the enterprise's, or the root with
    ``enterprise``); ``registry``, ``gwp``, ``region``: as
    :func:`workbench.inventory.compute.compute_inventory_from_lake`, which computes the inventory
    (so the numbers are the report's).  ``last_year``: also the same months a year earlier (``None``
    figures when the lake has no data for them).
    """
    from workbench.inventory.sources import lake_meter_consumption

    ent = enterprise if enterprise is not None else lake.enterprise
    wanted = months(start, end)
    inv = compute_inventory_from_lake(lake, ent, wanted[0], wanted[-1], registry=registry, gwp=gwp, region=region)
    prev = None
    if last_year:
        shift = [str(pd.Period(m, "M") - 12) for m in (wanted[0], wanted[-1])]
        try:
            prev = compute_inventory_from_lake(lake, ent, shift[0], shift[1], registry=registry, gwp=gwp,
                                               region=region)
        except ValueError as exc:
            if _NO_DATA not in str(exc):
                raise
    consumption = lake_meter_consumption(lake.for_enterprise(ent), wanted)
    return footprint_of(inv, node, last_year=prev, consumption=consumption, enterprise_id=ent or "")


# ---------------------------------------------------------------------------------------- frames
def _energy_gj(ledger: pd.DataFrame) -> np.ndarray:
    """Energy of each ledger row in GJ: the accounted ``activity_gj`` (fuels), else the quantity
    when its unit is one of energy (kWh, MWh, GJ …); NaN for materials (process emissions)."""
    out = pd.to_numeric(ledger.get("activity_gj", pd.Series(np.nan, index=ledger.index)), errors="coerce")
    out = out.to_numpy(dtype="float64").copy()
    q = pd.to_numeric(ledger["quantity"], errors="coerce").to_numpy(dtype="float64")
    units = ledger["unit"].astype(str).to_numpy()
    for u in pd.unique(units):
        m = (units == u) & np.isnan(out)
        if not m.any():
            continue
        try:
            out[m] = convert(q[m], u, "GJ")
        except Exception:  # noqa: BLE001 - a mass or volume: no energy to show
            pass
    return np.abs(out) * np.where(ledger["tco2e"].to_numpy() < 0, -1.0, 1.0)


def _workshop_of(boundary: Boundary, node: str) -> str:
    """The node's workshop, or ``<facility>.*`` for rows booked above the workshop level."""
    w = boundary.ancestor_at(node, "workshop")
    if boundary.nodes.at[w, "level"] == "workshop":
        return w
    return f"{boundary.ancestor_at(node, 'facility')}.*"


def sankey_flows(fp: Footprint, *, lang: str = "zh") -> pd.DataFrame:
    """The flows of a Sankey diagram of the footprint, one row per link.

    Columns: ``source``, ``target`` (node keys: ``carrier:<item>`` — the factor-library item, e.g.
    ``carrier:grid``, ``carrier:natural_gas``, ``carrier:raw_coal``, ``carrier:limestone`` —, then
    ``source:<source>`` — ``combustion``, ``process``, ``purchased_electricity``,
    ``purchased_heat``, ``exported_electricity``, ``exported_heat`` —, then the facility's node id,
    then the workshop's node id; rows booked above the workshop level (on a facility, or the
    enterprise's allocation residual) flow into ``<facility>.*``), ``source_name``,
    ``target_name`` (labels in ``lang``), ``stage`` (``carrier→source``, ``source→facility``,
    ``facility→workshop``), ``tco2e`` (tCO2e, signed), ``energy_gj`` (GJ, signed like ``tco2e``;
    NaN where the activity is a material, not energy), ``sign`` (+1 emitted, −1 exported).

    Exported sources: their links carry negative ``tco2e`` (GB/T 32150 subtracts exported
    electricity and heat), and emitted and exported flows of the same link are separate rows (by
    ``sign``), so the ``tco2e`` of each stage sums to the footprint total.  A Sankey cannot draw a
    negative width: draw ``abs(tco2e)`` and colour by ``sign`` (an export is a credit on its
    facility, not an emission).
    """
    led = fp.ledger
    cols = ["source", "target", "source_name", "target_name", "stage", "tco2e", "energy_gj", "sign"]
    if led.empty:
        return pd.DataFrame(columns=cols)
    b = fp.boundary
    reg = fp.inventory.regime if fp.inventory is not None else None
    src_name = {s.key: (s.name_zh if lang == "zh" else s.name_en) for s in reg.sources} if reg else {}
    f = pd.DataFrame({
        "carrier": "carrier:" + led["item"].astype(str),
        "src": "source:" + led["source"].astype(str),
        "facility": led["facility"].astype(str),
        "workshop": [_workshop_of(b, n) for n in led["node_id"].astype(str)],
        "tco2e": led["tco2e"].to_numpy(dtype="float64"),
        "energy_gj": _energy_gj(led),
    })
    f["sign"] = np.where(f["tco2e"] < 0, -1, 1)

    def name(key: str) -> str:
        if key.startswith("carrier:"):
            return key[len("carrier:"):]
        if key.startswith("source:"):
            return src_name.get(key[len("source:"):], key[len("source:"):])
        if key.endswith(".*"):
            fac = key[:-2]
            base = b.name(fac, lang) if fac in b.nodes.index else fac
            return f"{base} ({'未分到车间' if lang == 'zh' else 'not in a workshop'})"
        return b.name(key, lang) if key in b.nodes.index else key

    parts = []
    for stage, a, z in (("carrier→source", "carrier", "src"), ("source→facility", "src", "facility"),
                        ("facility→workshop", "facility", "workshop")):
        g = f.groupby([a, z, "sign"], as_index=False, sort=True).agg(
            tco2e=("tco2e", "sum"), energy_gj=("energy_gj", lambda s: s.sum(min_count=1)))
        g = g.rename(columns={a: "source", z: "target"})
        g["stage"] = stage
        parts.append(g)
    out = pd.concat(parts, ignore_index=True)
    out["source_name"] = out["source"].map(name)
    out["target_name"] = out["target"].map(name)
    return out[cols]


def trend_by_source(fp: Footprint) -> pd.DataFrame:
    """Month × source emissions of the footprint (tCO2e, signed: exported sources negative).

    Index ``period`` (every month of the span, ``YYYY-MM``), one column per source of the regime
    in its order (``combustion``, ``process``, ``purchased_electricity``, ``purchased_heat``,
    ``exported_electricity``, ``exported_heat`` for GB/T 32150), zeros where nothing was booked;
    the whole frame sums to ``fp.total_tco2e``.
    """
    keys = [s.key for s in fp.inventory.regime.sources] if fp.inventory is not None else \
        sorted(fp.ledger["source"].unique())
    extra = [s for s in fp.ledger["source"].unique() if s not in keys]
    t = fp.ledger.pivot_table(index="period", columns="source", values="tco2e", aggfunc="sum", fill_value=0.0) \
        if len(fp.ledger) else pd.DataFrame()
    t = t.reindex(index=fp.months, columns=keys + extra, fill_value=0.0).fillna(0.0)
    t.index.name, t.columns.name = "period", "source"
    return t.astype("float64")


def _meter_rows(fp: Footprint, node: str) -> pd.DataFrame:
    """The sub-meters measuring ``node`` or a node below it, with their consumption over the
    span (the meter's unit) and tCO2e at the inventory's effective factor of the same month,
    source and item (Σ tCO2e ÷ Σ quantity of the whole ledger, quantities in the ledger's unit)."""
    c = fp.consumption
    cols = ["child_id", "name", "level", "kind", "tco2e", "consumption", "unit", "completeness"]
    if c is None or c.empty:
        return pd.DataFrame(columns=cols)
    c = c[_under(fp.boundary, c["node_id"].fillna(""), node) & ~c["is_main"].astype(str).str.lower().eq("true")]
    if c.empty:
        return pd.DataFrame(columns=cols)
    led = fp.inventory.ledger if fp.inventory is not None else fp.ledger
    rate = {}
    for (p, s, it), g in led.groupby(["period", "source", "item"]):
        u = g["unit"].iloc[0]
        try:
            q = float(convert(pd.to_numeric(g["quantity"]).to_numpy(), g["unit"].to_numpy(), u).sum())
        except Exception:  # noqa: BLE001 - mixed kinds of unit: no effective factor
            continue
        if q:
            rate[(p, s, it)] = (float(g["tco2e"].sum()) / q, u)
    t = np.full(len(c), np.nan)
    for i, r in enumerate(c.itertuples()):
        k = rate.get((r.period, r.source, r.item))
        if k is None or pd.isna(r.consumption):
            continue
        try:
            t[i] = float(convert(r.consumption, r.unit, k[1])) * k[0]
        except Exception:  # noqa: BLE001 - a meter in a unit of another kind
            pass
    c = c.assign(_t=t)
    g = c.groupby("meter_id", as_index=False).agg(
        tco2e=("_t", lambda s: s.sum(min_count=1)), consumption=("consumption", "sum"), unit=("unit", "first"),
        completeness=("completeness", "min"))
    names = {n: fp.boundary.name(n, "zh") for n in g["meter_id"] if n in fp.boundary.nodes.index}
    g["name"] = [names.get(m) or m for m in g["meter_id"].astype(str)]
    g = g.rename(columns={"meter_id": "child_id"}).assign(level="meter", kind="meter")
    return g[cols]


def drill_down(fp: Footprint, node_id: str | None = None, *, lang: str = "zh") -> pd.DataFrame:
    """The children of ``node_id`` (default: the footprint's node) with their emissions.

    Columns: ``child_id``, ``name`` (in ``lang``), ``level`` (``facility``, ``workshop``,
    ``process``, ``meter``), ``kind``, ``tco2e`` (tCO2e, signed), ``consumption`` and ``unit``
    (meters: the meter's consumption over the span in its register unit; NaN otherwise),
    ``completeness`` (meters: the lowest monthly share of measured intervals, 0–1).

    ``kind`` ``node``: a child boundary node, its tCO2e the ledger rows at or below it;
    ``direct``: the rows booked on ``node_id`` itself (e.g. a facility's diesel, the enterprise's
    allocation residual) — the ``node`` and ``direct`` rows sum to the node's total.
    ``meter``: for a workshop or process, its sub-meters (main meters left out), from the lake's
    metered consumption; their tCO2e is consumption × the inventory's factor for the month, source
    and item.  Meters are another basis (the datum may be a bill or the ledger): they are not part
    of the sum, and a node's meters need not add up to its ledger figure.
    """
    b = fp.boundary
    node = node_id or fp.node_id
    if node not in b.nodes.index:
        raise ValueError(f"boundary node '{node}' is not in the enterprise's boundary")
    if fp.node_id not in b.ancestors(node):
        raise ValueError(f"'{node}' is not inside the footprint's node '{fp.node_id}'")
    led = fp.ledger
    nodes = b.nodes
    kids = nodes[(nodes["parent_id"] == node) & (nodes["level"] != "meter")]["node_id"].tolist()
    rows = []
    for k in kids:
        t = float(led.loc[_under(b, led["node_id"], k), "tco2e"].sum())
        rows.append({"child_id": k, "name": b.name(k, lang), "level": nodes.at[k, "level"], "kind": "node",
                     "tco2e": t})
    direct = led[led["node_id"] == node]
    if len(direct):
        rows.append({"child_id": node, "name": f"{b.name(node, lang)} ({'直接' if lang == 'zh' else 'direct'})",
                     "level": nodes.at[node, "level"], "kind": "direct", "tco2e": float(direct["tco2e"].sum())})
    out = pd.DataFrame(rows, columns=["child_id", "name", "level", "kind", "tco2e"])
    out = out.assign(consumption=np.nan, unit="", completeness=np.nan)
    if nodes.at[node, "level"] in ("workshop", "process"):
        m = _meter_rows(fp, node)
        if len(m):
            if lang != "zh":
                m["name"] = [b.name(i, lang) if i in nodes.index else i for i in m["child_id"]]
            out = pd.concat([out, m], ignore_index=True)
    return out.reset_index(drop=True)


def _bound(x, *, end: bool) -> pd.Timestamp:
    """A timestamp; a ``YYYY-MM`` month is its first instant, or as an end the instant after it."""
    if isinstance(x, str) and len(x) == 7:
        p = pd.Period(x, "M")
        return (p + 1).start_time if end else p.start_time
    return pd.Timestamp(x)


def heatmap_frame(lake, start, end, meters=None, *, table: str = "consumption") -> pd.DataFrame:
    """Meter × time values from the lake, for a heat map (datashader rasterises it).

    ``start`` (inclusive), ``end`` (exclusive): timestamps (naive local time, as the lake's ``ts``),
    or ``YYYY-MM`` months (``end`` then includes its month).  ``meters``: meter ids (default: all).
    ``table``: ``consumption`` (the interval consumption the lake derives from every meter, in the
    meter's unit per interval — comparable across interval and cumulative meters) or ``readings``
    (the values as read: a cumulative meter's register).  The meter and time filters run in DuckDB
    over the span's partitions only; nothing outside them is loaded.

    Columns: ``meter_id`` (categorical), ``ts`` (interval start, datetime64), ``value`` (float64,
    in the meter's unit: :meth:`workbench.lake.store.Lake.meters`), sorted by meter and time.
    """
    if table not in ("consumption", "readings"):
        raise ValueError(f"table must be 'consumption' or 'readings', not {table!r}")
    lo, hi = _bound(start, end=False), _bound(end, end=True)
    cols = ["meter_id", "ts", "value"]
    con = lake.connect(tables=[table], registries=False, between=(lo, hi))
    try:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        if table not in views:
            df = pd.DataFrame({"meter_id": pd.Series(dtype=str), "ts": pd.Series(dtype="datetime64[us]"),
                               "value": pd.Series(dtype="float64")})
        else:
            where, args = ["ts >= ?", "ts < ?"], [lo.to_pydatetime(), hi.to_pydatetime()]
            if meters is not None:
                where.append("meter_id IN (SELECT unnest(?::VARCHAR[]))")
                args.append([str(m) for m in meters])
            df = con.execute(f"SELECT meter_id, ts, value::DOUBLE AS value FROM {table} WHERE "
                             + " AND ".join(where) + " ORDER BY meter_id, ts", args).df()
    finally:
        con.close()
    df["meter_id"] = df["meter_id"].astype("category")
    return df[cols]
