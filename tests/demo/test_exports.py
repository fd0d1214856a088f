"""Tests of the corpus of realistic exports (workbench.demo.exports): deterministic, the encodings
it claims, and truth totals re-derived here by hand with plain csv/openpyxl — never with the
workbench's own readers."""
from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict

import pytest

from workbench.demo.exports import KINDS, generate_corpus

RTOL = 1e-9


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    truth = generate_corpus(out, seed=0)
    return out, truth, {t["file"]: t for t in truth}


def _rows(path, encoding, delimiter=","):
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding)), delimiter=delimiter))


def _totals(rec) -> dict:
    return {t.get("meter", t.get("item")): t["quantity"] for t in rec["totals"]}


def _close(a, b):
    assert math.isclose(a, b, rel_tol=RTOL), (a, b)


def test_size_kinds_and_truth_file(corpus):
    out, truth, _ = corpus
    assert len(truth) >= 34
    assert {t["kind"] for t in truth} == set(KINDS)
    assert json.loads((out / "truth.json").read_text(encoding="utf-8")) == truth
    names = [t["file"] for t in truth]
    assert len(set(names)) == len(names)
    for t in truth:
        assert (out / t["file"]).stat().st_size > 0
        assert t["totals"], t["file"]
        assert all(set(x) in ({"meter", "quantity", "unit"}, {"item", "quantity", "unit"}) for x in t["totals"])
        assert all(h.startswith("--") for h in t["hints"][::2]), t["hints"]
        if t["trap"] or t["hints"]:
            assert t["why"], t["file"]
        assert t["register"] in (("interval", "cumulative") if t["kind"] == "readings" else (None,))
    assert sum(t["trap"] for t in truth) >= 4
    assert sum(bool(t["hints"]) for t in truth) >= 3
    formats = {t["format"] for t in truth}
    assert {"csv", "xlsx", "png", "pdf", "xls-text"} <= formats
    assert {t["encoding"] for t in truth} >= {"utf-8", "utf-8-sig", "gbk", "gb18030"}
    assert max(t["rows"] for t in truth) >= 35_000


def test_deterministic_for_a_seed(corpus, tmp_path):
    out, truth, _ = corpus
    again = generate_corpus(tmp_path / "again", seed=0)
    assert again == truth
    for t in truth:
        assert (tmp_path / "again" / t["file"]).read_bytes() == (out / t["file"]).read_bytes(), t["file"]
    other = generate_corpus(tmp_path / "other", seed=1)
    assert [t["file"] for t in other] == [t["file"] for t in truth]
    assert other[0]["totals"] != truth[0]["totals"]


