"""Device simulator and topic/payload helpers (seed §7.3, §7.4): simulated demo meters publish to a
private Mosquitto generated from the registry (tests/mqtt.py); the platform's own users watch."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from itertools import pairwise

import pytest

paho = pytest.importorskip("paho.mqtt.client")
from mqtt import running_mosquitto, wait_for
from pg import free_port

from workbench.devices import DeviceRegistry, write_credentials
from workbench.devices import topics as T
from workbench.devices.broker import write_broker_config
from workbench.devices.simulator import (
    MeterModel,
    Simulator,
    local_hour_dow,
    simulatable_devices,
)
from workbench.devices.topics import device_topics

ROOT = "wb"
PREFIX = "88.123.4567"


# --------------------------------------------------------------------------- pure helpers


def test_topics_match_the_broker_acl():
    acl = device_topics(ROOT, "M0001")
    assert T.telemetry_topic(ROOT, "M0001") == acl["telemetry"][1] == "wb/M0001/telemetry"
    assert T.status_topic(ROOT, "M0001") == acl["status"][1]
    assert T.config_topic(ROOT, "M0001") == acl["config"][1]
    assert T.cmd_topic(ROOT, "M0001") == acl["cmd"][1]
    assert T.cmd_ack_topic("plant/a", "M0001") == "plant/a/M0001/cmd/ack"
    assert T.topic_filter(ROOT, "cmd_ack") == "wb/+/cmd/ack"
    assert T.parse_topic(ROOT, "wb/M0001/cmd/ack") == ("M0001", "cmd_ack")
    assert T.parse_topic(ROOT, "wb/M0001/telemetry") == ("M0001", "telemetry")
    assert T.parse_topic(ROOT, "wb/M0001/other") is None and T.parse_topic(ROOT, "xx/M1/status") is None
    with pytest.raises(T.DeviceError):
        T.telemetry_topic(ROOT, "M1/+")
    with pytest.raises(T.DeviceError):
        T.status_topic("wb/#", "M1")


def test_payloads_round_trip_and_errors():
    assert json.loads(T.telemetry_payload(1_767_225_600_000, {"register": 12.5})) == \
        {"ts": 1_767_225_600_000, "values": {"register": 12.5}}
    batch = json.loads(T.telemetry_payload(None, readings=[(1, {"c": 1.0}), (2, {"c": 2})]))
    assert batch == [{"ts": 1, "values": {"c": 1.0}}, {"ts": 2, "values": {"c": 2}}]
    with pytest.raises(T.PayloadError):
        T.telemetry_payload(1, {"c": float("nan")})
    st = T.parse_status(T.status_payload(5, online=True, battery=97.123, signal=-71.26, firmware="fw",
                                         uptime_s=12.7, config_version=3))
    assert st == {"ts": 5, "online": True, "battery": 97.1, "signal": -71.3, "firmware": "fw", "uptime_s": 12,
                  "config_version": 3}
    assert json.loads(T.status_payload(online=False, reason="connection lost")) == \
        {"online": False, "reason": "connection lost"}
    assert T.parse_config(T.config_payload(2, {"report_interval_s": 5})) == T.ConfigUpdate(2, {"report_interval_s": 5})
    assert T.parse_config(b'{"version": 3, "ts": 1, "interval_s": 60}') == T.ConfigUpdate(3, {"interval_s": 60})
    for bad in (b'{"config": {}}', b'{"version": 0}', b"[1]", b"nope"):
        with pytest.raises(T.PayloadError):
            T.parse_config(bad)
    cmd = T.parse_cmd(T.cmd_payload("c1", "set_interval", {"interval_s": 0.5}))
    assert cmd == T.Command("c1", "set_interval", {"interval_s": 0.5})
    assert T.parse_cmd(b'{"id": 7, "cmd": "restart"}') == T.Command("7", "restart", {})
    with pytest.raises(T.PayloadError) as err:
        T.parse_cmd(b'{"id": "c2", "cmd": "self_destruct"}')
    assert err.value.cmd_id == "c2"
    with pytest.raises(T.PayloadError):
        T.parse_cmd(b'{"id": "c3", "cmd": "set_interval", "args": {"interval_s": -1}}')
    ack = T.parse_cmd_ack(T.cmd_ack_payload("c1", True, 9, "ok", interval_s=0.5))
    assert (ack.id, ack.ok, ack.ts, ack.detail, ack.extra) == ("c1", True, 9, "ok", {"interval_s": 0.5})
    assert T.config_ack_id(4) == "config:4"


@pytest.fixture(scope="module")
def registry(demo_data):
    reg = DeviceRegistry("sqlite://", prefix=PREFIX)
    creds = reg.register_demo(demo_data / "meters.csv", PREFIX)
    yield reg, creds
    reg.dispose()


def _device(reg, device_id):
    return reg.get(device_id)


def test_meter_model_is_deterministic_and_follows_the_plant(registry):
    reg, _ = registry
    main, office, gas = _device(reg, "M0001"), _device(reg, "M0027"), _device(reg, "M0037")
    t0 = 1_767_225_600_000                       # 2026-01-01 00:00 UTC = 08:00 Thursday in the plant
    assert local_hour_dow(t0) == (8.0, 3)

    def series(dev, seed, n=50, step_ms=1000):
        m = MeterModel(dev, seed=seed)
        return [m.reading(t0 + i * step_ms)[next(iter(dev.quantities))] for i in range(n)]

    assert series(main, 1) == series(main, 1)
    assert series(main, 1) != series(main, 2)
    reg_main = series(main, 1)
    assert all(b > a for a, b in pairwise(reg_main))            # 14 MW: a register that moves
    g = series(gas, 1, step_ms=60_000)
    assert all(b >= a for a, b in pairwise(g)) and g[-1] > g[0]
    m = MeterModel(office, seed=1)
    noon_thu, night_thu, noon_sun = t0 + 4 * 3_600_000, t0 + 16 * 3_600_000, t0 + (3 * 24 + 4) * 3_600_000
    assert m.rate(noon_thu) > 3 * m.rate(night_thu) and m.rate(noon_thu) > 2 * m.rate(noon_sun)
    c = series(office, 1)
    assert all(v > 0 for v in c) and 0.5 < sum(c) / (50 / 3600 * m.rate(t0)) < 1.5    # kWh used ≈ kW × h
    # the demo's active metering devices: every meter but the retired gas meter, no collectors
    ids = [d.device_id for d in simulatable_devices(reg)]
    assert "M0035" not in ids and "M0001" in ids and not any(i.startswith("C-") for i in ids)


# --------------------------------------------------------------------------- with a broker


class Watcher:
    """A platform user (paho, MQTT v5) recording everything it receives."""

    def __init__(self, broker, user, password, subscriptions=()):
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}",
                             protocol=paho.MQTTv5)
        self.c.username_pw_set(user, password)
        self.messages: list = []
        self.lock = threading.Lock()
        self.acks: set = set()
        self.subacks = 0
        ready = threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p=None: ready.set()
        self.c.on_message = self._on_message
        self.c.on_publish = lambda c, u, mid, rc, p=None: self.acks.add(mid)
        self.c.on_subscribe = lambda c, u, mid, rcs, p=None: setattr(self, "subacks", self.subacks + 1)
        self.c.connect(broker.host, broker.port, keepalive=30)
        self.c.loop_start()
        assert ready.wait(5)
        for n, topic in enumerate(subscriptions, 1):
            self.c.subscribe(topic, qos=1)
            assert wait_for(lambda n=n: self.subacks >= n, 5)

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, json.loads(msg.payload), msg.retain, time.monotonic()))

    def on(self, topic, since: float = 0.0):
        with self.lock:
            return [(p, r) for t, p, r, at in self.messages if t == topic and at >= since]

    def publish(self, topic, payload: bytes, retain=False):
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        assert wait_for(lambda: info.mid in self.acks, 5)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture(scope="module")
def env(registry, tmp_path_factory):
    reg, creds = registry
    d = tmp_path_factory.mktemp("sim")
    port = free_port()
    run_as = "root" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    files = write_broker_config(reg, d / "conf", root=ROOT, port=port, user=run_as, log_types=("error", "warning"))
    creds = {**creds, **files.new_credentials}
    with running_mosquitto(files.conf, port=port) as broker:
        gw = Watcher(broker, "platform-gateway", creds["platform-gateway"],
                     [T.topic_filter(ROOT, "telemetry"), T.topic_filter(ROOT, "status"),
                      T.topic_filter(ROOT, "cmd_ack")])
        mgr = Watcher(broker, "platform-manager", creds["platform-manager"])
        yield {"reg": reg, "creds": creds, "broker": broker, "gw": gw, "mgr": mgr, "dir": d, "port": port}
        gw.close()
        mgr.close()


def _sim(env, ids, **kw):
    kw.setdefault("heartbeat_s", 0.5)
    return Simulator(env["broker"].host, env["port"], env["reg"], env["creds"], root=ROOT, device_ids=ids, **kw)


def test_telemetry_heartbeats_and_last_will(env):
    gw = env["gw"]
    ids = ["M0001", "M0002", "M0037"]
    t0 = time.monotonic()
    sim = _sim(env, ids, rate=10)
    try:
        assert sim.start() == 3
        assert wait_for(lambda: all(len(gw.on(f"wb/{i}/telemetry", t0)) >= 8 for i in ids), 5)
        assert wait_for(lambda: all(len(gw.on(f"wb/{i}/status", t0)) >= 2 for i in ids), 3)   # connect + heartbeat
        # the retained status a newcomer gets: online, with the heartbeat fields
        late = Watcher(env["broker"], "platform-manager", env["creds"]["platform-manager"], ["wb/M0001/status"])
        assert wait_for(lambda: late.on("wb/M0001/status"), 3)
        st, retained = late.on("wb/M0001/status")[0]
        late.close()
        assert retained and st["online"] is True and set(st) >= {"ts", "battery", "signal", "firmware", "uptime_s"}
        assert st["firmware"] == "demo-1.0" and -120 < st["signal"] < -30 and 0 < st["battery"] <= 100
    finally:
        stats = sim.abort()                               # power cut: no DISCONNECT
    now_ms = time.time() * 1000
    for i in ids:
        dev = env["reg"].get(i)
        msgs = [p for p, _ in gw.on(f"wb/{i}/telemetry", t0)]
        assert all(set(p) == {"ts", "values"} and set(p["values"]) == set(dev.quantities) for p in msgs)
        ts = [p["ts"] for p in msgs]
        assert ts == sorted(ts) and len(set(ts)) == len(ts) and now_ms - 10_000 < ts[0] <= now_ms
        q = next(iter(dev.quantities))
        vals = [p["values"][q] for p in msgs]
        assert all(isinstance(v, float | int) and v >= 0 for v in vals)
        if q == "register":                                          # a counter never goes back
            assert all(b >= a for a, b in pairwise(vals))
    main = [p["values"]["register"] for p, _ in gw.on("wb/M0001/telemetry", t0)]
    assert all(b > a for a, b in pairwise(main))               # the 14 MW main meter always moves
    assert stats.failed == 0 and stats.published >= 24 and stats.per_device["M0001"].readings_published >= 8
    # the broker publishes every device's last will: retained offline
    for i in ids:
        assert wait_for(lambda i=i: any(p["online"] is False for p, _ in gw.on(f"wb/{i}/status", t0)), 5), i
        off = [p for p, _ in gw.on(f"wb/{i}/status", t0) if not p["online"]][-1]
        assert off["reason"] == "connection lost" and off["firmware"] == "demo-1.0"
    late = Watcher(env["broker"], "platform-manager", env["creds"]["platform-manager"], ["wb/M0037/status"])
    assert wait_for(lambda: late.on("wb/M0037/status"), 3)
    (st, retained), = late.on("wb/M0037/status")
    late.close()
    assert retained and st["online"] is False


def test_batches_acks_and_clean_stop(env):
    gw = env["gw"]
    t0 = time.monotonic()
    sim = _sim(env, ["M0006", "M0033"], rate=5, batch=3, heartbeat_s=0)
    sim.start()
    assert wait_for(lambda: len(gw.on("wb/M0033/telemetry", t0)) >= 4, 5)
    stats = sim.stop()
    assert stats.failed == 0 and stats.pending == 0 and stats.acked == stats.published >= 8
    assert stats.readings_acked == 3 * stats.acked
    for i in ("M0006", "M0033"):
        msgs = [p for p, _ in gw.on(f"wb/{i}/telemetry", t0)]
        assert wait_for(lambda i=i: len(gw.on(f"wb/{i}/telemetry", t0)) == stats.per_device[i].acked, 3)
        assert all(isinstance(p, list) and len(p) == 3 for p in msgs)
        ts = [r["ts"] for p in msgs for r in p]
        assert ts == sorted(ts) and len(set(ts)) == len(ts)
        assert all(set(r["values"]) == {"consumption"} and r["values"]["consumption"] > 0 for p in msgs for r in p)
    # a clean stop says so itself (the broker sends no will after DISCONNECT)
    assert wait_for(lambda: any(p == {**p, "online": False, "reason": "stopped"}
                                for p, _ in gw.on("wb/M0033/status", t0)), 3)


def test_commands_and_retained_config_are_acknowledged(env):
    gw, mgr = env["gw"], env["mgr"]
    dev = "M0015"
    acks = f"wb/{dev}/cmd/ack"
    # a retained configuration published before the device connects: applied and acked on connect
    mgr.publish(f"wb/{dev}/config", T.config_payload(2, {"interval_s": 900, "report_interval_s": 0.5}), retain=True)
    t0 = time.monotonic()
    sim = _sim(env, [dev], rate=1, heartbeat_s=0)
    try:
        sim.start()
        d = sim.devices[dev]
        assert wait_for(lambda: any(p["id"] == "config:2" for p, _ in gw.on(acks, t0)), 5)
        ack = next(p for p, _ in gw.on(acks, t0) if p["id"] == "config:2")
        assert ack["ok"] is True and ack["config_version"] == 2 and "applied" in ack["detail"]
        assert d.config_version == 2 and d.interval == 0.5 and d.configs == [(2, {"interval_s": 900,
                                                                                  "report_interval_s": 0.5})]
        # set_interval: acknowledged, then telemetry comes faster
        mgr.publish(f"wb/{dev}/cmd", T.cmd_payload("c-1", "set_interval", {"interval_s": 0.05}))
        assert wait_for(lambda: any(p["id"] == "c-1" for p, _ in gw.on(acks, t0)), 3)
        ack = next(p for p, _ in gw.on(acks, t0) if p["id"] == "c-1")
        assert ack["ok"] is True and ack["interval_s"] == 0.05 and ack["ts"] > 1e12
        t1 = time.monotonic()
        time.sleep(0.6)
        assert len(gw.on(f"wb/{dev}/telemetry", t1)) >= 6
        # a bad command is refused with a reason
        mgr.publish(f"wb/{dev}/cmd", b'{"id": "c-2", "cmd": "format_disk"}')
        assert wait_for(lambda: any(p["id"] == "c-2" and p["ok"] is False for p, _ in gw.on(acks, t0)), 3)
        # restart: acked, reconnects (a new online status with uptime from 0), keeps publishing
        mgr.publish(f"wb/{dev}/cmd", T.cmd_payload("c-3", "restart"))
        assert wait_for(lambda: d.counts.connects == 2, 5)
        assert any(p["id"] == "c-3" and p["ok"] for p, _ in gw.on(acks, t0))
        t2 = time.monotonic()
        assert wait_for(lambda: len(gw.on(f"wb/{dev}/telemetry", t2)) >= 3, 3)
        # isolate: acked, telemetry stops
        mgr.publish(f"wb/{dev}/cmd", T.cmd_payload("c-4", "isolate"))
        assert wait_for(lambda: any(p["id"] == "c-4" and p["ok"] for p, _ in gw.on(acks, t0)), 3)
        time.sleep(0.2)
        t3 = time.monotonic()
        time.sleep(0.4)
        assert gw.on(f"wb/{dev}/telemetry", t3) == []
        assert [c.cmd for c in d.commands] == ["set_interval", "restart", "isolate"]
    finally:
        stats = sim.stop()
        mgr.publish(f"wb/{dev}/config", b"", retain=True)          # clear the retained config
    assert stats.failed == 0 and stats.cmd_acks >= 5


def test_wrong_password_is_refused(env):
    creds = {**env["creds"], "M0020": "not-the-password"}
    sim = Simulator(env["broker"].host, env["port"], env["reg"], creds, root=ROOT, device_ids=["M0020"],
                    heartbeat_s=0)
    try:
        assert sim.start(wait=1.0) == 0
        assert wait_for(lambda: sim.devices["M0020"].counts.refused, 3)
    finally:
        stats = sim.stop(drain_s=0.5)
    assert stats.published == 0 and "authori" in stats.per_device["M0020"].refused.lower()


def test_cli_simulate(env, cli_env, python):
    db = env["dir"] / "cli-registry.db"
    # the CLI reads a registry database and a credentials file: copy the in-memory registry's rows
    reg = DeviceRegistry(f"sqlite:///{db}")
    with env["reg"].engine.connect() as src, reg.engine.begin() as dst:
        rows = [dict(r._mapping) for r in src.execute(env["reg"].devices.select())]
        dst.execute(reg.devices.insert(), rows)
    reg.dispose()
    cred_file = write_credentials(env["dir"] / "creds.json", env["creds"])
    out = subprocess.run(
        [python, "-m", "workbench.cli", "devices", "simulate", "--broker", f"mqtt://127.0.0.1:{env['port']}",
         "--db", str(db), "--credentials", str(cred_file), "--count", "3", "--skip", "20", "--rate", "5",
         "--duration", "1.5", "--load", "--json"],
        env=cli_env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["devices"] == 3 and summary["failed"] == 0 and summary["pending"] == 0
    assert summary["acked"] == summary["published"] >= 15 and summary["readings_acked"] == 3 * summary["acked"]
    assert sorted(summary["per_device"]) == ["M0021", "M0022", "M0023"]
    assert "simulating 3 devices" in out.stderr
    human = subprocess.run(
        [python, "-m", "workbench.cli", "devices", "simulate", "--broker", f"127.0.0.1:{env['port']}",
         "--db", str(db), "--credentials", str(cred_file), "--device", "M0024", "--rate", "4", "--duration", "0.6"],
        env=cli_env, capture_output=True, text=True, timeout=60, check=False)
    assert human.returncode == 0, human.stderr
    assert "simulation summary" in human.stdout and "failed" in human.stdout
    bad = subprocess.run([python, "-m", "workbench.cli", "devices", "simulate", "--broker", "http://x",
                          "--db", str(db), "--credentials", str(cred_file)],
                         env=cli_env, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "mqtt://HOST" in bad.stderr


def test_one_network_thread_and_reconnect_after_broker_restart(env):
    """Every device's client is served by the simulator's one network thread (however many
    devices); when the broker goes away the devices reconnect by themselves once it is back
    (paho does not in an external loop: the simulator retries with backoff), and the QoS 1
    telemetry queued meanwhile is delivered (persistent sessions)."""
    reg, creds = env["reg"], env["creds"]
    port = free_port()
    run_as = "root" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    files = write_broker_config(reg, env["dir"] / "restart", root=ROOT, port=port, user=run_as,
                                log_types=("error", "warning"))
    ids = [d.device_id for d in simulatable_devices(reg) if d.device_id in creds][:12]
    assert len(ids) == 12
    before = threading.active_count()
    sim = Simulator("127.0.0.1", port, reg, creds, root=ROOT, device_ids=ids, rate=20, heartbeat_s=0)
    try:
        with running_mosquitto(files.conf, port=port):
            assert sim.start() == 12
            assert threading.active_count() == before + 1                   # one thread, not one per client
            assert [t.name for t in threading.enumerate()].count("wb-simulator") == 1
            assert wait_for(lambda: sim.stats().acked >= 12 * 5, 5)
        # broker stopped: every device notices, keeps publishing into its session queue, retries
        assert wait_for(lambda: sim.stats().connected == 0, 5)
        time.sleep(0.5)
        with running_mosquitto(files.conf, port=port):
            assert wait_for(lambda: sim.stats().connected == 12, 20)
            assert all(c.connects == 2 and not c.refused for c in sim.stats().per_device.values())
            acked = sim.stats().acked
            assert wait_for(lambda: sim.stats().acked >= acked + 12 * 5, 5)
            assert threading.active_count() == before + 1
            stats = sim.stop()
    finally:
        sim.stop(drain_s=0)
    assert threading.active_count() == before
    assert stats.failed == 0 and stats.pending == 0 and stats.acked == stats.published
