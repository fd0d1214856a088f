"""Product carbon footprints (产品碳足迹, seed §9.4 b) from the inventory's ledger.

A product's footprint per declared unit (kgCO2e per t of cement …) is built in three steps:

1. **allocation** (:mod:`.allocation`): every (month, facility, source) pool of the ledger is divided
   between the products — subdivision first, then mass, physical causality or economic value;
2. **the chain**: a product made from another product of the same plant (cement from its clinker)
   carries the precursor's emissions — the same formula the EU CBAM uses for specific embedded
   emissions (:func:`workbench.regimes.cbam.specific_embedded_emissions`, IR 2025/2547 Eq. 59)::

       FP_p = (AttrEm_p + Σ_i M_i × FP_i) / Q_p        [tCO2e/unit]

   ``AttrEm_p`` the emissions allocated to product p's own process (tCO2e), ``M_i`` the precursor
   consumed (its unit), ``Q_p`` the output (unit).  By default a precursor's whole output goes into
   its consumer, less what was sold (``sold``); the chains of a sector are :data:`PRECURSOR_CHAINS`;
3. **the energy rating** (:mod:`.energy`): the product's unit energy consumption graded by its
   sector's standard (GB 16780-2021 for clinker and cement), from the same allocation of the
   ledger's energy (non-production energy excluded, as GB/T 2589 defines comprehensive energy).

Boundary: the figure is the *on-site part of cradle-to-gate* — the enterprise's scope 1 and 2
emissions as its GB/T 32150 inventory counts them (exported heat and electricity credited, as the
inventory does), with its own precursors.  Upstream emissions of purchased materials, fuels and
transport are not in the ledger and are not included unless given (``upstream``); the result says
so.  Conservation: the footprints of the goods that leave the plant, times their quantities, add
up to the allocated emissions (:meth:`FootprintResult.check`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.products.allocation import (
    Allocation,
    allocate_pools,
    ledger_pools,
    outputs_from_cube,
)
from workbench.products.energy import EnergyRating, not_rated, rate, unit_energy
from workbench.products.errors import ProductError
from workbench.regimes.cbam import CBAMError, embedded_emissions, precursor_rows

__all__ = [
    "BOUNDARY_EN",
    "BOUNDARY_ZH",
    "DIRECT_SOURCES",
    "INDIRECT_SOURCES",
    "PRECURSOR_CHAINS",
    "SECTOR_ASSIGN",
    "FootprintResult",
    "ProductFootprint",
    "batch_footprints",
    "default_assign",
    "footprints_from_ledger",
    "precursor_chains",
    "precursor_consumption",
    "product_footprints",
    "products_meta",
]

#: sector → consuming product → its precursors made in the same plant (cement is ground from the plant's
#: clinker; a mini-mill rolls its own billets into bar — the billets lost as scale and crop ends count in M)
PRECURSOR_CHAINS = {"cement": {"cement": ("clinker",)}, "steel": {"rebar": ("billet",)}}
#: sector → pools known to be one product's (:func:`~.allocation.allocate_pools` ``assign``): a cement
#: plant's exported steam is the kiln's waste heat, so its credit is the clinker's
SECTOR_ASSIGN = {"cement": {"source:exported_heat": "clinker", "source:exported_electricity": "clinker"}}
#: sources counted as direct (scope 1, with the inventory's export credits) and as energy-indirect (scope 2)
DIRECT_SOURCES = ("combustion", "process", "exported_heat", "exported_electricity")
INDIRECT_SOURCES = ("purchased_electricity", "purchased_heat")

BOUNDARY_EN = ("cradle-to-gate, on-site part: the enterprise's scope 1 and 2 emissions (its GB/T 32150 inventory, "
               "exported heat and electricity credited) allocated to the product, with its own precursors; "
               "upstream emissions of purchased materials, fuels and transport not included")
BOUNDARY_ZH = ("从摇篮到大门的厂内部分：企业范围一、二排放（GB/T 32150 清单，输出热力/电力已扣减）分配到产品，含本厂前道产品；"
               "外购原材料、燃料及运输的上游排放未计入")


@dataclass
class ProductFootprint:
    """The footprint of one product over a period (tCO2e, per declared unit and in total).

    ``per_unit_tco2e`` is tCO2e per one ``unit`` of product (:attr:`kgco2e_per_unit` the same in
    kgCO2e); ``embedded_tco2e`` = ``attributed_tco2e`` (the product's own process) +
    ``precursor_tco2e`` (Σ M_i × FP_i); ``direct``/``indirect`` split the per-unit figure into
    scope 1 (with export credits) and scope 2.
    """

    enterprise_id: str
    product: str
    name_zh: str
    name_en: str
    unit: str
    period_start: str
    period_end: str
    output: float
    attributed_tco2e: float
    precursor_tco2e: float
    embedded_tco2e: float
    per_unit_tco2e: float
    per_unit_direct_tco2e: float
    per_unit_indirect_tco2e: float
    by_source: dict
    precursors: list
    energy: list
    method: str
    allocation_zh: str
    allocation_en: str
    facilities: tuple
    standard: str
    gwp: str
    upstream_tco2e: float = 0.0
    boundary_en: str = BOUNDARY_EN
    boundary_zh: str = BOUNDARY_ZH
    primary_data_share: float = math.nan
    notes: list = field(default_factory=list)

    @property
    def kgco2e_per_unit(self) -> float:
        return self.per_unit_tco2e * 1000.0

    @property
    def declared_unit(self) -> str:
        return f"1 {self.unit}"

    @property
    def period(self) -> str:
        """``YYYY-MM`` or ``YYYY-MM/YYYY-MM`` (the identifier node's period form)."""
        return self.period_start if self.period_start == self.period_end else f"{self.period_start}/{self.period_end}"

    @property
    def energy_rating(self) -> EnergyRating:
        """The headline rating: the product's comprehensive energy consumption (else the first, else not rated)."""
        for r in self.energy:
            if r.indicator.endswith("_energy"):
                return r
        return self.energy[0] if self.energy else not_rated(None)

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in (
            "enterprise_id", "product", "name_zh", "name_en", "unit", "period_start", "period_end", "output",
            "attributed_tco2e", "precursor_tco2e", "upstream_tco2e", "embedded_tco2e", "per_unit_tco2e",
            "per_unit_direct_tco2e", "per_unit_indirect_tco2e", "by_source", "precursors", "method",
            "allocation_zh", "allocation_en", "facilities", "standard", "gwp", "boundary_en", "boundary_zh",
            "primary_data_share", "notes")}
        d["facilities"] = list(self.facilities)
        d["kgco2e_per_unit"] = self.kgco2e_per_unit
        d["declared_unit"] = self.declared_unit
        d["energy"] = [r.as_dict() for r in self.energy]
        d["energy_rating"] = self.energy_rating.as_dict()
        return d


@dataclass
class FootprintResult:
    """Every product's footprint for a period, the allocation behind them and the checks.

    Attributes
    ----------
    footprints : dict product → ProductFootprint
    monthly : DataFrame
        ``period, product, output, attributed_tco2e, precursor_tco2e, embedded_tco2e, per_unit_tco2e``
        (the per-month figures batches take).
    allocation : Allocation
        Of the emissions (and energy) as the footprints use it.
    energy_allocation : Allocation
        Of the energy for the rating (non-production excluded).
    consumed : DataFrame
        ``period, product, precursor, mass`` — precursor consumed per month.
    ledger_tco2e : float
        The ledger's total, the number everything must add back to.
    """

    enterprise: dict
    period_start: str
    period_end: str
    footprints: dict
    monthly: pd.DataFrame
    allocation: Allocation
    energy_allocation: Allocation
    consumed: pd.DataFrame
    outputs: pd.DataFrame
    ledger: pd.DataFrame
    factors_used: pd.DataFrame
    ledger_tco2e: float
    notes: list = field(default_factory=list)

    def __getitem__(self, product: str) -> ProductFootprint:
        try:
            return self.footprints[product]
        except KeyError:
            raise ProductError(f"no footprint of product '{product}' (products: "
                               f"{', '.join(self.footprints) or 'none'})") from None

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for f in self.footprints.values():
            r = f.energy_rating
            rows.append({"product": f.product, "name_zh": f.name_zh, "name_en": f.name_en, "unit": f.unit,
                         "output": f.output, "attributed_tco2e": f.attributed_tco2e,
                         "precursor_tco2e": f.precursor_tco2e, "embedded_tco2e": f.embedded_tco2e,
                         "kgco2e_per_unit": f.kgco2e_per_unit, "direct_kg": f.per_unit_direct_tco2e * 1000,
                         "indirect_kg": f.per_unit_indirect_tco2e * 1000,
                         "energy": None if not r.rated else r.value, "energy_unit": r.unit,
                         "energy_grade": r.label_en, "method": f.method})
        return pd.DataFrame(rows)

    def check(self) -> dict:
        """Conservation: allocated + excluded = the ledger's total; the goods leaving the plant
        (output less what a later product consumed) × footprint = the allocated emissions."""
        alloc = self.allocation.allocated_tco2e
        excl = self.allocation.excluded_tco2e
        leaving = 0.0
        for f in self.footprints.values():
            used = float(self.consumed.loc[self.consumed["precursor"] == f.product, "mass"].sum())
            leaving += (f.output - used) * f.per_unit_tco2e
        return {"ledger_tco2e": self.ledger_tco2e, "allocated_tco2e": alloc, "excluded_tco2e": excl,
                "allocation_residual_tco2e": self.ledger_tco2e - alloc - excl,
                "largest_pool_residual_tco2e": self.allocation.residual(),
                "goods_leaving_tco2e": leaving, "chain_residual_tco2e": alloc - leaving}

    def evidence(self, product: str) -> dict:
        """What a reviewer needs to check a product's footprint: the ledger rows behind it (with
        lake batch, raw-file SHA-256 and factor ids), the factors with provenance, the outputs,
        the allocation (method, statement, drivers) and the conservation check."""
        fp = self[product]
        cols = [c for c in ("record_id", "period", "node_id", "facility", "classification", "source", "item",
                            "quantity", "unit", "tco2e", "data_tier", "basis", "document", "lake_batch",
                            "raw_sha256", "factor_ids") if c in self.ledger]
        led = self.ledger[cols].copy()
        chain = [product] + [p["precursor"] for p in fp.precursors]
        alloc = self.allocation.table[self.allocation.table["product"].isin(chain)]
        return {
            "product": product, "enterprise_id": fp.enterprise_id, "period": fp.period,
            "ledger": _records(led), "factors": _records(self.factors_used),
            "outputs": _records(self.outputs[self.outputs["product"].isin(chain)]),
            "allocation": {"method": fp.method, "statement_en": fp.allocation_en, "statement_zh": fp.allocation_zh,
                           "drivers": _records(self.allocation.drivers),
                           "by_facility": _records(alloc.groupby(["product", "facility", "basis"], as_index=False)
                                                   ["tco2e"].sum())},
            "consumed": _records(self.consumed[self.consumed["product"] == product]),
            "check": self.check(), "primary_data_share": fp.primary_data_share,
        }


def _records(df: pd.DataFrame) -> list[dict]:
    out = []
    for r in df.to_dict("records"):
        out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else
                        v.item() if hasattr(v, "item") and not isinstance(v, str) else v) for k, v in r.items()})
    return out


