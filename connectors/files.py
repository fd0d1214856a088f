"""Electronic documents as data sources (seed §7.2 c): CSV exports, XLSX workbooks, PDF tables.

Data that already sits in internal systems or documents is taken from the files those systems
export.  Three readers, one contract (:class:`connectors.ConnectorResult`):

``read_csv(path, kind=…)``      meter/SCADA exports and activity lists; UTF-8 (with or without BOM),
                                GBK or GB18030, detected and recorded in ``metadata["encoding"]``;
                                a fast Arrow path for files of millions of readings
``read_xlsx(path, sheet=…)``    workbooks with several sheets and multi-row merged headers, such as
                                the energy-statistics form 能源购进、消费与库存 (see
                                :func:`energy_statistics_to_activity`)
``read_pdf_tables(path)``       tables inside PDF reports (pdfplumber)

Problems are split in two (nothing is ever dropped silently):

* a **whole-file** problem — undecodable or wrong encoding (UTF-16, binary, corrupt bytes), a file
  truncated in the middle of its last row, missing required columns, no records — raises
  :class:`FileFormatError` (a ``ValueError``) naming file, row (spreadsheet numbering: header =
  row 1) and column;
* a **row** problem — text in a number column, an impossible timestamp, a row with the wrong number
  of fields, an unknown item — is *returned*: ``result.data`` holds the good rows with their source
  row number in a ``row`` column, ``result.metadata["rejected"]`` is a DataFrame ``row, column,
  reason, payload, origin`` (payload = JSON of the row as written) that the lake quarantines.

Readings come out with exactly the columns ``meter_id, ts, quantity, value, unit`` (+ ``register``
when the file has one, + ``sheet`` when several workbook sheets were read) + ``row``: ``ts`` is
``datetime64[us]`` (naive = Asia/Shanghai local time; timestamps written with an offset come out
tz-aware in Asia/Shanghai), ``value`` float64 (a blank cell is NaN and kept — the lake flags missing
values), the text columns are categoricals (a few meters, millions of readings).  Activity records
come out of :func:`workbench.core.activity.normalize_activity` — the one validation path of the workbench.

Encodings: strict UTF-8 first (a BOM is recorded as ``utf-8-sig``), then GBK, then GB18030 (its
superset; GBK is tried first only so that the name recorded is the narrower one — both decode GBK
bytes identically).  A file whose first Chinese characters decoded as UTF-8 and then hit a bad byte
is UTF-8 with corrupt bytes (an error), not GBK.  Control characters, U+FFFD and private-use
characters (where GB18030 puts byte pairs that no Chinese system writes) mean a wrong encoding or
corrupt bytes (an error).

Speed: a readings CSV goes through Arrow's multi-threaded parser with explicit types (text columns
dictionary-encoded); a GBK file is transcoded to UTF-8 first.  When a cell does not convert, only
that column is re-read as text and checked; a structural problem (a row with the wrong number of
fields, a truncated last line) falls back to Python's ``csv`` module, which numbers rows exactly.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.core.activity import COLUMNS as ACTIVITY_COLUMNS
from workbench.core.activity import HEADER_ALIASES as ACTIVITY_ALIASES
from workbench.core.activity import ActivityDataError, normalize_activity
from workbench.core.errors import WorkbenchError
from workbench.core.factors import UnknownItemError, default_library
from workbench.core.units import UnitError, parse_unit

from . import ConnectorResult

__all__ = [
    "GAS_VOLUME_ASSUMPTION",
    "READINGS_ALIASES",
    "REJECTED_COLUMNS",
    "FileFormatError",
    "SheetTable",
    "detect_encoding",
    "energy_statistics_to_activity",
    "read",
    "read_any",
    "read_csv",
    "read_file",
    "read_pdf_tables",
    "read_xlsx",
    "read_xlsx_tables",
    "sniff_kind",
    "wide_to_activity",
]

name = "files"

READINGS_COLUMNS = ("meter_id", "ts", "quantity", "value", "unit", "register")
READINGS_REQUIRED = ("meter_id", "ts", "value", "quantity", "unit")
READINGS_ALIASES = {
    "meter_id": ["表号", "计量点", "计量点编号", "计量点号", "表计编号", "电表号", "仪表编号", "测点", "测点编号",
                 "meter", "meter_code", "meter_no", "point", "point_id", "tag"],
    "ts": ["时间", "采集时间", "抄表时间", "数据时间", "时间戳", "日期时间", "记录时间", "timestamp", "time",
           "datetime", "date_time"],
    "value": ["读数", "示数", "数值", "值", "测量值", "reading", "val"],
    "unit": ["单位", "计量单位", "units", "uom"],
    "quantity": ["指标", "测量项", "数据项", "参数", "metric", "measure", "variable"],
    "register": ["寄存器", "读数类型", "计量方式", "register_type"],
}
REGISTER_ALIASES = {
    "interval": ["interval", "区间", "增量", "间隔", "时段", "delta"],
    "cumulative": ["cumulative", "累计", "表码", "表底", "总量", "register", "total"],
}
#: columns of ``metadata["rejected"]``
REJECTED_COLUMNS = ["row", "column", "reason", "payload", "origin"]

_TS_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y%m%d%H%M%S", "%Y%m%d %H:%M",
               "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日 %H时%M分", "%Y年%m月%d日",
               "%d/%m/%Y %H:%M")
_AWARE = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})$"
LOCAL_TZ = "Asia/Shanghai"


# ---------------------------------------------------------------------------------- errors
class FileFormatError(WorkbenchError, ValueError):
    """A whole-file problem: the file cannot be read as a table at all.

    ``file``, ``row`` (spreadsheet numbering, header = row 1; ``None`` when not tied to a row) and
    ``column`` (the header as written, or ``None``) locate it; ``str()`` reads
    ``"<file>, row 7, column '读数': <message>"`` like :class:`workbench.core.activity.ActivityDataError`.
    """

    def __init__(self, file, row: int | None, column: str | None, message: str):
        self.file, self.row, self.column, self.message = str(file), row, column, message
        where = [self.file]
        if row is not None:
            where.append(f"row {row}")
        if column:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {message}")


# ---------------------------------------------------------------------------------- headers
def _key(text) -> str:
    s = str(text).strip().lower().replace("（", "(").replace("）", ")").replace("\ufeff", "")
    return re.sub(r"[\s\-]+", "_", s)


_READINGS_MAP = {_key(c): c for c in READINGS_COLUMNS}
for _c, _names in READINGS_ALIASES.items():
    for _n in _names:
        _READINGS_MAP[_key(_n)] = _c
_ACTIVITY_MAP = {_key(c): c for c in ACTIVITY_COLUMNS}
for _c, _names in ACTIVITY_ALIASES.items():
    for _n in _names:
        _ACTIVITY_MAP[_key(_n)] = _c
_REGISTER_MAP = {_key(v): k for k, vs in REGISTER_ALIASES.items() for v in vs}
_UNIT_IN_HEADER = re.compile(r"^(?P<name>.*?)\s*[(（\[【]\s*(?P<unit>[^()（）\[\]【】]+?)\s*[)）\]】]\s*$")


def _clean_header(text) -> str:
    """Header text as a human wrote it, without line breaks and padding (``'计量\\n单位'`` → ``计量单位``)."""
    if text is None:
        return ""
    s = str(text).replace("\ufeff", "").replace("\u3000", " ").strip()
    s = re.sub(r"\s*\n\s*", "", s)
    # spaces between CJK characters are layout ("能 源 名 称"), not content
    s = re.sub(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])", "", s)
    return re.sub(r"\s+", " ", s)


def _split_unit(header: str) -> tuple[str, str | None]:
    """``'读数(kWh)'`` → ``('读数', 'kWh')``; ``'电力（万千瓦时）'`` → ``('电力', '万千瓦时')``."""
    m = _UNIT_IN_HEADER.match(header)
    if m and m.group("name").strip():
        return m.group("name").strip(), m.group("unit").strip()
    return header, None


def _apply_columns(headers: list[str], columns: dict | None, canon: set) -> dict:
    """``columns`` mapping (file header → canonical name; the reverse direction is accepted too)."""
    if not columns:
        return {}
    out = {}
    for k, v in columns.items():
        if k in headers:
            out[k] = v
        elif v in headers and k in canon:
            out[v] = k
        else:
            raise FileFormatError("<columns>", 1, str(k), f"column mapping {k!r} → {v!r}: no such header "
                                  f"(headers are {', '.join(map(str, headers))})")
    return out


def _map_readings_headers(headers: list[str], columns: dict | None):
    """canonical → index, canonical → header as written, and units found in headers (``读数(kWh)``)."""
    explicit = _apply_columns(headers, columns, set(READINGS_COLUMNS))
    idx, written, header_units = {}, {}, {}
    for i, h in enumerate(headers):
        canon = explicit.get(h)
        if canon is None:
            canon = _READINGS_MAP.get(_key(h))
        if canon is None:
            base, unit = _split_unit(h)
            canon = _READINGS_MAP.get(_key(base))
            if canon == "value" and unit:
                header_units["unit"] = unit
        if canon in READINGS_COLUMNS and canon not in idx:
            idx[canon] = i
            written[canon] = h
    return idx, written, header_units


# ---------------------------------------------------------------------------------- encoding
_CJK = re.compile("[\u4e00-\u9fff]")
_ODD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ue000-\uf8ff\ufffd]")
#: bytes that are no text: C0 controls other than tab/LF/CR, and DEL → mapped to NUL for one find()
_CONTROL_TABLE = bytes(0 if (b < 32 and b not in (9, 10, 13)) or b == 127 else b for b in range(256))
#: U+FFFD (a replacement character left by an earlier bad decode) and private-use U+E000–U+F8FF
#: (where GB18030 puts byte pairs no Chinese system writes) in UTF-8
_ODD_UTF8 = re.compile(rb"\xef\xbf\xbd|\xee[\x80-\xbf][\x80-\xbf]|\xef[\x80-\xa3][\x80-\xbf]")


def _locate(raw: bytes, pos: int, header: list[str] | None, delimiter: str = ",") -> tuple[int, str | None]:
    """(row, column header) of byte offset ``pos`` (physical line; header = row 1)."""
    row = raw.count(b"\n", 0, pos) + 1
    start = raw.rfind(b"\n", 0, pos) + 1
    col_idx = raw.count(delimiter.encode(), start, pos)
    if header and col_idx < len(header):
        return row, header[col_idx]
    return row, f"field {col_idx + 1}"


def _best_effort_header(raw: bytes, delimiter: str = ",") -> list[str] | None:
    """The header line's names if they decode cleanly (else ``None``: columns are named by number)."""
    line = raw[: raw.find(b"\n")] if b"\n" in raw[:1 << 20] else raw[: 1 << 20]
    line = line.rstrip(b"\r")
    if line.startswith(codecs.BOM_UTF8):
        line = line[3:]
    if b"\x00" in line:
        return None
    for enc in ("utf-8", "gbk", "gb18030"):
        try:
            text = line.decode(enc)
        except UnicodeDecodeError:
            continue
        if _ODD_TEXT.search(text):
            return None
        return [_clean_header(h) for h in text.split(delimiter)]
    return None


