"""Process emissions (过程排放), GB/T 32150-2015 and GB/T 32150—2025 §7.5.3.

Carbonate decomposition (GB/T 32151 sector parts)::

    E_process = Σ_k M_k × P_k × EF_k          [tCO2]

M_k mass of carbonate-bearing material consumed (t, or any mass unit), P_k its carbonate purity
(fraction, or pint percent), EF_k the stoichiometric factor (tCO2/t carbonate, e.g. CaCO3
44.0095/100.0869 = 0.4397).  Arguments are pint quantities, scalars or arrays.

Sector-specific process formulas live with their sector (:mod:`workbench.regimes.sectors`), e.g.
cement clinker calcination in :mod:`workbench.regimes.sectors.cement`.
"""
from __future__ import annotations

from workbench.core.units import Q_

__all__ = ["carbonate_decomposition"]


def carbonate_decomposition(mass, emission_factor, purity=1.0):
    """CO2 released by calcining carbonates: M × P × EF (tCO2)."""
    p = purity.to("dimensionless") if hasattr(purity, "units") else Q_(purity, "dimensionless")
    return (mass * p * emission_factor).to("tCO2")

