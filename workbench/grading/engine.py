"""Grading a region: every enterprise, per period, under a scheme — and what a page, a notebook or a
reviewer needs from it (distribution by county × industry, movements between periods, the trend of
L, one enterprise's evidence).

How a grade is made (``grade_region``)::

    region directory ─► read_region (checked) ─► region_emissions (normalize_activity + account:
    one ledger row per energy record, factor ids and provenance) ─► monthly CO2 and value added
    ─► period_inputs: per enterprise and period, Σ CO2, Σ avoided, Σ value added, months present,
       status (why it cannot be graded, else ``ok``) ─► scheme.grade (L, level, benchmark, K, grade)

Every enterprise of ``enterprises.csv`` gets a row for every period asked: one whose data cannot
carry a grade gets its reason in ``status`` and no grade (:data:`~workbench.grading.scheme.STATUS_NAMES`).
Benchmarks count only enterprises whose data can be graded.

Who sees what: the benchmark is the industry's aggregate over the whole region (as the method
defines it), so a grade does not depend on who looks.  ``visible`` (the enterprises the caller
may read — ``Principal.visible`` in the apps) filters the rows *before* anything is returned:
grades, distributions, movements and trends hold only visible enterprises; the benchmarks table
only the industries of visible enterprises (aggregates, never another enterprise's row).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.grading.errors import GradingError
from workbench.grading.formulas import aggregate_ratio, value_added_status
from workbench.grading.industries import industry_key, industry_name
from workbench.grading.periods import Period, parse_period, period_labels
from workbench.grading.region import RegionEmissions, load_region
from workbench.grading.scheme import STATUS_NAMES, GradingScheme, get_scheme

__all__ = [
    "GRADE_COLUMNS",
    "SCOPES",
    "SMALL_BENCHMARK",
    "GradeEvidence",
    "RegionGrades",
    "grade_distribution",
    "grade_emissions",
    "grade_evidence",
    "grade_region",
    "l_trend",
    "movements",
    "period_inputs",
]

#: benchmark region → the enterprises.csv column that names it
SCOPES = {"province": "region", "city": "city_code", "county": "county_code"}
#: a benchmark of fewer enterprises than this is flagged ``small_benchmark``
SMALL_BENCHMARK = 3

#: the columns of a grades table, in order
GRADE_COLUMNS = [
    "period", "enterprise_id", "name_zh", "name_en", "region", "city_code", "city_name_zh", "county_code",
    "county_name_zh", "industry_code", "industry", "industry_name_zh", "scope", "co2_t", "avoided_t",
    "value_added_10k_cny", "months", "months_expected", "energy_records", "status", "l", "level", "benchmark_l",
    "benchmark_n", "k", "grade", "flags", "scheme",
]
_ATTRS = ["name_zh", "name_en", "region", "city_code", "city_name_zh", "county_code", "county_name_zh",
          "industry_code", "industry_name_zh"]


def _periods(period) -> list[Period]:
    items = [period] if isinstance(period, (str, Period)) else list(period)
    if not items:
        raise GradingError("no period to grade")
    return list(dict.fromkeys(parse_period(p) for p in items))


def period_inputs(em: RegionEmissions, periods, *, industry_level: str = "division",
                  benchmark_scope: str = "province") -> pd.DataFrame:
    """One row per enterprise of the region and period: the scheme's input columns
    (:data:`~workbench.grading.scheme.INPUT_COLUMNS`) and the enterprise's attributes.

    Sums over the period's months: ``co2_t`` and ``avoided_t`` [tCO2], ``value_added_10k_cny``
    [万元] (NaN if no month reported one), ``months`` with a value added, ``months_expected``,
    ``energy_records``.  ``status``, first that applies: ``no_industry`` · ``value_added_missing``
    (no month reported) · ``incomplete_period`` (some months missing) · ``value_added_zero`` /
    ``value_added_negative`` (the period's sum) · ``no_energy_data`` (no energy record: zero
    emissions are not assumed) · ``ok``."""
    if benchmark_scope not in SCOPES:
        raise GradingError(f"benchmark scope '{benchmark_scope}' is not one of {', '.join(SCOPES)}")
    ps = _periods(periods)
    ent = em.data.enterprises
    ids = ent["enterprise_id"].to_numpy(dtype=object)
    n_e, n_p = len(ids), len(ps)
    monthly = em.monthly
    e_code = pd.Index(ids).get_indexer(monthly["enterprise_id"].to_numpy(dtype=object))
    month = monthly["period"].to_numpy(dtype=object)
    co2 = monthly["co2_t"].to_numpy(dtype="float64")
    avoided = monthly["avoided_t"].to_numpy(dtype="float64")
    records = monthly["energy_records"].to_numpy(dtype="float64")
    va = monthly["value_added_10k_cny"].to_numpy(dtype="float64")
    unverified = monthly["unverified_factor"].to_numpy(dtype=bool)
    has_va = ~np.isnan(va)
    size = n_e * n_p
    sums = {k: np.zeros(size) for k in ("co2_t", "avoided_t", "energy_records", "value_added_10k_cny", "months",
                                        "unverified")}
    for freq in dict.fromkeys(p.freq for p in ps):
        wanted = {p.label: i for i, p in enumerate(ps) if p.freq == freq}
        lab = pd.Series(period_labels(month, freq), dtype=object)
        p_code = lab.map(wanted).to_numpy(dtype="float64")
        sel = ~np.isnan(p_code) & (e_code >= 0)
        cell = e_code[sel] * n_p + p_code[sel].astype("int64")
        for k, v in (("co2_t", co2), ("avoided_t", avoided), ("energy_records", records),
                     ("value_added_10k_cny", np.where(has_va, va, 0.0)), ("months", has_va),
                     ("unverified", unverified)):
            sums[k] += np.bincount(cell, weights=np.asarray(v, dtype="float64")[sel], minlength=size)
    e_idx = np.repeat(np.arange(n_e), n_p)
    f = pd.DataFrame({"enterprise_id": pd.Series(np.repeat(ids, n_p), dtype=object),
                      "period": pd.Series(np.tile(np.array([p.label for p in ps], dtype=object), n_e), dtype=object)})
    f["months_expected"] = np.tile(np.array([len(p.months) for p in ps], dtype="int64"), n_e)
    f["co2_t"], f["avoided_t"] = sums["co2_t"], sums["avoided_t"]
    f["energy_records"] = sums["energy_records"].astype("int64")
    f["months"] = sums["months"].astype("int64")
    f["unverified_factor"] = sums["unverified"] > 0
    # a sum over no reported month is no value added (NaN), not zero
    f["value_added_10k_cny"] = np.where(f["months"].to_numpy() > 0, sums["value_added_10k_cny"], np.nan)
    for c in _ATTRS:
        f[c] = pd.Series(ent[c].to_numpy(dtype=object)[e_idx], dtype=object)
    f["industry"] = pd.Series(industry_key(ent["industry_code"].to_numpy(dtype=object), industry_level)[e_idx],
                              dtype=object)
    f["scope"] = pd.Series(ent[SCOPES[benchmark_scope]].to_numpy(dtype=object)[e_idx], dtype=object)
    va_state = value_added_status(f["value_added_10k_cny"].to_numpy())
    n_months, expected = f["months"].to_numpy(), f["months_expected"].to_numpy()
    status = np.where(f["energy_records"].to_numpy() == 0, "no_energy_data", "ok").astype(object)
    status = np.where(va_state != "ok", va_state, status)
    status = np.where((n_months > 0) & (n_months < expected), "incomplete_period", status)
    status = np.where(n_months == 0, "value_added_missing", status)
    status = np.where(f["industry"].to_numpy(dtype=object) == "", "no_industry", status)
    f["status"] = pd.Series(status, dtype=object)
    return f


def _flags(g: pd.DataFrame) -> np.ndarray:
    """Data-quality flags of each graded row, ``;``-joined: the status when it is not ``ok``,
    ``unverified_factor`` (a factor marked UNVERIFIED in the library was used), ``small_benchmark``
    (fewer than :data:`SMALL_BENCHMARK` enterprises in the benchmark), ``zero_carbon_deducted``."""
    st = g["status"].to_numpy(dtype=object)
    names = ("unverified_factor", "small_benchmark", "zero_carbon_deducted")
    bits = (g["unverified_factor"].to_numpy(dtype=bool).astype("int64")
            + 2 * ((st == "ok") & (g["benchmark_n"].to_numpy() < SMALL_BENCHMARK))
            + 4 * (g["avoided_t"].to_numpy() > 0))
    table = np.array([";".join(n for i, n in enumerate(names) if b >> i & 1) for b in range(8)], dtype=object)
    out = table[bits]
    bad = np.flatnonzero(st != "ok")
    if len(bad):
        out[bad] = [s + (";" + f if f else "") for s, f in zip(st[bad], out[bad])]
    return out


@dataclass
class RegionGrades:
    """Grades of a region for one or more periods under one scheme, as a caller may see them.

    ``grades``: :data:`GRADE_COLUMNS`, one row per visible enterprise and period ·
    ``benchmarks``: period, industry, industry_name_zh/en, scope, co2_t, value_added_10k_cny, n,
    benchmark_l — the aggregate ratio of every gradable enterprise of the industry (only industries
    with a visible enterprise) · ``population``: enterprises graded in the region ·
    ``files``: the input files' SHA-256."""

    periods: tuple
    scheme: GradingScheme
    grades: pd.DataFrame
    benchmarks: pd.DataFrame
    population: int
    files: dict = field(default_factory=dict)
    industry_level: str = "division"
    benchmark_scope: str = "province"

    def distribution(self, by=("county_code", "industry"), period: str | None = None) -> pd.DataFrame:
        """:func:`grade_distribution` of these grades (of ``period`` if several were graded)."""
        g = self.grades if period is None else self.grades[self.grades["period"] == parse_period(period).label]
        return grade_distribution(g, by)

    def summary(self) -> dict:
        """Counts per grade (``"1"`` … ``"5"``), ``ungraded``, ``by_status``, ``enterprises``."""
        d = grade_distribution(self.grades, ())
        row = d.iloc[0] if len(d) else pd.Series(0, index=d.columns)
        return {"periods": list(self.periods), "scheme": self.scheme.name, "enterprises": int(row["total"]),
                "population": self.population,
                "grades": {str(g): int(row[g]) for g in _grade_numbers(self.scheme)},
                "ungraded": int(row["ungraded"]),
                "by_status": {k: int(v) for k, v in self.grades["status"].value_counts().sort_index().items()}}


