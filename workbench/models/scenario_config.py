"""Reduction scenarios described in YAML (or a dict): one format for analysts, the CLI, the notebook and the apps.

A configuration names **measures** (措施), each a lever or a list of levers (a package: demand levers first, then on-site generation, then purchases,
in the order written within each),
and optionally the **prices** of the energy items their changes are billed at
(:func:`workbench.models.scenarios.evaluate`)::

    name: 2026 减排方案                       # optional: the package's name
    prices:                                   # 元 per unit of each item (a library item code or name)
      raw_coal: "900 元/t"
      natural_gas: "3.6 元/Nm3"
      grid: "0.65 元/kWh"
      green_electricity: "0.68 元/kWh"
    measures:
      窑头煤改气:                              # the measure's name (any text)
        lever: fuel_switch
        from_item: raw_coal
        to_item: natural_gas
        share: 0.2
        nodes: [F01]
        cost: {capex_cny: 2.0e+6, lifetime_years: 10, discount_rate: 0.08}
      rooftop PV:
        lever: onsite_pv
        capacity_kwp: 5000
        yield_kwh_per_kwp: 1000
        cost: {capex_cny: 1.75e+7, lifetime_years: 25, discount_rate: 0.06, annual_opex_cny: 1.5e+5}
      cement mill VSD: {lever: efficiency, saving: 0.05, nodes: [F02]}
      green power: {lever: green_electricity, annual_mwh: 10000}
      package:                                # a measure of several levers (acting by phase, see evaluate)
        - {lever: onsite_pv, annual_mwh: 2000}
        - {lever: green_electricity, share: 0.3, residual_mix: true}

Lever kinds and their keys (the fields of the dataclasses of :mod:`workbench.models.scenarios`;
every lever also takes ``name`` and ``cost``):

==================  =================  ================================================================
``lever``           class              keys
==================  =================  ================================================================
fuel_switch         FuelSwitch         from_item, to_item, share, nodes, efficiency_ratio
onsite_pv           OnsitePV           annual_mwh | capacity_kwp + yield_kwh_per_kwp, monthly_profile,
                                       nodes, export_surplus
efficiency          EfficiencyGain     saving, nodes, items   (``efficiency_gain`` is the same)
green_electricity   GreenElectricity   annual_mwh | share, monthly_profile, nodes, residual_mix
==================  =================  ================================================================

``cost`` takes ``capex_cny``, ``lifetime_years``, ``discount_rate`` (a fraction) and ``annual_opex_cny``
(:class:`workbench.models.scenarios.Cost`; the annual cost is ``capex × CRF + Δopex``).  Lists become
tuples (``nodes``, ``items``, ``monthly_profile``; a single node or item may be written as a string).
A number may be written as a string (PyYAML reads ``2.0e6`` — an exponent without a sign — as text,
``2.0e+6`` as a number; both are accepted).  Items (``from_item``, ``to_item``, ``items`` and the
price keys) are checked against the factor library, so a misspelt item is refused when the file is
read, not half-way through a MAC curve.  A file is read as UTF-8, else GB18030 (GBK).  Every error
is one :class:`ScenarioError` line naming the measure, the lever's position in a package and the key.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from pathlib import Path

from workbench.models.scenarios import (
    Cost,
    EfficiencyGain,
    FuelSwitch,
    GreenElectricity,
    Lever,
    OnsitePV,
    ScenarioError,
    parse_price,
)

__all__ = ["EXAMPLE_PRICES", "LEVER_KINDS", "ScenarioConfig", "config_from_levers", "example_config",
           "levers_from_config", "load_config", "prices_from_config"]

#: lever kind in a configuration → lever class
LEVER_KINDS: dict[str, type[Lever]] = {
    FuelSwitch.kind: FuelSwitch,
    OnsitePV.kind: OnsitePV,
    EfficiencyGain.kind: EfficiencyGain,
    "efficiency_gain": EfficiencyGain,
    GreenElectricity.kind: GreenElectricity,
}
TOP_KEYS = ("name", "prices", "measures")
ITEM_KEYS = ("from_item", "to_item", "items")      # checked against the factor library


@dataclasses.dataclass(frozen=True)
class ScenarioConfig:
    """A configuration read: ``measures`` (name → levers, in the file's order), ``prices`` (item code →
    price as written; ``None`` when none are given) and the package's ``name``."""
    measures: dict
    prices: dict | None = None
    name: str = "package"

    @property
    def package(self) -> tuple:
        """All the measures' levers in the file's order: the whole package for :func:`evaluate`."""
        return tuple(lv for levers in self.measures.values() for lv in levers)


