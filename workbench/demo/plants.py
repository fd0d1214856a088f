"""Deterministic demo enterprises (示例企业) for the Carbon Efficiency Workbench.

``generate(out)`` writes a realistic, fully synthetic cement plant — 浙江示例水泥有限公司 /
Zhejiang Demo Cement Co., Ltd. (``demo-cement``) — into a directory, and two more enterprises of
other industries into ``out/enterprises/<enterprise_id>/`` with the same file set:
``demo-steel`` (an electric-arc-furnace steel plant with a bar rolling mill and gas-fired reheating,
:mod:`workbench.demo.steel`) and ``demo-textile`` (a dyeing and finishing plant on purchased steam
with a gas-fired thermal-oil boiler, :mod:`workbench.demo.textile`).

============================  ================================================================
``enterprise.json``           enterprise master data (``enterprise_id``, ``sector``, ``products``
                              — the product columns of ``monthly.csv``), period, generator parameters
``boundary.csv``              boundary nodes enterprise → facility → workshop → process → meter
``meters.csv``                meter register (see ``docs/architecture.md``)
``readings.parquet``          15-min meter readings ``meter_id, ts, value`` (zstd, row groups
                              by batches of meters, sorted by meter_id then ts)
``activity.csv``              the company's monthly ledger (台账) as activity records
``monthly.csv``               monthly product output and value added (万元)
``anomalies.csv``             labels of every anomaly planted in the readings
``README.md``                 bilingual description of the files and the planted anomalies
============================  ================================================================

Each plant is a :class:`workbench.demo.engine.Plant` — data (nodes, meters, fuels, ledger lines,
anomaly plan) plus the physics of its processes; the machinery (calendar, load shapes, meter
simulation, registers and rollovers, anomalies, writers) is :mod:`workbench.demo.engine`.

How the cement plant's numbers are made
---------------------------------------
* One set of *process* load series (kWh per 15 min) is simulated from the plant's physics and
  calendar: the kiln runs 24/7 apart from a ~10-day planned stop after the Spring Festival and a
  few short trips; raw and cement mills follow the Zhejiang time-of-use tariff (heavy in valley
  hours, light in the sharp peak); offices follow working hours, weekdays and holidays; the
  canteen follows meal times, etc.  These series depend only on ``seed`` and the period.
* Electricity sub-meters split their process load with fixed shares plus their own white noise;
  the main (grid) meter measures Σ process load × (1 + 1.3–1.9 % transformer/line losses) + no-load
  losses, so Σ sub-meters ≈ main − 1.5–2 %.
* Every meter draws its randomness from its own child seed
  ``SeedSequence(seed).spawn(4)[0].spawn(n)[k]`` — the random stream of meter *k* is the same
  whatever the number of meters (with ``meters=N`` extra feeders split the process load, so the
  *level* of a default sub-meter shrinks by its share, but its noise stays the same).
* The ledger (``activity.csv``) and ``monthly.csv`` are computed from the *clean* (pre-anomaly)
  series; the anomalies are then planted into the readings and labelled in ``anomalies.csv``.

Cumulative meters have one extra reading at the period end (the closing register), so that the
consumption of the last interval of the period is known.  A cumulative register is the true
running total modulo ``rollover`` (``value = total mod rollover``).
"""
from __future__ import annotations

import time
import zlib
from pathlib import Path

import numpy as np

from workbench.demo.engine import (
    ANOMALY_KINDS,
    GENERATOR_VERSION,
    IPD,
    IPH,
    Calendar,
    LedgerLine,
    Loads,
    Meter,
    Plant,
    Product,
    main_meter,
    meter_plan,
    outage_envelope,
    planned_stops,
    stop_text,
    write_plant,
)

__all__ = ["ANOMALY_KINDS", "CEMENT", "DEFAULT_METER_COUNT", "DEFAULT_SEED", "GENERATOR_VERSION", "PLANTS", "generate"]

DEFAULT_SEED = 20251
PREFIX = "88.123.4567"
ROLLOVER_MAIN = 99_999_999
ROLLOVER_GAS = 9_999_999
ROLLOVER_HEAT = 9_999_999

