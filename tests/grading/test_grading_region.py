"""Grading a region end to end on hand-computed cases (tests/grading/hand_region.py): CO2 through the
accounting engine and the factor library, the benchmark per period × division × province, statuses
that never carry a grade, movements, the distribution by county × industry, who sees which rows,
the evidence for a reviewer, the second scheme through the entry points, bad input named."""
from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path

import hand_region
import numpy as np
import pandas as pd
import pytest

from workbench.grading import (
    GradingDataError,
    GradingError,
    UnknownSchemeError,
    available_schemes,
    get_scheme,
    grade_distribution,
    grade_evidence,
    grade_region,
    l_trend,
    load_region,
    movements,
    unregister_scheme,
)
from workbench.grading.scheme import BUILTIN, ENTRY_POINT_GROUP, _entry_points

ROOT = Path(__file__).resolve().parents[2]
HEAT = 0.11          # tCO2/GJ, default:heat:emission_factor
GRID = 0.4974        # tCO2/MWh, mee-avg:CN-ZJ:2023 (used for 2025)


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    return hand_region.write(tmp_path_factory.mktemp("hand-region"))


@pytest.fixture(scope="module")
def em(region):
    return load_region(region)


def by_id(rg):
    return rg.grades.set_index("enterprise_id")


def grade_of(row):
    return None if pd.isna(row["grade"]) else int(row["grade"])


class TestEmissionsThroughTheEngine:
    def test_monthly_co2_by_hand_with_the_published_factors(self, em):
        m = em.monthly.set_index(["enterprise_id", "period"])
        assert m.loc[("F1", "2025-01"), "co2_t"] == pytest.approx(1000 * HEAT, rel=1e-12)
        assert m.loc[("F1", "2025-02"), "co2_t"] == pytest.approx(500 * HEAT, rel=1e-12)
        assert m.loc[("G1", "2025-01"), "co2_t"] == pytest.approx(1500 * GRID, rel=1e-12)
        assert m.loc[("Z1", "2025-01"), "avoided_t"] == pytest.approx(1000 * GRID, rel=1e-12)
        assert np.isnan(m.loc[("G5", "2025-01"), "value_added_10k_cny"])
        assert ("G6", "2025-01") in m.index and m.loc[("G6", "2025-01"), "energy_records"] == 0

    def test_the_ledger_carries_factor_ids_and_file_rows(self, em):
        led = em.ledger.set_index("record_id")
        assert led.loc["energy.csv:2", "emission_factor_id"] == "default:heat:emission_factor"
        g1 = em.ledger[(em.ledger["enterprise_id"] == "G1")].iloc[0]
        assert g1["emission_factor_id"] == "mee-avg:CN-ZJ:2023" and g1["region"] == "CN-ZJ"
        assert g1["document"].startswith("energy.csv row ")
        assert set(em.ledger["source"]) == {"purchased_heat", "purchased_electricity"}


