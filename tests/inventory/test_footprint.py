"""The footprint explorer's figures (issue 13, point 1): the numbers of a selection equal the
package's inventory for the same months and node; the Sankey, trend and drill-down frames add up
to them; a hand-written case gives the number computed here from the library's grid factor; the
heat-map frame holds only the meters and times asked for, its buckets are the means of the
intervals in them.  A :class:`FootprintSpan` — one inventory of a longer span — gives for any
months inside it and any node what :func:`footprint` gives computed directly (floats to 1e-12:
the accounting's vectorised unit arithmetic may round the last bit differently for frames of
other lengths), and its totals are the sums of month-by-month inventories computed alone."""
from __future__ import annotations

import pandas as pd
import pytest

from connectors import activity_file, production
from workbench.core.factors import default_library
from workbench.core.units import convert
from workbench.demo.load import load_demo
from workbench.ingestion import ingest
from workbench.inventory.compute import compute_inventory_from_lake
from workbench.inventory.footprint import (
    FootprintSpan,
    HeatmapReader,
    available_span,
    drill_down,
    footprint,
    footprint_of,
    heatmap_frame,
    heatmap_freq,
    sankey_flows,
    trend_by_source,
)
from workbench.lake.store import Lake

SPAN = ("2025-01", "2025-03")


@pytest.fixture(scope="module")
def demo_root(demo_data, tmp_path_factory):
    """The demo cement plant loaded into its lake through the ordinary ingest path (once per module)."""
    root = tmp_path_factory.mktemp("footprint-lake") / "lake"
    load_demo(demo_data, root, enterprise="demo-cement")
    return root


@pytest.fixture(scope="module")
def demo(demo_root):
    """(the enterprise's lake, the package's inventory of the span, the enterprise's footprint)."""
    lk = Lake(demo_root, enterprise="demo-cement")
    inv = compute_inventory_from_lake(Lake(demo_root), "demo-cement", *SPAN)
    return lk, inv, footprint(lk, *SPAN)


def test_the_enterprise_footprint_is_the_inventory(demo):
    _, inv, fp = demo
    assert fp.node_id == inv.boundary.enterprise and fp.level == "enterprise"
    assert fp.total_tco2e == pytest.approx(inv.total_tco2e, rel=1e-12)
    assert sorted(fp.ledger["record_id"]) == sorted(inv.ledger["record_id"])
    assert fp.value_added == pytest.approx(inv.summary["value_added"])
    assert fp.carbon_efficiency == pytest.approx(inv.summary["carbon_efficiency"])
    assert fp.carbon_efficiency == pytest.approx(inv.total_tco2e / inv.summary["value_added"])
    # the demo holds 2025 only: no figures for a year earlier
    assert fp.last_year_tco2e is None and fp.change_tco2e is None and fp.change_pct is None


def test_a_facility_and_a_workshop_are_the_inventorys_rows_of_them(demo):
    lk, inv, _ = demo
    f01 = footprint(lk, *SPAN, "F01", last_year=False)
    assert f01.level == "facility"
    assert f01.total_tco2e == pytest.approx(inv.by_facility().loc["F01", "total"], rel=1e-12)
    assert f01.total_tco2e == pytest.approx(inv.ledger.loc[inv.ledger["facility"] == "F01", "tco2e"].sum())
    assert f01.total_tco2e == pytest.approx(f01.ledger["tco2e"].sum())
    assert set(f01.ledger["facility"]) == {"F01"}
    w = footprint_of(inv, "F01.W02")
    hand = inv.ledger[inv.ledger["node_id"].str.startswith("F01.W02")]["tco2e"].sum()    # ids nest by prefix
    assert w.level == "workshop" and w.total_tco2e == pytest.approx(hand)
    with pytest.raises(ValueError, match="not in the enterprise's boundary"):
        footprint_of(inv, "NOPE")