# --------------------------------------------------------------------------- the calculation
def product_footprints(inv, *, method: str = "mass", prices: Mapping[str, float] | None = None, drivers=None,
                       precursors: Mapping[str, Mapping[str, float | None]] | None = None,
                       sold: Mapping[str, float] | None = None, exclude_classes: Sequence[str] = (),
                       upstream: Mapping[str, float] | None = None,
                       assign: Mapping[str, str] | None = None) -> FootprintResult:
    """Footprints of every product of an inventory (:func:`workbench.inventory.compute_inventory_from_lake`).

    Parameters
    ----------
    inv : workbench.inventory.Inventory
        The inventory of the period (its ledger, cube outputs, products, enterprise record).
    method : {'mass', 'physical', 'economic'}
        Allocation of the shared pools (:mod:`.allocation`).
    prices : mapping product → CNY per unit, optional
        For ``economic``.
    drivers : mapping product → value, or a table, optional
        For ``physical`` (default: metered electricity of each product's own facilities).
    precursors : mapping consumer → {precursor: quantity or None}, optional
        Own precursors (default :data:`PRECURSOR_CHAINS` of the enterprise's sector); ``None`` =
        the precursor's output less ``sold``; a number = the quantity consumed in the period.
    sold : mapping precursor → quantity, optional
        Precursor sold (not consumed here) in the period, e.g. ``{"clinker": 1200}``.
    exclude_classes : sequence of str
        Boundary classes not allocated (reported apart); default none — everything is allocated.
    upstream : mapping product → tCO2e per unit, optional
        Upstream (purchased materials) per unit of product, added to the footprint when known.
    assign : mapping, optional
        Pools known to be one product's (facility id or ``source:<key>`` → product); default
        :data:`SECTOR_ASSIGN` of the enterprise's sector (for cement: exported heat → clinker).
    """
    pools = ledger_pools(inv.ledger)
    outputs = outputs_from_cube(inv.cube, inv.products)
    gwp = _gwp_of(inv)
    return footprints_from_ledger(
        inv.ledger, outputs, inv.products, enterprise=inv.enterprise, period_start=inv.period_start,
        period_end=inv.period_end, method=method, prices=prices, drivers=drivers, precursors=precursors,
        sold=sold, exclude_classes=exclude_classes, upstream=upstream, pools=pools,
        factors_used=inv.factors_used, standard=_standard(inv), gwp=gwp, assign=assign)


