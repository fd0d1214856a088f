"""The regime interface and registry: what an accounting regime tells the engine, the inventory and
the reports, and how one is found.

A *regime* is a set of accounting and reporting rules — GB/T 32150 (:mod:`.gbt32150`), and later
the 碳效码 grading, EU CBAM embedded emissions or ISO 14064-1.  The engine
(:func:`workbench.accounting.account`) computes every record with the clause-level formula
functions of :mod:`workbench.accounting` chosen by the item's category; the regime says which
emission *sources* exist, how each enters the total (its sign), which item categories each source
accepts, which edition of the standard applies in a reporting year, which report sections the
standard requires, the default GWP set, and the *sectors* it knows (their products and their
sector-specific process-emission formulas).  None of this is in the engine, so a regime plugs in
without editing it (:func:`get_regime` below finds one by name).

The objects here are plain, frozen data; :class:`Regime` adds the look-ups every regime shares.

The interface lives in the core because activity records, the engine and the reports all ask a
regime; the regimes themselves (GB/T 32150 in :mod:`workbench.regimes`, a researcher's in their
own package) sit above the accounting layer and are found by name through

1. the regimes registered in this process (:func:`register`), and
2. the ``workbench.regimes`` entry-point group, so a package adds a regime by declaring, in its
   ``pyproject.toml``::

       [project.entry-points."workbench.regimes"]
       cbam = "my_package.cbam:REGIME"     # a Regime instance, a Regime subclass, or a module with REGIME

   (the workbench's own GB/T 32150 is found the same way, :data:`BUILTIN` standing in for the
   entry point where the package runs from a source tree that was never installed).

Names are matched by :func:`regime_key` (``GB/T 32150`` = ``gbt32150``), the regime's ``name`` and
its ``aliases``.
"""
from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from workbench.core.errors import WorkbenchError
from workbench.core.plugins import entry_points_of, load_entry_point

__all__ = [
    "BUILTIN",
    "CATEGORIES",
    "DEFAULT",
    "ENTRY_POINT_GROUP",
    "REPORT_CONTENTS",
    "EmissionSource",
    "Product",
    "Regime",
    "RegimeError",
    "ReportSection",
    "Sector",
    "UnknownRegimeError",
    "available",
    "default_regime",
    "get_regime",
    "regime_key",
    "register",
    "unregister",
]

#: Item categories of the factor library (``items.csv``); the engine has a formula for each:
#: fuel → FC × NCV × CC × OF × 44/12 · carbonate → M × P × EF · electricity, heat → AD × EF ·
#: gas → m × GWP.
CATEGORIES = ("fuel", "carbonate", "electricity", "heat", "gas")

#: What a report section can hold — the kinds of content the workbench's report renderer
#: (:mod:`workbench.reports.inventory`) can fill from an inventory.
REPORT_CONTENTS = ("entity", "emissions", "activity", "factors", "efficiency", "other")


class RegimeError(WorkbenchError, ValueError):
    """A regime that is malformed, unknown, or asked for something it does not define."""


class UnknownRegimeError(RegimeError, LookupError):
    """No regime, sector or source by that name."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0]) if self.args else ""


def regime_key(name: str) -> str:
    """The name a regime is registered under: ``GB/T 32150``, ``gbt32150``, ``GB/T-32150`` → ``gbt32150``."""
    s = unicodedata.normalize("NFKC", str(name)).lower()
    return re.sub(r"[^0-9a-z\u4e00-\u9fff]+", "", s)


@dataclass(frozen=True)
class EmissionSource:
    """One emission source (排放源类别) of a regime.

    ``sign`` is how the source enters the total: ``+1`` added, ``-1`` subtracted (GB/T 32150's
    exported electricity and heat), ``0`` reported but not in the total.  ``categories`` are the
    factor-library item categories whose records the source accepts (:data:`CATEGORIES`);
    ``aliases`` the names people write for the source in a ledger (燃料燃烧, 外购电力 …).
    ``clause`` says where the regime defines the source's formula.
    """

    key: str
    name_zh: str
    name_en: str
    sign: int
    categories: frozenset
    aliases: tuple = ()
    clause: str = ""

    def __post_init__(self):
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.key or ""):
            raise RegimeError(f"source key '{self.key}' must be a lower-case identifier")
        if self.sign not in (-1, 0, 1):
            raise RegimeError(f"source '{self.key}': sign {self.sign!r} is not -1, 0 or +1")
        object.__setattr__(self, "categories", frozenset(self.categories))
        unknown = self.categories - set(CATEGORIES)
        if not self.categories or unknown:
            raise RegimeError(f"source '{self.key}': categories {sorted(unknown) or '(none)'} are not "
                              f"item categories the engine can account (one of {', '.join(CATEGORIES)})")
        object.__setattr__(self, "aliases", tuple(self.aliases))


@dataclass(frozen=True)
class ReportSection:
    """A section the regime's report must have: its ``content`` (:data:`REPORT_CONTENTS`) and titles."""

    content: str
    title_zh: str
    title_en: str
    clause: str = ""

    def __post_init__(self):
        if self.content not in REPORT_CONTENTS:
            raise RegimeError(f"report section '{self.title_en}': content '{self.content}' is not one "
                              f"the report renderer can fill (one of {', '.join(REPORT_CONTENTS)})")


