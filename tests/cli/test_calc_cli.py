"""`workbench calc`: quick calculation from the activity-data template (CSV/XLSX).

Bad input exits with code 2 and a message naming the file, the spreadsheet row (header = row 1)
and the column.  Totals are checked against hand computations from GB/T 32150's formulas.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from workbench.accounting import SOURCES
from workbench.cli.main import main
from workbench.inventory.quickcalc import quick_calc, template_path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CSV = REPO / "workbench" / "templates" / "activity_example.csv"
EXAMPLE_XLSX = REPO / "workbench" / "templates" / "activity_example.xlsx"
REL = 1e-12
C2CO2 = 44 / 12

# --------------------------------------------------------------------------- the shipped example, by hand
# Reporting year 2025 (period 2025-06), region CN, GWP AR5.
EXAMPLE_ROWS = [
    # 1 raw coal 12000 t, site NCV 22.35 GJ/t, CC 26.37 tC/TJ, OF 94 %
    12000 * 22.35 * 26.37e-3 * 0.94 * C2CO2,
    # 2 natural gas 1.8 万Nm3 × NCV 389.31 GJ/万Nm3 × CC 15.3 tC/TJ × OF 99 %
    1.8 * 389.31 * 15.3e-3 * 0.99 * C2CO2,
    # 3 diesel 18.5 t × NCV 42.652 GJ/t × CC 20.2 tC/TJ × OF 98 %
    18.5 * 42.652 * 20.2e-3 * 0.98 * C2CO2,
    # 4 limestone 150000 t × purity 0.93 × CaCO3 0.4397 tCO2/t
    150000 * 0.93 * 0.4397,
    # 5 grid 9850 MWh × 0.5306 tCO2/MWh (national, data year 2023 = latest ≤ 2025)
    9850 * 0.5306,
    # 6 purchased heat 1200 GJ × 0.11 tCO2/GJ
    1200 * 0.11,
    # 7 exported heat −8500 GJ × 0.11 tCO2/GJ
    -(8500 * 0.11),
    # 8 SF6 0.003 t × GWP AR5 23500
    0.003 * 23500,
]
EXAMPLE_TOTAL = sum(EXAMPLE_ROWS)
EXAMPLE_BY_SOURCE = {
    "combustion": EXAMPLE_ROWS[0] + EXAMPLE_ROWS[1] + EXAMPLE_ROWS[2],
    "process": EXAMPLE_ROWS[3] + EXAMPLE_ROWS[7],
    "purchased_electricity": EXAMPLE_ROWS[4],
    "purchased_heat": EXAMPLE_ROWS[5],
    "exported_electricity": 0.0,
    "exported_heat": EXAMPLE_ROWS[6],
}
EXAMPLE_VA = 3200.0  # 万元, value_added column of the grid row

# --------------------------------------------------------------------------- a Chinese file, by hand
ZH_CSV = """来源,品种,数量,单位,期间,地区,纯度,增加值
燃料燃烧,原煤,100,吨,2025-06,,,
燃料燃烧,天然气,2.5,万Nm3,2025-06,,,
购入电力,电力,30,万kWh,2025-06,浙江,,
过程排放,石灰石,200,吨,2025-06,,95%,
输出电力,电力,1000,kWh,2025-06,浙江,,
购入热力,蒸汽,500,吉焦,2025-06,,,1500
"""
ZH_ROWS = [
    100 * 20.908 * 26.37e-3 * 0.94 * C2CO2,    # 100 t raw coal at defaults
    2.5 * 389.31 * 15.3e-3 * 0.99 * C2CO2,     # 2.5 万Nm3 natural gas
    30 * 10 * 0.4974,                          # 30 万kWh = 300 MWh × Zhejiang 2023 0.4974
    200 * 0.95 * 0.4397,                       # 200 t limestone × 95 % × 0.4397
    -(1000 / 1000 * 0.4974),                   # exported 1000 kWh = 1 MWh × 0.4974
    500 * 0.11,                                # 500 GJ heat × 0.11
]
ZH_TOTAL = sum(ZH_ROWS)
ZH_VA = 1500.0


def run(*args):
    return CliRunner().invoke(main, ["calc", *map(str, args)])


def run_json(*args) -> dict:
    r = run(*args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def write(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


# =========================================================================== the shipped example
def test_template_paths():
    assert template_path("example") == EXAMPLE_CSV
    assert template_path("example_xlsx") == EXAMPLE_XLSX
    assert template_path("csv").exists() and template_path("xlsx").exists()


def test_example_csv_equals_hand_computation():
    out = run_json(EXAMPLE_CSV)
    assert out["total_tco2e"] == pytest.approx(EXAMPLE_TOTAL, rel=REL)
    assert len(out["rows"]) == 8
    assert [r["row"] for r in out["rows"]] == list(range(2, 10))
    for got, want in zip(out["rows"], EXAMPLE_ROWS):
        assert got["tco2e"] == pytest.approx(want, rel=REL), got
    for s in SOURCES:
        assert out["by_source"][s] == pytest.approx(EXAMPLE_BY_SOURCE[s], rel=REL), s
    assert out["value_added"] == pytest.approx(EXAMPLE_VA, rel=REL)
    assert out["carbon_efficiency"] == pytest.approx(EXAMPLE_TOTAL / EXAMPLE_VA, rel=REL)
    assert out["edition"] == ["GB/T 32150-2015"] and out["gwp_set"] == "AR5"


def test_example_xlsx_has_chinese_headers_and_gives_the_same_total():
    sheet = pd.read_excel(EXAMPLE_XLSX, sheet_name="activity", dtype=object)
    assert {"来源", "品种", "数量", "单位"} <= set(sheet.columns)
    assert "燃料燃烧" in set(sheet["来源"]) and "原煤" in set(sheet["品种"])
    x = run_json(EXAMPLE_XLSX)
    c = run_json(EXAMPLE_CSV)
    assert x["total_tco2e"] == pytest.approx(c["total_tco2e"], rel=REL)
    assert x["total_tco2e"] == pytest.approx(EXAMPLE_TOTAL, rel=REL)
    assert x["by_source"] == pytest.approx(c["by_source"], rel=REL)
    assert [r["item"] for r in x["rows"]] == [r["item"] for r in c["rows"]]


def test_json_output_keys():
    out = run_json(EXAMPLE_CSV)
    assert {"total_tco2e", "by_source", "rows", "carbon_efficiency"} <= set(out)
    assert list(out["by_source"]) == list(SOURCES)
    assert out["by_source"]["exported_heat"] < 0
    assert out["by_source"]["exported_electricity"] == 0.0
    row = out["rows"][0]
    assert {"row", "source", "item", "quantity", "unit", "tco2e", "method", "factor_ids"} <= set(row)
    assert row["factor_ids"][0].startswith("site:")  # the lab NCV of row 2
    ids = {f["factor_id"] for f in out["factors"]}
    assert {"gbt32151.22-2024:natural_gas:ncv", "mee-avg:CN:2023", "ar5:sf6:gwp",
            "stoich:limestone:emission_factor", "default:heat:emission_factor"} <= ids


def test_value_added_option_overrides_the_column():
    out = run_json(EXAMPLE_CSV, "--value-added", "5000")
    assert out["value_added"] == 5000.0
    assert out["value_added_source"] == "--value-added"
    assert out["carbon_efficiency"] == pytest.approx(EXAMPLE_TOTAL / 5000.0, rel=REL)


def test_gwp_option_changes_only_the_sf6_row():
    ar6 = run_json(EXAMPLE_CSV, "--gwp", "AR6")
    assert ar6["total_tco2e"] == pytest.approx(EXAMPLE_TOTAL + 0.003 * (25200 - 23500), rel=REL)
    assert ar6["gwp_set"] == "AR6"


def test_table_output():
    r = run(EXAMPLE_CSV)
    assert r.exit_code == 0, r.output
    assert "Total" in r.stdout and "Carbon efficiency" in r.stdout


# =========================================================================== Chinese input
def test_chinese_headers_names_and_units(tmp_path):
    p = write(tmp_path, "中文.csv", ZH_CSV)
    out = run_json(p)
    assert out["total_tco2e"] == pytest.approx(ZH_TOTAL, rel=REL)
    for got, want in zip(out["rows"], ZH_ROWS):
        assert got["tco2e"] == pytest.approx(want, rel=REL), got
    assert out["by_source"]["exported_electricity"] == pytest.approx(ZH_ROWS[4], rel=REL)
    assert out["carbon_efficiency"] == pytest.approx(ZH_TOTAL / ZH_VA, rel=REL)


def test_gb18030_csv(tmp_path):
    p = write(tmp_path, "gbk.csv", ZH_CSV, "gb18030")
    out = run_json(p)
    assert out["total_tco2e"] == pytest.approx(ZH_TOTAL, rel=REL)


def test_xlsx_input(tmp_path):
    p = tmp_path / "zh.xlsx"
    df = pd.read_csv(write(tmp_path, "zh.csv", ZH_CSV), dtype=str, keep_default_na=False)
    df.to_excel(p, sheet_name="活动数据", index=False)
    out = run_json(p)
    assert out["total_tco2e"] == pytest.approx(ZH_TOTAL, rel=REL)
    assert [r["row"] for r in out["rows"]] == list(range(2, 8))


def test_value_added_column_summed_per_period(tmp_path):
    p = write(tmp_path, "va.csv", "source,item,quantity,unit,period,value_added\n"
                                  "purchased_heat,heat,100,GJ,2025-01,200\n"
                                  "purchased_heat,heat,300,GJ,2025-02,\n"
                                  "purchased_heat,heat,50,GJ,2025-02,600\n")
    out = run_json(p)
    total = (100 + 300 + 50) * 0.11
    assert out["total_tco2e"] == pytest.approx(total, rel=REL)
    assert out["value_added"] == pytest.approx(200 + 600, rel=REL)
    assert out["carbon_efficiency"] == pytest.approx(total / 800, rel=REL)
    per = {b["period"]: b for b in out["by_period"]}
    assert per["2025-01"]["carbon_efficiency"] == pytest.approx(100 * 0.11 / 200, rel=REL)
    assert per["2025-02"]["carbon_efficiency"] == pytest.approx(350 * 0.11 / 600, rel=REL)


def test_value_added_missing_for_a_period(tmp_path):
    p = write(tmp_path, "va.csv", "source,item,quantity,unit,period,value_added\n"
                                  "purchased_heat,heat,100,GJ,2025-01,200\n"
                                  "purchased_heat,heat,300,GJ,2025-02,\n")
    out = run_json(p)
    assert "carbon_efficiency" not in out
    assert "2025-02" in out["carbon_efficiency_note"]


def test_year_option_and_edition(tmp_path):
    p = write(tmp_path, "noperiod.csv", "source,item,quantity,unit\npurchased_electricity,grid,10,MWh\n")
    out = run_json(p, "--year", "2026")
    assert out["edition"] == ["GB/T 32150-2025"] and out["year"] == [2026]
    assert out["total_tco2e"] == pytest.approx(10 * 0.5306, rel=REL)  # latest national ≤ 2026: 2023
    out = run_json(p, "--year", "2022", "--region", "华东")
    assert out["total_tco2e"] == pytest.approx(10 * 0.5617, rel=REL)
    assert out["edition"] == ["GB/T 32150-2015"]


def test_quick_calc_function():
    out = quick_calc(EXAMPLE_CSV)
    assert out["total_tco2e"] == pytest.approx(EXAMPLE_TOTAL, rel=REL)
    with pytest.raises(ValueError, match="GWP"):
        quick_calc(EXAMPLE_CSV, gwp="AR9")


# =========================================================================== bad input: exit 2
H = "source,item,quantity,unit,period,ncv,ncv_unit,oxidation_rate\n"
OK = "combustion,raw_coal,1,t,2025-01,,,\n"

ROW_ERRORS = [
    # name, file body, bad row, column, words in the message
    ("unknown_item", H + OK + "combustion,unobtainium,1,t,2025-01,,,\n", 3, "item", "unobtainium"),
    ("unknown_source", H + OK + OK + "burning,raw_coal,1,t,2025-01,,,\n", 4, "source", "burning"),
    ("missing_unit", H + "combustion,raw_coal,1,,2025-01,,,\n", 2, "unit", "missing unit"),
    ("unknown_unit", H + OK + "combustion,raw_coal,1,bananas,2025-01,,,\n", 3, "unit", "bananas"),
    ("wrong_unit", H + "combustion,raw_coal,1,kWh,2025-01,,,\n", 2, "unit", "kWh"),
    ("m3_for_gas", H + "combustion,natural_gas,1,m3,2025-01,,,\n", 2, "unit", "m3"),
    ("text_quantity", H + OK + "combustion,raw_coal,twelve,t,2025-01,,,\n", 3, "quantity", "twelve"),
    ("negative_quantity", H + "combustion,raw_coal,-5,t,2025-01,,,\n", 2, "quantity", "-5"),
    ("nan_quantity", H + "combustion,raw_coal,NaN,t,2025-01,,,\n", 2, "quantity", "missing quantity"),
    ("inf_quantity", H + "combustion,raw_coal,inf,t,2025-01,,,\n", 2, "quantity", "inf"),
    ("oxidation_150", H + "combustion,raw_coal,1,t,2025-01,,,150\n", 2, "oxidation_rate", "150"),
    ("ncv_without_unit", H + "combustion,raw_coal,1,t,2025-01,22.3,,\n", 2, "ncv_unit", "ncv"),
    ("ncv_unit_misfit", H + "combustion,natural_gas,1,万Nm3,2025-01,22.3,GJ/t,\n", 2, "unit", "万Nm3"),
    ("missing_column", "source,item,unit\ncombustion,raw_coal,t\n", 1, None, "quantity"),
]


@pytest.mark.parametrize("name,body,row,column,words", ROW_ERRORS, ids=[e[0] for e in ROW_ERRORS])
def test_bad_rows_exit_2_naming_file_row_column(tmp_path, name, body, row, column, words):
    p = write(tmp_path, f"{name}.csv", body)
    r = run(p, "--json")
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    msg = r.stderr
    assert msg.startswith("error: ")
    assert str(p) in msg
    assert f"row {row}" in msg
    if column:
        assert f"column '{column}'" in msg
    assert words in msg


def test_chinese_header_is_named_as_written(tmp_path):
    p = write(tmp_path, "zh_bad.csv", "来源,品种,数量,单位\n燃料燃烧,原煤,100,吨\n燃料燃烧,原煤,一百,吨\n", "gb18030")
    r = run(p)
    assert r.exit_code == 2
    assert str(p) in r.stderr and "row 3" in r.stderr and "column '数量'" in r.stderr


def test_bad_row_in_xlsx(tmp_path):
    p = tmp_path / "bad.xlsx"
    pd.DataFrame([dict(source="combustion", item="raw_coal", quantity=1, unit="t"),
                  dict(source="combustion", item="raw_coal", quantity=-1, unit="t")]).to_excel(p, index=False)
    r = run(p)
    assert r.exit_code == 2
    assert str(p) in r.stderr and "row 3" in r.stderr and "column 'quantity'" in r.stderr


FILE_ERRORS = [
    ("empty.csv", b"", "empty"),
    ("header_only.csv", H.encode(), "no activity records"),
    ("garbage.txt", b"lorem ipsum \x00\x01 ;;; \"unterminated\n", "missing required column"),
    ("garbage.json", b'{"a": [1, 2', "unsupported file type"),
    ("corrupt.xlsx", b"PK\x03\x04 this is not a zip", "cannot read workbook"),
]


@pytest.mark.parametrize("name,content,words", FILE_ERRORS, ids=[e[0] for e in FILE_ERRORS])
def test_bad_files_exit_2_naming_the_file(tmp_path, name, content, words):
    p = tmp_path / name
    p.write_bytes(content)
    r = run(p)
    assert r.exit_code == 2, r.output
    assert str(p) in r.stderr and words in r.stderr


def test_missing_file_exits_2(tmp_path):
    r = run(tmp_path / "nope.csv")
    assert r.exit_code == 2 and "no such file" in r.stderr


@pytest.mark.parametrize("args,words", [
    (["--gwp", "AR9"], "GWP"),
    (["--region", "Atlantis"], "Atlantis"),
    (["--value-added", "0"], "--value-added"),
    (["--value-added", "-10"], "--value-added"),
    (["--value-added", "nan"], "--value-added"),
])
def test_bad_options_exit_2(args, words):
    r = run(EXAMPLE_CSV, *args)
    assert r.exit_code == 2, r.output
    assert words in r.stderr


# =========================================================================== as a real process
def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def test_subprocess_example_json(tmp_path):
    p = subprocess.run([sys.executable, "-m", "workbench.cli", "calc", str(EXAMPLE_CSV), "--json"],
                       capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["total_tco2e"] == pytest.approx(EXAMPLE_TOTAL, rel=REL)


def test_subprocess_bad_input_exit_2(tmp_path):
    bad = write(tmp_path, "bad.csv", H + OK + "combustion,raw_coal,1,kWh,2025-01,,,\n")
    p = subprocess.run([sys.executable, "-m", "workbench.cli", "calc", str(bad)],
                       capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert p.returncode == 2
    assert str(bad) in p.stderr and "row 3" in p.stderr and "column 'unit'" in p.stderr
    assert "Traceback" not in p.stderr
