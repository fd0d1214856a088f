"""What is this file? — the guesses behind ``workbench import`` (seed §7.2: bring your own data).

:func:`plan_import` looks at a file as a plant exports it and writes down, as an editable
:class:`ImportPlan`, what it takes the file to be; :func:`read_planned` then reads it into a
:class:`connectors.ConnectorResult` that the one ingest path stores.  Every decision is a
:class:`Guess` with the reason and the command-line flag that overrides it, and the plan
round-trips through a mapping YAML (:meth:`ImportPlan.to_mapping` / :meth:`ImportPlan.from_mapping`)
so an accepted import can be replayed on next month's file.

The steps, each a small function (in the spirit of bw2io's strategies):

1. **kind** — by suffix (images → ``invoice``; a PDF bill → ``invoice``, else its tables), then by
   the table: an energy-statistics form (能源名称/计量单位/消费量 → ``statistics``), a
   production/value-added table (产量, 增加值 → ``production``), activity records (品种 + 数量),
   a monthly ledger (月份 + ``电力(万千瓦时)`` columns → ``activity``), a manually kept record list
   (a 录入人 column → ``manual``), otherwise readings (a time column and numbers).
2. **encoding** — strict UTF-8 (BOM recorded), then GBK, then GB18030 (:func:`connectors.files._decode`).
3. **header rows** — title and metadata lines above the table (``XX公司电能数据导出``,
   ``单位：kWh``, ``导出时间：…``) are skipped; consecutive text rows above the first row of
   numbers form a multi-row header (blank cells of an upper row continue the group to their
   left, like merged cells), flattened as ``1#变压器/正向有功(kWh)``.  Workbooks use
   :func:`connectors.files.read_xlsx_tables` (merged cells).
4. **columns** — Chinese and English synonyms for time (also a 日期 + 时间 pair, Unix seconds),
   meter, value, unit, quantity, register type and source quality; a unit inside the header
   (``(kWh)``, ``(万kWh)``, ``（吨）``) or in a title line (``单位：kWh``).  Several value columns
   without a meter column are a *wide* export, one meter per column.  Reverse and reactive energy
   columns beside forward active energy are left out, and say so.
5. **register** — cumulative or interval from the data: a meter whose values never fall and rise
   on most steps is a cumulative register.  A header that claims the other kind (``用电量`` over
   values that only grow) is *not* overruled: the claim is kept, the contradiction is reported,
   and the lake's shape check quarantines the series (never summed silently) until the user says
   ``--register cumulative``.
6. **meter** — a meter column, the wide headers, ``--meter``, or a ``表号：…`` title line.
7. **unit** — header, unit column, title line, ``--unit``, or the meter register.

Nothing here stores anything; :mod:`workbench.imports` runs the plan through the pipeline.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.core.units import UnitError, parse_unit

from . import ConnectorResult
from . import files as _files

__all__ = ["IMAGE_SUFFIXES", "KINDS", "Guess", "ImportPlan", "ImportPlanError", "plan_import", "read_planned"]

#: what ``workbench import`` takes a file to be
KINDS = ("readings", "activity", "statistics", "production", "invoice", "manual")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm")
MAPPING_VERSION = 1
#: rows of a CSV the plan looks at (the whole file is read by :func:`read_planned`)
PLAN_SAMPLE_ROWS = 20_000


class ImportPlanError(WorkbenchError, ValueError):
    """The file cannot be understood without a hint: says what is missing and which flag gives it."""


@dataclass
class Guess:
    """One decision about the file: ``what`` was decided, the ``value``, ``why``, and the ``flag``
    that overrides it; ``given`` when it came from the user (a flag or a mapping file)."""

    what: str
    value: str
    why: str
    flag: str
    given: bool = False

    def to_dict(self) -> dict:
        return {"what": self.what, "value": self.value, "why": self.why, "flag": self.flag, "given": self.given}


@dataclass
class ImportPlan:
    """Everything :func:`read_planned` needs, as decided by :func:`plan_import` (editable)."""

    path: Path
    kind: str
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    header_rows: list[int] = field(default_factory=list)   # spreadsheet/line numbers of the header (1-based)
    columns: dict = field(default_factory=dict)             # header as written → meaning (ts, meter_id, value …, or "-")
    layout: str = "long"                                    # readings: long | wide
    unit: str | None = None
    register: str | None = None
    registers: dict = field(default_factory=dict)           # meter → register guessed from its data
    meter: str | None = None
    period: str | None = None
    quantity: str | None = None
    node: str | None = None
    decimal_comma: bool = False
    guesses: list[Guess] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    # -------------------------------------------------------------------------- mapping YAML
    def to_mapping(self) -> dict:
        """The accepted guesses as a mapping document (``--mapping`` replays it)."""
        out = {"workbench_import": MAPPING_VERSION, "file": self.path.name, "kind": self.kind}
        for k in ("encoding", "delimiter", "sheet", "unit", "register", "meter", "period", "quantity", "node"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        if self.register is None and self.registers and len(set(self.registers.values())) == 1:
            out["register"] = next(iter(self.registers.values()))     # the accepted guess
        if self.header_rows:
            out["header_rows"] = list(self.header_rows)
        if self.columns:
            out["columns"] = dict(self.columns)
        if self.kind == "readings":
            out["layout"] = self.layout
            if self.decimal_comma:
                out["decimal_comma"] = True
        return out

    @staticmethod
    def hints_from_mapping(doc: dict, origin: str = "<mapping>") -> dict:
        """The keyword arguments of :func:`plan_import` a mapping document gives."""
        if not isinstance(doc, dict) or "workbench_import" not in doc:
            raise ImportPlanError(f"{origin}: not an import mapping (no 'workbench_import' key; write one with "
                                  "workbench import FILE --dry-run --save-mapping M.yaml)")
        keys = {"kind", "encoding", "delimiter", "sheet", "unit", "register", "meter", "period", "quantity", "node",
                "header_rows", "columns", "layout", "decimal_comma"}
        unknown = sorted(set(doc) - keys - {"workbench_import", "file", "mappings"})
        if unknown:
            raise ImportPlanError(f"{origin}: unknown keys {', '.join(unknown)}")
        cols = doc.get("columns") or {}
        if not isinstance(cols, dict):
            raise ImportPlanError(f"{origin}: 'columns' must map headers to meanings (header: ts)")
        out = {k: doc[k] for k in keys if k in doc and doc[k] is not None}
        out["columns"] = {str(k): str(v) for k, v in cols.items()}
        return out


# ------------------------------------------------------------------------------ vocabulary
def _k(text) -> str:
    return _files._key(text)


_TS_WORDS = ["时间", "采集时间", "抄表时间", "数据时间", "时间戳", "日期时间", "记录时间", "读数时间", "冻结时间",
             "采集日期时间", "时标", "时刻", "timestamp", "time", "datetime", "date_time", "time_stamp", "ts",
             "reading_time", "record_time"]
_DATE_WORDS = ["日期", "date", "数据日期", "抄表日期", "采集日期", "day"]
_CLOCK_WORDS = ["时间", "time", "时刻", "时段", "clock", "hour"]
_METER_WORDS = ["表号", "计量点", "计量点编号", "计量点号", "计量点名称", "表计编号", "表计名称", "表计", "电表号",
                "电表名称", "电表", "仪表编号", "仪表名称", "仪表", "测点", "测点编号", "测点名称", "点位", "设备名称",
                "设备", "设备编号", "回路名称", "回路", "支路名称", "支路", "表名", "通讯地址", "表地址", "meter",
                "meter_code", "meter_no", "meter_id", "meter_name", "point", "point_id", "tag", "tagname",
                "tag_name", "device", "device_name", "device_id", "channel", "流量计", "计量器具", "位号", "仪表位号"]
#: meter columns named so unambiguously that numeric ids (表号 3301001234) are still ids
_METER_ID_WORDS = {"表号", "表计编号", "电表号", "计量点编号", "仪表编号", "测点编号", "设备编号", "通讯地址", "表地址",
                   "meter_no", "meter_id", "meter_code", "point_id", "device_id", "tag"}
_UNIT_WORDS = ["单位", "计量单位", "units", "unit", "uom", "unit_of_measure"]
_MULTIPLIER_WORDS = ["倍率", "综合倍率", "乘率", "CT倍率", "变比", "multiplier", "factor", "ct_ratio"]
_QUANTITY_WORDS = ["指标", "测量项", "数据项", "参数", "metric", "measure", "variable", "quantity"]
_REGISTER_WORDS = ["寄存器", "读数类型", "计量方式", "register_type", "register"]
_QUALITY_WORDS = ["quality", "质量", "质量码", "数据质量", "品质", "质量标志", "quality_code", "status", "状态"]
_UNIT_SUFFIX = re.compile(r"(?:^|[_\s\-])(?P<u>kwh|mwh|gwh|wh|kvarh|nm3|m3|gj|mj|kg|t)$", re.I)
_UNIT_SPELLING = {"kwh": "kWh", "mwh": "MWh", "gwh": "GWh", "wh": "Wh", "kvarh": "kvarh", "nm3": "Nm3", "m3": "m3",
                  "gj": "GJ", "mj": "MJ", "kg": "kg", "t": "t"}
_GOOD_QUALITY = {"good", "ok", "正常", "有效", "192", "0xc0", "g", "valid", "0"}
_VALUE_RE = re.compile(r"读数|示数|示值|表码|表底|止码|电能|电量|用电|有功|用量|用水|用气|耗量|能耗|消耗|累计|"
                       r"热量|流量|value|reading|energy|kwh|consumption|usage|^val$|^数值$|^值$|^测量值$", re.I)
_REVERSE_RE = re.compile(r"反向|无功|reverse|reactive|export|kvarh|功率因数|电压|电流|需量|demand|voltage|current",
                         re.I)
_FORWARD_RE = re.compile(r"正向有功|forward|import|有功总|active", re.I)
_CUMULATIVE_CLAIM = re.compile(r"示值|示数|表码|表底|止码|累计|总电能|cumulative|register|meter reading", re.I)
_INTERVAL_CLAIM = re.compile(r"用电量|用量|增量|消耗量|区间|间隔|interval|delta|consumption|usage", re.I)
_META_LINE = re.compile(r"(?P<key>单位|计量单位|unit|表号|表计名称|表计|计量点|电表|meter|仪表)\s*[:：]\s*(?P<val>[^,，;；\t]+)",
                        re.I)
_PRODUCTION_RE = re.compile(r"产量|产品|增加值|value_added|output|production", re.I)
_VALUE_ADDED_RE = re.compile(r"增加值|value_added", re.I)
_WHO_RE = re.compile(r"^(录入人|填报人|填表人|记录人|who|entered_by)$", re.I)
_MONTHLY = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?\s*$")


def _is(words, header: str) -> bool:
    key = _k(header)
    return key in {_k(w) for w in words}


# ------------------------------------------------------------------------------ tables
@dataclass
class _Table:
    header: list[str]                 # flattened names
    frame: pd.DataFrame               # cells as written (object), columns = header
    rows: np.ndarray                  # spreadsheet/line number of each record
    header_rows: list[int]
    title: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    rejected: list = field(default_factory=list)
    period: str | None = None
    total_rows: list = field(default_factory=list)     # 合计/总计 rows left out (derived, not data)


def _csv_grid(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True))


def _numeric_cell(s: str) -> bool:
    s = s.strip().replace(",", "").replace("，", "")
    return bool(s) and bool(re.match(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?%?$", s))


def _datetime_cell(s: str) -> bool:
    s = s.strip()
    return bool(re.match(r"^\d{4}[-/.年]\d{1,2}([-/.月]\d{1,2})?", s)) or bool(re.match(r"^\d{1,2}:\d{2}", s))


def _data_like(cells: list[str]) -> bool:
    """A row of a table body: at least one number or date."""
    return any(_numeric_cell(c) or _datetime_cell(c) for c in cells if c.strip())


def _header_block(grid: list[list[str]], forced: list[int] | None = None) -> tuple[list[int], int]:
    """(0-based header row indices, 0-based first body row) of a text grid."""
    if forced:
        idx = [r - 1 for r in forced]
        return idx, max(idx) + 1
    width = max((len([c for c in row if c.strip()]) for row in grid[:60]), default=0)
    r = 0
    n = len(grid)
    while r < n:
        ne = [c for c in grid[r] if c.strip()]
        if (len(ne) >= max(2, 0.5 * width) and len(set(ne)) >= 2 and not _data_like(ne)
                and not any(_META_LINE.search(c) for c in ne)):
            break
        r += 1
    if r >= n:
        return [], 0
    hdr = [r]
    r += 1
    while r < n and len(hdr) < 4:
        ne = [c for c in grid[r] if c.strip()]
        if not ne or _data_like(ne):
            break
        # a second text row belongs to the header only when the first has gaps it fills (a group
        # header over sub-columns) or the row after it is data
        nxt = next((grid[j] for j in range(r + 1, min(n, r + 3)) if any(c.strip() for c in grid[j])), None)
        if nxt is None or not _data_like([c for c in nxt if c.strip()]):
            break
        upper = grid[hdr[-1]]
        if all(c.strip() for c in upper) and len(ne) == len([c for c in upper if c.strip()]):
            break       # a complete header row followed by a text record: the record is data
        hdr.append(r)
        r += 1
    return hdr, r


def _flatten(grid: list[list[str]], hdr: list[int]) -> list[str]:
    width = max(len(grid[h]) for h in hdr)
    levels = []
    for h in hdr:
        row = [c.strip() for c in grid[h]] + [""] * (width - len(grid[h]))
        if h != hdr[-1]:       # a group header spans the blank cells to its right (merged cells exported as CSV)
            last = ""
            for j, c in enumerate(row):
                if c:
                    last = c
                elif last:
                    row[j] = last
        levels.append(row)
    names = []
    for j in range(width):
        parts = []
        for lv in levels:
            t = _files._clean_header(lv[j])
            if t and (not parts or parts[-1] != t):
                parts.append(t)
        names.append("/".join(parts) if parts else f"column_{j + 1}")
    while names and names[-1].startswith("column_") and all(
            len(row) <= len(names) - 1 or not row[len(names) - 1].strip() for row in grid[max(hdr) + 1:max(hdr) + 50]):
        names.pop()
    return _files._dedupe(names)


def _head_lines(text: str, n: int) -> str:
    """The first ``n`` lines of ``text`` (all of it when shorter)."""
    pos = -1
    for _ in range(n):
        pos = text.find("\n", pos + 1)
        if pos < 0:
            return text
    return text[: pos + 1]


_FOOTER_START = set("单统填报审负制注说备") | set("合总小tTsS")


def _csv_table(path: Path, raw: bytes, *, encoding=None, delimiter=None, header_rows=None,
               max_rows: int | None = None) -> _Table:
    """The table of a CSV file; ``max_rows``: only the first rows (a sample for planning)."""
    origin = str(path)
    first_lines = raw[:65536].split(b"\n")[:30]
    sample = b"\n".join(first_lines).decode("latin-1")
    delim = delimiter or _sniff_delimiter(sample)
    dec = _files._decode(raw, origin, encoding, delim, full_check=True)
    text = dec.text
    sampled = max_rows is not None
    if sampled:
        cut = _head_lines(text, max_rows + 60)
        sampled = len(cut) < len(text)
        text = cut
    quick = not sampled and '"' not in text and text.count("\n", 0, 1 << 20) > 5000
    try:         # a big unquoted file: the header is found in its first lines, the body read by pandas
        grid = _csv_grid(_head_lines(text, 300) if quick else text, delim)
    except csv.Error as exc:
        raise _files.FileFormatError(origin, None, None, f"malformed CSV: {exc}") from None
    if not any(any(c.strip() for c in row) for row in grid[:200]) and not any(
            any(c.strip() for c in row) for row in grid):
        raise _files.FileFormatError(origin, None, None, "the file is empty")
    hdr, start = _header_block(grid, header_rows)
    if not hdr:
        raise _files.FileFormatError(origin, None, None, "no header row found (a row of column names above the "
                                     "data); give it with --header-row N")
    header = _flatten(grid, hdr)
    width = len(header)
    title = [" ".join(c.strip() for c in grid[r] if c.strip()) for r in range(min(hdr)) if any(c.strip() for c in grid[r])]
    if quick:
        frame, rows, rejected = _fast_body(text, start, header, delim, origin)
        period, _ = _files._period_from_title(title)
        return _Table(header, frame, rows, [h + 1 for h in hdr], title, dec.encoding, delim, rejected=rejected,
                      period=period)
    recs, rows, rejected = [], [], []
    ends_nl = text.endswith("\n") or sampled
    last = len(grid) - 1
    for i in range(start, len(grid)):
        rec = grid[i]
        n = len(rec)
        first = rec[0] if n else ""
        if first[:1] in _FOOTER_START or first[:1].isspace():
            if _footer(first) and (all(not c.strip() for c in rec[1:]) or _files._FOOTER.match(first.strip())):
                break
        if n == width:
            if not recs and _numbering_row(rec):
                continue        # 甲 乙 丙 1 2 3 …: the column numbers of a statistical form
            recs.append(rec)
            rows.append(i + 1)
            continue
        if not n or all(not c.strip() for c in rec):
            continue
        if n > width and not any(c.strip() for c in rec[width:]):
            recs.append(rec[:width])
            rows.append(i + 1)
            continue
        if i == last and not ends_nl and n < width:
            raise _files.FileFormatError(origin, i + 1, header[max(n - 1, 0)],
                                         f"the file is truncated: its last line ends in the middle of a row "
                                         f"({n} of {width} fields and no final line break)")
        rejected.append({"row": i + 1, "column": None, "reason": f"row has {n} fields, the header has {width}",
                         "payload": json.dumps(rec, ensure_ascii=False), "origin": origin})
    frame = pd.DataFrame(recs, columns=header, dtype=object) if recs else pd.DataFrame(columns=header, dtype=object)
    period, _ = _files._period_from_title(title)
    return _Table(header, frame, np.asarray(rows, dtype=np.int64), [h + 1 for h in hdr], title, dec.encoding, delim,
                  rejected=rejected, period=period)


def _fast_body(text: str, start: int, header: list[str], delim: str, origin: str):
    """The body of a big unquoted CSV (no quotes: a record is a line) through pandas' C parser, line
    numbers kept exactly: the lines whose field count is the header's go to the parser, the others
    are judged one by one (blank: spacing; extra empty fields: trimmed; otherwise rejected with the
    row).  The last line cut short without a line break is a truncated file."""
    ends_nl = text.endswith("\n")
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    width = len(header)
    body = lines[start:]
    counts = np.fromiter((ln.count(delim) for ln in body), dtype=np.int64, count=len(body)) + 1
    firsts = [ln[:1] for ln in body]
    stop = len(body)
    for i, ch in enumerate(firsts):     # a footer line ends the table
        if ch in _FOOTER_START or ch.isspace():
            cells = body[i].split(delim)
            if _footer(cells[0]) and (all(not c.strip() for c in cells[1:]) or _files._FOOTER.match(cells[0].strip())):
                stop = i
                break
    footer_cut = stop < len(body)
    counts, body = counts[:stop], body[:stop]
    good = counts == width
    rows_good = np.flatnonzero(good)
    if len(rows_good) and _numbering_row(body[rows_good[0]].split(delim)):
        good[rows_good[0]] = False
        skip_first = rows_good[0]
    else:
        skip_first = -1
    extra_recs, extra_rows, rejected = [], [], []
    for i in np.flatnonzero(~good):
        if i == skip_first:
            continue
        rec = body[i].split(delim)
        if not any(c.strip() for c in rec):
            continue
        if len(rec) > width and not any(c.strip() for c in rec[width:]):
            extra_recs.append([c.strip() if j == 0 else c for j, c in enumerate(rec[:width])])
            extra_rows.append(start + i + 1)
            continue
        if i == len(body) - 1 and not footer_cut and not ends_nl and len(rec) < width:
            raise _files.FileFormatError(origin, start + i + 1, header[max(len(rec) - 1, 0)],
                                         f"the file is truncated: its last line ends in the middle of a row "
                                         f"({len(rec)} of {width} fields and no final line break)")
        rejected.append({"row": start + i + 1, "column": None,
                         "reason": f"row has {len(rec)} fields, the header has {width}",
                         "payload": json.dumps(rec, ensure_ascii=False), "origin": origin})
    idx = np.flatnonzero(good)
    names = list(range(width))
    frame = pd.read_csv(io.StringIO("\n".join(body[i] for i in idx) + "\n"), header=None, names=names, dtype=str,
                        keep_default_na=False, sep=delim, engine="c", skipinitialspace=True, quoting=csv.QUOTE_NONE) \
        if len(idx) else pd.DataFrame(columns=names, dtype=object)
    rows = start + idx + 1
    if extra_recs:
        frame = pd.concat([frame, pd.DataFrame(extra_recs, columns=names)], ignore_index=True)
        rows = np.concatenate([rows, np.asarray(extra_rows, dtype=np.int64)])
        order = np.argsort(rows, kind="stable")
        frame, rows = frame.iloc[order].reset_index(drop=True), rows[order]
    frame.columns = header
    return frame.astype(object), np.asarray(rows, dtype=np.int64), rejected


def _numbering_row(rec: list[str]) -> bool:
    try:
        return _files._is_numbering_row(rec)
    except ValueError:      # cells such as '0,5' (a decimal comma) are no column numbers
        return False


def _footer(cell: str) -> bool:
    c = str(cell).strip().replace(" ", "")
    return bool(_files._FOOTER.match(c)) or c.startswith(("合计", "总计", "小计", "total", "Total"))


def _sniff_delimiter(sample: str) -> str:
    lines = [ln for ln in sample.splitlines() if ln.strip()][:20]
    best, best_score = ",", 0
    for d in (",", "\t", ";", "|"):
        counts = [ln.count(d) for ln in lines]
        if not counts or max(counts) == 0:
            continue
        common = max(set(counts), key=counts.count)
        score = common * counts.count(common) if common else 0
        if score > best_score:
            best, best_score = d, score
    return best


def _xlsx_tables(path: Path, raw: bytes, *, sheet=None, header_rows=None) -> list[_Table]:
    origin = str(path)
    if raw[:4] != b"PK\x03\x04":
        raise _files.FileFormatError(origin, None, None, "not an XLSX workbook (an XLSX file is a ZIP archive; "
                                     "old .xls files must be saved as .xlsx)")
    tables = _files.read_xlsx_tables(path, sheet=sheet, header_rows=header_rows)
    out = []
    for t in tables:
        cols = [c for c in t.data.columns if c != "row"]
        frame = t.data[cols].copy()
        for c in cols:     # cells as text as a person reads them (dates ISO, numbers as written)
            frame[c] = frame[c].map(_cell_text)
        out.append(_Table(cols, frame, t.data["row"].to_numpy(), list(t.header_rows), t.title, None, None,
                          sheet=t.sheet, period=t.period))
    if not out:
        raise _files.FileFormatError(origin, None, None, "no table in the workbook (no header row found)")
    return out


def _cell_text(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ") if hasattr(v, "hour") else v.isoformat()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


_TOTAL_CELL = r"^\s*(合\s*计|总\s*计|小\s*计|total|sum|grand total)\s*[:：]?\s*$"


def _drop_totals(t: _Table) -> _Table:
    """Rows whose first filled cell (of the first three) is 合计/总计/小计/Total are sums of the rows
    above: left out (and listed, so the user sees it)."""
    if not len(t.frame):
        return t
    total = np.zeros(len(t.frame), bool)
    at = np.arange(len(t.frame))             # rows whose cells so far are all blank
    pat = re.compile(_TOTAL_CELL, re.I)
    for c in t.frame.columns[:3]:
        if not len(at):
            break
        cell = t.frame[c].to_numpy(dtype=object)[at]
        codes, uniq = pd.factorize(cell)      # a regex per distinct cell, not per row
        hit = np.array([bool(pat.match(str(u))) for u in uniq], dtype=bool)
        blank = np.array([str(u).strip() in ("", "nan", "None") for u in uniq], dtype=bool)
        ok = codes >= 0
        total[at[ok & hit[np.maximum(codes, 0)]]] = True
        at = at[~ok | blank[np.maximum(codes, 0)]]
    if total.any():
        t.total_rows = [int(r) for r in t.rows[total]]
        t.frame = t.frame[~total].reset_index(drop=True)
        t.rows = t.rows[~total]
    return t


def load_tables(path, *, encoding=None, delimiter=None, sheet=None, header_rows=None,
                max_rows: int | None = None) -> list[_Table]:
    """The table(s) of a CSV or XLSX file, header rows found (see the module doc)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _files.FileFormatError(str(path), None, None, "no such file") from None
    except IsADirectoryError:
        raise _files.FileFormatError(str(path), None, None, "is a folder, not a file") from None
    if not raw.strip():
        raise _files.FileFormatError(str(path), None, None, "the file is empty")
    if path.suffix.lower() in (".xlsx", ".xlsm") or raw[:4] == b"PK\x03\x04":
        return [_drop_totals(t) for t in _xlsx_tables(path, raw, sheet=sheet, header_rows=header_rows)]
    return [_drop_totals(_csv_table(path, raw, encoding=encoding, delimiter=delimiter, header_rows=header_rows,
                                    max_rows=max_rows))]


