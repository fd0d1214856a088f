"""Energy-consumption rating of a product (产品能耗评级, seed §9.4 b): GB 16780-2021 for cement.

GB 16780-2021 水泥单位产品能源消耗限额 (issued 2021-10-11, in force 2022-11-01) grades a plant's
unit energy consumption 1 (best) to 3 (grade 3 = the limit value; above it the plant does not
meet the standard).  Limits as the workbench's reference transcribes them (``applications.md`` §2,
[B1 (tr.)] — check the official text before regulatory use):

=============================================  =====  =====  =====  =======
indicator                                       1级    2级    3级    unit
=============================================  =====  =====  =====  =======
熟料单位产品综合能耗 clinker comprehensive energy   100    107    117    kgce/t
熟料综合电耗 clinker comprehensive electricity        48     57     61    kWh/t
熟料综合煤耗 clinker comprehensive fuel               94    100    109    kgce/t
水泥单位产品综合能耗 cement comprehensive energy       80     87     94    kgce/t (at 75 % clinker)
水泥制备工段电耗 cement preparation electricity       26     29     34    kWh/t
=============================================  =====  =====  =====  =======

The cement limits are corrected for the clinker share ``P`` (%):
``limit_g = base_g + (P − 75) × k_g`` with ``k = 1.10, 1.15, 1.20`` for grades 1, 2, 3.  The
altitude correction of the grade-3 limits above 1,500 m (× (1.179 − 0.211·p/101325)) is not
applied (the enterprise's altitude is not recorded).

Other sectors are **not rated** here: GB 21256-2025 (crude steel, in force 2026-07-01) rates
process steps (sintering … electric-arc furnace), not rolled products, and has corrections the
ledger cannot supply; no 印染 (dyeing) limit standard is among the compulsory GB 能耗限额
(reference §2: UNVERIFIED) — a product of those sectors gets a rating marked ``not rated``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from workbench.products.errors import ProductError

__all__ = [
    "CEMENT_CLINKER_K",
    "GB16780",
    "STANDARD",
    "EnergyRating",
    "cement_energy_limits",
    "energy_grade",
    "not_rated",
    "rate",
    "unit_energy",
]

STANDARD = "GB 16780-2021"
_TR = "limits as transcribed in the workbench reference (applications.md §2 [B1 (tr.)]); check the official text"

#: indicator → (grade 1, grade 2, grade 3 limits, unit, name_zh, name_en)
GB16780 = {
    "clinker_energy": (100.0, 107.0, 117.0, "kgce/t", "熟料单位产品综合能耗", "clinker comprehensive energy consumption"),
    "clinker_electricity": (48.0, 57.0, 61.0, "kWh/t", "熟料综合电耗", "clinker comprehensive electricity consumption"),
    "clinker_fuel": (94.0, 100.0, 109.0, "kgce/t", "熟料综合煤耗", "clinker comprehensive fuel (coal) consumption"),
    "cement_energy": (80.0, 87.0, 94.0, "kgce/t", "水泥单位产品综合能耗", "cement comprehensive energy consumption"),
    "cement_electricity": (26.0, 29.0, 34.0, "kWh/t", "水泥制备工段电耗", "cement preparation electricity consumption"),
}
#: clinker-share correction coefficients of the cement comprehensive energy limits, grades 1/2/3
CEMENT_CLINKER_K = (1.10, 1.15, 1.20)


@dataclass(frozen=True)
class EnergyRating:
    """One indicator's value, its limits and the grade it reaches (``None``: above the grade-3 limit,
    or not rated)."""

    indicator: str
    name_zh: str
    name_en: str
    value: float
    unit: str
    limits: tuple
    grade: int | None
    standard: str
    note: str = ""
    rated: bool = True

    @property
    def label_zh(self) -> str:
        if not self.rated:
            return "未评级"
        return f"{self.grade}级" if self.grade else "超限值"

    @property
    def label_en(self) -> str:
        if not self.rated:
            return "not rated"
        return f"grade {self.grade}" if self.grade else "above the limit"

    def as_dict(self) -> dict:
        return {"indicator": self.indicator, "name_zh": self.name_zh, "name_en": self.name_en,
                "value": self.value, "unit": self.unit, "limits": list(self.limits), "grade": self.grade,
                "rated": self.rated, "label_zh": self.label_zh, "label_en": self.label_en,
                "standard": self.standard, "note": self.note}


def energy_grade(value: float, limits) -> int | None:
    r"""The grade a unit energy consumption reaches: the best ``g`` with ``value ≤ limit_g``.

    Parameters
    ----------
    value : float
        The indicator (kgce/t or kWh/t), finite.
    limits : sequence of 3 floats
        Grade 1, 2, 3 limits, ascending (grade 3 = the limit value).

    Returns
    -------
    int or None
        1, 2 or 3; ``None`` above the grade-3 limit (does not meet the standard).

    References
    ----------
    GB 16780-2021 (reference ``applications.md`` §2: "grade 1 best; grade 3 = limit value").
    """
    if not math.isfinite(value):
        raise ProductError(f"energy indicator {value!r} is not a finite number")
    l1, l2, l3 = (float(x) for x in limits)
    if not l1 <= l2 <= l3:
        raise ProductError(f"limits {limits!r} must ascend from grade 1 to grade 3")
    for g, lim in ((1, l1), (2, l2), (3, l3)):
        if value <= lim:
            return g
    return None


def cement_energy_limits(clinker_percent: float) -> tuple[float, float, float]:
    r"""GB 16780-2021 cement comprehensive energy limits corrected for the clinker share.

    .. math::  L_g = L_g^{75} + (P - 75) \times k_g,\qquad L^{75} = (80, 87, 94),\ k = (1.10, 1.15, 1.20)

    Parameters
    ----------
    clinker_percent : float
        ``P`` — clinker in the cement, % by mass (0–100).

    Returns
    -------
    tuple of 3 floats
        Grade 1, 2, 3 limits in kgce/t.
    """
    if not (math.isfinite(clinker_percent) and 0 <= clinker_percent <= 100):
        raise ProductError(f"clinker share {clinker_percent!r} % must be between 0 and 100")
    base = GB16780["cement_energy"][:3]
    return tuple(b + (clinker_percent - 75.0) * k for b, k in zip(base, CEMENT_CLINKER_K))


def unit_energy(energy, output, *, scale: float = 1000.0) -> float:
    r"""Unit energy consumption: energy ÷ output.

    .. math::  e = 1000 \times E / Q

    Parameters
    ----------
    energy : float
        ``E`` — energy of the product in the period, tce (or MWh for an electricity indicator).
    output : float
        ``Q`` — output, t (> 0).
    scale : float
        1000 turns tce/t into kgce/t and MWh/t into kWh/t.

    Returns
    -------
    float
        kgce/t (or kWh/t).
    """
    if not (math.isfinite(output) and output > 0):
        raise ProductError(f"output {output!r} t: a unit consumption needs a positive output")
    return scale * float(energy) / float(output)


def rate(indicator: str, value: float, *, clinker_percent: float | None = None, note: str = "") -> EnergyRating:
    """Rate one GB 16780-2021 indicator (:data:`GB16780`); ``cement_energy`` needs ``clinker_percent``."""
    if indicator not in GB16780:
        raise ProductError(f"indicator '{indicator}': one of {', '.join(GB16780)}")
    *lims, unit, zh, en = GB16780[indicator]
    if indicator == "cement_energy":
        if clinker_percent is None:
            raise ProductError("cement comprehensive energy needs the clinker share (%)")
        lims = cement_energy_limits(clinker_percent)
        note = (note + " " if note else "") + f"limits corrected for {clinker_percent:.2f} % clinker"
    lims = tuple(round(x, 6) for x in lims)
    return EnergyRating(indicator, zh, en, float(value), unit, lims, energy_grade(value, lims), STANDARD,
                        (note + "; " if note else "") + _TR)


def not_rated(sector: str | None, reason: str = "") -> EnergyRating:
    """A rating that says why there is none (UNVERIFIED limits, or no standard for the sector)."""
    why = reason or (f"sector '{sector or '-'}': no energy-consumption limit standard the workbench can apply "
                     "(GB 16780-2021 covers cement; steel GB 21256-2025 rates process steps; dyeing: UNVERIFIED)")
    return EnergyRating("not_rated", "未评级", "not rated", math.nan, "", (), None, "UNVERIFIED", why, rated=False)