def test_sankey_flows_add_up_to_the_total(demo):
    _, inv, fp = demo
    s = sankey_flows(fp)
    assert list(s.columns[:2]) == ["source", "target"] and {"tco2e", "energy_gj", "sign"} <= set(s.columns)
    carriers = s[s["source"].str.startswith("carrier:")]
    assert carriers["tco2e"].sum() == pytest.approx(fp.total_tco2e)
    for _stage, g in s.groupby("stage"):
        assert g["tco2e"].sum() == pytest.approx(fp.total_tco2e)
    # exported heat is a negative flow, marked by its sign
    heat = s[(s["source"] == "carrier:heat") & (s["target"] == "source:exported_heat")]
    assert len(heat) == 1 and heat["tco2e"].iloc[0] < 0 and heat["sign"].iloc[0] == -1
    assert heat["tco2e"].iloc[0] == pytest.approx(inv.summary["by_source"]["exported_heat"])
    # what flows into a facility is its total
    into_f01 = s[(s["stage"] == "source→facility") & (s["target"] == "F01")]["tco2e"].sum()
    assert into_f01 == pytest.approx(inv.by_facility().loc["F01", "total"])
    # grid electricity's energy: its MWh × 3.6 GJ/MWh
    grid = inv.ledger[inv.ledger["item"] == "grid"]
    e = s[(s["source"] == "carrier:grid")]["energy_gj"].sum()
    assert e == pytest.approx(float(convert(grid["quantity"], grid["unit"].to_numpy(), "MWh").sum()) * 3.6)


def test_trend_by_source_sums_to_the_total_and_is_the_cubes(demo):
    _, inv, fp = demo
    t = trend_by_source(fp)
    assert list(t.index) == ["2025-01", "2025-02", "2025-03"]
    assert t.to_numpy().sum() == pytest.approx(fp.total_tco2e)
    cube = inv.monthly()          # the package's cube: period × source
    for src in cube.columns:
        assert t[src].to_numpy() == pytest.approx(cube[src].to_numpy())


def test_drill_down_to_the_meters(demo):
    lk, inv, fp = demo
    top = drill_down(fp)
    assert set(top.loc[top["kind"] == "node", "child_id"]) == {"F01", "F02", "F03", "F04", "F05"}
    assert top["tco2e"].sum() == pytest.approx(fp.total_tco2e)          # children + what sits on ENT itself
    f01 = drill_down(fp, "F01")
    assert f01["tco2e"].sum() == pytest.approx(inv.by_facility().loc["F01", "total"])
    kiln = drill_down(fp, "F01.W02")
    nodes = kiln[kiln["kind"] != "meter"]
    assert nodes["tco2e"].sum() == pytest.approx(footprint_of(inv, "F01.W02").total_tco2e)
    meters = kiln[kiln["kind"] == "meter"].set_index("child_id")
    # the sub-meters measuring the workshop's processes (main meters left out)
    m = lk.meters(normalized=True)
    hand = set(m.loc[m["node_id"].str.startswith("F01.W02") & ~m["is_main"].astype(bool), "meter_id"])
    assert set(meters.index) == hand and "M0006" in hand
    # a meter's consumption over the span is the sum of the lake's interval consumption
    c = lk.retrieve("consumption", meter="M0006", start="2025-01-01", end="2025-04-01")
    assert meters.at["M0006", "consumption"] == pytest.approx(c["value"].sum())
    assert meters.at["M0006", "unit"] == "kWh"
    # and its tCO2e is that consumption at the month's grid factor of the ledger
    months = c.assign(period=c["ts"].dt.strftime("%Y-%m")).groupby("period")["value"].sum()
    ef = {p: g["emission_factor"].iloc[0] for p, g in inv.ledger[inv.ledger["item"] == "grid"].groupby("period")}
    assert meters.at["M0006", "tco2e"] == pytest.approx(sum(v / 1000 * ef[p] for p, v in months.items()), rel=1e-9)
    with pytest.raises(ValueError, match="not inside"):
        drill_down(footprint_of(inv, "F02"), "F01")


