"""Scenario configurations (YAML or a dict) read to the levers of workbench.models.scenarios, their
errors in one line, and ``workbench models scenarios`` on the small lake of ``tests/status_lake.py``.

The CLI's figures are worked by hand as in tests/models/test_scenarios.py: ent-a burns 2.5 万Nm3 of
natural gas on F01 in March 2026 (389.31 GJ/万Nm3, 15.3 tC/TJ, 99 % oxidised: GB/T 32151.22-2024 Table
C.1) and buys 3 + 2 MWh of grid electricity at 0.5306 tCO2/MWh (MEE/NBS national 2023).  The measures:
half the electricity bought green (EF 0) at 0.70 元/kWh against 0.65 元/kWh; a 10 % efficiency gain on
all energy for 12,000 元/year of operating cost, gas at 3 元/Nm3.
"""
from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from status_lake import build as build_small_lake

from workbench.cli.main import main
from workbench.models.scenario_config import (
    ScenarioConfig,
    config_from_levers,
    levers_from_config,
    load_config,
    prices_from_config,
)
from workbench.models.scenarios import (
    Cost,
    EfficiencyGain,
    FuelSwitch,
    GreenElectricity,
    OnsitePV,
    ScenarioError,
)

SPEC = {
    "prices": {"natural_gas": "3.6 元/Nm3", "grid": "0.65 元/kWh", "green_electricity": "0.68 元/kWh",
               "raw_coal": "900 元/t"},
    "measures": {
        "kiln gas": {"lever": "fuel_switch", "from_item": "raw_coal", "to_item": "natural_gas", "share": 0.2,
                     "nodes": ["F01"], "cost": {"capex_cny": 2.0e6, "lifetime_years": 10, "discount_rate": 0.08}},
        "rooftop PV": {"lever": "onsite_pv", "capacity_kwp": 5000, "yield_kwh_per_kwp": 1000,
                       "monthly_profile": [0.05, 0.06, 0.08, 0.09, 0.1, 0.1, 0.11, 0.11, 0.09, 0.08, 0.07, 0.06],
                       "cost": {"capex_cny": 1.75e7, "lifetime_years": 25, "discount_rate": 0.06,
                                "annual_opex_cny": 1.5e5}},
        "green power": {"lever": "green_electricity", "annual_mwh": 10000},
        "package": [{"lever": "efficiency", "saving": 0.05, "nodes": "F02", "items": ["grid"]},
                    {"lever": "green_electricity", "share": 0.3, "residual_mix": True}],
    },
}
EXPECTED = {
    "kiln gas": (FuelSwitch(from_item="raw_coal", to_item="natural_gas", share=0.2, nodes=("F01",),
                            cost=Cost(capex_cny=2e6, lifetime_years=10, discount_rate=0.08)),),
    "rooftop PV": (OnsitePV(capacity_kwp=5000, yield_kwh_per_kwp=1000,
                            monthly_profile=(0.05, 0.06, 0.08, 0.09, 0.1, 0.1, 0.11, 0.11, 0.09, 0.08, 0.07, 0.06),
                            cost=Cost(capex_cny=1.75e7, lifetime_years=25, discount_rate=0.06,
                                      annual_opex_cny=150000)),),
    "green power": (GreenElectricity(annual_mwh=10000),),
    "package": (EfficiencyGain(saving=0.05, nodes=("F02",), items=("grid",)),
                GreenElectricity(share=0.3, residual_mix=True)),
}


def test_a_dict_reads_to_the_same_dataclasses_and_back():
    measures = levers_from_config(SPEC)
    assert measures == EXPECTED and list(measures) == list(SPEC["measures"])     # the file's order
    assert all(isinstance(v, tuple) for v in measures.values())
    assert isinstance(measures["rooftop PV"][0].monthly_profile, tuple)
    assert prices_from_config(SPEC) == SPEC["prices"]
    cfg = load_config(SPEC)
    assert cfg == ScenarioConfig(EXPECTED, SPEC["prices"], "package")
    assert cfg.package == EXPECTED["kiln gas"] + EXPECTED["rooftop PV"] + EXPECTED["green power"] + EXPECTED["package"]
    # levers → a configuration → YAML text → levers: equal, and only the keys that differ from the defaults
    back = config_from_levers(EXPECTED, SPEC["prices"], name="方案 A")
    assert back["measures"]["green power"] == {"lever": "green_electricity", "annual_mwh": 10000}
    assert back["measures"]["package"][0] == {"lever": "efficiency", "saving": 0.05, "nodes": ["F02"],
                                              "items": ["grid"]}
    again = load_config(yaml.safe_load(yaml.safe_dump(back, allow_unicode=True)))
    assert again == ScenarioConfig(EXPECTED, SPEC["prices"], "方案 A")
    # no prices: None (evaluate then leaves the energy bills out); efficiency_gain is efficiency
    assert prices_from_config({"measures": {"a": {"lever": "efficiency_gain", "saving": 0.1}}}) is None
    assert load_config({"measures": {"a": {"lever": "efficiency_gain", "saving": 0.1}}}).measures == {
        "a": (EfficiencyGain(saving=0.1),)}


