"""MQTT → lake gateway (seed §7.2 a, §7.3): telemetry from the broker into the lake, nothing lost,
nothing counted twice, and no message can stop it.

* One persistent MQTT v5 session per gateway process (client id = its broker user,
  ``clean_start=False``, session expiry) with plain QoS 1 subscriptions to ``<root>/+/telemetry``
  (one gateway) or to its partition's ``<root>/<device>/telemetry`` topics.  Messages that arrive
  while the gateway is down wait in its session; the broker keeps sessions and plain
  subscriptions across a clean restart (persistence).  Shared
  subscriptions (``$share/…``) are NOT used: Mosquitto 2.0.11 does not restore them after a restart,
  so messages published before the gateways resubscribe went nowhere (measured: up to 775 of 2,400
  acknowledged readings lost per restart).
* Scale-out: ``partition=(k, n)`` — gateway ``k`` subscribes (in its own persistent session) to
  the telemetry topic of every device whose stable hash (BLAKE2b of the id) is ``k`` modulo ``n``,
  follows the registry as devices come and go, and records its subscriptions in the registry; one
  gateway (``0/1``) holds the wildcard.  The broker's access rules enable a device only once some
  gateway's session covers it (:func:`workbench.devices.access.waiting_devices`), so no message is
  acknowledged for nobody.  A topic a gateway no longer wants (``n`` changed) is dropped only when
  another gateway covers it; until then both store it and the lake drops the duplicates.  A
  gateway that is down delays only its own devices; nothing depends on the broker remembering a
  shared group.
* Acknowledgement is manual (paho ``manual_ack_set(True)``): messages are collected into batches
  (``batch_size`` messages, ``max_batch_bytes`` or ``batch_interval`` seconds) and a batch's
  PUBACKs are sent only after :func:`workbench.ingestion.ingest` has stored it (commit-before-ack),
  and only on the connection the messages came on (a packet id of an earlier connection may name
  another message on this one: those are left to the broker's redelivery).  A gateway killed
  between storing and acknowledging gets the batch again; storage is idempotent on (device, ts,
  quantity), so redelivery never double counts.
* No message can stop the pipeline.  Each message is decoded and validated on its own
  (:func:`decode_payload`, :func:`parse_telemetry`): known, active device; JSON (orjson: at most
  1,024 levels deep, no NaN/Infinity, no number beyond a double) of at most
  :data:`MAX_PAYLOAD_BYTES`; shape ``{"ts": ms, "values": {quantity: number}}`` (optionally
  ``"units": {quantity: unit}`` — converted with pint to the registered unit, another kind of
  unit refused) or a list of those; quantities the device measures; finite, plausible values and
  timestamps.  A message that fails goes to the lake's quarantine with the reason and the raw
  payload — so does one whose checking raised something unforeseen (logged as a gateway bug).  If
  storing a batch fails, the batch is split in halves until the message that makes it fail is
  alone, and that message is quarantined with the failure as its reason; only if even that fails
  (the lake itself is failing) is nothing acknowledged and the batch retried.  The raw zone keeps
  every batch exactly as received (topic, payload, arrival time).
* Each reading carries the device's identifier.  A lake meter's register (its one quantity, or the
  one named ``register``/``consumption``) is curated as that meter's readings under the meter's
  quantity name, so it feeds the accounting like any other source; the device's other quantities
  (power, voltage …) and everything of a device that is no lake meter go to the lake's
  ``telemetry`` table in the registry's units (:meth:`Gateway._routes`).
* Several gateway processes may store at once: the lake ingests one batch at a time and keeps
  register readings that arrive out of order without counting consumption twice (see
  :mod:`workbench.ingestion.pipeline`).  Every ``rollup_every`` seconds a background thread merges the hot
  tier's older per-batch files (:meth:`workbench.lake.store.Lake.rollup`).
"""
from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import itertools
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.ingestion import ingest

__all__ = ["MAX_PAYLOAD_BYTES", "Gateway", "GatewayStats", "TelemetryError", "decode_payload", "owner",
           "parse_broker_url", "parse_partition", "parse_telemetry"]

log = logging.getLogger(__name__)

