"""Deterministic demo enterprise (示例企业) for the Carbon Efficiency Workbench.

``generate(out)`` writes a realistic, fully synthetic cement plant — 浙江示例水泥有限公司 /
Zhejiang Demo Cement Co., Ltd. — into a directory:

============================  ================================================================
``enterprise.json``           enterprise master data, reporting period, generator parameters
``boundary.csv``              boundary nodes enterprise → facility → workshop → process → meter
``meters.csv``                meter register (see ``docs/architecture.md``)
``readings.parquet``          15-min meter readings ``meter_id, ts, value`` (zstd, row groups
                              by batches of meters, sorted by meter_id then ts)
``activity.csv``              the company's monthly ledger (台账) as activity records
``monthly.csv``               monthly clinker / cement output and value added (万元)
``anomalies.csv``             labels of every anomaly planted in the readings
``README.md``                 bilingual description of the files and the planted anomalies
============================  ================================================================

How the numbers are made
------------------------
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

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["generate", "DEFAULT_SEED", "ANOMALY_KINDS", "DEFAULT_METER_COUNT"]

DEFAULT_SEED = 20251
GENERATOR_VERSION = "1.0"
PREFIX = "88.123.4567"
ROLLOVER_MAIN = 99_999_999
ROLLOVER_GAS = 9_999_999
ROLLOVER_HEAT = 9_999_999

MS_15 = 900_000
MS_H = 3_600_000
MS_D = 86_400_000
IPH = 4  # intervals per hour
IPD = 96  # intervals per day

ANOMALY_KINDS = (
    "gap", "duplicate", "duplicate_conflict", "spike", "meter_replacement",
    "counter_reset", "rollover", "stuck", "drift",
)

# Spring Festival (春节, 1st day of the 1st lunar month)
_CNY = ["2018-02-16", "2019-02-05", "2020-01-25", "2021-02-12", "2022-02-01", "2023-01-22",
        "2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06", "2028-01-26", "2029-02-13",
        "2030-02-03", "2031-01-23", "2032-02-11", "2033-01-31", "2034-02-19", "2035-02-08",
        "2036-01-28", "2037-02-15", "2038-02-04", "2039-01-24", "2040-02-12"]

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


@dataclass
class Meter:
    meter_id: str
    role: str
    node_id: str
    source: str
    item: str
    unit: str
    register: str
    name_zh: str
    name_en: str
    rollover: int | None = None
    is_main: bool = False
    share: float = 1.0
    replaces: str = ""
    installed: str = ""
    removed: str = ""
    serial: str = ""
    index: int = 0


def _meter_plan(n_meters: int | None) -> list[Meter]:
    """The meter register (without serials/dates); default first, extra feeders appended."""
    specs: list[Meter] = []

    def add(**kw):
        specs.append(Meter(meter_id="", **kw))

    add(role="main", node_id="ENT", source="purchased_electricity", item="grid", unit="kWh",
        register="cumulative", rollover=ROLLOVER_MAIN, is_main=True,
        name_zh="110 kV 进线关口总表", name_en="110 kV incoming line — main (billing) meter")
    for node, meters in ELEC_PROCESSES.items():
        for role, zh, en, share in meters:
            add(role=role, node_id=node, source="purchased_electricity", item="grid", unit="kWh",
                register="interval", name_zh=zh, name_en=en, share=share)
    add(role="whr_gen", node_id="F01.W03.P01", source="self_generated_electricity", item="grid",
        unit="kWh", register="interval", name_zh="余热发电机出口表", name_en="WHR generator output meter")
    add(role="coal_head", node_id="F01.W02.P01", source="combustion", item="raw_coal", unit="t",
        register="interval", name_zh="窑头喂煤秤", name_en="Kiln-burner coal feeder scale", share=0.42)
    add(role="coal_calc", node_id="F01.W02.P01", source="combustion", item="raw_coal", unit="t",
        register="interval", name_zh="分解炉喂煤秤", name_en="Calciner coal feeder scale", share=0.58)
    add(role="gas_old", node_id="F04.W02", source="combustion", item="natural_gas", unit="Nm3",
        register="cumulative", rollover=ROLLOVER_GAS, name_zh="食堂及锅炉天然气表",
        name_en="Canteen and boiler natural-gas meter")
    add(role="heat", node_id="F05.W01.P01", source="exported_heat", item="heat", unit="GJ",
        register="cumulative", rollover=ROLLOVER_HEAT, name_zh="外供蒸汽热量表",
        name_en="Exported-steam heat meter")
    add(role="gas_new", node_id="F04.W02", source="combustion", item="natural_gas", unit="Nm3",
        register="cumulative", rollover=ROLLOVER_GAS, name_zh="食堂及锅炉天然气表(更换后)",
        name_en="Canteen and boiler natural-gas meter (replacement)")
    n_default = len(specs)
    if n_meters is None:
        n_meters = n_default
    if n_meters < n_default:
        raise ValueError(f"meters must be ≥ {n_default} (the default demo), got {n_meters}")
    procs = list(ELEC_PROCESSES)
    extra_per_proc = {p: 0 for p in procs}
    for j in range(n_meters - n_default):
        # extra feeders go where the load is (D'Hondt apportionment by typical process kW)
        p = max(procs, key=lambda q: PROCESS_KW[q] / (len(ELEC_PROCESSES[q]) + extra_per_proc[q] + 1))
        extra_per_proc[p] += 1
        add(role=f"extra_{j + 1}", node_id=p, source="purchased_electricity", item="grid", unit="kWh",
            register="interval", name_zh=f"{_node_name(p, 'zh')}配电回路{extra_per_proc[p]:03d}",
            name_en=f"{_node_name(p, 'en')} feeder {extra_per_proc[p]:03d}",
            share=0.5 + (((j + 1) * 0.6180339887) % 1.0))  # relative weight, normalised below
    # shares: default meters keep their relative weights, extras weigh like an average default meter
    for p in procs:
        members = [m for m in specs if m.node_id == p and m.source == "purchased_electricity"]
        n_def = len(ELEC_PROCESSES[p])
        w = np.array([m.share if k < n_def else m.share / n_def for k, m in enumerate(members)])
        w = w / w.sum()
        for m, s in zip(members, w):
            m.share = float(s)
    width = max(4, len(str(n_meters)))
    for k, m in enumerate(specs):
        m.index = k
        m.meter_id = f"M{k + 1:0{width}d}"
    return specs


def _node_name(node_id: str, lang: str) -> str:
    for nid, zh, en, _ in NODES:
        if nid == node_id:
            return zh if lang == "zh" else en
    raise KeyError(node_id)


#: number of meters of the default demo (``meters=None``)
DEFAULT_METER_COUNT = len(_meter_plan(None))


# --------------------------------------------------------------------------- calendar
class _Calendar:
    def __init__(self, start: np.datetime64, months: int):
        self.start_M = start.astype("datetime64[M]")
        mb = (self.start_M + np.arange(months + 1)).astype("datetime64[ms]").astype(np.int64)
        self.start_ms = int(mb[0])
        self.end_ms = int(mb[-1])
        self.n = (self.end_ms - self.start_ms) // MS_15
        self.month_bounds = (mb - self.start_ms) // MS_15  # interval index of each month start
        self.months = months
        self.periods = [str(self.start_M + k) for k in range(months)]
        t = self.start_ms + np.arange(self.n, dtype=np.int64) * MS_15
        self.t_ms = t
        self.th = np.arange(self.n) / IPH  # hours since start
        dt = t.astype("datetime64[ms]")
        day = t // MS_D
        self.day = day
        self.dow = (day + 3) % 7  # Monday = 0
        self.hour = (t % MS_D) / MS_H
        moy = dt.astype("datetime64[M]").astype(np.int64) % 12
        self.moy = moy + 1
        self.dom = (dt.astype("datetime64[D]") - dt.astype("datetime64[M]")).astype(np.int64) + 1
        doy = (dt.astype("datetime64[D]") - dt.astype("datetime64[Y]")).astype(np.int64)
        self.month_idx = np.repeat(np.arange(months), np.diff(self.month_bounds))
        cny = np.array(_CNY, dtype="datetime64[D]").astype(np.int64)
        pos = np.clip(np.searchsorted(cny, day), 1, len(cny) - 1)
        before, after = day - cny[pos - 1], day - cny[pos]
        self.cny_off = np.where(np.abs(before) <= np.abs(after), before, after)  # days from nearest CNY
        self.holiday = ((self.cny_off >= -1) & (self.cny_off <= 5)) | \
            ((self.moy == 5) & (self.dom <= 5)) | ((self.moy == 10) & (self.dom <= 7))
        self.weekend = self.dow >= 5
        self.summer = np.maximum(0.0, np.cos(2 * np.pi * (doy - 200) / 365.25))
        self.winter = np.maximum(0.0, np.cos(2 * np.pi * (doy - 15) / 365.25))
        h = self.hour
        # Zhejiang large-industry TOU: valley 22–08 & 11–13, sharp 09–11 & 15–17, peak otherwise
        valley = (h >= 22) | (h < 8) | ((h >= 11) & (h < 13))
        sharp = ((h >= 9) & (h < 11)) | ((h >= 15) & (h < 17))
        self.tou = np.where(valley, 0, np.where(sharp, 2, 1))
        self.cny = cny

    def month_sum(self, x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(x, self.month_bounds[:-1])


def _smooth(rng, n, step, sigma):
    knots = rng.standard_normal(n // step + 2) * sigma
    return np.interp(np.arange(n) / step, np.arange(knots.size), knots)


def _envelope(th, xs, ys):
    return np.interp(th, np.asarray(xs, float), np.asarray(ys, float))


# --------------------------------------------------------------------------- plant model
def _simulate_plant(cal: _Calendar, ss_plant: np.random.SeedSequence, years: int) -> dict:
    """Process-level clean series (per 15-min interval) and monthly plant figures."""
    n, M = cal.n, cal.months
    s_ops, s_month, s_noise = ss_plant.spawn(3)
    ops = np.random.default_rng(s_ops)
    mon = np.random.default_rng(s_month)
    noise_ss = s_noise.spawn(32)
    noise = [np.random.default_rng(s) for s in noise_ss]

    def pnoise(k, fast=0.03, slow=0.03):
        r = noise[k]
        return np.clip(1 + _smooth(r, n, 4, fast) + _smooth(r, n, IPD, slow), 0.6, 1.4)

    th = cal.th
    # ---- kiln operation: planned stop after the Spring Festival (10 days) + short trips
    feed = np.ones(n)
    fuel = np.ones(n)
    stops, trips = [], []
    for b in range(years):
        b0, b1 = cal.month_bounds[12 * b], cal.month_bounds[12 * b + 12]
        b0_day, b1_day = (cal.start_ms // MS_D) + b0 // IPD, (cal.start_ms // MS_D) + b1 // IPD
        in_block = cal.cny[(cal.cny >= b0_day) & (cal.cny < b1_day - 20)]
        s_day = (int(in_block[0]) + 3) if in_block.size else int(b0_day + 40)
        s = (s_day * MS_D - cal.start_ms) / MS_H + 8.0  # 08:00, hours since start
        e = s + 240.0
        stops.append((s, e))
        feed = np.minimum(feed, _envelope(th, [s - 6, s, e + 24, e + 36], [1, 0, 0, 1]))
        fuel = np.minimum(fuel, _envelope(th, [s - 6, s, e, e + 0.25, e + 24, e + 36],
                                          [1, 0, 0, 0.3, 0.6, 1]))
        stop_month = int(cal.month_idx[min(int(s * IPH), n - 1)])
        cands = [m for m in range(12 * b, 12 * b + 12) if m != stop_month]
        for m in ops.choice(cands, size=2, replace=False):
            m0, m1 = cal.month_bounds[m], cal.month_bounds[m + 1]
            t0 = (m0 + ops.integers(2 * IPD, m1 - m0 - 3 * IPD)) / IPH
            d = float(ops.uniform(3, 8))
            trips.append((t0, d))
            feed = np.minimum(feed, _envelope(th, [t0 - 0.25, t0, t0 + d, t0 + d + 4], [1, 0, 0, 1]))
            fuel = np.minimum(fuel, _envelope(th, [t0 - 0.25, t0, t0 + d, t0 + d + 4], [1, 0.15, 0.3, 1]))

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
        1 + _smooth(noise[0], n, 8, 0.015) + _smooth(noise[0], n, IPD, 0.01), 0.9, 1.1)
    coal = nominal * fuel * rate_m[cal.month_idx] * coal_rate_m[cal.month_idx] * np.clip(
        1 + _smooth(noise[1], n, 4, 0.02), 0.9, 1.1)
    clinker_m = cal.month_sum(clinker)
    cement_m = clinker_m / cem_ratio_m

    tou_mill = np.array([1.0, 0.7, 0.3])[cal.tou]
    cny = cal.cny_off
    demand = np.where((cny >= -10) & (cny <= 14), np.where((cny >= -2) & (cny <= 7), 0.15, 0.55), 1.0)
    demand = demand * np.where(cal.dow == 6, 0.92, 1.0)
    staff = np.where(cal.holiday, 0.45, 1.0)
    work = ((cal.hour >= 8) & (cal.hour < 17.5)).astype(float)
    workday = (~cal.weekend & ~cal.holiday).astype(float)
    h = cal.hour

    def bump(center, width):
        return np.exp(-0.5 * ((h - center) / width) ** 2)

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
    proc["F02.W01.P01"] = 0.25 * 50 + (cement_m * sp_cement_m)[cal.month_idx] * shape / cal.month_sum(shape)[cal.month_idx]
    shape_p = (0.25 + np.where((h >= 6) & (h < 22), 1.0, 0.1)) * demand * pnoise(7, 0.08, 0.05)
    proc["F02.W01.P02"] = 0.25 * 15 + (cement_m * 1.2)[cal.month_idx] * shape_p / cal.month_sum(shape_p)[cal.month_idx]
    mill_act = tou_mill * demand
    proc["F03.W01.P01"] = 0.25 * (180 + 220 * (0.5 * feed + 0.5 * mill_act)) * pnoise(8, 0.05, 0.03)
    proc["F03.W02.P01"] = 0.25 * (160 + 70 * cal.summer) * (0.6 + 0.4 * feed) * pnoise(9, 0.03, 0.03)
    proc["F03.W03.P01"] = 0.25 * (20 + 60 * work * np.maximum(workday, 1 - feed) * (1 + 2 * (1 - feed))) * pnoise(10, 0.1, 0.05)
    proc["F03.W04.P01"] = 0.25 * (18 + 14 * work) * pnoise(11, 0.06, 0.03)
    office = 15 + 55 * work * (workday + 0.2 * (1 - workday)) * (1 + 0.7 * cal.summer + 0.4 * cal.winter)
    proc["F04.W01.P01"] = 0.25 * office * pnoise(12, 0.06, 0.04)
    meal = bump(7.0, 0.6) + bump(11.7, 0.6) + bump(17.5, 0.6) + 0.3 * bump(23.5, 0.4)
    proc["F04.W02.P01"] = 0.25 * (8 + 30 * meal * staff) * pnoise(13, 0.06, 0.04)
    shower = bump(19.0, 1.8) + 0.5 * bump(8.0, 0.8)
    proc["F04.W02.P02"] = 0.25 * (3 + 9 * shower * staff) * pnoise(14, 0.05, 0.03)
    # exported steam: neighbouring dyeing plant, day shifts on working days, needs the kiln (WHR)
    steam_sched = np.where((h >= 7) & (h < 23), 1.0, 0.6) * np.where(cal.weekend, 0.6, 1.0) * \
        np.where(cal.holiday, 0.15, 1.0)
    steam_on = np.clip(feed * 1.2, 0, 1)
    heat = 3.4 * steam_sched * steam_on * pnoise(15, 0.05, 0.05)
    proc["F05.W01.P01"] = 0.25 * (5 + 25 * steam_sched * steam_on) * pnoise(16, 0.04, 0.03)
    gas = (0.5 + 6.0 * meal * staff + 12.0 * shower * staff * (1 + 0.8 * cal.winter)) * pnoise(17, 0.08, 0.05)

    load = sum(proc.values())
    loss = 0.013 + 0.006 * load / load.mean() + loss_noise[cal.month_idx]
    main = load * (1 + loss) + 0.25 * 24.0  # + 24 kW transformer no-load losses

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
RESET_LOST_FRACTION = (0.2, 0.8)


def _fmt_ts(ms: int) -> str:
    return str(np.datetime64(int(ms), "ms").astype("datetime64[s]"))


def _fmt(x: float, nd: int) -> str:
    s = f"{x:.{nd}f}"
    return "0" if s.strip("-0.") == "" else s


# --------------------------------------------------------------------------- main entry
def generate(out, meters: int | None = None, years: int = 1, seed: int = DEFAULT_SEED,
             start: str = "2025-01-01", progress: bool = False) -> dict:
    """Write the demo enterprise into directory ``out``; return what was written.

    ``meters``: total number of meters (``None`` → the default ~37); extra meters are electricity
    feeders split from the process loads.  ``years``: length of the period in years (12 months
    each) from ``start`` (the first day of a month).  Same arguments → identical tables.
    """
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    years = int(years)
    if years < 1:
        raise ValueError("years must be ≥ 1")
    start64 = np.datetime64(start, "D")
    if start64 != start64.astype("datetime64[M]").astype("datetime64[D]"):
        raise ValueError(f"start must be the first day of a month, got {start}")
    seed = int(seed)

    plan = _meter_plan(meters)
    n_total = len(plan)
    root = np.random.SeedSequence(seed)
    ss_meters_root, ss_plant, ss_anom, ss_static = root.spawn(4)
    meter_ss = ss_meters_root.spawn(n_total)
    cal = _Calendar(start64, 12 * years)
    sim = _simulate_plant(cal, ss_plant, years)
    roles = {m.role: m for m in plan}
    n = cal.n

    # ---- static meter attributes (serial, installation) from each meter's own stream
    for m in plan:
        r = np.random.default_rng(meter_ss[m.index].spawn(1)[0])
        prefix = {"kWh": "DTSD341", "t": "ICS-XF", "Nm3": "TBQZ", "GJ": "RLB"}[m.unit]
        if m.is_main:
            prefix = "DTZY341"
        m.serial = f"{prefix}-{int(r.integers(10**7, 10**8))}"
        day0 = np.datetime64("2016-01-01") + int(r.integers(0, 365 * 7))
        m.installed = str(min(day0, start64 - 30))
    # ---- meter replacement of the gas meter
    arng = [np.random.default_rng(s) for s in ss_anom.spawn(len(ANOMALY_PLAN) + 4)]
    ra = arng[-1]
    mb = cal.month_bounds
    swap_idx = int(mb[REPLACEMENT_MONTH] + ra.integers(8, 20) * IPD + ra.integers(9, 16) * IPH)
    swap_ms = cal.start_ms + swap_idx * MS_15
    old, new = roles["gas_old"], roles["gas_new"]
    old.removed = str(np.datetime64(swap_ms, "ms").astype("datetime64[D]"))
    new.installed = old.removed
    new.replaces = old.meter_id

    # ---- anomalies per meter (indices into the clean series of that meter)
    anomalies: list[dict] = []
    per_meter: dict[str, list] = {}
    for (role, kind, month, par), r in zip(ANOMALY_PLAN, arng):
        m = roles[role]
        m0, m1 = int(mb[month]), int(mb[month + 1])
        if kind == "drift":
            i0, i1 = m0, m1
        elif kind == "spike":
            i0 = m0 + int(r.integers(3, (m1 - m0) // IPD - 3)) * IPD + int(r.integers(1, 5)) * IPH + int(r.integers(0, 4))
            i1 = i0 + 1
        else:
            length = par if kind in ("gap", "stuck") else (par or 1)
            i0 = m0 + int(r.integers(3, (m1 - m0) // IPD - 4)) * IPD + int(r.integers(0, 24)) * IPH
            i1 = i0 + length
        per_meter.setdefault(m.meter_id, []).append({"kind": kind, "i0": i0, "i1": i1, "rng": r})

    # ---- writers
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("meter_id", pa.string()), ("ts", pa.timestamp("ms")), ("value", pa.float64())])
    readings_path = out / "readings.parquet"
    writer = pq.ParquetWriter(readings_path, schema, compression="zstd", compression_level=3,
                              use_dictionary=["meter_id", "value"],
                              column_encoding={"ts": "DELTA_BINARY_PACKED"}, write_statistics=True)
    rows_per_group = max(2_000_000, n + 1)
    batch_ids: list[str] = []
    batch_ts: list[np.ndarray] = []
    batch_val: list[np.ndarray] = []
    batch_rows = 0
    n_readings = 0

    def flush():
        nonlocal batch_rows, n_readings
        if not batch_rows:
            return
        lengths = np.array([a.size for a in batch_ts])
        idx = np.repeat(np.arange(len(batch_ids), dtype=np.int32), lengths)
        mid = pa.DictionaryArray.from_arrays(pa.array(idx), pa.array(batch_ids, pa.string())).cast(pa.string())
        tbl = pa.Table.from_arrays(
            [mid, pa.array(np.concatenate(batch_ts), pa.timestamp("ms")), pa.array(np.concatenate(batch_val))],
            schema=schema)
        writer.write_table(tbl, row_group_size=tbl.num_rows)
        n_readings += tbl.num_rows
        batch_ids.clear(), batch_ts.clear(), batch_val.clear()
        batch_rows = 0

    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        bar = Progress(TextColumn("[bold]demo readings"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        bar.start()
        task = bar.add_task("meters", total=n_total)

    t_int = cal.t_ms
    t_cum = np.append(cal.t_ms, cal.end_ms)
    try:
        for m in plan:
            rng = np.random.default_rng(meter_ss[m.index])
            labels: list[dict] = []
            # -------- clean series
            if m.register == "interval":
                if m.source == "purchased_electricity":
                    base = sim["proc"][m.node_id] * m.share
                    sigma = 0.03 if m.share > 0.1 else 0.05
                elif m.role == "whr_gen":
                    base, sigma = sim["whr"], 0.01
                else:  # coal scales
                    base, sigma = sim["coal"] * m.share, 0.03
                vals = base * np.clip(1 + sigma * rng.standard_normal(n), 0.7, 1.3)
                ts = t_int
                keep = np.ones(n, bool)
            else:
                cons = {"main": sim["main"], "heat": sim["heat"]}.get(m.role, sim["gas"])
                if m.role == "main":
                    r0 = float(rng.uniform(0.58, 0.68)) * m.rollover
                elif m.role == "heat":
                    r0 = m.rollover - float(rng.uniform(2000, 4500))
                elif m.role == "gas_old":
                    r0 = float(rng.uniform(150_000, 900_000))
                else:
                    r0 = float(np.round(rng.uniform(3, 40), 2))
                total = r0 + np.concatenate(([0.0], np.cumsum(cons)))
                ts, keep = t_cum, np.ones(n + 1, bool)
                if m.role == "gas_old":
                    keep[swap_idx + 1:] = False
                elif m.role == "gas_new":
                    keep[:swap_idx] = False
                    total = total - (total[swap_idx] - r0)
                vals = total
            # -------- anomalies that change values
            dup = np.ones(ts.size, np.int64)
            conflicts = []
            for a in per_meter.get(m.meter_id, []):
                i0, i1, kind, r = a["i0"], a["i1"], a["kind"], a["rng"]
                lab = {"meter_id": m.meter_id, "kind": kind, "ts_start": int(ts[i0]), "ts_end": int(ts[i1 - 1]),
                       "n_readings": i1 - i0}
                if kind == "spike":
                    f = float(np.round(r.uniform(10, 50), 1))
                    lab["description"] = (f"spike: interval value ×{f} ({vals[i0]:.2f} → {vals[i0] * f:.2f} {m.unit}) "
                                          f"for one reading / 尖峰：单点放大 {f} 倍")
                    vals[i0] *= f
                elif kind == "stuck":
                    v = vals[i0 - 1]
                    vals[i0:i1] = v
                    lab["description"] = (f"stuck / flat-lined: {i1 - i0} readings repeat {v:.2f} {m.unit} "
                                          f"(one day) / 表计卡滞：一天内读数恒定")
                elif kind == "drift":
                    vals[i0:i1] *= 1.08
                    lab["description"] = (f"drift: meter reads 8 % high for the whole month {cal.periods[cal.month_idx[i0]]} "
                                          f"(calibration error) / 漂移：整月偏高 8 %")
                elif kind == "gap":
                    keep[i0:i1] = False
                    lab["description"] = (f"gap: {i1 - i0} readings missing ({(i1 - i0) / IPH:g} h), rows absent "
                                          f"/ 数据缺失 {(i1 - i0) / IPH:g} 小时")
                elif kind == "duplicate":
                    dup[i0:i1] = 2
                    lab["description"] = (f"duplicate: {i1 - i0} readings written twice with identical values "
                                          f"/ 重复写入（值相同）")
                elif kind == "duplicate_conflict":
                    dup[i0:i1] = 2
                    f = r.uniform(1.3, 1.8, i1 - i0)
                    conflicts.append((i0, i1, f))
                    lab["description"] = (f"conflicting duplicate: {i1 - i0} readings written twice, the second row "
                                          f"×{', ×'.join(f'{x:.2f}' for x in f)} (the first row is correct) "
                                          f"/ 重复写入（值不同，第一行为正确值）")
                elif kind == "counter_reset":
                    phi = float(r.uniform(*RESET_LOST_FRACTION))
                    lost = phi * sim["main"][i0 - 1]
                    before = vals[i0 - 1] % m.rollover
                    vals[i0:] = vals[i0:] - vals[i0] + (1 - phi) * sim["main"][i0 - 1]
                    lab["n_readings"] = 1
                    lab["ts_end"] = lab["ts_start"]
                    lab["description"] = (f"counter reset: register dropped unexpectedly from {before:.2f} to "
                                          f"{vals[i0]:.2f} {m.unit}; {lost:.2f} {m.unit} of the preceding interval "
                                          f"are not recoverable from the readings / 计数器意外清零")
                labels.append(lab)
            if m.register == "interval":
                vals = np.round(np.maximum(vals, 0.0), 3 if m.unit == "t" else 2)
            else:
                vals = np.mod(np.round(vals, 2), m.rollover)
            # -------- emit rows: drop gaps, repeat duplicates, alter conflicting copies
            idx = np.flatnonzero(keep)
            rep = np.repeat(idx, dup[idx])
            v_out = vals[rep]
            for i0, i1, f in conflicts:
                second = np.flatnonzero((rep >= i0) & (rep < i1) & np.r_[False, rep[1:] == rep[:-1]])
                v_out[second] = np.round(v_out[second] * f, 2)
            ts_out = ts[rep]
            # -------- genuine rollovers of cumulative registers (labelled, not errors)
            if m.register == "cumulative":
                drop = np.flatnonzero(np.diff(v_out) < 0) + 1
                resets = {lab["ts_start"] for lab in labels if lab["kind"] == "counter_reset"}
                for j in drop:
                    if int(ts_out[j]) in resets:
                        continue
                    labels.append({"meter_id": m.meter_id, "kind": "rollover", "ts_start": int(ts_out[j]),
                                   "ts_end": int(ts_out[j]), "n_readings": 1,
                                   "description": (f"genuine rollover (not an error): register passed its capacity "
                                                   f"{m.rollover:,} {m.unit}, {v_out[j - 1]:.2f} → {v_out[j]:.2f} "
                                                   f"/ 表计正常翻转（满量程归零）")})
            if m.role == "gas_new":
                labels.append({"meter_id": m.meter_id, "kind": "meter_replacement", "ts_start": swap_ms,
                               "ts_end": swap_ms, "n_readings": 0,
                               "description": (f"meter replacement: {old.meter_id} (serial {old.serial}) removed, "
                                               f"{m.meter_id} (serial {m.serial}) installed with register "
                                               f"{v_out[0]:.2f} {m.unit}; last old reading {_fmt_ts(swap_ms)} "
                                               f"/ 换表：旧表拆除，新表起始读数非零")})
            anomalies.extend(labels)
            batch_ids.append(m.meter_id)
            batch_ts.append(ts_out)
            batch_val.append(v_out)
            batch_rows += ts_out.size
            if batch_rows >= rows_per_group:
                flush()
            if bar is not None:
                bar.update(task, advance=1)
        flush()
    finally:
        writer.close()
        if bar is not None:
            bar.stop()

    # ---- tables
    files = {"readings": str(readings_path)}
    files["boundary"] = _write_boundary(out / "boundary.csv", plan)
    files["meters"] = _write_meters(out / "meters.csv", plan)
    anomalies.sort(key=lambda a: (a["meter_id"], a["ts_start"], a["kind"]))
    files["anomalies"] = _write_anomalies(out / "anomalies.csv", anomalies)
    n_activity = _write_activity(out / "activity.csv", cal, sim["monthly"])
    files["activity"] = str(out / "activity.csv")
    files["monthly"] = _write_monthly(out / "monthly.csv", cal, sim["monthly"])
    period_end = str(np.datetime64(cal.end_ms, "ms").astype("datetime64[D]") - 1)
    params = {"seed": seed, "meters": n_total, "meters_requested": meters, "years": years,
              "start": str(start64), "generator": "workbench.demo", "version": GENERATOR_VERSION}
    ent = dict(ENTERPRISE)
    ent["unified_social_credit_code"] = _uscc("91330522", "MA2DEMO0", 7)
    ent["period_start"] = str(start64)
    ent["period_end"] = period_end
    ent["generator"] = params
    ent = {k: ent[k] for k in ["name_zh", "name_en", "region", "industry_code", "industry_name_zh",
                               "industry_name_en", "identifier_prefix", "unified_social_credit_code",
                               "legal_representative", "contact_person", "contact_phone", "contact_email",
                               "address", "reporting_standard", "sector_standard", "timezone",
                               "period_start", "period_end", "generator"]}
    (out / "enterprise.json").write_text(json.dumps(ent, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    files["enterprise"] = str(out / "enterprise.json")
    kinds = {}
    for a in anomalies:
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    counts = {"nodes": len(NODES), "meters": n_total, "readings": n_readings, "anomalies": len(anomalies),
              "activity": n_activity, "monthly": 3 * cal.months, "months": cal.months}
    files["readme"] = _write_readme(out / "README.md", ent, counts, kinds, plan, sim, cal)
    return {
        "out": str(out), "files": files, "counts": counts, "anomaly_kinds": dict(sorted(kinds.items())),
        "period_start": str(start64), "period_end": period_end, "params": params,
        "seconds": round(time.perf_counter() - t_start, 2),
    }


# --------------------------------------------------------------------------- writers
def _write_csv(path: Path, header, rows) -> str:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def _level(node_id: str) -> str:
    return {0: "enterprise", 1: "facility", 2: "workshop", 3: "process"}[0 if node_id == "ENT" else node_id.count(".") + 1]


def _parent(node_id: str) -> str:
    if node_id == "ENT":
        return ""
    return node_id.rsplit(".", 1)[0] if "." in node_id else "ENT"


def _classification(node_id: str) -> str:
    cls = {nid: c for nid, _, _, c in NODES}
    return cls.get(node_id.split(".")[0], "")


def _write_boundary(path: Path, plan: list[Meter]) -> str:
    rows = [(nid, _parent(nid), _level(nid), zh, en, c, f"{PREFIX}/node.{nid}") for nid, zh, en, c in NODES]
    rows += [(m.meter_id, m.node_id, "meter", m.name_zh, m.name_en, _classification(m.node_id),
              f"{PREFIX}/meter.{m.meter_id}") for m in plan]
    return _write_csv(path, ["node_id", "parent_id", "level", "name_zh", "name_en", "classification", "identifier"], rows)


def _write_meters(path: Path, plan: list[Meter]) -> str:
    rows = [(m.meter_id, m.serial, m.node_id, m.source, m.item, m.unit, m.register,
             "" if m.rollover is None else str(m.rollover), m.installed, m.removed, m.replaces,
             "true" if m.is_main else "false") for m in plan]
    return _write_csv(path, ["meter_id", "serial", "node_id", "source", "item", "unit", "register", "rollover",
                             "installed", "removed", "replaces", "is_main"], rows)


def _write_anomalies(path: Path, anomalies: list[dict]) -> str:
    rows = [(f"AN{k + 1:03d}", a["meter_id"], a["kind"], _fmt_ts(a["ts_start"]), _fmt_ts(a["ts_end"]),
             a["n_readings"], a["description"]) for k, a in enumerate(anomalies)]
    return _write_csv(path, ["anomaly_id", "meter_id", "kind", "ts_start", "ts_end", "n_readings", "description"], rows)


ACTIVITY_COLUMNS = ["record_id", "node_id", "period", "source", "item", "quantity", "unit", "gas", "data_tier",
                    "document", "ncv", "ncv_unit", "carbon_content", "carbon_content_unit", "oxidation_rate",
                    "emission_factor", "ef_unit", "purity"]


def _write_activity(path: Path, cal: _Calendar, mo: dict) -> int:
    rows = []

    def rec(rid, node, period, source, item, qty, unit, tier, doc, gas="CO2", ncv="", ncv_unit="", purity=""):
        rows.append([rid, node, period, source, item, qty, unit, gas, tier, doc, ncv, ncv_unit, "", "", "",
                     "", "", purity])

    for k, p in enumerate(cal.periods):
        ym = p.replace("-", "")
        rec(f"ACT-{ym}-ELEC", "ENT", p, "purchased_electricity", "grid", _fmt(mo["main"][k] / 1000, 3), "MWh",
            "primary", "State Grid monthly bill")
        rec(f"ACT-{ym}-COAL", "F01.W02.P01", p, "combustion", "raw_coal", _fmt(mo["coal"][k], 3), "t", "primary",
            f"coal ledger + lab NCV report {p}", ncv=_fmt(mo["ncv"][k], 2), ncv_unit="GJ/t")
        rec(f"ACT-{ym}-LIME", "F01.W01.P01", p, "process", "limestone", _fmt(mo["limestone"][k], 2), "t", "primary",
            f"limestone weighbridge ledger + lab CaCO3 assay {p}", purity=_fmt(mo["purity"][k], 3))
        rec(f"ACT-{ym}-NG", "F04.W02", p, "combustion", "natural_gas", _fmt(mo["gas"][k] / 1e4, 5), "10^4 Nm3",
            "primary", f"gas supplier invoice {p}")
        rec(f"ACT-{ym}-DIESEL", "F03", p, "combustion", "diesel", _fmt(mo["diesel"][k], 3), "t", "secondary",
            "fuel card statement")
        rec(f"ACT-{ym}-HEAT", "F05", p, "exported_heat", "heat", _fmt(mo["heat"][k], 2), "GJ", "primary",
            f"steam export heat-meter statement signed with customer {p}")
    p = cal.periods[-1]
    rec(f"ACT-{p.replace('-', '')}-SF6", "ENT", p, "process", "sf6", "0.003", "t", "primary",
        "switchgear refill record", gas="SF6")
    _write_csv(path, ACTIVITY_COLUMNS, rows)
    return len(rows)


def _write_monthly(path: Path, cal: _Calendar, mo: dict) -> str:
    rows = []
    for k, p in enumerate(cal.periods):
        rows.append((p, "F01", _fmt(mo["clinker"][k], 2), "", ""))
        rows.append((p, "F02", "", _fmt(mo["cement"][k], 2), ""))
        rows.append((p, "ENT", "", "", _fmt(mo["value_added"][k], 1)))
    return _write_csv(path, ["period", "node_id", "clinker_t", "cement_t", "value_added_10k_cny"], rows)


def _uscc(head8: str, body: str, org_check: int) -> str:
    """A syntactically valid (check character per GB 32100-2015) but fictitious USCC."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    body = "".join(c if c in alphabet else "0" for c in body.upper())
    code17 = (head8 + body + str(org_check))[:17]
    s = sum(alphabet.index(c) * w for c, w in zip(code17, weights))
    return code17 + alphabet[(31 - s % 31) % 31]