ENTERPRISE = {
    "name_zh": "浙江示例水泥有限公司",
    "name_en": "Zhejiang Demo Cement Co., Ltd.",
    "region": "CN-ZJ",
    "industry_code": "C3011",
    "industry_name_zh": "水泥制造",
    "industry_name_en": "Cement manufacturing",
    "identifier_prefix": PREFIX,
    "legal_representative": "张示例 (Zhang Shili, fictitious)",
    "contact_person": "李工 (Li Gong, energy manager, fictitious)",
    "contact_phone": "0572-6000 0000",
    "contact_email": "energy@demo-cement.example.com",
    "address": "浙江省湖州市长兴县示例镇建材路 1 号 (No. 1 Jiancai Road, Demo Town, Changxing, Huzhou, Zhejiang — fictitious)",
    "reporting_standard": "GB/T 32150",
    "sector_standard": "GB/T 32151.8",
    "timezone": "Asia/Shanghai",
}

# --------------------------------------------------------------------------- boundary
#: (node_id, name_zh, name_en, classification) — parent and level follow from the id
NODES = [
    ("ENT", ENTERPRISE["name_zh"], ENTERPRISE["name_en"], ""),
    ("F01", "熟料生产线", "Clinker production line", "main_production"),
    ("F01.W01", "生料制备", "Raw-meal preparation", "main_production"),
    ("F01.W01.P01", "生料磨", "Raw mill", "main_production"),
    ("F01.W02", "熟料烧成", "Clinker burning", "main_production"),
    ("F01.W02.P01", "回转窑", "Rotary kiln", "main_production"),
    ("F01.W02.P02", "篦冷机", "Grate cooler", "main_production"),
    ("F01.W03", "余热发电", "Waste-heat power generation", "main_production"),
    ("F01.W03.P01", "余热锅炉及汽轮发电机组", "Waste-heat boilers and turbine generator", "main_production"),
    ("F02", "水泥粉磨", "Cement grinding", "main_production"),
    ("F02.W01", "水泥粉磨车间", "Cement-mill workshop", "main_production"),
    ("F02.W01.P01", "水泥磨", "Cement mill", "main_production"),
    ("F02.W01.P02", "包装", "Packing and dispatch", "main_production"),
    ("F03", "辅助生产", "Auxiliary production", "auxiliary"),
    ("F03.W01", "空压站", "Air-compressor station", "auxiliary"),
    ("F03.W01.P01", "空压机组", "Air compressors", "auxiliary"),
    ("F03.W02", "水泵房", "Water pumping station", "auxiliary"),
    ("F03.W02.P01", "供水及循环水", "Water supply and circulating water", "auxiliary"),
    ("F03.W03", "机修车间", "Repair shop", "auxiliary"),
    ("F03.W03.P01", "机修", "Maintenance and repair", "auxiliary"),
    ("F03.W04", "化验室", "Laboratory", "auxiliary"),
    ("F03.W04.P01", "化验检测", "Quality testing", "auxiliary"),
    ("F04", "非生产", "Non-production", "non_production"),
    ("F04.W01", "办公楼", "Office building", "non_production"),
    ("F04.W01.P01", "办公", "Offices", "non_production"),
    ("F04.W02", "食堂", "Canteen", "non_production"),
    ("F04.W02.P01", "厨房", "Kitchen", "non_production"),
    ("F04.W02.P02", "热水锅炉", "Hot-water boiler", "non_production"),
    ("F05", "外供", "External supply", "external_supply"),
    ("F05.W01", "蒸汽外供", "Steam export", "external_supply"),
    ("F05.W01.P01", "供汽管网", "Steam export line to neighbouring plant", "external_supply"),
]