@dataclass(frozen=True)
class Product:
    """A product of a sector, whose output is the denominator of a product carbon intensity.

    ``column`` is the column of the production table (``monthly.csv``) that holds its output
    (default ``<product>_<unit>``, e.g. ``clinker_t``); ``unit`` is a :mod:`workbench.core.units`
    spelling.  ``note`` says what the output includes (e.g. "cement includes its clinker");
    ``node_id`` the boundary node that makes it, where the enterprise states one.
    """

    product: str
    unit: str = "t"
    name_zh: str = ""
    name_en: str = ""
    column: str = ""
    note: str = ""
    node_id: str = ""

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.product or ""):
            raise RegimeError(f"product code '{self.product}' must be an identifier (letters, digits, _)")
        from workbench.core.units import UnitError, parse_unit

        try:
            parse_unit(self.unit)
        except UnitError as exc:
            raise RegimeError(f"product '{self.product}': {exc}") from None
        if not self.column:
            object.__setattr__(self, "column", f"{self.product}_{self.unit}")

    @classmethod
    def from_mapping(cls, d: Mapping) -> Product:
        """A product from an ``enterprise.json`` entry, e.g. ``{"product": "clinker", "column": "clinker_t",
        "unit": "t", "name_zh": "熟料", "name_en": "clinker"}``; unknown keys are an error."""
        if not isinstance(d, Mapping) or "product" not in d:
            raise RegimeError(f"a product entry needs at least 'product' (got {d!r})")
        extra = set(d) - {"product", "unit", "name_zh", "name_en", "column", "note", "node_id"}
        if extra:
            raise RegimeError(f"product '{d['product']}': unknown key(s) {sorted(extra)}")
        return cls(**{k: str(v) for k, v in d.items() if v is not None})


@dataclass(frozen=True)
class Sector:
    """An industry sector of a regime: its products and its sector-specific process-emission formulas.

    ``industry_codes`` are GB/T 4754-2017 class codes (``C3011`` 水泥制造); ``standard`` the
    sector part that governs it (``GB/T 32151.8``); ``process_formulas`` name → pure function
    (each documents its formula, units and clause).
    """

    key: str
    name_zh: str
    name_en: str
    standard: str
    industry_codes: tuple
    products: tuple
    process_formulas: Mapping = field(default_factory=dict)
    note: str = ""

    def __post_init__(self):
        object.__setattr__(self, "industry_codes", tuple(_industry_code(c) for c in self.industry_codes))
        object.__setattr__(self, "products", tuple(self.products))
        object.__setattr__(self, "process_formulas", MappingProxyType(dict(self.process_formulas)))
        if not all(isinstance(p, Product) for p in self.products):
            raise RegimeError(f"sector '{self.key}': products must be Product objects")
        codes = [p.product for p in self.products]
        if len(set(codes)) != len(codes):
            raise RegimeError(f"sector '{self.key}': duplicate product codes {codes}")
        for name, fn in self.process_formulas.items():
            if not callable(fn):
                raise RegimeError(f"sector '{self.key}': process formula '{name}' is not callable")

    def product(self, code: str) -> Product:
        for p in self.products:
            if p.product == code:
                return p
        raise UnknownRegimeError(f"sector '{self.key}' has no product '{code}' "
                                 f"(products: {', '.join(p.product for p in self.products)})")


def _industry_code(code) -> str:
    """A GB/T 4754 code as written (``C3011``, ``c 3011``) → ``C3011``."""
    return re.sub(r"\s+", "", str(code)).upper()


def _class_digits(code: str) -> str:
    """The class digits of a GB/T 4754 code: ``C3011`` and ``3011`` are the same class."""
    return re.sub(r"^[A-Z]", "", _industry_code(code))


