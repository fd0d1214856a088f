"""Identifier middleware (seed §10.2.1): identifiers attached to incoming records of any connector,
records of an unregistered source quarantined with the reason — through the lake's one write path."""
from __future__ import annotations

import asyncio
import io
import json

import pandas as pd
import pytest

from connectors import ConnectorResult, parquet
from workbench.core.boundary import Boundary
from workbench.core.meters import read_meters
from workbench.demo import plants as demo
from workbench.identifiers.middleware import SourceRegistry, attach_identifiers
from workbench.identifiers.model import records_from_boundary
from workbench.identifiers.store import HandleStore
from workbench.ingestion import ingest
from workbench.ingestion.mapping import Mapping
from workbench.lake.store import Lake

PREFIX = demo.PREFIX


@pytest.fixture
def store(demo_data, db_url):
    """The local node with the demo boundary registered (every node and meter), on SQLite and
    on PostgreSQL (``db_url``)."""
    s = HandleStore(db_url, scrypt_n=2**10)
    s.put_many(records_from_boundary(Boundary.read_csv(demo_data / "boundary.csv"), PREFIX))
    yield s
    s.close()


@pytest.fixture()
def lake(tmp_path, demo_data):
    lk = Lake(tmp_path / "lake")
    meters = read_meters(demo_data / "meters.csv")
    # M0099 is a meter the lake knows but nobody registered as an identifier
    extra = meters[meters["meter_id"] == "M0002"].assign(meter_id="M0099", serial="X-99")
    lk.register_meters(pd.concat([meters, extra], ignore_index=True))
    lk.register_boundary(pd.read_csv(demo_data / "boundary.csv", dtype=str, keep_default_na=False))
    return lk


def _boundary(demo_data) -> pd.DataFrame:
    return pd.read_csv(demo_data / "boundary.csv", dtype=str, keep_default_na=False)


def test_demo_readings_get_their_identifiers_and_an_unregistered_meter_is_quarantined(demo_data, store, lake):
    meters = read_meters(demo_data / "meters.csv")
    res = parquet.read(demo_data / "readings.parquet", meters=meters, source="demo-meters")
    real = res.data
    stray = real[real["meter_id"] == "M0002"].head(96).assign(meter_id="M0099")      # known to the lake only
    ghost = real[real["meter_id"] == "M0003"].head(5).assign(meter_id="M0777")       # known to nobody
    data = pd.concat([real, stray, ghost], ignore_index=True).drop(columns="row")
    batch = ConnectorResult(data, {"source": "demo-meters"}, kind="readings", raw=data.to_parquet(index=False),
                            raw_name="readings.parquet")
    registry = SourceRegistry.from_store(store, PREFIX)
    rep = ingest(lake, batch, sender="test", identifiers=registry)

    assert rep.status == "stored" and rep.rows_in == len(data)
    # nothing lost: every row is curated, an identical duplicate, or quarantined
    assert rep.rows_curated + rep.rows_duplicate + rep.rows_quarantined == len(data)
    q = lake.sql(f"SELECT row, \"column\", reason, payload FROM quarantine WHERE batch_id = '{rep.batch_id}'")
    assert len(q) == rep.rows_quarantined
    mine = q[q["reason"].str.startswith("source not registered")]
    assert len(mine) == len(stray) + len(ghost)
    assert (mine["reason"] == "source not registered: meter M0099 (88.123.4567/meter.M0099 not found in the "
                              "identifier store)").sum() == len(stray)
    assert mine["reason"].str.contains("meter M0777").sum() == len(ghost)
    assert set(mine["column"]) == {"meter_id"}
    # the row number is the position in the batch; the payload is the original row
    assert sorted(mine["row"].tolist()) == list(range(len(real), len(data)))
    assert {json.loads(p)["meter_id"] for p in mine["payload"]} == {"M0099", "M0777"}
    # the rest is quarantined by preparation exactly as without the middleware (demo conflicts)
    assert q.loc[~q.index.isin(mine.index), "reason"].str.contains("conflicting duplicate").all()

    # every curated reading carries its meter's identifier; nothing of M0099/M0777 was curated
    got = lake.sql("SELECT meter_id, list(DISTINCT identifier) AS ids, count(*) AS n FROM readings GROUP BY 1")
    assert set(got["meter_id"]) == set(meters["meter_id"])
    for m, ids in zip(got["meter_id"], got["ids"]):
        assert list(ids) == [f"{PREFIX}/meter.{m}"]
    assert got["n"].sum() == rep.rows_curated
    # the raw zone holds the whole batch as it arrived, rejected rows included
    raw = pd.read_parquet(io.BytesIO(lake.read_raw(rep.batch_id)))
    assert len(raw) == len(data) and (raw["meter_id"] == "M0099").sum() == len(stray)
    # retrieval by a meter's identifier (boundary) and the curated column agree
    m2 = lake.retrieve("readings", identifier=f"{PREFIX}/METER.M0002", start="2025-03-01", end="2025-03-02")
    assert len(m2) == 96 and set(m2["identifier"]) == {f"{PREFIX}/meter.M0002"}
    # one existence check per distinct meter, not per row
    assert registry.lookups == meters["meter_id"].nunique() + 2


