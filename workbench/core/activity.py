"""Activity records (活动数据): reading, normalising and validating them.

One path for every source of activity data — the calc template (CSV/XLSX), the demo ledger, later
the connectors — so that every record is checked the same way.  A bad record raises
:class:`ActivityDataError` naming the file, the row (as a spreadsheet shows it: header = row 1)
and the column; nothing is dropped or "fixed" silently.

Every record keeps its quantity and unit as written (``1.2``, ``万千瓦时``) and gets beside them
``quantity_normalized`` in ``unit_normalized``, the unit its factor is expressed per
(:func:`factor_basis`): grid electricity 1.2 万千瓦时 → 12 MWh (tCO2/MWh), raw coal 50 吨 → 50 t
(NCV in GJ/t), natural gas 30 000 Nm3 → 3 10^4 Nm3 (NCV in GJ/(10^4 Nm3)), a fuel written in heat
units → GJ (its carbon content applies per heat), heat → GJ, carbonates and gases → t.  A site
factor given on the record (``ncv_unit``, ``ef_unit``) is the one the quantity is multiplied by,
so its unit decides.  Converted with pint (:func:`workbench.core.units.conversion_factor`); a
quantity whose unit does not convert to it is a problem of the ``unit`` column.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.core.errors import DataError, Problem
from workbench.core.factors import FactorLibrary, UnknownItemError, default_library
from workbench.core.regime import default_regime, get_regime
from workbench.core.units import (
    UnitError,
    conversion_factor,
    converts,
    parse_unit,
    ureg,
)

__all__ = [
    "ActivityDataError",
    "Problem",
    "COLUMNS",
    "read_activity",
    "normalize_activity",
    "normalized_quantities",
    "factor_basis",
    "per_unit",
    "HEADER_ALIASES",
]

#: Canonical columns of an activity record.
REQUIRED = ("source", "item", "quantity", "unit")
OPTIONAL = ("record_id", "facility", "node_id", "period", "region", "gas", "data_tier", "document",
            "ncv", "ncv_unit", "carbon_content", "carbon_content_unit", "oxidation_rate",
            "emission_factor", "ef_unit", "purity", "value_added")
COLUMNS = REQUIRED + OPTIONAL

HEADER_ALIASES = {
    "source": ["来源", "排放源", "排放源类别", "排放类别", "类别", "分类", "source_category"],
    "item": ["品种", "能源品种", "燃料品种", "物料", "物料名称", "名称", "项目", "fuel", "material"],
    "quantity": ["数量", "消耗量", "用量", "活动数据", "活动水平", "activity_data", "amount"],
    "unit": ["单位", "计量单位"],
    "record_id": ["记录编号", "编号", "序号", "id"],
    "facility": ["设施", "设施名称", "车间", "工厂"],
    "node_id": ["节点", "边界节点", "node"],
    "period": ["期间", "月份", "统计期", "核算期", "时间", "date", "month"],
    "region": ["地区", "区域", "省份", "电网区域"],
    "gas": ["气体", "温室气体", "气体种类"],
    "data_tier": ["数据级别", "数据类型", "tier"],
    "document": ["数据来源", "来源文件", "凭证", "依据", "source_document"],
    "ncv": ["低位发热量", "低位热值", "net_calorific_value"],
    "ncv_unit": ["低位发热量单位", "低位热值单位"],
    "carbon_content": ["单位热值含碳量", "含碳量", "cc"],
    "carbon_content_unit": ["单位热值含碳量单位", "含碳量单位", "cc_unit"],
    "oxidation_rate": ["碳氧化率", "氧化率", "of"],
    "emission_factor": ["排放因子", "ef"],
    "ef_unit": ["排放因子单位", "emission_factor_unit"],
    "purity": ["纯度", "含量", "碳酸盐含量"],
    "value_added": ["增加值", "工业增加值", "增加值(万元)", "增加值（万元）"],
}

# SOURCE_ALIASES (source → names people write) and SOURCE_CATEGORIES (source → item categories it
# accepts) are the default regime's (GB/T 32150), looked up when first asked for (module
# __getattr__ below); normalize_activity takes them from its ``regime``.
#: units an item of each category may be measured in (by dimension)
CATEGORY_UNITS = {
    "fuel": ("t", "Nm3", "GJ"),
    "carbonate": ("t",),
    "gas": ("t",),
    "electricity": ("MWh",),
    "heat": ("GJ",),
}
DATA_TIERS = ("primary", "secondary", "proxy")
_TIER_ALIASES = {"一级": "primary", "实测": "primary", "二级": "secondary", "三级": "proxy",
                 "替代": "proxy", "估算": "proxy"}


def _key(text) -> str:
    s = str(text).strip().lower()
    s = re.sub(r"[\s\-]+", "_", s)
    return s.replace("（", "(").replace("）", ")")


_HEADER_MAP = {_key(c): c for c in COLUMNS}
for _canon, _names in HEADER_ALIASES.items():
    for _n in _names:
        _HEADER_MAP[_key(_n)] = _canon


def _source_map(regime) -> dict:
    """Source names as written (key, zh and en names, aliases) → the regime's source key."""
    out = {}
    for s in regime.sources:
        for name in (s.key, *s.aliases):
            out.setdefault(_key(name), s.key)
    return out


