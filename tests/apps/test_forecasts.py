"""The forecasts & scenarios page (issue 15 point 9) on the demo cement plant's lake, loaded through
the ordinary ingest path, beside a second enterprise.

In process: the daily series is the inventory's monthly ledger (each month's days sum to it), the
year's observed figure is the January–September ledger, the model list is the registry's (a model
registered at run time appears), the scenario figures are those of ``evaluate`` for the same file,
a bad scenario file is one line naming the line.  In Chromium: the same figures, a scenario edited
and evaluated updates them, another enterprise asked for by URL is refused, no console errors.
"""
from __future__ import annotations

import re

import pandas as pd
import pytest

from workbench.apps.auth import UserStore
from workbench.apps.forecasts import (
    forecast_view,
    inventory_of,
    page,
    scenario_view,
)
from workbench.demo.load import load_demo
from workbench.inventory.compute import compute_inventory_from_lake
from workbench.lake.store import Lake
from workbench.models import registry
from workbench.models.forecast import SeasonalNaive
from workbench.models.scenario_config import example_config
from workbench.models.scenarios import GreenElectricity, evaluate

ENT = "demo-cement"
PASSWORD = "forecast password 1"
GREEN_ONLY = "measures:\n  all green: {lever: green_electricity, share: 1.0}\n"


