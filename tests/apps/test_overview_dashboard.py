"""notebooks/dashboards/overview.ipynb (issue 13, point 4) through papermill: the manager's one-page
monthly overview shows the package's figures for the month and the year to date."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
from notebook_run import execute_notebook
from status_lake import build

from workbench.apps.explorer import kpis
from workbench.inventory.footprint import footprint
from workbench.lake.store import Lake

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "dashboards" / "overview.ipynb"


def test_the_dashboard_is_parameterised_and_committed_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "lake_root" in params[0].source and "month = None" in params[0].source
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_the_dashboard_shows_the_package_figures(tmp_path):
    import gc

    build(tmp_path)
    gc.collect()                # the builder's lake connections closed before the kernel opens the lake
    out = tmp_path / "overview.ipynb"
    month = None                # the last month with data: ent-a's April bill
    execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
                        execution_timeout=300,
                        parameters={"lake_root": str(tmp_path / "lake"), "enterprise": "ent-a", "month": month})
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # what the widgets show: their saved state (the HTML's value, the Output widget's outputs)
    models = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
    html = "".join(m["state"].get("value", "") for m in models if m["model_name"] == "HTMLModel")
    drawn = [o for m in models if m["model_name"] == "OutputModel" for o in m["state"].get("outputs", [])]
    m = month or "2026-04"                                     # the last month with activity in ent-a
    lake = Lake(tmp_path / "lake", enterprise="ent-a")
    this, ytd = kpis(footprint(lake, m, m)), kpis(footprint(lake, f"{m[:4]}-01", m))
    assert re.search(rf"id='total'>{re.escape(this['total'])}<", html), html[:2000]
    assert re.search(rf"id='ytd'>{re.escape(ytd['total'])}<", html)
    assert f"ent-a · {m}" in html
    assert any(o.get("data", {}).get("image/png") for o in drawn)        # the trend is drawn
