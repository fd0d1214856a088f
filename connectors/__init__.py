"""Data-source adapters (seed §7.2): one module per source, all returning the same shape.

Every connector returns a :class:`ConnectorResult` — a table plus metadata saying where it came
from — so the rest of the workbench (preparation, quality, accounting) handles every source the
same way, like pvlib's ``iotools``.  The lake and the collection services (files, enterprise
systems, invoices, manual entry, IoT) build on this interface.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pandas as pd

__all__ = ["ConnectorResult", "Connector"]


@dataclass
class ConnectorResult:
    """What a connector hands on: the records and their provenance."""

    data: pd.DataFrame
    metadata: dict = field(default_factory=dict)  # source, connector, origin, received_at, …


@runtime_checkable
class Connector(Protocol):
    name: str

    def read(self, source, **options) -> ConnectorResult:  # pragma: no cover - protocol
        ...
