"""Tests of workbench.ingestion.prepare: raw reading batches → curated readings, consumption, quarantine, gaps.

Every case is a tiny hand-made batch whose expected result is worked out in the test.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.ingestion.prepare import (
    CONSUMPTION_SCHEMA,
    READINGS_SCHEMA,
    Thresholds,
    fill_gaps,
    month_of,
    prepare_readings,
    validate_tables,
)
from workbench.inventory.readings import meter_consumption

Q = pd.Timedelta("15min")


# --------------------------------------------------------------------------- helpers
def meter(meter_id, register="interval", *, unit="kWh", rollover=None, node_id="F01.W01.P01", installed="",
          removed="", replaces="", is_main=False, source="purchased_electricity", item="grid"):
    return {"meter_id": meter_id, "node_id": node_id, "source": source, "item": item, "unit": unit,
            "register": register, "rollover": rollover, "installed": installed, "removed": removed,
            "replaces": replaces, "is_main": is_main}


def meters(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def series(meter_id, start, values, unit="kWh", quantity=None, freq="15min", tz=None) -> pd.DataFrame:
    ts = pd.date_range(start, periods=len(values), freq=freq, tz=tz)
    df = pd.DataFrame({"meter_id": meter_id, "ts": ts, "value": np.asarray(values, dtype="float64"), "unit": unit})
    if quantity:
        df["quantity"] = quantity
    return df


def flags(df, meter_id=None) -> list[str]:
    d = df if meter_id is None else df[df["meter_id"] == meter_id]
    return d["quality_flag"].astype(str).tolist()


def values(df, meter_id=None) -> list[float]:
    d = df if meter_id is None else df[df["meter_id"] == meter_id]
    return d["value"].round(9).tolist()


def ts_list(df) -> list[str]:
    return [f"{t:%Y-%m-%d %H:%M}" for t in df["ts"]]


I1 = meter("I1")
C1 = meter("C1", "cumulative", rollover=99_999)


# --------------------------------------------------------------------------- time
def test_tz_aware_input_becomes_naive_shanghai_time():
    b = series("I1", "2025-01-01 00:00", [1, 2, 3], tz="UTC")
    p = prepare_readings(b, meters(I1))
    assert p.readings["ts"].dt.tz is None
    assert ts_list(p.readings) == ["2025-01-01 08:00", "2025-01-01 08:15", "2025-01-01 08:30"]
    assert p.gaps.empty and p.quarantine.empty


def test_dst_input_from_berlin_lands_on_a_continuous_local_grid():
    # 2025-03-30 02:00 CET → 03:00 CEST: 01:45+01:00 and 03:00+02:00 are 15 minutes apart
    ts = pd.date_range("2025-03-30 01:00", periods=8, freq="15min", tz="Europe/Berlin")
    assert [t.strftime("%H:%M") for t in ts[3:5]] == ["01:45", "03:00"]
    b = pd.DataFrame({"meter_id": "I1", "ts": ts, "value": 1.0, "unit": "kWh"})
    p = prepare_readings(b, meters(I1))
    # 01:00 CET = 00:00 UTC = 08:00 Asia/Shanghai, then every 15 minutes without a hole
    assert ts_list(p.readings) == [f"2025-03-30 {h}" for h in
                                   ("08:00", "08:15", "08:30", "08:45", "09:00", "09:15", "09:30", "09:45")]
    assert p.gaps.empty and p.counts["off_grid"] == 0
    # the autumn switch (2025-10-26 03:00 CEST → 02:00 CET): 02:45+02:00 and 02:00+01:00 are 15 min apart
    ts = pd.date_range("2025-10-26 00:30", periods=4, freq="15min", tz="UTC").tz_convert("Europe/Berlin")
    assert [t.strftime("%H:%M%z") for t in ts] == ["02:30+0200", "02:45+0200", "02:00+0100", "02:15+0100"]
    p = prepare_readings(pd.DataFrame({"meter_id": "I1", "ts": ts, "value": 1.0, "unit": "kWh"}), meters(I1))
    assert ts_list(p.readings) == ["2025-10-26 08:30", "2025-10-26 08:45", "2025-10-26 09:00", "2025-10-26 09:15"]


def test_naive_input_of_a_dst_zone_quarantines_nonexistent_and_ambiguous_wall_times():
    b = series("I1", "2025-03-30 01:30", [1, 1, 1, 1, 1, 1, 1])  # 01:30 … 03:00 wall time in Berlin
    p = prepare_readings(b, meters(I1), source_tz="Europe/Berlin")
    assert ts_list(p.readings) == ["2025-03-30 08:30", "2025-03-30 08:45", "2025-03-30 09:00"]
    assert p.counts["nonexistent_local_time"] == 4  # 02:00 … 02:45 do not exist
    assert all("Europe/Berlin" in r and "DST" in r for r in p.quarantine["reason"])
    b = series("I1", "2025-10-26 02:00", [1, 1])  # 02:00 and 02:15 happen twice
    p = prepare_readings(b, meters(I1), source_tz="Europe/Berlin")
    assert p.readings.empty and p.counts["nonexistent_local_time"] == 2


def test_timestamp_strings_with_mixed_offsets_and_garbage():
    b = pd.DataFrame({"meter_id": "I1", "unit": "kWh", "value": [1.0, 2.0, 3.0, 4.0, 5.0],
                      "ts": ["2025-01-01T00:00:00+08:00", "2024-12-31T16:15:00Z", "2025-01-01 00:30",
                             "not a time", None]})
    p = prepare_readings(b, meters(I1))
    assert ts_list(p.readings) == ["2025-01-01 00:00", "2025-01-01 00:15", "2025-01-01 00:30"]
    assert p.quarantine["reason"].tolist() == ["unparseable timestamp: 'not a time'", "missing timestamp"]
    assert p.quarantine["row"].tolist() == [3, 4]


def test_off_grid_timestamps_are_kept_and_flagged():
    b = pd.DataFrame({"meter_id": "I1", "unit": "kWh", "value": [1.0, 2.0, 3.0],
                      "ts": pd.to_datetime(["2025-01-01 00:00", "2025-01-01 00:17", "2025-01-01 00:30"])})
    p = prepare_readings(b, meters(I1))
    assert flags(p.readings) == ["ok", "off_grid", "ok"]
    assert flags(p.consumption) == ["ok", "off_grid", "ok"]
    assert p.counts["off_grid"] == 1 and p.gaps.empty


def test_month_of_the_interval_start():
    ts = pd.Series(pd.to_datetime(["2025-01-31 23:45", "2025-02-01 00:00", None]))
    assert month_of(ts).astype(object).where(lambda s: s.notna(), None).tolist() == ["2025-01", "2025-02", None]


# --------------------------------------------------------------------------- units and values
def test_kwh_to_mwh_and_wan_kwh_conversion_with_pint():
    m = meters(meter("M1", unit="MWh"))
    b = pd.DataFrame({"meter_id": "M1", "ts": pd.date_range("2025-01-01", periods=3, freq="15min"),
                      "value": [1500.0, 2.0, 0.5], "unit": ["kWh", "MWh", "万kWh"]})
    p = prepare_readings(b, m)
    assert values(p.readings) == [1.5, 2.0, 5.0]
    assert set(p.readings["unit"].astype(str)) == {"MWh"}


def test_wrong_dimension_unit_is_quarantined_naming_both_units():
    m = meters(I1, meter("T1", unit="t", source="combustion", item="raw_coal"))
    b = pd.DataFrame({"meter_id": ["I1", "T1", "I1"], "ts": pd.to_datetime(["2025-01-01 00:00"] * 3),
                      "value": [1.0, 2.0, 3.0], "unit": ["t", "kg", "kWh"]})
    p = prepare_readings(b, m)
    assert len(p.readings) == 2  # kg → t converts (2 kg = 0.002 t)
    assert values(p.readings, "T1") == [0.002]
    (reason,) = p.quarantine["reason"].tolist()
    assert "'t'" in reason and "'kWh'" in reason and "unit mismatch" in reason and "I1" in reason
    assert "[mass]" in reason  # the dimensions are named
    assert json.loads(p.quarantine["payload"].iloc[0]) == {"meter_id": "I1", "ts": "2025-01-01 00:00:00",
                                                            "value": 1.0, "unit": "t"}
    assert p.counts["unit_mismatch"] == 1


def test_unknown_and_missing_units_are_quarantined():
    b = pd.DataFrame({"meter_id": "I1", "ts": pd.date_range("2025-01-01", periods=4, freq="15min"),
                      "value": [1.0, 2.0, 3.0, 4.0], "unit": ["kWh", "bogus_unit", None, "kWh"]})
    p = prepare_readings(b, meters(I1))
    assert p.quarantine["reason"].tolist() == ["unknown unit 'bogus_unit' (meter I1 unit 'kWh')",
                                               "missing unit (meter I1 unit 'kWh')"]
    # the two quarantined rows leave a gap of two intervals, and the gap says why
    assert p.gaps[["n_missing", "n_quarantined"]].values.tolist() == [[2, 2]]


def test_bad_values_are_quarantined():
    b = pd.DataFrame({"meter_id": "I1", "ts": pd.date_range("2025-01-01", periods=6, freq="15min"),
                      "value": ["1.5", "abc", None, "inf", "-2", "3"], "unit": "kWh"})
    p = prepare_readings(b, meters(I1))
    assert values(p.readings) == [1.5, 3.0]
    assert p.quarantine["reason"].tolist() == ["non-numeric value: 'abc'", "missing value",
                                               "infinite value: 'inf'", "negative interval value -2"]
    assert p.quarantine["row"].tolist() == [1, 2, 3, 4]


def test_quarantined_rows_with_line_separators_in_their_values_keep_one_payload_each():
    """U+2028, U+0085 and \\x0b inside a value are no line breaks of the JSON-lines payload: each
    quarantined row keeps its own payload (str.splitlines used to split them and misalign)."""
    b = pd.DataFrame({"meter_id": ["X\u2028Y", "Z\x85W", "V\x0bU", "I1"],
                      "ts": pd.date_range("2025-01-01", periods=4, freq="15min"), "value": 1.0, "unit": "kWh"})
    p = prepare_readings(b, meters(I1))
    assert len(p.readings) == 1 and len(p.quarantine) == 3
    assert [json.loads(x)["meter_id"] for x in p.quarantine["payload"]] == ["X\u2028Y", "Z\x85W", "V\x0bU"]


def test_negative_register_reading_and_unknown_meter():
    b = pd.concat([series("C1", "2025-01-01", [-5.0]), series("XX", "2025-01-01", [1.0])], ignore_index=True)
    p = prepare_readings(b, meters(C1))
    assert p.quarantine["reason"].tolist() == ["negative register reading -5.0", "meter not registered: 'XX'"]
    assert p.counts["meter_not_registered"] == 1


def test_register_column_must_agree_with_the_meter():
    b = series("C1", "2025-01-01", [1.0, 2.0]).assign(register=["cumulative", "interval"])
    p = prepare_readings(b, meters(C1))
    assert p.quarantine["reason"].tolist() == ["register mismatch: row says 'interval', meter C1 is 'cumulative'"]


# --------------------------------------------------------------------------- duplicates
def test_identical_duplicates_are_collapsed_flagged_and_counted():
    b = series("I1", "2025-04-02 10:00", [1.5, 2.5, 3.0]).iloc[[0, 1, 1, 1, 2]]
    p = prepare_readings(b, meters(I1))
    assert values(p.readings) == [1.5, 2.5, 3.0]
    assert flags(p.readings) == ["ok", "duplicate", "ok"]
    assert (p.counts["duplicate"], p.counts["duplicate_rows_dropped"]) == (1, 2)
    assert p.quarantine.empty


def test_duplicates_compare_converted_values():
    b = pd.DataFrame({"meter_id": "I1", "ts": pd.to_datetime(["2025-01-01 00:00"] * 2), "value": [1000.0, 1.0],
                      "unit": ["kWh", "MWh"]})
    p = prepare_readings(b, meters(I1))
    assert values(p.readings) == [1000.0] and p.counts["duplicate"] == 1


def test_conflicting_duplicate_is_quarantined_and_shows_as_a_gap():
    b = series("I1", "2025-04-02 10:00", [1.0, 2.0, 3.0])
    b = pd.concat([b, b.iloc[[1]].assign(value=4.0)], ignore_index=True)
    p = prepare_readings(b, meters(I1))
    assert values(p.consumption) == [1.0, 3.0]  # neither 2 nor 4 is used, nor their mean
    reasons = p.quarantine["reason"].tolist()
    assert len(reasons) == 2 and all(r.startswith("conflicting duplicate: (I1, 2025-04-02 10:15:00") for r in reasons)
    assert "2, 4" in reasons[0]
    assert sorted(p.quarantine["row"]) == [1, 3]
    assert p.gaps[["n_missing", "n_quarantined"]].values.tolist() == [[1, 1]]
    assert p.counts["conflicting_duplicate"] == 2


# --------------------------------------------------------------------------- registers
def test_cumulative_register_rollover_and_reset():
    # capacity 99 999: 99 980 → 99 990 (10) → 5 (rollover: 5 + 99 999 − 99 990 = 14) → 20 (15)
    # → 1 (reset: 1 ≤ 2, 10 % of 20 — counted from zero) → 7 (6).  (A drop from 20 to 3 would be
    # a register fall: 3 > 2.)
    b = series("C1", "2025-06-30 22:00", [99_980, 99_990, 5, 20, 1, 7])
    p = prepare_readings(b, meters(C1))
    c = p.consumption
    assert values(c) == [10.0, 14.0, 15.0, 1.0, 6.0]
    assert flags(c) == ["ok", "rollover", "ok", "reset", "ok"]
    # consumption belongs to the interval starting at the earlier reading
    assert ts_list(c) == ["2025-06-30 22:00", "2025-06-30 22:15", "2025-06-30 22:30", "2025-06-30 22:45",
                          "2025-06-30 23:00"]
    assert (p.counts["rollover"], p.counts["reset"]) == (1, 1)
    # the same totals as the accounting (workbench.inventory.readings)
    acc = meter_consumption(b[["meter_id", "ts", "value"]], meters(C1).assign(rollover=99_999.0))
    assert acc["consumption"].sum() == pytest.approx(c["value"].sum())


def test_a_drop_far_from_capacity_is_a_reset_not_a_rollover():
    b = series("C1", "2025-05-10 08:00", [1000, 1010, 1025, 3, 7])
    c = prepare_readings(b, meters(C1)).consumption
    assert values(c) == [10.0, 15.0, 3.0, 4.0] and flags(c)[2] == "reset"


def test_meter_replacement_first_reading_is_a_start_value():
    m = meters(meter("G1", "cumulative", unit="Nm3", rollover=9_999_999, removed="2025-06-12"),
               meter("G2", "cumulative", unit="Nm3", rollover=9_999_999, installed="2025-06-12", replaces="G1"))
    b = pd.concat([series("G1", "2025-06-12 09:30", [500, 510, 520], "Nm3"),
                   series("G2", "2025-06-12 10:15", [3, 4, 6], "Nm3")], ignore_index=True)
    p = prepare_readings(b, m)
    assert values(p.consumption, "G1") == [10.0, 10.0]
    assert values(p.consumption, "G2") == [1.0, 2.0]  # not 3 − 520, not 3
    assert p.consumption["value"].sum() == pytest.approx(23.0)
    assert flags(p.readings, "G2") == ["replacement_start", "ok", "ok"]
    assert p.counts["replacement_start"] == 1 and p.counts["reset"] == 0


def test_readings_outside_the_service_dates_are_flagged():
    m = meters(meter("I1", installed="2025-01-02", removed="2025-01-03"))
    b = pd.DataFrame({"meter_id": "I1", "unit": "kWh", "value": 1.0,
                      "ts": pd.to_datetime(["2025-01-01 23:45", "2025-01-02 00:00", "2025-01-03 23:45",
                                            "2025-01-04 00:00"])})
    p = prepare_readings(b, m)
    assert flags(p.readings) == ["outside_service", "ok", "ok", "outside_service"]


# --------------------------------------------------------------------------- gaps
def test_gaps_are_reported_never_filled():
    b = series("I1", "2025-02-01 00:00", np.ones(20)).drop(index=range(5, 13))
    p = prepare_readings(b, meters(I1))
    assert len(p.consumption) == 12
    g = p.gaps.iloc[0]
    assert (g["meter_id"], f"{g['start']:%H:%M}", f"{g['end']:%H:%M}", g["n_missing"]) == ("I1", "01:15", "03:00", 8)
    assert p.counts["missing_intervals"] == 8


def test_cumulative_difference_across_a_gap_stays_on_the_earlier_interval():
    b = series("C1", "2025-01-01 00:00", [100, 110, 120, 150, 160]).drop(index=[2, 3])  # 00:30, 00:45 missing
    p = prepare_readings(b, meters(C1))
    c = p.consumption
    assert values(c) == [10.0, 50.0]
    assert flags(c) == ["ok", "gap_spanning"] and c["span"].tolist() == [1, 3]
    assert ts_list(c)[1] == "2025-01-01 00:15"
    assert p.gaps[["n_missing"]].values.ravel().tolist() == [2]


def test_fill_gaps_on_request_keeps_totals_and_flags_estimates():
    cum = prepare_readings(series("C1", "2025-01-01 00:00", [100, 110, 120, 150, 160]).drop(index=[2, 3]),
                           meters(C1)).consumption
    f = fill_gaps(cum)
    assert values(f) == [10.0, pytest.approx(50 / 3), pytest.approx(50 / 3), pytest.approx(50 / 3)]
    assert f["value"].sum() == pytest.approx(cum["value"].sum())
    assert flags(f) == ["ok", "gap_spanning|estimated", "gap_spanning|estimated", "gap_spanning|estimated"]
    itv = prepare_readings(series("I1", "2025-01-01 00:00", [1, 2, 9, 9, 5]).drop(index=[2, 3]), meters(I1)).consumption
    f = fill_gaps(itv)
    assert values(f) == [1.0, 2.0, 3.0, 4.0, 5.0]  # linear between 2 and 5
    assert flags(f) == ["ok", "ok", "estimated", "estimated", "ok"]
    # profile: the meter's daily shape (two days, the second with a hole), scaled to the neighbours
    day = np.tile([1.0, 2.0, 4.0, 2.0], 24)
    b = series("I1", "2025-01-01 00:00", np.r_[day, day]).drop(index=[96 + 2])
    f = fill_gaps(prepare_readings(b, meters(I1)).consumption, method="profile")
    est = f[f["quality_flag"].astype(str) == "estimated"]
    assert values(est) == [4.0] and len(f) == 192
    with pytest.raises(ValueError):
        fill_gaps(itv, method="guess")


# --------------------------------------------------------------------------- anomaly flags
def test_spike_is_flagged_and_not_changed():
    v = 100 + 3 * np.sin(np.arange(40))
    v[20] = 2500.0
    v[30:32] = 1800.0  # a two-interval spike too
    p = prepare_readings(series("I1", "2025-01-01", v), meters(I1))
    c = p.consumption
    assert [i for i, f in enumerate(flags(c)) if f == "spike"] == [20, 30, 31]
    assert values(c)[20] == 2500.0
    assert p.counts["spike"] == 3


def test_steps_and_daily_cycles_are_not_spikes():
    v = np.r_[np.full(20, 10.0), np.full(20, 80.0), np.full(20, 10.0)] * (1 + 0.01 * np.sin(np.arange(60)))
    v = np.r_[v, 20 + 30 * np.exp(-0.5 * ((np.arange(96) - 48) / 3) ** 2)]
    p = prepare_readings(series("I1", "2025-01-01", v), meters(I1))
    assert p.counts["spike"] == 0


def test_spike_on_a_cumulative_register_uses_the_rate_per_interval():
    # a one-day gap spans 97 intervals: its large difference is not a spike, a tenfold jump is
    reg = np.cumsum(np.r_[0, np.full(200, 10.0)])
    reg[150:] += 500  # one interval consumes 510 instead of 10
    b = series("C1", "2025-01-01", reg).drop(index=range(20, 116))
    c = prepare_readings(b, meters(C1.copy() | {"rollover": 1e9})).consumption
    assert c.loc[c["quality_flag"].astype(str) == "spike", "value"].tolist() == [510.0]
    assert (c["span"] > 1).sum() == 1


def test_stuck_value_is_flagged_zero_runs_and_constant_meters_are_not():
    rng = np.random.default_rng(1)
    v = np.round(50 + 5 * rng.standard_normal(100), 2)
    v[40:60] = 47.11  # 20 intervals = 5 h flat
    v[70:90] = 0.0  # equipment off
    p = prepare_readings(series("I1", "2025-01-01", v), meters(I1))
    st = [i for i, f in enumerate(flags(p.consumption)) if f == "stuck"]
    assert st == list(range(40, 60))
    flat = prepare_readings(series("I1", "2025-01-01", np.full(50, 7.0)), meters(I1))
    assert flat.counts["stuck"] == 0  # a meter that never varies cannot be judged
    short = v.copy()
    short[40:60] = np.round(50 + 5 * rng.standard_normal(20), 2)
    short[40:50] = 47.11  # 10 intervals < 12
    assert prepare_readings(series("I1", "2025-01-01", short), meters(I1)).counts["stuck"] == 0
    th = Thresholds(stuck_min_run=8)
    assert prepare_readings(series("I1", "2025-01-01", short), meters(I1), thresholds=th).counts["stuck"] == 10


# --------------------------------------------------------------------------- batches
def test_previous_batch_continues_the_register():
    whole = series("C1", "2025-01-01 00:00", [100, 110, 125, 140, 150, 165])
    one = prepare_readings(whole, meters(C1)).consumption
    p1 = prepare_readings(whole.iloc[:3], meters(C1))
    prev = p1.readings.groupby("meter_id", observed=True).tail(1)[["meter_id", "ts", "value"]]
    p2 = prepare_readings(whole.iloc[3:], meters(C1), previous=prev)
    both = pd.concat([p1.consumption, p2.consumption], ignore_index=True)
    assert values(both) == values(one) == [10.0, 15.0, 15.0, 10.0, 15.0]
    assert ts_list(p2.consumption)[0] == "2025-01-01 00:30"  # the interval started by the stored reading
    assert p2.readings["ts"].min() == pd.Timestamp("2025-01-01 00:45")  # the stored row is not written again
    # without `previous` the first reading of the batch only starts the register
    assert values(prepare_readings(whole.iloc[3:], meters(C1)).consumption) == [10.0, 15.0]


def test_previous_batch_gap_duplicate_conflict_and_late_rows():
    prev = pd.DataFrame({"meter_id": ["C1"], "ts": [pd.Timestamp("2025-01-01 01:00")], "value": [140.0]})
    b = pd.DataFrame({"meter_id": "C1", "unit": "kWh",
                      "ts": pd.to_datetime(["2025-01-01 00:45", "2025-01-01 01:00", "2025-01-01 01:45"]),
                      "value": [130.0, 140.0, 170.0]})
    p = prepare_readings(b, meters(C1), previous=prev)
    assert values(p.consumption) == [30.0] and flags(p.consumption) == ["gap_spanning"]
    assert ts_list(p.consumption) == ["2025-01-01 01:00"]
    assert p.gaps["n_missing"].tolist() == [2]
    assert p.counts["duplicate_stored"] == 1
    assert p.quarantine["reason"].tolist() == [
        "late register reading: (C1, 2025-01-01 00:45:00, active_energy) is before the last stored reading "
        "2025-01-01 01:00:00 of the cumulative meter"]
    b2 = b.iloc[[1]].assign(value=141.0)
    p2 = prepare_readings(b2, meters(C1), previous=prev)
    assert p2.quarantine["reason"].iloc[0].startswith("conflicts with stored value: (C1, 2025-01-01 01:00:00")
    assert "stored value 140" in p2.quarantine["reason"].iloc[0]


def test_unsorted_and_time_major_batches_give_the_same_result():
    rng = np.random.default_rng(7)
    a = series("I1", "2025-01-01", rng.uniform(1, 2, 50))
    c = series("C1", "2025-01-01", np.cumsum(rng.uniform(1, 2, 50)))
    m = meters(I1, C1)
    ref = prepare_readings(pd.concat([a, c], ignore_index=True), m)
    time_major = pd.concat([a, c]).sort_values(["ts", "meter_id"], kind="stable").reset_index(drop=True)
    shuffled = pd.concat([a, c]).sample(frac=1, random_state=3).reset_index(drop=True)
    for b in (time_major, shuffled):
        p = prepare_readings(b, m)
        for t in ("readings", "consumption"):
            x = getattr(p, t).sort_values(["meter_id", "ts"]).reset_index(drop=True)
            y = getattr(ref, t).sort_values(["meter_id", "ts"]).reset_index(drop=True)
            assert x["value"].tolist() == y["value"].tolist()
            assert x["ts"].tolist() == y["ts"].tolist()


def test_quantity_separates_series_of_one_meter():
    b = pd.concat([series("I1", "2025-01-01", [1, 2], quantity="active_energy"),
                   series("I1", "2025-01-01", [5, 6], quantity="active_energy_export")], ignore_index=True)
    p = prepare_readings(b, meters(I1))
    assert p.quarantine.empty and p.counts["duplicate"] == 0
    assert sorted(p.readings["quantity"].astype(str).unique()) == ["active_energy", "active_energy_export"]


def test_empty_and_all_bad_batches():
    p = prepare_readings(series("I1", "2025-01-01", []), meters(I1))
    assert p.readings.empty and p.consumption.empty and p.quarantine.empty
    p = prepare_readings(series("XX", "2025-01-01", [1.0, 2.0]), meters(I1))
    assert p.readings.empty and len(p.quarantine) == 2


# --------------------------------------------------------------------------- schemas
def test_curated_frames_pass_the_schemas_and_string_columns_are_categorical():
    p = prepare_readings(series("I1", "2025-01-01", [1, 2, 3]), meters(I1))
    validate_tables(p.readings, p.consumption, p.quarantine, p.gaps)
    assert list(p.readings.columns) == ["meter_id", "node_id", "identifier", "ts", "quantity", "value", "unit",
                                        "register", "quality_flag", "value_original", "unit_original"]
    assert list(p.consumption.columns) == ["meter_id", "node_id", "ts", "quantity", "value", "unit",
                                           "quality_flag", "span"]
    assert list(p.quarantine.columns) == ["table", "row", "reason", "payload"]
    assert isinstance(p.readings["meter_id"].dtype, pd.CategoricalDtype)


def test_pandera_rejects_a_malformed_frame_with_a_clear_message():
    import pandera.errors

    bad = pd.DataFrame({
        "meter_id": ["I1", None], "node_id": ["F01", "F01"], "identifier": [None, None],
        "ts": pd.to_datetime(["2025-01-01 00:00", "2025-01-01 00:15"]).tz_localize("UTC"),
        "quantity": ["active_energy"] * 2, "value": [1.0, np.nan], "unit": ["kWh"] * 2,
        "register": ["interval", "monthly"], "quality_flag": ["ok", "sparkly"],
    })
    with pytest.raises(pandera.errors.SchemaErrors) as err:
        READINGS_SCHEMA.validate(bad, lazy=True)
    msg = str(err.value)
    for word in ("meter_id", "ts", "value", "register", "quality_flag", "naive datetime64"):
        assert word in msg
    with pytest.raises(pandera.errors.SchemaErrors):
        CONSUMPTION_SCHEMA.validate(bad.drop(columns=["identifier", "register"]).assign(span=np.int32(0)), lazy=True)


# ------------------------------------------------------------------ plausibility: shape vs registered kind
def test_a_register_export_on_an_interval_meter_is_quarantined_not_summed():
    """A day of a cumulative register's readings (123,456.0 kWh rising ~5 kWh every 15 min) sent
    for a meter registered as interval: summed, it would be 96 × ~123,700 ≈ 11.9 M kWh with every
    flag ok.  The series is quarantined with the reason; the real interval meter beside it, whose
    load falls as well as rises, is stored as it is."""
    rng = np.random.default_rng(7)
    register = 123_456.0 + np.cumsum(rng.uniform(4.0, 6.0, 96))
    load = 5.0 + 2.0 * np.sin(np.arange(96) / 96 * 2 * np.pi)            # a day's load: rises and falls
    batch = pd.concat([series("I1", "2026-03-01", register), series("I2", "2026-03-01", load)], ignore_index=True)
    p = prepare_readings(batch, meters(I1, meter("I2", "interval")))
    assert set(p.readings["meter_id"]) == {"I2"} and set(p.consumption["meter_id"]) == {"I2"}
    assert p.consumption["value"].sum() == pytest.approx(load.sum(), rel=1e-12)
    assert len(p.quarantine) == 96 and p.counts["register_shape"] == 96
    reason = p.quarantine["reason"].iloc[0]
    assert reason.startswith("register shape: meter I1 is registered as an interval meter but its 96 values from ")
    assert "register it as cumulative" in reason


def test_the_shape_rule_needs_a_day_that_only_grows():
    # 95 rising values (less than a day), a day with one fall, a day rising at only 80 % of steps:
    # none reads as a register; a day that only grows does, and a cumulative meter is never checked
    rises = np.arange(1.0, 97.0)
    one_fall = rises.copy()
    one_fall[50] = one_fall[49] - 0.5
    flat = np.repeat(np.arange(1.0, 78.0), [1] * 58 + [2] * 19)[:96]  # 76 rises, 19 equal steps
    cases = {"I3": rises[:95], "I4": one_fall, "I5": flat, "I6": rises}
    batch = pd.concat([series(k, "2026-03-01", v) for k, v in cases.items()] + [series("C1", "2026-03-01", rises)],
                      ignore_index=True)
    m = meters(*(meter(k, "interval") for k in cases), C1)
    p = prepare_readings(batch, m)
    assert set(p.quarantine["payload"].map(lambda s: json.loads(s)["meter_id"])) == {"I6"}
    assert set(p.readings["meter_id"]) == {"I3", "I4", "I5", "C1"}


# ------------------------------------------------------------------ plausibility: a register that falls
def test_a_register_fall_is_quarantined_and_a_rollover_or_reset_is_not():
    """C1 (capacity 99 999) 1 000 → 1 010 (10) → 980: no rollover (1 010 is far below 90 % of the
    capacity) and no reset (980 > 101, 10 % of 1 010) — quarantined; 1 005 stays below 1 010 —
    quarantined too; 1 020 (10 over 3 intervals).  C2 (capacity 99 999) 99 990 → 4: a rollover,
    4 + 99 999 − 99 990 = 13.  C3 (no capacity) 5 000 → 7: a reset, 7; → 9: 2."""
    c2 = meter("C2", "cumulative", rollover=99_999)
    c3 = meter("C3", "cumulative")
    batch = pd.concat([series("C1", "2026-03-01", [1_000.0, 1_010.0, 980.0, 1_005.0, 1_020.0]),
                       series("C2", "2026-03-01", [99_990.0, 4.0]),
                       series("C3", "2026-03-01", [5_000.0, 7.0, 9.0])], ignore_index=True)
    p = prepare_readings(batch, meters(C1, c2, c3))
    c = p.consumption.set_index("meter_id")
    assert values(p.consumption, "C1") == [10.0, 10.0] and p.consumption.loc[p.consumption["meter_id"] == "C1",
                                                                               "span"].tolist() == [1, 3]
    assert values(p.consumption, "C2") == [13.0] and flags(p.consumption, "C2") == ["rollover"]
    assert values(p.consumption, "C3") == [7.0, 2.0] and flags(p.consumption, "C3") == ["reset", "ok"]
    assert (c["value"] >= 0).all()
    assert p.counts["register_fall"] == 2 and p.counts["rollover"] == 1 and p.counts["reset"] == 1
    assert values(p.readings, "C1") == [1_000.0, 1_010.0, 1_020.0]
    q = p.quarantine
    assert q["row"].tolist() == [2, 3]
    assert q["reason"].iloc[0].startswith("register fall: the register of cumulative meter C1 fell from 1010 "
                                          "(kept reading at 2026-03-01 00:15:00) to 980: not a rollover "
                                          "(its capacity 99999) nor a reset to near zero")
    assert [json.loads(x)["value"] for x in q["payload"]] == [980.0, 1_005.0]


def test_a_register_fall_across_batches_is_judged_from_the_stored_reading():
    # stored: C1 at 00:00 = 1 010.  The batch 990, 1 000 (both below 1 010: quarantined), 1 030:
    # 20 over three intervals from the stored reading; the stored reading emits nothing itself
    prev = pd.DataFrame({"meter_id": ["C1"], "ts": [pd.Timestamp("2026-03-01 00:00")], "value": [1_010.0]})
    p = prepare_readings(series("C1", "2026-03-01 00:15", [990.0, 1_000.0, 1_030.0]), meters(C1), previous=prev)
    assert values(p.consumption) == [20.0] and ts_list(p.consumption) == ["2026-03-01 00:00"]
    assert p.consumption["span"].tolist() == [3] and p.counts["register_fall"] == 2
    assert values(p.readings) == [1_030.0]
    assert p.quarantine["reason"].str.contains("fell from 1010 (kept reading at 2026-03-01 00:00:00)", regex=False).all()


def test_a_reading_in_another_unit_keeps_its_value_and_unit_as_written():
    # meter in kWh: 1.5 kWh stays (nothing kept beside it); 0.002 MWh → 2 kWh, kept as 0.002 MWh;
    # 3 度 (= kWh, another spelling) → 3 kWh, kept as 3 度
    b = series("I1", "2026-03-01", [1.5, 0.002, 3.0]).assign(unit=["kWh", "MWh", "度"])
    r = prepare_readings(b, meters(I1)).readings
    assert values(r) == [1.5, 2.0, 3.0] and set(r["unit"].astype(str)) == {"kWh"}
    assert r["value_original"].tolist()[1:] == [0.002, 3.0] and np.isnan(r["value_original"].iloc[0])
    assert r["unit_original"].astype(object).tolist()[1:] == ["MWh", "度"] and pd.isna(r["unit_original"].iloc[0])
    # a batch all in the meter's unit: the columns are there, empty
    r = prepare_readings(series("I1", "2026-03-01", [1.0, 2.0]), meters(I1)).readings
    assert r["value_original"].isna().all() and r["unit_original"].isna().all()
