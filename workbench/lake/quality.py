"""Automated data-quality monitoring with user-defined rules (seed §8.1 b).

Rules are written in YAML (``workbench/quality_rules/demo.yaml`` is the demo plant's set) and
evaluated with DuckDB SQL over a connection that has the views ``readings``, ``consumption``
and ``meters`` (optionally ``quarantine``) — the lake provides one, :func:`connect` makes one from
DataFrames (e.g. a :class:`workbench.ingestion.prepare.Prepared`).

A rule file::

    title: 示例规则 / Example rules
    interval: 15min            # the reading interval
    reference: latest          # staleness reference: latest reading, 'now' or an ISO time
    rules:
      - id: completeness-day   # unique
        kind: completeness
        title: 每日完整率 ≥ 99 % / daily completeness
        meters: {source: purchased_electricity}   # selector, see below; {} = every meter
        per: day               # day | month | all (the whole window)
        min: 0.99
        severity: error        # error | warning | info (info rules do not lower scores)
        weight: 1

Meter selectors (all keys optional, combined with AND; a list means any of): ``meter_id``
(glob patterns, ``M00*``), ``node`` (node id or prefix: ``F01`` selects ``F01`` and ``F01.*``),
``source``, ``item``, ``register``, ``unit``, ``is_main`` (true/false), ``exclude`` (a selector of
meters to leave out).  ``quantity`` restricts the rows of the table.

Kinds and their parameters:

=================  ===========================================================================
``range``          ``min``/``max`` per-interval value (``unit``: the unit of the limits, pint
                   converts them to each meter's unit; default the meter's).  ``table``
                   consumption (default; value / span) or readings.
``rate_of_change`` change between consecutive intervals: ``max_abs`` (in ``unit``) and/or
                   ``max_rel`` (|Δ| / previous value); with both, a change fails only when it
                   exceeds both (small loads may double without mattering).
``completeness``   ``min`` share of the expected intervals per meter and period.  Expected =
                   the intervals of the period inside the meter's service: from ``installed``
                   (from its first interval when installed inside the window) to ``removed``
                   (to its last interval when removed inside the window), and not after the
                   latest interval in the data (or ``reference``).  Estimated rows do not count.
``staleness``      ``max_age`` (``2h``, ``1 day``): the meter's last reading is older than that at
                   the reference time.  Meters removed before the reference are skipped.
``balance``        ``method: sum`` (default): Σ ``subs`` / Σ ``main`` per period within
                   [``min_ratio``, ``max_ratio``] (or 1 ± ``tolerance``); quantities converted to
                   the first main meter's unit.  ``method: share``: each sub-meter's share of its
                   group (``group_by: node`` — the meters on one node — or ``facility``) per period,
                   on the intervals where every member has an unflagged value, against its median
                   share over all periods: |share / median − 1| ≤ ``tolerance``.  A drifting meter
                   shows up even when its node has no meter of its own; a replacement meter
                   continues the member it replaces.
``duplicates``     readings flagged ``duplicate`` (identical rows collapsed by preparation),
                   at most ``max_count`` (0) per meter and period.
``conflicts``      quarantined ``conflicting duplicate`` / ``conflicts with stored value`` rows
                   per meter and period (needs the ``quarantine`` view), at most ``max_count``.
``flags``          rows carrying ``flag`` (one or a list: spike, stuck, reset, rollover,
                   gap_spanning, off_grid, outside_service, replacement_start, estimated …) in
                   ``table``: at most ``max_count`` (0) and/or ``max_share``.
``activity``       monthly activity data (the ``activity`` view) per enterprise, source, item
                   and node, summed in the unit its factor is expressed per
                   (``quantity_normalized``; computed with pint for rows stored without it):
                   ``year_factor`` — against the same month of the year before, flagged when
                   the ratio is above the factor or below its inverse (either way; 0 against
                   a positive value always); ``meter_factor`` — against the meters'
                   consumption of that month of the same source and item on the node or
                   below it (node prefix, as the ``node`` selector; the main meters when there
                   are any there, else the sub-meters), converted with pint, judged only when
                   the meters cover ≥ ``min_coverage`` (0.9) of the month's intervals.  Rows of
                   different enterprises (``enterprise_id``) are never compared.  ``per`` is
                   always the month; the rule's targets are ``enterprise/source/item/node``.
=================  ===========================================================================

``evaluate`` returns a tidy results table (one row per rule × target × period: ``rule, kind,
severity, target, target_type, source, period, passed, score, value, n_checked, n_failed,
examples`` (JSON)) and :func:`score_table` scores per meter, source and period (weighted mean of
the rule scores; ``info`` rules excluded).  ``counts`` from preparation add batch-level rows to the
``duplicates`` and ``conflicts`` rules.
"""
from __future__ import annotations

import fnmatch
import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

from workbench.core.errors import WorkbenchError
from workbench.core.units import UnitError, conversion_factor

__all__ = ["Rule", "RuleSet", "RuleError", "QualityResult", "load_rules", "demo_rules_path", "connect",
           "with_activity_factors",
           "evaluate", "score_table", "select_meters", "completeness_table", "KINDS", "RESULT_COLUMNS"]

KINDS = ("range", "rate_of_change", "completeness", "staleness", "balance", "duplicates", "conflicts", "flags",
         "activity")
SEVERITIES = ("error", "warning", "info")
PERIODS = ("day", "month", "all")
RESULT_COLUMNS = ["rule", "kind", "severity", "title", "target", "target_type", "source", "period", "passed",
                  "score", "value", "n_checked", "n_failed", "examples"]
_SELECTOR_KEYS = {"meter_id", "node", "source", "item", "register", "unit", "is_main", "exclude"}
_COMMON = {"id", "kind", "title", "severity", "per", "meters", "weight", "table", "quantity", "description"}
_PARAMS = {
    "range": {"min", "max", "unit"},
    "rate_of_change": {"max_abs", "max_rel", "unit"},
    "completeness": {"min"},
    "staleness": {"max_age"},
    "balance": {"method", "main", "subs", "min_ratio", "max_ratio", "tolerance", "group_by", "name",
                "min_intervals", "min_periods"},
    "duplicates": {"max_count"},
    "conflicts": {"max_count"},
    "flags": {"flag", "max_count", "max_share"},
    "activity": {"year_factor", "meter_factor", "min_coverage"},
}


