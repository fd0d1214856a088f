"""MQTT → lake gateway against a real Mosquitto (tests/mqtt.py): commit-before-ack, idempotent storage
under redelivery, a gateway killed mid-stream, a broker restart, and quarantine of bad messages."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

paho = pytest.importorskip("paho.mqtt.client")

from mqtt import running_mosquitto, wait_for
from pg import free_port

from workbench.devices import DeviceRegistry
from workbench.devices.broker import write_broker_config
from workbench.devices.gateway import (
    Gateway,
    TelemetryError,
    parse_broker_url,
    parse_telemetry,
)
from workbench.lake.store import Lake

ROOT = "wb"
PREFIX = "88.123.4567"
METERS = ["M1", "M2", "M3"]
STEP_MS = 15 * 60 * 1000
START_MS = (int(time.time() * 1000) - 6 * 86400 * 1000) // STEP_MS * STEP_MS
REPO = Path(__file__).resolve().parents[2]


class Meters:
    """One persistent-session paho client per meter (QoS 1); counts PUBACKs."""

    def __init__(self, port, creds):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.clients, self.acked, self.sent = {}, set(), 0
        for m in METERS:
            c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=m, protocol=paho.MQTTv5)
            c.username_pw_set(m, creds[m])
            c.on_publish = lambda cl, u, mid, rc, props, m=m: self.acked.add((m, mid))
            c.reconnect_delay_set(0.1, 1)
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            c.connect("127.0.0.1", port, keepalive=10, clean_start=False, properties=props)
            c.loop_start()
            self.clients[m] = c
        assert wait_for(lambda: all(c.is_connected() for c in self.clients.values()), 10)

    def publish(self, start, stop):
        for k in range(start, stop):
            for i, (m, c) in enumerate(self.clients.items()):
                payload = {"ts": START_MS + k * STEP_MS, "values": {"register": 1000.0 * (i + 1) + 2.5 * k}}
                c.publish(f"{ROOT}/{m}/telemetry", json.dumps(payload), qos=1)
                self.sent += 1

    def all_acked(self, timeout=30):
        return wait_for(lambda: len(self.acked) >= self.sent, timeout)

    def close(self):
        for c in self.clients.values():
            c.disconnect()
            c.loop_stop()


@pytest.fixture
def env(tmp_path):
    reg_url = f"sqlite:///{tmp_path / 'registry.db'}"
    reg = DeviceRegistry(reg_url, prefix=PREFIX)
    creds = reg.provision_many(
        [{"device_id": "C-F01", "type": "collector", "node_id": "F01"}]
        + [{"device_id": m, "type": "electricity_meter", "node_id": "F01", "collector": "C-F01",
            "quantities": {"register": "kWh"}} for m in METERS])
    lake = Lake(tmp_path / "lake")
    lake.register_meters(pd.DataFrame({"meter_id": METERS, "node_id": "F01", "unit": "kWh",
                                       "item": "electricity", "register": "cumulative"}))
    port = free_port()
    run_as = "root" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    files = write_broker_config(reg, tmp_path / "conf", root=ROOT, port=port, user=run_as)
    creds.update(files.new_credentials)
    yield {"reg": reg, "reg_url": reg_url, "creds": creds, "lake_root": tmp_path / "lake", "lake": lake,
           "port": port, "conf": files.conf, "tmp": tmp_path, "user": run_as}
    reg.dispose()


def _stored(lake_root) -> tuple[int, int]:
    lake = Lake(lake_root)
    if "readings" not in lake.tables():
        return 0, 0
    r = lake.sql("SELECT count(*) AS n, count(DISTINCT (meter_id, ts, quantity)) AS d FROM readings")
    return int(r["n"][0]), int(r["d"][0])


def _gateway(env, **kw) -> Gateway:
    return Gateway("127.0.0.1", env["port"], Lake(env["lake_root"]), env["reg"], username="platform-gateway",
                   password=env["creds"]["platform-gateway"], client_id="platform-gateway", root=ROOT,
                   batch_interval=kw.pop("batch_interval", 0.1), **kw)


def _run_in_thread(gw):
    stop = threading.Event()
    t = threading.Thread(target=gw.run, args=(stop,), daemon=True)
    t.start()
    return stop, t


# --------------------------------------------------------------------------- validation


def test_parse_telemetry_shapes_and_reasons(env):
    dev = env["reg"].get("M1")
    now = START_MS + 10 * 86400 * 1000 // 2
    rows = parse_telemetry(dev, json.dumps([{"ts": START_MS, "values": {"register": 5}},
                                            {"ts": START_MS + STEP_MS, "values": {"register": 6.5}}]).encode(),
                           now_ms=now, quantity_names={"register": "active_energy"})
    assert [(r[0], r[3], r[4], r[5]) for r in rows] == \
        [("M1", "active_energy", 5.0, "kWh"), ("M1", "active_energy", 6.5, "kWh")]
    assert rows[0][1] == dev.identifier and rows[0][1].startswith(PREFIX) and rows[0][2] == START_MS
    bad = {
        b"{nope": "not JSON",
        b"[]": "empty list",
        json.dumps({"values": {"register": 1}}).encode(): "expected",
        json.dumps({"ts": START_MS // 1000, "values": {"register": 1}}).encode(): "looks like seconds",
        json.dumps({"ts": now + 3_600_000, "values": {"register": 1}}).encode(): "implausible",
        json.dumps({"ts": START_MS, "values": {"voltage": 230}}).encode(): "does not measure 'voltage'",
        json.dumps({"ts": START_MS, "values": {"register": "12"}}).encode(): "finite number",
        json.dumps({"ts": START_MS, "values": {"register": -1}}).encode(): "plausible range",
        json.dumps({"ts": START_MS, "values": {}}).encode(): "non-empty",
    }
    for payload, reason in bad.items():
        with pytest.raises(TelemetryError, match=reason):
            parse_telemetry(dev, payload, now_ms=now)
    # a message may state its units: converted with pint to the registered kWh, other kinds refused
    got = parse_telemetry(dev, json.dumps({"ts": START_MS, "values": {"register": 2500}, "units": {"register": "Wh"}}),
                          now_ms=now)
    assert [(r[4], r[5]) for r in got] == [(2.5, "kWh")]
    got = parse_telemetry(dev, json.dumps({"ts": START_MS, "values": {"register": 1.5}, "units": {"register": "MJ"}}),
                          now_ms=now)
    assert got[0][4] == pytest.approx(1.5 / 3.6)
    for units, reason in (({"register": "kg"}, "register in 'kg'"), ({"register": "parsec-ish"}, "register in"),
                          ("kWh", "'units' must be an object"), ({"voltage": "V"}, "does not measure 'voltage'")):
        with pytest.raises(TelemetryError, match=reason):
            parse_telemetry(dev, json.dumps({"ts": START_MS, "values": {"register": 1}, "units": units}), now_ms=now)
    with pytest.raises(TelemetryError, match="plausible range"):      # the range is checked after conversion
        parse_telemetry(dev, json.dumps({"ts": START_MS, "values": {"register": -1}, "units": {"register": "Wh"}}),
                        now_ms=now)
    assert parse_broker_url("mqtt://10.0.0.5:1884") == ("10.0.0.5", 1884)
    assert parse_broker_url("localhost") == ("localhost", 1883)
    with pytest.raises(ValueError):
        parse_broker_url("http://x")


# --------------------------------------------------------------------------- through the broker


def test_stored_then_acknowledged_and_redelivery_never_double_counts(env):
    with running_mosquitto(env["conf"], port=env["port"]):
        gw1 = _gateway(env)
        gw1._refresh()
        gw1.start()                            # connected, no run loop: subscribe by hand
        assert wait_for(lambda: (gw1._maintain(), gw1._connected.is_set())[1], 10)
        pub = Meters(env["port"], env["creds"])
        pub.publish(0, 50)
        assert pub.all_acked()
        assert wait_for(lambda: len(gw1._pending) == 150, 10)
        # store the batch, then die before acknowledging it (no DISCONNECT: a crash)
        batch = gw1._take()
        rep = gw1.process(batch)
        assert rep["rows_curated"] == 150 and _stored(env["lake_root"]) == (150, 150)
        gw1.client.loop_stop()
        gw1.client.socket().close()
        # the next gateway process resumes the session; the broker redelivers the 150 messages
        gw2 = _gateway(env)
        stop, t = _run_in_thread(gw2)
        assert wait_for(lambda: gw2.stats.acked >= 150, 20), gw2.stats
        assert gw2.stats.duplicates == 150 and gw2.stats.readings == 0
        pub.publish(50, 60)
        assert wait_for(lambda: _stored(env["lake_root"])[0] == 180, 20)
        stop.set()
        t.join(10)
        pub.close()
    assert _stored(env["lake_root"]) == (180, 180)
    # identifiers attached; raw zone keeps every batch as received
    lake = Lake(env["lake_root"])
    ids = set(lake.sql("SELECT DISTINCT identifier FROM readings")["identifier"])
    assert ids == {env["reg"].get(m).identifier for m in METERS}
    raw = lake.batches()
    assert (raw["source"] == "mqtt").sum() >= 3


def test_gateway_killed_mid_stream_and_broker_restarted_lose_nothing(env):
    """The gateway (a real `workbench gateway` process) is SIGKILLed while messages flow, then the
    broker is restarted: every reading is in the lake exactly once."""
    cmd = [sys.executable, "-m", "workbench.cli", "gateway", "--broker", f"mqtt://127.0.0.1:{env['port']}",
           "--lake", str(env["lake_root"]), "--registry", env["reg_url"], "--batch-size", "60",
           "--batch-interval", "0.1"]
    envv = dict(os.environ, WB_GATEWAY_PASSWORD=env["creds"]["platform-gateway"],
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    logf = open(env["tmp"] / "gateway.log", "ab")  # noqa: SIM115 - closed at the end

    def start():
        return subprocess.Popen(cmd, cwd=REPO, env=envv, stdout=logf, stderr=subprocess.STDOUT)

    total = 3 * 400
    broker_ctx = running_mosquitto(env["conf"], port=env["port"])
    broker_ctx.__enter__()
    gw = start()
    pub = None
    try:
        # a new gateway's session must exist before devices publish (MQTT keeps nothing for nobody)
        assert wait_for(lambda: "subscribed to" in (env["tmp"] / "gateway.log").read_text(), 30)
        pub = Meters(env["port"], env["creds"])
        pub.publish(0, 150)
        assert wait_for(lambda: _stored(env["lake_root"])[0] >= 120, 60), (env["tmp"] / "gateway.log").read_text()
        gw.send_signal(signal.SIGKILL)                      # mid-stream, no clean shutdown
        gw.wait(10)
        pub.publish(150, 250)
        assert pub.all_acked()
        gw = start()
        assert wait_for(lambda: _stored(env["lake_root"])[0] >= 3 * 250, 60)
        # the broker goes down (persistence saved) and comes back on the same port
        broker_ctx.__exit__(None, None, None)
        pub.publish(250, 300)                               # queued by the clients meanwhile
        time.sleep(0.5)
        broker_ctx = running_mosquitto(env["conf"], port=env["port"])
        broker_ctx.__enter__()
        pub.publish(300, 400)
        assert pub.all_acked(60)
        assert wait_for(lambda: _stored(env["lake_root"])[0] >= total, 60), \
            (_stored(env["lake_root"]), (env["tmp"] / "gateway.log").read_text()[-3000:])
        time.sleep(1.0)                                     # nothing more arrives afterwards
        assert _stored(env["lake_root"]) == (total, total)
        gw.send_signal(signal.SIGTERM)
        assert gw.wait(20) == 0
    finally:
        if gw.poll() is None:
            gw.kill()
        if pub is not None:
            pub.close()
        broker_ctx.__exit__(None, None, None)
        logf.close()
    log = (env["tmp"] / "gateway.log").read_text()
    assert "gateway stopped" in log and "acknowledged" in log
    # each meter's register continues without a gap or a repeat in the curated consumption
    lake = Lake(env["lake_root"])
    per_meter = lake.sql("SELECT meter_id, count(*) AS n FROM readings GROUP BY meter_id ORDER BY meter_id")
    assert per_meter["n"].tolist() == [400, 400, 400]


def test_bad_messages_are_quarantined_with_their_reason(env):
    with running_mosquitto(env["conf"], port=env["port"]):
        gw = _gateway(env)
        stop, t = _run_in_thread(gw)
        assert wait_for(gw._connected.is_set, 10)
        pub = Meters(env["port"], env["creds"])
        c = pub.clients["M1"]
        c.publish(f"{ROOT}/M1/telemetry", b"{not json", qos=1)
        c.publish(f"{ROOT}/M1/telemetry", json.dumps({"ts": START_MS, "values": {"voltage": 231}}), qos=1)
        c.publish(f"{ROOT}/M1/telemetry", json.dumps({"ts": START_MS, "values": {"register": -5}}), qos=1)
        pub.sent += 3
        pub.publish(0, 2)
        assert pub.all_acked()
        assert wait_for(lambda: gw.stats.acked >= 9, 20), gw.stats
        env["reg"].set_status("M2", "isolated")             # data of an isolated device is not taken
        gw.reload_registry()
        pub.clients["M2"].publish(f"{ROOT}/M2/telemetry",
                                  json.dumps({"ts": START_MS + 5 * STEP_MS, "values": {"register": 3000}}), qos=1)
        assert wait_for(lambda: gw.stats.acked >= 10, 20), gw.stats
        stop.set()
        t.join(10)
        pub.close()
    lake = Lake(env["lake_root"])
    assert _stored(env["lake_root"]) == (6, 6)
    q = lake.sql("SELECT reason, payload FROM quarantine ORDER BY reason")
    reasons = " | ".join(q["reason"])
    assert len(q) == 4, reasons
    for text in ("not JSON", "does not measure 'voltage'", "outside the plausible range", "M2 is isolated"):
        assert text in reasons
    assert "{not json" in set(q["payload"])


def test_two_gateways_partition_the_stream(env, tmp_path):
    """Scale-out: two gateway processes (own users, own persistent sessions, plain subscriptions)
    each subscribe to their partition of the devices and receive only those; together they store
    every reading once, and one of them restarting loses nothing of its partition."""
    from workbench.devices.broker import DEFAULT_PLATFORM_USERS
    from workbench.devices.gateway import owner

    users = {**DEFAULT_PLATFORM_USERS, "platform-gateway-2": "gateway"}
    files = write_broker_config(env["reg"], tmp_path / "conf2", root=ROOT, port=env["port"],
                                platform_users=users, user=env["user"])
    creds = {**env["creds"], **files.new_credentials}
    mine = {k: [m for m in METERS if owner(m, 2) == k] for k in (0, 1)}
    assert mine[0] and mine[1], mine                      # the hash splits these three meters 1:2

    def gateway(k):
        u = ("platform-gateway", "platform-gateway-2")[k]
        return Gateway("127.0.0.1", env["port"], Lake(env["lake_root"]), env["reg"], username=u, password=creds[u],
                       client_id=u, root=ROOT, batch_interval=0.1, partition=(k, 2))

    with running_mosquitto(files.conf, port=env["port"]):
        gws = [gateway(0), gateway(1)]
        runs = [_run_in_thread(g) for g in gws]
        assert all(wait_for(g._connected.is_set, 10) for g in gws)
        pub = Meters(env["port"], creds)
        pub.publish(0, 100)
        assert pub.all_acked()
        assert wait_for(lambda: _stored(env["lake_root"])[0] >= 300, 30), [g.stats for g in gws]
        # gateway 1 stops; its devices' messages wait in its session; gateway 0 goes on with its own
        runs[1][0].set()
        runs[1][1].join(10)
        pub.publish(100, 200)
        assert pub.all_acked()
        assert wait_for(lambda: _stored(env["lake_root"])[0] >= 300 + 100 * len(mine[0]), 30)
        time.sleep(0.5)
        assert _stored(env["lake_root"])[0] == 300 + 100 * len(mine[0])
        gws[1] = gateway(1)
        runs[1] = _run_in_thread(gws[1])
        assert wait_for(lambda: _stored(env["lake_root"])[0] >= 600, 30), [g.stats for g in gws]
        for stop, t in runs:
            stop.set()
            t.join(10)
        pub.close()
    assert gws[0].stats.received == gws[0].stats.acked == 200 * len(mine[0])
    assert gws[1].stats.received == 100 * len(mine[1])          # the restarted one: its second 100
    # each session holds its partition's topics, recorded in the registry (C-F01 is a device too)
    subs = env["reg"].subscriptions_of()
    devices = {d.device_id for d in env["reg"].list() if not d.is_platform}
    assert subs["platform-gateway"] == {d for d in devices if owner(d, 2) == 0}
    assert subs["platform-gateway-2"] == {d for d in devices if owner(d, 2) == 1}
    assert _stored(env["lake_root"]) == (600, 600)
    # the registers' consumption is counted once however the stream was split: per meter the
    # sum of the intervals is last − first reading (Meters.publish: 2.5 kWh per step)
    lake = Lake(env["lake_root"])
    c = lake.sql("SELECT meter_id, count(*) AS n, sum(value) AS s FROM consumption GROUP BY ALL ORDER BY meter_id")
    assert c["s"].tolist() == pytest.approx([2.5 * 199] * 3), c
    assert "quarantine" not in lake.tables(), lake.sql("SELECT reason FROM quarantine")


def test_the_first_look_at_the_registry_does_not_wait_for_registry_refresh(env, monkeypatch):
    """time.monotonic() counts from boot: on a machine up for less than ``registry_refresh``
    seconds the gateway must still load the registry (and so its partition's topics) at start."""
    gw = _gateway(env, partition=(0, 1), registry_refresh=3600)
    monkeypatch.setattr(time, "monotonic", lambda: 10.0)           # 10 s after boot
    gw._refresh()
    assert {"C-F01", *METERS} <= set(gw._devices)


def test_smart_meter_register_feeds_readings_other_quantities_go_to_telemetry(env):
    """A smart meter that is a lake meter reports its register, power and voltage; a temperature
    sensor is no lake meter.  The register is curated as the meter's readings (→ consumption), the
    rest is kept as telemetry with the registry's units; a redelivered batch changes nothing."""
    reg = env["reg"]
    creds = reg.provision_many([
        {"device_id": "SM1", "type": "electricity_meter", "node_id": "F01", "collector": "C-F01",
         "quantities": {"register": "kWh", "power": "kW", "voltage": "V"}},
        {"device_id": "TS1", "type": "sensor", "node_id": "F01", "collector": "C-F01",
         "quantities": {"temperature": "degC"}, "config": {"ranges": {"temperature": [-40, 150]}}}])
    env["lake"].register_meters(pd.DataFrame({"meter_id": ["SM1"], "node_id": "F01", "unit": "kWh",
                                              "item": "electricity", "register": "cumulative"}))
    files = write_broker_config(reg, env["tmp"] / "conf", root=ROOT, port=env["port"], user=env["user"])
    creds.update(env["creds"], **files.new_credentials)
    msgs = {"SM1": [{"ts": START_MS + k * STEP_MS, "values": {"register": 100.0 + 2 * k, "power": 8.0 + k,
                                                               "voltage": 229.5}} for k in range(4)],
            "TS1": [{"ts": START_MS + k * STEP_MS, "values": {"temperature": 21.5 + k}} for k in range(4)]}
    with running_mosquitto(files.conf, port=env["port"]):
        gw = _gateway(env)
        stop, t = _run_in_thread(gw)
        assert wait_for(gw._connected.is_set, 10)
        clients = []
        for dev, items in msgs.items():
            c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=dev, protocol=paho.MQTTv5)
            c.username_pw_set(dev, creds[dev])
            c.connect("127.0.0.1", env["port"])
            c.loop_start()
            clients.append(c)
            for payload in (items[:2], items[2:], items[1:3]):       # the last one again: a redelivery
                c.publish(f"{ROOT}/{dev}/telemetry", json.dumps(payload), qos=1).wait_for_publish(10)
        # a message that states its units: power in W, stored in the registered kW
        clients[0].publish(f"{ROOT}/SM1/telemetry", json.dumps(
            {"ts": START_MS + 4 * STEP_MS, "values": {"register": 108.0, "power": 12000}, "units": {"power": "W"}}),
            qos=1).wait_for_publish(10)
        assert wait_for(lambda: gw.stats.acked >= 7, 20), gw.stats
        stop.set()
        t.join(10)
        for c in clients:
            c.disconnect()
            c.loop_stop()
    lake = Lake(env["lake_root"])
    r = lake.sql("SELECT quantity, value FROM readings WHERE meter_id = 'SM1' ORDER BY ts")
    assert r["value"].tolist() == [100.0, 102.0, 104.0, 106.0, 108.0] and set(r["quantity"]) == {"active_energy"}
    c = lake.sql("SELECT value FROM consumption WHERE meter_id = 'SM1' ORDER BY ts")
    assert c["value"].tolist() == pytest.approx([2.0, 2.0, 2.0, 2.0])
    tel = lake.sql("SELECT device_id, quantity, unit, count(*) AS n, sum(value) AS s FROM telemetry GROUP BY ALL "
                   "ORDER BY device_id, quantity")
    assert tel.to_dict("list") == {"device_id": ["SM1", "SM1", "TS1"], "quantity": ["power", "voltage", "temperature"],
                                   "unit": ["kW", "V", "degC"], "n": [5, 4, 4],
                                   "s": pytest.approx([50.0, 918.0, 92.0])}
    ident = lake.sql("SELECT DISTINCT identifier, node_id FROM telemetry WHERE device_id = 'TS1'")
    assert ident["identifier"].tolist() == [reg.get("TS1").identifier] and ident["node_id"].tolist() == ["F01"]
    assert "quarantine" not in lake.tables()


