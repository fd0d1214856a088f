"""Data status of an enterprise's lake (issue 13, point 3): completeness by meter and by source,
quarantined rows and their reasons, the last imports, bills against meters — every expected value
worked out by hand from the rows ingested here through the ordinary ingest path.

Enterprise ``ent-a`` (meters E0 main on ENT, E1 sub-meter on F01, both grid electricity, kWh,
15-minute interval registers):

* March 2026 (31 days = 2,976 intervals): E0 1 kWh per interval, 2 intervals not sent and one sent
  as −1 kWh (quarantined) → 2,973 present, 2,973 kWh; E1 0.5 kWh every interval → 1,488 kWh; a row
  of the unregistered meter E9 (quarantined).  Bill 3,000 kWh; natural gas ledger 2.5 万Nm3.
* April 2026 (30 days = 2,880 intervals): E0 1 kWh every interval → 2,880 kWh; E1 nothing.
  Bill 2,000 kWh; no gas record.

Enterprise ``ent-b`` in the same root: the same meter ids, E0 7 kWh every March interval, its own
quarantined row (meter X9) — none of it may show in ``ent-a``'s status.
"""
from __future__ import annotations

import pandas as pd
import pytest
from status_lake import APRIL, MARCH, build

from workbench.reports.status import (
    data_status,
    meter_completeness,
    quarantined_rows,
    status_months,
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return build(tmp_path_factory.mktemp("status"))


@pytest.fixture(scope="module")
def status_a(lake):
    return data_status(lake.for_enterprise("ent-a"))


def test_months_come_from_the_data_or_the_bounds(lake, status_a):
    assert status_a.enterprise == "ent-a" and status_a.months == ["2026-03", "2026-04"]
    a = lake.for_enterprise("ent-a")
    assert status_months(a, start="2026-04") == ["2026-04"]
    assert status_months(a, start="2026-02-15", end="2026-03-31") == ["2026-02", "2026-03"]
    assert status_months(lake) == []                     # the root's own (unnamed) enterprise holds nothing


def test_completeness_by_meter(status_a):
    m = status_a.meters.set_index(["month", "meter_id"])
    e0 = m.loc[("2026-03", "E0")]
    assert (e0["expected_intervals"], e0["intervals_present"], e0["missing_intervals"]) == (MARCH, MARCH - 3, 3)
    assert e0["completeness"] == pytest.approx((MARCH - 3) / MARCH)
    assert e0["consumption"] == pytest.approx(MARCH - 3.0)          # 1 kWh per interval present
    assert (e0["node_id"], bool(e0["is_main"]), e0["quarantined_rows"]) == ("ENT", True, 1)
    assert (e0["flagged_readings"], e0["flagged_intervals"]) == (0, 0)
    e1 = m.loc[("2026-03", "E1")]
    assert (e1["intervals_present"], e1["completeness"], e1["consumption"]) == (MARCH, 1.0, pytest.approx(1488.0))
    assert e1["quarantined_rows"] == 0
    assert m.loc[("2026-04", "E0"), "completeness"] == 1.0
    assert m.loc[("2026-04", "E0"), "expected_intervals"] == APRIL
    # a registered meter that sent nothing in the month: shown, at 0
    e1a = m.loc[("2026-04", "E1")]
    assert (e1a["intervals_present"], e1a["missing_intervals"], e1a["completeness"]) == (0, APRIL, 0.0)
    assert pd.isna(e1a["consumption"])
    assert sorted(m.index) == [("2026-03", "E0"), ("2026-03", "E1"), ("2026-04", "E0"), ("2026-04", "E1")]


def test_completeness_by_source(status_a):
    s = status_a.sources.set_index(["source", "item", "month"])
    grid_mar = s.loc[("purchased_electricity", "grid", "2026-03")]
    assert (grid_mar["ledger_records"], grid_mar["invoice_records"], grid_mar["meters_reporting"]) == (0, 1, 2)
    assert (grid_mar["basis"], bool(grid_mar["missing"])) == ("invoice", False)
    grid_apr = s.loc[("purchased_electricity", "grid", "2026-04")]
    assert (grid_apr["invoice_records"], grid_apr["meters_reporting"], grid_apr["basis"]) == (1, 1, "invoice")
    gas_mar = s.loc[("combustion", "natural_gas", "2026-03")]
    assert (gas_mar["ledger_records"], gas_mar["basis"], bool(gas_mar["missing"])) == (1, "ledger", False)
    gas_apr = s.loc[("combustion", "natural_gas", "2026-04")]
    assert (gas_apr["ledger_records"], gas_apr["invoice_records"], gas_apr["meters_reporting"]) == (0, 0, 0)
    assert (gas_apr["basis"], bool(gas_apr["missing"])) == ("", True)
    assert len(s) == 4


def test_quarantined_rows_and_reasons(status_a):
    q = status_a.quarantine
    assert q[["month", "table", "rows", "batches"]].values.tolist() == [["2026-03", "readings", 1, 1]] * 2
    assert sorted(q["reason"]) == ["meter not registered: 'E9'", "negative interval value -1.0"]
    rows = status_a.quarantine_rows.set_index("meter_id")
    assert sorted(rows.index) == ["E0", "E9"]
    neg = rows.loc["E0"]
    assert (neg["table"], neg["reason"], neg["month_from"]) == ("readings", "negative interval value -1.0", "data")
    assert '"value":-1.0' in neg["payload"]
    march_batch = status_a.imports.set_index("origin").loc["/exports/march.csv", "batch_id"]
    assert set(rows["batch_id"]) == {march_batch}


def test_quarantine_is_filtered_by_month(lake):
    """Rows are data of their month: April alone has none."""
    a = lake.for_enterprise("ent-a")
    assert quarantined_rows(a, ["2026-04"]).empty
    assert len(quarantined_rows(a, ["2026-03"])) == 2


def test_last_imports(status_a):
    imp = status_a.imports
    assert len(imp) == 5
    assert imp["stored_at"].is_monotonic_decreasing                   # newest first
    assert imp.iloc[0]["kind"] == "invoice" and imp.iloc[0]["sender"] == "carol"
    assert imp.iloc[0]["rows_curated"] == 2
    march = imp.set_index("origin").loc["/exports/march.csv"]
    # 2,974 E0 rows sent (2 never sent), 2,976 E1, 1 E9; the −1 and the E9 row quarantined
    assert (march["rows_in"], march["rows_curated"], march["rows_quarantined"]) == (
        MARCH - 2 + MARCH + 1, MARCH - 3 + MARCH, 2)
    assert (march["raw_name"], march["sender"], march["status"]) == ("march.csv", "alice", "stored")
    act = imp[imp["kind"] == "activity"].sort_values("stored_at")
    assert act["status"].tolist() == ["stored", "duplicate_upload"]
    assert act.iloc[1]["duplicate_of"] == act.iloc[0]["batch_id"]
    assert imp["received_at"].notna().all() and imp["received_at"].dt.tz is None   # naive local time


def test_bills_against_meters(lake, status_a):
    r = status_a.reconciliation.set_index(["month", "source", "item"])
    mar = r.loc[("2026-03", "purchased_electricity", "grid")]
    # the bill 3,000 kWh against the main meter E0's 2,973 kWh
    assert (mar["unit"], mar["invoice"], mar["billed"], mar["billed_basis"]) == ("kWh", 3000.0, 3000.0, "invoice")
    assert mar["meters"] == pytest.approx(2973.0)
    assert mar["difference"] == pytest.approx(27.0)
    assert mar["ratio"] == pytest.approx(3000.0 / 2973.0)
    assert mar["min_completeness"] == pytest.approx((MARCH - 3) / MARCH)
    assert (mar["status"], bool(mar["flagged"])) == ("ok", False)                   # 0.9 % ≤ 2 %
    apr = r.loc[("2026-04", "purchased_electricity", "grid")]
    assert apr["meters"] == pytest.approx(2880.0)
    assert apr["difference"] == pytest.approx(-880.0)
    assert apr["ratio"] == pytest.approx(2000.0 / 2880.0)
    assert (apr["status"], bool(apr["flagged"])) == ("beyond tolerance", True)
    gas = r.loc[("2026-03", "combustion", "natural_gas")]
    assert (gas["billed_basis"], gas["billed"], gas["status"], bool(gas["flagged"])) == ("ledger", 2.5, "no meters",
                                                                                        False)
    # a 0.5 % tolerance flags March's 0.9 % too
    tight = data_status(lake.for_enterprise("ent-a"), tolerance=0.005).reconciliation
    assert tight[tight["item"] == "grid"]["flagged"].tolist() == [True, True]


def test_enterprise_isolation(lake, status_a):
    b = data_status(lake.for_enterprise("ent-b"))
    assert b.months == ["2026-03"]
    mb = b.meters.set_index("meter_id")
    assert mb.loc["E0", "consumption"] == pytest.approx(7.0 * MARCH) and mb.loc["E0", "completeness"] == 1.0
    assert b.quarantine["reason"].tolist() == ["meter not registered: 'X9'"]
    assert len(b.imports) == 1 and b.imports["sender"].tolist() == ["dave"]
    assert b.sources["invoice_records"].sum() == 0 and b.sources["ledger_records"].sum() == 0
    # nothing of B in A's status, nothing of A in B's
    assert "X9" not in set(status_a.quarantine_rows["meter_id"])
    assert not set(status_a.imports["batch_id"]) & set(b.imports["batch_id"])
    assert status_a.meters["consumption"].max() < 7.0 * MARCH
    assert "dave" not in set(status_a.imports["sender"])
    # the root's own (unnamed) enterprise: empty frames, with their columns
    root = data_status(lake)
    assert root.months == [] and root.meters.empty and root.imports.empty and root.reconciliation.empty
    assert "completeness" in root.meters.columns and "ratio" in root.reconciliation.columns


def test_a_step_alone_gives_the_same_frame(lake, status_a):
    a = lake.for_enterprise("ent-a")
    alone = meter_completeness(a, status_a.months)
    pd.testing.assert_frame_equal(alone, status_a.meters)


def test_two_bills_of_one_batch_are_two_records_for_the_inventory(lake):
    """ent-a's two bills came in one batch (and invoices have no row column): each its own record id,
    so the inventory over the same lake does not refuse them as duplicates."""
    from workbench.inventory.footprint import footprint
    from workbench.inventory.sources import invoice_candidates

    bills = invoice_candidates(lake.for_enterprise("ent-a"), ["2026-03", "2026-04"], "ENT")
    assert len(bills) == 2 and bills["record_id"].is_unique
    assert sorted(bills["quantity"]) == [2000.0, 3000.0]
    fp = footprint(lake.for_enterprise("ent-a"), "2026-03", "2026-04")
    assert fp.total_tco2e > 0
