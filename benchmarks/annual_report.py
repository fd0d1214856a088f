"""Benchmark: the annual GHG report of the demo cement plant, PDF included (issue 14, point 9).

    python benchmarks/annual_report.py [--lake DIR] [--enterprise demo-cement] [--year 2025] [--repeat 3]
                                       [--draws 10000] [--language zh] [--notebook]

1. The lake: ``--lake`` (e.g. ``data/lake`` after ``make demo``), else the demo cement plant is
   generated and loaded through the ordinary path (``workbench demo generate --only cement`` and
   ``workbench demo load``) into ``benchmarks/.data/annual-report`` (reused when there).
2. Baseline, in the same run: the bare inventory of the year from the lake
   (:func:`workbench.inventory.compute.compute_inventory_from_lake`), what every report starts from.
3. The report, ``--repeat`` times: :func:`workbench.reports.annual.annual_report` writing HTML, PDF
   and XLSX, timed whole (wall clock, the imports already done) and by step — inventory, data status,
   uncertainty (approach 1 and a Monte Carlo of ``--draws`` draws), figures, HTML, PDF (WeasyPrint),
   XLSX — by running the same steps one after another.
4. ``--notebook``: once, :func:`workbench.reports.run.run_annual_notebook` (papermill, a fresh kernel).

Prints the median of each, the ratio to the baseline and the target: the annual report with its
PDF in ≤ 30 s.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_S = 30.0


def demo_lake() -> Path:
    """The demo cement plant's lake, generated and loaded once."""
    data = ROOT / "benchmarks" / ".data" / "annual-report"
    lake = data / "lake"
    if (lake / "enterprises" / "demo-cement").is_dir():
        return lake
    exe = [sys.executable, "-m", "workbench.cli.main"]
    subprocess.run([*exe, "demo", "generate", "--out", str(data / "demo"), "--only", "cement"], check=True)
    subprocess.run([*exe, "demo", "load", str(data / "demo"), "--lake", str(lake), "--registry",
                    str(data / "registry.db")], check=True)
    return lake


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def steps(lake, enterprise: str, year: int, draws: int, language: str, out: Path) -> dict:
    """The report's steps one after another (the same calls annual_report makes), each timed."""
    from workbench.accounting.uncertainty import (
        approach1,
        ledger_inputs,
        monte_carlo,
        uncertainty_table,
    )
    from workbench.inventory.compute import compute_inventory_from_lake
    from workbench.reports import annual as A
    from workbench.reports.status import data_status

    p = A.parse_period(str(year))
    sec = {}
    sec["inventory"], inv = timed(compute_inventory_from_lake, lake, enterprise, p.start, p.end)
    lk = lake.for_enterprise(enterprise)
    sec["data status"], _status = timed(data_status, lk, start=p.start, end=p.end, imports=None)
    t = time.perf_counter()
    table = uncertainty_table()
    inputs = ledger_inputs(inv.ledger, table)
    approach1(inv.ledger, table, inputs=inputs)
    sec["uncertainty approach 1"] = time.perf_counter() - t
    sec[f"Monte Carlo ({draws:,} draws)"], _ = timed(monte_carlo, inv.ledger, table, n=draws, inputs=inputs)
    rep = A.build_report(lake, enterprise, p, language=language, draws=draws, images=False)
    sec["figures (matplotlib)"], rep.images = timed(A._images, rep)
    sec["HTML"], html = timed(A.render_html, rep)
    (out / "steps.html").write_text(html, encoding="utf-8")
    t = time.perf_counter()
    A.write_pdf(A.render_html(rep, for_pdf=True), out / "steps.pdf")
    sec["PDF (WeasyPrint)"] = time.perf_counter() - t
    sec["XLSX"], _ = timed(A.write_xlsx, rep, out / "steps.xlsx")
    return sec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lake", default=None, help="Lake root (default: the demo, generated and loaded once).")
    ap.add_argument("--enterprise", default="demo-cement")
    ap.add_argument("--year", type=int, default=2025)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--language", default="zh", choices=["zh", "en"])
    ap.add_argument("--notebook", action="store_true", help="Also time the papermill notebook once.")
    args = ap.parse_args(argv)

    from workbench.inventory.compute import compute_inventory_from_lake
    from workbench.lake.store import Lake
    from workbench.reports.annual import annual_report

    root = Path(args.lake) if args.lake else demo_lake()
    lake = Lake(root)
    start, end = f"{args.year}-01", f"{args.year}-12"
    compute_inventory_from_lake(lake, args.enterprise, start, end)       # warm: imports, factor library
    base, reports, by_step = [], [], {}
    with tempfile.TemporaryDirectory(prefix="annual-bench-") as tmp:
        tmp = Path(tmp)
        for i in range(args.repeat):
            t, _inv = timed(compute_inventory_from_lake, lake, args.enterprise, start, end)
            base.append(t)
            t, rep = timed(annual_report, lake, args.enterprise, args.year, output_dir=tmp / f"run{i}",
                           language=args.language, draws=args.draws)
            reports.append(t)
            for k, v in steps(lake, args.enterprise, args.year, args.draws, args.language, tmp).items():
                by_step.setdefault(k, []).append(v)
        sizes = {k: p.stat().st_size for k, p in rep.paths.items()}
        nb = None
        if args.notebook:
            from workbench.reports.run import run_annual_notebook

            nb, _ = timed(run_annual_notebook, enterprise=args.enterprise, year=args.year, lake=root,
                          output_dir=tmp / "notebook", language=args.language, progress=False)
    f = rep.figures
    b, r = statistics.median(base), statistics.median(reports)
    print(f"annual GHG report of {args.enterprise} {args.year} ({rep.edition}, {args.language}); lake {root}")
    print(f"  ledger rows {f['ledger_rows']:,}; total {f['total_tco2e']:,.3f} tCO2e; "
          f"U ±{f['uncertainty_approach1_pct']:.2f} % (approach 1), ±{f['uncertainty_approach2_pct']:.2f} % "
          f"(approach 2, {f['monte_carlo_draws']:,} draws)")
    print("  files: " + ", ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in sizes.items()))
    print(f"baseline  inventory of the year (compute_inventory_from_lake): {b:6.2f} s  (median of {args.repeat})")
    print(f"report    annual_report, HTML + PDF + XLSX:                    {r:6.2f} s  = {r / b:.1f} × baseline")
    print("  by step (median):")
    for k, v in by_step.items():
        print(f"    {k:30s} {statistics.median(v):6.2f} s")
    if nb is not None:
        print(f"notebook  run_annual_notebook (papermill, fresh kernel):     {nb:6.2f} s")
    ok = r <= TARGET_S
    print(f"target    ≤ {TARGET_S:.0f} s including the PDF: {'met' if ok else 'NOT met'} ({r:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
