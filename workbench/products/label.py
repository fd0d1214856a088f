"""Product carbon labels (产品碳效标识, seed §9.4 b): the label's content, its identifier record and
its rendering (PNG, SVG, PDF) with a QR code of the identifier's resolution URL.

A :class:`ProductLabel` is made from a product's footprint (:func:`make_label`) — the product or
one production batch, its footprint per declared unit (kgCO2e per t …), the energy-consumption
rating of its sector's standard and, when the caller has one, the enterprise's carbon-efficiency
grade (碳效码; graded elsewhere and passed in).  Its identifier lives under the enterprise's prefix
(``88.123.4567/label.pcf.2025.cement``, ``…/label.batch.2025-03.cement.B0001`` — the identifier
model's ``label`` suffix scheme).  :func:`label_record` is the Handle record the identifier node
serves for it: ``DESC`` (what it is), ``CARBON.FOOTPRINT`` (tCO2e per declared unit, with the
kgCO2e figure, the split and the method), ``ENERGY.RATING`` (JSON: indicator, value, unit, grade,
standard), ``CARBON.GRADE`` (when given), ``REF`` to the enterprise's node, HS_ADMIN.
Resolving the identifier returns the footprint (:func:`footprint_of_record`).

The label is drawn once as geometry (:func:`layout`) and written three ways with the same
measurements: SVG (text as text, the QR code as one path), PNG (Pillow, QR modules on whole
pixels so a phone or ``zxing-cpp`` reads it) and PDF (WeasyPrint of the SVG, text selectable, CJK
font embedded).  The size is 60 × 60 mm, the largest label mark T/DZJN 004-2019 mentions (8 × 8 mm
to 60 × 60 mm; reference ``accounting-facts.md``).  A label not yet approved carries
"待审核 PENDING REVIEW" in red.
"""
from __future__ import annotations

import base64
import datetime as _dt
import functools
import html
import json
import math
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench.core.errors import WorkbenchError
from workbench.identifiers.model import (
    DEFAULT_SCHEMES,
    HandleRecord,
    HandleValue,
    Identifier,
    admin_value,
    carbon_value,
    decode_json_value,
    desc_value,
    parse_identifier,
    ref_value,
    utc_timestamp,
)
from workbench.products.errors import LabelError, ProductError

__all__ = [
    "ENERGY_TYPE",
    "SIZE_MM",
    "STATUSES",
    "ProductLabel",
    "footprint_of_record",
    "label_identifier",
    "label_record",
    "layout",
    "make_label",
    "render_pdf",
    "render_png",
    "render_svg",
    "resolution_url",
    "write_label",
]

STATUSES = ("pending", "approved", "rejected", "published")
ENERGY_TYPE = "ENERGY.RATING"
SIZE_MM = 60.0
_UNITS = 600                      # drawing units across the label (0.1 mm each)
_GREEN, _INK, _GREY, _RED = "#1b7f3b", "#1a1a1a", "#5f6368", "#c62828"


@dataclass
class ProductLabel:
    """A product's (or batch's) carbon label: what it shows, where it resolves, and its review state."""

    label_id: str
    enterprise_id: str
    enterprise_name_zh: str
    enterprise_name_en: str
    identifier: str
    kind: str                       # "product" | "batch"
    product: str
    batch_id: str
    name_zh: str
    name_en: str
    period: str                     # YYYY-MM or YYYY-MM/YYYY-MM
    unit: str
    output: float                   # the product's output in the period, or the batch's quantity
    per_unit_tco2e: float
    per_unit_direct_tco2e: float
    per_unit_indirect_tco2e: float
    total_tco2e: float              # the product's embedded emissions of the period, or the batch's
    energy: dict
    method: str
    allocation_en: str
    allocation_zh: str
    boundary_en: str
    boundary_zh: str
    standard: str
    gwp: str
    grade: str = ""
    grade_scheme: str = ""
    evidence: dict = field(default_factory=dict)
    status: str = "pending"
    created_by: str = ""
    created_at: str = ""
    decided_by: str = ""
    decided_at: str = ""
    comment: str = ""
    published_at: str = ""
    published_to: str = ""

    @property
    def kgco2e_per_unit(self) -> float:
        return self.per_unit_tco2e * 1000.0

    @property
    def declared_unit(self) -> str:
        return f"1 {self.unit}"

    def as_dict(self, *, evidence: bool = True) -> dict:
        d = asdict(self)
        if not evidence:
            d.pop("evidence")
        d["kgco2e_per_unit"] = self.kgco2e_per_unit
        d["declared_unit"] = self.declared_unit
        return d


