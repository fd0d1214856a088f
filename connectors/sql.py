"""Scheduled pull from any SQL database (seed §7.2 b: push preferred, otherwise scheduled pull).

:class:`SqlPull` reads a table or a query through SQLAlchemy (any URL: PostgreSQL, MySQL, SQL
Server, Oracle, SQLite …) **incrementally**: only rows whose watermark column is greater than the
last *committed* watermark, ordered by the watermark, in chunks.  For each chunk it builds a
:class:`~connectors.ConnectorResult` (raw bytes = the rows as received, JSON lines, UTF-8), calls
the caller's ``ingest`` callback (normally :func:`workbench.ingestion.ingest`) and only **after the
callback returned** commits the chunk's watermark to a :class:`WatermarkStore` (a small SQLite
file).  Hence:

* a crash, a failing ingest or a database that goes away mid-pull loses nothing: the next run starts
  after the last committed chunk and re-pulls at most the one un-committed chunk (the lake is
  idempotent on re-delivery: duplicate raw bytes and duplicate rows are recognised);
* a chunk never splits a group of rows sharing one watermark value (ties are pulled together), so
  "everything ≤ committed watermark was delivered" always holds.

Limits: rows whose watermark is NULL are never pulled; rows that appear later with a watermark
*below* the committed one (e.g. long transactions committing out of order with a sequence) are not
seen — choose a watermark the source system sets at commit time (``updated_at`` from a trigger,
a change counter) or re-pull a window with ``initial_watermark``/:meth:`WatermarkStore.set`.

:class:`WatermarkStore` and :func:`run_every` are shared with :mod:`connectors.rest`.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import decimal
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import ConnectorResult

try:  # one exception type for all connectors once the package defines it
    from . import ConnectorError as _ConnectorErrorBase  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the package version
    _ConnectorErrorBase = RuntimeError

__all__ = [
    "READINGS_COLUMNS",
    "ConnectorError",
    "PullSummary",
    "SqlPull",
    "WatermarkStore",
    "mask_url",
    "read",
    "run_every",
]

name = "sql"
log = logging.getLogger("connectors.sql")

READINGS_COLUMNS = ("meter_id", "ts", "quantity", "value", "unit")
"""Columns a ``readings`` result must have after mapping (``register`` is optional)."""


class ConnectorError(_ConnectorErrorBase):
    """A source could not be read.  ``origin`` is the (password-masked) URL, ``watermark`` the last
    committed watermark (what the next run will start after)."""

    def __init__(self, message: str, *, origin: str | None = None, watermark: Any = None):
        super().__init__(message)
        self.origin = origin
        self.watermark = watermark


# ---------------------------------------------------------------------------------------------
# watermark state
# ---------------------------------------------------------------------------------------------
def _encode(value) -> str:
    """A watermark value as typed JSON, so it comes back as the same Python type."""
    if value is None:
        return json.dumps({"type": "null", "value": None})
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        with contextlib.suppress(Exception):
            value = value.item()
    if isinstance(value, bool):
        return json.dumps({"type": "bool", "value": value})
    if isinstance(value, int):
        return json.dumps({"type": "int", "value": value})
    if isinstance(value, float):
        return json.dumps({"type": "float", "value": value})
    if isinstance(value, decimal.Decimal):
        return json.dumps({"type": "decimal", "value": str(value)})
    if isinstance(value, _dt.datetime):
        return json.dumps({"type": "datetime", "value": value.isoformat()})
    if isinstance(value, _dt.date):
        return json.dumps({"type": "date", "value": value.isoformat()})
    if isinstance(value, _dt.time):
        return json.dumps({"type": "time", "value": value.isoformat()})
    if isinstance(value, str):
        return json.dumps({"type": "str", "value": value}, ensure_ascii=False)
    raise TypeError(f"cannot store a watermark of type {type(value).__name__}: {value!r}")


def _decode(text: str):
    d = json.loads(text)
    t, v = d["type"], d["value"]
    return {
        "null": lambda x: None,
        "bool": bool,
        "int": int,
        "float": float,
        "decimal": decimal.Decimal,
        "datetime": _dt.datetime.fromisoformat,
        "date": _dt.date.fromisoformat,
        "time": _dt.time.fromisoformat,
        "str": str,
    }[t](v)


class WatermarkStore:
    """Committed watermarks of incremental pulls, one per key, in a small SQLite file.

    Values keep their type (int, float, Decimal, str, date, datetime — naive or tz-aware).  Every
    :meth:`set` is one transaction (``synchronous=FULL``): once it returns the watermark survives a
    crash; if it did not return, the old one is still there.  Each commit is also appended to a
    ``history`` table (key, value, time, info) for audit.
    """

    _SCHEMA = """
    CREATE TABLE IF NOT EXISTS watermarks (key TEXT PRIMARY KEY, value TEXT NOT NULL,
                                           updated_at TEXT NOT NULL, info TEXT);
    CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL,
                                        value TEXT NOT NULL, committed_at TEXT NOT NULL, info TEXT);
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._db() as db:
            db.executescript(self._SCHEMA)

    def __repr__(self) -> str:
        return f"WatermarkStore({str(self.path)!r})"

    @contextlib.contextmanager
    def _db(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    def get(self, key: str, default=None):
        """The committed watermark of ``key`` (``default`` when none was committed)."""
        with self._db() as db:
            row = db.execute("SELECT value FROM watermarks WHERE key = ?", (key,)).fetchone()
        return default if row is None else _decode(row[0])

    def set(self, key: str, value, **info) -> None:
        """Commit ``value`` as the watermark of ``key`` (``info``: JSON-able notes kept in the history)."""
        enc = _encode(value)
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")
        inf = json.dumps(info, default=str, ensure_ascii=False) if info else None
        with self._lock, self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT INTO watermarks (key, value, updated_at, info) VALUES (?,?,?,?) "
                           "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                           "updated_at = excluded.updated_at, info = excluded.info", (key, enc, now, inf))
                db.execute("INSERT INTO history (key, value, committed_at, info) VALUES (?,?,?,?)",
                           (key, enc, now, inf))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def delete(self, key: str) -> bool:
        """Forget ``key`` (the next pull starts from the beginning); True when it existed."""
        with self._lock, self._db() as db:
            cur = db.execute("DELETE FROM watermarks WHERE key = ?", (key,))
        return cur.rowcount > 0

    def items(self) -> dict:
        """All committed watermarks, key → value."""
        with self._db() as db:
            rows = db.execute("SELECT key, value FROM watermarks ORDER BY key").fetchall()
        return {k: _decode(v) for k, v in rows}

    def history(self, key: str | None = None) -> pd.DataFrame:
        """Every commit (oldest first), optionally of one key."""
        q = "SELECT id, key, value, committed_at, info FROM history"
        args: tuple = ()
        if key is not None:
            q += " WHERE key = ?"
            args = (key,)
        with self._db() as db:
            df = pd.read_sql_query(q + " ORDER BY id", db, params=args)
        df["value"] = [_decode(v) for v in df["value"]]
        return df


def _as_store(state) -> WatermarkStore:
    if isinstance(state, WatermarkStore):
        return state
    if state is None:
        raise ValueError("state: give a WatermarkStore or the path of its SQLite file")
    return WatermarkStore(state)


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------
@dataclass
class PullSummary:
    """What one :meth:`SqlPull.run` / :meth:`RestPull.run` did."""

    key: str
    watermark_before: Any = None
    watermark_after: Any = None
    chunks: int = 0
    rows: int = 0
    results: list = field(default_factory=list)  # what ingest returned, per chunk
    error: str | None = None  # set by run_every when a run failed

    def to_dict(self) -> dict:
        res = [r.to_dict() if hasattr(r, "to_dict") else r for r in self.results]
        return {"key": self.key, "watermark_before": self.watermark_before,
                "watermark_after": self.watermark_after, "chunks": self.chunks, "rows": self.rows,
                "results": res, "error": self.error}


def run_every(run: Callable[[], PullSummary], seconds: float, *, max_runs: int | None = None,
              stop_event: threading.Event | None = None, on_error: str = "log",
              key: str = "") -> list[PullSummary]:
    """Call ``run()`` every ``seconds`` (fixed rate, measured from the start of each run) until
    ``max_runs`` runs were made or ``stop_event`` is set.

    A run that raises :class:`ConnectorError` is logged and recorded (``PullSummary.error``) and the
    schedule goes on (``on_error="raise"`` re-raises instead) — its un-committed chunk is pulled
    again by the next run.  Returns the summaries of all runs.
    """
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    summaries: list[PullSummary] = []
    n = 0
    while max_runs is None or n < max_runs:
        if stop_event is not None and stop_event.is_set():
            break
        started = time.monotonic()
        try:
            summaries.append(run())
        except ConnectorError as exc:
            if on_error == "raise":
                raise
            log.error("scheduled pull %s failed: %s", key, exc)
            summaries.append(PullSummary(key=key, watermark_before=exc.watermark,
                                         watermark_after=exc.watermark, error=str(exc)))
        n += 1
        if max_runs is not None and n >= max_runs:
            break
        wait = max(0.0, seconds - (time.monotonic() - started))
        if stop_event is not None:
            if stop_event.wait(wait):
                break
        else:
            time.sleep(wait)
    return summaries


def mask_url(url) -> str:
    """``url`` with its password replaced by ``***`` (SQLAlchemy URLs and plain URLs)."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:  # not an SQLAlchemy URL
        return re.sub(r"(//[^:/@]+:)[^@/]*@", r"\1***@", str(url))


def safe_name_part(value) -> str:
    """A watermark value made safe for a file name (``2024-05-01T00:15:00+08:00`` → ``2024-05-01T001500+0800``)."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    text = value.isoformat() if isinstance(value, (_dt.datetime, _dt.date)) else str(value)
    text = text.replace(":", "").replace(" ", "T")
    text = re.sub(r"[^A-Za-z0-9.+_-]+", "_", text).strip("._")
    return text[:40] or "x"


def format_watermark(value) -> str:
    """A watermark for messages: ISO 8601 for dates and times, ``None`` when nothing is committed."""
    if value is None:
        return "None (nothing committed yet)"
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time, pd.Timestamp)):
        return value.isoformat()
    return repr(value)


