"""``workbench import`` on files as plants export them (issue 12, point 1).

Every expected total is worked out by hand from the values the test writes: an interval meter's
consumption is the sum of its values, a cumulative register's is last − first, 1 万kWh = 10,000 kWh.
"""
from __future__ import annotations

import datetime as dt
import json

import openpyxl
import pytest
from click.testing import CliRunner

from workbench.cli.main import main

T0 = dt.datetime(2025, 10, 1)


def _ts(i, fmt="%Y/%m/%d %H:%M"):
    return (T0 + dt.timedelta(minutes=15 * i)).strftime(fmt)


def run(*args):
    r = CliRunner().invoke(main, ["import", *map(str, args)], catch_exceptions=False)
    return r


def run_json(*args):
    r = run(*args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def totals(doc):
    return {(t.get("meter") or t.get("item")): (round(t["quantity"], 6), t["unit"]) for t in doc["totals"]}


@pytest.fixture()
def lake(tmp_path):
    return ["--lake", str(tmp_path / "lake"), "--enterprise", "e1"]


@pytest.fixture()
def vendor_gbk(tmp_path):
    """Acrel-like export: two title lines, GBK, forward and reverse energy, cumulative registers."""
    lines = ["XX水泥有限公司 电能数据导出", "导出时间：2025-11-01 08:00",
             "采集时间,表计名称,正向有功总电能(kWh),反向有功总电能(kWh)"]
    for i in range(96):
        lines.append(f"{_ts(i)},1#窑主电机,{12000 + 3.25 * i:.2f},0.00")
        lines.append(f"{_ts(i)},2#磨机,{800.5 + 1.5 * i:.2f},0.00")
    f = tmp_path / "电能导出.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    return f


def test_vendor_export_is_understood_without_hints(vendor_gbk, lake):
    doc = run_json(vendor_gbk, *lake, "--dry-run")
    assert doc["kind"] == "readings" and doc["encoding"] == "gbk" and doc["rows"] == 192
    # 95 steps of 3.25 kWh and of 1.5 kWh
    assert totals(doc) == {"1#窑主电机": (308.75, "kWh"), "2#磨机": (142.5, "kWh")}
    guesses = {g["what"]: g for g in doc["guesses"]}
    assert guesses["register"]["value"] == "cumulative" and guesses["register"]["flag"] == "--register interval"
    assert guesses["header"]["value"] == "row 3"
    assert guesses["column 反向有功总电能(kWh)"]["value"] == "left out"
    # unknown meters are proposed, and counted as quarantined until registered — never dropped
    assert {m["meter_id"] for m in doc["proposed_meters"]} == {"1#窑主电机", "2#磨机"}
    assert doc["stored"] == 0 and doc["quarantined"] == 192


def test_register_meters_then_mapping_replay(vendor_gbk, lake, tmp_path):
    m = tmp_path / "vendor.yaml"
    doc = run_json(vendor_gbk, *lake, "--register-meters", "--save-mapping", m)
    assert doc["stored"] == 192 and doc["quarantined"] == 0 and doc["status"] == "stored"
    assert sorted(doc["registered_meters"]) == ["1#窑主电机", "2#磨机"]
    assert totals(doc) == {"1#窑主电机": (308.75, "kWh"), "2#磨机": (142.5, "kWh")}
    # next day's file, replayed with the mapping: no guesses left, the register continues from the
    # last stored reading (12000 + 3.25 × 95 = 12308.75 → 12400: 91.25 kWh more)
    nxt = tmp_path / "next.csv"
    nxt.write_bytes(("导出\r\n采集时间,表计名称,正向有功总电能(kWh),反向有功总电能(kWh)\r\n"
                     "2025/10/02 00:00,1#窑主电机,12400.00,0\r\n").encode("gbk"))
    doc2 = run_json(nxt, *lake, "--mapping", m, "--header-row", "2")
    assert not [g for g in doc2["guesses"] if not g["given"] and g["what"].startswith(("column", "register", "unit"))]
    assert totals(doc2) == {"1#窑主电机": (91.25, "kWh")}


def test_wide_export_with_unit_in_a_title_line(tmp_path, lake):
    f = tmp_path / "wide.csv"
    rows = ["车间分项计量日报", "单位：万kWh", "时间,空压机,照明,冷却塔"]
    for i in range(8):
        rows.append(f"{_ts(i, '%Y-%m-%d %H:%M:%S')},{0.01 * (i % 3)},{0.002},{0.005 * (i % 2)}")
    f.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    doc = run_json(f, *lake, "--dry-run")
    assert doc["encoding"] == "utf-8-sig"
    assert {g["what"]: g["value"] for g in doc["guesses"]}["layout"] == "wide"
    # 空压机: 0,0.01,0.02,0,0.01,0.02,0,0.01 = 0.07 万kWh = 700 kWh; 照明 8 × 0.002 = 0.016 → 160;
    # 冷却塔 4 × 0.005 = 0.02 → 200
    assert totals(doc) == {"空压机": (700.0, "kWh"), "照明": (160.0, "kWh"), "冷却塔": (200.0, "kWh")}


def test_a_header_that_contradicts_the_data_is_flagged_not_summed(tmp_path, lake):
    """用电量 claims interval values; values that only grow are a register: quarantined (register
    shape) until the user says --register cumulative — then right."""
    f = tmp_path / "claims.csv"
    rows = ["时间,表号,用电量(kWh)"] + [f"{_ts(i)},M1,{5000 + 2 * i}" for i in range(120)]
    f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    doc = run_json(f, *lake, "--dry-run", "--register-meters")
    assert any("header says interval" in w for w in doc["warnings"])
    assert doc["totals"] == [] and doc["stored"] == 0 and doc["quarantined"] == 120
    assert all("register" in q["reason"] for q in doc["quarantine"])
    doc = run_json(f, *lake, "--dry-run", "--register-meters", "--register", "cumulative")
    assert totals(doc) == {"M1": (238.0, "kWh")}          # 119 steps of 2 kWh


def test_unix_seconds_decimal_commas_and_the_hints_it_needs(tmp_path, lake):
    f = tmp_path / "two.csv"
    # 2025-10-01 00:00 +08:00 = 1759248000; values 0,5 1,5 2,5 … (decimal commas)
    f.write_text("TimeStamp;Value\n" + "".join(f"{1759248000 + 900 * i};{i % 4},5\n" for i in range(20)),
                 encoding="utf-8")
    r = run(f, *lake, "--dry-run")
    assert r.exit_code == 2
    assert r.output.count("\n") <= 1 and "two.csv" in r.output and "--meter" in r.output
    doc = run_json(f, *lake, "--dry-run", "--meter", "P7", "--unit", "kWh", "--register-meters")
    # i % 4 over 20 values: 5 × (0+1+2+3) = 30, plus 20 × 0.5 = 10
    assert totals(doc) == {"P7": (40.0, "kWh")}
    assert {g["what"]: g["value"] for g in doc["guesses"]}["decimal comma"] == "yes"


def test_scada_long_format_with_quality_and_split_date_time(tmp_path, lake):
    f = tmp_path / "scada.csv"
    rows = ["TagName,日期,时间,Value,Quality"]
    for i in range(12):
        d = T0 + dt.timedelta(hours=i)
        rows.append(f"PLC1.Gas_FT01,{d:%Y-%m-%d},{d:%H:%M},{10 + i},{'Bad' if i == 5 else 'Good'}")
    f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    doc = run_json(f, *lake, "--dry-run", "--unit", "m3", "--register-meters")
    g = {x["what"]: x["value"] for x in doc["guesses"]}
    assert g["column 日期"] == "date" and g["column 时间"] == "time" and g["column TagName"] == "meter_id"
    # twelve values that only rise look like a register: that is the guess, shown with its flag
    assert g["register"] == "cumulative"
    # said to be interval: 10..21 without the bad 15 → 186 − 15 = 171 m3
    doc = run_json(f, *lake, "--dry-run", "--unit", "m3", "--register-meters", "--register", "interval")
    assert totals(doc) == {"PLC1.Gas_FT01": (171.0, "m3")}
    assert doc["quarantined"] == 1 and "quality 'Bad'" in doc["quarantine"][0]["reason"]
    assert doc["quarantine"][0]["row"] == 7


def test_workbook_with_title_rows_and_a_merged_two_row_header(tmp_path, lake):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "2025年10月 分项电量报表"
    ws.merge_cells("A1:E1")
    ws["A2"], ws["B2"], ws["D2"] = "时间", "1#变压器", "2#变压器"
    ws.merge_cells("A2:A3")
    ws.merge_cells("B2:C2")
    ws.merge_cells("D2:E2")
    ws["B3"], ws["C3"], ws["D3"], ws["E3"] = "正向有功(kWh)", "无功(kvarh)", "正向有功(kWh)", "无功(kvarh)"
    for i in range(10):
        ws.append([T0 + dt.timedelta(hours=i), 100 + 10 * i, 1, 50 + 5 * i, 1])
    f = tmp_path / "report.xlsx"
    wb.save(f)
    doc = run_json(f, *lake, "--dry-run", "--register-meters")
    g = {x["what"]: x["value"] for x in doc["guesses"]}
    assert g["header"] == "row 2–3" and g["layout"] == "wide" and g["register"] == "cumulative"
    # registers: 1#: 190 − 100 = 90; 2#: 95 − 50 = 45; the reactive columns are not meters of energy
    assert totals(doc) == {"1#变压器": (90.0, "kWh"), "2#变压器": (45.0, "kWh")}


def test_monthly_ledger_statistics_form_and_erp_export_are_activity(tmp_path, lake):
    led = tmp_path / "台账.csv"
    led.write_text("月份,电力(万千瓦时),原煤(吨)\n2025-01,12.5,300\n2025-02,11,280.5\n", encoding="gbk")
    doc = run_json(led, *lake, "--dry-run")
    assert doc["kind"] == "activity" and doc["encoding"] == "gbk" and doc["stored"] == 4
    t = totals(doc)
    assert t["raw_coal"][0] == pytest.approx(580.5) and t["raw_coal"][1] in ("t", "吨")
    erp = tmp_path / "erp.csv"
    erp.write_text("物料,物料描述,过账日期,数量,计量单位\n100234,柴油,2025-03-05,2.5,t\n100234,柴油,2025-03-20,1.5,t\n",
                   encoding="utf-8")
    doc = run_json(erp, *lake, "--dry-run")
    assert doc["kind"] == "activity" and doc["stored"] == 2
    assert totals(doc)["diesel"][0] == pytest.approx(4.0)


def test_production_table(tmp_path, lake):
    f = tmp_path / "产量.csv"
    f.write_text("月份,产品,产量(吨),工业增加值(万元)\n2025-01,熟料,52000,1800\n2025-02,熟料,50500,1750\n",
                 encoding="utf-8")
    doc = run_json(f, *lake, "--dry-run", "--node", "plant")
    assert doc["kind"] == "production"
    t = totals(doc)
    assert t["value_added"] == (3550.0, "万元") and t["熟料"] == (102500.0, "t")


def test_manual_records_and_the_former_spelling(tmp_path, lake):
    f = tmp_path / "manual.csv"
    f.write_text("来源,品种,数量,单位,期间,录入人\n购入电力,电力,100,MWh,2025-01,李工\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["import", "manual", str(f), *lake, "--json"])
    doc = json.loads(r.output)
    assert r.exit_code == 0 and doc["kind"] == "manual" and doc["stored"] == 1


def test_registered_meter_lends_its_unit_and_enterprises_stay_apart(tmp_path):
    root = tmp_path / "lake"
    f = tmp_path / "m.csv"
    f.write_text("时间,表号,读数\n" + "".join(f"{_ts(i)},M1,{i % 3}\n" for i in range(6)), encoding="utf-8")
    meters = tmp_path / "meters.csv"
    meters.write_text("meter_id,node_id,unit\nM1,plant,MWh\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["lake", "ingest", str(meters), "--lake", str(root), "--enterprise", "e1",
                                  "--meters", str(meters)])
    doc = run_json(f, "--lake", root, "--enterprise", "e1")
    # 0+1+2+0+1+2 = 6 MWh = 6000 kWh; the unit came from the register, no proposal
    assert totals(doc) == {"M1": (6000.0, "kWh")} and doc["proposed_meters"] == []
    assert {g["what"]: g["value"] for g in doc["guesses"]}["unit"] == "MWh"
    # enterprise e2 does not know M1: proposed there, and e1's lake is untouched by e2's import
    doc2 = run_json(f, "--lake", root, "--enterprise", "e2", "--unit", "kWh", "--register-meters")
    assert totals(doc2) == {"M1": (6.0, "kWh")}
    r = CliRunner().invoke(main, ["lake", "sql", "SELECT sum(value) AS v FROM consumption", "--lake", str(root),
                                  "--enterprise", "e1", "--format", "json"])
    assert json.loads(r.output) == [{"v": 6.0}]
    assert r.exit_code == 0


def test_gb18030_only_file(tmp_path, lake):
    f = tmp_path / "gb.csv"
    rows = ["时间,表计名称,用电量(kWh)"] + [f"{_ts(i)},䶮窑{1},{i % 2}" for i in range(4)]
    f.write_bytes(("\n".join(rows) + "\n").encode("gb18030"))
    with pytest.raises(UnicodeEncodeError):
        "䶮".encode("gbk")
    doc = run_json(f, *lake, "--dry-run", "--register-meters")
    assert doc["encoding"] == "gb18030" and totals(doc) == {"䶮窑1": (2.0, "kWh")}


@pytest.mark.parametrize("args, words", [
    (["--unit", "bananas"], "--unit bananas"),
    (["--period", "2025-13"], "--period 2025-13"),
    (["--column", "nope=value"], "no column 'nope'"),
])
def test_bad_hints_are_one_line(vendor_gbk, lake, args, words):
    r = run(vendor_gbk, *lake, "--dry-run", *args)
    assert r.exit_code == 2 and words in r.output and len(r.output.strip().splitlines()) == 1


def test_meter_reading_sheet_multiplies_by_the_ratio(tmp_path, lake):
    f = tmp_path / "抄表.csv"
    f.write_text("抄表日期,户号,表号,本次示数,倍率\n2025-10-01,3301234567,4401019981,100.0,80\n"
                 "2025-10-02,3301234567,4401019981,101.5,80\n2025-10-03,3301234567,4401019981,103.0,80\n",
                 encoding="gbk")
    doc = run_json(f, *lake, "--dry-run", "--register-meters", "--unit", "kWh", "--register", "cumulative")
    g = {x["what"]: x["value"] for x in doc["guesses"]}
    assert g["column 倍率"] == "multiplier" and g["column 表号"] == "meter_id"
    assert totals(doc) == {"4401019981": (240.0, "kWh")}      # (103.0 − 100.0) × 80


def test_daily_report_with_a_column_per_day_and_a_total_row(tmp_path, lake):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["配电室日用电量报表"])
    ws.append(["统计周期：2025-10-01 至 2025-10-03 单位：kWh"])
    ws.append(["序号", "回路名称", "10月1日", "10月2日", "10月3日", "合计"])
    ws.append([1, "1#窑主电机", 100, 110.5, 90, 300.5])
    ws.append([2, "煤磨", 20, 30, 25, 75])
    ws.append(["总计", None, 120, 140.5, 115, 375.5])
    f = tmp_path / "daily.xlsx"
    wb.save(f)
    doc = run_json(f, *lake, "--dry-run", "--register-meters")
    assert totals(doc) == {"1#窑主电机": (300.5, "kWh"), "煤磨": (75.0, "kWh")}
    g = {x["what"]: x for x in doc["guesses"]}
    assert g["layout"]["value"] == "a column per day" and g["total rows"]["value"] == "left out"


