"""What a connector hands on to the lake: :class:`ConnectorResult` — the records of one canonical
kind, the bytes exactly as received, and where they came from.

It lives in the core so that the ingest path, the MQTT gateway and every connector share it
without the workbench importing a connector (connectors import only the core; see
:mod:`connectors` for the canonical columns of each kind).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["ConnectorResult", "KINDS"]

#: the canonical kinds of ``ConnectorResult.data``
KINDS = ("readings", "activity", "invoice", "production")


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