def _partitioned(env, tmp_path, users):
    from workbench.devices.broker import DEFAULT_PLATFORM_USERS

    files = write_broker_config(env["reg"], tmp_path / "conf2", root=ROOT, port=env["port"],
                                platform_users={**DEFAULT_PLATFORM_USERS, **{u: "gateway" for u in users}},
                                user=env["user"])
    return files, {**env["creds"], **files.new_credentials}


def test_a_device_is_enabled_only_once_a_gateway_subscribes_to_it(env, tmp_path):
    """With partitioned gateways, a device registered while everything runs is kept disabled at
    the broker until the gateway of its partition has subscribed to its telemetry — so the broker
    never acknowledges its messages for nobody (PUBACK "no matching subscribers" = lost)."""
    from mqtt import Probe

    from workbench.devices.access import BrokerAdmin
    from workbench.devices.broker import apply_broker_config
    from workbench.devices.gateway import owner

    files, creds = _partitioned(env, tmp_path, ["platform-gateway-2"])
    users = ("platform-gateway", "platform-gateway-2")
    with running_mosquitto(files.conf, port=env["port"]) as broker:
        gws = [Gateway("127.0.0.1", env["port"], Lake(env["lake_root"]), env["reg"], username=u, password=creds[u],
                       client_id=u, root=ROOT, batch_interval=0.1, partition=(k, 2), registry_refresh=3600)
               for k, u in enumerate(users)]
        runs = [_run_in_thread(g) for g in gws]
        assert all(wait_for(g._connected.is_set, 10) for g in gws)
        assert set(env["reg"].coverage()) == {"C-F01", *METERS}      # every running device is covered
        new = "M7"
        k = owner(new, 2)
        pw = env["reg"].provision(new, type="electricity_meter", node_id="F01", collector="C-F01",
                                  quantities={"register": "kWh"})
        with BrokerAdmin("127.0.0.1", env["port"], username="platform-admin", password=creds["platform-admin"]) as admin:
            apply = {"admin": admin, "pid": broker.proc.pid, "root": ROOT, "port": env["port"], "user": env["user"]}
            changes = apply_broker_config(env["reg"], files.conf.parent, **apply)
            assert "client M7 created" in changes and "client M7 disabled" in changes
            early = Probe("127.0.0.1", env["port"], new, pw)
            early.close()
            assert early.connack.value == 0x87                       # refused: nobody would store it
            gws[k].reload_registry()                                 # its gateway follows the registry
            assert wait_for(lambda: new in env["reg"].subscriptions_of().get(users[k], set()), 10)
            assert new not in env["reg"].subscriptions_of().get(users[1 - k], set())
            assert "client M7 enabled" in apply_broker_config(env["reg"], files.conf.parent, **apply)
        dev = Probe("127.0.0.1", env["port"], new, pw)
        try:
            assert dev.ok
            assert dev.publish(f"{ROOT}/{new}/telemetry",
                               json.dumps({"ts": START_MS, "values": {"register": 7.0}})).value == 0
        finally:
            dev.close()
        assert wait_for(lambda: gws[k].stats.acked >= 1, 10)
        for stop, t in runs:
            stop.set()
            t.join(10)
    tel = Lake(env["lake_root"]).sql("SELECT device_id, value FROM telemetry")
    assert tel.to_dict("list") == {"device_id": ["M7"], "value": [7.0]}          # M7 is no lake meter