# --------------------------------------------------------------------------- checking values
def _suggest(key: str, allowed) -> str:
    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _number(value, where: str) -> float:
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: {value!r} is not a number")
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            out = float(value.replace("_", ""))
        except ValueError:
            pass
        else:
            if math.isfinite(out):
                return out
    raise ScenarioError(f"{where}: {value!r} is not a number")


def _convert(value, kind: str, where: str):
    """``value`` as the field's type: ``kind`` is the dataclass annotation (``float | None``, ``tuple`` …)."""
    optional = kind.endswith("| None")
    base = kind.replace("| None", "").strip()
    if value is None:
        if optional:
            return None
        raise ScenarioError(f"{where}: a value is required (got nothing)")
    if base == "float":
        return _number(value, where)
    if base == "bool":
        if not isinstance(value, bool):
            raise ScenarioError(f"{where}: {value!r} is not true or false")
        return value
    if base == "str":
        if not isinstance(value, str):
            raise ScenarioError(f"{where}: {value!r} is not text")
        return value
    if base == "tuple":
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, (list, tuple)):
            raise ScenarioError(f"{where}: {value!r} is not a list")
        return tuple(value)
    raise ScenarioError(f"{where}: fields of type {kind} cannot be configured")   # pragma: no cover


def _fields(cls) -> dict:
    return {f.name: str(f.type) for f in dataclasses.fields(cls)}


def _cost(spec, where: str) -> Cost | None:
    if spec is None:
        return None
    if isinstance(spec, Cost):
        return spec
    if not isinstance(spec, dict):
        raise ScenarioError(f"{where}: write the cost as a mapping of {', '.join(_fields(Cost))}")
    allowed = _fields(Cost)
    kw = {}
    for key, value in spec.items():
        if key not in allowed:
            raise ScenarioError(f"{where}: unknown key {key!r}; {_suggest(key, allowed)}allowed: {', '.join(allowed)}")
        kw[key] = _convert(value, allowed[key], f"{where}.{key}")
    try:
        return Cost(**kw)
    except ScenarioError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _library():
    from workbench.core.factors import default_library

    return default_library()


def _check_item(name, where: str) -> None:
    from workbench.core.errors import WorkbenchError

    try:
        _library().item_code(name)
    except (WorkbenchError, KeyError, ValueError) as exc:
        raise ScenarioError(f"{where}: {exc.args[0] if exc.args else exc}") from None


def _lever(spec, where: str) -> Lever:
    if isinstance(spec, Lever):
        return spec
    if not isinstance(spec, dict):
        raise ScenarioError(f"{where}: write a lever as a mapping with 'lever: <kind>' (or a list of them)")
    kinds = sorted(LEVER_KINDS)
    if "lever" not in spec:
        raise ScenarioError(f"{where}: the key 'lever' is missing (one of {', '.join(kinds)})")
    kind = spec["lever"]
    if not isinstance(kind, str) or kind not in LEVER_KINDS:
        hint = _suggest(kind, kinds) if isinstance(kind, str) else ""
        raise ScenarioError(f"{where}: unknown lever {kind!r}; {hint}kinds: {', '.join(kinds)}")
    cls = LEVER_KINDS[kind]
    allowed = _fields(cls)
    kw = {}
    for key, value in spec.items():
        if key == "lever":
            continue
        at = f"{where} ({kind}).{key}"
        if key not in allowed:
            raise ScenarioError(f"{where}: unknown key {key!r} for {kind}; {_suggest(key, allowed)}"
                                f"allowed: {', '.join(sorted(allowed))}")
        if key == "cost":
            kw[key] = _cost(value, at)
            continue
        kw[key] = _convert(value, allowed[key], at)
        if key == "monthly_profile" and kw[key] is not None:
            kw[key] = tuple(_number(v, f"{at}[{i}]") for i, v in enumerate(kw[key]))
        elif key == "nodes":
            kw[key] = tuple(_convert(v, "str", f"{at}[{i}]") for i, v in enumerate(kw[key]))
        if key in ITEM_KEYS and kw[key]:
            for item in (kw[key] if isinstance(kw[key], tuple) else (kw[key],)):
                _convert(item, "str", at)
                _check_item(item, at)
    return cls(**kw)