#: electricity-consuming processes and their default sub-meters (role, name_zh, name_en, share)
ELEC_PROCESSES = {
    "F01.W01.P01": [("raw_motor", "生料立磨主电机", "Raw VRM main motor", 0.55),
                    ("raw_fan", "生料磨循环风机", "Raw-mill circulating fan", 0.33),
                    ("raw_sep", "生料选粉机", "Raw-mill separator", 0.07),
                    ("raw_conv", "原料输送", "Raw-material conveying", 0.05)],
    "F01.W02.P01": [("kiln_drive", "窑主传动", "Kiln main drive", 0.12),
                    ("kiln_idfan", "高温风机", "Preheater ID fan", 0.42),
                    ("coal_mill", "煤磨系统", "Coal mill system", 0.22),
                    ("kiln_bagfan", "窑尾排风机", "Kiln-inlet baghouse fan", 0.14),
                    ("kiln_feed", "入窑提升机", "Kiln-feed elevator", 0.10)],
    "F01.W02.P02": [("cooler_drive", "篦冷机传动", "Cooler grate drive", 0.15),
                    ("cooler_fan_a", "冷却风机组A", "Cooling fans group A", 0.45),
                    ("cooler_fan_b", "冷却风机组B", "Cooling fans group B", 0.40)],
    "F01.W03.P01": [("whr_aux", "余热电站厂用电", "WHR station auxiliaries", 1.0)],
    "F02.W01.P01": [("cement_1", "1号水泥磨", "Cement mill No. 1", 0.42),
                    ("cement_2", "2号水泥磨", "Cement mill No. 2", 0.42),
                    ("cement_sep", "选粉及收尘", "Separator and dedusting", 0.10),
                    ("clinker_conv", "熟料输送", "Clinker conveying", 0.06)],
    "F02.W01.P02": [("packing", "包装机", "Packing machines", 0.60),
                    ("bulk", "散装及发运", "Bulk loading and dispatch", 0.40)],
    "F03.W01.P01": [("compressor_1", "1号空压机", "Air compressor No. 1", 0.55),
                    ("compressor_2", "2号空压机", "Air compressor No. 2", 0.45)],
    "F03.W02.P01": [("pump_circ", "循环水泵", "Circulating-water pumps", 0.70),
                    ("pump_well", "深井泵", "Deep-well pump", 0.30)],
    "F03.W03.P01": [("repair", "机修车间配电", "Repair-shop distribution board", 1.0)],
    "F03.W04.P01": [("lab", "化验室配电", "Laboratory distribution board", 1.0)],
    "F04.W01.P01": [("office_light", "办公照明插座", "Office lighting and sockets", 0.45),
                    ("office_hvac", "办公空调", "Office HVAC", 0.55)],
    "F04.W02.P01": [("kitchen", "厨房配电", "Kitchen distribution board", 1.0)],
    "F04.W02.P02": [("boiler_pump", "锅炉循环泵", "Boiler circulating pumps", 1.0)],
    "F05.W01.P01": [("steam_pump", "供汽泵站", "Steam-export pumping station", 1.0)],
}

#: typical electric load of each process (kW), used to place extra feeders with ``meters=N``
PROCESS_KW = {"F01.W01.P01": 2700, "F01.W02.P01": 3400, "F01.W02.P02": 800, "F01.W03.P01": 420,
              "F02.W01.P01": 5500, "F02.W01.P02": 300, "F03.W01.P01": 330, "F03.W02.P01": 220,
              "F03.W03.P01": 50, "F03.W04.P01": 25, "F04.W01.P01": 60, "F04.W02.P01": 15,
              "F04.W02.P02": 6, "F05.W01.P01": 20}



