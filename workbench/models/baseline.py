"""Statistical baselines (统计基线, seed §8.4 b): energy or emissions explained by production, weather
(heating/cooling degree-days, :mod:`workbench.models.weather`) and calendar, fitted with statsmodels
OLS (or WLS), judged by ASHRAE Guideline 14, and savings = baseline − actual with their uncertainty.

Fit quality (ASHRAE Guideline 14; reference ``applications.md`` §3, [C4][C5]):

.. math::
    CV(RMSE) = 100\\,\\sqrt{\\sum (y_i - \\hat y_i)^2 / (n - p)} / \\bar y \\qquad
    NMBE = 100\\,\\sum (y_i - \\hat y_i) / ((n - p)\\,\\bar y)

``p`` = number of model parameters (calibration code often uses ``p = 1``).  A model is *calibrated*
with |NMBE| ≤ 5 % and CV(RMSE) ≤ 15 % on monthly data, 10 % and 30 % on hourly data (G14-2002
§5.3.2.4 f); IPMVP: R² ≥ 0.75 "often considered reasonable".

Savings uncertainty (fractional savings uncertainty, G14 Annex B as transcribed in the reference):

.. math::
    FSU = \\frac{t\\,\\alpha}{m\\,\\bar y\\,F}\\sqrt{MSE\\,(1 + 2/n)\\,m},\\qquad MSE = \\sum (y - \\hat y)^2/(n - p)

``F`` the savings fraction, ``m`` the reporting points, ``t`` Student's t at the confidence asked with
``n − p`` degrees of freedom, ``α = 1.26`` hourly, ``α = −0.00022 n² + 0.03306 n + 0.94054`` monthly.
With lag-1 autocorrelation of the residuals ``ρ ≥ 0.5`` the baseline's ``n`` is replaced by the
effective ``n′ = n (1 − ρ)/(1 + ρ)`` in ``MSE``, ``1 + 2/n`` and the degrees of freedom (a choice
stated here: the reference gives n′ without saying where it enters; this uses it everywhere ``n``
counts independent points).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.diagnostic import het_breuschpagan
from statsmodels.stats.stattools import durbin_watson

from workbench.models.mechanism import ModelError

__all__ = [
    "G14_LIMITS",
    "BaselineFit",
    "alpha_g14",
    "baseline_frame",
    "calendar_features",
    "cv_rmse",
    "design_matrix",
    "effective_n",
    "fit_baseline",
    "fractional_savings_uncertainty",
    "lag1_autocorrelation",
    "nmbe",
    "savings",
]

#: ASHRAE Guideline 14 calibration limits: resolution → (CV(RMSE) %, |NMBE| %)
G14_LIMITS = {"monthly": (15.0, 5.0), "hourly": (30.0, 10.0)}


def _arrays(y, yhat):
    y = np.asarray(y, dtype="float64")
    yhat = np.asarray(yhat, dtype="float64")
    if y.shape != yhat.shape or y.ndim != 1:
        raise ModelError(f"observed ({y.shape}) and predicted ({yhat.shape}) must be 1-D of the same length")
    return y, yhat


def cv_rmse(y, yhat, *, p: int = 1) -> float:
    r"""Coefficient of variation of the root-mean-square error, %.

    .. math::  CV(RMSE) = 100 \sqrt{\sum_i (y_i - \hat y_i)^2 / (n - p)} \,/\, \bar y

    Parameters
    ----------
    y, yhat : array-like of float
        Observed and predicted values (any one unit).
    p : int
        Number of model parameters (``n − p`` > 0).

    References
    ----------
    ASHRAE Guideline 14 (reference ``applications.md`` §3 [C4][C5]).
    """
    y, yhat = _arrays(y, yhat)
    n = len(y)
    if n - p <= 0:
        raise ModelError(f"CV(RMSE) needs more points ({n}) than parameters ({p})")
    return float(100.0 * math.sqrt(np.sum((y - yhat) ** 2) / (n - p)) / np.mean(y))


def nmbe(y, yhat, *, p: int = 1) -> float:
    r"""Normalised mean bias error, % (positive: the model under-predicts).

    .. math::  NMBE = 100 \sum_i (y_i - \hat y_i) \,/\, ((n - p)\, \bar y)

    Parameters and reference as :func:`cv_rmse`.
    """
    y, yhat = _arrays(y, yhat)
    n = len(y)
    if n - p <= 0:
        raise ModelError(f"NMBE needs more points ({n}) than parameters ({p})")
    return float(100.0 * np.sum(y - yhat) / ((n - p) * np.mean(y)))


def lag1_autocorrelation(resid) -> float:
    r"""Lag-1 autocorrelation of residuals: :math:`\rho = \sum_{i>1} e_i e_{i-1} / \sum_i e_i^2`
    (residuals centred on their mean)."""
    e = np.asarray(resid, dtype="float64")
    e = e - e.mean()
    den = float(np.sum(e * e))
    return float(np.sum(e[1:] * e[:-1]) / den) if den > 0 and len(e) > 1 else 0.0


def effective_n(n: int, rho: float, *, threshold: float = 0.5) -> float:
    r"""Effective number of independent points under lag-1 autocorrelation.

    .. math::  n' = n (1 - \rho) / (1 + \rho) \quad (\rho \ge 0.5;\ \text{else } n' = n)

    References
    ----------
    ASHRAE Guideline 14 Annex B (reference ``applications.md`` §3 [C4]).
    """
    return float(n * (1 - rho) / (1 + rho)) if rho >= threshold else float(n)


def alpha_g14(n: int, resolution: str = "monthly") -> float:
    r"""ASHRAE Guideline 14 correction ``α`` of the savings-uncertainty formula.

    .. math::  \alpha = 1.26\ (\text{hourly}),\qquad \alpha = -0.00022 n^2 + 0.03306 n + 0.94054\ (\text{monthly})

    (``n`` as the reference transcribes it: the baseline's months; 12 → 1.3056.)
    """
    if resolution == "hourly":
        return 1.26
    if resolution == "monthly":
        return -0.00022 * n * n + 0.03306 * n + 0.94054
    raise ModelError(f"resolution '{resolution}': monthly or hourly")


def fractional_savings_uncertainty(mse: float, n: float, m: int, ybar: float, savings_fraction: float, *,
                                   t: float, alpha: float) -> float:
    r"""Fractional savings uncertainty (FSU) of ASHRAE Guideline 14.

    .. math::  FSU = \frac{t\,\alpha}{m\,\bar y\,F}\sqrt{MSE\,(1 + 2/n)\,m}

    Parameters
    ----------
    mse : float
        Mean squared error of the baseline fit, ``Σ(y − ŷ)²/(n − p)`` (unit²).
    n : float
        Baseline points (or the effective ``n′``).
    m : int
        Reporting-period points.
    ybar : float
        Mean of the baseline's observed values (unit).
    savings_fraction : float
        ``F`` = savings ÷ baseline energy of the reporting period.
    t, alpha : float
        Student's t at the confidence wanted; :func:`alpha_g14`.

    Returns
    -------
    float
        Uncertainty as a fraction of the savings (0.5 = ±50 %); inf when ``F`` = 0.
    """
    if savings_fraction == 0:
        return math.inf
    return float(t * alpha / (m * ybar * abs(savings_fraction)) * math.sqrt(mse * (1 + 2 / n) * m))


def calendar_features(periods, *, months: bool = False) -> pd.DataFrame:
    """Calendar regressors of monthly periods (``YYYY-MM``): ``days`` in the month, ``working_days``
    (Monday–Friday; China's public holidays and adjusted working weekends are NOT taken out — no holiday
    calendar is shipped) and, with ``months=True``, month dummies ``m02`` … ``m12`` (January the
    reference; needs several years or the dummies absorb everything)."""
    ps = pd.PeriodIndex([pd.Period(str(p), "M") for p in periods])
    out = pd.DataFrame(index=pd.Index([str(p) for p in ps], name="period"))
    out["days"] = ps.days_in_month.to_numpy()
    out["working_days"] = [int(np.busday_count(p.start_time.date(), (p + 1).start_time.date())) for p in ps]
    if months:
        for k in range(2, 13):
            out[f"m{k:02d}"] = (ps.month == k).astype(float)
    return out


def design_matrix(frame: pd.DataFrame, drivers) -> pd.DataFrame:
    """The regressors ``drivers`` (column names of ``frame``) with a constant; a missing column or a
    missing value is an error naming the column and period."""
    drivers = list(drivers)
    miss = [d for d in drivers if d not in frame]
    if miss:
        raise ModelError(f"drivers {miss} are not columns of the frame ({', '.join(map(str, frame.columns))})")
    X = frame[drivers].apply(pd.to_numeric, errors="coerce").astype("float64")
    bad = X.isna().stack()
    if bad.any():
        (per, col) = bad[bad].index[0]
        raise ModelError(f"driver '{col}': no value in period {per}")
    return sm.add_constant(X, has_constant="add")


@dataclass
class BaselineFit:
    """A fitted baseline: the statsmodels result and its diagnostics."""

    result: object
    drivers: list
    y: pd.Series
    resolution: str = "monthly"
    weights: np.ndarray | None = None
    diagnostics: dict = field(default_factory=dict)

    @property
    def params(self) -> pd.Series:
        return self.result.params

    @property
    def p(self) -> int:
        return len(self.result.params)

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """Baseline prediction for the periods of ``frame`` (same driver columns)."""
        return pd.Series(np.asarray(self.result.predict(design_matrix(frame, self.drivers))), index=frame.index,
                         name="baseline")

    def table(self) -> pd.DataFrame:
        """Coefficients with standard errors, t and p-values."""
        r = self.result
        return pd.DataFrame({"coef": r.params, "std_err": r.bse, "t": r.tvalues, "p_value": r.pvalues})


def fit_baseline(frame: pd.DataFrame, target: str, drivers, *, weights=None, resolution: str = "monthly",
                 p_for_g14: int | None = None) -> BaselineFit:
    r"""Fit ``target ~ 1 + drivers`` by OLS (WLS with ``weights``) and judge it.

    .. math::  y_i = \beta_0 + \sum_k \beta_k x_{ik} + \varepsilon_i

    Parameters
    ----------
    frame : DataFrame
        One row per period: ``target`` (energy GJ/tce/MWh or tCO2e) and the ``drivers`` (output t,
        ``hdd``/``cdd`` K·d, ``working_days`` …).
    target : str
    drivers : list of str
    weights : array-like, optional
        WLS weights (∝ 1/variance of each period), e.g. days in the month.
    resolution : str
        ``monthly`` or ``hourly``: the G14 limits and ``α``.
    p_for_g14 : int, optional
        ``p`` in CV(RMSE)/NMBE (default: the model's parameters, constant included).

    Returns
    -------
    BaselineFit
        ``diagnostics``: ``n``, ``p``, ``r2``, ``adj_r2``, ``f_pvalue``, ``durbin_watson``,
        ``breusch_pagan_p`` (LM test of heteroscedasticity), ``rho`` (lag-1 of residuals),
        ``n_effective``, ``cv_rmse``, ``nmbe`` (%), ``mse``, ``g14_cv_limit``, ``g14_nmbe_limit``,
        ``g14_pass``, ``r2_ok`` (≥ 0.75).

    References
    ----------
    statsmodels OLS/WLS; ASHRAE Guideline 14 (``applications.md`` §3).
    """
    if target not in frame:
        raise ModelError(f"target '{target}' is not a column of the frame")
    if resolution not in G14_LIMITS:
        raise ModelError(f"resolution '{resolution}': monthly or hourly")
    y = pd.to_numeric(frame[target], errors="coerce").astype("float64")
    if y.isna().any():
        raise ModelError(f"target '{target}': no value in period {y.index[y.isna()][0]}")
    X = design_matrix(frame, drivers)
    n, k = X.shape
    if n <= k:
        raise ModelError(f"{n} periods cannot fit {k} parameters (constant + {', '.join(map(str, drivers))})")
    if weights is None:
        res = sm.OLS(y, X).fit()
    else:
        w = np.asarray(weights, dtype="float64")
        res = sm.WLS(y, X, weights=w).fit()
    fit = BaselineFit(res, list(drivers), y, resolution, None if weights is None else np.asarray(weights))
    yhat = np.asarray(res.fittedvalues)
    resid = y.to_numpy() - yhat
    p = k if p_for_g14 is None else int(p_for_g14)
    rho = lag1_autocorrelation(resid)
    cv_lim, nm_lim = G14_LIMITS[resolution]
    try:
        bp = float(het_breuschpagan(resid, X.to_numpy())[1]) if k > 1 else math.nan
    except (ValueError, np.linalg.LinAlgError):
        bp = math.nan
    cv, nb = cv_rmse(y, yhat, p=p), nmbe(y, yhat, p=p)
    fit.diagnostics = {
        "n": n, "p": k, "r2": float(res.rsquared), "adj_r2": float(res.rsquared_adj),
        "f_pvalue": float(res.f_pvalue) if k > 1 else math.nan, "durbin_watson": float(durbin_watson(resid)),
        "breusch_pagan_p": bp, "rho": rho, "n_effective": effective_n(n, rho), "cv_rmse": cv, "nmbe": nb,
        "mse": float(np.sum(resid ** 2) / (n - k)), "g14_cv_limit": cv_lim, "g14_nmbe_limit": nm_lim,
        "g14_pass": bool(cv <= cv_lim and abs(nb) <= nm_lim), "r2_ok": bool(res.rsquared >= 0.75),
    }
    return fit


def savings(fit: BaselineFit, frame: pd.DataFrame, target: str, *, confidence: float = 0.90) -> dict:
    r"""Savings of a reporting period against the baseline, with their G14 uncertainty.

    .. math::
        S = \sum_j (\hat y_j - y_j),\quad F = S / \sum_j \hat y_j,\quad
        U_S = FSU \times |S|

    with :func:`fractional_savings_uncertainty` at ``t = t_{(1+c)/2,\ n'-p}``, ``n′`` the effective
    baseline points (:func:`effective_n`), ``MSE = SSE/(n′ − p)``.

    Parameters
    ----------
    fit : BaselineFit
    frame : DataFrame
        Reporting periods: ``target`` and the fit's drivers.
    target : str
    confidence : float
        Two-sided confidence of the interval (0.90 is G14's usual 90 %; 0.68 ≈ ±1σ).

    Returns
    -------
    dict
        ``baseline``, ``actual``, ``savings`` (target unit), ``savings_fraction``, ``fsu`` (fraction),
        ``uncertainty`` (± target unit), ``low``, ``high``, ``confidence``, ``t``, ``alpha``, ``m``,
        ``n_effective``, ``significant`` (|S| > uncertainty), ``per_period`` (DataFrame: period,
        actual, baseline, savings).
    """
    if not 0 < confidence < 1:
        raise ModelError(f"confidence {confidence!r}: must be in (0, 1)")
    if target not in frame:
        raise ModelError(f"target '{target}' is not a column of the reporting frame")
    actual = pd.to_numeric(frame[target], errors="coerce").astype("float64")
    if actual.isna().any():
        raise ModelError(f"target '{target}': no value in period {actual.index[actual.isna()][0]}")
    base = fit.predict(frame)
    d = fit.diagnostics
    n, p, m = d["n"], d["p"], len(frame)
    n_eff = d["n_effective"]
    if n_eff - p <= 0:
        raise ModelError(f"effective baseline points {n_eff:.1f} ≤ parameters {p}: no savings uncertainty")
    resid = fit.y.to_numpy() - np.asarray(fit.result.fittedvalues)
    mse = float(np.sum(resid ** 2) / (n_eff - p))
    t = float(stats.t.ppf(0.5 + confidence / 2, n_eff - p))
    alpha = alpha_g14(n, fit.resolution)
    S = float(base.sum() - actual.sum())
    F = S / float(base.sum())
    fsu = fractional_savings_uncertainty(mse, n_eff, m, float(fit.y.mean()), F, t=t, alpha=alpha)
    u = fsu * abs(S) if math.isfinite(fsu) else t * alpha * math.sqrt(mse * (1 + 2 / n_eff) * m)
    per = pd.DataFrame({"actual": actual, "baseline": base, "savings": base - actual})
    per.index.name = "period"
    return {"baseline": float(base.sum()), "actual": float(actual.sum()), "savings": S, "savings_fraction": F,
            "fsu": fsu, "uncertainty": u, "low": S - u, "high": S + u, "confidence": confidence, "t": t,
            "alpha": alpha, "m": m, "n_effective": n_eff, "significant": bool(abs(S) > u),
            "per_period": per.reset_index()}


def baseline_frame(inv, *, nodes=None, temperature=None, hdd_base: float = 18.0, cdd_base: float = 26.0,
                   months: bool = False) -> pd.DataFrame:
    """One row per month of an inventory: energy and emissions (:func:`workbench.models.mechanism.process_energy`
    of ``nodes``, default the whole enterprise), the products' outputs, weather (``hdd``, ``cdd`` K·d and the
    mean ``temp_c`` from ``temperature``, a daily °C series — when None, the documented synthetic series of
    :func:`workbench.models.weather.synthetic_temperature`, flagged in ``attrs['weather']``) and the calendar
    (:func:`calendar_features`)."""
    from workbench.models.mechanism import outputs_of, process_energy
    from workbench.models.weather import monthly_degree_days, synthetic_temperature

    if nodes is None:
        nodes = [inv.boundary.enterprise]
    pe = process_energy(inv.ledger, nodes, boundary=inv.boundary)
    out = outputs_of(inv)
    temp = temperature if temperature is not None else synthetic_temperature(pe.index[0], pe.index[-1])
    w = monthly_degree_days(temp, hdd_base=hdd_base, cdd_base=cdd_base)
    missing = [p for p in pe.index if p not in w.index]
    if missing:
        raise ModelError(f"temperature series: no days in {missing[0]} (it covers {w.index.min()}..{w.index.max()})")
    f = pe.join(out).join(w).join(calendar_features(pe.index, months=months))
    f.attrs["weather"] = getattr(temp, "attrs", {}).get("assumption", "temperature series given by the caller")
    f.attrs["degree_day_bases_c"] = (hdd_base, cdd_base)
    return f
