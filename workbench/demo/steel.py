"""Demo steel plant (``demo-steel``): an electric-arc-furnace mini-mill with a bar rolling mill.

浙江示例钢铁有限公司 / Zhejiang Demo Steel Co., Ltd. — fictitious, in 南浔区 (GB/T 2260 330503),
industry C3130 钢压延加工 (the enterprise sells hot-rolled bar; its EAF billets are an intermediate
product — GB/T 4754 classifies a unit by its main activity).  Written by
:func:`workbench.demo.plants.generate` to ``out/enterprises/demo-steel/`` with the machinery of
:mod:`workbench.demo.engine`.

Processes and how their series are made:

* **EAF (电弧炉, 75 t)**: heats simulated minute by minute — power-on ≈ 38 min, tap-to-tap ≈ 52 min,
  tap weight ≈ 75 t, ``kWh/t`` a monthly value of 370–395 (illustrative, full-scrap charge with
  oxygen and carbon injection) — only outside the sharp-peak tariff hours (09–11, 15–17) and the
  stops, as EAF shops on time-of-use tariffs do.  Minute energy is summed to 15-min intervals, so the
  furnace transformer meter shows the heat cycles.  The **ladle furnace** (LF) treats each heat after
  tapping (35–45 kWh/t).  Billets = Σ tap weights × caster yield (97.5–98.5 %).
* **Rolling**: the month's billets × rolling yield (96.5–97.8 %) are rolled in the same hours (and
  not during the daily roll change 08–09); the **regenerative reheating furnace** burns natural gas:
  hold firing (450 Nm3/h while hot) + 24–27 Nm3 per t rolled, ≈ 32–36 Nm3/t in all (≈ 1.3 GJ/t at
  the library's 389.31 GJ/10⁴Nm3) — illustrative.  It is cold during the Spring-Festival stop and
  heats up over its last 12 hours.
* Dedusting fans, caster, oxygen plant (air separation), water treatment and compressors follow
  the EAF's activity; offices, canteen and repair shop follow the calendar (shared load shapes).
* **Natural gas**: the gate station's billing meter (cumulative) = Σ sub-meters (reheating furnace,
  ladle preheating, canteen) × (1 + 0.4–0.9 % metering difference).  The ledger allocates the
  supplier's invoice to the consumers in proportion to their sub-meters, so Σ ledger = gate meter.
* **Ledger process sources** (GB/T 32151.5 熔剂消耗): limestone and dolomite fluxes, 5–8 and 3–5 kg
  per t liquid steel (illustrative); the carbon injected for slag foaming (anthracite, 8–11 kg/t) is
  a fossil fuel consumed (combustion).  Graphite-electrode consumption (also a GB/T 32151.5 process
  source) is **not** written: the factor library has no electrode item and no documented factor.

Orientation, not a compliance check: GB 21256-2025 sets the EAF-process energy limit for furnaces
≥ 70 t at 61 / 64 / 72 kgce/t (grades 1 / 2 / 3) (``/work/shared/reference/applications.md`` §2); the
README of the generated plant reports this plant's EAF + LF + caster + dedusting + oxygen + ladle-gas
energy per t, electricity at its calorific equivalent (3.6 MJ/kWh ÷ 29.3076 MJ/kgce = 0.1228 kgce/kWh);
the standard's exact scope and conversion rules are not in the reference files.  Rolling-mill
limits: not in GB 21256-2025, UNVERIFIED.
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
    outage_mask,
    planned_stops,
    stop_text,
)

__all__ = ["STEEL", "PREFIX"]

PREFIX = "88.123.4568"
NG_GJ_PER_NM3 = 389.31 / 1e4  # GB/T 32151.22-2024 Table C.1 (factor library), for the README's orientation
KGCE_PER_KWH = 3.6 / 29.3076  # calorific equivalent; 1 tce = 29.3076 GJ (reference accounting-facts.md)

ENTERPRISE = {
    "name_zh": "浙江示例钢铁有限公司",
    "name_en": "Zhejiang Demo Steel Co., Ltd.",
    "region": "CN-ZJ",
    "industry_code": "C3130",
    "industry_name_zh": "钢压延加工",
    "industry_name_en": "Steel rolling",
    "legal_representative": "王示例 (Wang Shili, fictitious)",
    "contact_person": "陈工 (Chen Gong, energy manager, fictitious)",
    "contact_phone": "0572-3000 0000",
    "contact_email": "energy@demo-steel.example.com",
    "address": "浙江省湖州市南浔区示例镇钢城路 2 号 (No. 2 Gangcheng Road, Demo Town, Nanxun, Huzhou, Zhejiang — fictitious)",
    "reporting_standard": "GB/T 32150",
    "sector_standard": "GB/T 32151.5",
    "timezone": "Asia/Shanghai",
}

NODES = [
    ("ENT", ENTERPRISE["name_zh"], ENTERPRISE["name_en"], ""),
    ("F01", "电炉炼钢", "Electric-arc-furnace steelmaking", "main_production"),
    ("F01.W01", "电炉车间", "EAF shop", "main_production"),
    ("F01.W01.P01", "电弧炉", "Electric arc furnace (75 t)", "main_production"),
    ("F01.W01.P02", "钢包精炼炉", "Ladle furnace", "main_production"),
    ("F01.W01.P03", "钢包烘烤", "Ladle preheating", "main_production"),
    ("F01.W01.P04", "电炉除尘", "EAF dedusting", "main_production"),
    ("F01.W02", "连铸车间", "Continuous casting", "main_production"),
    ("F01.W02.P01", "方坯连铸机", "Billet caster", "main_production"),
    ("F02", "轧钢", "Rolling", "main_production"),
    ("F02.W01", "加热炉", "Reheating", "main_production"),
    ("F02.W01.P01", "蓄热式步进加热炉", "Regenerative walking-beam reheating furnace", "main_production"),
    ("F02.W02", "棒材轧线", "Bar mill", "main_production"),
    ("F02.W02.P01", "粗中轧机组", "Roughing and intermediate stands", "main_production"),
    ("F02.W02.P02", "精轧机组", "Finishing stands", "main_production"),
    ("F02.W02.P03", "冷床及精整", "Cooling bed and finishing", "main_production"),
    ("F03", "辅助生产", "Auxiliary production", "auxiliary"),
    ("F03.W01", "制氧站", "Oxygen plant", "auxiliary"),
    ("F03.W01.P01", "空分装置", "Air separation unit", "auxiliary"),
    ("F03.W02", "水处理", "Water treatment", "auxiliary"),
    ("F03.W02.P01", "净浊循环水", "Clean and dirty circulating water", "auxiliary"),
    ("F03.W03", "空压站", "Air-compressor station", "auxiliary"),
    ("F03.W03.P01", "空压机组", "Air compressors", "auxiliary"),
    ("F03.W04", "机修车间", "Repair shop", "auxiliary"),
    ("F03.W04.P01", "机修", "Maintenance and repair", "auxiliary"),
    ("F04", "非生产", "Non-production", "non_production"),
    ("F04.W01", "办公楼", "Office building", "non_production"),
    ("F04.W01.P01", "办公", "Offices", "non_production"),
    ("F04.W02", "食堂", "Canteen", "non_production"),
    ("F04.W02.P01", "厨房及浴室", "Kitchen and bath house", "non_production"),
]

ELEC_PROCESSES = {
    "F01.W01.P01": [("eaf_trafo", "电炉变压器", "EAF furnace transformer", 0.95),
                    ("eaf_aux", "电炉辅机(液压、冷却)", "EAF auxiliaries (hydraulics, cooling)", 0.05)],
    "F01.W01.P02": [("lf_trafo", "精炼炉变压器", "Ladle-furnace transformer", 1.0)],
    "F01.W01.P03": [("ladle_fans", "烘烤器助燃风机", "Ladle-heater combustion fans", 1.0)],
    "F01.W01.P04": [("dedust_fan_1", "1号除尘风机", "Dedusting fan No. 1", 0.5),
                    ("dedust_fan_2", "2号除尘风机", "Dedusting fan No. 2", 0.5)],
    "F01.W02.P01": [("ccm", "连铸机配电", "Caster distribution board", 0.7),
                    ("ccm_water", "连铸冷却水泵", "Caster cooling-water pumps", 0.3)],
    "F02.W01.P01": [("rf_fans", "加热炉风机", "Reheating-furnace fans", 0.8),
                    ("rf_hydraulics", "步进梁液压站", "Walking-beam hydraulics", 0.2)],
    "F02.W02.P01": [("rough_stands", "粗轧机组主传动", "Roughing-stand drives", 0.55),
                    ("inter_stands", "中轧机组主传动", "Intermediate-stand drives", 0.45)],
    "F02.W02.P02": [("finish_stands", "精轧机组主传动", "Finishing-stand drives", 0.85),
                    ("finish_aux", "飞剪及穿水冷却", "Flying shears and water cooling", 0.15)],
    "F02.W02.P03": [("cooling_bed", "冷床及定尺剪", "Cooling bed and cut-to-length shear", 0.6),
                    ("bundling", "打捆收集", "Bundling and collecting", 0.4)],
    "F03.W01.P01": [("asu_mac", "空分主空压机", "ASU main air compressor", 0.8),
                    ("asu_o2", "氧气压缩机", "Oxygen compressor", 0.2)],
    "F03.W02.P01": [("pump_clean", "净循环水泵", "Clean circulating-water pumps", 0.6),
                    ("pump_dirty", "浊循环水泵", "Dirty circulating-water pumps", 0.4)],
    "F03.W03.P01": [("compressor_1", "1号空压机", "Air compressor No. 1", 0.5),
                    ("compressor_2", "2号空压机", "Air compressor No. 2", 0.5)],
    "F03.W04.P01": [("repair", "机修车间配电", "Repair-shop distribution board", 1.0)],
    "F04.W01.P01": [("office", "办公楼配电", "Office building distribution board", 1.0)],
    "F04.W02.P01": [("kitchen", "厨房配电", "Kitchen distribution board", 1.0)],
}

#: typical electric load of each process (kW) — where extra feeders would go
PROCESS_KW = {"F01.W01.P01": 30000, "F01.W01.P02": 2500, "F01.W01.P03": 30, "F01.W01.P04": 2500,
              "F01.W02.P01": 600, "F02.W01.P01": 500, "F02.W02.P01": 4000, "F02.W02.P02": 3200,
              "F02.W02.P03": 900, "F03.W01.P01": 1000, "F03.W02.P01": 800, "F03.W03.P01": 350,
              "F03.W04.P01": 60, "F04.W01.P01": 80, "F04.W02.P01": 40}

ROLLOVER_MAIN_MWH = 999_999
ROLLOVER_GAS_MAIN = 99_999_999
ROLLOVER_GAS = 9_999_999

HEAD_METERS = [
    dict(role="main", node_id="ENT", source="purchased_electricity", item="grid", unit="MWh",
         register="cumulative", rollover=ROLLOVER_MAIN_MWH, is_main=True, series="main",
         start=("below_rollover", 120_000, 200_000),
         name_zh="220 kV 进线关口总表", name_en="220 kV incoming line — main (billing) meter"),
    dict(role="gas_main", node_id="ENT", source="combustion", item="natural_gas", unit="Nm3",
         register="cumulative", rollover=ROLLOVER_GAS_MAIN, is_main=True, series="gas_main",
         start=("below_rollover", 4_000_000, 12_000_000), serial_prefix="LWQZ",
         name_zh="天然气门站计量表(贸易结算)", name_en="Natural-gas gate station meter (billing)"),
]
TAIL_METERS = [
    dict(role="gas_rf_old", node_id="F02.W01.P01", source="combustion", item="natural_gas", unit="Nm3",
         register="cumulative", rollover=ROLLOVER_GAS_MAIN, series="gas_rf", start=("uniform", 2e6, 3e7),
         serial_prefix="LWQZ", name_zh="加热炉天然气表", name_en="Reheating-furnace natural-gas meter"),
    dict(role="gas_ladle", node_id="F01.W01.P03", source="combustion", item="natural_gas", unit="Nm3",
         register="interval", series="gas_ladle", sigma=0.02,
         name_zh="钢包烘烤天然气流量计", name_en="Ladle-preheating natural-gas flow computer"),
    dict(role="gas_canteen", node_id="F04.W02.P01", source="combustion", item="natural_gas", unit="Nm3",
         register="cumulative", rollover=ROLLOVER_GAS, series="gas_canteen", start=("uniform", 1.5e6, 4e6),
         name_zh="食堂及浴室天然气表", name_en="Canteen and bath-house natural-gas meter"),
    dict(role="gas_rf_new", node_id="F02.W01.P01", source="combustion", item="natural_gas", unit="Nm3",
         register="cumulative", rollover=ROLLOVER_GAS_MAIN, series="gas_rf", start=("small", 3, 40),
         serial_prefix="LWQZ", name_zh="加热炉天然气表(更换后)",
         name_en="Reheating-furnace natural-gas meter (replacement)"),
]

ANOMALY_PLAN = [
    ("main", "gap", 2, 6 * IPH),
    ("main", "duplicate", 6, 3),
    ("dedust_fan_1", "spike", 4, None),
    ("rough_stands", "spike", 7, None),
    ("pump_clean", "stuck", 9, IPD),
    ("compressor_1", "drift", 4, None),
    ("asu_mac", "duplicate_conflict", 3, 2),
    ("gas_ladle", "gap", 5, 8 * IPH),
    ("gas_ladle", "spike", 9, None),
    ("gas_main", "duplicate", 8, 2),
    ("gas_canteen", "counter_reset", 10, None),
    ("gas_rf_old", "duplicate", 2, 2),
    ("gas_rf_new", "gap", 9, 4 * IPH),
    ("office", "gap", 6, 24 * IPH),
]
REPLACEMENT = ("gas_rf_old", "gas_rf_new", 6)

_GAS_DOC = "gas supplier invoice {p}, allocated to the consumers by their sub-meters"
LEDGER = [
    LedgerLine("ELEC", "ENT", "purchased_electricity", "grid", "main", "MWh", 3, "primary",
               "State Grid monthly bill"),
    LedgerLine("NG-RF", "F02.W01.P01", "combustion", "natural_gas", "ng_rf", "10^4 Nm3", 5, "primary",
               _GAS_DOC, div=1e4),
    LedgerLine("NG-LADLE", "F01.W01.P03", "combustion", "natural_gas", "ng_ladle", "10^4 Nm3", 5, "primary",
               _GAS_DOC, div=1e4),
    LedgerLine("NG-CANTEEN", "F04.W02.P01", "combustion", "natural_gas", "ng_canteen", "10^4 Nm3", 5, "primary",
               _GAS_DOC, div=1e4),
    LedgerLine("CARBON", "F01.W01.P01", "combustion", "anthracite", "anthracite", "t", 2, "primary",
               "carbon-injection powder (anthracite) stock ledger {p}"),
    LedgerLine("LIME", "F01.W01.P01", "process", "limestone", "limestone", "t", 2, "primary",
               "flux ledger + lab CaCO3 assay {p}", purity="limestone_purity"),
    LedgerLine("DOLO", "F01.W01.P01", "process", "dolomite", "dolomite", "t", 2, "primary",
               "flux ledger + lab CaMg(CO3)2 assay {p}", purity="dolomite_purity"),
    LedgerLine("DIESEL", "F03", "combustion", "diesel", "diesel", "t", 3, "secondary",
               "fuel card statement (scrap-yard handling machines)"),
]

PRODUCTS = [
    Product("billet", "billet_t", "t", "连铸方坯", "steel billet", "F01", "billet"),
    Product("rebar", "rolled_bar_t", "t", "热轧带肋钢筋", "hot-rolled ribbed bar", "F02", "rolled"),
]


# --------------------------------------------------------------------------- the EAF heats
def _heats(cal: Calendar, rng, allowed15: np.ndarray, kwh_per_t_m: np.ndarray, lf_kwh_m: np.ndarray) -> dict:
    """Simulate the EAF heats on a 1-minute grid; return 15-min EAF and LF energy (kWh), the
    fraction of each interval in a heat cycle, and per-heat tap times and weights.

    A heat starts at the first allowed minute and only if its power-on time fits before the next
    disallowed minute (sharp tariff hours, stops); tap-to-tap = power-on + 9–24 min (tapping,
    charging).  Energy of a heat = tap weight × the month's kWh/t × (1 ± 3 %), drawn evenly over its
    power-on minutes; the LF draws tap weight × the month's LF kWh/t over 22 minutes from 8 minutes
    after tapping."""
    n = cal.n
    N = n * 15
    allowed = np.repeat(allowed15, 15)
    idx = np.arange(N)
    next_block = np.minimum.accumulate(np.where(~allowed, idx, N)[::-1])[::-1]
    next_ok = np.minimum.accumulate(np.where(allowed, idx, N)[::-1])[::-1]
    cap = N // 30 + 1
    p_on = np.clip(np.round(rng.normal(38, 3, cap)), 30, 48).astype(np.int64)
    p_off = np.clip(np.round(rng.normal(14, 2.5, cap)), 9, 24).astype(np.int64)
    tap = rng.normal(75.0, 1.2, cap)
    e_noise = rng.normal(1.0, 0.03, cap)
    starts = []
    t = 0
    while t < N and len(starts) < cap:
        t = int(next_ok[t])
        if t >= N:
            break
        k = len(starts)
        if t + p_on[k] > next_block[t]:
            t = int(next_block[t])
            continue
        starts.append(t)
        t += int(p_on[k] + p_off[k])
    h = len(starts)
    st = np.array(starts, dtype=np.int64)
    p, off, tap, e_noise = p_on[:h], p_off[:h], tap[:h], e_noise[:h]
    tap_min = st + p
    month = cal.month_idx[np.minimum(tap_min // 15, n - 1)]

    def minute_profile(s, e, rate):
        d = np.zeros(N + 1)
        np.add.at(d, np.minimum(s, N), rate)
        np.add.at(d, np.minimum(e, N), -rate)
        return np.cumsum(d)[:N].reshape(n, 15).sum(axis=1)

    eaf_kwh = tap * kwh_per_t_m[month] * e_noise
    eaf = minute_profile(st, tap_min, eaf_kwh / p)
    lf = minute_profile(tap_min + 8, tap_min + 30, tap * lf_kwh_m[month] / 22.0)
    active = minute_profile(st, tap_min + off, np.ones(h)) / 15.0
    return {"eaf": eaf, "lf": lf, "active": active, "tap_month": month, "tap": tap, "n": h}


# --------------------------------------------------------------------------- plant model
def _simulate(cal: Calendar, ss_plant: np.random.SeedSequence, years: int) -> dict:
    """Clean 15-min series and monthly figures of the steel plant."""
    M = cal.months
    s_ops, s_month, s_noise, s_heats = ss_plant.spawn(4)
    ops = np.random.default_rng(s_ops)
    mon = np.random.default_rng(s_month)
    kit = Loads(cal, s_noise.spawn(24))
    pnoise = kit.pnoise
    h = cal.hour

    # ---- operation: 12-day stop from 4 days before the Spring Festival, three trips a year
    stops, trips = planned_stops(cal, ops, years, cny_offset_days=-4, start_hour=8.0, hours=288.0,
                                 trips_per_year=3, trip_hours=(4, 10))
    down = outage_mask(cal, stops, trips)
    allowed = (cal.tou != 2) & ~down                       # EAF: no sharp-peak hours
    rolling = allowed & ~((h >= 8) & (h < 9))              # bar mill: also the daily roll change
    furnace_on = outage_envelope(cal, stops, [],
                                 lambda s, e: ([s, s + 2, e - 12, e - 11.75, e], [1, 0, 0, 0.5, 1]),
                                 lambda t0, d: ([t0], [1]))

    # ---- monthly parameters (illustrative)
    kwh_per_t_m = mon.uniform(370, 395, M)                 # EAF kWh per t liquid steel
    lf_kwh_m = mon.uniform(35, 45, M)                      # LF kWh per t
    caster_yield_m = mon.uniform(0.975, 0.985, M)          # billet / liquid steel
    roll_yield_m = mon.uniform(0.965, 0.978, M)            # rolled bar / billet
    rf_gas_m = mon.uniform(24.0, 27.0, M)                  # reheating furnace Nm3 per t rolled (variable part)
    gas_loss_m = mon.uniform(0.004, 0.009, M)              # gate meter vs Σ sub-meters
    carbon_m = mon.uniform(0.008, 0.011, M)                # t anthracite per t liquid steel
    lime_m = mon.uniform(0.005, 0.008, M)                  # t limestone per t liquid steel
    dolo_m = mon.uniform(0.003, 0.005, M)                  # t dolomite per t liquid steel
    lime_purity_m = np.round(mon.uniform(0.92, 0.95, M), 3)
    dolo_purity_m = np.round(mon.uniform(0.90, 0.94, M), 3)
    va_per_t_m = mon.uniform(480, 620, M)                  # value added, CNY per t rolled bar
    diesel_noise = mon.uniform(-3.0, 3.0, M)
    loss_noise = mon.uniform(-0.001, 0.001, M)

    heats = _heats(cal, np.random.default_rng(s_heats), allowed, kwh_per_t_m, lf_kwh_m)
    active = heats["active"]
    liquid_m = np.bincount(heats["tap_month"], weights=heats["tap"], minlength=M)
    billet_m = liquid_m * caster_yield_m
    rolled_m = billet_m * roll_yield_m
    rate = kit.spread(rolled_m, rolling * pnoise(0, 0.03, 0.02))   # t rolled per interval
    cast = np.concatenate([np.zeros(4), active[:-4]])             # the caster follows the EAF by ~1 h
    day_active = np.repeat(active.reshape(-1, IPD).mean(axis=1), IPD)

    proc = {}
    proc["F01.W01.P01"] = heats["eaf"] + 0.25 * (120 + 380 * active)
    proc["F01.W01.P02"] = heats["lf"] + 0.25 * 40
    proc["F01.W01.P03"] = 0.25 * (15 + 25 * active) * pnoise(1, 0.05, 0.03)
    proc["F01.W01.P04"] = 0.25 * (400 + 2600 * active) * pnoise(2, 0.03, 0.02)
    proc["F01.W02.P01"] = 0.25 * (150 + 650 * cast) * pnoise(3, 0.04, 0.02)
    proc["F02.W01.P01"] = 0.25 * 120 * furnace_on + 7.0 * rate
    proc["F02.W02.P01"] = 0.25 * 250 * furnace_on + 48.0 * rate * pnoise(4, 0.04, 0.02)
    proc["F02.W02.P02"] = 0.25 * 150 * furnace_on + 40.0 * rate * pnoise(5, 0.04, 0.02)
    proc["F02.W02.P03"] = 0.25 * 60 + 10.0 * rate
    proc["F03.W01.P01"] = 0.25 * 1100 * (0.55 + 0.45 * day_active) * pnoise(6, 0.02, 0.02)
    proc["F03.W02.P01"] = 0.25 * (350 + 450 * np.maximum(active, rolling) + 150 * cal.summer) * pnoise(7, 0.03, 0.02)
    proc["F03.W03.P01"] = 0.25 * (180 + 220 * active) * pnoise(8, 0.05, 0.03)
    proc["F03.W04.P01"] = 0.25 * kit.repair_kw(25, 70, 1.0 - down) * pnoise(9, 0.1, 0.05)
    proc["F04.W01.P01"] = 0.25 * kit.office_kw(20, 70) * pnoise(10, 0.06, 0.04)
    proc["F04.W02.P01"] = 0.25 * kit.canteen_kw(10, 45) * pnoise(11, 0.06, 0.04)
    _, main_kwh = main_meter(cal, proc, loss_noise, noload_kw=60.0, base=0.008, slope=0.004)
    main = main_kwh / 1000.0  # the billing meter registers MWh

    gas_rf = furnace_on * (0.25 * 450 + rf_gas_m[cal.month_idx] * rate) * pnoise(12, 0.03, 0.02)
    gas_ladle = 0.25 * (80 + 140 * active) * pnoise(13, 0.05, 0.03)
    gas_canteen = kit.canteen_gas(0.8, 9.0, 18.0) * pnoise(14, 0.08, 0.05)
    gas_main = (gas_rf + gas_ladle + gas_canteen) * (1 + gas_loss_m[cal.month_idx])

    ms = cal.month_sum
    inv = 1 + gas_loss_m  # the invoice (= gate meter) allocated by sub-meter
    eaf_scope_kwh = ms(proc["F01.W01.P01"] + proc["F01.W01.P02"] + proc["F01.W01.P03"] + proc["F01.W01.P04"]
                       + proc["F01.W02.P01"] + proc["F03.W01.P01"])
    eaf_kgce_per_t = (eaf_scope_kwh * KGCE_PER_KWH + ms(gas_ladle) * NG_GJ_PER_NM3 / 0.0293076) / liquid_m
    return {
        "proc": proc, "main": main, "gas_main": gas_main, "gas_rf": gas_rf, "gas_ladle": gas_ladle,
        "gas_canteen": gas_canteen, "stops": stops, "trips": trips, "heats": heats["n"],
        "monthly": {
            "main": ms(main), "gas_main": ms(gas_main),
            "ng_rf": ms(gas_rf) * inv, "ng_ladle": ms(gas_ladle) * inv, "ng_canteen": ms(gas_canteen) * inv,
            "liquid": liquid_m, "billet": billet_m, "rolled": rolled_m,
            "anthracite": liquid_m * carbon_m, "limestone": liquid_m * lime_m, "limestone_purity": lime_purity_m,
            "dolomite": liquid_m * dolo_m, "dolomite_purity": dolo_purity_m,
            "diesel": np.clip(20 + 15 * liquid_m / max(liquid_m.max(), 1.0) + diesel_noise, 10, 40),
            "value_added": rolled_m * va_per_t_m / 1e4,
            "eaf_kwh_per_t": ms(heats["eaf"]) / liquid_m, "eaf_kgce_per_t": eaf_kgce_per_t,
            "rf_gj_per_t": ms(gas_rf) * NG_GJ_PER_NM3 / rolled_m,
        },
    }


def _readme_notes(sim: dict, cal: Calendar) -> str:
    mo = sim["monthly"]
    liquid = mo["liquid"].sum()
    kgce = float((mo["eaf_kgce_per_t"] * mo["liquid"]).sum() / liquid)
    rf = float((mo["rf_gj_per_t"] * mo["rolled"]).sum() / mo["rolled"].sum())
    return f"""Electric-arc-furnace mini-mill: {sim['heats']:,} heats of ≈ 75 t simulated minute by minute outside the sharp-peak
