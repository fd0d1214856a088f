"""The footprint explorer page (issue 13, point 1) on a small lake built through the ordinary
ingest path: ENT → F01 → F01.W01, F02; grid electricity and natural gas in Jan–Mar 2025 and
2026, value added, three sub-meters read every 15 minutes in 2026.

Built in-process, the page's figures (#total, #efficiency, #change) are those of
:func:`workbench.inventory.footprint.footprint` for the same selection, for a node change too; in
Chromium (``workbench apps serve``), the same figures, a period change updates them, no console
errors, a screenshot in ``$WORKBENCH_TEST_ARTIFACTS``.
"""
from __future__ import annotations

import re

import pandas as pd
import pytest

from connectors import ConnectorResult, activity_file, production
from workbench.apps.auth import UserStore
from workbench.apps.explorer import kpis, page, trend_png
from workbench.ingestion import ingest
from workbench.inventory.footprint import footprint
from workbench.lake.store import Lake

ENT = "ent-x"
PASSWORD = "explorer password 1"
BOUNDARY = pd.DataFrame([("ENT", "", "enterprise", "浏览厂", "Explorer plant", ""),
                         ("F01", "ENT", "facility", "一车间", "Shop 1", "main_production"),
                         ("F01.W01", "F01", "workshop", "工段", "Section 1", "main_production"),
                         ("F02", "ENT", "facility", "二车间", "Shop 2", "auxiliary")],
                        columns=["node_id", "parent_id", "level", "name_zh", "name_en", "classification"])
METERS = pd.DataFrame([("M0", "ENT", "purchased_electricity", "grid", "kWh", "interval", "true"),
                       ("M1", "F01.W01", "purchased_electricity", "grid", "kWh", "interval", "false"),
                       ("M2", "F02", "purchased_electricity", "grid", "kWh", "interval", "false")],
                      columns=["meter_id", "node_id", "source", "item", "unit", "register", "is_main"])


def _readings(meter: str, value: float) -> ConnectorResult:
    ts = pd.date_range("2026-01-01", "2026-03-31 23:45", freq="15min", tz="Asia/Shanghai")
    rows = pd.DataFrame({"meter_id": meter, "ts": ts, "value": value + (ts.hour >= 8) * value, "unit": "kWh"})
    return ConnectorResult(rows, {"source": "ems", "origin": f"/exports/{meter}.csv"}, kind="readings",
                           raw=rows.to_csv().encode(), raw_name=f"{meter}.csv")


def build(tmp):
    root = tmp / "lake"
    lk = Lake(root, enterprise=ENT)
    lk.register_boundary(BOUNDARY)
    lk.register_meters(METERS)
    lk.register_enterprise({"enterprise_id": ENT, "name_zh": "浏览厂", "region": "CN-ZJ",
                            "reporting_standard": "GB/T 32150"})
    lines = ["source,item,quantity,unit,period,node_id,document"]
    for year, k in ((2025, 1.0), (2026, 1.25)):
        for m in (1, 2, 3):
            lines.append(f"purchased_electricity,grid,{int(10000 * k * m)},kWh,{year}-0{m},F01.W01,meter book")
            lines.append(f"purchased_electricity,grid,{int(4000 * k)},kWh,{year}-0{m},F02,meter book")
            lines.append(f"combustion,natural_gas,{0.5 * k},万Nm3,{year}-0{m},F01,gas ledger")
    f = tmp / "activity.csv"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ingest(lk, activity_file.read(f), sender="t")
    p = tmp / "monthly.csv"
    p.write_text("period,node_id,value_added_10k_cny\n" + "".join(
        f"{y}-0{m},ENT,{10 + m}\n" for y in (2025, 2026) for m in (1, 2, 3)), encoding="utf-8")
    ingest(lk, production.read(p, products=[]), sender="t")
    for meter, v in (("M0", 3.0), ("M1", 2.0), ("M2", 0.5)):
        ingest(lk, _readings(meter, v), sender="t")
    return root


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory):
    return build(tmp_path_factory.mktemp("explorer"))


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    db = tmp_path_factory.mktemp("explorer-users") / "users.db"
    store = UserStore(f"sqlite:///{db}", scrypt_n=2**10)
    store.add("erin", "analyst", PASSWORD)
    store.grant("erin", ENT)
    yield store
    store.dispose()


def _span_text(html: str, key: str) -> str:
    m = re.search(rf"<span id='{key}'>([^<]*)</span>", html)
    assert m, (key, html)
    return m.group(1)


def _find(root, name):
    for obj in root.select():
        if getattr(obj, "name", None) == name or getattr(obj, "label", None) == name:
            return obj
    raise AssertionError(name)


