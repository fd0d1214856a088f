"""Register arithmetic — the one definition of how meter readings become interval consumption.

Both paths that turn readings into consumption call these functions, so a given set of readings
yields the same consumption per meter and month through either:

* the lake's ingest — :func:`workbench.ingestion.prepare.prepare_readings`, batch by batch, which also
  flags and quarantines;
* the accounting — :func:`workbench.inventory.readings.meter_consumption`, which streams tens of millions
  of readings out of DuckDB in blocks and sums the consumption per meter and month.

``tests/inventory/test_one_consumption.py`` proves the agreement on the demo plant's planted anomalies and
on a hand-computed case for every rule below.

Input: the readings of one or more *series* (a series is one meter's register; in the lake one
(meter, quantity)) as numpy arrays sorted by (series, ts) — ``ts`` int64 µs of naive local time,
``value`` float64 in the meter's unit.  The rules, in the order they are applied:

1. **valid reading** (:func:`valid_values`) — the value is finite and ≥ 0.  Other rows take no
   part: the lake quarantines them (``missing``/``non-numeric``/``infinite``/``negative value``),
   the accounting skips and counts them (``n_invalid``).
2. **repeated timestamp** (:func:`repeated_keys`) — rows of one series at the same ``ts``.  Rows
   whose values equal the run's first row (``|v − v₀| ≤ 1e-12 + 1e-9·|v₀|``) are one reading: the
   first row.  When any row differs the key is a **conflict**: *every* row of that ``ts`` is
   excluded — which one is right cannot be known from the readings — so the interval is missing
   (interval register) or the register difference spans it (cumulative).  The lake quarantines
   the rows (``conflicting duplicate``), the accounting counts the key (``n_conflicts``); neither
   averages.
3. **interval register** — the value is the consumption of the interval starting at ``ts``.
4. **cumulative register** (:func:`register_step`) — consumption between two successive readings
   belongs to the interval starting at the earlier one; ``span`` = the intervals it covers (a gap
   is not spread here).  A drop of the register is a **rollover** when the meter has a capacity
   (> 0), the earlier reading was ≥ ``fraction`` (90 %) of it and the later one is ≤ 1 −
   ``fraction`` (10 %) of it — the register wrapped from its top to its bottom, 99 990 → 5:
   value + capacity − previous; a **reset** when the later reading is ≤ ``reset_fraction``
   (10 %) of the earlier one — the register restarted near zero: value.
4b. **register fall** (:func:`register_falls`) — any other drop is no consumption at all (a
   wrong reading, or a meter swapped without being recorded as a replacement): the reading is
   left out, and so is every later reading that stays below the register's last kept reading
   (the state a register carries is its last kept reading, which is also the highest of its
   segment), until one is above it again or drops plausibly from it (rollover, reset).  The
   rule needs no look-ahead, so it gives the same result whatever the batches a series comes
   in: 100, 110, 95, 105, 120 keeps 100, 110, 120 (consumption 10 + 10).  The lake quarantines
   the readings (``register fall``), the accounting counts them (``n_register_falls``).
5. **register start** (:func:`consumption`) — the first reading of a series starts its register
   and is never consumption.  A replacement meter is its own series (its own ``meter_id``): its
   first reading starts its register, nothing is invented between the old meter's last and the
   new meter's first reading.  A reading that only *continues* a register (the lake's stored
   last reading, the accounting's reading carried from the previous block) is passed as ``skip``:
   it is the previous reading of the next one and emits nothing itself.
6. **month** (:func:`month_number`) — consumption belongs to the calendar month of its interval
   start.

What depends on arrival order is the lake's, and only the lake's: a register reading that reaches
the lake after a later one of its meter was stored is kept, flagged ``late``, and carries no
consumption (the stored difference across it stands); a value arriving in a later batch for a
stored (meter, ts) is quarantined and the stored one kept.  :func:`workbench.inventory.readings.meter_consumption`
therefore skips readings flagged ``late`` when its input is the lake's readings table, and on the
lake's readings gives the lake's consumption; on raw readings it gives what ingesting them as one
batch gives.

Plausibility (:func:`rises_like_a_register`, :func:`register_shaped`): an *interval* series of a
day or more whose values never fall and almost always rise is a register's reading sent for an
interval meter; the lake quarantines it (``register shape``) rather than summing register values
as consumption, and :func:`~workbench.inventory.readings.meter_consumption` leaves the meter's
consumption out (NaN) and names the reason in its ``excluded`` column.  The lake judges each
batch's series (a batch with fewer than a day of values per series is not judged),
``meter_consumption`` the whole series it reads.

Everything is vectorised over numpy arrays; nothing here loops over rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DUPLICATE_ATOL",
    "DUPLICATE_RTOL",
    "ROLLOVER_FRACTION",
    "Consumption",
    "Runs",
    "consumption",
    "month_number",
    "ranges",
    "RESET_FRACTION",
    "register_falls",
    "register_shaped",
    "register_step",
    "repeated_keys",
    "rises_like_a_register",
    "spans",
    "valid_values",
]

#: a register drop is a rollover when the previous reading was at least this share of the capacity
#: (and the reading after it at most 1 − this share: the register wrapped from its top to its bottom)
ROLLOVER_FRACTION = 0.9
#: a register drop is a reset when the reading after it is at most this share of the one before
#: (the register restarted near zero); any other drop is a register fall (:func:`register_falls`)
RESET_FRACTION = 0.1
#: rows repeated at one (series, ts) are one reading when their values agree to this (relative) …
DUPLICATE_RTOL = 1e-9
#: … or absolute tolerance (``numpy.isclose`` against the run's first row)
DUPLICATE_ATOL = 1e-12
#: plausibility of an interval series (:func:`rises_like_a_register`): at least a day of
#: 15-minute values …
SHAPE_MIN_READINGS = 96
#: … that never fall and rise at this share of their steps or more
SHAPE_RISING_SHARE = 0.9


def valid_values(value: np.ndarray) -> np.ndarray:
    """Rule 1: a reading's value can take part — finite and ≥ 0 (boolean mask)."""
    return np.isfinite(value) & (value >= 0)