def test_changing_the_number_of_gateways_keeps_every_device_covered(env, tmp_path):
    """One gateway (wildcard) becomes two, restarted in the wrong order: gateway 0 of 2 keeps the
    wildcard until gateway 1 covers its devices, then drops it; a stream running throughout is
    stored completely and once."""
    from workbench.devices.gateway import owner

    files, creds = _partitioned(env, tmp_path, ["platform-gateway-2"])

    def gateway(user, partition):
        return Gateway("127.0.0.1", env["port"], Lake(env["lake_root"]), env["reg"], username=user,
                       password=creds[user], client_id=user, root=ROOT, batch_interval=0.1, partition=partition,
                       registry_refresh=0.3)

    with running_mosquitto(files.conf, port=env["port"]):
        a = gateway("platform-gateway", (0, 1))
        run_a = _run_in_thread(a)
        assert wait_for(a._connected.is_set, 10)
        assert env["reg"].subscriptions_of()["platform-gateway"] == {"*"}
        pub = Meters(env["port"], creds)
        pub.publish(0, 50)
        run_a[0].set()
        run_a[1].join(10)
        pub.publish(50, 100)                                 # waits in A's session
        a = gateway("platform-gateway", (0, 2))              # the wrong order: A first
        run_a = _run_in_thread(a)
        assert wait_for(a._connected.is_set, 10)
        mine = {d.device_id for d in env["reg"].list() if not d.is_platform and owner(d.device_id, 2) == 0}
        assert env["reg"].subscriptions_of()["platform-gateway"] == mine | {"*"}    # nobody else covers the rest
        pub.publish(100, 150)
        b = gateway("platform-gateway-2", (1, 2))
        run_b = _run_in_thread(b)
        assert wait_for(b._connected.is_set, 10)
        assert wait_for(lambda: env["reg"].subscriptions_of()["platform-gateway"] == mine, 10)   # wildcard dropped
        pub.publish(150, 200)
        assert pub.all_acked()
        assert wait_for(lambda: _stored(env["lake_root"])[1] >= 600, 30), _stored(env["lake_root"])
        time.sleep(0.5)
        for stop, t in (run_a, run_b):
            stop.set()
            t.join(10)
        pub.close()
    assert _stored(env["lake_root"]) == (600, 600)
    c = Lake(env["lake_root"]).sql("SELECT meter_id, sum(value) AS s FROM consumption GROUP BY ALL ORDER BY 1")
    assert c["s"].tolist() == pytest.approx([2.5 * 199] * 3)