def test_encodings_as_claimed(corpus):
    out, truth, by = corpus
    for t in truth:
        raw = (out / t["file"]).read_bytes()
        enc = t["encoding"]
        if enc is None:
            assert raw[:4] in (b"PK\x03\x04", b"%PDF", b"\x89PNG"), t["file"]
            continue
        raw.decode(enc)   # decodes as claimed
        assert raw.startswith(b"\xef\xbb\xbf") == (enc == "utf-8-sig"), t["file"]
        if enc in ("gbk", "gb18030"):
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
    gb = (out / "wide_transformers_gb18030.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        gb.decode("gbk")
    assert "𠮷" in gb.decode("gb18030")
    wb = (out / "weighbridge_coal_gb18030.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        wb.decode("gbk")


def test_cumulative_long_csv_by_hand(corpus):
    out, _, by = corpus
    rows = _rows(out / "acrel_ems_utf8.csv", "utf-8")
    assert rows[0] == ["采集时间", "表计名称", "正向有功总电能(kWh)"]
    series = defaultdict(list)
    for ts, meter, v in rows[1:]:
        series[meter].append((ts, float(v)))
    want = _totals(by["acrel_ems_utf8.csv"])
    assert set(series) == set(want)
    for m, s in series.items():
        s.sort()
        _close(want[m], s[-1][1] - s[0][1])
    rec = by["acrel_ems_utf8.csv"]
    assert rec["rows"] == len(rows) - 1 and rec["register"] == "cumulative"


def test_wide_gb18030_and_wan_kwh_by_hand(corpus):
    out, _, by = corpus
    rows = _rows(out / "wide_transformers_gb18030.csv", "gb18030")
    header = rows[2]
    assert header[0] == "时间" and "kWh" in rows[1][0]
    want = _totals(by["wide_transformers_gb18030.csv"])
    for j, m in enumerate(header[1:], start=1):
        _close(want[m], sum(float(r[j]) for r in rows[3:]))
    rows = _rows(out / "daily_gate_meters_wan_kwh.csv", "utf-8-sig")
    assert rows[0][2] == "日用电量(万kWh)" and rows[1][0] == "2025/10/1"
    sums = defaultdict(float)
    for _, m, v in rows[1:]:
        sums[m] += float(v) * 10_000
    for m, q in _totals(by["daily_gate_meters_wan_kwh.csv"]).items():
        _close(q, sums[m])


def test_decimal_commas_and_multiplier_by_hand(corpus):
    out, _, by = corpus
    rows = _rows(out / "ems_semicolon_decimal_comma.csv", "utf-8", ";")
    sums = defaultdict(float)
    for _, _, m, v in rows[1:]:
        assert "," in v
        sums[m] += float(v.replace(",", "."))
    for m, q in _totals(by["ems_semicolon_decimal_comma.csv"]).items():
        _close(q, sums[m])
    rows = _rows(out / "meter_reading_sheet_multiplier.csv", "gbk")
    h = rows[0]
    i_m, i_v, i_k = h.index("表号"), h.index("本次示数"), h.index("倍率")
    series = defaultdict(list)
    for r in rows[1:]:
        series[r[i_m]].append((float(r[i_v]), float(r[i_k])))
    for m, q in _totals(by["meter_reading_sheet_multiplier.csv"]).items():
        s = series[m]
        _close(q, (s[-1][0] - s[0][0]) * s[0][1])


def test_sap_units_and_reversal_by_hand(corpus):
    out, _, by = corpus
    rows = _rows(out / "sap_goods_issues_gbk.csv", "gbk")
    h = rows[0]
    qi, ui, di = h.index("数量"), h.index("计量单位"), h.index("物料描述")
    to_lib = {"TO": 1.0, "KG": 1e-3, "M3": 1e-4}
    code = {"原煤": "raw_coal", "柴油": "diesel", "天然气": "natural_gas"}
    sums = defaultdict(float)
    for r in rows[1:]:
        sums[code[r[di]]] += float(r[qi]) * to_lib[r[ui]]
    assert any(float(r[qi]) < 0 for r in rows[1:])
    for item, q in _totals(by["sap_goods_issues_gbk.csv"]).items():
        _close(q, sums[item])


def test_workbooks_by_hand(corpus):
    from openpyxl import load_workbook

    out, _, by = corpus
    ws = load_workbook(out / "stats_205-1_2025-10.xlsx").active
    assert "A5:A6" in {str(r) for r in ws.merged_cells.ranges} and ws["K2"].value.startswith("表")
    col = next(c.column for c in ws[6] if c.value == "合计")   # 消费量 / 合计 (second header row)
    assert ws.cell(5, col).value == "消费量"
    lib = {"原煤": ("raw_coal", 1), "天然气": ("natural_gas", 1), "汽油": ("gasoline", 1), "柴油": ("diesel", 1),
           "热力": ("heat", 1), "电力": ("grid", 10)}   # 万千瓦时 → MWh
    got = {}
    for r in range(8, ws.max_row + 1):
        name, v = ws.cell(r, 1).value, ws.cell(r, col).value
        if name in lib and v not in (None, ""):
            got[lib[name][0]] = v * lib[name][1]
    want = _totals(by["stats_205-1_2025-10.xlsx"])
    assert set(got) == set(want)
    for k, q in want.items():
        _close(q, got[k])

    ws = load_workbook(out / "ems_daily_report_circuits.xlsx").active
    header = [c.value for c in ws[3]]
    days = [j for j, h in enumerate(header) if h and str(h).endswith("日")]
    want = _totals(by["ems_daily_report_circuits.xlsx"])
    seen = set()
    for row in ws.iter_rows(min_row=4, values_only=True):
        if row[1] in want:
            _close(want[row[1]], sum(row[j] for j in days))
            assert math.isclose(row[header.index("合计")], want[row[1]], abs_tol=0.05)   # 合计 not counted again
            seen.add(row[1])
    assert seen == set(want)

    ws = load_workbook(out / "substation_hourly_merged_header.xlsx").active
    assert ws["B4"].value == "有功电量(kWh)" and ws["C4"].value.startswith("无功")
    for m, q in _totals(by["substation_hourly_merged_header.xlsx"]).items():
        j = next(c.column for c in ws[3] if c.value == m)
        _close(q, sum(ws.cell(r, j).value for r in range(5, ws.max_row + 1)))


def test_traps_by_hand(corpus):
    out, truth, by = corpus
    rec = by["trap_text_in_value_column.csv"]
    rows = _rows(out / rec["file"], "gbk")
    bad, sums = 0, defaultdict(float)
    for _, m, v in rows[1:]:
        try:
            sums[m] += float(v)
        except ValueError:
            bad += 1
    assert rec["trap"] and rec["quarantined"] == bad > 0
    for m, q in _totals(rec).items():
        _close(q, sums[m])

    rec = by["trap_conflicting_duplicates.csv"]
    rows = _rows(out / rec["file"], "utf-8")
    by_ts = defaultdict(list)
    for ts, _, v in rows[1:]:
        by_ts[ts].append(float(v))
    assert rec["quarantined"] == sum(len(v) for v in by_ts.values() if len(v) > 1) == 6
    _close(_totals(rec)["MCC-07"], sum(v[0] for v in by_ts.values() if len(v) == 1))

    rec = by["trap_register_labelled_consumption.csv"]
    vals = [float(r[2]) for r in _rows(out / rec["file"], "utf-8")[1:]]
    assert all(b > a for a, b in zip(vals, vals[1:]))   # a register under an interval header
    _close(_totals(rec)["3#窑尾排风机"], vals[-1] - vals[0])
    assert rec["hints"] == ["--register", "cumulative"] and rec["totals_without_hints"] == []
    assert rec["quarantined_without_hints"] == len(vals)

    rec = by["trap_impossible_dates.csv"]
    rows = _rows(out / rec["file"], "utf-8")
    assert rec["quarantined"] == sum(r[0].startswith("2025-02-29") for r in rows[1:]) == 4


def test_documents(corpus):
    import pdfplumber
    from PIL import Image

    out, truth, by = corpus
    for t in truth:
        if t["format"] == "png":
            with Image.open(out / t["file"]) as img:
                assert img.size == (1000, 700)
    rec = by["einvoice_heat_text.pdf"]
    with pdfplumber.open(out / rec["file"]) as pdf:
        text = pdf.pages[0].extract_text()
    assert "电子发票" in text and f"{rec['totals'][0]['quantity']:.1f}" in text
    rec = by["stats_205-1_2025-08.pdf"]
    with pdfplumber.open(out / rec["file"]) as pdf:
        table = pdf.pages[0].extract_tables()[0]
    i = table[0].index("消费量合计")
    coal = next(r for r in table if r[0] == "原煤")
    _close(_totals(rec)["raw_coal"], float(coal[i]))
    with pdfplumber.open(out / "bill_electricity_scan.pdf") as pdf:
        assert not (pdf.pages[0].extract_text() or "").strip()   # a scan: no text layer


def test_year_file_is_a_year_of_quarter_hours(corpus):
    out, _, by = corpus
    rec = by["year_15min_kiln_main.csv"]
    rows = _rows(out / rec["file"], "utf-8-sig")
    assert len(rows) - 1 == rec["rows"] == 365 * 96
    _close(_totals(rec)["KILN-01"], sum(float(r[2]) for r in rows[1:]))
    assert rows[1][0] == "2025-01-01 00:00" and rows[-1][0] == "2025-12-31 23:45"
