"""Benchmark: meter readings → monthly tCO2e by facility and source — the package's two paths
(readings and lake), each against one hand-written DuckDB query over the same raw files.

    python benchmarks/accounting.py [--meters 2000] [--years 1] [--seed S] [--data DIR] [--threads N]
                                    [--repeat R] [--no-lake | --only package|lake] [--lake-span year|month]
                                    [--lake-root DIR [--reuse-lake]] [--profile FILE]

1. The demo enterprise (``workbench.demo.plants.generate``, the cement plant) is generated into ``--data``
   (default ``benchmarks/.data/accounting-{meters}m-{years}y``), or reused when it is there and
   complete.  ``--meters 2000 --years 1`` is ≈ 70 M 15-minute readings.
2. **package** — ``workbench.inventory.readings.meter_consumption`` → ``activity_from_meters`` →
   ``workbench.accounting.account`` (with the boundary and the enterprise's region) → the ledger
   grouped to monthly tCO2e by (period, facility, source): the metered activity alone.
3. **duckdb** — :data:`BASELINE_SQL`, one hand-written query over the same ``readings.parquet``,
   ``meters.csv`` and ``boundary.csv``, written independently of ``workbench.inventory.readings`` and
   ``workbench.core.registers`` but to the same documented rules: rows repeated for one (meter, ts)
   are one reading when they agree with the first to 1e-9 relative, and are all left out when
   they conflict (the lake's policy — nothing averaged); a register drop is a rollover when the
   capacity is > 0 and the previous reading ≥ 90 % of it, else a reset.  Only the
   factor *values* come from the package (``FactorLibrary.lookup``, as a small VALUES table, in the
   units the library publishes them in); every unit conversion is done in the SQL.
4. Both results must agree to 1e-9 relative in every (period, facility, source) cell.
5. **lake** (on by default; ``--no-lake`` skips it, ``--only lake`` runs only it):
   a. *ingest* — ``workbench.demo.load.load_demo(data, lake_root, enterprise=…)`` into a fresh lake
      (readings.parquet, activity.csv, monthly.csv through the ordinary ingest path); the readings
      ingest (``connectors.parquet.read`` + ``workbench.ingestion.ingest`` of the readings batch: raw zone,
      preparation, curated readings and consumption, quality rules) is timed and printed as
      readings/s, as is the whole load.  Runs once, whatever ``--repeat``.
   b. *lake* — from the lake's curated tables: ``compute_inventory_from_lake(Lake(root), enterprise,
      first, last)`` once for the whole span (``--lake-span year``, default; ``month``: one call per
      month), each cube's ``tco2e`` (period × facility × source, every cell) as a table; the
      meters' monthly consumption is aggregated in DuckDB over the span's partitions.  Timed from
      opening the lake to the table; the seconds spent in the inventory's main steps are printed
      (timers wrapped around the package's functions in that child process; nested calls count in
      both).
   c. *lake query* — :data:`LAKE_BASELINE_SQL`, one hand-written query over the same raw files plus
      ``activity.csv`` computing what the inventory from the lake reports: per month, source and
      item the ledger's records are the datum (the meters only where the ledger has none); the
      enterprise's purchased electricity/heat record is split over the nodes by their share of the
      metered quantity (sub-meters, scaled to the main meter when they read more, and the residual
      main − Σ sub on the enterprise node — the consumption computed by the register rules of 3.);
      each record is accounted as FC × NCV × CC × OF × 44/12 (fuels; a site NCV on the record
      wins), M × P × EF (carbonates), AD × EF (electricity, heat; exports negative), m × GWP
      (non-CO2 gases); nodes → facilities by the boundary.  Factor values as in 3.
   d. The cube and the query must agree to 1e-9 relative in every (period, facility, source) cell
      (a cell the query has no records for is 0 t; every cube cell is compared).
   Target (issue 11, point 9): lake-side accounting ≤ 1.5 × its query.

Each side runs in its own child process (this script re-invoked with ``--side``), so that its peak
memory (``ru_maxrss``) is its own.  Timings cover reading the inputs to the monthly table; the
interpreter start, the imports and the loading of the factor library (done once per process) are
not timed; they are printed as "warm-up".  Target (issue): package ≤ 1.5 × the DuckDB query.
``--profile FILE`` runs the lake side under cProfile (stats to FILE, the top printed).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_RATIO = 1.5
RTOL = 1e-9
ACCOUNTED = ("combustion", "process", "purchased_electricity", "purchased_heat",
             "exported_electricity", "exported_heat")

# --------------------------------------------------------------------------- the baseline queries
#: The readings → monthly metered activity part of both queries (register rules, main − Σ sub).
_METERED_CTES = r"""
WITH RECURSIVE
meter AS (
    SELECT meter_id, node_id, source, item, unit,
           register = 'cumulative' AS cumulative,
           TRY_CAST(rollover AS DOUBLE) AS capacity,          -- empty for interval meters
           lower(is_main) = 'true' AS is_main,
           row_number() OVER (ORDER BY meter_id)::INTEGER AS mk  -- integer key: cheaper to sort on
    FROM read_csv('{meters}', all_varchar = true)
),
node AS (SELECT node_id, parent_id, level FROM read_csv('{boundary}', all_varchar = true)),
-- node → facility: climb the tree until a facility is reached (the enterprise stays itself)
climb(node_id, at_id, at_level, up_id) AS (
    SELECT node_id, node_id, level, parent_id FROM node WHERE level <> 'meter'
    UNION ALL
    SELECT c.node_id, n.node_id, n.level, n.parent_id
    FROM climb c JOIN node n ON n.node_id = c.up_id
    WHERE c.at_level <> 'facility'
),
facility_of AS (
    SELECT node_id, coalesce(max(at_id) FILTER (WHERE at_level = 'facility'), node_id) AS facility
    FROM climb GROUP BY node_id
),
enterprise AS (SELECT node_id FROM node WHERE coalesce(parent_id, '') = ''),
-- every usable reading (a finite value ≥ 0) in time order per meter; a row whose ts equals its
-- neighbour's is one of several rows for one (meter, ts)
seq AS (
    SELECT m.mk, m.cumulative, r.ts, r.value, r.file_row_number AS rn,
           coalesce(r.ts = lag(r.ts) OVER by_time OR r.ts = lead(r.ts) OVER by_time, false) AS repeated
    FROM read_parquet('{readings}', file_row_number = true) r JOIN meter m USING (meter_id)
    WHERE r.ts IS NOT NULL AND isfinite(r.value) AND r.value >= 0
    WINDOW by_time AS (PARTITION BY m.mk ORDER BY r.ts)
),
-- one aggregation, three jobs: the rows of one repeated (meter, ts) → one reading, the first row's
-- value, unless a row disagrees with it by more than 1e-12 + 1e-9 × |first| (a conflicting
-- duplicate: none of them is used — the interval is missing, a register difference spans it);
-- each register reading of a cumulative meter → its own group (differenced below); the other
-- interval values → summed straight into the month of their interval start
grp AS (
    SELECT mk, cumulative, date_trunc('month', ts) AS month,
           CASE WHEN cumulative OR repeated THEN ts END AS at_ts,
           sum(value) AS total, arg_min(value, rn) AS first_value,
           min(value) AS low, max(value) AS high
    FROM seq GROUP BY ALL
),
reading AS (
    SELECT *, (high - first_value > 1e-12 + 1e-9 * abs(first_value)
               OR first_value - low > 1e-12 + 1e-9 * abs(first_value)) AS conflicting
    FROM grp
),
interval_use AS (
    SELECT mk, month,
           sum(CASE WHEN at_ts IS NULL THEN total WHEN NOT conflicting THEN first_value ELSE 0 END) AS used
    FROM reading WHERE NOT cumulative GROUP BY ALL
),
register AS (
    SELECT g.mk, g.at_ts AS ts, g.first_value AS reading, m.capacity,
           lag(g.first_value) OVER by_time AS prev_reading, lag(g.at_ts) OVER by_time AS prev_ts
    FROM reading g JOIN meter m USING (mk)
    WHERE g.cumulative AND NOT g.conflicting
    WINDOW by_time AS (PARTITION BY g.mk ORDER BY g.at_ts)
),
register_use AS (
    -- consumption between two readings belongs to the month of the earlier one
    SELECT mk, date_trunc('month', prev_ts) AS month,
           sum(CASE WHEN reading >= prev_reading THEN reading - prev_reading      -- register advanced
                    WHEN capacity > 0 AND prev_reading >= 0.9 * capacity
                         THEN reading + capacity - prev_reading                   -- wrapped past capacity
                    ELSE reading                                                  -- reset: counts from 0
               END) AS used
    FROM register WHERE prev_ts IS NOT NULL GROUP BY ALL
),
used AS (SELECT * FROM interval_use UNION ALL SELECT * FROM register_use),
-- into the unit the factor is given per
qty AS (
    SELECT u.month, m.source, m.item, m.node_id, m.is_main,
           u.used * CASE m.unit
                      WHEN 'kWh' THEN 1e-3   -- kWh → MWh     (grid factor in tCO2/MWh)
                      WHEN 'Nm3' THEN 1e-4   -- Nm3 → 10^4 Nm3 (gas NCV in GJ/(10^4 Nm3))
                      WHEN 't'   THEN 1.0    -- t              (coal NCV in GJ/t)
                      WHEN 'GJ'  THEN 1.0    -- GJ             (heat factor in tCO2/GJ)
                      ELSE error('benchmark SQL has no conversion for meter unit ' || m.unit)
                    END AS q
    FROM used u JOIN meter m USING (mk)
    WHERE m.source IN ('combustion', 'process', 'purchased_electricity', 'purchased_heat',
                       'exported_electricity', 'exported_heat')
),
sub AS (SELECT month, source, item, node_id, sum(q) AS q FROM qty WHERE NOT is_main GROUP BY ALL),
balance AS (
    SELECT mn.month, mn.source, mn.item, mn.q AS main_q, coalesce(s.q, 0) AS sub_q
    FROM (SELECT month, source, item, sum(q) AS q FROM qty WHERE is_main GROUP BY ALL) mn
    LEFT JOIN (SELECT month, source, item, sum(q) AS q FROM sub GROUP BY ALL) s USING (month, source, item)
),
activity AS (
    -- sub-meters on their node; scaled down to the main meter when together they read more
    SELECT s.month, s.source, s.item, s.node_id,
           s.q * CASE WHEN b.sub_q > b.main_q THEN b.main_q / b.sub_q ELSE 1 END AS q
    FROM sub s LEFT JOIN balance b USING (month, source, item)
    UNION ALL
    -- main meter − Σ sub-meters (losses, unmetered use) on the enterprise node
    SELECT b.month, b.source, b.item, e.node_id, b.main_q - b.sub_q
    FROM balance b CROSS JOIN enterprise e
    WHERE b.main_q >= b.sub_q
)"""

#: The factor look-up part: VALUES rows ``(item, year, kind, value, unit)`` → one row per item and
#: year with the factor values in the units the SQL computes in and the unit each is given per.
_FACTOR_CTES = r"""factor(item, year, kind, value, unit) AS (VALUES {factors}),
factor_si AS (
    SELECT item, year, kind,
           value * CASE
             WHEN kind = 'carbon_content' AND unit = 'tC/TJ' THEN 1e-3    -- tC/TJ → tC/GJ
             WHEN kind = 'oxidation_rate' AND unit = 'percent' THEN 1e-2  -- % → fraction
             WHEN kind = 'ncv' AND unit IN ('GJ/t', 'GJ/(10^4 Nm3)') THEN 1.0
             WHEN kind = 'emission_factor' AND unit IN ('tCO2/MWh', 'tCO2/GJ', 'tCO2/t') THEN 1.0
             WHEN kind = 'gwp' AND unit = 'tCO2e/t' THEN 1.0
             ELSE error('benchmark SQL has no conversion for ' || kind || ' in ' || unit)
           END AS v,
           CASE unit   -- the unit of activity data the factor is given per
             WHEN 'GJ/t' THEN 't' WHEN 'GJ/(10^4 Nm3)' THEN '10^4 Nm3' WHEN 'tCO2/MWh' THEN 'MWh'
             WHEN 'tCO2/GJ' THEN 'GJ' WHEN 'tCO2/t' THEN 't' WHEN 'tCO2e/t' THEN 't'
           END AS per
    FROM factor
),
f AS (
    SELECT item, year,
           any_value(v) FILTER (WHERE kind = 'ncv') AS ncv,
           any_value(per) FILTER (WHERE kind = 'ncv') AS ncv_per,
           any_value(v) FILTER (WHERE kind = 'carbon_content') AS cc,
           any_value(v) FILTER (WHERE kind = 'oxidation_rate') AS ox,
           any_value(v) FILTER (WHERE kind = 'emission_factor') AS ef,
           any_value(per) FILTER (WHERE kind = 'emission_factor') AS ef_per,
           any_value(v) FILTER (WHERE kind = 'gwp') AS gwp
    FROM factor_si GROUP BY ALL
)
"""

#: One query from the raw files to monthly tCO2e of the metered activity.  Placeholders:
#: {readings} {meters} {boundary} (file paths) and {factors} (VALUES rows ``(item, year, kind, value, unit)``).
BASELINE_SQL = _METERED_CTES + ",\n" + _FACTOR_CTES + r"""SELECT strftime(a.month, '%Y-%m') AS period, fo.facility, a.source,
       sum(CASE WHEN a.source = 'combustion'
                THEN a.q * f.ncv * f.cc * f.ox * (44.0 / 12.0)   -- FC × NCV × CC × OF × 44/12
                ELSE a.q * f.ef END                              -- AD × EF
           * CASE WHEN a.source LIKE 'exported_%' THEN -1 ELSE 1 END) AS tco2e
