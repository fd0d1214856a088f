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
from workbench.devices.access import BrokerAdmin, BrokerAdminError, access_document
from workbench.devices.broker import apply_broker_config, write_broker_config

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
        with BrokerAdmin(broker.host, broker.port, username="platform-admin",
                         password=creds["platform-admin"]) as admin:
            yield {"reg": reg, "creds": creds, "files": files, "broker": broker, "gw": gw, "port": port,
                   "user": run_as, "admin": admin}
        gw.close()
    reg.dispose()


def _regenerate(env) -> list[str]:
    """Apply the registry to the running broker (files, access rules, SIGHUP)."""
    mark = len(env["broker"].log_text())
    changes = apply_broker_config(env["reg"], env["files"].conf.parent, pid=env["broker"].proc.pid,
                                  admin=env["admin"], root=ROOT, port=env["port"], user=env["user"])
    assert env["broker"].wait_log("Reloading config.", start=mark)
    return changes


def _received(gw, topic, payload, timeout=3.0):
    return wait_for(lambda: any(t == topic and p == payload for t, p, _ in gw.messages), timeout)


def test_generated_files(tmp_path):
    reg = DeviceRegistry(f"sqlite:///{tmp_path / 'reg.db'}", prefix="88.123.4567")
    creds = provision_fleet(reg, ["M1", "M2"], node_id="F01.W01.P01")          # M9 isolated
    reg.provision("M8", type="electricity_meter", quantities={"register": "kWh"})
    reg.set_status("M8", "retired")
    f = write_broker_config(reg, tmp_path / "conf", root=ROOT, port=18830)
    assert stat.S_IMODE(f.passwd.stat().st_mode) == 0o600 and stat.S_IMODE(f.access.stat().st_mode) == 0o600
    users = [line.split(":", 1)[0] for line in f.passwd.read_text().splitlines()]
    assert "M9" not in users and "M8" not in users
    assert {"M1", "C-F01", "platform-gateway", "platform-manager", "platform-admin"} <= set(users)
    assert all(line.split(":", 1)[1].startswith("$7$") for line in f.passwd.read_text().splitlines())
    doc = json.loads(f.access.read_text())
    # nothing is allowed unless a role grants it; unsubscribing harms nobody
    assert doc["defaultACLAccess"] == {"publishClientSend": False, "publishClientReceive": False,
                                       "subscribe": False, "unsubscribe": True}
    clients = {c["username"]: c for c in doc["clients"]}
    roles = {r["rolename"]: {(a["acltype"], a["topic"]) for a in r["acls"]} for r in doc["roles"]}
    assert clients["M1"]["roles"] == [{"rolename": "device:M1"}] and "disabled" not in clients["M1"]
    assert roles["device:M1"] == {("publishClientSend", "wb/M1/telemetry"), ("publishClientSend", "wb/M1/status"),
                                  ("publishClientSend", "wb/M1/cmd/ack"),
                                  ("subscribeLiteral", "wb/M1/config"), ("publishClientReceive", "wb/M1/config"),
                                  ("subscribeLiteral", "wb/M1/cmd"), ("publishClientReceive", "wb/M1/cmd")}
    assert clients["M9"]["disabled"] is True and "M8" not in clients          # isolated: disabled; retired: unknown
    assert clients["platform-gateway"]["roles"] == [{"rolename": "platform:gateway"}]
    assert roles["platform:gateway"] == {(t, f"wb/+/{k}") for k in ("telemetry", "status", "cmd/ack")
                                         for t in ("subscribePattern", "publishClientReceive")}
    assert roles["platform:admin"] == {("publishClientSend", "$CONTROL/dynamic-security/v1"),
                                       ("subscribeLiteral", "$CONTROL/dynamic-security/v1/response"),
                                       ("publishClientReceive", "$CONTROL/dynamic-security/v1/response")}
    assert not any("$share" in t for rules in roles.values() for _, t in rules)
    conf = f.conf.read_text()
    for line in ("allow_anonymous false", "listener 18830 127.0.0.1", "persistence true",
                 "connection_messages true", "max_queued_messages 2000000", f"password_file {f.passwd}",
                 f"plugin_opt_config_file {f.access}", "autosave_interval 1", "max_packet_size 1048576",
                 f"log_dest file {f.log}"):
        assert line in conf
    assert "acl_file" not in conf and "mosquitto_dynamic_security.so" in conf
    assert not any(creds["M1"] in p.read_text() for p in (f.conf, f.passwd, f.access))
    assert "password" not in f.access.read_text() and "$7$" not in f.access.read_text()
    reg.dispose()


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


@pytest.mark.parametrize("topic", [f"{ROOT}/M2/config", f"{ROOT}/+/telemetry", f"{ROOT}/M2/telemetry",
                                   f"{ROOT}/+/config", f"{ROOT}/M1/#", "#", "$SYS/#",
                                   f"$share/wb-gateways/{ROOT}/+/telemetry", f"$share/x/{ROOT}/M1/config",
                                   "$CONTROL/dynamic-security/v1", "$CONTROL/dynamic-security/v1/response"])
