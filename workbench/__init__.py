"""Carbon Efficiency Workbench (碳效工作台): GB/T 32150 accounting and carbon-efficiency analytics.

The public API — what notebooks and apps import — is this module's ``__all__``::

    import workbench as wb

    lake = wb.Lake("data/lake")                                     # the lake (one per enterprise inside)
    wb.ingest(lake, result, sender="analyst", enterprise="demo-cement")   # the one write path
    inv = wb.compute_inventory_from_lake(lake, "demo-cement", "2025-01", "2025-12")
    ledger = wb.account(activity)                                   # activity → ledger (GB/T 32150)

Names are loaded on first use (``workbench.core.units`` does not pull in DuckDB and xarray).

The layers, each importing only those below it (``docs/architecture.md``; enforced by the
import-linter contracts in ``pyproject.toml``)::

    cli · devices · demo                      the edges: commands, MQTT, the demo region
    reports · inventory                       periodic inventories and their reports
    regimes | ingestion                       accounting rules (GB/T 32150) | the write path
    accounting | lake                         formulas, engine, cube | storage, quality, catalogs
    registry · identifiers                    master data · industrial-internet identifiers
    core                                      units, boundary, meters, activity, factors, errors

Connectors (the ``connectors`` package, found through the ``workbench.connectors`` entry points)
import only the core.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name → the module that defines it (``module:attribute`` where the name differs)
_API = {
    # core
    "WorkbenchError": "workbench.core.errors", "DataError": "workbench.core.errors", "Problem": "workbench.core.errors",
    "ureg": "workbench.core.units", "Q_": "workbench.core.units", "convert": "workbench.core.units",
    "UnitError": "workbench.core.units",
    "Boundary": "workbench.core.boundary", "BoundaryError": "workbench.core.boundary",
    "read_meters": "workbench.core.meters", "normalize_meters": "workbench.core.meters", "LOCAL_TZ": "workbench.core.meters",
    "read_activity": "workbench.core.activity", "normalize_activity": "workbench.core.activity",
    "ActivityDataError": "workbench.core.activity",
    "FactorLibrary": "workbench.core.factors", "default_library": "workbench.core.factors",
    "Regime": "workbench.core.regime", "get_regime": "workbench.core.regime", "default_regime": "workbench.core.regime",
    "ConnectorResult": "workbench.core.results",
    # accounting
    "account": "workbench.accounting", "summarize": "workbench.accounting", "to_cube": "workbench.accounting",
    "cube_to_frame": "workbench.accounting", "carbon_efficiency": "workbench.accounting",
    "carbon_intensity": "workbench.accounting", "AccountingError": "workbench.accounting",
    # regimes
    "GBT32150": "workbench.regimes",
    # lake and ingest
    "Lake": "workbench.lake", "LakeError": "workbench.lake", "read_table": "workbench.lake",
    "ingest": "workbench.ingestion",
    "open_catalog": "workbench.lake.catalog",
    # inventory and reports
    "Inventory": "workbench.inventory", "compute_inventory": "workbench.inventory",
    "compute_inventory_from_lake": "workbench.inventory", "months": "workbench.inventory",
    "meter_consumption": "workbench.inventory.readings", "activity_from_meters": "workbench.inventory.readings",
    "quick_calc": "workbench.inventory.quickcalc", "live_view": "workbench.inventory.realtime",
    "write_outputs": "workbench.reports.inventory", "inventory_figures": "workbench.reports.inventory:figures",
    "quality_report": "workbench.reports.quality",
    # master data
    "MasterData": "workbench.registry", "import_enterprise": "workbench.registry", "RegistryError": "workbench.registry",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    module, _, attr = module.partition(":")
    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value          # next time without __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
