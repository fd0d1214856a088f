"""The product labels awaiting certification, and their publication to the identifier node.

A label is **submitted** as ``pending`` with its evidence (:class:`LabelStore.submit`); a reviewer
**approves** or **rejects** it with a comment (:meth:`LabelStore.approve`, :meth:`LabelStore.reject`
— who and when are kept; the review page checks the reviewer's role, this store records the
decision); an approved label is **published** by a separate call, :func:`publish`, which registers
its record at the identifier node and marks it ``published``.  Every step is an event
(``label_events``: label, time, who, action, status before and after, comment) in the same
transaction as the change, so the history of a label is complete.

::

    pending ──approve──► approved ──publish(label, node_client)──► published
       └─────reject────► rejected

Reads take the enterprise (``list(enterprise=…)``, filtered in the query), so a page that shows one
enterprise's labels never receives another's.  The store is SQLite by default, or any SQLAlchemy
URL (:mod:`workbench.core.sqlstore`).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable

import sqlalchemy as sa

from workbench.core.sqlstore import create_engine, create_tables
from workbench.identifiers.model import utc_timestamp
from workbench.products.errors import LabelError
from workbench.products.label import STATUSES, ProductLabel, label_record

__all__ = ["DEFAULT_URL", "LabelStore", "publish"]

DEFAULT_URL = "sqlite:///data/labels.db"

_meta = sa.MetaData()
_labels = sa.Table(
    "product_labels", _meta,
    sa.Column("label_id", sa.String(64), primary_key=True),
    sa.Column("enterprise_id", sa.String(128), nullable=False, index=True),
    sa.Column("identifier", sa.String(400), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("product", sa.String(128), nullable=False),
    sa.Column("batch_id", sa.String(200), nullable=False, default=""),
    sa.Column("period", sa.String(32), nullable=False),
    sa.Column("kgco2e_per_unit", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("label_json", sa.Text, nullable=False),
    sa.Column("evidence_json", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("decided_by", sa.String(200), nullable=False, default=""),
    sa.Column("decided_at", sa.String(40), nullable=False, default=""),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("published_at", sa.String(40), nullable=False, default=""),
    sa.Column("published_to", sa.String(400), nullable=False, default=""),
)
_events = sa.Table(
    "label_events", _meta,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("label_id", sa.String(64), nullable=False, index=True),
    sa.Column("enterprise_id", sa.String(128), nullable=False, index=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("from_status", sa.String(16), nullable=False, default=""),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, default=""),
)

_FIELDS = ("label_id", "enterprise_id", "identifier", "kind", "product", "batch_id", "period", "status",
           "created_by", "created_at", "decided_by", "decided_at", "comment", "published_at", "published_to")


def _clean(obj):
    """JSON-safe: non-finite floats → None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


