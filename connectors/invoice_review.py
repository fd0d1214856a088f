"""The review desk for invoice fields below the trust threshold (issue 12, point 6).

:class:`ReviewBoard` lists the open fields of a :class:`connectors.invoice_ocr.ReviewQueue` —
for each, the crop of the image where it was read, the value read, its confidence and why, and the
suggestion — and lets a named reviewer **accept** the suggestion or **correct** it.  When the last
open field of an item is settled, ``on_release(item_id)`` is called: in a notebook that is
``workbench.ingestion.review.release(lake, queue, item_id, released_by=…)``, which ingests the
reviewed row into the lake with the reviewer's name and time, the raw image linked (connectors
import only the core, so the lake is reached through that callback).

The logic (:meth:`ReviewBoard.accept`, :meth:`ReviewBoard.correct`, :meth:`ReviewBoard.rows`) works
without a display; :meth:`ReviewBoard.widget` builds the ipywidgets view over it
(``notebooks/review_invoices.ipynb``).
"""
from __future__ import annotations

import io
from collections.abc import Callable

from .invoice_ocr import ReviewQueue

__all__ = ["ReviewBoard"]


def _shown(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return str(value)


class ReviewBoard:
    """Accept / correct the queued fields of ``queue`` as ``reviewer``.

    ``on_release(item_id)``: called once an item has no open field (e.g. ingest it into the lake);
    its return value is kept in :attr:`released` (item id → value)."""

    def __init__(self, queue: ReviewQueue, *, reviewer: str = "", on_release: Callable | None = None):
        self.queue = queue
        self.reviewer = reviewer
        self.on_release = on_release
        self.released: dict = {}
        self.log: list[str] = []
        self._view = None

    # ------------------------------------------------------------------ logic
    def rows(self) -> list[dict]:
        """The open fields: ``item_id, raw_name, field, suggested, shown, confidence, reason, box``."""
        return [{**p, "shown": _shown(p["suggested"])} for p in self.queue.pending()]

    def crop_png(self, item_id: int, field: str, *, max_width: int = 520, page=None) -> bytes:
        """The crop of the field's box as PNG bytes (scaled down to ``max_width``)."""
        img = self.queue.crop(item_id, field, page=page)
        if img.width > max_width:
            img = img.resize((max_width, max(1, round(img.height * max_width / img.width))))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    def _who(self, reviewer: str | None) -> str:
        who = (reviewer if reviewer is not None else self.reviewer) or ""
        if not str(who).strip():
            raise ValueError("enter the reviewer's name first")
        return str(who).strip()

    def accept(self, item_id: int, field: str, *, reviewer: str | None = None) -> dict:
        """The suggestion is right: record it as checked by the reviewer."""
        who = self._who(reviewer)
        row = next((p for p in self.queue.pending(item_id) if p["field"] == field), None)
        if row is None:
            raise KeyError(f"item {item_id} has no open field {field!r}")
        if row["suggested"] is None:
            raise ValueError(f"{field}: nothing was read — type the value and use Correct")
        done = self.queue.resolve(item_id, field, row["suggested"], who)
        self.log.append(f"item {item_id} {field}: accepted {_shown(done['value'])} ({who})")
        self._maybe_release(item_id)
        return done

    def correct(self, item_id: int, field: str, value, *, reviewer: str | None = None) -> dict:
        """The value is ``value`` (validated by the queue: numbers, dates, months, units, items)."""
        who = self._who(reviewer)
        done = self.queue.resolve(item_id, field, value, who)
        self.log.append(f"item {item_id} {field}: corrected to {_shown(done['value'])} ({who})")
        self._maybe_release(item_id)
        return done

    def _maybe_release(self, item_id: int) -> None:
        if self.queue.pending(item_id) or item_id in self.released:
            return
        if self.on_release is not None:
            self.released[item_id] = self.on_release(item_id)
            self.log.append(f"item {item_id}: released")
        else:
            self.released[item_id] = None

    # ------------------------------------------------------------------ view
    def widget(self):
        """An ipywidgets view: reviewer name, then per open field the crop, the value read and
        Accept / Correct; a log line under it."""
        import ipywidgets as w

        name = w.Text(value=self.reviewer, description="Reviewer", placeholder="your name")
        status = w.HTML()
        box = w.VBox()

        def set_name(change):
            self.reviewer = change["new"]
        name.observe(set_name, names="value")

        def refresh(message: str = ""):
            cards = []
            pages: dict = {}
            for r in self.rows():
                if r["item_id"] not in pages:
                    pages[r["item_id"]] = self.queue.page(r["item_id"])
                img = w.Image(value=self.crop_png(r["item_id"], r["field"], page=pages[r["item_id"]]),
                              format="png")
                info = w.HTML(f"<b>{r['raw_name'] or 'item ' + str(r['item_id'])}</b> · <b>{r['field']}</b><br>"
                              f"read: <code>{_shown(r['suggested'])}</code> · confidence {r['confidence']:.3f}"
                              f"<br><small>{r['reason'] or ''}</small>")
                value = w.Text(value="" if r["suggested"] is None else str(r["suggested"]),
                               description="value", layout=w.Layout(width="320px"))
                ok = w.Button(description="Accept", button_style="success", disabled=r["suggested"] is None)
                fix = w.Button(description="Correct", button_style="warning")

                def on_accept(_, r=r):
                    act(lambda: self.accept(r["item_id"], r["field"]))

                def on_fix(_, r=r, value=value):
                    act(lambda: self.correct(r["item_id"], r["field"], value.value))
                ok.on_click(on_accept)
                fix.on_click(on_fix)
                cards.append(w.VBox([info, img, w.HBox([value, ok, fix])],
                                    layout=w.Layout(border="1px solid #ccc", padding="6px", margin="4px 0")))
            box.children = cards or [w.HTML("<i>nothing to review</i>")]
            status.value = message or f"{len(cards)} field(s) to review"

        def act(fn):
            try:
                fn()
                refresh(self.log[-1] if self.log else "")
            except (ValueError, KeyError) as exc:
                status.value = f"<span style='color:#b00'>{exc}</span>"
        refresh()
        self._view = w.VBox([name, status, box])
        self._view.refresh = refresh
        return self._view