def _json_default(v):
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def rows_to_jsonl(rows: Iterable[Mapping]) -> bytes:
    """Rows as JSON lines, UTF-8 (dates ISO 8601, decimals as strings, bytes base64)."""
    return b"".join(
        json.dumps(dict(r), default=_json_default, ensure_ascii=False).encode("utf-8") + b"\n" for r in rows
    )


def to_frame(records, *, kind: str, columns: Mapping[str, str] | None,
             defaults: Mapping[str, Any] | None, keep_unmapped: bool, origin: str,
             watermark=None) -> pd.DataFrame:
    """Records (a list of dicts or a DataFrame) → the canonical table of ``kind``: rename by
    ``columns`` (source → canonical), add constant ``defaults`` for missing columns, check the
    required columns of ``readings``."""
    if isinstance(records, pd.DataFrame):
        df = records
    else:
        df = pd.DataFrame.from_records(list(records)) if records else pd.DataFrame()
    if columns:
        missing = [c for c in columns if c not in df.columns]
        if missing and len(df):
            raise ConnectorError(
                f"{origin}: mapped source column(s) {missing} not in the data "
                f"(columns: {list(df.columns)})", origin=origin, watermark=watermark)
        df = df.rename(columns=dict(columns))
        if not keep_unmapped:
            df = df[[c for c in dict(columns).values() if c in df.columns]]
    for col, val in (defaults or {}).items():
        if col not in df.columns:
            df[col] = val
    if kind == "readings" and len(df):
        need = [c for c in READINGS_COLUMNS if c not in df.columns]
        if need:
            raise ConnectorError(
                f"{origin}: readings need column(s) {need} — map them with columns={{source: canonical}} "
                f"or give constants with defaults= (columns now: {list(df.columns)})",
                origin=origin, watermark=watermark)
    return df