# ------------------------------------------------------------------------------ column meaning
def _unit_of(header: str) -> tuple[str, str | None]:
    """Header base and a unit written inside it (``正向有功总电能(kWh)`` → kWh; ``1#变压器/电量(万kWh)``;
    ``energy_kwh`` → kWh)."""
    last = header.split("/")[-1]
    base, unit = _files._split_unit(last)
    if unit is None:
        base, unit = _files._split_unit(header)
        if unit is None:
            m = _UNIT_SUFFIX.search(header)
            if m and m.start() > 0:
                return header[: m.start()], _UNIT_SPELLING[m.group("u").lower()]
        return base, _clean_unit(unit)
    return (header[: -len(last)] + base) if "/" in header else base, _clean_unit(unit)


def _clean_unit(unit: str | None) -> str | None:
    if unit is None:
        return None
    u = unit.strip()
    try:
        parse_unit(u)
    except UnitError:
        return None
    return u


def _title_meta(title: list[str]) -> dict:
    out = {}
    for line in title:
        for m in _META_LINE.finditer(line):
            key = m.group("key").lower()
            val = m.group("val").strip()
            if key in ("单位", "计量单位", "unit"):
                u = _clean_unit(val.strip("()（） "))
                if u:
                    out.setdefault("unit", u)
            else:
                out.setdefault("meter", val)
    return out


