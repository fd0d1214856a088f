"""Device status monitoring and fault localisation (seed §7.3 c 状态监控, §7.3 e 故障定位).

Pure core — :class:`DeviceMonitor`, no broker needed, time injected — and a thin MQTT runner,
:class:`MonitorService`.

Per device the monitor keeps: online (from its status messages; ``None`` until one arrives), last
seen (any message), the last status fields (battery %, signal dBm, firmware, uptime), the message
rate (messages/min over a sliding window), the latency device time → arrival (and → stored, when the
gateway reports it via :meth:`DeviceMonitor.observe_stored`) and the gaps in its telemetry (device
timestamps further apart than ``1.5 ×`` the expected interval).

Conventions (ThingsBoard's where it has one):

* inactivity timeout per device: ``config["inactivity_timeout_s"]``, else ``default_timeout_s``
  (600 s); expected telemetry interval ``config["interval_s"]``, else 900 s — so a device reporting
  telemetry every 15 min needs status heartbeats more often than its timeout, or a longer timeout;
* a status ``{"online": false}`` (the MQTT last will, published by the broker when the device's
  connection died) is *not* activity: it sets online = False but not ``last_seen``; retained
  messages delivered on subscription are not activity either (they are old) unless they carry a
  ``ts``, which is then used;
* latency per telemetry message = arrival − the newest reading's ``ts`` in it, so a
  store-and-forward backlog (a list of old readings) is a gap being filled, not link latency;
* gaps are found on device time and shrink when a late (backfilled) reading falls inside them.

Alarms (:meth:`DeviceMonitor.check` → :class:`AlarmEvent` s; :class:`workbench.devices.alarms.AlarmStore`
records them): ``INACTIVE`` (no message within the timeout), ``OFFLINE`` (status online = false),
``LOW_BATTERY`` (< 20 %, cleared at ≥ 25 %), ``HIGH_LATENCY`` (median of the last latencies above
``config["max_latency_ms"]``/``latency_threshold_ms``, cleared below 80 % of it), ``GAP`` (a gap
found within the last 4 intervals, or telemetry overdue while the device is otherwise alive).

Fault localisation (:meth:`DeviceMonitor.localise`): silent devices (INACTIVE or OFFLINE) are
grouped by collector.  Every device behind a collector silent (and the collector too, if it reports
status; at least two devices when the collector tells nothing) → one fault ``collector:<id>``
"collector … (or its link) down"; every monitored device silent → one fault ``platform``
("broker/gateway link down"); the rest are ``device:<id>`` faults.  The silence alarms of the
devices in a collector/platform fault carry ``cause=<fault id>``, and the fault itself is one
alarm (``COLLECTOR_DOWN`` on the collector, ``LINK_DOWN`` on device ``*``) — a dashboard shows one
problem, not thirty.
"""
from __future__ import annotations

import json
import logging
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from workbench.devices.alarms import PLATFORM_SUBJECT

__all__ = ["ALARM_TYPES", "AlarmEvent", "DeviceMonitor", "Fault", "MonitorService", "parse_status"]

log = logging.getLogger(__name__)

#: alarm type → severity (ThingsBoard severities)
ALARM_TYPES = {"INACTIVE": "MAJOR", "OFFLINE": "MAJOR", "LOW_BATTERY": "MINOR", "HIGH_LATENCY": "WARNING",
               "GAP": "MINOR", "COLLECTOR_DOWN": "CRITICAL", "LINK_DOWN": "CRITICAL"}
SILENCE = ("INACTIVE", "OFFLINE")


@dataclass(frozen=True)
class AlarmEvent:
    """``action`` ``raise`` · ``update`` (cause or severity changed) · ``clear``; ``at`` epoch s."""

    action: str
    device_id: str
    type: str
    severity: str
    at: float
    details: dict = field(default_factory=dict)
    cause: str | None = None


@dataclass(frozen=True)
class Fault:
    """A localised fault: ``scope`` ``platform`` · ``collector`` · ``device``; ``subject`` the
    collector/device id (``*`` for the platform); ``devices`` the silent devices it explains;
    ``since`` epoch s of the earliest last message among them (``None`` if never heard)."""

    id: str
    scope: str
    subject: str
    devices: tuple
    since: float | None
    message: str


