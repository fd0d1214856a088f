"""Per-device client certificates (seed §7.3 b access security) enforced by a real Mosquitto started
from the generated configuration (tests/mqtt.py): the certificate listener takes the certificate's
CN as the user name (no password), the registry's ACL confines it, and the CRL generated from the
registry refuses isolated devices after a SIGHUP — one broker for the module."""
from __future__ import annotations

import json
import os
import stat
import threading
import time

import pandas as pd
import pytest

paho = pytest.importorskip("paho.mqtt.client")
pytest.importorskip("cryptography")
from cryptography import x509
from mqtt import Probe, provision_fleet, running_mosquitto, wait_for
from pg import free_port

from workbench.devices import DeviceRegistry
from workbench.devices.access import BrokerAdmin
from workbench.devices.broker import apply_broker_config, write_broker_config
from workbench.devices.gateway import Gateway
from workbench.devices.pki import ClientTLS, DeviceCA
from workbench.devices.simulator import Simulator
from workbench.lake.store import Lake

ROOT = "wb"
NOT_AUTHORIZED = 0x87
METERS = ["M1", "M2", "M3", "M4"]
# a second gateway user for the certificate listener: there the client id is the CN, and one client
# id can hold only one connection (the module's subscriber is platform-gateway)
PLATFORM = {"platform-gateway": "gateway", "platform-manager": "manager", "platform-admin": "admin",
            "gateway-tls": "gateway"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    reg = DeviceRegistry(f"sqlite:///{d / 'reg.db'}", prefix="88.123.4567")
    creds = provision_fleet(reg, METERS)
    ca = DeviceCA(d / "pki")
    certs = {m: ca.issue_device(m, d / "certs" / m) for m in [*METERS, "M9"]}
    port, tls_port = free_port(), free_port()
    run_as = "root" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    files = write_broker_config(reg, d / "conf", root=ROOT, port=port, user=run_as, tls_port=tls_port, pki=ca,
                                platform_users=PLATFORM)
    creds.update(files.new_credentials)
    certs["gateway-tls"] = ca.issue_device("gateway-tls", d / "certs" / "gateway-tls")
    with running_mosquitto(files.conf, port=port) as broker:
        # the platform's subscriber on the password listener sees what devices publish over TLS
        seen: list = []
        gw = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="platform-gateway", protocol=paho.MQTTv5)
        gw.username_pw_set("platform-gateway", creds["platform-gateway"])
        gw.on_message = lambda c, u, msg: seen.append((msg.topic, msg.payload))
        subscribed = threading.Event()
        gw.on_subscribe = lambda *a: subscribed.set()
        gw.on_connect = lambda c, *a: c.subscribe(f"{ROOT}/+/telemetry", qos=1)
        gw.connect("127.0.0.1", port)
        gw.loop_start()
        assert subscribed.wait(5)
        with BrokerAdmin("127.0.0.1", port, username="platform-admin", password=creds["platform-admin"]) as admin:
            yield {"reg": reg, "creds": creds, "ca": ca, "certs": certs, "files": files, "broker": broker,
                   "seen": seen, "port": port, "tls_port": tls_port, "user": run_as, "dir": d, "admin": admin}
        gw.disconnect()
        gw.loop_stop()
    reg.dispose()


def _tls(env, device: str) -> ClientTLS:
    return ClientTLS.from_dir(env["certs"][device].cert.parent)


def _regenerate(env):
    """Apply the registry to the running broker: files (passwords, CRL), access rules, SIGHUP."""
    mark = len(env["broker"].log_text())
    apply_broker_config(env["reg"], env["files"].conf.parent, pid=env["broker"].proc.pid, admin=env["admin"],
                        root=ROOT, port=env["port"], user=env["user"], tls_port=env["tls_port"], pki=env["ca"],
                        platform_users=PLATFORM)
    assert env["broker"].wait_log("Reloading config.", start=mark)


def _revoked(env) -> dict[int, x509.ReasonFlags]:
    crl = x509.load_pem_x509_crl(env["files"].tls.crl.read_bytes())
    return {r.serial_number: r.extensions.get_extension_for_class(x509.CRLReason).value.reason for r in crl}


def _telemetry(value: float) -> bytes:
    return json.dumps({"ts": int(time.time() * 1000), "values": {"register": value}}).encode()