tariff hours (09–11, 15–17), {liquid:,.0f} t liquid steel, {mo['billet'].sum():,.0f} t billets, {mo['rolled'].sum():,.0f} t
hot-rolled bar. 电炉避开尖峰电价时段冶炼；轧线每天 08–09 换辊。All parameters are illustrative (see `workbench/demo_steel.py`).

The ledger (`activity.csv`, `monthly.csv`) is computed from the *clean* data: purchased electricity (MWh) equals the
main meter's true monthly consumption; the natural-gas invoice equals the gate station meter and is allocated to the
reheating furnace, ladle preheating and canteen by their sub-meters (gate meter = Σ sub-meters × (1 + 0.4–0.9 %)).
Σ electricity sub-meters ≈ main meter − ≈ 1 % (losses). Fluxes (limestone, dolomite) are process sources; the carbon
injected for slag foaming (anthracite) is combustion. Graphite electrodes are not in the factor library and are not
written. 石墨电极消耗因因子库无此项而未列入。

For orientation only: EAF + LF + dedusting + caster + oxygen plant electricity (at 0.1228 kgce/kWh) + ladle-preheating gas
= {kgce:.1f} kgce per t liquid steel; GB 21256-2025 (EAF ≥ 70 t) grades 1/2/3: 61/64/72 kgce/t — the standard's exact
scope is not reproduced here. Reheating furnace: {rf:.2f} GJ natural gas per t rolled.

