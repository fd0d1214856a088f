"""Demo dyeing and finishing plant (``demo-textile``) on purchased steam with a gas-fired thermal-oil boiler.

湖州示例印染有限公司 / Huzhou Demo Dyeing & Finishing Co., Ltd. — fictitious, in 吴兴区 (GB/T 2260
330502), industry C1713 棉印染精加工 (cotton dyeing and finishing).  Written by
:func:`workbench.demo.plants.generate` to ``out/enterprises/demo-textile/`` with the machinery of
:mod:`workbench.demo.engine`.

How its series are made (all parameters illustrative — no national energy-consumption limit
standard for 印染 is among the compulsory GB 能耗限额 standards, ``/work/shared/reference/
applications.md`` §2, so there is nothing published in the reference files to anchor them to):

* **Production**: three shifts, seven days a week (a little less at night), ≈ 46 t of fabric a day at
  full order book, an order factor per month (0.85–1.05), a 20-day stop around the Spring Festival
  (from 7 days before it; migrant workers go home) and two short unplanned stops a year.
* **Purchased steam** from the industrial park's combined heat and power plant (集中供热): the supply
  point's heat totaliser (GJ, cumulative, billing) = Σ steam sub-meters of scouring/bleaching,
  mercerising, pad dyeing, jet dyeing and pre-shrinking × (1 + 2–4 % network losses); 21–25 GJ per t
  of fabric.  The meter is in GJ (the supplier's flow computer integrates mass × enthalpy): tonnes
  of steam would need the enthalpy of the supply conditions to become heat, the activity unit of
  purchased heat.
* **Natural gas**: a gas-fired thermal-oil boiler (燃气导热油炉) heats the stenter frames (100–120 Nm3
  per t of fabric + 25 Nm3/h standing losses while hot), the singeing machine burns gas directly
  (10–14 Nm3/t), plus the canteen; the gate meter = Σ sub-meters × (1 + 0.3–0.8 %); the ledger
  allocates the invoice by sub-meter.
* **Electricity** ≈ 1,100–1,300 kWh/t: the machines' drives, pumps and fans in proportion to output,
  the wastewater-treatment blowers around the clock.
* **Process source**: soda ash (Na2CO3) used as the alkali of reactive dyeing, 20–35 kg per t of fabric,
  written as carbonate use (``soda_ash``, stoichiometric factor of the library).  Whether
  GB/T 32151.12 counts carbonate use in dyeing is recalled, not checked against its text: UNVERIFIED.
"""
from __future__ import annotations

import numpy as np

from workbench.demo.engine import (
    IPD,
    IPH,
    Calendar,
    LedgerLine,
    Loads,
    Plant,
    Product,
    main_meter,
    outage_envelope,
    planned_stops,
    stop_text,
)

__all__ = ["TEXTILE", "PREFIX"]

PREFIX = "88.123.4569"
NG_GJ_PER_NM3 = 389.31 / 1e4  # GB/T 32151.22-2024 Table C.1 (factor library)
GJ_PER_TCE = 29.3076

ENTERPRISE = {
    "name_zh": "湖州示例印染有限公司",
    "name_en": "Huzhou Demo Dyeing & Finishing Co., Ltd.",
    "region": "CN-ZJ",
    "industry_code": "C1713",
    "industry_name_zh": "棉印染精加工",
    "industry_name_en": "Cotton dyeing and finishing",
    "legal_representative": "赵示例 (Zhao Shili, fictitious)",
    "contact_person": "周工 (Zhou Gong, energy manager, fictitious)",
    "contact_phone": "0572-2000 0000",
    "contact_email": "energy@demo-textile.example.com",
    "address": "浙江省湖州市吴兴区示例镇印染路 8 号 (No. 8 Yinran Road, Demo Town, Wuxing, Huzhou, Zhejiang — fictitious)",
    "reporting_standard": "GB/T 32150",
    "sector_standard": "GB/T 32151.12",
    "timezone": "Asia/Shanghai",
}

