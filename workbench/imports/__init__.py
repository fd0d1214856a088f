"""Bring your own data: one import for every file a plant has (``workbench import``, the import
wizard notebook).

:func:`import_file` is the whole path, in named steps that the CLI and ``notebooks/import.ipynb``
both call:

1. :func:`plan` — what the file is (:func:`connectors.detect.plan_import`: kind, encoding, header
   rows, column meanings, unit, meter, register type), with the user's hints and a replayed
   mapping taking precedence over every guess;
2. :func:`read` — the file read as planned (a :class:`~workbench.core.results.ConnectorResult`);
3. :func:`propose_meters` — meters of the file that the enterprise's register does not know,
   proposed for registration with the unit and register type found (registered only when asked;
   their readings are otherwise quarantined, never dropped);
4. :func:`workbench.ingestion.pipeline.preview` (``dry_run``) or
   :func:`workbench.ingestion.pipeline.ingest` — the one write path;
5. :func:`totals` — per meter or item, in normalised units (kWh, m3, t, GJ … for meters; the unit
   the emission factor is expressed per for activity).

The accepted plan is a mapping YAML (:func:`save_mapping`) that ``--mapping`` replays; a real
import also keeps it beside the batch in the lake (``<lake>/imports/<batch_id>.yaml``), so what was
done to a file can be read back.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from connectors import detect
from workbench.core.errors import WorkbenchError

__all__ = ["ImportError_", "ImportOutcome", "import_file", "load_mapping", "plan", "propose_meters", "read",
           "save_mapping", "totals"]

#: the unit totals of each measured quantity are shown in
NORMAL_UNITS = {"active_energy": "kWh", "reactive_energy": "kvarh", "heat": "GJ", "volume": "m3",
                "normal_volume": "Nm3", "mass": "t"}


class ImportError_(WorkbenchError, ValueError):
    """An import that cannot go on (says what to give)."""


@dataclass
class ImportOutcome:
    """What an import did (or, with ``dry_run``, would do)."""

    path: Path
    plan: detect.ImportPlan
    dry_run: bool
    rows: int = 0
    stored: int = 0
    quarantined: int = 0
    totals: list = field(default_factory=list)
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)
    first_rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    proposed_meters: pd.DataFrame = field(default_factory=pd.DataFrame)
    registered_meters: list = field(default_factory=list)
    batch_id: str | None = None
    status: str = "dry-run"
    mapping_path: str | None = None
    message: str | None = None
    review: list = field(default_factory=list)       # invoice fields below the trust threshold

    def to_json(self) -> dict:
        """The ``--json`` object."""
        p = self.plan
        q = self.quarantine
        return {
            "file": str(self.path), "kind": p.kind, "encoding": p.encoding, "dry_run": self.dry_run,
            "status": self.status, "batch_id": self.batch_id,
            "rows": int(self.rows), "stored": int(self.stored), "quarantined": int(self.quarantined),
            "totals": self.totals,
            "guesses": [g.to_dict() for g in p.guesses], "warnings": list(p.warnings),
            "quarantine": [] if q is None or q.empty else [
                {"row": (None if pd.isna(r) else int(r)), "column": (None if pd.isna(c) else str(c)), "reason": str(w)}
                for r, c, w in zip(q.get("row", [None] * len(q)), q.get("column", [None] * len(q)), q["reason"])][:200],
            "proposed_meters": self.proposed_meters.to_dict("records") if len(self.proposed_meters) else [],
            "registered_meters": list(self.registered_meters),
            "mapping": p.to_mapping(), "mapping_path": self.mapping_path, "message": self.message,
            "review": self.review,
        }


# ------------------------------------------------------------------------------ steps
def load_mapping(path) -> dict:
    """A mapping YAML (written by :func:`save_mapping`) → the hints it replays; raises one line."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportError_(f"{path}: no such mapping file") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImportError_(f"{path}: not a readable YAML mapping ({first})") from None
    return detect.ImportPlan.hints_from_mapping(doc, str(path))


