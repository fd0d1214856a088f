"""connectors.webhook: authenticated push ingestion (FastAPI TestClient and a real uvicorn server)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import warnings

import httpx
import pandas as pd
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


# ---------------------------------------------------------------------------------------------
# hostile input (issue 10): every body gets a 4xx with a located one-line reason, or is stored;
# every request is audited once, with the status it got and the request id it was told
# ---------------------------------------------------------------------------------------------
def _reading(**over):
    rec = {"meter_id": "M1", "ts": "2024-05-01T00:15:00+08:00", "quantity": "active_energy", "value": 1.5,
           "unit": "kWh"}
    rec.update(over)
    return rec


def _readings_json(*records) -> bytes:
    return json.dumps({"kind": "readings", "records": list(records) or [_reading()]}, ensure_ascii=False).encode()


ACT = {"source": "combustion", "item": "natural_gas", "quantity": 12.5, "unit": "万Nm3", "period": "2024-05"}
DEEP_150 = "[" * 150 + "1" + "]" * 150  # 3 levels of envelope + 150: under the parser's 200
GBK_CSV = "来源,item,quantity,unit\n燃料燃烧,natural_gas,1,万Nm3\n"
CSV_HEAD = "meter_id,ts,quantity,value,unit\n"
J, C = "application/json", "text/csv"

HOSTILE = [
    # (id, body, content type, query, status, needle in detail/errors)
    ("nested 100k deep", b"[" * 100_000 + b"]" * 100_000, J, "", 422, "nested more than 200 levels deep"),
    ("nested 150 in a field", f'{{"kind":"activity","records":[{json.dumps(ACT)[:-1]},"x":{DEEP_150}}}]}}'.encode(),
     J, "", 422, "records[0].x: must be a string, number, boolean or null, not an array"),
    ("NaN", _readings_json(_reading()).replace(b"1.5", b"NaN"), J, "", 422, "NaN and Infinity are not JSON numbers"),
    ("-Infinity", _readings_json(_reading()).replace(b"1.5", b"-Infinity"), J, "", 422, "not JSON numbers"),
    ("1e400", _readings_json(_reading()).replace(b"1.5", b"1e400"), J, "", 422,
     "records[0].value: Input should be a finite number"),
    ("-1e999 second record", _readings_json(_reading(), _reading(value=2.5)).replace(b"2.5", b"-1e999"),
     J, "", 422, "records[1].value: Input should be a finite number"),
    ("1e400 in an extra field", json.dumps({"kind": "activity", "records": [{**ACT, "x": 1.5}]}).encode()
     .replace(b"1.5", b"1e400"), J, "", 422, "records[0].x: number out of range (not a finite 64-bit float)"),
    ("400-digit integer", json.dumps({"kind": "activity", "records": [ACT]}).encode().replace(b"12.5", b"7" * 400),
     J, "", 422, "records[0].quantity: number 7777777777"),
    ("5000-digit integer", _readings_json().replace(b"1.5", b"9" * 5000), J, "", 422, "a number with too many digits"),
    ("lone surrogate", _readings_json().replace(b'"M1"', b'"M\\ud800"'), J, "", 422, "not half of a surrogate pair"),
    ("UTF-16 with BOM", _readings_json().decode().encode("utf-16"), J, "", 422, "UTF-16 or UTF-32: JSON must be UTF-8"),
    ("UTF-16LE no BOM", _readings_json().decode().encode("utf-16-le"), J, "", 422, "UTF-16 or UTF-32"),
    # line 2 is ` "x": "\xff"}`: the bad byte is its 8th
    ("invalid UTF-8", b'{"kind": "readings",\n "x": "\xff"}', J, "", 422, "byte 0xff at line 2 column 8"),
    ("charset utf-16", _readings_json(), "application/json; charset=utf-16", "", 415, "JSON must be UTF-8"),
    ("duplicate top key", b'{"kind": "readings", "kind": "activity", "records": [{"a": 1}]}', J, "", 422,
     "body: key 'kind' appears more than once"),
    ("duplicate record key",
     _readings_json(_reading(), _reading()).replace(b'"unit": "kWh"}]', b'"unit": "kWh", "value": 2}]'),
     J, "", 422, "records[1]: key 'value' appears more than once"),
    ("array root", b"[]", J, "", 422, "must be a JSON object"),
    ("string root", b'"readings"', J, "", 422, "not a string"),
    ("number root", b"3", J, "", 422, "not a number"),
    ("null root", b"null", J, "", 422, "not null"),
    ("true as a value", _readings_json(_reading(value=True)), J, "", 422,
     "records[0].value: must be a number, not true/false"),
    ("number as meter_id", _readings_json(_reading(meter_id=5)), J, "", 422,
     "records[0].meter_id: Input should be a valid string"),
    # U+0085 (NEL) is a line break to str.splitlines: no part of a code
    ("control character in a unit", _readings_json(_reading(unit="k\x85Wh")), J, "", 422,
     "records[0].unit: contains the control character U+0085"),
    ("records an object", b'{"kind": "readings", "records": {"a": 1}}', J, "", 422,
     "records: Input should be a valid list"),
    ("kind a number", b'{"kind": 5, "records": [{"a": 1}]}', J, "", 422, "does not match any of the expected tags"),
    ("kind disagrees with ?kind", _readings_json(), J, "?kind=activity", 422, "differs from the kind 'activity'"),
    ("?kind=invoice", _readings_json(), J, "?kind=invoice", 422,
     "query: kind must be 'readings' or 'activity', not 'invoice'"),
    ("unknown query parameter", _readings_json(), J, "?knd=activity", 422, "unknown query parameter 'knd'"),
    ("reserved field", json.dumps({"kind": "activity", "records": [{**ACT, "identifier": "88.1/x"}]}).encode(), J, "",
     422, "records[0]: field 'identifier' is reserved"),
    ("blank record", json.dumps({"kind": "activity", "records": [ACT, {"source": " ", "item": None}]}).encode(), J, "",
     422, "records[1]: empty record"),
    ("257 fields", json.dumps({"kind": "activity", "records": [{**ACT, **{f"c{i}": 1 for i in range(252)}}]}).encode(),
     J, "", 422, "257 distinct fields (at most 256)"),
    ("activity without required columns", b'{"kind": "activity", "records": [{"source": "combustion"}]}', J, "", 422,
     "activity push: missing required column(s) ['item', 'quantity', 'unit']"),
    ("month 13", json.dumps({"kind": "activity", "records": [{**ACT, "period": "2024-13"}]}).encode(), J, "", 422,
     "records[0].period"),
    ("text/plain", b"hello", "text/plain", "", 415, "unsupported content type 'text/plain'"),
    ("CSV GBK declared UTF-8", GBK_CSV.encode("gbk"), "text/csv; charset=utf-8", "?kind=activity", 422,
     "CSV line 1, column '来源': corrupt bytes"),
    ("CSV UTF-16", GBK_CSV.encode("utf-16"), C, "?kind=activity", 422, "the file is UTF-16 text"),
    ("CSV charset latin-1", GBK_CSV.encode("utf-8"), "text/csv; charset=latin-1", "?kind=activity", 415,
     "charset 'latin-1' is not supported for CSV"),
    ("CSV NaN", (CSV_HEAD + "M1,2024-05-01 00:15,e,NaN,kWh\n").encode(), C, "?kind=readings", 422,
     "row 1 (line 2): value: Input should be a finite number"),
    ("CSV 1e400", (CSV_HEAD + "M1,2024-05-01 00:15,e,1e400,kWh\n").encode(), C, "?kind=readings", 422,
     "row 1 (line 2): value: Input should be a finite number"),
    ("CSV 200k-character field", (CSV_HEAD + "M" * 200_000 + ",2024-05-01,e,1,kWh\n").encode(), C, "?kind=readings",
     422, "CSV line 2: field larger than field limit"),
    ("CSV duplicate header", b"meter_id,ts,quantity,value,quantity\nM1,2024-05-01,e,1,kWh\n", C, "?kind=readings",
     422, "column 'quantity' appears twice (columns 3 and 5)"),
    ("CSV value under no header", (CSV_HEAD.replace("unit\n", "unit,\n") + "M1,2024-05-01,e,1,kWh,x\n").encode(), C,
     "?kind=readings", 422, "a value in column 6, which has no name"),
    ("CSV row too long", (CSV_HEAD + "M1,2024-05-01,e,1,kWh,x\n").encode(), C, "?kind=readings", 422,
     "row 1 (line 2) has more fields than the header (6 > 5)"),
    # row 1 spans lines 2-3 (a quoted newline), so row 2 is on line 4
    ("CSV line numbers", (CSV_HEAD + '"M\n1",2024-05-01,e,1,kWh\nM2,2024-05-01,e,x,kWh\n').encode(), C,
     "?kind=readings", 422, "row 2 (line 4): value"),
]


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    store = TokenStore(tmp / "tokens.json", cost=2 ** 10)
    token = store.issue("ems")
    ingest = Recorder()
    app = create_app(ingest, store, audit=tmp / "audit.jsonl")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, token, ingest, app.state.audit


@pytest.mark.parametrize("body, ctype, query, status, needle", [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_hostile_bodies_get_a_located_4xx_and_are_audited(hostile_app, body, ctype, query, status, needle):
    client, token, ingest, audit = hostile_app
    before_ingested, before_audited = len(ingest), len(audit.read())
    r = client.post(f"/v1/push/ems{query}", content=body, headers={**_auth(token), "content-type": ctype})
    assert r.status_code == status, r.text
    out = r.json()
    assert "\n" not in out["detail"]  # one line
    assert needle in out["detail"] + json.dumps(out.get("errors", []), ensure_ascii=False)
    assert len(ingest) == before_ingested
    entries = audit.read()
    assert len(entries) == before_audited + 1
    last = entries[-1]
    assert last["status"] == status and last["request_id"] == r.headers["x-request-id"]
    if "query parameter" in needle:  # refused from the URL alone: the body is not read
        assert last["token_id"] and last["bytes"] is None and last["sha256"] is None
    else:
        assert last["token_id"] and last["bytes"] == len(body) and last["sha256"] == hashlib.sha256(body).hexdigest()
    assert last["message"] == out["detail"]


@pytest.mark.parametrize("body, ctype, query, check", [
    # a surrogate *pair* escape is a character (U+1F600)
    (_readings_json().replace(b'"M1"', b'"M\\ud83d\\ude00"'), J, "", lambda d: d.loc[0, "meter_id"] == "M\U0001F600"),
    (b"\xef\xbb\xbf" + _readings_json(), J, "", lambda d: d.loc[0, "value"] == 1.5),  # UTF-8 BOM
    (_readings_json(), 'application/json; charset="UTF-8"', "", lambda d: len(d) == 1),
    (_readings_json(), "application/vnd.acme.push+json", "", lambda d: len(d) == 1),
    (_readings_json(), None, "", lambda d: len(d) == 1),  # no content type: JSON
    (_readings_json(_reading(value=None)), J, "?kind=readings", lambda d: pd.isna(d.loc[0, "value"])),
    # a 400-digit number is fine where it fits a float: 1 followed by 300 zeros
    (_readings_json().replace(b"1.5", b"1" + b"0" * 300), J, "", lambda d: d.loc[0, "value"] == 1e300),
    # GBK, declared or detected (the files connector's decoder)
    (GBK_CSV.encode("gbk"), "text/csv; charset=gbk", "?kind=activity",
     lambda d: d.loc[0, "来源"] == "燃料燃烧" and d.loc[0, "unit"] == "万Nm3"),
    (GBK_CSV.encode("gbk"), C, "?kind=activity", lambda d: d.loc[0, "来源"] == "燃料燃烧"),
    (GBK_CSV.encode("gb18030"), "text/csv; charset=GB2312", "?kind=activity", lambda d: d.loc[0, "quantity"] == 1.0),
    # blank lines and spreadsheet padding are skipped; the record keeps its values
    ((CSV_HEAD + "\n,,,,\nM1,2024-05-01 00:15,e,2,kWh\n").encode(), C, "?kind=readings",
     lambda d: len(d) == 1 and d.loc[0, "value"] == 2.0),
], ids=["surrogate pair", "UTF-8 BOM", "quoted charset", "+json", "no content type", "null value", "1e300 integer",
        "GBK declared", "GBK detected", "GB18030 as GB2312", "CSV padding rows"])
def test_odd_but_valid_bodies_are_accepted(hostile_app, body, ctype, query, check):
    client, token, ingest, audit = hostile_app
    headers = _auth(token) if ctype is None else {**_auth(token), "content-type": ctype}
    r = client.post(f"/v1/push/ems{query}", content=body, headers=headers)
    assert r.status_code == 202, r.text
    assert ingest[-1].raw == body and check(ingest[-1].data)
    assert audit.read()[-1]["outcome"] == "accepted"


def test_limits_are_413(tmp_path):
    store = TokenStore(tmp_path / "t.json", cost=2 ** 10)
    token = store.issue("ems")
    app = create_app(Recorder(), store, max_records=2, max_body_bytes=400)
    client = TestClient(app)
    three = _readings_json(_reading(), _reading(), _reading())
    r = client.post("/v1/push/ems", content=three, headers={**_auth(token), "content-type": J})
    assert r.status_code == 413 and "too many records (3 > 2)" in r.json()["detail"]
    csv3 = (CSV_HEAD + "M1,2024-05-01,e,1,kWh\n" * 3).encode()
    r = client.post("/v1/push/ems?kind=readings", content=csv3, headers={**_auth(token), "content-type": C})
    assert r.status_code == 413 and "too many records (> 2)" in r.json()["detail"]
    r = client.post("/v1/push/ems", content=b" " * 401, headers={**_auth(token), "content-type": J})
    assert r.status_code == 413 and "larger than 400 bytes" in r.json()["detail"]
    assert [e["outcome"] for e in app.state.audit] == ["too_large"] * 3


def test_every_request_is_audited_even_404_405_and_crashes(tmp_path, monkeypatch):
    import connectors.webhook as wh

    store = TokenStore(tmp_path / "t.json", cost=2 ** 10)
    token = store.issue("ems")
    app = create_app(Recorder(), store, audit=tmp_path / "audit.jsonl")
    client = TestClient(app, raise_server_exceptions=False)
    answers = [client.get("/v1/push/ems"), client.post("/v1/push/ems/extra", json=READINGS),
               client.get("/v1/health")]  # health is not a push: not audited
    monkeypatch.setattr(wh, "_parse", lambda *a, **k: 1 / 0)  # a bug in the parser
    answers.append(client.post("/v1/push/ems", json=READINGS, headers=_auth(token)))
    assert [a.status_code for a in answers] == [405, 404, 200, 500]
    crash = answers[-1].json()
    assert crash["request_id"] == answers[-1].headers["x-request-id"] and "internal error" in crash["detail"]
    entries = wh.AuditLog(tmp_path / "audit.jsonl").read()
    assert [(e["method"], e["status"], e["outcome"]) for e in entries] == [
        ("GET", 405, "method_not_allowed"), ("POST", 404, "not_found"), ("POST", 500, "error")]
    assert entries[2]["token_id"] and "ZeroDivisionError" in entries[2]["message"]
    assert entries[2]["request_id"] == crash["request_id"] and entries[2]["duration_ms"] >= 0


# ---------------------------------------------------------------------------------------------
# authentication: off the event loop, the same cost for every failure, throttled per address
# ---------------------------------------------------------------------------------------------
def test_every_failed_token_costs_one_scrypt_of_the_stored_cost(tmp_path, monkeypatch):
    store = TokenStore(tmp_path / "t.json", cost=2 ** 11)
    token = store.issue("ems")
    revoked = store.issue("ems")
    store.revoke(token_id=revoked[4:20])
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda pw, **kw: calls.append((len(pw), kw["n"], kw["r"], kw["p"]))
                        or real(pw, **kw))
    tries = {"right": token, "wrong secret": token[:-4] + "AAAA", "unknown id": "wbp_0123456789abcdef" + token[20:],
             "revoked": revoked, "malformed": "nonsense", "empty": ""}
    got = {}
    for what, t in tries.items():
        calls.clear()
        got[what] = (store.authenticate(t) is not None, calls[:])
    assert got["right"][0] and not any(ok for what, (ok, _) in got.items() if what != "right")
    # every answer took exactly one scrypt, with the parameters of the stored hashes, on as many bytes
    assert {c for _, (_, cs) in got.items() for c in cs} == {(len(token), 2 ** 11, 8, 1)}
    assert all(len(cs) == 1 for _, (_, cs) in got.items())


def test_throttle_sliding_window_by_hand():
    from connectors.webhook import AuthThrottle, client_key

    now = [0.0]
    t = AuthThrottle(3, 60.0, clock=lambda: now[0], max_clients=2)
    for at in (0.0, 10.0, 20.0):
        now[0] = at
        assert t.retry_after("a") is None
        t.failed("a")
    now[0] = 25.0
    assert t.retry_after("a") == 35  # the failure at 0 leaves the window at 60
    now[0] = 59.5
    assert t.retry_after("a") == 1  # 0.5 s, rounded up
    now[0] = 60.0
    assert t.retry_after("a") is None  # two failures (10, 20) left in the window
    t.failed("a")
    assert t.retry_after("a") == 10  # 10 + 60 - 60
    t.failed("b")
    t.failed("c")  # a third address: the one that failed longest ago ("a") is forgotten
    assert t.retry_after("a") is None
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert client_key("::ffff:10.0.0.7") == "10.0.0.7" and client_key("10.0.0.7") == "10.0.0.7"
    assert client_key(None) == "unknown" and client_key("testclient") == "testclient"


def test_failed_authentications_are_throttled_per_address(tmp_path):
    store = TokenStore(tmp_path / "t.json", cost=2 ** 10)
    token = store.issue("ems")
    ingest = Recorder()
    app = create_app(ingest, store, auth_failures=3, auth_window=60.0)
    now = [1000.0]
    app.state.throttle.clock = lambda: now[0]
    attacker = TestClient(app, client=("203.0.113.9", 4000))
    pusher = TestClient(app, client=("198.51.100.20", 4000))
    bad = _auth("wbp_0123456789abcdef." + "A" * 43)
    statuses = [attacker.post("/v1/push/ems", json=READINGS, headers=bad).status_code for _ in range(3)]
    now[0] += 5
    r = attacker.post("/v1/push/ems", json=READINGS, headers=bad)
    assert statuses == [401, 401, 401] and r.status_code == 429
    assert r.headers["retry-after"] == "55" and "retry after 55 s" in r.json()["detail"]
    # while throttled even a good token from that address waits (its check would cost a scrypt) …
    assert attacker.post("/v1/push/ems", json=READINGS, headers=_auth(token)).status_code == 429
    # … but other addresses, and health checks, are not affected
    assert pusher.post("/v1/push/ems", json=READINGS, headers=_auth(token)).status_code == 202
    assert attacker.get("/v1/health").status_code == 200
    now[0] += 55  # the first failure has left the window
    assert attacker.post("/v1/push/ems", json=READINGS, headers=_auth(token)).status_code == 202
    outcomes = [e["outcome"] for e in app.state.audit]
    assert outcomes == ["unauthorized"] * 3 + ["rate_limited"] * 2 + ["accepted"] * 2
    assert len(ingest) == 2


def test_parallel_guesses_from_one_address_cost_at_most_the_limit(tmp_path):
    """30 bad tokens sent at once from one address over real HTTP: the checks of one address run
    one at a time, so exactly ``auth_failures`` (5) scrypts run and the other 25 get 429."""
    from concurrent.futures import ThreadPoolExecutor

    store = TokenStore(tmp_path / "t.json", cost=2 ** 12)
    store.issue("ems")
    checked = []
    real = store.authenticate
    store.authenticate = lambda t: checked.append(t) or real(t)
    app = create_app(Recorder(), store, auth_failures=5)
    bad = _auth("wbp_0123456789abcdef." + "B" * 43)
    with running_server(app) as base, ThreadPoolExecutor(30) as pool:
        def guess(_):
            with httpx.Client(base_url=base, timeout=30) as http:
                return http.post("/v1/push/ems", json=READINGS, headers=bad).status_code

        statuses = list(pool.map(guess, range(30)))
    assert sorted(statuses) == [401] * 5 + [429] * 25
    assert len(checked) == 5 and len(app.state.audit) == 30


def test_token_checks_and_parsing_do_not_block_the_event_loop(tmp_path, monkeypatch):
    """A slow token check and a slow parse (1 s each, in worker threads) while health checks are
    answered: each health check stays far below the 1 s it would wait on a blocked loop."""
    import threading
    import time

    import connectors.webhook as wh

    store = TokenStore(tmp_path / "t.json", cost=2 ** 10)
    token = store.issue("ems")
    real_auth, real_parse = store.authenticate, wh._parse
    store.authenticate = lambda t: time.sleep(1.0) or real_auth(t)
    monkeypatch.setattr(wh, "_parse", lambda *a: time.sleep(1.0) or real_parse(*a))
    app = create_app(Recorder(), store)
    with running_server(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        result = {}
        pusher = threading.Thread(target=lambda: result.setdefault("r", httpx.post(
            f"{base}/v1/push/ems", json=READINGS, headers=_auth(token), timeout=10)))
        pusher.start()
        worst = 0.0
        while pusher.is_alive():
            t0 = time.perf_counter()
            assert http.get("/v1/health").status_code == 200
            worst = max(worst, time.perf_counter() - t0)
            time.sleep(0.05)
        pusher.join()
    assert result["r"].status_code == 202
    assert worst < 0.5, worst


def test_openapi_documents_bodies_parameters_and_every_status_answered(tmp_path):
    store = TokenStore(tmp_path / "t.json", cost=2 ** 10)
    token = store.issue("ems")
    other = store.issue("erp")
    app = create_app(Recorder(), store, max_records=500, max_body_bytes=10_000, auth_failures=1)
    client = TestClient(app, raise_server_exceptions=False)
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/push/{source}"]["post"]
    body = op["requestBody"]["content"]
    assert body["text/csv"]["schema"] == {"type": "string", "maxLength": 10_000}
    assert body["application/json"]["schema"]["discriminator"]["propertyName"] == "kind"
    schemas = spec["components"]["schemas"]
    assert schemas["ReadingsPush"]["properties"]["records"] == {
        "items": {"$ref": "#/components/schemas/ReadingRecord"}, "minItems": 1, "maxItems": 500, "title": "Records",
        "type": "array"}
    assert schemas["ActivityRecord"]["additionalProperties"]["anyOf"] == [
        {"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
    assert schemas["ActivityRecord"]["properties"]["period"]["anyOf"][0]["pattern"] == "^[0-9]{4}-(0[1-9]|1[0-2])$"
    params = {(p["in"], p["name"]): p["schema"] for p in op["parameters"]}
    assert params[("path", "source")]["pattern"] == r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
    assert params[("query", "kind")]["enum"] == ["readings", "activity"]
    assert params[("header", "X-Workbench-Kind")]["enum"] == ["readings", "activity"]
    assert op["security"] == [{"SourceToken": []}]
    assert op["responses"]["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert op["responses"]["401"]["headers"]["WWW-Authenticate"]
    for code in ("401", "403", "413", "415", "422", "429", "500"):
        assert op["responses"][code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ProblemDetail"}
    # what the service answers for this operation is what is documented — no more, no less
    answered = {
        client.post("/v1/push/ems", json=READINGS, headers=_auth(token)).status_code,
        client.post("/v1/push/ems", json=READINGS, headers=_auth(other)).status_code,
        client.post("/v1/push/ems", content=b"[" * 20_000, headers=_auth(token)).status_code,
        client.post("/v1/push/ems", content=b"x", headers={**_auth(token), "content-type": "text/plain"}).status_code,
        client.post("/v1/push/ems", content=b"[", headers=_auth(token)).status_code,
        client.post("/v1/push/ems", json=READINGS).status_code,
        client.post("/v1/push/ems", json=READINGS).status_code,
    }
    failing = TestClient(create_app(Recorder(fail=True), store))
    answered.add(failing.post("/v1/push/ems", json=READINGS, headers=_auth(token)).status_code)
    assert answered == {int(c) for c in op["responses"]} == {202, 401, 403, 413, 415, 422, 429, 500}
