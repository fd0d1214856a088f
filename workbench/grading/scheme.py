"""The grading-scheme interface and registry: how an enterprise's carbon efficiency becomes a grade.

A :class:`GradingScheme` takes one row per (period, enterprise) — CO2 from energy use, CO2
avoided, value added, the industry and benchmark region it is compared within, and whether its
data can be graded at all (``status``) — and returns the same rows with L, the level, the
benchmark, the scheme's comparison value K and the grade.  The Zhejiang 碳效码 method
(:mod:`workbench.grading.zhejiang`) is the default; a plain quintile ranking
(:mod:`workbench.grading.quintile`, *illustrative*) shows the seam.

Schemes are found by name through

1. the schemes registered in this process (:func:`register_scheme`), and
2. the ``workbench.grading_schemes`` entry-point group, so a package adds one by declaring, in its
   ``pyproject.toml``::

       [project.entry-points."workbench.grading_schemes"]
       myscheme = "my_package.grading:SCHEME"   # a GradingScheme instance or subclass, or a module with SCHEME

   (the workbench's own schemes are found the same way, :data:`BUILTIN` standing in for its entry
   points where the package runs from a source tree that was never installed), like the
   accounting regimes (:mod:`workbench.core.regime`).
"""
from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

import pandas as pd

from workbench.core.plugins import entry_points_of, load_entry_point
from workbench.grading.errors import GradingError, UnknownSchemeError

__all__ = [
    "BUILTIN",
    "DEFAULT_SCHEME",
    "ENTRY_POINT_GROUP",
    "INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "STATUS_NAMES",
    "GradingScheme",
    "Provenance",
    "available_schemes",
    "get_scheme",
    "register_scheme",
    "scheme_key",
    "unregister_scheme",
]

#: what a scheme is given: one row per (period, enterprise)
INPUT_COLUMNS = ("period", "enterprise_id", "industry", "scope", "co2_t", "avoided_t", "value_added_10k_cny",
                 "status")
#: what a scheme adds
OUTPUT_COLUMNS = ("l", "level", "benchmark_l", "benchmark_n", "k", "grade")

#: every ``status`` a graded row can carry (only ``ok`` has a grade), with its names
STATUS_NAMES = {
    "ok": ("已评级", "graded"),
    "value_added_missing": ("增加值缺失", "value added missing"),
    "value_added_zero": ("增加值为零", "value added is zero"),
    "value_added_negative": ("增加值为负", "value added is negative"),
    "incomplete_period": ("期内月份不全", "months of the period missing"),
    "no_energy_data": ("无能耗数据", "no energy data in the period"),
    "no_benchmark": ("无行业基准", "no industry benchmark"),
    "no_industry": ("行业代码缺失", "no industry code"),
}

ENTRY_POINT_GROUP = "workbench.grading_schemes"
DEFAULT_SCHEME = "zhejiang"
#: the workbench's own schemes (entry-point name → ``module:attribute``), as its ``pyproject.toml``
#: declares them; used where those entry points are not installed
BUILTIN = {"zhejiang": "workbench.grading.zhejiang:SCHEME", "quintile": "workbench.grading.quintile:SCHEME"}


@dataclass(frozen=True)
class Provenance:
    """Where a rule of a scheme comes from: ``document``, ``clause``, whether the value was checked
    against the official text (``verified``) and a ``note``."""

    what: str
    document: str
    clause: str = ""
    verified: bool = False
    note: str = ""


