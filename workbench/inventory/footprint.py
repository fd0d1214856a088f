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

import contextlib
import re
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from workbench.accounting import carbon_efficiency
from workbench.core.boundary import Boundary
from workbench.core.units import convert
from workbench.inventory.compute import Inventory, compute_inventory_from_lake, months

__all__ = ["HEATMAP_FREQS", "Footprint", "FootprintSpan", "HeatmapReader", "available_span", "drill_down",
           "footprint", "footprint_of", "heatmap_frame", "heatmap_freq", "sankey_flows", "trend_by_source"]

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


# ------------------------------------------------------------------------------- a span, once
def available_span(lake, *, enterprise: str | None = None) -> tuple[str, str] | None:
    """The first and last month (``YYYY-MM``) holding activity data of the enterprise's lake —
    ledger records, bills or metered consumption, the three bases of
    :func:`workbench.inventory.sources.gather` — from the manifest's partitions (no file is read);
    ``None`` when the lake holds none."""
    lk = lake.for_enterprise(enterprise) if enterprise is not None else lake
    parts: list[str] = []
    for table in ("activity", "invoices", "consumption"):
        f = lk.files(table)
        if len(f):
            parts += [p[:7] for p in f["part"].astype(str) if len(p) >= 7 and p[4] == "-"]
    return (min(parts), max(parts)) if parts else None


class _SpanInventory(Inventory):
    """An :class:`Inventory` restricted from a longer one (:meth:`FootprintSpan.inventory`): the
    same fields, its ``factors_used`` table made when first read (no figure depends on it)."""

    _library = None
    _factors = None

    @property
    def factors_used(self) -> pd.DataFrame:
        if self._factors is None:
            from workbench.inventory.compute import _factors_used

            self._factors = _factors_used(self.ledger, self._library)
        return self._factors

    @factors_used.setter
    def factors_used(self, value) -> None:
        self._factors = value


class _SpanFootprint(Footprint):
    """A :class:`Footprint` of a :class:`FootprintSpan`: its ``consumption`` (the meters of a
    drill-down) read from the lake when first used."""

    _read = None
    _consumption = None

    @classmethod
    def of(cls, fp: Footprint, read) -> _SpanFootprint:
        out = cls(**{f.name: getattr(fp, f.name) for f in fields(Footprint) if f.name != "consumption"})
        out._read, out._consumption = read, None        # not the empty default: read when used
        return out

    @property
    def consumption(self) -> pd.DataFrame:
        if self._consumption is None:
            self._consumption = self._read() if self._read is not None else pd.DataFrame()
        return self._consumption

    @consumption.setter
    def consumption(self, value) -> None:
        self._consumption = value


