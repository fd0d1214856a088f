"""The 碳效码 formulas (Zhejiang enterprise carbon-efficiency grading), as pure vectorised functions.

Method 规上工业企业碳效等级评价方法 [E1], as the reference files record it
(``/work/shared/reference/applications.md`` §5, ``accounting-facts.md`` "Carbon-efficiency grading")::

    L      = (E − E_avoided) / VA                      tCO2/万元, same period             (碳效值)
    level  = 低碳 if L ≤ 0.6 · 中碳 if 0.6 < L ≤ 2.0 · 高碳 if L > 2.0
    L_ind  = Σ(E − E_avoided) / Σ VA  over the industry's enterprises, same period  (aggregate ratio)
    K      = L / L_ind
    grade  = 1 if K ≤ 0.6 · 2 if 0.6 < K ≤ 0.8 · 3 if 0.8 < K ≤ 1.2 · 4 if 1.2 < K ≤ 2.0 · 5 if K > 2.0

E is the CO2 from the enterprise's total energy use (fuel combustion, purchased electricity and
heat), VA its value added by the income method (收入法), E_avoided the CO2 of its own zero-carbon
power (hydro, wind, PV) and sinks, deducted.  The thresholds are the ones in the reference; the
1.2 boundary was read from an OCR'd source and the provincial standard DB33/T 1347—2023's own
thresholds are UNVERIFIED (the scheme's provenance says so).

Every function takes and returns arrays; none guesses: a ratio whose denominator is not a finite
positive number is NaN, and a NaN classifies as nothing.  Intervals are closed on the right, as
the method states them; a value within :data:`BOUNDARY_RTOL` (relative) of a boundary is taken to
be on it, so ``0.6`` computed as ``0.3 / 0.5`` grades like ``0.6`` typed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.accounting.efficiency import carbon_efficiency

__all__ = [
    "BOUNDARY_RTOL",
    "GRADE_BOUNDS",
    "LEVELS",
    "LEVEL_BOUNDS",
    "VA_STATUS",
    "aggregate_ratio",
    "carbon_level",
    "classify",
    "grade_from_k",
    "k_value",
    "percentile_grade",
    "unit_value_added_emissions",
    "value_added_status",
]

#: relative distance within which a value counts as on a boundary (floating-point noise, not policy)
BOUNDARY_RTOL = 1e-12
#: L boundaries of the carbon-efficiency levels, tCO2/万元 [E1]
LEVEL_BOUNDS = (0.6, 2.0)
#: K boundaries of grades 1–5 [E1] (1.2 read from an OCR'd source; DB33/T 1347 thresholds UNVERIFIED)
GRADE_BOUNDS = (0.6, 0.8, 1.2, 2.0)
#: level codes in order of L, with their names
LEVELS = (("low", "低碳", "low carbon"), ("medium", "中碳", "medium carbon"), ("high", "高碳", "high carbon"))
#: value-added states: ``ok`` is the only one that is graded
VA_STATUS = ("ok", "value_added_missing", "value_added_zero", "value_added_negative")


def unit_value_added_emissions(co2, value_added, avoided=0.0, value_added_unit: str = "万元"):
    """Carbon-efficiency value L (单位增加值碳排放量, 碳效值) of an enterprise or an industry.

    .. math:: L = \\frac{E - E_{avoided}}{VA}

    Parameters
    ----------
    co2 : array-like of float
        E, CO2 from total energy use in the period [tCO2].
    value_added : array-like of float
        VA, value added of the same period (income method) [``value_added_unit``].
    avoided : array-like of float or float, default 0
        E_avoided, CO2 avoided by own zero-carbon power and sinks, deducted [tCO2].
    value_added_unit : str, default ``"万元"``
        Currency unit of ``value_added`` (pint, :mod:`workbench.core.units`).

    Returns
    -------
    numpy.ndarray of float
        L [tCO2/万元]; NaN where VA is not a finite positive number (never a guess).

    References
    ----------
    .. [E1] 规上工业企业碳效等级评价方法 (as recorded in ``applications.md`` §5).
    """
    e = np.asarray(co2, dtype="float64") - np.asarray(avoided, dtype="float64")
    va = np.asarray(value_added, dtype="float64")
    return carbon_efficiency(e, np.where(np.isfinite(va), va, np.nan), value_added_unit)


def value_added_status(value_added) -> np.ndarray:
    """Why a value added can or cannot carry a grade.

    Parameters
    ----------
    value_added : array-like of float
        Value added of the period [万元]; NaN or None when not reported.

    Returns
    -------
    numpy.ndarray of str
        ``ok`` (finite, > 0) · ``value_added_missing`` (NaN, ±inf) · ``value_added_zero`` ·
        ``value_added_negative`` — only ``ok`` is graded (:data:`VA_STATUS`).
    """
    va = pd.to_numeric(pd.Series(np.asarray(value_added, dtype=object)), errors="coerce").to_numpy(dtype="float64")
    out = np.full(va.shape, "value_added_missing", dtype=object)
    fin = np.isfinite(va)
    out[fin & (va > 0)] = "ok"
    out[fin & (va == 0)] = "value_added_zero"
    out[fin & (va < 0)] = "value_added_negative"
    return out


def classify(x, bounds) -> np.ndarray:
    """Class index of each value in intervals closed on the right.

    Intervals ``(-inf, b0], (b0, b1], …, (b_n-1, +inf)`` get indices ``0 … n``; a value within
    :data:`BOUNDARY_RTOL` of a boundary is on it (so in the lower class).

    Parameters
    ----------
    x : array-like of float
        Values to classify (L or K) [dimensionless or tCO2/万元, as the bounds].
    bounds : sequence of float
        Strictly increasing boundaries, same unit as ``x``.

    Returns
    -------
    numpy.ndarray of int
        Class index 0 … len(bounds); -1 where ``x`` is NaN.
    """
    b = np.asarray(bounds, dtype="float64")
    if b.ndim != 1 or (np.diff(b) <= 0).any():
        raise ValueError(f"bounds must be strictly increasing, got {tuple(bounds)}")
    v = np.asarray(x, dtype="float64").copy()
    for bound in b:     # snap floating-point noise onto the boundary
        v[np.abs(v - bound) <= BOUNDARY_RTOL * abs(bound)] = bound
    idx = np.searchsorted(b, v, side="left")     # number of bounds strictly below v
    return np.where(np.isnan(v), -1, idx)


def carbon_level(l_value, bounds=LEVEL_BOUNDS) -> np.ndarray:
    """Carbon-efficiency level by L (碳效等级 by 碳效值).

    ``low`` (低碳) if L ≤ 0.6 · ``medium`` (中碳) if 0.6 < L ≤ 2.0 · ``high`` (高碳) if L > 2.0.

    Parameters
    ----------
    l_value : array-like of float
        L [tCO2/万元].
    bounds : (float, float), default :data:`LEVEL_BOUNDS`
        The two boundaries [tCO2/万元] (the provincial standard adjusts them yearly).

    Returns
    -------
    numpy.ndarray of str
        ``low``/``medium``/``high``; ``""`` where L is NaN.

    References
    ----------
    .. [E1] 规上工业企业碳效等级评价方法 (``applications.md`` §5).
    """
    codes = np.array([c for c, _, _ in LEVELS] + [""], dtype=object)
    if len(bounds) != len(LEVELS) - 1:
        raise ValueError(f"level bounds must be {len(LEVELS) - 1} values, got {tuple(bounds)}")
    return codes[classify(l_value, bounds)]      # -1 → the trailing ""


def aggregate_ratio(co2, value_added, groups, avoided=0.0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The industry benchmark L_ind: the group's CO2 over the group's value added (aggregate ratio).

    .. math:: L_{ind} = \\frac{\\sum_i (E_i - E_{avoided,i})}{\\sum_i VA_i}

    over the enterprises ``i`` of each group (industry × region × period) — not the mean of their
    L, so an enterprise weighs by its value added.

    Parameters
    ----------
    co2 : array-like of float
        E per enterprise [tCO2].
    value_added : array-like of float
        VA per enterprise [万元]; rows with NaN do not count (pass only the gradable enterprises).
    groups : array-like, or DataFrame / dict of array-likes
        The group key of each row (a frame or dict for several keys, named by its columns).
    avoided : array-like of float or float, default 0
        E_avoided per enterprise [tCO2].

    Returns
    -------
    per_row : numpy.ndarray of float
        L_ind of each row's group [tCO2/万元] (NaN where the group's VA is not positive).
    n_per_row : numpy.ndarray of int
        How many enterprises the row's group counts.
    table : pandas.DataFrame
        One row per group with counted rows: the keys (a single key is column ``group``),
        ``co2_t``, ``value_added_10k_cny``, ``n``, ``benchmark_l``.
    """
    e = np.asarray(co2, dtype="float64") - np.asarray(avoided, dtype="float64")
    va = np.asarray(value_added, dtype="float64")
    keys = _keys(groups, len(va))
    counted = np.isfinite(va) & np.isfinite(e)
    codes = keys.groupby(list(keys.columns), sort=True, dropna=False).ngroup().to_numpy()
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    sum_e = np.bincount(codes[counted], weights=e[counted], minlength=n_groups)
    sum_va = np.bincount(codes[counted], weights=va[counted], minlength=n_groups)
    n = np.bincount(codes[counted], minlength=n_groups)
    bench = carbon_efficiency(sum_e, sum_va)
    table = keys.groupby(list(keys.columns), sort=True, dropna=False).head(1).copy()
    table.index = codes[table.index.to_numpy()]
    table = table.sort_index()
    table["co2_t"], table["value_added_10k_cny"], table["n"], table["benchmark_l"] = sum_e, sum_va, n, bench
    table = table[table["n"] > 0].reset_index(drop=True)
    if not len(codes):
        return np.zeros(0), np.zeros(0, dtype="int64"), table
    return np.where(n[codes] > 0, bench[codes], np.nan), n[codes], table


