"""Modbus TCP poller against pymodbus' own server (SimDevice/SimData datastore, pymodbus 3.16):
register decoding, poll map validation, absent and silent devices, a server that goes away and
comes back, the MQTT telemetry sink (fake client) and the lake sink."""
from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
import time

import pandas as pd
import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from connectors import ConnectorResult
from connectors.modbus import (
    ModbusPoller,
    PollMapError,
    decode_registers,
    load_modbus_map,
    register_count,
    scale_value,
)
from connectors.telemetry import LakeSink, MqttSink, to_telemetry_payloads
from workbench.ingestion import ingest
from workbench.lake.store import Lake

DT = ModbusTcpClient.DATATYPE


def regs(value, dtype, word_order="big"):
    return ModbusTcpClient.convert_to_registers(value, DT[dtype.upper()], word_order=word_order)


# ------------------------------------------------------------------------------ pure decoding
def test_float32_in_both_word_orders():
    assert regs(12.5, "float32") == [0x4148, 0x0000]
    assert decode_registers([0x4148, 0x0000], "float32") == 12.5
    assert decode_registers([0x0000, 0x4148], "float32", word_order="little") == 12.5
    assert decode_registers([0x0000, 0x4148], "float32") != 12.5


def test_byte_swapped_registers():
    assert decode_registers([0x4841, 0x0000], "float32", byte_order="little") == 12.5
    assert decode_registers([0x0000, 0x4841], "float32", word_order="little", byte_order="little") == 12.5
    assert decode_registers([0x3412], "uint16", byte_order="little") == 0x1234


def test_int32_negative_and_int16():
    assert decode_registers([0xFFFF, 0xFFD6], "int32") == -42
    assert decode_registers([0xFFD6, 0xFFFF], "int32", word_order="little") == -42
    assert decode_registers([0xFFD6, 0xFFFF], "uint32", word_order="little") == 0xFFFFFFD6
    assert decode_registers([0xFFFB], "int16") == -5


def test_uint32_counter_with_scaling():
    # 4,000,000.00 kWh on a counter in 0.01 kWh: more than 16 bits, exact
    r = regs(400_000_000, "uint32")
    assert r == [0x17D7, 0x8400]
    assert scale_value(decode_registers(r, "uint32"), 0.01) == pytest.approx(4_000_000.0)
    assert scale_value(decode_registers([0xFFFF, 0xFFFF], "uint32"), 1) == 4294967295.0
    assert scale_value(decode_registers([0xFFFB], "int16"), 0.1, 20.0) == pytest.approx(19.5)


def test_float64_and_register_counts():
    assert decode_registers(regs(98765.4321, "float64"), "float64") == 98765.4321
    assert [register_count(t) for t in ("uint16", "int32", "float32", "float64")] == [1, 2, 2, 4]
    with pytest.raises(ValueError, match="needs 2 register"):
        decode_registers([1], "float32")
    with pytest.raises(ValueError, match="0…65535"):
        decode_registers([70000], "uint16")


# ------------------------------------------------------------------------------ poll map
def test_poll_map_yaml_and_defaults():
    m = load_modbus_map("""
devices:
  - device_id: M0001
    unit_id: 3
    word_order: little
    quantities:
      active_energy: {address: 10, type: uint32, scale: 0.01, unit: kWh}
      active_power: {address: 12, type: float32, word_order: big, unit: kW, function: input, meter_id: M0001.P}
""")
    q = m["M0001"]["quantities"]
    assert m["M0001"]["unit_id"] == 3
    assert q["active_energy"] == {"address": 10, "function": "holding", "type": "uint32", "word_order": "little",
                                  "byte_order": "big", "count": 2, "unit": "kWh", "scale": 0.01, "offset": 0.0,
                                  "meter_id": "M0001"}
    assert q["active_power"]["function"] == "input" and q["active_power"]["word_order"] == "big"
    assert q["active_power"]["meter_id"] == "M0001.P"


@pytest.mark.parametrize("quantity, field, message", [
    ({"type": "uint32", "unit": "kWh"}, "address", "missing"),
    ({"address": 0, "type": "float16", "unit": "kWh"}, "type", "must be one of"),
    ({"address": 0, "unit": "zorkmid"}, "unit", "unknown unit"),
    ({"address": 0}, "unit", "missing"),
    ({"address": 0, "unit": "kWh", "function": "coil"}, "function", "must be one of"),
    ({"address": 0, "unit": "kWh", "scale": "x"}, "scale", "finite number"),
    ({"address": 70000, "unit": "kWh"}, "address", "integer"),
])
def test_poll_map_errors_name_device_and_field(quantity, field, message):
    with pytest.raises(PollMapError, match=message) as exc:
        load_modbus_map({"devices": {"M0007": {"quantities": {"energy": quantity}}}})
    assert "device 'M0007'" in str(exc.value) and f"field '{field}'" in str(exc.value)
    assert exc.value.device == "M0007" and exc.value.field == field


