"""Devices from the master data (issue 11, point 1): `workbench devices register --enterprise ID`
provisions one device per meter in service from `workbench.registry.MasterData`, writes the device
link back (audited), retires the devices of removed meters, is idempotent, keeps two enterprises'
equal meter ids apart; and the gateway routes by the explicit links only — a device whose id has
nothing to do with its meter id lands in its enterprise's lake under its meter (real Mosquitto)."""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time

import pandas as pd
import pytest
from click.testing import CliRunner
from enterprises import enterprise_folder, master_data

from workbench.cli.main import main
from workbench.devices import DeviceError, DeviceRegistry, read_credentials
from workbench.registry import MasterData, RegistryError, import_enterprise

TODAY = dt.date(2025, 1, 1)        # after M0002's removal (2024-06-30), before M0004's installation (2099)
PREFIXES = {"ent-a": "88.100.1", "ent-b": "88.100.2"}
GATEWAY_DEVICE = {"ent-a": "GW-A-17", "ent-b": "GW-B-17"}      # M0001's device in each: no naming rule

BOUNDARY = ("node_id,parent_id,level,name_zh,classification\n"
            "E,,enterprise,{name},\nF1,E,facility,熟料线,main_production\nF1.P1,F1,process,回转窑,\n"
            "F2,E,facility,食堂,non_production\n")
METERS = ("meter_id,node_id,unit,register,rollover,installed,removed,replaces,serial,item,source,device_id\n"
          "M0001,F1.P1,kWh,cumulative,99999999,2020-01-01,,,{e}-1,grid,purchased_electricity,{gw}\n"
          "M0002,F2,Nm3,interval,,2020-01-01,2024-06-30,,{e}-2,natural_gas,combustion,\n"
          "M0003,F2,Nm3,interval,,2024-06-30,,M0002,{e}-3,natural_gas,combustion,\n"
          "M0004,F1.P1,kWh,interval,,2099-01-01,,,{e}-4,grid,purchased_electricity,\n")


def _folder(tmp_path, eid: str, meters: str | None = None):
    doc = {"enterprise_id": eid, "name_zh": f"{eid} 厂", "identifier_prefix": PREFIXES[eid], "timezone": "Asia/Shanghai"}
    return enterprise_folder(tmp_path, doc, BOUNDARY.format(name=eid),
                             meters or METERS.format(e=eid, gw=GATEWAY_DEVICE[eid]))


@pytest.fixture
def md(tmp_path):
    """Two enterprises in one master-data database, with the same node and meter ids."""
    with master_data(tmp_path / "registry.db", [_folder(tmp_path, eid) for eid in PREFIXES]) as store:
        yield store


@pytest.fixture
def reg(tmp_path):
    r = DeviceRegistry(f"sqlite:///{tmp_path / 'devices.db'}")
    yield r
    r.dispose()


def _link(md, eid, meter):
    return md.meters(eid).set_index("meter_id").at[meter, "device_id"]


# --------------------------------------------------------------------------- provisioning


