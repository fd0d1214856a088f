"""No payload can stop the gateway (issue 10, point 1): hostile messages are quarantined with their
reason while the rest of their batch is stored; a message that makes storing fail is found and
quarantined alone; a failing lake acknowledges nothing; packet ids of an earlier connection are
never acknowledged.  Property tests: the payload parser raises TelemetryError or returns finite,
plausible rows — nothing else — for any bytes and any JSON document."""
from __future__ import annotations

import json
import math
import os
import threading
import time

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

paho = pytest.importorskip("paho.mqtt.client")

from mqtt import running_mosquitto, wait_for
from pg import free_port

from workbench.devices import DeviceRegistry
from workbench.devices.broker import write_broker_config
from workbench.devices.gateway import (
    MAX_AGE_S,
    MAX_AHEAD_S,
    MAX_PAYLOAD_BYTES,
    MAX_REASON_CHARS,
    Gateway,
    TelemetryError,
    decode_payload,
    parse_partition,
    parse_telemetry,
)
from workbench.lake.store import Lake

ROOT = "wb"
NOW = 1_790_000_000_000                       # a fixed "now" (2026-09-21) for the parser tests
STEP = 15 * 60 * 1000


class AckRecorder:
    """Stands in for the paho client: records the PUBACKs the gateway sends."""

    def __init__(self):
        self.acked: list[int] = []

    def ack(self, mid, qos):
        self.acked.append(mid)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    reg = DeviceRegistry(f"sqlite:///{d / 'reg.db'}", prefix="88.123.4567")
    reg.provision_many([
        {"device_id": "C-F01", "type": "collector", "node_id": "F01"},
        {"device_id": "M1", "type": "electricity_meter", "node_id": "F01", "collector": "C-F01",
         "quantities": {"register": "kWh"}},
        {"device_id": "M2", "type": "electricity_meter", "node_id": "F01", "collector": "C-F01",
         "quantities": {"register": "kWh"}},
        {"device_id": "SM", "type": "electricity_meter", "node_id": "F01", "collector": "C-F01",
         "quantities": {"register": "kWh", "power": "kW"}}])
    yield reg
    reg.dispose()


