"""Shared pieces of the pollers (:mod:`connectors.modbus`, :mod:`connectors.opcua`): poll maps,
polled values → ``readings`` rows, and the sinks that publish a poll into the pipeline.

Poll map (YAML text, a path to a YAML file, or the same structure as a dict)::

    devices:
      M0001:                       # device_id = the meter_id of the readings
        unit_id: 1                 # protocol-specific device fields (Modbus) …
        quantities:
          active_energy: {address: 0, type: uint32, scale: 0.01, unit: kWh}
          active_power:  {address: 2, type: float32, unit: kW, meter_id: M0001.P}

``devices`` may also be a list of mappings with a ``device_id`` key.  Every quantity needs a
``unit`` that :func:`workbench.core.units.parse_unit` understands (the OPC UA poller may instead read the
node's ``EngineeringUnits``), and may carry ``scale`` (multiplied, default 1), ``offset`` (added
after scaling, default 0) and ``meter_id`` (the readings' meter_id for this quantity when it is not
the device_id — the lake converts every reading to *its meter's* unit, so a power value of an
energy meter needs its own meter).  Errors are :class:`PollMapError` naming device and field.

A poll is a :class:`~connectors.ConnectorResult` of kind ``readings`` (meter_id, ts, quantity,
value, unit; ``ts`` tz-aware UTC, milliseconds) with metadata ``source``, ``connector``,
``endpoint``, ``origin``, ``polled_at``, ``errors`` (one dict per failed (device, quantity):
``device``, ``quantity``, ``reason``) and ``rejected`` (the failed reads as rows with a
``reason``, which :func:`workbench.ingestion.ingest` quarantines — nothing is dropped silently).
``raw`` is what was received (registers / OPC UA values and status), as JSON.

Sinks: :class:`MqttSink` publishes each device's values in the platform's telemetry JSON shape
(``{"ts": ms, "values": {quantity: value}}``, see :func:`to_telemetry_payloads`) to
``<root>/<device_id>/telemetry`` with QoS 1, so polled meters join the MQTT meters' pipeline;
:class:`LakeSink` hands the result straight to the lake's write path (setups without a broker).
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.errors import WorkbenchError

from . import ConnectorResult

__all__ = [
    "READINGS_COLUMNS",
    "LakeSink",
    "MqttSink",
    "PollMapError",
    "build_result",
    "load_poll_map",
    "run_poller",
    "telemetry_topic",
    "to_telemetry_payloads",
    "utc_now_ms",
]

log = logging.getLogger("connectors.telemetry")

READINGS_COLUMNS = ("meter_id", "ts", "quantity", "value", "unit")


class PollMapError(WorkbenchError, ValueError):
    """A poll map that cannot be used; the message names the device and the field."""

    def __init__(self, message: str, *, device: str | None = None, quantity: str | None = None,
                 field: str | None = None):
        where = ", ".join(x for x in (f"device '{device}'" if device is not None else "",
                                      f"quantity '{quantity}'" if quantity is not None else "",
                                      f"field '{field}'" if field is not None else "") if x)
        super().__init__(f"poll map: {where}: {message}" if where else f"poll map: {message}")
        self.device, self.quantity, self.field = device, quantity, field


# ------------------------------------------------------------------------------------ poll maps
def _read_yaml(source) -> Any:
    import yaml

    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))):
        return yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    return yaml.safe_load(source)


def load_poll_map(source, *, device_fields: Callable[[str, dict, dict], dict] | None = None,
                  quantity_fields: Callable[[str, str, dict, dict], dict] | None = None,
                  unit_required: bool = True) -> dict[str, dict]:
    """Parse and validate a poll map → ``{device_id: {..device fields.., "quantities": {q: {...}}}}``.

    ``device_fields(device_id, raw_device)`` returns the protocol's validated device fields;
    ``quantity_fields(device_id, quantity, raw_quantity, device)`` the protocol's validated quantity
    fields (both raise :class:`PollMapError`).  Common quantity fields checked here: ``unit``
    (pint-valid; required unless ``unit_required=False``), ``scale``, ``offset``, ``meter_id``.
    """
    from workbench.core.units import UnitError, parse_unit

    doc = _read_yaml(source) if isinstance(source, (str, Path)) else source
    if not isinstance(doc, Mapping):
        raise PollMapError("must be a mapping with a 'devices' key")
    devices = doc.get("devices", None)
    if devices is None:
        raise PollMapError("missing 'devices'")
    if isinstance(devices, Mapping):
        items = [(str(k), v) for k, v in devices.items()]
    elif isinstance(devices, list):
        items = []
        for i, d in enumerate(devices):
            if not isinstance(d, Mapping) or not d.get("device_id"):
                raise PollMapError(f"devices[{i}] needs a 'device_id'", field="device_id")
            items.append((str(d["device_id"]), d))
    else:
        raise PollMapError("'devices' must be a mapping or a list")
    if not items:
        raise PollMapError("no devices")
    out: dict[str, dict] = {}
    for device_id, raw in items:
        if device_id in out:
            raise PollMapError("listed twice", device=device_id, field="device_id")
        if not isinstance(raw, Mapping):
            raise PollMapError("must be a mapping", device=device_id)
        device = dict(device_fields(device_id, dict(raw)) if device_fields else {})
        quantities = raw.get("quantities")
        if not isinstance(quantities, Mapping) or not quantities:
            raise PollMapError("needs at least one quantity", device=device_id, field="quantities")
        qs = {}
        for qname, qraw in quantities.items():
            qname = str(qname)
            if not isinstance(qraw, Mapping):
                raise PollMapError("must be a mapping", device=device_id, quantity=qname)
            q = dict(quantity_fields(device_id, qname, dict(qraw), device) if quantity_fields else {})
            unit = qraw.get("unit")
            if unit is None or str(unit).strip() == "":
                if unit_required:
                    raise PollMapError("missing", device=device_id, quantity=qname, field="unit")
                unit = None
            else:
                try:
                    parse_unit(str(unit))
                except UnitError as exc:
                    raise PollMapError(str(exc), device=device_id, quantity=qname, field="unit") from None
                unit = str(unit)
            q["unit"] = unit
            for f, default in (("scale", 1.0), ("offset", 0.0)):
                v = qraw.get(f, default)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise PollMapError(f"must be a finite number (got {v!r})", device=device_id, quantity=qname, field=f)
                q[f] = float(v)
            if q["scale"] == 0:
                raise PollMapError("must not be 0", device=device_id, quantity=qname, field="scale")
            q["meter_id"] = str(qraw.get("meter_id") or device_id)
            qs[qname] = q
        device["quantities"] = qs
        out[device_id] = device
    return out


def int_field(raw: Mapping, key: str, default, lo: int, hi: int, *, device: str, quantity: str | None = None) -> int:
    """An integer field in [lo, hi] (helper for the protocol validators)."""
    v = raw.get(key, default)
    if v is None:
        raise PollMapError("missing", device=device, quantity=quantity, field=key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise PollMapError(f"must be an integer {lo}…{hi} (got {v!r})", device=device, quantity=quantity, field=key)
    return v


def choice_field(raw: Mapping, key: str, default, choices: Iterable[str], *, device: str,
                 quantity: str | None = None) -> str:
    v = raw.get(key, default)
    choices = tuple(choices)
    if v is None or str(v).lower() not in choices:
        raise PollMapError(f"must be one of {', '.join(choices)} (got {v!r})", device=device, quantity=quantity, field=key)
    return str(v).lower()


# ------------------------------------------------------------------------------------ results
def utc_now_ms() -> _dt.datetime:
    """Now in UTC (tz-aware), truncated to milliseconds (the resolution of telemetry payloads)."""
    t = _dt.datetime.now(_dt.UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def as_utc(ts: _dt.datetime) -> _dt.datetime:
    """A datetime as tz-aware UTC (naive input is taken to be UTC, as OPC UA timestamps are)."""
    ts = ts.replace(tzinfo=_dt.UTC) if ts.tzinfo is None else ts.astimezone(_dt.UTC)
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def build_result(rows: list[dict], errors: list[dict], raw_records: list[dict], *, connector: str, source: str,
                 endpoint: str, polled_at: _dt.datetime, extra: Mapping | None = None) -> ConnectorResult:
    """The :class:`ConnectorResult` of one poll.

    ``rows``: dicts with meter_id, ts, quantity, value, unit (plus ``device``); ``errors``: dicts
    with device, quantity, reason (and meter_id, unit when known).
    """
    data = pd.DataFrame({
        "meter_id": pd.Series([r["meter_id"] for r in rows], dtype=object),
        "ts": pd.Series([r["ts"] for r in rows], dtype="datetime64[ms, UTC]"),
        "quantity": pd.Series([r["quantity"] for r in rows], dtype=object),
        "value": pd.Series([r["value"] for r in rows], dtype="float64"),
        "unit": pd.Series([r["unit"] for r in rows], dtype=object),
    })
    errs = [{"device": e["device"], "quantity": e["quantity"], "reason": e["reason"]} for e in errors]
    meta = {"connector": connector, "source": source, "endpoint": endpoint, "origin": endpoint,
            "polled_at": polled_at.isoformat(timespec="milliseconds"), "errors": errs,
            "records": len(rows), "devices": sorted({r["device"] for r in rows}),
            "device_of": {r["meter_id"]: r["device"] for r in rows}}
    if errors:
        meta["rejected"] = pd.DataFrame({
            "meter_id": [e.get("meter_id", e["device"]) for e in errors],
            "ts": [polled_at.isoformat(timespec="milliseconds")] * len(errors),
            "quantity": [e["quantity"] for e in errors],
            "value": [None] * len(errors),
            "unit": [e.get("unit") or "" for e in errors],
            "reason": [f"{connector} poll failed: {e['reason']}" for e in errors],
        })
    meta.update(extra or {})
    raw = json.dumps({"connector": connector, "endpoint": endpoint,
                      "polled_at": meta["polled_at"], "records": raw_records, "errors": errs},
                     ensure_ascii=False, default=str, sort_keys=True).encode("utf-8")
    stamp = polled_at.strftime("%Y%m%dT%H%M%S%f")[:-3]
    return ConnectorResult(data, meta, kind="readings", raw=raw, raw_name=f"{connector}-poll-{stamp}.json")


# ------------------------------------------------------------------------------------ telemetry
def _epoch_ms(ts) -> int:
    t = pd.Timestamp(ts)
    if t.tzinfo is None:  # naive readings are Asia/Shanghai local time (connectors' convention)
        t = t.tz_localize("Asia/Shanghai")
    return int(t.value // 1_000_000)


def to_telemetry_payloads(result: ConnectorResult, *, by: str = "device") -> dict[str, dict | list[dict]]:
    """``{device_id: {"ts": epoch_ms, "values": {quantity: value}}}`` — the platform's telemetry JSON.

    ``by="device"`` groups by the poll map's device (``metadata['device_of']``: meter_id → device,
    which differs from the meter_id only for quantities with their own ``meter_id``);
    ``by="meter_id"`` groups by the readings' meter_id.  When a device's values carry different
    timestamps (OPC UA source timestamps), its payload is the platform's array form
    ``[{"ts": …, "values": …}, …]`` (ascending ts); with one timestamp it is a single object.
    """
    data = result.data
    if data is None or not len(data):
        return {}
    if by not in ("device", "meter_id"):
        raise ValueError("by must be 'device' or 'meter_id'")
    keys = data["meter_id"].astype(str)
    if by == "device":
        device_of = result.metadata.get("device_of") or {}
        keys = keys.map(lambda m: device_of.get(m, m))
    out: dict[str, dict | list[dict]] = {}
    grouped: dict[str, dict[int, dict]] = {}
    for key, ts, q, v in zip(keys, data["ts"], data["quantity"].astype(str), data["value"]):
        v = float(v)
        if not math.isfinite(v):
            continue
        grouped.setdefault(key, {}).setdefault(_epoch_ms(ts), {})[q] = int(v) if v.is_integer() and abs(v) < 2**53 else v
    for key, by_ts in grouped.items():
        items = [{"ts": t, "values": vals} for t, vals in sorted(by_ts.items())]
        out[key] = items[0] if len(items) == 1 else items
    return out


def telemetry_topic(device_id: str, root: str = "wb") -> str:
    return f"{root.rstrip('/')}/{device_id}/telemetry"


class MqttSink:
    """Publish each device's telemetry payload to ``<root>/<device_id>/telemetry`` (QoS 1).

    ``client`` is a connected :class:`paho.mqtt.client.Client` (or anything with the same
    ``publish(topic, payload, qos, retain)``); broker configuration is the caller's.
    ``wait`` (seconds) waits for each QoS 1 acknowledgement (``MQTTMessageInfo.wait_for_publish``).
    Returns ``[(topic, payload_text, message_info), …]``.
    """

    def __init__(self, client, root: str = "wb", *, qos: int = 1, retain: bool = False, wait: float | None = None):
        self.client, self.root, self.qos, self.retain, self.wait = client, root, qos, retain, wait

    def __call__(self, result: ConnectorResult) -> list[tuple]:
        sent = []
        for device, payload in to_telemetry_payloads(result, by="device").items():
            topic = telemetry_topic(device, self.root)
            text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
            info = self.client.publish(topic, text, qos=self.qos, retain=self.retain)
            if self.wait is not None and hasattr(info, "wait_for_publish"):
                info.wait_for_publish(self.wait)
            sent.append((topic, text, info))
        for e in result.metadata.get("errors", []):
            log.warning("not published: %s %s: %s", e["device"], e["quantity"], e["reason"])
        return sent


class LakeSink:
    """Hand each poll to the lake's write path (no broker): ``ingest`` is
    ``functools.partial(workbench.ingestion.ingest, lake)`` or any callable taking the result and
    ``sender``, ``mapping``, ``identifiers`` (a connector imports only the core, so the caller
    supplies the path).  Failed reads travel in ``metadata['rejected']`` and are quarantined with
    their reason.  A poll with neither rows nor errors is not ingested (returns None)."""

    def __init__(self, ingest, sender: str = "poller", *, mapping=None, identifiers=None):
        if not callable(ingest):
            raise TypeError("LakeSink(ingest, …): ingest must be callable, e.g. functools.partial(workbench.ingestion.ingest, lake)")
        self.ingest, self.sender, self.mapping, self.identifiers = ingest, sender, mapping, identifiers

    def __call__(self, result: ConnectorResult):
        if not len(result.data) and not result.metadata.get("errors"):
            return None
        return self.ingest(result, sender=self.sender, mapping=self.mapping, identifiers=self.identifiers)


# ------------------------------------------------------------------------------------ loop
def run_poller(poll: Callable[[], ConnectorResult], interval: float, sink: Callable[[ConnectorResult], Any] | None,
               stop_event: threading.Event | None = None, *, max_polls: int | None = None,
               name: str = "poller") -> int:
    """``sink(poll())`` every ``interval`` s (fixed rate) until ``stop_event`` is set or ``max_polls``
    polls were made; returns the number of polls.  A failing poll or sink is logged and the loop
    goes on (the failed devices are retried — and reconnected — on the next poll)."""
    if interval < 0:
        raise ValueError("interval must be >= 0")
    n = 0
    while max_polls is None or n < max_polls:
        if stop_event is not None and stop_event.is_set():
            break
        started = time.monotonic()
        try:
            result = poll()
            for e in result.metadata.get("errors", []):
                log.warning("%s: %s %s: %s", name, e["device"], e["quantity"], e["reason"])
            if sink is not None:
                sink(result)
        except Exception:
            log.exception("%s: poll failed", name)
        n += 1
        if max_polls is not None and n >= max_polls:
            break
        wait = max(0.0, interval - (time.monotonic() - started))
        if stop_event is not None:
            if stop_event.wait(wait):
                break
        else:
            time.sleep(wait)
    return n
