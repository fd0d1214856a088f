"""Python client of the identifier node (sync and async) against a live node; errors; retries;
readable records (``_repr_html_`` / ``__str__``)."""
from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import httpx
import pytest

from workbench.identifiers import (
    AsyncClient,
    Client,
    ClientError,
    HandleRecord,
    HandleValue,
    Identifier,
    LocalNode,
    carbon_value,
    desc_value,
    records_from_boundary,
    ref_value,
    url_value,
)
from workbench.identifiers import client as cl

PREFIX = "88.100.24"
ADMIN = f"300:{PREFIX}/admin"
PASSWORD = "s3cret"


@pytest.fixture
def node(db_url):
    with LocalNode(prefix=PREFIX, db=db_url, admin=ADMIN,
                   admin_password=PASSWORD, scrypt_n=2**10) as n:
        yield n


def _record(suffix: str, url: str = "https://example.com/dev1") -> HandleRecord:
    return HandleRecord(f"{PREFIX}/{suffix}", [
        url_value(url, index=1),
        desc_value(kind="meter", name_zh="电表 1", name_en="meter 1", index=2),
        carbon_value("CARBON.FOOTPRINT", value=12.5, period="2025", standard="GB/T 32150-2015", index=3),
    ])


def _types(record: HandleRecord) -> list[tuple[int, str]]:
    return [(v.index, v.type) for v in record.values]


# --------------------------------------------------------------------------- sync, every method


def test_sync_register_resolve_modify_delete(node):
    h = f"{PREFIX}/dev.1"
    with node.client() as c:
        assert c.register(_record("dev.1")) is True
        with pytest.raises(cl.HandleExists) as err:
            c.register(_record("dev.1"))
        assert err.value.response_code == 101 and err.value.status == 409 and err.value.handle == h
        assert c.register(_record("dev.1"), overwrite=True) is False
        rec = c.resolve(h)
        assert isinstance(rec, HandleRecord) and rec.identifier == Identifier(PREFIX, "dev.1")
        assert _types(rec) == [(1, "URL"), (2, "DESC"), (3, "CARBON.FOOTPRINT")]
        assert [v.value for v in rec.values] == [v.value for v in _record("dev.1").values]
        # filters (union), Identifier objects, case-insensitive look-up
        assert _types(c.resolve(Identifier(PREFIX, "DEV.1"), types=["URL"], indices=[3])) == [(1, "URL"), (3, "CARBON.FOOTPRINT")]
        assert _types(c.resolve(h, types="DESC")) == [(2, "DESC")]
        assert len(c.resolve(h, types=["EMAIL"])) == 0                  # nothing matches: empty record
        assert c.exists(h) and not c.exists(f"{PREFIX}/dev.2")
        # modify: only these indices change
        c.modify(h, [url_value("https://example.com/moved", index=1), HandleValue(4, "EMAIL", {"format": "string", "value": "ops@x"})])
        rec = c.resolve(h)
        assert _types(rec) == [(1, "URL"), (2, "DESC"), (3, "CARBON.FOOTPRINT"), (4, "EMAIL")]
        assert rec.get(1).value == "https://example.com/moved"
        c.delete(h, [4])
        assert _types(c.resolve(h)) == [(1, "URL"), (2, "DESC"), (3, "CARBON.FOOTPRINT")]
        with pytest.raises(cl.ValuesNotFound):
            c.delete(h, 4)
        c.delete(h)
        assert not c.exists(h)
        with pytest.raises(cl.HandleNotFound) as err:
            c.resolve(h)
        assert (err.value.response_code, err.value.status, err.value.handle) == (100, 404, h)
        assert isinstance(err.value, ClientError) and "not found" in err.value.message
        with pytest.raises(cl.HandleNotFound):
            c.modify(h, url_value("https://x", index=1))


