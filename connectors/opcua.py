"""OPC UA poller for meters that do not speak MQTT (asyncua ≥ 1.1 client).

:class:`OpcUaPoller` reads the Value attribute of every quantity's node in one Read service call
and turns the values into ``readings`` rows (see :mod:`connectors.telemetry` for the poll map, the
result shape and the sinks).  Quantity fields::

    node_id      e.g. "ns=2;s=M0001.energy" (any NodeId string asyncua parses), required
    unit         optional: when missing, the node's ``EngineeringUnits`` property (EUInformation,
                 its DisplayName, e.g. "kWh" or UNECE "kW·h") is read once per connection
    scale, offset, meter_id   see connectors.telemetry

``ts`` is the value's SourceTimestamp (UTC) when the server sends one, else the poll time.  A
node with a non-good status, a non-numeric value or no usable unit fails that quantity only;
a connection that cannot be opened or breaks fails everything not yet read, and is re-opened on
the next poll.  Failures are in ``metadata['errors']`` and ``metadata['rejected']``.

The poller is asyncio inside: :meth:`OpcUaPoller.poll_async` runs in the caller's event loop;
:meth:`OpcUaPoller.poll_once` (sync) runs it in a private event-loop thread.  Use one or the
other with a given poller, not both (the client belongs to the loop it was opened in).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from . import ConnectorResult
from .telemetry import (
    PollMapError,
    as_utc,
    build_result,
    load_poll_map,
    run_poller,
    utc_now_ms,
)

__all__ = ["OpcUaPoller", "PollMapError", "load_opcua_map", "read", "unit_from_eu"]

name = "opcua"
log = logging.getLogger("connectors.opcua")


def _quantity_fields(device_id: str, q: str, raw: dict, device: dict) -> dict:
    from asyncua import ua

    node_id = raw.get("node_id")
    if not node_id or not isinstance(node_id, str):
        raise PollMapError("missing (a NodeId string such as 'ns=2;s=M0001.energy')", device=device_id,
                           quantity=q, field="node_id")
    try:
        ua.NodeId.from_string(node_id)
    except Exception as exc:  # noqa: BLE001 - asyncua raises UaStringParsingError and others
        raise PollMapError(f"not a NodeId: {node_id!r} ({exc})", device=device_id, quantity=q, field="node_id") from None
    return {"node_id": node_id}


def load_opcua_map(source) -> dict[str, dict]:
    """Validated OPC UA poll map (YAML text/path or dict) → ``{device_id: {quantities: {q: {node_id, unit…}}}}``."""
    return load_poll_map(source, quantity_fields=_quantity_fields, unit_required=False)


def unit_from_eu(eu) -> str | None:
    """The unit text of an ``EUInformation`` (its DisplayName) when pint understands it, else None."""
    from workbench.core.units import UnitError, parse_unit

    text = getattr(getattr(eu, "DisplayName", None), "Text", None)
    if not text:
        return None
    try:
        parse_unit(text)
    except UnitError:
        return None
    return text


class _ThreadLoop:
    """An event loop in a daemon thread, for the sync API."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="opcua-poller", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


