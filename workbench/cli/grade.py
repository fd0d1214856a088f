"""``workbench grade``: enterprise carbon-efficiency grades (碳效码) of a region for a period.

    workbench grade --region DIR --period 2025-03|2025-Q1|2025 [--scheme zhejiang] [--out FILE.csv|FILE.parquet] [--json]
                    [--submit [--db URL] [--by WHO]]

Reads the region directory (``workbench demo region`` writes one), accounts its energy with the
engine and the factor library, grades every enterprise (:func:`workbench.grading.grade_region`),
prints the distribution of grades — overall and by industry, with each industry's benchmark — and
writes one row per enterprise (L, level, benchmark, K, grade, status, flags) to ``--out``.
``--submit`` puts every graded enterprise's grade, with its evidence, in the certification store
(:class:`workbench.grading.certificates.GradeCertificates`, ``--db`` or ``$WORKBENCH_CERTIFICATION``
or ``data/certification.db``) as pending, for the review page (``/review``); ungraded rows are not
submitted, and one already pending is left as it is.
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
@click.option("--submit", is_flag=True, help="Submit the graded enterprises' grades, with their evidence, for "
                                             "certification (pending, reviewed on the apps' /review page).")
@click.option("--db", "cert_db", default=None, help="Certification store for --submit: SQLAlchemy URL or SQLite file "
                                                    "(default $WORKBENCH_CERTIFICATION or data/certification.db).")
@click.option("--by", "who", default=None, help="Who submits (default user:$USER).")
def grade_command(region_dir, period, scheme, industry_level, benchmark_scope, out, as_json, submit, cert_db, who):
    """Grade every enterprise of a region (碳效码 by default) and print the distribution of grades."""
    from workbench.grading import GradingError, get_scheme, grade_region, load_region
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
        em = load_region(region_dir)
        rg = grade_region(em, p, scheme, industry_level=industry_level, benchmark_scope=benchmark_scope)
    except GradingError as exc:
        fail(str(exc) if str(region_dir) in str(exc) else f"{region_dir}: {exc}")
    submitted = _submit(em, rg, p, cert_db, who) if submit else None
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
        if submitted is not None:
            doc["submitted"] = submitted
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
    if submitted is not None:
        click.echo(f"submitted for certification: {len(submitted['certificates'])} pending in {submitted['db']}; "
                   f"not submitted: {len(submitted['ungraded'])} ungraded, {len(submitted['already_pending'])} "
                   "already pending")


def _submit(em, rg, period, cert_db, who) -> dict:
    """The graded enterprises' grades into the certification store, pending (``--submit``)."""
    import getpass

    from workbench.grading.certificates import (
        CertificationError,
        GradeCertificates,
        store_url,
        submit_graded,
    )

    url = store_url(cert_db)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///"):]).resolve().parent.mkdir(parents=True, exist_ok=True)
    try:
        store = GradeCertificates(url)
    except CertificationError as exc:
        fail(f"--db: {exc}")
    try:
        res = submit_graded(store, em, period, who=who or f"user:{getpass.getuser()}",
                            scheme=rg.scheme, industry_level=rg.industry_level, benchmark_scope=rg.benchmark_scope)
    finally:
        store.dispose()
    return {"db": store.engine.url.render_as_string(hide_password=True),
            "certificates": [{"certificate_id": c.certificate_id, "enterprise_id": c.enterprise_id, "grade": c.grade,
                              "quality": c.quality} for c in res["submitted"]],
            "ungraded": [{"enterprise_id": e, "status": s} for e, s in res["ungraded"]],
            "already_pending": res["already_pending"]}


def _num(v):
    try:
        return None if v is None or math.isnan(float(v)) else float(v)
    except (TypeError, ValueError):
        return None
