"""Mechanism models (机理模型, seed §8.4 a): specific energy and emissions per unit of product, per process.

A *process* here is a set of boundary nodes (a facility, a workshop or a process and everything
below it) and the product whose output is its denominator — the kiln (clinker burning, ``F01.W02``)
and its clinker, the cement mills (``F02``) and their cement.  From an inventory's ledger
(:class:`workbench.inventory.compute.Inventory` ``.ledger``: the rows already accounted, lineage kept)
each process gets, per month,

* ``fuel_gj`` — combustion activity, FC × NCV (the ledger's ``activity_gj``), GJ;
* ``electricity_mwh`` — purchased electricity (exported negative), MWh;
* ``heat_gj`` — purchased heat (exported negative), GJ;
* ``energy_tce`` — (fuel + heat) GJ ÷ 29.3076 GJ/tce + electricity × 3.6 GJ/MWh ÷ 29.3076 — the
  equal-value (当量值) conversion the product footprints use (``workbench.products.allocation``;
  GB/T 2589 tabulates 0.1229 kgce/kWh, reproduced to 0.05 %);
* ``tco2e`` — the ledger's signed emissions,

and each *indicator* is one of those ÷ the product's output (scaled: kgce/t, kWh/t, GJ/t, kgCO2e/t).

Comparisons (:func:`compare`):

* with the enterprise's **own best periods** — the output-weighted level of the best quartile of
  months (lowest specific consumption; ``quantile`` adjustable), and the saving had every month run
  at that level: ``(e − e_best) × Q`` over the span;
* with the **national limit values** of the sector's standard — GB 16780-2021 for cement (grade 1
  best, grade 3 = the limit value): 熟料综合煤耗 94/100/109 kgce/t, 熟料综合电耗 48/57/61 kWh/t,
  熟料单位产品综合能耗 100/107/117 kgce/t, 水泥制备工段电耗 26/29/34 kWh/t, 水泥单位产品综合能耗
  80/87/94 kgce/t at 75 % clinker ± (P − 75) × 1.10/1.15/1.20 (reference ``applications.md`` §2 [B1
  (tr.)]).  The grading itself is :func:`workbench.products.energy.rate`, passed in as ``rate``
  (``models`` and ``products`` are independent layers of the package: neither imports the other, so
  the caller — a notebook, the CLI, the apps — hands the rater over; nothing is re-implemented here).

Differences from the standard's own scope, stated on every row (``basis``): the ledger's process
nodes stand for the standard's 工段 (e.g. 熟料综合电耗 is the clinker line's own metered electricity,
not a share of the plant's common electricity; 熟料综合煤耗 counts every fuel as coal equivalent);
the waste-heat power plant's generation is not credited unless the ledger books it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.core.boundary import BoundaryError
from workbench.core.errors import WorkbenchError
from workbench.core.units import UnitError, conversion_factor, convert

__all__ = [
    "CEMENT_INDICATORS",
    "STEEL_INDICATORS",
    "TEXTILE_INDICATORS",
    "Indicator",
    "ModelError",
    "best_period_level",
    "best_periods",
    "compare",
    "indicators_for",
    "mechanism_table",
    "outputs_of",
    "process_energy",
    "specific_consumption",
]


class ModelError(WorkbenchError):
    """Bad input to a model of :mod:`workbench.models` (names the column, process or period)."""


#: ledger quantities a process sums (:func:`process_energy`)
QUANTITIES = ("fuel_gj", "electricity_mwh", "heat_gj", "energy_tce", "tco2e")


@dataclass(frozen=True)
class Indicator:
    """One specific-consumption indicator: ``quantity`` of the ``nodes`` (prefixes of node ids)
    ÷ output of ``product``, × ``scale`` (1000: t → kg, MWh → kWh; 1: GJ/t)."""

    key: str
    nodes: tuple
    quantity: str
    product: str
    unit: str
    scale: float = 1000.0
    name_zh: str = ""
    name_en: str = ""
    gb: str | None = None          # GB 16780-2021 indicator key of workbench.products.energy.GB16780
    basis: str = ""


_B = "the ledger's rows of the process nodes (after sub-meter allocation)"
#: the demo cement plant's processes (node ids of the demo boundary; any cement plant with the same
#: layout: F01 clinker line with W02 clinker burning, F02 cement grinding)
CEMENT_INDICATORS = (
    Indicator("kiln_heat_gj", ("F01.W02",), "fuel_gj", "clinker", "GJ/t", 1.0, "熟料烧成热耗", "kiln heat per t clinker",
              None, "fuel (FC × NCV) of clinker burning; " + _B),
    Indicator("clinker_fuel", ("F01.W02",), "fuel_tce", "clinker", "kgce/t", 1000.0, "熟料综合煤耗",
              "clinker comprehensive fuel consumption", "clinker_fuel", "every fuel as coal equivalent; " + _B),
    Indicator("clinker_electricity", ("F01",), "electricity_mwh", "clinker", "kWh/t", 1000.0, "熟料综合电耗",
              "clinker comprehensive electricity consumption", "clinker_electricity", "clinker line F01; " + _B),
    Indicator("clinker_energy", ("F01",), "energy_tce", "clinker", "kgce/t", 1000.0, "熟料单位产品综合能耗",
              "clinker comprehensive energy consumption", "clinker_energy", "clinker line F01, equal-value; " + _B),
    Indicator("cement_electricity", ("F02",), "electricity_mwh", "cement", "kWh/t", 1000.0, "水泥制备工段电耗",
              "cement preparation electricity consumption", "cement_electricity", "cement grinding F02; " + _B),
    Indicator("cement_energy", ("F02",), "energy_tce", "cement", "kgce/t", 1000.0, "水泥单位产品综合能耗",
              "cement comprehensive energy consumption", "cement_energy",
              "cement grinding F02 plus the clinker it grinds at the clinker line's kgce/t; " + _B),
    Indicator("clinker_co2", ("F01",), "tco2e", "clinker", "kgCO2e/t", 1000.0, "熟料线单位产品排放",
              "clinker line emissions per t clinker", None, "process + combustion + electricity of F01; " + _B),
    Indicator("cement_co2", ("F02",), "tco2e", "cement", "kgCO2e/t", 1000.0, "粉磨单位产品排放",
              "cement grinding emissions per t cement", None, "electricity of F02 (clinker not included); " + _B),
)

_NR = ("no limit applied: GB 21256-2025 (in force 2026-07-01) rates the EAF by furnace size with corrections the "
       "ledger cannot supply; rolling limits UNVERIFIED; ")
#: the demo steel mini-mill (F01 electric-arc furnace shop + caster → billet; F02 rolling: W01 reheating furnace,
#: W02 bar mill → rebar).  Indicators only: no national limit is applied (reference §2).
STEEL_INDICATORS = (
    Indicator("eaf_electricity", ("F01.W01",), "electricity_mwh", "billet", "kWh/t", 1000.0, "电炉冶炼电耗",
              "EAF shop electricity per t billet", None, _NR + _B),
    Indicator("steelmaking_energy", ("F01",), "energy_tce", "billet", "kgce/t", 1000.0, "电炉炼钢工序能耗",
              "EAF steelmaking energy per t billet (equal value)", None, _NR + _B),
    Indicator("reheating_heat_gj", ("F02.W01",), "fuel_gj", "rebar", "GJ/t", 1.0, "加热炉热耗",
              "reheating-furnace fuel per t rolled", None, _NR + _B),
    Indicator("rolling_electricity", ("F02",), "electricity_mwh", "rebar", "kWh/t", 1000.0, "轧钢电耗",
              "rolling electricity per t rolled", None, _NR + _B),
    Indicator("rolling_energy", ("F02",), "energy_tce", "rebar", "kgce/t", 1000.0, "轧钢工序能耗",
              "rolling energy per t rolled (equal value)", None, _NR + _B),
    Indicator("billet_co2", ("F01",), "tco2e", "billet", "kgCO2e/t", 1000.0, "炼钢单位产品排放",
              "steelmaking emissions per t billet", None, _B),
    Indicator("rolling_co2", ("F02",), "tco2e", "rebar", "kgCO2e/t", 1000.0, "轧钢单位产品排放",
              "rolling emissions per t rolled", None, _B),
)
#: the demo dyeing mill (F01 pretreatment, F02 dyeing, F03 finishing, F04 auxiliary incl. the thermal-oil boiler)
TEXTILE_INDICATORS = (
    Indicator("dyeing_energy", ("F01", "F02", "F03", "F04"), "energy_tce", "dyed_fabric", "kgce/t", 1000.0,
              "印染单位产品综合能耗", "dyeing comprehensive energy per t fabric (equal value)", None,
              "no 印染 limit standard among the compulsory GB 能耗限额 (reference §2: UNVERIFIED); " + _B),
    Indicator("dyeing_electricity", ("F01", "F02", "F03", "F04"), "electricity_mwh", "dyed_fabric", "kWh/t", 1000.0,
              "印染单位产品电耗", "dyeing electricity per t fabric", None, _B),
    Indicator("dyeing_co2", ("F01", "F02", "F03", "F04"), "tco2e", "dyed_fabric", "kgCO2e/t", 1000.0,
              "印染单位产品排放", "dyeing emissions per t fabric", None, _B),
)

_SECTOR = {"cement": CEMENT_INDICATORS, "steel": STEEL_INDICATORS, "textile": TEXTILE_INDICATORS}


def indicators_for(sector: str | None) -> tuple:
    """The default indicators of a sector (``cement``, ``steel``, ``textile`` — the demo plants' layouts);
    others: none (pass your own :class:`Indicator`)."""
    return _SECTOR.get(str(sector or "").lower(), ())


def specific_consumption(quantity, output, *, scale: float = 1000.0) -> np.ndarray:
    r"""Specific (unit) consumption of a process: quantity ÷ output.

    .. math::  e = s \times E / Q

    Parameters
    ----------
    quantity : array-like of float
        ``E`` — energy or emissions of the process in each period (tce, MWh, GJ or tCO2e).
    output : array-like of float
        ``Q`` — output of the product in the same periods, t.
    scale : float
        ``s`` — 1000 turns tce/t into kgce/t, MWh/t into kWh/t, tCO2e/t into kgCO2e/t; 1 keeps GJ/t.

    Returns
    -------
    ndarray
        ``e`` per period; NaN where ``Q`` ≤ 0 or missing (no output, no indicator).

    References
    ----------
    GB 16780-2021 §3 (单位产品综合能耗 = 综合能耗 ÷ 合格产品产量), in the unit of the limit values.
    """
    e = np.asarray(quantity, dtype="float64")
    q = np.asarray(output, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(q) & (q > 0), scale * e / np.where(q > 0, q, 1.0), np.nan)


def _under(node_ids: pd.Series, prefixes: Iterable[str], boundary=None) -> np.ndarray:
    s = node_ids.astype(str)
    if boundary is not None:
        want = set(prefixes)
        inside = {}
        for n in pd.unique(s):
            try:
                inside[n] = bool(want.intersection(boundary.ancestors(n)))
            except BoundaryError:         # a node the boundary does not know: by its id's prefix
                inside[n] = any(n == p or n.startswith(p + ".") for p in want)
        return s.map(inside).to_numpy(dtype=bool)
    m = np.zeros(len(s), dtype=bool)
    for p in prefixes:
        m |= (s == p).to_numpy() | s.str.startswith(p + ".").to_numpy()
    return m


def process_energy(ledger: pd.DataFrame, nodes: Iterable[str], *, boundary=None) -> pd.DataFrame:
    r"""Monthly energy and emissions of a process (the ledger rows on ``nodes`` and below).

    .. math::
        E_{tce} = (F_{GJ} + H_{GJ}) / 29.3076 + W_{MWh} \times 3.6 / 29.3076

    Parameters
    ----------
    ledger : DataFrame
        An inventory's ledger: ``period``, ``node_id``, ``source``, ``quantity``, ``unit``, ``sign``,
        ``activity_gj`` (GJ, fuels), ``tco2e`` (tCO2e, signed).
    nodes : iterable of str
        Node ids; a row counts when its ``node_id`` is one of them or below one — by the
        ``boundary``'s ancestry when given (needed for the enterprise node, whose children's ids do
        not start with its own), else by the id's dotted prefix (``F01`` takes ``F01.W02.P01``).
    boundary : workbench.core.boundary.Boundary, optional

    Returns
    -------
    DataFrame
        Index ``period``; columns ``fuel_gj`` (GJ), ``fuel_tce`` (tce), ``electricity_mwh`` (MWh,
        exported −), ``heat_gj`` (GJ, exported −), ``energy_tce`` (tce, equal-value), ``tco2e``;
        ``rows`` (ledger rows summed).

    References
    ----------
    GB/T 2589-2020 (tce = 29.3076 GJ; electricity equal value 3.6 GJ/MWh), as ``workbench.core.units``.
    """
    need = ["period", "node_id", "source", "quantity", "unit", "tco2e"]
    miss = [c for c in need if c not in ledger]
    if miss:
        raise ModelError(f"ledger: missing columns {miss}")
    nodes = tuple(nodes)
    led = ledger[_under(ledger["node_id"], nodes, boundary)]
    periods = sorted(ledger["period"].astype(str).unique())
    out = pd.DataFrame(0.0, index=pd.Index(periods, name="period"), columns=[*QUANTITIES[:1], "fuel_tce",
                                                                              *QUANTITIES[1:], "rows"])
    if led.empty:
        return out
    src = led["source"].astype(str).to_numpy()
    qty = pd.to_numeric(led["quantity"], errors="coerce").to_numpy(dtype="float64")
    units = led["unit"].astype(str).to_numpy()
    sign = pd.to_numeric(led.get("sign", pd.Series(1, index=led.index)), errors="coerce").fillna(1).to_numpy()
    elec = np.isin(src, ["purchased_electricity", "exported_electricity"])
    heat = np.isin(src, ["purchased_heat", "exported_heat"])
    f = pd.DataFrame({"period": led["period"].astype(str).to_numpy(), "fuel_gj": 0.0, "electricity_mwh": 0.0,
                      "heat_gj": 0.0, "tco2e": pd.to_numeric(led["tco2e"]).to_numpy(dtype="float64"), "rows": 1})
    try:
        if elec.any():
            f.loc[elec, "electricity_mwh"] = convert(qty[elec], units[elec], "MWh") * sign[elec]
        if heat.any():
            f.loc[heat, "heat_gj"] = convert(qty[heat], units[heat], "GJ") * sign[heat]
    except UnitError as exc:
        raise ModelError(f"ledger of {', '.join(nodes)}: {exc}") from None
    comb = src == "combustion"
    gj = pd.to_numeric(led.get("activity_gj", pd.Series(np.nan, index=led.index)), errors="coerce").fillna(0.0)
    f["fuel_gj"] = np.where(comb, gj.to_numpy(), 0.0)
    g = f.groupby("period").sum()
    tce = conversion_factor("GJ", "tce")
    g["fuel_tce"] = g["fuel_gj"] * tce
    g["energy_tce"] = (g["fuel_gj"] + g["heat_gj"]) * tce + g["electricity_mwh"] * conversion_factor("MWh", "tce")
    out.loc[g.index, g.columns] = g
    return out


def outputs_of(inv) -> pd.DataFrame:
    """Monthly outputs of an inventory's products (period × product, in the product's unit), from its
    cube's ``output_<product>`` summed over the facilities."""
    cols = {}
    for p in getattr(inv, "products", ()):
        var = f"output_{p.product}"
        if var in inv.cube:
            cols[p.product] = inv.cube[var].sum("facility", min_count=1).to_pandas()
    out = pd.DataFrame(cols)
    out.index = out.index.astype(str)
    out.index.name = "period"
    return out


