"""Process emissions (过程排放), GB/T 32150-2015 and GB/T 32150—2025 §7.5.3.

Carbonate decomposition (GB/T 32151 sector parts)::

    E_process = Σ_k M_k × P_k × EF_k          [tCO2]

M_k mass of carbonate-bearing material consumed (t), P_k its carbonate purity (fraction),
EF_k the stoichiometric factor (tCO2/t carbonate, e.g. CaCO3 44.0095/100.0869 = 0.4397).

Cement clinker, raw-meal method of the NDRC cement guideline (mirrored by GB/T 32151.8)::

    E = Q_clinker × [(CaO − CaO_nc) × 44/56 + (MgO − MgO_nc) × 44/40]

with oxide contents as mass fractions of clinker and the non-carbonate part that enters as oxide.
"""
from __future__ import annotations

from ..units import Q_

__all__ = ["carbonate_decomposition", "clinker_calcination", "CO2_PER_CAO", "CO2_PER_MGO"]

#: Stoichiometric mass ratios as the cement guideline writes them.
CO2_PER_CAO = Q_(44 / 56, "tCO2/t")
CO2_PER_MGO = Q_(44 / 40, "tCO2/t")


def carbonate_decomposition(mass, emission_factor, purity=1.0):
    """CO2 released by calcining carbonates: M × P × EF (tCO2)."""
    p = purity.to("dimensionless") if hasattr(purity, "units") else Q_(purity, "dimensionless")
    return (mass * p * emission_factor).to("tCO2")


def clinker_calcination(clinker, cao, mgo, cao_noncarbonate=0.0, mgo_noncarbonate=0.0):
    """CO2 from clinker production by the oxide method (tCO2).

    ``clinker`` a mass; ``cao``/``mgo`` and the non-carbonate parts are mass fractions of clinker.
    """
    frac = lambda x: x.to("dimensionless") if hasattr(x, "units") else Q_(x, "dimensionless")  # noqa: E731
    per_t = (frac(cao) - frac(cao_noncarbonate)) * CO2_PER_CAO + (frac(mgo) - frac(mgo_noncarbonate)) * CO2_PER_MGO
    return (clinker * per_t).to("tCO2")
