"""Load a demo enterprise (``workbench demo generate``) into a lake through the ordinary ingest path."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from workbench.core.meters import read_meters
from workbench.ingestion import ingest
from workbench.lake.quality import demo_rules_path
from workbench.lake.store import Lake

__all__ = ["demo_enterprise_dirs", "load_demo", "load_demo_enterprises"]


def load_demo(data_dir, lake_root, *, sender: str = "demo-loader", rules=None, enterprise: str | None = None,
              master=None) -> dict:
    """Register meters and boundary, set the quality rules, ingest readings and the activity ledger
    (into ``enterprise``'s lake in the root when given).  With ``master`` (a
    :class:`workbench.registry.MasterData` holding the enterprise) the lake takes its meters,
    boundary and record from the master data, else from the folder's files."""
    from connectors import activity_file, parquet, production

    data_dir = Path(data_dir)
    lake = Lake(lake_root, enterprise=enterprise)
    if master is not None:
        lake.register_master_data(master)
        meters = lake.meters()
    else:
        meters = read_meters(data_dir / "meters.csv")
        lake.register_meters(meters)
        lake.register_boundary(pd.read_csv(data_dir / "boundary.csv", dtype=str, keep_default_na=False))
        if (data_dir / "enterprise.json").exists():
            lake.register_enterprise(json.loads((data_dir / "enterprise.json").read_text(encoding="utf-8")))
    lake.set_quality_rules(rules or demo_rules_path())
    reports = {
        "readings": ingest(lake, parquet.read(data_dir / "readings.parquet", meters=meters, source="demo-meters"),
                                sender=sender),
        "activity": ingest(lake, activity_file.read(data_dir / "activity.csv"), sender=sender),
    }
    if (data_dir / "monthly.csv").exists():         # output and value added: the denominators
        info = json.loads((data_dir / "enterprise.json").read_text(encoding="utf-8")) \
            if (data_dir / "enterprise.json").exists() else {}
        reports["production"] = ingest(lake, production.read(data_dir / "monthly.csv", products=info.get("products"),
                                                            source="demo-monthly-report"), sender=sender)
    return {k: v.to_dict() for k, v in reports.items()}


def demo_enterprise_dirs(demo_dir) -> list[Path]:
    """The enterprise folders of a generated demo: the top folder (the cement plant) and those
    under ``enterprises/`` — each with its ``enterprise.json``."""
    demo_dir = Path(demo_dir)
    dirs = [demo_dir] + sorted(p for p in (demo_dir / "enterprises").glob("*") if p.is_dir())
    return [d for d in dirs if (d / "enterprise.json").exists()]


def load_demo_enterprises(demo_dir, lake_root, registry, *, sender: str = "demo-loader",
                          who: str = "demo-loader", progress=None) -> dict:
    """The whole demo through the platform: each enterprise's master data into ``registry`` (a
    :class:`workbench.registry.MasterData`), its lake's meters, boundary and record from there, then
    its files into its own lake through the ordinary ingest path (:func:`load_demo`).  Returns
    ``{enterprise_id: {table: report}}``."""
    from workbench.registry import import_enterprise

    out = {}
    for folder in demo_enterprise_dirs(demo_dir):
        rep = import_enterprise(registry, folder, who=who)
        if progress:
            progress(f"{rep.enterprise_id}: master data {rep.enterprise}; loading its files into the lake …")
        out[rep.enterprise_id] = load_demo(folder, lake_root, sender=sender, enterprise=rep.enterprise_id,
                                           master=registry)
    return out
