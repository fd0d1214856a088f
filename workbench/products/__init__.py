"""Product carbon footprints, labels and export carbon data (issue 14, points 5 and 6; seed §9.4 b).

* :mod:`.allocation` — the inventory's ledger divided between products (subdivision, then mass,
  physical causality or economic value; ISO 14044's order), summing back to every facility total;
* :mod:`.footprint` — footprint per declared unit through the precursor chain (cement carries its
  clinker), batches, evidence; :mod:`.energy` — the energy-consumption rating (GB 16780-2021);
* :mod:`.label` — the label's identifier record and its rendering (PNG, SVG, PDF) with a QR code of
  the identifier's resolution URL; :mod:`.store` — labels pending approval, and :func:`publish`;
* :mod:`.cbam` — embedded emissions of exported goods for the EU CBAM (formulas in
  :mod:`workbench.regimes.cbam`), the communication template's sheets as XLSX/JSON;
* :mod:`.pact` — a footprint as a WBCSD PACT v3 ProductFootprint.

The names below are loaded on first use, so ``import workbench.products`` stays light.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "ProductError": "errors", "LabelError": "errors",
    "allocate": "allocation", "allocate_pools": "allocation", "ledger_pools": "allocation", "Allocation": "allocation",
    "product_footprints": "footprint", "footprints_from_ledger": "footprint", "batch_footprints": "footprint",
    "ProductFootprint": "footprint", "FootprintResult": "footprint",
    "EnergyRating": "energy",
    "ProductLabel": "label", "make_label": "label", "label_record": "label", "resolution_url": "label",
    "footprint_of_record": "label", "write_label": "label",
    "LabelStore": "store", "publish": "store",
    "cbam_report": "cbam", "CBAMReport": "cbam", "write_xlsx": "cbam", "write_json": "cbam",
    "pact_footprint": "pact",
}
__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"workbench.products.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