def test_subscriptions_kept_until_another_gateway_covers_them(tmp_path):
    """The decision alone (no broker): gateway 0 of 2 holds the wildcard and two devices of the
    other partition from an earlier life; it drops a topic only when another active gateway's
    session covers it, and the wildcard only when every device it does not own is covered."""
    from workbench.devices.gateway import owner

    reg = DeviceRegistry(f"sqlite:///{tmp_path / 'r.db'}", prefix=PREFIX)
    ids = [f"D{i}" for i in range(12)]
    reg.provision_many([{"device_id": d, "type": "electricity_meter", "quantities": {"register": "kWh"}}
                        for d in ids])
    reg.ensure_platform_users({"gw-a": "gateway", "gw-b": "gateway"})
    mine = {d for d in ids if owner(d, 2) == 0}
    theirs = sorted(set(ids) - mine)
    gw = Gateway("127.0.0.1", 1, Lake(tmp_path / "lake"), reg, username="gw-a", password="x", client_id="gw-a",
                 root=ROOT, partition=(0, 2), rollup_every=None)
    calls = []
    gw._request = lambda unsub, devices: (calls.append((unsub, list(devices))), list(devices))[1]
    gw._refresh()
    gw._held = {"*", theirs[0], theirs[1]}
    gw._sync_subscriptions()
    assert gw._held == mine | {"*", theirs[0], theirs[1]}                 # nobody else covers anything
    reg.set_subscriptions("gw-b", {theirs[0]}, partition="1/2")
    gw._sync_subscriptions()
    assert calls[-1] == (True, [theirs[0]])                               # covered elsewhere: dropped
    assert gw._held == mine | {"*", theirs[1]}
    reg.set_subscriptions("gw-b", set(theirs), partition="1/2")
    gw._sync_subscriptions()
    assert gw._held == mine and reg.subscriptions_of()["gw-a"] == mine
    reg.set_status("gw-b", "isolated")                                    # an inactive gateway covers nothing
    assert reg.subscriptions_of() == {"gw-a": mine}
    reg.dispose()


