"""Intake (v2) catalogs of the workbench's tables.

Notebooks and apps read data only through catalogs, so the same notebook runs on the demo, on a
customer's export or (later) on the lake by pointing it at another catalog.
"""
from __future__ import annotations

import json
from pathlib import Path

import intake
import pandas as pd

from workbench.core.factors import LIBRARY_VERSION, default_library

__all__ = ["DEMO_TABLES", "write_demo_catalog", "write_factor_snapshot", "open_catalog", "load_enterprise"]

# name -> (file, description, reader kind, kwargs)
DEMO_TABLES = {
    "boundary": ("boundary.csv", "Boundary hierarchy 核算边界 (enterprise → facility → workshop → process → meter)", "csv"),
    "meters": ("meters.csv", "Meters and devices 计量器具 with source, item, unit and register type", "csv"),
    "readings": ("readings.parquet", "15-minute meter readings 计量数据 (meter_id, ts local Asia/Shanghai, value)", "parquet"),
    "activity": ("activity.csv", "Monthly activity records from the ledger 活动数据台账", "csv"),
    "monthly": ("monthly.csv", "Monthly production 产量 and value added 增加值 (万元)", "csv"),
    "anomalies": ("anomalies.csv", "Labelled anomalies planted in the readings 标注异常", "csv"),
    "factors": ("factors.parquet", "Factor library snapshot 排放因子库 (value, unit, document, table, year)", "parquet"),
    "factor_items": ("factor_items.csv", "Factor-library items 品种 with Chinese names and aliases", "csv"),
    "regions": ("regions.csv", "Regions and grid regions 区域/电网", "csv"),
}
_STR_COLUMNS = {"period": str, "node_id": str, "parent_id": str, "meter_id": str, "record_id": str,
                "replaces": str, "serial": str, "rollover": float}


def write_factor_snapshot(out: Path) -> None:
    """Copy the factor tables used into ``out`` so a dataset records its factors."""
    lib = default_library()
    t = lib.table.copy()
    t["library_version"] = LIBRARY_VERSION
    t.to_parquet(out / "factors.parquet", index=False)
    lib.items.to_csv(out / "factor_items.csv", index=False)
    lib.regions.to_csv(out / "regions.csv", index=False)


def write_demo_catalog(path, data_dir=None, *, enterprise: dict | None = None) -> Path:
    """Write an Intake 2 catalog of a demo dataset.

    ``data_dir`` is where the tables are, relative to the catalog file's folder (written with
    ``{CATALOG_DIR}`` so the catalog can move with its data); default: the same folder.
    """
    path = Path(path)
    rel = "{CATALOG_DIR}" if data_dir is None else "{CATALOG_DIR}/" + str(data_dir).strip("/")
    cat = intake.entry.Catalog(metadata={
        "title": "Carbon Efficiency Workbench demo enterprise 碳效工作台示例企业",
        "factor_library_version": LIBRARY_VERSION,
        "enterprise": enterprise or {},
    })
    for name, (fname, desc, kind) in DEMO_TABLES.items():
        url = f"{rel}/{fname}"
        meta = {"description": desc, "file": fname}
        if kind == "csv":
            reader = intake.readers.PandasCSV(intake.datatypes.CSV(url=url), dtype=_STR_COLUMNS,
                                              keep_default_na=False, na_values=[""], metadata=meta)
        else:
            reader = intake.readers.PandasParquet(intake.datatypes.Parquet(url=url), metadata=meta)
        cat[name] = reader
    path.parent.mkdir(parents=True, exist_ok=True)
    cat.to_yaml_file(str(path))
    return path


LAKE_TABLES = {
    "readings": "Curated meter readings 计量数据 (typed, canonical units, quality flag, raw batch id)",
    "consumption": "Interval consumption 分时段用量 derived from readings (flags: reset, rollover, spike …)",
    "activity": "Curated activity records 活动数据 from files, ERP, manual entry",
    "invoices": "Invoice fields read by OCR 发票识别 (only fields above the confidence threshold)",
    "quarantine": "Quarantined rows 隔离数据 with reason and original payload",
    "quality_results": "Quality rule results 数据质量规则结果",
    "telemetry": "Device telemetry 设备遥测 other than meter registers (power, voltage …), as measured",
}


def write_lake_catalog(path, lake_root, *, enterprise: str | None = None) -> Path:
    """Write an Intake 2 catalog of a lake; ``lake_root`` relative to the catalog's folder;
    ``enterprise``: the catalog reads that enterprise's lake only (its entries carry the id).

    Each entry calls :func:`workbench.lake.store.read_table`, so it reads the live files of both tiers and
    takes retrieval filters at read time: ``cat["consumption"].read(node="F01", start="2025-03-01")``.
    """
    from workbench.lake.store import read_table

    path = Path(path)
    root = "{CATALOG_DIR}/" + str(lake_root).strip("/")
    meta = {"title": "Carbon Efficiency Workbench lake 数据湖", "root": root}
    if enterprise:
        meta["enterprise_id"] = enterprise
    cat = intake.entry.Catalog(metadata=meta)
    for name, desc in LAKE_TABLES.items():
        cat[name] = intake.readers.convert.GenericFunc(
            func=read_table, root=root, table=name, output_instance="pandas:DataFrame",
            **({"enterprise": enterprise} if enterprise else {}),
            metadata={"description": desc, "filters": ["node", "identifier", "start", "end", "source",
                                                        "category", "meter", "columns"]})
    path.parent.mkdir(parents=True, exist_ok=True)
    cat.to_yaml_file(str(path))
    return path


def open_catalog(path):
    """Open an Intake catalog file."""
    return intake.from_yaml_file(str(path))


def load_enterprise(cat) -> dict:
    """Enterprise information stored in a catalog's metadata (or in ``enterprise.json`` beside it)."""
    info = dict(cat.metadata.get("enterprise") or {})
    return info


def read_enterprise_json(data_dir) -> dict:
    p = Path(data_dir) / "enterprise.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def table(cat, name) -> pd.DataFrame:
    return cat[name].read()
