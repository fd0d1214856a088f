"""A small cement plant written by hand: one month's ledger (the numbers an inventory would give)
and its outputs — the known answers of tests/products are derived from these by hand.

2025-01 · clinker 4,000 t (F01) · cement 5,000 t (F02), all the clinker ground into the cement.

=====  ================  ======================  ==========  ==========  ========
node   class             source                  activity    energy      tCO2e
=====  ================  ======================  ==========  ==========  ========
F01    main_production   combustion raw_coal     500 t       12,000 GJ   1,100
F01    main_production   process limestone       4,800 t                 2,100
F01    main_production   purchased_electricity   180 MWh                    90
F02    main_production   purchased_electricity   130 MWh                    65
F03    auxiliary         combustion diesel       10 t        430 GJ       31.5
F03    auxiliary         purchased_electricity   40 MWh                     20
F04    non_production    combustion natural gas  0.25 万Nm3  100 GJ        6
F05    external_supply   exported_heat           1,000 GJ                 −110
ENT    (enterprise)      purchased_electricity   5 MWh                     2.5
ENT    (enterprise)      process SF6             0.001 t                  23.5
=====  ================  ======================  ==========  ==========  ========

Total 3,328.5 tCO2e.
"""
from __future__ import annotations

import pandas as pd

ROWS = [
    # record_id, facility, classification, source, item, gas, quantity, unit, activity_gj, sign, tco2e, data_tier
    ("COAL", "F01", "main_production", "combustion", "raw_coal", "CO2", 500, "t", 12000.0, 1, 1100.0, "primary"),
    ("LIME", "F01", "main_production", "process", "limestone", "CO2", 4800, "t", None, 1, 2100.0, "primary"),
    ("EL-F01", "F01", "main_production", "purchased_electricity", "grid", "CO2", 180, "MWh", None, 1, 90.0, "primary"),
    ("EL-F02", "F02", "main_production", "purchased_electricity", "grid", "CO2", 130, "MWh", None, 1, 65.0, "primary"),
    ("DIESEL", "F03", "auxiliary", "combustion", "diesel", "CO2", 10, "t", 430.0, 1, 31.5, "secondary"),
    ("EL-F03", "F03", "auxiliary", "purchased_electricity", "grid", "CO2", 40, "MWh", None, 1, 20.0, "primary"),
    ("NG", "F04", "non_production", "combustion", "natural_gas", "CO2", 0.25, "10^4 Nm3", 100.0, 1, 6.0, "primary"),
    ("HEAT", "F05", "external_supply", "exported_heat", "heat", "CO2", 1000, "GJ", None, -1, -110.0, "primary"),
    ("EL-ENT", "ENT", "", "purchased_electricity", "grid", "CO2", 5, "MWh", None, 1, 2.5, "primary"),
    ("SF6", "ENT", "", "process", "sf6", "SF6", 0.001, "t", None, 1, 23.5, "primary"),
]
TOTAL = 3328.5
ENTERPRISE = {"enterprise_id": "hand-cement", "name_zh": "手算水泥厂", "name_en": "Hand-computed cement plant",
              "sector": "cement", "identifier_prefix": "88.123.4567", "address": "测试地址"}
PRODUCTS = [{"product": "clinker", "unit": "t", "name_zh": "熟料", "name_en": "clinker"},
            {"product": "cement", "unit": "t", "name_zh": "水泥", "name_en": "cement"}]


def ledger(period: str = "2025-01") -> pd.DataFrame:
    cols = ["record_id", "facility", "classification", "source", "item", "gas", "quantity", "unit", "activity_gj",
            "sign", "tco2e", "data_tier"]
    df = pd.DataFrame(ROWS, columns=cols)
    df["record_id"] = df["record_id"] + f"-{period}"
    df.insert(1, "period", period)
    df.insert(2, "node_id", df["facility"])
    return df


def outputs(period: str = "2025-01", clinker: float = 4000.0, cement: float = 5000.0) -> pd.DataFrame:
    return pd.DataFrame({"period": [period, period], "product": ["clinker", "cement"], "facility": ["F01", "F02"],
                         "quantity": [clinker, cement], "unit": ["t", "t"]})
