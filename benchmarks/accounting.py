"""Benchmark: meter readings → monthly tCO2e by facility and source, package vs one DuckDB query.

    python benchmarks/accounting.py [--meters 2000] [--years 1] [--seed S] [--data DIR] [--threads N]

1. The demo enterprise (``workbench.demo.generate``) is generated into ``--data`` (default
   ``benchmarks/.data/accounting-{meters}m-{years}y``), or reused when it is there and complete.
   ``--meters 2000 --years 1`` is ≈ 70 M 15-minute readings.
2. **package** — ``workbench.readings.meter_consumption`` → ``activity_from_meters`` →
   ``workbench.accounting.account`` (with the boundary and the enterprise's region) → the ledger
   grouped to monthly tCO2e by (period, facility, source).
3. **duckdb** — :data:`BASELINE_SQL`, one hand-written query over the same ``readings.parquet``,
   ``meters.csv`` and ``boundary.csv``, written independently of ``workbench.readings`` and
   ``workbench.registers`` but to the same documented rules: rows repeated for one (meter, ts)
   are one reading when they agree with the first to 1e-9 relative, and are all left out when
   they conflict (the lake's policy — nothing averaged); a register drop is a rollover when the
   capacity is > 0 and the previous reading ≥ 90 % of it, else a reset.  Only the
   factor *values* come from the package (``FactorLibrary.lookup``, as a small VALUES table, in the
   units the library publishes them in); every unit conversion is done in the SQL.
4. Both results must agree to 1e-9 relative in every (period, facility, source) cell.

Each side runs in its own child process (this script re-invoked with ``--side``), so that its peak
memory (``ru_maxrss``) is its own.  Timings cover reading the inputs to the monthly table; the
interpreter start, the imports and the loading of the factor library (done once per process) are
not timed; they are printed as "warm-up".  Target (issue): package ≤ 1.5 × the DuckDB query.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_RATIO = 1.5
RTOL = 1e-9
ACCOUNTED = ("combustion", "process", "purchased_electricity", "purchased_heat",
             "exported_electricity", "exported_heat")

# --------------------------------------------------------------------------- the baseline query
#: One query from the raw files to monthly tCO2e.  Placeholders: {readings} {meters} {boundary}
#: (file paths) and {factors} (VALUES rows ``(item, year, kind, value, unit)``).
BASELINE_SQL = r"""
WITH RECURSIVE
meter AS (
    SELECT meter_id, node_id, source, item, unit,
           register = 'cumulative' AS cumulative,
           TRY_CAST(rollover AS DOUBLE) AS capacity,          -- empty for interval meters
           lower(is_main) = 'true' AS is_main,
           row_number() OVER (ORDER BY meter_id)::INTEGER AS mk  -- integer key: cheaper to sort on
    FROM read_csv('{meters}', all_varchar = true)
),
node AS (SELECT node_id, parent_id, level FROM read_csv('{boundary}', all_varchar = true)),
-- node → facility: climb the tree until a facility is reached (the enterprise stays itself)
climb(node_id, at_id, at_level, up_id) AS (
    SELECT node_id, node_id, level, parent_id FROM node WHERE level <> 'meter'
    UNION ALL
    SELECT c.node_id, n.node_id, n.level, n.parent_id
    FROM climb c JOIN node n ON n.node_id = c.up_id
    WHERE c.at_level <> 'facility'
),
facility_of AS (
    SELECT node_id, coalesce(max(at_id) FILTER (WHERE at_level = 'facility'), node_id) AS facility
    FROM climb GROUP BY node_id
),
enterprise AS (SELECT node_id FROM node WHERE coalesce(parent_id, '') = ''),
-- every usable reading (a finite value ≥ 0) in time order per meter; a row whose ts equals its
-- neighbour's is one of several rows for one (meter, ts)
seq AS (
    SELECT m.mk, m.cumulative, r.ts, r.value, r.file_row_number AS rn,
           coalesce(r.ts = lag(r.ts) OVER by_time OR r.ts = lead(r.ts) OVER by_time, false) AS repeated
    FROM read_parquet('{readings}', file_row_number = true) r JOIN meter m USING (meter_id)
    WHERE r.ts IS NOT NULL AND isfinite(r.value) AND r.value >= 0
    WINDOW by_time AS (PARTITION BY m.mk ORDER BY r.ts)
),
-- one aggregation, three jobs: the rows of one repeated (meter, ts) → one reading, the first row's
-- value, unless a row disagrees with it by more than 1e-12 + 1e-9 × |first| (a conflicting
-- duplicate: none of them is used — the interval is missing, a register difference spans it);
-- each register reading of a cumulative meter → its own group (differenced below); the other
-- interval values → summed straight into the month of their interval start
grp AS (
    SELECT mk, cumulative, date_trunc('month', ts) AS month,
           CASE WHEN cumulative OR repeated THEN ts END AS at_ts,
           sum(value) AS total, arg_min(value, rn) AS first_value,
           min(value) AS low, max(value) AS high
    FROM seq GROUP BY ALL
),
reading AS (
    SELECT *, (high - first_value > 1e-12 + 1e-9 * abs(first_value)
               OR first_value - low > 1e-12 + 1e-9 * abs(first_value)) AS conflicting
    FROM grp
),
interval_use AS (
    SELECT mk, month,
           sum(CASE WHEN at_ts IS NULL THEN total WHEN NOT conflicting THEN first_value ELSE 0 END) AS used
    FROM reading WHERE NOT cumulative GROUP BY ALL
),
register AS (
    SELECT g.mk, g.at_ts AS ts, g.first_value AS reading, m.capacity,
           lag(g.first_value) OVER by_time AS prev_reading, lag(g.at_ts) OVER by_time AS prev_ts
    FROM reading g JOIN meter m USING (mk)
    WHERE g.cumulative AND NOT g.conflicting
    WINDOW by_time AS (PARTITION BY g.mk ORDER BY g.at_ts)
),
register_use AS (
    -- consumption between two readings belongs to the month of the earlier one
    SELECT mk, date_trunc('month', prev_ts) AS month,
           sum(CASE WHEN reading >= prev_reading THEN reading - prev_reading      -- register advanced
                    WHEN capacity > 0 AND prev_reading >= 0.9 * capacity
                         THEN reading + capacity - prev_reading                   -- wrapped past capacity
                    ELSE reading                                                  -- reset: counts from 0
               END) AS used
    FROM register WHERE prev_ts IS NOT NULL GROUP BY ALL
),
used AS (SELECT * FROM interval_use UNION ALL SELECT * FROM register_use),
-- into the unit the factor is given per
qty AS (
    SELECT u.month, m.source, m.item, m.node_id, m.is_main,
           u.used * CASE m.unit
                      WHEN 'kWh' THEN 1e-3   -- kWh → MWh     (grid factor in tCO2/MWh)
                      WHEN 'Nm3' THEN 1e-4   -- Nm3 → 10^4 Nm3 (gas NCV in GJ/(10^4 Nm3))
                      WHEN 't'   THEN 1.0    -- t              (coal NCV in GJ/t)
                      WHEN 'GJ'  THEN 1.0    -- GJ             (heat factor in tCO2/GJ)
                      ELSE error('benchmark SQL has no conversion for meter unit ' || m.unit)
                    END AS q
    FROM used u JOIN meter m USING (mk)
    WHERE m.source IN ('combustion', 'process', 'purchased_electricity', 'purchased_heat',
                       'exported_electricity', 'exported_heat')
),
sub AS (SELECT month, source, item, node_id, sum(q) AS q FROM qty WHERE NOT is_main GROUP BY ALL),
balance AS (
    SELECT mn.month, mn.source, mn.item, mn.q AS main_q, coalesce(s.q, 0) AS sub_q
    FROM (SELECT month, source, item, sum(q) AS q FROM qty WHERE is_main GROUP BY ALL) mn
    LEFT JOIN (SELECT month, source, item, sum(q) AS q FROM sub GROUP BY ALL) s USING (month, source, item)
),
activity AS (
    -- sub-meters on their node; scaled down to the main meter when together they read more
    SELECT s.month, s.source, s.item, s.node_id,
           s.q * CASE WHEN b.sub_q > b.main_q THEN b.main_q / b.sub_q ELSE 1 END AS q
    FROM sub s LEFT JOIN balance b USING (month, source, item)
    UNION ALL
    -- main meter − Σ sub-meters (losses, unmetered use) on the enterprise node
    SELECT b.month, b.source, b.item, e.node_id, b.main_q - b.sub_q
    FROM balance b CROSS JOIN enterprise e
    WHERE b.main_q >= b.sub_q
),
factor(item, year, kind, value, unit) AS (VALUES {factors}),
factor_si AS (
    SELECT item, year, kind,
           value * CASE
             WHEN kind = 'carbon_content' AND unit = 'tC/TJ' THEN 1e-3    -- tC/TJ → tC/GJ
             WHEN kind = 'oxidation_rate' AND unit = 'percent' THEN 1e-2  -- % → fraction
             WHEN kind = 'ncv' AND unit IN ('GJ/t', 'GJ/(10^4 Nm3)') THEN 1.0
             WHEN kind = 'emission_factor' AND unit IN ('tCO2/MWh', 'tCO2/GJ', 'tCO2/t') THEN 1.0
             ELSE error('benchmark SQL has no conversion for ' || kind || ' in ' || unit)
           END AS v
    FROM factor
),
f AS (
    SELECT item, year,
           any_value(v) FILTER (WHERE kind = 'ncv') AS ncv,
           any_value(v) FILTER (WHERE kind = 'carbon_content') AS cc,
           any_value(v) FILTER (WHERE kind = 'oxidation_rate') AS ox,
           any_value(v) FILTER (WHERE kind = 'emission_factor') AS ef
    FROM factor_si GROUP BY ALL
)
SELECT strftime(a.month, '%Y-%m') AS period, fo.facility, a.source,
       sum(CASE WHEN a.source = 'combustion'
                THEN a.q * f.ncv * f.cc * f.ox * (44.0 / 12.0)   -- FC × NCV × CC × OF × 44/12
                ELSE a.q * f.ef END                              -- AD × EF
           * CASE WHEN a.source LIKE 'exported_%' THEN -1 ELSE 1 END) AS tco2e
