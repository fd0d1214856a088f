"""connectors.webhook: authenticated push ingestion (FastAPI TestClient and a real uvicorn server)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import warnings

import httpx
import pytest
from pg import running_server

from connectors import ConnectorResult
from connectors.webhook import (
    AuditLog,
    TokenStore,
    create_app,
    hash_token,
    verify_token,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's TestClient deprecation notice about httpx
    from fastapi.testclient import TestClient

READINGS = {
    "kind": "readings",
    "records": [
        {"meter_id": "EMS-0001", "ts": "2024-05-01T00:15:00+08:00", "quantity": "active_energy",
         "value": 12.5, "unit": "kWh", "register": "interval"},
        {"meter_id": "EMS-0002", "ts": "2024-05-01T00:15:00+08:00", "quantity": "active_energy",
         "value": 3.0, "unit": "kWh"},
    ],
}


class Recorder(list):
    """The ingest callback: records results, returns a summary like the lake's ingest report."""

    def __init__(self, fail: bool = False):
        super().__init__()
        self.fail = fail

    def __call__(self, result: ConnectorResult):
        if self.fail:
            raise RuntimeError("lake unavailable")
        self.append(result)
        return {"batch_id": f"b{len(self)}", "status": "stored", "rows_in": len(result.data)}


@pytest.fixture
def env(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    tokens = {"ems": store.issue("ems", label="EMS gateway"), "erp": store.issue("erp")}
    ingest = Recorder()
    audit = AuditLog(tmp_path / "audit.jsonl")
    app = create_app(ingest, store, audit=audit)
    with TestClient(app) as client:
        yield client, tokens, ingest, audit, store


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_no_or_bad_token_is_401_and_nothing_is_ingested(env):
    client, tokens, ingest, audit, store = env
    body = json.dumps(READINGS).encode()
    bad = [
        {},
        {"Authorization": f"Basic {tokens['ems']}"},
        _auth("nonsense"),
        _auth(tokens["ems"][:-2] + "xx"),  # right id, wrong secret
        _auth("wbp_0123456789abcdef." + "A" * 43),  # well-formed, unknown id
    ]
    for headers in bad:
        r = client.post("/v1/push/ems", content=body, headers={**headers, "content-type": "application/json"})
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
    store.revoke(source="ems")
    r = client.post("/v1/push/ems", content=body, headers=_auth(tokens["ems"]))
    assert r.status_code == 401 and r.json()["detail"] == "invalid or revoked token"
    assert ingest == []
    assert [e["outcome"] for e in audit] == ["unauthorized"] * 6
    assert all(e["sha256"] is None for e in audit)  # the body was not even read


def test_token_of_another_source_is_403(env):
    client, tokens, ingest, audit, _ = env
    r = client.post("/v1/push/ems", json=READINGS, headers=_auth(tokens["erp"]))
    assert r.status_code == 403 and "not allowed to push as 'ems'" in r.json()["detail"]
    assert ingest == []
    last = list(audit)[-1]
    assert last["outcome"] == "forbidden" and last["source"] == "ems" and "token of 'erp'" in last["message"]


def test_good_token_202_raw_is_the_body_exactly(env):
    client, tokens, ingest, audit, _ = env
    # odd but valid JSON: indentation, key order, non-ASCII, a trailing newline — kept byte for byte
    body = ('{ "records": [\n  {"unit": "kWh", "value": 12.5, "quantity": "active_energy",'
            ' "ts": "2024-05-01 00:15:00", "meter_id": "总表-01"}\n ],\n "kind": "readings" }\n').encode()
    r = client.post("/v1/push/ems", content=body, headers={**_auth(tokens["ems"]), "content-type": "application/json"})
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["summary"] == {"batch_id": "b1", "status": "stored", "rows_in": 1}
    assert out["records"] == 1 and out["kind"] == "readings" and out["sha256"] == hashlib.sha256(body).hexdigest()
    (res,) = ingest
    assert isinstance(res, ConnectorResult) and res.raw == body and res.kind == "readings"
    assert res.metadata["source"] == "ems" and res.metadata["connector"] == "webhook"
    assert res.metadata["sender"].startswith("ems:") and res.sha256 == out["sha256"]
    assert res.raw_name == f"push-ems-{out['request_id']}.json"
    assert res.data.loc[0, "meter_id"] == "总表-01" and res.data.loc[0, "value"] == 12.5
    assert {"meter_id", "ts", "quantity", "value", "unit"} == set(res.data.columns)
    entry = list(audit)[-1]
    assert entry["outcome"] == "accepted" and entry["status"] == 202 and entry["records"] == 1
    assert entry["token_id"] and entry["time"] and entry["bytes"] == len(body)


def test_csv_push(env):
    client, tokens, ingest, _, _ = env
    body = "\ufeff来源,item,quantity,unit,period\ncombustion,natural_gas,12.5,万Nm3,2024-05\n".encode("utf-8")
    r = client.post("/v1/push/erp", content=body,
                    headers={**_auth(tokens["erp"]), "content-type": "text/csv; charset=utf-8",
                             "X-Workbench-Kind": "activity"})
    assert r.status_code == 202, r.text
    (res,) = ingest
    assert res.raw == body and res.kind == "activity" and res.raw_name.endswith(".csv")
    assert res.data.loc[0, "来源"] == "combustion" and res.data.loc[0, "quantity"] == 12.5


@pytest.mark.parametrize("body, ctype, query, status, needle", [
    (b'{"kind": "readings", "records": [', "application/json", "", 422, "not valid JSON"),
    (b'{"records": []}', "application/json", "", 422, "kind"),
    (b'{"kind": "invoice", "records": [{"a": 1}]}', "application/json", "", 422, "does not match"),
    (b'{"kind": "readings", "records": []}', "application/json", "", 422, "records"),
    (json.dumps({"kind": "readings", "records": [{"meter_id": "M1", "ts": "2024-05-01T00:15:00",
                                                  "value": "lots", "unit": "kWh"}]}).encode(),
     "application/json", "", 422, "records[0].quantity: Field required"),
    (json.dumps({"kind": "activity", "records": [{"period": "May 2024"}]}).encode(), "application/json", "", 422,
     "records[0].period"),
    (b"", "application/json", "", 422, "empty body"),
    (b"meter_id,ts\nM1,2024-05-01\n", "text/csv", "", 422, "CSV needs the kind"),
    (b"meter_id,ts,quantity,value,unit\nM1,2024-05-01 00:15,active_energy,x,kWh\n", "text/csv", "?kind=readings",
     422, "row 1 (line 2): value"),
    (b"hello", "text/plain", "", 415, "unsupported content type"),
])
def test_malformed_payloads_are_rejected_clearly(env, body, ctype, query, status, needle):
    client, tokens, ingest, audit, _ = env
    r = client.post(f"/v1/push/ems{query}", content=body, headers={**_auth(tokens["ems"]), "content-type": ctype})
    assert r.status_code == status, r.text
    text = r.json()["detail"] + json.dumps(r.json().get("errors", []))
    assert needle in text
    assert ingest == []
    assert list(audit)[-1]["status"] == status


def test_size_limit_and_ingest_failure(tmp_path):
    store = TokenStore(tmp_path / "t.json")
    token = store.issue("ems")
    small = TestClient(create_app(Recorder(), store, max_body_bytes=100))
    r = small.post("/v1/push/ems", json=READINGS, headers=_auth(token))
    assert r.status_code == 413
    failing = create_app(Recorder(fail=True), store)
    r = TestClient(failing).post("/v1/push/ems", json=READINGS, headers=_auth(token))
    assert r.status_code == 500 and "ingest failed: RuntimeError: lake unavailable" in r.json()["detail"]
    assert list(failing.state.audit)[-1]["outcome"] == "error"


def test_tokens_are_stored_hashed(env, tmp_path, caplog):
    client, tokens, _, audit, store = env
    text = (tmp_path / "tokens.json").read_text()
    for token in tokens.values():
        secret = token.split(".", 1)[1]
        assert token not in text and secret not in text
    assert text.count("scrypt$") == 2
    assert stat.S_IMODE(os.stat(tmp_path / "tokens.json").st_mode) == 0o600
    assert all("hash" not in t for t in store.list())
    # a fresh store from the file authenticates (hashes, not memory) and sees revocations by others
    again = TokenStore(tmp_path / "tokens.json")
    assert again.authenticate(tokens["ems"]).source == "ems"
    assert again.authenticate(tokens["ems"] + "x") is None
    h1, h2 = hash_token("secret-token"), hash_token("secret-token")
    assert h1 != h2 and verify_token("secret-token", h1) and not verify_token("secret-tokem", h1)
    # tokens never reach the log or the audit trail
    with caplog.at_level(logging.INFO, logger="connectors.webhook"):
        client.post("/v1/push/ems", json=READINGS, headers=_auth(tokens["ems"]))
        client.post("/v1/push/erp", json=READINGS, headers=_auth(tokens["ems"]))
    logged = caplog.text + (tmp_path / "audit.jsonl").read_text()
    assert "outcome=accepted" in caplog.text and "outcome=forbidden" in caplog.text
    assert all(t not in logged and t.split(".", 1)[1] not in logged for t in tokens.values())
    entries = audit.read()
    assert [e["outcome"] for e in entries] == ["accepted", "forbidden"]
    assert {"time", "source", "token_id", "client", "kind", "records", "bytes", "sha256", "status"} <= set(entries[0])


def test_health_and_openapi(env):
    client = env[0]
    assert client.get("/v1/health").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/push/{source}"]["post"]
    assert {"application/json", "text/csv"} <= set(op["requestBody"]["content"])
    assert {"202", "401", "403", "422"} <= set(op["responses"])
    assert {"ReadingsPush", "ActivityPush", "ReadingRecord", "PushAccepted"} <= set(spec["components"]["schemas"])
    assert spec["components"]["securitySchemes"]["SourceToken"]["scheme"] == "bearer"


def test_real_server_over_http(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    token = store.issue("meter-gw")
    ingest = Recorder()
    app = create_app(ingest, store, audit=tmp_path / "audit.jsonl")
    records = [{"meter_id": f"M{i:04d}", "ts": f"2024-05-01T{i // 4 % 24:02d}:{i % 4 * 15:02d}:00",
                "quantity": "active_energy", "value": i * 0.25, "unit": "kWh", "register": "cumulative"}
               for i in range(2000)]
    body = json.dumps({"kind": "readings", "records": records}, separators=(",", ":")).encode()
    with running_server(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        assert http.get("/v1/health").status_code == 200
        r = http.post("/v1/push/meter-gw", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 401 and ingest == []
        r = http.post("/v1/push/meter-gw", content=body, headers={**_auth(token), "content-type": "application/json"})
        assert r.status_code == 202, r.text
        assert r.json()["records"] == 2000 and r.json()["summary"]["rows_in"] == 2000
    (res,) = ingest
    assert res.raw == body and len(res.data) == 2000 and res.metadata["client"] == "127.0.0.1"
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert [json.loads(x)["status"] for x in lines] == [401, 202]
