"""Benchmark: the apps as a manager sees them, measured in Chromium (issue 13, point 8).

    python benchmarks/apps.py [--lake DIR] [--enterprise ID] [--meters N] [--repeat 3]
                              [--heatmap-meters 2000] [--skip-demo] [--screenshots docs/img]

1. The lake: ``--lake`` (e.g. ``data/lake`` after ``make demo``), else the demo is generated and
   loaded through the ordinary path into ``benchmarks/.data/apps-{meters}m`` (reused when there).
2. ``workbench apps serve`` on a free port with a users database made for the run (one manager
   granted every enterprise of the lake).
3. Debian's Chromium (Playwright, ``/usr/bin/chromium``) logs in, then, ``--repeat`` times:
   * **first render** — from navigating to ``/explorer`` until the KPIs are shown (``#total``),
     and until every plot is drawn: the page's ``#drawn`` names the selection once the Sankey,
     the trend and the heat map have been sent, then two animation frames for the browser to
     paint them (complete);
   * **period change** — the start month typed and Enter pressed, until ``#total`` shows the new
     figure, and until ``#drawn`` names the new span (every plot updated);
   * **node change** — another boundary node chosen, the same two times;
   * **data status** — ``/status`` until its headline is shown.
   Baselines in the same run, timed in this process: the package call behind the explorer's
   first figure (``workbench.inventory.footprint.footprint`` of the span, a year earlier included),
   and the one behind a period change (``footprint`` of the new span).
4. ``--heatmap-meters N``: a lake of one enterprise with N 15-minute meters read for a year
   (:func:`heatmap_lake`, 70 M readings for 2,000, built once), its own server, then in Chromium:
   the heat map's first render (until ``#drawn``: the frame read, rasterised and painted), its
   update after a period change (February to December: read again, or taken from the session's
   frame of the year when the bucket is the same), and a zoom (mouse wheel over the heat map until
   datashader's new image arrives).  Baseline: the bare package read, ``heatmap_frame`` of the span
   at the canvas's bucket (one DuckDB query over the lake's Parquet, the filters pushed down).
Prints the median of each, the ratios to the baselines and the targets: first render ≤ 3 s, an
update ≤ 300 ms.  ``--screenshots DIR`` saves ``apps-explorer.png`` and ``apps-heatmap-{N}.png``.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PASSWORD = "benchmark password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_lake(meters: int | None) -> Path:
    """The demo's lake for the benchmark, generated and loaded once."""
    data = ROOT / "benchmarks" / ".data" / f"apps-{meters or 'default'}m"
    lake = data / "lake"
    if (lake / "enterprises").is_dir():
        return lake
    exe = [sys.executable, "-m", "workbench.cli.main"]
    gen = [*exe, "demo", "generate", "--out", str(data / "demo")] + (["--meters", str(meters)] if meters else [])
    subprocess.run(gen, check=True)
    subprocess.run([*exe, "demo", "load", str(data / "demo"), "--lake", str(lake), "--registry",
                    str(data / "registry.db")], check=True)
    return lake


HEATMAP_ENTERPRISE = "bench-heatmap"