def _gwp_of(inv) -> str:
    try:
        ids = inv.factors_used.loc[inv.factors_used["kind"] == "gwp", "factor_id"]
        if len(ids):
            return str(ids.iloc[0]).split(":")[0].upper()
    except (KeyError, AttributeError):
        pass
    return inv.regime.default_gwp


def _standard(inv) -> str:
    editions = sorted(set(inv.ledger["edition"])) if "edition" in inv.ledger else []
    return ", ".join(editions) or inv.regime.name


def products_meta(products) -> dict:
    meta = {}
    for p in products:
        if isinstance(p, Mapping):
            meta[p["product"]] = {"unit": p.get("unit", "t"), "name_zh": p.get("name_zh", ""), "name_en": p.get("name_en", "")}
        else:
            meta[p.product] = {"unit": p.unit, "name_zh": p.name_zh, "name_en": p.name_en}
    return meta


def footprints_from_ledger(ledger: pd.DataFrame, outputs: pd.DataFrame, products, *, enterprise: Mapping,
                           period_start: str, period_end: str, method: str = "mass", prices=None, drivers=None,
                           precursors=None, sold=None, exclude_classes: Sequence[str] = (), upstream=None,
                           pools: pd.DataFrame | None = None, factors_used: pd.DataFrame | None = None,
                           standard: str = "GB/T 32150", gwp: str = "AR5",
                           assign: Mapping[str, str] | None = None) -> FootprintResult:
    """The same as :func:`product_footprints` on plain tables: a ledger (the columns
    :func:`~.allocation.ledger_pools` reads), outputs (``period, product, facility, quantity,
    unit``) and the products (``Product`` objects or dicts with ``product, unit, name_zh, name_en``)."""
    meta = products_meta(products)
    pools = ledger_pools(ledger) if pools is None else pools
    outs = outputs.copy()
    outs["period"] = outs["period"].astype(str)
    unknown = sorted(set(outs["product"]) - set(meta))
    if unknown:
        raise ProductError(f"outputs of products the enterprise does not list: {', '.join(unknown)}")
    assign = default_assign(enterprise, outs) if assign is None else dict(assign)
    alloc = allocate_pools(pools, outs, method=method, prices=prices, drivers=drivers,
                           exclude_classes=exclude_classes, assign=assign)
    energy_alloc = allocate_pools(pools, outs, method=method, prices=prices, drivers=drivers,
                                  exclude_classes=tuple(set(exclude_classes) | {"non_production"}), assign=assign)
    made = list(alloc.products)
    chains = precursor_chains(enterprise, precursors, made)
    consumed = precursor_consumption(outs, chains, sold or {}, made)
    sector = str(enterprise.get("sector") or "").lower()

    # per product and month: direct and indirect attributed emissions
    t = alloc.table.assign(kind=np.where(alloc.table["source"].isin(INDIRECT_SOURCES), "indirect", "direct"))
    att = t.pivot_table(index=["period", "product"], columns="kind", values="tco2e", aggfunc="sum",
                        fill_value=0.0).reindex(columns=["direct", "indirect"], fill_value=0.0)
    out_pm = outs.groupby(["period", "product"])["quantity"].sum()
    periods = sorted(set(outs["period"]) | set(alloc.table["period"]))

    # the span
    span = _chain_table(att.groupby("product").sum(), outs.groupby("product")["quantity"].sum(),
                        consumed.groupby(["product", "precursor"], as_index=False)["mass"].sum(), made)
    # each month (products without output in a month carry no per-unit figure that month)
    monthly = []
    for per in periods:
        a = att.xs(per, level="period") if per in att.index.get_level_values("period") else att.iloc[0:0].droplevel(0)
        q = out_pm.xs(per, level="period") if per in out_pm.index.get_level_values("period") else pd.Series(dtype=float)
        c = consumed[consumed["period"] == per]
        have = [p for p in made if float(q.get(p, 0.0)) > 0]
        m = _chain_table(a, q, c[c["mass"] > 0], have) if have else None
        for p in made:
            row = {"period": per, "product": p, "output": float(q.get(p, 0.0)),
                   "attributed_tco2e": float(a.loc[p].sum()) if p in a.index else 0.0}
            if m is not None and p in m.index:
                row.update(precursor_tco2e=float(m.at[p, "precursor_direct_tco2e"] + m.at[p, "precursor_indirect_tco2e"]),
                           per_unit_tco2e=float(m.at[p, "see_total"]),
                           per_unit_direct_tco2e=float(m.at[p, "see_direct"]),
                           per_unit_indirect_tco2e=float(m.at[p, "see_indirect"]))
            else:
                row.update(precursor_tco2e=0.0, per_unit_tco2e=math.nan, per_unit_direct_tco2e=math.nan,
                           per_unit_indirect_tco2e=math.nan)
            row["embedded_tco2e"] = row["attributed_tco2e"] + row["precursor_tco2e"]
            monthly.append(row)
    monthly = pd.DataFrame(monthly, columns=["period", "product", "output", "attributed_tco2e", "precursor_tco2e",
                                             "embedded_tco2e", "per_unit_tco2e", "per_unit_direct_tco2e",
                                             "per_unit_indirect_tco2e"])

    by_source = alloc.by_product(by=("source",))
    ratings = _energy(sector, energy_alloc, span, consumed, made)
    primary = _primary_share(ledger, exclude_classes)
    fps = {}
    for p in made:
        row = span.loc[p]
        up = float((upstream or {}).get(p, 0.0))
        prec = [{"precursor": r.precursor, "mass": float(r.mass), "per_unit_tco2e": float(span.at[r.precursor, "see_total"]),
                 "tco2e": float(r.mass) * float(span.at[r.precursor, "see_total"])}
                for r in consumed[consumed["product"] == p].groupby("precursor", as_index=False)["mass"].sum().itertuples()]
        notes = [] if upstream and p in upstream else ["upstream emissions of purchased inputs not included"]
        srcs = by_source[by_source["product"] == p]
        fps[p] = ProductFootprint(
            enterprise_id=str(enterprise.get("enterprise_id", "")), product=p, name_zh=meta[p]["name_zh"],
            name_en=meta[p]["name_en"], unit=meta[p]["unit"], period_start=period_start, period_end=period_end,
            output=float(row["activity_level_t"]),
            attributed_tco2e=float(row["attributed_direct_tco2e"] + row["attributed_indirect_tco2e"]),
            precursor_tco2e=float(row["precursor_direct_tco2e"] + row["precursor_indirect_tco2e"]),
            embedded_tco2e=float(row["embedded_direct_tco2e"] + row["embedded_indirect_tco2e"]) + up * float(row["activity_level_t"]),
            per_unit_tco2e=float(row["see_total"]) + up, per_unit_direct_tco2e=float(row["see_direct"]),
            per_unit_indirect_tco2e=float(row["see_indirect"]),
            by_source=dict(zip(srcs["source"], srcs["tco2e"].astype(float))), precursors=prec,
            energy=ratings.get(p, [_why_not_rated(sector, p, ratings)]), method=method, allocation_zh=alloc.statement_zh,
            allocation_en=alloc.statement_en, facilities=tuple(alloc.makers.get(p, ())), standard=standard,
            gwp=gwp, upstream_tco2e=up * float(row["activity_level_t"]), primary_data_share=primary, notes=notes)
    return FootprintResult(dict(enterprise), period_start, period_end, fps, monthly, alloc, energy_alloc, consumed,
                           outs, ledger, factors_used if factors_used is not None else pd.DataFrame(),
                           float(math.fsum(pd.to_numeric(ledger["tco2e"]))), list(alloc.notes))


