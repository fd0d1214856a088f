"""The regional carbon-efficiency grades page (issue 14, point 4; seed §9.4 a 企业碳效标识): the
distribution of grades by county × industry, the enterprises that moved between two periods, the
trend of L, the grades table and the industry benchmarks — for the enterprises its user may read.

Thin, like every page: every figure comes from :mod:`workbench.grading` (the region accounted by the
engine, graded by the scheme).  The region is a directory (``workbench demo region`` writes one):
``$WORKBENCH_REGION``, else ``region/`` beside the lake root (``data/region`` for ``data/lake``).

**Who sees what** (decided here, enforced in :func:`region_view`, where the region is read):
a region is not an enterprise, so region-level access is mapped onto the enterprise grants —
a user sees the rows, counts, movements and trends of exactly the region's enterprises granted to
them (:meth:`~workbench.apps.auth.Principal.visible`); a regional manager is granted ``*`` (every
enterprise) and sees the whole region.  Grades themselves are computed over the whole region — the
benchmark is the industry's aggregate ratio, as the method defines it — so an enterprise's grade
does not depend on who looks; the benchmarks table shows aggregates only (Σ CO2, Σ value added,
the number of enterprises), and only for industries in which the user sees an enterprise.  A user
granted none of the region's enterprises is refused (logged).  One enterprise's evidence for a
reviewer: :func:`evidence_for` (the grant checked, then :func:`workbench.grading.grade_evidence`).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from workbench.apps.auth import AccessDenied

__all__ = ["REGION_ENV", "RegionView", "evidence_for", "headline_counts", "page", "region_dir", "region_view"]

#: the environment variable naming the region directory the page grades
REGION_ENV = "WORKBENCH_REGION"
ALL = "全部 / all"


def region_dir(lake_root) -> Path | None:
    """The region directory the page grades: ``$WORKBENCH_REGION``, else ``region`` beside the lake
    root; ``None`` if there is none."""
    env = os.environ.get(REGION_ENV)
    if env:
        return Path(env)
    cand = Path(lake_root).parent / "region"
    return cand if (cand / "enterprises.csv").exists() else None


@dataclass
class RegionView:
    """What one user sees of a region for a period: ``current`` and ``previous``
    (:class:`~workbench.grading.RegionGrades`, visible rows only; ``previous`` ``None`` without
    data), ``moved`` (:func:`~workbench.grading.movements`), ``periods`` the data offers."""

    current: object
    previous: object
    moved: pd.DataFrame
    periods: list
    visible: list


def _periods_of(months) -> list[str]:
    months = sorted(months)
    quarters = sorted({f"{m[:4]}-Q{(int(m[5:7]) - 1) // 3 + 1}" for m in months})
    years = sorted({m[:4] for m in months})
    return months + quarters + years


def _refuse(principal, region) -> None:
    if principal.store is not None:
        principal.store.log(principal.name, "denied:read", detail=f"region {region}: no enterprise granted", ok=False,
                            client=principal.client)
    raise AccessDenied(f"user {principal.name!r} is granted none of the enterprises of the region {region}")


def region_view(principal, region, period=None, *, previous=None, scheme=None) -> RegionView:
    """The region graded for ``period`` (default: the latest month with data) and ``previous``
    (default: the period just before), holding only the enterprises ``principal`` may read.

    The grant is checked here, where the region is read: the enterprises of the region the
    principal is not granted never leave :func:`workbench.grading.grade_emissions`.  Raises
    :class:`~workbench.apps.auth.AccessDenied` (logged) when none is granted."""
    from workbench.grading import grade_emissions, load_region, movements, parse_period

    principal.require("read")
    em = load_region(region)
    visible = principal.visible(em.data.enterprises["enterprise_id"].tolist())
    if not visible:
        _refuse(principal, region)
    months = sorted(set(em.monthly["period"]))
    p = parse_period(period or months[-1])
    prev = parse_period(previous) if previous else p.previous()
    current = grade_emissions(em, p, scheme, visible=visible)
    before = grade_emissions(em, prev, scheme, visible=visible) if set(prev.months) <= set(months) else None
    moved = movements(before, current) if before is not None else movements(current.grades.iloc[:0], current)
    return RegionView(current, before, moved, _periods_of(months), visible)


def evidence_for(principal, region, enterprise_id: str, period, scheme=None):
    """One enterprise's grade with its evidence (:class:`~workbench.grading.GradeEvidence`), for a
    user who may read that enterprise (checked and, when refused, logged)."""
    from workbench.grading import grade_evidence

    principal.require("read", enterprise_id)
    return grade_evidence(region, enterprise_id, period, scheme)


def headline_counts(grades: pd.DataFrame) -> dict:
    """The page's headline: enterprises, per grade ``"1"`` … ``"5"``, ``ungraded``."""
    from workbench.grading import grade_distribution

    d = grade_distribution(grades, ()).iloc[0]
    return {"enterprises": int(d["total"]), **{str(g): int(d[g]) for g in range(1, 6)}, "ungraded": int(d["ungraded"])}