@dataclass
class Runs:
    """Rows repeated at one (series, ts) in sorted arrays (rule 2).

    ``rows``: positions of every row in a repeated key (sorted); per row ``run`` (the run number),
    ``first`` (position of the run's first row) and ``differs`` (its value is not equal to the
    first row's); per run ``conflict`` (any row differs).
    """

    rows: np.ndarray
    run: np.ndarray
    first: np.ndarray
    differs: np.ndarray
    conflict: np.ndarray

    @property
    def is_first(self) -> np.ndarray:
        return self.rows == self.first

    def excluded(self) -> np.ndarray:
        """Positions the rule takes out: the repeats of an equal run, every row of a conflict."""
        return self.rows[~self.is_first | self.conflict[self.run]]

    def n_runs(self) -> int:
        return int(self.conflict.size)


def repeated_keys(same_series: np.ndarray, dt: np.ndarray, value: np.ndarray, *,
                  rtol: float = DUPLICATE_RTOL, atol: float = DUPLICATE_ATOL) -> Runs | None:
    """Rule 2 on arrays sorted by (series, ts): ``same_series[i]`` — rows i and i+1 are of one
    series; ``dt = diff(ts)``.  ``None`` when no timestamp repeats."""
    d = np.flatnonzero(dt == 0)
    d = d[same_series[d]]
    if not d.size:
        return None
    rows = np.unique(np.concatenate([d, d + 1]))
    brk = np.r_[True, ~np.isin(rows[1:] - 1, d)]
    run = np.cumsum(brk) - 1
    first = rows[brk][run]
    differs = ~np.isclose(value[rows], value[first], rtol=rtol, atol=atol)
    conflict = np.bincount(run, weights=differs) > 0
    return Runs(rows=rows, run=run, first=first, differs=differs, conflict=conflict)