def test_without_a_registry_ingest_is_unchanged(tmp_path, demo_data, store, lake):
    r = pd.read_parquet(demo_data / "readings.parquet")
    day = r[(r["ts"] < "2025-03-02") & (r["ts"] >= "2025-03-01")].assign(quantity="interval", unit="kWh")
    day = day[day["meter_id"].isin(["M0002", "M0003"])]
    stray = day[day["meter_id"] == "M0002"].assign(meter_id="M0099")
    data = pd.concat([day, stray], ignore_index=True)
    rep = ingest(lake, ConnectorResult(data, {"source": "plain"}, kind="readings"), sender="t")
    # M0099 is a registered meter of the lake: curated, with no identifier (the lake's meter
    # registry has none) — today's behaviour
    assert rep.rows_curated == len(data) and rep.rows_quarantined == 0
    assert lake.sql("SELECT count(*) AS n FROM readings WHERE identifier IS NOT NULL")["n"][0] == 0


def test_activity_rows_get_node_identifiers_unregistered_nodes_quarantined(demo_data, store, lake):
    act = pd.read_csv(demo_data / "activity.csv", dtype=str, keep_default_na=False)
    extra = act.head(2).assign(record_id=["X-1", "X-2"], node_id=["F99", ""], )
    data = pd.concat([act, extra], ignore_index=True)
    res = ConnectorResult(data, {"source": "erp", "origin": "activity.csv"}, kind="activity",
                          raw=data.to_csv(index=False).encode(), raw_name="activity.csv")
    rep = ingest(lake, res, sender="test", identifiers=SourceRegistry.from_store(store, PREFIX))
    assert rep.rows_curated == len(act) and rep.rows_quarantined == 2
    assert rep.rows_curated + rep.rows_quarantined == len(data)
    q = lake.sql(f"SELECT row, reason FROM quarantine WHERE batch_id = '{rep.batch_id}' ORDER BY row")
    # spreadsheet rows (header on row 1)
    assert q["row"].tolist() == [len(act) + 2, len(act) + 3]
    assert q["reason"][0] == f"source not registered: node F99 ({PREFIX}/node.F99 not found in the identifier store)"
    assert q["reason"][1] == "no source to identify: node_id empty"
    cur = lake.sql("SELECT record_id, node_id, identifier, row FROM activity ORDER BY row")
    assert (cur["identifier"] == PREFIX + "/node." + cur["node_id"]).all()
    assert cur["row"].tolist() == list(range(2, len(act) + 2))
    assert lake.read_raw(rep.batch_id) == res.raw
    # retrieval by identifier: through the boundary (node and below) …
    ent = lake.retrieve("activity", identifier=f"{PREFIX}/node.ENT")
    assert len(ent) == len(act)
    f03 = lake.retrieve("activity", identifier=f"{PREFIX}/node.F03")
    assert len(f03) and set(f03["identifier"]) == {f"{PREFIX}/node.F03"}