def test_one_device_per_meter_in_service_links_written_back_and_audited(md, reg):
    rep = reg.register_enterprise(md, "ent-a", who="alice", today=TODAY)
    # in service on 2025-01-01: M0001 (its link names GW-A-17) and M0003 (no link: prefix "ent-a." + id);
    # M0002 removed 2024-06-30 had no device; M0004 is installed in 2099 — one collector per facility
    assert rep.created == ["GW-A-17", "ent-a.C-F1", "ent-a.C-F2", "ent-a.M0003"]
    assert sorted(rep.credentials) == rep.created
    assert (rep.updated, rep.unchanged, rep.retired, rep.inactive) == ([], [], [], [])
    assert rep.linked == ["M0003"]                              # M0001 was linked already
    gw = reg.get("GW-A-17")
    assert (gw.enterprise_id, gw.meter_id, gw.node_id, gw.collector) == ("ent-a", "M0001", "F1.P1", "ent-a.C-F1")
    assert (gw.type, gw.quantities, gw.identifier, gw.status) == \
        ("electricity_meter", {"register": "kWh"}, "88.100.1/meter.M0001", "active")
    assert gw.config == {"register": "cumulative", "interval_s": 900, "serial": "ent-a-1", "item": "grid",
                         "rollover": 99999999.0}
    gas = reg.get("ent-a.M0003")
    assert (gas.enterprise_id, gas.meter_id, gas.node_id, gas.collector, gas.type, gas.quantities) == \
        ("ent-a", "M0003", "F2", "ent-a.C-F2", "gas_meter", {"consumption": "Nm3"})
    assert gas.identifier == "88.100.1/meter.M0003"
    col = reg.get("ent-a.C-F2")
    assert (col.type, col.node_id, col.enterprise_id, col.identifier) == \
        ("collector", "F2", "ent-a", "88.100.1/device.ent-a.C-F2")
    assert reg.verify_password("ent-a.M0003", rep.credentials["ent-a.M0003"])
    # the link is master data now, its writing audited there (before: none, after: the device)
    assert _link(md, "ent-a", "M0003") == "ent-a.M0003" and _link(md, "ent-b", "M0003") in ("", None)
    audit = md.audit_log("ent-a")
    row = audit[(audit["what"] == "update") & (audit["key"] == "M0003")].iloc[-1]
    assert row["who"] == "alice" and row["before"]["device_id"] in ("", None)
    assert row["after"]["device_id"] == "ent-a.M0003"
    # and every device's provisioning in the device registry's own audit
    assert [(a["what"], a["who"]) for a in reg.audit_log("ent-a.M0003")] == [("provision", "alice")]


def test_rerunning_changes_nothing(md, reg):
    first = reg.register_enterprise(md, "ent-a", who="alice", today=TODAY)
    hashes = {d.device_id: d.password_hash for d in reg.list()}
    n_dev_audit, n_md_audit = len(reg.audit_log()), len(md.audit_log())
    again = reg.register_enterprise(md, "ent-a", who="bob", today=TODAY)
    assert (again.created, again.updated, again.retired, again.linked, again.credentials) == ([], [], [], [], {})
    assert sorted(again.unchanged) == ["GW-A-17", "ent-a.M0003"]
    assert {d.device_id: d.password_hash for d in reg.list()} == hashes          # no new passwords
    assert len(reg.list()) == len(first.created) == 4
    assert (len(reg.audit_log()), len(md.audit_log())) == (n_dev_audit, n_md_audit)


def test_two_enterprises_with_the_same_meter_ids_get_distinct_devices(md, reg):
    a = reg.register_enterprise(md, "ent-a", who="t", today=TODAY)
    b = reg.register_enterprise(md, "ent-b", who="t", today=TODAY)
    assert b.created == ["GW-B-17", "ent-b.C-F1", "ent-b.C-F2", "ent-b.M0003"]
    assert set(a.created).isdisjoint(b.created)
    links = {(d.enterprise_id, d.meter_id): d.device_id for d in reg.list() if d.meter_id}
    assert links == {("ent-a", "M0001"): "GW-A-17", ("ent-a", "M0003"): "ent-a.M0003",
                     ("ent-b", "M0001"): "GW-B-17", ("ent-b", "M0003"): "ent-b.M0003"}
    assert reg.get("ent-b.M0003").identifier == "88.100.2/meter.M0003"           # each under its own prefix


def test_the_same_explicit_device_prefix_for_two_enterprises_is_refused_before_any_write(md, reg):
    reg.register_enterprise(md, "ent-a", device_prefix="", who="t", today=TODAY)
    assert reg.get("M0003").enterprise_id == "ent-a"
    before, md_audit = len(reg.audit_log()), len(md.audit_log())
    # ent-b's first meter, M0001, reports through collector C-F1 — ent-a's already
    with pytest.raises(DeviceError, match=r"enterprise 'ent-b': collector id 'C-F1' is taken by a collector of "
                                          r"enterprise 'ent-a' at 'F1'; choose another --device-prefix"):
        reg.register_enterprise(md, "ent-b", device_prefix="", who="t", today=TODAY)
    assert not [d for d in reg.list() if d.enterprise_id == "ent-b"]                 # GW-B-17 was not made either
    assert (len(reg.audit_log()), len(md.audit_log())) == (before, md_audit)


