"""``workbench apps serve``: every app behind one login."""
from __future__ import annotations

import os

import click


@click.group("apps")
def apps_group():
    """The managers' apps (Panel and a Voila dashboard), served behind a login (`workbench users`)."""


@apps_group.command("serve")
@click.option("--address", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=5006, show_default=True)
@click.option("--lake", "lake_root", default=None, help="Lake root (default $WORKBENCH_LAKE or data/lake).")
@click.option("--db", "db_url", default=None,
              help="Users database: SQLAlchemy URL or SQLite file (default $WORKBENCH_USERS or data/users.db).")
@click.option("--oidc", "oidc_path", default=None, envvar="WORKBENCH_OIDC", type=click.Path(dir_okay=False),
              help="Single sign-on (OpenID Connect) beside the password login: a YAML/TOML file (issuer, client_id, "
                   "client_secret_env, …; see docs/architecture.md), or $WORKBENCH_OIDC_* variables.")
@click.option("--alarms-db", "alarms_url", default=None,
              help="The device monitor's alarm store (`workbench devices monitor --alarms-db`): SQLAlchemy URL "
                   "or SQLite file (default $WORKBENCH_ALARMS, else data/alarms.db when it exists).")
@click.option("--dashboard-port", type=click.IntRange(-1, 65535), default=None,
              help="First port of the Voila dashboards (default PORT+1; 0: free ports; -1: no dashboards).")
def apps_serve(address, port, lake_root, db_url, alarms_url, oidc_path, dashboard_port):
    """Serve the apps; prints the address.  Ctrl-C stops."""
    from pathlib import Path

    from workbench.apps.dashboards import DASHBOARDS
    from workbench.apps.server import APPS, serve
    from workbench.cli.errors import fail
    from workbench.cli.users import user_store

    lake_root = Path(lake_root or os.environ.get("WORKBENCH_LAKE", "data/lake"))
    if not lake_root.is_dir():
        fail(f"lake {lake_root}: no such folder (load data with `workbench import` or `make demo`)")
    from workbench.apps.oidc import OIDCError, load_config

    try:
        oidc = load_config(oidc_path)
    except OIDCError as exc:
        fail(str(exc))
    if oidc is not None:
        click.echo(f"single sign-on (OpenID Connect): {oidc.issuer}, client {oidc.client_id}")
    store = user_store(db_url)
    if not store.list():
        fail("no users yet: add one with `workbench users add NAME --role manager --grant ENTERPRISE`")

    alarms = alarm_store(alarms_url)

    def ready(server):
        base = f"http://{address}:{server.port}"
        click.echo(f"apps at {base}/  (login {base}/login)", err=False)
        for path, (zh, en, _) in APPS.items():
            click.echo(f"  {zh} / {en}: {base}/{path}")
        for name, p in server.dashboards.items():
            zh, en, _ = DASHBOARDS[name]
            click.echo(f"  {zh} / {en} (Voila): http://{address}:{p}/")

    try:
        serve(lake_root, store, address=address, port=port, on_ready=ready, alarms_db=alarms, oidc=oidc,
              dashboard_port=dashboard_port)
    except KeyboardInterrupt:
        pass
    finally:
        store.dispose()
        if alarms is not None:
            alarms.dispose()


def alarm_store(url: str | None):
    """The alarm store the live page reads: ``url`` (SQLAlchemy URL or SQLite file), else
    ``$WORKBENCH_ALARMS``, else ``data/alarms.db`` when it exists; ``None``: no monitor."""
    from pathlib import Path

    from workbench.cli.errors import fail
    from workbench.devices.alarms import AlarmError, AlarmStore

    url = url or os.environ.get("WORKBENCH_ALARMS") or ("data/alarms.db" if Path("data/alarms.db").is_file() else None)
    if not url:
        return None
    if "://" not in url:
        if not Path(url).is_file():
            fail(f"alarm store {url}: no such file (the monitor creates it: `workbench devices monitor --alarms-db`)")
        url = f"sqlite:///{Path(url).resolve()}"
    try:
        return AlarmStore(url)
    except AlarmError as exc:
        fail(f"alarm store: {exc}")