def _parse_ts(cells: pd.Series) -> tuple[pd.Series, str]:
    """Timestamps of text cells and how they were read (``text`` or ``unix seconds``/``unix ms``)."""
    s = cells.astype(str).str.strip()
    # epoch numbers? a sample tells (converting a million text timestamps to numbers costs a second)
    looks_numeric = len(s) and pd.to_numeric(s.head(200), errors="coerce").notna().mean() > 0.9
    nums = pd.to_numeric(s, errors="coerce") if looks_numeric else None
    if nums is not None and nums.notna().mean() > 0.9:
        med = float(nums.median())
        if 1e9 <= med < 5e9:
            return (pd.to_datetime(nums, unit="s", utc=True, errors="coerce").dt.tz_convert(_files.LOCAL_TZ),
                    "unix seconds")
        if 1e12 <= med < 5e12:
            return (pd.to_datetime(nums, unit="ms", utc=True, errors="coerce").dt.tz_convert(_files.LOCAL_TZ),
                    "unix milliseconds")
    fmt = _ts_format(s)
    if fmt is not None:     # one format fits the sample: the C parser for all, the detailed path for the rest
        ts = pd.to_datetime(s, format=fmt, errors="coerce")
        rest = ts.isna() & s.ne("")
        if not rest.any():
            return ts.astype("datetime64[us]"), "text"
    ts, bad, blank = _files._to_ts(s.astype(object))
    if len(s) and ts.isna().mean() > 0.5:
        alt, how = _day_month_year(s)
        if alt is not None and alt.notna().mean() > ts.notna().mean():
            return alt, how
    return ts, "text"


_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S",
            "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y%m%d%H%M%S")


def _ts_format(s: pd.Series) -> str | None:
    """The one naive timestamp format every cell of a sample is written in, if there is one."""
    sample = s.head(200)
    sample = sample[sample.ne("")]
    if not len(sample) or sample.str.contains(r"[+Z]\d{0,2}:?\d{0,2}$|T.*[+-]\d{2}:?\d{2}$", regex=True).any():
        return None
    for fmt in _FORMATS:
        if pd.to_datetime(sample, format=fmt, errors="coerce").notna().all():
            return fmt
    return None


_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_YMD_DOTS = re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def _day_month_year(s: pd.Series) -> tuple[pd.Series | None, str]:
    """``13/10/2025 00:15`` (day first when a first field is > 12, month first when a second one
    is, day first when nothing tells — European meter software) and ``2025.10.01`` (SAP)."""
    text = s.astype(str).str.strip()
    m = text.str.extract(_YMD_DOTS)
    if m[0].notna().mean() > 0.5:
        y, mo, d = m[0], m[1], m[2]
        order = "year.month.day"
    else:
        m = text.str.extract(_DMY)
        if m[0].notna().mean() <= 0.5:
            return None, "text"
        a, b = pd.to_numeric(m[0]), pd.to_numeric(m[1])
        monthfirst = bool((b > 12).any()) and not bool((a > 12).any())
        d, mo = (m[1], m[0]) if monthfirst else (m[0], m[1])
        y = m[2]
        order = "month/day/year" if monthfirst else "day/month/year"
    hh = m[3].fillna("0")
    mm = m[4].fillna("0")
    ss = m[5].fillna("0")
    iso = (y + "-" + mo.str.zfill(2) + "-" + d.str.zfill(2) + " " + hh.str.zfill(2) + ":" + mm.str.zfill(2) + ":"
           + ss.str.zfill(2))
    return pd.to_datetime(iso, format="%Y-%m-%d %H:%M:%S", errors="coerce"), order


