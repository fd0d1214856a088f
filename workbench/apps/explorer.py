"""The footprint explorer page (碳足迹浏览, issue 13, point 1): an enterprise, a span of months and
a boundary node → headline figures, a Sankey of the flows, the trend by source, a meter × time
heat map, the drill-down from facility to meter, and exports of the view (CSV, PNG).

Thin: every number comes from :mod:`workbench.inventory.footprint` on the lake that
:meth:`~workbench.apps.auth.Principal.lake` opens (an enterprise not granted is refused there).
Per session, the inventories of a span are kept per (enterprise, start, end): a change of node
only calls :func:`~workbench.inventory.footprint.footprint_of` on them.
"""
from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path

import pandas as pd

__all__ = ["TEXT", "default_span", "kpis", "node_options", "page", "trend_png"]

#: the heat map's columns of buckets at most (a wide canvas; datashader fits them to the one drawn)
PIXELS = 1200

#: key → (zh, en)
TEXT = {
    "title": ("碳足迹浏览", "Footprint explorer"),
    "total": ("排放总量", "Total emissions"),
    "efficiency": ("碳效", "Carbon efficiency"),
    "change": ("同比变化", "Change on last year"),
    "no_last_year": ("去年同期无数据", "no data a year earlier"),
    "sankey": ("能流与排放流向", "Flows: carrier → source → facility → workshop"),
    "trend": ("分排放源月度趋势", "Monthly trend by source"),
    "heatmap": ("表计 × 时间 热力图", "Meters × time heat map"),
    "drill": ("下钻：设施 → 表计（选中一行进入该节点）", "Drill-down: facility → meter (select a row to enter it)"),
    "no_data": ("所选企业和期间没有数据", "No data for this enterprise and period"),
    "no_meters": ("该节点下没有表计数据", "No meter data below this node"),
    "emitted": ("排放", "emitted"),
    "exported": ("输出（抵扣）", "exported (credit)"),
}


def _t(key: str, lang: str) -> str:
    zh, en = TEXT[key]
    return zh if lang == "zh" else en


def _num(x, fmt: str) -> str:
    return "-" if x is None or pd.isna(x) else format(x, fmt)


def kpis(fp) -> dict:
    """The page's headline figures of a :class:`~workbench.inventory.footprint.Footprint`, as shown:
    ``total`` (tCO2e, 3 decimals), ``efficiency`` (tCO2e/万元, 4 decimals, ``-`` without value
    added), ``change`` (% of last year's tCO2e, signed, 1 decimal; ``-`` without last year) and
    ``change_t`` (tCO2e, signed)."""
    return {"total": _num(fp.total_tco2e, ".3f"), "efficiency": _num(fp.carbon_efficiency, ".4f"),
            "change": _num(fp.change_pct, "+.1f"), "change_t": _num(fp.change_tco2e, "+.3f")}


def node_options(boundary: pd.DataFrame, lang: str = "zh") -> dict:
    """``{label: node_id}`` of the boundary's nodes above the meters, in tree order."""
    if boundary is None or boundary.empty:
        return {}
    b = boundary[boundary["level"] != "meter"]
    kids = {}
    for _, r in b.iterrows():
        kids.setdefault(str(r.get("parent_id", "") or ""), []).append(r)
    out, ids = {}, set(b["node_id"].astype(str))

    def walk(parent: str, depth: int) -> None:
        for r in kids.get(parent, []):
            name = r.get("name_zh" if lang == "zh" else "name_en", "") or r.get("name_zh", "") or ""
            out[f"{'  ' * depth}{r['node_id']} {name}".rstrip()] = str(r["node_id"])
            walk(str(r["node_id"]), depth + 1)

    walk("", 0)
    for r in kids.values():                  # nodes whose parent is missing: still listed
        for x in r:
            if str(x["node_id"]) not in out.values() and str(x.get("parent_id", "")) not in ids:
                out[str(x["node_id"])] = str(x["node_id"])
    return out


