"""Anomaly detection (issue 15 point 3): robust z, stuck runs, spike runs, twins and drift z and
scoring by hand; the sparse-operator STL against statsmodels' (the fast path against the previous
one); a standstill's repeated standby readings and a drift on synthetic units; the detectors on the
three demo plants' lakes (cement, steel, dyeing) scored against their planted labels with the
defaults; the same detections on a Dask cluster; detections become meter alarms that the
enterprise (and only it) sees."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from notebook_run import execute_notebook

from workbench.devices.alarms import (
    AlarmError,
    AlarmStore,
    meter_subject,
    raise_anomalies,
)
from workbench.lake.store import Lake
from workbench.models import anomalies as A


def test_robust_z_by_hand():
    # median 3, |x − 3| = 2 1 0 1 97 → MAD 1, σ̂ = 1.4826: z(100) = 97 / 1.4826 = 65.4256
    z = A.robust_z([1, 2, 3, 4, 100])
    assert z[4] == pytest.approx(97 / 1.4826, rel=1e-12)
    assert z[2] == 0.0
    assert z[0] == pytest.approx(-2 / 1.4826)
    # MAD 0 (more than half equal): mean absolute deviation × 1.2533: |dev| = 0 0 0 4 → 1 × 1.2533
    assert A.robust_z([5, 5, 5, 9])[3] == pytest.approx(4 / 1.2533)
    # per column (axis 0): each column on its own; the NaN ignored
    Z = A.robust_z(np.array([[1.0, 10], [2, 20], [3, np.nan], [4, 30], [100, 40]]), axis=0)
    assert Z[4, 0] == pytest.approx(97 / 1.4826)
    # column 2: 10 20 30 40 → median 25, |dev| 15 5 5 15 → MAD 10: z(40) = 15 / 14.826
    assert Z[4, 1] == pytest.approx(15 / 14.826) and np.isnan(Z[2, 1])


def test_stuck_runs_skip_zeros_and_short_runs():
    y = [1, 2, 2, 2, 2, 3, 0, 0, 0, 0, 0, 4, 4, 4, 5]
    assert A.stuck_runs(y, 4) == [(1, 5)]          # four 2s; five zeros are a stop; three 4s too short
    assert A.stuck_runs(y, 3) == [(1, 5), (11, 14)]


def test_stl_z_finds_a_planted_spike_without_echoes():
    rng = np.random.default_rng(1)
    n = 96 * 28
    y = 100 + 30 * np.sin(2 * np.pi * np.arange(n) / 96) + rng.normal(0, 1, n)
    y[96 * 10 + 40] *= 20
    z = A.stl_residual_z(y, 96, clean_above=25)
    hot = np.flatnonzero(np.abs(z) >= 25)
    assert hot.tolist() == [96 * 10 + 40]            # no echo a day before or after


def test_score_by_hand():
    t = pd.Timestamp
    labels = pd.DataFrame([
        ("M1", "spike", t("2025-01-05 10:00"), t("2025-01-05 10:00")),
        ("M2", "stuck", t("2025-02-01 00:00"), t("2025-02-01 23:45")),
        ("M3", "gap", t("2025-03-01 00:00"), t("2025-03-01 05:00")),
    ], columns=["meter_id", "kind", "ts_start", "ts_end"])
    det = pd.DataFrame([
        ("M1", t("2025-01-05 10:00"), t("2025-01-05 10:00"), "spike"),     # true
        ("M1", t("2025-06-01 10:00"), t("2025-06-01 10:00"), "spike"),     # false
        ("M3", t("2025-03-01 02:00"), t("2025-03-01 02:00"), "spike"),     # on a gap: true, finds no value label
    ], columns=["meter_id", "ts_start", "ts_end", "kind"])
    s = A.score(det, labels)
    assert s["per_kind"]["spike"] == {"labels": 1, "found": 1, "recall": 1.0, "detections": 3, "true": 2,
                                      "precision": 2 / 3}
    assert s["per_kind"]["stuck"]["recall"] == 0.0
    assert s["recall"] == 0.5 and s["precision"] == 2 / 3 and s["n_labels"] == 2


@pytest.mark.parametrize(("n", "period", "fast"), [(96 * 21 + 17, 96, True), (96 * 15, 96, False),
                                                    (365, 7, False), (60, 12, True), (16, 7, False)])
def test_the_sparse_stl_is_statsmodels_stl(n, period, fast):
    """The fast path: STL's steps as sparse matrices applied to many series at once give statsmodels'
    trend and seasonal to rounding (n not a multiple of the period, jumps on and off, short series)."""
    from statsmodels.tsa.seasonal import STL

    rng = np.random.default_rng(n)
    t = np.arange(n)
    Y = np.column_stack([50 + 20 * np.sin(2 * np.pi * t / period + k) + 0.02 * t + rng.normal(0, 2, n)
                         for k in range(3)])
    T, S = A.stl_decompose(Y, period, fast=fast)
    jumps = {"seasonal_jump": 1, "trend_jump": period // 2, "low_pass_jump": period // 5} if fast and period >= 24 \
        else {}
    for k in range(3):
        ref = STL(Y[:, k], period=period, **jumps).fit()
        assert np.abs(ref.trend - T[:, k]).max() < 1e-9
        assert np.abs(ref.seasonal - S[:, k]).max() < 1e-9
    t1, s1 = A.stl_decompose(Y[:, 1], period, fast=fast)          # one series alone: the same
    assert np.array_equal(t1, T[:, 1]) and np.array_equal(s1, S[:, 1])


def test_fast_z_equals_the_per_meter_statsmodels_z_with_gaps_and_cleaning():
    rng = np.random.default_rng(5)
    n = 96 * 20
    t = np.arange(n)
    Y = np.column_stack([100 + 30 * np.sin(2 * np.pi * t / 96 + k) + rng.normal(0, 1, n) for k in range(3)])
    Y[300, 0] *= 25                          # an outlier: cleaned and fitted again
    Y[700:760, 1] = np.nan                   # a gap: interpolated, scored NaN
    Y[:, 2] = np.nan                         # nothing at all: NaN
    fast = A.stl_residual_z(Y, 96, clean_above=25)
    ref = A.stl_residual_z(Y, 96, clean_above=25, engine="statsmodels")
    assert np.array_equal(np.isnan(fast), np.isnan(ref)) and np.isnan(fast[:, 2]).all()
    assert np.isnan(fast[700:760, 1]).all() and np.nanmax(np.abs(fast - ref)) < 1e-8
    assert np.flatnonzero(np.abs(np.nan_to_num(fast[:, 0])) >= 25).tolist() == [300]


def test_spike_runs_by_hand():
    """A spike is a sample with |z| ≥ z_spike (25) whose run of |z| ≥ z_common (5) lasts at most
    spike_max (2) samples; a stop whose z hovers around 25 is one long run, not a string of spikes."""
    z = np.zeros((200, 1))
    z[50] = 40                                   # alone: a spike
    z[100:124, 0] = 25 + np.where(np.arange(24) % 2, 1.0, -1.0)   # 24 samples at 24/26: a stop
    z[150:152, 0] = [-30, 6]                     # run of 2 (one strong): a spike of score 30
    z[170:173, 0] = [6, 30, 6]                   # run of 3: too long
    c, first, last, length, score = A._spike_runs(z, A.DEFAULTS)
    assert first.tolist() == [50, 150] and last.tolist() == [50, 150]
    assert length.tolist() == [1, 2] and score.tolist() == [40.0, 30.0] and c.tolist() == [0, 0]


def _unit(days=10, seed=0):
    """Four kWh meters of one unit over ``days`` days at 15 min: a daily shape × level + 3 % noise."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2025-03-01", periods=96 * days, freq="15min")
    shape = 1 + 0.3 * np.sin(2 * np.pi * np.arange(len(idx)) / 96)
    wide = pd.DataFrame({f"M{k}": np.round((20 + 10 * k) * shape * (1 + rng.normal(0, 0.03, len(idx))), 2)
                         for k in range(4)}, index=idx)
    return wide, pd.Series("kWh", index=wide.columns)


