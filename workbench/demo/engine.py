"""The machinery behind the demo enterprises (示例企业): a plant described by data, written to files.

A demo plant is a :class:`Plant` — its master data, boundary nodes, electricity sub-meters per
process, its other meters (fuels, heat, steam), the physics of its processes (``simulate``: clean
15-min series and monthly figures, built from the load shapes of :class:`Loads`), its ledger
(:class:`LedgerLine`), its products and its planted anomalies.  :func:`write_plant` turns a plant
into the files of ``docs/architecture.md`` ("Core data model"):

``enterprise.json`` · ``boundary.csv`` · ``meters.csv`` · ``readings.parquet`` · ``activity.csv`` ·
``monthly.csv`` · ``anomalies.csv`` · ``README.md``

What every plant shares (and why it lives here, once):

* the calendar (:class:`Calendar`: Spring Festival, public holidays, weekends, seasons, the Zhejiang
  time-of-use tariff periods) — loads follow it;
* per-meter random streams ``SeedSequence(seed).spawn(4)[0].spawn(n)[k]`` — meter *k*'s noise does
  not depend on how many meters there are;
* the meter simulation: interval meters = their series × share × (1 + white noise); cumulative
  meters = start register + running total, modulo ``rollover`` (genuine rollovers labelled), one
  closing reading at the period end; a meter replacement (old meter removed, new one with a new id
  starting at a small register);
* the anomaly planting (gap, duplicate, conflicting duplicate, spike, stuck, drift, counter reset),
  each labelled in ``anomalies.csv``; the ledger is computed from the *clean* series;
* the writers.

The cement plant (:mod:`workbench.demo.plants`), the steel plant (:mod:`workbench.demo.steel`) and the
dyeing plant (:mod:`workbench.demo.textile`) are three :class:`Plant` values.
"""
from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Plant", "Meter", "Product", "LedgerLine", "Calendar", "Loads", "write_plant", "meter_plan",
           "planned_stops", "outage_envelope", "outage_mask", "main_meter", "uscc", "org_code_check", "ANOMALY_KINDS"]

MS_15 = 900_000
MS_H = 3_600_000
MS_D = 86_400_000
IPH = 4  # intervals per hour
IPD = 96  # intervals per day

ANOMALY_KINDS = (
    "gap", "duplicate", "duplicate_conflict", "spike", "meter_replacement",
    "counter_reset", "rollover", "stuck", "drift",
)
RESET_LOST_FRACTION = (0.2, 0.8)

# Spring Festival (春节, 1st day of the 1st lunar month)
_CNY = ["2018-02-16", "2019-02-05", "2020-01-25", "2021-02-12", "2022-02-01", "2023-01-22",
        "2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06", "2028-01-26", "2029-02-13",
        "2030-02-03", "2031-01-23", "2032-02-11", "2033-01-31", "2034-02-19", "2035-02-08",
        "2036-01-28", "2037-02-15", "2038-02-04", "2039-01-24", "2040-02-12"]

#: register serial prefixes by unit (a main/billing meter: ``DTZY341``)
SERIAL_PREFIX = {"kWh": "DTSD341", "MWh": "DTSD341", "t": "ICS-XF", "Nm3": "TBQZ", "GJ": "RLB"}


# --------------------------------------------------------------------------- plant description
@dataclass
class Meter:
    """One meter of a plant.  ``series``: the key of the clean series it measures in the plant
    simulation (``"proc"``: the electric load of its process node); ``share``: its part of that
    series; ``sigma``: white-noise level (default 3 %, 5 % for meters under a 10 % share);
    ``start``: the starting register of a cumulative meter, ``(kind, low, high)`` with kind
    ``fraction`` (of ``rollover``), ``below_rollover``, ``uniform`` or ``small`` (rounded to 0.01)."""
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
    series: str = "proc"
    sigma: float | None = None
    start: tuple = ()
    serial_prefix: str = ""