# ---------------------------------------------------------------------------------------------
# SQL pull
# ---------------------------------------------------------------------------------------------
class WatermarkedPull:
    """What every pull connector shares: a watermark committed in ``self.store`` under ``self.state_key``."""

    store: "WatermarkStore"
    state_key: str
    initial_watermark = None

    @property
    def watermark(self):
        """The committed watermark (what the next run starts after)."""
        return self.store.get(self.state_key, self.initial_watermark)

    def reset(self, value=None) -> None:
        """Forget the committed watermark (``value`` given: commit that instead)."""
        if value is None:
            self.store.delete(self.state_key)
        else:
            self.store.set(self.state_key, value, reset=True)


class SqlPull(WatermarkedPull):
    """Incremental pull of ``table`` (or ``query``) from the database at ``url``.

    Parameters
    ----------
    url : SQLAlchemy URL (``postgresql+psycopg://user:pw@host/db``, ``sqlite:///file.db`` …).
    table : table (or view) name; or give ``query`` (any SELECT; it is wrapped as a sub-query).
    kind : canonical kind of the result (``readings``, ``activity``, ``invoice``).
    watermark_column : column (of the table/query, before mapping) that only grows — an id,
        ``updated_at``, a change counter.  Rows with a NULL watermark are never pulled.
    columns : mapping source column → canonical column (``{"meter_code": "meter_id"}``);
        ``keep_unmapped=False`` drops the other columns.
    defaults : constant canonical columns added when missing (``{"quantity": "active_energy"}``).
    source : name of the sending system (metadata ``source``; raw-zone folder).
    state : :class:`WatermarkStore` or the path of its SQLite file.
    chunk_size : rows per chunk (one ingest call, one watermark commit, one raw file).
    state_key : key of the watermark in the store (default from source, masked URL, table, column).
    initial_watermark : where to start when nothing is committed yet (default: from the beginning).
    retries, backoff : a failing chunk query (connection lost …) is retried ``retries`` times after
        ``backoff``·2^i seconds on a fresh connection before :class:`ConnectorError`.
    engine_options : extra :func:`sqlalchemy.create_engine` arguments.  For PostgreSQL a
        ``connect_timeout`` of 10 s is set unless given.
    """

    def __init__(self, url, table: str | None = None, *, query: str | None = None, kind: str,
                 watermark_column: str, columns: Mapping[str, str] | None = None,
                 defaults: Mapping[str, Any] | None = None, keep_unmapped: bool = True,
                 source: str, state, chunk_size: int = 5000, schema: str | None = None,
                 state_key: str | None = None, name: str | None = None, initial_watermark=None,
                 retries: int = 2, backoff: float = 0.5, engine_options: Mapping | None = None):
        import sqlalchemy as sa

        if (table is None) == (query is None):
            raise ValueError("give exactly one of table= or query=")
        if kind not in ("readings", "activity", "invoice"):
            raise ValueError(f"unknown kind '{kind}'")
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        self.url = sa.engine.make_url(url)
        self.origin = self.url.render_as_string(hide_password=True)
        self.table, self.query, self.schema = table, query, schema
        self.kind, self.watermark_column = kind, watermark_column
        self.columns, self.defaults, self.keep_unmapped = dict(columns or {}), dict(defaults or {}), keep_unmapped
        self.source, self.chunk_size = source, int(chunk_size)
        self.store = _as_store(state)
        self.name = name or table or "query"
        what = f"{schema + '.' if schema else ''}{table}" if table else "q" + hashlib.sha256(query.encode()).hexdigest()[:12]
        self.state_key = state_key or f"sql:{source}:{self.origin}:{what}:{watermark_column}"
        self.initial_watermark = initial_watermark
        self.retries, self.backoff = int(retries), float(backoff)
        opts = dict(engine_options or {})
        opts.setdefault("pool_pre_ping", True)
        if self.url.get_backend_name() == "postgresql":
            ca = dict(opts.get("connect_args") or {})
            ca.setdefault("connect_timeout", 10)
            opts["connect_args"] = ca
        self._engine_options = opts
        self._engine = None

    def __repr__(self) -> str:
        return f"SqlPull({self.origin!r}, {self.table or 'query'!r}, key={self.state_key!r})"

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def engine(self):
        import sqlalchemy as sa

        if self._engine is None:
            self._engine = sa.create_engine(self.url, **self._engine_options)
        return self._engine

    def close(self) -> None:
        """Release the connection pool."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _source_sel(self):
        import sqlalchemy as sa

        wm = self.watermark_column
        if self.table is not None:
            src = sa.table(self.table, sa.column(wm), schema=self.schema)
        else:
            src = sa.text(self.query).columns(sa.column(wm)).subquery("src")
        col = src.c[wm]
        return sa.select(sa.literal_column("*")).select_from(src).where(col.is_not(None)), col

    def _mask(self, text: str) -> str:
        pw = self.url.password
        return text.replace(pw, "***") if pw else text

    def _error(self, what: str, exc: BaseException | None, watermark) -> ConnectorError:
        detail = ""
        if exc is not None:
            first = self._mask(str(exc)).strip().splitlines()
            detail = f": {type(exc).__name__}" + (f": {first[0]}" if first else "")
        return ConnectorError(
            f"SQL source {self.origin} ({self.table or 'query'}) {what}{detail} — "
            f"last committed watermark {self.watermark_column} = {format_watermark(watermark)}; nothing after it was committed, "
            f"the next run resumes from there", origin=self.origin, watermark=watermark)

    def _fetch_chunk(self, after) -> tuple[list[dict], bool]:
        """Rows after ``after`` (exclusive), ordered by the watermark; never splits a tie group.
        Returns (rows, more) — ``more`` False when the source had fewer rows than a chunk."""
        base, col = self._source_sel()
        sel = base if after is None else base.where(col > after)
        wm = self.watermark_column
        n = self.chunk_size
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(sel.order_by(col).limit(n + 1)).mappings()]
            if len(rows) <= n:
                return rows, False
            extra, rows = rows[n], rows[:n]
            last = rows[-1][wm]
            if extra[wm] != last:
                return rows, True
            keep = [r for r in rows if r[wm] != last]  # the tie group continues past the chunk
            if keep:
                return keep, True
            # the whole chunk shares one watermark value: take every row of that value
            rows = [dict(r) for r in conn.execute(base.where(col == last)).mappings()]
            return rows, True

    def _fetch_with_retry(self, after) -> tuple[list[dict], bool]:
        import sqlalchemy as sa

        for attempt in range(self.retries + 1):
            try:
                return self._fetch_chunk(after)
            except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError,
                    sa.exc.TimeoutError, OSError) as exc:
                if attempt >= self.retries:
                    raise self._error("is unreachable or went away", exc, after) from exc
                wait = self.backoff * 2 ** attempt
                log.warning("SQL source %s: %s (attempt %d/%d, retrying in %.2fs)", self.origin,
                            self._mask(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__,
                            attempt + 1, self.retries + 1, wait)
                if self._engine is not None:
                    self._engine.dispose()
                time.sleep(wait)
            except sa.exc.SQLAlchemyError as exc:  # bad SQL, missing table/column: not transient
                raise self._error("query failed", exc, after) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- public ---------------------------------------------------------------------------------
    def run(self, ingest: Callable[[ConnectorResult], Any], *, max_chunks: int | None = None) -> PullSummary:
        """Pull everything after the committed watermark, chunk by chunk: ``ingest(result)`` then
        commit the chunk's watermark.  An exception from ``ingest`` propagates and leaves the
        watermark where it was; a database error raises :class:`ConnectorError`."""
        after = self.watermark
        summary = PullSummary(key=self.state_key, watermark_before=after, watermark_after=after)
        try:
            self._run(ingest, after, summary, max_chunks)
        finally:
            self.close()  # no idle connection held between scheduled runs
        return summary

    def _run(self, ingest, after, summary: PullSummary, max_chunks: int | None) -> None:
        more = True
        while more and (max_chunks is None or summary.chunks < max_chunks):
            rows, more = self._fetch_with_retry(after)
            if not rows:
                break
            wm_from, wm_to = rows[0][self.watermark_column], rows[-1][self.watermark_column]
            data = to_frame(rows, kind=self.kind, columns=self.columns, defaults=self.defaults,
                            keep_unmapped=self.keep_unmapped, origin=self.origin, watermark=after)
            raw = rows_to_jsonl(rows)
            meta = {
                "connector": name,
                "source": self.source,
                "origin": f"{self.origin} {self.table or 'query'}",
                "query": self.query,
                "table": self.table,
                "watermark_column": self.watermark_column,
                "watermark_after": _json_default(after) if after is not None else None,
                "watermark_from": _json_default(wm_from),
                "watermark_to": _json_default(wm_to),
                "records": len(rows),
                "chunk": summary.chunks + 1,
            }
            raw_name = f"sql-{safe_name_part(self.name)}-{safe_name_part(wm_from)}-{safe_name_part(wm_to)}.jsonl"
            result = ConnectorResult(data, meta, kind=self.kind, raw=raw, raw_name=raw_name)
            out = ingest(result)  # raises → watermark stays
            self.store.set(self.state_key, wm_to, rows=len(rows), source=self.source,
                           raw_name=raw_name, sha256=result.sha256)
            after = wm_to
            summary.chunks += 1
            summary.rows += len(rows)
            summary.results.append(out)
            summary.watermark_after = after
            log.info("SQL source %s: chunk %d, %d rows, watermark → %s", self.origin, summary.chunks, len(rows),
                     format_watermark(after))

    def run_every(self, seconds: float, ingest: Callable[[ConnectorResult], Any], *,
                  max_runs: int | None = None, stop_event: threading.Event | None = None,
                  on_error: str = "log") -> list[PullSummary]:
        """:meth:`run` on a schedule (see :func:`run_every`)."""
        return run_every(lambda: self.run(ingest), seconds, max_runs=max_runs, stop_event=stop_event,
                         on_error=on_error, key=self.state_key)


def read(url, table: str | None = None, *, query: str | None = None, kind: str = "activity",
         columns: Mapping[str, str] | None = None, defaults: Mapping[str, Any] | None = None,
         keep_unmapped: bool = True, source: str = "sql", params: Mapping | None = None) -> ConnectorResult:
    """One-shot (non-incremental) read of a whole table or query as one :class:`ConnectorResult`."""
    import sqlalchemy as sa

    if (table is None) == (query is None):
        raise ValueError("give exactly one of table= or query=")
    u = sa.engine.make_url(url)
    origin = u.render_as_string(hide_password=True)
    sel = sa.select(sa.literal_column("*")).select_from(sa.table(table)) if table else sa.text(query)
    engine = sa.create_engine(u)
    try:
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(sel, dict(params or {})).mappings()]
    except sa.exc.SQLAlchemyError as exc:
        msg = str(exc).replace(u.password, "***") if u.password else str(exc)
        raise ConnectorError(f"SQL source {origin} ({table or 'query'}) failed: {msg.splitlines()[0]}",
                             origin=origin) from exc
    finally:
        engine.dispose()
    data = to_frame(rows, kind=kind, columns=columns, defaults=defaults, keep_unmapped=keep_unmapped, origin=origin)
    meta = {"connector": name, "source": source, "origin": f"{origin} {table or 'query'}", "query": query,
            "table": table, "records": len(rows)}
    return ConnectorResult(data, meta, kind=kind, raw=rows_to_jsonl(rows),
                           raw_name=f"sql-{safe_name_part(table or 'query')}-all.jsonl")