def test_a_standstill_is_not_a_stuck_meter_but_a_meter_alone_is():
    wide, units = _unit()
    # days 3–4 the unit stands still: every meter reads a standby 0.05–0.07 kWh; M0 repeats 0.06 for 60
    stop = slice(96 * 3, 96 * 5)
    standby = np.random.default_rng(1).choice([0.05, 0.06, 0.07], size=(96 * 2, 4))
    wide.iloc[stop] = standby
    wide.iloc[96 * 3 + 10:96 * 3 + 70, 0] = 0.06
    wide.iloc[[96 * 3 + 9, 96 * 3 + 70], 0] = [0.05, 0.07]       # the run is exactly those 60
    # day 7: M2 repeats 0.05 for a day while the others run
    wide.iloc[96 * 7:96 * 8, 2] = 0.05
    det, _ = A.detect_intervals(wide, units=units)
    stuck = det[det["kind"] == "stuck"]
    assert stuck["meter_id"].tolist() == ["M2"]
    assert stuck["ts_start"].iloc[0] == wide.index[96 * 7] and stuck["n"].iloc[0] == 96
    # alone (no peers to tell a standstill): the standby run is stuck too
    alone, _ = A.detect_intervals(wide[["M0"]], units=units)
    assert (alone["kind"] == "stuck").sum() == 1 and alone["n"].iloc[0] == 60


