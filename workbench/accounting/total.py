"""Enterprise total, GB/T 32150-2015 and GB/T 32150—2025 §7.5.8::

    E = E_combustion + E_process + E_purchased_electricity + E_purchased_heat
        − E_exported_electricity − E_exported_heat

(the 2025 edition adds E_waste and E_fugitive to the direct part).

The sources, their signs and names and the edition by reporting year are the GB/T 32150 regime's
(:mod:`workbench.regimes.gbt32150`); the engine takes them from the regime it is given.
"""
from __future__ import annotations

__all__ = ["total_emissions"]


def total_emissions(combustion=0.0, process=0.0, purchased_electricity=0.0, purchased_heat=0.0,
                    exported_electricity=0.0, exported_heat=0.0):
    """E_total with exported electricity and heat subtracted (all arguments non-negative, tCO2e;
    floats, numpy arrays or pint quantities)."""
    return (combustion + process + purchased_electricity + purchased_heat
            - exported_electricity - exported_heat)
