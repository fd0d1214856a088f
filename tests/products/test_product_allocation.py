"""Allocation of facility emissions to products (issue 14 point 5): subdivision first, then mass,
physical causality or economic value; the parts of every pool add up to it, so the allocation sums
back to each facility's and the enterprise's total.  Expected values are worked out by hand from
the hand plant (tests/products/hand_plant.py)."""
from __future__ import annotations

import math

import hand_plant as hp
import pandas as pd
import pytest

from workbench.products.allocation import (
    allocate,
    allocate_pools,
    allocation_shares,
    ledger_pools,
    method_drivers,
)
from workbench.products.errors import ProductError

# the pools the hand plant shares (no product is made there): F03 diesel 31.5 + electricity 20,
# F04 natural gas 6, F05 exported heat −110, ENT electricity 2.5 + SF6 23.5
SHARED = 31.5 + 20 + 6 - 110 + 2.5 + 23.5          # = −26.5
OWN_CLINKER = 1100 + 2100 + 90                      # F01
OWN_CEMENT = 65                                     # F02


def test_allocate_splits_by_the_drivers_and_the_parts_add_up():
    assert allocate(100.0, [3, 1]).tolist() == [75.0, 25.0]
    assert allocation_shares([4000, 5000]).tolist() == pytest.approx([4 / 9, 5 / 9], rel=1e-15)
    parts = allocate(83.5, [4000, 5000])
    assert parts.tolist() == pytest.approx([83.5 * 4 / 9, 83.5 * 5 / 9], rel=1e-15)
    assert math.fsum(parts) == 83.5
    # a credit divides like an emission; thirds do not divide evenly, yet the parts add up exactly
    parts = allocate(-110.0, [1, 1, 1])
    assert math.fsum(parts) == -110.0 and parts.tolist() == pytest.approx([-110 / 3] * 3, rel=1e-15)
    for bad in ([0, 0], [-1, 2], [float("nan"), 1], []):
        with pytest.raises(ProductError):
            allocate(1.0, bad)


def test_ledger_pools_sum_the_ledger_with_energy():
    pools = ledger_pools(hp.ledger())
    assert math.fsum(pools["tco2e"]) == pytest.approx(hp.TOTAL, abs=1e-9)
    f01 = pools[pools["facility"] == "F01"].set_index("source")
    assert f01.at["combustion", "fuel_gj"] == 12000
    assert f01.at["purchased_electricity", "electricity_mwh"] == 180
    heat = pools[pools["source"] == "exported_heat"].iloc[0]
    assert heat["heat_gj"] == -1000                               # exported: subtracted
    # energy in tce: GJ ÷ 29.3076; electricity at 3.6 GJ/MWh (equal-value)
    assert f01.at["combustion", "energy_tce"] == pytest.approx(12000 / 29.3076, rel=1e-12)
    assert f01.at["purchased_electricity", "energy_tce"] == pytest.approx(180 * 3.6 / 29.3076, rel=1e-12)
    assert heat["energy_tce"] == pytest.approx(-1000 / 29.3076, rel=1e-12)


@pytest.mark.parametrize("method, clinker_share", [
    ("mass", 4000 / 9000),                            # output mass: 4,000 t of 9,000 t
    ("physical", 180 / (180 + 130)),                  # metered electricity of F01 and F02
    ("economic", 4000 * 300 / (4000 * 300 + 5000 * 400)),   # output × price
])
def test_subdivision_then_the_method_for_the_shared_pools(method, clinker_share):
    pools = ledger_pools(hp.ledger())
    a = allocate_pools(pools, hp.outputs(), method=method, prices={"clinker": 300, "cement": 400})
    got = a.by_product().set_index("product")["tco2e"]
    assert got["clinker"] == pytest.approx(OWN_CLINKER + SHARED * clinker_share, rel=1e-12)
    assert got["cement"] == pytest.approx(OWN_CEMENT + SHARED * (1 - clinker_share), rel=1e-12)
    # sums back: to the enterprise total, and every facility's pools to the facility
    assert math.fsum(a.table["tco2e"]) == pytest.approx(hp.TOTAL, abs=1e-9)
    by_fac = a.table.groupby("facility")["tco2e"].sum()
    ledger_fac = hp.ledger().groupby("facility")["tco2e"].sum()
    assert by_fac.to_dict() == pytest.approx(ledger_fac.to_dict(), abs=1e-12)
    assert a.residual() <= 1e-12
    # the own facilities are subdivision, the rest the method
    assert set(a.table.loc[a.table["facility"].isin(["F01", "F02"]), "basis"]) == {"subdivision"}
    assert set(a.table.loc[~a.table["facility"].isin(["F01", "F02"]), "basis"]) == {method}
    assert "subdivision" in a.statement_en and "F01 → clinker" in a.statement_en and "ISO 14044" in a.statement_en
    assert "细分" in a.statement_zh


