"""Benchmark: grading 10,000 enterprises × 12 months under the Zhejiang 碳效码 (issue 14, point 9).

    python benchmarks/grading.py [--enterprises 10000] [--region DIR] [--repeat 3]

1. The region: ``workbench.demo.region.generate_region`` writes N enterprises × 12 months (kept in
   ``--region`` for later runs; default a temporary folder).
2. **accounting** — ``workbench.grading.region.load_region``: read and check the files, every energy
   record through ``normalize_activity`` and ``account`` (factor ids and provenance per record), monthly
   CO2 beside the value added.  Timed once (it is the inventory's work, done once per data change).
3. **package** — ``grade_emissions(em, <the 12 months>)``: per enterprise and month the period's sums, the
   data-quality status, L, level, the industry benchmark (aggregate ratio per month × GB/T 4754
   division × province), K, grade and flags for all N × 12 rows in one vectorised call.  Target ≤ 5 s.
   Also the 4 quarters and the year.
4. **baselines** — the same arithmetic from the same monthly CO2 and value added, bare: (a) pandas
   (groupby sums, ratio, ``pd.cut``), (b) DuckDB SQL (window sums, CASE).  No statuses, flags or names.
   The grades must agree with the package's row for row.
Prints seconds, rows/s and package/baseline ratios.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workbench.grading.engine import grade_emissions
from workbench.grading.region import load_region


def region(path: Path, n: int) -> Path:
    from workbench.demo.region import generate_region

    if not (path / "energy.csv").exists() or len(pd.read_csv(path / "enterprises.csv", usecols=[0])) != n:
        t = time.perf_counter()
        generate_region(path, enterprises=n)
        print(f"region generated: {n:,} enterprises in {time.perf_counter() - t:.1f} s → {path}")
    return path


def baseline_inputs(em) -> pd.DataFrame:
    """The bare inputs a baseline starts from: monthly CO2 and value added with industry and scope."""
    ent = em.data.enterprises[["enterprise_id", "industry_code", "region"]]
    m = em.monthly[["enterprise_id", "period", "co2_t", "value_added_10k_cny"]].merge(ent, on="enterprise_id")
    m["industry"] = m["industry_code"].str.slice(0, 3)
    return m[["enterprise_id", "period", "industry", "region", "co2_t", "value_added_10k_cny"]]


def pandas_baseline(m: pd.DataFrame) -> pd.DataFrame:
    ok = m["value_added_10k_cny"] > 0
    d = m[ok].copy()
    g = d.groupby(["period", "industry", "region"])
    d["l"] = d["co2_t"] / d["value_added_10k_cny"]
    d["benchmark_l"] = g["co2_t"].transform("sum") / g["value_added_10k_cny"].transform("sum")
    d["k"] = d["l"] / d["benchmark_l"]
    d["grade"] = pd.cut(d["k"], [-np.inf, 0.6, 0.8, 1.2, 2.0, np.inf], labels=[1, 2, 3, 4, 5], right=True).astype(int)
    return d[["enterprise_id", "period", "l", "k", "grade"]]


SQL = """
WITH d AS (SELECT * FROM m WHERE value_added_10k_cny > 0),
b AS (SELECT *, co2_t / value_added_10k_cny AS l,
             sum(co2_t) OVER w / sum(value_added_10k_cny) OVER w AS benchmark_l
      FROM d WINDOW w AS (PARTITION BY period, industry, region))
SELECT enterprise_id, period, l, l / benchmark_l AS k,
       CASE WHEN l / benchmark_l <= 0.6 THEN 1 WHEN l / benchmark_l <= 0.8 THEN 2
            WHEN l / benchmark_l <= 1.2 THEN 3 WHEN l / benchmark_l <= 2.0 THEN 4 ELSE 5 END AS grade
FROM b
"""


def duckdb_baseline(m: pd.DataFrame) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    con.register("m", m)
    out = con.execute(SQL).df()
    con.close()
    return out


def timed(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=10_000)
    ap.add_argument("--region", type=Path, default=None, help="region folder (generated there if absent)")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    tmp = None
    if a.region is None:
        tmp = tempfile.TemporaryDirectory(prefix="grading-bench-")
        a.region = Path(tmp.name)
    region(a.region, a.enterprises)

    t = time.perf_counter()
    em = load_region(a.region)
    t_acc = time.perf_counter() - t
    n_rec = len(em.ledger)
    print(f"accounting (read + check + normalize_activity + account): {t_acc:.2f} s for {n_rec:,} energy records "
          f"({n_rec / t_acc:,.0f} records/s), {len(em.monthly):,} enterprise-months")

    months = sorted(em.monthly["period"].unique())
    best, med, rg = timed(lambda: grade_emissions(em, months), a.repeat)
    rows = len(rg.grades)
    print(f"package  grade_emissions, {len(months)} months: {best:.3f} s (median {med:.3f}) for {rows:,} grades "
          f"({rows / best:,.0f}/s) — target ≤ 5 s: {'met' if best <= 5 else 'NOT met'}")
    quarters = sorted({f"{p[:4]}-Q{(int(p[5:]) - 1) // 3 + 1}" for p in months})
    bq, _, rq = timed(lambda: grade_emissions(em, quarters), a.repeat)
    by, _, ry = timed(lambda: grade_emissions(em, months[0][:4]), a.repeat)
    print(f"package  {len(quarters)} quarters: {bq:.3f} s ({len(rq.grades):,} grades); the year: {by:.3f} s "
          f"({len(ry.grades):,} grades)")

    m = baseline_inputs(em)
    bp, _, outp = timed(lambda: pandas_baseline(m), a.repeat)
    bd, _, outd = timed(lambda: duckdb_baseline(m), a.repeat)
    print(f"baseline pandas: {bp:.3f} s  ratio package/pandas {best / bp:.2f}×")
    print(f"baseline DuckDB: {bd:.3f} s  ratio package/DuckDB {best / bd:.2f}×")
    print(f"end to end (accounting + 12 months graded): {t_acc + best:.2f} s")

    # the same grades, row for row
    pkg = rg.grades[rg.grades["status"] == "ok"][["enterprise_id", "period", "l", "k", "grade"]]
    for name, base in (("pandas", outp), ("DuckDB", outd)):
        j = pkg.merge(base, on=["enterprise_id", "period"], suffixes=("", "_b"), how="outer", indicator=True)
        missing = int((j["_merge"] != "both").sum())
        both = j[j["_merge"] == "both"]
        differ = int((both["grade"].astype(int) != both["grade_b"].astype(int)).sum())
        dk = float(np.nanmax(np.abs(both["k"] / both["k_b"] - 1))) if len(both) else 0.0
        print(f"check against {name}: {len(both):,} grades compared, {differ} differ, {missing} rows in one only, "
              f"largest relative difference of K {dk:.1e}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
