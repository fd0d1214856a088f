"""Hand-written enterprise folders (enterprise.json, boundary.csv, meters.csv) and a master-data
database holding several of them — shared by the tests of the lake, devices and identifiers that
read the master data."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from workbench.registry import MasterData, import_enterprise


def enterprise_folder(root: Path, doc: dict, boundary: str, meters: str) -> Path:
    """``root/<enterprise_id>/`` with the three files (UTF-8); returns the folder."""
    d = Path(root) / doc["enterprise_id"]
    d.mkdir(exist_ok=True)
    (d / "enterprise.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (d / "boundary.csv").write_text(boundary, encoding="utf-8")
    (d / "meters.csv").write_text(meters, encoding="utf-8")
    return d


@contextlib.contextmanager
def master_data(path: Path, folders):
    """A master-data database at ``path`` with ``folders`` imported (who: ``import``)."""
    store = MasterData(f"sqlite:///{path}")
    try:
        for folder in folders:
            import_enterprise(store, folder, who="import")
        yield store
    finally:
        store.dispose()