class _Decoded:
    """A CSV file's text: the encoding found, UTF-8 bytes (no BOM, no DOS EOF marker) and the text
    (decoded lazily: the Arrow path of a big UTF-8 file never builds the Python string)."""

    def __init__(self, encoding: str, utf8: bytes, text: str | None = None):
        self.encoding, self.utf8, self._text = encoding, utf8, text
        self.origin, self.delimiter, self._checked = "<bytes>", ",", False

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.utf8.decode("utf-8")
        return self._text

    def check(self) -> None:
        """Control characters anywhere, or U+FFFD/private-use characters: a wrong encoding guess or
        corrupt bytes → :class:`FileFormatError` at the first one."""
        if self._checked:
            return
        utf8, delimiter = self.utf8, self.delimiter
        bad = utf8.translate(_CONTROL_TABLE).find(b"\x00")
        if bad < 0 and (utf8.find(b"\xef") >= 0 or utf8.find(b"\xee") >= 0):
            m = _ODD_UTF8.search(utf8)
            bad = m.start() if m else -1
        if bad >= 0:
            row, col = _locate(utf8, bad, _best_effort_header(utf8, delimiter), delimiter)
            ch = utf8[bad:bad + 3].decode("utf-8", "replace")[:1]
            raise FileFormatError(self.origin, row, col, f"character U+{ord(ch):04X} (read as {self.encoding}) is "
                                  "a control, replacement or private-use character: wrong encoding or corrupt bytes")
        self._checked = True


