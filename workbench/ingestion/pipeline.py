"""The one write path of the lake: raw zone → mapping → preparation → curated zone (+ quarantine).

Every connector's :class:`connectors.ConnectorResult` goes through :func:`ingest`, so that
immutability of raw data, idempotency, quarantine and lineage are solved once.
"""
from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from workbench.lake.store import SERIES_TABLES, IngestReport, Lake

__all__ = ["Preview", "ingest", "preview"]

log = logging.getLogger(__name__)

_KEY = ["meter_id", "ts", "quantity"]


def ingest(lake: Lake, result, *, sender: str, mapping=None, identifiers=None,
           enterprise: str | None = None) -> IngestReport:
    """The one write path: ``result`` (a :class:`~workbench.core.results.ConnectorResult`) → raw
    zone → mapping → identifiers → preparation → curated zone (+ quarantine) of ``lake``, or of
    its ``enterprise``'s lake when given.  ``sender`` names who delivered it (audit).

    ``mapping``: a :class:`workbench.ingestion.mapping.Mapping`;
    ``identifiers``: a :class:`workbench.identifiers.middleware.SourceRegistry` — after mapping,
    every record gets the identifier of its source, and records of an unregistered source are
    quarantined with the reason (:func:`~workbench.identifiers.middleware.attach_identifiers`).

    Batches are ingested one at a time per lake (an inter-process file lock from the look-ups to
    the commit): two writers — e.g. gateways sharing one MQTT subscription — never derive
    consumption from the same stored reading twice, and :meth:`Lake.gc` never takes a batch's
    not-yet-registered files for a crash's orphans."""
    if enterprise is not None and enterprise != lake.enterprise:
        lake = lake.for_enterprise(enterprise)
    with lake.ingest_lock():
        return _ingest(lake, result, sender=sender, mapping=mapping, identifiers=identifiers)


class Preview:
    """What :func:`ingest` would store (:func:`preview`): ``tables`` (curated table → rows),
    ``quarantine`` (the rows that would be quarantined, with ``table`` and ``reason``) and
    ``report`` (the :class:`IngestReport` the batch would get; its batch id is ``dry-run``)."""

    def __init__(self, report: IngestReport, tables: dict, quarantine: pd.DataFrame):
        self.report, self.tables, self.quarantine = report, tables, quarantine

    def table(self, name: str) -> pd.DataFrame:
        return self.tables.get(name, pd.DataFrame())


class _DryRun:
    """A lake as the batch's steps see it in a dry run: reads go to the lake, writes are kept here."""

    def __init__(self, lake: Lake, extra_meters: pd.DataFrame | None = None):
        self._lake, self._extra = lake, extra_meters
        self.tables: dict[str, list] = {}
        self.quarantined: list[pd.DataFrame] = []

    def __getattr__(self, name):
        return getattr(self._lake, name)

    def meters(self, *, normalized: bool = False) -> pd.DataFrame:
        m = self._lake.meters(normalized=False)
        if self._extra is not None and len(self._extra):
            m = pd.concat([m, self._extra[~self._extra["meter_id"].astype(str).isin(set(m["meter_id"].astype(str))
                                                                                        if len(m) else set())]],
                          ignore_index=True)
        if normalized:
            from workbench.core.meters import normalize_meters
            return normalize_meters(m)
        return m

    def put_raw(self, result, *, sender: str):
        return "dry-run", None, ""

    def get_state(self, key: str, default=None):
        return None if key == "quality_rules" else self._lake.get_state(key, default)

    def write_table(self, table: str, df: pd.DataFrame, *, batch_id: str, date_column: str = "ts", pending=None) -> int:
        if df is not None and len(df):
            self.tables.setdefault(table, []).append(df)
        return 0 if df is None else len(df)

    def quarantine(self, rows: pd.DataFrame, *, batch_id: str, table: str, pending=None) -> int:
        self.quarantined.append(rows.assign(table=table))
        return len(rows)

    def commit_batch(self, pending: list, report: IngestReport | None = None) -> None:
        pass

    def _finish_batch(self, report: IngestReport, db=None) -> None:
        pass


