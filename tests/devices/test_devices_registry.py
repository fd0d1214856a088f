"""Device registry (seed §7.3, §7.4): fields, validation, credentials, audit, demo registration, CLI."""
from __future__ import annotations

import json
import stat
import subprocess

import pytest
from click.testing import CliRunner

from workbench.cli.main import main
from workbench.core.boundary import Boundary
from workbench.core.meters import read_meters
from workbench.devices import (
    DeviceError,
    DeviceExists,
    DeviceNotFound,
    DeviceRegistry,
    mosquitto_hash,
    read_credentials,
    validate_device_id,
    verify_mosquitto_hash,
    write_credentials,
)
from workbench.identifiers.model import records_from_boundary

PREFIX = "88.123.4567"


@pytest.fixture
def reg(db_url):
    r = DeviceRegistry(db_url, prefix=PREFIX)
    yield r
    r.dispose()


def _collector_and_meter(reg):
    reg.provision("C-F01", type="collector", node_id="F01", who="alice")
    return reg.provision("M0002", type="electricity_meter", node_id="F01.W01.P01", collector="C-F01",
                         quantities={"consumption": "kWh"}, firmware="1.2.0", config={"interval_s": 900},
                         who="alice")


def test_provision_stores_only_a_mosquitto_hash(reg):
    pw = _collector_and_meter(reg)
    d = reg.get("M0002")
    assert len(pw) >= 32 and pw not in d.password_hash
    assert d.password_hash.startswith("$7$101$")
    assert verify_mosquitto_hash(pw, d.password_hash) and reg.verify_password("M0002", pw)
    assert not reg.verify_password("M0002", pw + "x")
    assert (d.identifier, d.type, d.node_id, d.collector) == (f"{PREFIX}/meter.M0002", "electricity_meter",
                                                               "F01.W01.P01", "C-F01")
    assert d.quantities == {"consumption": "kWh"} and d.firmware == "1.2.0"
    assert (d.config, d.config_version, d.status) == ({"interval_s": 900}, 1, "active")
    assert reg.get("C-F01").identifier == f"{PREFIX}/device.C-F01"
    # nowhere in the database is the plain password
    with reg.engine.connect() as conn:
        dump = repr([tuple(r) for t in (reg.devices, reg.audit) for r in conn.execute(t.select())])
    assert pw not in dump and d.password_hash not in dump.replace(repr(d.password_hash), "", 1)


def test_rotate_status_config_firmware_are_audited(reg):
    pw = _collector_and_meter(reg)
    pw2 = reg.rotate_password("M0002", who="bob")
    assert pw2 != pw and reg.verify_password("M0002", pw2) and not reg.verify_password("M0002", pw)
    assert reg.get("M0002").credential_version == 2
    assert reg.set_config("M0002", {"interval_s": 60}, who="bob") == 2
    assert reg.set_config("M0002", {"interval_s": 60}, who="bob") == 2          # unchanged: no new version
    reg.set_firmware("M0002", "1.3.0", who="bob")
    reg.set_status("M0002", "isolated", who="carol")
    assert reg.get("M0002").status == "isolated"
    assert [d.device_id for d in reg.list(status="isolated")] == ["M0002"]
    log = reg.audit_log("M0002")
    assert [(a["who"], a["what"]) for a in log] == [("alice", "provision"), ("bob", "rotate_password"),
                                                    ("bob", "config"), ("bob", "update"),
                                                    ("carol", "status:isolated")]
    rot = log[1]
    assert rot["before"]["credential"] != rot["after"]["credential"]
    assert "password_hash" not in rot["after"] and rot["after"]["credential"].startswith("sha256:")
    assert log[2]["before"]["config"] == {"interval_s": 900} and log[2]["after"]["config_version"] == 2
    assert log[3]["after"]["firmware"] == "1.3.0"
    assert log[4]["before"]["status"] == "active" and log[4]["after"]["status"] == "isolated"


