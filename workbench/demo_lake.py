"""Load a demo enterprise (``workbench demo generate``) into a lake through the ordinary ingest path."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .lake import Lake
from .quality import demo_rules_path
from .readings import read_meters

__all__ = ["load_demo"]


def load_demo(data_dir, lake_root, *, sender: str = "demo-loader", rules=None, enterprise: str | None = None) -> dict:
    """Register meters and boundary, set the quality rules, ingest readings and the activity ledger
    (into ``enterprise``'s lake in the root when given)."""
    from connectors import activity_file, parquet, production

    data_dir = Path(data_dir)
    lake = Lake(lake_root, enterprise=enterprise)
    meters = read_meters(data_dir / "meters.csv")
    lake.register_meters(meters)
    lake.register_boundary(pd.read_csv(data_dir / "boundary.csv", dtype=str, keep_default_na=False))
    lake.set_quality_rules(rules or demo_rules_path())
    reports = {
        "readings": lake.ingest(parquet.read(data_dir / "readings.parquet", meters=meters, source="demo-meters"),
                                sender=sender),
        "activity": lake.ingest(activity_file.read(data_dir / "activity.csv"), sender=sender),
    }
    if (data_dir / "monthly.csv").exists():         # output and value added: the denominators
        info = json.loads((data_dir / "enterprise.json").read_text(encoding="utf-8")) \
            if (data_dir / "enterprise.json").exists() else {}
        reports["production"] = lake.ingest(production.read(data_dir / "monthly.csv", products=info.get("products"),
                                                            source="demo-monthly-report"), sender=sender)
    return {k: v.to_dict() for k, v in reports.items()}
