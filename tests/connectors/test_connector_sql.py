"""connectors.sql: incremental, commit-after-ingest pulls from a real PostgreSQL (started by the
tests on a free port, see tests/pg.py) and from SQLite."""
# ruff: noqa: F811  (pg_proc/postgresql are fixtures imported from tests/pg.py and used as arguments)
from __future__ import annotations

import datetime as _dt
import decimal
import json
import sqlite3

import pandas as pd
import pytest
from pg import free_port, pg_proc, pg_url, postgresql  # noqa: F401  (fixtures)

from connectors import ConnectorResult
from connectors.sql import ConnectorError, SqlPull, WatermarkStore, mask_url, read

T0 = _dt.datetime(2024, 5, 1, tzinfo=_dt.timezone(_dt.timedelta(hours=8)))


def _create(conn, n: int, start: int = 0, *, ties: bool = True):
    """Meter readings table; the watermark ``changed_at`` has ties (pairs of rows share a value)."""
    conn.execute("""CREATE TABLE IF NOT EXISTS ems_readings (
        id integer PRIMARY KEY, meter_code text NOT NULL, read_at timestamp NOT NULL,
        kwh numeric(12,3) NOT NULL, changed_at timestamptz NOT NULL)""")
    rows = []
    for i in range(start, start + n):
        changed = T0 + _dt.timedelta(minutes=(i // 2 if ties else i))
        rows.append((i, f"M{i % 3:04d}", _dt.datetime(2024, 5, 1) + _dt.timedelta(minutes=15 * i),
                     decimal.Decimal(f"{i}.125"), changed))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO ems_readings VALUES (%s, %s, %s, %s, %s)", rows)
    conn.commit()


class Sink:
    """An ingest callback that records what it got and can fail on a given call."""

    def __init__(self, fail_on: int | None = None, on_call=None):
        self.results: list[ConnectorResult] = []
        self.calls = 0
        self.fail_on = fail_on
        self.on_call = on_call

    def __call__(self, result: ConnectorResult):
        self.calls += 1
        if self.on_call:
            self.on_call(self.calls, result)
        if self.fail_on == self.calls:
            raise RuntimeError("lake is full")
        self.results.append(result)
        return {"rows": len(result.data)}

    @property
    def ids(self) -> list[int]:
        return [int(i) for r in self.results for i in r.data["id"]]


def _pull(url, state, **kw) -> SqlPull:
    opts = {"kind": "readings", "watermark_column": "changed_at",
            "columns": {"meter_code": "meter_id", "read_at": "ts", "kwh": "value"},
            "defaults": {"quantity": "active_energy", "unit": "kWh"}, "source": "ems", "state": state,
            "chunk_size": 4, "retries": 1, "backoff": 0.05}
    opts.update(kw)
    return SqlPull(url, "ems_readings", **opts)


def test_initial_pull_chunks_raw_and_watermark(postgresql, pg_proc, tmp_path):
    _create(postgresql, 10)
    sink = Sink()
    pull = _pull(pg_url(pg_proc), tmp_path / "state.db")
    summary = pull.run(sink)
    assert sorted(sink.ids) == list(range(10)) and len(sink.ids) == 10  # every row exactly once
    assert summary.rows == 10 and summary.chunks == len(sink.results) >= 3
    assert all(len(r.data) <= 4 for r in sink.results)
    first = sink.results[0]
    assert first.kind == "readings" and first.metadata["source"] == "ems" and first.metadata["connector"] == "sql"
    assert {"meter_id", "ts", "quantity", "value", "unit"} <= set(first.data.columns)
    assert first.data["unit"].eq("kWh").all()
    # raw bytes: the rows as received, JSON lines
    lines = [json.loads(line) for line in first.raw.decode("utf-8").splitlines()]
    assert [row["id"] for row in lines] == list(first.data["id"])
    assert lines[0]["meter_code"] == "M0000" and lines[0]["kwh"] == "0.125"
    wm_from = pd.Timestamp(lines[0]["changed_at"]).isoformat().replace(":", "")
    assert first.raw_name.startswith(f"sql-ems_readings-{wm_from}-") and first.raw_name.endswith(".jsonl")
    assert len(first.sha256) == 64
    # the committed watermark is the last row's, tz-aware, and survives in the store with its type
    wm = WatermarkStore(tmp_path / "state.db").get(pull.state_key)
    assert wm == T0 + _dt.timedelta(minutes=4) and wm.tzinfo is not None
    assert summary.watermark_after == wm and summary.results[0] == {"rows": len(first.data)}


def test_incremental_only_new_rows_and_restart(postgresql, pg_proc, tmp_path):
    _create(postgresql, 6)
    state = tmp_path / "state.db"
    first = Sink()
    _pull(pg_url(pg_proc), state).run(first)
    assert sorted(first.ids) == list(range(6))
    _create(postgresql, 5, start=6)
    # a new SqlPull instance (a restarted service) continues from the persisted watermark
    again = Sink()
    summary = _pull(pg_url(pg_proc), state).run(again)
    assert sorted(again.ids) == list(range(6, 11)) and summary.rows == 5
    nothing = Sink()
    assert _pull(pg_url(pg_proc), state).run(nothing).rows == 0 and nothing.calls == 0


def test_ingest_failure_does_not_advance_watermark(postgresql, pg_proc, tmp_path):
    _create(postgresql, 10)
    state = tmp_path / "state.db"
    failing = Sink(fail_on=2)
    pull = _pull(pg_url(pg_proc), state)
    with pytest.raises(RuntimeError, match="lake is full"):
        pull.run(failing)
    committed = pull.watermark
    delivered = failing.ids
    assert committed == T0 + _dt.timedelta(minutes=1)  # chunk 1 (ids 0..3) only
    assert sorted(delivered) == [0, 1, 2, 3]
    retry = Sink()
    pull.run(retry)
    # the failed chunk is delivered again, nothing is lost, nothing before it is repeated
    assert sorted(delivered + retry.ids) == list(range(10))
    assert retry.results[0].data["id"].tolist() == [4, 5, 6, 7]


def test_backend_terminated_between_chunks_reconnects(postgresql, pg_proc, tmp_path):
    _create(postgresql, 12)

    def kill_puller(call, result):
        if call == 1:  # between chunk 1 and 2: kill every other session on the database
            with postgresql.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                assert all(ok for (ok,) in cur.fetchall())
            postgresql.commit()

    sink = Sink(on_call=kill_puller)
    _pull(pg_url(pg_proc), tmp_path / "state.db").run(sink)
    assert sorted(sink.ids) == list(range(12))


def test_server_gone_mid_pull_raises_and_loses_nothing(postgresql, pg_proc, tmp_path):
    _create(postgresql, 12)
    state = tmp_path / "state.db"
    url = pg_url(pg_proc, password="s3cret-pw")  # trust auth ignores it; it must never be shown

    def stop_server(call, result):
        if call == 2:
            pg_proc.stop()

    sink = Sink(on_call=stop_server)
    pull = _pull(url, state)
    try:
        with pytest.raises(ConnectorError) as err:
            pull.run(sink)
    finally:
        pg_proc.start()
    msg = str(err.value)
    assert "s3cret-pw" not in msg and "***" in msg and f"127.0.0.1:{pg_proc.port}" in msg
    assert err.value.watermark == T0 + _dt.timedelta(minutes=3)  # chunks 1 and 2 were ingested
    assert f"last committed watermark changed_at = {err.value.watermark.isoformat()}" in msg
    assert pull.watermark == err.value.watermark  # nothing half-committed
    assert sorted(sink.ids) == list(range(8))
    after = Sink()
    _pull(url, state).run(after)  # server back: the rest, and only the rest
    assert sorted(sink.ids + after.ids) == list(range(12))


def test_unreachable_database_is_a_clear_error(tmp_path):
    state = tmp_path / "state.db"
    url = f"postgresql+psycopg://wb:hunter2@127.0.0.1:{free_port()}/nowhere"
    pull = _pull(url, state, retries=1, backoff=0.01)
    with pytest.raises(ConnectorError) as err:
        pull.run(Sink())
    msg = str(err.value)
    assert "hunter2" not in msg and "wb:***@127.0.0.1" in msg and "nothing committed yet" in msg
    assert err.value.watermark is None and WatermarkStore(state).items() == {}


def test_bad_query_and_unmapped_readings_are_errors(postgresql, pg_proc, tmp_path):
    _create(postgresql, 3)
    state = tmp_path / "state.db"
    with pytest.raises(ConnectorError, match="query failed"):
        _pull(pg_url(pg_proc), state, watermark_column="no_such_column").run(Sink())
    with pytest.raises(ConnectorError, match=r"readings need column\(s\) \['ts'\]"):
        _pull(pg_url(pg_proc), state, columns={"meter_code": "meter_id", "kwh": "value"}).run(Sink())
    assert WatermarkStore(state).items() == {}


def test_sqlite_query_with_ties_across_chunks(tmp_path):
    db = tmp_path / "erp.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE fuel (doc TEXT, item TEXT, qty REAL, unit TEXT, period TEXT, posted TEXT)")
    posted = ["2024-05-01 08:00:00"] * 5 + ["2024-05-02 08:00:00"] * 2 + ["2024-05-03 08:00:00"]
    con.executemany("INSERT INTO fuel VALUES (?,?,?,?,?,?)",
                    [(f"D{i}", "raw_coal", 10.0 + i, "t", "2024-05", p) for i, p in enumerate(posted)])
    con.commit()
    state = tmp_path / "state.db"
    sink = Sink()
    pull = SqlPull(f"sqlite:///{db}", query="SELECT doc, item, qty, unit, period, posted FROM fuel",
                   kind="activity", watermark_column="posted", columns={"qty": "quantity", "doc": "document"},
                   source="erp", state=state, chunk_size=3)
    pull.run(sink)
    docs = [d for r in sink.results for d in r.data["document"]]
    assert sorted(docs) == [f"D{i}" for i in range(8)] and len(docs) == 8
    assert len(sink.results[0].data) == 5  # a tie group is never split, even past chunk_size
    assert pull.watermark == "2024-05-03 08:00:00"
    con.execute("INSERT INTO fuel VALUES ('D8', 'diesel', 1.5, 't', '2024-05', '2024-05-04 08:00:00')")
    con.commit()
    more = Sink()
    pull.run(more)
    assert [d for r in more.results for d in r.data["document"]] == ["D8"]
    snapshot = read(f"sqlite:///{db}", "fuel", kind="activity", columns={"qty": "quantity"}, source="erp")
    assert len(snapshot.data) == 9 and snapshot.raw.count(b"\n") == 9
    con.close()


def test_watermark_store_types_history_and_masking(tmp_path):
    store = WatermarkStore(tmp_path / "s.db")
    values = {
        "int": 42, "dec": decimal.Decimal("1.500"), "str": "2024-05-01 00:00:00",
        "aware": T0, "naive": _dt.datetime(2024, 5, 1, 12, 30), "date": _dt.date(2024, 5, 1),
        "ts": pd.Timestamp("2024-05-01 01:00"),
    }
    for k, v in values.items():
        store.set(k, v, rows=1)
    again = WatermarkStore(tmp_path / "s.db").items()
    for k, v in values.items():
        assert again[k] == v and type(again[k]) is (_dt.datetime if k == "ts" else type(v))
    store.set("int", 43)
    hist = store.history("int")
    assert hist["value"].tolist() == [42, 43]
    assert store.delete("int") and store.get("int") is None
    assert mask_url("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
