"""Remote management (seed §7.4) against a real Mosquitto: a configuration pushed and acknowledged,
firmware tracked from heartbeats, a command answered, a device isolated and restored."""
from __future__ import annotations

import os
import threading
import time

import pytest

paho = pytest.importorskip("paho.mqtt.client")

from mqtt import running_mosquitto, wait_for
from pg import free_port

from workbench.devices import DeviceRegistry, topics
from workbench.devices.broker import write_broker_config
from workbench.devices.manager import DeviceManager

ROOT = "wb"


class FieldDevice:
    """A minimal device: applies retained configs and answers commands on cmd/ack."""

    def __init__(self, port, device_id, password, firmware="1.0.0"):
        self.id, self.applied, self.connack, self.disconnects = device_id, [], None, 0
        self.interval = 900
        c = self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=device_id, protocol=paho.MQTTv5)
        c.username_pw_set(device_id, password)
        self.ready = threading.Event()

        def on_connect(cl, u, f, rc, p):
            self.connack = rc
            if rc.is_failure:
                cl.disconnect()
                self.ready.set()
                return
            cl.subscribe([(topics.config_topic(ROOT, device_id), 1), (topics.cmd_topic(ROOT, device_id), 1)])
            cl.publish(topics.status_topic(ROOT, device_id),
                       topics.status_payload(int(time.time() * 1000), online=True, firmware=firmware), qos=1,
                       retain=True)

        def on_message(cl, u, msg):
            now = int(time.time() * 1000)
            if msg.topic.endswith("/config"):
                upd = topics.parse_config(msg.payload)
                self.applied.append(upd.version)
                self.interval = upd.config.get("interval_s", self.interval)
                cl.publish(topics.cmd_ack_topic(ROOT, device_id),
                           topics.cmd_ack_payload(topics.config_ack_id(upd.version), True, now, "applied"), qos=1)
            else:
                cmd = topics.parse_cmd(msg.payload)
                if cmd.cmd == "set_interval":
                    self.interval = int(cmd.args["interval_s"])
                cl.publish(topics.cmd_ack_topic(ROOT, device_id),
                           topics.cmd_ack_payload(cmd.id, True, now, f"interval {self.interval} s"), qos=1)

        def on_disconnect(cl, u, f, rc, p):
            self.disconnects += 1

        c.on_connect, c.on_message, c.on_disconnect = on_connect, on_message, on_disconnect
        c.on_subscribe = lambda cl, u, mid, rcs, p: self.ready.set()
        c.connect("127.0.0.1", port, keepalive=10)
        c.loop_start()
        self.ready.wait(10)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def env(tmp_path):
    reg = DeviceRegistry(f"sqlite:///{tmp_path / 'registry.db'}", prefix="88.123.4567")
    creds = reg.provision_many([{"device_id": d, "type": "electricity_meter", "node_id": "F01",
                                 "quantities": {"register": "kWh"}, "firmware": "1.0.0"} for d in ("M1", "M2")])
    port = free_port()
    opts = {"port": port, "user": "root" if hasattr(os, "geteuid") and os.geteuid() == 0 else None}
    files = write_broker_config(reg, tmp_path / "conf", root=ROOT, **opts)
    creds.update(files.new_credentials)
    with running_mosquitto(files.conf, port=port) as broker:
        mgr = DeviceManager(reg, "127.0.0.1", port, username="platform-manager",
                            password=creds["platform-manager"], root=ROOT, broker_dir=tmp_path / "conf",
                            broker_options=opts, reload=broker.reload)
        yield {"reg": reg, "creds": creds, "port": port, "mgr": mgr, "broker": broker}
        mgr.close()
    reg.dispose()


def test_config_push_is_acknowledged_and_audited(env):
    reg, mgr = env["reg"], env["mgr"]
    dev = FieldDevice(env["port"], "M1", env["creds"]["M1"])
    try:
        v = mgr.push_config("M1", {"interval_s": 60, "ranges": {"register": [0, 1e9]}})
        assert v == reg.get("M1").config_version == 2
        ack = mgr.wait_config_ack("M1", v)
        assert ack is not None and ack.ok and dev.applied == [2] and dev.interval == 60
        assert mgr.push_config("M1", {"interval_s": 60, "ranges": {"register": [0, 1e9]}}) == 2   # unchanged
        whats = [r["what"] for r in reg.audit_log("M1")]
        assert "config" in whats and "config_ack" in whats
    finally:
        dev.close()
    # a device that was offline gets the retained configuration when it connects
    v = mgr.push_config("M2", {"interval_s": 300})
    late = FieldDevice(env["port"], "M2", env["creds"]["M2"])
    try:
        assert mgr.wait_config_ack("M2", v) is not None and late.applied == [v] and late.interval == 300
    finally:
        late.close()