def _write_readme(path: Path, ent: dict, counts: dict, kinds: dict, plan, sim, cal) -> str:
    stops = "; ".join(f"{_fmt_ts(cal.start_ms + int(s * MS_H))} – {_fmt_ts(cal.start_ms + int(e * MS_H))}"
                      for s, e in sim["stops"])
    kind_lines = "\n".join(f"| `{k}` | {v} |" for k, v in sorted(kinds.items()))
    text = f"""# 示例企业数据 / Demo enterprise data

{ent['name_zh']} / {ent['name_en']} — {ent['industry_name_zh']} ({ent['industry_code']}), {ent['region']}.
**全部数据均为虚构 / all data are fictitious**, generated by `workbench.demo.generate` (seed {ent['generator']['seed']},
{counts['meters']} meters, {counts['months']} months from {ent['period_start']} to {ent['period_end']}).

## 文件 / Files

| 文件 file | 内容 content |
|---|---|
| `enterprise.json` | 企业信息、核算期、生成参数 / enterprise master data, period, generator parameters |
| `boundary.csv` | 核算边界：企业→设施→车间→工序→表计 / boundary nodes down to meters ({counts['nodes']} nodes + {counts['meters']} meters) |
| `meters.csv` | 表计台账 / meter register |
| `readings.parquet` | 15 分钟读数 / 15-min readings `meter_id, ts, value` ({counts['readings']:,} rows; ts = naive Asia/Shanghai local time) |
| `activity.csv` | 企业月度台账（活动数据）/ monthly ledger activity records ({counts['activity']} rows) |
| `monthly.csv` | 熟料、水泥产量与工业增加值（万元）/ clinker, cement output and value added (10⁴ CNY) |
| `anomalies.csv` | 植入异常的标签 / labels of the planted anomalies ({counts['anomalies']} rows) |

Interval meters: value = consumption of the 15-min interval starting at `ts`. Cumulative meters
(`register = cumulative`): value = register at the instant `ts` (true running total modulo `rollover`); they carry one
closing reading at the period end. 区间表读数为以 `ts` 开始的 15 分钟用量；累计表为该时刻的表底读数（含期末读数）。

The ledger (`activity.csv`, `monthly.csv`) is computed from the *clean* data: purchased electricity equals the main
meter's true monthly consumption. 台账数据来自未受异常影响的真实用量。Σ electricity sub-meters ≈ main meter − 1.5–2 %
(losses). The waste-heat power meter (`self_generated_electricity`) is informational only.

Planned kiln stop(s) 窑计划检修: {stops} (not an anomaly 非异常). Kiln trips 窑短时跳停: {len(sim['trips'])}.

## 植入的异常 / Planted anomalies

| kind | count |
|---|---|
{kind_lines}

* `gap` 缺数 — rows absent for hours to 2 days; `duplicate` 重复 — same row written twice;
  `duplicate_conflict` 冲突重复 — same meter_id + ts with a different value (first row correct);
* `spike` 尖峰 — one interval value ×10–50; `stuck` 卡滞 — one day of constant readings;
  `drift` 漂移 — a sub-meter reads 8 % high for a month;
* `counter_reset` 清零 — the main meter's register drops to ~0 unexpectedly; `rollover` 翻转 — genuine wrap past the
  register capacity (not an error); `meter_replacement` 换表 — the gas meter is replaced, the new meter (new id,
  `replaces` = old id) starts at a small non-zero register.
"""
    path.write_text(text, encoding="utf-8")
    return str(path)