FROM activity a
JOIN facility_of fo USING (node_id)
JOIN f ON f.item = a.item AND f.year = year(a.month)
GROUP BY ALL
ORDER BY ALL
"""


# --------------------------------------------------------------------------- the two sides
def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def warm_up(side: str) -> None:
    """Imports (pandas, pint, DuckDB) and the factor library, loaded once per process: not timed."""
    import duckdb  # noqa: F401
    import pandas  # noqa: F401

    from workbench.factors import default_library

    default_library()
    if side == "package":
        import workbench.accounting
        import workbench.activity
        import workbench.boundary
        import workbench.readings  # noqa: F401


def run_package(data: Path, threads: int | None):
    """The workbench path; returns (monthly table, {step: seconds})."""
    from workbench.accounting import account
    from workbench.boundary import Boundary
    from workbench.readings import activity_from_meters, meter_consumption, read_meters

    steps = {}
    t = time.perf_counter()
    ent = json.loads((data / "enterprise.json").read_text(encoding="utf-8"))
    meters = read_meters(data / "meters.csv")
    boundary = Boundary.read_csv(data / "boundary.csv")
    cons = meter_consumption(data / "readings.parquet", meters, threads=threads)
    steps["meter_consumption"] = time.perf_counter() - t
    t = time.perf_counter()
    activity = activity_from_meters(cons, enterprise=boundary.enterprise)
    steps["activity_from_meters"] = time.perf_counter() - t
    t = time.perf_counter()
    ledger = account(activity, boundary=boundary, region=ent["region"])
    steps["account"] = time.perf_counter() - t
    t = time.perf_counter()
    monthly = (ledger.groupby(["period", "facility", "source"], as_index=False)["tco2e"].sum()
               .sort_values(["period", "facility", "source"]).reset_index(drop=True))
    steps["group"] = time.perf_counter() - t
    return monthly, steps


def factor_values(data: Path) -> str:
    """VALUES rows of the default factors the package would use, per item and data year."""
    import pandas as pd

    from workbench.factors import default_library

    lib = default_library()
    ent = json.loads((data / "enterprise.json").read_text(encoding="utf-8"))
    meters = pd.read_csv(data / "meters.csv", dtype=str, keep_default_na=False)
    years = range(int(ent["period_start"][:4]), int(ent["period_end"][:4]) + 1)
    used = meters[meters["source"].isin(ACCOUNTED)][["source", "item"]].drop_duplicates()
    rows = []
    for source, item in used.itertuples(index=False):
        kinds = ("ncv", "carbon_content", "oxidation_rate") if source == "combustion" else ("emission_factor",)
        for year in years:
            for kind in kinds:
                f = lib.lookup(item, kind, year=year, region=ent["region"])
                rows.append(f"('{item}', {year}, '{kind}', {f.value!r}, '{f.unit}')")
    return ",\n    ".join(dict.fromkeys(rows))


def run_duckdb(data: Path, threads: int | None):
    import duckdb

    factors = factor_values(data)  # a look-up table, not part of the timed query
    sql = BASELINE_SQL.format(readings=data / "readings.parquet", meters=data / "meters.csv",
                              boundary=data / "boundary.csv", factors=factors)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    t = time.perf_counter()
    monthly = con.execute(sql).df()
    steps = {"query": time.perf_counter() - t}
    con.close()
    return monthly, steps


def child(side: str, data: Path, threads: int | None, repeat: int, result: Path) -> None:
    """One side, in this (child) process: the monthly table to Parquet, figures to JSON."""
    fn = run_package if side == "package" else run_duckdb
    t = time.perf_counter()
    warm_up(side)
    warm = time.perf_counter() - t
    best, best_steps, monthly, runs = float("inf"), {}, None, []
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        monthly, steps = fn(data, threads)
        dt = time.perf_counter() - t
        runs.append(dt)
        if dt < best:
            best, best_steps = dt, steps
    monthly.to_parquet(result.with_suffix(".parquet"), index=False)
    result.write_text(json.dumps({"side": side, "seconds": best, "steps": best_steps, "warm_up": warm, "runs": runs,
                                  "maxrss_mib": _maxrss_mib(), "rows": len(monthly)}))


# --------------------------------------------------------------------------- driver
def ensure_data(data: Path, meters: int, years: int, seed: int, console) -> int:
    """Generate the demo enterprise unless a complete one with these parameters is there."""
    import pyarrow.parquet as pq

    from workbench.demo import generate

    def complete() -> bool:
        try:
            ent = json.loads((data / "enterprise.json").read_text(encoding="utf-8"))
            g = ent["generator"]
            ok = (g.get("meters_requested") == meters and g.get("years") == years and g.get("seed") == seed
                  and (data / "README.md").exists() and (data / "boundary.csv").exists()
                  and (data / "meters.csv").exists())
            return ok and pq.ParquetFile(data / "readings.parquet").metadata.num_rows > 0
        except (OSError, KeyError, ValueError):
            return False

    if complete():
        console.print(f"demo data: reusing [bold]{data}[/]")
    else:
        console.print(f"demo data: generating {meters} meters × {years} year(s), seed {seed} → [bold]{data}[/]")
        for f in ("enterprise.json", "README.md"):  # mark incomplete while writing
            (data / f).unlink(missing_ok=True)
        info = generate(data, meters=meters, years=years, seed=seed, progress=True, plants=("cement",))
        console.print(f"demo data: generated in {info['seconds']:.1f} s")
    return pq.ParquetFile(data / "readings.parquet").metadata.num_rows


def run_side(side: str, args, workdir: Path) -> tuple[dict, object]:
    import pandas as pd

    result = workdir / f"{side}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--data", str(args.data),
           "--repeat", str(args.repeat), "--result", str(result)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{side} side failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    info = json.loads(result.read_text())
    return info, pd.read_parquet(result.with_suffix(".parquet"))


def compare(pkg, ddb):
    """Outer join on (period, facility, source); max relative difference (missing cell → inf)."""
    import numpy as np

    keys = ["period", "facility", "source"]
    m = pkg.merge(ddb, on=keys, how="outer", suffixes=("_package", "_duckdb"), indicator=True)
    a, b = m["tco2e_package"].to_numpy(float), m["tco2e_duckdb"].to_numpy(float)
    scale = np.maximum(np.abs(a), np.abs(b))
    rel = np.where(scale > 0, np.abs(a - b) / np.where(scale > 0, scale, 1.0), 0.0)
    rel = np.where(np.isnan(rel), np.inf, rel)
    m["rel"] = rel
    return m, float(rel.max()) if len(rel) else 0.0


def main(argv=None) -> int:
    from workbench.demo import DEFAULT_SEED

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meters", type=int, default=2000, help="number of meters (default 2000 ≈ 70 M readings/year)")
    ap.add_argument("--years", type=int, default=1, help="years of 15-min readings (default 1)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"demo seed (default {DEFAULT_SEED})")
    ap.add_argument("--data", type=Path, default=None,
                    help="cache folder (default benchmarks/.data/accounting-{meters}m-{years}y)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads for both sides (default: all cores)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the fastest is reported (default 1)")
    ap.add_argument("--side", choices=("package", "duckdb"), help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.data is None:
        args.data = ROOT / "benchmarks" / ".data" / f"accounting-{args.meters}m-{args.years}y"
    args.data = args.data.resolve()

    if args.side:  # child process
        child(args.side, args.data, args.threads, args.repeat, args.result)
        return 0

    from rich.console import Console
    from rich.panel import Panel
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = Console()
    args.data.mkdir(parents=True, exist_ok=True)
    n_readings = ensure_data(args.data, args.meters, args.years, args.seed, console)
    console.print(f"readings: [bold]{n_readings:,}[/] ({args.meters} meters × {args.years} year(s) at 15 min)")

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-accounting-") as tmp, \
            Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                     console=console) as progress:
        for side, label in (("package", "package: readings → activity → ledger → monthly"),
                            ("duckdb", "duckdb: one hand-written SQL query")):
            task = progress.add_task(label, total=1)
            results[side] = run_side(side, args, Path(tmp))
            progress.update(task, completed=1,
                            description=f"{label} — {results[side][0]['seconds']:.2f} s")
        task = progress.add_task("compare (period, facility, source) cells", total=1)
        merged, max_rel = compare(results["package"][1], results["duckdb"][1])
        progress.update(task, completed=1)

    pkg, ddb = results["package"][0], results["duckdb"][0]
    ratio = pkg["seconds"] / ddb["seconds"]
    bad = merged[merged["rel"] > RTOL]
    agree = bad.empty and (merged["_merge"] == "both").all()

    t = Table(title=f"Monthly tCO2e by facility and source — {n_readings:,} readings, {args.meters} meters, "
                    f"{args.years} year(s)", show_lines=False)
    t.add_column("")
    t.add_column("package", justify="right")
    t.add_column("duckdb", justify="right")
    t.add_row("wall time (s)", f"{pkg['seconds']:.2f}", f"{ddb['seconds']:.2f}")
    t.add_row("readings / s", f"{n_readings / pkg['seconds']:,.0f}", f"{n_readings / ddb['seconds']:,.0f}")
    t.add_row("peak memory (MiB, ru_maxrss)", f"{pkg['maxrss_mib']:,.0f}", f"{ddb['maxrss_mib']:,.0f}")
    t.add_row("result cells", f"{pkg['rows']}", f"{ddb['rows']}")
    t.add_row("warm-up, not timed (s)", f"{pkg['warm_up']:.2f}", f"{ddb['warm_up']:.2f}")
    if args.repeat > 1:
        t.add_row("all runs (s)", " ".join(f"{x:.2f}" for x in pkg["runs"]),
                  " ".join(f"{x:.2f}" for x in ddb["runs"]))
    console.print(t)
    steps = ", ".join(f"{k} {v:.2f} s" for k, v in pkg["steps"].items())
    total_t = float(merged["tco2e_package"].sum())
    verdict = "[green]within target[/]" if ratio <= TARGET_RATIO else "[red]slower than target[/]"
    console.print(Panel.fit(
        f"package / duckdb time  [bold]{ratio:.2f}×[/]  (target ≤ {TARGET_RATIO}×: {verdict})\n"
        f"package steps          {steps}\n"
        f"memory package/duckdb  {pkg['maxrss_mib'] / ddb['maxrss_mib']:.2f}×\n"
        f"max relative diff      {max_rel:.3e} over {len(merged)} cells (tolerance {RTOL:g})\n"
        f"total                  {total_t:,.3f} tCO2e\n"
        f"threads                {args.threads or 'DuckDB default (' + str(os.cpu_count()) + ' cores)'}"
        f", repeat {args.repeat}",
        title="summary"))
    if not agree:
        console.print(bad.head(20).to_string())
    assert agree, f"package and DuckDB disagree in {len(bad)} cells (max relative difference {max_rel:.3e})"
    return 0


if __name__ == "__main__":
    sys.exit(main())
