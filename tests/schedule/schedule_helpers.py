"""Helpers of the schedule tests (fixtures re-exported by conftest.py): a tiny parameterised notebook, a fake executor, schedule files."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(*args) -> dt.datetime:
    """A time in Asia/Shanghai (the schedules' default timezone)."""
    return dt.datetime(*args, tzinfo=SHANGHAI)


def write_tiny_notebook(path: Path) -> Path:
    """A notebook with parameters ``period``, ``output_dir``, ``fail``: writes figures.csv (period,
    value 1) into output_dir, or raises when ``fail``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('period = "2026-01"\noutput_dir = "."\nfail = False\nyear = 2025')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import pathlib\n"
        "if fail:\n"
        "    raise RuntimeError('planned failure')\n"
        "pathlib.Path(output_dir, 'figures.csv').write_text(f'period,value\\n{period},1\\n')\n")
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_notebook(tmp_path_factory) -> Path:
    return write_tiny_notebook(tmp_path_factory.mktemp("nb") / "tiny.ipynb")


class FakeExecutor:
    """Stands in for papermill: records each call and writes figures.csv like the tiny notebook."""

    def __init__(self, fail_on: set | None = None, fail_schedules: set | None = None):
        self.calls: list[dict] = []
        self.fail_on = fail_on or set()
        self.fail_schedules = fail_schedules or set()

    def __call__(self, notebook, parameters, output_dir):
        self.calls.append(dict(parameters))
        if parameters.get("period") in self.fail_on or Path(output_dir).parent.name in self.fail_schedules:
            raise RuntimeError(f"planned failure for {parameters['period']}")
        Path(output_dir, "figures.csv").write_text(f"period,value\n{parameters.get('period')},1\n", encoding="utf-8")
