"""Anomaly detection on metered consumption (issue 15 point 3; seed §8.4 b, §9.5).

The detectors read the lake's ``consumption`` table (interval meters, ``quantity = 'interval'``) as a
matrix time × meter and never read its ``quality_flag``.

* **STL residuals with robust z-scores** (univariate, per meter).  Each meter's 15-minute series is
  decomposed ``y = T + S + R`` by STL (Cleveland et al. 1990, *J. Official Statistics* 6(1):3–73)
  with a daily period (96 intervals) and each residual is scored
  ``z = (r − median(r)) / (1.4826 · MAD(r))`` (:func:`robust_z`; Iglewicz & Hoaglin 1993).

  - ``spike``: a sample with ``|z| ≥ z_spike`` whose run of ``|z| ≥ z_common`` (the samples around
    it that move too) lasts at most ``spike_max`` intervals — a longer run is a stop or a start
    (hysteresis, as in Canny's edge detector: a stop whose z hovers around ``z_spike`` is one long
    run, not a string of spikes); dropped when at least ``common_min`` meters jump within
    ``±common_window`` intervals (:func:`common_mode`: a plant trip, not a meter's fault).
  - ``stuck``: ``≥ stuck_run`` identical non-zero readings in a row — unless, during the run, at
    least ``idle_peers`` of the other meters of its unit are *idle* (at most ``idle_share`` of their
    running level): a plant standstill, where a low-resolution meter legitimately repeats its
    standby reading (the dyeing plant's steam meters read 0.06 GJ for days over the Spring Festival).
  - on **daily** totals the same STL robust z with a weekly period (7 days) is a feature of the
    multivariate detector.

* **drift** (a meter reading a few per cent high or low for weeks) cannot be seen on the meter
  alone: it is a multiplicative change of the meter against the meters that move with it.  Each
  meter's *twin* is the peer of its unit whose daily log ratio ``log(meter / peer)`` has the least
  day-to-day noise ``σ`` (robust: ``1.4826 · MAD(Δ log ratio) / √2``); only a twin with
  ``σ ≤ twin_sigma`` is a reference (a loosely coupled peer's ratio wanders with the process mix by
  more than a drift).  The level of the log ratio (its centred ``drift_days`` rolling median) is
  scored against the year's median in standard errors of that median
  (``z = Δlevel / (1.2533 · σ / √drift_days)``); a run of ``≥ drift_days`` days with
  ``|z| ≥ z_drift`` is a drift of one of the two, attributed to the one whose ratio to the rest of
  the unit (both twins excluded) moved more over the run than around it.

* **A multivariate detector** — scikit-learn's IsolationForest (Liu, Ting & Zhou 2008) over one
  row per (meter, day): the daily STL residual z, the day's largest 15-minute |z|, the share of
  repeated readings and the drift z.  A run of ``≥ drift_days`` consecutive isolated days of a meter
  is a ``drift`` detection of the forest; days that many meters share (``≥ common_min`` meters
  isolated the same day) are the plant's, not a meter's.  On the three demo plants the forest makes
  no such run (their drifts are the twins' finds) and its odd isolated days fall on a labelled
  anomaly less than half the time (43 %, 43 %, 53 %): they stay scores, not alarms.

**Speed.**  With all robustness weights equal to one (statsmodels' default ``robust=False``), each
STL step — cycle-subseries loess, the low-pass filter (three moving averages and a loess), the
trend loess, each evaluated every ``*_jump`` points and linearly interpolated — is a fixed linear
map of the series; :func:`stl_operator` builds them once as sparse matrices and
:func:`stl_decompose` applies them to a block of meters at once.  The result equals statsmodels'
``STL(y, period, …).fit()`` to rounding (≈1e-11 of the series' scale; tests compare them).  Meters
go through in blocks (:data:`Defaults.block` columns, cache-sized), optionally on a Dask cluster
(``client=``).

:func:`score` matches detections with the demo's labels (``anomalies.csv`` of each demo plant,
written by :mod:`workbench.demo.engine`): of the planted kinds, only ``spike``, ``stuck`` and
``drift`` change the *values* of consumption; gaps, duplicates, rollovers, counter resets and meter
replacements are caught earlier, by the ingestion's quality rules, and are not scored here
(:data:`VALUE_KINDS`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError

__all__ = [
    "VALUE_KINDS",
    "AnomalyError",
    "Defaults",
    "common_mode",
    "daily_features",
    "daily_matrix",
    "daily_scores",
    "detect",
    "detect_daily",
    "detect_drifts",
    "detect_frame",
    "detect_intervals",
    "drift_z",
    "interval_matrix",
    "meter_intervals",
    "read_labels",
    "robust_z",
    "score",
    "stl_decompose",
    "stl_operator",
    "stl_residual_z",
    "stuck_runs",
    "twins",
]

#: the planted kinds that change consumption values — what a detector on consumption should find
VALUE_KINDS = ("spike", "stuck", "drift")
MAD_SCALE = 1.4826          # 1 / Φ⁻¹(3/4): MAD → σ for normal data
MEAN_AD_SCALE = 1.2533      # √(π/2): mean absolute deviation → σ for normal data
MEDIAN_SE = 1.2533          # standard error of a median of k normal values ≈ 1.2533 σ / √k
FEATURES = ["resid_z", "max_z15", "repeat_share", "drift_z"]


class AnomalyError(WorkbenchError, ValueError):
    pass


@dataclass(frozen=True)
class Defaults:
    """The detectors' defaults (the figures scored in the tests and the benchmark)."""
    z_spike: float = 25.0           # robust z of a 15-minute STL residual that makes a spike
    spike_max: int = 2              # a spike's run of |z| ≥ z_common lasts at most this many intervals
    z_common: float = 5.0           # |z| that counts a meter as moving …
    common_window: int = 4          # … within ± this many intervals …
    common_min: int = 3             # … and this many meters moving: a plant event, not a spike
    stuck_run: int = 48             # identical non-zero readings in a row (12 h) that make "stuck"
    idle_share: float = 0.1         # a reading ≤ this share of the meter's running level (its 90th percentile) is idle
    idle_peers: float = 0.5         # share of the unit's other meters idle during a stuck run that makes it a standstill
    period: int = 96                # 15-minute intervals per day
    daily_period: int = 7           # days per week
    contamination: float = 0.01     # share of (meter, day) rows IsolationForest isolates
    drift_days: int = 14            # consecutive days that make a drift (and the rolling median's window)
    z_drift: float = 8.0            # |z| of the twin ratio's level (in standard errors of its median)
    twin_sigma: float = 0.01        # day-to-day noise of log(meter / peer) up to which the peer is a twin
    seed: int = 0
    block: int = 20                 # meters per STL block (≈ 5.6 MB of float64 at one year: the temporaries stay in cache)


DEFAULTS = Defaults()


