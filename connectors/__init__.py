"""Data-source adapters (seed §7.2): one module per source, all returning the same shape.

Every connector returns a :class:`ConnectorResult` — a table of one of the canonical kinds, the
bytes exactly as received, and metadata saying where they came from — and hands it to
:func:`workbench.ingestion.ingest`, the one write path (raw zone → preparation → curated zone).

Canonical kinds of ``data`` (column names exactly):

``readings``  meter_id (the source system's meter code), ts (timestamp; naive = Asia/Shanghai local
              time, or tz-aware), quantity (what is measured, e.g. ``active_energy``), value (float),
              unit (as written; pint-parsable after ``workbench.core.units.normalize_unit``), optional
              ``register`` (``interval``/``cumulative``)
``activity``  the columns of :mod:`workbench.core.activity` (source, item, quantity, unit, period,
              node_id/facility, document, …), headers already mapped or not
``invoice``   date, supplier, account_no, item, quantity, unit, amount, currency, with
              ``<field>_confidence`` columns (0–1) for fields read by OCR

Connectors are discovered through the ``workbench.connectors`` entry-point group (see
:func:`available`), so a researcher can add one from their own package without touching the core.
"""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

from workbench.core.errors import WorkbenchError
from workbench.core.results import KINDS, ConnectorResult

__all__ = ["ConnectorResult", "Connector", "ConnectorError", "KINDS", "available", "load"]

ENTRY_POINT_GROUP = "workbench.connectors"


class ConnectorError(WorkbenchError, RuntimeError):
    """A source that cannot be read (unreachable, failing, malformed); says which and how far it got."""


@runtime_checkable
class Connector(Protocol):
    name: str

    def read(self, source, **options) -> ConnectorResult:  # pragma: no cover - protocol
        ...


def available() -> dict:
    """Connectors registered under the ``workbench.connectors`` entry-point group (name → entry point)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load(name: str):
    """The connector module or object registered as ``name``."""
    eps = available()
    if name not in eps:
        raise KeyError(f"no connector '{name}' (registered: {', '.join(sorted(eps)) or 'none'})")
    return eps[name].load()