class FootprintSpan:
    """An enterprise's inventory computed once for a span of months, from which the footprint of
    any months inside it, and any node, is derived without reading the lake again.

    Every figure of the inventory is a month's: the datum per (month, source, item) is chosen
    among ledger, bill and meters (:func:`workbench.inventory.sources.choose`), enterprise bills
    are allocated by the same month's sub-meter shares, each record is accounted alone at its
    year's factors, value added is per month.  So the inventory of months ``start``..``end`` is
    the span's ledger rows of those months, with the cube, summary, efficiency, reconciliation,
    notes and factors made from them exactly as
    :func:`~workbench.inventory.compute.compute_inventory_from_lake` makes them (and ``row``
    numbered within the months as it numbers them): :meth:`inventory` equals that function's
    result and :meth:`footprint` equals :func:`footprint` for the same selection
    (``tests/inventory/test_footprint.py`` compares them for several spans and nodes).

    :meth:`compute` takes the lake's months of activity data (:func:`available_span`) and, with
    ``last_year``, the twelve months before them, so that the year-earlier figures of any span
    inside come from the same inventory.  An app keeps one per enterprise and session; a span
    outside (:meth:`covers`) goes to :func:`footprint`.
    """

    def __init__(self, inventory: Inventory, *, value_added: pd.DataFrame, output: pd.DataFrame | None,
                 consumption: pd.DataFrame | None = None, lake=None, enterprise_id: str = "", library=None,
                 keep: int = 16):
        import threading

        from workbench.core.factors import default_library
        from workbench.inventory.compute import enterprise_products

        self.whole = inventory
        self.enterprise_id = enterprise_id
        self.start, self.end = inventory.period_start, inventory.period_end
        self._months = set(months(self.start, self.end))
        self._consumption, self._lake, self._reading = consumption, lake, threading.Lock()
        self._value_added = value_added
        products, self._product_notes = enterprise_products(inventory.enterprise, inventory.regime)
        if products and output is not None:
            output = output[output["product"].isin([p.product for p in products])]
        self._output = output
        self._library = library or default_library()
        self._names = {n: inventory.boundary.name(n, "zh") for n in inventory.boundary.nodes.index}
        self._keep, self._made = keep, {}

    @classmethod
    def compute(cls, lake, start: str | None = None, end: str | None = None, *, enterprise: str | None = None,
                registry=None, gwp: str = "AR5", region: str | None = None, last_year: bool = True) -> FootprintSpan:
        """The inventory of ``start``..``end`` (default: the lake's months of activity data,
        :func:`available_span`) — with ``last_year``, from twelve months before ``start`` — by
        :func:`~workbench.inventory.compute.compute_inventory_from_lake` (arguments as
        :func:`footprint`).  The lake's monthly consumption per meter of the same months (for the
        meters of a drill-down) is read when first needed.  ``ValueError`` when the lake has no
        activity data there."""
        from workbench.core.factors import default_library
        from workbench.inventory.compute import _lake_production

        ent = enterprise if enterprise is not None else lake.enterprise
        lk = lake.for_enterprise(ent)
        if start is None or end is None:
            got = available_span(lk)
            if got is None:
                raise ValueError(f"{_NO_DATA} in the lake of {ent or 'the root'}")
            start, end = start or got[0], end or got[1]
        if last_year:
            start = str(pd.Period(start, "M") - 12)
        wanted = months(start, end)
        inv = compute_inventory_from_lake(lake, ent, wanted[0], wanted[-1], registry=registry, gwp=gwp, region=region)
        va, output = _lake_production(lk, wanted)
        return cls(inv, value_added=va, output=output, lake=lk, enterprise_id=ent or "",
                   library=default_library(gwp.upper()))

    def covers(self, start: str, end: str, *, last_year: bool = False) -> bool:
        """Whether the months ``start``..``end`` (and, with ``last_year``, the same months a year
        earlier) lie inside the span."""
        try:
            wanted = months(start, end)
        except ValueError:
            return False
        if last_year:
            wanted += [str(pd.Period(m, "M") - 12) for m in (wanted[0], wanted[-1])]
        return all(m in self._months for m in wanted)

    def inventory(self, start: str, end: str) -> Inventory:
        """The inventory of the months ``start``..``end`` (inside the span), equal to
        :func:`~workbench.inventory.compute.compute_inventory_from_lake` of them; ``ValueError``
        when they hold no activity data (its message, too) or lie outside the span."""
        wanted = months(start, end)
        key = (wanted[0], wanted[-1])
        if key in self._made:
            self._made[key] = self._made.pop(key)          # most recently used last
            return self._made[key]
        if not self.covers(*key):
            raise ValueError(f"{key[0]}..{key[1]} is not inside the span {self.start}..{self.end}")
        inv = self._restrict(wanted)
        self._made[key] = inv
        while len(self._made) > self._keep:
            self._made.pop(next(iter(self._made)))
        return inv

    def _restrict(self, wanted: list[str]) -> Inventory:
        from workbench.accounting import carbon_intensity, summarize, to_cube
        from workbench.inventory.compute import _unit_tag

        full = self.whole
        take = set(wanted)
        act = full.activity[full.activity["period"].astype(str).isin(take)]
        if act.empty:
            raise ValueError(f"{_NO_DATA} for {wanted[0]}..{wanted[-1]} in the lake of "
                             f"{self.enterprise_id or 'the root'}")
        # rows numbered within the months, as compute_inventory_from_lake numbers them
        renumber = dict(zip(act["row"].to_numpy(), range(1, len(act) + 1)))
        act = act.reset_index(drop=True)
        act["row"] = np.arange(1, len(act) + 1)
        led = full.ledger[full.ledger["period"].astype(str).isin(take)].reset_index(drop=True)
        old = led["row"].to_numpy()
        led["row"] = led["row"].map(renumber).astype(full.ledger["row"].dtype)
        _renumber_site_ids(led, old)
        led.attrs = dict(full.ledger.attrs)
        va = self._value_added[self._value_added["period"].astype(str).isin(take)]
        out = self._output[self._output["period"].astype(str).isin(take)] if self._output is not None else None
        regime, boundary, ent = full.regime, full.boundary, full.boundary.enterprise
        # as compute._assemble does
        cube = to_cube(led, value_added=va, output=out, enterprise=ent, facility_names=self._names, regime=regime)
        summary = summarize(led, regime)
        eff = pd.DataFrame({
            "period": cube["period"].values,
            "tco2e": cube["enterprise_tco2e"].values,
            "value_added": cube["enterprise_value_added"].values if "enterprise_value_added" in cube else np.nan,
            "carbon_efficiency": cube["enterprise_carbon_efficiency"].values
            if "enterprise_carbon_efficiency" in cube else np.nan,
        })
        for p in full.products:
            if f"output_{p.product}" in cube:
                o = cube[f"output_{p.product}"].sum("facility", min_count=1).values
                u = _unit_tag(p.unit)
                eff[f"output_{p.product}_{u}"] = o
                eff[f"enterprise_tco2e_per_{u}_{p.product}"] = carbon_intensity(cube["enterprise_tco2e"].values, o)
        total_va = float(np.nansum(eff["value_added"])) if eff["value_added"].notna().all() else np.nan
        summary["value_added"] = total_va
        summary["carbon_efficiency"] = summary["total_tco2e"] / total_va if total_va and total_va > 0 else np.nan
        notes = sorted({n for n in led["notes"] if n}) + list(self._product_notes) + _meter_notes(led)
        check = full.meter_check
        if len(check) and "period" in check:
            check = check[check["period"].astype(str).isin(take)].reset_index(drop=True)
        inv = _SpanInventory(full.enterprise, wanted[0], wanted[-1], boundary, act, led, cube, summary, None, eff,
                             meter_check=check, notes=notes, regime=regime, products=full.products)
        inv._library = self._library
        return inv

    def consumption(self, start: str, end: str) -> pd.DataFrame:
        """The lake's monthly consumption per meter of the months (as
        :func:`workbench.inventory.sources.lake_meter_consumption` gives it for them), read for
        the whole span when first asked for."""
        from workbench.inventory.sources import lake_meter_consumption

        with self._reading:
            if self._consumption is None:
                self._consumption = lake_meter_consumption(self._lake, months(self.start, self.end)) \
                    if self._lake is not None else pd.DataFrame()
        c = self._consumption
        if c.empty:
            return c
        return c[c["period"].astype(str).isin(set(months(start, end)))].reset_index(drop=True)

    def footprint(self, start: str, end: str, node: str | None = None, *, last_year: bool = True) -> Footprint:
        """The footprint of ``node`` for the months ``start``..``end``, equal to :func:`footprint`
        of the same selection; the months (and with ``last_year`` those a year earlier) must lie
        inside the span (:meth:`covers`)."""
        wanted = months(start, end)
        if not self.covers(wanted[0], wanted[-1], last_year=last_year):
            raise ValueError(f"{wanted[0]}..{wanted[-1]}{' and a year earlier' if last_year else ''} is not "
                             f"inside the span {self.start}..{self.end}")
        inv = self.inventory(wanted[0], wanted[-1])
        prev = None
        if last_year:
            shift = [str(pd.Period(m, "M") - 12) for m in (wanted[0], wanted[-1])]
            try:
                prev = self.inventory(*shift)
            except ValueError as exc:
                if _NO_DATA not in str(exc):
                    raise
        fp = footprint_of(inv, node, last_year=prev, enterprise_id=self.enterprise_id)
        return _SpanFootprint.of(fp, lambda: self.consumption(wanted[0], wanted[-1]))