def test_poll_map_device_errors():
    with pytest.raises(PollMapError, match="device 'M1'.*field 'unit_id'"):
        load_modbus_map({"devices": {"M1": {"unit_id": 300, "quantities": {"e": {"address": 0, "unit": "kWh"}}}}})
    with pytest.raises(PollMapError, match="device 'M1'.*field 'quantities'"):
        load_modbus_map({"devices": {"M1": {"unit_id": 1}}})
    with pytest.raises(PollMapError, match="device_id"):
        load_modbus_map({"devices": [{"unit_id": 1}]})


# ------------------------------------------------------------------------------ a real server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """pymodbus' async TCP server in an event loop of its own thread (start/stop/restart)."""

    def __init__(self, devices, port=None, **options):
        self.devices, self.options = devices, options
        self.port = port or free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = None

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self):
        async def go():
            server = ModbusTcpServer(self.devices, address=("127.0.0.1", self.port), **self.options)
            await server.serve_forever(background=True)
            return server
        self.server = self._run(go())
        return self

    def stop(self):
        if self.server is not None:
            self._run(self.server.shutdown())
            self.server = None

    def close(self):
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def bits():
    return [SimData(0, values=False, datatype=DataType.BITS)]


def two_devices():
    """unit 1: energy uint32 (0.01 kWh) at HR 0, power float32 word-swapped at HR 2, temperature
    int16 (0.1 °C) at IR 0; unit 2: energy float64 at HR 100, net energy int32 at IR 10."""
    d1 = SimDevice(1, simdata=(bits(), bits(),
                               [SimData(0, values=regs(123456, "uint32") + regs(12.5, "float32", "little"),
                                        datatype=DataType.REGISTERS)],
                               [SimData(0, values=regs(-215, "int16"), datatype=DataType.REGISTERS)]))
    d2 = SimDevice(2, simdata=(bits(), bits(),
                               [SimData(100, values=regs(98765.4321, "float64"), datatype=DataType.REGISTERS)],
                               [SimData(10, values=regs(-42, "int32"), datatype=DataType.REGISTERS)]))
    return [d1, d2]


POLL_MAP = {"devices": {
    "M0001": {"unit_id": 1, "quantities": {
        "active_energy": {"address": 0, "type": "uint32", "scale": 0.01, "unit": "kWh"},
        "active_power": {"address": 2, "type": "float32", "word_order": "little", "unit": "kW"},
        "temperature": {"address": 0, "function": "input", "type": "int16", "scale": 0.1, "unit": "degC"}}},
    "M0002": {"unit_id": 2, "quantities": {
        "active_energy": {"address": 100, "type": "float64", "unit": "MWh", "scale": 0.001},
        "net_energy": {"address": 10, "function": "input", "type": "int32", "unit": "kWh"}}},
    "M0009": {"unit_id": 9, "quantities": {
        "active_energy": {"address": 0, "type": "uint32", "unit": "kWh"}}},
}}


@pytest.fixture(scope="module")
def server():
    srv = ServerThread(two_devices()).start()
    yield srv
    srv.close()


def values(result):
    return {(r.meter_id, r.quantity): (r.value, r.unit) for r in result.data.itertuples()}


def test_poll_two_devices_and_an_absent_one(server):
    with ModbusPoller("127.0.0.1", server.port, POLL_MAP) as poller:
        before = pd.Timestamp.now(tz="UTC").floor("ms")
        res = poller.poll_once()
    assert res.kind == "readings"
    assert list(res.data.columns) == ["meter_id", "ts", "quantity", "value", "unit"]
    got = values(res)
    assert got[("M0001", "active_energy")] == (pytest.approx(1234.56), "kWh")
    assert got[("M0001", "active_power")] == (12.5, "kW")
    assert got[("M0001", "temperature")] == (pytest.approx(-21.5), "degC")
    assert got[("M0002", "active_energy")] == (pytest.approx(98.7654321), "MWh")
    assert got[("M0002", "net_energy")] == (-42.0, "kWh")
    assert len(got) == 5
    # one poll time, tz-aware UTC
    assert str(res.data["ts"].dt.tz) == "UTC" and res.data["ts"].nunique() == 1
    assert before <= res.data["ts"].iloc[0] <= pd.Timestamp.now(tz="UTC")
    # the absent unit id is an error, not a silent gap
    meta = res.metadata
    assert meta["connector"] == "modbus" and meta["endpoint"] == f"modbus-tcp://127.0.0.1:{server.port}"
    assert meta["connected"] is True and meta["polled_at"].startswith(str(res.data["ts"].iloc[0].date()))
    assert [(e["device"], e["quantity"]) for e in meta["errors"]] == [("M0009", "active_energy")]
    assert "unit 9" in meta["errors"][0]["reason"]
    rej = meta["rejected"]
    assert rej[["meter_id", "quantity", "unit"]].values.tolist() == [["M0009", "active_energy", "kWh"]]
    assert rej["reason"].str.startswith("modbus poll failed").all()
    # raw = the registers as received
    raw = json.loads(res.raw)
    assert {(r["device"], r["quantity"]): r["registers"] for r in raw["records"]}[("M0001", "active_energy")] == [1, 57920]