def save_mapping(plan_: detect.ImportPlan, path) -> str:
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(plan_.to_mapping(), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(path)


def plan(path, *, lake=None, hints: dict | None = None, mapping: dict | None = None) -> detect.ImportPlan:
    """Step 1: decide how to read ``path``; ``mapping`` (a replayed mapping) first, then ``hints``
    (flags) override it, then guesses fill the rest.  ``lake`` lends its meter register."""
    kw = dict(mapping or {})
    for k, v in (hints or {}).items():
        if v is None or v == {} or v == []:
            continue
        if k == "columns":
            kw["columns"] = {**kw.get("columns", {}), **v}
        else:
            kw[k] = v
    known = lake.meters() if lake is not None else None
    return detect.plan_import(path, known_meters=known, **kw)


def read(plan_: detect.ImportPlan, *, source: str = "file", known: dict | None = None):
    """Step 2: the file read as planned (``known``: master data an invoice's supplier, customer and
    account are matched against)."""
    if plan_.kind == "invoice":
        from connectors import invoice_ocr

        return invoice_ocr.read(plan_.path, known=known)
    return detect.read_planned(plan_, source=source)


def propose_meters(result, plan_: detect.ImportPlan, lake) -> pd.DataFrame:
    """Step 3: meters of a readings file that the lake's register does not know, as meter-register
    rows (meter_id, node_id, unit, register, quantity) — for the user to confirm."""
    if result.kind != "readings" or not len(result.data):
        return pd.DataFrame(columns=["meter_id", "node_id", "unit", "register", "quantity"])
    known = set(lake.meters()["meter_id"].astype(str)) if len(lake.meters()) else set()
    d = result.data
    ids = pd.Series(d["meter_id"].astype(str).unique())
    new = ids[~ids.isin(known)]
    rows = []
    sub = d[d["meter_id"].astype(str).isin(set(new))]

    def mode(g, col, default):
        return str(g[col].astype(str).mode().iat[0]) if col in g and len(g) else default
    for m, g in sub.groupby(sub["meter_id"].astype(str), sort=False):
        rows.append({"meter_id": m, "node_id": plan_.node or "", "unit": mode(g, "unit", plan_.unit or ""),
                     "register": plan_.registers.get(m) or mode(g, "register", "interval"),
                     "quantity": mode(g, "quantity", plan_.quantity or "")})
    return pd.DataFrame(rows, columns=["meter_id", "node_id", "unit", "register", "quantity"])


def register_meters(lake, proposed: pd.DataFrame, *, registry=None, enterprise=None, who: str = "import") -> list:
    """Register the proposed meters: in the master data when given (and the lake synced from it),
    else in the lake's meter register."""
    if not len(proposed):
        return []
    if registry is not None:
        if not enterprise:
            raise ImportError_("--register-meters with --registry needs --enterprise")
        rows = proposed.to_dict("records")
        registry.sync("meters", enterprise, rows, who=who, prune=False)
        lake.register_master_data(registry)
    else:
        current = lake.meters()
        lake.register_meters(pd.concat([current, proposed], ignore_index=True) if len(current) else proposed)
    return proposed["meter_id"].astype(str).tolist()


def totals(kind: str, tables: dict) -> list[dict]:
    """Step 5: per meter (readings → consumption) or item (activity), in normalised units."""
    from workbench.core.units import convert

    if kind == "readings":
        c = tables.get("consumption")
        if c is None or not len(c):
            return []
        out = []
        for (meter, qty, unit), g in c.groupby(["meter_id", "quantity", "unit"], observed=True, sort=True):
            to = NORMAL_UNITS.get(str(qty), str(unit))
            try:
                v = float(convert(g["value"].to_numpy(dtype="float64"), str(unit), to).sum())
            except Exception:  # noqa: BLE001 - a unit pint cannot convert stays as written
                v, to = float(g["value"].sum()), str(unit)
            out.append({"meter": str(meter), "quantity": v, "unit": to})
        return out
    if kind in ("activity", "statistics", "manual"):
        a = tables.get("activity")
        if a is None or not len(a):
            return []
        qcol, ucol = ("quantity_normalized", "unit_normalized") if "quantity_normalized" in a else ("quantity", "unit")
        out = []
        for (item, unit), g in a.groupby(["item", ucol], sort=True):
            out.append({"item": str(item), "quantity": float(pd.to_numeric(g[qcol]).sum()), "unit": str(unit)})
        return out
    if kind == "production":
        p = tables.get("production")
        if p is None or not len(p):
            return []
        key = p["measure"].where(p["measure"] != "output", p["product"].astype(str))
        out = []
        for k, g in p.groupby(key, sort=True):
            q, u = _in_unit(g["quantity"].to_numpy(dtype="float64"), g["unit"].astype(str).to_numpy(), "t")
            out.append({"item": str(k), "quantity": q, "unit": u})
        return out
    if kind == "invoice":
        inv = tables.get("invoices")
        if inv is None or not len(inv):
            return []
        return [{"item": str(i), "quantity": float(pd.to_numeric(g["quantity"]).sum()), "unit": str(u)}
                for (i, u), g in inv.groupby(["item", "unit"], sort=True)]
    return []


# ------------------------------------------------------------------------------ the whole path
def import_file(path, *, lake, enterprise: str | None = None, dry_run: bool = False, hints: dict | None = None,
                mapping: dict | None = None, register_new_meters: bool = False, registry=None,
                sender: str | None = None, source: str = "file", save_mapping_to=None,
                review_queue=None) -> ImportOutcome:
    """Plan, read, (propose and register meters,) preview or ingest, total — see the module doc."""
    from workbench.ingestion.mapping import Mapping
    from workbench.ingestion.pipeline import ingest, preview

    if enterprise is not None and enterprise != lake.enterprise:
        lake = lake.for_enterprise(enterprise)
    path = Path(path)
    p = plan(path, lake=lake, hints=hints, mapping=mapping)
    if p.kind == "production" and not p.node:
        p.node = _root_node(lake)
        p.guesses.append(detect.Guess("node", p.node, "production rows without a node belong to the enterprise",
                                      f"--node {p.node}"))
    known = None
    if p.kind == "invoice" and registry is not None and (enterprise or lake.enterprise):
        from connectors.invoice_ocr import known_from_master_data

        known = known_from_master_data(registry, enterprise or lake.enterprise)
    result = read(p, source=source, known=known)
    if p.kind == "manual" and not sender:
        sender = result.metadata.get("sender")
    code_mapping = None
    if mapping and mapping.get("mappings"):
        code_mapping = Mapping(pd.DataFrame(mapping["mappings"]), origin="mapping")
    proposed = propose_meters(result, p, lake)
    outcome = ImportOutcome(path=path, plan=p, dry_run=dry_run, rows=_rows_in(result), proposed_meters=proposed)
    if p.kind == "invoice":
        outcome.review = [{"field": r.get("field"), "value": _plain(r.get("value")),
                           "confidence": _plain(r.get("confidence")), "reason": r.get("reason")}
                          for r in (result.metadata.get("review") or [])]
    if save_mapping_to:
        outcome.mapping_path = save_mapping(p, save_mapping_to)
    if dry_run:
        # previewed as if the proposed meters were registered, so that their totals show; without
        # --register-meters their rows are counted as quarantined, as the real import would
        pv = preview(lake, result, mapping=code_mapping, extra_meters=proposed if len(proposed) else None)
        outcome.stored = pv.report.rows_curated
        outcome.quarantine = pv.quarantine
        outcome.first_rows = _first(pv.tables, p.kind)
        outcome.totals = totals(p.kind, pv.tables)
        if len(proposed) and not register_new_meters:
            new = set(proposed["meter_id"].astype(str))
            r = pv.table("readings")
            held = r[r["meter_id"].astype(str).isin(new)] if len(r) else r
            outcome.stored -= len(held)
            if len(held):
                outcome.quarantine = pd.concat([outcome.quarantine, pd.DataFrame({
                    "row": held["row"].to_numpy() if "row" in held else None, "column": "meter_id",
                    "reason": [f"meter not registered: {m} (proposed; --register-meters registers it)"
                               for m in held["meter_id"].astype(str)], "table": "readings"})], ignore_index=True)
            for t in outcome.totals:
                if t.get("meter") in new:
                    t["registered"] = False
        outcome.quarantined = len(outcome.quarantine)
        return outcome
    if register_new_meters and len(proposed):
        outcome.registered_meters = register_meters(lake, proposed, registry=registry, enterprise=enterprise,
                                                    who=sender or _who())
    if p.kind == "readings" and not len(lake.meters()):
        raise ImportError_(f"{path}: no meters registered for this enterprise; register the proposed meters with "
                           "--register-meters (or `workbench lake sync`)")
    if p.kind == "invoice" and review_queue is not None:
        from workbench.ingestion.review import submit

        queue = review_queue
        if isinstance(queue, (str, os.PathLike)):
            from connectors.invoice_ocr import ReviewQueue

            Path(queue).parent.mkdir(parents=True, exist_ok=True)
            queue = ReviewQueue(queue)
        sub = submit(lake, queue, result, sender=sender or _who())
        rep = sub["report"]
        if sub["item_id"] is not None:
            n = len(result.metadata.get("review") or [])
            outcome.message = (f"{n} field(s) wait for review as item {sub['item_id']} in {review_queue} "
                               "(notebooks/review_invoices.ipynb)")
    else:
        rep = ingest(lake, result, sender=sender or _who(), mapping=code_mapping)
    outcome.batch_id, outcome.status = rep.batch_id, rep.status
    outcome.message = outcome.message or rep.message
    outcome.stored, outcome.quarantined = rep.rows_curated, rep.rows_quarantined
    if rep.status == "duplicate":
        outcome.message = f"already imported as batch {rep.message or ''}".strip()
    else:
        batch = lake.sql(f"SELECT * FROM quarantine WHERE batch_id = '{rep.batch_id}'") \
            if rep.rows_quarantined else pd.DataFrame()
        outcome.quarantine = batch
        outcome.totals = totals(p.kind, _batch_tables(lake, p.kind, rep.batch_id))
        keep = Path(lake.root) / "imports" / f"{rep.batch_id}.yaml"
        save_mapping(p, keep)
        outcome.mapping_path = outcome.mapping_path or str(keep)
    return outcome


def _in_unit(values, units, to: str) -> tuple[float, str]:
    """Σ values in ``to`` when every unit converts to it (tonnes for 吨, kg …), else as written."""
    from workbench.core.units import UnitError, convert, converts

    if all(converts(u, to) for u in set(units)):
        try:
            return float(convert(values, units, to).sum()), to
        except UnitError:
            pass
    return float(values.sum()), str(units[0])


def _plain(v):
    """A value for JSON: numbers and text as they are, anything else as text."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def _root_node(lake) -> str:
    """The enterprise's top boundary node (``ENT`` when the lake has no boundary yet)."""
    b = lake.boundary()
    if len(b) and "parent_id" in b:
        top = b[b["parent_id"].fillna("").astype(str).str.strip().eq("")]
        if len(top):
            return str(top["node_id"].iat[0])
    return "ENT"


def _rows_in(result) -> int:
    rej = result.metadata.get("rejected")
    return len(result.data) + (len(rej) if isinstance(rej, pd.DataFrame) else 0)


def _first(tables: dict, kind: str) -> pd.DataFrame:
    name = {"readings": "readings", "production": "production", "invoice": "invoices"}.get(kind, "activity")
    t = tables.get(name)
    return t.head(5) if t is not None else pd.DataFrame()


def _batch_tables(lake, kind: str, batch_id: str) -> dict:
    names = {"readings": ["consumption"], "production": ["production"], "invoice": ["invoices"]}.get(kind, ["activity"])
    out = {}
    for n in names:
        try:
            out[n] = lake.sql(f"SELECT * FROM {n} WHERE batch_id = '{batch_id}'")
        except Exception:  # noqa: BLE001 - a table that does not exist yet holds nothing of the batch
            out[n] = pd.DataFrame()
    return out


def _who() -> str:
    return f"user:{os.environ.get('USER') or os.environ.get('USERNAME') or 'unknown'}"