def _suffix_period(period: str) -> str:
    start, _, end = period.partition("/")
    end = end or start
    if start.endswith("-01") and end.endswith("-12") and start[:4] == end[:4]:
        return start[:4]
    return start if start == end else f"{start}_{end}"


def label_identifier(prefix: str, product: str, period: str, batch_id: str = "") -> Identifier:
    """The label's identifier under ``prefix`` by the ``label`` suffix scheme
    (``label.{label_kind}.{period}.{subject}``): ``label.pcf.2025.cement`` for a product's
    footprint of a year (a month ``2025-03``, a span ``2025-01_2025-06``), and
    ``label.batch.2025-03.cement.B0001`` for a batch."""
    scheme = DEFAULT_SCHEMES["label"]
    subject = f"{product}.{batch_id}" if batch_id else product
    try:
        suffix = scheme.make(label_kind="batch" if batch_id else "pcf", period=_suffix_period(period), subject=subject)
        return parse_identifier(f"{prefix}/{suffix}")
    except WorkbenchError as exc:        # a malformed prefix or batch id: one line naming it
        raise ProductError(f"label identifier for {product!r} {batch_id!r} under {prefix!r}: {exc}") from None


def make_label(result, product: str, *, prefix: str | None = None, batch: Mapping | None = None,
               grade: str = "", grade_scheme: str = "", created_by: str = "", evidence: bool = True) -> ProductLabel:
    """The label of ``product`` (or of one batch of it) from a :class:`~.footprint.FootprintResult`.

    Parameters
    ----------
    result : FootprintResult
    product : str
    prefix : str, optional
        The enterprise's identifier prefix (default its record's ``identifier_prefix``).
    batch : mapping, optional
        A row of :func:`~.footprint.batch_footprints` (``batch_id, period, quantity, per_unit_tco2e,
        tco2e``): a batch label.
    grade, grade_scheme : str
        The enterprise's carbon-efficiency grade and its scheme (e.g. ``"2"``, ``"碳效码 (Zhejiang)"``),
        when the caller has one; shown on the label and registered as ``CARBON.GRADE``.
    created_by : str
        Who asked for the label (kept in the review record).
    evidence : bool
        Attach :meth:`~.footprint.FootprintResult.evidence` (ledger rows, factors, outputs, allocation).
    """
    fp = result[product]
    ent = result.enterprise
    prefix = prefix or ent.get("identifier_prefix")
    if not prefix:
        raise ProductError(f"enterprise {fp.enterprise_id}: no identifier prefix (identifier_prefix) for the label")
    if grade and not grade_scheme:
        raise ProductError("a grade on the label needs its scheme (e.g. 碳效码)")
    period, batch_id, output, per_unit, total = fp.period, "", fp.output, fp.per_unit_tco2e, fp.embedded_tco2e
    direct, indirect = fp.per_unit_direct_tco2e, fp.per_unit_indirect_tco2e
    if batch is not None:
        batch_id, period = str(batch["batch_id"]), str(batch["period"])
        output, per_unit, total = float(batch["quantity"]), float(batch["per_unit_tco2e"]), float(batch["tco2e"])
        direct = float(batch.get("per_unit_direct_tco2e", direct))
        indirect = float(batch.get("per_unit_indirect_tco2e", indirect))
    ident = label_identifier(prefix, product, period, batch_id)
    return ProductLabel(
        label_id=uuid.uuid4().hex, enterprise_id=fp.enterprise_id,
        enterprise_name_zh=str(ent.get("name_zh", "")), enterprise_name_en=str(ent.get("name_en", "")),
        identifier=str(ident), kind="batch" if batch_id else "product", product=product, batch_id=batch_id,
        name_zh=fp.name_zh, name_en=fp.name_en, period=period, unit=fp.unit, output=output, per_unit_tco2e=per_unit,
        per_unit_direct_tco2e=direct, per_unit_indirect_tco2e=indirect,
        total_tco2e=total, energy=fp.energy_rating.as_dict(), method=fp.method, allocation_en=fp.allocation_en,
        allocation_zh=fp.allocation_zh, boundary_en=fp.boundary_en, boundary_zh=fp.boundary_zh,
        standard=f"ISO 14044 allocation order; inventory {fp.standard}", gwp=fp.gwp, grade=str(grade or ""),
        grade_scheme=str(grade_scheme or ""), evidence=result.evidence(product) if evidence else {},
        created_by=created_by, created_at=utc_timestamp())


