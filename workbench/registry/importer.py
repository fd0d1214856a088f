"""Load an enterprise's master data from the files the demo writes — or a user writes by hand:

==================  ==========================================================================
``enterprise.json`` required: ``enterprise_id`` and a name (``name_zh`` or ``name_en``);
                    checked when present: ``unified_social_credit_code`` (GB 32100), ``region``,
                    ``industry_code`` (GB/T 4754), ``identifier_prefix``, ``timezone``; optional
                    ``sector``, ``products`` (list of {product, column, unit, name_zh, name_en});
                    every other key is kept as an attribute
``boundary.csv``    required: ``node_id, parent_id, level``; optional names, 分项 ``classification``,
                    ``identifier`` (checked as a tree: one enterprise root, levels nest)
``meters.csv``      optional; required columns ``meter_id, node_id, unit``; optional ``serial,
                    source, item, register, rollover, installed, removed, replaces, is_main,
                    quantity, identifier, device_id``
``products.csv``    optional (instead of ``products`` in enterprise.json): ``product`` and the rest
``accounts.csv``    optional: ``account`` and ``supplier, source, item, unit, node_id, note``
==================  ==========================================================================

Each step is a small function of its file (:func:`read_enterprise`, :func:`read_boundary`,
:func:`read_meters`, :func:`read_products`, :func:`read_accounts`); every problem names the file,
the row (the spreadsheet's: header = row 1) and the column, and all of them are reported together.
CSV files are read as UTF-8 (with or without BOM), else GB18030 — the guess is reported, and
``encoding=`` overrides it.  :func:`import_enterprise` stores everything in one transaction.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from workbench.core.activity import Problem
from workbench.core.encodings import not_text
from workbench.registry import codes
from workbench.registry.store import MasterData, RegistryError

__all__ = ["ImportReport", "import_enterprise", "read_accounts", "read_boundary", "read_enterprise",
           "read_meters", "read_products"]

#: what a meter may measure: GB/T 32150's sources, and electricity generated on site (a waste-heat
#: or PV generator — informational: it is no source of emissions, it explains lower purchases)
METER_SOURCES = ("combustion", "process", "purchased_electricity", "purchased_heat", "exported_electricity",
                 "exported_heat", "self_generated_electricity")
_TRUE = {"true", "1", "yes", "y", "是"}
_FALSE = {"false", "0", "no", "n", "否", ""}


@dataclass
class ImportReport:
    enterprise_id: str
    folder: str
    enterprise: str = "unchanged"                      # created | updated | unchanged
    tables: dict = field(default_factory=dict)         # table → SyncCounts.as_dict()
    encodings: dict = field(default_factory=dict)      # file → encoding used
    kept: dict = field(default_factory=dict)           # table → keys stored but not in the files

    def as_dict(self) -> dict:
        return {"enterprise_id": self.enterprise_id, "folder": self.folder, "enterprise": self.enterprise,
                "tables": self.tables, "encodings": self.encodings, "kept": self.kept}


def _fail(problems: list[Problem]):
    problems = sorted(problems, key=lambda p: (p.file, p.row if p.row is not None else -1))
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    raise RegistryError(str(problems[0]) + more, problems)


def _read_csv(path: Path, encoding: str | None, encodings: dict) -> pd.DataFrame:
    from workbench.core.encodings import GUESSES, decode_text

    raw = path.read_bytes()
    what = not_text(raw)
    if what:
        raise RegistryError(f"{path}: {what}", [Problem(str(path), None, None, what)])
    decoded = decode_text(raw, encoding)
    if decoded is None:
        raise RegistryError(f"{path}: not {' nor '.join([encoding] if encoding else GUESSES)} text; "
                            + ("is it in another encoding?" if encoding else "pass the file's encoding"))
    text, enc = decoded
    encodings[path.name] = enc if encoding else f"{enc} (guessed; --encoding overrides)"
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise RegistryError(f"{path}: the file is empty (no header row)") from None
    except pd.errors.ParserError as exc:
        import re

        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        why = (f"row {m.group(2)} has {m.group(3)} cells where the header has {m.group(1)}" if m
               else "not a readable CSV table")
        raise RegistryError(f"{path}: {why}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip())


def _require_columns(df: pd.DataFrame, required, file: str) -> list[Problem]:
    return [Problem(file, 1, c, "required column is missing") for c in required if c not in df.columns]


def read_enterprise(path: Path) -> dict:
    """``enterprise.json`` → the enterprise record (codes checked, see the module doc)."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RegistryError(f"{file}: missing (every enterprise folder needs enterprise.json)") from None
    what = not_text(raw)
    if what:
        raise RegistryError(f"{file}: {what} (enterprise.json is a JSON object with enterprise_id and a name)")
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RegistryError(f"{file}: line {line} is not UTF-8 text (save enterprise.json as UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{file}: not valid JSON: {exc.msg.lower()} at line {exc.lineno}, column {exc.colno}") \
            from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{file}: must be a JSON object")
    problems = []

    def check(key, fn, *, required=False):
        v = doc.get(key)
        if v in (None, ""):
            if required:
                problems.append(Problem(file, None, key, "required"))
            return ""
        try:
            return fn(v)
        except (codes.CodeError, ValueError) as exc:
            problems.append(Problem(file, None, key, str(exc)))
            return ""

    rec = {"enterprise_id": check("enterprise_id", codes.check_enterprise_id, required=True),
           "uscc": check("unified_social_credit_code", codes.check_uscc),
           "region": check("region", codes.check_region),
           "industry_code": check("industry_code", codes.check_industry_code),
           "timezone": check("timezone", codes.check_timezone) or "Asia/Shanghai",
           "identifier_prefix": check("identifier_prefix", _check_prefix),
           "name_zh": str(doc.get("name_zh") or ""), "name_en": str(doc.get("name_en") or ""),
           "sector": str(doc.get("sector") or "")}
    if not rec["name_zh"] and not rec["name_en"]:
        problems.append(Problem(file, None, "name_zh", "a name is required (name_zh or name_en)"))
    if problems:
        _fail(problems)
    known = {"enterprise_id", "unified_social_credit_code", "region", "industry_code", "timezone",
             "identifier_prefix", "name_zh", "name_en", "sector"}
    rec["attributes"] = {k: v for k, v in doc.items() if k not in known}
    return rec