def k_value(l_value, benchmark):
    """K, the enterprise's carbon efficiency against its industry's (碳效比).

    .. math:: K = L / L_{ind}

    Parameters
    ----------
    l_value : array-like of float
        L of the enterprise [tCO2/万元].
    benchmark : array-like of float
        L_ind of its industry, same period [tCO2/万元].

    Returns
    -------
    numpy.ndarray of float
        K [dimensionless]; NaN where either is NaN or L_ind is not positive.
    """
    lv = np.asarray(l_value, dtype="float64")
    b = np.asarray(benchmark, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(b) & (b > 0), lv / b, np.nan)


def grade_from_k(k, bounds=GRADE_BOUNDS) -> pd.arrays.IntegerArray:
    """The 碳效码 grade 1–5 by K.

    1 if K ≤ 0.6 (high efficiency) · 2 if 0.6 < K ≤ 0.8 · 3 if 0.8 < K ≤ 1.2 (near the industry
    average) · 4 if 1.2 < K ≤ 2.0 · 5 if K > 2.0 (low efficiency).

    Parameters
    ----------
    k : array-like of float
        K [dimensionless].
    bounds : sequence of 4 float, default :data:`GRADE_BOUNDS`
        The grade boundaries (the 1.2 is from an OCR'd source; DB33/T 1347—2023's UNVERIFIED).

    Returns
    -------
    pandas.arrays.IntegerArray (Int8)
        Grade 1–5; ``<NA>`` where K is NaN — never a grade without a K.

    References
    ----------
    .. [E1] 规上工业企业碳效等级评价方法 (``applications.md`` §5).
    """
    idx = classify(k, bounds)
    return _grades(idx + 1, idx < 0)


