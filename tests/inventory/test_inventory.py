"""The inventory on the demo enterprise: known answer, cube, outputs, notebook through papermill."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from workbench.cli.main import main
from workbench.inventory.compute import compute_inventory, months
from workbench.lake.catalog import open_catalog
from workbench.reports.inventory import write_outputs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def year_inventory(demo_data):
    return compute_inventory(open_catalog(demo_data / "catalog.yaml"), "2025-01", "2025-12")


def _hand_total(activity: pd.DataFrame) -> float:
    """GB/T 32150 by hand for the demo ledger (Zhejiang, reporting year 2025, GWP AR5).

    Factors typed from the published tables (not read from the package):
      grid  CN-ZJ 2023 (latest published) 0.4974 tCO2/MWh
      raw coal   NCV site-measured per record, CC 26.37 tC/TJ, OF 94 %
      natural gas NCV 389.31 GJ/10^4Nm3, CC 15.3 tC/TJ, OF 99 %
      diesel     NCV 42.652 GJ/t, CC 20.2 tC/TJ, OF 98 %
      limestone  0.4397 tCO2/t CaCO3 × purity
      heat       0.11 tCO2/GJ (exported: subtracted)
      SF6        GWP 23500 (AR5)
    """
    total = 0.0
    for r in activity.itertuples(index=False):
        q = float(r.quantity)
        if r.item == "grid":
            assert r.unit == "MWh"
            total += q * 0.4974
        elif r.item == "raw_coal":
            assert r.unit == "t" and r.ncv_unit == "GJ/t"
            total += q * float(r.ncv) * 26.37e-3 * 0.94 * 44 / 12
        elif r.item == "natural_gas":
            q_wan = q if "10^4" in r.unit or "万" in r.unit else q / 1e4
            total += q_wan * 389.31 * 15.3e-3 * 0.99 * 44 / 12
        elif r.item == "diesel":
            total += q * 42.652 * 20.2e-3 * 0.98 * 44 / 12
        elif r.item == "limestone":
            total += q * float(r.purity) * 0.4397
        elif r.item == "heat":
            total += (-1 if r.source.startswith("exported") else 1) * q * 0.11
        elif r.item == "sf6":
            total += q * 23500
        else:  # pragma: no cover - the demo ledger has only these items
            raise AssertionError(f"unexpected item {r.item}")
    return total


def test_year_total_matches_hand_computation(demo_data, year_inventory):
    act = pd.read_csv(demo_data / "activity.csv", dtype={"period": str})
    assert year_inventory.total_tco2e == pytest.approx(_hand_total(act), rel=1e-12)


def test_month_total_matches_hand_computation(demo_data):
    act = pd.read_csv(demo_data / "activity.csv", dtype={"period": str})
    inv = compute_inventory(open_catalog(demo_data / "catalog.yaml"), "2025-12", "2025-12")
    assert inv.total_tco2e == pytest.approx(_hand_total(act[act["period"] == "2025-12"]), rel=1e-12)
    assert set(inv.ledger["period"]) == {"2025-12"}


def test_cube_rollups_agree_with_ledger(year_inventory):
    led, cube = year_inventory.ledger, year_inventory.cube
    assert float(cube["tco2e"].sum()) == pytest.approx(led["tco2e"].sum(), rel=1e-12)
    by_fs = led.groupby(["facility", "source"])["tco2e"].sum()
    for (fac, src), v in by_fs.items():
        assert float(cube["tco2e"].sel(facility=fac, source=src).sum()) == pytest.approx(v, rel=1e-12, abs=1e-9)
    by_p = led.groupby("period")["tco2e"].sum()
    np.testing.assert_allclose(cube["enterprise_tco2e"].sel(period=by_p.index).values, by_p.values, rtol=1e-12)
    assert set(cube.dims) == {"period", "facility", "source"}


def test_carbon_efficiency_is_emissions_over_value_added(demo_data, year_inventory):
    m = pd.read_csv(demo_data / "monthly.csv", dtype={"period": str})
    va = m[m["node_id"] == "ENT"].set_index("period")["value_added_10k_cny"]
    eff = year_inventory.efficiency.set_index("period")
    led = year_inventory.ledger.groupby("period")["tco2e"].sum()
    for p in va.index:
        assert eff.at[p, "carbon_efficiency"] == pytest.approx(led[p] / va[p], rel=1e-12)
    assert year_inventory.summary["carbon_efficiency"] == pytest.approx(led.sum() / va.sum(), rel=1e-12)
    clinker = m.dropna(subset=["clinker_t"]).set_index("period")["clinker_t"]
    assert eff.at["2025-06", "enterprise_tco2e_per_t_clinker"] == pytest.approx(led["2025-06"] / clinker["2025-06"], rel=1e-12)


def test_every_ledger_number_traces_to_record_and_factor(demo_data, year_inventory):
    led = year_inventory.ledger
    act = pd.read_csv(demo_data / "activity.csv", dtype={"period": str})
    # allocated parts of the electricity bill carry the bill's record id before the '@'
    assert set(led["record_id"].str.split("@").str[0]) == set(act["record_id"])
    assert led["record_id"].is_unique
    lib_ids = set(pd.read_parquet(demo_data / "factors.parquet")["factor_id"])
    for ids in led["factor_ids"]:
        assert ids, "every row names its factors"
        for fid in ids.split(";"):
            assert fid in lib_ids or fid.startswith("site:"), fid
    used = year_inventory.factors_used
    assert {"document", "table", "year", "verified", "selection"} <= set(used.columns)
    assert (used["document"].str.len() > 0).all()
    grid = used[used["factor_id"].str.startswith("mee-avg")]
    assert "latest data year 2023" in grid["selection"].iloc[0]


def test_meter_check_reconciles_electricity(year_inventory):
    mc = year_inventory.meter_check
    el = mc[mc["item"] == "grid"]
    assert len(el) == 12
    # the main meter agrees with the bill except where a planted anomaly sits on it
    assert (el["difference_pct"].abs() < 1.0).sum() >= 10


def test_outputs_written(tmp_path, year_inventory):
    paths = write_outputs(year_inventory, tmp_path)
    html = Path(paths["html"]).read_text(encoding="utf-8")
    for heading in ("报告主体基本信息", "温室气体排放量", "活动水平数据及来源", "排放因子数据及来源", "其他希望说明的情况"):
        assert heading in html
    total = re.search(r'id="total-tco2e">([\d,\.]+)<', html).group(1)
    assert float(total.replace(",", "")) == pytest.approx(year_inventory.total_tco2e, abs=0.05)
    assert html.count("data:image/png;base64,") == 4
    xl = pd.read_excel(paths["xlsx"], sheet_name=None)
    assert {"summary 汇总", "by source 分类", "ledger 明细", "factors 排放因子", "carbon efficiency 碳效"} <= set(xl)
    led = pd.read_parquet(paths["ledger"])
    assert led["tco2e"].sum() == pytest.approx(year_inventory.total_tco2e, rel=1e-12)


def test_bad_period_range_is_an_error(demo_data):
    cat = open_catalog(demo_data / "catalog.yaml")
    with pytest.raises(ValueError, match="no activity records"):
        compute_inventory(cat, "2019-01", "2019-02")
    with pytest.raises(ValueError, match="after"):
        months("2025-05", "2025-01")


def test_notebooks_are_committed_without_outputs():
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), path
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), path


@pytest.mark.slow
def test_inventory_notebook_through_papermill_cli(tmp_path, demo_data, year_inventory):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["report", "inventory", "--period", "2025-12", "--start", "2025-01",
                                    "--catalog", str(demo_data / "catalog.yaml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    nb_path = out / "inventory_2025-12.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    params = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert params and "2025-01" in params[0].source
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) >= 4
    html = (out / "inventory_2025-01_2025-12.html").read_text(encoding="utf-8")
    total = float(re.search(r'id="total-tco2e">([\d,\.]+)<', html).group(1).replace(",", ""))
    assert total == pytest.approx(year_inventory.total_tco2e, abs=0.05)
    assert (out / "inventory_2025-01_2025-12.xlsx").exists()
    assert (out / "ledger_2025-01_2025-12.parquet").exists()
    assert str(out / "inventory_2025-01_2025-12.html") in res.output


def test_report_cli_rejects_bad_period(tmp_path, demo_data):
    res = CliRunner().invoke(main, ["report", "inventory", "--period", "2025-13",
                                    "--catalog", str(demo_data / "catalog.yaml"), "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "period" in res.output.lower()


def test_demo_generate_and_latest_period_cli(tmp_path, cli_env, python):
    out = tmp_path / "d"
    r = subprocess.run([python, "-m", "workbench.cli", "demo", "generate", "--out", str(out), "--seed", "7"],
                       env=cli_env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (out / "catalog.yaml").exists() and (out / "factors.parquet").exists()
    r = subprocess.run([python, "-m", "workbench.cli", "demo", "latest-period", str(out)],
                       env=cli_env, capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "2025-12"
    ent = json.loads((out / "enterprise.json").read_text(encoding="utf-8"))
    assert ent["region"] == "CN-ZJ"


def test_bill_allocated_to_facilities_by_submeter_shares(demo_data, year_inventory):
    """Σ allocated parts = the bill; each part = bill × (node's metered MWh ÷ main meter MWh)."""
    from workbench.core.meters import read_meters
    from workbench.inventory.readings import meter_consumption

    led = year_inventory.ledger
    act = pd.read_csv(demo_data / "activity.csv", dtype={"period": str})
    bill = act[act["item"] == "grid"].set_index("period")["quantity"]
    el = led[led["item"] == "grid"]
    np.testing.assert_allclose(el.groupby("period")["quantity"].sum().loc[bill.index].values, bill.values, rtol=1e-12)
    meters = read_meters(demo_data / "meters.csv")
    cons = meter_consumption(demo_data / "readings.parquet", meters, start="2025-03-01", end="2025-04-01")
    main = cons[cons["is_main"] & (cons["item"] == "grid")]["consumption"].sum()  # kWh
    kiln = cons[~cons["is_main"] & (cons["node_id"] == "F01.W02.P01") & (cons["source"] == "purchased_electricity")]["consumption"].sum()
    part = el[(el["period"] == "2025-03") & (el["node_id"] == "F01.W02.P01")]["quantity"].iloc[0]
    assert part == pytest.approx(bill["2025-03"] * kiln / main, rel=1e-9)
    # the cement grinding facility now carries its electricity: intensity per t of cement is known
    f02 = year_inventory.cube["intensity_cement"].sel(facility="F02", period="2025-03").item()
    out = pd.read_csv(demo_data / "monthly.csv", dtype={"period": str})
    cement = out[(out["node_id"] == "F02") & (out["period"] == "2025-03")]["cement_t"].iloc[0]
    f02_tco2e = led[(led["facility"] == "F02") & (led["period"] == "2025-03")]["tco2e"].sum()
    assert f02_tco2e > 0 and f02 == pytest.approx(f02_tco2e / cement, rel=1e-12)


def test_without_allocation_the_bill_stays_on_the_enterprise(demo_data, year_inventory):
    inv = compute_inventory(open_catalog(demo_data / "catalog.yaml"), "2025-01", "2025-12",
                            allocate=False, meter_check=False)
    assert inv.total_tco2e == pytest.approx(year_inventory.total_tco2e, rel=1e-12)
    assert set(inv.ledger.loc[inv.ledger["item"] == "grid", "facility"]) == {"ENT"}


def test_demo_generate_rejects_impossible_sizes(tmp_path):
    res = CliRunner().invoke(main, ["demo", "generate", "--out", str(tmp_path / "x"), "--meters", "3"])
    assert res.exit_code == 2 and "meters" in res.output
    res = CliRunner().invoke(main, ["demo", "generate", "--out", str(tmp_path / "y"), "--years", "0"])
    assert res.exit_code == 2
