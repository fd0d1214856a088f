"""The certification review page (issue 14, points 7 and 8) in Debian's Chromium.

A product label of ``ent-r`` (a hand ledger: 800 + 250 tCO2e for 2,000 t of cement → 0.525 tCO2e/t)
and the 2025-03 grade of the demo region's R00001 wait as pending; R00002's grade too.  Rita, a
reviewer granted ``ent-r`` and R00001, checks ent-r's verification package on the page (recorded),
approves the label — it is published to a running identifier node, whose record gives the
footprint back — and rejects the grade with a comment (stored with user, time and comment; audited).
A manager sees the queue read-only and cannot decide; Otto, a reviewer of R00002, sees neither item
and is refused by URL; a forged decision is refused where it is made (the function, as the browser
would call it)."""
from __future__ import annotations

import re

import httpx
import pandas as pd
import pytest

from workbench.apps.auth import AccessDenied, UserStore
from workbench.apps.review import ReviewError, check_uploaded_package, decide, queue
from workbench.grading import grade_evidence
from workbench.grading.certificates import GradeCertificates
from workbench.identifiers import HandleRecord, LocalNode
from workbench.products.footprint import footprints_from_ledger
from workbench.products.label import footprint_of_record, make_label, resolution_url
from workbench.products.store import LabelStore

PASSWORD = "review password 1"
PREFIX = "88.123.4567"
SHA = "ab" * 32
LEDGER_COLUMNS = ["record_id", "period", "node_id", "facility", "classification", "source", "item", "gas", "quantity",
                  "unit", "activity_gj", "sign", "tco2e", "data_tier", "lake_batch", "raw_sha256", "factor_ids"]


def hand_label():
    """ent-r's cement label for 2025-01: (800 + 250) tCO2e ÷ 2,000 t = 0.525 tCO2e/t."""
    led = pd.DataFrame([
        ("COAL-2025-01", "2025-01", "F01", "F01", "main_production", "combustion", "raw_coal", "CO2", 400, "t", 8000.0,
         1, 800.0, "primary", "b-1", SHA, "f:coal:ncv;f:coal:cc"),
        ("EL-2025-01", "2025-01", "F01", "F01", "main_production", "purchased_electricity", "grid", "CO2", 500, "MWh",
         None, 1, 250.0, "secondary", "", "", "f:grid")], columns=LEDGER_COLUMNS)
    outputs = pd.DataFrame({"period": ["2025-01"], "product": ["cement"], "facility": ["F01"], "quantity": [2000.0],
                            "unit": ["t"]})
    factors = pd.DataFrame([
        {"factor_id": "f:coal:ncv", "kind": "ncv", "items": "raw_coal", "value": 20.0, "unit": "GJ/t",
         "document": "GB/T 32151.8", "table": "附录", "year": None, "region": "CN", "verified": True, "records": 1},
        {"factor_id": "f:coal:cc", "kind": "carbon_content", "items": "raw_coal", "value": 0.0273, "unit": "tC/GJ",
         "document": "GB/T 32151.8", "table": "附录", "year": None, "region": "CN", "verified": True, "records": 1},
        {"factor_id": "f:grid", "kind": "emission_factor", "items": "grid", "value": 0.5, "unit": "tCO2/MWh",
         "document": "a note", "table": "-", "year": 2023, "region": "CN", "verified": False, "records": 1}])
    ent = {"enterprise_id": "ent-r", "name_zh": "审核示例水泥厂", "name_en": "Review cement plant", "sector": "cement",
           "identifier_prefix": PREFIX}
    res = footprints_from_ledger(led, outputs, [{"product": "cement", "unit": "t", "name_zh": "水泥",
                                                 "name_en": "cement"}],
                                 enterprise=ent, period_start="2025-01", period_end="2025-01", factors_used=factors)
    return make_label(res, "cement")