def _ts_share(cells: pd.Series, n: int = 200) -> float:
    sample = cells.head(n).astype(str).str.strip()
    sample = sample[sample.ne("")]
    if not len(sample) or sample.str.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?").mean() > 0.5:
        return 0.0        # clock times alone are not timestamps
    ts, how = _parse_ts(sample)
    if how == "text" and sample.str.fullmatch(r"[-+]?\d+(\.\d+)?").all():
        return 0.0          # plain numbers are not timestamps
    return float(ts.notna().mean())


def _num_share(cells: pd.Series, n: int = 400, decimal_comma: bool = False) -> float:
    sample = cells.head(n).astype(str).str.strip()
    sample = sample[sample.ne("")]
    if not len(sample):
        return 0.0
    if decimal_comma:
        sample = sample.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return float(sample.map(_numeric_cell).mean())


def _classify(table: _Table, explicit: dict, known_meters: set) -> tuple[dict, list[Guess]]:
    """header → meaning for a readings table, with the guesses."""
    meaning: dict[str, str] = {}
    guesses: list[Guess] = []
    for h, m in explicit.items():
        if h not in table.header:
            raise ImportPlanError(f"{table_origin(table)}: --column {h}={m}: no column '{h}' (columns are "
                                  f"{', '.join(table.header)})")
        meaning[h] = m
        guesses.append(Guess(f"column {h}", m, "given", f"--column {h}={m}", given=True))
    taken = set(meaning.values())
    free = [h for h in table.header if h not in meaning]

    def take(h, m, why):
        meaning[h] = m
        taken.add(m)
        guesses.append(Guess(f"column {h}", m, why, f"--column {h}=…"))

    # time: one column of date-times, or a date column and a clock column
    if "ts" not in taken and not ({"date", "time"} & taken):
        named = [h for h in free if _is(_TS_WORDS, _unit_of(h)[0])]
        for h in named + [h for h in free if h not in named]:
            share = _ts_share(table.frame[h])
            if share >= 0.9:
                date_only = table.frame[h].head(50).astype(str).str.strip().str.fullmatch(
                    r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?|\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}").all()
                clock = next((c for c in free if c != h
                              and table.frame[c].head(50).astype(str).str.strip().str.fullmatch(
                                  r"\d{1,2}:\d{2}(:\d{2})?").all()), None)
                if date_only and clock:
                    take(h, "date", "dates (the clock time is in another column)")
                    take(clock, "time", f"clock times of the dates in '{h}'")
                else:
                    take(h, "ts", "its cells are timestamps" + (" (named so)" if h in named else ""))
                break
    free = [h for h in table.header if h not in meaning]
    # meter, unit, quantity, register, quality by name
    for words, m in ((_METER_WORDS, "meter_id"), (_UNIT_WORDS, "unit"), (_QUANTITY_WORDS, "quantity"),
                     (_REGISTER_WORDS, "register"), (_QUALITY_WORDS, "quality"), (_MULTIPLIER_WORDS, "multiplier")):
        if m in taken:
            continue
        for h in free:
            base = _unit_of(h)[0]
            if _is(words, base) and (m != "meter_id" or _num_share(table.frame[h]) < 1.0 or _is(_METER_ID_WORDS, base)
                                     or table.frame[h].astype(str).str.strip().isin(known_meters).any()
                                     or table.frame[h].head(200).astype(str).str.fullmatch(r"\d{6,}").all()):
                take(h, m, f"the header '{h}' names it")
                break
        free = [h for h in table.header if h not in meaning]
    # a meter column by content: text naming registered meters
    if "meter_id" not in taken and known_meters:
        for h in free:
            if table.frame[h].astype(str).str.strip().isin(known_meters).mean() > 0.5:
                take(h, "meter_id", "its cells are meters of the register")
                break
    free = [h for h in table.header if h not in meaning]
    numeric = [h for h in free if _num_share(table.frame[h]) >= 0.8]
    if "value" not in taken:
        named = [h for h in numeric if _VALUE_RE.search(_unit_of(h)[0]) or _unit_of(h)[1]]
        candidates = [h for h in named if not _REVERSE_RE.search(h)]
        forward = [h for h in candidates if _FORWARD_RE.search(h)]
        pick = None
        if "meter_id" in taken:
            pick = (forward or candidates or (numeric if len(numeric) == 1 else [None]))[0]
        elif len(candidates) == 1:
            pick = candidates[0]
        elif forward and len({h.rsplit("/", 1)[0] for h in forward if "/" in h}) <= 1:
            # 正向有功总/尖/峰/平/谷 of one meter: the total (several groups 1#/2# … are a wide export)
            pick = next((h for h in forward if "总" in h or "total" in h.lower()), forward[0])
        if pick is not None:
            take(pick, "value", "numbers under a value header" if pick in named else "the only column of numbers")
            for h in numeric:
                if h != pick:
                    meaning[h] = "-"
                    guesses.append(Guess(f"column {h}", "left out", f"another measurement beside '{pick}'",
                                         f"--column {h}=value"))
    return meaning, guesses


def table_origin(t: _Table) -> str:
    return getattr(t, "origin", "the file")


# ------------------------------------------------------------------------------ activity views
_ACT_ITEM = ["能源名称", "能源种类", "能源品种", "货物名称", "物料描述", "物料名称", "燃料名称", "燃料品种", "品名", "品种",
             "description", "material_description", "item_description", "物资名称", "fuel", "energy", "energy_type"]
_ACT_CODE = ["物料", "物料编码", "物料号", "物料代码", "material", "material_code", "item", "item_code", "item_no"]
_ACT_QTY = ["净重", "实发数量", "发生数量", "出库数量", "领用数量", "数量", "消耗量", "用量", "quantity", "qty", "net_weight",
            "consumption", "amount_used"]
_ACT_DROP = ["毛重", "皮重", "gross_weight", "tare_weight", "单价", "金额", "price", "unit_price", "amount", "value",
             "cost"]
_ACT_DATE = ["过账日期", "凭证日期", "过磅日期", "日期", "transaction_date", "posting_date", "date", "出库日期", "领用日期",
             "业务日期", "单据日期"]
_REVERSAL = {"262", "202", "222", "252", "292"}     # SAP movement types that reverse a goods issue
_MOVEMENT = ["移动类型", "movement_type", "mvt", "bwart"]
#: SAP/ERP units of measure (ISO codes) → units pint reads
_UOM = {"TO": "t", "TON": "t", "T": "t", "MT": "t", "TNE": "t", "KG": "kg", "G": "g", "M3": "m3", "NM3": "Nm3", "KWH": "kWh", "MWH": "MWh", "GJ": "GJ",
        "L": "L", "LT": "L", "KL": "kL", "MJ": "MJ"}


def _find(cols, words) -> str | None:
    keys = {_k(w) for w in words}
    return next((c for c in cols if _k(_unit_of(c)[0]) in keys or _k(c) in keys), None)


def _activity_view(frame: pd.DataFrame, lib=None) -> tuple[pd.DataFrame, list[Guess], float]:
    """ERP, weighbridge and ledger tables in the activity reader's words: (frame with item,
    quantity, unit, period columns where found, the guesses, the share of rows whose item the
    factor library knows)."""
    if lib is None:
        from workbench.core.factors import default_library
        lib = default_library()
    cols = list(frame.columns)
    guesses: list[Guess] = []
    present = _files._activity_columns_present(cols)
    ren, drop = {}, []
    item = None if "item" in cols else _find(cols, _ACT_ITEM)
    code = _find([c for c in cols if c != item], _ACT_CODE)
    if item is not None:
        ren[item] = "item"
        guesses.append(Guess(f"column {item}", "item", "names the energy or material", f"--column {item}=…"))
        if code is not None:
            drop.append(code)
            guesses.append(Guess(f"column {code}", "left out", f"a material code beside the name in '{item}'",
                                 f"--column {code}=item"))
    elif "item" not in present and code is not None and "item" not in cols:
        ren[code] = "item"
    if "quantity" not in cols:
        qty = _find(cols, _ACT_QTY)
        if qty is not None:
            ren[qty] = "quantity"
            u = _unit_of(qty)[1]
            guesses.append(Guess(f"column {qty}", "quantity", "the quantity column" + (f" (in {u})" if u else ""),
                                 f"--column {qty}=…"))
    if "unit" not in cols:
        unit = _find([c for c in cols if c not in ren], _UNIT_WORDS)
        if unit is not None:
            ren[unit] = "unit"
    if "period" not in cols:
        date = _find([c for c in cols if c not in ren], _ACT_DATE + sorted(_files._PERIOD_HEADERS))
        if date is not None:
            ren[date] = "_date"
    drop += [c for c in cols if c not in ren and _find([c], _ACT_DROP)]
    out = frame.drop(columns=[c for c in drop if c in frame.columns]).rename(columns=ren)
    if "quantity" in out and "unit" not in out:
        src = next(k for k, v in ren.items() if v == "quantity") if "quantity" in ren.values() else None
        u = _unit_of(src)[1] if src else None
        if u:
            out["unit"] = u
    if "_date" in out:
        cells = out["_date"].astype(str).str.strip()
        months = cells.map(lambda c: _period_of(c) if _MONTHLY.match(c) else None)
        if months.notna().mean() > 0.5:        # already months (2025-01, 2025年1月)
            out["period"] = months.where(months.notna(), cells).to_numpy()
        else:
            d, _ = _parse_ts(cells)
            d = pd.Series(d, index=out.index)
            out["period"] = d.dt.strftime("%Y-%m").where(d.notna(), cells).to_numpy()
            src = next(k for k, v in ren.items() if v == "_date")
            guesses.append(Guess(f"column {src}", "period", "the month of each date", f"--column {src}=…"))
        out = out.drop(columns="_date")
    if "unit" in out:
        up = out["unit"].astype(str).str.strip()
        mapped = up.str.upper().map(_UOM)
        if mapped.notna().any():
            out["unit"] = mapped.where(mapped.notna(), up)
            guesses.append(Guess("units", "ERP codes", "TO → t, KG → kg, M3 → m3 …", "--column"))
    mv = _find(list(out.columns), _MOVEMENT)
    if mv is not None and "quantity" in out:
        rev = out[mv].astype(str).str.strip().isin(_REVERSAL)
        if rev.any():
            q = pd.to_numeric(out["quantity"].astype(str).str.replace(",", "", regex=False), errors="coerce")
            out.loc[rev & q.notna(), "quantity"] = (-q[rev & q.notna()].abs()).astype(str)
            guesses.append(Guess(f"column {mv}", "reversals", f"{int(rev.sum())} reversal movement(s) (262 …) "
                                 "subtracted", f"--column {mv}=ignore"))
    share = 0.0
    if "item" in out and len(out):
        names = out["item"].astype(str).str.strip()
        uniq = names.unique()[:200]
        known = {n for n in uniq if _files._item_category(lib, n)[0] is not None}
        share = float(names.isin(known).mean())
        if "unit" in out:       # gas volumes as statistics write them: 立方米 → Nm3 (stated in the guesses)
            cat = names.map(lambda n: _files._item_category(lib, n)[1])
            units = out["unit"].astype(str).str.strip()
            gas = cat.eq("fuel") & units.isin(list(_files._GAS_UNITS))
            if gas.any():
                out.loc[gas, "unit"] = [_files._stat_unit(u, "fuel") for u in units[gas]]
                guesses.append(Guess("gas volumes", "Nm3", _files.GAS_VOLUME_ASSUMPTION, "--column"))
    return out, guesses, share