@functools.cache
def _default_source_map() -> dict:
    return _source_map(default_regime())


def __getattr__(name):
    if name == "SOURCE_ALIASES":
        return {s.key: list(s.aliases) for s in default_regime().sources}
    if name == "SOURCE_CATEGORIES":
        return {s.key: set(s.categories) for s in default_regime().sources}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ActivityDataError(DataError):
    """Bad activity data.  ``str()`` is the first problem; ``problems`` lists them all."""


@dataclass
class _Checker:
    origin: str
    header: dict  # canonical column -> header as written in the file
    first_row: int = 2
    problems: list = field(default_factory=list)

    def add(self, idx, column, message):
        rows = np.atleast_1d(idx)
        for r in rows[:50]:
            self.problems.append(Problem(self.origin, int(r) + self.first_row, self.header.get(column, column), message))

    def fail_if_any(self):
        if self.problems:
            raise ActivityDataError(self.problems)


# ------------------------------------------------------------------------------- reading
def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        try:
            sheets = pd.read_excel(path, sheet_name=None, dtype=object)
        except Exception as exc:  # openpyxl raises many kinds on corrupt files
            raise ActivityDataError([Problem(str(path), None, None, f"cannot read workbook: {exc}")]) from None
        if not sheets:
            raise ActivityDataError([Problem(str(path), None, None, "the workbook has no sheets")])
        for name in ("activity", "活动数据", "data"):
            if name in sheets:
                return sheets[name]
        return next(iter(sheets.values()))
    if suffix in (".csv", ".txt", ""):
        raw = path.read_bytes()
        if not raw.strip():
            raise ActivityDataError([Problem(str(path), None, None, "the file is empty")])
        from workbench.core.encodings import decode_text

        decoded = decode_text(raw)
        if decoded is None:  # pragma: no cover - gb18030 decodes almost anything
            raise ActivityDataError([Problem(str(path), None, None, "not UTF-8 or GB18030 text")])
        text = decoded[0]
        from io import StringIO
        try:
            # skip_blank_lines=False: an empty line keeps its place, so row numbers stay those of
            # the spreadsheet (blank records are dropped later, after numbering)
            return pd.read_csv(StringIO(text), dtype=object, keep_default_na=False, skipinitialspace=True,
                               skip_blank_lines=False)
        except pd.errors.EmptyDataError:
            raise ActivityDataError([Problem(str(path), None, None, "the file is empty")]) from None
        except pd.errors.ParserError as exc:
            raise ActivityDataError([Problem(str(path), None, None, f"malformed CSV: {exc}")]) from None
    raise ActivityDataError([Problem(str(path), None, None, f"unsupported file type '{suffix}' (use CSV or XLSX)")])


def read_activity(path, library: FactorLibrary | None = None) -> pd.DataFrame:
    """Read a CSV (UTF-8 or GB18030) or XLSX activity-data file and normalise it.

    Returns the frame of :func:`normalize_activity`; raises :class:`ActivityDataError`.
    """
    path = Path(path)
    if not path.exists():
        raise ActivityDataError([Problem(str(path), None, None, "no such file")])
    df = _read_table(path)
    return normalize_activity(df, origin=str(path), library=library)


