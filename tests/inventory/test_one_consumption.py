"""One consumption algorithm (issue 11, point 4): the lake and the accounting agree.

Path A, the lake: ``workbench.ingestion.ingest`` (raw → preparation → curated) → the ``consumption`` table →
sums per meter and month of the interval start.  Path B, the accounting:
``workbench.inventory.readings.meter_consumption`` on the same readings.  Both apply the rules of
``workbench.core.registers``; here every rule is a small case whose numbers are worked out by hand and
must come out of both paths, and the demo plant's readings — with its planted duplicates,
conflicting duplicates, resets, rollovers, meter replacement, gaps and spikes — go through both and
agree to 1e-9 relative in every meter-month.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectors import ConnectorResult, parquet
from workbench.core import registers
from workbench.core.meters import read_meters
from workbench.ingestion import ingest
from workbench.inventory.readings import meter_consumption
from workbench.lake.store import Lake

NAN = float("nan")
RTOL = 1e-9


# --------------------------------------------------------------------------- helpers
def meter(meter_id, register="interval", *, rollover=NAN, replaces="", unit="kWh", item="grid",
          source="purchased_electricity"):
    return {"meter_id": meter_id, "node_id": "F01.W01", "source": source, "item": item, "unit": unit,
            "register": register, "rollover": rollover, "replaces": replaces, "is_main": False}


def rows(*items) -> pd.DataFrame:
    """(meter_id, local time, value) rows, in the order given (the order of the source)."""
    df = pd.DataFrame(list(items), columns=["meter_id", "ts", "value"])
    df["ts"] = pd.to_datetime(df["ts"])
    df["value"] = df["value"].astype("float64")
    return df


def series(meter_id, start, values) -> pd.DataFrame:
    ts = pd.date_range(start, periods=len(values), freq="15min")
    return pd.DataFrame({"meter_id": meter_id, "ts": ts, "value": np.asarray(values, dtype="float64")})


def ingest_series(lake: Lake, df: pd.DataFrame, name: str):
    data = df.assign(unit=df["meter_id"].map(lambda m: "kWh"))
    return ingest(lake, ConnectorResult(data, {"source": "test"}, kind="readings", raw=data.to_csv().encode(),
                                       raw_name=name), sender="test")


def lake_monthly(lake: Lake) -> pd.Series:
    """Path A's result: the lake's consumption rows summed per meter and month of the interval start."""
    if "consumption" not in lake.tables():
        return pd.Series(dtype="float64")
    c = lake.sql("SELECT meter_id, strftime(ts, '%Y-%m') AS period, sum(value) AS consumption "
                 "FROM consumption GROUP BY ALL")
    return c.set_index(["meter_id", "period"])["consumption"].sort_index()


def accounting_monthly(cons: pd.DataFrame) -> pd.Series:
    """Path B's result, months without a consumption row (only counts) left out as in path A."""
    c = cons[cons["n_intervals"] > 0]
    return c.set_index(["meter_id", "period"])["consumption"].astype("float64").sort_index()


def both(tmp_path, meters: list[dict], *batches: pd.DataFrame, **window):
    """Ingest the batches into a fresh lake one after the other (path A) and run
    ``meter_consumption`` on all their rows (path B).  Returns (lake, A, B, B's full frame)."""
    lake = Lake(tmp_path / "lake")
    m = pd.DataFrame(meters)
    lake.register_meters(m)
    for k, b in enumerate(batches):
        ingest_series(lake, b, f"batch{k}.csv")
    acc = meter_consumption(pd.concat(batches, ignore_index=True), m, **window)
    return lake, lake_monthly(lake), accounting_monthly(acc), acc


def expect(a: pd.Series, b: pd.Series, hand: dict) -> None:
    """Both paths give exactly the hand-computed monthly totals."""
    want = pd.Series(hand, dtype="float64")
    want.index = pd.MultiIndex.from_tuples(want.index, names=["meter_id", "period"])
    want = want.sort_index()
    pd.testing.assert_series_equal(a.rename("x"), want.rename("x"), check_index_type=False, rtol=1e-12)
    pd.testing.assert_series_equal(b.rename("x"), want.rename("x"), check_index_type=False, rtol=1e-12)


def one(cons: pd.DataFrame, meter_id: str, period: str) -> pd.Series:
    sel = cons[(cons["meter_id"] == meter_id) & (cons["period"] == period)]
    assert len(sel) == 1
    return sel.iloc[0]


