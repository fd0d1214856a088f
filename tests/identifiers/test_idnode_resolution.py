"""Resolution paths of the identifier node: the fast cached path, cache coherence, bulk batch
registration (POST /api/batch) and recursive resolution between two running nodes (seed §10.2.3)."""
from __future__ import annotations

import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from pg import running_server

from workbench.identifiers.model import (
    HandleRecord,
    HandleValue,
    admin_value,
    carbon_value,
    url_value,
)
from workbench.identifiers.resolver import Upstreams, answer_ttl
from workbench.identifiers.server import MAX_BATCH_RECORDS, create_app
from workbench.identifiers.store import HandleStore

PREFIX = "88.100.24"
OTHER = "88.200.7"
AUTH = ("300%3A88.100.24/admin", "s3cret")
AUTH_OTHER = ("300%3A88.200.7/admin", "otherpw")
ALICE = ("300%3A88.100.24/alice", "alicepw")


def _bootstrap(store, prefix, password, user="admin"):
    store.create(HandleRecord(f"{prefix}/{user}", [
        HandleValue(index=300, type="HS_SECKEY", data={"format": "string", "value": password}),
        admin_value(prefix)]), who="bootstrap")


@pytest.fixture
def store(db_url):
    s = HandleStore(db_url, scrypt_n=2**10)
    _bootstrap(s, PREFIX, "s3cret")
    _bootstrap(s, PREFIX, "alicepw", "alice")
    yield s
    s.close()


def _product(i: int, ttl: int = 86400) -> HandleRecord:
    return HandleRecord(f"{PREFIX}/prod.A{i}", [
        url_value(f"https://example.com/p/{i}", index=1, ttl=ttl),
        carbon_value("CARBON.FOOTPRINT", index=2, value=0.0015 + i / 1000, period="2026", standard="GB/T 24067-2024", ttl=ttl),
        HandleValue(index=3, type="INTERNAL", data={"format": "string", "value": "cost 12"}, pub_read=False),
        admin_value(PREFIX)])


# --------------------------------------------------------------------------- fast path


@pytest.mark.parametrize("cache_size", [100, 0])
def test_fast_path_answers_exactly_like_the_api(store, cache_size):
    store.put_many([_product(i) for i in range(3)])
    node = create_app(store, PREFIX, admins=[f"300:{PREFIX}/admin"], cache_size=cache_size)
    c = TestClient(node)
    for handle in (f"{PREFIX}/prod.A1", f"{PREFIX}/PROD.a1"):          # echo the spelling asked for
        fast = c.get(f"/api/handles/{handle}")
        # a query parameter routes the same request through the FastAPI route
        full = c.get(f"/api/handles/{handle}", params={"publicOnly": "false"})
        assert fast.status_code == full.status_code == 200
        assert fast.json() == full.json()
        assert fast.json()["handle"] == handle
        assert [v["index"] for v in fast.json()["values"]] == [1, 2, 100]   # INTERNAL is not public
    # not found / invalid fall through to the API's answers
    assert c.get(f"/api/handles/{PREFIX}/nope").json()["responseCode"] == 100
    r = c.get(f"/api/handles/{PREFIX}/bad%01")
    assert r.status_code == 400 and r.json()["responseCode"] == 102
    # an authenticated caller gets the non-public value too (FastAPI path)
    r = c.get(f"/api/handles/{PREFIX}/prod.A1", auth=AUTH)
    assert [v["index"] for v in r.json()["values"]] == [1, 2, 3, 100]
    assert node.cache.size == cache_size
    if cache_size:
        assert len(node.cache) == 1 and node.cache.hits >= 1