def _daily_unit():
    """Daily kWh of one unit over 365 days: A and B split one process (60/40); A's log ratio to B
    alternates ±0.002 (B exact), and A reads 8 % high on days 100–129; C and D split another
    process with a steady ratio; E follows a third process alone."""
    rng = np.random.default_rng(11)
    days = pd.date_range("2025-01-01", periods=365, freq="D")
    week = np.where(days.day_of_week >= 5, 0.7, 1.0)
    p1 = 1000 * week * np.exp(np.cumsum(rng.normal(0, 0.03, 365)))
    p2 = 800 * week * np.exp(np.cumsum(rng.normal(0, 0.03, 365)))
    p3 = 500 * np.exp(np.cumsum(rng.normal(0, 0.05, 365)))
    sign = np.where(np.arange(365) % 2, -1.0, 1.0)
    a = 0.6 * p1 * (1 + 0.002 * sign)
    a[100:130] *= 1.08
    daily = pd.DataFrame({"A": a, "B": 0.4 * p1, "C": 0.5 * p2 * 1.001 ** sign, "D": 0.5 * p2, "E": p3}, index=days)
    return daily, pd.Series("kWh", index=daily.columns)


def test_twins_and_drift_z_by_hand():
    daily, units = _daily_unit()
    pairs = A.twins(daily, units).set_index("meter_id")
    assert pairs["twin"].drop("E").to_dict() == {"A": "B", "B": "A", "C": "D", "D": "C"}
    assert pd.isna(pairs.loc["E", "twin"]) and pairs.loc["E", "sigma"] > 0.01      # E has no twin
    # Δ log(A/B) = ±(log 1.002 − log 0.998) = ±0.0040000 (and the drift's two edges):
    # MAD 0.004 → σ = 1.4826 · 0.004 / √2 = 0.0041935
    assert pairs.loc["A", "sigma"] == pytest.approx(1.4826 * 0.004 / np.sqrt(2), rel=1e-3)
    z = A.drift_z(daily, units, pairs=pairs.reset_index())
    # day 115: the 14-day median of the ratio is log 1.08 above the year's (whose median falls on a
    # +0.002 day, the window's between a +0.002 and a −0.002 day: −0.002 net);
    # SE = 1.2533 · σ / √14 = 0.0014047 → z = (0.076961 − 0.002) / 0.0014047 = 53.4
    se = 1.2533 * 1.4826 * 0.004 / np.sqrt(2) / np.sqrt(14)
    assert z["A"].iloc[115] == pytest.approx((np.log(1.08) - 0.002) / se, abs=0.5)
    assert z["B"].iloc[115] == pytest.approx(-z["A"].iloc[115], abs=0.5)      # the pair moved apart …
    assert (z["E"] == 0).all() and z[["C", "D"]].abs().max().max() < 3
    det = A.detect_drifts(daily, units, z=z, pairs=pairs.reset_index())
    assert det["meter_id"].tolist() == ["A"]                                 # … A moved against the rest
    assert det["n"].iloc[0] >= 28 and det["method"].iloc[0] == "twin-ratio"
    assert abs(det["ts_start"].iloc[0] - daily.index[100]) <= pd.Timedelta("2D")
    assert abs(det["ts_end"].iloc[0].normalize() - daily.index[129]) <= pd.Timedelta("2D")
    # the same month 8 % high on B instead is named B
    daily2 = daily.copy()
    daily2.iloc[100:130, 0] /= 1.08
    daily2.iloc[100:130, 1] *= 1.08
    assert A.detect_drifts(daily2, units)["meter_id"].tolist() == ["B"]


