"""The monitor's device status as records (AlarmStore.save_status / device_status), each
enterprise's alarms (alarms_of) and the fault-localisation view (faults): what the live monitoring
page reads from another process.  The monitor's check path (MonitorService.check_now) is run with an
injected clock, no broker."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.devices.alarms import AlarmStore, faults
from workbench.devices.monitor import MonitorService
from workbench.devices.registry import Device

T0 = 1_760_000_000.0


def fleet():
    """ent-a: collector C-A behind which M1–M3 report; M4 direct.  ent-b: collector C-B, N1–N2."""
    out = [Device("C-A", "collector", node_id="F01", enterprise_id="ent-a"),
           Device("C-B", "collector", node_id="F01", enterprise_id="ent-b")]
    for i in range(1, 4):
        out.append(Device(f"M{i}", "electricity_meter", node_id="F01", collector="C-A", enterprise_id="ent-a"))
    out.append(Device("M4", "electricity_meter", node_id="F01", enterprise_id="ent-a"))
    for i in (1, 2):
        out.append(Device(f"N{i}", "electricity_meter", node_id="F01", collector="C-B", enterprise_id="ent-b"))
    return out


def beat(svc, devices, at, **fields):
    for d in devices:
        svc.monitor.observe_status(d, json.dumps({"ts": int(at * 1000), "online": True, **fields}).encode(), at)


@pytest.fixture()
def svc(tmp_path):
    store = AlarmStore(f"sqlite:///{tmp_path / 'alarms.db'}")
    s = MonitorService("127.0.0.1", 1, "u", "p", fleet(), store, default_timeout_s=600, clock=lambda: T0)
    s.monitor.set_link(True, T0)
    yield s
    store.dispose()


def test_check_stores_each_devices_status_for_other_processes(svc, tmp_path):
    beat(svc, ["C-A", "M1", "M2", "M3", "C-B", "N1", "N2"], T0 + 10, battery=80)
    beat(svc, ["M4"], T0 + 20, battery=12)            # low battery
    svc.check_now(T0 + 60)
    other = AlarmStore(f"sqlite:///{tmp_path / 'alarms.db'}")       # the apps' process
    a = other.device_status("ent-a").set_index("device_id")
    assert sorted(a.index) == ["C-A", "M1", "M2", "M3", "M4"]       # never ent-b's
    assert bool(a.at["M1", "online"]) and a.at["M1", "battery"] == 80
    assert a.at["M4", "age_s"] == pytest.approx(40)                 # seen at +20, checked at +60
    assert a.at["M4", "alarms"] == "LOW_BATTERY"
    assert a.at["M1", "last_seen"] == pd.Timestamp(T0 + 10, unit="s").to_pydatetime()
    assert (a["checked_at"] == pd.Timestamp(T0 + 60, unit="s")).all()
    assert sorted(other.device_status("ent-b")["device_id"]) == ["C-B", "N1", "N2"]
    assert len(other.device_status()) == 8
    assert other.monitor_link()[0] is True
    assert other.enterprise_of("N1") == "ent-b" and other.enterprise_of("nope") is None
    other.dispose()


def test_a_later_check_replaces_the_status_not_appends(svc):
    beat(svc, ["C-A", "M1", "M2", "M3", "M4", "C-B", "N1", "N2"], T0 + 10)
    svc.check_now(T0 + 60)
    beat(svc, ["M1"], T0 + 100, battery=55)
    svc.check_now(T0 + 120)
    s = svc.store.device_status("ent-a").set_index("device_id")
    assert len(s) == 5 and s.at["M1", "battery"] == 55 and s.at["M2", "age_s"] == pytest.approx(110)


def test_alarms_of_an_enterprise_and_the_fault_view(svc):
    # everything heard once; then C-A and all behind it fall silent, and N1 alone falls silent
    beat(svc, ["C-A", "M1", "M2", "M3", "M4", "C-B", "N1", "N2"], T0 + 10)
    beat(svc, ["M4", "C-B", "N2"], T0 + 700)
    svc.check_now(T0 + 900)       # > 600 s since C-A, M1–M3 and N1 were heard
    store = svc.store
    a = store.alarms_of("ent-a")
    kinds_a = sorted((x.device_id, x.type, x.cause) for x in a)
    assert kinds_a == [("C-A", "COLLECTOR_DOWN", None), ("C-A", "INACTIVE", "collector:C-A"),
                       ("M1", "INACTIVE", "collector:C-A"), ("M2", "INACTIVE", "collector:C-A"),
                       ("M3", "INACTIVE", "collector:C-A")]
    assert a[0].type == "COLLECTOR_DOWN"                               # most severe first
    b = store.alarms_of("ent-b")
    assert [(x.device_id, x.type, x.cause) for x in b] == [("N1", "INACTIVE", None)]

    fa = faults(a)
    assert fa["fault_id"].tolist() == ["collector:C-A"]
    row = fa.iloc[0]
    assert row["scope"] == "collector" and row["subject"] == "C-A" and row["n_devices"] == 4
    assert row["devices"] == ["C-A", "M1", "M2", "M3"] and not row["acknowledged"]
    assert row["where_en"] == "collector or its link"
    fb = faults(b)
    assert fb[["fault_id", "scope", "subject", "n_devices"]].values.tolist() == [["device:N1", "device", "N1", 1]]

    # acknowledged alarms stay in view while active; a fault is acknowledged when all its alarms are
    for x in a:
        store.acknowledge(x.id, "mgr")
    assert faults(store.alarms_of("ent-a")).iloc[0]["acknowledged"]

    # N1 speaks again: its alarm clears (unacknowledged, so it stays listed until acknowledged)
    beat(svc, ["N1", "N2", "C-B", "M4"], T0 + 950)
    svc.check_now(T0 + 960)
    b2 = store.alarms_of("ent-b")
    assert [(x.device_id, x.state) for x in b2] == [("N1", "CLEARED_UNACK")]
    assert faults(b2).empty                                           # cleared: no fault
    store.acknowledge(b2[0].id, "mgr")
    assert store.alarms_of("ent-b") == []


def test_a_platform_link_fault_is_shown_to_every_enterprise(svc):
    beat(svc, ["C-A", "M1", "M2", "M3", "M4", "C-B", "N1", "N2"], T0 + 10)
    svc.check_now(T0 + 900)                                          # every device silent
    assert faults(svc.store.alarms_of("ent-a")).iloc[0]["n_devices"] == 8     # unfiltered: every device
    for ent, n in (("ent-a", 5), ("ent-b", 3)):
        f = faults(svc.store.alarms_of(ent), svc.store.device_status(ent))
        assert f["fault_id"].tolist() == ["platform"]
        assert f.iloc[0]["scope"] == "platform" and f.iloc[0]["where_en"].startswith("platform link")
        assert f.iloc[0]["n_devices"] == n                           # only the viewer's own devices
        assert f.iloc[0]["message"] == "broker/gateway link down"    # no other enterprise's count
    # but the devices' own alarms stay with their enterprise
    assert {x.device_id for x in svc.store.alarms_of("ent-b")} == {"*", "C-B", "N1", "N2"}
