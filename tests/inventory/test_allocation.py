import pandas as pd
import pytest

from workbench.inventory.allocation import allocate_by_submeters


def _activity():
    return pd.DataFrame({
        "record_id": ["BILL-01", "BILL-02", "COAL-01"],
        "node_id": ["ENT", "ENT", "F01"],
        "period": ["2025-01", "2025-02", "2025-01"],
        "source": ["purchased_electricity", "purchased_electricity", "combustion"],
        "item": ["grid", "grid", "raw_coal"],
        "quantity": [1000.0, 800.0, 50.0],
        "unit": ["MWh", "MWh", "t"],
        "document": ["bill 01", "bill 02", "ledger"],
    })


def test_split_by_shares_keeps_the_total():
    metered = pd.DataFrame({
        "period": ["2025-01"] * 3,
        "source": ["purchased_electricity"] * 3,
        "item": ["grid"] * 3,
        "node_id": ["F01", "F02", "ENT"],
        "quantity": [600.0, 380.0, 20.0],  # metered MWh: shares 60 %, 38 %, 2 % (residual)
        "unit": ["MWh"] * 3,
    })
    out = allocate_by_submeters(_activity(), metered, enterprise="ENT")
    jan = out[out["record_id"].str.startswith("BILL-01@")].set_index("node_id")["quantity"]
    assert jan["F01"] == pytest.approx(1000 * 600 / 1000)
    assert jan["F02"] == pytest.approx(1000 * 380 / 1000)
    assert jan["ENT"] == pytest.approx(1000 * 20 / 1000)
    assert jan.sum() == pytest.approx(1000.0)
    assert "60.000 % by sub-meter share" in out.set_index("record_id").at["BILL-01@F01", "document"]
    # February has no metered data: the bill stays whole on the enterprise; other records untouched
    assert out.set_index("record_id").at["BILL-02", "quantity"] == 800.0
    assert out.set_index("record_id").at["COAL-01", "node_id"] == "F01"
    assert out["quantity"].sum() == pytest.approx(1850.0)
    assert list(out.columns) == list(_activity().columns)


def test_no_metered_data_changes_nothing():
    empty = pd.DataFrame(columns=["period", "source", "item", "node_id", "quantity", "unit"])
    out = allocate_by_submeters(_activity(), empty, enterprise="ENT")
    pd.testing.assert_frame_equal(out.reset_index(drop=True), _activity())