@pytest.fixture
def gateway(registry, tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.register_meters(pd.DataFrame({"meter_id": ["M1", "M2"], "node_id": "F01", "unit": "kWh",
                                       "item": "electricity", "register": "cumulative"}))
    gw = Gateway("127.0.0.1", 1, lake, registry, username="platform-gateway", password="x", root=ROOT,
                 rollup_every=None)
    gw.client = AckRecorder()
    return gw


def _now_ms() -> int:
    return int(time.time() * 1000) // STEP * STEP - 10 * STEP


def _msg(mid, device, payload, gen=0):
    if not isinstance(payload, bytes):
        payload = json.dumps(payload).encode()
    return (mid, 1, f"{ROOT}/{device}/telemetry", payload, time.time(), gen)


def _valid(ts, value):
    return {"ts": ts, "values": {"register": value}}


def _hostile(t0: int) -> dict[bytes, str]:
    """Payload → a text its quarantine reason must contain."""
    deep = b"[" * 1025 + b"]" * 1025
    return {
        deep: "depth limit exceeded",
        b"[" * 100_000 + b"]" * 100_000: "depth limit exceeded",
        b'{"ts": %d, "values": {"register": NaN}}' % t0: "NaN and Infinity are not JSON numbers",
        b'{"ts": %d, "values": {"register": Infinity}}' % t0: "NaN and Infinity are not JSON numbers",
        b'{"ts": %d, "values": {"register": -Infinity}}' % t0: "NaN and Infinity are not JSON numbers",
        b'{"ts": %d, "values": {"register": 1e400}}' % t0: "number is infinity",
        b'{"ts": %d, "values": {"register": 1e308}, "units": {"register": "GWh"}}' % t0: "overflows",
        b'{"ts": 100000000000000000, "values": {"register": 1}}': "is implausible",
        b'{"ts": 18446744073709551615, "values": {"register": 1}}': "is implausible",
        b'{"ts": 123456789012345678901234567890, "values": {"register": 1}}': "is implausible",
        b'{"ts": -5, "values": {"register": 1}}': "is implausible",
        b'{"ts": 1e300, "values": {"register": 1}}': "is implausible",
        b'{"ts": "%d", "values": {"register": 1}}' % t0: "'ts' must be epoch milliseconds",
        b'\xff\xfe{"ts": 1}': "not JSON",
        json.dumps(_valid(t0, 1)).encode("utf-16"): "not JSON",
        b'{"ts": %d, "values": {"\\ud800": 1}}' % t0: "surrogate",
        b'{"ts": %d, "values": {"register": "12"}}' % t0: "finite number",
        b'{"ts": %d, "values": {"register": null}}' % t0: "finite number",
        b'{"ts": %d, "values": {"register": true}}' % t0: "finite number",
        b'{"ts": %d, "values": {"register": {"a": [1]}}}' % t0: "finite number",
        b'{"ts": %d, "values": {"%s": 1}}' % (t0, b"k" * 100_000): "does not measure",
        b'{"ts": %d, "values": {"register": 1}, "units": {"register": "1e400 Wh"}}' % t0: "register in",
        b'{"ts": %d, "values": {"register": 1}, "units": {"register": ["kWh"]}}' % t0: "must be a unit",
        b'{"ts": %d, "values": {"register": 1}, "units": {"register": "kg"}}' % t0: "register in",
        b"[" + b",".join([json.dumps(_valid(t0, 1)).encode()] * 20_000) + b"]": "exceeds the gateway's limit",
        b"": "not JSON",
        b"null": "expected",
        b"123": "expected",
        b'"text"': "expected",
        b"[]": "empty list",
        b"\xef\xbb\xbf" + json.dumps(_valid(t0, 1)).encode(): "not JSON",
    }


def test_hostile_payloads_are_quarantined_and_the_rest_of_the_batch_is_stored(gateway):
    t0 = _now_ms()
    hostile = _hostile(t0)
    batch = [_msg(1, "M1", _valid(t0, 100.0))]
    batch += [_msg(10 + k, "M2", p) for k, p in enumerate(hostile)]
    batch += [_msg(2, "M1", [_valid(t0 + STEP, 101.5), _valid(t0 + 2 * STEP, 103.0)])]
    rep = gateway.process(batch)
    assert rep["status"] == "stored"
    assert rep["rows_curated"] == 3 and rep["rows_quarantined"] == len(hostile)
    q = gateway.lake.sql("SELECT reason, payload FROM quarantine ORDER BY row")
    assert len(q) == len(hostile)
    for (payload, expected), reason in zip(hostile.items(), q["reason"], strict=True):
        assert expected in reason, (payload[:60], reason)
        assert reason.startswith(f"{ROOT}/M2/telemetry: ") and len(reason) <= MAX_REASON_CHARS
    # the M1 register continues across the batch: 1.5 + 1.5 kWh, nothing from the hostile ones
    c = gateway.lake.sql("SELECT meter_id, sum(value) AS s FROM consumption GROUP BY ALL")
    assert c.to_dict("list") == {"meter_id": ["M1"], "s": [3.0]}
    # the raw zone keeps every message as received, the 2 × 100,000-deep one included
    raw = gateway.lake.batches()
    assert len(raw) == 1 and int(raw["rows_in"].iloc[0]) == 3


def test_an_unforeseen_error_while_checking_quarantines_that_message_only(gateway, monkeypatch):
    from workbench.devices import gateway as gwmod

    real = gwmod.parse_telemetry

    def flaky(device, doc, **kw):
        if isinstance(doc, dict) and doc.get("values", {}).get("register") == 13.0:
            raise ZeroDivisionError("a bug in the checks")
        return real(device, doc, **kw)

    monkeypatch.setattr(gwmod, "parse_telemetry", flaky)
    t0 = _now_ms()
    rep = gateway.process([_msg(1, "M1", _valid(t0, 12.0)), _msg(2, "M1", _valid(t0 + STEP, 13.0)),
                           _msg(3, "M1", _valid(t0 + 2 * STEP, 14.0))])
    assert rep["rows_curated"] == 2 and rep["rows_quarantined"] == 1
    reason = gateway.lake.sql("SELECT reason FROM quarantine")["reason"][0]
    assert "unreadable: ZeroDivisionError: a bug in the checks" in reason


def test_a_message_that_makes_storing_fail_is_found_and_quarantined_alone(gateway, monkeypatch):
    """The lake fails whenever a batch holds the value 666 (a stand-in for any bug a message may
    trigger in storage): the gateway splits the batch until that message is alone, quarantines it
    with the failure as its reason, stores the rest and acknowledges all ten."""
    import workbench.devices.gateway as gwmod

    lake = gateway.lake
    real = gwmod.ingest

    def ingest(into, result, **kw):
        if len(result.data) and (result.data["value"] == 666.0).any():
            raise RuntimeError("storage choked on 666")
        return real(into, result, **kw)

    monkeypatch.setattr(gwmod, "ingest", ingest)
    t0 = _now_ms()
    values = [10.0, 11.0, 12.0, 666.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0]
    gateway._pending = [_msg(k + 1, "M1", _valid(t0 + k * STEP, v)) for k, v in enumerate(values)]
    assert gateway._flush() == 10
    assert sorted(gateway.client.acked) == list(range(1, 11))
    assert gateway.stats.unstorable == 1 and gateway.stats.failures == 0
    r = lake.sql("SELECT value FROM readings ORDER BY ts")["value"].tolist()
    assert r == [v for v in values if v != 666.0]
    q = lake.sql("SELECT reason, payload FROM quarantine")
    assert len(q) == 1 and "storing failed: RuntimeError: storage choked on 666" in q["reason"][0]
    assert json.loads(q["payload"][0])["values"]["register"] == 666.0


def test_a_failing_lake_acknowledges_nothing_and_keeps_the_batch(gateway, monkeypatch):
    def broken(lake, result, **kw):
        raise OSError("disk full")

    monkeypatch.setattr("workbench.devices.gateway.ingest", broken)
    monkeypatch.setattr("workbench.devices.gateway.time.sleep", lambda s: None)
    t0 = _now_ms()
    batch = [_msg(k + 1, "M1", _valid(t0 + k * STEP, 10.0 + k)) for k in range(8)]
    gateway._pending = list(batch)
    assert gateway._flush() == 0
    assert gateway.client.acked == [] and gateway.stats.failures == 1 and gateway.stats.unstorable == 0
    assert gateway._pending == batch                        # kept, in order, for the next attempt
    monkeypatch.undo()
    assert gateway._flush() == 8 and sorted(gateway.client.acked) == list(range(1, 9))


def test_packet_ids_of_an_earlier_connection_are_never_acknowledged(gateway):
    t0 = _now_ms()
    old = [_msg(k + 1, "M1", _valid(t0 + k * STEP, 10.0 + k), gen=0) for k in range(3)]
    gateway._pending = list(old)
    batch = gateway._take()
    gateway._on_disconnect(None, None, None, "lost", None)          # the connection drops meanwhile
    gateway.process(batch)
    assert gateway._ack(batch) == 0 and gateway.client.acked == []
    assert gateway.stats.stale == 3
    # what is still pending from the old connection is dropped at the next take (redelivered anyway)
    gateway._pending = [_msg(9, "M1", _valid(t0, 10.0), gen=0), _msg(4, "M1", _valid(t0 + 5 * STEP, 20.0), gen=1)]
    assert [b[0] for b in gateway._take()] == [4]


def test_batches_are_bounded_in_bytes(gateway):
    t0 = _now_ms()
    gateway.max_batch_bytes = 200
    gateway._pending = [_msg(k, "M1", _valid(t0 + k * STEP, float(k))) for k in range(10)]   # ~45 bytes each
    sizes = []
    while gateway._pending:
        sizes.append(len(gateway._take()))
    assert sizes == [4, 4, 2]
    gateway._pending = [_msg(1, "M1", b"x" * 1000)]                     # one oversized message still goes
    assert len(gateway._take()) == 1


def test_partition_parsing():
    assert parse_partition("1/3") == (1, 3) and parse_partition(" 0 / 1 ") == (0, 1)
    for bad in ("3/3", "-1/2", "a/b", "1", "0/0", "1/2/3"):
        with pytest.raises(ValueError, match="K/N"):
            parse_partition(bad)


def test_the_issues_poison_message_through_a_real_broker(registry, tmp_path):
    """The issue's reproduction: 2 kB of JSON nested 1,025 deep used to fail every batch forever.
    Now it is quarantined and every other device's data keeps flowing; a restarted gateway gets
    nothing back (everything was acknowledged)."""
    creds = {m: registry.rotate_password(m, who="test") for m in ("M1", "M2")}
    lake = Lake(tmp_path / "lake")
    lake.register_meters(pd.DataFrame({"meter_id": ["M1", "M2"], "node_id": "F01", "unit": "kWh",
                                       "item": "electricity", "register": "cumulative"}))
    port = free_port()
    run_as = "root" if os.geteuid() == 0 else None
    write_broker_config(registry, tmp_path / "conf", root=ROOT, port=port, user=run_as)   # platform users
    gw_pw = registry.rotate_password("platform-gateway", who="test")
    files = write_broker_config(registry, tmp_path / "conf", root=ROOT, port=port, user=run_as)
    t0 = _now_ms()
    with running_mosquitto(files.conf, port=port):
        def run_gateway():
            gw = Gateway("127.0.0.1", port, lake, registry, username="platform-gateway", password=gw_pw,
                         client_id="platform-gateway", root=ROOT, batch_interval=0.1, rollup_every=None)
            stop = threading.Event()
            t = threading.Thread(target=gw.run, args=(stop,), daemon=True)
            t.start()
            assert wait_for(gw._connected.is_set, 10)
            return gw, stop, t

        gw, stop, t = run_gateway()
        clients = {}
        for m in ("M1", "M2"):
            c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=m, protocol=paho.MQTTv5)
            c.username_pw_set(m, creds[m])
            c.connect("127.0.0.1", port)
            c.loop_start()
            clients[m] = c
        deep = b"[" * 1025 + b"]" * 1025
        infos = [clients["M1"].publish(f"{ROOT}/M1/telemetry", deep, qos=1)]
        for k in range(5):
            for i, m in enumerate(("M1", "M2")):
                infos.append(clients[m].publish(f"{ROOT}/{m}/telemetry",
                                                json.dumps(_valid(t0 + k * STEP, 100.0 * (i + 1) + k)), qos=1))
        for info in infos:
            info.wait_for_publish(10)
        assert wait_for(lambda: gw.stats.acked >= 11, 20), gw.stats
        assert gw.stats.failures == 0
        stop.set()
        t.join(10)
        gw2, stop2, t2 = run_gateway()
        time.sleep(1.0)
        assert gw2.stats.received == 0                          # nothing left to redeliver
        stop2.set()
        t2.join(10)
        for c in clients.values():
            c.disconnect()
            c.loop_stop()
    assert int(lake.sql("SELECT count(*) AS n FROM readings")["n"][0]) == 10
    q = lake.sql("SELECT reason FROM quarantine")
    assert len(q) == 1 and "depth limit exceeded" in q["reason"][0]