def default_assign(enterprise: Mapping, outputs: pd.DataFrame) -> dict:
    """:data:`SECTOR_ASSIGN` of the enterprise's sector, for the products that have an output."""
    made = set(outputs.loc[pd.to_numeric(outputs["quantity"], errors="coerce") > 0, "product"])
    sector = str(enterprise.get("sector") or "").lower()
    return {k: p for k, p in SECTOR_ASSIGN.get(sector, {}).items() if p in made}


def precursor_chains(enterprise, precursors, made) -> dict:
    """consumer → {precursor: quantity or None}, only among the products made here."""
    if precursors is None:
        sector = str(enterprise.get("sector") or "").lower()
        precursors = {c: dict.fromkeys(ps) for c, ps in PRECURSOR_CHAINS.get(sector, {}).items()}
    out = {}
    for consumer, ps in precursors.items():
        if consumer not in made:
            continue
        for prec, qty in dict(ps).items():
            if prec == consumer:
                raise ProductError(f"product '{consumer}' cannot be its own precursor")
            if prec in made:
                out.setdefault(consumer, {})[prec] = qty
    users: dict[str, list[str]] = {}
    for c, ps in out.items():
        for p, q in ps.items():
            if q is None:
                users.setdefault(p, []).append(c)
    for p, cs in users.items():
        if len(cs) > 1:
            raise ProductError(f"precursor '{p}' goes into {', '.join(cs)}: say how much each consumes")
    return out


