"""Fuel combustion emissions (燃料燃烧排放), GB/T 32150-2015 and GB/T 32150—2025 §7.5.2.

Emission-factor method for each fuel *i*::

    E_combustion = Σ_i AD_i × EF_i                         [tCO2]
    AD_i         = FC_i × NCV_i                            [GJ]   fuel consumed × net calorific value
    EF_i         = CC_i × OF_i × 44/12                     [tCO2/GJ]

FC in t (solid/liquid fuels) or 10⁴ Nm³ (gases); NCV in GJ/t or GJ/10⁴Nm³; CC (carbon content per
unit heat) in tC/TJ as the tables give it (= 10⁻³ tC/GJ); OF the carbon oxidation rate (fraction).
With a site-measured emission factor per unit of fuel (tCO2/t, tCO2/10⁴Nm³) the emission-factor
method of GB/T 32150—2025 §7.2.2 applies to the fuel quantity itself: E = FC × EF.
All arguments are pint quantities (scalars or arrays); units are converted by pint.  The engine
(:func:`workbench.accounting.account`) calls these functions on whole columns.
"""
from __future__ import annotations

from workbench.core.units import CO2_PER_C, Q_

__all__ = ["activity_energy", "emission_factor_from_carbon_content", "combustion_emissions", "fuel_combustion"]


def activity_energy(fuel_consumed, ncv):
    """AD = FC × NCV: the heat released by the fuel, in GJ.

    ``fuel_consumed`` and the denominator of ``ncv`` must describe the same quantity
    (mass with GJ/t, normal volume with GJ/10⁴Nm³); pint raises otherwise.
    """
    return (fuel_consumed * ncv).to("GJ")


def emission_factor_from_carbon_content(carbon_content, oxidation_rate):
    """EF = CC × OF × 44/12, in tCO2/GJ.

    ``carbon_content`` in any carbon-mass-per-energy unit (tC/TJ in the tables); ``oxidation_rate``
    dimensionless (a fraction, or a pint percent).
    """
    of = Q_(oxidation_rate).to("dimensionless") if not hasattr(oxidation_rate, "units") else oxidation_rate.to("dimensionless")
    return (carbon_content * of * CO2_PER_C).to("tCO2/GJ")


def combustion_emissions(activity, emission_factor):
    """E = AD × EF, in tCO2.

    ``activity`` the heat released (GJ, from :func:`activity_energy`) with ``emission_factor`` per
    unit of heat (tCO2/GJ); or the fuel quantity (t, Nm³ …) with a factor per unit of fuel
    (tCO2/t, tCO2/10⁴Nm³).  pint raises when the two do not multiply to a mass of CO2.
    """
    return (activity * emission_factor).to("tCO2")


def fuel_combustion(fuel_consumed, ncv, carbon_content, oxidation_rate):
    """CO2 from burning ``fuel_consumed`` (tCO2): FC × NCV × CC × OF × 44/12."""
    return combustion_emissions(activity_energy(fuel_consumed, ncv),
                                emission_factor_from_carbon_content(carbon_content, oxidation_rate))
