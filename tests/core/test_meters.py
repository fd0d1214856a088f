"""The meter register's typed columns (workbench.core.meters)."""
from __future__ import annotations

import pandas as pd

from workbench.core.meters import normalize_meters


def test_an_empty_quantity_cell_gets_the_units_default_and_a_stated_one_is_kept():
    # as master data gives them: empty text, None and NaN mean "not stated"
    m = pd.DataFrame({"meter_id": ["A", "B", "C", "D"], "unit": ["kWh", "Nm3", "GJ", "t"],
                      "item": ["grid", "natural_gas", "heat", "raw_coal"],
                      "quantity": ["", None, "reactive_energy", float("nan")]})
    got = normalize_meters(m).set_index("meter_id")["quantity"].to_dict()
    assert got == {"A": "active_energy", "B": "normal_volume", "C": "reactive_energy", "D": "mass"}


def test_without_a_quantity_column_every_meter_gets_its_units_default():
    m = pd.DataFrame({"meter_id": ["H", "E"], "unit": ["GJ", "MWh"], "item": ["heat", "grid"]})
    assert normalize_meters(m)["quantity"].tolist() == ["heat", "active_energy"]
