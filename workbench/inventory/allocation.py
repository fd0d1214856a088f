"""Allocation of enterprise-level activity data to boundary nodes by sub-meter shares.

A bill (e.g. State Grid's monthly electricity bill) is the primary activity datum for the whole
enterprise; the sub-meters tell how it divides between facilities.  Each enterprise-level record is
split into one record per metered node in proportion to that node's metered consumption in the
same period, with the main-meter residual (line losses, unmetered use) staying on the enterprise
node.  The split records keep the bill as their total — Σ parts = the original quantity — and say
in ``record_id`` (``<original>@<node>``) and ``document`` where they came from.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["allocate_by_submeters"]


def allocate_by_submeters(activity: pd.DataFrame, metered: pd.DataFrame, *, enterprise: str,
                          sources=("purchased_electricity", "purchased_heat")) -> pd.DataFrame:
    """Split ``activity`` rows on the ``enterprise`` node by the shares in ``metered``.

    ``metered`` is :func:`workbench.inventory.readings.activity_from_meters` output (one row per node,
    period, source and item, including the residual on the enterprise node).  Rows of other
    nodes, other sources, or periods without metered data are returned unchanged.
    """
    act = activity.copy()
    act["period"] = act["period"].astype(str)
    on_ent = act["node_id"].eq(enterprise) & act["source"].isin(sources)
    if not on_ent.any() or metered.empty:
        return act
    m = metered[metered["source"].isin(sources)]
    tot = m.groupby(["period", "source", "item"])["quantity"].transform("sum")
    shares = m.assign(share=m["quantity"] / tot)[["period", "source", "item", "node_id", "share"]]
    shares = shares[shares["share"].notna()]
    keep = act[~on_ent]
    split = act[on_ent].merge(shares.rename(columns={"node_id": "to_node"}),
                              on=["period", "source", "item"], how="left")
    unmatched = split["share"].isna()
    parts = split[~unmatched].copy()
    parts["quantity"] = pd.to_numeric(parts["quantity"]) * parts["share"]
    parts["document"] = (parts["document"].fillna("").astype(str) + " — allocated "
                         + (parts["share"] * 100).map("{:.3f}".format) + " % by sub-meter share")
    parts["record_id"] = parts["record_id"].astype(str) + "@" + parts["to_node"]
    parts["node_id"] = parts["to_node"]
    whole = split[unmatched]
    out = pd.concat([keep, parts.drop(columns=["to_node", "share"]),
                     whole.drop(columns=["to_node", "share"])], ignore_index=True)
    return out[activity.columns.tolist()]
