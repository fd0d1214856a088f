"""Forecasting behind one interface (issue 15 point 4; seed §8.5, §9.2 碳排放量预估模型).

Models (:class:`~workbench.models.registry.Forecaster`, by name in the registry):

* ``seasonal_naive`` — ŷ_{T+h} = y_{T+h−m(k+1)}, k = ⌊(h−1)/m⌋; σ_h = σ̂·√(k+1) with σ̂ the RMS of
  the in-sample seasonal differences (Hyndman & Athanasopoulos, *FPP3* §5.5);
* ``ets`` — statsmodels ``ETSModel`` (additive error, damped additive trend, additive season);
* ``sarimax`` — statsmodels ``SARIMAX``, by default the "airline" model (0,1,1)×(0,1,1)_m;
* ``prophet`` — Prophet (Taylor & Letham 2018), weekly and yearly seasonality;
* ``linear``, ``svr``, ``mlp`` — scikit-learn regressors on lags (1…m, 2m) and calendar features
  (day of week one-hot, day of year sin/cos), forecast recursively; intervals and sample paths by
  bootstrapping the one-step residuals along the recursion.

:func:`backtest` runs a rolling-origin evaluation and reports :func:`mape`, :func:`smape`,
:func:`mase` and the coverage of the intervals, beside the seasonal-naive baseline.
:func:`daily_emissions` makes the daily series these models forecast from an inventory and its lake.
:func:`year_outlook` forecasts the rest of a year's emissions (and carbon efficiency) and the
probability of exceeding a target or an allowance (碳配额).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from workbench.models.registry import Forecaster, ModelError, make

__all__ = [
    "ETS",
    "SARIMAX",
    "LinearLags",
    "MLPLags",
    "ProphetForecaster",
    "SVRLags",
    "SeasonalNaive",
    "backtest",
    "calibration_curve",
    "coverage",
    "daily_emissions",
    "mape",
    "mase",
    "smape",
    "total_pit",
    "value_added_per_day",
    "year_outlook",
]


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ModelError(f"interval level {level} must be in (0, 1)")
    return float(stats.norm.ppf(0.5 + level / 2))


# --------------------------------------------------------------------------- metrics
def mape(y, yhat) -> float:
    """Mean absolute percentage error, %: ``100/n · Σ |y_t − ŷ_t| / |y_t|`` (y ≠ 0)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    if (y == 0).any():
        raise ModelError("MAPE is undefined where the actual value is 0 (use sMAPE or MASE)")
    return float(100 * np.mean(np.abs(y - yhat) / np.abs(y)))


def smape(y, yhat) -> float:
    """Symmetric MAPE, %: ``100/n · Σ 2 |y_t − ŷ_t| / (|y_t| + |ŷ_t|)`` (a term with both zero is 0)
    (Makridakis 1993; the M3/M4 definition, range 0–200)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    den = np.abs(y) + np.abs(yhat)
    terms = np.divide(2 * np.abs(y - yhat), den, out=np.zeros_like(den), where=den > 0)
    return float(100 * np.mean(terms))


def mase(y, yhat, train, season: int) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006):
    ``mean |y_t − ŷ_t| / ( 1/(T−m) · Σ_{t=m+1..T} |x_t − x_{t−m}| )`` with ``x`` the training series
    (length T) and ``m`` the season: < 1 beats the in-sample seasonal-naive forecast."""
    y, yhat, x = np.asarray(y, float), np.asarray(yhat, float), np.asarray(train, float)
    scale = np.mean(np.abs(x[season:] - x[:-season]))
    if not scale > 0:
        raise ModelError("MASE: the training series has no seasonal variation to scale by")
    return float(np.mean(np.abs(y - yhat)) / scale)


def coverage(y, lower, upper) -> float:
    """Share of actual values inside their interval: ``1/n · Σ [lower_t ≤ y_t ≤ upper_t]``."""
    y = np.asarray(y, float)
    return float(np.mean((np.asarray(lower, float) <= y) & (y <= np.asarray(upper, float))))