# --------------------------------------------------------------------------- the rules, one by one
def test_interval_values_go_to_the_month_of_their_interval_start(tmp_path):
    # 23:30 and 23:45 on 31 January are January (1 + 2), 00:00 and 00:15 on 1 February are February (4 + 8)
    r = series("I1", "2025-01-31 23:30", [1.0, 2.0, 4.0, 8.0])
    _, a, b, _ = both(tmp_path, [meter("I1")], r)
    expect(a, b, {("I1", "2025-01"): 3.0, ("I1", "2025-02"): 12.0})


def test_register_differences_belong_to_the_earlier_reading(tmp_path):
    # 100 → 110 → 125 → 130: the differences starting 23:30 (10) and 23:45 (15) are January,
    # the one starting 00:00 (5) February; the first reading only starts the register
    r = series("C1", "2025-01-31 23:30", [100.0, 110.0, 125.0, 130.0])
    _, a, b, acc = both(tmp_path, [meter("C1", "cumulative", rollover=99_999.0)], r)
    expect(a, b, {("C1", "2025-01"): 25.0, ("C1", "2025-02"): 5.0})
    assert one(acc, "C1", "2025-01")["n_intervals"] == 2


def test_a_drop_near_capacity_is_a_rollover(tmp_path):
    # capacity 99 999, 99 990 ≥ 90 % of it: 99 980 → 99 990 (10) → 5 (5 + 99 999 − 99 990 = 14) → 20 (15)
    r = series("C1", "2025-06-30 22:00", [99_980.0, 99_990.0, 5.0, 20.0])
    lake, a, b, acc = both(tmp_path, [meter("C1", "cumulative", rollover=99_999.0)], r)
    expect(a, b, {("C1", "2025-06"): 39.0})
    assert (one(acc, "C1", "2025-06")["n_rollovers"], one(acc, "C1", "2025-06")["n_resets"]) == (1, 0)
    assert lake.sql("SELECT quality_flag FROM consumption ORDER BY ts")["quality_flag"].tolist() == \
        ["ok", "rollover", "ok"]


@pytest.mark.parametrize("capacity", [NAN, 99_999.0, 0.0])
def test_a_drop_far_from_capacity_or_without_one_is_a_reset(tmp_path, capacity):
    # 1000 → 1010 (10) → 1025 (15) → 3 (reset: counted from zero, 3) → 7 (4) = 32; 1 025 is far
    # below 90 % of 99 999, and a meter without a capacity (empty or 0) cannot roll over
    r = series("C1", "2025-05-10 08:00", [1000.0, 1010.0, 1025.0, 3.0, 7.0])
    lake, a, b, acc = both(tmp_path, [meter("C1", "cumulative", rollover=capacity)], r)
    expect(a, b, {("C1", "2025-05"): 32.0})
    assert (one(acc, "C1", "2025-05")["n_resets"], one(acc, "C1", "2025-05")["n_rollovers"]) == (1, 0)
    assert "reset" in lake.sql("SELECT quality_flag FROM consumption")["quality_flag"].tolist()


def test_a_register_that_falls_without_a_rollover_or_reset_is_left_out(tmp_path):
    # no capacity: 100 → 110 (10) → 95: a drop, but 95 > 11 (10 % of 110) is no reset and without a
    # capacity no rollover — a register fall, left out; 105 stays below the kept 110: left out too.
    # Consumption 10 only, nothing negative, nothing counted from zero
    r = series("C1", "2025-05-10 08:00", [100.0, 110.0, 95.0, 105.0])
    lake, a, b, acc = both(tmp_path, [meter("C1", "cumulative")], r)
    expect(a, b, {("C1", "2025-05"): 10.0})
    assert one(acc, "C1", "2025-05")[["n_register_falls", "n_resets", "n_rollovers"]].tolist() == [2, 0, 0]
    q = lake.sql("SELECT reason, payload FROM quarantine ORDER BY row")
    assert q["reason"].str.startswith("register fall: the register of cumulative meter C1 fell from 110").all()
    assert [pd.io.json.ujson_loads(p)["value"] for p in q["payload"]] == [95.0, 105.0]
    assert "to 95" in q["reason"].iloc[0] and "to 105" in q["reason"].iloc[1]
    assert lake.sql("SELECT value FROM readings ORDER BY ts")["value"].tolist() == [100.0, 110.0]


