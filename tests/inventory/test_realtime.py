"""Live view (seed §4.2, §9.5): power and emissions rate per facility from the hot tier, checked
against hand-computed values (purchased electricity × the grid factor the library gives)."""
from __future__ import annotations

import pandas as pd
import pytest
from notebook_run import execute_notebook

from connectors import ConnectorResult
from workbench.core.factors import default_library
from workbench.core.units import convert
from workbench.ingestion import ingest
from workbench.inventory.realtime import live_view
from workbench.lake.store import Lake

BOUNDARY = pd.DataFrame([
    ("ENT", "", "enterprise", "示例企业", "Demo Co.", ""),
    ("F01", "ENT", "facility", "熟料生产线", "Clinker line", "main_production"),
    ("F01.P1", "F01", "process", "窑", "Kiln", ""),
    ("F02", "ENT", "facility", "水泥粉磨", "Cement grinding", "main_production"),
    ("F02.P1", "F02", "process", "磨机", "Mill", ""),
], columns=["node_id", "parent_id", "level", "name_zh", "name_en", "classification"])
METERS = pd.DataFrame([
    ("E1", "F01.P1", "purchased_electricity", "grid", "kWh", "interval"),
    ("E2", "F02.P1", "purchased_electricity", "grid", "kWh", "interval"),
    ("G1", "F01.P1", "self_generated_electricity", "grid", "kWh", "interval"),
    ("E3", "F02.P1", "purchased_electricity", "grid", "kWh", "interval"),      # silent in the window
], columns=["meter_id", "node_id", "source", "item", "unit", "register"])


@pytest.fixture
def lake(tmp_path):
    lk = Lake(tmp_path / "lake")
    lk.register_boundary(BOUNDARY)
    lk.register_meters(METERS)
    ts = pd.date_range("2026-03-02 08:00", periods=4, freq="15min")
    rows = [(m, t, v) for m, vals in (("E1", [100, 120, 110, 130]), ("E2", [40, 40, 40, 40]),
                                      ("G1", [25, 25, 25, 25]))
            for t, v in zip(ts, vals)]
    rows += [("E3", pd.Timestamp("2026-03-02 07:00"), 5.0)]
    df = pd.DataFrame(rows, columns=["meter_id", "ts", "value"]).assign(unit="kWh")
    df["ts"] = df["ts"].dt.tz_localize("Asia/Shanghai")
    ingest(lk, ConnectorResult(df, {"source": "test"}, kind="readings", raw=df.to_csv().encode(),
                              raw_name="r.csv"), sender="test")
    return lk


def test_live_view_power_and_emissions_rate(lake):
    v = live_view(lake, window="30min", now="2026-03-02 09:00", region="Zhejiang")
    f = v.set_index("facility")
    assert list(f.index) == ["F01", "F02"]
    # last 30 min: intervals 08:30 and 08:45
    assert f.loc["F01", "power_kw"] == pytest.approx((110 + 130) / 0.5)
    assert f.loc["F01", "generation_kw"] == pytest.approx((25 + 25) / 0.5)
    assert f.loc["F02", "power_kw"] == pytest.approx((40 + 40) / 0.5)
    ef = default_library().lookup("grid", "emission_factor", year=2026, region="Zhejiang")
    per_mwh = convert(ef.value, ef.unit, "tCO2/MWh") if ef.unit != "tCO2/MWh" else ef.value
    assert f.loc["F01", "tco2e"] == pytest.approx(0.240 * per_mwh, rel=1e-9)
    assert f.loc["F01", "tco2e_per_h"] == pytest.approx(0.240 * per_mwh / 0.5, rel=1e-9)
    assert f.loc["F02", "tco2e_per_h"] == pytest.approx(0.080 * per_mwh / 0.5, rel=1e-9)
    assert f.loc["F02", "meters_reporting"] == 1 and f.loc["F02", "meters_total"] == 2   # E3 silent
    assert f.loc["F01", "name_zh"] == "熟料生产线"
    ledger = v.attrs["ledger"]
    assert set(ledger["emission_factor_id"]) == {ef.factor_id}          # traceable to the factor used
    # default window end = the latest interval's end
    v2 = live_view(lake, window="15min", region="Zhejiang").set_index("facility")
    assert v2.loc["F01", "power_kw"] == pytest.approx(130 / 0.25)