Planned stop(s) 春节停产检修: {stop_text(cal, sim['stops'])} (not an anomaly 非异常). Trips 非计划停机: {len(sim['trips'])}."""


README_KINDS = """* `gap` 缺数 — rows absent for hours to a day; `duplicate` 重复 — same row written twice;
  `duplicate_conflict` 冲突重复 — same meter_id + ts with a different value (first row correct);
* `spike` 尖峰 — one interval value ×10–50; `stuck` 卡滞 — one day of constant readings;
  `drift` 漂移 — an air compressor's meter reads 8 % high for a month;
* `counter_reset` 清零 — the canteen gas meter's register drops to ~0 unexpectedly; `rollover` 翻转 — genuine wrap past
  the register capacity of the electricity (MWh) and gas gate meters (not an error); `meter_replacement` 换表 — the
  reheating furnace's gas meter is replaced, the new meter (new id, `replaces` = old id) starts at a small register.
"""

STEEL = Plant(
    enterprise_id="demo-steel", sector="steel", prefix=PREFIX, enterprise=ENTERPRISE,
    uscc=("91330503", "MA2DEMO1", None),
    nodes=NODES, elec_processes=ELEC_PROCESSES, process_kw=PROCESS_KW,
    head_meters=HEAD_METERS, tail_meters=TAIL_METERS, simulate=_simulate,
    anomaly_plan=ANOMALY_PLAN, replacement=REPLACEMENT, ledger=LEDGER, products=PRODUCTS,
    readme_monthly="钢坯、热轧棒材产量与工业增加值（万元）/ billet and hot-rolled bar output, value added (10⁴ CNY)",
    readme_notes=_readme_notes, readme_kinds=README_KINDS, generator="workbench.demo.steel",
)