def test_each_enterprises_devices_go_to_its_own_lake(tmp_path):
    """Two enterprises, each with its meter M1, behind one broker and one gateway: the devices
    (ids A-M1, B-M1) carry their enterprise and meter links; every message lands in its
    enterprise's lake under the meter id; a message of an unknown device is quarantined in the
    root's own lake."""
    reg = DeviceRegistry(f"sqlite:///{tmp_path / 'r.db'}", prefix=PREFIX)
    for e, dev, prefix in (("ent-a", "A-M1", "88.123.4567"), ("ent-b", "B-M1", "88.123.4568")):
        reg.provision(dev, type="electricity_meter", node_id="F01", quantities={"register": "kWh"},
                      enterprise_id=e, meter_id="M1", prefix=prefix)      # each enterprise its own prefix
        assert (reg.get(dev).enterprise_id, reg.get(dev).meter_id) == (e, "M1")
    root = Lake(tmp_path / "lake")
    for e in ("ent-a", "ent-b"):
        root.for_enterprise(e).register_meters(pd.DataFrame({"meter_id": ["M1"], "node_id": "F01", "unit": "kWh",
                                                              "item": "electricity", "register": "cumulative"}))
    gw = Gateway("127.0.0.1", 1, root, reg, username="gw", password="x", root=ROOT, rollup_every=None)
    t0 = START_MS
    batch = [(k + 1, 1, f"{ROOT}/{dev}/telemetry",
              json.dumps({"ts": t0 + k * STEP_MS, "values": {"register": base + 5.0 * k}}).encode(), time.time(), 0)
             for dev, base in (("A-M1", 100.0), ("B-M1", 9000.0)) for k in range(4)]
    batch.append((99, 1, f"{ROOT}/GHOST/telemetry", b'{"ts": 1, "values": {}}', time.time(), 0))
    rep = gw.process(batch)
    assert rep["rows_curated"] == 8 and rep["rows_quarantined"] == 1
    assert sorted(r["enterprise"] for r in rep["reports"]) == ["", "ent-a", "ent-b"]
    for e, base in (("ent-a", 100.0), ("ent-b", 9000.0)):
        r = root.retrieve("readings", enterprise=e)
        assert r["meter_id"].unique().tolist() == ["M1"] and sorted(r["value"]) == [base + 5.0 * k for k in range(4)]
        c = root.retrieve("consumption", enterprise=e)
        assert c["value"].sum() == pytest.approx(15.0)                  # 3 intervals of 5 kWh, own register
        assert set(r["identifier"]) == {reg.get({"ent-a": "A-M1", "ent-b": "B-M1"}[e]).identifier}
    q = root.sql("SELECT reason FROM quarantine")
    assert len(q) == 1 and "unknown device 'GHOST'" in q["reason"][0]
    raw_a = root.for_enterprise("ent-a").read_raw(root.for_enterprise("ent-a").batches()["batch_id"][0])
    assert b"A-M1" in raw_a and b"B-M1" not in raw_a                       # each raw zone keeps its own
    reg.dispose()
