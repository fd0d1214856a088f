"""Allocation of an enterprise's emissions and energy to its products (ISO 14044 order).

The inventory's ledger says how much each facility emitted, from which source, in which month
(and how much energy it used: fuel GJ, electricity MWh, heat GJ).  A product's footprint needs
those emissions divided between the products.  ISO 14044's allocation procedure (used by
ISO 14067; its clause number is UNVERIFIED in the workbench's reference, ``applications.md`` §7)
asks, in order:

1. **avoid allocation** — subdivide the process: here, a facility whose output is one product
   carries that product's emissions entirely (*subdivision*: the clinker line's kiln emissions go to
   clinker, the cement mill's to cement);
2. where it cannot be avoided, allocate by a **physical relationship** — the mass of the outputs
   (``mass``), or a physical quantity that causes the shared emissions (``physical``: by default the
   metered electricity of each product's own facilities, which is what compressed air, water and
   other auxiliary services scale with; or drivers the user gives);
3. otherwise by **another relationship, e.g. economic value** (``economic``: output × price).

Shared pools are the facilities that make no product (auxiliary, non-production, external supply,
the enterprise node's unallocated residual) and the facilities that make several products.  Each
pool — one (month, facility, source, gas) of the ledger — is divided with shares ``d_i / Σ d_j``
of its beneficiaries' drivers in the same month; the parts of a pool add up to the pool (the
largest part takes the floating-point rounding residual), so the allocation sums back to every
facility total and to the enterprise total.  Pools of an excluded class are kept apart and
reported.  The result states the method (:attr:`Allocation.statement`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.core.units import UnitError, conversion_factor, convert, converts
from workbench.products.errors import ProductError

__all__ = [
    "METHODS",
    "POOL_KEYS",
    "POOL_VALUES",
    "Allocation",
    "allocate",
    "allocate_pools",
    "allocation_shares",
    "ledger_pools",
    "method_drivers",
    "outputs_from_cube",
    "product_facilities",
]

#: allocation methods, in ISO 14044's order of preference after subdivision
METHODS = ("mass", "physical", "economic")
#: what identifies a pool, and what a pool holds (every value is allocated with the same shares)
POOL_KEYS = ["period", "facility", "classification", "source", "gas"]
POOL_VALUES = ["tco2e", "electricity_mwh", "fuel_gj", "heat_gj", "energy_tce"]

_METHOD_TEXT = {
    "mass": ("物理关系：产出质量（t）", "physical relationship: mass of output (t)"),
    "physical": ("物理因果关系：各产品自身设施的计量电量（MWh）",
                 "physical causality: metered electricity of each product's own facilities (MWh)"),
    "economic": ("经济价值：产量 × 单价（元）", "economic value: output × price (CNY)"),
}


# --------------------------------------------------------------------------- the arithmetic
def allocation_shares(drivers) -> np.ndarray:
    r"""Allocation shares from drivers.

    .. math::  s_i = d_i \Big/ \sum_j d_j

    Parameters
    ----------
    drivers : array-like of float
        ``d_i`` — the allocation driver of each product (t of output, MWh, CNY …; one unit for all),
        finite and ≥ 0, not all 0.

    Returns
    -------
    numpy.ndarray
        The shares (dimensionless), summing to 1.

    Raises
    ------
    ProductError
        A driver is negative or not finite, or they are all 0.
    """
    d = np.asarray(drivers, dtype=float)
    if d.size == 0:
        raise ProductError("no products to allocate to")
    if not np.isfinite(d).all() or (d < 0).any():
        raise ProductError(f"allocation drivers must be finite and ≥ 0, got {d.tolist()}")
    total = math.fsum(d)
    if total <= 0:
        raise ProductError(f"allocation drivers are all 0 ({d.tolist()}): nothing to share by")
    return d / total


def allocate(total: float, drivers) -> np.ndarray:
    r"""Divide ``total`` in proportion to ``drivers``; the parts add up to ``total``.

    .. math::  x_i = E \times d_i \Big/ \sum_j d_j

    and the largest part takes ``E − Σ x_i`` (floating-point rounding only, ≲ 1e-16 · E), so that
    ``math.fsum(parts) == total``.

    Parameters
    ----------
    total : float
        ``E`` — the pool to divide (tCO2e, MWh, GJ …; may be negative, e.g. an exported-heat credit).
    drivers : array-like of float
        The products' drivers (see :func:`allocation_shares`).

    Returns
    -------
    numpy.ndarray
        The parts, in the unit of ``total``.

    References
    ----------
    ISO 14044 allocation procedure (clause number UNVERIFIED; reference ``applications.md`` §7 [G1][G2]).
    """
    shares = allocation_shares(drivers)
    parts = float(total) * shares
    parts[int(np.argmax(shares))] += float(total) - math.fsum(parts)
    return parts


# --------------------------------------------------------------------------- from the ledger
def ledger_pools(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger summed into pools: one row per (period, facility, classification, source, gas).

    Values: ``tco2e`` (signed, as the ledger), ``electricity_mwh`` (purchased +, exported −),
    ``fuel_gj`` (combustion activity, FC × NCV), ``heat_gj`` (purchased +, exported −) and
    ``energy_tce`` = (fuel GJ + electricity converted at its energy content 3.6 GJ/MWh + heat GJ)
    ÷ 29.3076 GJ/tce — the equal-value (当量值) conversion; GB/T 2589 tabulates electricity as
    0.1229 kgce/kWh, which this reproduces to 0.05 % (the table itself: UNVERIFIED here).

    Parameters
    ----------
    ledger : DataFrame
        An inventory's ledger (:class:`workbench.inventory.Inventory` ``.ledger``): ``period``,
        ``facility``, ``classification``, ``source``, ``gas``, ``quantity``, ``unit``, ``sign``,
        ``tco2e`` and ``activity_gj`` (fuels).
    """
    need = ["period", "facility", "source", "tco2e", "quantity", "unit"]
    missing = [c for c in need if c not in ledger]
    if missing:
        raise ProductError(f"ledger: missing columns {missing}")
    led = ledger.copy()
    led["period"] = led["period"].astype(str)
    led["classification"] = led.get("classification", pd.Series("", index=led.index)).fillna("").astype(str)
    led["gas"] = led.get("gas", pd.Series("CO2", index=led.index)).fillna("CO2").astype(str)
    sign = pd.to_numeric(led.get("sign", pd.Series(1, index=led.index)), errors="coerce").fillna(1).to_numpy()
    qty = pd.to_numeric(led["quantity"], errors="coerce").to_numpy(dtype=float)
    units = led["unit"].astype(str).to_numpy()
    elec = led["source"].isin(["purchased_electricity", "exported_electricity"]).to_numpy()
    heat = led["source"].isin(["purchased_heat", "exported_heat"]).to_numpy()
    led["electricity_mwh"] = 0.0
    led["heat_gj"] = 0.0
    try:
        if elec.any():
            led.loc[elec, "electricity_mwh"] = convert(qty[elec], units[elec], "MWh") * sign[elec]
        if heat.any():
            led.loc[heat, "heat_gj"] = convert(qty[heat], units[heat], "GJ") * sign[heat]
    except UnitError as exc:
        raise ProductError(f"ledger: {exc}") from None
    comb = led["source"].eq("combustion").to_numpy()
    gj = pd.to_numeric(led.get("activity_gj", pd.Series(np.nan, index=led.index)), errors="coerce").fillna(0.0)
    led["fuel_gj"] = np.where(comb, gj.to_numpy(), 0.0)
    led["energy_tce"] = ((led["fuel_gj"] + led["heat_gj"]) * conversion_factor("GJ", "tce")
                         + led["electricity_mwh"] * conversion_factor("MWh", "tce"))
    pools = led.groupby(POOL_KEYS, as_index=False, sort=True)[POOL_VALUES].sum()
    return pools


