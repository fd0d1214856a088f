"""Durability under faults (issue 10, points 3 and 4): a known QoS 1 stream through a real Mosquitto
and real `workbench gateway` processes while the gateways are SIGKILLed and the broker is restarted
at random moments (workbench.devices.faultcheck); the lake must hold exactly what the broker
acknowledged — nothing missing, nothing twice, Σ consumption per meter = last − first reading.
And the lake commits a batch whole: a process dying between its tables leaves nothing visible."""
from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("paho.mqtt.client")
from mqtt import require_mosquitto

from connectors import ConnectorResult
from workbench.devices.faultcheck import register_value, run
from workbench.ingestion import ingest
from workbench.lake.store import Lake

START = pd.Timestamp("2026-03-01 08:00")


def _readings(meter: str, ks) -> ConnectorResult:
    data = pd.DataFrame({"meter_id": meter, "ts": [START + pd.Timedelta(minutes=15 * k) for k in ks],
                         "value": [register_value(0, k) for k in ks]})
    raw = data.to_csv(index=False).encode() + f"# {list(ks)}\n".encode()
    return ConnectorResult(data, {"source": "test"}, kind="readings", raw=raw, raw_name="r.csv")


def test_a_batch_is_committed_whole(tmp_path, monkeypatch):
    """The gateway killed after a batch's readings were written but before its consumption used to
    leave the readings visible without their consumption; the redelivered batch then found only
    duplicates and the meter's total stayed short.  Now nothing of the batch is visible until its
    last table is written, so the redelivery stores it all."""
    lake = Lake(tmp_path / "lake")
    lake.register_meters(pd.DataFrame({"meter_id": ["M1"], "node_id": "F01", "unit": "kWh", "item": "grid",
                                       "register": "cumulative"}))
    assert ingest(lake, _readings("M1", range(4)), sender="t").status == "stored"
    real = Lake.write_table

    def dies_at_consumption(self, table, df, **kw):
        if table == "consumption":
            raise KeyboardInterrupt("killed between two tables")        # like SIGKILL: no cleanup
        return real(self, table, df, **kw)

    monkeypatch.setattr(Lake, "write_table", dies_at_consumption)
    with pytest.raises(KeyboardInterrupt):
        ingest(lake, _readings("M1", range(4, 8)), sender="t")
    monkeypatch.undo()
    assert lake.sql("SELECT count(*) AS n FROM readings")["n"][0] == 4          # nothing of the batch
    ingest(lake, _readings("M1", range(4, 8)), sender="t")                       # the redelivery
    r = lake.sql("SELECT count(*) AS n FROM readings")["n"][0]
    c = lake.sql("SELECT count(*) AS n, sum(value) AS s FROM consumption")
    # 8 readings 2.5 kWh apart: 7 intervals, 17.5 kWh
    assert r == 8 and c["n"][0] == 7 and c["s"][0] == pytest.approx(17.5)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_faults_at_random_moments_lose_and_duplicate_nothing(tmp_path, seed):
    """One gateway; every 1–3 s a fault: the gateway SIGKILLed, the broker restarted (SIGTERM), or
    both in random order; ~10 s of stream at 200 msg/s from 8 meters."""
    require_mosquitto()
    report = run(tmp_path / "fc", seconds=10, devices=8, rate=200, seed=seed, interval=(1.0, 3.0),
                 faults=("gateway-kill", "broker-restart", "both"))
    r = report.result
    assert len(report.faults) >= 3, report.faults
    assert r["published"] > 1000 and r["acked"] == r["published"], r
    assert r["missing"] == 0 and r["extra"] == 0 and r["duplicates"] == 0, (r, report.faults)
    assert r["wrong_values"] == 0 and r["consumption_wrong_meters"] == 0, (r, report.faults)
    # a gateway's session always held the messages: the broker never answered "no subscribers"
    assert r["no_subscriber_acks"] == 0 and r["refused_acks"] == 0, r
    assert report.ok


def test_two_gateways_with_restarts_keep_the_guarantee(tmp_path):
    """Scale-out: two gateways (partitions 0/2 and 1/2, own sessions); either one is SIGKILLed or
    the broker restarted at random moments."""
    require_mosquitto()
    report = run(tmp_path / "fc", seconds=10, devices=8, gateways=2, rate=200, seed=21, interval=(1.0, 2.5),
                 faults=("gateway-kill", "gateway-kill", "broker-restart", "both"))
    r = report.result
    assert {d.split()[1] for _t, kind, d in report.faults if kind == "gateway-kill"} <= {"0", "1"}
    assert r["acked"] == r["published"] and r["missing"] == 0 and r["duplicates"] == 0 and r["extra"] == 0, \
        (r, report.faults)
    assert r["consumption_wrong_meters"] == 0 and r["no_subscriber_acks"] == 0, r