def test_firmware_tracking_and_commands(env):
    reg, mgr = env["reg"], env["mgr"]
    dev = FieldDevice(env["port"], "M1", env["creds"]["M1"], firmware="2.1.0")
    try:
        assert wait_for(lambda: reg.get("M1").firmware == "2.1.0", 10)
        assert any(r["what"] == "update" and r["who"].startswith("device:M1") for r in reg.audit_log("M1"))
        cid = mgr.command("M1", "set_interval", {"interval_s": 30})
        ack = mgr.wait_ack("M1", cid)
        assert ack is not None and ack.ok and dev.interval == 30 and "30" in ack.detail
        assert [r["what"] for r in reg.audit_log("M1")][-2:] == ["cmd", "cmd_ack"]
    finally:
        dev.close()


def test_isolate_and_restore(env):
    reg, mgr = env["reg"], env["mgr"]
    dev = FieldDevice(env["port"], "M1", env["creds"]["M1"])
    try:
        assert not dev.connack.is_failure
        mgr.isolate("M1", reason="tampering suspected")
        assert reg.get("M1").status == "isolated"
        assert wait_for(lambda: dev.disconnects >= 1, 10)          # the broker dropped it at once
    finally:
        dev.close()
    refused = FieldDevice(env["port"], "M1", env["creds"]["M1"])
    assert refused.connack is not None and refused.connack.is_failure
    refused.close()
    assert "isolate" in [r["what"] for r in reg.audit_log("M1")]
    mgr.restore("M1")
    back = FieldDevice(env["port"], "M1", env["creds"]["M1"])
    try:
        assert back.connack is not None and not back.connack.is_failure
    finally:
        back.close()


def test_management_cli(env, monkeypatch):
    from click.testing import CliRunner

    from workbench.cli.main import main

    reg = env["reg"]
    db = str(reg.engine.url)
    monkeypatch.setenv("WB_MANAGER_PASSWORD", env["creds"]["platform-manager"])
    monkeypatch.setenv("WB_BROKER_ADMIN_PASSWORD", env["creds"]["platform-admin"])
    common = ["--db", db, "--broker", f"mqtt://127.0.0.1:{env['port']}"]
    dev = FieldDevice(env["port"], "M1", env["creds"]["M1"])
    try:
        r = CliRunner().invoke(main, ["devices", "push-config", "M1", "--config", '{"interval_s": 120}', *common])
        assert r.exit_code == 0, r.output
        assert "configuration version 2 published" in r.output and "version 2 applied" in r.output
        r = CliRunner().invoke(main, ["devices", "command", "M1", "set_interval", "--args", '{"interval_s": 45}',
                                      *common])
        assert r.exit_code == 0 and "set_interval done" in r.output and dev.interval == 45
        r = CliRunner().invoke(main, ["devices", "command", "M1", "set_interval", "--args", "{bad", *common])
        assert r.exit_code == 2 and "not JSON" in r.output
        broker = env["broker"]
        conf_dir = str(broker.conf.parent)
        user = ["--user", "root"] if os.geteuid() == 0 else []
        r = CliRunner().invoke(main, ["devices", "isolate", "M1", "--broker-dir", conf_dir, "--broker-pid",
                                      str(broker.proc.pid), "--reason", "test", *user, *common])
        assert r.exit_code == 0, r.output
        assert reg.get("M1").status == "isolated" and wait_for(lambda: dev.disconnects >= 1, 10)
        assert "disableClient | username=M1" in broker.log_text()       # the access plugin cut it off
        r = CliRunner().invoke(main, ["devices", "restore", "M1", "--broker-dir", conf_dir, "--broker-pid",
                                      str(broker.proc.pid), *user, *common])
        assert r.exit_code == 0 and reg.get("M1").status == "active"
        # a device registered while the broker runs: broker-config --apply gives it access at once
        pw = reg.provision("M3", type="electricity_meter", node_id="F01", quantities={"register": "kWh"})
        r = CliRunner().invoke(main, ["devices", "broker-config", "--db", db, "--out", conf_dir, "--root", ROOT,
                                      "--port", str(env["port"]), *user, "--apply", str(broker.proc.pid)])
        assert r.exit_code == 0, r.output
        assert "client M3 created" in r.output
        m3 = FieldDevice(env["port"], "M3", pw)
        try:
            assert m3.connack is not None and not m3.connack.is_failure
        finally:
            m3.close()
        monkeypatch.delenv("WB_BROKER_ADMIN_PASSWORD")
        r = CliRunner().invoke(main, ["devices", "isolate", "M1", "--broker-dir", conf_dir, "--broker-pid",
                                      str(broker.proc.pid), *user, *common])
        assert r.exit_code == 2 and "WB_BROKER_ADMIN_PASSWORD" in r.output
    finally:
        dev.close()
    monkeypatch.delenv("WB_MANAGER_PASSWORD")
    r = CliRunner().invoke(main, ["devices", "push-config", "M1", "--config", "{}", *common])
    assert r.exit_code == 2 and "WB_MANAGER_PASSWORD" in r.output