def _number(v):
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return v


def parse_status(payload: bytes | str | dict) -> dict:
    """A status message → ``{ts (ms|None), online (bool|None), battery, signal, firmware, uptime_s}``
    — every field optional, wrong types dropped; a non-object payload gives ``{}``; text
    ``online``/``offline`` (some devices' will) is understood."""
    if isinstance(payload, bytes | bytearray):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            return {}
    if isinstance(payload, str):
        text = payload.strip()
        if text.lower() in ("online", "offline"):
            return {"online": text.lower() == "online"}
        try:
            payload = json.loads(text)
        except ValueError:
            return {}
    if not isinstance(payload, dict):
        return {}
    out = {}
    ts = _number(payload.get("ts"))
    if ts is not None:
        out["ts"] = ts * 1000 if ts < 1e11 else ts          # seconds → ms (status is advisory only)
    if isinstance(payload.get("online"), bool):
        out["online"] = payload["online"]
    for k in ("battery", "signal", "uptime_s"):
        v = _number(payload.get(k))
        if v is not None:
            out[k] = v
    if isinstance(payload.get("firmware"), str | int | float) and not isinstance(payload.get("firmware"), bool):
        out["firmware"] = str(payload["firmware"])
    return out


def _telemetry_ts(payload: bytes) -> tuple[list[float], bool]:
    """Device timestamps (ms) of a telemetry message and whether it parsed: ``{"ts", "values"}``,
    a list of those, or ThingsBoard's plain ``{key: value}`` (no ts)."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return [], False
    items = doc if isinstance(doc, list) else [doc]
    out = []
    for item in items:
        if isinstance(item, dict):
            ts = _number(item.get("ts"))
            if ts is not None and ts > 1e11:
                out.append(float(ts))
        else:
            return out, False
    return out, True


class _State:
    def __init__(self, device, started: float):
        self.device = device
        self.started = started
        self.online: bool | None = None
        self.online_at: float | None = None
        self.last_seen: float | None = None
        self.last_status_at: float | None = None
        self.last_telemetry_at: float | None = None
        self.battery = self.signal = self.uptime_s = None
        self.firmware: str | None = None
        self.arrivals: deque = deque()
        self.latency: deque = deque(maxlen=50)
        self.stored_latency: deque = deque(maxlen=50)
        self.last_ts: float | None = None         # newest device ts seen (ms)
        self.gaps: list[list] = []                # [start_ms, end_ms, detected_at]
        self.messages = 0
        self.bad = 0

    @property
    def config(self) -> dict:
        return self.device.config or {}


class DeviceMonitor:
    """See the module doc.  ``devices``: :class:`~workbench.devices.registry.Device` s or a
    :class:`~workbench.devices.registry.DeviceRegistry` (its active field devices; platform users
    are never monitored).  All ``at``/``now`` arguments are epoch seconds; ``clock`` supplies them
    when omitted."""

    def __init__(self, devices, *, default_timeout_s: float = 600, clock=time.time,
                 default_interval_s: float = 900, gap_factor: float = 1.5, gap_hold_intervals: float = 4,
                 rate_window_s: float = 600, low_battery: float = 20, battery_clear: float = 25,
                 latency_threshold_ms: float = 300_000, latency_samples: int = 10):
        self.clock = clock
        self.default_timeout_s = float(default_timeout_s)
        self.default_interval_s = float(default_interval_s)
        self.gap_factor, self.gap_hold_intervals = float(gap_factor), float(gap_hold_intervals)
        self.rate_window_s = float(rate_window_s)
        self.low_battery, self.battery_clear = float(low_battery), float(battery_clear)
        self.latency_threshold_ms, self.latency_samples = float(latency_threshold_ms), int(latency_samples)
        self.started = float(clock())
        self.link_up: bool = True
        self.link_changed_at: float = self.started
        self.unknown: dict[str, int] = {}
        self._states: dict[str, _State] = {}
        self._active: dict[tuple[str, str], AlarmEvent] = {}
        self._lock = threading.RLock()
        self.update_devices(devices)

    # ------------------------------------------------------------------ devices
    def update_devices(self, devices) -> None:
        """(Re)load the monitored devices; state of devices still present is kept."""
        if hasattr(devices, "list"):
            devices = devices.list(status="active")
        with self._lock:
            keep = {}
            for d in devices:
                if d.is_platform or d.status != "active":
                    continue
                st = self._states.get(d.device_id) or _State(d, self.started)
                st.device = d
                keep[d.device_id] = st
            self._states = keep

    @property
    def devices(self) -> list[str]:
        return sorted(self._states)

    def timeout_s(self, device_id: str) -> float:
        v = _number(self._states[device_id].config.get("inactivity_timeout_s"))
        return float(v) if v and v > 0 else self.default_timeout_s

    def interval_s(self, device_id: str) -> float:
        v = _number(self._states[device_id].config.get("interval_s"))
        return float(v) if v and v > 0 else self.default_interval_s

    def latency_limit_ms(self, device_id: str) -> float:
        v = _number(self._states[device_id].config.get("max_latency_ms"))
        return float(v) if v and v > 0 else self.latency_threshold_ms

    def _state(self, device_id: str) -> _State | None:
        st = self._states.get(device_id)
        if st is None:
            self.unknown[device_id] = self.unknown.get(device_id, 0) + 1
        return st

    def _arrive(self, st: _State, at: float) -> None:
        st.messages += 1
        st.arrivals.append(at)
        self._trim(st, at)

    def _trim(self, st: _State, now: float) -> None:
        while st.arrivals and st.arrivals[0] < now - self.rate_window_s:
            st.arrivals.popleft()

    # ------------------------------------------------------------------ observations
    def observe_status(self, device_id: str, payload, at: float | None = None, *, retained: bool = False) -> dict:
        """A message on ``<root>/<device>/status``; returns the parsed fields."""
        at = float(self.clock() if at is None else at)
        with self._lock:
            st = self._state(device_id)
            if st is None:
                return {}
            fields = parse_status(payload)
            if not fields:
                st.bad += 1
            if retained:                              # old news: its own ts, if any, is when it was true
                seen = fields.get("ts", 0) / 1000 or None
                if seen is not None:
                    seen = min(seen, at)
            else:
                seen = at
                self._arrive(st, at)
            if fields.get("online") is False:          # the will: absence, not activity
                seen = None
            if "online" in fields and (not retained or st.online is None):
                st.online = fields["online"]                # a retained state only if nothing better is known
                st.online_at = at if not retained else (seen or at)
            for k in ("battery", "signal", "uptime_s", "firmware"):
                if k in fields:
                    setattr(st, k, fields[k])
            if seen is not None:
                st.last_seen = max(st.last_seen or seen, seen)
                st.last_status_at = max(st.last_status_at or seen, seen)
                if fields.get("online") is None and st.online is False and not retained:
                    st.online = True                   # a heartbeat without 'online' after a will
            return fields

    def observe_telemetry(self, device_id: str, payload: bytes, at: float | None = None, *,
                          retained: bool = False) -> list[float]:
        """A message on ``<root>/<device>/telemetry``; returns its device timestamps (ms)."""
        at = float(self.clock() if at is None else at)
        with self._lock:
            st = self._state(device_id)
            if st is None:
                return []
            ts_list, ok = _telemetry_ts(payload)
            if not ok:
                st.bad += 1
            if retained:
                return ts_list
            self._arrive(st, at)
            st.last_seen = max(st.last_seen or at, at)
            st.last_telemetry_at = at
            if not ts_list and ok:
                ts_list_for_gaps = [at * 1000]          # plain {key: value}: arrival time is the ts
            else:
                ts_list_for_gaps = ts_list
            if ts_list:
                st.latency.append(at * 1000 - max(ts_list))
            for ts in sorted(ts_list_for_gaps):
                self._gap_observe(st, ts, at)
            return ts_list

    def observe_stored(self, device_id: str, device_ts_ms: float, stored_at: float) -> None:
        """The gateway stored a reading of ``device_id`` taken at ``device_ts_ms`` at ``stored_at``."""
        with self._lock:
            st = self._state(device_id)
            if st is not None and _number(device_ts_ms) is not None:
                st.stored_latency.append(float(stored_at) * 1000 - float(device_ts_ms))

    def _gap_observe(self, st: _State, ts: float, at: float) -> None:
        limit = self.gap_factor * self.interval_s(st.device.device_id) * 1000
        if st.last_ts is None:
            st.last_ts = ts
            return
        if ts > st.last_ts:
            if ts - st.last_ts > limit:
                st.gaps.append([st.last_ts, ts, at])
            st.last_ts = ts
            return
        for i, (a, b, when) in enumerate(st.gaps):     # a late reading: does it fill a gap?
            if a < ts < b:
                parts = [[a, ts, when], [ts, b, when]]
                st.gaps[i:i + 1] = [p for p in parts if p[1] - p[0] > limit]
                break

    def set_link(self, up: bool, at: float | None = None) -> None:
        """The monitor's own broker connection went down/up.  While it is down no device is
        blamed; after it comes back every device gets a full timeout before it counts as silent."""
        with self._lock:
            at = float(self.clock() if at is None else at)
            if bool(up) != self.link_up:
                self.link_up, self.link_changed_at = bool(up), at

    # ------------------------------------------------------------------ derived values
    def gaps(self, device_id: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        with self._lock:
            return [(pd.Timestamp(a, unit="ms", tz="UTC"), pd.Timestamp(b, unit="ms", tz="UTC"))
                    for a, b, _ in self._states[device_id].gaps]

    def rate_per_min(self, device_id: str, now: float | None = None) -> float:
        now = float(self.clock() if now is None else now)
        with self._lock:
            st = self._states[device_id]
            self._trim(st, now)
            return len(st.arrivals) / (self.rate_window_s / 60.0)

    def latency_p50_ms(self, device_id: str, *, stored: bool = False) -> float | None:
        with self._lock:
            st = self._states[device_id]
            xs = list(st.stored_latency if stored else st.latency)[-self.latency_samples:]
            return float(statistics.median(xs)) if xs else None

    def _silence(self, st: _State, now: float) -> dict[str, dict]:
        """Why the device counts as silent now: ``{"INACTIVE": details, "OFFLINE": details}`` (either,
        both or neither).  While the monitor's own link is down nobody becomes INACTIVE."""
        out = {}
        if st.online is False:
            out["OFFLINE"] = {"since": st.online_at}
        ref = max(st.last_seen or st.started, st.started, self.link_changed_at)
        timeout = self.timeout_s(st.device.device_id)
        if self.link_up and now - ref > timeout:
            out["INACTIVE"] = {"last_seen": st.last_seen, "timeout_s": timeout, "never_seen": st.last_seen is None}
        return out

    def _conditions(self, now: float) -> dict[tuple[str, str], dict]:
        cond: dict[tuple[str, str], dict] = {}
        for dev_id, st in self._states.items():
            def active(t, d=dev_id):
                return (d, t) in self._active

            silent = self._silence(st, now)
            for typ, details in silent.items():
                cond[(dev_id, typ)] = details
            if active("INACTIVE") and (not self.link_up or st.last_seen is None):
                # keep what was known before the link went / before a restart (adopted, not heard since)
                cond[(dev_id, "INACTIVE")] = self._active[(dev_id, "INACTIVE")].details
            if st.battery is not None and (
                    st.battery < self.low_battery or (active("LOW_BATTERY") and st.battery < self.battery_clear)):
                cond[(dev_id, "LOW_BATTERY")] = {"battery": st.battery, "threshold": self.low_battery}
            p50 = self.latency_p50_ms(dev_id)
            p50s = self.latency_p50_ms(dev_id, stored=True)
            worst = max((x for x in (p50, p50s) if x is not None), default=None)
            limit = self.latency_limit_ms(dev_id)
            if worst is not None and (worst > limit or (active("HIGH_LATENCY") and worst > 0.8 * limit)):
                cond[(dev_id, "HIGH_LATENCY")] = {"latency_p50_ms": p50, "latency_stored_p50_ms": p50s,
                                                  "threshold_ms": limit}
            interval = self.interval_s(dev_id)
            recent = [g for g in st.gaps if g[2] >= now - self.gap_hold_intervals * interval]
            overdue = (st.last_telemetry_at is not None and not silent
                       and now - st.last_telemetry_at > self.gap_factor * interval)
            if recent or overdue:
                d = {"gaps": [[pd.Timestamp(a, unit="ms", tz="UTC").isoformat(),
                               pd.Timestamp(b, unit="ms", tz="UTC").isoformat()] for a, b, _ in recent]}
                if overdue:
                    d["telemetry_overdue_s"] = round(now - st.last_telemetry_at, 3)
                cond[(dev_id, "GAP")] = d
        return cond

    # ------------------------------------------------------------------ faults and alarms
    def localise(self, now: float | None = None) -> list[Fault]:
        """Group the silent devices into faults (see the module doc); platform first, then
        collectors, then single devices, each sorted by id."""
        now = float(self.clock() if now is None else now)
        with self._lock:
            silent = {d: st for d, st in self._states.items() if self._silence(st, now)}
            if not self.link_up:
                return [Fault("platform", "platform", PLATFORM_SUBJECT, tuple(sorted(self._states)),
                              self.link_changed_at, "monitor's own broker connection down (devices not judged)")]
            if not silent:
                return []

            def since(ids):
                seen = [self._states[i].last_seen for i in ids]
                return None if any(s is None for s in seen) else min(seen)

            if len(self._states) >= 2 and len(silent) == len(self._states):
                ids = tuple(sorted(silent))
                return [Fault("platform", "platform", PLATFORM_SUBJECT, ids, since(ids),
                              f"broker/gateway link down: all {len(ids)} devices silent")]
            faults, explained = [], set()
            behind: dict[str, list[str]] = {}
            for d, st in self._states.items():
                if st.device.collector:
                    behind.setdefault(st.device.collector, []).append(d)
            for col, members in sorted(behind.items()):
                if not all(m in silent for m in members):
                    continue
                cst = self._states.get(col)
                reports = cst is not None and (cst.last_status_at is not None or cst.online is not None)
                col_silent = col in silent
                if reports and not col_silent:
                    continue                                 # the collector is alive: per-device faults
                if not col_silent and len(members) < 2:
                    continue                                 # one device, a mute collector: can't tell
                ids = tuple(sorted(members + ([col] if col_silent else [])))
                faults.append(Fault(f"collector:{col}", "collector", col, ids, since(ids),
                                    f"collector {col} (or its link) down: {len(members)} devices behind it silent"))
                explained.update(ids)
            for d in sorted(set(silent) - explained):
                why = self._silence(silent[d], now)
                text = ("offline (last will)" if "OFFLINE" in why
                        else f"no message for more than {why['INACTIVE']['timeout_s']:g} s")
                faults.append(Fault(f"device:{d}", "device", d, (d,), silent[d].last_seen, f"device {d} {text}"))
            return faults

    def check(self, now: float | None = None) -> list[AlarmEvent]:
        """Evaluate every alarm condition at ``now``; returns the raise/update/clear events since the
        last check (the monitor remembers which alarms it has active)."""
        now = float(self.clock() if now is None else now)
        with self._lock:
            cond = self._conditions(now)
            faults = self.localise(now)
            cause: dict[str, str] = {}
            for f in faults:
                if f.scope == "device":
                    continue
                typ = "LINK_DOWN" if f.scope == "platform" else "COLLECTOR_DOWN"
                cond[(f.subject, typ)] = {"fault_id": f.id, "message": f.message, "devices": list(f.devices),
                                          "since": f.since}
                for d in f.devices:
                    cause[d] = f.id
            events = []
            for key, details in sorted(cond.items()):
                dev, typ = key
                c = cause.get(dev) if typ in SILENCE else None
                sev = ALARM_TYPES[typ]
                old = self._active.get(key)
                if old is None:
                    ev = AlarmEvent("raise", dev, typ, sev, now, details, c)
                elif old.cause != c or old.severity != sev:
                    ev = AlarmEvent("update", dev, typ, sev, now, details, c)
                else:
                    continue
                events.append(ev)
                self._active[key] = ev
            for key in sorted(set(self._active) - set(cond)):
                old = self._active.pop(key)
                events.append(AlarmEvent("clear", key[0], key[1], old.severity, now, {}, old.cause))
            return events

    def adopt(self, alarms: Iterable) -> None:
        """Take over active alarms recorded earlier (e.g. :meth:`AlarmStore.active` after a restart)
        so the next :meth:`check` clears them when their condition is gone, instead of leaving them
        active for ever."""
        with self._lock:
            for a in alarms:
                if a.type in ALARM_TYPES:
                    self._active.setdefault((a.device_id, a.type), AlarmEvent(
                        "raise", a.device_id, a.type, a.severity, self.started, dict(a.details or {}), a.cause))

    def active_alarms(self) -> dict[tuple[str, str], AlarmEvent]:
        with self._lock:
            return dict(self._active)

    # ------------------------------------------------------------------ dashboards
    def snapshot(self, now: float | None = None) -> pd.DataFrame:
        """One row per monitored device (see the module doc) — for dashboards and notebooks."""
        now = float(self.clock() if now is None else now)
        cols = ["device_id", "enterprise_id", "type", "node_id", "collector", "online", "last_seen", "age_s", "battery", "signal",
                "firmware", "uptime_s", "rate_per_min", "latency_p50_ms", "latency_stored_p50_ms", "gaps",
                "messages", "bad_messages", "timeout_s", "alarms", "cause"]
        rows = []
        with self._lock:
            for d, st in sorted(self._states.items()):
                mine = sorted(t for (dev, t) in self._active if dev == d)
                causes = sorted({e.cause for (dev, _), e in self._active.items() if dev == d and e.cause})
                rows.append({
                    "device_id": d, "enterprise_id": getattr(st.device, "enterprise_id", "") or "",
                    "type": st.device.type, "node_id": st.device.node_id,
                    "collector": st.device.collector, "online": st.online,
                    "last_seen": pd.Timestamp(st.last_seen, unit="s", tz="UTC") if st.last_seen else pd.NaT,
                    "age_s": now - st.last_seen if st.last_seen else math.nan,
                    "battery": st.battery, "signal": st.signal, "firmware": st.firmware, "uptime_s": st.uptime_s,
                    "rate_per_min": self.rate_per_min(d, now), "latency_p50_ms": self.latency_p50_ms(d),
                    "latency_stored_p50_ms": self.latency_p50_ms(d, stored=True), "gaps": len(st.gaps),
                    "messages": st.messages, "bad_messages": st.bad, "timeout_s": self.timeout_s(d),
                    "alarms": ",".join(mine), "cause": ",".join(causes),
                })
        df = pd.DataFrame(rows, columns=cols)
        df["online"] = df["online"].astype("boolean")
        for c in ("battery", "signal", "uptime_s", "latency_p50_ms", "latency_stored_p50_ms", "age_s"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        df["last_seen"] = pd.to_datetime(df["last_seen"], utc=True)
        return df


class MonitorService:
    """Subscribe to ``<root>/+/status`` and ``<root>/+/telemetry`` (QoS 1), feed a
    :class:`DeviceMonitor`, run :meth:`DeviceMonitor.check` every ``check_interval`` seconds and
    write the alarm events to an :class:`~workbench.devices.alarms.AlarmStore`.

    The broker user must be a platform user with the ``gateway`` role (the only role that may read
    both topics; ``manager`` reads status only) — and its *own* one: the broker uses the user name
    as client id, so sharing the ingest gateway's user would disconnect one of the two.  Create it
    with ``write_broker_config(…, platform_users={…, "platform-monitor": "gateway"})``.  A clean
    (non-persistent) session is used: the monitor wants the present, and retained status messages
    give it the last known state of every device at once when it (re)connects.
    """

    def __init__(self, host: str, port: int, username: str, password: str, registry, alarm_store, *,
                 root: str = "wb", check_interval: float = 60.0, client_id: str | None = None,
                 monitor: DeviceMonitor | None = None, registry_refresh: float = 60.0, on_events=None,
                 lake=None, **monitor_options):
        import paho.mqtt.client as mqtt

        self.host, self.port, self.registry, self.store = host, int(port), registry, alarm_store
        self.lake = lake                  # its watermarks give device time → stored latency
        self._stored_seen: dict = {}
        self.root = root.strip("/")
        self.check_interval, self.registry_refresh = float(check_interval), float(registry_refresh)
        self.on_events = on_events
        self.monitor = monitor or DeviceMonitor(registry, **monitor_options)
        self.monitor.set_link(False)                # until subscribed: nothing is judged
        self.monitor.adopt(alarm_store.active())    # a restarted monitor clears what it raised before
        self.subscribed = threading.Event()
        self._ever_subscribed = False
        self.events: list[AlarmEvent] = []
        self._refreshed = time.monotonic()
        c = self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or username,
                                      protocol=mqtt.MQTTv5)
        c.username_pw_set(username, password)
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.reconnect_delay_set(0.2, 10)

    @property
    def topics(self) -> list[str]:
        return [f"{self.root}/+/status", f"{self.root}/+/telemetry"]

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("monitor: connection refused: %s", reason_code)
            return
        client.subscribe([(t, 1) for t in self.topics])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if any(rc.is_failure for rc in reason_codes):
            log.error("monitor: subscription refused: %s (the user needs the gateway role)", reason_codes)
            return
        self.monitor.set_link(True)
        self._ever_subscribed = True
        self.subscribed.set()
        log.info("monitor subscribed to %s", self.topics)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.subscribed.clear()
        self.monitor.set_link(False)
        log.warning("monitor disconnected: %s", reason_code)

    def _on_message(self, client, userdata, msg):
        at = time.time()
        parts = msg.topic[len(self.root) + 1:].split("/") if msg.topic.startswith(self.root + "/") else []
        if len(parts) != 2:
            return
        device_id, kind = parts
        if kind == "status":
            self.monitor.observe_status(device_id, bytes(msg.payload), at, retained=bool(msg.retain))
        elif kind == "telemetry":
            self.monitor.observe_telemetry(device_id, bytes(msg.payload), at, retained=bool(msg.retain))

    def poll_stored(self) -> int:
        """Feed the monitor the storing latency of every series the lake committed since the
        last poll: the latest reading's device time → the commit of its batch (the lake's
        watermarks — one small manifest query, no data files).  Returns the series observed."""
        if self.lake is None:
            return 0
        import pandas as pd

        from workbench.core.meters import LOCAL_TZ

        n = 0
        for table in ("readings", "telemetry"):
            marks = self.lake.watermarks(table)
            marks = marks[marks["stored_at"].notna()]
            if marks.empty:
                continue
            series = marks.columns[0]
            utc = pd.DatetimeIndex(marks["ts"]).tz_localize(LOCAL_TZ).tz_convert("UTC").tz_localize(None)
            ts_ms = (utc - pd.Timestamp(0)) // pd.Timedelta("1ms")
            for dev, t, at in zip(marks[series], ts_ms, marks["stored_at"]):
                key = (table, dev)
                if self._stored_seen.get(key) == (t, at):
                    continue
                self._stored_seen[key] = (t, at)
                self.monitor.observe_stored(str(dev), float(t), float(at))
                n += 1
        return n

    def check_now(self, now: float | None = None) -> list[AlarmEvent]:
        """Refresh the device list if due, take the lake's storing latencies, run the checks,
        store the devices' status (:meth:`AlarmStore.save_status`, what the live monitoring page
        reads) and the events."""
        if time.monotonic() - self._refreshed > self.registry_refresh:
            self.monitor.update_devices(self.registry)
            self._refreshed = time.monotonic()
        self.poll_stored()
        events = self.monitor.check(now)
        self.store.save_status(self.monitor.snapshot(now), at=now, link_up=self.monitor.link_up)
        if events:
            self.store.apply(events)
            self.events.extend(events)
            for e in events:
                log.info("alarm %s %s %s%s", e.action, e.device_id, e.type, f" (cause {e.cause})" if e.cause else "")
            if self.on_events is not None:
                self.on_events(events)
        return events

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=True)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def run(self, stop: threading.Event | None = None, *, max_seconds: float | None = None) -> None:
        """Connect and check every ``check_interval`` seconds until ``stop`` is set."""
        stop = stop or threading.Event()
        self.start()
        deadline = time.monotonic() + max_seconds if max_seconds else None
        try:
            while not stop.wait(self.check_interval):
                if not self._ever_subscribed:
                    continue                        # not connected yet: no LINK_DOWN for the start-up
                try:
                    self.check_now()
                except Exception:
                    log.exception("monitor: check failed")
                if deadline is not None and time.monotonic() > deadline:
                    break
        finally:
            self.stop()

