"""Benchmark: forecasting backtests on Dask and anomaly detection at scale (issue 15, point 10).

    python benchmarks/models.py [--series 200] [--model linear] [--folds 3] [--horizon 28] [--workers 2]
                                [--meters 2000] [--serial-meters 100] [--block 500] [--skip-forecast]
                                [--skip-anomalies]

1. **backtests** — ``--series`` synthetic daily series of two years (weekly and yearly cycles, trend,
   noise; seeded), each backtested by :func:`workbench.models.forecast.backtest` (``--folds`` rolling
   origins of ``--horizon`` days, the model and the seasonal-naive baseline) — serially, then with
   :func:`workbench.models.parallel.backtest_many` on a ``--workers`` LocalCluster (processes, one
   thread each).  The metrics must be identical; speed-up = serial / Dask (target ≥ 1.7× on 2 workers).
2. **anomalies** — ``--meters`` synthetic 15-minute meters over one year (35,040 intervals each,
   daily and weekly shapes, stops, one spike per 20 meters), by blocks of ``--block`` meters through
   :func:`workbench.models.parallel.detect_many` on the same cluster (target < 60 s for 2,000 meters).
   Baseline: the serial rate on the first ``--serial-meters`` meters, extrapolated to all.
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


def meters_block(first: int, n: int, intervals: int = 365 * 96) -> pd.DataFrame:
    idx = pd.date_range("2025-01-01", periods=intervals, freq="15min")
    t = np.arange(intervals)
    day = 1 + 0.4 * np.sin(2 * np.pi * (t % 96) / 96 - 1.5)
    week = np.where((idx.day_of_week >= 5), 0.7, 1.0)
    cols = {}
    for k in range(first, first + n):
        rng = np.random.default_rng(10_000 + k)
        v = rng.uniform(5, 500) * day * week * (1 + rng.normal(0, 0.03, intervals))
        stop = rng.integers(0, intervals - 96 * 3)
        v[stop:stop + 96 * 2] *= 0.05                       # a two-day stop
        if k % 20 == 0:
            v[rng.integers(96 * 7, intervals - 96 * 7)] *= 20  # a spike
        cols[f"M{k:05d}"] = np.round(v, 2)
    return pd.DataFrame(cols, index=idx)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--model", default="linear")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--horizon", type=int, default=28)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--meters", type=int, default=2000)
    ap.add_argument("--serial-meters", type=int, default=100)
    ap.add_argument("--block", type=int, default=500)
    ap.add_argument("--skip-forecast", action="store_true")
    ap.add_argument("--skip-anomalies", action="store_true")
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
        if not a.skip_anomalies:
            first = meters_block(0, a.serial_meters)
            t = time.perf_counter()
            P.detect_many(first)
            t_serial = (time.perf_counter() - t) / a.serial_meters * a.meters
            t = time.perf_counter()
            found = 0
            gen = 0.0
            for b0 in range(0, a.meters, a.block):
                g = time.perf_counter()
                block = meters_block(b0, min(a.block, a.meters - b0))
                gen += time.perf_counter() - g
                det, _ = P.detect_many(block, client=client, chunk=25)
                found += int((det["kind"] == "spike").sum())
            td = time.perf_counter() - t - gen
            planted = len(range(0, a.meters, 20))
            print(f"anomalies: {a.meters} meters × 35,040 intervals (one year at 15 min), blocks of {a.block}")
            print(f"  serial (extrapolated from {a.serial_meters} meters) {t_serial:8.1f} s")
            print(f"  dask {a.workers} workers  {td:8.1f} s  (target < 60 s; data generation {gen:.1f} s not counted)  "
                  f"speed-up {t_serial / td:.2f}×  spikes found {found} of {planted} planted")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