def _decode(raw: bytes, origin: str, encoding: str | None = None, delimiter: str = ",",
            full_check: bool = True) -> _Decoded:
    """Decode and check.  ``full_check=False`` skips the byte scan for control characters in UTF-8
    files; the caller then checks the text cells it uses (see :meth:`_Decoded.check`)."""
    if not raw or (not raw[:4096].strip(b" \t\r\n\x1a") and not raw.strip(b" \t\r\n\x1a")):
        raise FileFormatError(origin, None, None, "the file is empty")
    if raw[:4] == b"PK\x03\x04":
        raise FileFormatError(origin, None, None, "this is a ZIP/XLSX workbook, not CSV text (use read_xlsx)")
    if raw[:5] == b"%PDF-":
        raise FileFormatError(origin, None, None, "this is a PDF document, not CSV text (use read_pdf_tables)")
    if raw[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        raise FileFormatError(origin, 1, None, "the file is UTF-32 text; export it as UTF-8 or GBK/GB18030")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise FileFormatError(origin, 1, None, "the file is UTF-16 text (byte-order mark "
                              f"{raw[:2].hex(' ')}); export it as UTF-8 or GBK/GB18030")
    nul = raw.find(b"\x00")
    if nul >= 0:
        row, col = _locate(raw, nul, _best_effort_header(raw, delimiter), delimiter)
        raise FileFormatError(origin, row, col, "NUL byte in the text: the file is UTF-16/UTF-32 without a "
                              "byte-order mark or binary data, not UTF-8/GBK text")
    body = raw.rstrip(b"\x1a") if raw.endswith(b"\x1a") else raw  # DOS end-of-file marker
    bom = body.startswith(codecs.BOM_UTF8)
    off = 3 if bom else 0
    if bom:
        body = body[3:]
    if encoding and codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            pos = getattr(exc, "start", 0) + off
            row, col = _locate(raw, pos, _best_effort_header(raw, delimiter), delimiter)
            raise FileFormatError(origin, row, col, f"not {encoding} text: {exc}") from None
        dec = _Decoded(encoding, text.encode("utf-8"), text)
    else:
        dec = _decode_auto(raw, body, off, bom, origin, delimiter, utf8_only=bool(encoding))
    dec.origin, dec.delimiter = origin, delimiter
    if full_check or dec.encoding not in ("utf-8", "utf-8-sig"):
        dec.check()
    return dec


def detect_encoding(raw: bytes, origin: str = "<bytes>", encoding: str | None = None,
                    delimiter: str = ",") -> tuple[str, str]:
    """Decode CSV bytes: strict UTF-8 (BOM or not) first, then GBK, then GB18030.

    Returns ``(text, encoding)`` with encoding ``utf-8``, ``utf-8-sig``, ``gbk`` or ``gb18030``.
    Raises :class:`FileFormatError` (with row and column of the first bad byte) for UTF-16/UTF-32,
    binary data, corrupt bytes or any other encoding.
    """
    dec = _decode(raw, origin, encoding, delimiter)
    return dec.text, dec.encoding


def _decode_auto(raw: bytes, body: bytes, off: int, bom: bool, origin: str, delimiter: str,
                 utf8_only: bool = False) -> _Decoded:
    utf8_name = "utf-8-sig" if bom else "utf-8"
    eol = body.find(b"\n")
    if body.isascii() or (eol >= 0 and _ascii_from(body, eol) and _valid_utf8(body[:eol])):
        return _Decoded(utf8_name, body)  # validated; the text is built only if needed
    try:
        return _Decoded(utf8_name, body, body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        prefix = body[: exc.start].decode("utf-8")
        # GBK text fails at its first Chinese character; text that decoded as UTF-8 Chinese for a
        # while (or has a UTF-8 BOM) is UTF-8 with corrupt bytes, not another encoding
        if utf8_only or bom or _count_at_least(_CJK, prefix, 2):
            row, col = _locate(raw, exc.start + off, _best_effort_header(raw, delimiter), delimiter)
            if exc.reason == "unexpected end of data" and exc.end >= len(body):
                raise FileFormatError(origin, row, col, "the file is truncated: it ends in the middle of "
                                      "a UTF-8 character") from None
            bad = body[exc.start: exc.start + 4].hex(" ")
            raise FileFormatError(origin, row, col, f"corrupt bytes ({bad}) in UTF-8 text") from None
    err = None
    for cand in ("gbk", "gb18030"):
        try:
            text = body.decode(cand)
            return _Decoded(cand, text.encode("utf-8"), text)
        except UnicodeDecodeError as exc2:
            err = exc2
    row, col = _locate(raw, err.start + off, _best_effort_header(raw, delimiter), delimiter)
    bad = body[err.start: err.start + 4].hex(" ")
    raise FileFormatError(origin, row, col, f"bytes {bad} are neither UTF-8 nor GBK/GB18030 text "
                          "(another encoding such as UTF-16 or Big5, or a corrupt file)")


def _ascii_from(b: bytes, start: int) -> bool:
    """``b[start:].isascii()`` without copying the tail."""
    tail = np.frombuffer(b, dtype=np.uint8, offset=start)
    return not len(tail) or int(tail.max()) < 128


def _valid_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _count_at_least(pattern: re.Pattern, text: str, n: int) -> bool:
    for i, _ in enumerate(pattern.finditer(text), start=1):
        if i >= n:
            return True
    return False


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


# ---------------------------------------------------------------------------------- CSV parsing
@dataclass
class _Parsed:
    header: list[str]
    rows: np.ndarray                      # spreadsheet row of each record
    records: list[list[str]]
    rejected: list[dict] = field(default_factory=list)


def _parse_csv_text(text: str, origin: str, delimiter: str, ends_with_newline: bool) -> _Parsed:
    """Python ``csv`` parse with exact record numbering; wrong field counts are row problems,
    a short last line without a final newline means the file was cut off (raises)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FileFormatError(origin, None, None, "the file is empty") from None
    header = [_clean_header(h) for h in header]
    while header and header[-1] == "":
        header.pop()
    if not header:
        raise FileFormatError(origin, 1, None, "the first line (header) is empty")
    width = len(header)
    rows, records, rejected = [], [], []
    n = 1
    try:
        all_records = list(reader)
    except csv.Error as exc:
        raise FileFormatError(origin, reader.line_num, None, f"malformed CSV: {exc}") from None
    last = len(all_records) - 1
    for i, rec in enumerate(all_records):
        n += 1
        if not rec or all(not f.strip() for f in rec):
            continue  # blank line: keeps its number, holds no record
        if len(rec) > width and not any(f.strip() for f in rec[width:]):
            rec = rec[:width]
        if len(rec) != width:
            if i == last and not ends_with_newline and len(rec) < width:
                raise FileFormatError(origin, n, header[len(rec) - 1] if rec else header[0],
                                      f"the file is truncated: its last line ends in the middle of a row "
                                      f"({len(rec)} of {width} fields and no final line break)")
            rejected.append({"row": n, "column": header[min(len(rec), width) - 1] if len(rec) < width else None,
                             "reason": f"row has {len(rec)} fields, the header has {width}",
                             "payload": json.dumps(rec, ensure_ascii=False)})
            continue
        rows.append(n)
        records.append(rec)
    return _Parsed(header, np.asarray(rows, dtype=np.int64), records, rejected)


# ---------------------------------------------------------------------------------- conversions
def _blank(s: pd.Series) -> pd.Series:
    return s.isna() | s.astype(str).str.strip().isin(["", "nan", "NaN", "None", "NaT"])


_FLOAT_TEXT = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$|^(?i:[+-]?(?:nan|inf|infinity))$"


def _to_float(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(values, bad): blanks → NaN (kept, the lake flags missing values); text → bad.
    Thousands separators (``1,234.5``) are accepted."""
    if pd.api.types.is_float_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype):
        v = s.astype("float64")
        return v, pd.Series(False, index=s.index)
    if isinstance(s.dtype, pd.StringDtype) and getattr(s.dtype, "storage", "") == "pyarrow":
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.Array.from_pandas(s)
        t = pc.replace_substring(pc.replace_substring(pc.utf8_trim_whitespace(arr), ",", ""), "，", "")
        blank = pc.fill_null(pc.equal(t, ""), True)
        ok = pc.fill_null(pc.match_substring_regex(t, _FLOAT_TEXT), False)
        vals = pc.cast(pc.if_else(ok, t, pa.scalar(None, pa.string())), pa.float64())
        bad = pc.and_(pc.invert(ok), pc.invert(blank))
        return (pd.Series(vals.to_numpy(zero_copy_only=False), index=s.index, dtype="float64"),
                pd.Series(bad.to_numpy(zero_copy_only=False), index=s.index, dtype=bool))
    blank = _blank(s)
    text = s.astype(str).str.strip().str.replace(",", "", regex=False).str.replace("，", "", regex=False)
    v = pd.to_numeric(text.where(~blank), errors="coerce").astype("float64")
    return v, v.isna() & ~blank


def _contains(text: pd.Series, pattern: str) -> pd.Series:
    """``text.str.contains(pattern)`` — by Arrow's RE2 for Arrow-backed text (pandas may fall back
    to Python's ``re`` per element)."""
    if isinstance(text.dtype, pd.StringDtype) and getattr(text.dtype, "storage", "") == "pyarrow":
        import pyarrow as pa
        import pyarrow.compute as pc

        m = pc.fill_null(pc.match_substring_regex(pa.Array.from_pandas(text), pattern), False)
        return pd.Series(m.to_numpy(zero_copy_only=False), index=text.index, dtype=bool)
    return text.astype(str).str.contains(pattern, regex=True)


def _to_ts(s: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(timestamps, bad, blank).  Offsets (``+08:00``, ``Z``) → tz-aware Asia/Shanghai; when a file
    mixes them with naive times, the naive ones are local Asia/Shanghai time (the convention)."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s, pd.Series(False, index=s.index), s.isna()
    if isinstance(s.dtype, pd.StringDtype):  # text read by Arrow: vectorised
        text = s.str.strip().fillna("")
        blank = text.isin(["", "NaT", "None", "nan"])
    else:  # cells of a workbook or PDF: datetimes, numbers, text
        obj = s.astype(object)
        blank = obj.isna() | obj.astype(str).str.strip().isin(["", "NaT", "None", "nan"])
        text = obj.map(lambda v: v.isoformat(sep=" ") if hasattr(v, "isoformat") else str(v)).str.strip()
    aware = _contains(text, _AWARE) & ~blank
    naive_txt = text.where(~blank & ~aware)
    parsed = pd.to_datetime(naive_txt, format="ISO8601", errors="coerce")
    todo = parsed.isna() & naive_txt.notna()
    parsed = parsed.astype("datetime64[us]")
    for fmt in _TS_FORMATS:  # other spellings: only the cells still unparsed
        if not todo.any():
            break
        sub = pd.to_datetime(naive_txt[todo], format=fmt, errors="coerce").dropna()
        if len(sub):
            parsed.loc[sub.index] = sub.astype("datetime64[us]")
            todo = parsed.isna() & naive_txt.notna()
    if aware.any():
        a = pd.to_datetime(text.where(aware), format="ISO8601", utc=True, errors="coerce")
        a = a.dt.tz_convert(LOCAL_TZ).astype(f"datetime64[us, {LOCAL_TZ}]")
        parsed = parsed.dt.tz_localize(LOCAL_TZ, ambiguous="NaT", nonexistent="NaT").where(~aware, a)
        todo = todo | (aware & a.isna())
    return parsed, todo & ~blank, blank


def _payloads(frame: pd.DataFrame, positions: np.ndarray, written: dict) -> list[str]:
    sub = frame.iloc[positions]
    cols = [c for c in sub.columns if c in written]
    out = []
    for rec in sub[cols].itertuples(index=False, name=None):
        out.append(json.dumps({written[c]: (None if _isna(v) else (v if isinstance(v, (int, float, str)) else str(v)))
                               for c, v in zip(cols, rec)}, ensure_ascii=False, default=str))
    return out


def _row_json(rec: pd.Series) -> str:
    """A source row as written, JSON (header → cell) for the quarantine payload."""
    return json.dumps({str(k): (None if _isna(v) else (v if isinstance(v, (int, float, str)) else str(v)))
                       for k, v in rec.items() if k != "row"}, ensure_ascii=False, default=str)


def _isna(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _text_cat(s: pd.Series) -> pd.Series:
    """Stripped text as a categorical, blanks → NaN; work is per distinct value (meter ids, units
    and quantities repeat millions of times)."""
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    clean = []
    for u in uniq:
        if _isna(u):
            clean.append(None)
            continue
        t = (u.isoformat(sep=" ") if hasattr(u, "isoformat") else str(u)).strip()
        clean.append(None if t in ("", "nan", "NaN", "None", "NaT") else t)
    inv, cats = pd.factorize(pd.Series(clean, dtype=object), use_na_sentinel=True)
    inv = np.asarray(inv)
    code2 = np.where(codes >= 0, inv[np.maximum(codes, 0)] if len(inv) else -1, -1)
    return pd.Series(pd.Categorical.from_codes(code2, categories=pd.Index(cats, dtype=object)), index=s.index)


def _convert_readings(frame: pd.DataFrame, rows: np.ndarray, written: dict, defaults: dict,
                      origin: str) -> tuple[pd.DataFrame, list[dict]]:
    """Typed readings from a frame of cells as written (canonical column names).

    Rows whose every cell is blank are spacing (dropped, their numbers kept).  Row problems are
    returned as rejected dicts, one per row with the first problem's column."""
    frame = frame.reset_index(drop=True)
    rows = np.asarray(rows, dtype=np.int64)
    n = len(frame)
    reasons: dict[int, tuple[str, str]] = {}

    def reject(mask, column, why):
        for p in np.flatnonzero(np.asarray(mask, dtype=bool)):
            reasons.setdefault(int(p), (written.get(column, column), why(p) if callable(why) else why))

    out = pd.DataFrame(index=range(n))
    blank_cols = {}
    mid = _text_cat(frame["meter_id"])
    blank_cols["meter_id"] = mid.isna().to_numpy()
    ts, bad_ts, blank_ts = _to_ts(frame["ts"])
    blank_cols["ts"] = np.asarray(blank_ts, dtype=bool)
    val, bad_val = _to_float(frame["value"])
    blank_cols["value"] = (val.isna() & ~bad_val).to_numpy()
    texts = {}
    for col in ("quantity", "unit", "register"):
        if col in frame.columns:
            texts[col] = _text_cat(frame[col])
            blank_cols[col] = texts[col].isna().to_numpy()
    spacing = np.logical_and.reduce(list(blank_cols.values()))
    reject(blank_cols["meter_id"] & ~spacing, "meter_id", "missing meter id")
    reject(blank_cols["ts"] & ~spacing, "ts", "missing timestamp")
    reject(bad_ts, "ts", lambda p: f"'{frame['ts'].iat[p]}' is not a timestamp")
    reject(bad_val, "value", lambda p: f"'{frame['value'].iat[p]}' is not a number")
    reject(np.isinf(val.to_numpy()), "value", lambda p: f"impossible value {val.iat[p]}")
    out["meter_id"] = mid
    out["ts"] = ts
    for col in ("quantity", "unit"):
        if col in texts:
            reject(blank_cols[col] & ~spacing, col, f"missing {col}")
            out[col] = texts[col]
        else:
            out[col] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[str(defaults[col])])
    out["value"] = val
    # units: pint-parsable after workbench.core.units.normalize_unit (checked once per distinct unit)
    for u in out["unit"].cat.categories:
        try:
            parse_unit(u)
        except UnitError as exc:
            reject(out["unit"].eq(u).to_numpy(), "unit", str(exc))
    if "register" in texts:
        reg = texts["register"]
        mapping = {c: _REGISTER_MAP.get(_key(c)) for c in reg.cat.categories}
        unknown = [c for c, m in mapping.items() if m is None]
        if unknown:
            reject(reg.isin(unknown).to_numpy(), "register",
                   lambda p: f"unknown register '{reg.iat[p]}' (interval/区间 or cumulative/累计)")
        out["register"] = reg.cat.rename_categories(lambda c: mapping.get(c) or c) \
            if len(set(mapping.values())) == len(mapping) else reg.map(mapping).astype("category")
    out["row"] = rows
    rejected = []
    keep = ~spacing
    if reasons:
        pos = np.array(sorted(reasons), dtype=np.int64)
        payloads = _payloads(frame, pos, written)
        for p, pl in zip(pos, payloads):
            col, why = reasons[int(p)]
            rejected.append({"row": int(rows[p]), "column": col, "reason": why, "payload": pl, "origin": origin})
        keep[pos] = False
    if not keep.all():
        out = out[keep].reset_index(drop=True)
    cols = ["meter_id", "ts", "quantity", "value", "unit"] + (["register"] if "register" in out else []) + ["row"]
    out = out[cols]
    for c in ("meter_id", "quantity", "unit", "register"):
        if c in out and out[c].dtype == "category":
            out[c] = out[c].cat.remove_unused_categories()
    return out, rejected


def _missing_readings_columns(idx: dict, defaults: dict, header_units: dict, origin: str, written_headers):
    defaults = dict(defaults or {})
    for k, v in header_units.items():
        defaults.setdefault(k, v)
    missing = [c for c in READINGS_REQUIRED if c not in idx and c not in defaults]
    if missing:
        hint = ("; `workbench import` guesses them from the file and the meter register (or a mapping's "
                "defaults: quantity: active_energy, unit: kWh)") if set(missing) <= {"quantity", "unit"} else ""
        raise FileFormatError(origin, 1, None, f"missing readings column(s) {', '.join(missing)}; headers are "
                              f"{', '.join(map(str, written_headers))}{hint}")
    return defaults


def _rejected_frame(rejected: list[dict], origin: str) -> pd.DataFrame:
    df = pd.DataFrame(rejected, columns=REJECTED_COLUMNS)
    if len(df):
        df["origin"] = df["origin"].fillna(origin)
        df = df.sort_values("row", kind="stable").reset_index(drop=True)
    df["row"] = df["row"].astype("int64")
    return df


# ---------------------------------------------------------------------------------- readings CSV
_TEXT_COLUMNS = ("meter_id", "quantity", "unit", "register")


def _arrow_read(body, header: list[str], idx: dict, delimiter: str, as_text=frozenset()):
    """Arrow parse of the body (after the header line) with explicit types: ts timestamp, value
    float64, except the columns in ``as_text`` (read as text after a cell failed to convert).
    Text columns are dictionary-encoded (→ categoricals).  Empty lines stay rows (all blank), so
    record k is spreadsheet row k + 2."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = [f"c{i}" for i in range(len(header))]
    dict_t = pa.dictionary(pa.int32(), pa.string())
    types = {"ts": pa.timestamp("us"), "value": pa.float64()}
    col_types = {names[i]: (pa.string() if c in as_text else types.get(c, dict_t)) for c, i in idx.items()}
    table = pcsv.read_csv(
        pa.py_buffer(body),
        read_options=pcsv.ReadOptions(column_names=names, block_size=16 << 20, use_threads=True),
        parse_options=pcsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False),
        convert_options=pcsv.ConvertOptions(column_types=col_types, include_columns=list(col_types),
                                            null_values=[""], strings_can_be_null=False,
                                            quoted_strings_can_be_null=False,
                                            timestamp_parsers=[pcsv.ISO8601, "%Y/%m/%d %H:%M:%S",
                                                               "%Y/%m/%d %H:%M"]),
    )
    rename = {names[i]: c for c, i in idx.items()}
    return table.rename_columns([rename[n] for n in table.column_names])


def _failed_column(exc: Exception, idx: dict) -> str | None:
    """The canonical column of Arrow's 'In CSV column #k: CSV conversion error …', if that."""
    m = re.search(r"CSV column #(\d+): CSV conversion error", str(exc))
    if not m:
        return None
    k = int(m.group(1))
    return next((c for c, i in idx.items() if i == k), None)


def _fast_checks(frame: pd.DataFrame, defaults: dict) -> tuple[np.ndarray, np.ndarray]:
    """(spacing rows, problem rows) of a typed frame — vectorised on categorical codes."""
    n = len(frame)
    blank = {}
    for c in _TEXT_COLUMNS:
        if c in frame:
            cats = frame[c].cat.categories
            empty = [k for k in cats if not str(k).strip()]
            blank[c] = frame[c].isna().to_numpy() | (frame[c].isin(empty).to_numpy() if empty else False)
    blank["ts"] = frame["ts"].isna().to_numpy()
    blank["value"] = frame["value"].isna().to_numpy()
    spacing = np.logical_and.reduce(list(blank.values()))
    bad = np.zeros(n, dtype=bool)
    for c in ("meter_id", "ts", "quantity", "unit"):
        if c in blank:
            bad |= blank[c]
    bad |= np.isinf(frame["value"].to_numpy())
    if "unit" in frame:
        for u in frame["unit"].cat.categories:
            try:
                parse_unit(str(u).strip())
            except UnitError:
                bad |= frame["unit"].eq(u).to_numpy()
    if "register" in frame:
        unknown = [c for c in frame["register"].cat.categories if _REGISTER_MAP.get(_key(c)) is None]
        if unknown:
            bad |= frame["register"].isin(unknown).to_numpy()
    bad &= ~spacing
    # values as read have stray spaces only if the export pads them: strip per category
    return spacing, bad


def _finish_fast(frame: pd.DataFrame, rows: np.ndarray, written: dict, defaults: dict, origin: str):
    spacing, bad = _fast_checks(frame, defaults)
    rejected = []
    if bad.any():
        _, rejected = _convert_readings(frame[bad], rows[bad], written, defaults, origin)
    keep = ~(spacing | bad)
    good = frame[keep].reset_index(drop=True) if not keep.all() else frame
    n = len(good)
    def const(c):
        return good[c] if c in good else pd.Categorical.from_codes(np.zeros(n, dtype=np.int8),
                                                                   categories=[str(defaults[c])])
    out = {"meter_id": good["meter_id"], "ts": good["ts"], "quantity": const("quantity"),
           "value": good["value"], "unit": const("unit")}
    if "register" in good:
        out["register"] = good["register"].cat.rename_categories(
            lambda c: _REGISTER_MAP.get(_key(c)) or c) if _register_renamable(good["register"]) \
            else good["register"].map(lambda c: _REGISTER_MAP.get(_key(c))).astype("category")
    out["row"] = rows[keep] if not keep.all() else rows
    data = pd.DataFrame(out, copy=False)
    for c in _TEXT_COLUMNS:
        if c in data and data[c].dtype == "category":
            cats = data[c].cat.categories
            if any(str(k) != str(k).strip() for k in cats):
                data[c] = data[c].map(lambda k: str(k).strip()).astype("category")
            if not keep.all():
                data[c] = data[c].cat.remove_unused_categories()
    return data, rejected


def _check_text_cells(dec: _Decoded, frame: pd.DataFrame) -> None:
    """The Arrow path skips the byte scan: typed cells cannot hold control characters (they would
    not convert), so only the distinct values of the text columns are looked at."""
    for c in _TEXT_COLUMNS:
        if c in frame:
            for k in frame[c].cat.categories:
                if _ODD_TEXT.search(str(k)):
                    dec.check()  # raises at the first bad byte


def _register_renamable(s: pd.Series) -> bool:
    mapped = [_REGISTER_MAP.get(_key(c)) or c for c in s.cat.categories]
    return len(set(mapped)) == len(mapped)


def _readings_from_csv(dec: _Decoded, origin: str, delimiter: str, columns, defaults):
    import pyarrow as pa

    utf8 = dec.utf8
    nl = utf8.find(b"\n")
    first_line = (utf8 if nl < 0 else utf8[:nl]).rstrip(b"\r").decode("utf-8")
    header = [_clean_header(h) for h in next(csv.reader([first_line], delimiter=delimiter))]
    while header and header[-1] == "":
        header.pop()
    idx, written, header_units = _map_readings_headers(header, columns)
    defaults = _missing_readings_columns(idx, defaults, header_units, origin, header)
    body = memoryview(utf8)[nl + 1:] if nl >= 0 else memoryview(b"")
    ends_nl = utf8.endswith(b"\n")
    if len(body):
        as_text: set[str] = set()
        table = None
        while table is None:
            try:
                table = _arrow_read(body, header, idx, delimiter, frozenset(as_text))
            except pa.ArrowInvalid as exc:
                col = _failed_column(exc, idx)
                if col is None or col in as_text:
                    break  # a row with the wrong number of fields, a quoted line break …
                as_text.add(col)  # read that column as text; the checker finds the bad cells
        if table is not None:
            frame = table.to_pandas(split_blocks=True)
            if not as_text:
                _check_text_cells(dec, frame)
                rows = np.arange(2, len(frame) + 2, dtype=np.int64)
                data, rejected = _finish_fast(frame, rows, written, defaults, origin)
                return data, rejected, "arrow", header
            dec.check()
            rows = np.arange(2, len(frame) + 2, dtype=np.int64)
            data, rejected = _convert_readings(frame, rows, written, defaults, origin)
            return data, rejected, "arrow+check", header
    dec.check()
    parsed = _parse_csv_text(dec.text, origin, delimiter, ends_nl)
    for r in parsed.rejected:
        r["origin"] = origin
    order = sorted(idx, key=idx.get)
    frame = pd.DataFrame([[rec[idx[c]] for c in order] for rec in parsed.records], columns=order, dtype=object)
    data, rej = _convert_readings(frame, parsed.rows, written, defaults, origin)
    return data, parsed.rejected + rej, "python", header


# ---------------------------------------------------------------------------------- activity
def _activity_columns_present(headers) -> set:
    found = set()
    for h in headers:
        canon = _ACTIVITY_MAP.get(_key(h))
        if canon is None:
            for part in re.split(r"[\s/()（）]+", str(h)):
                if _key(part) in _ACTIVITY_MAP:
                    canon = _ACTIVITY_MAP[_key(part)]
                    break
        if canon:
            found.add(canon)
    return found


def _empty_activity() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in ("row", "origin") + ACTIVITY_COLUMNS})