@pytest.mark.parametrize("bad", ["a/b", "m+1", "#", "with space", "tab\t", "x:y", "$SYS", "", "é", "x" * 65])
def test_device_id_must_be_mqtt_safe(bad):
    with pytest.raises(DeviceError, match="device id"):
        validate_device_id(bad)


def test_invalid_fields_are_refused_and_nothing_is_written(reg):
    reg.provision("C-F01", type="collector", node_id="F01")
    with pytest.raises(DeviceError, match="'/'"):
        reg.provision("F01/M1", type="electricity_meter")
    with pytest.raises(DeviceError, match="unknown unit"):
        reg.provision("M1", type="electricity_meter", quantities={"energy": "furlongs_per_fortnight"})
    with pytest.raises(DeviceError, match="type"):
        reg.provision("M1", type="toaster")
    with pytest.raises(DeviceError, match="collector 'C-F09' is not registered"):
        reg.provision("M1", type="electricity_meter", collector="C-F09")
    reg.provision("M1", type="electricity_meter", collector="C-F01")
    with pytest.raises(DeviceError, match="not a collector"):
        reg.provision("M2", type="electricity_meter", collector="M1")
    with pytest.raises(DeviceExists, match="already registered"):
        reg.provision("M1", type="electricity_meter")
    with pytest.raises(DeviceExists, match="identifier"):
        reg.provision("M9", type="electricity_meter", identifier=f"{PREFIX}/METER.m1")  # same key, other case
    # all-or-nothing bulk provisioning
    with pytest.raises(DeviceError):
        reg.provision_many([{"device_id": "M3", "type": "gas_meter", "quantities": {"register": "Nm3"}},
                            {"device_id": "M 4", "type": "gas_meter"}])
    assert reg.find("M3") is None
    with pytest.raises(DeviceNotFound):
        reg.set_status("nope", "isolated")
    with pytest.raises(DeviceError, match="status"):
        reg.set_status("M1", "asleep")
    assert [d.device_id for d in reg.list()] == ["C-F01", "M1"]


def test_hash_format_matches_mosquitto_passwd(tmp_path):
    # ours verifies the same way mosquitto does: cross-check with a line written by mosquitto_passwd
    import shutil

    exe = shutil.which("mosquitto_passwd")
    if exe is None:
        pytest.skip("mosquitto_passwd not installed")
    f = tmp_path / "p"
    f.write_text("")
    subprocess.run([exe, "-b", str(f), "dev1", "s3cret-Ω"], check=True)
    stored = f.read_text().strip().split(":", 1)[1]
    assert stored.startswith("$7$101$")
    assert verify_mosquitto_hash("s3cret-Ω", stored) and not verify_mosquitto_hash("s3cret", stored)
    salt = __import__("base64").b64decode(stored.split("$")[3])
    assert mosquitto_hash("s3cret-Ω", salt=salt) == stored             # byte-for-byte the same line


def test_register_demo_meters_and_collectors(demo_data, tmp_path):
    reg = DeviceRegistry(f"sqlite:///{tmp_path / 'd.db'}")
    boundary = Boundary.read_csv(demo_data / "boundary.csv")
    meters = read_meters(demo_data / "meters.csv")
    creds = reg.register_demo(meters, PREFIX, boundary, who="setup")
    devices = {d.device_id: d for d in reg.list()}
    facilities = sorted(set(boundary.facility_of(meters["node_id"])))
    assert sorted(d for d, x in devices.items() if x.type == "collector") == [f"C-{f}" for f in facilities]
    assert set(meters["meter_id"]) <= set(devices)
    removed = set(meters.loc[meters["removed"] != "", "meter_id"])
    assert removed and all(devices[m].status == "retired" for m in removed)
    assert set(creds) == set(devices) - removed
    # identifiers equal what the identifier node registers for the meter nodes of the boundary
    idents = {}
    recs = records_from_boundary(boundary, PREFIX)
    for rec in recs:
        node = json.loads(rec.get(1).value)["node_id"]
        if node in devices:
            idents[node] = str(rec.identifier)
    assert idents and all(devices[m].identifier == idents[m] for m in meters["meter_id"])
    for r in meters.itertuples():
        d = devices[r.meter_id]
        assert d.node_id == r.node_id
        assert d.collector == f"C-{boundary.facility_of([r.node_id]).iloc[0]}"
        assert d.quantities == {("register" if r.register == "cumulative" else "consumption"): r.unit}
        assert d.config["register"] == r.register and d.config["serial"] == r.serial
    assert devices["M0001"].collector == "C-ENT"              # the enterprise main meter
    assert {devices[m].type for m in meters.loc[meters["unit"] == "Nm3", "meter_id"]} == {"gas_meter"}
    assert {devices[m].type for m in meters.loc[meters["item"] == "heat", "meter_id"]} == {"steam_meter"}


