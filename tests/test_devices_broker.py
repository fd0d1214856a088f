"""Broker-enforced device authentication and authorisation (seed §7.3 b, §7.4 b), tested against a
real Mosquitto started from the generated configuration (tests/mqtt.py): one broker per module."""
from __future__ import annotations

import json
import os
import stat
import time
import uuid

import pytest

paho = pytest.importorskip("paho.mqtt.client")
from mqtt import Probe, provision_fleet, running_mosquitto, wait_for
from pg import free_port

from workbench.devices import DeviceRegistry
from workbench.devices.broker import write_broker_config

ROOT = "wb"
NOT_AUTHORIZED = 0x87              # MQTT v5 reason code (CONNACK, PUBACK)
DEVICES = ["M1", "M2", "M3", "M4"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("broker")
    reg = DeviceRegistry(f"sqlite:///{d / 'reg.db'}", prefix="88.123.4567")
    creds = provision_fleet(reg, DEVICES, node_id="F01.W01.P01")          # M9 isolated from the start
    port = free_port()
    run_as = "root" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    files = write_broker_config(reg, d / "conf", root=ROOT, port=port, user=run_as)
    creds.update(files.new_credentials)
    with running_mosquitto(files.conf, port=port) as broker:
        gw = Probe(broker.host, broker.port, "platform-gateway", creds["platform-gateway"])
        assert gw.ok, gw.connack
        assert [rc.value for rc in gw.subscribe(f"{ROOT}/+/telemetry")] == [1]
        yield {"reg": reg, "creds": creds, "files": files, "broker": broker, "gw": gw, "port": port, "user": run_as}
        gw.close()
    reg.dispose()


def _regenerate(env):
    write_broker_config(env["reg"], env["files"].conf.parent, root=ROOT, port=env["port"], user=env["user"])
    mark = len(env["broker"].log_text())
    env["broker"].reload()
    assert env["broker"].wait_log("Reloading config.", start=mark)


def _received(gw, topic, payload, timeout=3.0):
    return wait_for(lambda: any(t == topic and p == payload for t, p, _ in gw.messages), timeout)


def test_generated_files(env):
    f = env["files"]
    assert stat.S_IMODE(f.passwd.stat().st_mode) == 0o600 and stat.S_IMODE(f.acl.stat().st_mode) == 0o600
    users = [line.split(":", 1)[0] for line in f.passwd.read_text().splitlines()]
    assert "M9" not in users and {"M1", "C-F01", "platform-gateway", "platform-manager"} <= set(users)
    assert all(line.split(":", 1)[1].startswith("$7$") for line in f.passwd.read_text().splitlines())
    acl = f.acl.read_text()
    assert "user M1\ntopic write wb/M1/telemetry\ntopic write wb/M1/status\ntopic read wb/M1/config\n" \
           "topic read wb/M1/cmd\ntopic write wb/M1/cmd/ack\n" in acl
    assert "M9" not in acl and "topic read wb/+/telemetry" in acl
    conf = f.conf.read_text()
    for line in ("allow_anonymous false", f"listener {env['port']} 127.0.0.1", "persistence true",
                 "connection_messages true", "max_queued_messages 2000000", f"password_file {f.passwd}",
                 f"acl_file {f.acl}", f"log_dest file {f.log}"):
        assert line in conf
    assert not any(env["creds"]["M1"] in p.read_text() for p in (f.conf, f.passwd, f.acl))


def test_device_publishes_and_gateway_receives_qos1(env):
    m1 = Probe(env["broker"].host, env["broker"].port, "M1", env["creds"]["M1"])
    try:
        assert m1.ok, m1.connack
        payload = json.dumps({"ts": int(time.time() * 1000), "values": {"register": 1234.5}}).encode()
        assert m1.publish(f"{ROOT}/M1/telemetry", payload).value == 0
        assert _received(env["gw"], f"{ROOT}/M1/telemetry", payload)
    finally:
        m1.close()


@pytest.mark.parametrize("user,password", [("ghost", "whatever"), ("M2", "wrong-password"), ("M9", "x"),
                                           ("platform-gateway", "")])
def test_bad_credentials_are_refused_and_logged(env, user, password):
    broker = env["broker"]
    mark = len(broker.log_text())
    c = Probe(broker.host, broker.port, user, password)
    try:
        assert c.connack is not None and c.connack.is_failure
        assert c.connack.value == NOT_AUTHORIZED, c.connack           # CONNACK 0x87 Not authorized
    finally:
        c.close()
    assert broker.wait_log("Sending CONNACK to 127.0.0.1 (0, 135)", start=mark)
    assert broker.wait_log("disconnected, not authorised.", start=mark)


def test_wrong_password_mqtt311(env):
    broker = env["broker"]
    mark = len(broker.log_text())
    c = Probe(broker.host, broker.port, "M2", "nope", protocol=paho.MQTTv311)
    try:
        assert c.connack is not None and c.connack.is_failure and not c.ok
    finally:
        c.close()
    assert broker.wait_log("Sending CONNACK to 127.0.0.1 (0, 5)", start=mark)      # 3.1.1: 5 not authorised
    assert broker.wait_log("disconnected, not authorised.", start=mark)


@pytest.mark.parametrize("topic", [f"{ROOT}/M2/telemetry", f"{ROOT}/x/config", f"{ROOT}/M1/config",
                                   f"{ROOT}/M1/cmd", "other/topic", f"{ROOT}/M1/telemetry/extra"])
def test_publish_outside_own_topics_is_refused(env, topic):
    broker, gw = env["broker"], env["gw"]
    spy = Probe(broker.host, broker.port, "platform-manager", env["creds"]["platform-manager"])   # reads status/acks only
    m1 = Probe(broker.host, broker.port, "M1", env["creds"]["M1"])
    try:
        assert m1.ok
        mark = len(broker.log_text())
        payload = f"forged {uuid.uuid4().hex}".encode()
        rc = m1.publish(topic, payload)
        assert rc.value == NOT_AUTHORIZED, rc                           # PUBACK 0x87 Not authorized
        assert broker.wait_log(f"Denied PUBLISH from M1 (d0, q1, r0, m1, '{topic}'", start=mark)
        assert broker.wait_log("Sending PUBACK to M1 (m1, rc135)", start=mark)
        # and the message reaches nobody: the gateway (telemetry) and the manager (status/ack)
        assert not _received(gw, topic, payload, timeout=0.5)
        assert not any(p == payload for _, p, _ in spy.messages)
        # the device's own topic still works on the same connection
        ok = f"ok {uuid.uuid4().hex}".encode()
        assert m1.publish(f"{ROOT}/M1/telemetry", ok).value == 0
        assert _received(gw, f"{ROOT}/M1/telemetry", ok)
    finally:
        m1.close()
        spy.close()


def test_device_reads_only_its_own_downlink(env):
    broker = env["broker"]
    mgr = Probe(broker.host, broker.port, "platform-manager", env["creds"]["platform-manager"])
    m1 = Probe(broker.host, broker.port, "M1", env["creds"]["M1"])
    m2 = Probe(broker.host, broker.port, "M2", env["creds"]["M2"])
    try:
        # mosquitto 2.0.11 grants the SUBSCRIBE but checks read access on every delivery
        m1.subscribe(f"{ROOT}/M2/config")
        m1.subscribe(f"{ROOT}/+/telemetry")
        m2.subscribe(f"{ROOT}/M2/config")
        cfg = json.dumps({"version": 2, "config": {"interval_s": 60}}).encode()
        assert mgr.publish(f"{ROOT}/M2/config", cfg, retain=True).value == 0
        assert wait_for(lambda: any(p == cfg for _, p, _ in m2.messages), 3)
        m2_tel = f"m2 {uuid.uuid4().hex}".encode()
        assert m2.publish(f"{ROOT}/M2/telemetry", m2_tel).value == 0
        assert _received(env["gw"], f"{ROOT}/M2/telemetry", m2_tel)
        time.sleep(0.3)
        assert m1.messages == []                       # neither M2's config nor M2's telemetry
        # the gateway may not write downlinks
        gw_rc = env["gw"].publish(f"{ROOT}/M2/config", b"{}")
        assert gw_rc.value == NOT_AUTHORIZED
    finally:
        for c in (m1, m2, mgr):
            c.close()


def test_rotated_password_takes_effect_after_reload(env):
    reg, creds, broker = env["reg"], env["creds"], env["broker"]
    new = reg.rotate_password("M4", who="test")
    early = Probe(broker.host, broker.port, "M4", new)
    early.close()
    assert early.connack.value == NOT_AUTHORIZED                                # not reloaded yet
    _regenerate(env)
    old, cur = Probe(broker.host, broker.port, "M4", creds["M4"]), Probe(broker.host, broker.port, "M4", new)
    try:
        assert old.connack.value == NOT_AUTHORIZED and cur.ok
    finally:
        old.close()
        cur.close()


def test_isolated_device_is_cut_off_after_reload(env):
    reg, creds, broker, gw = env["reg"], env["creds"], env["broker"], env["gw"]
    m3 = Probe(broker.host, broker.port, "M3", creds["M3"])
    m2 = Probe(broker.host, broker.port, "M2", creds["M2"])
    try:
        assert m3.ok and m2.ok
        reg.set_status("M3", "isolated", who="test")
        _regenerate(env)
        # mosquitto re-applies security to connected clients on reload: M3's session is closed
        assert wait_for(lambda: m3.disconnected is not None, 5), "isolated device still connected"
        assert broker.wait_log("Client M3 disconnected.")
        again = Probe(broker.host, broker.port, "M3", creds["M3"])
        try:
            assert again.connack.value == NOT_AUTHORIZED
        finally:
            again.close()
        assert "user M3" not in env["files"].acl.read_text()
        # the others are untouched
        assert m2.disconnected is None
        ok = f"still {uuid.uuid4().hex}".encode()
        assert m2.publish(f"{ROOT}/M2/telemetry", ok).value == 0
        assert _received(gw, f"{ROOT}/M2/telemetry", ok)
        # re-activation restores access with the same credential
        reg.set_status("M3", "active", who="test")
        _regenerate(env)
        back = Probe(broker.host, broker.port, "M3", creds["M3"])
        try:
            assert back.ok
        finally:
            back.close()
    finally:
        m3.close()
        m2.close()
