"""``workbench lake …``, ``workbench import …`` and ``workbench quality …`` commands."""
from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path

import click

from workbench.ingestion import ingest

DEFAULT_LAKE = os.environ.get("WORKBENCH_LAKE", "data/lake")
_lake_option = click.option("--lake", "lake_root", default=DEFAULT_LAKE, show_default=True,
                            help="Lake root (folder or fsspec URL); env WORKBENCH_LAKE.")
_enterprise_option = click.option("--enterprise", "enterprise", default=None, envvar="WORKBENCH_ENTERPRISE",
                                  help="The enterprise's lake in the root (its enterprise_id; env "
                                       "WORKBENCH_ENTERPRISE); none: the root's own.")


def _lake(root, enterprise):
    """The lake of ``enterprise`` at ``root`` (a clear error for a malformed id)."""
    from workbench.lake.store import Lake
    from workbench.registry.codes import CodeError

    try:
        return Lake(root, enterprise=enterprise)
    except CodeError as exc:
        _fail(f"--enterprise: {exc}")


def _sender(sender):
    return sender or f"user:{getpass.getuser()}"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _print_report(rep) -> None:
    d = rep.to_dict()
    click.echo(json.dumps(d, ensure_ascii=False, indent=2, default=str))


@click.group("lake")
def lake_group():
    """The data lake: ingest, compact, query."""


@lake_group.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_lake_option
@_enterprise_option
@click.option("--kind", type=click.Choice(["readings", "activity"]), default="activity", show_default=True)
@click.option("--source", default=None, help="Sending system name (default: the connector's).")
@click.option("--sender", default=None, help="Who sends it (default: user:$USER).")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--meters", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="meters.csv to register before ingesting readings.")
@click.option("--identifiers", "identifiers_at", default=None, metavar="URL",
              help="Attach identifiers and quarantine rows of unregistered sources: the identifier "
                   "node (http(s)://…) or its store (sqlite:///…, postgresql://…). Needs --prefix.")
@click.option("--prefix", default=None, help="Enterprise identifier prefix, e.g. 88.123.4567.")
def lake_ingest(file, lake_root, enterprise, kind, source, sender, mapping, meters, identifiers_at, prefix):
    """Ingest one file (CSV, XLSX, PDF) through raw → preparation → curated."""
    from connectors import files as file_connector
    from workbench.core.meters import read_meters
    from workbench.ingestion.mapping import Mapping

    lake = _lake(lake_root, enterprise)
    if meters:
        try:
            lake.register_meters(read_meters(meters))
        except (ValueError, OSError, UnicodeDecodeError) as exc:     # a bad --meters file: say which, no traceback
            _fail(f"--meters {exc}" if str(meters) in str(exc) else f"--meters {meters}: {exc}")
    registry = None
    if identifiers_at:
        if not prefix:
            _fail("--identifiers needs --prefix")
        registry = _source_registry(identifiers_at, prefix, lake)
    try:
        result = file_connector.read_file(file, kind=kind, source=source)
        rep = ingest(lake, result, sender=_sender(sender), mapping=Mapping.read(mapping) if mapping else None,
                          identifiers=registry)
    except (ValueError, KeyError) as exc:
        _fail(str(exc))
    _print_report(rep)


def _source_registry(where: str, prefix: str, lake):
    """A :class:`SourceRegistry` over a node URL or a handle-store URL, with the lake's boundary."""
    from workbench.identifiers.middleware import SourceRegistry

    boundary = lake.boundary()
    boundary = boundary if len(boundary) else None
    if where.startswith(("http://", "https://")):
        from workbench.identifiers.client import Client

        return SourceRegistry.from_resolver(Client(where), prefix, boundary=boundary)
    from workbench.identifiers.store import HandleStore

    return SourceRegistry.from_store(HandleStore(where), prefix, boundary=boundary)


@lake_group.command("compact")
@_lake_option
@_enterprise_option
@click.option("--before", default=None, help="Move hot days before this date (default: today).")
def lake_compact(lake_root, enterprise, before):
    """Compact the hot tier into the cold tier (crash-safe)."""
    rep = _lake(lake_root, enterprise).compact(before=before)
    click.echo(json.dumps(rep))


