"""Footprint localisation (碳足迹定位, seed §9.2): where the emissions are and where they drift.

* **Contribution** — facilities, processes (the ledger's booking nodes) and meters ranked by tCO2e,
  with their share of the *gross* emissions (exports, negative under GB/T 32150, are credits: listed
  with no share) and the **Pareto** set — the fewest items whose cumulative share reaches 80 %
  (:func:`pareto`).
* **Deviation from baseline** — each item's monthly series against its own baseline fitted on the
  baseline months (:func:`deviations`): OLS on a driver (e.g. the clinker output) when given, else
  the baseline months' mean; deviation = actual − expected over the reporting months, in tCO2e and
  %, and a z-score against the baseline's residual spread.
* **Flows** — the explorer's Sankey frame (:func:`workbench.inventory.footprint.sankey_flows`, the
  same columns) with a ``hotspot`` flag on the links that touch a Pareto facility or workshop
  (:func:`hotspot_flows`).

Everything reads the inventory (and, for meters, the footprint's metered consumption) through the
package's public API; nothing here re-accounts a row.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import statsmodels.api as sm

from workbench.inventory.footprint import (
    Footprint,
    drill_down,
    footprint_of,
    sankey_flows,
)
from workbench.models.mechanism import ModelError

__all__ = ["PARETO_SHARE", "contributions", "deviations", "hotspot_flows", "meter_contributions", "meter_panel",
           "monthly_panel", "pareto"]

PARETO_SHARE = 0.8


def pareto(values, labels=None, *, threshold: float = PARETO_SHARE) -> pd.DataFrame:
    r"""Rank items by value and mark the Pareto set.

    Gross basis: only positive values share (``G = Σ_{v_i > 0} v_i``); sorted descending,

    .. math::  s_i = v_i / G,\qquad c_k = \sum_{i \le k} s_i

    and item ``k`` is in the Pareto set when ``c_{k-1} < threshold`` — the smallest leading set whose
    cumulative share reaches the threshold.  Zero and negative items (credits) come last, with no
    share and never in the set.

    Parameters
    ----------
    values : array-like of float
        tCO2e (or any additive quantity) per item.
    labels : array-like, optional
        Item names (default 0, 1, …).
    threshold : float
        Cumulative share of the set, 0 < t ≤ 1 (0.8: the 80 % set).

    Returns
    -------
    DataFrame
        ``item``, ``value``, ``rank`` (1 = largest), ``share``, ``cumulative_share`` (fractions, NaN for
        credits), ``pareto`` (bool).
    """
    if not 0 < threshold <= 1:
        raise ModelError(f"Pareto threshold {threshold!r}: must be in (0, 1]")
    v = np.asarray(values, dtype="float64")
    lab = list(range(len(v))) if labels is None else list(labels)
    if len(lab) != len(v):
        raise ModelError(f"{len(lab)} labels for {len(v)} values")
    f = pd.DataFrame({"item": lab, "value": v})
    pos = f["value"] > 0
    f = pd.concat([f[pos].sort_values("value", ascending=False, kind="stable"),
                   f[~pos].sort_values("value", ascending=False, kind="stable")], ignore_index=True)
    gross = float(f.loc[f["value"] > 0, "value"].sum())
    share = np.where(f["value"] > 0, f["value"] / gross, np.nan) if gross > 0 else np.full(len(f), np.nan)
    cum = np.where(f["value"] > 0, np.nancumsum(share), np.nan)
    before = np.r_[0.0, np.nan_to_num(cum)[:-1]]
    f["rank"] = np.arange(1, len(f) + 1)
    f["share"] = share
    f["cumulative_share"] = cum
    f["pareto"] = (f["value"] > 0).to_numpy() & (before < threshold - 1e-12)
    return f[["item", "value", "rank", "share", "cumulative_share", "pareto"]]


def _names(boundary, items, lang: str) -> list:
    return [boundary.name(i, lang) if i in boundary.nodes.index else str(i) for i in items]


def contributions(inv, by: str = "facility", *, threshold: float = PARETO_SHARE, lang: str = "zh") -> pd.DataFrame:
    """Items of an inventory ranked by their tCO2e over the span, with the Pareto set (:func:`pareto`).

    Parameters
    ----------
    inv : Inventory
        :func:`workbench.inventory.compute.compute_inventory_from_lake`.
    by : str
        ``facility``; ``process`` (the node each ledger row is booked on — a process, or a workshop
        or facility for rows above the process level); ``source``; ``item`` (energy carrier or
        material); or any ledger column.
    threshold, lang : as :func:`pareto`; names in ``lang``.

    Returns
    -------
    DataFrame
        The :func:`pareto` columns plus ``name`` and ``level`` (boundary level of node items).
    """
    col = "node_id" if by == "process" else by
    if col not in inv.ledger:
        raise ModelError(f"by '{by}': not a ledger column (facility, process, source, item …)")
    t = inv.ledger.groupby(inv.ledger[col].astype(str))["tco2e"].sum()
    out = pareto(t.to_numpy(), t.index, threshold=threshold)
    b = inv.boundary
    if col in ("facility", "node_id"):
        out.insert(1, "name", _names(b, out["item"], lang))
        out.insert(2, "level", [b.nodes.at[i, "level"] if i in b.nodes.index else "" for i in out["item"]])
    else:
        out.insert(1, "name", out["item"].astype(str))
        out.insert(2, "level", by)
    return out


def meter_contributions(fp: Footprint, *, threshold: float = PARETO_SHARE, lang: str = "zh") -> pd.DataFrame:
    """Sub-meters ranked by tCO2e over the span (their consumption × the inventory's factor of the
    month, source and item, as :func:`workbench.inventory.footprint.drill_down` gives them for every
    workshop and process), with the Pareto set.  Meters are another basis than the ledger: their sum
    need not equal it.

    Returns
    -------
    DataFrame
        :func:`pareto` columns plus ``name``, ``node_id`` (the process it measures), ``consumption``,
        ``unit``, ``completeness``.
    """
    b = fp.boundary
    nodes = b.nodes[b.nodes["level"].isin(["workshop", "process"])].index
    parts = []
    for n in nodes:
        if fp.node_id not in b.ancestors(n):
            continue
        d = drill_down(fp, n, lang=lang)
        d = d[d["kind"] == "meter"]
        if len(d):
            parts.append(d.assign(node_id=[b.nodes.at[m, "parent_id"] if m in b.nodes.index else n
                                           for m in d["child_id"]]))
    cols = ["item", "name", "node_id", "value", "rank", "share", "cumulative_share", "pareto", "consumption",
            "unit", "completeness"]
    if not parts:
        return pd.DataFrame(columns=cols)
    m = pd.concat(parts, ignore_index=True).drop_duplicates("child_id").set_index("child_id")
    m = m[m["tco2e"].notna()]
    out = pareto(m["tco2e"].to_numpy(), m.index, threshold=threshold)
    for c in ("name", "node_id", "consumption", "unit", "completeness"):
        out[c] = m.loc[out["item"], c].to_numpy()
    return out[cols]


def monthly_panel(inv, by: str = "facility") -> pd.DataFrame:
    """Period × item tCO2e of an inventory (``by`` as :func:`contributions`), zeros where an item has
    no row in a month."""
    col = "node_id" if by == "process" else by
    if col not in inv.ledger:
        raise ModelError(f"by '{by}': not a ledger column")
    t = inv.ledger.pivot_table(index="period", columns=inv.ledger[col].astype(str), values="tco2e", aggfunc="sum",
                               fill_value=0.0)
    t.index = t.index.astype(str)
    t.columns.name = by
    return t


def meter_panel(fp: Footprint) -> pd.DataFrame:
    """Period × meter tCO2e of the footprint's sub-meters: each month's consumption × the meter's span
    factor (its tCO2e ÷ its consumption in :func:`meter_contributions`)."""
    mc = meter_contributions(fp)
    c = fp.consumption
    if mc.empty or c is None or c.empty:
        return pd.DataFrame()
    rate = (mc.set_index("item")["value"] / mc.set_index("item")["consumption"]).replace([np.inf, -np.inf], np.nan)
    c = c[c["meter_id"].isin(rate.index)]
    t = c.pivot_table(index="period", columns="meter_id", values="consumption", aggfunc="sum", fill_value=0.0)
    t.index = t.index.astype(str)
    return t * rate.reindex(t.columns).to_numpy()


def deviations(panel: pd.DataFrame, baseline_periods, reporting_periods, *, driver=None,
               names: dict | None = None) -> pd.DataFrame:
    r"""Each item's deviation from its own baseline over the reporting months, ranked.

    Per item (column of ``panel``), on the baseline months ``B``:

    * with a ``driver`` ``x`` (e.g. clinker output): OLS :math:`y = a + b x`; expected
      :math:`\hat y_j = a + b x_j`; :math:`s` = residual standard error (``n − 2`` dof);
    * without: :math:`\hat y_j = \bar y_B`; :math:`s` = standard deviation of ``y_B`` (``n − 1``).

    .. math::
        D = \sum_{j \in R} (y_j - \hat y_j),\qquad D\% = 100\,D / \sum_{j \in R} \hat y_j,\qquad
        z = D / (s \sqrt{m})

    Parameters
    ----------
    panel : DataFrame
        Period × item (tCO2e): :func:`monthly_panel`, :func:`meter_panel`.
    baseline_periods, reporting_periods : sequence of str
        Months of the baseline and of the reporting period (``YYYY-MM``).
    driver : Series, optional
        Indexed by period, covering both spans.
    names : dict, optional
        item → display name.

    Returns
    -------
    DataFrame
        ``item``, ``name``, ``actual``, ``expected``, ``deviation`` (tCO2e, + = above baseline),
        ``deviation_pct``, ``z``, ``rank`` (1 = largest excess), sorted by ``deviation`` descending.
    """
    bp = [str(p) for p in baseline_periods]
    rp = [str(p) for p in reporting_periods]
    idx = set(panel.index.astype(str))
    miss = [p for p in bp + rp if p not in idx]
    if miss:
        raise ModelError(f"period {miss[0]} is not in the panel ({min(idx)}..{max(idx)})")
    if len(bp) < (3 if driver is not None else 2):
        raise ModelError(f"{len(bp)} baseline months are too few")
    pn = panel.copy()
    pn.index = pn.index.astype(str)
    if driver is not None:
        x = pd.Series(driver)
        x.index = x.index.astype(str)
        dm = [p for p in bp + rp if p not in x.index or not np.isfinite(x[p])]
        if dm:
            raise ModelError(f"driver: no value in period {dm[0]}")
    rows = []
    for item in pn.columns:
        yb = pn.loc[bp, item].to_numpy(dtype="float64")
        yr = pn.loc[rp, item].to_numpy(dtype="float64")
        if driver is not None:
            res = sm.OLS(yb, sm.add_constant(x[bp].to_numpy(dtype="float64"), has_constant="add")).fit()
            exp = res.params[0] + res.params[1] * x[rp].to_numpy(dtype="float64")
            s = math.sqrt(res.ssr / (len(bp) - 2))
        else:
            exp = np.full(len(rp), yb.mean())
            s = float(np.std(yb, ddof=1))
        D = float(yr.sum() - exp.sum())
        E = float(exp.sum())
        rows.append({"item": item, "name": (names or {}).get(item, str(item)), "actual": float(yr.sum()),
                     "expected": E, "deviation": D, "deviation_pct": 100.0 * D / E if E else math.nan,
                     "z": D / (s * math.sqrt(len(rp))) if s > 0 else math.nan})
    out = pd.DataFrame(rows, columns=["item", "name", "actual", "expected", "deviation", "deviation_pct", "z"])
    out = out.sort_values("deviation", ascending=False, kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def hotspot_flows(inv, *, threshold: float = PARETO_SHARE, lang: str = "zh") -> pd.DataFrame:
    """The explorer's Sankey flows of the whole enterprise (:func:`workbench.inventory.footprint.sankey_flows`,
    its columns unchanged: ``source``, ``target``, ``source_name``, ``target_name``, ``stage``, ``tco2e``,
    ``energy_gj``, ``sign``) plus ``hotspot``: True on the links into a facility of the facilities'
    Pareto set and on the links from it into its workshops — what to highlight in the diagram."""
    flows = sankey_flows(footprint_of(inv), lang=lang)
    fac = contributions(inv, "facility", threshold=threshold)
    hot = set(fac.loc[fac["pareto"], "item"].astype(str))
    tgt = flows["target"].astype(str)
    src = flows["source"].astype(str)
    flows["hotspot"] = ((flows["stage"] == "source→facility") & tgt.isin(hot)) | \
                       ((flows["stage"] == "facility→workshop") & src.isin(hot))
    return flows
