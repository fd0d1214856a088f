"""Product footprints, their energy rating (GB 16780-2021) and batches — on the hand plant, every
expected value worked out here by hand from the formulas:

  mass shares 4/9 (clinker 4,000 t) and 5/9 (cement 5,000 t); the exported heat (−110) is the
  kiln's waste heat, assigned to clinker; the shared pools F03 (31.5 + 20), F04 (6), ENT (2.5 + 23.5)
  = 83.5 tCO2e;
  clinker AttrEm = 1100 + 2100 + 90 − 110 + 83.5 × 4/9;   cement AttrEm = 65 + 83.5 × 5/9;
  FP_clinker = AttrEm_clinker / 4000;  FP_cement = (AttrEm_cement + 4000 × FP_clinker) / 5000 = 3328.5 / 5000.
"""
from __future__ import annotations

import math

import hand_plant as hp
import pandas as pd
import pytest

from workbench.products.energy import (
    cement_energy_limits,
    energy_grade,
    rate,
    unit_energy,
)
from workbench.products.errors import ProductError
from workbench.products.footprint import batch_footprints, footprints_from_ledger

TCE = 29.3076                                    # GJ per tce (GB/T 2589)
CLINKER_ATTR = 1100 + 2100 + 90 - 110 + 83.5 * 4 / 9
CEMENT_ATTR = 65 + 83.5 * 5 / 9


def run(**kw):
    return footprints_from_ledger(hp.ledger(), hp.outputs(), hp.PRODUCTS, enterprise=hp.ENTERPRISE,
                                  period_start="2025-01", period_end="2025-01", **kw)


@pytest.fixture(scope="module")
def res():
    return run()


def test_grade_boundaries():
    lim = (100, 107, 117)
    assert energy_grade(100, lim) == 1 and energy_grade(100.0001, lim) == 2
    assert energy_grade(107, lim) == 2 and energy_grade(117, lim) == 3 and energy_grade(117.01, lim) is None
    # cement: limit + (P − 75) × (1.10, 1.15, 1.20); at 70 % clinker 74.5 / 81.25 / 88, at 80 % 85.5 / 92.75 / 100
    assert cement_energy_limits(70) == pytest.approx((74.5, 81.25, 88.0))
    assert cement_energy_limits(80) == pytest.approx((85.5, 92.75, 100.0))
    assert cement_energy_limits(75) == (80.0, 87.0, 94.0)
    assert rate("cement_energy", 85.5, clinker_percent=80).grade == 1
    assert rate("cement_energy", 100.01, clinker_percent=80).label_en == "above the limit"
    assert unit_energy(406.0, 4000) == pytest.approx(101.5)
    with pytest.raises(ProductError):
        rate("cement_energy", 80.0)                    # the clinker share is needed
    with pytest.raises(ProductError):
        unit_energy(1.0, 0.0)


def test_footprints_by_hand(res):
    cl, ce = res["clinker"], res["cement"]
    assert cl.attributed_tco2e == pytest.approx(CLINKER_ATTR, rel=1e-12)
    assert cl.per_unit_tco2e == pytest.approx(CLINKER_ATTR / 4000, rel=1e-12)
    assert cl.kgco2e_per_unit == pytest.approx(CLINKER_ATTR / 4000 * 1000, rel=1e-12)
    assert ce.attributed_tco2e == pytest.approx(CEMENT_ATTR, rel=1e-12)
    assert ce.precursor_tco2e == pytest.approx(4000 * CLINKER_ATTR / 4000, rel=1e-12)
    assert ce.per_unit_tco2e == pytest.approx(3328.5 / 5000, rel=1e-12)
    # scope 2 (purchased electricity): clinker 90 + (20 + 2.5) × 4/9, cement 65 + 22.5 × 5/9 + its clinker's
    assert cl.per_unit_indirect_tco2e == pytest.approx((90 + 22.5 * 4 / 9) / 4000, rel=1e-12)
    assert ce.per_unit_indirect_tco2e == pytest.approx((65 + 22.5 * 5 / 9 + 100) / 5000, rel=1e-12)
    assert ce.precursors == [{"precursor": "clinker", "mass": 4000.0, "per_unit_tco2e": pytest.approx(CLINKER_ATTR / 4000),
                              "tco2e": pytest.approx(CLINKER_ATTR)}]
    assert "upstream" in ce.boundary_en and ce.method == "mass" and ce.declared_unit == "1 t"