def _check_prefix(value) -> str:
    from workbench.identifiers.model import IdentifierError, parse_identifier

    text = str(value).strip()
    try:
        parse_identifier(f"{text}/x")
    except IdentifierError as exc:
        raise codes.CodeError(f"identifier prefix {text!r}: {exc}") from None
    return text


def read_boundary(path: Path, *, encoding=None, encodings=None) -> pd.DataFrame:
    """``boundary.csv`` → nodes (checked as a tree by :class:`workbench.core.boundary.Boundary`)."""
    from workbench.core.boundary import Boundary, BoundaryError

    df = _read_csv(path, encoding, encodings if encodings is not None else {})
    problems = _require_columns(df, ("node_id", "parent_id", "level"), str(path))
    if problems:
        _fail(problems)
    empty = df.index[df["node_id"] == ""]
    if len(empty):
        _fail([Problem(str(path), int(i) + 2, "node_id", "empty node id") for i in empty])
    try:
        nodes = Boundary(df).nodes
    except BoundaryError as exc:
        raise RegistryError(f"{path}: {exc}") from None
    return nodes.reset_index(drop=True)


def read_meters(path: Path, node_ids, *, encoding=None, encodings=None) -> pd.DataFrame:
    """``meters.csv`` → meters, each row checked: known node, a unit pint knows, register
    interval|cumulative, a positive rollover, dates, ``replaces`` a meter of the file, the
    source one of :data:`METER_SOURCES`."""
    from workbench.core.units import UnitError, parse_unit

    file = str(path)
    df = _read_csv(path, encoding, encodings if encodings is not None else {})
    problems = _require_columns(df, ("meter_id", "node_id", "unit"), file)
    if problems:
        _fail(problems)
    absent = [c for c in ("serial", "source", "item", "register", "rollover", "installed", "removed", "replaces",
                          "is_main", "quantity", "identifier", "device_id") if c not in df.columns]
    for c in absent:
        df[c] = ""
    ids = set(df["meter_id"])
    nodes = set(node_ids)
    out = []
    for i, r in df.iterrows():
        row = int(i) + 2

        def bad(col, msg, row=row):
            problems.append(Problem(file, row, col, msg))

        if not r["meter_id"]:
            bad("meter_id", "empty meter id")
        elif (df["meter_id"] == r["meter_id"]).sum() > 1:
            bad("meter_id", f"meter {r['meter_id']!r} appears more than once")
        if r["node_id"] not in nodes:
            bad("node_id", f"{r['node_id']!r} is not a node of boundary.csv")
        try:
            parse_unit(r["unit"])
        except UnitError as exc:
            bad("unit", str(exc))
        register = (r["register"] or "interval").lower()
        if register not in ("interval", "cumulative"):
            bad("register", f"{r['register']!r}: interval or cumulative")
        rollover = None
        if r["rollover"]:
            try:
                rollover = float(r["rollover"])
                if not (rollover > 0 and math.isfinite(rollover)):
                    raise ValueError
            except ValueError:
                bad("rollover", f"{r['rollover']!r}: the register's capacity, a positive number")
        dates = {}
        for c in ("installed", "removed"):
            if r[c]:
                try:
                    dates[c] = pd.Timestamp(r[c]).date().isoformat()
                except (ValueError, TypeError):
                    bad(c, f"{r[c]!r}: a date, e.g. 2024-03-01")
        if "installed" in dates and "removed" in dates and dates["removed"] < dates["installed"]:
            bad("removed", f"{dates['removed']} is before installed {dates['installed']}")
        if r["replaces"] and (r["replaces"] not in ids or r["replaces"] == r["meter_id"]):
            bad("replaces", f"{r['replaces']!r} is not another meter of the file")
        if r["source"] and r["source"] not in METER_SOURCES:
            bad("source", f"{r['source']!r}: one of {', '.join(METER_SOURCES)}")
        main = r["is_main"].lower()
        if main not in _TRUE | _FALSE:
            bad("is_main", f"{r['is_main']!r}: true or false")
        out.append({"meter_id": r["meter_id"], "serial": r["serial"], "node_id": r["node_id"], "source": r["source"],
                    "item": r["item"], "unit": r["unit"], "quantity": r["quantity"], "register": register,
                    "rollover": rollover, "installed": dates.get("installed"), "removed": dates.get("removed"),
                    "replaces": r["replaces"], "is_main": main in _TRUE, "identifier": r["identifier"],
                    "device_id": r["device_id"]})
    if problems:
        _fail(problems)
    meters = pd.DataFrame(out)
    meters.attrs["absent"] = absent      # columns the file does not carry: stored values are kept
    return meters


