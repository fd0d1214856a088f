"""The live monitoring page (issue 13, point 2; seed §7.3 c 状态监控, e 故障定位, §9.5): device
status, the latest readings and the emissions rate updating in place as the gateway stores data,
the enterprise's alarms with acknowledge, and the fault-localisation view.

Thin, like every page: the figures come from the package —
:func:`workbench.inventory.realtime.live_view` (power and tCO2e/h per facility, the inventory's own
factors) and :func:`~workbench.inventory.realtime.latest_readings` on the lake that
:meth:`~workbench.apps.auth.Principal.lake` opens; device status, alarms and faults from the
:class:`~workbench.devices.alarms.AlarmStore` the monitor (``workbench devices monitor``) writes
(:meth:`~workbench.devices.alarms.AlarmStore.device_status`,
:meth:`~workbench.devices.alarms.AlarmStore.alarms_of`, :func:`~workbench.devices.alarms.faults`),
each read for the one enterprise the principal may read.  The page re-reads every
:data:`REFRESH_MS` (``$WORKBENCH_LIVE_REFRESH_MS``) and updates its tables and curve in place.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from workbench.apps.auth import AccessDenied

__all__ = ["REFRESH_MS", "acknowledge_alarm", "alarm_table", "device_state", "device_table", "headline", "page"]

#: how often the page re-reads the lake and the alarm store (ms)
REFRESH_MS = int(os.environ.get("WORKBENCH_LIVE_REFRESH_MS", "5000"))
#: past windows the emissions-rate curve starts with
SEED_WINDOWS = 8


def acknowledge_alarm(principal, alarms, alarm_id: int, enterprise: str):
    """Acknowledge alarm ``alarm_id`` for ``enterprise`` as ``principal`` — only if the role may
    acknowledge, the enterprise is granted, and the alarm is one of that enterprise's devices (a
    platform alarm, ``*``, concerns everyone: only a user granted every enterprise acknowledges
    it).  Logged in the users' audit (who, enterprise, alarm) and in the alarm's own transition
    log.  Raises :class:`~workbench.apps.auth.AccessDenied` otherwise."""
    from workbench.apps.auth import ALL
    from workbench.devices.alarms import PLATFORM_SUBJECT

    alarm = alarms.get(alarm_id)
    owner = alarms.enterprise_of(alarm.device_id)
    if alarm.device_id == PLATFORM_SUBJECT and ALL not in principal.enterprises:
        _refused(principal, enterprise, f"alarm {alarm_id} (platform)")
        raise AccessDenied(f"user {principal.name!r}: the platform's alarms are acknowledged by its operator")
    if alarm.device_id != PLATFORM_SUBJECT and owner != enterprise:
        _refused(principal, enterprise, f"alarm {alarm_id} of another enterprise")
        raise AccessDenied(f"alarm {alarm_id} is not one of {enterprise}'s devices")
    principal.act("acknowledge", enterprise, f"alarm {alarm_id} {alarm.device_id} {alarm.type}")
    return alarms.acknowledge(alarm_id, principal.name)


def _refused(principal, enterprise: str, detail: str) -> None:
    if principal.store is not None:
        principal.store.log(principal.name, "denied:acknowledge", enterprise=enterprise, detail=detail, ok=False,
                            client=principal.client)


def alarm_table(alarms: list) -> pd.DataFrame:
    """The alarms as the page lists them (times naive UTC, as stored)."""
    cols = ["id", "severity", "device_id", "type", "state", "cause", "raised_at", "acknowledged_by", "message"]
    return pd.DataFrame([{"id": a.id, "severity": a.severity, "device_id": a.device_id, "type": a.type,
                          "state": a.state, "cause": a.cause or "", "raised_at": a.raised_at,
                          "acknowledged_by": a.acknowledged_by or "",
                          "message": str((a.details or {}).get("message", ""))} for a in alarms], columns=cols)


def device_state(status: pd.DataFrame) -> pd.Series:
    """Each device's state as a manager reads it: ``offline`` (it said so, or its last will did),
    ``silent`` (the monitor heard nothing within its timeout: INACTIVE), ``online``, ``unknown``
    (never heard)."""
    alarms = status["alarms"].fillna("").astype(str)
    online = status["online"]
    out = pd.Series("unknown", index=status.index, dtype=object)
    out[online.fillna(False).astype(bool)] = "online"
    out[alarms.str.contains("INACTIVE")] = "silent"
    out[(online == False).fillna(False).astype(bool) | alarms.str.contains("OFFLINE")] = "offline"
    return out


def device_table(status: pd.DataFrame) -> pd.DataFrame:
    """Device status as the page lists it (``state``: :func:`device_state`)."""
    cols = ["device_id", "state", "type", "node_id", "collector", "online", "last_seen", "age_s", "battery", "signal",
            "latency_p50_ms", "latency_stored_p50_ms", "rate_per_min", "alarms", "cause"]
    return status.assign(state=device_state(status)).reindex(columns=cols).reset_index(drop=True)


def headline(view: pd.DataFrame, status: pd.DataFrame, alarms: list) -> dict:
    """The page's headline figures: ``rate`` (tCO2e/h, the window's signed total — exported
    energy subtracts, as in the inventory), ``power`` (kW of purchased electricity), ``window_end``,
    ``online``/``devices`` (devices the monitor judged online / all), ``open``/``unacknowledged``
    alarms."""
    return {
        "rate": float(view["tco2e_per_h"].sum()) if len(view) else float("nan"),
        "power": float(view["power_kw"].sum()) if len(view) else float("nan"),
        "window_end": view["window_end"].iloc[0] if len(view) else None,
        "online": int((device_state(status) == "online").sum()) if len(status) else 0,
        "devices": len(status),
        "open": sum(1 for a in alarms if a.active),
        "unacknowledged": sum(1 for a in alarms if not a.acknowledged),
    }


def page(principal, lake_root, *, alarms=None):
    """The page for one session's principal.  ``alarms``: the monitor's
    :class:`~workbench.devices.alarms.AlarmStore` (``None``: no monitor configured — readings and
    the emissions rate only)."""
    import holoviews as hv
    import panel as pn

    from workbench.apps.server import granted_enterprises, selection_widgets
    from workbench.devices.alarms import faults
    from workbench.inventory.realtime import latest_readings, live_view

    hv.extension("bokeh", logo=False)
    root = Path(lake_root)
    visible, asked, refused = granted_enterprises(principal, root)
    if refused is not None:
        return refused
    enterprise, _, _ = selection_widgets(visible, asked)
    head = pn.pane.HTML("", name="headline")
    message = pn.pane.Alert("", alert_type="danger", visible=False)
    notice = pn.pane.Alert("", alert_type="success", visible=False)

    def table(name, **kw):
        return pn.widgets.Tabulator(pd.DataFrame(), pagination="remote", page_size=12, disabled=True,
                                    show_index=False, name=name, sizing_mode="stretch_width",
                                    css_classes=[f"live-{name}"], **kw)

    facilities, readings, devices, fault_view = (table("facilities"), table("readings"), table("devices"),
                                                 table("faults"))
    alarm_view = table("alarms", selectable="checkbox")
    may_ack = principal.may("acknowledge", enterprise.value)
    ack = pn.widgets.Button(name="确认所选告警 / Acknowledge selected", button_type="warning", disabled=not may_ack)
    pipe = hv.streams.Pipe(data=pd.DataFrame({"window_end": pd.to_datetime([]), "tco2e_per_h": []}))
    curve = hv.DynamicMap(lambda data: hv.Curve(data, "window_end", "tco2e_per_h").opts(
        responsive=True, height=260, tools=["hover"], xlabel="时间 / time", ylabel="tCO2e/h", framewise=True,
        title="排放速率 / Emissions rate"), streams=[pipe])
    history: dict = {"ent": None, "rows": {}}

    def note(frame: pd.DataFrame, end) -> None:
        """Add a window's rate to the curve's history (one point per window end)."""
        if len(frame) and end is not None and pd.notna(end):
            history["rows"][pd.Timestamp(end)] = float(frame["tco2e_per_h"].sum())

    def send() -> None:
        rows = sorted(history["rows"].items())[-500:]
        pipe.send(pd.DataFrame(rows, columns=["window_end", "tco2e_per_h"]))

    def refresh(*_):
        ent = enterprise.value
        message.visible = False
        try:
            lake = principal.lake(root, ent)
            view = live_view(lake)
            latest = latest_readings(lake)
            status = alarms.device_status(ent) if alarms is not None else pd.DataFrame()
            mine = alarms.alarms_of(ent) if alarms is not None else []
        except Exception as exc:  # noqa: BLE001 - shown in one line; the page stays
            message.object, message.visible = str(exc), True
            return
        if history["ent"] != ent:
            history.update(ent=ent, rows={})
        h = headline(view, status, mine)
        note(view, h["window_end"])
        send()
        link = ""
        if alarms is not None:
            up, at = alarms.monitor_link()
            checked = status["checked_at"].max() if len(status) else at
            link = (f" · 监测 / monitor: {'在线 / up' if up else ('断开 / DOWN' if up is not None else '-')}"
                    f", {checked:%Y-%m-%d %H:%M:%S} UTC" if checked is not None and pd.notna(checked) else "")
        end = h["window_end"]
        head.object = (
            f"<b>{ent}</b> · 窗口 / window → {end:%Y-%m-%d %H:%M}" if end is not None else f"<b>{ent}</b> · -"
        ) + (f" · 排放速率 / emissions rate <span id='rate'>{h['rate']:,.3f}</span> tCO2e/h"
             f" · 外购电功率 / grid power <span id='power'>{h['power']:,.1f}</span> kW"
             f" · 设备在线 / online <span id='online'>{h['online']}/{h['devices']}</span>"
             f" · 告警 / alarms <span id='open'>{h['open']}</span>"
             f" (未确认 / unacknowledged <span id='unack'>{h['unacknowledged']}</span>){link}")
        cols = ["facility", "name_zh", "name_en", "power_kw", "generation_kw", "tco2e_per_h", "meters_reporting",
                "meters_total", "last_ts"]
        update(facilities, view.reindex(columns=cols))
        update(readings, latest)
        update(devices, device_table(status) if len(status) else pd.DataFrame())
        update(alarm_view, alarm_table(mine), key="id")
        update(fault_view, faults(mine, status) if alarms is not None else pd.DataFrame())

    def update(table, frame: pd.DataFrame, key: str | None = None) -> None:
        """Replace a table's rows only when they changed (a refresh every few seconds must not
        redraw the table, nor drop the rows a user has ticked); ticked rows stay ticked by ``key``."""
        old = table.value
        if isinstance(old, pd.DataFrame) and old.shape == frame.shape and list(old.columns) == list(frame.columns) \
                and old.reset_index(drop=True).equals(frame.reset_index(drop=True)):
            return
        ticked = (set(old.iloc[[i for i in table.selection if i < len(old)]][key])
                  if key and isinstance(old, pd.DataFrame) and key in old.columns and table.selection else set())
        table.value = frame
        if ticked:
            table.selection = [i for i, v in enumerate(frame[key]) if v in ticked]

    def seed():
        """The curve's first points: the windows before the latest (after the first render)."""
        try:
            lake = principal.lake(root, enterprise.value)
            view = live_view(lake)
            if not len(view):
                return
            end, width = view["window_end"].iloc[0], view["window_end"].iloc[0] - view["window_start"].iloc[0]
            for k in range(1, SEED_WINDOWS):
                past = live_view(lake, now=end - k * width)
                note(past, end - k * width)
            send()
        except Exception:  # the curve then starts from now; the log says why
            import logging

            logging.getLogger(__name__).exception("live page: the emissions-rate history could not be read")

    def on_ack(_):
        notice.visible = message.visible = False
        ids = [int(alarm_view.value.iloc[i]["id"]) for i in alarm_view.selection if i < len(alarm_view.value)]
        if not ids:
            message.object, message.visible = "未选择告警 / No alarm selected", True
            return
        done = []
        for i in ids:
            try:
                done.append(acknowledge_alarm(principal, alarms, i, enterprise.value))
            except Exception as exc:  # noqa: BLE001 - refused: say so, keep the page
                message.object, message.visible = str(exc), True
        if done:
            notice.object = "已确认 / Acknowledged: " + ", ".join(f"#{a.id} {a.device_id} {a.type}" for a in done)
            notice.visible = True
        alarm_view.selection = []
        refresh()

    def on_enterprise(*_):
        ack.disabled = not principal.may("acknowledge", enterprise.value) or alarms is None
        refresh()
        seed()

    ack.on_click(on_ack)
    ack.disabled = not may_ack or alarms is None
    enterprise.param.watch(on_enterprise, "value")
    refresh()
    pn.state.onload(seed)
    pn.state.add_periodic_callback(refresh, period=REFRESH_MS)
    monitor_note = ([] if alarms is not None else
                    [pn.pane.Alert("未配置设备监测 / No device monitor configured: run `workbench devices monitor "
                                   "--alarms-db URL` and `workbench apps serve --alarms-db URL`.", alert_type="info")])
    return pn.Column(
        pn.pane.Markdown("## 实时监测 / Live monitoring"), pn.Row(enterprise), *monitor_note, message, notice, head,
        pn.Tabs(("排放速率 / Emissions rate", pn.Column(pn.pane.HoloViews(curve, sizing_mode="stretch_width"),
                                                        facilities)),
                ("告警 / Alarms", pn.Column(ack, alarm_view)),
                ("故障定位 / Fault localisation", fault_view),
                ("设备状态 / Devices", devices),
                ("最新读数 / Latest readings", readings), dynamic=False),
        sizing_mode="stretch_width")
