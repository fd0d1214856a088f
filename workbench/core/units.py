"""Units of Chinese energy statistics and carbon accounting, on one shared ``pint`` registry.

Every conversion in the workbench goes through :data:`ureg`; no number is scaled by hand.

Dimensions added to pint's defaults, so that quantities which must never be mixed up cannot be:

* ``[normal_volume]`` — gas volume at standard conditions (0 °C, 101.325 kPa): ``Nm3``,
  ``wan_Nm3`` (10⁴ Nm³, 万Nm³, the unit of the fuel tables of GB/T 32151). An actual ``m3`` is a
  different quantity and does not convert to ``Nm3``.
* ``[carbon_mass]`` — ``tC`` (tonnes of carbon, the unit of carbon content per unit heat).
* ``[co2_mass]`` — ``tCO2`` = ``tCO2e`` (GWP-weighted mass is reported in the same unit).
* ``[currency]`` — ``CNY`` (元) and ``wan_yuan`` (万元 = 10⁴ CNY, the unit of value added).

Energy: ``tce`` (吨标准煤) = 29.3076 GJ (7,000 kcal/kg, GB/T 2589), ``kgce``.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np
import pint

from workbench.core.errors import WorkbenchError

__all__ = [
    "ureg",
    "Q_",
    "UnitError",
    "UnitMismatchError",
    "normalize_unit",
    "parse_unit",
    "convert",
    "conversion_factor",
    "converts",
    "CO2_PER_C",
]

ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=False, cache_folder=None)
Q_ = ureg.Quantity

_DEFINITIONS = """
normal_cubic_meter = [normal_volume] = Nm3 = Nm³
wan_Nm3 = 1e4 * normal_cubic_meter = 万Nm3
yi_Nm3 = 1e8 * normal_cubic_meter = 亿Nm3
tonne_carbon = [carbon_mass] = tC
tonne_CO2 = [co2_mass] = tCO2 = tCO2e
kg_CO2 = 1e-3 * tonne_CO2 = kgCO2 = kgCO2e
tonne_coal_equivalent = 29.3076 * gigajoule = tce = 吨标准煤
kg_coal_equivalent = 1e-3 * tonne_coal_equivalent = kgce
wan_tce = 1e4 * tonne_coal_equivalent = 万tce
yuan = [currency] = CNY = 元 = RMB
wan_yuan = 1e4 * yuan = 万元 = wan_CNY
yi_yuan = 1e8 * yuan = 亿元 = yi_CNY
wan_kWh = 1e4 * kilowatt_hour = 万kWh
yi_kWh = 1e8 * kilowatt_hour = 亿kWh
wan_t = 1e4 * metric_ton = 万t
"""
for _line in _DEFINITIONS.strip().splitlines():
    ureg.define(_line)

#: Mass ratio of CO2 to C, 44/12, as GB/T 32150-2015 formula (3) writes it.
CO2_PER_C = Q_(44 / 12, "tCO2/tC")


class UnitError(WorkbenchError, ValueError):
    """A unit that cannot be understood."""


class UnitMismatchError(UnitError):
    """Two units that describe different quantities (e.g. kWh and t)."""

    def __init__(self, from_unit: str, to_unit: str, detail: str = ""):
        self.from_unit, self.to_unit = from_unit, to_unit
        msg = f"unit mismatch: '{from_unit}' cannot be converted to '{to_unit}'"
        super().__init__(msg + (f" ({detail})" if detail else ""))


# Spellings found in real spreadsheets -> pint expressions.  Order matters: longest first.
_WORDS = [
    ("吨标准煤", "tce"), ("吨标煤", "tce"), ("千克标准煤", "kgce"), ("千克标煤", "kgce"),
    ("kgce", "kgce"), ("tce", "tce"),
    ("标准立方米", "Nm3"), ("标立方米", "Nm3"), ("标方", "Nm3"), ("立方米", "m3"), ("方", "m3"),
    ("千瓦时", "kWh"), ("千瓦·时", "kWh"), ("兆瓦时", "MWh"), ("度", "kWh"),
    ("吉焦", "GJ"), ("兆焦", "MJ"), ("太焦", "TJ"), ("百万千焦", "GJ"), ("千焦", "kJ"),
    ("千克", "kg"), ("公斤", "kg"), ("吨", "t"), ("克", "g"),
    ("元", "CNY"),
]
_SUPERSCRIPTS = str.maketrans({"³": "3", "²": "2", "⁴": "^4", "⁸": "^8", "·": "*", "×": "*"})


@lru_cache(maxsize=4096)
def normalize_unit(text: str) -> str:
    """Turn a unit as people write it into an expression :data:`ureg` parses.

    Accepts e.g. ``Nm3``, ``万Nm3``, ``10^4Nm3``, ``10⁴ Nm³``, ``kWh``, ``万kWh``, ``MWh``, ``GJ``,
    ``t``, ``吨``, ``万元``, ``GJ/10^4Nm3``, ``tC/TJ``, ``%``.  Raises :class:`UnitError` for
    an empty unit.
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        raise UnitError("missing unit")
    s = unicodedata.normalize("NFKC", str(text).translate(_SUPERSCRIPTS)).strip()
    if not s:
        raise UnitError("missing unit")
    s = s.replace("（", "(").replace("）", ")").replace("／", "/")
    s = re.sub(r"\s+", " ", s)
    if s in ("%", "percent", "百分比"):
        return "percent"
    # 10^4, 10**4, 1e4 and 万 as a multiplier of the following unit
    s = re.sub(r"(?<![\w.])(?:10\s*(?:\^|\*\*)\s*4|1e4|1E4)\s*\*?\s*", "万", s)
    s = re.sub(r"(?<![\w.])(?:10\s*(?:\^|\*\*)\s*8|1e8|1E8)\s*\*?\s*", "亿", s)
    for word, repl in _WORDS:
        s = s.replace(word, repl)
    s = s.replace("万 ", "万").replace("亿 ", "亿")
    # `万X` / `亿X` become the defined units wan_X / yi_X when they exist
    def _wan(m: re.Match) -> str:
        prefix = "wan_" if m.group(1) == "万" else "yi_"
        unit = m.group(2)
        name = prefix + unit
        if name in ureg:
            return name
        return f"({1e4 if m.group(1) == '万' else 1e8:g} * {unit})"
    s = re.sub(r"(万|亿)([A-Za-z][A-Za-z0-9_]*)", _wan, s)
    s = s.replace("m3", "m**3") if re.search(r"(?<![A-Za-z])m3", s) else s
    return s


