"""HandleStore on SQLite and on a real PostgreSQL started by the tests (``db_url`` in conftest.py)."""
from __future__ import annotations

import pytest

from workbench.identifiers.model import (
    HandleRecord,
    HandleValue,
    admin_value,
    url_value,
)
from workbench.identifiers.store import (
    HandleExists,
    HandleNotFound,
    HandleStore,
    InvalidValue,
    ValueExists,
)

PREFIX = "88.100.24"
ADMIN = f"{PREFIX}/admin"
AUTH = ("300%3A88.100.24/admin", "s3cret")


def _values(*pairs):
    return {"values": [{"index": i, "type": t, "data": d} for i, t, d in pairs]}


@pytest.fixture
def store(db_url):
    s = HandleStore(db_url, scrypt_n=2**10)
    assert s.engine.dialect.name == db_url.split(":")[0].split("+")[0]
    s.create(HandleRecord(ADMIN, [HandleValue(index=300, type="HS_SECKEY",
                                              data={"format": "string", "value": "s3cret"}),
                                  admin_value(PREFIX)]), who="bootstrap")
    yield s
    s.close()


def test_store_crud_list(store):
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


def test_reverse_lookup(store):
    store.create(HandleRecord(f"{PREFIX}/B.2", [url_value("https://x/shared", index=1)]), who="me")
    store.create(HandleRecord(f"{PREFIX}/A.2", [url_value("https://x/shared", index=1),
                                                url_value("https://x/shared", index=2)]), who="me")
    assert store.reverse("https://x/shared") == [f"{PREFIX}/A.2", f"{PREFIX}/B.2"]  # distinct, by key
    assert store.reverse("https://x/none") == []


def test_store_check_callback_rolls_back(store):
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


def test_put_many_idempotent_and_batch_rolls_back(store):
    recs = [HandleRecord(f"{PREFIX}/n.{i}", [url_value(f"https://x/{i}", index=1)]) for i in range(3)]
    assert store.put_many(recs, batch_size=2) == {"new": 3, "updated": 0, "unchanged": 0, "total": 3}
    assert store.put_many(recs, batch_size=2) == {"new": 0, "updated": 0, "unchanged": 3, "total": 3}
    changed = [recs[0], HandleRecord(f"{PREFIX}/n.1", [url_value("https://x/1-moved", index=1)])]
    assert store.put_many(changed) == {"new": 0, "updated": 1, "unchanged": 1, "total": 2}
    assert store.get(f"{PREFIX}/n.1").values[0].value == "https://x/1-moved"
    with pytest.raises(HandleExists):
        store.put_many([HandleRecord(f"{PREFIX}/n.2", [url_value("https://x/other", index=1)])], overwrite=False)
    with pytest.raises(InvalidValue, match="twice"):
        store.put_many([recs[0], HandleRecord(f"{PREFIX}/N.0", [])])
    n_audit = len(store.audit_rows())
    # a batch whose second record is refused inside the transaction: the first is not written either
    bad = [HandleRecord(f"{PREFIX}/n.9", [url_value("https://x/9", index=1)]),
           HandleRecord(f"{PREFIX}/n.10", [url_value("https://x/10", index=1)])]

    def refuse_n10(before, after):
        if after.identifier.suffix == "n.10":
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        store.put_many(bad, batch_size=2, check=refuse_n10)
    assert store.get(f"{PREFIX}/n.9") is None
    assert len(store.audit_rows()) == n_audit
    # secrets: a re-sent plain-text secret equal to the stored hash is "unchanged"
    user = HandleRecord(f"{PREFIX}/bob", [HandleValue(index=300, type="HS_SECKEY",
                                                      data={"format": "string", "value": "pw"})])
    assert store.put_many([user])["new"] == 1
    assert store.put_many([user])["unchanged"] == 1
    assert store.verify(f"{PREFIX}/bob", 300, "pw")


def test_change_feed(store):
    start = store.last_change()
    assert store.changes_since(start) == (start, set())
    store.create(HandleRecord(f"{PREFIX}/C.1", [url_value("https://x/c", index=1)]))
    store.delete(f"{PREFIX}/C.1")
    last, keys = store.changes_since(start)
    assert last == store.last_change() > start and keys == {f"{PREFIX}/c.1"}
    store.put_many([HandleRecord(f"{PREFIX}/d.{i}", []) for i in range(5)])
    assert store.changes_since(last, limit=3) == (store.last_change(), None)   # too many: forget all