# --------------------------------------------------------------------------- robust scores
def robust_z(x, axis=None) -> np.ndarray:
    """Robust z-score ``z_i = (x_i − median(x)) / (1.4826 · median(|x − median(x)|))``.

    ``x``: array (any unit; z is dimensionless); NaN ignored; ``axis``: score along it (``0``: each
    column of a matrix on its own), ``None``: the whole array.  A zero MAD (more than half the values
    equal) falls back to the mean absolute deviation × 1.2533 (√(π/2)), and to 1 if that is zero
    too.  Reference: Iglewicz & Hoaglin (1993), *How to Detect and Handle Outliers*, §2.
    """
    x = np.asarray(x, float)
    has_nan = np.isnan(x).any()
    med_f = np.nanmedian if has_nan else np.median
    mean_f = np.nanmean if has_nan else np.mean
    with np.errstate(invalid="ignore"), _quiet():
        med = med_f(x, axis=axis, keepdims=True)
        dev = np.abs(x - med)
        s = MAD_SCALE * med_f(dev, axis=axis, keepdims=True)
        bad = ~(s > 0)
        if bad.any():
            s = np.where(bad, MEAN_AD_SCALE * mean_f(dev, axis=axis, keepdims=True), s)
            s = np.where(s > 0, s, 1.0)
    z = (x - med) / s
    return z if axis is not None or z.ndim else z.reshape(x.shape)


class _quiet:
    """Silence numpy's "All-NaN slice" / "Mean of empty slice" warnings (an all-NaN column scores NaN)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


# --------------------------------------------------------------------------- STL as sparse operators
def _loess_weights(n: int, span: int, deg: int, xs, nleft, nright):
    """Loess weights of statsmodels' ``_est`` (the netlib ``stlest``) at the 1-based points ``xs``
    over the windows ``[nleft, nright]`` (all of one width): tricube weights ``(1 − (r/h)³)³`` with
    ``h`` the distance to the window's far end (+ ``(span − n) // 2`` when the span exceeds the
    series), normalised, then tilted for a local line (``deg = 1``).  Returns (0-based columns,
    weights, ok); ``ok`` False where no weight is positive (the fit keeps the observation)."""
    xs = np.asarray(xs, float)
    nleft, nright = np.asarray(nleft), np.asarray(nright)
    width = int(nright[0] - nleft[0]) + 1
    J = nleft[:, None] + np.arange(width)[None, :]
    h = np.maximum(xs - nleft, nright - xs).astype(float)
    if span > n:
        h = h + (span - n) // 2
    r = np.abs(J - xs[:, None])
    hh = h[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(r <= 0.999 * hh, np.where(r <= 0.001 * hh, 1.0, (1.0 - (r / hh) ** 3) ** 3), 0.0)
    a = w.sum(1)
    ok = a > 0
    w = np.where(ok[:, None], w / np.where(ok, a, 1.0)[:, None], 0.0)
    if deg > 0:
        abar = (w * J).sum(1)
        c = (w * (J - abar[:, None]) ** 2).sum(1)
        tilt = ok & (h > 0) & (np.sqrt(c) > 0.001 * (n - 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            fac = ((xs - abar) / c)[:, None] * (J - abar[:, None]) + 1.0
        w = np.where(tilt[:, None], w * fac, w)
    return J - 1, w, ok


def _csr(rows, cols, vals, shape):
    import scipy.sparse as sp

    return sp.csr_matrix((np.ravel(vals), (np.ravel(rows), np.ravel(cols))), shape=shape)


def _loess(n: int, span: int, deg: int, jump: int):
    """statsmodels' ``_ess`` as ``(est, interp)``: ``ys = interp @ (est @ y)`` (``interp`` None when
    every point is evaluated): loess evaluated every ``jump`` points (and at the last one), linear
    interpolation between them."""
    import scipy.sparse as sp

    if n < 2:
        return sp.identity(n, format="csr"), None
    nj = min(jump, n - 1)
    if span >= n:
        pts = np.arange(0, n, nj)
        nleft, nright = np.ones(pts.size, int), np.full(pts.size, n)
    elif nj == 1:
        nsh = (span + 2) // 2
        pts = np.arange(n)
        nleft = 1 + np.clip(pts + 1 - nsh, 0, n - span)
        nright = nleft + span - 1
    else:
        nsh = (span + 1) // 2
        pts = np.arange(0, n, nj)
        x = pts + 1
        nleft = np.where(x < nsh, 1, np.where(x >= n - nsh + 1, n - span + 1, x - nsh + 1))
        nright = nleft + span - 1
    k = ((n - 1) // nj) * nj          # 0-based last regularly evaluated point
    extra = nj > 1 and k != n - 1
    if extra:                          # the last point, with the last window
        pts, nleft, nright = np.r_[pts, n - 1], np.r_[nleft, nleft[-1]], np.r_[nright, nright[-1]]
    cols, w, ok = _loess_weights(n, span, deg, pts + 1, nleft, nright)
    E = pts.size
    est = _csr(np.repeat(np.arange(E), cols.shape[1]), cols, w, (E, n))
    if not ok.all():
        est = est + _csr(np.flatnonzero(~ok), pts[~ok], np.ones(int((~ok).sum())), (E, n))
    if nj == 1:
        return est, None
    reg = pts.size - 1 if extra else pts.size          # regular points: 0, nj, …, k
    seg = np.arange(reg - 1)                           # segments [q·nj, (q+1)·nj) between them
    j = (seg[:, None] * nj + np.arange(nj)[None, :]).ravel()
    q = np.repeat(seg, nj)
    t = (j - q * nj) / nj
    rows, cc, vv = [j, j], [q, q + 1], [1 - t, t]
    if extra:                                          # tail [k, n) between k and n − 1
        jt = np.arange(k, n)
        tt = (jt - k) / (n - 1 - k)
        rows += [jt, jt]
        cc += [np.full(jt.size, reg - 1), np.full(jt.size, E - 1)]
        vv += [1 - tt, tt]
    else:
        rows.append([k])
        cc.append([reg - 1])
        vv.append([1.0])
    interp = _csr(np.concatenate(rows), np.concatenate(cc), np.concatenate(vv), (n, E))
    return est, interp


def _cycle_subseries(n: int, period: int, span: int, deg: int, jump: int):
    """statsmodels' ``_ss`` as an ``(n + 2·period) × n`` matrix: each cycle-subseries (the values at
    one position of the period) loess-smoothed and extended by one point at each end."""
    rows, cols, vals = [], [], []
    by_length = {}
    for j in range(period):
        k = (n - (j + 1)) // period + 1
        if k not in by_length:
            est, interp = _loess(k, span, deg, jump)
            M = np.zeros((k + 2, k))
            M[1:k + 1] = (est if interp is None else interp @ est).toarray()
            for row, xs, nl, nr, fallback in ((0, 0, 1, min(span, k), 1),
                                              (k + 1, k + 1, max(1, k - span + 1), k, k)):
                c, w, ok = _loess_weights(k, span, deg, [xs], [nl], [nr])
                if ok[0]:
                    M[row, c[0]] = w[0]
                else:
                    M[row] = M[fallback]
            r, c = np.nonzero(M)
            by_length[k] = (r, c, M[r, c])
        r, c, v = by_length[k]
        rows.append(r * period + j)
        cols.append(c * period + j)
        vals.append(v)
    return _csr(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), (n + 2 * period, n))


def _moving_average(n: int, length: int):
    m = n - length + 1
    r = np.repeat(np.arange(m), length)
    c = (np.arange(m)[:, None] + np.arange(length)[None, :]).ravel()
    return _csr(r, c, np.full(r.size, 1.0 / length), (m, n))


@dataclass(frozen=True)
class STLOperator:
    """STL's steps for series of ``n`` samples as sparse matrices (see :func:`stl_operator`)."""
    n: int
    period: int
    seasonal: object          # (n + 2·period) × n: cycle-subseries smoothing
    low_est: object           # low-pass: loess ∘ MA(3) ∘ MA(period) ∘ MA(period), at its evaluated points
    low_interp: object
    trend_est: object
    trend_interp: object