class TestGradesByHand:
    def test_january(self, region):
        g = by_id(grade_region(region, "2025-01"))
        # C30: L_ind = 385 / 525
        assert g.loc["F1", "benchmark_l"] == pytest.approx(385 / 525, rel=1e-12)
        assert g.loc[["F1", "F2", "F3"], "l"].tolist() == pytest.approx([1.1, 0.55, 2.2], rel=1e-12)
        assert g.loc[["F1", "F2", "F3"], "k"].tolist() == pytest.approx([1.5, 0.75, 3.0], rel=1e-12)
        assert [grade_of(g.loc[e]) for e in ("F1", "F2", "F3")] == [4, 2, 5]
        assert g.loc[["F1", "F2", "F3"], "level"].tolist() == ["medium", "low", "high"]
        assert (g.loc[["F1", "F2", "F3"], "benchmark_n"] == 3).all()
        # C17 with G7: L_ind = (746.1 + 2 × 497.4) / (3 × 497.4) = 3.5 / 3
        assert g.loc["G1", "industry"] == "C17" and g.loc["G2", "industry"] == "C17"   # C1713 and C1751: one division
        assert g.loc["G1", "benchmark_l"] == pytest.approx(3.5 / 3, rel=1e-12)
        assert [grade_of(g.loc[e]) for e in ("G1", "G2", "G7")] == [4, 3, 3]

    def test_march_hits_the_boundaries_exactly(self, region):
        g = by_id(grade_region(region, "2025-03"))
        # G7 has no value added in March: G1 L 1.5, G2 L 1.0, L_ind 1.25 → K 1.2 and 0.8 exactly
        assert g.loc["G1", "benchmark_l"] == pytest.approx(1.25, rel=1e-12)
        assert g.loc[["G1", "G2"], "k"].tolist() == pytest.approx([1.2, 0.8], rel=1e-12)
        assert (grade_of(g.loc["G1"]), grade_of(g.loc["G2"])) == (3, 2)
        assert g.loc["G7", "status"] == "value_added_missing" and grade_of(g.loc["G7"]) is None
        # H1: L = 110 / 55 = 2.0 exactly → 中碳 (inclusive); alone in C21 → K 1 → 3, flagged
        assert g.loc["H1", "l"] == pytest.approx(2.0, rel=1e-12) and g.loc["H1", "level"] == "medium"
        assert grade_of(g.loc["H1"]) == 3 and "small_benchmark" in g.loc["H1", "flags"]
        # Z1: (994.8 − 497.4) / 497.4 = 1.0, own PV deducted
        assert g.loc["Z1", "l"] == pytest.approx(1.0, rel=1e-12) and "zero_carbon_deducted" in g.loc["Z1", "flags"]

    def test_value_added_and_energy_that_cannot_carry_a_grade(self, region):
        g = by_id(grade_region(region, "2025-01"))
        want = {"G3": "value_added_zero", "G4": "value_added_negative", "G5": "value_added_missing",
                "G6": "no_energy_data"}
        for eid, status in want.items():
            row = g.loc[eid]
            assert row["status"] == status and grade_of(row) is None and np.isnan(row["k"])
            assert row["flags"].split(";")[0] == status
        # none of them is in the benchmark: C17 counts G1, G2, G7 only
        assert g.loc["G1", "benchmark_n"] == 3

    def test_quarter_and_incomplete_periods(self, region):
        q = by_id(grade_region(region, "2025-Q1"))
        assert q.loc["F1", "co2_t"] == pytest.approx(275.0) and q.loc["F1", "value_added_10k_cny"] == pytest.approx(300.0)
        assert q.loc["F1", "benchmark_l"] == pytest.approx(1100 / 1575, rel=1e-12)
        assert q.loc[["F1", "F2", "F3"], "k"].tolist() == pytest.approx([1.3125, 0.7875, 3.15], rel=1e-12)
        assert [grade_of(q.loc[e]) for e in ("F1", "F2", "F3")] == [4, 2, 5]
        assert q.loc["G7", "status"] == "incomplete_period" and q.loc["G7", "months"] == 2
        assert (grade_of(q.loc["G1"]), grade_of(q.loc["G2"])) == (3, 2)
        # the data hold three months: the year is incomplete for everyone
        y = grade_region(region, "2025")
        assert set(y.grades["status"]) <= {"incomplete_period", "value_added_missing", "no_industry"}
        assert y.grades["grade"].isna().all()

    def test_several_periods_in_one_call_equal_one_by_one(self, region, em):
        both = grade_region(em, ["2025-01", "2025-Q1"]).grades
        for p in ("2025-01", "2025-Q1"):
            one = grade_region(em, p).grades
            pd.testing.assert_frame_equal(both[both["period"] == p].reset_index(drop=True), one)

    def test_movements_between_months(self, region):
        jan, feb = grade_region(region, "2025-01"), grade_region(region, "2025-02")
        # February: L_ind = 330 / 525; F1 0.55 → K 0.875 → 3 (up from 4); F2 K 0.875 → 3 (down from 2)
        assert by_id(feb).loc["F1", "k"] == pytest.approx(0.875, rel=1e-12)
        mv = movements(jan, feb).set_index("enterprise_id")
        assert set(mv.index) == {"F1", "F2"}
        assert mv.loc["F1", ["grade_prev", "grade", "direction", "steps"]].tolist() == [4, 3, "up", -1]
        assert mv.loc["F2", ["grade_prev", "grade", "direction", "steps"]].tolist() == [2, 3, "down", 1]
        assert mv.loc["F1", "l_prev"] == pytest.approx(1.1) and mv.loc["F1", "l"] == pytest.approx(0.55)
        assert mv.loc["F1", "k_prev"] == pytest.approx(1.5) and mv.loc["F1", "k"] == pytest.approx(0.875)

    def test_distribution_by_county_and_industry(self, region):
        rg = grade_region(region, "2025-01")
        d = rg.distribution().set_index(["county_code", "industry"])
        assert d.loc[("330522", "C30"), [1, 2, 3, 4, 5, "ungraded", "total"]].tolist() == [0, 1, 0, 1, 0, 0, 2]
        assert d.loc[("330502", "C17"), [1, 2, 3, 4, 5, "ungraded", "total"]].tolist() == [0, 0, 1, 0, 0, 4, 5]
        assert int(d["total"].sum()) == len(hand_region.ENTERPRISES)
        assert rg.summary()["ungraded"] == 4 and sum(rg.summary()["grades"].values()) == 8

    def test_benchmark_scope_and_industry_level(self, region):
        # by county: F3 alone in 德清 → K 1; by class: G1 (C1713) and G2, G7 (C1751) apart
        g = by_id(grade_region(region, "2025-01", benchmark_scope="county"))
        assert g.loc["F3", "k"] == pytest.approx(1.0) and g.loc["F3", "scope"] == "330521"
        c = by_id(grade_region(region, "2025-01", industry_level="class"))
        assert c.loc["G1", "industry"] == "C1713" and c.loc["G1", "k"] == pytest.approx(1.0)
        assert c.loc["G2", "benchmark_l"] == pytest.approx(1.0)
        with pytest.raises(GradingError, match="benchmark scope 'planet'"):
            grade_region(region, "2025-01", benchmark_scope="planet")

    def test_trend_of_l(self, region):
        rg = grade_region(region, list(hand_region.MONTHS))
        t = l_trend(rg).set_index(["period", "industry"])
        assert t.loc[("2025-01", "C30"), "l"] == pytest.approx(385 / 525)
        assert t.loc[("2025-02", "C30"), "l"] == pytest.approx(330 / 525)
        assert t.loc[("2025-02", "C30"), "benchmark_l"] == pytest.approx(330 / 525)
        assert t.loc[("2025-01", "C30"), "l_median"] == pytest.approx(1.1)


