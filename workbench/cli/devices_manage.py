"""``workbench devices push-config | command | isolate | restore | monitor``: remote management and
status monitoring from the command line (seed §7.3 c/e, §7.4).  They connect to the broker as a
platform user whose password is read from an environment variable, never from the command line."""
from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import click

from workbench.cli.devices import (
    _broker_address,
    _db_option,
    _fail,
    _password,
    _pid,
    _registry,
    _who,
    _who_option,
    broker_admin,
    devices_group,
)

_broker_option = click.option("--broker", "broker_url", default="mqtt://127.0.0.1:1883", show_default=True)
_root_option = click.option("--root", default="wb", show_default=True, help="Topic root.")


def _user_options(user_opt: str, env_opt: str, user: str, env: str, role: str):
    """The two options of a broker user whose password is read from an environment variable."""
    opts = [click.option(user_opt, default=user, show_default=True, help=f"Broker user ({role})."),
            click.option(env_opt, default=env, show_default=True,
                         help="Environment variable holding that user's password.")]

    def decorate(f):
        for opt in reversed(opts):
            f = opt(f)
        return f
    return decorate


_manager_opts = _user_options("--username", "--password-env", "platform-manager", "WB_MANAGER_PASSWORD",
                              "manager role")
_admin_opts = _user_options("--admin-user", "--admin-password-env", "platform-admin", "WB_BROKER_ADMIN_PASSWORD",
                            "admin role: applies the access rules to the running broker")


def _manager(db, broker_url, root, username, password_env, *, broker_dir=None, broker_pid=None, port=None,
             bind=None, user=None, admin=None):
    from workbench.devices.broker import reload_broker
    from workbench.devices.manager import DeviceManager

    host, bport = _broker_address(broker_url)
    opts = {"port": port or bport, "bind": bind or host, "user": user}
    try:
        return DeviceManager(_registry(db), host, bport, username=username, password=_password(password_env),
                             root=root, broker_dir=broker_dir, broker_options=opts,
                             reload=(lambda: reload_broker(_pid(broker_pid))) if broker_pid else None, admin=admin)
    except ConnectionError as exc:
        _fail(str(exc))


@devices_group.command("push-config")
@click.argument("device")
@click.option("--config", "config_json", required=True, help="The configuration as JSON (or @file.json).")
@click.option("--wait", default=30.0, show_default=True, help="Seconds to wait for the device's acknowledgement.")
@_db_option
@_broker_option
@_root_option
@_manager_opts
@_who_option
def push_config(device, config_json, wait, db, broker_url, root, username, password_env, who):
    """Store and publish (retained) a new configuration version; wait for the acknowledgement."""
    text = Path(config_json[1:]).read_text(encoding="utf-8") if config_json.startswith("@") else config_json
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"--config: not JSON: {exc}")
    with _manager(db, broker_url, root, username, password_env) as mgr:
        version = mgr.push_config(device, config, who=_who(who))
        click.echo(f"{device}: configuration version {version} published (retained)")
        ack = mgr.wait_config_ack(device, version, wait) if wait else None
    if wait and ack is None:
        click.echo(f"{device}: no acknowledgement within {wait:g} s (it will get the configuration when it connects)")
        raise SystemExit(1)
    if ack is not None:
        click.echo(f"{device}: version {version} {'applied' if ack.ok else 'REFUSED'}: {ack.detail}")
        raise SystemExit(0 if ack.ok else 1)


@devices_group.command("command")
@click.argument("device")
@click.argument("cmd", type=click.Choice(["restart", "set_interval", "isolate"]))
@click.option("--args", "args_json", default="{}", show_default=True, help='Arguments as JSON, e.g. {"interval_s": 60}.')
@click.option("--wait", default=30.0, show_default=True)
@_db_option
@_broker_option
@_root_option
@_manager_opts
@_who_option
def command(device, cmd, args_json, wait, db, broker_url, root, username, password_env, who):
    """Send a command to a device and wait for its cmd/ack."""
    try:
        args = json.loads(args_json)
    except json.JSONDecodeError as exc:
        _fail(f"--args: not JSON: {exc}")
    with _manager(db, broker_url, root, username, password_env) as mgr:
        try:
            cid = mgr.command(device, cmd, args, who=_who(who))
        except (ValueError, KeyError) as exc:
            _fail(str(exc))
        ack = mgr.wait_ack(device, cid, wait)
    if ack is None:
        click.echo(f"{device}: no answer to {cmd} ({cid}) within {wait:g} s")
        raise SystemExit(1)
    click.echo(f"{device}: {cmd} {'done' if ack.ok else 'REFUSED'}: {ack.detail}")
    raise SystemExit(0 if ack.ok else 1)


def _isolation_command(name: str, doc: str, isolate: bool):
    @devices_group.command(name, help=doc)
    @click.argument("device")
    @click.option("--broker-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="The broker's generated files (workbench devices broker-config --out).")
    @click.option("--broker-pid", required=True, help="PID (or pid file) of the running mosquitto, to reload it.")
    @click.option("--port", type=int, default=None, help="Listener port in the broker config (default: --broker's).")
    @click.option("--bind", default=None, help="Listener address (default: --broker's host).")
    @click.option("--user", default=None, help="Mosquitto 'user' option, as in broker-config.")
    @click.option("--reason", default="", help="Why (audit).")
    @_db_option
    @_broker_option
    @_root_option
    @_manager_opts
    @_admin_opts
    @_who_option
    def run(device, broker_dir, broker_pid, port, bind, user, reason, db, broker_url, root, username, password_env,
            admin_user, admin_password_env, who):
        host, bport = _broker_address(broker_url)
        with broker_admin(host, bport, admin_user, admin_password_env) as admin, \
                _manager(db, broker_url, root, username, password_env, broker_dir=broker_dir, broker_pid=broker_pid,
                         port=port, bind=bind, user=user, admin=admin) as mgr:
            if isolate:
                mgr.isolate(device, who=_who(who), reason=reason)
            else:
                mgr.restore(device, who=_who(who))
        click.echo(f"{device}: {'isolated (password removed, disabled at the broker, disconnected)' if isolate else 'restored'}")
    return run


_isolation_command("isolate", "Isolate a device: access revoked at the broker now, its data quarantined.", True)
_isolation_command("restore", "Give an isolated device its access back.", False)


@devices_group.command("monitor")
@click.option("--alarms-db", required=True, help="SQLAlchemy URL of the alarm store.")
@click.option("--check-interval", default=60.0, show_default=True, help="Seconds between checks.")
@click.option("--username", default="platform-monitor", show_default=True,
              help="Broker user with read access to status and telemetry (gateway role; its own user).")
@click.option("--password-env", default="WB_MONITOR_PASSWORD", show_default=True)
@click.option("--lake", "lake_root", default=None,
              help="The gateway's lake: adds device time → stored latency (from its watermarks).")
@_db_option
@_broker_option
@_root_option
def monitor(alarms_db, check_interval, username, password_env, lake_root, db, broker_url, root):
    """Watch device status/telemetry; raise, update and clear alarms; localise faults."""
    from workbench.devices.alarms import AlarmStore
    from workbench.devices.monitor import MonitorService

    host, port = _broker_address(broker_url)
    lake = None
    if lake_root:
        from workbench.lake.store import Lake

        lake = Lake(lake_root)
    svc = MonitorService(host, port, username, _password(password_env), _registry(db), AlarmStore(alarms_db),
                         root=root, check_interval=check_interval, lake=lake)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"monitoring {root}/+/status and telemetry on {host}:{port}; alarms → {alarms_db}", err=True)
    svc.run(stop)
