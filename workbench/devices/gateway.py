"""MQTT → lake gateway (seed §7.2 a, §7.3): telemetry from the broker into the lake, nothing lost,
nothing counted twice.

* One persistent MQTT v5 session (fixed client id, ``clean_start=False``, session expiry) with a
  QoS 1 subscription to ``<root>/+/telemetry`` — shared (``$share/<group>/…``) so several gateway
  processes split the stream.  Messages that arrive while the gateway is down wait in the broker.
* Acknowledgement is manual (paho ``manual_ack_set(True)``): messages are collected into batches
  (``batch_size`` messages or ``batch_interval`` seconds) and a batch's PUBACKs are sent only after
  :meth:`workbench.lake.Lake.ingest` has stored it (commit-before-ack).  A gateway killed between
  the two gets the batch again from the broker; storage is idempotent on (device, ts, quantity) —
  the lake drops identical readings it already holds — so redelivery never double counts.
* Each message is validated against the device registry (:func:`parse_telemetry`): known, active
  device; JSON shape ``{"ts": ms, "values": {quantity: number}}`` (optionally ``"units":
  {quantity: unit}`` — converted with pint to the registered unit, another kind of unit refused)
  or a list of those; quantities the device measures (their units come from the registry);
  finite, plausible values; plausible timestamps.  Bad messages go to the lake's quarantine with
  the reason and the raw payload; the raw zone keeps every batch exactly as received (topic,
  payload, arrival time).
* Each reading carries the device's identifier.  A lake meter's register (its one quantity, or the
  one named ``register``/``consumption``) is curated as that meter's readings under the meter's
  quantity name, so it feeds the accounting like any other source; the device's other quantities
  (power, voltage …) and everything of a device that is no lake meter go to the lake's
  ``telemetry`` table in the registry's units (:meth:`Gateway._routes`).
* Several gateway processes may share the subscription: the lake ingests one batch at a time and
  keeps register readings that arrive out of order without counting consumption twice (see
  :mod:`workbench.ingest`).  Every ``rollup_every`` seconds a background thread merges the hot
  tier's older per-batch files (:meth:`workbench.lake.Lake.rollup`).
"""
from __future__ import annotations

import base64
import functools
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import pandas as pd

__all__ = ["Gateway", "GatewayStats", "TelemetryError", "parse_broker_url", "parse_telemetry"]

log = logging.getLogger(__name__)

#: timestamps further in the past / future than this are implausible (device clock wrong)
MAX_AGE_S = 400 * 86400
MAX_AHEAD_S = 300


_UNDECODED = object()       # orjson refused the payload: parse_telemetry says why (json's message)