def test_a_removed_meter_retires_its_device_and_its_successor_gets_one(md, reg, tmp_path):
    reg.register_enterprise(md, "ent-a", who="t", today=TODAY)
    # M0003 is replaced by M0005 on 2024-12-01; the files know no device links of M0003 — the
    # import clears the link written back (audited) and the device registry's own link finds it
    meters = METERS.format(e="ent-a", gw="GW-A-17").replace(
        "M0003,F2,Nm3,interval,,2024-06-30,,M0002", "M0003,F2,Nm3,interval,,2024-06-30,2024-12-01,M0002") + \
        "M0005,F2,Nm3,interval,,2024-12-01,,M0003,ent-a-5,natural_gas,combustion,\n"
    import_enterprise(md, _folder(tmp_path, "ent-a", meters), who="import")
    assert _link(md, "ent-a", "M0003") in ("", None)
    rep = reg.register_enterprise(md, "ent-a", who="t", today=TODAY)
    assert (rep.created, rep.retired, rep.unchanged) == (["ent-a.M0005"], ["ent-a.M0003"], ["GW-A-17"])
    assert rep.linked == ["M0003", "M0005"]
    old = reg.get("ent-a.M0003")                                     # kept, with its links: history stays
    assert (old.status, old.enterprise_id, old.meter_id) == ("retired", "ent-a", "M0003")
    assert [a["what"] for a in reg.audit_log("ent-a.M0003")] == ["provision", "status:retired"]
    assert reg.get("ent-a.M0005").collector == "ent-a.C-F2"             # the facility's collector, reused
    assert _link(md, "ent-a", "M0003") == "ent-a.M0003" and _link(md, "ent-a", "M0005") == "ent-a.M0005"
    again = reg.register_enterprise(md, "ent-a", who="t", today=TODAY)
    assert (again.created, again.retired, again.linked) == ([], [], [])


def test_an_isolated_device_stays_isolated_and_master_data_changes_update_devices(md, reg):
    reg.register_enterprise(md, "ent-a", who="t", today=TODAY)
    reg.set_status("GW-A-17", "isolated", who="security")
    rows = md.meters("ent-a").to_dict("records")
    for r in rows:
        if r["meter_id"] == "M0003":
            r["node_id"], r["serial"] = "F1.P1", "ent-a-3b"          # moved to the kiln, new nameplate
    md.sync("meters", "ent-a", rows, who="editor")
    rep = reg.register_enterprise(md, "ent-a", who="t", today=TODAY)
    assert (rep.created, rep.updated, rep.unchanged, rep.inactive) == ([], ["ent-a.M0003"], ["GW-A-17"], ["GW-A-17"])
    gas = reg.get("ent-a.M0003")
    assert (gas.node_id, gas.collector, gas.config["serial"], gas.config_version) == \
        ("F1.P1", "ent-a.C-F1", "ent-a-3b", 2)
    assert [a["what"] for a in reg.audit_log("ent-a.M0003")] == ["provision", "update", "config"]
    assert reg.get("GW-A-17").status == "isolated"


def test_bad_master_data_is_refused_with_one_clear_error(md, reg):
    with pytest.raises(RegistryError, match="unknown enterprise 'nope' .known: ent-a, ent-b"):
        reg.register_enterprise(md, "nope", today=TODAY)
    rows = md.meters("ent-b").to_dict("records")
    for r in rows:
        if r["meter_id"] == "M0003":
            r["unit"] = None
    md.sync("meters", "ent-b", rows, who="editor")
    with pytest.raises(DeviceError, match="enterprise 'ent-b', meter 'M0003': no unit in the master data"):
        reg.register_enterprise(md, "ent-b", today=TODAY)
    for r in rows:
        if r["meter_id"] == "M0003":
            r["unit"], r["device_id"] = "Nm3", "GW-A-17"             # another enterprise's device
    md.sync("meters", "ent-b", rows, who="editor")
    reg.register_enterprise(md, "ent-a", today=TODAY)
    with pytest.raises(DeviceError, match="device 'GW-A-17' is linked to enterprise 'ent-a', meter 'M0001'"):
        reg.register_enterprise(md, "ent-b", today=TODAY)
    for r in rows:
        if r["meter_id"] == "M0003":
            r["device_id"] = "bad/id"
    md.sync("meters", "ent-b", rows, who="editor")
    with pytest.raises(DeviceError, match="MQTT topic separator"):
        reg.register_enterprise(md, "ent-b", today=TODAY)
    assert not [d for d in reg.list() if d.enterprise_id == "ent-b"]