class RuleError(WorkbenchError, ValueError):
    """A rule file that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str], source: str = ""):
        self.problems = problems
        head = f"invalid quality rules{f' in {source}' if source else ''}:"
        super().__init__(head + "\n  - " + "\n  - ".join(problems))


@dataclass
class Rule:
    id: str
    kind: str
    title: str = ""
    severity: str = "error"
    per: str = "month"
    meters: dict = field(default_factory=dict)
    weight: float = 1.0
    table: str = "consumption"
    quantity: list | None = None
    params: dict = field(default_factory=dict)


@dataclass
class RuleSet:
    rules: list[Rule]
    title: str = ""
    interval: str = "15min"
    reference: str | None = "latest"
    source: str = ""


@dataclass
class QualityResult:
    results: pd.DataFrame
    scores: pd.DataFrame
    window: tuple
    rules: RuleSet
    notes: list = field(default_factory=list)

    @property
    def failed(self) -> pd.DataFrame:
        return self.results[~self.results["passed"].astype(bool)]


# --------------------------------------------------------------------------- rules
def demo_rules_path() -> Path:
    """The rule file of the demo cement plant (package data)."""
    return Path(str(resources.files("workbench") / "quality_rules" / "demo.yaml"))


def load_rules(spec) -> RuleSet:
    """Read and check a rule file (path, YAML text or dict); raises :class:`RuleError`."""
    src = ""
    if isinstance(spec, RuleSet):
        return spec
    try:
        if isinstance(spec, (str, Path)) and (isinstance(spec, Path) or "\n" not in str(spec)) and Path(spec).exists():
            src = str(spec)
            data = yaml.safe_load(Path(spec).read_text(encoding="utf-8"))
        elif isinstance(spec, Path):
            raise RuleError([f"no such rule file: {spec}"], str(spec))
        elif isinstance(spec, str):
            data = yaml.safe_load(spec)
        else:
            data = spec
    except yaml.YAMLError as exc:
        raise RuleError([f"YAML error: {exc}"], src) from None
    problems: list[str] = []
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleError(["the file needs a 'rules:' list"], src)
    rules: list[Rule] = []
    seen = set()
    for k, r in enumerate(data["rules"]):
        where = f"rule {k + 1}"
        if not isinstance(r, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        rid = str(r.get("id") or f"rule-{k + 1}")
        where = f"rule '{rid}'"
        if rid in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(rid)
        kind = r.get("kind")
        if kind not in KINDS:
            problems.append(f"{where}: kind must be one of {', '.join(KINDS)} (got {kind!r})")
            continue
        unknown = set(r) - _COMMON - _PARAMS[kind]
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)} for kind {kind} "
                            f"(allowed: {sorted(_PARAMS[kind] | _COMMON)})")
        sev = r.get("severity", "error")
        if sev not in SEVERITIES:
            problems.append(f"{where}: severity must be one of {SEVERITIES}")
        per = r.get("per", "month")
        if per not in PERIODS:
            problems.append(f"{where}: per must be one of {PERIODS}")
        sel = r.get("meters") or {}
        if not isinstance(sel, dict) or set(sel) - _SELECTOR_KEYS:
            problems.append(f"{where}: meters must be a selector with keys among {sorted(_SELECTOR_KEYS)}")
        params = {p: r[p] for p in _PARAMS[kind] if p in r}
        problems += [f"{where}: {msg}" for msg in _check_params(kind, params)]
        table = r.get("table", "readings" if kind in ("duplicates", "staleness") else "consumption")
        if table not in ("readings", "consumption"):
            problems.append(f"{where}: table must be readings or consumption")
        qty = r.get("quantity")
        rules.append(Rule(id=rid, kind=kind, title=str(r.get("title", "")), severity=sev, per=per,
                          meters=sel if isinstance(sel, dict) else {}, weight=float(r.get("weight", 1.0)),
                          table=table, quantity=[qty] if isinstance(qty, str) else qty, params=params))
    if problems:
        raise RuleError(problems, src)
    return RuleSet(rules=rules, title=str(data.get("title", "")), interval=str(data.get("interval", "15min")),
                   reference=data.get("reference", "latest"), source=src)


def with_activity_factors(rules, *, year_factor: float | None = None, meter_factor: float | None = None) -> RuleSet:
    """The rule set with the factors of its ``activity`` rules set (``workbench quality report
    --year-factor/--meter-factor``); without an activity rule, one (``activity-plausibility``,
    a warning) is added.  The factors are checked like the file's: :class:`RuleError`."""
    import dataclasses

    rs = load_rules(rules)
    given = {k: v for k, v in (("year_factor", year_factor), ("meter_factor", meter_factor)) if v is not None}
    problems = _check_params("activity", given)
    if problems:
        raise RuleError(problems, "the command line")
    out, found = [], False
    for r in rs.rules:
        if r.kind == "activity":
            found = True
            r = dataclasses.replace(r, params={**r.params, **given})
        out.append(r)
    if not found:
        out.append(Rule(id="activity-plausibility", kind="activity", severity="warning",
                        title="月度活动数据合理性 / monthly activity plausibility", params=given))
    return dataclasses.replace(rs, rules=out)


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_params(kind: str, p: dict) -> list[str]:
    out = []
    if kind == "range":
        if "min" not in p and "max" not in p:
            out.append("range needs min and/or max")
        for k in ("min", "max"):
            if k in p and not _num(p[k]):
                out.append(f"{k} must be a number")
    elif kind == "rate_of_change":
        if "max_abs" not in p and "max_rel" not in p:
            out.append("rate_of_change needs max_abs and/or max_rel")
    elif kind == "completeness":
        if not _num(p.get("min")) or not 0 <= p["min"] <= 1:
            out.append("completeness needs min between 0 and 1 (a share, 0.99 = 99 %)")
    elif kind == "staleness":
        try:
            pd.Timedelta(str(p.get("max_age")))
        except (ValueError, TypeError):
            out.append("staleness needs max_age, e.g. 2h or '1 day'")
    elif kind == "balance":
        method = p.get("method", "sum")
        if method not in ("sum", "share"):
            out.append("balance method must be sum or share")
        if method == "sum" and not isinstance(p.get("main"), dict):
            out.append("balance (sum) needs a 'main' meter selector")
        if not isinstance(p.get("subs"), dict):
            out.append("balance needs a 'subs' meter selector")
        if method == "share" and not _num(p.get("tolerance")):
            out.append("balance (share) needs a tolerance (relative, 0.02 = 2 %)")
        if method == "sum" and not (_num(p.get("tolerance")) or _num(p.get("min_ratio")) or _num(p.get("max_ratio"))):
            out.append("balance (sum) needs tolerance or min_ratio/max_ratio")
    elif kind == "flags":
        if not p.get("flag"):
            out.append("flags needs a flag (or a list of flags)")
    elif kind == "activity":
        if "year_factor" not in p and "meter_factor" not in p:
            out.append("activity needs year_factor and/or meter_factor")
        for k in ("year_factor", "meter_factor"):
            if k in p and not (_num(p[k]) and p[k] > 1):
                out.append(f"{k} must be a number > 1 (3 = flagged beyond 3× or below 1/3)")
        if "min_coverage" in p and not (_num(p["min_coverage"]) and 0 <= p["min_coverage"] <= 1):
            out.append("min_coverage must be a share between 0 and 1")
    return out


# --------------------------------------------------------------------------- connection
def connect(readings=None, consumption=None, meters=None, quarantine=None, gaps=None, con=None):
    """A DuckDB connection with the given DataFrames as views (``prepared.connect()`` does this)."""
    con = con or duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:  # pragma: no cover
        pass
    for name, df in (("readings", readings), ("consumption", consumption), ("meters", meters),
                     ("quarantine", quarantine), ("gaps", gaps)):
        if df is not None:
            con.register(name, df)
    return con


def _views(con) -> set:
    rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    return {r[0] for r in rows}


def _columns(con, view: str) -> set:
    return {r[0] for r in con.execute(f"DESCRIBE {view}").fetchall()}


# --------------------------------------------------------------------------- selectors
def _as_list(x):
    return x if isinstance(x, (list, tuple)) else [x]


def select_meters(meters: pd.DataFrame, sel: dict | None) -> pd.DataFrame:
    """Rows of the meter register matching a selector (see the module docstring)."""
    m = meters
    if not sel:
        return m
    mask = np.ones(len(m), bool)
    ids = m["meter_id"].astype(str)
    if "meter_id" in sel:
        pats = [str(p) for p in _as_list(sel["meter_id"])]
        mask &= ids.map(lambda x: any(fnmatch.fnmatchcase(x, p) for p in pats)).to_numpy()
    if "node" in sel:
        nodes = [str(p) for p in _as_list(sel["node"])]
        nid = m["node_id"].astype(str)
        mask &= np.logical_or.reduce([(nid == p) | nid.str.startswith(p + ".") for p in nodes])
    for key in ("source", "item", "register", "unit"):
        if key in sel:
            mask &= m[key].astype(str).isin([str(v) for v in _as_list(sel[key])]).to_numpy()
    if "is_main" in sel:
        mask &= (m["is_main"].astype(bool) == bool(sel["is_main"])).to_numpy()
    if "exclude" in sel and sel["exclude"]:
        ex = select_meters(m, sel["exclude"])
        mask &= ~ids.isin(ex["meter_id"].astype(str)).to_numpy()
    return m[mask]


def _factors(units, to_unit) -> np.ndarray:
    """Multipliers from each meter unit to ``to_unit`` (NaN when impossible)."""
    out = []
    for u in units:
        try:
            out.append(conversion_factor(str(u), str(to_unit)))
        except UnitError:
            out.append(np.nan)
    return np.asarray(out, dtype="float64")


# --------------------------------------------------------------------------- windows
_PER_FMT = {"day": "%Y-%m-%d", "month": "%Y-%m"}


def _window(con, period, has_cons: bool) -> tuple[pd.Timestamp, pd.Timestamp]:
    if isinstance(period, (tuple, list)):
        return pd.Timestamp(period[0]), pd.Timestamp(period[1])
    if period:
        p = str(period)
        if ".." in p:
            a, b = p.split("..")
            return _window(con, a, has_cons)[0], _window(con, b, has_cons)[1]
        if re.fullmatch(r"\d{4}", p):
            s = pd.Timestamp(f"{p}-01-01")
            return s, s + pd.DateOffset(years=1)
        if re.fullmatch(r"\d{4}-\d{2}", p):
            s = pd.Timestamp(f"{p}-01")
            return s, s + pd.DateOffset(months=1)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", p):
            s = pd.Timestamp(p)
            return s, s + pd.Timedelta(days=1)
        raise ValueError(f"period must be YYYY, YYYY-MM, YYYY-MM-DD, 'a..b' or (start, end), got {period!r}")
    view = "consumption" if has_cons else "readings"
    lo, hi = con.execute(f"SELECT min(ts), max(ts) FROM {view}").fetchall()[0]
    if lo is None:
        today = pd.Timestamp.today().normalize()
        return today, today + pd.Timedelta(days=1)
    return pd.Timestamp(lo).normalize(), pd.Timestamp(hi).normalize() + pd.Timedelta(days=1)


def _label(per: str, window) -> str:
    return f"{window[0]:%Y-%m-%d}..{window[1]:%Y-%m-%d}"


def _period_sql(per: str, window, col: str = "ts") -> str:
    if per == "all":
        return f"'{_label(per, window)}'"
    return f"strftime(date_trunc('{per}', {col}), '{_PER_FMT[per]}')"


def _ts(x) -> str:
    return f"TIMESTAMP '{pd.Timestamp(x):%Y-%m-%d %H:%M:%S.%f}'"


