"""EU CBAM embedded emissions (issue 14 point 6): the formulas of IR 2025/2547 (Eq. 55, 59–63) on
plain tables, the China defaults only as a flagged fallback, and a cement plant's export data from
its ledger in the template's sheets — expected values worked out by hand.

The hand plant (tests/products/hand_plant.py) under CBAM: CO2 only (the 23.5 tCO2e of SF6 are left
out); shared CO2 pools F03 31.5 + 20, F04 6, ENT 2.5 by mass 4/9 : 5/9; the exported heat (110 t) is
the kiln's.

  clinker  DirEm = 1100 + 2100 + (31.5 + 6) × 4/9;  AttrEm_dir = DirEm − 110
           E_el  = 180 + (40 + 5) × 4/9 = 200 MWh;  Em_indir = 200 × 0.605 = 121
  cement   DirEm = (31.5 + 6) × 5/9 = 20.8333…;  E_el = 130 + 45 × 5/9 = 155 MWh → 93.775
  SEE_dir(cement) = (20.8333 + 4000 × SEE_dir(clinker)) / 5000 = (20.8333 + 3106.6667) / 5000 = 0.6255
  SEE_ind(cement) = (93.775 + 121) / 5000 = 0.042955
"""
from __future__ import annotations

import json

import hand_plant as hp
import pandas as pd
import pytest
from openpyxl import load_workbook

from workbench.accounting import account
from workbench.core.activity import normalize_activity
from workbench.core.factors import default_library
from workbench.core.regime import get_regime
from workbench.products.cbam import SHEETS, cbam_from_ledger, write_json, write_xlsx
from workbench.products.errors import ProductError
from workbench.regimes.cbam import (
    REGIME,
    CBAMError,
    attributed_direct_emissions,
    default_value,
    embedded_emissions,
    indirect_emissions,
    markup,
    precursor_rows,
    specific_embedded_emissions,
)

CL_DIR = 1100 + 2100 + 37.5 * 4 / 9 - 110
CE_DIR = 37.5 * 5 / 9


def test_the_formulas():
    # Eq. 55: DirEm + heat imported − heat exported + WG_imp − WG_exp − Em_el,prod, never below 0
    assert attributed_direct_emissions(1000, 50, 200, 10, 5, 30) == 1000 + 50 - 200 + 10 - 5 - 30
    assert attributed_direct_emissions(100, heat_exported=300) == 0.0
    assert attributed_direct_emissions([100, 10], heat_exported=[50, 50]).tolist() == [50.0, 0.0]
    assert indirect_emissions(200, 0.605) == pytest.approx(121.0)
    # Eq. 59/60: (AttrEm + Σ M_i × SEE_i) / AL
    assert specific_embedded_emissions(10, 5000, [4000], [0.75]) == pytest.approx((10 + 3000) / 5000)
    assert specific_embedded_emissions(300, 100) == 3.0
    with pytest.raises(CBAMError):
        specific_embedded_emissions(1, 0)


def test_the_recursion_through_precursors_and_purchased_ones():
    procs = pd.DataFrame({"good": ["clinker", "cement"], "activity_level_t": [4000, 5000],
                          "attributed_direct_tco2e": [3000, 10], "attributed_indirect_tco2e": [100, 50]})
    prec = precursor_rows([{"good": "cement", "precursor": "clinker", "mass_t": 3000},
                           {"good": "cement", "precursor": "bought", "mass_t": 1000, "see_direct": 0.9,
                            "see_indirect": 0.05, "basis": "DEFAULT"}])
    g = embedded_emissions(procs, prec)
    assert g.at["clinker", "see_direct"] == 0.75 and g.at["clinker", "see_indirect"] == 0.025
    assert g.at["cement", "see_direct"] == pytest.approx((10 + 3000 * 0.75 + 1000 * 0.9) / 5000)
    assert g.at["cement", "see_indirect"] == pytest.approx((50 + 3000 * 0.025 + 1000 * 0.05) / 5000)
    # the share of the cement's embedded emissions that came from default values
    total = (10 + 3000 * 0.75 + 900) + (50 + 75 + 50)
    assert g.at["cement", "default_share"] == pytest.approx(950 / total)
    cyc = precursor_rows([{"good": "clinker", "precursor": "cement", "mass_t": 1},
                          {"good": "cement", "precursor": "clinker", "mass_t": 1}])
    with pytest.raises(CBAMError, match="cycle"):
        embedded_emissions(procs, cyc)


def test_defaults_are_a_flagged_fallback_with_the_years_markup():
    assert [markup(y) for y in (2025, 2026, 2027, 2028, 2031)] == [0.0, 0.10, 0.20, 0.30, 0.30]
    d = default_value("2523 29 00", 2027)                # grey Portland cement: 1.35 / 0.07, +20 %
    assert d.direct == pytest.approx(1.35 * 1.2) and d.indirect == pytest.approx(0.07 * 1.2)
    assert d.flag == "DEFAULT" and "transcription" in d.source
    assert default_value("7214 10 00", 2026).indirect is None       # steel: direct only (Annex II)
    with pytest.raises(CBAMError):
        default_value("9999", 2026)


