"""Benchmark: the verification package on the demo cement plant for one year (issue 14, points 3 and 9).

    python benchmarks/verify.py [--lake DIR] [--enterprise demo-cement] [--year 2025] [--repeat 3]

1. The lake: ``--lake`` (e.g. ``data/lake`` after ``make demo``), else the demo cement plant is
   generated and loaded through the ordinary path (master data → registry → lake) into
   ``benchmarks/.data/verify/lake`` (reused when there).
2. Baseline, in the same run: the bare inventory of the year from the lake
   (:func:`workbench.inventory.compute.compute_inventory_from_lake`, January–December).
3. ``export_package`` three ways: results and evidence only (no report, no notebook); with the
   report (the annual report when :mod:`workbench.reports.annual` imports, else the inventory
   report); with the report and the executed notebook (what ``workbench verify export`` does).
4. ``check_package`` on the quick and on the full package (signature, hashes, every emission
   recomputed, the report's and the notebook's figures), in this process, and ``workbench verify
   check`` as a user runs it (a new Python process: imports included).
Prints the median of ``--repeat`` runs (the full export and the CLI once each), the ratio to the
baseline, the package's size and what it holds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def demo_lake() -> Path:
    """The demo cement plant's lake, generated and loaded once (``benchmarks/.data/verify``)."""
    from workbench.demo.load import load_demo
    from workbench.demo.plants import generate
    from workbench.registry import MasterData, import_enterprise

    data = ROOT / "benchmarks" / ".data" / "verify"
    lake = data / "lake"
    done = data / "loaded.done"
    if done.exists():
        return lake
    data.mkdir(parents=True, exist_ok=True)
    generate(data / "demo")
    md = MasterData(f"sqlite:///{data / 'registry.db'}")
    try:
        import_enterprise(md, data / "demo", who="benchmark")
        load_demo(data / "demo", lake, enterprise="demo-cement", master=md)
    finally:
        md.dispose()
    done.write_text("ok\n")
    return lake


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lake", type=Path, default=None)
    ap.add_argument("--enterprise", default="demo-cement")
    ap.add_argument("--year", type=int, default=2025)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from workbench.inventory.compute import compute_inventory_from_lake
    from workbench.lake.store import Lake
    from workbench.verification import (
        check_package,
        export_package,
        generate_key,
        public_pem,
        report_engine,
    )

    lake = Lake(args.lake or demo_lake())
    ent, y = args.enterprise, args.year
    key = generate_key()
    work = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    pub = work / "signer.pub"
    pub.write_bytes(public_pem(key))

    compute_inventory_from_lake(lake, ent, f"{y}-01", f"{y}-12")          # warm-up (library, DuckDB, lake)
    base, inv = timed(lambda: compute_inventory_from_lake(lake, ent, f"{y}-01", f"{y}-12"), args.repeat)
    quick_t, quick = timed(lambda: export_package(lake, ent, y, work / "quick.zip", private_key=key, report=False,
                                                  notebook=False), args.repeat)
    report_t, with_report = timed(lambda: export_package(lake, ent, y, work / "report.zip", private_key=key,
                                                         notebook=False), max(1, args.repeat - 1))
    t = time.perf_counter()
    full = export_package(lake, ent, y, work / "full.zip", private_key=key)
    full_t = time.perf_counter() - t
    check_quick_t, cq = timed(lambda: check_package(work / "quick.zip", public_key=key.public_key()), args.repeat)
    check_full_t, cf = timed(lambda: check_package(work / "full.zip", public_key=key.public_key()), args.repeat)
    assert cq.ok and cf.ok, (cq.lines(), cf.lines())
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "workbench.cli.main", "verify", "check", str(work / "full.zip"),
                           "--public-key", str(pub), "--json"], capture_output=True, text=True, cwd=ROOT,
                          check=False, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    cli_t = time.perf_counter() - t
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)

    m = full.manifest
    engine, why = report_engine()
    print(f"verification package — {ent} {y}: {len(inv.ledger)} ledger rows, {m['summary']['raw_files']} raw files, "
          f"total {inv.total_tco2e:,.3f} tCO2e (recomputed {cf.total_tco2e:,.3f})")
    print(f"report engine: {m['report']['engine']}; notebook: {(m['notebook'] or {}).get('engine')}"
          + ("" if engine is not None else f" ({why})"))
    rows = [
        ("baseline: bare inventory of the year", base, None),
        ("export: results + evidence (no report, no notebook)", quick_t, (work / "quick.zip").stat().st_size),
        ("export: + report", report_t, (work / "report.zip").stat().st_size),
        ("export: + report + executed notebook (the CLI's default)", full_t, (work / "full.zip").stat().st_size),
        ("check: quick package (in process)", check_quick_t, None),
        ("check: full package (in process)", check_full_t, None),
        ("check: `workbench verify check` (new process)", cli_t, None),
    ]
    print(f"{'step':60s} {'seconds':>9s} {'× baseline':>11s} {'package':>10s}")
    for name, s, size in rows:
        print(f"{name:60s} {s:9.2f} {s / base:11.2f} {'' if size is None else f'{size / 1e6:8.2f} MB':>10s}")
    print("export steps (full): " + ", ".join(f"{k} {v:.2f} s" for k, v in full.seconds.items()))
    print(f"check (CLI, reported by itself): {doc['seconds']:.2f} s, {doc['files_checked']} files hashed, "
          f"{doc['rows_recomputed']} rows recomputed, signer {doc['signer'][:23]}…")
    del with_report, quick


if __name__ == "__main__":
    main()