def test_the_page_shows_the_packages_figures_and_follows_the_node(lake_root, users):
    import panel as pn

    who = users.principal("erin")
    p = page(who, lake_root)
    headline = _find(p, "headline")
    lk = Lake(lake_root, enterprise=ENT)
    fp = footprint(lk, "2026-01", "2026-03")                    # the default span: the last data year to date
    want = kpis(fp)
    assert fp.change_pct is not None and fp.carbon_efficiency == fp.carbon_efficiency
    assert _span_text(headline.object, "total") == want["total"] == f"{fp.total_tco2e:.3f}"
    assert float(_span_text(headline.object, "total")) == pytest.approx(fp.total_tco2e, abs=5e-4)
    assert _span_text(headline.object, "efficiency") == want["efficiency"]
    assert _span_text(headline.object, "change") == want["change"] == f"{fp.change_pct:+.1f}"
    drill = _find(p, "drill")
    assert set(drill.value["child_id"]) >= {"F01", "F02"}
    # a node change: the facility's figures, from the inventory kept for the span
    node = next(w for w in p.select(pn.widgets.Select) if w.label.startswith("边界节点"))
    node.value = "F01"
    f01 = footprint(lk, "2026-01", "2026-03", "F01")
    assert _span_text(headline.object, "total") == kpis(f01)["total"]
    assert _span_text(headline.object, "change") == kpis(f01)["change"]
    # selecting a row of the drill-down enters that node
    drill.selection = [list(drill.value["child_id"]).index("F01.W01")]
    assert node.value == "F01.W01"
    w = footprint(lk, "2026-01", "2026-03", "F01.W01")
    assert _span_text(headline.object, "total") == kpis(w)["total"]
    assert "M1" in set(drill.value["child_id"])                              # down to the meter
    # a period change and the English labels
    start = next(w for w in p.select(pn.widgets.TextInput) if w.label.startswith("起始月"))
    start.value = "2026-03"
    assert _span_text(headline.object, "total") == kpis(footprint(lk, "2026-03", "2026-03", "F01.W01"))["total"]
    lang = next(iter(p.select(pn.widgets.RadioButtonGroup)))
    lang.value = "en"
    assert "Total emissions" in headline.object and node.value == "F01.W01"
    pn.panel(p).get_root()                                                   # renders to a Bokeh model
    # exports: audited, CSV of the ledger, PNG of the trend
    downloads = {d.filename: d for d in p.select(pn.widgets.FileDownload)}
    csv = downloads["footprint-ledger.csv"].callback().getvalue()
    assert csv.splitlines()[0].startswith("period") or "tco2e" in csv.splitlines()[0]
    assert downloads["footprint-trend.png"].callback().getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r["action"] for r in users.audit_log(actor="erin", action="export")][:2] == ["export", "export"]


def test_node_and_period_changes_reuse_the_enterprises_inventory(lake_root, users, monkeypatch):
    import panel as pn

    import workbench.inventory.footprint as fpm

    spans, calls = [], []
    compute = fpm.FootprintSpan.compute.__func__
    monkeypatch.setattr(fpm.FootprintSpan, "compute",
                        classmethod(lambda cls, *a, **k: spans.append(a) or compute(cls, *a, **k)))
    real = fpm.footprint
    monkeypatch.setattr(fpm, "footprint", lambda *a, **k: calls.append(a[1:3]) or real(*a, **k))
    p = page(users.principal("erin"), lake_root)
    assert len(spans) == 1 and calls == []              # one inventory: the lake's months and the year before
    span = next(iter(spans))
    assert span and isinstance(span[0], Lake)
    headline = _find(p, "headline")
    node = next(w for w in p.select(pn.widgets.Select) if w.label.startswith("边界节点"))
    start = next(w for w in p.select(pn.widgets.TextInput) if w.label.startswith("起始月"))
    end = next(w for w in p.select(pn.widgets.TextInput) if w.label.startswith("截止月"))
    lk = Lake(lake_root, enterprise=ENT)
    for n, s in (("F02", "2026-01"), ("F01.W01", "2026-02"), ("ENT", "2026-03"), ("F01", "2025-02")):
        node.value, start.value = n, s
        e = "2026-03"
        want = kpis(real(lk, s, e, n))
        assert (_span_text(headline.object, "total"), _span_text(headline.object, "change")) == \
            (want["total"], want["change"]), (n, s)
    assert len(spans) == 1 and calls == []              # every figure derived from the one inventory
    # months outside the lake's (a month after its last): the package's footprint of them, kept per span
    start.value, end.value = "2026-02", "2026-04"
    assert calls == [("2026-02", "2026-04"), ("2025-02", "2025-04")]
    assert _span_text(headline.object, "total") == kpis(real(lk, "2026-02", "2026-04", "F01"))["total"]
    node.value = "F02"
    assert len(calls) == 2 and len(spans) == 1