def test_after_a_register_fall_the_register_continues_from_its_last_kept_reading(tmp_path):
    # 100, 110, [95, 105 fall below 110], 120: 10 + (120 − 110 = 10, across the 3 intervals from
    # 08:15, not spread) = 20 — last − first as if the two readings had never come; in one batch
    # and in two (the second one continues from the stored 110)
    r = series("C1", "2025-05-10 08:00", [100.0, 110.0, 95.0, 105.0, 120.0])
    lake, a, b, acc = both(tmp_path, [meter("C1", "cumulative")], r)
    expect(a, b, {("C1", "2025-05"): 20.0})
    assert one(acc, "C1", "2025-05")["n_register_falls"] == 2
    c = lake.sql("SELECT ts, value, span, quality_flag FROM consumption ORDER BY ts")
    assert c["value"].tolist() == [10.0, 10.0] and c["span"].tolist() == [1, 3]
    assert c["quality_flag"].tolist() == ["ok", "gap_spanning"]
    _, a2, _, _ = both(tmp_path / "two", [meter("C1", "cumulative")], r.iloc[:2], r.iloc[2:])
    expect(a2, b, {("C1", "2025-05"): 20.0})


def test_a_rollover_wraps_from_the_top_to_the_bottom_of_the_register(tmp_path):
    # capacity 100 000: 99 990 → 5 is a rollover, 5 + 100 000 − 99 990 = 15
    r = series("C1", "2025-06-30 22:00", [99_990.0, 5.0])
    _, a, b, acc = both(tmp_path, [meter("C1", "cumulative", rollover=100_000.0)], r)
    expect(a, b, {("C1", "2025-06"): 15.0})
    assert one(acc, "C1", "2025-06")["n_rollovers"] == 1


def test_a_drop_near_capacity_into_the_middle_of_the_register_is_a_fall(tmp_path):
    # capacity 99 999: 99 980 → 99 990 (10); 50 000 is no wrap (> 9 999.9, 10 % of the capacity)
    # and no reset (> 9 999, 10 % of 99 990): left out — the old rule made it a rollover of
    # 50 000 + 99 999 − 99 990 = 50 009; 99 995 (5, across 2 intervals); 3: a rollover,
    # 3 + 99 999 − 99 995 = 7.  Total 10 + 5 + 7 = 22
    r = series("C1", "2025-06-30 20:00", [99_980.0, 99_990.0, 50_000.0, 99_995.0, 3.0])
    lake, a, b, acc = both(tmp_path, [meter("C1", "cumulative", rollover=99_999.0)], r)
    expect(a, b, {("C1", "2025-06"): 22.0})
    assert one(acc, "C1", "2025-06")[["n_register_falls", "n_rollovers", "n_resets"]].tolist() == [1, 1, 0]
    reason = lake.sql("SELECT reason FROM quarantine")["reason"]
    assert len(reason) == 1 and "to 50000" in reason.iloc[0] and "capacity 99999" in reason.iloc[0]


def test_a_replacement_from_near_zero_and_a_reset_still_count(tmp_path):
    # G1: 800 → 810 (10), then reset to 2 (≤ 81): 2, → 6 (4) = 16; G2 replaces G1 at 0.5 → 1.5 (1):
    # a replacement's first reading only starts its register, whatever the old meter's last reading
    r = pd.concat([series("G1", "2025-07-01 00:00", [800.0, 810.0, 2.0, 6.0]),
                   series("G2", "2025-07-01 02:00", [0.5, 1.5])], ignore_index=True)
    lake, a, b, acc = both(tmp_path, [meter("G1", "cumulative"), meter("G2", "cumulative", replaces="G1")], r)
    expect(a, b, {("G1", "2025-07"): 16.0, ("G2", "2025-07"): 1.0})
    assert acc["n_register_falls"].sum() == 0 and one(acc, "G1", "2025-07")["n_resets"] == 1
    assert "quarantine" not in lake.tables()


