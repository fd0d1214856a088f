"""``workbench devices …``: the collection-device registry and the broker configuration generated
from it (seed §7.3 b access security, §7.4 device management)."""
from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path

import click

from workbench.cli.common import master_data
from workbench.cli.errors import fail, read_input

DEFAULT_DB = "sqlite:///devices.db"
#: where register-demo keeps the devices' passwords and simulate finds them
DEFAULT_CREDENTIALS = "devices-credentials.json"
#: the device CA's folder (ca.key stays here; see workbench.devices.pki)
DEFAULT_PKI = "device-ca"


def _fail(message: str) -> None:
    fail(message)


def _who(who):
    return who or f"user:{getpass.getuser()}"


def _registry(db: str, prefix: str | None = None):
    from workbench.devices import DeviceRegistry

    if "://" not in db:                     # a plain path means a SQLite file
        db = f"sqlite:///{Path(db).resolve()}"
    return DeviceRegistry(db, prefix=prefix)


def _broker_address(url: str) -> tuple[str, int]:
    """``mqtt://HOST[:PORT]`` → (host, port); a clear error and exit 2 otherwise."""
    from workbench.devices.gateway import parse_broker_url

    try:
        return parse_broker_url(url)
    except ValueError as exc:
        _fail(str(exc))


_db_option = click.option("--db", default=DEFAULT_DB, show_default=True,
                          help="Registry database: SQLAlchemy URL (sqlite:///…, postgresql+psycopg://…) or a file path.")
_who_option = click.option("--who", default=None, help="Actor recorded in the audit table (default user:<login>).")


def _password(env_var: str) -> str:
    pw = os.environ.get(env_var)
    if not pw:
        _fail(f"environment variable {env_var} is not set or empty")
    return pw


def _pid(broker_pid) -> int:
    """A PID, or the PID in a pid file."""
    path = Path(str(broker_pid))
    try:
        return int(path.read_text().split()[0]) if path.exists() else int(broker_pid)
    except (ValueError, IndexError, OSError):
        _fail(f"--broker-pid {broker_pid}: not a PID nor a file holding one")


def broker_admin(host: str, port: int, username: str, password_env: str):
    """A :class:`~workbench.devices.access.BrokerAdmin` (exit 2 with the reason if it cannot connect)."""
    from workbench.devices.access import BrokerAdmin, BrokerAdminError

    try:
        return BrokerAdmin(host, port, username=username, password=_password(password_env))
    except BrokerAdminError as exc:
        _fail(str(exc))


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
@click.option("--credentials", type=click.Path(dir_okay=False, path_type=Path), default=Path(DEFAULT_CREDENTIALS),
              show_default=True, help="Write the new {device: password} mapping here (JSON, mode 0600; merged "
                                      "into an existing file) — the passwords are shown nowhere else.")
@click.option("--enterprise", "enterprise_id", default="",
              help="Whose meters (enterprise_id): the gateway stores their data in that enterprise's lake.")
@click.option("--device-prefix", default="", help="Put before every device id (device ids are one namespace "
                                                  "across the broker's enterprises), e.g. S-.")
@_who_option
def register_demo(db, prefix, meters, boundary, credentials, enterprise_id, device_prefix, who):
    """One device per demo meter plus one collector per facility, with fresh passwords."""
    from workbench.cli.lake import _read_boundary_file, _read_meters_file
    from workbench.core.boundary import BoundaryError
    from workbench.devices import DeviceError, write_credentials

    the_meters = read_input(meters, _read_meters_file, label="--meters")
    b = read_input(boundary, _read_boundary_file, label="--boundary") if boundary else None
    _check_credentials_file(credentials)
    reg = _registry(db, prefix)
    try:
        creds = reg.register_demo(the_meters, prefix, b, who=_who(who), enterprise_id=enterprise_id,
                                  device_prefix=device_prefix)
    except (DeviceError, BoundaryError) as exc:
        _fail(str(exc))
    write_credentials(credentials, creds, merge=True)
    n = len(reg.list())
    click.echo(f"registered {len(creds)} devices with credentials ({n} in the registry); credentials written "
               f"to {credentials}")