# --------------------------------------------------------------------------- properties

_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
            | st.text(st.characters(codec=None, categories=None), max_size=20))
_json_like = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
_quantity = st.sampled_from(["register", "power", "voltage", "\ud800", ""]) | st.text(max_size=6)
_ts = (st.integers(min_value=NOW - 2 * MAX_AGE_S * 1000, max_value=NOW + 2 * MAX_AHEAD_S * 1000)
       | st.integers() | st.floats() | _scalars)
_item = st.fixed_dictionaries({"ts": _ts, "values": st.dictionaries(_quantity, _json_like | st.floats(), max_size=3)},
                              optional={"units": st.dictionaries(_quantity, st.sampled_from(
                                  ["kWh", "Wh", "MJ", "kW", "W", "kg", "1e400 Wh", "", "nope"]) | _json_like,
                                  max_size=2)})
_documents = _item | st.lists(_item, max_size=4) | _json_like


def _check_rows(device, rows):
    for meter, ident, ts, q, v, unit in rows:
        assert meter == device.device_id and ident == device.identifier
        assert type(ts) is int and NOW - MAX_AGE_S * 1000 <= ts <= NOW + MAX_AHEAD_S * 1000
        assert q in device.quantities and unit == device.quantities[q]
        assert type(v) is float and math.isfinite(v)
        if q == "register":
            assert v >= 0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_documents)
