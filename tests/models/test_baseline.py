"""Statistical baselines (issue 15 point 2): ASHRAE Guideline 14 figures, degree-days, calendar and the
OLS fit checked against values worked by hand from the formulas (applications.md §3)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.models.baseline import (
    alpha_g14,
    calendar_features,
    cv_rmse,
    effective_n,
    fit_baseline,
    fractional_savings_uncertainty,
    lag1_autocorrelation,
    nmbe,
    savings,
)
from workbench.models.mechanism import ModelError
from workbench.models.weather import (
    degree_days,
    monthly_degree_days,
    synthetic_temperature,
)

Y6 = [10.0, 12.0, 14.0, 16.0, 18.0, 20.0]
YHAT6 = [11.0, 12.0, 13.0, 16.0, 19.0, 20.0]      # residuals −1, 0, 1, 0, −1, 0: SSE 3, Σ −1; ȳ = 15


def test_cv_rmse_and_nmbe_on_six_points():
    # p = 2: CV = 100 √(3/4) / 15 = 5.773503 %; NMBE = 100 × (−1) / (4 × 15) = −1.666667 %
    assert cv_rmse(Y6, YHAT6, p=2) == pytest.approx(100 * math.sqrt(0.75) / 15)
    assert cv_rmse(Y6, YHAT6, p=2) == pytest.approx(5.773503, abs=1e-6)
    assert nmbe(Y6, YHAT6, p=2) == pytest.approx(-1.666667, abs=1e-6)
    # p = 1: CV = 100 √(3/5) / 15 = 5.163978 %; NMBE = −100 / 75 = −1.333333 %
    assert cv_rmse(Y6, YHAT6) == pytest.approx(5.163978, abs=1e-6)
    assert nmbe(Y6, YHAT6) == pytest.approx(-1.333333, abs=1e-6)
    with pytest.raises(ModelError, match="more points"):
        cv_rmse([1.0, 2.0], [1.0, 2.0], p=2)


def test_g14_alpha_effective_n_and_fsu_by_hand():
    assert alpha_g14(12) == pytest.approx(-0.00022 * 144 + 0.03306 * 12 + 0.94054)     # 1.30558
    assert alpha_g14(12) == pytest.approx(1.30558)
    assert alpha_g14(8760, "hourly") == 1.26
    assert effective_n(24, 0.6) == pytest.approx(24 * 0.4 / 1.6)                       # 6.0
    assert effective_n(24, 0.3) == 24.0                                                 # below 0.5: unchanged
    # FSU = t α / (m ȳ F) √(MSE (1 + 2/n) m) with MSE 4, n 12, m 3, ȳ 100, F 0.1, t 2, α 1.3056:
    # 2.6112 / 30 × √(4 × 7/6 × 3) = 0.08704 × √14 = 0.325674
    got = fractional_savings_uncertainty(4.0, 12, 3, 100.0, 0.1, t=2.0, alpha=1.3056)
    assert got == pytest.approx(0.08704 * math.sqrt(14.0), rel=1e-9)
    assert got == pytest.approx(0.325674, abs=1e-6)
    assert fractional_savings_uncertainty(4.0, 12, 3, 100.0, 0.0, t=2.0, alpha=1.3) == math.inf


def test_lag1_autocorrelation_by_hand():
    # e = 1, 1, −1, −1 (mean 0): Σ e_i e_{i−1} = 1 − 1 + 1 = 1; Σ e² = 4 → 0.25
    assert lag1_autocorrelation([1.0, 1.0, -1.0, -1.0]) == pytest.approx(0.25)
    assert lag1_autocorrelation([1.0, -1.0, 1.0, -1.0]) == pytest.approx(-0.75)


def test_degree_days_by_hand():
    t = pd.Series([10.0, 18.0, 20.0, 30.0], index=pd.date_range("2025-01-30", periods=4, freq="D"))
    d = degree_days(t)                                   # bases 18 °C and 26 °C
    assert d["hdd"].tolist() == [8.0, 0.0, 0.0, 0.0] and d["cdd"].tolist() == [0.0, 0.0, 0.0, 4.0]
    m = monthly_degree_days(t)                           # Jan: 30th, 31st; Feb: 1st, 2nd
    assert m.loc["2025-01", "hdd"] == 8.0 and m.loc["2025-02", "cdd"] == 4.0 and m.loc["2025-02", "temp_c"] == 25.0
    assert degree_days(t, hdd_base=15.0, cdd_base=15.0)["cdd"].tolist() == [0.0, 3.0, 5.0, 15.0]
    with pytest.raises(ModelError, match="no value"):
        degree_days(pd.Series([1.0, np.nan], index=pd.date_range("2025-01-01", periods=2)))


def test_synthetic_temperature_is_documented_and_repeatable():
    a = synthetic_temperature("2025-01", "2025-12")
    assert len(a) == 365 and a.equals(synthetic_temperature("2025-01", "2025-12"))
    assert "synthetic" in a.attrs["assumption"]
    m = monthly_degree_days(a)
    # the normals: January near 4 °C, July near 28.5 °C (± the AR(1) weather)
    assert 0 < m.loc["2025-01", "temp_c"] < 9 and 24 < m.loc["2025-07", "temp_c"] < 32
    assert m.loc["2025-01", "hdd"] > 250 and m.loc["2025-07", "cdd"] > 20 and m.loc["2025-07", "hdd"] == 0


def test_calendar_features_by_hand():
    c = calendar_features(["2025-01", "2025-02"], months=True)
    # January 2025 starts on a Wednesday: 20 weekdays in 4 weeks + Wed 29, Thu 30, Fri 31 = 23; February 20
    assert c["working_days"].tolist() == [23, 20] and c["days"].tolist() == [31, 28]
    assert c.loc["2025-02", "m02"] == 1.0 and c.loc["2025-01", "m02"] == 0.0 and "m01" not in c


def test_perfect_linear_fit_recovers_coefficients_and_savings():
    # y = 500 + 2·x + 10·hdd exactly on 8 months; reporting months by hand
    x = np.array([100.0, 120.0, 90.0, 130.0, 110.0, 95.0, 125.0, 105.0])
    hdd = np.array([300.0, 250.0, 100.0, 0.0, 0.0, 50.0, 200.0, 350.0])
    f = pd.DataFrame({"energy": 500 + 2 * x + 10 * hdd, "x": x, "hdd": hdd},
                     index=pd.Index([f"2025-{m:02d}" for m in range(1, 9)], name="period"))
    fit = fit_baseline(f, "energy", ["x", "hdd"])
    assert fit.params["const"] == pytest.approx(500.0) and fit.params["x"] == pytest.approx(2.0)
    assert fit.params["hdd"] == pytest.approx(10.0)
    d = fit.diagnostics
    assert d["r2"] == pytest.approx(1.0) and d["cv_rmse"] == pytest.approx(0.0, abs=1e-9) and d["g14_pass"]
    assert d["n"] == 8 and d["p"] == 3
    post = pd.DataFrame({"energy": [3200.0, 2900.0], "x": [100.0, 150.0], "hdd": [250.0, 200.0]},
                        index=["2025-09", "2025-10"])
    s = savings(fit, post, "energy")
    # baseline 500 + 200 + 2500 = 3200 and 500 + 300 + 2000 = 2800; actual 3200, 2900 → S = 6000 − 6100 = −100
    assert s["baseline"] == pytest.approx(6000.0) and s["savings"] == pytest.approx(-100.0)
    assert s["savings_fraction"] == pytest.approx(-100.0 / 6000.0)
    assert s["uncertainty"] == pytest.approx(0.0, abs=1e-6)       # a perfect fit: MSE 0
    assert s["per_period"]["savings"].tolist() == pytest.approx([0.0, -100.0], abs=1e-9)   # 6000 − 6000 in floats


def test_noisy_fit_diagnostics_and_uncertainty_by_hand():
    # y = 10 + 1·x + e, e = +1, −1 alternating on x = 1..6; by the normal equations: x̄ = 3.5, Σ(x − x̄)e = (−2.5)(1)+(−1.5)(−1)+(−.5)(1)+(.5)(−1)+(1.5)(1)+(2.5)(−1) = −3
    # Sxx = 17.5 → slope = 1 − 3/17.5 = 0.828571; intercept = ȳ − b x̄ = 13.5 − 0.828571 × 3.5 = 10.6
    x = np.arange(1.0, 7.0)
    e = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    f = pd.DataFrame({"y": 10 + x + e, "x": x}, index=[f"2025-{m:02d}" for m in range(1, 7)])
    fit = fit_baseline(f, "y", ["x"])
    assert fit.params["x"] == pytest.approx(1 - 3 / 17.5) and fit.params["const"] == pytest.approx(10.6)
    resid = f["y"].to_numpy() - (10.6 + (1 - 3 / 17.5) * x)
    sse = float(np.sum(resid ** 2))
    d = fit.diagnostics
    assert d["mse"] == pytest.approx(sse / 4)
    assert d["cv_rmse"] == pytest.approx(100 * math.sqrt(sse / 4) / 13.5)
    assert d["durbin_watson"] == pytest.approx(np.sum(np.diff(resid) ** 2) / sse)
    assert d["nmbe"] == pytest.approx(0.0, abs=1e-9)                # OLS with a constant: residuals sum to 0
    post = pd.DataFrame({"y": [15.0, 16.0], "x": [7.0, 8.0]}, index=["2025-07", "2025-08"])
    s = savings(fit, post, "y", confidence=0.90)
    from scipy import stats
    base = 2 * 10.6 + (1 - 3 / 17.5) * 15.0
    S = base - 31.0
    n_eff = effective_n(6, lag1_autocorrelation(resid))
    mse = sse / (n_eff - 2)
    t = stats.t.ppf(0.95, n_eff - 2)
    a = alpha_g14(6)
    u = t * a / (2 * 13.5 * abs(S / base)) * math.sqrt(mse * (1 + 2 / n_eff) * 2) * abs(S)
    assert s["savings"] == pytest.approx(S) and s["uncertainty"] == pytest.approx(u, rel=1e-9)
    assert s["n_effective"] == pytest.approx(n_eff)


def test_bad_inputs_name_column_and_period():
    f = pd.DataFrame({"y": [1.0, 2.0, np.nan, 4.0], "x": [1.0, 2.0, 3.0, 4.0]}, index=["a", "b", "c", "d"])
    with pytest.raises(ModelError, match="period c"):
        fit_baseline(f, "y", ["x"])
    with pytest.raises(ModelError, match="not columns"):
        fit_baseline(f.fillna(3.0), "y", ["hdd"])
    with pytest.raises(ModelError, match="cannot fit"):
        fit_baseline(f.fillna(3.0).iloc[:2], "y", ["x"])


def test_wls_equals_ols_on_rows_scaled_by_root_weights():
    # WLS minimises Σ w (y − Xb)²: the same as OLS of √w·y on √w·X (constant column scaled too)
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([3.0, 4.0, 8.0, 9.0, 12.0])
    w = np.array([31.0, 28.0, 31.0, 30.0, 31.0])
    f = pd.DataFrame({"y": y, "x": x}, index=[f"2025-{m:02d}" for m in range(1, 6)])
    fit = fit_baseline(f, "y", ["x"], weights=w)
    X = np.c_[np.ones(5), x] * np.sqrt(w)[:, None]
    b = np.linalg.lstsq(X, y * np.sqrt(w), rcond=None)[0]
    assert fit.params.to_numpy() == pytest.approx(b)


def test_hourly_limits_and_autocorrelated_residuals():
    # hourly: the G14 limits are 30 % / 10 % and α = 1.26
    x = np.arange(200.0)
    y = 100 + x + 3 * np.sin(x)                     # residuals ≈ 3 sin(x): lag-1 ρ ≈ cos 1 = 0.54
    f = pd.DataFrame({"y": y, "x": x}, index=[str(i) for i in range(200)])
    fit = fit_baseline(f, "y", ["x"], resolution="hourly")
    d = fit.diagnostics
    assert (d["g14_cv_limit"], d["g14_nmbe_limit"]) == (30.0, 10.0)
    resid = y - np.asarray(fit.result.fittedvalues)
    rho = lag1_autocorrelation(resid)
    assert rho >= 0.5 and d["rho"] == pytest.approx(rho)
    assert d["n_effective"] == pytest.approx(200 * (1 - rho) / (1 + rho)) and d["n_effective"] < 70
    post = pd.DataFrame({"y": [300.0, 301.0], "x": [200.0, 201.0]}, index=["200", "201"])
    s = savings(fit, post, "y")
    assert s["alpha"] == 1.26 and s["n_effective"] == pytest.approx(d["n_effective"])
    from scipy import stats
    n_eff = d["n_effective"]
    mse = float(np.sum(resid ** 2)) / (n_eff - 2)
    t = stats.t.ppf(0.95, n_eff - 2)
    base = float(np.asarray(fit.predict(post)).sum())
    S = base - 601.0
    u = t * 1.26 / (2 * y.mean() * abs(S / base)) * math.sqrt(mse * (1 + 2 / n_eff) * 2) * abs(S)
    assert s["uncertainty"] == pytest.approx(u, rel=1e-9)
