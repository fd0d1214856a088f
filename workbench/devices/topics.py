"""MQTT topics and payloads of the collection devices — one place for the device simulator, the
ingest gateway and the device manager (seed §7.3, §7.4).  Pure functions, no MQTT client.

Topics under a configurable root (default ``wb``; see :func:`workbench.devices.topics.device_topics`,
which grants exactly these in the broker's ACL)::

    <root>/<device>/telemetry   device → platform   QoS 1   {"ts": ms, "values": {quantity: number}}
                                                            optional "units": {quantity: unit} (else
                                                            the registered units), or a JSON list
                                                            of those (a batch)
    <root>/<device>/status      device → platform   QoS 1, RETAINED
                                  heartbeat / on connect: {"ts", "online": true, "battery", "signal",
                                                           "firmware", "uptime_s", ...}
                                  last will / clean stop: {"online": false, "reason", ...}
    <root>/<device>/config      platform → device   QoS 1, RETAINED   {"version": n, "config": {...}}
    <root>/<device>/cmd         platform → device   QoS 1   {"id", "cmd", "args": {...}}
    <root>/<device>/cmd/ack     device → platform   QoS 1   {"id", "ok", "ts", "detail", ...}

``ts`` is always epoch milliseconds (UTC) of the device clock.  Commands (:data:`COMMANDS`):
``restart`` (reconnect), ``set_interval`` (``args.interval_s`` seconds between telemetry messages),
``isolate`` (stop sending telemetry).  A device acknowledges an applied configuration on its
``cmd/ack`` topic too, with ``id`` = :func:`config_ack_id` (``"config:<version>"``) and
``config_version``.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.devices.registry import DeviceError, validate_device_id

_ROOT_LEVEL = re.compile(r"[A-Za-z0-9._-]+")


def validate_root(root: str) -> str:
    """The topic root: one or more ``/``-separated levels of ``A-Z a-z 0-9 . _ -`` (no wildcards,
    no leading ``$``, no empty level)."""
    if not isinstance(root, str) or not root:
        raise DeviceError("topic root must be non-empty text, e.g. 'wb'")
    for level in root.split("/"):
        if not _ROOT_LEVEL.fullmatch(level) or level.startswith("$"):
            raise DeviceError(f"topic root {root!r}: level {level!r} must be non-empty and use only "
                              "letters, digits, '.', '_' and '-' (no '+', '#', '$', whitespace)")
    return root


def device_topics(root: str, device_id: str) -> dict[str, tuple[str, str]]:
    """``{name: (access, topic)}`` of one device's own topics (access ``read`` or ``write`` as
    seen from the device)."""
    base = f"{root}/{device_id}"
    return {"telemetry": ("write", f"{base}/telemetry"), "status": ("write", f"{base}/status"),
            "config": ("read", f"{base}/config"), "cmd": ("read", f"{base}/cmd"),
            "cmd_ack": ("write", f"{base}/cmd/ack")}

__all__ = [
    "COMMANDS",
    "DEFAULT_ROOT",
    "KINDS",
    "Command",
    "CommandAck",
    "ConfigUpdate",
    "PayloadError",
    "cmd_ack_payload",
    "cmd_ack_topic",
    "cmd_payload",
    "cmd_topic",
    "config_ack_id",
    "config_payload",
    "config_topic",
    "parse_cmd",
    "parse_cmd_ack",
    "parse_config",
    "parse_status",
    "parse_topic",
    "status_payload",
    "status_topic",
    "telemetry_payload",
    "telemetry_topic",
    "topic_filter",
]

DEFAULT_ROOT = "wb"
#: topic kinds, i.e. the levels after ``<root>/<device>/``
KINDS = {"telemetry": "telemetry", "status": "status", "config": "config", "cmd": "cmd", "cmd_ack": "cmd/ack"}
COMMANDS = ("restart", "set_interval", "isolate")


class PayloadError(DeviceError):
    """A downlink/uplink payload that does not have the documented shape; the message says why."""


# --------------------------------------------------------------------------- topics


def _topic(root: str, device: str, kind: str) -> str:
    validate_root(root)
    validate_device_id(device)
    return f"{root}/{device}/{KINDS[kind]}"


def telemetry_topic(root: str, device: str) -> str:
    return _topic(root, device, "telemetry")


def status_topic(root: str, device: str) -> str:
    return _topic(root, device, "status")


def config_topic(root: str, device: str) -> str:
    return _topic(root, device, "config")


def cmd_topic(root: str, device: str) -> str:
    return _topic(root, device, "cmd")


def cmd_ack_topic(root: str, device: str) -> str:
    return _topic(root, device, "cmd_ack")


def topic_filter(root: str, kind: str) -> str:
    """Subscription filter for one kind of topic of every device: ``<root>/+/<kind>``."""
    validate_root(root)
    return f"{root}/+/{KINDS[kind]}"


def parse_topic(root: str, topic: str) -> tuple[str, str] | None:
    """``(device, kind)`` of a device topic under ``root`` (kind a key of :data:`KINDS`), or
    ``None`` if ``topic`` is not one."""
    prefix = f"{root}/"
    if not topic.startswith(prefix):
        return None
    rest = topic[len(prefix):]
    device, sep, tail = rest.partition("/")
    if not sep:
        return None
    for kind, level in KINDS.items():
        if tail == level:
            try:
                validate_device_id(device)
            except DeviceError:
                return None
            return device, kind
    return None


# --------------------------------------------------------------------------- helpers


def _dumps(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _loads(payload: bytes | str, what: str):
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"{what}: not JSON ({exc})") from None


def _ts(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PayloadError(f"{what}: ts must be epoch milliseconds, not {value!r}")
    return int(value)


def _number(value, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PayloadError(f"{what} must be a finite number, not {value!r}")
    return value


# --------------------------------------------------------------------------- telemetry


def _reading(ts_ms, values: Mapping[str, float], units: Mapping[str, str] | None = None) -> dict:
    if not values:
        raise PayloadError("telemetry: values must not be empty")
    out = {"ts": _ts(ts_ms, "telemetry"),
           "values": {str(q): _number(v, f"telemetry value {q!r}") for q, v in values.items()}}
    if units:
        out["units"] = {str(q): str(u) for q, u in units.items()}
    return out


def telemetry_payload(ts_ms, values: Mapping[str, float] | None = None, *,
                      readings: Iterable[tuple[int, Mapping[str, float]]] | None = None,
                      units: Mapping[str, str] | None = None) -> bytes:
    """``{"ts": ms, "values": {...}}`` — or, with ``readings=[(ts, values), …]`` (and no
    ``ts_ms``/``values``), the batch form: a JSON list of those.  ``units`` ``{quantity: unit}``
    states the units the values are in (each item carries them; default: the registered ones)."""
    if readings is not None:
        if ts_ms is not None or values is not None:
            raise PayloadError("telemetry: give either ts_ms and values or readings")
        items = [_reading(t, v, units) for t, v in readings]
        if not items:
            raise PayloadError("telemetry: empty batch")
        return _dumps(items)
    return _dumps(_reading(ts_ms, values or {}, units))


# --------------------------------------------------------------------------- status


def status_payload(ts_ms: int | None = None, *, online: bool = True, battery: float | None = None,
                   signal: float | None = None, firmware: str | None = None, uptime_s: float | None = None,
                   **extra: Any) -> bytes:
    """Heartbeat ``{"ts", "online", "battery" (%), "signal" (dBm), "firmware", "uptime_s", …}``;
    ``None`` fields are left out (a last will has no meaningful ``ts``).  ``extra`` adds
    JSON-serialisable fields (``reason``, ``config_version``, ``isolated`` …)."""
    doc: dict[str, Any] = {}
    if ts_ms is not None:
        doc["ts"] = _ts(ts_ms, "status")
    doc["online"] = bool(online)
    if battery is not None:
        doc["battery"] = round(float(_number(battery, "status battery")), 1)
    if signal is not None:
        doc["signal"] = round(float(_number(signal, "status signal")), 1)
    if firmware is not None:
        doc["firmware"] = str(firmware)
    if uptime_s is not None:
        doc["uptime_s"] = int(_number(uptime_s, "status uptime_s"))
    doc.update({k: v for k, v in extra.items() if v is not None})
    return _dumps(doc)


def parse_status(payload: bytes | str) -> dict:
    """The status object; checks ``online`` (bool) and, when present, ``ts``."""
    doc = _loads(payload, "status")
    if not isinstance(doc, dict) or not isinstance(doc.get("online"), bool):
        raise PayloadError('status: expected an object with "online": true|false')
    if "ts" in doc:
        doc["ts"] = _ts(doc["ts"], "status")
    return doc


# --------------------------------------------------------------------------- config (downlink)


@dataclass(frozen=True)
class ConfigUpdate:
    version: int
    config: dict = field(default_factory=dict)


def config_payload(version: int, config: Mapping | None = None, *, ts_ms: int | None = None) -> bytes:
    """Retained configuration ``{"version": n, "config": {...}}`` (+ ``ts`` when given)."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise PayloadError(f"config: version must be an integer ≥ 1, not {version!r}")
    doc: dict[str, Any] = {"version": version, "config": dict(config or {})}
    if ts_ms is not None:
        doc["ts"] = _ts(ts_ms, "config")
    return _dumps(doc)