def test_generated_tls_files(env):
    f, ca = env["files"], env["ca"]
    conf = f.conf.read_text()
    for line in (f"listener {env['port']} 127.0.0.1", f"listener {env['tls_port']} 127.0.0.1",
                 "require_certificate true", "use_identity_as_username true", f"crlfile {f.tls.crl}",
                 f"cafile {f.tls.ca}", f"certfile {f.tls.cert}", f"keyfile {f.tls.key}",
                 "per_listener_settings false", f"password_file {f.passwd}"):
        assert line in conf
    # the password listener's block is unchanged: the TLS block comes after it
    assert conf.index("use_username_as_clientid true") < conf.index(f"listener {env['tls_port']}")
    for secret in (f.tls.key, ca.key_path, env["certs"]["M1"].key):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert not any("ca.key" in line for line in conf.splitlines())
    server = x509.load_pem_x509_certificate(f.tls.cert.read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1"}
    m1 = x509.load_pem_x509_certificate(env["certs"]["M1"].cert.read_bytes())
    assert m1.subject.rfc4514_string() == "CN=M1" and m1.issuer == ca.cert.subject
    # M9 is isolated from the start: its certificate is on hold in the CRL, nobody else's
    assert _revoked(env) == {env["certs"]["M9"].serial: x509.ReasonFlags.certificate_hold}
    # regenerating keeps the server certificate (only the CRL is re-signed)
    before = f.tls.cert.read_bytes()
    write_broker_config(env["reg"], env["dir"] / "conf", root=ROOT, port=env["port"], user=env["user"],
                        tls_port=env["tls_port"], pki=ca, platform_users=PLATFORM)
    assert f.tls.cert.read_bytes() == before


def test_device_certificate_connects_without_password_and_publishes(env):
    broker = env["broker"]
    mark = len(broker.log_text())
    m1 = Probe("127.0.0.1", env["tls_port"], tls=_tls(env, "M1"))                          # no user name, no password
    try:
        assert m1.ok, (m1.connack, m1.disconnected, m1.error)
        payload = _telemetry(1234.5)
        assert m1.publish(f"{ROOT}/M1/telemetry", payload).value == 0
        assert wait_for(lambda: (f"{ROOT}/M1/telemetry", payload) in env["seen"], 3)
    finally:
        m1.close()
    # the CN is the user name and (use_username_as_clientid) the client id
    assert broker.wait_log("as M1 (p5, c1, k30, u'M1')", start=mark)


@pytest.mark.parametrize("case", ["other CA", "no certificate", "password but no certificate", "isolated M9"])
def test_certificate_login_refused(env, case, tmp_path):
    broker = env["broker"]
    if case == "other CA":
        rogue = DeviceCA(tmp_path / "rogue").issue_device("M1", tmp_path / "m1")
        tls = ClientTLS(env["files"].tls.ca, rogue.cert, rogue.key)   # trusts the broker, but not trusted by it
    elif case == "isolated M9":
        tls = _tls(env, "M9")
    else:
        tls = ClientTLS(env["files"].tls.ca)
    user, password = ("M2", env["creds"]["M2"]) if case.startswith("password") else (None, None)
    mark = len(broker.log_text())
    c = Probe("127.0.0.1", env["tls_port"], user, password, tls=tls)
    try:
        assert not c.ok, c.connack
        assert c.error is not None or c.disconnected is not None
    finally:
        c.close()
    expected = "peer did not return a certificate" if "no certificate" in case else "certificate verify failed"
    assert broker.wait_log(expected, start=mark)
    assert "New client connected" not in broker.log_text()[mark:]


def test_certificate_confined_to_own_topics(env):
    broker = env["broker"]
    m1 = Probe("127.0.0.1", env["tls_port"], tls=_tls(env, "M1"))
    try:
        assert m1.ok
        mark = len(broker.log_text())
        forged = _telemetry(666.0)
        rc = m1.publish(f"{ROOT}/M2/telemetry", forged)
        assert rc.value == NOT_AUTHORIZED, rc
        assert broker.wait_log(f"Denied PUBLISH from M1 (d0, q1, r0, m1, '{ROOT}/M2/telemetry'", start=mark)
        assert not wait_for(lambda: any(p == forged for _, p in env["seen"]), 0.5)
    finally:
        m1.close()


def test_isolation_revokes_the_certificate_until_restored(env):
    reg, broker, certs = env["reg"], env["broker"], env["certs"]
    live = Probe("127.0.0.1", env["tls_port"], tls=_tls(env, "M3"))
    other = Probe("127.0.0.1", env["tls_port"], tls=_tls(env, "M2"))
    try:
        assert live.ok and other.ok
        reg.set_status("M3", "isolated", who="test")
        _regenerate(env)
        assert _revoked(env)[certs["M3"].serial] == x509.ReasonFlags.certificate_hold
        # mosquitto 2.0.11 rebuilds the listener's TLS context with the new CRL on SIGHUP
        mark = len(broker.log_text())
        again = Probe("127.0.0.1", env["tls_port"], tls=_tls(env, "M3"))
        again.close()
        assert not again.ok
        assert broker.wait_log("certificate verify failed", start=mark)
        # the connection made before (the CRL is checked at the handshake only) is closed by the
        # access plugin, which disabled M3
        assert wait_for(lambda: live.disconnected is not None, 5), "isolated device still connected over TLS"
        assert broker.wait_log("Client M3 been disconnected by administrative action.")
        # other devices are untouched, also their open TLS connections
        assert other.disconnected is None
        ok = _telemetry(2.0)
        assert other.publish(f"{ROOT}/M2/telemetry", ok).value == 0
        assert wait_for(lambda: (f"{ROOT}/M2/telemetry", ok) in env["seen"], 3)
        # restored: the CRL no longer holds the certificate
        reg.set_status("M3", "active", who="test")
        _regenerate(env)
        assert certs["M3"].serial not in _revoked(env)
        back = Probe("127.0.0.1", env["tls_port"], tls=_tls(env, "M3"))
        try:
            assert back.ok
            assert back.publish(f"{ROOT}/M3/telemetry", _telemetry(3.0)).value == 0
        finally:
            back.close()
    finally:
        live.close()
        other.close()


def test_reissued_certificate_supersedes_the_old_one(env):
    old = env["certs"]["M4"]
    new = env["ca"].issue_device("M4", env["dir"] / "certs" / "M4-new")
    _regenerate(env)
    assert _revoked(env)[old.serial] == x509.ReasonFlags.superseded
    before = Probe("127.0.0.1", env["tls_port"], tls=ClientTLS(old.ca, old.cert, old.key))
    after = Probe("127.0.0.1", env["tls_port"], tls=ClientTLS.from_dir(new.cert.parent))
    try:
        assert not before.ok and after.ok
    finally:
        before.close()
        after.close()


def test_gateway_and_simulator_over_tls_store_every_reading(env, tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.register_meters(pd.DataFrame({"meter_id": ["M1", "M2"], "node_id": "F01", "unit": "kWh",
                                       "item": "electricity", "register": "cumulative"}))
    # the gateway with its own certificate (CN gateway-tls, role gateway) on the certificate listener,
    # no password
    gw = Gateway("127.0.0.1", env["tls_port"], lake, env["reg"], username="gateway-tls", client_id="gateway-tls",
                 root=ROOT, batch_interval=0.1, tls=_tls(env, "gateway-tls"), rollup_every=None)
    stop = threading.Event()
    t = threading.Thread(target=gw.run, args=(stop,), daemon=True)
    t.start()
    try:
        assert gw._connected.wait(10), "gateway did not subscribe over TLS"
        sim = Simulator("127.0.0.1", env["tls_port"], env["reg"], {}, root=ROOT, device_ids=["M1", "M2"], rate=25,
                        batch=3, heartbeat_s=0.5, cert_dir=env["dir"] / "certs")
        assert sim.start(wait=5) == 2
        time.sleep(1.5)
        stats = sim.stop(drain_s=5)
        assert stats.failed == 0 and stats.pending == 0 and stats.acked >= 40, stats.as_dict()
        assert not any(c.refused for c in stats.per_device.values())

        def stored() -> int:
            lk = Lake(tmp_path / "lake")
            if "readings" not in lk.tables():
                return 0
            return int(lk.sql("SELECT count(*) AS n FROM readings WHERE meter_id IN ('M1', 'M2')")["n"][0])

        assert wait_for(lambda: stored() >= stats.readings_acked, 10), (stored(), stats.readings_acked)
        assert stored() == stats.readings_acked
        assert gw.stats.quarantined == 0
    finally:
        stop.set()
        t.join(10)


def test_cli_cert_issue_and_broker_config(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from workbench.cli.main import main

    monkeypatch.chdir(tmp_path)
    reg = DeviceRegistry("sqlite:///devices.db", prefix="88.123.4567")
    reg.provision("M1", type="electricity_meter", quantities={"register": "kWh"})
    reg.dispose()
    run = CliRunner()
    res = run.invoke(main, ["devices", "cert", "issue", "M1", "--pki", "ca", "--out", "m1"])
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "m1").iterdir()} == {"device.crt", "device.key", "ca.crt"}
    assert stat.S_IMODE((tmp_path / "m1" / "device.key").stat().st_mode) == 0o600
    res = run.invoke(main, ["devices", "cert", "issue", "ghost", "--pki", "ca", "--out", "g"])
    assert res.exit_code == 2 and "not in the registry" in res.output
    res = run.invoke(main, ["devices", "broker-config", "--out", "broker", "--tls-port", "8883", "--pki", "ca",
                            "--user", "root"])
    assert res.exit_code == 0, res.output
    conf = (tmp_path / "broker" / "mosquitto.conf").read_text()
    assert "listener 1883 127.0.0.1" in conf and "listener 8883 127.0.0.1" in conf
    assert (tmp_path / "broker" / "tls" / "crl.pem").exists()
    res = run.invoke(main, ["devices", "broker-config", "--out", "plain", "--user", "root"])
    assert res.exit_code == 0 and "listener 8883" not in (tmp_path / "plain" / "mosquitto.conf").read_text()
