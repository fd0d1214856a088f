"""A private Mosquitto for tests: started from a generated config on a free port, stopped afterwards.

* :func:`find_mosquitto` — ``mosquitto`` on PATH or ``/usr/sbin/mosquitto``; if missing and we are
  root on Debian/Ubuntu, ``apt-get install mosquitto`` once under a file lock (parallel xdist
  workers wait for one installer), like tests/pg.py does for PostgreSQL; else the test is skipped.
  The Debian package may start a system broker on 1883; the tests never use that port.
* :func:`running_mosquitto` — ``mosquitto -c <conf>`` in a subprocess; waits until the port
  accepts TCP connections (fails with the broker's output if it exits); yields a :class:`Broker`
  with ``reload()`` (SIGHUP) and ``log_text()``; terminates it (then kills) on exit.
* :func:`wait_for` — poll a condition (broker logs and MQTT callbacks are asynchronous).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sysdeps import ensure_debian_package

__all__ = ["Broker", "find_mosquitto", "running_mosquitto", "wait_for"]

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
