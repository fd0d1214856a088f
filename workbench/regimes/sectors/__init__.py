"""Industry sectors: one module per sector, each with its products and sector-specific formulas.

Only sectors that are actually implemented are here: :mod:`.cement` (GB/T 32151.8).  A regime
lists the sectors it knows in its ``sectors`` mapping.
"""
from workbench.regimes.sectors import cement

__all__ = ["cement", "SECTORS"]

#: sector key → :class:`workbench.core.regime.Sector`
SECTORS = {cement.SECTOR.key: cement.SECTOR}
