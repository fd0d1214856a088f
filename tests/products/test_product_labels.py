"""Product carbon labels (issue 14 point 5): pending → approved → published through the label store,
the identifier record, and the round trip — the QR code decoded from the PNG with zxing-cpp,
resolved through a running identifier node, gives the footprint back."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import hand_plant as hp
import httpx
import pandas as pd
import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from workbench.identifiers import HandleRecord, LocalNode
from workbench.products.errors import LabelError, ProductError
from workbench.products.footprint import batch_footprints, footprints_from_ledger
from workbench.products.label import (
    footprint_of_record,
    label_identifier,
    label_record,
    make_label,
    render_svg,
    resolution_url,
    write_label,
)
from workbench.products.store import LabelStore, publish

PREFIX = "88.123.4567"


@pytest.fixture(scope="module")
def res():
    return footprints_from_ledger(hp.ledger(), hp.outputs(), hp.PRODUCTS, enterprise=hp.ENTERPRISE,
                                  period_start="2025-01", period_end="2025-01")


@pytest.fixture(scope="module")
def node():
    with LocalNode(prefix=PREFIX, scrypt_n=2**10) as n:
        yield n


@pytest.fixture
def store(tmp_path):
    s = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    yield s
    s.dispose()


def test_identifiers_follow_the_label_scheme():
    assert str(label_identifier(PREFIX, "cement", "2025-01/2025-12")) == f"{PREFIX}/label.pcf.2025.cement"
    assert str(label_identifier(PREFIX, "cement", "2025-03")) == f"{PREFIX}/label.pcf.2025-03.cement"
    assert str(label_identifier(PREFIX, "cement", "2025-01/2025-06")) == f"{PREFIX}/label.pcf.2025-01_2025-06.cement"
    assert str(label_identifier(PREFIX, "cement", "2025-03", "B-0001")) == f"{PREFIX}/label.batch.2025-03.cement.B-0001"
    with pytest.raises(ProductError):
        label_identifier(PREFIX, "cement", "2025-03", "bad batch")           # whitespace in a suffix
    assert resolution_url("http://node:8000/", f"{PREFIX}/label.pcf.2025.cement") == \
        "http://node:8000/api/handles/88.123.4567/label.pcf.2025.cement"


def test_the_review_flow_and_its_history(res, store):
    lab = store.submit(make_label(res, "cement"), who="analyst-li")
    assert lab.status == "pending" and lab.created_by == "analyst-li"
    other = make_label(res, "clinker")
    other.enterprise_id = "someone-else"
    store.submit(other, who="analyst-wang")
    assert [x.label_id for x in store.pending(enterprise="hand-cement")] == [lab.label_id]
    assert store.pending(enterprise="hand-cement")[0].evidence["ledger"]           # evidence kept with it
    assert {x.enterprise_id for x in store.list()} == {"hand-cement", "someone-else"}
    with pytest.raises(LabelError, match="no label"):
        store.get(other.label_id, enterprise="hand-cement")                      # not that enterprise's
    with pytest.raises(LabelError, match="comment"):
        store.reject(lab.label_id, who="reviewer-zhao", comment=" ")
    with pytest.raises(LabelError, match="pending"):
        store.mark_published(lab.label_id, who="x", node="http://n")
    done = store.approve(lab.label_id, who="reviewer-zhao", comment="checked against the ledger")
    assert done.status == "approved" and done.decided_by == "reviewer-zhao" and done.decided_at
    with pytest.raises(LabelError, match="not pending"):
        store.reject(lab.label_id, who="reviewer-zhao", comment="too late")
    rejected = store.reject(other.label_id, who="reviewer-zhao", comment="wrong period")
    assert rejected.status == "rejected" and rejected.comment == "wrong period"
    with pytest.raises(LabelError, match="only an approved"):
        publish(other.label_id, object(), store=store)
    ev = store.events(lab.label_id)
    assert [(e["action"], e["from_status"], e["to_status"], e["who"]) for e in ev] == [
        ("submit", "", "pending", "analyst-li"), ("approve", "pending", "approved", "reviewer-zhao")]
    assert store.get(lab.label_id).per_unit_tco2e == pytest.approx(3328.5 / 5000)


def test_a_pending_label_is_not_published(res, store, node):
    lab = store.submit(make_label(res, "cement"), who="analyst")
    with node.client() as c, pytest.raises(LabelError, match="pending"):
        publish(lab, c, store=store)
    with node.client() as c:
        assert not c.exists(lab.identifier)


def test_the_round_trip_png_qr_node_footprint(res, store, node, tmp_path):
    lab = store.submit(make_label(res, "cement", grade="2", grade_scheme="碳效码"), who="analyst")
    store.approve(lab.label_id, who="reviewer", comment="ok")
    with node.client() as c:
        ident = publish(lab.label_id, c, store=store, who="reviewer",
                        enterprise_identifier=f"{PREFIX}/node.ENT")
    published = store.get(lab.label_id)
    assert ident == lab.identifier and published.status == "published" and published.published_to == node.url
    assert store.events(lab.label_id)[-1]["action"] == "publish"

    url = resolution_url(node.url, published.identifier)
    paths = write_label(published, url, tmp_path / "label")
    codes = zxingcpp.read_barcodes(Image.open(paths["png"]))
    assert [c.format for c in codes] == [zxingcpp.BarcodeFormat.QRCode]
    scanned = codes[0].text
    assert scanned == url
    # a phone's view: an anonymous GET of the scanned URL
    body = httpx.get(scanned, timeout=10).json()
    fp = footprint_of_record(HandleRecord.from_json(body))
    assert fp["value"] == pytest.approx(3328.5 / 5000, rel=1e-9)            # tCO2e per t of cement
    assert fp["kgco2e_per_unit"] == pytest.approx(3328.5 / 5000 * 1000, rel=1e-9)
    assert fp["per"] == "1 t" and fp["unit"] == "tCO2e" and fp["period"] == "2025-01"
    assert fp["energy"]["grade"] == 2 and fp["energy"]["standard"] == "GB 16780-2021"
    assert fp["grade"]["grade"] == "2" and fp["grade"]["scheme"] == "碳效码"
    # and through the client
    with node.client(anonymous=True) as c:
        rec = c.resolve(ident)
    assert footprint_of_record(rec)["total_tco2e"] == pytest.approx(3328.5, rel=1e-9)
    assert rec.first("REF").value == f"{PREFIX}/node.ENT"


def test_svg_and_pdf_carry_the_same_label(res, tmp_path):
    lab = make_label(res, "clinker")
    url = resolution_url("http://127.0.0.1:8000", lab.identifier)
    svg = render_svg(lab, url)
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "熟料" in texts and lab.identifier in texts and "待审核 PENDING REVIEW" in texts
    value = f"{lab.kgco2e_per_unit:,.0f}"
    assert value in texts
    assert root.get("width") == "60mm" and root.get("height") == "60mm"
    paths = write_label(lab, url, tmp_path)
    pdf = PdfReader(paths["pdf"])
    text = pdf.pages[0].extract_text()
    assert len(pdf.pages) == 1 and "熟料" in text and value in text and lab.identifier in text
    assert float(pdf.pages[0].mediabox.width) == pytest.approx(60 / 25.4 * 72, abs=0.5)
    # an approved label has no review mark, and its QR code still decodes
    lab.status = "approved"
    paths = write_label(lab, url, tmp_path / "approved", pdf=False)
    assert "PENDING" not in paths["svg"].read_text(encoding="utf-8")
    assert zxingcpp.read_barcodes(Image.open(paths["png"]))[0].text == url


def test_a_batch_label(res, node):
    b = batch_footprints(res, pd.DataFrame({"batch_id": ["B7"], "product": ["cement"], "period": ["2025-01"],
                                            "quantity": [250.0], "unit": ["t"]}))
    lab = make_label(res, "cement", batch=b.iloc[0].to_dict(), evidence=False)
    assert lab.identifier == f"{PREFIX}/label.batch.2025-01.cement.B7" and lab.kind == "batch"
    assert lab.total_tco2e == pytest.approx(250 * 3328.5 / 5000, rel=1e-12)
    assert lab.per_unit_direct_tco2e + lab.per_unit_indirect_tco2e == pytest.approx(lab.per_unit_tco2e, rel=1e-12)
    rec = label_record(lab)
    assert footprint_of_record(rec)["batch_id"] == "B7"
    assert footprint_of_record(rec)["output"] == 250.0
