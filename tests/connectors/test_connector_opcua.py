"""OPC UA poller against a real asyncua server: values, units from EngineeringUnits, source
timestamps, a changed value, bad nodes, a server that goes away and comes back, the async API."""
from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading

import pandas as pd
import pytest
from asyncua import Server, ua

import connectors
from connectors.opcua import OpcUaPoller, PollMapError, load_opcua_map, unit_from_eu
from connectors.telemetry import MqttSink, to_telemetry_payloads

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UaServer:
    """An asyncua server in an event loop of its own thread: M0001 with energy (Double, kWh via
    EngineeringUnits, UNECE DisplayName "kW·h") and power (Double, no EngineeringUnits);
    M0002 with energy (Int32)."""

    def __init__(self):
        self.port = free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/wb/"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = None
        self.nodes = {}

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _start(self):
        srv = Server()
        await srv.init()
        srv.set_endpoint(self.endpoint)
        idx = await srv.register_namespace("urn:workbench:test")
        m1 = await srv.nodes.objects.add_object(ua.NodeId("M0001", idx), "M0001")
        e = await m1.add_variable(ua.NodeId("M0001.energy", idx), "energy", 0.0, varianttype=ua.VariantType.Double)
        await e.add_property(ua.NodeId("M0001.energy.EngineeringUnits", idx), "0:EngineeringUnits",
                             ua.EUInformation(NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
                                              UnitId=4937544, DisplayName=ua.LocalizedText("kW·h"),
                                              Description=ua.LocalizedText("kilowatt hour")),
                             varianttype=ua.VariantType.ExtensionObject,
                             datatype=ua.NodeId(ua.ObjectIds.EUInformation))
        p = await m1.add_variable(ua.NodeId("M0001.power", idx), "power", 0.0, varianttype=ua.VariantType.Double)
        m2 = await srv.nodes.objects.add_object(ua.NodeId("M0002", idx), "M0002")
        e2 = await m2.add_variable(ua.NodeId("M0002.energy", idx), "energy", 0, varianttype=ua.VariantType.Int32)
        s = await m2.add_variable(ua.NodeId("M0002.state", idx), "state", "running", varianttype=ua.VariantType.String)
        self.nodes = {"energy": e, "power": p, "energy2": e2, "state": s}
        await srv.start()
        self.server = srv
        await self._set(T0)

    async def _set(self, t0):
        await self.nodes["energy"].write_value(ua.DataValue(ua.Variant(1234.5, ua.VariantType.Double),
                                                            SourceTimestamp=t0, ServerTimestamp=t0))
        await self.nodes["power"].write_value(ua.DataValue(ua.Variant(55.25, ua.VariantType.Double),
                                                           SourceTimestamp=t0, ServerTimestamp=t0))
        await self.nodes["energy2"].write_value(ua.DataValue(ua.Variant(4200, ua.VariantType.Int32),
                                                             SourceTimestamp=t0, ServerTimestamp=t0))

    def start(self):
        self.run(self._start())
        return self

    def write(self, name, value, vtype, source_ts=None):
        self.run(self.nodes[name].write_value(ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=source_ts)))

    def stop(self):
        if self.server is not None:
            self.run(self.server.stop())
            self.server = None

    def close(self):
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


POLL_MAP = """
devices:
  M0001:
    quantities:
      active_energy: {node_id: "ns=2;s=M0001.energy"}                # unit from EngineeringUnits
      active_power: {node_id: "ns=2;s=M0001.power", unit: kW}
  M0002:
    quantities:
      active_energy: {node_id: "ns=2;s=M0002.energy", unit: kWh, scale: 0.1}
"""


@pytest.fixture(scope="module")
def server():
    srv = UaServer().start()
    yield srv
    srv.close()


def by_key(res):
    return {(r.meter_id, r.quantity): (r.value, r.unit, r.ts) for r in res.data.itertuples()}