#: meters before and after the electricity sub-meters (see ``demo_engine.Meter``)
HEAD_METERS = [
    dict(role="main", node_id="ENT", source="purchased_electricity", item="grid", unit="kWh",
         register="cumulative", rollover=ROLLOVER_MAIN, is_main=True, series="main", start=("fraction", 0.58, 0.68),
         name_zh="110 kV 进线关口总表", name_en="110 kV incoming line — main (billing) meter"),
]
TAIL_METERS = [
    dict(role="whr_gen", node_id="F01.W03.P01", source="self_generated_electricity", item="grid",
         unit="kWh", register="interval", series="whr", sigma=0.01,
         name_zh="余热发电机出口表", name_en="WHR generator output meter"),
    dict(role="coal_head", node_id="F01.W02.P01", source="combustion", item="raw_coal", unit="t",
         register="interval", series="coal", sigma=0.03, share=0.42,
         name_zh="窑头喂煤秤", name_en="Kiln-burner coal feeder scale"),
    dict(role="coal_calc", node_id="F01.W02.P01", source="combustion", item="raw_coal", unit="t",
         register="interval", series="coal", sigma=0.03, share=0.58,
         name_zh="分解炉喂煤秤", name_en="Calciner coal feeder scale"),
    dict(role="gas_old", node_id="F04.W02", source="combustion", item="natural_gas", unit="Nm3",
         register="cumulative", rollover=ROLLOVER_GAS, series="gas", start=("uniform", 150_000, 900_000),
         name_zh="食堂及锅炉天然气表", name_en="Canteen and boiler natural-gas meter"),
    dict(role="heat", node_id="F05.W01.P01", source="exported_heat", item="heat", unit="GJ",
         register="cumulative", rollover=ROLLOVER_HEAT, series="heat", start=("below_rollover", 2000, 4500),
         name_zh="外供蒸汽热量表", name_en="Exported-steam heat meter"),
    dict(role="gas_new", node_id="F04.W02", source="combustion", item="natural_gas", unit="Nm3",
         register="cumulative", rollover=ROLLOVER_GAS, series="gas", start=("small", 3, 40),
         name_zh="食堂及锅炉天然气表(更换后)", name_en="Canteen and boiler natural-gas meter (replacement)"),
]