def heatmap_lake(meters: int = 2000, year: int = 2025, *, data: Path | None = None) -> Path:
    """A lake with one enterprise of ``meters`` 15-minute interval meters read for a whole
    ``year`` (35,040 readings per meter: 70 M for 2,000 meters), built once under
    ``benchmarks/.data/apps-heatmap-{meters}m`` and reused (each step marks itself done).

    Through the ordinary path: master data registered on the enterprise's lake (a boundary of 10
    facilities × 4 workshops, the meters, the enterprise record), then one Parquet export per month
    read by ``connectors.parquet`` and stored by ``workbench.ingestion.ingest`` (raw zone, checks,
    readings → consumption), a month at a time so that memory stays under 3 GB; the months are
    then compacted into the cold tier (``Lake.compact``), as a past year of a running lake is.
    The enterprise's monthly electricity bills (the ledger: the meters' month + 4 % losses, and
    the year before) and value added come through ``connectors.activity_file`` and
    ``connectors.production``; the inventory allocates each bill over the workshops by the
    sub-meters' shares.  On this 2-core machine: about 4 minutes, 0.6 GB."""
    import numpy as np
    import pandas as pd

    from connectors import activity_file, parquet, production
    from workbench.ingestion import ingest
    from workbench.lake.store import Lake

    data = data or ROOT / "benchmarks" / ".data" / f"apps-heatmap-{meters}m"
    root = data / "lake"
    exports = data / "exports"
    readings_done, ledger_done = data / "readings.done", data / "ledger.done"
    if readings_done.exists() and ledger_done.exists():
        return root
    lake = Lake(root, enterprise=HEATMAP_ENTERPRISE)
    if not readings_done.exists():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        exports.mkdir(parents=True, exist_ok=True)
        lake = Lake(root, enterprise=HEATMAP_ENTERPRISE)
        facilities = [f"F{i:02d}" for i in range(1, 11)]
        nodes = [("ENT", "", "enterprise", "热力图基准厂", "Heat-map benchmark plant", "")]
        for f in facilities:
            nodes.append((f, "ENT", "facility", f"{f} 车间", f"Facility {f}", "main_production"))
            nodes += [(f"{f}.W{w:02d}", f, "workshop", f"{f} 工段 {w}", f"{f} section {w}", "main_production")
                      for w in range(1, 5)]
        lake.register_boundary(pd.DataFrame(nodes, columns=["node_id", "parent_id", "level", "name_zh", "name_en",
                                                            "classification"]))
        ids = [f"H{m:04d}" for m in range(meters)]
        registry = pd.DataFrame({
            "meter_id": ids, "node_id": [f"{facilities[m % 10]}.W{(m // 10) % 4 + 1:02d}" for m in range(meters)],
            "source": "purchased_electricity", "item": "grid", "unit": "kWh", "register": "interval",
            "is_main": "false"})
        lake.register_meters(registry)
        lake.register_enterprise({"enterprise_id": HEATMAP_ENTERPRISE, "name_zh": "热力图基准厂", "region": "CN-ZJ",
                                  "reporting_standard": "GB/T 32150"})
        rng = np.random.default_rng(2000)
        base = rng.gamma(3.0, 10.0, meters)                 # kWh per 15 min, per meter
        phase = rng.uniform(-2, 2, meters)                  # hours
        day_shift = rng.random(meters) < 0.3                # some meters idle at night and on Sundays
        for month in range(1, 13):
            ts = pd.date_range(f"{year}-{month:02d}-01", (pd.Period(f"{year}-{month:02d}", "M") + 1).start_time,
                               freq="15min", inclusive="left")
            hour = ts.hour.to_numpy() + ts.minute.to_numpy() / 60
            shape = 1 + 0.5 * np.sin((hour[None, :] - 8 - phase[:, None]) / 24 * 2 * np.pi)
            idle = day_shift[:, None] & (((hour < 7) | (hour >= 19)) | (ts.dayofweek.to_numpy() == 6))[None, :]
            season = 1 + 0.2 * np.cos((ts.dayofyear.to_numpy() - 200) / 365 * 2 * np.pi)
            value = base[:, None] * shape * season[None, :] * np.where(idle, 0.1, 1.0) \
                * rng.uniform(0.9, 1.1, (meters, len(ts)))
            df = pd.DataFrame({"meter_id": pd.Categorical.from_codes(np.repeat(np.arange(meters), len(ts)), ids),
                               "ts": np.tile(ts.to_numpy(), meters), "value": value.ravel().round(3)})
            path = exports / f"readings-{year}-{month:02d}.parquet"
            df.to_parquet(path, index=False)
            del df, value
            ingest(lake, parquet.read(path, meters=registry, source="bench-meters"), sender="benchmark")
            path.unlink()                                   # the lake's raw zone keeps the bytes
        lake.compact(before=f"{year + 1}-01-01")
        readings_done.write_text("ok\n")
    monthly = lake.sql("SELECT strftime(ts, '%Y-%m') AS period, sum(value) AS kwh FROM consumption GROUP BY 1 "
                       "ORDER BY 1")
    exports.mkdir(parents=True, exist_ok=True)
    bills = exports / "bills.csv"
    bills.write_text("source,item,quantity,unit,period,node_id,document\n" + "".join(
        f"purchased_electricity,grid,{round(k * 1.04 * f)},kWh,{int(p[:4]) - lag}-{p[5:]},ENT,State Grid bill\n"
        for p, k in zip(monthly["period"], monthly["kwh"]) for lag, f in ((1, 0.95), (0, 1.0))), encoding="utf-8")
    ingest(lake, activity_file.read(bills), sender="benchmark")
    table = exports / "monthly.csv"
    table.write_text("period,node_id,value_added_10k_cny\n" + "".join(
        f"{year - 1}-{m:02d},ENT,{900 + 10 * m}\n{year}-{m:02d},ENT,{1000 + 10 * m}\n" for m in range(1, 13)),
        encoding="utf-8")
    ingest(lake, production.read(table, products=[]), sender="benchmark")
    ledger_done.write_text("ok\n")
    return root