def _flag_sql(col: str, flag: str) -> str:
    return f"list_contains(string_split(CAST({col} AS VARCHAR), '|'), '{flag}')"


# --------------------------------------------------------------------------- evaluation
_NEXT = {"day": pd.Timedelta(days=1), "month": pd.DateOffset(months=1)}


class _Ctx:
    """What all rules of one evaluation share: the window and cached per-meter aggregates."""

    def __init__(self, con, meters, window, step_us, reference, views, counts):
        self.con, self.meters, self.window, self.step_us = con, meters, window, step_us
        self.reference, self.views, self.counts = reference, views, counts
        self.cols = {v: _columns(con, v) for v in ("readings", "consumption") if v in views}
        self.notes: list[str] = []
        self._cache: dict = {}

    # -- SQL pieces
    def span(self, table: str) -> str:
        return "c.span" if table == "consumption" and "span" in self.cols.get("consumption", ()) else "1"

    def where(self, quantity=None, lo=None, hi=None) -> str:
        lo = self.window[0] if lo is None else lo
        hi = self.window[1] if hi is None else hi
        w = f"c.ts >= {_ts(lo)} AND c.ts < {_ts(hi)}"
        if quantity:
            qs = ", ".join("'" + str(q).replace("'", "''") + "'" for q in quantity)
            w += f" AND CAST(c.quantity AS VARCHAR) IN ({qs})"
        return w

    def has_flags(self, table: str) -> bool:
        return "quality_flag" in self.cols.get(table, ())

    def sql(self, q: str) -> pd.DataFrame:
        return self.con.execute(q).df()

    def bucket(self, per: str) -> str:
        return f"date_trunc('{per}', c.ts)" if per != "all" else _ts(self.window[0])

    def label(self, per: str, ts: pd.Series) -> pd.Series:
        if per == "all":
            return pd.Series(_label(per, self.window), index=ts.index)
        t = pd.to_datetime(ts)
        return t.dt.strftime(_PER_FMT[per])

    def pend(self, per: str, pstart: pd.Series) -> pd.Series:
        if per == "all":
            return pd.Series(self.window[1], index=pstart.index)
        return pd.to_datetime(pstart) + _NEXT[per]

    # -- cached aggregates
    def base(self, table: str, per: str, quantity=None) -> pd.DataFrame:
        """Per meter and period: n rows, n_real (not estimated), min/max per-interval value, sum."""
        key = ("base", table, per, tuple(quantity or ()))
        if key not in self._cache:
            sp = self.span(table)
            est = ("(c.quality_flag <> 'ok' AND contains(CAST(c.quality_flag AS VARCHAR), 'estimated'))"
                   if self.has_flags(table) else "false")
            df = self.sql(f"""
                SELECT c.meter_id AS target, {self.bucket(per)} AS pstart, count(*) AS n,
                       count(*) FILTER (WHERE NOT {est}) AS n_real,
                       min(c.value / {sp}) AS vmin, max(c.value / {sp}) AS vmax, sum(c.value) AS vsum
                FROM {table} c WHERE {self.where(quantity)} GROUP BY ALL""")
            df["target"] = df["target"].astype(str)
            df["period"] = self.label(per, df["pstart"])
            self._cache[key] = df
        return self._cache[key]

    def flagged(self, table: str, quantity=None) -> pd.DataFrame:
        """Rows whose quality_flag is not ``ok`` (normally few)."""
        key = ("flagged", table, tuple(quantity or ()))
        if key not in self._cache:
            if not self.has_flags(table):
                self._cache[key] = pd.DataFrame(columns=["target", "ts", "value", "flags"])
            else:
                df = self.sql(f"""SELECT c.meter_id AS target, c.ts, c.value, c.quality_flag AS flags
                                  FROM {table} c WHERE c.quality_flag <> 'ok' AND {self.where(quantity)}""")
                df["target"] = df["target"].astype(str)
                df["flags"] = df["flags"].astype(str)
                self._cache[key] = df
        return self._cache[key]

    def last_ts(self, table: str, until) -> pd.DataFrame:
        key = ("last", table, str(until))
        if key not in self._cache:
            df = self.sql(f"SELECT c.meter_id AS target, max(c.ts) AS last FROM {table} c "
                          f"WHERE c.ts <= {_ts(until)} GROUP BY ALL")
            df["target"] = df["target"].astype(str)
            self._cache[key] = df
        return self._cache[key]

    def ids(self, rule_or_sel) -> set:
        sel = rule_or_sel.meters if isinstance(rule_or_sel, Rule) else rule_or_sel
        return set(select_meters(self.meters, sel)["meter_id"].astype(str))


def _in(ids) -> str:
    ids = sorted(ids)
    if not ids:
        return "false"
    return "CAST(c.meter_id AS VARCHAR) IN (" + ", ".join("'" + i.replace("'", "''") + "'" for i in ids) + ")"


def _examples(df: pd.DataFrame, cols: list[str], keys=("target", "period"), n: int = 5) -> pd.Series:
    """JSON list of the first ``n`` rows (by ts) per key, as a Series indexed by the keys."""
    if df.empty:
        return pd.Series(dtype=object)
    d = df.sort_values("ts").groupby(list(keys), sort=False).head(n).copy()
    d["ts"] = pd.to_datetime(d["ts"]).dt.strftime("%Y-%m-%d %H:%M")
    for c in cols:
        if c in d and pd.api.types.is_float_dtype(d[c]):
            d[c] = d[c].round(4)
    recs = d[["ts"] + [c for c in cols if c != "ts"]].to_dict("records")
    d["_rec"] = recs
    return d.groupby(list(keys), sort=False)["_rec"].agg(lambda x: json.dumps(list(x), ensure_ascii=False))


def _attach(base: pd.DataFrame, fails: pd.DataFrame, ex: pd.Series) -> pd.DataFrame:
    out = base.merge(fails, on=["target", "period"], how="left")
    out["n_failed"] = out["n_failed"].fillna(0).astype(np.int64)
    if len(ex):
        out = out.merge(ex.rename("examples").reset_index(), on=["target", "period"], how="left")
    else:
        out["examples"] = None
    out["examples"] = out["examples"].fillna("[]")
    return out


def evaluate(con, rules, *, period=None, reference=None, counts: dict | None = None) -> QualityResult:
    """Evaluate a rule set on a DuckDB connection (views readings, consumption, meters[, quarantine]).

    ``period``: ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``, ``'a..b'`` or ``(start, end)`` — default the
    whole days covered by the data.  ``reference``: the staleness reference (overrides the file's:
    ``latest``, ``now`` or a time).  ``counts``: preparation counts of the batch being checked.
    """
    from workbench.core.meters import normalize_meters

    rs = load_rules(rules)
    views = _views(con)
    if "meters" not in views:
        raise ValueError(f"the connection has no 'meters' view (views: {sorted(views)})")
    if "consumption" not in views and "readings" not in views:
        raise ValueError("the connection needs a 'consumption' or 'readings' view")
    meters = normalize_meters(con.execute("SELECT * FROM meters").df())
    window = _window(con, period, "consumption" in views)
    step_us = int(pd.Timedelta(rs.interval) / pd.Timedelta("1us"))
    ref = reference if reference is not None else rs.reference
    ref_view = "readings" if "readings" in views else "consumption"
    if ref in (None, "latest"):
        latest = con.execute(f"SELECT max(ts) FROM {ref_view} WHERE ts < {_ts(window[1])}").fetchall()[0][0]
        ref_ts, explicit = (pd.Timestamp(latest) if latest is not None else window[1]), False
    elif ref == "now":
        ref_ts, explicit = pd.Timestamp.now(tz="Asia/Shanghai").tz_localize(None), True
    else:
        ref_ts, explicit = pd.Timestamp(ref), True
    ctx = _Ctx(con, meters, window, step_us, (ref_ts, explicit), views, counts)
    frames = []
    for rule in rs.rules:
        try:
            df = _KIND_FN[rule.kind](ctx, rule)
        finally:
            for name in ("_q_sel", "_q_per", "_q_bad"):
                try:
                    con.unregister(name)
                except (duckdb.Error, KeyError):
                    pass
        if df is None or df.empty:
            continue
        df = df.assign(rule=rule.id, kind=rule.kind, severity=rule.severity, title=rule.title,
                       weight=rule.weight if rule.severity != "info" else 0.0)
        frames.append(df)
    src = dict(zip(meters["meter_id"].astype(str), meters["source"].astype(str)))
    res = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS + ["weight"])
    for c, default in (("source", None), ("value", np.nan), ("examples", "[]"), ("target_type", "meter")):
        if c not in res.columns:
            res[c] = default
    res["source"] = res["source"].where(res["source"].notna(), res["target"].map(src))
    res["source"] = res["source"].where(res["source"].notna(), res["target_type"])
    res["passed"] = res["passed"].astype(bool)
    res["score"] = res["score"].astype(float).clip(0, 1)
    res["value"] = res["value"].astype(float)
    res["n_checked"] = res["n_checked"].fillna(0).astype(np.int64)
    res["n_failed"] = res["n_failed"].fillna(0).astype(np.int64)
    res["examples"] = res["examples"].fillna("[]").astype(str)
    res = res[RESULT_COLUMNS + ["weight"]].sort_values(["rule", "target", "period"], kind="stable")
    res = res.reset_index(drop=True)
    return QualityResult(results=res, scores=score_table(res), window=window, rules=rs, notes=ctx.notes)