def test_the_heatmap_frame_holds_only_the_meters_and_times_asked_for(demo):
    lk, _, _ = demo
    h = heatmap_frame(lk, "2025-02-01", "2025-02-03", meters=["M0002", "M0001"])
    assert list(h.columns) == ["meter_id", "ts", "value"]
    assert set(h["meter_id"].astype(str)) == {"M0001", "M0002"}
    assert h["ts"].min() >= pd.Timestamp("2025-02-01") and h["ts"].max() < pd.Timestamp("2025-02-03")
    assert len(h) <= 2 * 2 * 96 and len(h) > 0                      # two meters, two days of 15-min intervals
    same = lk.retrieve("consumption", meter="M0002", start="2025-02-01", end="2025-02-03")
    assert h.loc[h["meter_id"] == "M0002", "value"].sum() == pytest.approx(same["value"].sum())
    month = heatmap_frame(lk, "2025-02", "2025-02", meters=["M0006"], table="readings")
    assert set(month["meter_id"].astype(str)) == {"M0006"}
    assert month["ts"].min() >= pd.Timestamp("2025-02-01") and month["ts"].max() < pd.Timestamp("2025-03-01")
    assert heatmap_frame(lk, "2025-02-01", "2025-02-02", meters=[]).empty


BOUNDARY = pd.DataFrame([("ENT", "", "enterprise", "手算厂", "Hand plant", ""),
                         ("F01", "ENT", "facility", "一车间", "Shop 1", "main_production"),
                         ("F01.W01", "F01", "workshop", "工段", "Section 1", "main_production"),
                         ("F02", "ENT", "facility", "二车间", "Shop 2", "auxiliary")],
                        columns=["node_id", "parent_id", "level", "name_zh", "name_en", "classification"])


@pytest.fixture(scope="module")
def hand_lake(tmp_path_factory):
    """1,000 kWh of grid electricity in January 2026 and 800 kWh in January 2025 on F01.W01, written
    by hand; natural gas on F02 in 2026 only; value added 2 and 1 万元."""
    tmp = tmp_path_factory.mktemp("hand")
    lk = Lake(tmp / "lake", enterprise="hand-plant")
    lk.register_boundary(BOUNDARY)
    lk.register_enterprise({"enterprise_id": "hand-plant", "name_zh": "手算厂", "region": "CN-ZJ",
                            "reporting_standard": "GB/T 32150"})
    f = tmp / "activity.csv"
    f.write_text("source,item,quantity,unit,period,node_id,document\n"
                 "purchased_electricity,grid,1000,kWh,2026-01,F01.W01,meter book\n"
                 "purchased_electricity,grid,800,kWh,2025-01,F01.W01,meter book\n"
                 "combustion,natural_gas,0.1,万Nm3,2026-01,F02,gas ledger\n", encoding="utf-8")
    ingest(lk, activity_file.read(f), sender="t")
    p = tmp / "monthly.csv"
    p.write_text("period,node_id,value_added_10k_cny\n2026-01,ENT,2\n2025-01,ENT,1\n", encoding="utf-8")
    ingest(lk, production.read(p, products=[]), sender="t")
    return lk


def _grid_tco2_per_mwh(year: int) -> float:
    ef = default_library().lookup("grid", "emission_factor", year=year, region="CN-ZJ")
    return float(convert(ef.value, ef.unit, "tCO2/MWh"))


def test_a_hand_computed_workshop_and_its_last_year(hand_lake):
    fp = footprint(hand_lake, "2026-01", "2026-01", "F01.W01")
    expected = 1.0 * _grid_tco2_per_mwh(2026)                       # 1,000 kWh = 1 MWh × the published factor
    previous = 0.8 * _grid_tco2_per_mwh(2025)
    assert fp.total_tco2e == pytest.approx(expected, rel=1e-12)
    assert fp.last_year_tco2e == pytest.approx(previous, rel=1e-12)
    assert fp.change_tco2e == pytest.approx(expected - previous)
    assert fp.change_pct == pytest.approx((expected - previous) / previous * 100)
    assert fp.value_added != fp.value_added                           # no value added below the enterprise: NaN
    s = sankey_flows(fp)
    link = s[s["stage"] == "carrier→source"]
    assert link[["source", "target"]].values.tolist() == [["carrier:grid", "source:purchased_electricity"]]
    assert link["tco2e"].iloc[0] == pytest.approx(expected) and link["energy_gj"].iloc[0] == pytest.approx(3.6)
    assert s.loc[s["stage"] == "facility→workshop", "target"].tolist() == ["F01.W01"]