class TestWhoSeesWhat:
    def test_only_visible_rows_leave_the_package(self, region):
        rg = grade_region(region, "2025-01", visible=["F1"])
        assert rg.grades["enterprise_id"].tolist() == ["F1"]
        # the grade does not depend on who looks: the benchmark is still the industry's three firms
        assert grade_of(rg.grades.iloc[0]) == 4 and rg.grades.iloc[0]["benchmark_n"] == 3
        assert rg.benchmarks["industry"].tolist() == ["C30"] and rg.population == len(hand_region.ENTERPRISES)
        assert int(rg.distribution(())["total"].iloc[0]) == 1
        assert grade_region(region, "2025-01", visible=[]).grades.empty

    def test_movements_and_trend_hold_only_visible_rows(self, region):
        jan = grade_region(region, "2025-01", visible=["F1"])
        feb = grade_region(region, "2025-02", visible=["F1"])
        assert movements(jan, feb)["enterprise_id"].tolist() == ["F1"]
        t = l_trend(grade_region(region, list(hand_region.MONTHS), visible=["F1"]))
        assert set(t["industry"]) == {"C30"} and (t["n"] == 1).all()


class TestEvidence:
    def test_an_enterprise_grade_with_its_evidence(self, region):
        ev = grade_evidence(region, "F1", "2025-01")
        assert ev.grade == 4 and ev.row["k"] == pytest.approx(1.5) and ev.row["l"] == pytest.approx(1.1)
        assert ev.benchmark["benchmark_l"] == pytest.approx(385 / 525) and ev.benchmark["n"] == 3
        assert ev.benchmark["co2_t"] == pytest.approx(385.0) and ev.benchmark["value_added_10k_cny"] == pytest.approx(525.0)
        assert ev.energy["emission_factor_id"].tolist() == ["default:heat:emission_factor"]
        assert ev.energy["tco2e"].sum() == pytest.approx(110.0) and ev.energy["document"].iloc[0] == "energy.csv row 2"
        assert ev.value_added[["period", "value_added_10k_cny", "row"]].values.tolist() == [["2025-01", 100.0, 2]]
        assert set(ev.files) >= {"enterprises.csv", "energy.csv", "value_added.csv"} and all(
            len(h) == 64 for h in ev.files.values())
        assert ev.scheme["name"] == "zhejiang" and any(not p["verified"] for p in ev.scheme["provenance"])
        d = ev.to_dict()
        import json
        json.dumps(d, ensure_ascii=False)      # JSON-ready
        assert d["grade"] == 4 and d["energy"][0]["emission_factor_id"] == "default:heat:emission_factor"

    def test_evidence_of_an_ungraded_enterprise_says_why(self, region):
        ev = grade_evidence(region, "G3", "2025-01")
        assert ev.grade is None and ev.flags[0]["flag"] == "value_added_zero" and "增加值为零" in ev.flags[0]["text"]
        z = grade_evidence(region, "Z1", "2025-01")
        assert z.zero_carbon["tco2e"].sum() == pytest.approx(497.4) and z.flags[-1]["flag"] == "zero_carbon_deducted"

    def test_unknown_enterprise(self, region):
        with pytest.raises(GradingError, match="enterprise 'NOPE' is not in the region"):
            grade_evidence(region, "NOPE", "2025-01")


