"""``workbench import FILE…`` — one command for every file a plant has (:mod:`workbench.imports`)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

DEFAULT_LAKE = os.environ.get("WORKBENCH_LAKE", "data/lake")


def _columns(values) -> dict:
    out = {}
    for v in values:
        if "=" not in v:
            raise click.BadParameter(f"'{v}': write HEADER=MEANING, e.g. 读数=value", param_hint="--column")
        h, m = v.rsplit("=", 1)
        m = m.strip()
        ok = {"ts", "date", "time", "meter_id", "value", "unit", "quantity", "register", "quality", "-", "ignore",
              "item", "source", "period", "facility", "node_id", "document"}
        if m not in ok:
            raise click.BadParameter(f"'{v}': the meaning must be one of {', '.join(sorted(ok))}", param_hint="--column")
        out[h.strip()] = "-" if m == "ignore" else m
    return out


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--lake", "lake_root", default=DEFAULT_LAKE, show_default=True, help="Lake root; env WORKBENCH_LAKE.")
@click.option("--enterprise", default=None, envvar="WORKBENCH_ENTERPRISE", help="The enterprise's lake (its id).")
@click.option("--dry-run", is_flag=True, help="Show what would be stored, quarantined and guessed; store nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (kind, encoding, rows, stored, "
              "quarantined, totals, guesses …).")
@click.option("--mapping", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Replay a mapping YAML written by --save-mapping (flags still override it).")
@click.option("--save-mapping", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the accepted guesses to this mapping YAML.")
@click.option("--kind", type=click.Choice(["readings", "activity", "statistics", "production", "invoice", "manual"]),
              default=None, help="What the file is (default: detected).")
@click.option("--encoding", type=click.Choice(["utf-8", "utf-8-sig", "gbk", "gb18030"]), default=None,
              help="Text encoding of a CSV (default: detected).")
@click.option("--sheet", default=None, help="Workbook sheet (default: the first with a table).")
@click.option("--header-row", "header_rows", type=click.IntRange(min=1), multiple=True,
              help="Row number(s) of the header (repeat for a multi-row header).")
@click.option("--column", "columns", multiple=True, metavar="HEADER=MEANING",
              help="What a column is: ts, date, time, meter_id, value, unit, quantity, register, quality, ignore.")
@click.option("--layout", type=click.Choice(["long", "wide"]), default=None,
              help="Readings: one row per reading (long) or one column per meter (wide).")
@click.option("--unit", default=None, help="Unit of the values, e.g. kWh, 万kWh, m3, t.")
@click.option("--register", type=click.Choice(["interval", "cumulative"]), default=None,
              help="The values are interval consumption or cumulative register readings.")
@click.option("--meter", default=None, help="The meter of a file without a meter column.")
@click.option("--period", default=None, help="The month (YYYY-MM) or year of an activity table without one.")
@click.option("--node", default=None, help="Boundary node of proposed meters and of production rows.")
@click.option("--decimal-comma/--no-decimal-comma", default=None, help="Numbers written 12,5 (default: detected).")
@click.option("--register-meters", is_flag=True, help="Register the meters the file names that the register "
              "does not know (else their readings are quarantined).")
@click.option("--registry", "registry_url", default=None, help="Master data to register meters in "
              "(SQLAlchemy URL; default: the lake's own meter register).")
@click.option("--review-queue", type=click.Path(dir_okay=False, path_type=Path), envvar="WORKBENCH_REVIEW_QUEUE",
              default=Path("data/invoice_review.db"), show_default=True,
              help="Where invoice fields below the trust threshold wait for a reviewer.")
@click.option("--sender", default=None, help="Who delivers the file (default: user:$USER).")
@click.option("--source", default="file", show_default=True, help="Name of the sending system.")
def import_command(files, lake_root, enterprise, dry_run, as_json, mapping, save_mapping, kind, encoding, sheet,
                   header_rows, columns, layout, unit, register, meter, period, node, decimal_comma, register_meters,
                   registry_url, review_queue, sender, source):
    """Import files as plants export them: meter readings, activity tables, energy statistics
    (205-1), production and value added, bills and invoices (images, PDFs), records kept by hand.

    Everything is detected (kind, encoding, header rows, columns, unit, meter, register type) and
    every guess is printed with the flag that overrides it; --dry-run stores nothing."""
    from workbench import imports
    from workbench.cli.lake import _lake

    if files and str(files[0]) == "manual" and not files[0].exists():   # the former `workbench import manual FILE`
        files, kind = files[1:], kind or "manual"
        if not files:
            raise click.UsageError("workbench import manual FILE: which file?")

    hints = {"kind": kind, "encoding": encoding, "sheet": sheet, "header_rows": list(header_rows) or None,
             "columns": _columns(columns), "layout": layout, "unit": unit, "register": register, "meter": meter,
             "period": period, "node": node, "decimal_comma": decimal_comma}
    replay = imports.load_mapping(mapping) if mapping else None
    lake = _lake(lake_root, enterprise)
    registry = None
    if registry_url:          # a URL or a SQLite file, as every command takes it
        from workbench.cli.common import master_data

        registry = master_data(registry_url)
    outcomes, failed = [], []
    for f in files:
        if len(files) > 1 and save_mapping:
            target = save_mapping.with_name(f"{save_mapping.stem}.{f.stem}{save_mapping.suffix}")
        else:
            target = save_mapping
        try:
            out = imports.import_file(f, lake=lake, dry_run=dry_run, hints=hints, mapping=replay,
                                      register_new_meters=register_meters, registry=registry, sender=sender,
                                      source=source, save_mapping_to=target, review_queue=review_queue)
        except Exception as exc:
            if not _is_user_error(exc):
                raise
            failed.append((f, _one_line(exc, f)))
            continue
        outcomes.append(out)
        if not as_json:
            _print(out)
    if as_json:
        objs = [o.to_json() for o in outcomes]
        for f, msg in failed:
            objs.append({"file": str(f), "error": msg})
        if len(objs) == 1:
            click.echo(json.dumps(objs[0], ensure_ascii=False, default=str))
        else:
            click.echo(json.dumps({"files": objs, "rows": sum(o.get("rows", 0) for o in objs),
                                   "stored": sum(o.get("stored", 0) for o in objs),
                                   "quarantined": sum(o.get("quarantined", 0) for o in objs)},
                                  ensure_ascii=False, default=str))
    if failed:
        if not as_json:
            for _, msg in failed:
                click.echo(f"Error: {msg}", err=True)
        raise SystemExit(2)


def _is_user_error(exc: Exception) -> bool:
    from workbench.core.errors import WorkbenchError

    return isinstance(exc, (WorkbenchError, ValueError, KeyError, OSError, UnicodeError))


def _one_line(exc: Exception, path: Path) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, KeyError):
        msg = f"missing {msg}"
    if str(path) not in msg and path.name not in msg:
        msg = f"{path}: {msg}"
    return msg


def _print(out) -> None:
    import pandas as pd

    p = out.plan
    head = f"{out.path} — {p.kind}"
    if p.encoding:
        head += f", {p.encoding}"
    head += f", {out.rows:,} row(s)"
    click.echo(head + ("  (dry run: nothing stored)" if out.dry_run else ""))
    if p.guesses:
        click.echo("Guesses (the flag on the right overrides each):")
        w = max(len(g.what) for g in p.guesses)
        for g in p.guesses:
            mark = "given" if g.given else g.why
            click.echo(f"  {g.what:<{w}}  {g.value:<14} {mark}" + ("" if g.given else f"   [{g.flag}]"))
    for warn in p.warnings:
        click.echo(f"  ! {warn}")
    if len(out.first_rows):
        click.echo("First rows as stored:")
        cols = [c for c in out.first_rows.columns if c not in ("batch_id", "enterprise_id", "identifier", "payload")]
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            click.echo("  " + out.first_rows[cols].to_string(index=False).replace("\n", "\n  "))
    if out.totals:
        click.echo("Totals (normalised units):")
        for t in out.totals:
            who = t.get("meter") or t.get("item")
            extra = "   (meter not registered)" if t.get("registered") is False else ""
            click.echo(f"  {who:<24} {t['quantity']:>16,.3f} {t['unit']}{extra}")
    click.echo(f"{'Would store' if out.dry_run else 'Stored'}: {out.stored:,} row(s); "
               f"{'would quarantine' if out.dry_run else 'quarantined'}: {out.quarantined:,}")
    q = out.quarantine
    if q is not None and len(q):
        reasons = q["reason"].astype(str).str.split(":").str[0].value_counts()
        for r, n in reasons.head(8).items():
            ex = q[q["reason"].astype(str).str.startswith(r)].iloc[0]
            row = ex.get("row")
            where = f"row {int(row)}" if row is not None and not pd.isna(row) else ""
            click.echo(f"  {n:>6,} × {r}" + (f"   e.g. {where}: {ex['reason']}" if where else f"   e.g. {ex['reason']}"))
    if out.review:
        click.echo("Fields to review (below the trust threshold):")
        for r in out.review:
            click.echo(f"  {r['field']:<12} {str(r['value']):<24} confidence {r['confidence']}  {r['reason'] or ''}")
    if len(out.proposed_meters):
        pm = out.proposed_meters
        verb = "registered" if out.registered_meters else "proposed for registration (--register-meters)"
        click.echo(f"Meters not in the register, {verb}:")
        for r in pm.to_dict("records"):
            click.echo(f"  {r['meter_id']}: unit {r['unit'] or '?'}, {r['register']}, quantity {r['quantity']}"
                       + (f", node {r['node_id']}" if r["node_id"] else ", no node (--node)"))
    if out.batch_id:
        click.echo(f"Batch {out.batch_id}: {out.status}" + (f" — {out.message}" if out.message else ""))
    if out.mapping_path:
        click.echo(f"Mapping: {out.mapping_path} (replay with --mapping)")
    elif out.dry_run:
        click.echo("Keep these guesses for next time: --save-mapping M.yaml (then --mapping M.yaml)")