# --------------------------------------------------------------------------- the public readers
def _mapping(spec) -> dict:
    if isinstance(spec, ScenarioConfig):
        return config_from_levers(spec.measures, spec.prices, name=spec.name)
    if not isinstance(spec, dict):
        raise ScenarioError(f"a scenario configuration is a mapping with {', '.join(TOP_KEYS)}; got "
                            f"{type(spec).__name__}")
    unknown = [k for k in spec if k not in TOP_KEYS]
    if unknown:
        raise ScenarioError(f"unknown key {unknown[0]!r} at the top of the configuration; "
                            f"{_suggest(unknown[0], TOP_KEYS)}allowed: {', '.join(TOP_KEYS)}")
    return spec


def levers_from_config(spec) -> dict[str, tuple[Lever, ...]]:
    """The measures of a configuration (see the module doc): measure name → its levers as a tuple,
    in the configuration's order.  Raises :class:`ScenarioError` naming the measure and the key."""
    spec = _mapping(spec)
    measures = spec.get("measures")
    if not isinstance(measures, dict) or not measures:
        raise ScenarioError("the configuration needs 'measures': a mapping of measure names to levers")
    out = {}
    for name, value in measures.items():
        where = f"measure {str(name)!r}"
        if isinstance(value, (list, tuple)):
            if not value:
                raise ScenarioError(f"{where}: an empty list of levers")
            out[str(name)] = tuple(_lever(v, f"{where}, lever {i}") for i, v in enumerate(value, 1))
        else:
            out[str(name)] = (_lever(value, where),)
    return out


def prices_from_config(spec) -> dict | None:
    """The prices of a configuration: library item code → the price as written (``"3.6 元/Nm3"``), each
    checked (a number and a currency per unit); ``None`` when the configuration gives none."""
    spec = _mapping(spec)
    prices = spec.get("prices")
    if prices is None:
        return None
    if not isinstance(prices, dict):
        raise ScenarioError("prices: write a mapping of item → price, e.g. {grid: '0.65 元/kWh'}")
    out = {}
    for item, price in prices.items():
        where = f"prices.{item}"
        _check_item(str(item), where)
        try:
            parse_price(price)
        except ScenarioError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
        code = _library().item_code(str(item))
        if code in out:
            raise ScenarioError(f"{where}: {code} is priced twice")
        out[code] = price
    return out


def _read_yaml(path: Path) -> dict:
    import yaml

    from workbench.core.encodings import decode_text

    decoded = decode_text(Path(path).read_bytes())      # UTF-8, else GB18030 (a file saved by a Chinese editor)
    if decoded is None:
        raise ScenarioError(f"{path}: not text in UTF-8 or GB18030")
    try:
        doc = yaml.safe_load(decoded[0])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}: not valid YAML: {getattr(exc, 'problem', None) or exc}{at}") from None
    if not isinstance(doc, dict):
        raise ScenarioError(f"{path}: a scenario configuration is a YAML mapping with {', '.join(TOP_KEYS)}")
    return doc


def load_config(source) -> ScenarioConfig:
    """A configuration from a YAML file (path) or a mapping: its measures, prices and name."""
    if isinstance(source, ScenarioConfig):
        return source
    if isinstance(source, (str, Path)):
        spec = _read_yaml(Path(source))
        origin = f"{source}: "
    else:
        spec, origin = source, ""
    try:
        spec = _mapping(spec)
        name = spec.get("name", "package")
        if not isinstance(name, str) or not name.strip():
            raise ScenarioError(f"name: {name!r} is not a name")
        return ScenarioConfig(levers_from_config(spec), prices_from_config(spec), name)
    except ScenarioError as exc:
        raise ScenarioError(f"{origin}{exc}") from None


# --------------------------------------------------------------------------- back to a configuration
def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _lever_spec(lv: Lever) -> dict:
    out = {"lever": lv.kind}
    # the lever's own keys first, its name and cost (the base class's fields) after them
    for f in sorted(dataclasses.fields(lv), key=lambda f: f.name in ("name", "cost")):
        value = getattr(lv, f.name)
        if value == f.default:
            continue
        if f.name == "cost":
            value = {c.name: getattr(value, c.name) for c in dataclasses.fields(value)
                     if getattr(value, c.name) != c.default}
        out[f.name] = _plain(value)
    return out


