"""The evidence behind an inventory (seed §9.3): every reported figure down to its ledger rows, each
row to its activity record, the lake batch and raw file it came from (name, SHA-256, who sent it,
when) and the factors it used with their provenance (document, table, year, why chosen).

Both the verification package (:mod:`workbench.verification.package`) and the verifier's evidence
page (:mod:`workbench.apps.evidence`) read it from here, so the package a verifier receives and the
page a verifier browses show the same records.  Nothing is recomputed: the figures are the
inventory's (:func:`workbench.inventory.compute.compute_inventory_from_lake`), the lineage is the
ledger's (``basis``, ``lake_batch``, ``raw_sha256``) and the batch records are the lake's
(:meth:`workbench.lake.store.Lake.batches`); the raw bytes are read with
:meth:`~workbench.lake.store.Lake.read_raw` and checked against the SHA-256 the lake recorded when it
stored them.

Drill-down: :meth:`Evidence.by_source` (the total by source) → :meth:`Evidence.by_facility` (one
source by facility) → :meth:`Evidence.rows` (the ledger rows of a source and facility) →
:meth:`Evidence.record` (one row's activity record, factors and raw files) →
:meth:`Evidence.raw_file` (the bytes).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.inventory.compute import Inventory, compute_inventory_from_lake, months
from workbench.verification.errors import VerificationError

__all__ = ["ACTIVITY_COLUMNS", "BATCH_COLUMNS", "FACTOR_ID_COLUMNS", "Evidence", "RecordEvidence",
           "activity_records", "collect", "fmt", "raw_path", "referenced_batches", "value_added_records"]

#: the activity record of each ledger row, as the package's ``data/activity.csv`` holds it
ACTIVITY_COLUMNS = [
    "record_id", "original_record", "node_id", "facility", "period", "source", "item", "gas", "quantity", "unit",
    "data_tier", "document", "ncv", "ncv_unit", "carbon_content", "carbon_content_unit", "oxidation_rate",
    "emission_factor", "ef_unit", "purity", "basis", "lake_batch", "raw_sha256", "raw_files",
]
#: the lake's record of each batch the evidence refers to (``data/batches.csv``); ``file``: the raw
#: file's path in the package, ``role``: what the batch is evidence of
BATCH_COLUMNS = ["batch_id", "role", "kind", "source", "connector", "origin", "raw_name", "sha256", "size",
                 "received_at", "stored_at", "sender", "status", "file"]
#: ledger column of each factor kind's id → (kind, the ledger's value column)
FACTOR_ID_COLUMNS = {
    "ncv_factor_id": ("ncv", "ncv"),
    "carbon_content_factor_id": ("carbon_content", "carbon_content"),
    "oxidation_rate_factor_id": ("oxidation_rate", "oxidation_rate"),
    "emission_factor_id": ("emission_factor", "emission_factor"),
    "gwp_factor_id": ("gwp", "gwp"),
}
_OVERRIDES = ["ncv", "ncv_unit", "carbon_content", "carbon_content_unit", "oxidation_rate", "emission_factor",
              "ef_unit", "purity"]


def fmt(value, digits: int = 3) -> str:
    """A figure as the evidence page and the package's summaries print it: ``1,234.567``; ``–`` for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):,.{digits}f}"


def raw_path(batch_id: str, raw_name: str) -> str:
    """Where a batch's raw file sits in a package: ``raw/<batch_id>/<raw name>``."""
    name = str(raw_name or "raw.bin").replace("/", "_").replace("\\", "_").lstrip(".") or "raw.bin"
    return f"raw/{batch_id}/{name}"


def _split(text) -> list[str]:
    return [x for x in str(text or "").split(";") if x and x != "nan"]


