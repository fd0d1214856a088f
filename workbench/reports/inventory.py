"""Inventory report: plots, HTML (the regime's report structure), XLSX and Parquet outputs.

The sections, their titles, the source names, the label of the total and the standing notes are
the inventory's regime's (:mod:`workbench.regimes`); for GB/T 32150 (the NDRC reporting format)::

    1 报告主体基本信息 · 2 温室气体排放量 · 3 活动水平数据及来源 · 4 排放因子数据及来源 ·
    5 碳效 (carbon efficiency, the workbench's own, seed §3.6) · 6 其他希望说明的情况

The workbench adds its carbon-efficiency section (:data:`WORKBENCH_SECTIONS`) before the regime's
"other" section, or at the end.
"""
from __future__ import annotations

import base64
import datetime as _dt
import functools
import io
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.figure import (
    Figure,  # the object API: no GUI backend, safe in servers and kernels
)

from workbench.core.boundary import CLASSIFICATION_NAMES_ZH
from workbench.regimes import ReportSection, default_regime

__all__ = ["figures", "write_outputs", "render_html", "report_sections", "WORKBENCH_SECTIONS"]

#: colours of the sources, in the regime's order (more sources than colours: the palette repeats)
_PALETTE = ["#b5562c", "#8c6d31", "#3a6ea5", "#c98f2c", "#5b9f62", "#7fb7a8", "#6b4c9a", "#999999"]

#: sections the workbench adds to every regime's report (carbon efficiency, seed §3.6)
WORKBENCH_SECTIONS = (ReportSection("efficiency", "碳效", "Carbon efficiency", "seed §3.6 (碳效)"),)


def _regime(inv):
    return getattr(inv, "regime", None) or default_regime()


def _colors(regime) -> dict:
    return {s.key: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(regime.sources)}


def report_sections(regime) -> list[tuple[int, ReportSection]]:
    """(number, section) of the report: the regime's sections, with :data:`WORKBENCH_SECTIONS`
    placed before its "other" section (or last), numbered from 1."""
    secs = list(regime.report_sections)
    extra = [w for w in WORKBENCH_SECTIONS if w.content not in {s.content for s in secs}]
    at = next((i for i, s in enumerate(secs) if s.content == "other"), len(secs))
    secs[at:at] = extra
    return list(enumerate(secs, start=1))


@functools.lru_cache(maxsize=1)
def _cjk_font() -> str | None:
    """A font with Chinese glyphs, registering a system font matplotlib's cache predates."""
    from matplotlib import font_manager

    def known():
        for f in font_manager.fontManager.ttflist:
            if "CJK" in f.name or f.name in ("WenQuanYi Zen Hei", "SimHei", "Noto Sans SC"):
                return f.name
        return None

    if known() is None:
        for path in font_manager.findSystemFonts():
            if "CJK" in path or "wqy" in path.lower():
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
    return known()


def _label(en: str, zh: str) -> str:
    return f"{en} {zh}" if _cjk_font() else en


def _stacked_by_source(draw, positions, table: pd.DataFrame, base: str, regime) -> None:
    """Bars stacked by source; exported (negative) parts stack below zero."""
    pos = np.zeros(len(table))
    neg = np.zeros(len(table))
    colors = _colors(regime)
    for src in regime.sources:
        s = src.key
        v = table[s].to_numpy()
        draw(positions, v, color=colors[s], label=src.name_en, **{base: np.where(v >= 0, pos, neg)})
        pos += np.where(v >= 0, v, 0)
        neg += np.where(v < 0, v, 0)


