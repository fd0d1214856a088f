"""Uncertainty of an inventory (不确定性), IPCC 2006 Guidelines Vol. 1 Ch. 3.

The uncertainty ``U`` of an estimate is half the width of its 95 % confidence interval, in percent
of the estimate (IPCC 2006 Vol. 1 Ch. 3).  Two approaches:

Approach 1 — error propagation (uncorrelated, roughly normal inputs, small U)::

    product  E = A × B × …           U_E     = sqrt(U_A² + U_B² + …)                          [%]
    sum      E = x_1 + … + x_n       U_total = sqrt((U_1·x_1)² + … + (U_n·x_n)²) / |x_1 + … + x_n|

Approach 2 — Monte Carlo: every input drawn from its distribution (normal or lognormal, the same
mean and standard deviation ``U / 1.96`` % of the value), the emissions recomputed for each draw,
and ``U = (P97.5 − P2.5) / 2 / |mean|``.  Both treat random error only, after bias removal.

How the inventory's ledger is read
----------------------------------
Every formula of the engine is a product (:mod:`workbench.accounting.engine`), so each ledger row
is ``E = constant × Π inputs`` with the inputs its method names (:data:`METHOD_INPUTS`): fuel
``FC × NCV × CC × OF × 44/12``, carbonate ``M × P × EF``, electricity and heat ``AD × EF``,
non-CO2 gas ``m × GWP``.  A *category* is a row of IPCC's Table 3.2: by default one (source, item,
gas) of the ledger.  Within a category the rows share their inputs' errors (one supplier, one
factor, one bill split by months or facilities): an input's error is fully correlated across
the category's rows; categories, and the inputs of one category, are independent.  So the
half-width of input *k* in category *c* is ``h_ck = |Σ_rows U_rk × E_r|`` and the category's
``U_c = sqrt(Σ_k h_ck²) / |E_c|`` — the product rule when all rows carry the same U's — and the
total follows the sum rule over the categories.  The Monte Carlo draws one standard-normal number
per (category, input) for all rows of the category, so the two approaches describe the same
model and agree (within sampling error) when the model is linear.

Default uncertainties
---------------------
:data:`DEFAULT_UNCERTAINTIES` holds one U per input (and optionally per category, item and basis:
a factor's ``site`` / ``default``, an activity record's data tier), each with its provenance and a
``status``: ``sourced`` (from the reference: the ±5 % for fossil-fuel activity data), ``definition``
(no uncertainty of its own by construction) or ``assumption`` (UNVERIFIED: a judgement to be
replaced by the enterprise's own figures).  :func:`uncertainty_table` adds overrides.

References
----------
IPCC (2006) 2006 IPCC Guidelines for National Greenhouse Gas Inventories, Vol. 1 General Guidance
and Reporting, Ch. 3 Uncertainties (approach 1: error propagation; approach 2: Monte Carlo;
default ±5 % for fossil-fuel activity data), as transcribed in the project reference
``applications.md`` §4 [D1–D5].  Equation numbers are not cited (UNVERIFIED there).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.accounting.engine import AccountingError

__all__ = [
    "DEFAULT_UNCERTAINTIES",
    "FACTOR_ID_COLUMNS",
    "METHOD_INPUTS",
    "Z95",
    "Approach1",
    "MonteCarlo",
    "UncertaintyDefault",
    "UncertaintyError",
    "approach1",
    "draw_factors",
    "interval_uncertainty",
    "ledger_inputs",
    "lognormal_parameters",
    "monte_carlo",
    "product_uncertainty",
    "relative_sd",
    "resolve_uncertainty",
    "sum_uncertainty",
    "uncertainty_table",
]

#: the standard-normal quantile of a two-sided 95 % interval
Z95 = 1.959963984540054


class UncertaintyError(AccountingError):
    """Uncertainty inputs that cannot be used (a negative U, an unknown distribution or method)."""


# ------------------------------------------------------------------------------ the formulas
def product_uncertainty(*u_pct):
    """Approach 1 for a product ``E = A × B × …``: ``U_E = sqrt(U_A² + U_B² + …)``.

    Parameters
    ----------
    *u_pct : float or array-like
        Uncertainty of each factor of the product: half the 95 % confidence interval, in percent of
        the factor's value.  Arrays broadcast (one U per row).

    Returns
    -------
    float or ndarray
        Uncertainty of the product, in percent.

    References
    ----------
    IPCC 2006 Guidelines, Vol. 1 Ch. 3, approach 1 (error propagation), rule for multiplication.
    """
    if not u_pct:
        return 0.0
    arrs = [np.asarray(u, dtype="float64") for u in u_pct]
    if any((a < 0).any() for a in arrs):
        raise UncertaintyError("an uncertainty is negative (U is half the 95 % interval, in %)")
    out = np.sqrt(sum(a ** 2 for a in arrs))
    return float(out) if out.ndim == 0 else out


def sum_uncertainty(values, u_pct) -> float:
    """Approach 1 for a sum ``E = x_1 + … + x_n``:
    ``U_total = sqrt((U_1·x_1)² + … + (U_n·x_n)²) / |x_1 + … + x_n|``.

    Parameters
    ----------
    values : array-like of float
        The terms ``x_i`` (any one unit, e.g. tCO2e; signed — exported energy is negative).
    u_pct : array-like of float
        Their uncertainties ``U_i`` in percent of each term.  A term with NaN uncertainty must be
        zero (it contributes nothing).

    Returns
    -------
    float
        ``U_total`` in percent of the sum; NaN when the sum is zero.

    References
    ----------
    IPCC 2006 Guidelines, Vol. 1 Ch. 3, approach 1 (error propagation), rule for addition.
    """
    x = np.asarray(values, dtype="float64")
    u = np.asarray(u_pct, dtype="float64")
    if x.shape != u.shape:
        raise UncertaintyError(f"{x.size} values but {u.size} uncertainties")
    if (u < 0).any():
        raise UncertaintyError("an uncertainty is negative (U is half the 95 % interval, in %)")
    u = np.where(np.isnan(u) & (x == 0), 0.0, u)
    total = x.sum()
    if total == 0:
        return math.nan
    return float(np.sqrt(np.sum((u * x) ** 2)) / abs(total))


def relative_sd(u_pct):
    """The relative standard deviation (fraction) of a normal input whose U is ``u_pct``:
    ``s = U / (100 × 1.96)`` (U is half the 95 % interval, ``1.96`` its standard-normal quantile)."""
    return np.asarray(u_pct, dtype="float64") / (100.0 * Z95)


def lognormal_parameters(u_pct):
    """(μ, σ) of ``ln f`` for a lognormal multiplier ``f`` with mean 1 and the standard deviation
    of the normal one, ``s`` = :func:`relative_sd`: ``σ² = ln(1 + s²)``, ``μ = −σ²/2``.

    Parameters
    ----------
    u_pct : float or array-like
        Uncertainty in percent (half the 95 % interval of the normal input with that s).

    Returns
    -------
    (ndarray, ndarray)
        μ and σ of the underlying normal distribution (dimensionless).
    """
    s = relative_sd(u_pct)
    sigma = np.sqrt(np.log1p(s ** 2))
    return -sigma ** 2 / 2, sigma


def draw_factors(z, u_pct, distribution: str = "normal"):
    """Multiplicative factors (mean 1) from standard-normal draws ``z``.

    ``normal``: ``f = 1 + s·z``; ``lognormal``: ``f = exp(μ + σ·z)`` (:func:`lognormal_parameters`),
    with ``s`` = :func:`relative_sd` of ``u_pct``.  ``z`` and ``u_pct`` broadcast.
    """
    z = np.asarray(z, dtype="float64")
    if distribution == "normal":
        return 1.0 + relative_sd(u_pct) * z
    if distribution == "lognormal":
        mu, sigma = lognormal_parameters(u_pct)
        return np.exp(mu + sigma * z)
    raise UncertaintyError(f"distribution '{distribution}' (normal or lognormal)")


def interval_uncertainty(samples, axis: int = 0) -> dict:
    """Mean, 2.5th and 97.5th percentiles and ``U = (P97.5 − P2.5) / 2 / |mean| × 100`` of Monte Carlo
    samples (approach 2), along ``axis``.  U is NaN where the mean is 0."""
    x = np.asarray(samples, dtype="float64")
    mean = x.mean(axis=axis)
    lo, hi = np.percentile(x, [2.5, 97.5], axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(mean != 0, (hi - lo) / 2 / np.abs(mean) * 100.0, np.nan)
    if np.ndim(mean) == 0:
        return {"mean": float(mean), "p2_5": float(lo), "p97_5": float(hi), "u_pct": float(u)}
    return {"mean": mean, "p2_5": lo, "p97_5": hi, "u_pct": u}


# ------------------------------------------------------------------------------ default uncertainties
@dataclass(frozen=True)
class UncertaintyDefault:
    """The uncertainty of one kind of input.

    ``input``: ``activity`` or a factor kind (``ncv``, ``carbon_content``, ``oxidation_rate``,
    ``emission_factor``, ``purity``, ``gwp``); ``category`` the item category (``fuel``,
    ``carbonate``, ``electricity``, ``heat``, ``gas``), ``item`` an item code, ``basis`` a factor's
    ``site``/``default`` or an activity record's data tier (``primary``/``secondary``/``proxy``) —
    ``*`` matches anything; an override wins, else the most specific row.  ``u_pct``: half the 95 %
    interval in % of the value; ``distribution`` ``normal`` or ``lognormal``; ``status`` ``sourced`` ·
    ``definition`` · ``assumption`` (UNVERIFIED) · ``override``; ``source`` where the figure comes from.
    """

    input: str
    u_pct: float
    source: str
    status: str
    category: str = "*"
    item: str = "*"
    basis: str = "*"
    distribution: str = "normal"

    def __post_init__(self):
        if not (isinstance(self.u_pct, (int, float)) and math.isfinite(self.u_pct) and self.u_pct >= 0):
            raise UncertaintyError(f"uncertainty of {self.key}: {self.u_pct!r} is not a percentage ≥ 0")
        if self.distribution not in ("normal", "lognormal"):
            raise UncertaintyError(f"uncertainty of {self.key}: distribution '{self.distribution}' "
                                   "(normal or lognormal)")
        if self.input not in INPUTS:
            raise UncertaintyError(f"uncertainty input '{self.input}' (one of {', '.join(INPUTS)})")

    @property
    def key(self) -> str:
        return f"{self.input}:{self.category}:{self.item}:{self.basis}"

    @property
    def verified(self) -> bool:
        return self.status in ("sourced", "definition")


#: the inputs a ledger row can have
INPUTS = ("activity", "ncv", "carbon_content", "oxidation_rate", "emission_factor", "purity", "gwp")

_IPCC = "IPCC 2006 GL Vol. 1 Ch. 3"
_ASSUMED = "assumption (UNVERIFIED): "

#: Default uncertainties with their provenance.  Only the fossil-fuel activity figure is sourced;
#: every ``assumption`` is a placeholder the enterprise should replace (``uncertainty_table(overrides)``).
DEFAULT_UNCERTAINTIES: tuple = (
    UncertaintyDefault("activity", 5.0, f"{_IPCC}: default for fossil-fuel activity data where nothing better "
                       "is known, ±5 % (95 % CI 0.95–1.05 × the estimate) [applications.md §4, D5]",
                       "sourced", category="fuel"),
    UncertaintyDefault("activity", 5.0, _ASSUMED + "the IPCC ±5 % fossil-fuel activity default applied by "
                       "analogy to metered or billed quantities (electricity, heat, carbonates, gases)", "assumption"),
    UncertaintyDefault("ncv", 5.0, _ASSUMED + "published default net calorific value", "assumption"),
    UncertaintyDefault("ncv", 2.0, _ASSUMED + "site-measured net calorific value (laboratory report)",
                       "assumption", basis="site"),
    UncertaintyDefault("carbon_content", 5.0, _ASSUMED + "published default carbon content (the reference has "
                       "no default for coal carbon content)", "assumption"),
    UncertaintyDefault("carbon_content", 2.0, _ASSUMED + "site-measured carbon content", "assumption", basis="site"),
    UncertaintyDefault("oxidation_rate", 2.0, _ASSUMED + "carbon oxidation rate", "assumption"),
    UncertaintyDefault("emission_factor", 5.0, _ASSUMED + "emission factor of a fuel", "assumption",
                       category="fuel"),
    UncertaintyDefault("emission_factor", 10.0, _ASSUMED + "grid average emission factor (the reference has no "
                       "uncertainty for grid factors)", "assumption", category="electricity"),
    UncertaintyDefault("emission_factor", 10.0, _ASSUMED + "heat emission factor (default 0.11 tCO2/GJ)",
                       "assumption", category="heat"),
    UncertaintyDefault("emission_factor", 0.0, "stoichiometry: tCO2 per t of carbonate is the ratio of molar "
                       "masses; the carbonate's purity carries the uncertainty", "definition", category="carbonate"),
    UncertaintyDefault("emission_factor", 5.0, _ASSUMED + "site-measured emission factor", "assumption", basis="site"),
    UncertaintyDefault("purity", 2.0, _ASSUMED + "carbonate purity from a laboratory assay", "assumption"),
    UncertaintyDefault("purity", 5.0, _ASSUMED + "carbonate purity not given (100 % assumed)", "assumption",
                       basis="default"),
    UncertaintyDefault("gwp", 0.0, "definition: the GWP values are fixed by the reporting rules (the chosen "
                       "IPCC assessment report), not a measured input", "definition"),
)

TABLE_COLUMNS = ["key", "input", "category", "item", "basis", "u_pct", "distribution", "status", "verified",
                 "source", "order"]


def _parse_override(key, value, order: int) -> UncertaintyDefault:
    if isinstance(value, UncertaintyDefault):
        return value
    parts = str(key).split(":")
    if not 1 <= len(parts) <= 4 or not parts[0]:
        raise UncertaintyError(f"uncertainty override '{key}': write input[:category[:item[:basis]]], "
                               "e.g. 'activity:fuel' or 'emission_factor:electricity:grid'")
    parts += ["*"] * (4 - len(parts))
    dist, source = "normal", "user override"
    if isinstance(value, Mapping):
        u = value.get("u_pct", value.get("u"))
        dist = value.get("distribution", dist)
        source = value.get("source", source)
    elif isinstance(value, (tuple, list)):
        u, dist = value[0], (value[1] if len(value) > 1 else dist)
    else:
        u = value
    try:
        u = float(u)
    except (TypeError, ValueError):
        raise UncertaintyError(f"uncertainty override '{key}': {u!r} is not a number of percent") from None
    return UncertaintyDefault(parts[0], u, source, "override", category=parts[1] or "*", item=parts[2] or "*",
                              basis=parts[3] or "*", distribution=dist)


def uncertainty_table(overrides=None, *, defaults=DEFAULT_UNCERTAINTIES) -> pd.DataFrame:
    """The uncertainty table: ``defaults`` then ``overrides`` (an override wins over every default it matches).

    Parameters
    ----------
    overrides : mapping or iterable, optional
        ``{"input[:category[:item[:basis]]]": U}`` with U in percent, or ``(U, distribution)``, or
        ``{"u_pct": U, "distribution": …, "source": …}``; or :class:`UncertaintyDefault` objects.
        E.g. ``{"activity:electricity": 1.0, "emission_factor:electricity:grid": (5, "lognormal")}``.
    defaults : iterable of UncertaintyDefault
        Default: :data:`DEFAULT_UNCERTAINTIES`.

    Returns
    -------
    DataFrame
        One row per entry (:data:`TABLE_COLUMNS`), ``order`` its precedence among equals.
    """
    rows = list(defaults)
    if overrides is not None:
        items = overrides.items() if isinstance(overrides, Mapping) else ((None, o) for o in overrides)
        for k, v in items:
            if k is None and not isinstance(v, UncertaintyDefault):
                raise UncertaintyError(f"uncertainty override {v!r}: give a mapping key → U or "
                                       "UncertaintyDefault objects")
            rows.append(_parse_override(k, v, len(rows)))
    t = pd.DataFrame([{"key": r.key, "input": r.input, "category": r.category, "item": r.item, "basis": r.basis,
                       "u_pct": float(r.u_pct), "distribution": r.distribution, "status": r.status,
                       "verified": r.verified, "source": r.source} for r in rows])
    t["order"] = np.arange(len(t))
    return t[TABLE_COLUMNS]


def resolve_uncertainty(table: pd.DataFrame, input: str, category: str = "*", item: str = "*",
                        basis: str = "*") -> pd.Series:
    """The row of ``table`` for one input: an override before any default, then the most specific match
    (item > category > basis), then the later row.  Raises :class:`UncertaintyError` when nothing matches."""
    t = table[table["input"] == input]
    ok = ((t["category"].isin(["*", category])) & (t["item"].isin(["*", item])) & (t["basis"].isin(["*", basis])))
    t = t[ok]
    if t.empty:
        raise UncertaintyError(f"no uncertainty for {input} of {category} {item} ({basis}): add one to the table")
    score = ((t["status"] == "override") * 8 + (t["item"] != "*") * 4 + (t["category"] != "*") * 2
             + (t["basis"] != "*") * 1)
    best = t.assign(_s=score.to_numpy()).sort_values(["_s", "order"]).iloc[-1]
    return best.drop(labels="_s")


# ------------------------------------------------------------------------------ the ledger's inputs
#: inputs of each method of the engine (:mod:`workbench.accounting.engine`)
METHOD_INPUTS = {
    "FC×NCV×CC×OF×44/12": ("activity", "ncv", "carbon_content", "oxidation_rate"),
    "FC×NCV×EF": ("activity", "ncv", "emission_factor"),
    "FC×EF": ("activity", "emission_factor"),
    "M×P×EF": ("activity", "purity", "emission_factor"),
    "AD×EF": ("activity", "emission_factor"),
    "m×GWP": ("activity", "gwp"),
}

#: the ledger column naming the factor behind each input
FACTOR_ID_COLUMNS = {"ncv": "ncv_factor_id", "carbon_content": "carbon_content_factor_id",
                     "oxidation_rate": "oxidation_rate_factor_id", "emission_factor": "emission_factor_id",
                     "gwp": "gwp_factor_id"}

DEFAULT_CATEGORY_BY = ("source", "item", "gas")

INPUT_COLUMNS = ["row", "category_key", "input", "category", "item", "basis", "u_pct", "distribution", "status",
                 "verified", "source", "tco2e"]


def _item_categories(ledger: pd.DataFrame, library) -> np.ndarray:
    if "category" in ledger:
        return ledger["category"].astype(str).to_numpy()
    if library is None:
        from workbench.core.factors import default_library

        library = default_library()
    cats = {}
    for it in pd.unique(ledger["item"].astype(str)):
        try:
            cats[it] = library.category(it)
        except Exception as exc:  # noqa: BLE001 - an item the library does not know
            raise UncertaintyError(f"item '{it}' of the ledger: {exc}") from None
    return ledger["item"].astype(str).map(cats).to_numpy()


def _category_keys(ledger: pd.DataFrame, by) -> np.ndarray:
    missing = [c for c in by if c not in ledger]
    if missing:
        raise UncertaintyError(f"the ledger has no column(s) {missing} to form categories")
    parts = [ledger[c].astype(str).to_numpy() for c in by]
    out = parts[0].astype(object)
    for p in parts[1:]:
        out = out + "|" + p
    return out


def ledger_inputs(ledger: pd.DataFrame, table: pd.DataFrame | None = None, *, library=None,
                  category_by=DEFAULT_CATEGORY_BY, distribution: str | None = None) -> pd.DataFrame:
    """One row per (ledger row, input) with the uncertainty that applies to it.

    Parameters
    ----------
    ledger : DataFrame
        The engine's ledger (:func:`workbench.accounting.account`): ``method``, ``item``, ``tco2e``, the
        ``*_factor_id`` columns, ``data_tier`` and ``notes`` are read; a ``category`` column (item
        category) is used when present, else the factor library's.
    table : DataFrame, optional
        :func:`uncertainty_table` (default: the defaults alone).
    category_by : tuple of str
        Ledger columns whose values form a category (default: source, item, gas).
    distribution : str, optional
        ``normal`` or ``lognormal`` for every input, overriding the table's.

    Returns
    -------
    DataFrame
        :data:`INPUT_COLUMNS`: ``row`` the ledger row's position, ``category_key``, ``input``, the
        matched ``category``/``item``/``basis``, ``u_pct`` (%), ``distribution``, ``status``,
        ``verified``, ``source``, and the row's ``tco2e``.
    """
    table = uncertainty_table() if table is None else table
    if distribution not in (None, "normal", "lognormal"):
        raise UncertaintyError(f"distribution '{distribution}' (normal or lognormal)")
    if ledger.empty:
        return pd.DataFrame(columns=INPUT_COLUMNS)
    led = ledger.reset_index(drop=True)
    methods = led["method"].astype(str).to_numpy()
    unknown = sorted(set(methods) - set(METHOD_INPUTS))
    if unknown:
        rid = led.loc[led["method"].astype(str) == unknown[0], "record_id"].iloc[0] if "record_id" in led else "?"
        raise UncertaintyError(f"record {rid}: method '{unknown[0]}' has no uncertainty model "
                               f"(known: {', '.join(METHOD_INPUTS)})")
    cats = _item_categories(led, library)
    keys = _category_keys(led, category_by)
    items = led["item"].astype(str).to_numpy()
    tier = led["data_tier"].fillna("").astype(str).to_numpy() if "data_tier" in led else np.full(len(led), "")
    notes = led["notes"].fillna("").astype(str).to_numpy() if "notes" in led else np.full(len(led), "")
    tco2e = led["tco2e"].to_numpy(dtype="float64")
    rows = []
    cache: dict = {}
    for i, m in enumerate(methods):
        for inp in METHOD_INPUTS[m]:
            if inp == "activity":
                basis = tier[i] or "*"
            elif inp == "purity":
                basis = "default" if "purity not given" in notes[i] else "site"
            else:
                fid = str(led.at[i, FACTOR_ID_COLUMNS[inp]]) if FACTOR_ID_COLUMNS[inp] in led else ""
                basis = "site" if fid.startswith("site:") else "default"
            ck = (inp, cats[i], items[i], basis)
            if ck not in cache:
                cache[ck] = resolve_uncertainty(table, *ck)
            r = cache[ck]
            rows.append((i, keys[i], inp, cats[i], items[i], basis, float(r["u_pct"]),
                         distribution or r["distribution"], r["status"], bool(r["verified"]), r["source"], tco2e[i]))
    return pd.DataFrame(rows, columns=INPUT_COLUMNS)


# ------------------------------------------------------------------------------ approach 1
@dataclass
class Approach1:
    """IPCC approach 1 over a ledger.

    ``categories``: one row per category — ``category_key``, the ``category_by`` columns, ``tco2e``
    (signed sum), ``u_<input>_pct`` per input (its half-width ÷ |E_c|; NaN where the category has
    no such input), ``u_activity_pct``, ``u_factors_pct`` (the factors combined), ``u_pct`` (the
    category), ``variance_share`` (its share of the total's variance).  ``by_source``: tco2e and
    ``u_pct`` per source (the sum rule over its categories).  ``total_tco2e``, ``u_pct``, and
    ``half_width_tco2e`` (= U × |total| / 100).
    """

    categories: pd.DataFrame
    by_source: pd.DataFrame
    total_tco2e: float
    u_pct: float
    half_width_tco2e: float
    inputs: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)


def _half_widths(inputs: pd.DataFrame) -> pd.DataFrame:
    """h_ck = |Σ_rows U_rk/100 × E_r| per (category, input): the input's error fully correlated within a category."""
    x = inputs.assign(h=inputs["u_pct"] / 100.0 * inputs["tco2e"])
    return x.groupby(["category_key", "input"], sort=False)["h"].sum().abs().unstack("input")


def approach1(ledger: pd.DataFrame, table: pd.DataFrame | None = None, *, library=None,
              category_by=DEFAULT_CATEGORY_BY, inputs: pd.DataFrame | None = None) -> Approach1:
    """IPCC approach 1 (error propagation) over an inventory's ledger.

    Each category's ``U_c`` is the product rule over its inputs (:func:`product_uncertainty`) with
    ``U_ck = |Σ_rows U_rk × E_r| / |E_c|`` (an input's error fully correlated across the category's
    rows; equal to the inputs' U's when all rows share them); the total is the sum rule over the
    categories (:func:`sum_uncertainty`), and so is each source.

    Parameters
    ----------
    ledger : DataFrame
        The engine's ledger (tCO2e signed; see :func:`ledger_inputs` for the columns read).
    table : DataFrame, optional
        :func:`uncertainty_table`.
    category_by : tuple of str
        Columns forming a category (default source, item, gas).
    inputs : DataFrame, optional
        :func:`ledger_inputs` of this ledger, when already computed.

    Returns
    -------
    Approach1

    References
    ----------
    IPCC 2006 Guidelines, Vol. 1 Ch. 3, approach 1 (error propagation, Table 3.2 layout).
    """
    inputs = ledger_inputs(ledger, table, library=library, category_by=category_by) if inputs is None else inputs
    led = ledger.reset_index(drop=True)
    keys = _category_keys(led, category_by) if len(led) else np.array([], dtype=object)
    e = pd.Series(led["tco2e"].to_numpy(dtype="float64") if len(led) else [], index=keys, dtype="float64")
    e_c = e.groupby(level=0, sort=False).sum()
    first = led.assign(category_key=keys).drop_duplicates("category_key").set_index("category_key")
    cats = pd.DataFrame(index=e_c.index)
    for c in category_by:
        cats[c] = first[c].reindex(e_c.index).astype(str)
    cats["tco2e"] = e_c
    h = _half_widths(inputs).reindex(e_c.index) if len(inputs) else pd.DataFrame(index=e_c.index)
    denom = e_c.abs().replace(0, np.nan)
    for inp in INPUTS:
        if inp in h:
            cats[f"u_{inp}_pct"] = 100.0 * h[inp] / denom
    factor_cols = [f"u_{i}_pct" for i in INPUTS[1:] if f"u_{i}_pct" in cats]
    ua = cats["u_activity_pct"] if "u_activity_pct" in cats else pd.Series(np.nan, index=cats.index)
    cats["u_activity_pct"] = ua
    cats["u_factors_pct"] = (product_uncertainty(*[cats[c].fillna(0).to_numpy() for c in factor_cols])
                             if factor_cols else 0.0)
    present = [c for c in ["u_activity_pct", *factor_cols]]
    cats["u_pct"] = product_uncertainty(*[cats[c].fillna(0).to_numpy() for c in present])
    cats.loc[denom.isna(), "u_pct"] = np.nan
    total = float(e_c.sum()) if len(e_c) else 0.0
    u_total = sum_uncertainty(cats["tco2e"].to_numpy(), cats["u_pct"].to_numpy()) if len(cats) else math.nan
    var = (cats["u_pct"].fillna(0) * cats["tco2e"]) ** 2
    cats["variance_share"] = var / var.sum() if var.sum() > 0 else 0.0
    src = []
    if "source" in cats:
        for s, g in cats.groupby("source", sort=False):
            t = float(g["tco2e"].sum())
            u = sum_uncertainty(g["tco2e"].to_numpy(), g["u_pct"].to_numpy())
            src.append({"source": s, "tco2e": t, "u_pct": u})
    by_source = pd.DataFrame(src, columns=["source", "tco2e", "u_pct"])
    half = u_total * abs(total) / 100.0 if not math.isnan(u_total) else math.nan
    order = ["category_key", *category_by, "tco2e", "u_activity_pct", *factor_cols, "u_factors_pct", "u_pct",
             "variance_share"]
    cats = cats.reset_index(names="category_key")[order]
    return Approach1(cats, by_source, total, u_total, half, inputs)


# ------------------------------------------------------------------------------ approach 2
@dataclass
class MonteCarlo:
    """IPCC approach 2 over a ledger: ``n`` draws with ``seed``.

    ``total``: {mean, p2_5, p97_5, u_pct} of the total (tCO2e); ``by_source`` and ``by_facility``:
    the same per source / facility (DataFrames); ``cube``: an :class:`xarray.Dataset` over the
    ledger's ``dims`` (period × facility × source) with ``mean``, ``p2_5``, ``p97_5``, ``u_pct`` and
    the ledger's own ``tco2e``; ``samples``: the n totals (for a histogram); ``distribution`` the
    one used for every input, or ``"table"`` when each input took its table row's.
    """

    n: int
    seed: int
    distribution: str
    total: dict
    by_source: pd.DataFrame
    by_facility: pd.DataFrame
    cube: object
    samples: np.ndarray = field(repr=False)
    total_tco2e: float = 0.0


def _indicator(codes: np.ndarray, n_cells: int):
    from scipy import sparse

    r = len(codes)
    return sparse.csr_matrix((np.ones(r), (np.arange(r), codes)), shape=(r, n_cells))


def monte_carlo(ledger: pd.DataFrame, table: pd.DataFrame | None = None, *, n: int = 10_000, seed: int = 20251,
                distribution: str | None = None, library=None, category_by=DEFAULT_CATEGORY_BY,
                dims=("period", "facility", "source"), inputs: pd.DataFrame | None = None,
                block: int = 2_000_000) -> MonteCarlo:
    """IPCC approach 2: Monte Carlo over an inventory's ledger, aggregated into its cube.

    For each draw, every (category, input) gets one standard-normal number ``z`` (numpy's
    ``default_rng(seed)``); each row's input factor is :func:`draw_factors` of ``z`` with the row's
    U and distribution, so an input's error is shared by the rows of its category (as in
    :func:`approach1`); the row's emission is ``E_r × Π_k f_rk``; rows are summed into the cube's
    cells, the sources, the facilities and the total, whose mean, 2.5th/97.5th percentiles and
    ``U = (P97.5 − P2.5)/2/|mean|`` (:func:`interval_uncertainty`) are reported.

    Parameters
    ----------
    ledger : DataFrame
        The engine's ledger (tCO2e signed).
    table : DataFrame, optional
        :func:`uncertainty_table`.
    n : int
        Number of draws (≥ 100).
    seed : int
        Seed of the generator: the same seed gives the same result.
    distribution : str, optional
        ``normal`` or ``lognormal`` for every input (default: each input's row of the table).
    dims : tuple of str
        Ledger columns of the cube (default period × facility × source).
    block : int
        Upper bound of draws × ledger rows held at once (memory).

    Returns
    -------
    MonteCarlo

    References
    ----------
    IPCC 2006 Guidelines, Vol. 1 Ch. 3, approach 2 (Monte Carlo).
    """
    import xarray as xr

    if not isinstance(n, (int, np.integer)) or n < 100:
        raise UncertaintyError(f"Monte Carlo needs at least 100 draws (got {n!r})")
    inputs = ledger_inputs(ledger, table, library=library, category_by=category_by,
                           distribution=distribution) if inputs is None else inputs
    led = ledger.reset_index(drop=True)
    R = len(led)
    e = led["tco2e"].to_numpy(dtype="float64") if R else np.zeros(0)
    groups = inputs["category_key"].astype(str) + "#" + inputs["input"].astype(str)
    gcode, guniq = pd.factorize(groups)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, len(guniq)))
    # cells of the cube and the marginals
    dims = [d for d in dims if d in led]
    codes, levels = [], []
    for d in dims:
        c, u = pd.factorize(led[d].astype(str), sort=True)
        codes.append(c)
        levels.append(list(u))
    shape = tuple(len(u) for u in levels)
    flat = np.ravel_multi_index(codes, shape) if dims and R else np.zeros(R, dtype=np.int64)
    n_cells = int(np.prod(shape)) if dims else 1
    cell_m = _indicator(flat, n_cells)
    src_c, src_u = pd.factorize(led["source"].astype(str)) if R else (np.zeros(0, dtype=int), [])
    if R and "facility" in led:
        fac_c, fac_u = pd.factorize(led["facility"].astype(str))
    else:
        fac_c, fac_u = np.zeros(R, dtype=int), ["–"]
    src_m, fac_m = _indicator(src_c, len(src_u)), _indicator(fac_c, len(fac_u))
    cells = np.empty((n, n_cells))
    srcs = np.empty((n, len(src_u)))
    facs = np.empty((n, len(fac_u)))
    totals = np.empty(n)
    rows_of = inputs["row"].to_numpy(dtype=np.int64)
    u_in = inputs["u_pct"].to_numpy(dtype="float64")
    dist_in = inputs["distribution"].astype(str).to_numpy()
    step = max(1, int(block // max(R, 1)))
    for a in range(0, n, step):
        b = min(n, a + step)
        m = np.ones((b - a, R))
        zz = z[a:b][:, gcode]                                   # (draws, inputs)
        for dist in np.unique(dist_in):
            sel = dist_in == dist
            # a row's inputs multiply: E_r × Π_k f_rk
            _multiply_rows(m, rows_of[sel], draw_factors(zz[:, sel], u_in[sel], dist))
        em = m * e
        cells[a:b] = (cell_m.T @ em.T).T
        srcs[a:b] = (src_m.T @ em.T).T
        facs[a:b] = (fac_m.T @ em.T).T
        totals[a:b] = em.sum(axis=1)
    tot = interval_uncertainty(totals)

    def marginal(arr, names, col):
        st = interval_uncertainty(arr)
        ledger_sum = {}
        if R:
            ledger_sum = led.groupby(led[col].astype(str))["tco2e"].sum().to_dict()
        return pd.DataFrame({col: list(names), "tco2e": [float(ledger_sum.get(x, 0.0)) for x in names],
                             "mean": st["mean"], "p2_5": st["p2_5"], "p97_5": st["p97_5"], "u_pct": st["u_pct"]})

    by_source = marginal(srcs, src_u, "source")
    by_facility = marginal(facs, fac_u, "facility") if "facility" in led else pd.DataFrame()
    st = interval_uncertainty(cells)
    own = np.zeros(n_cells)
    np.add.at(own, flat, e)
    coords = {d: lv for d, lv in zip(dims, levels)}
    cube = xr.Dataset({k: (dims, np.asarray(v).reshape(shape)) for k, v in
                       (("tco2e", own), ("mean", st["mean"]), ("p2_5", st["p2_5"]), ("p97_5", st["p97_5"]),
                        ("u_pct", st["u_pct"]))}, coords=coords)
    cube.attrs.update(n=int(n), seed=int(seed), method="IPCC 2006 Vol. 1 Ch. 3 approach 2 (Monte Carlo)")
    return MonteCarlo(int(n), int(seed), distribution or "table", tot, by_source, by_facility, cube, totals,
                      float(e.sum()))


def _multiply_rows(m: np.ndarray, rows: np.ndarray, f: np.ndarray) -> None:
    """``m[:, rows[j]] *= f[:, j]`` for every j, rows repeating (a row with several inputs)."""
    order = np.argsort(rows, kind="stable")
    rows, f = rows[order], f[:, order]
    # one pass per repetition rank: within a rank every row appears once, so fancy indexing is safe
    rank = np.zeros(len(rows), dtype=np.int64)
    if len(rows) > 1:
        same = rows[1:] == rows[:-1]
        run = np.cumsum(np.concatenate([[0], ~same]))
        start = np.flatnonzero(np.concatenate([[True], ~same]))
        rank = np.arange(len(rows)) - start[run]
    for k in range(int(rank.max()) + 1 if len(rank) else 0):
        sel = rank == k
        m[:, rows[sel]] *= f[:, sel]