# --------------------------------------------------------------------------- the identifier record
def resolution_url(node_url: str, identifier: str | Identifier) -> str:
    """Where the identifier resolves: ``<node>/api/handles/<prefix>/<suffix>`` (the Handle REST path)."""
    from workbench.identifiers.client import handle_path

    if not isinstance(node_url, str) or not node_url.startswith(("http://", "https://")):
        raise ProductError(f"node URL {node_url!r}: need http(s)://host[:port]")
    return node_url.rstrip("/") + handle_path(identifier)


def _num(x: float, digits: int = 6) -> float:
    return round(float(x), digits) if math.isfinite(float(x)) else 0.0


def label_record(label: ProductLabel, *, enterprise_identifier: str | None = None,
                 timestamp: str | None = None) -> HandleRecord:
    """The Handle record the identifier node serves for an (approved) label.

    Values: 1 ``DESC`` (kind ``product_label`` or ``batch_label``, names, enterprise, product,
    batch, declared unit, boundary, review decision), 2 ``CARBON.FOOTPRINT`` (``value`` tCO2e per
    declared unit, ``kgco2e_per_unit``, ``per`` the declared unit, direct/indirect per unit, total
    tCO2e, output, method, GWP), 3 ``ENERGY.RATING`` (JSON), 4 ``CARBON.GRADE`` (if the label has a
    grade), then ``REF`` to the enterprise's node (default ``<prefix>/node.ENT`` is not assumed:
    only when given), HS_ADMIN at 100.
    """
    ts = timestamp or utc_timestamp()
    ident = parse_identifier(label.identifier)
    rec = HandleRecord(ident)
    rec.add(desc_value(kind=f"{label.kind}_label", name_zh=label.name_zh, name_en=label.name_en, index=1,
                       timestamp=ts, product=label.product, batch_id=label.batch_id or None,
                       enterprise_id=label.enterprise_id, enterprise_zh=label.enterprise_name_zh,
                       enterprise_en=label.enterprise_name_en, declared_unit=label.declared_unit,
                       boundary=label.boundary_en, label_id=label.label_id, status=label.status,
                       approved_by=label.decided_by or None, approved_at=label.decided_at or None))
    rec.add(carbon_value("CARBON.FOOTPRINT", index=2, timestamp=ts, value=_num(label.per_unit_tco2e, 9),
                         period=label.period, standard=label.standard, per=label.declared_unit,
                         kgco2e_per_unit=_num(label.kgco2e_per_unit, 6),
                         direct_kgco2e_per_unit=_num(label.per_unit_direct_tco2e * 1000, 6),
                         indirect_kgco2e_per_unit=_num(label.per_unit_indirect_tco2e * 1000, 6),
                         total_tco2e=_num(label.total_tco2e, 6), output=_num(label.output, 6), output_unit=label.unit,
                         allocation=label.method, gwp=label.gwp, product=label.product,
                         batch_id=label.batch_id or None))
    e = label.energy or {}
    energy = {k: e.get(k) for k in ("indicator", "name_zh", "name_en", "unit", "grade", "rated", "label_zh",
                                    "label_en", "standard")}
    energy["value"] = None if e.get("value") is None or not math.isfinite(float(e["value"])) else _num(e["value"], 6)
    energy["limits"] = ",".join(f"{x:g}" for x in e.get("limits") or [])
    energy["period"] = label.period
    rec.add(HandleValue(index=3, type=ENERGY_TYPE, timestamp=ts,
                        data={"format": "string", "value": json.dumps(energy, ensure_ascii=False, sort_keys=True,
                                                                      separators=(",", ":"))}))
    if label.grade:
        rec.add(carbon_value("CARBON.GRADE", index=4, timestamp=ts, grade=label.grade, period=label.period,
                             scheme=label.grade_scheme, enterprise_id=label.enterprise_id))
    if enterprise_identifier:
        rec.add(ref_value(enterprise_identifier, rel="parent", index=rec.next_index(), timestamp=ts))
    rec.add(admin_value(ident.prefix, timestamp=ts))
    return rec


