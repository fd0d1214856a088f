"""Shared, built once per session: the verification lake (tests/verification/verify_lake.py, every
figure worked out by hand there), a signing key and its packages — the full one (report and executed
notebook) and a quick one (results and evidence only)."""
from __future__ import annotations

import pytest
from verify_lake import ENT, build


@pytest.fixture(scope="session")
def vlake(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify-lake")
    return tmp, build(tmp)


@pytest.fixture(scope="session")
def signing_key():
    from workbench.verification import generate_key

    return generate_key()


@pytest.fixture(scope="session")
def full_package(vlake, signing_key, tmp_path_factory):
    """(path, ExportResult) of ent-v's 2026 package with the report and the executed notebook."""
    from workbench.verification import export_package

    _, lake = vlake
    out = tmp_path_factory.mktemp("packages") / "ent-v-2026.zip"
    res = export_package(lake, ENT, 2026, out, private_key=signing_key)
    return out, res


@pytest.fixture(scope="session")
def quick_package(vlake, signing_key, tmp_path_factory):
    """(path, ExportResult) of the same without report and notebook."""
    from workbench.verification import export_package

    _, lake = vlake
    out = tmp_path_factory.mktemp("packages-quick") / "ent-v-2026-quick.zip"
    res = export_package(lake, ENT, 2026, out, private_key=signing_key, report=False, notebook=False)
    return out, res