def rises_like_a_register(same_series: np.ndarray, value: np.ndarray, *, min_readings: int = SHAPE_MIN_READINGS,
                          rising_share: float = SHAPE_RISING_SHARE) -> np.ndarray:
    """Per series (runs of ``same_series``, as :func:`repeated_keys` takes it): whether its values
    have the shape of a cumulative register — at least ``min_readings`` values that never fall and
    rise at ``rising_share`` of the steps or more.

    Interval consumption follows the plant's load, which falls as well as rises within a day; a
    series that only grows for a day or longer is a register's reading.  An *interval* meter with
    this shape contradicts its registered kind: turned into consumption, every reading would count
    the register's whole value (hundreds of millions of kWh), so the lake quarantines the series
    instead (``register shape``).  ``value``: float64 sorted by (series, ts), repeated timestamps
    included (an equal step neither rises nor falls).  Returns a bool array, one per series.
    """
    n = value.size
    if n == 0:
        return np.zeros(0, bool)
    starts = np.r_[0, np.flatnonzero(~same_series) + 1]
    size = np.diff(np.r_[starts, n])
    if not (size >= min_readings).any():            # the usual case of small batches: nothing to do
        return np.zeros(starts.size, bool)
    d = np.diff(value)
    # per position i ≥ 1: the series falls from i − 1 to i; any fall clears the series at once
    fell = np.logical_or.reduceat(np.r_[False, (d < 0) & same_series], starts)
    rises = np.zeros(starts.size, np.int64)
    for k in np.flatnonzero((size >= min_readings) & ~fell).tolist():   # series that never fall: few
        rises[k] = np.count_nonzero(d[starts[k]:starts[k] + size[k] - 1] > 0)
    return register_shaped(size, rises, fell, min_readings=min_readings, rising_share=rising_share)


def register_shaped(n_values, n_rises, fell, *, min_readings: int = SHAPE_MIN_READINGS,
                    rising_share: float = SHAPE_RISING_SHARE) -> np.ndarray:
    """The shape test of :func:`rises_like_a_register` on counts gathered elsewhere (e.g. block by
    block): per series ``n_values`` values, ``n_rises`` of their ``n_values − 1`` steps rise,
    ``fell`` — any step falls."""
    n = np.asarray(n_values, np.int64)
    return (n >= min_readings) & ~np.asarray(fell, bool) & \
        (np.asarray(n_rises, np.int64) >= rising_share * np.maximum(n - 1, 1))


def _plausible_drop(previous, value, capacity, fraction: float, reset_fraction: float):
    """(rollover, reset) masks of drops ``previous`` → ``value`` (value < previous) — see rule 4."""
    cap_ok = capacity > 0                                  # NaN compares False: no capacity
    cap = np.where(cap_ok, capacity, np.inf)
    roll = cap_ok & (previous >= fraction * cap) & (value <= (1.0 - fraction) * cap)
    reset = ~roll & (value <= reset_fraction * previous)
    return roll, reset