def _finish(df: pd.DataFrame, *, target_type="meter", max_count=0, max_share=None) -> pd.DataFrame:
    """Passed/score for count-type results (n_checked, n_failed): score = 1 − failed share."""
    if df.empty:
        return df
    share = df["n_failed"] / df["n_checked"].where(df["n_checked"] > 0, 1)
    ok = df["n_failed"] <= (max_count if max_count is not None else np.inf)
    if max_share is not None:
        ok &= share <= max_share
    df["passed"] = ok
    df["score"] = 1.0 - share
    df["target_type"] = target_type
    if "value" not in df:
        df["value"] = share
    return df


def _base_for(ctx: _Ctx, rule: Rule, table: str | None = None) -> pd.DataFrame:
    t = table or rule.table
    b = ctx.base(t, rule.per, rule.quantity)
    b = b[b["target"].isin(ctx.ids(rule))]
    return b


# ---- range
def _range(ctx: _Ctx, rule: Rule) -> pd.DataFrame:
    p = rule.params
    s = select_meters(ctx.meters, rule.meters)
    unit = p.get("unit")
    # limits in `unit` → each meter's unit: x [unit] = x / (meter→unit factor) [meter unit]
    f = np.ones(len(s)) if not unit else 1.0 / _factors(s["unit"], unit)
    lim = pd.DataFrame({"target": s["meter_id"].astype(str).to_numpy(),
                        "lo": p["min"] * f if "min" in p else np.nan, "hi": p["max"] * f if "max" in p else np.nan})
    bad_unit = lim.loc[lim["lo"].isna() & lim["hi"].isna(), "target"].tolist() if unit else []
    if bad_unit:
        ctx.notes.append(f"{rule.id}: unit {unit} does not fit meters {bad_unit}; they are not checked")
    t = rule.table
    b = _base_for(ctx, rule).merge(lim, on="target")
    b = b.rename(columns={"n": "n_checked"})
    b["value"] = b["vmax"]
    out_of = (b["vmin"] < b["lo"]).fillna(False) | (b["vmax"] > b["hi"]).fillna(False)
    bad = b[out_of]
    fails = pd.DataFrame(columns=["target", "period", "n_failed"])
    ex = pd.Series(dtype=object)
    if len(bad):
        q = bad[["target", "pstart", "lo", "hi"]].copy()
        q["pend"] = ctx.pend(rule.per, q["pstart"]).astype("datetime64[us]")
        q["pstart"] = pd.to_datetime(q["pstart"]).astype("datetime64[us]")
        ctx.con.register("_q_bad", q)
        rows = ctx.sql(f"""
            SELECT CAST(c.meter_id AS VARCHAR) AS target, b.pstart, c.ts, c.value / {ctx.span(t)} AS value
            FROM {t} c JOIN _q_bad b ON CAST(c.meter_id AS VARCHAR) = b.target AND c.ts >= b.pstart AND c.ts < b.pend
            WHERE {ctx.where(rule.quantity)} AND {_in(bad['target'])}
              AND (coalesce(c.value / {ctx.span(t)} < b.lo, false)
                   OR coalesce(c.value / {ctx.span(t)} > b.hi, false))""")
        rows["period"] = ctx.label(rule.per, rows["pstart"])
        fails = rows.groupby(["target", "period"], as_index=False).size().rename(columns={"size": "n_failed"})
        ex = _examples(rows, ["value"])
    return _finish(_attach(b[["target", "period", "n_checked", "value"]], fails, ex))


# ---- rate of change
def _rate(ctx: _Ctx, rule: Rule) -> pd.DataFrame:
    p = rule.params
    s = select_meters(ctx.meters, rule.meters)
    unit = p.get("unit")
    f = np.ones(len(s)) if not unit else 1.0 / _factors(s["unit"], unit)
    ctx.con.register("_q_sel", pd.DataFrame({"meter_id": s["meter_id"].astype(str).to_numpy(),
                                             "lim": p["max_abs"] * f if "max_abs" in p else np.nan}))
    t = rule.table
    sp = ctx.span(t)
    conds = []
    if "max_abs" in p:
        conds.append("d > lim")
    if "max_rel" in p:
        conds.append(f"d / greatest(abs(pv), 1e-12) > {float(p['max_rel'])}")
    step = ctx.step_us
    lo = ctx.window[0] - pd.Timedelta(microseconds=step)
    agg = ctx.sql(f"""
    WITH x AS (
        SELECT c.meter_id AS m, c.ts, c.value / {sp} AS v, {sp} AS sp
        FROM {t} c WHERE {ctx.where(rule.quantity, lo=lo)} AND {_in(s['meter_id'].astype(str))}
    ), y AS (
        SELECT *, lag(v) OVER w AS pv, lag(ts) OVER w AS pts, lag(sp) OVER w AS psp
        FROM x WINDOW w AS (PARTITION BY m ORDER BY ts)
    ), g AS (
        SELECT y.*, abs(v - pv) AS d, s.lim,
               coalesce(pts = ts - to_microseconds({step}) AND sp = 1 AND psp = 1, false) AS consec
        FROM y JOIN _q_sel s ON CAST(y.m AS VARCHAR) = s.meter_id
        WHERE ts >= {_ts(ctx.window[0])}
    ), h AS (SELECT *, consec AND coalesce({' AND '.join(conds)}, false) AS bad FROM g)
    SELECT m AS target, {ctx.bucket(rule.per).replace('c.ts', 'ts')} AS pstart,
           count(*) FILTER (WHERE consec) AS n_checked, count(*) FILTER (WHERE bad) AS n_failed,
           max(d) FILTER (WHERE consec) AS value,
           list({{'ts': ts, 'previous': pv, 'value': v}} ORDER BY ts) FILTER (WHERE bad) AS rows
    FROM h GROUP BY ALL
    """)
    if agg.empty:
        return agg
    agg["target"] = agg["target"].astype(str)
    agg["period"] = ctx.label(rule.per, agg["pstart"])
    agg["examples"] = [json.dumps([{"ts": f"{pd.Timestamp(r['ts']):%Y-%m-%d %H:%M}",
                                    "previous": round(r["previous"], 4),
                                    "value": round(r["value"], 4)}
                                   for r in (list(rows) if isinstance(rows, (list, np.ndarray)) else [])[:5]])
                       for rows in agg["rows"]]
    return _finish(agg.drop(columns=["rows", "pstart"]))


# ---- completeness
def _service(ctx: _Ctx, s: pd.DataFrame, table: str, quantity=None) -> pd.DataFrame:
    """Service window [svc_start, svc_end) of each selected meter inside the evaluation window."""
    w0, w1 = ctx.window
    ref_ts, explicit = ctx.reference
    b = ctx.base(table, "day", quantity)
    first = b.groupby("target")["pstart"].min()
    lastday = b.groupby("target")["pstart"].max()
    lat = ctx.last_ts(table, w1 - pd.Timedelta(microseconds=1))
    lat = lat[(lat["last"] >= w0)]
    step = pd.Timedelta(microseconds=ctx.step_us)
    cap = min(w1, ref_ts) if explicit else (pd.Timestamp(lat["last"].max()) + step if len(lat) else w0)
    cap = min(cap, w1)
    d = s[["meter_id", "installed", "removed"]].copy()
    d["meter_id"] = d["meter_id"].astype(str)
    inst = pd.to_datetime(d["installed"])
    rem = pd.to_datetime(d["removed"]) + pd.Timedelta(days=1)
    start = inst.where(inst.notna(), w0)
    end = rem.where(rem.notna(), cap)
    # installed / removed inside the window: count from the first / to the last interval of that day
    need = ((inst.notna() & (inst > w0)) | (rem.notna() & (rem < cap))).to_numpy()
    if need.any():
        ids = d.loc[need, "meter_id"]
        fl = ctx.sql(f"""SELECT CAST(c.meter_id AS VARCHAR) AS meter_id, min(c.ts) AS first, max(c.ts) AS last
                         FROM {table} c WHERE {ctx.where(quantity)} AND {_in(ids)} GROUP BY ALL""")
        d = d.merge(fl, on="meter_id", how="left")
        f_ = pd.to_datetime(d["first"])
        l_ = pd.to_datetime(d["last"])
        inside = inst.notna() & (inst > w0) & f_.notna()
        start = start.where(~inside, np.maximum(inst, f_))
        inside = rem.notna() & (rem < cap) & l_.notna()
        end = end.where(~inside, np.minimum(rem, l_ + step))
    del first, lastday
    d["svc_start"] = np.maximum(start, w0).astype("datetime64[us]")
    d["svc_end"] = np.minimum(end, cap).astype("datetime64[us]")
    return d[d["svc_end"] > d["svc_start"]][["meter_id", "svc_start", "svc_end"]].reset_index(drop=True)


