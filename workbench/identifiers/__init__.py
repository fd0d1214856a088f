"""Industrial-internet identifiers (工业互联网标识, seed §4.3, §9.4, §10.2): data model and client.

See :mod:`workbench.identifiers.model` for identifiers, Handle values/records, typed carbon
fields, suffix schemes and boundary mirroring; :mod:`workbench.identifiers.client` for the
Python client of the enterprise node (:class:`Client`, :class:`AsyncClient`, :class:`ClientError`)
and :mod:`workbench.identifiers.local` for :class:`LocalNode` (a node in this process for
notebooks, tests and demos).  The client and node are imported on first use, so importing this
package stays light.
"""
from workbench.identifiers.model import *
from workbench.identifiers.model import __all__ as _model_all

__all__ = list(_model_all) + ["AsyncClient", "Client", "ClientError", "LocalNode"]

_LAZY = {"AsyncClient": "client", "Client": "client", "ClientError": "client", "LocalNode": "local"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"workbench.identifiers.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