FROM activity a
JOIN facility_of fo USING (node_id)
JOIN f ON f.item = a.item AND f.year = year(a.month)
GROUP BY ALL
ORDER BY ALL
"""

#: One query from the raw files to the monthly tCO2e the lake's inventory reports: per month, source
#: and item the ledger's records are the datum (the meters only where the ledger has none), the
#: enterprise's electricity/heat bill is allocated to the facilities by the metered shares, and each
#: record is accounted as GB/T 32150 says (FC × NCV × CC × OF × 44/12, M × P × EF, AD × EF,
#: m × GWP; site-measured values on the record win).  Placeholders as :data:`BASELINE_SQL` plus
#: {activity} (the ledger file) and {first} {last} (the months, ``YYYY-MM``).
LAKE_BASELINE_SQL = _METERED_CTES + ",\n" + _FACTOR_CTES + "," + r"""
-- ---- the lake inventory's datum per month, source and item: the ledger's records (activity.csv);
-- where the ledger has none, the meters
ledger AS (
    SELECT coalesce(nullif(trim(l.node_id), ''), e.node_id) AS node_id,
           CAST(l.period || '-01' AS TIMESTAMP) AS month, l.source, l.item,
           coalesce(nullif(trim(l.gas), ''), 'CO2') AS gas,
           CAST(l.quantity AS DOUBLE) AS quantity, trim(l.unit) AS unit,
           CAST(l.ncv AS DOUBLE) AS ncv, l.ncv_unit,
           CAST(l.carbon_content AS DOUBLE) AS cc, l.carbon_content_unit AS cc_unit,
           CAST(l.oxidation_rate AS DOUBLE) AS ox,         -- a '%' sign would fail the cast: loud
           CAST(l.emission_factor AS DOUBLE) AS ef, l.ef_unit,
           CAST(l.purity AS DOUBLE) AS purity
    FROM read_csv('{activity}', all_varchar = true) l CROSS JOIN enterprise e
    WHERE l.period BETWEEN '{first}' AND '{last}'
),
metered_datum AS (
    SELECT a.node_id, a.month, a.source, a.item, 'CO2' AS gas, a.q AS quantity,
           '=' AS unit                                     -- already in the unit the factor is per
    FROM activity a
    WHERE strftime(a.month, '%Y-%m') BETWEEN '{first}' AND '{last}'
      AND NOT EXISTS (SELECT 1 FROM ledger l
                      WHERE l.month = a.month AND l.source = a.source AND l.item = a.item)
),
-- each node's share of the metered purchased electricity/heat of a month (sub-meters as scaled
-- above; the residual main − Σ sub on the enterprise node)
share AS (
    SELECT month, source, item, node_id, q / sum(q) OVER (PARTITION BY month, source, item) AS share
    FROM activity
    WHERE source IN ('purchased_electricity', 'purchased_heat')
    QUALIFY sum(q) OVER (PARTITION BY month, source, item) > 0
),
record AS (
    -- a bill (a ledger record of purchased electricity/heat on the enterprise node) is split over
    -- the metered nodes by their shares; every other record stays where it is
    SELECT coalesce(s.node_id, l.node_id) AS node_id, l.month, l.source, l.item, l.gas,
           l.quantity * coalesce(s.share, 1.0) AS quantity, l.unit, l.ncv, l.ncv_unit, l.cc, l.cc_unit,
           l.ox, l.ef, l.ef_unit, l.purity
    FROM ledger l CROSS JOIN enterprise e
    LEFT JOIN share s ON l.node_id = e.node_id AND s.month = l.month AND s.source = l.source AND s.item = l.item
    UNION ALL BY NAME
    SELECT * FROM metered_datum
),
conv(unit, base, k) AS (VALUES      -- activity units → the unit a factor is given per
    ('t', 't', 1.0), ('kg', 't', 1e-3), ('10^4 Nm3', '10^4 Nm3', 1.0), ('Nm3', '10^4 Nm3', 1e-4),
    ('MWh', 'MWh', 1.0), ('kWh', 'MWh', 1e-3), ('GJ', 'GJ', 1.0), ('MJ', 'GJ', 1e-3)),
