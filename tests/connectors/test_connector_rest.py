"""connectors.rest: incremental pulls from a real HTTP server (a FastAPI mock under uvicorn, in a
thread, on a free port of 127.0.0.1)."""
from __future__ import annotations

import asyncio
import json
import threading

import pytest
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pg import free_port, running_server

from connectors import ConnectorResult
from connectors.rest import RestPull, mask_http_url, read
from connectors.sql import ConnectorError, WatermarkStore

TOKEN = "t0k3n-for-the-ems"


def _record(i: int) -> dict:
    # watermark "updated" has ties: records 2k and 2k+1 share a value
    return {"id": i, "meter": {"code": f"M{i % 3:04d}"}, "ts": f"2024-05-01T{i // 4:02d}:{(i % 4) * 15:02d}:00+08:00",
            "kwh": i + 0.5, "updated": f"2024-05-01T00:{i // 2:02d}:00Z"}


STATE: dict = {}


def _reset():
    STATE.clear()
    STATE.update(records=[_record(i) for i in range(10)], fail={}, calls=[])


app = FastAPI()


def _check(authorization):
    if authorization != f"Bearer {TOKEN}":
        raise HTTPException(401, "bad token")


def _since(since):
    rows = [r for r in STATE["records"] if since is None or r["updated"] > since]
    return sorted(rows, key=lambda r: (r["updated"], r["id"]))


def _maybe_fail(key):
    left = STATE["fail"].get(key, 0)
    if left:
        STATE["fail"][key] = left - 1
        return JSONResponse({"error": "database down"}, status_code=500)
    return None


@app.get("/api/v1/readings")
def readings(request: Request, since: str | None = None, page: int = 1, size: int = 3,
             authorization: str | None = Header(None)):
    _check(authorization)
    STATE["calls"].append(str(request.url))
    failed = _maybe_fail(("readings", page))
    if failed:
        return failed
    rows = _since(since)
    return {"data": rows[(page - 1) * size: page * size], "page": page}


@app.get("/api/v1/cursor")
def cursor(request: Request, since: str | None = None, after: int = 0, authorization: str | None = Header(None)):
    _check(authorization)
    STATE["calls"].append(str(request.url))
    rows = _since(since)
    nxt = None
    if after + 4 < len(rows):
        nxt = f"/api/v1/cursor?after={after + 4}" + (f"&since={since}" if since else "")
    return {"result": {"items": rows[after: after + 4]}, "links": {"next": nxt}}


@app.get("/api/v1/linked")
def linked(request: Request, after: int = 0, authorization: str | None = Header(None)):
    _check(authorization)
    rows = _since(None)
    headers = {}
    if after + 5 < len(rows):
        headers["Link"] = f'<{request.url_for("linked")}?after={after + 5}>; rel="next"'
    return JSONResponse(rows[after: after + 5], headers=headers)


@app.get("/api/v1/bad")
def bad(authorization: str | None = Header(None)):
    STATE["calls"].append("bad")
    return Response(b'{"data": [ {"id": 1,', media_type="application/json")


@app.get("/api/v1/slow")
async def slow():
    await asyncio.sleep(0.6)
    return {"data": []}


@pytest.fixture(scope="module")
def server():
    with running_server(app) as base:
        yield base


@pytest.fixture(autouse=True)
def fresh():
    _reset()
    yield


def _pull(base, tmp_path, *, path="/api/v1/readings", **kw) -> RestPull:
    opts = {"token": TOKEN, "watermark_param": "since", "watermark_field": "updated", "pagination": "page",
            "page_size": 3, "page_size_param": "size", "kind": "readings",
            "columns": {"meter.code": "meter_id", "kwh": "value"},
            "defaults": {"quantity": "active_energy", "unit": "kWh"}, "source": "ems-api",
            "state": tmp_path / "state.db", "retries": 2, "backoff": 0.01, "timeout": 5}
    opts.update(kw)
    return RestPull(base, path, **opts)


class Sink(list):
    def __init__(self, fail_on=None):
        super().__init__()
        self.fail_on, self.calls = fail_on, 0

    def __call__(self, result: ConnectorResult):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("ingest failed")
        self.append(result)
        return {"rows": len(result.data)}

    @property
    def ids(self):
        return [int(i) for r in self for i in r.data["id"]]


def test_page_pagination_watermark_and_raw_bytes(server, tmp_path):
    sink = Sink()
    pull = _pull(server, tmp_path)
    summary = pull.run(sink)
    assert sink.ids == list(range(10)) and summary.rows == 10 and summary.chunks == 4
    first = sink[0]
    assert first.kind == "readings" and first.metadata["source"] == "ems-api" and first.metadata["page"] == 1
    assert {"meter_id", "ts", "quantity", "value", "unit"} <= set(first.data.columns)
    assert first.data["meter_id"].tolist() == ["M0000", "M0001", "M0002"]
    # raw = the response body exactly as received
    assert json.loads(first.raw) == {"data": [_record(i) for i in range(3)], "page": 1}
    assert first.raw_name == "rest-readings-2024-05-01T000000Z-2024-05-01T000100Z-p1.json"
    assert pull.watermark == "2024-05-01T00:04:00Z" == summary.watermark_after
    assert "since" not in STATE["calls"][0]
    # incremental: only new records; the committed watermark is sent as ?since=
    STATE["records"] += [_record(10), _record(11)]
    STATE["calls"].clear()
    more = Sink()
    _pull(server, tmp_path).run(more)  # a new instance: the watermark persisted
    assert more.ids == [10, 11]
    assert "since=2024-05-01T00%3A04%3A00Z" in STATE["calls"][0]


