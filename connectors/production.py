"""Monthly production and value-added tables (产量与增加值月报) — the denominators of carbon
efficiency (tCO2e per 万元 of value added) and of product intensities.

The table a plant keeps (the demo's ``monthly.csv``) is wide: ``period`` (YYYY-MM), ``node_id``
(the facility or the enterprise), ``value_added_10k_cny`` (增加值, 万元) and one column per product
(``clinker_t`` …).  Which columns are products, and their units, come from the enterprise's
``products`` (its enterprise.json / master data: ``{product, column, unit}``); without that list a
column ``<name>_t`` is read as product ``<name>`` in tonnes — a guess the metadata reports
(``guessed_products``), overridden by passing ``products``.

The result is long, one row per number: ``period, node_id, measure`` (``value_added`` |
``output``), ``product`` (empty for value added), ``quantity``, ``unit``, ``row`` (the
spreadsheet row, header = 1).  Empty cells are no rows.  The lake checks every row
(:func:`workbench.ingestion.pipeline`); this reader only reshapes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from . import ConnectorResult

name = "production"

VALUE_ADDED_COLUMNS = ("value_added_10k_cny", "value_added", "增加值", "增加值(万元)", "增加值（万元）")


def read(path, *, products=None, source: str | None = None) -> ConnectorResult:
    """Read a production/value-added table (CSV or XLSX); raw = the file's bytes."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        table = pd.read_excel(path, dtype=str, keep_default_na=False)
    else:
        import io

        from workbench.core.encodings import decode_text

        decoded = decode_text(raw)
        if decoded is None:
            raise ValueError(f"{path}: neither UTF-8 nor GB18030 text")
        table = pd.read_csv(io.StringIO(decoded[0]), dtype=str, keep_default_na=False)
    data, guessed = reshape(table, products=products, origin=str(path))
    meta = {"connector": name, "source": source or "production-table", "origin": str(path),
            "sha256": hashlib.sha256(raw).hexdigest(), "rows": len(data)}
    if guessed:
        meta["guessed_products"] = guessed
    return ConnectorResult(data, meta, kind="production", raw=raw, raw_name=path.name)


def reshape(table: pd.DataFrame, *, products=None, origin: str = "table") -> tuple[pd.DataFrame, list]:
    """Wide production table → long rows (see the module doc); returns (rows, guessed product
    columns)."""
    table = table.copy()
    table.columns = [str(c).strip() for c in table.columns]
    for col in ("period", "node_id"):
        if col not in table.columns:
            raise ValueError(f"{origin}: column '{col}' is missing (a production table needs period, node_id)")
    va = next((c for c in VALUE_ADDED_COLUMNS if c in table.columns), None)
    guessed = []
    if products:
        cols = {p["column"]: (p["product"], p.get("unit") or "t") for p in products if p.get("column") in table.columns}
    else:
        cols = {c: (c[:-2], "t") for c in table.columns if c.endswith("_t") and c not in (va,)}
        guessed = sorted(cols)
    parts = []
    rows = pd.RangeIndex(len(table)) + 2
    for col, (measure, product, unit) in [(va, ("value_added", "", "万元"))] * bool(va) + \
            [(c, ("output", p, u)) for c, (p, u) in cols.items()]:
        cell = table[col].astype(str).str.strip()
        keep = cell != ""
        parts.append(pd.DataFrame({"period": table.loc[keep, "period"].astype(str).str.strip().to_numpy(),
                                   "node_id": table.loc[keep, "node_id"].astype(str).str.strip().to_numpy(),
                                   "measure": measure, "product": product, "quantity": cell[keep].to_numpy(),
                                   "unit": unit, "row": rows[keep.to_numpy()]}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["period", "node_id", "measure", "product", "quantity", "unit", "row"])
    return out.sort_values(["row", "measure", "product"], kind="stable").reset_index(drop=True), guessed