YAML_ZH = """\
# 2026 年减排方案（示例）
name: 二〇二六年方案
prices:
  原煤: "900 元/t"          # 库中别名：原煤 → raw_coal
  天然气: 3.6 元/Nm3
  电力: [0.65, 元/kWh]
measures:
  窑头煤改气:
    lever: fuel_switch
    from_item: 原煤
    to_item: 天然气
    share: 0.2
    nodes: [F01]
    cost: {capex_cny: 2.0e6, lifetime_years: 10, discount_rate: 0.08}    # 2.0e6: text to PyYAML, a number here
  屋顶光伏: {lever: onsite_pv, annual_mwh: 5000, name: 一期光伏}
"""


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_a_yaml_file_with_chinese_text(tmp_path, encoding):
    path = tmp_path / "方案.yaml"
    path.write_bytes(YAML_ZH.encode(encoding))
    cfg = load_config(path)
    assert cfg.name == "二〇二六年方案"
    assert list(cfg.measures) == ["窑头煤改气", "屋顶光伏"]
    assert cfg.measures["窑头煤改气"] == (FuelSwitch(from_item="原煤", to_item="天然气", share=0.2, nodes=("F01",),
                                                 cost=Cost(capex_cny=2e6, lifetime_years=10, discount_rate=0.08)),)
    assert cfg.measures["屋顶光伏"] == (OnsitePV(annual_mwh=5000, name="一期光伏"),)
    assert cfg.measures["屋顶光伏"][0].describe() == "一期光伏"
    # the price keys become the library's item codes; the prices stay as written
    assert cfg.prices == {"raw_coal": "900 元/t", "natural_gas": "3.6 元/Nm3", "grid": [0.65, "元/kWh"]}
    assert load_config(str(path)) == cfg


def _measure(**lever):
    return {"measures": {"窑头煤改气": lever}}


