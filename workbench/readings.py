"""Meter readings → consumption per meter and period → activity records.

DuckDB is the engine (readings can be tens of millions of rows); the result per meter and month
is small and is finished in pandas with pint units.  Interval registers go to their month in one
sort per meter, which also finds the rows that repeat a timestamp — only those are grouped by
(meter, ts); cumulative registers (few meters) are grouped by (meter, ts) and differenced
(``CONSUMPTION_SQL``; ``benchmarks/accounting.py`` times it against a hand-written query).

Conventions (docs/architecture.md): ``ts`` is naive local time (Asia/Shanghai); an interval
value belongs to the interval starting at ``ts``; consumption between two register readings
belongs to the interval starting at the earlier one.

Register handling, each counted in the result so nothing is hidden:

* rows repeated for the same (meter, ts) are collapsed; when their values differ the mean is
  used and the conflict is counted (``n_conflicts``);
* a register that goes down is a **rollover** when the meter has a capacity (``rollover``) and the
  previous reading was within the top 10 % of it — consumption = value + capacity − previous —
  otherwise a **reset** to zero — consumption = value (counted from zero);
* a replaced meter has its own id; its first reading starts its register (no consumption
  is invented for the minutes between the old meter's last and the new meter's first reading).

Spikes and stuck values are *not* altered here: quality rules flag them (issue: data lake and
quality); the result carries ``completeness`` so a gap is visible where it matters.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from .units import convert

__all__ = ["meter_consumption", "activity_from_meters", "read_meters", "CONSUMPTION_SQL"]

ACCOUNTED_SOURCES = ("combustion", "process", "purchased_electricity", "purchased_heat",
                     "exported_electricity", "exported_heat")

CONSUMPTION_SQL = """
WITH m AS (
    SELECT meter_id, register, rollover, row_number() OVER (ORDER BY meter_id) AS mid FROM meters
),
-- interval registers: one sort by (meter, ts) finds the rows that share their ts with a neighbour;
-- all other rows go straight into their month, the repeated ones are first collapsed by (meter, ts)
iv AS (
    SELECT m.mid, r.ts, r.value,
           coalesce(r.ts = lag(r.ts) OVER w OR r.ts = lead(r.ts) OVER w, false) AS dup
    FROM (SELECT meter_id, ts, value FROM {readings} {where}) r JOIN m USING (meter_id)
    WHERE m.register = 'interval' AND r.ts IS NOT NULL
    WINDOW w AS (PARTITION BY m.mid ORDER BY r.ts)
),
ig AS (
    SELECT mid, date_trunc('month', ts) AS month, CASE WHEN dup THEN ts END AS dup_ts,
           sum(value) AS s, avg(value) AS a, count(value) AS nv, count(*) AS n,
           (min(value) <> max(value))::INT AS conflict
    FROM iv GROUP BY ALL
),
ic AS (
    SELECT mid, month,
           sum(CASE WHEN dup_ts IS NULL THEN s ELSE a END) AS consumption,
           sum(CASE WHEN dup_ts IS NULL THEN nv ELSE (a IS NOT NULL)::INT END) AS n_intervals,
           sum(CASE WHEN dup_ts IS NULL THEN 0 ELSE n - 1 END) AS n_duplicates,
           sum(CASE WHEN dup_ts IS NULL THEN 0 ELSE conflict END) AS n_conflicts,
           0 AS n_rollovers, 0 AS n_resets
    FROM ig GROUP BY ALL
),
-- cumulative registers: readings collapsed by (meter, ts), then differences of successive readings
cr AS (
    SELECT m.mid, any_value(m.rollover) AS rollover, r.ts, avg(r.value) AS value, count(*) AS n,
           (min(r.value) <> max(r.value))::INT AS conflict
    FROM (SELECT meter_id, ts, value FROM {readings} {where}) r JOIN m USING (meter_id)
    WHERE m.register IS DISTINCT FROM 'interval'
    GROUP BY m.mid, r.ts
),
cd AS (
    SELECT *, lag(value) OVER w AS prev_value, lag(ts) OVER w AS prev_ts
    FROM cr WINDOW w AS (PARTITION BY mid ORDER BY ts)
),
cc AS (
    SELECT mid, n, conflict, prev_ts AS interval_start,
           CASE
             WHEN prev_value IS NULL THEN NULL
             WHEN value >= prev_value THEN value - prev_value
             WHEN rollover IS NOT NULL AND prev_value >= 0.9 * rollover THEN value + rollover - prev_value
             ELSE value
           END AS consumption,
           (prev_value IS NOT NULL AND value < prev_value
             AND rollover IS NOT NULL AND prev_value >= 0.9 * rollover)::INT AS rolled,
           (prev_value IS NOT NULL AND value < prev_value
             AND NOT (rollover IS NOT NULL AND prev_value >= 0.9 * rollover))::INT AS reset
    FROM cd
),
cm AS (
    SELECT mid, date_trunc('month', interval_start) AS month,
           sum(consumption) AS consumption, count(consumption) AS n_intervals,
           sum(n) - count(*) AS n_duplicates, sum(conflict) AS n_conflicts,
           sum(rolled) AS n_rollovers, sum(reset) AS n_resets
    FROM cc WHERE interval_start IS NOT NULL
    GROUP BY ALL
)
SELECT m.meter_id, strftime(x.month, '%Y-%m') AS period, x.consumption,
       x.n_intervals::BIGINT AS n_intervals, x.n_duplicates::BIGINT AS n_duplicates,
       x.n_conflicts::BIGINT AS n_conflicts, x.n_rollovers::BIGINT AS n_rollovers,
       x.n_resets::BIGINT AS n_resets