def test_retrieval_by_identifier_column_without_a_registered_boundary(tmp_path, demo_data, store):
    lk = Lake(tmp_path / "lake")
    act = pd.read_csv(demo_data / "activity.csv", dtype=str, keep_default_na=False)
    rep = ingest(lk, ConnectorResult(act, {"source": "erp"}, kind="activity"), sender="t",
                    identifiers=SourceRegistry.from_store(store, PREFIX))
    assert rep.rows_curated == len(act)
    got = lk.retrieve("activity", identifier=f"{PREFIX}/NODE.F03")
    assert len(got) == (act["node_id"] == "F03").sum() > 0
    assert lk.retrieve("activity", identifier=f"{PREFIX}/node.nowhere").empty


def test_facility_and_chinese_headers_name_the_source(store):
    reg = SourceRegistry.from_store(store, PREFIX)
    data = pd.DataFrame({"来源": ["购入电力"] * 3, "设施": ["F01", "熟料生产线", None], "数量": ["1", "2", "3"]})
    acc, rej = attach_identifiers(data, "activity", reg)
    assert acc["identifier"].tolist() == [f"{PREFIX}/node.F01"]
    assert rej["column"].tolist() == ["设施", "设施"] and rej["row"].tolist() == [3, 4]
    assert rej["reason"][0] == f"source not registered: node 熟料生产线 ({PREFIX}/node.熟料生产线 not found in the identifier store)"
    assert rej["reason"][1] == "no source to identify: 设施 empty"
    # node_id wins over facility; a frame without any source column passes through untouched
    both = pd.DataFrame({"node_id": ["F02", ""], "facility": ["F99", "F03"], "source": "x"})
    acc, rej = attach_identifiers(both, "activity", reg)
    assert acc["identifier"].tolist() == [f"{PREFIX}/node.F02", f"{PREFIX}/node.F03"] and rej.empty
    bare = pd.DataFrame({"来源": ["购入电力"], "数量": ["1"]})
    acc, rej = attach_identifiers(bare, "activity", reg)
    assert acc is bare and rej.empty


def test_distinct_sources_are_resolved_once_and_cached():
    calls = []

    def exists(handle):
        calls.append(handle)
        return not handle.endswith("M0005")

    reg = SourceRegistry.from_resolver(exists, PREFIX)
    data = pd.DataFrame({"meter_id": [f"M000{i % 6}" for i in range(60_000)], "value": 1.0})
    acc, rej = attach_identifiers(data, "readings", reg)
    assert sorted(calls) == sorted(f"{PREFIX}/meter.M000{i}" for i in range(6))
    assert len(rej) == 10_000 and len(acc) == 50_000
    assert set(rej["reason"]) == {f"source not registered: meter M0005 ({PREFIX}/meter.M0005 not found in the resolver)"}
    assert acc.groupby("meter_id", observed=True)["identifier"].first().to_dict() == {
        f"M000{i}": f"{PREFIX}/meter.M000{i}" for i in (0, 1, 2, 3, 4)}
    attach_identifiers(data.head(100), "readings", reg)
    assert len(calls) == 6  # cached
    reg.clear()
    attach_identifiers(data.head(10), "readings", reg)
    assert len(calls) == 12


def test_async_client_and_store_cache_sees_new_registrations(tmp_path):
    class Client:                      # the shape of an async identifier client: exists(handle)
        def __init__(self):
            self.calls = 0

        async def exists(self, handle):
            self.calls += 1
            await asyncio.sleep(0)
            return handle.lower().endswith(("meter.m0001", "meter.m0002"))

    client = Client()
    reg = SourceRegistry.from_resolver(client, PREFIX)
    acc, rej = attach_identifiers(pd.DataFrame({"meter_id": ["M0001", "M0002", "M0003", "M0001"]}), "readings", reg)
    assert acc["identifier"].tolist() == [f"{PREFIX}/meter.M0001", f"{PREFIX}/meter.M0002", f"{PREFIX}/meter.M0001"]
    assert rej["row"].tolist() == [4] and client.calls == 3

    # a store registry forgets a "not found" once the handle is registered
    s = HandleStore(f"sqlite:///{tmp_path / 'id.db'}", scrypt_n=2**10)
    b = Boundary(pd.DataFrame({"node_id": ["ENT", "M1"], "parent_id": ["", "ENT"], "level": ["enterprise", "meter"]}))
    ent, m1 = records_from_boundary(b, PREFIX)
    s.create(ent)
    reg = SourceRegistry.from_store(s, PREFIX, ttl=None)
    assert not reg.identifier_of("meter", "M1").registered
    s.create(m1)
    if hasattr(s, "changes_since"):
        assert reg.identifier_of("meter", "M1").registered
    reg.clear()
    assert reg.identifier_of("meter", "M1").identifier == f"{PREFIX}/meter.M1"