class TestSchemes:
    def test_the_provenance_says_what_is_unverified(self):
        z = get_scheme()
        assert z.name == "zhejiang" and get_scheme("碳效码") is z
        text = " ".join(f"{p.what} {p.note}" for p in z.provenance if not p.verified)
        assert "1.2" in text and "OCR" in text and "DB33/T 1347" in " ".join(p.document for p in z.provenance)
        assert "UNVERIFIED" in text

    def test_the_builtin_entry_points_are_the_pyproject_ones(self):
        declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]
        assert declared[ENTRY_POINT_GROUP] == BUILTIN
        assert {n: ep.value for n, ep in _entry_points().items() if n in BUILTIN} == BUILTIN

    def test_the_quintile_scheme_through_the_entry_point(self, region):
        assert available_schemes().get("quintile", "").startswith(("entry point", "registered"))
        q = get_scheme("quintile")
        assert q.illustrative and "illustrative" in q.title_en
        g = by_id(grade_region(region, "2025-01", "quintile"))
        # C30 by L: F2 0.55 (1/3 → ⌈5/3⌉ = 2), F1 1.1 (2/3 → 4), F3 2.2 (1 → 5)
        assert [grade_of(g.loc[e]) for e in ("F2", "F1", "F3")] == [2, 4, 5]
        assert g.loc["F1", "k"] == pytest.approx(2 / 3) and g.loc["F1", "level"] == ""
        assert grade_of(g.loc["G3"]) is None and g.loc["G3", "status"] == "value_added_zero"

    def test_a_scheme_of_another_package(self, region, tmp_path, monkeypatch):
        """A package declares a scheme under `workbench.grading_schemes`; no workbench file changes."""
        (tmp_path / "wb_test_scheme.py").write_text(
            "import numpy as np\n"
            "from workbench.grading.zhejiang import ZhejiangScheme\n"
            "class Strict(ZhejiangScheme):\n"
            "    name = 'strict-test'\n"
            "    aliases = ()\n"
            "SCHEME = Strict(grade_bounds=(0.5, 0.7, 1.0, 1.5))\n", encoding="utf-8")
        dist = tmp_path / "wb_test_scheme-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wb-test-scheme\nVersion: 0.1\n", encoding="utf-8")
        (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nstrict = wb_test_scheme:SCHEME\n",
                                               encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))
        importlib.invalidate_caches()
        try:
            assert available_schemes()["strict"] == "entry point wb_test_scheme:SCHEME"
            g = by_id(grade_region(region, "2025-01", "strict"))
            # F2 K 0.75: grade 2 under 碳效码, 3 under the plug-in's (0.7, 1.0]
            assert grade_of(g.loc["F2"]) == 3 and (g["scheme"] == "strict-test").all()
        finally:
            unregister_scheme("strict-test")
            sys.modules.pop("wb_test_scheme", None)

    def test_unknown_scheme(self, region):
        with pytest.raises(UnknownSchemeError, match="no grading scheme 'nope' \\(known: .*quintile.*zhejiang"):
            grade_region(region, "2025-01", "nope")


