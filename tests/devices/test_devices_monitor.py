"""Device status monitoring, alarms as records and fault localisation (workbench.devices.monitor,
workbench.devices.alarms): pure logic with an injected clock, the alarm store on SQLite and
PostgreSQL, and one end-to-end run on a private mosquitto where a device dies and its last will
becomes an OFFLINE alarm record."""
from __future__ import annotations

import json
import os
import threading
import time

import pandas as pd
import pytest

from workbench.devices.alarms import AlarmError, AlarmStore
from workbench.devices.monitor import DeviceMonitor, MonitorService, parse_status
from workbench.devices.registry import Device
from workbench.ingestion import ingest

T0 = 1_760_000_000.0          # epoch seconds


class Clock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t


def fleet(**configs):
    """Two collectors; M1–M3 behind C-F01, M4–M5 behind C-F02.  ``configs`` {device: config}."""
    out = [Device("C-F01", "collector", node_id="F01"), Device("C-F02", "collector", node_id="F02")]
    for i in range(1, 6):
        d = f"M{i}"
        out.append(Device(d, "electricity_meter", node_id="F01" if i <= 3 else "F02",
                          collector="C-F01" if i <= 3 else "C-F02", quantities={"register": "kWh"},
                          config=configs.get(d, {})))
    out.append(Device("platform-gateway", "gateway"))              # never monitored
    out.append(Device("M9", "electricity_meter", status="retired"))  # nor this
    return out


def beat(mon, devices, at, **fields):
    for d in devices:
        mon.observe_status(d, json.dumps({"ts": int(at * 1000), "online": True, **fields}).encode(), at)


ALL = ["C-F01", "C-F02", "M1", "M2", "M3", "M4", "M5"]


def kinds(events):
    return sorted((e.action, e.device_id, e.type) for e in events)


# --------------------------------------------------------------------------- parsing


def test_parse_status_is_tolerant():
    full = parse_status(b'{"ts": 1760000000000, "online": true, "battery": 87.5, "signal": -71, '
                        b'"firmware": "1.2.3", "uptime_s": 3600}')
    assert full == {"ts": 1760000000000, "online": True, "battery": 87.5, "signal": -71, "firmware": "1.2.3",
                    "uptime_s": 3600}
    assert parse_status(b'{"online": false}') == {"online": False}
    assert parse_status(b'{"online": "yes", "battery": "low", "signal": null}') == {}
    assert parse_status(b"offline") == {"online": False}
    assert parse_status(b"\xff{") == {} and parse_status(b"[1, 2]") == {} and parse_status(b"") == {}


def test_monitors_active_field_devices_only():
    mon = DeviceMonitor(fleet(), clock=Clock())
    assert mon.devices == ALL
    mon.observe_status("intruder", b'{"online": true}', T0)
    assert mon.unknown == {"intruder": 1}


# --------------------------------------------------------------------------- single conditions


def test_inactivity_timeout_per_device():
    clock = Clock()
    mon = DeviceMonitor(fleet(M2={"inactivity_timeout_s": 1800}), clock=clock)
    beat(mon, ALL, T0)
    assert mon.check(T0 + 600) == []
    others = [d for d in ALL if d not in ("M1", "M2")]
    beat(mon, others, T0 + 590)
    ev = mon.check(T0 + 601)
    assert kinds(ev) == [("raise", "M1", "INACTIVE")]
    assert ev[0].details["timeout_s"] == 600 and ev[0].cause is None and ev[0].severity == "MAJOR"
    assert mon.check(T0 + 700) == []                                  # nothing new: no event
    beat(mon, others, T0 + 1500)
    assert kinds(mon.check(T0 + 1801)) == [("raise", "M2", "INACTIVE")]
    mon.observe_telemetry("M1", json.dumps({"ts": int((T0 + 1810) * 1000), "values": {"register": 1}}).encode(),
                          T0 + 1811)
    assert kinds(mon.check(T0 + 1812)) == [("clear", "M1", "INACTIVE")]
    snap = mon.snapshot(T0 + 1812).set_index("device_id")
    assert snap.loc["M1", "age_s"] == pytest.approx(1.0) and snap.loc["M2", "timeout_s"] == 1800
    assert snap.loc["M2", "alarms"] == "INACTIVE" and snap.loc["M1", "alarms"] == ""