priced AS (
    SELECT r.month, r.node_id, r.source, r.item, r.gas,
           CASE WHEN r.unit = '=' THEN r.quantity
                WHEN c.base IS NULL THEN error('benchmark SQL has no conversion for activity unit ' || r.unit)
                ELSE r.quantity * c.k END AS q,
           CASE WHEN r.unit = '=' THEN NULL ELSE c.base END AS base,
           -- fuels: a site-measured NCV (the record's) wins over the default
           CASE WHEN r.ncv IS NULL THEN f.ncv
                WHEN r.ncv_unit IN ('GJ/t', 'MJ/kg', 'GJ/(10^4 Nm3)') THEN r.ncv
                ELSE error('benchmark SQL has no conversion for NCV unit ' || r.ncv_unit) END AS ncv,
           CASE WHEN r.ncv IS NULL THEN f.ncv_per
                WHEN r.ncv_unit = 'GJ/(10^4 Nm3)' THEN '10^4 Nm3' ELSE 't' END AS ncv_per,
           CASE WHEN r.cc IS NULL THEN f.cc
                WHEN r.cc_unit = 'tC/TJ' THEN r.cc * 1e-3 WHEN r.cc_unit = 'tC/GJ' THEN r.cc
                ELSE error('benchmark SQL has no conversion for carbon content unit ' || r.cc_unit) END AS cc,
           CASE WHEN r.ox IS NULL THEN f.ox
                WHEN r.ox > 1 AND r.ox <= 100 THEN r.ox / 100 ELSE r.ox END AS ox,   -- a bare 98 is 98 %
           CASE WHEN r.ef IS NULL THEN f.ef
                WHEN r.source = 'combustion' THEN error('benchmark SQL does not encode site emission factors of fuels')
                WHEN r.ef_unit IN ('tCO2/MWh', 'tCO2/GJ', 'tCO2/t') THEN r.ef
                ELSE error('benchmark SQL has no conversion for emission factor unit ' || r.ef_unit) END AS ef,
           CASE WHEN r.ef IS NULL THEN f.ef_per
                ELSE CASE r.ef_unit WHEN 'tCO2/MWh' THEN 'MWh' WHEN 'tCO2/GJ' THEN 'GJ' ELSE 't' END END AS ef_per,
           CASE WHEN r.purity IS NULL THEN 1.0
                WHEN r.purity > 1 AND r.purity <= 100 THEN r.purity / 100 ELSE r.purity END AS purity,
           f.gwp,
           CASE WHEN r.source LIKE 'exported_%' THEN -1 ELSE 1 END AS sign
    FROM record r
    LEFT JOIN conv c ON c.unit = r.unit
    LEFT JOIN f ON f.item = r.item AND f.year = year(r.month)
),
emission AS (
    SELECT month, node_id, source, item,
           coalesce(CASE
               WHEN gas <> 'CO2' THEN                                   -- m × GWP
                   CASE WHEN coalesce(base, 't') <> 't' THEN error('gas ' || gas || ' not in mass units')
                        ELSE q * gwp END
               WHEN source = 'combustion' THEN                          -- FC × NCV × CC × OF × 44/12
                   CASE WHEN base <> ncv_per THEN error('fuel ' || item || ' in ' || base || ', NCV per ' || ncv_per)
                        ELSE q * ncv * cc * ox * (44.0 / 12.0) END
               WHEN source = 'process' THEN                             -- M × P × EF
                   CASE WHEN base <> ef_per THEN error(item || ' in ' || base || ', factor per ' || ef_per)
                        ELSE q * purity * ef END
               ELSE                                                     -- AD × EF
                   CASE WHEN base <> ef_per THEN error(item || ' in ' || base || ', factor per ' || ef_per)
                        ELSE q * ef END
           END, error('benchmark SQL: no factor for ' || item || ' in ' || strftime(month, '%Y'))) * sign AS tco2e
    FROM priced
)
SELECT strftime(e.month, '%Y-%m') AS period,
       coalesce(fo.facility, error('node ' || e.node_id || ' is not in boundary.csv')) AS facility,
       e.source, sum(e.tco2e) AS tco2e
FROM emission e
LEFT JOIN facility_of fo USING (node_id)
GROUP BY ALL
ORDER BY ALL
"""


# --------------------------------------------------------------------------- the sides
def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def warm_up(side: str) -> None:
    """Imports (pandas, pint, DuckDB, the side's modules) and the factor library, loaded once per
    process: not timed."""
    import importlib

    from workbench.core.factors import default_library

    default_library()
    modules = {
        "package": ["workbench.accounting", "workbench.core.activity", "workbench.core.boundary", "workbench.inventory.readings"],
        "lake": ["xarray", "workbench.inventory.sources", "workbench.inventory.allocation", "workbench.inventory.compute",
                 "workbench.lake.store"],
        "lake-ingest": ["connectors.activity_file", "connectors.parquet", "connectors.production",
                        "workbench.demo.load", "workbench.ingestion.pipeline", "workbench.lake.store", "workbench.ingestion.prepare",
                        "workbench.lake.quality"],
    }.get(side, [])
    for name in ["duckdb", "pandas", *modules]:
        importlib.import_module(name)
    if side in ("lake", "lake-ingest"):
        default_library("AR5")      # the inventory's call: a cache entry of its own


def run_package(data: Path, threads: int | None, opts):
    """The workbench path; returns (monthly table, {step: seconds})."""
    from workbench.accounting import account
    from workbench.core.boundary import Boundary
    from workbench.inventory.readings import (
        activity_from_meters,
        meter_consumption,
        read_meters,
    )

    steps = {}
    t = time.perf_counter()
    ent = json.loads((data / "enterprise.json").read_text(encoding="utf-8"))
    meters = read_meters(data / "meters.csv")
    boundary = Boundary.read_csv(data / "boundary.csv")
    cons = meter_consumption(data / "readings.parquet", meters, threads=threads)
    steps["meter_consumption"] = time.perf_counter() - t
    t = time.perf_counter()
    activity = activity_from_meters(cons, enterprise=boundary.enterprise)
    steps["activity_from_meters"] = time.perf_counter() - t
    t = time.perf_counter()
    ledger = account(activity, boundary=boundary, region=ent["region"])
    steps["account"] = time.perf_counter() - t
    t = time.perf_counter()
    monthly = (ledger.groupby(["period", "facility", "source"], as_index=False)["tco2e"].sum()
               .sort_values(["period", "facility", "source"]).reset_index(drop=True))
    steps["group"] = time.perf_counter() - t
    return monthly, steps


def factor_values(data: Path, *, ledger: bool = False) -> str:
    """VALUES rows of the default factors the package would use, per item and data year: for the
    accounted meters' items, and with ``ledger`` also for the items of the ledger (activity.csv;
    a non-CO2 gas: its GWP)."""
    import pandas as pd

    from workbench.core.factors import default_library

    lib = default_library()
    ent = json.loads((data / "enterprise.json").read_text(encoding="utf-8"))
    meters = pd.read_csv(data / "meters.csv", dtype=str, keep_default_na=False)
    years = range(int(ent["period_start"][:4]), int(ent["period_end"][:4]) + 1)
    used = meters[meters["source"].isin(ACCOUNTED)][["source", "item"]].assign(gas="CO2")
    if ledger:
        act = pd.read_csv(data / "activity.csv", dtype=str, keep_default_na=False)
        act["gas"] = act["gas"].str.strip().replace("", "CO2") if "gas" in act else "CO2"
        used = pd.concat([used, act[["source", "item", "gas"]]])
    rows = []
    for source, item, gas in used.drop_duplicates().itertuples(index=False):
        kinds = (("gwp",) if gas != "CO2" else
                 ("ncv", "carbon_content", "oxidation_rate") if source == "combustion" else ("emission_factor",))
        for year in years:
            for kind in kinds:
                f = lib.lookup(item, kind, year=year, region=ent["region"])
                rows.append(f"('{item}', {year}, '{kind}', {f.value!r}, '{f.unit}')")
    return ",\n    ".join(dict.fromkeys(rows))


def _duckdb_query(sql: str, threads: int | None):
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    t = time.perf_counter()
    monthly = con.execute(sql).df()
    steps = {"query": time.perf_counter() - t}
    con.close()
    return monthly, steps


def run_duckdb(data: Path, threads: int | None, opts):
    factors = factor_values(data)  # a look-up table, not part of the timed query
    sql = BASELINE_SQL.format(readings=data / "readings.parquet", meters=data / "meters.csv",
                              boundary=data / "boundary.csv", factors=factors)
    return _duckdb_query(sql, threads)


def _months(data: Path) -> tuple[str, str]:
    ent = json.loads((data / "enterprise.json").read_text(encoding="utf-8"))
    return ent["period_start"][:7], ent["period_end"][:7]


def run_lake_duckdb(data: Path, threads: int | None, opts):
    first, last = _months(data)
    factors = factor_values(data, ledger=True)  # a look-up table, not part of the timed query
    sql = LAKE_BASELINE_SQL.format(readings=data / "readings.parquet", meters=data / "meters.csv",
                                   boundary=data / "boundary.csv", activity=data / "activity.csv",
                                   factors=factors, first=first, last=last)
    return _duckdb_query(sql, threads)


class _Timers(dict):
    """Seconds spent in some of the package's functions, summed over calls: each is wrapped (in this
    child process only; behaviour unchanged) with a timer.  Nested calls are counted in both."""

    def wrap(self, owner, name: str, label: str | None = None) -> None:
        import functools

        orig = getattr(owner, name)
        label = label or name

        @functools.wraps(orig)
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return orig(*a, **k)
            finally:
                self[label] = self.get(label, 0.0) + time.perf_counter() - t

        setattr(owner, name, timed)


def run_lake_ingest(data: Path, threads: int | None, opts):
    """The demo into a fresh lake through the ordinary ingest path (``load_demo``).  Returns the
    ingest reports and timings: the readings (``connectors.parquet.read`` + ``workbench.ingestion.ingest`` of the
    readings batch: raw zone, preparation, curated tables, quality rules) and the whole load."""
    import shutil

    import pandas as pd

    import connectors.parquet
    import workbench.demo.load
    from workbench.demo.load import load_demo

    root = Path(opts["lake_root"])
    if root.exists():
        shutil.rmtree(root)
    timers = _Timers()
    timers.wrap(connectors.parquet, "read", "read readings.parquet")
    orig_ingest = workbench.demo.load.ingest

    def ingest(lake, result, *a, **k):
        t = time.perf_counter()
        try:
            return orig_ingest(lake, result, *a, **k)
        finally:
            key = f"Lake.ingest {result.kind}"
            timers[key] = timers.get(key, 0.0) + time.perf_counter() - t

    workbench.demo.load.ingest = ingest
    t = time.perf_counter()
    reports = load_demo(data, root, enterprise=opts["enterprise"])
    total = time.perf_counter() - t
    workbench.demo.load.ingest = orig_ingest
    steps = dict(timers)
    steps["load_demo"] = total
    steps["readings_ingest"] = timers["read readings.parquet"] + timers["Lake.ingest readings"]
    r = reports["readings"]
    counts = {k: r[k] for k in ("rows_in", "rows_curated", "rows_quarantined", "rows_duplicate")}
    counts.update({k: v for k, v in (r.get("counts") or {}).items()
                   if k in ("consumption", "conflicting_duplicate", "rollover", "reset", "quality_rules_failed")})
    counts["status"] = {k: v["status"] for k, v in reports.items()}
    steps["counts"] = counts
    return pd.DataFrame({"table": list(reports), "rows_curated": [v["rows_curated"] for v in reports.values()]}), steps


_LAKE_TIMERS: _Timers | None = None


def run_lake(data: Path, threads: int | None, opts):
    """Monthly tCO2e by (period, facility, source) from the lake: the inventory's cube
    (``compute_inventory_from_lake`` → ``inv.cube["tco2e"]`` as a table), one inventory per month
    (``--lake-span month``) or one for the whole span (``year``)."""
    import pandas as pd

    import workbench.inventory.sources as sources
    import workbench.lake.store
    from workbench.accounting.cube import cube_to_frame
    from workbench.inventory import compute as inventory
    from workbench.inventory.compute import compute_inventory_from_lake, months

    global _LAKE_TIMERS
    if _LAKE_TIMERS is None:        # wrapped once per process (--repeat runs this again)
        _LAKE_TIMERS = timers = _Timers()
        for name in ("lake_meter_consumption", "meter_candidates", "ledger_candidates", "invoice_candidates",
                     "choose", "reconcile"):
            timers.wrap(sources, name)
        for name in ("allocate_by_submeters", "normalize_activity", "account", "_lake_production", "to_cube",
                     "_factors_used"):
            timers.wrap(inventory, name)
        timers.wrap(workbench.lake.store.Lake, "retrieve", "Lake.retrieve (all tables)")
    timers = _LAKE_TIMERS
    timers.clear()
    first, last = _months(data)
    spans = [(m, m) for m in months(first, last)] if opts["lake_span"] == "month" else [(first, last)]
    t = time.perf_counter()
    lake = workbench.lake.store.Lake(opts["lake_root"])
    frames = []
    for a, b in spans:
        inv = compute_inventory_from_lake(lake, opts["enterprise"], a, b)
        frames.append(cube_to_frame(inv.cube))
    monthly = (pd.concat(frames, ignore_index=True).sort_values(["period", "facility", "source"])
               .reset_index(drop=True))
    total = time.perf_counter() - t
    timers["inventories"] = total
    for k in list(timers):
        timers[k] = round(timers[k], 3)
    return monthly, dict(timers)


SIDES = {"package": run_package, "duckdb": run_duckdb, "lake-ingest": run_lake_ingest, "lake": run_lake,
         "lake-duckdb": run_lake_duckdb}


def child(side: str, data: Path, threads: int | None, repeat: int, result: Path, opts: dict) -> None:
    """One side, in this (child) process: the monthly table to Parquet, figures to JSON."""
    fn = SIDES[side]
    t = time.perf_counter()
    warm_up(side)
    warm = time.perf_counter() - t
    best, best_steps, monthly, runs = float("inf"), {}, None, []
    prof = None
    if opts.get("profile") and side == "lake":
        import cProfile

        prof = cProfile.Profile()
    for _ in range(1 if side == "lake-ingest" else max(1, repeat)):  # ingest: once, into a fresh lake
        t = time.perf_counter()
        if prof:
            prof.enable()
        monthly, steps = fn(data, threads, opts)
        if prof:
            prof.disable()
        dt = time.perf_counter() - t
        runs.append(dt)
        if dt < best:
            best, best_steps = dt, steps
    if prof:
        prof.dump_stats(opts["profile"])
    monthly.to_parquet(result.with_suffix(".parquet"), index=False)
    result.write_text(json.dumps({"side": side, "seconds": best, "steps": best_steps, "warm_up": warm, "runs": runs,
                                  "maxrss_mib": _maxrss_mib(), "rows": len(monthly)}, default=str))


# --------------------------------------------------------------------------- driver
def ensure_data(data: Path, meters: int, years: int, seed: int, console) -> int:
    """Generate the demo enterprise unless a complete one with these parameters is there (made by
    a generator that writes ``enterprise_id``, which the lake path needs)."""
    import pyarrow.parquet as pq

    from workbench.demo.plants import generate

    def complete() -> bool:
        try:
            ent = json.loads((data / "enterprise.json").read_text(encoding="utf-8"))
            g = ent["generator"]
            ok = (g.get("meters_requested") == meters and g.get("years") == years and g.get("seed") == seed
                  and ent.get("enterprise_id")
                  and all((data / f).exists() for f in ("README.md", "boundary.csv", "meters.csv", "activity.csv",
                                                        "monthly.csv")))
            return ok and pq.ParquetFile(data / "readings.parquet").metadata.num_rows > 0
        except (OSError, KeyError, ValueError):
            return False

    if complete():
        console.print(f"demo data: reusing [bold]{data}[/]")
    else:
        console.print(f"demo data: generating {meters} meters × {years} year(s), seed {seed} → [bold]{data}[/]")
        for f in ("enterprise.json", "README.md"):  # mark incomplete while writing
            (data / f).unlink(missing_ok=True)
        info = generate(data, meters=meters, years=years, seed=seed, progress=True, plants=("cement",))
        console.print(f"demo data: generated in {info['seconds']:.1f} s")
    return pq.ParquetFile(data / "readings.parquet").metadata.num_rows


def run_side(side: str, args, workdir: Path) -> tuple[dict, object]:
    import pandas as pd

    result = workdir / f"{side}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--data", str(args.data),
           "--repeat", str(args.repeat), "--result", str(result), "--lake-root", str(args.lake_root),
           "--lake-span", args.lake_span]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.profile and side == "lake":
        cmd += ["--profile", str(args.profile)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{side} side failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    info = json.loads(result.read_text())
    return info, pd.read_parquet(result.with_suffix(".parquet"))


def compare(pkg, ddb, *, missing_as_zero: bool = False):
    """Outer join on (period, facility, source); max relative difference (missing cell → inf, or
    with ``missing_as_zero`` → 0 tCO2e: the cube holds every period × facility × source cell, the
    query only cells with records)."""
    import numpy as np

    keys = ["period", "facility", "source"]
    m = pkg.merge(ddb, on=keys, how="outer", suffixes=("_package", "_duckdb"), indicator=True)
    a, b = m["tco2e_package"].to_numpy(float), m["tco2e_duckdb"].to_numpy(float)
    if missing_as_zero:
        a, b = np.nan_to_num(a, nan=0.0), np.nan_to_num(b, nan=0.0)
        m["tco2e_package"], m["tco2e_duckdb"] = a, b
    scale = np.maximum(np.abs(a), np.abs(b))
    rel = np.where(scale > 0, np.abs(a - b) / np.where(scale > 0, scale, 1.0), 0.0)
    rel = np.where(np.isnan(rel), np.inf, rel)
    m["rel"] = rel
    return m, float(rel.max()) if len(rel) else 0.0


def lake_report(console, args, n_readings: int, results: dict) -> bool:
    """Print the lake path's figures; True when the lake and the query agree."""
    from rich.panel import Panel
    from rich.table import Table

    ing, lake, ddb = results["lake-ingest"][0], results["lake"][0], results["lake-duckdb"][0]
    merged, max_rel = compare(results["lake"][1], results["lake-duckdb"][1], missing_as_zero=True)
    bad = merged[merged["rel"] > RTOL]
    one_sided = merged[merged["_merge"] != "both"]
    nonzero = int(((merged["tco2e_package"] != 0) | (merged["tco2e_duckdb"] != 0)).sum())
    ratio = lake["seconds"] / ddb["seconds"]
    st = dict(ing["steps"])
    cnt = st.pop("counts", {})
    if ing.get("reused"):
        ingest_line = f"reused the lake at {args.lake_root} (not timed)"
    else:
        rin = cnt.get("rows_in", n_readings)
        ingest_line = (f"{rin:,} readings in {st['readings_ingest']:.1f} s = [bold]{rin / st['readings_ingest']:,.0f}"
                       f" readings/s[/] (read {st['read readings.parquet']:.1f} s + Lake.ingest "
                       f"{st['Lake.ingest readings']:.1f} s); whole load_demo {st['load_demo']:.1f} s; "
                       f"peak {ing['maxrss_mib']:,.0f} MiB\n"
                       f"                       curated {cnt.get('rows_curated', 0):,}, quarantined "
                       f"{cnt.get('rows_quarantined', 0):,}, duplicates {cnt.get('rows_duplicate', 0):,}, "
                       f"consumption rows {cnt.get('consumption', 0):,}")
    t = Table(title=f"Lake path — monthly tCO2e by facility and source, {args.meters} meters, "
                    f"{args.years} year(s)")
    t.add_column("")
    t.add_column("lake (inventory from the lake)", justify="right")
    t.add_column("duckdb (one query over the raw files)", justify="right")
    t.add_row("wall time (s)", f"{lake['seconds']:.2f}", f"{ddb['seconds']:.2f}")
    t.add_row("peak memory (MiB, ru_maxrss)", f"{lake['maxrss_mib']:,.0f}", f"{ddb['maxrss_mib']:,.0f}")
    t.add_row("result cells", f"{lake['rows']}", f"{ddb['rows']}")
    t.add_row("warm-up, not timed (s)", f"{lake['warm_up']:.2f}", f"{ddb['warm_up']:.2f}")
    if args.repeat > 1:
        t.add_row("all runs (s)", " ".join(f"{x:.2f}" for x in lake["runs"]), " ".join(f"{x:.2f}" for x in ddb["runs"]))
    console.print(t)
    steps = ", ".join(f"{k} {v:.2f}" for k, v in sorted(lake["steps"].items(), key=lambda kv: -kv[1]))
    verdict = "[green]within target[/]" if ratio <= TARGET_RATIO else "[red]slower than target[/]"
    console.print(Panel(
        f"ingest                 {ingest_line}\n"
        f"lake / duckdb time     [bold]{ratio:.2f}×[/]  (target ≤ {TARGET_RATIO}×: {verdict}); "
        f"{'one inventory per month' if args.lake_span == 'month' else 'one inventory for the whole span'}\n"
        f"lake steps (s, nested counted twice)  {steps}\n"
        f"max relative diff      {max_rel:.3e} over {len(merged)} (period, facility, source) cells, "
        f"{nonzero} non-zero (tolerance {RTOL:g}); cells only in the cube {int((one_sided['_merge'] == 'left_only').sum())}"
        f" (must be 0 t), only in the query {int((one_sided['_merge'] == 'right_only').sum())}\n"
        f"total                  {float(merged['tco2e_package'].sum()):,.3f} tCO2e (lake), "
        f"{float(merged['tco2e_duckdb'].sum()):,.3f} tCO2e (query)",
        title="summary — lake path"))
    agree = bad.empty
    if not agree:
        console.print(bad.head(20).to_string())
    return agree