# --------------------------------------------------------------------------- plant model
def _simulate_plant(cal: Calendar, ss_plant: np.random.SeedSequence, years: int) -> dict:
    """Process-level clean series (per 15-min interval) and monthly plant figures."""
    M = cal.months
    s_ops, s_month, s_noise = ss_plant.spawn(3)
    ops = np.random.default_rng(s_ops)
    mon = np.random.default_rng(s_month)
    kit = Loads(cal, s_noise.spawn(32))
    pnoise = kit.pnoise

    # ---- kiln operation: planned stop after the Spring Festival (10 days) + short trips
    stops, trips = planned_stops(cal, ops, years, cny_offset_days=3, start_hour=8.0, hours=240.0,
                                 trips_per_year=2, trip_hours=(3, 8))
    feed = outage_envelope(cal, stops, trips,
                           lambda s, e: ([s - 6, s, e + 24, e + 36], [1, 0, 0, 1]),
                           lambda t0, d: ([t0 - 0.25, t0, t0 + d, t0 + d + 4], [1, 0, 0, 1]))
    fuel = outage_envelope(cal, stops, trips,
                           lambda s, e: ([s - 6, s, e, e + 0.25, e + 24, e + 36], [1, 0, 0, 0.3, 0.6, 1]),
                           lambda t0, d: ([t0 - 0.25, t0, t0 + d, t0 + d + 4], [1, 0.15, 0.3, 1]))

    # ---- monthly parameters (company ledger style)
    rate_m = mon.uniform(0.97, 1.03, M)
    coal_rate_m = mon.uniform(0.113, 0.124, M)  # t coal / t clinker at nominal fuel
    ncv_m = np.round(mon.uniform(21.5, 23.5, M), 2)
    lime_ratio_m = mon.uniform(1.20, 1.30, M)
    purity_m = np.round(mon.uniform(0.92, 0.95, M), 3)
    cem_ratio_m = mon.uniform(0.73, 0.77, M)  # clinker / cement
    sp_cement_m = mon.uniform(22.0, 24.0, M)  # kWh / t cement
    margin_m = mon.uniform(92, 104, M) * np.array([0.97, 0.95, 1.0, 1.02, 1.02, 1.0, 0.96, 0.95,
                                                    1.0, 1.06, 1.1, 1.08])[(cal.start_M.astype(int) + np.arange(M)) % 12]
    diesel_noise = mon.uniform(-1.5, 1.5, M)
    loss_noise = mon.uniform(-0.002, 0.002, M)

    nominal = 4300.0 / IPD  # t clinker per interval at full feed
    clinker = nominal * feed * rate_m[cal.month_idx] * np.clip(
        1 + kit.smooth(0, 8, 0.015) + kit.smooth(0, IPD, 0.01), 0.9, 1.1)
    coal = nominal * fuel * rate_m[cal.month_idx] * coal_rate_m[cal.month_idx] * np.clip(
        1 + kit.smooth(1, 4, 0.02), 0.9, 1.1)
    clinker_m = cal.month_sum(clinker)
    cement_m = clinker_m / cem_ratio_m

    tou_mill = kit.tou_mill
    demand = kit.cny_demand()
    h = cal.hour
    work = kit.work

    proc = {}
    # kiln system ≈ 19 kWh/t clinker + 250 kW base; cooler ≈ 4.5 kWh/t + 60 kW
    proc["F01.W02.P01"] = (0.25 * 250 + 19.0 * clinker) * pnoise(2, 0.02, 0.02)
    proc["F01.W02.P02"] = (0.25 * 60 + 4.5 * clinker) * pnoise(3, 0.02, 0.02)
    # raw mill ≈ 15 kWh/t clinker, shifted to valley hours, runs when the kiln runs
    k_raw = 15.0 * nominal / tou_mill.mean()
    proc["F01.W01.P01"] = (0.25 * 40 + k_raw * tou_mill * feed * rate_m[cal.month_idx]) * pnoise(4, 0.04, 0.03)
    # waste-heat power: ≈ 30 kWh/t clinker generated, auxiliaries 7 % of it
    whr = 30.0 * clinker * pnoise(5, 0.02, 0.02)
    proc["F01.W03.P01"] = 0.25 * 15 + 0.07 * whr
    # cement mill: the month's cement × kWh/t, spread by TOU × demand
    shape = tou_mill * demand * pnoise(6, 0.05, 0.04)
    proc["F02.W01.P01"] = 0.25 * 50 + kit.spread(cement_m * sp_cement_m, shape)
    shape_p = (0.25 + np.where((h >= 6) & (h < 22), 1.0, 0.1)) * demand * pnoise(7, 0.08, 0.05)
    proc["F02.W01.P02"] = 0.25 * 15 + kit.spread(cement_m * 1.2, shape_p)
    mill_act = tou_mill * demand
    proc["F03.W01.P01"] = 0.25 * (180 + 220 * (0.5 * feed + 0.5 * mill_act)) * pnoise(8, 0.05, 0.03)
    proc["F03.W02.P01"] = 0.25 * (160 + 70 * cal.summer) * (0.6 + 0.4 * feed) * pnoise(9, 0.03, 0.03)
    proc["F03.W03.P01"] = 0.25 * kit.repair_kw(20, 60, feed) * pnoise(10, 0.1, 0.05)
    proc["F03.W04.P01"] = 0.25 * (18 + 14 * work) * pnoise(11, 0.06, 0.03)
    proc["F04.W01.P01"] = 0.25 * kit.office_kw(15, 55) * pnoise(12, 0.06, 0.04)
    proc["F04.W02.P01"] = 0.25 * kit.canteen_kw(8, 30) * pnoise(13, 0.06, 0.04)
    proc["F04.W02.P02"] = 0.25 * kit.hot_water_kw(3, 9) * pnoise(14, 0.05, 0.03)
    # exported steam: neighbouring dyeing plant, day shifts on working days, needs the kiln (WHR)
    steam_sched = np.where((h >= 7) & (h < 23), 1.0, 0.6) * np.where(cal.weekend, 0.6, 1.0) * \
        np.where(cal.holiday, 0.15, 1.0)
    steam_on = np.clip(feed * 1.2, 0, 1)
    heat = 3.4 * steam_sched * steam_on * pnoise(15, 0.05, 0.05)
    proc["F05.W01.P01"] = 0.25 * (5 + 25 * steam_sched * steam_on) * pnoise(16, 0.04, 0.03)
    gas = kit.canteen_gas(0.5, 6.0, 12.0) * pnoise(17, 0.08, 0.05)

    _, main = main_meter(cal, proc, loss_noise, noload_kw=24.0)  # + 24 kW transformer no-load losses

    clinker_month = clinker_m
    return {
        "proc": proc, "main": main, "whr": whr, "coal": coal, "gas": gas, "heat": heat,
        "clinker": clinker, "feed": feed, "stops": stops, "trips": trips,
        "monthly": {
            "clinker": clinker_month, "cement": cement_m, "ncv": ncv_m,
            "limestone": clinker_month * lime_ratio_m, "purity": purity_m,
            "value_added": 1550 + cement_m * margin_m / 1e4,
            "diesel": np.clip(11 + 9 * clinker_month / (nominal * IPD * 30.4) + diesel_noise, 15, 25),
            "main": cal.month_sum(main), "coal": cal.month_sum(coal), "gas": cal.month_sum(gas),
            "heat": cal.month_sum(heat),
        },
    }