_MONTH_COL = re.compile(r"^(?:(?P<y>\d{4})\s*[年\-/.]\s*)?(?P<m>\d{1,2})\s*月?$")


def _month_columns(cols) -> dict:
    """Columns that are months (``1月`` … ``12月``, ``2025-01``): column → (year or None, month)."""
    out = {}
    for c in cols:
        m = _MONTH_COL.match(str(c).strip())
        if m and (str(c).strip().endswith("月") or m.group("y")) and 1 <= int(m.group("m")) <= 12:
            out[c] = (int(m.group("y")) if m.group("y") else None, int(m.group("m")))
    return out


# ------------------------------------------------------------------------------ kinds
def _table_kind(t: _Table) -> tuple[str, str]:
    cols = t.header
    present = _files._activity_columns_present(cols)
    bases = [_unit_of(c)[0] for c in cols]
    if _files._is_energy_statistics(cols):
        return "statistics", "an energy-statistics form (能源名称, 计量单位, 消费量)"
    if any(_WHO_RE.match(c) for c in cols) and {"item", "quantity"} <= present:
        return "manual", "activity records kept by hand (a 录入人 column)"
    cells = " ".join(t.frame.head(50).astype(str).to_numpy().ravel().tolist()) if len(t.frame) else ""
    if any(_VALUE_ADDED_RE.search(c) for c in cols) or re.search(r"增加值", cells) or (
            any(re.search(r"产量|output", c, re.I) for c in cols) and any(_is(["产品", "product"], b) for b in bases)) \
            or ({"period", "node_id"} <= set(cols) and any(c.endswith("_t") for c in cols)):
        return "production", "a production/value-added table (产量, 增加值)"
    if {"item", "quantity"} <= present:
        return "activity", "activity records (品种, 数量)"
    view, _, known = _activity_view(t.frame)
    if known >= 0.5 and "quantity" in view.columns:
        return "activity", "records of energy items (the factor library knows them) with quantities"
    if known >= 0.5 and len(_month_columns(cols)) >= 2:
        return "activity", "a ledger with a column per month"
    if any(_k(c) in {_k(x) for x in _files._PERIOD_HEADERS} for c in cols):
        pcol = next(c for c in cols if _k(c) in {_k(x) for x in _files._PERIOD_HEADERS})
        energy = [c for c in cols if c != pcol and _unit_of(c)[1] and _files._looks_like_energy(_unit_of(c)[0])
                  and not _VALUE_RE.search(_unit_of(c)[0].replace("电量", ""))]
        cells = t.frame[pcol].head(50).astype(str).str.strip()
        monthly = cells.map(lambda s: bool(_MONTHLY.match(s)) or bool(re.match(r"^\d{1,2}\s*月$", s))).mean() > 0.8 \
            if len(cells) else False
        if energy and monthly:
            return "activity", "a monthly ledger (月份 and energy columns with units)"
    return "readings", "a time column and numbers"


def _pdf_text(path: Path) -> str:
    """The first page's text of a PDF ('' when it has no text layer or cannot be read)."""
    try:
        import pdfplumber

        with pdfplumber.open(path) as pdf:
            return (pdf.pages[0].extract_text() or "") if pdf.pages else ""
    except Exception:  # noqa: BLE001 - the table reader reports an unreadable PDF
        return ""


def _sniff_file_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "invoice"
    if suffix == ".pdf":
        try:
            from . import invoice_ocr
            looks = getattr(invoice_ocr, "looks_like_invoice", None)
            if looks is not None and looks(path):
                return "invoice"
        except ImportError:     # pragma: no cover - the OCR connector ships with the package
            pass
        return "pdf-tables"
    return None


# ------------------------------------------------------------------------------ register
def _register_guess(series: dict[str, np.ndarray]) -> dict[str, tuple[str, str]]:
    """meter → (register, why) from the values in time order."""
    out = {}
    for meter, v in series.items():
        v = v[~np.isnan(v)]
        if len(v) < 3:
            out[meter] = ("interval", f"{len(v)} value(s): too few to tell; interval assumed")
            continue
        d = np.diff(v)
        falls = int((d < 0).sum())
        rises = int((d > 0).sum())
        pos = d[d > 0]
        big = len(pos) and float(np.median(v)) > 20 * float(np.median(pos))
        if falls == 0 and rises >= 0.5 * len(d) and (len(v) >= 8 or big):
            out[meter] = ("cumulative", f"its {len(v)} values never fall and rise on {rises / len(d):.0%} of steps")
        else:
            out[meter] = ("interval", f"its values fall {falls} time(s)" if falls else
                          f"its {len(v)} values do not grow like a register")
    return out


# ------------------------------------------------------------------------------ planning
def plan_import(path, *, kind=None, encoding=None, delimiter=None, sheet=None, header_rows=None, columns=None,
                layout=None, unit=None, register=None, meter=None, period=None, quantity=None, node=None,
                decimal_comma=None, known_meters: pd.DataFrame | None = None) -> ImportPlan:
    """Look at ``path`` and decide how to read it (see the module doc).  Keyword arguments are the
    user's hints (flags or a mapping); ``known_meters`` is the enterprise's meter register (a meter
    known there lends its unit and register type)."""
    path = Path(path)
    if not path.exists():
        raise _files.FileFormatError(str(path), None, None, "no such file")
    if path.is_dir():
        raise _files.FileFormatError(str(path), None, None, "is a folder, not a file")
    if kind is not None and kind not in KINDS:
        raise ImportPlanError(f"--kind {kind}: not a kind (one of {', '.join(KINDS)})")
    if register is not None and register not in ("interval", "cumulative"):
        raise ImportPlanError(f"--register {register}: interval or cumulative")
    if unit is not None and _clean_unit(unit) is None:
        raise ImportPlanError(f"--unit {unit}: not a unit (e.g. kWh, MWh, 万kWh, m3, t, GJ)")
    if period is not None and not re.fullmatch(r"\d{4}(-(0[1-9]|1[0-2]))?", str(period)):
        raise ImportPlanError(f"--period {period}: a month YYYY-MM (or a year YYYY)")
    plan = ImportPlan(path=path, kind=kind or "?", encoding=encoding, delimiter=delimiter, sheet=sheet,
                      header_rows=list(header_rows or []), unit=unit, register=register, meter=meter,
                      period=period, quantity=quantity, node=node)
    for what, v, flag in (("kind", kind, "--kind"), ("encoding", encoding, "--encoding"), ("unit", unit, "--unit"),
                          ("register", register, "--register"), ("meter", meter, "--meter"),
                          ("period", period, "--period")):
        if v is not None:
            plan.guesses.append(Guess(what, str(v), "given", f"{flag} {v}", given=True))
    file_kind = _sniff_file_kind(path)
    if file_kind == "invoice" or kind == "invoice":
        plan.kind = "invoice"
        if not kind:
            plan.guesses.append(Guess("kind", "invoice", "an image or a PDF bill", "--kind"))
        return plan
    if file_kind == "pdf-tables":
        text = _pdf_text(path)
        stats = bool(re.search(r"能源购进|消费与库存|205-1", text))
        plan.kind = kind or ("statistics" if stats else "activity")
        if not kind:
            plan.guesses.append(Guess("kind", plan.kind, "a PDF of tables" + (" (能源购进、消费与库存)" if stats else ""),
                                      "--kind readings"))
        if not period:
            found, _ = _files._period_from_title([ln for ln in text.splitlines()[:15]])
            if found:
                plan.period = found
                plan.guesses.append(Guess("period", found, "printed above the table", f"--period {found}"))
        return plan
    if path.suffix.lower() == ".parquet":
        plan.kind = kind or "readings"
        return plan
    tables = load_tables(path, encoding=encoding, delimiter=delimiter, sheet=sheet, header_rows=header_rows or None,
                         max_rows=PLAN_SAMPLE_ROWS)
    t = _pick_table(tables, kind)
    for x in tables:
        x.origin = f"{path}#{x.sheet}" if x.sheet else str(path)
    plan.encoding, plan.delimiter, plan.sheet = plan.encoding or t.encoding, plan.delimiter or t.delimiter, \
        plan.sheet or t.sheet
    if t.encoding and not encoding:
        plan.guesses.append(Guess("encoding", t.encoding, _encoding_why(t.encoding), "--encoding gb18030"))
    if not header_rows:
        plan.header_rows = list(t.header_rows)
        above = f" ({len(t.title)} title line(s) above skipped)" if t.title else ""
        rows = "–".join(map(str, (t.header_rows[0], t.header_rows[-1]))) if len(t.header_rows) > 1 \
            else str(t.header_rows[0])
        plan.guesses.append(Guess("header", f"row {rows}", "the first row of names above the data" + above,
                                  f"--header-row {t.header_rows[0]}"))
    if t.total_rows:
        plan.guesses.append(Guess("total rows", "left out", f"row(s) {', '.join(map(str, t.total_rows[:5]))} are "
                                  "合计/总计 sums of the rows above", "(edit the file to keep them)"))
    if t.sheet and not sheet and len(tables) > 1:
        plan.guesses.append(Guess("sheet", t.sheet, f"the first of {len(tables)} sheets with a table", "--sheet NAME"))
    if not kind:
        plan.kind, why = _table_kind(t)
        plan.guesses.append(Guess("kind", plan.kind, why, f"--kind {'activity' if plan.kind == 'readings' else 'readings'}"))
    if not period and t.period and plan.kind in ("activity", "statistics", "production", "manual"):
        plan.period = t.period
        plan.guesses.append(Guess("period", t.period, "from the title line", f"--period {t.period}"))
    if plan.kind == "readings":
        _plan_readings(plan, t, columns or {}, layout, known_meters, decimal_comma)
    else:
        plan.columns = dict(columns or {})
    return plan