def _normalize_split(df: pd.DataFrame, rows: np.ndarray, origin: str, library,
                     header_map: dict | None = None, column_of: dict | None = None,
                     payload_of: dict | None = None):
    """:func:`normalize_activity` with row problems split off instead of failing the whole file.

    ``rows``: the source row of each record (duplicates allowed, e.g. a melted wide table);
    ``header_map``: canonical column → the source table's header, for messages; ``column_of`` /
    ``payload_of``: per record position, the source column and the source row as JSON.
    Returns ``(good frame, rejected dicts)``; whole-file problems raise :class:`FileFormatError`.
    """
    lib = library or default_library()
    df = df.reset_index(drop=True)
    rows = np.asarray(rows, dtype=np.int64)
    unique = len(np.unique(rows)) == len(rows)
    df.index = rows - 2 if unique else np.arange(len(df))
    first_row = 2 if unique else 0

    def src_row(r):
        return int(r) if unique else int(rows[int(r)])

    problems: dict[int, list] = {}
    work = df
    good = None
    while True:
        if work.empty:
            good = _empty_activity()
            break
        try:
            good = normalize_activity(work, origin=origin, library=lib, first_row=first_row)
            break
        except ActivityDataError as exc:
            whole = [p for p in exc.problems if p.row is None or p.message.startswith("missing required column")]
            if whole:
                p = whole[0]
                raise FileFormatError(origin, p.row, p.column, p.message) from None
            bad = set()
            for p in exc.problems:
                problems.setdefault(p.row, []).append(p)
                bad.add(p.row)
            work = work[~np.isin(work.index.to_numpy() + first_row, list(bad))]
    if not unique and len(good):
        good["row"] = rows[good["row"].to_numpy(dtype=np.int64)]
    rejected = []
    for r in sorted(problems):
        ps = problems[r]
        label = r - first_row
        rec = df.loc[label]
        pos = int(df.index.get_loc(label))  # position of the record in the frame given
        hm = header_map or {}
        col = hm.get(ps[0].column, ps[0].column)
        if column_of and pos in column_of:
            col = column_of[pos]
        reason = "; ".join(f"{hm.get(p.column, p.column)}: {p.message}" if p.column else p.message for p in ps)
        if payload_of and pos in payload_of:
            payload = payload_of[pos]
        else:
            payload = json.dumps({k: (None if _isna(v) else (v if isinstance(v, (int, float, str)) else str(v)))
                                  for k, v in rec.items()}, ensure_ascii=False, default=str)
        rejected.append({"row": src_row(r), "column": col, "reason": reason, "payload": payload, "origin": origin})
    return good, rejected