def test_sync_list_reverse_mint_ancestry(node):
    with node.client() as c:
        for i in range(4):
            c.register(_record(f"item.{i}", url="https://same" if i < 2 else f"https://u/{i}"))
        total, handles = c.list(PREFIX)
        assert total == 5 and f"{PREFIX}/admin" in handles and len(handles) == 5
        assert c.list(PREFIX, page=1, page_size=2) == (5, [f"{PREFIX}/item.1", f"{PREFIX}/item.2"])
        assert c.list(PREFIX, page_size=0) == (5, [])
        assert c.reverse(URL="https://same") == [f"{PREFIX}/item.0", f"{PREFIX}/item.1"]
        assert c.reverse({"URL": "https://u/3"}, prefix=PREFIX) == [f"{PREFIX}/item.3"]
        assert c.reverse(URL="https://none") == []
        with pytest.raises(ValueError):
            c.reverse()
        with pytest.raises(cl.NotResponsible):
            c.list("88.999.1")
        minted = c.mint(PREFIX, [url_value("https://minted", index=1)])
        assert minted.startswith(f"{PREFIX}/") and c.resolve(minted).get(1).value == "https://minted"
        # parent chain: c → b → a
        c.register(HandleRecord(f"{PREFIX}/a", [desc_value(kind="enterprise", index=1)]))
        c.register(HandleRecord(f"{PREFIX}/b", [desc_value(kind="facility", index=1), ref_value(f"{PREFIX}/a", index=2)]))
        c.register(HandleRecord(f"{PREFIX}/c", [desc_value(kind="meter", index=1), ref_value(f"{PREFIX}/b", index=2)]))
        assert [str(r.identifier) for r in c.ancestry(f"{PREFIX}/c")] == [f"{PREFIX}/c", f"{PREFIX}/b", f"{PREFIX}/a"]
        c.modify(f"{PREFIX}/a", ref_value(f"{PREFIX}/c", index=2))           # a loop
        with pytest.raises(ClientError, match="loops"):
            c.ancestry(f"{PREFIX}/c")


def test_suffix_percent_encoding_round_trip(node):
    odd = "a/b#c?d%e+f&g;h中文"
    assert cl.handle_path(f"{PREFIX}/{odd}") == f"/api/handles/{PREFIX}/a/b%23c%3Fd%25e%2Bf%26g%3Bh%E4%B8%AD%E6%96%87"
    with node.client() as c:
        assert c.register(_record(odd))
        rec = c.resolve(f"{PREFIX}/{odd}")
        assert str(rec.identifier) == f"{PREFIX}/{odd}" and len(rec) == 3
        assert c.list(PREFIX)[1] == [f"{PREFIX}/{odd}", f"{PREFIX}/admin"]
        c.delete(f"{PREFIX}/{odd}")
        assert not c.exists(f"{PREFIX}/{odd}")


# --------------------------------------------------------------------------- async, every method


def test_async_client_every_method(node):
    h = f"{PREFIX}/dev.a"

    async def scenario():
        async with node.async_client() as c:
            assert await c.register(_record("dev.a")) is True
            assert await c.register(_record("dev.a"), overwrite=True) is False
            with pytest.raises(cl.HandleExists):
                await c.register(_record("dev.a"))
            assert _types(await c.resolve(h)) == [(1, "URL"), (2, "DESC"), (3, "CARBON.FOOTPRINT")]
            assert _types(await c.resolve(h, indices=2)) == [(2, "DESC")]
            assert await c.exists(h) and not await c.exists(f"{PREFIX}/nope")
            await c.modify(h, url_value("https://example.com/async", index=1))
            assert (await c.resolve(h)).get(1).value == "https://example.com/async"
            assert await c.reverse(URL="https://example.com/async") == [h]
            assert await c.list(PREFIX) == (2, [f"{PREFIX}/admin", h])
            minted = await c.mint(PREFIX, url_value("https://m", index=1))
            assert (await c.resolve(minted)).get(1).value == "https://m"
            await c.register(HandleRecord(f"{PREFIX}/child", [ref_value(h, index=2)]))
            assert [str(r.identifier) for r in await c.ancestry(f"{PREFIX}/child")] == [f"{PREFIX}/child", h]
            await c.delete(h, [3])
            assert _types(await c.resolve(h)) == [(1, "URL"), (2, "DESC")]
            await c.delete(h)
            with pytest.raises(cl.HandleNotFound):
                await c.resolve(h)
            # concurrency: several resolves at once on one client
            recs = await asyncio.gather(*(c.resolve(minted) for _ in range(5)))
            assert all(r.get(1).value == "https://m" for r in recs)
        async with AsyncClient(node.url, username=ADMIN, password="wrong") as bad:
            with pytest.raises(cl.AuthenticationError):
                await bad.delete(minted)

    asyncio.run(scenario())