# ------------------------------------------------------------------------------- normalising
def _to_number(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers from a column as written: returns (values, bad_mask) where blanks are NaN, not bad."""
    s = series.astype(object)
    blank = s.isna() | s.astype(str).str.strip().isin(["", "nan", "NaN", "None"])
    text = s.astype(str).str.strip().str.replace(",", "", regex=False).str.replace("，", "", regex=False)
    pct = text.str.endswith("%")
    text = text.str.rstrip("%")
    num = pd.to_numeric(text.where(~blank), errors="coerce")
    bad = num.isna() & ~blank
    num = num.where(~pct, num / 100.0)
    return num.astype("float64"), bad


def _period(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``YYYY-MM`` (or ``YYYY``) from dates, ``2025-03``, ``2025/3``, ``2025年3月`` …; (periods, bad)."""
    def one(v):
        if v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == "":
            return None, False
        if hasattr(v, "year") and hasattr(v, "month"):
            return f"{v.year:04d}-{v.month:02d}", False
        text = str(v).strip()
        m = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?(?:[-/.]\d{1,2}(?:\s.*)?)?", text)
        if m and 1 <= int(m.group(2)) <= 12:
            return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}", False
        y = re.fullmatch(r"(\d{4})\s*年?", text)
        return (f"{int(y.group(1)):04d}", False) if y else (None, True)

    values = series.astype(object).to_numpy()
    parsed = {}
    for v in values:
        key = (type(v), v) if not (isinstance(v, float) and math.isnan(v)) else ("nan",)
        if key not in parsed:
            parsed[key] = one(v)
    res = [parsed[(type(v), v) if not (isinstance(v, float) and math.isnan(v)) else ("nan",)] for v in values]
    out = pd.Series([r[0] for r in res], index=series.index, dtype=object)
    bad = pd.Series([r[1] for r in res], index=series.index, dtype=bool)
    return out, bad


