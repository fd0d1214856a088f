"""The Voila dashboard behind the apps' login (issue 13, points 4, 5, 6 and 7), in Debian's Chromium:
``workbench apps serve`` starts it; without the apps' session it sends the browser to the apps'
login; after the login it shows the package's figures for the user's granted enterprise only, and
refuses another by URL; a user disabled since loses it."""
from __future__ import annotations

import re
import socket
import time
import urllib.error
import urllib.request

import pytest
from status_lake import build

from workbench.apps.auth import UserStore
from workbench.apps.explorer import kpis
from workbench.inventory.footprint import footprint

PASSWORD = "manager password 1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


@pytest.fixture(scope="module")
def served(tmp_path_factory, serve_apps):
    tmp = tmp_path_factory.mktemp("voila")
    lake = build(tmp)
    users = UserStore(f"sqlite:///{tmp / 'users.db'}", scrypt_n=2**10)
    for name, ent in (("alice", "ent-a"), ("carl", "ent-a")):
        users.add(name, "manager", PASSWORD)
        users.grant(name, ent)
    dport = _free_port()
    base = serve_apps(tmp / "lake", tmp / "users.db", "--dashboard-port", str(dport))
    dash = f"http://127.0.0.1:{dport}"
    deadline = time.monotonic() + 90
    while True:                                           # Voila's own start-up
        try:
            urllib.request.build_opener(_NoRedirect).open(dash + "/", timeout=5)
        except urllib.error.HTTPError:
            break                                         # answering (302 to the login)
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    yield base, dash, lake, users
    users.dispose()


def test_no_dashboard_without_the_apps_login(served):
    base, dash, *_ = served
    for path in ("/", "/?enterprise=ent-a", "/login"):
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.build_opener(_NoRedirect).open(dash + path, timeout=10)
        assert exc.value.code == 302, path
        assert exc.value.headers["Location"].startswith(base + "/login") or "/login" in exc.value.headers["Location"]
    # a forged cookie (not signed with the apps' secret) is no session
    req = urllib.request.Request(dash + "/", headers={"Cookie": 'user="2|1:0|10:1700000000|4:user|8:YWxpY2U=|00"'})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.build_opener(_NoRedirect).open(req, timeout=10)
    assert exc.value.code == 302


def test_the_dashboard_after_the_login_shows_the_package_figures(served, browser, ui):
    base, dash, lake, _ = served
    page, errors = ui.page(browser)
    failed = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(dash + "/", wait_until="domcontentloaded", timeout=120_000)    # Voila's redirect to the login
    assert "/login" in page.url and page.url.startswith(base)       # the apps' login page
    ui.login(page, base, "alice", PASSWORD)
    # Voila executes the notebook while it streams the page: the load event comes only at its end, so
    # wait for the navigation to commit, then for the figures (a loaded suite run once took > 120 s to "load")
    page.goto(dash + "/", wait_until="commit", timeout=120_000)
    page.wait_for_selector("#total", timeout=240_000)
    lk = lake.for_enterprise("ent-a")
    this, ytd = kpis(footprint(lk, "2026-04", "2026-04")), kpis(footprint(lk, "2026-01", "2026-04"))
    assert page.inner_text("#total") == this["total"]
    assert page.inner_text("#ytd") == ytd["total"]
    assert page.get_by_text("ent-a · 2026-04").count() >= 1
    options = page.locator("select option").all_inner_texts()
    assert options == ["ent-a"]                                      # only the granted enterprise
    ui.shot(page, "dashboard-overview-voila")
    page.goto(dash + "/?enterprise=ent-b")
    page.wait_for_selector("#refused", timeout=120_000)
    assert "Not permitted: ent-b" in page.inner_text("#refused")
    assert page.locator("#total").count() == 0
    assert errors == [] and failed == [], (errors, failed)
    page.close()


def test_a_user_disabled_since_loses_the_dashboard(served, browser, ui):
    base, dash, _, users = served
    page, _ = ui.page(browser)
    ui.login(page, base, "carl", PASSWORD)
    users.disable("carl")
    page.goto(dash + "/")
    assert "/login" in page.url
    page.close()


def test_the_index_links_the_dashboard(served, browser, ui):
    base, dash, *_ = served
    page, _ = ui.page(browser)
    ui.login(page, base, "alice", PASSWORD)
    page.goto(base + "/")
    link = page.get_by_role("link", name=re.compile("Monthly overview"))
    link.wait_for(timeout=30_000)
    assert link.get_attribute("href") == dash + "/"
    page.close()
