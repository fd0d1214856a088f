"""``workbench lake …``, ``workbench import …`` and ``workbench quality …`` commands."""
from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import click

from workbench.cli.errors import describe, fail, read_input
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
    fail(message)


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

    if prefix:
        _check_prefix(prefix)
    # the side files first: a bad one is refused before anything is stored
    the_mapping = read_input(mapping, _read_mapping, label="--mapping") if mapping else None
    the_meters = read_input(meters, _read_meters_file, label="--meters") if meters else None
    lake = _lake(lake_root, enterprise)
    if the_meters is not None:
        lake.register_meters(the_meters)
    registry = None
    if identifiers_at:
        if not prefix:
            _fail("--identifiers needs --prefix")
        registry = _source_registry(identifiers_at, prefix, lake)
    try:
        result = file_connector.read_file(file, kind=kind, source=source)
        rep = ingest(lake, result, sender=_sender(sender), mapping=the_mapping, identifiers=registry)
    except (ValueError, KeyError) as exc:
        _fail(str(exc))
    _refuse_if_nothing_stored(lake, rep, file)
    _print_report(rep)


def _check_prefix(prefix: str) -> None:
    from workbench.identifiers.model import IdentifierError, parse_identifier

    try:
        parse_identifier(f"{prefix}/x")
    except IdentifierError as exc:
        _fail(f"--prefix {prefix!r}: {exc}")


def _read_mapping(path: Path):
    """A mapping file (CSV or YAML list of rows) with the columns a mapping needs."""
    import pandas as pd
    import yaml

    from workbench.ingestion.mapping import Mapping

    if path.suffix.lower() in (".yaml", ".yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        rows = doc.get("mappings", doc) if isinstance(doc, dict) else doc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{path}: a mapping file is a list of rows (source, kind, code, and what the code "
                             "maps to), or a mapping with such a list under 'mappings'")
        table = pd.DataFrame(rows)
    else:
        import io

        from workbench.core.encodings import decode_text

        text = decode_text(path.read_bytes())
        if text is None:
            raise ValueError(f"{path}: not text in UTF-8 or GB18030")
        table = pd.read_csv(io.StringIO(text[0]), dtype=str, keep_default_na=False)
    missing = [c for c in ("kind", "code") if c not in table.columns]
    if missing:
        raise ValueError(f"{path}, row 1: column(s) {', '.join(missing)} missing — a mapping needs source, kind, code "
                         f"and meter_id/item/node_id (headers are: {', '.join(map(str, table.columns))[:120]})")
    return Mapping(table, origin=str(path))


def _read_meters_file(path: Path):
    """A hand-written ``meters.csv`` (only ``meter_id, node_id, unit`` required), its cells checked:
    a capacity that is no number or a date that is no date names its row and column."""
    import pandas as pd

    from workbench.core.meters import read_meters

    m = read_meters(path)
    for c in ("node_id", "unit"):
        if c not in m.columns:
            raise ValueError(f"{path}, row 1: column '{c}' is missing (a meters file needs meter_id, node_id, unit)")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=_encoding_of(path))
    for c in ("rollover",):
        if c in raw:
            bad = raw[c].str.strip().ne("") & pd.to_numeric(raw[c], errors="coerce").isna()
            if bad.any():
                i = int(bad.idxmax())
                raise ValueError(f"{path}, row {i + 2}, column '{c}': {raw.at[i, c]!r} is not a number")
    for c in ("installed", "removed"):
        if c in raw:
            bad = raw[c].str.strip().ne("") & pd.to_datetime(raw[c], errors="coerce", format="mixed").isna()
            if bad.any():
                i = int(bad.idxmax())
                raise ValueError(f"{path}, row {i + 2}, column '{c}': {raw.at[i, c]!r} is not a date "
                                 "(e.g. 2024-03-01)")
    reg = m["register"].astype(str).str.strip().str.lower() if "register" in m else None
    if reg is not None:
        bad = ~reg.isin(["", "interval", "cumulative", "nan"])
        if bad.any():
            i = int(bad.idxmax())
            raise ValueError(f"{path}, row {i + 2}, column 'register': {m.at[i, 'register']!r} is neither interval "
                             "nor cumulative")
    return m


def _encoding_of(path: Path) -> str:
    from workbench.core.encodings import decode_text

    found = decode_text(path.read_bytes())
    return found[1] if found else "utf-8"