def test_everything_adds_back_to_the_ledger(res):
    c = res.check()
    assert c["ledger_tco2e"] == pytest.approx(hp.TOTAL, abs=1e-9)
    assert c["allocated_tco2e"] + c["excluded_tco2e"] == pytest.approx(hp.TOTAL, abs=1e-9)
    assert abs(c["chain_residual_tco2e"]) < 1e-9            # the cement leaving the plant carries it all
    assert res["cement"].per_unit_tco2e * 5000 == pytest.approx(hp.TOTAL, rel=1e-12)


def test_the_cement_sectors_energy_rating_by_hand(res):
    """Energy (non-production F04 excluded): clinker = coal 12,000 GJ + electricity (180 + 45 × 4/9) MWh
    × 3.6 + diesel 430 × 4/9 GJ − exported heat 1,000 GJ; cement = its own 130 MWh × 3.6 + 45 × 5/9 MWh
    × 3.6 + 430 × 5/9 GJ, plus 4,000 t of clinker at the clinker's figure; clinker share 80 %."""
    cl_gj = 12000 + (180 + 45 * 4 / 9) * 3.6 + 430 * 4 / 9 - 1000
    e_cl = cl_gj / TCE / 4000 * 1000                     # ≈ 101.6 kgce/t → grade 2 (100 < e ≤ 107)
    r = {x.indicator: x for x in res["clinker"].energy}
    assert r["clinker_energy"].value == pytest.approx(e_cl, rel=1e-12) and r["clinker_energy"].grade == 2
    assert r["clinker_electricity"].value == pytest.approx(200 / 4000 * 1000, rel=1e-12)   # 50 kWh/t → 2
    assert r["clinker_electricity"].grade == 2
    fuel = (12000 + 430 * 4 / 9) / TCE / 4000 * 1000     # ≈ 104.0 kgce/t → grade 3
    assert r["clinker_fuel"].value == pytest.approx(fuel, rel=1e-12) and r["clinker_fuel"].grade == 3
    own_gj = 130 * 3.6 + 45 * 5 / 9 * 3.6 + 430 * 5 / 9
    e_c = (own_gj / TCE + 4000 * e_cl / 1000) / 5000 * 1000   # ≈ 86.7 kgce/t; limits at 80 % 85.5/92.75/100
    c = {x.indicator: x for x in res["cement"].energy}
    assert c["cement_energy"].value == pytest.approx(e_c, rel=1e-12)
    assert c["cement_energy"].limits == pytest.approx((85.5, 92.75, 100.0)) and c["cement_energy"].grade == 2
    assert c["cement_electricity"].value == 26.0 and c["cement_electricity"].grade == 1    # 130 MWh / 5,000 t: on the limit
    assert res["cement"].energy_rating.indicator == "cement_energy"


def test_other_sectors_are_not_rated():
    ent = {**hp.ENTERPRISE, "sector": "textile"}
    r = footprints_from_ledger(hp.ledger(), hp.outputs(), hp.PRODUCTS, enterprise=ent, period_start="2025-01",
                               period_end="2025-01", precursors={})
    rating = r["cement"].energy_rating
    assert not rating.rated and rating.label_en == "not rated" and "UNVERIFIED" in rating.standard
    # no chain: each product carries only its own process, and the goods leaving add up to the total
    assert r["cement"].precursor_tco2e == 0
    assert r["clinker"].embedded_tco2e + r["cement"].embedded_tco2e == pytest.approx(hp.TOTAL, abs=1e-9)


def test_sold_precursor_leaves_the_plant_with_its_footprint():
    r = run(sold={"clinker": 1000})
    ce = r["cement"]
    assert ce.precursors[0]["mass"] == 3000.0
    assert ce.per_unit_tco2e == pytest.approx((CEMENT_ATTR + 3000 * CLINKER_ATTR / 4000) / 5000, rel=1e-12)
    leaving = 5000 * ce.per_unit_tco2e + 1000 * r["clinker"].per_unit_tco2e
    assert leaving == pytest.approx(hp.TOTAL, rel=1e-12)
    with pytest.raises(ProductError, match="between 0"):
        run(sold={"clinker": 5000})


def test_batches_take_their_months_footprint_and_the_rest_is_unbatched(res):
    batches = pd.DataFrame({"batch_id": ["B1", "B2"], "product": ["cement", "cement"],
                            "period": ["2025-01", "2025-01"], "quantity": [2000, 1_500_000], "unit": ["t", "kg"]})
    b = batch_footprints(res, batches).set_index("batch_id")
    per = 3328.5 / 5000
    assert b.at["B1", "tco2e"] == pytest.approx(2000 * per, rel=1e-12)
    assert b.at["B2", "quantity"] == 1500.0 and b.at["B2", "tco2e"] == pytest.approx(1500 * per, rel=1e-12)
    assert b.at["unbatched:cement:2025-01", "quantity"] == pytest.approx(1500.0)
    assert math.fsum(b["tco2e"]) == pytest.approx(hp.TOTAL, rel=1e-12)
    with pytest.raises(ProductError, match="output"):
        batch_footprints(res, batches.assign(quantity=[4000, 2000], unit="t"))
    with pytest.raises(ProductError, match="no footprint"):
        batch_footprints(res, batches.assign(period="2025-07"))


