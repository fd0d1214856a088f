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
@click.option("--labels-db", "labels_url", default=None,
              help="The product label store for the review page (`workbench product label --db`): SQLAlchemy URL "
                   "or SQLite file (default $WORKBENCH_LABELS, else data/labels.db when it exists).")
@click.option("--certification-db", "certification_url", default=None,
              help="The grade certification store for the review page (`workbench grade --submit --db`): SQLAlchemy "
                   "URL or SQLite file (default $WORKBENCH_CERTIFICATION, else data/certification.db when it exists).")
@click.option("--idnode", "idnode_url", default=None,
              help="The identifier node approved labels are published to (default $WORKBENCH_IDNODE_URL; none: "
                   "approved labels wait). Credentials from the environment only: a service token in "
                   "$WORKBENCH_IDNODE_TOKEN, or --idnode-user with the password in $WORKBENCH_IDNODE_PASSWORD.")
@click.option("--idnode-user", default=None, metavar="INDEX:PREFIX/SUFFIX",
              help="Log in to the node as this identity (its password from the variable --idnode-secret-env names).")
@click.option("--idnode-secret-env", default=None, metavar="NAME",
              help="Environment variable holding the node's password (with --idnode-user; default "
                   "WORKBENCH_IDNODE_PASSWORD) or token (default WORKBENCH_IDNODE_TOKEN).")
def apps_serve(address, port, lake_root, db_url, alarms_url, oidc_path, dashboard_port, labels_url,
               certification_url, idnode_url, idnode_user, idnode_secret_env):
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
    services = review_services(labels_url, certification_url, idnode_url, idnode_user, idnode_secret_env)
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
        review = [f"{k} {v.url if k == 'idnode' else v.engine.url.render_as_string(hide_password=True)}"
                  for k, v in services.items() if v is not None]
        click.echo(f"  review: {', '.join(review) or 'no stores configured (--certification-db, --labels-db)'}")

    try:
        serve(lake_root, store, address=address, port=port, on_ready=ready, alarms_db=alarms, oidc=oidc,
              dashboard_port=dashboard_port, services=services)
    except KeyboardInterrupt:
        pass
    finally:
        store.dispose()
        if alarms is not None:
            alarms.dispose()
        for s in (services["labels"], services["certificates"]):
            if s is not None:
                s.dispose()


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


def _store_url(url: str | None, env: str, default: str, what: str, how: str):
    """``url`` (a plain path is a SQLite file that must exist), else ``$env``, else ``default`` when
    it exists; ``None``: not configured."""
    from pathlib import Path

    from workbench.cli.errors import fail

    url = url or os.environ.get(env) or (default if Path(default).is_file() else None)
    if not url or "://" in url:
        return url
    if not Path(url).is_file():
        fail(f"{what} {url}: no such file ({how})")
    return f"sqlite:///{Path(url).resolve()}"


def review_services(labels_url, certification_url, idnode_url, idnode_user, secret_env) -> dict:
    """The review page's stores and identifier node (``labels``, ``certificates``, ``idnode``; each
    ``None`` when not configured).  The node's secret is read from the environment, never taken
    from the command line."""
    import re

    from workbench.apps.review import IdNodeAccess
    from workbench.cli.errors import fail
    from workbench.grading.certificates import CertificationError, GradeCertificates
    from workbench.products.errors import LabelError
    from workbench.products.store import LabelStore

    labels = certificates = idnode = None
    url = _store_url(labels_url, "WORKBENCH_LABELS", "data/labels.db", "label store",
                     "`workbench product label --db` creates it")
    if url:
        try:
            labels = LabelStore(url)
        except LabelError as exc:
            fail(f"--labels-db: {exc}")
    url = _store_url(certification_url, "WORKBENCH_CERTIFICATION", "data/certification.db", "certification store",
                     "`workbench grade --submit --db` creates it")
    if url:
        try:
            certificates = GradeCertificates(url)
        except CertificationError as exc:
            fail(f"--certification-db: {exc}")
    node = idnode_url or os.environ.get("WORKBENCH_IDNODE_URL")
    if node:
        if not re.match(r"^https?://[^\s/]+", node):
            fail(f"--idnode {node!r}: need the identifier node's URL, http(s)://host[:port]")
        user = idnode_user or os.environ.get("WORKBENCH_IDNODE_USER") or None
        env = secret_env or ("WORKBENCH_IDNODE_PASSWORD" if user else "WORKBENCH_IDNODE_TOKEN")
        secret = os.environ.get(env) or ""
        if not secret:
            why = (f"set ${env} to the node's " + ("password of " + user if user else "service token "
                   "(`workbench idnode token issue`), or give --idnode-user with a password in "
                   "$WORKBENCH_IDNODE_PASSWORD"))
            if idnode_url:
                fail(f"--idnode {node}: {why}")
            click.echo(f"$WORKBENCH_IDNODE_URL {node}: approved labels are not published ({why})", err=True)
            return {"labels": labels, "certificates": certificates, "idnode": None}
        idnode = (IdNodeAccess(node.rstrip("/"), username=user, password=secret) if user
                  else IdNodeAccess(node.rstrip("/"), token=secret))
    return {"labels": labels, "certificates": certificates, "idnode": idnode}