# --------------------------------------------------------------------------- register_many (/api/batch)


def _demo_records(demo_data, prefix="88.123.4567"):
    from workbench.core.boundary import Boundary
    return records_from_boundary(Boundary.read_csv(demo_data / "boundary.csv"), prefix)


def test_register_many_against_live_node(tmp_path, demo_data):
    records = _demo_records(demo_data)
    with LocalNode(prefix="88.123.4567", db=f"sqlite:///{tmp_path / 'b.db'}", scrypt_n=2**10) as node, \
            node.client() as c:
        counts = c.register_many(records, chunk_size=7)
        n = len(records)
        assert counts == {"total": n, "new": n, "updated": 0, "unchanged": 0, "chunks": -(-n // 7)}
        assert c.list("88.123.4567")[0] == n + 1                   # + admin
        again = c.register_many(iter(records), chunk_size=1000)     # idempotent
        assert again == {"total": n, "new": 0, "updated": 0, "unchanged": n, "chunks": 1}
        ent = c.resolve("88.123.4567/node.ENT")
        assert ent.first("DESC") is not None and len(ent.by_type("REF.CHILD")) >= 3


def test_register_many_async_against_live_node(tmp_path, demo_data):
    records = _demo_records(demo_data)[:10]

    async def scenario(url, admin, password):
        async with AsyncClient(url, username=admin, password=password) as c:
            return await c.register_many(records, chunk_size=4)

    with LocalNode(prefix="88.123.4567", db=f"sqlite:///{tmp_path / 'b.db'}", scrypt_n=2**10) as node:
        counts = asyncio.run(scenario(node.url, node.admin, node.admin_password))
        assert counts == {"total": 10, "new": 10, "updated": 0, "unchanged": 0, "chunks": 3}


class _FlakyBatch:
    """A fake /api/batch: times out on the listed call numbers, else answers the counts."""

    def __init__(self, fail_on=(), status_on=None):
        self.calls, self.fail_on, self.status_on, self.bodies = 0, set(fail_on), dict(status_on or {}), []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls in self.fail_on:
            raise httpx.ReadTimeout("timed out", request=request)
        if self.calls in self.status_on:
            return httpx.Response(self.status_on[self.calls], text="bad gateway")
        assert request.method == "POST" and request.url.path == "/api/batch"
        body = json.loads(request.content)
        self.bodies.append(body)
        n = len(body["records"])
        return httpx.Response(200, json={"responseCode": 1, "total": n, "new": n - 1, "updated": 1, "unchanged": 0})


def _many(k: int) -> list[HandleRecord]:
    return [HandleRecord(f"{PREFIX}/r.{i}", [url_value(f"https://r/{i}", index=1)]) for i in range(k)]


def test_register_many_chunks_sums_and_retries_timeouts():
    fake = _FlakyBatch(fail_on={2, 3})          # the second chunk times out twice, then succeeds
    with Client("http://node", username=ADMIN, password=PASSWORD, transport=httpx.MockTransport(fake),
                retries=2, backoff=0) as c:
        counts = c.register_many(_many(5), chunk_size=2)
    assert counts == {"total": 5, "new": 2, "updated": 3, "unchanged": 0, "chunks": 3}
    assert fake.calls == 5 and [len(b["records"]) for b in fake.bodies] == [2, 2, 1]
    assert fake.bodies[0]["records"][0] == _many(1)[0].to_json()

    fake = _FlakyBatch(fail_on={2, 3, 4})       # retries exhausted: TransportFailure, partial counts
    with Client("http://node", username=ADMIN, password=PASSWORD, transport=httpx.MockTransport(fake),
                retries=2, backoff=0) as c, pytest.raises(cl.TransportFailure) as err:
        c.register_many(_many(5), chunk_size=2)
    assert err.value.partial == {"total": 2, "new": 1, "updated": 1, "unchanged": 0, "chunks": 1}
    assert err.value.status is None and isinstance(err.value.__cause__, httpx.ReadTimeout)

    fake = _FlakyBatch(status_on={1: 503})      # a 503 from a proxy is retried too
    with Client("http://node", username=ADMIN, password=PASSWORD, transport=httpx.MockTransport(fake),
                backoff=0) as c:
        assert c.register_many(_many(1))["total"] == 1
    assert fake.calls == 2

    with pytest.raises(ValueError):
        Client("http://node").register_many(_many(1), chunk_size=0)


def test_register_many_async_retries():
    fake = _FlakyBatch(fail_on={1})

    async def scenario():
        async with AsyncClient("http://node", username=ADMIN, password=PASSWORD,
                               transport=httpx.MockTransport(fake), backoff=0) as c:
            return await c.register_many(_many(3), chunk_size=2)

    assert asyncio.run(scenario()) == {"total": 3, "new": 1, "updated": 2, "unchanged": 0, "chunks": 2}
    assert fake.calls == 3


def test_reads_retry_single_writes_do_not():
    calls = []

    def handler(request):
        calls.append(request.method)
        if len(calls) == 1 or request.method == "PUT":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"responseCode": 1, "handle": f"{PREFIX}/x",
                                         "values": [url_value("https://x", index=1).to_json()]})

    with Client("http://node", username=ADMIN, password=PASSWORD, transport=httpx.MockTransport(handler),
                backoff=0) as c:
        assert c.resolve(f"{PREFIX}/x").get(1).value == "https://x"
        assert calls == ["GET", "GET"]
        with pytest.raises(cl.TransportFailure):
            c.register(_record("x"))
        assert calls == ["GET", "GET", "PUT"]
    calls.clear()
    with Client("http://node", transport=httpx.MockTransport(handler), retries=0) as c, \
            pytest.raises(cl.TransportFailure):         # retries=0: the first failure is final
        c.exists(f"{PREFIX}/x")
    assert calls == ["GET"]


