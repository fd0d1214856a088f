"""The ``workbench`` command line.

Exit codes: 0 success · 2 bad input (named by file, row and column) · 1 anything else.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import click

from workbench import __version__
from workbench.cli.errors import BAD_INPUT, WorkbenchGroup, fail, read_input

__all__ = ["BAD_INPUT", "main"]


def _fail(message: str) -> None:
    fail(message)


def _bad_input_errors():
    from workbench.accounting import AccountingError
    from workbench.core.activity import ActivityDataError
    from workbench.core.factors import (
        FactorNotFoundError,
        UnknownItemError,
        UnknownRegionError,
    )
    from workbench.core.units import UnitError
    return (ActivityDataError, AccountingError, UnitError, FactorNotFoundError, UnknownItemError,
            UnknownRegionError)


@click.group(cls=WorkbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="workbench")
def main():
    """Carbon Efficiency Workbench 碳效工作台 — GB/T 32150 accounting and carbon-efficiency analytics."""


# ------------------------------------------------------------------------------------ calc
@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--year", type=int, help="Reporting year for records without a period (default: previous calendar year).")
@click.option("--region", default=None, help="Grid region or province for electricity factors (CN, 华东, CN-ZJ, 浙江 …; default CN).")
@click.option("--gwp", default="AR5", show_default=True, help="GWP set: SAR, AR4, AR5 or AR6.")
@click.option("--value-added", "value_added", type=float, help="Value added of the period(s) in 万元 (10⁴ CNY).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def calc(file, year, region, gwp, value_added, as_json):
    """Quick calculation from an activity-data template (CSV or XLSX).

    Columns: source, item, quantity, unit [facility, period, ncv, ncv_unit, carbon_content,
    carbon_content_unit, oxidation_rate, emission_factor, ef_unit, purity, value_added];
    Chinese headers, source and item names are accepted.
    """
    from workbench.inventory.quickcalc import quick_calc, render_table

    if value_added is not None and not (math.isfinite(value_added) and value_added > 0):
        _fail(f"--value-added must be a positive number of 万元, got {value_added}")
    try:
        result = quick_calc(file, year=year, region=region, gwp=gwp, value_added=value_added)
    except _bad_input_errors() as exc:
        _fail(str(exc))
    except ValueError as exc:  # e.g. unknown GWP set
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        render_table(result)


# ------------------------------------------------------------------------------------ demo
@main.group()
def demo():
    """The demo enterprises (cement, steel, dyeing plants) and a demo regional population."""


@demo.command("generate")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--meters", type=int, default=None, help="Total number of meters of the cement plant (default: its ~40).")
@click.option("--years", type=int, default=1, show_default=True, help="Years of 15-minute data.")
@click.option("--seed", type=int, default=20251, show_default=True)
@click.option("--start", default="2025-01-01", show_default=True, help="First day of the data.")
@click.option("--only", "only", multiple=True, type=click.Choice(["cement", "steel", "textile"]),
              help="Write only these plants (repeatable; default: all three).")
def demo_generate(out, meters, years, seed, start, only):
    """Write deterministic demo enterprises (tables + Intake catalogs) into OUT.

    The cement plant goes to OUT itself, the steel and dyeing plants to OUT/enterprises/demo-steel
    and OUT/enterprises/demo-textile, each with the same file set and its own catalog.yaml."""
    from workbench.demo.plants import enterprise_dir, generate
    from workbench.lake.catalog import write_demo_catalog, write_factor_snapshot

    if years < 1:
        _fail("--years must be at least 1")
    out.mkdir(parents=True, exist_ok=True)
    try:
        info = generate(out, meters=meters, years=years, seed=seed, start=start, progress=True,
                        plants=only or None)
    except ValueError as exc:  # e.g. fewer meters than the plant needs, a start that is not a 1st
        _fail(str(exc))
    for plant in only or ("cement", "steel", "textile"):
        folder = enterprise_dir(out, plant)
        write_factor_snapshot(folder)
        ent = json.loads((folder / "enterprise.json").read_text(encoding="utf-8"))
        cat = write_demo_catalog(folder / "catalog.yaml", enterprise=ent)
        click.echo(f"demo enterprise {ent['enterprise_id']} written to {folder}")
        res = info if plant == "cement" else info["enterprises"][ent["enterprise_id"]]
        for k, v in res.items():
            if not isinstance(v, (dict, list)) and k != "out":
                click.echo(f"  {k}: {v}")
        click.echo(f"  catalog: {cat}")


@demo.command("region")
@click.option("--enterprises", "n", type=int, default=200, show_default=True, help="Number of enterprises.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--seed", type=int, default=20251, show_default=True)
@click.option("--province", default="CN-ZJ", show_default=True, help="ISO 3166-2 code of the province.")
@click.option("--year", type=int, default=2025, show_default=True, help="Year of the monthly data.")
def demo_region(n, out, seed, province, year):
    """Write a deterministic population of N enterprises across the sectors and counties of a province:
    monthly energy by carrier, output by product and value added (tidy CSV + Parquet, README)."""
    from workbench.demo.region import generate_region

    try:
        info = generate_region(out, enterprises=n, seed=seed, province=province, year=year)
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"demo region ({province}, {n} enterprises, {year}) written to {out}")
    for k, v in info["counts"].items():
        click.echo(f"  {k}: {v} rows")
    click.echo(f"  seconds: {info['seconds']}")


@demo.command("load")
@click.argument("data_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--lake", "lake_root", default=None, help="Lake root (default $WORKBENCH_LAKE or data/lake).")
@click.option("--registry", "registry_url", default=None,
              help="Master data (SQLAlchemy URL or SQLite file; default $WORKBENCH_REGISTRY or data/registry.db).")
def demo_load(data_dir, lake_root, registry_url):
    """Import every demo enterprise's master data and load its files into its own lake through the
    ordinary ingest path."""
    import os

    from workbench.cli.lake import check_demo_folder
    from workbench.demo.load import demo_enterprise_dirs, load_demo_enterprises
    from workbench.registry import MasterData, RegistryError, default_url

    folders = demo_enterprise_dirs(data_dir)
    if not folders:
        _fail(f"{data_dir / 'enterprise.json'}: missing (a demo folder holds enterprise.json, boundary.csv, "
              "meters.csv, readings.parquet and activity.csv)")
    for folder in folders:
        check_demo_folder(folder, master_data=True)
    from workbench.cli.lake import _lake

    lake_root = lake_root or os.environ.get("WORKBENCH_LAKE", "data/lake")
    _lake(lake_root, None)                          # a lake root that is a file: refused before anything is loaded
    url = registry_url or default_url()
    if "://" not in url:
        url = f"sqlite:///{Path(url).resolve()}"
    store = MasterData(url)
    try:
        out = load_demo_enterprises(data_dir, lake_root, store,
                                    progress=click.echo)
    except (RegistryError, ValueError) as exc:
        _fail(str(exc))
    finally:
        store.dispose()
    for eid, reports in out.items():
        for name, rep in reports.items():
            click.echo(f"  {eid} {name}: {rep['status']}, {rep['rows_curated']:,} curated, "
                       f"{rep['rows_quarantined']:,} quarantined, {rep['rows_duplicate']:,} duplicates")


@demo.command("users")
@click.option("--lake", "lake_root", default=None, help="Lake root whose enterprises the users see (default "
                                                        "$WORKBENCH_LAKE or data/lake).")
@click.option("--db", "db_url", default=None,
              help="Users database: SQLAlchemy URL or SQLite file (default $WORKBENCH_USERS or data/users.db).")
def demo_users_command(lake_root, db_url):
    """The demo's logins (manager, analyst, verifier, admin) with new passwords, printed once."""
    import os

    from workbench.apps.demo import demo_users
    from workbench.cli.users import user_store
    from workbench.lake.store import Lake

    root = Path(lake_root or os.environ.get("WORKBENCH_LAKE", "data/lake"))
    if not root.is_dir():
        _fail(f"lake {root}: no such folder (run `workbench demo load` first)")
    enterprises = Lake(root).enterprises()
    if not enterprises:
        _fail(f"lake {root}: no enterprises in it (run `workbench demo load` first)")
    store = user_store(db_url, create=True)
    try:
        users = demo_users(store, enterprises)
    finally:
        store.dispose()
    click.echo("demo logins (new passwords each time; stored hashed):")
    for u in users:
        click.echo(f"  {u['name']:<14} {u['password']}  {u['role']:<8} {', '.join(u['enterprises'])}")