def test_evidence_names_the_ledger_rows_and_the_method(res):
    ev = res.evidence("cement")
    assert {r["record_id"] for r in ev["ledger"]} == set(hp.ledger()["record_id"])
    assert ev["allocation"]["method"] == "mass" and "ISO 14044" in ev["allocation"]["statement_en"]
    assert {o["product"] for o in ev["outputs"]} == {"cement", "clinker"}
    # primary data: all but the diesel (secondary) of |tCO2e|
    mag = hp.ledger()["tco2e"].abs()
    assert ev["primary_data_share"] == pytest.approx(1 - 31.5 / mag.sum(), rel=1e-12)
    with pytest.raises(ProductError, match="no footprint"):
        res.evidence("steel")


def test_pact_v3_shape(res):
    from workbench.products.pact import pact_footprint

    doc = pact_footprint(res["cement"], {**hp.ENTERPRISE, "uscc": "91330522MA2DEM007L"},
                         identifier="88.123.4567/label.pcf.2025-01.cement", created="2026-01-05T00:00:00Z")
    required = {"id", "specVersion", "created", "status", "companyName", "companyIds", "productDescription",
                "productIds", "productNameCompany", "pcf"}
    assert required <= set(doc) and doc["specVersion"] == "3.0.0" and doc["status"] == "Active"
    pcf = doc["pcf"]
    assert {"declaredUnitOfMeasurement", "declaredUnitAmount", "productMassPerDeclaredUnit", "referencePeriodStart",
            "referencePeriodEnd", "pcfExcludingBiogenicUptake", "pcfIncludingBiogenicUptake", "fossilGhgEmissions",
            "fossilCarbonContent", "ipccCharacterizationFactors", "crossSectoralStandards",
            "exemptedEmissionsPercent"} <= set(pcf)
    # per kg of cement: 3,328.5 tCO2e ÷ 5,000 t = 0.6657 kgCO2e/kg; decimals as strings
    assert pcf["declaredUnitOfMeasurement"] == "kilogram" and pcf["declaredUnitAmount"] == "1000"
    assert pcf["pcfExcludingBiogenicUptake"] == "0.6657" == pcf["fossilGhgEmissions"]
    assert pcf["referencePeriodStart"] == "2025-01-01T00:00:00Z" and pcf["referencePeriodEnd"] == "2025-02-01T00:00:00Z"
    assert doc["companyIds"] == ["urn:uscc:91330522MA2DEM007L"]
    assert doc["productIds"][0] == "urn:industrial-internet-id:88.123.4567/label.pcf.2025-01.cement"
    assert "NOT included" in doc["comment"] and pcf["ipccCharacterizationFactors"] == ["AR5"]
    assert sum(k.startswith("geography") for k in pcf) == 1


def test_a_mini_mill_rolls_its_own_billets():
    """The steel sector's chain: the bar carries the billets it was rolled from (all of them, as
    CBAM's M_i counts precursor lost as scale and crop ends); no assigned pools, no energy rating."""
    outs = hp.outputs().replace({"clinker": "billet", "cement": "rebar"})
    prods = [{"product": "billet", "unit": "t", "name_zh": "方坯", "name_en": "billet"},
             {"product": "rebar", "unit": "t", "name_zh": "钢筋", "name_en": "rebar"}]
    r = footprints_from_ledger(hp.ledger(), outs, prods, enterprise={**hp.ENTERPRISE, "sector": "steel"},
                               period_start="2025-01", period_end="2025-01")
    shared = 31.5 + 20 + 6 - 110 + 2.5 + 23.5             # the heat credit is shared here
    assert r["billet"].attributed_tco2e == pytest.approx(1100 + 2100 + 90 + shared * 4 / 9, rel=1e-12)
    assert r["rebar"].precursors[0]["mass"] == 4000.0
    assert r["rebar"].per_unit_tco2e == pytest.approx(hp.TOTAL / 5000, rel=1e-12)
    assert not r["rebar"].energy_rating.rated


def test_cement_whose_clinker_is_not_made_here_is_not_rated():
    r = run(precursors={})
    assert not r["cement"].energy_rating.rated and "clinker" in r["cement"].energy_rating.note
    assert r["clinker"].energy_rating.rated