def test_the_regime_counts_the_gbt32150_sources_as_eq55_does():
    assert get_regime("cbam") is REGIME and get_regime("EU CBAM") is REGIME
    assert REGIME.signs == {"combustion": 1, "process": 1, "purchased_heat": 1, "exported_heat": -1,
                            "purchased_electricity": 0, "exported_electricity": 0}
    assert "2025/2547" in REGIME.edition(2026) and "2023/1773" in REGIME.edition(2025)
    # the engine under the CBAM regime: electricity reported apart, exported heat subtracted
    act = pd.DataFrame([
        {"record_id": "a", "node_id": "F01", "period": "2026-01", "source": "purchased_electricity", "item": "grid",
         "quantity": 100, "unit": "MWh"},
        {"record_id": "b", "node_id": "F01", "period": "2026-01", "source": "exported_heat", "item": "heat",
         "quantity": 1000, "unit": "GJ"},
        {"record_id": "c", "node_id": "F01", "period": "2026-01", "source": "process", "item": "limestone",
         "quantity": 1000, "unit": "t", "purity": 1.0},
    ])
    lib = default_library()
    led = account(normalize_activity(act, library=lib, regime=REGIME), lib, region="CN", regime=REGIME)
    assert led["tco2e"].sum() == pytest.approx(1000 * 0.4397 - 1000 * 0.11, rel=1e-9)


@pytest.fixture(scope="module")
def report():
    return cbam_from_ledger(hp.ledger(), hp.outputs(), hp.PRODUCTS, enterprise=hp.ENTERPRISE,
                            period_start="2025-01", period_end="2025-01", exported={"cement": 1000})


def test_a_cement_plants_embedded_emissions_by_hand(report):
    cl, ce = report.see("clinker"), report.see("cement")
    assert cl["direct"] == pytest.approx(CL_DIR / 4000, rel=1e-12)
    assert cl["indirect"] == pytest.approx(200 * 0.605 / 4000, rel=1e-12)
    assert ce["direct"] == pytest.approx((CE_DIR + CL_DIR) / 5000, rel=1e-12)
    assert ce["direct"] == pytest.approx(0.6255, rel=1e-12)
    assert ce["indirect"] == pytest.approx((155 * 0.605 + 200 * 0.605) / 5000, rel=1e-12)
    assert ce["indirect"] == pytest.approx(0.042955, rel=1e-12)
    p = report.processes.set_index("good")
    assert p.at["clinker", "electricity_mwh"] == pytest.approx(200) and p.at["cement", "electricity_mwh"] == pytest.approx(155)
    assert p.at["clinker", "heat_exported_tco2e"] == 110 and p.at["cement", "heat_exported_tco2e"] == 0
    assert any("SF6 23.500" in f for f in report.flags)                 # not a CBAM gas for cement
    assert any("0.605" in f for f in report.flags) and report.ef_el_source.startswith("DEFAULT")
    assert report.goods.at["cement", "default_share"] == 0.0


def test_an_actual_electricity_factor_needs_its_evidence():
    kw = {"enterprise": hp.ENTERPRISE, "period_start": "2025-01", "period_end": "2025-01"}
    with pytest.raises(ProductError, match="evidence"):
        cbam_from_ledger(hp.ledger(), hp.outputs(), hp.PRODUCTS, ef_el=0.2, **kw)
    r = cbam_from_ledger(hp.ledger(), hp.outputs(), hp.PRODUCTS, ef_el=0.2, ef_el_source="PPA 2025-001", **kw)
    assert r.see("clinker")["indirect"] == pytest.approx(200 * 0.2 / 4000)
    assert r.ef_el_source == "actual: PPA 2025-001"
    # a purchased precursor without the supplier's data takes the China default, flagged
    r = cbam_from_ledger(hp.ledger(), hp.outputs(), hp.PRODUCTS, purchased=[
        {"good": "cement", "precursor": "clinker-b", "cn_code": "25231000", "mass_t": 500}], **kw)
    assert r.see("cement")["direct"] == pytest.approx((CE_DIR + CL_DIR + 500 * 1.35) / 5000, rel=1e-12)
    assert any("clinker-b" in f for f in r.flags)
    assert r.goods.at["cement", "default_share"] > 0


def test_the_template_workbook_and_json(report, tmp_path):
    path = write_xlsx(report, tmp_path / "cbam.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == list(SHEETS)
    ws = wb["Summary_Products"]
    assert [ws.cell(2, c).value[:1] for c in range(9, 12)] == ["I", "J", "K"]
    rows = {ws.cell(r, 5).value: r for r in range(3, ws.max_row + 1)}
    r = rows["cement production"]
    assert ws.cell(r, 3).value == "25232900"
    assert ws.cell(r, 9).value == pytest.approx(0.6255) and ws.cell(r, 10).value == pytest.approx(0.042955)
    assert ws.cell(r, 11).value == pytest.approx(0.6255 + 0.042955)
    assert "UNVERIFIED" in wb["A_InstData"]["A1"].value
    a = {row[0].value: row[1].value for row in wb["A_InstData"].iter_rows(min_row=3)}
    assert a["Operator name"] == hp.ENTERPRISE["name_en"]
    comm = json.loads(write_json(report, tmp_path / "cbam.json").read_text(encoding="utf-8"))
    c = {r["good"]: r for r in comm["sheets"]["Summary_Communication"]}
    assert c["cement"]["embedded direct (tCO2e)"] == pytest.approx(1000 * 0.6255)
    assert comm["regime"] == "EU CBAM" and set(comm["sheets"]) == set(SHEETS)
