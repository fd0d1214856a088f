"""Factor library: versioned default factors with provenance, site-measured overrides.

The library is a set of CSV files shipped in ``workbench/factors/data`` (see ``MANIFEST.md``
there), one row per factor with its value, unit, document, table/clause and year.  Kinds:

* ``ncv`` — net calorific value (GB/T 32150-2015 formula (2), NCV_i)
* ``carbon_content`` — carbon content per unit heat (CC_i, tC/TJ)
* ``oxidation_rate`` — carbon oxidation rate (OF_i, %)
* ``emission_factor`` — grid/heat/carbonate factors (EF, tCO2 per unit of activity)
* ``gwp`` — 100-year global warming potentials (tCO2e per t of gas)

Look-ups take a year and a region.  Regional factors (grid) walk from the province to its grid
region to the national value, and take the latest data year not after the reporting year; every
such choice is written to :attr:`Factor.selection`.  A site-measured value, registered with
:meth:`FactorLibrary.with_override`, wins over any default and keeps its own provenance.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.core.units import Q_, parse_unit

__all__ = [
    "Factor",
    "FactorLibrary",
    "FactorNotFoundError",
    "UnknownItemError",
    "UnknownRegionError",
    "LIBRARY_VERSION",
    "default_library",
]

LIBRARY_VERSION = "2026.11.0"
FACTOR_FILES = ("fuels.csv", "carbonates.csv", "electricity.csv", "heat.csv", "gwp.csv")
SITE = "site"
GWP_SETS = ("SAR", "AR4", "AR5", "AR6")

#: Default factor sets, by item category and kind, in order of preference.
DEFAULT_SETS = {
    ("fuel", "ncv"): ["GBT32151.22-2024"],
    ("fuel", "carbon_content"): ["GBT32151.22-2024"],
    ("fuel", "oxidation_rate"): ["GBT32151.22-2024"],
    ("carbonate", "emission_factor"): ["stoichiometric"],
    ("electricity", "emission_factor"): ["MEE-average", "non-fossil-with-proof"],
    ("heat", "emission_factor"): ["default-heat"],
}


class FactorNotFoundError(WorkbenchError, LookupError):
    """No factor of the asked kind exists for an item."""


class UnknownItemError(WorkbenchError, KeyError):
    """An item name that is neither a library code nor a known alias."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownRegionError(WorkbenchError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Factor:
    """One factor with its provenance; ``selection`` says how the look-up chose it."""

    factor_id: str
    factor_set: str
    item: str
    kind: str
    gas: str
    value: float
    unit: str
    region: str
    year: int | None
    document: str
    table: str
    verified: bool
    note: str = ""
    selection: str = ""

    @property
    def quantity(self):
        """The factor as a pint quantity."""
        return Q_(self.value, parse_unit(self.unit))

    @property
    def provenance(self) -> str:
        parts = [self.document, self.table]
        if self.year:
            parts.append(str(self.year))
        if self.region:
            parts.append(self.region)
        text = ", ".join(p for p in parts if p)
        if not self.verified:
            text += " [UNVERIFIED]"
        return text


def _read_csv(name: str) -> pd.DataFrame:
    path = resources.files("workbench.core.factors") / "data" / name
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


def _normalize_key(text: str) -> str:
    return str(text).strip().lower().replace(" ", "_").replace("-", "_")