def default_span(lake) -> tuple[str, str]:
    """The year to date of the lake's last month of activity data (``YYYY-MM``, ``YYYY-MM``)."""
    parts = lake.files("activity")["part"].astype(str).str[:7] if "part" in lake.files("activity") else []
    parts = [p for p in parts if len(p) == 7 and p[4] == "-"]
    last = max(parts) if parts else str(pd.Timestamp.now().to_period("M"))
    return f"{last[:4]}-01", last


def trend_png(trend: pd.DataFrame, title: str = "") -> bytes:
    """A PNG (matplotlib, no browser) of a month × source frame: stacked bars, tCO2e."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4), dpi=100)
    ax = fig.add_subplot()
    t = trend.loc[:, (trend != 0).any(axis=0)] if len(trend) else trend
    pos = t.clip(lower=0)
    neg = t.clip(upper=0)
    x = range(len(t.index))
    bottom_p = [0.0] * len(t.index)
    bottom_n = [0.0] * len(t.index)
    for col in t.columns:
        p, n = pos[col].tolist(), neg[col].tolist()
        ax.bar(x, p, bottom=bottom_p, label=str(col))
        if any(n):
            ax.bar(x, n, bottom=bottom_n, label=f"{col}")
        bottom_p = [a + b for a, b in zip(bottom_p, p)]
        bottom_n = [a + b for a, b in zip(bottom_n, n)]
    ax.set_xticks(list(x), [str(i) for i in t.index], rotation=45, ha="right")
    ax.set_ylabel("tCO2e")
    ax.set_title(title)
    ax.axhline(0, color="black", linewidth=0.5)
    if len(t.columns):
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _sankey(flows: pd.DataFrame, lang: str):
    """The Sankey of :func:`~workbench.inventory.footprint.sankey_flows` laid out by HoloViews
    (absolute widths, ``flow`` emitted / exported); ``None`` when nothing flows."""
    import holoviews as hv

    f = flows[flows["tco2e"].abs() > 0].copy()
    if f.empty:
        return None
    f["value"] = f["tco2e"].abs()
    f["flow"] = [_t("emitted" if s > 0 else "exported", lang) for s in f["sign"]]
    names = dict(zip(f["source"], f["source_name"])) | dict(zip(f["target"], f["target_name"]))
    nodes = hv.Dataset(pd.DataFrame({"index": list(names), "label": list(names.values())}), "index", "label")
    el = hv.Sankey((f[["source", "target", "value", "flow", "tco2e"]], nodes), ["source", "target"],
                   ["value", "flow", "tco2e"])
    column = max(f.groupby("stage")["target"].nunique().max(), f.loc[f["stage"] == f["stage"].iloc[0], "source"].nunique())
    if column > 20:
        # HoloViews pads 20 units (of 500) between nodes, less only when the padding alone fills the
        # height: dozens of workshops would leave the flows no height at all
        from holoviews.element.sankey import _layout_sankey

        el._nodes, el._edgepaths, el._sankey = _layout_sankey.instance(
            node_padding=max(1, int(200 / (column - 1)))).layout(el)
    return el


class _SankeyFigure:
    """The Sankey drawn as plain Bokeh glyphs — links as patches, nodes as quads, labels — whose
    data sources take the next layout on a change (HoloViews lays it out, :func:`_sankey`): no
    new models, and nothing recomputed in the browser but the glyphs."""

    def __init__(self, lang: str):
        from bokeh.models import ColumnDataSource, HoverTool
        from bokeh.plotting import figure

        self.links = ColumnDataSource({k: [] for k in ("xs", "ys", "color", "source", "target", "flow", "tco2e")})
        self.nodes = ColumnDataSource({k: [] for k in ("left", "right", "bottom", "top", "label")})
        self.labels = ColumnDataSource({k: [] for k in ("x", "y", "text")})
        fig = figure(height=380, sizing_mode="stretch_width", tools="pan,wheel_zoom,reset,save",
                     active_scroll=None, toolbar_location="above", title=_t("sankey", lang) + " (tCO2e)")
        links = fig.patches("xs", "ys", source=self.links, fill_color="color", fill_alpha=0.45, line_alpha=0,
                            hover_fill_alpha=0.8)
        nodes = fig.quad(left="left", right="right", bottom="bottom", top="top", source=self.nodes,
                         fill_color="#4c72b0", line_color="white")
        fig.text(x="x", y="y", text="text", source=self.labels, text_baseline="middle", text_align="left",
                 text_font_size="9pt")
        fig.add_tools(HoverTool(renderers=[links], tooltips=[("", "@source → @target"), ("", "@flow"),
                                                              ("tCO2e", "@tco2e{0,0.000}")]))
        fig.add_tools(HoverTool(renderers=[nodes], tooltips=[("", "@label")]))
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = None
        self.figure, self.lang = fig, lang

    def show(self, element, lang: str) -> None:
        """Put the laid-out :func:`_sankey` element in the glyphs' sources."""
        cmap = {_t("emitted", lang): "#d62728", _t("exported", lang): "#2ca02c"}
        edges = element.dframe()
        names = dict(zip(element.nodes.dimension_values(2), element.nodes.dimension_values("label")))
        paths = element._edgepaths.data
        self.links.data = {"xs": [p[:, 0] for p in paths], "ys": [p[:, 1] for p in paths],
                           "color": [cmap.get(f, "#999999") for f in edges["flow"]],
                           "source": [names.get(k, k) for k in edges["source"]],
                           "target": [names.get(k, k) for k in edges["target"]],
                           "flow": edges["flow"].tolist(), "tco2e": edges["tco2e"].tolist()}
        laid = element._sankey["nodes"]
        self.nodes.data = {"left": [n["x0"] for n in laid], "right": [n["x1"] for n in laid],
                           "bottom": [float(n["y0"]) for n in laid], "top": [float(n["y1"]) for n in laid],
                           "label": [names.get(n["index"], n["index"]) for n in laid]}
        offset = (laid[0]["x1"] - laid[0]["x0"]) / 4 if laid else 0
        self.labels.data = {"x": [n["x1"] + offset for n in laid],
                            "y": [(float(n["y0"]) + float(n["y1"])) / 2 for n in laid],
                            "text": [str(names.get(n["index"], n["index"])) for n in laid]}
        if lang != self.lang:
            self.figure.title.text, self.lang = _t("sankey", lang) + " (tCO2e)", lang