def _grade_numbers(scheme) -> list[int]:
    return [g for g, _, _ in scheme.grades]


def grade_emissions(em: RegionEmissions, period, scheme=None, *, visible=None, industry_level: str | None = None,
                    benchmark_scope: str | None = None) -> RegionGrades:
    """Grade a region already accounted (:func:`~workbench.grading.region.load_region`); see
    :func:`grade_region`."""
    sch = get_scheme(scheme)
    level = industry_level or sch.industry_level
    scope = benchmark_scope or sch.benchmark_scope
    ps = _periods(period)
    inputs = period_inputs(em, ps, industry_level=level, benchmark_scope=scope)
    g = sch.grade(inputs)
    g["grade"] = g["grade"].astype("Int8")
    g.loc[g["status"] != "ok", "grade"] = pd.NA          # never a grade without good data
    g["flags"] = _flags(g)
    g["scheme"] = sch.name
    gradable = g["status"].isin(["ok", "no_benchmark"]).to_numpy()
    _, _, bench = aggregate_ratio(g["co2_t"].to_numpy(), np.where(gradable, g["value_added_10k_cny"], np.nan),
                                  {"period": g["period"].to_numpy(dtype=object),
                                   "industry": g["industry"].to_numpy(dtype=object),
                                   "scope": g["scope"].to_numpy(dtype=object)}, g["avoided_t"].to_numpy())
    classes = dict(zip(em.data.enterprises["industry_code"], em.data.enterprises["industry_name_zh"]))
    names = {k: (industry_name(k, "zh", classes), industry_name(k, "en")) for k in pd.unique(g["industry"])}
    bench.insert(2, "industry_name_zh", bench["industry"].map(lambda k: names[k][0]))
    bench.insert(3, "industry_name_en", bench["industry"].map(lambda k: names[k][1]))
    population = int(g["enterprise_id"].nunique())
    if visible is not None:
        allowed = set(visible)
        g = g[g["enterprise_id"].isin(allowed)]
        seen = g[["period", "industry", "scope"]].drop_duplicates()
        bench = bench.merge(seen, on=["period", "industry", "scope"], how="inner")
    zh = {k: (v[0] if k else "") for k, v in names.items()}
    g["industry_name_zh"] = pd.Series([zh[k] for k in g["industry"].to_numpy(dtype=object)], index=g.index, dtype=object)
    g = g[GRADE_COLUMNS].sort_values(["period", "enterprise_id"], kind="stable").reset_index(drop=True)
    return RegionGrades(tuple(p.label for p in ps), sch, g, bench.reset_index(drop=True), population,
                        dict(em.data.files), level, scope)