def preview(lake: Lake, result, *, mapping=None, identifiers=None, enterprise: str | None = None,
            extra_meters: pd.DataFrame | None = None) -> Preview:
    """Run ``result`` through every step of :func:`ingest` without writing anything (no raw bytes,
    no batch, no curated rows): what would be stored and what quarantined, and why.  The lake is
    only read (meter register, stored readings that cumulative registers continue from, duplicates).
    ``extra_meters``: meters to take as registered (those an import proposes to register)."""
    if enterprise is not None and enterprise != lake.enterprise:
        lake = lake.for_enterprise(enterprise)
    dry = _DryRun(lake, extra_meters)
    report = _ingest(dry, result, sender="dry-run", mapping=mapping, identifiers=identifiers)
    tables = {k: pd.concat(v, ignore_index=True) if len(v) > 1 else v[0] for k, v in dry.tables.items()}
    q = pd.concat(dry.quarantined, ignore_index=True) if dry.quarantined else \
        pd.DataFrame(columns=["row", "column", "reason", "payload", "table"])
    return Preview(report, tables, q)


def _ingest(lake: Lake, result, *, sender: str, mapping=None, identifiers=None) -> IngestReport:
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
                telemetry = meta.get("telemetry")
                if isinstance(telemetry, pd.DataFrame) and len(telemetry):
                    staged["telemetry"] = _stage_telemetry(lake, telemetry, quarantined)
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
    telemetry = meta.get("telemetry")
    report = IngestReport(batch_id=batch_id, source=source, kind=result.kind, status="stored",
                          rows_in=len(result.data) + (len(telemetry) if isinstance(telemetry, pd.DataFrame) else 0),
                          raw_path=raw_path)
    # every curated table and the quarantine of the batch, and its outcome, are committed in one
    # manifest transaction (Lake.commit_batch): a process killed half-way leaves nothing visible
    pending: list = []
    try:
        if result.kind == "readings":
            _write_readings(lake, staged, batch_id, report, pending)
        elif result.kind == "activity":
            _ingest_activity(lake, data, batch_id, report, quarantined, origin=str(meta.get("origin", "")),
                             pending=pending)
        elif result.kind == "invoice":
            _ingest_invoices(lake, data, batch_id, report, quarantined, pending=pending)
        elif result.kind == "production":
            _ingest_production(lake, data, batch_id, report, quarantined, pending=pending)
        if quarantined:
            q = pd.concat(quarantined, ignore_index=True)
            report.rows_quarantined = lake.quarantine(q, batch_id=batch_id, table=result.kind, pending=pending)
        lake.commit_batch(pending, report)
    except Exception as exc:  # the raw bytes are kept; the batch says why nothing was curated
        report.status, report.message = "failed", f"{type(exc).__name__}: {exc}"
        report.rows_curated = report.rows_quarantined = 0
        lake._finish_batch(report)
        raise
    if result.kind == "readings" and len(staged["readings"]):
        readings = staged["readings"]
        try:        # derived results: the batch is stored whatever happens here
            _evaluate_quality(lake, batch_id, report, readings["ts"].min(), readings["ts"].max(), staged["counts"])
        except Exception as exc:  # noqa: BLE001 - logged and reported, the rules run again next batch
            log.warning("quality rules after batch %s failed: %s: %s", batch_id, type(exc).__name__, exc)
            report.message = f"stored; quality rules failed: {type(exc).__name__}: {exc}"
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
    from workbench.identifiers.middleware import attach_identifiers

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
def _previous(lake: Lake, meter_ids, first_local) -> pd.DataFrame | None:
    """Last stored reading per meter (and quantity) before that meter's first reading in the
    batch (register continuity across batches).  ``first_local``: the batch rows' timestamps as
    naive local µs (NaT for unparseable ones).

    A meter whose watermark (latest stored reading) is before its first new reading continues from
    the watermark — no file is read; only meters with stored readings at or after their first new
    one (late data, redelivery) are looked up in the files."""
    codes, uniq = pd.factorize(np.asarray(meter_ids, dtype=object) if not hasattr(meter_ids, "dtype") else meter_ids)
    uniq = pd.Index(uniq).astype(str)
    marks = lake.watermarks("readings", uniq)          # a new meter or a new lake: nothing to continue
    if marks.empty:
        return None
    t = pd.Series(np.asarray(first_local, dtype="datetime64[us]"))
    ok = t.notna().to_numpy() & (codes >= 0)
    if not ok.any():
        return None
    first = t[ok].groupby(codes[ok]).min()
    first.index = uniq[first.index]
    latest = marks.groupby("meter_id")["ts"].max()
    scan = latest[latest >= first.reindex(latest.index)].index
    out = [marks[~marks["meter_id"].isin(scan)]]
    if len(scan):
        ids = pd.DataFrame({"meter_id": scan, "before": first.reindex(scan).to_numpy()})
        sql = """SELECT r.meter_id, r.quantity, max(r.ts) AS ts, arg_max(r.value, r.ts) AS value
                 FROM readings r JOIN ids USING (meter_id) WHERE r.ts < ids.before GROUP BY ALL"""
        lo, hi = ids["before"].min(), ids["before"].max()
        # the last two days' files first (a continuous stream finds every meter there); the whole
        # lake only for meters not found there
        for between in ((lo - pd.Timedelta(days=2), hi), None):
            con = lake.connect(tables=("readings",), registries=False, between=between)
            try:
                if "readings" not in {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}:
                    continue
                con.register("ids", ids)
                found = con.execute(sql).df()
            finally:
                con.close()
            out.append(found)
            ids = ids[~ids["meter_id"].isin(found["meter_id"])]
            if ids.empty:
                break
    return pd.concat(out, ignore_index=True)


