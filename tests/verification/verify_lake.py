"""A small lake for the verification tests, built through the ordinary ingest path, whose every
emission is worked out by hand below (GB/T 32150 formulas; factors from the library's tables).

Enterprise ``ent-v`` (boundary ENT → F01), reporting year 2026 (GB/T 32150—2025; no 2026 grid factor
is published, the library takes its latest, data year 2023, national: 0.5306 tCO2/MWh):

============  ==========================================  ================================================
record        activity                                    emission (tCO2e)
============  ==========================================  ================================================
electricity   3,000 kWh bought in March, site factor      3 MWh × 0.5703 tCO2/MWh = 1.7109
              0.5703 tCO2/MWh on the bill's record
gas           2.5 万Nm3 natural gas in March, F01          2.5 × 389.31 GJ/万Nm3 = 973.275 GJ;
                                                          EF = 15.3 tC/TJ × 0.99 × 44/12 = 0.055539 tCO2/GJ;
                                                          973.275 × 0.055539 = 54.05472022
limestone     100 t at 90 % CaCO3 in March, F01           100 × 0.9 × 0.4397 = 39.573
export        500 kWh exported in April (national grid)   −(0.5 MWh × 0.5306) = −0.2653
SF6           0.001 t leaked in April, F01                 0.001 t × 23,500 (AR5) = 23.5
============  ==========================================  ================================================

Total 1.7109 + 54.05472022 + 39.573 − 0.2653 + 23.5 = 118.57332022 tCO2e; value added 100 万元 in
March and 50 万元 in April → carbon efficiency 118.57332022 ÷ 150 = 0.79048880 tCO2e/万元.
"""
from __future__ import annotations

import pandas as pd

from connectors import activity_file, production
from workbench.ingestion import ingest
from workbench.lake.store import Lake

ENT = "ent-v"
BOUNDARY = pd.DataFrame([("ENT", "", "enterprise", "核查示例厂", "Verification plant", ""),
                         ("F01", "ENT", "facility", "一车间", "Shop 1", "main_production")],
                        columns=["node_id", "parent_id", "level", "name_zh", "name_en", "classification"])
ELECTRICITY = 3.0 * 0.5703
GAS = 2.5 * 389.31 * (15.3e-3 * 0.99 * 44 / 12)
LIMESTONE = 100 * 0.9 * 0.4397
EXPORT = -0.5 * 0.5306
SF6 = 0.001 * 23500
TOTAL = ELECTRICITY + GAS + LIMESTONE + EXPORT + SF6
VALUE_ADDED = 150.0
LEDGER = ("source,item,quantity,unit,period,node_id,document,emission_factor,ef_unit,purity\n"
          "purchased_electricity,grid,3000,kWh,2026-03,ENT,State Grid bill 2026-03,0.5703,tCO2/MWh,\n"
          "combustion,natural_gas,2.5,万Nm3,2026-03,F01,gas ledger,,,\n"
          "process,limestone,100,t,2026-03,F01,weighbridge,,,0.9\n"
          "exported_electricity,grid,500,kWh,2026-04,ENT,export meter,,,\n"
          "process,sf6,0.001,t,2026-04,F01,switchgear log,,,\n")


def build(tmp) -> Lake:
    """The lake root ``tmp / 'lake'`` holding ``ent-v``."""
    root = Lake(tmp / "lake")
    lk = root.for_enterprise(ENT)
    lk.register_boundary(BOUNDARY)
    lk.register_enterprise({"enterprise_id": ENT, "name_zh": "核查示例厂", "name_en": "Verification plant"})
    ledger = tmp / "ledger-2026.csv"
    ledger.write_text(LEDGER, encoding="utf-8")
    ingest(lk, activity_file.read(ledger), sender="erin")
    monthly = tmp / "monthly-2026.csv"
    monthly.write_text("period,node_id,value_added_10k_cny\n2026-03,ENT,100\n2026-04,ENT,50\n", encoding="utf-8")
    ingest(lk, production.read(monthly, products=[]), sender="erin")
    return root
