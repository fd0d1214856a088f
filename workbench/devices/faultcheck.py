"""Durability check by fault injection (issue 10): a known QoS 1 stream through a real Mosquitto and
real ``workbench gateway`` processes into a lake, while the gateways are SIGKILLed and the broker is
restarted at random moments; afterwards the lake is compared with what the broker acknowledged.

* :class:`Deployment` — a private deployment in a folder: a device registry with ``devices``
  cumulative kWh meters, the broker's files generated from it (:mod:`workbench.devices.broker`:
  passwords, access rules, persistence), a lake whose meter registry holds the same meters, and
  the processes — ``mosquitto -c`` and ``gateways`` × ``python -m workbench.cli.main gateway``
  (partition ``k/gateways`` each, its own broker user and persistent session) — that
  :meth:`~Deployment.start_broker`, :meth:`~Deployment.stop_broker`,
  :meth:`~Deployment.start_gateway` and :meth:`~Deployment.kill_gateway` control.
* :class:`LedgerPublisher` — one MQTT v5 client per meter (its own credentials), publishing reading
  ``k`` of meter ``i`` as ``{"ts": t0 + k·step, "values": {"register": 1000·(i+1) + 2.5·k}}`` at
  QoS 1, and keeping the ledger of every PUBACK: which ``(meter, k)`` the broker acknowledged and
  with which reason code (``0x10`` "no matching subscribers" would mean no gateway session held
  the message).  Unacknowledged messages are re-sent by paho after every reconnect, as a device
  does.
* :func:`verify` — the lake against the ledger: acknowledged readings missing from the lake,
  readings the lake holds that were never published, duplicate rows, and meters whose Σ
  consumption is not last − first reading (2.5 kWh × (readings − 1)).
* :func:`run` — the whole check: deployment, stream, ``faults`` at random moments
  (``gateway-kill``: SIGKILL one gateway, start it again after 0–1.5 s; ``broker-restart``:
  SIGTERM the broker — it saves its state — and start it again after 0–1 s; ``both``: a gateway
  killed and the broker restarted, restarted in random order; ``broker-crash``: SIGKILL the broker
  — its documented loss window, reported separately), then drain and :func:`verify`.

``benchmarks/fault_soak.py`` runs it for minutes; ``tests/devices/test_gateway_faults.py`` for seconds.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FAULTS", "Deployment", "FaultReport", "LedgerPublisher", "run", "verify"]

log = logging.getLogger(__name__)

FAULTS = ("gateway-kill", "broker-restart", "both", "broker-crash")
PREFIX = "88.123.4567"
STEP_KWH = 2.5
_REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mosquitto() -> str:
    exe = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
                                             if os.access(p, os.X_OK)), None)
    if exe is None:
        raise RuntimeError("mosquitto is not installed (Debian package 'mosquitto')")
    return exe


def register_value(i: int, k: int) -> float:
    """Meter ``i``'s register at reading ``k`` (kWh): 1000·(i+1) + 2.5·k."""
    return 1000.0 * (i + 1) + STEP_KWH * k