_CATEGORIES: dict[int, tuple[object, dict]] = {}


def _item_category(lib, name) -> tuple[str | None, str | None]:
    """(item code, category) of a name or code in the factor library, or (None, None)."""
    try:
        code = lib.item_code(str(name).strip())
    except (UnknownItemError, KeyError, ValueError):
        return None, None
    hit = _CATEGORIES.get(id(lib))
    if hit is None or hit[0] is not lib:
        hit = (lib, dict(zip(lib.items["item"], lib.items["category"])))
        _CATEGORIES[id(lib)] = hit
    return code, hit[1].get(code)


_SOURCE_OF_CATEGORY = {"fuel": "combustion", "electricity": "purchased_electricity", "heat": "purchased_heat",
                       "carbonate": "process", "gas": "process"}


def _infer_source(df: pd.DataFrame, lib) -> pd.DataFrame:
    """Add a ``source`` column from each item's category when a table has none (fuel → combustion,
    electricity → purchased_electricity, heat → purchased_heat, carbonate/gas → process).  Exported
    electricity or heat must be written with an explicit source."""
    present = _activity_columns_present(df.columns)
    if "source" in present or "item" not in present:
        return df
    item_col = next(c for c in df.columns if _ACTIVITY_MAP.get(_key(c)) == "item"
                    or any(_ACTIVITY_MAP.get(_key(p)) == "item" for p in re.split(r"[\s/()（）]+", str(c))))
    df = df.copy()
    df["source"] = [(_SOURCE_OF_CATEGORY.get(_item_category(lib, v)[1]) or "") for v in df[item_col]]
    return df


_TOTAL = re.compile(r"合计|总计|小计|综合能源消费|能源消费总量|折标|标准煤|tce", re.IGNORECASE)
_PERIOD_HEADERS = {"月份", "期间", "月", "统计期", "时间", "日期", "period", "month", "年月", "核算期"}


