"""Reduction scenarios (减排情景) and the marginal abatement cost curve (issue 15 point 6).

A scenario is an ordered, editable list of **levers** — small pure steps on the inventory's activity
records, in the manner of an import's strategies — after which the changed records are accounted
again by the same engine, factors, boundary, value added and outputs
(:func:`workbench.inventory.compute.reaccount`).  So a what-if is the GB/T 32150 formula applied to
other activity data, never a percentage taken off a total; every changed or added row names its
lever in ``document`` and its record id (``<record_id>~<lever>`` for an added row); added rows are of
data tier ``proxy`` (estimates, not measurements).

Levers
------
:class:`FuelSwitch`
    a share of one fuel's energy (GJ = AD × NCV) at some nodes replaced by another fuel, the same
    useful heat: ``GJ_new = GJ_old × share × η_old/η_new``; quantity = GJ_new ÷ NCV_new (the library's
    NCV for the period and region, through the engine).
:class:`OnsitePV`
    self-consumed on-site generation replaces purchased grid electricity month by month (at most the
    month's purchase); a surplus is curtailed, or exported (GB/T 32150: exported electricity is
    subtracted) when ``export_surplus``.
:class:`EfficiencyGain`
    the energy (or any) activity data of a process cut by a fraction.
:class:`GreenElectricity`
    purchased grid electricity re-contracted as non-fossil electricity with proof of supply, which
    may take EF = 0 (GB/T 32151.34-2024 D.1.1); optionally the remaining grid electricity then takes
    MEE's average factor *excluding market-traded non-fossil power* (the residual mix; published
    nationally only), so the green power is not counted twice.

Costs
-----
:class:`Cost` gives a lever's investment, lifetime, discount rate and change in non-energy
operating cost.  The equivalent annual cost is ``capex × CRF + Δopex`` with the capital recovery
factor ``CRF = r(1+r)^n / ((1+r)^n − 1)`` (``1/n`` at ``r = 0``); with ``prices`` (元 per unit of each
item, through pint: ``{"natural_gas": "3.6 元/Nm3", "grid": "0.65 元/kWh"}``) the change in the
energy bill is priced from the change in activity data.  Over the inventory's ``m`` months::

    cost = (capex × CRF + Δopex) × m/12 + Σ_items Δquantity × price
    cost per tCO2e avoided = cost ÷ (E_before − E_after)

In a package the levers act by phase, whatever the order written: first the demand (efficiency
gains and fuel switches, in the order given), then on-site generation, then purchases (green
electricity) — PV covers what the more efficient plant still draws, green power what is still bought.

:func:`mac_curve` ranks measures by that cost (the marginal abatement cost curve, MACC: McKinsey &
Company 2009, *Pathways to a Low-Carbon Economy*; Kesicki & Strachan 2011, *Environ. Sci. Policy*
14(8):1195–1204 on its caveats) with each measure's abatement alone and, applied cumulatively in
the curve's order, its increment once the cheaper ones are in place (measures interact: a PV plant
avoids less after green electricity has been bought).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.core.activity import normalize_activity
from workbench.core.boundary import BoundaryError
from workbench.core.units import conversion_factor, normalize_unit, parse_unit
from workbench.inventory.compute import Inventory, months, reaccount
from workbench.models.mechanism import ModelError

__all__ = [
    "Cost",
    "EfficiencyGain",
    "FuelSwitch",
    "GreenElectricity",
    "Lever",
    "OnsitePV",
    "ScenarioError",
    "ScenarioResult",
    "activity_change",
    "annualised_cost",
    "capital_recovery_factor",
    "evaluate",
    "mac_curve",
    "mac_plot",
    "parse_price",
]

ADDED_TIER = "proxy"           # an added row is an estimate
RESIDUAL_MIX = ["MEE-average-excl-market-nonfossil", "non-fossil-with-proof"]


class ScenarioError(ModelError, ValueError):
    pass


# --------------------------------------------------------------------------- costs
def capital_recovery_factor(rate: float, years: float) -> float:
    r"""Capital recovery factor: the share of an investment paid each year to repay it over its life.

    .. math::  CRF = \frac{r (1+r)^n}{(1+r)^n - 1}, \qquad CRF = 1/n \text{ at } r = 0

    Parameters
    ----------
    rate : float
        Discount rate per year, a fraction (0.08 = 8 %), ≥ 0.
    years : float
        Economic life ``n`` in years, > 0.
    """
    if years is None or not years > 0:
        raise ScenarioError(f"lifetime {years!r}: must be > 0 years")
    if rate is None or not rate >= 0:
        raise ScenarioError(f"discount rate {rate!r}: must be a fraction ≥ 0")
    if rate == 0:
        return 1.0 / years
    g = (1.0 + rate) ** years
    return rate * g / (g - 1.0)


@dataclass(frozen=True)
class Cost:
    """A lever's costs in 元 (CNY).

    ``capex_cny`` the investment, paid back over ``lifetime_years`` at ``discount_rate`` (a fraction;
    required with an investment — there is no default rate); ``annual_opex_cny`` the change in
    non-energy operating and maintenance cost per year (negative: a saving).  The change in energy
    bills is not entered here: :func:`evaluate` prices it from the activity data."""
    capex_cny: float = 0.0
    lifetime_years: float | None = None
    discount_rate: float | None = None
    annual_opex_cny: float = 0.0

    def __post_init__(self):
        if self.capex_cny and (self.lifetime_years is None or self.discount_rate is None):
            raise ScenarioError(f"an investment of {self.capex_cny:,.0f} 元 needs its lifetime_years and discount_rate")


def annualised_cost(cost: Cost | None) -> float:
    """Equivalent annual cost ``capex × CRF(r, n) + Δopex`` in 元/year (0 without a cost)."""
    if cost is None:
        return 0.0
    capital = cost.capex_cny * capital_recovery_factor(cost.discount_rate, cost.lifetime_years) if cost.capex_cny else 0.0
    return capital + float(cost.annual_opex_cny or 0.0)


_PRICE = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(.+?)\s*$")


def parse_price(text) -> tuple[float, str]:
    """``"3.6 元/Nm3"`` → ``(3.6, "CNY/Nm3")``: the number and the unit (currency per unit of the item)."""
    if isinstance(text, (tuple, list)) and len(text) == 2:
        value, unit = float(text[0]), str(text[1])
    else:
        m = _PRICE.match(str(text))
        if not m:
            raise ScenarioError(f"price {text!r}: write a number and a unit, e.g. '3.6 元/Nm3'")
        value, unit = float(m.group(1)), m.group(2)
    try:
        unit = normalize_unit(unit)
        parse_unit(unit)
    except Exception as exc:        # a pint or unit error, said in one line naming the price
        raise ScenarioError(f"price {text!r}: {exc}") from exc
    if "/" not in unit:
        raise ScenarioError(f"price {text!r}: the unit must be a currency per unit of the item, e.g. 元/kWh")
    return value, unit


def _price_per(price, unit: str) -> float:
    """A price converted to 元 per ``unit`` (the item's normalised unit)."""
    value, punit = parse_price(price)
    try:
        return value * conversion_factor(punit, f"CNY/{unit}")
    except Exception as exc:        # pint's dimensionality error, or ours
        raise ScenarioError(f"price {price!r} does not convert to 元/{unit}: {exc}") from exc


# --------------------------------------------------------------------------- levers
@dataclass(frozen=True)
class _Context:
    """What a lever may consult: the base inventory (boundary, library, regime, months)."""
    inventory: Inventory

    @property
    def boundary(self):
        return self.inventory.boundary

    def under(self, node_ids: pd.Series, nodes) -> np.ndarray:
        """Rows whose node is one of ``nodes`` or below it (all rows when ``nodes`` is empty)."""
        if not nodes:
            return np.ones(len(node_ids), dtype=bool)
        nodes = [nodes] if isinstance(nodes, str) else list(nodes)
        unknown = [n for n in nodes if n not in self.boundary.nodes.index]
        if unknown:
            raise ScenarioError(f"nodes {unknown} are not in the boundary of {self.boundary.enterprise}")
        want = set(nodes)
        ids = node_ids.astype(str)
        inside = {}
        for n in pd.unique(ids):
            try:
                inside[n] = bool(want.intersection(self.boundary.ancestors(n)))
            except BoundaryError:       # a node the boundary does not know is under none
                inside[n] = False
        return np.array(ids.map(inside), dtype=bool)

    def sources(self, sign: int, category: str) -> list[str]:
        return [s.key for s in self.inventory.regime.sources if s.sign == sign and category in s.categories]

    def category(self, items: pd.Series) -> np.ndarray:
        cat = self.inventory.library.items.set_index("item")["category"]
        return items.map(cat).fillna("").to_numpy()

    def energy_gj(self, rows: pd.DataFrame) -> np.ndarray:
        """GJ of each activity row (AD × NCV of the engine; NaN for items without an NCV)."""
        if rows.empty:
            return np.zeros(0)
        inv = self.inventory
        from workbench.accounting import account
        led = account(rows, inv.library, region=inv.region, boundary=inv.boundary, regime=inv.regime)
        return led["activity_gj"].to_numpy(dtype="float64")

    def new_rows(self, like: pd.DataFrame, item: str, quantity, unit: str, source: str, document: str,
                 tag: str) -> pd.DataFrame:
        """Normalised activity rows of ``item`` on the nodes and periods of ``like`` (library factors:
        no site value is carried over), with record ids ``<record_id>~<tag>``."""
        raw = pd.DataFrame({
            "source": source, "item": item, "quantity": np.asarray(quantity, dtype="float64"), "unit": unit,
            "node_id": like["node_id"].to_numpy(), "facility": like["facility"].to_numpy(),
            "period": like["period"].to_numpy(), "region": like["region"].to_numpy() if "region" in like else "",
            "data_tier": ADDED_TIER, "document": document,
        })
        out = normalize_activity(raw, origin="scenario", library=self.inventory.library, regime=self.inventory.regime)
        out["record_id"] = [f"{r}~{tag}" for r in like["record_id"]]
        out["row"] = like["row"].to_numpy()
        return out


def _scale(activity: pd.DataFrame, mask: np.ndarray, factor, document: str) -> pd.DataFrame:
    """Rows of ``mask`` with their quantities multiplied by ``factor`` (scalar or per masked row)."""
    out = activity.copy()
    f = np.asarray(factor, dtype="float64")
    for col in ("quantity", "quantity_normalized"):
        if col in out:
            out.loc[mask, col] = out.loc[mask, col].to_numpy(dtype="float64") * f
    out.loc[mask, "document"] = [f"{d} | {document}" if d else document for d in out.loc[mask, "document"]]
    return out


@dataclass(frozen=True)
class Lever:
    """One step of a scenario.  Subclasses implement :meth:`apply` (activity → activity, pure) and may
    change the factor-set choice (:meth:`factor_sets`)."""
    name: str = ""
    cost: Cost | None = None

    kind = "lever"
    label = ("措施", "lever")
    #: when a lever acts in a package: 0 the demand (efficiency, fuel switch), 1 on-site supply, 2 purchases
    phase = 0

    def apply(self, activity: pd.DataFrame, ctx: _Context) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def factor_sets(self) -> dict:
        return {}

    def describe(self, lang: str = "en") -> str:
        return self.name or self.label[lang == "en"]


@dataclass(frozen=True)
class FuelSwitch(Lever):
    """Replace ``share`` of ``from_item``'s energy at ``nodes`` (all nodes when empty) by ``to_item``.

    ``efficiency_ratio`` = η_old/η_new of the equipment (1: the same efficiency): the new fuel's
    energy is ``GJ_old × share × efficiency_ratio`` and its quantity that over its NCV."""
    from_item: str = ""
    to_item: str = ""
    share: float = 1.0
    nodes: tuple = ()
    efficiency_ratio: float = 1.0

    kind = "fuel_switch"
    label = ("燃料替代", "fuel switch")

    def apply(self, activity, ctx):
        if not 0 < self.share <= 1:
            raise ScenarioError(f"fuel switch {self.from_item} → {self.to_item}: share {self.share!r} must be in (0, 1]")
        if not self.efficiency_ratio > 0:
            raise ScenarioError(f"fuel switch: efficiency_ratio {self.efficiency_ratio!r} must be > 0")
        lib = ctx.inventory.library
        frm, to = lib.item_code(self.from_item), lib.item_code(self.to_item)
        if ctx.category(pd.Series([to]))[0] != "fuel":
            raise ScenarioError(f"fuel switch: {self.to_item!r} is not a fuel of the factor library")
        sel = activity["item"].eq(frm).to_numpy() & ctx.under(activity["node_id"], self.nodes)
        sel &= np.isin(activity["source"], ctx.sources(+1, "fuel"))
        if not sel.any():
            raise ScenarioError(f"fuel switch: no {frm} is burnt at {list(self.nodes) or 'any node'} in "
                                f"{ctx.inventory.period_start}..{ctx.inventory.period_end}")
        rows = activity[sel]
        gj_old = ctx.energy_gj(rows) * self.share
        if np.isnan(gj_old).any():
            raise ScenarioError(f"fuel switch: {frm} has no net calorific value here; its energy is unknown")
        unit = str(lib.items.set_index("item").loc[to, "default_unit"])
        tag = f"{self.kind}:{frm}->{to}"
        doc = f"scenario: {self.describe()} ({frm} → {to}, {self.share:.0%} of the energy)"
        src = rows["source"].to_numpy()
        per_unit = ctx.energy_gj(ctx.new_rows(rows, to, np.ones(len(rows)), unit, src, doc, tag))
        new = ctx.new_rows(rows, to, gj_old * self.efficiency_ratio / per_unit, unit, src, doc, tag)
        kept = _scale(activity, sel, 1.0 - self.share, doc)
        if self.share == 1.0:
            kept = kept[~sel]
        return pd.concat([kept, new], ignore_index=True)

    def describe(self, lang="en"):
        return self.name or (f"{self.label[lang == 'en']} {self.from_item} → {self.to_item}")


def _monthly(values, periods: list[str], what: str) -> np.ndarray:
    """A year's figure spread over ``periods`` (YYYY-MM) by a 12-month profile (None: days in month)."""
    idx = pd.PeriodIndex(periods, freq="M")
    if values is None:
        share = np.array([p.days_in_month / (366 if p.is_leap_year else 365) for p in idx])
    else:
        prof = np.asarray(values, dtype="float64")
        if prof.shape != (12,) or (prof < 0).any() or not math.isclose(prof.sum(), 1.0, rel_tol=1e-6):
            raise ScenarioError(f"{what}: a monthly profile is 12 non-negative shares (January first) summing to 1")
        share = prof[idx.month - 1]
    return share


@dataclass(frozen=True)
class OnsitePV(Lever):
    """On-site generation of ``annual_mwh`` per year (or ``capacity_kwp`` × ``yield_kwh_per_kwp``,
    the site's specific yield) spread over the months by ``monthly_profile`` (12 shares; default by
    days in the month — an assumption, stated in the result), used on site first: each month it
    replaces purchased grid electricity at ``nodes`` (all when empty) pro rata to the rows, at most
    all of it.  A surplus is curtailed, or booked as exported electricity on the enterprise node when
    ``export_surplus``."""
    annual_mwh: float | None = None
    capacity_kwp: float | None = None
    yield_kwh_per_kwp: float | None = None
    monthly_profile: tuple | None = None
    nodes: tuple = ()
    export_surplus: bool = False

    kind = "onsite_pv"
    label = ("分布式光伏", "on-site PV")
    phase = 1

    def generation_mwh(self) -> float:
        if self.annual_mwh is not None:
            g = float(self.annual_mwh)
        elif self.capacity_kwp is not None and self.yield_kwh_per_kwp is not None:
            g = float(self.capacity_kwp) * float(self.yield_kwh_per_kwp) / 1000.0
        else:
            raise ScenarioError("on-site PV: give annual_mwh, or capacity_kwp with the site's yield_kwh_per_kwp")
        if not g > 0:
            raise ScenarioError(f"on-site PV: generation {g!r} MWh/year must be > 0")
        return g

    def apply(self, activity, ctx):
        gen_year = self.generation_mwh()
        grid = _grid_rows(activity, ctx, self.nodes, "on-site PV")
        periods = sorted(activity["period"].astype(str).unique())
        gen = dict(zip(periods, gen_year * _monthly(self.monthly_profile, periods, "on-site PV"), strict=True))
        doc = f"scenario: {self.describe()} ({gen_year:,.1f} MWh/year)"
        q = activity["quantity_normalized"].where(grid, 0.0).astype("float64")
        month_total = q.groupby(activity["period"].astype(str)).transform("sum")
        used = activity["period"].astype(str).map(gen).astype("float64")
        factor = np.where(grid, 1.0 - np.minimum(used / month_total.where(month_total > 0), 1.0), 1.0)
        factor = np.nan_to_num(factor, nan=1.0)
        out = _scale(activity, grid & (factor < 1.0), factor[grid & (factor < 1.0)], doc)
        if self.export_surplus:
            totals = q.groupby(activity["period"].astype(str)).sum()
            surplus = {p: gen[p] - totals.get(p, 0.0) for p in periods if gen[p] > totals.get(p, 0.0)}
            exported = ctx.sources(-1, "electricity")
            if surplus and exported:
                ent = ctx.boundary.enterprise
                like = pd.DataFrame({"node_id": ent, "facility": ent, "period": list(surplus),
                                     "region": "", "record_id": [f"{ent}:{p}" for p in surplus], "row": 0})
                new = ctx.new_rows(like, "grid", list(surplus.values()), "MWh", exported[0],
                                   doc + " — surplus exported", f"{self.kind}:export")
                out = pd.concat([out, new], ignore_index=True)
        return out


def _grid_rows(activity, ctx, nodes, what) -> np.ndarray:
    grid = activity["item"].eq("grid").to_numpy() & np.isin(activity["source"], ctx.sources(+1, "electricity"))
    grid &= ctx.under(activity["node_id"], nodes)
    if not grid.any():
        raise ScenarioError(f"{what}: no purchased grid electricity at {list(nodes) or 'any node'}")
    if not activity.loc[grid, "unit_normalized"].eq("MWh").all():
        raise ScenarioError(f"{what}: grid electricity not in MWh after normalisation")
    return grid


@dataclass(frozen=True)
class EfficiencyGain(Lever):
    """Cut the activity data at ``nodes`` by ``saving`` (0.05 = 5 %): by default the energy of the
    process (fuels, electricity, heat bought); ``items`` narrows it to some items."""
    saving: float = 0.0
    nodes: tuple = ()
    items: tuple = ()

    kind = "efficiency"
    label = ("能效提升", "efficiency gain")

    def apply(self, activity, ctx):
        if not 0 < self.saving < 1:
            raise ScenarioError(f"efficiency gain: saving {self.saving!r} must be a fraction in (0, 1)")
        sel = ctx.under(activity["node_id"], self.nodes)
        sel &= np.isin(activity["source"], ctx.sources(+1, "fuel") + ctx.sources(+1, "electricity")
                       + ctx.sources(+1, "heat"))
        if self.items:
            lib = ctx.inventory.library
            sel &= activity["item"].isin([lib.item_code(i) for i in self.items]).to_numpy()
        if not sel.any():
            raise ScenarioError(f"efficiency gain: no energy use at {list(self.nodes) or 'any node'}"
                                + (f" of {list(self.items)}" if self.items else ""))
        return _scale(activity, sel, 1.0 - self.saving, f"scenario: {self.describe()} (−{self.saving:.1%})")

    def describe(self, lang="en"):
        where = ", ".join(self.nodes) if self.nodes else ("全厂" if lang == "zh" else "whole plant")
        return self.name or f"{self.label[lang == 'en']} {where}"


@dataclass(frozen=True)
class GreenElectricity(Lever):
    """Buy ``annual_mwh`` per year (or ``share`` of the purchased grid electricity) as non-fossil
    electricity with proof of supply (绿电, EF = 0 by GB/T 32151.34-2024 D.1.1), spread over the
    months by ``monthly_profile`` (default: pro rata to each month's grid purchase) and over the
    rows of a month pro rata; at most the month's purchase.  ``residual_mix``: the remaining grid
    electricity takes MEE's average factor excluding market-traded non-fossil power."""
    annual_mwh: float | None = None
    share: float | None = None
    monthly_profile: tuple | None = None
    nodes: tuple = ()
    residual_mix: bool = False

    kind = "green_electricity"
    label = ("绿电采购", "green electricity")
    phase = 2

    def apply(self, activity, ctx):
        grid = _grid_rows(activity, ctx, self.nodes, "green electricity")
        per = activity["period"].astype(str)
        q = activity["quantity_normalized"].where(grid, 0.0).astype("float64")
        month_total = q.groupby(per).transform("sum")
        if self.share is not None:
            if not 0 < self.share <= 1:
                raise ScenarioError(f"green electricity: share {self.share!r} must be in (0, 1]")
            moved_frac = np.full(len(activity), float(self.share))
        elif self.annual_mwh is not None and self.annual_mwh > 0:
            periods = sorted(per.unique())
            totals = q.groupby(per).sum()
            if self.monthly_profile is None:
                year_total = float(totals.sum()) * 12.0 / len(periods)
                want = {p: self.annual_mwh * totals[p] / year_total for p in periods}
            else:
                want = dict(zip(periods, self.annual_mwh * _monthly(self.monthly_profile, periods, "green electricity"),
                                strict=True))
            moved_frac = np.minimum(per.map(want).astype("float64") / month_total.where(month_total > 0), 1.0).to_numpy()
        else:
            raise ScenarioError("green electricity: give annual_mwh (> 0) or share")
        moved_frac = np.nan_to_num(moved_frac, nan=0.0)
        sel = grid & (moved_frac > 0)
        doc = f"scenario: {self.describe()} (non-fossil with proof of supply, GB/T 32151.34-2024 D.1.1)"
        rows = activity[sel]
        green = ctx.new_rows(rows, "green_electricity", rows["quantity_normalized"].to_numpy() * moved_frac[sel],
                             "MWh", rows["source"].to_numpy(), doc, self.kind)
        out = _scale(activity, sel, 1.0 - moved_frac[sel], doc)
        out = out[~(sel & (moved_frac >= 1.0))] if (moved_frac[sel] >= 1.0).any() else out
        return pd.concat([out, green], ignore_index=True)

    def factor_sets(self):
        return {("electricity", "emission_factor"): list(RESIDUAL_MIX)} if self.residual_mix else {}


# --------------------------------------------------------------------------- evaluation
@dataclass
class ScenarioResult:
    """A scenario's inventories before and after, what each lever did, and what it costs."""
    name: str
    levers: tuple
    before: Inventory
    after: Inventory
    steps: pd.DataFrame
    activity_change: pd.DataFrame
    energy_cost_change_cny: float = float("nan")
    annualised_cost_cny: float = 0.0
    cost_cny: float = float("nan")
    months: int = 12
    notes: list = field(default_factory=list)

    @property
    def avoided_tco2e(self) -> float:
        return self.before.total_tco2e - self.after.total_tco2e

    @property
    def cost_per_tco2e(self) -> float:
        """元 per tCO2e avoided; NaN when nothing is avoided or no cost is known."""
        a = self.avoided_tco2e
        return self.cost_cny / a if a > 1e-9 and not math.isnan(self.cost_cny) else float("nan")

    def by_source(self) -> pd.DataFrame:
        b, a = self.before.by_source(), self.after.by_source()
        out = b.rename(columns={"tco2e": "before_tco2e"})
        out["after_tco2e"] = a["tco2e"].to_numpy()
        out["change_tco2e"] = out["after_tco2e"] - out["before_tco2e"]
        return out

    def by_facility(self) -> pd.DataFrame:
        b = self.before.cube["total_tco2e"].sum("period").to_pandas()
        a = self.after.cube["total_tco2e"].sum("period").to_pandas()
        out = pd.DataFrame({"before_tco2e": b, "after_tco2e": a.reindex(b.index.union(a.index))}).fillna(0.0)
        out["change_tco2e"] = out["after_tco2e"] - out["before_tco2e"]
        out.index.name = "facility"
        return out.reset_index()

    def monthly(self) -> pd.DataFrame:
        b, a = self.before.efficiency.set_index("period"), self.after.efficiency.set_index("period")
        return pd.DataFrame({"before_tco2e": b["tco2e"], "after_tco2e": a["tco2e"],
                             "before_carbon_efficiency": b["carbon_efficiency"],
                             "after_carbon_efficiency": a["carbon_efficiency"]}).reset_index()

    def summary(self) -> dict:
        """The headline figures (tCO2e, tCO2e/万元, 元)."""
        return {
            "scenario": self.name, "period_start": self.before.period_start, "period_end": self.before.period_end,
            "before_tco2e": self.before.total_tco2e, "after_tco2e": self.after.total_tco2e,
            "avoided_tco2e": self.avoided_tco2e,
            "avoided_pct": 100.0 * self.avoided_tco2e / self.before.total_tco2e if self.before.total_tco2e else float("nan"),
            "value_added": self.before.summary.get("value_added", float("nan")),
            "carbon_efficiency_before": self.before.summary.get("carbon_efficiency", float("nan")),
            "carbon_efficiency_after": self.after.summary.get("carbon_efficiency", float("nan")),
            "energy_cost_change_cny": self.energy_cost_change_cny,
            "annualised_cost_cny": self.annualised_cost_cny, "cost_cny": self.cost_cny,
            "cost_per_tco2e": self.cost_per_tco2e, "months": self.months,
        }


def _activity_totals(activity: pd.DataFrame) -> pd.Series:
    return activity.groupby(["source", "item", "unit_normalized"], observed=True)["quantity_normalized"].sum()


def activity_change(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Activity data by source, item and unit before and after, and the change."""
    b, a = _activity_totals(before), _activity_totals(after)
    idx = b.index.union(a.index)
    out = pd.DataFrame({"before": b.reindex(idx, fill_value=0.0), "after": a.reindex(idx, fill_value=0.0)})
    out["change"] = out["after"] - out["before"]
    out = out.reset_index().rename(columns={"unit_normalized": "unit"})
    return out[out["change"].abs() > 1e-12 * out[["before", "after"]].abs().max(axis=1).clip(lower=1.0)].reset_index(drop=True)


def energy_cost_change(change: pd.DataFrame, prices: dict) -> float:
    """Σ Δquantity × price over the changed items (元); an exported quantity earns its price (the sign
    follows the regime: exports reduce the bill).  A changed item without a price is an error."""
    total = 0.0
    missing = sorted({i for i in change["item"] if i not in prices})
    if missing:
        unit = change.loc[change["item"] == missing[0], "unit"].iloc[0]
        raise ScenarioError(f"no price for {', '.join(missing)} (prices are given per item, e.g. "
                            f"{missing[0]}: \"… 元/{unit}\"); pass prices for every changed item or none")
    for r in change.itertuples(index=False):
        sign = -1.0 if str(r.source).startswith("exported") else 1.0
        total += sign * r.change * _price_per(prices[r.item], r.unit)
    return total


def _check_levers(levers) -> tuple:
    levers = tuple(levers) if isinstance(levers, (list, tuple)) else (levers,)
    if not levers:
        raise ScenarioError("a scenario needs at least one lever")
    for lv in levers:
        if not isinstance(lv, Lever):
            raise ScenarioError(f"{lv!r} is not a lever (FuelSwitch, OnsitePV, EfficiencyGain, GreenElectricity)")
    return levers


def evaluate(inventory: Inventory, levers, *, name: str = "scenario", prices: dict | None = None) -> ScenarioResult:
    """Apply ``levers`` in order to ``inventory``'s activity records and account the result.

    Returns a :class:`ScenarioResult`: the inventory after, the steps (rows changed and added per
    lever), the change of activity data per item, and — with ``prices`` and the levers' costs — the
    cost over the inventory's months and the cost per tCO2e avoided."""
    levers = _check_levers(levers)
    ctx = _Context(inventory)
    activity = inventory.activity.copy()
    steps, factor_sets = [], {}
    # demand first, then on-site supply, then purchases: the result does not depend on the order written
    order = sorted(range(len(levers)), key=lambda k: levers[k].phase)
    for i, k in enumerate(order, 1):
        lv = levers[k]
        before_ids = set(activity["record_id"])
        q_before = activity.set_index("record_id")["quantity_normalized"]
        activity = lv.apply(activity, ctx).reset_index(drop=True)
        added = ~activity["record_id"].isin(before_ids)
        activity.loc[added, "record_id"] = activity.loc[added, "record_id"] + f"#s{i}"   # unique per step
        q_after = activity.set_index("record_id")["quantity_normalized"]
        common = q_after.index.intersection(q_before.index)
        changed = int((~np.isclose(q_after.loc[common].to_numpy(), q_before.loc[common].to_numpy(), rtol=1e-12)).sum())
        steps.append({"step": i, "given": k + 1, "lever": lv.kind, "description": lv.describe(),
                      "description_zh": lv.describe("zh"),
                      "rows_changed": changed, "rows_added": len(set(activity["record_id"]) - before_ids),
                      "rows_removed": len(before_ids - set(activity["record_id"])),
                      "annualised_cost_cny": annualised_cost(lv.cost)})
        factor_sets.update(lv.factor_sets())
    notes = [f"scenario {name}: " + "; ".join(s["description"] for s in steps)]
    after = reaccount(inventory, activity, factor_sets=factor_sets or None, notes=notes)
    change = activity_change(inventory.activity, activity)
    n_months = len(months(inventory.period_start, inventory.period_end))
    annual = sum(annualised_cost(lv.cost) for lv in levers)
    energy = energy_cost_change(change, prices) if prices is not None else float("nan")
    if prices is None and any(lv.cost is not None for lv in levers):
        notes.append("no energy prices given: the cost leaves out the change in energy bills")
    period_cost = annual * n_months / 12.0 + (0.0 if math.isnan(energy) else energy)
    has_cost = prices is not None or any(lv.cost is not None for lv in levers)
    for lv in levers:
        if isinstance(lv, OnsitePV) and lv.monthly_profile is None:
            notes.append("on-site PV spread over the months by their days (no monthly profile given): an assumption")
        if isinstance(lv, GreenElectricity) and lv.residual_mix:
            notes.append("remaining grid electricity at MEE's average excluding market-traded non-fossil power")
    return ScenarioResult(name, levers, inventory, after, pd.DataFrame(steps), change, energy, annual,
                          period_cost if has_cost else float("nan"), n_months, notes)


def mac_curve(inventory: Inventory, measures: dict, *, prices: dict | None = None) -> pd.DataFrame:
    """The marginal abatement cost curve of ``measures`` (name → a lever or a list of levers).

    Each measure is evaluated alone against the inventory (``avoided_tco2e``, ``cost_cny``,
    ``cost_per_tco2e`` 元/tCO2e), the curve sorted by cost per tCO2e (measures with no abatement or
    no cost last, ``on_curve`` False), then the measures on the curve applied cumulatively in that
    order: ``incremental_tco2e`` is what each adds once the cheaper ones are in place, ``x0``/``x1``
    its span on the curve's abscissa (cumulative tCO2e), ``incremental_cost_per_tco2e`` its cost over
    that increment.  The last row of the cumulative run is the whole package
    (``cumulative_after_tco2e``, ``cumulative_carbon_efficiency``)."""
    if not measures:
        raise ScenarioError("a MAC curve needs at least one measure")
    alone = {}
    for name, levers in measures.items():
        alone[name] = evaluate(inventory, levers, name=name, prices=prices)
    rows = []
    for name, r in alone.items():
        s = r.summary()
        rows.append({"measure": name, "levers": "; ".join(lv.describe() for lv in r.levers),
                     "avoided_tco2e": s["avoided_tco2e"], "cost_cny": s["cost_cny"],
                     "cost_per_tco2e": s["cost_per_tco2e"]})
    curve = pd.DataFrame(rows)
    curve["on_curve"] = curve["cost_per_tco2e"].notna() & (curve["avoided_tco2e"] > 1e-9)
    curve = pd.concat([curve[curve["on_curve"]].sort_values("cost_per_tco2e", kind="stable"),
                       curve[~curve["on_curve"]]], ignore_index=True)
    inc, x0, x1, inc_cost, after_t, after_ce = [], [], [], [], [], []
    applied: list = []
    prev_total, prev_cost = inventory.total_tco2e, 0.0
    x = 0.0
    for row in curve.itertuples(index=False):
        if not row.on_curve:
            for lst in (inc, x0, x1, inc_cost, after_t, after_ce):
                lst.append(float("nan"))
            continue
        applied += list(alone[row.measure].levers)
        cum = evaluate(inventory, applied, name="+".join(curve["measure"][:len(inc) + 1]), prices=prices)
        d = prev_total - cum.after.total_tco2e
        inc.append(d)
        x0.append(x)
        x += max(d, 0.0)
        x1.append(x)
        # the increment's cost: the package's cost with this measure minus without it
        inc_cost.append((cum.cost_cny - prev_cost) / d if d > 1e-9 else float("nan"))
        prev_cost = cum.cost_cny
        after_t.append(cum.after.total_tco2e)
        after_ce.append(cum.after.summary.get("carbon_efficiency", float("nan")))
        prev_total = cum.after.total_tco2e
    curve["incremental_tco2e"] = inc
    curve["x0"], curve["x1"] = x0, x1
    curve["incremental_cost_per_tco2e"] = inc_cost
    curve["cumulative_after_tco2e"] = after_t
    curve["cumulative_carbon_efficiency"] = after_ce
    curve.attrs.update(before_tco2e=inventory.total_tco2e,
                       carbon_efficiency=inventory.summary.get("carbon_efficiency", float("nan")),
                       period=f"{inventory.period_start}..{inventory.period_end}")
    return curve



def mac_plot(curve: pd.DataFrame, *, lang: str = "en", cost: str = "incremental_cost_per_tco2e"):
    """The MAC curve as HoloViews rectangles: width = the measure's incremental abatement (tCO2e),
    height = its cost per tCO2e (元/tCO2e; below the axis: it saves money)."""
    import holoviews as hv
    import holoviews.plotting.bokeh  # the options below are Bokeh's

    c = curve[curve["on_curve"]].copy()
    c["y"] = c[cost].fillna(0.0)
    rects = hv.Rectangles((c["x0"], np.minimum(c["y"], 0.0), c["x1"], np.maximum(c["y"], 0.0),
                           c["measure"]), vdims=["measure"])
    zh = lang == "zh"
    return rects.opts(color="measure", cmap="Category10", line_color="white", tools=["hover"],
                      xlabel="累计减排量 (tCO2e)" if zh else "cumulative abatement (tCO2e)",
                      ylabel="单位减排成本 (元/tCO2e)" if zh else "cost (元/tCO2e)",
                      title="边际减排成本曲线" if zh else "marginal abatement cost curve",
                      responsive=True, min_height=320, show_legend=True)