def _encoding_why(enc: str) -> str:
    return {"utf-8": "valid UTF-8", "utf-8-sig": "UTF-8 with a byte-order mark",
            "gbk": "not UTF-8; decodes as GBK", "gb18030": "not UTF-8 nor GBK; decodes as GB18030"}.get(enc, enc)


def _pick_table(tables: list[_Table], kind) -> _Table:
    if len(tables) == 1 or kind is None:
        return tables[0]
    for t in tables:
        if _table_kind(t)[0] == kind:
            return t
    return tables[0]


def _plan_readings(plan: ImportPlan, t: _Table, columns: dict, layout, known_meters, decimal_comma) -> None:
    known = set(known_meters["meter_id"].astype(str)) if known_meters is not None and len(known_meters) else set()
    if decimal_comma is None:
        decimal_comma = (t.delimiter in (";", "\t")) and any(
            t.frame[h].head(50).astype(str).str.fullmatch(r"-?\d+,\d+").mean() > 0.5 for h in t.header)
        if decimal_comma:
            plan.guesses.append(Guess("decimal comma", "yes", "numbers written 12,5 in a ';'-separated file",
                                      "--no-decimal-comma"))
    plan.decimal_comma = bool(decimal_comma)
    meaning, guesses = _classify(t, columns, known)
    plan.guesses.extend(guesses)
    title = _title_meta(t.title)
    days = _day_columns([h for h in t.header if h not in meaning], _year_of(plan.period) or _year_in(t.title))
    if len(days) >= 2 and not ({"ts", "date"} & set(meaning.values())):
        _plan_days(plan, t, meaning, days, title)
        return
    if not ({"ts"} & set(meaning.values()) or {"date", "time"} <= set(meaning.values())):
        raise ImportPlanError(f"{t.origin}: no time column found (columns are {', '.join(t.header)}); name it with "
                              "--column HEADER=ts")
    values = [h for h, m in meaning.items() if m == "value"]
    wide = []
    if layout == "wide" or (not values and "meter_id" not in meaning.values() and layout != "long"):
        wide = [h for h in t.header if h not in meaning and _num_share(t.frame[h], decimal_comma=plan.decimal_comma) >= 0.8]
        other = [h for h in wide if _REVERSE_RE.search(h)]
        if other and len(other) < len(wide):
            wide = [h for h in wide if h not in other]
            for h in other:
                meaning[h] = "-"
                plan.guesses.append(Guess(f"column {h}", "left out", "reverse or reactive energy, not consumption",
                                          f"--column {h}=value"))
        if not wide:
            raise ImportPlanError(f"{t.origin}: no column of numbers beside the time (columns are "
                                  f"{', '.join(t.header)}); name the value column with --column HEADER=value")
        if len(wide) == 1 and not layout:
            meaning[wide[0]] = "value"
            plan.guesses.append(Guess(f"column {wide[0]}", "value", "the only column of numbers", f"--column {wide[0]}=…"))
            wide = []
    if wide:
        plan.layout = "wide"
        for h in wide:
            meaning[h] = "meter:" + _meter_name(h)
        plan.guesses.append(Guess("layout", "wide", f"{len(wide)} columns of numbers and no meter column: one meter "
                                  "per column (" + ", ".join(_meter_name(h) for h in wide[:6]) +
                                  ("…" if len(wide) > 6 else "") + ")", "--layout long"))
    else:
        plan.layout = "long"
        if "value" not in meaning.values():
            raise ImportPlanError(f"{t.origin}: no value column found (columns are {', '.join(t.header)}); name it "
                                  "with --column HEADER=value")
    for h in t.header:
        meaning.setdefault(h, "-")
    plan.columns = meaning
    # meter
    if plan.layout == "long" and "meter_id" not in meaning.values() and plan.meter is None:
        if title.get("meter"):
            plan.meter = title["meter"]
            plan.guesses.append(Guess("meter", plan.meter, "from the title line", f"--meter {plan.meter}"))
        else:
            raise ImportPlanError(f"{t.origin}: no meter column and no meter named in the title; say which meter "
                                  "with --meter ID (or --column HEADER=meter_id)")
    # unit
    header_units = {h: _unit_of(h)[1] for h, m in meaning.items() if (m == "value" or m.startswith("meter:"))}
    header_units = {h: u for h, u in header_units.items() if u}
    if plan.unit is None and "unit" not in meaning.values():
        units = set(header_units.values())
        if len(units) == 1:
            plan.unit = units.pop()
            plan.guesses.append(Guess("unit", plan.unit, "written in the header", f"--unit {plan.unit}"))
        elif len(units) > 1 and plan.layout == "wide":
            plan.guesses.append(Guess("unit", ", ".join(sorted(units)), "each column's header", "--unit"))
        elif title.get("unit"):
            plan.unit = title["unit"]
            plan.guesses.append(Guess("unit", plan.unit, "from the title line", f"--unit {plan.unit}"))
    # register type, from the data
    frame = _readings_frame(plan, t)
    series = {}
    if len(frame):
        f = frame.dropna(subset=["ts"]).sort_values(["meter_id", "ts"], kind="stable")
        for mid, g in f.groupby("meter_id", observed=True, sort=False):
            series[str(mid)] = pd.to_numeric(g["value"], errors="coerce").to_numpy(dtype="float64")
    guessed = _register_guess(series)
    registered, km = {}, None
    if known_meters is not None and len(known_meters):
        km = known_meters.assign(meter_id=known_meters["meter_id"].astype(str)).drop_duplicates("meter_id") \
            .set_index("meter_id")
        registered = {m: str(km.at[m, "register"]) for m in guessed if m in km.index and "register" in km.columns}
        if plan.unit is None and "unit" not in meaning.values() and plan.layout == "long" and "unit" in km.columns:
            units = {str(km.at[m, "unit"]) for m in guessed if m in km.index}
            if len(units) == 1 and guessed and all(m in km.index for m in guessed):
                plan.unit = units.pop()
                plan.guesses.append(Guess("unit", plan.unit, "the meter register's unit (none in the file)",
                                          f"--unit {plan.unit}"))
    claim = _header_claim(plan)
    if plan.register is not None:
        plan.registers = {m: plan.register for m in guessed}
    else:
        kinds = {}
        for m, (reg, why) in guessed.items():
            if m in registered:
                kinds[m] = registered[m]
                if registered[m] != reg and len(series.get(m, [])) >= 8:
                    plan.warnings.append(f"meter {m} is registered as {registered[m]} but {why}: the lake's shape "
                                         f"check will quarantine what contradicts it (--register {reg} if the "
                                         "register is wrong)")
                continue
            if claim and claim[0] != reg and len(series.get(m, [])) >= 8:
                kinds[m] = claim[0]
                plan.warnings.append(f"meter {m}: the header says {claim[0]} ({claim[1]}) but {why} — kept as "
                                     f"{claim[0]}, so the contradiction is quarantined, not summed; pass --register "
                                     f"{reg} if the values are {reg}")
            else:
                kinds[m] = reg
        plan.registers = kinds
        distinct = set(kinds.values())
        if distinct:
            label = distinct.pop() if len(distinct) == 1 else "per meter"
            whys = {m: why for m, (r, why) in guessed.items()}
            sample = next(iter(whys.items()))
            why = ("from the meter register" if all(m in registered for m in guessed)
                   else f"from the data (meter {sample[0]}: {sample[1]})")
            plan.guesses.append(Guess("register", label, why,
                                      f"--register {'interval' if label == 'cumulative' else 'cumulative'}"))
    if plan.unit is None and "unit" not in meaning.values() and plan.layout == "long":
        raise ImportPlanError(f"{t.origin}: no unit in the file (header, unit column or title) and the meter is not "
                              "registered with one; give it with --unit (e.g. --unit kWh)")
    if plan.layout == "wide" and plan.unit is None:
        missing = [h for h, m in meaning.items() if m.startswith("meter:") and not _unit_of(h)[1]]
        if missing:
            raise ImportPlanError(f"{t.origin}: no unit for column(s) {', '.join(missing[:5])} (none in the header or "
                                  "the title); give it with --unit (e.g. --unit kWh)")
    if plan.quantity is None:
        u = plan.unit or next(iter(header_units.values()), None)
        if u:
            from workbench.core.meters import _default_quantity
            plan.quantity = _default_quantity(u, "")


_DAY_COL = re.compile(r"^(?:(?P<y>\d{4})\s*[年\-/.]\s*)?(?P<m>\d{1,2})\s*[月\-/.]\s*(?P<d>\d{1,2})\s*日?$")
_TOTAL_RE = re.compile(r"^(合计|总计|小计|total|sum)$", re.I)


def _day_columns(cols, year) -> dict:
    """Columns that are days (``10月1日``, ``2025-10-01``, ``10/1``): column → ISO date."""
    out = {}
    for c in cols:
        m = _DAY_COL.match(str(c).strip())
        if not m:
            continue
        y = int(m.group("y")) if m.group("y") else year
        if y is None:
            continue
        try:
            out[c] = pd.Timestamp(year=y, month=int(m.group("m")), day=int(m.group("d")))
        except ValueError:
            continue
    return out