def percentile_grade(values, groups, n_grades: int = 5) -> tuple[np.ndarray, pd.arrays.IntegerArray]:
    """Rank-based grade within each group: the share of the group at or below the value, cut into
    ``n_grades`` equal bands (an *illustrative* alternative to K, not a standard).

    .. math:: p_i = \\frac{rank_i}{n_g}, \\qquad grade_i = \\lceil n_{grades} \\cdot p_i \\rceil

    with average ranks for ties, lowest value rank 1.

    Parameters
    ----------
    values : array-like of float
        The values ranked (L) [tCO2/万元]; NaN rows are not ranked.
    groups : array-like, or DataFrame / dict of array-likes
        Group key(s) of each row.
    n_grades : int, default 5
        Number of equal bands (5: quintiles).

    Returns
    -------
    p : numpy.ndarray of float
        The percentile rank (0, 1] [dimensionless]; NaN where the value is NaN.
    grade : pandas.arrays.IntegerArray (Int8)
        1 (lowest values) … ``n_grades``; ``<NA>`` where the value is NaN.
    """
    v = pd.Series(np.asarray(values, dtype="float64"))
    keys = _keys(groups, len(v))
    g = v.groupby([keys[c] for c in keys.columns], dropna=False)
    p = (g.rank(method="average") / g.transform("count")).to_numpy(dtype="float64")
    grade = np.ceil(np.round(p * n_grades, 12))
    grade = np.clip(np.where(np.isnan(p), 1, grade), 1, n_grades)
    return p, _grades(grade, np.isnan(p))


def _keys(groups, n: int) -> pd.DataFrame:
    """Group keys as a frame (one column ``group`` for a single key), default index."""
    if isinstance(groups, pd.DataFrame):
        keys = groups.reset_index(drop=True)
    else:
        items = groups.items() if isinstance(groups, dict) else [("group", groups)]
        keys = pd.DataFrame({k: pd.Series(np.asarray(v, dtype=object), dtype=object) for k, v in items})
    if len(keys) != n:
        raise ValueError(f"{len(keys)} group keys for {n} values")
    return keys


def _grades(values, missing) -> pd.arrays.IntegerArray:
    """Int8 grades with ``<NA>`` where ``missing``."""
    v = np.asarray(values)
    m = np.asarray(missing, dtype=bool)
    return pd.arrays.IntegerArray(np.where(m, 0, v).astype("int8"), m)