def test_an_interval_series_shaped_like_a_register_is_left_out_by_both(tmp_path, monkeypatch):
    # I1 (interval) sends a register: 100 values 5 000, 5 001, … 5 099 from 1 August 00:00 to 2 August
    # 00:45 — every step rises, none falls: the lake quarantines them, the accounting leaves the
    # meter's consumption out (summed it would be 100 × 5 000 + 4 950 = 504 950 kWh) and says why;
    # I2's ordinary load 1, 3, 2, 3 (it falls) repeated 25 times is 25 × 9 = 225
    import workbench.inventory.readings as readings_mod

    up = series("I1", "2025-08-01 00:00", 5_000.0 + np.arange(100))
    load = series("I2", "2025-08-01 00:00", np.tile([1.0, 3.0, 2.0, 3.0], 25))   # 25 × 9 = 225
    r = pd.concat([up, load], ignore_index=True)
    lake, a, b, acc = both(tmp_path, [meter("I1"), meter("I2")], r)
    expect(a, b, {("I2", "2025-08"): 225.0})
    i1 = one(acc, "I1", "2025-08")
    assert np.isnan(i1["consumption"]) and i1["n_intervals"] == 0 and i1["completeness"] == 0
    assert i1["excluded"].startswith("register shape: meter I1 is registered as an interval meter but its 100 "
                                     "values from 5000 (2025-08-01 00:00:00) to 5099 (2025-08-02 00:45:00) only grow")
    assert one(acc, "I2", "2025-08")["excluded"] == ""
    assert lake.sql("SELECT count(*) AS n FROM quarantine WHERE reason LIKE 'register shape: meter I1%'")["n"][0] == 100
    # the same when the stream hands the series over in blocks of 7 readings
    monkeypatch.setattr(readings_mod, "BLOCK_ROWS", 7)
    small = meter_consumption(r, pd.DataFrame([meter("I1"), meter("I2")]))
    assert np.isnan(one(small, "I1", "2025-08")["consumption"]) and one(small, "I2", "2025-08")["consumption"] == 225.0
    # one fall anywhere, or fewer than a day of values, and the series is judged as a load
    dip = up.assign(value=up["value"].where(up.index != 50, 1.0))
    short = up.iloc[:95]
    for r2, want in ((dip, 5_000.0 * 99 + sum(range(100)) - 50 + 1.0), (short, 5_000.0 * 95 + sum(range(95)))):
        c = meter_consumption(r2, pd.DataFrame([meter("I1")]))
        assert one(c, "I1", "2025-08")["consumption"] == want and one(c, "I1", "2025-08")["excluded"] == ""


def test_equal_duplicates_are_one_reading(tmp_path):
    # repeats with the same value (and one within 1e-9 relative) are the first row's reading:
    # I1 1.5 + 2.5 + 3.0 = 7 (not 9.5); C1 60 − 50 + 75 − 60 = 25
    r = rows(("I1", "2025-04-02 10:00", 1.5), ("I1", "2025-04-02 10:15", 2.5), ("I1", "2025-04-02 10:15", 2.5),
             ("I1", "2025-04-02 10:30", 3.0),
             ("C1", "2025-04-02 10:00", 50.0), ("C1", "2025-04-02 10:15", 60.0),
             ("C1", "2025-04-02 10:15", 60.0 * (1 + 2e-10)), ("C1", "2025-04-02 10:30", 75.0))
    _, a, b, acc = both(tmp_path, [meter("I1"), meter("C1", "cumulative")], r)
    expect(a, b, {("C1", "2025-04"): 25.0, ("I1", "2025-04"): 7.0})
    assert one(acc, "I1", "2025-04")[["n_intervals", "n_duplicates", "n_conflicts"]].tolist() == [3, 1, 0]
    assert one(acc, "C1", "2025-04")[["n_intervals", "n_duplicates", "n_conflicts"]].tolist() == [2, 1, 0]


def test_conflicting_duplicates_are_excluded_by_both_and_counted(tmp_path):
    # I1 at 10:15: 2 and 4 → neither (the interval is missing): 1 + 1 = 2.
    # C1 at 10:15: 110, 120, 130 → no reading at 10:15; 100 → 140 spans it: 40
    r = rows(("I1", "2025-04-02 10:00", 1.0), ("I1", "2025-04-02 10:15", 2.0), ("I1", "2025-04-02 10:15", 4.0),
             ("I1", "2025-04-02 10:30", 1.0),
             ("C1", "2025-04-02 10:00", 100.0), ("C1", "2025-04-02 10:15", 110.0),
             ("C1", "2025-04-02 10:15", 120.0), ("C1", "2025-04-02 10:15", 130.0), ("C1", "2025-04-02 10:30", 140.0))
    lake, a, b, acc = both(tmp_path, [meter("I1"), meter("C1", "cumulative")], r)
    expect(a, b, {("C1", "2025-04"): 40.0, ("I1", "2025-04"): 2.0})
    q = lake.sql("SELECT reason FROM quarantine")["reason"]
    assert q.str.startswith("conflicting duplicate").sum() == 5           # every row of both keys
    assert acc["n_conflicts"].sum() == 2                                   # the two keys
    assert lake.sql("SELECT span FROM consumption WHERE meter_id = 'C1'")["span"].tolist() == [2]