@lake_group.command("rollup")
@_lake_option
@_enterprise_option
@click.option("--older-than", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Merge hot files created at least this many seconds ago.")
@click.option("--min-files", type=click.IntRange(min=2), default=20, show_default=True,
              help="Only days (per table) with at least this many such files.")
def lake_rollup(lake_root, enterprise, older_than, min_files):
    """Merge today's many small hot files (one per ingested batch) into one per table and day."""
    click.echo(json.dumps(_lake(lake_root, enterprise).rollup(older_than_s=older_than, min_files=min_files)))


@lake_group.command("sql")
@click.argument("query")
@_lake_option
@_enterprise_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def lake_sql(query, lake_root, enterprise, fmt):
    """Run SQL over the lake's views (readings, consumption, activity, invoices, quarantine, batches, meters)
    of one enterprise."""
    import duckdb

    try:
        df = _lake(lake_root, enterprise).sql(query)
    except duckdb.Error as exc:
        _fail(str(exc).splitlines()[0])
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(df.to_json(orient="records", date_format="iso", force_ascii=False))
    else:
        with __import__("pandas").option_context("display.max_rows", 200, "display.width", 200):
            click.echo(df.to_string(index=False))


@lake_group.command("batches")
@_lake_option
@_enterprise_option
def lake_batches(lake_root, enterprise):
    """List the raw batches with their status and row counts."""
    b = _lake(lake_root, enterprise).batches()
    cols = ["batch_id", "source", "connector", "kind", "sender", "status", "rows_in", "rows_curated",
            "rows_quarantined", "rows_duplicate", "received_at"]
    click.echo(b[cols].to_string(index=False) if len(b) else "no batches")


@lake_group.command("sync")
@click.option("--enterprise", "enterprise", required=True, envvar="WORKBENCH_ENTERPRISE",
              help="Whose lake (its enterprise_id in the master data; env WORKBENCH_ENTERPRISE).")
@click.option("--registry", "registry_url", default=None,
              help="Master-data database: SQLAlchemy URL or SQLite file (default $WORKBENCH_REGISTRY or "
                   "data/registry.db).")
@_lake_option
def lake_sync(enterprise, registry_url, lake_root):
    """The enterprise's lake takes its meters, boundary and record from the master data (run it
    after `workbench registry import`; ingesting readings needs the meter register)."""
    from workbench.cli.devices import _master_data
    from workbench.core.errors import WorkbenchError

    lake = _lake(lake_root, enterprise)
    md = _master_data(registry_url)
    try:
        n = lake.register_master_data(md)
    except WorkbenchError as exc:
        _fail(str(exc))
    finally:
        md.dispose()
    click.echo(f"{lake.enterprise}: {n['meters']} meters and {n['boundary_nodes']} boundary nodes from the "
               f"master data into {lake.root}")


@lake_group.command("load-demo")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_lake_option
@_enterprise_option
def lake_load_demo(data_dir, lake_root, enterprise):
    """Load a generated demo enterprise into the lake (meters, boundary, rules, readings, ledger)."""
    from workbench.demo.load import load_demo

    _lake(lake_root, enterprise)            # a malformed --enterprise: one clear error
    out = load_demo(data_dir, lake_root, sender=_sender(None), enterprise=enterprise)
    for name, rep in out.items():
        click.echo(f"{name}: {rep['status']}, {rep['rows_curated']:,} curated, "
                   f"{rep['rows_quarantined']:,} quarantined, {rep['rows_duplicate']:,} duplicates")


@click.group("quality")
def quality_group():
    """Data-quality monitoring (rules in YAML)."""


@quality_group.command("report")
@_lake_option
@_enterprise_option
@click.option("--rules", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Rule file (default: the lake's configured rules, else the demo rules).")
@click.option("--period", default=None, help="YYYY, YYYY-MM, YYYY-MM-DD or A..B (default: all data).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--year-factor", type=float, default=None,
              help="Monthly activity against the same month of last year: flagged beyond this factor either way "
                   "(sets year_factor of the rules' activity rules; adds one when there is none).")
@click.option("--meter-factor", type=float, default=None,
              help="Monthly activity against its meters' consumption: flagged beyond this factor either way "
                   "(sets meter_factor of the rules' activity rules; adds one when there is none).")
def quality_report_cmd(lake_root, enterprise, rules, period, out, year_factor, meter_factor):
    """Evaluate the quality rules and write the HTML report (scores, failed rules with examples, plots)."""
    from workbench.lake.quality import RuleError, demo_rules_path, load_rules, with_activity_factors
    from workbench.reports.quality import quality_report

    lake = _lake(lake_root, enterprise)
    if "readings" not in lake.tables():
        _fail(f"the lake at {lake_root} holds no readings yet")
    try:
        rule_set = load_rules(rules or lake.get_state("quality_rules") or demo_rules_path())
        if year_factor is not None or meter_factor is not None:
            rule_set = with_activity_factors(rule_set, year_factor=year_factor, meter_factor=meter_factor)
        res = quality_report(lake, rule_set, period=period, out=out)
    except (RuleError, ValueError) as exc:
        _fail(str(exc))
    s = res["summary"]
    click.echo(json.dumps({k: v for k, v in s.items() if not isinstance(v, (list, dict))}, ensure_ascii=False,
                          default=str, indent=2))
    click.echo(f"report: {res['html']}")