def footprint_of_record(record: HandleRecord) -> dict:
    """The footprint a resolved label record holds: the ``CARBON.FOOTPRINT`` payload, with the
    energy rating (``energy``) and the grade (``grade``) when present."""
    fp = record.first("CARBON.FOOTPRINT")
    if fp is None:
        raise LabelError(f"{record.identifier}: no CARBON.FOOTPRINT value")
    out = decode_json_value(fp)
    en = record.first(ENERGY_TYPE)
    if en is not None:
        out["energy"] = json.loads(en.value)
    gr = record.first("CARBON.GRADE")
    if gr is not None:
        out["grade"] = decode_json_value(gr)
    return out


# --------------------------------------------------------------------------- drawing
@functools.lru_cache(maxsize=4)
def _font_file(bold: bool) -> tuple[str, int] | None:
    """A CJK font file and face index fontconfig knows (Noto Sans CJK SC), or None."""
    name = "Noto Sans CJK SC" + (":bold" if bold else "")
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}\n%{index}", name], capture_output=True, text=True,
                             timeout=10, check=False).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    if len(out) >= 2 and out[0] and Path(out[0]).exists() and "CJK" in out[0]:
        return out[0], int(out[1] or 0)
    return None


@functools.lru_cache(maxsize=64)
def _pil_font(size: int, bold: bool):
    from PIL import ImageFont

    f = _font_file(bold)
    if f is not None:
        return ImageFont.truetype(f[0], size, index=f[1])
    return ImageFont.load_default(size)


def _text_width(text: str, size: float, bold: bool) -> float:
    """Width in drawing units (measured with the label's font at 10× for precision)."""
    try:
        return _pil_font(int(size * 10), bold).getlength(text) / 10.0
    except (OSError, ValueError):           # no font at all: a generous estimate
        return sum(size if ord(c) > 0x2e80 else 0.6 * size for c in text)


def _fit(text: str, size: float, bold: bool, width: float) -> float:
    """The font size ≤ ``size`` at which ``text`` fits ``width`` units."""
    w = _text_width(text, size, bold)
    return size if w <= width else max(6.0, size * width / w * 0.98)


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


@dataclass
class _Text:
    x: float
    y: float
    text: str
    size: float
    bold: bool = False
    fill: str = _INK
    anchor: str = "start"          # start | end | middle


