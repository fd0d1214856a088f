"""Periodic inventories: activity from the lake by precedence (:mod:`.sources`), meters →
consumption → activity (:mod:`.readings`), allocation by sub-meters (:mod:`.allocation`), the
inventory itself (:mod:`.compute`), the running month (:mod:`.realtime`) and ``workbench calc``
(:mod:`.quickcalc`).
"""
from workbench.inventory.compute import (
    Inventory,
    compute_inventory,
    compute_inventory_from_lake,
    months,
)

__all__ = ["Inventory", "compute_inventory", "compute_inventory_from_lake", "months"]
