"""Meter readings → consumption per meter and period → activity records.

The register arithmetic — which readings count, repeated timestamps, interval and cumulative
registers, rollovers and resets, register starts (meter replacements), the month of the interval
start — is :mod:`workbench.core.registers`, the one definition the lake's ingest
(:func:`workbench.ingestion.prepare.prepare_readings`) applies too.  The same readings therefore give the
same consumption per meter and month here and through the lake (ingest → ``consumption`` table →
monthly sums); ``tests/inventory/test_one_consumption.py`` checks it on the demo plant's planted anomalies
and on a hand-computed case per rule, and ``benchmarks/accounting.py`` against an independent
hand-written DuckDB query.

:func:`meter_consumption` keeps DuckDB for what it is best at — scanning tens of millions of rows
(Parquet file, glob or directory, DataFrame, Arrow table) and sorting them when they must be
sorted — and applies the shared rules in numpy to blocks of about a million readings as DuckDB
streams them out; only monthly sums are kept, so memory does not grow with the readings.  Its
steps: :func:`_meter_table` (the meter register: kinds, capacities, a DuckDB ENUM of the ids so
that DuckDB hands over meter numbers, not strings) → :class:`_Source` (the readings as meter
number, naive local µs, value) → :func:`_stream` (blocks in input order when the input is grouped
by meter in time order — a meter export usually is — otherwise ``ORDER BY`` in DuckDB) →
:class:`_Monthly` (the rules per block, carrying the last reading across block boundaries) →
:func:`_closing_readings` (with ``end``: the reading at or after ``end`` that closes each
register's last interval, however far the gap) → :func:`_finish` (months, expected intervals,
completeness, meter attributes).

Conventions (docs/architecture.md): ``ts`` is naive local time (Asia/Shanghai; a tz-aware column
is converted); an interval value belongs to the interval starting at ``ts``; consumption between
two register readings belongs to the interval starting at the earlier one.

Everything is counted, nothing is hidden:

* rows repeated for one (meter, ts) with equal values are one reading (``n_duplicates`` = the
  repeats); **with different values every row of that (meter, ts) is excluded** and the key is
  counted in ``n_conflicts`` — the policy of the lake, which quarantines them: the interval is
  missing (interval register) or the register difference spans it (cumulative).  Nothing is
  averaged;
* values that are missing, not finite or negative are skipped (``n_invalid``; the lake
  quarantines them);
* a register drop is a rollover (``n_rollovers``) or a reset (``n_resets``), see
  :func:`workbench.core.registers.register_step`; any other drop is a register fall — the
  reading, and those after it that stay below the register, are left out and counted
  (``n_register_falls``; the lake quarantines them), see :func:`workbench.core.registers.register_falls`;
* a replaced meter has its own id; its first reading starts its register;
* an interval meter whose whole series only grows (a register's readings sent for an interval
  meter, :func:`workbench.core.registers.register_shaped`) is not summed: its consumption is NaN,
  ``n_intervals`` 0 and ``excluded`` names the reason; :func:`activity_from_meters` leaves it out
  and says so in the activity's ``document``.

Input: readings of meters not in ``meters`` are ignored.  The lake's own readings table works as
input too: readings flagged ``late`` in its ``quality_flag`` are skipped (the lake keeps them
without consumption, see :mod:`workbench.core.registers`), so the result is the lake's consumption; a
``quantity`` column must hold one quantity per meter (a meter's readings are its one register —
several quantities of one meter are refused, not mixed).  Spikes and stuck values are *not* altered: quality rules flag
them; ``completeness`` makes gaps visible where they matter.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from workbench.core import registers
from workbench.core.meters import LOCAL_TZ, normalize_meters, read_meters
from workbench.core.units import convert

__all__ = ["BLOCK_ROWS", "activity_from_meters", "meter_consumption", "read_meters"]

ACCOUNTED_SOURCES = ("combustion", "process", "purchased_electricity", "purchased_heat",
                     "exported_electricity", "exported_heat")

#: readings per block streamed out of DuckDB (the rules run per block; memory stays flat)
BLOCK_ROWS = 1 << 20
#: keys per meter read at a time after ``end`` to find the reading that closes a register's period
_CLOSING_KEYS = 256
_NAT = np.iinfo(np.int64).min
_COUNTS = ["n_intervals", "n_duplicates", "n_conflicts", "n_rollovers", "n_resets", "n_register_falls", "n_invalid"]


# --------------------------------------------------------------------------- meters and the source
@dataclass
class _Meters:
    """The meter register as arrays, in the order of ``ids`` (= the meter numbers)."""

    ids: list
    cumulative: np.ndarray
    capacity: np.ndarray


def _meter_table(meters: pd.DataFrame) -> _Meters:
    """Kinds and capacities as the lake reads the register (``normalize_meters``: an empty
    register kind is ``interval``, a capacity ≤ 0 or empty is none)."""
    m = normalize_meters(meters)
    return _Meters(ids=m["meter_id"].tolist(), cumulative=(m["register"] == "cumulative").to_numpy(),
                   capacity=m["rollover"].to_numpy(dtype="float64"))


class _Source:
    """The readings as DuckDB SQL: meter number (an ENUM of the meter ids), ``t`` (naive local µs)
    and ``v`` (value)."""

    def __init__(self, con, readings, meters: _Meters):
        self.con, self.meters, self.obj = con, meters, readings
        tag = uuid.uuid4().hex[:10]
        self.enum, self.name = f"wb_meter_{tag}", f"wb_readings_{tag}"
        self.registered, self.types = [], []
        if isinstance(readings, (str, Path)):
            p = str(readings)
            if Path(p).is_dir():
                p = str(Path(p) / "**" / "*.parquet")
            p = p.replace("'", "''")
            self.src = f"read_parquet('{p}', filename = true, file_row_number = true)"
            self.ordered_src, self.tie = self.src, "filename, file_row_number"   # ties in the files' order
        else:
            con.register(self.name, readings)
            self.registered.append(self.name)
            self.src, self.ordered_src, self.tie = self.name, None, None
        cols = {r[0]: str(r[1]).upper() for r in con.execute(f"DESCRIBE SELECT * FROM {self.src}").fetchall()}
        for c in ("meter_id", "ts", "value"):
            if c not in cols:
                raise ValueError(f"readings need a '{c}' column (have {sorted(cols)})")
        self.ids_are_text = cols["meter_id"] == "VARCHAR"
        ts_type = cols["ts"]
        if "WITH TIME ZONE" in ts_type:
            self.ts = f"timezone('{LOCAL_TZ}', ts)"
        elif ts_type == "TIMESTAMP":
            self.ts = "ts"                                       # as it is: filters reach Parquet statistics
        elif ts_type.startswith("TIMESTAMP") or ts_type == "DATE":
            self.ts = "CAST(ts AS TIMESTAMP)"
        else:
            self.ts = "TRY_CAST(ts AS TIMESTAMP)"
        con.execute(f"CREATE TYPE {self.enum} AS ENUM (SELECT unnest(?::VARCHAR[]))", [list(meters.ids)])
        self.types.append(self.enum)
        self.late = "quality_flag" in cols
        if "quantity" in cols:
            self._one_quantity_per_meter()

    def _one_quantity_per_meter(self) -> None:
        """A meter's readings are its one register: readings that carry several quantities of one
        meter (e.g. the lake's import and export energy) cannot be summed as one — refused."""
        many = self.con.execute(
            f"SELECT CAST(meter_id AS VARCHAR) AS meter_id, list(DISTINCT CAST(quantity AS VARCHAR)) AS q "
            f"FROM {self.src} WHERE TRY_CAST(CAST(meter_id AS VARCHAR) AS {self.enum}) IS NOT NULL "
            f"GROUP BY ALL HAVING count(DISTINCT quantity) > 1 ORDER BY 1 LIMIT 5").fetchall()
        if many:
            raise ValueError("readings of one meter carry more than one quantity: "
                             + "; ".join(f"{m}: {', '.join(sorted(map(str, q)))}" for m, q in many)
                             + " — pass the readings of one quantity per meter")

    def _ordered(self) -> tuple[str, str]:
        """The source with a tie-break column in input order (rows of one key keep their order, so
        "the first row" of a repeat is the same one the lake takes)."""
        if self.ordered_src is None:
            obj, name = self.obj, self.name + "_ordered"
            if isinstance(obj, pd.DataFrame):
                obj = obj.assign(wb_row=np.arange(len(obj), dtype=np.int64))
            elif isinstance(obj, pa.Table):
                obj = obj.append_column("wb_row", pa.array(np.arange(obj.num_rows, dtype=np.int64)))
            else:
                self.ordered_src, self.tie = self.src, "v"
                return self.ordered_src, self.tie
            self.con.register(name, obj)
            self.registered.append(name)
            self.ordered_src, self.tie = name, "wb_row"
        return self.ordered_src, self.tie

    def sql(self, lo=None, hi=None, *, order: bool = False, tie: bool = False, only=None) -> str:
        """Readings with ``lo ≤ ts < hi`` (µs; ``None``: unbounded) as ``m, t, v`` in input order,
        or sorted by (meter, ts, input order) with ``order``; ``tie`` adds the tie-break columns;
        ``only``: of these meter ids (a filter DuckDB takes into the Parquet scan)."""
        src, tiecols = self._ordered() if (order or tie) else (self.src, None)
        where = [f"{self.ts} IS NOT NULL"]
        if only is not None:
            ids = ", ".join("'" + str(x).replace("'", "''") + "'" for x in only)
            where.append(f"meter_id IN ({ids})" if self.ids_are_text else f"CAST(meter_id AS VARCHAR) IN ({ids})")
        if lo is not None:
            where.append(f"{self.ts} >= TIMESTAMP '{_timestamp(lo)}'")
        if hi is not None:
            where.append(f"{self.ts} < TIMESTAMP '{_timestamp(hi)}'")
        if self.late:                                            # the lake's readings: late ones carry nothing
            where.append("NOT coalesce(contains(CAST(quality_flag AS VARCHAR), 'late'), false)")
        extra = f", {tiecols}" if tiecols and tiecols != "v" else ""
        inner = (f"SELECT TRY_CAST(CAST(meter_id AS VARCHAR) AS {self.enum}) AS m, epoch_us({self.ts}) AS t, "
                 f"TRY_CAST(value AS DOUBLE) AS v{extra} FROM {src} WHERE {' AND '.join(where)}")
        cols = "m, t, v" + (extra if tie else "")
        return (f"SELECT {cols} FROM ({inner}) WHERE m IS NOT NULL"
                + (f" ORDER BY m, t, {tiecols}" if order else ""))

    def arrays(self, batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(meter number, t, v) of an Arrow batch of :meth:`sql`."""
        m = batch.column(0)
        lut = pd.Index(self.meters.ids).get_indexer(m.dictionary.to_pylist())
        g = lut[m.indices.to_numpy(zero_copy_only=False)]
        t = batch.column(1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        v = batch.column(2).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        return g, t, v

    def close(self) -> None:
        for name in self.registered:
            self.con.unregister(name)
        for t in self.types:
            try:
                self.con.execute(f"DROP TYPE IF EXISTS {t}")
            except duckdb.Error:
                pass


def _timestamp(us: int) -> str:
    return str(np.datetime64(int(us), "us")).replace("T", " ")


def _batches(con, sql: str):
    rel = con.sql(sql)
    reader = (rel.to_arrow_reader(BLOCK_ROWS) if hasattr(rel, "to_arrow_reader")
              else rel.fetch_record_batch(BLOCK_ROWS))
    try:
        yield from reader
    finally:
        close = getattr(reader, "close", None)
        if close:
            close()


# --------------------------------------------------------------------------- the rules per block
@dataclass
class _Monthly:
    """The shared register rules (:mod:`workbench.core.registers`) applied block by block to readings
    grouped by meter in time order; keeps monthly sums and counts only.

    The last key run of a block is held back (a repeat of it may open the next block) and the last
    kept reading is carried into the next block as a reading that only continues its register.
    ``lo``/``hi`` (µs) bound the interval starts (and the counted rows) that go into the sums.
    """

    meters: _Meters
    step: int
    lo: int | None = None
    hi: int | None = None
    parts: list = field(default_factory=list)
    counts: list = field(default_factory=list)
    held: tuple | None = None
    prev: tuple | None = None
    tail: tuple | None = None

    def __post_init__(self):
        self.reset()

    def reset(self) -> None:
        """Back to no readings seen (the input is read again, sorted)."""
        self.parts, self.counts, self.held, self.prev, self.tail = [], [], None, None, None
        n = len(self.meters.ids)
        self.last_t = np.full(n, _NAT, np.int64)
        self.last_v = np.full(n, np.nan)
        self.seen = np.zeros(n, bool)
        # the shape of each meter's series (valid values, repeats included, in input order within a
        # timestamp — what the lake's preparation judges): values, rising steps, any falling step,
        # the first and the last value and time
        self.shape_n = np.zeros(n, np.int64)
        self.shape_rises = np.zeros(n, np.int64)
        self.shape_fell = np.zeros(n, bool)
        self.shape_first = np.full(n, np.nan)
        self.shape_first_t = np.full(n, _NAT, np.int64)
        self.shape_last = np.full(n, np.nan)
        self.shape_last_t = np.full(n, _NAT, np.int64)

    def shaped(self) -> dict:
        """Interval meters whose whole series has a cumulative register's shape
        (:func:`workbench.core.registers.register_shaped`): meter number → the reason."""
        hit = registers.register_shaped(self.shape_n, self.shape_rises, self.shape_fell) & ~self.meters.cumulative
        out = {}
        for k in np.flatnonzero(hit).tolist():
            t0, t1 = (pd.Timestamp(np.datetime64(int(x), "us")) for x in (self.shape_first_t[k], self.shape_last_t[k]))
            out[k] = (f"register shape: meter {self.meters.ids[k]} is registered as an interval meter but its "
                      f"{self.shape_n[k]} values from {self.shape_first[k]:.12g} ({t0}) to {self.shape_last[k]:.12g} "
                      f"({t1}) only grow, as a cumulative register's do — its consumption is left out; register "
                      f"it as cumulative or check the export")
        return out

    def _shape(self, g, t, v) -> None:
        """Add valid readings (not carried ones) of a block to the shape counts of their meters."""
        same = g[1:] == g[:-1]
        starts = np.r_[0, np.flatnonzero(~same) + 1]
        ends = np.r_[starts[1:], g.size]
        gm = g[starts]
        d = np.diff(v)
        cross = self.shape_last[gm]                             # the step from the previous block
        d0 = v[starts] - cross
        had = ~np.isnan(cross)
        # steps per series by sums over its rows (the step into the next series, at ends − 1,
        # taken off again): no per-row series number, no gathers
        up, down = np.zeros(g.size, np.int8), np.zeros(g.size, np.int8)
        np.greater(d, 0, out=up[:-1].view(bool))
        np.less(d, 0, out=down[:-1].view(bool))
        rises = np.add.reduceat(up, starts, dtype=np.int64) - up[ends - 1] + (had & (d0 > 0))
        fell = (np.add.reduceat(down, starts, dtype=np.int64) - down[ends - 1] > 0) | (had & (d0 < 0))
        new = self.shape_n[gm] == 0
        self.shape_first[gm[new]], self.shape_first_t[gm[new]] = v[starts[new]], t[starts[new]]
        self.shape_n[gm] += ends - starts
        self.shape_rises[gm] += rises
        self.shape_fell[gm] |= fell
        self.shape_last[gm], self.shape_last_t[gm] = v[ends - 1], t[ends - 1]

    # ---- input order
    def grouped(self, g: np.ndarray, t: np.ndarray) -> bool:
        """Whether the input, with this block, is still grouped by meter in time order."""
        if not g.size:
            return True
        same = g[1:] == g[:-1]
        if (same & (t[1:] < t[:-1])).any():
            return False
        runs = g[np.r_[0, np.flatnonzero(~same) + 1]]
        if self.tail is not None and self.tail[0] == g[0]:
            if t[0] < self.tail[1]:
                return False
            runs = runs[1:]
        if self.seen[runs].any() or np.unique(runs).size != runs.size:
            return False
        self.seen[runs] = True
        self.tail = (g[-1], t[-1])
        return True

    # ---- blocks
    def feed(self, g: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
        if self.held is not None:
            g, t, v = (np.concatenate([a, b]) for a, b in zip(self.held, (g, t, v)))
            self.held = None
        if not g.size:
            return
        k = g.size - 1                                           # start of the last key run
        while k > 0 and g[k - 1] == g[-1] and t[k - 1] == t[-1]:
            k -= 1
        self.held = (g[k:], t[k:], v[k:])
        if k:
            self._block(g[:k], t[:k], v[:k])

    def finish(self) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            self._block(*held)

    def _block(self, g, t, v) -> None:
        is_prev = None
        if self.prev is not None:
            g, t, v = (np.concatenate([a, b]) for a, b in zip(self.prev, (g, t, v)))
            is_prev = np.zeros(g.size, bool)
            is_prev[0] = True
        self.rules(g, t, v, is_prev)

    def rules(self, g, t, v, is_prev=None, *, shape: bool = True) -> None:
        """Rules 1–6 on readings sorted by (meter, ts); ``is_prev``: readings that only continue
        a register (kept readings seen before).  ``shape``: count the readings into the series'
        shapes (not for the readings that only close a period)."""
        ok = registers.valid_values(v)                               # 1 valid readings
        if not ok.all():
            bad = ~ok
            self._count("n_invalid", g[bad], t[bad])
            g, t, v = g[ok], t[ok], v[ok]
            is_prev = is_prev[ok] if is_prev is not None else None
        if not g.size:
            return
        if shape:
            if is_prev is None or not is_prev.any():
                new = slice(None)
            elif is_prev[0] and not is_prev[1:].any():
                new = slice(1, None)                                 # the usual case: a view, no copy
            else:
                new = ~is_prev
            if g[new].size:
                self._shape(g[new], t[new], v[new])
        same = g[1:] == g[:-1]
        runs = registers.repeated_keys(same, np.diff(t), v)          # 2 repeated timestamps
        if runs is not None:
            first = runs.rows[runs.is_first]
            self._count("n_duplicates", g[first], t[first], np.bincount(runs.run) - 1)
            conflict = first[runs.conflict]
            self._count("n_conflicts", g[conflict], t[conflict])
            keep = np.ones(g.size, bool)
            keep[runs.excluded()] = False
            g, t, v = g[keep], t[keep], v[keep]
            is_prev = is_prev[keep] if is_prev is not None else None
            if not g.size:
                return
            same = g[1:] == g[:-1]
        starts = np.r_[0, np.flatnonzero(~same) + 1]
        ends = np.r_[starts[1:], g.size]
        gm = g[starts]
        skip = np.flatnonzero(is_prev) if is_prev is not None and is_prev.any() else None
        fell, _ = registers.register_falls(v, starts, ends, self.meters.cumulative[gm],    # 4b register falls
                                           self.meters.capacity[gm], skip=skip)
        if fell.size:
            self._count("n_register_falls", g[fell], t[fell])
            keep = np.ones(g.size, bool)
            keep[fell] = False
            g, t, v = g[keep], t[keep], v[keep]
            is_prev = is_prev[keep] if is_prev is not None else None
            skip = np.flatnonzero(is_prev) if is_prev is not None and is_prev.any() else None
            same = g[1:] == g[:-1]
            starts = np.r_[0, np.flatnonzero(~same) + 1]
            ends = np.r_[starts[1:], g.size]
            gm = g[starts]
        c = registers.consumption(t, v, starts, ends, self.meters.cumulative[gm],   # 3–5 registers
                                  self.meters.capacity[gm], step=self.step, skip=skip)
        self.last_t[gm], self.last_v[gm] = t[ends - 1], v[ends - 1]
        self.prev = (g[-1:], t[-1:], v[-1:])
        cg, cts, cval, roll, reset = np.repeat(gm, c.sizes), c.ts, c.value, c.rollover, c.reset
        inside = self._inside(cts)
        if inside is not None:
            pos = np.cumsum(inside) - 1
            roll, reset = pos[roll[inside[roll]]], pos[reset[inside[reset]]]
            cg, cts, cval = cg[inside], cts[inside], cval[inside]
        if not cg.size:
            return
        month = registers.month_number(cts)                          # 6 month of the interval start
        seg = np.r_[0, np.flatnonzero((cg[1:] != cg[:-1]) | (month[1:] != month[:-1])) + 1]
        at = np.searchsorted
        self.parts.append(pd.DataFrame({
            "g": cg[seg], "month": month[seg], "consumption": np.add.reduceat(cval, seg),
            "n_intervals": np.diff(np.r_[seg, cg.size]),
            "n_rollovers": np.bincount(at(seg, roll, side="right") - 1, minlength=seg.size),
            "n_resets": np.bincount(at(seg, reset, side="right") - 1, minlength=seg.size)}))

    def _inside(self, t) -> np.ndarray | None:
        if self.lo is None and self.hi is None:
            return None
        ok = np.ones(t.size, bool)
        if self.lo is not None:
            ok &= t >= self.lo
        if self.hi is not None:
            ok &= t < self.hi
        return None if ok.all() else ok

    def _count(self, name, g, t, weights=None) -> None:
        inside = self._inside(t)
        if inside is not None:
            g, t = g[inside], t[inside]
            weights = weights[inside] if weights is not None else None
        if g.size:
            w = np.ones(g.size, np.int64) if weights is None else np.asarray(weights, np.int64)
            df = pd.DataFrame({"g": g, "month": registers.month_number(t), name: w})
            self.counts.append(df.groupby(["g", "month"], as_index=False)[name].sum())

    def frame(self) -> pd.DataFrame:
        """``g, month, consumption`` and the counts, one row per meter and month."""
        cols = ["g", "month", "consumption", *_COUNTS]
        parts = [p for p in self.parts + self.counts if len(p)]
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype="float64" if c == "consumption" else "int64") for c in cols})
        df = pd.concat(parts, ignore_index=True)
        for c in cols[2:]:
            if c not in df.columns:
                df[c] = 0
        df = df.fillna(0).groupby(["g", "month"], as_index=False)[cols[2:]].sum()
        df["consumption"] = df["consumption"].astype("float64")
        for c in _COUNTS:
            df[c] = df[c].astype("int64")
        return df[cols]


# --------------------------------------------------------------------------- steps
def _stream(con, source: _Source, acc: _Monthly, lo, hi) -> None:
    """All readings in ``[lo, hi)`` through ``acc``: in input order when it is grouped by meter in
    time order, else sorted by DuckDB (the first pass is dropped as soon as the order breaks)."""
    first = _batches(con, source.sql(lo, hi))
    for batch in first:
        g, t, v = source.arrays(batch)
        if not acc.grouped(g, t):
            first.close()                                        # stop the first pass before the second
            break
        acc.feed(g, t, v)
    else:
        acc.finish()
        return
    acc.reset()
    for batch in _batches(con, source.sql(lo, hi, order=True)):
        acc.feed(*source.arrays(batch))
    acc.finish()


def _closing_readings(con, source: _Source, acc: _Monthly, hi: int) -> None:
    """With ``end``: the first reading at or after it that the rules keep closes each cumulative
    register's last interval of the period — however far the gap (the lake puts that difference
    on the earlier reading too).  A key the rules exclude (conflict, invalid, a register fall) is
    looked past: the next ``_CLOSING_KEYS`` keys of each meter are read at a time (a register that
    stays below its last kept reading for long is looked past in few queries); the differences
    after the closing one start after ``end`` and are not counted."""
    need = np.flatnonzero(acc.meters.cumulative & (acc.last_t != _NAT))
    bound = np.full(need.size, hi, np.int64)
    ids = np.asarray(acc.meters.ids, dtype=object)
    while need.size:
        name = f"wb_bound_{uuid.uuid4().hex[:10]}"
        con.register(name, pd.DataFrame({"meter_id": ids[need].astype(str), "lo": bound}))
        try:
            _, tiecols = source._ordered()
            sql = (f"WITH r AS ({source.sql(hi, None, tie=True, only=ids[need])}), "
                   f"f AS (SELECT m, t FROM (SELECT DISTINCT r.m, r.t FROM r JOIN {name} b "
                   f"ON CAST(r.m AS VARCHAR) = b.meter_id AND r.t >= b.lo) "
                   f"QUALIFY row_number() OVER (PARTITION BY m ORDER BY t) <= {_CLOSING_KEYS}) "
                   f"SELECT r.m, r.t, r.v "
                   f"FROM r JOIN f USING (m, t) ORDER BY r.m, r.t, {tiecols}")
            parts = [source.arrays(b) for b in _batches(con, sql)]
        finally:
            con.unregister(name)
        if not parts or not sum(p[0].size for p in parts):
            return
        g, t, v = (np.concatenate(x) for x in zip(*parts))
        found = np.unique(g)
        before = acc.last_t[found].copy()
        # each meter's last kept reading of the period goes first, as a reading that only
        # continues its register; then the candidates (up to _CLOSING_KEYS keys per meter)
        pg = np.r_[found, g]
        pt = np.r_[acc.last_t[found], t]
        pv = np.r_[acc.last_v[found], v]
        first = np.r_[np.ones(found.size, bool), np.zeros(g.size, bool)]
        order = np.lexsort((~first, pt, pg))
        acc.prev = None
        acc.rules(pg[order], pt[order], pv[order], first[order], shape=False)
        # meters whose candidates were all excluded (conflict, invalid value, register fall): look past them
        still = found[acc.last_t[found] == before]
        need = still
        bound = pd.Series(t).groupby(g).max().reindex(still).to_numpy(dtype=np.int64) + 1


def _finish(monthly: pd.DataFrame, meters: _Meters, frame: pd.DataFrame, start, end,
            interval_minutes: int, excluded: dict | None = None) -> pd.DataFrame:
    """Meter ids and periods, the cut to whole periods, expected intervals, completeness, the
    meters left out (``excluded``: meter number → reason) and the meter's attributes."""
    g = monthly["g"].to_numpy(np.int64)
    out = pd.DataFrame({
        "meter_id": pd.Series(np.asarray(meters.ids, dtype=object)[g], dtype="str"),
        "period": pd.Series(monthly["month"].to_numpy(np.int64).astype("datetime64[M]").astype(str), dtype="str"),
        "consumption": monthly["consumption"].to_numpy(),
        **{c: monthly[c].to_numpy() for c in _COUNTS}})
    ex = excluded or {}
    out["excluded"] = np.array([ex.get(k, "") for k in g.tolist()], dtype=object) if ex else ""
    left_out = out["excluded"] != ""
    if left_out.any():          # a series that contradicts its kind: no consumption, no interval counted
        out.loc[left_out, "consumption"] = np.nan
        out.loc[left_out, "n_intervals"] = 0
    if end:
        out = out[out["period"] < pd.Timestamp(end).strftime("%Y-%m")]
    if start:
        out = out[out["period"] >= pd.Timestamp(start).strftime("%Y-%m")]
    out = out.sort_values(["meter_id", "period"], kind="stable").reset_index(drop=True)
    out = out[["meter_id", "period", "consumption", "n_intervals", "n_duplicates", "n_conflicts",
               "n_rollovers", "n_resets", "n_register_falls", "n_invalid", "excluded"]]
    days = pd.PeriodIndex(out["period"], freq="M").days_in_month
    out["expected_intervals"] = np.asarray(days, dtype=np.int64) * (24 * 60 // interval_minutes)
    out["completeness"] = out["n_intervals"] / out["expected_intervals"]
    cols = ["meter_id", "node_id", "source", "item", "unit", "register", "is_main"]
    out = out.merge(frame[[c for c in cols if c in frame.columns]], on="meter_id", how="left")
    return out.reset_index(drop=True)


def meter_consumption(readings, meters: pd.DataFrame, *, start: str | None = None,
                      end: str | None = None, interval_minutes: int = 15,
                      con: duckdb.DuckDBPyConnection | None = None,
                      threads: int | None = None) -> pd.DataFrame:
    """Consumption per meter and calendar month, in each meter's own unit (the rules of
    :mod:`workbench.core.registers`, the same as the lake's).

    ``readings`` is a Parquet path (file, glob or directory), a DataFrame or an Arrow table with
    ``meter_id, ts, value`` (optional ``quantity``, ``quality_flag``: see the module docstring).
    ``start``/``end`` (``YYYY-MM-DD``, end exclusive) bound the interval starts counted; a
    cumulative meter's last interval before ``end`` is closed by its first kept reading at or
    after ``end``, found however far it is, and the result is cut back to whole periods.
    Returns ``meter_id, period, consumption, n_intervals, n_duplicates, n_conflicts, n_rollovers,
    n_resets, n_register_falls, n_invalid, excluded, expected_intervals, completeness`` plus the
    meter's attributes.  ``excluded`` is empty, or the reason a meter's consumption is left out
    (NaN, no interval counted): an interval meter whose series only grows like a register's
    (:func:`workbench.core.registers.register_shaped`) — flagged, never summed.  With ``start``
    the registers begin at their first reading from ``start`` on (as a batch that starts there
    would): a register fall whose last kept reading lies before ``start`` is not seen, and the
    shape of a series is judged on the readings from ``start`` on.
    ``threads`` caps DuckDB's worker threads (default: DuckDB's, one per core).
    """
    m = _meter_table(meters)
    step = int(interval_minutes) * 60_000_000
    lo = pd.Timestamp(start).value // 1000 if start else None
    hi = pd.Timestamp(end).value // 1000 if end else None
    acc = _Monthly(m, step, lo, hi)
    own = con is None
    con = con or duckdb.connect()
    source = None
    try:
        if own:  # no progress bar in logs; in Jupyter DuckDB refuses the setting without ipywidgets
            try:
                con.execute("SET enable_progress_bar = false")
            except duckdb.Error:
                pass
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        if m.ids:
            source = _Source(con, readings, m)
            _stream(con, source, acc, lo, hi)
            if hi is not None:
                _closing_readings(con, source, acc, hi)
    finally:
        if source is not None:
            source.close()
        if own:
            con.close()
    return _finish(acc.frame(), m, meters, start, end, interval_minutes, acc.shaped())


def activity_from_meters(consumption: pd.DataFrame, *, enterprise: str, library=None,
                         document: str = "meter readings") -> pd.DataFrame:
    """Monthly activity records from metered consumption.

    For each period, source and item: sub-meters give the activity of the node they measure; when
    a boundary (main, ``is_main``) meter exists, it fixes the total and the difference
    main − Σ sub-meters (line losses, unmetered users) is recorded on the enterprise node, so
    the facilities add up to the billing meter.  Quantities are converted with pint to the item's
    default unit of the factor library before they are added.  Meters whose source is not an
    accounting source (e.g. self-generated electricity) are left out.  Meters whose consumption
    :func:`meter_consumption` left out (``excluded``) are not summed: the records of their period,
    source and item say ``left out: M1 (register shape)`` in ``document``, and
    ``attrs["left_out"]`` lists every (period, source, item) with such meters — also those left
    with no record at all — as records (dicts: ``period``, ``source``, ``item``, ``note``): plain
    values, since pandas compares the ``attrs`` of frames it concatenates.
    """
    from workbench.core.factors import default_library

    lib = library or default_library()
    c = consumption[consumption["source"].isin(ACCOUNTED_SOURCES)].copy()
    left_out = pd.DataFrame(columns=["period", "source", "item", "note"])
    if "excluded" in c.columns:     # meters whose series contradicts their kind: never summed, named
        ex = c["excluded"].fillna("").astype(str) != ""
        if ex.any():
            e = c[ex]
            left_out = (e.assign(note=e["meter_id"].astype(str) + " (" + e["excluded"].str.split(":").str[0] + ")")
                        .groupby(["period", "source", "item"], as_index=False)["note"]
                        .agg(lambda x: ", ".join(sorted(set(x)))))
            c = c[~ex]
    if c.empty:
        out = pd.DataFrame(columns=["record_id", "node_id", "period", "source", "item", "quantity",
                                    "unit", "data_tier", "document"])
        out.attrs["left_out"] = left_out.to_dict("records")
        return out
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
    if len(left_out):
        act = act.merge(left_out, on=["period", "source", "item"], how="left")
        has = act["note"].notna()
        act.loc[has, "document"] = act.loc[has, "document"] + "; left out: " + act.loc[has, "note"]
        act = act.drop(columns="note")
    act["data_tier"] = "primary"
    act = act.sort_values(["period", "source", "item", "node_id"]).reset_index(drop=True)
    act["record_id"] = ("meter:" + act["period"] + ":" + act["source"] + ":" + act["item"] + ":" + act["node_id"])
    out = act[["record_id", "node_id", "period", "source", "item", "quantity", "unit", "data_tier", "document"]]
    out.attrs["left_out"] = left_out.to_dict("records")
    return out
