"""Benchmark: forecasting backtests on Dask and anomaly detection at scale (issue 15, point 10).

    python benchmarks/models.py [--series 200] [--model linear] [--folds 3] [--horizon 28] [--workers 2]
                                [--meters 2000] [--serial-meters 20] [--skip-forecast]
                                [--skip-anomalies]

1. **backtests** — ``--series`` synthetic daily series of two years (weekly and yearly cycles, trend,
   noise; seeded), each backtested by :func:`workbench.models.forecast.backtest` (``--folds`` rolling
   origins of ``--horizon`` days, the model and the seasonal-naive baseline) — serially, then with
   :func:`workbench.models.parallel.backtest_many` on a ``--workers`` LocalCluster (processes, one
   thread each).  The metrics must be identical; speed-up = serial / Dask (target ≥ 1.7× on 2 workers).
2. **anomalies** — ``--meters`` synthetic 15-minute meters over one year (35,040 intervals each,
   daily and weekly shapes, a two-day stop each, one spike per 20 meters, one month read 8 % high per
   100 meters; seeded), one unit: the whole detection
   :func:`workbench.models.anomalies.detect_frame` (STL robust z at 15 minutes and on daily totals,
   stuck runs, twins' drift, IsolationForest over the (meter, day) features) with its 15-minute blocks
   on the same cluster (target < 60 s for 2,000 meters).  Baselines in the same run: the previous
   path (statsmodels' ``STL`` per meter, fitted again where an outlier was cleaned — as the detector
   did before the sparse operators), timed on ``--serial-meters`` meters and extrapolated; one bare statsmodels ``STL``
   fit × the number of meters; a bare numpy robust z of the same matrix (medians only, no STL).
Prints seconds and the ratios.  The figures depend on the machine's load: say what it was.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workbench.models import parallel as P


def daily_series(n: int, days: int = 730) -> dict:
    out = {}
    t = np.arange(days)
    idx = pd.date_range("2024-01-01", periods=days, freq="D")
    for k in range(n):
        rng = np.random.default_rng(k)
        level = rng.uniform(50, 500)
        v = level * (1 + 0.15 * np.sin(2 * np.pi * t / 7 + rng.uniform(0, 6)) + 0.1 * np.sin(2 * np.pi * t / 365.25)
                     + 0.0002 * t) + rng.normal(0, 0.03 * level, days)
        out[f"S{k:04d}"] = pd.Series(v, index=idx)
    return out


def meters_block(first: int, n: int, intervals: int = 365 * 96) -> tuple[pd.DataFrame, list]:
    """``n`` synthetic meters (columns ``M{k:05d}``, kWh per 15 min) and what was planted in them:
    (meter, kind, first interval, last interval)."""
    idx = pd.date_range("2025-01-01", periods=intervals, freq="15min")
    t = np.arange(intervals)
    day = 1 + 0.4 * np.sin(2 * np.pi * (t % 96) / 96 - 1.5)
    week = np.where((idx.day_of_week >= 5), 0.7, 1.0)
    cols, planted = {}, []
    for k in range(first, first + n):
        rng = np.random.default_rng(10_000 + k)
        v = rng.uniform(5, 500) * day * week * (1 + rng.normal(0, 0.03, intervals))
        stop = rng.integers(0, intervals - 96 * 3)
        v[stop:stop + 96 * 2] *= 0.05                       # a two-day stop
        name = f"M{k:05d}"
        if k % 20 == 0:
            i = int(rng.integers(96 * 7, intervals - 96 * 7))
            v[i] *= 20                                      # a spike
            planted.append((name, "spike", i, i))
        if k % 100 == 50:
            d0 = int(rng.integers(30, 300)) * 96
            v[d0:d0 + 30 * 96] *= 1.08                      # a month read 8 % high
            planted.append((name, "drift", d0, d0 + 30 * 96 - 1))
        cols[name] = np.round(v, 2)
    return pd.DataFrame(cols, index=idx), planted


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--model", default="linear")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--horizon", type=int, default=28)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--meters", type=int, default=2000)
    ap.add_argument("--serial-meters", type=int, default=20)
    ap.add_argument("--skip-forecast", action="store_true")
    ap.add_argument("--skip-anomalies", action="store_true")
    ap.add_argument("--calibration-models", default="ets,sarimax,prophet",
                    help="more models whose totals' calibration is measured (comma-separated)")
    ap.add_argument("--calibration-series", type=int, default=30)
    ap.add_argument("--calibration-folds", type=int, default=6)
    ap.add_argument("--calibration-png", default="docs/img/forecast-calibration.png")
    a = ap.parse_args(argv)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
          f"(shared with other work: the figures move with it)")
    with P.client(n_workers=a.workers) as client:
        if not a.skip_forecast:
            series = daily_series(a.series)
            kw = {"horizon": a.horizon, "folds": a.folds, "seed": 0}
            P.backtest_many(dict(list(series.items())[:2]), a.model, client=client, **kw)   # warm the workers
            t = time.perf_counter()
            serial = P.backtest_many(series, a.model, **kw)
            ts = time.perf_counter() - t
            t = time.perf_counter()
            dist = P.backtest_many(series, a.model, client=client, chunk=max(1, a.series // (8 * a.workers)), **kw)
            td = time.perf_counter() - t
            same = serial.equals(dist)
            print(f"backtests: {a.series} daily series × 730 days, model {a.model} + seasonal naive, "
                  f"{a.folds} folds of {a.horizon} days")
            print(f"  serial          {ts:8.1f} s  ({ts / a.series * 1000:.0f} ms per series)")
            print(f"  dask {a.workers} workers  {td:8.1f} s  speed-up {ts / td:.2f}× (target ≥ 1.7×)  "
                  f"identical metrics: {same}")
            m = dist[["mape", "smape", "mase", "coverage", "baseline_mase"]].median()
            print(f"  median MAPE {m['mape']:.2f} %  sMAPE {m['smape']:.2f} %  MASE {m['mase']:.3f} "
                  f"(baseline {m['baseline_mase']:.3f})  coverage of 90 % intervals {m['coverage']:.3f}")
            calibration(a, series, dist, client)
        if not a.skip_anomalies:
            anomalies(a, client)
    return 0


def _last_fold_pits(z_rows) -> tuple[list, list]:
    """Out of sample: each series' last fold — as simulated, and with its total's spread scaled by
    the ``spread_scale`` of its earlier folds (as the page does with a series' own backtest); both
    PITs read as Φ(z) and Φ(z / s) (the totals' distribution taken as normal with the paths' robust
    σ), so the two are compared on the same folds and the same approximation."""
    from scipy.stats import norm

    from workbench.models import forecast as F

    raw, cal = [], []
    for zs in z_rows:
        zs = np.asarray(zs, dtype=float)
        if len(zs) >= 2 and np.isfinite(zs[:-1]).any() and np.isfinite(zs[-1]):
            raw.append(float(norm.cdf(zs[-1])))
            cal.append(float(norm.cdf(zs[-1] / F.spread_scale(zs[:-1]))))
    return raw, cal


def calibration(a, series, dist, client) -> None:
    """The calibration curves of the horizon totals' intervals (what P(exceed) rests on): nominal
    level → share of the folds whose actual total it covered, over every series and fold, for the
    benchmark's model, the seasonal naive and ``--calibration-models`` (``--calibration-folds``
    folds on the first ``--calibration-series`` series) — as the models give them, and after the
    page's calibration (``spread_scale`` of a series' earlier folds applied to its last fold: out of
    sample); a plot in ``--calibration-png``."""
    from workbench.models import forecast as F

    raw = {a.model: [u for t in dist["total_pits"] for u in t],
           "seasonal_naive": [u for t in dist["baseline_total_pits"] for u in t]}
    last = {a.model: _last_fold_pits(dist["total_zs"]), "seasonal_naive": _last_fold_pits(dist["baseline_total_zs"])}
    some = dict(list(series.items())[:a.calibration_series])
    for name in [m for m in a.calibration_models.split(",") if m and m not in raw]:
        t = time.perf_counter()
        r = P.backtest_many(some, name, client=client, chunk=2, horizon=a.horizon, folds=a.calibration_folds, seed=0,
                            baseline=False)
        raw[name] = [u for t_ in r["total_pits"] for u in t_]
        last[name] = _last_fold_pits(r["total_zs"])
        print(f"  ({name}: {len(some)} series × {a.calibration_folds} folds in {time.perf_counter() - t:.1f} s)")
    curves = {}
    print(f"  calibration of the {a.horizon}-day totals' central intervals (nominal → covered; n folds):")
    for name, pits_raw in raw.items():
        for tag, pits in (("as simulated", pits_raw), ("last fold", last[name][0]),
                          ("last, scaled", last[name][1])):
            c = F.calibration_curve(pits)
            curves[(name, tag)] = c
            cells = "  ".join(f"{lv:.0%}→{cv:.0%}" for lv, cv in zip(c["level"], c["coverage"], strict=True))
            print(f"    {name:<15} {tag:<13} {cells}   (n = {c['n'].iloc[0]})")
    print("  (as simulated: every fold, PIT of the paths; last fold: each series' last, Φ(z); last, scaled: the same "
          "folds, Φ(z / s) with s = spread_scale of the series' earlier folds, never below 1)")
    if a.calibration_png:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(14, 4.8))
        axes = fig.subplots(1, 3, sharey=True)
        for ax, tag in zip(axes, ("as simulated", "last fold", "last, scaled"), strict=True):
            ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
            for (name, t), c in curves.items():
                if t == tag:
                    ax.plot(c["level"], c["coverage"], marker="o", label=f"{name} (n = {c['n'].iloc[0]})")
            ax.set_xlabel("nominal level of the total's interval")
            ax.set_title(f"{a.horizon}-day totals, {tag}")
        axes[0].set_ylabel("share of actual totals covered")
        axes[2].legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        fig.savefig(a.calibration_png, dpi=110)
        print(f"  calibration curves → {a.calibration_png}")


def anomalies(a, client) -> None:
    """The anomaly part: the whole detection on the cluster against its baselines."""
    from statsmodels.tsa.seasonal import STL

    from workbench.models import anomalies as A

    g = time.perf_counter()
    parts = [meters_block(b0, min(500, a.meters - b0)) for b0 in range(0, a.meters, 500)]
    wide = pd.concat([p[0] for p in parts], axis=1)
    planted = pd.DataFrame([r for p in parts for r in p[1]], columns=["meter_id", "kind", "i0", "i1"])
    units = pd.Series("kWh", index=wide.columns)
    gen = time.perf_counter() - g
    values = wide.to_numpy(float)
    n_m = wide.shape[1]
    # baselines
    first = values[:, :a.serial_meters]
    t = time.perf_counter()
    A.stl_residual_z(first, 96, clean_above=A.DEFAULTS.z_spike, engine="statsmodels")
    t_prev = (time.perf_counter() - t) / a.serial_meters * n_m
    fits = []
    for k in range(3):
        t = time.perf_counter()
        STL(values[:, k], period=96, seasonal_jump=1, trend_jump=48, low_pass_jump=19).fit()
        fits.append(time.perf_counter() - t)
    t_stl = min(fits) * n_m
    b = A.DEFAULTS.block
    t = time.perf_counter()
    for o in range(0, n_m, b):                  # by the detector's blocks (median down contiguous columns)
        A.robust_z(np.ascontiguousarray(values[:, o:o + b]), axis=0)
    t_numpy = time.perf_counter() - t
    # the detection on the cluster, then in this process alone
    t = time.perf_counter()
    det = A.detect_frame(wide, units, client=client)
    td = time.perf_counter() - t
    t = time.perf_counter()
    serial = A.detect_frame(wide, units)
    ts = time.perf_counter() - t
    idx = wide.index
    found = {}
    for kind in ("spike", "drift"):
        lab = planted[planted["kind"] == kind]
        dk = det[det["kind"] == kind]
        hit = [((dk["meter_id"] == r.meter_id) & (dk["ts_start"] <= idx[r.i1] + pd.Timedelta("1D"))
                & (dk["ts_end"] >= idx[r.i0] - pd.Timedelta("1D"))).any() for r in lab.itertuples()]
        true = [((lab["meter_id"] == r.meter_id) & (idx[lab["i0"]] <= r.ts_end + pd.Timedelta("1D"))
                 & (idx[lab["i1"]] >= r.ts_start - pd.Timedelta("1D"))).any() for r in dk.itertuples()]
        found[kind] = (sum(hit), len(lab), sum(true), len(dk))
    print(f"anomalies: {n_m} meters × {len(idx):,} intervals (one year at 15 min), one unit "
          f"(data generation {gen:.1f} s, not counted)")
    print(f"  previous path (statsmodels STL per meter; {a.serial_meters} meters extrapolated) "
          f"{t_prev:8.1f} s  (15-minute STL alone)")
    print(f"  bare statsmodels STL, one fit × {n_m} meters  {t_stl:8.1f} s")
    print(f"  bare numpy robust z of the matrix (no STL)   {t_numpy:8.1f} s")
    print(f"  whole detection, serial                      {ts:8.1f} s")
    print(f"  whole detection, dask {a.workers} workers    {td:8.1f} s  (target < 60 s)  "
          f"{t_prev / td:.1f}× faster than the previous path's STL, {t_stl / td:.1f}× than one bare STL per meter; "
          f"{td / t_numpy:.1f}× the bare robust z; {ts / td:.2f}× the serial run, identical detections: "
          f"{det.equals(serial)}")
    other = det[~det["kind"].isin(["spike", "drift"])]
    print("  planted found / planted, true / detections: "
          + ", ".join(f"{k} {v[0]}/{v[1]}, {v[2]}/{v[3]}" for k, v in found.items())
          + f"; other detections {other['kind'].value_counts().to_dict()}")


if __name__ == "__main__":
    raise SystemExit(main())