def test_devices_made_by_register_demo_are_found_by_their_links_not_duplicated(demo_data, md, reg):
    """The demo plant's devices made from its files (register-demo --enterprise demo-cement
    --device-prefix S-) carry explicit enterprise and meter links: registering from the master data
    adopts them — same ids, same passwords, same collectors — and writes the links it found."""
    from workbench.core.boundary import Boundary

    import_enterprise(md, demo_data, who="import")
    reg.register_demo(demo_data / "meters.csv", "88.123.4567", Boundary.read_csv(demo_data / "boundary.csv"),
                      enterprise_id="demo-cement", device_prefix="S-")
    hashes = {d.device_id: d.password_hash for d in reg.list()}
    meters = pd.read_csv(demo_data / "meters.csv", dtype=str, keep_default_na=False)
    in_service = sorted("S-" + meters.loc[meters["removed"] == "", "meter_id"])
    removed = meters.loc[meters["removed"] != "", "meter_id"].tolist()        # M0035, replaced by M0037
    assert removed == ["M0035"] and reg.get("S-M0035").status == "retired"
    rep = reg.register_enterprise(md, "demo-cement", who="t", today=dt.date(2025, 12, 31))
    assert (rep.created, rep.updated, rep.retired, rep.credentials) == ([], [], [], {})
    assert sorted(rep.unchanged) == in_service
    assert rep.linked == sorted(meters["meter_id"])                  # in service, and M0035's retired device
    assert {d.device_id: d.password_hash for d in reg.list()} == hashes
    assert _link(md, "demo-cement", "M0037") == "S-M0037" and _link(md, "demo-cement", "M0035") == "S-M0035"
    b = reg.register_enterprise(md, "ent-b", who="t", today=TODAY)             # a second enterprise beside it
    assert b.created == ["GW-B-17", "ent-b.C-F1", "ent-b.C-F2", "ent-b.M0003"]


# --------------------------------------------------------------------------- CLI


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_register_writes_credentials_and_is_idempotent(md, tmp_path):
    url, db, creds = md.url, f"sqlite:///{tmp_path / 'devices.db'}", tmp_path / "creds.json"
    r = _cli("devices", "register", "--enterprise", "ent-b", "--registry", url, "--db", db,
             "--credentials", creds, "--who", "ops")
    assert r.exit_code == 0, r.output
    assert "ent-b: 4 devices created, 0 updated, 0 unchanged, 0 retired, 1 meter links written" in r.output
    assert sorted(read_credentials(creds)) == ["GW-B-17", "ent-b.C-F1", "ent-b.C-F2", "ent-b.M0003"]
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    r = _cli("devices", "register", "--enterprise", "ent-a", "--registry", url, "--db", db,
             "--credentials", creds, "--device-prefix", "A-")
    assert r.exit_code == 0, r.output
    assert sorted(read_credentials(creds)) == ["A-C-F1", "A-C-F2", "A-M0003", "GW-A-17", "GW-B-17", "ent-b.C-F1",
                                               "ent-b.C-F2", "ent-b.M0003"]          # merged
    r = _cli("devices", "register", "--enterprise", "ent-b", "--registry", url, "--db", db, "--credentials", creds)
    assert r.exit_code == 0 and "ent-b: 0 devices created, 0 updated, 2 unchanged, 0 retired, 0 meter links" \
        in r.output
    check = MasterData(url)
    assert check.audit_log("ent-b").query("what == 'update'")["who"].tolist() == ["ops"]
    check.dispose()