def test_invalid_values_are_left_out_by_both(tmp_path):
    # NaN and a negative interval value: 1 + 5 = 6; a negative register reading: 100 → 130 spans it
    r = rows(("I1", "2025-04-02 10:00", 1.0), ("I1", "2025-04-02 10:15", NAN), ("I1", "2025-04-02 10:30", -2.0),
             ("I1", "2025-04-02 10:45", 5.0),
             ("C1", "2025-04-02 10:00", 100.0), ("C1", "2025-04-02 10:15", -1.0), ("C1", "2025-04-02 10:30", 130.0))
    lake, a, b, acc = both(tmp_path, [meter("I1"), meter("C1", "cumulative")], r)
    expect(a, b, {("C1", "2025-04"): 30.0, ("I1", "2025-04"): 6.0})
    assert len(lake.sql("SELECT * FROM quarantine")) == 3 and acc["n_invalid"].sum() == 3


def test_a_replacement_meter_starts_its_own_register(tmp_path):
    # G1 500 → 510 → 520 until 10:00 (20); G2 replaces it from 10:15 at 3.0 → 4 → 6 (3): nothing
    # is invented between 520 and 3
    r = pd.concat([series("G1", "2025-06-12 09:30", [500.0, 510.0, 520.0]),
                   series("G2", "2025-06-12 10:15", [3.0, 4.0, 6.0])], ignore_index=True)
    gas = {"unit": "kWh", "item": "natural_gas", "source": "combustion"}
    lake, a, b, acc = both(tmp_path, [meter("G1", "cumulative", rollover=9_999_999.0, **gas),
                                      meter("G2", "cumulative", rollover=9_999_999.0, replaces="G1", **gas)], r)
    expect(a, b, {("G1", "2025-06"): 20.0, ("G2", "2025-06"): 3.0})
    assert acc["n_resets"].sum() == 0 and acc["n_rollovers"].sum() == 0
    flags = lake.sql("SELECT quality_flag FROM readings WHERE meter_id = 'G2' ORDER BY ts")["quality_flag"]
    assert flags.iloc[0] == "replacement_start"


def test_a_gap_across_the_month_end_stays_on_the_earlier_reading(tmp_path):
    # 31 Jan 23:00 = 100, nothing until 1 Feb 01:00 = 130, then 135: the 30 across the gap is
    # January's (interval start 23:00, 8 intervals, not spread); February has 5
    r = rows(("C1", "2025-01-31 23:00", 100.0), ("C1", "2025-02-01 01:00", 130.0), ("C1", "2025-02-01 01:15", 135.0))
    lake, a, b, _ = both(tmp_path, [meter("C1", "cumulative")], r)
    expect(a, b, {("C1", "2025-01"): 30.0, ("C1", "2025-02"): 5.0})
    c = lake.sql("SELECT span, quality_flag FROM consumption ORDER BY ts")
    assert c["span"].tolist() == [8, 1] and c["quality_flag"].iloc[0] == "gap_spanning"


def test_the_closing_reading_of_a_period_is_found_past_a_gap_and_a_conflict(tmp_path):
    # January only (end = 1 Feb).  C1: 22:00 = 100, 22:15 = 110, then nothing until 1 Feb 02:00,
    # whose two rows conflict (150, 151), then 02:15 = 155.  The difference that starts at 22:15
    # is closed by 155: January = 10 + 45 = 55 — the lake's January too
    r = rows(("C1", "2025-01-31 22:00", 100.0), ("C1", "2025-01-31 22:15", 110.0),
             ("C1", "2025-02-01 02:00", 150.0), ("C1", "2025-02-01 02:00", 151.0),
             ("C1", "2025-02-01 02:15", 155.0), ("C1", "2025-02-01 02:30", 156.0))
    _, a, b, acc = both(tmp_path, [meter("C1", "cumulative")], r, start="2025-01-01", end="2025-02-01")
    assert a.loc[("C1", "2025-01")] == b.loc[("C1", "2025-01")] == 55.0
    assert acc["period"].tolist() == ["2025-01"] and acc["n_conflicts"].tolist() == [0]   # Feb's conflict is not January's
    # and the whole span: February has 156 − 155 = 1
    whole = accounting_monthly(meter_consumption(r, pd.DataFrame([meter("C1", "cumulative")])))
    expect(a, whole, {("C1", "2025-01"): 55.0, ("C1", "2025-02"): 1.0})