def verification_package(tmp):
    """ent-r's 2025 verification package: one electricity bill, 3,000 kWh × 0.5703 = 1.7109 tCO2."""
    from connectors import activity_file
    from workbench.ingestion import ingest
    from workbench.lake.store import Lake
    from workbench.verification import export_package, generate_key

    lk = Lake(tmp / "lake").for_enterprise("ent-r")
    lk.register_boundary(pd.DataFrame([("ENT", "", "enterprise", "审核示例水泥厂", "Review cement plant", "")],
                                      columns=["node_id", "parent_id", "level", "name_zh", "name_en",
                                               "classification"]))
    lk.register_enterprise({"enterprise_id": "ent-r", "name_zh": "审核示例水泥厂", "name_en": "Review cement plant"})
    bill = tmp / "bill.csv"
    bill.write_text("source,item,quantity,unit,period,node_id,document,emission_factor,ef_unit,purity\n"
                    "purchased_electricity,grid,3000,kWh,2025-03,ENT,State Grid bill 2025-03,0.5703,tCO2/MWh,\n",
                    encoding="utf-8")
    ingest(lk, activity_file.read(bill), sender="erin")
    out = tmp / "ent-r-2025.zip"
    export_package(Lake(tmp / "lake"), "ent-r", 2025, out, private_key=generate_key(), report=False, notebook=False)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from workbench.demo.region import generate_region

    tmp = tmp_path_factory.mktemp("review")
    region = tmp / "region"
    generate_region(region, enterprises=20, seed=7)
    package = verification_package(tmp)
    users = UserStore(f"sqlite:///{tmp / 'users.db'}", scrypt_n=2**10)
    for name, role, grants in (("rita", "reviewer", ["ent-r", "R00001"]), ("mona", "manager", ["ent-r", "R00001"]),
                               ("otto", "reviewer", ["R00002"]), ("adam", "admin", ["*"])):
        users.add(name, role, PASSWORD)
        for g in grants:
            users.grant(name, g)
    labels = LabelStore(f"sqlite:///{tmp / 'labels.db'}")
    label = labels.submit(hand_label(), who="analyst-li")
    certs = GradeCertificates(f"sqlite:///{tmp / 'certification.db'}")
    grade = certs.submit(grade_evidence(region, "R00001", "2025-03"), who="analyst-li")
    other = certs.submit(grade_evidence(region, "R00002", "2025-03"), who="analyst-li")
    with LocalNode(prefix=PREFIX, scrypt_n=2**10) as node:
        yield {"tmp": tmp, "users": users, "labels": labels, "certs": certs, "label": label, "grade": grade,
               "other": other, "node": node, "package": package}
    labels.dispose()
    certs.dispose()
    users.dispose()


@pytest.fixture(scope="module")
def served(world, serve_apps):
    tmp, node = world["tmp"], world["node"]
    return serve_apps(tmp / "lake", tmp / "users.db", "--labels-db", str(tmp / "labels.db"), "--certification-db",
                      str(tmp / "certification.db"), "--idnode", node.url, "--idnode-user", node.admin,
                      "--dashboard-port", "-1", env={"WORKBENCH_IDNODE_PASSWORD": node.admin_password})


def _stores(world) -> dict:
    return {"labels": world["labels"], "certificates": world["certs"]}


def test_the_queue_holds_the_granted_enterprises_items_only(world):
    users = world["users"]
    rita = queue(users.principal("rita"), **_stores(world))
    assert [(i.kind, i.enterprise_id) for i in rita] == [("grade", "R00001"), ("label", "ent-r")]
    assert rita[1].quality["score"] == 78.6        # (1 + 800/1050 + 1/2 + 2/3 + 1) / 5, see test_certificates
    assert [(i.kind, i.enterprise_id) for i in queue(users.principal("otto"), **_stores(world))] == [("grade", "R00002")]
    with pytest.raises(AccessDenied):
        queue(users.principal("otto"), **_stores(world), enterprise="R00001")
    assert len(queue(users.principal("adam"), **_stores(world))) == 3         # an admin reads (*), never decides


def test_a_forged_decision_is_refused_where_it_is_made(world):
    users, label, grade = world["users"], world["label"], world["grade"]
    for who, kind, item in (("mona", "label", label.label_id), ("mona", "grade", grade.certificate_id),
                            ("adam", "grade", grade.certificate_id), ("otto", "grade", grade.certificate_id),
                            ("otto", "label", label.label_id)):
        with pytest.raises(AccessDenied):
            decide(users.principal(who), kind, item, "approve", "looks fine", **_stores(world), idnode=None)
    with pytest.raises(AccessDenied):
        check_uploaded_package(users.principal("mona"), world["certs"], world["package"].read_bytes())
    with pytest.raises(ReviewError, match="comment"):                 # a reviewer, but no reason to reject
        decide(users.principal("rita"), "grade", grade.certificate_id, "reject", " ", **_stores(world))
    assert world["labels"].get(label.label_id).status == "pending"
    assert world["certs"].get(grade.certificate_id).status == "pending"
    refused = {(r["actor"], r["enterprise_id"]) for r in users.audit_log(action="denied:review")}
    assert {("mona", "ent-r"), ("mona", "R00001"), ("adam", "R00001"), ("otto", "R00001"), ("otto", "ent-r")} <= refused
    assert not [r for r in users.audit_log(action="review")]            # nothing was decided