def activity_records(inv: Inventory, batches: pd.DataFrame | None = None) -> pd.DataFrame:
    """One activity record per ledger row (:data:`ACTIVITY_COLUMNS`), in the ledger's order: what
    was accounted (quantity and unit as recorded, site-measured factors given on the record) and
    where it came from (``basis`` ledger/invoice/meters, ``lake_batch``, ``raw_sha256``, and
    ``raw_files``: the raw files' paths in a package, from ``batches``).  A record split over
    facilities by sub-meter shares (:mod:`workbench.inventory.allocation`) keeps the original
    record's id in ``original_record``."""
    led = inv.ledger.reset_index(drop=True)
    act = inv.activity.reset_index(drop=True)
    if len(act) != len(led) or not (act["record_id"].astype(str).to_numpy() == led["record_id"].astype(str).to_numpy()).all():
        act = led[["record_id"]].merge(act.drop_duplicates("record_id"), on="record_id", how="left")
    out = pd.DataFrame({c: led[c] for c in ("record_id", "node_id", "facility", "period", "source", "item", "gas",
                                            "quantity", "unit", "data_tier", "document")})
    rid = out["record_id"].astype(str)
    tail = rid.str.rsplit("@", n=1).str[-1]
    allocated = rid.str.contains("@", regex=False) & tail.eq(out["node_id"].astype(str))
    out.insert(1, "original_record", np.where(allocated, rid.str.rsplit("@", n=1).str[0], rid))
    for c in _OVERRIDES:
        out[c] = act[c].to_numpy() if c in act else (np.nan if c in ("ncv", "carbon_content", "oxidation_rate",
                                                                   "emission_factor", "purity") else "")
        if out[c].dtype == object:
            out[c] = out[c].fillna("")
    for c in ("basis", "lake_batch", "raw_sha256"):
        out[c] = led[c].fillna("").astype(str).to_numpy() if c in led else ""
    files = {} if batches is None or batches.empty else dict(zip(batches["batch_id"], batches["file"]))
    out["raw_files"] = [";".join(files[b] for b in _split(lb) if b in files) for lb in out["lake_batch"]]
    return out[ACTIVITY_COLUMNS]


def referenced_batches(lake, inv: Inventory, value_added: pd.DataFrame | None = None) -> pd.DataFrame:
    """The lake's batch records (:data:`BATCH_COLUMNS`) of every batch a ledger row came from
    (``role`` activity) and of those holding the value added (``role`` value_added)."""
    wanted: dict[str, str] = {}
    for lb in inv.ledger.get("lake_batch", pd.Series(dtype=str)).fillna(""):
        for b in _split(lb):
            wanted.setdefault(b, "activity")
    if value_added is not None and len(value_added):
        for lb in value_added["lake_batches"]:
            for b in _split(lb):
                wanted.setdefault(b, "value_added")
    b = lake.batches()
    if b.empty or not wanted:
        return pd.DataFrame(columns=BATCH_COLUMNS)
    b = b[b["batch_id"].isin(wanted)].copy()
    missing = sorted(set(wanted) - set(b["batch_id"]))
    if missing:
        raise VerificationError(f"the ledger names lake batch {missing[0]}, which the lake of "
                                f"{lake.enterprise or 'the root'} has no record of")
    b["role"] = b["batch_id"].map(wanted)
    b["file"] = [raw_path(i, n) for i, n in zip(b["batch_id"], b["raw_name"])]
    b["size"] = pd.to_numeric(b["size"], errors="coerce").fillna(0).astype("int64")
    for c in BATCH_COLUMNS:
        if c not in b:
            b[c] = ""
    return b[BATCH_COLUMNS].fillna("").sort_values(["role", "stored_at", "batch_id"]).reset_index(drop=True)


def value_added_records(lake, inv: Inventory) -> pd.DataFrame:
    """Value added per month (万元, the inventory's) and the lake batches holding value-added rows
    of that month (``lake_batches``, ``;``-joined)."""
    eff = inv.efficiency
    out = pd.DataFrame({"period": eff["period"].astype(str), "value_added": eff["value_added"].astype(float),
                        "unit": "万元"})
    p = lake.retrieve("production")
    by: dict = {}
    if not p.empty and "measure" in p:
        p = p[(p["measure"] == "value_added") & p["period"].astype(str).isin(set(out["period"]))]
        by = p.groupby(p["period"].astype(str))["batch_id"].agg(lambda s: ";".join(sorted(set(s)))).to_dict()
    out["lake_batches"] = out["period"].map(by).fillna("")
    return out


@dataclass
class RecordEvidence:
    """One ledger row's evidence: ``ledger`` (the row), ``activity`` (its activity record),
    ``factors`` (the factors it used, with provenance and why each was chosen) and ``raw`` (the lake's
    record of each batch it came from, with the raw file's name and SHA-256)."""

    record_id: str
    ledger: dict
    activity: dict
    factors: pd.DataFrame
    raw: pd.DataFrame