def normalize_activity(df: pd.DataFrame, origin: str = "<table>",
                       library: FactorLibrary | None = None, first_row: int = 2, *, regime=None) -> pd.DataFrame:
    """Map headers, source and item names to canonical codes and check every field.

    ``first_row`` is the spreadsheet row of ``df``'s first record (header on row 1 → 2).
    ``regime`` (default GB/T 32150, :mod:`workbench.regimes`) says which sources exist, the names
    they may be written as, and which item categories each accepts.
    Returns a frame with all of :data:`COLUMNS` plus ``row`` (the spreadsheet row) and
    ``origin``; raises :class:`ActivityDataError` listing every problem found.
    """
    lib = library or default_library()
    reg = get_regime(regime)
    source_map = _default_source_map() if reg is default_regime() else _source_map(reg)
    # -- headers
    header: dict[str, str] = {}
    rename = {}
    for col in df.columns:
        canon = _HEADER_MAP.get(_key(col))
        if canon is None and isinstance(col, str):
            # bilingual headers such as "数量 quantity" or "quantity (数量)"
            for part in re.split(r"[\s/()（）]+", col):
                if _key(part) in _HEADER_MAP:
                    canon = _HEADER_MAP[_key(part)]
                    break
        if canon and canon not in header:
            header[canon] = str(col)
            rename[col] = canon
    chk = _Checker(origin, header, first_row)
    df = df.rename(columns=rename)[list(rename.values())].copy() if rename else df.iloc[:, :0].copy()
    # drop rows that are entirely blank (spreadsheet padding), keep their numbering for the rest
    if len(df):
        blank_row = df.apply(lambda c: c.isna() | c.astype(str).str.strip().eq("")).all(axis=1)
        df = df[~blank_row]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        chk.problems.append(Problem(origin, 1, None, f"missing required column(s) {missing} "
                                    f"(a template has columns {', '.join(REQUIRED)})"))
        chk.fail_if_any()
    if df.empty:
        chk.problems.append(Problem(origin, None, None, "no activity records in the file"))
        chk.fail_if_any()
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = None
    out = pd.DataFrame(index=df.index)
    out["row"] = df.index.to_numpy() + first_row
    out["origin"] = origin
    pos = np.arange(len(df))  # positional index for messages
    idx = df.index.to_numpy()

    def rows_of(mask):
        return idx[np.asarray(mask, dtype=bool)]

    # -- source
    src_text = df["source"].astype(str).str.strip()
    out["source"] = src_text.map({t: source_map.get(_key(t)) for t in pd.unique(src_text)})
    bad = out["source"].isna()
    named = "/".join(s.aliases[0] for s in reg.sources if s.aliases)
    for i in rows_of(bad):
        chk.add(i, "source", f"unknown source '{src_text[i]}' (one of {', '.join(reg.source_keys)}"
                             + (f", or {named})" if named else ")"))
    # -- item
    item_text = df["item"].astype(str).str.strip()
    codes = {}
    for name in pd.unique(item_text):
        try:
            codes[name] = lib.item_code(name) if name not in ("", "nan", "None") else None
        except UnknownItemError:
            codes[name] = None
    out["item"] = item_text.map(codes)
    for i in rows_of(out["item"].isna()):
        chk.add(i, "item", f"unknown item '{item_text[i]}' (not a factor-library code or name)")
    cats = dict(zip(lib.items["item"], lib.items["category"]))
    out["category"] = out["item"].map(cats)
    ok = out["source"].notna() & out["item"].notna()
    pair_ok = {(src, cat): cat in reg.source(src).categories
               for src, cat in set(zip(out.loc[ok, "source"], out.loc[ok, "category"]))}
    fits = pd.Series([pair_ok.get(k, True) for k in zip(out["source"], out["category"])], index=out.index)
    for i in rows_of(ok & ~fits):
        chk.add(i, "item", f"item '{item_text[i]}' ({out.at[i, 'category']}) cannot be reported "
                           f"under source '{out.at[i, 'source']}'")
    # -- quantity
    qty, bad = _to_number(df["quantity"])
    for i in rows_of(bad):
        chk.add(i, "quantity", f"'{df.at[i, 'quantity']}' is not a number")
    for i in rows_of(qty.isna() & ~bad):
        chk.add(i, "quantity", "missing quantity")
    for i in rows_of(~np.isfinite(qty.fillna(0)) | (qty < 0)):
        chk.add(i, "quantity", f"impossible quantity {qty[i]} (must be a finite number ≥ 0)")
    out["quantity"] = qty
    # -- unit: parseable and of the right kind for the item
    unit_text = df["unit"].where(df["unit"].notna(), "").astype(str).str.strip()
    out["unit"] = unit_text
    for u in pd.unique(unit_text):
        rows = rows_of(unit_text == u)
        try:
            parse_unit(u)
        except UnitError as exc:
            for i in rows:
                chk.add(i, "unit", str(exc) if u else "missing unit")
            continue
    fits_unit = {}
    for u, cat in set(zip(unit_text, out["category"])):
        if isinstance(cat, str) and u:
            fits_unit[(u, cat)] = (_parses(u) and any(_compatible(u, ref) for ref in CATEGORY_UNITS[cat])
                                   and not (cat == "fuel" and _is_electrical_energy(u)))
    misfit = pd.Series([fits_unit.get(k, True) is False for k in zip(unit_text, out["category"])], index=out.index)
    for i in rows_of(misfit):
        cat = out.at[i, "category"]
        if _parses(unit_text[i]):
            chk.add(i, "unit", f"unit '{unit_text[i]}' does not measure {out.at[i, 'item']} "
                               f"(expected a unit like {' or '.join(CATEGORY_UNITS[cat])})")
    # -- optional numeric columns with their units
    for col, ucol, ref, lo, hi in (
        ("ncv", "ncv_unit", "GJ/t", 0, None),
        ("carbon_content", "carbon_content_unit", "tC/TJ", 0, None),
        ("emission_factor", "ef_unit", None, 0, None),
    ):
        val, bad = _to_number(df[col])
        for i in rows_of(bad):
            chk.add(i, col, f"'{df.at[i, col]}' is not a number")
        for i in rows_of(val.notna() & ((val <= lo) | ~np.isfinite(val.fillna(0)))):
            chk.add(i, col, f"impossible {col} {val[i]} (must be > 0)")
        units = df[ucol].where(df[ucol].notna(), "").astype(str).str.strip()
        for i in rows_of(val.notna() & units.eq("")):
            chk.add(i, ucol, f"{col} given without its unit")
        for i in rows_of(val.notna() & units.ne("")):
            try:
                parsed = parse_unit(units[i])
            except UnitError as exc:
                chk.add(i, ucol, str(exc))
                continue
            if not _FACTOR_UNIT_OK[col](units[i], parsed):
                chk.add(i, ucol, f"unit '{units[i]}' is not a unit of {col} ({_FACTOR_UNIT_HINT[col]})")
        out[col] = val
        out[ucol] = units.where(val.notna(), "")
    # a site NCV on a quantity already in heat units would be silently unused: refuse it
    for i in rows_of(out["ncv"].notna()):
        if unit_text[i] and _compatible(unit_text[i], "GJ"):
            chk.add(i, "ncv", f"ncv given, but the quantity is already heat ({unit_text[i]}); leave ncv empty")
    for col in ("oxidation_rate", "purity"):
        val, bad = _to_number(df[col])
        for i in rows_of(bad):
            chk.add(i, col, f"'{df.at[i, col]}' is not a number")
        # a bare 98 means 98 %; a value written with '%' has already been divided by 100
        has_pct = df[col].astype(str).str.strip().str.endswith("%")
        val = val.where(val.isna() | has_pct | (val <= 1) | (val > 100), val / 100.0)
        for i in rows_of(val.notna() & ((val <= 0) | (val > 1))):
            chk.add(i, col, f"impossible {col} {df.at[i, col]} (a fraction 0–1 or a percentage 0–100)")
        out[col] = val
    va, bad = _to_number(df["value_added"])
    for i in rows_of(bad):
        chk.add(i, "value_added", f"'{df.at[i, 'value_added']}' is not a number")
    for i in rows_of(va.notna() & (va <= 0)):
        chk.add(i, "value_added", f"impossible value added {va[i]} (must be > 0, in 万元)")
    out["value_added"] = va
    # -- period
    per, bad = _period(df["period"])
    for i in rows_of(bad):
        chk.add(i, "period", f"'{df.at[i, 'period']}' is not a period (YYYY-MM or YYYY)")
    out["period"] = per
    # -- data tier
    tier = df["data_tier"].where(df["data_tier"].notna(), "").astype(str).str.strip().str.lower()
    tier = tier.map(lambda t: _TIER_ALIASES.get(t, t) or "primary")
    for i in rows_of(~tier.isin(DATA_TIERS)):
        chk.add(i, "data_tier", f"unknown data tier '{tier[i]}' (one of {', '.join(DATA_TIERS)})")
    out["data_tier"] = tier
    # -- gas: CO2 unless the item is a gas
    gas_items = dict(zip(lib.items["item"], lib.items["name_en"]))
    gas = df["gas"].where(df["gas"].notna(), "").astype(str).str.strip()
    is_gas = out["category"].eq("gas")
    gas_of = {it: _gas_symbol(lib, it) for it in pd.unique(out["item"].dropna())}
    default_gas = out["item"].map(gas_of).fillna("CO2")
    out["gas"] = np.where(gas.eq(""), np.where(is_gas, default_gas, "CO2"), gas.str.upper())
    for i in rows_of(~is_gas & gas.ne("") & gas.str.upper().ne("CO2")):
        chk.add(i, "gas", f"gas '{gas[i]}' given for item '{out.at[i, 'item']}', which is not a gas item")
    del gas_items
    # -- text columns
    for col in ("record_id", "facility", "node_id", "region", "document"):
        out[col] = df[col].where(df[col].notna(), "").astype(str).str.strip()
    rid = out["record_id"]
    out["record_id"] = np.where(rid.eq(""), [f"{Path(origin).name}:{r}" for r in out["row"]], rid)
    dup = out["record_id"].duplicated(keep=False) & rid.ne("")
    for i in rows_of(dup):
        chk.add(i, "record_id", f"duplicate record id '{rid[i]}'")
    # node: explicit node_id, else facility name/code
    out["node_id"] = np.where(out["node_id"].eq(""), out["facility"], out["node_id"])
    # -- the quantity in the unit its factor is expressed per, beside the quantity as written
    qn, un, bad_basis = normalized_quantities(out, lib, checked=set(_rows_with_problems(chk)))
    for i, msg in bad_basis:
        chk.add(i, "unit", msg)
    chk.fail_if_any()
    at = out.columns.get_loc("unit") + 1
    out.insert(at, "quantity_normalized", qn)
    out.insert(at + 1, "unit_normalized", un)
    out = out.drop(columns=["category"]).reset_index(drop=True)
    del pos
    return out