def _plan_days(plan: ImportPlan, t: _Table, meaning: dict, days: dict, title: dict) -> None:
    """A daily report: a row per meter (circuit), a column per day, 合计 left out."""
    plan.layout = "days"
    if "meter_id" not in meaning.values():
        text = next((h for h in t.header if h not in meaning and h not in days and _num_share(t.frame[h]) < 0.5), None)
        if text is None:
            raise ImportPlanError(f"{t.origin}: a column per day but no column naming the meters; name it with "
                                  "--column HEADER=meter_id")
        meaning[text] = "meter_id"
        plan.guesses.append(Guess(f"column {text}", "meter_id", "names a meter on each row", f"--column {text}=…"))
    for h, d in days.items():
        meaning[h] = "day:" + d.strftime("%Y-%m-%d")
    for h in t.header:
        meaning.setdefault(h, "-")
    plan.columns = meaning
    first, last = min(days.values()), max(days.values())
    plan.guesses.append(Guess("layout", "a column per day", f"{len(days)} day columns {first:%Y-%m-%d} … {last:%Y-%m-%d}"
                              " (合计 columns and rows left out)", "--layout long"))
    if plan.unit is None:
        if title.get("unit"):
            plan.unit = title["unit"]
            plan.guesses.append(Guess("unit", plan.unit, "from the title line", f"--unit {plan.unit}"))
        else:
            raise ImportPlanError(f"{t.origin}: no unit in the title or the headers; give it with --unit (e.g. --unit kWh)")
    if plan.register is None:
        plan.register = None
    meters = [str(v).strip() for v in t.frame[next(h for h, m in meaning.items() if m == "meter_id")]]
    plan.registers = {m: plan.register or "interval" for m in meters if m and not _TOTAL_RE.match(m)}
    if plan.register is None:
        plan.guesses.append(Guess("register", "interval", "a daily report holds each day's consumption",
                                  "--register cumulative"))
    from workbench.core.meters import _default_quantity
    plan.quantity = plan.quantity or _default_quantity(plan.unit, "")


def _header_claim(plan: ImportPlan) -> tuple[str, str] | None:
    for h, m in plan.columns.items():
        if m == "value" or m.startswith("meter:"):
            base = _unit_of(h)[0]
            if _CUMULATIVE_CLAIM.search(base):
                return "cumulative", f"'{h}'"
            if _INTERVAL_CLAIM.search(base):
                return "interval", f"'{h}'"
    return None


def _meter_name(header: str) -> str:
    base, _ = _unit_of(header)
    parts = [p for p in base.split("/") if p]
    return parts[0] if parts else header


# ------------------------------------------------------------------------------ reading
def _readings_frame(plan: ImportPlan, t: _Table) -> pd.DataFrame:
    """Canonical readings cells (meter_id, ts, value [, unit, quantity, register, quality]) + row."""
    cols = plan.columns
    f = t.frame
    inv = {}
    for h, m in cols.items():
        if m in ("ts", "date", "time", "meter_id", "value", "unit", "quantity", "register", "quality", "multiplier"):
            inv.setdefault(m, h)
    parts = []
    if plan.layout != "days":
        if "ts" in inv:
            ts_cells = f[inv["ts"]].astype(str)
        else:
            ts_cells = f[inv["date"]].astype(str).str.strip() + " " + f[inv["time"]].astype(str).str.strip()
    if plan.layout == "days":
        mcol = next(h for h, m in cols.items() if m == "meter_id")
        names = f[mcol].astype(str).str.strip()
        keep = ~names.str.match(_TOTAL_RE.pattern, case=False) & names.ne("")
        for h, m in cols.items():
            if m.startswith("day:"):
                parts.append(pd.DataFrame({"meter_id": names[keep].to_numpy(), "ts_cell": m[4:],
                                           "value": f.loc[keep, h].to_numpy(), "row": t.rows[keep.to_numpy()]}))
        out = pd.concat(parts, ignore_index=True)
        ts = pd.to_datetime(out["ts_cell"])
        out["ts"] = ts
        out.attrs["ts_how"] = "day columns"
        return out
    if plan.layout == "wide":
        for h, m in cols.items():
            if not m.startswith("meter:"):
                continue
            part = pd.DataFrame({"meter_id": m[len("meter:"):], "ts_cell": ts_cells.to_numpy(),
                                 "value": f[h].to_numpy(), "row": t.rows, "_column": h})
            u = _unit_of(h)[1]
            if plan.unit is None and u:
                part["unit"] = u
            parts.append(part)
        out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["meter_id", "ts_cell", "value", "row", "_column"])
    else:
        out = pd.DataFrame({"meter_id": f[inv["meter_id"]].to_numpy() if "meter_id" in inv else plan.meter,
                            "ts_cell": ts_cells.to_numpy(), "value": f[inv["value"]].to_numpy(), "row": t.rows})
        for m in ("unit", "quantity", "register", "quality"):
            if m in inv:
                out[m] = f[inv[m]].to_numpy()
        if "multiplier" in inv:     # 示数 × 倍率: the meter's reading times its CT/PT ratio
            v = pd.to_numeric(out["value"].astype(str).str.replace(",", "", regex=False), errors="coerce")
            k = pd.to_numeric(f[inv["multiplier"]].astype(str).str.strip(), errors="coerce").to_numpy()
            ok = v.notna().to_numpy() & ~np.isnan(k)
            out["value"] = np.where(ok, (v.to_numpy() * np.where(ok, k, 1)).astype(str), out["value"].astype(str))
            bad_k = v.notna().to_numpy() & np.isnan(k)
            if bad_k.any():
                out.loc[bad_k, "value"] = "倍率 " + f[inv["multiplier"]].astype(str).to_numpy()[bad_k]
    if plan.decimal_comma:
        out["value"] = out["value"].astype(str).str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    ts, how = _parse_ts(out["ts_cell"]) if len(out) else (pd.Series([], dtype="datetime64[us]"), "text")
    out["ts"] = ts.to_numpy() if len(out) else ts
    out.attrs["ts_how"] = how
    return out


def read_planned(plan: ImportPlan, *, source: str = "file") -> ConnectorResult:
    """Read the file as ``plan`` says (:func:`plan_import`)."""
    path = plan.path
    if plan.kind == "invoice":
        from . import invoice_ocr
        return invoice_ocr.read(path)
    if path.suffix.lower() == ".pdf":
        return _files.read_pdf_tables(path, kind="readings" if plan.kind == "readings" else "activity", source=source,
                                      period=plan.period)
    if path.suffix.lower() == ".parquet":
        from . import parquet
        return parquet.read(path, kind=plan.kind)
    tables = load_tables(path, encoding=plan.encoding, delimiter=plan.delimiter, sheet=plan.sheet,
                         header_rows=plan.header_rows or None)
    t = _pick_table(tables, None if plan.sheet else plan.kind)
    t.origin = f"{path}#{t.sheet}" if t.sheet else str(path)
    raw = path.read_bytes()
    meta = {"connector": "import", "source": source, "origin": str(path), "encoding": t.encoding,
            "format": "xlsx" if t.sheet else "csv", "header_rows": t.header_rows, "plan": plan.to_mapping()}
    if plan.kind == "readings":
        data, rejected = _readings(plan, t)
        kind = "readings"
    elif plan.kind == "production":
        data, rejected = _production(plan, t)
        kind = "production"
    else:
        data, rejected, info = _activity(plan, t)
        meta.update({k: v for k, v in info.items() if k != "skipped"})
        kind = "activity"
        if plan.kind == "manual":
            who = [c for c in t.header if _WHO_RE.match(c)]
            names = sorted({str(v).strip() for c in who for v in t.frame[c] if str(v).strip()})
            meta["sender"] = ", ".join(names) or None
    meta["rejected"] = _files._rejected_frame(t.rejected + rejected, str(path))
    meta["records"] = len(data)
    return ConnectorResult(data, meta, kind=kind, raw=raw, raw_name=path.name)


def _readings(plan: ImportPlan, t: _Table) -> tuple[pd.DataFrame, list]:
    cells = _readings_frame(plan, t)
    how = cells.attrs.get("ts_how", "text")
    origin = t.origin
    rejected = []
    if "quality" in cells:
        q = cells["quality"].astype(str).str.strip().str.lower()
        bad = ~q.isin(_GOOD_QUALITY) & q.ne("")
        for r, v, val in zip(cells.loc[bad, "row"], cells.loc[bad, "quality"], cells.loc[bad, "value"]):
            rejected.append({"row": int(r), "column": next(h for h, m in plan.columns.items() if m == "quality"),
                             "reason": f"the source marks this value as bad (quality '{v}')",
                             "payload": json.dumps({"value": val, "quality": v}, ensure_ascii=False),
                             "origin": origin})
        cells = cells[~bad]
    frame = pd.DataFrame({"meter_id": cells["meter_id"].astype(str).to_numpy(),
                          "ts": (cells["ts_cell"] if how == "text" else cells["ts"]).to_numpy(),
                          "value": cells["value"].to_numpy()})
    written = {"meter_id": "meter", "ts": "time", "value": "value"}
    for h, m in plan.columns.items():
        if m in ("ts", "value", "meter_id", "unit", "quantity", "register"):
            written[m] = h
    defaults = {"quantity": plan.quantity or "active_energy"}
    if plan.unit:
        defaults["unit"] = plan.unit
    elif "unit" in cells:
        frame["unit"] = cells["unit"].to_numpy()
    if "quantity" in cells:
        frame["quantity"] = cells["quantity"].to_numpy()
    if "register" not in cells and plan.register is None and plan.layout != "days":
        # the plan saw a sample: meters that first appear further down are judged on their own data
        ids = pd.unique(cells["meter_id"].astype(str))
        later = [m for m in ids if m not in plan.registers]
        if later:
            sub = cells[cells["meter_id"].astype(str).isin(later)].dropna(subset=["ts"])
            sub = sub.sort_values(["meter_id", "ts"], kind="stable")
            series = {str(m): pd.to_numeric(g["value"], errors="coerce").to_numpy(dtype="float64")
                      for m, g in sub.groupby("meter_id", sort=False)}
            claim = _header_claim(plan)
            for m, (reg, _) in _register_guess(series).items():
                plan.registers[m] = claim[0] if claim and claim[0] != reg and len(series[m]) >= 8 else reg
    if "register" in cells:
        frame["register"] = cells["register"].to_numpy()
    elif plan.registers:
        frame["register"] = cells["meter_id"].astype(str).map(plan.registers).fillna("interval").to_numpy()
    good, rej = _files._convert_readings(frame, cells["row"].to_numpy(), written, defaults, origin)
    return good, rejected + rej


