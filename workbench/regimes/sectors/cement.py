"""Cement (水泥制造, GB/T 4754-2017 class C3011): GB/T 32151.8 and the NDRC cement guideline.

Products
--------
``clinker`` 熟料 (t) and ``cement`` 水泥 (t).  Cement *includes its clinker*: the intensity per t of
cement is the whole enterprise's emissions ÷ cement output, and the intensities per t of clinker
and per t of cement describe the same emissions twice — never add them.

Process emissions: clinker calcination by the raw-meal (oxide) method
---------------------------------------------------------------------
NDRC 中国水泥生产企业温室气体排放核算方法与报告指南 (mirrored by GB/T 32151.8)::

    E_clinker = Q_clinker × [(CaO − CaO_nc) × 44/56 + (MgO − MgO_nc) × 44/40]        [tCO2]

Q_clinker  clinker produced (t, any mass unit)
CaO, MgO   oxide contents of the clinker (mass fractions, or pint percent)
CaO_nc, MgO_nc  the parts of those oxides that entered as non-carbonate (fractions)
44/56, 44/40    stoichiometric tCO2 per t of CaO and of MgO

The general carbonate method (E = M × P × EF, :func:`workbench.accounting.process.carbonate_decomposition`)
applies to the same plant when the limestone consumed is metered instead; a plant reports one of
the two for its raw meal, not both.
"""
from __future__ import annotations

from workbench.core.regime import Product, Sector
from workbench.core.units import Q_

__all__ = ["SECTOR", "PRODUCTS", "clinker_calcination", "CO2_PER_CAO", "CO2_PER_MGO"]

#: Stoichiometric mass ratios as the cement guideline writes them.
CO2_PER_CAO = Q_(44 / 56, "tCO2/t")
CO2_PER_MGO = Q_(44 / 40, "tCO2/t")


def _fraction(x):
    return x.to("dimensionless") if hasattr(x, "units") else Q_(x, "dimensionless")


def clinker_calcination(clinker, cao, mgo, cao_noncarbonate=0.0, mgo_noncarbonate=0.0):
    """CO2 from clinker production by the oxide method (tCO2)::

        E = Q_clinker × [(CaO − CaO_nc) × 44/56 + (MgO − MgO_nc) × 44/40]

    ``clinker`` a pint mass (t, kg …; scalar or array); ``cao``/``mgo`` and the non-carbonate parts
    mass fractions of clinker (floats, arrays or pint percent).  NDRC cement guideline, GB/T 32151.8.
    """
    per_t = ((_fraction(cao) - _fraction(cao_noncarbonate)) * CO2_PER_CAO
             + (_fraction(mgo) - _fraction(mgo_noncarbonate)) * CO2_PER_MGO)
    return (clinker * per_t).to("tCO2")


PRODUCTS = (
    Product("clinker", "t", "熟料", "clinker", "clinker_t",
            note="clinker produced by the kiln line (the denominator of the kiln's intensity)"),
    Product("cement", "t", "水泥", "cement", "cement_t",
            note="cement includes its clinker: per-t-cement and per-t-clinker intensities are not additive"),
)

SECTOR = Sector(
    key="cement",
    name_zh="水泥制造",
    name_en="Cement manufacturing",
    standard="GB/T 32151.8",
    industry_codes=("C3011",),
    products=PRODUCTS,
    process_formulas={"clinker_calcination": clinker_calcination},
    note="GB/T 32151.8 水泥生产企业; the raw-meal method of the NDRC cement guideline",
)