def _renumber_site_ids(ledger: pd.DataFrame, old_rows: np.ndarray) -> None:
    """A site-measured factor's id names its record's row (``site:<origin>:row<n>:<kind>``,
    :func:`workbench.accounting.account`): renamed in place from ``old_rows`` to ``ledger["row"]``."""
    new_rows = ledger["row"].to_numpy()
    cols = [c for c in ledger.columns if c.endswith("_factor_id") or c == "factor_ids"]
    moved = old_rows != new_rows
    for c in cols:
        v = ledger[c].to_numpy(dtype=object)
        hit = moved & np.array([isinstance(x, str) and ":row" in x for x in v], dtype=bool)
        if hit.any():
            v = v.copy()
            for i in np.flatnonzero(hit):
                v[i] = re.sub(rf"(site:[^;]*?):row{old_rows[i]}:", rf"\g<1>:row{new_rows[i]}:", v[i])
            ledger[c] = pd.Series(v, index=ledger.index, dtype=ledger[c].dtype)


def _meter_notes(ledger: pd.DataFrame) -> list[str]:
    """The notes :func:`workbench.inventory.sources.choose` writes for the keys whose datum is
    the meters, from the ledger rows of that basis."""
    if "basis" not in ledger or not ledger["basis"].eq("meters").any():
        return []
    m = ledger[ledger["basis"] == "meters"]
    only = m.groupby(["source", "item"])["period"].agg(lambda p: f"{min(p)}..{max(p)}" if len(set(p)) > 1 else min(p))
    return [f"{s} {it}: activity data from the meters (no bill or ledger record) for {p}" for (s, it), p in only.items()]


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
        with contextlib.suppress(Exception):       # a mass or volume: no energy to show
            out[m] = convert(q[m], u, "GJ")
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
        "workshop": led["node_id"].astype(str).map({n: _workshop_of(b, n) for n in pd.unique(led["node_id"].astype(str))}),
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
        q = None
        with contextlib.suppress(Exception):       # mixed kinds of unit: no effective factor
            q = float(convert(pd.to_numeric(g["quantity"]).to_numpy(), g["unit"].to_numpy(), u).sum())
        if q:
            rate[(p, s, it)] = (float(g["tco2e"].sum()) / q, u)
    t = np.full(len(c), np.nan)
    for i, r in enumerate(c.itertuples()):
        k = rate.get((r.period, r.source, r.item))
        if k is None or pd.isna(r.consumption):
            continue
        with contextlib.suppress(Exception):       # a meter in a unit of another kind
            t[i] = float(convert(r.consumption, r.unit, k[1])) * k[0]
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