def test_the_hand_enterprise_carbon_efficiency_and_a_node_without_last_year(hand_lake):
    ent = footprint(hand_lake, "2026-01", "2026-01")
    inv = compute_inventory_from_lake(hand_lake, "hand-plant", "2026-01", "2026-01")
    assert ent.total_tco2e == pytest.approx(inv.total_tco2e)
    assert ent.value_added == 2.0 and ent.carbon_efficiency == pytest.approx(ent.total_tco2e / 2.0)
    assert ent.last_year_value_added == 1.0
    assert ent.last_year_carbon_efficiency == pytest.approx(0.8 * _grid_tco2_per_mwh(2025) / 1.0)
    f02 = footprint_of(inv, "F02", last_year=compute_inventory_from_lake(hand_lake, "hand-plant", "2025-01", "2025-01"))
    assert f02.total_tco2e > 0 and f02.last_year_tco2e is None and f02.change_pct is None


# ------------------------------------------------------------------ one inventory for any span inside
def _same_inventory(a, b) -> None:
    """Every field of two inventories equal (floats to 1e-12)."""
    import xarray as xr

    assert (a.period_start, a.period_end) == (b.period_start, b.period_end)
    for name in ("activity", "ledger", "efficiency", "meter_check", "factors_used"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), rtol=1e-12, obj=name)
    xr.testing.assert_allclose(a.cube, b.cube, rtol=1e-12)
    assert list(a.cube.data_vars) == list(b.cube.data_vars)
    assert a.summary.keys() == b.summary.keys()
    for k in ("total_tco2e", "value_added", "carbon_efficiency"):
        assert a.summary[k] == pytest.approx(b.summary[k], rel=1e-12, nan_ok=True), k
    assert a.summary["by_source"] == pytest.approx(b.summary["by_source"], rel=1e-12)
    assert a.notes == b.notes


def _same_footprint(a, b) -> None:
    assert (a.node_id, a.level, a.period_start, a.period_end) == (b.node_id, b.level, b.period_start, b.period_end)
    for k in ("total_tco2e", "value_added", "carbon_efficiency", "last_year_tco2e", "last_year_value_added",
              "last_year_carbon_efficiency", "change_tco2e", "change_pct"):
        x, y = getattr(a, k), getattr(b, k)
        assert (x is None) == (y is None), k
        if x is not None:
            assert x == pytest.approx(y, rel=1e-12, nan_ok=True), k
    pd.testing.assert_frame_equal(a.ledger, b.ledger, rtol=1e-12)
    pd.testing.assert_frame_equal(a.consumption, b.consumption)
    pd.testing.assert_frame_equal(sankey_flows(a), sankey_flows(b), rtol=1e-12)
    pd.testing.assert_frame_equal(trend_by_source(a), trend_by_source(b), rtol=1e-12)
    pd.testing.assert_frame_equal(drill_down(a), drill_down(b), rtol=1e-12)
    _same_inventory(a.inventory, b.inventory)