def _activity(plan: ImportPlan, t: _Table) -> tuple[pd.DataFrame, list, dict]:
    from workbench.core.factors import default_library

    lib = default_library()
    frame = t.frame.rename(columns={h: m for h, m in plan.columns.items() if m != "-"})
    drop = [h for h, m in plan.columns.items() if m == "-"]
    frame = frame.drop(columns=[c for c in drop if c in frame.columns])
    if plan.kind == "manual":
        frame = frame.drop(columns=[c for c in frame.columns if _WHO_RE.match(str(c))])
    rows = t.rows
    if plan.kind != "statistics":
        frame, guesses, _ = _activity_view(frame, lib)
        plan.guesses.extend(g for g in guesses if g.what not in {x.what for x in plan.guesses})
        frame, rows = _net_reversals(frame, rows)
        months = _month_columns(frame.columns)
        if "item" in frame and len(months) >= 2 and "quantity" not in frame:
            frame, rows = _melt_months(frame, rows, months, plan, t)
    good, rej, info = _files._activity_from_table(frame, rows, t.origin, lib, period=plan.period,
                                                  document=f"{plan.path.name}#{t.sheet}" if t.sheet else plan.path.name)
    return good, rej, info


def _net_reversals(frame: pd.DataFrame, rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """A negative quantity (a reversed goods issue, SAP 262) is taken off the latest earlier issue of
    the same item, unit and month — activity records are never negative — and the record says so in
    its document field.  A reversal with nothing to net against stays and is quarantined."""
    if not {"item", "quantity", "period"} <= set(frame.columns) or not len(frame):
        return frame, rows
    q = pd.to_numeric(frame["quantity"].astype(str).str.replace(",", "", regex=False), errors="coerce")
    neg = q < 0
    if not neg.any():
        return frame, rows
    frame = frame.copy()
    unit = frame["unit"].astype(str) if "unit" in frame else pd.Series("", index=frame.index)
    key = frame["item"].astype(str) + "\x1f" + unit + "\x1f" + frame["period"].astype(str)
    drop = []
    qv = q.copy()
    notes = {}
    for i in np.flatnonzero(neg.to_numpy()):
        earlier = [j for j in range(i - 1, -1, -1) if key.iat[j] == key.iat[i] and qv.iat[j] > 0 and j not in drop]
        if not earlier or qv.iat[earlier[0]] + qv.iat[i] < 0:
            continue
        j = earlier[0]
        qv.iat[j] = qv.iat[j] + qv.iat[i]
        notes.setdefault(j, []).append(int(rows[i]))
        drop.append(i)
    for j, rs in notes.items():
        frame.iat[j, frame.columns.get_loc("quantity")] = repr(float(qv.iat[j]))
        doc = f"net of the reversal(s) in row(s) {', '.join(map(str, rs))}"
        if "document" in frame:
            frame.iat[j, frame.columns.get_loc("document")] = f"{frame.iat[j, frame.columns.get_loc('document')]}; {doc}"
        else:
            frame["document"] = ""
            frame.iat[j, frame.columns.get_loc("document")] = doc
    keep = np.ones(len(frame), bool)
    keep[drop] = False
    return frame[keep].reset_index(drop=True), np.asarray(rows)[keep]


def _melt_months(frame, rows, months, plan, t):
    """A ledger with a column per month (1月 … 12月, 累计 left out) → one record per item and month."""
    year = next((y for y, _ in months.values() if y), None) or _year_of(plan.period) or _year_of(t.period) \
        or _year_in(t.title)
    if year is None:
        raise ImportPlanError(f"{t.origin}: the months have no year (none in the title); give it with --period YYYY")
    keep = [c for c in frame.columns if c not in months and not re.search(r"累计|合计|total|备注|note", str(c), re.I)]
    recs, out_rows = [], []
    for i, r in enumerate(rows):
        base = {c: frame.iloc[i][c] for c in keep}
        for c, (y, m) in months.items():
            cell = str(frame.iloc[i][c]).strip()
            if cell in ("", "nan", "None", "-", "—"):
                continue
            recs.append({**base, "quantity": cell, "period": f"{y or year:04d}-{m:02d}"})
            out_rows.append(r)
    plan.guesses.append(Guess("layout", "a column per month", f"{len(months)} month columns of {year}; 累计/合计 "
                              "columns left out", "--period YYYY"))
    return pd.DataFrame(recs), np.asarray(out_rows, dtype=np.int64)


def _year_of(period) -> int | None:
    return int(str(period)[:4]) if period and re.match(r"^\d{4}", str(period)) else None


def _year_in(lines) -> int | None:
    m = re.search(r"(20\d{2})", " ".join(lines or []))
    return int(m.group(1)) if m else None


_NAME_WORDS = ["指标名称", "产品名称", "产品", "项目", "指标", "名称", "product", "item", "indicator"]
_THIS_MONTH = re.compile(r"本月|本期|当月|数量|产量|数值|value|quantity|output", re.I)
_NOT_THIS_MONTH = re.compile(r"累计|同比|增长|上年|去年|%|比重|计划|ytd|year_to_date", re.I)


def _period_of(cell: str) -> str | None:
    m = _MONTHLY.match(cell)
    if m and 1 <= int(m.group(2)) <= 12:
        return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}"
    d = pd.to_datetime(cell, errors="coerce") if cell else None
    return None if d is None or pd.isna(d) else d.strftime("%Y-%m")


def _production(plan: ImportPlan, t: _Table) -> tuple[pd.DataFrame, list]:
    """A production/value-added table → rows period, node_id, measure, product, quantity, unit, row.

    Layouts: the workbench's own ``monthly.csv`` (period, node_id, value_added_10k_cny, <product>_t);
    one row per indicator (月份, 指标名称, 计量单位, 本月数 — 本年累计/同比 columns left out); one row
    per month with a column per measure (月份, 产品, 产量(吨), 工业增加值(万元))."""
    f = t.frame
    cols = list(f.columns)
    if {"period", "node_id"} <= set(cols):
        from . import production

        data, guessed = production.reshape(f.assign(), origin=t.origin)
        data["row"] = t.rows[data["row"].to_numpy() - 2]
        if guessed:
            plan.guesses.append(Guess("products", ", ".join(guessed), "columns named <product>_t, in tonnes",
                                      "(the enterprise's products in the master data)"))
        return data, []
    pcol = next((c for c in cols if _k(c) in {_k(x) for x in _files._PERIOD_HEADERS} or _is(["period"], c)), None)
    node_col = next((c for c in cols if _is(["node_id", "节点", "设施", "工厂", "facility"], c)), None)
    name_col = next((c for c in cols if _is(_NAME_WORDS, _unit_of(c)[0])), None)
    unit_col = next((c for c in cols if _is(_UNIT_WORDS, c)), None)
    rows_out, rejected = [], []

    def period_at(i, r):
        if pcol is None:
            if plan.period is None or not re.fullmatch(r"\d{4}-\d{2}", str(plan.period)):
                raise ImportPlanError(f"{t.origin}: no month column and no month in the title; give it with "
                                      "--period YYYY-MM")
            return plan.period
        cell = str(f.at[i, pcol]).strip()
        per = _period_of(cell)
        if per is None:
            rejected.append({"row": int(r), "column": pcol, "reason": f"'{cell}' is not a month (YYYY-MM)",
                             "payload": _files._row_json(f.iloc[i]), "origin": t.origin})
        return per

    if name_col is not None and not any(_VALUE_ADDED_RE.search(c) for c in cols):     # one row per indicator
        values = [c for c in cols if c not in (pcol, node_col, name_col, unit_col) and _THIS_MONTH.search(c)
                  and not _NOT_THIS_MONTH.search(c)]
        if not values:
            raise ImportPlanError(f"{t.origin}: which column holds this period's figures? (columns are "
                                  f"{', '.join(cols)}); name it with --column HEADER=value")
        vcol = values[0]
        if len([c for c in cols if _NOT_THIS_MONTH.search(c)]):
            plan.guesses.append(Guess(f"column {vcol}", "quantity", "this period's figures (累计/同比 columns left "
                                      "out)", f"--column {vcol}=…"))
        for i, r in enumerate(t.rows):
            name = str(f.at[i, name_col]).strip()
            cell = str(f.at[i, vcol]).strip().replace(",", "")
            if not name or not cell:
                continue
            per = period_at(i, r)
            if per is None:
                continue
            unit = (str(f.at[i, unit_col]).strip() if unit_col else None) or _unit_of(vcol)[1] or ""
            va = bool(_VALUE_ADDED_RE.search(name))
            rows_out.append({"period": per, "node_id": str(f.at[i, node_col]).strip() if node_col else (plan.node or ""),
                             "measure": "value_added" if va else "output", "product": "" if va else name,
                             "quantity": cell, "unit": unit or ("万元" if va else "t"), "row": int(r)})
    else:                            # one row per month, a column per measure
        product_col = next((c for c in cols if _is(["产品", "产品名称", "product"], _unit_of(c)[0])), None)
        for i, r in enumerate(t.rows):
            per = period_at(i, r)
            if per is None:
                continue
            node = str(f.at[i, node_col]).strip() if node_col else (plan.node or "")
            for c in cols:
                if c in (pcol, node_col, product_col):
                    continue
                base, unit = _unit_of(c)
                cell = str(f.at[i, c]).strip().replace(",", "")
                if not cell:
                    continue
                if _VALUE_ADDED_RE.search(base):
                    measure, product, unit = "value_added", "", unit or "万元"
                elif re.search(r"产量|output", base, re.I):
                    measure = "output"
                    product = str(f.at[i, product_col]).strip() if product_col else \
                        re.sub(r"产量|output", "", base).strip("_ ")
                    unit = unit or "t"
                else:
                    continue
                rows_out.append({"period": per, "node_id": node, "measure": measure, "product": product,
                                 "quantity": cell, "unit": unit, "row": int(r)})
    data = pd.DataFrame(rows_out, columns=["period", "node_id", "measure", "product", "quantity", "unit", "row"])
    return data, rejected
