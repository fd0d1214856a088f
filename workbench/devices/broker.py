"""Mosquitto configuration generated from the device registry (seed §7.3 b 接入安全, §7.4 b 接入隔离).

Authentication and authorisation are enforced by the broker, not by the platform:

* ``passwd`` — one ``user:$7$…`` line per ACTIVE registry entry (devices and platform users);
  isolated and retired devices get none, so they cannot connect with a password;
* ``dynamic-security.json`` — the access rules, enforced by Mosquitto's dynamic-security plugin
  (:mod:`workbench.devices.access`; the plugin, unlike an ACL file, also refuses SUBSCRIBE):
  per device exactly its own topics (nothing else is allowed, default access is denied)::

      send       <root>/<id>/telemetry      uplink measurements
      send       <root>/<id>/status         heartbeat / last will (online, offline)
      subscribe  <root>/<id>/config         retained, versioned configuration (downlink)
      subscribe  <root>/<id>/cmd            commands (downlink)
      send       <root>/<id>/cmd/ack        command acknowledgements

  platform users get role-wide patterns: ``gateway`` reads ``<root>/+/telemetry``,
  ``<root>/+/status`` and ``<root>/+/cmd/ack``; ``manager`` writes ``<root>/+/config`` and
  ``<root>/+/cmd`` and reads ``<root>/+/status`` and ``<root>/+/cmd/ack``; ``admin`` may only use
  the plugin's control topic (to apply registry changes to a running broker:
  :func:`apply_broker_config`).  Isolated devices are listed ``disabled``; retired ones not at all.
* ``mosquitto.conf`` — one listener on ``bind:port``, ``allow_anonymous false``, the password
  file, the plugin, persistence (QoS 1 sessions, their subscriptions and queued messages survive a
  broker restart; saved every ``autosave_interval`` seconds and at a clean shutdown),
  ``use_username_as_clientid`` (a device cannot take over another device's session by using its
  client id), queue/in-flight limits for QoS 1 gateways, a maximum packet size, and logging of
  every connection and refusal to ``mosquitto.log`` and stderr.

* with ``tls_port`` and ``pki`` (a :class:`workbench.devices.pki.DeviceCA`): a second listener on
  ``bind:tls_port`` for devices with a client certificate (``CN = device id``, issued by
  ``workbench devices cert issue``): ``require_certificate true``, ``use_identity_as_username
  true`` — the CN is the user name, no password is asked on that listener, and the same access
  rules apply — and ``crlfile`` revoking the certificates of every device that is not active.  Files in
  ``tls/``: ``ca.crt`` (copy of the CA certificate), ``server.crt``/``server.key`` (issued by the
  CA for ``localhost``, ``127.0.0.1`` and ``bind``; re-issued only when missing, for other hosts
  or expiring), ``crl.pem`` (re-signed on every call).  TLS options are per listener in
  Mosquitto; the password file and the plugin stay global (``per_listener_settings false``), so
  the password listener is unchanged.

A running broker re-reads the password file and the CRL on ``SIGHUP`` (:func:`reload_broker`); the
plugin reads its document only at start, so changes of the access rules are applied through its
control topic (:class:`workbench.devices.access.BrokerAdmin`).  Isolating a device is:
``registry.set_status(id, "isolated")`` → :func:`apply_broker_config` (files rewritten, SIGHUP,
the plugin disables the device: the broker disconnects it at once and refuses it afterwards).
Refusals in the log (mosquitto 2.0.11; ``log_type all`` is needed for the ``Denied PUBLISH``
lines, which mosquitto logs at debug level)::

    Client <id> disconnected, not authorised.          (unknown user / wrong password)
    Denied PUBLISH from <id> (d0, q1, r0, m1, '<topic>', ... (N bytes))

On the certificate listener (mosquitto 2.0.11, measured in tests/devices/test_devices_tls.py) SIGHUP also
rebuilds the listener's TLS context with the new CRL (mosquitto does so for listeners with a
``crlfile`` and ``require_certificate``): the isolated device's certificate is refused at the
handshake from then on (``OpenSSL Error[0]: ...:certificate verify failed`` in the log) and accepted again
after it is restored.  A device already connected with its certificate is disconnected by the
plugin when it is disabled.
"""
from __future__ import annotations

