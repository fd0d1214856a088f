"""Grading periods: a month ``YYYY-MM``, a quarter ``YYYY-Qn`` or a year ``YYYY``.

Grades are computed over a period from the monthly figures of its months (sums of CO2 and of
value added, then the ratio — never an average of monthly ratios).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.grading.errors import GradingError

__all__ = ["FREQUENCIES", "Period", "parse_period", "period_labels"]

#: frequency → (name zh, name en)
FREQUENCIES = {"month": ("月", "month"), "quarter": ("季度", "quarter"), "year": ("年", "year")}

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-?[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True)
class Period:
    """A grading period: ``label`` (``2025-03``, ``2025-Q1``, ``2025``), ``freq`` and its months."""

    label: str
    freq: str
    year: int
    index: int            # month 1–12, quarter 1–4, or 1 for a year

    @property
    def months(self) -> tuple:
        """The months (``YYYY-MM``) the period covers."""
        first, n = {"month": (self.index, 1), "quarter": (3 * self.index - 2, 3), "year": (1, 12)}[self.freq]
        return tuple(f"{self.year}-{m:02d}" for m in range(first, first + n))

    def previous(self) -> Period:
        """The period of the same length just before (2025-01 → 2024-12, 2025-Q1 → 2024-Q4)."""
        if self.freq == "year":
            return Period(str(self.year - 1), "year", self.year - 1, 1)
        last = 12 if self.freq == "month" else 4
        y, i = (self.year, self.index - 1) if self.index > 1 else (self.year - 1, last)
        return Period(f"{y}-{i:02d}" if self.freq == "month" else f"{y}-Q{i}", self.freq, y, i)

    def __str__(self) -> str:
        return self.label


def parse_period(text) -> Period:
    """``2025-03`` (month), ``2025-Q1`` / ``2025Q1`` (quarter) or ``2025`` (year) → :class:`Period`.

    Raises :class:`~workbench.grading.errors.GradingError` naming the value otherwise."""
    if isinstance(text, Period):
        return text
    s = str(text).strip()
    if m := _MONTH.match(s):
        y, mo = int(m.group(1)), int(m.group(2))
        if 1 <= mo <= 12:
            return Period(f"{y}-{mo:02d}", "month", y, mo)
    elif m := _QUARTER.match(s):
        y, q = int(m.group(1)), int(m.group(2))
        return Period(f"{y}-Q{q}", "quarter", y, q)
    elif m := _YEAR.match(s):
        return Period(s, "year", int(s), 1)
    raise GradingError(f"period '{s}' is not a month (YYYY-MM), a quarter (YYYY-Qn) or a year (YYYY)")


def period_labels(months, freq: str) -> np.ndarray:
    """The label of the ``freq`` period (``month``, ``quarter``, ``year``) each month (``YYYY-MM``)
    falls in, vectorised: ``2025-05`` → ``2025-05`` · ``2025-Q2`` · ``2025``."""
    if freq not in FREQUENCIES:
        raise GradingError(f"frequency '{freq}' is not one of {', '.join(FREQUENCIES)}")
    m = pd.Series(np.asarray(months, dtype=object)).astype(str)
    if freq == "month":
        return m.to_numpy(dtype=object)
    year = m.str.slice(0, 4)
    if freq == "year":
        return year.to_numpy(dtype=object)
    q = (pd.to_numeric(m.str.slice(5, 7)) - 1) // 3 + 1
    return (year + "-Q" + q.astype(str)).to_numpy(dtype=object)
