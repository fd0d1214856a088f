"""The one write path of the lake: raw zone → mapping → preparation → curated zone (+ quarantine).

Every connector's :class:`connectors.ConnectorResult` goes through :func:`ingest`, so that
immutability of raw data, idempotency, quarantine and lineage are solved once.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from .lake import IngestReport, Lake

__all__ = ["ingest"]

_KEY = ["meter_id", "ts", "quantity"]


def ingest(lake: Lake, result, *, sender: str, mapping=None, identifiers=None) -> IngestReport:
    """Ingest one connector result.  ``mapping``: a :class:`workbench.mapping.Mapping`;
    ``identifiers``: a :class:`workbench.identifiers.middleware.SourceRegistry` — after mapping,
    every record gets the identifier of its source, and records of an unregistered source are
    quarantined with the reason (:func:`~workbench.identifiers.middleware.attach_identifiers`)."""
    meta = result.metadata
    source = str(meta.get("source") or meta.get("connector") or "unknown")
    # a big batch of readings is hashed and copied into the raw zone while it is being prepared
    # (both mostly release the GIL); nothing is curated before the raw bytes are safely stored
    overlap = result.kind == "readings" and len(result.data) >= 200_000
    pool = ThreadPoolExecutor(max_workers=1) if overlap else None
    raw_future = pool.submit(lake.put_raw, result, sender=sender) if overlap else None
    try:
        if not overlap:
            batch_id, dup_of, raw_path = lake.put_raw(result, sender=sender)
            if dup_of:
                return _duplicate(lake, result, batch_id, dup_of, source)
        quarantined = []
        rejected = meta.get("rejected")  # rows the connector could not parse
        if isinstance(rejected, pd.DataFrame) and len(rejected):
            quarantined.append(rejected.assign(reason=rejected["reason"].astype(str)))
        # copy-on-write (pandas ≥ 3): a shallow copy is safe and avoids copying millions of rows
        data = result.data.copy(deep=False)
        if mapping is not None:
            data, unmapped = mapping.apply(data, kind=result.kind, source=source)
            if len(unmapped):
                quarantined.append(unmapped)
        staged, failure = None, None
        try:
            meter_ids = None
            if identifiers is not None:  # a resolver that fails (unreachable node) fails the batch
                data, meter_ids = _attach_identifiers(lake, data, result.kind, identifiers, quarantined)
            if result.kind == "readings":
                staged = _stage_readings(lake, data, quarantined, identifiers=meter_ids)
        except Exception as exc:  # recorded on the batch once its raw bytes are stored
            failure = exc
        if overlap:
            batch_id, dup_of, raw_path = raw_future.result()
            if dup_of:
                return _duplicate(lake, result, batch_id, dup_of, source)
        if failure is not None:
            lake._finish_batch(IngestReport(batch_id=batch_id, source=source, kind=result.kind, status="failed",
                                            rows_in=len(result.data), raw_path=raw_path,
                                            message=f"{type(failure).__name__}: {failure}"))
            raise failure
    finally:
        if pool is not None:
            pool.shutdown()
    report = IngestReport(batch_id=batch_id, source=source, kind=result.kind, status="stored",
                          rows_in=len(result.data), raw_path=raw_path)
    try:
        if result.kind == "readings":
            _write_readings(lake, staged, batch_id, report)
        elif result.kind == "activity":
            _ingest_activity(lake, data, batch_id, report, quarantined, origin=str(meta.get("origin", "")))
        elif result.kind == "invoice":
            _ingest_invoices(lake, data, batch_id, report, quarantined)
    except Exception as exc:  # the raw bytes are kept; the batch says why nothing was curated
        report.status, report.message = "failed", f"{type(exc).__name__}: {exc}"
        lake._finish_batch(report)
        raise
    if quarantined:
        q = pd.concat(quarantined, ignore_index=True)
        report.rows_quarantined = lake.quarantine(q, batch_id=batch_id, table=result.kind)
    lake._finish_batch(report)
    return report


def _duplicate(lake, result, batch_id, dup_of, source) -> IngestReport:
    report = IngestReport(batch_id=batch_id, source=source, kind=result.kind, status="duplicate_upload",
                          rows_in=len(result.data), rows_duplicate=len(result.data), duplicate_of=dup_of,
                          message=f"the same bytes from {source} were stored as batch {dup_of}; nothing changed")
    lake._finish_batch(report)
    return report


# ------------------------------------------------------------------------------ identifiers
def _attach_identifiers(lake, data, kind, registry, quarantined):
    """The identifier middleware step; returns the accepted rows and, for readings, meter → identifier."""
    from .identifiers.middleware import attach_identifiers

    if kind in ("readings", "activity") and "row" not in data.columns:
        # number the rows before any are taken out, as preparation would have numbered them
        # (readings: position; activity: spreadsheet row, header on row 1)
        data = data.assign(row=np.arange(len(data)) + (0 if kind == "readings" else 2))
    known = None
    if kind == "readings":  # identifiers the lake's meter registry already gives meters must agree
        meters = lake.meters()
        if "identifier" in meters.columns:
            ok = meters["identifier"].notna() & meters["identifier"].astype(str).ne("")
            known = dict(zip(meters.loc[ok, "meter_id"].astype(str), meters.loc[ok, "identifier"].astype(str)))
    accepted, rejected = attach_identifiers(data, kind, registry, known=known)
    if len(rejected):
        quarantined.append(rejected)
    meter_ids = None
    if kind == "readings" and "identifier" in accepted.columns and len(accepted):
        # meter → identifier from each meter's first row (one hash pass, no per-row strings)
        codes, uniq = pd.factorize(accepted["meter_id"])
        first = np.empty(len(uniq), np.int64)
        first[codes[::-1]] = np.arange(len(codes))[::-1]
        ident = accepted["identifier"].astype("category")
        names = np.asarray(ident.cat.categories, dtype=object)
        meter_ids = dict(zip((str(u) for u in uniq), names[ident.cat.codes.to_numpy()[first]]))
    return accepted, meter_ids


# ------------------------------------------------------------------------------ readings
def _previous(lake: Lake, meter_ids, before) -> pd.DataFrame | None:
    """Last stored reading per meter before ``before`` (register continuity across batches)."""
    if "readings" not in lake.tables():
        return None
    ids = pd.DataFrame({"meter_id": pd.unique(np.asarray(meter_ids, dtype=object))})
    sql = """SELECT r.meter_id, r.quantity, max(r.ts) AS ts, arg_max(r.value, r.ts) AS value
             FROM readings r JOIN ids USING (meter_id) WHERE r.ts < ? GROUP BY ALL"""
    # the last two days' files first (a continuous stream finds every meter there); the whole
    # lake only for meters not seen lately
    out = []
    for between in ((pd.Timestamp(before) - pd.Timedelta(days=2), pd.Timestamp(before)), None):
        con = lake.connect(tables=("readings",), registries=False, between=between)
        try:
            if "readings" not in {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}:
                continue
            con.register("ids", ids)
            found = con.execute(sql, [before]).df()
        finally:
            con.close()
        out.append(found)
        ids = ids[~ids["meter_id"].isin(found["meter_id"])]
        if ids.empty:
            break
    return pd.concat(out, ignore_index=True) if out else None


def _stage_readings(lake, data, quarantined, identifiers=None) -> dict:
    """Prepare a batch and compare it with what is stored — no writes yet.  ``identifiers``:
    meter_id → identifier attached by the identifier middleware (curated with the readings)."""
    from .prepare import prepare_readings

    meters = lake.meters()
    if meters.empty:
        raise ValueError("no meters registered in the lake (Lake.register_meters)")
    if identifiers:
        given = meters["identifier"] if "identifier" in meters.columns else pd.Series(None, index=meters.index)
        meters = meters.assign(identifier=meters["meter_id"].astype(str).map(identifiers).where(
            lambda s: s.notna(), given))
    before = pd.to_datetime(data["ts"], errors="coerce").min() if len(data) else None
    previous = _previous(lake, data["meter_id"], before) if before is not None and pd.notna(before) else None
    prep = prepare_readings(data, meters, previous=previous)
    if len(prep.quarantine):
        quarantined.append(prep.quarantine)
    readings, duplicates, conflicts, conflict_keys = _against_stored(lake, prep.readings, "readings")
    if len(conflicts):
        quarantined.append(conflicts)
    cons = prep.consumption
    if len(conflict_keys) and len(cons):  # consumption derived from a quarantined reading goes with it
        k = cons[_KEY].merge(conflict_keys, on=_KEY, how="left", indicator=True)["_merge"].eq("both").to_numpy()
        cons = cons[~k]
    consumption, _, cons_conflicts, _ = _against_stored(lake, cons, "consumption")
    if len(cons_conflicts):
        quarantined.append(cons_conflicts.assign(reason="consumption " + cons_conflicts["reason"]))
    return {"readings": readings, "consumption": consumption, "duplicates": duplicates,
            "counts": prep.counts, "quarantined": quarantined}


def _write_readings(lake, staged, batch_id, report):
    readings, consumption = staged["readings"], staged["consumption"]
    report.rows_curated = lake.write_table("readings", readings, batch_id=batch_id)
    lake.write_table("consumption", consumption, batch_id=batch_id)
    report.rows_duplicate = staged["duplicates"] + int(staged["counts"].get("duplicate", 0))
    report.counts = {k: int(v) for k, v in staged["counts"].items()}
    if len(readings):
        _evaluate_quality(lake, batch_id, report, readings["ts"].min(), readings["ts"].max(), staged["counts"])


def _evaluate_quality(lake, batch_id, report, lo, hi, counts) -> None:
    """Run the lake's quality rules (if configured) over the months the batch touched."""
    rules_path = lake.get_state("quality_rules")
    if not rules_path:
        return
    from .quality import evaluate, load_rules

    start = pd.Timestamp(lo).to_period("M").start_time
    end = (pd.Timestamp(hi).to_period("M") + 1).start_time
    con = lake.connect()
    try:
        q = evaluate(con, load_rules(rules_path), period=(start, end), counts=counts)
    finally:
        con.close()
    res = q.results.copy()
    if res.empty:
        return
    res["evaluated_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
    res["trigger_batch"] = batch_id
    for c in res.columns:
        if res[c].dtype == object:
            res[c] = res[c].astype(str)
    lake.write_table("quality_results", res, batch_id=batch_id, date_column="evaluated_at")
    report.counts["quality_rules_failed"] = int((~res["passed"].astype(bool)).sum())


def _against_stored(lake, df: pd.DataFrame, table: str):
    """Split prepared rows into new rows, a count of rows already stored with the same value, and
    conflicts (same key, different stored value) to quarantine."""
    none = pd.DataFrame(columns=_KEY)
    if df is None or df.empty or table not in lake.tables():
        return df, 0, pd.DataFrame(), none
    lo, hi = df["ts"].min(), df["ts"].max()
    con = lake.connect(tables=(table,), registries=False, between=(lo, hi))
    try:
        if table not in {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}:
            return df, 0, pd.DataFrame(), none          # nothing stored in that span
        con.register("batch", df)
        stored = con.execute(f"""SELECT s.meter_id, s.ts, s.quantity, s.value AS stored_value, s.batch_id AS stored_batch
                                 FROM {table} s SEMI JOIN batch b USING (meter_id, ts, quantity)
                                 WHERE s.ts BETWEEN ? AND ?""", [lo, hi]).df()
    finally:
        con.close()
    if stored.empty:
        return df, 0, pd.DataFrame(), none
    m = df.merge(stored, on=_KEY, how="left", indicator=True)
    seen = m["_merge"].eq("both").to_numpy()
    same = seen & np.isclose(m["value"].to_numpy(dtype=float), m["stored_value"].to_numpy(dtype=float),
                             rtol=1e-12, atol=0, equal_nan=True)
    conflict = seen & ~same
    conflicts = m[conflict]
    q = pd.DataFrame({
        "row": conflicts["row"] if "row" in conflicts else None,
        "reason": [f"conflicts with stored value {sv} from batch {sb}" for sv, sb in
                   zip(conflicts["stored_value"], conflicts["stored_batch"])],
        "payload": [json.dumps({k: str(v) for k, v in r.items()}, ensure_ascii=False)
                    for r in conflicts[df.columns].to_dict("records")],
    })
    return df[~seen].reset_index(drop=True), int(same.sum()), q, conflicts[_KEY]


# ------------------------------------------------------------------------------ activity
def _ingest_activity(lake, data, batch_id, report, quarantined, origin):
    from .activity import ActivityDataError, normalize_activity

    rows = data.reset_index(drop=True)
    first_row = 2
    ident = None
    if "identifier" in rows.columns:  # attached by the identifier middleware: curated with the rows
        ident = rows["identifier"].astype(object)
        rows = rows.drop(columns="identifier")
    if "row" in rows.columns:  # connectors that already numbered the source rows
        src_rows = pd.to_numeric(rows["row"], errors="coerce")
        rows = rows.drop(columns="row")
    else:
        src_rows = pd.Series(np.arange(len(rows)) + first_row)
    bad_idx: dict[int, list[str]] = {}
    try:
        norm = normalize_activity(rows, origin=origin or "batch", first_row=first_row)
    except ActivityDataError as err:
        for p in err.problems:
            if p.row is None:
                raise
            bad_idx.setdefault(p.row - first_row, []).append(f"{p.column}: {p.message}" if p.column else p.message)
        good = rows.drop(index=list(bad_idx))
        norm = normalize_activity(good, origin=origin or "batch", first_row=first_row) if len(good) else None
        if norm is not None:
            norm["row"] = src_rows.loc[good.index].to_numpy()
            if ident is not None:
                norm["identifier"] = ident.loc[good.index].to_numpy()
    else:
        norm["row"] = src_rows.to_numpy()
        if ident is not None:
            norm["identifier"] = ident.to_numpy()
    if bad_idx:
        bad = rows.loc[list(bad_idx)]
        quarantined.append(pd.DataFrame({
            "row": src_rows.loc[bad.index].to_numpy(),
            "reason": ["; ".join(bad_idx[i]) for i in bad.index],
            "payload": [json.dumps({k: (None if pd.isna(v) else str(v)) for k, v in r.items()}, ensure_ascii=False)
                        for r in bad.to_dict("records")],
        }))
    if norm is not None and len(norm):
        norm = norm.assign(quality_flag="ok", period_date=pd.to_datetime(norm["period"].str.slice(0, 7) + "-01"))
        report.rows_curated = lake.write_table("activity", norm, batch_id=batch_id, date_column="period_date")


def _ingest_invoices(lake, data, batch_id, report, quarantined):
    """Invoices: trusted fields go to ``invoices``; rows that need review stay out (in quarantine)."""
    need = data.get("needs_review", pd.Series(False, index=data.index)).fillna(True).astype(bool)
    review = data[need]
    if len(review):
        quarantined.append(pd.DataFrame({
            "row": np.arange(len(review)) + 1,
            "reason": "needs review: OCR confidence below threshold",
            "payload": [json.dumps({k: (None if pd.isna(v) else str(v)) for k, v in r.items()}, ensure_ascii=False)
                        for r in review.to_dict("records")],
        }))
    ok = data[~need].copy()
    if len(ok):
        ok["date"] = pd.to_datetime(ok["date"])
        report.rows_curated = lake.write_table("invoices", ok, batch_id=batch_id, date_column="date")