def test_erp_reversal_is_netted_and_weighbridge_takes_the_net_weight(tmp_path, lake):
    sap = tmp_path / "sap.csv"
    sap.write_text("物料,物料描述,移动类型,过账日期,数量,计量单位\n10000123,原煤,261,2025.10.01,100,TO\n"
                   "10000123,原煤,261,2025.10.05,50,TO\n10000123,原煤,262,2025.10.06,-30,TO\n", encoding="gbk")
    doc = run_json(sap, *lake, "--dry-run")
    assert doc["kind"] == "activity" and doc["stored"] == 2 and doc["quarantined"] == 0
    assert totals(doc)["raw_coal"][0] == pytest.approx(120.0)     # 100 + 50 − 30
    wb = tmp_path / "磅单.csv"
    wb.write_text("过磅日期,车牌号,货物名称,毛重(吨),皮重(吨),净重(吨)\n2025-10-01 08:00,浙E1,原煤,48.9,16.1,32.8\n"
                  "2025-10-02 09:00,浙E2,原煤,47.0,16.25,30.75\n", encoding="gb18030")
    doc = run_json(wb, *lake, "--dry-run")
    assert doc["kind"] == "activity" and totals(doc)["raw_coal"][0] == pytest.approx(63.55)   # 32.8 + 30.75