def test_carried_identifier_is_verified_not_overwritten(store):
    reg = SourceRegistry.from_store(store, PREFIX)
    data = pd.DataFrame({"meter_id": ["M0002", "M0002", "M0003", "M0004"],
                         "identifier": [f"{PREFIX}/METER.M0002", f"{PREFIX}/meter.M0003", "", None],
                         "row": [10, 11, 12, 13]})
    acc, rej = attach_identifiers(data, "readings", reg)
    # same identifier in another case: kept as the row spells it; missing: attached
    assert acc["identifier"].tolist() == [f"{PREFIX}/METER.M0002", f"{PREFIX}/meter.M0003", f"{PREFIX}/meter.M0004"]
    assert rej["row"].tolist() == [11] and rej["column"].tolist() == ["identifier"]
    assert rej["reason"][0] == (f"identifier mismatch: the row says {PREFIX}/meter.M0003, but meter M0002 is "
                                f"registered as {PREFIX}/meter.M0002")


def test_meter_registry_identifier_conflict_is_quarantined(tmp_path, demo_data, store):
    lk = Lake(tmp_path / "lake")
    meters = read_meters(demo_data / "meters.csv")
    meters["identifier"] = PREFIX + "/meter." + meters["meter_id"]
    meters.loc[meters["meter_id"] == "M0003", "identifier"] = f"{PREFIX}/meter.OLD-3"
    lk.register_meters(meters)
    r = pd.read_parquet(demo_data / "readings.parquet")
    day = r[(r["ts"] >= "2025-03-01") & (r["ts"] < "2025-03-02") & r["meter_id"].isin(["M0002", "M0003"])]
    rep = ingest(lk, ConnectorResult(day.assign(quantity="interval", unit="kWh"), {"source": "s"}, kind="readings"),
                    sender="t", identifiers=SourceRegistry.from_store(store, PREFIX))
    assert rep.rows_curated == 96 and rep.rows_quarantined == 96
    q = lk.sql("SELECT DISTINCT reason FROM quarantine")["reason"].tolist()
    assert q == [(f"identifier conflict: meter M0003 is recorded as {PREFIX}/meter.OLD-3 but registered as "
                  f"{PREFIX}/meter.M0003")]


def test_invoices_by_mapped_node_or_account_and_mapping_registry(tmp_path):
    reg = SourceRegistry.from_mapping({("account", "3300123"): f"{PREFIX}/node.ENT", "F01": f"{PREFIX}/node.F01"})
    inv = pd.DataFrame({"date": ["2025-01-31"] * 3, "supplier": "State Grid", "account_no": ["3300123", "999", "999"],
                        "node_id": ["", "", "F01"], "item": "grid", "quantity": [1.0, 2.0, 3.0], "unit": "MWh",
                        "amount": 1.0, "currency": "CNY", "needs_review": False})
    acc, rej = attach_identifiers(inv, "invoice", reg)
    assert acc["identifier"].tolist() == [f"{PREFIX}/node.ENT", f"{PREFIX}/node.F01"]
    assert rej["column"].tolist() == ["account_no"]
    assert rej["reason"][0] == "source not registered: account 999 (not in the mapping)"
    # through the lake, after an account mapping: curated invoices carry the identifier
    lk = Lake(tmp_path / "lake")
    mapping = Mapping(pd.DataFrame([{"source": "*", "kind": "account", "code": "3300123", "node_id": "F01"},
                                    {"source": "*", "kind": "account", "code": "999", "node_id": "F77"}]))
    rep = ingest(lk, ConnectorResult(inv.drop(columns="node_id"), {"source": "ocr"}, kind="invoice"), sender="t",
                    mapping=mapping, identifiers=reg)
    assert rep.rows_curated == 1 and rep.rows_quarantined == 2
    assert lk.sql("SELECT identifier FROM invoices")["identifier"].tolist() == [f"{PREFIX}/node.F01"]
    assert lk.sql("SELECT reason FROM quarantine")["reason"].str.contains("node F77").all()