def grade_region(region, period, scheme=None, *, visible=None, industry_level: str | None = None,
                 benchmark_scope: str | None = None, library=None) -> RegionGrades:
    """Grade every enterprise of a region for ``period`` (``2025-03``, ``2025-Q1``, ``2025``, or a
    list of them) under ``scheme`` (default the Zhejiang 碳效码).

    Parameters
    ----------
    region : path or RegionEmissions
        A region directory (:mod:`workbench.grading.region`) or one already loaded.
    period : str, Period or list of them
    scheme : str or GradingScheme, optional
        By name through the registry and the ``workbench.grading_schemes`` entry points.
    visible : collection of str, optional
        The enterprises the caller may see (``None``: all — the command line and notebooks, whose
        user reads the files anyway).  Rows of others are removed before anything is returned.
    industry_level : ``division`` or ``class``, optional
        The industry an enterprise is compared within (default: the scheme's, ``division``).
    benchmark_scope : ``province``, ``city`` or ``county``, optional
        The region of the benchmark (default: the scheme's, ``province``).
    library : FactorLibrary, optional
        Factors for the accounting (default: the shipped library).
    """
    em = region if isinstance(region, RegionEmissions) else load_region(Path(region), library)
    return grade_emissions(em, period, scheme, visible=visible, industry_level=industry_level,
                           benchmark_scope=benchmark_scope)