class GradingScheme(ABC):
    """A way of grading enterprises' carbon efficiency.  Subclasses set the attributes and
    implement :meth:`grade`.

    Attributes
    ----------
    name : str
        The name the registry knows it by (``zhejiang``).
    aliases : tuple of str
        Other names (``碳效码``).
    title_zh, title_en : str
        What pages and reports call it.
    illustrative : bool
        True for a scheme that is no standard (shown with a warning).
    grades : tuple of (int, str, str)
        Each grade with its names zh/en, best first.
    k_meaning : str
        What the scheme's ``k`` column holds (``L / L_industry``, a percentile rank …).
    provenance : tuple of :class:`Provenance`
        Where each rule comes from, with what is unverified.
    industry_level : str
        The industry an enterprise is compared within by default: ``division`` (GB/T 4754 大类,
        ``C30``) or ``class`` (小类, ``C3011``).
    benchmark_scope : str
        The region of the comparison by default: ``province``, ``city`` or ``county``.
    """

    name: str = ""
    aliases: tuple = ()
    title_zh: str = ""
    title_en: str = ""
    illustrative: bool = False
    grades: tuple = ()
    k_meaning: str = ""
    provenance: tuple = ()
    industry_level: str = "division"
    benchmark_scope: str = "province"

    @abstractmethod
    def grade(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Grade ``frame`` (:data:`INPUT_COLUMNS`, one row per period and enterprise; only rows with
        ``status == "ok"`` may be graded or counted in a benchmark).  Returns a copy with
        :data:`OUTPUT_COLUMNS` added and ``status`` changed where the scheme could not grade a row
        (``no_benchmark``); a row whose status is not ``ok`` has no grade (``<NA>``)."""

    def describe(self) -> dict:
        """The scheme as a page or an evidence record shows it (JSON-ready)."""
        return {"name": self.name, "title_zh": self.title_zh, "title_en": self.title_en,
                "illustrative": self.illustrative, "k_meaning": self.k_meaning,
                "grades": [{"grade": g, "name_zh": zh, "name_en": en} for g, zh, en in self.grades],
                "industry_level": self.industry_level, "benchmark_scope": self.benchmark_scope,
                "provenance": [asdict(p) for p in self.provenance]}

    def validate(self) -> GradingScheme:
        if not self.name or not scheme_key(self.name):
            raise GradingError(f"{type(self).__name__}: a grading scheme needs a name")
        if not self.grades:
            raise GradingError(f"grading scheme {self.name}: no grades")
        return self

    def __repr__(self) -> str:
        return f"<GradingScheme {self.name}{' (illustrative)' if self.illustrative else ''}>"


def scheme_key(name) -> str:
    """The name a scheme is registered under: ``Zhejiang``, ``zhe-jiang`` → ``zhejiang``."""
    s = unicodedata.normalize("NFKC", str(name)).lower()
    return re.sub(r"[^0-9a-z\u4e00-\u9fff]+", "", s)


_REGISTERED: dict[str, GradingScheme] = {}


def _keys(scheme: GradingScheme) -> list[str]:
    return list(dict.fromkeys(scheme_key(n) for n in (scheme.name, *scheme.aliases) if scheme_key(n)))


def register_scheme(scheme, *, replace: bool = False) -> GradingScheme:
    """Make ``scheme`` findable by its name and aliases in this process; returns it."""
    if isinstance(scheme, type) and issubclass(scheme, GradingScheme):
        scheme = scheme()
    if not isinstance(scheme, GradingScheme):
        raise GradingError(f"{scheme!r} is not a GradingScheme")
    scheme.validate()
    for k in _keys(scheme):
        other = _REGISTERED.get(k)
        if other is not None and other is not scheme and not replace:
            raise GradingError(f"the scheme name '{k}' is taken by {other.name}; pass replace=True to replace it")
    for k in _keys(scheme):
        _REGISTERED[k] = scheme
    return scheme


def unregister_scheme(scheme) -> None:
    """Forget a registered scheme (by object or name); entry points stay discoverable."""
    target = scheme if isinstance(scheme, GradingScheme) else _REGISTERED.get(scheme_key(scheme))
    for k in [k for k, v in _REGISTERED.items() if v is target]:
        del _REGISTERED[k]


def _entry_points() -> dict:
    return entry_points_of(ENTRY_POINT_GROUP, BUILTIN)


def _load(ep) -> GradingScheme:
    obj = load_entry_point(ep, GradingError)
    if not isinstance(obj, (GradingScheme, type)) and hasattr(obj, "SCHEME"):
        obj = obj.SCHEME
    if isinstance(obj, type) and issubclass(obj, GradingScheme):
        obj = obj()
    if not isinstance(obj, GradingScheme):
        raise GradingError(f"entry point '{ep.name}' ({ep.value}) is not a GradingScheme")
    return obj.validate()


def get_scheme(name=None) -> GradingScheme:
    """The scheme called ``name`` (``None``: :data:`DEFAULT_SCHEME`); a :class:`GradingScheme` is
    checked and returned."""
    if isinstance(name, GradingScheme):
        return name.validate()
    if name is None or not str(name).strip():
        name = DEFAULT_SCHEME
    key = scheme_key(name)
    if key in _REGISTERED:
        return _REGISTERED[key]
    eps = _entry_points()
    broken = []
    for ep_name in sorted(eps, key=lambda n: scheme_key(n) != key):
        try:
            scheme = _load(eps[ep_name])
        except GradingError as exc:
            if scheme_key(ep_name) == key:
                raise
            broken.append(str(exc))
            continue
        if key in _keys(scheme) or key == scheme_key(ep_name):
            if not any(k in _REGISTERED for k in _keys(scheme)):
                register_scheme(scheme)
            return scheme
    raise UnknownSchemeError(f"no grading scheme '{name}' (known: {', '.join(sorted(available_schemes()))})"
                             + (f"; {'; '.join(broken)}" if broken else ""))


def available_schemes() -> dict:
    """Scheme names → where they come from (``registered`` or ``entry point <value>``)."""
    out = {s.name: "registered" for s in _REGISTERED.values()}
    for ep in _entry_points().values():
        if scheme_key(ep.name) not in _REGISTERED:
            out.setdefault(ep.name, f"entry point {ep.value}")
    return out