def test_credentials_file_is_private(tmp_path):
    p = write_credentials(tmp_path / "c.json", {"M1": "a", "M2": "b"})
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    write_credentials(p, {"M2": "c"}, merge=True)
    assert read_credentials(p) == {"M1": "a", "M2": "c"}


def test_cli_register_demo_broker_config_list(demo_data, tmp_path):
    db = f"sqlite:///{tmp_path / 'reg.db'}"
    creds = tmp_path / "creds.json"
    runner = CliRunner()
    r = runner.invoke(main, ["devices", "register-demo", "--db", db, "--prefix", PREFIX,
                             "--meters", str(demo_data / "meters.csv"),
                             "--boundary", str(demo_data / "boundary.csv"), "--credentials", str(creds)])
    assert r.exit_code == 0, r.output
    c = read_credentials(creds)
    assert "M0002" in c and stat.S_IMODE(creds.stat().st_mode) == 0o600
    out = tmp_path / "broker"
    r = runner.invoke(main, ["devices", "broker-config", "--db", db, "--out", str(out), "--port", "18883",
                             "--root", "plant1/wb"])
    assert r.exit_code == 0, r.output
    conf = (out / "mosquitto.conf").read_text()
    assert "listener 18883 127.0.0.1" in conf and "allow_anonymous false" in conf
    access = json.loads((out / "dynamic-security.json").read_text())
    m2 = next(r for r in access["roles"] if r["rolename"] == "device:M0002")
    assert {"acltype": "publishClientSend", "topic": "plant1/wb/M0002/telemetry", "priority": 0,
            "allow": True} in m2["acls"]
    platform = read_credentials(out / "platform-credentials.json")
    assert set(platform) == {"platform-gateway", "platform-manager", "platform-admin"}
    # a second run keeps the platform users' passwords (no new credentials)
    r = runner.invoke(main, ["devices", "broker-config", "--db", db, "--out", str(out)])
    assert r.exit_code == 0 and "new platform users" not in r.output
    r = runner.invoke(main, ["devices", "list", "--db", db, "--json"])
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert {x["device_id"] for x in rows} >= {"M0002", "C-F01", "platform-gateway"}
    assert all("password_hash" not in x and c["M0002"] not in line for x, line in zip(rows, r.output.splitlines()))
    r = runner.invoke(main, ["devices", "broker-config", "--db", db, "--out", str(out), "--root", "wb/#"])
    assert r.exit_code == 2 and "topic root" in r.output


def test_cli_defaults_keep_the_passwords_where_simulate_and_the_gateway_look(demo_data, tmp_path, monkeypatch):
    """The issue's short forms work: register-demo keeps the passwords in devices-credentials.json
    (0600) and devices.db, where `devices simulate` and `workbench gateway` look by default."""
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(main, ["devices", "register-demo", "--prefix", PREFIX, "--meters", str(demo_data / "meters.csv")])
    assert r.exit_code == 0, r.output
    creds = tmp_path / "devices-credentials.json"
    assert "M0002" in read_credentials(creds) and stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert (tmp_path / "devices.db").exists()
    for cmd in (["devices", "simulate", "--help"], ["gateway", "--help"]):
        r = runner.invoke(main, cmd)
        assert r.exit_code == 0 and ("devices-credentials.json" in r.output or "devices.db" in r.output)