def test_cli_bad_inputs_exit_2_with_one_line(md, tmp_path):
    db = f"sqlite:///{tmp_path / 'devices.db'}"
    r = _cli("devices", "register", "--enterprise", "nope", "--registry", md.url, "--db", db)
    assert r.exit_code == 2
    assert r.output.strip() == "error: unknown enterprise 'nope' (known: ent-a, ent-b)"
    r = _cli("devices", "register", "--enterprise", "ent-a", "--registry", tmp_path / "missing.db", "--db", db)
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "no such database" in r.output
    assert not (tmp_path / "missing.db").exists()
    rows = md.meters("ent-a").to_dict("records")
    rows[0]["unit"] = ""
    md.sync("meters", "ent-a", rows, who="editor")
    r = _cli("devices", "register", "--enterprise", "ent-a", "--registry", md.url, "--db", db)
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "meter 'M0001': no unit" in r.output
    r = _cli("devices", "register", "--help")
    assert "'<enterprise_id>.'" in r.output and "distinct devices" in r.output


# --------------------------------------------------------------------------- the gateway follows the links


def test_gateway_routes_by_links_not_names(md, reg, tmp_path):
    """GW-A-17 reports meter M0001 of ent-a and GW-B-17 meter M0001 of ent-b (links set in the master
    data, provisioned from it): through a real Mosquitto and the gateway, each message lands in its
    enterprise's lake under M0001 — no row under a device id, nothing in the root's lake."""
    pytest.importorskip("paho.mqtt.client")
    from mqtt import Probe, running_mosquitto, wait_for
    from pg import free_port

    from workbench.devices.broker import write_broker_config
    from workbench.devices.gateway import Gateway
    from workbench.lake.store import Lake

    creds = {}
    for eid in PREFIXES:
        creds.update(reg.register_enterprise(md, eid, who="t").credentials)
    root = Lake(tmp_path / "lake")
    for eid in PREFIXES:
        # the lakes' meters come from the master data; empty cells as missing, so that the lake
        # gives each meter its default quantity (normalize_meters fills only a missing column)
        root.for_enterprise(eid).register_meters(md.meters(eid))
    port = free_port()
    files = write_broker_config(reg, tmp_path / "conf", root="wb", port=port,
                                user="root" if hasattr(os, "geteuid") and os.geteuid() == 0 else None)
    creds.update(files.new_credentials)
    step = 15 * 60 * 1000
    t0 = (int(time.time() * 1000) - 2 * 86400 * 1000) // step * step
    base = {"ent-a": 100.0, "ent-b": 9000.0}
    with running_mosquitto(files.conf, port=port):
        gw = Gateway("127.0.0.1", port, root, reg, username="platform-gateway", password=creds["platform-gateway"],
                     client_id="platform-gateway", root="wb", batch_interval=0.1)
        stop = threading.Event()
        thread = threading.Thread(target=gw.run, args=(stop,), daemon=True)
        thread.start()
        try:
            assert wait_for(gw._connected.is_set, 10)
            for eid, dev in GATEWAY_DEVICE.items():
                p = Probe("127.0.0.1", port, dev, creds[dev])
                try:
                    assert p.ok, p.connack
                    for k in range(4):
                        payload = json.dumps({"ts": t0 + k * step, "values": {"register": base[eid] + 5.0 * k}})
                        assert p.publish(f"wb/{dev}/telemetry", payload).value == 0
                finally:
                    p.close()
            assert wait_for(lambda: gw.stats.readings >= 8, 20), gw.stats
        finally:
            stop.set()
            thread.join(10)
    for eid, dev in GATEWAY_DEVICE.items():
        r = root.retrieve("readings", enterprise=eid)
        assert r["meter_id"].unique().tolist() == ["M0001"]
        assert sorted(r["value"]) == [base[eid] + 5.0 * k for k in range(4)]
        assert set(r["identifier"]) == {f"{PREFIXES[eid]}/meter.M0001"}
        c = root.retrieve("consumption", enterprise=eid)
        assert c["value"].sum() == pytest.approx(15.0)                  # 3 intervals of 5 kWh, its own register
        assert set(c["meter_id"]) == {"M0001"}
    assert "readings" not in root.tables()                             # nothing in the root's own lake
    assert gw.stats.quarantined == 0
    pd.testing.assert_series_equal(                                    # the lakes' meters are the master data's
        root.for_enterprise("ent-b").meters()["meter_id"], md.meters("ent-b")["meter_id"], check_names=False)