def _filtered(grades: pd.DataFrame, county: str, industry: str) -> pd.DataFrame:
    g = grades
    if county and county != ALL:
        g = g[g["county_code"] == county.split(" ")[0]]
    if industry and industry != ALL:
        g = g[g["industry"] == industry.split(" ")[0]]
    return g


def _trend_figure(trend: pd.DataFrame, names: dict):
    from matplotlib.figure import Figure

    from workbench.apps.style import matplotlib_cjk

    matplotlib_cjk()
    fig = Figure(figsize=(10, 4.2))
    ax = fig.subplots()
    for ind, t in trend.groupby("industry"):
        line, = ax.plot(t["period"], t["l"], marker="o", label=f"{ind} {names.get(ind, '')} L")
        if "benchmark_l" in t and t["benchmark_l"].notna().any():
            ax.plot(t["period"], t["benchmark_l"], linestyle=":", color=line.get_color(),
                    label=f"{ind} 行业基准 / benchmark")
    ax.set_ylabel("L (tCO2/万元)")
    ax.set_xlabel("期间 / period")
    ax.set_title("碳效值趋势（可见企业）/ Trend of L (visible enterprises)")
    ax.tick_params(axis="x", rotation=45)
    if len(trend):
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def page(principal, lake_root):
    """The page for one session's principal."""
    import panel as pn

    from workbench.grading import (
        available_schemes,
        get_scheme,
        grade_distribution,
        l_trend,
    )
    from workbench.grading.engine import grade_emissions
    from workbench.grading.region import load_region

    region = region_dir(lake_root)
    if region is None or not (Path(region) / "enterprises.csv").exists():
        return pn.pane.Alert(f"没有区域数据 / No region data: set ${REGION_ENV} to a region directory "
                             "(`workbench demo region --out DIR`)", alert_type="warning")
    try:
        view = region_view(principal, region)
    except AccessDenied as exc:
        return pn.pane.Alert(f"无权访问 / Not permitted: {exc}", alert_type="danger", name="denied")
    periods = view.periods
    em = load_region(region)
    vis = view.current.grades
    counties = sorted({f"{c} {n}" for c, n in zip(vis["county_code"], vis["county_name_zh"])})
    industries = sorted({f"{i} {n}" for i, n in zip(vis["industry"], vis["industry_name_zh"])})
    period = pn.widgets.Select(name="期间 / Period", options=periods, value=view.current.periods[0])
    previous = pn.widgets.Select(name="对比期 / Previous period", options=["自动 / auto", *periods], value="自动 / auto")
    county = pn.widgets.Select(name="区县 / County", options=[ALL, *counties], value=ALL)
    industry = pn.widgets.Select(name="行业 / Industry", options=[ALL, *industries], value=ALL)
    scheme = pn.widgets.Select(name="评级方案 / Scheme", options=sorted(available_schemes()), value=get_scheme().name)
    headline = pn.pane.Markdown("", name="headline", sizing_mode="stretch_width")
    note = pn.pane.Markdown("", name="note", sizing_mode="stretch_width")
    message = pn.pane.Alert("", alert_type="danger", visible=False)
    tables = {k: pn.widgets.Tabulator(pd.DataFrame(), pagination="remote", page_size=15, disabled=True,
                                      show_index=False, name=k, sizing_mode="stretch_width")
              for k in ("distribution", "moved", "grades", "benchmarks")}
    trend = pn.pane.Matplotlib(None, dpi=96, tight=True, name="trend", sizing_mode="stretch_width")
    download = pn.widgets.FileDownload(label="导出 CSV / Export CSV", filename="regional-grades.csv",
                                       button_type="primary")
    state = {}
    trend_cache = {}

    def refresh(*_):
        message.visible = False
        try:
            v = region_view(principal, region, period.value,
                            previous=None if previous.value.startswith("自动") else previous.value,
                            scheme=scheme.value)
        except Exception as exc:  # noqa: BLE001 - shown in one line, the page stays
            message.object, message.visible = f"{exc}", True
            return
        g = _filtered(v.current.grades, county.value, industry.value)
        state["grades"] = g
        h = headline_counts(g)
        sch = v.current.scheme
        cells = " · ".join(f"{n} 级 / grade {n}: <span id='g{n}'>{h[str(n)]}</span>" for n in range(1, 6))
        prev = v.previous.periods[0] if v.previous is not None else "-"
        headline.object = (f"**{v.current.periods[0]}** · {sch.title_zh} · 企业 / enterprises "
                           f"<span id='enterprises'>{h['enterprises']}</span> (of {v.current.population} in the region) · "
                           f"{cells} · 未评级 / ungraded <span id='ungraded'>{h['ungraded']}</span> · "
                           f"对比 / against {prev}: 升级 up <span id='up'>{int((_filtered(v.moved, county.value, industry.value)['direction'] == 'up').sum())}</span>"
                           f" · 降级 down <span id='down'>{int((_filtered(v.moved, county.value, industry.value)['direction'] == 'down').sum())}</span>")
        note.object = ("**示例方案，非标准 / illustrative scheme, not a standard.** " if sch.illustrative else "") + (
            "阈值按参考资料：K 的 1.2 界值来自 OCR 文本，DB33/T 1347—2023 阈值未经核实 / thresholds as recorded in the "
            "reference: the K boundary 1.2 is from an OCR'd source, DB33/T 1347—2023's thresholds are UNVERIFIED."
            if sch.name == "zhejiang" else "")
        dist = grade_distribution(g, ("county_code", "industry"))
        names = dict(zip(g["county_code"], g["county_name_zh"]))
        dist.insert(1, "county_name_zh", dist["county_code"].map(names))
        dist.columns = [str(c) for c in dist.columns]
        tables["distribution"].value = dist
        tables["moved"].value = _filtered(v.moved, county.value, industry.value)
        tables["grades"].value = g[["enterprise_id", "name_zh", "county_name_zh", "industry", "co2_t",
                                    "value_added_10k_cny", "l", "level", "benchmark_l", "k", "grade", "status",
                                    "flags"]].assign(grade=lambda d: d["grade"].astype("Int64").astype("string"))
        b = v.current.benchmarks
        if industry.value != ALL:
            b = b[b["industry"] == industry.value.split(" ")[0]]
        tables["benchmarks"].value = b
        key = (scheme.value, county.value, industry.value)
        if key not in trend_cache:
            months = [p for p in periods if "Q" not in p and len(p) == 7]
            allm = grade_emissions(em, months, scheme.value, visible=view.visible)
            allm.grades = _filtered(allm.grades, county.value, industry.value)
            t = l_trend(allm)
            trend_cache[key] = _trend_figure(t, dict(zip(allm.grades["industry"], allm.grades["industry_name_zh"])))
        trend.object = trend_cache[key]

    def export():
        principal.exported(None, f"regional grades CSV {period.value}")
        buf = io.StringIO()
        state.get("grades", pd.DataFrame()).to_csv(buf, index=False)
        buf.seek(0)
        return buf

    download.callback = export
    for w in (period, previous, county, industry, scheme):
        w.param.watch(refresh, "value")
    refresh()
    tabs = pn.Tabs(("等级分布（区县 × 行业）/ Distribution by county × industry", tables["distribution"]),
                   ("等级变动 / Moved between periods", tables["moved"]),
                   ("碳效值趋势 / Trend of L", trend),
                   ("企业 / Enterprises", tables["grades"]),
                   ("行业基准 / Industry benchmarks", tables["benchmarks"]))
    return pn.Column(pn.pane.Markdown("## 区域碳效等级 / Regional carbon-efficiency grades (碳效码)"),
                     pn.Row(period, previous, county, industry, scheme, download), message, headline, note, tabs,
                     sizing_mode="stretch_width")
