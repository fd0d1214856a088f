"""Benchmark: readings/s from CSV and from Parquet into the lake's curated zone, all checks on.

    python benchmarks/ingest_files.py [--readings 10000000] [--meters 500] [--data DIR]

1. Writes a deterministic meter export of N readings (``meter_id, ts, quantity, value, unit``; 15-min
   interval meters of the demo plant's registry, with a few planted duplicates) as CSV and as Parquet.
2. **package** — ``connectors.files`` reads the file, ``workbench.ingestion.ingest`` stores the raw bytes (sha256),
   prepares (types, units with pint, time zone, duplicates, registers → consumption, flags, pandera
   schema) and writes the curated hot tier; once from the CSV, once from the Parquet file (each into a
   fresh lake).
3. **baseline** — DuckDB ``COPY (SELECT * FROM read_csv(…)) TO '….parquet'`` of the same CSV: a bare
   parse-and-write with no checks.
Prints readings/s for each and the CSV/baseline ratio.  Targets (issue): ≥ 1,000,000 readings/s for
CSV on this 2-core machine and within 3× of the bare DuckDB copy.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.ingestion import ingest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def make_export(out: Path, n: int, meters: int, seed: int = 7) -> tuple[Path, Path, pd.DataFrame]:
    """A meter export of ``n`` readings (interval kWh) and its meter registry."""
    out.mkdir(parents=True, exist_ok=True)
    csv, pq = out / f"export_{n}.csv", out / f"export_{n}.parquet"
    reg = pd.DataFrame({
        "meter_id": [f"B{m:05d}" for m in range(meters)],
        "serial": [f"S{m:08d}" for m in range(meters)],
        "node_id": [f"F01.P{m % 20:02d}" for m in range(meters)],
        "source": "purchased_electricity", "item": "grid", "unit": "kWh", "register": "interval",
        "rollover": np.nan, "installed": "2020-01-01", "removed": "", "replaces": "", "is_main": False,
    })
    if csv.exists() and pq.exists():
        return csv, pq, reg
    rng = np.random.default_rng(seed)
    per = -(-n // meters)
    ts = pd.date_range("2025-03-01", periods=per, freq="15min").to_numpy()
    meter_idx = np.repeat(np.arange(meters), per)[:n]
    t = np.tile(ts, meters)[:n]
    value = np.round(rng.gamma(4.0, 12.0, n), 3)
    df = pd.DataFrame({"meter_id": reg["meter_id"].to_numpy()[meter_idx], "ts": t,
                       "quantity": "active_energy", "value": value, "unit": "kWh"})
    dup = df.sample(n=min(1000, n // 100), random_state=seed)  # exact duplicates, as exports contain
    df = pd.concat([df, dup], ignore_index=True)
    df.to_csv(csv, index=False, date_format="%Y-%m-%d %H:%M:%S")
    df.to_parquet(pq, index=False)
    return csv, pq, reg


def run_package(path: Path, reg: pd.DataFrame, lake_dir: Path) -> tuple[float, dict]:
    from connectors import files
    from workbench.lake.store import Lake

    if lake_dir.exists():
        shutil.rmtree(lake_dir)
    lake = Lake(lake_dir)
    lake.register_meters(reg)
    t0 = time.perf_counter()
    result = files.read_file(path, kind="readings", source="meter-export")
    t1 = time.perf_counter()
    rep = ingest(lake, result, sender="benchmark")
    t2 = time.perf_counter()
    return t2 - t0, {"read": t1 - t0, "ingest": t2 - t1, "curated": rep.rows_curated,
                     "duplicates": rep.rows_duplicate, "quarantined": rep.rows_quarantined, "counts": rep.counts}


def run_baseline(csv: Path, out: Path) -> float:
    import duckdb

    con = duckdb.connect()
    t0 = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_csv('{csv}', header = true)) TO '{out}' (FORMAT PARQUET, COMPRESSION ZSTD)")
    dt = time.perf_counter() - t0
    con.close()
    return dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=10_000_000)
    ap.add_argument("--meters", type=int, default=500)
    ap.add_argument("--data", type=Path, default=ROOT / "benchmarks" / ".data" / "ingest")
    args = ap.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    con = Console()
    with con.status("writing the export (CSV and Parquet)…"):
        csv, pq, reg = make_export(args.data, args.readings, args.meters)
    n = len(pd.read_parquet(pq, columns=["value"]))
    con.print(f"export: {n:,} readings ({csv.stat().st_size / 1e6:.0f} MB CSV, {pq.stat().st_size / 1e6:.0f} MB Parquet)")
    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    try:
        with con.status("baseline: DuckDB read_csv → Parquet…"):
            t_base = run_baseline(csv, work / "baseline.parquet")
        with con.status("package: CSV → lake (all checks)…"):
            t_csv, d_csv = run_package(csv, reg, work / "lake-csv")
        with con.status("package: Parquet → lake (all checks)…"):
            t_pq, d_pq = run_package(pq, reg, work / "lake-parquet")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    t = Table(title=f"Ingest {n:,} readings into the curated zone")
    for c in ("path", "seconds", "readings/s", "read", "ingest", "curated", "duplicates", "quarantined"):
        t.add_column(c, justify="right")
    t.add_row("DuckDB read_csv → Parquet (baseline)", f"{t_base:.2f}", f"{n / t_base:,.0f}", "", "", "", "", "")
    for name, tt, d in (("CSV → lake", t_csv, d_csv), ("Parquet → lake", t_pq, d_pq)):
        t.add_row(name, f"{tt:.2f}", f"{n / tt:,.0f}", f"{d['read']:.2f}", f"{d['ingest']:.2f}",
                  f"{d['curated']:,}", f"{d['duplicates']:,}", f"{d['quarantined']:,}")
    con.print(t)
    ratio = t_csv / t_base
    rate = n / t_csv
    con.print(f"CSV: {rate:,.0f} readings/s (target ≥ 1,000,000: {'met' if rate >= 1e6 else 'NOT met'}); "
              f"CSV / baseline = {ratio:.2f}× (target ≤ 3×: {'met' if ratio <= 3 else 'NOT met'})")
    con.print(f"preparation counts (CSV): {d_csv['counts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