def serve(lake_root: Path, tmp: Path):
    """``workbench apps serve`` of ``lake_root`` on a free port, one manager granted everything:
    (process, base URL)."""
    from workbench.apps.auth import UserStore

    db = tmp / f"users-{_free_port()}.db"
    users = UserStore(f"sqlite:///{db}")
    users.add("bench", "manager", PASSWORD)
    users.grant("bench", "*")
    users.dispose()
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKBENCH_COOKIE_SECRET": "bench-" + "x" * 40}
    server = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "apps", "serve", "--port", str(port),
                               "--lake", str(lake_root), "--db", str(db)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{base}/login", timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    return server, base


def login(browser, base: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/login")
    page.fill("#username", "bench")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_load_state("networkidle")
    return page


def explorer_times(page, base: str, enterprise: str, months: tuple[str, str], *, nodes: bool = True) -> dict:
    """One round on the explorer: first render, a period change (start one month later), a node
    change; each as (KPIs shown, every plot drawn) in seconds."""
    out = {}
    t0 = time.perf_counter()
    page.goto(f"{base}/explorer?enterprise={enterprise}")
    _wait_text(page, "#total")
    out["first_kpis"] = time.perf_counter() - t0
    mark = f"{enterprise}|{months[0]}|{months[1]}|"
    _wait_text(page, "#drawn", prefix=mark)
    _wait_canvases(page, 3)
    _frames(page)
    out["first_all"] = time.perf_counter() - t0
    total, drawn = _text(page, "#total"), _text(page, "#drawn")
    box = page.get_by_label("起始月 / From (YYYY-MM)")
    later = _next_month(months[0])
    box.fill(later)
    t0 = time.perf_counter()
    box.press("Enter")
    _wait_text(page, "#total", differs=total)
    out["period_kpis"] = time.perf_counter() - t0
    _wait_text(page, "#drawn", differs=drawn, prefix=f"{enterprise}|{later}|")
    _frames(page)
    out["period_all"] = time.perf_counter() - t0
    if nodes:
        total, drawn = _text(page, "#total"), _text(page, "#drawn")
        select = page.locator("select").nth(1)
        if select.locator("option").count() > 1:
            t0 = time.perf_counter()
            select.select_option(index=1)
            _wait_text(page, "#total", differs=total)
            out["node_kpis"] = time.perf_counter() - t0
            _wait_text(page, "#drawn", differs=drawn)
            _frames(page)
            out["node_all"] = time.perf_counter() - t0
    return out


def zoom_time(page, timeout: float = 60.0) -> float:
    """Seconds from a mouse-wheel zoom over the heat map until the server's new rasterised image
    has reached the page (a ``data`` change of an image source) and been painted."""
    page.evaluate("""() => {
        window.__imageAt = 0;
        for (const doc of window.Bokeh.documents) {
            doc.on_change((ev) => {
                const m = ev.model;
                if (m && m.data && m.data.image !== undefined && (ev.attr === 'data' || ev.kind === 'ModelChanged'
                        || ev.constructor.name.includes('Column')))
                    window.__imageAt = performance.now();
            });
        }
    }""")
    heat = page.locator(".heatmap-pane canvas, canvas").last
    box = heat.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    page.wait_for_timeout(300)
    page.evaluate("() => { window.__imageAt = 0; }")
    t0 = time.perf_counter()
    page.mouse.wheel(0, -600)
    deadline = time.perf_counter() + timeout
    while page.evaluate("() => window.__imageAt") == 0 and time.perf_counter() < deadline:
        page.wait_for_timeout(5)
    _frames(page)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", type=Path, default=None)
    ap.add_argument("--enterprise", default=None, help="Enterprise to open (default: the first of the lake).")
    ap.add_argument("--meters", type=int, default=None, help="Meters of a generated demo (default: the demo's).")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--heatmap-meters", type=int, default=0,
                    help="Also the heat map on a year of 15-minute readings of this many meters (e.g. 2000).")
    ap.add_argument("--skip-demo", action="store_true", help="Only the heat-map part.")
    ap.add_argument("--screenshots", type=Path, default=None, help="Folder for the pages' screenshots.")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from workbench.inventory.footprint import (
        FootprintSpan,
        footprint,
        heatmap_frame,
        heatmap_freq,
    )
    from workbench.lake.store import Lake

    tmp = Path(tempfile.mkdtemp(prefix="apps-bench-"))
    print(f"load average (1, 5, 15 min) at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    rows = []                      # (what, median seconds, baseline seconds or None, target or None)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        if not args.skip_demo:
            lake_root = args.lake or demo_lake(args.meters)
            enterprise = args.enterprise or Lake(lake_root).enterprises()[0]
            lk = Lake(lake_root, enterprise=enterprise)
            span = _default_span(lk)
            later = (_next_month(span[0]), span[1])
            t0 = time.perf_counter()
            fp = footprint(lk, *span)
            t_pkg = time.perf_counter() - t0
            t0 = time.perf_counter()
            footprint(lk, *later)
            t_later = time.perf_counter() - t0
            t0 = time.perf_counter()
            FootprintSpan.compute(lk)
            t_span = time.perf_counter() - t0
            server, base = serve(lake_root, tmp)
            runs, status = [], []
            try:
                page = login(browser, base)
                for i in range(args.repeat):
                    runs.append(explorer_times(page, base, enterprise, span))
                    if i == 0 and args.screenshots:
                        _screenshot(page, base, enterprise, args.screenshots / "apps-explorer.png")
                    t0 = time.perf_counter()
                    page.goto(f"{base}/status?enterprise={enterprise}")
                    page.locator("#quarantined").wait_for(timeout=120_000)
                    status.append(time.perf_counter() - t0)
                page.close()
            finally:
                server.terminate()
                server.wait(timeout=20)
            print(f"lake {lake_root}, enterprise {enterprise}: {fp.total_tco2e:,.1f} tCO2e over "
                  f"{fp.period_start} – {fp.period_end}")
            print(f"  baselines: footprint() of {span[0]}..{span[1]} {t_pkg:.2f} s, of {later[0]}..{later[1]} "
                  f"{t_later:.2f} s; FootprintSpan.compute (what a session computes once) {t_span:.2f} s")
            rows += [("explorer first render: KPIs", _med(runs, "first_kpis"), t_pkg, 3.0),
                     ("explorer first render: complete", _med(runs, "first_all"), t_pkg, 3.0),
                     ("period change: KPIs", _med(runs, "period_kpis"), t_later, 0.3),
                     ("period change: every plot", _med(runs, "period_all"), t_later, 0.3),
                     ("node change: KPIs", _med(runs, "node_kpis"), None, 0.3),
                     ("node change: every plot", _med(runs, "node_all"), None, 0.3),
                     ("data status first render", statistics.median(status), None, None)]
        if args.heatmap_meters:
            from workbench.inventory.footprint import available_span

            lake_root = heatmap_lake(args.heatmap_meters)
            lk = Lake(lake_root, enterprise=HEATMAP_ENTERPRISE)
            n = int(lk.sql("SELECT count(*) AS n FROM consumption")["n"].iloc[0])
            last = available_span(lk)[1]
            span = (f"{last[:4]}-01", last)
            later = (_next_month(span[0]), span[1])
            base_times = {}
            t0 = time.perf_counter()
            footprint(lk, *span)
            base_times["footprint"] = time.perf_counter() - t0
            print(f"  footprint({span[0]}..{span[1]}) on the heat-map lake: {base_times['footprint']:.2f} s")
            for name, (s, e) in (("year", span), ("later", later)):
                freq = heatmap_freq(s, e, 1200)
                t0 = time.perf_counter()
                h = heatmap_frame(lk, s, e, freq=freq)
                base_times[name] = time.perf_counter() - t0
                print(f"  heatmap_frame({s}..{e}, freq={freq}): {len(h):,} rows in {base_times[name]:.2f} s")
            server, base = serve(lake_root, tmp)
            runs, zooms = [], []
            try:
                page = login(browser, base)
                for i in range(args.repeat):
                    runs.append(explorer_times(page, base, HEATMAP_ENTERPRISE, span, nodes=False))
                    zooms.append(zoom_time(page))
                    if i == 0 and args.screenshots:
                        _screenshot(page, base, HEATMAP_ENTERPRISE,
                                    args.screenshots / f"apps-heatmap-{args.heatmap_meters}.png", heat_only=True)
                page.close()
            finally:
                server.terminate()
                server.wait(timeout=20)
            print(f"heat-map lake {lake_root}: {args.heatmap_meters:,} meters, {n:,} readings "
                  f"({span[0]} – {span[1]}, 15 min)")
            rows += [(f"{args.heatmap_meters} meters: explorer KPIs", _med(runs, "first_kpis"), base_times["footprint"],
                      3.0),
                     (f"{args.heatmap_meters} meters: heat map first render", _med(runs, "first_all"),
                      base_times["year"], 3.0),
                     (f"{args.heatmap_meters} meters: period change, KPIs", _med(runs, "period_kpis"), None, 0.3),
                     (f"{args.heatmap_meters} meters: period change, heat map", _med(runs, "period_all"),
                      base_times["later"], 0.3),
                     (f"{args.heatmap_meters} meters: zoom, new image", statistics.median(zooms), None, 0.3)]
        browser.close()
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'':42s} {'median':>9s} {'baseline':>9s} {'ratio':>6s}  target")
    for what, t, b, target in rows:
        ratio = f"{t / b:5.1f}×" if b else ""
        base = "" if b is None else f"{b:8.3f}s"
        verdict = "" if target is None else f"≤ {target:g} s {'met' if t <= target else 'NOT met'}"
        print(f"{what:42s} {t:8.3f}s {base:>9s} {ratio:>6s}  {verdict}")
    return 0


