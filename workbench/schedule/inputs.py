"""What a run read and which code ran it: the input hash and the code version of a run record.

**Input hash.**  SHA-256 over a canonical JSON *manifest* of the lake data in the run's scope
(an enterprise, a span of months, the tables the notebook reads — :meth:`Schedule.input_scope`)::

    {"scope":   {"enterprise": ID, "months": [YYYY-MM …], "tables": [...]},
     "batches": [[table, batch_id, raw SHA-256, rows in scope], …]   sorted,
     "master":  {"meters": sha256, "boundary": sha256, "enterprise": sha256}}

* a batch counts with the number of its *live* rows that fall in the scope — ``consumption``,
  ``readings``, ``telemetry`` by ``ts`` in [first day of the first month, first day after the
  last month) (as :func:`workbench.inventory.sources.lake_meter_consumption` reads them);
  ``activity``, ``invoices``, ``production`` by their ``period`` column;
* so the hash changes when a batch with rows in the scope is ingested (a correction, a late
  bill, late readings), and when the lake's meter register, boundary or enterprise record
  changes; it does **not** change on compaction or roll-up (files are rewritten, rows and their
  batch ids are not), on a duplicate upload (stored as a batch without rows), on data of other
  months or tables, on another enterprise's data, or on the lake's path (the path is not
  hashed: a lake moved to another disk is the same data);
* the lake is the truth, not a file listing: rows are counted by batch with DuckDB over the live
  files of the manifest (only the partitions of the span for the series tables).

A run from an Intake catalog instead of a lake hashes the catalog file and every file it names
(``{CATALOG_DIR}`` resolved), by content.

**Code version.**  ``git:<commit>`` of the checkout the package runs from (``+dirty`` when
tracked files differ from it), else ``workbench <version>``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pandas as pd

from workbench.schedule.spec import ScheduleError

__all__ = ["InputError", "code_version", "input_manifest", "manifest_hash", "months_of", "sha256_file"]

SERIES = {"consumption": "ts", "readings": "ts", "telemetry": "ts"}


class InputError(ScheduleError, ValueError):
    """The inputs of a run cannot be read (no such lake or enterprise, a bad period)."""


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _sha_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def months_of(start: str, end: str) -> list[str]:
    """The months ``YYYY-MM`` from ``start`` to ``end`` (each ``YYYY-MM``, ``YYYY-Qn`` or ``YYYY``)."""
    def span(text: str) -> tuple[pd.Period, pd.Period]:
        t = str(text).strip()
        try:
            if len(t) == 4 and t.isdigit():
                return pd.Period(f"{t}-01", "M"), pd.Period(f"{t}-12", "M")
            if "-Q" in t.upper():
                q = pd.Period(t.upper(), "Q")
                return q.asfreq("M", "start"), q.asfreq("M", "end")
            if len(t) == 7:
                m = pd.Period(t, "M")
                return m, m
        except (ValueError, TypeError):
            pass
        raise InputError(f"period {text!r}: write YYYY-MM, YYYY-Qn or YYYY")

    lo, hi = span(start)[0], span(end or start)[1]
    if hi < lo:
        raise InputError(f"inputs: end {end} is before start {start}")
    return [str(p) for p in pd.period_range(lo, hi, freq="M")]


def _lake_batches(lake, table: str, months: list[str]) -> pd.DataFrame:
    """(batch_id, rows) of ``table``'s live rows in the months."""
    start = pd.Period(months[0], "M").start_time
    end = (pd.Period(months[-1], "M") + 1).start_time
    between = (start, end) if table in SERIES else None
    con = lake.connect(tables=[table], registries=False, between=between)
    try:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        if table not in views:
            return pd.DataFrame(columns=["batch_id", "rows"])
        cols = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
        if table in SERIES:
            where, args = "ts >= ? AND ts < ?", [start.to_pydatetime(), end.to_pydatetime()]
        elif "period" in cols:
            where, args = "CAST(period AS VARCHAR) IN (SELECT unnest(?::VARCHAR[]))", [months]
        else:
            where, args = "TRUE", []
        return con.execute(f"SELECT CAST(batch_id AS VARCHAR) AS batch_id, count(*)::BIGINT AS rows FROM {table} "
                           f"WHERE {where} GROUP BY 1 ORDER BY 1", args).df()
    finally:
        con.close()


