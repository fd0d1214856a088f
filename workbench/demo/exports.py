"""A corpus of files as plants' systems export them, each with its ground truth (issue 12, point 8).

:func:`generate_corpus` writes ≥ 34 files into a folder — meter vendors' CSV layouts (long, wide,
SCADA tag lists, date and time in two columns, semicolons and decimal commas, tabs in a file named
``.xls``, Unix seconds, ``2025/10/1 0:15``), text in UTF-8 with and without a BOM, GBK and GB18030
(one facility name only GB18030 can write), workbooks with title rows above a multi-row merged
header, the statistics form 能源购进、消费与库存 (205-1) as a workbook, as a CSV and as a text PDF,
ERP postings (SAP, Kingdee, an English ERP), monthly energy ledgers (台账), production and
value-added tables, bills as images and PDFs — and deliberately contradictory files (traps).

Each file has a truth record (also written to ``truth.json``)::

    file, kind (readings|activity|statistics|production|invoice), layout, format, encoding
    (utf-8|utf-8-sig|gbk|gb18030, None for binary files), rows (data records as written),
    register (cumulative|interval, readings only), totals [{meter|item, quantity, unit}],
    quarantined, hints [CLI flags], trap, why
    optional: totals_without_hints, quarantined_without_hints (what a correct import does before
    the user gives the hints, for traps where it differs), period

Totals are computed here, by hand, from the values as written (the formatted text parsed back):
interval values summed; a cumulative register last − first (× a 倍率 column where there is one);
万kWh × 10,000 = kWh, Wh ÷ 1,000; for activity and statistics the factor library's unit for the item
(t for fuels, 10^4 Nm3 for gases — 万立方米 and m3 read as normal cubic metres —, MWh for
electricity, GJ for heat); production in t and value added in 万元 (item ``value_added``); bills in
the unit printed on them.  Readings totals are per meter (the id as the file writes it, or the
``--meter`` hint), the others per item (factor-library code; production: the product's name).

Deterministic for a seed (the workbooks are re-zipped with fixed timestamps).
"""
from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
import json
import random
import subprocess
import zipfile
from functools import cache
from pathlib import Path

import numpy as np

__all__ = ["KINDS", "generate_corpus"]

KINDS = ("readings", "activity", "statistics", "production", "invoice")
COMPANY = "长兴华新水泥有限公司"
#: the enterprise the corpus belongs to, and its master data (``master_data/``): the accounts and
#: suppliers printed on the bills — what ``workbench import --registry`` matches a bill against
CORPUS_ENTERPRISE = "corpus-test"
REGISTRY_HINT = "{registry}"           # in a bill's hints: the master data loaded from master_data/
_BILL_WHY = ("the supplier, customer and account are matched against the master data; without it a name or "
             "number read with a doubtful character waits for review")
ACCOUNTS = [("3301234567", "国网湖州供电公司", "purchased_electricity", "grid", "kWh"),
            ("GS0571008817", "长兴新奥燃气有限公司", "combustion", "natural_gas", "Nm3"),
            ("HR3305220456", "长兴城市热力有限公司", "purchased_heat", "heat", "GJ")]
RARE_COMPANY = "长兴𠮷祥建材有限公司"      # 𠮷 (U+20BB7) exists in GB18030 only, not in GBK
RARE_SUPPLIER = "䶮山煤业有限公司"          # 䶮 (U+4DAE) likewise


# ============================================================================ small helpers

def _f(x: float, nd: int) -> str:
    return f"{x:.{nd}f}"


def _back(texts) -> list[float]:
    """The values as a reader gets them back from their text."""
    return [float(str(t).replace(",", ".")) for t in texts]


def _interval(rng, n: int, base: float, nd: int = 2, noise: float = 0.25) -> list[str]:
    """n interval values (consumption per interval): a daily load shape with noise, formatted."""
    idx = np.arange(n)
    shape = 1.0 + 0.35 * np.sin(2 * np.pi * (idx % 96) / 96 - 1.2)
    vals = base * shape * (1 + noise * rng.standard_normal(n))
    return [_f(v, nd) for v in np.clip(vals, base * 0.05, None)]


def _cumulative(rng, n: int, start: float, step: float, nd: int = 2) -> list[str]:
    """n register readings of a meter whose load never stops (it rises at every step)."""
    inc = np.clip(step * (1 + 0.3 * rng.standard_normal(n)), step * 0.2, None)
    inc[0] = 0.0
    vals = start + np.cumsum(inc)
    return [_f(v, nd) for v in vals]


def _times(start: dt.datetime, n: int, minutes: int) -> list[dt.datetime]:
    return [start + dt.timedelta(minutes=minutes * i) for i in range(n)]


def _write_text(path: Path, text: str, encoding: str) -> None:
    path.write_bytes(text.encode(encoding))


def _csv_text(rows, delimiter=",", lineterminator="\r\n") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=lineterminator)
    w.writerows(rows)
    return buf.getvalue()


def _t(meter_or_item: str, quantity: float, unit: str, key: str = "meter") -> dict:
    return {key: meter_or_item, "quantity": float(f"{float(quantity):.12g}"), "unit": unit}


def _record(file, kind, layout, fmt, encoding, rows, totals, *, register=None, quarantined=0,
            hints=(), trap=False, why="", **extra) -> dict:
    rec = {"file": file, "kind": kind, "layout": layout, "format": fmt, "encoding": encoding, "rows": rows,
           "register": register, "totals": totals, "quarantined": quarantined, "hints": list(hints),
           "trap": trap, "why": why}
    rec.update(extra)
    return rec


_ZIP_TIME = (2025, 11, 3, 9, 0, 0)


def _save_workbook(wb, path: Path) -> None:
    """Save an openpyxl workbook with fixed document times and zip entry times (deterministic bytes)."""
    stamp = dt.datetime(2025, 11, 3, 9, 0, 0)
    wb.properties.creator = "Microsoft Excel"
    wb.properties.created = stamp
    wb.properties.modified = stamp
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":   # openpyxl stamps 'modified' with the clock
                import re
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>2025-11-03T09:00:00Z\g<2>", data)
            zi = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    path.write_bytes(out.getvalue())


# ============================================================================ readings: CSV layouts

def _acrel_utf8(out: Path, rng) -> dict:
    """Acrel-style EMS export: 采集时间,表计名称,正向有功总电能(kWh) — cumulative, three meters."""
    name = "acrel_ems_utf8.csv"
    meters = {"1#进线柜": (182_345.6, 95.0), "2#进线柜": (96_310.2, 60.0), "生料磨": (510_772.9, 140.0)}
    times = _times(dt.datetime(2025, 10, 1), 3 * 96, 15)
    rows, totals = [["采集时间", "表计名称", "正向有功总电能(kWh)"]], []
    for m, (start, step) in meters.items():
        vals = _cumulative(rng, len(times), start, step, 1)
        rows += [[t.strftime("%Y-%m-%d %H:%M:%S"), m, v] for t, v in zip(times, vals)]
        b = _back(vals)
        totals.append(_t(m, b[-1] - b[0], "kWh"))
    _write_text(out / name, _csv_text(rows), "utf-8")
    return _record(name, "readings", "Acrel/安科瑞 long: 采集时间,表计名称,正向有功总电能(kWh); 15 min; 3 meters",
                   "csv", "utf-8", len(rows) - 1, totals, register="cumulative", period="2025-10")


def _acrel_gbk(out: Path, rng) -> dict:
    """Acrel-style per-meter export with electrical quantities around the energy register (GBK)."""
    name = "acrel_meter_detail_gbk.csv"
    meter = "2#空压机"
    times = _times(dt.datetime(2025, 10, 8), 2 * 96, 15)
    imp = _cumulative(rng, len(times), 33_870.25, 48.0, 2)
    exp = _cumulative(rng, len(times), 12.5, 0.01, 2)
    rows = [["序号", "表计名称", "采集时间", "Ua(V)", "Ub(V)", "Uc(V)", "Ia(A)", "Ib(A)", "Ic(A)", "总有功功率(kW)",
             "功率因数", "正向有功总电能(kWh)", "反向有功总电能(kWh)", "正向无功总电能(kvarh)"]]
    q = _cumulative(rng, len(times), 8_120.0, 15.0, 2)
    for i, (t, a, e, r) in enumerate(zip(times, imp, exp, q), start=1):
        kw = float(rng.uniform(150, 230))
        rows.append([i, meter, t.strftime("%Y-%m-%d %H:%M"), _f(rng.uniform(226, 234), 1), _f(rng.uniform(226, 234), 1),
                     _f(rng.uniform(226, 234), 1), _f(kw * 1.5, 1), _f(kw * 1.48, 1), _f(kw * 1.52, 1), _f(kw, 2),
                     _f(rng.uniform(0.86, 0.95), 3), a, e, r])
    b = _back(imp)
    _write_text(out / name, _csv_text(rows), "gbk")
    return _record(name, "readings", "Acrel per-meter detail: voltages, currents, power, PF, 正向/反向有功, 无功 registers; "
                   "15 min; the import register is 正向有功总电能", "csv", "gbk", len(rows) - 1,
                   [_t(meter, b[-1] - b[0], "kWh")], register="cumulative", period="2025-10")


