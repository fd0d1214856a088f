"""Recompute one activity record's emission from its data and its factors, without the lake and
without the engine's factor look-up — the GB/T 32150 formulas of :mod:`workbench.accounting`, the
functions the engine itself calls (:func:`workbench.accounting.account`)::

    fuel        AD = FC × NCV                 combustion.activity_energy           [GJ]
                EF = CC × OF × 44/12          combustion.emission_factor_from_carbon_content [tCO2/GJ]
                E  = AD × EF                  combustion.combustion_emissions      [tCO2]
                E  = FC × EF  (site EF per unit of fuel; per GJ: AD × EF)
    carbonate   E  = M × P × EF               process.carbonate_decomposition      [tCO2]
    electricity E  = AD × EF_grid             indirect.electricity_emissions       [MWh × tCO2/MWh]
    heat        E  = AD × EF_heat             indirect.heat_emissions              [GJ × tCO2/GJ]
    gas         E  = m × GWP                  gases.co2_equivalent                 [t × tCO2e/t]
    total       tCO2e = E_CO2e × sign         (the regime's sign: GB/T 32150 subtracts exported
                                               electricity and heat, §7.5.8)

Reference: GB/T 32150-2015 and GB/T 32150—2025 §7.5 (formulas), the factor tables the package's
``data/factors.csv`` cites.  Units go through pint (:mod:`workbench.core.units`).
"""
from __future__ import annotations

import math

from workbench.accounting import combustion, gases, indirect, process
from workbench.core.units import Q_, converts, parse_unit

__all__ = ["METHODS", "emission_of"]

#: the method label the engine writes on a ledger row, by case
METHODS = {"fuel_cc": "FC×NCV×CC×OF×44/12", "fuel_ef_energy": "FC×NCV×EF", "fuel_ef": "FC×EF",
           "carbonate": "M×P×EF", "electricity": "AD×EF", "heat": "AD×EF", "gas": "m×GWP"}


def _q(pair):
    value, unit = pair
    return Q_(float(value), parse_unit(unit or "dimensionless"))


def emission_of(category: str, quantity: float, unit: str, *, ncv=None, carbon_content=None, oxidation_rate=None,
                emission_factor=None, gwp=None, purity: float | None = None) -> dict:
    """The emission of one activity record.

    Parameters
    ----------
    category : str
        The item's category in the factor library: ``fuel``, ``carbonate``, ``electricity``,
        ``heat`` or ``gas``.
    quantity, unit : float, str
        The activity datum (FC in t or 10⁴ Nm³ …, or heat in GJ; M in t; AD in kWh/MWh or GJ; m in t).
    ncv, carbon_content, oxidation_rate, emission_factor, gwp : (value, unit), optional
        The factors, each a (value, unit) pair: NCV (GJ/t, GJ/10⁴Nm³), CC (tC/TJ), OF (percent or
        dimensionless), EF (tCO2/MWh, tCO2/GJ, tCO2/t …), GWP (tCO2e/t).  A fuel takes NCV (unless
        its quantity is already energy) and either CC with OF or a site EF.
    purity : float, optional
        Carbonate purity P (fraction; default 1).

    Returns
    -------
    dict with ``activity_gj`` (GJ, fuels; else None), ``emission_factor`` (tCO2/GJ for the CC route,
    else the EF given), ``emission_t`` (t of the gas: tCO2, or t of a non-CO2 gas), ``co2e``
    (tCO2e, unsigned) and ``method`` (the engine's label, :data:`METHODS`).
    """
    q = Q_(float(quantity), parse_unit(unit))
    out = {"activity_gj": None, "emission_factor": None}
    if category == "fuel":
        if converts(unit, "GJ"):
            energy = q.to("GJ")
        else:
            if ncv is None:
                raise ValueError("a fuel in a unit of mass or volume needs its NCV")
            energy = combustion.activity_energy(q, _q(ncv))
        out["activity_gj"] = float(energy.to("GJ").magnitude)
        if emission_factor is not None:
            ef = _q(emission_factor)
            if converts(emission_factor[1], "tCO2/GJ"):
                e, method = combustion.combustion_emissions(energy, ef), METHODS["fuel_ef_energy"]
            else:
                e, method = combustion.combustion_emissions(q, ef), METHODS["fuel_ef"]
            out["emission_factor"] = float(emission_factor[0])
        else:
            if carbon_content is None or oxidation_rate is None:
                raise ValueError("a fuel needs its carbon content and oxidation rate, or a site emission factor")
            ef = combustion.emission_factor_from_carbon_content(_q(carbon_content), _q(oxidation_rate))
            out["emission_factor"] = float(ef.to("tCO2/GJ").magnitude)
            e, method = combustion.combustion_emissions(energy, ef), METHODS["fuel_cc"]
        out.update(emission_t=float(e.to("tCO2").magnitude), method=method)
        out["co2e"] = out["emission_t"]
    elif category in ("carbonate", "electricity", "heat"):
        if emission_factor is None:
            raise ValueError(f"a {category} record needs its emission factor")
        ef = _q(emission_factor)
        if category == "carbonate":
            p = 1.0 if purity is None or math.isnan(float(purity)) else float(purity)
            e = process.carbonate_decomposition(q, ef, Q_(p, "dimensionless"))
        elif category == "electricity":
            e = indirect.electricity_emissions(q, ef)
        else:
            e = indirect.heat_emissions(q, ef)
        out.update(emission_factor=float(emission_factor[0]), emission_t=float(e.to("tCO2").magnitude),
                   method=METHODS[category])
        out["co2e"] = out["emission_t"]
    elif category == "gas":
        if gwp is None:
            raise ValueError("a non-CO2 gas needs its GWP")
        out.update(emission_t=float(q.to("t").magnitude),
                   co2e=float(gases.co2_equivalent(q, _q(gwp)).to("tCO2e").magnitude), method=METHODS["gas"])
    else:
        raise ValueError(f"no GB/T 32150 formula for an item of category {category!r}")
    return out