NODES = [
    ("ENT", ENTERPRISE["name_zh"], ENTERPRISE["name_en"], ""),
    ("F01", "前处理", "Pretreatment", "main_production"),
    ("F01.W01", "前处理车间", "Pretreatment shop", "main_production"),
    ("F01.W01.P01", "烧毛退浆", "Singeing and desizing", "main_production"),
    ("F01.W01.P02", "煮漂", "Scouring and bleaching", "main_production"),
    ("F01.W01.P03", "丝光", "Mercerising", "main_production"),
    ("F02", "染色", "Dyeing", "main_production"),
    ("F02.W01", "染色车间", "Dye house", "main_production"),
    ("F02.W01.P01", "连续轧染", "Continuous pad-dyeing range", "main_production"),
    ("F02.W01.P02", "溢流染色", "Jet (overflow) dyeing machines", "main_production"),
    ("F03", "后整理", "Finishing", "main_production"),
    ("F03.W01", "后整理车间", "Finishing shop", "main_production"),
    ("F03.W01.P01", "拉幅定形", "Stenter frames", "main_production"),
    ("F03.W01.P02", "预缩及验布", "Pre-shrinking and inspection", "main_production"),
    ("F04", "辅助生产", "Auxiliary production", "auxiliary"),
    ("F04.W01", "导热油炉房", "Thermal-oil boiler house", "auxiliary"),
    ("F04.W01.P01", "燃气导热油炉", "Gas-fired thermal-oil boiler", "auxiliary"),
    ("F04.W02", "污水处理站", "Wastewater-treatment plant", "auxiliary"),
    ("F04.W02.P01", "污水处理", "Wastewater treatment", "auxiliary"),
    ("F04.W03", "空压站", "Air-compressor station", "auxiliary"),
    ("F04.W03.P01", "空压机组", "Air compressors", "auxiliary"),
    ("F04.W04", "软水站", "Water-softening station", "auxiliary"),
    ("F04.W04.P01", "软化水及供水", "Softened water and supply", "auxiliary"),
    ("F05", "非生产", "Non-production", "non_production"),
    ("F05.W01", "办公楼", "Office building", "non_production"),
    ("F05.W01.P01", "办公", "Offices", "non_production"),
    ("F05.W02", "食堂", "Canteen", "non_production"),
    ("F05.W02.P01", "厨房及浴室", "Kitchen and bath house", "non_production"),
]

ELEC_PROCESSES = {
    "F01.W01.P01": [("singe", "烧毛退浆机", "Singeing and desizing range", 1.0)],
    "F01.W01.P02": [("scour", "煮漂联合机", "Scouring and bleaching range", 1.0)],
    "F01.W01.P03": [("merc", "丝光机", "Mercerising range", 1.0)],
    "F02.W01.P01": [("pad", "连续轧染机", "Pad-dyeing range", 1.0)],
    "F02.W01.P02": [("jet_pumps", "溢流染色机主泵", "Jet-dyeing main pumps", 0.7),
                    ("jet_aux", "染色机辅机及化料", "Jet-dyeing auxiliaries and dye kitchen", 0.3)],
    "F03.W01.P01": [("stenter_1", "1号定形机", "Stenter No. 1", 0.5),
                    ("stenter_2", "2号定形机", "Stenter No. 2", 0.5)],
    "F03.W01.P02": [("shrink", "预缩机及验布机", "Pre-shrinking and inspection machines", 1.0)],
    "F04.W01.P01": [("toh_pumps", "导热油循环泵及风机", "Thermal-oil pumps and burner fans", 1.0)],
    "F04.W02.P01": [("wwt_blowers", "曝气风机", "Aeration blowers", 0.65),
                    ("wwt_pumps", "污水提升及回用泵", "Wastewater lift and reuse pumps", 0.35)],
    "F04.W03.P01": [("compressor", "空压机", "Air compressors", 1.0)],
    "F04.W04.P01": [("softener", "软水及供水泵", "Softened-water and supply pumps", 1.0)],
    "F05.W01.P01": [("office", "办公楼配电", "Office building distribution board", 1.0)],
    "F05.W02.P01": [("kitchen", "厨房配电", "Kitchen distribution board", 1.0)],
}

PROCESS_KW = {"F01.W01.P01": 130, "F01.W01.P02": 220, "F01.W01.P03": 140, "F02.W01.P01": 290,
              "F02.W01.P02": 520, "F03.W01.P01": 440, "F03.W01.P02": 120, "F04.W01.P01": 45,
              "F04.W02.P01": 380, "F04.W03.P01": 150, "F04.W04.P01": 70, "F05.W01.P01": 30,
              "F05.W02.P01": 15}

