"""An *illustrative* second grading scheme: quintiles of L within the industry.

Not a standard, not the 碳效码: it exists to show that a scheme plugs in through
:mod:`workbench.grading.scheme` (the ``workbench.grading_schemes`` entry points) without editing
the workbench.  Within each industry × benchmark region × period, the enterprises that can be
graded are ranked by L (lowest first, average ranks for ties); grade = the quintile of the rank
(:func:`workbench.grading.formulas.percentile_grade`), so about a fifth of an industry gets each
grade whatever its absolute efficiency.  ``k`` holds the percentile rank; ``level`` is left empty.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.grading.formulas import (
    aggregate_ratio,
    percentile_grade,
    unit_value_added_emissions,
)
from workbench.grading.scheme import GradingScheme, Provenance

__all__ = ["SCHEME", "QuintileScheme"]


class QuintileScheme(GradingScheme):
    """Quintile of L within the industry (illustrative)."""

    name = "quintile"
    aliases = ("industry-quintile", "五分位")
    title_zh = "行业内五分位排名（示例，非标准）"
    title_en = "Quintile within the industry (illustrative, not a standard)"
    illustrative = True
    grades = ((1, "前20%", "lowest-L fifth"), (2, "20–40%", "second fifth"), (3, "40–60%", "middle fifth"),
              (4, "60–80%", "fourth fifth"), (5, "后20%", "highest-L fifth"))
    k_meaning = "percentile rank of L within the industry (0–1], lowest L first"
    provenance = (Provenance("quintile ranking of L within the industry", "workbench (illustrative example)", "",
                             False, "not a standard: shows the grading-scheme seam only"),)

    def grade(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        ok = out["status"].to_numpy(dtype=object) == "ok"
        va = np.where(ok, out["value_added_10k_cny"].to_numpy(dtype="float64"), np.nan)
        co2 = out["co2_t"].to_numpy(dtype="float64")
        avoided = out["avoided_t"].to_numpy(dtype="float64")
        lv = unit_value_added_emissions(co2, va, avoided)
        keys = {"period": out["period"].to_numpy(dtype=object), "industry": out["industry"].to_numpy(dtype=object),
                "scope": out["scope"].to_numpy(dtype=object)}
        bench, n, _ = aggregate_ratio(co2, va, keys, avoided)
        p, grade = percentile_grade(lv, keys)
        out["l"] = lv
        out["level"] = ""
        out["benchmark_l"] = np.where(ok, bench, np.nan)
        out["benchmark_n"] = np.where(ok, n, 0)
        out["k"] = p
        out["grade"] = grade
        return out


SCHEME = QuintileScheme()