def _trend(trend: pd.DataFrame):
    """The month × source frame as stacked bars; ``None`` when it is all zero."""
    import holoviews as hv

    long = trend.reset_index().melt(id_vars="period", var_name="source", value_name="tco2e")
    long = long[long["source"].isin([c for c in trend.columns if (trend[c] != 0).any()])]
    if long.empty:
        return None
    return hv.Bars(long, ["period", "source"], "tco2e")


def _heat_image(frame: pd.DataFrame, freq: str, lo: pd.Timestamp, hi: pd.Timestamp, ids: list[str] | None = None):
    """The heat map's frame (:class:`~workbench.inventory.footprint.HeatmapReader`: one value per
    meter and ``freq`` bucket) laid out as an image, meters × buckets from ``lo`` to ``hi`` (each
    value in its cell, missing cells empty) — for datashader to rasterise; ``(image, meters)``.
    ``ids``: the meters' rows (default: the frame's meters in order)."""
    import holoviews as hv
    import numpy as np

    if ids is None:
        ids = [str(m) for m in frame["meter_id"].cat.categories] if len(frame) else []
    step = pd.Timedelta(freq)
    # datashader's regrid needs two rows and two columns at least: an empty one is added if not
    n = max(2, int(np.ceil((hi - lo) / step)))
    z = np.full((max(2, len(ids)), n), np.nan, dtype="float32")
    if len(frame):
        col = ((frame["ts"].to_numpy() - lo.to_datetime64()) // step.to_timedelta64()).astype("int64")
        at = {m: i for i, m in enumerate(ids)}
        row = np.array([at.get(str(m), -1) for m in frame["meter_id"].cat.categories])[frame["meter_id"].cat.codes]
        ok = (col >= 0) & (col < n) & (row >= 0)
        z[row[ok], col[ok]] = frame["value"].to_numpy()[ok]
    xs = pd.date_range(lo + step / 2, periods=n, freq=step).to_numpy()
    img = hv.Image((xs, np.arange(z.shape[0]), z), kdims=["ts", "meter"], vdims=["value"])
    return img, ids


def _meter_ticks(meter_ids: list[str], most: int = 40) -> list[tuple[int, str]]:
    """Tick labels of the meter axis: every meter up to ``most``, else evenly spaced ones."""
    step = max(1, -(-len(meter_ids) // most))
    return [(i, m) for i, m in enumerate(meter_ids) if i % step == 0]


def _background(work, then, fail) -> None:
    """``work()`` off the server's loop (a DuckDB read), then ``then(result)`` — or ``fail(exc)`` —
    on the session's document; inline when there is no server session (tests, notebooks)."""
    import panel as pn

    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        try:
            result = work()
        except Exception as exc:  # noqa: BLE001 - shown on the page
            fail(exc)
            return
        then(result)
        return

    def run():
        try:
            result = work()
        except Exception as exc:  # noqa: BLE001 - shown on the page
            doc.add_next_tick_callback(_on(doc, fail, exc))
            return
        doc.add_next_tick_callback(_on(doc, then, result))

    threading.Thread(target=run, daemon=True, name="explorer-heatmap").start()


def _after_flush(fn) -> None:
    """``fn()`` on the session's document once what the current callback changed has been
    written to the browser (a timeout, not the next tick: the loop writes in between); inline
    without a server session."""
    import panel as pn

    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        fn()
    else:
        doc.add_timeout_callback(_on(doc, fn), 30)


def _on(doc, fn, *args):
    """``fn(*args)`` as a callback of ``doc`` with Panel's current document set to it."""
    from panel.io.state import set_curdoc

    def run():
        with set_curdoc(doc):
            fn(*args)
    return run


def page(principal, lake_root):
    """The page for one session's principal.

    Per session and enterprise, one :class:`~workbench.inventory.footprint.FootprintSpan` — the
    inventory of the lake's months of data and the twelve before, computed once — gives the
    footprint of every span inside it and of every node (a span outside goes to
    :func:`~workbench.inventory.footprint.footprint`, kept per span).  A change updates the
    headline figures first, then the plots by sending their new data to the plots already drawn
    (HoloViews pipes: no new Bokeh models), then the heat map, read off the server's loop by a
    :class:`~workbench.inventory.footprint.HeatmapReader` at the canvas's resolution and
    rasterised by datashader (zooming re-aggregates).  ``#drawn`` names the selection every plot
    shows once all are updated."""
    import holoviews as hv
    import holoviews.plotting.bokeh  # the plotting backend, without a notebook's output
    import panel as pn
    from holoviews.operation.datashader import rasterize

    from workbench.apps.server import granted_enterprises, selection_widgets
    from workbench.inventory.footprint import (
        FootprintSpan,
        HeatmapReader,
        drill_down,
        footprint,
        footprint_of,
        heatmap_freq,
        sankey_flows,
        trend_by_source,
    )

    root = Path(lake_root)
    visible, asked, refused = granted_enterprises(principal, root)
    if refused is not None:
        return refused

    enterprise, start, end = selection_widgets(visible, asked)
    node = pn.widgets.Select(label="边界节点 / Boundary node", options={})
    lang = pn.widgets.RadioButtonGroup(label="语言 / Language", options={"中文": "zh", "English": "en"}, value="zh")
    heading = pn.pane.Markdown("## 碳足迹浏览 / Footprint explorer")
    headline = pn.pane.Markdown("", name="headline", sizing_mode="stretch_width")
    message = pn.pane.Alert("", alert_type="warning", visible=False, name="message")
    sankey_fig = _SankeyFigure(lang.value)
    sankey = pn.pane.Bokeh(sankey_fig.figure, sizing_mode="stretch_width", min_height=380, visible=False)
    trend = pn.pane.HoloViews(None, sizing_mode="stretch_width", min_height=380)
    heat = pn.pane.HoloViews(None, sizing_mode="stretch_width", min_height=240, name="heatmap")
    heat_note = pn.pane.Markdown("", name="heat_note", sizing_mode="stretch_width")
    drawn = pn.pane.HTML("", name="drawn", margin=0, styles={"display": "none"})
    drill_title = pn.pane.Markdown("")
    drill = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, selectable=1,
                                 pagination="remote", page_size=15, sizing_mode="stretch_width", label="drill")
    ledger_csv = pn.widgets.FileDownload(label="导出台账 CSV / Ledger CSV", filename="footprint-ledger.csv",
                                         color="primary")
    drill_csv = pn.widgets.FileDownload(label="导出下钻 CSV / Drill-down CSV", filename="footprint-drill-down.csv")
    png = pn.widgets.FileDownload(label="导出趋势 PNG / Trend PNG", filename="footprint-trend.png")
    lakes: dict = {}            # enterprise → its lake (opened through the principal: the grant checked)
    spans: dict = {}            # enterprise → FootprintSpan, or the ValueError of a lake without data
    direct: dict = {}           # (enterprise, start, end) outside the span → (inventory, last year's, consumption)
    readers: dict = {}          # enterprise → HeatmapReader
    plots: dict = {}            # name → (pipe, language it was drawn in)
    state: dict = {"fp": None, "drill": None, "trend": None, "gen": 0}

    def lake_of(ent: str):
        if ent not in lakes:
            lakes[ent] = principal.lake(root, ent)
        return lakes[ent]

    def selection(ent: str, s: str, e: str, nd: str):
        if ent not in spans:
            try:
                spans[ent] = FootprintSpan.compute(lake_of(ent))
            except ValueError as exc:
                spans[ent] = exc
        span = spans[ent]
        if isinstance(span, FootprintSpan) and span.covers(s, e, last_year=True):
            return span.footprint(s, e, nd)
        key = (ent, s, e)
        if key not in direct:
            lake = lake_of(ent)
            now = footprint(lake, s, e, last_year=False)
            prev = None
            try:
                prev = footprint(lake, *[str(pd.Period(m, "M") - 12) for m in (s, e)], last_year=False).inventory
            except ValueError as exc:
                if "no activity data" not in str(exc):
                    raise
            direct[key] = (now.inventory, prev, now.consumption)
        inv, prev, consumption = direct[key]
        return footprint_of(inv, nd, last_year=prev, consumption=consumption, enterprise_id=ent)

    def put(name: str, pane, element, lg: str, style, shape=None) -> None:
        """Show ``element`` in ``pane``: its data sent to the plot drawn (a pipe), or a new plot
        the first time, after a change of language and when its ``shape`` changes (what the
        plot's axes and glyphs are laid out for: a Sankey's links, the heat map's meters); the
        pane hidden when there is nothing."""
        if element is None:
            pane.visible = False
            return
        pipe, drawn_lang, drawn_shape = plots.get(name, (None, None, None))
        if pipe is None or drawn_lang != lg or drawn_shape != shape or pane.object is None:
            pipe = hv.streams.Pipe(data=element)
            pane.object = style(hv.DynamicMap(lambda data: data, streams=[pipe]))
            plots[name] = (pipe, lg, shape)
        else:
            pipe.send(element)
        pane.visible = True

    def trend_style(lg):
        return lambda dm: dm.opts(
            stacked=True, responsive=True, height=380, tools=["hover"], legend_position="right",
            title=_t("trend", lg) + " (tCO2e)", xrotation=45, framewise=True)

    def heat_style(lg, ids):
        height = max(240, min(640, 60 + 14 * len(ids)))

        def meter_axis(plot, element) -> None:
            # the meters of the image shown (a node change sends another image, not another plot)
            from bokeh.models import FixedTicker

            ticks = _meter_ticks(state.get("heat_ids") or [])
            axis = plot.state.yaxis[0]
            if isinstance(axis.ticker, FixedTicker):
                axis.ticker.ticks = [i for i, _ in ticks]
            else:
                axis.ticker = FixedTicker(ticks=[i for i, _ in ticks])
            axis.major_label_overrides = {i: m for i, m in ticks}

        def style(dm):
            # dynamic: each zoom re-aggregates the image at the canvas's resolution
            return rasterize(dm).opts(
                cmap="viridis", colorbar=True, responsive=True, height=height, tools=["hover"], ylabel="meter",
                title=_t("heatmap", lg), framewise=True, hooks=[meter_axis])
        return style

    def clear(text: str, kind: str = "warning") -> None:
        state.update(fp=None, drill=None, trend=None, gen=state["gen"] + 1)
        message.object, message.alert_type, message.visible = text, kind, True
        headline.object = ""
        for p in (sankey, trend, heat):
            p.visible = False
        heat_note.object = ""
        drill.value = pd.DataFrame()
        drill_title.object = ""
        drawn.object = ""

    def show(*_):
        lg = lang.value
        ent, s, e, nd = enterprise.value, start.value.strip(), end.value.strip(), node.value
        heading.object = f"## {_t('title', lg)}"
        if not nd:
            clear(f"{_t('no_data', 'zh')} / {_t('no_data', 'en')}: {ent}")
            return
        try:
            fp = selection(ent, s, e, nd)
        except ValueError as exc:
            clear(f"{_t('no_data', 'zh')} / {_t('no_data', 'en')}: {ent} {s} – {e} ({exc})")
            return
        except Exception as exc:  # noqa: BLE001 - one line for the user, the page stays
            clear(f"{exc}", "danger")
            return
        state["gen"] += 1
        gen = state["gen"]
        message.visible = False
        k = kpis(fp)
        b = fp.boundary
        change = (f"<span id='change'>{k['change']}</span>% (<span id='change_t'>{k['change_t']}</span> tCO2e)"
                  if fp.change_pct is not None or fp.change_tco2e is not None
                  else f"<span id='change'>-</span> ({_t('no_last_year', lg)})")
        headline.object = (
            f"**{ent}** · {b.name(fp.node_id, lg)} ({fp.node_id}) · "
            f"<span id='span'>{fp.period_start} – {fp.period_end}</span>\n\n"
            f"{_t('total', lg)}: <span id='total'>{k['total']}</span> tCO2e · "
            f"{_t('efficiency', lg)}: <span id='efficiency'>{k['efficiency']}</span> tCO2e/万元 · "
            f"{_t('change', lg)}: {change}")
        state["fp"] = fp
        if state.get("shown"):
            # the headline goes to the browser first, the plots once it has been sent
            _after_flush(lambda: charts(gen, ent, fp, lg, heat_too=True))
        else:
            # the first page holds the headline and the charts, and the heat map if its frame
            # (read beside the inventory) is there; else the heat map comes once the page is shown
            state["shown"] = True
            charts(gen, ent, fp, lg)
            if heat_ready(fp):
                heat_of(gen, ent, fp, lg)
            else:
                pn.state.onload(lambda: heat_of(gen, ent, fp, lg))

    def charts(gen: int, ent: str, fp, lg: str, heat_too: bool = False) -> None:
        if gen != state["gen"]:
            return                              # a later selection is on its way
        if heat_too:
            # read in a thread while the charts are made; drawn (and #drawn set) after them, on the loop
            heat_of(gen, ent, fp, lg)
        t = trend_by_source(fp)
        d = drill_down(fp, lang=lg)
        state.update(drill=d, trend=t)
        laid = _sankey(sankey_flows(fp, lang=lg), lg)
        if laid is not None:
            sankey_fig.show(laid, lg)
        sankey.visible = laid is not None
        put("trend", trend, _trend(t), lg, trend_style(lg))
        drill_title.object = f"### {_t('drill', lg)}"
        drill.value = d

    def heat_of(gen: int, ent: str, fp, lg: str) -> None:
        meters = heat_meters(ent, fp)
        lo = pd.Period(fp.period_start, "M").start_time
        hi = (pd.Period(fp.period_end, "M") + 1).start_time
        mark = f"{ent}|{fp.period_start}|{fp.period_end}|{fp.node_id}"
        heat_note.object = f"{_t('heatmap', lg)} …"

        def then(result) -> None:
            if gen != state["gen"]:
                return
            frame, freq = result
            if frame.empty:
                heat.visible = False
                heat_note.object = _t("no_meters", lg)
            else:
                img, ids = _heat_image(frame, freq, lo, hi)
                state["heat_ids"] = ids
                heat_show({"image": img, "ids": ids, "ent": ent, "lo": lo, "hi": hi, "meters": meters, "freq": freq},
                          lg)
                heat_note.object = (f"{_t('heatmap', lg)}: {len(ids):,} × {freq} "
                                    f"({len(frame):,} {'个值' if lg == 'zh' else 'values'})")
            drawn.object = f"<span id='drawn'>{mark}</span>"

        def fail(exc) -> None:
            if gen == state["gen"]:
                heat.visible = False
                heat_note.object = f"{_t('heatmap', lg)}: {exc}"
                drawn.object = f"<span id='drawn'>{mark}</span>"

        _background(lambda: reader_of(ent).frame(lo, hi, meters), then, fail)

    def heat_show(view: dict, lg: str) -> None:
        """The heat map of ``view`` (the image and what it was read for): sent to the plot drawn,
        or a new plot the first time and after a change of language."""
        drawn_plot = plots.get("heat")
        if drawn_plot is None or drawn_plot[1] != lg or heat.object is None:
            pipe, zoom = hv.streams.Pipe(data=view), hv.streams.RangeX()
            heat.object = heat_style(lg, view["ids"])(hv.DynamicMap(heat_element, streams=[pipe, zoom]))
            plots["heat"] = (pipe, lg, zoom)
        else:
            pipe, _, zoom = drawn_plot
            zoom.reset()                                # a new selection: its whole span, not the last zoom
            pipe.send(view)
        heat.visible = True

    def heat_element(data, x_range):
        """The image of the selection; zoomed in so far that the canvas needs finer buckets than
        it holds, the visible days read again at those (datashader re-aggregates either)."""
        img = data["image"]
        if not x_range or x_range[0] is None or x_range[1] is None:
            return img
        x0 = max(pd.Timestamp(x_range[0]), data["lo"])
        x1 = min(pd.Timestamp(x_range[1]), data["hi"])
        if x1 <= x0:
            return img
        lo, hi = x0.floor("D"), min(x1.ceil("D"), data["hi"])
        freq = heatmap_freq(lo, hi, PIXELS)
        if pd.Timedelta(freq) >= pd.Timedelta(data["freq"]):
            return img                                  # fine enough already
        try:
            frame, freq = reader_of(data["ent"]).frame(lo, hi, data["meters"], freq=freq)
        except Exception:  # noqa: BLE001 - the image held stays
            return img
        return _heat_image(frame, freq, lo, hi, ids=data["ids"])[0]

    def heat_meters(ent: str, fp):
        b = fp.boundary
        return None if fp.node_id == b.enterprise else _meters_below(lake_of(ent).meters(), b, fp.node_id)

    def heat_ready(fp) -> bool:
        ent = fp.enterprise_id
        return ent in readers and readers[ent].ready(pd.Period(fp.period_start, "M").start_time,
                                                     (pd.Period(fp.period_end, "M") + 1).start_time,
                                                     heat_meters(ent, fp))

    def reader_of(ent: str):
        if ent not in readers:
            readers[ent] = HeatmapReader(lake_of(ent), pixels=PIXELS)
        return readers[ent]

    def prefetch(ent: str, s: str, e: str) -> None:
        """On a server, the heat map's first frame (the enterprise's, of the span) read beside
        the inventory: the page asks for it once shown, and finds it read."""
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            return
        lo, hi = pd.Period(s, "M").start_time, (pd.Period(e, "M") + 1).start_time
        reader = reader_of(ent)

        def read():
            with contextlib.suppress(Exception):         # the page's own read reports any error
                reader.frame(lo, hi, None)
        threading.Thread(target=read, daemon=True, name="explorer-prefetch").start()

    def on_enterprise(*_):
        ent = enterprise.value
        state["quiet"] = True
        try:
            lake = lake_of(ent)
            opts = node_options(lake.boundary(), lang.value)
            if not start.value.strip() or not end.value.strip():
                s, e = default_span(lake)
                start.value, end.value = s, e
            cur = node.value
            node.options = opts
            node.value = cur if cur in opts.values() else next(iter(opts.values()), None)
            if not state.get("shown") and node.value == next(iter(opts.values()), None):   # the root
                prefetch(ent, start.value.strip(), end.value.strip())
        except Exception as exc:  # noqa: BLE001 - one line for the user, the page stays
            clear(f"{exc}", "danger")
            return
        finally:
            state["quiet"] = False
        show()

    def on_change(*_):
        if not state.get("quiet"):
            show()

    def on_select(event):
        d = state.get("drill")
        if d is None or not event.new:
            return
        row = d.iloc[event.new[0]]
        if row["kind"] == "node" and row["child_id"] in node.options.values():
            node.value = row["child_id"]

    def ledger_export():
        fp = state.get("fp")
        principal.exported(enterprise.value, f"footprint ledger CSV {node.value} {start.value}..{end.value}")
        buf = io.StringIO()
        (fp.ledger if fp is not None else pd.DataFrame()).to_csv(buf, index=False)
        buf.seek(0)
        return buf

    def drill_export():
        d = state.get("drill")
        principal.exported(enterprise.value, f"footprint drill-down CSV {node.value} {start.value}..{end.value}")
        buf = io.StringIO()
        (d if d is not None else pd.DataFrame()).to_csv(buf, index=False)
        buf.seek(0)
        return buf

    def png_export():
        t = state.get("trend")
        principal.exported(enterprise.value, f"footprint trend PNG {node.value} {start.value}..{end.value}")
        title = f"{enterprise.value} {node.value} {start.value} – {end.value} (tCO2e)"
        return io.BytesIO(trend_png(t if t is not None else pd.DataFrame(), title))

    ledger_csv.callback, drill_csv.callback, png.callback = ledger_export, drill_export, png_export
    enterprise.param.watch(on_enterprise, "value")
    lang.param.watch(on_enterprise, "value")
    for w in (start, end, node):
        w.param.watch(on_change, "value")
    drill.param.watch(on_select, "selection")
    on_enterprise()
    return pn.Column(heading, pn.Row(enterprise, start, end, node, lang),
                     pn.Row(ledger_csv, drill_csv, png), message, headline,
                     pn.Row(sankey, trend, sizing_mode="stretch_width"), heat_note, heat, drill_title, drill, drawn,
                     sizing_mode="stretch_width", name="explorer")


def _meters_below(meters: pd.DataFrame, boundary, node: str) -> list[str]:
    """The meters registered on ``node`` or a node below it (all meters for the enterprise)."""
    if meters is None or meters.empty:
        return []
    if node == boundary.enterprise:
        return meters["meter_id"].astype(str).tolist()
    known = set(boundary.nodes.index)
    return [str(m) for m, n in zip(meters["meter_id"], meters["node_id"].astype(str))
            if n in known and node in boundary.ancestors(n)]