def outputs_from_cube(cube, products) -> pd.DataFrame:
    """Outputs ``period, product, facility, quantity, unit`` from an inventory's cube
    (``output_<product>`` per period and facility); rows with no output are dropped."""
    rows = []
    for p in products:
        var = f"output_{p.product}"
        if var not in cube:
            continue
        t = cube[var].to_pandas()                      # period × facility
        s = t.stack().rename("quantity").reset_index()
        s = s[s["quantity"].notna() & (s["quantity"] != 0)]
        rows.append(s.assign(product=p.product, unit=p.unit))
    if not rows:
        return pd.DataFrame(columns=["period", "product", "facility", "quantity", "unit"])
    out = pd.concat(rows, ignore_index=True)
    out["period"] = out["period"].astype(str)
    return out[["period", "product", "facility", "quantity", "unit"]]


def product_facilities(outputs: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """product → the facilities that record an output of it (the process that makes it)."""
    pos = outputs[pd.to_numeric(outputs["quantity"], errors="coerce") > 0]
    return {p: tuple(sorted(set(g["facility"]))) for p, g in pos.groupby("product")}


def _mass_t(outputs: pd.DataFrame) -> pd.Series:
    units = outputs["unit"].astype(str)
    for u in sorted(set(units)):
        if not converts(u, "t"):
            bad = outputs.loc[units == u, "product"].iloc[0]
            raise ProductError(f"mass allocation: product '{bad}' is counted in '{u}', not a mass — "
                               "use --allocation physical or economic")
    return pd.Series(convert(outputs["quantity"].to_numpy(float), units.to_numpy(), "t"), index=outputs.index)


def method_drivers(method: str, outputs: pd.DataFrame, pools: pd.DataFrame | None = None, *,
                   prices: Mapping[str, float] | None = None,
                   drivers: pd.DataFrame | Mapping[str, float] | None = None) -> pd.DataFrame:
    """The allocation driver of each product in each period: ``period, product, driver, unit, basis``.

    Parameters
    ----------
    method : {'mass', 'physical', 'economic'}
        ``mass`` — output converted to t; ``economic`` — output × ``prices[product]`` (CNY per
        product unit); ``physical`` — ``drivers`` when given (a mapping product → value, or a
        table ``product, value[, period][, unit][, basis]``), else the metered electricity (MWh)
        of each product's own facilities in ``pools`` (a facility that makes two products cannot
        tell them apart: give drivers).
    outputs : DataFrame
        ``period, product, facility, quantity, unit``.
    pools : DataFrame, optional
        :func:`ledger_pools` (needed by ``physical`` without drivers).
    """
    if method not in METHODS:
        raise ProductError(f"allocation method '{method}': one of {', '.join(METHODS)}")
    out = outputs.copy()
    out["period"] = out["period"].astype(str)
    products = sorted(set(out["product"]))
    if method == "mass":
        out["driver"] = _mass_t(out)
        d = out.groupby(["period", "product"], as_index=False)["driver"].sum()
        return d.assign(unit="t", basis="output mass")
    if method == "economic":
        prices = dict(prices or {})
        missing = [p for p in products if p not in prices]
        if missing:
            raise ProductError(f"economic allocation needs a price for every product: none for {', '.join(missing)} "
                               "(CNY per unit of output, e.g. --price cement=420)")
        for p, v in prices.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ProductError(f"price of '{p}': {v!r} is not a number ≥ 0")
        out["driver"] = pd.to_numeric(out["quantity"]) * out["product"].map(prices)
        d = out.groupby(["period", "product"], as_index=False)["driver"].sum()
        return d.assign(unit="CNY", basis="output × price")
    # physical
    periods = sorted(set(out["period"]))
    if drivers is not None:
        if isinstance(drivers, Mapping):
            drivers = pd.DataFrame({"product": list(drivers), "value": list(drivers.values())})
        t = drivers.copy()
        if "value" not in t or "product" not in t:
            raise ProductError("physical drivers: a table with columns product and value")
        missing = [p for p in products if p not in set(t["product"])]
        if missing:
            raise ProductError(f"physical allocation: no driver for {', '.join(missing)}")
        if "period" not in t:
            t = t.merge(pd.DataFrame({"period": periods}), how="cross")
        t["period"] = t["period"].astype(str)
        unit = str(t["unit"].iloc[0]) if "unit" in t else ""
        basis = str(t["basis"].iloc[0]) if "basis" in t else "drivers given"
        return pd.DataFrame({"period": t["period"], "product": t["product"],
                             "driver": pd.to_numeric(t["value"], errors="coerce"), "unit": unit, "basis": basis})
    if pools is None:
        raise ProductError("physical allocation by metered electricity needs the ledger's pools")
    makers = product_facilities(out)
    own: dict[str, str] = {}
    for p, facs in makers.items():
        for f in facs:
            if f in own and own[f] != p:
                raise ProductError(f"physical allocation: facility {f} makes both '{own[f]}' and '{p}' — the meters "
                                   "cannot tell them apart; give drivers (a physical quantity per product)")
            own[f] = p
    el = pools[pools["source"].eq("purchased_electricity") & pools["facility"].isin(list(own))]
    el = el.assign(product=el["facility"].map(own)).groupby(["period", "product"], as_index=False)["electricity_mwh"].sum()
    grid = pd.MultiIndex.from_product([periods, products], names=["period", "product"]).to_frame(index=False)
    d = grid.merge(el, on=["period", "product"], how="left").fillna({"electricity_mwh": 0.0})
    return pd.DataFrame({"period": d["period"], "product": d["product"], "driver": d["electricity_mwh"],
                         "unit": "MWh", "basis": "metered electricity of the product's own facilities"})


# --------------------------------------------------------------------------- the allocation
@dataclass
class Allocation:
    """The emissions and energy of an enterprise divided between its products.

    Attributes
    ----------
    table : DataFrame
        One row per pool and product: the pool's keys (:data:`POOL_KEYS`), ``product``, ``share``,
        ``basis`` (``subdivision`` or the method) and the allocated values (:data:`POOL_VALUES`).
    pools : DataFrame
        The pools allocated (their totals).
    excluded : DataFrame
        Pools of an excluded class, not allocated (with their totals).
    drivers : DataFrame
        The drivers per period and product (``period, product, driver, unit, basis``).
    method : str
    statement_zh, statement_en : str
        How it was done, in ISO 14044's terms.
    notes : list of str
    """

    table: pd.DataFrame
    pools: pd.DataFrame
    excluded: pd.DataFrame
    drivers: pd.DataFrame
    method: str
    statement_zh: str
    statement_en: str
    products: tuple
    makers: dict
    notes: list = field(default_factory=list)

    @property
    def statement(self) -> str:
        return f"{self.statement_en} / {self.statement_zh}"

    def by_product(self, values: Sequence[str] = ("tco2e",), *, by: Sequence[str] = ()) -> pd.DataFrame:
        """Allocated ``values`` summed per product (and per ``by`` columns, e.g. ``("period",)``, ``("source",)``)."""
        keys = list(by) + ["product"]
        return self.table.groupby(keys, as_index=False)[list(values)].sum()

    def residual(self, value: str = "tco2e") -> float:
        """The largest |Σ parts − pool| over the pools (floating-point rounding only)."""
        if self.table.empty:
            return 0.0
        parts = self.table.groupby(POOL_KEYS)[value].apply(lambda s: math.fsum(s))
        pools = self.pools.set_index(POOL_KEYS)[value]
        return float((parts.reindex(pools.index) - pools).abs().max())

    @property
    def allocated_tco2e(self) -> float:
        return math.fsum(self.table["tco2e"])

    @property
    def excluded_tco2e(self) -> float:
        return math.fsum(self.excluded["tco2e"]) if len(self.excluded) else 0.0


def allocate_pools(pools: pd.DataFrame, outputs: pd.DataFrame, *, method: str = "mass",
                   prices: Mapping[str, float] | None = None, drivers=None,
                   exclude_classes: Sequence[str] = (), products: Sequence[str] | None = None,
                   assign: Mapping[str, str] | None = None) -> Allocation:
    """Divide every pool of the ledger between the products (subdivision first, then ``method``).

    Parameters
    ----------
    pools : DataFrame
        :func:`ledger_pools` of the inventory's ledger.
    outputs : DataFrame
        ``period, product, facility, quantity, unit`` (:func:`outputs_from_cube`): which facility
        makes which product, and how much.
    method, prices, drivers
        See :func:`method_drivers`.
    exclude_classes : sequence of str
        Boundary classes (``non_production`` …) whose pools are not allocated but reported apart.
    products : sequence of str, optional
        The products to allocate to (default: every product with an output).
    assign : mapping, optional
        Pools that belong to one product by what is known of the process (subdivision by
        knowledge, stated in the result): a facility id → product, or ``source:<key>`` → product
        (e.g. ``{"source:exported_heat": "clinker"}``: the steam exported is the kiln's waste heat).

    Returns
    -------
    Allocation

    Raises
    ------
    ProductError
        No product output in the period, an unknown method, a product without price or driver, or
        a pool whose products have no driver in the whole span.
    """
    if method not in METHODS:
        raise ProductError(f"allocation method '{method}': one of {', '.join(METHODS)}")
    outs = outputs.copy()
    outs["period"] = outs["period"].astype(str)
    if products is not None:
        outs = outs[outs["product"].isin(list(products))]
    outs = outs[pd.to_numeric(outs["quantity"], errors="coerce").fillna(0) > 0]
    if outs.empty:
        raise ProductError("no product output in the period (the production table has no output rows): "
                           "nothing to allocate to")
    makers = product_facilities(outs)
    prods = tuple(sorted(makers))
    made_at: dict[str, list[str]] = {}
    for p, facs in makers.items():
        for f in facs:
            made_at.setdefault(f, []).append(p)
    drv = method_drivers(method, outs, pools, prices=prices, drivers=drivers)
    drv_map = {(r.period, r.product): float(r.driver) for r in drv.itertuples(index=False)}
    span = drv.groupby("product")["driver"].sum().to_dict()
    notes: list[str] = []

    pools = pools.copy()
    pools["period"] = pools["period"].astype(str)
    excl_mask = pools["classification"].isin(list(exclude_classes))
    excluded, pools = pools[excl_mask].reset_index(drop=True), pools[~excl_mask].reset_index(drop=True)

    assign = dict(assign or {})
    bad = sorted({p for p in assign.values() if p not in prods})
    if bad:
        raise ProductError(f"assign: {', '.join(bad)} is not a product with output here ({', '.join(prods)})")
    rows = []
    for (period, facility), g in pools.groupby(["period", "facility"], sort=True):
        benef = sorted(made_at.get(facility, prods))
        basis = "subdivision"
        if facility in assign:
            benef, basis = [assign[facility]], "assigned"
        shares = np.array([1.0])
        if len(benef) > 1:
            d = np.array([drv_map.get((period, p), 0.0) for p in benef])
            d = np.nan_to_num(d, nan=0.0)
            if not (d > 0).any():
                d = np.array([span.get(p, 0.0) for p in benef])
                notes.append(f"{period} {facility}: no {method} driver in the month; the span's drivers used")
            try:
                shares = allocation_shares(d)
            except ProductError as exc:
                raise ProductError(f"{period}, facility {facility}: {exc}") from None
            basis = method
        for r in g.itertuples(index=False):
            to, sh, how = benef, shares, basis
            if f"source:{r.source}" in assign:
                to, sh, how = [assign[f"source:{r.source}"]], np.array([1.0]), "assigned"
            vals = {v: allocate(getattr(r, v), sh) if len(to) > 1 else np.array([getattr(r, v)])
                    for v in POOL_VALUES}
            for k, p in enumerate(to):
                rows.append({**{c: getattr(r, c) for c in POOL_KEYS}, "product": p, "share": float(sh[k]),
                             "basis": how, **{v: float(vals[v][k]) for v in POOL_VALUES}})
    table = pd.DataFrame(rows, columns=POOL_KEYS + ["product", "share", "basis"] + POOL_VALUES)
    zh, en = _statement(method, makers, made_at, pools, drv, exclude_classes, assign)
    return Allocation(table, pools, excluded, drv, method, zh, en, prods, makers, notes)


def _statement(method, makers, made_at, pools, drv, exclude_classes, assign) -> tuple[str, str]:
    sub = [f"{f} → {ps[0]}" for f, ps in sorted(made_at.items()) if len(ps) == 1 and f not in assign]
    present = {f"source:{x}" for x in pools["source"]} | set(pools["facility"])
    sub += [f"{k.replace('source:', '')} → {p}" for k, p in sorted(assign.items()) if k in present]
    multi = [f for f, ps in sorted(made_at.items()) if len(ps) > 1 and f not in assign]
    shared = sorted(set(pools["facility"]) - set(made_at) - set(assign)) + multi
    zh_m, en_m = _METHOD_TEXT[method]
    basis = str(drv["basis"].iloc[0]) if len(drv) else ""
    if method == "physical" and basis and basis != "metered electricity of the product's own facilities":
        zh_m, en_m = f"物理因果关系：{basis}", f"physical causality: {basis}"
    en = (f"ISO 14044 allocation procedure (as ISO 14067 uses it; clause number UNVERIFIED): 1. allocation avoided "
          f"by subdivision — a facility making one product, or a pool known to be one product's, carries its "
          f"emissions ({', '.join(sub) or 'none'}); "
          f"2./3. shared pools ({', '.join(shared) or 'none'}) allocated by {en_m}, month by month.")
    zh = (f"ISO 14044 分配程序（ISO 14067 采用；条款号未核实）：1. 通过细分避免分配——只生产一种产品的设施或已知属于某产品的排放，全部归该产品"
          f"（{'，'.join(sub) or '无'}）；2./3. 共用排放（{'，'.join(shared) or '无'}）按{zh_m}逐月分配。")
    if method == "economic":
        en += " Economic allocation is ISO 14044's last resort, used here as chosen."
        zh += "经济分配是 ISO 14044 的最后选择，此处按用户选择使用。"
    if exclude_classes:
        en += f" Not allocated (reported apart): pools of class {', '.join(exclude_classes)}."
        zh += f"不分配（单独报告）：{'、'.join(exclude_classes)} 类排放。"
    return zh, en
