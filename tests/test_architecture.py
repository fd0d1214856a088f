"""The layout that shows the layers (issue 11, point 8): import-linter contracts, one base error,
the public API, the CLI package, tests grouped by package."""
from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACT_NAMES = {
    "layers": "Layers run one way",
    "connectors": "Connectors import only the core",
    "from-the-top": "Below the CLI and the demo, the package reaches connectors only through entry",
    "cycles": "No import cycles between sibling modules anywhere in the package",
}


def _lint(cwd: Path, env_path: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(env_path or cwd), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_import_contracts_hold():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in CONTRACT_NAMES.values():
        assert name in r.stdout.replace("\n", " ")
    assert " broken" not in r.stdout.split("Contracts:")[-1].replace("0 broken", "")


def test_the_contracts_catch_an_upward_import_a_connector_reaching_up_and_a_cycle(tmp_path):
    """The same contracts on a copy of the code with three violations planted: each is reported."""
    for pkg in ("workbench", "connectors"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "data", "templates"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    units = tmp_path / "workbench" / "core" / "units.py"
    units.write_text(units.read_text(encoding="utf-8") + "\nfrom workbench.inventory import compute  # noqa\n",
                     encoding="utf-8")
    parquet = tmp_path / "connectors" / "parquet.py"
    parquet.write_text(parquet.read_text(encoding="utf-8") + "\nimport workbench.lake.store  # noqa\n", encoding="utf-8")
    quality = tmp_path / "workbench" / "lake" / "quality.py"
    quality.write_text(quality.read_text(encoding="utf-8") + "\nimport workbench.lake.catalog  # noqa\n",
                       encoding="utf-8")
    r = _lint(tmp_path)
    out = r.stdout.replace("\n", " ")
    assert r.returncode != 0, out
    assert "workbench.core.units -> workbench.inventory.compute" in out
    assert "connectors.parquet -> workbench.lake.store" in out
    assert "Inside the lake: catalogs read the store, the store checks rules BROKEN" in out


def _modules(package: str):
    pkg = importlib.import_module(package)
    yield pkg
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        if info.name.endswith("__main__"):
            continue
        yield importlib.import_module(info.name)


def test_every_error_of_the_package_is_a_workbench_error():
    from workbench import WorkbenchError

    errors = []
    for package in ("workbench", "connectors"):
        for mod in _modules(package):
            for _, cls in inspect.getmembers(mod, inspect.isclass):
                if cls.__module__ == mod.__name__ and issubclass(cls, BaseException):
                    errors.append(cls)
    strays = [f"{c.__module__}.{c.__qualname__}" for c in errors if not issubclass(c, WorkbenchError)]
    assert not strays, f"errors not derived from WorkbenchError: {strays}"
    # the search found the package's errors (it is not vacuous)
    names = {c.__name__ for c in errors}
    assert {"UnitError", "ActivityDataError", "LakeError", "AccountingError", "RegimeError", "DeviceError",
            "IdentifierError", "RegistryError", "ConnectorError", "FileFormatError"} <= names
    assert len(errors) >= 40


def test_errors_keep_their_builtin_kind_and_the_problem_names_file_row_and_column(tmp_path):
    from workbench import (
        ActivityDataError,
        DataError,
        UnitError,
        WorkbenchError,
        read_activity,
    )
    from workbench.core.factors import UnknownItemError

    assert issubclass(UnitError, ValueError) and issubclass(UnknownItemError, KeyError)
    bad = tmp_path / "bad.csv"
    bad.write_text("source,item,quantity,unit,period\ncombustion,natural_gas,12,万Nm3,2025-01\n"
                   "combustion,natural_gas,abc,万Nm3,2025-02\n", encoding="utf-8")
    with pytest.raises(WorkbenchError) as info:
        read_activity(bad)
    err = info.value
    assert isinstance(err, ActivityDataError) and isinstance(err, DataError) and isinstance(err, ValueError)
    assert (Path(err.file).name, err.row, err.column) == ("bad.csv", 3, "quantity")
    assert str(err).startswith(f"{err.file}, row 3, column 'quantity': ")


def test_the_public_api_resolves_and_the_core_stays_light():
    import workbench

    names = [n for n in workbench.__all__ if n != "__version__"]
    assert len(names) >= 40
    for n in names:
        assert getattr(workbench, n) is not None, n
    assert set(names) <= set(dir(workbench))
    with pytest.raises(AttributeError):
        workbench.no_such_name  # noqa: B018
    # the core does not pull in the lake's or the cube's libraries
    code = "import sys, workbench.core.units, workbench.core.activity; print(sorted(m for m in ('duckdb', 'xarray', 'workbench.lake', 'workbench.accounting') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_the_public_api_runs_the_whole_path(tmp_path, demo_data):
    """A notebook's path through the public API only: master data → lake → ingest → inventory."""
    import workbench as wb
    from connectors import activity_file

    lake = wb.Lake(tmp_path / "lake", enterprise="demo-cement")
    lake.register_boundary(pd.read_csv(demo_data / "boundary.csv", dtype=str, keep_default_na=False))
    rep = wb.ingest(lake, activity_file.read(demo_data / "activity.csv"), sender="test")
    assert rep.status == "stored" and rep.rows_curated > 0
    assert isinstance(lake, wb.Lake) and set(wb.read_table(tmp_path / "lake", "activity", enterprise="demo-cement")
                                             ["enterprise_id"]) == {"demo-cement"}


def test_the_layout():
    wb = ROOT / "workbench"
    assert not list(wb.glob("cli_*.py")) and (wb / "cli" / "__init__.py").exists()
    assert {p.name for p in wb.iterdir() if p.is_dir() and (p / "__init__.py").exists()} >= {
        "core", "accounting", "regimes", "lake", "ingestion", "inventory", "reports", "registry", "identifiers",
        "devices", "demo", "cli"}
    # tests are grouped by package: only this file and shared helpers stay at the top
    top = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    assert top == {"test_architecture.py"}
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "registry" in r.stdout and "lake" in r.stdout