def _stl_jumps(period: int, fast: bool) -> dict:
    """The loess jumps: ``fast`` evaluates the trend every period/2 and the low-pass every
    period/5 points (~15× faster than every point at 15 minutes, the same spikes found)."""
    if fast and period >= 24:
        return {"seasonal_jump": 1, "trend_jump": max(1, period // 2), "low_pass_jump": max(1, period // 5)}
    return {"seasonal_jump": 1, "trend_jump": 1, "low_pass_jump": 1}


@lru_cache(maxsize=8)
def stl_operator(n: int, period: int, *, seasonal: int = 7, fast: bool = True) -> STLOperator:
    """The linear maps of one STL inner iteration for series of ``n`` samples with seasonal
    ``period`` (samples), statsmodels' defaults otherwise: seasonal span 7, trend span the smallest
    odd integer ``> 1.5·period / (1 − 1.5/seasonal)``, low-pass span the smallest odd integer
    ``> period``, local-linear loess, jumps as :func:`_stl_jumps`.  Built once per process (≈1 s
    at one year of 15-minute data) and cached."""
    jumps = _stl_jumps(period, fast)
    trend = int(np.ceil(1.5 * period / (1 - 1.5 / seasonal)))
    trend += trend % 2 == 0
    low_pass = period + 1
    low_pass += low_pass % 2 == 0
    N = n + 2 * period
    fts = _moving_average(N - 2 * period + 2, 3) @ _moving_average(N - period + 1, period) \
        @ _moving_average(N, period)
    l_est, l_int = _loess(n, low_pass, 1, jumps["low_pass_jump"])
    t_est, t_int = _loess(n, trend, 1, jumps["trend_jump"])
    return STLOperator(n, period, _cycle_subseries(n, period, seasonal, 1, jumps["seasonal_jump"]),
                       (l_est @ fts).tocsr(), l_int, t_est, t_int)


def _apply(est, interp, X):
    out = est @ X
    return out if interp is None else interp @ out


def stl_decompose(Y, period: int, *, fast: bool = True, inner_iter: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Trend and seasonal components of each column of ``Y`` (``n × m``, or one series): STL without
    robustness weights, ``inner_iter`` passes of

        C = cycle-subseries loess of (Y − T);  L = low-pass of C;  S = C − L;  T = trend loess of (Y − S)

    (Cleveland et al. 1990 §2; statsmodels ``STL(…, robust=False).fit()``, whose default is 5 inner
    passes).  ``Y`` must be complete (no NaN).  Units: those of ``Y``."""
    Y = np.asarray(Y, float)
    one = Y.ndim == 1
    Y2 = Y[:, None] if one else Y
    op = stl_operator(Y2.shape[0], int(period), fast=fast)
    n, p = op.n, op.period
    T = np.zeros_like(Y2)
    S = T
    for _ in range(inner_iter):
        C = op.seasonal @ (Y2 - T)
        S = C[p:p + n] - _apply(op.low_est, op.low_interp, C)
        T = _apply(op.trend_est, op.trend_interp, Y2 - S)
    return (T[:, 0], S[:, 0]) if one else (T, S)


def _fill(Y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each column's samples where ``mask`` linearly interpolated from the others (ends held)."""
    Y = Y.copy()
    idx = np.arange(Y.shape[0])
    for c in np.flatnonzero(mask.any(0)):
        keep = ~mask[:, c]
        if keep.any():
            Y[mask[:, c], c] = np.interp(idx[mask[:, c]], idx[keep], Y[keep, c])
    return Y


def stl_residual_z(y, period: int, *, fast: bool = True, clean_above: float | None = None,
                   engine: str = "operator") -> np.ndarray:
    """Robust z-scores (:func:`robust_z`) of the residual of an STL decomposition ``y = T + S + R``
    with seasonal ``period`` (in samples), for one series or each column of a matrix.  NaN
    (missing intervals) are linearly interpolated before the fit and given z = NaN; a series shorter
    than two periods and one sample, or all NaN, scores NaN.  ``fast``: see :func:`_stl_jumps`.
    ``clean_above``: samples with ``|z| ≥ clean_above`` are replaced by interpolation and STL is
    fitted again (one pass), so that an outlier's echo in the seasonal component does not flag the
    same time on the next days; the original values are then scored on the cleaned fit
    (``z = (y − T − S − median(R')) / (1.4826 · MAD(R'))``).  ``engine``: ``"operator"``
    (:func:`stl_decompose`, every column at once) or ``"statsmodels"`` (one ``STL`` per column:
    the reference the operator is checked against)."""
    Y = np.asarray(y, float)
    one = Y.ndim == 1
    Y = Y[:, None] if one else Y
    n = Y.shape[0]
    miss = np.isnan(Y)
    z = np.full(Y.shape, np.nan)
    cols = np.flatnonzero(~miss.all(0)) if n >= 2 * period + 1 else np.array([], int)
    if cols.size:
        Yc = _fill(Y[:, cols], miss[:, cols])
        fit = _fit_engine(engine, period, fast)
        T, S = fit(Yc)
        zc = robust_z(Yc - T - S, axis=0)
        if clean_above is not None:
            out = np.abs(zc) >= clean_above
            again = np.flatnonzero(out.any(0))
            if again.size:
                Y2 = _fill(Yc[:, again], out[:, again])
                T2, S2 = fit(Y2)
                R2 = Y2 - T2 - S2
                med = np.median(R2, axis=0)
                s = MAD_SCALE * np.median(np.abs(R2 - med), axis=0)
                s = np.where(s > 0, s, 1.0)
                zc[:, again] = (Yc[:, again] - T2 - S2 - med) / s
        z[:, cols] = zc
        z[miss] = np.nan
    return z[:, 0] if one else z


def _fit_engine(engine: str, period: int, fast: bool):
    if engine == "operator":
        return lambda Y: stl_decompose(Y, period, fast=fast)
    if engine == "statsmodels":
        from statsmodels.tsa.seasonal import STL

        kw = _stl_jumps(period, fast)

        def fit(Y):
            res = [STL(Y[:, c], period=period, **kw).fit() for c in range(Y.shape[1])]
            return (np.column_stack([r.trend for r in res]), np.column_stack([r.seasonal for r in res]))
        return fit
    raise AnomalyError(f"unknown STL engine {engine!r}: 'operator' or 'statsmodels'")


# --------------------------------------------------------------------------- runs
def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True down each column of ``mask`` (``n × m``): (column, start, end exclusive)."""
    mask = np.asarray(mask, bool)
    if mask.ndim == 1:
        mask = mask[:, None]
    m = mask.shape[1]
    pad = np.zeros((mask.shape[0] + 2, m), bool)
    pad[1:-1] = mask
    d = np.diff(pad.T.astype(np.int8), axis=1)          # m × (n + 1): +1 at a start, −1 after an end
    sc, s = np.nonzero(d == 1)
    _, e = np.nonzero(d == -1)
    return sc, s, e


def stuck_runs(y, min_run: int) -> list[tuple[int, int]]:
    """Runs ``[i0, i1)`` of at least ``min_run`` consecutive identical, non-zero, non-NaN values
    (a flat-lined meter; a run of zeros is a stopped plant, not a fault)."""
    _, i0, i1 = _stuck_2d(np.asarray(y, float)[:, None], min_run)
    return [(int(a), int(b)) for a, b in zip(i0, i1)]


def _stuck_2d(Y: np.ndarray, min_run: int):
    """:func:`stuck_runs` of each column: (column, i0, i1)."""
    if Y.shape[0] < 2:
        return np.array([], int), np.array([], int), np.array([], int)
    same = (Y[1:] == Y[:-1]) & (Y[1:] != 0)             # NaN ≠ NaN: never the same
    c, s, e = _runs(same)
    keep = e - s + 1 >= min_run                          # run of k "same" = k + 1 identical values
    return c[keep], s[keep], e[keep] + 1


# --------------------------------------------------------------------------- reading the lake
def interval_matrix(lake, *, start=None, end=None, meters=None, freq: str = "15min") -> tuple[pd.DataFrame, pd.Series]:
    """The lake's interval consumption as a wide frame (time × meter, NaN where nothing was
    stored) and each meter's unit.  The filters (``quantity = 'interval'``, ``[start, end)``,
    ``meters``) run in DuckDB; ``freq="1D"`` sums each day (a day with missing intervals is summed
    as stored)."""
    con = lake.connect(tables=["consumption"], registries=False,
                       between=(start, end) if start is not None and end is not None else None)
    try:
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "consumption" not in names:
            raise AnomalyError(f"no consumption in the lake of {lake.enterprise or 'the root'}")
        where, args = ["quantity = 'interval'"], []
        if start is not None:
            where.append("ts >= ?")
            args.append(pd.Timestamp(start).to_pydatetime())
        if end is not None:
            where.append("ts < ?")
            args.append(pd.Timestamp(end).to_pydatetime())
        if meters is not None:
            where.append("meter_id IN (SELECT unnest(?::VARCHAR[]))")
            args.append(list(meters))
        bucket = "ts" if freq == "15min" else "date_trunc('day', ts)"
        agg = "avg(value)" if freq == "15min" else "sum(value)"     # avg: a duplicate stored twice counts once
        df = con.execute(f"SELECT meter_id, any_value(unit) AS unit, {bucket} AS t, {agg} AS v FROM consumption "
                         f"WHERE {' AND '.join(where)} GROUP BY meter_id, t", args).df()
    finally:
        con.close()
    if df.empty:
        raise AnomalyError("no interval consumption in the range asked")
    units = df.groupby("meter_id")["unit"].first()
    wide = df.pivot(index="t", columns="meter_id", values="v").sort_index()
    full = pd.date_range(wide.index.min(), wide.index.max(), freq="15min" if freq == "15min" else "1D")
    return wide.reindex(full), units


def daily_matrix(wide15: pd.DataFrame) -> pd.DataFrame:
    """Daily sums of a 15-minute wide frame (a day with no value at all stays NaN)."""
    return wide15.resample("1D").sum(min_count=1)


# --------------------------------------------------------------------------- 15-minute detectors
def _local_jumps(z: np.ndarray, z_level: float) -> np.ndarray:
    """``|z_t − median(z_{t−2…t+2})| ≥ z_level`` per sample (the median of the non-NaN values of
    the centred window of 5, shortened at the ends; NaN z never jumps).  Since
    ``|z_t − median| ≤ 2·max|z|`` over the window, only samples where that maximum reaches
    ``z_level / 2`` need the median: the rest cannot jump."""
    n = z.shape[0]
    a = np.abs(np.nan_to_num(z))
    wmax = a.copy()
    for k in (1, 2):
        wmax[k:] = np.maximum(wmax[k:], a[:-k])
        wmax[:-k] = np.maximum(wmax[:-k], a[k:])
    hot = np.zeros(z.shape, bool)
    t, c = np.nonzero((wmax >= z_level / 2) & ~np.isnan(z))
    if t.size:
        rows = t[:, None] + np.arange(-2, 3)[None, :]
        inside = (rows >= 0) & (rows < n)
        win = np.where(inside, z[np.clip(rows, 0, n - 1), c[:, None]], np.nan)
        with _quiet():
            med = np.nanmedian(win, axis=1)
        hot[t, c] = np.abs(z[t, c] - med) >= z_level
    return hot


def _moving_count(z: np.ndarray, z_level: float, window: int) -> np.ndarray:
    """Per sample, the number of columns with a local jump (:func:`_local_jumps`) within ±window."""
    hot = _local_jumps(z, z_level)
    near = hot.copy()
    for k in range(1, window + 1):
        near[k:] |= hot[:-k]
        near[:-k] |= hot[k:]
    return near.sum(axis=1)


def common_mode(z: pd.DataFrame, *, z_level: float, window: int) -> pd.Series:
    """Per timestamp, how many meters show a local jump ``|z_t − median(z_{t−2…t+2})| ≥ z_level``
    within ``±window`` samples — a stop, a start or a holiday moves many meters at once; a faulty
    meter moves alone.  The local median takes out level shifts that last (a weekend, a stop
    that the daily STL does not model), which move every meter's z but are not jumps."""
    return pd.Series(_moving_count(z.to_numpy(float), z_level, window), index=z.index)


def _spike_runs(z: np.ndarray, d: Defaults):
    """Spikes of each column: a sample with ``|z| ≥ z_spike`` inside a run of ``|z| ≥ z_common``
    at most ``spike_max`` long.  Returns (column, first and last strong sample, run length, score)."""
    a = np.abs(np.nan_to_num(z))
    strong = a >= d.z_spike
    if not strong.any():
        e = np.array([], int)
        return e, e, e, e, np.array([], float)
    c, s, e = _runs(a >= d.z_common)
    cs = np.vstack([np.zeros((1, z.shape[1]), int), np.cumsum(strong, axis=0)])
    has = cs[e, c] - cs[s, c] > 0
    short = e - s <= d.spike_max
    c, s, e = c[has & short], s[has & short], e[has & short]
    first, last, score = [], [], []
    for ci, si, ei in zip(c, s, e):
        f = si + np.flatnonzero(strong[si:ei, ci])
        first.append(f[0])
        last.append(f[-1])
        score.append(a[si:ei, ci].max())
    return c, np.array(first, int), np.array(last, int), e - s, np.array(score, float)


def _running_level(Y: np.ndarray) -> np.ndarray:
    """Each column's running level: the 90th percentile of its positive readings."""
    with _quiet():
        return np.nanpercentile(np.where(Y > 0, Y, np.nan), 90, axis=0)


def _day_starts(index: pd.DatetimeIndex) -> np.ndarray:
    day = index.normalize()
    return np.flatnonzero(np.r_[True, day[1:] != day[:-1]])


_MALLOC_TUNED = False


def _allow_heap_reuse() -> None:
    """Let glibc serve the STL's large temporaries (a few MB per block) from its heap again.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``; setting any malloc tunable
    switches off glibc's dynamic mmap threshold, which then stays at 128 KiB: every temporary is
    mmapped, page-faulted and unmapped afresh (measured: 2.5× slower on 2 workers, most of it system
    time).  Raising the mmap threshold to 32 MiB (glibc's own ceiling on 64-bit) and the trim
    threshold to twice that restores the default behaviour for arrays of that size.  Once per
    process; nothing on other C libraries."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)      # M_MMAP_THRESHOLD
        libc.mallopt(-1, 64 << 20)      # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _interval_block(Y: np.ndarray, day_starts: np.ndarray, unit_codes: np.ndarray, n_units: int,
                    d: Defaults, want_z: bool = False, z: np.ndarray | None = None) -> dict:
    """The 15-minute work on one block of meters (``Y``: intervals × meters, NaN missing) — a pure
    function of its arguments, run serially or as one Dask task.  Returns small arrays: spike and
    stuck candidates (column indices into the block), the number of meters jumping per interval
    (common mode), per unit the number of idle meters per interval, and per (day, meter) the daily
    sum, the largest |z| and the share of repeated readings; with ``want_z`` the z matrix (float32).
    ``z``: the STL z-scores already computed (the fit is skipped)."""
    _allow_heap_reuse()
    if z is None:
        z = stl_residual_z(Y, d.period, clean_above=d.z_spike)
    moving = _moving_count(z, d.z_common, d.common_window)
    sp = _spike_runs(z, d)
    sc, s0, s1 = _stuck_2d(Y, d.stuck_run)
    level = _running_level(Y)
    idle = Y <= d.idle_share * level                      # NaN compares False: missing is not idle
    idle_units = np.zeros((n_units, Y.shape[0]), np.int32)
    for u in range(n_units):
        sel = unit_codes == u
        if sel.any():
            idle_units[u] = idle[:, sel].sum(axis=1)
    own_idle = np.array([idle[a:b, c].mean() for c, a, b in zip(sc, s0, s1)], float)
    # per (day, meter): the sum, the largest |z|, the share of readings equal to the previous one
    finite = ~np.isnan(Y)
    n_day = np.add.reduceat(finite, day_starts, axis=0)
    dsum = np.where(n_day > 0, np.add.reduceat(np.where(finite, Y, 0.0), day_starts, axis=0), np.nan)
    zmax = np.maximum.reduceat(np.abs(np.nan_to_num(z)), day_starts, axis=0)
    rep = np.zeros(Y.shape, bool)
    rep[1:] = (Y[1:] == Y[:-1]) & (Y[1:] != 0)
    rep_share = np.add.reduceat(rep, day_starts, axis=0) / np.diff(np.r_[day_starts, Y.shape[0]])[:, None]
    out = {"moving": moving.astype(np.int32), "spikes": sp, "stuck": (sc, s0, s1, own_idle),
           "idle_units": idle_units, "dsum": dsum, "zmax": zmax, "rep_share": rep_share}
    if want_z:
        out["z"] = z.astype(np.float32)
    return out


def _unit_codes(meters, units) -> tuple[np.ndarray, list]:
    """Each meter's unit as an integer code (meters without a unit share one group)."""
    names = [str(units.get(m, "")) if units is not None else "" for m in meters]
    uniq = sorted(set(names))
    return np.array([uniq.index(u) for u in names], int), uniq


def _frame(rows) -> pd.DataFrame:
    cols = ["meter_id", "ts_start", "ts_end", "kind", "score", "n", "method"]
    return pd.DataFrame(rows, columns=cols)


def _run_blocks(wide: pd.DataFrame, codes: np.ndarray, n_units: int, d: Defaults,
                client=None, want_z: bool = False) -> list[tuple[int, dict]]:
    """:func:`_interval_block` over blocks of ``d.block`` columns of ``wide``: serially, or one Dask
    task per block on ``client`` (results gathered in column order)."""
    starts = _day_starts(wide.index)
    step = max(1, int(d.block))
    offs = list(range(0, wide.shape[1], step))

    def block(o):
        return np.ascontiguousarray(wide.iloc[:, o:o + step].to_numpy(float))

    if client is None:
        return [(o, _interval_block(block(o), starts, codes[o:o + step], n_units, d, want_z)) for o in offs]
    # one block sent at a time, its task submitted at once: the workers compute while the next is sent
    futures = [client.submit(_interval_block, client.scatter(block(o)), starts, codes[o:o + step], n_units, d,
                             want_z, pure=False) for o in offs]
    return list(zip(offs, client.gather(futures)))


def _interval_detections(index, meters, codes, parts, d: Defaults) -> pd.DataFrame:
    """Spikes not shared with the plant (fewer than ``common_min`` meters jumping) and stuck runs
    not during a standstill of the unit, from the blocks' summaries."""
    moving = sum(r["moving"].astype(np.int64) for _, r in parts)
    idle_units = sum(r["idle_units"].astype(np.int64) for _, r in parts)
    idle_cum = np.hstack([np.zeros((idle_units.shape[0], 1)), np.cumsum(idle_units, axis=1)])
    per_unit = np.bincount(codes, minlength=idle_units.shape[0])
    rows = []
    for off, r in parts:
        c, first, last, length, sc = r["spikes"]
        for ci, f, la, ln, s in zip(c, first, last, length, sc):
            if moving[f] < d.common_min:
                rows.append({"meter_id": meters[off + ci], "ts_start": index[f], "ts_end": index[la],
                             "kind": "spike", "score": float(s), "n": int(ln), "method": "stl-z"})
        for ci, i0, i1, own in zip(*r["stuck"]):
            u = codes[off + ci]
            peers = per_unit[u] - 1
            if peers > 0:
                peer_idle = ((idle_cum[u, i1] - idle_cum[u, i0]) / (i1 - i0) - own) / peers
                if peer_idle >= d.idle_peers:       # the unit stands still: a standby reading repeats
                    continue
            rows.append({"meter_id": meters[off + ci], "ts_start": index[i0], "ts_end": index[i1 - 1],
                         "kind": "stuck", "score": float(i1 - i0), "n": int(i1 - i0), "method": "stuck-run"})
    return _frame(rows)


def meter_intervals(meter: str, index: pd.DatetimeIndex, y, *, defaults: Defaults = DEFAULTS) -> tuple[list, np.ndarray]:
    """One meter's 15-minute detections on its own (no common-mode or standstill filter: those need
    the other meters): spikes and stuck runs, and its z-scores."""
    Y = np.asarray(y, float)[:, None]
    index = pd.DatetimeIndex(index)
    codes = np.zeros(1, int)
    z = stl_residual_z(Y, defaults.period, clean_above=defaults.z_spike)
    r = _interval_block(Y, _day_starts(index), codes, 1, defaults, z=z)
    r["moving"][:] = 0
    det = _interval_detections(index, [meter], codes, [(0, r)], defaults)
    return det.to_dict("records"), z[:, 0]


def detect_intervals(wide: pd.DataFrame, *, defaults: Defaults = DEFAULTS, results=None, units=None,
                     client=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """15-minute detections (``spike`` and ``stuck``) of every column of ``wide`` and the matrix of
    robust z-scores of the STL residuals (same shape, float32).  ``units``: each meter's unit (the
    peers of a stuck run; default: all meters one unit).  ``client``: a Dask client to run the
    blocks on.  ``results``: per-meter ``(rows, z)`` of :func:`meter_intervals` already computed
    (e.g. on a Dask cluster, in column order): the detections are made again from the values with
    the plant's common mode and standstills."""
    meters = [str(m) for m in wide.columns]
    codes, names = _unit_codes(meters, units)
    if results is None:
        parts = _run_blocks(wide, codes, len(names), defaults, client=client, want_z=True)
        z = np.hstack([r["z"] for _, r in parts])
    else:
        z = np.column_stack([np.asarray(zz, float) for _, zz in results])
        parts = [(0, _interval_block(wide.to_numpy(float), _day_starts(wide.index), codes, len(names), defaults,
                                     z=z))]
        z = z.astype(np.float32)
    det = _interval_detections(wide.index, meters, codes, parts, defaults)
    return det, pd.DataFrame(z, index=wide.index, columns=wide.columns)


# --------------------------------------------------------------------------- daily: twins and drift
def _log_running(daily: np.ndarray, d: Defaults) -> np.ndarray:
    """log of each daily total, NaN on idle days (≤ idle_share of the meter's running daily level)."""
    level = _running_level(daily)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((daily > d.idle_share * level) & (daily > 0), np.log(daily), np.nan)


def _robust_sigma_diff(x: np.ndarray) -> float:
    """σ of daily noise from day-to-day differences: ``1.4826 · MAD(Δx) / √2`` (a level shift moves
    only two differences)."""
    dx = np.diff(x)
    dx = dx[np.isfinite(dx)]
    if dx.size < 10:
        return np.nan
    return float(MAD_SCALE * np.median(np.abs(dx - np.median(dx))) / np.sqrt(2))


def twins(daily: pd.DataFrame, units=None, *, defaults: Defaults = DEFAULTS, shortlist: int = 3) -> pd.DataFrame:
    """Each meter's twin: the peer of its unit with the least day-to-day noise ``σ`` of
    ``log(meter / peer)`` (:func:`_robust_sigma_diff`), a twin when ``σ ≤ twin_sigma``.  Peers are
    short-listed by the mean square of the difference of daily log changes (one matrix product over
    all meters), then scored robustly.  Columns: meter_id, twin (missing when none), sigma (the best
    peer's, twin or not)."""
    meters = [str(m) for m in daily.columns]
    codes, _ = _unit_codes(meters, units)
    L = _log_running(daily.to_numpy(float), defaults)
    dL = np.diff(L, axis=0)
    M = np.isfinite(dL).astype(float)
    A = np.nan_to_num(dL)
    A2 = A * A
    both = M.T @ M
    with np.errstate(divide="ignore", invalid="ignore"):
        msd = (A2.T @ M + M.T @ A2 - 2 * A.T @ A) / both
    bad = (both < 30) | (codes[:, None] != codes[None, :]) | np.eye(len(meters), dtype=bool)
    msd[bad] = np.inf
    rows = []
    for i, m in enumerate(meters):
        best, best_s = None, np.inf
        for j in np.argsort(msd[i])[:shortlist]:
            if not np.isfinite(msd[i, j]):
                break
            s = _robust_sigma_diff(L[:, i] - L[:, j])
            if s < best_s:
                best, best_s = meters[j], s
        twin = best if best_s <= defaults.twin_sigma else None
        rows.append({"meter_id": m, "twin": twin, "sigma": best_s if np.isfinite(best_s) else np.nan})
    return pd.DataFrame(rows, columns=["meter_id", "twin", "sigma"])


def drift_z(daily: pd.DataFrame, units=None, *, defaults: Defaults = DEFAULTS,
            pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (day, meter) the level shift of ``log(meter / twin)`` in standard errors:
    ``z_t = (median_{t ± k}(r) − median(r)) / (1.2533 · σ / √w)`` with ``r`` the daily log ratio (NaN
    on idle days), ``w = drift_days`` the centred rolling window (``k = w/2``, at least ``w/2`` days
    present) and ``σ`` the pair's day-to-day noise (:func:`twins`).  0 for a meter without a twin.
    Dimensionless; positive when the meter reads high against its twin."""
    d = defaults
    pairs = twins(daily, units, defaults=d) if pairs is None else pairs
    L = pd.DataFrame(_log_running(daily.to_numpy(float), d), index=daily.index, columns=daily.columns)
    out = pd.DataFrame(0.0, index=daily.index, columns=daily.columns)
    have = pairs.dropna(subset=["twin"])
    if have.empty:
        return out
    ratio = pd.DataFrame({m: L[m] - L[t] for m, t in zip(have["meter_id"], have["twin"])}, index=daily.index)
    level = ratio.rolling(d.drift_days, center=True, min_periods=max(1, d.drift_days // 2)).median()
    with _quiet():
        base = np.nanmedian(ratio.to_numpy(), axis=0)
    se = MEDIAN_SE * have["sigma"].to_numpy() / np.sqrt(d.drift_days)
    out[ratio.columns] = ((level - base) / se).fillna(0.0).to_numpy()
    return out


def _step(x: np.ndarray, a: int, b: int) -> float:
    """Median of ``x`` over ``[a, b)`` minus its median over as many days either side."""
    k = b - a
    inside = x[a:b]
    around = np.r_[x[max(0, a - k):a], x[b:b + k]]
    inside, around = inside[np.isfinite(inside)], around[np.isfinite(around)]
    if inside.size < 3 or around.size < 3:
        return np.nan
    return float(np.median(inside) - np.median(around))


def detect_drifts(daily: pd.DataFrame, units=None, *, defaults: Defaults = DEFAULTS,
                  z: pd.DataFrame | None = None, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Drifts against twins: runs of at least ``drift_days`` days with ``|drift_z| ≥ z_drift``.  The
    pair moved apart; which of the two moved is the one whose log ratio to the rest of its unit (both
    twins left out) stepped more over the run than over as many days around it (:func:`_step`); a
    unit of two meters has no rest: the meter whose z it is is named.  One row per drift."""
    d = defaults
    pairs = twins(daily, units, defaults=d) if pairs is None else pairs
    z = drift_z(daily, units, defaults=d, pairs=pairs) if z is None else z
    meters = [str(m) for m in daily.columns]
    codes, _ = _unit_codes(meters, units)
    D = daily.to_numpy(float)
    L = _log_running(D, d)
    col = {m: i for i, m in enumerate(meters)}
    twin_of = dict(zip(pairs["meter_id"], pairs["twin"]))
    c, s, e = _runs(np.abs(z.to_numpy()) >= d.z_drift)
    found: dict[str, list] = {}
    for ci, a, b in zip(c, s, e):
        if b - a < d.drift_days:
            continue
        m = meters[ci]
        t = twin_of.get(m)
        if t is None or pd.isna(t):
            continue
        i, j = col[m], col[t]
        who = m
        peers = np.flatnonzero(codes == codes[i])
        rest_idx = [k for k in peers if k not in (i, j)]
        if rest_idx:
            with np.errstate(divide="ignore", invalid="ignore"):
                rest = np.log(np.nansum(D[:, rest_idx], axis=1))
            sm, st = _step(L[:, i] - rest, a, b), _step(L[:, j] - rest, a, b)
            if np.isfinite(sm) and np.isfinite(st) and abs(st) > abs(sm):
                who = t
        score = float(np.abs(z.iloc[a:b, ci]).max())
        runs = found.setdefault(who, [])
        for r in runs:                        # the same drift seen from both twins
            if a < r[1] and b > r[0]:
                r[0], r[1], r[2] = min(r[0], a), max(r[1], b), max(r[2], score)
                break
        else:
            runs.append([a, b, score])
    rows = []
    for m, runs in found.items():
        for a, b, score in runs:
            rows.append({"meter_id": m, "ts_start": daily.index[a],
                         "ts_end": daily.index[b - 1] + pd.Timedelta("1D") - pd.Timedelta("15min"),
                         "kind": "drift", "score": score, "n": int(b - a), "method": "twin-ratio"})
    return _frame(rows)


# --------------------------------------------------------------------------- daily: the forest
def _features(daily: pd.DataFrame, zmax, rep_share, dz: pd.DataFrame, d: Defaults) -> pd.DataFrame:
    D = daily.to_numpy(float)
    resid = np.full(D.shape, np.nan)
    ok = np.isfinite(D).sum(0) > 15
    if ok.any():
        resid[:, ok] = stl_residual_z(D[:, ok], d.daily_period, fast=False)
    days, meters = daily.index, list(daily.columns)
    n_d, n_m = D.shape
    return pd.DataFrame({
        "meter_id": np.repeat(np.asarray(meters, object), n_d),
        "day": np.tile(days.to_numpy(), n_m),
        "resid_z": resid.T.ravel(),
        "max_z15": np.asarray(zmax, float).T.ravel(),
        "repeat_share": np.asarray(rep_share, float).T.ravel(),
        "drift_z": dz.to_numpy(float).T.ravel(),
    })


def daily_features(wide15: pd.DataFrame, units=None, z15: pd.DataFrame | None = None,
                   *, defaults: Defaults = DEFAULTS) -> pd.DataFrame:
    """One row per (meter, day): ``resid_z`` (robust z of the daily STL residual, weekly period),
    ``max_z15`` (largest |z| of the day's 15-minute residuals; ``z15`` from
    :func:`detect_intervals`, computed when not given), ``repeat_share`` (share of the day's
    readings equal to the previous one, zeros excluded) and ``drift_z`` (:func:`drift_z`)."""
    if z15 is None:
        _, z15 = detect_intervals(wide15, defaults=defaults, units=units)
    starts = _day_starts(wide15.index)
    Y = wide15.to_numpy(float)
    daily = daily_matrix(wide15)
    zmax = np.maximum.reduceat(np.abs(np.nan_to_num(z15.to_numpy(float))), starts, axis=0)
    rep = np.zeros(Y.shape, bool)
    rep[1:] = (Y[1:] == Y[:-1]) & (Y[1:] != 0)
    rep_share = np.add.reduceat(rep, starts, axis=0) / np.diff(np.r_[starts, Y.shape[0]])[:, None]
    return _features(daily, zmax, rep_share, drift_z(daily, units, defaults=defaults), defaults)


def daily_scores(features: pd.DataFrame, *, defaults: Defaults = DEFAULTS) -> pd.DataFrame:
    """IsolationForest over :func:`daily_features` (NaN → 0; absolute values, a high and a low
    anomaly alike): ``features`` with ``score`` (the forest's anomaly score ``−score_samples``,
    higher = easier to isolate) and ``isolated`` (the ``contamination`` share of highest scores, as
    sklearn's ``predict``; cleared on a day when at least ``common_min`` meters are isolated: that
    day is the plant's — a stop, a holiday — not a meter's)."""
    from sklearn.ensemble import IsolationForest

    d = defaults
    if features.empty:
        return features.assign(score=pd.Series(dtype=float), isolated=pd.Series(dtype=bool))
    X = features[FEATURES].abs().fillna(0.0).to_numpy(np.float32)
    # scored once: sklearn's contamination sets the threshold at that percentile of the training
    # scores (fit with a contamination scores X, fit_predict scores it again), the same rows
    forest = IsolationForest(n_estimators=100, contamination="auto", random_state=d.seed).fit(X)
    score = -forest.score_samples(X)
    flag = score > np.percentile(score, 100.0 * (1.0 - d.contamination))
    f = features.assign(score=score, isolated=flag)
    shared = f.groupby("day")["isolated"].transform("sum") >= d.common_min
    f["isolated"] = f["isolated"] & ~shared
    return f


def detect_daily(features: pd.DataFrame, *, defaults: Defaults = DEFAULTS, scores: pd.DataFrame | None = None
                 ) -> pd.DataFrame:
    """Runs of at least ``drift_days`` consecutive isolated days of a meter (:func:`daily_scores`)
    are ``drift`` detections of the forest; an odd isolated day is kept as a score, not an alarm."""
    d = defaults
    f = daily_scores(features, defaults=d) if scores is None else scores
    rows = []
    for m, g in f[f["isolated"]].groupby("meter_id", sort=True):
        g = g.sort_values("day")
        days = pd.DatetimeIndex(g["day"])
        pos = ((days - days[0]) / pd.Timedelta("1D")).astype(int).to_numpy()
        brk = np.flatnonzero(np.diff(pos) > 1)
        for a, b in zip(np.r_[0, brk + 1], np.r_[brk, pos.size - 1]):
            if b - a + 1 < d.drift_days:
                continue
            rows.append({"meter_id": m, "ts_start": days[a],
                         "ts_end": days[b] + pd.Timedelta("1D") - pd.Timedelta("15min"), "kind": "drift",
                         "score": float(g["score"].to_numpy()[a:b + 1].max()), "n": int(b - a + 1),
                         "method": "isolation-forest"})
    return _frame(rows)


# --------------------------------------------------------------------------- the whole detection
def _merge(frames) -> pd.DataFrame:
    """Detections of all detectors; a drift found by both the twins and the forest is kept once
    (the twins' row, the forest's method noted)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return _frame([])
    out = pd.concat(frames, ignore_index=True)
    drift = out[out["kind"] == "drift"]
    drop = []
    for m, g in drift.groupby("meter_id"):
        twin_rows = g[g["method"] == "twin-ratio"]
        for i, r in g[g["method"] == "isolation-forest"].iterrows():
            ov = twin_rows[(twin_rows["ts_start"] <= r["ts_end"]) & (twin_rows["ts_end"] >= r["ts_start"])]
            if len(ov):
                drop.append(i)
                out.loc[ov.index, "method"] = "twin-ratio+isolation-forest"
    out = out.drop(index=drop)
    return out.sort_values(["meter_id", "ts_start"]).reset_index(drop=True)


def detect_frame(wide: pd.DataFrame, units=None, *, defaults: Defaults = DEFAULTS, client=None) -> pd.DataFrame:
    """Every detector on a wide 15-minute frame (time × meter; ``units``: each meter's unit, the
    peers of its standstills and twins): spikes and stuck runs, drifts against twins, and the
    IsolationForest's runs of isolated days; one row per detection: meter_id, ts_start, ts_end,
    kind, score, n, method.  ``client``: a Dask client that runs the 15-minute blocks.

    ``attrs["drift_unchecked"]``: the meters with no twin, whose drift the twins cannot check (only
    the forest looks at them) — said, so that an empty drift list is not read as "no drift"."""
    d = defaults
    meters = [str(m) for m in wide.columns]
    codes, names = _unit_codes(meters, units)
    parts = _run_blocks(wide, codes, len(names), d, client=client)
    fifteen = _interval_detections(wide.index, meters, codes, parts, d)
    days = wide.index[_day_starts(wide.index)].normalize()
    daily = pd.DataFrame(np.hstack([r["dsum"] for _, r in parts]), index=days, columns=wide.columns)
    pairs = twins(daily, units, defaults=d)
    dz = drift_z(daily, units, defaults=d, pairs=pairs)
    drifts = detect_drifts(daily, units, defaults=d, z=dz, pairs=pairs)
    feats = _features(daily, np.hstack([r["zmax"] for _, r in parts]),
                      np.hstack([r["rep_share"] for _, r in parts]), dz, d)
    forest = detect_daily(feats, defaults=d)
    out = _merge([fifteen, drifts, forest])
    out.attrs["drift_unchecked"] = sorted(pairs.loc[pairs["twin"].isna(), "meter_id"].astype(str))
    return out


def detect(lake, *, start=None, end=None, meters=None, defaults: Defaults = DEFAULTS, client=None) -> pd.DataFrame:
    """:func:`detect_frame` on ``lake``'s interval consumption (``[start, end)``, ``meters``)."""
    wide, units = interval_matrix(lake, start=start, end=end, meters=meters)
    return detect_frame(wide, units, defaults=defaults, client=client)
# --------------------------------------------------------------------------- scoring
def read_labels(path) -> pd.DataFrame:
    """A demo plant's ``anomalies.csv`` (anomaly_id, meter_id, kind, ts_start, ts_end, …)."""
    need = {"meter_id", "kind", "ts_start", "ts_end"}
    try:
        lab = pd.read_csv(path, dtype={"meter_id": str, "kind": str})
    except UnicodeDecodeError as exc:
        raise AnomalyError(f"{path}: not a UTF-8 CSV of labelled anomalies") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise AnomalyError(f"{path}: not a CSV of labelled anomalies (rows of unequal length or empty)") from exc
    if not need <= set(lab.columns):
        raise AnomalyError(f"{path}: labels need the columns {sorted(need)}, found {list(lab.columns)[:8]}")
    for col in ("ts_start", "ts_end"):
        t = pd.to_datetime(lab[col], errors="coerce")
        bad = t.isna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise AnomalyError(f"{path}: row {row + 2}, column {col}: {lab[col].iloc[row]!r} is not a time")
        lab[col] = t
    return lab


def score(detections: pd.DataFrame, labels: pd.DataFrame, *, kinds=VALUE_KINDS,
          tolerance: str = "1D") -> dict:
    """Precision and recall of ``detections`` against the labels of ``kinds``.

    A label is *found* when a detection of its meter overlaps ``[ts_start − tolerance,
    ts_end + tolerance]``; a detection is *true* when it overlaps a label of its meter of any
    kind (a detection on a gap or a duplicate is not a false alarm: the data there is wrong).
    recall(kind) = labels of that kind found / labels of that kind; precision(kind) = true
    detections the detector called that kind / detections it called that kind; ``overall`` pools
    every label of ``kinds`` and every detection."""
    tol = pd.Timedelta(tolerance)
    lab = labels[labels["kind"].isin(kinds)]
    det = detections.reset_index(drop=True)

    def hits(row, others):
        o = others[others["meter_id"] == row["meter_id"]]
        return bool(((o["ts_start"] <= row["ts_end"] + tol) & (o["ts_end"] >= row["ts_start"] - tol)).any())

    found = np.array([hits(r, det) for _, r in lab.iterrows()], bool)
    true = np.array([hits(r, labels) for _, r in det.iterrows()], bool)
    out = {"per_kind": {}, "n_labels": len(lab), "n_detections": len(det)}
    det_kind = det["kind"].replace({"day": "drift"}).to_numpy() if len(det) else np.array([])
    for k in kinds:
        lk = (lab["kind"] == k).to_numpy()
        dk = det_kind == k
        out["per_kind"][k] = {
            "labels": int(lk.sum()), "found": int(found[lk].sum()),
            "recall": float(found[lk].mean()) if lk.any() else float("nan"),
            "detections": int(dk.sum()), "true": int(true[dk].sum()),
            "precision": float(true[dk].mean()) if dk.any() else float("nan"),
        }
    out["recall"] = float(found.mean()) if len(found) else float("nan")
    out["precision"] = float(true.mean()) if len(true) else float("nan")
    return out
