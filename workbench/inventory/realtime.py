"""Real-time view of the plant (seed §4.2, §9.5): current power/consumption and emissions rate per
facility, computed from the lake's hot tier within seconds of the readings' arrival.

:func:`live_view` takes the curated ``consumption`` intervals of the last ``window`` (the gateway
writes them as telemetry arrives), turns them into activity records exactly as the monthly
accounting does (:func:`workbench.inventory.readings.activity_from_meters`: sub-meters on their nodes, the
main meter's remainder on the enterprise) and accounts them with the same factors
(:func:`workbench.accounting.account`).  Rates are window totals divided by the window length:

    power (kW)            = Σ purchased-electricity consumption in the window (kWh) / window (h)
    emissions (tCO2e/h)   = Σ ledger tCO2e of the window's activity / window (h)

so they are traceable to the same factor ids as the inventory.  Facilities whose meters have not
reported in the window are shown with zero consumption and their reporting share, not dropped.

:func:`latest_readings` gives each meter's latest stored reading from the lake's watermarks (the
manifest the gateway updates in the commit of every batch; no data file is read).
"""
from __future__ import annotations

import duckdb
import pandas as pd

__all__ = ["latest_readings", "live_view"]


def live_view(lake, *, window: str = "15min", now=None, region: str | None = None, library=None,
              enterprise: str | None = None) -> pd.DataFrame:
    """One row per facility (plus the enterprise remainder) for the window ending at ``now``.

    ``now`` is naive local time like the lake's ``ts`` (default: the latest consumption interval's
    end, so a replayed or simulated stream works too).  Columns: ``facility``, ``name_zh``,
    ``name_en``, ``power_kw`` (purchased electricity drawn by the facility's sub-meters),
    ``generation_kw`` (self-generated electricity, e.g. waste-heat power), ``consumption`` (dict item → quantity in the item's
    accounting unit), ``tco2e``, ``tco2e_per_h``, ``meters_reporting``, ``meters_total``,
    ``last_ts``, ``window_start``, ``window_end``.  ``attrs['ledger']`` holds the ledger rows.
    """
    from workbench.accounting import account
    from workbench.core.boundary import Boundary
    from workbench.core.units import convert
    from workbench.inventory.readings import activity_from_meters

    width = pd.Timedelta(window)
    hours = width / pd.Timedelta(hours=1)
    if "consumption" not in lake.tables():
        return _empty()
    meters = lake.meters(normalized=True)
    end = pd.Timestamp(now) if now is not None else _latest(lake, meters)
    if pd.isna(end):
        return _empty()
    start = end - width
    con = lake.connect(tables=("consumption",), registries=False, between=(start, end))   # the window's files only
    try:
        c = con.execute("SELECT meter_id, ts, value, unit FROM consumption WHERE ts >= ? AND ts < ?",
                        [start.to_pydatetime(), end.to_pydatetime()]).df()
    except duckdb.CatalogException:          # no file in the window
        c = pd.DataFrame(columns=["meter_id", "ts", "value", "unit"])
    finally:
        con.close()
    bnodes = lake.boundary()
    boundary = Boundary(bnodes) if len(bnodes) else None
    ent = enterprise or (boundary.nodes.loc[boundary.nodes["level"] == "enterprise", "node_id"].iloc[0]
                         if boundary is not None else "enterprise")

    per_meter = c.groupby(["meter_id", "unit"], as_index=False).agg(consumption=("value", "sum"), last_ts=("ts", "max"))
    per_meter = per_meter.merge(meters[["meter_id", "node_id", "source", "item", "is_main", "register"]],
                                on="meter_id", how="left")
    per_meter["period"] = end.strftime("%Y-%m")
    activity = activity_from_meters(per_meter.dropna(subset=["source"]), enterprise=ent, library=library,
                                    document=f"live meter consumption {start:%Y-%m-%d %H:%M}–{end:%H:%M}")
    ledger = (account(activity, library, region=region, boundary=boundary) if len(activity)
              else pd.DataFrame(columns=["node_id", "facility", "item", "quantity", "unit", "tco2e"]))
    if boundary is not None:
        facility_of = dict(zip(per_meter["meter_id"], boundary.facility_of(per_meter["node_id"].fillna(ent))))
        meters["facility"] = boundary.facility_of(meters["node_id"].replace("", ent)).to_numpy()
    else:
        facility_of = dict(zip(per_meter["meter_id"], per_meter["node_id"]))
        meters["facility"] = meters["node_id"]
    per_meter["facility"] = per_meter["meter_id"].map(facility_of)

    facilities = sorted(set(meters["facility"].dropna()) - {""})
    rows = []
    for f in facilities:
        led = ledger[ledger["facility"] == f] if "facility" in ledger else ledger.iloc[0:0]
        pm = per_meter[(per_meter["facility"] == f) & ~per_meter["is_main"].fillna(False).astype(bool)]
        kwh = _kwh(pm[pm["source"] == "purchased_electricity"], convert)
        generated = _kwh(pm[pm["source"] == "self_generated_electricity"], convert)
        cons = {it: float(q) for it, q in led.groupby("item")["quantity"].sum().items()} if len(led) else {}
        tco2e = float(led["tco2e"].sum()) if len(led) else 0.0
        total = meters[(meters["facility"] == f) & ~meters["is_main"]]
        rows.append({"facility": f, "power_kw": kwh / hours, "generation_kw": generated / hours,
                     "consumption": cons, "tco2e": tco2e, "tco2e_per_h": tco2e / hours, "meters_reporting": int(pm["meter_id"].nunique()),
                     "meters_total": len(total), "last_ts": pm["last_ts"].max() if len(pm) else pd.NaT})
    if not rows:
        return _empty()
    out = pd.DataFrame(rows)
    if boundary is not None:
        names = boundary.nodes.set_index("node_id")
        out.insert(1, "name_zh", out["facility"].map(names["name_zh"]).fillna(""))
        out.insert(2, "name_en", out["facility"].map(names["name_en"]).fillna(""))
    out["window_start"], out["window_end"] = start, end
    out.attrs["ledger"] = ledger
    out.attrs["hours"] = hours
    return out


