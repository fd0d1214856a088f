"""The verifier's evidence page (issue 14, point 3) in Debian's Chromium: a verifier granted ent-a
drills from the reported total to a source, a facility and a ledger row, and reads the row's raw
file (name and SHA-256, the bytes downloadable and the download audited) and its factors with their
provenance — the figures the package's evidence gives; ent-b is refused whatever the URL asks; the
page has nothing that writes, and a write is refused by role.

The lake is tests/status_lake.py: ent-a's gas ledger (2.5 万Nm3 natural gas on F01 in March 2026)
is accounted 2.5 × 389.31 GJ/万Nm3 × 15.3 tC/TJ × 0.99 × 44/12 = 54.05472 tCO2 — its raw file is
the ledger CSV the test wrote, whose SHA-256 is computed here from the bytes.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest
from status_lake import build

from workbench.apps.auth import AccessDenied, Principal, UserStore
from workbench.verification.evidence import collect, fmt

PASSWORD = "verifier password 1"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evidence")
    lake = build(tmp)
    users = UserStore(f"sqlite:///{tmp / 'users.db'}", scrypt_n=2**10)
    users.add("vera", "verifier", PASSWORD)
    users.grant("vera", "ent-a")
    yield tmp, lake, users
    users.dispose()


@pytest.fixture(scope="module")
def evidence(world):
    _, lake, _ = world
    return collect(lake, "ent-a", "2026-01", "2026-04")


def test_the_evidence_of_the_gas_row_is_its_ledger_file_and_its_factors(world, evidence):
    tmp, _, _ = world
    gas = evidence.rows("combustion", "F01")
    assert list(gas["record_id"]) == ["ledger.csv:2"]
    rec = evidence.record("ledger.csv:2")
    assert rec.ledger["tco2e"] == pytest.approx(2.5 * 389.31 * 15.3e-3 * 0.99 * 44 / 12, rel=1e-12)
    sha = hashlib.sha256((tmp / "ledger.csv").read_bytes()).hexdigest()
    assert list(rec.raw["sha256"]) == [sha] and list(rec.raw["raw_name"]) == ["ledger.csv"]
    assert set(rec.factors["factor_id"]) == {"gbt32151.22-2024:natural_gas:ncv",
                                             "gbt32151.22-2024:natural_gas:carbon_content",
                                             "gbt32151.22-2024:natural_gas:oxidation_rate"}
    assert set(rec.factors["document"]) == {"GB/T 32151.22-2024"}
    name, data = evidence.raw_file(rec.raw["batch_id"].iloc[0])
    assert (name, data) == ("ledger.csv", (tmp / "ledger.csv").read_bytes())
    # the drill-down's levels add up to the total
    assert evidence.by_source()["tco2e"].sum() == pytest.approx(evidence.total_tco2e)
    bf = evidence.by_facility("purchased_electricity")
    assert bf["tco2e"].sum() == pytest.approx(5.0 * 0.5306)      # 3,000 + 2,000 kWh billed × 0.5306 tCO2/MWh


def test_a_verifier_may_read_and_nothing_else(world):
    _, _, users = world
    vera = users.principal("vera")
    assert vera.may("read", "ent-a") and not vera.may("read", "ent-b")
    for action in ("export", "import", "acknowledge", "review", "manage_users"):
        with pytest.raises(AccessDenied):
            vera.act(action, "ent-a", "a write from the evidence page")
    refused = [r for r in users.audit_log(actor="vera") if not r["ok"]]
    assert {r["action"] for r in refused} >= {"denied:export", "denied:import", "denied:acknowledge"}


def test_the_page_has_no_widget_that_writes(world):
    """Built in-process for a verifier: the only widgets are the selection, tables that cannot be
    edited, and the raw file's download (a read)."""
    import panel as pn

    from workbench.apps.evidence import page

    tmp, _, users = world
    vera = users.principal("vera")
    layout = page(vera, tmp / "lake")
    widgets = layout.select(pn.widgets.Widget)
    kinds = {type(w).__name__ for w in widgets}
    assert kinds <= {"Select", "TextInput", "Tabulator", "FileDownload"}, kinds
    assert all(w.disabled for w in widgets if isinstance(w, pn.widgets.Tabulator))
    assert not layout.select(pn.widgets.FileInput) and not layout.select(pn.widgets.Button)
    # and for someone with no grant, nothing but the refusal
    nobody = Principal("nobody", "verifier", frozenset())
    assert not page(nobody, tmp / "lake").select(pn.widgets.Tabulator)


