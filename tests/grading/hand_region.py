"""A small region whose grades are computed by hand (tests/grading).

Factors (the shipped library, published values):
* heat: 0.11 tCO2/GJ — ``default:heat:emission_factor`` (MEE/NDRC accounting guidelines default);
* grid electricity in Zhejiang for 2025: 0.4974 tCO2/MWh — ``mee-avg:CN-ZJ:2023`` (生态环境部 国家统计局
  公告2025年第47号, provincial average; 2023 is the latest year published, used for 2025).

Industry C30 (GB/T 4754 division of C3011), heat only, three firms — January (March the same)::

    F1  1000 GJ → 110 t   VA 100 → L 1.10 (中碳)     L_ind = 385 / 525 = 0.733…
    F2  2000 GJ → 220 t   VA 400 → L 0.55 (低碳)     K: F1 1.5 → 4 · F2 0.75 → 2 · F3 3.0 → 5
    F3   500 GJ →  55 t   VA  25 → L 2.20 (高碳)

February: F1 burns 500 GJ → 55 t, L 0.55; L_ind = 330 / 525 = 0.628571…; K: F1 0.875 → 3 (up one
grade), F2 0.875 → 3 (down one), F3 3.5 → 5.  Q1: F1 275 / 300, F2 660 / 1200, F3 165 / 75;
L_ind = 1100 / 1575; K: F1 1.3125 → 4, F2 0.7875 → 2, F3 3.15 → 5.

Industry C17 (C1713 and C1751 are one division), grid electricity, every month::

    G1  1,500,000 kWh → 746.1 t   VA 497.4 → L 1.5      L_ind = 1243.5 / 994.8 = 1.25
    G2  1,000,000 kWh → 497.4 t   VA 497.4 → L 1.0      K: G1 1.2 exactly → 3 · G2 0.8 exactly → 2
    G3  100,000 kWh, VA 0         → value_added_zero      (never a grade, not in the benchmark)
    G4  100,000 kWh, VA −50       → value_added_negative
    G5  100,000 kWh, VA empty     → value_added_missing
    G6  no energy record, VA 100  → no_energy_data
    G7  as G2 but no value added for March → graded in Jan and Feb, incomplete_period in Q1

    Jan and Feb with G7: L_ind = (746.1 + 2 × 497.4) / (3 × 497.4) = 1.1666…; G1 K 1.2857 → 4,
    G2 and G7 K 0.857 → 3.  March (G7 has energy but no VA): as above without G7, K 1.2 and 0.8.

Industry C21, one firm: H1 1000 GJ heat → 110 t, VA 55 → L 2.0 exactly (中碳, the boundary is
inclusive), K 1 → grade 3, flagged small_benchmark.

Industry C22, one firm with own PV: Z1 2,000,000 kWh grid → 994.8 t, own PV 1,000,000 kWh → 497.4 t
avoided, VA 497.4 → L (994.8 − 497.4) / 497.4 = 1.0.
"""
from __future__ import annotations

from pathlib import Path

ENTERPRISES = [
    # id, industry, county, city
    ("F1", "C3011", "330522", "330500"), ("F2", "C3011", "330522", "330500"), ("F3", "C3011", "330521", "330500"),
    ("G1", "C1713", "330522", "330500"), ("G2", "C1751", "330502", "330500"), ("G3", "C1713", "330502", "330500"),
    ("G4", "C1713", "330502", "330500"), ("G5", "C1713", "330502", "330500"), ("G6", "C1713", "330502", "330500"),
    ("G7", "C1751", "330421", "330400"),
    ("H1", "C2130", "330523", "330500"), ("Z1", "C2211", "330523", "330500"),
]
COUNTY_NAMES = {"330522": "长兴县", "330521": "德清县", "330502": "吴兴区", "330421": "嘉善县", "330523": "安吉县"}
MONTHS = ("2025-01", "2025-02", "2025-03")


def write(out: Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [("enterprise_id,name_zh,industry_code,industry_name_zh,region,county_code,county_name_zh,city_code,"
              "city_name_zh,coal_ncv_gj_per_t")]
    for eid, ind, county, city in ENTERPRISES:
        lines.append(f"{eid},{eid}企业,{ind},,CN-ZJ,{county},{COUNTY_NAMES[county]},{city},,")
    (out / "enterprises.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    energy = ["enterprise_id,period,carrier,item,quantity,unit"]
    va = ["enterprise_id,period,value_added_10k_cny"]
    for m in MONTHS:
        energy += [f"F1,{m},purchased_heat,heat,{500 if m == '2025-02' else 1000},GJ", f"F2,{m},purchased_heat,heat,2000,GJ",
                   f"F3,{m},purchased_heat,heat,500,GJ", f"G1,{m},electricity,grid,1500000,kWh",
                   f"G2,{m},electricity,grid,1000000,kWh", f"G3,{m},electricity,grid,100000,kWh",
                   f"G4,{m},electricity,grid,100000,kWh", f"G5,{m},electricity,grid,100000,kWh",
                   f"G7,{m},electricity,grid,1000000,kWh", f"H1,{m},purchased_heat,heat,1000,GJ",
                   f"Z1,{m},electricity,grid,2000000,kWh"]
        va += [f"F1,{m},100", f"F2,{m},400", f"F3,{m},25", f"G1,{m},497.4", f"G2,{m},497.4", f"G3,{m},0",
               f"G4,{m},-50", f"G5,{m},", f"G6,{m},100", f"H1,{m},55", f"Z1,{m},497.4"]
        if m != "2025-03":
            va.append(f"G7,{m},497.4")
    (out / "energy.csv").write_text("\n".join(energy) + "\n", encoding="utf-8")
    (out / "value_added.csv").write_text("\n".join(va) + "\n", encoding="utf-8")
    zero = ["enterprise_id,period,item,quantity,unit"] + [f"Z1,{m},grid,1000000,kWh" for m in MONTHS]
    (out / "zero_carbon.csv").write_text("\n".join(zero) + "\n", encoding="utf-8")
    return out