def test_assigned_pools_and_excluded_classes_are_stated_and_still_add_up():
    pools = ledger_pools(hp.ledger())
    a = allocate_pools(pools, hp.outputs(), method="mass", assign={"source:exported_heat": "clinker"},
                       exclude_classes=("non_production",))
    got = a.by_product().set_index("product")["tco2e"]
    shared = 31.5 + 20 + 2.5 + 23.5                # without F04 (excluded) and F05 (assigned)
    assert got["clinker"] == pytest.approx(OWN_CLINKER - 110 + shared * 4 / 9, rel=1e-12)
    assert got["cement"] == pytest.approx(OWN_CEMENT + shared * 5 / 9, rel=1e-12)
    assert a.excluded_tco2e == 6.0
    assert a.allocated_tco2e + a.excluded_tco2e == pytest.approx(hp.TOTAL, abs=1e-9)
    assert "exported_heat → clinker" in a.statement_en and "non_production" in a.statement_en
    assert set(a.table.loc[a.table["source"] == "exported_heat", "basis"]) == {"assigned"}


def test_each_month_has_its_own_shares():
    led = pd.concat([hp.ledger("2025-01"), hp.ledger("2025-02")], ignore_index=True)
    outs = pd.concat([hp.outputs("2025-01"), hp.outputs("2025-02", clinker=1000, cement=5000)], ignore_index=True)
    a = allocate_pools(ledger_pools(led), outs, method="mass")
    got = a.by_product(by=("period",)).set_index(["period", "product"])["tco2e"]
    assert got[("2025-01", "clinker")] == pytest.approx(OWN_CLINKER + SHARED * 4 / 9, rel=1e-12)
    assert got[("2025-02", "clinker")] == pytest.approx(OWN_CLINKER + SHARED * 1 / 6, rel=1e-12)
    assert math.fsum(a.table["tco2e"]) == pytest.approx(2 * hp.TOTAL, abs=1e-9)


def test_drivers_and_their_errors():
    outs = hp.outputs()
    d = method_drivers("mass", outs).set_index("product")["driver"]
    assert d.to_dict() == {"clinker": 4000.0, "cement": 5000.0}
    kg = outs.assign(quantity=[4_000_000.0, 5_000_000.0], unit="kg")
    assert method_drivers("mass", kg).set_index("product")["driver"].to_dict() == {"clinker": 4000.0, "cement": 5000.0}
    with pytest.raises(ProductError, match="price"):
        method_drivers("economic", outs, prices={"clinker": 300})
    with pytest.raises(ProductError, match="not a mass"):
        method_drivers("mass", outs.assign(unit="m3"))
    with pytest.raises(ProductError, match="one of"):
        method_drivers("volume", outs)
    given = method_drivers("physical", outs, drivers={"clinker": 3, "cement": 1}).set_index("product")["driver"]
    assert given.to_dict() == {"clinker": 3.0, "cement": 1.0}
    two = pd.concat([outs, outs.assign(product=["clinker2", "cement2"])], ignore_index=True)
    with pytest.raises(ProductError, match="cannot tell them apart"):
        method_drivers("physical", two, ledger_pools(hp.ledger()))
    with pytest.raises(ProductError, match="no product output"):
        allocate_pools(ledger_pools(hp.ledger()), outs.assign(quantity=0.0))