def _check_credentials_file(path) -> None:
    """A credentials file that exists is merged into: refuse a bad one before anything is written."""
    from workbench.devices import read_credentials

    if path is not None and Path(path).exists():
        read_input(Path(path), read_credentials, label="--credentials")


_registry_option = click.option("--registry", "registry_url", default=None,
                                help="Master-data database: SQLAlchemy URL or SQLite file "
                                     "(default $WORKBENCH_REGISTRY or data/registry.db).")


@devices_group.command("register")
@click.option("--enterprise", "enterprise_id", required=True, help="Whose meters (enterprise_id in the master data).")
@_registry_option
@_db_option
@click.option("--credentials", type=click.Path(dir_okay=False, path_type=Path), default=Path(DEFAULT_CREDENTIALS),
              show_default=True, help="Write the new {device: password} mapping here (JSON, mode 0600; merged "
                                      "into an existing file) — the passwords are shown nowhere else.")
@click.option("--device-prefix", default=None,
              help="Put before the meter id to make a new device's id (default '<enterprise_id>.', e.g. "
                   "demo-cement.M0001: device ids are one namespace across the broker's enterprises, so two "
                   "enterprises with the same meter ids get distinct devices).  A meter whose device_id is set "
                   "in the master data keeps that device.")
@_who_option
def register(enterprise_id, registry_url, db, credentials, device_prefix, who):
    """One device per meter of ENTERPRISE in service in the master data, one collector per facility.

    New devices get fresh passwords and their meter's device_id link is written to the master data
    (audited); existing ones keep theirs and follow the master data; devices of meters removed
    there are retired.  Re-running changes nothing."""
    from workbench.core.errors import WorkbenchError
    from workbench.devices import write_credentials

    _check_credentials_file(credentials)
    md = master_data(registry_url)
    reg = _registry(db)
    try:
        rep = reg.register_enterprise(md, enterprise_id, device_prefix=device_prefix, who=_who(who))
    except WorkbenchError as exc:
        _fail(str(exc))
    finally:
        md.dispose()
    if rep.credentials:
        write_credentials(credentials, rep.credentials, merge=True)
    n = rep.as_dict()
    click.echo(f"{rep.enterprise_id}: {n['created']} devices created, {n['updated']} updated, {n['unchanged']} "
               f"unchanged, {n['retired']} retired, {n['linked']} meter links written to the master data"
               + (f"; {n['inactive']} of its meters' devices are isolated or retired: {', '.join(rep.inactive)}"
                  if rep.inactive else "")
               + (f"; credentials written to {credentials}" if rep.credentials else ""))


