"""Quick calculation from the activity-data template (``workbench calc``).

The template (``workbench/templates/activity_template.csv|xlsx``) has one activity record per
row; :func:`quick_calc` reads it, accounts it and returns a JSON-ready dict.
"""
from __future__ import annotations

import datetime as _dt
import math
import sys
from pathlib import Path

import pandas as pd

from workbench.accounting import (
    SOURCE_NAMES_EN,
    SOURCE_NAMES_ZH,
    SOURCES,
    account,
    carbon_efficiency,
)
from workbench.core.activity import read_activity
from workbench.core.factors import default_library

__all__ = ["quick_calc", "render_table", "template_path"]


def template_path(kind: str = "csv") -> Path:
    """Path of a shipped template: ``csv``, ``xlsx`` or ``example`` (a filled CSV)."""
    from importlib import resources

    name = {"csv": "activity_template.csv", "xlsx": "activity_template.xlsx",
            "example": "activity_example.csv", "example_xlsx": "activity_example.xlsx"}[kind]
    return Path(str(resources.files("workbench") / "templates" / name))


def _num(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def quick_calc(path, *, year: int | None = None, region: str | None = None, gwp: str = "AR5",
               value_added: float | None = None) -> dict:
    """Account a template file; see ``workbench calc --help`` for the columns.

    ``value_added`` (万元) applies to the whole file; otherwise a ``value_added`` column is summed
    per period.  ``carbon_efficiency`` (tCO2e/万元) is given when value added is known for every
    period that has emissions.
    """
    lib = default_library(str(gwp).upper()) if str(gwp).upper() in ("SAR", "AR4", "AR5", "AR6") else None
    if lib is None:
        raise ValueError(f"unknown GWP set '{gwp}' (choose one of SAR, AR4, AR5, AR6)")
    activity = read_activity(path, library=lib)
    default_year = year or (_dt.date.today().year - 1)
    ledger = account(activity, lib, year=default_year, region=region)
    total = float(ledger["tco2e"].sum())
    by_source = {s: float(ledger.loc[ledger["source"] == s, "tco2e"].sum()) for s in SOURCES}
    per = ledger.groupby("period")["tco2e"].sum()
    va_col = activity.assign(period=ledger["period"]).groupby("period")["value_added"].sum(min_count=1)
    by_period = []
    for p, e in per.items():
        va = _num(va_col.get(p, float("nan")))
        by_period.append({"period": p, "tco2e": float(e), "value_added": va,
                          "carbon_efficiency": _num(float(carbon_efficiency(e, va))) if va else None})
    out = {
        "file": str(path),
        "unit": "tCO2e",
        "total_tco2e": total,
        "by_source": by_source,
        "by_gas": {k: float(v) for k, v in ledger.groupby("gas")["tco2e"].sum().items()},
        "by_period": by_period,
        "year": sorted({int(y) for y in ledger["year"]}),
        "region": sorted(set(ledger["region"])),
        "gwp_set": lib.gwp_set,
        "edition": sorted(set(ledger["edition"])),
        "factor_library_version": lib.version,
    }
    if value_added is not None:
        out["value_added"] = float(value_added)
        out["value_added_source"] = "--value-added"
    elif va_col.notna().any():
        if va_col.reindex(per.index).notna().all():
            out["value_added"] = float(va_col.sum())
            out["value_added_source"] = "value_added column, summed per period"
        else:
            missing = [p for p in per.index if pd.isna(va_col.get(p))]
            out["carbon_efficiency_note"] = f"value added missing for period(s) {missing}: no overall carbon efficiency"
    if "value_added" in out:
        out["carbon_efficiency"] = float(carbon_efficiency(total, out["value_added"]))
        out["carbon_efficiency_unit"] = "tCO2e/万元"
    rows = []
    for r in ledger.itertuples(index=False):
        rows.append({
            "row": int(r.row), "record_id": r.record_id, "facility": r.facility, "period": r.period,
            "source": r.source, "item": r.item, "gas": r.gas, "quantity": float(r.quantity), "unit": r.unit,
            "activity_gj": _num(r.activity_gj), "ncv": _num(r.ncv), "ncv_unit": r.ncv_unit or None,
            "carbon_content": _num(r.carbon_content), "carbon_content_unit": r.carbon_content_unit or None,
            "oxidation_rate": _num(r.oxidation_rate), "emission_factor": _num(r.emission_factor),
            "ef_unit": r.ef_unit or None, "purity": _num(r.purity), "gwp": _num(r.gwp),
            "emission_t": _num(r.emission_t), "tco2e": float(r.tco2e), "method": r.method,
            "factor_ids": r.factor_ids.split(";") if r.factor_ids else [], "notes": r.notes or None,
        })
    out["rows"] = rows
    out["factors"] = _factors_used(ledger, lib)
    return out


def _factors_used(ledger: pd.DataFrame, lib) -> list[dict]:
    ids = sorted({i for s in ledger["factor_ids"] for i in s.split(";") if i})
    t = lib.table.set_index("factor_id")
    out = []
    for fid in ids:
        if fid in t.index:
            row = t.loc[fid]
            out.append({"factor_id": fid, "value": float(row["value"]), "unit": row["unit"],
                        "document": row["document"], "table": row["table"],
                        "year": None if pd.isna(row["year"]) else int(row["year"]),
                        "region": row["region"] or None, "verified": bool(row["verified"])})
        else:
            out.append({"factor_id": fid, "document": "site-measured value given in the activity file"})
    return out


def render_table(result: dict) -> None:
    """Print the result as readable tables (rich)."""
    from rich.console import Console
    from rich.table import Table

    con = Console(width=None if sys.stdout.isatty() else 140)
    t = Table(title=f"Emissions 排放 — {result['file']}", show_lines=False)
    for col, just in (("row", "right"), ("period", "left"), ("source", "left"), ("item", "left"),
                      ("quantity", "right"), ("factor", "left"), ("tCO2e", "right")):
        t.add_column(col, justify=just)
    for r in result["rows"]:
        if r["method"].startswith("FC×NCV×CC"):
            factor = f"NCV {r['ncv'] if r['ncv'] is not None else '-'} {r['ncv_unit'] or ''}, EF {r['emission_factor']:.6g} tCO2/GJ"
        elif r["method"] == "m×GWP":
            factor = f"GWP {r['gwp']:g}"
        else:
            factor = f"EF {r['emission_factor']:.6g} {r['ef_unit']}"
        t.add_row(str(r["row"]), r["period"], r["source"], r["item"], f"{r['quantity']:,.6g} {r['unit']}",
                  factor, f"{r['tco2e']:,.3f}")
    con.print(t)
    s = Table(title="By source 分类", show_lines=False)
    s.add_column("source")
    s.add_column("来源")
    s.add_column("tCO2e", justify="right")
    for k in SOURCES:
        s.add_row(SOURCE_NAMES_EN[k], SOURCE_NAMES_ZH[k], f"{result['by_source'][k]:,.3f}")
    s.add_row("[b]Total 合计[/b]", "", f"[b]{result['total_tco2e']:,.3f}[/b]")
    con.print(s)
    if "carbon_efficiency" in result:
        con.print(f"Value added 增加值: {result['value_added']:,.2f} 万元 ({result['value_added_source']})")
        con.print(f"[b]Carbon efficiency 碳效: {result['carbon_efficiency']:.4f} tCO2e/万元[/b]")
    elif "carbon_efficiency_note" in result:
        con.print(result["carbon_efficiency_note"])
    notes = sorted({r["notes"] for r in result["rows"] if r["notes"]})
    if notes:
        con.print("Notes 说明:")
        for n in notes:
            con.print(f"  - {n}")
    con.print(f"GWP {result['gwp_set']} · {', '.join(result['edition'])} · factor library {result['factor_library_version']}")
