"""Enterprise identifier node: HandleStore (SQLAlchemy Core, SQLite) + Handle.net JSON REST API."""
from __future__ import annotations

import base64
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient

from workbench.identifiers.model import (
    HandleRecord,
    HandleValue,
    admin_value,
)
from workbench.identifiers.server import create_app
from workbench.identifiers.store import (
    HandleStore,
    hash_secret,
    verify_secret,
)

PREFIX = "88.100.24"
ADMIN = f"{PREFIX}/admin"
ADMIN_USER = f"300:{ADMIN}"
AUTH = ("300%3A88.100.24/admin", "s3cret")
USER2 = f"{PREFIX}/alice"
AUTH2 = ("300%3A88.100.24/alice", "alicepw")


def _seckey(pw: str) -> HandleValue:
    return HandleValue(index=300, type="HS_SECKEY", data={"format": "string", "value": pw})


@pytest.fixture
def store(db_url):
    s = HandleStore(db_url, scrypt_n=2**10)
    s.create(HandleRecord(ADMIN, [_seckey("s3cret"), admin_value(PREFIX)]), who="bootstrap")
    # a non-admin user: owns only handles whose HS_ADMIN names her
    s.create(HandleRecord(USER2, [_seckey("alicepw"), admin_value(PREFIX)]), who="bootstrap")
    yield s
    s.close()


@pytest.fixture
def client(store):
    return TestClient(create_app(store, PREFIX, admins=[ADMIN_USER]))


def _values(*pairs):
    return {"values": [{"index": i, "type": t, "data": d} for i, t, d in pairs]}


def _register(client, suffix="dev.1", body=None, **params):
    body = body or _values((1, "URL", "https://example.com/dev1"),
                           (2, "DESC", {"format": "string", "value": "meter 1"}))
    return client.put(f"/api/handles/{PREFIX}/{suffix}", json=body, auth=AUTH, params=params)


# --------------------------------------------------------------------------- store


def test_secret_hashing_and_constant_time_verify(store):
    h = hash_secret("pw", n=2**10)
    assert h.startswith("scrypt$1024$") and "pw" not in h.split("$")[4:]
    assert verify_secret("pw", h) and not verify_secret("pw2", h) and not verify_secret("pw", "plain")
    assert hash_secret("pw", n=2**10) != h                       # salted
    stored = store.get(ADMIN, indices=[300]).values[0]
    assert stored.value.startswith("scrypt$") and stored.pub_read is False
    assert store.verify(ADMIN, 300, "s3cret") and not store.verify(ADMIN, 300, "nope")
    assert not store.verify(ADMIN, 100, "s3cret")               # not an HS_SECKEY
    assert not store.verify(f"{PREFIX}/nobody", 300, "s3cret")


# --------------------------------------------------------------------------- API: happy path


def test_register_retrieve_filters(client):
    r = _register(client)
    assert r.status_code == 201 and r.json() == {"responseCode": 1, "handle": f"{PREFIX}/dev.1"}
    r = client.get(f"/api/handles/{PREFIX}/dev.1")
    body = r.json()
    assert r.status_code == 200 and body["responseCode"] == 1 and body["handle"] == f"{PREFIX}/dev.1"
    assert [(v["index"], v["type"]) for v in body["values"]] == [(1, "URL"), (2, "DESC")]
    v1 = body["values"][0]
    assert v1["data"] == {"format": "string", "value": "https://example.com/dev1"}   # plain string accepted
    assert v1["timestamp"].endswith("Z") and v1["ttl"] == 86400
    # filters: index and type, repeated, union
    r = client.get(f"/api/handles/{PREFIX}/dev.1", params=[("index", "2")])
    assert [v["index"] for v in r.json()["values"]] == [2]
    r = client.get(f"/api/handles/{PREFIX}/dev.1", params=[("type", "URL")])
    assert [v["index"] for v in r.json()["values"]] == [1]
    r = client.get(f"/api/handles/{PREFIX}/dev.1", params=[("index", "2"), ("type", "URL")])
    assert [v["index"] for v in r.json()["values"]] == [1, 2]
    # nothing matches → 200, rc 200, empty values
    r = client.get(f"/api/handles/{PREFIX}/dev.1", params=[("type", "EMAIL"), ("index", "9")])
    assert r.status_code == 200 and r.json()["responseCode"] == 200 and r.json()["values"] == []
    # handle echoed exactly as requested (case-insensitive look-up)
    r = client.get(f"/api/handles/{PREFIX}/DEV.1")
    assert r.status_code == 200 and r.json()["handle"] == f"{PREFIX}/DEV.1"


