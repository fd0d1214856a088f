"""The Zhejiang 碳效码 (enterprise carbon-efficiency code) grading — the default scheme.

Level by the carbon-efficiency value L and grade 1–5 by K = L / L_industry, L_industry being the
aggregate ratio of the enterprise's industry (GB/T 4754 division by default) in the benchmark
region (the province by default), same period (:mod:`workbench.grading.formulas`).

Provenance, as recorded in ``/work/shared/reference/applications.md`` §5 and
``accounting-facts.md`` "Carbon-efficiency grading": the method is 规上工业企业碳效等级评价方法 [E1];
State Grid Huzhou launched the 工业碳效码 in 2021 [E3]; the provincial standard DB33/T 1347—2023
工业企业碳效综合评估与分级赋码规范 (in force 2024-01-15) covers 38 industry divisions [E2][E4], but
**its own thresholds and period are UNVERIFIED**, and the K boundary 1.2 was read from an OCR'd
source.  The thresholds here are therefore parameters (:class:`ZhejiangScheme` takes others).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.grading.formulas import (
    GRADE_BOUNDS,
    LEVEL_BOUNDS,
    aggregate_ratio,
    carbon_level,
    grade_from_k,
    k_value,
    unit_value_added_emissions,
)
from workbench.grading.scheme import GradingScheme, Provenance

__all__ = ["SCHEME", "ZhejiangScheme"]


class ZhejiangScheme(GradingScheme):
    """碳效码: level by L (≤ 0.6 低碳, (0.6, 2.0] 中碳, > 2.0 高碳), grade by K (1 ≤ 0.6, 2 ≤ 0.8,
    3 ≤ 1.2, 4 ≤ 2.0, 5 > 2.0; intervals closed on the right)."""

    name = "zhejiang"
    aliases = ("碳效码", "Zhejiang 碳效码", "zj-carbon-efficiency-code", "DB33/T 1347")
    title_zh = "浙江碳效码（碳效等级评价）"
    title_en = "Zhejiang carbon-efficiency code (碳效码)"
    illustrative = False
    grades = ((1, "一级（碳效高）", "grade 1 (high efficiency)"),
              (2, "二级", "grade 2"),
              (3, "三级（接近行业平均）", "grade 3 (near the industry average)"),
              (4, "四级", "grade 4"),
              (5, "五级（碳效低）", "grade 5 (low efficiency)"))
    k_meaning = "K = L / L_industry (industry aggregate ratio, same period and benchmark region)"
    provenance = (
        Provenance("L = CO2 from total energy use ÷ value added (income method), same period; own zero-carbon "
                   "power and sinks deducted", "规上工业企业碳效等级评价方法", "[E1]", True,
                   "as recorded in applications.md §5"),
        Provenance("industry benchmark = industry CO2 ÷ industry value added, same period (aggregate ratio)",
                   "规上工业企业碳效等级评价方法", "[E1] 企业（行业）", True, "as recorded in applications.md §5"),
        Provenance("levels: L ≤ 0.6 低碳 · (0.6, 2.0] 中碳 · > 2.0 高碳 (tCO2/万元)", "规上工业企业碳效等级评价方法",
                   "[E1]", True, "the provincial standard adjusts them yearly"),
        Provenance("grades by K: 1 ≤ 0.6 · 2 (0.6, 0.8] · 3 (0.8, 1.2] · 4 (1.2, 2.0] · 5 > 2.0",
                   "规上工业企业碳效等级评价方法", "[E1]", False,
                   "the 1.2 boundary is read from an OCR'd source"),
        Provenance("thresholds and period of the provincial standard", "DB33/T 1347—2023 工业企业碳效综合评估与分级赋码规范",
                   "[E2][E4]", False, "UNVERIFIED: not transcribed from the official text; in force 2024-01-15, "
                   "规上 firms in 38 divisions"),
        Provenance("industry = GB/T 4754-2017 division (大类) of the enterprise's class", "GB/T 4754-2017", "",
                   False, "the level of industry detail DB33/T 1347 uses is UNVERIFIED (38 大类 per [E2])"),
    )

    def __init__(self, level_bounds=LEVEL_BOUNDS, grade_bounds=GRADE_BOUNDS, *, industry_level: str = "division",
                 benchmark_scope: str = "province"):
        self.level_bounds = tuple(float(b) for b in level_bounds)
        self.grade_bounds = tuple(float(b) for b in grade_bounds)
        self.industry_level = industry_level
        self.benchmark_scope = benchmark_scope

    def grade(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        ok = out["status"].to_numpy(dtype=object) == "ok"
        va = np.where(ok, out["value_added_10k_cny"].to_numpy(dtype="float64"), np.nan)
        co2 = out["co2_t"].to_numpy(dtype="float64")
        avoided = out["avoided_t"].to_numpy(dtype="float64")
        lv = unit_value_added_emissions(co2, va, avoided)
        bench, n, _ = aggregate_ratio(co2, va, {"period": out["period"].to_numpy(dtype=object),
                                                "industry": out["industry"].to_numpy(dtype=object),
                                                "scope": out["scope"].to_numpy(dtype=object)}, avoided)
        k = k_value(lv, bench)
        no_bench = ok & ~np.isfinite(k)
        out["l"] = lv
        out["level"] = carbon_level(lv, self.level_bounds)
        out["benchmark_l"] = np.where(ok, bench, np.nan)
        out["benchmark_n"] = np.where(ok, n, 0)
        out["k"] = k
        out["status"] = np.where(no_bench, "no_benchmark", out["status"].to_numpy(dtype=object))
        out["grade"] = grade_from_k(k, self.grade_bounds)
        return out


SCHEME = ZhejiangScheme()