def _rows_with_problems(chk: _Checker) -> list:
    """Index labels of the records that already have a problem (spreadsheet row − first row)."""
    return [p.row - chk.first_row for p in chk.problems if p.row is not None]


#: the factor kind a quantity of each item category is multiplied by (its unit's denominator is
#: the unit the quantity is normalised to)
BASIS_KIND = {"fuel": "ncv", "carbonate": "emission_factor", "electricity": "emission_factor",
              "heat": "emission_factor", "gas": "gwp"}


def per_unit(factor_unit: str) -> str:
    """The unit a factor is expressed per — the denominator of its unit, spelled so that
    :func:`workbench.core.units.parse_unit` reads it: ``GJ/(10^4 Nm3)`` → ``万Nm3``,
    ``tCO2/MWh`` → ``MWh``, ``tCO2e/t`` → ``t``.  Raises :class:`UnitError` for a unit that is
    not per anything."""
    u = parse_unit(factor_unit)
    den = ureg.Unit("dimensionless")
    for name, exp in u._units.items():
        if exp < 0:
            den = den * ureg.Unit(name) ** (-exp)
    if den.dimensionless:
        raise UnitError(f"factor unit '{factor_unit}' is not per a unit of activity")
    return f"{den:~}".replace(" ", "")


def factor_basis(library: FactorLibrary, item: str, unit: str, *, ncv_unit: str = "",
                 ef_unit: str = "") -> str:
    """The unit the factor that multiplies a quantity of ``item`` written in ``unit`` is
    expressed per (see the module docstring).  ``ncv_unit``/``ef_unit``: a site factor's unit
    given on the record.  The library's own spelling (``items.csv`` ``default_unit``) is used
    when it is the same unit."""
    cat = library.category(item)
    if cat == "fuel":
        if converts(unit, "GJ"):
            return "GJ"                                   # heat already: the carbon content is per heat
        if ef_unit and not converts(ef_unit, "tCO2/GJ"):
            return _library_spelling(library, item, per_unit(ef_unit))   # FC × EF
        if ncv_unit:
            return _library_spelling(library, item, per_unit(ncv_unit))
    elif ef_unit and cat != "gas":
        return _library_spelling(library, item, per_unit(ef_unit))
    return _library_basis(library, item)