#: steam users: (role, node, name_zh, name_en, share of the plant's steam per t of fabric)
STEAM_USERS = [
    ("steam_scour", "F01.W01.P02", "煮漂蒸汽表", "Scouring/bleaching steam meter", 0.30),
    ("steam_merc", "F01.W01.P03", "丝光蒸汽表", "Mercerising steam meter", 0.10),
    ("steam_pad", "F02.W01.P01", "轧染烘筒蒸汽表", "Pad-dyeing drying-cylinder steam meter", 0.15),
    ("steam_jet", "F02.W01.P02", "溢流染色蒸汽表", "Jet-dyeing steam meter", 0.38),
    ("steam_shrink", "F03.W01.P02", "预缩蒸汽表", "Pre-shrinking steam meter", 0.07),
]

HEAD_METERS = [
    dict(role="main", node_id="ENT", source="purchased_electricity", item="grid", unit="kWh",
         register="cumulative", rollover=99_999_999, is_main=True, series="main",
         start=("below_rollover", 2_000_000, 8_000_000),
         name_zh="10 kV 进线关口总表", name_en="10 kV incoming line — main (billing) meter"),
    dict(role="steam_main", node_id="ENT", source="purchased_heat", item="heat", unit="GJ",
         register="cumulative", rollover=9_999_999, is_main=True, series="steam_main",
         start=("below_rollover", 30_000, 200_000),
         name_zh="园区热电蒸汽贸易结算热量表", name_en="Park CHP steam supply — billing heat totaliser"),
    dict(role="gas_main", node_id="ENT", source="combustion", item="natural_gas", unit="Nm3",
         register="cumulative", rollover=99_999_999, is_main=True, series="gas_main",
         start=("uniform", 1_000_000, 30_000_000), serial_prefix="LWQZ",
         name_zh="天然气调压站计量表(贸易结算)", name_en="Natural-gas pressure-reducing station meter (billing)"),
]
TAIL_METERS = [
    *[dict(role=role, node_id=node, source="purchased_heat", item="heat", unit="GJ", register="interval",
           series=role, sigma=0.03, name_zh=zh, name_en=en) for role, node, zh, en, _ in STEAM_USERS],
    dict(role="gas_toh", node_id="F04.W01.P01", source="combustion", item="natural_gas", unit="Nm3",
         register="cumulative", rollover=9_999_999, series="gas_toh", start=("uniform", 1_200_000, 3_000_000),
         serial_prefix="LWQZ", name_zh="导热油炉天然气表", name_en="Thermal-oil boiler natural-gas meter"),
    dict(role="gas_singe", node_id="F01.W01.P01", source="combustion", item="natural_gas", unit="Nm3",
         register="interval", series="gas_singe", sigma=0.02,
         name_zh="烧毛机天然气流量计", name_en="Singeing-machine natural-gas flow computer"),
    dict(role="gas_canteen", node_id="F05.W02.P01", source="combustion", item="natural_gas", unit="Nm3",
         register="cumulative", rollover=9_999_999, series="gas_canteen", start=("uniform", 150_000, 900_000),
         name_zh="食堂天然气表", name_en="Canteen natural-gas meter"),
]

ANOMALY_PLAN = [
    ("main", "gap", 3, 12 * IPH),
    ("main", "duplicate", 7, 2),
    ("steam_main", "duplicate", 4, 3),
    ("steam_main", "gap", 9, 6 * IPH),
    ("steam_jet", "spike", 5, None),
    ("steam_scour", "stuck", 8, IPD),
    ("jet_pumps", "drift", 6, None),
    ("stenter_1", "duplicate_conflict", 2, 2),
    ("wwt_blowers", "spike", 10, None),
    ("gas_toh", "counter_reset", 5, None),
    ("gas_singe", "gap", 7, 4 * IPH),
    ("office", "gap", 11, 24 * IPH),
]

_GAS_DOC = "gas supplier invoice {p}, allocated to the consumers by their sub-meters"
LEDGER = [
    LedgerLine("ELEC", "ENT", "purchased_electricity", "grid", "main", "MWh", 3, "primary",
               "State Grid monthly bill", div=1000),
    LedgerLine("STEAM", "ENT", "purchased_heat", "heat", "steam_main", "GJ", 2, "primary",
               "park CHP steam bill {p} (heat totaliser at the supply point)"),
    LedgerLine("NG-TOH", "F04.W01.P01", "combustion", "natural_gas", "ng_toh", "10^4 Nm3", 5, "primary",
               _GAS_DOC, div=1e4),
    LedgerLine("NG-SINGE", "F01.W01.P01", "combustion", "natural_gas", "ng_singe", "10^4 Nm3", 5, "primary",
               _GAS_DOC, div=1e4),
    LedgerLine("NG-CANTEEN", "F05.W02.P01", "combustion", "natural_gas", "ng_canteen", "10^4 Nm3", 5, "primary",
               _GAS_DOC, div=1e4),
    LedgerLine("SODA", "F02.W01", "process", "soda_ash", "soda_ash", "t", 3, "primary",
               "dyestuff and auxiliaries store ledger {p} (soda ash, reactive-dyeing alkali) + purity certificate",
               purity="soda_purity"),
]