def _scada_long(out: Path, rng) -> dict:
    """SCADA historian long format TagName,TimeStamp,Value,Quality — no unit anywhere."""
    name = "scada_historian_long.csv"
    tags = {"CM1_MAIN.EP_IMP": (1_204_560.0, 310.0), "KILN_ID_FAN.EP_IMP": (455_120.0, 180.0),
            "COAL_MILL.EP_IMP": (78_990.0, 90.0)}
    times = _times(dt.datetime(2025, 10, 12), 2 * 96, 15)
    rows, totals = [["TagName", "TimeStamp", "Value", "Quality"]], []
    series = {tag: _cumulative(rng, len(times), s, st, 3) for tag, (s, st) in tags.items()}
    for i, t in enumerate(times):                          # historians write time-major
        for tag in tags:
            rows.append([tag, t.strftime("%Y-%m-%d %H:%M:%S.000"), series[tag][i], "192"])
    for tag in tags:
        b = _back(series[tag])
        totals.append(_t(tag, b[-1] - b[0], "kWh"))
    _write_text(out / name, _csv_text(rows), "utf-8")
    return _record(name, "readings", "SCADA historian long: TagName,TimeStamp,Value,Quality (OPC 192 = good); "
                   "time-major; cumulative registers; no unit in header or tag", "csv", "utf-8", len(rows) - 1, totals,
                   register="cumulative", hints=["--unit", "kWh"], period="2025-10",
                   why="nothing in the file says the values are kWh")


def _wide_gb18030(out: Path, rng) -> dict:
    """Wide report, one column per meter, unit in a title row; GB18030 (the plant's name needs it)."""
    name = "wide_transformers_gb18030.csv"
    meters = {"1#变压器": 210.0, "2#变压器": 160.0, "空压机": 55.0}
    times = _times(dt.datetime(2025, 10, 15), 2 * 96, 15)
    cols = {m: _interval(rng, len(times), base, 2) for m, base in meters.items()}
    rows = [[f"{RARE_COMPANY} 配电系统 15分钟电量报表"], ["单位：kWh", "", "", ""],
            ["时间", *meters]]
    rows += [[t.strftime("%Y-%m-%d %H:%M"), *[cols[m][i] for m in meters]] for i, t in enumerate(times)]
    totals = [_t(m, sum(_back(cols[m])), "kWh") for m in meters]
    _write_text(out / name, _csv_text(rows), "gb18030")
    return _record(name, "readings", "wide: title row (plant name with 𠮷), unit row 单位：kWh, 时间,1#变压器,2#变压器,空压机; "
                   "15-min interval values", "csv", "gb18030", len(times), totals, register="interval", period="2025-10")


def _schneider_semicolon(out: Path, rng) -> dict:
    """A European EMS: semicolons, decimal commas, dd/mm/yyyy dates and the time in its own column."""
    name = "ems_semicolon_decimal_comma.csv"
    meters = {"Incomer A": 120.0, "Chiller 2": 38.0}
    times = _times(dt.datetime(2025, 10, 13), 2 * 96, 15)
    rows, totals = [["Date", "Time", "Meter", "Active energy (kWh)"]], []
    for m, base in meters.items():
        vals = [v.replace(".", ",") for v in _interval(rng, len(times), base, 2)]
        rows += [[t.strftime("%d/%m/%Y"), t.strftime("%H:%M"), m, v] for t, v in zip(times, vals)]
        totals.append(_t(m, sum(_back(vals)), "kWh"))
    _write_text(out / name, _csv_text(rows, delimiter=";"), "utf-8")
    return _record(name, "readings", "Date;Time;Meter;Active energy (kWh); dd/mm/yyyy; decimal commas; 15-min interval",
                   "csv", "utf-8", len(rows) - 1, totals, register="interval", period="2025-10")


def _tab_xls(out: Path, rng) -> dict:
    """A web EMS's 'Excel' export: tab-separated GBK text in a file named .xls."""
    name = "ems_export_tab_gbk.xls"
    meters = {"水泵房": (5_432.10, 22.0), "办公楼": (1_876.55, 8.0)}
    times = _times(dt.datetime(2025, 10, 20), 3 * 24, 60)
    rows, totals, n = [["序号", "抄表时间", "设备名称", "电能示数(kWh)"]], [], 0
    for m, (s, st) in meters.items():
        vals = _cumulative(rng, len(times), s, st, 2)
        for t, v in zip(times, vals):
            n += 1
            rows.append([n, t.strftime("%Y-%m-%d %H:%M:%S"), m, v])
        b = _back(vals)
        totals.append(_t(m, b[-1] - b[0], "kWh"))
    _write_text(out / name, _csv_text(rows, delimiter="\t"), "gbk")
    return _record(name, "readings", "tab-separated GBK text named .xls (web EMS 'export to Excel'): 序号,抄表时间,设备名称,"
                   "电能示数(kWh); hourly cumulative", "xls-text", "gbk", len(rows) - 1, totals, register="cumulative",
                   period="2025-10")


def _unix_seconds(out: Path, rng) -> dict:
    """A gateway's CSV: 10-digit Unix seconds, English header, interval kWh."""
    name = "gateway_unix_seconds.csv"
    meters = {"M-0101": 44.0, "M-0102": 17.5}
    times = _times(dt.datetime(2025, 10, 9), 2 * 96, 15)
    rows, totals = [["timestamp", "meter_id", "energy_kwh"]], []
    for m, base in meters.items():
        vals = _interval(rng, len(times), base, 3)
        for t, v in zip(times, vals):
            epoch = int((t - dt.timedelta(hours=8)).replace(tzinfo=dt.timezone.utc).timestamp())
            rows.append([epoch, m, v])
        totals.append(_t(m, sum(_back(vals)), "kWh"))
    _write_text(out / name, _csv_text(rows, lineterminator="\n"), "utf-8")
    return _record(name, "readings", "timestamp (10-digit Unix seconds, UTC),meter_id,energy_kwh; 15-min interval",
                   "csv", "utf-8", len(rows) - 1, totals, register="interval", period="2025-10")


def _daily_wan_kwh(out: Path, rng) -> dict:
    """Daily consumption of the plant's gate meters in 万kWh, dates like 2025/10/1."""
    name = "daily_gate_meters_wan_kwh.csv"
    meters = {"0330012345": 6.2, "0330012346": 2.9}
    days = _times(dt.datetime(2025, 10, 1), 31, 24 * 60)
    rows, totals = [["日期", "表号", "日用电量(万kWh)"]], []
    for m, base in meters.items():
        vals = [_f(base * (1 + 0.12 * rng.standard_normal()), 4) for _ in days]
        rows += [[f"{d.year}/{d.month}/{d.day}", m, v] for d, v in zip(days, vals)]
        totals.append(_t(m, sum(_back(vals)) * 10_000, "kWh"))
    _write_text(out / name, _csv_text(rows), "utf-8-sig")
    return _record(name, "readings", "日期 (2025/10/1),表号,日用电量(万kWh); daily interval; UTF-8 with BOM", "csv",
                   "utf-8-sig", len(rows) - 1, totals, register="interval", period="2025-10")


def _two_columns(out: Path, rng) -> dict:
    """A hand-kept export of one meter: time and reading, nothing else."""
    name = "two_columns_time_reading.csv"
    times = _times(dt.datetime(2025, 10, 1), 31 * 24, 60)
    vals = _cumulative(rng, len(times), 7_654.3, 35.0, 1)
    rows = [["时间", "读数"]] + [[t.strftime("%Y-%m-%d %H:%M"), v] for t, v in zip(times, vals)]
    b = _back(vals)
    _write_text(out / name, _csv_text(rows), "utf-8")
    return _record(name, "readings", "时间,读数 — one meter, hourly register readings, no meter id, no unit", "csv",
                   "utf-8", len(rows) - 1, [_t("M01", b[-1] - b[0], "kWh")], register="cumulative",
                   hints=["--meter", "M01", "--unit", "kWh"], period="2025-10",
                   why="no meter id and no unit in the file")


def _yearly(out: Path, rng) -> dict:
    """A year of 15-minute interval data for one meter (35,040 rows), UTF-8 with BOM."""
    name = "year_15min_kiln_main.csv"
    times = _times(dt.datetime(2025, 1, 1), 365 * 96, 15)
    vals = _interval(rng, len(times), 820.0, 2)
    rows = [["时间", "表计编号", "有功电量(kWh)"]] + [[t.strftime("%Y-%m-%d %H:%M"), "KILN-01", v]
                                                   for t, v in zip(times, vals)]
    _write_text(out / name, _csv_text(rows), "utf-8-sig")
    return _record(name, "readings", "时间,表计编号,有功电量(kWh); a year at 15 min (35,040 rows); interval", "csv",
                   "utf-8-sig", len(rows) - 1, [_t("KILN-01", sum(_back(vals)), "kWh")], register="interval",
                   period="2025")


