"""Bills and VAT e-invoices as PDF, the import command's entry points (read, looks_like_invoice),
bad input, master data.

Text-layer PDFs are the rendered bills of tests/invoice_images.py drawn again with reportlab at the
same places (their truth is the generator's); one scanned PDF (the page image only) goes through
OCR.
"""
from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import pytest

from connectors import invoice_ocr as ocr
from connectors.invoice_ocr import (
    FIELDS,
    InvoiceImageError,
    known_from_master_data,
    looks_like_invoice,
)

try:
    import invoice_images as ii
except ImportError:
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    import invoice_images as ii

THRESHOLD = ocr.DEFAULT_THRESHOLD


def _pdf(seed, layout=None, **kw):
    _, truth, meta, page = ii.random_bill(seed, layout=layout, with_page=True)
    return ii.render_pdf(page, **kw), truth, meta


def _v(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _same(v, t):
    if isinstance(t, float):
        return v is not None and abs(v - t) <= 1e-9 * max(1.0, abs(t))
    return v == t


@pytest.mark.parametrize("layout", ii.LAYOUTS)
def test_text_layer_pdfs_are_read_exactly(layout):
    for seed in (101, 102, 103):
        pdf, truth, meta = _pdf(seed, layout)
        res = ocr.read(pdf, raw_name=f"{layout}-{seed}.pdf")
        row = res.data.iloc[0]
        got = {f: _v(row[f]) for f in FIELDS}
        wrong = {f: (got[f], truth[f]) for f in FIELDS if not _same(got[f], truth[f])}
        assert not wrong, (meta, res.metadata["ocr_lines"])
        assert not res.needs_review and res.metadata["pdf"]["mode"] == "text"
        # no recognition error is possible: confidence near 1, and the numbers agree with each other
        assert all(row[f"{f}_confidence"] >= 0.99 for f in FIELDS if truth[f] is not None)
        assert res.metadata["checks"]["qpa"] is True
        if layout == "vat":
            assert res.metadata["checks"]["att"] is True          # net + tax = total
        assert res.metadata["image"]["format"] == "PDF" and res.raw == pdf


def test_scanned_pdf_is_rasterised_and_ocrd():
    pdf, truth, _ = _pdf(2, "electricity", text_layer=False)
    assert looks_like_invoice(io.BytesIO(pdf)) is True                 # no text layer: a scan, ours to read
    res = ocr.read(pdf, raw_name="scan.pdf")
    assert res.metadata["pdf"]["mode"] == "ocr" and res.metadata["engine"]["name"] == "rapidocr"
    row = res.data.iloc[0]
    sugg = {r["field"]: r["value"] for r in res.review}
    for f in FIELDS:
        v = _v(row[f])
        if v is not None:
            assert _same(v, truth[f]), (f, v, truth[f])               # nothing wrong is trusted
        elif truth[f] is not None:
            assert f in sugg
    assert sum(_v(row[f]) is not None for f in FIELDS) >= 8


def test_read_and_looks_like_invoice_on_files(tmp_path):
    pdf, truth, _ = _pdf(7, "heat")
    bill = tmp_path / "热费 2025-06.pdf"
    bill.write_bytes(pdf)
    assert looks_like_invoice(bill) is True
    res = ocr.read(bill, known={"supplier": [truth["supplier"]], "account_no": [truth["account_no"]]})
    assert res.raw_name == bill.name and res.metadata["origin"] == str(bill)
    assert res.data["supplier"].iloc[0] == truth["supplier"]
    assert res.metadata["fields"]["account_no"]["features"]["known"] == "exact"
    # a PDF of tables (what connectors.files.read_pdf_tables reads) is not a bill
    tables = tmp_path / "energy_statistics.pdf"
    tables.write_bytes(_table_pdf())
    assert looks_like_invoice(tables) is False
    with pytest.raises(InvoiceImageError, match=r"energy_statistics\.pdf: not a bill or invoice") as err:
        ocr.read(tables)
    assert "\n" not in str(err.value)
    png = tmp_path / "bill.png"
    png.write_bytes(ii.to_bytes(ii.render_non_invoice()[0]))
    assert looks_like_invoice(png) is True


@pytest.mark.parametrize("name, data, message", [
    ("empty.pdf", b"", "empty input"),
    ("broken.pdf", None, "cannot read the PDF"),
    ("fake.pdf", b"hello, this is a text file\n", "not a PDF"),
    ("empty.png", b"", "empty input"),
    ("notes.jpg", b"not a jpeg at all", "cannot decode image"),
    ("half.png", "half-png", "cannot decode image"),
])
def test_bad_input_is_one_line_naming_the_file(tmp_path, name, data, message):
    if data is None:
        data = _pdf(3, "gas")[0]
        data = data[: len(data) // 3]
    elif data == "half-png":
        full = ii.to_bytes(ii.render("gas")[0])
        data = full[: len(full) // 2]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InvoiceImageError, match=message) as err:
        ocr.read(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="missing.pdf"):
        ocr.read(tmp_path / "missing.pdf")


def test_known_from_master_data(tmp_path):
    from workbench.registry.store import MasterData

    md = MasterData(f"sqlite:///{tmp_path / 'registry.db'}")
    md.put_enterprise({"enterprise_id": "ent-a", "name_zh": "长兴华新水泥有限公司", "name_en": "Changxing Huaxin Cement"},
                      who="test")
    md.sync("accounts", "ent-a", [{"account": "3301234567", "supplier": "国网湖州供电公司", "item": "grid"},
                                  {"account": "GS0571008817", "supplier": "长兴新奥燃气有限公司", "item": "natural_gas"}],
            who="test")
    known = known_from_master_data(md, "ent-a")
    assert known == {"supplier": ["国网湖州供电公司", "长兴新奥燃气有限公司"],
                     "customer": ["Changxing Huaxin Cement", "长兴华新水泥有限公司"],
                     "account_no": ["3301234567", "GS0571008817"]}
    md.dispose()


def _table_pdf() -> bytes:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    try:
        pdfmetrics.getFont("STSong-Light")
    except KeyError:
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(600, 400))
    c.setFont("STSong-Light", 12)
    rows = [["月份", "设施", "原煤(t)", "天然气(万Nm3)"], ["2025-01", "F01", "1,204", "3.5"],
            ["2025-02", "F01", "1,188", "3.1"], ["2025-03", "F02", "960", "2.7"]]
    for r, row in enumerate(rows):
        for k, cell in enumerate(row):
            c.drawString(40 + 130 * k, 360 - 24 * r, cell)
    c.showPage()
    c.save()
    return buf.getvalue()