def _library_basis(library: FactorLibrary, item: str) -> str:
    cache = library.__dict__.setdefault("_basis_cache", {})
    if item not in cache:
        kind = BASIS_KIND[library.category(item)]
        units = library.table.loc[(library.table["item"] == item) & (library.table["kind"] == kind), "unit"]
        if units.empty:
            cache[item] = str(library.item_info(item)["default_unit"])
        else:
            basis = {per_unit(u) for u in units.unique()}
            ref = next(iter(basis))
            if any(conversion_factor(b, ref) != 1.0 for b in basis):
                raise UnitError(f"the factors of {item} ({kind}) are expressed per different units: {sorted(basis)}")
            cache[item] = _library_spelling(library, item, ref)
    return cache[item]


def _library_spelling(library: FactorLibrary, item: str, unit: str) -> str:
    default = str(library.item_info(item).get("default_unit") or "")
    try:
        if default and conversion_factor(default, unit) == 1.0:
            return default
    except UnitError:
        pass
    return unit


def normalized_quantities(df: pd.DataFrame, library: FactorLibrary | None = None, *,
                          checked=frozenset()) -> tuple[np.ndarray, np.ndarray, list]:
    """``(quantity_normalized, unit_normalized, problems)`` of activity records with ``item``
    (library code), ``quantity``, ``unit`` and optionally ``ncv_unit``, ``ef_unit``: the quantity
    converted with pint to the unit its factor is expressed per (:func:`factor_basis`).  Pint is
    asked once per distinct (item, unit, site-factor units).  ``problems``: (index label, message)
    of records whose unit does not convert to it (their normalised quantity is NaN); records
    whose index label is in ``checked`` (already known to be bad) are left NaN and not reported."""
    lib = library or default_library()
    n = len(df)
    qn = np.full(n, np.nan)
    un = np.full(n, "", dtype=object)
    problems: list = []
    if not n:
        return qn, un, problems
    blank = pd.Series("", index=df.index)
    keys = pd.DataFrame({
        "item": df["item"].astype(object), "unit": df["unit"].astype(object),
        "ncv_unit": (df["ncv_unit"] if "ncv_unit" in df else blank).fillna("").astype(str),
        "ef_unit": (df["ef_unit"] if "ef_unit" in df else blank).fillna("").astype(str)})
    qty = pd.to_numeric(df["quantity"], errors="coerce").to_numpy(dtype="float64")
    skip = np.asarray(df.index.isin(list(checked)), bool) if checked else np.zeros(n, bool)
    codes, uniq = pd.factorize(pd.MultiIndex.from_frame(keys.fillna("")))
    for k, (item, unit, ncv_u, ef_u) in enumerate(uniq):
        rows = np.flatnonzero((codes == k) & ~skip)
        if not rows.size or not item or not unit:
            continue
        try:
            basis = factor_basis(lib, str(item), str(unit), ncv_unit=ncv_u, ef_unit=ef_u)
        except (UnitError, UnknownItemError, KeyError):
            continue                                     # bad item or factor unit: reported by its own check
        try:
            f = conversion_factor(str(unit), basis)
        except UnitError:
            given = ef_u if ef_u and lib.category(str(item)) != "gas" else ncv_u
            whose = f"the site factor's unit '{given}'" if given else "the factor library"
            msg = (f"unit '{unit}' cannot be converted to {basis}, the unit {item}'s factor is expressed per "
                   f"({whose}); give the quantity in a unit of {basis}"
                   + (" or a site NCV per the unit written" if lib.category(str(item)) == "fuel" else ""))
            problems += [(df.index[i], msg) for i in rows.tolist()]
            continue
        qn[rows] = qty[rows] * f
        un[rows] = basis
    return qn, un, problems