def test_property_any_document_gives_checked_rows_or_a_telemetry_error(registry, doc):
    device = registry.get("SM")
    try:
        rows = parse_telemetry(device, doc, now_ms=NOW, decoded=True)
    except TelemetryError as exc:
        assert str(exc)
        return
    _check_rows(device, rows)


@settings(max_examples=400, deadline=None)
@given(payload=st.binary(max_size=300) | _documents.map(lambda d: json.dumps(d, allow_nan=True).encode())
       | st.builds(lambda d, k: b"[" * k + json.dumps(d).encode() + b"]" * k, _item, st.integers(0, 1100)))
def test_property_any_bytes_decode_or_give_a_telemetry_error(registry, payload):
    device = registry.get("SM")
    try:
        doc = decode_payload(payload)
    except TelemetryError as exc:
        assert str(exc).startswith(("not JSON", "payload of"))
        return
    try:
        rows = parse_telemetry(device, payload, now_ms=NOW)
    except TelemetryError:
        return
    _check_rows(device, rows)
    assert rows == parse_telemetry(device, doc, now_ms=NOW, decoded=True)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.tuples(st.integers(NOW - MAX_AGE_S * 1000, NOW + MAX_AHEAD_S * 1000),
                                st.floats(0, 1e12), st.floats(-1e6, 1e6)), min_size=1, max_size=5),
       as_list=st.booleans())
def test_property_valid_messages_round_trip(registry, items, as_list):
    """Valid messages give back exactly what was sent: the register and the power, each at its ts."""
    device = registry.get("SM")
    docs = [{"ts": ts, "values": {"register": r, "power": p}} for ts, r, p in items]
    payload = json.dumps(docs if as_list or len(docs) > 1 else docs[0]).encode()
    rows = parse_telemetry(device, payload, now_ms=NOW)
    expected = [("SM", device.identifier, ts, q, float(v), u) for ts, r, p in items
                for q, v, u in (("register", r, "kWh"), ("power", p, "kW"))]
    assert rows == expected


def test_decode_payload_limit():
    big = b" " * MAX_PAYLOAD_BYTES + b"{}"
    with pytest.raises(TelemetryError, match="exceeds the gateway's limit"):
        decode_payload(big)
    assert decode_payload(b" " * (MAX_PAYLOAD_BYTES - 2) + b"{}") == {}