import glob
import json
import os
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workbench.devices.registry import (
    PLATFORM_ROLES,
    DeviceError,
    DeviceRegistry,
    atomic_write,
)
from workbench.devices.topics import validate_root

__all__ = [
    "DEFAULT_PLATFORM_USERS",
    "BrokerFiles",
    "TlsFiles",
    "apply_broker_config",
    "dynsec_plugin",
    "passwd_text",
    "reload_broker",
    "write_broker_config",
]

#: the platform's own broker users created by :func:`write_broker_config` unless told otherwise
DEFAULT_PLATFORM_USERS = {"platform-gateway": "gateway", "platform-manager": "manager", "platform-admin": "admin"}

#: where Debian/Ubuntu (any architecture) and a source build put Mosquitto's dynamic-security plugin
_PLUGIN_GLOBS = ("/usr/lib/*/mosquitto_dynamic_security.so", "/usr/lib/mosquitto_dynamic_security.so",
                 "/usr/local/lib/mosquitto_dynamic_security.so", "/usr/local/lib/*/mosquitto_dynamic_security.so")

def _users(registry: DeviceRegistry, platform_users: Iterable[str] | None):
    active = registry.list(status="active")
    wanted = None if platform_users is None else set(platform_users)
    devices, platform = [], []
    for d in active:
        if not d.password_hash:
            continue
        if d.type in PLATFORM_ROLES:
            if wanted is None or d.device_id in wanted:
                platform.append(d)
        else:
            devices.append(d)
    return devices, platform


def passwd_text(registry: DeviceRegistry, *, platform_users: Iterable[str] | None = None) -> str:
    """Mosquitto password file: ``user:$7$…`` per active device and platform user."""
    devices, platform = _users(registry, platform_users)
    return "".join(f"{d.device_id}:{d.password_hash}\n" for d in sorted(devices + platform, key=lambda d: d.device_id))


def dynsec_plugin(path: str | None = None) -> str:
    """Path of Mosquitto's dynamic-security plugin (``mosquitto_dynamic_security.so``, part of
    Debian's ``mosquitto`` package since 2.0); ``path`` overrides the search."""
    if path:
        if not os.path.exists(path):
            raise DeviceError(f"dynamic-security plugin {path} does not exist")
        return path
    for pattern in _PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise DeviceError("Mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) was not found; install "
                      "Mosquitto ≥ 2.0 (Debian: apt-get install mosquitto) or pass its path")


@dataclass(frozen=True)
class BrokerFiles:
    """Paths written by :func:`write_broker_config`; ``new_credentials`` holds the passwords of
    platform users created by this call (``{user: password}``; shown once)."""

    conf: Path
    passwd: Path
    access: Path
    log: Path
    persistence: Path
    new_credentials: dict = field(default_factory=dict)

    tls: TlsFiles | None = None

    def __iter__(self):
        return iter((self.conf, self.passwd, self.access, *(self.tls or ())))


@dataclass(frozen=True)
class TlsFiles:
    """The certificate listener's files (see the module doc)."""

    port: int
    ca: Path
    cert: Path
    key: Path
    crl: Path

    def __iter__(self):
        return iter((self.ca, self.cert, self.key, self.crl))