def test_a_span_gives_what_footprint_gives_for_any_months_and_node_inside(demo):
    lk, _, _ = demo
    assert available_span(lk) == ("2025-01", "2025-12")
    span = FootprintSpan.compute(lk)
    assert (span.start, span.end) == ("2024-01", "2025-12")            # the lake's months and the year before
    for s, e in (("2025-01", "2025-12"), ("2025-02", "2025-12"), ("2025-03", "2025-03"), ("2025-06", "2025-09")):
        assert span.covers(s, e, last_year=True)
        _same_inventory(span.inventory(s, e), compute_inventory_from_lake(lk, "demo-cement", s, e))
        for node in (None, "F01", "F01.W02", "F03"):
            _same_footprint(span.footprint(s, e, node), footprint(lk, s, e, node))
    # the sums of months inventoried one at a time, and the months of the year's own cube
    months_alone = [footprint(lk, m, m, last_year=False).total_tco2e for m in ("2025-06", "2025-07", "2025-08",
                                                                               "2025-09")]
    summer = span.footprint("2025-06", "2025-09").total_tco2e
    assert summer == pytest.approx(sum(months_alone), rel=1e-12)
    cube = compute_inventory_from_lake(lk, "demo-cement", "2025-01", "2025-12").monthly()
    assert summer == pytest.approx(cube.loc["2025-06":"2025-09"].to_numpy().sum(), rel=1e-12)
    # drill-down to a workshop's meters: their consumption over the months, read when first used
    w = span.footprint("2025-02", "2025-04", "F01.W02")
    meters = drill_down(w).query("kind == 'meter'").set_index("child_id")
    c = lk.retrieve("consumption", meter="M0006", start="2025-02-01", end="2025-05-01")
    assert meters.at["M0006", "consumption"] == pytest.approx(c["value"].sum())
    # outside the span: refused, so that an app goes to footprint()
    assert not span.covers("2025-06", "2026-01") and not span.covers("2024-01", "2024-03", last_year=True)
    with pytest.raises(ValueError, match="not inside the span"):
        span.footprint("2025-11", "2026-01")
    with pytest.raises(ValueError, match="no activity data"):
        span.inventory("2024-03", "2024-05")


def test_a_span_gives_last_years_figures(hand_lake):
    span = FootprintSpan.compute(hand_lake)
    assert (span.start, span.end) == ("2024-01", "2026-01")
    for node in ("ENT", "F01.W01", "F02"):
        _same_footprint(span.footprint("2026-01", "2026-01", node), footprint(hand_lake, "2026-01", "2026-01", node))
    w = span.footprint("2026-01", "2026-01", "F01.W01")
    assert w.last_year_tco2e == pytest.approx(0.8 * _grid_tco2_per_mwh(2025), rel=1e-12)    # by hand, as above
    assert w.change_pct == pytest.approx((1.0 * _grid_tco2_per_mwh(2026) / (0.8 * _grid_tco2_per_mwh(2025)) - 1) * 100)
    ent = span.footprint("2025-06", "2026-01")                           # months without data inside
    _same_footprint(ent, footprint(hand_lake, "2025-06", "2026-01"))
    assert ent.value_added == 2.0                                         # the months with data: January 2026
    assert ent.last_year_tco2e == pytest.approx(0.8 * _grid_tco2_per_mwh(2025), rel=1e-12)   # 2024-06..2025-01


def test_a_span_with_months_whose_datum_is_the_meters(tmp_path):
    """Grid electricity billed on the enterprise in December and January (allocated by the
    sub-meters' shares), only metered in February: the span's footprints, notes and row numbers
    are those computed directly."""
    from workbench.core.results import ConnectorResult

    lk = Lake(tmp_path / "lake", enterprise="meter-plant")
    lk.register_boundary(BOUNDARY)
    lk.register_enterprise({"enterprise_id": "meter-plant", "region": "CN-ZJ", "reporting_standard": "GB/T 32150"})
    lk.register_meters(pd.DataFrame(
        [("M1", "F01.W01", "purchased_electricity", "grid", "kWh", "interval", "false"),
         ("M2", "F02", "purchased_electricity", "grid", "kWh", "interval", "false")],
        columns=["meter_id", "node_id", "source", "item", "unit", "register", "is_main"]))
    ts = pd.date_range("2025-12-01", "2026-02-28 23:45", freq="15min")
    for meter, kwh in (("M1", 2.0), ("M2", 0.5)):
        rows = pd.DataFrame({"meter_id": meter, "ts": ts, "value": kwh * (1 + (ts.hour >= 8)), "unit": "kWh"})
        ingest(lk, ConnectorResult(rows, {"source": "ems"}, kind="readings", raw=rows.to_csv().encode(),
                                   raw_name=f"{meter}.csv"), sender="t")
    f = tmp_path / "activity.csv"
    f.write_text("source,item,quantity,unit,period,node_id,document\n"
                 "purchased_electricity,grid,9000,kWh,2025-12,ENT,bill\n"
                 "purchased_electricity,grid,9500,kWh,2026-01,ENT,bill\n"
                 "combustion,natural_gas,0.1,万Nm3,2025-12,F02,gas ledger\n"
                 "combustion,natural_gas,0.1,万Nm3,2026-01,F02,gas ledger\n"
                 "combustion,natural_gas,0.2,万Nm3,2026-02,F02,gas ledger\n", encoding="utf-8")
    ingest(lk, activity_file.read(f), sender="t")
    span = FootprintSpan.compute(lk)
    assert (span.start, span.end) == ("2024-12", "2026-02")
    for s, e in (("2025-12", "2026-02"), ("2026-01", "2026-02")):
        for node in ("ENT", "F01.W01", "F02"):
            _same_footprint(span.footprint(s, e, node), footprint(lk, s, e, node))
    feb = span.inventory("2026-01", "2026-02")
    assert "purchased_electricity grid: activity data from the meters (no bill or ledger record) for 2026-02" \
        in feb.notes
    assert set(feb.ledger.loc[feb.ledger["period"] == "2026-02", "basis"]) == {"meters", "ledger"}
    assert list(feb.activity["row"]) == list(range(1, len(feb.activity) + 1))