class TestBadInput:
    def _copy(self, region, tmp_path):
        import shutil

        d = tmp_path / "r"
        shutil.copytree(region, d)
        return d

    @pytest.mark.parametrize("file, edit, where", [
        ("energy.csv", lambda t: t.replace("F1,2025-01,purchased_heat,heat,1000", "F1,2025-01,purchased_heat,heat,lots"),
         "energy.csv, row 2, column 'quantity': 'lots' is not a number"),
        ("energy.csv", lambda t: t.replace("F2,2025-01", "XX,2025-01", 1),
         "energy.csv, row 3, column 'enterprise_id': enterprise 'XX' is not in enterprises.csv"),
        ("value_added.csv", lambda t: t.replace("F1,2025-01,100", "F1,2025-13,100"),
         "value_added.csv, row 2, column 'period': '2025-13' is not a month"),
        ("value_added.csv", lambda t: t + "F1,2025-01,7\n",
         "value_added.csv, row 37, column 'period': value added of F1 for 2025-01 given twice"),
        ("energy.csv", lambda t: t.replace("F1,2025-01,purchased_heat,heat", "F1,2025-01,purchased_heat,unobtainium"),
         "energy.csv, row 2, column 'item': 'unobtainium' is not an energy item"),
        ("energy.csv", lambda t: t.replace("F1,2025-01,purchased_heat,heat,1000,GJ", "F1,2025-01,purchased_heat,heat,1000,t"),
         "energy.csv, row 2, column 'unit'"),
        ("enterprises.csv", lambda t: t.replace("F1,F1企业,C3011", "F1,F1企业,cement"),
         "enterprises.csv, row 2, column 'industry_code': 'CEMENT' is not a GB/T 4754 code"),
        ("enterprises.csv", lambda t: t.replace("county_code,", "county,", 1), "enterprises.csv, row 1: missing column(s) county_code"),
        ("value_added.csv", lambda t: "", "value_added.csv: the file is empty"),
    ])
    def test_named_by_file_row_and_column(self, region, tmp_path, file, edit, where):
        from workbench.grading.region import clear_cache

        d = self._copy(region, tmp_path)
        p = d / file
        p.write_text(edit(p.read_text(encoding="utf-8")), encoding="utf-8")
        clear_cache()
        with pytest.raises(GradingDataError) as exc:
            grade_region(d, "2025-01")
        assert str(exc.value).startswith(f"{d}/{where}"), str(exc.value)

    def test_missing_file_and_binary_file(self, region, tmp_path):
        d = self._copy(region, tmp_path)
        (d / "energy.csv").unlink()
        with pytest.raises(GradingDataError, match=f"{d}/energy.csv: missing"):
            grade_region(d, "2025-01")
        (d / "energy.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
        with pytest.raises(GradingDataError, match="energy.csv: a PNG image, not text"):
            grade_region(d, "2025-01")

    def test_no_industry_is_flagged_not_refused(self, region, tmp_path):
        d = self._copy(region, tmp_path)
        p = d / "enterprises.csv"
        p.write_text(p.read_text(encoding="utf-8").replace("H1,H1企业,C2130", "H1,H1企业,"), encoding="utf-8")
        g = by_id(grade_region(d, "2025-01"))
        assert g.loc["H1", "status"] == "no_industry" and grade_of(g.loc["H1"]) is None


def test_distribution_of_an_empty_table():
    from workbench.grading import GRADE_COLUMNS

    empty = pd.DataFrame({c: pd.Series(dtype="float64" if c in ("l", "k") else object) for c in GRADE_COLUMNS})
    empty["grade"] = pd.array([], dtype="Int8")
    d = grade_distribution(empty, ())
    assert d.iloc[0].tolist() == [0, 0, 0, 0, 0, 0, 0]