def main(argv=None) -> int:
    from workbench.demo.plants import DEFAULT_SEED

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meters", type=int, default=2000, help="number of meters (default 2000 ≈ 70 M readings/year)")
    ap.add_argument("--years", type=int, default=1, help="years of 15-min readings (default 1)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"demo seed (default {DEFAULT_SEED})")
    ap.add_argument("--data", type=Path, default=None,
                    help="cache folder (default benchmarks/.data/accounting-{meters}m-{years}y)")
    ap.add_argument("--threads", type=int, default=None,
                    help="DuckDB threads of the package path and both queries (default: all cores; the lake "
                         "side's own DuckDB connections always use all cores)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per side; the fastest is reported (default 1; the ingest runs once)")
    ap.add_argument("--lake", action=argparse.BooleanOptionalAction, default=True,
                    help="run the lake path after the package path (default: yes)")
    ap.add_argument("--only", choices=("package", "lake"), default=None,
                    help="run only the package path (with its query) or only the lake path (with its query)")
    ap.add_argument("--lake-root", type=Path, default=None,
                    help="where the fresh lake is built (default: a temporary folder, deleted at the end; "
                         "an existing folder there is deleted first)")
    ap.add_argument("--reuse-lake", action="store_true",
                    help="use the lake already at --lake-root (made by an earlier run of this demo), skip the ingest")
    ap.add_argument("--lake-span", choices=("month", "year"), default="year",
                    help="lake side: one inventory for the whole span (default) or one per month")
    ap.add_argument("--profile", type=Path, default=None, help="run the lake side under cProfile, stats to this file")
    ap.add_argument("--side", choices=tuple(SIDES), help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.data is None:
        args.data = ROOT / "benchmarks" / ".data" / f"accounting-{args.meters}m-{args.years}y"
    args.data = args.data.resolve()

    if args.side:  # child process
        ent = json.loads((args.data / "enterprise.json").read_text(encoding="utf-8"))
        child(args.side, args.data, args.threads, args.repeat, args.result,
              {"lake_root": args.lake_root, "lake_span": args.lake_span, "profile": args.profile,
               "enterprise": ent["enterprise_id"]})
        return 0
    if args.reuse_lake and args.lake_root is None:
        ap.error("--reuse-lake needs --lake-root")
    do_package = args.only in (None, "package")
    do_lake = args.only == "lake" or (args.only is None and args.lake)

    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console()
    args.data.mkdir(parents=True, exist_ok=True)
    n_readings = ensure_data(args.data, args.meters, args.years, args.seed, console)
    console.print(f"readings: [bold]{n_readings:,}[/] ({args.meters} meters × {args.years} year(s) at 15 min)")

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-accounting-") as tmp, \
            Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                     console=console) as progress:
        if args.lake_root is None:
            args.lake_root = Path(tmp) / "lake"
        args.lake_root = args.lake_root.resolve()
        plan = []
        if do_package:
            plan += [("package", "package: readings → activity → ledger → monthly"),
                     ("duckdb", "duckdb: one hand-written SQL query")]
        if do_lake:
            if not args.reuse_lake:
                plan.append(("lake-ingest", f"lake: load_demo into a fresh lake ({args.lake_root})"))
            span = "one per month" if args.lake_span == "month" else "one for the whole span"
            plan += [("lake", f"lake: compute_inventory_from_lake → cube ({span})"),
                     ("lake-duckdb", "duckdb: one hand-written SQL query for the lake's numbers")]
        for side, label in plan:
            task = progress.add_task(label, total=1)
            results[side] = run_side(side, args, Path(tmp))
            progress.update(task, completed=1,
                            description=f"{label} — {results[side][0]['seconds']:.2f} s")
        if do_lake and args.reuse_lake:
            results["lake-ingest"] = ({"reused": True, "steps": {}, "maxrss_mib": 0}, None)

        ok = True
        if do_package:
            ok = package_report(console, args, n_readings, results) and ok
        if do_lake:
            ok = lake_report(console, args, n_readings, results) and ok
        if args.profile and do_lake:
            import pstats

            console.print(f"cProfile of the lake side → {args.profile} (top 25 by cumulative time):")
            pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(25)
    assert ok, "a path disagrees with its hand-written query (see above)"
    return 0


def package_report(console, args, n_readings: int, results: dict) -> bool:
    """Print the package path's figures; True when the package and the query agree."""
    from rich.panel import Panel
    from rich.table import Table

    merged, max_rel = compare(results["package"][1], results["duckdb"][1])
    pkg, ddb = results["package"][0], results["duckdb"][0]
    ratio = pkg["seconds"] / ddb["seconds"]
    bad = merged[merged["rel"] > RTOL]
    agree = bad.empty and (merged["_merge"] == "both").all()

    t = Table(title=f"Monthly tCO2e by facility and source — {n_readings:,} readings, {args.meters} meters, "
                    f"{args.years} year(s)", show_lines=False)
    t.add_column("")
    t.add_column("package", justify="right")
    t.add_column("duckdb", justify="right")
    t.add_row("wall time (s)", f"{pkg['seconds']:.2f}", f"{ddb['seconds']:.2f}")
    t.add_row("readings / s", f"{n_readings / pkg['seconds']:,.0f}", f"{n_readings / ddb['seconds']:,.0f}")
    t.add_row("peak memory (MiB, ru_maxrss)", f"{pkg['maxrss_mib']:,.0f}", f"{ddb['maxrss_mib']:,.0f}")
    t.add_row("result cells", f"{pkg['rows']}", f"{ddb['rows']}")
    t.add_row("warm-up, not timed (s)", f"{pkg['warm_up']:.2f}", f"{ddb['warm_up']:.2f}")
    if args.repeat > 1:
        t.add_row("all runs (s)", " ".join(f"{x:.2f}" for x in pkg["runs"]),
                  " ".join(f"{x:.2f}" for x in ddb["runs"]))
    console.print(t)
    steps = ", ".join(f"{k} {v:.2f} s" for k, v in pkg["steps"].items())
    total_t = float(merged["tco2e_package"].sum())
    verdict = "[green]within target[/]" if ratio <= TARGET_RATIO else "[red]slower than target[/]"
    console.print(Panel.fit(
        f"package / duckdb time  [bold]{ratio:.2f}×[/]  (target ≤ {TARGET_RATIO}×: {verdict})\n"
        f"package steps          {steps}\n"
        f"memory package/duckdb  {pkg['maxrss_mib'] / ddb['maxrss_mib']:.2f}×\n"
        f"max relative diff      {max_rel:.3e} over {len(merged)} cells (tolerance {RTOL:g})\n"
        f"total                  {total_t:,.3f} tCO2e\n"
        f"threads                {args.threads or 'DuckDB default (' + str(os.cpu_count()) + ' cores)'}"
        f", repeat {args.repeat}",
        title="summary"))
    if not agree:
        console.print(bad.head(20).to_string())
    return agree


if __name__ == "__main__":
    sys.exit(main())
