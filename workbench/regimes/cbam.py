"""EU CBAM embedded emissions (Reg. (EU) 2023/956) as a regime: the formulas on plain tables.

What the EU Carbon Border Adjustment Mechanism asks of an installation outside the EU is the
*specific embedded emissions* (SEE, tCO2e per tonne) of each good it exports, direct and indirect
apart, computed per production process from the installation's own monitoring.  The formulas are
those of IR (EU) 2025/2547 Annex III B (the definitive period from 2026-01-01; the transitional
period 2023-10 … 2025-12 ran under IR (EU) 2023/1773), as transcribed in the workbench's
reference (``applications.md`` §1, sources A1, A7)::

    AttrEm_dir = max(0, DirEm* + Em_H,imp − Em_H,exp + WG_corr,imp − WG_corr,exp − Em_el,prod)   (Eq. 55)
    Em_indir   = E_el (MWh) × EF_el (tCO2/MWh)
    SEE_g      = (AttrEm_g + EE_InpMat) / AL_g                                                 (Eq. 59)
    EE_InpMat  = Σ_i M_i × SEE_i                                                               (Eq. 60)
    m_i = M_i / AL_g ;  ae_g = AttrEm_g / AL_g ;  SEE_g = ae_g + Σ_i m_i × SEE_i               (Eq. 61–63)

applied separately to direct and to indirect emissions.  ``AL_g`` is the activity level: the
saleable goods leaving the process (scrap, waste and off-spec product excluded, they carry no
embedded emissions); ``M_i`` the mass of precursor *i* consumed (including precursor lost as scrap
or cut-offs).  Complex goods recurse through their precursors; the same precursor from different
installations is kept apart; precursors from the EU or exempt count 0.

China default values (IR (EU) 2025/2621 Annex I as corrected, read in a transcription: flagged
``(tr.)``), the mark-ups (+10 % 2026, +20 % 2027, +30 % from 2028; fertilisers +1 %) and the
China grid default EF_el 0.605 tCO2e/MWh (Annex II) are here only as a **fallback**, each use
flagged: an installation's own data come first.  Which goods carry indirect emissions (Annex II:
only direct for iron and steel, aluminium, hydrogen, electricity) is :data:`INDIRECT_CHARGED`.

Everything here takes plain numbers or ``pandas.DataFrame`` s (no lake, no inventory); the
product layer (:mod:`workbench.products.cbam`) reads the ledger and calls these functions.

The regime object :data:`REGIME` tells the accounting engine how CBAM counts the GB/T 32150
sources: combustion, process and imported heat enter the attributed direct emissions (+1),
exported heat is subtracted (−1), and purchased/exported electricity are *indirect* — reported
apart, not in the direct total (0).  ``workbench.accounting.account(…, regime=REGIME)`` therefore
gives Eq. 55's ``DirEm* + Em_H,imp − Em_H,exp`` as its total.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.core.regime import EmissionSource, Regime, RegimeError, register

__all__ = [
    "CBAM",
    "CHINA_DEFAULTS",
    "CHINA_GRID_EF",
    "CN_GOODS",
    "INDIRECT_CHARGED",
    "REGIME",
    "CBAMError",
    "DefaultValue",
    "attributed_direct_emissions",
    "covered_gases",
    "default_value",
    "embedded_emissions",
    "goods_category",
    "indirect_emissions",
    "input_material_emissions",
    "markup",
    "precursor_rows",
    "specific_embedded_emissions",
]


class CBAMError(RegimeError):
    """CBAM input that cannot be computed: a cycle of precursors, a good without activity level,
    an unknown CN code where a default was asked for."""


class CBAM(Regime):
    """EU CBAM: how the GB/T 32150 sources enter the attributed direct emissions (Eq. 55)."""

    name = "EU CBAM"
    aliases = ("CBAM", "Reg. (EU) 2023/956", "cbam")
    title_zh = "欧盟碳边境调节机制 — 进口货物内含排放"
    title_en = "EU Carbon Border Adjustment Mechanism — embedded emissions of goods"
    sources = (
        EmissionSource("combustion", "燃料燃烧排放（直接）", "Fuel combustion (direct)", +1, {"fuel"},
                       clause="IR 2025/2547 Annex III: DirEm"),
        EmissionSource("process", "过程排放（直接）", "Process (direct)", +1, {"carbonate", "gas"},
                       clause="IR 2025/2547 Annex III: DirEm"),
        EmissionSource("purchased_heat", "购入热力（计入直接）", "Imported measurable heat (in direct)", +1, {"heat"},
                       clause="IR 2025/2547 Eq. 55: + Em_H,imp"),
        EmissionSource("exported_heat", "输出热力（从直接扣除）", "Exported measurable heat (subtracted)", -1, {"heat"},
                       clause="IR 2025/2547 Eq. 55: − Em_H,exp"),
        EmissionSource("purchased_electricity", "购入电力（间接，单列）", "Electricity consumed (indirect, apart)", 0,
                       {"electricity"}, clause="IR 2025/2547 Annex III: Em_indir = E_el × EF_el"),
        EmissionSource("exported_electricity", "输出电力（单列）", "Electricity exported (reported apart)", 0,
                       {"electricity"}, clause="IR 2025/2547 Eq. 55: Em_el,prod subtracted where produced on site"),
    )
    total_label_zh = "归属直接排放（式55；间接排放单列）"
    total_label_en = "Attributed direct emissions (Eq. 55; indirect reported apart)"
    default_gwp = "AR5"
    report_notes = ("Indirect emissions (electricity) are computed apart: E_el × EF_el.",)

    def edition(self, year: int | None) -> str:
        """The CBAM implementing act for a year: IR (EU) 2023/1773 (transitional, to 2025), else
        IR (EU) 2025/2547 (definitive, from 2026-01-01)."""
        return ("IR (EU) 2023/1773 (transitional)" if year is not None and year <= 2025
                else "IR (EU) 2025/2547 (definitive)")


REGIME = register(CBAM())

# ------------------------------------------------------------------------------------ goods
#: CN code prefix → (sector, aggregated goods category), Reg. 2023/956 Annex I; IR 2025/2547 Annex I §3
CN_GOODS = {
    "25070080": ("cement", "calcined clay"),
    "25231000": ("cement", "clinker"),
    "25232100": ("cement", "cement"),
    "25232900": ("cement", "cement"),
    "25233000": ("cement", "aluminous cement"),
    "25239000": ("cement", "cement"),
    "7201": ("iron_steel", "pig iron"),
    "7203": ("iron_steel", "DRI"),
    "7206": ("iron_steel", "crude steel"),
    "7207": ("iron_steel", "crude steel"),
    "7208": ("iron_steel", "iron or steel products"),
    "7213": ("iron_steel", "iron or steel products"),
    "7214": ("iron_steel", "iron or steel products"),
    "7601": ("aluminium", "unwrought aluminium"),
    "28041000": ("hydrogen", "hydrogen"),
    "28141000": ("fertilisers", "ammonia"),
    "27160000": ("electricity", "electricity"),
}

#: sector → are indirect emissions part of the embedded emissions charged (Reg. 2023/956 Annex II)
INDIRECT_CHARGED = {"cement": True, "fertilisers": True, "iron_steel": False, "aluminium": False,
                    "hydrogen": False, "electricity": False}

#: sector → greenhouse gases CBAM covers for it (Reg. 2023/956 Annex I: CO2; N2O for fertilisers'
#: nitric acid; PFCs for aluminium).  Other gases in a ledger (SF6 from switchgear …) are left out.
_GASES = {"cement": ("CO2",), "iron_steel": ("CO2",), "hydrogen": ("CO2",), "electricity": ("CO2",),
          "fertilisers": ("CO2", "N2O"), "aluminium": ("CO2", "CF4", "C2F6")}


def _digits(cn_code: str) -> str:
    return "".join(ch for ch in str(cn_code) if ch.isdigit())


def goods_category(cn_code: str) -> tuple[str, str]:
    """``(sector, aggregated goods category)`` of a CN code by its longest listed prefix.

    Raises :class:`CBAMError` for a code that is not a CBAM good here.
    """
    code = _digits(cn_code)
    for n in range(len(code), 3, -1):
        if code[:n] in CN_GOODS:
            return CN_GOODS[code[:n]]
    raise CBAMError(f"CN code {cn_code!r} is not a CBAM good the workbench knows "
                    f"(Reg. 2023/956 Annex I; listed: {', '.join(sorted(CN_GOODS))})")


def covered_gases(sector: str) -> tuple[str, ...]:
    """The gases CBAM counts for ``sector`` (Reg. 2023/956 Annex I)."""
    if sector not in _GASES:
        raise CBAMError(f"sector {sector!r}: one of {', '.join(_GASES)}")
    return _GASES[sector]


# ------------------------------------------------------------------------------------ formulas
def attributed_direct_emissions(direct, heat_imported=0.0, heat_exported=0.0, waste_gas_imported=0.0,
                                waste_gas_exported=0.0, electricity_produced=0.0):
    r"""Attributed direct emissions of a production process (IR 2025/2547 Annex III, Eq. 55).

    .. math::

        AttrEm_{dir} = \max(0,\ DirEm^* + Em_{H,imp} - Em_{H,exp} + WG_{corr,imp} - WG_{corr,exp} - Em_{el,prod})

    Parameters
    ----------
    direct : float or array-like
        ``DirEm*`` — direct emissions of the process (fuel combustion and process emissions of the
        gases CBAM covers), tCO2e.
    heat_imported, heat_exported : float or array-like
        ``Em_H,imp`` / ``Em_H,exp`` — emissions of the measurable heat imported into / exported
        from the process, tCO2e (positive numbers; exported heat is subtracted here).
    waste_gas_imported, waste_gas_exported : float or array-like
        ``WG_corr,imp`` / ``WG_corr,exp`` — waste-gas corrections, tCO2e.
    electricity_produced : float or array-like
        ``Em_el,prod`` — emissions of producing electricity inside the process boundary, tCO2e.

    Returns
    -------
    float or numpy.ndarray
        AttrEm_dir in tCO2e, never negative.

    References
    ----------
    IR (EU) 2025/2547 Annex III B, Eq. 55 (reference ``applications.md`` §1, [A1][A7]).
    """
    total = (np.asarray(direct, float) + np.asarray(heat_imported, float) - np.asarray(heat_exported, float)
             + np.asarray(waste_gas_imported, float) - np.asarray(waste_gas_exported, float)
             - np.asarray(electricity_produced, float))
    out = np.maximum(0.0, total)
    return float(out) if out.ndim == 0 else out


def indirect_emissions(electricity_mwh, ef_el):
    r"""Indirect emissions of a process: electricity consumed × its emission factor.

    .. math::  Em_{indir} = E_{el} \times EF_{el}

    Parameters
    ----------
    electricity_mwh : float or array-like
        Electricity consumed by the process, MWh.
    ef_el : float or array-like
        Emission factor of that electricity, tCO2e/MWh (default: the country factor of IR (EU)
        2025/2621 Annex II; an actual factor needs a PPA or direct-link evidence).

    Returns
    -------
    float or numpy.ndarray
        tCO2e.

    References
    ----------
    IR (EU) 2025/2547 Annex III ("apply separately to direct and indirect"); reference
    ``applications.md`` §1 [A1][A7][A8].
    """
    out = np.asarray(electricity_mwh, float) * np.asarray(ef_el, float)
    return float(out) if out.ndim == 0 else out


def input_material_emissions(masses: Iterable[float], see: Iterable[float]) -> float:
    r"""Embedded emissions of the precursors consumed (IR 2025/2547 Eq. 60).

    .. math::  EE_{InpMat} = \sum_i M_i \times SEE_i

    Parameters
    ----------
    masses : iterable of float
        ``M_i`` — mass of each precursor consumed by the process in the period, t (including
        precursor lost as scrap or cut-offs).
    see : iterable of float
        ``SEE_i`` — specific embedded emissions of each precursor, tCO2e/t (direct *or* indirect:
        the formula is applied to each apart).

    Returns
    -------
    float
        tCO2e.
    """
    m = np.asarray(list(masses), float)
    s = np.asarray(list(see), float)
    if m.shape != s.shape:
        raise CBAMError(f"{m.size} precursor masses but {s.size} SEE values")
    return float(math.fsum(m * s))


def specific_embedded_emissions(attributed, activity_level, precursor_masses=(), precursor_see=()):
    r"""Specific embedded emissions of a good (IR 2025/2547 Eq. 59; Eq. 61–63 are the same per tonne).

    .. math::

        SEE_g = \frac{AttrEm_g + \sum_i M_i \times SEE_i}{AL_g}
              = ae_g + \sum_i m_i \times SEE_i,\qquad ae_g = AttrEm_g / AL_g,\ m_i = M_i / AL_g

    Parameters
    ----------
    attributed : float
        ``AttrEm_g`` — attributed emissions of the good's production process, tCO2e (direct or
        indirect; call once for each).
    activity_level : float
        ``AL_g`` — saleable goods leaving the process in the period, t (> 0).
    precursor_masses, precursor_see : iterables of float
        ``M_i`` (t) and ``SEE_i`` (tCO2e/t) of the precursors consumed (none for simple goods).

    Returns
    -------
    float
        SEE_g in tCO2e/t.

    Raises
    ------
    CBAMError
        ``activity_level`` is not a positive number.
    """
    if not (isinstance(activity_level, (int, float, np.floating)) and math.isfinite(activity_level)
            and activity_level > 0):
        raise CBAMError(f"activity level {activity_level!r}: the saleable output must be a positive number of t")
    return (float(attributed) + input_material_emissions(precursor_masses, precursor_see)) / float(activity_level)


# ------------------------------------------------------------------------------------ defaults
#: China default values before mark-up, tCO2e/t: CN code → (good, direct, indirect or None where
#: Annex II charges direct only).  IR (EU) 2025/2621 Annex I as corrected, read in a transcription
#: (reference ``applications.md`` §1 [A3 (tr.)]) — check the official text before regulatory use.
CHINA_DEFAULTS = {
    "2523100090": ("grey/other clinker (route A)", 1.35, 0.04),
    "25231000": ("grey/other clinker (route A; CN 2523 10 00 read as 2523100090)", 1.35, 0.04),
    "2523100010": ("white clinker", 1.24, 0.06),
    "25232900": ("grey Portland cement", 1.35, 0.07),
    "25232100": ("white Portland cement", 1.25, 0.14),
    "25233000": ("aluminous cement", 1.98, 0.20),
    "7201": ("pig iron", 1.66, None),
    "72061000": ("ingots", 1.74, None),
    "7208": ("flat-rolled products", 3.187, None),
    "7213": ("bars and rods", 3.169, None),
    "7214": ("bars and rods", 3.169, None),
    "72141000": ("bars and rods 7214 10 00", 3.314, None),
    "7215": ("bars and rods", 3.169, None),
    "7216": ("angles, shapes and sections", 3.169, None),
    "7601": ("unwrought aluminium", 3.0, None),
    "28041000": ("hydrogen", 26.64, None),
    "28141000": ("ammonia", 4.17, 0.19),
}
#: China grid default EF_el, tCO2e/MWh (IR (EU) 2025/2621 Annex II, transcribed [A8 (tr.)])
CHINA_GRID_EF = 0.605
_SOURCE_DEFAULTS = "IR (EU) 2025/2621 Annex I (China), as corrected — transcription, UNVERIFIED against the OJ"


def markup(year: int, sector: str = "") -> float:
    """The mark-up on default values for a year, as a fraction.

    +10 % in 2026, +20 % in 2027, +30 % from 2028; fertilisers +1 % (reference ``applications.md``
    §1 [A3 (tr.)][A12]).  Years before 2026 (the transitional period, no certificates): 0.

    Parameters
    ----------
    year : int
        The year of the goods' import.
    sector : str
        ``fertilisers`` gets its own mark-up; any other sector the general one.
    """
    if year < 2026:
        return 0.0
    if sector == "fertilisers":
        return 0.01
    return {2026: 0.10, 2027: 0.20}.get(year, 0.30)


@dataclass(frozen=True)
class DefaultValue:
    """A default SEE used as a fallback: direct and indirect (tCO2e/t, marked up), and why."""

    cn_code: str
    good: str
    direct: float
    indirect: float | None
    markup: float
    source: str
    flag: str = "DEFAULT"

    @property
    def total(self) -> float:
        return self.direct + (self.indirect or 0.0)


def default_value(cn_code: str, year: int) -> DefaultValue:
    """The China default SEE of a good with the year's mark-up (a fallback, flagged ``DEFAULT``).

    Looks the code up by its longest listed prefix in :data:`CHINA_DEFAULTS`.

    Raises
    ------
    CBAMError
        No default listed for the code (the reference lists only some goods; ranges such as
        7207's 3.169–3.314 are not used).
    """
    code = _digits(cn_code)
    for n in range(len(code), 3, -1):
        if code[:n] in CHINA_DEFAULTS:
            good, d, i = CHINA_DEFAULTS[code[:n]]
            sector = goods_category(code)[0] if any(code.startswith(k) for k in CN_GOODS) else ""
            k = markup(year, sector)
            return DefaultValue(cn_code, good, d * (1 + k), None if i is None else i * (1 + k), k,
                                f"{_SOURCE_DEFAULTS}; mark-up {k:.0%} for {year}")
    raise CBAMError(f"no China default value for CN code {cn_code!r} in the workbench's reference "
                    "(IR 2025/2621 Annex I as transcribed); give the supplier's actual SEE")


# ------------------------------------------------------------------------------------ the recursion
_PROCESS_COLUMNS = ("good", "activity_level_t", "attributed_direct_tco2e", "attributed_indirect_tco2e")
_PRECURSOR_COLUMNS = ("good", "precursor", "mass_t")


def embedded_emissions(processes: pd.DataFrame, precursors: pd.DataFrame | None = None) -> pd.DataFrame:
    """Specific embedded emissions (direct, indirect, total) of every good of an installation.

    Eq. 59/60 applied separately to direct and indirect emissions, recursing through the goods'
    own precursors (a good made here and consumed by another process here) and taking the given
    SEE of purchased precursors.

    Parameters
    ----------
    processes : DataFrame
        One row per good produced: ``good`` (its key), ``activity_level_t`` (AL, saleable output
        of the process, t), ``attributed_direct_tco2e`` (Eq. 55) and ``attributed_indirect_tco2e``
        (E_el × EF_el), tCO2e.
    precursors : DataFrame, optional
        One row per (good, precursor) consumed: ``good``, ``precursor`` (a good of ``processes``
        for an own precursor, any key for a purchased one), ``mass_t`` (M_i, t), and for purchased
        precursors ``see_direct``, ``see_indirect`` (tCO2e/t) and optionally ``basis`` (``actual``,
        ``DEFAULT`` …).  The same precursor from two installations is two rows with two keys.

    Returns
    -------
    DataFrame
        Indexed by good: ``activity_level_t``, ``attributed_direct_tco2e``,
        ``attributed_indirect_tco2e``, ``precursor_direct_tco2e``, ``precursor_indirect_tco2e``
        (Σ M_i × SEE_i), ``embedded_direct_tco2e``, ``embedded_indirect_tco2e``, ``see_direct``,
        ``see_indirect``, ``see_total`` (tCO2e/t), ``default_share`` (share of the embedded
        emissions that come from default values).

    Raises
    ------
    CBAMError
        A missing column, a precursor of an unknown good without SEE, a cycle of own precursors,
        or a good whose activity level is not positive.
    """
    missing = [c for c in _PROCESS_COLUMNS if c not in processes]
    if missing:
        raise CBAMError(f"processes: missing columns {missing}")
    procs = processes.set_index("good")
    if procs.index.has_duplicates:
        raise CBAMError(f"processes: a good appears twice ({sorted(procs.index[procs.index.duplicated()])})")
    prec = precursors if precursors is not None else pd.DataFrame(columns=list(_PRECURSOR_COLUMNS))
    missing = [c for c in _PRECURSOR_COLUMNS if c not in prec]
    if missing:
        raise CBAMError(f"precursors: missing columns {missing}")
    out: dict[str, dict] = {}
    visiting: list[str] = []

    def solve(good: str) -> dict:
        if good in out:
            return out[good]
        if good in visiting:
            raise CBAMError(f"precursors form a cycle: {' → '.join(visiting + [good])}")
        visiting.append(good)
        row = procs.loc[good]
        al = float(row["activity_level_t"])
        attr_d, attr_i = float(row["attributed_direct_tco2e"]), float(row["attributed_indirect_tco2e"])
        masses, see_d, see_i, from_default = [], [], [], 0.0
        for r in prec[prec["good"] == good].itertuples(index=False):
            m = float(r.mass_t)
            if r.precursor in procs.index and r.precursor != good:
                sub = solve(r.precursor)
                sd, si = sub["see_direct"], sub["see_indirect"]
                from_default += m * sub["see_total"] * sub["default_share"]
            else:
                sd, si = _given(r, "see_direct"), _given(r, "see_indirect")
                if sd is None:
                    raise CBAMError(f"precursor {r.precursor!r} of {good!r}: not produced here and no see_direct given")
                si = si or 0.0
                if str(getattr(r, "basis", "") or "").upper().startswith("DEFAULT"):
                    from_default += m * (sd + si)
            masses.append(m)
            see_d.append(sd)
            see_i.append(si)
        emb_d = attr_d + input_material_emissions(masses, see_d)
        emb_i = attr_i + input_material_emissions(masses, see_i)
        try:
            sd_g = specific_embedded_emissions(attr_d, al, masses, see_d)
            si_g = specific_embedded_emissions(attr_i, al, masses, see_i)
        except CBAMError as exc:
            raise CBAMError(f"good {good!r}: {exc}") from None
        total = emb_d + emb_i
        visiting.pop()
        out[good] = {
            "activity_level_t": al, "attributed_direct_tco2e": attr_d, "attributed_indirect_tco2e": attr_i,
            "precursor_direct_tco2e": emb_d - attr_d, "precursor_indirect_tco2e": emb_i - attr_i,
            "embedded_direct_tco2e": emb_d, "embedded_indirect_tco2e": emb_i,
            "see_direct": sd_g, "see_indirect": si_g, "see_total": sd_g + si_g,
            "default_share": from_default / total if total else 0.0,
        }
        return out[good]

    for g in procs.index:
        solve(g)
    return pd.DataFrame.from_dict(out, orient="index").loc[list(procs.index)].rename_axis("good")


def _given(row, col):
    v = getattr(row, col, None)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return float(v)


def precursor_rows(rows: Iterable[Mapping]) -> pd.DataFrame:
    """A precursor table from dicts (``good``, ``precursor``, ``mass_t`` [, ``see_direct``, ``see_indirect``, ``basis``])."""
    return pd.DataFrame(list(rows), columns=list(_PRECURSOR_COLUMNS) + ["see_direct", "see_indirect", "basis"])
