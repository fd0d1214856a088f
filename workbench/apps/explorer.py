"""The footprint explorer page (碳足迹浏览, issue 13, point 1): an enterprise, a span of months and
a boundary node → headline figures, a Sankey of the flows, the trend by source, a meter × time
heat map, the drill-down from facility to meter, and exports of the view (CSV, PNG).

Thin: every number comes from :mod:`workbench.inventory.footprint` on the lake that
:meth:`~workbench.apps.auth.Principal.lake` opens (an enterprise not granted is refused there).
Per session, the inventories of a span are kept per (enterprise, start, end): a change of node
only calls :func:`~workbench.inventory.footprint.footprint_of` on them.
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

__all__ = ["TEXT", "default_span", "kpis", "node_options", "page", "trend_png"]

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
    return "-" if x is None or x != x else format(x, fmt)


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
    import holoviews as hv

    f = flows[flows["tco2e"].abs() > 0].copy()
    if f.empty:
        return hv.Text(0, 0, _t("no_data", lang)).opts(xaxis=None, yaxis=None)
    f["value"] = f["tco2e"].abs()
    f["flow"] = [_t("emitted" if s > 0 else "exported", lang) for s in f["sign"]]
    names = dict(zip(f["source"], f["source_name"])) | dict(zip(f["target"], f["target_name"]))
    nodes = hv.Dataset(pd.DataFrame({"index": list(names), "label": list(names.values())}), "index", "label")
    edges = f[["source", "target", "value", "flow", "tco2e"]]
    cmap = {_t("emitted", lang): "#d62728", _t("exported", lang): "#2ca02c"}
    return hv.Sankey((edges, nodes), ["source", "target"], ["value", "flow", "tco2e"]).opts(
        labels="label", edge_color="flow", cmap=cmap, node_color="#4c72b0", responsive=True, height=380,
        tools=["hover"], title=_t("sankey", lang) + " (tCO2e)")


def _trend(trend: pd.DataFrame, lang: str):
    import holoviews as hv

    long = trend.reset_index().melt(id_vars="period", var_name="source", value_name="tco2e")
    long = long[long["source"].isin([c for c in trend.columns if (trend[c] != 0).any()])]
    if long.empty:
        return hv.Text(0, 0, _t("no_data", lang)).opts(xaxis=None, yaxis=None)
    return hv.Bars(long, ["period", "source"], "tco2e").opts(
        stacked=True, responsive=True, height=380, tools=["hover"], legend_position="right",
        title=_t("trend", lang) + " (tCO2e)", xrotation=45)


def _heatmap(frame: pd.DataFrame, lang: str):
    """The meter × time frame rasterised by datashader (one row of pixels per meter)."""
    import datashader as ds
    import holoviews as hv
    from holoviews.operation.datashader import rasterize

    if frame.empty:
        return hv.Text(0, 0, _t("no_meters", lang)).opts(xaxis=None, yaxis=None)
    meters = [str(m) for m in frame["meter_id"].cat.remove_unused_categories().cat.categories]
    pos = {m: i for i, m in enumerate(meters)}
    pts = pd.DataFrame({"ts": frame["ts"], "meter": frame["meter_id"].astype(str).map(pos).astype("float64"),
                        "value": frame["value"]})
    points = hv.Points(pts, ["ts", "meter"], "value")
    img = rasterize(points, aggregator=ds.mean("value"), y_sampling=1, dynamic=True,
                    y_range=(-0.5, len(meters) - 0.5))
    return img.opts(cmap="viridis", colorbar=True, responsive=True, height=max(200, 40 + 24 * len(meters)),
                    yticks=[(i, m) for m, i in pos.items()], tools=["hover"], ylabel="meter",
                    title=_t("heatmap", lang))


def page(principal, lake_root):
    """The page for one session's principal."""
    import holoviews.plotting.bokeh  # noqa: F401 - the plotting backend, without a notebook's output
    import panel as pn

    from workbench.apps.server import granted_enterprises, selection_widgets
    from workbench.inventory.footprint import (
        drill_down,
        footprint,
        footprint_of,
        heatmap_frame,
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
    sankey = pn.pane.HoloViews(None, sizing_mode="stretch_width", min_height=380)
    trend = pn.pane.HoloViews(None, sizing_mode="stretch_width", min_height=380)
    heat = pn.pane.HoloViews(None, sizing_mode="stretch_width", min_height=200)
    drill_title = pn.pane.Markdown("")
    drill = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, selectable=1,
                                 pagination="remote", page_size=15, sizing_mode="stretch_width", label="drill")
    ledger_csv = pn.widgets.FileDownload(label="导出台账 CSV / Ledger CSV", filename="footprint-ledger.csv",
                                         color="primary")
    drill_csv = pn.widgets.FileDownload(label="导出下钻 CSV / Drill-down CSV", filename="footprint-drill-down.csv")
    png = pn.widgets.FileDownload(label="导出趋势 PNG / Trend PNG", filename="footprint-trend.png")
    cache: dict = {}            # (enterprise, start, end) → (inventory, last year's or None, consumption)
    state: dict = {"fp": None, "drill": None, "trend": None}

    def inventories(ent: str, s: str, e: str):
        key = (ent, s, e)
        if key not in cache:
            lake = principal.lake(root, ent)
            now = footprint(lake, s, e, last_year=False)
            prev = None
            shifted = [str(pd.Period(m, "M") - 12) for m in (s, e)]
            try:
                prev = footprint(lake, *shifted, last_year=False).inventory
            except ValueError as exc:
                if "no activity data" not in str(exc):
                    raise
            cache[key] = (now.inventory, prev, now.consumption)
        return cache[key]

    def clear(text: str, kind: str = "warning") -> None:
        state.update(fp=None, drill=None, trend=None)
        message.object, message.alert_type, message.visible = text, kind, True
        headline.object = ""
        for p in (sankey, trend, heat):
            p.object = None
        drill.value = pd.DataFrame()
        drill_title.object = ""

    def show(*_):
        lg = lang.value
        ent, s, e = enterprise.value, start.value.strip(), end.value.strip()
        heading.object = f"## {_t('title', lg)}"
        if not node.value:
            clear(f"{_t('no_data', 'zh')} / {_t('no_data', 'en')}: {ent}")
            return
        try:
            inv, prev, consumption = inventories(ent, s, e)
            fp = footprint_of(inv, node.value, last_year=prev, consumption=consumption, enterprise_id=ent)
        except ValueError as exc:
            clear(f"{_t('no_data', 'zh')} / {_t('no_data', 'en')}: {ent} {s} – {e} ({exc})")
            return
        except Exception as exc:  # noqa: BLE001 - one line for the user, the page stays
            clear(f"{exc}", "danger")
            return
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
        t = trend_by_source(fp)
        d = drill_down(fp, lang=lg)
        state.update(fp=fp, drill=d, trend=t)
        sankey.object = _sankey(sankey_flows(fp, lang=lg), lg)
        trend.object = _trend(t, lg)
        meters = _meters_below(principal.lake(root, ent).meters(), b, fp.node_id)
        heat.object = _heatmap(heatmap_frame(principal.lake(root, ent), s, e, meters=meters), lg)
        drill_title.object = f"### {_t('drill', lg)}"
        drill.value = d

    def on_enterprise(*_):
        ent = enterprise.value
        state["quiet"] = True
        try:
            lake = principal.lake(root, ent)
            opts = node_options(lake.boundary(), lang.value)
            if not start.value.strip() or not end.value.strip():
                s, e = default_span(lake)
                start.value, end.value = s, e
            cur = node.value
            node.options = opts
            node.value = cur if cur in opts.values() else next(iter(opts.values()), None)
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
                     pn.Row(sankey, trend, sizing_mode="stretch_width"), heat, drill_title, drill,
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
