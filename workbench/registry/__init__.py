"""Master data of the platform's enterprises — one home for what the lake, the device registry,
identifier registration and the inventory need to know about an enterprise (seed §7.1):
:class:`MasterData` (store, audit), :func:`import_enterprise` (from an enterprise folder),
:mod:`.codes` (unified social credit code, region, industry code, time zone)."""
from workbench.registry.codes import CodeError
from workbench.registry.importer import ImportReport, import_enterprise
from workbench.registry.store import MasterData, RegistryError

__all__ = ["CodeError", "ImportReport", "MasterData", "RegistryError", "default_url", "import_enterprise"]


def default_url() -> str:
    """``$WORKBENCH_REGISTRY`` or ``sqlite:///data/registry.db`` (next to the default lake)."""
    import os

    return os.environ.get("WORKBENCH_REGISTRY") or "sqlite:///data/registry.db"