# --------------------------------------------------------------------------- auth and errors


def test_basic_auth_user_is_url_encoded():
    seen = []

    def handler(request):
        seen.append(request.headers.get("authorization"))
        return httpx.Response(201, json={"responseCode": 1, "handle": f"{PREFIX}/x"})

    with Client("http://node", username="300:88.100.24/admin", password="p:w中",
                transport=httpx.MockTransport(handler)) as c:
        assert c.register(_record("x")) is True
    scheme, token = seen[0].split(" ")
    assert scheme == "Basic" and base64.b64decode(token).decode() == "300%3A88.100.24/admin:p:w中"
    with pytest.raises(ValueError):
        Client("http://node", username="admin", password="x")
    with pytest.raises(ValueError):
        Client("http://node", username=ADMIN)


def test_authentication_and_permission_errors(node):
    with Client(node.url, username=ADMIN, password="wrong") as bad:
        with pytest.raises(cl.AuthenticationError) as err:
            bad.register(_record("n1"))
        assert (err.value.response_code, err.value.status) == (403, 403)
        with pytest.raises(cl.AuthenticationError):
            bad.resolve(f"{PREFIX}/admin", auth=True)
        assert len(bad.resolve(f"{PREFIX}/admin")) == 1                 # anonymous read is fine
    with node.client(anonymous=True) as anon:
        with pytest.raises(cl.AuthenticationError) as err:
            anon.register(_record("n1"))
        assert (err.value.response_code, err.value.status) == (402, 401)
    with node.client() as c:
        # non-public values: only with auth=True
        c.register(HandleRecord(f"{PREFIX}/p1", [url_value("https://pub", index=1),
                                                 HandleValue(2, "NOTE", {"format": "string", "value": "internal"},
                                                             pub_read=False)]))
        assert _types(c.resolve(f"{PREFIX}/p1")) == [(1, "URL")]
        rec = c.resolve(f"{PREFIX}/p1", auth=True)
        assert _types(rec) == [(1, "URL"), (2, "NOTE")] and rec.get(2).pub_read is False
        # a user that is not a prefix administrator may not create handles
        c.register(HandleRecord(f"{PREFIX}/alice", [HandleValue(300, "HS_SECKEY", {"format": "string", "value": "pw"})]))
        with pytest.raises(cl.InvalidValue):
            c.register(HandleRecord(f"{PREFIX}/big", [desc_value(kind="x", blob="y" * 40_000, index=i)
                                                      for i in (1, 2)]))      # body > the node's 64 KiB
    with Client(node.url, username=f"300:{PREFIX}/alice", password="pw") as alice:
        with pytest.raises(cl.PermissionDenied) as err:
            alice.register(_record("a1"))
        assert err.value.response_code == 400 and err.value.status == 403


