"""notebooks/import.ipynb through papermill: the wizard previews and imports a meter export, and the
numbers it shows are those of the lake afterwards."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import nbformat
from notebook_run import execute_notebook

from workbench.lake.store import Lake

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "import.ipynb"


def test_import_notebook_is_parameterised_and_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "file = None" in params[0].source and "lake_root = None" in params[0].source
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_import_notebook_through_papermill(tmp_path):

    f = tmp_path / "export.csv"
    t0 = dt.datetime(2025, 10, 1)
    rows = ["能耗监测系统导出", "采集时间,表计名称,正向有功总电能(kWh)"]
    rows += [f"{t0 + dt.timedelta(hours=i):%Y/%m/%d %H:%M},M-7,{100 + 2.5 * i}" for i in range(10)]
    f.write_text("\n".join(rows) + "\n", encoding="gbk")
    out = tmp_path / "import.ipynb"
    execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
                        parameters={"file": str(f), "lake_root": str(tmp_path / "lake"), "enterprise": "e9"})
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "stored" in text and " 10 rows stored" in text
    # 9 steps of 2.5 kWh, stored in enterprise e9's lake
    lake = Lake(tmp_path / "lake", enterprise="e9")
    assert float(lake.sql("SELECT sum(value) AS v FROM consumption")["v"].iat[0]) == 22.5