def _periods(per: str, window) -> pd.DataFrame:
    w0, w1 = window
    if per == "all":
        return pd.DataFrame({"period": [_label(per, window)], "pstart": [w0], "pend": [w1]})
    freq = "D" if per == "day" else "MS"
    first = w0.normalize() if per == "day" else w0.normalize().replace(day=1)
    starts = pd.date_range(first, w1, freq=freq)
    starts = starts[starts < w1]
    ends = starts[1:].append(pd.DatetimeIndex([w1]))
    return pd.DataFrame({"period": starts.strftime(_PER_FMT[per]),
                         "pstart": np.maximum(starts, w0).astype("datetime64[us]"),
                         "pend": np.minimum(ends, w1).astype("datetime64[us]")})


def _completeness_frame(ctx: _Ctx, rule: Rule, s: pd.DataFrame) -> pd.DataFrame:
    """target, period, a, b (counted span), expected, present."""
    t = rule.table
    svc = _service(ctx, s, t, rule.quantity)
    per = _periods(rule.per, ctx.window)
    e = svc.merge(per, how="cross")
    e["a"] = np.maximum(e["pstart"], e["svc_start"])
    e["b"] = np.minimum(e["pend"], e["svc_end"])
    e = e[e["b"] > e["a"]].rename(columns={"meter_id": "target"})
    step = ctx.step_us
    e["expected"] = np.ceil((e["b"] - e["a"]) / pd.Timedelta(microseconds=step)).astype(np.int64)
    base = ctx.base(t, rule.per, rule.quantity)[["target", "period", "n_real"]]
    e = e.merge(base, on=["target", "period"], how="left")
    e["present"] = e["n_real"].fillna(0).astype(np.int64)
    # meters whose service starts or ends inside a period: count only the rows inside the service
    part = (e["a"] > e["pstart"]) | (e["b"] < e["pend"])
    if part.any():
        q = e.loc[part, ["target", "period", "a", "b"]].astype({"a": "datetime64[us]", "b": "datetime64[us]"})
        ctx.con.register("_q_per", q)
        est = ("AND NOT (c.quality_flag <> 'ok' AND contains(CAST(c.quality_flag AS VARCHAR), 'estimated'))"
               if ctx.has_flags(t) else "")
        cnt = ctx.sql(f"""SELECT p.target, p.period, count(*) AS n FROM {t} c JOIN _q_per p
                          ON CAST(c.meter_id AS VARCHAR) = p.target AND c.ts >= p.a AND c.ts < p.b
                          WHERE {ctx.where(rule.quantity)} AND {_in(q['target'])} {est} GROUP BY ALL""")
        e = e.merge(cnt, on=["target", "period"], how="left")
        e.loc[part, "present"] = e.loc[part, "n"].fillna(0).astype(np.int64)
        e = e.drop(columns="n")
    return e[["target", "period", "a", "b", "expected", "present"]].reset_index(drop=True)


def completeness_table(con, meters=None, *, per: str = "day", period=None, table: str = "consumption",
                       interval: str = "15min", reference=None, quantity=None) -> pd.DataFrame:
    """Present and expected intervals per meter and period — the numbers of the completeness rule
    (service windows respected).  ``meters``: a selector dict or a meter table (default all)."""
    from workbench.core.meters import normalize_meters
    views = _views(con)
    allm = normalize_meters(con.execute("SELECT * FROM meters").df())
    s = allm if meters is None else (select_meters(allm, meters) if isinstance(meters, dict)
                                      else normalize_meters(meters))
    window = _window(con, period, "consumption" in views)
    ctx = _Ctx(con, allm, window, int(pd.Timedelta(interval) / pd.Timedelta("1us")),
               (pd.Timestamp(reference), True) if reference is not None else (window[1], False), views, None)
    rule = Rule("completeness", "completeness", per=per, table=table,
                quantity=[quantity] if isinstance(quantity, str) else quantity)
    try:
        df = _completeness_frame(ctx, rule, s)
    finally:
        for name in ("_q_per",):
            try:
                con.unregister(name)
            except (duckdb.Error, KeyError):
                pass
    df["completeness"] = np.minimum(df["present"], df["expected"]) / df["expected"]
    return df


def _completeness(ctx: _Ctx, rule: Rule) -> pd.DataFrame:
    s = select_meters(ctx.meters, rule.meters)
    df = _completeness_frame(ctx, rule, s)
    if df.empty:
        return df
    df["present"] = np.minimum(df["present"], df["expected"])
    df["n_checked"] = df["expected"]
    df["n_failed"] = df["expected"] - df["present"]
    df["value"] = df["present"] / df["expected"]
    df["score"] = df["value"]
    df["passed"] = df["value"] >= float(rule.params["min"]) - 1e-12
    df["target_type"] = "meter"
    df["examples"] = "[]"
    bad = df[~df["passed"]]
    if len(bad):  # examples: the missing runs of the failing meter-periods
        t = rule.table
        q = bad[["target", "period", "a", "b"]].astype({"a": "datetime64[us]", "b": "datetime64[us]"})
        ctx.con.register("_q_per", q)
        rows = ctx.sql(f"""SELECT p.target, p.period, c.ts FROM {t} c JOIN _q_per p
                           ON CAST(c.meter_id AS VARCHAR) = p.target AND c.ts >= p.a AND c.ts < p.b
                           WHERE {ctx.where(rule.quantity)} AND {_in(q['target'])}""")
        step = pd.Timedelta(microseconds=ctx.step_us)
        edges = pd.concat([q.assign(ts=q["a"] - step)[["target", "period", "ts"]],
                           q.assign(ts=q["b"])[["target", "period", "ts"]]])
        allr = pd.concat([rows, edges], ignore_index=True)
        allr["ts"] = pd.to_datetime(allr["ts"]).astype("datetime64[us]")
        allr = allr.sort_values(["target", "period", "ts"]).drop_duplicates()
        prev = allr.groupby(["target", "period"])["ts"].shift()
        n = ((allr["ts"] - prev) / step).round() - 1
        runs = allr.assign(start=prev + step, end=allr["ts"] - step, n_missing=n)[n >= 1]
        if len(runs):
            runs = runs.assign(ts=runs["start"], start=runs["start"].dt.strftime("%Y-%m-%d %H:%M"),
                               end=runs["end"].dt.strftime("%Y-%m-%d %H:%M"),
                               n_missing=runs["n_missing"].astype(int))
            ex = _examples(runs, ["start", "end", "n_missing"])
            ex = ex.map(lambda s_: json.dumps([{k: v for k, v in r.items() if k != "ts"} for r in json.loads(s_)]))
            df = df.merge(ex.rename("ex").reset_index(), on=["target", "period"], how="left")
            df["examples"] = df["ex"].where(df["ex"].notna(), df["examples"])
    return df.drop(columns=[c for c in ("a", "b", "ex", "expected", "present") if c in df.columns])


# ---- staleness
def _staleness(ctx: _Ctx, rule: Rule) -> pd.DataFrame:
    s = select_meters(ctx.meters, rule.meters)
    ref_ts, _ = ctx.reference
    inst = pd.to_datetime(s["installed"])
    rem = pd.to_datetime(s["removed"]) + pd.Timedelta(days=1)
    s = s[((inst.isna() | (inst <= ref_ts)) & (rem.isna() | (rem > ref_ts))).to_numpy()]
    t = rule.table if rule.table in ctx.views else "consumption"
    last = pd.DataFrame({"target": s["meter_id"].astype(str).to_numpy()}).merge(
        ctx.last_ts(t, ref_ts), on="target", how="left")
    if last.empty:
        return last
    max_age = pd.Timedelta(str(rule.params["max_age"]))
    age = ref_ts - pd.to_datetime(last["last"])
    ok = (age.notna() & (age <= max_age)).to_numpy()
    last["value"] = age.dt.total_seconds() / 3600.0
    last["passed"] = ok
    ratio = (max_age / age.where(age > pd.Timedelta(0))).astype(float).fillna(0.0)
    last["score"] = np.where(ok, 1.0, ratio)
    last["n_checked"] = 1
    last["n_failed"] = (~ok).astype(int)
    last["period"] = f"{ref_ts:%Y-%m-%d %H:%M}"
    last["target_type"] = "meter"
    last["examples"] = [json.dumps([{"last_reading": None if pd.isna(x) else f"{x:%Y-%m-%d %H:%M}",
                                     "reference": f"{ref_ts:%Y-%m-%d %H:%M}",
                                     "max_age": str(rule.params['max_age'])}]) for x in last["last"]]
    return last.drop(columns=["last"])