def precursor_consumption(outs, chains, sold, made) -> pd.DataFrame:
    """period, product (consumer), precursor, mass — by month, in proportion to the precursor's output."""
    rows = []
    q = outs.groupby(["period", "product"])["quantity"].sum()
    for consumer, ps in chains.items():
        for prec, qty in ps.items():
            pq = q.xs(prec, level="product") if prec in q.index.get_level_values("product") else pd.Series(dtype=float)
            total = float(pq.sum())
            if qty is None:
                s = float(sold.get(prec, 0.0))
                if not (math.isfinite(s) and 0 <= s <= total):
                    raise ProductError(f"sold '{prec}': {s} is not between 0 and its output {total:.3f}")
                take = total - s
            else:
                take = float(qty)
                if not (math.isfinite(take) and 0 <= take <= total):
                    raise ProductError(f"'{consumer}' consumes {take} of '{prec}', more than its output {total:.3f}")
            for per, v in pq.items():
                rows.append({"period": per, "product": consumer, "precursor": prec,
                             "mass": take * float(v) / total if total else 0.0})
    unknown = set(sold) - {p for ps in chains.values() for p in ps}
    if unknown:
        raise ProductError(f"sold: {', '.join(sorted(unknown))} is not a precursor of another product here")
    return pd.DataFrame(rows, columns=["period", "product", "precursor", "mass"])