def test_record_body_with_handle_and_suffix_with_slash(client):
    body = {"handle": f"{PREFIX}/a/b", **_values((1, "URL", "https://x/ab"))}
    r = client.put(f"/api/handles/{PREFIX}/a/b", json=body, auth=AUTH)
    assert r.status_code == 201
    assert client.get(f"/api/handles/{PREFIX}/a/b").json()["values"][0]["data"]["value"] == "https://x/ab"
    r = client.put(f"/api/handles/{PREFIX}/a/c", json=body, auth=AUTH)          # body handle ≠ path
    assert r.status_code == 400 and r.json()["responseCode"] == 202


def test_modify_replace_and_overwrite(client, store):
    _register(client)
    # modify one index, keep the others
    r = client.put(f"/api/handles/{PREFIX}/dev.1", params=[("index", "1"), ("overwrite", "true")],
                   json=_values((1, "URL", "https://example.com/moved")), auth=AUTH)
    assert r.status_code == 200 and r.json()["responseCode"] == 1
    vals = client.get(f"/api/handles/{PREFIX}/dev.1").json()["values"]
    assert [(v["index"], v["data"]["value"]) for v in vals] == [(1, "https://example.com/moved"), (2, "meter 1")]
    # index=various: every value in the body, adding index 3
    r = client.put(f"/api/handles/{PREFIX}/dev.1", params={"index": "various"},
                   json=_values((3, "EMAIL", "ops@example.com")), auth=AUTH)
    assert r.status_code == 200
    assert [v["index"] for v in client.get(f"/api/handles/{PREFIX}/dev.1").json()["values"]] == [1, 2, 3]
    # overwrite=false with an existing index → 409 rc 201
    r = client.put(f"/api/handles/{PREFIX}/dev.1", params={"index": "1", "overwrite": "false"},
                   json=_values((1, "URL", "https://x")), auth=AUTH)
    assert r.status_code == 409 and r.json()["responseCode"] == 201
    # no index + overwrite (default true): replace the whole record
    r = client.put(f"/api/handles/{PREFIX}/dev.1", json=_values((5, "URL", "https://only")), auth=AUTH)
    assert r.status_code == 200
    assert [v["index"] for v in client.get(f"/api/handles/{PREFIX}/dev.1").json()["values"]] == [5]
    # index= on a missing handle → 404 rc 100
    r = client.put(f"/api/handles/{PREFIX}/nope", params={"index": "1"}, json=_values((1, "URL", "x")), auth=AUTH)
    assert r.status_code == 404 and r.json() == {"responseCode": 100, "handle": f"{PREFIX}/nope",
                                                 "message": f"handle {PREFIX}/nope not found"}