def write_broker_config(registry: DeviceRegistry, out_dir, *, root: str = "wb", port: int = 1883,
                        bind: str = "127.0.0.1",
                        platform_users: Mapping[str, str] | None = DEFAULT_PLATFORM_USERS,
                        user: str | None = None, log_types: Iterable[str] = ("all",),
                        max_inflight_messages: int = 20_000, max_inflight_bytes: int = 64 * 2 ** 20,
                        max_queued_messages: int = 2_000_000, max_packet_size: int = 2 ** 20,
                        max_connections: int = -1, autosave_interval: int = 1, autosave_on_changes: bool = False,
                        who: str = "broker-config", tls_port: int | None = None, pki=None,
                        tls_hosts: Iterable[str] = (), plugin: str | None = None) -> BrokerFiles:
    """Write ``mosquitto.conf``, ``passwd`` and ``dynamic-security.json`` into ``out_dir``
    (atomically; the password file and the access document mode 0600) from the registry.

    ``platform_users`` ``{user: role}`` are created in the registry if missing (their passwords
    are returned once in :attr:`BrokerFiles.new_credentials`); ``None`` includes every active
    platform user already registered.  ``user`` is Mosquitto's ``user`` option (when started
    as root it drops to this user, default ``mosquitto``; the files must be readable by it, and
    the folder writable: the plugin saves its document there).

    Limits (see docs/architecture.md, "Durability"): ``max_inflight_messages`` and
    ``max_inflight_bytes`` bound unacknowledged QoS 1 messages per client (a gateway that
    acknowledges after storing a batch needs a window at least its batch size; the bytes bound a
    gateway's memory); ``max_queued_messages`` is what a persistent session that is disconnected
    or falling behind may queue before mosquitto silently DROPS messages — a gateway may be away
    for ``max_queued_messages`` ÷ its partition's message rate (2,000,000 ÷ 5,200 msg/s ≈ 6.4 min
    for one gateway at the benchmark's load);
    ``max_packet_size`` — a client sending a larger packet is disconnected and the message never
    acknowledged; ``autosave_interval`` seconds between saves of the in-memory state — or, with
    ``autosave_on_changes``, messages and subscription changes between saves (a broker crash
    loses what was acknowledged since the last save and not yet stored by a gateway; a clean
    shutdown saves everything).  Run with ``mosquitto -c <conf>``.

    ``tls_port``: add the certificate listener on ``bind:tls_port`` (see the module doc); ``pki``
    is the device CA (a :class:`~workbench.devices.pki.DeviceCA` or its folder, created there
    if missing); ``tls_hosts``: more names/addresses for the server certificate (what devices
    put in their broker URL, when it is not ``bind``).  ``plugin``: path of the dynamic-security
    plugin (found by :func:`dynsec_plugin` otherwise).
    """
    from workbench.devices.access import access_document

    validate_root(root)
    if not 0 < int(port) < 65536:
        raise DeviceError(f"port {port} out of range")
    if tls_port is not None and (not 0 < int(tls_port) < 65536 or int(tls_port) == int(port)):
        raise DeviceError(f"TLS port {tls_port} out of range or the same as the password listener's")
    if tls_port is not None and pki is None:
        raise DeviceError("a TLS listener needs the device CA (pki)")
    if int(autosave_interval) < 1:
        raise DeviceError("autosave_interval must be at least 1 second")
    plugin = dynsec_plugin(plugin)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    new = registry.ensure_platform_users(platform_users, who=who) if platform_users else {}
    names = None if platform_users is None else list(platform_users)
    persistence = out / "data"
    persistence.mkdir(exist_ok=True)
    log = out / "mosquitto.log"
    passwd = atomic_write(out / "passwd", passwd_text(registry, platform_users=names), mode=0o600)
    document = access_document(registry, root=root, platform_users=names)
    access = atomic_write(out / "dynamic-security.json", json.dumps(document, indent=1) + "\n", mode=0o600)
    tls = _tls_files(registry, out / "tls", int(tls_port), pki, [bind, *tls_hosts]) if tls_port is not None else None
    lines = [
        "# generated by workbench devices broker-config (seed §7.3 b access security): do not edit,",
        "# regenerate from the device registry (workbench devices broker-apply updates a running broker)",
        "per_listener_settings false",
        f"listener {int(port)} {bind}",
        f"max_connections {int(max_connections)}",
        "allow_anonymous false",
        f"password_file {passwd}",
        "use_username_as_clientid true",
        "",
        *(_tls_listener(tls, bind, max_connections) if tls else []),
        "# access rules, enforced at SUBSCRIBE too (an ACL file is not): see workbench.devices.access",
        f"plugin {plugin}",
        f"plugin_opt_config_file {access}",
        "",
        "# durability: sessions, subscriptions and queued messages saved every autosave_interval",
        "# seconds and at a clean shutdown (docs/architecture.md, Durability)",
        "persistence true",
        f"persistence_location {persistence}/",
        f"autosave_on_changes {'true' if autosave_on_changes else 'false'}",
        f"autosave_interval {int(autosave_interval)}",
        f"max_inflight_messages {int(max_inflight_messages)}",
        f"max_inflight_bytes {int(max_inflight_bytes)}",
        f"max_queued_messages {int(max_queued_messages)}",
        f"max_packet_size {int(max_packet_size)}",
        "",
        f"log_dest file {log}",
        "log_dest stderr",
        *[f"log_type {t}" for t in log_types],
        "connection_messages true",
        "log_timestamp true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    user = user or _broker_account()
    if user:
        lines.insert(3, f"user {user}")
        _give_to(user, [out, passwd, access, persistence, log, *([out / "tls", *tls] if tls else [])])
    conf = atomic_write(out / "mosquitto.conf", "\n".join(lines) + "\n", mode=0o644)
    return BrokerFiles(conf=conf, passwd=passwd, access=access, log=log, persistence=persistence, new_credentials=new,
                       tls=tls)


def apply_broker_config(registry: DeviceRegistry, out_dir, *, pid: int | None = None, admin=None,
                        **options) -> list[str]:
    """Bring a running broker in line with the registry: rewrite its files
    (:func:`write_broker_config` with ``options``), make it re-read the password file and the CRL
    (``SIGHUP`` to ``pid``) and apply the access rules through the plugin's control topic
    (``admin``: a :class:`workbench.devices.access.BrokerAdmin`) — enabling, disabling (the broker
    disconnects the device at once), creating and deleting clients and roles.  Returns the
    changes of the access rules.  Without ``admin`` only passwords and certificates change until
    the broker restarts."""
    from workbench.devices.access import access_document

    options.setdefault("platform_users", None)          # keep the platform users that exist
    write_broker_config(registry, out_dir, **options)
    changes = []
    if admin is not None:        # first the rules: a disabled device is cut off before anything else
        names = options["platform_users"]
        changes = admin.sync(access_document(registry, root=options.get("root", "wb"),
                                             platform_users=None if names is None else list(names)))
    if pid is not None:
        reload_broker(pid)
    return changes


def _tls_files(registry: DeviceRegistry, folder: Path, port: int, pki, hosts) -> TlsFiles:
    """``tls/``: the CA certificate, the broker's certificate and key (issued when needed), the CRL
    of every device certificate whose device is not active (see the module doc)."""
    from workbench.devices.pki import DeviceCA

    ca = pki if isinstance(pki, DeviceCA) else DeviceCA(pki)
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "server.crt", folder / "server.key"
    hosts = [h for h in hosts if h]
    if not ca.server_cert_ok(cert, key, hosts):
        ca.issue_server(cert, key, hosts=hosts)
    ca_copy = atomic_write(folder / "ca.crt", ca.ca_pem, mode=0o644)
    statuses = {d.device_id: d.status for d in registry.list()}
    crl = ca.write_crl(folder / "crl.pem", statuses)
    return TlsFiles(port=port, ca=ca_copy, cert=cert, key=key, crl=crl)


def _tls_listener(tls: TlsFiles, bind: str, max_connections: int) -> list[str]:
    """The certificate listener's lines (TLS options are per listener in Mosquitto)."""
    return [
        "# devices with a client certificate (CN = device id) from the device CA: no password on this",
        "# listener, the same access rules; crl.pem revokes the certificates of devices that are not active",
        f"listener {tls.port} {bind}",
        f"max_connections {int(max_connections)}",
        "use_username_as_clientid true",
        f"cafile {tls.ca}",
        f"certfile {tls.cert}",
        f"keyfile {tls.key}",
        f"crlfile {tls.crl}",
        "require_certificate true",
        "use_identity_as_username true",
        "tls_version tlsv1.2",
        "",
    ]


def _broker_account() -> str | None:
    """Started as root, mosquitto drops to the ``mosquitto`` account: when we are root and that
    account exists, name it (and hand it the files); otherwise leave mosquitto's default."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    try:
        import pwd

        pwd.getpwnam("mosquitto")
    except (ImportError, KeyError):
        return None
    return "mosquitto"


def _give_to(user: str, paths) -> None:
    """Make the broker's files readable (and the log and persistence writable) by ``user`` when we
    may (root); the secrets stay mode 0600, owned by the broker's account."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or user == "root":
        return
    import pwd

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise DeviceError(f"broker account {user!r} does not exist on this machine") from None
    for p in paths:
        p = Path(p)
        if not p.exists():
            p.touch(mode=0o600)
        os.chown(p, pw.pw_uid, pw.pw_gid)


def reload_broker(pid: int) -> None:
    """Ask a running mosquitto to re-read its configuration, password file and CRL (SIGHUP; the
    dynamic-security plugin keeps its rules: see :func:`apply_broker_config`)."""
    os.kill(int(pid), signal.SIGHUP)
