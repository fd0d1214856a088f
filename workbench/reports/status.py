"""Data status (数据状态) of one enterprise's lake, per month — what a manager's "data status" page
shows, computed here so that the page only displays it (issue 13, point 3).

:func:`data_status` runs the steps, each a function returning a DataFrame (data, not metadata):

* :func:`meter_completeness` — per meter and month: intervals expected and present, completeness,
  flagged readings and intervals, quarantined rows (from
  :func:`workbench.inventory.sources.lake_meter_consumption`, the counting the inventory uses);
* :func:`source_completeness` — per accounting source, item and month: ledger records, bills,
  meters reporting, and whether the month has an activity record at all;
* :func:`quarantined_rows` and :func:`quarantine_summary` — the rows the lake kept out, with their
  reasons (drill-down), and their counts per month, table and reason;
* :func:`recent_imports` — the last batches (imports) from the lake's batch records;
* :func:`bill_reconciliation` — billed quantity against the metered consumption per month, source
  and item, difference, ratio and a flag beyond a tolerance (from
  :func:`workbench.inventory.sources.reconcile`, the inventory's reconciliation).

Everything is read through ``lake`` — one enterprise's lake (``Lake(root, enterprise=ID)``), whose
manifest holds only that enterprise's files — so no step can return another enterprise's rows.
Months are ``YYYY-MM`` (calendar months of naive local time, Asia/Shanghai); times of imports are
naive local time too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.core.meters import LOCAL_TZ
from workbench.inventory.compute import months as month_range
from workbench.inventory.sources import (
    PRECEDENCE,
    choose,
    invoice_candidates,
    lake_meter_consumption,
    ledger_candidates,
    meter_candidates,
    reconcile,
)

__all__ = ["DataStatus", "bill_reconciliation", "data_status", "meter_completeness", "quarantine_summary",
           "quarantined_rows", "recent_imports", "source_completeness", "status_months"]

#: minutes per interval of the meters (the lake's 15-minute grid)
INTERVAL_MINUTES = 15

METER_COLUMNS = ["meter_id", "node_id", "source", "item", "unit", "is_main", "month", "expected_intervals",
                 "intervals_present", "missing_intervals", "completeness", "consumption", "flagged_readings",
                 "flagged_intervals", "quarantined_rows"]
SOURCE_COLUMNS = ["source", "item", "month", "ledger_records", "invoice_records", "meters_reporting", "basis",
                  "missing"]
QUARANTINE_COLUMNS = ["month", "month_from", "table", "batch_id", "row", "column", "reason", "meter_id",
                      "payload", "quarantined_at"]
QUARANTINE_SUMMARY_COLUMNS = ["month", "table", "reason", "rows", "batches"]
IMPORT_COLUMNS = ["batch_id", "received_at", "stored_at", "finished_at", "kind", "source", "connector", "origin",
                  "raw_name", "sender", "status", "duplicate_of", "rows_in", "rows_curated", "rows_quarantined",
                  "rows_duplicate", "message"]
RECONCILIATION_COLUMNS = ["month", "source", "item", "unit", "invoice", "ledger", "billed", "billed_basis",
                          "meters", "difference", "ratio", "min_completeness", "datum_basis", "status", "flagged"]


@dataclass
class DataStatus:
    """The data status of one enterprise's lake over ``months`` (each frame: see its step function).

    ``meters`` :func:`meter_completeness` · ``sources`` :func:`source_completeness` ·
    ``quarantine`` :func:`quarantine_summary` · ``quarantine_rows`` :func:`quarantined_rows` ·
    ``imports`` :func:`recent_imports` · ``reconciliation`` :func:`bill_reconciliation`.
    """

    enterprise: str | None
    months: list[str]
    meters: pd.DataFrame
    sources: pd.DataFrame
    quarantine: pd.DataFrame
    quarantine_rows: pd.DataFrame
    imports: pd.DataFrame
    reconciliation: pd.DataFrame
    tolerance: float = 0.02
    notes: list = field(default_factory=list)


# ---------------------------------------------------------------------------------------- helpers
def _views(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}


def _bounds(months: list[str]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start of the first month, start of the month after the last)."""
    return pd.Period(months[0], "M").start_time, (pd.Period(months[-1], "M") + 1).start_time


