"""Activity-data files (the calc template, CSV or XLSX, Chinese or English headers)."""
from __future__ import annotations

import datetime as _dt
import hashlib
from pathlib import Path

from workbench.core.activity import read_activity

from . import ConnectorResult

name = "activity_file"


def read(path, library=None) -> ConnectorResult:
    """Validated activity records of a template file, with the file's checksum as provenance."""
    path = Path(path)
    raw = path.read_bytes()
    data = read_activity(path, library=library)
    meta = {
        "connector": name,
        "source": "activity-template",
        "origin": str(path),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "received_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "records": len(data),
    }
    return ConnectorResult(data, meta, kind="activity", raw=raw, raw_name=path.name)
