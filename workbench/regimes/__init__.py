"""Accounting regimes: GB/T 32150 (:mod:`.gbt32150`, the default) and its sectors (:mod:`.sectors`).

The interface (:class:`Regime` and its parts) and the registry (:func:`get_regime`,
:func:`register`, the ``workbench.regimes`` entry points) are the core's
(:mod:`workbench.core.regime`), re-exported here; a regime sits above the accounting layer and may
use its formula functions, while the engine only ever sees the interface.
"""
from __future__ import annotations

from workbench.core.regime import (
    BUILTIN,
    CATEGORIES,
    DEFAULT,
    ENTRY_POINT_GROUP,
    REPORT_CONTENTS,
    EmissionSource,
    Product,
    Regime,
    RegimeError,
    ReportSection,
    Sector,
    UnknownRegimeError,
    available,
    default_regime,
    get_regime,
    regime_key,
    register,
    unregister,
)
from workbench.regimes.gbt32150 import REGIME as GBT32150

__all__ = [
    "Regime", "EmissionSource", "ReportSection", "Product", "Sector", "RegimeError", "UnknownRegimeError",
    "CATEGORIES", "REPORT_CONTENTS", "regime_key", "ENTRY_POINT_GROUP", "DEFAULT", "BUILTIN",
    "get_regime", "default_regime", "register", "unregister", "available", "GBT32150",
]

register(GBT32150)
