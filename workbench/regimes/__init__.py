"""Accounting regimes and their registry: which rules the engine, the inventory and the reports follow.

A regime (:class:`~.base.Regime`) defines the emission sources and their signs, the edition by
reporting year, the report sections, the default GWP set and the sectors (products, sector
formulas).  :func:`get_regime` finds one by name among

1. the regimes registered in this process (:func:`register`), GB/T 32150 first, and
2. the ``workbench.regimes`` entry-point group, so a researcher's package adds a regime by
   declaring, in its ``pyproject.toml``::

       [project.entry-points."workbench.regimes"]
       cbam = "my_package.cbam:REGIME"     # a Regime instance, a Regime subclass, or a module with REGIME

Names are matched by :func:`~.base.regime_key` (``GB/T 32150`` = ``gbt32150``), the regime's
``name`` and its ``aliases``.
"""
from __future__ import annotations

from importlib.metadata import entry_points

from .base import (
    CATEGORIES,
    REPORT_CONTENTS,
    EmissionSource,
    Product,
    Regime,
    RegimeError,
    ReportSection,
    Sector,
    UnknownRegimeError,
    regime_key,
)
from .gbt32150 import REGIME as GBT32150

__all__ = [
    "Regime", "EmissionSource", "ReportSection", "Product", "Sector", "RegimeError", "UnknownRegimeError",
    "CATEGORIES", "REPORT_CONTENTS", "regime_key", "ENTRY_POINT_GROUP", "DEFAULT",
    "get_regime", "default_regime", "register", "unregister", "available", "GBT32150",
]

ENTRY_POINT_GROUP = "workbench.regimes"
#: The regime used when none is named.
DEFAULT = "GB/T 32150"

_REGISTERED: dict[str, Regime] = {}   # regime_key of name and aliases → regime


def _keys(regime: Regime) -> list[str]:
    return list(dict.fromkeys(regime_key(n) for n in (regime.name, *regime.aliases) if regime_key(n)))


def register(regime: Regime, *, replace: bool = False) -> Regime:
    """Make ``regime`` findable by its name and aliases (for this process); returns it.

    A name already taken by another regime is an error unless ``replace``.
    """
    if isinstance(regime, type) and issubclass(regime, Regime):
        regime = regime()
    if not isinstance(regime, Regime):
        raise RegimeError(f"{regime!r} is not a Regime")
    regime.validate()
    for k in _keys(regime):
        other = _REGISTERED.get(k)
        if other is not None and other is not regime and not replace:
            raise RegimeError(f"the regime name '{k}' is taken by {other.name}; pass replace=True to replace it")
    for k in _keys(regime):
        _REGISTERED[k] = regime
    return regime


def unregister(regime: Regime | str) -> None:
    """Forget a registered regime (by object or name); the entry points stay discoverable."""
    target = regime if isinstance(regime, Regime) else _REGISTERED.get(regime_key(regime))
    for k in [k for k, v in _REGISTERED.items() if v is target]:
        del _REGISTERED[k]


def _entry_points() -> dict:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load(ep) -> Regime:
    """The regime behind an entry point: an instance, a Regime subclass, or a module with ``REGIME``."""
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plug-in must say which one it is
        raise RegimeError(f"entry point '{ep.name}' ({ep.value}) of {ENTRY_POINT_GROUP} cannot be loaded: {exc}") from exc
    if not isinstance(obj, (Regime, type)) and hasattr(obj, "REGIME"):
        obj = obj.REGIME
    if isinstance(obj, type) and issubclass(obj, Regime):
        obj = obj()
    if not isinstance(obj, Regime):
        raise RegimeError(f"entry point '{ep.name}' ({ep.value}) is not a Regime")
    return obj.validate()


def get_regime(name: str | Regime | None = None) -> Regime:
    """The regime called ``name`` (``None``: :data:`DEFAULT`); a :class:`Regime` is checked and returned."""
    if isinstance(name, Regime):
        return name if any(r is name for r in _REGISTERED.values()) else name.validate()
    if name is None or (isinstance(name, str) and not name.strip()):
        name = DEFAULT
    key = regime_key(name)
    if key in _REGISTERED:
        return _REGISTERED[key]
    eps = _entry_points()
    broken = []
    # the entry point named like the regime first, then every other one (its regime may carry the alias)
    for ep_name in sorted(eps, key=lambda n: regime_key(n) != key):
        try:
            regime = _load(eps[ep_name])
        except RegimeError as exc:
            if regime_key(ep_name) == key:
                raise
            broken.append(str(exc))
            continue
        if key in _keys(regime):
            if not any(k in _REGISTERED for k in _keys(regime)):
                register(regime)
            return regime
    raise UnknownRegimeError(f"no accounting regime '{name}' (known: {', '.join(sorted(available()))})"
                             + (f"; {'; '.join(broken)}" if broken else ""))


def default_regime() -> Regime:
    """The regime used when none is named (GB/T 32150)."""
    return get_regime(DEFAULT)


def available() -> dict:
    """Regime names → where they come from (``registered`` or ``entry point <value>``)."""
    out = {r.name: "registered" for r in _REGISTERED.values()}
    for ep in _entry_points().values():
        if regime_key(ep.name) not in _REGISTERED:
            out.setdefault(ep.name, f"entry point {ep.value}")
    return out


register(GBT32150)
