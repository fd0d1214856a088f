"""``workbench idnode``: register-boundary (idempotent, batched) and serve (a real subprocess)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner
from pg import free_port

from workbench.cli.idnode import idnode_group
from workbench.demo import plants as demo
from workbench.identifiers.store import HandleStore

PREFIX = demo.PREFIX
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def boundary_csv(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    demo.generate(out)
    return out / "boundary.csv"


def _register(boundary_csv, db_url, *extra):
    r = CliRunner().invoke(idnode_group, ["register-boundary", str(boundary_csv), "--db", db_url,
                                          "--prefix", PREFIX, "--sender", "test", *extra])
    assert r.exit_code == 0, r.output
    return r.output


def test_register_boundary_all_nodes_and_idempotent(db_url, boundary_csv, tmp_path):
    db = db_url
    nodes = pd.read_csv(boundary_csv, dtype=str, keep_default_na=False)
    n = len(nodes)
    out = _register(boundary_csv, db, "--batch-size", "7")
    assert f"{n} nodes: {n} new, 0 updated, 0 unchanged" in out

    store = HandleStore(db)
    total, handles = store.list(PREFIX)
    assert total == n
    assert {h.lower() for h in handles} == {i.lower() for i in nodes["identifier"]}
    for row in nodes.itertuples(index=False):
        rec = store.get(row.identifier)
        assert rec is not None
        assert rec.first("DESC") is not None and rec.first("HS_ADMIN") is not None
        if row.parent_id:
            parent = nodes.loc[nodes["node_id"] == row.parent_id, "identifier"].iloc[0]
            assert parent in rec.get(2).value
    audit = store.audit_rows()
    assert len(audit) == n and {a["who"] for a in audit} == {"test"}

    # second run: nothing new, nothing written
    out = _register(boundary_csv, db)
    assert f"{n} nodes: 0 new, 0 updated, {n} unchanged" in out
    assert store.audit_rows() == audit

    # a changed node is updated, the rest skipped
    nodes.loc[nodes["node_id"] == nodes["node_id"].iloc[-1], "name_en"] = "renamed meter"
    changed = tmp_path / "boundary.csv"
    nodes.to_csv(changed, index=False)
    out = _register(changed, db)
    assert f"{n} nodes: 0 new, 1 updated, {n - 1} unchanged" in out
    assert len(store.audit_rows()) == n + 1
    assert "renamed meter" in store.get(nodes["identifier"].iloc[-1]).first("DESC").value


def test_register_boundary_bad_prefix(tmp_path, boundary_csv):
    r = CliRunner().invoke(idnode_group, ["register-boundary", str(boundary_csv), "--db",
                                          f"sqlite:///{tmp_path / 'x.db'}", "--prefix", "88.999.1"])
    assert r.exit_code == 2 and "not under prefix" in r.output


def test_serve_subprocess(tmp_path, boundary_csv):
    db = f"sqlite:///{tmp_path / 'idnode.db'}"
    _register(boundary_csv, db)
    nodes = pd.read_csv(boundary_csv, dtype=str, keep_default_na=False)
    child = nodes[nodes["parent_id"] != ""].iloc[0]
    parent = nodes.loc[nodes["node_id"] == child["parent_id"], "identifier"].iloc[0]

    port = free_port()
    admin = f"300:{PREFIX}/admin"
    env = dict(os.environ, WB_IDNODE_ADMIN_PW="s3cret-pw",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "workbench.cli.idnode", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--db", db, "--prefix", PREFIX, "--admin", admin, "--admin-password-env", "WB_IDNODE_ADMIN_PW",
           "--workers", "2"]
    assert "s3cret-pw" not in " ".join(cmd)
    log = tmp_path / "serve.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                r = httpx.get(f"{base}/api/handles/{child['identifier']}", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert r.status_code == 200
        body = r.json()
        assert body["responseCode"] == 1
        refs = [v for v in body["values"] if v["type"] == "REF"]
        assert refs and parent in refs[0]["data"]["value"]

        # the admin handle was created on first start, with a hashed secret from the environment
        store = HandleStore(db)
        assert store.verify(f"{PREFIX}/admin", 300, "s3cret-pw")
        assert store.get(f"{PREFIX}/admin", indices=[300]).values[0].value.startswith("scrypt$")
        # and it may write
        r = httpx.put(f"{base}/api/handles/{PREFIX}/dev.new", auth=(f"300%3A{PREFIX}/admin", "s3cret-pw"),
                      json={"values": [{"index": 1, "type": "URL", "data": "https://example.com/x"}]}, timeout=10)
        assert r.status_code in (200, 201) and r.json()["responseCode"] == 1, r.text
        # two worker processes, each with its own cache: a change made through one is served by
        # both once the change feed has been read (coherence interval 0.2 s)
        for _ in range(10):
            httpx.get(f"{base}/api/handles/{PREFIX}/dev.new", timeout=5)      # warm both caches
        r = httpx.put(f"{base}/api/handles/{PREFIX}/dev.new", auth=(f"300%3A{PREFIX}/admin", "s3cret-pw"),
                      json={"values": [{"index": 1, "type": "URL", "data": "https://example.com/moved"}]},
                      timeout=10)
        assert r.json()["responseCode"] == 1
        time.sleep(0.6)
        seen = {httpx.get(f"{base}/api/handles/{PREFIX}/dev.new", timeout=5).json()["values"][0]["data"]["value"]
                for _ in range(20)}
        assert seen == {"https://example.com/moved"}
        r = httpx.put(f"{base}/api/handles/{PREFIX}/dev.new2", auth=(f"300%3A{PREFIX}/admin", "wrong"),
                      json={"values": [{"index": 1, "type": "URL", "data": "https://example.com/x"}]}, timeout=10)
        assert r.status_code == 403
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
