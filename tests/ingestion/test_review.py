"""Reviewed invoices into the lake (workbench.ingestion.review) and the review desk (connectors.invoice_review).

Bills are rendered PDFs with a text layer (tests/invoice_images.py: known truth, no OCR needed, so
these tests are quick); the fields under review are made so on purpose: an account number and a
customer name that the master data does not know.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from connectors import invoice_ocr as ocr
from connectors.invoice_ocr import ReviewPending, ReviewQueue
from connectors.invoice_review import ReviewBoard
from workbench.inventory.sources import invoice_candidates
from workbench.lake.store import Lake

try:
    import invoice_images as ii
except ImportError:
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    import invoice_images as ii

from workbench.ingestion.review import release, release_ready, submit

ENT = "ent-review"


def _bill(seed: int, layout: str):
    _, truth, _, page = ii.random_bill(seed, layout=layout, with_page=True)
    return ii.render_pdf(page), truth


def _doubtful(seed=21, layout="electricity"):
    """A bill whose account and customer the master data does not know: both go to review."""
    pdf, truth = _bill(seed, layout)
    known = {"account_no": ["0000000001"], "customer": ["别的公司有限公司"], "supplier": [truth["supplier"]]}
    res = ocr.read(pdf, raw_name=f"bill-{seed}.pdf", known=known)
    return pdf, truth, res


def test_submit_review_release_into_the_lake(tmp_path):
    lake = Lake(tmp_path / "lake")
    q = ReviewQueue(tmp_path / "review.db")
    pdf, truth, res = _doubtful()
    assert {r["field"] for r in res.review} == {"account_no", "customer"}
    assert res.data["account_no"].isna().all() and res.data["supplier"].iloc[0] == truth["supplier"]

    first = submit(lake, q, res, sender="scanner-1", enterprise=ENT)
    rep, item_id = first["report"], first["item_id"]
    assert rep.rows_quarantined == 1 and rep.rows_curated == 0 and item_id is not None
    ent = lake.for_enterprise(ENT)
    assert ent.retrieve("invoices").empty                               # nothing trusted yet
    qrow = ent.sql("SELECT batch_id, reason, payload FROM quarantine")
    assert list(qrow["batch_id"]) == [rep.batch_id] and "needs review" in qrow["reason"].iloc[0]
    assert q.item(item_id)["batch_id"] == rep.batch_id and q.item(item_id)["enterprise"] == ENT

    released = []
    board = ReviewBoard(q, on_release=lambda i: released.append(i) or release(lake, q, i, released_by="alice"))
    rows = {r["field"]: r for r in board.rows()}
    assert rows["account_no"]["suggested"] == truth["account_no"]
    with pytest.raises(ValueError, match="reviewer"):
        board.accept(item_id, "account_no")                              # no name, no record
    board.reviewer = "alice"
    crop = Image.open(io.BytesIO(board.crop_png(item_id, "account_no")))
    page = q.page(item_id)
    assert crop.width < page.width / 2 and crop.height < page.height / 4   # the field, not the page
    board.accept(item_id, "account_no")                                 # a new account, read right
    assert released == [] and q.pending(item_id)
    with pytest.raises(ReviewPending):
        release(lake, q, item_id, released_by="alice")
    board.correct(item_id, "customer", truth["customer"], reviewer="bob")
    assert released == [item_id] and q.pending() == []

    inv = ent.retrieve("invoices")
    assert len(inv) == 1
    row = inv.iloc[0]
    for f in ("period", "supplier", "customer", "account_no", "item", "unit", "currency"):
        assert row[f] == truth[f], f
    for f in ("quantity", "unit_price", "amount"):
        assert row[f] == pytest.approx(truth[f]), f
    assert row["reviewed_by"] == "alice, bob" and row["reviewed_at"]
    assert row["image_batch"] == rep.batch_id and row["review_item"] == item_id
    assert ent.read_raw(row["image_batch"]) == pdf                      # the raw image stays linked
    record = json.loads(ent.read_raw(row["batch_id"]))                 # the review decision, as stored
    assert {f["field"]: f["reviewer"] for f in record["fields"]} == {"account_no": "alice", "customer": "bob"}
    assert record["image_sha256"] == res.sha256 == q.item(item_id)["sha256"]
    assert q.item(item_id)["ingested_batch"] == row["batch_id"]
    assert [e["action"] for e in q.history(item_id)][-2:] == ["released", "ingested"]

    again = release(lake, q, item_id, released_by="alice")              # a second release changes nothing
    assert again.status == "duplicate_upload" and len(ent.retrieve("invoices")) == 1
    assert release_ready(lake, q, released_by="alice") == []


def test_trusted_bill_goes_straight_in_and_water_is_invoice_data_only(tmp_path):
    lake = Lake(tmp_path / "lake")
    q = ReviewQueue(":memory:")
    pdf, truth = _bill(4, "water")
    res = ocr.read(pdf, raw_name="water.pdf")
    assert not res.needs_review, res.review
    out = submit(lake, q, res, sender="mailbox")
    assert out["item_id"] is None and out["report"].rows_curated == 1 and q.items() == []
    inv = lake.retrieve("invoices")
    assert inv["item"].tolist() == ["water"] and inv["unit"].tolist() == ["m3"]
    assert inv["quantity"].iloc[0] == truth["quantity"]
    # water has no emission factor: the inventory's bill candidates leave it out instead of failing
    assert invoice_candidates(lake, [truth["period"]], "ENT").empty


def test_release_without_a_recorded_batch_stores_the_image_first(tmp_path):
    """A queue filled outside :func:`submit` (e.g. by an older scanner script): the release stores
    the image through the ordinary path before the reviewed row, so it stays linked."""
    lake = Lake(tmp_path / "lake")
    q = ReviewQueue(tmp_path / "q.db")
    pdf, truth, res = _doubtful(seed=33, layout="gas")
    item_id = q.put(res, sender="legacy")
    for p in q.pending(item_id):
        q.resolve(item_id, p["field"], truth[p["field"]], "carol")
    (rep,) = release_ready(lake, q, released_by="carol")
    row = lake.retrieve("invoices").iloc[0]
    assert row["image_batch"] != rep.batch_id and lake.read_raw(row["image_batch"]) == pdf
    assert lake.sql("SELECT batch_id FROM quarantine")["batch_id"].tolist() == [row["image_batch"]]
    with pytest.raises(ValueError, match="released_by"):
        release(lake, q, item_id, released_by=" ")