def test_live_view_of_an_empty_lake(tmp_path):
    assert live_view(Lake(tmp_path / "empty")).empty


@pytest.mark.slow
def test_realtime_notebook_through_papermill(tmp_path, lake):
    from pathlib import Path

    import nbformat

    root = Path(__file__).resolve().parents[2]       # not `from conftest import`: several conftest modules exist

    out = tmp_path / "realtime.ipynb"
    execute_notebook(str(root / "notebooks" / "realtime.ipynb"), str(out), kernel_name="python3",
                        cwd=str(tmp_path), progress_bar=False,
                        parameters={"lake_root": str(lake.root),
                                    "window": "30min", "now": "2026-03-02 09:00"})
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "熟料生产线" in html and "480.0" in html                    # F01: 240 kWh in 0.5 h
    assert any("image/png" in o.get("data", {}) for o in outputs)     # the plot


def test_a_live_stream_ends_the_window_at_its_latest_data(tmp_path):
    """Meters reporting every 10 s (an interval meter's rows, a register's readings): without
    ``now`` the window ends where the data ends — the interval meter's last row covers its
    own 10 s, the register's consumption runs up to its latest reading — not 15 minutes later."""
    lk = Lake(tmp_path / "lake")
    lk.register_boundary(BOUNDARY)
    lk.register_meters(pd.concat([METERS.iloc[:2], pd.DataFrame(
        [("R1", "F02.P1", "purchased_electricity", "grid", "kWh", "cumulative")], columns=METERS.columns)]))
    t0 = pd.Timestamp("2026-03-02 08:00:00", tz="Asia/Shanghai")
    ts = [t0 + pd.Timedelta(seconds=10 * k) for k in range(30)]          # 5 minutes of data
    rows = [("E1", t, 0.5) for t in ts] + [("E2", t, 0.25) for t in ts] + \
        [("R1", t, 1000.0 + 0.1 * k) for k, t in enumerate(ts[:-1])]
    df = pd.DataFrame(rows, columns=["meter_id", "ts", "value"]).assign(unit="kWh")
    ingest(lk, ConnectorResult(df, {"source": "mqtt"}, kind="readings", raw=df.to_csv().encode()), sender="t")
    v = live_view(lk, window="2min").set_index("facility")
    assert v["window_end"].iloc[0] == pd.Timestamp("2026-03-02 08:05:00")     # last row 08:04:50 + its 10 s
    # 2 minutes = 12 rows of E1 (0.5 kWh each) → 6 kWh / (1/30 h) = 180 kW
    assert v.loc["F01", "power_kw"] == pytest.approx(12 * 0.5 * 30)
    # E2: 12 × 0.25 kWh; R1: readings up to 08:04:40, its intervals starting in [08:03:00, 08:05:00) → 10 × 0.1
    assert v.loc["F02", "power_kw"] == pytest.approx((12 * 0.25 + 10 * 0.1) * 30)


def test_latest_readings_one_row_per_meter_from_the_watermarks(lake):
    from workbench.inventory.realtime import latest_readings

    r = latest_readings(lake).set_index("meter_id")
    assert sorted(r.index) == ["E1", "E2", "E3", "G1"]
    assert r.at["E1", "ts"] == pd.Timestamp("2026-03-02 08:45") and r.at["E1", "value"] == 130
    assert r.at["E3", "ts"] == pd.Timestamp("2026-03-02 07:00") and r.at["E3", "value"] == 5
    assert r.at["E1", "unit"] == "kWh" and r.at["E1", "source"] == "purchased_electricity"
    assert r.at["E3", "age_s"] == 105 * 60 and r.at["E1", "age_s"] == 0       # against the latest of all
    assert r["stored_at"].notna().all()
    later = latest_readings(lake, now="2026-03-02 09:45").set_index("meter_id")
    assert later.at["E1", "age_s"] == 3600


def test_latest_readings_keeps_a_meter_that_never_reported(lake):
    from workbench.inventory.realtime import latest_readings

    lake.register_meters(pd.concat([METERS, pd.DataFrame([("E4", "F02.P1", "purchased_electricity", "grid", "kWh",
                                                            "interval")], columns=METERS.columns)]))
    r = latest_readings(lake).set_index("meter_id")
    assert pd.isna(r.at["E4", "ts"]) and pd.isna(r.at["E4", "value"]) and len(r) == 5
