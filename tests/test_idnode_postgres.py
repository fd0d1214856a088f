"""HandleStore and the identifier-node API on a REAL PostgreSQL (started by the tests on a free port,
see tests/pg.py): the same SQL as on SQLite (tests/test_idnode_api.py)."""
# ruff: noqa: F811  (pg_proc/postgresql are fixtures imported from tests/pg.py and used as arguments)
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pg import pg_proc, pg_url, postgresql  # noqa: F401  (fixtures)

from workbench.cli_idnode import register_records
from workbench.identifiers.model import (
    HandleRecord,
    HandleValue,
    admin_value,
    url_value,
)
from workbench.identifiers.server import create_app
from workbench.identifiers.store import (
    HandleExists,
    HandleNotFound,
    HandleStore,
    ValueExists,
)

PREFIX = "88.100.24"
ADMIN = f"{PREFIX}/admin"
AUTH = ("300%3A88.100.24/admin", "s3cret")


def _values(*pairs):
    return {"values": [{"index": i, "type": t, "data": d} for i, t, d in pairs]}


@pytest.fixture
def store(pg_proc, postgresql):
    s = HandleStore(pg_url(pg_proc, postgresql.info.dbname), scrypt_n=2**10)
    assert s.engine.dialect.name == "postgresql"
    s.create(HandleRecord(ADMIN, [HandleValue(index=300, type="HS_SECKEY",
                                              data={"format": "string", "value": "s3cret"}),
                                  admin_value(PREFIX)]), who="bootstrap")
    yield s
    s.engine.dispose()


@pytest.fixture
def client(store):
    return TestClient(create_app(store, PREFIX, admins=[f"300:{ADMIN}"]))


def test_store_crud_list_on_postgres(store):
    rec = HandleRecord(f"{PREFIX}/A.1", [url_value("https://x/a", index=1)])
    store.create(rec, who="me")
    with pytest.raises(HandleExists):
        store.create(rec)
    assert store.get(f"{PREFIX}/a.1").identifier.suffix == "A.1"          # case-insensitive key
    with pytest.raises(HandleExists):
        store.put(HandleRecord(f"{PREFIX}/a.1", [url_value("https://x/z", index=1)]), overwrite=False)
    with pytest.raises(ValueExists):
        store.put(f"{PREFIX}/A.1", [url_value("https://x/z", index=1)], indices=[1], overwrite=False)
    created, after = store.put(f"{PREFIX}/A.1", [url_value("https://x/b", index=2)], indices=[2])
    assert not created and [v.index for v in after.values] == [1, 2]
    assert store.get(f"{PREFIX}/A.1", types=["URL"], indices=[9]).values == after.values
    assert [v.index for v in store.get(f"{PREFIX}/A.1", indices=[2]).values] == [2]
    total, handles = store.list(PREFIX, 0, 1)
    assert total == 2 and handles == [f"{PREFIX}/A.1"]
    assert store.list(PREFIX, 1, 1) == (2, [ADMIN])
    assert store.list(PREFIX, page_size=0) == (2, [])
    store.delete(f"{PREFIX}/A.1", [1])
    assert [v.index for v in store.get(f"{PREFIX}/A.1").values] == [2]
    store.delete(f"{PREFIX}/A.1")
    assert store.get(f"{PREFIX}/A.1") is None
    with pytest.raises(HandleNotFound):
        store.delete(f"{PREFIX}/A.1")
    assert [r["what"] for r in store.audit_rows(f"{PREFIX}/A.1")] == ["create", "modify", "remove_values", "delete"]
    assert store.verify(ADMIN, 300, "s3cret") and not store.verify(ADMIN, 300, "nope")


def test_reverse_lookup_on_postgres(store):
    store.create(HandleRecord(f"{PREFIX}/B.2", [url_value("https://x/shared", index=1)]), who="me")
    store.create(HandleRecord(f"{PREFIX}/A.2", [url_value("https://x/shared", index=1),
                                                url_value("https://x/shared", index=2)]), who="me")
    assert store.reverse("https://x/shared") == [f"{PREFIX}/A.2", f"{PREFIX}/B.2"]  # distinct, by key
    assert store.reverse("https://x/none") == []


