"""The 碳效码 formulas on hand-computed cases: grade boundaries (exactly at 0.6, 0.8, 1.2, 2.0 and just
above), level boundaries (0.6, 2.0), value added that cannot carry a grade, the aggregate-ratio
benchmark of a 3-firm industry, periods."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.grading.errors import GradingError
from workbench.grading.formulas import (
    GRADE_BOUNDS,
    LEVEL_BOUNDS,
    aggregate_ratio,
    carbon_level,
    classify,
    grade_from_k,
    k_value,
    percentile_grade,
    unit_value_added_emissions,
    value_added_status,
)
from workbench.grading.periods import parse_period, period_labels

EPS = 1e-9      # "just above": far beyond floating-point noise, far below any real difference


def grades(values):
    return [None if pd.isna(g) else int(g) for g in grade_from_k(values)]


class TestGradeBoundaries:
    def test_the_reference_thresholds(self):
        # applications.md §5: grade 1 ≤ 0.6; 2 (0.6, 0.8]; 3 (0.8, 1.2]; 4 (1.2, 2.0]; 5 > 2.0
        assert GRADE_BOUNDS == (0.6, 0.8, 1.2, 2.0) and LEVEL_BOUNDS == (0.6, 2.0)

    @pytest.mark.parametrize("k, at, above", [(0.6, 1, 2), (0.8, 2, 3), (1.2, 3, 4), (2.0, 4, 5)])
    def test_exactly_at_and_just_above(self, k, at, above):
        assert grades([k, k + EPS, k - EPS]) == [at, above, at]

    def test_far_inside_each_grade_and_the_ends(self):
        assert grades([0.0, 0.3, 0.7, 1.0, 1.5, 3.0, 50.0, -0.2]) == [1, 1, 2, 3, 4, 5, 5, 1]

    def test_computed_boundaries_grade_like_typed_ones(self):
        # 0.3/0.5, 0.4/0.5, 0.6/0.5, 1.0/0.5 land within rounding of the boundaries
        k = k_value([0.3, 0.4, 0.6, 1.0, 0.1 + 0.2 + 0.3], [0.5, 0.5, 0.5, 0.5, 1.0])
        assert grades(k) == [1, 2, 3, 4, 1]

    def test_nan_is_no_grade(self):
        g = grade_from_k([np.nan, 1.0, np.inf])
        assert g.dtype == "Int8" and pd.isna(g[0]) and int(g[1]) == 3 and int(g[2]) == 5

    def test_classify_needs_increasing_bounds(self):
        with pytest.raises(ValueError, match="strictly increasing"):
            classify([1.0], (1.0, 0.5))


class TestLevels:
    def test_level_boundaries(self):
        got = carbon_level([0.6, 0.6 + EPS, 2.0, 2.0 + EPS, 0.0, np.nan]).tolist()
        assert got == ["low", "medium", "medium", "high", "low", ""]

    def test_level_from_computed_l(self):
        # L = E / VA: 30 t / 50 万元 = 0.6 → 低碳; 100 / 50 = 2.0 → 中碳; 100.5 / 50 = 2.01 → 高碳
        lv = unit_value_added_emissions([30.0, 100.0, 100.5], [50.0, 50.0, 50.0])
        np.testing.assert_allclose(lv, [0.6, 2.0, 2.01])
        assert carbon_level(lv).tolist() == ["low", "medium", "high"]


class TestValueAdded:
    def test_zero_negative_nan_are_flagged_and_give_no_l(self):
        va = [100.0, 0.0, -5.0, np.nan, None, np.inf]
        assert value_added_status(va).tolist() == ["ok", "value_added_zero", "value_added_negative",
                                                   "value_added_missing", "value_added_missing",
                                                   "value_added_missing"]
        lv = unit_value_added_emissions([50.0] * 6, np.array(va, dtype="float64"))
        assert lv[0] == 0.5 and np.isnan(lv[1:]).all()
        assert grades(k_value(lv, 1.0)) == [1, None, None, None, None, None]

    def test_deduction_and_currency_unit(self):
        # (120 − 20) t / 2,000,000 CNY = 100 / 200 万元 = 0.5
        assert unit_value_added_emissions([120.0], [2_000_000.0], avoided=[20.0], value_added_unit="CNY")[0] == \
            pytest.approx(0.5, rel=1e-12)

    def test_k_without_a_benchmark_is_nan(self):
        assert np.isnan(k_value([1.0, 1.0, 1.0], [0.0, -1.0, np.nan])).all()


class TestBenchmark:
    def test_aggregate_ratio_of_a_three_firm_industry_by_hand(self):
        # E 110, 220, 55 t; VA 100, 400, 25 万元 → L_ind = 385 / 525 = 0.7333…, not the mean of L (1.2833…)
        per_row, n, table = aggregate_ratio([110.0, 220.0, 55.0, 7.0], [100.0, 400.0, 25.0, 10.0],
                                            ["C30", "C30", "C30", "C17"])
        assert per_row[:3] == pytest.approx([385 / 525] * 3, rel=1e-15)
        assert per_row[3] == pytest.approx(0.7)
        assert n.tolist() == [3, 3, 3, 1]
        row = table.set_index("group").loc["C30"]
        assert (row["co2_t"], row["value_added_10k_cny"], row["n"]) == (385.0, 525.0, 3)
        lv = unit_value_added_emissions([110.0, 220.0, 55.0], [100.0, 400.0, 25.0])
        k = k_value(lv, per_row[:3])
        np.testing.assert_allclose(k, [1.5, 0.75, 3.0], rtol=1e-14)
        assert grades(k) == [4, 2, 5]

    def test_rows_without_value_added_do_not_count(self):
        per_row, n, table = aggregate_ratio([110.0, 999.0], [100.0, np.nan], {"industry": ["C30", "C30"],
                                                                               "period": ["2025-01"] * 2})
        assert per_row.tolist() == [1.1, 1.1] and n.tolist() == [1, 1]
        assert list(table.columns[:2]) == ["industry", "period"]

    def test_avoided_is_deducted_from_the_industry_too(self):
        per_row, _, _ = aggregate_ratio([100.0, 100.0], [100.0, 100.0], ["a", "a"], avoided=[50.0, 0.0])
        assert per_row[0] == pytest.approx(0.75)


class TestPercentileGrade:
    def test_quintiles_within_groups(self):
        p, g = percentile_grade([5.0, 1.0, 3.0, 2.0, 4.0, np.nan, 9.0], ["a"] * 6 + ["b"])
        np.testing.assert_allclose(p[:5], [1.0, 0.2, 0.6, 0.4, 0.8])
        assert [None if pd.isna(x) else int(x) for x in g] == [5, 1, 3, 2, 4, None, 5]


class TestPeriods:
    def test_parse(self):
        assert parse_period("2025-03").months == ("2025-03",)
        assert parse_period("2025q2").label == "2025-Q2" and parse_period("2025-Q2").months == ("2025-04", "2025-05", "2025-06")
        assert len(parse_period("2025").months) == 12
        assert str(parse_period("2025-01").previous()) == "2024-12"
        assert str(parse_period("2025-Q1").previous()) == "2024-Q4" and str(parse_period("2025").previous()) == "2024"

    @pytest.mark.parametrize("bad", ["2025-13", "2025-00", "25-01", "2025-Q5", "March", ""])
    def test_bad_period_names_the_value(self, bad):
        with pytest.raises(GradingError, match=f"period '{bad}'"):
            parse_period(bad)

    def test_labels(self):
        assert period_labels(["2025-01", "2025-05", "2025-12"], "quarter").tolist() == ["2025-Q1", "2025-Q2", "2025-Q4"]
        assert period_labels(["2025-01"], "year").tolist() == ["2025"]