def config_from_levers(measures: dict, prices: dict | None = None, *, name: str = "package") -> dict:
    """The configuration (a plain mapping, YAML-ready) of ``measures`` (name → a lever or levers) and
    ``prices``: only the keys that differ from the levers' defaults; :func:`load_config` reads it back
    to equal levers."""
    out: dict = {}
    if name != "package":
        out["name"] = name
    if prices:
        out["prices"] = dict(prices)
    ms = {}
    for key, levers in measures.items():
        levers = tuple(levers) if isinstance(levers, (list, tuple)) else (levers,)
        specs = [_lever_spec(lv) for lv in levers]
        ms[key] = specs[0] if len(specs) == 1 else specs
    out["measures"] = ms
    return out


# --------------------------------------------------------------------------- an example to start from
#: illustrative energy prices (元 per unit) for the example scenario file — assumptions, not data
EXAMPLE_PRICES = {"natural_gas": "3.6 元/Nm3", "grid": "0.65 元/kWh", "green_electricity": "0.68 元/kWh",
                  "raw_coal": "900 元/t", "bituminous_coal": "900 元/t", "anthracite": "1100 元/t", "coke": "2000 元/t",
                  "diesel": "7800 元/t", "fuel_oil": "5000 元/t", "lpg": "6000 元/t", "heat": "200 元/GJ"}


def example_config(inventory) -> str:
    """An example scenario file (YAML) for the enterprise: switching a fifth of its largest fuel to
    natural gas at the facility that burns most of it, rooftop PV for a tenth of its purchased
    electricity, 5 % efficiency at the facility using most electricity (on the items it has an example
    price for), a fifth of its electricity bought green.  Its costs and prices are illustrative
    assumptions (:data:`EXAMPLE_PRICES`), marked as such."""
    led = inventory.ledger
    months = max(1, led["period"].nunique())
    energy = [x.key for x in inventory.regime.sources if x.sign > 0 and x.categories & {"fuel", "electricity", "heat"}]
    bought = led[led["source"].isin(energy)]
    priced = sorted({"natural_gas", "grid", "green_electricity"} | (set(bought["item"]) & set(EXAMPLE_PRICES)))
    lines = ["# 示例情景 — 成本与价格均为假设，请替换 / example scenario — costs and prices are assumptions: replace them",
             "prices:"] + [f'  {i}: "{EXAMPLE_PRICES[i]}"' for i in priced]
    fuels = led[(led["source"] == "combustion") & (led["item"] != "natural_gas") & led["item"].isin(priced)]
    measures = []
    if len(fuels):
        item = fuels.groupby("item")["tco2e"].sum().idxmax()
        fac = fuels[fuels["item"] == item].groupby("facility")["tco2e"].sum().idxmax()
        measures.append(f"  燃料替代 gas at {fac}: {{lever: fuel_switch, from_item: {item}, to_item: natural_gas, "
                        f"share: 0.2, nodes: [{fac}], cost: {{capex_cny: 5.0e6, lifetime_years: 15, discount_rate: 0.08}}}}")
    grid = led[led["item"] == "grid"]
    if len(grid):
        mwh = float(grid.loc[grid["unit"].eq("MWh"), "quantity"].sum() + grid.loc[grid["unit"].eq("kWh"), "quantity"].sum() / 1000)
        year_mwh = mwh * 12 / months
        kwp = round(year_mwh * 0.1 / 1.1 / 100) * 100 or 100          # a tenth, at an assumed 1,100 kWh/kWp
        measures.append(f"  屋顶光伏 rooftop PV: {{lever: onsite_pv, capacity_kwp: {kwp}, yield_kwh_per_kwp: 1100, "
                        f"cost: {{capex_cny: {kwp * 3500:.3g}, lifetime_years: 25, discount_rate: 0.06, "
                        f"annual_opex_cny: {kwp * 50:.3g}}}}}")
        fac = grid.groupby("facility")["tco2e"].sum().idxmax()
        unpriced = sorted(set(bought.loc[bought["facility"] == fac, "item"]) - set(priced))
        items = f", items: [{', '.join(sorted(set(bought.loc[bought['facility'] == fac, 'item']) & set(priced)))}]" \
            if unpriced else ""
        if unpriced:
            lines.append(f"  # no example price for {', '.join(unpriced)}: the efficiency measure leaves them out")
        measures.append(f"  能效提升 efficiency at {fac}: {{lever: efficiency, saving: 0.05, nodes: [{fac}]{items}, "
                        f"cost: {{capex_cny: 2.0e6, lifetime_years: 10, discount_rate: 0.08}}}}")
        measures.append("  绿电 green power: {lever: green_electricity, share: 0.2}")
    if not measures:
        raise ValueError("the inventory has neither fuels nor purchased electricity to build an example on")
    return "\n".join(lines + ["measures:"] + measures) + "\n"
