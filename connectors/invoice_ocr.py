"""Invoices and utility bills: images by OCR, PDFs by their text layer (seed §7.2 d; issue 12, points 5–6).

:func:`read` (the connector entry point, also what ``workbench import`` calls) takes a photo/scan
(:func:`read_invoice`: RapidOCR with the ONNX models shipped inside the installed ``rapidocr``
package — nothing is downloaded, ever) or a PDF (:func:`read_pdf_invoice`: the text layer read
with pdfplumber; a scan saved as PDF is rasterised with pypdfium2 and OCR'd) of a Chinese
electricity, natural-gas, steam/heat or water bill or VAT e-invoice and returns a
:class:`ConnectorResult` of kind ``invoice`` with one row:

``date`` (ISO date: 开票日期 › 出账/账单/结算日期 › 抄表日期), ``period`` (billing period ``YYYY-MM``),
``supplier``, ``customer`` (户名 / 购买方), ``account_no`` (户号 / 客户编号 / 用户编号), ``item``
(``grid`` / ``natural_gas`` / ``heat`` / ``water``), ``quantity`` + ``unit``, ``unit_price``,
``amount`` (total payable, tax included), ``tax`` and ``currency`` (``CNY``), each with
``<field>_confidence`` (0–1), plus ``needs_review``.  ``customer``, ``unit_price`` and ``tax`` are
optional: not printed → empty, not reviewed.  :func:`looks_like_invoice` tells a bill PDF from a
PDF of tables.  Water has no emission factor: it is carried as invoice data (see docs/invoices.md).

How a field is read
    Boxes (OCR boxes, or the PDF's words) are de-skewed (median text angle) and grouped into lines.
    A field's *label* is searched with tolerant regexes on NFKC-normalised text; its value is the
    text right after the label on the same line or — for table headers (``单价(元/m³)``) — the cell
    directly below.  Values are parsed tolerantly (thousands separators, ``¥``/``元``, date
    formats and ranges, ``Nm³``/``m³``/``吨``/``千瓦时`` …).

Confidence: calibrated
    Each field gets features (:func:`_features`: weakest and mean OCR score of its characters,
    the page's OCR quality, label specificity and tier, right-of-label / table cell / assumed,
    parse certainty, agreeing and disagreeing readings, the cross-checks quantity × unit price ≈
    amount and net + tax ≈ total, the match with master data, length) that
    :mod:`connectors.invoice_calibration` maps to the probability of being right with a model
    fitted on the project's own rendered bills (``benchmarks/invoice_calibration.py``; shipped as
    ``connectors/data/invoice_calibration.json``).  On a PDF's text layer no misread is possible:
    the confidence is the label's specificity × the parse certainty, confirmed by the
    cross-checks.  Rules on top (:func:`_calibrated`): disagreeing labels, contradicting numbers,
    assumed units/dates, unknown master data and a contradicting kind hint go to review.
    ``known={"supplier": [...], "customer": [...], "account_no": [...]}`` (see
    :func:`known_from_master_data`): exact matches are trusted, a name one misread character from
    one known name is snapped to it (the reason says so), unknown values go to review.  Shown
    confidences are rounded *down* to 4 decimals; the threshold (default
    :data:`DEFAULT_THRESHOLD`, chosen by the benchmark) is applied to the shown value.

Review, never silent entry
    A field below ``threshold`` is *not* put into ``data``: its cell is empty (None/NaN), the row has
    ``needs_review=True`` and ``metadata["review"]`` (also ``result.review``) lists
    ``{field, value, confidence, box, reason}`` — the suggested value and where it is on the image.
    :class:`ReviewQueue` (SQLite) holds such results until a person confirms or corrects every
    listed field (who and when are kept); :meth:`ReviewQueue.release` is the only way to get the
    completed row, and :mod:`workbench.ingestion.review` puts it into the lake with the reviewer's
    name and time and the lake batch of the image (:mod:`connectors.invoice_review` is the desk).

``raw`` is the file's bytes exactly as received; ``metadata`` carries the engine, timings, each
field's features, reason and box, the cross-checks and the text lines for audit.
"""
from __future__ import annotations

import calendar
import datetime as _dt
import io
import json
import math
import os
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError

from . import ConnectorResult

__all__ = [
    "FIELDS",
    "ITEMS",
    "UNITS",
    "InvoiceImageError",
    "InvoiceResult",
    "OCRUnavailable",
    "OcrBox",
    "PDF_SCALE",
    "ReviewPending",
    "ReviewQueue",
    "build_result",
    "default_threshold",
    "engine_info",
    "extract_fields",
    "known_from_master_data",
    "looks_like_invoice",
    "ocr_image",
    "page_image",
    "pdf_text_score",
    "read_pdf_invoice",
    "get_engine",
    "name",
    "parse_date",
    "parse_number",
    "parse_period",
    "parse_unit",
    "read",
    "read_invoice",
]

name = "invoice_ocr"
FIELDS = ("date", "period", "supplier", "customer", "account_no", "item", "quantity", "unit", "unit_price",
          "amount", "tax", "currency")
#: fields a bill may legitimately not print: absent → empty and not reviewed; read but doubtful → reviewed
OPTIONAL = ("customer", "unit_price", "tax")
ITEMS = ("grid", "natural_gas", "heat", "water")
UNITS = ("kWh", "MWh", "万kWh", "Nm3", "万Nm3", "m3", "万m3", "t", "GJ")
MONEY_FIELDS = ("amount", "tax")
NUMBER_FIELDS = ("quantity", "unit_price", "amount", "tax")
_FALLBACK_THRESHOLD = 0.85


def default_threshold() -> float:
    """The trust threshold shipped with the calibration model (fallback 0.85 without it)."""
    from .invoice_calibration import load_model

    model = load_model()
    return model.threshold if model is not None else _FALLBACK_THRESHOLD


DEFAULT_THRESHOLD = default_threshold()


class InvoiceImageError(WorkbenchError, ValueError):
    """The input is not a readable image (corrupt, truncated, not an image format)."""


class OCRUnavailable(WorkbenchError, RuntimeError):
    """The OCR engine or its packaged models are missing (and will not be downloaded)."""


class ReviewPending(WorkbenchError, RuntimeError):
    """A queued result still has fields nobody has reviewed."""


# =========================================================================== OCR engine

_ENGINE = None
_ENGINE_INFO: dict = {}
_ENGINE_LOCK = threading.Lock()
_CALL_LOCK = threading.Lock()
_MODEL_FILES = {"Det": "PP-OCRv6_det_small.onnx", "Rec": "PP-OCRv6_rec_small.onnx",
                "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx"}


def _packaged_models() -> dict[str, Path]:
    """Paths of the det/rec/cls ONNX models inside the installed ``rapidocr`` package."""
    try:
        import rapidocr
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise OCRUnavailable("rapidocr is not installed (pip install rapidocr onnxruntime)") from exc
    models = Path(rapidocr.__file__).resolve().parent / "models"
    paths = {}
    for task, file in _MODEL_FILES.items():
        path = models / file
        if not path.is_file():
            found = sorted(models.glob(f"*{task.lower()}*.onnx"))
            if not found:
                raise OCRUnavailable(f"rapidocr's packaged {task} model is missing ({path}); "
                                     "this connector never downloads models — reinstall rapidocr")
            path = found[0]
        paths[task] = path
    return paths


@contextmanager
def _no_downloads():
    """Make any download attempt by rapidocr an error instead of a network request."""
    try:
        from rapidocr.utils.download_file import DownloadFile
    except ImportError:  # pragma: no cover - layout of other rapidocr versions
        yield
        return
    original = DownloadFile.__dict__.get("run")

    def _refuse(cls, params):
        raise OCRUnavailable(f"rapidocr tried to download {getattr(params, 'file_url', '?')}; "
                             "the invoice connector only uses the packaged models")

    DownloadFile.run = classmethod(_refuse)
    try:
        yield
    finally:
        if original is not None:
            DownloadFile.run = original


def get_engine():
    """The process-wide RapidOCR engine (built once, models loaded eagerly, no downloads)."""
    global _ENGINE
    if _ENGINE is not None:
        return _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is not None:
            return _ENGINE
        from importlib.metadata import PackageNotFoundError, version

        from rapidocr import RapidOCR

        paths = _packaged_models()
        params = {"Global.log_level": "error",
                  # keep weak reads (they go to review) instead of silently dropping them
                  "Global.text_score": 0.3}
        for task, path in paths.items():
            params[f"{task}.model_path"] = str(path)
        threads = os.environ.get("WORKBENCH_OCR_THREADS", "").strip()
        if threads.isdigit() and int(threads) >= 1:  # e.g. 1 per worker process when OCR runs in parallel
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = int(threads)
            params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
        with _no_downloads():
            engine = RapidOCR(params=params)
            for loader in ("_load_det_model", "_load_cls_model", "_load_rec_model"):
                if hasattr(engine, loader):  # recent rapidocr loads models lazily: load them now, guarded
                    getattr(engine, loader)()
        info = {"name": "rapidocr", "models": {k.lower(): v.name for k, v in paths.items()}}
        for pkg in ("rapidocr", "onnxruntime"):
            try:
                info[pkg if pkg != "rapidocr" else "version"] = version(pkg)
            except PackageNotFoundError:  # pragma: no cover
                info[pkg] = None
        _ENGINE_INFO.clear()
        _ENGINE_INFO.update(info)
        _ENGINE = engine
    return _ENGINE


def engine_info() -> dict:
    """Engine name, version, onnxruntime version and model files (builds the engine if needed)."""
    get_engine()
    return dict(_ENGINE_INFO)


# =========================================================================== text normalisation

_CJK = r"\u3400-\u9fff"
_CJK_RE = re.compile(f"[{_CJK}]")


def _norm(text: str) -> str:
    """NFKC (full-width digits/letters/punctuation → ASCII, ³ → 3, ￥ → ¥), no spaces between CJK."""
    return _norm_scored(text, None)[0]


def _norm_scored(text: str, scores: list | None) -> tuple[str, list | None]:
    """:func:`_norm` that carries a per-character score list along (None: no scores)."""
    out, sc = [], []
    for k, ch in enumerate(text or ""):
        n = unicodedata.normalize("NFKC", ch).replace("︰", ":").replace("∶", ":")
        out.extend(n)
        sc.extend([scores[k] if scores else 1.0] * len(n))
    keep = [True] * len(out)
    k = 0
    while k < len(out):  # drop whitespace runs between two CJK characters, and at both ends
        if out[k].isspace():
            j = k
            while j < len(out) and out[j].isspace():
                j += 1
            left = out[k - 1] if k else ""
            right = out[j] if j < len(out) else ""
            if not left or not right or (_CJK_RE.match(left) and _CJK_RE.match(right)):
                for q in range(k, j):
                    keep[q] = False
            k = j
        else:
            k += 1
    text_out = "".join(c for c, kp in zip(out, keep) if kp)
    return text_out, ([v for v, kp in zip(sc, keep) if kp] if scores else None)


def _align_char_scores(text: str, word_results) -> list | None:
    """Per-character recognition scores for ``text`` from rapidocr's single-character results
    (spaces get the mean); None when they cannot be aligned."""
    try:
        flat = [(ch, float(w[1])) for w in word_results for ch in str(w[0]) if not ch.isspace()]
    except (TypeError, IndexError, ValueError):
        return None
    chars = [c for c in text if not c.isspace()]
    if not flat or [c for c, _ in flat] != chars:
        return None
    mean = sum(v for _, v in flat) / len(flat)
    it = iter(v for _, v in flat)
    return [mean if c.isspace() else next(it) for c in text]


def _char_weight(ch: str) -> float:
    if ch.isspace():
        return 0.35
    return 1.0 if unicodedata.east_asian_width(ch) in ("W", "F") else 0.56


# =========================================================================== value parsers

_NUM_RE = re.compile(r"[-−]?(?:\d{1,3}(?:,\s?\d{3})+|\d+)(?:\.\d+)?")
_CONFUSABLE_DIGITS = str.maketrans({"O": "0", "o": "0", "D": "0", "l": "1", "I": "1", "|": "1", "Z": "2",
                                    "S": "5", "B": "8"})


