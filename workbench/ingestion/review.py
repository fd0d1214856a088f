"""Reviewed invoices into the lake (seed §7.2 d, issue 12 point 6).

An invoice read with fields below the trust threshold goes to the lake like any other result — its
image in the raw zone, its row in quarantine ("needs review") — and to a review queue
(:class:`connectors.invoice_ocr.ReviewQueue`, used here duck-typed: this layer never imports a
connector).  A person accepts or corrects each doubtful field (``queue.resolve``: who and when);
:func:`release` then takes the completed row out of the queue and ingests it through the one
write path:

* the released batch's raw bytes are the review record itself (JSON: the values, the suggestions
  they replace, reviewer and time of each field, the image's SHA-256 and lake batch), so the
  decision is kept as immutably as any other arrival;
* the curated ``invoices`` row carries ``reviewed_by``, ``reviewed_at``, ``review_item``,
  ``image_sha256`` and ``image_batch`` — ``lake.read_raw(image_batch)`` gives the image back, and
  the quarantined row of that batch is the one this row replaces;
* the queue records the batch that took it (``ingested_batch``), so a release is done once.

:func:`submit` is the way in (ingest, and queue what needs review, linked to its batch).
"""
from __future__ import annotations

import json

from workbench.core.errors import WorkbenchError
from workbench.core.results import ConnectorResult

from .pipeline import ingest

__all__ = ["ReviewError", "release", "release_ready", "submit"]


class ReviewError(WorkbenchError, RuntimeError):
    """A review item cannot be released into the lake (not complete, or its image is missing)."""


def submit(lake, queue, result, *, sender: str, enterprise: str | None = None) -> dict:
    """Ingest an invoice ``result``; when it needs review, queue it linked to its lake batch.

    Returns ``{"report": IngestReport, "item_id": int | None}``."""
    report = ingest(lake, result, sender=sender, enterprise=enterprise)
    item_id = None
    if result.metadata.get("needs_review"):
        batch = report.duplicate_of or report.batch_id
        item_id = queue.put(result, sender=sender, batch_id=batch, enterprise=enterprise or lake.enterprise)
    return {"report": report, "item_id": item_id}


def _image_batch(lake, queue, item: dict, released, enterprise) -> str:
    """The lake batch holding the item's image: recorded at :func:`submit`, else stored now (the
    image through the ordinary path, its row quarantined as needing review)."""
    if item.get("batch_id"):
        return item["batch_id"]
    data = released.data.drop(columns=[c for c in ("reviewed_by", "reviewed_at", "review_item", "image_sha256",
                                                   "image_batch") if c in released.data]).copy()
    data["needs_review"] = True
    meta = {k: v for k, v in item["metadata"].items() if k not in ("sha256",)}
    meta["needs_review"] = True
    original = ConnectorResult(data, meta, kind="invoice", raw=queue.raw(item["item_id"]), raw_name=item["raw_name"])
    report = ingest(lake, original, sender=str(item.get("queued_by") or "review"), enterprise=enterprise)
    return report.duplicate_of or report.batch_id


def release(lake, queue, item_id: int, *, released_by: str, enterprise: str | None = None):
    """Ingest the reviewed row of ``item_id`` into ``lake`` (see the module doc); returns the
    :class:`~workbench.ingestion.pipeline.IngestReport`.  A second call ingests nothing new (the
    same review record is a duplicate upload).  Raises the queue's ``ReviewPending`` while a field
    is still open."""
    if not released_by or not str(released_by).strip():
        raise ValueError("released_by: who releases the reviewed invoice is required")
    item = queue.item(item_id)
    enterprise = enterprise or item.get("enterprise") or None
    released = queue.release(item_id, released_by=released_by)
    image_batch = _image_batch(lake, queue, item, released, enterprise)
    data = released.data.copy()
    data["image_batch"] = image_batch
    meta = released.metadata
    record = {"review_item": int(item_id), "image_sha256": item["sha256"], "image_batch": image_batch,
              "image_name": item.get("raw_name"), "released_by": str(released_by),
              "released_at": meta.get("released_at"),
              "fields": [{k: r.get(k) for k in ("field", "value", "suggested", "ocr_confidence", "reviewer",
                                                "resolved_at")} for r in meta.get("reviewed", [])],
              "row": json.loads(data.to_json(orient="records", force_ascii=False))[0]}
    raw = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")
    out_meta = {"connector": "invoice_review", "source": "invoice-review", "origin": f"review item {item_id}",
                "needs_review": False, "review": [], "reviewed": meta.get("reviewed", []),
                "image_sha256": item["sha256"], "image_batch": image_batch, "records": 1,
                "threshold": meta.get("threshold"), "engine": meta.get("engine")}
    result = ConnectorResult(data, out_meta, kind="invoice", raw=raw,
                             raw_name=f"review-{item_id}-{item['sha256'][:12]}.json")
    report = ingest(lake, result, sender=str(released_by), enterprise=enterprise)
    queue.mark_ingested(item_id, report.duplicate_of or report.batch_id, actor=str(released_by))
    return report


def release_ready(lake, queue, *, released_by: str, enterprise: str | None = None) -> list:
    """Release every item whose fields are all reviewed and that is not in the lake yet."""
    reports = []
    for it in queue.items(open_only=True):
        if it["pending"] == 0:
            reports.append(release(lake, queue, it["item_id"], released_by=released_by, enterprise=enterprise))
    return reports