def parse_config(payload: bytes | str) -> ConfigUpdate:
    """A configuration downlink.  ``{"version": n, "config": {...}}``; the flat form
    ``{"version": n, key: value, …}`` is accepted too (every key but ``version``/``ts``)."""
    doc = _loads(payload, "config")
    if not isinstance(doc, dict):
        raise PayloadError("config: expected a JSON object")
    v = doc.get("version")
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise PayloadError(f"config: version must be an integer ≥ 1, not {v!r}")
    if "config" in doc:
        if not isinstance(doc["config"], dict):
            raise PayloadError("config: 'config' must be an object")
        return ConfigUpdate(v, dict(doc["config"]))
    return ConfigUpdate(v, {k: x for k, x in doc.items() if k not in ("version", "ts")})


def config_ack_id(version: int) -> str:
    """The ``id`` a device uses on ``cmd/ack`` to acknowledge configuration ``version``."""
    return f"config:{int(version)}"


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    id: str
    cmd: str
    args: dict = field(default_factory=dict)


def cmd_payload(id: str, cmd: str, args: Mapping | None = None) -> bytes:
    if not isinstance(id, str) or not id:
        raise PayloadError("cmd: id must be non-empty text")
    if cmd not in COMMANDS:
        raise PayloadError(f"cmd: {cmd!r} is not one of {list(COMMANDS)}")
    return _dumps({"id": id, "cmd": cmd, "args": dict(args or {})})


