"""Tests of workbench.inventory.readings: meter readings → monthly consumption → activity records.

Readings are tiny hand-made tables (a few meters, 15-min timestamps); every expected value is
worked out by hand in the test.  One module-scoped demo enterprise checks the whole path
against the company's ledger.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.inventory.readings import (
    activity_from_meters,
    meter_consumption,
    read_meters,
)

Q = pd.Timedelta("15min")
NAN = float("nan")


# --------------------------------------------------------------------------- helpers
def meter(meter_id, register="interval", *, rollover=NAN, node_id="F01.W01.P01", source="purchased_electricity",
          item="grid", unit="kWh", is_main=False):
    return {"meter_id": meter_id, "node_id": node_id, "source": source, "item": item, "unit": unit,
            "register": register, "rollover": float(rollover), "is_main": bool(is_main)}


def meters(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def readings(rows) -> pd.DataFrame:
    """``rows``: (meter_id, 'YYYY-MM-DD HH:MM', value)."""
    df = pd.DataFrame(rows, columns=["meter_id", "ts", "value"])
    df["ts"] = pd.to_datetime(df["ts"])
    df["value"] = df["value"].astype("float64")
    return df


def series(meter_id, start, values) -> pd.DataFrame:
    """Consecutive 15-min readings from ``start``."""
    ts = pd.date_range(start, periods=len(values), freq="15min")
    return pd.DataFrame({"meter_id": meter_id, "ts": ts, "value": np.asarray(values, dtype="float64")})


def row(cons: pd.DataFrame, meter_id: str, period: str) -> pd.Series:
    sel = cons[(cons["meter_id"] == meter_id) & (cons["period"] == period)]
    assert len(sel) == 1, f"expected one row for {meter_id} {period}, got {len(sel)}"
    return sel.iloc[0]


# --------------------------------------------------------------------------- meter_consumption
def test_interval_meter_sums_per_month_and_month_of_interval_start():
    # the interval starting 23:45 on 31 January belongs to January, the one at 00:00 to February
    r = readings([("I1", "2025-01-31 23:30", 1.0), ("I1", "2025-01-31 23:45", 2.0),
                  ("I1", "2025-02-01 00:00", 4.0), ("I1", "2025-02-01 00:15", 8.0)])
    c = meter_consumption(r, meters(meter("I1")))
    assert c["period"].tolist() == ["2025-01", "2025-02"]
    jan, feb = row(c, "I1", "2025-01"), row(c, "I1", "2025-02")
    assert jan["consumption"] == pytest.approx(1.0 + 2.0)
    assert feb["consumption"] == pytest.approx(4.0 + 8.0)
    assert (jan["n_intervals"], feb["n_intervals"]) == (2, 2)
    assert jan["expected_intervals"] == 31 * 96 and feb["expected_intervals"] == 28 * 96
    assert jan["completeness"] == pytest.approx(2 / (31 * 96))
    assert (jan["n_duplicates"], jan["n_conflicts"], jan["n_rollovers"], jan["n_resets"]) == (0, 0, 0, 0)
    # meter attributes come along
    assert jan["node_id"] == "F01.W01.P01" and jan["unit"] == "kWh" and jan["source"] == "purchased_electricity"


def test_cumulative_register_diffs_and_month_of_interval_start():
    # 100 → 110 → 125 → 130: the diffs 10 (23:30) and 15 (23:45) are January, 5 (00:00) February
    r = readings([("C1", "2025-01-31 23:30", 100.0), ("C1", "2025-01-31 23:45", 110.0),
                  ("C1", "2025-02-01 00:00", 125.0), ("C1", "2025-02-01 00:15", 130.0)])
    c = meter_consumption(r, meters(meter("C1", "cumulative", rollover=99_999)))
    jan, feb = row(c, "C1", "2025-01"), row(c, "C1", "2025-02")
    assert jan["consumption"] == pytest.approx(25.0)
    assert feb["consumption"] == pytest.approx(5.0)
    assert (jan["n_intervals"], feb["n_intervals"]) == (2, 1)
    assert jan["n_rollovers"] == 0 and jan["n_resets"] == 0


def test_unordered_input_is_sorted_by_time():
    r = readings([("C1", "2025-03-01 00:30", 130.0), ("C1", "2025-03-01 00:00", 100.0),
                  ("C1", "2025-03-01 00:15", 110.0)])
    c = meter_consumption(r, meters(meter("C1", "cumulative")))
    assert row(c, "C1", "2025-03")["consumption"] == pytest.approx(30.0)


@pytest.mark.parametrize("rollover", [NAN, 99_999.0])
def test_counter_reset_counts_from_zero(rollover):
    # 1000 → 1010 → 1025 → 3 (unexpected drop to ~0) → 7: 10 + 15 + 3 + 4 = 32
    # with a capacity of 99 999 the drop from 1 025 is far from the top 10 %: a reset, not a rollover
    r = series("C1", "2025-05-10 08:00", [1000.0, 1010.0, 1025.0, 3.0, 7.0])
    c = meter_consumption(r, meters(meter("C1", "cumulative", rollover=rollover)))
    may = row(c, "C1", "2025-05")
    assert may["consumption"] == pytest.approx(10 + 15 + 3 + 4)
    assert (may["n_resets"], may["n_rollovers"]) == (1, 0)
    assert may["n_intervals"] == 4


def test_rollover_past_capacity():
    # capacity 99 999: 99 980 → 99 990 → 5 → 20: 10 + (5 + 99 999 − 99 990 = 14) + 15 = 39
    r = series("C1", "2025-06-30 22:00", [99_980.0, 99_990.0, 5.0, 20.0])
    c = meter_consumption(r, meters(meter("C1", "cumulative", rollover=99_999)))
    jun = row(c, "C1", "2025-06")
    assert jun["consumption"] == pytest.approx(10 + 14 + 15)
    assert (jun["n_rollovers"], jun["n_resets"]) == (1, 0)


def test_rollover_interval_alone_is_14():
    r = series("C1", "2025-06-30 22:00", [99_990.0, 5.0])
    c = meter_consumption(r, meters(meter("C1", "cumulative", rollover=99_999)))
    assert row(c, "C1", "2025-06")["consumption"] == pytest.approx(14.0)


def test_exact_duplicates_are_collapsed_and_counted():
    r = readings([("I1", "2025-04-02 10:00", 1.5), ("I1", "2025-04-02 10:15", 2.5),
                  ("I1", "2025-04-02 10:15", 2.5), ("I1", "2025-04-02 10:30", 3.0),
                  ("C1", "2025-04-02 10:00", 50.0), ("C1", "2025-04-02 10:15", 60.0),
                  ("C1", "2025-04-02 10:15", 60.0), ("C1", "2025-04-02 10:30", 75.0)])
    c = meter_consumption(r, meters(meter("I1"), meter("C1", "cumulative")))
    i1, c1 = row(c, "I1", "2025-04"), row(c, "C1", "2025-04")
    assert i1["consumption"] == pytest.approx(1.5 + 2.5 + 3.0)  # not 9.5
    assert (i1["n_intervals"], i1["n_duplicates"], i1["n_conflicts"]) == (3, 1, 0)
    assert c1["consumption"] == pytest.approx(25.0)  # 60 − 50 + 75 − 60
    assert (c1["n_intervals"], c1["n_duplicates"], c1["n_conflicts"]) == (2, 1, 0)


def test_conflicting_duplicates_are_excluded_and_counted_as_the_lake_does():
    # one policy with the lake (which quarantines them): every row of a (meter, ts) whose values
    # differ is left out — nothing is averaged — and the key is counted as a conflict
    r = readings([("I1", "2025-04-02 10:00", 1.0), ("I1", "2025-04-02 10:15", 2.0),
                  ("I1", "2025-04-02 10:15", 4.0), ("I1", "2025-04-02 10:30", 1.0),
                  # three rows for one cumulative reading (110, 120, 130): the register reading at
                  # 10:15 is unknown, so 100 → 140 spans it
                  ("C1", "2025-04-02 10:00", 100.0), ("C1", "2025-04-02 10:15", 110.0),
                  ("C1", "2025-04-02 10:15", 120.0), ("C1", "2025-04-02 10:15", 130.0),
                  ("C1", "2025-04-02 10:30", 140.0)])
    c = meter_consumption(r, meters(meter("I1"), meter("C1", "cumulative")))
    i1, c1 = row(c, "I1", "2025-04"), row(c, "C1", "2025-04")
    assert i1["consumption"] == pytest.approx(1.0 + 1.0)      # the 10:15 interval is missing
    assert (i1["n_intervals"], i1["n_duplicates"], i1["n_conflicts"]) == (2, 1, 1)
    assert c1["consumption"] == pytest.approx(140 - 100)      # one difference across 10:15
    assert (c1["n_intervals"], c1["n_duplicates"], c1["n_conflicts"]) == (1, 2, 1)


def test_values_equal_to_1e_9_are_one_reading_and_bad_values_are_skipped():
    # 2.0 and 2.0 + 1e-10 agree to 1e-9 relative: one reading, the first row's; NaN, inf and a
    # negative value are skipped and counted (the lake quarantines them)
    r = readings([("I1", "2025-04-02 10:00", 1.0), ("I1", "2025-04-02 10:15", 2.0),
                  ("I1", "2025-04-02 10:15", 2.0 + 1e-10), ("I1", "2025-04-02 10:30", NAN),
                  ("I1", "2025-04-02 10:45", float("inf")), ("I1", "2025-04-02 11:00", -3.0),
                  ("I1", "2025-04-02 11:15", 5.0)])
    i1 = row(meter_consumption(r, meters(meter("I1"))), "I1", "2025-04")
    assert i1["consumption"] == 1.0 + 2.0 + 5.0
    assert (i1["n_intervals"], i1["n_duplicates"], i1["n_conflicts"], i1["n_invalid"]) == (3, 1, 0, 3)


def test_meter_replacement_does_not_invent_consumption():
    # old gas meter G1 read 500 → 510 → 520 until 10:00; the new one G2 starts at 10:15 at 3.0
    r = pd.concat([series("G1", "2025-06-12 09:30", [500.0, 510.0, 520.0]),
                   series("G2", "2025-06-12 10:15", [3.0, 4.0, 6.0])], ignore_index=True)
    m = meters(meter("G1", "cumulative", rollover=9_999_999, node_id="F04.W02", source="combustion",
                     item="natural_gas", unit="Nm3"),
               meter("G2", "cumulative", rollover=9_999_999, node_id="F04.W02", source="combustion",
                     item="natural_gas", unit="Nm3"))
    c = meter_consumption(r, m)
    g1, g2 = row(c, "G1", "2025-06"), row(c, "G2", "2025-06")
    assert g1["consumption"] == pytest.approx(20.0)
    assert g2["consumption"] == pytest.approx(3.0)  # from its first reading, not 520 → 3
    assert c["consumption"].sum() == pytest.approx(23.0)
    assert c["n_resets"].sum() == 0 and c["n_rollovers"].sum() == 0
    # and on the activity side both meters add up on their node: 23 Nm3 = 0.0023 × 10^4 Nm3
    act = activity_from_meters(c, enterprise="ENT")
    assert len(act) == 1
    assert act.iloc[0]["quantity"] == pytest.approx(23.0 / 1e4)
    assert act.iloc[0]["unit"] == "10^4 Nm3" and act.iloc[0]["node_id"] == "F04.W02"


def test_completeness_below_one_with_a_gap():
    # February 2025 (28 × 96 = 2 688 intervals) of 1 kWh readings with a 2-hour gap (8 rows absent)
    full = series("I1", "2025-02-01 00:00", np.ones(28 * 96))
    r = full.drop(index=range(400, 408)).reset_index(drop=True)
    c = meter_consumption(r, meters(meter("I1")))
    feb = row(c, "I1", "2025-02")
    assert feb["n_intervals"] == 2680
    assert feb["expected_intervals"] == 2688
    assert feb["completeness"] == pytest.approx(2680 / 2688)
    assert feb["consumption"] == pytest.approx(2680.0)
    # a complete month is complete
    c_full = meter_consumption(full, meters(meter("I1")))
    assert row(c_full, "I1", "2025-02")["completeness"] == 1.0


def test_start_end_keep_the_closing_register_reading(tmp_path):
    # a cumulative meter needs the reading at `end` to close the last interval of the period
    r = pd.concat([series("C1", "2025-01-31 23:30", [100.0, 110.0, 125.0, 130.0]),
                   series("I1", "2025-01-31 23:30", [1.0, 2.0, 4.0, 8.0])], ignore_index=True)
    path = tmp_path / "r.parquet"
    r.to_parquet(path, index=False)  # a Parquet path works as well as a DataFrame
    c = meter_consumption(path, meters(meter("C1", "cumulative"), meter("I1")), start="2025-01-01",
                          end="2025-02-01")
    assert c["period"].unique().tolist() == ["2025-01"]
    assert row(c, "C1", "2025-01")["consumption"] == pytest.approx(25.0)  # 23:45 → 00:00 included
    assert row(c, "I1", "2025-01")["consumption"] == pytest.approx(3.0)   # the 00:00 interval is not


def test_readings_of_unknown_meters_are_ignored():
    r = readings([("I1", "2025-01-05 00:00", 1.0), ("XX", "2025-01-05 00:00", 99.0)])
    c = meter_consumption(r, meters(meter("I1")))
    assert c["meter_id"].tolist() == ["I1"]


def test_tz_aware_timestamps_are_local_time():
    # 15:45 UTC on 31 January is 23:45 in Shanghai (January), 16:00 UTC is 00:00 on 1 February
    r = pd.DataFrame({"meter_id": "I1", "ts": pd.to_datetime(["2025-01-31 15:45", "2025-01-31 16:00"]).tz_localize("UTC"),
                      "value": [1.0, 2.0]})
    c = meter_consumption(r, meters(meter("I1")))
    assert c.set_index("period")["consumption"].to_dict() == {"2025-01": 1.0, "2025-02": 2.0}


def test_files_in_any_order_give_the_sorted_result(tmp_path):
    # a folder of Parquet files, each holding a part of every meter (as the lake's day files do):
    # the input is not grouped by meter, so DuckDB sorts it; ties keep the files' order
    a = pd.concat([series("C1", "2025-03-01 00:00", [10.0, 12.0, 15.0]), series("I1", "2025-03-01 00:00", [1.0, 2.0])])
    b = pd.concat([series("I1", "2025-03-01 00:30", [3.0]), series("C1", "2025-03-01 00:45", [20.0, 26.0])])
    (tmp_path / "d").mkdir()
    a.to_parquet(tmp_path / "d" / "part-1.parquet", index=False)
    b.to_parquet(tmp_path / "d" / "part-2.parquet", index=False)
    m = meters(meter("I1"), meter("C1", "cumulative"))
    c = meter_consumption(tmp_path / "d", m).set_index("meter_id")["consumption"].to_dict()
    assert c == {"C1": 26.0 - 10.0, "I1": 1.0 + 2.0 + 3.0}
    assert meter_consumption(pd.concat([a, b]), m).set_index("meter_id")["consumption"].to_dict() == c


def test_several_quantities_of_one_meter_are_refused():
    r = series("I1", "2025-03-01", [1.0, 2.0]).assign(quantity="active_energy")
    both = pd.concat([r, r.assign(quantity="active_energy_export", value=[5.0, 6.0])])
    with pytest.raises(ValueError, match="I1: active_energy, active_energy_export"):
        meter_consumption(both, meters(meter("I1")))
    assert meter_consumption(r, meters(meter("I1")))["consumption"].tolist() == [3.0]


# --------------------------------------------------------------------------- activity_from_meters
def consumption_table(rows) -> pd.DataFrame:
    """Hand-made monthly consumption: (meter_id, period, consumption, node, source, item, unit, is_main)."""
    return pd.DataFrame(rows, columns=["meter_id", "period", "consumption", "node_id", "source", "item", "unit",
                                       "is_main"])


ELEC = ("purchased_electricity", "grid", "kWh")


def test_activity_sub_meters_per_node_and_residual_on_enterprise():
    c = consumption_table([
        ("M", "2025-01", 10_000.0, "ENT", *ELEC, True),
        ("S1", "2025-01", 3_000.0, "F01.W01.P01", *ELEC, False),
        ("S2", "2025-01", 2_000.0, "F01.W01.P01", *ELEC, False),
        ("S3", "2025-01", 4_000.0, "F02.W01.P01", *ELEC, False),
        ("W", "2025-01", 7_000.0, "F01.W03.P01", "self_generated_electricity", "grid", "kWh", False),
        ("G", "2025-01", 8_000.0, "F04.W02", "combustion", "natural_gas", "Nm3", False),
    ])
    act = activity_from_meters(c, enterprise="ENT")
    q = act.set_index(["source", "node_id"])["quantity"]
    # kWh → MWh; two sub-meters on one node add up
    assert q[("purchased_electricity", "F01.W01.P01")] == pytest.approx(5.0)
    assert q[("purchased_electricity", "F02.W01.P01")] == pytest.approx(4.0)
    # main − Σ sub = 10 − 9 = 1 MWh on the enterprise node
    assert q[("purchased_electricity", "ENT")] == pytest.approx(1.0)
    assert act.loc[act["source"] == "purchased_electricity", "quantity"].sum() == pytest.approx(10.0)
    assert set(act.loc[act["source"] == "purchased_electricity", "unit"]) == {"MWh"}
    ent = act[act["node_id"] == "ENT"].iloc[0]
    assert "main meter" in ent["document"] and "sub-meters" in ent["document"]
    # Nm3 → 10^4 Nm3 (the unit of the natural-gas NCV)
    assert q[("combustion", "F04.W02")] == pytest.approx(0.8)
    # self-generated electricity is not an accounting source
    assert "self_generated_electricity" not in set(act["source"])
    assert not act["document"].str.contains("scaled").any()
    assert set(act["data_tier"]) == {"primary"}
    assert act["record_id"].is_unique
    assert act["record_id"].str.startswith("meter:2025-01:").all()


def test_activity_main_meter_alone_goes_to_enterprise_and_subs_alone_stay():
    c = consumption_table([
        ("M", "2025-03", 2_500.0, "ENT", *ELEC, True),
        ("H", "2025-03", 120.0, "F05.W01.P01", "exported_heat", "heat", "GJ", False),
    ])
    act = activity_from_meters(c, enterprise="ENT")
    q = act.set_index(["source", "node_id"])["quantity"]
    assert q[("purchased_electricity", "ENT")] == pytest.approx(2.5)
    assert q[("exported_heat", "F05.W01.P01")] == pytest.approx(120.0)  # no main heat meter: no residual
    assert len(act) == 2


def test_activity_sub_meters_scaled_when_they_exceed_the_main_meter():
    c = consumption_table([
        ("M", "2025-02", 9_000.0, "ENT", *ELEC, True),
        ("S1", "2025-02", 5_000.0, "F01.W01.P01", *ELEC, False),
        ("S3", "2025-02", 5_000.0, "F02.W01.P01", *ELEC, False),
        # another month in which nothing is scaled
        ("M", "2025-03", 9_000.0, "ENT", *ELEC, True),
        ("S1", "2025-03", 4_000.0, "F01.W01.P01", *ELEC, False),
    ])
    act = activity_from_meters(c, enterprise="ENT")
    feb = act[act["period"] == "2025-02"].set_index("node_id")
    # Σ sub = 10 MWh > main 9 MWh: every sub-meter × 0.9, no negative residual
    assert feb.loc["F01.W01.P01", "quantity"] == pytest.approx(4.5)
    assert feb.loc["F02.W01.P01", "quantity"] == pytest.approx(4.5)
    assert "ENT" not in feb.index or feb.loc["ENT", "quantity"] == pytest.approx(0.0)
    assert feb["quantity"].sum() == pytest.approx(9.0)
    assert feb.loc["F01.W01.P01", "document"].count("scaled by 0.9000") == 1
    assert "exceed the main meter" in feb.loc["F02.W01.P01", "document"]
    mar = act[act["period"] == "2025-03"].set_index("node_id")
    assert mar.loc["F01.W01.P01", "quantity"] == pytest.approx(4.0)
    assert mar.loc["ENT", "quantity"] == pytest.approx(5.0)
    assert not mar["document"].str.contains("scaled").any()


def test_activity_from_meter_consumption_end_to_end():
    # main cumulative meter and two interval sub-meters, one day in July
    main = series("M", "2025-07-01 00:00", [1000.0, 1030.0, 1070.0, 1100.0])  # 30 + 40 + 30 = 100 kWh
    s1 = series("S1", "2025-07-01 00:00", [10.0, 20.0, 15.0])                   # 45 kWh
    s2 = series("S2", "2025-07-01 00:00", [12.0, 15.0, 13.0])                   # 40 kWh
    m = meters(meter("M", "cumulative", rollover=99_999_999, node_id="ENT", is_main=True),
               meter("S1", node_id="F01.W01.P01"), meter("S2", node_id="F02.W01.P01"))
    act = activity_from_meters(meter_consumption(pd.concat([main, s1, s2]), m), enterprise="ENT")
    q = act.set_index("node_id")["quantity"]
    assert q["F01.W01.P01"] == pytest.approx(0.045)
    assert q["F02.W01.P01"] == pytest.approx(0.040)
    assert q["ENT"] == pytest.approx(0.015)


def test_activity_leaves_out_a_meter_shaped_like_a_register_and_says_so():
    # S1 (interval) sends its register for a day and a quarter: 100 values 2 000, 2 001, … 2 099 —
    # left out, not 100 × 2 000 + 4 950 = 204 950 kWh; S2's load 10, 20, 15, 25 × 25 = 1 750 kWh
    # = 1.75 MWh; the main meter M: 3 000 → 6 000 kWh over the day = 3 MWh.  With S1 left out the
    # enterprise node gets main − S2 = 1.25 MWh, and the records of that month name S1
    s1 = series("S1", "2025-07-01 00:00", 2_000.0 + np.arange(100))
    s2 = series("S2", "2025-07-01 00:00", np.tile([10.0, 20.0, 15.0, 25.0], 25))
    main = series("M", "2025-07-01 00:00", [3_000.0, 6_000.0])
    m = meters(meter("M", "cumulative", node_id="ENT", is_main=True), meter("S1", node_id="F01.W01.P01"),
               meter("S2", node_id="F02.W01.P01"))
    c = meter_consumption(pd.concat([s1, s2, main], ignore_index=True), m)
    assert row(c, "S1", "2025-07")["excluded"].startswith("register shape: meter S1")
    act = activity_from_meters(c, enterprise="ENT")
    q = act.set_index("node_id")["quantity"]
    assert set(q.index) == {"F02.W01.P01", "ENT"}
    assert q["F02.W01.P01"] == pytest.approx(1.75) and q["ENT"] == pytest.approx(1.25)
    assert act["document"].str.endswith("; left out: S1 (register shape)").all()
    assert act.attrs["left_out"] == [
        {"period": "2025-07", "source": "purchased_electricity", "item": "grid", "note": "S1 (register shape)"}]


def test_activity_empty_when_nothing_is_accounted():
    c = consumption_table([("W", "2025-01", 7_000.0, "F01.W03.P01", "self_generated_electricity", "grid",
                            "kWh", False)])
    act = activity_from_meters(c, enterprise="ENT")
    assert act.empty and "quantity" in act.columns


# --------------------------------------------------------------------------- the demo enterprise
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from workbench.demo.plants import generate

    out = tmp_path_factory.mktemp("demo_readings")
    generate(out, seed=7)
    m = read_meters(out / "meters.csv")
    cons = meter_consumption(out / "readings.parquet", m)
    return out, m, cons


def test_demo_main_meter_matches_ledger_electricity(demo):
    out, m, cons = demo
    main_id = m.loc[m["is_main"], "meter_id"].item()
    anomalies = pd.read_csv(out / "anomalies.csv", dtype=str, keep_default_na=False)
    # rollovers are genuine (the register wraps) and handled; every other label spoils its month
    hit = anomalies[(anomalies["meter_id"] == main_id) & (anomalies["kind"] != "rollover")]
    dirty = set(hit["ts_start"].str.slice(0, 7)) | set(hit["ts_end"].str.slice(0, 7))
    ledger = pd.read_csv(out / "activity.csv", dtype={"period": str})
    elec = ledger[(ledger["source"] == "purchased_electricity") & (ledger["item"] == "grid")]
    assert set(elec["unit"]) == {"MWh"}
    ledger_mwh = elec.set_index("period")["quantity"]
    main = cons[cons["meter_id"] == main_id].set_index("period")
    metered_mwh = main["consumption"] / 1000.0
    clean = [p for p in ledger_mwh.index if p not in dirty]
    assert len(clean) >= 8, clean
    assert set(clean) <= set(metered_mwh.index)
    for p in clean:
        assert metered_mwh[p] == pytest.approx(ledger_mwh[p], rel=1e-3), p
    # the planted counter reset loses consumption (the ledger keeps the true figure)
    reset_months = set(anomalies.loc[(anomalies["meter_id"] == main_id) & (anomalies["kind"] == "counter_reset"),
                                     "ts_start"].str.slice(0, 7))
    for p in reset_months:
        assert main.loc[p, "n_resets"] == 1
        assert metered_mwh[p] < ledger_mwh[p]
    # months are complete on the main meter except where rows were planted missing
    gaps = anomalies[(anomalies["meter_id"] == main_id) & (anomalies["kind"] == "gap")]
    missing = gaps.groupby(gaps["ts_start"].str.slice(0, 7))["n_readings"].apply(lambda s: s.astype(int).sum())
    for p, cmp in main["completeness"].items():
        assert cmp == pytest.approx(1.0 - missing.get(p, 0) / main.loc[p, "expected_intervals"]), p
    assert len(missing) and (main.loc[missing.index, "completeness"] < 1).all()


def test_demo_activity_adds_up_to_main_meter(demo):
    out, m, cons = demo
    ent = json.loads((out / "enterprise.json").read_text(encoding="utf-8"))
    assert ent["region"]
    act = activity_from_meters(cons, enterprise="ENT")
    main_id = m.loc[m["is_main"], "meter_id"].item()
    main_mwh = cons[cons["meter_id"] == main_id].set_index("period")["consumption"] / 1000.0
    elec = act[act["source"] == "purchased_electricity"].groupby("period")["quantity"].sum()
    pd.testing.assert_series_equal(elec, main_mwh.rename("quantity"), check_names=False, rtol=1e-9)
    # the waste-heat generator meter (self-generated) is not in the activity
    whr = m.loc[m["source"] == "self_generated_electricity", "node_id"]
    assert len(whr) == 1
    assert act[(act["node_id"] == whr.item()) & (act["source"] != "purchased_electricity")].empty
    # exported heat and the two combustion fuels are there, in the library's units
    units = act.groupby("item")["unit"].first().to_dict()
    assert units == {"grid": "MWh", "heat": "GJ", "natural_gas": "10^4 Nm3", "raw_coal": "t"}


def test_an_enterprise_metered_only_has_an_inventory(tmp_path):
    """Activity from meters alone (ent-b of the status lake: E0 at 7 kWh per interval in March):
    the frames the inventory concatenates carry plain attrs, so pandas can compare them."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from status_lake import MARCH, build

    from workbench.inventory.compute import compute_inventory_from_lake
    from workbench.lake.store import Lake

    build(tmp_path)
    inv = compute_inventory_from_lake(Lake(tmp_path / "lake"), "ent-b", "2026-03", "2026-03")
    mwh = MARCH * 7.0 / 1000                       # 2,976 intervals × 7 kWh = 20.832 MWh
    assert inv.activity["quantity"].sum() == pytest.approx(mwh)
    # the national grid average of MEE/NBS notice 2025 No. 47 (data year 2023): 0.5306 tCO2/MWh
    assert inv.factors_used["factor_id"].tolist() == ["mee-avg:CN:2023"]
    assert inv.total_tco2e == pytest.approx(20.832 * 0.5306)          # 11.0534592 tCO2


def test_a_lake_inventory_keeps_the_ledgers_stamp(tmp_path):
    """The ledger says which factor library, GWP set and standard made it, from the lake too."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from status_lake import build

    from workbench.core.factors import default_library
    from workbench.inventory.compute import compute_inventory_from_lake
    from workbench.lake.store import Lake

    build(tmp_path)
    inv = compute_inventory_from_lake(Lake(tmp_path / "lake"), "ent-a", "2026-03", "2026-04", gwp="AR5")
    assert inv.ledger.attrs["gwp_set"] == "AR5"
    assert inv.ledger.attrs["factor_library_version"] == default_library("AR5").version
    assert inv.ledger.attrs["standard"]
    with pytest.raises(TypeError, match="no root"):
        Lake(Lake(tmp_path / "lake"))
