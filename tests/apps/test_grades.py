"""The regional grades page (issue 14, point 4): who sees what (enforced where the region is read), the
figures are the package's, a filter change (period, county) updates them — in Debian's Chromium."""
from __future__ import annotations

import re

import pytest

from workbench.apps.auth import AccessDenied, UserStore
from workbench.apps.grades import evidence_for, headline_counts, region_view
from workbench.demo.region import generate_region
from workbench.grading import grade_region

PASSWORD = "manager password 1"
N = 60


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grades-app")
    region = tmp / "region"
    generate_region(region, enterprises=N, seed=7)
    (tmp / "lake").mkdir()
    users = UserStore(f"sqlite:///{tmp / 'users.db'}", scrypt_n=2**10)
    for name, role, grants in (("reggie", "manager", ["*"]), ("alice", "manager", ["R00001"]),
                               ("vera", "verifier", ["R00001", "R00002"]), ("nobody", "analyst", ["ent-x"])):
        users.add(name, role, PASSWORD)
        for g in grants:
            users.grant(name, g)
    yield tmp, region, users
    users.dispose()


def test_a_user_granted_one_enterprise_sees_only_its_rows(world):
    _, region, users = world
    v = region_view(users.principal("alice"), region, "2025-03")
    assert v.current.grades["enterprise_id"].tolist() == ["R00001"]
    assert set(v.moved["enterprise_id"]) <= {"R00001"} and v.previous.grades["enterprise_id"].tolist() == ["R00001"]
    whole = grade_region(region, "2025-03")
    mine = whole.grades.set_index("enterprise_id").loc["R00001"]
    # the same grade as in the whole region's grading: the benchmark is the industry's, whoever looks
    assert int(v.current.grades["grade"].iloc[0]) == int(mine["grade"])
    assert v.current.grades["benchmark_n"].iloc[0] == mine["benchmark_n"] > 1
    assert v.current.benchmarks["industry"].tolist() == [mine["industry"]] and v.current.population == N
    assert headline_counts(v.current.grades)["enterprises"] == 1


def test_a_regional_manager_granted_everything_sees_the_region(world):
    _, region, users = world
    v = region_view(users.principal("reggie"), region, "2025-Q1")
    assert len(v.current.grades) == N and v.periods[:2] == ["2025-01", "2025-02"] and "2025-Q4" in v.periods
    assert headline_counts(v.current.grades) == headline_counts(grade_region(region, "2025-Q1").grades)


def test_nothing_granted_is_refused_and_logged(world):
    _, region, users = world
    with pytest.raises(AccessDenied, match="none of the enterprises of the region"):
        region_view(users.principal("nobody"), region)
    assert any(r["actor"] == "nobody" and r["action"] == "denied:read" and not r["ok"] for r in users.audit_log())


def test_evidence_only_for_a_granted_enterprise(world):
    _, region, users = world
    vera = users.principal("vera")
    ev = evidence_for(vera, region, "R00002", "2025-03")
    assert ev.enterprise_id == "R00002" and len(ev.energy) >= 1 and ev.benchmark["n"] > 1
    with pytest.raises(AccessDenied):
        evidence_for(users.principal("alice"), region, "R00002", "2025-03")
    assert ("alice", "denied:read", "R00002") in [(r["actor"], r["action"], r["enterprise_id"])
                                                  for r in users.audit_log()]


@pytest.fixture(scope="module")
def served(world, serve_apps):
    tmp, region, _ = world
    return serve_apps(tmp / "lake", tmp / "users.db", env={"WORKBENCH_REGION": str(region)})


def _headline(page) -> dict:
    return {k: int(page.inner_text(f"#{k}")) for k in ("enterprises", "g1", "g2", "g3", "g4", "g5", "ungraded")}


def _want(grades) -> dict:
    h = headline_counts(grades)
    return {"enterprises": h["enterprises"], **{f"g{n}": h[str(n)] for n in range(1, 6)}, "ungraded": h["ungraded"]}


def test_the_page_shows_the_package_distribution_and_follows_the_filters(world, served, browser, ui):
    _, region, _ = world
    page, errors = ui.page(browser)
    ui.login(page, served, "reggie", PASSWORD)
    page.goto(f"{served}/grades")
    page.wait_for_selector("#enterprises", timeout=60_000)
    dec = grade_region(region, "2025-12")
    assert _headline(page) == _want(dec.grades)
    page.get_by_text("2025-12 · 浙江碳效码").first.wait_for(timeout=10_000)
    # the distribution tab: the first county × industry row of the package's table
    first = dec.distribution().iloc[0]
    row = page.locator(".tabulator-row").first
    row.wait_for(timeout=10_000)
    fields = ["county_code", "county_name_zh", "industry", "1", "2", "3", "4", "5", "ungraded", "total"]
    cells = [row.locator(f'.tabulator-cell[tabulator-field="{f}"]').inner_text() for f in fields]
    county_name = dec.grades.drop_duplicates("county_code").set_index("county_code")["county_name_zh"]
    assert cells == [first["county_code"], county_name[first["county_code"]], first["industry"],
                     *[str(int(first[c])) for c in (1, 2, 3, 4, 5, "ungraded", "total")]]
    ui.shot(page, "grades-region")
    # a period change: the first quarter
    q1 = grade_region(region, "2025-Q1")
    page.locator("select").nth(0).select_option("2025-Q1")
    page.get_by_text(re.compile(r"2025-Q1 · 浙江碳效码")).first.wait_for(timeout=30_000)
    assert _headline(page) == _want(q1.grades)
    # a county change: the county with the most enterprises
    top = q1.grades["county_code"].value_counts().index[0]
    name = q1.grades.loc[q1.grades["county_code"] == top, "county_name_zh"].iloc[0]
    page.locator("select").nth(2).select_option(f"{top} {name}")
    want = _want(q1.grades[q1.grades["county_code"] == top])
    page.wait_for_function("n => document.querySelector('body') && true", arg=0)
    for _ in range(60):
        if _headline(page) == want:
            break
        page.wait_for_timeout(500)
    assert _headline(page) == want and want["enterprises"] < N
    page.locator(".bk-tab", has_text="Trend of L").click()
    page.locator("img").first.wait_for(timeout=30_000)
    page.wait_for_timeout(300)
    ui.shot(page, "grades-region-q1-county")
    assert errors == [], errors
    page.close()


def test_in_the_browser_a_user_of_one_enterprise_sees_its_row_only(served, browser, ui):
    page, errors = ui.page(browser)
    ui.login(page, served, "alice", PASSWORD)
    page.goto(f"{served}/grades")
    page.wait_for_selector("#enterprises", timeout=60_000)
    assert page.inner_text("#enterprises") == "1"
    page.locator(".bk-tab", has_text="Enterprises").click()
    page.get_by_text("R00001").first.wait_for(timeout=10_000)
    assert page.get_by_text("R00002").count() == 0 and page.get_by_text(re.compile(r"R000(0[2-9]|[1-5]\d)")).count() == 0
    ui.shot(page, "grades-one-enterprise")
    assert errors == [], errors
    page.close()


def test_in_the_browser_nothing_granted_is_refused(served, browser, ui):
    page, errors = ui.page(browser)
    ui.login(page, served, "nobody", PASSWORD)
    page.goto(f"{served}/grades")
    page.get_by_text("Not permitted").wait_for(timeout=30_000)
    assert page.locator("#enterprises").count() == 0
    assert errors == [], errors
    page.close()