def test_a_silent_device_times_out_without_stopping_the_others():
    # pymodbus 3.16's SimDevice server answers an unknown unit id with 0x04 even with
    # ignore_missing_devices=True, so silence is simulated: unit 9 answers after 1 s
    async def slow(*_args):
        await asyncio.sleep(1.0)

    silent = SimDevice(9, simdata=[SimData(0, values=[0] * 4, datatype=DataType.REGISTERS)], action=slow)
    srv = ServerThread([*two_devices(), silent]).start()
    try:
        pm = {"devices": {"M0009": {"unit_id": 9, "quantities": {
                  "active_energy": {"address": 0, "type": "uint32", "unit": "kWh"},
                  "active_power": {"address": 2, "type": "float32", "unit": "kW"}}},
              "M0001": POLL_MAP["devices"]["M0001"]}}
        with ModbusPoller("127.0.0.1", srv.port, pm, timeout=0.3) as poller:
            t = time.monotonic()
            res = poller.poll_once()
            elapsed = time.monotonic() - t
        assert elapsed < 0.9  # the second quantity of the silent device is not asked again
        errs = res.metadata["errors"]
        assert [(e["device"], e["quantity"]) for e in errs] == [("M0009", "active_energy"), ("M0009", "active_power")]
        assert all("did not answer" in e["reason"] for e in errs)
        assert set(res.data["meter_id"]) == {"M0001"} and len(res.data) == 3
    finally:
        srv.close()


def test_server_gone_then_back():
    srv = ServerThread(two_devices()).start()
    try:
        poller = ModbusPoller("127.0.0.1", srv.port, POLL_MAP, timeout=0.5)
        assert len(poller.poll_once().data) == 5
        srv.stop()
        res = poller.poll_once()  # the open connection breaks
        assert res.data.empty and res.metadata["connected"] is False
        assert len(res.metadata["errors"]) == 6 and len(res.metadata["rejected"]) == 6
        res = poller.poll_once()  # refused
        assert res.data.empty and all("cannot connect" in e["reason"] for e in res.metadata["errors"])
        srv.start()
        res = poller.poll_once()  # reconnects
        assert len(res.data) == 5 and [e["device"] for e in res.metadata["errors"]] == ["M0009"]
        poller.close()
    finally:
        srv.close()


def test_run_loop_until_stopped(server):
    stop = threading.Event()
    got = []

    def sink(result):
        got.append(result)
        if len(got) == 3:
            stop.set()

    poller = ModbusPoller("127.0.0.1", server.port, POLL_MAP)
    n = poller.run(0.01, sink, stop)
    assert n == 3 and len(got) == 3 and all(len(r.data) == 5 for r in got)
    assert poller._client is None  # closed at the end
    assert ModbusPoller("127.0.0.1", server.port, POLL_MAP).run(0, None, max_polls=2) == 2


def test_gateway_exception_skips_the_device():
    """Exception 0x0B (gateway target did not respond) fails the device's remaining quantities."""
    from pymodbus.pdu import ExceptionResponse

    class Fake:
        connected = True
        calls = 0

        def connect(self):
            return True

        def close(self):
            pass

        def read_holding_registers(self, address, count=1, device_id=1):
            Fake.calls += 1
            if device_id == 5:
                return ExceptionResponse(3, 0x0B)
            return type("R", (), {"isError": lambda self: False, "registers": [7] * count})()

    pm = {"devices": {"A": {"unit_id": 5, "quantities": {"e": {"address": 0, "unit": "kWh"},
                                                          "f": {"address": 1, "unit": "kWh"}}},
                      "B": {"unit_id": 6, "quantities": {"e": {"address": 0, "unit": "kWh", "scale": 2}}}}}
    res = ModbusPoller("gw", 502, pm, client_factory=lambda *a: Fake()).poll_once()
    assert Fake.calls == 2
    assert [(e["device"], e["quantity"]) for e in res.metadata["errors"]] == [("A", "e"), ("A", "f")]
    assert "0x0B" in res.metadata["errors"][0]["reason"]
    assert values(res) == {("B", "e"): (14.0, "kWh")}