#: timestamps further in the past / future than this are implausible (device clock wrong)
MAX_AGE_S = 400 * 86400
MAX_AHEAD_S = 300
#: a larger payload is quarantined unread (a meter's message is ~100 bytes; the broker refuses
#: packets over ``max_packet_size`` before they are acknowledged, see workbench.devices.broker)
MAX_PAYLOAD_BYTES = 256 * 1024
#: quarantine reasons are cut here (a reason quotes what it refuses, which may be long)
MAX_REASON_CHARS = 600

_UNDECODED = object()       # orjson refused the payload: decode_payload says why

_NON_JSON_NUMBER = re.compile(rb"(?<![\w\"])(-?Infinity|NaN)(?![\w\"])")


class TelemetryError(WorkbenchError, ValueError):
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


def parse_partition(text: str) -> tuple[int, int]:
    """``"K/N"`` → (k, n) with 0 ≤ k < n: this gateway stores partition ``k`` of ``n``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not 0 <= int(m[1]) < int(m[2]) <= 1024:
        raise ValueError(f"partition {text!r}: expected K/N with 0 ≤ K < N ≤ 1024, e.g. 0/2")
    return int(m[1]), int(m[2])


def owner(device_id: str, n: int) -> int:
    """The partition (0 … n−1) that stores ``device_id``: the first 8 bytes of the BLAKE2b digest
    of its UTF-8 id, modulo ``n`` (stable across processes and Python versions, unlike ``hash``;
    well mixed even for ids that differ in one character)."""
    digest = hashlib.blake2b(device_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def _show(value, limit: int = 80) -> str:
    """``repr`` for a reason text, cut to ``limit`` characters (a huge int has no repr)."""
    try:
        text = repr(value)
    except ValueError:
        text = f"<an integer of {value.bit_length()} bits>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def decode_payload(payload: bytes):
    """The JSON document of a telemetry payload; :class:`TelemetryError` says why there is none.

    orjson parses strictly (RFC 8259, UTF-8): at most 1,024 levels of nesting, no ``NaN`` or
    ``Infinity``, no number that overflows a double (``1e400``), no lone surrogates; a payload
    over :data:`MAX_PAYLOAD_BYTES` is not read at all."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise TelemetryError(f"payload of {len(payload):,} bytes exceeds the gateway's limit of "
                             f"{MAX_PAYLOAD_BYTES:,} bytes")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
    if _NON_JSON_NUMBER.search(payload):
        reason = f"NaN and Infinity are not JSON numbers (send a finite number or omit the quantity); {reason}"
    raise TelemetryError(f"not JSON: {reason}")


def _where(doc, n: int) -> str:
    return f"item {n}" if isinstance(doc, list) else "message"