def test_heatmap_buckets_are_the_means_of_the_intervals_in_them(demo):
    lk, _, _ = demo
    raw = heatmap_frame(lk, "2025-02-01", "2025-02-04", meters=["M0002", "M0006"])
    hourly = heatmap_frame(lk, "2025-02-01", "2025-02-04", meters=["M0002", "M0006"], freq="1h")
    want = (raw.assign(ts=raw["ts"].dt.floor("1h")).groupby(["meter_id", "ts"], observed=True)["value"].mean()
            .reset_index())
    assert list(hourly.columns) == ["meter_id", "ts", "value"] and len(hourly) == len(want) == 2 * 3 * 24
    assert hourly["ts"].tolist() == want["ts"].tolist()
    assert hourly["value"].to_numpy() == pytest.approx(want["value"].to_numpy(), rel=1e-12)
    assert heatmap_freq("2025-01", "2025-12") == "12h"              # 730 buckets; 6 h would be 1,460 > 1,200
    assert heatmap_freq("2025-03", "2025-03") == "1h"               # 744 buckets
    assert heatmap_freq("2025-02-01", "2025-02-08") == "15min"      # 672 intervals
    assert heatmap_freq("2020-01", "2025-12", 1200) == "1D"         # the coarsest there is
    with pytest.raises(ValueError, match="freq"):
        heatmap_frame(lk, "2025-02", "2025-02", freq="5min")


def test_the_heatmap_reader_takes_spans_inside_a_frame_read_from_it(demo):
    lk, _, _ = demo
    reader = HeatmapReader(lk, pixels=1200)
    year, freq = reader.frame("2025-01", "2025-12")
    assert freq == "12h" and reader.reads == 1
    pd.testing.assert_frame_equal(year, heatmap_frame(lk, "2025-01", "2025-12", freq="12h"))
    assert reader.ready("2025-02", "2025-12") and reader.ready("2025-01", "2025-12", ["M0006"])
    later, freq = reader.frame("2025-02", "2025-12")                # same bucket: from memory
    assert freq == "12h" and reader.reads == 1
    pd.testing.assert_frame_equal(later, heatmap_frame(lk, "2025-02", "2025-12", freq="12h"))
    some, _ = reader.frame("2025-01", "2025-12", ["M0006", "M0002"])
    assert reader.reads == 1
    pd.testing.assert_frame_equal(some, heatmap_frame(lk, "2025-01", "2025-12", ["M0002", "M0006"], freq="12h"))
    assert not reader.ready("2025-03", "2025-03")                   # a month needs hours: read
    march, freq = reader.frame("2025-03", "2025-03")
    assert freq == "1h" and reader.reads == 2
    pd.testing.assert_frame_equal(march, heatmap_frame(lk, "2025-03", "2025-03", freq="1h"))