@pytest.mark.parametrize("spec, message", [
    (_measure(lever="fuel_swich"), ("measure '窑头煤改气': unknown lever 'fuel_swich'; did you mean 'fuel_switch'? "
                                   "kinds: efficiency, efficiency_gain, fuel_switch, green_electricity, onsite_pv")),
    (_measure(share=0.2), "measure '窑头煤改气': the key 'lever' is missing"),
    (_measure(lever="fuel_switch", from_item="raw_coal", shares=0.2),
     ("measure '窑头煤改气': unknown key 'shares' for fuel_switch; did you mean 'share'? allowed: cost, "
     "efficiency_ratio, from_item, name, nodes, share, to_item")),
    (_measure(lever="fuel_switch", share="20 %"), "measure '窑头煤改气' (fuel_switch).share: '20 %' is not a number"),
    (_measure(lever="fuel_switch", share=True), "(fuel_switch).share: True is not a number"),
    (_measure(lever="fuel_switch", from_item=3), "(fuel_switch).from_item: 3 is not text"),
    (_measure(lever="fuel_switch", nodes={"F01": 1}), "(fuel_switch).nodes: {'F01': 1} is not a list"),
    (_measure(lever="fuel_switch", nodes=["F01", 2]), "(fuel_switch).nodes[1]: 2 is not text"),
    (_measure(lever="fuel_switch", from_item="raw_col"), "(fuel_switch).from_item: unknown item 'raw_col'"),
    (_measure(lever="efficiency", saving=0.1, items=["grid", "steem"]), "(efficiency).items: unknown item 'steem'"),
    (_measure(lever="onsite_pv", annual_mwh=10, monthly_profile=[0.5, "half"]),
     "(onsite_pv).monthly_profile[1]: 'half' is not a number"),
    (_measure(lever="green_electricity", share=0.5, residual_mix="yes"),
     "(green_electricity).residual_mix: 'yes' is not true or false"),
    (_measure(lever="onsite_pv", annual_mwh=10, cost={"capex": 1e6}),
     ("(onsite_pv).cost: unknown key 'capex'; did you mean 'capex_cny'? allowed: capex_cny, lifetime_years, "
     "discount_rate, annual_opex_cny")),
    (_measure(lever="onsite_pv", annual_mwh=10, cost={"capex_cny": 1e6}),
     "(onsite_pv).cost: an investment of 1,000,000 元 needs its lifetime_years and discount_rate"),
    (_measure(lever="onsite_pv", annual_mwh=10, cost=5), "(onsite_pv).cost: write the cost as a mapping"),
    ({"measures": {"包": [{"lever": "onsite_pv", "annual_mwh": 10}, {"lever": "green", "share": 0.5}]}},
     "measure '包', lever 2: unknown lever 'green'"),
    ({"measures": {"包": []}}, "measure '包': an empty list of levers"),
    ({"measures": {"包": "onsite_pv"}}, "measure '包': write a lever as a mapping"),
    ({"measure": {}}, "unknown key 'measure' at the top of the configuration; did you mean 'measures'?"),
    ({"prices": {}}, "the configuration needs 'measures'"),
    ({"prices": {"grid": "cheap"}, "measures": {"a": {"lever": "efficiency", "saving": 0.1}}},
     "prices.grid: price 'cheap': write a number and a unit"),
    ({"prices": {"gird": "0.65 元/kWh"}, "measures": {"a": {"lever": "efficiency", "saving": 0.1}}},
     "prices.gird: unknown item 'gird'"),
    ({"prices": {"grid": "0.65 元/kWh", "电力": "0.7 元/kWh"}, "measures": {"a": {"lever": "efficiency"}}},
     "prices.电力: grid is priced twice"),
    ({"prices": ["grid"], "measures": {"a": {"lever": "efficiency"}}}, "prices: write a mapping"),
    (["a list"], "a scenario configuration is a mapping"),
])
def test_errors_name_the_measure_and_the_key_in_one_line(spec, message):
    with pytest.raises(ScenarioError) as err:
        load_config(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("measures:\n  a: {lever: efficiency\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"bad.yaml: not valid YAML: .* at line 3"):
        load_config(bad)
    bad.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="bad.yaml: a scenario configuration is a YAML mapping"):
        load_config(bad)
    bad.write_text("measures:\n  a: {lever: efficiency, saving: lots}\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"^.*bad.yaml: measure 'a' \(efficiency\).saving: 'lots' is not a number$"):
        load_config(bad)
    bad.write_bytes(b"\xff\xfe\x00\x00 binary \x81\x00")
    with pytest.raises(ScenarioError, match="not text in UTF-8 or GB18030"):
        load_config(bad)


# ------------------------------------------------------------------------------------------- the CLI
GAS_T = 2.5 * 389.31 * 15.3e-3 * 0.99 * 44 / 12       # 54.0547… tCO2
GRID = 0.5306                                         # tCO2/MWh
TOTAL = GAS_T + 5.0 * GRID

CLI_YAML = """\
name: 两项措施
prices: {天然气: "3 元/Nm3", 电力: "0.65 元/kWh", green_electricity: "0.70 元/kWh"}
measures:
  绿电一半: {lever: green_electricity, share: 0.5}
  节能10%: {lever: efficiency, saving: 0.1, cost: {annual_opex_cny: 12000}}
"""


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scenario-cli")
    build_small_lake(tmp)
    return tmp / "lake"


def _run(*args):
    return CliRunner().invoke(main, ["models", "scenarios", *map(str, args)])


def test_cli_prints_the_mac_table_and_the_package(small_root, tmp_path):
    cfg = tmp_path / "措施.yaml"
    cfg.write_text(CLI_YAML, encoding="utf-8")
    base = ["--lake", small_root, "--enterprise", "ent-a", "--start", "2026-03", "--end", "2026-04", "--config", cfg]
    r = _run(*base, "--out", tmp_path / "mac.csv", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    eff, green = out["measures"]
    # the efficiency gain first: 2,000 元 of O&M over two months, 7,500 元 of gas (2,500 Nm3 × 3 元) and
    # 500 kWh × 0.65 元 saved; it avoids 10 % of everything
    assert eff["measure"] == "节能10%" and eff["avoided_tco2e"] == pytest.approx(0.1 * TOTAL)
    assert eff["cost_cny"] == pytest.approx(12000 * 2 / 12 - 7500 - 500 * 0.65)
    assert eff["cost_per_tco2e"] == pytest.approx(-5825 / (0.1 * TOTAL))
    assert eff["incremental_tco2e"] == pytest.approx(0.1 * TOTAL)
    # green: 2.5 MWh re-priced by 0.05 元/kWh alone; after the gain half of 4.5 MWh, 2.25 MWh
    assert green["measure"] == "绿电一半" and green["avoided_tco2e"] == pytest.approx(2.5 * GRID)
    assert green["cost_cny"] == pytest.approx(2500 * 0.05) and green["on_curve"] is True
    assert green["incremental_tco2e"] == pytest.approx(2.25 * GRID)
    assert green["incremental_cost_per_tco2e"] == pytest.approx(2250 * 0.05 / (2.25 * GRID))
    assert green["cumulative_after_tco2e"] == pytest.approx(0.9 * GAS_T + 2.25 * GRID)
    # the package acts demand first (the gain, then half the 4.5 MWh left green), whatever the file's order:
    # cost 2,000 − 7,500 + (2.25 − 5) MWh × 650 + 2.25 MWh × 700 元
    pkg = out["package"]
    assert pkg["scenario"] == "两项措施" and pkg["months"] == 2
    assert pkg["before_tco2e"] == pytest.approx(TOTAL)
    assert pkg["after_tco2e"] == pytest.approx(0.9 * GAS_T + 2.25 * GRID)
    assert pkg["avoided_pct"] == pytest.approx(100 * (TOTAL - 0.9 * GAS_T - 2.25 * GRID) / TOTAL)
    assert pkg["cost_cny"] == pytest.approx(2000 - 7500 - 2.75 * 650 + 2.25 * 700)
    # the small lake has no value added: no carbon efficiency, said as null
    assert pkg["value_added"] is None and pkg["carbon_efficiency_after"] is None
    assert out["package_levers"] == ["green electricity", "efficiency gain whole plant"]
    import pandas as pd

    csv = pd.read_csv(tmp_path / "mac.csv")
    assert list(csv["measure"]) == ["节能10%", "绿电一半"]
    assert csv["incremental_tco2e"].tolist() == pytest.approx([0.1 * TOTAL, 2.25 * GRID])
    # the text: the table and the package's two lines
    r = _run(*base)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "ent-a 2026-03..2026-04 (2 months / 个月)"          # the lake has no enterprise record
    assert lines[1].split() == ["measure", "措施", "avoided", "tCO2e", "cost", "元", "元/tCO2e", "incremental", "tCO2e",
                                "incremental", "元/tCO2e"]
    assert lines[2].split() == ["节能10%", f"{0.1 * TOTAL:,.1f}", "-5,825.0", f"{-5825 / (0.1 * TOTAL):,.1f}",
                                f"{0.1 * TOTAL:,.1f}", f"{-5825 / (0.1 * TOTAL):,.1f}"]
    after = 0.9 * GAS_T + 2.25 * GRID
    assert (f"package / 全部措施 (2 lever(s), demand first, then on-site supply, then purchases): {TOTAL:,.1f} → {after:,.1f} tCO2e, "
            f"avoided / 减排 {TOTAL - after:,.1f} tCO2e ({100 * (TOTAL - after) / TOTAL:.2f} %)") in lines
    assert "carbon efficiency / 碳效率 - → - tCO2e/万元; cost / 成本 -5,712 元" in r.output


def test_cli_errors_are_one_line(small_root, tmp_path):
    cfg = tmp_path / "bad.yaml"
    base = ["--lake", small_root, "--enterprise", "ent-a", "--start", "2026-03", "--end", "2026-04", "--config", cfg]

    def err(text, *extra):
        cfg.write_text(text, encoding="utf-8")
        r = _run(*(extra or base))
        assert r.exit_code == 2, r.output
        assert r.output.startswith("error: ") and r.output.count("\n") == 1, r.output
        return r.output

    assert "measure 'a': unknown key 'savings' for efficiency; did you mean 'saving'?" in err(
        "measures:\n  a: {lever: efficiency, savings: 0.1}\n")
    # a measure the inventory cannot take: named, though the MAC curve evaluates them all
    out = err("measures:\n  ok: {lever: efficiency, saving: 0.1}\n"
              "  coal: {lever: fuel_switch, from_item: raw_coal, to_item: natural_gas}\n")
    assert "measure 'coal': fuel switch: no raw_coal is burnt at any node in 2026-03..2026-04" in out
    assert "no price for grid" in err("prices: {natural_gas: 3 元/Nm3}\nmeasures:\n  a: {lever: efficiency, saving: 0.1}\n")
    ok = "measures:\n  a: {lever: efficiency, saving: 0.1}\n"
    assert "--start/--end: bad period range" in err(ok, *base[:5], "2026-13", *base[6:])
    assert "nobody 2026-03..2026-04: the lake of nobody has no boundary" in err(ok, *base[:3], "nobody", *base[4:])
    r = _run(*base[:-1], tmp_path / "missing.yaml")
    assert r.exit_code == 2 and "does not exist" in r.output