#: the heat map's time buckets, finest first: each divides a day, so the buckets of a span that
#: starts at midnight (a month, a day) begin with it, and a bucket of a span is the same bucket
#: read alone
HEATMAP_FREQS = {"15min": "15 minutes", "30min": "30 minutes", "1h": "1 hour", "2h": "2 hours", "3h": "3 hours",
                 "6h": "6 hours", "12h": "12 hours", "1D": "1 day"}


def heatmap_freq(start, end, pixels: int = 1200) -> str:
    """The time bucket a heat map of ``start``..``end`` (as :func:`heatmap_frame` takes them)
    needs to draw at most ``pixels`` columns: the finest of :data:`HEATMAP_FREQS` that does
    (``15min``, the lakes' interval, for a span of up to ``pixels`` quarter hours; ``1D`` at
    most)."""
    lo, hi = _bound(start, end=False), _bound(end, end=True)
    span = max(hi - lo, pd.Timedelta(0))
    for freq in HEATMAP_FREQS:
        if span / pd.Timedelta(freq) <= pixels:
            return freq
    return "1D"


def heatmap_frame(lake, start, end, meters=None, *, table: str = "consumption", freq: str | None = None) -> pd.DataFrame:
    """Meter × time values from the lake, for a heat map (datashader rasterises it).

    ``start`` (inclusive), ``end`` (exclusive): timestamps (naive local time, as the lake's ``ts``),
    or ``YYYY-MM`` months (``end`` then includes its month).  ``meters``: meter ids (default: all).
    ``table``: ``consumption`` (the interval consumption the lake derives from every meter, in the
    meter's unit per interval — comparable across interval and cumulative meters) or ``readings``
    (the values as read: a cumulative meter's register).  The meter and time filters run in DuckDB
    over the span's partitions only; nothing outside them is loaded.

    ``freq``: one of :data:`HEATMAP_FREQS` (e.g. what :func:`heatmap_freq` says a canvas needs) —
    the values are averaged per meter and time bucket in the same query, so a year of 2,000
    meters reaches Python as 2,000 × 730 rows at ``12h``, not 70 M; ``None``: the values as read.

    Columns: ``meter_id`` (categorical), ``ts`` (interval start, or the bucket's start,
    datetime64), ``value`` (float64, in the meter's unit: :meth:`workbench.lake.store.Lake.meters`;
    with ``freq`` the mean of the bucket's values — per interval, like the values as read),
    sorted by meter and time.
    """
    if table not in ("consumption", "readings"):
        raise ValueError(f"table must be 'consumption' or 'readings', not {table!r}")
    if freq is not None and freq not in HEATMAP_FREQS:
        raise ValueError(f"freq must be one of {list(HEATMAP_FREQS)} or None, not {freq!r}")
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
            if freq is None:
                sql = f"SELECT meter_id, ts, value::DOUBLE AS value FROM {table} WHERE {' AND '.join(where)}"
            else:
                sql = (f"SELECT meter_id, time_bucket(INTERVAL '{HEATMAP_FREQS[freq]}', ts) AS ts, "
                       f"avg(value)::DOUBLE AS value FROM {table} WHERE {' AND '.join(where)} GROUP BY ALL")
            df = con.execute(sql + " ORDER BY meter_id, ts", args).df()
    finally:
        con.close()
    df["meter_id"] = df["meter_id"].astype("category")
    return df[cols]


