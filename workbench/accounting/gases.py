"""Non-CO2 greenhouse gases through their global warming potential.

::

    E_CO2e = m_gas × GWP_gas            [t gas × tCO2e/t]

GB/T 32150 reports CO2, CH4, N2O, HFCs, PFCs, SF6 and NF3 as CO2 equivalent; the GWP set
(SAR, AR4, AR5, AR6; 100-year) is a choice the report states.
"""
from __future__ import annotations

__all__ = ["co2_equivalent"]


def co2_equivalent(mass, gwp):
    """Mass of a gas × its GWP → tCO2e."""
    return (mass * gwp).to("tCO2e")