@demo.command("latest-period")
@click.argument("data_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
def demo_latest_period(data_dir):
    """Print the latest complete month (YYYY-MM) of a demo dataset's activity data."""
    from workbench.cli.lake import _read_activity_file

    path = data_dir / "activity.csv"
    if not path.exists():
        _fail(f"{path}: missing (a demo folder holds activity.csv)")
    act = read_input(path, _read_activity_file)
    periods = sorted(act["period"].dropna().astype(str).unique()) if "period" in act else []
    if not periods:
        _fail(f"{path}: no record has a period")
    click.echo(periods[-1])


# ------------------------------------------------------------------------------------ report
@main.group()
def report():
    """Periodic reports run through papermill."""


@report.command("inventory")
@click.option("--period", required=True, help="Last month of the inventory, YYYY-MM.")
@click.option("--start", "period_start", default=None, help="First month (default: same as --period).")
@click.option("--enterprise", "enterprise_id", default=None, envvar="WORKBENCH_ENTERPRISE",
              help="The enterprise (enterprise_id): the inventory is made from its lake.")
@click.option("--lake", "lake_root", default=None,
              help="Lake root (default $WORKBENCH_LAKE or data/lake when --enterprise is given).")
@click.option("--registry", "registry_url", default=None,
              help="Master data (SQLAlchemy URL or SQLite file) for the enterprise's record and boundary "
                   "(default: what its lake holds).")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Intake catalog of files instead of a lake (the quick path; default catalogs/demo.yaml "
                   "when neither --enterprise nor --lake is given).")
@click.option("--out", "output_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: output/inventory-[ENTERPRISE-]PERIOD).")
@click.option("--enterprise-node", default=None, help="Enterprise node id of a catalog's boundary (default: its root).")
@click.option("--gwp", default="AR5", show_default=True)
@click.option("--json", "as_json", is_flag=True,
              help="Print the inventory's figures as one JSON object (no notebook, no files).")
def report_inventory(period, period_start, enterprise_id, lake_root, registry_url, catalog, output_dir,
                     enterprise_node, gwp, as_json):
    """The GHG inventory of a period: from an enterprise's lake (--enterprise/--lake) or a catalog;
    runs notebooks/inventory.ipynb and writes notebook, HTML, Parquet and XLSX, or prints JSON."""
    import os

    from workbench.reports.run import run_inventory_notebook

    _check_month(period, "--period")
    if period_start:
        _check_month(period_start, "--start")
        if period_start > period:
            _fail(f"--start {period_start} is after --period {period}")
    if catalog is not None:
        read_input(catalog, _read_catalog, label="--catalog")
    from_lake = catalog is None and (enterprise_id or lake_root)
    lake_root = lake_root or os.environ.get("WORKBENCH_LAKE", "data/lake")
    if registry_url and "://" not in registry_url:
        registry_url = f"sqlite:///{Path(registry_url).resolve()}"
    _check_inventory_inputs(gwp, enterprise_id, lake_root if from_lake else None, registry_url)
    try:
        if as_json:
            click.echo(json.dumps(_inventory_json(period_start or period, period, enterprise_id, lake_root,
                                                  registry_url, catalog, enterprise_node, gwp, from_lake),
                                  ensure_ascii=False, default=_jsonable))
            return
        paths = run_inventory_notebook(period_end=period, period_start=period_start or period,
                                       catalog=None if from_lake else catalog, output_dir=output_dir,
                                       enterprise=enterprise_node, gwp=gwp, progress=True,
                                       lake=lake_root if from_lake else None, enterprise_id=enterprise_id,
                                       registry=registry_url)
    except _bad_input_errors() as exc:
        _fail(str(exc))
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    click.echo("inventory written:")
    for k, v in paths.items():
        click.echo(f"  {k:9s} {v}")


def _check_inventory_inputs(gwp, enterprise_id, lake_root, registry_url) -> None:
    """Refuse a bad --gwp, --enterprise, --lake or --registry before the notebook runs."""
    from workbench.core.errors import WorkbenchError
    from workbench.core.factors import default_library

    try:
        default_library(gwp.upper())
    except (ValueError, KeyError) as exc:
        _fail(f"--gwp {gwp}: {exc.args[0] if exc.args else exc}")
    if lake_root is not None:
        from workbench.cli.lake import _lake

        _lake(lake_root, enterprise_id)
    if registry_url:
        from workbench.registry import MasterData

        try:
            md = MasterData(registry_url)
        except WorkbenchError as exc:
            _fail(f"--registry {exc}")
        try:
            if enterprise_id:
                md.enterprise(enterprise_id)
        except WorkbenchError as exc:
            _fail(f"--enterprise {exc}")
        finally:
            md.dispose()


def _check_month(text: str, option: str) -> None:
    """``YYYY-MM`` with a real month, else exit 2 naming the option."""
    import re

    m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        _fail(f"{option} {text!r}: not a month — write YYYY-MM, e.g. 2025-03")


def _read_catalog(path: Path) -> dict:
    """An Intake catalog file: YAML holding a mapping with ``entries`` (Intake 2, as the workbench
    writes them) or ``sources`` (Intake 1)."""
    import yaml

    doc = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    if not isinstance(doc, dict) or not any(isinstance(doc.get(k), dict) for k in ("entries", "sources")):
        raise ValueError(f"{path}: not an Intake catalog (a YAML mapping with 'entries:' or 'sources:')")
    return doc


def _jsonable(v):
    import math

    if isinstance(v, float) and not math.isfinite(v):
        return None
    return str(v)


def _inventory_json(period_start, period_end, enterprise_id, lake_root, registry_url, catalog, enterprise_node,
                    gwp, from_lake) -> dict:
    """The figures of ``workbench report inventory --json``."""
    import math

    from workbench.inventory.compute import (
        compute_inventory,
        compute_inventory_from_lake,
    )

    if from_lake:
        from workbench.lake.store import Lake
        from workbench.registry import MasterData

        inv = compute_inventory_from_lake(Lake(lake_root), enterprise_id, period_start, period_end,
                                          registry=MasterData(registry_url) if registry_url else None, gwp=gwp)
    else:
        from workbench.lake.catalog import open_catalog
        from workbench.reports.run import project_root

        cat = open_catalog(catalog or project_root() / "catalogs" / "demo.yaml")
        inv = compute_inventory(cat, period_start, period_end, enterprise=enterprise_node, gwp=gwp)

    def num(x):
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

    s = inv.summary
    bases = inv.ledger["basis"].value_counts().to_dict() if "basis" in inv.ledger else {}
    return {"enterprise": enterprise_id or inv.enterprise.get("enterprise_id") or "",
            "name_zh": inv.enterprise.get("name_zh", ""), "name_en": inv.enterprise.get("name_en", ""),
            "period_start": inv.period_start, "period_end": inv.period_end, "standard": inv.regime.name,
            "total_tco2e": num(s["total_tco2e"]),
            "by_source": {k: num(v) for k, v in s["by_source"].items()},
            "by_facility": {k: num(v) for k, v in s["by_facility"].items()},
            "value_added": num(s.get("value_added")), "value_added_unit": "万元",
            "carbon_efficiency": num(s.get("carbon_efficiency")), "carbon_efficiency_unit": "tCO2e/万元",
            "ledger_rows": len(inv.ledger), "basis": bases, "notes": inv.notes}


# ------------------------------------------------------------------------------------ factors
@main.group()
def factors():
    """Browse the factor library."""


@factors.command("sets")
def factors_sets():
    """List the factor sets with their documents and years."""
    from workbench.core.factors import default_library

    lib = default_library()
    click.echo(f"factor library {lib.version}")
    click.echo(lib.factor_sets_table().to_string(index=False))


@factors.command("lookup")
@click.argument("item")
@click.argument("kind", type=click.Choice(["ncv", "carbon_content", "oxidation_rate", "emission_factor", "gwp"]))
@click.option("--year", type=int)
@click.option("--region")
@click.option("--gwp", default="AR5", show_default=True)
def factors_lookup(item, kind, year, region, gwp):
    """Show the factor the engine would use, with its provenance."""
    from workbench.core.factors import default_library

    try:
        lib = default_library(gwp.upper())
        if region is not None:
            lib.region_code(region)                 # an unknown region is refused even where no factor is regional
        f = lib.lookup(item, kind, year=year, region=region)
    except _bad_input_errors() as exc:
        _fail(str(exc))
    except (ValueError, KeyError) as exc:          # e.g. an unknown GWP set
        _fail(f"--gwp {gwp}: {exc.args[0] if exc.args else exc}")
    click.echo(f"{f.factor_id}: {f.value} {f.unit}")
    click.echo(f"  source: {f.provenance}")
    if f.selection:
        click.echo(f"  chosen: {f.selection}")
    if f.note:
        click.echo(f"  note:   {f.note}")


from workbench.cli.imports import import_command  # noqa: E402
from workbench.cli.lake import lake_group, quality_group  # noqa: E402

main.add_command(lake_group)
main.add_command(import_command)
main.add_command(quality_group)

from workbench.cli.idnode import idnode_group  # noqa: E402

main.add_command(idnode_group)

from workbench.cli.devices import devices_group  # noqa: E402
from workbench.cli.devices_manage import monitor as _monitor  # noqa: E402,F401  (registers the management commands)

main.add_command(devices_group)

from workbench.cli.gateway import gateway_command  # noqa: E402
from workbench.cli.registry import registry_group  # noqa: E402

main.add_command(gateway_command)
main.add_command(registry_group)

from workbench.cli.apps import apps_group  # noqa: E402
from workbench.cli.users import users_group  # noqa: E402

main.add_command(users_group)
main.add_command(apps_group)

from workbench.cli.grade import grade_command  # noqa: E402

main.add_command(grade_command)

from workbench.cli.verify import verify_group  # noqa: E402

main.add_command(verify_group)

from workbench.cli.schedule import schedule_group

main.add_command(schedule_group)

from workbench.cli.products import cbam_group, product_group  # noqa: E402

main.add_command(product_group)
main.add_command(cbam_group)

from workbench.cli.annual import annual_command, periodic_command  # noqa: E402

report.add_command(annual_command)
report.add_command(periodic_command)

from workbench.cli.models import models_group

main.add_command(models_group)

if __name__ == "__main__":  # pragma: no cover
    main()
