"""The data lake (seed §8.2): raw zone, curated zone with hot and cold tiers, quarantine.

* **raw zone** — every batch exactly as received (bytes), immutable, with sha256, source, connector,
  arrival time and sender, recorded in the ``batches`` table;
* **curated zone** — typed, unit-normalised Parquet, partitioned by date, each row with its
  quality flag and the id of the raw batch it came from;
* **tiers** (§8.2 n) — new data lands in the hot tier (one small file per batch and day);
  :meth:`Lake.compact` moves whole past days into the cold tier (one file per month and compaction);
  readers see both through the manifest;
* **quarantine** — rows that cannot be curated, with their reason and the original payload.
* **watermarks** — for the series tables (readings, consumption, telemetry) the manifest keeps, per
  (meter or device, quantity), the first and the latest stored ``ts`` with their values and when
  the latest was committed, updated in the same transaction that registers the files.  A row
  later than its series' watermark cannot be stored yet, so a stream of new readings is checked
  for duplicates and continued across batches without reading any file; only rows at or before
  the watermark (late data, redelivery) are looked up in the files.
* **one writer at a time** — every ingest holds :meth:`Lake.ingest_lock` (an inter-process file
  lock) from its look-ups to its commit; :meth:`Lake.rollup` merges a day's small hot files while
  writers go on.
* **many enterprises** — one lake root holds every enterprise: enterprise ``X``'s raw zone,
  curated zone, quarantine, meters, boundary, watermarks and manifest live under
  ``<root>/enterprises/X/`` (``Lake(root, enterprise="X")`` or ``lake.for_enterprise("X")``), and
  every curated row carries ``enterprise_id``.  An enterprise's lake object sees only its own
  manifest, so its reads cannot return another enterprise's rows (isolation by construction, not
  by a filter someone may forget); ``retrieve``, ``connect``, ``sql`` and ``ingest`` take
  ``enterprise=`` and go to that enterprise's lake.  A root used without an enterprise (lakes
  made before enterprises existed, single-enterprise use) keeps its data at the top level.

Crash safety: readers never list directories — the SQLite manifest (``files``) says which files are
live.  Writers create files first and register them in one transaction; compaction registers the
cold file and retires the hot ones in one transaction, and deletes retired files afterwards.  A crash
anywhere leaves either the old or the new set live, never both and never neither.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import fsspec
import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError

__all__ = ["Lake", "IngestReport", "LakeError", "CURATED_TABLES", "ENTERPRISES_DIR", "read_table"]

#: where a lake root keeps its enterprises' lakes
ENTERPRISES_DIR = "enterprises"

CURATED_TABLES = ("readings", "consumption", "activity", "invoices", "quality_results", "telemetry", "production")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, source TEXT, connector TEXT, origin TEXT, kind TEXT,
    raw_path TEXT, raw_name TEXT, sha256 TEXT, size INTEGER, received_at TEXT, stored_at TEXT,
    sender TEXT, status TEXT, duplicate_of TEXT, rows_in INTEGER, rows_curated INTEGER,
    rows_quarantined INTEGER, rows_duplicate INTEGER, message TEXT, metadata TEXT);
CREATE INDEX IF NOT EXISTS batches_sha ON batches (source, sha256);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, tbl TEXT, tier TEXT, part TEXT, rows INTEGER, batch_id TEXT,
    compaction_id TEXT, live INTEGER, created_at TEXT, retired_at TEXT);
CREATE INDEX IF NOT EXISTS files_live ON files (tbl, live, part);
CREATE TABLE IF NOT EXISTS compactions (
    compaction_id TEXT PRIMARY KEY, tbl TEXT, part TEXT, started_at TEXT, committed_at TEXT,
    files_in INTEGER, rows INTEGER);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT, updated_at TEXT);
CREATE TABLE IF NOT EXISTS meters (meter_id TEXT PRIMARY KEY, record TEXT);
CREATE TABLE IF NOT EXISTS watermarks (
    tbl TEXT, meter_id TEXT, quantity TEXT, ts INTEGER, value REAL, first_ts INTEGER, first_value REAL,
    stored_at REAL, PRIMARY KEY (tbl, meter_id, quantity)) WITHOUT ROWID;
"""
#: tables of time series keyed on (series, ts, quantity) → their series column; the manifest keeps
#: each series' watermark (the ``meter_id`` column of ``watermarks`` holds the series id)
SERIES_TABLES = {"readings": "meter_id", "consumption": "meter_id", "telemetry": "device_id"}
_MARK_COLUMNS = "meter_id, quantity, ts, value, first_ts, first_value, stored_at"
# the latest and the first stored row of a series (SET expressions see the row before the update)
_UPSERT_WATERMARK = """INSERT INTO watermarks VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(tbl, meter_id, quantity) DO UPDATE SET
    ts = max(ts, excluded.ts), value = CASE WHEN excluded.ts > ts THEN excluded.value ELSE value END,
    stored_at = CASE WHEN excluded.ts > ts THEN excluded.stored_at ELSE stored_at END,
    first_ts = min(first_ts, excluded.first_ts),
    first_value = CASE WHEN excluded.first_ts < first_ts THEN excluded.first_value ELSE first_value END"""