@pytest.mark.parametrize("keys", [256, 1])
def test_the_closing_reading_of_a_period_is_found_past_a_register_fall(tmp_path, monkeypatch, keys):
    # January only.  C1: 22:00 = 100, 22:15 = 110; 1 Feb 00:00 = 95 and 00:15 = 105 fall below
    # 110 (left out); 00:30 = 130 closes the difference from 22:15: January = 10 + 20 = 30, the
    # lake's January too — also when the candidates after the end are read one key at a time
    import workbench.inventory.readings as readings_mod

    monkeypatch.setattr(readings_mod, "_CLOSING_KEYS", keys)
    r = rows(("C1", "2025-01-31 22:00", 100.0), ("C1", "2025-01-31 22:15", 110.0),
             ("C1", "2025-02-01 00:00", 95.0), ("C1", "2025-02-01 00:15", 105.0), ("C1", "2025-02-01 00:30", 130.0))
    _, a, b, acc = both(tmp_path, [meter("C1", "cumulative")], r, start="2025-01-01", end="2025-02-01")
    assert a.loc[("C1", "2025-01")] == b.loc[("C1", "2025-01")] == 30.0
    assert acc["n_register_falls"].tolist() == [0]          # February's falls are not January's


def test_a_late_register_reading_in_the_lake(tmp_path):
    # batch 1: 31 Jan 23:00 = 100, 1 Feb 01:00 = 130, 01:15 = 131; batch 2 (late): 1 Feb 00:30 = 120.
    # The lake keeps the late reading flagged `late` without consumption: January 30, February 1.
    # On the lake's readings table the accounting skips `late` readings and agrees; on the raw
    # readings (no arrival order in them) it splits the span at 00:30: January 20, February 11
    # — the only way the two paths can differ, documented in workbench.core.registers
    m = [meter("C1", "cumulative")]
    first = rows(("C1", "2025-01-31 23:00", 100.0), ("C1", "2025-02-01 01:00", 130.0), ("C1", "2025-02-01 01:15", 131.0))
    late = rows(("C1", "2025-02-01 00:30", 120.0))
    lake, a, b, _ = both(tmp_path, m, first, late)
    stored = lake.sql("SELECT meter_id, ts, quantity, value, quality_flag FROM readings")
    assert stored["quality_flag"].str.contains("late").sum() == 1
    on_lake = accounting_monthly(meter_consumption(stored, pd.DataFrame(m)))
    expect(a, on_lake, {("C1", "2025-01"): 30.0, ("C1", "2025-02"): 1.0})
    expect(b, b, {("C1", "2025-01"): 20.0, ("C1", "2025-02"): 11.0})


def test_unsorted_input_gives_the_sorted_result(tmp_path):
    rng = np.random.default_rng(11)
    r = pd.concat([series("I1", "2025-03-31 20:00", rng.uniform(1, 2, 40)),
                   series("C1", "2025-03-31 20:00", np.cumsum(rng.uniform(1, 2, 40)))], ignore_index=True)
    m = pd.DataFrame([meter("I1"), meter("C1", "cumulative")])
    ordered = accounting_monthly(meter_consumption(r, m))
    for shuffled in (r.sample(frac=1, random_state=3), r.sort_values(["ts", "meter_id"])):
        pd.testing.assert_series_equal(accounting_monthly(meter_consumption(shuffled.reset_index(drop=True), m)),
                                       ordered, rtol=1e-12)
    _, a, _, _ = both(tmp_path, m.to_dict("records"), r.sample(frac=1, random_state=5))
    pd.testing.assert_series_equal(a.rename("x"), ordered.rename("x"), rtol=1e-12)


def test_blocks_of_the_stream_carry_registers_and_repeats_across_their_boundaries(monkeypatch):
    # tiny blocks: every register difference and every repeat crosses a block boundary somewhere
    import workbench.inventory.readings as readings_mod

    r = rows(("C1", "2025-03-01 00:00", 10.0), ("C1", "2025-03-01 00:15", 12.0), ("C1", "2025-03-01 00:15", 12.0),
             ("C1", "2025-03-01 00:30", 15.0), ("C1", "2025-03-01 00:30", 16.0), ("C1", "2025-03-01 00:45", 20.0),
             ("I1", "2025-03-01 00:00", 1.0), ("I1", "2025-03-01 00:00", 1.0), ("I1", "2025-03-01 00:15", 2.0))
    m = pd.DataFrame([meter("C1", "cumulative"), meter("I1")])
    whole = meter_consumption(r, m)
    for size in (1, 2, 3):
        monkeypatch.setattr(readings_mod, "BLOCK_ROWS", size)
        small = meter_consumption(r, m)
        pd.testing.assert_frame_equal(small, whole)
    # C1: 12 − 10 = 2, then 00:30 conflicts (15, 16): 20 − 12 = 8 across it → 10; I1: 1 + 2 = 3
    assert whole.set_index("meter_id")["consumption"].to_dict() == {"C1": 10.0, "I1": 3.0}