def test_next_link_and_link_header_pagination(server, tmp_path):
    sink = Sink()
    pull = _pull(server, tmp_path, path="/api/v1/cursor", pagination="next", next_field="links.next",
                 records_field="result.items", page_size=None)
    assert pull.run(sink).chunks == 3 and sink.ids == list(range(10))
    assert pull.watermark == "2024-05-01T00:04:00Z"
    linked = Sink()
    _pull(server, tmp_path, path="/api/v1/linked", pagination="next", watermark_param=None,
          state_key="linked").run(linked)
    assert len(linked) == 2 and linked.ids == list(range(10))


def test_http_500_is_retried_then_succeeds(server, tmp_path):
    STATE["fail"][("readings", 1)] = 2
    sink = Sink()
    _pull(server, tmp_path, retries=3).run(sink)
    assert sink.ids == list(range(10))
    assert sum("page=1" in c for c in STATE["calls"]) == 3  # two 500s, then success


def test_persistent_5xx_mid_pull_commits_nothing_past_it(server, tmp_path):
    STATE["fail"][("readings", 2)] = 99
    sink = Sink()
    pull = _pull(server, tmp_path, retries=1)
    with pytest.raises(ConnectorError) as err:
        pull.run(sink)
    msg = str(err.value)
    assert f"{server}/api/v1/readings?" in msg and "page=2" in msg and "HTTP 500" in msg
    assert "failed after 2 attempt(s)" in msg
    # page 1 = ids 0,1,2 (updated 00:00, 00:00, 00:01); id 3 shares 00:01 → only 00:00 is complete
    assert sink.ids == [0, 1, 2] and pull.watermark == "2024-05-01T00:00:00Z" == err.value.watermark
    assert "last committed watermark updated = '2024-05-01T00:00:00Z'" in msg
    STATE["fail"].clear()
    again = Sink()
    pull.run(again)
    assert again.ids == list(range(2, 10))  # re-delivers the incomplete tie group only; nothing lost
    assert sorted(set(sink.ids + again.ids)) == list(range(10))


def test_ingest_failure_does_not_commit(server, tmp_path):
    pull = _pull(server, tmp_path, page_size=4)
    sink = Sink(fail_on=2)
    with pytest.raises(RuntimeError, match="ingest failed"):
        pull.run(sink)
    # page 1 = ids 0..3; its last watermark (00:01) might continue on page 2, so 00:00 is committed
    assert sink.ids == [0, 1, 2, 3] and pull.watermark == "2024-05-01T00:00:00Z"
    again = Sink()
    pull.run(again)
    assert again.ids == list(range(2, 10))


def test_unordered_api_commits_only_after_the_last_page(server, tmp_path):
    pull = _pull(server, tmp_path, ordered=False)
    with pytest.raises(RuntimeError):
        pull.run(Sink(fail_on=3))
    assert pull.watermark is None
    pull.run(Sink())
    assert pull.watermark == "2024-05-01T00:04:00Z"


def test_bad_json_timeout_refused_and_401_are_clear_errors(server, tmp_path):
    with pytest.raises(ConnectorError, match=r"/api/v1/bad failed after 3 attempt\(s\): response is not valid JSON"):
        _pull(server, tmp_path, path="/api/v1/bad", pagination="none").run(Sink())
    assert STATE["calls"].count("bad") == 3
    with pytest.raises(ConnectorError, match="timed out after 0.2 s"):
        _pull(server, tmp_path, path="/api/v1/slow", pagination="none", timeout=0.2, retries=0).run(Sink())
    with pytest.raises(ConnectorError, match="connection failed"):
        _pull(f"http://127.0.0.1:{free_port()}", tmp_path, retries=1).run(Sink())
    STATE["calls"].clear()
    with pytest.raises(ConnectorError, match=r"HTTP 401 .*check the token"):
        _pull(server, tmp_path, token="wrong").run(Sink())
    assert STATE["calls"] == []  # 4xx: not retried (the mock rejects before recording)
    assert WatermarkStore(tmp_path / "state.db").items() == {}


def test_schedule_runs_max_runs_and_survives_a_failed_run(server, tmp_path):
    pull = _pull(server, tmp_path, retries=0)
    STATE["fail"][("readings", 1)] = 1  # the first run fails
    sink = Sink()
    summaries = pull.run_every(0.02, sink, max_runs=3)
    assert len(summaries) == 3
    assert summaries[0].error and "HTTP 500" in summaries[0].error
    assert summaries[1].rows == 10 and summaries[2].rows == 0
    assert sink.ids == list(range(10))
    stop = threading.Event()
    stop.set()
    assert pull.run_every(10, sink, stop_event=stop) == []
    stop2 = threading.Event()
    threading.Timer(0.15, stop2.set).start()
    assert 1 <= len(pull.run_every(0.05, sink, stop_event=stop2)) <= 5  # stops when the event is set


def test_one_shot_read_and_url_masking(server):
    res = read(f"{server}/api/v1/readings", token=TOKEN, columns={"meter.code": "meter_id", "kwh": "value"},
               defaults={"quantity": "active_energy", "unit": "kWh"}, source="ems-api")
    assert len(res.data) == 3 and res.raw.startswith(b'{"data":')
    assert mask_http_url("https://u:pw@h/x?api_key=abc&since=1") == "https://u:***@h/x?api_key=%2A%2A%2A&since=1"