@dataclass
class Evidence:
    """An enterprise's inventory with its lineage (see the module doc).  ``lake``: the enterprise's
    lake the raw files are read from."""

    enterprise: str
    inventory: Inventory
    activity: pd.DataFrame
    batches: pd.DataFrame
    value_added: pd.DataFrame
    lake: object = field(repr=False, default=None)

    @property
    def total_tco2e(self) -> float:
        return float(self.inventory.total_tco2e)

    @property
    def ledger(self) -> pd.DataFrame:
        return self.inventory.ledger

    def _names(self, facility: str) -> tuple[str, str]:
        b = self.inventory.boundary
        if facility in b.nodes.index:
            return b.name(facility, "zh"), b.name(facility, "en")
        return facility, facility

    def by_source(self) -> pd.DataFrame:
        """The total by source (the regime's sources in its order, signed tCO2e) and the number of
        ledger rows behind each."""
        bs = self.inventory.by_source()
        counts = self.ledger["source"].value_counts()
        bs["rows"] = bs["source"].map(counts).fillna(0).astype(int)
        return bs

    def by_facility(self, source: str | None = None) -> pd.DataFrame:
        """One source's (every source's when ``None``) tCO2e by facility, with names and row counts."""
        led = self.ledger if source is None else self.ledger[self.ledger["source"] == source]
        g = led.groupby("facility", sort=True).agg(tco2e=("tco2e", "sum"), rows=("tco2e", "size")).reset_index()
        names = [self._names(f) for f in g["facility"]]
        g.insert(1, "name_zh", [n[0] for n in names])
        g.insert(2, "name_en", [n[1] for n in names])
        return g

    def rows(self, source: str | None = None, facility: str | None = None) -> pd.DataFrame:
        """The ledger rows of a source and facility (either may be ``None``: all), the columns a
        verifier reads first."""
        led = self.ledger
        if source is not None:
            led = led[led["source"] == source]
        if facility is not None:
            led = led[led["facility"] == facility]
        cols = ["record_id", "period", "node_id", "item", "quantity", "unit", "method", "factor_ids", "tco2e",
                "basis", "lake_batch"]
        return led[[c for c in cols if c in led]].reset_index(drop=True)

    def record(self, record_id: str) -> RecordEvidence:
        """The evidence of one ledger row (a :class:`RecordEvidence`); an unknown id is a
        :class:`VerificationError`."""
        led = self.ledger
        at = np.flatnonzero(led["record_id"].astype(str).to_numpy() == str(record_id))
        if not len(at):
            raise VerificationError(f"no ledger row {record_id!r} in the inventory of {self.enterprise}")
        row = led.iloc[int(at[0])]
        act = self.activity.iloc[int(at[0])]
        ids = [row[c] for c in FACTOR_ID_COLUMNS if isinstance(row.get(c), str) and row[c]]
        f = self.inventory.factors_used
        factors = f[f["factor_id"].isin(ids)].reset_index(drop=True) if len(f) else f
        raw = self.batches[self.batches["batch_id"].isin(_split(row.get("lake_batch", "")))].reset_index(drop=True)
        return RecordEvidence(str(record_id), row.to_dict(), act.to_dict(), factors, raw)

    def raw_file(self, batch_id: str) -> tuple[str, bytes]:
        """(name, bytes) of the raw file of a batch the evidence refers to, read from the lake and
        checked against the SHA-256 the lake recorded when it stored the bytes."""
        hit = self.batches[self.batches["batch_id"] == batch_id]
        if hit.empty:
            raise VerificationError(f"batch {batch_id!r} is not part of the evidence of {self.enterprise}")
        rec = hit.iloc[0]
        data = self.lake.read_raw(batch_id)
        got = hashlib.sha256(data).hexdigest()
        if got != rec["sha256"]:
            raise VerificationError(f"raw file of batch {batch_id} ({rec['raw_name']}): SHA-256 {got} differs "
                                    f"from {rec['sha256']} recorded when the lake stored it")
        return str(rec["raw_name"]), data


def collect(lake, enterprise: str, start: str, end: str, *, registry=None, gwp: str = "AR5",
            inventory: Inventory | None = None) -> Evidence:
    """The evidence of ``enterprise``'s inventory of the months ``start``..``end`` (``YYYY-MM``) from
    its lake (``inventory``: one already computed for them)."""
    months(start, end)
    lk = lake.for_enterprise(enterprise)
    inv = inventory if inventory is not None else compute_inventory_from_lake(
        lk, enterprise, start, end, registry=registry, gwp=gwp)
    va = value_added_records(lk, inv)
    batches = referenced_batches(lk, inv, va)
    return Evidence(enterprise, inv, activity_records(inv, batches), batches, va, lk)
