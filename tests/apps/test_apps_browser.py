"""The apps in a real browser (issue 13, points 3, 6, 7): Debian's Chromium driven by Playwright
against `workbench apps serve` on a lake of two enterprises (tests/status_lake.py).

A wrong password is refused; a user granted ent-a sees ent-a's data status with the package's
numbers, never ent-b's (by the enterprise list, by ``?enterprise=ent-b``, by a request without
the session cookie); a filter change updates the page; no console errors.  Screenshots are kept in
``$WORKBENCH_TEST_ARTIFACTS`` (default ``output/test-artifacts``).
"""
from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest
from status_lake import build

from workbench.apps.auth import UserStore
from workbench.apps.status import summary
from workbench.reports.status import data_status

PASSWORD = "manager password 1"


@pytest.fixture(scope="module")
def served(tmp_path_factory, serve_apps):
    tmp = tmp_path_factory.mktemp("apps")
    lake = build(tmp)
    users = UserStore(f"sqlite:///{tmp / 'users.db'}", scrypt_n=2**10)
    users.add("alice", "manager", PASSWORD)
    users.grant("alice", "ent-a")
    base = serve_apps(tmp / "lake", tmp / "users.db")      # the server (tests/apps/conftest.py)
    yield base, lake, users
    users.dispose()


def test_no_page_without_login_and_a_wrong_password_is_refused(served, browser, ui):
    base, _, users = served
    for path in ("/", "/status", "/status?enterprise=ent-a"):
        req = urllib.request.Request(base + path)
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as exc:
            opener.open(req, timeout=10)
        assert exc.value.code == 302 and "/login" in exc.value.headers["Location"]
    page, errors = ui.page(browser)
    ui.login(page, base, "alice", "wrong password!")
    assert "/login" in page.url and "Wrong user name or password" in page.inner_text("#error-message")
    ui.shot(page, "login-refused")
    page.goto(f"{base}/status")
    assert "/login" in page.url                                  # still no session
    assert ("alice", False) in [(r["actor"], r["ok"]) for r in users.audit_log(action="login")]
    assert errors == [], errors
    page.close()


def test_status_page_shows_the_package_numbers_and_follows_a_filter(served, browser, ui):
    base, lake, _ = served
    page, errors = ui.page(browser)
    ui.login(page, base, "alice", PASSWORD)
    page.goto(f"{base}/status")
    page.wait_for_selector("#quarantined", timeout=30_000)
    want = summary(data_status(lake.for_enterprise("ent-a")))
    assert page.inner_text("#quarantined") == str(want["quarantined"])
    assert page.inner_text("#flagged") == str(want["flagged_bills"])
    assert page.inner_text("#completeness") == f"{want['completeness']:.2%}"
    ui.shot(page, "status-ent-a")
    # a filter change: April only
    april = summary(data_status(lake.for_enterprise("ent-a"), start="2026-04"))
    assert april["quarantined"] != want["quarantined"] or april["completeness"] != want["completeness"]
    box = page.get_by_label(re.compile("From"))
    box.fill("2026-04")
    box.press("Enter")
    # Panel renders into shadow roots: Playwright's selectors pierce them, document.body.innerText does not
    page.get_by_text("2026-04 – 2026-04").wait_for(timeout=30_000)
    assert page.inner_text("#completeness") == f"{april['completeness']:.2%}"
    assert page.inner_text("#quarantined") == str(april["quarantined"])
    ui.shot(page, "status-ent-a-april")
    assert errors == [], errors
    page.close()


def test_a_user_of_ent_a_cannot_reach_ent_b(served, browser, ui):
    base, _, users = served
    page, errors = ui.page(browser)
    ui.login(page, base, "alice", PASSWORD)
    page.goto(f"{base}/status")
    page.wait_for_selector("#quarantined", timeout=30_000)
    options = page.locator("select option").all_inner_texts()
    assert "ent-a" in options and "ent-b" not in options
    page.goto(f"{base}/status?enterprise=ent-b")
    page.get_by_text("Not permitted").wait_for(timeout=30_000)
    assert page.locator("#quarantined").count() == 0            # nothing of ent-b, nothing at all
    ui.shot(page, "status-ent-b-refused")
    assert ("alice", "denied:read", "ent-b") in [(r["actor"], r["action"], r["enterprise_id"])
                                                  for r in users.audit_log()]
    assert errors == [], errors
    page.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