# ---- balance
def _chain_root(meters: pd.DataFrame) -> dict:
    """meter_id → the first meter of its replacement chain (a replacement continues the member)."""
    rep = dict(zip(meters["meter_id"].astype(str), meters["replaces"].astype(str)))
    out = {}
    for mid in rep:
        root, seen = mid, set()
        while rep.get(root) and rep[root] in rep and root not in seen:
            seen.add(root)
            root = rep[root]
        out[mid] = root
    return out


def _balance(ctx: _Ctx, rule: Rule) -> pd.DataFrame:
    p = rule.params
    if p.get("method", "sum") == "share":
        return _share(ctx, rule)
    main = select_meters(ctx.meters, p["main"])
    subs = select_meters(ctx.meters, p["subs"])
    subs = subs[~subs["meter_id"].isin(main["meter_id"])]
    if main.empty:
        ctx.notes.append(f"{rule.id}: no main meter selected")
        return pd.DataFrame()
    unit = str(main["unit"].iloc[0])
    sel = pd.concat([pd.DataFrame({"target": main["meter_id"].astype(str), "role": "main",
                                   "f": _factors(main["unit"], unit)}),
                     pd.DataFrame({"target": subs["meter_id"].astype(str), "role": "sub",
                                   "f": _factors(subs["unit"], unit)})], ignore_index=True)
    if sel["f"].isna().any():
        ctx.notes.append(f"{rule.id}: meters {sel.loc[sel['f'].isna(), 'target'].tolist()} are not in {unit}; left out")
        sel = sel[sel["f"].notna()]
    t = "consumption" if "consumption" in ctx.views else rule.table
    b = ctx.base(t, rule.per, rule.quantity).merge(sel, on="target")
    if b.empty:
        return b
    b["q"] = b["vsum"] * b["f"]
    g = b.pivot_table(index="period", columns="role", values="q", aggfunc="sum").reindex(columns=["main", "sub"])
    nsub = b[b["role"] == "sub"].groupby("period")["target"].nunique()
    g = g.fillna({"sub": 0.0})
    g = g[g["main"].notna()]
    tol = p.get("tolerance")
    lo = float(p.get("min_ratio", 1 - tol if tol is not None else 0))
    hi = float(p.get("max_ratio", 1 + tol if tol is not None else np.inf))
    ratio = g["sub"] / g["main"].where(g["main"] > 0)
    ok = ratio.between(lo, hi).fillna(False)
    width = (hi - lo) if np.isfinite(hi - lo) and hi > lo else 0.05
    excess = np.maximum(lo - ratio, ratio - hi).clip(lower=0)
    name = p.get("name") or ",".join(sorted(set(main["node_id"].astype(str))))
    out = pd.DataFrame({
        "target": name, "target_type": "group", "source": ",".join(sorted(set(main["source"].astype(str)))),
        "period": g.index.to_numpy(), "value": ratio.to_numpy(), "passed": ok.to_numpy(),
        "score": (1 - excess / width).clip(0, 1).fillna(0.0).to_numpy(),
        "n_checked": 1, "n_failed": (~ok).astype(int).to_numpy(),
    })
    out["examples"] = [json.dumps([{"main": round(float(a), 3), "subs": round(float(c), 3), "unit": unit,
                                    "ratio": None if pd.isna(r) else round(float(r), 5), "min_ratio": lo,
                                    "max_ratio": None if not np.isfinite(hi) else hi,
                                    "n_subs": int(nsub.get(per_, 0))}])
                       for per_, a, c, r in zip(g.index, g["main"], g["sub"], ratio)]
    return out


def _share(ctx: _Ctx, rule: Rule) -> pd.DataFrame:
    p = rule.params
    subs = select_meters(ctx.meters, p["subs"])
    if subs.empty:
        return pd.DataFrame()
    root = _chain_root(ctx.meters)
    grp = subs["node_id"].astype(str)
    if p.get("group_by", "node") == "facility":
        grp = grp.str.split(".").str[0]
    sel = pd.DataFrame({"meter_id": subs["meter_id"].astype(str).to_numpy(), "grp": grp.to_numpy(),
                        "member": subs["meter_id"].astype(str).map(root).to_numpy(), "unit": subs["unit"].to_numpy()})
    first_unit = sel.groupby("grp")["unit"].transform("first")
    sel["f"] = [_factors([u], fu)[0] for u, fu in zip(sel["unit"], first_unit)]
    sel = sel[sel["f"].notna()]
    gsize = sel.groupby("grp")["member"].nunique()
    sel = sel[sel["grp"].map(gsize) >= 2].copy()
    if sel.empty:
        return pd.DataFrame()
    sel["gsize"] = sel["grp"].map(gsize).astype(int)
    sel["gi"] = pd.factorize(sel["grp"])[0]
    sel["mi"] = pd.factorize(sel["member"])[0]
    ctx.con.register("_q_sel", sel[["meter_id", "gi", "mi", "f", "gsize"]])
    t = "consumption" if "consumption" in ctx.views else rule.table
    okflag = "c.quality_flag = 'ok'" if ctx.has_flags(t) else "true"
    min_n = int(p.get("min_intervals", 96))
    # a member continued by a replacement may report twice at the swap: count members, not rows
    count = "count(DISTINCT mi)" if sel["member"].duplicated().any() else "count(*)"
    df = ctx.sql(f"""
    WITH x AS (
        SELECT s.gi, s.mi, s.gsize, c.ts, c.value * s.f AS v
        FROM {t} c JOIN _q_sel s ON CAST(c.meter_id AS VARCHAR) = s.meter_id
        WHERE {ctx.where(rule.quantity)} AND {okflag} AND {ctx.span(t)} = 1 AND {_in(sel['meter_id'])}
    ), full_ts AS (
        SELECT gi, ts FROM x GROUP BY gi, ts HAVING {count} = any_value(gsize)
    ), mp AS (
        SELECT x.gi, x.mi, {ctx.bucket(rule.per).replace('c.ts', 'x.ts')} AS pstart, sum(v) AS sv, count(*) AS n
        FROM x SEMI JOIN full_ts USING (gi, ts) GROUP BY ALL
    )
    SELECT gi, mi, pstart, n, sv / nullif(sum(sv) OVER (PARTITION BY gi, pstart), 0) AS share
    FROM mp WHERE n >= {min_n}
    """)
    gnames = sel.drop_duplicates("gi").set_index("gi")["grp"]
    mnames = sel.drop_duplicates("mi").set_index("mi")["member"]
    df["grp"] = df["gi"].map(gnames)
    df["member"] = df["mi"].map(mnames)
    if df.empty:
        return df
    df["period"] = ctx.label(rule.per, df["pstart"])
    min_periods = int(p.get("min_periods", 3))
    npers = df.groupby(["grp", "member"])["period"].transform("nunique")
    df = df[npers >= min_periods].copy()
    if df.empty:
        ctx.notes.append(f"{rule.id}: fewer than {min_periods} periods with complete data; shares not judged")
        return df
    df["ref"] = df.groupby(["grp", "member"])["share"].transform("median")
    df["dev"] = df["share"] / df["ref"] - 1
    tol = float(p["tolerance"])
    ok = (df["dev"].abs() <= tol).to_numpy()
    # a member continued by a replacement is reported under the meter that reports in the period
    members = sel.groupby("member")["meter_id"].agg(list).to_dict()
    out = pd.DataFrame({
        "target": [members[mm][-1] for mm in df["member"]], "target_type": "meter",
        "period": df["period"].to_numpy(), "value": df["share"].to_numpy(), "passed": ok,
        "score": (1 - (df["dev"].abs() - tol).clip(lower=0) / tol).clip(0, 1).to_numpy(),
        "n_checked": df["n"].to_numpy(), "n_failed": np.where(ok, 0, df["n"]),
    })
    out["examples"] = [json.dumps([{"node": g, "member": mm, "share": round(s_, 5), "median_share": round(r, 5),
                                    "deviation": round(d, 5), "complete_intervals": int(n)}])
                       for g, mm, s_, r, d, n in zip(df["grp"], df["member"], df["share"], df["ref"], df["dev"],
                                                     df["n"])]
    return out


# ---- duplicates, conflicts, flags
def _flag_rule(ctx: _Ctx, rule: Rule, t: str, flags: list[str], max_count, max_share=None) -> pd.DataFrame:
    if not ctx.has_flags(t):
        ctx.notes.append(f"{rule.id}: {t} has no quality_flag column")
        return pd.DataFrame()
    b = _base_for(ctx, rule, t)[["target", "period", "n"]].rename(columns={"n": "n_checked"})
    fl = ctx.flagged(t, rule.quantity)
    pat = r"(?:^|\|)(?:" + "|".join(re.escape(f) for f in flags) + r")(?:\||$)"
    hit = fl[fl["target"].isin(ctx.ids(rule)) & fl["flags"].str.contains(pat, regex=True)].copy()
    hit["period"] = ctx.label(rule.per, hit["ts"]) if len(hit) else pd.Series(dtype=object)
    fails = hit.groupby(["target", "period"], as_index=False).size().rename(columns={"size": "n_failed"})
    out = _attach(b, fails, _examples(hit, ["value", "flags"]))
    return _finish(out, max_count=max_count, max_share=max_share)