# --------------------------------------------------------------------------- anomaly plan
#: (role, kind, month, parameter) — month relative to the period start; all in the first year
ANOMALY_PLAN = [
    ("main", "duplicate", 3, 4),            # 4 readings written twice
    ("main", "counter_reset", 7, None),
    ("main", "gap", 9, 24 * IPH),           # 1 day missing
    ("raw_fan", "gap", 2, 6 * IPH),
    ("raw_motor", "duplicate", 5, 8),
    ("cement_1", "duplicate_conflict", 5, 2),
    ("compressor_2", "duplicate_conflict", 3, 1),
    ("kiln_idfan", "spike", 4, None),
    ("cement_2", "spike", 10, None),
    ("coal_head", "spike", 6, None),
    ("cooler_fan_a", "stuck", 4, IPD),
    ("office_light", "gap", 6, 48 * IPH),
    ("coal_head", "gap", 8, 3 * IPH),
    ("coal_calc", "duplicate", 10, 3),
    ("compressor_1", "drift", 3, None),     # whole month 8 % high
    ("heat", "gap", 11, 14 * IPH),
    ("gas_old", "duplicate", 1, 2),
    ("gas_new", "gap", 8, 5 * IPH),
]
REPLACEMENT_MONTH = 5

#: the monthly ledger: one record per line and month, then the one-off records
LEDGER = [
    LedgerLine("ELEC", "ENT", "purchased_electricity", "grid", "main", "MWh", 3, "primary",
               "State Grid monthly bill", div=1000),
    LedgerLine("COAL", "F01.W02.P01", "combustion", "raw_coal", "coal", "t", 3, "primary",
               "coal ledger + lab NCV report {p}", ncv="ncv", ncv_unit="GJ/t"),
    LedgerLine("LIME", "F01.W01.P01", "process", "limestone", "limestone", "t", 2, "primary",
               "limestone weighbridge ledger + lab CaCO3 assay {p}", purity="purity"),
    LedgerLine("NG", "F04.W02", "combustion", "natural_gas", "gas", "10^4 Nm3", 5, "primary",
               "gas supplier invoice {p}", div=1e4),
    LedgerLine("DIESEL", "F03", "combustion", "diesel", "diesel", "t", 3, "secondary", "fuel card statement"),
    LedgerLine("HEAT", "F05", "exported_heat", "heat", "heat", "GJ", 2, "primary",
               "steam export heat-meter statement signed with customer {p}"),
    LedgerLine("SF6", "ENT", "process", "sf6", "", "t", 3, "primary", "switchgear refill record", gas="SF6",
               fixed="0.003"),
]

PRODUCTS = [
    Product("clinker", "clinker_t", "t", "熟料", "clinker", "F01", "clinker"),
    Product("cement", "cement_t", "t", "水泥", "cement", "F02", "cement"),
]


def _readme_notes(sim: dict, cal: Calendar) -> str:
    return f"""The ledger (`activity.csv`, `monthly.csv`) is computed from the *clean* data: purchased electricity equals the main
meter's true monthly consumption. 台账数据来自未受异常影响的真实用量。Σ electricity sub-meters ≈ main meter − 1.5–2 %
(losses). The waste-heat power meter (`self_generated_electricity`) is informational only.

Planned kiln stop(s) 窑计划检修: {stop_text(cal, sim['stops'])} (not an anomaly 非异常). Kiln trips 窑短时跳停: {len(sim['trips'])}."""


README_KINDS = """* `gap` 缺数 — rows absent for hours to 2 days; `duplicate` 重复 — same row written twice;
  `duplicate_conflict` 冲突重复 — same meter_id + ts with a different value (first row correct);
* `spike` 尖峰 — one interval value ×10–50; `stuck` 卡滞 — one day of constant readings;
  `drift` 漂移 — a sub-meter reads 8 % high for a month;
* `counter_reset` 清零 — the main meter's register drops to ~0 unexpectedly; `rollover` 翻转 — genuine wrap past the
  register capacity (not an error); `meter_replacement` 换表 — the gas meter is replaced, the new meter (new id,
  `replaces` = old id) starts at a small non-zero register.
"""

