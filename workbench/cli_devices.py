"""``workbench devices …``: the collection-device registry and the broker configuration generated
from it (seed §7.3 b access security, §7.4 device management)."""
from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import click

DEFAULT_DB = "sqlite:///devices.db"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _who(who):
    return who or f"user:{getpass.getuser()}"


def _registry(db: str, prefix: str | None = None):
    from workbench.devices import DeviceRegistry

    if "://" not in db:                     # a plain path means a SQLite file
        db = f"sqlite:///{Path(db).resolve()}"
    return DeviceRegistry(db, prefix=prefix)


_db_option = click.option("--db", default=DEFAULT_DB, show_default=True,
                          help="Registry database: SQLAlchemy URL (sqlite:///…, postgresql+psycopg://…) or a file path.")
_who_option = click.option("--who", default=None, help="Actor recorded in the audit table (default user:<login>).")


@click.group("devices")
def devices_group():
    """Collection devices: registry, credentials and Mosquitto access control."""


@devices_group.command("register-demo")
@_db_option
@click.option("--prefix", required=True, help="Enterprise identifier prefix, e.g. 88.123.4567.")
@click.option("--meters", "meters", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="meters.csv of the demo enterprise.")
@click.option("--boundary", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="boundary.csv (checks nodes, gives facilities and meter identifiers).")
@click.option("--credentials", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the new {device: password} mapping here (JSON, mode 0600). Without it the "
                   "passwords are lost.")
@_who_option
def register_demo(db, prefix, meters, boundary, credentials, who):
    """One device per demo meter plus one collector per facility, with fresh passwords."""
    from workbench.boundary import Boundary, BoundaryError
    from workbench.devices import DeviceError, write_credentials

    reg = _registry(db, prefix)
    try:
        b = Boundary.read_csv(boundary) if boundary else None
        creds = reg.register_demo(meters, prefix, b, who=_who(who))
    except (DeviceError, BoundaryError) as exc:
        _fail(str(exc))
    if credentials:
        write_credentials(credentials, creds, merge=True)
    n = len(reg.list())
    click.echo(f"registered {len(creds)} devices with credentials ({n} in the registry)"
               + (f"; credentials written to {credentials}" if credentials else
                  "; passwords NOT saved (use --credentials FILE)"))


@devices_group.command("broker-config")
@_db_option
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--root", default="wb", show_default=True, help="Topic root.")
@click.option("--port", default=1883, show_default=True, type=int)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Listener address.")
@click.option("--user", default=None, help="Mosquitto 'user' option (the account it drops to when started as root).")
@click.option("--credentials", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write passwords of newly created platform users (default OUT/platform-credentials.json, 0600).")
@_who_option
def broker_config(db, out, root, port, bind, user, credentials, who):
    """Write mosquitto.conf, passwd and acl from the registry (reload a running broker with SIGHUP)."""
    from workbench.devices import DeviceError, write_credentials
    from workbench.devices.broker import write_broker_config

    reg = _registry(db)
    try:
        files = write_broker_config(reg, out, root=root, port=port, bind=bind, user=user, who=_who(who))
    except DeviceError as exc:
        _fail(str(exc))
    for p in files:
        click.echo(str(p))
    if files.new_credentials:
        path = credentials or Path(out) / "platform-credentials.json"
        write_credentials(path, files.new_credentials, merge=True)
        click.echo(f"new platform users {sorted(files.new_credentials)}: passwords written to {path}")
    click.echo(f"run: mosquitto -c {files.conf}")


@devices_group.command("list")
@_db_option
@click.option("--status", default=None, help="Only devices with this status (active, isolated, retired).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_devices(db, status, as_json):
    """Registered devices (never their credentials)."""
    for d in _registry(db).list(status=status):
        if as_json:
            click.echo(json.dumps(d.public(), ensure_ascii=False))
        else:
            q = ",".join(f"{k}[{u}]" for k, u in d.quantities.items())
            click.echo(f"{d.device_id}\t{d.type}\t{d.status}\t{d.node_id}\t{d.collector}\t{q}\t"
                       f"{d.identifier}\tfw={d.firmware}\tcfg=v{d.config_version}")
