"""``workbench report annual`` and ``workbench report periodic``: the GHG report of a year, quarter or
month (GB/T 32150) as HTML, PDF and XLSX — :mod:`workbench.reports.annual`, or its notebook with
``--notebook`` (:func:`workbench.reports.run.run_annual_notebook`)."""
from __future__ import annotations

import os
from pathlib import Path

import click

from workbench.cli.errors import fail

__all__ = ["annual_command", "periodic_command"]

FORMAT_CHOICES = ("html", "pdf", "xlsx", "json")


def _options(f):
    f = click.option("--enterprise", "enterprise_id", required=True, help="The enterprise (enterprise_id).")(f)
    f = click.option("--lake", "lake_root", default=None,
                     help="Lake root (default $WORKBENCH_LAKE or data/lake).")(f)
    f = click.option("--registry", "registry_url", default=None,
                     help="Master data (SQLAlchemy URL or SQLite file) for the enterprise's record and boundary "
                          "(default: what its lake holds).")(f)
    f = click.option("--out", "output_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Output folder (default output/report-ENTERPRISE-PERIOD).")(f)
    f = click.option("--language", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
                     help="Language of the report (Chinese or English).")(f)
    f = click.option("--format", "formats", type=click.Choice(FORMAT_CHOICES), multiple=True,
                     help="Formats to write (repeatable; default html, pdf and xlsx).")(f)
    f = click.option("--gwp", default="AR5", show_default=True, help="GWP set: SAR, AR4, AR5 or AR6.")(f)
    f = click.option("--draws", type=click.IntRange(min=100), default=10_000, show_default=True,
                     help="Monte Carlo draws of the uncertainty (approach 2).")(f)
    f = click.option("--seed", type=int, default=20251, show_default=True, help="Seed of the Monte Carlo.")(f)
    f = click.option("--notebook", is_flag=True,
                     help="Run notebooks/annual_report.ipynb with papermill (the executed notebook is kept).")(f)
    return f


def _check_stores(gwp, enterprise_id, lake_root, registry_url) -> None:
    """Refuse a bad --gwp, --lake or --registry (as `report inventory` does)."""
    from workbench.cli.lake import _lake
    from workbench.core.errors import WorkbenchError
    from workbench.core.factors import default_library

    try:
        default_library(gwp.upper())
    except (ValueError, KeyError) as exc:
        fail(f"--gwp {gwp}: {exc.args[0] if exc.args else exc}")
    _lake(lake_root, enterprise_id)
    if registry_url:
        from workbench.registry import MasterData

        try:
            md = MasterData(registry_url)
        except WorkbenchError as exc:
            fail(f"--registry {exc}")
        try:
            md.enterprise(enterprise_id)
        except WorkbenchError as exc:
            fail(f"--enterprise {exc}")
        finally:
            md.dispose()


def _check(enterprise_id, lake_root, registry_url, gwp):
    """(lake root, registry URL) after refusing a bad --lake, --registry, --enterprise or --gwp."""
    from workbench.lake.store import ENTERPRISES_DIR
    from workbench.registry.codes import CodeError, check_enterprise_id

    try:
        check_enterprise_id(enterprise_id)
    except CodeError as exc:
        fail(f"--enterprise: {exc}")
    lake_root = lake_root or os.environ.get("WORKBENCH_LAKE", "data/lake")
    local = "://" not in str(lake_root)
    if local and not Path(lake_root).exists():
        fail(f"--lake {lake_root}: no such lake (load data with `workbench demo load` or `workbench lake ingest`)")
    if local and Path(lake_root).is_dir() and not (Path(lake_root) / ENTERPRISES_DIR / enterprise_id).is_dir():
        fail(f"--enterprise {enterprise_id}: the lake {lake_root} holds no data of this enterprise")
    if registry_url and "://" not in registry_url:
        registry_url = f"sqlite:///{Path(registry_url).resolve()}"
    _check_stores(gwp, enterprise_id, lake_root, registry_url)
    return lake_root, registry_url


def _run(enterprise_id, period, lake_root, registry_url, output_dir, language, formats, gwp, draws, seed, notebook):
    from workbench.core.errors import WorkbenchError
    from workbench.reports.annual import ReportError, parse_period, periodic_report

    try:
        p = parse_period(period)
    except ReportError as exc:
        option = "--year" if str(period).isdigit() else "--period"
        fail(str(exc).replace("period ", f"{option} ", 1))
    lake_root, registry_url = _check(enterprise_id, lake_root, registry_url, gwp)
    formats = tuple(formats) or ("html", "pdf", "xlsx")
    try:
        if notebook:
            from workbench.reports.run import run_annual_notebook

            paths = run_annual_notebook(enterprise=enterprise_id, period=p.text, lake=lake_root,
                                        output_dir=output_dir, language=language, formats=formats,
                                        registry=registry_url, progress=True)
            figures = None
        else:
            rep = periodic_report(lake_root, enterprise_id, p, output_dir=output_dir, language=language,
                                  formats=formats, registry=registry_url, gwp=gwp, draws=draws, seed=seed)
            paths, figures = rep.paths, rep.figures
    except (WorkbenchError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    click.echo(f"report of {enterprise_id}, {p.text} written:")
    for k, v in paths.items():
        click.echo(f"  {k:8s} {v}")
    if figures:
        click.echo(f"  total    {figures['total_tco2e']:,.3f} tCO2e ({figures['edition']}); uncertainty "
                   f"±{figures['uncertainty_approach1_pct']:.2f} % (approach 1), "
                   f"±{figures['uncertainty_approach2_pct']:.2f} % (approach 2)")


@click.command("annual")
@click.option("--year", type=int, required=True, help="Reporting year (GB/T 32150-2015 up to 2025, the 2025 "
                                                      "edition from 2026).")
@_options
def annual_command(year, enterprise_id, lake_root, registry_url, output_dir, language, formats, gwp, draws, seed,
                   notebook):
    """The annual GHG report of an enterprise (GB/T 32150) from its lake: HTML, PDF and XLSX; prints the paths."""
    _run(enterprise_id, str(year), lake_root, registry_url, output_dir, language, formats, gwp, draws, seed, notebook)


@click.command("periodic")
@click.option("--period", required=True, help="A year (2025), a quarter (2025-Q3) or a month (2025-07).")
@_options
def periodic_command(period, enterprise_id, lake_root, registry_url, output_dir, language, formats, gwp, draws,
                     seed, notebook):
    """The GHG report of a year, quarter or month from the enterprise's lake (the annual report's machinery)."""
    _run(enterprise_id, period, lake_root, registry_url, output_dir, language, formats, gwp, draws, seed, notebook)