def test_error_mapping_of_replies():
    def resp(status, body=None, text=None):
        req = httpx.Request("GET", "http://node/api/batch")
        if body is not None:
            return httpx.Response(status, json=body, request=req)
        return httpx.Response(status, text=text or "", request=req)

    e = cl.error_from_response(resp(404, {"responseCode": 100, "handle": "88.1.2/x", "message": "handle not found"}))
    assert type(e) is cl.HandleNotFound and (e.response_code, e.status, e.handle, e.message) == (100, 404, "88.1.2/x", "handle not found")
    assert "responseCode 100" in str(e) and "HTTP 404" in str(e)
    assert type(cl.error_from_response(resp(404, {"detail": "Not Found"}))) is ClientError   # no such endpoint
    assert "/api/batch" in cl.error_from_response(resp(404, {"detail": "Not Found"})).message
    assert type(cl.error_from_response(resp(401, text="no"))) is cl.AuthenticationError
    assert type(cl.error_from_response(resp(502, text="<html>bad gateway</html>"))) is cl.ServerError
    assert type(cl.error_from_response(resp(500, {"responseCode": 2, "message": "server error"}))) is cl.ServerError
    for rc, cls in [(101, cl.HandleExists), (102, cl.InvalidHandle), (200, cl.ValuesNotFound),
                    (201, cl.ValueExists), (202, cl.InvalidValue), (301, cl.NotResponsible),
                    (400, cl.PermissionDenied), (402, cl.AuthenticationError), (403, cl.AuthenticationError)]:
        assert type(cl.error_from_response(resp(400, {"responseCode": rc, "message": "m"}))) is cls
        assert issubclass(cls, ClientError)


def test_unreachable_node_is_a_transport_failure():
    from pg import free_port
    with Client(f"http://127.0.0.1:{free_port()}", retries=1, backoff=0, timeout=2) as c, \
            pytest.raises(cl.TransportFailure) as err:
        c.resolve(f"{PREFIX}/x")
    assert err.value.handle == f"{PREFIX}/x" and err.value.response_code is None


def test_invalid_handles_are_refused_locally():
    with Client("http://node", transport=httpx.MockTransport(lambda r: pytest.fail("sent"))) as c:
        for bad in ("no-slash", "99.1.2/x", f"{PREFIX}/has space"):
            with pytest.raises(ValueError):
                c.resolve(bad)


# --------------------------------------------------------------------------- LocalNode


def test_local_node_lifecycle_and_temp_db():
    node = LocalNode(prefix=PREFIX, scrypt_n=2**10)
    with pytest.raises(RuntimeError):
        node.client()
    with node:
        assert node.running and node.url.startswith("http://127.0.0.1:")
        db_file = Path(node.db.removeprefix("sqlite:///"))
        assert db_file.exists()
        assert node.store.verify(f"{PREFIX}/admin", 300, node.admin_password)
        with node.client() as c:
            assert c.exists(f"{PREFIX}/admin")
        assert PREFIX in repr(node)
    assert not node.running and not db_file.exists()


