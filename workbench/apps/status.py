"""The data-status page (issue 13, point 3): per enterprise and month, completeness by meter and
source, quarantined rows with their reasons, the last imports, bills against meters.

Thin: every frame comes from :func:`workbench.reports.status.data_status` on the lake that
:meth:`~workbench.apps.auth.Principal.lake` opens — an enterprise not granted is refused there,
whatever the URL (``?enterprise=``) asks for.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["TABLES", "page", "summary"]

#: DataStatus attribute → (heading zh, heading en)
TABLES = {
    "reconciliation": ("账单与表计核对", "Bills against meters"),
    "meters": ("表计完整率", "Completeness by meter"),
    "sources": ("排放源数据完整性", "Completeness by source"),
    "quarantine": ("隔离数据及原因", "Quarantined rows and reasons"),
    "imports": ("最近导入", "Last imports"),
}


def summary(status) -> dict:
    """The page's headline figures of a :class:`~workbench.reports.status.DataStatus`."""
    m, q, r = status.meters, status.quarantine, status.reconciliation
    return {
        "months": f"{status.months[0]} – {status.months[-1]}" if status.months else "-",
        "meters": int(m["meter_id"].nunique()) if len(m) else 0,
        "completeness": float(m["intervals_present"].sum() / m["expected_intervals"].sum())
        if len(m) and m["expected_intervals"].sum() else float("nan"),
        "quarantined": int(q["rows"].sum()) if len(q) else 0,
        "flagged_bills": int(r["flagged"].sum()) if len(r) else 0,
    }


def page(principal, lake_root):
    """The page for one session's principal."""
    import panel as pn

    from workbench.apps.server import granted_enterprises, selection_widgets
    from workbench.reports.status import data_status

    root = Path(lake_root)
    visible, asked, refused = granted_enterprises(principal, root)
    if refused is not None:
        return refused
    enterprise, start, end = selection_widgets(visible, asked)
    headline = pn.pane.Markdown("", css_classes=["headline"], name="headline")
    tabs = pn.Tabs()
    message = pn.pane.Alert("", alert_type="danger", visible=False)
    download = pn.widgets.FileDownload(label="导出 CSV / Export CSV", filename="data-status.csv", button_type="primary")
    current = {}

    def refresh(*_):
        message.visible = False
        try:
            lake = principal.lake(root, enterprise.value)
            st = data_status(lake, start=start.value.strip() or None, end=end.value.strip() or None)
        except Exception as exc:  # noqa: BLE001 - shown to the user in one line, the page stays
            message.object, message.visible = f"{exc}", True
            return
        current["status"] = st
        s = summary(st)
        headline.object = (f"**{enterprise.value}** · {s['months']} · 表计 / meters {s['meters']} · "
                           f"完整率 / completeness <span id='completeness'>{s['completeness']:.2%}</span> · "
                           f"隔离行 / quarantined <span id='quarantined'>{s['quarantined']}</span> · "
                           f"账单偏差 / bills flagged <span id='flagged'>{s['flagged_bills']}</span>")
        tabs[:] = [(f"{zh} / {en}", pn.widgets.Tabulator(getattr(st, key), pagination="remote", page_size=15,
                                                         disabled=True, show_index=False, name=key))
                   for key, (zh, en) in TABLES.items()]

    def export():
        import io

        st = current.get("status")
        principal.exported(enterprise.value, "data status CSV (meters)")
        buf = io.StringIO()
        (st.meters if st is not None else None).to_csv(buf, index=False)
        buf.seek(0)
        return buf

    download.callback = export
    for w in (enterprise, start, end):
        w.param.watch(refresh, "value")
    refresh()
    return pn.Column(pn.pane.Markdown("## 数据状态 / Data status"), pn.Row(enterprise, start, end, download),
                     message, headline, tabs, sizing_mode="stretch_width")
