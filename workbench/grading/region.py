"""A region's enterprises, energy and value added, and their CO2 through the accounting engine.

A *region directory* is what ``workbench demo region`` writes (``workbench/demo/region.py``) — or
the same tables from a statistics bureau:

=====================  ======================================================================
``enterprises.csv``    ``enterprise_id``, ``industry_code`` (GB/T 4754, e.g. ``C3011``), ``region``
                       (ISO 3166-2 province), ``county_code`` (GB/T 2260); optional
                       ``name_zh``, ``name_en``, ``county_name_zh``, ``city_code``, ``city_name_zh``,
                       ``industry_name_zh``, ``sector``, ``coal_ncv_gj_per_t`` (site NCV of raw coal)
``energy.csv``         ``enterprise_id``, ``period`` (YYYY-MM), ``item`` (factor-library code:
                       ``grid``, ``natural_gas``, ``raw_coal``, ``heat`` …), ``quantity``, ``unit``
``value_added.csv``    ``enterprise_id``, ``period``, ``value_added_10k_cny`` (万元, income method;
                       empty = not reported)
``zero_carbon.csv``    optional: ``enterprise_id``, ``period``, ``item`` (``grid``), ``quantity``,
                       ``unit`` — own zero-carbon electricity (hydro, wind, PV) counted in the
                       energy use, deducted at the grid factor of the same period and region
``counties.csv``       optional: the province's counties (names for the pages)
=====================  ======================================================================

(``energy.parquet`` / ``value_added.parquet`` are read where the CSV is absent.)

CO2 is never multiplied here: every energy record becomes an activity record (source from the item's
category in the factor library — fuel → combustion, electricity → purchased electricity, heat →
purchased heat; the enterprise's site NCV on raw coal) and goes through
:func:`workbench.core.activity.normalize_activity` and :func:`workbench.accounting.account` with the
factor library, so each tCO2 carries its factor ids and provenance in the ledger.  Bad input is a
:class:`~workbench.grading.errors.GradingDataError` naming file, row and column.
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.core.encodings import not_text
from workbench.core.errors import DataError, Problem
from workbench.grading.errors import GradingDataError, GradingError

__all__ = [
    "ENERGY_SOURCES",
    "RegionData",
    "RegionEmissions",
    "clear_cache",
    "load_region",
    "read_region",
    "region_activity",
    "region_emissions",
]

#: the ledger's sources that are CO2 from energy use (combustion, purchased and exported electricity/heat)
ENERGY_SOURCES = ("combustion", "purchased_electricity", "purchased_heat", "exported_electricity", "exported_heat")
_SOURCE_OF_CATEGORY = {"fuel": "combustion", "electricity": "purchased_electricity", "heat": "purchased_heat"}

_REQUIRED = {
    "enterprises": ("enterprise_id", "industry_code", "region", "county_code"),
    "energy": ("enterprise_id", "period", "item", "quantity", "unit"),
    "value_added": ("enterprise_id", "period", "value_added_10k_cny"),
    "zero_carbon": ("enterprise_id", "period", "item", "quantity", "unit"),
    "counties": ("county_code",),
}
_OPTIONAL_FILES = ("zero_carbon", "counties")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_INDUSTRY = re.compile(r"^[A-T]\d{2}(\d{1,2})?$")


@dataclass
class RegionData:
    """A region's tables as read and checked; ``rows`` of each monthly table are the file's rows
    (header = row 1), ``files`` maps each file read to its SHA-256."""

    root: Path
    enterprises: pd.DataFrame
    energy: pd.DataFrame
    value_added: pd.DataFrame
    zero_carbon: pd.DataFrame
    counties: pd.DataFrame
    files: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("|".join(f"{k}={v}" for k, v in sorted(self.files.items())).encode()).hexdigest()

    @property
    def months(self) -> list[str]:
        return sorted(set(self.value_added["period"]) | set(self.energy["period"]))


@dataclass
class RegionEmissions:
    """The region's energy accounted: ``ledger`` (one row per energy record, the engine's ledger
    with ``enterprise_id``), ``avoided_ledger`` (own zero-carbon electricity, if any) and
    ``monthly`` — one row per enterprise and month that has energy or value added: ``co2_t``,
    ``avoided_t``, ``energy_records``, ``value_added_10k_cny`` (NaN: not reported),
    ``value_added_row``, ``unverified_factor`` (a record used a factor marked UNVERIFIED)."""

    data: RegionData
    ledger: pd.DataFrame
    avoided_ledger: pd.DataFrame
    monthly: pd.DataFrame


# ----------------------------------------------------------------------------------- reading
def _read_table(path: Path, required: tuple) -> pd.DataFrame:
    """A CSV (or Parquet) table as strings, checked for being a table with the required columns."""
    name = str(path)
    if path.suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure is bad input, named
            raise GradingDataError([Problem(name, None, None, f"not a readable Parquet table ({type(exc).__name__})")]) from None
        df = df.astype({c: object for c in df.columns if c not in ("quantity", "value_added_10k_cny")})
    else:
        raw = path.read_bytes()
        why = not_text(raw)
        if why:
            raise GradingDataError([Problem(name, None, None, why)])
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = raw.decode("gb18030")
            except UnicodeDecodeError:
                raise GradingDataError([Problem(name, None, None, "not UTF-8 or GB18030 text")]) from None
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else "not a CSV table"
            raise GradingDataError([Problem(name, None, None, f"not a CSV table: {msg}")]) from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise GradingDataError([Problem(name, 1, None, f"missing column(s) {', '.join(missing)} "
                                        f"(needs {', '.join(required)})")])
    df = df.reset_index(drop=True)
    df["row"] = np.arange(len(df)) + 2          # as a spreadsheet shows it (header on row 1)
    return df


def _find(root: Path, stem: str) -> Path | None:
    for suffix in (".csv", ".parquet"):
        p = root / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def _text(s: pd.Series) -> pd.Series:
    if not pd.api.types.is_string_dtype(s) or s.isna().any():
        s = s.astype(object).where(s.notna(), "").astype(str)
    return s.str.strip()


def _numbers(df: pd.DataFrame, col: str, name: str, problems: list, *, empty_ok: bool) -> np.ndarray:
    raw = df[col]
    if pd.api.types.is_numeric_dtype(raw):
        return raw.to_numpy(dtype="float64")
    text = _text(raw)
    num = pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce").to_numpy(dtype="float64")
    bad = np.isnan(num) & text.ne("").to_numpy() & ~text.str.lower().isin(["nan", "na", "n/a"]).to_numpy()
    if not empty_ok:
        bad |= text.eq("").to_numpy()
    for r, v in zip(df["row"].to_numpy()[bad][:20], text.to_numpy()[bad][:20]):
        problems.append(Problem(name, int(r), col, f"'{v}' is not a number" if v else "empty"))
    return num


def _check_keys(df: pd.DataFrame, name: str, known: set, problems: list) -> None:
    eid = _text(df["enterprise_id"])
    unknown = pd.Index(list(known)).get_indexer(eid.to_numpy(dtype=object)) < 0
    for r, v in zip(df["row"].to_numpy()[unknown][:20], eid.to_numpy()[unknown][:20]):
        problems.append(Problem(name, int(r), "enterprise_id",
                                f"enterprise '{v}' is not in enterprises.csv" if v else "empty enterprise id"))
    period = _text(df["period"])
    distinct = pd.unique(period.to_numpy(dtype=object))
    bad_values = [p for p in distinct if not _MONTH.match(p)]
    bad = period.isin(bad_values).to_numpy() if bad_values else np.zeros(len(period), dtype=bool)
    for r, v in zip(df["row"].to_numpy()[bad][:20], period.to_numpy()[bad][:20]):
        problems.append(Problem(name, int(r), "period", f"'{v}' is not a month (YYYY-MM)"))
    df["enterprise_id"], df["period"] = eid, period


def read_region(root) -> RegionData:
    """Read and check a region directory (see the module's docstring).

    Raises :class:`~workbench.grading.errors.GradingDataError` naming file, row and column for a
    file missing or unreadable, a column missing, an enterprise unknown or repeated, a month or a
    number that cannot be read, a value added given twice for one month."""
    root = Path(root)
    if not root.is_dir():
        raise GradingDataError([Problem(str(root), None, None, "not a region directory")])
    paths = {}
    for stem in _REQUIRED:
        p = _find(root, stem)
        if p is None and stem not in _OPTIONAL_FILES:
            raise GradingDataError([Problem(str(root / f"{stem}.csv"), None, None,
                                            "missing (a region directory has enterprises.csv, energy.csv, "
                                            "value_added.csv)")])
        if p is not None:
            paths[stem] = p
    tables = {stem: _read_table(p, _REQUIRED[stem]) for stem, p in paths.items()}
    problems: list[Problem] = []
    # enterprises
    ent = tables["enterprises"]
    en = str(paths["enterprises"])
    for col in ("enterprise_id", "industry_code", "region", "county_code", "city_code", "name_zh", "name_en",
                "county_name_zh", "city_name_zh", "industry_name_zh", "sector"):
        ent[col] = _text(ent[col]) if col in ent.columns else ""
    ent["industry_code"] = ent["industry_code"].str.upper().str.replace(r"\s+", "", regex=True)
    for mask, col, msg in (
        (ent["enterprise_id"].eq(""), "enterprise_id", lambda r: "empty enterprise id"),
        (ent["enterprise_id"].duplicated(keep="first") & ent["enterprise_id"].ne(""), "enterprise_id",
         lambda r: f"enterprise '{r.enterprise_id}' appears twice"),
        (ent["industry_code"].ne("") & ~ent["industry_code"].str.match(_INDUSTRY), "industry_code",
         lambda r: f"'{r.industry_code}' is not a GB/T 4754 code (C3011, C30 …)"),
    ):
        for r in ent[mask.to_numpy()].head(20).itertuples():
            problems.append(Problem(en, int(r.row), col, msg(r)))
    if "coal_ncv_gj_per_t" in ent.columns:
        ncv = _numbers(ent, "coal_ncv_gj_per_t", en, problems, empty_ok=True)
        for r in ent["row"].to_numpy()[ncv <= 0][:20]:
            problems.append(Problem(en, int(r), "coal_ncv_gj_per_t", "a net calorific value must be positive"))
        ent["coal_ncv_gj_per_t"] = ncv
    else:
        ent["coal_ncv_gj_per_t"] = np.nan
    known = set(ent["enterprise_id"])
    # monthly tables
    for stem in ("energy", "value_added", "zero_carbon"):
        if stem not in tables:
            continue
        t, name = tables[stem], str(paths[stem])
        _check_keys(t, name, known, problems)
        if stem == "value_added":
            t["value_added_10k_cny"] = _numbers(t, "value_added_10k_cny", name, problems, empty_ok=True)
            dup = t.duplicated(["enterprise_id", "period"], keep="first").to_numpy()
            for r in t[dup].head(20).itertuples():
                problems.append(Problem(name, int(r.row), "period",
                                        f"value added of {r.enterprise_id} for {r.period} given twice"))
        else:
            t["quantity"] = _numbers(t, "quantity", name, problems, empty_ok=False)
            t["item"], t["unit"] = _text(t["item"]), _text(t["unit"])
    if problems:
        raise GradingDataError(problems)
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in (*_REQUIRED["zero_carbon"], "row")})
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths.values()}
    counties = tables.get("counties", pd.DataFrame({"county_code": pd.Series(dtype=object)}))
    return RegionData(root, ent, tables["energy"], tables["value_added"], tables.get("zero_carbon", empty),
                      counties, files)


# ----------------------------------------------------------------------------------- accounting
def region_activity(data: RegionData, table: str = "energy", library=None) -> pd.DataFrame:
    """The activity records of a monthly energy table (``energy`` or ``zero_carbon``), one per row
    in the file's order: ``record_id`` (``file:row``), ``facility`` = the enterprise, ``period``,
    ``source`` from the item's category in the factor library, ``item``, ``quantity``, ``unit``,
    ``region`` (the enterprise's province), the site NCV on raw coal, ``document`` (file and row).
    An item the factor library does not know is refused (file, row, column 'item')."""
    from workbench.core.factors import default_library

    lib = library or default_library()
    t = data.energy if table == "energy" else data.zero_carbon
    name = (Path(data.root) / f"{table}.csv").name
    where = str(Path(data.root) / f"{table}.csv")
    cat = dict(zip(lib.items["item"], lib.items["category"]))
    item = t["item"].astype(str)
    canon = item.map({i: (i if i in cat else _item_code(lib, i)) for i in pd.unique(item)})
    category = canon.map(cat)
    source = category.map(_SOURCE_OF_CATEGORY)
    bad = source.isna().to_numpy()
    if bad.any():
        raise GradingDataError([Problem(where, int(r), "item", f"'{v}' is not an energy item of the factor library "
                                        "(fuels, grid electricity, heat)")
                                for r, v in zip(t["row"].to_numpy()[bad][:20], item.to_numpy()[bad][:20])])
    ent = data.enterprises.set_index("enterprise_id")
    eid = t["enterprise_id"].to_numpy(dtype=object)
    coal = (canon == "raw_coal").to_numpy()
    ncv = np.where(coal, pd.Series(eid).map(ent["coal_ncv_gj_per_t"]).to_numpy(dtype="float64"), np.nan)
    rows = t["row"].to_numpy()
    return pd.DataFrame({
        "record_id": [f"{name}:{r}" for r in rows],
        "facility": eid,
        "period": t["period"].to_numpy(dtype=object),
        "source": source.to_numpy(dtype=object) if table == "energy" else "purchased_electricity",
        "item": canon.to_numpy(dtype=object),
        "quantity": t["quantity"].to_numpy(dtype="float64"),
        "unit": t["unit"].to_numpy(dtype=object),
        "region": pd.Series(eid).map(ent["region"]).to_numpy(dtype=object),
        "ncv": ncv,
        "ncv_unit": np.where(np.isfinite(ncv), "GJ/t", None),
        "document": [f"{name} row {r}" + (" (site NCV from enterprises.csv)" if c else "") for r, c in zip(rows, coal)],
    })


def _item_code(lib, text: str) -> str:
    from workbench.core.factors import UnknownItemError

    try:
        return lib.item_code(text)
    except UnknownItemError:    # stays as written and is refused by the caller
        return text


def _account(data: RegionData, table: str, library) -> pd.DataFrame:
    from workbench.accounting import AccountingError, account
    from workbench.core.activity import normalize_activity

    t = data.energy if table == "energy" else data.zero_carbon
    if not len(t):
        return pd.DataFrame(columns=["enterprise_id", "record_id", "period", "source", "item", "quantity", "unit",
                                     "tco2e", "emission_t", "notes", "factor_ids", "document"])
    activity = region_activity(data, table, library)
    name = str(Path(data.root) / f"{table}.csv")
    try:
        records = normalize_activity(activity, origin=name, library=library, first_row=2)
        ledger = account(records, library)
    except DataError as exc:   # already names file, row and column
        raise GradingDataError(exc.problems) from None
    except AccountingError as exc:   # "<file>, row N, column 'C': …"
        raise GradingError(str(exc)) from None
    ledger.insert(0, "enterprise_id", ledger["facility"].to_numpy())
    return ledger


def region_emissions(data: RegionData, library=None) -> RegionEmissions:
    """Account the region's energy (and own zero-carbon electricity) with the engine; monthly CO2
    from energy use per enterprise beside the value added (see :class:`RegionEmissions`)."""
    from workbench.core.factors import default_library

    lib = library or default_library()
    ledger = _account(data, "energy", lib)
    avoided = _account(data, "zero_carbon", lib)
    energy_rows = ledger[ledger["source"].isin(ENERGY_SOURCES) & ledger["gas"].eq("CO2")] if len(ledger) else ledger
    keys = ["enterprise_id", "period"]
    energy_rows = energy_rows.assign(
        unverified=energy_rows["notes"].astype(str).str.contains("UNVERIFIED", regex=False).to_numpy())
    e = energy_rows.groupby(keys, sort=False).agg(
        co2_t=("tco2e", "sum"), energy_records=("tco2e", "size"), unverified_factor=("unverified", "any")).reset_index()
    a = avoided.groupby(keys, sort=False)["emission_t"].sum().rename("avoided_t").reset_index() if len(avoided) \
        else pd.DataFrame({"enterprise_id": [], "period": [], "avoided_t": []})
    va = data.value_added[[*keys, "value_added_10k_cny", "row"]].rename(columns={"row": "value_added_row"})
    monthly = e.merge(a, on=keys, how="outer").merge(va, on=keys, how="outer")
    monthly["co2_t"] = monthly["co2_t"].fillna(0.0)
    monthly["avoided_t"] = monthly["avoided_t"].fillna(0.0)
    monthly["energy_records"] = monthly["energy_records"].fillna(0).astype("int64")
    monthly["unverified_factor"] = monthly["unverified_factor"].fillna(False).astype(bool)
    monthly["value_added_row"] = monthly["value_added_row"].astype("Int64")
    monthly = monthly.sort_values(keys, kind="stable").reset_index(drop=True)
    return RegionEmissions(data, ledger, avoided, monthly)


_CACHE: dict = {}
_CACHE_SIZE = 4


def _stat_key(root: Path) -> tuple:
    out = []
    for stem in _REQUIRED:
        p = _find(root, stem)
        if p is not None:
            st = p.stat()
            out.append((p.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def load_region(root, library=None) -> RegionEmissions:
    """:func:`read_region` + :func:`region_emissions`, kept for the process while the files are
    unchanged (same names, sizes and modification times) — pages and notebooks re-grade without
    re-accounting.  A ``library`` other than the default is never cached."""
    root = Path(root)
    key = (str(root.resolve()), _stat_key(root)) if root.is_dir() else None
    if library is None and key in _CACHE:
        return _CACHE[key]
    em = region_emissions(read_region(root), library)
    if library is None and key is not None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = em
    return em


def clear_cache() -> None:
    """Forget every region :func:`load_region` kept."""
    _CACHE.clear()
