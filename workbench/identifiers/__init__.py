"""Industrial-internet identifiers (工业互联网标识, seed §4.3, §9.4, §10.2): data model.

See :mod:`workbench.identifiers.model` for identifiers, Handle values/records, typed carbon
fields, suffix schemes and boundary mirroring.  No transport or storage here.
"""
from workbench.identifiers.model import *
from workbench.identifiers.model import __all__  # noqa: F401