def _refuse_if_nothing_stored(lake, rep, file: Path) -> None:
    """A file none of whose rows could be stored is refused (exit 2) with the first row's reason —
    the raw bytes and the quarantine stay in the lake for inspection."""
    if rep.rows_curated or rep.rows_duplicate or not rep.rows_quarantined:
        return
    reason = ""
    try:
        q = lake.sql(f"SELECT \"row\", reason FROM quarantine WHERE batch_id = '{rep.batch_id}' "
                     "ORDER BY TRY_CAST(\"row\" AS BIGINT) NULLS LAST LIMIT 1")
        if len(q):
            row = q.iloc[0]["row"]
            reason = f" — row {row}: {q.iloc[0]['reason']}" if str(row) not in ("", "None", "nan") else \
                f" — {q.iloc[0]['reason']}"
    except Exception:  # noqa: BLE001 - the reason is a courtesy; the refusal stands without it
        reason = ""
    _fail(f"{file}: none of its {rep.rows_quarantined} row(s) could be stored{reason} (all quarantined in batch "
          f"{rep.batch_id}: workbench lake sql \"SELECT * FROM quarantine WHERE batch_id = '{rep.batch_id}'\")")


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
    if before is not None:
        import datetime as dt

        try:
            dt.date.fromisoformat(before)
        except ValueError:
            _fail(f"--before {before!r}: not a date — write YYYY-MM-DD, e.g. 2025-03-01")
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
        _fail(f"the query: {str(exc).splitlines()[0]}")
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
    from workbench.cli.common import master_data
    from workbench.core.errors import WorkbenchError

    lake = _lake(lake_root, enterprise)
    md = master_data(registry_url)
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
    from workbench.core.errors import WorkbenchError
    from workbench.demo.load import load_demo

    _lake(lake_root, enterprise)            # a malformed --enterprise: one clear error
    check_demo_folder(data_dir)
    try:
        out = load_demo(data_dir, lake_root, sender=_sender(None), enterprise=enterprise)
    except (WorkbenchError, ValueError, KeyError) as exc:
        _fail(describe(exc) if str(data_dir) in str(exc) else f"{data_dir}: {describe(exc)}")
    for name, rep in out.items():
        click.echo(f"{name}: {rep['status']}, {rep['rows_curated']:,} curated, "
                   f"{rep['rows_quarantined']:,} quarantined, {rep['rows_duplicate']:,} duplicates")


def check_period_spec(text: str, option: str) -> None:
    """YYYY, YYYY-MM, YYYY-MM-DD or A..B of those — a month 13 or a 30 February is refused in words."""
    import datetime as dt
    import re

    for part in text.split("..") if ".." in text else [text]:
        part = part.strip()
        m = re.fullmatch(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?", part)
        try:
            if not m:
                raise ValueError
            dt.date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
        except ValueError:
            _fail(f"{option} {text!r}: {part!r} is no real year, month or day (YYYY, YYYY-MM, YYYY-MM-DD or A..B)")


def _read_json_object(path: Path) -> dict:
    import json

    doc = json.loads(path.read_text(encoding="utf-8-sig"))
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: must be a JSON object ({{\"enterprise_id\": …, \"name_zh\": …}}), not "
                         f"{type(doc).__name__.replace('list', 'a list').replace('str', 'text')}")
    return doc


def _read_boundary_file(path: Path):
    import io

    import pandas as pd

    from workbench.core.boundary import Boundary
    from workbench.core.encodings import decode_text

    text = decode_text(path.read_bytes())
    if text is None:
        raise ValueError(f"{path}: not text in UTF-8 or GB18030")
    df = pd.read_csv(io.StringIO(text[0]), dtype=str, keep_default_na=False)
    missing = [c for c in ("node_id", "parent_id", "level") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}, row 1: column(s) {', '.join(missing)} missing (a boundary needs node_id, "
                         "parent_id, level)")
    return Boundary(df)


def _read_readings_parquet(path: Path):
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    missing = [c for c in ("meter_id", "ts", "value") if c not in names]
    if missing:
        raise ValueError(f"{path}: column(s) {', '.join(missing)} missing (readings need meter_id, ts, value)")
    return names


def _read_activity_file(path: Path):
    from workbench.core.activity import read_activity

    return read_activity(path)


def check_demo_folder(data_dir: Path, *, master_data: bool = False) -> None:
    """Refuse a demo folder with a bad file before anything is loaded: one line naming the file.
    With ``master_data`` the enterprise's record, boundary and meters are checked by the registry's
    import (``workbench registry import``) instead."""
    data_dir = Path(data_dir)
    files = [("readings.parquet", "parquet", _read_readings_parquet, True),
             ("activity.csv", "text", _read_activity_file, True)]
    if not master_data:
        files = [("enterprise.json", "text", _read_json_object, False), ("meters.csv", "text", _read_meters_file, True),
                 ("boundary.csv", "text", _read_boundary_file, True)] + files
    for name, expect, reader, required in files:
        path = data_dir / name
        if not path.exists():
            if required:
                _fail(f"{path}: missing (a demo folder holds enterprise.json, boundary.csv, meters.csv, "
                      "readings.parquet and activity.csv)")
            continue
        read_input(path, reader, expect=expect)


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
    from workbench.lake.quality import (
        RuleError,
        demo_rules_path,
        load_rules,
        with_activity_factors,
    )
    from workbench.reports.quality import quality_report

    if rules:                                       # a bad rule file or period: refused before the lake is read
        read_input(rules, load_rules, label="--rules")
    if period:
        check_period_spec(period, "--period")
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
