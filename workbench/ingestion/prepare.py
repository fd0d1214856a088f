"""Preparation of meter readings (seed §8.1 a): raw batch → curated ``readings``, ``consumption``,
``quarantine`` and ``gaps``.

Every step leaves a flag on the row or a reason in the quarantine — nothing is fixed silently:

=====================  ==========================================================================
step                   what happens
=====================  ==========================================================================
meter                  ``meter_id`` not in the meter register → quarantine ``meter not registered``
time                   tz-aware input is converted to naive local time (``tz``, default
                       Asia/Shanghai, UTC+8, no DST) with pandas ``tz_convert`` (so inputs from
                       DST zones such as Europe/Berlin land on the right local instant); naive input
                       *is* local time — or, with ``source_tz``, local time of that zone (a wall time
                       that does not exist or is ambiguous at a DST switch → quarantine).  Strings
                       may mix offsets.  Missing/unparseable → quarantine.  A timestamp off the
                       ``interval`` grid (local midnight + k × 15 min) is kept and flagged ``off_grid``.
value                  missing, non-numeric or infinite → quarantine; negative → quarantine
                       (``negative interval value`` / ``negative register reading``)
unit                   converted with pint (:func:`workbench.core.units.conversion_factor`) to the
                       meter's unit; an unknown unit or one of another dimension → quarantine,
                       the reason naming both units.  A row written in another unit (or another
                       spelling: 度 for kWh) keeps the value and unit as written beside the
                       converted ones (``value_original``, ``unit_original``; empty for rows in
                       the meter's unit).  A batch without a ``unit`` column is taken
                       to be in the meter's units (counted as ``unit_assumed``).
register               an optional ``register`` column that contradicts the meter → quarantine
duplicates             same key (meter_id, ts, quantity) and same value (after conversion, to
                       1e-9 relative — :func:`workbench.core.registers.repeated_keys`): collapsed into
                       one row flagged ``duplicate`` and counted;
                       different values: *all* rows of the key quarantined
                       (``conflicting duplicate`` — which one is right cannot be known here; the
                       interval then shows up as missing).  A row equal to the stored ``previous``
                       reading is dropped (``duplicate_stored``); a different one is quarantined
                       (``conflicts with stored value``).
service                a reading before ``installed`` or after the ``removed`` day is kept and
                       flagged ``outside_service``; the first reading of a meter that
                       ``replaces`` another is flagged ``replacement_start``
=====================  ==========================================================================

Registers → interval consumption is :func:`workbench.core.registers.consumption` — the one definition
of the register arithmetic, which :func:`workbench.inventory.readings.meter_consumption` (the accounting)
applies too, so the lake and the accounting give the same consumption per meter and month
(``tests/inventory/test_one_consumption.py``): an ``interval`` meter's value is the consumption of the
interval starting at ``ts``.  A ``cumulative`` meter is differenced: consumption between two
successive readings belongs to the interval starting at the earlier one; ``previous`` (the last
stored reading per meter) continues the register across batches (passed as ``skip``: it emits
nothing itself).  A drop of the register is a ``rollover`` when the meter has a capacity (> 0),
the previous reading was ≥ 90 % of it and the new one is ≤ 10 % of it (consumption = value +
capacity − previous), a ``reset`` when the new reading is ≤ 10 % of the previous one (the
register restarted near zero; consumption = value).  Any other drop is a **register fall**: the
reading is quarantined (``register fall: … fell from 110 (kept reading at …) to 95 …``, counted
as ``register_fall``), and so is every later one that stays below the register's last kept
reading, until one rises above it or drops plausibly from it
(:func:`workbench.core.registers.register_falls`) — never negative or a register's worth of
consumption; the stored ``previous`` reading is the register's state across batches, so the
result does not depend on how the readings are split into batches.  A meter's first reading without a
``previous`` — in particular the first reading of a replacement meter — starts the register and
is never consumption.  Which rows take part (rules 1–2: valid values, repeated timestamps) is
decided above, with the same functions and tolerances.

**Gap-spanning differences are not spread.**  When readings are missing, the difference of
the two readings around the gap stays on *one* consumption row at the earlier reading (exactly as
:mod:`workbench.inventory.readings` attributes it), flagged ``gap_spanning``, with ``span`` = the number of
intervals it covers.  Monthly totals are therefore those of the accounting; a caller that needs
one row per interval calls :func:`fill_gaps`, which spreads such a row evenly (``linear``) or by
the meter's daily profile (``profile``) into rows flagged ``estimated`` — the total is kept.

Anomaly flags (the value is never changed):

* ``spike`` — the per-interval rate (value / span) is ≥ ``spike_ratio`` (4) × the median of its
  ±3 neighbours in the same meter series (a rolling median of 7 without the point itself, mirrored
  at the series ends) *and* its robust z-score (rate − median) / (1.4826 × MAD of the neighbours,
  at least 5 % of the median) is ≥ ``spike_z`` (6).  Spikes of up to two intervals are found;
  series shorter than 7 rows are not tested.
* ``stuck`` — the same non-zero value for ≥ ``stuck_min_run`` (12, i.e. 3 h) consecutive intervals,
  on a meter whose flat runs cover at most ``stuck_max_share`` (50 %) of its rows in the batch
  (a meter that never varies cannot be judged).  A run of zeros is not ``stuck``: the equipment
  may be off (the kiln stop of the demo) — range and staleness rules look at those.
* ``negative`` — negative consumption (cannot arise from valid rows; kept as a guard).

Missing intervals are reported in ``gaps`` (meter_id, quantity, start, end = the last missing
interval start, n_missing, n_quarantined = how many of them were quarantined) — never filled.

The accounting follows the same duplicate policy: it leaves every row of a conflicting key out
too (and counts the key in ``n_conflicts``) instead of averaging.  What only the lake can know is
arrival order: a register reading that arrives after a later one was stored is kept flagged
``late`` without consumption (:mod:`workbench.ingestion.pipeline`), and a value arriving for a stored key is
quarantined; the accounting reproduces the lake's numbers on the lake's readings table (it skips
``late`` readings) — see :mod:`workbench.core.registers`.

Output: ``quality_flag`` is ``ok`` or the row's flags joined with ``|`` (``gap_spanning|spike``);
string columns are pandas categoricals (dictionary-encoded in Parquet); ``ts`` is naive
``datetime64[us]``.  ``counts`` has ``rows_in``, ``readings``, ``consumption``, ``quarantined``,
one entry per quarantine reason (``meter_not_registered``, ``unit_mismatch``,
``conflicting_duplicate`` …), per flag, ``duplicate`` (rows kept as a collapsed duplicate),
``duplicate_rows_dropped``, ``duplicate_stored``, ``gaps`` and ``missing_intervals``.

Everything is vectorised over numpy arrays (one sort, which is skipped when the batch is already
ordered by meter and time; string columns are dictionary-encoded with pyarrow, constant and
sorted columns as runs); Python loops run only over meters and over the (few) rows quarantined as
conflicts, never over the rows of a batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench.core import registers
from workbench.core.meters import LOCAL_TZ, normalize_meters
from workbench.core.units import (
    UnitError,
    UnitMismatchError,
    conversion_factor,
)

__all__ = [
    "Prepared", "Thresholds", "prepare_readings", "fill_gaps", "month_of", "normalize_meters",
    "READINGS_SCHEMA", "CONSUMPTION_SCHEMA", "QUARANTINE_SCHEMA", "GAPS_SCHEMA", "validate_tables",
    "FLAGS", "LOCAL_TZ",
]


#: every flag a curated row can carry (``quality_flag`` joins them with ``|``; ``ok`` = none)
FLAGS = ("off_grid", "duplicate", "outside_service", "replacement_start", "rollover", "reset",
         "gap_spanning", "spike", "stuck", "negative", "estimated", "late")
_BIT = {f: 1 << i for i, f in enumerate(FLAGS)}
#: ``late``: a register reading that reached the lake after a later one was stored (set by the
#: lake's ingest, see :func:`workbench.ingestion.pipeline._stage_readings`); it carries no consumption
READING_FLAGS = ("off_grid", "duplicate", "outside_service", "replacement_start", "late")
CONSUMPTION_FLAGS = ("off_grid", "rollover", "reset", "gap_spanning", "spike", "stuck", "negative", "estimated")

# quarantine reason codes (0 = row is fine); the counts use these names
_REASONS = ["ok", "meter_not_registered", "missing_timestamp", "unparseable_timestamp",
            "nonexistent_local_time", "missing_value", "non_numeric_value", "infinite_value",
            "missing_unit", "unknown_unit", "unit_mismatch", "register_mismatch", "negative_value",
            "conflicting_duplicate", "conflicts_stored", "late_register_reading", "register_shape",
            "register_fall"]
(R_OK, R_METER, R_TS_MISSING, R_TS_BAD, R_TS_LOCAL, R_VAL_MISSING, R_VAL_BAD, R_VAL_INF,
 R_UNIT_MISSING, R_UNIT_UNKNOWN, R_UNIT_MISMATCH, R_REGISTER, R_NEGATIVE, R_CONFLICT,
 R_CONFLICT_STORED, R_LATE, R_SHAPE, R_FALL) = range(len(_REASONS))


@dataclass(frozen=True)
class Thresholds:
    """Thresholds of the anomaly flags (see the module docstring)."""

    rollover_fraction: float = registers.ROLLOVER_FRACTION
    reset_fraction: float = registers.RESET_FRACTION
    spike_ratio: float = 4.0
    spike_z: float = 6.0
    spike_window: int = 3
    stuck_min_run: int = 12
    stuck_max_share: float = 0.5
    duplicate_rtol: float = registers.DUPLICATE_RTOL


@dataclass
class Prepared:
    """Result of :func:`prepare_readings` (no batch id: the lake adds it).

    ``readings``: meter_id, node_id, identifier, ts, quantity, value, unit, register, quality_flag,
    value_original, unit_original (the value and unit as written where the unit was not the
    meter's and the value was converted to it; empty otherwise).
    ``consumption``: meter_id, node_id, ts (interval start), quantity, value, unit, quality_flag,
    span (intervals covered; > 1 only for ``gap_spanning`` rows).
    ``quarantine``: table, row (as in the source), reason, payload (JSON of the original row).
    ``gaps``: meter_id, quantity, start, end (last missing interval start), n_missing, n_quarantined.
    ``counts``: rows in/out, each flag and each quarantine reason.
    """

    readings: pd.DataFrame
    consumption: pd.DataFrame
    quarantine: pd.DataFrame
    gaps: pd.DataFrame
    counts: dict = field(default_factory=dict)
    meters: pd.DataFrame | None = None

    def connect(self, con=None):
        """A DuckDB connection with views ``readings``, ``consumption``, ``quarantine``, ``gaps``, ``meters``."""
        from workbench.lake.quality import connect
        return connect(readings=self.readings, consumption=self.consumption, meters=self.meters,
                       quarantine=self.quarantine, gaps=self.gaps, con=con)


# --------------------------------------------------------------------------- schemas
def _schemas():
    import pandera.pandas as pa_

    def stringlike(s: pd.Series) -> bool:
        return isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s.dtype) \
            or s.dtype == object

    def naive_ts(s: pd.Series) -> bool:
        return pd.api.types.is_datetime64_dtype(s.dtype) and getattr(s.dtype, "tz", None) is None

    def flag_names(s: pd.Series) -> bool:
        cats = s.cat.categories if isinstance(s.dtype, pd.CategoricalDtype) else pd.unique(s.dropna())
        ok = set(FLAGS) | {"ok"}
        return all(set(str(c).split("|")) <= ok for c in cats)

    S = pa_.Check(stringlike, error="must be a string or categorical column")
    TS = pa_.Check(naive_ts, error="must be naive datetime64 (local time, no tz)")
    FIN = pa_.Check(lambda s: bool(np.isfinite(s.to_numpy()).all()), error="must be finite")
    FL = pa_.Check(flag_names, error=f"quality_flag must be 'ok' or '|'-joined flags of {FLAGS}")
    def registers(s: pd.Series) -> bool:
        vals = s.cat.categories if isinstance(s.dtype, pd.CategoricalDtype) else pd.unique(s.dropna())
        return {str(x) for x in vals} <= {"interval", "cumulative"}

    REG = pa_.Check(registers, error="register must be 'interval' or 'cumulative'")
    readings = pa_.DataFrameSchema({
        "meter_id": pa_.Column(checks=S, nullable=False),
        "node_id": pa_.Column(checks=S, nullable=True),
        "identifier": pa_.Column(checks=S, nullable=True),
        "ts": pa_.Column(checks=TS, nullable=False),
        "quantity": pa_.Column(checks=S, nullable=False),
        "value": pa_.Column("float64", checks=[FIN, pa_.Check.ge(0)], nullable=False),
        "unit": pa_.Column(checks=S, nullable=False),
        "register": pa_.Column(checks=[S, REG], nullable=False),
        "quality_flag": pa_.Column(checks=[S, FL], nullable=False),
        "value_original": pa_.Column("float64", nullable=True),
        "unit_original": pa_.Column(checks=S, nullable=True),
    }, strict=True, name="readings")
    consumption = pa_.DataFrameSchema({
        "meter_id": pa_.Column(checks=S, nullable=False),
        "node_id": pa_.Column(checks=S, nullable=True),
        "ts": pa_.Column(checks=TS, nullable=False),
        "quantity": pa_.Column(checks=S, nullable=False),
        "value": pa_.Column("float64", checks=FIN, nullable=False),
        "unit": pa_.Column(checks=S, nullable=False),
        "quality_flag": pa_.Column(checks=[S, FL], nullable=False),
        "span": pa_.Column("int32", checks=pa_.Check.ge(1), nullable=False),
    }, strict=True, name="consumption")
    quarantine = pa_.DataFrameSchema({
        "table": pa_.Column(checks=S, nullable=False),
        "row": pa_.Column("int64", nullable=False),
        "reason": pa_.Column(checks=[S, pa_.Check.str_length(min_value=1)], nullable=False),
        "payload": pa_.Column(checks=[S, pa_.Check(lambda s: s.str.startswith("{"),
                                                   error="payload must be a JSON object")], nullable=False),
    }, strict=True, name="quarantine")
    gaps = pa_.DataFrameSchema({
        "meter_id": pa_.Column(checks=S, nullable=False),
        "quantity": pa_.Column(checks=S, nullable=False),
        "start": pa_.Column(checks=TS, nullable=False),
        "end": pa_.Column(checks=TS, nullable=False),
        "n_missing": pa_.Column("int64", checks=pa_.Check.ge(1), nullable=False),
        "n_quarantined": pa_.Column("int64", checks=pa_.Check.ge(0), nullable=False),
    }, strict=True, name="gaps")
    return readings, consumption, quarantine, gaps


READINGS_SCHEMA, CONSUMPTION_SCHEMA, QUARANTINE_SCHEMA, GAPS_SCHEMA = _schemas()


def validate_tables(readings=None, consumption=None, quarantine=None, gaps=None) -> None:
    """Validate curated tables with the pandera schemas (lazy: every problem is reported at once).

    Raises ``pandera.errors.SchemaErrors`` whose message lists the table, column, check and
    failing values.
    """
    for df, schema in ((readings, READINGS_SCHEMA), (consumption, CONSUMPTION_SCHEMA),
                       (quarantine, QUARANTINE_SCHEMA), (gaps, GAPS_SCHEMA)):
        if df is not None:
            schema.validate(df, lazy=True, inplace=True)  # no coercion: nothing is changed, no copy


# --------------------------------------------------------------------------- small helpers
def _interval_us(interval) -> int:
    us = int(pd.Timedelta(interval) / pd.Timedelta("1us"))
    if us <= 0 or (86_400_000_000 % us):
        raise ValueError(f"interval must divide a day, got {interval!r}")
    return us


class _Enc:
    """A dictionary-encoded column: distinct values ``uniq`` and codes (−1 = missing), kept as
    runs (run codes and lengths) when the column is constant or sorted."""

    __slots__ = ("n", "uniq", "_codes", "runs")

    def __init__(self, n, uniq, codes=None, runs=None):
        self.n, self.uniq, self._codes, self.runs = n, uniq, codes, runs

    def full(self) -> np.ndarray:
        if self._codes is None:
            rc, ln = self.runs
            self._codes = np.repeat(rc.astype(np.int32), ln)
        return self._codes

    def take(self, lut: np.ndarray) -> np.ndarray:
        """``lut[codes]`` (a missing code −1 takes ``lut[-1]``: append a sentinel)."""
        if self._codes is None:
            rc, ln = self.runs
            return np.repeat(lut[rc], ln)
        return lut[self._codes]

    def at(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        if self._codes is None:
            rc, ln = self.runs
            return rc[np.searchsorted(np.cumsum(ln), idx, side="right")].astype(np.int64)
        return self._codes[idx].astype(np.int64)

    def has_missing(self) -> bool:
        return bool((self.runs[0] < 0).any()) if self._codes is None else bool((self._codes < 0).any())


def _arrow_codes(d) -> np.ndarray:
    codes = d.indices.to_numpy(zero_copy_only=False)
    if d.indices.null_count:
        codes = np.where(d.indices.is_null().to_numpy(zero_copy_only=False), -1, codes)
    return codes.astype(np.int32, copy=False)


def _encode(s: pd.Series) -> _Enc:
    """Dictionary-encode a string-like column (pyarrow; constant and run-sorted columns cheaply)."""
    n = len(s)
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()  # signed (int8/16/32), −1 = missing: used as they are
        cats = list(s.cat.categories)
        if len(cats) == 1 and n and not (codes < 0).any():  # constant: one run
            return _Enc(n, cats, runs=(np.zeros(1, np.int32), np.array([n], np.int64)))
        return _Enc(n, cats, codes=codes)
    try:
        arr = pa.array(s, from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        codes, uniq = pd.factorize(s.astype(object).where(s.notna(), None).map(
            lambda x: x if x is None else str(x)))
        return _Enc(n, list(uniq), codes=codes.astype(np.int32))
    if n == 0:
        return _Enc(0, [], codes=np.zeros(0, np.int32))
    if arr.null_count == 0 and pc.all(pc.equal(arr, arr[0])).as_py():
        return _Enc(n, [arr[0].as_py()], runs=(np.zeros(1, np.int32), np.array([n], np.int64)))
    sample = arr.slice(0, min(n, 4096))
    if len(pc.run_end_encode(sample).values) * 16 <= len(sample):  # sorted: encode the runs
        ree = pc.run_end_encode(arr)
        ends = ree.run_ends.to_numpy().astype(np.int64)
        d = pc.dictionary_encode(ree.values)
        return _Enc(n, d.dictionary.to_pylist(), runs=(_arrow_codes(d), np.diff(ends, prepend=0)))
    d = pc.dictionary_encode(arr)
    return _Enc(n, d.dictionary.to_pylist(), codes=_arrow_codes(d))


def month_of(ts) -> pd.Series:
    """Calendar month ``YYYY-MM`` of each (naive local) timestamp — the month of the interval start.

    Vectorised: the distinct months are formatted once (a categorical Series is returned).
    """
    s = pd.Series(ts)
    vals = s.to_numpy(dtype="datetime64[us]") if len(s) else np.array([], dtype="datetime64[us]")
    m = vals.astype("datetime64[M]")
    uniq, inv = np.unique(m, return_inverse=True)
    cats = [str(u) if not np.isnat(u) else None for u in uniq]
    codes = np.asarray(inv, dtype=np.int64)
    if any(c is None for c in cats):
        bad = [i for i, c in enumerate(cats) if c is None]
        codes = np.where(np.isin(codes, bad), -1, codes)
        keep = [c for c in cats if c is not None]
        remap = np.cumsum([c is not None for c in cats]) - 1
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
        cats = keep
    return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(cats, dtype=object).astype(str)),
                     index=s.index, name="period")


# --------------------------------------------------------------------------- timestamps
_OFFSET_RE = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


def _local_us(ts: pd.Series, tz: str, source_tz: str | None) -> tuple[np.ndarray, list]:
    """Timestamps → int64 µs of naive local time in ``tz``, and [(bad-row mask, reason code)]."""
    problems = []
    dt = ts.dtype
    if isinstance(dt, pd.DatetimeTZDtype):
        local = ts.dt.tz_convert(tz).dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(dt):
        local = ts
        if source_tz and source_tz != tz:
            loc = ts.dt.tz_localize(source_tz, ambiguous="NaT", nonexistent="NaT")
            problems.append(((loc.isna() & ts.notna()).to_numpy(), R_TS_LOCAL))
            local = loc.dt.tz_convert(tz).dt.tz_localize(None)
    else:
        n = len(ts)
        missing = ts.isna().to_numpy()
        txt = ts.astype(str).where(~missing, None)
        has_off = txt.str.contains(_OFFSET_RE, regex=True, na=False).to_numpy()
        out = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
        local_bad = np.zeros(n, bool)
        if has_off.any():
            p = pd.to_datetime(txt[has_off], errors="coerce", utc=True, format="ISO8601")
            out[has_off] = p.dt.tz_convert(tz).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        naive = ~has_off & ~missing
        if naive.any():
            p = pd.to_datetime(txt[naive], errors="coerce", format="ISO8601")
            if source_tz and source_tz != tz:
                ok = p.notna().to_numpy()
                loc = p.dt.tz_localize(source_tz, ambiguous="NaT", nonexistent="NaT")
                local_bad[np.flatnonzero(naive)[loc.isna().to_numpy() & ok]] = True
                p = loc.dt.tz_convert(tz).dt.tz_localize(None)
            out[naive] = p.to_numpy(dtype="datetime64[us]")
        problems += [(missing, R_TS_MISSING), (local_bad, R_TS_LOCAL),
                     (np.isnat(out) & ~missing & ~local_bad, R_TS_BAD)]
        return out.view(np.int64), problems
    arr = local.to_numpy(dtype="datetime64[us]")
    problems.append((np.isnat(arr), R_TS_MISSING))
    return arr.view(np.int64), problems


# --------------------------------------------------------------------------- values
def _values(v: pd.Series) -> tuple[np.ndarray, list]:
    n = len(v)
    if pd.api.types.is_bool_dtype(v.dtype):
        return np.full(n, np.nan), [(np.ones(n, bool), R_VAL_BAD)]
    if pd.api.types.is_numeric_dtype(v.dtype) and not isinstance(v.dtype, pd.CategoricalDtype):
        vals = v.to_numpy(dtype="float64", na_value=np.nan)
        bad = ~np.isfinite(vals)
        if not bad.any():
            return vals, []
        return vals, [(np.isnan(vals), R_VAL_MISSING), (np.isinf(vals), R_VAL_INF)]
    missing = v.isna().to_numpy()
    vals = pd.to_numeric(v.astype(object), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return vals, [(missing, R_VAL_MISSING), (np.isnan(vals) & ~missing, R_VAL_BAD), (np.isinf(vals), R_VAL_INF)]


# --------------------------------------------------------------------------- array helpers
def _order(g: np.ndarray, t: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Stable permutation sorting by (g, t); ``dt`` = ``np.diff(t)``."""
    if (dt >= 0).all():  # time-major export (one timestamp, all meters): a stable sort by meter
        gg = g.astype(np.int16) if g.max() < 32767 else g
        return np.argsort(gg, kind="stable")
    tmin, tmax = int(t.min()), int(t.max())
    bits_g = int(g.max() + 1).bit_length()
    unit = 1
    if int(tmax - tmin + 1).bit_length() + bits_g > 62:  # µs do not fit next to the group: coarser
        for u in (1_000_000, 1_000):
            if not (t % u).any():
                unit = u
                break
    bits_t = int((tmax - tmin) // unit + 1).bit_length()
    if bits_t + bits_g <= 62:
        key = g.astype(np.int64)
        key <<= bits_t
        tt = t - tmin
        if unit > 1:
            tt //= unit
        key |= tt
        del tt
        # an ordered batch with a few rows appended out of order (re-sent rows, duplicates): sort
        # only the tail and merge it into the ordered head (same stable order as a full sort)
        p = int(np.argmax(key[1:] < key[:-1])) + 1
        n = key.size
        if n - p <= n // 8:
            tail = key[p:]
            tp = np.argsort(tail, kind="stable")
            at = np.searchsorted(key[:p], tail[tp], side="right") + np.arange(n - p)
            perm = np.empty(n, np.int64)
            head = np.ones(n, bool)
            head[at] = False
            perm[head] = np.arange(p)
            perm[at] = p + tp
            return perm
        return np.argsort(key, kind="stable")
    return np.lexsort((t, g))


_ranges = registers.ranges


class _Flags:
    """Sparse flags: for each flag the sorted row positions that carry it."""

    def __init__(self, n: int):
        self.n = n
        self.rows: dict[str, list] = {}

    def add(self, name: str, idx) -> None:
        idx = np.asarray(idx, np.int64)
        if idx.size:
            self.rows.setdefault(name, []).append(idx)

    def get(self, name: str) -> np.ndarray:
        parts = self.rows.get(name)
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def count(self, name: str) -> int:
        return int(self.get(name).size)

    def remap(self, newpos: np.ndarray, keep: np.ndarray) -> "_Flags":
        out = _Flags(int(keep.sum()))
        for k, parts in self.rows.items():
            idx = np.concatenate(parts)
            idx = idx[keep[idx]]
            out.add(k, newpos[idx])
        return out

    def categorical(self) -> pd.Categorical:
        names = [f for f in FLAGS if f in self.rows]
        if not names:
            return pd.Categorical.from_codes(np.zeros(self.n, np.int8), categories=pd.Index(["ok"], dtype=object),
                                             validate=False)
        allidx = np.unique(np.concatenate([self.get(f) for f in names]))
        bits = np.zeros(allidx.size, np.int64)
        for f in names:
            bits[np.searchsorted(allidx, self.get(f))] |= _BIT[f]
        uniq, inv = np.unique(bits, return_inverse=True)
        cats = ["ok"] + ["|".join(f for f in FLAGS if u & _BIT[f]) for u in uniq.tolist()]
        codes = np.zeros(self.n, np.int8 if len(cats) < 127 else np.int16)
        codes[allidx] = inv + 1
        return pd.Categorical.from_codes(codes, categories=pd.Index(cats, dtype=object), validate=False)


# --------------------------------------------------------------------------- anomaly flags
def _spikes(rate: np.ndarray, starts: np.ndarray, ends: np.ndarray, th: Thresholds) -> np.ndarray:
    """Row positions of spikes in ``rate`` (sorted series; groups [starts, ends))."""
    n = rate.size
    w = th.spike_window
    if n < 2 * w + 1:
        return np.zeros(0, np.int64)
    lo = np.minimum(rate[:-2], rate[2:])
    lo *= th.spike_ratio
    mid = rate[1:-1]
    is_c = np.zeros(n, bool)
    is_c[1:-1] = (mid > lo) & (mid > 0)
    edges = np.concatenate([starts, starts + 1, ends - 1, ends - 2])
    is_c[edges[(edges >= 0) & (edges < n)]] = True
    cand = np.flatnonzero(is_c)
    gi = np.searchsorted(starts, cand, side="right") - 1
    gs, ge = starts[gi], ends[gi]
    ok = (ge - gs) >= 2 * w + 1
    c, gs, ge = cand[ok], gs[ok], ge[ok]
    if not c.size:
        return c
    ks = [k for k in range(-w, w + 1) if k]
    J = np.empty((c.size, len(ks)), dtype=np.int64)
    for col, k in enumerate(ks):
        j = c + k
        J[:, col] = np.where((j >= gs) & (j < ge), j, c - k)  # mirrored at the series ends
    nb = np.sort(rate[J], axis=1)
    half = len(ks) // 2
    med = 0.5 * (nb[:, half - 1] + nb[:, half])
    dev = np.sort(np.abs(nb - med[:, None]), axis=1)
    mad = 0.5 * (dev[:, half - 1] + dev[:, half]) * 1.4826
    scale = np.maximum(np.maximum(mad, 0.05 * np.abs(med)), 1e-12)
    r = rate[c]
    hit = (r > 0) & (r >= th.spike_ratio * med) & ((r - med) / scale >= th.spike_z)
    return c[hit]


def _stuck(value: np.ndarray, ts: np.ndarray, starts: np.ndarray, sizes: np.ndarray, step: int,
           th: Thresholds) -> np.ndarray:
    """Row positions in runs of ≥ ``stuck_min_run`` equal non-zero consecutive values."""
    n = value.size
    if n < max(th.stuck_min_run, 2):
        return np.zeros(0, np.int64)
    p = np.flatnonzero(value[1:] == value[:-1])  # pair (p, p+1)
    if not p.size:
        return p
    gid = np.searchsorted(starts, p + 1, side="right") - 1
    ok = (value[p] != 0) & (ts[p + 1] - ts[p] == step) & (starts[gid] <= p)
    p, gid = p[ok], gid[ok]
    if not p.size:
        return p
    brk = np.r_[True, np.diff(p) != 1]
    run = np.cumsum(brk) - 1
    npairs = np.bincount(run)
    long_ = npairs + 1 >= th.stuck_min_run
    if not long_.any():
        return np.zeros(0, np.int64)
    first = p[brk]
    lo, hi = first[long_], first[long_] + npairs[long_] + 1
    rgid = gid[brk][long_]
    per_group = np.bincount(rgid, weights=hi - lo, minlength=sizes.size)
    good = per_group[rgid] <= th.stuck_max_share * sizes[rgid]
    return _ranges(lo[good], hi[good])


def _nonzero_chunked(fn, n: int, chunk: int = 1 << 20) -> np.ndarray:
    """Positions where ``fn(lo, hi)`` (a boolean mask of rows lo..hi) is true, chunk by chunk —
    big boolean temporaries are avoided; the loop runs over chunks, not rows."""
    out = [lo + np.flatnonzero(fn(lo, min(lo + chunk, n))) for lo in range(0, n, chunk)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


# --------------------------------------------------------------------------- main entry
def prepare_readings(batch: pd.DataFrame, meters: pd.DataFrame, *, previous: pd.DataFrame | None = None,
                     tz: str = LOCAL_TZ, interval="15min", source_tz: str | None = None,
                     thresholds: Thresholds | None = None, table: str = "readings",
                     validate: bool = True) -> Prepared:
    """Prepare one batch of readings (see the module docstring for every rule).

    ``batch``: meter_id, ts, value and normally quantity, unit (optional register, row — the
    row number in the source, default the position).  ``meters``: the meter register
    (``meters.csv`` as read by :func:`workbench.core.meters.read_meters` or raw strings).
    ``previous``: the last stored reading per meter (meter_id, ts, value in the meter's unit,
    optional quantity) — continues cumulative registers and gap detection across batches.
    ``tz``: the local zone of the curated tables; ``source_tz``: zone of *naive* input timestamps
    when it is not ``tz``.  ``table``: the name written into the quarantine rows.
    ``validate``: check the result with the pandera schemas.
    """
    th = thresholds or Thresholds()
    step = _interval_us(interval)
    m = normalize_meters(meters)
    b = batch
    n = len(b)
    for c in ("meter_id", "ts", "value"):
        if c not in b.columns:
            raise ValueError(f"batch needs a '{c}' column (has {list(b.columns)})")
    counts: dict[str, int] = {"rows_in": n}
    reason = np.zeros(n, np.int8)

    def mark(mask, code):  # the first problem found is the reason
        idx = np.flatnonzero(mask)
        if idx.size:
            idx = idx[reason[idx] == 0]
            reason[idx] = code

    nm = len(m)
    m_ids = m["meter_id"].tolist()
    m_cum = np.append(m["register"].to_numpy() == "cumulative", False)  # [-1]: sentinel
    m_cap = m["rollover"].to_numpy(dtype="float64")
    gdt = np.int32 if nm < 2**31 // 64 else np.int64

    # ---- meters
    menc = _encode(b["meter_id"])
    lut = np.append(pd.Index(m_ids).get_indexer(pd.Index([str(x) for x in menc.uniq], dtype=object)), -1)
    midx = menc.take(lut.astype(gdt)) if n else np.zeros(0, gdt)
    if (lut < 0).any():
        mark(midx < 0, R_METER)
    present = np.unique(lut[lut >= 0])

    # ---- timestamps, values
    t, problems = _local_us(b["ts"], tz, source_tz)
    for mask, code in problems:
        mark(mask, code)
    vals, problems = _values(b["value"])
    for mask, code in problems:
        mark(mask, code)

    # ---- units → the meter's unit (pint, once per distinct unit × meter unit)
    mu_codes, mu_uniq = pd.factorize(m["unit"])
    unit_info: dict = {}
    uenc = None
    v = vals
    orig_unit = None          # per batch row: code of its unit as written where not the meter's, else −1
    if "unit" in b.columns:
        uenc = _encode(b["unit"])
        nu = len(uenc.uniq)
        F = np.ones((nu + 1, nm + 1))  # row −1: missing unit, column −1: unknown meter
        E = np.zeros((nu + 1, nm + 1), np.int8)
        F[nu, :nm] = np.nan
        E[nu, :nm] = R_UNIT_MISSING
        for a in range(nu):
            for c in np.unique(mu_codes[present]).tolist():
                cols = present[mu_codes[present] == c]
                try:
                    F[a, cols] = conversion_factor(str(uenc.uniq[a]), str(mu_uniq[c]))
                except UnitMismatchError as exc:
                    F[a, cols], E[a, cols] = np.nan, R_UNIT_MISMATCH
                    msg = str(exc)
                    unit_info[(a, c)] = msg[msg.find("(") + 1:-1] if msg.endswith(")") else ""
                except UnitError:
                    F[a, cols], E[a, cols] = np.nan, R_UNIT_UNKNOWN
        used = list(range(nu)) + ([nu] if uenc.has_missing() else [])
        if (E[np.ix_(used, present)] != 0).any():
            err = E[uenc.full(), midx]
            for code in (R_UNIT_MISSING, R_UNIT_UNKNOWN, R_UNIT_MISMATCH):
                mark(err == code, code)
        if not (np.nan_to_num(F[np.ix_(used, present)], nan=1.0) == 1.0).all():
            v = vals * F[uenc.full(), midx]
        # the unit as written, where it is not the meter's (kWh for a meter in kWh is not kept;
        # MWh, or 度 for kWh, is): kept beside the converted value for traceability
        same = np.ones((nu + 1, nm + 1), bool)
        for a in range(nu):
            ua = str(uenc.uniq[a]).strip()
            for c in np.unique(mu_codes[present]).tolist():
                same[a, present[mu_codes[present] == c]] = ua == str(mu_uniq[c])
        if not same[np.ix_(used, present)].all():
            codes = uenc.full()
            orig_unit = np.where(same[codes, midx], -1, codes).astype(np.int32)
    else:
        counts["unit_assumed"] = n

    # ---- register column (optional)
    if "register" in b.columns:
        renc = _encode(b["register"])
        rmap = np.array([{"interval": 0, "cumulative": 1}.get(str(x).strip().lower(), 2) for x in renc.uniq] + [-1])
        if not all(rm_ == (1 if m_cum[k] else 0) for rm_ in rmap[:-1].tolist() for k in present.tolist()):
            rrow = renc.take(rmap)
            mark((rrow >= 0) & (rrow != m_cum[midx]) & (midx >= 0), R_REGISTER)

    # ---- negative values
    mark(vals < 0, R_NEGATIVE)

    # ---- quantity
    qv: list[str] = list(dict.fromkeys(m["quantity"].tolist()))
    m_q = np.append(pd.Index(qv).get_indexer(m["quantity"]), 0).astype(gdt)
    q = None
    qenc = None
    if "quantity" in b.columns:
        qenc = _encode(b["quantity"])
        for x in qenc.uniq:
            if str(x) not in qv:
                qv.append(str(x))
        qlut = np.append(pd.Index(qv).get_indexer(pd.Index([str(x) for x in qenc.uniq], dtype=object)), -1)
        if len(qv) > 1:
            q = qenc.take(qlut.astype(gdt))
            if qenc.has_missing():
                q = np.where(q < 0, m_q[midx], q)
    elif len(qv) > 1:
        q = m_q[midx]
    nQ = len(qv)

    # ---- valid rows as arrays sorted by (meter, quantity, ts), with the stored previous readings
    if reason.any():
        vidx = np.flatnonzero(reason == 0)
        G = midx[vidx] * nQ + q[vidx] if q is not None else midx[vidx]
        T, V, SRC = t[vidx], v[vidx], vidx
    else:
        G = midx * nQ + q if q is not None else midx
        T, V, SRC = t, v, None
    prev_g = prev_t = None
    if previous is not None and len(previous):
        p = previous
        pm = pd.Index(m_ids).get_indexer(p["meter_id"].astype(str))
        pq = (pd.Index(qv).get_indexer(p["quantity"].astype(str)) if "quantity" in p.columns
              else m_q[np.where(pm >= 0, pm, -1)])
        pts = pd.to_datetime(p["ts"])
        if isinstance(pts.dtype, pd.DatetimeTZDtype):
            pts = pts.dt.tz_convert(tz).dt.tz_localize(None)
        pts = pts.to_numpy(dtype="datetime64[us]").view(np.int64)
        pvs = pd.to_numeric(p["value"], errors="coerce").to_numpy(dtype="float64")
        ok = (pm >= 0) & (pq >= 0) & np.isfinite(pvs) & (pts != np.iinfo(np.int64).min)
        pf = pd.DataFrame({"g": (pm[ok] * nQ + pq[ok]).astype(gdt), "t": pts[ok], "v": pvs[ok]})
        pf = pf.sort_values(["g", "t"]).drop_duplicates("g", keep="last")
        prev_g, prev_t = pf["g"].to_numpy(), pf["t"].to_numpy()
        if SRC is None:
            SRC = np.arange(n, dtype=np.int64)
        G = np.concatenate([prev_g, G]).astype(gdt, copy=False)
        T = np.concatenate([prev_t, T])
        V = np.concatenate([pf["v"].to_numpy(), V])
        SRC = np.concatenate([np.full(prev_g.size, -1, np.int64), SRC])
    N = G.size
    sameG = G[1:] == G[:-1]
    dT = np.diff(T)
    if N > 1 and not ((G[1:] >= G[:-1]).all() and not (sameG & (dT < 0)).any()):
        perm = _order(G, T, dT)
        G, T, V = G[perm], T[perm], V[perm]
        SRC = perm if SRC is None else SRC[perm]
        sameG = np.equal(G[1:], G[:-1], out=sameG)  # the old buffers are reused (no fresh pages)
        dT = np.subtract(T[1:], T[:-1], out=dT)
    IS_PREV = SRC < 0 if SRC is not None else None

    def src(i):  # batch row of sorted position(s) i
        return np.asarray(i, np.int64) if SRC is None else SRC[i]

    keep = None
    dup_keep = np.zeros(0, np.int64)
    q_extra: dict[int, str] = {}
    counts["duplicate"] = counts["duplicate_stored"] = counts["duplicate_rows_dropped"] = 0

    # ---- duplicates (same meter, quantity and ts)
    runs = registers.repeated_keys(sameG, dT, V, rtol=th.duplicate_rtol)
    if runs is not None:
        keep = np.ones(N, bool)
        rows, run, first, differs, conflict = runs.rows, runs.run, runs.first, runs.differs, runs.conflict
        is_first = runs.is_first
        ip = IS_PREV[rows] if IS_PREV is not None else np.zeros(rows.size, bool)
        sp = (np.bincount(run, weights=ip) > 0)[run]
        drop_stored = sp & ~is_first & ~differs
        cs = rows[sp & ~is_first & differs]
        dup_ok = ~sp & ~conflict[run]
        cb = rows[~sp & conflict[run]]
        keep[rows[drop_stored]] = False
        keep[rows[dup_ok & ~is_first]] = False
        keep[cs] = False
        keep[cb] = False
        dup_keep = rows[dup_ok & is_first]
        counts["duplicate_stored"] = int(drop_stored.sum())
        counts["duplicate"] = int(dup_keep.size)
        counts["duplicate_rows_dropped"] = int((dup_ok & ~is_first).sum())
        if cs.size:
            fv = V[first[np.searchsorted(rows, cs)]]
            reason[src(cs)] = R_CONFLICT_STORED
            for k, i in enumerate(src(cs).tolist()):
                q_extra[int(i)] = f"stored value {fv[k]:.12g}"
        if cb.size:
            rr = run[np.searchsorted(rows, cb)]
            txt = pd.Series(V[cb]).groupby(rr).agg(lambda x: f"{len(x)} rows with values "
                                                   + ", ".join(f"{y:.12g}" for y in x))
            reason[src(cb)] = R_CONFLICT
            for i, r_ in zip(src(cb).tolist(), rr.tolist()):
                q_extra[int(i)] = txt[r_]

    # ---- late readings of cumulative registers (before the stored reading)
    if prev_g is not None and prev_g.size:
        pos = np.minimum(np.searchsorted(prev_g, G), prev_g.size - 1)
        late = (prev_g[pos] == G) & ~IS_PREV & (T < prev_t[pos]) & m_cum[G // nQ]
        if keep is not None:
            late &= keep
        if late.any():
            keep = np.ones(N, bool) if keep is None else keep
            keep[late] = False
            li = np.flatnonzero(late)
            reason[src(li)] = R_LATE
            for i, pt in zip(src(li).tolist(), prev_t[pos[li]].tolist()):
                q_extra[int(i)] = str(pd.Timestamp(np.datetime64(pt, "us")))

    # ---- a series whose shape contradicts its registered kind: an interval meter whose values
    # only grow is a register's reading — quarantined, never turned into consumption
    gstart = np.r_[0, np.flatnonzero(~sameG) + 1] if N else np.zeros(0, np.int64)
    ginterval = ~m_cum[G[gstart] // nQ]
    if ginterval.any():
        shaped = registers.rises_like_a_register(sameG, V) & ginterval
        if shaped.any():
            keep = np.ones(N, bool) if keep is None else keep
            gend = np.r_[gstart[1:], N]
            for k in np.flatnonzero(shaped).tolist():
                pos = np.arange(gstart[k], gend[k])
                if IS_PREV is not None:
                    pos = pos[~IS_PREV[pos]]
                pos = pos[keep[pos]]
                keep[pos] = False
                reason[src(pos)] = R_SHAPE
                note = f"{gend[k] - gstart[k]} values from {V[gstart[k]]:.12g} to {V[gend[k] - 1]:.12g}"
                for i in src(pos).tolist():
                    q_extra[int(i)] = note

    # ---- a cumulative register that falls without a rollover or a reset (registers rule 4b):
    # the reading, and those after it that stay below the register, are quarantined — never
    # turned into consumption (neither negative nor a whole register's worth)
    if N and m_cum[G[gstart] // nQ].any():
        kidx = np.flatnonzero(keep) if keep is not None else None
        Gk, Vk = (G[kidx], V[kidx]) if kidx is not None else (G, V)
        ks = np.r_[0, np.flatnonzero(Gk[1:] != Gk[:-1]) + 1] if Gk.size else np.zeros(0, np.int64)
        ke = np.r_[ks[1:], Gk.size]
        km = (Gk[ks] // nQ).astype(np.int64)
        skip_k = None
        if IS_PREV is not None:
            skip_k = np.flatnonzero(IS_PREV[kidx] if kidx is not None else IS_PREV)
        fell, since = registers.register_falls(Vk, ks, ke, m_cum[km], m_cap[km], fraction=th.rollover_fraction,
                                               reset_fraction=th.reset_fraction, skip=skip_k)
        if fell.size:
            fpos, spos = (kidx[fell], kidx[since]) if kidx is not None else (fell, since)
            keep = np.ones(N, bool) if keep is None else keep
            keep[fpos] = False
            reason[src(fpos)] = R_FALL
            cap = m_cap[G[fpos] // nQ]
            since_ts = pd.Series(T[spos].view("datetime64[us]")).dt.strftime("%Y-%m-%d %H:%M:%S").tolist()
            for i, hi_, when, lo_, c in zip(src(fpos).tolist(), V[spos].tolist(), since_ts, V[fpos].tolist(),
                                            cap.tolist()):
                cap_txt = f"its capacity {c:.12g}" if c > 0 else "no capacity registered"
                q_extra[int(i)] = (f"from {hi_:.12g} (kept reading at {when}) to {lo_:.12g}: not a rollover "
                                   f"({cap_txt}) nor a reset to near zero (≤ {th.reset_fraction:.0%} of {hi_:.12g})")

    if keep is not None and not keep.all():
        dropped = np.flatnonzero(~keep)  # few rows: new position = old − rows dropped before it
        dk = dup_keep[keep[dup_keep]]
        dup_keep = dk - np.searchsorted(dropped, dk)
        G, T, V = G[keep], T[keep], V[keep]
        SRC = SRC[keep] if SRC is not None else np.flatnonzero(keep)
        IS_PREV = SRC < 0
        N = G.size
        sameG = np.equal(G[1:], G[:-1], out=sameG[:max(N - 1, 0)])
        dT = np.subtract(T[1:], T[:-1], out=dT[:max(N - 1, 0)])

    # ---- group structure (one group = one meter and quantity)
    starts = np.r_[0, np.flatnonzero(~sameG) + 1] if N else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], N].astype(np.int64) if N else np.zeros(0, np.int64)
    sizes = ends - starts
    gG = G[starts].astype(np.int64)
    gmeter, gq = gG // nQ, gG % nQ
    gcum = m_cum[gmeter]
    prev_pos = np.flatnonzero(IS_PREV) if IS_PREV is not None else np.zeros(0, np.int64)

    # ---- readings flags (sparse)
    rf = _Flags(N)
    rf.add("off_grid", _nonzero_chunked(lambda lo, hi: T[lo:hi] % step != 0, N))
    rf.add("duplicate", dup_keep)
    inst = np.append(m["installed"].to_numpy(dtype="datetime64[us]").view(np.int64), 0)
    rem = np.append(m["removed"].to_numpy(dtype="datetime64[us]").view(np.int64), 0)
    nat = np.iinfo(np.int64).min
    day = 86_400_000_000
    gi_inst, gi_rem = inst[gmeter], rem[gmeter]
    outside = ((gi_inst != nat) & (T[starts] < gi_inst)) | ((gi_rem != nat) & (T[ends - 1] >= gi_rem + day))
    for k in np.flatnonzero(outside).tolist():  # per meter, not per row
        s_, e_ = starts[k], ends[k]
        tt = T[s_:e_]
        bad = np.zeros(e_ - s_, bool)
        if gi_inst[k] != nat:
            bad |= tt < gi_inst[k]
        if gi_rem[k] != nat:
            bad |= tt >= gi_rem[k] + day
        rf.add("outside_service", s_ + np.flatnonzero(bad))
    has_repl = np.append(m["replaces"].to_numpy() != "", False)
    rs = starts[has_repl[gmeter]]
    if IS_PREV is not None:
        rs = rs[~IS_PREV[rs]]
    rf.add("replacement_start", rs)

    # ---- registers → consumption (workbench.core.registers, the rules shared with the accounting): a
    # cumulative series' first reading starts its register, stored rows only continue one
    rc_ = registers.consumption(T, V, starts, ends, gcum, m_cap[gmeter], step=step,
                                fraction=th.rollover_fraction, reset_fraction=th.reset_fraction, skip=prev_pos)
    cval, cts, span = rc_.value, rc_.ts, rc_.span
    NC = cval.size
    cf = _Flags(NC)
    cf.add("rollover", rc_.rollover)
    cf.add("reset", rc_.reset)
    if span is not None:
        cf.add("gap_spanning", np.flatnonzero(span > 1))
    csizes = rc_.sizes
    cg_keep = csizes > 0
    c_sizes = csizes[cg_keep]
    c_ends = np.cumsum(c_sizes)
    c_starts = c_ends - c_sizes
    c_meter = gmeter[cg_keep]
    cf.add("off_grid", _nonzero_chunked(lambda lo, hi: cts[lo:hi] % step != 0, NC))
    cf.add("negative", _nonzero_chunked(lambda lo, hi: cval[lo:hi] < 0, NC))
    rate = cval / span if span is not None else cval
    cf.add("spike", _spikes(rate, c_starts, c_ends, th))
    cf.add("stuck", _stuck(cval, cts, c_starts, c_sizes, step, th))

    # ---- gaps: expected grid vs present readings (the stored previous reading included)
    gpos = np.flatnonzero(dT > step)
    gpos = gpos[sameG[gpos]]
    nmiss = np.rint(dT[gpos] / step).astype(np.int64) - 1
    gpos, nmiss = gpos[nmiss >= 1], nmiss[nmiss >= 1]
    g_grp = np.searchsorted(starts, gpos, side="right") - 1
    g_start = T[gpos] + step
    g_end = T[gpos + 1] - step
    g_quar = np.zeros(gpos.size, np.int64)
    qrows = np.flatnonzero(reason >= R_VAL_MISSING) if gpos.size else np.zeros(0, np.int64)
    if qrows.size:
        qrows = qrows[midx[qrows] >= 0]
        qg = midx[qrows].astype(np.int64) * nQ + (q[qrows] if q is not None else 0)
        qframe = pd.DataFrame({"g": qg, "t": t[qrows]}).drop_duplicates()
        gframe = pd.DataFrame({"g": gG[g_grp], "start": g_start, "end": g_end, "k": np.arange(gpos.size)})
        hit = qframe.merge(gframe, on="g")
        hit = hit[(hit["t"] >= hit["start"]) & (hit["t"] <= hit["end"])]
        g_quar = np.bincount(hit["k"].to_numpy(), minlength=gpos.size).astype(np.int64)

    # ---- frames (string columns as categoricals: codes per meter, repeated per row)
    node_codes, node_uniq = pd.factorize(m["node_id"])
    ident = m["identifier"]
    id_codes, id_uniq = pd.factorize(ident.where(ident.notna() & (ident.astype(str) != ""), None))
    cdt = np.int8 if nm < 127 else np.int16 if nm < 32767 else np.int32

    def cat(per_meter, uniq, meter_rows):
        codes = np.append(np.asarray(per_meter), -1).astype(cdt)[meter_rows]
        return pd.Categorical.from_codes(codes, categories=pd.Index([str(x) for x in uniq], dtype=object),
                                         validate=False)

    def frame_cols(meter_rows, q_rows):
        return {"meter_id": pd.Categorical.from_codes(meter_rows, categories=pd.Index(m_ids, dtype=object),
                                                      validate=False),
                "node_id": cat(node_codes, node_uniq, meter_rows),
                "quantity": pd.Categorical.from_codes(q_rows, categories=pd.Index(qv, dtype=object), validate=False),
                "unit": cat(mu_codes, mu_uniq, meter_rows)}

    qdt = np.int8 if nQ < 127 else np.int32
    r_meter = np.repeat(gmeter.astype(cdt), sizes)
    r_q = np.repeat(gq.astype(qdt), sizes)
    rT, rV = T, V
    if prev_pos.size:
        rsel = ~IS_PREV
        rf = rf.remap(np.cumsum(rsel) - 1, rsel)
        r_meter, r_q, rT, rV = r_meter[rsel], r_q[rsel], T[rsel], V[rsel]
    rc = frame_cols(r_meter, r_q)
    nR = rT.size
    if orig_unit is not None:        # value and unit as written beside the converted ones
        rsrc = np.arange(N) if SRC is None else SRC
        if prev_pos.size:
            rsrc = rsrc[~IS_PREV]
        oc = orig_unit[rsrc]
        value_original = np.where(oc >= 0, vals[rsrc], np.nan)
        unit_original = pd.Categorical.from_codes(oc, categories=pd.Index([str(x) for x in uenc.uniq], dtype=object),
                                                  validate=False)
    else:                            # every row in its meter's unit: nothing was converted
        value_original = np.full(nR, np.nan)
        unit_original = pd.Categorical.from_codes(np.full(nR, -1, np.int8), categories=pd.Index([], dtype=object),
                                                  validate=False)
    readings = pd.DataFrame({
        "meter_id": rc["meter_id"], "node_id": rc["node_id"],
        "identifier": cat(id_codes, id_uniq, r_meter),
        "ts": rT.view("datetime64[us]"), "quantity": rc["quantity"], "value": rV, "unit": rc["unit"],
        "register": cat(m_cum[:-1].astype(np.int8), ["interval", "cumulative"], r_meter),
        "quality_flag": rf.categorical(),
        "value_original": value_original, "unit_original": unit_original,
    }, copy=False)
    cc = frame_cols(np.repeat(c_meter.astype(cdt), c_sizes), np.repeat(gq[cg_keep].astype(qdt), c_sizes))
    consumption = pd.DataFrame({
        "meter_id": cc["meter_id"], "node_id": cc["node_id"], "ts": cts.view("datetime64[us]"),
        "quantity": cc["quantity"], "value": cval, "unit": cc["unit"], "quality_flag": cf.categorical(),
        "span": span if span is not None else np.ones(NC, np.int32),
    }, copy=False)
    gaps = pd.DataFrame({
        "meter_id": pd.Series(np.array(m_ids, dtype=object)[gmeter[g_grp]], dtype=object),
        "quantity": pd.Series(np.array(qv, dtype=object)[gq[g_grp]], dtype=object),
        "start": g_start.view("datetime64[us]"),
        "end": g_end.view("datetime64[us]"),
        "n_missing": nmiss.astype(np.int64),
        "n_quarantined": g_quar,
    })
    quarantine = _quarantine_frame(b, reason, table, menc, m, midx, uenc, mu_codes, unit_info, q_extra, t, qv,
                                   q, m_q, source_tz)

    # ---- counts
    counts["readings"] = len(readings)
    counts["consumption"] = len(consumption)
    counts["quarantined"] = len(quarantine)
    qc = np.bincount(reason[reason > 0], minlength=len(_REASONS)) if len(quarantine) else np.zeros(len(_REASONS))
    for k in range(1, len(_REASONS)):
        counts[_REASONS[k]] = int(qc[k])
    for name in ("off_grid", "outside_service", "replacement_start"):
        counts[name] = rf.count(name)
    counts["off_grid_intervals"] = cf.count("off_grid")
    for name in ("rollover", "reset", "gap_spanning", "spike", "stuck", "negative"):
        counts[name] = cf.count(name)
    counts["gaps"] = int(gpos.size)
    counts["missing_intervals"] = int(nmiss.sum())
    out = Prepared(readings=readings, consumption=consumption, quarantine=quarantine, gaps=gaps,
                   counts=counts, meters=m)
    if validate:
        validate_tables(readings, consumption, quarantine, gaps)
    return out


def _quarantine_frame(b, reason, table, menc, m, midx, uenc, mu_codes, unit_info, q_extra, t, qv, q, m_q,
                      source_tz) -> pd.DataFrame:
    qi = np.flatnonzero(reason)
    if not qi.size:
        return pd.DataFrame({"table": pd.Series([], dtype=object), "row": np.zeros(0, np.int64),
                             "reason": pd.Series([], dtype=object), "payload": pd.Series([], dtype=object)})
    rowno = (pd.to_numeric(b["row"].iloc[qi], errors="coerce").fillna(-1).to_numpy(dtype=np.int64)
             if "row" in b.columns else qi.astype(np.int64))
    sub = b.iloc[qi].copy()
    for c in sub.columns:  # timestamps as written (with their offset), everything JSON-able
        if pd.api.types.is_datetime64_any_dtype(sub[c].dtype):
            x = sub[c]
            frac = ".%f" if (x.dropna().dt.microsecond != 0).any() else ""
            if isinstance(x.dtype, pd.DatetimeTZDtype):
                txt = x.dt.strftime("%Y-%m-%d %H:%M:%S" + frac + "%z").str.replace(
                    r"([+-]\d{2})(\d{2})$", r"\1:\2", regex=True)
            else:
                txt = x.dt.strftime("%Y-%m-%d %H:%M:%S" + frac)
            sub[c] = txt.astype(object).where(x.notna(), None)
    # one record per "\n" (newlines inside values are escaped); not splitlines(), which also splits
    # at U+2028, U+0085, \x0b … that a value may hold unescaped
    payload = sub.to_json(orient="records", lines=True, force_ascii=False, date_format="iso",
                          default_handler=str).rstrip("\n").split("\n")
    code = reason[qi]
    mq = midx[qi]
    text = np.full(qi.size, "", dtype=object)
    # each message is built only for the rows that carry its code (columns made on first use)
    cols: dict = {}

    def col(name):
        if name not in cols:
            if name == "mid":
                v = np.array([str(x) for x in menc.uniq] + [""], dtype=object)[menc.at(qi)]
            elif name == "raw_ts":
                v = b["ts"].iloc[qi].astype(str).to_numpy(dtype=object)
            elif name == "raw_v":
                v = b["value"].iloc[qi].astype(str).to_numpy(dtype=object)
            elif name == "mu":
                v = np.append(m["unit"].to_numpy(dtype=object), "")[mq]
            elif name == "uu":
                v = np.array([str(x) for x in uenc.uniq] + [""], dtype=object)[uenc.at(qi)]
            elif name == "key":
                qq = q[qi] if q is not None else np.zeros(qi.size, np.int64)
                qn = np.array(qv, dtype=object)[np.clip(qq, 0, len(qv) - 1)]
                ts_ = pd.Series(t[qi].view("datetime64[us]")).astype(str).to_numpy(dtype=object)
                v = "(" + col("mid") + ", " + ts_ + ", " + qn + ")"
            elif name == "extra":
                v = np.array([q_extra.get(int(i), "") for i in qi], dtype=object)
            cols[name] = v
        return cols[name]

    def put(k, fn):
        sel = code == k
        if sel.any():
            text[sel] = fn(lambda name: col(name)[sel])

    put(R_METER, lambda c: "meter not registered: '" + c("mid") + "'")
    put(R_TS_MISSING, lambda c: "missing timestamp")
    put(R_TS_BAD, lambda c: "unparseable timestamp: '" + c("raw_ts") + "'")
    put(R_TS_LOCAL, lambda c: "nonexistent or ambiguous local time '" + c("raw_ts") + f"' in {source_tz} (DST switch)")
    put(R_VAL_MISSING, lambda c: "missing value")
    put(R_VAL_BAD, lambda c: "non-numeric value: '" + c("raw_v") + "'")
    put(R_VAL_INF, lambda c: "infinite value: '" + c("raw_v") + "'")
    if uenc is not None:
        put(R_UNIT_MISSING, lambda c: "missing unit (meter " + c("mid") + " unit '" + c("mu") + "')")
        put(R_UNIT_UNKNOWN, lambda c: "unknown unit '" + c("uu") + "' (meter " + c("mid") + " unit '" + c("mu") + "')")
        k = len(mu_codes) + 1
        dims = {a * k + c_: v for (a, c_), v in unit_info.items()}
        dm = pd.Series(uenc.at(qi) * k + np.append(mu_codes, 0)[mq]).map(dims).astype(object)
        cols["dims"] = dm.where(dm.notna(), "").to_numpy(object)
        put(R_UNIT_MISMATCH, lambda c: "unit mismatch: '" + c("uu") + "' cannot be converted to the meter's unit '"
            + c("mu") + "' (meter " + c("mid") + "; " + c("dims") + ")")
    if "register" in b.columns:
        cols["rr"] = b["register"].iloc[qi].astype(str).to_numpy(dtype=object)
        cols["mr"] = np.append(m["register"].to_numpy(dtype=object), "")[mq]
        put(R_REGISTER, lambda c: "register mismatch: row says '" + c("rr") + "', meter " + c("mid") + " is '"
            + c("mr") + "'")
    cols["neg"] = np.where(np.append(m["register"].to_numpy(dtype=object), "")[mq] == "cumulative",
                           "negative register reading ", "negative interval value ").astype(object)
    put(R_NEGATIVE, lambda c: c("neg") + c("raw_v"))
    put(R_CONFLICT, lambda c: "conflicting duplicate: " + c("key") + " " + c("extra"))
    put(R_CONFLICT_STORED, lambda c: "conflicts with stored value: " + c("key") + " " + c("extra"))
    put(R_LATE, lambda c: "late register reading: " + c("key") + " is before the last stored reading "
        + c("extra") + " of the cumulative meter")
    put(R_FALL, lambda c: "register fall: the register of cumulative meter " + c("mid") + " fell " + c("extra")
        + " — no consumption; a replaced meter needs its own id that 'replaces' this one, else check the export")
    put(R_SHAPE, lambda c: "register shape: meter " + c("mid") + " is registered as an interval meter but its "
        + c("extra") + " only grow, as a cumulative register's do — register it as cumulative or check the export")
    return pd.DataFrame({"table": table, "row": rowno, "reason": text, "payload": payload})


# --------------------------------------------------------------------------- filling
def fill_gaps(consumption: pd.DataFrame, method: str = "linear", *, interval="15min",
              max_missing: int | None = None) -> pd.DataFrame:
    """Consumption with one row per interval, estimated rows flagged ``estimated`` — only on request.

    * a ``gap_spanning`` row (a cumulative register read across a gap, ``span`` > 1) is replaced
      by ``span`` rows that share its value — evenly (``linear``: the register is interpolated
      linearly) or in proportion to the meter's mean daily profile (``profile``); the total is
      unchanged, every row keeps the original flags and gets ``estimated``;
    * missing intervals of an interval meter (no row at all) get rows whose value is
      interpolated linearly between the neighbouring intervals (``linear``) or the meter's mean
      value at that time of day scaled to the neighbours' level (``profile``).

    The profile is the mean per-interval value of each time-of-day slot over the rows flagged
    ``ok``.  ``max_missing``: fill only gaps of at most this many intervals.
    """
    if method not in ("linear", "profile"):
        raise ValueError("method must be 'linear' or 'profile'")
    step = _interval_us(interval)
    slots = 86_400_000_000 // step
    c = consumption.sort_values(["meter_id", "quantity", "ts"], kind="stable").reset_index(drop=True)
    if c.empty:
        return c
    if "span" not in c.columns:
        c["span"] = np.int32(1)
    g = (c["meter_id"].astype(str) + "\x00" + c["quantity"].astype(str)).factorize()[0]
    T = c["ts"].to_numpy(dtype="datetime64[us]").view(np.int64)
    V = c["value"].to_numpy(dtype="float64")
    S = c["span"].to_numpy(dtype=np.int64)
    flags = c["quality_flag"].astype(str).to_numpy()
    slot = (T % 86_400_000_000) // step
    # profile per (group, slot) from rows flagged ok, per interval value
    ok = (flags == "ok") & (S == 1)
    prof = np.full((g.max() + 1, slots), np.nan)
    if method == "profile" and ok.any():
        df = pd.DataFrame({"g": g[ok], "s": slot[ok], "v": V[ok]}).groupby(["g", "s"])["v"].mean()
        prof[df.index.get_level_values(0), df.index.get_level_values(1)] = df.to_numpy()
    new_rows = []
    # 1 gap-spanning rows: split
    sp = np.flatnonzero(S > 1)
    if max_missing is not None:
        sp = sp[S[sp] - 1 <= max_missing]
    if sp.size:
        k = S[sp]
        rep = np.repeat(sp, k)
        off = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
        ts = T[rep] + off * step
        if method == "profile":
            w = prof[g[rep], (ts % 86_400_000_000) // step]
            w = np.where(np.isfinite(w) & (w > 0), w, np.nan)
            tot = pd.Series(w).groupby(rep).transform("sum").to_numpy()
            good = pd.Series(np.isfinite(w)).groupby(rep).transform("all").to_numpy() & (tot > 0)
            val = np.where(good, V[rep] * w / np.where(good, tot, 1), V[rep] / S[rep])
        else:
            val = V[rep] / S[rep]
        new_rows.append(pd.DataFrame({"_src": rep, "ts": ts, "value": val, "_est": True, "_split": True}))
    # 2 missing intervals between rows of a series
    nxt = np.r_[T[1:], 0]
    same = np.r_[g[1:] == g[:-1], False]
    miss = np.where(same, np.rint((nxt - T) / step).astype(np.int64) - S, 0)
    gi = np.flatnonzero(miss > 0)
    if max_missing is not None:
        gi = gi[miss[gi] <= max_missing]
    if gi.size:
        k = miss[gi]
        rep = np.repeat(gi, k)
        j = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k) + 1  # 1..k
        ts = T[rep] + (S[rep] - 1 + j) * step
        v0 = V[rep] / S[rep]
        v1 = V[rep + 1] / S[rep + 1]
        frac = j / (np.repeat(k, k) + 1)
        lin = v0 + (v1 - v0) * frac
        if method == "profile":
            gg = g[rep]
            p0 = prof[gg, slot[rep]]
            p1 = prof[gg, slot[rep + 1]]
            pt = prof[gg, (ts % 86_400_000_000) // step]
            level = 0.5 * (v0 / p0 + v1 / p1)
            val = np.where(np.isfinite(level) & np.isfinite(pt) & (p0 > 0) & (p1 > 0), pt * level, lin)
        else:
            val = lin
        new_rows.append(pd.DataFrame({"_src": rep, "ts": ts, "value": val, "_est": True, "_split": False}))
    if not new_rows:
        return c
    add = pd.concat(new_rows, ignore_index=True)
    src = add["_src"].to_numpy()
    base = c.iloc[src].reset_index(drop=True)
    base["ts"] = add["ts"].to_numpy().view("datetime64[us]")
    base["value"] = add["value"].to_numpy()
    base["span"] = np.int32(1)
    old = base["quality_flag"].astype(str)
    split = add["_split"].to_numpy()
    base["quality_flag"] = np.where(split, np.where(old == "ok", "estimated", old + "|estimated"), "estimated")
    keep = np.ones(len(c), bool)
    keep[sp] = False
    out = pd.concat([c[keep].assign(quality_flag=c.loc[keep, "quality_flag"].astype(str)), base], ignore_index=True)
    out = out.sort_values(["meter_id", "quantity", "ts"], kind="stable").reset_index(drop=True)
    for col in ("meter_id", "node_id", "quantity", "unit", "quality_flag"):
        if col in out.columns:
            out[col] = out[col].astype("category")
    out["span"] = out["span"].astype(np.int32)
    return out
