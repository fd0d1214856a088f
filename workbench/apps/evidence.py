"""The verifier's evidence page (issue 14, point 3; seed §9.3): from a reported figure down to the
records behind it — total → source → facility → ledger row → its activity record, the raw files it
came from (name, SHA-256, who sent them and when; downloadable) and the factors it used with their
provenance and why each was chosen.

Thin and read-only: every figure and record comes from
:func:`workbench.verification.evidence.collect` (the same evidence the verification package
carries) on the lake that :meth:`~workbench.apps.auth.Principal.lake` opens — an enterprise not
granted is refused there, whatever the URL asks.  The page has no widget that writes: tables are
not editable, and the only action, downloading a raw file, is a read checked and audited through
:meth:`~workbench.apps.auth.Principal.act` (``read``, with the file and its SHA-256 in the detail).
"""
from __future__ import annotations

import html
import io
import math
from pathlib import Path

import pandas as pd

__all__ = ["default_span", "page", "record_html"]


def default_span(lake) -> tuple[str, str]:
    """(first, last month) the page opens with: the reporting year of the lake's latest data, from
    January to that month; ("", "") for a lake without data."""
    from workbench.reports.status import status_months

    found = status_months(lake)
    if not found:
        return "", ""
    last = found[-1]
    return f"{last[:4]}-01", last


def _e(x) -> str:
    return html.escape("" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x))


def record_html(rec, fmt) -> str:
    """A ledger row's evidence as HTML: the record, its raw files, its factors (ids on the figures
    a browser test reads: ``record-id``, ``record-tco2e``, ``raw-sha256``, ``factor-ids`` …)."""
    led, act = rec.ledger, rec.activity
    raw = rec.raw
    sha = "; ".join(raw["sha256"]) if len(raw) else _e(led.get("raw_sha256"))
    names = "; ".join(raw["raw_name"]) if len(raw) else ""
    factor_rows = "".join(
        f"<tr><td>{_e(f.factor_id)}</td><td>{_e(f.kind)}</td><td class='factor-value'>{_e(f.value)}</td>"
        f"<td>{_e(f.unit)}</td><td>{_e(f.document)}</td><td>{_e(f.table)}</td><td>{_e(f.year)}</td>"
        f"<td>{_e(f.selection)}</td></tr>" for f in rec.factors.itertuples())
    raw_rows = "".join(
        f"<tr><td>{_e(b.batch_id)}</td><td>{_e(b.raw_name)}</td><td><code>{_e(b.sha256)}</code></td>"
        f"<td>{_e(b.size)}</td><td>{_e(b.source)}</td><td>{_e(b.sender)}</td><td>{_e(b.received_at)}</td></tr>"
        for b in raw.itertuples())
    overrides = "".join(f"<li>{k}: {_e(act.get(k))} {_e(act.get(u, ''))}</li>"
                        for k, u in (("ncv", "ncv_unit"), ("carbon_content", "carbon_content_unit"),
                                     ("oxidation_rate", ""), ("emission_factor", "ef_unit"), ("purity", ""))
                        if act.get(k) not in (None, "") and not (isinstance(act.get(k), float) and math.isnan(act[k])))
    return f"""<div id='evidence-record'>
<h4>活动记录 / Activity record <span id='record-id'>{_e(rec.record_id)}</span></h4>
<p>{_e(led.get('period'))} · {_e(led.get('source'))} · {_e(led.get('item'))} · {_e(led.get('node_id'))} ·
<span id='record-quantity'>{_e(led.get('quantity'))}</span> {_e(led.get('unit'))} ·
{_e(led.get('method'))} → <b><span id='record-tco2e'>{fmt(led.get('tco2e'), 6)}</span></b> tCO2e<br>
依据 / basis {_e(act.get('basis'))} · 数据来源 / document {_e(act.get('document'))} · 数据级别 / tier
{_e(act.get('data_tier'))}{' · 原始记录 / original record ' + _e(act.get('original_record'))
 if act.get('original_record') != rec.record_id else ''}</p>
{'<ul>' + overrides + '</ul>' if overrides else ''}
<h4>原始文件 / Raw files</h4>
<p>文件 / file <span id='raw-name'>{_e(names)}</span> · SHA-256 <code id='raw-sha256'>{_e(sha)}</code></p>
<table class='evidence'><tr><th>批次 batch</th><th>文件 file</th><th>SHA-256</th><th>字节 bytes</th><th>来源 source</th>
<th>发送方 sender</th><th>接收 received</th></tr>{raw_rows}</table>
<h4>排放因子 / Factors <span id='factor-ids'>{_e(led.get('factor_ids'))}</span></h4>
<table class='evidence'><tr><th>因子 factor</th><th>类型 kind</th><th>数值 value</th><th>单位 unit</th><th>文件 document</th>
<th>表号 table</th><th>年份 year</th><th>选用理由 why chosen</th></tr>{factor_rows}</table></div>
"""