def _expected(months) -> np.ndarray:
    """Intervals in each month (days × 96 for 15-minute intervals)."""
    days = pd.PeriodIndex(pd.Series(months, dtype=str), freq="M").days_in_month
    return np.asarray(days, dtype=np.int64) * (24 * 60 // INTERVAL_MINUTES)


def _enterprise_node(lake) -> str:
    b = lake.boundary()
    if len(b) and "parent_id" in b:
        top = b.loc[b["parent_id"].fillna("").astype(str).eq(""), "node_id"]
        if len(top):
            return str(top.iloc[0])
    return "ENT"


def status_months(lake, start=None, end=None) -> list[str]:
    """The months (``YYYY-MM``, inclusive) a status covers: ``start``..``end`` (any date or month
    pandas reads); a bound not given is taken from the lake's data (the first / last month of its
    consumption, activity records and bills).  Empty when neither is given and the lake holds none."""
    lo = pd.Period(start, "M") if start is not None else None
    hi = pd.Period(end, "M") if end is not None else None
    if lo is None or hi is None:
        found: list[str] = []
        con = lake.connect(tables=["consumption", "activity", "invoices"], registries=False)
        try:
            views = _views(con)
            if "consumption" in views:
                r = con.execute("SELECT strftime(min(ts), '%Y-%m'), strftime(max(ts), '%Y-%m') FROM consumption").fetchone()
                found += [x for x in r if x]
            for t in ("activity", "invoices"):
                if t in views:
                    r = con.execute(f"SELECT min(CAST(period AS VARCHAR)), max(CAST(period AS VARCHAR)) FROM {t}").fetchone()
                    found += [str(x)[:7] for x in r if x]
        finally:
            con.close()
        if not found:
            if lo is None and hi is None:
                return []
            lo = hi = lo or hi
        lo = lo if lo is not None else min(pd.Period(x, "M") for x in found)
        hi = hi if hi is not None else max(pd.Period(x, "M") for x in found)
    return month_range(str(lo), str(hi))


# ---------------------------------------------------------------------------------------- steps
def quarantined_rows(lake, months: list[str]) -> pd.DataFrame:
    """Every quarantined row of ``months`` (drill-down), one row each:

    ``month`` (``YYYY-MM``) the month the row's data belongs to — taken from its ``period``, ``ts`` or
    ``date`` field as sent (local time) — else, for a row without one, the month it was
    quarantined (local time); ``month_from`` says which (``data`` · ``quarantined_at``);
    ``table`` the curated table the row was meant for (``readings``, ``activity``, ``invoices`` …);
    ``batch_id`` the import it came in; ``row`` its row in the source (as counted by the
    connector; may be empty); ``column`` the offending column (may be empty); ``reason`` why it was
    kept out; ``meter_id`` the meter the row names (empty when none); ``payload`` the original row
    (JSON text); ``quarantined_at`` when (naive local time).
    """
    if not months:
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    con = lake.connect(tables=["quarantine"], registries=False)
    try:
        if "quarantine" not in _views(con):
            return pd.DataFrame(columns=QUARANTINE_COLUMNS)
        cols = {r[0] for r in con.execute("DESCRIBE quarantine").fetchall()}
        column = '"column"' if "column" in cols else "''"
        q = con.execute(f"""
            SELECT batch_id, "table", "row", coalesce({column}, '') AS "column", reason, payload, quarantined_at,
                   CASE WHEN json_valid(payload) THEN regexp_extract(coalesce(
                        json_extract_string(payload, '$.period'), json_extract_string(payload, '$.ts'),
                        json_extract_string(payload, '$.date'), ''), '^(\\d{{4}}-\\d{{2}})', 1) ELSE '' END AS data_month,
                   CASE WHEN json_valid(payload) THEN coalesce(json_extract_string(payload, '$.meter_id'), '')
                        ELSE '' END AS meter_id
            FROM quarantine""").df()
    finally:
        con.close()
    at = pd.to_datetime(q["quarantined_at"], utc=True, errors="coerce", format="ISO8601")
    q["quarantined_at"] = at.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    has = q["data_month"].fillna("").ne("")
    q["month"] = q["data_month"].where(has, q["quarantined_at"].dt.strftime("%Y-%m"))
    q["month_from"] = np.where(has, "data", "quarantined_at")
    q["row"] = pd.to_numeric(q["row"], errors="coerce").astype("Int64")
    q = q[q["month"].isin(months)]
    return q[QUARANTINE_COLUMNS].sort_values(["month", "table", "batch_id", "row"]).reset_index(drop=True)


def quarantine_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Quarantined rows counted per ``month``, ``table`` and ``reason`` (from
    :func:`quarantined_rows`): ``rows`` how many rows, ``batches`` in how many imports."""
    if rows.empty:
        return pd.DataFrame(columns=QUARANTINE_SUMMARY_COLUMNS)
    g = rows.groupby(["month", "table", "reason"], as_index=False).agg(rows=("batch_id", "size"),
                                                                        batches=("batch_id", "nunique"))
    return g.sort_values(["month", "table", "rows", "reason"], ascending=[True, True, False, True]) \
        .reset_index(drop=True)[QUARANTINE_SUMMARY_COLUMNS]


def _flag_counts(lake, months: list[str]) -> pd.DataFrame:
    """Per meter and month: readings and consumption intervals whose quality flag is not ``ok``."""
    start, end = _bounds(months)
    con = lake.connect(tables=["readings", "consumption"], registries=False, between=(start, end))
    out = []
    try:
        views = _views(con)
        for table, name in (("readings", "flagged_readings"), ("consumption", "flagged_intervals")):
            if table in views:
                out.append(con.execute(f"""
                    SELECT meter_id, strftime(ts, '%Y-%m') AS month,
                           count(*) FILTER (WHERE CAST(quality_flag AS VARCHAR) <> 'ok')::BIGINT AS {name}
                    FROM {table} WHERE ts >= ? AND ts < ? GROUP BY ALL""",
                                       [start.to_pydatetime(), end.to_pydatetime()]).df().set_index(["meter_id", "month"]))
    finally:
        con.close()
    if not out:
        return pd.DataFrame(columns=["flagged_readings", "flagged_intervals"],
                            index=pd.MultiIndex.from_tuples([], names=["meter_id", "month"]))
    return pd.concat(out, axis=1)


def meter_completeness(lake, months: list[str], *, consumption: pd.DataFrame | None = None,
                       quarantine: pd.DataFrame | None = None) -> pd.DataFrame:
    """Completeness per meter and month, for every registered meter in service in the month (and
    every meter with consumption in it):

    ``meter_id``, ``node_id`` (boundary node it measures), ``source``, ``item``, ``unit`` (of its
    register), ``is_main`` (boundary/billing meter); ``month``; ``expected_intervals`` the
    15-minute intervals of the whole month (days × 96); ``intervals_present`` the consumption
    intervals the lake holds (a difference spanning a gap counts once: the gap stays missing);
    ``missing_intervals`` expected − present; ``completeness`` present ÷ expected (0–1, a
    fraction); ``consumption`` the month's consumption in ``unit`` (NaN when none);
    ``flagged_readings`` stored readings whose quality flag is not ``ok`` (off grid, duplicate,
    outside service, late …); ``flagged_intervals`` consumption intervals flagged (reset,
    rollover, gap spanning, spike, stuck …); ``quarantined_rows`` rows naming the meter that the
    lake quarantined (month of their timestamp).  Counts are numbers of rows.

    ``consumption``: :func:`workbench.inventory.sources.lake_meter_consumption` of the months, when
    already computed; ``quarantine``: :func:`quarantined_rows` of the months.
    """
    if not months:
        return pd.DataFrame(columns=METER_COLUMNS)
    cons = lake_meter_consumption(lake, months, interval_minutes=INTERVAL_MINUTES) if consumption is None \
        else consumption
    cons = cons.rename(columns={"period": "month", "n_intervals": "intervals_present"})
    meters = lake.meters(normalized=True)
    grid = []
    if len(meters):
        for m in months:
            lo, hi = _bounds([m])
            inside = (meters["installed"].isna() | (meters["installed"] < hi)) & \
                     (meters["removed"].isna() | (meters["removed"] >= lo))
            grid.append(meters.loc[inside, ["meter_id"]].assign(month=m))
    keys = pd.concat(grid + [cons[["meter_id", "month"]]], ignore_index=True).drop_duplicates() if grid \
        else cons[["meter_id", "month"]].drop_duplicates()
    out = keys.merge(cons[["meter_id", "month", "intervals_present", "consumption"]], on=["meter_id", "month"],
                     how="left")
    attrs = ["node_id", "source", "item", "unit", "is_main"]
    if len(meters):
        out = out.merge(meters[["meter_id", *attrs]], on="meter_id", how="left")
    else:
        out = out.merge(cons[["meter_id", *attrs]].drop_duplicates("meter_id"), on="meter_id", how="left")
    out["intervals_present"] = out["intervals_present"].fillna(0).astype("int64")
    out["expected_intervals"] = _expected(out["month"]) if len(out) else pd.Series(dtype="int64")
    out["missing_intervals"] = (out["expected_intervals"] - out["intervals_present"]).clip(lower=0)
    out["completeness"] = out["intervals_present"] / out["expected_intervals"]
    flags = _flag_counts(lake, months)
    out = out.merge(flags, left_on=["meter_id", "month"], right_index=True, how="left")
    for c in ("flagged_readings", "flagged_intervals"):
        out[c] = out[c].fillna(0).astype("int64") if c in out else 0
    q = quarantine if quarantine is not None else quarantined_rows(lake, months)
    q = q[(q["meter_id"] != "") & (q["month_from"] == "data")]
    counts = q.groupby(["meter_id", "month"]).size().rename("quarantined_rows")
    out = out.merge(counts, left_on=["meter_id", "month"], right_index=True, how="left")
    out["quarantined_rows"] = out["quarantined_rows"].fillna(0).astype("int64")
    out["is_main"] = out["is_main"].fillna(False).astype(bool)
    return out[METER_COLUMNS].sort_values(["month", "meter_id"]).reset_index(drop=True)


def _candidates(lake, months: list[str], consumption: pd.DataFrame) -> pd.DataFrame:
    """Ledger records, bills and metered activity of ``months`` (:mod:`workbench.inventory.sources`)."""
    node = _enterprise_node(lake)
    parts = [ledger_candidates(lake, months), invoice_candidates(lake, months, node),
             meter_candidates(consumption, node, lake=lake)[0]]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["period", "source", "item", "quantity", "unit", "basis"])


def source_completeness(lake, months: list[str], *, consumption: pd.DataFrame | None = None,
                        candidates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Which months have activity data per accounting source and item, one row per (source, item,
    month) for every source and item the lake knows (its activity records of any month, its bills,
    its registered meters of an accounting source):

    ``source`` (``purchased_electricity``, ``combustion`` …), ``item`` (factor-library code:
    ``grid``, ``natural_gas`` …), ``month``; ``ledger_records`` activity records (ledger, ERP,
    manual entries) of the month; ``invoice_records`` bills of the month; ``meters_reporting``
    meters of the source and item with consumption in the month; ``basis`` what the inventory takes
    as the datum (``invoice`` · ``ledger`` · ``meters``, :data:`workbench.inventory.sources.PRECEDENCE`;
    empty when nothing); ``missing`` true when the month has no activity record (neither ledger nor
    bill) — the inventory then falls back to the meters, or has nothing.
    """
    if not months:
        return pd.DataFrame(columns=SOURCE_COLUMNS)
    cons = lake_meter_consumption(lake, months, interval_minutes=INTERVAL_MINUTES) if consumption is None \
        else consumption
    cand = _candidates(lake, months, cons) if candidates is None else candidates
    known = set()
    a = lake.retrieve("activity", columns=["source", "item"])
    if len(a):
        known |= set(zip(a["source"].astype(str), a["item"].astype(str)))
    if len(cand):
        known |= set(zip(cand["source"].astype(str), cand["item"].astype(str)))
    meters = lake.meters(normalized=True)
    if len(meters):
        known |= {(s, i) for s, i in zip(meters["source"], meters["item"]) if s in PRECEDENCE}
    grid = pd.DataFrame([(s, i, m) for s, i in sorted(known) for m in months], columns=["source", "item", "month"])
    if grid.empty:
        return pd.DataFrame(columns=SOURCE_COLUMNS)
    c = cand.rename(columns={"period": "month"})
    for basis, col in (("ledger", "ledger_records"), ("invoice", "invoice_records")):
        n = c[c["basis"] == basis].groupby(["source", "item", "month"]).size().rename(col)
        grid = grid.merge(n, left_on=["source", "item", "month"], right_index=True, how="left")
        grid[col] = grid[col].fillna(0).astype("int64")
    if len(cons):
        mr = cons[cons["n_intervals"] > 0].groupby(["source", "item", "period"])["meter_id"].nunique()
        mr = mr.rename("meters_reporting").rename_axis(["source", "item", "month"])
        grid = grid.merge(mr, left_on=["source", "item", "month"], right_index=True, how="left")
    grid["meters_reporting"] = grid.get("meters_reporting", pd.Series(0, index=grid.index)).fillna(0).astype("int64")
    chosen, _ = choose(cand) if len(cand) else (pd.DataFrame(columns=["period", "source", "item", "basis"]), [])
    basis = chosen.drop_duplicates(["period", "source", "item"]).set_index(["source", "item", "period"])["basis"]
    basis = basis.rename_axis(["source", "item", "month"])
    grid = grid.merge(basis, left_on=["source", "item", "month"], right_index=True, how="left")
    grid["basis"] = grid["basis"].fillna("")
    grid["missing"] = (grid["ledger_records"] + grid["invoice_records"]) == 0
    return grid[SOURCE_COLUMNS].sort_values(["source", "item", "month"]).reset_index(drop=True)


def recent_imports(lake, *, limit: int | None = 50) -> pd.DataFrame:
    """The last ``limit`` imports (batches) of the lake, newest first (``None``: all):

    ``batch_id``; ``received_at`` when the data arrived, ``stored_at`` when its raw bytes were
    stored, ``finished_at`` when its curated rows were committed (naive local time; empty while a
    batch is unfinished); ``kind`` (readings, activity, invoice, production …); ``source`` the
    sending system; ``connector``; ``origin`` where it came from (file path, URL, topic);
    ``raw_name`` the file's name as stored; ``sender`` who or what sent it; ``status``
    (``stored`` · ``duplicate_upload`` · ``rejected`` · ``received`` = unfinished);
    ``duplicate_of`` the first upload of the same bytes; ``rows_in`` rows received,
    ``rows_curated`` stored, ``rows_quarantined`` kept out, ``rows_duplicate`` already stored;
    ``message`` (why a batch was rejected)."""
    b = lake.batches()
    if b.empty:
        return pd.DataFrame(columns=IMPORT_COLUMNS)
    for c in ("received_at", "stored_at", "finished_at"):
        if c not in b:
            b[c] = None
        t = pd.to_datetime(b[c], utc=True, errors="coerce", format="ISO8601")
        b[c] = t.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    for c in ("rows_in", "rows_curated", "rows_quarantined", "rows_duplicate"):
        b[c] = pd.to_numeric(b[c], errors="coerce").fillna(0).astype("int64")
    b = b.sort_values(["stored_at", "batch_id"], ascending=False)
    if limit is not None:
        b = b.head(limit)
    return b[IMPORT_COLUMNS].reset_index(drop=True)


def bill_reconciliation(lake, months: list[str], *, tolerance: float = 0.02,
                        consumption: pd.DataFrame | None = None,
                        candidates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Bills against meters, per month, source and item with an activity datum
    (:func:`workbench.inventory.sources.reconcile`, the inventory's reconciliation):

    ``month``, ``source``, ``item``; ``unit`` of every quantity of the row (the datum's unit: the
    bill's, the ledger's, or the item's default for meters); ``invoice`` the billed quantity of
    the supplier's bills, ``ledger`` that of the activity records (NaN when none); ``billed`` the
    quantity checked — the bills, else the ledger — and ``billed_basis`` which (``invoice`` ·
    ``ledger``; empty when neither); ``meters`` the metered consumption: the main (boundary)
    meters' total where there are main meters, else the sum of the sub-meters; ``difference``
    billed − meters (in ``unit``); ``ratio`` billed ÷ meters (dimensionless); ``min_completeness``
    the lowest completeness of the meters behind ``meters`` (0–1); ``datum_basis`` what the
    inventory takes as the datum; ``status`` ``ok`` (|ratio − 1| ≤ ``tolerance``),
    ``beyond tolerance``, ``no meters`` or ``no bill``; ``flagged`` true when beyond tolerance.
    """
    out = pd.DataFrame(columns=RECONCILIATION_COLUMNS)
    if not months:
        return out
    cons = lake_meter_consumption(lake, months, interval_minutes=INTERVAL_MINUTES) if consumption is None \
        else consumption
    cand = _candidates(lake, months, cons) if candidates is None else candidates
    if cand.empty:
        return out
    chosen, _ = choose(cand)
    r = reconcile(cand, chosen, cons)
    if r.empty:
        return out
    r = r.rename(columns={"period": "month", "basis": "datum_basis"})
    r["billed"] = r["invoice"].where(r["invoice"].notna(), r["ledger"])
    r["billed_basis"] = np.where(r["invoice"].notna(), "invoice", np.where(r["ledger"].notna(), "ledger", ""))
    r["difference"] = r["billed"] - r["meters"]
    with np.errstate(divide="ignore", invalid="ignore"):
        r["ratio"] = np.where(r["meters"] > 0, r["billed"] / r["meters"], np.nan)
    beyond = (r["ratio"] - 1).abs() > tolerance
    r["status"] = np.select([r["meters"].isna(), r["billed"].isna(), beyond | r["ratio"].isna()],
                            ["no meters", "no bill", "beyond tolerance"], "ok")
    r["flagged"] = r["status"].eq("beyond tolerance")
    return r[RECONCILIATION_COLUMNS].sort_values(["month", "source", "item"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------- all
def data_status(lake, *, start=None, end=None, tolerance: float = 0.02, imports: int | None = 50) -> DataStatus:
    """The data status of ``lake`` (one enterprise's lake: ``Lake(root, enterprise=ID)``) over the
    months ``start``..``end`` (inclusive; a bound not given: the lake's first / last month with
    data, :func:`status_months`).  ``tolerance``: the relative bill–meter difference beyond which
    a month is flagged (0.02 = 2 %); ``imports``: how many of the last imports to list.

    The monthly consumption of the meters and the activity candidates are computed once and shared
    by the steps (see the module doc)."""
    months = status_months(lake, start, end)
    notes = [] if months else ["the lake holds no consumption, activity records or bills"]
    if months:
        cons = lake_meter_consumption(lake, months, interval_minutes=INTERVAL_MINUTES)
        cand = _candidates(lake, months, cons)
    else:
        cons = cand = None
    q = quarantined_rows(lake, months)
    return DataStatus(
        enterprise=lake.enterprise, months=months,
        meters=meter_completeness(lake, months, consumption=cons, quarantine=q),
        sources=source_completeness(lake, months, consumption=cons, candidates=cand),
        quarantine=quarantine_summary(q), quarantine_rows=q,
        imports=recent_imports(lake, limit=imports),
        reconciliation=bill_reconciliation(lake, months, tolerance=tolerance, consumption=cons, candidates=cand),
        tolerance=tolerance, notes=notes)