def read_products(doc_products, path: Path, *, encoding=None, encodings=None) -> pd.DataFrame:
    """Products from enterprise.json's ``products`` list, else ``products.csv``, else none."""
    cols = ["product", "column", "unit", "name_zh", "name_en", "node_id"]
    if doc_products:
        if not isinstance(doc_products, list) or not all(isinstance(p, dict) and p.get("product")
                                                         for p in doc_products):
            raise RegistryError(f"{path.parent / 'enterprise.json'}: 'products' must be a list of objects "
                                "with a 'product'")
        df = pd.DataFrame(doc_products)
    elif path.exists():
        df = _read_csv(path, encoding, encodings if encodings is not None else {})
        problems = _require_columns(df, ("product",), str(path))
        if problems:
            _fail(problems)
    else:
        return pd.DataFrame(columns=cols)
    for c in cols:
        if c not in df.columns:
            df[c] = ""
    df = df[cols].fillna("").astype(str)
    if df["product"].duplicated().any():
        raise RegistryError(f"{path.name}: products appear more than once: "
                            f"{sorted(set(df.loc[df['product'].duplicated(), 'product']))}")
    return df


def read_accounts(path: Path, *, encoding=None, encodings=None) -> pd.DataFrame:
    cols = ["account", "supplier", "source", "item", "unit", "node_id", "note"]
    if not path.exists():
        return pd.DataFrame(columns=cols)
    df = _read_csv(path, encoding, encodings if encodings is not None else {})
    problems = _require_columns(df, ("account",), str(path))
    if problems:
        _fail(problems)
    for c in cols:
        if c not in df.columns:
            df[c] = ""
    dup = df["account"].duplicated()
    if dup.any():
        _fail([Problem(str(path), int(i) + 2, "account", f"account {a!r} appears more than once")
               for i, a in df.loc[dup, "account"].items()])
    return df[cols]


def import_enterprise(store: MasterData, folder, *, who: str = "import", prune: bool = False,
                      encoding: str | None = None) -> ImportReport:
    """Read ``folder`` (see the module doc) and store its enterprise in one transaction; changes
    are audited, a second import of the same files changes nothing.  Rows stored earlier but not
    in the files are reported (``kept``) — deleted only with ``prune``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RegistryError(f"{folder}: not a folder")
    rec = read_enterprise(folder / "enterprise.json")
    encodings: dict = {}
    nodes = read_boundary(folder / "boundary.csv", encoding=encoding, encodings=encodings) \
        if (folder / "boundary.csv").exists() else None
    if nodes is None:
        raise RegistryError(f"{folder / 'boundary.csv'}: missing (an enterprise needs its boundary)")
    meters = read_meters(folder / "meters.csv", nodes["node_id"], encoding=encoding, encodings=encodings) \
        if (folder / "meters.csv").exists() else None
    products = read_products(rec["attributes"].pop("products", None), folder / "products.csv", encoding=encoding,
                             encodings=encodings)
    accounts = read_accounts(folder / "accounts.csv", encoding=encoding, encodings=encodings)
    bad_nodes = sorted(set(products["node_id"]) - set(nodes["node_id"]) - {""}) + \
        sorted(set(accounts["node_id"]) - set(nodes["node_id"]) - {""})
    if bad_nodes:
        raise RegistryError(f"{folder}: products/accounts name nodes not in boundary.csv: {bad_nodes}")
    report = ImportReport(enterprise_id=rec["enterprise_id"], folder=str(folder), encodings=encodings)
    with store.engine.begin() as conn:
        report.enterprise = store.put_enterprise(rec, who=who, conn=conn)
        parts = {"boundary_nodes": nodes.to_dict("records"), "products": products.to_dict("records"),
                 "accounts": accounts.to_dict("records")}
        keep = {}
        if meters is not None:
            parts["meters"] = meters.to_dict("records")
            keep["meters"] = meters.attrs.get("absent", ())
        for table, rows in parts.items():
            counts = store.sync(table, rec["enterprise_id"], rows, who=who, prune=prune, keep=keep.get(table, ()),
                                conn=conn)
            report.tables[table] = counts.as_dict()
            if counts.kept:
                report.kept[table] = counts.kept
    return report