def page(principal, lake_root):
    """The page for one session's principal."""
    import panel as pn

    from workbench.apps.server import granted_enterprises, selection_widgets
    from workbench.verification.evidence import collect, fmt

    root = Path(lake_root)
    visible, asked, refused = granted_enterprises(principal, root)
    if refused is not None:
        return refused
    enterprise, start, end = selection_widgets(visible, asked)
    headline = pn.pane.HTML("", name="headline", sizing_mode="stretch_width")
    crumbs = pn.pane.HTML("", name="crumbs", sizing_mode="stretch_width")
    message = pn.pane.Alert("", alert_type="warning", visible=False, name="message")

    def table(name):
        return pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, selectable=1, label=name,
                                    sizing_mode="stretch_width", pagination="local", page_size=15)

    sources, facilities, rows = table("sources"), table("facilities"), table("rows")
    detail = pn.pane.HTML("", name="record", sizing_mode="stretch_width")
    download = pn.widgets.FileDownload(label="下载原始文件 / Download raw file", filename="raw.bin",
                                       color="primary", visible=False)
    state: dict = {"ev": None, "source": None, "facility": None, "record": None}
    cache: dict = {}

    def evidence(ent, s, e):
        key = (ent, s, e)
        if key not in cache:
            cache[key] = collect(principal.lake(root, ent), ent, s, e)
        return cache[key]

    def trail() -> None:
        ev = state["ev"]
        parts = [f"<span class='crumb' id='crumb-total'>排放总量 / total {fmt(ev.total_tco2e)}</span>"]
        if state["source"]:
            bs = ev.by_source().set_index("source")
            parts.append(f"<span class='crumb' id='crumb-source'>{_e(state['source'])} "
                         f"{fmt(bs.at[state['source'], 'tco2e'])}</span>")
        if state["facility"]:
            bf = ev.by_facility(state["source"]).set_index("facility")
            parts.append(f"<span class='crumb' id='crumb-facility'>{_e(state['facility'])} "
                         f"{fmt(bf.at[state['facility'], 'tco2e'])}</span>")
        if state["record"]:
            parts.append(f"<span class='crumb' id='crumb-record'>{_e(state['record'])}</span>")
        crumbs.object = "<div id='path'>" + " › ".join(parts) + "</div>"

    def show(*_):
        if state.get("quiet"):
            return
        message.visible = False
        ent, s, e = enterprise.value, start.value.strip(), end.value.strip()
        if not s or not e:
            ds, de = default_span(principal.lake(root, ent))
            if not ds:
                message.object, message.visible = f"没有数据 / No data: {ent}", True
                return
            s, e = s or ds, e or de
            state["quiet"] = True
            try:
                start.value, end.value = s, e
            finally:
                state["quiet"] = False
        try:
            ev = evidence(ent, s, e)
        except Exception as exc:  # noqa: BLE001 - one line for the user, the page stays
            message.object, message.visible = f"{ent} {s} – {e}: {exc}", True
            headline.object = ""
            for t in (sources, facilities, rows):
                t.value = pd.DataFrame()
            return
        state.update(ev=ev, source=None, facility=None, record=None)
        inv = ev.inventory
        headline.object = (
            f"<b>{_e(ent)}</b> {_e(inv.enterprise.get('name_zh', ''))} · <span id='span'>{_e(inv.period_start)} – "
            f"{_e(inv.period_end)}</span> · {_e(inv.regime.name)} ({_e(', '.join(sorted(set(inv.ledger['edition']))))}) · "
            f"排放总量 / total <b><span id='total'>{fmt(ev.total_tco2e)}</span></b> tCO2e · 碳效 / carbon efficiency "
            f"<span id='efficiency'>{fmt(inv.summary.get('carbon_efficiency'), 4)}</span> tCO2e/万元 · "
            f"{len(inv.ledger)} 条台账 / ledger rows · {len(ev.batches)} 个原始文件 / raw files")
        bs = ev.by_source()
        sources.value = bs[["source", "name_zh", "name_en", "tco2e", "rows"]]
        facilities.value = pd.DataFrame()
        rows.value = pd.DataFrame()
        detail.object = ""
        download.visible = False
        trail()

    def on_source(event):
        ev = state["ev"]
        if ev is None or not event.new:
            return
        src = sources.value.iloc[event.new[0]]["source"]
        state.update(source=src, facility=None, record=None)
        facilities.value = ev.by_facility(src)
        rows.value = pd.DataFrame()
        detail.object = ""
        download.visible = False
        trail()

    def on_facility(event):
        ev = state["ev"]
        if ev is None or not event.new or state["source"] is None:
            return
        fac = facilities.value.iloc[event.new[0]]["facility"]
        state.update(facility=fac, record=None)
        rows.value = ev.rows(state["source"], fac)
        detail.object = ""
        download.visible = False
        trail()

    def on_row(event):
        ev = state["ev"]
        if ev is None or not event.new:
            return
        rid = rows.value.iloc[event.new[0]]["record_id"]
        rec = ev.record(rid)
        state["record"] = rid
        state["raw"] = rec.raw.iloc[0] if len(rec.raw) else None
        detail.object = record_html(rec, fmt)
        if state["raw"] is not None:
            download.filename = str(state["raw"]["raw_name"])
            download.visible = True
        else:
            download.visible = False
        trail()

    def raw_download():
        ev, b = state["ev"], state.get("raw")
        if ev is None or b is None:
            return io.BytesIO(b"")
        principal.act("read", ev.enterprise, f"evidence: raw file {b['file']} sha256 {b['sha256']} "
                                             f"(ledger row {state['record']})")
        _, data = ev.raw_file(b["batch_id"])
        return io.BytesIO(data)

    download.callback = raw_download
    for w in (enterprise, start, end):
        w.param.watch(show, "value")
    sources.param.watch(on_source, "selection")
    facilities.param.watch(on_facility, "selection")
    rows.param.watch(on_row, "selection")
    show()
    return pn.Column(
        pn.pane.Markdown("## 核查证据 / Verification evidence\n"
                         "从报告数字逐级追溯到台账行、活动记录、原始文件与排放因子（只读）。 / From a reported figure down to "
                         "its ledger rows, activity records, raw files and factors (read-only)."),
        pn.Row(enterprise, start, end), message, headline, crumbs,
        pn.pane.Markdown("### 按排放源 / By source"), sources,
        pn.pane.Markdown("### 按设施 / By facility"), facilities,
        pn.pane.Markdown("### 台账行 / Ledger rows"), rows,
        detail, download, sizing_mode="stretch_width", name="evidence")