def test_local_node_keeps_a_given_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'keep.db'}"
    with LocalNode(prefix=PREFIX, db=url, admin_password="pw", scrypt_n=2**10) as node, node.client() as c:
        c.register(_record("kept"))
    # the admin handle exists already: kept, not re-created
    with LocalNode(prefix=PREFIX, db=url, admin_password="pw", scrypt_n=2**10) as node, node.client() as c:
        assert c.exists(f"{PREFIX}/kept")
    assert (tmp_path / "keep.db").exists()


# --------------------------------------------------------------------------- readable records


def test_record_html_table_escapes_and_decodes_carbon_fields():
    rec = HandleRecord(f"{PREFIX}/x<1>", [
        desc_value(kind="facility", name_zh="熟料<script>alert(1)</script>", name_en="Clinker & Co", index=1),
        url_value("https://example.com/a?b=1&c=<2>", index=2),
        url_value("javascript://alert(1)", index=3),
        carbon_value("CARBON.GRADE", grade="A", period="2025", scheme="ZJ-2024", index=4),
        carbon_value("CARBON.EFFICIENCY", value=0.8125, period="2025-Q1", index=5),
        ref_value(f"{PREFIX}/parent", index=6),
        HandleValue(7, "NOTE", {"format": "string", "value": "internal"}, pub_read=False),
        HandleValue(300, "HS_SECKEY", {"format": "string", "value": "plain-secret"}, pub_read=False),
    ])
    html = rec._repr_html_()
    for header in ("索引 index", "类型 type", "值 value", "TTL", "时间戳 timestamp", "公开 public"):
        assert header in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Clinker &amp; Co" in html and "x&lt;1&gt;" in html
    assert 'href="https://example.com/a?b=1&amp;c=&lt;2&gt;"' in html
    assert 'href="javascript' not in html
    assert "<b>grade</b>: A" in html and "<b>scheme</b>: ZJ-2024" in html and "<b>period</b>: 2025" in html
    assert "<b>value</b>: 0.8125 tCO2e/万元" in html                  # value with its unit
    assert '{"' not in html                                           # JSON decoded, not dumped
    assert "碳效等级" in html and "否 no" in html and "是 yes" in html
    assert "plain-secret" not in html and "hidden" in html
    assert html.count("<tr>") == 1 + len(rec)
    assert "88.100.24/x&lt;1&gt;" in html

    text = str(rec)
    assert text.splitlines()[0].startswith(f"标识 Handle {PREFIX}/x<1>") and "8 values" in text
    assert "grade: A" in text and "value: 0.8125 tCO2e/万元" in text and "plain-secret" not in text
    assert repr(rec) == f"HandleRecord('{PREFIX}/x<1>', 8 values)"    # unchanged

    from IPython.lib.pretty import pretty
    assert pretty(rec) == text
    v = rec.get(4)
    assert str(v).startswith("4 CARBON.GRADE: grade: A") and "<b>grade</b>: A" in v._repr_html_()
    assert "无值 no values" in HandleRecord(f"{PREFIX}/empty")._repr_html_()


def test_resolved_record_displays(node):
    with node.client() as c:
        c.register(_record("shown"))
        html = c.resolve(f"{PREFIX}/shown")._repr_html_()
    assert "<b>value</b>: 12.5 tCO2e" in html and "<b>name_zh</b>: 电表 1" in html
    assert "<b>standard</b>: GB/T 32150-2015" in html


def test_bearer_token_client(node):
    token = node.store.issue_token(ADMIN, label="apps")
    with cl.Client(node.url, token=token) as c:
        assert c.register(_record("tok.1")) is True
    assert node.store.audit_rows(f"{PREFIX}/tok.1")[0]["who"] == ADMIN

    async def go():
        async with cl.AsyncClient(node.url, token="wbt_wrong") as c:
            with pytest.raises(cl.AuthenticationError):
                await c.register(_record("tok.2"))
    asyncio.run(go())
    with pytest.raises(ValueError):
        cl.Client(node.url, username=ADMIN, password="x", token=token)
