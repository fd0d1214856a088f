"""The lake: raw zone, curated tables, quarantine and manifest, per enterprise (:mod:`.store`),
its quality rules (:mod:`.quality`) and the Intake catalogs over it (:mod:`.catalog`).

Data are written by the ingest layer (:func:`workbench.ingestion.ingest`); everything else reads.
"""
from workbench.lake.store import (
    CURATED_TABLES,
    ENTERPRISES_DIR,
    SERIES_TABLES,
    IngestReport,
    Lake,
    LakeError,
    read_table,
)

__all__ = ["Lake", "LakeError", "IngestReport", "CURATED_TABLES", "SERIES_TABLES", "ENTERPRISES_DIR", "read_table"]