def test_store_registry_uses_the_boundary_identifier_column(tmp_path, demo_data):
    s = HandleStore(f"sqlite:///{tmp_path / 'id.db'}", scrypt_n=2**10)
    b = _boundary(demo_data)
    b.loc[b["node_id"] == "F01", "identifier"] = f"{PREFIX}/plant.clinker"
    boundary = Boundary(b)
    for rec in records_from_boundary(boundary, PREFIX):
        s.create(rec)
    for bnd in (boundary, b):      # a Boundary or the lake's boundary table
        reg = SourceRegistry.from_store(s, PREFIX, boundary=bnd)
        assert reg.identifier_of("node", "F01").identifier == f"{PREFIX}/plant.clinker"
        assert reg.identifier_of("meter", "M0002").identifier == f"{PREFIX}/meter.M0002"
    # without the boundary the scheme's identifier is looked for — and is not registered
    r = SourceRegistry.from_store(s, PREFIX).identifier_of("node", "F01")
    assert not r.registered and r.candidate == f"{PREFIX}/node.F01"


def test_an_unreachable_resolver_fails_the_batch_and_keeps_the_raw_bytes(tmp_path, demo_data):
    def down(handle):
        raise ConnectionError("identifier node unreachable")

    lk = Lake(tmp_path / "lake")
    act = pd.read_csv(demo_data / "activity.csv", dtype=str, keep_default_na=False)
    res = ConnectorResult(act, {"source": "erp"}, kind="activity", raw=act.to_csv(index=False).encode())
    with pytest.raises(ConnectionError):
        ingest(lk, res, sender="t", identifiers=SourceRegistry.from_resolver(down, PREFIX))
    b = lk.batches().iloc[-1]
    assert b["status"] == "failed" and "unreachable" in b["message"]
    assert lk.read_raw(b["batch_id"]) == res.raw and "activity" not in lk.tables()
    # the retry, once the node answers, is not a duplicate upload: it is curated
    rep = ingest(lk, res, sender="t", identifiers=SourceRegistry.from_resolver(lambda h: True, PREFIX))
    assert rep.status == "stored" and rep.rows_curated == len(act)


@pytest.mark.parametrize("via", ["store", "node"])
def test_lake_ingest_cli_with_identifiers(tmp_path, demo_data, store, via):
    """`workbench lake ingest --identifiers URL --prefix P`: the store's URL or a running node's."""
    from click.testing import CliRunner
    from pg import running_server

    from workbench.cli.main import main
    from workbench.identifiers.server import create_app

    csv = tmp_path / "readings.csv"
    csv.write_text("meter_id,ts,quantity,value,unit\n"
                   "M0001,2025-01-01T00:00:00+08:00,register,100.0,kWh\n"
                   "M0001,2025-01-01T00:15:00+08:00,register,101.5,kWh\n"
                   "M0777,2025-01-01T00:00:00+08:00,register,7.0,kWh\n", encoding="utf-8")
    args = ["lake", "ingest", str(csv), "--lake", str(tmp_path / "lake"), "--kind", "readings",
            "--meters", str(demo_data / "meters.csv"), "--prefix", PREFIX]

    def run(where):
        r = CliRunner().invoke(main, [*args, "--identifiers", where])
        assert r.exit_code == 0, r.output
        return json.loads(r.output[: r.output.rindex("}") + 1])

    if via == "store":
        rep = run(store.engine.url.render_as_string(hide_password=False))
    else:
        with running_server(create_app(store, PREFIX)) as url:
            rep = run(url)
    assert rep["rows_in"] == 3 and rep["rows_quarantined"] == 1
    lk = Lake(tmp_path / "lake")
    q = lk.sql("SELECT reason FROM quarantine")
    assert q["reason"].str.startswith("source not registered: meter M0777").all() and len(q) == 1
    ids = lk.sql("SELECT DISTINCT identifier FROM readings")["identifier"].tolist()
    assert ids == [f"{PREFIX}/meter.M0001"]
    r = CliRunner().invoke(main, [*args[:-2], "--identifiers", "x"])          # no --prefix
    assert r.exit_code == 2 and "--prefix" in r.output