class LabelStore:
    """Product labels and their review, in a SQL database (default ``sqlite:///data/labels.db``)."""

    def __init__(self, url: str = DEFAULT_URL):
        if "://" not in url:
            url = f"sqlite:///{url}"
        self.url = url
        self.engine = create_engine(url, error=LabelError)
        create_tables(_meta, self.engine, error=LabelError)

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.dispose()

    # ---------------------------------------------------------------- writes
    def submit(self, label: ProductLabel, *, who: str) -> ProductLabel:
        """Store ``label`` as ``pending`` (its evidence kept with it); returns it as stored."""
        if not who:
            raise LabelError("submit: who is submitting the label?")
        now = utc_timestamp()
        label.status, label.created_by, label.created_at = "pending", who, label.created_at or now
        label.decided_by = label.decided_at = label.comment = label.published_at = label.published_to = ""
        row = {k: getattr(label, k) for k in _FIELDS}
        row.update(kgco2e_per_unit=float(label.kgco2e_per_unit) if math.isfinite(label.kgco2e_per_unit) else 0.0,
                   label_json=json.dumps(_clean(label.as_dict(evidence=False)), ensure_ascii=False),
                   evidence_json=json.dumps(_clean(label.evidence), ensure_ascii=False, default=str))
        with self.engine.begin() as c:
            if c.execute(sa.select(_labels.c.label_id).where(_labels.c.label_id == label.label_id)).first():
                raise LabelError(f"label {label.label_id} is already stored")
            c.execute(_labels.insert().values(**row))
            self._event(c, label, who, "submit", "", "pending", "")
        return label

    def approve(self, label_id: str, *, who: str, comment: str = "") -> ProductLabel:
        """pending → approved, by ``who`` (a reviewer; the caller checks the role)."""
        return self._decide(label_id, who, comment, "approved")

    def reject(self, label_id: str, *, who: str, comment: str) -> ProductLabel:
        """pending → rejected, by ``who``; a rejection needs its reason."""
        if not (comment or "").strip():
            raise LabelError("a rejection needs a comment saying why")
        return self._decide(label_id, who, comment, "rejected")

    def _decide(self, label_id, who, comment, to) -> ProductLabel:
        if not who:
            raise LabelError(f"{to}: who decides?")
        now = utc_timestamp()
        with self.engine.begin() as c:
            cur = self._row(c, label_id)
            if cur["status"] != "pending":
                raise LabelError(f"label {label_id} is {cur['status']}, not pending: it cannot be {to}")
            c.execute(_labels.update().where(_labels.c.label_id == label_id)
                      .values(status=to, decided_by=who, decided_at=now, comment=comment or ""))
            lab = self._label(self._row(c, label_id))
            self._event(c, lab, who, "approve" if to == "approved" else "reject", "pending", to, comment or "")
        return lab

    def mark_published(self, label_id: str, *, who: str, node: str) -> ProductLabel:
        """approved → published (the record is at ``node``); :func:`publish` calls it after registering."""
        now = utc_timestamp()
        with self.engine.begin() as c:
            cur = self._row(c, label_id)
            if cur["status"] not in ("approved", "published"):
                raise LabelError(f"label {label_id} is {cur['status']}: only an approved label is published")
            c.execute(_labels.update().where(_labels.c.label_id == label_id)
                      .values(status="published", published_at=now, published_to=node))
            lab = self._label(self._row(c, label_id))
            self._event(c, lab, who, "publish", cur["status"], "published", node)
        return lab

    @staticmethod
    def _event(c, label, who, action, before, after, comment) -> None:
        c.execute(_events.insert().values(label_id=label.label_id, enterprise_id=label.enterprise_id,
                                          at=utc_timestamp(), who=who, action=action, from_status=before,
                                          to_status=after, comment=comment))

    # ---------------------------------------------------------------- reads
    @staticmethod
    def _row(c, label_id) -> dict:
        r = c.execute(sa.select(_labels).where(_labels.c.label_id == label_id)).mappings().first()
        if r is None:
            raise LabelError(f"no label {label_id!r}")
        return dict(r)

    @staticmethod
    def _label(row: dict, *, evidence: bool = True) -> ProductLabel:
        d = json.loads(row["label_json"])
        for k in ("kgco2e_per_unit", "declared_unit"):
            d.pop(k, None)
        d.update({k: row[k] for k in _FIELDS})
        d["evidence"] = json.loads(row["evidence_json"]) if evidence else {}
        for k in ("output", "per_unit_tco2e", "per_unit_direct_tco2e", "per_unit_indirect_tco2e", "total_tco2e"):
            d[k] = math.nan if d.get(k) is None else float(d[k])
        return ProductLabel(**d)

    def get(self, label_id: str, *, enterprise: str | None = None) -> ProductLabel:
        """One label with its evidence; with ``enterprise``, only if it is that enterprise's."""
        with self.engine.connect() as c:
            row = self._row(c, label_id)
        if enterprise is not None and row["enterprise_id"] != enterprise:
            raise LabelError(f"no label {label_id!r} of enterprise {enterprise}")
        return self._label(row)

    def list(self, *, enterprise: str | Iterable[str] | None = None, status: str | None = None,
             evidence: bool = False) -> list[ProductLabel]:
        """Labels, newest first; ``enterprise`` (an id or several) and ``status`` filter in the query."""
        if status is not None and status not in STATUSES:
            raise LabelError(f"status {status!r}: one of {', '.join(STATUSES)}")
        q = sa.select(_labels).order_by(_labels.c.created_at.desc(), _labels.c.label_id)
        if enterprise is not None:
            ents = [enterprise] if isinstance(enterprise, str) else list(enterprise)
            q = q.where(_labels.c.enterprise_id.in_(ents))
        if status is not None:
            q = q.where(_labels.c.status == status)
        with self.engine.connect() as c:
            rows = [dict(r) for r in c.execute(q).mappings()]
        return [self._label(r, evidence=evidence) for r in rows]

    def pending(self, *, enterprise: str | Iterable[str] | None = None) -> list[ProductLabel]:
        """The labels awaiting a decision."""
        return self.list(enterprise=enterprise, status="pending", evidence=True)

    def events(self, label_id: str) -> list[dict]:
        """The label's history, oldest first."""
        q = sa.select(_events).where(_events.c.label_id == label_id).order_by(_events.c.event_id)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]


def publish(label: ProductLabel | str, node_client, *, store: LabelStore | None = None, who: str = "",
            enterprise_identifier: str | None = None) -> str:
    """Register an approved label at the identifier node; returns its identifier.

    ``label`` is a :class:`ProductLabel` or (with ``store``) a label id; its current status is read
    from ``store`` when given, and must be ``approved`` (or ``published``: publishing again
    replaces the record, e.g. after the node lost it).  ``node_client`` is a
    :class:`workbench.identifiers.Client` authenticated as someone who may write the prefix.  The
    record is :func:`~.label.label_record`; afterwards the store marks the label ``published``.

    Raises
    ------
    LabelError
        The label is not approved (pending, rejected), or unknown to the store.
    """
    if isinstance(label, str):
        if store is None:
            raise LabelError("publish by label id needs the store")
        label = store.get(label)
    elif store is not None:
        label = store.get(label.label_id)
    if label.status not in ("approved", "published"):
        raise LabelError(f"label {label.label_id} ({label.identifier}) is {label.status}: only an approved label "
                         "is published")
    node_client.register(label_record(label, enterprise_identifier=enterprise_identifier), overwrite=True)
    if store is not None:
        store.mark_published(label.label_id, who=who or "publish", node=getattr(node_client, "base_url", ""))
    return label.identifier
