"""``workbench idnode …``: the enterprise identifier node (seed §10.2.2) — serve the Handle REST API
and register the accounting boundary's nodes as identifiers."""
from __future__ import annotations

import getpass
import os
from pathlib import Path

import click

from workbench.cli.errors import fail, read_input

DEFAULT_BATCH = 200


def _fail(message: str) -> None:
    fail(message)


def _sender(sender):
    return sender or f"user:{getpass.getuser()}"


def register_records(store, records, *, who: str = "system", batch_size: int = DEFAULT_BATCH) -> dict:
    """Idempotent bulk registration: :meth:`HandleStore.put_many` (kept for callers of the CLI module)."""
    return store.put_many(records, who=who, batch_size=batch_size)


@click.group("idnode")
def idnode_group():
    """Enterprise identifier node: Handle-compatible REST API and boundary registration."""


@idnode_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--db", "db_url", required=True, help="SQLAlchemy URL of the handle store, e.g. sqlite:///idnode.db.")
@click.option("--prefix", required=True, help="Enterprise prefix served, e.g. 88.123.4567.")
@click.option("--admin", default=None, help="Prefix administrator INDEX:PREFIX/SUFFIX, e.g. 300:88.123.4567/admin.")
@click.option("--admin-password-env", default=None,
              help="Environment variable holding the admin password (used to create the admin handle "
                   "on first start; never passed on the command line).")
@click.option("--upstream", "upstreams", multiple=True, metavar="PREFIX=URL",
              help="Recursive resolution: forward identifiers under PREFIX (longest match; '*' = any "
                   "other prefix) to the node at URL and cache its answers for their ttl. Repeatable.")
@click.option("--cache-size", type=click.IntRange(min=0), default=100_000, show_default=True,
              help="Own records kept in the resolution cache per worker (0: always read the store).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes (each with its own cache, kept coherent through the store's change feed).")
@click.option("--login-burst", type=click.IntRange(min=0), default=10, show_default=True,
              help="Failed logins a client address may make at once before it gets 429 (0: no limit). "
                   "Per worker process.")
@click.option("--login-per-minute", type=click.FloatRange(min=0, min_open=True), default=6.0, show_default=True,
              help="Failed logins a client address regains per minute.")
