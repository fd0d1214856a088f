"""The live monitoring page (issue 13, points 2 and 7) in Debian's Chromium: device status, alarms
and faults from the alarm store the monitor writes (its check path run here with a fixed clock, no
broker), the emissions rate from the package's live view — and updates in place: an alarm raised by
the monitor and data stored by the ingest path appear without a reload.  An alarm is acknowledged
end to end (browser → store → audit); a verifier cannot; another enterprise's alarm cannot be
acknowledged whatever is asked."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from status_lake import _readings, _series, build

from workbench.apps.auth import AccessDenied, UserStore
from workbench.apps.live import acknowledge_alarm
from workbench.devices.alarms import AlarmStore
from workbench.devices.monitor import MonitorService
from workbench.devices.registry import Device
from workbench.ingestion import ingest
from workbench.inventory.realtime import live_view

PASSWORD = "manager password 1"
T0 = 1_780_000_000.0


def fleet():
    return [Device("C-A", "collector", node_id="F01", enterprise_id="ent-a"),
            Device("E0", "electricity_meter", node_id="ENT", enterprise_id="ent-a"),
            Device("E1", "electricity_meter", node_id="F01", collector="C-A", enterprise_id="ent-a"),
            Device("E2", "electricity_meter", node_id="F01", collector="C-A", enterprise_id="ent-a"),
            Device("C-B", "collector", node_id="F01", enterprise_id="ent-b"),
            Device("N1", "electricity_meter", node_id="F01", collector="C-B", enterprise_id="ent-b")]


def beat(svc, devices, at, **fields):
    for d in devices:
        svc.monitor.observe_status(d, json.dumps({"ts": int(at * 1000), "online": True, **fields}).encode(), at)


@pytest.fixture(scope="module")
def served(tmp_path_factory, serve_apps):
    tmp = tmp_path_factory.mktemp("live")
    lake = build(tmp)
    users = UserStore(f"sqlite:///{tmp / 'users.db'}", scrypt_n=2**10)
    for name, role, ent in (("alice", "manager", "ent-a"), ("vera", "verifier", "ent-a"),
                            ("bob", "manager", "ent-b")):
        users.add(name, role, PASSWORD)
        users.grant(name, ent)
    alarms = AlarmStore(f"sqlite:///{tmp / 'alarms.db'}")
    svc = MonitorService("127.0.0.1", 1, "u", "p", fleet(), alarms, default_timeout_s=600, clock=lambda: T0)
    svc.monitor.set_link(True, T0)
    beat(svc, ["C-A", "E0", "E1", "E2", "C-B", "N1"], T0 + 10, battery=90)
    beat(svc, ["E0"], T0 + 700, battery=15)          # low battery; the rest of ent-a silent since +10
    beat(svc, ["C-B", "N1"], T0 + 700)
    svc.check_now(T0 + 720)
    base = serve_apps(tmp / "lake", tmp / "users.db", "--alarms-db", str(tmp / "alarms.db"),
                      env={"WORKBENCH_LIVE_REFRESH_MS": "1000"})
    yield base, lake, users, alarms, svc
    users.dispose()
    alarms.dispose()


def test_the_monitor_raised_what_the_page_will_show(served):
    _, _, _, alarms, _ = served
    got = sorted((a.device_id, a.type, a.cause or "") for a in alarms.alarms_of("ent-a"))
    assert got == [("C-A", "COLLECTOR_DOWN", ""), ("C-A", "INACTIVE", "collector:C-A"),
                   ("E0", "LOW_BATTERY", ""), ("E1", "INACTIVE", "collector:C-A"), ("E2", "INACTIVE", "collector:C-A")]
    assert alarms.alarms_of("ent-b") == []


def test_device_state_as_a_manager_reads_it():
    from workbench.apps.live import device_state

    status = pd.DataFrame({"online": pd.array([True, True, False, None, True], dtype="boolean"),
                           "alarms": ["", "GAP,INACTIVE", "OFFLINE", "", "LOW_BATTERY"]})
    assert device_state(status).tolist() == ["online", "silent", "offline", "unknown", "online"]


def test_acknowledge_is_checked_where_it_is_done(served):
    _, _, users, alarms, _ = served
    [low] = [a for a in alarms.alarms_of("ent-a") if a.type == "LOW_BATTERY"]
    vera, bob = users.principal("vera"), users.principal("bob")
    with pytest.raises(AccessDenied):
        acknowledge_alarm(vera, alarms, low.id, "ent-a")            # a verifier never writes
    with pytest.raises(AccessDenied):
        acknowledge_alarm(bob, alarms, low.id, "ent-b")             # ent-a's alarm asked as ent-b's
    with pytest.raises(AccessDenied):
        acknowledge_alarm(bob, alarms, low.id, "ent-a")             # ent-a not granted
    assert alarms.get(low.id).state == "ACTIVE_UNACK"
    refused = [(r["actor"], r["action"]) for r in users.audit_log() if not r["ok"]]
    assert ("vera", "denied:acknowledge") in refused and ("bob", "denied:acknowledge") in refused


def test_live_page_shows_the_package_figures_and_acknowledges_an_alarm(served, browser, ui):
    base, lake, users, alarms, svc = served
    page, errors = ui.page(browser)
    ui.login(page, base, "alice", PASSWORD)
    page.goto(f"{base}/live")
    page.wait_for_selector("#rate", timeout=30_000)
    view = live_view(lake.for_enterprise("ent-a"))
    assert page.inner_text("#rate") == f"{view['tco2e_per_h'].sum():,.3f}"
    assert page.inner_text("#online") == "1/4"          # C-A, E1, E2 said online once, then fell silent
    assert page.inner_text("#open") == "5" and page.inner_text("#unack") == "5"
    page.locator(".bk-tab", has_text="Fault localisation").click()
    page.get_by_text("collector:C-A").first.wait_for(timeout=10_000)
    assert page.get_by_text("N1").count() == 0          # never ent-b's devices
    ui.shot(page, "live-faults")

    # the acknowledge, end to end: checkbox of the LOW_BATTERY row, the button
    page.locator(".bk-tab", has_text="Alarms").click()
    row = page.locator(".live-alarms .tabulator-row", has_text="LOW_BATTERY")
    row.wait_for(timeout=10_000)
    row.locator("input[type=checkbox]").click()
    page.get_by_role("button", name=re.compile("Acknowledge selected")).click()
    page.get_by_text(re.compile("Acknowledged: #\\d+ E0 LOW_BATTERY")).wait_for(timeout=10_000)
    [low] = [a for a in alarms.alarms_of("ent-a") if a.type == "LOW_BATTERY"]
    assert low.state == "ACTIVE_ACK" and low.acknowledged_by == "alice"
    assert [t["who"] for t in alarms.transitions(low.id) if t["action"] == "acknowledge"] == ["alice"]
    assert any(r["action"] == "acknowledge" and r["enterprise_id"] == "ent-a" and f"alarm {low.id}" in r["detail"]
               for r in users.audit_log(actor="alice"))
    page.wait_for_function("() => true")
    assert _text_soon(page, "#unack", "4")
    ui.shot(page, "live-alarm-acknowledged")

    # in place: the monitor clears E0's battery alarm and raises nothing new; the ingest path stores May
    beat(svc, ["E0"], T0 + 800, battery=60)
    svc.check_now(T0 + 810)
    assert _text_soon(page, "#open", "4")
    may = pd.concat([_series("E0", "2026-05-01", 96, 2.0), _series("E1", "2026-05-01", 96, 1.0)], ignore_index=True)
    ingest(lake.for_enterprise("ent-a"), _readings(may, "may.csv"), sender="gateway")
    new = live_view(lake.for_enterprise("ent-a"))
    assert new["window_end"].iloc[0] > view["window_end"].iloc[0]
    assert _text_soon(page, "#rate", f"{new['tco2e_per_h'].sum():,.3f}")
    page.get_by_text(new["window_end"].iloc[0].strftime("%Y-%m-%d %H:%M")).first.wait_for(timeout=10_000)
    ui.shot(page, "live-ent-a")
    assert errors == [], errors
    page.close()


def test_a_verifier_sees_the_alarms_but_cannot_acknowledge(served, browser, ui):
    base, *_ = served
    page, errors = ui.page(browser)
    ui.login(page, base, "vera", PASSWORD)
    page.goto(f"{base}/live")
    page.wait_for_selector("#open", timeout=30_000)
    page.locator(".bk-tab", has_text="Alarms").click()
    assert page.get_by_role("button", name=re.compile("Acknowledge selected")).is_disabled()
    assert errors == [], errors
    page.close()


def test_another_enterprise_is_refused_by_url(served, browser, ui):
    base, *_ = served
    page, _ = ui.page(browser)
    ui.login(page, base, "bob", PASSWORD)
    page.goto(f"{base}/live?enterprise=ent-a")
    page.get_by_text("Not permitted: ent-a").wait_for(timeout=30_000)
    assert page.locator("#rate").count() == 0
    page.goto(f"{base}/live")
    page.wait_for_selector("#open", timeout=30_000)
    assert page.inner_text("#open") == "0"              # ent-b's own: nothing active
    assert page.get_by_text("C-A").count() == 0
    page.close()


def _text_soon(page, selector: str, want: str, timeout_s: float = 15.0) -> bool:
    """Whether ``selector``'s text becomes ``want`` within the time (the page refreshes itself)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.inner_text(selector) == want:
            return True
        page.wait_for_timeout(250)
    raise AssertionError(f"{selector} still {page.inner_text(selector)!r}, not {want!r}")