def mechanism_table(ledger: pd.DataFrame, outputs: pd.DataFrame, indicators: Iterable[Indicator], *,
                    boundary=None) -> pd.DataFrame:
    r"""Each indicator per month: the process's quantity, the product's output and their ratio.

    ``cement_energy`` (GB 16780-2021 水泥单位产品综合能耗) is the grinding's own energy plus the clinker
    it grinds at the clinker line's comprehensive energy of the same month:

    .. math::  e_c = 1000 \times (E_{F02} + m_{cl}\, e_{cl}/1000) / Q_c,\quad
               m_{cl} = \min(Q_{cl}, Q_c)

    (the clinker ground is taken as the clinker made, at most the cement — the demo grinds all its
    clinker), and its clinker share ``P = 100 m_cl / Q_c`` (%) goes into ``clinker_percent`` for
    the limit correction.

    Parameters
    ----------
    ledger : DataFrame
        An inventory's ledger (see :func:`process_energy`).
    outputs : DataFrame
        Index ``period``; one column per product, t (:func:`outputs_of`).
    indicators : iterable of :class:`Indicator`
    boundary : Boundary, optional
        Resolves the nodes below each process (:func:`process_energy`).

    Returns
    -------
    DataFrame
        One row per (indicator, period): ``indicator``, ``name_zh``, ``name_en``, ``period``,
        ``quantity`` (process total, in its quantity's unit), ``output`` (t), ``value`` (the
        indicator's ``unit``), ``unit``, ``scale``, ``gb``, ``clinker_percent`` (cement energy only), ``basis``.
    """
    rows = []
    cache: dict = {}
    outputs = outputs.copy()
    outputs.index = outputs.index.astype(str)
    for ind in indicators:
        if ind.product not in outputs:
            raise ModelError(f"indicator '{ind.key}': no output of product '{ind.product}' "
                             f"(outputs have {', '.join(map(str, outputs.columns)) or 'none'})")
        if ind.nodes not in cache:
            cache[ind.nodes] = process_energy(ledger, ind.nodes, boundary=boundary)
        pe = cache[ind.nodes].reindex(outputs.index).fillna(0.0)
        if ind.quantity not in pe:
            raise ModelError(f"indicator '{ind.key}': quantity '{ind.quantity}' is not one of {list(pe.columns)}")
        qty = pe[ind.quantity].to_numpy(dtype="float64")
        out = outputs[ind.product].to_numpy(dtype="float64")
        pct = np.full(len(out), np.nan)
        if ind.key == "cement_energy":
            if "clinker" not in outputs:
                raise ModelError("indicator 'cement_energy' needs the output of clinker")
            cl = next((i for i in indicators if i.key == "clinker_energy"), None)
            cl_nodes = cl.nodes if cl else ("F01",)
            if cl_nodes not in cache:
                cache[cl_nodes] = process_energy(ledger, cl_nodes, boundary=boundary)
            q_cl = outputs["clinker"].to_numpy(dtype="float64")
            e_cl = specific_consumption(cache[cl_nodes].reindex(outputs.index).fillna(0.0)["energy_tce"], q_cl)
            m_cl = np.fmin(q_cl, out)
            qty = qty + np.nan_to_num(m_cl * e_cl / 1000.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                pct = np.where(out > 0, 100.0 * m_cl / out, np.nan)
        val = specific_consumption(qty, out, scale=ind.scale)
        for i, p in enumerate(outputs.index):
            rows.append({"indicator": ind.key, "name_zh": ind.name_zh, "name_en": ind.name_en, "period": p,
                         "quantity": qty[i], "output": out[i], "value": val[i], "unit": ind.unit, "scale": ind.scale, "gb": ind.gb,
                         "clinker_percent": pct[i], "basis": ind.basis})
    return pd.DataFrame(rows, columns=["indicator", "name_zh", "name_en", "period", "quantity", "output", "value",
                                       "unit", "scale", "gb", "clinker_percent", "basis"])


def best_periods(values, *, quantile: float = 0.25) -> np.ndarray:
    r"""Which periods are the enterprise's best: the lowest ``quantile`` share of the finite values.

    The best set is the ``k = max(1, ceil(quantile × n))`` periods with the lowest specific
    consumption (``n`` finite values; ties by order).  Lower is better for every indicator here.

    Parameters
    ----------
    values : array-like of float
        Specific consumption per period (NaN: no output, never best).
    quantile : float
        Share of the periods that are "best", 0 < q ≤ 1 (0.25: the best quartile).

    Returns
    -------
    ndarray of bool
    """
    if not 0 < quantile <= 1:
        raise ModelError(f"quantile {quantile!r}: must be in (0, 1]")
    v = np.asarray(values, dtype="float64")
    ok = np.flatnonzero(np.isfinite(v))
    mask = np.zeros(len(v), dtype=bool)
    if len(ok) == 0:
        return mask
    k = max(1, math.ceil(quantile * len(ok)))
    mask[ok[np.argsort(v[ok], kind="stable")[:k]]] = True
    return mask


def best_period_level(quantity, output, *, quantile: float = 0.25, scale: float = 1000.0) -> float:
    r"""The output-weighted specific consumption of the best periods (:func:`best_periods`).

    .. math::  e_{best} = s \times \sum_{i \in B} E_i / \sum_{i \in B} Q_i

    Parameters
    ----------
    quantity, output : array-like of float
        Per period: the process quantity (tce, MWh, GJ, tCO2e) and the output (t).
    quantile : float
        Share of best periods.
    scale : float
        As :func:`specific_consumption`.
    """
    e = np.asarray(quantity, dtype="float64")
    q = np.asarray(output, dtype="float64")
    best = best_periods(specific_consumption(e, q, scale=scale), quantile=quantile)
    if not best.any():
        return math.nan
    return float(scale * e[best].sum() / q[best].sum())


def compare(table: pd.DataFrame, *, quantile: float = 0.25, rate: Callable | None = None) -> pd.DataFrame:
    r"""Each indicator over the span against the enterprise's best periods and the national limits.

    .. math::
        e = s \sum_i E_i / \sum_i Q_i,\qquad
        \Delta_{best} = 100 (e - e_{best}) / e_{best}\ \%,\qquad
        \text{saving} = (e - e_{best}) \sum_i Q_i / s

    Parameters
    ----------
    table : DataFrame
        :func:`mechanism_table`.
    quantile : float
        Share of best periods (0.25: the best quartile of months).
    rate : callable, optional
        ``rate(gb_indicator, value, clinker_percent=..., note=...)`` → an object with ``limits``
        (grade 1, 2, 3), ``grade`` (1–3 or None above the limit), ``standard``, ``label_zh``,
        ``label_en`` — :func:`workbench.products.energy.rate` (GB 16780-2021).  Without it the limit
        columns are empty.

    Returns
    -------
    DataFrame
        One row per indicator: ``indicator``, ``name_zh``, ``name_en``, ``unit``, ``value`` (span),
        ``mean``, ``min``, ``max`` (monthly), ``best`` (best-period level), ``best_periods``
        (comma-separated), ``gap_to_best_pct``, ``saving`` (in the quantity's unit: tce, MWh, GJ,
        tCO2e), ``grade_1``, ``grade_2``, ``limit`` (grade 3), ``grade`` (Int64: 1–3, NA above the limit or unrated),
        ``label_zh``, ``label_en``, ``gap_to_limit_pct`` (100 (e − limit)/limit: negative = within),
        ``standard``, ``clinker_percent``, ``basis``.
    """
    rows = []
    for key, g in table.groupby("indicator", sort=False):
        first = g.iloc[0]
        scale = float(first["scale"]) if "scale" in g else 1000.0
        E = g["quantity"].to_numpy(dtype="float64")
        Q = g["output"].to_numpy(dtype="float64")
        ok = np.isfinite(Q) & (Q > 0)
        value = float(scale * E[ok].sum() / Q[ok].sum()) if ok.any() else math.nan
        best_mask = best_periods(g["value"].to_numpy(dtype="float64"), quantile=quantile)
        best = float(scale * E[best_mask].sum() / Q[best_mask].sum()) if best_mask.any() else math.nan
        pct = g["clinker_percent"].to_numpy(dtype="float64")
        share = float(100.0 * np.nansum(pct[ok] * Q[ok] / 100.0) / Q[ok].sum()) if np.isfinite(pct).any() else math.nan
        row = {"indicator": key, "name_zh": first["name_zh"], "name_en": first["name_en"], "unit": first["unit"],
               "value": value, "mean": float(np.nanmean(g["value"])) if ok.any() else math.nan,
               "min": float(np.nanmin(g["value"])) if ok.any() else math.nan,
               "max": float(np.nanmax(g["value"])) if ok.any() else math.nan, "best": best,
               "best_periods": ",".join(g["period"].astype(str).to_numpy()[best_mask]),
               "gap_to_best_pct": 100.0 * (value - best) / best if best else math.nan,
               "saving": (value - best) * Q[ok].sum() / scale if ok.any() else math.nan,
               "grade_1": math.nan, "grade_2": math.nan, "limit": math.nan, "grade": None, "label_zh": "",
               "label_en": "", "gap_to_limit_pct": math.nan, "standard": "", "clinker_percent": share,
               "basis": first["basis"]}
        gb = first["gb"]
        if rate is not None and isinstance(gb, str) and gb and math.isfinite(value):
            kw = {"clinker_percent": share} if gb == "cement_energy" else {}
            r = rate(gb, value, **kw)
            lims = tuple(r.limits)
            row.update(grade_1=lims[0], grade_2=lims[1], limit=lims[2], grade=r.grade, label_zh=r.label_zh,
                       label_en=r.label_en, gap_to_limit_pct=100.0 * (value - lims[2]) / lims[2], standard=r.standard)
        rows.append(row)
    out = pd.DataFrame(rows)
    if len(out):
        out["grade"] = pd.array([r["grade"] for r in rows], dtype="Int64")
    return out