def layout(label: ProductLabel, url: str) -> dict:
    """The label's geometry in drawing units (600 × 600 = 60 × 60 mm): rectangles, texts, the QR
    code's modules, origin and module size.  :func:`render_svg` and :func:`render_png` draw it."""
    import segno

    qr = segno.make(url, error="m", boost_error=False)
    n = len(qr.matrix)
    box = 200.0                                           # QR area incl. its quiet zone (4 modules)
    module = box / (n + 8)
    qx, qy = 380.0, 105.0
    texts: list[_Text] = []
    t = texts.append
    t(_Text(24, 52, "产品碳足迹", 36, True, "#ffffff"))
    t(_Text(24, 78, "PRODUCT CARBON FOOTPRINT", _fit("PRODUCT CARBON FOOTPRINT", 19, False, 330), False, "#ffffff"))
    t(_Text(576, 52, "碳效标识", 24, True, "#ffffff", "end"))
    t(_Text(576, 78, "CO2e", 19, False, "#ffffff", "end"))
    name_zh = label.name_zh + (f"  批次 {label.batch_id}" if label.batch_id else "")
    t(_Text(24, 148, name_zh, _fit(name_zh, 36, True, 340), True))
    name_en = label.name_en + (f" · batch {label.batch_id}" if label.batch_id else "")
    t(_Text(24, 178, name_en, _fit(name_en, 21, False, 340), False, _GREY))
    value = _fmt(label.kgco2e_per_unit)
    t(_Text(24, 292, value, _fit(value, 104, True, 340), True, _GREEN))
    unit = f"kgCO2e / {label.declared_unit}"
    t(_Text(24, 330, unit, _fit(unit, 26, True, 340), True))
    t(_Text(24, 358, "从摇篮到大门（厂内） cradle-to-gate, on site", _fit("从摇篮到大门（厂内） cradle-to-gate, on site", 15, False, 340),
            False, _GREY))
    e = label.energy or {}
    if e.get("rated"):
        line1 = f"能耗等级 {e.get('label_zh', '')} · {_fmt(float(e['value']))} {e.get('unit', '')}"
        line2 = f"energy: {e.get('label_en', '')} ({e.get('standard', '')})"
    else:
        line1, line2 = "能耗等级：未评级", "energy: not rated"
    t(_Text(24, 418, line1, _fit(line1, 24, True, 552), True))
    t(_Text(24, 444, line2, _fit(line2, 17, False, 552), False, _GREY))
    if label.grade:
        g = f"碳效等级 {label.grade} 级 · carbon-efficiency grade {label.grade} ({label.grade_scheme})"
        t(_Text(24, 476, g, _fit(g, 18, True, 552), True))
    per = label.period.replace("/", " — ")
    meta = f"核算期 period {per} · 分配 allocation: {label.method}"
    t(_Text(24, 506 if label.grade else 480, meta, _fit(meta, 16, False, 552), False, _GREY))
    ent = label.enterprise_name_zh or label.enterprise_name_en
    t(_Text(24, 532 if label.grade else 508, ent, _fit(ent, 16, False, 552), False, _GREY))
    t(_Text(300, 572, label.identifier, _fit(label.identifier, 16, False, 540), False, _INK, "middle"))
    if label.status not in ("approved", "published"):
        t(_Text(300, 322, "待审核 PENDING REVIEW", _fit("待审核 PENDING REVIEW", 20, True, 200), True, _RED, "middle"))
        texts[-1].x = qx + box / 2
        texts[-1].y = qy + box + 22
    else:
        t(_Text(qx + box / 2, qy + box + 22, "扫码解析 scan to resolve", _fit("扫码解析 scan to resolve", 15, False, 200),
                False, _GREY, "middle"))
    rects = [(0, 0, 600, 600, "#ffffff", None), (0, 0, 600, 96, _GREEN, None), (24, 385, 552, 2, _GREEN, None),
             (0, 546, 600, 2, "#d0d7de", None)]
    dark = [(c, r) for r, row in enumerate(qr.matrix) for c, v in enumerate(row) if v]
    return {"texts": texts, "rects": rects, "qr": {"x": qx + 4 * module, "y": qy + 4 * module, "module": module,
                                                   "n": n, "dark": dark, "box": (qx, qy, box)},
            "url": url, "border": _GREEN}


def render_svg(label: ProductLabel, url: str) -> str:
    """The label as an SVG document (60 × 60 mm; text as text; the QR code as one path)."""
    g = layout(label, url)
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE_MM:g}mm" height="{SIZE_MM:g}mm" '
            f'viewBox="0 0 {_UNITS} {_UNITS}" role="img" aria-label="{html.escape(label.name_en)} carbon label">'),
           (f"<title>{html.escape(label.name_zh)} {html.escape(label.name_en)} — "
            f"{_fmt(label.kgco2e_per_unit)} kgCO2e/{html.escape(label.declared_unit)}</title>")]
    for x, y, w, h, fill, _ in g["rects"]:
        out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}"/>')
    out.append(f'<rect x="3" y="3" width="594" height="594" fill="none" stroke="{g["border"]}" stroke-width="6"/>')
    q = g["qr"]
    qx, qy, box = q["box"]
    out.append(f'<rect x="{qx}" y="{qy}" width="{box}" height="{box}" fill="#ffffff"/>')
    path = "".join(f"M{c} {r}h1v1h-1z" for c, r in q["dark"])
    out.append(f'<path transform="translate({q["x"]:.4f} {q["y"]:.4f}) scale({q["module"]:.6f})" '
               f'fill="#000000" d="{path}"/>')
    anchors = {"start": "start", "end": "end", "middle": "middle"}
    for t in g["texts"]:
        weight = ' font-weight="bold"' if t.bold else ""
        out.append(f'<text x="{t.x:.2f}" y="{t.y:.2f}" font-family="Noto Sans CJK SC, Noto Sans, sans-serif" '
                   f'font-size="{t.size:.2f}"{weight} fill="{t.fill}" text-anchor="{anchors[t.anchor]}">'
                   f"{html.escape(t.text)}</text>")
    out.append("</svg>")
    return "\n".join(out)