def parse_cmd(payload: bytes | str) -> Command:
    """A command ``{"id", "cmd", "args"}``; raises :class:`PayloadError` (whose ``cmd_id``
    attribute holds the id when one could be read, so the device can still answer)."""
    doc = _loads(payload, "cmd")
    if not isinstance(doc, dict):
        raise PayloadError("cmd: expected a JSON object")
    cid = doc.get("id")
    if isinstance(cid, int) and not isinstance(cid, bool):
        cid = str(cid)
    if not isinstance(cid, str) or not cid:
        raise PayloadError("cmd: 'id' must be non-empty text")

    def fail(msg):
        exc = PayloadError(f"cmd {cid}: {msg}")
        exc.cmd_id = cid
        return exc

    cmd, args = doc.get("cmd"), doc.get("args", {})
    if cmd not in COMMANDS:
        raise fail(f"unknown command {cmd!r}; expected one of {list(COMMANDS)}")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise fail("'args' must be an object")
    if cmd == "set_interval":
        iv = args.get("interval_s")
        if isinstance(iv, bool) or not isinstance(iv, int | float) or not math.isfinite(iv) or iv <= 0:
            raise fail(f"set_interval needs args.interval_s > 0 (seconds), not {iv!r}")
    return Command(cid, cmd, dict(args))


@dataclass(frozen=True)
class CommandAck:
    id: str
    ok: bool
    ts: int
    detail: str = ""
    extra: dict = field(default_factory=dict)


def cmd_ack_payload(id: str, ok: bool, ts_ms: int, detail: str = "", **extra: Any) -> bytes:
    return _dumps({"id": str(id), "ok": bool(ok), "ts": _ts(ts_ms, "cmd/ack"), "detail": str(detail),
                   **{k: v for k, v in extra.items() if v is not None}})


def parse_cmd_ack(payload: bytes | str) -> CommandAck:
    doc = _loads(payload, "cmd/ack")
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not isinstance(doc.get("ok"), bool):
        raise PayloadError('cmd/ack: expected {"id": text, "ok": bool, "ts": ms, "detail": text}')
    extra = {k: v for k, v in doc.items() if k not in ("id", "ok", "ts", "detail")}
    return CommandAck(doc["id"], doc["ok"], _ts(doc.get("ts"), "cmd/ack"), str(doc.get("detail", "")), extra)