def test_delete_value_and_handle(client):
    _register(client)
    r = client.delete(f"/api/handles/{PREFIX}/dev.1", params={"index": "2"}, auth=AUTH)
    assert r.status_code == 200 and r.json() == {"responseCode": 1, "handle": f"{PREFIX}/dev.1"}
    assert [v["index"] for v in client.get(f"/api/handles/{PREFIX}/dev.1").json()["values"]] == [1]
    r = client.delete(f"/api/handles/{PREFIX}/dev.1", params={"index": "2"}, auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 200
    r = client.delete(f"/api/handles/{PREFIX}/dev.1", auth=AUTH)
    assert r.status_code == 200 and r.json()["responseCode"] == 1
    r = client.get(f"/api/handles/{PREFIX}/dev.1")
    assert r.status_code == 404 and r.json()["responseCode"] == 100 and r.json()["handle"] == f"{PREFIX}/dev.1"
    r = client.delete(f"/api/handles/{PREFIX}/dev.1", auth=AUTH)
    assert r.status_code == 404 and r.json()["handle"] == f"{PREFIX}/dev.1"     # pyhandle needs 'handle'


def test_list_with_paging(client):
    for i in range(5):
        assert _register(client, f"item.{i}").status_code == 201
    # listing reveals every handle: prefix administrators only
    r = client.get("/api/handles", params={"prefix": PREFIX})
    assert r.status_code == 401 and r.json()["responseCode"] == 402
    r = client.get("/api/handles", params={"prefix": PREFIX}, auth=AUTH2)
    assert r.status_code == 403 and r.json()["responseCode"] == 400
    r = client.get("/api/handles", params={"prefix": PREFIX}, auth=AUTH)
    body = r.json()
    assert r.status_code == 200 and body["responseCode"] == 1 and body["prefix"] == PREFIX
    assert body["totalCount"] == "7" and len(body["handles"]) == 7          # + admin, alice
    r = client.get("/api/handles", params={"prefix": PREFIX, "page": 1, "pageSize": 3}, auth=AUTH).json()
    assert r["handles"] == [f"{PREFIX}/item.1", f"{PREFIX}/item.2", f"{PREFIX}/item.3"]
    r = client.get("/api/handles", params={"prefix": PREFIX, "pageSize": 0}, auth=AUTH).json()
    assert r["totalCount"] == "7" and r["handles"] == []
    r = client.get("/api/handles", params={"prefix": "88.999.1"}, auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 301
    r = client.get("/api/handles", params={"prefix": PREFIX, "page": "x"}, auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 202


def test_reverse_lookup(client):
    _register(client, "a")
    _register(client, "b")
    _register(client, "c", body=_values((1, "URL", "https://other")))
    for path in ("/api/hrls/handles/", "/hrls/handles/"):
        r = client.get(path, params={"URL": "https://example.com/dev1"})
        assert r.status_code == 200 and r.json() == [f"{PREFIX}/a", f"{PREFIX}/b"]
    assert client.get("/hrls/handles/", params={"URL": "https://none"}).json() == []
    assert client.get("/hrls/handles/", params={"URL": "https://other", "prefix": PREFIX}).json() == [f"{PREFIX}/c"]


def test_mint_new_suffix(client, store):
    r = client.put(f"/api/handles/{PREFIX}/", params={"mintNewSuffix": "true"},
                   json=_values((1, "URL", "https://minted")), auth=AUTH)
    assert r.status_code == 201 and r.json()["responseCode"] == 1
    minted = r.json()["handle"]
    assert minted.startswith(f"{PREFIX}/") and len(minted) > len(PREFIX) + 8
    assert client.get(f"/api/handles/{minted}").json()["values"][0]["data"]["value"] == "https://minted"
    r = client.put(f"/api/handles/{PREFIX}/", json=_values((1, "URL", "https://x")), auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 102


def test_openapi(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200 and "/api/handles/{pfx}/{suffix}" in r.json()["paths"]


# --------------------------------------------------------------------------- API: errors


def test_invalid_handle_and_prefix_not_ours(client):
    r = client.get("/api/handles/99.1.2/x")
    assert r.status_code == 400 and r.json()["responseCode"] == 102 and r.json()["handle"] == "99.1.2/x"
    assert "message" in r.json()
    r = client.put(f"/api/handles/{PREFIX}/bad suffix", json=_values((1, "URL", "x")), auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 102
    r = client.get("/api/handles/88.999.1/x")
    assert r.status_code == 400 and r.json()["responseCode"] == 301
    r = client.put("/api/handles/88.999.1/x", json=_values((1, "URL", "x")), auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 301


def test_exists_with_overwrite_false(client):
    _register(client)
    r = _register(client, overwrite="false")
    assert r.status_code == 409 and r.json()["responseCode"] == 101 and r.json()["handle"] == f"{PREFIX}/dev.1"


def test_auth_errors(client, store):
    body = _values((1, "URL", "https://x"))
    r = client.put(f"/api/handles/{PREFIX}/n1", json=body)
    assert r.status_code == 401 and r.json()["responseCode"] == 402 and r.json()["handle"] == f"{PREFIX}/n1"
    r = client.delete(f"/api/handles/{PREFIX}/admin")
    assert r.status_code == 401 and r.json()["responseCode"] == 402
    r = client.put(f"/api/handles/{PREFIX}/n1", json=body, auth=("300%3A88.100.24/admin", "wrong"))
    assert r.status_code == 403 and r.json()["responseCode"] == 403
    r = client.put(f"/api/handles/{PREFIX}/n1", json=body, auth=("301%3A88.100.24/admin", "s3cret"))
    assert r.status_code == 403 and r.json()["responseCode"] == 403
    r = client.put(f"/api/handles/{PREFIX}/n1", json=body, auth=("admin", "s3cret"))
    assert r.status_code == 403 and r.json()["responseCode"] == 403
    # un-encoded ':' in the user is tolerated
    token = base64.b64encode(b"300:88.100.24/admin:s3cret").decode()
    r = client.put(f"/api/handles/{PREFIX}/n1", json=body, headers={"Authorization": f"Basic {token}"})
    assert r.status_code == 201
    assert store.get(f"{PREFIX}/n1") is not None


def test_hs_admin_permissions(client, store):
    # alice (not a prefix admin) cannot create handles
    r = client.put(f"/api/handles/{PREFIX}/a1", json=_values((1, "URL", "https://x")), auth=AUTH2)
    assert r.status_code == 403 and r.json()["responseCode"] == 400
    # a record whose HS_ADMIN names alice: add/modify/remove values but not delete the handle
    perms = "000011110000"     # read, add, remove, modify value only
    body = {"values": [{"index": 1, "type": "URL", "data": "https://x"},
                       {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {
                           "handle": USER2, "index": 300, "permissions": perms}}}]}
    assert client.put(f"/api/handles/{PREFIX}/a1", json=body, auth=AUTH).status_code == 201
    r = client.put(f"/api/handles/{PREFIX}/a1", params={"index": "1"}, json=_values((1, "URL", "https://y")),
                   auth=AUTH2)
    assert r.status_code == 200, r.json()
    r = client.put(f"/api/handles/{PREFIX}/a1", params={"index": "2"}, json=_values((2, "EMAIL", "a@b")),
                   auth=AUTH2)
    assert r.status_code == 200
    r = client.delete(f"/api/handles/{PREFIX}/a1", params={"index": "2"}, auth=AUTH2)
    assert r.status_code == 200
    r = client.delete(f"/api/handles/{PREFIX}/a1", auth=AUTH2)
    assert r.status_code == 403 and r.json()["responseCode"] == 400 and "delete_handle" in r.json()["message"]
    r = client.put(f"/api/handles/{PREFIX}/a1", params={"index": "100"}, auth=AUTH2, json={"values": [
        {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {
            "handle": USER2, "index": 300, "permissions": "111111111111"}}}]})
    assert r.status_code == 403 and "modify_admin" in r.json()["message"]
    # alice may not touch the admin's own handle
    r = client.delete(f"/api/handles/{PREFIX}/admin", auth=AUTH2)
    assert r.status_code == 403 and r.json()["responseCode"] == 400
    assert store.get(ADMIN) is not None


def test_bad_json_invalid_value_oversized(client):
    url = f"/api/handles/{PREFIX}/j1"
    r = client.put(url, content=b"{not json", auth=AUTH, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["responseCode"] == 202 and r.json()["handle"] == f"{PREFIX}/j1"
    r = client.put(url, json={"nothing": []}, auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 202
    r = client.put(url, json=_values((0, "URL", "x")), auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 202
    r = client.put(url, json=_values((1, "URL", {"format": "nope", "value": "x"})), auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 202
    r = client.put(url, json=_values((1, "URL", "x"), (1, "EMAIL", "y")), auth=AUTH)     # duplicate index
    assert r.status_code == 400 and r.json()["responseCode"] == 202
    r = client.put(url, json=_values((1, "DESC", "x" * 70_000)), auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 202
    assert r.json()["message"].startswith("record too large")
    assert client.get(url).status_code == 404


def test_transactional_put_writes_nothing(client, store):
    _register(client)
    before = client.get(f"/api/handles/{PREFIX}/dev.1").json()["values"]
    n_audit = len(store.audit_rows())
    body = _values((1, "URL", "https://changed"), (3, "HEX", {"format": "hex", "value": "xyz"}))
    r = client.put(f"/api/handles/{PREFIX}/dev.1", params={"index": "various"}, json=body, auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 202
    assert client.get(f"/api/handles/{PREFIX}/dev.1").json()["values"] == before
    # a permission failure detected inside the transaction also leaves nothing
    r = client.put(f"/api/handles/{PREFIX}/dev.1", json=_values((1, "URL", "https://changed")), auth=AUTH2)
    assert r.status_code == 403
    assert client.get(f"/api/handles/{PREFIX}/dev.1").json()["values"] == before
    assert len(store.audit_rows()) == n_audit


def test_non_public_values_and_secrets(client):
    body = {"values": [{"index": 1, "type": "URL", "data": "https://pub"},
                       {"index": 2, "type": "SECRET.NOTE", "data": "internal", "permissions": "1100"}]}
    assert client.put(f"/api/handles/{PREFIX}/p1", json=body, auth=AUTH).status_code == 201
    anon = client.get(f"/api/handles/{PREFIX}/p1").json()
    assert [v["index"] for v in anon["values"]] == [1]
    adm = client.get(f"/api/handles/{PREFIX}/p1", auth=AUTH).json()
    assert [v["index"] for v in adm["values"]] == [1, 2] and adm["values"][1]["permissions"] == "1100"
    assert [v["index"] for v in client.get(f"/api/handles/{PREFIX}/p1", auth=AUTH2).json()["values"]] == [1]
    pub = client.get(f"/api/handles/{PREFIX}/p1", params={"publicOnly": "true"}, auth=AUTH).json()
    assert [v["index"] for v in pub["values"]] == [1]
    assert client.get(f"/api/handles/{PREFIX}/p1", params={"index": "2"}).json()["responseCode"] == 200
    # the user's own handle resolves (rc 1) but HS_SECKEY is never public, and only hashed for admins
    own = client.get(f"/api/handles/{PREFIX}/admin")
    assert own.status_code == 200 and own.json()["responseCode"] == 1
    assert [v["type"] for v in own.json()["values"]] == ["HS_ADMIN"]
    sec = client.get(f"/api/handles/{PREFIX}/admin", params={"index": "300"}, auth=AUTH).json()["values"][0]
    assert sec["data"]["value"].startswith("scrypt$") and "s3cret" not in sec["data"]["value"]
    # a GET with wrong credentials is refused rather than silently anonymous
    assert client.get(f"/api/handles/{PREFIX}/p1", auth=("300%3A88.100.24/admin", "x")).status_code == 403


def test_new_seckey_via_api_is_hashed(client, store):
    body = {"values": [{"index": 300, "type": "HS_SECKEY", "data": "bobpw"},
                       {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {
                           "handle": f"{PREFIX}/bob", "index": "300", "permissions": "011111110011"}}}]}
    assert client.put(f"/api/handles/{PREFIX}/bob", json=body, auth=AUTH).status_code == 201
    assert store.verify(f"{PREFIX}/bob", 300, "bobpw")
    assert all("bobpw" not in str(row["after"]) for row in store.audit_rows(f"{PREFIX}/bob"))
    # bob can now authenticate and modify his own handle (HS_ADMIN names 300:bob)
    r = client.put(f"/api/handles/{PREFIX}/bob", params={"index": "1"}, json=_values((1, "URL", "https://bob")),
                   auth=("300%3A88.100.24/bob", "bobpw"))
    assert r.status_code == 200


def test_audit_rows(client, store):
    _register(client)
    client.put(f"/api/handles/{PREFIX}/dev.1", params={"index": "1"},
               json=_values((1, "URL", "https://moved")), auth=AUTH)
    client.delete(f"/api/handles/{PREFIX}/dev.1", params={"index": "2"}, auth=AUTH)
    client.delete(f"/api/handles/{PREFIX}/dev.1", auth=AUTH)
    rows = store.audit_rows(f"{PREFIX}/dev.1")
    assert [r["what"] for r in rows] == ["create", "modify", "remove_values", "delete"]
    assert {r["who"] for r in rows} == {ADMIN_USER}
    assert all(r["at"] is not None for r in rows)
    assert rows[0]["before"] is None and [v["index"] for v in rows[0]["after"]["values"]] == [1, 2]
    assert rows[1]["before"]["values"][0]["data"]["value"] == "https://example.com/dev1"
    assert rows[1]["after"]["values"][0]["data"]["value"] == "https://moved"
    assert [v["index"] for v in rows[2]["after"]["values"]] == [1]
    assert rows[3]["after"] is None and rows[3]["before"]["handle"] == f"{PREFIX}/dev.1"


# --------------------------------------------------------------------------- pyhandle against uvicorn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(store):
    import uvicorn
    port = _free_port()
    config = uvicorn.Config(create_app(store, PREFIX, admins=[ADMIN_USER]), host="127.0.0.1", port=port,
                            log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_pyhandle_client_against_live_server(live_server, store):
    from pyhandle.handleclient import PyHandleClient
    client = PyHandleClient("rest").instantiate_with_username_and_password(
        live_server, ADMIN_USER, "s3cret", HTTPS_verify=False)
    handle = f"{PREFIX}/py.1"
    assert client.register_handle(handle, "https://example.com/py1", CHECKSUM="abc") == handle
    assert client.get_value_from_handle(handle, "URL") == "https://example.com/py1"
    assert client.get_value_from_handle(handle, "CHECKSUM") == "abc"
    client.modify_handle_value(handle, URL="https://example.com/py1-moved")
    assert client.get_value_from_handle(handle, "URL") == "https://example.com/py1-moved"
    client.delete_handle_value(handle, "CHECKSUM")
    assert client.get_value_from_handle(handle, "CHECKSUM") is None
    assert client.delete_handle(handle) == handle
    assert client.retrieve_handle_record(handle) is None
    assert store.get(handle) is None
    assert {r["who"] for r in store.audit_rows(handle)} == {ADMIN_USER}


# --------------------------------------------------------------------------- bearer tokens


def test_bearer_tokens_for_services(client, store):
    from click.testing import CliRunner

    from workbench.cli.idnode import idnode_group

    db = str(store.engine.url.render_as_string(hide_password=False))
    r = CliRunner().invoke(idnode_group, ["token", "issue", "--db", db, "--identity", ADMIN_USER,
                                          "--label", "gateway-1", "--sender", "ops"])
    assert r.exit_code == 0, r.output
    token = r.output.strip()
    assert token.startswith("wbt_") and len(token) > 40
    assert token not in str(store.audit_rows())                     # only a digest is kept
    bearer = {"Authorization": f"Bearer {token}"}
    r = client.put(f"/api/handles/{PREFIX}/svc.1", json=_values((1, "URL", "https://x/svc")), headers=bearer)
    assert r.status_code == 201 and r.json()["responseCode"] == 1
    assert store.audit_rows(f"{PREFIX}/svc.1")[0]["who"] == ADMIN_USER
    # a token for alice carries alice's rights only
    alice_token = store.issue_token(f"300:{USER2}", label="app")
    r = client.put(f"/api/handles/{PREFIX}/svc.2", json=_values((1, "URL", "https://x")),
                   headers={"Authorization": f"Bearer {alice_token}"})
    assert r.status_code == 403 and r.json()["responseCode"] == 400
    # wrong, revoked and expired tokens are refused
    r = client.put(f"/api/handles/{PREFIX}/svc.3", json=_values((1, "URL", "https://x")),
                   headers={"Authorization": "Bearer wbt_nope"})
    assert r.status_code == 403 and r.json()["responseCode"] == 403
    r = CliRunner().invoke(idnode_group, ["token", "revoke", "--db", db, "--label", "gateway-1"])
    assert r.exit_code == 0 and "1 token(s) revoked" in r.output
    r = client.put(f"/api/handles/{PREFIX}/svc.1", json=_values((1, "URL", "https://x/2")), headers=bearer)
    assert r.status_code == 403 and r.json()["responseCode"] == 403
    import datetime as dt
    old = store.issue_token(ADMIN_USER, expires=dt.datetime(2020, 1, 1))
    assert store.token_identity(old) is None
    assert [r["what"] for r in store.audit_rows(ADMIN)][-3:] == ["token_issue", "token_revoke", "token_issue"]
    r = CliRunner().invoke(idnode_group, ["token", "issue", "--db", db, "--identity", f"300:{PREFIX}/ghost"])
    assert r.exit_code == 2 and "not found" in r.output