def test_never_seen_device_becomes_inactive_after_its_timeout_from_start():
    mon = DeviceMonitor(fleet(), clock=Clock())
    beat(mon, [d for d in ALL if d != "M4"], T0 + 500)
    ev = mon.check(T0 + 601)
    assert kinds(ev) == [("raise", "M4", "INACTIVE")] and ev[0].details["never_seen"] is True


def test_offline_from_the_last_will_and_back_online():
    mon = DeviceMonitor(fleet(), clock=Clock())
    beat(mon, ALL, T0, battery=80)
    mon.observe_status("M3", b'{"online": false}', T0 + 30)          # the broker publishes the will
    ev = mon.check(T0 + 31)
    assert kinds(ev) == [("raise", "M3", "OFFLINE")]
    snap = mon.snapshot(T0 + 31).set_index("device_id")
    assert snap.loc["M3", "online"] is False or not snap.loc["M3", "online"]
    assert snap.loc["M3", "last_seen"] == pd.Timestamp(T0, unit="s", tz="UTC")   # the will is not activity
    assert snap.loc["M3", "battery"] == 80                             # last known values kept
    beat(mon, ["M3"], T0 + 60)
    assert kinds(mon.check(T0 + 61)) == [("clear", "M3", "OFFLINE")]


def test_retained_will_at_subscription_marks_a_device_offline_without_activity():
    mon = DeviceMonitor(fleet(), clock=Clock())
    beat(mon, [d for d in ALL if d != "M5"], T0 + 1)
    mon.observe_status("M5", b'{"online": false}', T0 + 1, retained=True)
    assert kinds(mon.check(T0 + 2)) == [("raise", "M5", "OFFLINE")]
    assert mon.snapshot(T0 + 2).set_index("device_id").loc["M5", "last_seen"] is pd.NaT
    # an old retained heartbeat does not overwrite a live state, nor count as a message now
    mon.observe_status("M1", b'{"online": false, "battery": 5}', T0 + 3, retained=True)
    assert mon.snapshot(T0 + 3).set_index("device_id").loc["M1", "online"]


def test_low_battery_hysteresis():
    mon = DeviceMonitor(fleet(), clock=Clock())
    beat(mon, ALL, T0, battery=30)
    assert mon.check(T0 + 1) == []
    beat(mon, ["M2"], T0 + 10, battery=19.5)
    ev = mon.check(T0 + 11)
    assert kinds(ev) == [("raise", "M2", "LOW_BATTERY")] and ev[0].details["battery"] == 19.5
    beat(mon, ["M2"], T0 + 20, battery=22)                            # above 20, below 25: still low
    assert mon.check(T0 + 21) == []
    beat(mon, ["M2"], T0 + 30, battery=24.9)
    assert mon.check(T0 + 31) == []
    beat(mon, ["M2"], T0 + 40, battery=25)
    assert kinds(mon.check(T0 + 41)) == [("clear", "M2", "LOW_BATTERY")]
    mon.observe_status("M2", b'{"ts": 1, "online": true}', T0 + 50)   # no battery field: nothing changes
    assert mon.check(T0 + 51) == []


def tele(mon, dev, ts_s, at, value=1.0):
    payload = {"ts": int(ts_s * 1000), "values": {"register": value}}
    return mon.observe_telemetry(dev, json.dumps(payload).encode(), at)