def test_the_register_rules_by_hand():
    # 99 990 → 5, capacity 99 999: a rollover, 5 + 99 999 − 99 990 = 14; 1 025 → 3: a reset (3 ≤ 10 %
    # of 1 025), 3; 10 → 12: 2; 50 → 4 without a capacity: a reset, 4; 50 → 40 (40 > 5 = 10 % of 50)
    # and 99 990 → 50 000 (above 10 % of the capacity, 9 999.9): register falls — no consumption
    used, roll, reset = registers.register_step(np.array([99_990.0, 1025.0, 10.0, 50.0, 50.0, 99_990.0]),
                                                np.array([5.0, 3.0, 12.0, 4.0, 40.0, 50_000.0]),
                                                np.array([99_999.0, 99_999.0, NAN, 0.0, 0.0, 99_999.0]))
    assert used.tolist()[:4] == [14.0, 3.0, 2.0, 4.0] and np.isnan(used[4:]).all()
    assert roll.tolist() == [True, False, False, False, False, False]
    assert reset.tolist() == [False, True, False, True, False, False]
    t = np.array([0, 900, 900, 900, 1800]) * 1_000_000
    v = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
    runs = registers.repeated_keys(np.ones(4, bool), np.diff(t), v)
    assert runs.rows.tolist() == [1, 2, 3] and runs.conflict.tolist() == [True]
    assert runs.excluded().tolist() == [1, 2, 3]
    ts = pd.to_datetime(["2024-12-31 23:45", "2025-01-01 00:00", "1969-12-31 23:00"]).to_numpy().astype(
        "datetime64[us]").view(np.int64)
    assert registers.month_number(ts).tolist() == [2024 * 12 + 11 - 1970 * 12, 2025 * 12 - 1970 * 12, -1]


# --------------------------------------------------------------------------- the demo plant
@pytest.fixture(scope="module")
def demo_paths(demo_data, tmp_path_factory):
    """The demo's readings through the lake's ordinary ingest (one batch, as ``load_demo`` does)
    and through ``meter_consumption``."""
    meters = read_meters(demo_data / "meters.csv")
    lake = Lake(tmp_path_factory.mktemp("one-consumption") / "lake")
    lake.register_meters(meters)
    report = ingest(lake, parquet.read(demo_data / "readings.parquet", meters=meters, source="demo-meters"),
                    sender="test")
    acc = meter_consumption(demo_data / "readings.parquet", meters)
    labels = pd.read_csv(demo_data / "anomalies.csv")
    return {"lake": lake, "acc": acc, "meters": meters, "labels": labels, "report": report}


def _agree(a: pd.Series, b: pd.Series) -> pd.DataFrame:
    j = pd.concat([a.rename("lake"), b.rename("accounting")], axis=1)
    assert j.notna().all().all(), f"meter-months in one path only:\n{j[j.isna().any(axis=1)].head()}"
    rel = (j["lake"] - j["accounting"]).abs() / j[["lake", "accounting"]].abs().max(axis=1).clip(lower=1e-300)
    bad = j[rel > RTOL]
    assert bad.empty, f"{len(bad)} meter-months differ by more than {RTOL:g}:\n{bad.head(10)}"
    return j


def test_demo_plant_lake_and_accounting_agree_in_every_meter_month(demo_paths):
    labels, acc = demo_paths["labels"], demo_paths["acc"]
    # the planted anomalies are all there to be agreed on
    assert {"duplicate", "duplicate_conflict", "counter_reset", "rollover", "meter_replacement", "gap",
            "spike"} <= set(labels["kind"])
    j = _agree(lake_monthly(demo_paths["lake"]), accounting_monthly(acc))
    assert len(j) == (acc["n_intervals"] > 0).sum() and len(j) > 100
    metered = set(j.index.get_level_values("meter_id"))
    assert set(labels["meter_id"]) <= metered


def test_demo_plant_conflicts_resets_and_rollovers_are_counted_alike(demo_paths):
    lake, acc, labels = demo_paths["lake"], demo_paths["acc"], demo_paths["labels"]
    q = lake.sql("SELECT payload, reason FROM quarantine")
    conflict = q[q["reason"].str.startswith("conflicting duplicate")]
    keys = {(p["meter_id"], p["ts"]) for p in conflict["payload"].map(pd.io.json.ujson_loads)}
    planted = labels[labels["kind"] == "duplicate_conflict"]
    assert len(keys) == planted["n_readings"].sum() == acc["n_conflicts"].sum()
    assert set(acc.loc[acc["n_conflicts"] > 0, "meter_id"]) == set(planted["meter_id"])
    flags = lake.sql("""SELECT meter_id, strftime(ts, '%Y-%m') AS period,
                               count(*) FILTER (WHERE quality_flag LIKE '%reset%') AS n_resets,
                               count(*) FILTER (WHERE quality_flag LIKE '%rollover%') AS n_rollovers
                        FROM consumption GROUP BY ALL""").set_index(["meter_id", "period"])
    mine = acc.set_index(["meter_id", "period"])[["n_resets", "n_rollovers"]]
    both_ = flags.join(mine.add_suffix("_acc"), how="outer").fillna(0)
    assert (both_["n_resets"] == both_["n_resets_acc"]).all() and (both_["n_rollovers"] == both_["n_rollovers_acc"]).all()
    assert both_["n_resets"].sum() == (labels["kind"] == "counter_reset").sum()
    assert both_["n_rollovers"].sum() == (labels["kind"] == "rollover").sum()