def _med(runs: list[dict], key: str) -> float:
    xs = [r[key] for r in runs if key in r]
    return statistics.median(xs) if xs else float("nan")


def _screenshot(page, base: str, enterprise: str, path: Path, *, heat_only: bool = False) -> None:
    """The explorer as first shown, saved to ``path`` (from the headline to the heat map's end
    with ``heat_only``)."""
    page.goto(f"{base}/explorer?enterprise={enterprise}")
    _wait_text(page, "#drawn")
    _wait_canvases(page, 3)
    page.wait_for_timeout(1500)
    path.parent.mkdir(parents=True, exist_ok=True)
    if heat_only:
        top = page.get_by_text("表计 × 时间 热力图:").first.bounding_box()
        end = page.get_by_text("下钻：").first.bounding_box()
        page.screenshot(path=str(path), full_page=True,
                        clip={"x": 0, "y": top["y"] - 8, "width": 1400, "height": end["y"] - top["y"]})
    else:
        page.screenshot(path=str(path), full_page=True)


def _default_span(lake) -> tuple[str, str]:
    """The explorer's default span: January to the last month with activity."""
    last = str(lake.sql("SELECT max(period) AS p FROM activity")["p"].iloc[0])
    return f"{last[:4]}-01", last


def _next_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y + (m == 12)}-{m % 12 + 1:02d}"


# the text of the first element matching a selector, shadow roots included; the element is kept
# (looked up again once detached), so that polling it every frame costs the page little
_FIND = """
window.__wbFind = window.__wbFind || ((sel) => {
    const kept = (window.__wbEls = window.__wbEls || {});
    if (kept[sel] && kept[sel].isConnected) return kept[sel];
    const find = (root) => {
        const hit = root.querySelector(sel);
        if (hit) return hit;
        for (const el of root.querySelectorAll('*'))
            if (el.shadowRoot) { const x = find(el.shadowRoot); if (x) return x; }
        return null;
    };
    kept[sel] = find(document);
    return kept[sel];
});
"""


def _text(page, selector: str):
    """The text of the first element matching ``selector`` (shadow roots too), or ``None``."""
    return page.evaluate(f"(sel) => {{ {_FIND} const el = window.__wbFind(sel); return el ? el.textContent : null; }}",
                         selector)


def _wait_text(page, selector: str, *, differs: str | None = None, prefix: str | None = None,
               timeout: float = 180.0) -> None:
    """Wait, polling once per animation frame in the page, until ``selector``'s text is there and
    differs from ``differs`` and starts with ``prefix`` (when given)."""
    page.wait_for_function(
        f"""([sel, differs, prefix]) => {{ {_FIND}
            const el = window.__wbFind(sel);
            const t = el ? el.textContent : null;
            return !!t && (differs === null || t !== differs) && (prefix === null || t.startsWith(prefix));
        }}""", arg=[selector, differs, prefix], polling="raf", timeout=timeout * 1000)


def _frames(page, n: int = 2) -> None:
    """Wait for ``n`` animation frames: what arrived has been painted."""
    page.evaluate("(n) => new Promise((done) => { const f = (k) => k ? requestAnimationFrame(() => f(k - 1)) "
                  ": done(); f(n); })", n)


def _wait_canvases(page, n: int, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while page.locator("canvas").count() < n and time.perf_counter() < deadline:
        page.wait_for_timeout(20)


if __name__ == "__main__":
    raise SystemExit(main())