def figures(inv) -> dict:
    """Matplotlib figures: by source, by facility, monthly trend, carbon efficiency."""
    font = _cjk_font()
    if font:
        matplotlib.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
        matplotlib.rcParams["axes.unicode_minus"] = False
    figs = {}
    regime = _regime(inv)
    colors = _colors(regime)
    bs = inv.by_source()
    fig = Figure(figsize=(8, 3.6))
    ax = fig.subplots()
    labels = [_label(en, zh) for en, zh in zip(bs["name_en"], bs["name_zh"])]
    ax.barh(labels, bs["tco2e"], color=[colors[s] for s in bs["source"]])
    ax.axvline(0, color="black", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("tCO2e")
    ax.set_title(_label("Emissions by source", "分类排放"))
    for y, v in enumerate(bs["tco2e"]):
        ax.text(v, y, f" {v:,.0f}", va="center", ha="left" if v >= 0 else "right", fontsize=8)
    fig.tight_layout()
    figs["by_source"] = fig

    bf = inv.cube["tco2e"].sum("period").to_pandas()
    fig = Figure(figsize=(8, 3.8))
    ax = fig.subplots()
    names = [f"{f} {inv.boundary.name(f, 'en') if f in inv.boundary.nodes.index else f}" for f in bf.index]
    _stacked_by_source(ax.barh, names, bf, "left", regime)
    ax.axvline(0, color="black", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("tCO2e")
    ax.set_title(_label("Emissions by facility and source", "分设施排放"))
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    figs["by_facility"] = fig

    mo = inv.monthly()
    fig = Figure(figsize=(8, 3.6))
    ax = fig.subplots()
    x = np.arange(len(mo.index))
    _stacked_by_source(ax.bar, x, mo, "bottom", regime)
    ax.plot(x, mo.sum(axis=1).to_numpy(), color="black", marker="o", lw=1.2, label="Total")
    ax.set_xticks(x, mo.index, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("tCO2e")
    ax.set_title(_label("Monthly emissions", "月度排放趋势"))
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False)
    fig.tight_layout()
    figs["monthly"] = fig

    eff = inv.efficiency
    fig = Figure(figsize=(8, 3.4))
    ax = fig.subplots()
    ax.plot(eff["period"], eff["carbon_efficiency"], marker="o", color="#2b6a4a")
    ax.set_ylabel("tCO2e / 万元" if font else "tCO2e per 10^4 CNY")
    ax.set_title(_label("Carbon efficiency (emissions per value added)", "碳效"))
    ax.tick_params(axis="x", rotation=45)
    # Zhejiang carbon-efficiency levels: ≤ 0.6 low carbon, > 2.0 high carbon (tCO2/万元)
    for lvl, c, name in ((0.6, "#5b9f62", _label("low-carbon limit 0.6", "低碳")),
                         (2.0, "#b5562c", _label("high-carbon above 2.0", "高碳"))):
        ax.axhline(lvl, color=c, ls="--", lw=0.8, label=name)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    figs["carbon_efficiency"] = fig
    return figs


def png_base64(fig, dpi: int = 110) -> str:
    """A figure as base64 PNG, for embedding in a self-contained HTML report."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


_png = png_base64


def _fmt(v, digits=3):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, (int, float, np.floating, np.integer)):
        return f"{v:,.{digits}f}"
    return str(v)


def render_html(inv, images: dict | None = None) -> str:
    env = Environment(loader=PackageLoader("workbench.reports", "templates"),
                      autoescape=select_autoescape(["html"]))
    env.filters["num"] = _fmt
    images = images if images is not None else {k: _png(f) for k, f in figures(inv).items()}
    regime = _regime(inv)
    led = inv.ledger
    by_fac = inv.by_facility()
    by_class = led.groupby("classification")["tco2e"].sum()
    return env.get_template("inventory.html.j2").render(
        inv=inv, ent=inv.enterprise, images=images, sources=regime.source_keys, regime=regime,
        sections=report_sections(regime),
        names_zh=regime.source_names("zh"), names_en=regime.source_names("en"), by_source=inv.by_source(),
        by_facility=by_fac, by_class=[(CLASSIFICATION_NAMES_ZH.get(k, "企业级 enterprise level"), k or "–", v) for k, v in by_class.items()],
        activity=led, factors=inv.factors_used, efficiency=inv.efficiency, meter_check=inv.meter_check,
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"), attrs=led.attrs,
        editions=sorted(set(led["edition"])),
    )


def write_outputs(inv, output_dir) -> dict:
    """Write report.html, inventory.xlsx, ledger.parquet and cube.parquet into ``output_dir``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{inv.period_start}_{inv.period_end}" if inv.period_start != inv.period_end else inv.period_end
    paths = {
        "html": out / f"inventory_{tag}.html",
        "xlsx": out / f"inventory_{tag}.xlsx",
        "ledger": out / f"ledger_{tag}.parquet",
        "cube": out / f"cube_{tag}.parquet",
    }
    paths["html"].write_text(render_html(inv), encoding="utf-8")
    ledger = inv.ledger.copy()
    ledger.attrs = {}
    ledger.to_parquet(paths["ledger"], index=False)
    inv.cube["tco2e"].to_dataframe().reset_index().to_parquet(paths["cube"], index=False)
    summary = pd.DataFrame([
        ("enterprise 报告主体", inv.enterprise.get("name_zh", ""), ""),
        ("period 核算期", f"{inv.period_start} – {inv.period_end}", ""),
        ("total emissions 排放总量", inv.summary["total_tco2e"], "tCO2e"),
        ("value added 增加值", inv.summary.get("value_added"), "万元"),
        ("carbon efficiency 碳效", inv.summary.get("carbon_efficiency"), "tCO2e/万元"),
        ("GWP set", inv.ledger.attrs.get("gwp_set", ""), ""),
        ("factor library 因子库", inv.ledger.attrs.get("factor_library_version"), ""),
        ("standard 标准", ", ".join(sorted(set(ledger["edition"]))), ""),
    ], columns=["item 项目", "value 数值", "unit 单位"])
    summary["value 数值"] = summary["value 数值"].astype(str)
    with pd.ExcelWriter(paths["xlsx"], engine="openpyxl") as xw:
        summary.to_excel(xw, sheet_name="summary 汇总", index=False)
        inv.by_source().to_excel(xw, sheet_name="by source 分类", index=False)
        inv.by_facility().to_excel(xw, sheet_name="by facility 设施")
        inv.monthly().to_excel(xw, sheet_name="monthly 月度")
        inv.efficiency.to_excel(xw, sheet_name="carbon efficiency 碳效", index=False)
        ledger.to_excel(xw, sheet_name="ledger 明细", index=False)
        inv.factors_used.to_excel(xw, sheet_name="factors 排放因子", index=False)
        if len(inv.meter_check):
            inv.meter_check.to_excel(xw, sheet_name="meter check 计量核对", index=False)
    return {k: str(v) for k, v in paths.items()}