def register_step(previous: np.ndarray, value: np.ndarray, capacity: np.ndarray,
                  fraction: float = ROLLOVER_FRACTION,
                  reset_fraction: float = RESET_FRACTION) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rule 4: consumption between successive readings ``previous`` → ``value`` of cumulative
    registers with ``capacity`` (NaN or ≤ 0: none).  Returns (consumption, rollover, reset).

    A drop that is neither a rollover nor a reset is no consumption: NaN.  Callers take such
    readings out first (:func:`register_falls`), so NaN only shows a reading that skipped it."""
    dv = value - previous
    dec = dv < 0
    roll, reset = _plausible_drop(previous, value, capacity, fraction, reset_fraction)
    roll &= dec
    reset &= dec
    used = np.where(roll, value + np.where(capacity > 0, capacity, 0.0) - previous,
                    np.where(reset, value, np.where(dec, np.nan, dv)))
    return used, roll, reset


def register_falls(value: np.ndarray, starts: np.ndarray, ends: np.ndarray, cumulative: np.ndarray,
                   capacity: np.ndarray, *, fraction: float = ROLLOVER_FRACTION,
                   reset_fraction: float = RESET_FRACTION,
                   skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rule 4b: readings of cumulative registers that fell without a rollover or a reset.

    Readings sorted by (series, ts), one per key (rule 2 applied); series k is
    ``[starts[k], ends[k])`` with ``cumulative[k]`` and ``capacity[k]``.  Within a register's
    segment (from its first reading, or from its last rollover or reset) the kept readings never
    fall, so the last kept reading is the segment's highest: a reading below it is kept only when
    the drop from it is a rollover or a reset (rule 4), and then starts a new segment; otherwise
    it is left out.  ``skip``: positions of readings that only continue a register (stored or
    carried over) — never left out themselves.

    Returns ``(fell, since)``: sorted positions of the readings left out, and for each the
    position of the kept reading it fell from.  Only series with a drop are looked at (a loop
    over those series, and inside one over its rollovers and resets — never over rows).
    """
    value = np.asarray(value, np.float64)
    none = np.zeros(0, np.int64)
    cumulative = np.asarray(cumulative, bool)
    if not (cumulative & (ends - starts > 1)).any():
        return none, none
    # one comparison over all rows (no gathers): the few drops, then those inside a cumulative series
    drop = np.flatnonzero(value[1:] < value[:-1]) + 1
    k = np.searchsorted(starts, drop, side="right") - 1
    drop = drop[(drop != starts[k]) & cumulative[k]]
    if not drop.size:
        return none, none
    cap_all = np.asarray(capacity, np.float64)
    fell_parts = []
    for k in np.unique(np.searchsorted(starts, drop, side="right") - 1).tolist():
        s, e = int(starts[k]), int(ends[k])
        v = value[s:e]
        cap = np.full(1, cap_all[k])
        seg = 0
        while seg < v.size - 1:
            top = np.maximum.accumulate(v[seg:-1])         # the highest kept reading before each
            below = np.flatnonzero(v[seg + 1:] < top)
            if not below.size:
                break
            roll, reset = _plausible_drop(top[below], v[seg + 1 + below], cap, fraction, reset_fraction)
            ok = roll | reset
            if ok.any():
                first = int(np.argmax(ok))
                fell_parts.append(s + seg + 1 + below[:first])
                seg = seg + 1 + int(below[first])          # a new segment starts at the plausible drop
            else:
                fell_parts.append(s + seg + 1 + below)
                break
    fell = np.concatenate(fell_parts) if fell_parts else none
    if skip is not None and len(skip) and fell.size:
        fell = fell[~np.isin(fell, skip)]
    if not fell.size:
        return none, none
    fell = np.sort(fell)
    kept = np.ones(value.size, bool)
    kept[fell] = False
    kept_pos = np.flatnonzero(kept)
    since = kept_pos[np.searchsorted(kept_pos, fell) - 1]
    return fell, since


def spans(previous_ts: np.ndarray, ts: np.ndarray, step: int) -> np.ndarray:
    """Intervals of ``step`` µs a register difference covers (≥ 1; > 1 across a gap)."""
    return np.maximum(np.rint((ts - previous_ts) / step), 1).astype(np.int32)


def ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(lo[k], hi[k])`` for all k, vectorised."""
    lo = np.asarray(lo, np.int64)
    ln = np.maximum(np.asarray(hi, np.int64) - lo, 0)
    tot = int(ln.sum())
    if not tot:
        return np.zeros(0, np.int64)
    keep = ln > 0
    lo, ln = lo[keep], ln[keep]
    out = np.ones(tot, np.int64)
    out[0] = lo[0]
    pos = np.cumsum(ln)[:-1]
    out[pos] = lo[1:] - (lo[:-1] + ln[:-1] - 1)
    return np.cumsum(out)


@dataclass
class Consumption:
    """Interval consumption of sorted series (:func:`consumption`).

    ``ts`` (interval start, µs) and ``value`` per consumption row, in series order; ``emitted``:
    mask of the readings that gave a row (``None``: every reading did — then ``ts`` and ``value``
    are the input arrays themselves, not copies);
    ``rollover``, ``reset``: positions of those rows; ``span``: intervals per row (``None`` when
    all are 1); ``sizes``: rows per series.
    """

    ts: np.ndarray
    value: np.ndarray
    emitted: np.ndarray | None
    rollover: np.ndarray
    reset: np.ndarray
    span: np.ndarray | None
    sizes: np.ndarray


def consumption(ts: np.ndarray, value: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                cumulative: np.ndarray, capacity: np.ndarray, *, step: int,
                fraction: float = ROLLOVER_FRACTION, reset_fraction: float = RESET_FRACTION,
                skip: np.ndarray | None = None) -> Consumption:
    """Rules 3–5: consumption rows of readings sorted by (series, ts), one reading per key.

    Series k is ``[starts[k], ends[k])`` with ``cumulative[k]`` and ``capacity[k]``.  An interval
    series emits every reading; a cumulative one every reading but its first, as the difference
    to the previous reading at that reading's ``ts``.  ``skip``: sorted positions of readings that
    only continue a register (see the module docstring); they emit nothing.  Register falls
    (rule 4b) must have been taken out (:func:`register_falls`): one left in gives NaN.
    """
    n = ts.size
    cum = np.flatnonzero(cumulative)
    drop = starts[cum]
    if skip is not None and len(skip):
        drop = np.unique(np.concatenate([drop, np.asarray(skip, np.int64)]))
    if drop.size:
        keep = np.ones(n, bool)
        keep[drop] = False
        cval, cts = value[keep], ts[keep]
        per = np.bincount(np.searchsorted(starts, drop, side="right") - 1, minlength=starts.size)
        sizes = (ends - starts) - per
    else:
        keep = None                                        # no cumulative series: nothing is written below
        cval, cts = value, ts
        sizes = ends - starts
    span = None
    roll_pos = reset_pos = np.zeros(0, np.int64)
    ci = ranges(starts[cum] + 1, ends[cum])
    if ci.size and skip is not None and len(skip):
        ci = ci[keep[ci]]                                  # a skipped reading's own difference is not emitted
    if ci.size:
        cpos = ci - np.searchsorted(drop, ci, side="right")   # position among the consumption rows
        pv, pt = value[ci - 1], ts[ci - 1]
        cap = np.repeat(np.asarray(capacity, np.float64)[cum], (ends - starts)[cum] - 1)
        if cap.size != ci.size:                            # skipped rows inside: capacity per row
            series = np.searchsorted(starts, ci, side="right") - 1
            cap = np.asarray(capacity, np.float64)[series]
        used, roll, reset = register_step(pv, value[ci], cap, fraction, reset_fraction)
        cval[cpos] = used
        cts[cpos] = pt
        sp = spans(pt, ts[ci], step)
        if (sp > 1).any():
            span = np.ones(cval.size, np.int32)
            span[cpos] = sp
        roll_pos, reset_pos = cpos[roll], cpos[reset]
    return Consumption(ts=cts, value=cval, emitted=keep, rollover=roll_pos, reset=reset_pos, span=span, sizes=sizes)


def month_number(ts: np.ndarray) -> np.ndarray:
    """Rule 6: calendar month of µs timestamps as months since 1970-01 (int64), vectorised."""
    ts = np.asarray(ts, np.int64)
    if not ts.size:
        return np.zeros(0, np.int64)
    lo, hi = (np.array([ts.min(), ts.max()]).astype("datetime64[us]").astype("datetime64[M]")
              .astype(np.int64).tolist())
    edges = np.arange(lo, hi + 2).astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)
    return np.searchsorted(edges, ts, side="right") - 1 + lo
