"""A product footprint in the shape of the WBCSD PACT data model (Technical Specifications v3, payload
``specVersion`` "3.0.0"; field names as the workbench's reference lists them, ``applications.md``
§7 [G3]).

What the workbench can and cannot say:

* the figure is the **on-site part of cradle-to-gate** (the enterprise's scope 1 and 2 emissions
  allocated to the product, with its own precursors); upstream emissions of purchased inputs are
  not included — the ``comment`` says so, and the document is therefore not a complete PACT PCF;
* the declared unit is the kilogram: ``declaredUnitAmount`` is the product's mass per its own
  unit (1,000 kg for a tonne) and the pcf values are per declared unit (kgCO2e per kg), the
  v2-style reading of "per declared unit" — that reading of v3's ``declaredUnitAmount`` is
  UNVERIFIED here;
* no biogenic carbon is accounted (pcf including = excluding biogenic uptake = fossil GHG
  emissions), ``fossilCarbonContent`` is 0 for mineral products (cement, clinker) and otherwise
  not known (0 with a note in ``comment``);
* ``exemptedEmissionsPercent`` is "0": nothing was cut off *within* the on-site boundary; the
  upstream part is outside the boundary, not exempted.

Decimals are strings, as the specification asks.
"""
from __future__ import annotations

import datetime as _dt
import math
import uuid

from workbench.products.errors import ProductError
from workbench.products.footprint import ProductFootprint

__all__ = ["SPEC_VERSION", "pact_footprint"]

SPEC_VERSION = "3.0.0"
_MINERAL = {"cement", "clinker"}


def _dec(x: float, digits: int = 6) -> str:
    if not math.isfinite(x):
        raise ProductError(f"PACT: {x!r} is not a finite number")
    s = f"{x:.{digits}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _month_bounds(start: str, end: str) -> tuple[str, str]:
    s = _dt.datetime.strptime(start, "%Y-%m").replace(tzinfo=_dt.UTC)
    e = _dt.datetime.strptime(end, "%Y-%m")
    e = (e.replace(year=e.year + 1, month=1) if e.month == 12 else e.replace(month=e.month + 1)).replace(tzinfo=_dt.UTC)
    return s.isoformat().replace("+00:00", "Z"), e.isoformat().replace("+00:00", "Z")


def pact_footprint(fp: ProductFootprint, enterprise: dict, *, identifier: str = "", pf_id: str | None = None,
                   created: str | None = None) -> dict:
    """A PACT v3 ``ProductFootprint`` object of one product's footprint.

    Parameters
    ----------
    fp : ProductFootprint
        From :func:`workbench.products.footprint.product_footprints`.
    enterprise : dict
        The enterprise's record (``name_en``/``name_zh``, ``uscc`` or ``unified_social_credit_code``).
    identifier : str, optional
        The product's label identifier (becomes a product URN).
    pf_id, created : str, optional
        The footprint's UUID and creation time (default new / now).

    Returns
    -------
    dict
        JSON-ready, decimals as strings.
    """
    from workbench.core.units import UnitError, conversion_factor

    try:
        kg_per_unit = conversion_factor(fp.unit, "kg")
    except UnitError:
        raise ProductError(f"PACT: product '{fp.product}' is counted in '{fp.unit}', not a mass; "
                           "only mass-declared products are exported") from None
    per_kg = fp.per_unit_tco2e * 1000.0 / kg_per_unit          # kgCO2e per kg
    uscc = enterprise.get("uscc") or enterprise.get("unified_social_credit_code") or ""
    start, end = _month_bounds(fp.period_start, fp.period_end)
    product_ids = [f"urn:wb:product:{fp.enterprise_id}:{fp.product}"]
    if identifier:
        product_ids.insert(0, f"urn:industrial-internet-id:{identifier}")
    mineral = fp.product in _MINERAL
    comment = ("On-site part of cradle-to-gate only: the enterprise's scope 1 and 2 emissions (GB/T 32150 inventory) "
               "allocated to the product with its own precursors; upstream emissions of purchased inputs are NOT "
               "included, so this is not a complete PCF. " + fp.allocation_en
               + ("" if mineral else " Fossil carbon content of the product not known (0 given)."))
    doc = {
        "id": pf_id or str(uuid.uuid4()),
        "specVersion": SPEC_VERSION,
        "created": created or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": "Active",
        "companyName": enterprise.get("name_en") or enterprise.get("name_zh") or fp.enterprise_id,
        "companyIds": [f"urn:uscc:{uscc}" if uscc else f"urn:wb:enterprise:{fp.enterprise_id}"],
        "productDescription": f"{fp.name_en} / {fp.name_zh}",
        "productIds": product_ids,
        "productNameCompany": fp.name_en or fp.product,
        "validityPeriodStart": end,
        "comment": comment,
        "pcf": {
            "declaredUnitOfMeasurement": "kilogram",
            "declaredUnitAmount": _dec(kg_per_unit),
            "productMassPerDeclaredUnit": "1",
            "referencePeriodStart": start,
            "referencePeriodEnd": end,
            "geographyCountry": "CN",
            "pcfExcludingBiogenicUptake": _dec(per_kg),
            "pcfIncludingBiogenicUptake": _dec(per_kg),
            "fossilGhgEmissions": _dec(per_kg),
            "fossilCarbonContent": "0",
            "ipccCharacterizationFactors": [fp.gwp],
            "crossSectoralStandards": ["ISO14067"],
            "exemptedEmissionsPercent": "0",
            "allocationRulesDescription": fp.allocation_en,
        },
    }
    if math.isfinite(fp.primary_data_share):
        doc["pcf"]["primaryDataShare"] = _dec(fp.primary_data_share * 100.0, 2)
    return doc
