"""Footprint localisation (issue 15 point 5) by hand on small frames, then end to end on the demo cement
plant loaded into its lake (one build for the module): contributions add back to the inventory, the
Pareto set, Sankey flows in the explorer's shape, meters; the mechanism and baseline models on the
same inventory; and notebooks/baselines.ipynb executed with papermill."""
from __future__ import annotations

import math
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from notebook_run import execute_notebook

from workbench.demo.load import load_demo
from workbench.inventory.compute import compute_inventory_from_lake
from workbench.inventory.footprint import footprint, footprint_of, sankey_flows
from workbench.lake.store import Lake
from workbench.models.baseline import baseline_frame, fit_baseline, savings
from workbench.models.hotspots import (
    contributions,
    deviations,
    hotspot_flows,
    meter_contributions,
    meter_panel,
    monthly_panel,
    pareto,
)
from workbench.models.mechanism import (
    CEMENT_INDICATORS,
    ModelError,
    compare,
    mechanism_table,
    outputs_of,
)
from workbench.products.energy import rate

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "baselines.ipynb"
YEAR = ("2025-01", "2025-12")
BASE = [f"2025-{m:02d}" for m in range(1, 10)]
REPORT = ["2025-10", "2025-11", "2025-12"]


# ----------------------------------------------------------------------------------------- by hand
def test_pareto_by_hand():
    # gross 100 (the −10 credit has no share): 50 → 0.5, 30 → 0.8, 15 → 0.95, 5 → 1.0
    p = pareto([5.0, 30.0, -10.0, 50.0, 15.0], ["e", "b", "x", "a", "c"])
    assert p["item"].tolist() == ["a", "b", "c", "e", "x"]
    assert p["share"].tolist()[:4] == pytest.approx([0.5, 0.3, 0.15, 0.05])
    assert p["cumulative_share"].tolist()[:4] == pytest.approx([0.5, 0.8, 0.95, 1.0])
    assert p["pareto"].tolist() == [True, True, False, False, False]      # 0.5 + 0.3 reaches 0.8
    assert math.isnan(p["share"].iloc[4]) and p["rank"].tolist() == [1, 2, 3, 4, 5]
    # threshold 0.85: a, b (0.8 < 0.85) and c
    assert pareto([5.0, 30.0, -10.0, 50.0, 15.0], ["e", "b", "x", "a", "c"], threshold=0.85)["pareto"].sum() == 3
    assert pareto([10.0])["pareto"].tolist() == [True]
    with pytest.raises(ModelError):
        pareto([1.0], threshold=0)


def test_deviations_by_hand():
    per = ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05"]
    panel = pd.DataFrame({"A": [10.0, 12.0, 11.0, 15.0, 14.0], "B": [5.0, 5.0, 5.0, 5.0, 4.0]}, index=per)
    d = deviations(panel, per[:3], per[3:]).set_index("item")
    # A: baseline mean 11, sd 1 (ddof 1); reporting 15 + 14 = 29 vs 22 → D = 7, 31.818 %, z = 7 / (1 × √2)
    assert d.at["A", "deviation"] == pytest.approx(7.0) and d.at["A", "deviation_pct"] == pytest.approx(700 / 22)
    assert d.at["A", "z"] == pytest.approx(7 / math.sqrt(2))
    # B: 9 vs 10 → −1, −10 %; sd 0 → no z
    assert d.at["B", "deviation"] == pytest.approx(-1.0) and math.isnan(d.at["B", "z"])
    assert d["rank"].tolist() == [1, 2] and d.index.tolist() == ["A", "B"]
    # with a driver: A = 2 x on the baseline (x = 5, 6, 5.5) → expected 2 × (7 + 8) = 30 for 29 actual: D = −1
    x = pd.Series([5.0, 6.0, 5.5, 7.0, 8.0], index=per)
    d2 = deviations(panel, per[:3], per[3:], driver=x).set_index("item")
    assert d2.at["A", "expected"] == pytest.approx(30.0) and d2.at["A", "deviation"] == pytest.approx(-1.0)
    with pytest.raises(ModelError, match="2025-06"):
        deviations(panel, per[:3], ["2025-06"])