FROM (SELECT * FROM ic UNION ALL SELECT * FROM cm) x JOIN m USING (mid)
ORDER BY m.meter_id, period
"""


def read_meters(path) -> pd.DataFrame:
    m = pd.read_csv(path, dtype=str, keep_default_na=False)
    m["rollover"] = pd.to_numeric(m["rollover"].replace("", None), errors="coerce")
    m["is_main"] = m["is_main"].astype(str).str.lower().eq("true")
    return m


def _source_sql(readings, con) -> str:
    if isinstance(readings, (str, Path)):
        p = str(readings)
        if Path(p).is_dir():
            p = str(Path(p) / "**" / "*.parquet")
        return f"read_parquet('{p}')"
    con.register("readings_in", readings)
    return "readings_in"


def meter_consumption(readings, meters: pd.DataFrame, *, start: str | None = None,
                      end: str | None = None, interval_minutes: int = 15,
                      con: duckdb.DuckDBPyConnection | None = None,
                      threads: int | None = None) -> pd.DataFrame:
    """Consumption per meter and calendar month, in each meter's own unit.

    ``readings`` is a Parquet path (file, glob or directory), a DataFrame or an Arrow table with
    ``meter_id, ts, value``.  ``start``/``end`` (``YYYY-MM-DD``, end exclusive) bound the readings
    read — a cumulative meter needs the reading at ``end`` to close its last interval, so ``end``
    is widened by one interval for the scan and the result is cut back to whole periods.
    Returns ``meter_id, period, consumption, n_intervals, expected_intervals, completeness,
    n_duplicates, n_conflicts, n_rollovers, n_resets`` plus the meter's attributes.
    ``threads`` caps DuckDB's worker threads (default: DuckDB's, one per core).
    """
    own = con is None
    con = con or duckdb.connect()
    try:
        if own:  # no progress bar in logs; in Jupyter DuckDB refuses the setting without ipywidgets
            try:
                con.execute("SET enable_progress_bar = false")
            except duckdb.Error:
                pass
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.register("meters", meters[["meter_id", "register", "rollover"]])
        src = _source_sql(readings, con)
        conds = []
        if start:
            conds.append(f"ts >= TIMESTAMP '{pd.Timestamp(start)}'")
        if end:
            conds.append(f"ts <= TIMESTAMP '{pd.Timestamp(end)}'")
        where = ("WHERE " + " AND ".join(conds)) if conds else ""
        out = con.execute(CONSUMPTION_SQL.format(readings=src, where=where)).df()
    finally:
        if own:
            con.close()
    if end:
        out = out[out["period"] < pd.Timestamp(end).strftime("%Y-%m")]
    if start:
        out = out[out["period"] >= pd.Timestamp(start).strftime("%Y-%m")]
    days = pd.PeriodIndex(out["period"], freq="M").days_in_month
    out["expected_intervals"] = np.asarray(days) * (24 * 60 // interval_minutes)
    out["completeness"] = out["n_intervals"] / out["expected_intervals"]
    cols = ["meter_id", "node_id", "source", "item", "unit", "register", "is_main"]
    out = out.merge(meters[[c for c in cols if c in meters.columns]], on="meter_id", how="left")
    return out.reset_index(drop=True)


def activity_from_meters(consumption: pd.DataFrame, *, enterprise: str, library=None,
                         document: str = "meter readings") -> pd.DataFrame:
    """Monthly activity records from metered consumption.

    For each period, source and item: sub-meters give the activity of the node they measure; when
    a boundary (main, ``is_main``) meter exists, it fixes the total and the difference
    main − Σ sub-meters (line losses, unmetered users) is recorded on the enterprise node, so
    the facilities add up to the billing meter.  Quantities are converted with pint to the item's
    default unit of the factor library before they are added.  Meters whose source is not an
    accounting source (e.g. self-generated electricity) are left out.
    """
    from .factors import default_library

    lib = library or default_library()
    c = consumption[consumption["source"].isin(ACCOUNTED_SOURCES)].copy()
    if c.empty:
        return pd.DataFrame(columns=["record_id", "node_id", "period", "source", "item", "quantity",
                                     "unit", "data_tier", "document"])
    default_unit = dict(zip(lib.items["item"], lib.items["default_unit"]))
    unit_of = {"grid": "MWh", "heat": "GJ"}
    c["target_unit"] = c["item"].map(lambda it: unit_of.get(it, default_unit.get(it, "t")))
    c["quantity"] = 0.0
    for (u, tu), idx in c.groupby(["unit", "target_unit"]).groups.items():
        c.loc[idx, "quantity"] = convert(c.loc[idx, "consumption"].to_numpy(), u, tu)
    keys = ["period", "source", "item", "target_unit"]
    sub = c[~c["is_main"]].groupby(keys + ["node_id"], as_index=False)["quantity"].sum()
    main = c[c["is_main"]].groupby(keys, as_index=False)["quantity"].sum()
    sub_total = sub.groupby(keys, as_index=False)["quantity"].sum()
    resid = main.merge(sub_total, on=keys, how="left", suffixes=("_main", "_sub")).fillna({"quantity_sub": 0.0})
    resid["quantity"] = resid["quantity_main"] - resid["quantity_sub"]
    sub["doc"] = document + ": sub-meters"
    # sub-meters reading more than the billing meter: they are scaled to it, and say so
    over = resid[resid["quantity"] < 0]
    if len(over):
        ratio = over.assign(r=over["quantity_main"] / over["quantity_sub"])[keys + ["r"]]
        sub = sub.merge(ratio, on=keys, how="left")
        hit = sub["r"].notna()
        sub.loc[hit, "quantity"] = sub.loc[hit, "quantity"] * sub.loc[hit, "r"]
        sub.loc[hit, "doc"] = (document + ": sub-meters scaled by " + sub.loc[hit, "r"].map("{:.4f}".format)
                               + " because they exceed the main meter")
        sub = sub.drop(columns="r")
        resid = resid[resid["quantity"] >= 0]
    resid = resid.assign(node_id=enterprise,
                         doc=document + ": main meter − Σ sub-meters (losses and unmetered use)")
    act = pd.concat([sub, resid[keys + ["node_id", "quantity", "doc"]]], ignore_index=True)
    act = act.rename(columns={"target_unit": "unit", "doc": "document"})
    act["data_tier"] = "primary"
    act = act.sort_values(["period", "source", "item", "node_id"]).reset_index(drop=True)
    act["record_id"] = ("meter:" + act["period"] + ":" + act["source"] + ":" + act["item"] + ":" + act["node_id"])
    return act[["record_id", "node_id", "period", "source", "item", "quantity", "unit", "data_tier", "document"]]
