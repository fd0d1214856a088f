"""Forecasting (issue 15 point 4): metrics and the seasonal-naive model by hand, every built-in
model behind one interface, rolling-origin backtests with interval coverage, and the year's
emissions against an allowance."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.models import forecast as F
from workbench.models import registry as R

Z90 = 1.6448536269514722


def test_metrics_by_hand():
    y, yhat = [1, 2, 3, 4], [2, 2, 2, 2]
    # |e|/|y| = 1, 0, 1/3, 1/2 → 100 · 1.8333 / 4
    assert F.mape(y, yhat) == pytest.approx(100 * (1 + 0 + 1 / 3 + 1 / 2) / 4)
    # 2|e|/(|y|+|ŷ|) = 2/3, 0, 2/5, 4/6
    assert F.smape(y, yhat) == pytest.approx(100 * (2 / 3 + 0 + 2 / 5 + 4 / 6) / 4)
    # training [1, 3, 2, 6], m = 1: |Δ| = 2, 1, 4 → scale 7/3; mean |e| = 1 → MASE 3/7
    assert F.mase(y, yhat, [1, 3, 2, 6], 1) == pytest.approx(3 / 7)
    assert F.coverage([1, 2, 3], [0, 2.5, 2], [1, 3, 4]) == pytest.approx(2 / 3)
    assert F.smape([0], [0]) == 0.0
    with pytest.raises(R.ModelError):
        F.mape([0, 1], [1, 1])


def _weeks(values, weeks, bump_last=0.0, start="2025-01-06"):
    v = np.tile(np.asarray(values, float), weeks)
    v[-len(values):] += bump_last
    return pd.Series(v, index=pd.date_range(start, periods=len(v), freq="D"))


def test_seasonal_naive_by_hand():
    # three weeks of 10…70, the third 7 higher: seasonal differences 0 (×7) and 7 (×7) → σ̂² = 24.5
    y = _weeks([10, 20, 30, 40, 50, 60, 70], 3, bump_last=7)
    f = R.make("seasonal_naive").fit(y).predict(9)
    assert f["mean"].tolist() == [17, 27, 37, 47, 57, 67, 77, 17, 27]
    assert f.index[0] == pd.Timestamp("2025-01-27")
    half = (f["upper"] - f["mean"]).to_numpy()
    assert half[:7] == pytest.approx([Z90 * 24.5 ** 0.5] * 7)         # k = 0
    assert half[7:] == pytest.approx([Z90 * 7.0] * 2)                 # k = 1: σ̂ √2 = √49 = 7


def _series(n=240, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    v = 100 + 10 * np.sin(2 * np.pi * t / 7) + 0.02 * t + rng.normal(0, 2, n)
    return pd.Series(v, index=pd.date_range("2024-01-01", periods=n, freq="D"))


@pytest.mark.parametrize("name", sorted(R.BUILTIN))
def test_every_builtin_fits_and_predicts_with_intervals(name):
    y = _series(120)
    m = R.make(name, seed=1).fit(y)
    f = m.predict(14, level=0.8)
    assert list(f.columns) == ["mean", "lower", "upper"] and len(f) == 14
    assert f.index[0] == y.index[-1] + pd.Timedelta("1D")
    assert (f["lower"] <= f["mean"] + 1e-9).all() and (f["mean"] <= f["upper"] + 1e-9).all()
    # a weekly pattern of ±10 around ~102: no forecast strays 30 from it
    assert np.abs(f["mean"].to_numpy() - 102).max() < 30
    paths = m.simulate(14, n=50, seed=3)
    assert paths.shape == (50, 14) and np.isfinite(paths).all()


def test_backtest_rolling_origin_against_the_baseline():
    y = _series(240)
    r = F.backtest(y, "linear", horizon=14, folds=3, level=0.9)
    folds = r["folds"]
    assert list(folds["origin"][folds["model"] == "linear"]) == [y.index[240 - 14 - 2 * 14 + 14 * k] for k in range(3)]
    assert set(folds["model"]) == {"linear", "seasonal_naive"}
    m, b = r["metrics"], r["baseline"]
    assert m["mase"] < b["mase"]                      # lags + calendar beat last week's values
    assert 0.7 <= m["coverage"] <= 1.0                # measured coverage of the nominal 90 %
    assert m["smape"] == pytest.approx(folds.loc[folds["model"] == "linear", "smape"].mean())
    with pytest.raises(R.ModelError):
        F.backtest(y.iloc[:30], "linear", horizon=14, folds=3)


def test_year_outlook_against_an_allowance_by_hand():
    # 10 t every day, no noise: seasonal naive has σ̂ = 0; 2025 observed to 24 Dec (358 days)
    idx = pd.date_range("2025-01-01", "2025-12-24", freq="D")
    y = pd.Series(10.0, index=idx)
    q = pd.Series(4.0, index=idx)                    # 4 t of product a day
    out = F.year_outlook(y, allowance_t=3649.0, output=q, efficiency_target=2.6)
    assert out["days_observed"] == 358 and out["days_forecast"] == 7
    assert out["observed_t"] == pytest.approx(3580.0) and out["forecast_t"] == pytest.approx(3650.0)
    assert out["p_exceed_allowance"] == 1.0                 # 3650 > 3649 on every path
    assert out["efficiency"] == pytest.approx(3650 / 1460)  # 2.5 t/t
    assert out["p_exceed_efficiency_target"] == 0.0
    assert F.year_outlook(y, allowance_t=3651.0)["p_exceed_allowance"] == 0.0


def test_year_outlook_probability_from_the_predictive_distribution():
    y = _series(300)
    y = y[y.index.year == 2024]
    a = F.year_outlook(y, allowance_t=None, model="linear", n=400, seed=2)
    mid = a["p50_t"]
    b = F.year_outlook(y, allowance_t=mid, model="linear", n=400, seed=2)
    assert 0.3 <= b["p_exceed_allowance"] <= 0.7            # the median of the paths: about even odds
    assert a["p05_t"] < mid < a["p95_t"]
    assert F.year_outlook(y, allowance_t=mid, model="linear", n=400, seed=2) == b   # seeded


def test_total_pit_and_the_calibration_curve_by_hand():
    paths = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])      # totals 2, 4, 6, 8
    assert F.total_pit(paths, 5.0) == 0.5 and F.total_pit(paths, 8.0) == 1.0 and F.total_pit(paths, 1.0) == 0.0
    c = F.calibration_curve([0.5, 0.1, 0.97, 0.7], levels=(0.5, 0.9))
    # |u − ½| = 0, 0.4, 0.47, 0.2: within 0.25 → 2 of 4; within 0.45 → 3 of 4
    assert c["coverage"].tolist() == [0.5, 0.75] and c["n"].iloc[0] == 4


def _seasonal_walk(seed: int, n: int = 200) -> pd.Series:
    """y_t = y_{t−7} + e_t, e ~ N(0, 1): the model the seasonal naive assumes."""
    rng = np.random.default_rng(seed)
    y = np.empty(n)
    y[:7] = 100 + 5 * np.sin(np.arange(7))
    for t in range(7, n):
        y[t] = y[t - 7] + rng.normal()
    return pd.Series(y, index=pd.date_range("2025-01-01", periods=n, freq="D"))


def test_the_totals_intervals_are_calibrated_when_the_model_is_right():
    # 60 series × 2 origins, 28-day totals: the simulated paths share their errors as the model does,
    # so the 90 % interval of the total covers ≈ 90 % (binomial sd ≈ 2.7 %); independent daily draws
    # with the same daily intervals would cover far less (their total's spread is too small)
    pits, naive_cover = [], []
    for s in range(60):
        y = _seasonal_walk(s)
        r = F.backtest(y, "seasonal_naive", horizon=28, folds=2, baseline=False, paths=400, seed=s)
        pits += r["folds"]["total_pit"].tolist()
        for k, origin in enumerate(r["folds"]["origin"]):
            i = y.index.get_loc(origin)
            m = F.SeasonalNaive(season=7, seed=s).fit(y.iloc[:i])
            indep = R.Forecaster.simulate(m, 28, 400, seed=s + k)            # the base class's independent draws
            naive_cover.append(abs(F.total_pit(indep, float(y.iloc[i:i + 28].sum())) - 0.5) <= 0.45)
    curve = F.calibration_curve(pits).set_index("level")["coverage"]
    assert 0.82 <= curve[0.9] <= 0.97 and 0.40 <= curve[0.5] <= 0.60, curve
    assert np.mean(naive_cover) < 0.75


def test_the_spread_scale_calibrates_the_outlook():
    # the right model's standardised total errors have mean square ≈ 1
    z = []
    for s in range(40):
        r = F.backtest(_seasonal_walk(s), "seasonal_naive", horizon=28, folds=2, baseline=False, paths=400, seed=s)
        z += r["folds"]["total_z"].tolist()
    assert 0.85 <= F.spread_scale(z, floor=None) <= 1.15
    assert F.spread_scale([3.0, -4.0]) == pytest.approx(np.sqrt(12.5))              # √((9 + 16) / 2)
    assert F.spread_scale([0.3, -0.4]) == 1.0                                         # never narrower …
    assert F.spread_scale([0.3, -0.4], floor=None) == pytest.approx(np.sqrt(0.125))  # … unless asked
    with pytest.raises(R.ModelError, match="no finite"):
        F.spread_scale([np.nan])
    # s = 2 doubles the spread of the year's total about its median; the median stays
    y = _seasonal_walk(7, n=300)
    one = F.year_outlook(y, model="seasonal_naive", n=2000, allowance_t=float(y.mean() * 365))
    two = F.year_outlook(y, model="seasonal_naive", n=2000, allowance_t=float(y.mean() * 365), spread_scale=2.0)
    assert two["p50_t"] == pytest.approx(one["p50_t"])
    assert two["p95_t"] - two["p05_t"] == pytest.approx(2 * (one["p95_t"] - one["p05_t"]), rel=1e-9)
    assert one["spread_scale"] == 1.0 and two["spread_scale"] == 2.0


def test_an_outlook_on_a_model_already_fitted_is_the_same():
    y = _seasonal_walk(3, n=300)
    fitted = R.make("ets", season=7, seed=0).fit(y)
    a = F.year_outlook(y, model="ets", n=500, allowance_t=float(y.mean() * 365))
    b = F.year_outlook(y, model="ets", n=500, allowance_t=float(y.mean() * 365), fitted=fitted)
    assert a == b