def test_cache_sees_writes_at_once_and_other_writers_within_the_coherence_interval(store, db_url):
    store.put_many([_product(1)])
    node = create_app(store, PREFIX, admins=[f"300:{PREFIX}/admin"], coherence=0.2)
    c = TestClient(node)
    url = f"/api/handles/{PREFIX}/prod.A1"
    assert c.get(url).json()["values"][0]["data"]["value"] == "https://example.com/p/1"
    assert len(node.cache) == 1
    # a write through this node: the next resolution is fresh
    r = c.put(url, params={"index": "1"}, auth=AUTH,
              json={"values": [{"index": 1, "type": "URL", "data": "https://example.com/moved"}]})
    assert r.json()["responseCode"] == 1
    assert c.get(url).json()["values"][0]["data"]["value"] == "https://example.com/moved"
    # a write by someone else on the same database (another worker process, a bulk load)
    other = HandleStore(db_url, scrypt_n=2**10)
    other.put(f"{PREFIX}/prod.A1", [url_value("https://example.com/elsewhere", index=1)], indices=[1])
    other.delete(f"{PREFIX}/prod.A1", [2])
    time.sleep(0.25)
    values = c.get(url).json()["values"]
    assert values[0]["data"]["value"] == "https://example.com/elsewhere" and [v["index"] for v in values] == [1, 100]
    other.delete(f"{PREFIX}/prod.A1")
    time.sleep(0.25)
    assert c.get(url).status_code == 404
    other.close()


# --------------------------------------------------------------------------- batch registration


def _batch_body(records):
    return {"records": [r.to_json() for r in records]}


def test_batch_registration_thousands_idempotent(store):
    c = TestClient(create_app(store, PREFIX, admins=[f"300:{PREFIX}/admin"]))
    records = [_product(i) for i in range(MAX_BATCH_RECORDS)]
    r = c.post("/api/batch", json=_batch_body(records), auth=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"responseCode": 1, "handle": None, "new": 2000, "updated": 0, "unchanged": 0,
                        "total": 2000}
    n_audit = len(store.audit_rows())
    # a retry (e.g. after a client time-out) changes nothing and writes no audit rows
    r = c.post("/api/batch", json=_batch_body(records), auth=AUTH)
    assert r.json()["unchanged"] == 2000 and len(store.audit_rows()) == n_audit
    assert store.list(PREFIX, page_size=0)[0] == 2002
    # one changed record in a retried batch is updated, the rest untouched
    changed = records[:5] + [HandleRecord(records[5].identifier, [url_value("https://example.com/new", index=1)])]
    assert c.post("/api/batch", json=_batch_body(changed), auth=AUTH).json()["updated"] == 1
    assert c.get(f"/api/handles/{records[5].identifier}").json()["values"][0]["data"]["value"] == \
        "https://example.com/new"
    # overwrite=false: a differing existing record is a conflict, nothing written
    r = c.post("/api/batch", params={"overwrite": "false"}, json=_batch_body([_product(5)]), auth=AUTH)
    assert r.status_code == 409 and r.json()["responseCode"] == 101