@pytest.fixture(scope="module")
def world(demo_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forecasts-app")
    root = tmp / "lake"
    load_demo(demo_data, root, enterprise=ENT)
    other = Lake(root, enterprise="ent-b")
    other.register_boundary(pd.DataFrame([("ENT", "", "enterprise", "乙厂", "Plant B", "")],
                                         columns=["node_id", "parent_id", "level", "name_zh", "name_en",
                                                  "classification"]))
    users = UserStore(f"sqlite:///{tmp / 'users.db'}", scrypt_n=2**10)
    users.add("fay", "analyst", PASSWORD)
    users.grant("fay", ENT)
    users.add("ben", "manager", PASSWORD)
    users.grant("ben", "ent-b")
    yield root, users, tmp
    users.dispose()


@pytest.fixture(scope="module")
def inventory(world):
    return compute_inventory_from_lake(Lake(world[0], enterprise=ENT), ENT, "2025-01", "2025-12")


def _span(html: str, key: str) -> str:
    m = re.search(rf"<span id='{key}'>([^<]*)</span>", html)
    assert m, (key, html)
    return m.group(1)


def _find(root, name):
    for obj in root.select():
        if getattr(obj, "name", None) == name:
            return obj
    raise AssertionError(name)


def test_the_forecast_starts_from_the_inventory(world, inventory, demo_data):
    root, users, _ = world
    inv, lake = inventory_of(users.principal("fay"), root, ENT)
    assert (inv.period_start, inv.period_end) == ("2025-01", "2025-12")            # the last twelve months
    v = forecast_view(inv, lake, model="seasonal_naive")
    monthly = inventory.efficiency.set_index("period")["tco2e"]
    by_month = v.daily["total"].groupby(v.daily.index.strftime("%Y-%m")).sum()
    assert by_month.to_numpy() == pytest.approx(monthly.to_numpy(), rel=1e-12)
    assert v.cutoff == pd.Timestamp("2025-09-30")                                 # a whole year: cut at September
    assert v.outlook["observed_t"] == pytest.approx(monthly.loc["2025-01":"2025-09"].sum(), rel=1e-12)
    assert len(v.forecast) == 92 and v.outlook["days_forecast"] == 92             # October to December
    # no allowance given: the year so far's pace × 365 stands in, and says so
    assert v.outlook["allowance_default"] and v.outlook["allowance_t"] == pytest.approx(
        monthly.loc["2025-01":"2025-09"].sum() / 273 * 365)
    assert list(v.backtest.columns[:4]) == ["model", "mape", "smape", "mase"]
    # the year's spread is calibrated on the series' own backtest folds: s = √(mean z²) of their totals
    assert v.outlook["calibration_folds"] == 6 and v.outlook["spread_scale"] > 0
    # carbon efficiency: the year so far's ratio is the default target, value added from the demo's CSV
    va = pd.read_csv(demo_data / "monthly.csv")
    va = va[va["node_id"] == "ENT"].assign(period=lambda d: d["period"].astype(str)).set_index("period")
    jan_sep_va = va.loc["2025-01":"2025-09", "value_added_10k_cny"].sum()
    assert v.outlook["target_default"]
    assert v.outlook["efficiency_target"] == pytest.approx(monthly.loc["2025-01":"2025-09"].sum() / jan_sep_va, rel=1e-9)
    assert 0.0 <= v.outlook["p_exceed_efficiency_target"] <= 1.0
    assert v.outlook["efficiency_p05"] <= v.outlook["efficiency"] <= v.outlook["efficiency_p95"]


def test_the_page_in_process(world, inventory):
    import panel as pn

    root, users, _ = world

    class Flat(SeasonalNaive):
        name = "flat_test"

    registry.register("flat_test", Flat)
    try:
        p = page(users.principal("fay"), root)
        model = next(w for w in p.select(pn.widgets.Select) if w.name.startswith("模型"))
        assert "flat_test" in model.options and {"ets", "prophet", "svr"} <= set(model.options)
    finally:
        registry.unregister("flat_test")
    head = _find(p, "forecast_headline").object
    jan_sep = inventory.efficiency.set_index("period")["tco2e"].loc["2025-01":"2025-09"].sum()
    assert _span(head, "observed") == f"{jan_sep:,.1f}"
    p_exceed = float(_span(head, "p_exceed"))
    assert 0.0 <= p_exceed <= 100.0 and 0.0 <= float(_span(head, "p_exceed_target")) <= 100.0
    assert float(_span(head, "efficiency")) > 0
    model.value = "seasonal_naive"
    assert "model **seasonal_naive**" in _find(p, "forecast_headline").object
    # the scenarios, evaluated when their tab is shown: the example file of the enterprise, its package's figures
    assert _find(p, "scenario_headline").object == ""
    next(iter(p.select(pn.Tabs))).active = 1
    sc = _find(p, "scenario_headline").object
    config = next(w for w in p.select(pn.widgets.TextAreaInput))
    assert config.value == example_config(inventory)
    package, curve = scenario_view(inventory, config.value)
    assert _span(sc, "before") == f"{inventory.total_tco2e:,.1f}"
    assert _span(sc, "after") == f"{package.after.total_tco2e:,.1f}"
    assert list(_find(p, "mac").value["measure"]) == list(curve["measure"])
    # a scenario of our own: all electricity green removes exactly the purchased electricity's emissions
    config.value = GREEN_ONLY
    next(w for w in p.select(pn.widgets.Button) if w.name.startswith("计算")).clicks += 1
    grid_t = inventory.summary["by_source"]["purchased_electricity"]
    assert _span(_find(p, "scenario_headline").object, "after") == f"{inventory.total_tco2e - grid_t:,.1f}"
    assert evaluate(inventory, GreenElectricity(share=1.0)).after.total_tco2e == pytest.approx(inventory.total_tco2e - grid_t)
    # a broken file: one line naming where
    config.value = "measures:\n  bad: {lever: green_electricity, share: [\n"
    next(w for w in p.select(pn.widgets.Button) if w.name.startswith("计算")).clicks += 1
    msg = _find(p, "scenario_message")
    assert msg.visible and "line" in msg.object and "\n" not in msg.object
    pn.panel(p).get_root()


@pytest.fixture(scope="module")
def served(world, serve_apps):
    root, _, tmp = world
    return serve_apps(root, tmp / "users.db")


def test_in_the_browser(world, inventory, served, browser, ui):
    page_, errors = ui.page(browser)
    ui.login(page_, served, "fay", PASSWORD)
    page_.goto(f"{served}/forecasts")
    page_.wait_for_selector("#observed", timeout=120_000)
    jan_sep = inventory.efficiency.set_index("period")["tco2e"].loc["2025-01":"2025-09"].sum()
    assert page_.inner_text("#observed") == f"{jan_sep:,.1f}"
    page_.locator(".bk-tab", has_text="Scenarios").click()
    page_.wait_for_selector("#after", timeout=60_000)
    package, _ = scenario_view(inventory, example_config(inventory))
    assert page_.inner_text("#before") == f"{inventory.total_tco2e:,.1f}"
    assert page_.inner_text("#after") == f"{package.after.total_tco2e:,.1f}"
    ui.shot(page_, "forecasts-scenarios")
    page_.locator("textarea").fill(GREEN_ONLY)
    page_.locator("button", has_text="Evaluate").click()
    grid_t = inventory.summary["by_source"]["purchased_electricity"]
    want = f"{inventory.total_tco2e - grid_t:,.1f}"
    for _ in range(120):                       # Panel's panes live in shadow roots: poll the locator
        if page_.inner_text("#after") == want:
            break
        page_.wait_for_timeout(500)
    assert page_.inner_text("#after") == want
    page_.locator(".bk-tab", has_text="Forecast").click()
    page_.wait_for_timeout(500)
    ui.shot(page_, "forecasts-forecast")
    assert errors == [], errors
    # another enterprise by URL: refused (and logged)
    page_.goto(f"{served}/forecasts?enterprise=ent-b")
    page_.get_by_text("Not permitted").wait_for(timeout=60_000)
    assert page_.locator("#observed").count() == 0
    page_.close()
    _, users, _ = world
    assert any(r["actor"] == "fay" and r["action"] == "denied:read" and r["enterprise_id"] == "ent-b"
               for r in users.audit_log())


def test_an_enterprise_without_data_says_so(served, browser, ui):
    page_, errors = ui.page(browser)
    ui.login(page_, served, "ben", PASSWORD)
    page_.goto(f"{served}/forecasts")
    page_.get_by_text("no activity data").first.wait_for(timeout=60_000)
    assert page_.locator("#observed").count() == 0
    assert errors == [], errors
    page_.close()


def test_the_default_cutoff():
    from workbench.apps.forecasts import default_cutoff

    days = lambda a, b: pd.DataFrame(index=pd.date_range(a, b))
    assert default_cutoff(days("2025-01-01", "2025-12-31")) == pd.Timestamp("2025-09-30")   # a whole year
    assert default_cutoff(days("2025-11-01", "2025-12-31")) == pd.Timestamp("2025-12-31")   # too short to cut
    assert default_cutoff(days("2025-01-01", "2025-06-30")) == pd.Timestamp("2025-06-30")   # the year so far


def test_the_example_file_fits_another_enterprise(tmp_path):
    # the small lake's ent-a burns only natural gas and buys 5 MWh in two months: no fuel switch, a
    # 100 kWp PV (the smallest), every changed item priced, and the file evaluates
    from status_lake import build as build_small_lake

    inv = compute_inventory_from_lake(build_small_lake(tmp_path), "ent-a", "2026-03", "2026-04")
    text = example_config(inv)
    assert "fuel_switch" not in text and "capacity_kwp: 100," in text
    package, curve = scenario_view(inv, text)
    assert package.after.total_tco2e < inv.total_tco2e and curve["on_curve"].all()
    assert set(package.activity_change["item"]) <= {"natural_gas", "grid", "green_electricity"}