@click.option("--auth-threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Password checks (scrypt) running at once per worker, off the event loop.")
def idnode_serve(host, port, db_url, prefix, admin, admin_password_env, upstreams, cache_size, workers,
                 login_burst, login_per_minute, auth_threads):
    """Serve the Handle.net-style JSON REST API for PREFIX from the store at --db.

    Anonymous resolution is never rate-limited; requests with credentials from an address that
    failed to log in too often are answered 429 (Retry-After) until it regains a try.  Refused
    requests are kept in the store (see `workbench idnode refusals`)."""
    import json

    import uvicorn

    from workbench.identifiers.model import IdentifierError, parse_identifier
    from workbench.identifiers.resolver import Upstreams
    from workbench.identifiers.store import HandleStore

    try:
        parse_identifier(f"{prefix}/x")
    except IdentifierError as exc:
        _fail(str(exc))
    try:
        upstream_map = dict(Upstreams.parse(upstreams).items())
    except ValueError as exc:
        _fail(str(exc))
    store = HandleStore(db_url)
    admins = []
    if admin:
        password = os.environ.get(admin_password_env) if admin_password_env else None
        handle = admin.partition(":")[2]
        try:
            exists = bool(handle) and store.exists(handle)
        except IdentifierError as exc:
            _fail(f"--admin: {exc}")
        if not exists:
            if not admin_password_env:
                _fail("--admin handle does not exist yet: give --admin-password-env VAR to create it")
            if not password:
                _fail(f"environment variable {admin_password_env} is not set or empty")
        try:
            if store.ensure_admin(admin, password or ""):
                click.echo(f"created admin handle {handle}", err=True)
        except (IdentifierError, ValueError) as exc:
            _fail(f"--admin: {exc}")
        admins.append(admin)
    store.engine.dispose()
    config = {"db": db_url, "prefix": prefix, "admins": admins, "upstreams": upstream_map,
              "cache_size": cache_size, "login_burst": login_burst, "login_per_minute": login_per_minute,
              "auth_concurrency": auth_threads}
    try:
        app_from_config(config)                     # validate in the parent: fail before forking
    except (IdentifierError, ValueError) as exc:
        _fail(str(exc))
    os.environ[CONFIG_ENV] = json.dumps(config)
    uvicorn.run("workbench.cli.idnode:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level="info", access_log=False)


CONFIG_ENV = "WORKBENCH_IDNODE_CONFIG"


def app_from_config(config: dict):
    """The node app described by ``config`` (keys db, prefix, admins, upstreams, cache_size,
    login_burst, login_per_minute, auth_concurrency)."""
    from workbench.identifiers.server import create_app
    from workbench.identifiers.store import HandleStore

    extra = {k: config[k] for k in ("login_burst", "login_per_minute", "auth_concurrency") if k in config}
    return create_app(HandleStore(config["db"]), config["prefix"], admins=config.get("admins", []),
                      upstreams=config.get("upstreams") or None, cache_size=config.get("cache_size", 100_000),
                      **extra)


def app_from_env():
    """uvicorn factory for each worker process: the config comes from ``$WORKBENCH_IDNODE_CONFIG``."""
    import json

    return app_from_config(json.loads(os.environ[CONFIG_ENV]))


@idnode_group.command("refusals")
@click.option("--db", "db_url", required=True, help="SQLAlchemy URL of the handle store.")
@click.option("--since", default=None, help="Only since this UTC time, e.g. 2026-05-01T08:00.")
@click.option("--client", default=None, help="Only from this client address.")
@click.option("--status", type=int, default=None, help="Only with this HTTP status (e.g. 403, 429).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def idnode_refusals(db_url, since, client, status, limit, as_json):
    """Requests the node refused (its security log), newest first: when, client, who, what, why."""
    import datetime as dt
    import json

    from workbench.identifiers.store import HandleStore

    try:
        when = dt.datetime.fromisoformat(since) if since else None
    except ValueError:
        _fail(f"--since {since!r}: expected an ISO time such as 2026-05-01T08:00")
    if when is not None and when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    for r in HandleStore(db_url).refusals(since=when, client=client, status=status, limit=limit):
        if as_json:
            click.echo(json.dumps({**r, "at": r["at"].isoformat() + "Z"}, ensure_ascii=False))
        else:
            click.echo(f"{r['at']:%Y-%m-%dT%H:%M:%S}Z {r['client']} {r['who']} {r['method']} {r['path']} "
                       f"→ {r['status']} rc {r['rc']}: {r['reason']}")


@idnode_group.group("token")
def token_group():
    """Bearer tokens for services (gateways, apps) acting as an identity of this node."""


@token_group.command("issue")
@click.option("--db", "db_url", required=True, help="SQLAlchemy URL of the handle store.")
@click.option("--identity", required=True, help="INDEX:PREFIX/SUFFIX the token acts as (its HS_ADMIN rights apply).")
@click.option("--label", default="", help="What the token is for, e.g. gateway-1 (used to revoke).")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Expires after this many days.")
@click.option("--sender", default=None, help="Who issues it (audit; default: user:$USER).")
def token_issue(db_url, identity, label, days, sender):
    """Print a new token (shown once; only its digest is stored)."""
    import datetime as dt

    from workbench.identifiers.model import IdentifierError
    from workbench.identifiers.store import HandleStore, StoreError

    expires = (dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=days)) if days else None
    try:
        token = HandleStore(db_url).issue_token(identity, label=label, expires=expires, who=_sender(sender))
    except StoreError as exc:
        _fail(exc.message)
    except (IdentifierError, ValueError) as exc:
        _fail(str(exc))
    click.echo(token)


@token_group.command("revoke")
@click.option("--db", "db_url", required=True, help="SQLAlchemy URL of the handle store.")
@click.option("--identity", default=None, help="Revoke the tokens of this INDEX:PREFIX/SUFFIX.")
@click.option("--label", default=None, help="Revoke the tokens with this label.")
@click.option("--token-env", default=None, help="Environment variable holding the token to revoke.")
@click.option("--sender", default=None, help="Who revokes (audit; default: user:$USER).")
def token_revoke(db_url, identity, label, token_env, sender):
    """Revoke tokens (by identity, label or the token itself); prints how many."""
    from workbench.identifiers.model import IdentifierError
    from workbench.identifiers.store import HandleStore

    token = os.environ.get(token_env) if token_env else None
    if token_env and not token:
        _fail(f"environment variable {token_env} is not set or empty")
    try:
        n = HandleStore(db_url).revoke_tokens(identity=identity, label=label, token=token, who=_sender(sender))
    except (IdentifierError, ValueError) as exc:
        _fail(str(exc))
    click.echo(f"{n} token(s) revoked")


@idnode_group.command("register-boundary")
@click.argument("boundary_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--db", "db_url", required=True, help="SQLAlchemy URL of the handle store.")
@click.option("--prefix", required=True, help="Enterprise prefix, e.g. 88.123.4567.")
@click.option("--sender", default=None, help="Who registers (audit; default: user:$USER).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH, show_default=True,
              help="Records per transaction.")
def idnode_register_boundary(boundary_csv, db_url, prefix, sender, batch_size):
    """Register every node of BOUNDARY_CSV as an identifier (idempotent: re-running changes nothing)."""
    from workbench.cli.lake import _read_boundary_file
    from workbench.core.boundary import BoundaryError
    from workbench.identifiers.model import IdentifierError, records_from_boundary
    from workbench.identifiers.store import HandleStore, StoreError

    boundary = read_input(boundary_csv, _read_boundary_file)
    try:
        records = records_from_boundary(boundary, prefix)
    except (BoundaryError, IdentifierError, KeyError, ValueError) as exc:
        _fail(str(exc))
    store = HandleStore(db_url)
    try:
        counts = register_records(store, records, who=_sender(sender), batch_size=batch_size)
    except StoreError as exc:
        _fail(exc.message)
    click.echo(f"{counts['total']} nodes: {counts['new']} new, {counts['updated']} updated, "
               f"{counts['unchanged']} unchanged")


@idnode_group.command("register")
@click.option("--enterprise", "enterprise_id", required=True, help="Enterprise (enterprise_id in the master data).")
@click.option("--registry", "registry_url", default=None,
              help="Master-data database: SQLAlchemy URL or SQLite file (default $WORKBENCH_REGISTRY or "
                   "data/registry.db).")
@click.option("--db", "db_url", required=True, help="SQLAlchemy URL of the handle store.")
@click.option("--prefix", default=None,
              help="Enterprise prefix (default: the enterprise's identifier_prefix in the master data).")
@click.option("--sender", default=None, help="Who registers (audit; default: user:$USER).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH, show_default=True,
              help="Records per transaction.")
def idnode_register(enterprise_id, registry_url, db_url, prefix, sender, batch_size):
    """Register ENTERPRISE's boundary nodes and meters (removed ones too: their history keeps
    resolving) from the master data as identifiers; a meter's identifier is its identifier in the
    master data, else its boundary node's, else PREFIX/meter.<meter_id>.  Idempotent."""
    from workbench.cli.common import master_data
    from workbench.core.errors import WorkbenchError
    from workbench.identifiers.model import records_from_master_data
    from workbench.identifiers.store import HandleStore, StoreError

    md = master_data(registry_url)
    try:
        ent = md.enterprise(enterprise_id)
        prefix = prefix or ent.get("identifier_prefix")
        if not prefix:
            _fail(f"enterprise {ent['enterprise_id']!r} has no identifier_prefix in the master data; give --prefix")
        boundary, meters = md.boundary(ent["enterprise_id"]), md.meters(ent["enterprise_id"])
        records = records_from_master_data(boundary, meters, prefix)
    except WorkbenchError as exc:
        _fail(str(exc))
    finally:
        md.dispose()
    store = HandleStore(db_url)
    try:
        counts = register_records(store, records, who=_sender(sender), batch_size=batch_size)
    except StoreError as exc:
        _fail(exc.message)
    finally:
        store.engine.dispose()
    click.echo(f"{ent['enterprise_id']}: {counts['total']} identifiers ({len(boundary.nodes)} boundary nodes, "
               f"{len(meters)} meters): {counts['new']} new, {counts['updated']} updated, "
               f"{counts['unchanged']} unchanged")


if __name__ == "__main__":  # pragma: no cover  (python -m workbench.cli.idnode serve …)
    idnode_group()