def test_the_forest_keeps_a_meters_long_run_and_clears_plant_days():
    rng = np.random.default_rng(2)
    days = pd.date_range("2025-01-01", periods=100, freq="D")
    rows = pd.DataFrame({"meter_id": np.repeat([f"M{k:02d}" for k in range(30)], 100),
                         "day": np.tile(days, 30), **{f: rng.normal(0, 1, 3000) for f in A.FEATURES}})
    m5 = (rows["meter_id"] == "M05") & rows["day"].between(days[40], days[59])
    rows.loc[m5, "resid_z"] = 50.0                           # 20 days of one meter: a drift
    rows.loc[rows["day"] == days[80], "resid_z"] = 50.0      # one day of every meter: the plant's
    d = dataclasses.replace(A.DEFAULTS, contamination=0.03)  # 90 rows isolated: the 50 extreme ones among them
    det = A.detect_daily(rows, defaults=d)
    assert det[["meter_id", "kind", "method"]].values.tolist() == [["M05", "drift", "isolation-forest"]]
    assert det["ts_start"].iloc[0] == days[40] and det["n"].iloc[0] == 20


@pytest.fixture(scope="module")
def dask_client():
    from workbench.models import parallel as P

    with P.client(n_workers=2, processes=True) as c:
        yield c


def test_detection_on_a_dask_cluster_equals_the_serial_run(plants, dask_client):
    lake, det, _, _ = plants["demo-steel"]
    wide, units = A.interval_matrix(lake)
    on_cluster = A.detect_frame(wide, units, client=dask_client)
    pd.testing.assert_frame_equal(on_cluster, det)


@pytest.fixture(scope="module")
def plants(demo_data, tmp_path_factory):
    """The three demo plants loaded into one lake root (each its enterprise's lake) and detected with
    the defaults: {enterprise: (lake, detections, labels, folder)}."""
    from workbench.demo.load import demo_enterprise_dirs, load_demo

    root = tmp_path_factory.mktemp("anomalies") / "lake"
    out = {}
    for folder in demo_enterprise_dirs(demo_data):
        ent = json.loads((folder / "enterprise.json").read_text(encoding="utf-8"))["enterprise_id"]
        load_demo(folder, root, enterprise=ent)
        lake = Lake(root, enterprise=ent)
        lake.root_dir = root
        out[ent] = (lake, A.detect(lake), A.read_labels(folder / "anomalies.csv"), folder)
    return out


@pytest.fixture(scope="module")
def cement(plants):
    lake, det, labels, _ = plants["demo-cement"]
    return lake, det, labels


@pytest.mark.parametrize("enterprise", ["demo-cement", "demo-steel", "demo-textile"])
def test_demo_plant_scored_with_the_defaults(plants, enterprise):
    _, det, labels, _ = plants[enterprise]
    s = A.score(det, labels)
    # the bar: precision and recall ≥ 0.8 with the defaults, overall and for each kind
    assert s["precision"] >= 0.8 and s["recall"] >= 0.8, s
    for kind in A.VALUE_KINDS:
        k = s["per_kind"][kind]
        assert k["labels"] >= 1 and k["recall"] >= 0.8 and k["precision"] >= 0.8, (kind, k)
    # the detectors do not read the lake's quality flags: the spike's time is the label's
    spikes = labels[labels["kind"] == "spike"]
    assert set(det.loc[det["kind"] == "spike", "ts_start"]) == set(spikes["ts_start"])
    # the planted month of drift (8 % high) is named on its meter, not on its twin
    drift = labels[labels["kind"] == "drift"].iloc[0]
    found = det[det["kind"] == "drift"]
    assert found["meter_id"].tolist() == [drift["meter_id"]]
    assert abs(found["ts_start"].iloc[0] - drift["ts_start"]) <= pd.Timedelta("7D")
    assert abs(found["ts_end"].iloc[0] - drift["ts_end"]) <= pd.Timedelta("7D")


