"""Shared fixtures: one demo enterprise per test session (generating it costs ~1 s)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from pg import pg_proc, pg_url, postgresql  # noqa: F401  (fixtures: a private PostgreSQL, see tests/pg.py)

ROOT = Path(__file__).resolve().parents[1]

DB_BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=DB_BACKENDS)
def db_url(request, tmp_path) -> str:
    """SQLAlchemy URL of a fresh, empty database: a SQLite file, then a new database on the tests'
    own PostgreSQL (pytest-postgresql copies a template per test).  Tests using it run on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    proc = request.getfixturevalue("pg_proc")
    conn = request.getfixturevalue("postgresql")
    return pg_url(proc, conn.info.dbname)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The default demo enterprise with its catalog and factor snapshot, as `workbench demo generate` writes it."""
    from workbench.demo.plants import generate
    from workbench.lake.catalog import write_demo_catalog, write_factor_snapshot

    out = tmp_path_factory.mktemp("demo")
    generate(out)
    write_factor_snapshot(out)
    ent = json.loads((out / "enterprise.json").read_text(encoding="utf-8"))
    write_demo_catalog(out / "catalog.yaml", enterprise=ent)
    return out


@pytest.fixture(scope="session")
def cli_env() -> dict:
    """Environment for running `python -m workbench.cli.main` as a subprocess from the checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