CEMENT = Plant(
    enterprise_id="demo-cement", sector="cement", prefix=PREFIX,
    enterprise={k: v for k, v in ENTERPRISE.items() if k != "identifier_prefix"},
    uscc=("91330522", "MA2DEMO0", 7),
    nodes=NODES, elec_processes=ELEC_PROCESSES, process_kw=PROCESS_KW,
    head_meters=HEAD_METERS, tail_meters=TAIL_METERS, simulate=_simulate_plant,
    anomaly_plan=ANOMALY_PLAN, replacement=("gas_old", "gas_new", REPLACEMENT_MONTH),
    ledger=LEDGER, products=PRODUCTS,
    readme_monthly="熟料、水泥产量与工业增加值（万元）/ clinker, cement output and value added (10⁴ CNY)",
    readme_notes=_readme_notes, readme_kinds=README_KINDS,
)


def _meter_plan(n_meters: int | None) -> list[Meter]:
    """The cement plant's meter register (without serials/dates); default first, extra feeders appended."""
    return meter_plan(CEMENT, n_meters)


def _node_name(node_id: str, lang: str) -> str:
    return CEMENT.node_name(node_id, lang)


#: number of meters of the default demo (``meters=None``)
DEFAULT_METER_COUNT = len(_meter_plan(None))


def _plant(name: str) -> Plant:
    if name == "steel":
        from workbench.demo.steel import STEEL
        return STEEL
    if name == "textile":
        from workbench.demo.textile import TEXTILE
        return TEXTILE
    return CEMENT


#: the demo enterprises by short name; the cement plant is written at the top of ``out``
PLANTS = ("cement", "steel", "textile")


def enterprise_dir(out, plant: str) -> Path:
    """Where ``generate`` writes a demo enterprise: the cement plant at ``out``, the others at
    ``out/enterprises/demo-<plant>``."""
    return Path(out) if plant == "cement" else Path(out) / "enterprises" / f"demo-{plant}"


# --------------------------------------------------------------------------- main entry
def generate(out, meters: int | None = None, years: int = 1, seed: int = DEFAULT_SEED,
             start: str = "2025-01-01", progress: bool = False, plants=None) -> dict:
    """Write the demo enterprises into directory ``out``; return what was written.

    The cement plant goes to ``out`` itself (the return value describes it, as it always did);
    the steel and dyeing plants to ``out/enterprises/demo-steel`` and ``…/demo-textile``
    (``result["enterprises"]``).  ``plants``: which of ``PLANTS`` to write (default all).
    ``meters``: total number of meters of the cement plant (``None`` → the default ~37); extra
    meters are electricity feeders split from the process loads; the other plants have their
    default meters.  ``years``: length of the period in years (12 months each) from ``start``
    (the first day of a month).  Same arguments → identical tables.

    The cement plant's random streams come from ``SeedSequence(seed)``; another plant's from
    ``SeedSequence([seed, crc32(enterprise_id)])``, so adding a plant changes no other plant.
    """
    t_start = time.perf_counter()
    wanted = PLANTS if plants is None else tuple(plants)
    unknown = sorted(set(wanted) - set(PLANTS))
    if unknown:
        raise ValueError(f"unknown demo plant(s) {', '.join(unknown)}; choose from {', '.join(PLANTS)}")
    result: dict = {"out": str(out)}
    others = {}
    for name in PLANTS:
        if name not in wanted:
            continue
        plant = _plant(name)
        if name == "cement":
            result = write_plant(plant, out, meters=meters, years=years, seed=seed, start=start,
                                 progress=progress, t_start=t_start)
        else:
            ss = np.random.SeedSequence([int(seed), zlib.crc32(plant.enterprise_id.encode())])
            others[plant.enterprise_id] = write_plant(plant, enterprise_dir(out, name), years=years, seed=seed,
                                                      start=start, progress=progress, seed_sequence=ss)
    result["enterprises"] = others
    result["seconds"] = round(time.perf_counter() - t_start, 2)
    return result