def test_meters_whose_drift_cannot_be_checked_are_named(cement):
    # a meter with no twin (no peer of its unit whose daily ratio to it is steady) cannot be checked
    # for drift by the twins: the detections say which, so that no drift there is not read as none
    lake, det, _ = cement
    wide, units = A.interval_matrix(lake)
    pairs = A.twins(A.daily_matrix(wide), units)
    unchecked = sorted(pairs.loc[pairs["twin"].isna(), "meter_id"])
    assert det.attrs["drift_unchecked"] == unchecked and 0 < len(unchecked) < len(pairs)
    assert (pairs.set_index("meter_id").loc[unchecked, "sigma"].fillna(1.0) > A.DEFAULTS.twin_sigma).all()


def test_the_dyeing_plants_standstill_is_not_a_stuck_meter(plants):
    """Over the Spring Festival the dyeing plant stands still for ~20 days and its steam meters read
    their standby 0.05–0.07 GJ, with runs of > 48 identical readings (0.01 GJ resolution): not a
    fault, since the unit's other meters are idle too; the one stuck meter (M0020, 0.05 GJ for a
    day while its peers run) is."""
    lake, det, labels, _ = plants["demo-textile"]
    wide, units = A.interval_matrix(lake, start="2025-01-25", end="2025-02-05")
    runs = {m: A.stuck_runs(wide[m].to_numpy(float), A.DEFAULTS.stuck_run) for m in wide.columns}
    assert any(runs[m] for m in wide.columns if units[m] == "GJ")       # the long standby runs exist …
    stuck = det[det["kind"] == "stuck"]
    assert stuck["meter_id"].tolist() == ["M0020"]                      # … and are not alarms
    lab = labels[labels["kind"] == "stuck"].iloc[0]
    assert stuck["ts_start"].iloc[0] <= lab["ts_start"] and stuck["ts_end"].iloc[0] >= lab["ts_end"]


def test_filters_are_pushed_down(cement):
    lake, _, _ = cement
    wide, units = A.interval_matrix(lake, start="2025-05-01", end="2025-05-03", meters=["M0007", "M0012"])
    assert list(wide.columns) == ["M0007", "M0012"] and len(wide) == 2 * 96
    assert wide.index.min() == pd.Timestamp("2025-05-01") and set(units) == {"kWh"}
    with pytest.raises(A.AnomalyError):
        A.interval_matrix(lake, start="2030-01-01", end="2030-01-02")


def test_detections_become_alarms_of_the_enterprise_only(cement, tmp_path):
    lake, det, _ = cement
    store = AlarmStore(f"sqlite:///{tmp_path / 'alarms.db'}")
    raised = raise_anomalies(store, lake.enterprise, det)
    assert len(raised) == det["meter_id"].nunique()
    mine = store.alarms_of(lake.enterprise)
    assert {a.device_id for a in mine} == {meter_subject(lake.enterprise, m) for m in det["meter_id"]}
    a = next(a for a in mine if a.details["meter_id"] == "M0012")
    assert a.type == "ANOMALY" and a.severity == "MAJOR" and a.details["kinds"] == ["stuck"]
    assert store.alarms_of("someone-else") == []
    assert store.alarms_of(lake.enterprise[:-1]) == []         # a prefix of the id is another enterprise
    # raising again updates the same alarms
    assert len(raise_anomalies(store, lake.enterprise, det)) == len(raised)
    assert len(store.alarms_of(lake.enterprise)) == len(raised)
    with pytest.raises(AlarmError):
        meter_subject("a:b", "M1")
    store.dispose()