def _gas_symbol(lib: FactorLibrary, item: str) -> str:
    sub = lib.table[(lib.table["item"] == item) & (lib.table["kind"] == "gwp")]
    return sub["gas"].iloc[0] if len(sub) else item.upper()


_FACTOR_UNIT_OK = {
    "ncv": lambda text, u: _compatible(text, "GJ/t") or _compatible(text, "GJ/Nm3"),
    "carbon_content": lambda text, u: _compatible(text, "tC/TJ") or _compatible(text, "tC/t") or _compatible(text, "tC/Nm3"),
    "emission_factor": lambda text, u: u.dimensionality.get("[co2_mass]") == 1,
}
_FACTOR_UNIT_HINT = {
    "ncv": "heat per mass or per normal volume, e.g. GJ/t, GJ/万Nm3",
    "carbon_content": "carbon per heat, e.g. tC/TJ",
    "emission_factor": "CO2 per unit of activity, e.g. tCO2/t, tCO2/GJ, tCO2/MWh",
}


def _parses(unit: str) -> bool:
    try:
        parse_unit(unit)
        return True
    except UnitError:
        return False


def _compatible(unit: str, ref: str) -> bool:
    return converts(unit, ref)


def _is_electrical_energy(unit: str) -> bool:
    """kWh, MWh, 万kWh, 度 …: energy units of electricity, which no fuel is measured in."""
    return bool(re.search(r"watt|Wh", str(parse_unit(unit))))