def render_png(label: ProductLabel, url: str, path, *, px_per_mm: float = 20.0) -> Path:
    """The label as a PNG (default 20 px/mm = 1200 × 1200 px, 508 dpi); the QR modules are whole
    pixels, so the code decodes."""
    from PIL import Image, ImageDraw

    g = layout(label, url)
    s = px_per_mm * SIZE_MM / _UNITS                   # px per drawing unit
    size = round(_UNITS * s)
    img = Image.new("RGB", (size, size), "#ffffff")
    d = ImageDraw.Draw(img)
    for x, y, w, h, fill, _ in g["rects"]:
        d.rectangle([round(x * s), round(y * s), round((x + w) * s) - 1, round((y + h) * s) - 1], fill=fill)
    d.rectangle([0, 0, size - 1, size - 1], outline=g["border"], width=max(1, round(6 * s)))
    q = g["qr"]
    mod = max(1, math.floor(q["module"] * s))           # whole pixels per module
    qx, qy, box = q["box"]
    x0 = round(qx * s + (box * s - mod * (q["n"] + 8)) / 2) + 4 * mod
    y0 = round(qy * s + (box * s - mod * (q["n"] + 8)) / 2) + 4 * mod
    d.rectangle([x0 - 4 * mod, y0 - 4 * mod, x0 + (q["n"] + 4) * mod - 1, y0 + (q["n"] + 4) * mod - 1], fill="#ffffff")
    for c, r in q["dark"]:
        d.rectangle([x0 + c * mod, y0 + r * mod, x0 + (c + 1) * mod - 1, y0 + (r + 1) * mod - 1], fill="#000000")
    anchor = {"start": "ls", "end": "rs", "middle": "ms"}
    for t in g["texts"]:
        d.text((t.x * s, t.y * s), t.text, font=_pil_font(max(1, round(t.size * s)), t.bold), fill=t.fill,
               anchor=anchor[t.anchor])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG", dpi=(px_per_mm * 25.4, px_per_mm * 25.4))
    return path


def render_pdf(label: ProductLabel, url: str, path) -> Path:
    """The label as a one-page PDF of 60 × 60 mm (WeasyPrint of the SVG; CJK font embedded, text selectable)."""
    from weasyprint import HTML

    svg = render_svg(label, url)
    src = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    doc = (f'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{html.escape(label.identifier)}</title>'
           f"<style>@page {{ size: {SIZE_MM:g}mm {SIZE_MM:g}mm; margin: 0 }} body {{ margin: 0 }} "
           f"img {{ display: block; width: {SIZE_MM:g}mm; height: {SIZE_MM:g}mm }}</style></head>"
           f'<body><img src="{src}" alt="{html.escape(label.name_en)}"></body></html>')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    HTML(string=doc).write_pdf(path)
    return path


def write_label(label: ProductLabel, url: str, out_dir, *, pdf: bool = True, stem: str | None = None) -> dict:
    """Write ``<stem>.png``, ``.svg``, ``.pdf`` and ``.json`` (the label without its evidence, and the
    URL in the QR code) into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = stem or label.identifier.split("/", 1)[1].replace("/", "_")
    paths = {"png": render_png(label, url, out / f"{stem}.png")}
    (out / f"{stem}.svg").write_text(render_svg(label, url), encoding="utf-8")
    paths["svg"] = out / f"{stem}.svg"
    if pdf:
        paths["pdf"] = render_pdf(label, url, out / f"{stem}.pdf")
    doc = {**label.as_dict(evidence=False), "qr_url": url, "written_at": _dt.datetime.now().isoformat(timespec="seconds")}
    (out / f"{stem}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    paths["json"] = out / f"{stem}.json"
    return paths