def grade_distribution(grades: pd.DataFrame, by=("county_code", "industry")) -> pd.DataFrame:
    """How many enterprises got each grade, by ``by`` (columns of the grades table; ``()``: one
    row for all): columns ``1`` … ``5`` (ints), ``ungraded``, ``total``."""
    by = list(by)
    g = grades.assign(_grade=grades["grade"].astype("Int8").astype("float64"))
    cols = [1, 2, 3, 4, 5]
    if not by:
        counts = {c: int((g["_grade"] == c).sum()) for c in cols}
        out = pd.DataFrame([{**counts, "ungraded": int(g["_grade"].isna().sum()), "total": len(g)}])
        return out
    table = pd.crosstab([g[c] for c in by], g["_grade"].fillna(0).astype(int))
    for c in [0, *cols]:
        if c not in table.columns:
            table[c] = 0
    table = table[[*cols, 0]].rename(columns={0: "ungraded"})
    table["total"] = table.sum(axis=1)
    table.columns.name = None
    return table.reset_index()


def movements(previous: RegionGrades | pd.DataFrame, current: RegionGrades | pd.DataFrame) -> pd.DataFrame:
    """The enterprises whose grade changed between two periods, with L and K of both.

    ``direction`` is ``up`` (to a better grade: a smaller number, 1 best) or ``down``; ``steps`` the
    number of grades moved (current − previous: negative is up).  Enterprises without a grade in
    either period are not listed (their ``status`` says why)."""
    p = previous.grades if isinstance(previous, RegionGrades) else previous
    c = current.grades if isinstance(current, RegionGrades) else current
    keep = ["enterprise_id", "period", "grade", "l", "k", "level", "status"]
    m = c[["enterprise_id", "name_zh", "county_code", "county_name_zh", "industry", "industry_name_zh", *keep[1:]]] \
        .merge(p[keep], on="enterprise_id", how="inner", suffixes=("", "_prev"))
    both = m["grade"].notna() & m["grade_prev"].notna()
    m = m[both & (m["grade"] != m["grade_prev"])].copy()
    m["steps"] = (m["grade"].astype("int64") - m["grade_prev"].astype("int64")).astype("int64")
    m["direction"] = np.where(m["steps"] < 0, "up", "down")
    m["direction_zh"] = np.where(m["steps"] < 0, "升级（改善）", "降级（变差）")
    cols = ["enterprise_id", "name_zh", "county_code", "county_name_zh", "industry", "industry_name_zh",
            "period_prev", "grade_prev", "l_prev", "k_prev", "period", "grade", "l", "k", "steps", "direction",
            "direction_zh"]
    return m[cols].sort_values(["direction", "steps", "enterprise_id"], kind="stable").reset_index(drop=True)


