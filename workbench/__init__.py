"""Carbon Efficiency Workbench (碳效工作台).

Core data model: activity records → :func:`workbench.accounting.account` → ledger (tidy table)
→ :func:`workbench.accounting.to_cube` (xarray, period × facility × source).  Units in
:mod:`workbench.units`, factors with provenance in :mod:`workbench.factors`, the boundary in
:mod:`workbench.boundary`.
"""
__version__ = "0.1.0"

from .units import Q_, ureg  # noqa: E402,F401
