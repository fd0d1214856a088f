"""The one write path into the lake: a connector's result → raw zone → mapping and identifiers
(:mod:`.mapping`) → preparation (:mod:`.prepare`: types, units, time, registers → consumption) →
curated tables and quarantine → quality rules, committed as one manifest transaction
(:mod:`.pipeline`).
"""
from workbench.ingestion.pipeline import ingest

__all__ = ["ingest"]