def l_trend(grades: RegionGrades, by=("industry",)) -> pd.DataFrame:
    """The trend of L over the graded periods, per ``by`` group of the visible enterprises:
    ``l`` = the group's aggregate ratio (Σ CO2 ÷ Σ value added of its graded enterprises),
    ``l_median`` of their L, ``n``, and ``benchmark_l`` (the industry's, over the whole region,
    when grouping by industry)."""
    by = list(by)
    g = grades.grades
    ok = g["status"].isin(["ok", "no_benchmark"]).to_numpy()
    keys = {"period": g["period"].to_numpy(dtype=object), **{c: g[c].to_numpy(dtype=object) for c in by}}
    _, _, t = aggregate_ratio(g["co2_t"].to_numpy(), np.where(ok, g["value_added_10k_cny"], np.nan), keys,
                              g["avoided_t"].to_numpy())
    t = t.rename(columns={"benchmark_l": "l"})
    med = g[ok].groupby(["period", *by])["l"].median().rename("l_median").reset_index()
    t = t.merge(med, on=["period", *by], how="left")
    if by == ["industry"]:
        b = grades.benchmarks.groupby(["period", "industry"])["benchmark_l"].first().reset_index()
        if grades.benchmark_scope == "province":
            t = t.merge(b, on=["period", "industry"], how="left")
    return t.sort_values(["period", *by], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------- evidence
@dataclass
class GradeEvidence:
    """One enterprise's grade for one period with everything it rests on — for a reviewer.

    ``row``: its row of the grades table (L, K, level, grade, status, flags) · ``benchmark``: the
    industry aggregate it was compared with (industry, scope, Σ CO2, Σ value added, n, L_ind) ·
    ``energy``: the ledger rows of its energy records in the period (quantity, unit, factor values
    and ids, tCO2, notes, the file row) · ``zero_carbon``: the deducted own electricity rows ·
    ``value_added``: the monthly value added with its file row · ``files``: SHA-256 of every input
    file · ``scheme``: the scheme with its provenance · ``flags``: the data-quality flags, in words."""

    enterprise_id: str
    period: str
    scheme: dict
    row: dict
    benchmark: dict
    energy: pd.DataFrame
    zero_carbon: pd.DataFrame
    value_added: pd.DataFrame
    files: dict
    flags: list

    @property
    def grade(self):
        g = self.row.get("grade")
        return None if g is None or pd.isna(g) else int(g)

    def to_dict(self) -> dict:
        """JSON-ready (tables as lists of records)."""
        def records(df):
            return [{k: (None if (isinstance(v, float) and np.isnan(v)) or v is pd.NA else
                         (v.item() if hasattr(v, "item") else v)) for k, v in r.items()} for r in df.to_dict("records")]

        return {"enterprise_id": self.enterprise_id, "period": self.period, "grade": self.grade,
                "scheme": self.scheme, "row": records(pd.DataFrame([self.row]))[0], "benchmark": self.benchmark,
                "energy": records(self.energy), "zero_carbon": records(self.zero_carbon),
                "value_added": records(self.value_added), "files": self.files, "flags": self.flags}


_EVIDENCE_LEDGER = ["record_id", "period", "source", "item", "quantity", "unit", "activity_gj", "ncv", "ncv_unit",
                    "ncv_factor_id", "carbon_content", "carbon_content_factor_id", "oxidation_rate",
                    "oxidation_rate_factor_id", "emission_factor", "ef_unit", "emission_factor_id", "emission_t",
                    "tco2e", "factor_ids", "notes", "document", "edition"]

_FLAG_WORDS = {
    "unverified_factor": "一个或多个排放因子未经核实 / a factor marked UNVERIFIED in the factor library was used",
    "small_benchmark": f"行业基准企业数少于 {SMALL_BENCHMARK} 家 / the benchmark counts fewer than {SMALL_BENCHMARK} enterprises",
    "zero_carbon_deducted": "已扣除自有零碳电力 / own zero-carbon electricity deducted",
}


def grade_evidence(region, enterprise_id: str, period, scheme=None, *, industry_level: str | None = None,
                   benchmark_scope: str | None = None, library=None, graded: RegionGrades | None = None
                   ) -> GradeEvidence:
    """An enterprise's grade for ``period`` with its evidence (:class:`GradeEvidence`): L, K, the
    benchmark, the inputs down to each energy record's factors and file row, the data-quality
    flags.  For a review page: the caller checks that its user may read ``enterprise_id``
    (``workbench.apps.grades.evidence_for`` does).  An enterprise not in the region is a
    :class:`~workbench.grading.errors.GradingError`.  ``graded``: the region's grades for this
    period already computed (:func:`grade_emissions` with the same scheme and options, holding the
    enterprise), so that evidence for many enterprises grades the region once, not once each."""
    em = region if isinstance(region, RegionEmissions) else load_region(Path(region), library)
    if enterprise_id not in set(em.data.enterprises["enterprise_id"]):
        raise GradingError(f"enterprise '{enterprise_id}' is not in the region {em.data.root}")
    p = parse_period(period)
    if graded is not None:
        if tuple(graded.periods) != (p.label,):
            raise GradingError(f"graded: grades of {list(graded.periods)}, not of {p.label}")
        mine = graded.grades[graded.grades["enterprise_id"] == enterprise_id]
        if mine.empty:
            raise GradingError(f"graded: no grade of '{enterprise_id}' among the grades given")
        rg = replace(graded, grades=mine.reset_index(drop=True))
    else:
        rg = grade_emissions(em, p, scheme, visible=[enterprise_id], industry_level=industry_level,
                             benchmark_scope=benchmark_scope)
    row = rg.grades.iloc[0].to_dict()
    b = rg.benchmarks
    b = b[(b["industry"] == row["industry"]) & (b["scope"] == row["scope"])]
    benchmark = ({k: (v.item() if hasattr(v, "item") else v) for k, v in b.iloc[0].to_dict().items()} if len(b) else {})
    benchmark.update({"method": "aggregate ratio: Σ CO2 ÷ Σ value added of the industry's gradable enterprises",
                      "industry_level": rg.industry_level, "benchmark_scope": rg.benchmark_scope})
    months = set(p.months)
    led = em.ledger
    energy = led[(led["enterprise_id"] == enterprise_id) & led["period"].isin(months)]
    energy = energy[[c for c in _EVIDENCE_LEDGER if c in energy.columns]].reset_index(drop=True)
    av = em.avoided_ledger
    zero = av[(av["enterprise_id"] == enterprise_id) & av["period"].isin(months)] if len(av) else av
    zero = zero[[c for c in _EVIDENCE_LEDGER if c in zero.columns]].reset_index(drop=True)
    va = em.data.value_added
    va = va[(va["enterprise_id"] == enterprise_id) & va["period"].isin(months)][["period", "value_added_10k_cny", "row"]]
    flags = []
    for f in str(row["flags"]).split(";"):
        if f in STATUS_NAMES:
            zh, en = STATUS_NAMES[f]
            flags.append({"flag": f, "text": f"{zh} / {en}"})
        elif f:
            flags.append({"flag": f, "text": _FLAG_WORDS.get(f, f)})
    return GradeEvidence(enterprise_id, p.label, rg.scheme.describe(), row, benchmark, energy, zero,
                         va.reset_index(drop=True), dict(em.data.files), flags)