@lru_cache(maxsize=4096)
def parse_unit(text: str) -> pint.Unit:
    """Parse a unit spelling (see :func:`normalize_unit`) to a :class:`pint.Unit`.

    A scaled spelling such as ``10^4 Nm3`` becomes the defined unit ``wan_Nm3``.
    """
    expr = normalize_unit(text)
    try:
        q = Q_(1, expr) if not re.search(r"\d\s*\*", expr) else ureg.parse_expression(expr)
    except Exception as exc:  # pint raises many kinds (incl. AssertionError) on junk input
        raise UnitError(f"unknown unit '{text}'") from exc
    if not isinstance(q, pint.Quantity):
        raise UnitError(f"unknown unit '{text}'")
    if q.magnitude != 1:
        raise UnitError(f"unit '{text}' carries a scale ({q.magnitude:g}) that has no defined unit")
    return q.units


@lru_cache(maxsize=8192)
def conversion_factor(from_unit: str, to_unit: str) -> float:
    """Multiplier taking a magnitude in ``from_unit`` to ``to_unit``, computed by pint.

    Raises :class:`UnitMismatchError` naming both units when the dimensions differ.
    """
    src, dst = parse_unit(from_unit), parse_unit(to_unit)
    try:
        return float(Q_(1.0, src).to(dst).magnitude)
    except pint.DimensionalityError as exc:
        raise UnitMismatchError(str(from_unit), str(to_unit),
                                f"{exc.dim1 or src.dimensionality} vs {exc.dim2 or dst.dimensionality}") from None


def converts(from_unit: str, to_unit: str) -> bool:
    """Whether ``from_unit`` converts to ``to_unit`` (same dimension; both parseable)."""
    try:
        conversion_factor(from_unit, to_unit)
        return True
    except UnitError:
        return False


def convert(values, units, to_unit: str) -> np.ndarray:
    """Convert magnitudes to ``to_unit``, vectorised.

    ``units`` is one unit for all values, or a sequence with one unit per value; rows are
    grouped by their unit so that pint is asked once per distinct unit, not once per value.
    """
    vals = np.asarray(values, dtype="float64")
    if isinstance(units, str):
        return vals * conversion_factor(units, to_unit)
    units = np.asarray(units, dtype=object)
    out = np.empty_like(vals)
    for u in dict.fromkeys(units.tolist()):
        mask = units == u
        out[mask] = vals[mask] * conversion_factor(u, to_unit)
    return out