@dataclass(frozen=True)
class Product:
    """A product output column of ``monthly.csv`` (``key``: the monthly series in the simulation)."""
    product: str
    column: str
    unit: str
    name_zh: str
    name_en: str
    node_id: str
    key: str
    decimals: int = 2

    def as_json(self) -> dict:
        return {"product": self.product, "column": self.column, "unit": self.unit,
                "name_zh": self.name_zh, "name_en": self.name_en}


@dataclass(frozen=True)
class LedgerLine:
    """One monthly activity record of the plant's ledger: ``quantity = monthly[key][k] / div``
    written with ``decimals``; ``document`` may hold ``{p}`` (the period); ``ncv``/``purity`` name
    monthly series of site-measured values.  ``fixed``: a one-off record in the last period with
    this quantity (string) instead of a monthly series."""
    rid: str
    node_id: str
    source: str
    item: str
    key: str
    unit: str
    decimals: int
    data_tier: str
    document: str
    div: float = 1.0
    gas: str = "CO2"
    ncv: str = ""
    ncv_unit: str = ""
    ncv_decimals: int = 2
    purity: str = ""
    purity_decimals: int = 3
    fixed: str = ""


@dataclass
class Plant:
    """A demo plant described by data (see the module docstring)."""
    enterprise_id: str
    sector: str
    prefix: str
    enterprise: dict
    uscc: tuple  # (head 8 characters: registration, type, GB/T 2260 region; body 8; org-code check or None)
    nodes: list
    elec_processes: dict
    process_kw: dict
    head_meters: list
    tail_meters: list
    simulate: Callable
    anomaly_plan: list
    ledger: list
    products: list
    readme_monthly: str
    readme_notes: Callable
    readme_kinds: str
    replacement: tuple | None = None  # (old role, new role, month index)
    generator: str = "workbench.demo.plants"

    def node_name(self, node_id: str, lang: str) -> str:
        for nid, zh, en, _ in self.nodes:
            if nid == node_id:
                return zh if lang == "zh" else en
        raise KeyError(node_id)

    def classification(self, node_id: str) -> str:
        cls = {nid: c for nid, _, _, c in self.nodes}
        return cls.get(node_id.split(".")[0], "")


def meter_plan(plant: Plant, n_meters: int | None) -> list[Meter]:
    """The meter register (without serials/dates): head meters, the electricity sub-meters of each
    process, the tail meters, then ``n_meters − default`` extra feeders where the load is."""
    specs: list[Meter] = []

    def add(**kw):
        specs.append(Meter(meter_id="", **kw))

    for kw in plant.head_meters:
        add(**kw)
    for node, meters in plant.elec_processes.items():
        for role, zh, en, share in meters:
            add(role=role, node_id=node, source="purchased_electricity", item="grid", unit="kWh",
                register="interval", name_zh=zh, name_en=en, share=share)
    for kw in plant.tail_meters:
        add(**kw)
    n_default = len(specs)
    if n_meters is None:
        n_meters = n_default
    if n_meters < n_default:
        raise ValueError(f"meters must be ≥ {n_default} (the default demo), got {n_meters}")
    procs = list(plant.elec_processes)
    extra_per_proc = {p: 0 for p in procs}
    kw_of = plant.process_kw
    for j in range(n_meters - n_default):
        # extra feeders go where the load is (D'Hondt apportionment by typical process kW)
        p = max(procs, key=lambda q: kw_of[q] / (len(plant.elec_processes[q]) + extra_per_proc[q] + 1))
        extra_per_proc[p] += 1
        add(role=f"extra_{j + 1}", node_id=p, source="purchased_electricity", item="grid", unit="kWh",
            register="interval", name_zh=f"{plant.node_name(p, 'zh')}配电回路{extra_per_proc[p]:03d}",
            name_en=f"{plant.node_name(p, 'en')} feeder {extra_per_proc[p]:03d}",
            share=0.5 + (((j + 1) * 0.6180339887) % 1.0))  # relative weight, normalised below
    # shares: default meters keep their relative weights, extras weigh like an average default meter
    for p in procs:
        members = [m for m in specs if m.node_id == p and m.source == "purchased_electricity"]
        n_def = len(plant.elec_processes[p])
        w = np.array([m.share if k < n_def else m.share / n_def for k, m in enumerate(members)])
        w = w / w.sum()
        for m, s in zip(members, w):
            m.share = float(s)
    width = max(4, len(str(n_meters)))
    for k, m in enumerate(specs):
        m.index = k
        m.meter_id = f"M{k + 1:0{width}d}"
    return specs