def test_demo_plant_accounting_on_the_lakes_own_readings_table(demo_paths):
    # the lake's curated readings (with quantity and quality_flag columns, conflicts already
    # quarantined) give the lake's consumption too
    lake, meters = demo_paths["lake"], demo_paths["meters"]
    stored = lake.sql("SELECT meter_id, ts, quantity, value, quality_flag FROM readings")
    on_lake = meter_consumption(stored, meters)
    _agree(lake_monthly(lake), accounting_monthly(on_lake))
    assert on_lake["n_conflicts"].sum() == 0


# --------------------------------------------------------------------------- random readings
def random_readings(seed: int) -> tuple[pd.DataFrame, list[dict]]:
    """Three interval and three cumulative meters over a month boundary with every hazard mixed
    in: gaps, equal and conflicting repeats, invalid values, resets and rollovers, rows shuffled."""
    rng = np.random.default_rng(seed)
    ms, parts = [], []
    for k in range(6):
        cum = k >= 3
        cap = [NAN, 1_000.0, 0.0][k % 3] if cum else NAN
        ms.append(meter(f"M{k}", "cumulative" if cum else "interval", rollover=cap))
        n = 400
        ts = pd.date_range("2025-03-30 00:00", periods=n, freq="15min")
        if cum:
            v = 900.0 + np.cumsum(rng.uniform(0, 3, n))
            if cap == 1_000.0:
                v = np.mod(v, cap)                                   # rolls over at 1 000
            v[rng.integers(50, n, 2)] = rng.uniform(0, 5, 2)         # resets
        else:
            v = rng.uniform(0, 5, n)
        df = pd.DataFrame({"meter_id": f"M{k}", "ts": ts, "value": v})
        df = df.drop(index=rng.choice(n, 40, replace=False))         # gaps
        rep = df.sample(12, random_state=seed + k)
        conflict = df.sample(6, random_state=seed + 100 + k)
        conflict = conflict.assign(value=conflict["value"] + 0.5)
        bad = df.sample(4, random_state=seed + 200 + k)
        bad = bad.assign(value=[NAN, -1.0, np.inf, NAN])
        parts.append(pd.concat([df, rep, conflict, bad]))
    r = pd.concat(parts, ignore_index=True).sample(frac=1, random_state=seed).reset_index(drop=True)
    return r, ms


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_readings_agree_in_every_meter_month(tmp_path, seed, monkeypatch):
    import workbench.inventory.readings as readings_mod

    r, ms = random_readings(seed)
    lake, a, b, acc = both(tmp_path, ms, r)
    _agree(a, b)
    assert acc["n_conflicts"].sum() > 0 and acc["n_resets"].sum() > 0 and acc["n_rollovers"].sum() > 0
    # the same in small blocks of the stream, sorted input, and on the lake's own readings table
    monkeypatch.setattr(readings_mod, "BLOCK_ROWS", 97)
    _agree(a, accounting_monthly(meter_consumption(r.sort_values(["meter_id", "ts"], kind="stable"),
                                                   pd.DataFrame(ms))))
    stored = lake.sql("SELECT meter_id, ts, quantity, value, quality_flag FROM readings")
    _agree(a, accounting_monthly(meter_consumption(stored, pd.DataFrame(ms))))
    # the lake fed in two batches split in time (the register continues from the stored reading)
    cut = pd.Timestamp("2025-03-31 12:07")
    _, a2, _, _ = both(tmp_path / "two", ms, r[r["ts"] < cut], r[r["ts"] >= cut])
    _agree(a2, b)
    # one month on its own: March's interval starts, closed by April's first kept readings
    march = meter_consumption(r, pd.DataFrame(ms), start="2025-03-01", end="2025-04-01")
    _agree(a[a.index.get_level_values("period") == "2025-03"], accounting_monthly(march))
