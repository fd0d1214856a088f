"""``workbench grade``: enterprise carbon-efficiency grades (碳效码) of a region for a period.

    workbench grade --region DIR --period 2025-03|2025-Q1|2025 [--scheme zhejiang] [--out FILE.csv|FILE.parquet] [--json]

Reads the region directory (``workbench demo region`` writes one), accounts its energy with the
engine and the factor library, grades every enterprise (:func:`workbench.grading.grade_region`),
prints the distribution of grades — overall and by industry, with each industry's benchmark — and
writes one row per enterprise (L, level, benchmark, K, grade, status, flags) to ``--out``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import click

from workbench.cli.errors import fail

__all__ = ["grade_command"]


@click.command("grade")
@click.option("--region", "region_dir", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Region directory: enterprises.csv, energy.csv, value_added.csv (`workbench demo region`).")
@click.option("--period", required=True, help="Month YYYY-MM, quarter YYYY-Qn or year YYYY.")
@click.option("--scheme", default=None, help="Grading scheme (default zhejiang, the 碳效码; quintile: an illustrative "
                                             "ranking; others through the workbench.grading_schemes entry points).")
@click.option("--industry-level", type=click.Choice(["division", "class"]), default=None,
              help="Benchmark industry: GB/T 4754 division (大类, default) or class (小类).")
@click.option("--benchmark-scope", type=click.Choice(["province", "city", "county"]), default=None,
              help="Benchmark region (default: the province).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the grades here: Parquet if the name ends in .parquet, else CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def grade_command(region_dir, period, scheme, industry_level, benchmark_scope, out, as_json):
    """Grade every enterprise of a region (碳效码 by default) and print the distribution of grades."""
    from workbench.grading import GradingError, get_scheme, grade_region
    from workbench.grading.periods import parse_period

    try:
        p = parse_period(period)
    except GradingError as exc:
        fail(f"--period: {exc}")
    try:
        scheme = get_scheme(scheme)
    except GradingError as exc:
        fail(f"--scheme: {exc}")
    try:
        rg = grade_region(region_dir, p, scheme, industry_level=industry_level, benchmark_scope=benchmark_scope)
    except GradingError as exc:
        fail(str(exc) if str(region_dir) in str(exc) else f"{region_dir}: {exc}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        g = rg.grades.assign(grade=rg.grades["grade"].astype("Int64"))
        if out.suffix.lower() == ".parquet":
            g.to_parquet(out, index=False)
        else:
            g.to_csv(out, index=False, encoding="utf-8", lineterminator="\n")
    by_industry = rg.distribution(("industry",))
    bench = rg.benchmarks.set_index("industry")
    if as_json:
        doc = {"region": str(region_dir), "period": p.label, **rg.summary(), "scheme": rg.scheme.describe(),
               "industry_level": rg.industry_level, "benchmark_scope": rg.benchmark_scope,
               "by_industry": [{**{k: (int(v) if k != "industry" else v) for k, v in r.items()},
                                "benchmark_l": _num(bench["benchmark_l"].get(r["industry"]))}
                               for r in by_industry.to_dict("records")],
               "benchmarks": [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
                              for r in rg.benchmarks.to_dict("records")],
               "out": str(out) if out else None}
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
        return
    s = rg.summary()
    sch = rg.scheme
    click.echo(f"碳效等级 / carbon-efficiency grades — {sch.title_zh} / {sch.title_en}")
    if sch.illustrative:
        click.echo("  (示例方案，非标准 / illustrative scheme, not a standard)")
    click.echo(f"period {p.label} · {s['enterprises']} enterprises · benchmark: GB/T 4754 {rg.industry_level} × "
               f"{rg.benchmark_scope} · region {region_dir}")
    for g, zh, en in sch.grades:
        click.echo(f"  {g}  {zh} / {en}: {s['grades'][str(g)]}")
    click.echo(f"  未评级 / ungraded: {s['ungraded']}"
               + (f"  ({', '.join(f'{k} {v}' for k, v in s['by_status'].items() if k != 'ok')})" if s["ungraded"] else ""))
    click.echo("by industry 按行业:")
    click.echo(f"  {'industry':<9}{'1':>6}{'2':>6}{'3':>6}{'4':>6}{'5':>6}{'ungraded':>10}{'total':>7}  L_ind tCO2/万元  name")
    for r in by_industry.to_dict("records"):
        ind = r["industry"]
        b = bench["benchmark_l"].get(ind) if ind in bench.index else None
        name = bench["industry_name_zh"].get(ind, "") if ind in bench.index else ""
        cells = "".join(f"{int(r[i]):>6}" for i in range(1, 6))
        click.echo(f"  {ind or '-':<9}{cells}{int(r['ungraded']):>10}{int(r['total']):>7}  "
                   f"{'' if b is None or math.isnan(b) else f'{b:>14.4f}'}  {name}")
    if out is not None:
        click.echo(f"written: {out} ({len(rg.grades)} rows)")


def _num(v):
    try:
        return None if v is None or math.isnan(float(v)) else float(v)
    except (TypeError, ValueError):
        return None