def test_a_manager_sees_the_queue_read_only(world, served, browser, ui):
    page, errors = ui.page(browser)
    ui.login(page, served, "mona", PASSWORD)
    page.goto(f"{served}/review")
    page.wait_for_selector("#item-summary", timeout=30_000)
    assert "read-only" in page.inner_text("#who")
    assert page.inner_text("#item-enterprise") == "R00001"
    assert page.get_by_role("button", name=re.compile("Approve")).is_disabled()
    assert page.get_by_role("button", name=re.compile("Reject")).is_disabled()
    page.locator(".review-activity .tabulator-row").first.wait_for(timeout=10_000)     # the evidence is shown
    ui.shot(page, "review-manager-read-only")
    assert errors == [], errors
    page.close()


def test_a_reviewer_of_another_enterprise_sees_none_of_it_and_is_refused_by_url(world, served, browser, ui):
    page, errors = ui.page(browser)
    ui.login(page, served, "otto", PASSWORD)
    page.goto(f"{served}/review")
    page.wait_for_selector("#item-summary", timeout=30_000)
    assert page.inner_text("#item-enterprise") == "R00002"
    body = page.inner_text("body")
    assert "R00001" not in body and "ent-r" not in body and world["label"].identifier not in body
    page.goto(f"{served}/review?enterprise=R00001")
    page.get_by_text("Not permitted: R00001").wait_for(timeout=30_000)
    assert page.locator("#item-summary").count() == 0
    assert errors == [], errors
    page.close()


def _select(page, kind: str) -> None:
    """Choose the pending item of ``kind`` (grade | label) in the item list."""
    sel = page.locator("select").filter(has=page.locator("option", has_text=kind)).first
    label = next(t for t in sel.locator("option").all_inner_texts() if kind in t)
    sel.select_option(label=label)


def _text_soon(page, selector: str, pattern: str, timeout_s: float = 15.0) -> str:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.locator(selector).count() and re.search(pattern, page.inner_text(selector)):
            return page.inner_text(selector)
        page.wait_for_timeout(200)
    raise AssertionError(f"{selector}: no {pattern!r} in {page.inner_text(selector) if page.locator(selector).count() else None!r}")


