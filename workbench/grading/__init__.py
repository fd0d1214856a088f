"""Enterprise carbon-efficiency grades (issue 14, point 4; seed §9.4 a): the Zhejiang 碳效码 and
other schemes.

- :mod:`.formulas` — the pure vectorised formulas (L, level, aggregate-ratio benchmark, K, grade)
- :mod:`.scheme` — the :class:`GradingScheme` interface and registry (``workbench.grading_schemes``
  entry points); :mod:`.zhejiang` the default 碳效码, :mod:`.quintile` an illustrative second scheme
- :mod:`.region` — a region directory read and checked, its energy accounted by the engine
- :mod:`.engine` — :func:`grade_region` (every enterprise, per month / quarter / year, only the
  ``visible`` ones returned), :func:`grade_distribution` (county × industry), :func:`movements`
  between periods, :func:`l_trend`, and :func:`grade_evidence` (one grade with everything it rests
  on, for the certification review)
"""
from workbench.grading.engine import (
    GRADE_COLUMNS,
    GradeEvidence,
    RegionGrades,
    grade_distribution,
    grade_emissions,
    grade_evidence,
    grade_region,
    l_trend,
    movements,
)
from workbench.grading.errors import GradingDataError, GradingError, UnknownSchemeError
from workbench.grading.periods import Period, parse_period
from workbench.grading.region import load_region, read_region, region_emissions
from workbench.grading.scheme import (
    STATUS_NAMES,
    GradingScheme,
    Provenance,
    available_schemes,
    get_scheme,
    register_scheme,
    unregister_scheme,
)

__all__ = [
    "GRADE_COLUMNS",
    "STATUS_NAMES",
    "GradeEvidence",
    "GradingDataError",
    "GradingError",
    "GradingScheme",
    "Period",
    "Provenance",
    "RegionGrades",
    "UnknownSchemeError",
    "available_schemes",
    "get_scheme",
    "grade_distribution",
    "grade_emissions",
    "grade_evidence",
    "grade_region",
    "l_trend",
    "load_region",
    "movements",
    "parse_period",
    "read_region",
    "region_emissions",
    "register_scheme",
    "unregister_scheme",
]