# --------------------------------------------------------------------------- calendar
class Calendar:
    """15-min intervals of ``months`` months from ``start`` with what loads depend on: hour, weekday,
    month, Spring-Festival offset, public holidays, summer/winter weights, Zhejiang TOU period."""

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


class Loads:
    """Load-shape building blocks on a calendar, each a numpy series per 15-min interval.

    ``noise_ss``: the plant's noise seed sequences; ``pnoise(k)`` is smooth multiplicative noise
    from stream ``k`` (fast: hourly knots, slow: daily knots), clipped to 0.6–1.4."""

    def __init__(self, cal: Calendar, noise_ss):
        self.cal = cal
        self.noise = [np.random.default_rng(s) for s in noise_ss]
        h = cal.hour
        self.staff = np.where(cal.holiday, 0.45, 1.0)              # people on site
        self.work = ((h >= 8) & (h < 17.5)).astype(float)          # office hours
        self.workday = (~cal.weekend & ~cal.holiday).astype(float)
        self.meal = self.bump(7.0, 0.6) + self.bump(11.7, 0.6) + self.bump(17.5, 0.6) + 0.3 * self.bump(23.5, 0.4)
        self.shower = self.bump(19.0, 1.8) + 0.5 * self.bump(8.0, 0.8)
        self.tou_mill = np.array([1.0, 0.7, 0.3])[cal.tou]       # load-shifting mills: heavy in valley hours

    def pnoise(self, k, fast=0.03, slow=0.03):
        r = self.noise[k]
        n = self.cal.n
        return np.clip(1 + _smooth(r, n, 4, fast) + _smooth(r, n, IPD, slow), 0.6, 1.4)

    def smooth(self, k, step, sigma):
        """Smooth additive noise (knots every ``step`` intervals) from stream ``k``."""
        return _smooth(self.noise[k], self.cal.n, step, sigma)

    def bump(self, center, width):
        return np.exp(-0.5 * ((self.cal.hour - center) / width) ** 2)

    def office_kw(self, base, peak):
        """Office lighting/HVAC: working hours on workdays (20 % at other times), summer/winter HVAC."""
        cal = self.cal
        return base + peak * self.work * (self.workday + 0.2 * (1 - self.workday)) * \
            (1 + 0.7 * cal.summer + 0.4 * cal.winter)

    def canteen_kw(self, base, peak):
        """Canteen: three meals and a night snack, fewer people on holidays."""
        return base + peak * self.meal * self.staff

    def hot_water_kw(self, base, peak):
        """Hot water for the bath house: evening and morning showers."""
        return base + peak * self.shower * self.staff

    def canteen_gas(self, base, meal, shower):
        """Natural gas of a canteen kitchen and bath-house hot-water boiler (Nm3 per interval):
        meals, showers (more in winter), fewer people on holidays."""
        return base + meal * self.meal * self.staff + shower * self.shower * self.staff * (1 + 0.8 * self.cal.winter)

    def repair_kw(self, base, peak, running):
        """Repair shop: day work on workdays — and every day, harder, while production is stopped
        (``running`` = 0)."""
        return base + peak * self.work * np.maximum(self.workday, 1 - running) * (1 + 2 * (1 - running))

    def cny_demand(self):
        """Market demand around the Spring Festival (0.15 in the holiday week, 0.55 around it), Sunday dip."""
        cal = self.cal
        cny = cal.cny_off
        demand = np.where((cny >= -10) & (cny <= 14), np.where((cny >= -2) & (cny <= 7), 0.15, 0.55), 1.0)
        return demand * np.where(cal.dow == 6, 0.92, 1.0)

    def spread(self, monthly, shape):
        """Spread monthly totals over the intervals of each month in proportion to ``shape``."""
        cal = self.cal
        return monthly[cal.month_idx] * shape / cal.month_sum(shape)[cal.month_idx]