def test_gaps_found_on_device_time_and_filled_by_backfill():
    mon = DeviceMonitor(fleet(M1={"interval_s": 900, "inactivity_timeout_s": 3600}), clock=Clock())
    beat(mon, ALL, T0)
    for k in range(3):                                   # 0, 900, 1800 on schedule
        tele(mon, "M1", T0 + 900 * k, T0 + 900 * k + 2)
    assert mon.check(T0 + 1805) == [] or all(e.device_id != "M1" for e in mon.check(T0 + 1805))
    tele(mon, "M1", T0 + 5400, T0 + 5402)                # 2700, 3600, 4500 missing
    assert [(a.value // 10**9, b.value // 10**9) for a, b in mon.gaps("M1")] == [(T0 + 1800, T0 + 5400)]
    beat(mon, ALL, T0 + 5403)
    ev = mon.check(T0 + 5404)
    assert ("raise", "M1", "GAP") in kinds(ev)
    gap = next(e for e in ev if e.type == "GAP")
    assert gap.details["gaps"] == [[pd.Timestamp(T0 + 1800, unit="s", tz="UTC").isoformat(),
                                    pd.Timestamp(T0 + 5400, unit="s", tz="UTC").isoformat()]]
    # the collector forwards its backlog late (a list of older readings): the gap shrinks, then closes
    backlog = [{"ts": int((T0 + s) * 1000), "values": {"register": 1}} for s in (2700, 3600)]
    mon.observe_telemetry("M1", json.dumps(backlog).encode(), T0 + 5500)
    assert [(a.value // 10**9, b.value // 10**9) for a, b in mon.gaps("M1")] == [(T0 + 3600, T0 + 5400)]
    tele(mon, "M1", T0 + 4500, T0 + 5501)
    assert mon.gaps("M1") == []
    assert kinds(mon.check(T0 + 5502)) == [("clear", "M1", "GAP")]
    assert mon.snapshot(T0 + 5502).set_index("device_id").loc["M1", "gaps"] == 0


def test_overdue_telemetry_of_a_device_that_still_sends_heartbeats_is_a_gap():
    mon = DeviceMonitor(fleet(), clock=Clock(), default_interval_s=60)
    beat(mon, ALL, T0)
    tele(mon, "M4", T0, T0 + 1)
    beat(mon, ALL, T0 + 90)                              # alive, but no telemetry for 90 s > 1.5 × 60
    ev = mon.check(T0 + 92)
    assert kinds(ev) == [("raise", "M4", "GAP")] and ev[0].details["telemetry_overdue_s"] == 91
    catch_up = [{"ts": int((T0 + s) * 1000), "values": {"register": 1}} for s in (60, 120)]
    mon.observe_telemetry("M4", json.dumps(catch_up).encode(), T0 + 121)   # the missed reading too
    assert kinds(mon.check(T0 + 122)) == [("clear", "M4", "GAP")]


def test_message_rate_and_latency():
    clock = Clock()
    mon = DeviceMonitor(fleet(M1={"max_latency_ms": 1000}), clock=clock, rate_window_s=600)
    beat(mon, ALL, T0)
    for k in range(10):                                   # 10 messages in 5 min, 400 ms late each
        tele(mon, "M1", T0 + 30 * k, T0 + 30 * k + 0.4)
    assert mon.rate_per_min("M1", T0 + 300) == pytest.approx(11 / 10)   # 11 messages / 10 min window
    assert mon.rate_per_min("M1", T0 + 1000) == 0
    assert mon.latency_p50_ms("M1") == pytest.approx(400, abs=1)
    assert mon.latency_p50_ms("M2") is None
    mon.observe_stored("M1", (T0 + 270) * 1000, T0 + 271.5)
    assert mon.latency_p50_ms("M1", stored=True) == pytest.approx(1500)
    ev = mon.check(T0 + 301)                               # stored latency above 1000 ms
    assert kinds(ev) == [("raise", "M1", "HIGH_LATENCY")]
    assert ev[0].details["latency_stored_p50_ms"] == pytest.approx(1500)
    for k in range(10, 30):                               # the link slows down: 1.2 s
        tele(mon, "M1", T0 + 30 * k, T0 + 30 * k + 1.2)
    for k in range(10):
        mon.observe_stored("M1", (T0 + 900 + k) * 1000, T0 + 900 + k + 0.85)   # 850 ms: above 80 %
    beat(mon, ALL, T0 + 880)
    assert mon.check(T0 + 910) == []                       # arrival latency 1.2 s keeps it up anyway
    for k in range(30, 50):
        tele(mon, "M1", T0 + 30 * k, T0 + 30 * k + 0.3)
    for k in range(10):
        mon.observe_stored("M1", (T0 + 1500 + k) * 1000, T0 + 1500 + k + 0.7)
    beat(mon, ALL, T0 + 1470)
    assert kinds(mon.check(T0 + 1510)) == [("clear", "M1", "HIGH_LATENCY")]
    snap = mon.snapshot(T0 + 1510).set_index("device_id")
    assert snap.loc["M1", "latency_p50_ms"] == pytest.approx(300, abs=1)
    # a store-and-forward backlog is not link latency: only the newest reading of a message counts
    backlog = [{"ts": int((T0 + 1510 - 3600 + 60 * i) * 1000), "values": {"register": 1}} for i in range(61)]
    mon.observe_telemetry("M2", json.dumps(backlog).encode(), T0 + 1510.2)
    assert mon.latency_p50_ms("M2") == pytest.approx(200, abs=1)


def test_snapshot_one_row_per_device():
    mon = DeviceMonitor(fleet(), clock=Clock())
    beat(mon, ALL, T0, battery=90, signal=-70, firmware="2.0.1", uptime_s=100)
    mon.observe_telemetry("M1", b"not json", T0 + 1)
    snap = mon.snapshot(T0 + 10)
    assert list(snap["device_id"]) == ALL
    for col in ("device_id", "type", "node_id", "collector", "online", "last_seen", "age_s", "battery", "signal",
                "firmware", "rate_per_min", "latency_p50_ms", "gaps", "alarms"):
        assert col in snap.columns
    row = snap.set_index("device_id").loc["M1"]
    assert (row["type"], row["node_id"], row["collector"], row["firmware"]) == \
        ("electricity_meter", "F01", "C-F01", "2.0.1")
    assert row["battery"] == 90 and row["signal"] == -70 and row["bad_messages"] == 1 and row["messages"] == 2
    assert row["age_s"] == pytest.approx(9)
    assert str(snap["last_seen"].dtype).startswith("datetime64") and snap["online"].all()


# --------------------------------------------------------------------------- fault localisation


def test_one_silent_device_is_a_device_fault():
    mon = DeviceMonitor(fleet(), clock=Clock())
    beat(mon, ALL, T0)
    beat(mon, [d for d in ALL if d != "M2"], T0 + 600)
    faults = mon.localise(T0 + 700)
    assert [(f.id, f.scope, f.devices) for f in faults] == [("device:M2", "device", ("M2",))]
    assert "M2" in faults[0].message and faults[0].since == T0
    ev = mon.check(T0 + 700)
    assert kinds(ev) == [("raise", "M2", "INACTIVE")] and ev[0].cause is None


def test_everything_behind_a_collector_silent_is_one_collector_fault():
    mon = DeviceMonitor(fleet(), clock=Clock())
    beat(mon, ALL, T0)
    beat(mon, ["M1", "M2", "M3", "C-F01"], T0 + 100)   # C-F01's segment goes silent at once…
    beat(mon, ["C-F02", "M4", "M5"], T0 + 650)        # …the other collector keeps reporting
    assert mon.check(T0 + 650) == []
    ev = mon.check(T0 + 701)
    assert len(ev) == 5 and all(e.action == "raise" for e in ev)     # 4 INACTIVE + COLLECTOR_DOWN
    faults = mon.localise(T0 + 701)
    assert [(f.id, f.scope, f.subject) for f in faults] == [("collector:C-F01", "collector", "C-F01")]
    assert faults[0].devices == ("C-F01", "M1", "M2", "M3") and "C-F01 (or its link) down" in faults[0].message
    active = mon.active_alarms()
    assert active[("C-F01", "COLLECTOR_DOWN")].severity == "CRITICAL"
    for d in ("C-F01", "M1", "M2", "M3"):
        assert active[(d, "INACTIVE")].cause == "collector:C-F01"
    assert not any(k[0] in ("C-F02", "M4", "M5") for k in active)

    # into the store: one root problem, its consequences reference it
    store = AlarmStore()
    mon2 = DeviceMonitor(fleet(), clock=Clock())
    beat(mon2, ALL, T0)
    beat(mon2, ["C-F02", "M4", "M5"], T0 + 650)
    store.apply(mon2.check(T0 + 700))
    roots = [a for a in store.active() if a.cause is None]
    assert [(a.device_id, a.type) for a in roots] == [("C-F01", "COLLECTOR_DOWN")]
    assert roots[0].details["fault_id"] == "collector:C-F01"
    assert sorted(a.device_id for a in store.active(cause="collector:C-F01")) == ["C-F01", "M1", "M2", "M3"]
    # the collector comes back: its fault and the consequences clear together
    beat(mon2, ALL, T0 + 800)
    store.apply(mon2.check(T0 + 801))
    assert store.active() == []
    assert {a.state for a in store.history()} == {"CLEARED_UNACK"}


def test_meters_escalate_from_device_faults_to_their_collector_fault():
    """M1 dies first (a device fault); then the rest of C-F01's segment: the already active alarm
    is updated with the new cause, not raised twice."""
    mon = DeviceMonitor(fleet(), clock=Clock())
    beat(mon, ALL, T0)
    beat(mon, [d for d in ALL if d != "M1"], T0 + 300)
    assert kinds(mon.check(T0 + 601)) == [("raise", "M1", "INACTIVE")]
    beat(mon, ["C-F02", "M4", "M5"], T0 + 800)
    ev = mon.check(T0 + 901)
    assert ("update", "M1", "INACTIVE") in kinds(ev) and ("raise", "C-F01", "COLLECTOR_DOWN") in kinds(ev)
    assert next(e for e in ev if e.device_id == "M1").cause == "collector:C-F01"


def test_a_live_collector_with_silent_meters_is_not_a_collector_fault():
    mon = DeviceMonitor(fleet(), clock=Clock())
    beat(mon, ALL, T0)
    beat(mon, ["C-F01", "C-F02", "M4", "M5"], T0 + 650)   # the collector still reports status
    faults = mon.localise(T0 + 700)
    assert [f.id for f in faults] == ["device:M1", "device:M2", "device:M3"]
    # a collector that never reports: two or more silent devices behind it still point at it
    quiet = DeviceMonitor([d for d in fleet() if d.device_id != "C-F01"] + [Device("C-F01", "collector")],
                          clock=Clock())
    beat(quiet, ALL, T0)
    beat(quiet, ["C-F02", "M4", "M5"], T0 + 650)
    quiet._states["C-F01"].last_status_at = None         # as if it had never sent a status
    quiet._states["C-F01"].online = None
    quiet._states["C-F01"].last_seen = T0 + 650
    assert [f.id for f in quiet.localise(T0 + 700)] == ["collector:C-F01"]
    assert quiet.localise(T0 + 700)[0].devices == ("M1", "M2", "M3")


def test_everything_silent_is_the_broker_or_gateway_link():
    mon = DeviceMonitor(fleet(), clock=Clock())
    beat(mon, ALL, T0)
    beat(mon, ["C-F02", "M4", "M5"], T0 + 300)
    mon.check(T0 + 700)                                # C-F01's segment first
    assert ("C-F01", "COLLECTOR_DOWN") in mon.active_alarms()
    ev = mon.check(T0 + 1000)                          # then everything
    faults = mon.localise(T0 + 1000)
    assert [(f.id, f.subject, len(f.devices)) for f in faults] == [("platform", "*", 7)]
    assert "broker/gateway link down" in faults[0].message
    assert ("clear", "C-F01", "COLLECTOR_DOWN") in kinds(ev) and ("raise", "*", "LINK_DOWN") in kinds(ev)
    active = mon.active_alarms()
    assert {e.cause for (d, t), e in active.items() if t == "INACTIVE"} == {"platform"}
    assert len([k for k in active if k[1] == "INACTIVE"]) == 7


def test_the_monitors_own_link_down_blames_no_device():
    mon = DeviceMonitor(fleet(), clock=Clock())
    beat(mon, ALL, T0)
    mon.set_link(False, T0 + 10)
    ev = mon.check(T0 + 5000)
    assert kinds(ev) == [("raise", "*", "LINK_DOWN")]
    assert "own broker connection" in mon.localise(T0 + 5000)[0].message
    mon.set_link(True, T0 + 5001)                      # back: every device gets a full timeout again
    assert kinds(mon.check(T0 + 5002)) == [("clear", "*", "LINK_DOWN")]
    assert mon.check(T0 + 5500) == []
    assert len(mon.check(T0 + 5602)) == 8              # 7 INACTIVE + the platform fault


# --------------------------------------------------------------------------- alarm records


def test_alarm_lifecycle(db_url):
    store = AlarmStore(db_url)
    a = store.raise_("M1", "INACTIVE", severity="MAJOR", at=T0, details={"timeout_s": 600})
    assert a.state == "ACTIVE_UNACK" and a.active and not a.acknowledged
    again = store.raise_("M1", "INACTIVE", severity="CRITICAL", at=T0 + 60, details={"timeout_s": 600, "n": 2},
                         cause="collector:C-F01")
    assert again.id == a.id and again.severity == "CRITICAL" and again.cause == "collector:C-F01"
    assert again.raised_at == a.raised_at and again.updated_at > a.updated_at
    assert len(store.history("M1")) == 1                          # idempotent: updated, not duplicated
    acked = store.acknowledge(a.id, "operator-li", at=T0 + 120)
    assert (acked.state, acked.acknowledged_by) == ("ACTIVE_ACK", "operator-li")
    assert store.acknowledge(a.id, "someone-else", at=T0 + 130).acknowledged_by == "operator-li"
    assert store.raise_("M1", "INACTIVE", at=T0 + 150).state == "ACTIVE_ACK"   # stays acknowledged
    cleared = store.clear("M1", "INACTIVE", at=T0 + 180)
    assert cleared.state == "CLEARED_ACK" and not cleared.active
    assert cleared.cleared_at == pd.Timestamp(T0 + 180, unit="s").to_pydatetime()
    assert store.clear("M1", "INACTIVE", at=T0 + 190) is None
    # raised again after clearing: a new record
    b = store.raise_("M1", "INACTIVE", at=T0 + 200)
    assert b.id != a.id and store.active("M1") == [b]
    # cleared before anyone looked: CLEARED_UNACK, then acknowledged → CLEARED_ACK
    c = store.raise_("M2", "LOW_BATTERY", severity="MINOR", at=T0 + 10)
    assert store.clear("M2", "LOW_BATTERY", at=T0 + 20).state == "CLEARED_UNACK"
    late = store.acknowledge(c.id, "operator-wang", at=T0 + 30)
    assert (late.state, late.acknowledged_by) == ("CLEARED_ACK", "operator-wang")
    assert [x.id for x in store.history()] == [a.id, c.id, b.id]
    log = store.transitions(a.id)
    assert [(r["action"], r["who"], r["state"]) for r in log] == [
        ("raise", "monitor", "ACTIVE_UNACK"), ("update", "monitor", "ACTIVE_UNACK"),
        ("acknowledge", "operator-li", "ACTIVE_ACK"), ("update", "monitor", "ACTIVE_ACK"),
        ("clear", "monitor", "CLEARED_ACK")]
    assert all(r["at"] is not None for r in log)
    with pytest.raises(AlarmError):
        store.acknowledge(9999, "x")
    with pytest.raises(AlarmError):
        store.acknowledge(a.id, "")
    with pytest.raises(AlarmError):
        store.raise_("M1", "INACTIVE", severity="BAD")
    store.dispose()


def test_one_active_alarm_per_device_and_type_is_enforced_by_the_database(tmp_path):
    import sqlalchemy as sa

    store = AlarmStore(f"sqlite:///{tmp_path / 'a.db'}")
    store.raise_("M1", "OFFLINE", at=T0)
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(sa.insert(store.alarms).values(device_id="M1", type="OFFLINE", severity="MAJOR",
                                                    state="ACTIVE_UNACK", raised_at=pd.Timestamp(T0, unit="s"),
                                                    updated_at=pd.Timestamp(T0, unit="s"), details={}))


# --------------------------------------------------------------------------- through a real broker


def test_end_to_end_a_killed_device_becomes_an_offline_alarm_record(tmp_path):
    paho = pytest.importorskip("paho.mqtt.client")
    from mqtt import running_mosquitto, wait_for
    from pg import free_port

    from workbench.devices import DeviceRegistry
    from workbench.devices.broker import DEFAULT_PLATFORM_USERS, write_broker_config

    reg = DeviceRegistry(f"sqlite:///{tmp_path / 'registry.db'}", prefix="88.123.4567")
    meters = ["M1", "M2", "M3"]
    creds = reg.provision_many(
        [{"device_id": "C-F01", "type": "collector", "node_id": "F01"}]
        + [{"device_id": m, "type": "electricity_meter", "node_id": "F01", "collector": "C-F01",
            "quantities": {"register": "kWh"}, "config": {"interval_s": 1}} for m in meters])
    port = free_port()
    run_as = "root" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    users = {**DEFAULT_PLATFORM_USERS, "platform-monitor": "gateway"}   # its own user: ids are user names
    files = write_broker_config(reg, tmp_path / "conf", root="wb", port=port, user=run_as, platform_users=users)
    creds.update(files.new_credentials)
    store = AlarmStore(f"sqlite:///{tmp_path / 'alarms.db'}")
    clients = {}
    with running_mosquitto(files.conf, port=port):
        svc = MonitorService("127.0.0.1", port, "platform-monitor", creds["platform-monitor"], reg, store,
                             root="wb", check_interval=0.1, default_timeout_s=30)
        stop = threading.Event()
        t = threading.Thread(target=svc.run, args=(stop,), daemon=True)
        t.start()
        try:
            assert wait_for(svc.subscribed.is_set, 10)
            for d in ["C-F01", *meters]:
                c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=d, protocol=paho.MQTTv5)
                c.username_pw_set(d, creds[d])
                c.will_set(f"wb/{d}/status", json.dumps({"online": False}), qos=1, retain=True)
                c.connect("127.0.0.1", port, keepalive=5)
                c.loop_start()
                clients[d] = c
            assert wait_for(lambda: all(c.is_connected() for c in clients.values()), 10)
            for k in range(3):
                now_ms = int(time.time() * 1000)
                for d, c in clients.items():
                    c.publish(f"wb/{d}/status", json.dumps({"ts": now_ms, "online": True, "battery": 90 - k,
                                                            "signal": -65, "firmware": "1.0", "uptime_s": k}),
                              qos=1, retain=True)
                    if d != "C-F01":
                        c.publish(f"wb/{d}/telemetry", json.dumps({"ts": now_ms, "values": {"register": 10.0 + k}}),
                                  qos=1)
                time.sleep(0.2)
            assert wait_for(lambda: (svc.monitor.snapshot()["messages"] >= 3).all(), 10), svc.monitor.snapshot()
            snap = svc.monitor.snapshot().set_index("device_id")
            assert snap["online"].all() and snap.loc["M1", "battery"] == 88 and snap.loc["M2", "firmware"] == "1.0"
            assert snap.loc["M1", "latency_p50_ms"] < 5000 and snap.loc["M1", "rate_per_min"] > 0
            assert store.active() == []
            # M2 dies without DISCONNECT: the broker publishes its will (retained {"online": false})
            victim = clients.pop("M2")
            victim.loop_stop()
            victim.socket().close()
            assert wait_for(lambda: store.active("M2"), 15), (svc.events, svc.monitor.snapshot())
            alarm = store.active("M2")[0]
            assert (alarm.type, alarm.state, alarm.cause) == ("OFFLINE", "ACTIVE_UNACK", None)
            # the only silence is M2's; M1 and M3 (interval 1 s) may meanwhile have a GAP alarm for the
            # telemetry they stopped sending — a matter of how long the broker took to publish the will
            silent = [(a.device_id, a.type) for a in store.active() if a.type in ("OFFLINE", "INACTIVE")]
            assert silent == [("M2", "OFFLINE")], store.active()
            assert {a.type for a in store.active() if a.device_id != "M2"} <= {"GAP"}
            assert svc.monitor.localise()[0].id == "device:M2"
            acked = store.acknowledge(alarm.id, "operator-li")
            assert acked.state == "ACTIVE_ACK"
            # M2 comes back and says so: the alarm clears, acknowledged before → CLEARED_ACK
            c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="M2", protocol=paho.MQTTv5)
            c.username_pw_set("M2", creds["M2"])
            c.connect("127.0.0.1", port, keepalive=5)
            c.loop_start()
            clients["M2"] = c
            assert wait_for(c.is_connected, 10)
            c.publish("wb/M2/status", json.dumps({"ts": int(time.time() * 1000), "online": True}), qos=1, retain=True)
            assert wait_for(lambda: not store.active("M2"), 10)
            assert store.get(alarm.id).state == "CLEARED_ACK"
        finally:
            stop.set()
            t.join(10)
            for c in clients.values():
                c.disconnect()
                c.loop_stop()
    store.dispose()
    reg.dispose()


def test_a_restarted_monitor_adopts_and_clears_recorded_alarms():
    store = AlarmStore()
    store.raise_("M1", "OFFLINE", at=T0 - 100)
    store.raise_("M2", "INACTIVE", at=T0 - 100)
    mon = DeviceMonitor(fleet(), clock=Clock())
    mon.adopt(store.active())
    beat(mon, [d for d in ALL if d != "M2"], T0 + 1)        # M1 is back; M2 not heard since the restart
    store.apply(mon.check(T0 + 2))
    assert [(a.device_id, a.type) for a in store.active()] == [("M2", "INACTIVE")]
    assert store.history("M1")[0].state == "CLEARED_UNACK"


def test_storing_latency_comes_from_the_lakes_watermarks(tmp_path):
    """The monitor reads device time → commit time of each series from the lake's manifest (no
    data files): a reading taken 2.5 s before its batch was committed shows 2.5 s."""
    from connectors import ConnectorResult
    from workbench.lake.store import Lake

    lake = Lake(tmp_path / "lake")
    lake.register_meters(pd.DataFrame({"meter_id": ["M1"], "node_id": "F01", "unit": "kWh", "item": "grid",
                                       "register": "cumulative"}))
    svc = MonitorService("127.0.0.1", 1, "u", "p", fleet(), AlarmStore(f"sqlite:///{tmp_path / 'alarms.db'}"),
                         lake=lake)
    assert svc.poll_stored() == 0
    taken = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta("2.5s")
    df = pd.DataFrame({"meter_id": "M1", "ts": [taken - pd.Timedelta("1min"), taken], "value": [10.0, 11.0],
                       "unit": "kWh"})
    ingest(lake, ConnectorResult(df, {"source": "mqtt"}, kind="readings", raw=df.to_csv().encode()), sender="t")
    tel = pd.DataFrame({"device_id": ["M2"], "ts": [taken], "quantity": "power", "value": [20.5],
                        "unit": "kW"})
    ingest(lake, ConnectorResult(df.iloc[:0], {"source": "mqtt", "telemetry": tel}, kind="readings", raw=b"t1"),
                sender="t")
    assert svc.poll_stored() == 2 and svc.poll_stored() == 0          # only what changed is observed
    done = pd.to_datetime(lake.batches()["finished_at"])
    for dev, at in (("M1", done.iloc[0]), ("M2", done.iloc[1])):
        want = (at - taken).total_seconds() * 1000               # ≥ 2,500 ms: taken 2.5 s before the ingest
        assert want >= 2500
        assert svc.monitor.latency_p50_ms(dev, stored=True) == pytest.approx(want, abs=100)
