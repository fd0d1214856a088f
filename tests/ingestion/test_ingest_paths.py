"""Every connector writes through the same path: push, pull and drop folder land in the lake."""
from __future__ import annotations

import json
import sqlite3

import pandas as pd
from fastapi.testclient import TestClient

import connectors
from connectors.dropfolder import DropFolder
from connectors.sql import SqlPull
from connectors.webhook import TokenStore, create_app
from workbench.ingestion import ingest
from workbench.lake.store import Lake


def _lake(tmp_path) -> Lake:
    lake = Lake(tmp_path / "lake")
    lake.register_meters(pd.DataFrame({
        "meter_id": ["EM-01", "EM-02"], "node_id": ["F01", "F02"], "source": "purchased_electricity",
        "item": "grid", "unit": "kWh", "register": "interval", "rollover": None, "is_main": False, "replaces": ""}))
    return lake


def test_connectors_are_discovered_through_entry_points():
    names = set(connectors.available())
    assert {"files", "dropfolder", "manual", "invoice_ocr", "sql", "rest", "webhook", "parquet",
            "activity_file"} <= names
    assert connectors.load("files").read_csv is not None


def test_webhook_push_lands_in_the_lake(tmp_path):
    lake = _lake(tmp_path)
    store = TokenStore(tmp_path / "tokens.json")
    token = store.issue("ems")
    app = create_app(lambda r: ingest(lake, r, sender=r.metadata["sender"]).to_dict(), store)
    body = json.dumps({"kind": "readings", "records": [
        {"meter_id": "EM-01", "ts": "2025-03-01 00:00:00", "quantity": "active_energy", "value": 1.5, "unit": "kWh"},
        {"meter_id": "EM-02", "ts": "2025-03-01 00:00:00", "quantity": "active_energy", "value": 0.002, "unit": "MWh"},
    ]}).encode()
    with TestClient(app) as client:
        r = client.post("/v1/push/ems", content=body,
                        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"})
        assert r.status_code == 202, r.text
        assert client.post("/v1/push/ems", content=body, headers={"content-type": "application/json"}).status_code == 401
    summary = r.json()["summary"]
    assert summary["rows_curated"] == 2
    got = lake.sql("SELECT meter_id, value, unit FROM readings ORDER BY meter_id")
    assert got["value"].tolist() == [1.5, 2.0] and set(got["unit"]) == {"kWh"}  # 0.002 MWh = 2 kWh by pint
    assert lake.read_raw(summary["batch_id"]) == body
    assert lake.batches()["sender"].iloc[0].startswith("ems:")


def test_sql_pull_and_drop_folder_land_in_the_lake(tmp_path):
    lake = _lake(tmp_path)
    db = tmp_path / "erp.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE meter_data (id INTEGER PRIMARY KEY, code TEXT, t TEXT, kwh REAL)")
    con.executemany("INSERT INTO meter_data (code, t, kwh) VALUES (?, ?, ?)",
                    [("EM-01", f"2025-03-01 0{h}:00:00", 1.0 + h) for h in range(4)])
    con.commit()
    con.close()
    pull = SqlPull(f"sqlite:///{db}", "meter_data", kind="readings", watermark_column="id",
                   columns={"code": "meter_id", "t": "ts", "kwh": "value"},
                   defaults={"quantity": "active_energy", "unit": "kWh"}, source="erp",
                   state=tmp_path / "state.db")
    pull.run(lambda r: ingest(lake, r, sender="svc:erp-pull"))
    pull.run(lambda r: ingest(lake, r, sender="svc:erp-pull"))  # nothing new: nothing twice
    assert lake.sql("SELECT count(*) AS n FROM readings")["n"][0] == 4

    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "export.csv").write_text("meter_id,ts,quantity,value,unit\nEM-02,2025-03-02 00:00:00,active_energy,7,kWh\n",
                                     encoding="utf-8")
    folder = DropFolder(drop, tmp_path / "drop.db", ingest=lambda r: ingest(lake, r, sender="svc:drop"),
                        kind="readings", settle_seconds=0)
    folder.scan_once()
    DropFolder(drop, tmp_path / "drop.db", ingest=lambda r: ingest(lake, r, sender="svc:drop"),
               kind="readings", settle_seconds=0).scan_once()  # a restart ingests nothing again
    assert lake.sql("SELECT count(*) AS n FROM readings WHERE meter_id = 'EM-02'")["n"][0] == 1
    assert set(lake.batches()["sender"]) == {"svc:erp-pull", "svc:drop"}