def _when(ms) -> str:
    try:
        return _dt.datetime.fromtimestamp(ms / 1000, _dt.UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return "outside any calendar"


def _ts_ms(value, where: str, lo_ts: int, hi_ts: int) -> int:
    """Epoch milliseconds of an item's ``ts``, checked (a plausible int is the caller's fast path)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            (isinstance(value, float) and not math.isfinite(value)):
        raise TelemetryError(f"{where}: 'ts' must be epoch milliseconds (a number), not {_show(value)}")
    if 0 < value < 1e11:        # seconds sent where milliseconds are expected: say so, don't guess
        raise TelemetryError(f"{where}: 'ts' {_show(value)} looks like seconds; epoch milliseconds expected")
    if not lo_ts <= value <= hi_ts:
        raise TelemetryError(f"{where}: ts {_show(value)} ({_when(value)}) is implausible (device clock?)")
    return int(value)


def _number(v, q: str, where: str) -> float:
    """A finite float of a JSON value, or :class:`TelemetryError` (bool, text, null, objects,
    NaN, ±inf and integers beyond a double are refused)."""
    if type(v) is float:
        if math.isfinite(v):
            return v
    elif type(v) is int:
        try:
            return float(v)
        except OverflowError:
            pass
    raise TelemetryError(f"{where}: {q} must be a finite number, not {_show(v)}")


def parse_telemetry(device, payload, *, now_ms: int | None = None,
                    quantity_names: Mapping[str, str] | None = None,
                    ranges: Mapping[str, tuple] | None = None, decoded: bool = False) -> list[tuple]:
    """Rows ``(meter_id, identifier, ts ms, quantity, value, unit)`` of one telemetry message.

    ``device`` is a :class:`workbench.devices.registry.Device`; ``payload`` the message's bytes
    (decoded with :func:`decode_payload`) or, with ``decoded``, the decoded JSON document;
    ``quantity_names`` maps the device's quantity keys to the names used in the lake (default:
    unchanged); ``ranges`` ``{quantity: (lo, hi)}`` plausible values (default: the device config's
    ``ranges``, and no negative counters).  Every value is a finite float after conversion to the
    registered unit.  Raises :class:`TelemetryError` with the reason — and nothing else, whatever
    the payload.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    doc = payload if decoded else decode_payload(payload)
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
            raise TelemetryError(f"{_where(doc, n)}: expected {{\"ts\": ms, \"values\": {{quantity: number}}"
                                 f"[, \"units\": {{quantity: unit}}]}}")
        ts, values = item["ts"], item["values"]
        scale = _scales(device, item["units"], _where(doc, n)) if len(item) == 3 else None
        if type(ts) is not int or not (lo_ts <= ts <= hi_ts):        # fast path: a plausible int
            ts = _ts_ms(ts, _where(doc, n), lo_ts, hi_ts)
        if not isinstance(values, dict) or not values:
            raise TelemetryError(f"{_where(doc, n)}: 'values' must be a non-empty object")
        for q, v in values.items():
            if q not in quantities:
                raise TelemetryError(f"{_where(doc, n)}: device {device.device_id} does not measure {_show(q)} "
                                     f"(registered: {sorted(quantities)})")
            if type(v) is not float or not math.isfinite(v):
                v = _number(v, q, _where(doc, n))
            if scale is not None and q in scale:
                v = v * scale[q]
                if not math.isfinite(v):
                    raise TelemetryError(f"{_where(doc, n)}: {q} overflows when converted to {quantities[q]}")
            lo, hi = ranges.get(q, (0.0, None) if q in ("register", "consumption") else (None, None))
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise TelemetryError(f"{_where(doc, n)}: {q} = {v} outside the plausible range [{lo}, {hi}]")
            rows.append((device.device_id, device.identifier, ts, names.get(q, q), v, quantities[q]))
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
            raise TelemetryError(f"{where}: device {device.device_id} does not measure {_show(q)}")
        if not isinstance(unit, str) or len(unit) > 64:
            raise TelemetryError(f"{where}: unit of {q} must be a unit's name (text), not {_show(unit)}")
        try:
            factor = _factor(unit, device.quantities[q])
        except Exception as exc:  # noqa: BLE001 - pint raises many kinds for odd text: all are "unknown unit"
            raise TelemetryError(f"{where}: {q} in {_show(unit)}: {_show(str(exc), 200)}") from None
        if not (math.isfinite(factor) and factor > 0):
            raise TelemetryError(f"{where}: {q} in {_show(unit)}: no usable conversion to {device.quantities[q]}")
        out[q] = factor
    return out


@functools.lru_cache(maxsize=4096)
def _factor(unit: str, registered: str) -> float:
    from workbench.core.units import conversion_factor

    return conversion_factor(unit, registered)


def _combined(reports: list[dict]) -> dict:
    """Totals of a batch's ingest reports (one per enterprise), the reports in ``reports``."""
    out = {k: sum(r[k] for r in reports) for k in ("rows_in", "rows_curated", "rows_duplicate", "rows_quarantined")}
    failed = [r for r in reports if r["status"] == "failed"]
    return {**out, "status": "failed" if failed else "stored", "batch_id": reports[0]["batch_id"] if reports else "",
            "reports": reports}


@dataclass
class GatewayStats:
    received: int = 0
    stored_batches: int = 0
    acked: int = 0
    readings: int = 0
    duplicates: int = 0
    quarantined: int = 0
    failures: int = 0                  # batches whose storing failed as a whole (retried, nothing acked)
    unstorable: int = 0                # messages quarantined because storing them failed (batch split)
    subscriptions: int = 0             # telemetry topics this gateway's session holds ("*" counts 1)
    stale: int = 0                     # messages of an earlier connection, left to the broker's redelivery
    max_latency_ms: float = 0.0        # device ts → stored, oldest reading of the last batch


