"""Carbon efficiency (碳效) and carbon intensity.

Carbon efficiency (seed §3.6) = tCO2e emitted ÷ value added, in tCO2e/万元::

    L = E / VA

Carbon intensity of a product = tCO2e ÷ output (e.g. tCO2e per t of clinker).
Both are computed only where the denominator is known and positive; elsewhere the result is NaN,
never a guess.
"""
from __future__ import annotations

import numpy as np

from workbench.core.units import conversion_factor

__all__ = ["carbon_efficiency", "carbon_intensity"]


def carbon_efficiency(tco2e, value_added, value_added_unit: str = "万元"):
    """tCO2e per 万元 of value added (``value_added`` in ``value_added_unit``, any currency unit)."""
    va = np.asarray(value_added, dtype="float64") * conversion_factor(value_added_unit, "万元")
    e = np.asarray(tco2e, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(va > 0, e / va, np.nan)


def carbon_intensity(tco2e, output):
    """tCO2e per unit of product output (same unit as ``output``)."""
    out = np.asarray(output, dtype="float64")
    e = np.asarray(tco2e, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(out > 0, e / out, np.nan)