def planned_stops(cal: Calendar, ops, years: int, *, cny_offset_days: int, start_hour: float, hours: float,
                  trips_per_year: int = 2, trip_hours=(3, 8)):
    """A planned stop a year (``hours`` long from ``start_hour`` on the day ``cny_offset_days`` after
    the Spring Festival; day 40 of the year when there is none) and ``trips_per_year`` short trips in
    other months, hours since the period start: ``(stops [(s, e)], trips [(t0, duration)])``."""
    n = cal.n
    stops, trips = [], []
    for b in range(years):
        b0, b1 = cal.month_bounds[12 * b], cal.month_bounds[12 * b + 12]
        b0_day, b1_day = (cal.start_ms // MS_D) + b0 // IPD, (cal.start_ms // MS_D) + b1 // IPD
        in_block = cal.cny[(cal.cny >= b0_day) & (cal.cny < b1_day - 20)]
        s_day = (int(in_block[0]) + cny_offset_days) if in_block.size else int(b0_day + 40)
        s = (s_day * MS_D - cal.start_ms) / MS_H + start_hour  # hours since start
        e = s + hours
        stops.append((s, e))
        stop_month = int(cal.month_idx[min(int(s * IPH), n - 1)])
        cands = [m for m in range(12 * b, 12 * b + 12) if m != stop_month]
        for m in ops.choice(cands, size=trips_per_year, replace=False):
            m0, m1 = cal.month_bounds[m], cal.month_bounds[m + 1]
            t0 = (m0 + ops.integers(2 * IPD, m1 - m0 - 3 * IPD)) / IPH
            d = float(ops.uniform(*trip_hours))
            trips.append((t0, d))
    return stops, trips


def outage_envelope(cal: Calendar, stops, trips, stop_shape, trip_shape) -> np.ndarray:
    """1 in normal operation, shaped down by every stop and trip: ``stop_shape(s, e)`` and
    ``trip_shape(t0, d)`` return the (hours, level) points of the envelope around each outage."""
    env = np.ones(cal.n)
    for s, e in stops:
        env = np.minimum(env, _envelope(cal.th, *stop_shape(s, e)))
    for t0, d in trips:
        env = np.minimum(env, _envelope(cal.th, *trip_shape(t0, d)))
    return env


def outage_mask(cal: Calendar, stops, trips) -> np.ndarray:
    """True in the intervals that start inside a stop ``[s, e)`` or a trip ``[t0, t0 + d)`` (hours)."""
    out = np.zeros(cal.n, bool)
    for s, e in list(stops) + [(t0, t0 + d) for t0, d in trips]:
        out |= (cal.th >= s) & (cal.th < e)
    return out


def main_meter(cal: Calendar, proc: dict, loss_noise, noload_kw: float, base=0.013, slope=0.006):
    """The boundary (billing) meter: Σ process load × (1 + transformer/line losses rising with load)
    + no-load losses.  Returns (Σ process load, main-meter series), kWh per interval."""
    load = sum(proc.values())
    loss = base + slope * load / load.mean() + loss_noise[cal.month_idx]
    return load, load * (1 + loss) + 0.25 * noload_kw


# --------------------------------------------------------------------------- identifiers
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def org_code_check(body8: str) -> str:
    """GB 11714 organisation-code check character of an 8-character body (digits, capital letters
    A=10 … Z=35; weights 3 7 9 10 5 8 4 2; 11 − Σ mod 11, 10 → X, 11 → 0)."""
    w = [3, 7, 9, 10, 5, 8, 4, 2]
    val = [int(c) if c.isdigit() else ord(c) - 55 for c in body8]
    c = 11 - sum(v * x for v, x in zip(val, w)) % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def uscc(head8: str, body: str, org_check) -> str:
    """A syntactically valid (check character per GB 32100-2015) but fictitious USCC.

    ``org_check`` = the 17th character; ``None`` computes it per GB 11714 from the body."""
    body = "".join(c if c in _USCC_ALPHABET else "0" for c in body.upper())
    if org_check is None:
        org_check = org_code_check(body[:8])
    code17 = (head8 + body + str(org_check))[:17]
    s = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(code17, _USCC_WEIGHTS))
    return code17 + _USCC_ALPHABET[(31 - s % 31) % 31]


