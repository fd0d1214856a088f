"""The Intake catalogs: the committed demo catalog and the one `demo generate` writes."""
from __future__ import annotations

from pathlib import Path

import intake
import pandas as pd
import pytest
import yaml

from workbench.lake.catalog import DEMO_TABLES, open_catalog

ROOT = Path(__file__).resolve().parents[2]


def test_generated_catalog_loads_every_table_through_intake(demo_data):
    cat = intake.from_yaml_file(str(demo_data / "catalog.yaml"))
    for name in DEMO_TABLES:
        df = cat[name].read()
        assert isinstance(df, pd.DataFrame) and len(df) > 0, name
    # ids and periods stay text (a CSV reader would otherwise make 2025-01 a date or F01 a number)
    act = cat["activity"].read()
    assert act["period"].str.fullmatch(r"\d{4}-\d{2}").all()
    assert cat["meters"].read()["meter_id"].str.startswith("M").all()
    assert cat["readings"].read().columns.tolist()[:3] == ["meter_id", "ts", "value"]


def test_factor_tables_in_catalog_carry_provenance(demo_data):
    cat = open_catalog(demo_data / "catalog.yaml")
    f = cat["factors"].read()
    for col in ("factor_id", "value", "unit", "document", "table", "year", "library_version"):
        assert col in f.columns
    assert (f["document"].str.len() > 0).all()
    ng = f[(f["item"] == "natural_gas") & (f["kind"] == "ncv") & (f["factor_set"] == "GBT32151.22-2024")]
    assert ng["value"].tolist() == [389.31]
    assert "原煤" in set(cat["factor_items"].read()["name_zh"])


def test_catalog_metadata_has_enterprise(demo_data):
    cat = open_catalog(demo_data / "catalog.yaml")
    ent = cat.metadata["enterprise"]
    assert ent["region"] == "CN-ZJ" and ent["identifier_prefix"].startswith("88.")


def test_committed_demo_catalog_points_at_data_demo():
    spec = yaml.safe_load((ROOT / "catalogs" / "demo.yaml").read_text(encoding="utf-8"))
    urls = [d["kwargs"]["url"] for d in spec["data"].values()]
    assert len(urls) == len(DEMO_TABLES)
    assert all(u.startswith("{CATALOG_DIR}/../data/demo/") for u in urls)


def test_committed_catalog_reads_a_generated_demo(tmp_path, demo_data):
    # the committed catalog resolves relative to its own folder: copy it next to a data/demo tree
    (tmp_path / "catalogs").mkdir()
    (tmp_path / "catalogs" / "demo.yaml").write_text((ROOT / "catalogs" / "demo.yaml").read_text(encoding="utf-8"),
                                                     encoding="utf-8")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "demo").symlink_to(demo_data, target_is_directory=True)
    cat = open_catalog(tmp_path / "catalogs" / "demo.yaml")
    assert len(cat["boundary"].read()) > 10


def test_missing_table_is_a_clear_error(tmp_path, demo_data):
    cat = open_catalog(demo_data / "catalog.yaml")
    with pytest.raises(KeyError):
        cat["no_such_table"]
