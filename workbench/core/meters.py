"""The meter register (seed §7.1 c): typed columns, the default measured quantity, and the time
convention every reading follows.

A meter row: ``meter_id``, ``node_id`` (the boundary node it measures), ``source`` and ``item``
(what its consumption is, in accounting terms), ``unit``, ``register`` (``interval`` or
``cumulative``), ``rollover`` (register capacity), ``installed``/``removed``, ``replaces``,
``is_main`` (a boundary meter), ``quantity`` and ``identifier``.  Timestamps are naive local time
:data:`LOCAL_TZ` (UTC+8, no daylight saving).
"""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.core.encodings import decode_text
from workbench.core.units import UnitError, parse_unit

__all__ = ["LOCAL_TZ", "normalize_meters", "read_meters"]

#: the local time of every stored timestamp (China Standard Time: UTC+8, no daylight saving)
LOCAL_TZ = "Asia/Shanghai"


def read_meters(path) -> pd.DataFrame:
    """A ``meters.csv`` (every column text; ``rollover`` numeric, ``is_main`` bool).  A file written
    by hand may carry only ``meter_id``, ``node_id`` and ``unit``: the optional columns are added
    empty (no capacity, not a main meter) and :func:`normalize_meters` fills the rest."""
    decoded = decode_text(Path(path).read_bytes())
    if decoded is None:
        raise ValueError(f"{path}: not text in UTF-8 or GB18030 (is it a spreadsheet or a binary file?)")
    try:
        m = pd.read_csv(io.StringIO(decoded[0]), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty (a meters file needs meter_id, node_id, unit)") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path}: not a readable CSV table ({str(exc).splitlines()[0]})") from None
    if "meter_id" not in m.columns:
        raise ValueError(f"{path}: column 'meter_id' is missing (a meters file needs meter_id, node_id, unit)")
    m["rollover"] = pd.to_numeric(m["rollover"].replace("", None), errors="coerce") if "rollover" in m else np.nan
    m["is_main"] = m["is_main"].astype(str).str.strip().str.lower().isin(["true", "1", "yes", "y"]) \
        if "is_main" in m else False
    return m


@lru_cache(maxsize=1024)
def _default_quantity(unit: str, item: str) -> str:
    try:
        dim = str(parse_unit(unit).dimensionality)
    except UnitError:
        return "value"
    if dim == "[mass] * [length] ** 2 / [time] ** 2":
        return "heat" if item in ("heat", "steam", "hot_water") else "active_energy"
    return {"[mass]": "mass", "[normal_volume]": "normal_volume", "[length] ** 3": "volume"}.get(dim, "value")


_NORMALIZED_COLUMNS = frozenset({"meter_id", "node_id", "unit", "item", "source", "replaces", "register", "rollover",
                                 "is_main", "installed", "removed", "quantity", "identifier"})


def normalize_meters(meters: pd.DataFrame) -> pd.DataFrame:
    """The meter register with typed columns (as :func:`read_meters`, tolerant).

    Fills ``quantity`` (what the meter measures by default) where the register has none: the
    pint dimension of its unit (``active_energy``, ``heat``, ``mass``, ``normal_volume`` …).
    A frame this function made (``attrs["normalized_meters"]``) is taken as it is.
    """
    if meters.attrs.get("normalized_meters") and _NORMALIZED_COLUMNS <= set(meters.columns):
        return meters
    m = meters.copy()
    if "meter_id" not in m.columns:
        raise ValueError("meters needs a meter_id column")
    m["meter_id"] = m["meter_id"].astype(str)
    if m["meter_id"].duplicated().any():
        dup = sorted(m.loc[m["meter_id"].duplicated(), "meter_id"].unique())
        raise ValueError(f"duplicate meter_id in meters: {dup}")
    for c, default in (("node_id", ""), ("unit", ""), ("item", ""), ("source", ""), ("replaces", ""),
                       ("register", "interval")):
        if c not in m.columns:
            m[c] = default
        m[c] = m[c].fillna(default).astype(str).replace({"nan": default, "None": default})
    m["register"] = m["register"].str.strip().str.lower().replace({"": "interval"})
    bad = ~m["register"].isin(["interval", "cumulative"])
    if bad.any():
        raise ValueError(f"meters: register must be interval or cumulative: {m.loc[bad, 'meter_id'].tolist()}")
    if "rollover" not in m.columns:
        m["rollover"] = np.nan
    m["rollover"] = pd.to_numeric(m["rollover"].replace("", None), errors="coerce").astype("float64")
    if "is_main" not in m.columns:
        m["is_main"] = False
    m["is_main"] = m["is_main"].astype(str).str.strip().str.lower().isin(["true", "1", "yes", "y"])
    for c in ("installed", "removed"):
        if c not in m.columns:
            m[c] = pd.NaT
        m[c] = pd.to_datetime(m[c].replace("", None), errors="coerce").astype("datetime64[us]")
    # a meter without a stated quantity (no column, or an empty cell, as master data gives it)
    # measures its unit's default one
    q = m["quantity"] if "quantity" in m.columns else pd.Series(None, index=m.index, dtype=object)
    q = q.astype(object).where(q.notna(), "").astype(str).str.strip().replace({"nan": "", "None": ""})
    empty = q.eq("")
    if empty.any():
        q[empty] = [_default_quantity(u, it) for u, it in zip(m.loc[empty, "unit"], m.loc[empty, "item"])]
    m["quantity"] = q
    if "identifier" not in m.columns:
        m["identifier"] = None
    m = m.reset_index(drop=True)
    m.attrs["normalized_meters"] = True
    return m
