"""``workbench gateway``: the MQTT → lake gateway service (seed §7.2 a, §7.3)."""
from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click

from workbench.cli.lake import DEFAULT_LAKE


@click.command("gateway")
@click.option("--broker", required=True, help="mqtt://HOST:PORT of the broker.")
@click.option("--lake", "lake_root", default=DEFAULT_LAKE, show_default=True, help="Lake root.")
@click.option("--registry", "registry_url", default="sqlite:///devices.db", show_default=True,
              help="Device registry: SQLAlchemy URL or a SQLite file path (as `workbench devices --db`).")
@click.option("--username", default="platform-gateway", show_default=True, help="The gateway's broker user.")
@click.option("--password-env", default="WB_GATEWAY_PASSWORD", show_default=True,
              help="Environment variable holding the gateway's broker password (never on the command line).")
@click.option("--client-id", default=None, help="MQTT client id of this gateway process (default: the username).")
@click.option("--root", default="wb", show_default=True, help="Topic root.")
@click.option("--partition", default="0/1", show_default=True,
              help="K/N: with N gateways (each its own broker user and session), this one subscribes to and stores "
                   "the devices of partition K (a stable hash of the device id mod N); 0/1: all devices.")
@click.option("--batch-size", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--batch-interval", type=click.FloatRange(min=0.01), default=0.25, show_default=True,
              help="Seconds between batch writes when fewer than --batch-size messages are waiting.")
@click.option("--rollup-every", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds between merges of the hot tier's older small files (0: never; see `lake rollup`).")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Connect over TLS, verifying the broker with this CA certificate (e.g. the device CA's ca.crt).")
@click.option("--cert-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Connect over TLS with the client certificate in this folder (device.crt, device.key, ca.crt from "
                   "`workbench devices cert issue platform-gateway`): for the broker's certificate listener, no password.")
def gateway_command(broker, lake_root, registry_url, username, password_env, client_id, root, partition,
                    batch_size, batch_interval, rollup_every, tls_ca, cert_dir):
    """Subscribe to device telemetry, store it in the lake in batches, acknowledge after storing."""
    from workbench.cli.devices import _registry
    from workbench.devices.gateway import Gateway, parse_broker_url, parse_partition
    from workbench.lake.store import Lake

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from workbench.devices import DeviceError
    from workbench.devices.pki import ClientTLS

    try:
        tls = ClientTLS.from_dir(cert_dir, ca=tls_ca) if cert_dir else (ClientTLS(tls_ca) if tls_ca else None)
    except DeviceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    password = os.environ.get(password_env) or None
    if not password and not (tls and tls.has_certificate):
        click.echo(f"error: environment variable {password_env} is not set or empty", err=True)
        sys.exit(2)
    try:
        host, port = parse_broker_url(broker)
        part = parse_partition(partition)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def report(rep, stats):
        click.echo(f"stored batch {rep['batch_id'][:12]}: {rep['rows_curated']} new, {rep['rows_duplicate']} "
                   f"duplicate, {rep['rows_quarantined']} quarantined; {stats.acked} messages acknowledged",
                   err=True)

    gw = Gateway(host, port, Lake(lake_root), _registry(registry_url), username=username, password=password,
                 client_id=client_id or username, root=root, partition=part, batch_size=batch_size,
                 batch_interval=batch_interval, on_batch=report, rollup_every=rollup_every or None, tls=tls)
    gw._refresh()                           # registry and meters loaded before the first message
    # this process's long-lived objects (modules, registry) leave the garbage collector's view: a
    # full collection over them took 50–70 ms, a latency spike every few batches
    gc.collect()
    gc.freeze()
    stats = gw.run(stop)
    click.echo(f"gateway stopped: {stats.received} received, {stats.acked} acknowledged, {stats.readings} "
               f"readings stored, {stats.duplicates} duplicates dropped, {stats.quarantined} quarantined "
               f"({stats.unstorable} because storing them failed); {stats.subscriptions} telemetry subscriptions held",
               err=True)