class FactorLibrary:
    """Factor tables with look-up by item, kind, year and region.

    Parameters
    ----------
    table : DataFrame, optional
        Factor rows (columns of the shipped CSV files).  Defaults to the shipped library.
    gwp_set : str
        GWP set used for non-CO2 gases: ``SAR``, ``AR4``, ``AR5`` (default) or ``AR6``.
    factor_sets : dict, optional
        Overrides of :data:`DEFAULT_SETS` by (category, kind), e.g. to choose
        ``carbon-market-power-2023-2025`` for electricity.
    """

    def __init__(self, table: pd.DataFrame | None = None, *, gwp_set: str = "AR5",
                 factor_sets: dict | None = None, items: pd.DataFrame | None = None,
                 regions: pd.DataFrame | None = None):
        if table is None:
            table = pd.concat([_read_csv(f) for f in FACTOR_FILES], ignore_index=True)
        table = table.copy()
        table["value"] = table["value"].astype("float64")
        table["year"] = pd.to_numeric(table["year"].replace("", None), errors="coerce").astype("Int64")
        table["verified"] = table["verified"].astype(str).str.lower().eq("true")
        for col in ("region", "note", "table", "document", "gas"):
            table[col] = table[col].fillna("").astype(str)
        if table["factor_id"].duplicated().any():
            dup = table.loc[table["factor_id"].duplicated(), "factor_id"].tolist()
            raise ValueError(f"duplicate factor ids: {dup}")
        gwp_set = str(gwp_set).upper()
        if gwp_set not in GWP_SETS:
            raise ValueError(f"unknown GWP set '{gwp_set}' (choose one of {', '.join(GWP_SETS)})")
        self.table = table
        self.gwp_set = gwp_set
        self.factor_sets = {**DEFAULT_SETS, **(factor_sets or {})}
        self.items = items if items is not None else _read_csv("items.csv")
        self.regions = regions if regions is not None else _read_csv("regions.csv")
        self.version = LIBRARY_VERSION
        self._aliases = self._build_aliases()
        self._region_alias = self._build_region_aliases()
        self._cache: dict = {}

    # ---------------------------------------------------------------- items and regions
    def _build_aliases(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for row in self.items.itertuples(index=False):
            names = [row.item, row.name_zh, row.name_en, *str(row.aliases).split("|")]
            for name in names:
                if name:
                    out.setdefault(_normalize_key(name), row.item)
        return out

    def _build_region_aliases(self) -> dict[str, str]:
        out = {}
        for row in self.regions.itertuples(index=False):
            zh = row.name_zh
            names = {row.region, zh, row.name_en, zh.removesuffix("电网"), zh.removesuffix("省"),
                     zh.removesuffix("市")}
            for name in names:
                if name:
                    out.setdefault(_normalize_key(name), row.region)
        for name in ("national", "全国", "china", "cn"):
            out[_normalize_key(name)] = "CN"
        return out

    def item_code(self, name: str) -> str:
        """Library code for an item code, Chinese or English name or alias (``原煤`` → ``raw_coal``)."""
        key = _normalize_key(name)
        if key in self._aliases:
            return self._aliases[key]
        raise UnknownItemError(f"unknown item '{name}': not in the factor library (see items.csv)")

    def item_info(self, item: str) -> dict:
        row = self.items.loc[self.items["item"] == self.item_code(item)].iloc[0]
        return row.to_dict()

    def category(self, item: str) -> str:
        return self.item_info(item)["category"]

    def region_code(self, name: str | None) -> str:
        """Region code for ``CN-ZJ``, ``浙江``, ``华东``, ``national`` …; ``None`` → ``CN``."""
        if name is None or str(name).strip() == "":
            return "CN"
        key = _normalize_key(name)
        if key in self._region_alias:
            return self._region_alias[key]
        raise UnknownRegionError(f"unknown region '{name}' (use CN, a grid region such as 华东 or a province such as CN-ZJ/浙江)")

    def region_chain(self, region: str) -> list[str]:
        """The region, its grid region, …, up to ``CN``."""
        parents = dict(zip(self.regions["region"], self.regions["parent"]))
        chain = [self.region_code(region)]
        while parents.get(chain[-1]):
            chain.append(parents[chain[-1]])
        if chain[-1] != "CN":
            chain.append("CN")
        return chain

    # ---------------------------------------------------------------- look-up
    def preferred_sets(self, item: str, kind: str, factor_set: str | None = None) -> list[str]:
        category = self.category(item)
        if kind == "gwp":
            sets = [self.gwp_set]
        else:
            sets = list(self.factor_sets.get((category, kind), []))
            if not sets:  # any set that has the item
                sub = self.table[(self.table["item"] == item) & (self.table["kind"] == kind)]
                sets = list(dict.fromkeys(sub["factor_set"]))
        if factor_set:
            sets = [factor_set] + [s for s in sets if s != factor_set]
        return [SITE] + sets

    def lookup(self, item: str, kind: str, *, year: int | None = None, region: str | None = None,
               factor_set: str | None = None, facility: str | None = None) -> Factor:
        """The factor of ``kind`` for ``item`` in reporting ``year`` and ``region``.

        Order: a site-measured override (for the facility, else for the enterprise) → the
        requested ``factor_set`` → the default sets.  Within a set, regional factors are taken
        for the region, else its grid region, else national, and for the latest data year not
        after ``year`` (the earliest available otherwise); the choice is stated in
        :attr:`Factor.selection`.
        """
        key = (item, kind, year, region, factor_set, facility)
        if key not in self._cache:
            self._cache[key] = self._lookup(*key)
        return self._cache[key]

    def _lookup(self, item, kind, year, region, factor_set, facility) -> Factor:
        item = self.item_code(item)
        if "_by_item_kind" not in self.__dict__ or self._by_item_kind[0] is not self.table:
            self._by_item_kind = (self.table, dict(tuple(self.table.groupby(["item", "kind"]))))
        cand = self._by_item_kind[1].get((item, kind), self.table.iloc[:0])
        wanted = self.preferred_sets(item, kind, factor_set)
        notes = []
        if factor_set and factor_set not in set(cand["factor_set"]):
            notes.append(f"set '{factor_set}' has no {kind} for {item}; default set used")
        for fset in wanted:
            sub = cand[cand["factor_set"] == fset]
            if fset == SITE:
                scoped = sub[sub["region"].isin([f"site:{facility}" if facility else None, "site:"])]
                sub = scoped.sort_values("region", ascending=False)  # facility scope first
                if len(sub):
                    row = sub.iloc[0]
                    return self._factor(row, "site-measured value overrides the default")
                continue
            if sub.empty:
                continue
            chosen = self._choose(sub, year, region)
            if chosen is not None:
                row, how = chosen
                return self._factor(row, "; ".join(x for x in notes + [how] if x))
        raise FactorNotFoundError(f"no {kind} factor for item '{item}' in sets {wanted[1:]}")

    def _choose(self, sub: pd.DataFrame, year, region):
        regional = sub["region"].ne("").any()
        chain = self.region_chain(region or "CN") if regional else [""]
        if sub["year"].nunique() <= 1:  # one edition of the value: the reporting year is moot
            year = None
        # first pass: a value for the reporting year or earlier, walking up the regions;
        # second pass: the earliest later value, when nothing that old was published
        for later in (False, True):
            for reg in chain:
                rows = sub[sub["region"] == reg] if regional else sub
                dated = rows[rows["year"].notna()].sort_values("year")
                if rows.empty:
                    continue
                if year is None or dated.empty:
                    row = (dated if len(dated) else rows).iloc[-1]
                    how = (f"no reporting year given; latest data year {row['year']} used"
                           if dated["year"].nunique() > 1 else "")
                elif not later:
                    past = dated[dated["year"] <= year]
                    if past.empty:
                        continue
                    row = past.iloc[-1]
                    how = "" if row["year"] == year else (
                        f"no {year} value published; latest data year {row['year']} used")
                else:
                    row = dated.iloc[0]
                    how = f"no value for {year} or earlier; earliest data year {row['year']} used"
                if regional and reg != chain[0]:
                    how = "; ".join(h for h in (f"no factor for {chain[0]}; {reg} used", how) if h)
                return row, how
        return None

    def _factor(self, row: pd.Series, selection: str) -> Factor:
        year = row["year"]
        return Factor(
            factor_id=row["factor_id"], factor_set=row["factor_set"], item=row["item"],
            kind=row["kind"], gas=row["gas"] or "CO2", value=float(row["value"]), unit=row["unit"],
            region=row["region"], year=None if pd.isna(year) else int(year),
            document=row["document"], table=row["table"], verified=bool(row["verified"]),
            note=row["note"], selection=selection,
        )

    # ---------------------------------------------------------------- overrides
    def with_override(self, item: str, kind: str, value: float, unit: str, *, document: str,
                      table: str = "", year: int | None = None, facility: str | None = None,
                      note: str = "", factor_id: str | None = None) -> "FactorLibrary":
        """A new library in which a site-measured value replaces the default.

        ``document``/``table`` record where the measurement is written down (lab report,
        supplier certificate); ``facility`` limits it to one boundary node.
        """
        item = self.item_code(item)
        parse_unit(unit)  # fail early on a bad unit
        if not document:
            raise ValueError("a site-measured factor needs its source document")
        scope = f"site:{facility or ''}"
        fid = factor_id or f"site:{facility or 'enterprise'}:{item}:{kind}"
        row = dict(factor_id=fid, factor_set=SITE, item=item, kind=kind, gas="CO2",
                   value=float(value), unit=unit, region=scope,
                   year=year, document=document, table=table, verified=True, note=note)
        table_ = self.table[self.table["factor_id"] != fid]
        new = pd.concat([table_, pd.DataFrame([row])], ignore_index=True)
        new["year"] = new["year"].astype("Int64")
        lib = FactorLibrary.__new__(FactorLibrary)
        lib.__dict__.update(self.__dict__)
        lib.table = new
        lib._cache = {}
        return lib

    @property
    def overrides(self) -> pd.DataFrame:
        """Site-measured factors registered in this library, with their provenance."""
        return self.table[self.table["factor_set"] == SITE].reset_index(drop=True)

    def with_gwp(self, gwp_set: str) -> "FactorLibrary":
        lib = FactorLibrary.__new__(FactorLibrary)
        lib.__dict__.update(self.__dict__)
        gwp_set = str(gwp_set).upper()
        if gwp_set not in GWP_SETS:
            raise ValueError(f"unknown GWP set '{gwp_set}' (choose one of {', '.join(GWP_SETS)})")
        lib.gwp_set = gwp_set
        lib._cache = {}
        return lib

    def factor_sets_table(self) -> pd.DataFrame:
        """One row per factor set: kinds, items, documents, years."""
        g = self.table.groupby("factor_set")
        return pd.DataFrame({
            "factors": g.size(),
            "kinds": g["kind"].agg(lambda s: ", ".join(sorted(set(s)))),
            "documents": g["document"].agg(lambda s: " | ".join(dict.fromkeys(s))),
            "years": g["year"].agg(lambda s: ", ".join(str(y) for y in sorted(set(s.dropna())))),
        }).reset_index()

    def __repr__(self) -> str:
        return (f"<FactorLibrary {self.version}: {len(self.table)} factors in "
                f"{self.table['factor_set'].nunique()} sets, GWP {self.gwp_set}>")


@lru_cache(maxsize=8)
def default_library(gwp_set: str = "AR5") -> FactorLibrary:
    """The shipped library (cached)."""
    return FactorLibrary(gwp_set=gwp_set)


def replace(factor: Factor, **changes) -> Factor:
    return dataclasses.replace(factor, **changes)