class HeatmapReader:
    """The heat map's frames of one enterprise's lake, for an app's session: :func:`heatmap_frame`
    at the bucket a canvas of ``pixels`` columns needs (:func:`heatmap_freq`), keeping the last
    ``keep`` frames read.  A span inside one already read, at the same bucket, of the same meters
    or some of them, is taken from it — the same rows the lake gives for it, since a bucket of a
    span whose ends are bucket boundaries (any month, any midnight) is the bucket read alone —
    instead of being read again; any other span is read from the lake with its filters in the SQL.
    """

    def __init__(self, lake, *, table: str = "consumption", pixels: int = 1200, keep: int = 4):
        import threading

        self.lake, self.table, self.pixels, self.keep = lake, table, pixels, keep
        self._frames: list[tuple] = []      # (lo, hi, meters or None, freq, frame), most recent last
        self._lock = threading.Lock()       # an app reads off its server's loop
        self.reads = 0                      # how many frames came from the lake (the others from memory)

    def frame(self, start, end, meters=None, *, freq: str | None = "auto") -> tuple[pd.DataFrame, str | None]:
        """``(frame, freq)``: the frame of :func:`heatmap_frame` for ``start``..``end`` and
        ``meters`` (default: all) at ``freq`` (``"auto"``: :func:`heatmap_freq` for ``pixels``;
        ``None``: the values as read)."""
        with self._lock:
            return self._frame(start, end, meters, freq)

    def ready(self, start, end, meters=None, *, freq: str | None = "auto") -> bool:
        """Whether :meth:`frame` of the same arguments would be answered from memory now (no read
        under way, the frame kept) — without waiting."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            return self._kept(start, end, meters, freq)[0] is not None
        finally:
            self._lock.release()

    def _kept(self, start, end, meters, freq):
        """(index of the kept frame that holds the selection or None, lo, hi, meters, freq)."""
        lo, hi = _bound(start, end=False), _bound(end, end=True)
        if freq == "auto":
            freq = heatmap_freq(lo, hi, self.pixels)
        want = None if meters is None else frozenset(str(m) for m in meters)
        for k in range(len(self._frames) - 1, -1, -1):
            clo, chi, cm, cf, _ = self._frames[k]
            if cf == freq and clo <= lo and hi <= chi and (cm is None or (want is not None and want <= cm)) \
                    and _on_bucket(lo, freq) and _on_bucket(hi, freq):
                return k, lo, hi, want, freq
        return None, lo, hi, want, freq

    def _frame(self, start, end, meters, freq) -> tuple[pd.DataFrame, str | None]:
        k, lo, hi, want, freq = self._kept(start, end, meters, freq)
        if k is not None:
            clo, chi, cm, _, df = self._frames[k]
            self._frames.append(self._frames.pop(k))         # most recently used last
            if (clo, chi) == (lo, hi) and cm == want:
                return df, freq
            keep = (df["ts"] >= lo) & (df["ts"] < hi)
            if want is not None and want != cm:
                keep &= df["meter_id"].isin(want)
            out = df[keep].reset_index(drop=True)
            out["meter_id"] = out["meter_id"].cat.remove_unused_categories()
            return out, freq
        df = heatmap_frame(self.lake, lo, hi, None if want is None else sorted(want), table=self.table, freq=freq)
        self.reads += 1
        self._frames.append((lo, hi, want, freq, df))
        del self._frames[:-self.keep]
        return df, freq


def _on_bucket(t: pd.Timestamp, freq: str | None) -> bool:
    """Whether ``t`` is a boundary of ``freq``'s buckets (each divides a day: counted from midnight)."""
    return freq is None or (t - t.normalize()) % pd.Timedelta(freq) == pd.Timedelta(0)
