"""Purchased and exported electricity and heat, GB/T 32150-2015 and GB/T 32150—2025 §7.5.6–7.5.7.

::

    E_purchased_electricity = AD_purchased_electricity × EF_grid     [MWh × tCO2/MWh]
    E_exported_electricity  = AD_exported_electricity  × EF_grid
    E_purchased_heat        = AD_purchased_heat × EF_heat            [GJ × tCO2/GJ]
    E_exported_heat         = AD_exported_heat  × EF_heat

Exported quantities are returned as positive masses; :func:`..total.total_emissions` subtracts them.
"""
from __future__ import annotations

__all__ = ["electricity_emissions", "heat_emissions", "factor_emissions"]


def factor_emissions(activity, emission_factor, *, to="tCO2"):
    """Activity × emission factor, converted by pint (the emission-factor method)."""
    return (activity * emission_factor).to(to)


def electricity_emissions(electricity, grid_factor):
    """Electricity (any energy unit: kWh, MWh, 万kWh) × grid factor (tCO2/MWh) → tCO2."""
    return factor_emissions(electricity, grid_factor)


def heat_emissions(heat, heat_factor):
    """Heat (GJ, or any energy unit) × heat factor (tCO2/GJ) → tCO2."""
    return factor_emissions(heat, heat_factor)