# --------------------------------------------------------------------------- formatting
def _fmt_ts(ms: int) -> str:
    return str(np.datetime64(int(ms), "ms").astype("datetime64[s]"))


def _fmt(x: float, nd: int) -> str:
    s = f"{x:.{nd}f}"
    return "0" if s.strip("-0.") == "" else s


# --------------------------------------------------------------------------- the generator
def write_plant(plant: Plant, out, *, meters: int | None = None, years: int = 1, seed: int = 0,
                start: str = "2025-01-01", progress: bool = False, seed_sequence=None,
                t_start: float | None = None) -> dict:
    """Write ``plant`` into directory ``out``; return what was written (files, counts, params).

    ``seed_sequence``: the root ``SeedSequence`` (default ``SeedSequence(seed)``).  Same arguments
    → identical tables."""
    t_start = time.perf_counter() if t_start is None else t_start
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    years = int(years)
    if years < 1:
        raise ValueError("years must be ≥ 1")
    start64 = np.datetime64(start, "D")
    if start64 != start64.astype("datetime64[M]").astype("datetime64[D]"):
        raise ValueError(f"start must be the first day of a month, got {start}")
    seed = int(seed)

    plan = meter_plan(plant, meters)
    n_total = len(plan)
    root = np.random.SeedSequence(seed) if seed_sequence is None else seed_sequence
    ss_meters_root, ss_plant, ss_anom, _ = root.spawn(4)  # the 4th stream is reserved (unused)
    meter_ss = ss_meters_root.spawn(n_total)
    cal = Calendar(start64, 12 * years)
    sim = plant.simulate(cal, ss_plant, years)
    roles = {m.role: m for m in plan}

    # ---- static meter attributes (serial, installation) from each meter's own stream
    for m in plan:
        r = np.random.default_rng(meter_ss[m.index].spawn(1)[0])
        prefix = m.serial_prefix or SERIAL_PREFIX[m.unit]
        if m.is_main:
            prefix = "DTZY341" if m.source == "purchased_electricity" else prefix
        m.serial = f"{prefix}-{int(r.integers(10**7, 10**8))}"
        day0 = np.datetime64("2016-01-01") + int(r.integers(0, 365 * 7))
        m.installed = str(min(day0, start64 - 30))
    # ---- meter replacement
    arng = [np.random.default_rng(s) for s in ss_anom.spawn(len(plant.anomaly_plan) + 4)]
    ra = arng[-1]
    mb = cal.month_bounds
    old = new = None
    swap_idx = swap_ms = -1
    if plant.replacement:
        old_role, new_role, month = plant.replacement
        swap_idx = int(mb[month] + ra.integers(8, 20) * IPD + ra.integers(9, 16) * IPH)
        swap_ms = cal.start_ms + swap_idx * MS_15
        old, new = roles[old_role], roles[new_role]
        old.removed = str(np.datetime64(swap_ms, "ms").astype("datetime64[D]"))
        new.installed = old.removed
        new.replaces = old.meter_id

    # ---- anomalies per meter (indices into the clean series of that meter)
    per_meter: dict[str, list] = {}
    for (role, kind, month, par), r in zip(plant.anomaly_plan, arng):
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

    anomalies, n_readings = _write_readings(out / "readings.parquet", plan, sim, cal, meter_ss, per_meter,
                                            (old, new, swap_idx, swap_ms), progress)

    # ---- tables
    files = {"readings": str(out / "readings.parquet")}
    files["boundary"] = _write_boundary(out / "boundary.csv", plant, plan)
    files["meters"] = _write_meters(out / "meters.csv", plan)
    anomalies.sort(key=lambda a: (a["meter_id"], a["ts_start"], a["kind"]))
    files["anomalies"] = _write_anomalies(out / "anomalies.csv", anomalies)
    n_activity = _write_activity(out / "activity.csv", plant, cal, sim["monthly"])
    files["activity"] = str(out / "activity.csv")
    files["monthly"] = _write_monthly(out / "monthly.csv", plant, cal, sim["monthly"])
    period_end = str(np.datetime64(cal.end_ms, "ms").astype("datetime64[D]") - 1)
    params = {"seed": seed, "meters": n_total, "meters_requested": meters, "years": years,
              "start": str(start64), "generator": plant.generator, "version": GENERATOR_VERSION}
    ent = {"enterprise_id": plant.enterprise_id, **plant.enterprise, "sector": plant.sector,
           "identifier_prefix": plant.prefix, "unified_social_credit_code": uscc(*plant.uscc),
           "products": [p.as_json() for p in plant.products],
           "period_start": str(start64), "period_end": period_end, "generator": params}
    ent = {k: ent[k] for k in ENTERPRISE_KEYS + [k for k in ent if k not in ENTERPRISE_KEYS]}
    (out / "enterprise.json").write_text(json.dumps(ent, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    files["enterprise"] = str(out / "enterprise.json")
    kinds = {}
    for a in anomalies:
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    counts = {"nodes": len(plant.nodes), "meters": n_total, "readings": n_readings, "anomalies": len(anomalies),
              "activity": n_activity, "monthly": (len(plant.products) + 1) * cal.months, "months": cal.months}
    files["readme"] = _write_readme(out / "README.md", plant, ent, counts, kinds, sim, cal)
    return {
        "out": str(out), "files": files, "counts": counts, "anomaly_kinds": dict(sorted(kinds.items())),
        "period_start": str(start64), "period_end": period_end, "params": params,
        "seconds": round(time.perf_counter() - t_start, 2),
    }


GENERATOR_VERSION = "1.0"
#: key order of ``enterprise.json``
ENTERPRISE_KEYS = ["enterprise_id", "name_zh", "name_en", "region", "industry_code", "industry_name_zh",
                   "industry_name_en", "sector", "identifier_prefix", "unified_social_credit_code",
                   "legal_representative", "contact_person", "contact_phone", "contact_email", "address",
                   "reporting_standard", "sector_standard", "timezone", "products", "period_start", "period_end",
                   "generator"]


def _clean_series(m: Meter, sim: dict, rng, n: int):
    """(series × share, noise level) of an interval meter."""
    if m.series == "proc":
        base = sim["proc"][m.node_id] * m.share
    else:
        base = sim[m.series] * m.share
    sigma = m.sigma if m.sigma is not None else (0.03 if m.share > 0.1 else 0.05)
    return base * np.clip(1 + sigma * rng.standard_normal(n), 0.7, 1.3)


def _start_register(m: Meter, rng) -> float:
    kind, lo, hi = m.start
    if kind == "fraction":
        return float(rng.uniform(lo, hi)) * m.rollover
    if kind == "below_rollover":
        return m.rollover - float(rng.uniform(lo, hi))
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    if kind == "small":
        return float(np.round(rng.uniform(lo, hi), 2))
    raise ValueError(f"unknown start register kind {kind!r} of meter role {m.role}")


def _write_readings(path: Path, plan, sim, cal, meter_ss, per_meter, replacement, progress):
    """Simulate every meter's readings, plant its anomalies, write ``readings.parquet``.

    Returns (anomaly labels, number of rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    old, new, swap_idx, swap_ms = replacement
    n = cal.n
    schema = pa.schema([("meter_id", pa.string()), ("ts", pa.timestamp("ms")), ("value", pa.float64())])
    writer = pq.ParquetWriter(path, schema, compression="zstd", compression_level=3,
                              use_dictionary=["meter_id", "value"],
                              column_encoding={"ts": "DELTA_BINARY_PACKED"}, write_statistics=True)
    rows_per_group = max(2_000_000, n + 1)
    batch_ids: list[str] = []
    batch_ts: list[np.ndarray] = []
    batch_val: list[np.ndarray] = []
    state = {"rows": 0, "written": 0}
    anomalies: list[dict] = []

    def flush():
        if not state["rows"]:
            return
        lengths = np.array([a.size for a in batch_ts])
        idx = np.repeat(np.arange(len(batch_ids), dtype=np.int32), lengths)
        mid = pa.DictionaryArray.from_arrays(pa.array(idx), pa.array(batch_ids, pa.string())).cast(pa.string())
        tbl = pa.Table.from_arrays(
            [mid, pa.array(np.concatenate(batch_ts), pa.timestamp("ms")), pa.array(np.concatenate(batch_val))],
            schema=schema)
        writer.write_table(tbl, row_group_size=tbl.num_rows)
        state["written"] += tbl.num_rows
        batch_ids.clear(), batch_ts.clear(), batch_val.clear()
        state["rows"] = 0

    bar = None
    if progress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )
        bar = Progress(TextColumn("[bold]demo readings"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        bar.start()
        task = bar.add_task("meters", total=len(plan))

    t_int = cal.t_ms
    t_cum = np.append(cal.t_ms, cal.end_ms)
    try:
        for m in plan:
            rng = np.random.default_rng(meter_ss[m.index])
            labels: list[dict] = []
            cons = None
            # -------- clean series
            if m.register == "interval":
                vals = _clean_series(m, sim, rng, n)
                ts = t_int
                keep = np.ones(n, bool)
            else:
                cons = sim[m.series]
                r0 = _start_register(m, rng)
                total = r0 + np.concatenate(([0.0], np.cumsum(cons)))
                ts, keep = t_cum, np.ones(n + 1, bool)
                if m is old:
                    keep[swap_idx + 1:] = False
                elif m is new:
                    keep[:swap_idx] = False
                    total = total - (total[swap_idx] - r0)
                vals = total
            # -------- anomalies that change values
            dup = np.ones(ts.size, np.int64)
            conflicts = []
            for a in per_meter.get(m.meter_id, []):
                labels.append(_plant_anomaly(a, m, vals, keep, dup, conflicts, cons, ts, cal))
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
            if m is new:
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
            state["rows"] += ts_out.size
            if state["rows"] >= rows_per_group:
                flush()
            if bar is not None:
                bar.update(task, advance=1)
        flush()
    finally:
        writer.close()
        if bar is not None:
            bar.stop()
    return anomalies, state["written"]


def _plant_anomaly(a, m: Meter, vals, keep, dup, conflicts, cons, ts, cal) -> dict:
    """Apply one planned anomaly to a meter's values/row masks in place; return its label."""
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
        if cons is None:
            raise ValueError(f"counter_reset needs a cumulative meter, {m.role} is {m.register}")
        phi = float(r.uniform(*RESET_LOST_FRACTION))
        lost = phi * cons[i0 - 1]
        before = vals[i0 - 1] % m.rollover
        vals[i0:] = vals[i0:] - vals[i0] + (1 - phi) * cons[i0 - 1]
        lab["n_readings"] = 1
        lab["ts_end"] = lab["ts_start"]
        lab["description"] = (f"counter reset: register dropped unexpectedly from {before:.2f} to "
                              f"{vals[i0]:.2f} {m.unit}; {lost:.2f} {m.unit} of the preceding interval "
                              f"are not recoverable from the readings / 计数器意外清零")
    else:
        raise ValueError(f"unknown anomaly kind {kind!r}")
    return lab


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


def _write_boundary(path: Path, plant: Plant, plan: list[Meter]) -> str:
    p = plant.prefix
    rows = [(nid, _parent(nid), _level(nid), zh, en, c, f"{p}/node.{nid}") for nid, zh, en, c in plant.nodes]
    rows += [(m.meter_id, m.node_id, "meter", m.name_zh, m.name_en, plant.classification(m.node_id),
              f"{p}/meter.{m.meter_id}") for m in plan]
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


def _write_activity(path: Path, plant: Plant, cal: Calendar, mo: dict) -> int:
    rows = []

    def rec(line: LedgerLine, p: str, k: int | None):
        ym = p.replace("-", "")
        qty = line.fixed if k is None else _fmt(mo[line.key][k] / line.div, line.decimals)
        ncv = _fmt(mo[line.ncv][k], line.ncv_decimals) if line.ncv and k is not None else ""
        purity = _fmt(mo[line.purity][k], line.purity_decimals) if line.purity and k is not None else ""
        rows.append([f"ACT-{ym}-{line.rid}", line.node_id, p, line.source, line.item, qty, line.unit, line.gas,
                     line.data_tier, line.document.format(p=p), ncv, line.ncv_unit if ncv else "", "", "", "",
                     "", "", purity])

    monthly = [line for line in plant.ledger if not line.fixed]
    for k, p in enumerate(cal.periods):
        for line in monthly:
            rec(line, p, k)
    for line in plant.ledger:
        if line.fixed:
            rec(line, cal.periods[-1], None)
    _write_csv(path, ACTIVITY_COLUMNS, rows)
    return len(rows)


def _write_monthly(path: Path, plant: Plant, cal: Calendar, mo: dict) -> str:
    cols = [p.column for p in plant.products]
    rows = []
    for k, p in enumerate(cal.periods):
        for j, prod in enumerate(plant.products):
            cells = [""] * len(cols)
            cells[j] = _fmt(mo[prod.key][k], prod.decimals)
            rows.append((p, prod.node_id, *cells, ""))
        rows.append((p, "ENT", *([""] * len(cols)), _fmt(mo["value_added"][k], 1)))
    return _write_csv(path, ["period", "node_id", *cols, "value_added_10k_cny"], rows)


def _write_readme(path: Path, plant: Plant, ent: dict, counts: dict, kinds: dict, sim, cal) -> str:
    kind_lines = "\n".join(f"| `{k}` | {v} |" for k, v in sorted(kinds.items()))
    text = f"""# 示例企业数据 / Demo enterprise data

{ent['name_zh']} / {ent['name_en']} — {ent['industry_name_zh']} ({ent['industry_code']}), {ent['region']}.
**全部数据均为虚构 / all data are fictitious**, generated by `workbench.demo.plants.generate` (seed {ent['generator']['seed']},
{counts['meters']} meters, {counts['months']} months from {ent['period_start']} to {ent['period_end']}).

## 文件 / Files

| 文件 file | 内容 content |
|---|---|
| `enterprise.json` | 企业信息、核算期、生成参数 / enterprise master data, period, generator parameters |
| `boundary.csv` | 核算边界：企业→设施→车间→工序→表计 / boundary nodes down to meters ({counts['nodes']} nodes + {counts['meters']} meters) |
| `meters.csv` | 表计台账 / meter register |
| `readings.parquet` | 15 分钟读数 / 15-min readings `meter_id, ts, value` ({counts['readings']:,} rows; ts = naive Asia/Shanghai local time) |
| `activity.csv` | 企业月度台账（活动数据）/ monthly ledger activity records ({counts['activity']} rows) |
| `monthly.csv` | {plant.readme_monthly} |
| `anomalies.csv` | 植入异常的标签 / labels of the planted anomalies ({counts['anomalies']} rows) |

Interval meters: value = consumption of the 15-min interval starting at `ts`. Cumulative meters
(`register = cumulative`): value = register at the instant `ts` (true running total modulo `rollover`); they carry one
closing reading at the period end. 区间表读数为以 `ts` 开始的 15 分钟用量；累计表为该时刻的表底读数（含期末读数）。

{plant.readme_notes(sim, cal)}

## 植入的异常 / Planted anomalies

| kind | count |
|---|---|
{kind_lines}

{plant.readme_kinds}"""
    path.write_text(text, encoding="utf-8")
    return str(path)


def stop_text(cal: Calendar, stops) -> str:
    """The planned stops as local date-times, for the README."""
    return "; ".join(f"{_fmt_ts(cal.start_ms + int(s * MS_H))} – {_fmt_ts(cal.start_ms + int(e * MS_H))}"
                     for s, e in stops)