PRODUCTS = [Product("dyed_fabric", "dyed_fabric_t", "t", "印染布", "dyed and finished fabric", "F03", "fabric")]


def _simulate(cal: Calendar, ss_plant: np.random.SeedSequence, years: int) -> dict:
    """Clean 15-min series and monthly figures of the dyeing plant."""
    M = cal.months
    s_ops, s_month, s_noise = ss_plant.spawn(3)
    ops = np.random.default_rng(s_ops)
    mon = np.random.default_rng(s_month)
    kit = Loads(cal, s_noise.spawn(32))
    pnoise = kit.pnoise
    h = cal.hour

    stops, trips = planned_stops(cal, ops, years, cny_offset_days=-7, start_hour=20.0, hours=480.0,
                                 trips_per_year=2, trip_hours=(2, 6))
    running = outage_envelope(cal, stops, trips,
                              lambda s, e: ([s - 4, s, e, e + 12], [1, 0, 0, 1]),
                              lambda t0, d: ([t0, t0 + 0.25, t0 + d, t0 + d + 2], [1, 0, 0, 1]))

    order_m = mon.uniform(0.85, 1.05, M)                   # order book
    steam_m = mon.uniform(21.0, 25.0, M)                   # GJ steam per t fabric
    steam_loss_m = mon.uniform(0.02, 0.04, M)              # supply point vs Σ sub-meters
    stenter_gas_m = mon.uniform(100.0, 120.0, M)           # Nm3 per t fabric (thermal-oil boiler)
    singe_gas_m = mon.uniform(10.0, 14.0, M)               # Nm3 per t fabric
    gas_loss_m = mon.uniform(0.003, 0.008, M)
    soda_m = mon.uniform(0.020, 0.035, M)                  # t soda ash per t fabric
    soda_purity_m = np.round(mon.uniform(0.985, 0.995, M), 3)
    va_per_t_m = mon.uniform(4500.0, 6500.0, M)            # value added, CNY per t fabric
    loss_noise = mon.uniform(-0.002, 0.002, M)

    night = np.where(h < 6, 0.92, 1.0)
    rate = 46.0 / IPD * running * order_m[cal.month_idx] * night * pnoise(0, 0.04, 0.03)  # t fabric per interval
    fabric_m = cal.month_sum(rate)
    on = np.clip(running * 1.5, 0, 1)
    day_act = np.repeat((rate / rate.max()).reshape(-1, IPD).mean(axis=1), IPD)

    steam = {}
    for k, (role, _node, _zh, _en, share) in enumerate(STEAM_USERS):
        steam[role] = (0.25 * 0.25 + steam_m[cal.month_idx] * share * rate) * pnoise(1 + k, 0.05, 0.03)
    steam_main = sum(steam.values()) * (1 + steam_loss_m[cal.month_idx])

    proc = {}
    for k, (node, kwh_t, base_kw) in enumerate([
            ("F01.W01.P01", 60, 40), ("F01.W01.P02", 110, 50), ("F01.W01.P03", 70, 30), ("F02.W01.P01", 150, 40),
            ("F02.W01.P02", 260, 80), ("F03.W01.P01", 230, 60), ("F03.W01.P02", 60, 20)]):
        proc[node] = (0.25 * base_kw * on + kwh_t * rate) * pnoise(6 + k, 0.04, 0.03)
    proc["F04.W01.P01"] = 0.25 * (10 + 35 * on) * pnoise(13, 0.03, 0.02)
    proc["F04.W02.P01"] = 0.25 * (300 + 150 * day_act) * pnoise(14, 0.03, 0.02)
    proc["F04.W03.P01"] = 0.25 * (40 + 140 * on) * pnoise(15, 0.05, 0.03)
    proc["F04.W04.P01"] = 0.25 * (20 + 55 * on) * pnoise(16, 0.05, 0.03)
    proc["F05.W01.P01"] = 0.25 * kit.office_kw(10, 40) * pnoise(17, 0.06, 0.04)
    proc["F05.W02.P01"] = 0.25 * kit.canteen_kw(6, 25) * pnoise(18, 0.06, 0.04)
    _, main = main_meter(cal, proc, loss_noise, noload_kw=12.0, base=0.012, slope=0.005)

    gas_toh = (0.25 * 25 * on + stenter_gas_m[cal.month_idx] * rate) * pnoise(19, 0.04, 0.03)
    gas_singe = singe_gas_m[cal.month_idx] * rate * pnoise(20, 0.04, 0.03)
    gas_canteen = kit.canteen_gas(0.4, 4.0, 8.0) * pnoise(21, 0.08, 0.05)
    gas_main = (gas_toh + gas_singe + gas_canteen) * (1 + gas_loss_m[cal.month_idx])

    ms = cal.month_sum
    inv = 1 + gas_loss_m
    return {
        "proc": proc, "main": main, "steam_main": steam_main, **steam, "gas_main": gas_main, "gas_toh": gas_toh,
        "gas_singe": gas_singe, "gas_canteen": gas_canteen, "stops": stops, "trips": trips,
        "monthly": {
            "main": ms(main), "steam_main": ms(steam_main), "gas_main": ms(gas_main),
            "ng_toh": ms(gas_toh) * inv, "ng_singe": ms(gas_singe) * inv, "ng_canteen": ms(gas_canteen) * inv,
            "fabric": fabric_m, "soda_ash": fabric_m * soda_m, "soda_purity": soda_purity_m,
            "value_added": fabric_m * va_per_t_m / 1e4,
        },
    }