# --------------------------------------------------------------------------- models
class SeasonalNaive(Forecaster):
    """ŷ_{T+h} = y_{T+h−m(k+1)}, k = ⌊(h−1)/m⌋; σ_h = σ̂ √(k+1), σ̂² = mean of (y_t − y_{t−m})²."""
    name = "seasonal_naive"

    def fit(self, y):
        y = self._check(y)
        d = y.to_numpy()[self.season:] - y.to_numpy()[:-self.season]
        self.sigma_ = float(np.sqrt(np.mean(d ** 2)))
        return self

    def predict(self, horizon, level=0.9):
        m, last = self.season, self.y_.to_numpy()[-self.season:]
        h = np.arange(1, int(horizon) + 1)
        k = (h - 1) // m
        mean = last[(h - 1) % m]
        half = _z(level) * self.sigma_ * np.sqrt(k + 1)
        return pd.DataFrame({"mean": mean, "lower": mean - half, "upper": mean + half}, index=self.future_index(horizon))

    def simulate(self, horizon, n=1000, seed=None):
        """Paths of the seasonal random walk the intervals assume: ``y_{T+h} = y_{T+h−m(k+1)} +
        Σ_{j≤k} e_j``, one N(0, σ̂) innovation per season and position, so the days of a path share
        their errors as the model says (not independent draws)."""
        m, H = self.season, int(horizon)
        K = -(-H // m)
        rng = np.random.default_rng(self.seed if seed is None else seed)
        e = rng.standard_normal((int(n), K, m)).cumsum(axis=1) * self.sigma_
        return np.tile(self.y_.to_numpy()[-m:], K)[None, :H] + e.reshape(int(n), -1)[:, :H]


class ETS(Forecaster):
    """statsmodels ``ETSModel``: additive error, damped additive trend, additive season of period m."""
    name = "ets"

    def fit(self, y):
        import warnings

        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        y = self._check(y)
        with warnings.catch_warnings():     # a fit that stops at maxiter is still a fit; its metrics tell
            warnings.simplefilter("ignore")
            self.res_ = ETSModel(y, error="add", trend="add", damped_trend=True, seasonal="add",
                                 seasonal_periods=self.season).fit(disp=False, maxiter=200)
        return self

    def predict(self, horizon, level=0.9):
        sf = self.res_.get_prediction(start=len(self.y_), end=len(self.y_) + int(horizon) - 1) \
            .summary_frame(alpha=1 - level)
        return pd.DataFrame({"mean": sf["mean"].to_numpy(), "lower": sf["pi_lower"].to_numpy(),
                             "upper": sf["pi_upper"].to_numpy()}, index=self.future_index(horizon))

    def simulate(self, horizon, n=1000, seed=None):
        """Paths simulated by the fitted state-space model from the end of the data (statsmodels
        ``ETSResults.simulate``): a shock moves the level for the rest of the path."""
        sim = self.res_.simulate(int(horizon), anchor="end", repetitions=int(n),
                                 rng=np.random.default_rng(self.seed if seed is None else seed))
        return np.asarray(sim, dtype=float).reshape(int(horizon), int(n)).T


class SARIMAX(Forecaster):
    """statsmodels ``SARIMAX`` with ``order`` (default (0,1,1)) and ``seasonal_order`` (default
    (0,1,1,m), Box & Jenkins' "airline" model); Gaussian prediction intervals from the state-space
    model."""
    name = "sarimax"

    def fit(self, y):
        import warnings

        from statsmodels.tsa.statespace.sarimax import SARIMAX as _SARIMAX

        y = self._check(y)
        order = tuple(self.params.get("order", (0, 1, 1)))
        sorder = tuple(self.params.get("seasonal_order", (0, 1, 1, self.season)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.res_ = _SARIMAX(y.to_numpy(), order=order, seasonal_order=sorder).fit(disp=False, maxiter=100)
        return self

    def predict(self, horizon, level=0.9):
        sf = self.res_.get_forecast(int(horizon)).summary_frame(alpha=1 - level)
        return pd.DataFrame({"mean": sf["mean"].to_numpy(), "lower": sf["mean_ci_lower"].to_numpy(),
                             "upper": sf["mean_ci_upper"].to_numpy()}, index=self.future_index(horizon))

    def simulate(self, horizon, n=1000, seed=None):
        """Paths simulated by the fitted state-space model from the end of the data (statsmodels
        ``MLEResults.simulate``, ``anchor="end"``)."""
        sim = self.res_.simulate(int(horizon), anchor="end", repetitions=int(n),
                                 rng=np.random.default_rng(self.seed if seed is None else seed))
        return np.asarray(sim, dtype=float).reshape(int(horizon), int(n)).T


class ProphetForecaster(Forecaster):
    """Prophet with weekly (and, with two years or more, yearly) seasonality; intervals from its
    own simulation (``uncertainty_samples``), seeded."""
    name = "prophet"

    def fit(self, y):
        self._check(y)
        self._levels = {}
        return self

    def _model(self, level):
        if level not in self._levels:
            import logging

            from prophet import Prophet

            for name in ("cmdstanpy", "prophet"):
                logging.getLogger(name).setLevel(logging.WARNING)
            y = self.y_
            m = Prophet(interval_width=level, daily_seasonality=False, weekly_seasonality=self.season == 7,
                        yearly_seasonality=len(y) >= 2 * 365, uncertainty_samples=self.params.get("samples", 300))
            np.random.seed(self.seed)
            m.fit(pd.DataFrame({"ds": y.index.tz_localize(None), "y": y.to_numpy()}))
            self._levels[level] = m
        return self._levels[level]

    def predict(self, horizon, level=0.9):
        m = self._model(level)
        idx = self.future_index(horizon)
        np.random.seed(self.seed)
        f = m.predict(pd.DataFrame({"ds": idx.tz_localize(None)}))
        return pd.DataFrame({"mean": f["yhat"].to_numpy(), "lower": f["yhat_lower"].to_numpy(),
                             "upper": f["yhat_upper"].to_numpy()}, index=idx)

    def simulate(self, horizon, n=1000, seed=None):
        """Prophet's own predictive samples (trend changes and noise; ``predictive_samples``),
        drawn with replacement up to ``n`` paths."""
        m = self._model(0.9)
        idx = self.future_index(horizon)
        np.random.seed(self.seed if seed is None else seed)
        yhat = np.asarray(m.predictive_samples(pd.DataFrame({"ds": idx.tz_localize(None)}))["yhat"], dtype=float)
        rng = np.random.default_rng(self.seed if seed is None else seed)
        return yhat.T[rng.integers(0, yhat.shape[1], int(n))]


class _Lags(Forecaster):
    """A scikit-learn regressor on lags (1…m and 2m) and calendar features, forecast recursively;
    intervals and paths by bootstrapping one-step residuals (``paths`` sample paths)."""
    name = "lags"

    def _estimator(self):  # pragma: no cover - subclasses
        raise NotImplementedError

    def _lags(self):
        return list(range(1, self.season + 1)) + [2 * self.season]

    @staticmethod
    def _calendar(idx: pd.DatetimeIndex) -> np.ndarray:
        dow = np.eye(7)[idx.day_of_week]
        doy = 2 * np.pi * idx.day_of_year.to_numpy() / 365.25
        return np.column_stack([dow, np.sin(doy), np.cos(doy)])

    def fit(self, y):
        y = self._check(y)
        v = y.to_numpy()
        lags = self._lags()
        p = max(lags)
        X = np.column_stack([v[p - lag:len(v) - lag] for lag in lags] + [self._calendar(y.index[p:])])
        t = v[p:]
        self.est_ = self._estimator().fit(X, t)
        self.resid_ = t - self.est_.predict(X)
        return self

    def _paths(self, horizon, n, seed):
        rng = np.random.default_rng(self.seed if seed is None else seed)
        lags, idx = self._lags(), self.future_index(horizon)
        cal = self._calendar(idx)
        hist = np.tile(self.y_.to_numpy()[-max(lags):], (n, 1))
        out = np.empty((n, int(horizon)))
        for h in range(int(horizon)):
            X = np.column_stack([hist[:, -lag] for lag in lags] + [np.tile(cal[h], (n, 1))])
            step = self.est_.predict(X)
            if n > 1:
                step = step + rng.choice(self.resid_, size=n, replace=True)
            out[:, h] = step
            hist = np.column_stack([hist[:, 1:], step])
        return out

    def predict(self, horizon, level=0.9):
        mean = self._paths(horizon, 1, 0)[0]
        paths = self._paths(horizon, int(self.params.get("paths", 200)), None)
        a = (1 - level) / 2
        return pd.DataFrame({"mean": mean, "lower": np.quantile(paths, a, axis=0),
                             "upper": np.quantile(paths, 1 - a, axis=0)}, index=self.future_index(horizon))

    def simulate(self, horizon, n=1000, seed=None):
        return self._paths(horizon, int(n), seed)


class LinearLags(_Lags):
    """Ordinary least squares (scikit-learn ``LinearRegression``) on lags and calendar features."""
    name = "linear"

    def _estimator(self):
        from sklearn.linear_model import LinearRegression

        return LinearRegression()


class SVRLags(_Lags):
    """ε-support-vector regression (RBF kernel) on standardised lags and calendar features and a
    standardised target."""
    name = "svr"

    def _estimator(self):
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVR

        return TransformedTargetRegressor(make_pipeline(StandardScaler(), SVR(C=self.params.get("C", 3.0))),
                                          transformer=StandardScaler())


class MLPLags(_Lags):
    """A multilayer perceptron (one hidden layer of 32, early stopping, seeded) on standardised
    lags and calendar features and a standardised target."""
    name = "mlp"

    def _estimator(self):
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.neural_network import MLPRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        mlp = MLPRegressor(hidden_layer_sizes=(32,), max_iter=500, early_stopping=True, random_state=self.seed)
        return TransformedTargetRegressor(make_pipeline(StandardScaler(), mlp), transformer=StandardScaler())


# --------------------------------------------------------------------------- evaluation
def total_pit(paths: np.ndarray, actual_total: float) -> float:
    r"""The probability integral transform of a horizon's total: the share of the simulated totals
    at or below the actual one, :math:`u = \#\{i: \sum_h P_{ih} \le Y\} / n`.  Calibrated forecasts
    give uniform ``u`` over many origins (Dawid 1984; Gneiting, Balabdaoui & Raftery 2007), and the
    central ``L`` interval of the total covers the actual iff ``|u − ½| ≤ L/2``."""
    totals = np.asarray(paths, dtype=float).sum(axis=1)
    return float(np.mean(totals <= actual_total))


def total_z(paths: np.ndarray, actual_total: float) -> float:
    """The actual total in robust standard deviations of the simulated totals from their median:
    ``z = (Y − median T) / ((q95(T) − q05(T)) / 3.2897)`` (the 90 % range of a normal is 3.2897 σ)."""
    totals = np.asarray(paths, dtype=float).sum(axis=1)
    q05, q50, q95 = np.quantile(totals, [0.05, 0.5, 0.95])
    sd = (q95 - q05) / 3.289707253902945
    return float((actual_total - q50) / sd) if sd > 0 else float("nan")


def spread_scale(z, *, floor: float | None = 1.0) -> float:
    r"""The factor by which a model's simulated totals must spread about their median for its
    backtest errors to be standard: :math:`s = \max(\text{floor}, \sqrt{\overline{z^2}})` over the
    folds' ``total_z`` (1 for a calibrated model; > 1 when its intervals are too narrow).  Estimated
    on a series' own rolling origins, it widens the year's outlook of that series
    (:func:`year_outlook`, ``spread_scale=``).  The floor (1: never narrower than the model's own
    spread) is there because a mean of a handful of z² is often well below 1 by chance — shrinking
    on it made the intervals worse out of sample in the benchmark (``floor=None`` allows it)."""
    z = np.asarray(z, dtype=float)
    z = z[np.isfinite(z)]
    if not len(z):
        raise ModelError("spread_scale: no finite backtest errors to calibrate on")
    s = float(np.sqrt(np.mean(z ** 2)))
    return s if floor is None else max(float(floor), s)


def calibration_curve(pits, levels=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95)) -> pd.DataFrame:
    """Nominal central-interval level → the share of origins whose actual total it covered
    (``|u − ½| ≤ L/2`` for the PIT values ``pits``): the calibration curve of the totals' intervals,
    and so of the probabilities of exceeding a threshold drawn from the same paths."""
    u = np.asarray(pits, dtype=float)
    u = u[np.isfinite(u)]
    return pd.DataFrame({"level": list(levels),
                         "coverage": [float(np.mean(np.abs(u - 0.5) <= lv / 2)) if len(u) else np.nan for lv in levels],
                         "n": len(u)})


def backtest(y: pd.Series, model="seasonal_naive", *, horizon: int = 28, folds: int = 4, step: int | None = None,
             level: float = 0.9, season: int = 7, seed: int = 0, baseline: bool = True, paths: int = 500,
             **params) -> dict:
    """Rolling-origin evaluation (Tashman 2000): origin ``T_k = n − horizon − (folds − 1 − k) · step``
    (``step`` defaults to ``horizon``), fit on ``y[:T_k]``, forecast ``horizon`` steps, compare
    with ``y[T_k:T_k + horizon]``.  Returns ``{"model", "metrics": {mape, smape, mase, coverage,
    total_coverage}, "baseline": the same for seasonal-naive, "folds": per-fold frame}``; each
    metric is the mean over the folds (MASE scaled by each fold's own training series).
    ``coverage``: the share of the horizon's days inside their ``level`` intervals;
    ``total_coverage``: whether the horizon's *total* fell inside the central ``level`` interval of
    the totals of ``paths`` simulated paths (:meth:`Forecaster.simulate`; per fold ``total_pit``,
    :func:`total_pit`) — what the year's outlook and its probabilities rest on."""
    step = int(step or horizon)
    n = len(y)
    first = n - horizon - (folds - 1) * step
    if first < 2 * season + 2:
        raise ModelError(f"backtest: {n} points are too few for {folds} folds of {horizon} (step {step})")
    rows = []
    names = [model] + (["seasonal_naive"] if baseline and model != "seasonal_naive" else [])
    for name in names:
        for k in range(folds):
            origin = first + k * step
            train, test = y.iloc[:origin], y.iloc[origin:origin + horizon]
            m = make(name, season=season, seed=seed, **(params if name is model else {})).fit(train)
            f = m.predict(horizon, level=level)
            sims = m.simulate(horizon, paths, seed=seed + k) if paths else None
            pit = total_pit(sims, float(test.sum())) if paths else np.nan
            tz = total_z(sims, float(test.sum())) if paths else np.nan
            rows.append({"model": getattr(m, "name", str(name)), "fold": k, "origin": y.index[origin],
                         "mape": mape(test, f["mean"]) if (test != 0).all() else np.nan,
                         "smape": smape(test, f["mean"]), "mase": mase(test, f["mean"], train, season),
                         "coverage": coverage(test, f["lower"], f["upper"]), "total_pit": pit, "total_z": tz,
                         "total_coverage": float(abs(pit - 0.5) <= level / 2) if paths else np.nan})
    folds_df = pd.DataFrame(rows)
    agg = folds_df.groupby("model", sort=False)[["mape", "smape", "mase", "coverage", "total_coverage"]].mean()
    main = agg.index[0]
    out = {"model": main, "metrics": agg.loc[main].to_dict(), "folds": folds_df, "level": level}
    if len(agg) > 1:
        out["baseline"] = agg.iloc[1].to_dict()
    return out


def year_outlook(daily_emissions: pd.Series, *, allowance_t: float | None = None, output: pd.Series | None = None,
                 efficiency_target: float | None = None, model="seasonal_naive", season: int = 7, n: int = 2000,
                 seed: int = 0, year: int | None = None, spread_scale: float = 1.0, fitted=None, **params) -> dict:
    """The year's emissions (and carbon efficiency) forecast and the probability of exceeding an
    allowance or a target.

    ``daily_emissions`` (tCO2e per day, the year so far): the year's total is
    ``E = Σ observed + Σ simulated remaining days``, with ``n`` sample paths of the model's
    predictive distribution (:meth:`Forecaster.simulate`); ``P(E > allowance_t)`` is the share of
    paths above the allowance (tCO2e).  With ``output`` (units of product per day, same days) its
    remaining days are simulated by the same model, independently, and carbon efficiency is
    ``E / Q`` (tCO2e per unit); ``P(E/Q > efficiency_target)``.  ``spread_scale`` (:func:`spread_scale`
    of the series' backtest) widens (or narrows) the simulated remaining totals about their median,
    ``T' = median T + s · (T − median T)``, so the probabilities mean what they say on that series.
    ``fitted``: the model already fitted on ``daily_emissions`` (a caller that also shows its
    forecast), used instead of fitting it again.
    Returns a dict of the observed and forecast totals, the 5/50/95 % quantiles and the probabilities."""
    y = daily_emissions.astype(float)
    year = int(year or y.index[-1].year)
    end = pd.Timestamp(year=year, month=12, day=31, tz=y.index.tz)
    remaining = int((end - y.index[-1]).days)
    if remaining < 0:
        raise ModelError(f"the series runs past the end of {year}")

    def totals(series, s, scale=1.0, model_fitted=None):
        obs = float(series[series.index.year == year].sum())
        if remaining == 0:
            return obs, np.full(n, obs)
        m = model_fitted if model_fitted is not None else make(model, season=season, seed=s, **params).fit(series)
        t = m.simulate(remaining, n, seed=s).sum(axis=1)
        med = np.median(t)
        return obs, obs + med + scale * (t - med)

    obs, E = totals(y, seed, spread_scale, fitted)             # the scale is the emissions' (value added: as simulated)
    q = np.quantile(E, [0.05, 0.5, 0.95])
    out = {"year": year, "days_observed": int((y.index.year == year).sum()), "days_forecast": remaining,
           "observed_t": obs, "forecast_t": float(E.mean()), "spread_scale": float(spread_scale), "p05_t": float(q[0]), "p50_t": float(q[1]),
           "p95_t": float(q[2]), "model": model if isinstance(model, str) else getattr(model, "name", "model")}
    if allowance_t is not None:
        out["allowance_t"] = float(allowance_t)
        out["p_exceed_allowance"] = float(np.mean(E > allowance_t))
    if output is not None:
        _, Q = totals(output.astype(float), seed + 1)
        eff = E / Q
        qe = np.quantile(eff, [0.05, 0.5, 0.95])
        out.update({"efficiency": float(np.mean(eff)), "efficiency_p05": float(qe[0]),
                    "efficiency_p95": float(qe[2])})
        if efficiency_target is not None:
            out["efficiency_target"] = float(efficiency_target)
            out["p_exceed_efficiency_target"] = float(np.mean(eff > efficiency_target))
    return out


def daily_shape(lake, meters: list[str], start: str, end: str) -> pd.Series:
    """Each day's share of its month in the summed consumption of ``meters`` (the lake's interval
    ``consumption``), over the days of the months ``start``..``end`` (YYYY-MM); a month the meters
    did not measure has NaN shares."""
    days = pd.date_range(f"{start}-01", pd.Period(end, "M").end_time.normalize(), freq="D")
    lo, hi = days[0], days[-1] + pd.Timedelta("1D")
    con = lake.connect(tables=["consumption"], registries=False, between=(lo, hi))
    try:
        d = con.execute("SELECT date_trunc('day', ts) AS day, sum(value) AS v FROM consumption "
                        "WHERE meter_id IN (SELECT unnest(?::VARCHAR[])) AND ts >= ? AND ts < ? GROUP BY day",
                        [list(meters), lo.to_pydatetime(), hi.to_pydatetime()]).df()
    finally:
        con.close()
    v = d.set_index(pd.to_datetime(d["day"]).dt.tz_localize(None))["v"].reindex(days).astype(float)
    month = v.index.to_period("M")
    tot = v.groupby(month).transform("sum")
    counted = v.notna().groupby(month).transform("sum")
    share = v / tot
    # a month measured on fewer than 90 % of its days is not a shape
    return share.where(counted >= 0.9 * v.index.days_in_month)


def daily_emissions(inventory, lake) -> pd.DataFrame:
    """The inventory's emissions per day and source (tCO2e), summing exactly to its monthly ledger.

    For each month ``m``, source ``s`` and item ``i``: ``E_si,d = E_si,m × w_d``, with ``E_si,m`` the
    ledger's total and ``w_d`` the day's share of the month in the metered consumption of that item
    for that source (its main meters, else all its meters in the lake — one unit, never coal tonnes
    added to gas cubic metres); an item without meters, or a month they did not measure, is spread
    evenly (``w_d = 1/days``).  Columns: the regime's sources present and ``total``;
    ``attrs["shape"]``: (source, item) → the meters used, or ``"even"``.
    """
    led = inventory.ledger
    start, end = inventory.period_start, inventory.period_end
    days = pd.date_range(f"{start}-01", pd.Period(end, "M").end_time.normalize(), freq="D")
    month = days.to_period("M").astype(str)
    monthly = led.groupby(["source", "item", "period"])["tco2e"].sum()
    meters = lake.meters(normalized=True)
    even = pd.Series(1.0 / days.days_in_month, index=days)
    out, shape = {}, {}
    for src in [s.key for s in inventory.regime.sources if s.key in set(led["source"])]:
        series = pd.Series(0.0, index=days)
        for item in sorted(set(led.loc[led["source"] == src, "item"])):
            m = meters[(meters["source"] == src) & (meters["item"] == item)]
            ids = m.loc[m["is_main"].astype(bool), "meter_id"].tolist() or m["meter_id"].tolist()
            w = daily_shape(lake, ids, start, end) if ids else pd.Series(np.nan, index=days)
            unmeasured = w.isna().groupby(month).transform("all")
            w = w.where(~unmeasured, even).fillna(0.0)
            shape[(src, item)] = ", ".join(ids) if ids else "even"
            series += pd.Series([monthly.get((src, item, p), 0.0) for p in month], index=days) * w
        out[src] = series
    frame = pd.DataFrame(out, index=days)
    frame["total"] = frame.sum(axis=1)
    frame.index.name = "day"
    frame.attrs["shape"] = shape
    return frame


def value_added_per_day(inventory) -> pd.Series:
    """The enterprise's value added (万元) per day: each month's figure spread evenly over its days
    (the production table is monthly); NaN where a month has none."""
    eff = inventory.efficiency.set_index("period")["value_added"]
    days = pd.date_range(f"{inventory.period_start}-01", pd.Period(inventory.period_end, "M").end_time.normalize(),
                         freq="D")
    return pd.Series([eff.get(d.strftime("%Y-%m"), float("nan")) / d.days_in_month for d in days], index=days)