def parse_number(text: str, *, money: bool = False) -> tuple[float | None, float, int]:
    """Parse a number at the start of ``text`` → ``(value, certainty, chars consumed)``.

    Handles thousands separators (``9,850``, ``9，850``, ``9, 850``), full-width digits, a leading
    currency sign for money (``¥``, ``￥``; OCR misreads ``Y``/``V`` at certainty 0.9), letters OCR
    confuses with digits between digits (``1O5`` → 105, certainty 0.8), points used as thousands
    separators (``6.423.50`` → 6423.5, 0.75) and ambiguous quantities (``9.850``: 9.85, 0.7).
    ``(None, 0, 0)`` when no number starts ``text``.  ``consumed`` counts characters of the
    NFKC-normalised text (the same length as the text for everything but rare ligatures).
    """
    return _number(_norm(text), money)


def _number(s: str, money: bool = False) -> tuple[float | None, float, int]:
    n = len(s)
    i = 0
    while i < n and s[i] in " :":
        i += 1
    certainty = 1.0
    if money and i < n and s[i] in "¥$":
        i += 1
    elif money and i + 1 < n and s[i] in "YVy羊半" and s[i + 1].isdigit():
        i += 1
        certainty = 0.9
    while i < n and s[i] == " ":
        i += 1
    buf: list[str] = []
    j = i
    while j < n:
        ch = s[j]
        if ch.isdigit() or (ch in ",." and buf):
            buf.append(ch)
        elif ch in "-−" and not buf:
            buf.append("-")
        elif ((ch == " " and buf and buf[-1] == "," and j + 1 < n and s[j + 1].isdigit())
              or (ch in "OoDlI|ZSB" and buf and (buf[-1].isdigit() or buf[-1] in ",.")
                  and j + 1 < n and (s[j + 1].isdigit() or s[j + 1] in ",."))):
            buf.append(ch)  # "9, 850"; a letter OCR confuses with a digit, between digits
        else:
            break
        j += 1
    chunk = "".join(buf).rstrip(",. ")
    if not chunk or chunk == "-":
        return None, 0.0, 0
    consumed = i + len(chunk)
    tok = chunk.translate(_CONFUSABLE_DIGITS).replace(" ", "")
    if tok != chunk.replace(" ", ""):
        certainty = min(certainty, 0.8)
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", tok) or re.fullmatch(r"-?\d+(?:\.\d+)?", tok):
        if not money and re.fullmatch(r"-?\d{1,3}\.\d{3}", tok):
            certainty = min(certainty, 0.7)   # 9.85, or "9,850" with the comma read as a point?
        if money and "." in tok and len(tok.split(".")[-1]) > 2:
            certainty = min(certainty, 0.7)   # money has at most two decimals
        value = float(tok.replace(",", ""))
    elif re.fullmatch(r"-?\d{1,3}(?:\.\d{3})+\.\d{1,2}", tok):
        parts = tok.split(".")
        value = float("".join(parts[:-1]) + "." + parts[-1])
        certainty = min(certainty, 0.75)
    else:
        m = _NUM_RE.match(tok)
        if not m:
            return None, 0.0, 0
        value = float(m.group(0).replace(",", "").replace(" ", ""))
        certainty = min(certainty, 0.6)       # stray separators: only a prefix made sense
        consumed = i + m.end()
    return value, certainty, consumed


_DATE_RE = re.compile(r"(?P<y>(?:19|20)\d{2})\s*[年\-/.]\s*(?P<m>\d{1,2})\s*[月\-/.]\s*(?P<d>\d{1,2})\s*日?")
_DATE_COMPACT_RE = re.compile(r"(?P<y>(?:19|20)\d{2})(?P<m>[01]\d)(?P<d>[0-3]\d)(?!\d)")
_MONTH_RE = re.compile(r"(?P<y>(?:19|20)\d{2})\s*(?:年\s*(?P<m1>\d{1,2})\s*月?|[\-/.]\s*(?P<m2>\d{1,2})(?!\s*[\-/.]\s*\d)"
                       r"|(?P<m3>[01]\d)(?!\d))")
_RANGE_SEP = r"\s*(?:至|到|~|～|—|–|-|－)\s*"


def _mkdate(m: re.Match) -> _dt.date | None:
    try:
        return _dt.date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
    except ValueError:
        return None


def parse_date(text: str, *, anchored: bool = True) -> tuple[str | None, float, int]:
    """An ISO date at the start of ``text`` (``2025年06月30日``, ``2025-06-30``, ``2025/6/30``,
    ``20250630``) → ``(iso, certainty, consumed)``."""
    return _date(_norm(text), anchored)


def _date(s: str, anchored: bool = True) -> tuple[str | None, float, int]:
    lead = len(s) - len(s.lstrip(" :"))
    for rx, cert in ((_DATE_RE, 1.0), (_DATE_COMPACT_RE, 0.9)):
        m = rx.match(s, lead) if anchored else rx.search(s)
        if m:
            d = _mkdate(m)
            if d is not None:
                return d.isoformat(), cert, m.end()
    return None, 0.0, 0


def parse_period(text: str) -> tuple[str | None, float, int]:
    """A billing period ``YYYY-MM`` at the start of ``text``.

    ``2025年06月`` / ``2025-06`` / ``202506`` → 1.0; a date range within one month
    (``2025-05-01至2025-05-31``) → 1.0; a range spanning months → the month holding most of its days,
    0.7; a single full date → its month, 0.9.
    """
    return _period(_norm(text))


def _period(s: str) -> tuple[str | None, float, int]:
    lead = len(s) - len(s.lstrip(" :"))
    m1 = _DATE_RE.match(s, lead)
    if m1:
        d1 = _mkdate(m1)
        m2 = re.compile(_RANGE_SEP).match(s, m1.end())
        m3 = _DATE_RE.match(s, m2.end()) if m2 else None
        d2 = _mkdate(m3) if m3 else None
        if d1 and d2 and d2 >= d1:
            if (d1.year, d1.month) == (d2.year, d2.month):
                return f"{d1.year:04d}-{d1.month:02d}", 1.0, m3.end()
            days: dict = {}
            d = d1
            while d <= d2:
                days[(d.year, d.month)] = days.get((d.year, d.month), 0) + 1
                d += _dt.timedelta(days=1)
            y, mo = max(days, key=days.get)
            return f"{y:04d}-{mo:02d}", 0.7, m3.end()
        if d1:
            return f"{d1.year:04d}-{d1.month:02d}", 0.9, m1.end()
    m = _MONTH_RE.match(s, lead)
    if m:
        month = int(m.group("m1") or m.group("m2") or m.group("m3"))
        if 1 <= month <= 12:
            return f"{int(m.group('y')):04d}-{month:02d}", 1.0, m.end()
    return None, 0.0, 0


# unit spellings → canonical (certainty); NFKC has already turned ³ into 3
_UNIT_PATTERNS = [
    (r"万\s*(?:k\s*W\s*[·.*]?\s*h|千瓦时|度)", "万kWh", 1.0),
    (r"M\s*W\s*[·.*]?\s*h|兆瓦时", "MWh", 1.0),
    (r"k\s*W\s*[·.*]?\s*h|千瓦时|度(?![\u3400-\u9fff])", "kWh", 1.0),
    (r"万\s*(?:N\s*m\s*3|标准?立方米|标方)", "万Nm3", 1.0),
    (r"万\s*(?:m\s*3|立方米|方)", "万m3", 1.0),
    (r"N\s*m\s*3|标准立方米|标立方米|标方", "Nm3", 1.0),
    (r"N\s*m\s*2|N\s*m(?![a-zA-Z0-9])", "Nm3", 0.9),
    (r"m\s*3|立方米|方(?![\u3400-\u9fff])", "m3", 1.0),
    (r"G\s*J|吉焦|百万千焦", "GJ", 1.0),
    (r"吨|t(?![a-zA-Z])", "t", 1.0),
]
_UNIT_RES = [(re.compile(p, re.IGNORECASE if canon in ("kWh", "万kWh", "GJ") else 0), canon, c)
             for p, canon, c in _UNIT_PATTERNS]


def parse_unit(text: str) -> tuple[str | None, float, int]:
    """A unit at the start of ``text`` (``kWh``, ``千瓦时``, ``Nm³``, ``m³``, ``吨``, ``GJ`` …) →
    ``(canonical, certainty, consumed)``; canonical spellings are :data:`UNITS`."""
    return _unit(_norm(text))


def _unit(s: str) -> tuple[str | None, float, int]:
    lead = len(s) - len(s.lstrip(" :"))
    for rx, canon, cert in _UNIT_RES:
        m = rx.match(s, lead)
        if m:
            return canon, cert, m.end()
    return None, 0.0, 0


def _parse_code(s: str) -> tuple[str | None, float, int]:
    m = re.match(r"[\s:]*([A-Za-z0-9][A-Za-z0-9\-]{3,31})(?![A-Za-z0-9])", s)
    if not m:
        return None, 0.0, 0
    return m.group(1), 1.0, m.end()


_ORG_SUFFIX = re.compile(r"(?:公司|局|厂|中心|集团|所|站|处|院|营业厅)$")
#: a letterhead: an organisation's name, alone or before the document's title (…有限公司 热量结算单;
#: the layout has joined the two, CJK spacing removed)
_LETTERHEAD = re.compile(r"^\s*(\S+?(?:公司|局|厂|中心|集团|所|站|处|院|营业厅))"
                         r"(?:\s*\S{0,12}?(?:单|通知书?|发票|账单|清单|凭证|表))?\s*$")
_EMBEDDED_LABEL = re.compile(f"\\s*[{_CJK}]{{2,8}}\\s*:")


def _parse_name(s: str) -> tuple[str | None, float, int]:
    m = re.match(r"[\s:]*", s)
    start = m.end()
    rest = s[start:]
    cut = _EMBEDDED_LABEL.search(rest)
    value = rest[:cut.start()] if cut else rest
    value = re.sub(r"[\s:;,.。，]+$", "", re.split(r"\s{2,}", value)[0])
    if len(_CJK_RE.findall(value)) < 2:
        return None, 0.0, 0
    cert = 1.0 if _ORG_SUFFIX.search(value) else 0.8
    return value, cert, start + len(value)


# =========================================================================== layout

@dataclass
class OcrBox:
    """One OCR text box: text (as recognised), score (0–1), quadrilateral (4 × [x, y], image px)
    and, when the engine gives them, per-character scores aligned with ``text``."""

    text: str
    score: float
    quad: list
    char_scores: list | None = None