def _chain_table(att: pd.DataFrame, output: pd.Series, consumed: pd.DataFrame, made) -> pd.DataFrame:
    procs = pd.DataFrame({
        "good": list(made),
        "activity_level_t": [float(output.get(p, 0.0)) for p in made],
        "attributed_direct_tco2e": [float(att.at[p, "direct"]) if p in att.index else 0.0 for p in made],
        "attributed_indirect_tco2e": [float(att.at[p, "indirect"]) if p in att.index else 0.0 for p in made],
    })
    prec = precursor_rows({"good": r.product, "precursor": r.precursor, "mass_t": r.mass}
                          for r in consumed.itertuples(index=False))
    try:
        return embedded_emissions(procs, prec)
    except CBAMError as exc:
        raise ProductError(str(exc)) from None


def _why_not_rated(sector: str, product: str, ratings: dict) -> EnergyRating:
    if sector == "cement" and product == "cement" and "cement" not in ratings:
        return not_rated(sector, "GB 16780-2021 rates cement with its clinker: this cement's clinker is not made "
                                 "here (or not consumed), so its comprehensive energy is not known")
    if sector == "cement":
        return not_rated(sector, f"GB 16780-2021 rates products coded clinker and cement; '{product}' is neither")
    return not_rated(sector)


def _energy(sector, ealloc: Allocation, span: pd.DataFrame, consumed: pd.DataFrame, made) -> dict:
    """product → [EnergyRating] (GB 16780-2021 for clinker and cement; else not rated)."""
    if sector != "cement" or "clinker" not in made:
        return {}
    e = ealloc.by_product(("energy_tce", "electricity_mwh", "fuel_gj"))
    e = e.set_index("product")
    from workbench.core.units import conversion_factor

    gj_tce = conversion_factor("GJ", "tce")
    q_cl = float(span.at["clinker", "activity_level_t"])
    out: dict[str, list] = {}
    basis = "energy of the ledger allocated as the footprint (non-production excluded, exported heat credited)"
    e_cl = unit_energy(e.at["clinker", "energy_tce"], q_cl)
    out["clinker"] = [rate("clinker_energy", e_cl, note=basis),
                      rate("clinker_electricity", unit_energy(e.at["clinker", "electricity_mwh"], q_cl), note=basis),
                      rate("clinker_fuel", unit_energy(e.at["clinker", "fuel_gj"] * gj_tce, q_cl),
                           note="all fuels as coal equivalent; " + basis)]
    m_cl = float(consumed.loc[(consumed["product"] == "cement") & (consumed["precursor"] == "clinker"), "mass"].sum())
    if "cement" in made and m_cl > 0:
        q_c = float(span.at["cement", "activity_level_t"])
        share = 100.0 * m_cl / q_c
        own = ealloc.table[(ealloc.table["product"] == "cement") & (ealloc.table["basis"] == "subdivision")]
        e_c = (float(e.at["cement", "energy_tce"]) + m_cl * e_cl / 1000.0) / q_c * 1000.0
        out["cement"] = [rate("cement_energy", e_c, clinker_percent=share,
                              note=f"the cement's own energy plus its clinker ({m_cl:,.0f} t × {e_cl:.2f} kgce/t)"),
                         rate("cement_electricity", unit_energy(float(own["electricity_mwh"].sum()), q_c),
                              note="the cement grinding facility's own electricity (subdivision), no shared pools")]
    return out