def _flags(ctx: _Ctx, rule: Rule) -> pd.DataFrame:
    p = rule.params
    flags = [str(f) for f in _as_list(p["flag"])]
    t = rule.table if rule.table in ctx.views else "consumption"
    mc = p.get("max_count", 0 if "max_share" not in p else None)
    return _flag_rule(ctx, rule, t, flags, mc, p.get("max_share"))


def _duplicates(ctx: _Ctx, rule: Rule) -> pd.DataFrame:
    t = "readings" if "readings" in ctx.views else "consumption"
    frames = [_flag_rule(ctx, rule, t, ["duplicate"], int(rule.params.get("max_count", 0)))]
    if ctx.counts:
        nd = int(ctx.counts.get("duplicate_rows_dropped", 0)) + int(ctx.counts.get("duplicate_stored", 0))
        frames.append(_batch_row(ctx, rule, nd))
    frames = [f for f in frames if f is not None and not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _batch_row(ctx: _Ctx, rule: Rule, n_failed: int) -> pd.DataFrame:
    n = max(int(ctx.counts.get("rows_in", 0)), 1)
    ok = n_failed <= int(rule.params.get("max_count", 0))
    return pd.DataFrame([{"target": "batch", "target_type": "batch", "source": "batch",
                          "period": _label("all", ctx.window), "passed": ok, "score": 1 - n_failed / n,
                          "value": n_failed / n, "n_checked": n, "n_failed": n_failed,
                          "examples": json.dumps([{"from": "preparation counts"}])}])


def _conflicts(ctx: _Ctx, rule: Rule) -> pd.DataFrame:
    frames = []
    if "quarantine" in ctx.views:
        ids = ctx.ids(rule)
        # the payload keeps the row as received: a timestamp with an offset is converted to local time
        rows = ctx.sql(r"""
        WITH q AS (
            SELECT json_extract_string(payload, '$.meter_id') AS target,
                   json_extract_string(payload, '$.ts') AS raw, reason
            FROM quarantine
            WHERE reason LIKE 'conflicting duplicate%' OR reason LIKE 'conflicts with stored value%'
        )
        SELECT target, reason,
               CASE WHEN regexp_matches(raw, '([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$')
                    THEN timezone('Asia/Shanghai', try_cast(raw AS TIMESTAMPTZ))
                    ELSE try_cast(raw AS TIMESTAMP) END AS ts
        FROM q""")
        rows = rows[rows["target"].isin(ids) & rows["ts"].notna()]
        rows = rows[(rows["ts"] >= ctx.window[0]) & (rows["ts"] < ctx.window[1])]
        if len(rows):
            rows = rows.drop_duplicates(["target", "ts"]).copy()
            rows["period"] = ctx.label(rule.per, rows["ts"])
            fails = rows.groupby(["target", "period"], as_index=False).size().rename(columns={"size": "n_failed"})
            rt = "readings" if "readings" in ctx.views else "consumption"
            b = ctx.base(rt, rule.per, rule.quantity)[["target", "period", "n"]]
            out = fails.merge(b, on=["target", "period"], how="left")
            out["n_checked"] = out["n"].fillna(0).astype(np.int64) + out["n_failed"]
            ex = _examples(rows.assign(reason=rows["reason"].str.slice(0, 120)), ["reason"])
            out = out.merge(ex.rename("examples").reset_index(), on=["target", "period"], how="left")
            frames.append(_finish(out.drop(columns="n"), max_count=int(rule.params.get("max_count", 0))))
    else:
        ctx.notes.append(f"{rule.id}: no quarantine view; conflicts only from preparation counts")
    if ctx.counts:
        nc = int(ctx.counts.get("conflicting_duplicate", 0)) + int(ctx.counts.get("conflicts_stored", 0))
        frames.append(_batch_row(ctx, rule, nc))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---- activity plausibility
_ACT_KEY = ["enterprise_id", "source", "item", "node_id"]


def _monthly_activity(ctx: _Ctx) -> pd.DataFrame:
    """The activity view summed per enterprise, source, item, node and month in the unit its
    factor is expressed per: ``enterprise_id, source, item, node_id, period, quantity, unit,
    n_records`` (every month the view holds, for the comparison with the year before)."""
    if "activity_monthly" in ctx._cache:
        return ctx._cache["activity_monthly"]
    from workbench.core.activity import normalized_quantities
    from workbench.core.factors import default_library

    cols = _columns(ctx.con, "activity")
    want = ["source", "item", "node_id", "period", "quantity", "unit", "quantity_normalized", "unit_normalized",
            "ncv_unit", "ef_unit", "enterprise_id"]
    sel = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" if c not in ("quantity", "quantity_normalized")
                    else f"CAST({c} AS DOUBLE) AS {c}" for c in want if c in cols)
    a = ctx.sql(f"SELECT {sel} FROM activity")
    for c in want:
        if c not in a.columns:
            a[c] = np.nan if c == "quantity_normalized" else ""
    for c in ("source", "item", "node_id", "period", "unit", "unit_normalized", "ncv_unit", "ef_unit",
              "enterprise_id"):
        a[c] = a[c].fillna("").astype(str).str.strip()
    monthly = a["period"].str.fullmatch(r"\d{4}-\d{2}")
    if (~monthly).any():
        ctx.notes.append(f"activity: {int((~monthly).sum())} records without a month (YYYY-MM) are not judged")
        a = a[monthly]
    # rows stored before the lake kept normalised quantities: normalised here, the same way
    todo = a["quantity_normalized"].isna() | a["unit_normalized"].eq("")
    if todo.any():
        qn, un, bad = normalized_quantities(a[todo], default_library())
        a.loc[todo, "quantity_normalized"], a.loc[todo, "unit_normalized"] = qn, un
        if bad:
            ctx.notes.append(f"activity: {len(bad)} records whose unit does not fit their factor are not judged "
                             f"({bad[0][1]})")
    a = a[a["quantity_normalized"].notna() & a["unit_normalized"].ne("")]
    # one unit per key (a site factor may be expressed per another unit): the most frequent one
    unit = a.groupby(_ACT_KEY)["unit_normalized"].agg(lambda x: x.value_counts().index[0]).rename("to_unit")
    a = a.join(unit, on=_ACT_KEY)
    f = np.ones(len(a))
    for (u, tu), idx in a.groupby(["unit_normalized", "to_unit"]).indices.items():
        f[idx] = _factors([u], tu)[0]
    a["q"] = a["quantity_normalized"].to_numpy() * f
    if np.isnan(f).any():
        ctx.notes.append(f"activity: {int(np.isnan(f).sum())} records in units that do not convert to their "
                         "key's other records are not judged")
        a = a[~np.isnan(a["q"])]
    out = (a.groupby(_ACT_KEY + ["period", "to_unit"], as_index=False)
           .agg(quantity=("q", "sum"), n_records=("q", "size"))
           .rename(columns={"to_unit": "unit"}))
    ctx._cache["activity_monthly"] = out
    return out


def _window_months(ctx: _Ctx) -> list[str]:
    w0, w1 = ctx.window
    last = (w1 - pd.Timedelta(microseconds=1)).to_period("M")
    return [str(p) for p in pd.period_range(w0.to_period("M"), last, freq="M")]