def input_manifest(scope: dict) -> dict:
    """The manifest of a run's inputs (see the module doc); ``{}`` for an empty scope.

    Parameters
    ----------
    scope : ``{lake, enterprise, start, end, tables}`` (a lake root, an enterprise id, months
        ``YYYY-MM``/``YYYY-Qn``/``YYYY``, lake tables) or ``{catalog}`` (an Intake catalog file)
    """
    if not scope:
        return {}
    if "catalog" in scope and "lake" not in scope:
        return _catalog_manifest(Path(scope["catalog"]))
    from workbench.lake.store import Lake

    root = scope["lake"]
    if "://" not in root and not Path(root).is_dir():
        raise InputError(f"lake {root}: no such folder")
    enterprise = scope.get("enterprise") or None
    if enterprise and "://" not in root and not (Path(root) / "enterprises" / enterprise).is_dir():
        raise InputError(f"lake {root}: no enterprise {enterprise!r} in it")
    if not scope.get("start"):
        raise InputError("inputs: no period (set period_start/period_end, period or year, or inputs.start/end)")
    months = months_of(scope["start"], scope.get("end") or scope["start"])
    lake = Lake(root, enterprise=enterprise)
    b = lake.batches()
    info = {r.batch_id: r for r in b.itertuples()} if len(b) else {}
    rows, listed = [], []
    for table in sorted(scope.get("tables") or ()):
        for r in _lake_batches(lake, table, months).itertuples():
            meta = info.get(r.batch_id)
            sha = str(getattr(meta, "sha256", "") or "")
            rows.append([table, r.batch_id, sha, int(r.rows)])
            listed.append({"table": table, "batch_id": r.batch_id, "sha256": sha, "rows": int(r.rows),
                           "raw_name": str(getattr(meta, "raw_name", "") or ""),
                           "source": str(getattr(meta, "source", "") or ""),
                           "stored_at": str(getattr(meta, "stored_at", "") or "")})
    meters = lake.meters()
    meters = meters.sort_values("meter_id").astype(str).to_dict("records") if len(meters) else []
    boundary = lake.boundary()
    boundary = boundary.sort_values("node_id").astype(str).to_dict("records") if len(boundary) else []
    master = {"meters": _sha_json(meters), "boundary": _sha_json(boundary), "enterprise": _sha_json(lake.enterprise_info())}
    hashed = {"scope": {"enterprise": enterprise or "", "months": months, "tables": sorted(scope.get("tables") or ())},
              "batches": sorted(rows), "master": master}
    return {**hashed, "batches_listed": listed, "lake": root, "sha256": _sha_json(hashed)}


def _catalog_manifest(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise InputError(f"catalog {path}: no such file")
    text = path.read_text(encoding="utf-8-sig")
    files = {str(path.name): sha256_file(path)}

    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and ("/" in v or "\\" in v):
            cand = Path(v.replace("{CATALOG_DIR}", str(path.parent)).replace("{{ CATALOG_DIR }}", str(path.parent)))
            if not cand.is_absolute():
                cand = path.parent / cand
            if cand.is_file():
                files[os.path.relpath(cand.resolve(), path.parent.resolve())] = sha256_file(cand)

    walk(yaml.safe_load(text))
    hashed = {"catalog_files": sorted(files.items())}
    return {**hashed, "catalog": str(path), "sha256": _sha_json(hashed)}


def manifest_hash(manifest: dict) -> str:
    """The input hash of a manifest (``""`` when the run declared no inputs)."""
    return str(manifest.get("sha256", "")) if manifest else ""


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``git:<commit>[+dirty]`` of the package's checkout, else ``workbench <version>``."""
    import workbench

    here = Path(workbench.__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=False)
        if sha.returncode == 0 and len(sha.stdout.strip()) == 40:
            dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=30, check=False)
            return f"git:{sha.stdout.strip()}" + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return f"workbench {workbench.__version__}"