def _out_of_order_rows(lake, meters, meter_ids, t_local) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Rows of cumulative registers timed before their meter's latest stored reading: ``early``
    (before its first stored reading too) and ``late`` (inside the stored span); and the marks.
    Per distinct meter, not per row, until a meter has stored readings."""
    none = np.zeros(len(t_local), bool)
    cum = meters.loc[meters["register"] == "cumulative", "meter_id"]
    if cum.empty:
        return none, none, pd.DataFrame()
    codes, uniq = pd.factorize(meter_ids)
    uniq = pd.Index(uniq).astype(str)
    wanted = uniq[uniq.isin(cum)]
    if wanted.empty:
        return none, none, pd.DataFrame()
    marks = lake.watermarks("readings", wanted)
    if marks.empty:
        return none, none, marks
    by_meter = marks.groupby("meter_id")
    nat = np.datetime64("NaT", "us")
    lut_latest = np.append(by_meter["ts"].max().reindex(uniq).to_numpy(dtype="datetime64[us]"), nat)
    lut_first = np.append(by_meter["first_ts"].min().reindex(uniq).to_numpy(dtype="datetime64[us]"), nat)
    latest, first = lut_latest[codes], lut_first[codes]          # code −1 (missing id) → NaT
    before = ~np.isnat(latest) & (t_local < latest)
    early = before & (t_local < first)
    return early, before & ~early, marks


def _stage_out_of_order(meters, late, early, marks, counts, quarantined) -> list[pd.DataFrame]:
    """Prepared readings and consumption of register readings that arrived out of order.

    ``late`` ones (inside the stored span) are kept, flagged ``late``: the stored readings around
    them already carry that span's consumption, so they add none.  ``early`` ones (before the
    first stored reading) extend the register backwards: consumption from each to the next, the
    last one to the first stored reading."""
    from workbench.ingestion.prepare import prepare_readings

    out_r, out_c = [], []
    if late is not None:
        lp = prepare_readings(late, meters)
        flag = lp.readings["quality_flag"].astype(str)
        out_r.append(lp.readings.assign(quality_flag=np.where(flag == "ok", "late", flag + "|late")))
        parts = [(lp, len(lp.readings))]
    else:
        parts = []
    if early is not None:
        ids = early["meter_id"].astype(str).unique()
        anchor = marks[marks["meter_id"].isin(ids)]
        unit = meters.set_index("meter_id")["unit"]
        # the first stored reading closes the last early interval; it is stored already, so only
        # its consumption counts here
        stored_first = pd.DataFrame({"meter_id": anchor["meter_id"].to_numpy(),
                                     "ts": anchor["first_ts"].to_numpy(dtype="datetime64[us]"),
                                     "quantity": anchor["quantity"].to_numpy(),
                                     "value": anchor["first_value"].to_numpy(),
                                     "unit": unit.reindex(anchor["meter_id"]).to_numpy(), "row": -1})
        cols = [c for c in ("meter_id", "ts", "quantity", "value", "unit", "row", "identifier") if c in early.columns]
        ep = prepare_readings(pd.concat([early[cols], stored_first], ignore_index=True), meters)
        keep = ~ep.readings.set_index(["meter_id", "ts", "quantity"]).index.isin(
            stored_first.set_index(["meter_id", "ts", "quantity"]).index)
        out_r.append(ep.readings[keep])
        out_c.append(ep.consumption)
        parts.append((ep, int(keep.sum())))
    for p, n in parts:
        if len(p.quarantine):
            quarantined.append(p.quarantine)
        for k, v in p.counts.items():
            if k != "rows_in":
                counts[k] = counts.get(k, 0) + v
    counts["late"] = counts.get("late", 0) + (len(out_r[0]) if late is not None else 0)
    counts["early"] = counts.get("early", 0) + (parts[-1][1] if early is not None else 0)
    return out_r, out_c


def _stage_readings(lake, data, quarantined, identifiers=None) -> dict:
    """Prepare a batch and compare it with what is stored — no writes yet.  ``identifiers``:
    meter_id → identifier attached by the identifier middleware (curated with the readings)."""
    from workbench.ingestion.prepare import LOCAL_TZ, _local_us, prepare_readings

    meters = lake.meters(normalized=True)
    if meters.empty and len(data):
        whose = f"the lake of enterprise {lake.enterprise!r}" if lake.enterprise else "the lake"
        sync = f"workbench lake sync --enterprise {lake.enterprise}" if lake.enterprise else "Lake.register_meters"
        raise ValueError(f"no meters registered in {whose}: take them from the master data ({sync}) "
                         "or give a meters.csv (--meters)")
    if identifiers:
        given = meters["identifier"] if "identifier" in meters.columns else pd.Series(None, index=meters.index)
        meters = meters.assign(identifier=meters["meter_id"].astype(str).map(identifiers).where(
            lambda s: s.notna(), given))
    previous, late, early, marks = None, None, None, None
    stored = len(data) and not lake.watermarks("readings").empty     # else nothing to continue or to be late for
    if stored:
        t_local = _local_us(data["ts"], LOCAL_TZ, None)[0].view("datetime64[us]")
        is_early, is_late, marks = _out_of_order_rows(lake, meters, data["meter_id"], t_local)
        if is_early.any() or is_late.any():
            if "row" not in data.columns:   # source rows numbered before the batch is split
                data = data.assign(row=np.arange(len(data)))
            if is_early.any():      # their times as naive local: prepare reads naive times as local
                early = data[is_early].assign(ts=t_local[is_early])
            if is_late.any():
                late = data[is_late]
            rest = ~(is_early | is_late)
            data, t_local = data[rest], t_local[rest]
        previous = _previous(lake, data["meter_id"], t_local)
    prep = prepare_readings(data, meters, previous=previous)
    if len(prep.quarantine):
        quarantined.append(prep.quarantine)
    new_readings, cons = prep.readings, prep.consumption
    if early is not None or late is not None:
        more_r, more_c = _stage_out_of_order(meters, late, early, marks, prep.counts, quarantined)
        new_readings = pd.concat([new_readings, *more_r], ignore_index=True)
        new_readings["quality_flag"] = new_readings["quality_flag"].astype(str).astype("category")
        if more_c:
            cons = pd.concat([cons, *more_c], ignore_index=True)
            cons["quality_flag"] = cons["quality_flag"].astype(str).astype("category")
    readings, duplicates, conflicts, conflict_keys = _against_stored(lake, new_readings, "readings")
    if len(conflicts):
        quarantined.append(conflicts)
    if len(conflict_keys) and len(cons):  # consumption derived from a quarantined reading goes with it
        k = cons[_KEY].merge(conflict_keys, on=_KEY, how="left", indicator=True)["_merge"].eq("both").to_numpy()
        cons = cons[~k]
    consumption, _, cons_conflicts, _ = _against_stored(lake, cons, "consumption")
    if len(cons_conflicts):
        quarantined.append(cons_conflicts.assign(reason="consumption " + cons_conflicts["reason"]))
    return {"readings": readings, "consumption": consumption, "duplicates": duplicates,
            "counts": prep.counts, "quarantined": quarantined}


def _stage_telemetry(lake, data: pd.DataFrame, quarantined) -> tuple[pd.DataFrame, int]:
    """Device telemetry of quantities that are not a lake meter's register (power, voltage,
    temperature …): ``device_id, ts, quantity, value, unit`` (optional ``node_id``, ``identifier``,
    ``row``).

    Kept as measured — unit checked with pint, time made naive local like every curated table —
    and idempotent on (device_id, ts, quantity): a row equal to a stored or an earlier row of the
    batch is counted as a duplicate, a different value for the same key is quarantined.
    Returns (new rows, duplicates)."""
    from workbench.core.units import UnitError, parse_unit
    from workbench.ingestion.prepare import LOCAL_TZ, _local_us

    n = len(data)
    rows = pd.to_numeric(data["row"], errors="coerce").to_numpy() if "row" in data else np.arange(n)
    why = np.full(n, None, dtype=object)
    t = _local_us(data["ts"], LOCAL_TZ, None)[0].view("datetime64[us]")
    why[np.isnat(t)] = "ts: missing or not a time"
    value = pd.to_numeric(data["value"], errors="coerce").to_numpy(dtype="float64")
    why[~np.isfinite(value) & pd.isna(why)] = "value: not a finite number"
    units = data["unit"].astype(str)
    for u in pd.unique(units):
        try:
            parse_unit(u)
        except UnitError as exc:
            why[(units == u).to_numpy() & pd.isna(why)] = f"unit: {exc}"
    device = data["device_id"].astype(str).to_numpy()
    out = pd.DataFrame({"device_id": device, "ts": t,
                        "quantity": data["quantity"].astype(str).to_numpy(), "value": value,
                        "unit": units.to_numpy(), "row": rows})
    for k, c in enumerate(("node_id", "identifier")):   # where the device sits, its identifier
        if c in data:
            out.insert(1 + k, c, data[c].astype(object).to_numpy())
    # the same key twice in one batch: identical → one row; different values → all quarantined
    key = ["device_id", "ts", "quantity"]
    dup = out.duplicated(key, keep=False) & pd.isna(why)
    dropped = 0
    if dup.any():
        d = out[dup]
        spread = d.groupby(key, sort=False)["value"].transform(lambda v: v.max() - v.min())
        conflict = d.index[spread.to_numpy() > 0]
        why[conflict] = "conflicting duplicate in the batch"
        extra = d.index[d.duplicated(key, keep="first").to_numpy() & (spread.to_numpy() == 0)]
        dropped = len(extra)
        out = out.drop(index=extra)
        why = np.delete(why, extra)
        rows = out["row"].to_numpy()
        out = out.reset_index(drop=True)
    bad = ~pd.isna(why)
    if bad.any():
        b = out[bad]
        quarantined.append(pd.DataFrame({
            "row": b["row"].to_numpy(), "column": "telemetry", "reason": why[bad],
            "payload": [json.dumps({k: str(v) for k, v in r.items()}, ensure_ascii=False)
                        for r in b.drop(columns="row").to_dict("records")]}))
        out = out[~bad].reset_index(drop=True)
    out = out.drop(columns="row").assign(quality_flag="ok")
    new, same, conflicts, _ = _against_stored(lake, out, "telemetry")
    if len(conflicts):
        quarantined.append(conflicts.assign(reason="telemetry " + conflicts["reason"]))
    return new, same + dropped


def _write_readings(lake, staged, batch_id, report, pending):
    readings, consumption = staged["readings"], staged["consumption"]
    report.rows_curated = lake.write_table("readings", readings, batch_id=batch_id, pending=pending)
    lake.write_table("consumption", consumption, batch_id=batch_id, pending=pending)
    report.rows_duplicate = staged["duplicates"] + int(staged["counts"].get("duplicate", 0))
    report.counts = {k: int(v) for k, v in staged["counts"].items()}
    if "telemetry" in staged:
        tel, tel_dup = staged["telemetry"]
        n = lake.write_table("telemetry", tel, batch_id=batch_id, pending=pending)
        report.rows_curated += n
        report.rows_duplicate += tel_dup
        report.counts.update(telemetry=n, telemetry_duplicate=tel_dup)


def _evaluate_quality(lake, batch_id, report, lo, hi, counts) -> None:
    """Run the lake's quality rules (if configured) over the months the batch touched."""
    rules_path = lake.get_state("quality_rules")
    if not rules_path:
        return
    from workbench.lake.quality import evaluate, load_rules

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
    conflicts (same key, different stored value) to quarantine.

    Rows later than their series' watermark are new without a look-up; only the others are
    compared with the stored files."""
    series = SERIES_TABLES[table]
    key = [series, "ts", "quantity"]
    none = pd.DataFrame(columns=key)
    if df is None or df.empty:
        return df, 0, pd.DataFrame(), none
    marks = lake.watermarks(table, pd.unique(df[series]))
    if marks.empty:
        return df, 0, pd.DataFrame(), none
    # series first (a stream's batch is all new: one small comparison), rows only if needed
    first = df.groupby([series, "quantity"], sort=False, observed=True)["ts"].min().rename("first").reset_index()
    first = first.merge(marks, on=[series, "quantity"], how="inner")
    if not (first["first"] <= first["ts"]).any():
        return df, 0, pd.DataFrame(), none
    wm = df[[series, "quantity"]].merge(marks, on=[series, "quantity"], how="left")["ts"]
    check = (pd.to_datetime(df["ts"]).to_numpy() <= wm.to_numpy()) & wm.notna().to_numpy()
    sub = df[check]
    lo, hi = sub["ts"].min(), sub["ts"].max()
    con = lake.connect(tables=(table,), registries=False, between=(lo, hi))
    try:
        if table not in {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}:
            return df, 0, pd.DataFrame(), none          # nothing stored in that span
        con.register("batch", sub)
        stored = con.execute(f"""SELECT s.{series}, s.ts, s.quantity, s.value AS stored_value, s.batch_id AS stored_batch
                                 FROM {table} s SEMI JOIN batch b USING ({series}, ts, quantity)
                                 WHERE s.ts BETWEEN ? AND ?""", [lo, hi]).df()
    finally:
        con.close()
    if stored.empty:
        return df, 0, pd.DataFrame(), none
    m = sub.merge(stored, on=key, how="left", indicator=True)
    seen_sub = m["_merge"].eq("both").to_numpy()
    same = seen_sub & np.isclose(m["value"].to_numpy(dtype=float), m["stored_value"].to_numpy(dtype=float),
                                 rtol=1e-12, atol=0, equal_nan=True)
    conflicts = m[seen_sub & ~same]
    q = pd.DataFrame({
        "row": conflicts["row"] if "row" in conflicts else None,
        "reason": [f"conflicts with stored value {sv} from batch {sb}" for sv, sb in
                   zip(conflicts["stored_value"], conflicts["stored_batch"])],
        "payload": [json.dumps({k: str(v) for k, v in r.items()}, ensure_ascii=False)
                    for r in conflicts[df.columns].to_dict("records")],
    })
    seen = np.zeros(len(df), bool)
    seen[np.flatnonzero(check)] = seen_sub
    return df[~seen].reset_index(drop=True), int(same.sum()), q, conflicts[key]


# ------------------------------------------------------------------------------ activity
def _payloads(rows: pd.DataFrame) -> list[str]:
    """Each quarantined row as it came, one JSON object of text (missing cells null)."""
    return [json.dumps({k: (None if pd.isna(v) else str(v)) for k, v in r.items()}, ensure_ascii=False)
            for r in rows.to_dict("records")]


def _ingest_activity(lake, data, batch_id, report, quarantined, origin, *, pending=None):
    from workbench.core.activity import ActivityDataError, normalize_activity

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
            "payload": _payloads(bad),
        }))
    if norm is not None and len(norm):
        # the lake keeps activity by month: a record without one cannot be stored (nor guessed)
        no_period = norm["period"].isna() | (norm["period"].astype(str).str.strip().isin(["", "nan", "None"]))
        if no_period.any():
            q = norm[no_period]
            quarantined.append(pd.DataFrame({
                "row": q["row"].to_numpy(),
                "reason": "period: missing — the lake keeps activity by month; give each record its "
                          "month (YYYY-MM) in a period column",
                "payload": _payloads(q.drop(columns=["row"])),
            }))
            norm = norm[~no_period]
    if norm is not None and len(norm):
        norm = norm.assign(quality_flag="ok", period_date=pd.to_datetime(norm["period"].str.slice(0, 7) + "-01"))
        report.rows_curated = lake.write_table("activity", norm, batch_id=batch_id, date_column="period_date",
                                               pending=pending)


def _ingest_invoices(lake, data, batch_id, report, quarantined, *, pending=None):
    """Invoices: trusted fields go to ``invoices``; rows that need review stay out (in quarantine)."""
    need = data.get("needs_review", pd.Series(False, index=data.index)).fillna(True).astype(bool)
    review = data[need]
    if len(review):
        quarantined.append(pd.DataFrame({
            "row": np.arange(len(review)) + 1,
            "reason": "needs review: OCR confidence below threshold",
            "payload": _payloads(review),
        }))
    ok = data[~need].copy()
    if len(ok):
        ok["date"] = pd.to_datetime(ok["date"])
        report.rows_curated = lake.write_table("invoices", ok, batch_id=batch_id, date_column="date", pending=pending)


# ------------------------------------------------------------------------------ production
_PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"


def _ingest_production(lake, data, batch_id, report, quarantined, *, pending=None):
    """Monthly output and value added (:mod:`connectors.production`'s long rows): each row
    checked — period YYYY-MM, a node (of the lake's boundary when one is registered), a finite
    quantity ≥ 0, a unit pint knows (value added in money) — bad rows quarantined with the
    reason.  A later batch with the same period, node, measure and product supersedes the
    earlier value when read (the lake keeps both)."""
    from workbench.core.units import UnitError, parse_unit, ureg

    d = data.reset_index(drop=True)
    n = len(d)
    why = np.full(n, None, dtype=object)
    col = np.full(n, "", dtype=object)

    def flag(mask, column, reason):
        mask = np.asarray(mask) & pd.isna(why)
        why[mask], col[mask] = reason, column

    period = d["period"].astype(str).str.strip()
    flag(~period.str.match(_PERIOD).to_numpy(), "period", "period must be YYYY-MM")
    node = d["node_id"].astype(str).str.strip()
    flag((node == "").to_numpy(), "node_id", "node_id is empty")
    boundary = lake.boundary()
    if len(boundary):
        flag(~node.isin(set(boundary["node_id"])).to_numpy(), "node_id", "node_id is not in the lake's boundary")
    measure = d["measure"].astype(str)
    flag(~measure.isin(["value_added", "output"]).to_numpy(), "measure", "measure must be value_added or output")
    q = pd.to_numeric(d["quantity"], errors="coerce").to_numpy(dtype="float64")
    flag(~np.isfinite(q), "quantity", "not a finite number")
    flag(np.isfinite(q) & (q < 0), "quantity", "negative")
    units = d["unit"].astype(str)
    for u in pd.unique(units):
        at = (units == u).to_numpy()
        try:
            unit = parse_unit(u)
        except UnitError as exc:
            flag(at, "unit", f"unit: {exc}")
            continue
        money = ureg.Quantity(1, unit).check("[currency]")
        flag(at & (measure == "value_added").to_numpy() & (not money), "unit", f"value added in {u}, not money")
    bad = ~pd.isna(why)
    if bad.any():
        b = d[bad]
        quarantined.append(pd.DataFrame({
            "row": pd.to_numeric(b.get("row", pd.Series(np.arange(n))[bad]), errors="coerce").to_numpy(),
            "column": col[bad], "reason": why[bad],
            "payload": [json.dumps({k: str(v) for k, v in r.items()}, ensure_ascii=False)
                        for r in b.to_dict("records")]}))
    ok = ~bad
    if not ok.any():
        return
    out = pd.DataFrame({"period": period[ok].to_numpy(), "node_id": node[ok].to_numpy(),
                        "measure": measure[ok].to_numpy(), "product": d.loc[ok, "product"].astype(str).to_numpy(),
                        "quantity": q[ok], "unit": units[ok].to_numpy(), "quality_flag": "ok"})
    if "row" in d:
        out["row"] = pd.to_numeric(d.loc[ok, "row"], errors="coerce").to_numpy()
    out["period_date"] = pd.to_datetime(out["period"] + "-01")
    report.rows_curated = lake.write_table("production", out, batch_id=batch_id, date_column="period_date",
                                           pending=pending)