# ----------------------------------------------------------------------------------------- the demo
@pytest.fixture(scope="module")
def demo_root(demo_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("models-lake") / "lake"
    load_demo(demo_data, root, enterprise="demo-cement")
    return root


@pytest.fixture(scope="module")
def inv(demo_root):
    return compute_inventory_from_lake(Lake(demo_root), "demo-cement", *YEAR)


def test_contributions_add_back_to_the_inventory(inv):
    for by in ("facility", "process", "source", "item"):
        c = contributions(inv, by)
        assert c["value"].sum() == pytest.approx(inv.total_tco2e, rel=1e-12)
        gross = c.loc[c["value"] > 0, "value"].sum()
        assert c["share"].sum() == pytest.approx(1.0) and gross >= inv.total_tco2e
    fac = contributions(inv, "facility", lang="en").set_index("item")
    # the clinker line carries the kiln's coal and the limestone's calcination: alone over 80 %
    assert fac.index[fac["pareto"]].tolist() == ["F01"] and fac.at["F01", "name"] == "Clinker production line"
    assert fac.at["F05", "value"] < 0 and not fac.at["F05", "pareto"]          # the exported steam: a credit
    t = inv.by_facility()["total"]
    assert fac.loc[t.index, "value"].to_numpy() == pytest.approx(t.to_numpy())
    panel = monthly_panel(inv, "facility")
    assert panel.sum(axis=1).to_numpy() == pytest.approx(inv.efficiency["tco2e"].to_numpy())


def test_hotspot_flows_have_the_explorers_shape(inv):
    f = hotspot_flows(inv, lang="en")
    plain = sankey_flows(footprint_of(inv), lang="en")
    assert list(f.columns) == [*plain.columns, "hotspot"]
    pd.testing.assert_frame_equal(f[plain.columns], plain)
    for _, g in f.groupby("stage"):
        assert g["tco2e"].sum() == pytest.approx(inv.total_tco2e, rel=1e-9)
    hot = f[f["hotspot"]]
    assert len(hot) and set(hot.loc[hot["stage"] == "source→facility", "target"]) == {"F01"}


def test_meters_and_deviations(demo_root, inv):
    fp = footprint(Lake(demo_root), *YEAR, enterprise="demo-cement", last_year=False)
    m = meter_contributions(fp)
    assert len(m) > 20 and m["pareto"].any()
    heat = m.set_index("item").loc["M0036"]                    # the exported-steam heat meter: a credit
    assert heat["value"] < 0 and not heat["pareto"] and (m["value"] > 0).sum() == len(m) - 1
    top = m.iloc[0]
    assert str(top["node_id"]).startswith("F01.W02")          # a kiln coal feeder leads
    mp = meter_panel(fp)
    assert mp.sum().reindex(m["item"]).to_numpy() == pytest.approx(m["value"].to_numpy(), rel=1e-9)
    d = deviations(monthly_panel(inv, "process"), BASE, REPORT, driver=outputs_of(inv)["clinker"])
    assert d["deviation"].is_monotonic_decreasing and len(d) == monthly_panel(inv, "process").shape[1]


def test_mechanism_and_baseline_on_the_demo(inv):
    t = mechanism_table(inv.ledger, outputs_of(inv), CEMENT_INDICATORS, boundary=inv.boundary)
    assert t.drop(columns="basis").equals(mechanism_table(inv.ledger, outputs_of(inv), CEMENT_INDICATORS).drop(
        columns="basis"))                                   # the demo's ids nest: prefixes agree with the boundary
    c = compare(t, rate=rate).set_index("indicator")
    # the grades are products.energy's: the same value re-rated gives the same grade
    for k in ("clinker_fuel", "clinker_electricity", "clinker_energy", "cement_electricity"):
        assert c.at[k, "grade"] == rate(k, c.at[k, "value"]).grade
        assert c.at[k, "best"] <= c.at[k, "value"] <= c.at[k, "max"]
    # clinker line electricity: the F01 rows of the ledger ÷ the clinker made
    f01 = inv.ledger[inv.ledger["facility"] == "F01"]
    mwh = f01.loc[f01["source"] == "purchased_electricity", "quantity"].sum()
    assert c.at["clinker_electricity", "value"] == pytest.approx(1000 * mwh / inv.efficiency["output_clinker_t"].sum())
    f = baseline_frame(inv)
    assert "synthetic" in f.attrs["weather"] and f["tco2e"].to_numpy() == pytest.approx(inv.efficiency["tco2e"].to_numpy())
    fit = fit_baseline(f.loc[BASE], "tco2e", ["clinker"])
    assert fit.diagnostics["g14_pass"] and fit.diagnostics["r2"] > 0.9
    s = savings(fit, f.loc[REPORT], "tco2e")
    assert s["actual"] == pytest.approx(f.loc[REPORT, "tco2e"].sum()) and s["uncertainty"] > 0
    assert not np.isnan(s["fsu"])


def test_notebook_runs_on_the_demo(demo_root, tmp_path):

    out = tmp_path / "baselines.ipynb"
    execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
                        execution_timeout=300,
                        parameters={"lake_root": str(demo_root), "enterprise": "demo-cement", "start": YEAR[0],
                                    "end": YEAR[1], "baseline_end": "2025-09"})
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     + str(o.get("data", {}).get("text/html", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    for needle in ("GB 16780-2021", "CV(RMSE)", "NMBE", "Pareto", "clinker_fuel"):
        assert needle in text, needle
    src = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in src.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "lake_root" in params[0].source
    assert not any(c.get("outputs") for c in src.cells if c.cell_type == "code")