# ------------------------------------------------------------------------------ sinks
class FakeMqtt:
    def __init__(self):
        self.published = []

    def publish(self, topic, payload=None, qos=0, retain=False):
        self.published.append((topic, json.loads(payload), qos, retain))


def test_mqtt_sink_publishes_the_platform_telemetry_shape(server):
    res = ModbusPoller("127.0.0.1", server.port, POLL_MAP).poll_once()
    client = FakeMqtt()
    sent = MqttSink(client, root="wb")(res)
    assert len(sent) == 2
    by_topic = {t: (p, qos, retain) for t, p, qos, retain in client.published}
    assert set(by_topic) == {"wb/M0001/telemetry", "wb/M0002/telemetry"}  # nothing for the failed M0009
    payload, qos, retain = by_topic["wb/M0001/telemetry"]
    assert qos == 1 and retain is False
    ms = int(res.data["ts"].iloc[0].value // 1_000_000)
    assert payload == {"ts": ms, "values": {"active_energy": pytest.approx(1234.56), "active_power": 12.5,
                                            "temperature": pytest.approx(-21.5)}}
    assert by_topic["wb/M0002/telemetry"][0]["values"]["net_energy"] == -42
    assert to_telemetry_payloads(res)["M0002"]["ts"] == ms


def test_telemetry_payloads_group_by_device_and_timestamp():
    t0 = pd.Timestamp("2025-03-01 08:00", tz="UTC")
    data = pd.DataFrame({"meter_id": ["M1", "M1.P", "M1"], "ts": [t0, t0, t0 + pd.Timedelta("1s")],
                         "quantity": ["e", "p", "x"], "value": [1.5, 2.0, 3.0], "unit": ["kWh", "kW", "kWh"]})
    res = ConnectorResult(data, {"device_of": {"M1": "M1", "M1.P": "M1"}}, kind="readings")
    ms = int(t0.value // 1_000_000)
    assert to_telemetry_payloads(res) == {"M1": [{"ts": ms, "values": {"e": 1.5, "p": 2}},
                                                 {"ts": ms + 1000, "values": {"x": 3}}]}
    assert set(to_telemetry_payloads(res, by="meter_id")) == {"M1", "M1.P"}
    # naive timestamps are Asia/Shanghai local time
    naive = ConnectorResult(data.assign(ts=pd.Timestamp("2025-03-01 16:00")).head(1), {}, kind="readings")
    assert to_telemetry_payloads(naive) == {"M1": {"ts": ms, "values": {"e": 1.5}}}


def test_lake_sink_curates_readings_and_quarantines_failed_reads(server, tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.register_meters(pd.DataFrame({
        "meter_id": ["M0001", "M0002", "M0009"], "node_id": ["F01.W01", "F01.W02", "F01.W03"],
        "source": "purchased_electricity", "item": "grid", "unit": "kWh", "register": "cumulative",
        "rollover": "", "installed": "2020-01-01", "removed": "", "replaces": "", "is_main": False}))
    pm = {"devices": {"M0001": {"unit_id": 1, "quantities": {
                          "active_energy": {"address": 0, "type": "uint32", "scale": 0.01, "unit": "kWh"}}},
                      "M0002": {"unit_id": 2, "quantities": {
                          "active_energy": {"address": 100, "type": "float64", "unit": "MWh", "scale": 0.001}}},
                      "M0009": {"unit_id": 9, "quantities": {"active_energy": {"address": 0, "unit": "kWh"}}}}}
    res = ModbusPoller("127.0.0.1", server.port, pm).poll_once()
    report = LakeSink(functools.partial(ingest, lake), sender="poller-test")(res)
    assert report.status == "stored" and report.rows_in == 2 and report.rows_curated == 2
    assert report.rows_quarantined == 1
    cur = lake.sql("SELECT meter_id, ts, quantity, value FROM readings ORDER BY meter_id")
    assert cur["meter_id"].tolist() == ["M0001", "M0002"]
    assert cur["value"].tolist() == pytest.approx([1234.56, 98765.4321])  # MWh → the meter's kWh
    local = res.data["ts"].iloc[0].tz_convert("Asia/Shanghai").tz_localize(None)
    assert (pd.to_datetime(cur["ts"]) == local).all()
    q = lake.sql("SELECT reason, payload FROM quarantine")
    assert len(q) == 1 and "modbus poll failed" in q["reason"][0] and "M0009" in q["payload"][0]
    b = lake.batches()
    assert b["source"].tolist() == ["modbus"]
    assert LakeSink(functools.partial(ingest, lake))(ConnectorResult(res.data.head(0), {"errors": []}, kind="readings")) is None
