"""A private Mosquitto for tests: started from a generated config on a free port, stopped afterwards.

* :func:`find_mosquitto` — ``mosquitto`` on PATH or ``/usr/sbin/mosquitto``; if missing and we are
  root on Debian/Ubuntu, ``apt-get install mosquitto`` once under a file lock (parallel xdist
  workers wait for one installer), like tests/pg.py does for PostgreSQL; else the test is skipped.
  The Debian package may start a system broker on 1883; the tests never use that port.
* :func:`running_mosquitto` — ``mosquitto -c <conf>`` in a subprocess; waits until the port
  accepts TCP connections (fails with the broker's output if it exits); yields a :class:`Broker`
  with ``reload()`` (SIGHUP) and ``log_text()``; terminates it (then kills) on exit.
* :func:`wait_for` — poll a condition (broker logs and MQTT callbacks are asynchronous).
* :func:`provision_fleet` — a collector, its meters and one isolated meter in a device registry.
* :class:`Probe` — a paho client that records what the broker answered (CONNACK, PUBACKs, SUBACK,
  messages, a failed TLS handshake), for the access-control tests.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sysdeps import ensure_debian_package

__all__ = ["Broker", "Probe", "find_mosquitto", "provision_fleet", "running_mosquitto", "wait_for"]

_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def _installed() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((c for c in _CANDIDATES if os.access(c, os.X_OK)), None)


def find_mosquitto(install: bool = True) -> str | None:
    """Path of the ``mosquitto`` broker; installs Debian's package (as root, once) when missing."""
    return ensure_debian_package("mosquitto", _installed) if install else _installed()


def require_mosquitto() -> str:
    exe = find_mosquitto()
    if exe is None:
        pytest.skip("mosquitto is not installed and could not be installed")
    return exe


def wait_for(condition, timeout: float = 5.0, interval: float = 0.02):
    """Call ``condition()`` until it returns a truthy value (returned) or ``timeout`` passes (→ the
    last value, falsy)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@dataclass
class Broker:
    proc: subprocess.Popen
    host: str
    port: int
    conf: Path
    log: Path | None

    def reload(self) -> None:
        """SIGHUP: mosquitto 2.0 re-reads its config, password file and ACL file."""
        self.proc.send_signal(signal.SIGHUP)

    def log_text(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, timeout: float = 5.0, *, start: int = 0) -> bool:
        """Whether ``text`` appears in the log (after character ``start``) within ``timeout``."""
        return bool(wait_for(lambda: text in self.log_text()[start:], timeout))


def _log_path(conf: Path) -> Path | None:
    for line in conf.read_text(encoding="utf-8").splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] == "log_dest" and parts[1] == "file":
            return Path(parts[2])
    return None


@contextlib.contextmanager
def running_mosquitto(conf, *, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
    """Run ``mosquitto -c conf`` (which must listen on ``host:port``) until the block ends."""
    exe = require_mosquitto()
    conf = Path(conf)
    out = open(conf.parent / "mosquitto.stdout", "wb")  # noqa: SIM115 - closed in finally, outlives the block
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                out.flush()
                text = (conf.parent / "mosquitto.stdout").read_text(errors="replace")
                raise RuntimeError(f"mosquitto exited with {proc.returncode}:\n{text}")
            try:
                socket.create_connection((host, port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not listen on {host}:{port} within {timeout} s") from None
                time.sleep(0.02)
        yield Broker(proc=proc, host=host, port=port, conf=conf, log=_log_path(conf))
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        out.close()


def provision_fleet(registry, meters, *, node_id: str = "F01", isolated: str = "M9") -> dict[str, str]:
    """Collector ``C-F01`` with cumulative kWh meters ``meters`` at ``node_id`` behind it, and the
    meter ``isolated`` registered isolated; returns the active devices' passwords."""
    creds = registry.provision_many(
        [{"device_id": "C-F01", "type": "collector", "node_id": "F01"}]
        + [{"device_id": m, "type": "electricity_meter", "node_id": node_id, "collector": "C-F01",
            "quantities": {"register": "kWh"}} for m in meters])
    registry.provision(isolated, type="electricity_meter", status="isolated", quantities={"register": "kWh"})
    return creds


class Probe:
    """A paho 2.x client (MQTT v5 unless told otherwise) that records what happens: ``connack``,
    ``disconnected``, ``error`` (the connection or TLS handshake failed), ``acks`` {mid: PUBACK
    reason}, ``suback``, ``messages`` [(topic, payload, retain)].  A refused client does not retry.
    ``tls``: a :class:`workbench.devices.pki.ClientTLS` (no ``user``: the certificate is the login)."""

    def __init__(self, host: str, port: int, user: str | None = None, password: str | None = None, *,
                 protocol=None, tls=None):
        import paho.mqtt.client as paho

        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{user or 'x'}-{uuid.uuid4().hex[:6]}",
                             protocol=protocol or paho.MQTTv5)
        if user:
            self.c.username_pw_set(user, password)
        if tls is not None:
            tls.apply(self.c)
        self.connack = self.disconnected = self.error = self.suback = None
        self.acks: dict[int, object] = {}
        self.messages: list = []
        self._answered = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_publish = lambda c, u, mid, rc, props=None: self.acks.__setitem__(mid, rc)
        self.c.on_subscribe = lambda c, u, mid, rcs, props=None: setattr(self, "suback", rcs)
        self.c.on_message = lambda c, u, msg: self.messages.append((msg.topic, msg.payload, msg.retain))
        try:
            self.c.connect(host, port, keepalive=30)
        except OSError as exc:                   # refused, or ssl.SSLError: the handshake failed
            self.error = exc
            return
        self.c.loop_start()
        self._answered.wait(5)

    def _on_connect(self, client, userdata, flags, rc, props=None):
        self.connack = rc
        if rc.is_failure:
            client.disconnect()                  # no automatic reconnect attempts after a refusal
        self._answered.set()

    def _on_disconnect(self, client, userdata, flags, rc, props=None):
        self.disconnected = rc
        self._answered.set()
        if self.connack is None:
            client.disconnect()                  # dropped before any CONNACK: no retries either

    @property
    def ok(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic, payload, *, qos=1, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        assert wait_for(lambda: info.mid in self.acks, 5), f"no PUBACK for {topic}"
        return self.acks[info.mid]

    def subscribe(self, topic, qos=1):
        self.suback = None
        self.c.subscribe(topic, qos=qos)
        assert wait_for(lambda: self.suback is not None, 5)
        return self.suback

    def close(self):
        if self.error is None:
            self.c.disconnect()
            self.c.loop_stop()