def test_store_check_callback_rolls_back_on_postgres(store):
    store.create(HandleRecord(f"{PREFIX}/keep", [url_value("https://x/keep", index=1)]))
    n_audit = len(store.audit_rows())

    def deny(before, after):
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store.put(HandleRecord(f"{PREFIX}/x", [url_value("https://x", index=1)]), check=deny)
    with pytest.raises(RuntimeError):
        store.put(f"{PREFIX}/keep", [url_value("https://x/changed", index=1)], check=deny)
    assert store.get(f"{PREFIX}/x") is None
    assert store.get(f"{PREFIX}/keep").values[0].value == "https://x/keep"
    assert len(store.audit_rows()) == n_audit


def test_register_records_batch_rolls_back_on_postgres(store, monkeypatch):
    recs = [HandleRecord(f"{PREFIX}/n.{i}", [url_value(f"https://x/{i}", index=1)]) for i in range(3)]
    assert register_records(store, recs, batch_size=2) == {"new": 3, "updated": 0, "unchanged": 0, "total": 3}
    assert register_records(store, recs, batch_size=2) == {"new": 0, "updated": 0, "unchanged": 3, "total": 3}
    n_audit = len(store.audit_rows())
    # a batch whose second record fails inside the transaction: the first is not written either
    bad = [HandleRecord(f"{PREFIX}/n.9", [url_value("https://x/9", index=1)]),
           HandleRecord(f"{PREFIX}/n.10", [url_value("https://x/10", index=1)])]
    real_write = store._write

    def failing_write(conn, key, *args, **kw):
        if key.endswith("n.10"):
            raise RuntimeError("disk full")
        return real_write(conn, key, *args, **kw)

    monkeypatch.setattr(store, "_write", failing_write)
    with pytest.raises(RuntimeError, match="disk full"):
        register_records(store, bad, batch_size=2)
    assert store.get(f"{PREFIX}/n.9") is None
    assert len(store.audit_rows()) == n_audit


def test_api_flows_on_postgres(client, store):
    base = f"/api/handles/{PREFIX}"
    body = _values((1, "URL", "https://example.com/dev1"), (2, "DESC", {"format": "string", "value": "meter 1"}))
    r = client.put(f"{base}/dev.1", json=body, auth=AUTH)
    assert r.status_code == 201 and r.json() == {"responseCode": 1, "handle": f"{PREFIX}/dev.1"}
    # get with filters (union)
    r = client.get(f"{base}/dev.1", params=[("index", "2"), ("type", "URL")])
    assert r.status_code == 200 and [v["index"] for v in r.json()["values"]] == [1, 2]
    assert [v["index"] for v in client.get(f"{base}/dev.1", params=[("type", "URL")]).json()["values"]] == [1]
    # overwrite=false conflicts
    r = client.put(f"{base}/dev.1", params={"overwrite": "false"}, json=body, auth=AUTH)
    assert r.status_code == 409 and r.json()["responseCode"] == 101
    r = client.put(f"{base}/dev.1", params={"index": "1", "overwrite": "false"},
                   json=_values((1, "URL", "https://x")), auth=AUTH)
    assert r.status_code == 409 and r.json()["responseCode"] == 201
    # list
    client.put(f"{base}/dev.2", json=_values((1, "URL", "https://example.com/dev1")), auth=AUTH)
    r = client.get("/api/handles", params={"prefix": PREFIX}).json()
    assert r["totalCount"] == "3" and r["handles"] == [ADMIN, f"{PREFIX}/dev.1", f"{PREFIX}/dev.2"]
    # transactional: an invalid value in the body writes nothing
    before = client.get(f"{base}/dev.1").json()["values"]
    n_audit = len(store.audit_rows())
    r = client.put(f"{base}/dev.1", params={"index": "various"}, auth=AUTH,
                   json=_values((1, "URL", "https://changed"), (3, "HEX", {"format": "hex", "value": "xyz"})))
    assert r.status_code == 400 and r.json()["responseCode"] == 202
    assert client.get(f"{base}/dev.1").json()["values"] == before and len(store.audit_rows()) == n_audit
    # delete a value, then the handle
    assert client.delete(f"{base}/dev.1", params={"index": "2"}, auth=AUTH).json()["responseCode"] == 1
    assert [v["index"] for v in client.get(f"{base}/dev.1").json()["values"]] == [1]
    assert client.delete(f"{base}/dev.1", auth=AUTH).json()["responseCode"] == 1
    r = client.get(f"{base}/dev.1")
    assert r.status_code == 404 and r.json()["responseCode"] == 100