def _judge(ratio: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """(passed, score) of ratios against a factor, either way: passed when 1/f ≤ r ≤ f (NaN —
    both zero — passes); score min(1, f / max(r, 1/r))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        fold = np.where(ratio > 0, np.maximum(ratio, 1.0 / ratio), np.inf)
        fold = np.where(np.isnan(ratio), 1.0, fold)
        return fold <= factor * (1 + 1e-12), np.minimum(1.0, factor / fold)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((a == 0) & (b == 0), np.nan, a / b)


def _activity_target(df: pd.DataFrame) -> pd.Series:
    ent = df["enterprise_id"].where(df["enterprise_id"].ne(""), None)
    tail = df["source"] + "/" + df["item"] + "/" + df["node_id"]
    return (ent + "/" + tail).where(ent.notna(), tail)


def _activity(ctx: _Ctx, rule: Rule) -> pd.DataFrame:
    if "activity" not in ctx.views:
        ctx.notes.append(f"{rule.id}: no activity table; nothing to judge")
        return pd.DataFrame()
    p = rule.params
    a = _monthly_activity(ctx)
    months = _window_months(ctx)
    cur = a[a["period"].isin(months)].copy()
    if cur.empty:
        return pd.DataFrame()
    frames = []
    if "year_factor" in p:
        f = float(p["year_factor"])
        cur["last_period"] = [str(pd.Period(x, "M") - 12) for x in cur["period"]]
        prev = a.rename(columns={"period": "last_period", "quantity": "last_year", "n_records": "_n"})
        y = cur.merge(prev[_ACT_KEY + ["last_period", "unit", "last_year"]], on=_ACT_KEY + ["last_period", "unit"])
        if len(cur) > len(y):
            ctx.notes.append(f"{rule.id}: {len(cur) - len(y)} monthly activity values have no same month of the "
                             "year before to compare with")
        if len(y):
            r = _ratio(y["quantity"].to_numpy(), y["last_year"].to_numpy())
            ok, score = _judge(r, f)
            frames.append(pd.DataFrame({
                "target": _activity_target(y).to_numpy(), "target_type": "activity_year",
                "source": y["source"].to_numpy(), "period": y["period"].to_numpy(), "passed": ok, "score": score,
                "value": r, "n_checked": 1, "n_failed": (~ok).astype(int),
                "examples": [json.dumps([{"activity": round(float(q), 6), "last_year": round(float(q0), 6),
                                          "last_period": lp, "unit": u,
                                          "ratio": None if np.isnan(x) else round(float(x), 6), "factor": f}],
                                        ensure_ascii=False)
                             for q, q0, lp, u, x in zip(y["quantity"], y["last_year"], y["last_period"], y["unit"], r)],
            }))
    if "meter_factor" in p:
        frames.append(_activity_meters(ctx, rule, cur, float(p["meter_factor"]), float(p.get("min_coverage", 0.9))))
    frames = [x for x in frames if x is not None and len(x)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _activity_meters(ctx: _Ctx, rule: Rule, cur: pd.DataFrame, factor: float, min_coverage: float) -> pd.DataFrame:
    """Monthly activity against the meters' consumption of the month (see the module docstring)."""
    if "consumption" not in ctx.views:
        ctx.notes.append(f"{rule.id}: no consumption table; activity not compared with meters")
        return pd.DataFrame()
    m = ctx.meters
    pairs = set(zip(cur["source"], cur["item"]))
    m = m[[(s_, i_) in pairs for s_, i_ in zip(m["source"].astype(str), m["item"].astype(str))]]
    if m.empty:
        return pd.DataFrame()
    ccols = ctx.cols.get("consumption", set())
    ents = sorted(set(cur["enterprise_id"]))
    has_ent = "enterprise_id" in ccols
    if not has_ent and ents != [""] and len(ents) > 1:
        ctx.notes.append(f"{rule.id}: activity of several enterprises but consumption without enterprise_id; "
                         "activity not compared with meters")
        return pd.DataFrame()
    lo = pd.Period(min(cur["period"]), "M").start_time
    hi = (pd.Period(max(cur["period"]), "M") + 1).start_time
    ent_sql = "CAST(c.enterprise_id AS VARCHAR)" if has_ent else "''"
    cons = ctx.sql(f"""
        SELECT {ent_sql} AS enterprise_id, CAST(c.meter_id AS VARCHAR) AS meter_id,
               strftime(date_trunc('month', c.ts), '%Y-%m') AS period, sum(c.value) AS v,
               sum({ctx.span('consumption')}) AS n
        FROM consumption c WHERE {ctx.where(None, lo=lo, hi=hi)} AND {_in(m['meter_id'].astype(str))}
        GROUP BY ALL""")
    if not has_ent:
        cons["enterprise_id"] = ents[0] if ents else ""
    cons["enterprise_id"] = cons["enterprise_id"].fillna("").astype(str)
    meta = pd.DataFrame({"meter_id": m["meter_id"].astype(str).to_numpy(), "m_source": m["source"].astype(str).to_numpy(),
                         "m_item": m["item"].astype(str).to_numpy(), "m_node": m["node_id"].astype(str).to_numpy(),
                         "m_unit": m["unit"].astype(str).to_numpy(), "is_main": m["is_main"].astype(bool).to_numpy()})
    root = _chain_root(ctx.meters)
    meta["member"] = meta["meter_id"].map(root)
    cons = cons.merge(meta, on="meter_id")
    per_day = int(86_400_000_000 // ctx.step_us)
    rows = []
    for k in cur.itertuples(index=False):
        c = cons[(cons["enterprise_id"] == k.enterprise_id) & (cons["period"] == k.period)
                 & (cons["m_source"] == k.source) & (cons["m_item"] == k.item)
                 & ((cons["m_node"] == k.node_id) | cons["m_node"].str.startswith(k.node_id + "."))]
        if c.empty:
            continue
        if c["is_main"].any():
            c = c[c["is_main"]]
        f = _factors(c["m_unit"], k.unit)
        if np.isnan(f).any():
            ctx.notes.append(f"{rule.id}: meters {sorted(c.loc[np.isnan(f), 'meter_id'])} are not in a unit of "
                             f"{k.unit}; {k.source}/{k.item}/{k.node_id} {k.period} not compared with meters")
            continue
        expected = pd.Period(k.period, "M").days_in_month * per_day
        coverage = float(c["n"].sum()) / (expected * c["member"].nunique())
        metered = float((c["v"].to_numpy() * f).sum())
        rows.append({"enterprise_id": k.enterprise_id, "source": k.source, "item": k.item, "node_id": k.node_id,
                     "period": k.period, "activity": float(k.quantity), "meters": metered, "unit": k.unit,
                     "coverage": coverage, "meters_used": ", ".join(sorted(c["meter_id"]))})
    if not rows:
        return pd.DataFrame()
    d = pd.DataFrame(rows)
    thin = d["coverage"] < min_coverage
    if thin.any():
        ctx.notes.append(f"{rule.id}: {int(thin.sum())} monthly activity values not compared with meters that cover "
                         f"less than {min_coverage:.0%} of the month")
        d = d[~thin]
    if d.empty:
        return d
    r = _ratio(d["activity"].to_numpy(), d["meters"].to_numpy())
    ok, score = _judge(r, factor)
    return pd.DataFrame({
        "target": _activity_target(d).to_numpy(), "target_type": "activity_meters", "source": d["source"].to_numpy(),
        "period": d["period"].to_numpy(), "passed": ok, "score": score, "value": r, "n_checked": 1,
        "n_failed": (~ok).astype(int),
        "examples": [json.dumps([{"activity": round(x.activity, 6), "meters": round(x.meters, 6), "unit": x.unit,
                                  "ratio": None if np.isnan(q) else round(float(q), 6), "factor": factor,
                                  "meters_used": x.meters_used, "coverage": round(x.coverage, 4)}],
                                ensure_ascii=False) for x, q in zip(d.itertuples(index=False), r)],
    })


_KIND_FN = {"range": _range, "rate_of_change": _rate, "completeness": _completeness, "staleness": _staleness,
            "balance": _balance, "duplicates": _duplicates, "conflicts": _conflicts, "flags": _flags,
            "activity": _activity}


# --------------------------------------------------------------------------- scores
def score_table(results: pd.DataFrame) -> pd.DataFrame:
    """Scores per meter × month, source × month, month and overall.

    Each rule is first averaged over its results in the cell (a daily rule's 30 days count as
    one rule in the month), then the rules are averaged with their weights; ``info`` rules
    (weight 0) are left out.  Results of a whole-window period (``per: all``, batch rows) go to
    period ``all``.  Columns: level (meter | source | period | overall), key, period,
    score, n_rules, n_failed (failed results in the cell).
    """
    cols = ["level", "key", "period", "score", "n_rules", "n_failed"]
    if results is None or results.empty:
        return pd.DataFrame(columns=cols)
    r = results[results["weight"].astype(float) > 0].copy()
    if r.empty:
        return pd.DataFrame(columns=cols)
    per = r["period"].astype(str)
    r["month"] = np.where(per.str.match(r"^\d{4}-\d{2}(-\d{2}( \d{2}:\d{2})?)?$"), per.str[:7], "all")
    r["nf"] = (~r["passed"].astype(bool)).astype(int)
    r["source"] = r["source"].fillna("–").astype(str)

    def agg(keys, level):
        g = r.groupby(["rule"] + keys, dropna=False).agg(s=("score", "mean"), w=("weight", "first"), nf=("nf", "sum"))
        g = g.reset_index()
        g["ws"] = g["s"] * g["w"]
        h = g.groupby(keys, dropna=False).agg(ws=("ws", "sum"), w=("w", "sum"), n_rules=("rule", "nunique"),
                                             n_failed=("nf", "sum")) if keys else \
            pd.DataFrame([{"ws": g["ws"].sum(), "w": g["w"].sum(), "n_rules": g["rule"].nunique(),
                           "n_failed": g["nf"].sum()}])
        h = h.reset_index() if keys else h
        h["score"] = h["ws"] / h["w"].where(h["w"] > 0)
        h["level"] = level
        h["key"] = h[keys[0]] if keys and keys[0] != "month" else "all"
        h["period"] = h["month"] if "month" in keys else "all"
        return h[cols]

    meters_r = r["target_type"] == "meter"
    parts = []
    if meters_r.any():
        full = r
        r = full[meters_r]
        parts.append(agg(["target", "month"], "meter"))
        r = full
    parts += [agg(["source", "month"], "source"), agg(["month"], "period"), agg([], "overall")]
    out = pd.concat(parts, ignore_index=True)
    out["key"] = out["key"].astype(str)
    out["n_failed"] = out["n_failed"].astype(np.int64)
    return out
