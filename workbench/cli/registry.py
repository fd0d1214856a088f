"""``workbench registry import | show | audit``: the enterprises' master data (workbench.registry)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from workbench.cli.devices import _fail, _who, _who_option


def _store(url: str | None):
    from workbench.registry import MasterData, default_url

    url = url or default_url()
    if "://" not in url:                     # a plain path means a SQLite file
        url = f"sqlite:///{Path(url).resolve()}"
    return MasterData(url)


_registry_option = click.option("--registry", "registry_url", default=None,
                                help="Master-data database: SQLAlchemy URL or SQLite file "
                                     "(default $WORKBENCH_REGISTRY or data/registry.db).")


@click.group("registry")
def registry_group():
    """Master data: enterprises, boundaries, meters, products, supplier accounts (audited)."""


@registry_group.command("import")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@_registry_option
@click.option("--prune", is_flag=True, help="Delete stored nodes, meters, products and accounts the files no longer "
                                             "have (default: keep and report them).")
@click.option("--encoding", default=None, help="Encoding of the CSV files (default: UTF-8, else GB18030, reported).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per enterprise.")
@_who_option
def registry_import(folders, registry_url, prune, encoding, as_json, who):
    """Load enterprises from their folders (enterprise.json, boundary.csv, meters.csv, …)."""
    from workbench.registry import RegistryError, import_enterprise
    from workbench.registry.codes import CodeError

    store = _store(registry_url)
    try:
        for folder in folders:
            try:
                rep = import_enterprise(store, folder, who=_who(who), prune=prune, encoding=encoding)
            except (RegistryError, CodeError) as exc:
                _fail(str(exc))
            if as_json:
                click.echo(json.dumps(rep.as_dict(), ensure_ascii=False))
                continue
            click.echo(f"{rep.enterprise_id}: enterprise {rep.enterprise}")
            for table, c in rep.tables.items():
                click.echo(f"  {table:<15} {c['created']} new, {c['updated']} changed, {c['unchanged']} unchanged"
                           + (f", {c['deleted']} deleted" if c["deleted"] else "")
                           + (f", {c['kept']} kept (not in the files; --prune deletes)" if c["kept"] else ""))
            for f, enc in rep.encodings.items():
                click.echo(f"  {f}: {enc}")
    finally:
        store.dispose()


@registry_group.command("show")
@click.option("--enterprise", "enterprise_id", default=None, help="One enterprise (default: the list).")
@_registry_option
@click.option("--json", "as_json", is_flag=True)
def registry_show(enterprise_id, registry_url, as_json):
    """The enterprises, or one enterprise's master data."""
    from workbench.registry import RegistryError
    from workbench.registry.codes import CodeError

    store = _store(registry_url)
    try:
        if enterprise_id is None:
            table = store.enterprises_table()
            if as_json:
                click.echo(table.to_json(orient="records", force_ascii=False))
            elif table.empty:
                click.echo("no enterprises yet (workbench registry import DIR)")
            else:
                click.echo(table.to_string(index=False))
            return
        try:
            ent = store.enterprise(enterprise_id)
            parts = {t: store.table(t, enterprise_id).drop(columns="enterprise_id")
                     for t in ("boundary_nodes", "meters", "products", "accounts")}
        except (RegistryError, CodeError) as exc:
            _fail(str(exc))
        if as_json:
            click.echo(json.dumps({"enterprise": ent, **{t: json.loads(df.to_json(orient="records", force_ascii=False))
                                                        for t, df in parts.items()}}, ensure_ascii=False, default=str))
            return
        click.echo(f"{ent['enterprise_id']}  {ent.get('name_zh', '')}  {ent.get('name_en', '')}")
        for k in ("uscc", "region", "industry_code", "sector", "identifier_prefix", "timezone"):
            if ent.get(k):
                click.echo(f"  {k:<18} {ent[k]}")
        b = parts["boundary_nodes"]
        click.echo(f"  boundary: {len(b)} nodes ({', '.join(f'{n} {lvl}' for lvl, n in b['level'].value_counts().items())})")
        m = parts["meters"]
        if len(m):
            click.echo(f"  meters: {len(m)} ({int(m['removed'].notna().sum())} removed, "
                       f"{int((m['replaces'].fillna('') != '').sum())} replacements); by source: "
                       + ", ".join(f"{s or '—'} {n}" for s, n in m["source"].value_counts().items()))
        for t in ("products", "accounts"):
            if len(parts[t]):
                click.echo(f"  {t}: " + ", ".join(parts[t].iloc[:, 0].astype(str)))
    finally:
        store.dispose()


@registry_group.command("audit")
@click.option("--enterprise", "enterprise_id", default=None)
@_registry_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def registry_audit(enterprise_id, registry_url, limit):
    """Who changed what, newest last."""
    store = _store(registry_url)
    try:
        log = store.audit_log(enterprise_id)
    finally:
        store.dispose()
    if log.empty:
        click.echo("no changes recorded")
        return
    for r in log.tail(limit).itertuples():
        click.echo(f"{r.at:%Y-%m-%d %H:%M:%S}  {r.who}  {r.what:<6} {r.tbl}  {r.enterprise_id}/{r.key}")
    sys.stdout.flush()