def test_device_subscriptions_outside_its_own_downlink_are_refused_at_subscribe(env, topic):
    broker = env["broker"]
    m1 = Probe(broker.host, broker.port, "M1", env["creds"]["M1"])
    try:
        assert [rc.value for rc in m1.subscribe(topic)] == [NOT_AUTHORIZED]      # SUBACK 0x87
        assert [rc.value for rc in m1.subscribe(f"{ROOT}/M1/config")] == [1]     # its own: granted
    finally:
        m1.close()


def test_a_device_cannot_take_the_gateways_messages(env):
    """A device that tries a shared subscription on the telemetry (the gateways' old group, or any)
    is refused; every acknowledged reading reaches the gateway's session."""
    broker, gw = env["broker"], env["gw"]
    thief = Probe(broker.host, broker.port, "M1", env["creds"]["M1"])
    m2 = Probe(broker.host, broker.port, "M2", env["creds"]["M2"])
    try:
        for t in (f"$share/wb-gateways/{ROOT}/+/telemetry", f"$share/g/{ROOT}/M2/telemetry", f"{ROOT}/+/telemetry"):
            assert [rc.value for rc in thief.subscribe(t)] == [NOT_AUTHORIZED]
        tag = uuid.uuid4().hex
        sent = [f"{tag} {k}".encode() for k in range(100)]
        infos = [m2.c.publish(f"{ROOT}/M2/telemetry", p, qos=1) for p in sent]
        assert wait_for(lambda: all(i.mid in m2.acks for i in infos), 10)
        assert all(m2.acks[i.mid].value == 0 for i in infos)
        assert wait_for(lambda: sum(p.startswith(tag.encode()) for _, p, _ in gw.messages) == 100, 5)
        assert thief.messages == []
    finally:
        thief.close()
        m2.close()


def test_device_reads_only_its_own_downlink(env):
    broker = env["broker"]
    mgr = Probe(broker.host, broker.port, "platform-manager", env["creds"]["platform-manager"])
    m1 = Probe(broker.host, broker.port, "M1", env["creds"]["M1"])
    m2 = Probe(broker.host, broker.port, "M2", env["creds"]["M2"])
    try:
        m1.subscribe(f"{ROOT}/M2/config")              # refused at SUBSCRIBE (above): nothing arrives
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
        # the access plugin disables it: the broker closes its connection at once (and the audit
        # line names the admin that did it)
        assert wait_for(lambda: m3.disconnected is not None, 5), "isolated device still connected"
        assert broker.wait_log("Client M3 been disconnected by administrative action.")
        assert broker.wait_log("dynsec: platform-admin/platform-admin | disableClient | username=M3")
        again = Probe(broker.host, broker.port, "M3", creds["M3"])
        try:
            assert again.connack.value == NOT_AUTHORIZED
        finally:
            again.close()
        doc = json.loads(env["files"].access.read_text())
        assert next(c for c in doc["clients"] if c["username"] == "M3")["disabled"] is True
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


def test_registry_changes_reach_the_running_broker(env):
    """A device registered while the broker runs gets its rules through the plugin's control topic
    (the plugin reads its file only at start), a retired one loses them; applying twice changes
    nothing."""
    reg, broker, admin = env["reg"], env["broker"], env["admin"]
    new = reg.provision("M5", type="electricity_meter", node_id="F01.W01.P01", collector="C-F01",
                        quantities={"register": "kWh"})
    changes = _regenerate(env)
    assert changes == ["role device:M5 created", "client M5 created"]
    m5 = Probe(broker.host, broker.port, "M5", new)
    try:
        assert m5.ok
        assert [rc.value for rc in m5.subscribe(f"{ROOT}/M5/config")] == [1]
        assert [rc.value for rc in m5.subscribe(f"{ROOT}/M1/config")] == [NOT_AUTHORIZED]
        ok = f"m5 {uuid.uuid4().hex}".encode()
        assert m5.publish(f"{ROOT}/M5/telemetry", ok).value == 0
        assert _received(env["gw"], f"{ROOT}/M5/telemetry", ok)
        reg.set_status("M5", "retired", who="test")
        assert _regenerate(env) == ["client M5 deleted", "role device:M5 deleted"]
        assert wait_for(lambda: m5.disconnected is not None, 5), "retired device still connected"
    finally:
        m5.close()
    assert _regenerate(env) == []
    state = admin.state()
    assert {c["username"] for c in state["clients"]} == \
        {c["username"] for c in access_document(reg, root=ROOT)["clients"]}


def test_only_the_admin_role_reaches_the_control_topic(env):
    broker = env["broker"]
    mgr = Probe(broker.host, broker.port, "platform-manager", env["creds"]["platform-manager"])
    m1 = Probe(broker.host, broker.port, "M1", env["creds"]["M1"])
    try:
        grant = json.dumps({"commands": [{"command": "addClientRole", "username": "M1",
                                          "rolename": "platform:gateway"}]}).encode()
        for who in (m1, mgr):
            assert who.publish("$CONTROL/dynamic-security/v1", grant).value == NOT_AUTHORIZED
        assert [rc.value for rc in m1.subscribe(f"{ROOT}/+/telemetry")] == [NOT_AUTHORIZED]   # still nothing
    finally:
        m1.close()
        mgr.close()
    with pytest.raises(BrokerAdminError, match="could not connect"):
        BrokerAdmin(broker.host, broker.port, username="platform-manager",
                    password=env["creds"]["platform-manager"], timeout=2)
