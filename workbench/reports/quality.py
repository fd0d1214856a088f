"""Data-quality report (数据质量报告): bilingual HTML with embedded plots, Parquet of the results.

``quality_report(con_or_lake, rules_path)`` evaluates a rule file with :mod:`workbench.lake.quality`
and writes ``quality_<window>.html`` (summary scores, failed rules with examples, completeness
heat map meter × day, balance ratio per month, flags over time, all rules), and
``quality_results_<window>.parquet`` / ``quality_scores_<window>.parquet``.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import duckdb
import matplotlib
import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.figure import (
    Figure,  # the object API: no GUI backend, safe in servers and kernels
)

from workbench.lake.quality import (
    QualityResult,
    completeness_table,
    demo_rules_path,
    evaluate,
    load_rules,
)
from workbench.reports.inventory import _cjk_font, _label, png_base64

__all__ = ["quality_report", "figures", "render_html", "resolve_connection", "summarize"]

SEVERITY_ZH = {"error": "错误", "warning": "警告", "info": "提示"}
KIND_ZH = {"range": "量程", "rate_of_change": "变化率", "completeness": "完整性", "staleness": "及时性",
           "balance": "平衡", "duplicates": "重复", "conflicts": "冲突", "flags": "标记"}
FLAG_COLORS = {"spike": "#b5562c", "stuck": "#8c6d31", "reset": "#c98f2c", "rollover": "#7fb7a8",
               "gap_spanning": "#3a6ea5", "off_grid": "#9a4a9a", "negative": "#000000", "estimated": "#999999"}


# --------------------------------------------------------------------------- inputs
def resolve_connection(con_or_lake):
    """A DuckDB connection with readings / consumption / meters views from what the caller has.

    Accepts a DuckDB connection; a :class:`workbench.ingestion.prepare.Prepared`; an object with a
    ``connection()``/``connect()`` method or a ``con`` attribute (the lake); or a directory with
    ``meters.csv`` and ``readings.parquet`` (the demo), which is prepared on the fly.
    Returns ``(con, counts)`` — counts are the preparation counts when preparation ran here.
    """
    from workbench.ingestion.prepare import Prepared, prepare_readings

    if isinstance(con_or_lake, duckdb.DuckDBPyConnection):
        return con_or_lake, None
    if isinstance(con_or_lake, Prepared):
        return con_or_lake.connect(), con_or_lake.counts
    if isinstance(con_or_lake, (str, Path)):
        d = Path(con_or_lake)
        if (d / "meters.csv").exists() and (d / "readings.parquet").exists():
            from workbench.core.meters import read_meters
            prep = prepare_readings(pd.read_parquet(d / "readings.parquet"), read_meters(d / "meters.csv"))
            return prep.connect(), prep.counts
        raise FileNotFoundError(f"{d}: expected meters.csv and readings.parquet")
    for name in ("connection", "connect", "duckdb"):
        fn = getattr(con_or_lake, name, None)
        if callable(fn):
            return fn(), None
    if isinstance(getattr(con_or_lake, "con", None), duckdb.DuckDBPyConnection):
        return con_or_lake.con, None
    raise TypeError(f"cannot get a DuckDB connection from {type(con_or_lake).__name__}")


# --------------------------------------------------------------------------- figures
def _setup_font():
    font = _cjk_font()
    if font:
        matplotlib.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
        matplotlib.rcParams["axes.unicode_minus"] = False


def _month_ticks(ax, dates: pd.DatetimeIndex, axis="x"):
    if not len(dates):
        return
    idx = [i for i, d in enumerate(dates) if d.day == 1] or [0]
    labels = [dates[i].strftime("%Y-%m") for i in idx]
    if axis == "x":
        ax.set_xticks(idx, labels, rotation=45, ha="right", fontsize=7)


def figures(con, q: QualityResult, *, max_meters: int = 60) -> dict:
    """Matplotlib figures: completeness heat map, balance ratios, flags over time, failures per rule."""
    _setup_font()
    figs = {}
    # ---- completeness heat map (meter × day)
    comp = completeness_table(con, per="day", period=q.window, interval=q.rules.interval)
    fig = Figure(figsize=(9, 0.16 * min(max(comp["target"].nunique(), 8), max_meters) + 1.6))
    ax = fig.subplots()
    if len(comp):
        mat = comp.pivot_table(index="target", columns="period", values="completeness", aggfunc="mean")
        if len(mat) > max_meters:  # the least complete meters
            mat = mat.loc[mat.mean(axis=1).sort_values().index[:max_meters]]
        mat = mat.sort_index()
        days = pd.to_datetime(mat.columns)
        im = ax.imshow(mat.to_numpy(dtype=float), aspect="auto", interpolation="nearest", cmap="RdYlGn",
                       vmin=0.8, vmax=1.0)
        ax.set_yticks(range(len(mat)), mat.index, fontsize=6)
        _month_ticks(ax, days)
        cb = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
        cb.set_label(_label("completeness", "完整率"), fontsize=8)
        ax.set_facecolor("#dddddd")  # out of service
    ax.set_title(_label("Daily completeness per meter (grey: not in service)", "每表每日数据完整率"))
    fig.tight_layout()
    figs["completeness"] = fig

    # ---- balance ratio per month
    r = q.results
    bal = r[(r["kind"] == "balance") & (r["target_type"] == "group")]
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    if len(bal):
        for (rule, target), g in bal.groupby(["rule", "target"]):
            g = g.sort_values("period")
            ax.plot(g["period"], g["value"], marker="o", label=f"{rule}: {target}")
            ex = json.loads(g["examples"].iloc[0])[0] if g["examples"].iloc[0] not in ("", "[]") else {}
            for key, ls in (("min_ratio", "--"), ("max_ratio", ":")):
                if ex.get(key) is not None:
                    ax.axhline(ex[key], color="grey", ls=ls, lw=0.8)
            bad = g[~g["passed"]]
            ax.scatter(bad["period"], bad["value"], color="#b5562c", zorder=3, s=40)
        ax.legend(fontsize=7, loc="best")
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    else:
        ax.text(0.5, 0.5, "no balance rule", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel(_label("Σ sub / main", "分表合计/总表"))
    ax.set_title(_label("Balance: Σ sub-meters / main meter per month", "总分表平衡"))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    figs["balance"] = fig

    # ---- flags over time (consumption rows flagged, per week)
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    try:
        fl = con.execute(f"""SELECT date_trunc('week', ts) AS wk, CAST(quality_flag AS VARCHAR) AS f, count(*) AS n
                             FROM consumption WHERE quality_flag <> 'ok'
                             AND ts >= TIMESTAMP '{q.window[0]}' AND ts < TIMESTAMP '{q.window[1]}'
                             GROUP BY ALL""").df()
    except duckdb.Error:
        fl = pd.DataFrame(columns=["wk", "f", "n"])
    if len(fl):
        fl = fl.assign(f=fl["f"].str.split("|")).explode("f")
        tab = fl.pivot_table(index="wk", columns="f", values="n", aggfunc="sum").fillna(0).sort_index()
        bottom = np.zeros(len(tab))
        x = pd.to_datetime(tab.index)
        for flag in tab.columns:
            ax.bar(x, tab[flag], width=5, bottom=bottom, label=flag, color=FLAG_COLORS.get(flag))
            bottom += tab[flag].to_numpy()
        ax.set_yscale("symlog")
        ax.legend(fontsize=7, ncol=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False)
    else:
        ax.text(0.5, 0.5, "no flagged intervals", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel(_label("flagged intervals", "标记时段数"))
    ax.set_title(_label("Flags over time (per week)", "异常标记随时间分布"))
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    fig.tight_layout()
    figs["flags"] = fig

    # ---- failed results per rule
    fig = Figure(figsize=(8, 3.0))
    ax = fig.subplots()
    fr = r.groupby("rule").agg(failed=("passed", lambda s: int((~s).sum())), sev=("severity", "first"))
    if len(fr):
        colors = fr["sev"].map({"error": "#b5562c", "warning": "#c98f2c", "info": "#7fb7a8"})
        ax.barh(fr.index, fr["failed"], color=colors)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel(_label("failed results (targets × periods)", "未通过数"))
    ax.set_title(_label("Failures per rule", "各规则未通过数"))
    fig.tight_layout()
    figs["failures"] = fig
    return figs


def _png(fig) -> str:
    return png_base64(fig, dpi=100)


# --------------------------------------------------------------------------- HTML
def _examples_text(s: str, limit: int = 5) -> str:
    try:
        ex = json.loads(s) if isinstance(s, str) else []
    except ValueError:
        return str(s)
    parts = []
    for e in ex[:limit]:
        if isinstance(e, dict):
            parts.append(", ".join(f"{k}={_num(v)}" for k, v in e.items()))
        else:
            parts.append(str(e))
    return "; ".join(parts)


def _num(v, digits=4):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "✓" if v else "✗"
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:,.{digits}f}" if abs(v) < 1e6 else f"{v:,.1f}"
    return str(v)


def summarize(q: QualityResult, counts: dict | None = None) -> dict:
    r = q.results
    failed = r[~r["passed"]]
    sc = q.scores
    overall = sc.loc[sc["level"] == "overall", "score"]
    by_source = sc[sc["level"] == "source"].groupby("key")["score"].mean()
    return {
        "window": [str(q.window[0]), str(q.window[1])],
        "rule_file": q.rules.source,
        "n_rules": len(q.rules.rules),
        "n_results": int(len(r)),
        "n_failed": int(len(failed)),
        "failed_by_severity": {k: int(v) for k, v in failed["severity"].value_counts().items()},
        "failed_rules": {k: int(v) for k, v in failed.groupby("rule").size().items()},
        "score": float(overall.iloc[0]) if len(overall) else None,
        "score_by_source": {k: float(v) for k, v in by_source.items()},
        "notes": list(q.notes),
        "preparation_counts": dict(counts) if counts else None,
    }


def render_html(q: QualityResult, images: dict, summary: dict, *, title: str | None = None,
                enterprise: dict | None = None, max_rows: int = 40) -> str:
    env = Environment(loader=PackageLoader("workbench.reports", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    env.filters["num"] = _num
    env.filters["examples"] = _examples_text
    r = q.results
    rules = []
    for rule in q.rules.rules:
        rr = r[r["rule"] == rule.id]
        fails = rr[~rr["passed"]].sort_values(["score", "target", "period"])
        rules.append({"rule": rule, "n": len(rr), "n_failed": len(fails), "fails": fails.head(max_rows),
                      "more": max(len(fails) - max_rows, 0),
                      "pass_rate": (1 - len(fails) / len(rr)) if len(rr) else None,
                      "params": ", ".join(f"{k}={v}" for k, v in rule.params.items()),
                      "selector": json.dumps(rule.meters, ensure_ascii=False) if rule.meters else "all 全部"})
    sc = q.scores
    src = sc[sc["level"] == "source"].pivot_table(index="key", columns="period", values="score")
    src = src[sorted(src.columns, key=lambda c: (c == "all", c))]
    per = sc[sc["level"] == "period"].set_index("period")["score"]
    worst = (sc[sc["level"] == "meter"].groupby("key")["score"].min().sort_values().head(15))
    counts = summary.get("preparation_counts") or {}
    return env.get_template("quality.html.j2").render(
        q=q, s=summary, images=images, rules=rules, severity_zh=SEVERITY_ZH, kind_zh=KIND_ZH,
        src=src, per=per, worst=worst, counts={k: v for k, v in counts.items() if v},
        title=title or q.rules.title, ent=enterprise or {},
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"))


# --------------------------------------------------------------------------- entry point
def quality_report(con_or_lake, rules_path=None, period=None, out=None, *, reference=None,
                   counts: dict | None = None, title: str | None = None, enterprise: dict | None = None) -> dict:
    """Evaluate ``rules_path`` (default the demo rules) and write the data-quality report.

    ``con_or_lake``: see :func:`resolve_connection`.  ``period``: as :func:`workbench.lake.quality.evaluate`
    (default the whole data).  ``out``: output directory (default ``output/quality-<window>`` in
    the checkout).  Returns ``{"html", "results", "scores": paths, "summary": dict}``.
    """
    con, prep_counts = resolve_connection(con_or_lake)
    if enterprise is None and isinstance(con_or_lake, (str, Path)) and (Path(con_or_lake) / "enterprise.json").exists():
        enterprise = json.loads((Path(con_or_lake) / "enterprise.json").read_text(encoding="utf-8"))
    counts = counts if counts is not None else prep_counts
    rules = load_rules(rules_path or demo_rules_path())
    q = evaluate(con, rules, period=period, reference=reference, counts=counts)
    w0, w1 = q.window
    tag = f"{w0:%Y%m%d}-{(w1 - pd.Timedelta(microseconds=1)):%Y%m%d}"
    if out is None:
        from workbench.reports.run import project_root
        out = project_root() / "output" / f"quality-{tag}"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / f"quality_{tag}.html", "results": out / f"quality_results_{tag}.parquet",
             "scores": out / f"quality_scores_{tag}.parquet"}
    summary = summarize(q, counts)
    images = {k: _png(f) for k, f in figures(con, q).items()}
    paths["html"].write_text(render_html(q, images, summary, title=title, enterprise=enterprise), encoding="utf-8")
    q.results.to_parquet(paths["results"], index=False)
    q.scores.to_parquet(paths["scores"], index=False)
    result = {k: str(v) for k, v in paths.items()}
    result["summary"] = summary
    return result