def test_the_heat_map_shows_the_packages_frame(lake_root, users):
    """The heat map's image holds the values of heatmap_frame at the bucket the canvas needs, for
    the node's meters; a node change shows only its meters."""
    import numpy as np
    import panel as pn
    from holoviews.streams import Pipe, RangeX

    from workbench.inventory.footprint import heatmap_frame, heatmap_freq

    p = page(users.principal("erin"), lake_root)
    heat = _find(p, "heatmap")
    note = _find(p, "heat_note")
    lk = Lake(lake_root, enterprise=ENT)

    def source():
        todo = [heat.object]                                        # down to the DynamicMap fed by the pipe
        while todo:
            dm = todo.pop()
            if any(isinstance(x, Pipe) for x in dm.streams):
                return dm
            todo += getattr(dm.callback, "inputs", [])
        raise AssertionError("no pipe")

    def shown():
        return source()[()].dimension_values("value", flat=False)

    freq = heatmap_freq("2026-01", "2026-03")
    assert freq == "2h"                                             # 90 days, 1,080 buckets ≤ 1,200 pixels
    want = heatmap_frame(lk, "2026-01", "2026-03", freq=freq)
    z = shown()
    assert np.count_nonzero(~np.isnan(z)) == len(want) == 3 * 1080
    assert np.nansum(z) == pytest.approx(want["value"].sum(), rel=1e-6)  # float32 cells
    assert f"3 × {freq}" in note.object
    assert _find(p, "drawn").object == "<span id='drawn'>ent-x|2026-01|2026-03|ENT</span>"
    # zoomed in to two days: read again at 15 minutes (datashader re-aggregates what it is given)
    zoom = next(x for x in source().streams if isinstance(x, RangeX))
    zoom.event(x_range=(pd.Timestamp("2026-02-01 03:00"), pd.Timestamp("2026-02-02 21:00")))
    days = heatmap_frame(lk, "2026-02-01", "2026-02-03", freq="15min")
    z = shown()
    assert z.shape == (3, 2 * 96) and np.count_nonzero(~np.isnan(z)) == len(days) == 3 * 2 * 96
    assert np.nansum(z) == pytest.approx(days["value"].sum(), rel=1e-6)
    node = next(w for w in p.select(pn.widgets.Select) if w.label.startswith("边界节点"))
    node.value = "F02"                                              # a new selection: the whole span again
    one = heatmap_frame(lk, "2026-01", "2026-03", meters=["M2"], freq=freq)
    assert np.nansum(shown()) == pytest.approx(one["value"].sum(), rel=1e-6)
    assert "1 × 2h" in note.object


def test_no_data_is_a_message_not_a_traceback(lake_root, users):
    import panel as pn

    p = page(users.principal("erin"), lake_root)
    start = next(w for w in p.select(pn.widgets.TextInput) if w.label.startswith("起始月"))
    end = next(w for w in p.select(pn.widgets.TextInput) if w.label.startswith("截止月"))
    start.value, end.value = "2019-01", "2019-02"
    msg = _find(p, "message")
    assert msg.visible and "No data for this enterprise and period" in msg.object
    assert _find(p, "headline").object == ""
    nobody = page(UserStore("sqlite://", scrypt_n=2**10).principal("x") or _nobody(), lake_root)
    assert "No enterprise granted" in nobody.object
    assert trend_png(pd.DataFrame())[:4] == b"\x89PNG"


def _nobody():
    from workbench.apps.auth import Principal

    return Principal("nobody", "analyst", frozenset())


@pytest.fixture(scope="module")
def served(lake_root, users, serve_apps):
    return serve_apps(lake_root, users.url.removeprefix("sqlite:///"))


def test_in_the_browser_the_figures_are_the_packages_and_follow_the_period(lake_root, served, browser, ui):
    lk = Lake(lake_root, enterprise=ENT)
    page, errors = ui.page(browser)
    ui.login(page, served, "erin", PASSWORD)
    page.goto(f"{served}/explorer")
    page.wait_for_selector("#total", timeout=30_000)
    want = kpis(footprint(lk, "2026-01", "2026-03"))
    assert page.inner_text("#total") == want["total"]
    assert page.inner_text("#efficiency") == want["efficiency"]
    assert page.inner_text("#change") == want["change"]
    page.locator(".bk-Canvas, canvas").first.wait_for(timeout=30_000)       # the plots drew
    # a period change: February to March
    feb = kpis(footprint(lk, "2026-02", "2026-03"))
    assert feb["total"] != want["total"]
    box = page.get_by_label(re.compile("From"))
    box.fill("2026-02")
    box.press("Enter")
    page.get_by_text("2026-02 – 2026-03").wait_for(timeout=30_000)
    assert page.inner_text("#total") == feb["total"]
    assert page.inner_text("#change") == feb["change"]
    page.wait_for_timeout(500)
    ui.shot(page, "explorer")
    assert (ui.artifacts / "explorer.png").stat().st_size > 10_000
    assert errors == [], errors
    page.close()
