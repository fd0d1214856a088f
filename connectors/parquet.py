"""Parquet exports (e.g. from a historian or another lake) of readings or activity records."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import ConnectorResult

name = "parquet"

#: the columns each kind of Parquet export must carry
REQUIRED = {"readings": ("meter_id", "ts", "value"), "activity": ("source", "item", "quantity", "unit")}


def _bad(path, column, message):
    from workbench.core.errors import DataError, Problem

    raise DataError([Problem(str(path), None, column, message)])


def read(path, *, kind: str = "readings", source: str | None = None, meters: pd.DataFrame | None = None) -> ConnectorResult:
    """Read a Parquet file; raw = the file's bytes.

    Readings without ``quantity``/``unit`` columns (e.g. the demo's ``meter_id, ts, value``) take
    them from the ``meters`` registry (the register's unit; quantity ``register``/``interval``).
    """
    path = Path(path)
    raw = path.read_bytes()
    if not raw:
        _bad(path, None, "the file is empty")
    if raw[:4] != b"PAR1":
        _bad(path, None, "not a Parquet file (it does not start like one: another format, or damaged)")
    if raw[-4:] != b"PAR1":
        _bad(path, None, "the Parquet file is truncated or damaged (its footer is missing)")
    try:
        df = pd.read_parquet(path)
    except Exception:  # noqa: BLE001 - pyarrow raises several kinds on corrupt files
        _bad(path, None, "not a readable Parquet file (damaged, or written by a tool this reader does not follow)")
    needed = REQUIRED.get(kind, ())
    missing = [c for c in needed if c not in df.columns]
    if missing:
        _bad(path, missing[0], f"column(s) {', '.join(missing)} missing — {kind} need {', '.join(needed)} "
                               f"(the file has {', '.join(map(str, df.columns))[:160]})")
    if kind == "readings" and ("unit" not in df or "quantity" not in df):
        if meters is None:
            _bad(path, "unit", "readings without unit/quantity columns need the meter registry")
        reg = meters[["meter_id", "unit", "register"]].rename(columns={"unit": "_unit", "register": "_register"})
        df = df.merge(reg, on="meter_id", how="left")
        if "unit" not in df:
            df["unit"] = df.pop("_unit")
        if "quantity" not in df:
            df["quantity"] = df["_register"].map({"cumulative": "register", "interval": "interval"}).fillna("reading")
        df = df.drop(columns=[c for c in ("_unit", "_register") if c in df])
    df.insert(0, "row", range(1, len(df) + 1))  # Parquet has no header row: rows count from 1
    meta = {"connector": name, "source": source or "parquet-export", "origin": str(path), "rows": len(df)}
    return ConnectorResult(df, meta, kind=kind, raw=raw, raw_name=path.name)