def test_cli_detect_scores_and_raises_alarms(cement, demo_data, tmp_path):
    from click.testing import CliRunner

    from workbench.cli.main import main

    lake, det, _ = cement
    db = f"sqlite:///{tmp_path / 'alarms.db'}"
    r = CliRunner().invoke(main, ["models", "detect", "--lake", str(lake.root_dir),
                                  "--enterprise", lake.enterprise, "--labels", str(demo_data / "anomalies.csv"),
                                  "--alarms-db", db, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["detections"] == len(det) and out["alarms"] == det["meter_id"].nunique()
    assert out["score"]["per_kind"]["spike"]["found"] == 3
    assert out["drift_unchecked"] == det.attrs["drift_unchecked"]
    assert len(AlarmStore(db).alarms_of(lake.enterprise)) == out["alarms"]
    bad = tmp_path / "labels.csv"
    bad.write_text("meter_id,kind,ts_start,ts_end\nM1,spike,yesterday,2025-01-01\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["models", "detect", "--lake", str(lake.root_dir), "--enterprise", lake.enterprise,
                                  "--labels", str(bad)])
    assert r.exit_code == 2 and "row 2, column ts_start" in r.output


NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _run(name, tmp_path, **params):
    import nbformat

    out = tmp_path / name
    execute_notebook(str(NOTEBOOKS / name), str(out), kernel_name="python3", cwd=str(tmp_path),
                        progress_bar=False, execution_timeout=300, parameters=params)
    nb = nbformat.read(out, as_version=4)
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_anomalies_notebook(cement, demo_data, tmp_path):
    lake, det, _ = cement
    db = f"sqlite:///{tmp_path / 'alarms.db'}"
    text = _run("anomalies.ipynb", tmp_path, lake_root=str(lake.root_dir), enterprise=lake.enterprise,
                labels=str(demo_data / "anomalies.csv"), alarms_db=db)
    assert "overall precision 1.00, recall 1.00" in text
    drift = re.search(r"M0021 against its twin M0022 .*\(([+-][0-9.]+)%; z = ([0-9]+)\)", text)
    assert drift and 7.5 <= float(drift.group(1)) <= 8.5 and int(drift.group(2)) >= A.DEFAULTS.z_drift   # 8 % planted
    assert f"{det['meter_id'].nunique()} ANOMALY alarm(s)" in text


def test_forecast_notebook(cement, tmp_path):
    lake, _, _ = cement
    text = _run("forecast.ipynb", tmp_path, lake_root=str(lake.root_dir), enterprise=lake.enterprise,
                cutoff="2025-09-30", models="seasonal_naive,linear", model="linear", folds=2, n_paths=200)
    assert "mee-avg:CN-ZJ:2023" in text                                       # the grid factor's id
    assert "purchased_electricity grid               逐日分配 / shaped by: M0001" in text   # the main meter
    # Jan–Sep: 273 days, and the daily series sums to the inventory's months (the same figure twice)
    m = re.search(r"273 天 / days to 2025-09-30: ([\d,.]+) tCO2e \(the inventory's months: ([\d,.]+) tCO2e\)", text)
    assert m and m.group(1) == m.group(2)
    assert "P(超出 / exceed)" in text and "carbon efficiency" in text


def test_add_a_model_notebook(cement, tmp_path):
    lake, _, _ = cement
    text = _run("add_a_model.ipynb", tmp_path, lake_root=str(lake.root_dir), enterprise=lake.enterprise, folds=2)
    assert "'theta'" in text and "identical: True" in text


def test_cli_models_list_and_backtest(cement, tmp_path):
    from click.testing import CliRunner

    from workbench.cli.main import main

    lake, _, _ = cement
    r = CliRunner().invoke(main, ["models", "list", "--json"])
    assert r.exit_code == 0 and {"ets", "prophet", "sarimax", "linear", "svr", "mlp"} <= set(json.loads(r.output))
    args = ["models", "backtest", "--lake", str(lake.root_dir), "--enterprise", lake.enterprise, "--meter", "M0002",
            "--meter", "M0007", "--model", "linear", "--horizon", "14", "--folds", "2", "--out", str(tmp_path / "m.csv"),
            "--json"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [x["series"] for x in rows] == ["M0002", "M0007"] and all(x["model"] == "linear" for x in rows)
    assert pd.read_csv(tmp_path / "m.csv")["baseline_mase"].notna().all()
    r = CliRunner().invoke(main, args[:10] + ["--model", "nope"])
    assert r.exit_code == 2 and "unknown model 'nope'" in r.output
