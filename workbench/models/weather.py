"""Weather for the statistical baselines: degree-days from a daily temperature series, and a
documented synthetic series for the demo's location (the demo has no weather data).

Degree-days (per day, from the daily mean temperature ``T`` in °C):

.. math::  HDD = \\max(0, T_{b,h} - T),\\qquad CDD = \\max(0, T - T_{b,c})

Base temperatures: ``18 °C`` for heating and ``26 °C`` for cooling — the bases of China's
building-climate statistics (HDD18 / CDD26, JGJ 134 / GB 50176 usage); both are parameters, and
ASHRAE practice (18.3 °C / 65 °F for both) can be passed instead.  Monthly figures are the sums
of the days of the month.

The synthetic series (:func:`synthetic_temperature`) is an **assumption**, not an observation:
a sinusoid through Huzhou's climate normals as commonly quoted (annual mean ≈ 16 °C, January
≈ 4 °C, July ≈ 28.5 °C: amplitude 12.25 °C, warmest day ≈ 20 July) plus AR(1) day-to-day
weather (φ = 0.7, σ = 2 °C), from a fixed seed.  Pass a real daily series (a station's, or a
reanalysis) for anything but the demo.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.models.mechanism import ModelError

__all__ = ["CDD_BASE_C", "HDD_BASE_C", "HUZHOU_NORMALS", "degree_days", "monthly_degree_days",
           "synthetic_temperature"]

HDD_BASE_C = 18.0
CDD_BASE_C = 26.0
#: assumption for the synthetic series: annual mean, half the July − January range (°C), day of peak
HUZHOU_NORMALS = {"mean_c": 16.25, "amplitude_c": 12.25, "peak_doy": 201, "phi": 0.7, "sigma_c": 2.0}


def degree_days(temp_c, *, hdd_base: float = HDD_BASE_C, cdd_base: float = CDD_BASE_C) -> pd.DataFrame:
    r"""Daily heating and cooling degree-days.

    .. math::  HDD_d = \max(0, T_{b,h} - T_d),\qquad CDD_d = \max(0, T_d - T_{b,c})

    Parameters
    ----------
    temp_c : Series
        Daily mean temperature ``T_d``, °C, indexed by date (a DatetimeIndex).
    hdd_base, cdd_base : float
        Base temperatures ``T_b`` of heating and cooling, °C (default 18 and 26).

    Returns
    -------
    DataFrame
        Index as ``temp_c``; ``temp_c``, ``hdd``, ``cdd`` (K·d).
    """
    t = pd.to_numeric(pd.Series(temp_c), errors="coerce")
    if t.isna().any():
        bad = t.index[t.isna()][0]
        raise ModelError(f"temperature series: no value on {bad} (fill or drop the day first)")
    return pd.DataFrame({"temp_c": t, "hdd": np.maximum(0.0, hdd_base - t), "cdd": np.maximum(0.0, t - cdd_base)})


def monthly_degree_days(temp_c, *, hdd_base: float = HDD_BASE_C, cdd_base: float = CDD_BASE_C) -> pd.DataFrame:
    """Monthly sums of :func:`degree_days` (index ``period`` ``YYYY-MM``; ``hdd``, ``cdd`` in K·d,
    ``temp_c`` the monthly mean °C, ``weather_days`` with data)."""
    d = degree_days(temp_c, hdd_base=hdd_base, cdd_base=cdd_base)
    idx = pd.DatetimeIndex(d.index)
    g = d.groupby(idx.to_period("M").astype(str))
    out = pd.DataFrame({"temp_c": g["temp_c"].mean(), "hdd": g["hdd"].sum(), "cdd": g["cdd"].sum(),
                        "weather_days": g["temp_c"].count()})
    out.index.name = "period"
    return out


def synthetic_temperature(start: str, end: str, *, seed: int = 20251, normals: dict | None = None) -> pd.Series:
    r"""A synthetic daily mean temperature for the demo's location (Huzhou, Zhejiang) — an assumption.

    .. math::
        T_d = \bar T + A \cos\!\big(2\pi (d - d_{peak}) / 365.25\big) + \varepsilon_d,\qquad
        \varepsilon_d = \phi\, \varepsilon_{d-1} + \sigma \sqrt{1 - \phi^2}\, z_d

    Parameters
    ----------
    start, end : str
        First and last day (``YYYY-MM-DD``, or months ``YYYY-MM``: whole months).
    seed : int
        Random seed (same seed → same series).
    normals : dict, optional
        ``mean_c``, ``amplitude_c``, ``peak_doy``, ``phi``, ``sigma_c`` (default
        :data:`HUZHOU_NORMALS`).

    Returns
    -------
    Series
        °C, daily DatetimeIndex, name ``temp_c``; ``attrs['assumption']`` says what it is.
    """
    n = {**HUZHOU_NORMALS, **(normals or {})}
    lo = pd.Period(start, "D").start_time if len(start) > 7 else pd.Period(start, "M").start_time
    hi = pd.Period(end, "D").start_time if len(end) > 7 else pd.Period(end, "M").end_time.normalize()
    days = pd.date_range(lo, hi, freq="D")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(len(days))
    eps = np.empty(len(days))
    phi, sig = float(n["phi"]), float(n["sigma_c"])
    prev = 0.0
    for i, zi in enumerate(z):
        prev = phi * prev + sig * np.sqrt(1 - phi * phi) * zi
        eps[i] = prev
    doy = days.day_of_year.to_numpy()
    t = n["mean_c"] + n["amplitude_c"] * np.cos(2 * np.pi * (doy - n["peak_doy"]) / 365.25) + eps
    s = pd.Series(t, index=days, name="temp_c")
    s.attrs["assumption"] = ("synthetic daily mean temperature for Huzhou (workbench.models.weather."
                             f"synthetic_temperature, seed {seed}): climate-normal sinusoid + AR(1) noise, not observed")
    return s
