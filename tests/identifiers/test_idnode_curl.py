"""The node's error codes as a plain HTTP client sees them: real ``curl`` against a running node.

Every row: the request, the HTTP status and the Handle ``responseCode`` expected (reference table
in identifiers-and-iot.md).  ``curl`` is installed from Debian when missing (as root)."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from pg import running_server
from sysdeps import ensure_debian_package

from workbench.identifiers.model import HandleRecord, HandleValue, admin_value
from workbench.identifiers.server import create_app
from workbench.identifiers.store import HandleStore

PREFIX = "88.100.24"
ADMIN = "300%3A88.100.24/admin:s3cret"
ALICE = "300%3A88.100.24/alice:alicepw"
URL_BODY = '{"values":[{"index":1,"type":"URL","data":"https://example.com/d1"}]}'


def _curl() -> str:
    found = ensure_debian_package("curl", lambda: shutil.which("curl"))
    assert found, "curl is needed for these tests and could not be installed"
    return found


@pytest.fixture
def node_url(db_url):
    store = HandleStore(db_url, scrypt_n=2**10)
    for user, pw in (("admin", "s3cret"), ("alice", "alicepw")):
        store.create(HandleRecord(f"{PREFIX}/{user}", [
            HandleValue(index=300, type="HS_SECKEY", data={"format": "string", "value": pw}),
            admin_value(PREFIX)]))
    with running_server(create_app(store, PREFIX, admins=[f"300:{PREFIX}/admin"])) as url:
        yield url
    store.close()


def curl(url: str, method: str, path: str, *, user: str | None = None, data: str | None = None):
    cmd = [_curl(), "-s", "-g", "-X", method, "-o", "-", "-w", "\n%{http_code}", url + path]
    if user:
        cmd += ["-u", user]
    if data is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", data]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout
    body, _, status = out.rpartition("\n")
    return int(status), json.loads(body)


CASES = [
    # (description, method, path, user, body, HTTP status, responseCode)
    ("create", "PUT", f"/api/handles/{PREFIX}/d1", ADMIN, URL_BODY, 201, 1),
    ("resolve", "GET", f"/api/handles/{PREFIX}/d1", None, None, 200, 1),
    ("replace", "PUT", f"/api/handles/{PREFIX}/d1", ADMIN, URL_BODY, 200, 1),
    ("exists, overwrite=false", "PUT", f"/api/handles/{PREFIX}/d1?overwrite=false", ADMIN, URL_BODY, 409, 101),
    ("value exists", "PUT", f"/api/handles/{PREFIX}/d1?index=1&overwrite=false", ADMIN, URL_BODY, 409, 201),
    ("no value matches", "GET", f"/api/handles/{PREFIX}/d1?type=EMAIL", None, None, 200, 200),
    ("delete absent value", "DELETE", f"/api/handles/{PREFIX}/d1?index=7", ADMIN, None, 400, 200),
    ("not found", "GET", f"/api/handles/{PREFIX}/nothing", None, None, 404, 100),
    ("delete absent handle", "DELETE", f"/api/handles/{PREFIX}/nothing", ADMIN, None, 404, 100),
    ("invalid handle", "GET", "/api/handles/12ab/x", None, None, 400, 102),
    ("not our prefix", "GET", "/api/handles/88.999.1/x", None, None, 400, 301),
    ("bad JSON", "PUT", f"/api/handles/{PREFIX}/d2", ADMIN, "{oops", 400, 202),
    ("unknown format", "PUT", f"/api/handles/{PREFIX}/d2", ADMIN,
     '{"values":[{"index":1,"type":"X","data":{"format":"mystery","value":"1"}}]}', 400, 202),
    ("oversized record", "PUT", f"/api/handles/{PREFIX}/d2", ADMIN,
     '{"values":[{"index":1,"type":"X","data":"' + "x" * 70_000 + '"}]}', 400, 202),
    ("no credentials", "PUT", f"/api/handles/{PREFIX}/d2", None, URL_BODY, 401, 402),
    ("wrong password", "PUT", f"/api/handles/{PREFIX}/d2", "300%3A88.100.24/admin:nope", URL_BODY, 403, 403),
    ("unknown user", "PUT", f"/api/handles/{PREFIX}/d2", "300%3A88.100.24/ghost:pw", URL_BODY, 403, 403),
    ("insufficient permissions", "PUT", f"/api/handles/{PREFIX}/d2", ALICE, URL_BODY, 403, 400),
    ("listing anonymous", "GET", f"/api/handles?prefix={PREFIX}", None, None, 401, 402),
    ("listing", "GET", f"/api/handles?prefix={PREFIX}&pageSize=0", ADMIN, None, 200, 1),
    ("delete value", "DELETE", f"/api/handles/{PREFIX}/d1?index=1", ADMIN, None, 200, 1),
    ("delete handle", "DELETE", f"/api/handles/{PREFIX}/d1", ADMIN, None, 200, 1),
    ("gone", "GET", f"/api/handles/{PREFIX}/d1", None, None, 404, 100),
]


def test_error_codes_with_curl(node_url):
    results = []
    for desc, method, path, user, body, status, rc in CASES:
        got_status, got = curl(node_url, method, path, user=user, data=body)
        results.append((desc, got_status, got.get("responseCode")))
        assert (got_status, got.get("responseCode")) == (status, rc), (desc, got)
        assert "handle" in got, desc                                  # always present (pyhandle relies on it)
        if got_status >= 400:
            assert got.get("message"), desc
    assert len(results) == len(CASES)
    # nothing was partially written by the refused requests
    status, _ = curl(node_url, "GET", f"/api/handles/{PREFIX}/d2")
    assert status == 404
