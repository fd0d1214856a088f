"""Data-source adapters (seed §7.2): one module per source, all returning the same shape.

Every connector returns a :class:`ConnectorResult` — a table of one of the canonical kinds, the
bytes exactly as received, and metadata saying where they came from — and hands it to
:meth:`workbench.lake.Lake.ingest`, the one write path (raw zone → preparation → curated zone).

Canonical kinds of ``data`` (column names exactly):

``readings``  meter_id (the source system's meter code), ts (timestamp; naive = Asia/Shanghai local
              time, or tz-aware), quantity (what is measured, e.g. ``active_energy``), value (float),
              unit (as written; pint-parsable after ``workbench.units.normalize_unit``), optional
              ``register`` (``interval``/``cumulative``)
``activity``  the columns of :mod:`workbench.activity` (source, item, quantity, unit, period,
              node_id/facility, document, …), headers already mapped or not
``invoice``   date, supplier, account_no, item, quantity, unit, amount, currency, with
              ``<field>_confidence`` columns (0–1) for fields read by OCR

Connectors are discovered through the ``workbench.connectors`` entry-point group (see
:func:`available`), so a researcher can add one from their own package without touching the core.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import pandas as pd

__all__ = ["ConnectorResult", "Connector", "ConnectorError", "KINDS", "available", "load"]

KINDS = ("readings", "activity", "invoice", "production")
ENTRY_POINT_GROUP = "workbench.connectors"


class ConnectorError(RuntimeError):
    """A source that cannot be read (unreachable, failing, malformed); says which and how far it got."""


@dataclass
class ConnectorResult:
    """What a connector hands on: the records, the raw bytes and their provenance.

    ``metadata`` keys used by the lake: ``source`` (the sending system, e.g. ``erp``,
    ``meter-export``), ``connector``, ``origin`` (file path, URL, query), ``sender`` (who),
    ``received_at`` (ISO time; filled in when missing).
    """

    data: pd.DataFrame
    metadata: dict = field(default_factory=dict)
    kind: str = "activity"
    raw: bytes | None = None
    raw_name: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind '{self.kind}' (one of {KINDS})")
        self.metadata.setdefault("received_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def sha256(self) -> str | None:
        """sha256 of the raw bytes, computed on first use (hashing a big export is not free) and
        then kept in ``metadata['sha256']``; the lake computes its own from the bytes it stores."""
        if self.raw is None:
            return None
        if "sha256" not in self.metadata:
            self.metadata["sha256"] = hashlib.sha256(self.raw).hexdigest()
        return self.metadata["sha256"]


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