class LakeError(WorkbenchError, RuntimeError):
    pass


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class IngestReport:
    batch_id: str
    source: str
    kind: str
    status: str  # stored | duplicate_upload | rejected
    rows_in: int = 0
    rows_curated: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    duplicate_of: str | None = None
    raw_path: str | None = None
    counts: dict = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class Lake:
    """A lake rooted at ``root`` (a local folder or any fsspec URL).

    ``metadata`` is the SQLite file of the manifest; by default ``<root>/lake.db`` for a local
    root, else a file under ``~/.cache/workbench``.  ``enterprise``: the enterprise's lake in that
    root (see the module doc); ``None``: the root's own (unnamed) enterprise.
    """

    def __init__(self, root, *, metadata: str | os.PathLike | None = None, enterprise: str | None = None):
        from workbench.registry.codes import check_enterprise_id

        if isinstance(root, Lake):          # str() of a lake would silently become a folder's name
            raise TypeError("Lake(root): give the root's path or URL (a Lake is no root: use lake.for_enterprise(…))")
        self.base_url = str(root)
        self.enterprise = check_enterprise_id(enterprise) if enterprise else None
        self.url = self.base_url if self.enterprise is None else \
            f"{self.base_url.rstrip('/')}/{ENTERPRISES_DIR}/{self.enterprise}"
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self.fs.makedirs(self.root, exist_ok=True)
        if metadata is None:
            if self.local:
                metadata = Path(self.root) / "lake.db"
            else:
                h = hashlib.sha256(self.url.encode()).hexdigest()[:16]
                metadata = Path.home() / ".cache" / "workbench" / f"lake-{h}.db"
        self.metadata_path = Path(metadata)
        self.metadata_path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            cols = {r[1] for r in db.execute("PRAGMA table_info(watermarks)")}
            if cols and "stored_at" not in cols:      # an early layout: rebuilt from the files
                db.execute("DROP TABLE watermarks")
                db.execute("DELETE FROM state WHERE key = 'watermarks'")
            db.executescript(_SCHEMA)
            if "finished_at" not in {r[1] for r in db.execute("PRAGMA table_info(batches)")}:
                db.execute("ALTER TABLE batches ADD COLUMN finished_at TEXT")   # lakes made before it

    # ------------------------------------------------------------------ enterprises
    def for_enterprise(self, enterprise: str | None) -> Lake:
        """The lake of ``enterprise`` in this root (this lake itself when it is that one)."""
        from workbench.registry.codes import check_enterprise_id

        eid = check_enterprise_id(enterprise) if enterprise else None
        if eid == self.enterprise:
            return self
        cache = self.__dict__.setdefault("_enterprise_lakes", {})
        if eid not in cache:
            cache[eid] = Lake(self.base_url, enterprise=eid)
        return cache[eid]

    def enterprises(self) -> list[str]:
        """The named enterprises this root holds a lake of."""
        fs, base = fsspec.core.url_to_fs(self.base_url)
        folder = f"{base.rstrip('/')}/{ENTERPRISES_DIR}"
        if not fs.exists(folder):
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)
                      if fs.isdir(p))

    # ------------------------------------------------------------------ metadata
    @contextlib.contextmanager
    def _db(self):
        """The manifest connection of this thread (autocommit: no snapshot is held between
        statements; a transaction left open by an exception is rolled back)."""
        key = (os.getpid(), threading.get_ident())
        pool = self.__dict__.setdefault("_connections", {})
        db = pool.get(key)
        if db is None:
            db = sqlite3.connect(self.metadata_path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            if len(pool) >= 16:          # connections of threads that have ended
                alive = {t.ident for t in threading.enumerate()}
                for k in [k for k in pool if k[0] != key[0] or k[1] not in alive]:
                    with contextlib.suppress(Exception):
                        pool.pop(k).close()
            pool[key] = db
        try:
            yield db
        finally:
            if db.in_transaction:
                db.rollback()

    def ingest_lock(self):
        """An exclusive inter-process lock on this lake's ingestion (a file lock next to the
        manifest; released by the OS if its holder dies)."""
        from filelock import FileLock

        return FileLock(str(self.metadata_path) + ".ingest.lock")

    def _path(self, *parts) -> str:
        return "/".join([self.root.rstrip("/"), *[str(p).strip("/") for p in parts]])

    def batches(self) -> pd.DataFrame:
        with self._db() as db:
            return pd.read_sql_query("SELECT * FROM batches ORDER BY stored_at", db)

    def files(self, table: str | None = None, live_only: bool = True) -> pd.DataFrame:
        q = "SELECT * FROM files WHERE 1=1"
        args: list = []
        if table:
            q += " AND tbl = ?"
            args.append(table)
        if live_only:
            q += " AND live = 1"
        with self._db() as db:
            return pd.read_sql_query(q + " ORDER BY path", db, params=args)

    def get_state(self, key: str, default=None):
        with self._db() as db:
            row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_state(self, key: str, value) -> None:
        with self._db() as db:
            db.execute("INSERT INTO state VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                       "updated_at = excluded.updated_at", (key, json.dumps(value), _now()))

    # ------------------------------------------------------------------ meter registry
    def register_meters(self, meters: pd.DataFrame) -> int:
        """Store (or update) the meter registry used by preparation and mapping."""
        recs = [(str(r["meter_id"]), json.dumps({k: (None if pd.isna(v) else v) for k, v in r.items()}, default=str))
                for r in meters.to_dict("records")]
        with self._db() as db:
            db.execute("BEGIN")
            db.executemany("INSERT INTO meters VALUES (?, ?) ON CONFLICT(meter_id) DO UPDATE SET record = excluded.record", recs)
            db.execute("INSERT INTO state VALUES ('meters_version', ?, ?) ON CONFLICT(key) DO UPDATE "
                       "SET value = excluded.value, updated_at = excluded.updated_at",
                       (json.dumps(uuid.uuid4().hex), _now()))
            db.execute("COMMIT")
        return len(recs)

    def meters(self, *, normalized: bool = False) -> pd.DataFrame:
        """The meter registry (a copy); ``normalized``: typed as
        :func:`workbench.core.meters.normalize_meters` makes it.  Both are cached until the registry
        changes (a version in the manifest, so changes by other processes are seen)."""
        with self._db() as db:
            row = db.execute("SELECT value FROM state WHERE key = 'meters_version'").fetchone()
            cache = self.__dict__.get("_meters_cache")
            if cache is None or row is None or cache[0] != row[0]:
                rows = db.execute("SELECT record FROM meters ORDER BY meter_id").fetchall()
                m = pd.DataFrame([json.loads(r[0]) for r in rows])
                if len(m):
                    if "rollover" in m:
                        m["rollover"] = pd.to_numeric(m["rollover"], errors="coerce")
                    if "is_main" in m:
                        m["is_main"] = m["is_main"].astype(str).str.lower().eq("true")
                cache = self._meters_cache = [row[0] if row else None, m, None]
        if not normalized:
            return cache[1].copy()
        if cache[2] is None:
            from workbench.core.meters import normalize_meters

            # no meters yet (a lake that only quarantines): an empty register with the columns
            cache[2] = normalize_meters(cache[1] if len(cache[1]) else pd.DataFrame({"meter_id": pd.Series([], dtype=str)}))
        return cache[2].copy()

    def register_boundary(self, boundary: pd.DataFrame) -> int:
        """Store the boundary hierarchy (node ids, parents, identifiers) used by retrieval."""
        cols = [c for c in ("node_id", "parent_id", "level", "name_zh", "name_en", "classification", "identifier")
                if c in boundary.columns]
        self.set_state("boundary", boundary[cols].fillna("").astype(str).to_dict("records"))
        return len(boundary)

    def boundary(self) -> pd.DataFrame:
        return pd.DataFrame(self.get_state("boundary", []))

    def register_enterprise(self, info: dict) -> None:
        """Keep the enterprise's record (its ``enterprise.json``: names, region, reporting
        standard, products …) with its lake, for reports made from the lake alone."""
        self.set_state("enterprise", json.loads(json.dumps(info, default=str, ensure_ascii=False)))

    def enterprise_info(self) -> dict:
        """The record :meth:`register_enterprise` kept (empty if none)."""
        return dict(self.get_state("enterprise", {}) or {})

    def register_master_data(self, master) -> dict:
        """Take this enterprise's meter register, boundary and record from the master data
        (a :class:`workbench.registry.MasterData`), the one home of them: meters in and out of
        service alike (a replaced meter's readings still need its register kind and capacity).
        Returns what was registered: ``{"meters": n, "boundary_nodes": n}``."""
        if not self.enterprise:
            raise LakeError("register_master_data needs an enterprise's lake (Lake(root, enterprise=ID))")
        record = master.record(self.enterprise)
        meters = master.meters(self.enterprise)
        nodes = master.table("boundary_nodes", self.enterprise).drop(columns="enterprise_id")
        if len(meters):
            self.register_meters(meters)
        self.register_boundary(nodes)
        self.register_enterprise(record)
        return {"meters": len(meters), "boundary_nodes": len(nodes)}

    def _nodes_under(self, node: str) -> list[str]:
        b = self.boundary()
        if b.empty:
            return [node]
        children: dict[str, list[str]] = {}
        for n, p in zip(b["node_id"], b["parent_id"]):
            children.setdefault(p, []).append(n)
        out, todo = [], [node]
        while todo:
            n = todo.pop()
            out.append(n)
            todo.extend(children.get(n, []))
        return out

    def retrieve(self, table: str = "consumption", *, node: str | None = None, identifier: str | None = None,
                 start=None, end=None, source: str | None = None, category: str | None = None,
                 meter: str | None = None, columns=None, con=None, enterprise: str | None = None) -> pd.DataFrame:
        """Rows of a curated table filtered by boundary node (and everything below it), identifier,
        time range [start, end), sending system (``source``), accounting source (``category``) and
        meter (for ``telemetry``: the device) (seed §8.3).  ``enterprise``: read that
        enterprise's lake (only its rows)."""
        if enterprise is not None and enterprise != self.enterprise:
            if con is not None:
                raise LakeError("retrieve: a connection belongs to one enterprise's lake; pass enterprise or con")
            return self.for_enterprise(enterprise).retrieve(
                table, node=node, identifier=identifier, start=start, end=end, source=source, category=category,
                meter=meter, columns=columns)
        own = con is None
        con = con or self.connect(tables=[table])
        try:
            if table not in {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}:
                return pd.DataFrame()
            cols = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
            where, args = [], []
            time_col = "ts" if "ts" in cols else ("period_date" if "period_date" in cols else "date")
            if identifier:
                # identifiers are case-insensitive (ASCII); a node's identifier selects the node and
                # everything below it; else rows carrying the identifier (identifier middleware)
                b = self.boundary()
                ids = b.get("identifier", pd.Series(dtype=str)) if len(b) else pd.Series(dtype=str)
                hit = b.loc[ids.astype(str).str.lower() == identifier.lower(), "node_id"] if len(ids) else []
                if len(hit):
                    node = hit.iloc[0]
                elif "identifier" in cols:
                    where.append("lower(identifier) = ?")
                    args.append(identifier.lower())
                else:
                    raise LakeError(f"identifier '{identifier}' is not in the registered boundary")
            if node:
                nodes = self._nodes_under(node)
                key = "node_id" if "node_id" in cols else "meter_id"
                ors = [f"{key} IN (SELECT unnest(?::VARCHAR[]))"]
                args.append(nodes)
                if key == "node_id" and "meter_id" in cols:
                    ors.append("meter_id IN (SELECT unnest(?::VARCHAR[]))")
                    args.append(nodes)
                where.append("(" + " OR ".join(ors) + ")")
            if meter:                   # a device's telemetry: its device id
                where.append(f"{'meter_id' if 'meter_id' in cols else 'device_id'} = ?")
                args.append(meter)
            if start is not None:
                where.append(f"{time_col} >= ?")
                args.append(pd.Timestamp(start).to_pydatetime())
            if end is not None:
                where.append(f"{time_col} < ?")
                args.append(pd.Timestamp(end).to_pydatetime())
            if source:
                where.append("batch_id IN (SELECT batch_id FROM batches WHERE source = ?)")
                args.append(source)
            if category:
                if "source" in cols:
                    where.append("source = ?")
                elif "meter_id" in cols:
                    where.append("meter_id IN (SELECT meter_id FROM meters WHERE source = ?)")
                args.append(category)
            sel = ", ".join(columns) if columns else "*"
            q = f"SELECT {sel} FROM {table}" + (" WHERE " + " AND ".join(where) if where else "")
            return con.execute(q, args).df()
        finally:
            if own:
                con.close()

    # ------------------------------------------------------------------ raw zone
    def put_raw(self, result, *, sender: str) -> tuple[str, str | None, str]:
        """Store the raw bytes of a connector result; returns (batch_id, duplicate_of, raw_path).

        The same bytes from the same source again are a duplicate upload: recorded as a batch with
        status ``duplicate_upload`` pointing at the first, and nothing else happens.
        """
        meta = result.metadata
        source = str(meta.get("source") or meta.get("connector") or "unknown")
        raw = result.raw if result.raw is not None else _serialise(result.data)
        sha = hashlib.sha256(raw).hexdigest()  # computed here, from the bytes stored, never taken on trust
        if result.raw is not None:
            result.metadata.setdefault("sha256", sha)
        batch_id = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12]
        with self._db() as db:
            # only a batch that was curated counts: a failed one must not block its own retry
            prev = db.execute("SELECT batch_id FROM batches WHERE source = ? AND sha256 = ? AND status = 'stored' "
                              "ORDER BY stored_at LIMIT 1", (source, sha)).fetchone()
        name = _safe_name(result.raw_name or meta.get("origin") or f"{result.kind}.bin")
        day = _dt.date.today().isoformat()
        raw_path = self._path("raw", _safe_name(source), day, batch_id, name)
        if prev is None:
            self.fs.makedirs(raw_path.rsplit("/", 1)[0], exist_ok=True)
            with self.fs.open(raw_path + ".tmp", "wb") as fh:
                fh.write(raw)
            self.fs.mv(raw_path + ".tmp", raw_path)
            with contextlib.suppress(OSError, NotImplementedError):
                if self.local:
                    os.chmod(raw_path, 0o444)  # immutable by convention and by mode
        row = dict(batch_id=batch_id, source=source, connector=str(meta.get("connector", "")),
                   origin=str(meta.get("origin", "")), kind=result.kind,
                   raw_path=raw_path if prev is None else None, raw_name=name, sha256=sha, size=len(raw),
                   received_at=str(meta.get("received_at", _now())), stored_at=_now(),
                   sender=str(sender), status="duplicate_upload" if prev else "received",
                   duplicate_of=prev[0] if prev else None, rows_in=len(result.data),
                   rows_curated=0, rows_quarantined=0, rows_duplicate=0, message="",
                   metadata=json.dumps({k: v for k, v in meta.items() if _jsonable(v)}, default=str))
        with self._db() as db:
            db.execute(f"INSERT INTO batches ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        return batch_id, (prev[0] if prev else None), (raw_path if prev is None else None)

    def read_raw(self, batch_id: str) -> bytes:
        with self._db() as db:
            row = db.execute("SELECT raw_path, duplicate_of FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        if row is None:
            raise LakeError(f"no batch {batch_id}")
        if row[0] is None and row[1]:
            return self.read_raw(row[1])
        with self.fs.open(row[0], "rb") as fh:
            return fh.read()

    def _finish_batch(self, report: IngestReport, db=None) -> None:
        if db is None:
            with self._db() as conn:
                return self._finish_batch(report, conn)
        # finished_at: when the curated rows were committed (stored_at: when the raw bytes were)
        db.execute("UPDATE batches SET status = ?, rows_curated = ?, rows_quarantined = ?, rows_duplicate = ?, "
                   "message = ?, finished_at = ? WHERE batch_id = ?",
                   (report.status, report.rows_curated, report.rows_quarantined, report.rows_duplicate,
                    report.message, _now(), report.batch_id))

    def commit_batch(self, pending: list, report: IngestReport | None = None) -> None:
        """Register the files that :meth:`write_table` and :meth:`quarantine` wrote with
        ``pending=`` — and the batch's outcome — in ONE manifest transaction: a batch's readings,
        consumption, telemetry and quarantine become visible together or not at all (a process
        killed before the commit leaves only unregistered files, which :meth:`gc` removes; the
        redelivered batch then derives everything again)."""
        files = [row for kind, rows in pending if kind == "files" for row in rows]
        marks = [row for kind, rows in pending if kind == "marks" for row in rows]
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            if files:
                db.executemany("INSERT INTO files VALUES (?,?,?,?,?,?,?,?,?,?)", files)
            if marks:
                db.executemany(_UPSERT_WATERMARK, marks)
            if report is not None:
                self._finish_batch(report, db)
            db.execute("COMMIT")
        pending.clear()

    # ------------------------------------------------------------------ curated writes
    def write_table(self, table: str, df: pd.DataFrame, *, batch_id: str, date_column: str = "ts",
                    pending: list | None = None) -> int:
        """Write rows to ``table``'s hot tier, one file per day, and register them (one transaction;
        with ``pending``, a list, the registration is added to it for :meth:`commit_batch`).

        The frame is converted to Arrow once, sorted by day and sliced (zero-copy) into the day
        files, which are written in parallel (pyarrow releases the GIL).
        """
        import pyarrow as pa

        if df is None or len(df) == 0:
            return 0
        tbl = pa.Table.from_pandas(df, preserve_index=False)
        # one dictionary entry, not a string per row
        tbl = tbl.append_column("batch_id", pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(len(df), dtype=np.int32)), pa.array([batch_id], pa.string())))
        if self.enterprise is not None and "enterprise_id" not in tbl.column_names:
            tbl = tbl.append_column("enterprise_id", pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(len(df), dtype=np.int32)), pa.array([self.enterprise], pa.string())))
        day = pd.to_datetime(df[date_column]).to_numpy().astype("datetime64[D]")
        d0 = day.min()
        offset = (day - d0).astype(np.int64)
        # a stable sort of small integers is a radix sort in numpy: O(n); the day files are the
        # runs of the sorted offsets (counted, not searched for)
        order = np.argsort(offset.astype(np.int16) if offset.max() < 32767 else offset, kind="stable")
        in_order = bool(np.all(order[1:] > order[:-1]))
        per_day = np.bincount(offset)
        days = np.flatnonzero(per_day)
        ends = np.cumsum(per_day)[days]
        jobs = []
        for k, o in enumerate(days.tolist()):
            part = str(d0 + np.timedelta64(o, "D"))
            path = self._path("curated", table, "hot", f"date={part}", f"{batch_id}.parquet")
            lo, hi = int(ends[k] - per_day[o]), int(ends[k])
            jobs.append((path, part, lo, hi))
        from concurrent.futures import ThreadPoolExecutor

        # hot tier: fast codec, dictionary pages only for the text columns (floats and times
        # gain nothing from a dictionary and cost a third of the write time)
        text = [f.name for f in tbl.schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)]

        def write(job):  # each day's rows are gathered in the writing thread (Arrow releases the GIL)
            path, _, lo, hi = job
            piece = tbl.slice(lo, hi - lo) if in_order else tbl.take(pa.array(order[lo:hi]))
            self._write_arrow(piece, path, compression="snappy", use_dictionary=text)

        with ThreadPoolExecutor(max_workers=min(2, len(jobs))) as pool:
            written = pool.map(write, jobs)
            marks = _series_last(table, df, date_column)      # while the files are written
            list(written)
        new = [(path, table, "hot", part, hi - lo, batch_id, None, 1, _now(), None) for path, part, lo, hi in jobs]
        own = pending is None
        pending = [] if own else pending
        pending += [("files", new), ("marks", marks)]
        if own:
            self.commit_batch(pending)
        return len(df)

    def watermarks(self, table: str, meter_ids=None) -> pd.DataFrame:
        """The latest and the first stored reading of each series of ``table`` (one of
        :data:`SERIES_TABLES`): the series column (``meter_id``; ``device_id`` for telemetry),
        quantity, ts, value (the latest), first_ts, first_value — times naive local (µs) — and
        stored_at (epoch seconds when the latest was committed; NaN if rebuilt from files) for the
        series ``meter_ids`` (default: all).

        A lake written before watermarks existed gets them computed once from its files, under the
        manifest's write lock (so no batch registers files meanwhile)."""
        if table not in SERIES_TABLES:
            raise ValueError(f"no watermarks for {table!r} (series tables: {list(SERIES_TABLES)})")
        self._ensure_watermarks()
        ids = None if meter_ids is None else list(dict.fromkeys(str(m) for m in meter_ids))
        with self._db() as db:
            if ids is not None and len(ids) <= 500:
                rows = db.execute(f"SELECT {_MARK_COLUMNS} FROM watermarks WHERE tbl = ? AND meter_id "
                                  f"IN ({','.join('?' * len(ids))})", [table, *ids]).fetchall()
            else:
                rows = db.execute(f"SELECT {_MARK_COLUMNS} FROM watermarks WHERE tbl = ?",
                                  (table,)).fetchall()
        series = SERIES_TABLES[table]
        out = pd.DataFrame(rows, columns=[series, "quantity", "ts", "value", "first_ts", "first_value", "stored_at"])
        if ids is not None and len(ids) > 500:
            out = out[out[series].isin(ids)].reset_index(drop=True)
        for c in ("ts", "first_ts"):
            out[c] = out[c].to_numpy(dtype="int64").view("datetime64[us]")
        for c in ("value", "first_value", "stored_at"):
            out[c] = out[c].astype("float64")
        return out

    def _ensure_watermarks(self) -> None:
        if self.__dict__.get("_watermarks_ok"):
            return
        with self._db() as db:
            if db.execute("SELECT 1 FROM state WHERE key = 'watermarks'").fetchone() is None:
                db.execute("BEGIN IMMEDIATE")
                if db.execute("SELECT 1 FROM state WHERE key = 'watermarks'").fetchone() is None:
                    for table, series in SERIES_TABLES.items():
                        paths = [r[0] for r in db.execute("SELECT path FROM files WHERE live = 1 AND tbl = ?",
                                                          (table,)).fetchall()]
                        if not paths:
                            continue
                        con = duckdb.connect()
                        try:
                            if not self.local:
                                con.register_filesystem(self.fs)
                            lst = ", ".join("'" + self._uri(p).replace("'", "''") + "'" for p in paths)
                            last = con.execute(f"""SELECT {series}, quantity, max(ts) AS ts,
                                                          arg_max(value, ts) AS value, min(ts) AS first_ts,
                                                          arg_min(value, ts) AS first_value
                                                   FROM read_parquet([{lst}], union_by_name = true) GROUP BY ALL""").df()
                        finally:
                            con.close()
                        marks = _series_last(table, last, "ts")
                        db.executemany(_UPSERT_WATERMARK, marks)
                    db.execute("INSERT INTO state VALUES ('watermarks', '1', ?)", (_now(),))
                db.execute("COMMIT")
        self._watermarks_ok = True

    def quarantine(self, rows: pd.DataFrame, *, batch_id: str, table: str, pending: list | None = None) -> int:
        """Keep rows that could not be curated, with their reason and original payload (registered
        now, or with ``pending`` by :meth:`commit_batch`)."""
        if rows is None or len(rows) == 0:
            return 0
        q = pd.DataFrame({
            "batch_id": batch_id, "table": table,
            "row": pd.to_numeric(rows.get("row", pd.Series([None] * len(rows))), errors="coerce").astype("Int64").to_numpy(),
            "column": rows.get("column", pd.Series([""] * len(rows))).astype(str).to_numpy(),
            "reason": rows["reason"].astype(str).to_numpy(),
            "payload": rows["payload"].astype(str).to_numpy() if "payload" in rows else
            rows.drop(columns=[c for c in ("reason",) if c in rows]).astype(str).apply(
                lambda r: json.dumps(r.to_dict(), ensure_ascii=False), axis=1).to_numpy(),
            "quarantined_at": _now(),
        })
        if self.enterprise is not None:
            q["enterprise_id"] = self.enterprise
        path = self._path("quarantine", f"{batch_id}.parquet")
        self._write_parquet(q, path)
        row = (path, "quarantine", "hot", batch_id[:8], len(q), batch_id, None, 1, _now(), None)
        if pending is None:
            self.commit_batch([("files", [row])])
        else:
            pending.append(("files", [row]))
        return len(q)

    def _write_parquet(self, df: pd.DataFrame, path: str) -> None:
        import pyarrow as pa

        self._write_arrow(pa.Table.from_pandas(df, preserve_index=False), path)

    def _write_arrow(self, tbl, path: str, compression: str = "zstd", **options) -> None:
        """Write to a temporary name, then rename: a reader never sees half a file."""
        import pyarrow.parquet as pq

        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = path + f".tmp-{uuid.uuid4().hex[:6]}"
        if self.local:
            pq.write_table(tbl, tmp, compression=compression, **options)
        else:
            with self.fs.open(tmp, "wb") as fh:
                pq.write_table(tbl, fh, compression=compression, **options)
        self.fs.mv(tmp, path)

    # ------------------------------------------------------------------ reads
    def _uri(self, path: str) -> str:
        return path if self.local else f"{self.fs.protocol[0] if isinstance(self.fs.protocol, tuple) else self.fs.protocol}://{path}"

    def connect(self, con: duckdb.DuckDBPyConnection | None = None, *, tables=None, registries: bool = True,
                between=None, enterprise: str | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the lake's tables as views (live files of both tiers).

        ``tables`` limits the views to those named; ``registries=False`` leaves out the
        ``batches`` and ``meters`` views; ``between=(lo, hi)`` (timestamps) takes only the files
        whose day (hot tier) or month (cold tier) partition overlaps that span — the ingest path's
        look-ups stay fast however many hot files the lake holds.  ``enterprise``: the views of
        that enterprise's lake.
        """
        if enterprise is not None and enterprise != self.enterprise:
            return self.for_enterprise(enterprise).connect(con, tables=tables, registries=registries,
                                                           between=between)
        con = con or duckdb.connect()
        if not self.local:
            con.register_filesystem(self.fs)
        if between is None and tables is None:
            files = self.files()
        else:   # only the rows needed, selected in SQL on the (tbl, live, part) index
            q, args = "SELECT path, tbl FROM files WHERE live = 1", []
            if tables is not None:
                wanted = [t for t in tables if t in (*CURATED_TABLES, "quarantine")]
                q += f" AND tbl IN ({','.join('?' * len(wanted))})" if wanted else " AND 0"
                args += wanted
            if between is not None:
                lo, hi = (pd.Timestamp(x).strftime("%Y-%m-%d") for x in between)
                q += (" AND ((length(part) = 10 AND part BETWEEN ? AND ?) OR (length(part) = 7 AND part BETWEEN ? AND ?)"
                      " OR length(part) NOT IN (7, 10))")
                args += [lo, hi, lo[:7], hi[:7]]
            with self._db() as db:
                files = pd.read_sql_query(q + " ORDER BY path", db, params=args)
        for table in (*CURATED_TABLES, "quarantine"):
            if tables is not None and table not in tables:
                continue
            paths = [self._uri(p) for p in files.loc[files["tbl"] == table, "path"]]
            if paths:
                lst = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
                con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet([{lst}], union_by_name = true)")
        if not registries:
            return con
        batches = self.batches()
        con.register("batches_df", batches)
        con.execute("CREATE OR REPLACE VIEW batches AS SELECT * FROM batches_df")
        meters = self.meters()
        if len(meters):
            con.register("meters_df", meters)
            con.execute("CREATE OR REPLACE VIEW meters AS SELECT * FROM meters_df")
        return con

    def sql(self, query: str, params=None, *, enterprise: str | None = None) -> pd.DataFrame:
        """A query over :meth:`connect`'s views (of ``enterprise``'s lake when given)."""
        con = self.connect(enterprise=enterprise)
        try:
            return con.execute(query, params or []).df()
        finally:
            con.close()

    def set_quality_rules(self, path) -> None:
        """Quality rules (YAML) evaluated on every ingest; ``None`` turns them off."""
        if path is not None:
            from workbench.lake.quality import load_rules
            load_rules(path)  # refuse a bad rule file now, not at the next ingest
            path = str(Path(path).resolve())
        self.set_state("quality_rules", path)

    def tables(self) -> list[str]:
        with self._db() as db:
            return sorted(r[0] for r in db.execute("SELECT DISTINCT tbl FROM files WHERE live = 1").fetchall())

    # ------------------------------------------------------------------ compaction
    def compact(self, *, before: str | None = None, tables=CURATED_TABLES, _crash_after: str | None = None) -> dict:
        """Move hot-tier days before ``before`` (default: today) into month files of the cold tier.

        Per (table, month): read the live hot files of the days to move plus the month's live cold
        file(s), write one new cold file, then in ONE transaction retire the inputs and register
        the output; finally delete retired files.  ``_crash_after`` ('write' or 'commit') simulates
        a crash for tests.
        """
        cutoff = before or _dt.date.today().isoformat()
        files = self.files()
        moved = {"months": 0, "hot_files": 0, "rows": 0}
        for table in tables:
            hot = files[(files["tbl"] == table) & (files["tier"] == "hot") & (files["part"] < cutoff)]
            if hot.empty:
                continue
            for month, group in hot.groupby(hot["part"].str.slice(0, 7)):
                cold = files[(files["tbl"] == table) & (files["tier"] == "cold") & (files["part"] == month)]
                if self._merge(table, pd.concat([cold, group]), "cold", month, _crash_after=_crash_after):
                    moved["months"] += 1
                    moved["hot_files"] += len(group)
                    moved["rows"] += int(group["rows"].sum())
        moved["deleted"] = self.gc()
        return moved

    def rollup(self, *, older_than_s: float = 600.0, min_files: int = 20, tables=CURATED_TABLES,
               grace_s: float = 300.0) -> dict:
        """Merge each day's small hot files (one per ingested batch — a gateway writes several a
        second) that are older than ``older_than_s`` into one hot file, when there are at least
        ``min_files`` of them, so that queries of today stay fast; :meth:`compact` still moves
        whole days to the cold tier.  Retired files are deleted ``grace_s`` after retirement
        (readers that listed them before may still be reading).  Safe beside running writers
        and another rollup (see :meth:`_merge`)."""
        cutoff = (_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=older_than_s)).isoformat(
            timespec="milliseconds")
        files = self.files()
        hot = files[(files["tier"] == "hot") & (files["tbl"].isin(tables)) & (files["created_at"] < cutoff)]
        done = {"groups": 0, "hot_files": 0, "rows": 0}
        for (table, part), group in hot.groupby(["tbl", "part"]):
            if len(group) >= min_files and self._merge(table, group, "hot", part):
                done["groups"] += 1
                done["hot_files"] += len(group)
                done["rows"] += int(group["rows"].sum())
        done["deleted"] = self.gc(grace_s=grace_s, orphans=False)   # no directory walk beside a stream
        return done

    def _merge(self, table: str, inputs: pd.DataFrame, tier: str, part: str, *, _crash_after=None) -> bool:
        """Write the rows of the ``inputs`` files into one new file of ``tier``/``part``, then in ONE
        transaction retire the inputs and register it — only if every input is still live (else a
        concurrent merge took them: this one is dropped).  Returns whether it was committed."""
        cid = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        folder = f"month={part}" if tier == "cold" else f"date={part}"
        out = self._path("curated", table, tier, folder, f"{'' if tier == 'cold' else 'rollup-'}{cid}.parquet")
        expected = int(inputs["rows"].sum())
        with self._db() as db:
            db.execute("INSERT INTO compactions VALUES (?,?,?,?,?,?,?)", (cid, table, part, _now(), None, len(inputs), None))
        con = duckdb.connect()
        try:
            if not self.local:
                con.register_filesystem(self.fs)
            lst = ", ".join("'" + self._uri(p) + "'" for p in inputs["path"])
            self.fs.makedirs(out.rsplit("/", 1)[0], exist_ok=True)
            tmp = out + ".tmp"
            order = f"ORDER BY {SERIES_TABLES[table]}, ts" if table in SERIES_TABLES else ""
            con.execute(f"COPY (SELECT * FROM read_parquet([{lst}], union_by_name = true) {order}) "
                        f"TO '{self._uri(tmp)}' (FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE 1000000)")
            rows = con.execute(f"SELECT count(*) FROM read_parquet('{self._uri(tmp)}')").fetchone()[0]
        finally:
            con.close()
        if rows != expected:
            raise LakeError(f"compaction of {table} {part}: wrote {rows} rows, expected {expected}")
        self.fs.mv(tmp, out)
        if _crash_after == "write":
            raise LakeError("simulated crash after writing the cold file")
        paths = inputs["path"].tolist()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            live = sum(db.execute(f"SELECT count(*) FROM files WHERE live = 1 AND path IN ({','.join('?' * len(chunk))})",
                                  chunk).fetchone()[0] for chunk in _chunks(paths, 900))
            if live != len(paths):
                db.execute("ROLLBACK")
                self.fs.rm(out)
                return False
            db.executemany("UPDATE files SET live = 0, retired_at = ? WHERE path = ?", [(_now(), p) for p in paths])
            db.execute("INSERT INTO files VALUES (?,?,?,?,?,?,?,?,?,?)", (out, table, tier, part, rows, None, cid, 1, _now(), None))
            db.execute("UPDATE compactions SET committed_at = ?, rows = ? WHERE compaction_id = ?", (_now(), rows, cid))
            db.execute("COMMIT")
        if _crash_after == "commit":
            raise LakeError("simulated crash after the commit, before deleting retired files")
        return True

    def gc(self, *, grace_s: float = 0.0, orphans: bool = True) -> int:
        """Delete retired files (retired at least ``grace_s`` ago) and, with ``orphans``, files no
        manifest row points at (left by a crash).  Orphans are looked for under the ingest lock,
        so a batch between writing its files and registering them is never taken for a crash."""
        before = (_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=grace_s)).isoformat(timespec="milliseconds")
        with self._db() as db:
            dead = [r[0] for r in db.execute("SELECT path FROM files WHERE live = 0 AND retired_at <= ?",
                                             (before,)).fetchall()]
        n = 0
        for p in dead:
            if self.fs.exists(p):
                self.fs.rm(p)
                n += 1
        with self._db() as db:
            db.executemany("DELETE FROM files WHERE path = ? AND live = 0", [(p,) for p in dead])
        curated = self._path("curated")
        if not orphans:
            return n
        with self.ingest_lock():
            with self._db() as db:
                known = {r[0] for r in db.execute("SELECT path FROM files").fetchall()}
            if self.fs.exists(curated):
                for p in self.fs.find(curated):
                    if p not in known and (p.endswith(".parquet") or ".tmp" in p):
                        self.fs.rm(p)
                        n += 1
        return n


def _codes(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, values) of a column: a categorical's own codes (prepared tables are categorical —
    no hashing of millions of rows), else :func:`pandas.factorize`."""
    if isinstance(s.dtype, pd.CategoricalDtype) and not (s.cat.codes.to_numpy() < 0).any():
        return s.cat.codes.to_numpy().astype(np.int64), np.asarray(s.cat.categories, dtype=object)
    return pd.factorize(s)


