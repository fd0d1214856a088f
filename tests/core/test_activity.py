"""Activity records (workbench.core.activity): reading, header/name mapping and validation.

Every bad record must raise ActivityDataError naming the file, the spreadsheet row (header = row 1)
and the column; nothing is dropped or fixed silently.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from workbench.core.activity import (
    COLUMNS,
    ActivityDataError,
    normalize_activity,
    read_activity,
)

REL = 1e-12


def write_csv(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def err(df, origin="act.csv") -> ActivityDataError:
    with pytest.raises(ActivityDataError) as exc:
        normalize_activity(pd.DataFrame(df), origin=origin)
    return exc.value


def assert_where(e: ActivityDataError, file: str, row: int | None, column: str | None):
    msg = str(e)
    assert file in msg, msg
    assert (e.file, e.row, e.column) == (file, row, column), msg
    if row is not None:
        assert f"row {row}" in msg
    if column is not None:
        assert f"column '{column}'" in msg


# --------------------------------------------------------------------------- mapping
def test_canonical_columns_and_row_numbers():
    out = normalize_activity(pd.DataFrame([dict(source="combustion", item="raw_coal", quantity="12", unit="t"),
                                           dict(source="process", item="limestone", quantity="3", unit="t")]),
                             origin="a.csv")
    assert set(COLUMNS) <= set(out.columns)
    assert out["row"].tolist() == [2, 3]
    assert out["record_id"].tolist() == ["a.csv:2", "a.csv:3"]
    assert out["quantity"].tolist() == [12.0, 3.0]
    assert out["gas"].tolist() == ["CO2", "CO2"]
    assert out["data_tier"].tolist() == ["primary", "primary"]


def test_chinese_headers_sources_items():
    df = pd.DataFrame({"来源": ["燃料燃烧", "过程排放", "购入电力", "购入热力", "输出电力", "输出热力", "过程排放"],
                       "品种": ["原煤", "石灰石", "电力", "蒸汽", "电", "热力", "六氟化硫"],
                       "数量": ["1,000", "5", "2", "3", "4", "6", "0.001"],
                       "单位": ["吨", "吨", "万kWh", "吉焦", "MWh", "GJ", "吨"],
                       "期间": ["2025年6月", "2025/6", "2025-06-30", "2025.06", "2025-6", "2025", "2025-06"]})
    out = normalize_activity(df, origin="zh.csv")
    assert out["source"].tolist() == ["combustion", "process", "purchased_electricity", "purchased_heat",
                                      "exported_electricity", "exported_heat", "process"]
    assert out["item"].tolist() == ["raw_coal", "limestone", "grid", "heat", "grid", "heat", "sf6"]
    assert out["quantity"].tolist() == [1000.0, 5.0, 2.0, 3.0, 4.0, 6.0, 0.001]
    assert out["period"].tolist() == ["2025-06"] * 5 + ["2025", "2025-06"]
    assert out["gas"].tolist()[-1] == "SF6"


def test_bilingual_headers():
    df = pd.DataFrame({"来源 source": ["combustion"], "item (品种)": ["diesel"], "数量 quantity": ["1"],
                       "单位/unit": ["t"]})
    out = normalize_activity(df)
    assert (out["source"].iloc[0], out["item"].iloc[0], out["quantity"].iloc[0]) == ("combustion", "diesel", 1.0)


def test_datetime_period_from_excel():
    out = normalize_activity(pd.DataFrame([dict(source="combustion", item="diesel", quantity=1, unit="t",
                                                period=dt.datetime(2025, 3, 1))]))
    assert out["period"].iloc[0] == "2025-03"


@pytest.mark.parametrize("text,value", [("95", 0.95), ("0.95", 0.95), ("95%", 0.95), ("100", 1.0), ("1", 1.0),
                                        ("99.5", 0.995)])
def test_oxidation_rate_fraction_or_percent(text, value):
    out = normalize_activity(pd.DataFrame([dict(source="combustion", item="raw_coal", quantity=1, unit="t",
                                                oxidation_rate=text)]))
    assert out["oxidation_rate"].iloc[0] == pytest.approx(value, rel=REL)


@pytest.mark.parametrize("col,text", [("oxidation_rate", "150"), ("oxidation_rate", "150%"),
                                      ("oxidation_rate", "0"), ("oxidation_rate", "-5"),
                                      ("purity", "120%"), ("purity", "101")])
def test_impossible_fractions(col, text):
    item = "raw_coal" if col == "oxidation_rate" else "limestone"
    src = "combustion" if col == "oxidation_rate" else "process"
    e = err([dict(source=src, item=item, quantity=1, unit="t", **{col: text})])
    assert_where(e, "act.csv", 2, col)
    assert text in str(e)


def test_empty_lines_keep_spreadsheet_numbering(tmp_path):
    # line 3 is empty, line 4 is a row of empty cells: the bad record is on line 5
    p = write_csv(tmp_path / "gaps.csv",
                  "source,item,quantity,unit\ncombustion,raw_coal,1,t\n\n,,,\nburning,raw_coal,1,t\n")
    with pytest.raises(ActivityDataError) as exc:
        read_activity(p)
    assert_where(exc.value, str(p), 5, "source")


def test_blank_rows_are_dropped_not_errors(tmp_path):
    p = write_csv(tmp_path / "ok.csv", "source,item,quantity,unit\ncombustion,raw_coal,1,t\n,,,\n\n"
                                       "combustion,diesel,2,t\n")
    out = read_activity(p)
    assert out["row"].tolist() == [2, 5]
    assert out["item"].tolist() == ["raw_coal", "diesel"]


# --------------------------------------------------------------------------- units by item
@pytest.mark.parametrize("item,unit", [
    ("raw_coal", "t"), ("raw_coal", "吨"), ("raw_coal", "kg"), ("raw_coal", "GJ"), ("raw_coal", "tce"),
    ("natural_gas", "万Nm3"), ("natural_gas", "Nm3"), ("natural_gas", "10^4Nm3"),
    ("grid", "kWh"), ("grid", "MWh"), ("grid", "万kWh"), ("heat", "GJ"), ("heat", "MJ"),
    ("limestone", "t"), ("sf6", "kg"),
])
def test_accepted_units(item, unit):
    src = {"raw_coal": "combustion", "natural_gas": "combustion", "grid": "purchased_electricity",
           "heat": "purchased_heat", "limestone": "process", "sf6": "process"}[item]
    out = normalize_activity(pd.DataFrame([dict(source=src, item=item, quantity=1, unit=unit)]))
    assert out["unit"].iloc[0] == unit


@pytest.mark.parametrize("source,item,unit", [
    ("combustion", "raw_coal", "kWh"),      # electrical energy is no measure of coal
    ("combustion", "raw_coal", "万kWh"),
    ("combustion", "raw_coal", "MWh"),
    ("combustion", "natural_gas", "m3"),    # actual volume is not normal volume
    ("combustion", "natural_gas", "立方米"),
    ("purchased_electricity", "grid", "t"),
    ("purchased_heat", "heat", "t"),
    ("process", "limestone", "GJ"),
    ("combustion", "diesel", "万元"),
])
def test_wrong_unit_for_the_item(source, item, unit):
    e = err([dict(source=source, item=item, quantity=1, unit=unit)])
    assert_where(e, "act.csv", 2, "unit")
    assert unit in str(e) and item in str(e)


def test_unknown_and_missing_units():
    e = err([dict(source="combustion", item="raw_coal", quantity=1, unit="t"),
             dict(source="combustion", item="raw_coal", quantity=1, unit="bananas"),
             dict(source="combustion", item="raw_coal", quantity=1, unit="")])
    assert_where(e, "act.csv", 3, "unit")
    assert "unknown unit 'bananas'" in str(e)
    assert [(p.row, p.column) for p in e.problems] == [(3, "unit"), (4, "unit")]
    assert "missing unit" in e.problems[1].message
    assert "1 more problem" in str(e)


# --------------------------------------------------------------------------- other field checks
def test_unknown_item_and_source():
    e = err([dict(source="burning", item="raw_coal", quantity=1, unit="t"),
             dict(source="combustion", item="unobtainium", quantity=1, unit="t")])
    assert [(p.row, p.column) for p in e.problems] == [(2, "source"), (3, "item")]
    assert "burning" in e.problems[0].message and "unobtainium" in e.problems[1].message


def test_item_not_allowed_under_source():
    e = err([dict(source="combustion", item="grid", quantity=1, unit="MWh")])
    assert_where(e, "act.csv", 2, "item")
    assert "combustion" in str(e)


@pytest.mark.parametrize("qty,needle", [("abc", "'abc' is not a number"), ("-5", "impossible quantity"),
                                        ("inf", "impossible quantity"), ("-inf", "impossible quantity"),
                                        ("", "missing quantity"), ("nan", "missing quantity"),
                                        ("NaN", "missing quantity"), (np.nan, "missing quantity")])
def test_bad_quantities(qty, needle):
    e = err([dict(source="combustion", item="raw_coal", quantity=qty, unit="t")])
    assert_where(e, "act.csv", 2, "quantity")
    assert needle in str(e)


def test_zero_quantity_is_allowed():
    out = normalize_activity(pd.DataFrame([dict(source="combustion", item="raw_coal", quantity=0, unit="t")]))
    assert out["quantity"].iloc[0] == 0.0


@pytest.mark.parametrize("col,ucol", [("ncv", "ncv_unit"), ("carbon_content", "carbon_content_unit"),
                                      ("emission_factor", "ef_unit")])
def test_override_without_its_unit(col, ucol):
    e = err([dict(source="combustion", item="raw_coal", quantity=1, unit="t", **{col: "22"})])
    assert_where(e, "act.csv", 2, ucol)


def test_override_bad_values():
    e = err([dict(source="combustion", item="raw_coal", quantity=1, unit="t", ncv="-1", ncv_unit="GJ/t"),
             dict(source="combustion", item="raw_coal", quantity=1, unit="t", ncv="x", ncv_unit="GJ/t"),
             dict(source="combustion", item="raw_coal", quantity=1, unit="t", ncv="20", ncv_unit="bananas")])
    assert [(p.row, p.column) for p in e.problems] == [(2, "ncv"), (3, "ncv"), (4, "ncv_unit")]


def test_gas_for_a_non_gas_item():
    e = err([dict(source="combustion", item="raw_coal", quantity=1, unit="t", gas="CH4")])
    assert_where(e, "act.csv", 2, "gas")


def test_bad_period_tier_value_added_and_duplicate_ids():
    e = err([dict(record_id="A", source="combustion", item="raw_coal", quantity=1, unit="t", period="June"),
             dict(record_id="B", source="combustion", item="raw_coal", quantity=1, unit="t", data_tier="gold"),
             dict(record_id="C", source="combustion", item="raw_coal", quantity=1, unit="t", value_added="-3"),
             dict(record_id="C", source="combustion", item="raw_coal", quantity=1, unit="t", period="2025-13")])
    got = {(p.row, p.column) for p in e.problems}
    assert {(2, "period"), (3, "data_tier"), (4, "value_added"), (4, "record_id"), (5, "record_id"),
            (5, "period")} <= got


def test_tier_aliases():
    out = normalize_activity(pd.DataFrame([dict(source="combustion", item="raw_coal", quantity=1, unit="t",
                                                data_tier=t) for t in ("实测", "二级", "估算", "Secondary")]))
    assert out["data_tier"].tolist() == ["primary", "secondary", "proxy", "secondary"]


def test_problem_names_the_header_as_written():
    df = pd.DataFrame({"来源": ["燃料燃烧"], "品种": ["原煤"], "数量": ["abc"], "单位": ["吨"]})
    e = err(df, origin="zh.csv")
    assert_where(e, "zh.csv", 2, "数量")


def test_missing_required_column():
    e = err([dict(source="combustion", item="raw_coal", unit="t")])
    assert e.row == 1 and "quantity" in str(e) and "act.csv" in str(e)


def test_no_records():
    e = err(pd.DataFrame(columns=["source", "item", "quantity", "unit"]))
    assert "no activity records" in str(e)


# --------------------------------------------------------------------------- files
def test_read_gb18030_csv(tmp_path):
    text = "来源,品种,数量,单位\n燃料燃烧,原煤,100,吨\n购入电力,电力,3,万kWh\n"
    p = write_csv(tmp_path / "gbk.csv", text, "gb18030")
    with pytest.raises(UnicodeDecodeError):
        p.read_bytes().decode("utf-8")  # really not UTF-8
    out = read_activity(p)
    assert out["item"].tolist() == ["raw_coal", "grid"]
    assert out["unit"].tolist() == ["吨", "万kWh"]


def test_read_utf8_bom_csv(tmp_path):
    p = write_csv(tmp_path / "bom.csv", "\ufeffsource,item,quantity,unit\ncombustion,diesel,1,t\n")
    assert read_activity(p)["item"].tolist() == ["diesel"]


def test_read_xlsx_prefers_activity_sheet(tmp_path):
    p = tmp_path / "a.xlsx"
    with pd.ExcelWriter(p) as xw:
        pd.DataFrame({"note": ["readme"]}).to_excel(xw, sheet_name="readme", index=False)
        pd.DataFrame([dict(source="combustion", item="diesel", quantity=2, unit="t")]).to_excel(
            xw, sheet_name="activity", index=False)
    out = read_activity(p)
    assert out["item"].tolist() == ["diesel"] and out["row"].tolist() == [2]


@pytest.mark.parametrize("name,content,needle", [
    ("empty.csv", b"", "empty"),
    ("blank.csv", b"  \n\n", "empty"),
    ("garbage.json", b'{"a": [1, 2', "unsupported file type"),
    ("corrupt.xlsx", b"PK\x03\x04 not really a zip", "cannot read workbook"),
])
def test_unreadable_files(tmp_path, name, content, needle):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ActivityDataError) as exc:
        read_activity(p)
    assert str(p) in str(exc.value) and needle in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(ActivityDataError, match="no such file"):
        read_activity(tmp_path / "nope.csv")


@pytest.mark.parametrize("row, column, fragment", [
    ("combustion,raw_coal,100,GJ,2025-03,22,GJ/t,,", "ncv", "already heat"),
    ("combustion,raw_coal,100,t,2025-03,22,kWh,,", "ncv_unit", "not a unit of ncv"),
    ("combustion,raw_coal,100,t,2025-03,,,2.5,t", "ef_unit", "not a unit of emission_factor"),
])
def test_factor_units_must_fit_their_factor(tmp_path, row, column, fragment):
    from workbench.core.activity import ActivityDataError, read_activity

    f = tmp_path / "a.csv"
    f.write_text("source,item,quantity,unit,period,ncv,ncv_unit,emission_factor,ef_unit\n" + row + "\n", encoding="utf-8")
    with pytest.raises(ActivityDataError) as err:
        read_activity(f)
    assert err.value.row == 2 and err.value.column == column
    assert fragment in str(err.value) and str(f) in str(err.value)


# --------------------------------------------------------------------------- the quantity in its factor's unit
@pytest.mark.parametrize("source,item,qty,unit,want,want_unit", [
    # the library's factor units: grid tCO2/MWh, raw coal NCV GJ/t, natural gas NCV GJ/(10^4 Nm3),
    # heat tCO2/GJ, limestone tCO2/t, SF6 GWP tCO2e/t
    ("purchased_electricity", "grid", 1.2, "万千瓦时", 12.0, "MWh"),           # 1.2 × 10⁴ kWh = 12 MWh
    ("purchased_electricity", "grid", 3_000.0, "度", 3.0, "MWh"),
    ("combustion", "raw_coal", 50.0, "吨", 50.0, "t"),
    ("combustion", "raw_coal", 2_500.0, "kg", 2.5, "t"),
    ("combustion", "natural_gas", 30_000.0, "Nm3", 3.0, "10^4 Nm3"),
    ("combustion", "raw_coal", 100.0, "GJ", 100.0, "GJ"),                   # heat already: the CC is per heat
    ("combustion", "raw_coal", 2.0, "吨标准煤", 58.6152, "GJ"),              # 2 × 29.3076 GJ
    ("purchased_heat", "heat", 500.0, "MJ", 0.5, "GJ"),
    ("process", "limestone", 10.0, "t", 10.0, "t"),
    ("process", "sf6", 5.0, "kg", 0.005, "t"),
])
def test_quantity_normalized_to_the_unit_its_factor_is_expressed_per(source, item, qty, unit, want, want_unit):
    out = normalize_activity(pd.DataFrame([dict(source=source, item=item, quantity=qty, unit=unit)]))
    r = out.iloc[0]
    assert (r["quantity"], r["unit"]) == (qty, unit)                       # as written, for traceability
    assert r["quantity_normalized"] == pytest.approx(want, rel=REL) and r["unit_normalized"] == want_unit
    cols = list(out.columns)
    assert cols[cols.index("unit") + 1:cols.index("unit") + 3] == ["quantity_normalized", "unit_normalized"]


def test_a_site_factor_decides_the_unit():
    # natural gas in t with a site NCV in GJ/t: per t; grid with a site EF per kWh: per kWh; a fuel
    # with a site EF per t (FC × EF): per t
    out = normalize_activity(pd.DataFrame([
        dict(source="combustion", item="natural_gas", quantity=5, unit="t", ncv=48, ncv_unit="GJ/t"),
        dict(source="purchased_electricity", item="grid", quantity=2, unit="MWh", emission_factor=0.0006,
             ef_unit="tCO2/kWh"),
        dict(source="combustion", item="raw_coal", quantity=800, unit="kg", emission_factor=1.9, ef_unit="tCO2/t")]))
    assert out["quantity_normalized"].tolist() == pytest.approx([5.0, 2_000.0, 0.8], rel=REL)
    assert out["unit_normalized"].tolist() == ["t", "kWh", "t"]


def test_a_quantity_that_does_not_convert_to_its_factors_unit_is_a_unit_problem():
    # natural gas in t: its NCV is per 10^4 Nm3 and no site NCV is given — the engine could not
    # account it either; said at the record, not later
    e = err([dict(source="combustion", item="natural_gas", quantity=5, unit="t"),
             dict(source="combustion", item="raw_coal", quantity=5, unit="t")])
    assert_where(e, "act.csv", 2, "unit")
    assert len(e.problems) == 1
    assert "unit 't' cannot be converted to 10^4 Nm3, the unit natural_gas's factor is expressed per" in str(e)


def test_per_unit_is_the_denominator_of_a_factor_unit():
    from workbench.core.activity import per_unit
    from workbench.core.units import conversion_factor

    assert per_unit("tCO2/MWh") == "MWh" and per_unit("GJ/t") == "t" and per_unit("tCO2/GJ") == "GJ"
    assert conversion_factor(per_unit("GJ/(10^4 Nm3)"), "Nm3") == 1e4
    with pytest.raises(ValueError, match="not per a unit of activity"):
        per_unit("percent")