def _primary_share(ledger: pd.DataFrame, exclude_classes) -> float:
    """Share of |tCO2e| from primary activity data (GB/T 32150-2025 table 2) among the pools allocated."""
    if "data_tier" not in ledger:
        return math.nan
    led = ledger[~ledger.get("classification", pd.Series("", index=ledger.index)).isin(list(exclude_classes))]
    mag = pd.to_numeric(led["tco2e"]).abs()
    tot = float(mag.sum())
    return float(mag[led["data_tier"].astype(str) == "primary"].sum() / tot) if tot else math.nan


# --------------------------------------------------------------------------- batches
def batch_footprints(result: FootprintResult, batches: pd.DataFrame) -> pd.DataFrame:
    """Footprints of production batches: each batch takes its product's per-unit footprint of its month.

    ``FP_batch = q_batch × FP_p,month`` [tCO2e] — mass allocation of the product's month among its
    batches; the output of the month not covered by batches is reported as ``unbatched`` rows, so
    Σ batches + unbatched = the product's embedded emissions of the month.

    Parameters
    ----------
    result : FootprintResult
    batches : DataFrame
        ``batch_id, product, period`` (``YYYY-MM``, or ``date``), ``quantity`` and ``unit`` (any
        unit pint converts to the product's).

    Returns
    -------
    DataFrame
        ``batch_id, product, period, quantity`` (product unit), ``per_unit_tco2e``, ``tco2e`` and the
        month's ``per_unit_direct_tco2e`` / ``per_unit_indirect_tco2e``.

    Raises
    ------
    ProductError
        An unknown product, a month without footprint, or batches that exceed the month's output.
    """
    from workbench.core.units import UnitError, convert

    b = batches.copy()
    if "period" not in b and "date" in b:
        b["period"] = pd.to_datetime(b["date"]).dt.strftime("%Y-%m")
    for col in ("batch_id", "product", "period", "quantity"):
        if col not in b:
            raise ProductError(f"batches: missing column '{col}'")
    if b["batch_id"].duplicated().any():
        raise ProductError(f"batches: batch_id {b.loc[b['batch_id'].duplicated(), 'batch_id'].iloc[0]!r} appears twice")
    b["period"] = b["period"].astype(str)
    rows = []
    for r in b.itertuples(index=False):
        fp = result[r.product]
        unit = getattr(r, "unit", None) or fp.unit
        try:
            q = float(convert([float(r.quantity)], unit, fp.unit)[0])
        except UnitError as exc:
            raise ProductError(f"batch {r.batch_id}: {exc}") from None
        m = result.monthly[(result.monthly["period"] == r.period) & (result.monthly["product"] == r.product)]
        if m.empty or not math.isfinite(float(m["per_unit_tco2e"].iloc[0])):
            raise ProductError(f"batch {r.batch_id}: no footprint of '{r.product}' in {r.period}")
        per = float(m["per_unit_tco2e"].iloc[0])
        rows.append({"batch_id": r.batch_id, "product": r.product, "period": r.period, "quantity": q,
                     "unit": fp.unit, "per_unit_tco2e": per, "tco2e": q * per,
                     "per_unit_direct_tco2e": float(m["per_unit_direct_tco2e"].iloc[0]),
                     "per_unit_indirect_tco2e": float(m["per_unit_indirect_tco2e"].iloc[0])})
    out = pd.DataFrame(rows, columns=["batch_id", "product", "period", "quantity", "unit", "per_unit_tco2e", "tco2e",
                                      "per_unit_direct_tco2e", "per_unit_indirect_tco2e"])
    extra = []
    for (per, prod), g in out.groupby(["period", "product"]):
        m = result.monthly[(result.monthly["period"] == per) & (result.monthly["product"] == prod)].iloc[0]
        left = float(m["output"]) - float(g["quantity"].sum())
        if left < -1e-9 * max(1.0, float(m["output"])):
            raise ProductError(f"batches of '{prod}' in {per}: {g['quantity'].sum():,.3f} {g['unit'].iloc[0]} "
                               f"but the month's output is {float(m['output']):,.3f}")
        extra.append({"batch_id": f"unbatched:{prod}:{per}", "product": prod, "period": per, "quantity": max(left, 0.0),
                      "unit": g["unit"].iloc[0], "per_unit_tco2e": float(m["per_unit_tco2e"]),
                      "tco2e": max(left, 0.0) * float(m["per_unit_tco2e"]),
                      "per_unit_direct_tco2e": float(m["per_unit_direct_tco2e"]),
                      "per_unit_indirect_tco2e": float(m["per_unit_indirect_tco2e"])})
    return pd.concat([out, pd.DataFrame(extra, columns=out.columns)], ignore_index=True) if extra else out