def wide_to_activity(df: pd.DataFrame, *, period_column: str | None = None, library=None,
                     document: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """A monthly table ``月份 | 电力（万千瓦时） | 天然气（万立方米） | …`` → long activity records.

    Each value column named ``<item>(<unit>)`` becomes records (source from the item's category,
    unit from the header).  Returns ``(records, rows, skipped_columns)`` where ``records`` has
    activity columns + ``_column`` and ``rows`` the source row of each record.  Total columns
    (合计, 折标准煤) and columns that are not items are listed in ``skipped_columns``, not read.
    """
    lib = library or default_library()
    cols = [c for c in df.columns if c != "row"]
    pcol = period_column or next((c for c in cols if _key(c) in {_key(x) for x in _PERIOD_HEADERS}), None)
    if pcol is None:
        raise FileFormatError("<table>", 1, None, "a wide table needs a period column (月份/期间/period)")
    fac = next((c for c in cols if _ACTIVITY_MAP.get(_key(c)) in ("facility", "node_id")), None)
    records, rows, skipped = [], [], []
    srcrows = df["row"].to_numpy() if "row" in df else np.arange(2, len(df) + 2)
    for c in cols:
        if c in (pcol, fac):
            continue
        base, unit = _split_unit(str(c))
        code, cat = _item_category(lib, base)
        if _TOTAL.search(str(c)) or (code is None and unit is None):
            skipped.append(str(c))
            continue
        if code is None and unit is not None and not _looks_like_energy(base):
            skipped.append(str(c))
            continue
        for i, v in enumerate(df[c].tolist()):
            if _isna(v) or str(v).strip() in ("", "-", "—", "/"):
                continue
            rec = {"source": _SOURCE_OF_CATEGORY.get(cat, "combustion") if cat else "",
                   "item": base, "quantity": v, "unit": _stat_unit(unit or "", cat),
                   "period": df[pcol].iloc[i], "document": document or "", "_column": str(c)}
            if fac:
                rec["facility"] = df[fac].iloc[i]
            records.append(rec)
            rows.append(int(srcrows[i]))
    out = pd.DataFrame(records, columns=["source", "item", "quantity", "unit", "period", "document", "_column"]
                       + (["facility"] if fac else []))
    return out, np.asarray(rows, dtype=np.int64), skipped


def _looks_like_energy(name: str) -> bool:
    return bool(re.search(r"煤|油|气|电|热|焦|蒸汽|燃料|能源", name))


#: gas volumes in energy statistics: 立方米 read as standard (normal) cubic metres
_GAS_UNITS = {"万立方米": "万Nm3", "万m3": "万Nm3", "万m³": "万Nm3", "立方米": "Nm3", "m3": "Nm3", "m³": "Nm3",
              "亿立方米": "亿Nm3", "千立方米": "(1000 * Nm3)"}
GAS_VOLUME_ASSUMPTION = (
    "Gas volumes written as 立方米/万立方米 in statistical or monthly tables are read as standard (normal) "
    "cubic metres, Nm3/万Nm3, the unit in which GB/T 32151 gives the heat value of natural gas and other "
    "gaseous fuels; statistical gas volumes are stated at standard conditions.  If the supplier's volume "
    "is at 20 °C (the reference conditions of Chinese gas metering, 101.325 kPa, 20 °C) rather than 0 °C, "
    "the 0 °C volume is 273.15/293.15 = 0.932 of it — check the gas bill before verification.")


def _stat_unit(unit: str, category: str | None) -> str:
    u = re.sub(r"\s+", "", str(unit))
    if category == "fuel" and u in _GAS_UNITS:
        return _GAS_UNITS[u]
    return u


def energy_statistics_to_activity(df: pd.DataFrame, *, period: str | None = None, column: str | None = None,
                                  facility: str | None = None, document: str | None = None,
                                  library=None) -> pd.DataFrame:
    """Activity records from an energy-statistics table (能源购进、消费与库存, e.g. form 205-1).

    ``df`` is a flattened table (:func:`read_xlsx_tables`): an energy-name column (能源名称), a unit
    column (计量单位) and the consumption total (``消费量/合计``; ``column`` picks another).  One
    record per energy row with a reported consumption:

    * 电力 → ``purchased_electricity`` (item ``grid``), 热力 → ``purchased_heat`` (``heat``),
      other energies → ``combustion`` with the Chinese name as item (normalised later);
    * unit from 计量单位 (万千瓦时, 吨, 百万千焦 = GJ …); for gaseous fuels 万立方米 is read as
      万Nm3 (see :data:`GAS_VOLUME_ASSUMPTION`);
    * total rows (能源合计, 折标准煤, tce) and ``其中：`` component rows are not activity records and
      are listed in ``result.attrs["skipped"]`` (row, name, reason), as are rows with no consumption.

    Note: 消费量 of 电力/热力 is the *consumption*, which includes self-generated electricity or heat;
    the purchased quantity is ``购进量/实物量`` (pass ``column=`` for it where a site generates its own).
    Returns un-normalised activity columns (source, item, quantity, unit, period, facility,
    document) + ``row``; pass it through :func:`workbench.core.activity.normalize_activity`.
    """
    lib = library or default_library()
    cols = [c for c in df.columns if c != "row"]
    name_col = _find_col(cols, [r"^能源名称$", r"能源名称", r"^(能源)?品种$", r"^名称$", r"^项目$"])
    unit_col = _find_col(cols, [r"^计量单位$", r"计量单位", r"^单位$"])
    if column is not None:
        if column not in cols:
            raise FileFormatError("<table>", 1, column, f"no column '{column}' (columns: {', '.join(cols)})")
        val_col = column
    else:
        val_col = _find_col(cols, [r"^消费量/合计$", r"^消费量.*/合计$", r"消费.*合计", r"^消费量$", r"^消费量/"])
    missing = [n for n, c in (("能源名称", name_col), ("计量单位", unit_col), ("消费量/合计", val_col)) if c is None]
    if missing:
        raise FileFormatError("<table>", 1, None, f"not an energy-statistics table: no {', '.join(missing)} column "
                              f"(columns: {', '.join(map(str, cols))})")
    rows = df["row"].to_numpy() if "row" in df else np.arange(2, len(df) + 2)
    out, skipped = [], []
    gas_volume = False
    for i in range(len(df)):
        nm = _clean_header(df[name_col].iloc[i])
        unit = _clean_header(df[unit_col].iloc[i])
        v = df[val_col].iloc[i]
        r = int(rows[i])
        if not nm and (_isna(v) or str(v).strip() == ""):
            continue
        if nm.startswith("其中"):
            skipped.append((r, nm, "component (其中) of the row above, already in its total"))
            continue
        if _TOTAL.search(nm) or _TOTAL.search(unit):
            skipped.append((r, nm, f"total or standard-coal-equivalent row ({unit}), not an activity record"))
            continue
        if _isna(v) or str(v).strip() in ("", "-", "—", "/"):
            skipped.append((r, nm, f"no consumption reported in '{val_col}'"))
            continue
        code, cat = _item_category(lib, nm)
        source = _SOURCE_OF_CATEGORY.get(cat, "combustion") if cat in ("fuel", "electricity", "heat") else "combustion"
        item = code if cat in ("electricity", "heat") else nm
        doc = f"{document or '能源购进、消费与库存'}: {val_col}, row {r}"
        gas_volume = gas_volume or (cat == "fuel" and re.sub(r"\s+", "", unit) in _GAS_UNITS)
        out.append({"source": source, "item": item, "quantity": v, "unit": _stat_unit(unit, cat),
                    "period": period or "", "facility": facility or "", "document": doc, "row": r})
    res = pd.DataFrame(out, columns=["source", "item", "quantity", "unit", "period", "facility", "document", "row"])
    res.attrs["skipped"] = pd.DataFrame(skipped, columns=["row", "name", "reason"])
    res.attrs["column"] = val_col
    res.attrs["header_map"] = {"item": name_col, "quantity": val_col, "unit": unit_col, "source": name_col}
    res.attrs["assumptions"] = [GAS_VOLUME_ASSUMPTION] if gas_volume else []
    return res


def _short(cols, limit: int = 160) -> str:
    text = ", ".join(map(str, cols))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _find_col(cols, patterns) -> str | None:
    for pat in patterns:
        for c in cols:
            if re.search(pat, str(c)):
                return c
    return None


def _is_energy_statistics(cols) -> bool:
    return (_find_col(cols, [r"能源名称", r"^(能源)?品种$"]) is not None
            and _find_col(cols, [r"计量单位", r"^单位$"]) is not None
            and _find_col(cols, [r"消费"]) is not None)


def _activity_from_table(df: pd.DataFrame, rows: np.ndarray, origin: str, lib, period=None,
                         document=None) -> tuple[pd.DataFrame, list[dict], dict]:
    """One table of cells (any of the supported layouts) → validated activity records + rejected."""
    info: dict = {}
    cols = [c for c in df.columns if c != "row"]
    present = _activity_columns_present(cols)
    if _is_energy_statistics(cols) and not {"source", "quantity"} <= present:
        tab = df.copy()
        tab["row"] = rows
        recs = energy_statistics_to_activity(tab, period=period, document=document or origin, library=lib)
        info["layout"] = "energy_statistics"
        info["skipped"] = recs.attrs["skipped"].assign(origin=origin)
        info["assumptions"] = recs.attrs["assumptions"]
        info["column"] = recs.attrs["column"]
        r = recs["row"].to_numpy()
        hm = recs.attrs["header_map"]
        src = {int(rr): i for i, rr in enumerate(rows)}
        payload_of = {k: _row_json(df.iloc[src[int(rr)]]) for k, rr in enumerate(r)}
        good, rej = _normalize_split(recs.drop(columns="row"), r, origin, lib, header_map=hm,
                                     payload_of=payload_of)
        return good, rej, info
    if {"item", "quantity"} <= present:
        tab = _infer_source(df[cols], lib)
        if period and "period" not in present:
            tab = tab.assign(period=period)
        info["layout"] = "records"
        good, rej = _normalize_split(tab, rows, origin, lib)
        return good, rej, info
    if any(_key(c) in {_key(x) for x in _PERIOD_HEADERS} for c in cols):
        tab = df[cols].copy()
        tab["row"] = rows
        recs, r, skipped_cols = wide_to_activity(tab, library=lib, document=document or origin)
        if len(skipped_cols) == len(cols) - 1 - sum(_ACTIVITY_MAP.get(_key(c)) in ("facility", "node_id")
                                                    for c in cols):
            raise FileFormatError(origin, 1, None, "a period column but no '<energy>(<unit>)' columns: not an "
                                  f"activity table; headers are {_short(cols)}")
        info["layout"] = "wide"
        info["skipped_columns"] = skipped_cols
        if any(u in ("万Nm3", "Nm3", "亿Nm3") for u in recs["unit"]):
            info["assumptions"] = [GAS_VOLUME_ASSUMPTION]
        column_of = dict(enumerate(recs["_column"])) if len(recs) else {}
        src = {int(rr): i for i, rr in enumerate(rows)}
        payload_of = {k: _row_json(df.iloc[src[int(rr)]]) for k, rr in enumerate(r)}
        recs = recs.drop(columns="_column")
        recs["record_id"] = [f"{Path(origin).name}:{rr}:{it}" for rr, it in zip(r, recs["item"])]
        good, rej = _normalize_split(recs, r, origin, lib, column_of=column_of, payload_of=payload_of)
        return good, rej, info
    raise FileFormatError(origin, 1, None, "no activity columns: need 品种/item and 数量/quantity (and "
                          "来源/source, 单位/unit), an energy-statistics table (能源名称/计量单位/消费量) or a "
                          f"monthly table (月份 + '<energy>(<unit>)' columns); headers are {_short(cols)}")


def _load(path, kind) -> tuple[Path, str, bytes]:
    """The file's path, its name for messages and its bytes; ``kind`` checked when given."""
    path = Path(path)
    origin = str(path)
    if kind is not None and kind not in ("readings", "activity"):
        raise ValueError(f"kind must be 'readings' or 'activity', not {kind!r}")
    try:
        return path, origin, path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(origin, None, None, "no such file") from None


# ---------------------------------------------------------------------------------- public: CSV
def read_csv(path, *, kind: str = "readings", columns: dict | None = None, source: str = "file",
             defaults: dict | None = None, delimiter: str | None = None, encoding: str | None = None,
             period: str | None = None, library=None) -> ConnectorResult:
    """Read a CSV export as readings or activity records.

    ``kind``: ``readings`` (columns meter_id, ts, quantity, value, unit [, register]; Chinese
    headers 表号/计量点, 时间/采集时间, 读数/示数/数值, 单位, 指标 accepted; a unit in the value header
    ``读数(kWh)`` counts as the unit column) or ``activity``.  ``columns`` maps file headers to
    canonical names; ``defaults`` fills columns the file lacks, e.g. ``{"quantity":
    "active_energy", "unit": "kWh"}`` for a 3-column meter export.  ``encoding`` forces one;
    otherwise :func:`detect_encoding`.

    Returns a :class:`ConnectorResult` with ``raw`` = the file bytes exactly, ``data`` = good rows
    with a ``row`` column, ``metadata["rejected"]`` = row problems; raises :class:`FileFormatError`
    for whole-file problems.
    """
    path, origin, raw = _load(path, kind)
    first = raw[:4096].split(b"\n", 1)[0]
    delim = delimiter or _sniff_delimiter(first.decode("latin-1"))
    dec = _decode(raw, origin, encoding, delim, full_check=(kind != "readings"))
    meta = {"connector": name, "source": source, "origin": origin, "encoding": dec.encoding, "format": "csv",
            "delimiter": delim}
    if kind == "readings":
        try:
            data, rejected, parser, header = _readings_from_csv(dec, origin, delim, columns, defaults)
        except FileFormatError as exc:
            garbled = all(f"'{c}'" in exc.message for c in ("meter_id", "ts", "value"))
            if exc.row == 1 and garbled and dec.encoding in ("gbk", "gb18030"):
                raise FileFormatError(exc.file, exc.row, exc.column, exc.message + f" — the text was read as "
                                      f"{dec.encoding}; if these headers look garbled the file is in another "
                                      "encoding (Big5, Shift-JIS …): export it as UTF-8") from None
            raise
        meta["parser"] = parser
    else:
        text = dec.text
        parsed = _parse_csv_text(text, origin, delim, text.endswith("\n"))
        header = parsed.header
        explicit = _apply_columns(header, columns, set(ACTIVITY_COLUMNS))
        hdr = [explicit.get(h, h) for h in header]
        if len(set(hdr)) != len(hdr):
            dup = next(h for h in hdr if hdr.count(h) > 1)
            raise FileFormatError(origin, 1, dup, "the header names this column twice")
        frame = pd.DataFrame(parsed.records, columns=hdr, dtype=object) if parsed.records else \
            pd.DataFrame({h: pd.Series(dtype=object) for h in hdr})
        if frame.empty and not parsed.rejected:
            raise FileFormatError(origin, None, None, "no records in the file")
        lib = library or default_library()
        data, rej, info = _activity_from_table(frame, parsed.rows, origin, lib, period=period)
        for r in parsed.rejected:
            r["origin"] = origin
        rejected = parsed.rejected + rej
        meta.update(info)
    meta["rejected"] = _rejected_frame(rejected, origin)
    meta["records"] = len(data)
    return ConnectorResult(data, meta, kind=kind, raw=raw, raw_name=path.name)


# ---------------------------------------------------------------------------------- XLSX
@dataclass
class SheetTable:
    """A sheet's table: flattened header names, cells as written, spreadsheet row numbers."""

    sheet: str
    data: pd.DataFrame                 # columns = flattened headers + ``row``
    header_rows: tuple[int, ...]       # spreadsheet rows of the header block
    title: list[str]                   # text above the header (title, 填报单位, 报告期 …)
    period: str | None                 # period found in the title, e.g. ``2025`` or ``2025-03``
    period_note: str | None = None


_FOOTER = re.compile(r"^(单位负责人|统计负责人|填表人|填报人|报出日期|审核人|负责人|制表人|注\s*[:：]|说明\s*[:：]|备注\s*[:：])")
_ORDINALS = set("甲乙丙丁戊己庚辛壬癸")
_META_ROW = re.compile(r"[:：]|^(填报单位|制定机关|批准文号|有效期至|组织机构代码|统一社会信用代码)")
_NUMLIKE = re.compile(r"^[-+]?[\d,，]*\.?\d+(?:[eE][-+]?\d+)?%?$")


def _dedupe(names: list[str]) -> list[str]:
    """Repeated header names get ``.2``, ``.3`` … so every column stays addressable."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}.{seen[n]}")
    return out


def _is_num(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float, np.integer, np.floating)):
        return True
    return isinstance(v, str) and bool(_NUMLIKE.match(v.strip()))


def _is_numbering_row(vals) -> bool:
    """The column-numbering row of statistical forms: 甲 乙 丙 1 2 3 … (with ordinals, or a number
    in every column, at least three)."""
    ne = [v for v in vals if v is not None and str(v).strip() != ""]
    if len(ne) < 2:
        return False
    nums, ordinals = [], 0
    for v in ne:
        s = str(v).strip()
        if s in _ORDINALS:
            ordinals += 1
            continue
        if _is_num(s) and float(s.replace(",", "")) == int(float(s.replace(",", ""))):
            nums.append(int(float(s)))
        else:
            return False
    if not (nums and nums == list(range(nums[0], nums[0] + len(nums))) and nums[0] in (0, 1)):
        return False
    return ordinals > 0 or (len(nums) >= 3 and len(ne) == len(vals))


def _period_from_title(lines: list[str]) -> tuple[str | None, str | None]:
    text = " ".join(lines)
    m = re.search(r"(\d{4})\s*年\s*(\d{1,2})\s*[-—~～至到]\s*(\d{1,2})\s*月", text)
    if m:
        y, a, b = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if a == 1 and b == 12:
            return f"{y:04d}", None
        return None, f"the title covers months {a}–{b} of {y}: not one period; pass period="
    m = re.search(r"(\d{4})\s*年\s*(\d{1,2})\s*月", text)
    if m and 1 <= int(m.group(2)) <= 12:
        return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}", None
    m = re.search(r"(\d{4})\s*年(?:度)?", text)
    if m:
        return f"{int(m.group(1)):04d}", None
    return None, None


def _sheet_table(ws, header_rows: tuple[int, ...] | None = None) -> SheetTable | None:
    from openpyxl.utils import get_column_letter

    max_row, max_col = ws.max_row, ws.max_column
    if not max_row or not max_col:
        return None
    grid = [list(r) for r in ws.iter_rows(min_row=1, max_row=max_row, max_col=max_col, values_only=True)]
    vmerged, hmerged = set(), set()  # (row, col) 0-based: continues a merge from the row above / spans columns
    for rng in ws.merged_cells.ranges:
        v = grid[rng.min_row - 1][rng.min_col - 1]
        for r in range(rng.min_row, min(rng.max_row, max_row) + 1):
            for c in range(rng.min_col, min(rng.max_col, max_col) + 1):
                grid[r - 1][c - 1] = v
                if r > rng.min_row:
                    vmerged.add((r - 1, c - 1))
                if rng.max_col > rng.min_col and r == rng.max_row:
                    hmerged.add((r - 1, c - 1))

    def continues_header(r):
        """Row r belongs to a merged header block begun above: a vertical merge reaches into it,
        or its cells sit under a merged group header (购进量 → 实物量/金额)."""
        return any((r, j) in vmerged for j in range(max_col)) or any(
            (r - 1, j) in hmerged and (r, j) not in vmerged for j, v in enumerate(grid[r]) if v is not None)
    for row in grid:
        for j, v in enumerate(row):
            if isinstance(v, str) and not v.strip():
                row[j] = None

    def nonempty(r):
        return [v for v in grid[r] if v is not None]

    width = max((max((j for j, v in enumerate(row) if v is not None), default=-1) for row in grid), default=-1) + 1
    if width == 0:
        return None
    if header_rows:
        hdr = tuple(header_rows)
        start = max(hdr)  # 0-based index of the first row after the header
    else:
        hdr_idx = []
        r = 0
        # skip title and metadata rows: one distinct value, or key：value lines, or sparse rows
        while r < max_row:
            ne = nonempty(r)
            if not ne:
                r += 1
                continue
            texts = [str(v) for v in ne]
            distinct = len(set(texts))
            header_like = (distinct >= 2 and len(ne) >= max(2, 0.5 * width)
                           and not any(_is_num(v) for v in ne)
                           and not any(_META_ROW.search(t.strip()) for t in texts))
            if header_like:
                break
            r += 1
        while r < max_row and len(hdr_idx) < 5:
            ne = nonempty(r)
            if not ne or any(_is_num(v) for v in ne) or len(ne) < max(2, 0.5 * width):
                break
            if hdr_idx and not continues_header(r):
                break  # a text-only first data row is data, not a second header row
            if any(_FOOTER.match(str(v).strip()) for v in ne[:1]):
                break
            hdr_idx.append(r)
            r += 1
        if not hdr_idx:
            return None
        hdr = tuple(i + 1 for i in hdr_idx)
        start = max(hdr)
    title = [" ".join(str(v).strip() for v in dict.fromkeys(nonempty(r))) for r in range(min(hdr) - 1)
             if nonempty(r)]
    names = []
    for j in range(width):
        parts = []
        for hr in hdr:
            v = grid[hr - 1][j]
            t = _clean_header(v) if v is not None else ""
            if t and (not parts or parts[-1] != t):
                parts.append(t)
        names.append("/".join(parts) if parts else f"column_{get_column_letter(j + 1)}")
    names = _dedupe(names)
    body, rows = [], []
    for r in range(start, max_row):
        ne = nonempty(r)
        if not ne:
            continue
        first = str(ne[0]).strip().replace(" ", "")
        if _FOOTER.match(first):
            break
        if r == start and _is_numbering_row(grid[r][:width]):
            continue
        body.append(grid[r][:width])
        rows.append(r + 1)
    df = pd.DataFrame(body, columns=names, dtype=object) if body else pd.DataFrame(columns=names, dtype=object)
    df["row"] = np.asarray(rows, dtype=np.int64)
    period, note = _period_from_title(title)
    return SheetTable(ws.title, df, hdr, title, period, note)


def read_xlsx_tables(path, *, sheet=None, header_rows=None, _empty: list | None = None) -> list[SheetTable]:
    """The table of each selected sheet, merged headers forward-filled and flattened.

    ``sheet``: ``None`` or ``"all"`` → every sheet, a name (or list of names) → those.
    ``header_rows``: the spreadsheet rows of the header block (e.g. ``(2, 3)``) when detection
    fails; detection skips title/填报单位 lines, takes the consecutive text rows above the first
    number, skips a 甲/乙/丙/1/2/3 column-numbering row and stops at footer notes
    (单位负责人/填表人/报出日期/注：).  Flattened names join the levels: ``购进量/实物量``.
    """
    import openpyxl

    path = Path(path)
    origin = str(path)
    try:
        wb = openpyxl.load_workbook(path, data_only=True)
    except FileNotFoundError:
        raise FileFormatError(origin, None, None, "no such file") from None
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on corrupt files
        raise FileFormatError(origin, None, None, f"cannot read workbook: {exc}") from None
    names = wb.sheetnames
    if sheet is None or sheet == "all":
        chosen = names
    else:
        chosen = [sheet] if isinstance(sheet, str) else list(sheet)
        for s in chosen:
            if s not in names:
                raise FileFormatError(origin, None, None, f"no sheet '{s}' (sheets: {', '.join(names)})")
    out = []
    for s in chosen:
        t = _sheet_table(wb[s], tuple(header_rows) if header_rows else None)
        if t is not None:
            out.append(t)
        elif _empty is not None:
            _empty.append(s)
    return out


def read_xlsx(path, *, sheet=None, kind: str = "activity", columns: dict | None = None, source: str = "file",
              defaults: dict | None = None, header_rows=None, period: str | None = None,
              library=None) -> ConnectorResult:
    """Read a workbook: one sheet (``sheet="名称"``), every sheet (``"all"``) or, by default, every
    sheet holding a table of ``kind`` (the others are listed in ``metadata["skipped_sheets"]``).

    Activity sheets may be record lists (the template), energy-statistics forms (→
    :func:`energy_statistics_to_activity`, period from the title such as ``2025年``) or monthly wide
    tables; readings sheets need the readings columns.  Records keep their spreadsheet row; the
    origin of a record is ``<file>#<sheet>``.
    """
    path, origin, raw = _load(path, kind)
    if raw[:4] != b"PK\x03\x04":
        raise FileFormatError(origin, None, None, "not an XLSX workbook (an XLSX file is a ZIP archive; "
                              "old .xls files must be saved as .xlsx)")
    empty: list[str] = []
    tables = read_xlsx_tables(path, sheet=sheet, header_rows=header_rows, _empty=empty)
    explicit = sheet is not None and sheet != "all"
    if explicit and empty:
        raise FileFormatError(origin, None, None, f"sheet '{empty[0]}' holds no table (no header row found)")
    lib = library or default_library()
    goods, rejected, info_all = [], [], {}
    skipped_sheets = [{"sheet": s, "reason": "no table (no header row found)"} for s in empty]
    for t in tables:
        sorigin = f"{origin}#{t.sheet}"
        cols = [c for c in t.data.columns if c != "row"]
        frame = t.data[cols].rename(columns=_apply_columns(cols, columns, set(ACTIVITY_COLUMNS) | set(READINGS_COLUMNS)))
        rows = t.data["row"].to_numpy()
        try:
            if kind == "readings":
                idx, written, header_units = _map_readings_headers(list(frame.columns), None)
                dfl = _missing_readings_columns(idx, defaults, header_units, sorigin, list(frame.columns))
                sub = pd.DataFrame({c: frame.iloc[:, i] for c, i in idx.items()})
                good, rej = _convert_readings(sub, rows, written, dfl, sorigin)
                info = {"layout": "readings"}
            else:
                good, rej, info = _activity_from_table(frame, rows, sorigin, lib, period=period or t.period,
                                                       document=f"{path.name}#{t.sheet}")
        except FileFormatError as exc:
            if explicit:
                raise
            skipped_sheets.append({"sheet": t.sheet, "reason": exc.message})
            continue
        if kind == "readings" and len(tables) > 1:
            good["sheet"] = t.sheet
        goods.append(good)
        rejected.extend(rej)
        info_all[t.sheet] = {"header_rows": t.header_rows, "title": t.title, "period": period or t.period,
                             "period_note": t.period_note, "columns": cols, **info}
    if not goods:
        why = "; ".join(f"{s['sheet']}: {s['reason']}" for s in skipped_sheets) or "no table found"
        raise FileFormatError(origin, None, None, f"no {kind} table in the workbook ({why})")
    data = pd.concat(goods, ignore_index=True) if len(goods) > 1 else goods[0]
    meta = {"connector": name, "source": source, "origin": origin, "format": "xlsx",
            "sheets": info_all, "skipped_sheets": skipped_sheets,
            "rejected": _rejected_frame(rejected, origin), "records": len(data)}
    assumptions = sorted({a for i in info_all.values() for a in i.get("assumptions", [])})
    if assumptions:
        meta["assumptions"] = assumptions
    skipped = [i["skipped"] for i in info_all.values() if isinstance(i.get("skipped"), pd.DataFrame)]
    if skipped:
        meta["skipped_rows"] = pd.concat(skipped, ignore_index=True)
    return ConnectorResult(data, meta, kind=kind, raw=raw, raw_name=path.name)


# ---------------------------------------------------------------------------------- PDF
def _pdf_tables(path: Path) -> list[dict]:
    """Logical tables of a PDF: a table continuing on the next page under the same header is joined."""
    import pdfplumber

    origin = str(path)
    try:
        pdf = pdfplumber.open(path)
    except Exception as exc:  # noqa: BLE001 - pdfminer raises many kinds on corrupt files
        raise FileFormatError(origin, None, None, f"cannot read PDF: {exc}") from None
    tables: list[dict] = []
    with pdf:
        for pno, page in enumerate(pdf.pages, start=1):
            for tab in page.extract_tables():
                rows = [[_clean_header(c) if c is not None else "" for c in r] for r in tab if r]
                rows = [r for r in rows if any(c for c in r)]
                if len(rows) < 2:
                    continue
                header, body = rows[0], rows[1:]
                prev = tables[-1] if tables else None
                if prev and prev["header"] == header and prev["pages"][-1] == pno - 1:
                    prev["body"].extend(body)
                    prev["page_of"].extend([pno] * len(body))
                    prev["pages"].append(pno)
                elif prev and prev["pages"][-1] == pno - 1 and len(header) == len(prev["header"]) \
                        and any(_is_num(c) for c in header):
                    # continuation without a repeated header
                    prev["body"].extend(rows)
                    prev["page_of"].extend([pno] * len(rows))
                    prev["pages"].append(pno)
                else:
                    tables.append({"header": header, "body": body, "pages": [pno], "page_of": [pno] * len(body)})
    return tables


def read_pdf_tables(path, *, kind: str = "activity", columns: dict | None = None, source: str = "file",
                    defaults: dict | None = None, period: str | None = None, library=None) -> ConnectorResult:
    """Tables inside a PDF report (text PDFs; scanned images need OCR, not this reader).

    Each table's first row is its header; a table continued on the next page is joined.  Rows are
    numbered within their table (header = row 1); the origin of a record is
    ``<file>#table<k>(p<page>)``.  Tables that are not of ``kind`` are listed in
    ``metadata["skipped_tables"]``.  Layouts as :func:`read_xlsx`.
    """
    path, origin, raw = _load(path, None)
    if raw[:5] != b"%PDF-":
        raise FileFormatError(origin, None, None, "not a PDF document")
    tables = _pdf_tables(path)
    if not tables:
        raise FileFormatError(origin, None, None, "no tables found in the PDF (scanned pages need OCR)")
    lib = library or default_library()
    goods, rejected, skipped, info_all = [], [], [], {}
    for k, t in enumerate(tables, start=1):
        torigin = f"{origin}#table{k}(p{t['pages'][0]})"
        header = _dedupe([h or f"column_{j + 1}" for j, h in enumerate(t["header"])])
        width = len(header)
        body = [(r + [""] * width)[:width] for r in t["body"]]
        frame = pd.DataFrame(body, columns=header, dtype=object)
        frame = frame.rename(columns=_apply_columns(header, columns, set(ACTIVITY_COLUMNS) | set(READINGS_COLUMNS)))
        rows = np.arange(2, len(frame) + 2, dtype=np.int64)
        try:
            if kind == "readings":
                idx, written, header_units = _map_readings_headers(list(frame.columns), None)
                dfl = _missing_readings_columns(idx, defaults, header_units, torigin, list(frame.columns))
                sub = pd.DataFrame({c: frame.iloc[:, i] for c, i in idx.items()})
                good, rej = _convert_readings(sub, rows, written, dfl, torigin)
                info = {"layout": "readings"}
            else:
                good, rej, info = _activity_from_table(frame, rows, torigin, lib, period=period,
                                                       document=f"{path.name} table {k}")
        except FileFormatError as exc:
            skipped.append({"table": k, "pages": t["pages"], "reason": exc.message})
            continue
        for x in rej:  # name the page the rejected row is on
            x["origin"] = f"{origin}#table{k}(p{t['page_of'][x['row'] - 2]})"
        goods.append(good)
        rejected.extend(rej)
        info_all[k] = {"pages": t["pages"], "columns": header, **info}
    if not goods:
        why = "; ".join(f"table {s['table']}: {s['reason']}" for s in skipped)
        raise FileFormatError(origin, None, None, f"no {kind} table in the PDF ({why})")
    data = pd.concat(goods, ignore_index=True) if len(goods) > 1 else goods[0]
    meta = {"connector": name, "source": source, "origin": origin, "format": "pdf", "tables": info_all,
            "skipped_tables": skipped, "rejected": _rejected_frame(rejected, origin), "records": len(data)}
    assumptions = sorted({a for i in info_all.values() for a in i.get("assumptions", [])})
    if assumptions:
        meta["assumptions"] = assumptions
    return ConnectorResult(data, meta, kind=kind, raw=raw, raw_name=path.name)


# ---------------------------------------------------------------------------------- dispatch
def sniff_kind(path) -> str:
    """``readings`` when a CSV header (or a row among the first ten of a sheet) has meter id, time
    and value columns, else ``activity``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        head = path.read_bytes()[:65536]
        line = head.split(b"\n", 1)[0].rstrip(b"\r")
        if line.startswith(codecs.BOM_UTF8):
            line = line[3:]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode("gb18030", "replace")
        delim = _sniff_delimiter(text)
        header = [_clean_header(h) for h in next(csv.reader([text], delimiter=delim), [])]
        idx, _, _ = _map_readings_headers(header, None)
        return "readings" if {"meter_id", "ts", "value"} <= set(idx) else "activity"
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception:  # noqa: BLE001 - the reader will report it
            return "activity"
        try:
            for ws in wb.worksheets:
                for row in ws.iter_rows(max_row=10, values_only=True):
                    header = [_clean_header(v) for v in row if v is not None]
                    idx, _, _ = _map_readings_headers(header, None)
                    if {"meter_id", "ts", "value"} <= set(idx):
                        return "readings"
        finally:
            wb.close()
    return "activity"


def read_any(path, *, kind: str | None = None, **options) -> ConnectorResult:
    """Dispatch on the file suffix (.csv/.txt, .xlsx/.xlsm, .pdf, .parquet → :mod:`connectors.parquet`);
    ``kind`` sniffed from the header when None (Parquet: readings)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        from . import parquet

        return parquet.read(path, kind=kind or "readings", **options)
    kind = kind or sniff_kind(path)
    if suffix in (".csv", ".txt"):
        return read_csv(path, kind=kind, **options)
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path, kind=kind, **options)
    if suffix == ".pdf":
        return read_pdf_tables(path, kind=kind, **options)
    raise FileFormatError(str(path), None, None, f"unsupported file type '{suffix}' (CSV, XLSX or PDF)")


#: the connector protocol (``workbench.connectors`` entry point ``files``)
read = read_any
read_file = read_any
