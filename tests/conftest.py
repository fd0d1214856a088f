"""Shared fixtures: one demo enterprise per test session (generating it costs ~1 s)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The default demo enterprise with its catalog and factor snapshot, as `workbench demo generate` writes it."""
    from workbench.catalog import write_demo_catalog, write_factor_snapshot
    from workbench.demo import generate

    out = tmp_path_factory.mktemp("demo")
    generate(out)
    write_factor_snapshot(out)
    ent = json.loads((out / "enterprise.json").read_text(encoding="utf-8"))
    write_demo_catalog(out / "catalog.yaml", enterprise=ent)
    return out


@pytest.fixture(scope="session")
def cli_env() -> dict:
    """Environment for running `python -m workbench.cli` as a subprocess from the checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
