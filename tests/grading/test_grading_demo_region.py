"""Grades for every enterprise of the demo region (`workbench demo region`), one hand check of an
electricity-only enterprise, and notebooks/regional_grades.ipynb executed with papermill showing the
package's distribution, movements and trend."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from notebook_run import execute_notebook

from workbench.demo.region import generate_region
from workbench.grading import grade_region, l_trend, load_region, movements

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "regional_grades.ipynb"
N = 80
GRID = 0.4974        # tCO2/MWh, mee-avg:CN-ZJ:2023, the latest Zhejiang factor for 2025


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-region")
    generate_region(out, enterprises=N, seed=5)
    return out


def test_every_enterprise_of_the_demo_region_is_graded_each_month_quarter_and_year(region):
    em = load_region(region)
    months = sorted(em.monthly["period"].unique())
    assert len(months) == 12
    for period in (months, ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"], ["2025"]):
        rg = grade_region(em, period)
        g = rg.grades
        assert len(g) == N * len(period) and g.groupby("period")["enterprise_id"].nunique().eq(N).all()
        assert (g["status"] == "ok").all() and g["grade"].notna().all()
        assert g["grade"].astype(int).between(1, 5).all() and set(g["level"]) <= {"low", "medium", "high"}
        # the distribution by county × industry counts every enterprise once per period
        d = rg.distribution(period=period[0])
        assert int(d["total"].sum()) == N and set(d.columns) >= {1, 2, 3, 4, 5, "ungraded", "total"}


def test_an_electricity_only_enterprise_by_hand(region):
    em = load_region(region)
    ent = em.data.enterprises
    one = ent[ent["route"].eq("grinding")] if "route" in ent else ent.iloc[:0]
    energy = em.data.energy
    if one.empty:   # no grinding station drawn: any enterprise with electricity only
        only = energy.groupby("enterprise_id")["item"].agg(lambda s: set(s) == {"grid"})
        one = ent[ent["enterprise_id"].isin(only[only].index)]
    eid = one["enterprise_id"].iloc[0]
    kwh = energy[(energy["enterprise_id"] == eid) & (energy["period"] == "2025-05")]
    assert set(kwh["item"]) == {"grid"} and set(kwh["unit"]) == {"kWh"}
    va = em.data.value_added.set_index(["enterprise_id", "period"]).loc[(eid, "2025-05"), "value_added_10k_cny"]
    row = grade_region(em, "2025-05").grades.set_index("enterprise_id").loc[eid]
    e = kwh["quantity"].sum() / 1000 * GRID
    assert row["co2_t"] == pytest.approx(e, rel=1e-12)
    assert row["l"] == pytest.approx(e / va, rel=1e-12)


def test_the_regional_notebook_shows_the_package_figures(region, tmp_path):

    out = tmp_path / "regional_grades.ipynb"
    tables = tmp_path / "tables"
    execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
                        execution_timeout=300,
                        parameters={"region_dir": str(region), "period": "2025-Q2", "previous_period": "2025-Q1",
                                    "out_dir": str(tables)})
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    summary = json.loads(next(line for line in text.splitlines() if line.startswith("SUMMARY "))[8:])
    cur, prev = grade_region(region, "2025-Q2"), grade_region(region, "2025-Q1")
    assert summary == cur.summary()
    dist = pd.read_csv(tables / "distribution_county_industry.csv", dtype={"county_code": str})
    want = cur.distribution()
    assert dist["county_code"].tolist() == want["county_code"].tolist()
    assert dist[[str(g) for g in range(1, 6)] + ["ungraded", "total"]].values.tolist() == \
        want[[1, 2, 3, 4, 5, "ungraded", "total"]].values.tolist()
    moved = pd.read_csv(tables / "movements.csv", dtype={"county_code": str})
    assert moved["enterprise_id"].tolist() == movements(prev, cur)["enterprise_id"].tolist()
    trend = pd.read_csv(tables / "trend.csv")
    want_t = l_trend(grade_region(region, [f"2025-{m:02d}" for m in range(1, 13)]))
    assert trend["l"].tolist() == pytest.approx(want_t["l"].tolist(), rel=1e-12)
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 2                                   # the distribution and the trend are drawn


def test_the_notebook_is_parameterised_and_committed_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and all(k in params[0].source for k in ("region_dir", "period", "previous_period"))
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