def _series_last(table: str, df: pd.DataFrame, date_column: str) -> list[tuple]:
    """Watermark rows (tbl, series, quantity, last ts µs, its value, first ts µs, its value) of
    each series in ``df`` (``df`` may hold the first/last columns already: a rebuild)."""
    series = SERIES_TABLES.get(table)
    if series is None or date_column != "ts" or len(df) == 0 or not {series, "quantity", "value"} <= set(df.columns):
        return []
    def us(c):
        return pd.to_datetime(df[c]).to_numpy(dtype="datetime64[us]").view("int64")

    def num(c):
        col = df[c]
        if col.dtype == np.float64:
            return col.to_numpy()
        return pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64")

    t, v = us("ts"), num("value")
    t0, v0 = (us("first_ts"), num("first_value")) if "first_ts" in df.columns else (t, v)
    mc, mu = _codes(df[series])
    qc, qu = _codes(df["quantity"])
    g = mc * max(len(qu), 1) + qc if len(qu) > 1 else mc
    step = g[1:] != g[:-1]
    if t0 is t and not (g[1:] < g[:-1]).any() and not (~step & (t[1:] < t[:-1])).any():
        # the usual case (prepared tables come sorted by series and time): O(n), no sort
        ends = np.flatnonzero(np.r_[step, True])
        last, first = ends, np.r_[0, ends[:-1] + 1]
    else:
        order = np.lexsort((t, g))
        gs = g[order]
        last = order[np.r_[gs[1:] != gs[:-1], True]]
        order0 = np.lexsort((-t0, g))           # first of each group: the smallest first_ts
        gs0 = g[order0]
        first = order0[np.r_[gs0[1:] != gs0[:-1], True]]
    m = np.asarray(mu, dtype=object)[mc[last]].tolist()
    q = np.asarray(qu, dtype=object)[qc[last]].tolist()
    def nan(x):
        return None if math.isnan(x) else x

    # last and first were both taken in group order, so they line up
    now = None if "first_ts" in df.columns else time.time()     # a rebuild does not know when
    return [(table, str(m_), str(q_), a, nan(b), c, nan(d), now)
            for m_, q_, a, b, c, d in zip(m, q, t[last].tolist(), v[last].tolist(), t0[first].tolist(),
                                          v0[first].tolist())]


def _chunks(items: list, n: int):
    for k in range(0, len(items), n):
        yield items[k:k + n]


def read_table(root, table: str, metadata=None, enterprise: str | None = None, **filters) -> pd.DataFrame:
    """A curated table of ``enterprise``'s lake at ``root``, filtered (:meth:`Lake.retrieve`) — the
    catalog's reader."""
    return Lake(root, metadata=metadata, enterprise=enterprise or None).retrieve(table, **filters)


def _serialise(df: pd.DataFrame) -> bytes:
    return df.to_json(orient="records", date_format="iso", force_ascii=False).encode("utf-8")


def _safe_name(name: str) -> str:
    keep = "".join(c if (c.isalnum() or c in "-_.") else "_" for c in str(name).rsplit("/", 1)[-1])
    return keep[:120] or "batch"


def _jsonable(v) -> bool:
    return isinstance(v, (str, int, float, bool, type(None), list, dict)) and not isinstance(v, float) or (
        isinstance(v, float) and np.isfinite(v))