class OpcUaPoller:
    """Poll variables of one OPC UA server.

    ``endpoint``: ``opc.tcp://host:port/path``.  ``timeout``: per request (s).  ``username`` /
    ``password`` when the server asks for them.  ``client_factory(endpoint, timeout)`` builds the
    :class:`asyncua.Client` (security policies, certificates — the caller's business).
    """

    def __init__(self, endpoint: str, poll_map=None, *, source: str = "opcua", timeout: float = 2.0,
                 username: str | None = None, password: str | None = None,
                 client_factory: Callable[..., Any] | None = None):
        if poll_map is None:
            raise ValueError("poll_map is required")
        self.endpoint = endpoint
        self.devices = load_opcua_map(poll_map)
        self.source, self.timeout = source, float(timeout)
        self.username, self.password = username, password
        self._factory = client_factory
        self._client = None
        self._units: dict[tuple[str, str], tuple[str | None, str | None]] = {}  # (device, q) → (unit, problem)
        self._tl: _ThreadLoop | None = None

    def __repr__(self) -> str:
        return f"OpcUaPoller({self.endpoint!r}, devices={list(self.devices)})"

    # -- connection ---------------------------------------------------------------------------
    async def _connected(self):
        if self._client is not None:
            return self._client
        from asyncua import Client

        client = self._factory(self.endpoint, self.timeout) if self._factory else Client(self.endpoint, timeout=self.timeout)
        if self.username is not None:
            client.set_user(self.username)
        if self.password is not None:
            client.set_password(self.password)
        await asyncio.wait_for(client.connect(), timeout=self.timeout * 2)
        self._client = client
        self._units.clear()
        return client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        self._units.clear()
        if client is not None:
            with contextlib.suppress(Exception):  # a dead connection cannot be closed cleanly
                await asyncio.wait_for(client.disconnect(), timeout=self.timeout)

    def close(self) -> None:
        if self._tl is not None:
            try:
                self._tl.run(self.aclose(), timeout=self.timeout * 2 + 1)
            finally:
                self._tl.stop()
                self._tl = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()

    async def _unit(self, client, device_id: str, qname: str, q: dict) -> tuple[str | None, str | None]:
        """(unit, problem) of a quantity: the map's unit, else the node's EngineeringUnits (cached)."""
        if q["unit"]:
            return q["unit"], None
        key = (device_id, qname)
        if key not in self._units:
            from asyncua import ua

            try:
                prop = await client.get_node(q["node_id"]).get_child("0:EngineeringUnits")
                eu = await prop.read_value()
            except ua.UaStatusCodeError as exc:  # BadNoMatch: no such property
                problem = (f"no unit in the poll map and no EngineeringUnits property on "
                           f"{q['node_id']} ({type(exc).__name__})")
                self._units[key] = (None, problem)
            else:
                unit = unit_from_eu(eu)
                text = getattr(getattr(eu, "DisplayName", None), "Text", None)
                self._units[key] = (unit, None) if unit else (
                    None, f"EngineeringUnits of {q['node_id']} is not a known unit: {text!r}")
        return self._units[key]

    # -- reading ------------------------------------------------------------------------------
    async def poll_async(self) -> ConnectorResult:
        """Read every quantity once → a ``readings`` :class:`ConnectorResult` (in the running loop)."""
        polled_at = utc_now_ms()
        items = [(d, qn, q) for d, dev in self.devices.items() for qn, q in dev["quantities"].items()]
        rows, errors, raw = [], [], []

        def fail(d, qn, q, reason, unit=None):
            errors.append({"device": d, "quantity": qn, "meter_id": q["meter_id"], "unit": unit or q["unit"],
                           "reason": reason})

        try:
            client = await self._connected()
            units = [await self._unit(client, d, qn, q) for d, qn, q in items]
            values = await asyncio.wait_for(
                client.read_attributes([client.get_node(q["node_id"]) for _, _, q in items]), timeout=self.timeout * 2)
        except Exception as exc:  # noqa: BLE001 - connection refused/lost, timeout, session errors
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            await self.aclose()
            for d, qn, q in items:
                fail(d, qn, q, f"cannot read from {self.endpoint}: {reason}")
            return build_result(rows, errors, raw, connector=name, source=self.source, endpoint=self.endpoint,
                                polled_at=polled_at, extra={"connected": False})
        for (d, qn, q), (unit, problem), dv in zip(items, units, values):
            status = dv.StatusCode
            src = dv.SourceTimestamp
            v = dv.Value.Value if dv.Value is not None else None
            raw.append({"device": d, "quantity": qn, "node_id": q["node_id"], "value": v,
                        "status": status.name if status is not None else None,
                        "source_ts": src.isoformat() if isinstance(src, _dt.datetime) else None,
                        "server_ts": dv.ServerTimestamp.isoformat() if isinstance(dv.ServerTimestamp, _dt.datetime) else None})
            if status is not None and not status.is_good():
                fail(d, qn, q, f"{q['node_id']}: status {status.name}", unit)
                continue
            if problem:
                fail(d, qn, q, problem)
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                fail(d, qn, q, f"{q['node_id']}: not a number: {v!r}", unit)
                continue
            ts = as_utc(src) if isinstance(src, _dt.datetime) and src.year > 1601 else polled_at
            rows.append({"device": d, "meter_id": q["meter_id"], "ts": ts, "quantity": qn,
                         "value": float(v) * q["scale"] + q["offset"], "unit": unit})
        return build_result(rows, errors, raw, connector=name, source=self.source, endpoint=self.endpoint,
                            polled_at=polled_at, extra={"connected": True})

    def poll_once(self) -> ConnectorResult:
        """:meth:`poll_async` from synchronous code (a private event-loop thread keeps the session)."""
        if self._tl is None:
            self._tl = _ThreadLoop()
        return self._tl.run(self.poll_async())

    def run(self, interval: float, sink: Callable[[ConnectorResult], Any] | None,
            stop_event: threading.Event | None = None, *, max_polls: int | None = None) -> int:
        """``sink(poll_once())`` every ``interval`` s until ``stop_event`` is set (see
        :func:`connectors.telemetry.run_poller`); the session is closed at the end."""
        try:
            return run_poller(self.poll_once, interval, sink, stop_event, max_polls=max_polls, name=repr(self))
        finally:
            self.close()


def read(endpoint: str, poll_map=None, **options) -> ConnectorResult:
    """One poll of ``endpoint`` (see :class:`OpcUaPoller`)."""
    with OpcUaPoller(endpoint, poll_map, **options) as poller:
        return poller.poll_once()