def test_a_reviewer_checks_the_package_approves_the_label_and_rejects_the_grade(world, served, browser, ui):
    users, labels, certs, node = world["users"], world["labels"], world["certs"], world["node"]
    label, grade = world["label"], world["grade"]
    page, errors = ui.page(browser)
    ui.login(page, served, "rita", PASSWORD)
    page.goto(f"{served}/review")
    page.wait_for_selector("#item-summary", timeout=30_000)
    assert "you may decide" in page.inner_text("#who")
    body = page.inner_text("body")
    assert "R00002" not in body                                    # another enterprise's grade is not listed

    # the label: its evidence, quality and (not yet) verification
    _select(page, "label")
    _text_soon(page, "#item-enterprise", "^ent-r$")
    assert page.inner_text("#quality") == "78.6"
    assert page.locator("#verification").get_attribute("data-state") == "not_verified"
    page.locator(".bk-tab", has_text="Factors").click()
    page.locator(".review-factors .tabulator-row", has_text="f:coal:ncv").wait_for(timeout=10_000)
    ui.shot(page, "review-label-pending")

    # the verification package checked on the page: recorded, and the status follows
    page.locator(".bk-tab", has_text="Verification").first.click()
    page.locator("input[type=file]").set_input_files(str(world["package"]))
    page.wait_for_timeout(500)
    page.get_by_role("button", name=re.compile("Check verification package")).click()
    page.get_by_text(re.compile("package checked on .* by rita: ok")).first.wait_for(timeout=30_000)
    [chk] = certs.checks("ent-r", 2025)
    assert chk["ok"] and chk["checked_by"] == "rita" and chk["total_tco2e"] == pytest.approx(3 * 0.5703, rel=1e-12)
    _text_soon(page, "#verification", "package checked on")
    assert page.locator("#verification").get_attribute("data-state") == "passed"

    # approve the label → published; its identifier and resolution URL on the page
    _select(page, "label")
    page.locator("textarea").fill("footprint agrees with the ledger")
    page.get_by_role("button", name=re.compile("Approve")).click()
    page.wait_for_selector("#published-identifier", timeout=30_000)
    assert page.inner_text("#published-identifier") == label.identifier
    url = resolution_url(node.url, label.identifier)
    assert page.get_attribute("#resolution-url", "href") == url
    done = labels.get(label.label_id)
    assert (done.status, done.decided_by, done.comment) == ("published", "rita", "footprint agrees with the ledger")
    assert done.decided_at and done.published_to == node.url
    assert [e["action"] for e in labels.events(label.label_id)] == ["submit", "approve", "publish"]
    with node.client() as c:
        fp = footprint_of_record(c.resolve(label.identifier))
    assert fp["value"] == pytest.approx(0.525, rel=1e-12) and fp["kgco2e_per_unit"] == pytest.approx(525.0, rel=1e-12)
    anonymous = footprint_of_record(HandleRecord.from_json(httpx.get(url, timeout=10).json()))   # a phone's scan
    assert anonymous["value"] == pytest.approx(0.525, rel=1e-12)
    ui.shot(page, "review-label-published")

    # reject the grade: without a comment refused, with one stored
    _select(page, "grade")
    _text_soon(page, "#item-enterprise", "^R00001$")
    page.get_by_role("button", name=re.compile("Reject")).click()
    page.get_by_text(re.compile("a rejection needs a comment")).first.wait_for(timeout=10_000)
    assert certs.get(grade.certificate_id).status == "pending"
    page.locator("textarea").fill("value added of March not evidenced")
    page.get_by_role("button", name=re.compile("Reject")).click()
    page.get_by_text(re.compile(f"grade {grade.certificate_id}: rejected by rita")).first.wait_for(timeout=15_000)
    g = certs.get(grade.certificate_id)
    assert (g.status, g.decided_by, g.comment) == ("rejected", "rita", "value added of March not evidenced")
    assert g.decided_at.endswith("Z")
    assert [(e["action"], e["who"]) for e in certs.events(grade.certificate_id)] == [("submit", "analyst-li"),
                                                                                    ("reject", "rita")]
    audit = [(r["action"], r["enterprise_id"], r["detail"]) for r in users.audit_log(actor="rita")]
    assert any(a == "review" and e == "R00001" and f"reject grade {grade.certificate_id}" in d and "March" in d
               for a, e, d in audit)
    assert any(a == "review" and e == "ent-r" and f"approve label {label.label_id}" in d for a, e, d in audit)
    assert any(a == "review" and e == "ent-r" and f"publish label {label.label_id}: {label.identifier}" in d
               for a, e, d in audit)
    assert any(a == "review" and e == "ent-r" and "verification package" in d for a, e, d in audit)
    _text_soon(page, "#item-summary", "Nothing pending")

    # the decided tab: both, with who and the published identifier's URL
    page.locator(".bk-tab", has_text="Decided").click()
    row = page.locator(".review-decided .tabulator-row", has_text="published")
    row.wait_for(timeout=10_000)
    assert url in row.inner_text() and "rita" in row.inner_text()
    assert page.locator(".review-decided .tabulator-row", has_text="value added of March").count() == 1
    ui.shot(page, "review-decided")
    assert errors == [], errors
    page.close()


def test_a_label_approved_while_the_node_is_down_is_published_later_with_a_token(world):
    import socket

    from workbench.apps.review import IdNodeAccess, publish_label

    users, labels, node = world["users"], world["labels"], world["node"]
    lab = hand_label()
    lab.identifier = f"{PREFIX}/label.pcf.2025-01.cement-late"
    labels.submit(lab, who="analyst-li")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    rita = users.principal("rita")
    down = IdNodeAccess(closed, token="wbt_nothing")
    res = decide(rita, "label", lab.label_id, "approve", "", **_stores(world), idnode=down)
    assert res["status"] == "approved" and "not published" in res["message"] and not res["identifier"]
    assert labels.get(lab.label_id).status == "approved"
    with pytest.raises(AccessDenied):                                 # publishing is a reviewer's too
        publish_label(users.principal("mona"), labels, node_access(node), lab.label_id)
    res = publish_label(rita, labels, node_access(node), lab.label_id)
    assert res["status"] == "published" and res["resolution_url"] == resolution_url(node.url, lab.identifier)
    with node.client() as c:
        assert footprint_of_record(c.resolve(lab.identifier))["value"] == pytest.approx(0.525, rel=1e-12)
    assert "token" not in repr(node_access(node)) and "wbt_" not in repr(node_access(node))


def node_access(node):
    """The apps' access to the node with a service token (`workbench idnode token issue`)."""
    from workbench.apps.review import IdNodeAccess

    if not hasattr(node, "_review_token"):
        node._review_token = node.store.issue_token(node.admin, label="apps-review")
    return IdNodeAccess(node.url, token=node._review_token)