def latest_readings(lake, *, now=None) -> pd.DataFrame:
    """Each registered meter's latest stored reading, one row per meter (meters that never
    reported too, with no value).

    Columns: ``meter_id``, ``node_id``, ``source``, ``item``, ``register`` (``interval`` or
    ``cumulative``: an interval meter's value is the interval's consumption, a register's its
    reading), ``ts`` (the reading's time, naive local like the lake's ``ts``), ``value`` and
    ``unit`` (as stored: the meter's unit), ``stored_at`` (when its batch was committed, naive UTC;
    NaT for a lake rebuilt from files), ``age_s`` (``now`` − ``ts`` in seconds; ``now`` default the
    latest ``ts`` of all, so a replayed stream works too).  Readings of meters not in the registry
    are left out (the lake has quarantined them).
    """
    meters = lake.meters()
    marks = lake.watermarks("readings")
    cols = ["meter_id", "node_id", "source", "item", "register", "ts", "value", "unit", "stored_at", "age_s"]
    if not len(meters):
        return pd.DataFrame(columns=cols)
    out = meters[["meter_id", "node_id", "source", "item", "register", "unit"]].merge(
        marks[["meter_id", "ts", "value", "stored_at"]], on="meter_id", how="left")
    out["stored_at"] = pd.to_datetime(out["stored_at"], unit="s")
    ref = pd.Timestamp(now) if now is not None else out["ts"].max()
    out["age_s"] = (ref - out["ts"]).dt.total_seconds()
    return out[cols].sort_values("meter_id").reset_index(drop=True)


def _latest(lake, meters: pd.DataFrame):
    """Up to when consumption is known: a register's consumption runs up to its latest reading
    (the lake's watermarks: no data file is read); an interval meter's row covers its reporting
    interval — taken from its last two rows (15 min at most, 15 min if it has one), read from the
    last hour's files only."""
    cum = set(meters.loc[meters["register"] == "cumulative", "meter_id"])
    r = lake.watermarks("readings")
    c = lake.watermarks("consumption")
    ends = [r.loc[r["meter_id"].isin(cum), "ts"].max()]
    last = c.loc[~c["meter_id"].isin(cum), "ts"].max()
    if pd.notna(last):
        quarter = pd.Timedelta(minutes=15)
        con = lake.connect(tables=("consumption",), registries=False, between=(last - pd.Timedelta(hours=1), last))
        try:
            con.register("cum", pd.DataFrame({"meter_id": sorted(cum)}, dtype=object))
            tail = con.execute("""
                SELECT meter_id, ts, ts - lag(ts) OVER (PARTITION BY meter_id ORDER BY ts) AS step FROM consumption
                WHERE ts >= ? AND meter_id NOT IN (SELECT meter_id FROM cum)
                QUALIFY row_number() OVER (PARTITION BY meter_id ORDER BY ts DESC) = 1""",
                               [(last - pd.Timedelta(hours=1)).to_pydatetime()]).df()
        finally:
            con.close()
        step = pd.to_timedelta(tail["step"]).fillna(quarter).clip(upper=quarter)
        ends.append((pd.to_datetime(tail["ts"]) + step).max())
    ends = [e for e in ends if pd.notna(e)]
    return max(ends) if ends else pd.NaT


def _kwh(meters: pd.DataFrame, convert) -> float:
    return float(sum(convert(g["consumption"].to_numpy(), u, "kWh").sum() for u, g in meters.groupby("unit")))


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["facility", "name_zh", "name_en", "power_kw", "generation_kw", "consumption", "tco2e", "tco2e_per_h",
                                 "meters_reporting", "meters_total", "last_ts", "window_start", "window_end"])