@devices_group.command("broker-config")
@_db_option
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--root", default="wb", show_default=True, help="Topic root.")
@click.option("--port", default=1883, show_default=True, type=int)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Listener address.")
@click.option("--user", default=None, help="Mosquitto 'user' option (the account it drops to when started as root).")
@click.option("--credentials", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write passwords of newly created platform users (default OUT/platform-credentials.json, 0600).")
@click.option("--tls-port", default=None, type=click.IntRange(1, 65535),
              help="Also listen here for devices with a client certificate (TLS, CN = device id, no password, same "
                   "access rules; certificates of devices that are not active are revoked), e.g. 8883.")
@click.option("--pki", type=click.Path(file_okay=False, path_type=Path), default=Path(DEFAULT_PKI), show_default=True,
              help="Device CA folder for --tls-port (created if missing; see `devices cert issue`).")
@click.option("--tls-host", "tls_hosts", multiple=True,
              help="Extra name or address for the broker's certificate (localhost, 127.0.0.1 and --bind are in it).")
@click.option("--autosave-interval", type=click.IntRange(min=1), default=1, show_default=True,
              help="Seconds between saves of the broker's sessions and queues (a broker crash loses at most "
                   "what was acknowledged since the last save and not yet stored).")
@click.option("--max-queued-messages", type=click.IntRange(min=1), default=2_000_000, show_default=True,
              help="Messages a gateway's session may queue while it is away; beyond that the broker drops them.")
@click.option("--apply", "apply_pid", default=None, metavar="PID",
              help="Also apply to the running broker with this PID (or pid file): SIGHUP (passwords, CRL) and the "
                   "access rules through its control topic, as --admin-user (password in --admin-password-env).")
@click.option("--broker", "broker_url", default=None, help="Where --apply reaches the broker (default mqtt://BIND:PORT).")
@click.option("--admin-user", default="platform-admin", show_default=True)
@click.option("--admin-password-env", default="WB_BROKER_ADMIN_PASSWORD", show_default=True)
@_who_option
def broker_config(db, out, root, port, bind, user, credentials, tls_port, pki, tls_hosts, autosave_interval,
                  max_queued_messages, apply_pid, broker_url, admin_user, admin_password_env, who):
    """Write mosquitto.conf, passwd and dynamic-security.json (the access rules) from the registry;
    with --tls-port also the broker's certificate and the CRL.  --apply PID brings a running
    broker in line (new, isolated, restored and retired devices, rotated passwords)."""
    from workbench.devices import DeviceError, write_credentials
    from workbench.devices.broker import apply_broker_config, write_broker_config

    _check_credentials_file(credentials or Path(out) / "platform-credentials.json")
    if broker_url:
        _broker_address(broker_url)
    reg = _registry(db)
    options = {"root": root, "port": port, "bind": bind, "user": user, "who": _who(who), "tls_port": tls_port,
               "pki": pki if tls_port else None, "tls_hosts": tls_hosts, "autosave_interval": autosave_interval,
               "max_queued_messages": max_queued_messages}
    try:
        files = write_broker_config(reg, out, **options)
        if apply_pid:
            host, bport = _broker_address(broker_url or f"mqtt://{bind}:{port}")
            with broker_admin(host, bport, admin_user, admin_password_env) as admin:
                changes = apply_broker_config(reg, out, pid=_pid(apply_pid), admin=admin, **options)
            click.echo("applied to the running broker: " + ("; ".join(changes) if changes else "access rules unchanged")
                       + "; passwords and CRL reloaded")
    except (DeviceError, OSError) as exc:
        _fail(str(exc))
    for p in files:
        click.echo(str(p))
    if files.new_credentials:
        path = credentials or Path(out) / "platform-credentials.json"
        write_credentials(path, files.new_credentials, merge=True)
        click.echo(f"new platform users {sorted(files.new_credentials)}: passwords written to {path}")
    click.echo(f"run: mosquitto -c {files.conf}")


@devices_group.group("cert")
def cert_group():
    """Device client certificates from the device CA (for the broker's TLS listener)."""


@cert_group.command("issue")
@click.argument("device_id")
@_db_option
@click.option("--pki", type=click.Path(file_okay=False, path_type=Path), default=Path(DEFAULT_PKI), show_default=True,
              help="Device CA folder (created if missing).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for device.crt, device.key (0600) and ca.crt.")
@click.option("--days", default=825, show_default=True, type=click.IntRange(min=1), help="Validity in days.")
def cert_issue(device_id, db, pki, out, days):
    """Issue DEVICE_ID (a registered device or platform user) a client certificate with CN = its id;
    its earlier certificates are revoked (regenerate broker-config and reload to apply)."""
    from workbench.devices import DeviceError, DeviceNotFound
    from workbench.devices.pki import DeviceCA

    reg = _registry(db)
    try:
        dev = reg.get(device_id)
    except DeviceNotFound:
        _fail(f"device {device_id!r} is not in the registry {db}")
    try:
        cert = DeviceCA(pki).issue_device(dev.device_id, out, days=days)
    except (DeviceError, OSError) as exc:
        _fail(str(exc))
    for p in (cert.cert, cert.key, cert.ca):
        click.echo(str(p))
    click.echo(f"certificate {cert.serial:x} for {dev.device_id} ({dev.status}); earlier ones revoked at the next "
               f"broker-config")


@devices_group.command("list")
@_db_option
@click.option("--status", default=None, type=click.Choice(["active", "isolated", "retired"]),
              help="Only devices with this status.")
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


@devices_group.command("simulate")
@click.option("--broker", "broker_url", default="mqtt://127.0.0.1:1883", show_default=True,
              help="Broker URL mqtt://HOST[:PORT].")
@_db_option
@click.option("--credentials", default=Path(DEFAULT_CREDENTIALS), show_default=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="{device: password} JSON written by register-demo --credentials (optional with --cert-dir).")
@click.option("--count", default=None, type=click.IntRange(min=1), help="Simulate the first N devices (default all).")
@click.option("--skip", default=0, show_default=True, type=click.IntRange(min=0),
              help="Skip the first N devices (split devices over several simulator processes).")
@click.option("--device", "device_ids", multiple=True, help="Simulate this device (repeatable; overrides --count).")
@click.option("--rate", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Telemetry messages per second per device.")
@click.option("--duration", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Seconds to run (default: until Ctrl-C).")
@click.option("--root", default="wb", show_default=True, help="Topic root.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the devices' random streams.")
@click.option("--batch", default=None, type=click.IntRange(min=1),
              help="Readings per message, sent as a JSON list (default 1; 3 with --load).")
@click.option("--heartbeat", "heartbeat_s", default=30.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds between status heartbeats (0: only on connect).")
@click.option("--load", is_flag=True,
              help="Benchmark load: smart-meter payloads of 3 readings (unless --batch), no heartbeats.")
@click.option("--drain", default=10.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait for outstanding PUBACKs when stopping.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object (with per-device counts).")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Connect over TLS, verifying the broker with this CA certificate.")
@click.option("--cert-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folders <DIR>/<device>/ with device.crt, device.key, ca.crt: those devices connect over TLS with "
                   "their certificate (the broker's --tls-port listener) and need no password.")
def simulate(broker_url, db, credentials, count, skip, device_ids, rate, duration, root, seed, batch,
             heartbeat_s, load, drain, as_json, tls_ca, cert_dir):
    """Simulated meters publishing telemetry, heartbeats and command acks over MQTT (one MQTT v5
    client per device with its own credentials); prints progress and a summary."""
    import logging

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from workbench.devices import DeviceError, read_credentials
    from workbench.devices.simulator import Simulator

    if cert_dir is None and not credentials.exists():
        raise click.BadParameter(f"File '{credentials}' does not exist.", param_hint="'--credentials'")
    host, port = _broker_address(broker_url)
    if batch is None:
        batch = 3 if load else 1
    if load:
        heartbeat_s = 0.0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        creds = read_credentials(credentials) if cert_dir is None or credentials.exists() else {}
        sim = Simulator(host, port, _registry(db), creds, root=root, rate=rate, batch=batch,
                        heartbeat_s=heartbeat_s, seed=seed, device_ids=list(device_ids) or None,
                        count=count, skip=skip, tls_ca=tls_ca, cert_dir=cert_dir)
    except (DeviceError, OSError, ValueError) as exc:
        _fail(str(exc))
    console = Console(stderr=True)

    def line(s) -> str:
        return (f"devices {s.connected}/{s.devices} connected · published {s.published} · acked {s.acked} · "
                f"failed {s.failed} · pending {s.pending} · {s.acked / s.elapsed_s if s.elapsed_s else 0:.0f} msg/s "
                f"· {s.elapsed_s:.0f}" + (f"/{duration:g}" if duration else "") + " s")

    console.print(f"simulating {len(sim.devices)} devices → {host}:{port} root {root!r}, {rate:g} msg/s each, "
                  f"{batch} reading(s) per message")
    with Live(console=console, refresh_per_second=2, transient=True) as live:
        stats = sim.run(duration, on_tick=lambda s: live.update(line(s)), tick_s=0.5, drain_s=drain)
    if as_json:
        click.echo(json.dumps(stats.as_dict(per_device=True)))
    else:
        t = Table(title="simulation summary")
        for col in ("devices", "connected", "published", "acked", "failed", "pending", "readings acked", "seconds", "msg/s"):
            t.add_column(col, justify="right")
        d = stats.as_dict()
        t.add_row(str(d["devices"]), str(d["ever_connected"]), str(d["published"]), str(d["acked"]), str(d["failed"]), str(d["pending"]),
                  str(d["readings_acked"]), f"{d['elapsed_s']:.1f}", f"{d['msgs_per_s']:.0f}")
        Console().print(t)
        refused = {k: v.refused for k, v in stats.per_device.items() if v.refused}
        if refused:
            click.echo(f"refused by the broker: {refused}", err=True)
    if stats.failed or stats.pending or any(v.refused for v in stats.per_device.values()):
        sys.exit(1)