def _multiplier(out: Path, rng) -> dict:
    """Daily meter reading sheet of the utility meters: register readings × 倍率 (CT/PT ratio)."""
    name = "meter_reading_sheet_multiplier.csv"
    meters = {"4401019981": (5_210.37, 6.1, 80), "4401019982": (2_004.81, 2.4, 120)}
    days = _times(dt.datetime(2025, 10, 1), 32, 24 * 60)
    rows, totals = [["抄表日期", "户号", "表号", "本次示数", "倍率"]], []
    for m, (s, st, k) in meters.items():
        vals = _cumulative(rng, len(days), s, st, 2)
        rows += [[d.strftime("%Y-%m-%d"), "3301234567", m, v, k] for d, v in zip(days, vals)]
        b = _back(vals)
        totals.append(_t(m, (b[-1] - b[0]) * k, "kWh"))
    _write_text(out / name, _csv_text(rows), "gbk")
    return _record(name, "readings", "抄表日期,户号,表号,本次示数,倍率 — daily register readings; kWh = Δ示数 × 倍率",
                   "csv", "gbk", len(rows) - 1, totals, register="cumulative", hints=["--unit", "kWh"],
                   period="2025-10", why="示数 carries no unit (the kWh come from 示数 × 倍率)")


def _hourly_slash(out: Path, rng) -> dict:
    """Hourly circuits, timestamps like 2025/10/1 0:15 (no zero padding), GBK."""
    name = "hourly_circuits_slash_gbk.csv"
    meters = {"AA1-1 生料车间": 260.0, "AA1-2 水泥磨": 410.0, "AA2-5 照明": 12.0}
    times = _times(dt.datetime(2025, 10, 1, 0, 15), 3 * 24, 60)
    rows, totals = [["时间", "回路名称", "用电量(kWh)"]], []
    for m, base in meters.items():
        vals = _interval(rng, len(times), base, 1)
        rows += [[f"{t.year}/{t.month}/{t.day} {t.hour}:{t.minute:02d}", m, v] for t, v in zip(times, vals)]
        totals.append(_t(m, sum(_back(vals)), "kWh"))
    _write_text(out / name, _csv_text(rows), "gbk")
    return _record(name, "readings", "时间 (2025/10/1 0:15),回路名称,用电量(kWh); hourly interval; GBK", "csv", "gbk",
                   len(rows) - 1, totals, register="interval", period="2025-10")


def _wh_iso(out: Path, rng) -> dict:
    """A power meter's logger: ISO 8601 with offset, Wh register."""
    name = "logger_iso_offset_wh.csv"
    meters = {"PM5560-Line3": (48_210_554.0, 21_000.0)}
    times = _times(dt.datetime(2025, 10, 5), 2 * 96, 15)
    rows, totals = [["Timestamp", "Device", "Active Energy Import (Wh)", "Active Power (W)"]], []
    for m, (s, st) in meters.items():
        vals = _cumulative(rng, len(times), s, st, 0)
        rows += [[t.strftime("%Y-%m-%dT%H:%M:%S+08:00"), m, v, _f(float(rng.uniform(70_000, 95_000)), 0)]
                 for t, v in zip(times, vals)]
        b = _back(vals)
        totals.append(_t(m, (b[-1] - b[0]) / 1000, "kWh"))
    _write_text(out / name, _csv_text(rows), "utf-8")
    return _record(name, "readings", "Timestamp (ISO 8601 +08:00),Device,Active Energy Import (Wh),Active Power (W); "
                   "cumulative Wh", "csv", "utf-8", len(rows) - 1, totals, register="cumulative", period="2025-10")


def _gas_nm3(out: Path, rng) -> dict:
    """A gas flow computer: standard-volume totaliser next to flow, temperature and pressure."""
    name = "gas_flow_computer_nm3.csv"
    times = _times(dt.datetime(2025, 10, 3), 2 * 288, 5)
    vals = _cumulative(rng, len(times), 1_204_560.0, 18.0, 1)
    rows = [["时间", "流量计", "标况累计流量(Nm³)", "工况瞬时流量(m³/h)", "温度(℃)", "压力(kPa)"]]
    rows += [[t.strftime("%Y-%m-%d %H:%M:%S"), "FT-101 窑头燃气", v, _f(rng.uniform(180, 260), 1),
              _f(rng.uniform(18, 24), 1), _f(rng.uniform(295, 305), 1)] for t, v in zip(times, vals)]
    b = _back(vals)
    _write_text(out / name, _csv_text(rows), "utf-8")
    return _record(name, "readings", "时间,流量计,标况累计流量(Nm³),工况瞬时流量(m³/h),温度(℃),压力(kPa); 5 min; the "
                   "standard-volume totaliser is the register", "csv", "utf-8", len(rows) - 1,
                   [_t("FT-101 窑头燃气", b[-1] - b[0], "Nm3")], register="cumulative", period="2025-10")


# ============================================================================ readings: workbooks