class Gateway:
    """Subscribe, validate, store in batches, acknowledge after storing (see the module doc).

    ``registry``: a :class:`~workbench.devices.registry.DeviceRegistry`; ``lake``: a
    :class:`~workbench.lake.store.Lake` (its meter registry should hold the devices that are meters).
    ``username``/``password``: the gateway's own broker credentials (a platform user with the
    ``gateway`` role).  ``client_id``: its persistent session's id (the broker sets it to the user
    name anyway).  ``partition`` ``(k, n)``: subscribe to and store the devices of partition ``k``
    of ``n`` (see :func:`owner` and the module doc); every gateway of a deployment uses the same
    ``n``.  ``registry_refresh``: seconds between looks at the registry (new devices, statuses).
    ``tls``: a
    :class:`~workbench.devices.pki.ClientTLS` to connect over TLS — with a client certificate
    (``CN`` = the gateway's user, for the broker's certificate listener) no password is needed.
    """

    def __init__(self, host: str, port: int, lake, registry, *, username: str, password: str | None = None,
                 client_id: str = "wb-gateway-1", root: str = "wb", partition: tuple[int, int] = (0, 1),
                 batch_size: int = 5000, max_batch_bytes: int = 32 * 2 ** 20, batch_interval: float = 0.25,
                 session_expiry: int = 7 * 86400, sender: str | None = None, registry_refresh: float = 5.0,
                 on_batch=None, rollup_every: float | None = 300.0, tls=None):
        import paho.mqtt.client as mqtt

        k, n = partition
        if not 0 <= k < n:
            raise ValueError(f"partition {partition}: expected (k, n) with 0 ≤ k < n")
        self.host, self.port, self.lake, self.registry = host, port, lake, registry
        self.root, self.client_id, self.partition = root.strip("/"), client_id, (int(k), int(n))
        self.batch_size, self.batch_interval = int(batch_size), float(batch_interval)
        self.max_batch_bytes = int(max_batch_bytes)
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
        # connection generation: packet ids are only meaningful on the connection they came on
        self._generation = 0
        self._ack_lock = threading.Lock()
        self._had_session = False
        self.username = username
        # telemetry subscriptions of this gateway's session: device ids, or "*" (all devices)
        self._held: set[str] = set()
        self._need_sync = threading.Event()
        self._sub_done: dict[int, list] = {}
        self._sub_cond = threading.Condition()
        self._failing = 0
        self._bug_logged_at = float("-inf")
        self._devices: dict = {}
        self._sources = None
        # monotonic time of the last look at the registry; -inf: never (time.monotonic() may be
        # smaller than registry_refresh — it counts from boot — so 0.0 would mean "just looked")
        self._devices_at = float("-inf")
        self._lake_quantity: dict[tuple[str, str], str] = {}     # (enterprise, meter) → quantity
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
        c.on_unsubscribe = self._on_subscribe
        c.reconnect_delay_set(0.2, 5)

    # ------------------------------------------------------------------ MQTT callbacks (network thread)
    @property
    def topic(self) -> str:
        """The wildcard telemetry topic (one gateway: ``partition`` 0/1)."""
        return f"{self.root}/+/telemetry"

    def _topic_of(self, device: str) -> str:
        return self.topic if device == "*" else f"{self.root}/{device}/telemetry"

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("gateway %s: connection refused: %s", self.client_id, reason_code)
            return
        if self._had_session and not flags.session_present:
            log.error("gateway %s: the broker no longer had this gateway's session (broker crash without "
                      "persistence, or the session expired): messages published meanwhile are lost", self.client_id)
        self._had_session = True
        log.info("gateway %s connected to %s:%s (session present: %s)", self.client_id, self.host, self.port,
                 flags.session_present)
        self._need_sync.set()                  # (re)subscribe from the main thread
        self._wake.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        """SUBACK and UNSUBACK: the reason code of each topic, handed to the waiting main thread."""
        with self._sub_cond:
            self._sub_done[mid] = list(reason_codes) if isinstance(reason_codes, list) else [reason_codes]
            self._sub_cond.notify_all()

    def _on_connect_fail(self, client, userdata):
        log.warning("gateway %s: cannot reach the broker at %s:%s; retrying", self.client_id, self.host, self.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        with self._ack_lock:                   # from now on nothing received so far is acknowledged
            self._generation += 1
        self._connected.clear()
        log.warning("gateway %s disconnected: %s", self.client_id, reason_code)

    def _on_message(self, client, userdata, msg):
        # every message is stored: the gateway receives only what its subscriptions cover
        self.stats.received += 1
        item = (msg.mid, msg.qos, msg.topic, bytes(msg.payload), time.time(), self._generation)
        with self._lock:
            self._pending.append(item)
            n = len(self._pending)
        if n >= self.batch_size:
            self._wake.set()

    # ------------------------------------------------------------------ subscriptions (main thread)
    def _wanted(self) -> set[str]:
        """The telemetry topics this gateway should hold: ``{"*"}`` alone (partition 0/1), else
        every device (not retired, not a platform user) whose :func:`owner` is this partition."""
        k, n = self.partition
        if n == 1:
            return {"*"}
        return {d.device_id for d in self._devices.values()
                if not d.is_platform and d.status != "retired" and owner(d.device_id, n) == k}

    def _request(self, unsubscribe: bool, devices: list[str], timeout: float = 10.0) -> list[str]:
        """(Un)subscribe ``devices`` in chunks of 1,000 topics; returns those the broker confirmed."""
        done = []
        for k in range(0, len(devices), 1000):
            chunk = devices[k:k + 1000]
            topics = [self._topic_of(d) for d in chunk]
            if unsubscribe:
                rc, mid = self.client.unsubscribe(topics)
            else:
                rc, mid = self.client.subscribe([(t, 1) for t in topics])
            if rc != 0:
                return done                    # not connected: the next connect syncs again
            with self._sub_cond:
                if not self._sub_cond.wait_for(lambda mid=mid: mid in self._sub_done, timeout):
                    return done
                codes = self._sub_done.pop(mid)
            for d, code in zip(chunk, codes + [None] * (len(chunk) - len(codes)), strict=True):
                if code is not None and not code.is_failure:
                    done.append(d)
                else:
                    log.error("gateway %s: %s %s refused: %s", self.client_id,
                              "unsubscribing from" if unsubscribe else "subscription to", self._topic_of(d), code)
        return done

    def _sync_subscriptions(self) -> None:
        """Make the session hold :meth:`_wanted` — new topics first; a topic it no longer wants is
        dropped only when another gateway's session covers it (else it is kept, and its messages
        stored here too: duplicates are dropped by the lake) — and record the result in the
        registry, which the broker's access rules wait for (:func:`~workbench.devices.access.waiting_devices`)."""
        self._need_sync.clear()
        wanted = self._wanted()
        # after a (re)connect everything wanted is subscribed again: cheap, and right even if the
        # broker lost the session
        added = self._request(False, sorted(wanted))      # what is missing is tried at the next refresh
        held = (self._held | set(added))
        extra = held - wanted
        if extra:
            others = set().union(*[v for g, v in self.registry.subscriptions_of().items() if g != self.username])
            if "*" in others:
                droppable = sorted(extra)
            elif "*" in extra:
                devices = {d.device_id for d in self._devices.values() if not d.is_platform and d.status != "retired"}
                droppable = sorted((extra - {"*"}) & others) + (["*"] if devices - wanted <= others else [])
            else:
                droppable = sorted(extra & others)
            if len(droppable) < len(extra):
                log.info("gateway %s: keeping %d subscriptions of other partitions until their gateways "
                         "subscribe", self.client_id, len(extra) - len(droppable))
            held -= set(self._request(True, droppable))
        self._held = held
        self.registry.set_subscriptions(self.username, held, partition=f"{self.partition[0]}/{self.partition[1]}")
        self.stats.subscriptions = len(held)
        if len(added) == len(wanted):
            self._connected.set()
            log.info("gateway %s subscribed to %s (partition %d/%d, %d topics)", self.client_id,
                     self.topic if held == {"*"} else f"{len(held)} devices' telemetry", *self.partition, len(held))

    # ------------------------------------------------------------------ registry
    def _refresh(self) -> None:
        """Reload the device registry and the lake's meters every ``registry_refresh`` seconds (a
        failure here is the platform's, not a message's: the batch is retried)."""
        now = time.monotonic()
        if now - self._devices_at <= self.registry_refresh:
            return
        from workbench.identifiers.middleware import SourceRegistry

        devices = {d.device_id: d for d in self.registry.list()}
        if self.partition[1] > 1 and {k for k, d in devices.items() if d.status != "retired"} != \
                {k for k, d in self._devices.items() if d.status != "retired"}:
            self._need_sync.set()              # devices came or went: subscriptions follow
        self._devices = devices
        if self._held ^ self._wanted():
            self._need_sync.set()              # topics missing, or kept for another partition: covered yet?
        # per enterprise (the device's link; "": the lake root's own): the identifier middleware
        # carries each meter's identifier into the curated readings, and the enterprise lake's
        # meters say which quantity a device's register is
        from workbench.core.meters import normalize_meters

        sources, quantity = {}, {}
        for e in sorted({d.enterprise_id for d in devices.values()}):
            sources[e] = SourceRegistry.from_mapping(
                {("meter", d.meter_id): d.identifier for d in devices.values()
                 if d.enterprise_id == e and d.identifier and d.meter_id})
            meters = self.lake.for_enterprise(e or None).meters()
            if len(meters):
                meters = normalize_meters(meters)
                quantity.update({(e, m): q for m, q in zip(meters["meter_id"], meters["quantity"])})
        self._sources, self._lake_quantity = sources, quantity
        self._devices_at = now

    def reload_registry(self) -> None:
        """Look at the registry again at the next round (a device was just added or changed), not
        only after ``registry_refresh`` seconds; safe to call from any thread."""
        self._devices_at = float("-inf")

    def _device(self, device_id: str):
        self._refresh()
        return self._devices.get(device_id)

    # ------------------------------------------------------------------ batches (main thread)
    def _take(self) -> list:
        """The next batch: at most ``batch_size`` messages and ``max_batch_bytes`` of payload (at
        least one message); messages of an earlier connection are dropped (redelivered anyway)."""
        with self._lock:
            pending, gen = self._pending, self._generation
            size = n = 0
            limit = min(len(pending), self.batch_size)
            while n < limit and (n == 0 or size + len(pending[n][3]) <= self.max_batch_bytes):
                size += len(pending[n][3])
                n += 1
            batch, self._pending = pending[:n], pending[n:]
        fresh = [b for b in batch if b[5] == gen]
        self.stats.stale += len(batch) - len(fresh)
        return fresh

    def _routes(self, dev) -> tuple[dict, str | None]:
        """(quantity names, the register's lake name or None) for a device: a lake meter's
        register (its one quantity, or the one named ``register``/``consumption``) goes to the
        readings under the meter's quantity name; every other quantity — and everything of a
        device that is not a lake meter — goes to the telemetry table as measured.  ``None``:
        all of the device's quantities are readings."""
        lake_q = self._lake_quantity.get((dev.enterprise_id, dev.meter_id)) if dev.meter_id else None
        if lake_q and len(dev.quantities) == 1:
            return {next(iter(dev.quantities)): lake_q}, None
        register = next((q for q in ("register", "consumption") if q in dev.quantities), None) if lake_q else None
        return ({register: lake_q} if register else {}), (lake_q if register else "")

    def _enterprise_of(self, topic: str) -> str:
        """The enterprise a message belongs to (its device's link; "" for the root's own lake,
        also for an unknown device, whose message is quarantined there)."""
        prefix = f"{self.root}/"
        device_id = topic[len(prefix):-len("/telemetry")] if topic.startswith(prefix) else ""
        dev = self._devices.get(device_id)
        return dev.enterprise_id if dev is not None else ""

    def _message_rows(self, topic: str, payload: bytes, doc, now_ms: int, n: int) -> tuple[list, list]:
        """(reading rows, telemetry rows) of one message; :class:`TelemetryError` if it cannot be
        stored.  Reading rows are keyed by the device's ``meter_id`` link (telemetry by the device)."""
        if doc is _UNDECODED:
            doc = decode_payload(payload)
        prefix = f"{self.root}/"
        device_id = topic[len(prefix):-len("/telemetry")] if topic.startswith(prefix) else ""
        dev = self._devices.get(device_id)
        if dev is None:
            raise TelemetryError(f"unknown device {_show(device_id)} (not in the device registry)")
        if dev.status != "active":
            raise TelemetryError(f"device {device_id} is {dev.status}")
        names, register = self._routes(dev)
        got = parse_telemetry(dev, doc, now_ms=now_ms, quantity_names=names, decoded=True)
        if register is None:
            return [(dev.meter_id, *r[1:]) for r in got], []
        rows, telemetry = [], []
        for r in got:
            if r[3] == register:
                rows.append((dev.meter_id, *r[1:]))
            else:
                telemetry.append(r + (dev.node_id, n))
        return rows, telemetry

    def _unreadable(self, topic: str, exc: Exception) -> str:
        """The quarantine reason of a message whose checking raised something unforeseen — a gateway
        bug, logged (at most every 10 s) so that it is fixed; the message itself is kept."""
        if time.monotonic() - self._bug_logged_at > 10:
            self._bug_logged_at = time.monotonic()
            log.error("gateway %s: checking a message on %s raised %s (quarantined; please report)",
                      self.client_id, topic, type(exc).__name__, exc_info=exc)
        return f"unreadable: {type(exc).__name__}: {exc}"

    def _result(self, batch: list, rows: list, telemetry: list, rejected: list):
        """The :class:`connectors.ConnectorResult` of a batch: readings, telemetry, rejected
        messages and the raw bytes (every message as received)."""
        from workbench.core.results import ConnectorResult

        b64 = base64.b64encode
        raw = b"".join(orjson.dumps({"topic": topic, "mid": mid, "arrived": arrived,
                                     "payload": b64(payload).decode("ascii")}) + b"\n"
                       for mid, _qos, topic, payload, arrived, _gen in batch)
        data = pd.DataFrame.from_records(rows, columns=["meter_id", "identifier", "ts", "quantity", "value", "unit"])
        data["ts"] = pd.to_datetime(data["ts"], unit="ms", utc=True)
        meta = {"source": "mqtt", "connector": "mqtt-gateway", "gateway": self.client_id, "messages": len(batch)}
        if telemetry:
            tel = pd.DataFrame.from_records(telemetry, columns=["device_id", "identifier", "ts", "quantity", "value",
                                                                "unit", "node_id", "row"])
            tel["ts"] = pd.to_datetime(tel["ts"], unit="ms", utc=True)
            meta["telemetry"] = tel
        if rejected:
            meta["rejected"] = pd.DataFrame(rejected)
        first = min(b[4] for b in batch)
        return ConnectorResult(data, meta, kind="readings", raw=raw,
                               raw_name=f"mqtt-{self.client_id}-{first:.6f}.jsonl")

    def _ingest(self, result, enterprise: str) -> dict:
        report = ingest(self.lake, result, sender=self.sender, identifiers=self._sources.get(enterprise),
                                  enterprise=enterprise or None)
        if report.status == "failed":
            raise RuntimeError(f"ingest failed: {report.message}")
        self.stats.readings += report.rows_curated
        self.stats.duplicates += report.rows_duplicate
        self.stats.quarantined += report.rows_quarantined
        return {**report.to_dict(), "enterprise": enterprise}

    def process(self, batch: list, *, refresh: bool = True) -> dict:
        """Validate and store one batch — each enterprise's messages into its own lake; returns
        the totals (``rows_curated``, ``rows_duplicate``, ``rows_quarantined``, ``status``) with
        the ingest report of each enterprise in ``reports``.  A message that cannot be stored is
        quarantined with its reason; raises if storing failed (then nothing is acknowledged).
        ``refresh``: follow the registry first."""
        if refresh:
            self._refresh()
        now_ms = int(time.time() * 1000)
        groups: dict[str, tuple[list, list, list, list]] = {}    # enterprise → items, rows, telemetry, rejected
        loads = orjson.loads
        for item in batch:
            _mid, _qos, topic, payload, _arrived, _gen = item
            items, rows, telemetry, rejected = groups.setdefault(self._enterprise_of(topic), ([], [], [], []))
            n = len(items)                       # the message's line in its enterprise's raw file
            items.append(item)
            try:
                try:                            # each payload decoded on its own: no borrowed brackets
                    doc = loads(payload) if len(payload) <= MAX_PAYLOAD_BYTES else _UNDECODED
                except orjson.JSONDecodeError:
                    doc = _UNDECODED
                got, tel = self._message_rows(topic, payload, doc, now_ms, n)
                rows.extend(got)
                telemetry.extend(tel)
            except Exception as exc:  # noqa: BLE001 - a message never fails its batch
                reason = str(exc) if isinstance(exc, TelemetryError) else self._unreadable(topic, exc)
                rejected.append({"row": n, "column": "payload", "reason": f"{topic}: {reason}"[:MAX_REASON_CHARS],
                                 "payload": payload[:4000].decode("utf-8", "replace")})
        reports = [self._ingest(self._result(items, rows, telemetry, rejected), e)
                   for e, (items, rows, telemetry, rejected) in sorted(groups.items())]
        oldest = min(itertools.chain.from_iterable(
            itertools.chain((r[2] for r in g[1]), (r[2] for r in g[2])) for g in groups.values()), default=None)
        self.stats.max_latency_ms = time.time() * 1000 - oldest if oldest is not None else 0.0
        return _combined(reports)

    def _store(self, batch: list, *, again: bool = True) -> list[dict]:
        return [r for summary in self._store_summaries(batch, again=again) for r in summary["reports"]]

    def _store_summaries(self, batch: list, *, again: bool = True) -> list[dict]:
        """Store ``batch`` (once more after a short pause if it fails: a passing fault is not a
        message's); if it still fails, split it in halves until the message that makes it fail is
        alone, and quarantine that message with the failure as its reason.  Raises only if the
        quarantine write fails too (the lake itself is failing: nothing may be acknowledged)."""
        try:
            return [self.process(batch, refresh=False)]
        except Exception as exc:  # noqa: BLE001 - which message (if any) is at fault is found below
            if again:
                log.warning("gateway %s: storing %d messages failed (%s: %s); trying once more", self.client_id,
                            len(batch), type(exc).__name__, exc)
                time.sleep(0.2)
                return self._store_summaries(batch, again=False)
            if len(batch) > 1:
                half = len(batch) // 2
                return self._store_summaries(batch[:half], again=False) + \
                    self._store_summaries(batch[half:], again=False)
            return [_combined([self._quarantine_unstorable(batch[0], exc)])]

    def _quarantine_unstorable(self, item, exc: Exception) -> dict:
        _mid, _qos, topic, payload, _arrived, _gen = item
        log.error("gateway %s: a message on %s cannot be stored (%s: %s); quarantined", self.client_id, topic,
                  type(exc).__name__, exc)
        reason = f"{topic}: storing failed: {type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]
        report = self._ingest(self._result([item], [], [], [
            {"row": 0, "column": "payload", "reason": reason, "payload": payload[:4000].decode("utf-8", "replace")}]),
            self._enterprise_of(topic))
        self.stats.unstorable += 1
        return report

    def _ack(self, batch: list) -> int:
        """PUBACK the batch's messages that came on the current connection (commit-before-ack)."""
        acked = 0
        with self._ack_lock:
            gen = self._generation
            for mid, qos, *_, g in batch:
                if g != gen:
                    continue
                if qos:
                    self.client.ack(mid, qos)
                acked += 1
        self.stats.stale += len(batch) - acked
        self.stats.acked += acked
        return acked

    def _flush(self) -> int:
        batch = self._take()
        if not batch:
            return 0
        try:
            self._refresh()                    # a registry failure is the platform's, not a message's
            reports = self._store(batch)
        except Exception:  # the lake is failing: keep the messages, retry with back-off
            self.stats.failures += 1
            self._failing += 1
            log.exception("gateway %s: storing a batch of %d messages failed; retrying (nothing acknowledged)",
                          self.client_id, len(batch))
            with self._lock:
                self._pending[:0] = batch
            time.sleep(min(30.0, 0.5 * 2 ** min(self._failing, 6)))
            return 0
        self._failing = 0
        self._ack(batch)
        self.stats.stored_batches += 1
        if self.on_batch is not None:
            for report in reports:
                self.on_batch(report, self.stats)
        return len(batch)

    def _maintain(self) -> None:
        """Follow the registry (every ``registry_refresh`` s) and keep the subscriptions in line;
        a failure (registry unreachable) is logged and tried again next round."""
        try:
            self._refresh()
            if self._need_sync.is_set() and self.client.is_connected():
                self._sync_subscriptions()
        except Exception:  # the stream goes on with what is known; next round again
            log.exception("gateway %s: following the device registry failed", self.client_id)

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
        # what this gateway's session held when it last ran (kept by the broker with the session)
        self._held = self.registry.subscriptions_of(self.username).get(self.username, set())
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
        self._refresh()                    # registry and meters loaded before the first message
        self.start()
        deadline = time.monotonic() + max_seconds if max_seconds else None
        try:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                self._wake.wait(self.batch_interval)
                self._wake.clear()
                while self._flush() >= self.batch_size:
                    pass
                self._maintain()
                self._maybe_rollup()
            self._flush()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            if self._rollup is not None:
                self._rollup.join(60)
        return self.stats