@pytest.fixture(scope="module")
def served(world, serve_apps):
    tmp, _, _ = world
    return serve_apps(tmp / "lake", tmp / "users.db")


def _select_row(page, text: str) -> None:
    """Click the table cell showing exactly ``text`` (the drill-down's tables show each key once)."""
    cell = page.locator(".tabulator-cell").filter(has_text=re.compile(f"^{re.escape(text)}$")).first
    cell.wait_for(timeout=30_000)
    cell.click()


def test_in_the_browser_a_verifier_drills_from_the_total_to_a_row_and_its_raw_file(world, evidence, served, browser,
                                                                                     ui):
    tmp, _, users = world
    page, errors = ui.page(browser)
    ui.login(page, served, "vera", PASSWORD)
    page.goto(f"{served}/evidence")
    page.wait_for_selector("#total", timeout=60_000)
    assert page.inner_text("#total") == fmt(evidence.total_tco2e)
    assert page.inner_text("#span") == "2026-01 – 2026-04"
    _select_row(page, "combustion")
    page.wait_for_selector("#crumb-source", timeout=30_000)
    assert page.inner_text("#crumb-source") == f"combustion {fmt(evidence.by_source().set_index('source').at['combustion', 'tco2e'])}"
    _select_row(page, "F01")
    page.wait_for_selector("#crumb-facility", timeout=30_000)
    _select_row(page, "ledger.csv:2")
    page.wait_for_selector("#record-id", timeout=30_000)
    rec = evidence.record("ledger.csv:2")
    assert page.inner_text("#record-id") == "ledger.csv:2"
    assert page.inner_text("#record-tco2e") == fmt(rec.ledger["tco2e"], 6)
    assert page.inner_text("#raw-sha256") == hashlib.sha256((tmp / "ledger.csv").read_bytes()).hexdigest()
    assert page.inner_text("#raw-name") == "ledger.csv"
    assert "gbt32151.22-2024:natural_gas:ncv" in page.inner_text("#factor-ids")
    assert "389.31" in page.inner_text("#evidence-record")
    # the raw file downloads, byte for byte, and the download is in the audit log
    with page.expect_download(timeout=30_000) as dl:
        page.get_by_text("下载原始文件 / Download raw file").click()
    assert Path(dl.value.path()).read_bytes() == (tmp / "ledger.csv").read_bytes()
    reads = [r for r in users.audit_log(actor="vera", action="read") if "evidence: raw file" in (r["detail"] or "")]
    assert reads and rec.raw["sha256"].iloc[0] in reads[0]["detail"] and reads[0]["enterprise_id"] == "ent-a"
    ui.shot(page, "evidence-ent-a")
    assert errors == [], errors
    page.close()


def test_in_the_browser_ent_b_is_refused_by_url(served, browser, ui, world):
    _, _, users = world
    page, errors = ui.page(browser)
    ui.login(page, served, "vera", PASSWORD)
    page.goto(f"{served}/evidence?enterprise=ent-b")
    page.get_by_text("Not permitted: ent-b").wait_for(timeout=30_000)
    assert page.locator("#total").count() == 0 and page.locator(".tabulator-row").count() == 0
    assert any(r["action"] == "denied:read" and r["enterprise_id"] == "ent-b"
               for r in users.audit_log(actor="vera"))
    ui.shot(page, "evidence-ent-b-refused")
    assert errors == [], errors
    page.close()


def test_the_evidence_frames_match_the_inventory(evidence):
    inv = evidence.inventory
    assert evidence.by_source()["tco2e"].tolist() == inv.by_source()["tco2e"].tolist()
    rows = evidence.rows()
    assert len(rows) == len(inv.ledger) and isinstance(rows, pd.DataFrame)