def _xlsx_daily_circuits(out: Path, rng) -> dict:
    """EMS daily report: title, unit/period line, circuits as rows, days as columns, 合计 and 总计."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    name = "ems_daily_report_circuits.xlsx"
    circuits = {"1#窑主电机": 9_800.0, "生料立磨": 21_500.0, "煤磨": 4_300.0, "篦冷机风机": 6_100.0,
                "水泥磨1#": 18_700.0, "空压站": 3_900.0}
    days = _times(dt.datetime(2025, 10, 1), 7, 24 * 60)
    wb = Workbook()
    ws = wb.active
    ws.title = "日报表"
    ncol = 3 + len(days)
    ws.cell(1, 1, f"{COMPANY} 配电室日用电量报表")
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncol)
    ws.cell(1, 1).font = Font(bold=True, size=14)
    ws.cell(1, 1).alignment = Alignment(horizontal="center")
    ws.cell(2, 1, "统计周期：2025-10-01 至 2025-10-07")
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=4)
    ws.cell(2, ncol - 1, "单位：kWh")
    header = ["序号", "回路名称", *[f"{d.month}月{d.day}日" for d in days], "合计"]
    for j, h in enumerate(header, start=1):
        ws.cell(3, j, h)
    totals, grand = [], [0.0] * (len(days) + 1)
    for i, (c, base) in enumerate(circuits.items(), start=1):
        vals = [round(base * (1 + 0.1 * rng.standard_normal()), 1) for _ in days]
        ws.cell(3 + i, 1, i)
        ws.cell(3 + i, 2, c)
        for j, v in enumerate(vals):
            ws.cell(3 + i, 3 + j, v)
            grand[j] += v
        s = round(sum(vals), 1)
        ws.cell(3 + i, 3 + len(days), s)
        grand[-1] += s
        totals.append(_t(c, sum(vals), "kWh"))
    r = 4 + len(circuits)
    ws.cell(r, 1, "总计")
    ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=2)
    for j, v in enumerate(grand):
        ws.cell(r, 3 + j, round(v, 1))
    ws.cell(r + 2, 1, "制表：能源管理系统    打印时间：2025-10-08 08:30")
    _save_workbook(wb, out / name)
    return _record(name, "readings", "XLSX daily report: merged title, 统计周期 and 单位：kWh line, 序号|回路名称|10月1日…|合计; "
                   "circuits as rows; a 总计 row and a footer", "xlsx", None, len(circuits) * len(days), totals,
                   register="interval", period="2025-10")


def _xlsx_substation(out: Path, rng) -> dict:
    """Substation hourly workbook: title rows above a two-row merged header (meter over quantity)."""
    from openpyxl import Workbook
    name = "substation_hourly_merged_header.xlsx"
    meters = {"1#主变": 3_100.0, "2#主变": 2_450.0}
    times = _times(dt.datetime(2025, 10, 20), 2 * 24, 60)
    wb = Workbook()
    ws = wb.active
    ws.title = "电量数据"
    ws.cell(1, 1, f"{COMPANY} 110kV变电站 整点电量")
    ws.merge_cells("A1:E1")
    ws.cell(2, 1, "导出时间：2025-10-22 09:12:40")
    ws.merge_cells("A2:E2")
    ws.cell(3, 1, "时间")
    ws.merge_cells("A3:A4")
    col = 2
    for m in meters:
        ws.cell(3, col, m)
        ws.merge_cells(start_row=3, start_column=col, end_row=3, end_column=col + 1)
        ws.cell(4, col, "有功电量(kWh)")
        ws.cell(4, col + 1, "无功电量(kvarh)")
        col += 2
    act = {m: [round(v, 2) for v in _back(_interval(rng, len(times), b, 2))] for m, b in meters.items()}
    for i, t in enumerate(times):
        ws.cell(5 + i, 1, t).number_format = "yyyy-mm-dd hh:mm"
        col = 2
        for m in meters:
            ws.cell(5 + i, col, act[m][i])
            ws.cell(5 + i, col + 1, round(act[m][i] * float(rng.uniform(0.3, 0.45)), 2))
            col += 2
    _save_workbook(wb, out / name)
    return _record(name, "readings", "XLSX: two title rows, header 时间 (merged over 2 rows) | 1#主变 (merged over 有功电量(kWh), "
                   "无功电量(kvarh)) | 2#主变 (…); hourly interval; Excel datetimes", "xlsx", None, len(times),
                   [_t(m, sum(v), "kWh") for m, v in act.items()], register="interval", period="2025-10")


# ============================================================================ readings: traps

def _trap_cumulative_as_interval(out: Path, rng) -> dict:
    name = "trap_register_labelled_consumption.csv"
    meter = "3#窑尾排风机"
    times = _times(dt.datetime(2025, 10, 4), 3 * 96, 15)
    vals = _cumulative(rng, len(times), 15_020.0, 52.0, 2)
    rows = [["时间", "表计名称", "本时段用电量(kWh)"]] + [[t.strftime("%Y-%m-%d %H:%M"), meter, v]
                                                      for t, v in zip(times, vals)]
    b = _back(vals)
    _write_text(out / name, _csv_text(rows), "utf-8")
    return _record(name, "readings", "时间,表计名称,本时段用电量(kWh) — the header says interval consumption, the values are a "
                   "register that only grows", "csv", "utf-8", len(rows) - 1, [_t(meter, b[-1] - b[0], "kWh")],
                   register="cumulative", hints=["--register", "cumulative"], trap=True,
                   quarantined=0, quarantined_without_hints=len(times), totals_without_hints=[],
                   why="a cumulative register exported under an interval header: summing it would count "
                       f"{sum(b):,.0f} kWh instead of {b[-1] - b[0]:,.2f}; must be quarantined (register shape) "
                       "unless --register cumulative")


def _trap_text_values(out: Path, rng) -> dict:
    name = "trap_text_in_value_column.csv"
    meters = {"4#破碎机": 95.0, "5#皮带": 14.0}
    times = _times(dt.datetime(2025, 10, 6), 2 * 96, 15)
    bad_words = ["通讯中断", "--", "#VALUE!", "离线"]
    rows, totals, nbad = [["采集时间", "表计名称", "用电量(kWh)"]], [], 0
    for k, (m, base) in enumerate(meters.items()):
        vals = _interval(rng, len(times), base, 2)
        bad = set(rng.choice(len(times), size=5 + k, replace=False).tolist())
        good = []
        for i, (t, v) in enumerate(zip(times, vals)):
            if i in bad:
                rows.append([t.strftime("%Y-%m-%d %H:%M"), m, bad_words[i % len(bad_words)]])
                nbad += 1
            else:
                rows.append([t.strftime("%Y-%m-%d %H:%M"), m, v])
                good.append(v)
        totals.append(_t(m, sum(_back(good)), "kWh"))
    _write_text(out / name, _csv_text(rows), "gbk")
    return _record(name, "readings", "采集时间,表计名称,用电量(kWh) with text (通讯中断, --, #VALUE!, 离线) in some value cells",
                   "csv", "gbk", len(rows) - 1, totals, register="interval", quarantined=nbad, trap=True,
                   why="text where a number belongs: those rows are quarantined with the reason, the rest stored")


def _trap_conflicts(out: Path, rng) -> dict:
    name = "trap_conflicting_duplicates.csv"
    meter = "MCC-07"
    times = _times(dt.datetime(2025, 10, 10), 2 * 96, 15)
    vals = _interval(rng, len(times), 30.0, 2)
    dup = sorted(rng.choice(len(times), size=3, replace=False).tolist())
    rows, kept = [["时间", "表计", "电量(kWh)"]], []
    for i, (t, v) in enumerate(zip(times, vals)):
        rows.append([t.strftime("%Y-%m-%d %H:%M"), meter, v])
        if i in dup:   # the gateway re-sent the interval with another value
            rows.append([t.strftime("%Y-%m-%d %H:%M"), meter, _f(float(v) * 1.5 + 1, 2)])
        else:
            kept.append(v)
    _write_text(out / name, _csv_text(rows), "utf-8")
    return _record(name, "readings", "时间,表计,电量(kWh); three timestamps sent twice with different values", "csv",
                   "utf-8", len(rows) - 1, [_t(meter, sum(_back(kept)), "kWh")], register="interval",
                   quarantined=2 * len(dup), trap=True,
                   why="two values for one (meter, time): both rows quarantined, neither averaged nor picked")


def _trap_impossible_dates(out: Path, rng) -> dict:
    name = "trap_impossible_dates.csv"
    meter = "P-21 循环水泵"
    times = _times(dt.datetime(2025, 2, 27), 2 * 96, 15)
    vals = _interval(rng, len(times), 18.0, 2)
    bad = _interval(rng, 4, 18.0, 2)
    rows = [["采集时间", "表计名称", "用电量(kWh)"]]
    rows += [[t.strftime("%Y-%m-%d %H:%M"), meter, v] for t, v in zip(times, vals)]
    rows += [[f"2025-02-29 00:{15 * i:02d}", meter, v] for i, v in enumerate(bad)]   # a logger's calendar bug
    later = _times(dt.datetime(2025, 3, 1), 8, 15)
    vals2 = _interval(rng, len(later), 18.0, 2)
    rows += [[t.strftime("%Y-%m-%d %H:%M"), meter, v] for t, v in zip(later, vals2)]
    _write_text(out / name, _csv_text(rows), "utf-8")
    return _record(name, "readings", "采集时间,表计名称,用电量(kWh); four rows dated 2025-02-29 (no such day)", "csv",
                   "utf-8", len(rows) - 1, [_t(meter, sum(_back(vals)) + sum(_back(vals2)), "kWh")],
                   register="interval", quarantined=4, trap=True,
                   why="impossible timestamps: those rows are quarantined, never moved to another day")


# ============================================================================ activity

def _sap(out: Path, rng) -> dict:
    name = "sap_goods_issues_gbk.csv"
    mats = {"10000123": ("原煤", "TO", "raw_coal", 1.0, 1.0, 420.0),
            "10000456": ("柴油", "KG", "diesel", 1e-3, 1.0, 1_800.0),
            "10000789": ("天然气", "M3", "natural_gas", 1e-4, 1.0, 21_000.0)}
    rows = [["物料", "物料描述", "工厂", "库存地点", "移动类型", "过账日期", "数量", "计量单位", "金额(本币)"]]
    sums = {}
    for mat, (desc, uom, item, k, _, base) in mats.items():
        for d in range(1, 32, 3):
            q = round(base * (1 + 0.2 * rng.standard_normal()), 0 if uom != "TO" else 3)
            rows.append([mat, desc, "1000", "0001", "261", f"2025.10.{d:02d}", _f(q, 3), uom, _f(q * 0.9, 2)])
            sums[item] = sums.get(item, 0.0) + float(_f(q, 3)) * k
        q = round(base * 0.5, 3)   # a reversal (262) of an over-issue
        rows.append([mat, desc, "1000", "0001", "262", "2025.10.30", _f(-q, 3), uom, _f(-q * 0.9, 2)])
        sums[item] += float(_f(-q, 3)) * k
    units = {"raw_coal": "t", "diesel": "t", "natural_gas": "10^4 Nm3"}
    _write_text(out / name, _csv_text(rows), "gbk")
    return _record(name, "activity", "SAP MB51-like: 物料,物料描述,工厂,库存地点,移动类型,过账日期 (2025.10.03),数量,计量单位 "
                   "(TO, KG, M3),金额; a 262 reversal with a negative quantity", "csv", "gbk", len(rows) - 1,
                   [_t(i, q, units[i], "item") for i, q in sums.items()], period="2025-10")


def _erp_english(out: Path, rng) -> dict:
    name = "erp_material_transactions_en.csv"
    items = {"NG-PIPE": ("Natural gas", "Nm3", "natural_gas", 1e-4, 9_000.0),
             "DSL-0": ("Diesel", "T", "diesel", 1.0, 2.4),
             "ELEC-GRID": ("Electricity", "MWh", "grid", 1.0, 310.0)}
    rows = [["Transaction Date", "Item", "Description", "UOM", "Quantity", "Subinventory", "Transaction Type"]]
    sums = {}
    for code, (desc, uom, item, k, base) in items.items():
        for d in range(2, 31, 4):
            q = _f(base * (1 + 0.15 * rng.standard_normal()), 3)
            rows.append([f"2025-10-{d:02d}", code, desc, uom, q, "PLANT-01", "Issue to production"])
            sums[item] = sums.get(item, 0.0) + float(q) * k
    units = {"natural_gas": "10^4 Nm3", "diesel": "t", "grid": "MWh"}
    _write_text(out / name, _csv_text(rows), "utf-8")
    return _record(name, "activity", "English ERP: Transaction Date,Item,Description,UOM,Quantity,Subinventory,Transaction Type",
                   "csv", "utf-8", len(rows) - 1, [_t(i, q, units[i], "item") for i, q in sums.items()], period="2025-10")


def _kingdee(out: Path, rng) -> dict:
    from openpyxl import Workbook
    name = "kingdee_material_issues.xlsx"
    mats = [("01.01.001", "烟煤", "Q5500", "吨", "bituminous_coal", 1.0, 160.0),
            ("01.02.003", "柴油", "0#", "吨", "diesel", 1.0, 1.1),
            ("01.02.010", "液化石油气", "YSQ50", "千克", "lpg", 1e-3, 300.0)]
    wb = Workbook()
    ws = wb.active
    ws.title = "材料出库单序时簿"
    ws.append(["材料出库单序时簿"])
    ws.merge_cells("A1:I1")
    ws.append(["日期", "单据编号", "物料编码", "物料名称", "规格型号", "单位", "实发数量", "单价", "金额"])
    sums, n = {}, 0
    for day in range(1, 29, 2):
        for code, nm, spec, unit, item, k, base in mats:
            q = round(base * (1 + 0.2 * rng.standard_normal()), 2)
            n += 1
            ws.append([dt.datetime(2025, 10, day), f"SOUT{202510000 + n}", code, nm, spec, unit, q, 880.0,
                       round(q * 880.0, 2)])
            ws.cell(ws.max_row, 1).number_format = "yyyy-mm-dd"
            sums[item] = sums.get(item, 0.0) + q * k
    ws.append(["合计", "", "", "", "", "", None, None, None])
    _save_workbook(wb, out / name)
    return _record(name, "activity", "Kingdee 材料出库单序时簿 XLSX: title row, 日期,单据编号,物料编码,物料名称,规格型号,单位 "
                   "(吨, 千克),实发数量,单价,金额; an empty 合计 row", "xlsx", None, n,
                   [_t(i, q, "t", "item") for i, q in sums.items()], period="2025-10")


def _ledger_xlsx(out: Path, rng) -> dict:
    from openpyxl import Workbook
    name = "energy_ledger_2025_months.xlsx"
    energies = [("原煤", "吨", "raw_coal", 1.0, "t", 9_800.0, 1),
                ("电力", "万千瓦时", "grid", 10.0, "MWh", 610.0, 2),
                ("天然气", "万立方米", "natural_gas", 1.0, "10^4 Nm3", 18.5, 2),
                ("柴油", "吨", "diesel", 1.0, "t", 21.0, 2)]
    wb = Workbook()
    ws = wb.active
    ws.title = "2025年"
    ws.append(["2025年 能源消费台账"])
    ws.merge_cells("A1:N1")
    ws.append(["填报单位：" + COMPANY])
    ws.append(["能源品种", "计量单位", *[f"{m}月" for m in range(1, 11)], "累计", "备注"])
    totals = []
    for nm, unit, item, k, lib_unit, base, nd in energies:
        vals = [round(base * (1 + 0.08 * rng.standard_normal()), nd) for _ in range(10)]
        ws.append([nm, unit, *vals, round(sum(vals), nd), ""])
        totals.append(_t(item, sum(vals) * k, lib_unit, "item"))
    ws.append(["折标准煤合计", "吨标准煤", *[None] * 10, 123_456.7, "按当量值"])
    _save_workbook(wb, out / name)
    return _record(name, "activity", "monthly ledger 台账 XLSX: merged title, 填报单位 line, 能源品种|计量单位|1月…10月|累计|备注; "
                   "a 折标准煤合计 row", "xlsx", None, len(energies) * 10, totals, period="2025-01..2025-10")


def _ledger_long_gbk(out: Path, rng) -> dict:
    name = "energy_ledger_long_gbk.csv"
    energies = [("电力", "kWh", "grid", 1e-3, "MWh", 1_850_000.0, 0),
                ("天然气", "立方米", "natural_gas", 1e-4, "10^4 Nm3", 152_000.0, 0),
                ("热力", "GJ", "heat", 1.0, "GJ", 2_300.0, 1)]
    rows = [["月份", "车间", "能源品种", "消耗量", "计量单位"]]
    sums = {}
    for m in range(1, 11):
        for ws in ("烧成车间", "制成车间"):
            for nm, unit, item, k, lib_unit, base, nd in energies:
                q = _f(base * (1 + 0.1 * rng.standard_normal()), nd)
                rows.append([f"2025-{m:02d}", ws, nm, q, unit])
                sums[item] = sums.get(item, 0.0) + float(q) * k
    units = {e[2]: e[4] for e in energies}
    _write_text(out / name, _csv_text(rows), "gbk")
    return _record(name, "activity", "long ledger: 月份,车间,能源品种,消耗量,计量单位 (kWh, 立方米, GJ); GBK", "csv", "gbk",
                   len(rows) - 1, [_t(i, q, units[i], "item") for i, q in sums.items()], period="2025-01..2025-10")


def _template(out: Path, rng) -> dict:
    name = "activity_template_filled.csv"
    lines = [("purchased_electricity", "grid", 1_204.5, "MWh"), ("combustion", "natural_gas", 22.41, "10^4 Nm3"),
             ("combustion", "raw_coal", 10_320.0, "t"), ("purchased_heat", "heat", 2_310.0, "GJ")]
    rows = [["source", "item", "quantity", "unit", "period", "facility", "document"]]
    rows += [[s, i, q, u, "2025-10", "F01", "2025年10月能源台账"] for s, i, q, u in lines]
    _write_text(out / name, _csv_text(rows), "utf-8")
    return _record(name, "activity", "the workbench's own activity template: source,item,quantity,unit,period,facility,document",
                   "csv", "utf-8", len(lines), [_t(i, q, u, "item") for _, i, q, u in lines], period="2025-10")


def _weighbridge(out: Path, rng) -> dict:
    name = "weighbridge_coal_gb18030.csv"
    rows = [["过磅日期", "车牌号", "供应商", "货物名称", "毛重(吨)", "皮重(吨)", "净重(吨)"]]
    net = 0.0
    plates = ["浙E", "皖B", "苏E"]
    for i in range(60):
        gross = round(float(rng.uniform(45, 49)), 2)
        tare = round(float(rng.uniform(14, 16.5)), 2)
        d = dt.datetime(2025, 10, 1) + dt.timedelta(hours=12 * i)
        rows.append([d.strftime("%Y-%m-%d %H:%M"), f"{plates[i % 3]}{int(rng.integers(10000, 99999))}", RARE_SUPPLIER,
                     "原煤", _f(gross, 2), _f(tare, 2), _f(gross - tare, 2)])
        net += float(_f(gross - tare, 2))
    _write_text(out / name, _csv_text(rows), "gb18030")
    return _record(name, "activity", "weighbridge tickets: 过磅日期,车牌号,供应商 (䶮, GB18030 only),货物名称,毛重(吨),皮重(吨),"
                   "净重(吨); the delivered quantity is 净重", "csv", "gb18030", len(rows) - 1,
                   [_t("raw_coal", net, "t", "item")], period="2025-10")


def _trap_activity_text(out: Path, rng) -> dict:
    name = "trap_activity_text_quantity.csv"
    rows = [["日期", "能源名称", "数量", "单位", "备注"]]
    total = 0.0
    texts = {4: "见附件", 9: "待定"}
    for i in range(14):
        d = f"2025-10-{2 * i + 1:02d}"
        if i in texts:
            rows.append([d, "柴油", texts[i], "吨", "补录"])
        else:
            q = _f(float(rng.uniform(0.8, 2.5)), 3)
            rows.append([d, "柴油", q, "吨", ""])
            total += float(q)
    _write_text(out / name, _csv_text(rows), "utf-8-sig")
    return _record(name, "activity", "日期,能源名称,数量,单位,备注 with 见附件 / 待定 in 数量", "csv", "utf-8-sig",
                   len(rows) - 1, [_t("diesel", total, "t", "item")], quarantined=len(texts), trap=True,
                   period="2025-10", why="text in the quantity column: those rows quarantined, the rest stored")


# ============================================================================ statistics (205-1)

# name, unit, code, library item, factor to the library unit, library unit, typical consumption, decimals
_ENERGY_205 = [
    ("原煤", "吨", "01", "raw_coal", 1.0, "t", 10_500.0, 2),
    ("洗精煤", "吨", "02", None, 1.0, "t", 0.0, 2),
    ("焦炭", "吨", "08", None, 1.0, "t", 0.0, 2),
    ("天然气", "万立方米", "15", "natural_gas", 1.0, "10^4 Nm3", 19.8, 2),
    ("汽油", "吨", "18", "gasoline", 1.0, "t", 3.2, 3),
    ("柴油", "吨", "20", "diesel", 1.0, "t", 24.6, 3),
    ("液化石油气", "吨", "22", None, 1.0, "t", 0.0, 3),
    ("热力", "百万千焦", "32", "heat", 1.0, "GJ", 2_150.0, 1),
    ("电力", "万千瓦时", "33", "grid", 10.0, "MWh", 630.0, 2),
]
_HEAD_205 = ["能源名称", "计量单位", "代码", "期初库存量", "购进量", "", "消费量", "", "", "", "期末库存量",
             "采用折标系数", "参考折标系数"]
_SUB_205 = ["", "", "", "", "实物量", "金额（千元）", "合计", "1.工业生产消费", "#用作原料、材料", "2.非工业生产消费", "",
            "", ""]
_COEF = {"原煤": 0.7143, "洗精煤": 0.9, "焦炭": 0.9714, "天然气": 12.143, "汽油": 1.4714, "柴油": 1.4571,
         "液化石油气": 1.7143, "热力": 0.0341, "电力": 1.229}


def _rows_205(rng):
    """(table rows, totals) of one month of form 205-1."""
    body, totals, tce = [], [], 0.0
    for nm, unit, code, item, k, lib_unit, base, nd in _ENERGY_205:
        if base == 0:
            body.append([nm, unit, code, "", "", "", "", "", "", "", "", "", ""])
            continue
        total = round(base * (1 + 0.1 * rng.standard_normal()), nd)
        non_ind = round(total * 0.03, nd)
        ind = round(total - non_ind, nd)
        stock0 = round(base * 0.4, nd) if unit == "吨" and nm in ("原煤", "柴油") else 0.0
        bought = round(total + (stock0 * 0.1 if stock0 else 0.0), nd)
        stock1 = round(stock0 + bought - total, nd)
        body.append([nm, unit, code, stock0 or "", bought, round(bought * float(rng.uniform(0.5, 0.9)), 1), total, ind,
                     "", non_ind, stock1 or "", _COEF[nm], _COEF[nm]])
        totals.append(_t(item, total * k, lib_unit, "item"))
        tce += total * _COEF[nm]
    body.append(["能源合计", "吨标准煤", "99", "", "", "", round(tce, 2), "", "", "", "", "", ""])
    return body, totals


def _stat_xlsx(out: Path, rng) -> dict:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment
    name = "stats_205-1_2025-10.xlsx"
    body, totals = _rows_205(rng)
    wb = Workbook()
    ws = wb.active
    ws.title = "205-1"
    ws.cell(1, 1, "能源购进、消费与库存")
    ws.merge_cells("A1:M1")
    ws.cell(1, 1).alignment = Alignment(horizontal="center")
    ws.cell(2, 1, "统一社会信用代码：91330522MA2B3C4D5E")
    ws.cell(2, 11, "表    号：205-1表")
    ws.cell(3, 1, f"单位详细名称：{COMPANY}")
    ws.cell(3, 11, "制定机关：国家统计局")
    ws.cell(4, 1, "2025年10月")
    ws.cell(4, 11, "有效期至：2026年6月")
    for j, (h, s) in enumerate(zip(_HEAD_205, _SUB_205), start=1):
        if h:
            ws.cell(5, j, h)
        if s:
            ws.cell(6, j, s)
    for col in ("A", "B", "C", "D", "K", "L", "M"):
        ws.merge_cells(f"{col}5:{col}6")
    ws.merge_cells("E5:F5")
    ws.merge_cells("G5:J5")
    for j, c in enumerate(["甲", "乙", "丙", *range(1, 11)], start=1):
        ws.cell(7, j, c)
    for i, row in enumerate(body):
        for j, v in enumerate(row, start=1):
            if v != "":
                ws.cell(8 + i, j, v)
    r = 8 + len(body) + 1
    ws.cell(r, 1, "单位负责人：张伟    统计负责人：李娜    填表人：王丽    报出日期：2025年11月5日")
    ws.cell(r + 1, 1, "说明：1.本表由规模以上工业法人单位填报。2.主要逻辑审核关系：消费量合计≥工业生产消费。")
    _save_workbook(wb, out / name)
    return _record(name, "statistics", "form 205-1 XLSX: merged title, 表号/制定机关 block, 2025年10月, two-row merged header "
                   "(购进量: 实物量, 金额; 消费量: 合计, 1.工业生产消费, #用作原料、材料, 2.非工业生产消费), 甲乙丙/1…10 code "
                   "row, empty energy rows, 能源合计 (吨标准煤), signature and notes", "xlsx", None, len(totals), totals,
                   period="2025-10")


def _stat_csv(out: Path, rng) -> dict:
    name = "stats_205-1_2025-09_gbk.csv"
    body, totals = _rows_205(rng)
    rows = [["能源购进、消费与库存"] + [""] * 12,
            ["单位详细名称：" + COMPANY] + [""] * 9 + ["表    号：205-1表", "", ""],
            ["2025年9月"] + [""] * 12,
            _HEAD_205, _SUB_205, ["甲", "乙", "丙", *map(str, range(1, 11))], *body,
            ["单位负责人：张伟", "", "", "统计负责人：李娜", "", "", "填表人：王丽"] + [""] * 6]
    _write_text(out / name, _csv_text(rows), "gbk")
    return _record(name, "statistics", "form 205-1 saved from Excel as CSV (GBK): title lines, the two header rows as two "
                   "CSV lines with blanks where cells were merged, code row, 能源合计 row, signature line", "csv", "gbk",
                   len(totals), totals, period="2025-09")


# ---------------------------------------------------------------------------- a minimal text PDF writer

class _PdfPage:
    """A text PDF page (A4 landscape, points) with the Adobe-GB1 standard font STSong-Light (not embedded;
    PDF readers and pdfminer know it) — what government and e-invoice systems print."""

    def __init__(self, width=842, height=595):
        self.w, self.h = width, height
        self.ops: list[str] = []

    def text(self, x, y, s, size=10):
        hexs = "".join(f"{ord(c):04X}" for c in s)
        self.ops.append(f"BT /F1 {size} Tf {x:.1f} {self.h - y:.1f} Td <{hexs}> Tj ET")

    def line(self, x0, y0, x1, y1, width=0.6):
        self.ops.append(f"{width} w {x0:.1f} {self.h - y0:.1f} m {x1:.1f} {self.h - y1:.1f} l S")

    def table(self, x0, y0, widths, rows, row_h=18, size=8):
        x1 = x0 + sum(widths)
        for r in range(len(rows) + 1):
            self.line(x0, y0 + r * row_h, x1, y0 + r * row_h)
        x = x0
        for w in [*widths, 0]:
            self.line(x, y0, x, y0 + row_h * len(rows))
            x += w
        for r, row in enumerate(rows):
            x = x0
            for w, cell in zip(widths, row):
                s = str(cell)
                if s:
                    tw = sum(size * (0.5 if ord(c) < 128 else 1.0) for c in s)
                    self.text(x + max(2.0, (w - tw) / 2), y0 + r * row_h + row_h / 2 + size * 0.35, s, size)
                x += w
        return y0 + row_h * len(rows)


def _write_pdf(path: Path, page: _PdfPage) -> None:
    content = "\n".join(page.ops).encode("ascii")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {page.w} {page.h}] "
         f"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>").encode(),
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [6 0 R] >>",
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe) "
        b"/Ordering (GB1) /Supplement 4 >> /FontDescriptor 7 0 R /DW 1000 /W [1 95 500] >>",
        b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] /ItalicAngle 0 "
        b"/Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))


def _stat_pdf(out: Path, rng) -> dict:
    name = "stats_205-1_2025-08.pdf"
    body, totals = _rows_205(rng)
    p = _PdfPage()
    p.text(330, 40, "能源购进、消费与库存", 16)
    p.text(40, 70, f"单位详细名称：{COMPANY}", 9)
    p.text(620, 70, "表号：205-1表", 9)
    p.text(40, 86, "2025年8月", 9)
    p.text(620, 86, "制定机关：国家统计局", 9)
    header = ["能源名称", "计量单位", "代码", "期初库存量", "购进量实物量", "购进金额(千元)", "消费量合计", "工业生产消费",
              "用作原料材料", "非工业生产消费", "期末库存量", "采用折标系数", "参考折标系数"]
    widths = [58, 52, 30, 58, 66, 66, 62, 66, 62, 66, 58, 62, 62]
    y = p.table(30, 100, widths, [header, *[[("" if v == "" else v) for v in r] for r in body]], row_h=20, size=7)
    p.text(40, y + 24, "单位负责人：张伟   统计负责人：李娜   填表人：王丽   报出日期：2025年9月5日", 9)
    _write_pdf(out / name, p)
    return _record(name, "statistics", "form 205-1 printed to a text PDF by the online reporting system: one header row "
                   "(购进量实物量, 消费量合计 …), ruled table, STSong-Light", "pdf", None, len(totals), totals,
                   period="2025-08")


# ============================================================================ production

def _production_long(out: Path, rng) -> dict:
    name = "production_monthly_long.csv"
    rows = [["月份", "指标名称", "计量单位", "本月数"]]
    sums = {"熟料": 0.0, "水泥": 0.0, "value_added": 0.0}
    for m in range(1, 11):
        clinker = _f(float(rng.uniform(88_000, 98_000)), 0)
        cement = _f(float(clinker) * float(rng.uniform(1.2, 1.3)), 0)
        va = _f(float(rng.uniform(2_600, 3_200)), 1)
        rows += [[f"2025年{m}月", "熟料", "吨", clinker], [f"2025年{m}月", "水泥", "吨", cement],
                 [f"2025年{m}月", "工业增加值", "万元", va]]
        sums["熟料"] += float(clinker)
        sums["水泥"] += float(cement)
        sums["value_added"] += float(va)
    _write_text(out / name, _csv_text(rows), "utf-8-sig")
    units = {"熟料": "t", "水泥": "t", "value_added": "万元"}
    return _record(name, "production", "long: 月份 (2025年1月),指标名称 (熟料, 水泥, 工业增加值),计量单位,本月数", "csv",
                   "utf-8-sig", len(rows) - 1, [_t(k, v, units[k], "item") for k, v in sums.items()],
                   period="2025-01..2025-10")


def _production_xlsx(out: Path, rng) -> dict:
    from openpyxl import Workbook
    name = "production_value_added_2025-10.xlsx"
    wb = Workbook()
    ws = wb.active
    ws.title = "产品产量"
    ws.cell(1, 1, "主要产品产量及工业增加值月报")
    ws.merge_cells("A1:F1")
    ws.cell(2, 1, "2025年10月")
    ws.cell(2, 5, f"填报单位：{COMPANY}")
    ws.cell(3, 1, "产品名称")
    ws.cell(3, 2, "计量单位")
    ws.cell(3, 3, "本月")
    ws.cell(3, 5, "本年累计")
    ws.merge_cells("A3:A4")
    ws.merge_cells("B3:B4")
    ws.merge_cells("C3:D3")
    ws.merge_cells("E3:F3")
    for j, h in enumerate(["产量", "同比(%)", "产量", "同比(%)"], start=3):
        ws.cell(4, j, h)
    items = [("熟料", "吨", 94_000.0, 0), ("水泥", "吨", 118_000.0, 0), ("工业增加值", "万元", 2_950.0, 1)]
    totals = []
    for i, (nm, unit, base, nd) in enumerate(items):
        month = round(base * float(rng.uniform(0.95, 1.05)), nd)
        ytd = round(month * 9.7, nd)
        ws.append([nm, unit, month, round(float(rng.uniform(-5, 5)), 1), ytd, round(float(rng.uniform(-5, 5)), 1)])
        key = "value_added" if nm == "工业增加值" else nm
        totals.append(_t(key, month, "万元" if unit == "万元" else "t", "item"))
    _save_workbook(wb, out / name)
    return _record(name, "production", "XLSX: merged title, month line, header 产品名称 | 计量单位 | 本月 (产量, 同比%) | "
                   "本年累计 (产量, 同比%); the month's figures are 本月, not 本年累计", "xlsx", None, len(items), totals,
                   period="2025-10")


def _production_demo(out: Path, rng) -> dict:
    name = "production_monthly_workbench.csv"
    rows = [["period", "node_id", "value_added_10k_cny", "clinker_t", "cement_t"]]
    sums = {"clinker": 0.0, "cement": 0.0, "value_added": 0.0}
    for m in range(1, 11):
        va, cl = _f(float(rng.uniform(2_600, 3_200)), 1), _f(float(rng.uniform(88_000, 98_000)), 0)
        ce = _f(float(cl) * 1.25, 0)
        rows.append([f"2025-{m:02d}", "ENT", va, cl, ce])
        sums["value_added"] += float(va)
        sums["clinker"] += float(cl)
        sums["cement"] += float(ce)
    _write_text(out / name, _csv_text(rows, lineterminator="\n"), "utf-8")
    units = {"clinker": "t", "cement": "t", "value_added": "万元"}
    return _record(name, "production", "the workbench's monthly.csv: period,node_id,value_added_10k_cny,clinker_t,cement_t",
                   "csv", "utf-8", len(rows) - 1, [_t(k, v, units[k], "item") for k, v in sums.items()],
                   period="2025-01..2025-10")


# ============================================================================ bills (images, PDFs)

_INK, _GREY, _LINE = (25, 25, 25), (110, 110, 110), (150, 150, 150)


@cache
def _font_file(bold: bool = False) -> tuple[str, int]:
    pattern = "Noto Sans CJK SC:bold" if bold else "Noto Sans CJK SC"
    try:
        res = subprocess.run(["fc-match", "-f", "%{file}|%{index}", pattern], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        file, _, index = res.partition("|")
        if file and "CJK" in file and Path(file).exists():
            return file, int(index or 0)
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    for path in sorted(Path("/usr/share/fonts").rglob("NotoSansCJK*.tt*")):
        return str(path), 2
    raise RuntimeError("no CJK font found to render the bills (install fonts-noto-cjk)")


@cache
def _font(size: int, bold: bool = False):
    from PIL import ImageFont
    file, index = _font_file(bold)
    return ImageFont.truetype(file, size, index=index)


class _Page:
    def __init__(self, size=(1000, 700)):
        from PIL import Image, ImageDraw
        self.size = size
        self.img = Image.new("RGB", size, "white")
        self.d = ImageDraw.Draw(self.img)

    def text(self, xy, s, size=20, bold=False, fill=_INK, anchor="la"):
        self.d.text(xy, s, font=_font(size, bold), fill=fill, anchor=anchor)

    def rule(self, y, x0=40, x1=960, width=1, fill=_LINE):
        self.d.line([(x0, y), (x1, y)], fill=fill, width=width)

    def table(self, x0, y0, widths, rows, row_h=38, size=18):
        x1, y1 = x0 + sum(widths), y0 + row_h * len(rows)
        self.d.rectangle([x0, y0, x1, y0 + row_h], fill=(238, 238, 238))
        for r in range(len(rows) + 1):
            self.d.line([(x0, y0 + r * row_h), (x1, y0 + r * row_h)], fill=_LINE, width=1)
        x = x0
        for w in [*widths, 0]:
            self.d.line([(x, y0), (x, y1)], fill=_LINE, width=1)
            x += w
        for r, row in enumerate(rows):
            x = x0
            for w, cell in zip(widths, row):
                if cell:
                    self.text((x + w / 2, y0 + r * row_h + row_h / 2), cell, size=size, anchor="mm")
                x += w
        return y1


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _electricity_bill(rng, month: int):
    mult = 50
    prev = round(float(rng.uniform(3_000, 6_000)), 2)
    kwh = int(rng.integers(150, 260)) * mult
    cur = round(prev + kwh / mult, 2)
    price = round(float(rng.uniform(0.58, 0.72)), 4)
    energy_fee = round(kwh * price, 2)
    pf_fee = round(float(rng.uniform(100, 400)), 2)
    amount = round(energy_fee + pf_fee, 2)
    p = _Page()
    p.d.rectangle([0, 0, 1000, 64], fill=(0, 112, 96))
    p.text((40, 14), "国家电网", size=28, bold=True, fill="white")
    p.text((960, 16), "电费通知单", size=26, bold=True, fill="white", anchor="ra")
    p.text((40, 78), "国网浙江省电力有限公司", size=18, fill=_GREY)
    p.text((40, 116), "户号：3301234567", size=20)
    p.text((520, 116), f"户名：{COMPANY}", size=20)
    p.text((40, 152), "用电地址：浙江省湖州市长兴县煤山镇工业园区88号", size=20)
    p.text((40, 188), f"账期：2025年{month:02d}月", size=20)
    p.text((520, 188), f"抄表日期：2025年{month:02d}月28日", size=20)
    p.text((40, 224), "供电单位：国网湖州供电公司", size=20)
    p.text((520, 224), "用电类别：大工业用电", size=20)
    p.rule(262)
    y = p.table(40, 276, [170, 170, 170, 110, 300], [
        ["示数类型", "上期示数", "本期示数", "倍率", "抄见电量(kWh)"],
        ["有功(总)", f"{prev:,.2f}", f"{cur:,.2f}", str(mult), f"{kwh:,}"],
    ])
    p.text((40, y + 24), f"本期电量：{kwh:,} kWh", size=22, bold=True)
    p.text((520, y + 24), f"平均电价：{price}元/kWh", size=20)
    p.text((40, y + 64), f"电度电费：¥{_money(energy_fee)}", size=20)
    p.text((520, y + 64), f"功率因数调整电费：¥{_money(pf_fee)}", size=20)
    p.rule(y + 104)
    p.text((40, y + 118), f"应缴金额：¥{_money(amount)}", size=24, bold=True)
    p.text((40, y + 164), f"缴费截止日期：2025年{month + 1:02d}月15日    客服热线：95598", size=18, fill=_GREY)
    return p.img, [_t("grid", kwh, "kWh", "item")], f"2025-{month:02d}"


def _gas_bill(rng, month: int):
    prev = int(rng.integers(1_000_000, 1_300_000))
    nm3 = int(rng.integers(9_000, 16_000))
    price = 3.85
    amount = round(nm3 * price, 2)
    p = _Page()
    p.text((500, 30), "长兴新奥燃气有限公司", size=30, bold=True, anchor="ma")
    p.text((500, 76), "天然气费缴费通知单", size=22, anchor="ma")
    p.rule(114, width=2, fill=(200, 120, 0))
    p.text((40, 132), "客户编号：GS0571008817", size=20)
    p.text((520, 132), f"客户名称：{COMPANY}", size=20)
    p.text((40, 168), "用气地址：长兴县煤山镇工业园区88号", size=20)
    p.text((520, 168), "表号：TR2209115", size=20)
    last = calendar.monthrange(2025, month)[1]
    p.text((40, 204), f"计费周期：2025-{month:02d}-01至2025-{month:02d}-{last}", size=20)
    p.text((520, 204), f"出账日期：2025-{month + 1:02d}-03", size=20)
    y = p.table(40, 250, [200, 200, 180, 160, 180], [
        ["上期读数(Nm³)", "本期读数(Nm³)", "用气量(Nm³)", "单价(元/Nm³)", "金额(元)"],
        [f"{prev:,}", f"{prev + nm3:,}", f"{nm3:,}", f"{price:.2f}", _money(amount)],
    ])
    p.text((40, y + 30), f"本期用气量：{nm3:,} Nm³", size=22, bold=True)
    p.text((40, y + 74), f"燃气费合计：¥{_money(amount)}", size=24, bold=True)
    p.rule(y + 124)
    p.text((40, y + 140), "收款单位：长兴新奥燃气有限公司", size=20)
    return p.img, [_t("natural_gas", nm3, "Nm3", "item")], f"2025-{month:02d}"


def _heat_bill(rng, month: int):
    prev = round(float(rng.uniform(15_000, 20_000)), 1)
    gj = round(float(rng.uniform(1_500, 2_200)), 1)
    price = 98.0
    amount = round(gj * price, 2)
    p = _Page()
    p.text((40, 28), "长兴城市热力有限公司", size=28, bold=True, fill=(160, 30, 30))
    p.text((960, 34), "热量结算单", size=24, bold=True, anchor="ra")
    p.rule(80, width=2, fill=(160, 30, 30))
    p.text((40, 100), "用户编号：HR3305220456", size=20)
    p.text((520, 100), f"用户名称：{COMPANY}", size=20)
    p.text((40, 136), f"结算月份：2025年{month:02d}月", size=20)
    p.text((520, 136), f"结算日期：2025年{month + 1:02d}月02日", size=20)
    y = p.table(40, 220, [170, 160, 160, 140, 130, 160], [
        ["计量点", "上期表底(GJ)", "本期表底(GJ)", "用热量(GJ)", "单价(元/GJ)", "金额(元)"],
        ["1#入口", f"{prev:,.1f}", f"{prev + gj:,.1f}", f"{gj:,.1f}", f"{price:.2f}", _money(amount)],
    ])
    p.text((40, y + 30), f"本期用热量：{gj:,.1f} GJ", size=22, bold=True)
    p.text((40, y + 74), f"应付金额：¥{_money(amount)}", size=24, bold=True)
    p.rule(y + 124)
    p.text((40, y + 140), "供热单位：长兴城市热力有限公司", size=20)
    return p.img, [_t("heat", gj, "GJ", "item")], f"2025-{month:02d}"


def _degrade(img, seed: int):
    """A scanned version: downscale and back, slight rotation, noise (deterministic per seed)."""
    from PIL import Image
    r = random.Random(seed)
    w, h = img.size
    scale = r.uniform(0.6, 0.7)
    small = img.resize((round(w * scale), round(h * scale)), Image.BILINEAR).resize((w, h), Image.BILINEAR)
    rot = small.rotate(r.choice((-1, 1)) * r.uniform(1.0, 2.0), resample=Image.BICUBIC, fillcolor="white")
    arr = np.asarray(rot, dtype=np.float32)
    arr = arr + np.random.default_rng(seed).normal(0.0, 5.0, arr.shape[:2])[..., None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _png(img, path: Path) -> None:
    img.save(path, format="PNG", optimize=False)


def _bill_png(name, render, month, degrade=False):
    def make(out: Path, rng) -> dict:
        img, totals, period = render(rng, month)
        if degrade:
            img = _degrade(img, int(rng.integers(0, 2**31)))
        _png(img, out / name)
        return _record(name, "invoice", f"{'scanned ' if degrade else ''}bill image (PNG, 1000×700): "
                       f"{render.__name__.strip('_').replace('_', ' ')}", "png", None, 1, totals, period=period,
                       hints=["--registry", REGISTRY_HINT], why=_BILL_WHY)
    return make


def _bill_scan_pdf(out: Path, rng) -> dict:
    name = "bill_electricity_scan.pdf"
    img, totals, period = _electricity_bill(rng, 9)
    img = _degrade(img, int(rng.integers(0, 2**31)))
    buf = io.BytesIO()
    img.save(buf, format="PDF", resolution=100.0)
    import re
    data = re.sub(rb"/CreationDate \(D:[^)]*\)", b"/CreationDate (D:20251103090000)", buf.getvalue())
    data = re.sub(rb"/ModDate \(D:[^)]*\)", b"/ModDate (D:20251103090000)", data)
    (out / name).write_bytes(data)
    return _record(name, "invoice", "a scanned electricity bill saved as a one-page image PDF (no text layer)", "pdf", None, 1,
                   totals, period=period, hints=["--registry", REGISTRY_HINT], why=_BILL_WHY)


def _einvoice_pdf(out: Path, rng) -> dict:
    """A VAT e-invoice (数电票) for heat as a text PDF: the quantity is 用热量 in GJ."""
    name = "einvoice_heat_text.pdf"
    gj = round(float(rng.uniform(1_600, 2_400)), 1)
    price = 98.0
    net = round(gj * price, 2)
    tax = round(net * 0.09, 2)
    p = _PdfPage()
    p.text(300, 40, "电子发票（增值税专用发票）", 16)
    p.text(600, 70, "发票号码：25332000000045678901", 9)
    p.text(600, 86, "开票日期：2025年11月04日", 9)
    p.text(40, 110, f"购买方名称：{COMPANY}", 10)
    p.text(40, 126, "统一社会信用代码：91330522MA2B3C4D5E", 9)
    p.text(430, 110, "销售方名称：长兴城市热力有限公司", 10)
    p.text(430, 126, "统一社会信用代码：913305227045123456", 9)
    y = p.table(40, 150, [150, 90, 50, 90, 80, 110, 60, 100], [
        ["项目名称", "规格型号", "单位", "数量", "单价", "金额", "税率", "税额"],
        ["*热力*热水", "供热", "GJ", f"{gj:.1f}", f"{price:.2f}", f"{net:.2f}", "9%", f"{tax:.2f}"],
        ["合计", "", "", "", "", f"¥{net:.2f}", "", f"¥{tax:.2f}"],
    ], row_h=22, size=9)
    p.text(40, y + 24, f"价税合计（小写）¥{net + tax:.2f}", 10)
    p.text(40, y + 44, "备注：用户编号：HR3305220456  所属期：2025年10月", 9)
    p.text(40, y + 64, "开票人：王丽", 9)
    _write_pdf(out / name, p)
    return _record(name, "invoice", "VAT e-invoice (数电票) as a text PDF: buyer/seller block, line item *热力*热水, 单位 GJ, "
                   "数量, 单价, 金额, 税额; 所属期 in 备注", "pdf", None, 1, [_t("heat", gj, "GJ", "item")],
                   period="2025-10", hints=["--registry", REGISTRY_HINT], why=_BILL_WHY)


# ============================================================================ the corpus

_MAKERS = [
    _acrel_utf8, _acrel_gbk, _scada_long, _wide_gb18030, _schneider_semicolon, _tab_xls, _unix_seconds,
    _daily_wan_kwh, _two_columns, _yearly, _multiplier, _hourly_slash, _wh_iso, _gas_nm3,
    _xlsx_daily_circuits, _xlsx_substation,
    _trap_cumulative_as_interval, _trap_text_values, _trap_conflicts, _trap_impossible_dates,
    _sap, _erp_english, _kingdee, _ledger_xlsx, _ledger_long_gbk, _template, _weighbridge, _trap_activity_text,
    _stat_xlsx, _stat_csv, _stat_pdf,
    _production_long, _production_xlsx, _production_demo,
    _bill_png("bill_electricity.png", _electricity_bill, 10),
    _bill_png("bill_gas_scanned.png", _gas_bill, 10, degrade=True),
    _bill_png("bill_heat.png", _heat_bill, 10),
    _bill_scan_pdf, _einvoice_pdf,
]


def generate_corpus(out_dir, seed: int = 0) -> list[dict]:
    """Write the corpus into ``out_dir`` (created) and return its truth records (also ``truth.json``).

    The same seed gives the same files, byte for byte, and the same truth.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth = []
    for i, make in enumerate(_MAKERS):
        rng = np.random.default_rng([seed, i])
        truth.append(make(out, rng))
    write_master_data(out / "master_data")
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return truth


def write_master_data(folder) -> Path:
    """The corpus enterprise's master data as a user writes it by hand (``workbench registry
    import`` reads it): enterprise.json, a one-node boundary.csv and accounts.csv."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "enterprise.json").write_text(json.dumps({"enterprise_id": CORPUS_ENTERPRISE, "name_zh": COMPANY},
                                                       ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "boundary.csv").write_text(f"node_id,parent_id,level,name_zh\n{CORPUS_ENTERPRISE},,enterprise,"
                                         f"{COMPANY}\n", encoding="utf-8")
    rows = ["account,supplier,source,item,unit,node_id"]
    rows += [f"{a},{s_},{src},{item},{unit},{CORPUS_ENTERPRISE}" for a, s_, src, item, unit in ACCOUNTS]
    (folder / "accounts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder
