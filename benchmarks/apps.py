"""Benchmark: the apps as a manager sees them, measured in Chromium (issue 13, point 8).

    python benchmarks/apps.py [--lake DIR] [--enterprise ID] [--meters N] [--repeat 3]

1. The lake: ``--lake`` (e.g. ``data/lake`` after ``make demo``), else the demo is generated and
   loaded through the ordinary path into ``benchmarks/.data/apps-{meters}m`` (reused when there).
2. ``workbench apps serve`` on a free port with a users database made for the run (one manager
   granted every enterprise of the lake).
3. Debian's Chromium (Playwright, ``/usr/bin/chromium``) logs in, then, ``--repeat`` times:
   * **first render** — from navigating to ``/explorer`` until the KPIs are shown and every plot
     has drawn its canvas (Sankey, trend, heat map);
   * **filter change** — the start month typed and Enter pressed, until ``#total`` shows the new
     figure (a new period: the inventory of the span and of a year earlier are computed);
   * **node change** — another boundary node chosen, until ``#total`` changes (the cached span);
   * **data status** — ``/status`` until its headline is shown.
   Baseline in the same run: the package call behind the explorer's first figure
   (``workbench.inventory.footprint.footprint``) timed in this process, so the ratio says what
   the page adds to the number it shows.
Prints the median of each, and the targets: first render ≤ 3 s, an update ≤ 300 ms.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", type=Path, default=None)
    ap.add_argument("--enterprise", default=None, help="Enterprise to open (default: the first of the lake).")
    ap.add_argument("--meters", type=int, default=None, help="Meters of a generated demo (default: the demo's).")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from workbench.apps.auth import UserStore
    from workbench.inventory.footprint import footprint
    from workbench.lake.store import Lake

    lake_root = args.lake or demo_lake(args.meters)
    enterprises = Lake(lake_root).enterprises()
    enterprise = args.enterprise or enterprises[0]
    tmp = Path(tempfile.mkdtemp(prefix="apps-bench-"))
    users = UserStore(f"sqlite:///{tmp / 'users.db'}")
    users.add("bench", "manager", PASSWORD)
    users.grant("bench", "*")
    users.dispose()
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKBENCH_COOKIE_SECRET": "bench-" + "x" * 40}
    server = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "apps", "serve", "--port", str(port),
                               "--lake", str(lake_root), "--db", str(tmp / "users.db")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{base}/login", timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    # the baseline: the package's figure behind the page's first KPI
    lk = Lake(lake_root, enterprise=enterprise)
    t0 = time.perf_counter()
    fp = footprint(lk, *_default_span(lk))
    t_pkg = time.perf_counter() - t0
    first, filt, node_t, status = [], [], [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/login")
            page.fill("#username", "bench")
            page.fill("#password", PASSWORD)
            page.click("#login")
            page.wait_for_load_state("networkidle")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                page.goto(f"{base}/explorer?enterprise={enterprise}")
                page.locator("#total").wait_for(timeout=120_000)
                page.wait_for_function("() => true")
                _wait_canvases(page, 3)
                first.append(time.perf_counter() - t0)
                total = page.inner_text("#total")
                box = page.get_by_label("起始月 / From (YYYY-MM)")
                months = _default_span(lk)
                later = _next_month(months[0])
                t0 = time.perf_counter()
                box.fill(later)
                box.press("Enter")
                _wait_change(page, "#total", total)
                filt.append(time.perf_counter() - t0)
                total = page.inner_text("#total")
                select = page.locator("select").nth(1)
                options = select.locator("option").all_inner_texts()
                if len(options) > 1:
                    t0 = time.perf_counter()
                    select.select_option(index=1)
                    _wait_change(page, "#total", total)
                    node_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                page.goto(f"{base}/status?enterprise={enterprise}")
                page.locator("#quarantined").wait_for(timeout=120_000)
                status.append(time.perf_counter() - t0)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)

    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    print(f"lake {lake_root}, enterprise {enterprise}: {fp.total_tco2e:,.1f} tCO2e over {fp.period_start} – {fp.period_end}")
    print(f"package footprint() (baseline)     {t_pkg:7.2f} s")
    print(f"explorer first complete render     {med(first):7.2f} s   (target ≤ 3 s: "
          f"{'met' if med(first) <= 3 else 'NOT met'}; {med(first) / t_pkg:.1f}× the package call)")
    print(f"explorer after a period change     {med(filt) * 1000:7.0f} ms  (target ≤ 300 ms: "
          f"{'met' if med(filt) <= 0.3 else 'NOT met'})")
    print(f"explorer after a node change       {med(node_t) * 1000:7.0f} ms  (target ≤ 300 ms: "
          f"{'met' if med(node_t) <= 0.3 else 'NOT met'})")
    print(f"data status first render           {med(status):7.2f} s")
    return 0


def _default_span(lake) -> tuple[str, str]:
    """The explorer's default span: January to the last month with activity."""
    last = str(lake.sql("SELECT max(period) AS p FROM activity")["p"].iloc[0])
    return f"{last[:4]}-01", last


def _next_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y + (m == 12)}-{m % 12 + 1:02d}"


def _wait_canvases(page, n: int, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while page.locator("canvas").count() < n and time.perf_counter() < deadline:
        page.wait_for_timeout(20)


def _wait_change(page, selector: str, old: str, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while page.inner_text(selector) == old and time.perf_counter() < deadline:
        page.wait_for_timeout(10)


if __name__ == "__main__":
    raise SystemExit(main())
