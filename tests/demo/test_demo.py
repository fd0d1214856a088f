"""Tests of the deterministic demo enterprise (workbench.demo.plants)."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.demo.plants import ANOMALY_KINDS, DEFAULT_METER_COUNT, generate

CSV_FILES = ("boundary.csv", "meters.csv", "activity.csv", "monthly.csv", "anomalies.csv")
LEVELS = ("enterprise", "facility", "workshop", "process", "meter")
CLASSES = {"main_production", "auxiliary", "non_production", "external_supply"}
Q = pd.Timedelta("15min")


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, generate(out)


@pytest.fixture(scope="module")
def demo60(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo60")
    return out, generate(out, meters=60)


def _csv(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / name, dtype=str, keep_default_na=False)


def _readings(out: Path) -> pd.DataFrame:
    return pq.read_table(out / "readings.parquet").to_pandas()


def _anomalies(out: Path) -> pd.DataFrame:
    a = _csv(out, "anomalies.csv")
    a["ts_start"] = pd.to_datetime(a["ts_start"])
    a["ts_end"] = pd.to_datetime(a["ts_end"])
    a["n_readings"] = a["n_readings"].astype(int)
    return a


def _elec_sub(meters: pd.DataFrame) -> pd.Index:
    m = meters[(meters.source == "purchased_electricity") & (meters.is_main == "false")]
    return pd.Index(m.meter_id)


def _clean_elec_months(out: Path) -> list[str]:
    """Months in which no electricity meter carries an anomaly label (rollovers are not errors)."""
    meters, a = _csv(out, "meters.csv"), _anomalies(out)
    elec = set(meters.loc[meters.source == "purchased_electricity", "meter_id"])
    dirty = a[a.meter_id.isin(elec) & (a.kind != "rollover")]
    bad = set(dirty.ts_start.dt.strftime("%Y-%m")) | set(dirty.ts_end.dt.strftime("%Y-%m"))
    periods = _csv(out, "monthly.csv")["period"].unique()
    return [p for p in periods if p not in bad]


def _cumulative_monthly(r: pd.DataFrame, rollover: float) -> pd.Series:
    """Monthly consumption of a cumulative register: diffs, rollover and reset handling."""
    r = r.drop_duplicates(["ts", "value"]).sort_values("ts")
    v, ts = r["value"].to_numpy(), r["ts"].to_numpy()
    d = np.diff(v)
    neg = d < 0
    roll = neg & (v[:-1] > 0.5 * rollover) & (v[1:] < 0.5 * rollover) & (v[1:] + rollover - v[:-1] < 0.01 * rollover)
    d[roll] += rollover
    reset = neg & ~roll
    d[reset] = v[1:][reset]  # counting restarts at 0
    return pd.Series(d, index=pd.DatetimeIndex(ts[:-1]).strftime("%Y-%m")).groupby(level=0).sum()


# --------------------------------------------------------------------------- basics
def test_return_value_and_files(demo):
    out, res = demo
    for name in CSV_FILES + ("readings.parquet", "enterprise.json", "README.md"):
        assert (out / name).is_file(), name
    assert set(res["files"]) >= {"readings", "boundary", "meters", "activity", "monthly", "anomalies", "enterprise"}
    c = res["counts"]
    assert c["meters"] == len(_csv(out, "meters.csv")) == DEFAULT_METER_COUNT and 35 <= c["meters"] <= 45
    assert c["readings"] == pq.ParquetFile(out / "readings.parquet").metadata.num_rows
    assert c["anomalies"] == len(_csv(out, "anomalies.csv"))
    assert c["activity"] == len(_csv(out, "activity.csv"))
    assert res["period_start"] == "2025-01-01" and res["period_end"] == "2025-12-31"
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "anomal" in readme and "异常" in readme


def test_enterprise_json(demo):
    out, _ = demo
    e = json.loads((out / "enterprise.json").read_text(encoding="utf-8"))
    assert e["name_zh"] == "浙江示例水泥有限公司"
    assert e["name_en"] == "Zhejiang Demo Cement Co., Ltd."
    assert e["region"] == "CN-ZJ" and e["industry_code"] == "C3011" and e["industry_name_zh"] == "水泥制造"
    assert e["identifier_prefix"] == "88.123.4567"
    assert len(e["unified_social_credit_code"]) == 18
    assert e["reporting_standard"] == "GB/T 32150" and e["sector_standard"] == "GB/T 32151.8"
    assert e["timezone"] == "Asia/Shanghai"
    assert e["period_start"] == "2025-01-01" and e["period_end"] == "2025-12-31"
    assert e["generator"]["seed"] == 20251
    # issue 11: a short id, the sector, and the product columns of monthly.csv
    assert e["enterprise_id"] == "demo-cement" and e["sector"] == "cement"
    assert e["products"] == [
        {"product": "clinker", "column": "clinker_t", "unit": "t", "name_zh": "熟料", "name_en": "clinker"},
        {"product": "cement", "column": "cement_t", "unit": "t", "name_zh": "水泥", "name_en": "cement"}]
    assert [p["column"] for p in e["products"]] == list(_csv(out, "monthly.csv").columns[2:-1])
    for k in ("legal_representative", "contact_person", "contact_phone", "contact_email", "address",
              "industry_name_en"):
        assert e[k]


def test_determinism(demo, tmp_path):
    out, _ = demo
    again = tmp_path / "again"
    generate(again)
    for name in CSV_FILES + ("enterprise.json", "README.md"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    assert pq.read_table(out / "readings.parquet").equals(pq.read_table(again / "readings.parquet"))

    other = tmp_path / "other"
    generate(other, seed=7, progress=True)
    assert not pq.read_table(out / "readings.parquet").equals(pq.read_table(other / "readings.parquet"))
    assert (out / "activity.csv").read_bytes() != (other / "activity.csv").read_bytes()
    assert (out / "anomalies.csv").read_bytes() != (other / "anomalies.csv").read_bytes()


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path / "a", meters=DEFAULT_METER_COUNT - 1)
    with pytest.raises(ValueError):
        generate(tmp_path / "b", start="2025-01-15")


# --------------------------------------------------------------------------- schemas
def test_schemas(demo):
    out, _ = demo
    cols = {
        "boundary.csv": ["node_id", "parent_id", "level", "name_zh", "name_en", "classification", "identifier"],
        "meters.csv": ["meter_id", "serial", "node_id", "source", "item", "unit", "register", "rollover",
                       "installed", "removed", "replaces", "is_main"],
        "activity.csv": ["record_id", "node_id", "period", "source", "item", "quantity", "unit", "gas",
                         "data_tier", "document", "ncv", "ncv_unit", "carbon_content", "carbon_content_unit",
                         "oxidation_rate", "emission_factor", "ef_unit", "purity"],
        "monthly.csv": ["period", "node_id", "clinker_t", "cement_t", "value_added_10k_cny"],
        "anomalies.csv": ["anomaly_id", "meter_id", "kind", "ts_start", "ts_end", "n_readings", "description"],
    }
    for name, expected in cols.items():
        assert list(_csv(out, name).columns) == expected, name

    schema = pq.read_schema(out / "readings.parquet")
    assert schema.names == ["meter_id", "ts", "value"]
    mid = schema.field("meter_id").type
    assert mid == pa.string() or (pa.types.is_dictionary(mid) and mid.value_type == pa.string())
    assert schema.field("ts").type == pa.timestamp("ms")  # naive local time, no tz
    assert schema.field("value").type == pa.float64()
    meta = pq.ParquetFile(out / "readings.parquet").metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"

    r = _readings(out)
    assert r["meter_id"].is_monotonic_increasing
    ts = r["ts"].to_numpy().astype("int64")
    same = r["meter_id"].to_numpy()[1:] == r["meter_id"].to_numpy()[:-1]
    assert (np.diff(ts)[same] >= 0).all()
    assert r["value"].notna().all()
    # 15-min grid
    assert (ts % (15 * 60 * 1000) == 0).all()


def test_boundary_hierarchy(demo):
    out, _ = demo
    b, meters = _csv(out, "boundary.csv"), _csv(out, "meters.csv")
    assert b.node_id.is_unique
    level = dict(zip(b.node_id, b.level))
    assert set(b.level) == set(LEVELS)
    root = b[b.parent_id == ""]
    assert list(root.node_id) == ["ENT"] and list(root.level) == ["enterprise"]
    for _, row in b[b.parent_id != ""].iterrows():
        assert row.parent_id in level, row.node_id
        p = LEVELS.index(level[row.parent_id])
        c = LEVELS.index(row.level)
        if row.level == "meter":
            assert level[row.parent_id] in ("process", "workshop", "enterprise"), row.node_id
        else:
            assert c == p + 1, row.node_id
    assert set(b.classification) - {""} <= CLASSES
    assert set(b.loc[b.level == "facility", "classification"]) == CLASSES
    assert b.identifier.str.startswith("88.123.4567/").all()
    assert b.identifier.is_unique
    assert (b.loc[b.level == "meter", "identifier"] == "88.123.4567/meter." + b.loc[b.level == "meter", "node_id"]).all()
    assert "F01.W02.P01" in level and level["F01.W02.P01"] == "process"
    # meters are boundary nodes hanging under the node they measure
    mb = b[b.level == "meter"].set_index("node_id")
    assert set(mb.index) == set(meters.meter_id)
    assert (mb.loc[meters.meter_id, "parent_id"].to_numpy() == meters.node_id.to_numpy()).all()


def test_meter_register(demo):
    out, _ = demo
    m = _csv(out, "meters.csv")
    assert m.meter_id.is_unique and m.serial.is_unique
    main = m[m.is_main == "true"]
    assert len(main) == 1 and main.iloc[0].node_id == "ENT" and main.iloc[0].register == "cumulative"
    assert main.iloc[0]["rollover"] == "99999999" and main.iloc[0]["item"] == "grid" and main.iloc[0]["unit"] == "kWh"
    assert set(m.is_main) <= {"true", "false"}
    assert set(m.register) == {"interval", "cumulative"}
    assert (m.loc[m.register == "interval", "rollover"] == "").all()
    assert (m.loc[m.register == "cumulative", "rollover"] != "").all()
    sub = m[(m.source == "purchased_electricity") & (m.is_main == "false")]
    assert (sub.register == "interval").all() and len(sub) >= 20
    procs = {"F01.W01.P01", "F01.W02.P01", "F01.W02.P02", "F02.W01.P01", "F02.W01.P02", "F03.W01.P01",
             "F03.W02.P01", "F03.W03.P01", "F03.W04.P01", "F04.W01.P01", "F04.W02.P01"}
    assert procs <= set(sub.node_id)
    coal = m[m.item == "raw_coal"]
    assert len(coal) >= 1 and (coal.node_id == "F01.W02.P01").all() and (coal.unit == "t").all()
    whr = m[m.source == "self_generated_electricity"]
    assert len(whr) == 1 and whr.iloc[0].is_main == "false" and whr.iloc[0].node_id.startswith("F01.W03")
    heat = m[m.source == "exported_heat"]
    assert len(heat) == 1 and heat.iloc[0].node_id.startswith("F05") and heat.iloc[0].register == "cumulative"
    assert not (m.item == "diesel").any()
    gas = m[m.item == "natural_gas"]
    assert len(gas) == 2 and (gas.register == "cumulative").all() and (gas.rollover == "9999999").all()
    new = gas[gas.replaces != ""].iloc[0]
    old = gas[gas.meter_id == new.replaces].iloc[0]
    assert old.removed and not new.removed and new.installed == old.removed and new.serial != old.serial


# --------------------------------------------------------------------------- anomalies
def test_every_anomaly_kind_present(demo):
    out, _ = demo
    a = _anomalies(out)
    assert set(a.kind) == set(ANOMALY_KINDS)
    assert a.anomaly_id.is_unique
    assert (a.ts_end >= a.ts_start).all()
    assert set(a.meter_id) <= set(_csv(out, "meters.csv").meter_id)


def _check_anomalies_in_readings(out: Path):
    a, r, meters = _anomalies(out), _readings(out), _csv(out, "meters.csv").set_index("meter_id")
    by_meter = {k: g.reset_index(drop=True) for k, g in r.groupby("meter_id", sort=False)}
    for _, x in a.iterrows():
        g = by_meter[x.meter_id]
        win = g[(g.ts >= x.ts_start) & (g.ts <= x.ts_end)]
        expected_n = int((x.ts_end - x.ts_start) / Q) + 1
        if x.kind == "gap":
            assert win.empty, x.anomaly_id
            assert x.n_readings == expected_n
            assert (g.ts == x.ts_start - Q).any() and (g.ts == x.ts_end + Q).any(), x.anomaly_id
        elif x.kind in ("duplicate", "duplicate_conflict"):
            counts = win.groupby("ts")["value"].agg(["size", "nunique"])
            assert len(counts) == x.n_readings == expected_n
            assert (counts["size"] == 2).all(), x.anomaly_id
            assert (counts["nunique"] == (1 if x.kind == "duplicate" else 2)).all(), x.anomaly_id
        elif x.kind == "spike":
            i = g.index[g.ts == x.ts_start][0]
            neigh = g.value.iloc[max(0, i - 4):i + 5].drop(i)
            assert g.value.iloc[i] > 5 * neigh.median() > 0, x.anomaly_id
        elif x.kind == "stuck":
            assert len(win) == x.n_readings == expected_n >= 96
            assert win.value.nunique() == 1, x.anomaly_id
            before = g[(g.ts < x.ts_start) & (g.ts >= x.ts_start - pd.Timedelta("1D"))]
            assert before.value.nunique() > 10
        elif x.kind == "counter_reset":
            i = g.index[g.ts == x.ts_start][0]
            prev, now = g.value.iloc[i - 1], g.value.iloc[i]
            assert prev > 1e6 and now < 1e-3 * prev and now < 2e4, x.anomaly_id
        elif x.kind == "rollover":
            cap = float(meters.at[x.meter_id, "rollover"])
            i = g.index[g.ts == x.ts_start][0]
            prev, now = g.value.iloc[i - 1], g.value.iloc[i]
            assert prev > 0.9 * cap and now < 0.1 * cap and 0 <= now + cap - prev < 1e-4 * cap, x.anomaly_id
        elif x.kind == "meter_replacement":
            new = meters.loc[x.meter_id]
            old_id = new.replaces
            assert old_id and meters.at[old_id, "removed"] == str(x.ts_start.date())
            old_r = by_meter[old_id]
            assert old_r.ts.max() == x.ts_start == g.ts.min()
            first = g.sort_values("ts").value.iloc[0]
            assert 0 < first < 100 and first < 1e-3 * old_r.value.iloc[-1]
        elif x.kind == "drift":
            assert len(win) == x.n_readings == expected_n
            node = meters.at[x.meter_id, "node_id"]
            sib = meters[(meters.node_id == node) & (meters.source == "purchased_electricity")].index.drop(x.meter_id)
            assert len(sib)
            rr = r[r.meter_id.isin(sib.union([x.meter_id]))].drop_duplicates(["meter_id", "ts"])
            rr = rr.assign(period=rr.ts.dt.strftime("%Y-%m"), own=rr.meter_id == x.meter_id)
            tab = rr.groupby(["period", "own"]).value.sum().unstack()
            ratio = tab[True] / tab[False]
            p = x.ts_start.strftime("%Y-%m")
            assert abs(ratio[p] / ratio.drop(p).median() - 1.08) < 0.01, x.anomaly_id
        else:  # pragma: no cover
            raise AssertionError(f"unknown kind {x.kind}")


def test_labelled_anomalies_are_in_the_readings(demo):
    _check_anomalies_in_readings(demo[0])


# --------------------------------------------------------------------------- balances and ledger
def _balance(out: Path) -> pd.DataFrame:
    r, meters = _readings(out), _csv(out, "meters.csv")
    main_id = meters.loc[meters.is_main == "true", "meter_id"].iloc[0]
    main = _cumulative_monthly(r[r.meter_id == main_id], 99_999_999)
    s = r[r.meter_id.isin(_elec_sub(meters))].drop_duplicates(["meter_id", "ts"])
    sub = s.groupby(s.ts.dt.strftime("%Y-%m")).value.sum()
    return pd.DataFrame({"main": main, "sub": sub})


@pytest.mark.parametrize("which", ["demo", "demo60"])
def test_sub_meters_balance_main_on_clean_months(which, request):
    out = request.getfixturevalue(which)[0]
    bal = _balance(out)
    clean = _clean_elec_months(out)
    assert len(clean) >= 3
    loss = (bal["main"] - bal["sub"]) / bal["main"]
    assert ((loss[clean] > 0.01) & (loss[clean] < 0.03)).all(), loss[clean]
    # and never wildly off even with anomalies
    assert ((loss > -0.01) & (loss < 0.05)).all()


def test_ledger_electricity_equals_main_meter(demo):
    out, _ = demo
    meters, a = _csv(out, "meters.csv"), _anomalies(out)
    main_id = meters.loc[meters.is_main == "true", "meter_id"].iloc[0]
    con = duckdb.connect()
    q = f"""
        WITH r AS (SELECT DISTINCT ts, value FROM read_parquet('{out / "readings.parquet"}')
                   WHERE meter_id = '{main_id}'),
             d AS (SELECT ts, value, lead(value) OVER (ORDER BY ts) AS nxt FROM r)
        SELECT strftime(ts, '%Y-%m') AS period,
               sum(CASE WHEN nxt >= value THEN nxt - value
                        WHEN value > 0.9 * 99999999 AND nxt < 0.1 * 99999999 THEN nxt + 99999999 - value
                        ELSE nxt END) / 1000 AS mwh
        FROM d WHERE nxt IS NOT NULL GROUP BY 1 ORDER BY 1"""
    got = con.sql(q).df().set_index("period")["mwh"]
    act = _csv(out, "activity.csv")
    led = act[(act.source == "purchased_electricity") & (act.item == "grid")]
    assert (led.node_id == "ENT").all() and (led.unit == "MWh").all() and (led.data_tier == "primary").all()
    assert (led.document == "State Grid monthly bill").all()
    led = led.set_index("period")["quantity"].astype(float)
    assert list(led.index) == list(got.index)
    reset_months = set(a.loc[(a.meter_id == main_id) & (a.kind == "counter_reset"), "ts_start"].dt.strftime("%Y-%m"))
    assert reset_months
    diff = led - got
    for p, d in diff.items():
        if p in reset_months:  # part of one 15-min interval is lost at the reset
            assert 0 < d < 0.002 * led[p], (p, d)
        else:
            assert abs(d) <= 0.0006, (p, d)
    assert 5_000 < led.min() and led.max() < 12_000
    assert (led.between(9_000, 11_500)).sum() >= 10


def test_ledger_gas_and_heat_match_meters(demo):
    out, _ = demo
    r, meters, act = _readings(out), _csv(out, "meters.csv"), _csv(out, "activity.csv")
    gas = pd.Series(0.0, index=sorted(act.period.unique()))
    for mid in meters.loc[meters.item == "natural_gas", "meter_id"]:
        gas = gas.add(_cumulative_monthly(r[r.meter_id == mid], 9_999_999), fill_value=0)
    led = act[act.item == "natural_gas"].set_index("period")
    assert (led.unit == "10^4 Nm3").all() and (led.source == "combustion").all()
    assert np.allclose(led.quantity.astype(float), gas[led.index] / 1e4, atol=1e-5)
    heat_id = meters.loc[meters.source == "exported_heat", "meter_id"].iloc[0]
    heat = _cumulative_monthly(r[r.meter_id == heat_id], 9_999_999)
    led = act[act.source == "exported_heat"].set_index("period")
    assert (led.node_id == "F05").all() and (led.unit == "GJ").all()
    assert np.allclose(led.quantity.astype(float), heat[led.index], atol=0.006)


def test_ledger_and_production(demo):
    out, _ = demo
    act, mo = _csv(out, "activity.csv"), _csv(out, "monthly.csv")
    assert act.record_id.is_unique
    assert set(act.source) <= {"combustion", "process", "purchased_electricity", "purchased_heat",
                               "exported_electricity", "exported_heat"}
    assert set(act.data_tier) <= {"primary", "secondary", "proxy"}
    periods = sorted(mo.period.unique())
    assert len(periods) == 12 and periods[0] == "2025-01" and periods[-1] == "2025-12"
    clinker = mo[mo.node_id == "F01"].set_index("period").clinker_t.astype(float)
    cement = mo[mo.node_id == "F02"].set_index("period").cement_t.astype(float)
    va = mo[mo.node_id == "ENT"].set_index("period").value_added_10k_cny.astype(float)
    assert (mo.loc[mo.node_id != "F01", "clinker_t"] == "").all()
    assert (mo.loc[mo.node_id != "ENT", "value_added_10k_cny"] == "").all()
    assert clinker.between(50_000, 160_000).all() and (clinker.between(120_000, 155_000)).sum() >= 10
    assert (clinker / cement).between(0.72, 0.78).all()
    assert va.between(2_000, 4_000).all() and va.between(2_500, 4_000).sum() >= 10

    coal = act[act.item == "raw_coal"].set_index("period")
    assert (coal.node_id == "F01.W02.P01").all() and (coal.ncv_unit == "GJ/t").all()
    assert coal.ncv.astype(float).between(21.5, 23.5).all()
    assert coal.document.str.match(r"coal ledger \+ lab NCV report \d{4}-\d{2}$").all()
    assert (coal.carbon_content == "").all() and (coal.oxidation_rate == "").all()
    ratio = coal.quantity.astype(float) / clinker[coal.index]
    assert ratio.between(0.105, 0.135).all() and ratio.median() > 0.11

    lime = act[act.item == "limestone"].set_index("period")
    assert (lime.source == "process").all() and lime.purity.astype(float).between(0.92, 0.95).all()
    assert (lime.quantity.astype(float) / clinker[lime.index]).between(1.2, 1.3).all()

    diesel = act[act.item == "diesel"]
    assert (diesel.data_tier == "secondary").all() and diesel.quantity.astype(float).between(15, 25).all()
    assert (diesel.document == "fuel card statement").all() and diesel.node_id.str.startswith("F03").all()

    sf6 = act[act.item == "sf6"]
    assert len(sf6) == 1 and sf6.iloc[0].gas == "SF6" and sf6.iloc[0].period == periods[-1]
    assert float(sf6.iloc[0].quantity) == 0.003 and sf6.iloc[0].document == "switchgear refill record"
    assert (act.loc[act.item != "sf6", "gas"] == "CO2").all()
    assert len(act) == 6 * 12 + 1


def test_coal_scales_match_ledger_on_clean_months(demo):
    out, _ = demo
    r, meters, act, a = _readings(out), _csv(out, "meters.csv"), _csv(out, "activity.csv"), _anomalies(out)
    ids = meters.loc[meters.item == "raw_coal", "meter_id"]
    dirty = set(a.loc[a.meter_id.isin(ids), "ts_start"].dt.strftime("%Y-%m"))
    c = r[r.meter_id.isin(ids)]
    scale = c.groupby(c.ts.dt.strftime("%Y-%m")).value.sum()
    led = act[act.item == "raw_coal"].set_index("period").quantity.astype(float)
    clean = [p for p in led.index if p not in dirty]
    assert len(clean) >= 8
    assert ((scale[clean] / led[clean] - 1).abs() < 0.005).all()


# --------------------------------------------------------------------------- meters=N
def test_meters_n(demo, demo60):
    out, _ = demo
    out60, res = demo60
    m = _csv(out60, "meters.csv")
    assert len(m) == 60 and res["counts"]["meters"] == 60 and m.meter_id.is_unique
    b = _csv(out60, "boundary.csv")
    assert (b.level == "meter").sum() == 60
    assert set(_anomalies(out60).kind) == set(ANOMALY_KINDS)
    assert sorted(_readings(out60).meter_id.unique()) == sorted(m.meter_id)
    # meters whose load is not split keep their series; the ledger does not depend on N
    r0, r60 = _readings(out), _readings(out60)
    for mid in ("M0001", "M0032", "M0033", "M0036"):
        a0 = r0[r0.meter_id == mid].reset_index(drop=True)
        a60 = r60[r60.meter_id == mid].reset_index(drop=True)
        pd.testing.assert_frame_equal(a0, a60)
    assert (out / "activity.csv").read_bytes() == (out60 / "activity.csv").read_bytes()
    # same labels (descriptions quote values of split meters, which scale with their share)
    keep = ["anomaly_id", "meter_id", "kind", "ts_start", "ts_end", "n_readings"]
    pd.testing.assert_frame_equal(_csv(out, "anomalies.csv")[keep], _csv(out60, "anomalies.csv")[keep])


def test_labelled_anomalies_are_in_the_readings_60(demo60):
    _check_anomalies_in_readings(demo60[0])


# --------------------------------------------------------------------------- the other demo enterprises (issue 11)
#: enterprise_id → (identifier prefix, sector, GB/T 4754 code, GB/T 2260 county in the USCC, kinds planted)
PLANTS = {
    "demo-steel": ("88.123.4568", "steel", "C3130", "330503", set(ANOMALY_KINDS)),
    "demo-textile": ("88.123.4569", "textile", "C1713", "330502", set(ANOMALY_KINDS) - {"meter_replacement"}),
}
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _plant_dir(demo, eid: str) -> Path:
    return demo[0] / "enterprises" / eid


def _uscc_valid(code: str) -> bool:
    """GB 32100-2015: 18 characters; check = (31 − Σ value × 3^i mod 31) mod 31 over the first 17."""
    if len(code) != 18 or any(c not in USCC_ALPHABET for c in code):
        return False
    s = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(code[:17]))
    return USCC_ALPHABET[(31 - s % 31) % 31] == code[17]


def _org_check(body: str) -> str:
    """GB 11714 check character of an 8-character organisation-code body."""
    s = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, [3, 7, 9, 10, 5, 8, 4, 2]))
    c = 11 - s % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def _dirty_months(out: Path, meter_ids) -> set[str]:
    """Months in which one of ``meter_ids`` carries an anomaly label (genuine rollovers do not count)."""
    a = _anomalies(out)
    a = a[a.meter_id.isin(set(meter_ids)) & (a.kind != "rollover")]
    return set(a.ts_start.dt.strftime("%Y-%m")) | set(a.ts_end.dt.strftime("%Y-%m"))


def _interval_monthly(r: pd.DataFrame, ids) -> pd.Series:
    s = r[r.meter_id.isin(set(ids))].drop_duplicates(["meter_id", "ts"])
    return s.groupby(s.ts.dt.strftime("%Y-%m")).value.sum()


def _register_monthly(r: pd.DataFrame, meters: pd.DataFrame, ids) -> pd.Series:
    total = None
    for mid in ids:
        m = _cumulative_monthly(r[r.meter_id == mid], float(meters.set_index("meter_id").at[mid, "rollover"]))
        total = m if total is None else total.add(m, fill_value=0)
    return total


def test_cement_uscc_check_character(demo):
    e = json.loads((demo[0] / "enterprise.json").read_text(encoding="utf-8"))
    assert _uscc_valid(e["unified_social_credit_code"])


@pytest.mark.parametrize("eid", PLANTS)
def test_plant_files_and_enterprise_json(demo, eid):
    out, res = _plant_dir(demo, eid), demo[1]["enterprises"][eid]
    for name in CSV_FILES + ("readings.parquet", "enterprise.json", "README.md"):
        assert (out / name).is_file(), name
    c = res["counts"]
    assert c["meters"] == len(_csv(out, "meters.csv")) and c["anomalies"] == len(_csv(out, "anomalies.csv"))
    assert c["readings"] == pq.ParquetFile(out / "readings.parquet").metadata.num_rows
    assert c["activity"] == len(_csv(out, "activity.csv")) and c["monthly"] == len(_csv(out, "monthly.csv"))
    prefix, sector, code, county, _ = PLANTS[eid]
    e = json.loads((out / "enterprise.json").read_text(encoding="utf-8"))
    assert e["enterprise_id"] == eid and e["sector"] == sector and e["industry_code"] == code
    assert e["identifier_prefix"] == prefix and e["region"] == "CN-ZJ" and e["timezone"] == "Asia/Shanghai"
    assert e["period_start"] == "2025-01-01" and e["period_end"] == "2025-12-31" and e["generator"]["seed"] == 20251
    uscc = e["unified_social_credit_code"]
    assert uscc[:2] == "91" and uscc[2:8] == county and _uscc_valid(uscc)
    assert uscc[16] == _org_check(uscc[8:16])
    assert e["reporting_standard"] == "GB/T 32150" and e["sector_standard"].startswith("GB/T 32151.")
    # products name the product columns of monthly.csv; each row fills only its own column
    mo = _csv(out, "monthly.csv")
    cols = [p["column"] for p in e["products"]]
    assert list(mo.columns) == ["period", "node_id", *cols, "value_added_10k_cny"]
    for p in e["products"]:
        assert set(p) == {"product", "column", "unit", "name_zh", "name_en"} and p["unit"] == "t"
        filled = mo[mo[p["column"]] != ""]
        assert len(filled) == 12 and filled.node_id.nunique() == 1 and (filled[p["column"]].astype(float) > 0).all()
    assert (mo.loc[mo.node_id == "ENT", "value_added_10k_cny"].astype(float) > 0).all()
    assert (mo.loc[mo.node_id != "ENT", "value_added_10k_cny"] == "").all()
    assert "异常" in (out / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("eid", PLANTS)
def test_plant_boundary_and_meters(demo, eid):
    out = _plant_dir(demo, eid)
    prefix = PLANTS[eid][0]
    b, m = _csv(out, "boundary.csv"), _csv(out, "meters.csv")
    level = dict(zip(b.node_id, b.level))
    assert b.node_id.is_unique and list(b.loc[b.parent_id == "", "node_id"]) == ["ENT"]
    for _, row in b[b.parent_id != ""].iterrows():
        assert row.parent_id in level, row.node_id
        if row.level != "meter":
            assert LEVELS.index(row.level) == LEVELS.index(level[row.parent_id]) + 1, row.node_id
    assert set(b.classification) - {""} <= CLASSES and "main_production" in set(b.classification)
    assert (b.identifier == prefix + "/" + np.where(b.level == "meter", "meter.", "node.") + b.node_id).all()
    # the meter register
    assert m.meter_id.is_unique and m.serial.is_unique
    assert set(m.register) == {"interval", "cumulative"}
    assert ((m.rollover == "") == (m.register == "interval")).all()
    assert set(m.node_id) <= set(level) and (b.loc[b.level == "meter", "parent_id"].to_numpy() == m.node_id.to_numpy()).all()
    main = m[m.is_main == "true"]
    assert (main.node_id == "ENT").all() and (main.register == "cumulative").all()
    assert not main.duplicated(["source", "item"]).any()
    assert {"purchased_electricity", "combustion"} <= set(main.source)
    gas = m[m.item == "natural_gas"]
    assert (gas.unit == "Nm3").all() and (gas.source == "combustion").all() and set(gas.register) == {"interval", "cumulative"}
    assert (m.loc[m.item == "grid", "source"] == "purchased_electricity").all()
    if eid == "demo-textile":  # purchased steam: a billing heat totaliser and interval sub-meters, in GJ
        steam = m[m.source == "purchased_heat"]
        assert (steam.item == "heat").all() and (steam.unit == "GJ").all()
        assert list(steam.loc[steam.is_main == "true", "register"]) == ["cumulative"]
        assert (steam.loc[steam.is_main == "false", "register"] == "interval").all() and len(steam) >= 4
    else:  # the reheating furnace's gas meter is replaced
        new = m[m.replaces != ""]
        assert len(new) == 1 and new.iloc[0].node_id == "F02.W01.P01"
        old = m.set_index("meter_id").loc[new.iloc[0].replaces]
        assert old.removed == new.iloc[0].installed and old["item"] == "natural_gas"


@pytest.mark.parametrize("eid", PLANTS)
def test_plant_anomalies_are_in_the_readings(demo, eid):
    out = _plant_dir(demo, eid)
    assert set(_anomalies(out).kind) == PLANTS[eid][4]
    _check_anomalies_in_readings(out)


def test_steel_main_meter_register_arithmetic(demo):
    """Σ consumption of a cumulative register = last − first + (rollovers × capacity) = Σ monthly bills."""
    out = _plant_dir(demo, "demo-steel")
    r, m, act, a = _readings(out), _csv(out, "meters.csv"), _csv(out, "activity.csv"), _anomalies(out)
    main = m[(m.is_main == "true") & (m.item == "grid")].iloc[0]
    assert main.unit == "MWh" and main.rollover == "999999"
    g = r[r.meter_id == main.meter_id].sort_values("ts")
    n_roll = int(((a.meter_id == main.meter_id) & (a.kind == "rollover")).sum())
    assert n_roll >= 1 and set(a.loc[a.meter_id == main.meter_id, "kind"]) == {"rollover", "gap", "duplicate"}
    assert int((np.diff(g.drop_duplicates("ts").value.to_numpy()) < 0).sum()) == n_roll
    through = g.value.iloc[-1] + n_roll * 999_999 - g.value.iloc[0]
    led = act[act.record_id.str.endswith("-ELEC")].quantity.astype(float)
    assert len(led) == 12 and (act.loc[led.index, "unit"] == "MWh").all()
    assert abs(through - led.sum()) < 0.02  # registers at 0.01 MWh, bills at 0.001 MWh
    # month by month too (a gap inside a month moves nothing to another month)
    monthly = _cumulative_monthly(g, 999_999)
    bills = act.loc[led.index].set_index("period").quantity.astype(float)
    assert np.allclose(monthly[bills.index], bills, atol=0.011)
    assert 250_000 < led.sum() < 450_000  # ≈ 620 kWh per t of ≈ 0.58 Mt of billets


def test_steel_gas_ledger_equals_gate_meter_and_sub_meters_within_losses(demo):
    out = _plant_dir(demo, "demo-steel")
    r, m, act = _readings(out), _csv(out, "meters.csv"), _csv(out, "activity.csv")
    gas = m[m.item == "natural_gas"]
    gate = _register_monthly(r, m, gas.loc[gas.is_main == "true", "meter_id"])
    sub_cum = gas[(gas.is_main == "false") & (gas.register == "cumulative")]
    sub = _register_monthly(r, m, sub_cum.meter_id).add(
        _interval_monthly(r, gas.loc[gas.register == "interval", "meter_id"]), fill_value=0)
    led = act[act.item == "natural_gas"].assign(q=lambda d: d.quantity.astype(float) * 1e4)
    assert (led.unit == "10^4 Nm3").all() and set(led.node_id) == set(gas.loc[gas.is_main == "false", "node_id"])
    total = led.groupby("period").q.sum()
    # the invoice is the gate meter (3 records rounded to 0.1 Nm3, registers to 0.01 Nm3)
    assert np.allclose(total, gate[total.index], atol=0.3)
    # the sub-meters read 0.4–0.9 % less (metering difference), wherever no sub-meter anomaly intervenes
    clean = [p for p in total.index if p not in _dirty_months(out, gas.loc[gas.is_main == "false", "meter_id"])]
    assert len(clean) >= 6
    loss = gate[clean] / sub[clean] - 1
    assert ((loss > 0.003) & (loss < 0.010)).all(), loss
    # the invoice is allocated by sub-meter: every consumer gets its meter × the same factor
    rf_ids = gas.loc[gas.node_id == "F02.W01.P01", "meter_id"]
    rf = _register_monthly(r, m, rf_ids)
    led_rf = led[led.node_id == "F02.W01.P01"].set_index("period").q
    assert np.allclose(led_rf[clean] / rf[clean], 1 + loss, rtol=2e-3)
    assert 30 < led_rf.sum() / _csv(out, "monthly.csv").rolled_bar_t.replace("", np.nan).astype(float).sum() < 40


def test_textile_steam_ledger_equals_billing_meter_and_sub_meters_within_losses(demo):
    out = _plant_dir(demo, "demo-textile")
    r, m, act = _readings(out), _csv(out, "meters.csv"), _csv(out, "activity.csv")
    steam = m[m.source == "purchased_heat"]
    main = _register_monthly(r, m, steam.loc[steam.is_main == "true", "meter_id"])
    led = act[act.source == "purchased_heat"].set_index("period")
    assert (led.node_id == "ENT").all() and (led.unit == "GJ").all() and (led["item"] == "heat").all()
    assert np.allclose(led.quantity.astype(float), main[led.index], atol=0.02)
    subs = steam.loc[steam.is_main == "false", "meter_id"]
    sub = _interval_monthly(r, subs)
    clean = [p for p in led.index if p not in _dirty_months(out, subs)]
    assert len(clean) >= 8
    loss = main[clean] / sub[clean] - 1
    assert ((loss > 0.015) & (loss < 0.045)).all(), loss  # 2–4 % network losses ± meter noise
    fabric = _csv(out, "monthly.csv").dyed_fabric_t.replace("", np.nan).dropna().astype(float)
    assert 21 <= led.quantity.astype(float).sum() / fabric.sum() <= 26.5  # GJ per t of fabric


@pytest.mark.parametrize("eid", PLANTS)
def test_plant_electricity_sub_meters_balance_main(demo, eid):
    out = _plant_dir(demo, eid)
    r, m = _readings(out), _csv(out, "meters.csv")
    elec = m[m.item == "grid"]
    main = elec[elec.is_main == "true"].iloc[0]
    mainm = _register_monthly(r, m, [main.meter_id]) * (1000 if main.unit == "MWh" else 1)
    sub = _interval_monthly(r, elec.loc[elec.is_main == "false", "meter_id"])
    clean = [p for p in mainm.index if p not in _dirty_months(out, elec.meter_id)]
    assert len(clean) >= 5
    loss = 1 - sub[clean] / mainm[clean]
    assert ((loss > 0.005) & (loss < 0.035)).all(), loss


def test_steel_eaf_heats_follow_the_tariff(demo):
    out = _plant_dir(demo, "demo-steel")
    r, m, mo = _readings(out), _csv(out, "meters.csv"), _csv(out, "monthly.csv")
    eaf_ids = m.loc[m.node_id == "F01.W01.P01", "meter_id"]
    trafo = r[r.meter_id == eaf_ids.iloc[0]].drop_duplicates("ts")
    h = trafo.ts.dt.hour
    sharp = h.isin([9, 10, 15, 16])
    assert trafo.value[sharp].mean() < 0.02 * trafo.value[~sharp].mean()  # no heats in the sharp-peak hours
    on = trafo.value[~sharp & (trafo.value > 0.2 * trafo.value.max())]
    assert on.std() / on.mean() > 0.1  # heat cycles, not a flat load
    billets = mo.billet_t.replace("", np.nan).dropna().astype(float)
    kwh_t = _interval_monthly(r, eaf_ids).sum() / billets.sum()
    assert 375 <= kwh_t <= 415, kwh_t  # 370–395 kWh/t liquid steel ÷ caster yield 97.5–98.5 % + auxiliaries
    rolled = mo.rolled_bar_t.replace("", np.nan).dropna().astype(float)
    assert (rolled.to_numpy() / billets.to_numpy()).min() > 0.965 and (rolled.to_numpy() / billets.to_numpy()).max() < 0.978


def test_plants_inventory_from_their_catalogs(demo):
    from workbench.inventory.compute import compute_inventory
    from workbench.lake.catalog import open_catalog, write_demo_catalog

    for eid in PLANTS:
        out = _plant_dir(demo, eid)
        ent = json.loads((out / "enterprise.json").read_text(encoding="utf-8"))
        inv = compute_inventory(open_catalog(write_demo_catalog(out / "catalog.yaml", enterprise=ent)),
                                "2025-01", "2025-12")
        act = _csv(out, "activity.csv")
        # by hand: Zhejiang's 2023 grid factor 0.4974 tCO2/MWh (latest ≤ 2025), heat 0.11 tCO2/GJ
        mwh = act.loc[act["item"] == "grid", "quantity"].astype(float).sum()
        assert inv.summary["by_source"]["purchased_electricity"] == pytest.approx(mwh * 0.4974, rel=1e-9)
        gj = act.loc[act.source == "purchased_heat", "quantity"].astype(float).sum()
        assert inv.summary["by_source"]["purchased_heat"] == pytest.approx(gj * 0.11, rel=1e-9)
        assert inv.summary["by_source"]["process"] > 0
        assert (inv.meter_check.difference_pct.abs() < 0.05).all(), inv.meter_check


def test_plants_are_deterministic_and_independent_of_the_cement_meters(demo, demo60, tmp_path):
    for eid in PLANTS:
        a, b = _plant_dir(demo, eid), _plant_dir(demo60, eid)
        for name in CSV_FILES + ("enterprise.json", "README.md"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), (eid, name)
        assert pq.read_table(a / "readings.parquet").equals(pq.read_table(b / "readings.parquet"))
    res = generate(tmp_path / "t", plants=("textile",), seed=7)
    assert not (tmp_path / "t" / "readings.parquet").exists() and list(res["enterprises"]) == ["demo-textile"]
    other = tmp_path / "t" / "enterprises" / "demo-textile"
    assert (other / "activity.csv").read_bytes() != (_plant_dir(demo, "demo-textile") / "activity.csv").read_bytes()
    with pytest.raises(ValueError, match="unknown demo plant"):
        generate(tmp_path / "x", plants=("paper",))


def test_cli_generate_writes_a_catalog_per_enterprise(tmp_path):
    from click.testing import CliRunner

    from workbench.cli.main import main
    from workbench.lake.catalog import open_catalog

    res = CliRunner().invoke(main, ["demo", "generate", "--out", str(tmp_path), "--only", "steel"])
    assert res.exit_code == 0, res.output
    folder = tmp_path / "enterprises" / "demo-steel"
    assert "demo-steel" in res.output and not (tmp_path / "catalog.yaml").exists()
    cat = open_catalog(folder / "catalog.yaml")
    assert cat.metadata["enterprise"]["enterprise_id"] == "demo-steel"
    assert len(cat["readings"].read()) > 100_000 and (folder / "factors.parquet").is_file()