def test_poll_values_units_and_source_timestamps(server):
    with OpcUaPoller(server.endpoint, POLL_MAP) as poller:
        res = poller.poll_once()
        assert res.kind == "readings" and res.metadata["errors"] == [] and "rejected" not in res.metadata
        got = by_key(res)
        t0 = pd.Timestamp(T0)
        assert got[("M0001", "active_energy")] == (1234.5, "kW·h", t0)
        assert got[("M0001", "active_power")] == (55.25, "kW", t0)
        assert got[("M0002", "active_energy")] == (pytest.approx(420.0), "kWh", t0)
        assert str(res.data["ts"].dt.tz) == "UTC"
        assert res.metadata["connector"] == "opcua" and res.metadata["endpoint"] == server.endpoint

        # a new value with a new source timestamp; a value written without one gets the server's
        t1 = T0 + dt.timedelta(minutes=15)
        server.write("energy", 1240.75, ua.VariantType.Double, source_ts=t1)
        before = pd.Timestamp.now(tz="UTC") - pd.Timedelta("1s")
        server.write("power", 60.0, ua.VariantType.Double)
        res = poller.poll_once()
        got = by_key(res)
        assert got[("M0001", "active_energy")][:2] == (1240.75, "kW·h")
        assert got[("M0001", "active_energy")][2] == pd.Timestamp(t1)
        assert got[("M0001", "active_power")][0] == 60.0 and got[("M0001", "active_power")][2] >= before
        # telemetry: one device, two timestamps → the platform's array form
        tele = to_telemetry_payloads(res)
        assert isinstance(tele["M0001"], list) and tele["M0001"][0] == {
            "ts": int(pd.Timestamp(t1).value // 1_000_000), "values": {"active_energy": 1240.75}}
        assert tele["M0002"] == {"ts": int(pd.Timestamp(T0).value // 1_000_000), "values": {"active_energy": 420}}
    server.run(server._set(T0))


def test_bad_nodes_fail_only_their_quantity(server):
    pm = {"devices": {
        "M0001": {"quantities": {"active_energy": {"node_id": "ns=2;s=M0001.energy"},
                                 "reactive": {"node_id": "ns=2;s=M0001.nothing", "unit": "kWh"},
                                 "active_power": {"node_id": "ns=2;s=M0001.power"}}},   # no unit, no EU
        "M0002": {"quantities": {"state": {"node_id": "ns=2;s=M0002.state", "unit": "kWh"},
                                 "active_energy": {"node_id": "ns=2;s=M0002.energy", "unit": "kWh"}}}}}
    with OpcUaPoller(server.endpoint, pm) as poller:
        res = poller.poll_once()
    assert set(by_key(res)) == {("M0001", "active_energy"), ("M0002", "active_energy")}
    errs = {(e["device"], e["quantity"]): e["reason"] for e in res.metadata["errors"]}
    assert "BadNodeIdUnknown" in errs[("M0001", "reactive")]
    assert "no EngineeringUnits" in errs[("M0001", "active_power")]
    assert "not a number" in errs[("M0002", "state")]
    assert len(res.metadata["rejected"]) == 3


def test_async_api_and_run_loop(server):
    async def go():
        async with OpcUaPoller(server.endpoint, POLL_MAP) as poller:
            return await poller.poll_async()
    assert len(asyncio.run(go()).data) == 3

    class Fake:
        def __init__(self):
            self.published = []

        def publish(self, topic, payload=None, qos=0, retain=False):
            self.published.append((topic, payload, qos))

    client, stop = Fake(), threading.Event()
    poller = OpcUaPoller(server.endpoint, POLL_MAP)
    n = poller.run(0.01, MqttSink(client, root="site1"), stop, max_polls=2)
    assert n == 2 and poller._tl is None
    assert [t for t, _, _ in client.published] == ["site1/M0001/telemetry", "site1/M0002/telemetry"] * 2
    assert all(q == 1 for _, _, q in client.published)


def test_poll_map_validation_and_units():
    with pytest.raises(PollMapError, match="device 'M1'.*quantity 'e'.*field 'node_id'"):
        load_opcua_map({"devices": {"M1": {"quantities": {"e": {"unit": "kWh"}}}}})
    with pytest.raises(PollMapError, match="field 'node_id'.*not a NodeId"):
        load_opcua_map({"devices": {"M1": {"quantities": {"e": {"node_id": "ns=x;q=1"}}}}})
    with pytest.raises(PollMapError, match="field 'unit'"):
        load_opcua_map({"devices": {"M1": {"quantities": {"e": {"node_id": "ns=2;s=a", "unit": "zorkmid"}}}}})
    m = load_opcua_map({"devices": {"M1": {"quantities": {"e": {"node_id": "ns=2;s=a"}}}}})
    assert m["M1"]["quantities"]["e"]["unit"] is None
    assert unit_from_eu(ua.EUInformation(DisplayName=ua.LocalizedText("kW·h"))) == "kW·h"
    assert unit_from_eu(ua.EUInformation(DisplayName=ua.LocalizedText("zorkmid"))) is None
    assert connectors.load("opcua").OpcUaPoller is OpcUaPoller
    assert connectors.load("modbus").__name__ == "connectors.modbus"


def test_server_gone_then_back(server):  # last: stops and restarts the module's server
    srv = server
    poller = OpcUaPoller(srv.endpoint, POLL_MAP, timeout=1.0)
    assert len(poller.poll_once().data) == 3
    srv.stop()
    res = poller.poll_once()
    assert res.data.empty and res.metadata["connected"] is False
    assert len(res.metadata["errors"]) == 3 and all("cannot read" in e["reason"] for e in res.metadata["errors"])
    srv.start()
    res = poller.poll_once()  # reconnects, units read again
    assert len(res.data) == 3 and res.metadata["errors"] == []
    assert by_key(res)[("M0001", "active_energy")][1] == "kW·h"
    poller.close()