class Deployment:
    """A private broker, gateways and lake in ``work`` (see the module doc)."""

    def __init__(self, work, *, devices: int = 10, gateways: int = 1, batch_interval: float = 0.1,
                 autosave_interval: int = 1, autosave_on_changes: bool = False):
        import pandas as pd

        from workbench.devices import DeviceRegistry
        from workbench.devices.broker import DEFAULT_PLATFORM_USERS, write_broker_config
        from workbench.lake.store import Lake

        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.meters = [f"F{i:04d}" for i in range(devices)]
        self.reg_url = f"sqlite:///{self.work / 'registry.db'}"
        reg = DeviceRegistry(self.reg_url, prefix=PREFIX)
        self.creds = reg.provision_many([{"device_id": m, "type": "electricity_meter", "node_id": "F01",
                                          "quantities": {"register": "kWh"}} for m in self.meters])
        self.gateway_users = [f"platform-gateway-{k}" for k in range(gateways)]
        users = {**DEFAULT_PLATFORM_USERS, **{u: "gateway" for u in self.gateway_users}}
        files = write_broker_config(reg, self.work / "broker", port=self.port, platform_users=users,
                                    user="root" if hasattr(os, "geteuid") and os.geteuid() == 0 else None,
                                    autosave_interval=autosave_interval, autosave_on_changes=autosave_on_changes,
                                    log_types=("error", "warning", "notice", "information"))
        self.creds.update(files.new_credentials)
        reg.dispose()
        self.conf, self.broker_log = files.conf, files.log
        self.lake_root = self.work / "lake"
        Lake(self.lake_root).register_meters(pd.DataFrame({
            "meter_id": self.meters, "node_id": "F01", "unit": "kWh", "item": "grid",
            "source": "purchased_electricity", "register": "cumulative"}))
        self.batch_interval = batch_interval
        self.broker: subprocess.Popen | None = None
        self.gateways: list[subprocess.Popen | None] = [None] * gateways
        self._env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(_REPO),
                                                                               os.environ.get("PYTHONPATH")])))

    # ------------------------------------------------------------------ broker
    def start_broker(self, timeout: float = 10.0) -> None:
        out = open(self.work / "mosquitto.stdout", "ab")  # noqa: SIM115 - the broker's, closed with it
        self.broker = subprocess.Popen([_mosquitto(), "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.broker.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.broker.returncode}: "
                                   + (self.work / "mosquitto.stdout").read_text(errors="replace")[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s") from None
                time.sleep(0.02)

    def stop_broker(self, sig=signal.SIGTERM, timeout: float = 30.0) -> None:
        """SIGTERM: a clean shutdown (mosquitto saves its state); SIGKILL: a crash."""
        if self.broker is not None and self.broker.poll() is None:
            self.broker.send_signal(sig)
            self.broker.wait(timeout)
        self.broker = None

    # ------------------------------------------------------------------ gateways
    def start_gateway(self, k: int = 0) -> None:
        user = self.gateway_users[k]
        out = open(self.work / f"gateway-{k}.log", "ab")  # noqa: SIM115 - the gateway's, closed with it
        self.gateways[k] = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "gateway", "--broker", f"mqtt://127.0.0.1:{self.port}",
             "--lake", str(self.lake_root), "--registry", self.reg_url, "--username", user,
             "--partition", f"{k}/{len(self.gateways)}", "--batch-interval", str(self.batch_interval),
             "--rollup-every", "0"],
            cwd=_REPO, env={**self._env, "WB_GATEWAY_PASSWORD": self.creds[user]}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
        out.close()

    def gateway_log(self, k: int = 0) -> str:
        p = self.work / f"gateway-{k}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def wait_subscribed(self, k: int = 0, timeout: float = 60.0, *, times: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.gateway_log(k).count("subscribed to") < times:
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway {k} did not subscribe:\n{self.gateway_log(k)[-2000:]}")
            time.sleep(0.05)

    def kill_gateway(self, k: int = 0, sig=signal.SIGKILL) -> None:
        p = self.gateways[k]
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            p.wait(30)
        self.gateways[k] = None

    def close(self) -> None:
        for k in range(len(self.gateways)):
            self.kill_gateway(k, signal.SIGTERM)
        self.stop_broker()


class LedgerPublisher:
    """The known stream (see the module doc): ``rate`` messages/s in all, round-robin over the
    meters, each message one reading; ``t0_ms``/``step_ms`` place reading ``k`` in time."""

    def __init__(self, port: int, creds: dict, meters: list[str], *, rate: float, t0_ms: int, step_ms: int,
                 host: str = "127.0.0.1"):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.meters, self.rate, self.t0_ms, self.step_ms = meters, rate, t0_ms, step_ms
        self.published = 0
        self.acked: dict[str, set[int]] = {m: set() for m in meters}
        self.reason_codes: dict[int, int] = {}
        self.next_k = dict.fromkeys(meters, 0)
        self._mids: dict[str, dict[int, int]] = {m: {} for m in meters}
        self._early: dict[str, dict[int, int]] = {m: {} for m in meters}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.clients = {}
        for m in meters:
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=m, protocol=mqtt.MQTTv5)
            c.username_pw_set(m, creds[m])
            c.max_queued_messages_set(0)
            c.max_inflight_messages_set(100)
            c.reconnect_delay_set(0.1, 1)
            c.on_publish = self._on_publish
            c.user_data_set(m)
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            c.connect_async(host, port, keepalive=10, clean_start=False, properties=props)
            c.loop_start()
            self.clients[m] = c

    def _on_publish(self, client, meter, mid, reason_code, properties):
        with self._lock:
            rc = getattr(reason_code, "value", 0)
            self.reason_codes[rc] = self.reason_codes.get(rc, 0) + 1
            k = self._mids[meter].pop(mid, None)
            if k is None:                       # PUBACK before publish() returned
                self._early[meter][mid] = rc
            elif rc < 0x80:
                self.acked[meter].add(k)

    def _publish(self, i: int, meter: str) -> None:
        k = self.next_k[meter]
        self.next_k[meter] = k + 1
        payload = json.dumps({"ts": self.t0_ms + k * self.step_ms, "values": {"register": register_value(i, k)}})
        # not under the lock: paho calls on_publish holding its own lock, which publish() takes too
        info = self.clients[meter].publish(f"wb/{meter}/telemetry", payload, qos=1)
        with self._lock:
            self.published += 1
            rc = self._early[meter].pop(info.mid, None)
            if rc is None:
                self._mids[meter][info.mid] = k
            elif rc < 0x80:
                self.acked[meter].add(k)

    def start(self) -> None:
        def loop():
            t_start, n = time.monotonic(), 0
            while not self._stop.is_set():
                for i, m in enumerate(self.meters):
                    self._publish(i, m)
                    n += 1
                ahead = n / self.rate - (time.monotonic() - t_start)
                if ahead > 0:
                    self._stop.wait(ahead)

        self._thread = threading.Thread(target=loop, name="ledger-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    @property
    def n_acked(self) -> int:
        with self._lock:
            return sum(len(s) for s in self.acked.values())

    def wait_acked(self, timeout: float) -> bool:
        """Whether every published message was acknowledged within ``timeout`` (paho re-sends)."""
        deadline = time.monotonic() + timeout
        while self.n_acked < self.published:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def close(self) -> None:
        self.stop()
        for c in self.clients.values():
            c.disconnect()
            c.loop_stop()


def _stored_count(lake_root) -> int:
    from workbench.lake.store import Lake

    lake = Lake(lake_root)
    if "readings" not in lake.tables():
        return 0
    return int(lake.sql("SELECT count(DISTINCT (meter_id, ts)) AS n FROM readings")["n"][0])


def verify(lake_root, publisher: LedgerPublisher) -> dict:
    """The lake against the publisher's ledger (see the module doc)."""
    import pandas as pd

    from workbench.lake.store import Lake

    lake = Lake(lake_root)
    if "readings" not in lake.tables():
        rows = pd.DataFrame({"meter_id": [], "ts": [], "value": []})
    else:
        rows = lake.sql("SELECT meter_id, epoch_ms(timezone('Asia/Shanghai', ts)) AS ms, value FROM readings")
    index = {m: i for i, m in enumerate(publisher.meters)}
    stored: dict[str, list[int]] = {m: [] for m in publisher.meters}
    wrong_value = extra = 0
    for m, ms, v in zip(rows["meter_id"], rows["ms"], rows["value"], strict=True):
        k, rem = divmod(int(ms) - publisher.t0_ms, publisher.step_ms)
        if m not in index or rem or not 0 <= k < publisher.next_k.get(m, 0):
            extra += 1
            continue
        stored[m].append(k)
        wrong_value += abs(v - register_value(index[m], k)) > 1e-9
    missing = duplicates = 0
    for m in publisher.meters:
        have = stored[m]
        duplicates += len(have) - len(set(have))
        missing += len(publisher.acked[m] - set(have))
    wrong_meters = 0
    if "consumption" in lake.tables():
        c = lake.sql("SELECT meter_id, sum(value) AS total FROM consumption GROUP BY ALL")
        totals = dict(zip(c["meter_id"], c["total"], strict=True))
        for m in publisher.meters:
            ks = set(stored[m])
            expect = STEP_KWH * (max(ks) - min(ks)) if ks else 0.0
            wrong_meters += abs(totals.get(m, 0.0) - expect) > 1e-6 * (1 + expect)
    return {"acked": publisher.n_acked, "published": publisher.published, "stored_rows": len(rows),
            "missing": missing, "extra": extra, "duplicates": duplicates, "wrong_values": int(wrong_value),
            "consumption_wrong_meters": wrong_meters,
            "no_subscriber_acks": publisher.reason_codes.get(0x10, 0),
            "refused_acks": sum(n for rc, n in publisher.reason_codes.items() if rc >= 0x80)}


@dataclass
class FaultReport:
    seconds: float
    faults: list = field(default_factory=list)          # (t, kind, detail)
    result: dict = field(default_factory=dict)
    drain_s: float = 0.0

    @property
    def ok(self) -> bool:
        r = self.result
        return r.get("missing") == 0 and r.get("extra") == 0 and r.get("duplicates") == 0 and \
            r.get("consumption_wrong_meters") == 0 and r.get("wrong_values") == 0 and r.get("published") == r.get("acked")

    def counts(self) -> dict:
        out: dict[str, int] = {}
        for _t, kind, _d in self.faults:
            out[kind] = out.get(kind, 0) + 1
        return out


def run(work, *, seconds: float = 20.0, faults: tuple[str, ...] = ("gateway-kill", "broker-restart", "both"),
        n_faults: int | None = None, interval: tuple[float, float] = (1.0, 3.0), devices: int = 10,
        gateways: int = 1, rate: float = 300.0, seed: int = 1, drain: float = 120.0,
        progress: Callable[[str], None] | None = None, **deployment) -> FaultReport:
    """Stream for ``seconds`` with faults (kinds from ``faults``) every ``interval`` seconds (or
    ``n_faults`` spread evenly), then drain and verify.  ``progress`` gets one line per event;
    ``deployment``: more :class:`Deployment` options (``autosave_interval`` …)."""
    say = progress or (lambda text: log.info("%s", text))
    rnd = random.Random(seed)
    dep = Deployment(work, devices=devices, gateways=gateways, **deployment)
    step_ms = 60_000
    expected = rate / devices * (seconds + 60) * 1.5
    while expected * step_ms > 300 * 86400 * 1000:       # stay inside the gateway's plausible past
        step_ms //= 2
    now = int(time.time() * 1000)
    t0_ms = (now - 330 * 86400 * 1000) // 60_000 * 60_000
    report = FaultReport(seconds=seconds)
    pub = None
    try:
        dep.start_broker()
        for k in range(gateways):
            dep.start_gateway(k)
        for k in range(gateways):
            dep.wait_subscribed(k)
        pub = LedgerPublisher(dep.port, dep.creds, dep.meters, rate=rate, t0_ms=t0_ms, step_ms=step_ms)
        pub.start()
        t_start = time.monotonic()
        next_at = t_start + (seconds / (n_faults + 1) if n_faults else rnd.uniform(*interval))
        while time.monotonic() - t_start < seconds:
            if time.monotonic() < next_at:
                time.sleep(0.02)
                continue
            kind = rnd.choice(faults)
            k = rnd.randrange(gateways)
            began = time.monotonic()
            t = round(began - t_start, 2)
            if kind == "gateway-kill":
                dep.kill_gateway(k)
                time.sleep(rnd.uniform(0, 1.5))
                dep.start_gateway(k)
                detail = f"gateway {k}"
            elif kind in ("broker-restart", "broker-crash"):
                dep.stop_broker(signal.SIGTERM if kind == "broker-restart" else signal.SIGKILL)
                time.sleep(rnd.uniform(0, 1.0))
                dep.start_broker()
                detail = "SIGTERM" if kind == "broker-restart" else "SIGKILL"
            else:                              # both, in random order
                dep.kill_gateway(k)
                dep.stop_broker()
                steps = [dep.start_broker, lambda k=k: dep.start_gateway(k)]
                rnd.shuffle(steps)
                for s in steps:
                    time.sleep(rnd.uniform(0, 0.8))
                    s()
                detail = f"gateway {k} + broker"
            report.faults.append((t, kind, detail))
            say(f"{t:7.2f} s  {kind:<15} {detail:<18} published {pub.published:,}, acked {pub.n_acked:,}")
            step = seconds / (n_faults + 1) if n_faults else rnd.uniform(*interval)
            next_at = max(began + step, time.monotonic() + 0.2)     # gaps from fault to fault
        pub.stop()
        t_drain = time.monotonic()
        if not pub.wait_acked(drain):
            say(f"not every message was acknowledged within {drain:g} s ({pub.n_acked:,} of {pub.published:,})")
        target = pub.n_acked
        stored, still = _stored_count(dep.lake_root), time.monotonic()
        while stored < target and time.monotonic() - t_drain < drain and time.monotonic() - still < 15:
            time.sleep(0.25)                   # until all is stored, or nothing more arrives for 15 s
            now_stored = _stored_count(dep.lake_root)
            if now_stored != stored:
                stored, still = now_stored, time.monotonic()
        time.sleep(1.0)                        # anything late would show now
        report.drain_s = round(time.monotonic() - t_drain, 2)
        report.result = verify(dep.lake_root, pub)
        return report
    finally:
        if pub is not None:
            pub.close()
        dep.close()
