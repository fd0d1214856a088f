"""notebooks/review_invoices.ipynb through papermill: a generated bill with two doubtful fields is
queued, the notebook's review desk accepts them by clicking, and the reviewed row reaches the lake
with the reviewer's name and the image linked."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from notebook_run import execute_notebook

from connectors import invoice_ocr as ocr
from connectors.invoice_ocr import ReviewQueue
from workbench.ingestion.review import submit
from workbench.lake.store import Lake

try:
    import invoice_images as ii
except ImportError:
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    import invoice_images as ii

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "review_invoices.ipynb"


def test_review_notebook_is_parameterised_and_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for name in ("lake", "queue", "enterprise", "reviewer", "auto_accept"):
        assert f"{name} = " in params[0].source
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_review_notebook_through_papermill(tmp_path):

    _, truth, _, page = ii.random_bill(21, layout="electricity", with_page=True)
    pdf = ii.render_pdf(page)
    res = ocr.read(pdf, raw_name="bill-21.pdf", known={"account_no": ["0000000001"]})
    assert [r["field"] for r in res.review] == ["account_no"]
    lake_root, queue = tmp_path / "lake", tmp_path / "review.db"
    q = ReviewQueue(queue)
    item_id = submit(Lake(lake_root), q, res, sender="scanner", enterprise="ent-nb")["item_id"]
    q.close()

    out = tmp_path / "review.ipynb"
    execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
                        parameters={"lake": str(lake_root), "queue": str(queue), "enterprise": "ent-nb",
                                    "reviewer": "papermill", "auto_accept": True})
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert f"item {item_id} account_no: accepted {truth['account_no']} (papermill)" in text
    assert f"item {item_id}: released" in text and "image in batch" in text
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)

    inv = Lake(lake_root, enterprise="ent-nb").retrieve("invoices")
    assert inv["reviewed_by"].tolist() == ["papermill"] and inv["account_no"].tolist() == [truth["account_no"]]
    with ReviewQueue(queue) as again:
        assert again.pending() == [] and again.item(item_id)["ingested_batch"] == inv["batch_id"].iloc[0]