class Regime(ABC):
    """An accounting regime.  Subclasses set the class attributes and implement :meth:`edition`.

    Attributes
    ----------
    name : str
        The name reports show and the registry knows it by (``"GB/T 32150"``).
    aliases : tuple of str
        Other names (``"GB/T 32150-2015"``); :func:`regime_key` normalises all of them.
    title_zh, title_en : str
        The standard's title.
    sources : tuple of EmissionSource
        In the order reports list them.
    report_sections : tuple of ReportSection
        The sections the standard requires, in order.
    report_notes : tuple of str
        Standing statements the standard requires in the report's "other" section.
    total_label_zh, total_label_en : str
        How the report labels the total (e.g. that exported energy is subtracted).
    default_gwp : str
        The GWP set (``AR5`` …) used when the user chooses none.
    sectors : Mapping[str, Sector]
        The sectors the regime defines products and process formulas for.
    """

    name: str = ""
    aliases: tuple = ()
    title_zh: str = ""
    title_en: str = ""
    sources: tuple = ()
    report_sections: tuple = ()
    report_notes: tuple = ()
    total_label_zh: str = "合计"
    total_label_en: str = "Total"
    default_gwp: str = "AR5"
    sectors: Mapping = MappingProxyType({})

    @abstractmethod
    def edition(self, year: int | None) -> str:
        """The edition of the standard that applies to a reporting year (``None``: no year known)."""

    # ---------------------------------------------------------------- derived look-ups
    @property
    def key(self) -> str:
        return regime_key(self.name)

    @property
    def source_keys(self) -> tuple:
        return tuple(s.key for s in self.sources)

    @property
    def signs(self) -> dict:
        """source key → sign (+1, −1, 0)."""
        return {s.key: s.sign for s in self.sources}

    def source_names(self, lang: str = "zh") -> dict:
        """source key → name in ``lang`` (``zh`` or ``en``)."""
        if lang not in ("zh", "en"):
            raise RegimeError(f"language '{lang}' (zh or en)")
        return {s.key: getattr(s, f"name_{lang}") for s in self.sources}

    def source(self, key: str) -> EmissionSource:
        for s in self.sources:
            if s.key == key:
                return s
        raise UnknownRegimeError(f"{self.name} has no emission source '{key}' (one of {', '.join(self.source_keys)})")

    def section(self, content: str) -> ReportSection:
        for s in self.report_sections:
            if s.content == content:
                return s
        raise UnknownRegimeError(f"{self.name} requires no report section of content '{content}'")

    def sector(self, key: str) -> Sector:
        if key in self.sectors:
            return self.sectors[key]
        raise UnknownRegimeError(f"{self.name} defines no sector '{key}' (sectors: {', '.join(self.sectors) or 'none'})")

    def sector_for(self, sector: str | None = None, industry_code: str | None = None,
                   standard: str | None = None) -> Sector | None:
        """The sector named ``sector``, else the one whose GB/T 4754 class (``C3011``) matches
        ``industry_code``, else the one whose standard (``GB/T 32151.8``) matches; ``None`` when the
        regime defines none of them (the caller says so: a regime need not cover every sector).
        """
        if sector and str(sector).strip().lower() in self.sectors:
            return self.sectors[str(sector).strip().lower()]
        if industry_code:
            code = _industry_code(industry_code)
            for s in self.sectors.values():
                if any(_class_digits(code) == _class_digits(c) for c in s.industry_codes):
                    return s
        if standard:
            want = regime_key(standard)
            for s in self.sectors.values():
                if regime_key(s.standard) == want:
                    return s
        return None

    def validate(self) -> Regime:
        """Check the definition; raise :class:`RegimeError` naming what is wrong.  Returns ``self``."""
        if not self.name or not self.key:
            raise RegimeError(f"{type(self).__name__}: a regime needs a name")
        if not self.sources or not all(isinstance(s, EmissionSource) for s in self.sources):
            raise RegimeError(f"{self.name}: sources must be a non-empty tuple of EmissionSource")
        keys = self.source_keys
        if len(set(keys)) != len(keys):
            raise RegimeError(f"{self.name}: duplicate source keys {keys}")
        if not all(isinstance(s, ReportSection) for s in self.report_sections):
            raise RegimeError(f"{self.name}: report_sections must be ReportSection objects")
        contents = [s.content for s in self.report_sections]
        if len(set(contents)) != len(contents):
            raise RegimeError(f"{self.name}: a report content appears twice in {contents}")
        for k, s in self.sectors.items():
            if not isinstance(s, Sector) or s.key != k:
                raise RegimeError(f"{self.name}: sector '{k}' must be a Sector with key '{k}'")
        for y in (None, 2015, 2030):
            if not isinstance(self.edition(y), str):
                raise RegimeError(f"{self.name}: edition({y}) must return a string")
        return self

    def __repr__(self) -> str:
        return f"<Regime {self.name}: {len(self.sources)} sources, sectors {', '.join(self.sectors) or '-'}>"


# ------------------------------------------------------------------------------- registry
ENTRY_POINT_GROUP = "workbench.regimes"
#: The regime used when none is named.
DEFAULT = "GB/T 32150"
#: The workbench's own regimes (entry-point name → ``module:attribute``), as its ``pyproject.toml``
#: declares them; used where that entry point is not installed.
BUILTIN = {"gbt32150": "workbench.regimes.gbt32150:REGIME"}

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
    return entry_points_of(ENTRY_POINT_GROUP, BUILTIN)


def _load(ep) -> Regime:
    """The regime behind an entry point: an instance, a Regime subclass, or a module with ``REGIME``."""
    obj = load_entry_point(ep, RegimeError)
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