class TelemetryError(ValueError):
    """A telemetry message that cannot be stored; the message is its quarantine reason."""


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` → (host, port); port 1883 by default."""
    from urllib.parse import urlsplit

    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    try:
        port = parts.port or 1883
    except ValueError:                    # a port that is not a number or out of range
        port = None
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname or port is None:
        raise ValueError(f"broker URL {url!r}: expected mqtt://HOST[:PORT]")
    return parts.hostname, port


def _ts_ms(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TelemetryError(f"{where}: 'ts' must be epoch milliseconds (a number), not {value!r}")
    if value < 1e11:            # seconds sent where milliseconds are expected: say so, don't guess
        raise TelemetryError(f"{where}: 'ts' {value!r} looks like seconds; epoch milliseconds expected")
    return int(value)


def _where(doc, n: int) -> str:
    return f"item {n}" if isinstance(doc, list) else "message"


def parse_telemetry(device, payload: bytes, *, now_ms: int | None = None,
                    quantity_names: Mapping[str, str] | None = None,
                    ranges: Mapping[str, tuple] | None = None, decoded: bool = False) -> list[tuple]:
    """Rows ``(meter_id, identifier, ts ms, quantity, value, unit)`` of one telemetry message.

    ``device`` is a :class:`workbench.devices.registry.Device`; ``quantity_names`` maps the
    device's quantity keys to the names used in the lake (default: unchanged); ``decoded``:
    ``payload`` is already the decoded JSON document; ``ranges``
    ``{quantity: (lo, hi)}`` plausible values (default: the device config's ``ranges``, and no
    negative counters).  Raises :class:`TelemetryError` with the reason.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        doc = payload if decoded else json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TelemetryError(f"not JSON: {exc}") from None
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        raise TelemetryError("empty list")
    ranges = dict(ranges or device.config.get("ranges") or {})
    names = quantity_names or {}
    quantities = device.quantities
    lo_ts, hi_ts = now_ms - MAX_AGE_S * 1000, now_ms + MAX_AHEAD_S * 1000
    rows = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or "values" not in item or "ts" not in item or \
                (len(item) != 2 and not (len(item) == 3 and "units" in item)):
            where = _where(doc, n)
            raise TelemetryError(f"{where}: expected {{\"ts\": ms, \"values\": {{quantity: number}}"
                                 f"[, \"units\": {{quantity: unit}}]}}")
        ts, values = item["ts"], item["values"]
        scale = _scales(device, item["units"], _where(doc, n)) if len(item) == 3 else None
        if type(ts) is not int or not (lo_ts <= ts <= hi_ts):        # fast path: a plausible int
            where = _where(doc, n)
            ts = _ts_ms(ts, where)
            if not (lo_ts <= ts <= hi_ts):
                raise TelemetryError(f"{where}: ts {ts} ({pd.Timestamp(ts, unit='ms', tz='UTC')}) is implausible "
                                     f"(device clock?)")
        if not isinstance(values, dict) or not values:
            raise TelemetryError(f"{_where(doc, n)}: 'values' must be a non-empty object")
        for q, v in values.items():
            if q not in quantities:
                raise TelemetryError(f"{_where(doc, n)}: device {device.device_id} does not measure {q!r} "
                                     f"(registered: {sorted(quantities)})")
            if type(v) not in (int, float) or not math.isfinite(v):
                raise TelemetryError(f"{_where(doc, n)}: {q} must be a finite number, not {v!r}")
            if scale is not None and q in scale:
                v = v * scale[q]
            lo, hi = ranges.get(q, (0.0, None) if q in ("register", "consumption") else (None, None))
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise TelemetryError(f"{_where(doc, n)}: {q} = {v} outside the plausible range [{lo}, {hi}]")
            rows.append((device.device_id, device.identifier, ts, names.get(q, q), float(v), quantities[q]))
    return rows


def _scales(device, units, where: str) -> dict[str, float]:
    """``{quantity: factor}`` from the units a message states to the units the device is registered
    with (pint); a unit of another kind, an unknown unit or a quantity the device does not measure
    is refused."""
    if not isinstance(units, dict):
        raise TelemetryError(f"{where}: 'units' must be an object {{quantity: unit}}")
    out = {}
    for q, unit in units.items():
        if q not in device.quantities:
            raise TelemetryError(f"{where}: device {device.device_id} does not measure {q!r}")
        if not isinstance(unit, str):
            raise TelemetryError(f"{where}: unit of {q} must be a string, not {unit!r}")
        try:
            out[q] = _factor(unit, device.quantities[q])
        except ValueError as exc:
            raise TelemetryError(f"{where}: {q} in {unit!r}: {exc}") from None
    return out


@functools.lru_cache(maxsize=4096)
def _factor(unit: str, registered: str) -> float:
    from workbench.units import conversion_factor

    return conversion_factor(unit, registered)


@dataclass
class GatewayStats:
    received: int = 0
    stored_batches: int = 0
    acked: int = 0
    readings: int = 0
    duplicates: int = 0
    quarantined: int = 0
    failures: int = 0
    max_latency_ms: float = 0.0        # device ts → stored, oldest reading of the last batch


class Gateway:
    """Subscribe, validate, store in batches, acknowledge after storing (see the module doc).

    ``registry``: a :class:`~workbench.devices.registry.DeviceRegistry`; ``lake``: a
    :class:`~workbench.lake.Lake` (its meter registry should hold the devices that are meters).
    ``username``/``password``: the gateway's own broker credentials (a platform user).  ``tls``: a
    :class:`~workbench.devices.pki.ClientTLS` to connect over TLS — with a client certificate
    (``CN`` = the gateway's user, for the broker's certificate listener) no password is needed.
    """

    def __init__(self, host: str, port: int, lake, registry, *, username: str, password: str | None = None,
                 client_id: str = "wb-gateway-1", root: str = "wb", group: str | None = "wb-gateways",
                 batch_size: int = 5000, batch_interval: float = 0.25, session_expiry: int = 7 * 86400,
                 sender: str | None = None, registry_refresh: float = 5.0, on_batch=None,
                 rollup_every: float | None = 300.0, tls=None):
        import paho.mqtt.client as mqtt

        self.host, self.port, self.lake, self.registry = host, port, lake, registry
        self.root, self.group, self.client_id = root.strip("/"), group, client_id
        self.batch_size, self.batch_interval = int(batch_size), float(batch_interval)
        self.session_expiry = int(session_expiry)
        self.sender = sender or f"gateway:{client_id}"
        self.registry_refresh = registry_refresh
        self.on_batch = on_batch
        # the hot tier gets one small file per batch and table: merge the older ones now and then
        self.rollup_every = rollup_every
        self._rollup: threading.Thread | None = None
        self._rollup_at = time.monotonic()
        self.stats = GatewayStats()
        self._pending: list = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._devices: dict = {}
        self._sources = None
        self._devices_at = 0.0
        self._lake_quantity: dict[str, str] = {}
        c = self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                      protocol=mqtt.MQTTv5)
        c.username_pw_set(username, password)
        if tls is not None:
            tls.apply(c)
        elif password is None:
            raise ValueError("the gateway needs a password, or TLS with a client certificate")
        c.manual_ack_set(True)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_connect_fail = self._on_connect_fail
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.reconnect_delay_set(0.2, 5)

    # ------------------------------------------------------------------ MQTT callbacks (network thread)
    @property
    def topic(self) -> str:
        t = f"{self.root}/+/telemetry"
        return f"$share/{self.group}/{t}" if self.group else t

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("gateway %s: connection refused: %s", self.client_id, reason_code)
            return
        client.subscribe(self.topic, qos=1)
        log.info("gateway %s connected to %s:%s (session present: %s)", self.client_id, self.host, self.port,
                 flags.session_present)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if any(rc.is_failure for rc in reason_codes):
            log.error("gateway %s: subscription to %s refused: %s", self.client_id, self.topic, reason_codes)
            return
        self._connected.set()
        log.info("gateway %s subscribed to %s", self.client_id, self.topic)

    def _on_connect_fail(self, client, userdata):
        log.warning("gateway %s: cannot reach the broker at %s:%s; retrying", self.client_id, self.host, self.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._connected.clear()
        log.warning("gateway %s disconnected: %s", self.client_id, reason_code)

    def _on_message(self, client, userdata, msg):
        item = (msg.mid, msg.qos, msg.topic, bytes(msg.payload), time.time())
        with self._lock:
            self._pending.append(item)
            n = len(self._pending)
        self.stats.received += 1
        if n >= self.batch_size:
            self._wake.set()

    # ------------------------------------------------------------------ registry
    def _device(self, device_id: str):
        now = time.monotonic()
        if now - self._devices_at > self.registry_refresh:
            from workbench.identifiers.middleware import SourceRegistry

            self._devices = {d.device_id: d for d in self.registry.list()}
            # the identifier middleware carries each device's identifier into the curated readings
            self._sources = SourceRegistry.from_mapping(
                {("meter", d.device_id): d.identifier for d in self._devices.values() if d.identifier})
            meters = self.lake.meters()
            if len(meters):
                from workbench.prepare import normalize_meters

                meters = normalize_meters(meters)
                self._lake_quantity = dict(zip(meters["meter_id"], meters["quantity"]))
            self._devices_at = now
        return self._devices.get(device_id)

    # ------------------------------------------------------------------ batches (main thread)
    def _take(self) -> list:
        with self._lock:
            batch, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size:]
        return batch

    def _routes(self, dev) -> tuple[dict, str | None]:
        """(quantity names, the register's lake name or None) for a device: a lake meter's
        register (its one quantity, or the one named ``register``/``consumption``) goes to the
        readings under the meter's quantity name; every other quantity — and everything of a
        device that is not a lake meter — goes to the telemetry table as measured.  ``None``:
        all of the device's quantities are readings."""
        lake_q = self._lake_quantity.get(dev.device_id)
        if lake_q and len(dev.quantities) == 1:
            return {next(iter(dev.quantities)): lake_q}, None
        register = next((q for q in ("register", "consumption") if q in dev.quantities), None) if lake_q else None
        return ({register: lake_q} if register else {}), (lake_q if register else "")

    def process(self, batch: list) -> dict:
        """Validate and store one batch; returns the ingest report as a dict.  Raises if storing
        failed (then nothing is acknowledged)."""
        from connectors import ConnectorResult

        now_ms = int(time.time() * 1000)
        rows, telemetry, rejected, raw_lines = [], [], [], []
        prefix = f"{self.root}/"
        # each payload decoded on its own (orjson: ~1 µs): a payload can never borrow another's brackets
        loads = orjson.loads
        docs = []
        for b in batch:
            try:
                docs.append(loads(b[3]))
            except orjson.JSONDecodeError:
                docs.append(_UNDECODED)
        b64 = base64.b64encode
        for n, ((mid, qos, topic, payload, arrived), doc) in enumerate(zip(batch, docs, strict=True)):
            raw_lines.append(orjson.dumps({"topic": topic, "mid": mid, "arrived": arrived,
                                           "payload": b64(payload).decode("ascii")}))
            device_id = topic[len(prefix):-len("/telemetry")] if topic.startswith(prefix) else ""
            try:
                dev = self._device(device_id)
                if dev is None:
                    raise TelemetryError(f"unknown device {device_id!r} (not in the device registry)")
                if dev.status != "active":
                    raise TelemetryError(f"device {device_id} is {dev.status}")
                names, register = self._routes(dev)
                got = parse_telemetry(dev, payload if doc is _UNDECODED else doc, now_ms=now_ms,
                                      quantity_names=names, decoded=doc is not _UNDECODED)
                if register is None:
                    rows.extend(got)
                else:
                    for r in got:
                        if r[3] == register:
                            rows.append(r)
                        else:
                            telemetry.append(r + (dev.node_id, n))
            except TelemetryError as exc:
                rejected.append({"row": n, "column": "payload", "reason": f"{topic}: {exc}",
                                 "payload": payload.decode("utf-8", "replace")[:4000]})
        data = pd.DataFrame.from_records(rows, columns=["meter_id", "identifier", "ts", "quantity", "value", "unit"])
        data["ts"] = pd.to_datetime(data["ts"], unit="ms", utc=True)
        meta = {"source": "mqtt", "connector": "mqtt-gateway", "gateway": self.client_id,
                "messages": len(batch)}
        if telemetry:
            tel = pd.DataFrame.from_records(telemetry, columns=["device_id", "identifier", "ts", "quantity", "value",
                                                                "unit", "node_id", "row"])
            tel["ts"] = pd.to_datetime(tel["ts"], unit="ms", utc=True)
            meta["telemetry"] = tel
        if rejected:
            meta["rejected"] = pd.DataFrame(rejected)
        raw = b"\n".join(raw_lines) + b"\n"
        first = min(b[4] for b in batch)
        result = ConnectorResult(data, meta, kind="readings", raw=raw,
                                 raw_name=f"mqtt-{self.client_id}-{first:.6f}.jsonl")
        report = self.lake.ingest(result, sender=self.sender, identifiers=self._sources)
        if report.status == "failed":
            raise RuntimeError(f"ingest failed: {report.message}")
        stored_ms = time.time() * 1000
        oldest = min(([data["ts"].min()] if len(data) else []) + ([tel["ts"].min()] if telemetry else []), default=None)
        self.stats.max_latency_ms = stored_ms - oldest.timestamp() * 1000 if oldest is not None else 0.0
        self.stats.readings += report.rows_curated
        self.stats.duplicates += report.rows_duplicate
        self.stats.quarantined += report.rows_quarantined
        return report.to_dict()

    def _flush(self) -> int:
        batch = self._take()
        if not batch:
            return 0
        try:
            report = self.process(batch)
        except Exception:
            self.stats.failures += 1
            log.exception("gateway %s: storing a batch of %d messages failed; retrying", self.client_id, len(batch))
            with self._lock:
                self._pending[:0] = batch
            time.sleep(min(5.0, 0.5 * self.stats.failures))
            return 0
        for mid, qos, *_ in batch:                      # commit-before-ack
            if qos:
                self.client.ack(mid, qos)
        self.stats.acked += len(batch)
        self.stats.stored_batches += 1
        if self.on_batch is not None:
            self.on_batch(report, self.stats)
        return len(batch)

    def _maybe_rollup(self) -> None:
        if self.rollup_every is None or time.monotonic() - self._rollup_at < self.rollup_every:
            return
        if self._rollup is not None and self._rollup.is_alive():
            return
        self._rollup_at = time.monotonic()

        def work():
            try:
                done = self.lake.rollup()
                if done["groups"]:
                    log.info("gateway %s: hot tier rolled up: %s", self.client_id, done)
            except Exception:                           # the stream goes on; next time again
                log.exception("gateway %s: hot-tier rollup failed", self.client_id)

        self._rollup = threading.Thread(target=work, name="wb-rollup", daemon=True)
        self._rollup.start()

    # ------------------------------------------------------------------ run
    def start(self) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()

    def run(self, stop: threading.Event | None = None, *, max_seconds: float | None = None) -> GatewayStats:
        """Connect and store batches until ``stop`` is set (or ``max_seconds`` pass); then store
        what is pending and disconnect."""
        stop = stop or threading.Event()
        self._device("")                   # registry and meters loaded before the first message
        self.start()
        deadline = time.monotonic() + max_seconds if max_seconds else None
        try:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                self._wake.wait(self.batch_interval)
                self._wake.clear()
                while self._flush() >= self.batch_size:
                    pass
                self._maybe_rollup()
            self._flush()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            if self._rollup is not None:
                self._rollup.join(60)
        return self.stats
