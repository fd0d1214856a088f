"""Modbus TCP poller for meters that do not speak MQTT (pymodbus ≥ 3.6 sync client).

:class:`ModbusPoller` reads, per device (= meter) of a poll map, each quantity's registers and
turns them into ``readings`` rows (see :mod:`connectors.telemetry` for the poll map, the result
shape and the sinks).  Device fields: ``unit_id`` (Modbus device/slave id, 0…247, default 1) and
defaults for the quantities' ``function``, ``word_order``, ``byte_order``.  Quantity fields::

    address      register address (0-based, as in the request), required
    function     holding (FC 3, default) | input (FC 4)
    type         uint16 (default) | int16 | uint32 | int32 | uint64 | int64 | float32 | float64
    word_order   big (default: most significant register first) | little
    byte_order   big (default: most significant byte first within a register) | little
    scale, offset, unit, meter_id   see connectors.telemetry

Decoding is the pure function :func:`decode_registers` on top of pymodbus'
``ModbusTcpClient.convert_from_registers`` (``byte_order="little"`` swaps the two bytes of each
register first; pymodbus itself only knows the word order).

Failures never stop the other devices: an exception response (illegal address …) fails that
quantity; no answer (timeout, gateway exception 0x0A/0x0B) fails the device's remaining
quantities without asking again; a lost or refused connection fails everything not yet read.
Each failure is in ``metadata['errors']`` and ``metadata['rejected']``; the connection is
dropped after a timeout or connection error and re-opened on the next request.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from workbench.core.errors import WorkbenchError

from . import ConnectorResult
from .telemetry import (
    PollMapError,
    build_result,
    choice_field,
    int_field,
    load_poll_map,
    run_poller,
    utc_now_ms,
)

__all__ = ["DATA_TYPES", "ModbusPoller", "PollMapError", "decode_registers", "load_modbus_map", "read", "register_count",
           "scale_value"]

name = "modbus"
log = logging.getLogger("connectors.modbus")

DATA_TYPES = ("uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")
FUNCTIONS = ("holding", "input")
ORDERS = ("big", "little")


def _datatype(data_type: str):
    from pymodbus.client import ModbusTcpClient

    try:
        return ModbusTcpClient.DATATYPE[data_type.upper()]
    except KeyError:
        raise ValueError(f"unknown Modbus data type '{data_type}' (one of {', '.join(DATA_TYPES)})") from None


def register_count(data_type: str) -> int:
    """How many 16-bit registers a value of ``data_type`` occupies."""
    if data_type not in DATA_TYPES:
        raise ValueError(f"unknown Modbus data type '{data_type}' (one of {', '.join(DATA_TYPES)})")
    return _datatype(data_type).value[1]


def decode_registers(registers: Sequence[int], data_type: str, *, word_order: str = "big",
                     byte_order: str = "big") -> int | float:
    """The value held by ``registers`` (16-bit ints as read) — pymodbus' ``convert_from_registers``.

    ``word_order``: ``big`` = most significant register first (Modbus convention), ``little`` =
    least significant first (“word-swapped”, common in meters).  ``byte_order``: ``little`` when
    the device swaps the two bytes inside each register.
    """
    from pymodbus.client import ModbusTcpClient

    n = register_count(data_type)
    regs = [int(r) for r in registers]
    if len(regs) != n:
        raise ValueError(f"{data_type} needs {n} register(s), got {len(regs)}")
    if any(not 0 <= r <= 0xFFFF for r in regs):
        raise ValueError(f"registers must be 0…65535: {regs}")
    if word_order not in ORDERS or byte_order not in ORDERS:
        raise ValueError("word_order and byte_order must be 'big' or 'little'")
    if byte_order == "little":
        regs = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    return ModbusTcpClient.convert_from_registers(regs, _datatype(data_type), word_order=word_order)


def scale_value(raw: float, scale: float = 1.0, offset: float = 0.0) -> float:
    """``raw × scale + offset`` as float (a uint32 energy counter in 0.01 kWh: scale 0.01)."""
    return float(raw) * scale + offset


# ------------------------------------------------------------------------------------ poll map
def _device_fields(device_id: str, raw: dict) -> dict:
    return {
        "unit_id": int_field(raw, "unit_id", 1, 0, 255, device=device_id),
        "function": choice_field(raw, "function", "holding", FUNCTIONS, device=device_id),
        "word_order": choice_field(raw, "word_order", "big", ORDERS, device=device_id),
        "byte_order": choice_field(raw, "byte_order", "big", ORDERS, device=device_id),
    }


def _quantity_fields(device_id: str, q: str, raw: dict, device: dict) -> dict:
    if "address" not in raw:
        raise PollMapError("missing", device=device_id, quantity=q, field="address")
    out = {
        "address": int_field(raw, "address", None, 0, 65535, device=device_id, quantity=q),
        "function": choice_field(raw, "function", device["function"], FUNCTIONS, device=device_id, quantity=q),
        "type": choice_field(raw, "type", "uint16", DATA_TYPES, device=device_id, quantity=q),
        "word_order": choice_field(raw, "word_order", device["word_order"], ORDERS, device=device_id, quantity=q),
        "byte_order": choice_field(raw, "byte_order", device["byte_order"], ORDERS, device=device_id, quantity=q),
    }
    out["count"] = register_count(out["type"])
    if out["address"] + out["count"] - 1 > 65535:
        raise PollMapError("address + register count is past 65535", device=device_id, quantity=q, field="address")
    return out


def load_modbus_map(source) -> dict[str, dict]:
    """Validated Modbus poll map (YAML text/path or dict) → ``{device_id: {unit_id, …, quantities}}``."""
    return load_poll_map(source, device_fields=_device_fields, quantity_fields=_quantity_fields)


# ------------------------------------------------------------------------------------ poller
class _NoAnswer(WorkbenchError):
    """The device did not answer: skip its remaining quantities."""


class _Down(WorkbenchError):
    """The connection is gone: skip everything not yet read."""


class ModbusPoller:
    """Poll Modbus TCP devices (behind one ``host:port``: a meter or a gateway to an RS-485 line).

    ``poll_map``: see module doc (dict, YAML text or path).  ``timeout`` and ``retries`` are per
    request (pymodbus' defaults of 3 s × 3 retries would stall a poll for 12 s per silent device).
    ``client_factory(host, port, timeout, retries)`` builds the pymodbus client (tests, RTU-over-TCP
    framers …).  Use as a context manager or call :meth:`close`.
    """

    def __init__(self, host: str, port: int = 502, poll_map=None, *, source: str = "modbus", timeout: float = 1.0,
                 retries: int = 0, client_factory: Callable[..., Any] | None = None):
        if poll_map is None:
            raise ValueError("poll_map is required")
        self.host, self.port = host, int(port)
        self.devices = load_modbus_map(poll_map)
        self.source, self.timeout, self.retries = source, float(timeout), int(retries)
        self.endpoint = f"modbus-tcp://{host}:{self.port}"
        self._factory = client_factory or self._default_client
        self._client = None

    def __repr__(self) -> str:
        return f"ModbusPoller({self.endpoint!r}, devices={list(self.devices)})"

    @staticmethod
    def _default_client(host, port, timeout, retries):
        from pymodbus.client import ModbusTcpClient

        return ModbusTcpClient(host, port=port, timeout=timeout, retries=retries, reconnect_delay=0)

    # -- connection ---------------------------------------------------------------------------
    def _connected(self):
        if self._client is None:
            self._client = self._factory(self.host, self.port, self.timeout, self.retries)
        if not self._client.connected and not self._client.connect():
            self.close()
            raise _Down(f"cannot connect to {self.host}:{self.port}")
        return self._client

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing a broken socket
                self._client.close()
            self._client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- reading ------------------------------------------------------------------------------
    def _read(self, device: dict, q: dict) -> list[int]:
        from pymodbus.exceptions import ConnectionException, ModbusIOException

        client = self._connected()
        fn = client.read_holding_registers if q["function"] == "holding" else client.read_input_registers
        try:
            rr = fn(q["address"], count=q["count"], device_id=device["unit_id"])
        except ConnectionException as exc:
            self.close()
            raise _Down(f"connection lost: {exc}") from None
        except ModbusIOException as exc:  # no response within timeout (× retries)
            self.close()  # a late answer must not be taken for the next request's
            raise _NoAnswer(f"no response: {exc}") from None
        if rr.isError():
            code = getattr(rr, "exception_code", None)
            if code in (0x0A, 0x0B):
                raise _NoAnswer(f"gateway: device {device['unit_id']} did not respond (exception 0x{code:02X})")
            raise ValueError(f"exception response 0x{code:02X} ({_EXC.get(code, 'unknown')}) "
                             f"for {q['function']} register {q['address']}" if code is not None else str(rr))
        regs = list(rr.registers[: q["count"]])
        if len(regs) != q["count"]:
            raise ValueError(f"short response: {len(regs)} of {q['count']} registers")
        return regs

    def poll_once(self) -> ConnectorResult:
        """Read every device's quantities once → a ``readings`` :class:`ConnectorResult`."""
        polled_at = utc_now_ms()
        rows, errors, raw = [], [], []
        down: str | None = None
        for device_id, device in self.devices.items():
            silent: str | None = None
            for qname, q in device["quantities"].items():
                err = {"device": device_id, "quantity": qname, "meter_id": q["meter_id"], "unit": q["unit"]}
                if down or silent:
                    errors.append({**err, "reason": down or silent})
                    continue
                try:
                    regs = self._read(device, q)
                    value = scale_value(decode_registers(regs, q["type"], word_order=q["word_order"],
                                                         byte_order=q["byte_order"]), q["scale"], q["offset"])
                except _Down as exc:
                    down = f"{exc}"
                    errors.append({**err, "reason": down})
                    continue
                except _NoAnswer as exc:
                    silent = f"unit {device['unit_id']} did not answer: {exc}"
                    errors.append({**err, "reason": silent})
                    continue
                except Exception as exc:  # noqa: BLE001 - an exception response or a bad value
                    errors.append({**err, "reason": f"unit {device['unit_id']}: {exc}"})
                    continue
                raw.append({"device": device_id, "unit_id": device["unit_id"], "quantity": qname,
                            "function": q["function"], "address": q["address"], "registers": regs})
                rows.append({"device": device_id, "meter_id": q["meter_id"], "ts": polled_at, "quantity": qname,
                             "value": value, "unit": q["unit"]})
        return build_result(rows, errors, raw, connector=name, source=self.source, endpoint=self.endpoint,
                            polled_at=polled_at, extra={"connected": down is None})

    def run(self, interval: float, sink: Callable[[ConnectorResult], Any] | None,
            stop_event: threading.Event | None = None, *, max_polls: int | None = None) -> int:
        """``sink(poll_once())`` every ``interval`` s until ``stop_event`` is set (see
        :func:`connectors.telemetry.run_poller`); the connection is closed at the end."""
        try:
            return run_poller(self.poll_once, interval, sink, stop_event, max_polls=max_polls, name=repr(self))
        finally:
            self.close()


_EXC = {1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "device failure",
        5: "acknowledge", 6: "device busy", 8: "memory parity error", 0x0A: "gateway path unavailable",
        0x0B: "gateway target failed to respond"}


def read(host: str, port: int = 502, poll_map=None, **options) -> ConnectorResult:
    """One poll of ``host:port`` (see :class:`ModbusPoller`)."""
    with ModbusPoller(host, port, poll_map, **options) as poller:
        return poller.poll_once()