def test_a_big_file_keeps_exact_row_numbers(tmp_path, lake):
    """Over 5,000 lines the body goes through pandas' parser: blank lines, a row with too many
    fields, text in a value and a footer line must still be found at their own line numbers."""
    lines = ["电能数据导出", "采集时间,表计名称,用电量(kWh)"]          # lines 1–2; data from line 3
    for i in range(6000):
        lines.append(f"{_ts(i)},M1,1")
    lines[99] = ""                                   # line 100: blank (spacing, not a row)
    lines[2000] = f"{_ts(1998)},M1,1,extra"          # line 2001: 4 fields
    lines[3000] = f"{_ts(2998)},M1,abc"              # line 3001: text in the value
    lines.append("制表人：张三")                      # a footer: the table ends
    f = tmp_path / "big.csv"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc = run_json(f, *lake, "--dry-run", "--register-meters", "--register", "interval")
    rows = {q["row"]: q["reason"] for q in doc["quarantine"]}
    assert set(rows) == {2001, 3001} and "4 fields" in rows[2001] and "abc" in rows[3001]
    # 6000 data lines − 1 blank − 2 quarantined = 5997 values of 1 kWh
    assert doc["rows"] == 5999 and totals(doc) == {"M1": (5997.0, "kWh")}
    cut = tmp_path / "cut.csv"
    cut.write_bytes(("\n".join(lines[:-1]) + "\n").encode() + f"{_ts(7000)},M".encode())
    r = run(cut, *lake, "--dry-run")
    assert r.exit_code == 2 and "truncated" in r.output and "row 6003" in r.output