def _readme_notes(sim: dict, cal: Calendar) -> str:
    mo = sim["monthly"]
    fabric = mo["fabric"].sum()
    gj = mo["steam_main"].sum() + mo["gas_main"].sum() * NG_GJ_PER_NM3 + mo["main"].sum() * 3.6e-3
    return f"""Dyeing and finishing plant: {fabric:,.0f} t of fabric in the period; purchased steam {mo['steam_main'].sum():,.0f} GJ
({mo['steam_main'].sum() / fabric:.1f} GJ/t), natural gas {mo['gas_main'].sum():,.0f} Nm3, electricity {mo['main'].sum() / 1e3:,.0f} MWh
({mo['main'].sum() / fabric:,.0f} kWh/t); {gj / GJ_PER_TCE / fabric:.2f} tce per t of fabric (electricity at 3.6 MJ/kWh).
印染企业；蒸汽外购自园区热电厂，导热油炉燃气供定形机。All parameters are illustrative (see `workbench/demo_textile.py`);
no national energy-consumption limit for 印染 is in the reference files.

The ledger (`activity.csv`, `monthly.csv`) is computed from the *clean* data: purchased electricity and steam equal the
billing meters' true monthly consumption; the steam meter is a heat totaliser in GJ (Σ steam sub-meters ≈ supply
meter − 2–4 % network losses); the gas invoice equals the pressure-reducing station meter and is allocated to the
thermal-oil boiler, singeing machine and canteen by their sub-meters. Soda ash is written as carbonate use (process).

Planned stop(s) 春节停产: {stop_text(cal, sim['stops'])} (not an anomaly 非异常). Unplanned stops 非计划停机: {len(sim['trips'])}."""


README_KINDS = """* `gap` 缺数 — rows absent for hours to a day; `duplicate` 重复 — same row written twice;
  `duplicate_conflict` 冲突重复 — same meter_id + ts with a different value (first row correct);
* `spike` 尖峰 — one interval value ×10–50; `stuck` 卡滞 — one day of constant readings;
  `drift` 漂移 — the jet-dyeing pump meter reads 8 % high for a month;
* `counter_reset` 清零 — the thermal-oil boiler's gas meter drops to ~0 unexpectedly; `rollover` 翻转 — genuine wrap
  past the register capacity of the electricity and steam billing meters (not an error).
"""

TEXTILE = Plant(
    enterprise_id="demo-textile", sector="textile", prefix=PREFIX, enterprise=ENTERPRISE,
    uscc=("91330502", "MA2DEMO2", None),
    nodes=NODES, elec_processes=ELEC_PROCESSES, process_kw=PROCESS_KW,
    head_meters=HEAD_METERS, tail_meters=TAIL_METERS, simulate=_simulate,
    anomaly_plan=ANOMALY_PLAN, ledger=LEDGER, products=PRODUCTS,
    readme_monthly="印染布产量与工业增加值（万元）/ dyed fabric output and value added (10⁴ CNY)",
    readme_notes=_readme_notes, readme_kinds=README_KINDS, generator="workbench.demo.textile",
)