def test_batch_errors_write_nothing(store):
    c = TestClient(create_app(store, PREFIX, admins=[f"300:{PREFIX}/admin"]))
    good = [_product(i) for i in range(3)]
    n_audit = len(store.audit_rows())
    r = c.post("/api/batch", json=_batch_body(good))
    assert r.status_code == 401 and r.json()["responseCode"] == 402
    # alice may not create handles
    r = c.post("/api/batch", json=_batch_body(good), auth=ALICE)
    assert r.status_code == 403 and r.json()["responseCode"] == 400
    too_many = {"records": [{"handle": f"{PREFIX}/x.{i}", "values": []} for i in range(MAX_BATCH_RECORDS + 1)]}
    r = c.post("/api/batch", json=too_many, auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 202 and "at most" in r.json()["message"]
    bad_value = _batch_body(good) | {}
    bad_value["records"].append({"handle": f"{PREFIX}/x.bad", "values": [{"index": 1, "type": "HEX",
                                                                          "data": {"format": "hex", "value": "zz"}}]})
    r = c.post("/api/batch", json=bad_value, auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 202 and "record 3" in r.json()["message"]
    r = c.post("/api/batch", json={"records": [{"handle": f"{OTHER}/x", "values": []}]}, auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 301
    r = c.post("/api/batch", json={"records": [{"handle": "no-slash", "values": []}]}, auth=AUTH)
    assert r.status_code == 400 and r.json()["responseCode"] == 102
    r = c.post("/api/batch", content=b"{not json", auth=AUTH, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["responseCode"] == 202
    r = c.post("/api/batch", json={"records": [good[0].to_json(), good[0].to_json()]}, auth=AUTH)
    assert r.status_code == 400 and "twice" in r.json()["message"]
    assert len(store.audit_rows()) == n_audit and store.get(good[0].identifier) is None


# --------------------------------------------------------------------------- recursive resolution


def test_upstreams_longest_prefix_match():
    up = Upstreams({"88.200": "http://a", "88.200.7": "http://b/", "*": "http://c"})
    assert up.for_prefix("88.200.7") == "http://b" and up.for_prefix("88.200.70") == "http://a"
    assert up.for_prefix("88.200") == "http://a" and up.for_prefix("88.300.1") == "http://c"
    assert Upstreams({"88.1": "http://a"}).for_prefix("88.2.3") is None
    assert dict(Upstreams.parse(["88.2=http://x:1", "*=https://y"]).items()) == {"88.2": "http://x:1",
                                                                                 "*": "https://y"}
    with pytest.raises(ValueError):
        Upstreams.parse(["88.2"])
    with pytest.raises(ValueError):
        Upstreams({"88.2": "ftp://x"})


def test_answer_ttl():
    ok = b'{"responseCode":1,"handle":"a/b","values":[{"ttl":600},{"ttl":60}]}'
    assert answer_ttl(ok, negative_ttl=5, max_ttl=3600) == 60
    assert answer_ttl(ok, negative_ttl=5, max_ttl=30) == 30
    assert answer_ttl(b'{"responseCode":100,"handle":"a/b"}', negative_ttl=5, max_ttl=30) == 5
    assert answer_ttl(b'{"responseCode":2}', negative_ttl=5, max_ttl=30) is None
    assert answer_ttl(b"<html>", negative_ttl=5, max_ttl=30) is None


class _Counting:
    """ASGI wrapper counting the requests an upstream node receives (and their headers)."""

    def __init__(self, app):
        self.app, self.paths, self.auth_seen = app, [], []
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            with self.lock:
                self.paths.append(scope["path"])
                self.auth_seen.append(any(k == b"authorization" for k, _ in scope["headers"]))
        await self.app(scope, receive, send)


@pytest.fixture
def two_nodes(store, tmp_path):
    """Node B (upstream, prefix 88.200.7) and node A (ours, 88.100.24) forwarding 88.200.* to B."""
    other = HandleStore(f"sqlite:///{tmp_path / 'other.db'}", scrypt_n=2**10)
    _bootstrap(other, OTHER, "otherpw")
    other.put_many([
        HandleRecord(f"{OTHER}/part.7", [url_value("https://supplier.example/part7", index=1, ttl=1),
                                         carbon_value("CARBON.FOOTPRINT", index=2, value=0.00042, standard="GB/T 24067-2024",
                                                      period="2026", ttl=3600),
                                         HandleValue(index=3, type="PRICE", data={"format": "string",
                                                                                  "value": "9.90"},
                                                     pub_read=False)]),
        HandleRecord(f"{OTHER}/part.long", [url_value("https://supplier.example/long", index=1, ttl=3600)]),
    ])
    b = _Counting(create_app(other, OTHER, admins=[f"300:{OTHER}/admin"]))
    with running_server(b) as b_url:
        a_node = create_app(store, PREFIX, admins=[f"300:{PREFIX}/admin"], upstreams={"88.200": b_url},
                            negative_ttl=1)
        with running_server(a_node) as a_url:
            yield a_url, a_node, b_url, b, other
    other.close()


def test_recursive_resolution_forwards_and_caches_for_the_ttl(two_nodes):
    a_url, _, b_url, b, other = two_nodes
    with httpx.Client(base_url=a_url, timeout=10) as c:
        r = c.get(f"/api/handles/{OTHER}/part.7")
        assert r.status_code == 200 and r.headers["x-cache"] == "MISS"
        body = r.json()
        assert body["handle"] == f"{OTHER}/part.7" and [v["index"] for v in body["values"]] == [1, 2]
        assert body == httpx.get(f"{b_url}/api/handles/{OTHER}/part.7").json() | {}
        n = len(b.paths)
        # within the smallest ttl (1 s) the answer comes from A's cache
        r = c.get(f"/api/handles/{OTHER}/part.7")
        assert r.headers["x-cache"] == "HIT" and r.json() == body and len(b.paths) == n
        # filters are part of the cached request: asked separately, answered correctly
        r = c.get(f"/api/handles/{OTHER}/part.7", params={"type": "CARBON.FOOTPRINT"})
        assert [v["index"] for v in r.json()["values"]] == [2]
        # after the ttl A asks B again and sees B's change
        other.put(f"{OTHER}/part.7", [url_value("https://supplier.example/part7-v2", index=1, ttl=1)],
                  indices=[1])
        time.sleep(1.2)
        r = c.get(f"/api/handles/{OTHER}/part.7")
        assert r.headers["x-cache"] == "MISS" and r.json()["values"][0]["data"]["value"].endswith("part7-v2")
        # credentials are never passed upstream, so non-public values stay with B
        r = c.get(f"/api/handles/{OTHER}/part.7", params={"auth": "true"}, auth=AUTH)
        assert [v["index"] for v in r.json()["values"]] == [1, 2] and not any(b.auth_seen)
        # not found upstream: 404 with the handle, cached for the negative ttl
        r = c.get(f"/api/handles/{OTHER}/missing")
        assert r.status_code == 404 and r.json() == {"responseCode": 100, "handle": f"{OTHER}/missing",
                                                     "message": "handle not found"}
        n = len(b.paths)
        assert c.get(f"/api/handles/{OTHER}/missing").headers["x-cache"] == "HIT" and len(b.paths) == n
        # our own prefix is never forwarded; a prefix without an upstream is refused as before
        assert c.get(f"/api/handles/{PREFIX}/admin").json()["responseCode"] == 1
        r = c.get("/api/handles/88.300.1/x")
        assert r.status_code == 400 and r.json()["responseCode"] == 301
        assert all(p.startswith(f"/api/handles/{OTHER}/") for p in b.paths)


def test_recursive_resolution_survives_the_upstream_going_down(store, tmp_path):
    other = HandleStore(f"sqlite:///{tmp_path / 'other.db'}", scrypt_n=2**10)
    other.put_many([HandleRecord(f"{OTHER}/p.1", [url_value("https://supplier.example/p1", index=1, ttl=1)])])
    upstream = running_server(create_app(other, OTHER))
    b_url = upstream.__enter__()
    a_node = create_app(store, PREFIX, upstreams={"*": b_url}, upstream_timeout=2)
    with running_server(a_node) as a_url:
        first = httpx.get(f"{a_url}/api/handles/{OTHER}/p.1", timeout=10)
        assert first.headers["x-cache"] == "MISS"
        upstream.__exit__(None, None, None)
        # B is gone and the ttl has passed: A serves its stale copy, marked as such
        time.sleep(1.1)
        r = httpx.get(f"{a_url}/api/handles/{OTHER}/p.1", timeout=10)
        assert r.status_code == 200 and r.headers["x-cache"] == "STALE" and r.json() == first.json()
        # never seen: a clear upstream error, not a hang or a crash
        r = httpx.get(f"{a_url}/api/handles/{OTHER}/p.2", timeout=10)
        assert r.status_code == 502 and r.json()["responseCode"] == 2
        assert "unreachable" in r.json()["message"] and r.json()["handle"] == f"{OTHER}/p.2"
    other.close()


def test_resolution_loop_is_cut(store):
    # a node that names itself as upstream for another prefix: the hop counter stops the loop
    holder = {}

    async def app(scope, receive, send):
        await holder["node"](scope, receive, send)

    with running_server(app) as url:
        holder["node"] = create_app(store, PREFIX, upstreams={"*": url}, upstream_timeout=10)
        r = httpx.get(f"{url}/api/handles/{OTHER}/x", timeout=30)
    assert r.status_code == 508 and "loop" in r.json()["message"]