@dataclass
class _Box:
    idx: int
    text: str
    score: float
    quad: list
    x0: float
    y0: float
    x1: float
    y1: float
    char_x: list      # (x0, x1) per char of ``text`` in de-skewed coordinates
    char_score: list  # recognition score per char of ``text`` (the box score when unknown)

    @property
    def yc(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def h(self) -> float:
        return max(1.0, self.y1 - self.y0)


@dataclass
class _Line:
    boxes: list
    text: str = ""
    owner: list = field(default_factory=list)   # per char: index into boxes, -1 for a separator
    offset: list = field(default_factory=list)  # per char: position within its box's text

    def span_boxes(self, a: int, b: int) -> list:
        seen = []
        for k in range(max(0, a), min(b, len(self.text))):
            o = self.owner[k]
            if o >= 0 and self.boxes[o] not in seen:
                seen.append(self.boxes[o])
        return seen

    def span_x(self, a: int, b: int) -> tuple[float, float]:
        xs = [self.boxes[self.owner[k]].char_x[self.offset[k]] for k in range(max(0, a), min(b, len(self.text)))
              if self.owner[k] >= 0]
        if not xs:
            return (math.nan, math.nan)
        return (min(x[0] for x in xs), max(x[1] for x in xs))

    def span_score(self, a: int, b: int, mode: str = "digits") -> float:
        """Recognition score of the characters in ``[a, b)``.

        ``digits``: the weakest ASCII letter/digit (a number or code is only as good as its worst
        character; currency signs and separators do not count), the weakest character when there
        are none; ``mean``: the mean (names: one uncertain character of 公司 is no misread).
        """
        ks = [k for k in range(max(0, a), min(b, len(self.text))) if self.owner[k] >= 0 and not self.text[k].isspace()]
        vals = [self.boxes[self.owner[k]].char_score[self.offset[k]] for k in ks]
        if not vals:
            return 0.0
        if mode == "mean":
            return float(sum(vals) / len(vals))
        if mode == "min":
            return float(min(vals))
        core = [v for k, v in zip(ks, vals) if self.text[k].isascii() and self.text[k].isalnum()]
        return float(min(core or vals))

    def box_end(self, k: int) -> int:
        """Index just past the end of the box that owns char ``k`` (``k`` itself for a separator)."""
        if k >= len(self.text) or self.owner[k] < 0:
            return k
        o = self.owner[k]
        while k < len(self.text) and self.owner[k] == o:
            k += 1
        return k


class _Layout:
    """De-skewed boxes grouped into lines (top to bottom, left to right)."""

    def __init__(self, ocr_boxes: list[OcrBox], size: tuple[int, int]):
        w, h = size
        quads = [np.asarray(b.quad, dtype=float).reshape(4, 2) for b in ocr_boxes]
        angles = []
        for q in quads:
            dx, dy = q[1] - q[0]
            width = math.hypot(dx, dy)
            if width > 1.5 * math.hypot(*(q[3] - q[0])) and width > 0:
                angles.append(math.atan2(dy, dx))
        self.angle = float(np.median(angles)) if angles else 0.0
        c, s = math.cos(-self.angle), math.sin(-self.angle)
        cx, cy = w / 2, h / 2
        self.boxes: list[_Box] = []
        for i, (b, q) in enumerate(zip(ocr_boxes, quads)):
            x = (q[:, 0] - cx) * c - (q[:, 1] - cy) * s + cx
            y = (q[:, 0] - cx) * s + (q[:, 1] - cy) * c + cy
            scores = b.char_scores if b.char_scores and len(b.char_scores) == len(b.text) else None
            text, cs = _norm_scored(b.text, scores)
            if not text:
                continue
            # a character never scores above its box; without character scores use the box score
            cs = [min(v, 1.0) for v in cs] if cs else [float(b.score)] * len(text)
            x0, x1, y0, y1 = float(x.min()), float(x.max()), float(y.min()), float(y.max())
            wts = [_char_weight(ch) for ch in text]
            total = sum(wts) or 1.0
            pos, char_x = x0, []
            for wt in wts:
                step = (x1 - x0) * wt / total
                char_x.append((pos, pos + step))
                pos += step
            self.boxes.append(_Box(i, text, float(b.score), q.tolist(), x0, y0, x1, y1, char_x, cs))
        self.lines: list[_Line] = []
        for box in sorted(self.boxes, key=lambda b: b.yc):
            line = self.lines[-1] if self.lines else None
            if line is not None:
                lyc = float(np.mean([b.yc for b in line.boxes]))
                lh = min(min(b.h for b in line.boxes), box.h)
                if abs(box.yc - lyc) <= 0.5 * lh:
                    line.boxes.append(box)
                    continue
            self.lines.append(_Line([box]))
        for line in self.lines:
            line.boxes.sort(key=lambda b: b.x0)
            parts, owner, offset = [], [], []
            for j, b in enumerate(line.boxes):
                if j:
                    parts.append(" ")
                    owner.append(-1)
                    offset.append(-1)
                parts.append(b.text)
                owner.extend([j] * len(b.text))
                offset.extend(range(len(b.text)))
            line.text = "".join(parts)
            line.owner, line.offset = owner, offset
        heights = [b.h for b in self.boxes]
        self.line_h = float(np.median(heights)) if heights else 20.0

    def text(self) -> list[str]:
        return [ln.text for ln in self.lines]

    def below(self, line_no: int, x0: float, x1: float, max_lines: int = 2):
        """The whitespace-delimited token directly below the x-range on the next line that has one.

        Returns ``(line, start, end)`` or None.
        """
        if math.isnan(x0):
            return None
        y_ref = max(b.y1 for b in self.lines[line_no].boxes)
        for ln in self.lines[line_no + 1: line_no + 1 + max_lines]:
            if min(b.y0 for b in ln.boxes) - y_ref > 3.0 * self.line_h:
                return None
            best, best_ov = None, 0.0
            for m in re.finditer(r"\S+", ln.text):
                tx0, tx1 = ln.span_x(m.start(), m.end())
                ov = min(x1, tx1) - max(x0, tx0)
                if ov > best_ov and ov > 0.25 * min(x1 - x0, tx1 - tx0):
                    best, best_ov = (ln, m.start(), m.end()), ov
            if best:
                return best
        return None


# =========================================================================== field extraction

@dataclass
class _Cand:
    """A candidate value: ``confidence = ocr × certainty`` (ocr = weakest character of the value)."""

    field: str
    value: Any
    certainty: float
    boxes: list
    label: str
    tier: int = 1
    how: str = "right"
    ocr: float | None = None
    label_cert: float = 1.0      # how specific the label is
    parse_cert: float = 1.0      # how cleanly the value parsed
    ocr_mean: float | None = None
    text: str = ""               # the characters the value was read from
    ocr_char_min: float | None = None  # the weakest character of the value (any character)
    agree: int = 1               # distinct boxes that read the same value
    rival: float = 0.0           # confidence of the best disagreeing value of the same tier
    others: list = field(default_factory=list)  # the other values read for the field

    @property
    def score(self) -> float:
        if self.ocr is not None:
            return self.ocr
        return min((b.score for b in self.boxes), default=0.0)

    @property
    def conf(self) -> float:
        return max(0.0, min(1.0, self.score * self.certainty))


@dataclass
class _Hit:
    value: Any
    certainty: float
    line: _Line
    start: int
    end: int
    how: str
    label_unit: tuple | None = None  # (unit, certainty, ocr score, boxes) read from "(kWh)" after the label
    mode: str = "digits"

    @property
    def boxes(self) -> list:
        return self.line.span_boxes(self.start, self.end)

    @property
    def ocr(self) -> float:
        return self.line.span_score(self.start, self.end, self.mode)

    @property
    def ocr_mean(self) -> float:
        return self.line.span_score(self.start, self.end, "mean")

    @property
    def ocr_char_min(self) -> float:
        return self.line.span_score(self.start, self.end, "min")

    @property
    def text(self) -> str:
        return self.line.text[self.start:self.end]


def _label_re(words: Iterable[str]) -> str:
    """Alternation of label words, longest first, tolerant to spaces between characters."""
    alts = sorted(set(words), key=len, reverse=True)
    return "|".join(r"\s*".join(re.escape(ch) for ch in w) for w in alts)


# label → (certainty, tier, item it implies or None); tier 1 = specific, 2 = generic/table header
_QTY_LABELS = {
    "本期电量": (1.0, 1, "grid"), "结算电量": (1.0, 1, "grid"), "计费电量": (1.0, 1, "grid"),
    "用电量": (1.0, 1, "grid"), "总电量": (1.0, 1, "grid"), "合计电量": (1.0, 1, "grid"),
    "有功电量": (0.95, 1, "grid"), "抄见电量": (0.95, 2, "grid"), "电量": (0.9, 2, "grid"),
    "本期用气量": (1.0, 1, "natural_gas"), "用气量": (1.0, 1, "natural_gas"), "结算气量": (1.0, 1, "natural_gas"),
    "计费气量": (1.0, 1, "natural_gas"), "气量": (0.9, 2, "natural_gas"),
    "本期用热量": (1.0, 1, "heat"), "用热量": (1.0, 1, "heat"), "结算热量": (1.0, 1, "heat"),
    "本期用汽量": (1.0, 1, "heat"), "用汽量": (1.0, 1, "heat"), "蒸汽量": (1.0, 1, "heat"),
    "供汽量": (1.0, 1, "heat"), "结算汽量": (1.0, 1, "heat"), "热量": (0.9, 2, "heat"),
    "本期用水量": (1.0, 1, "water"), "用水量": (1.0, 1, "water"), "实用水量": (1.0, 1, "water"),
    "结算水量": (1.0, 1, "water"), "计费水量": (1.0, 1, "water"), "水量": (0.9, 2, "water"),
    "本期用量": (0.95, 1, None), "用量": (0.9, 2, None), "数量": (0.95, 2, None),
}
_AMOUNT_LABELS = {
    "价税合计": (1.0, 1), "应缴金额": (1.0, 1), "应付金额": (1.0, 1), "应收金额": (1.0, 1),
    "应交金额": (1.0, 1), "本期应缴": (1.0, 1), "本期应付": (1.0, 1), "应缴电费": (1.0, 1),
    "应缴费用": (1.0, 1), "费用合计": (1.0, 1), "燃气费合计": (1.0, 1), "电费合计": (1.0, 1),
    "热费合计": (1.0, 1), "汽费合计": (1.0, 1), "应缴水费": (1.0, 1), "水费合计": (1.0, 1),
    "应缴燃气费": (1.0, 1), "应缴热费": (1.0, 1), "合计金额": (1.0, 1), "金额合计": (1.0, 1),
    "总金额": (0.95, 1), "本期金额": (0.95, 1), "小写": (0.95, 1),
    "合计": (0.75, 2), "金额": (0.8, 2),
}
_DATE_LABELS = {"开票日期": (1.0, 1), "出账日期": (1.0, 2), "账单日期": (1.0, 2), "结算日期": (1.0, 2),
                "抄表日期": (1.0, 3)}
_CUSTOMER_LABELS = {"户名": 1.0, "客户名称": 1.0, "用户名称": 1.0, "购买方名称": 1.0, "购方名称": 1.0,
                    "用电户名": 1.0, "用水户名": 1.0, "单位名称": 0.8}
_PRICE_LABELS = {"单价": (1.0, 1), "平均电价": (1.0, 1), "平均单价": (1.0, 1), "综合单价": (1.0, 1),
                 "结算单价": (1.0, 1), "电价": (0.9, 1), "气价": (0.9, 1), "水价": (0.9, 1), "热价": (0.9, 1),
                 "价格": (0.8, 2)}
_TAX_LABELS = {"其中税额": (1.0, 1), "合计税额": (1.0, 1), "税额": (1.0, 1), "增值税额": (1.0, 1), "税金": (0.9, 2)}
_PERIOD_LABELS = ["账期", "计费周期", "结算月份", "所属期", "费用所属期", "账单月份", "用电月份", "用气月份", "用水月份", "用热月份",
                  "计费月份", "电费年月", "计费期间", "抄表周期", "结算周期", "账单周期", "结算期间", "计费年月"]
_SUPPLIER_LABELS = {"销售方名称": 1.0, "销方名称": 1.0, "供电单位": 1.0, "供气单位": 1.0,
                    "供热单位": 1.0, "供汽单位": 1.0, "供水单位": 1.0, "收款单位": 1.0, "收款方": 0.95, "收款单位名称": 1.0}
_ACCOUNT_LABELS = {"户号": 1.0, "客户编号": 1.0, "用户编号": 1.0, "客户号": 1.0, "用户号": 1.0, "缴费号": 0.95,
                   "客户代码": 0.95, "用户代码": 0.95, "户口号": 0.95}
_ITEM_KEYWORDS = {
    "grid": ["电费", "电量", "供电", "国家电网", "国网", "用电", "kWh", "千瓦时", "电度", "电价"],
    "natural_gas": ["燃气", "天然气", "用气", "供气", "气量", "Nm3", "标方"],
    "heat": ["蒸汽", "热力", "供热", "用热", "热量", "用汽", "供汽", "汽量", "GJ", "吉焦", "热费"],
    "water": ["水费", "用水", "供水", "自来水", "水务", "水量", "污水", "水价"],
}
_HINTS = {"grid": "grid", "electricity": "grid", "power": "grid", "电": "grid", "电力": "grid", "电费": "grid",
          "natural_gas": "natural_gas", "gas": "natural_gas", "燃气": "natural_gas", "天然气": "natural_gas",
          "heat": "heat", "steam": "heat", "蒸汽": "heat", "热力": "heat", "热": "heat",
          "water": "water", "水": "water", "自来水": "water", "水费": "water"}
_DEFAULT_UNIT = {"grid": "kWh", "natural_gas": "m3", "heat": "GJ", "water": "m3"}
_NOT_AFTER_CJK = f"(?<![{_CJK}])"
_PAREN_UNIT = re.compile(r"\s*\(([^()]{1,12})\)")
_PAREN_MONEY = re.compile(r"\s*\((?:元|元/[^()]{1,8}|¥|RMB|含税|不含税|小写)\)")
_SEP = re.compile(r"[\s:)\]]*")  # also the ")" of a label in parentheses: "(小写)¥302,148.00"


def _iter_labels(layout: _Layout, words, *, standalone: bool = False):
    """Yield ``(line_no, line, match, label)`` for every label occurrence (longest label wins);
    ``standalone`` labels must not continue a Chinese word (供电单位 is not 单位)."""
    rx = re.compile((_NOT_AFTER_CJK if standalone else "") + f"(?:{_label_re(words)})")
    for n, line in enumerate(layout.lines):
        for m in rx.finditer(line.text):
            yield n, line, m, re.sub(r"\s+", "", m.group(0))


def _value_at(layout: _Layout, n: int, line: _Line, m: re.Match, parser, *, box_only=False) -> _Hit | None:
    """The value of the label ``m``: right after it on the same line (skipping ``(unit)``, ``:`` and
    the gap to the next box) or — only when the label ends its box — the cell directly below."""
    end = m.end()
    label_unit = None
    pm = _PAREN_UNIT.match(line.text, end)
    if pm:
        inner = pm.group(1).strip()
        u, cert, used = _unit(inner)
        if u and used >= len(inner):
            a = pm.start(1) + (len(pm.group(1)) - len(pm.group(1).lstrip()))
            label_unit = (u, cert, line.span_score(a, a + used), line.span_boxes(a, a + used))
        end = pm.end()
    mm = _PAREN_MONEY.match(line.text, end)
    if mm:
        end = mm.end()
    head_end = end   # the label with its "(unit)": a table header cell
    end = _SEP.match(line.text, end).end()
    if end < len(line.text):
        stop = line.box_end(end) if box_only else len(line.text)
        value, cert, used, *skip = parser(line.text[end:stop])
        if value is not None and used:
            lead = skip[0] if skip else len(line.text[end:stop]) - len(line.text[end:stop].lstrip(" :"))
            return _Hit(value, cert, line, end + lead, end + used, "right", label_unit)
    last = m.end() - 1
    if line.text[end: line.box_end(last)].strip(" :"):
        return None  # other text follows the label in its box: not a key/value or header cell
    x0, x1 = line.span_x(m.start(), head_end if line.box_end(head_end - 1) == line.box_end(m.start()) else m.end())
    hit = layout.below(n, x0, x1)
    if hit is None:
        return None
    ln, a, b = hit
    value, cert, used, *_ = parser(ln.text[a:b])
    if value is None or used < 0.6 * len(ln.text[a:b].strip()):
        return None
    return _Hit(value, cert * 0.98, ln, a, a + used, "below", label_unit)


def _cand(fld: str, hit: _Hit, certainty: float, label: str, tier: int = 1) -> _Cand:
    hit.mode = "mean" if fld in ("supplier", "customer") else "digits"
    return _Cand(fld, hit.value, certainty * hit.certainty, hit.boxes, label, tier, hit.how, hit.ocr,
                 label_cert=certainty, parse_cert=hit.certainty, ocr_mean=hit.ocr_mean, text=hit.text,
                 ocr_char_min=hit.ocr_char_min)


def _combine(cands: list[_Cand]) -> tuple[_Cand | None, float, list[_Cand]]:
    """Pick a value: the most specific tier with candidates decides; agreeing candidates read from
    different boxes combine (noisy-or) when a specific (tier 1) label is among them, disagreement
    within the deciding tier caps the confidence at 0.6 (→ review); less specific tiers only add
    agreement."""
    if not cands:
        return None, 0.0, []
    top = min(c.tier for c in cands)
    groups: dict = {}
    for c in cands:
        key = round(c.value, 6) if isinstance(c.value, float) else c.value
        groups.setdefault(key, []).append(c)

    def group_conf(members):
        seen, miss = set(), 1.0
        for c in sorted(members, key=lambda c: -c.conf):
            ids = tuple(sorted(b.idx for b in c.boxes))
            if ids in seen:
                continue
            seen.add(ids)
            miss *= 1.0 - c.conf
        return 1.0 - miss

    top_groups = {k: g for k, g in groups.items() if any(c.tier == top for c in g)}
    best_key = max(top_groups, key=lambda k: (group_conf([c for c in top_groups[k] if c.tier == top]),
                                              group_conf(top_groups[k])))
    if top == 1:
        conf = group_conf(groups[best_key])
    else:  # only generic labels (合计, 金额 column …): they may agree on the wrong thing — no boost
        conf = max(c.conf for c in groups[best_key])
    rivals = [group_conf([c for c in g if c.tier == top]) for k, g in top_groups.items() if k != best_key]
    if rivals:
        conf = min(conf * (1.0 - 0.6 * max(rivals)), 0.6)
    best = max(groups[best_key], key=lambda c: (c.tier == top, c.conf))
    best.agree = len({tuple(sorted(b.idx for b in c.boxes)) for c in groups[best_key]})
    best.rival = max(rivals, default=0.0)
    best.others = [k for k in groups if k != best_key]
    return best, min(conf, 1.0), groups[best_key]


def _item_evidence(layout: _Layout):
    scores = {k: 0.0 for k in _ITEM_KEYWORDS}
    hits: dict = {k: [] for k in _ITEM_KEYWORDS}
    for item, words in _ITEM_KEYWORDS.items():
        for word in words:
            rx = re.compile(re.escape(word), re.IGNORECASE if word.isascii() else 0)
            best = None
            for line in layout.lines:
                for m in rx.finditer(line.text):
                    sc = line.span_score(m.start(), m.end(), "mean")
                    if best is None or sc > best[0]:
                        best = (sc, line.span_boxes(m.start(), m.end()))
            if best is not None:
                scores[item] += best[0]
                hits[item].append(best)
    return scores, hits


def _money_after_label(s: str):
    """Money after an amount label, skipping ``(大写) 叁拾万…圆整 (小写)``."""
    # the amount in words may itself be misread (叁 → 卷): skip any Chinese text before (小写)
    m = re.match(r"[\s:]*(?:\(?大写\)?)?[\s:]*(?:[\u3400-\u9fff⊗ⓧ]+\s*)?(?:\(?小写\)?)?[\s:]*", s)
    k = m.end() if m else 0
    v, cert, used = _number(s[k:], money=True)
    return (v, cert, k + used, k) if v is not None else (None, 0.0, 0)


def _quantity(s: str):
    return _number(s, money=False)


def _price(s: str):
    """A unit price: a number, maybe after ``¥`` and before ``元/kWh`` (3–4 decimals are normal here)."""
    m = re.match(r"[\s:]*[¥]?\s*", s)
    k = m.end() if m else 0
    v, cert, used = _number(s[k:], money=False)
    if v is None:
        return None, 0.0, 0
    if cert == 0.7 and re.match(r"\d{1,3}\.\d{3}(?![\d,.])", s[k:]):
        cert = 1.0
    return v, cert, k + used, k


def _decimals(text: str) -> int:
    m = re.search(r"\.(\d+)", text or "")
    return len(m.group(1)) if m else 0


_CHECK_FIELDS = {"qpa": ("quantity", "unit_price", "amount"), "att": ("amount", "tax")}


#: a charge line of a bill: 电度电费：¥8,095.05, 功率因数调整电费 115.38, 燃气费 …
_CHARGE_RE = re.compile(r"([\u4e00-\u9fff]{1,10}费)\s*[:：]?\s*[¥￥]?\s*(\d[\d,]*\.\d{2})(?![\d.])")


def _charges(layout) -> list[float]:
    """Amounts printed beside a charge label (…费) that is not a total's label."""
    out = []
    for line in layout.lines:
        for m in _CHARGE_RE.finditer(line.text):
            if m.group(1) not in _AMOUNT_LABELS:
                out.append(float(m.group(2).replace(",", "")))
    return out


def _cross_checks(out: dict, amount_cands: list, charges: list[float] = ()) -> dict:
    """``qpa``: quantity × unit price ≈ amount (or amount − tax), within the rounding of the printed
    price — or ≈ one of the bill's ``charges`` (the energy charge of a total that adds others:
    then the total is not judged, None); ``att``: another amount on the bill (the net 金额/合计)
    + tax ≈ amount.  True / False / None (not all numbers read)."""
    q, p, a, t = (out[f]["value"] for f in ("quantity", "unit_price", "amount", "tax"))
    checks: dict = {"qpa": None, "att": None}
    if q is not None and p is not None and a is not None:
        pc = out["unit_price"].get("cand")
        tol = abs(q) * 0.5 * 10.0 ** -_decimals(pc.text if pc else "") + 0.011
        qp = q * p
        checks["qpa"] = bool(abs(qp - a) <= tol or (t is not None and abs(qp - (a - t)) <= tol)
                             or (t is not None and abs(qp + t - a) <= tol))
        if not checks["qpa"] and any(abs(qp - v) <= tol for v in charges):
            # quantity × price is another amount printed on the bill — the energy charge (电度电费) of
            # a total that adds other charges (力调电费, 基本电费): the two agree, the total is not judged
            checks["qpa"] = None
    if a is not None and t is not None:
        nets = {round(c.value, 2) for c in amount_cands if c.value is not None and abs(c.value - a) > 0.005}
        if nets:
            checks["att"] = any(abs(n + t - a) <= 0.011 for n in nets)
    return checks


def _features(fld: str, entry: dict, checks: dict, page: dict, *, hint_conflict: bool = False) -> dict:
    """What the calibration model sees of one field (see :mod:`connectors.invoice_calibration`)."""
    c = entry.get("cand")
    value = entry["value"]
    f = {"found": value is not None, "ocr_min": 0.0, "ocr_mean": 0.0, "label_cert": 0.0, "parse_cert": 0.0,
         "tier": 3, "how": "none", "agree": 0, "rival": 0.0, "others": 0, "known": entry.get("known"),
         "page_quality": page["quality"], "n_chars": len(str(value)) if value is not None else 0,
         "hint_conflict": hint_conflict, "text_layer": page["text_layer"]}
    if c is not None:
        f.update(ocr_min=float(c.ocr_char_min if c.ocr_char_min is not None else c.score),
                 ocr_mean=float(c.ocr_mean if c.ocr_mean is not None else c.score),
                 label_cert=float(c.label_cert), parse_cert=float(c.parse_cert), tier=int(c.tier),
                 how=_how(c),
                 agree=int(getattr(c, "agree", 1)), rival=float(getattr(c, "rival", 0.0)),
                 others=len(getattr(c, "others", [])))
        if c.how not in ("right", "below"):
            f["label_cert"] = float(c.certainty)
    for k, fields_ in _CHECK_FIELDS.items():
        if fld in fields_:
            f[f"xc_{k}"] = checks.get(k)
    return f


_ASSUMED = ("month of the date", "end of the billing period", "hint", "inferred")


def _how(c: _Cand) -> str:
    """right (beside its label, or a unit in the label), below (a table cell), inferred (assumed:
    a commodity's default unit, a period from the date …, or keywords)."""
    if c.how == "below":
        return "below"
    if c.how in _ASSUMED or c.how.startswith("default") or c.how == "keywords" or c.label == "letterhead":
        return "inferred"
    return "right"


def _calibrated(fld: str, entry: dict, text_layer: bool) -> float:
    """The field's probability of being right: the calibration model (fitted on the project's own
    rendered bills, shipped in ``connectors/data``) on OCR'd images; the label and parse certainty
    on a PDF's text layer (no recognition error possible there) — near 1 when the text is clean,
    confirmed when the cross-checks hold.  Policies on top: disagreeing readings, an account or
    name not in the caller's master data, a kind hint that contradicts the bill go to review."""
    from . import invoice_calibration as cal

    f = entry["features"]
    if text_layer:
        c = entry.get("cand")
        if c is None:
            conf = entry["heuristic"]
        else:  # no misread is possible: only the label (a generic one) and the parse can mislead
            parse = min(1.0, c.parse_cert / 0.98) if c.how == "below" else c.parse_cert   # a ruled cell is exact
            conf = float(parse) * (1.0 if c.label_cert >= 0.95 else float(c.label_cert))
            if _how(c) == "inferred":
                conf = float(c.certainty)
        if f.get("agree", 0) >= 2 and f.get("label_cert", 0) >= 0.95:
            conf = max(conf, 0.99)
        if any(f.get(k) is True for k in ("xc_qpa", "xc_att")):
            conf = max(conf, 0.995)
    else:
        model = cal.load_model()
        conf = model.predict(fld, f) if model is not None and model.has(fld) else entry["heuristic"]
    if any(f.get(k) is False for k in ("xc_qpa", "xc_att")):
        conf = min(conf, 0.8)      # the numbers contradict each other: a person looks
    if (not text_layer and (fld in NUMBER_FIELDS or fld == "account_no") and f["ocr_min"] < 0.6
            and not any(f.get(k) is True for k in ("xc_qpa", "xc_att"))):
        conf = min(conf, 0.8)      # a digit the engine itself doubts, and no other number confirms it
    if fld == "amount" and f["tier"] != 1:
        conf = min(conf, 0.8)      # only a generic 金额/合计: maybe the net of a VAT invoice, not the total
    if f["how"] == "inferred" and fld in ("unit", "date", "period"):
        conf = min(conf, 0.8)      # a unit, date or period assumed, not read: a person confirms it
    if f["rival"] > 0:
        conf = min(conf, 0.6)
    if f["known"] == "unknown":
        conf = min(conf, 0.7)
    if f["known"] == "exact":
        conf = max(conf, 0.995 if not text_layer else 0.999)   # a registered name or account, exactly
    if f["hint_conflict"]:
        conf = 0.5
    return max(0.0, min(1.0, conf))


def _known_lists(known) -> dict:
    """``known`` as ``{"supplier": [...], "customer": [...], "account_no": [...]}`` (lists of text)."""
    if not known:
        return {}
    if not isinstance(known, dict):
        raise ValueError("known: a dict of lists {'supplier': [...], 'customer': [...], 'account_no': [...]}")
    unknown = set(known) - {"supplier", "customer", "account_no"}
    if unknown:
        raise ValueError(f"known: only 'supplier', 'customer' and 'account_no' lists are used, not {sorted(unknown)}")
    return {k: [str(x) for x in (v or []) if x is not None and str(x).strip()] for k, v in known.items()}


def known_from_master_data(master, enterprise_id: str) -> dict:
    """Known suppliers, customer names and accounts of one enterprise from the master data
    (``workbench.registry.MasterData`` or anything with its ``table`` and ``enterprise`` methods):
    ``{"supplier": [...], "customer": [...], "account_no": [...]}`` for ``known=``."""
    acc = master.table("accounts", enterprise_id)
    rec = master.enterprise(enterprise_id)
    names = [rec.get(k) for k in ("name_zh", "name_en", "name", "legal_name") if rec.get(k)]
    return {"supplier": sorted({str(x) for x in acc.get("supplier", []) if isinstance(x, str) and x.strip()}),
            "customer": sorted(set(names)),
            "account_no": sorted({str(x) for x in acc.get("account", []) if x is not None and str(x).strip()})}


def _floor4(x: float) -> float:
    """``x`` rounded down to 4 decimals (tolerating float noise such as 0.85 * 1e4 = 8499.999…)."""
    return math.floor(float(x) * 1e4 + 1e-6) / 1e4


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _check_known(out: dict, fld: str, known: Iterable[str] | None, *, snap: bool) -> None:
    """Compare a read value with the caller's master data (known suppliers / account numbers).

    Exact match → confidence ≥ 0.95.  Supplier names within a small edit distance of exactly one
    known name are snapped to it (confidence 0.9: one misread character of a registered name);
    anything else is capped at 0.7 so a person confirms the new supplier or account.
    """
    if not known:
        return
    entry = out[fld]
    value = entry["value"]
    if value is None:
        return
    names = [_norm(str(k)) for k in known]
    if value in names:
        entry["confidence"] = max(entry["confidence"], 0.95)
        entry["reason"] += "; matches a known value"
        entry["known"] = "exact"
        return
    if snap:
        dists = sorted((_edit_distance(value, k), k) for k in names)
        limit = max(1, len(value) // 8)
        if dists and dists[0][0] <= limit and (len(dists) == 1 or dists[1][0] > dists[0][0]):
            entry["reason"] += f"; read {value!r}, snapped to known {dists[0][1]!r} (edit distance {dists[0][0]})"
            entry["value"] = dists[0][1]
            entry["confidence"] = min(max(entry["confidence"], 0.5), 0.9)
            entry["known"] = "snapped"
            return
    entry["confidence"] = min(entry["confidence"], 0.7)
    entry["reason"] += "; not a known value"
    entry["known"] = "unknown"


def extract_fields(ocr_boxes: list[OcrBox], size: tuple[int, int] = (1000, 1000), *, kind_hint=None,
                   known: dict | None = None, text_layer: bool = False) -> dict:
    """Fields of a bill from OCR boxes → ``{field: {value, confidence, boxes, reason}}`` plus
    ``_layout`` (the de-skewed lines).  A pure function of the boxes: testable without OCR.

    ``known``: optional master data, ``{"supplier": [...], "account_no": [...]}`` (see
    :func:`_check_known`)."""
    layout = _Layout(ocr_boxes, size)
    out: dict = {}

    def put(fld, cand, conf, reason=""):
        if cand is None:
            out[fld] = {"value": None, "confidence": 0.0, "boxes": [], "reason": reason or "not found", "cand": None}
        else:
            out[fld] = {"value": cand.value, "confidence": _floor4(conf), "boxes": cand.boxes,
                        "reason": reason or f"{cand.label} ({cand.how})", "cand": cand}

    # ---- item (commodity): keyword evidence, optionally the caller's hint
    scores, hits = _item_evidence(layout)
    total = sum(scores.values())
    evidence = max(scores, key=scores.get) if total > 0 else None
    hint = None
    if kind_hint is not None:
        hint = _HINTS.get(str(kind_hint).strip().lower()) or _HINTS.get(str(kind_hint).strip())
        if hint is None:
            raise ValueError(f"unknown kind_hint {kind_hint!r} (electricity/grid, gas/natural_gas, steam/heat, water)")
    item_cand, item_conf, item_reason = None, 0.0, "no commodity keywords"
    if evidence:
        n_kw = len(hits[evidence])
        vat_class = {"grid": "供电|电力", "natural_gas": "燃气|天然气", "heat": "热力|蒸汽|供热",
                     "water": "水冰雪|自来水|供水"}[evidence]
        if any(re.search(rf"\*(?:{vat_class})\*", ln.text) for ln in layout.lines):
            n_kw += 2   # the VAT tax-classification of the line item (*热力*蒸汽) names the commodity
        share = scores[evidence] / total
        cert = share * (1.0 if n_kw >= 3 else 0.9 if n_kw == 2 else 0.7)
        boxes = max(hits[evidence], key=lambda h: h[0])[1]
        item_cand = _Cand("item", evidence, cert, boxes, "keywords", how="keywords", ocr=scores[evidence] / n_kw)
        item_conf = item_cand.conf
        item_reason = f"{n_kw} keyword(s), {share:.0%} of the commodity evidence"
    if hint:
        if evidence in (None, hint):
            item_conf = max(item_conf, 0.9 if evidence is None else 0.99)
            item_reason = "kind_hint" + (" agrees with the keywords" if evidence else " (no keywords on the image)")
            if evidence is None:
                item_cand = _Cand("item", hint, 1.0, [], "kind_hint", how="hint", ocr=1.0)
        else:
            item_cand = _Cand("item", hint, 1.0, [], "kind_hint", how="hint", ocr=1.0)
            item_conf = 0.5
            item_reason = f"kind_hint {hint} contradicts the keywords ({evidence})"
    put("item", item_cand, item_conf, item_reason)
    item = item_cand.value if item_cand else None

    # ---- quantity (+ the unit written after it or in its label)
    qcands, ucands = [], []
    for n, line, m, label in _iter_labels(layout, _QTY_LABELS):
        cert, tier, implies = _QTY_LABELS[label]
        if item and implies and implies != item:
            continue
        hit = _value_at(layout, n, line, m, _quantity)
        if hit is None or hit.value < 0:
            continue
        c = _cand("quantity", hit, cert, label, tier)
        qcands.append(c)
        u, ucert, used = _unit(hit.line.text[hit.end:])
        if u:
            a = hit.end + len(hit.line.text[hit.end:]) - len(hit.line.text[hit.end:].lstrip(" :"))
            b = hit.end + used
            ucands.append((c, _Cand("unit", u, ucert, hit.line.span_boxes(a, b), label, tier, "after the value",
                                    hit.line.span_score(a, b))))
        elif hit.label_unit:
            u, ucert, sc, boxes = hit.label_unit
            ucands.append((c, _Cand("unit", u, ucert, boxes, label, tier, "in the label", sc)))
    qbest, qconf, qgroup = _combine(qcands)
    put("quantity", qbest, qconf)

    # ---- unit: with the chosen quantity, a table "单位" column, else the commodity's default
    units = [u for c, u in ucands if c in qgroup]
    for n, line, m, label in _iter_labels(layout, ["单位", "计量单位"], standalone=True):
        hit = _value_at(layout, n, line, m, _unit)
        if hit:
            units.append(_cand("unit", hit, 0.95, label, 1))
    ubest, uconf, _ = _combine(units)
    if ubest is None and item in _DEFAULT_UNIT and qbest is not None:
        ubest = _Cand("unit", _DEFAULT_UNIT[item], 0.6, qbest.boxes, "default", 3, f"default for {item}", 1.0)
        uconf = ubest.conf
    put("unit", ubest, uconf)

    # ---- amount
    acands = []
    for n, line, m, label in _iter_labels(layout, _AMOUNT_LABELS):
        cert, tier = _AMOUNT_LABELS[label]
        if label in ("合计", "金额") and m.start() > 0 and _CJK_RE.match(line.text[m.start() - 1]):
            continue  # the tail of a longer word (电度电费金额 …) that is not an amount label
        hit = _value_at(layout, n, line, m, _money_after_label)
        if hit is not None and hit.value >= 0:
            acands.append(_cand("amount", hit, cert, label, tier))
    abest, aconf, _ = _combine(acands)
    put("amount", abest, aconf)

    # ---- currency
    marks = []
    for line in layout.lines:
        for m in re.finditer(r"¥|元|人民币|RMB|CNY", line.text):
            marks.append(_Cand("currency", "CNY", 1.0, line.span_boxes(m.start(), m.end()), m.group(0), 1,
                               "symbol", line.span_score(m.start(), m.end())))
    if marks:
        best = max(marks, key=lambda c: c.conf)
        put("currency", best, best.conf, f"currency mark {best.label}")
    elif abest is not None and any(_CJK_RE.search(b.text) for b in layout.boxes):
        c = _Cand("currency", "CNY", 0.9, abest.boxes, "Chinese bill", 3, "inferred", abest.score)
        put("currency", c, c.conf, "inferred from a Chinese-language bill")
    else:
        put("currency", None, 0.0)

    # ---- date (the most specific label present decides)
    dcands = []
    for n, line, m, label in _iter_labels(layout, _DATE_LABELS):
        cert, tier = _DATE_LABELS[label]
        hit = _value_at(layout, n, line, m, _date)
        if hit:
            dcands.append(_cand("date", hit, cert, label, tier))
    dbest, dconf, _ = _combine(dcands)

    # ---- period
    pcands = []
    for n, line, m, label in _iter_labels(layout, _PERIOD_LABELS):
        hit = _value_at(layout, n, line, m, _period)
        if hit:
            pcands.append(_cand("period", hit, 1.0, label, 1))
    pbest, pconf, _ = _combine(pcands)
    if pbest is None and dbest is not None:
        pbest = _Cand("period", dbest.value[:7], 0.5, dbest.boxes, dbest.label, 3, "month of the date", dbest.score)
        pconf = pbest.conf
    if dbest is None and pbest is not None:
        y, mo = map(int, pbest.value.split("-"))
        last = _dt.date(y, mo, calendar.monthrange(y, mo)[1]).isoformat()
        dbest = _Cand("date", last, 0.5, pbest.boxes, pbest.label, 3, "end of the billing period", pbest.score)
        dconf = dbest.conf
    put("date", dbest, dconf)
    put("period", pbest, pconf)

    # ---- supplier
    scands = []
    for n, line, m, label in _iter_labels(layout, _SUPPLIER_LABELS, standalone=True):
        hit = _value_at(layout, n, line, m, _parse_name, box_only=True)
        if hit:
            scands.append(_cand("supplier", hit, _SUPPLIER_LABELS[label], label))
    if not scands:  # two-column VAT layout: the 名称 nearer to 销售方 than to 购买方
        anchors = {k: [b for b in layout.boxes if k in b.text] for k in ("销售方", "购买方")}
        for n, line, m, label in (_iter_labels(layout, ["名称"]) if anchors["销售方"] else ()):
            k = m.start()
            own = line.owner[k]
            before = "".join(line.text[j] for j in range(k) if line.owner[j] == own).rstrip()
            if before and _CJK_RE.match(before[-1]) and not before.endswith("销售方"):
                continue  # 客户名称, 项目名称 …
            lb = line.boxes[own]

            def dist(b, lb=lb):
                return math.hypot((b.x0 + b.x1 - lb.x0 - lb.x1) / 2, b.yc - lb.yc)
            if min(map(dist, anchors["销售方"])) >= min(map(dist, anchors["购买方"]), default=math.inf):
                continue
            hit = _value_at(layout, n, line, m, _parse_name, box_only=True)
            if hit:
                scands.append(_cand("supplier", hit, 0.95, "销售方·名称"))
    # the letterhead (an organisation's name at the top that is not the customer's): alone, the
    # supplier's last resort; beside a labelled read of the same name, a second read that agrees
    customer = set()
    for n, line, m, label in _iter_labels(layout, ["户名", "客户名称", "用户名称", "购买方名称"]):
        hit = _value_at(layout, n, line, m, _parse_name, box_only=True)
        if hit:
            customer.add(hit.value)
    tops = [(b, m.group(1)) for b in layout.boxes if b.yc < 0.2 * size[1] and ":" not in b.text
            for m in [_LETTERHEAD.match(b.text)] if m and m.group(1) not in customer]
    if tops:
        b, name = min(tops, key=lambda t: t[0].y0)
        # a different letterhead is no rival: the province's company above a branch's bill
        if not scands or name in {c.value for c in scands}:
            scands.append(_Cand("supplier", name, 0.6, [b], "letterhead", 3, "letterhead",
                                sum(b.char_score) / len(b.char_score)))
    sbest, sconf, _ = _combine(scands)
    put("supplier", sbest, sconf)

    # ---- account number
    kcands = []
    for n, line, m, label in _iter_labels(layout, _ACCOUNT_LABELS):
        if m.start() > 0 and line.text[m.start() - 1] in "账表":
            continue  # 账户号 (bank account), 表号 (meter)
        hit = _value_at(layout, n, line, m, _parse_code)
        if hit:
            kcands.append(_cand("account_no", hit, _ACCOUNT_LABELS[label], label))
    kbest, kconf, _ = _combine(kcands)
    put("account_no", kbest, kconf)

    # ---- customer (the buyer / account holder)
    ccands = []
    for n, line, m, label in _iter_labels(layout, _CUSTOMER_LABELS):
        if m.start() > 0 and line.text[m.start() - 1] in "账开":
            continue  # 账户名 / 开户名 (bank account)
        hit = _value_at(layout, n, line, m, _parse_name, box_only=True)
        if hit:
            ccands.append(_cand("customer", hit, _CUSTOMER_LABELS[label], label))
    anchors = {k: [b for b in layout.boxes if k in b.text] for k in ("销售方", "购买方")}
    if anchors["购买方"]:  # two-column VAT layout: the 名称 nearer to 购买方 than to 销售方
        for n, line, m, label in _iter_labels(layout, ["名称"]):
            k = m.start()
            own = line.owner[k]
            before = "".join(line.text[j] for j in range(k) if line.owner[j] == own).rstrip()
            if before and _CJK_RE.match(before[-1]) and not before.endswith("购买方"):
                continue
            lb = line.boxes[own]

            def dist2(b, lb=lb):
                return math.hypot((b.x0 + b.x1 - lb.x0 - lb.x1) / 2, b.yc - lb.yc)
            if min(map(dist2, anchors["购买方"])) >= min(map(dist2, anchors["销售方"]), default=math.inf):
                continue
            hit = _value_at(layout, n, line, m, _parse_name, box_only=True)
            if hit:
                ccands.append(_cand("customer", hit, 0.95, "购买方·名称"))
    cbest, cconf, _ = _combine(ccands)
    put("customer", cbest, cconf)

    # ---- unit price
    pr_cands = []
    for n, line, m, label in _iter_labels(layout, _PRICE_LABELS):
        cert, tier = _PRICE_LABELS[label]
        if label in ("单价", "价格") and m.start() > 0 and _CJK_RE.match(line.text[m.start() - 1]) \
                and line.text[m.start() - 1] not in "均合算":
            continue
        hit = _value_at(layout, n, line, m, _price)
        if hit is not None and hit.value > 0:
            pr_cands.append(_cand("unit_price", hit, cert, label, tier))
    prbest, prconf, _ = _combine(pr_cands)
    put("unit_price", prbest, prconf)

    # ---- tax
    tcands = []
    for n, line, m, label in _iter_labels(layout, _TAX_LABELS):
        cert, tier = _TAX_LABELS[label]
        hit = _value_at(layout, n, line, m, _money_after_label)
        if hit is not None and hit.value >= 0:
            tcands.append(_cand("tax", hit, cert, label, tier))
    tbest, tconf, _ = _combine(tcands)
    put("tax", tbest, tconf)

    known = _known_lists(known)
    _check_known(out, "supplier", known.get("supplier"), snap=True)
    _check_known(out, "customer", known.get("customer"), snap=True)
    _check_known(out, "account_no", known.get("account_no"), snap=False)
    checks = _cross_checks(out, acands, _charges(layout))
    quality = [float(np.median(b.char_score)) for b in layout.boxes if b.char_score]
    page = {"quality": float(np.median(quality)) if quality else 0.0, "boxes": len(layout.boxes),
            "text_layer": text_layer, "angle": abs(layout.angle)}
    for f in FIELDS:
        entry = out[f]
        entry["heuristic"] = entry["confidence"]
        entry["features"] = _features(f, entry, checks, page, hint_conflict=(f == "item" and item_conf == 0.5
                                                                              and bool(hint)))
        entry["checks"] = {k: v for k, v in checks.items() if f in _CHECK_FIELDS[k] and v is not None}
        if entry["value"] is None:
            entry["confidence"] = 0.0
            continue
        entry["confidence"] = _floor4(_calibrated(f, entry, text_layer))
        entry.pop("cand", None)
    for f in FIELDS:
        out[f].pop("cand", None)
    out["_layout"] = layout
    out["_checks"] = checks
    return out


# =========================================================================== connector

@dataclass
class InvoiceResult(ConnectorResult):
    """A :class:`ConnectorResult` of kind ``invoice`` with review helpers (all state is in metadata)."""

    @property
    def review(self) -> list:
        """Fields below the threshold: ``{field, value, confidence, box, reason}`` (value = suggestion)."""
        return self.metadata.get("review", [])

    @property
    def needs_review(self) -> bool:
        return bool(self.metadata.get("needs_review", False))

    def with_threshold(self, threshold: float) -> InvoiceResult:
        """The same reading screened at another threshold, without running OCR again."""
        threshold = _check_threshold(threshold)
        if self.metadata.get("reviewed"):
            raise ValueError("a reviewed (released) result is not screened again")
        row = self.data.iloc[0]
        suggested = {r["field"]: r["value"] for r in self.review}
        readings = {}
        for f in FIELDS:
            v = row[f]
            v = None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else _jsonable(v)
            info = self.metadata.get("fields", {}).get(f, {})
            readings[f] = {"value": v if v is not None else suggested.get(f), "confidence": float(row[f"{f}_confidence"]),
                           "box": info.get("box"), "reason": info.get("reason", "")}
        data, review = _screen(readings, float(threshold))
        meta = {**self.metadata, "threshold": float(threshold), "needs_review": bool(review), "review": review}
        return InvoiceResult(data, meta, kind=self.kind, raw=self.raw, raw_name=self.raw_name)


def _load(image_path_or_bytes, raw_name):
    if isinstance(image_path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(image_path_or_bytes), raw_name, "<bytes>"
    if hasattr(image_path_or_bytes, "read"):
        data = image_path_or_bytes.read()
        name_ = raw_name or Path(getattr(image_path_or_bytes, "name", "") or "").name or None
        return bytes(data), name_, getattr(image_path_or_bytes, "name", "<stream>")
    path = Path(image_path_or_bytes)
    return path.read_bytes(), raw_name or path.name, str(path)


def _decode(raw: bytes, label: str):
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not raw:
        raise InvoiceImageError(f"{label}: empty input (0 bytes), not an image")
    try:
        img = Image.open(io.BytesIO(raw))
        img.load()
        fmt = img.format
        img = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvoiceImageError(f"{label}: cannot decode image ({len(raw)} bytes): {exc}") from exc
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img, fmt


def _bbox(boxes: list) -> list | None:
    if not boxes:
        return None
    pts = np.concatenate([np.asarray(b.quad, dtype=float).reshape(-1, 2) for b in boxes])
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return [round(float(x0), 1), round(float(y0), 1), round(float(x1), 1), round(float(y1), 1)]


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def _screen(readings: dict, threshold: float) -> tuple[pd.DataFrame, list]:
    """The one-row ``data`` and the ``review`` list: a value goes into ``data`` only when its
    confidence is ≥ ``threshold``; everything else is listed for review and left empty."""
    row: dict = {}
    review = []
    for f in FIELDS:
        r = readings[f]
        trusted = r["value"] is not None and r["confidence"] >= threshold
        row[f] = r["value"] if trusted else None
        row[f"{f}_confidence"] = r["confidence"]
        if not trusted and not (r["value"] is None and f in OPTIONAL):
            review.append({"field": f, "value": r["value"], "confidence": r["confidence"], "box": r["box"],
                           "reason": r["reason"]})
    row["needs_review"] = bool(review)
    data = pd.DataFrame([row])
    for f in NUMBER_FIELDS:
        data[f] = pd.to_numeric(data[f], errors="coerce").astype("float64")
    return data[[*FIELDS, *(f"{f}_confidence" for f in FIELDS), "needs_review"]], review


def ocr_image(img) -> list[OcrBox]:
    """The OCR boxes of a PIL image (RGB), with per-character scores when the engine gives them."""
    engine = get_engine()
    with _CALL_LOCK:
        res = engine(img, return_word_box=True, return_single_char_box=True)
    boxes = []
    if getattr(res, "txts", None) is not None and getattr(res, "boxes", None) is not None:
        words = getattr(res, "word_results", None) or [None] * len(res.txts)
        if len(words) != len(res.txts):
            words = [None] * len(res.txts)
        for t, s, b, w in zip(res.txts, res.scores, res.boxes, words):
            boxes.append(OcrBox(str(t), float(s), np.asarray(b).tolist(),
                                _align_char_scores(str(t), w) if w else None))
    return boxes


def read_invoice(image_path_or_bytes, *, kind_hint=None, threshold: float | None = None,
                 raw_name: str | None = None, source: str = "invoice-scan", known: dict | None = None) -> InvoiceResult:
    """Read one bill/invoice image into a one-row ``invoice`` :class:`ConnectorResult`.

    ``image_path_or_bytes``: a path, the image bytes, or a binary file object (PNG, JPEG, …).
    ``kind_hint``: ``electricity``/``grid``, ``gas``/``natural_gas``, ``steam``/``heat``,
    ``water`` when the caller knows the commodity.  ``known``: optional master data
    ``{"supplier": [names], "customer": [names], "account_no": [numbers]}`` (see
    :func:`known_from_master_data`) — exact matches raise the confidence, a name one misread
    character away is snapped to the registered name (the reason says so), unknown values go to
    review.  Fields with confidence < ``threshold`` (default: the calibrated
    :data:`DEFAULT_THRESHOLD`) are left empty in ``data`` and listed in ``result.review``
    (``needs_review`` True).  Raises :class:`InvoiceImageError` for bytes that are not an image
    and :class:`FileNotFoundError` for a missing path.
    """
    threshold = _check_threshold(threshold)
    t0 = time.perf_counter()
    raw, raw_name, origin = _load(image_path_or_bytes, raw_name)
    img, fmt = _decode(raw, _label(raw_name, origin))
    t1 = time.perf_counter()
    get_engine()
    t2 = time.perf_counter()
    boxes = ocr_image(img)
    t3 = time.perf_counter()
    fields = extract_fields(boxes, img.size, kind_hint=kind_hint, known=known)
    t4 = time.perf_counter()
    return build_result(fields, raw=raw, raw_name=raw_name, origin=origin, source=source, threshold=threshold,
                        kind_hint=kind_hint, n_boxes=len(boxes), engine=engine_info(),
                        timing={"decode_s": round(t1 - t0, 4), "engine_s": round(t2 - t1, 4),
                                "ocr_s": round(t3 - t2, 4), "parse_s": round(t4 - t3, 4),
                                "total_s": round(t4 - t0, 4)},
                        image={"width": img.size[0], "height": img.size[1], "format": fmt})


def _check_threshold(threshold) -> float:
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return float(threshold)


def build_result(fields: dict, *, raw: bytes, raw_name, origin, source, threshold, kind_hint, n_boxes: int,
                 engine: dict, timing: dict, image: dict, extra: dict | None = None) -> InvoiceResult:
    """The :class:`InvoiceResult` of :func:`extract_fields`' output (images and PDFs alike)."""
    layout = fields.pop("_layout")
    checks = fields.pop("_checks", {})
    readings = {f: {"value": _jsonable(fields[f]["value"]), "confidence": _floor4(fields[f]["confidence"]),
                    "box": _bbox(fields[f]["boxes"]), "reason": fields[f]["reason"]} for f in FIELDS}
    data, review = _screen(readings, threshold)
    warnings = []
    if not n_boxes:
        warnings.append("no text recognised on the image")
    elif all(fields[f]["value"] is None for f in ("quantity", "amount", "account_no", "period")):
        warnings.append("no bill fields recognised (quantity, amount, account, period) — is this an invoice or bill?")
    if checks.get("qpa") is False:
        warnings.append("quantity × unit price does not match the amount: the numbers go to review")
    if checks.get("att") is False:
        warnings.append("net amount + tax does not match the total: the numbers go to review")
    meta = {
        "connector": name,
        "source": source,
        "origin": origin,
        "engine": engine,
        "timing": timing,
        "image": image,
        "threshold": float(threshold),
        "kind_hint": kind_hint,
        "needs_review": bool(review),
        "review": review,
        "fields": {f: {"reason": r["reason"], "box": r["box"], "heuristic": fields[f].get("heuristic"),
                       "features": fields[f].get("features"), "checks": fields[f].get("checks", {})}
                   for f, r in readings.items()},
        "checks": checks,
        "ocr_lines": layout.text(),
        "ocr_boxes": n_boxes,
        "deskew_deg": round(math.degrees(layout.angle), 2),
        "warnings": warnings,
        "records": 1,
        **(extra or {}),
    }
    return InvoiceResult(data, meta, kind="invoice", raw=raw, raw_name=raw_name)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")


def read(path, *, known: dict | None = None, threshold: float | None = None, **options) -> InvoiceResult:
    """Connector-protocol entry point for ``workbench import``: a bill or invoice as an image
    (OCR) or a PDF (its text layer read directly, a scanned PDF rasterised and OCR'd) → a
    one-row ``invoice`` result.  ``known``: master data (:func:`known_from_master_data`);
    ``threshold``: the trust threshold (default :data:`DEFAULT_THRESHOLD`).  Bad input raises
    :class:`InvoiceImageError` with one line naming the file."""
    head, label = _peek(path)
    if head.startswith(b"%PDF") or label.lower().endswith(".pdf"):
        return read_pdf_invoice(path, known=known, threshold=threshold, **options)
    return read_invoice(path, known=known, threshold=threshold, **options)


def _label(raw_name, origin) -> str:
    """How an error names the input: the path it was read from, else the name it was given."""
    return origin if origin and not str(origin).startswith("<") else (raw_name or origin)


def _peek(source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[:8]), ""
    if hasattr(source, "read"):
        pos = source.tell() if hasattr(source, "tell") else None
        head = source.read(8) if pos is not None else b""
        if pos is not None:
            source.seek(pos)
        return bytes(head or b""), str(getattr(source, "name", "") or "")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise InvoiceImageError(f"{path}: is a directory, not an image or PDF")
    with open(path, "rb") as fh:
        return fh.read(8), str(path)


def looks_like_invoice(path) -> bool:
    """Whether a PDF (or image) is a bill / invoice rather than a PDF of tables: images are;
    a PDF is when its text layer has bill labels (户号, 价税合计, 应缴金额, 发票 …) — a PDF without
    a text layer is a scan, which only the invoice reader can read.  False for a file that cannot
    be opened as a PDF."""
    head, label = _peek(path)
    if not (head.startswith(b"%PDF") or label.lower().endswith(".pdf")):
        return label.lower().endswith(IMAGE_SUFFIXES)
    try:
        score, has_text = pdf_text_score(path)
    except InvoiceImageError:
        return False
    return score >= 2 or not has_text


# =========================================================================== PDF bills and e-invoices
#
# A PDF e-invoice (数电票) or a utility's PDF bill carries its text: the words and their positions
# are read with pdfplumber and go through the same field reader as OCR boxes (extract_fields with
# text_layer=True): no recognition error is possible, so a field's confidence is its label's
# specificity × the parse certainty — near 1 for a clean value behind a specific label, raised by
# agreeing readings and holding cross-checks; contradicting numbers still go to review.  A PDF
# without a text layer (a scan saved as PDF) is rasterised with pypdfium2 and OCR'd like an image
# (calibrated confidence).  Boxes are in pixels of the page rendered at PDF_SCALE × 72 dpi, so a
# reviewer's crop (page_image) matches them.

PDF_SCALE = 2.0   # page points → pixels (144 dpi): OCR of scans, box coordinates, review crops
_BILL_WORDS = ("发票", "价税合计", "税额", "开票日期", "销售方", "购买方", "户号", "户名", "客户编号", "用户编号",
               "应缴金额", "应付金额", "电费", "燃气费", "水费", "热费", "账期", "计费周期", "抄表", "用电量", "用气量",
               "用水量", "用热量", "用汽量", "缴费", "账单", "结算单", "单价")


def _open(raw: bytes, label: str):
    import pdfplumber

    if not raw:
        raise InvoiceImageError(f"{label}: empty input (0 bytes), not a PDF")
    if not raw.lstrip()[:5].startswith(b"%PDF"):
        raise InvoiceImageError(f"{label}: not a PDF (no %PDF header)")
    try:
        doc = pdfplumber.open(io.BytesIO(raw))
        _ = doc.pages  # parses the page tree
        if not doc.pages:
            doc.close()
            raise InvoiceImageError(f"{label}: the PDF has no pages")
        return doc
    except InvoiceImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - pdfminer raises many kinds on damaged files
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InvoiceImageError(f"{label}: cannot read the PDF ({type(exc).__name__}: {msg})") from exc


def _page_words(page) -> list[OcrBox]:
    try:
        words = page.extract_words(keep_blank_chars=False, x_tolerance=2, y_tolerance=2)
    except Exception:  # noqa: BLE001 - a damaged content stream: treat as no text layer
        return []
    boxes = []
    for w in words:
        text = str(w.get("text", "")).strip()
        if not text:
            continue
        x0, x1, y0, y1 = (float(w[k]) * PDF_SCALE for k in ("x0", "x1", "top", "bottom"))
        boxes.append(OcrBox(text, 1.0, [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], [1.0] * len(text)))
    return boxes


def _score_text(text: str) -> int:
    t = re.sub(r"\s+", "", text or "")
    return sum(1 for w in _BILL_WORDS if w in t)


def pdf_text_score(source) -> tuple[int, bool]:
    """(number of bill words in the text of the first two pages, whether there is a text layer)."""
    raw, raw_name, origin = _load(source, None)
    with _open(raw, _label(raw_name, origin)) as doc:
        text = ""
        for page in doc.pages[:2]:
            try:
                text += (page.extract_text() or "") + "\n"
            except Exception:  # noqa: BLE001
                continue
    return _score_text(text), len(re.sub(r"\s+", "", text)) >= 10


def page_image(raw: bytes, page: int = 0, scale: float = PDF_SCALE):
    """Page ``page`` of a PDF rendered as a PIL image at ``scale`` × 72 dpi (pypdfium2)."""
    try:
        import pypdfium2 as pdfium
    except ImportError as exc:  # pragma: no cover - installed with pdfplumber
        raise InvoiceImageError("pypdfium2 is not installed: a PDF page cannot be rendered") from exc
    pdf = pdfium.PdfDocument(raw)
    try:
        return pdf[page].render(scale=scale).to_pil().convert("RGB")
    finally:
        pdf.close()


def read_pdf_invoice(pdf, *, known: dict | None = None, threshold: float | None = None, kind_hint=None,
                     raw_name: str | None = None, source: str = "invoice-pdf") -> InvoiceResult:
    """Read a bill / e-invoice PDF into a one-row ``invoice`` result (see the module doc).

    The page with the most bill words is read (the first of a bill is usually the one)."""
    threshold = _check_threshold(threshold)
    t0 = time.perf_counter()
    raw, raw_name, origin = _load(pdf, raw_name)
    label = _label(raw_name, origin)
    with _open(raw, label) as doc:
        best = None
        for k, page in enumerate(doc.pages[:4]):
            words = _page_words(page)
            score = _score_text("".join(b.text for b in words))
            if best is None or score > best[0]:
                best = (score, k, words, (float(page.width), float(page.height)))
        n_pages = len(doc.pages)
    score, k, words, (pw, ph) = best
    size = (round(pw * PDF_SCALE), round(ph * PDF_SCALE))
    t1 = time.perf_counter()
    if words and len("".join(b.text for b in words)) >= 10:
        if score < 2:
            raise InvoiceImageError(f"{label}: not a bill or invoice — its text has no bill fields "
                                    f"(户号, 价税合计, 应缴金额 …); a PDF of tables is read by connectors.files")
        fields = extract_fields(words, size, kind_hint=kind_hint, known=known, text_layer=True)
        if all(fields[f]["value"] is None for f in ("quantity", "amount")):
            raise InvoiceImageError(f"{label}: not a bill or invoice — no quantity or amount in its text")
        engine = {"name": "pdf-text-layer", "reader": "pdfplumber"}
        mode, n_boxes = "text", len(words)
        t2 = t1
    else:  # a scan saved as PDF: rasterise and OCR
        img = page_image(raw, k, PDF_SCALE)
        size = img.size
        boxes = ocr_image(img)
        t2 = time.perf_counter()
        fields = extract_fields(boxes, size, kind_hint=kind_hint, known=known)
        engine = engine_info()
        mode, n_boxes = "ocr", len(boxes)
    t3 = time.perf_counter()
    result = build_result(fields, raw=raw, raw_name=raw_name, origin=origin, source=source, threshold=threshold,
                          kind_hint=kind_hint, n_boxes=n_boxes, engine=engine,
                          timing={"open_s": round(t1 - t0, 4), "ocr_s": round(t2 - t1, 4),
                                  "parse_s": round(t3 - t2, 4), "total_s": round(t3 - t0, 4)},
                          image={"width": size[0], "height": size[1], "format": "PDF", "page": k, "pages": n_pages,
                                 "scale": PDF_SCALE},
                          extra={"pdf": {"mode": mode, "page": k, "pages": n_pages, "bill_words": score}})
    return result


# =========================================================================== review queue

def _validate(field_name: str, value):
    """A reviewer's value in the connector's canonical form (raises ValueError when it is not)."""
    if field_name not in FIELDS:
        raise ValueError(f"unknown field {field_name!r} (one of {', '.join(FIELDS)})")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{field_name}: a reviewed value is required")
    if field_name in NUMBER_FIELDS:
        if isinstance(value, str):
            v, _, used = parse_number(value.strip().lstrip("¥￥").strip(), money=field_name in MONEY_FIELDS)
            if v is None or _norm(value)[used:].strip(" 元"):
                raise ValueError(f"{field_name}: {value!r} is not a number")
            value = v
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{field_name}: {value!r} must be a finite, non-negative number")
        return value
    value = str(value).strip()
    if field_name == "date":
        v, _, used = parse_date(value)
        if v is None or _norm(value)[used:].strip():
            raise ValueError(f"date: {value!r} is not a date (YYYY-MM-DD)")
        return v
    if field_name == "period":
        v, _, used = parse_period(value)
        if v is None or _norm(value)[used:].strip():
            raise ValueError(f"period: {value!r} is not a month (YYYY-MM)")
        return v
    if field_name == "unit":
        v, _, used = parse_unit(value)
        if v is None or used < len(_norm(value)):
            raise ValueError(f"unit: {value!r} is not one of {', '.join(UNITS)}")
        return v
    if field_name == "item":
        v = _HINTS.get(value.lower(), value)
        if not re.fullmatch(r"[a-z][a-z0-9_]*", v):
            raise ValueError(f"item: {value!r} is not a factor-library item code (e.g. {', '.join(ITEMS)})")
        return v
    if field_name == "currency":
        v = {"¥": "CNY", "￥": "CNY", "元": "CNY", "RMB": "CNY", "人民币": "CNY"}.get(value.upper(), value.upper())
        if not re.fullmatch(r"[A-Z]{3}", v):
            raise ValueError(f"currency: {value!r} is not an ISO 4217 code")
        return v
    return value


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class ReviewQueue:
    """Results with fields below the threshold, held until a person has confirmed each one.

    SQLite (a file, or ``":memory:"``).  ``put(result)`` queues a result (once per image: the same
    sha256 returns the existing item), ``pending()`` lists the open fields with the OCR suggestion,
    its confidence and box, ``resolve(item_id, field, value, reviewer)`` records the checked value
    with who and when (every action is also appended to an audit trail, :meth:`history`), and
    ``release(item_id)`` returns the completed result — only once nothing is pending.
    """

    _SCHEMA = """
    CREATE TABLE IF NOT EXISTS items (
        item_id INTEGER PRIMARY KEY AUTOINCREMENT, sha256 TEXT NOT NULL UNIQUE, raw_name TEXT,
        raw BLOB, data TEXT NOT NULL, metadata TEXT NOT NULL, queued_at TEXT NOT NULL, queued_by TEXT,
        released_at TEXT, batch_id TEXT, enterprise TEXT, ingested_batch TEXT);
    CREATE TABLE IF NOT EXISTS fields (
        item_id INTEGER NOT NULL REFERENCES items(item_id), field TEXT NOT NULL, suggested TEXT,
        confidence REAL NOT NULL, box TEXT, reason TEXT, status TEXT NOT NULL DEFAULT 'pending',
        value TEXT, reviewer TEXT, resolved_at TEXT, PRIMARY KEY (item_id, field));
    CREATE TABLE IF NOT EXISTS events (
        event_id INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER NOT NULL, field TEXT,
        action TEXT NOT NULL, value TEXT, actor TEXT, at TEXT NOT NULL);
    """

    def __init__(self, path=":memory:"):
        self.path = str(path)
        self._con = sqlite3.connect(self.path, check_same_thread=False)
        self._con.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._con:
            self._con.executescript(self._SCHEMA)
            have = {r[1] for r in self._con.execute("PRAGMA table_info(items)")}
            for col in ("batch_id", "enterprise", "ingested_batch"):   # queues made before these columns
                if col not in have:
                    self._con.execute(f"ALTER TABLE items ADD COLUMN {col} TEXT")

    def close(self):
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _event(self, item_id, field_name, action, value, actor):
        self._con.execute("INSERT INTO events (item_id, field, action, value, actor, at) VALUES (?,?,?,?,?,?)",
                          (item_id, field_name, action, json.dumps(value, ensure_ascii=False), actor, _now()))

    def put(self, result: ConnectorResult, *, sender: str | None = None, batch_id: str | None = None,
            enterprise: str | None = None) -> int:
        """Queue ``result``; returns its item id (the existing one if the same image is queued).

        ``batch_id``: the lake batch that holds the image (its quarantined row); ``enterprise``:
        whose lake it is (see :mod:`workbench.ingestion.review`)."""
        if result.kind != "invoice":
            raise ValueError(f"only invoice results are reviewed here, got kind {result.kind!r}")
        sha = result.sha256
        if not sha:
            raise ValueError("the result has no sha256 (raw bytes missing)")
        review = result.metadata.get("review", [])
        with self._lock, self._con:
            row = self._con.execute("SELECT item_id, batch_id FROM items WHERE sha256 = ?", (sha,)).fetchone()
            if row:
                if batch_id and not row["batch_id"]:
                    self._con.execute("UPDATE items SET batch_id = ? WHERE item_id = ?", (batch_id, row["item_id"]))
                return int(row["item_id"])
            meta = {k: v for k, v in result.metadata.items() if k != "review"}
            cur = self._con.execute(
                "INSERT INTO items (sha256, raw_name, raw, data, metadata, queued_at, queued_by, batch_id, enterprise) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (sha, result.raw_name, result.raw, result.data.to_json(orient="records", force_ascii=False),
                 json.dumps(meta, ensure_ascii=False, default=str), _now(), sender, batch_id, enterprise))
            item_id = int(cur.lastrowid)
            for r in review:
                self._con.execute(
                    "INSERT INTO fields (item_id, field, suggested, confidence, box, reason) VALUES (?,?,?,?,?,?)",
                    (item_id, r["field"], json.dumps(r.get("value"), ensure_ascii=False), float(r["confidence"]),
                     json.dumps(r.get("box")), r.get("reason")))
            self._event(item_id, None, "queued", [r["field"] for r in review], sender)
        return item_id

    def pending(self, item_id: int | None = None) -> list[dict]:
        """Open fields: ``{item_id, raw_name, field, suggested, confidence, box, reason, queued_at}``."""
        sql = ("SELECT f.item_id, i.raw_name, f.field, f.suggested, f.confidence, f.box, f.reason, i.queued_at "
               "FROM fields f JOIN items i USING (item_id) WHERE f.status = 'pending'")
        args: tuple = ()
        if item_id is not None:
            sql += " AND f.item_id = ?"
            args = (item_id,)
        rows = self._con.execute(sql + " ORDER BY f.item_id, f.rowid", args).fetchall()
        return [{"item_id": r["item_id"], "raw_name": r["raw_name"], "field": r["field"],
                 "suggested": json.loads(r["suggested"]), "confidence": r["confidence"],
                 "box": json.loads(r["box"]) if r["box"] else None, "reason": r["reason"],
                 "queued_at": r["queued_at"]} for r in rows]

    def resolve(self, item_id: int, field: str, value, reviewer: str) -> dict:
        """Record the checked ``value`` of ``field`` (validated, canonical) by ``reviewer`` now.

        Resolving a field again corrects it (the audit trail keeps both).  Raises KeyError when the
        item has no such field under review, ValueError for an invalid value or an empty reviewer.
        """
        if not reviewer or not str(reviewer).strip():
            raise ValueError("a reviewer (who checked the value) is required")
        canonical = _validate(field, value)
        with self._lock, self._con:
            row = self._con.execute("SELECT f.status, i.released_at FROM fields f JOIN items i USING (item_id) "
                                    "WHERE f.item_id = ? AND f.field = ?", (item_id, field)).fetchone()
            if row is None:
                raise KeyError(f"item {item_id} has no field {field!r} under review")
            if row["released_at"]:
                raise ValueError(f"item {item_id} was released at {row['released_at']}; it cannot change")
            at = _now()
            self._con.execute("UPDATE fields SET status='resolved', value=?, reviewer=?, resolved_at=? "
                              "WHERE item_id=? AND field=?",
                              (json.dumps(canonical, ensure_ascii=False), str(reviewer), at, item_id, field))
            self._event(item_id, field, "corrected" if row["status"] == "resolved" else "resolved", canonical, reviewer)
        return {"item_id": item_id, "field": field, "value": canonical, "reviewer": str(reviewer), "resolved_at": at}

    def history(self, item_id: int | None = None) -> list[dict]:
        sql = "SELECT item_id, field, action, value, actor, at FROM events"
        rows = self._con.execute(sql + (" WHERE item_id = ?" if item_id is not None else "") + " ORDER BY event_id",
                                 (item_id,) if item_id is not None else ()).fetchall()
        return [{**dict(r), "value": json.loads(r["value"]) if r["value"] else None} for r in rows]

    def release(self, item_id: int, *, released_by: str | None = None) -> InvoiceResult:
        """The result with every reviewed field filled in (confidence 1.0, ``reviewed`` metadata).

        Raises :class:`ReviewPending` while any field is still open and KeyError for an unknown item.
        """
        with self._lock, self._con:
            item = self._con.execute("SELECT * FROM items WHERE item_id = ?", (item_id,)).fetchone()
            if item is None:
                raise KeyError(f"no review item {item_id}")
            fields_ = self._con.execute("SELECT * FROM fields WHERE item_id = ? ORDER BY rowid", (item_id,)).fetchall()
            open_ = [f["field"] for f in fields_ if f["status"] != "resolved"]
            if open_:
                raise ReviewPending(f"item {item_id} ({item['raw_name']}): not reviewed yet: {', '.join(open_)}")
            data = pd.read_json(io.StringIO(item["data"]), orient="records", dtype=False)
            meta = json.loads(item["metadata"])
            reviewed = []
            for f in fields_:
                value = json.loads(f["value"])
                data[f["field"]] = data[f["field"]].astype(object)
                data.loc[0, f["field"]] = value
                data.loc[0, f"{f['field']}_confidence"] = 1.0
                reviewed.append({"field": f["field"], "value": value, "suggested": json.loads(f["suggested"]),
                                 "ocr_confidence": f["confidence"], "reviewer": f["reviewer"],
                                 "resolved_at": f["resolved_at"]})
            for col in NUMBER_FIELDS:
                data[col] = pd.to_numeric(data[col], errors="coerce").astype("float64")
            data["needs_review"] = False
            released_at = item["released_at"]
            if not released_at:
                released_at = _now()
                self._con.execute("UPDATE items SET released_at = ? WHERE item_id = ?", (released_at, item_id))
                self._event(item_id, None, "released", None, released_by)
        # who checked it, when, and the image it was read from (the lake batch holding the raw bytes)
        data["reviewed_by"] = ", ".join(sorted({r["reviewer"] for r in reviewed})) or None
        data["reviewed_at"] = max((r["resolved_at"] for r in reviewed), default=None)
        data["review_item"] = int(item_id)
        data["image_sha256"] = item["sha256"]
        data["image_batch"] = item["batch_id"]
        meta.update(needs_review=False, review=[], reviewed=reviewed, review_item=item_id, released_at=released_at,
                    image_sha256=item["sha256"], image_batch=item["batch_id"], enterprise=item["enterprise"])
        meta.pop("received_at", None)
        return InvoiceResult(data, meta, kind="invoice", raw=item["raw"], raw_name=item["raw_name"])

    def item(self, item_id: int) -> dict:
        """One queued item: ``item_id, sha256, raw_name, batch_id, enterprise, queued_at, queued_by,
        released_at, ingested_batch, metadata`` (without the raw bytes)."""
        row = self._con.execute("SELECT * FROM items WHERE item_id = ?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(f"no review item {item_id}")
        out = {k: row[k] for k in row.keys() if k not in ("raw", "data", "metadata")}
        out["metadata"] = json.loads(row["metadata"])
        return out

    def items(self, *, open_only: bool = False) -> list[dict]:
        """Every item (``open_only``: those not yet ingested) with its counts of pending and resolved fields."""
        rows = self._con.execute(
            "SELECT i.item_id, i.raw_name, i.sha256, i.batch_id, i.enterprise, i.queued_at, i.released_at, "
            "i.ingested_batch, SUM(f.status = 'pending') AS pending, SUM(f.status = 'resolved') AS resolved "
            "FROM items i LEFT JOIN fields f USING (item_id) GROUP BY i.item_id ORDER BY i.item_id").fetchall()
        out = [{**dict(r), "pending": int(r["pending"] or 0), "resolved": int(r["resolved"] or 0)} for r in rows]
        return [r for r in out if not r["ingested_batch"]] if open_only else out

    def raw(self, item_id: int) -> bytes:
        row = self._con.execute("SELECT raw FROM items WHERE item_id = ?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(f"no review item {item_id}")
        return bytes(row["raw"])

    def mark_ingested(self, item_id: int, batch_id: str, *, actor: str | None = None) -> None:
        """Record the lake batch that took the released row (kept in the audit trail)."""
        with self._lock, self._con:
            self._con.execute("UPDATE items SET ingested_batch = ? WHERE item_id = ?", (batch_id, item_id))
            self._event(item_id, None, "ingested", batch_id, actor)

    def page(self, item_id: int):
        """The image the item was read from (a PDF's page rendered as it was read), PIL RGB."""
        meta = self.item(item_id)["metadata"]
        raw = self.raw(item_id)
        img_meta = meta.get("image", {})
        if img_meta.get("format") == "PDF":
            return page_image(raw, int(img_meta.get("page", 0)), float(img_meta.get("scale", PDF_SCALE)))
        img, _ = _decode(raw, meta.get("origin", "review item"))
        return img

    def crop(self, item_id: int, field: str, *, pad: int = 12, page=None):
        """The part of the image where ``field`` was read (its box with ``pad`` px around), or the
        whole page when the field has no box (not found).  ``page``: the item's page, when the
        caller already has it."""
        row = self._con.execute("SELECT box FROM fields WHERE item_id = ? AND field = ?", (item_id, field)).fetchone()
        img = page if page is not None else self.page(item_id)
        box = json.loads(row["box"]) if row is not None and row["box"] else None
        if not box:
            return img
        x0, y0, x1, y1 = box
        w, h = img.size
        return img.crop((max(0, int(x0) - pad), max(0, int(y0) - pad), min(w, int(math.ceil(x1)) + pad),
                         min(h, int(math.ceil(y1)) + pad)))
