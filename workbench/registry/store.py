"""Master data, one home (seed §7.1): enterprises, their boundary nodes with the 分项 class, meters
with validity intervals, products and known suppliers/accounts — in one SQL database (SQLite by
default, PostgreSQL by URL), every change audited.

=================  ===========================================================================
``enterprises``    ``enterprise_id`` (short id, :func:`~workbench.registry.codes.check_enterprise_id`),
                   names zh/en, unified social credit code, region, industry code (GB/T 4754),
                   sector, identifier prefix, time zone, other attributes (JSON)
``boundary_nodes`` per enterprise: node_id, parent_id, level, names, 分项 class, identifier
``meters``         per enterprise: meter_id, serial, node, source, item, unit, quantity,
                   register (interval | cumulative), rollover, ``installed``/``removed`` (the
                   validity interval: a replaced meter keeps its rows and history, its
                   successor ``replaces`` it), is_main, identifier, ``device_id`` (the collection
                   device that reports it, when one does — an explicit link, not a naming rule)
``products``       per enterprise: product, the output column in its production data, unit, names
``accounts``       per enterprise: supplier accounts and meter numbers on bills (for invoices):
                   account, supplier, source, item, unit, node
``registry_audit`` every insert, update and delete: who, what, table, enterprise, key, when,
                   before and after
=================  ===========================================================================

Every read takes the enterprise: one enterprise's reads never return another's rows.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from workbench.core.errors import WorkbenchError
from workbench.registry.codes import check_enterprise_id

__all__ = ["MasterData", "RegistryError", "SyncCounts"]


class RegistryError(WorkbenchError, ValueError):
    """Master data that cannot be stored or found; ``problems`` (file, row, column, message)
    when it came from files."""

    def __init__(self, message: str, problems: list | None = None):
        super().__init__(message)
        self.problems = problems or []


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None, microsecond=0)


def _plain(v):
    """A value as stored and compared: NaN/NaT/None → None, numpy scalars → Python, dates → ISO."""
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is pd.NaT:
        return None
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        v = v.item()
    if isinstance(v, pd.Timestamp | _dt.datetime | _dt.date):
        return pd.Timestamp(v).date().isoformat()
    return v


@dataclass
class SyncCounts:
    """What a synchronisation of one table changed."""

    created: list = field(default_factory=list)
    updated: list = field(default_factory=list)
    deleted: list = field(default_factory=list)
    kept: list = field(default_factory=list)           # stored, not in the new data, not pruned
    unchanged: int = 0

    def as_dict(self) -> dict:
        return {"created": len(self.created), "updated": len(self.updated), "deleted": len(self.deleted),
                "kept": len(self.kept), "unchanged": self.unchanged}


_ENTERPRISE_COLUMNS = ("name_zh", "name_en", "uscc", "region", "industry_code", "sector", "identifier_prefix",
                       "timezone", "attributes")
NODE_COLUMNS = ("parent_id", "level", "name_zh", "name_en", "classification", "identifier")
METER_COLUMNS = ("serial", "node_id", "source", "item", "unit", "quantity", "register", "rollover", "installed",
                 "removed", "replaces", "is_main", "identifier", "device_id")
PRODUCT_COLUMNS = ("column", "unit", "name_zh", "name_en", "node_id")
ACCOUNT_COLUMNS = ("supplier", "source", "item", "unit", "node_id", "note")


class MasterData:
    """The master-data store (see the module doc).  ``url``: a SQLAlchemy URL."""

    def __init__(self, url: str = "sqlite:///data/registry.db", *, echo: bool = False):
        from workbench.core.sqlstore import create_engine, create_tables

        if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and "/" in url[len("sqlite:///"):]:
            import os

            os.makedirs(os.path.dirname(url[len("sqlite:///"):]) or ".", exist_ok=True)
        self.url = url
        self.engine = create_engine(url, echo=echo, error=RegistryError)
        md = self.metadata = sa.MetaData()
        s = sa.String
        self.t_enterprises = sa.Table(
            "enterprises", md,
            sa.Column("enterprise_id", s(64), primary_key=True),
            sa.Column("name_zh", s(300), nullable=False), sa.Column("name_en", s(300), nullable=False),
            sa.Column("uscc", s(18), nullable=False), sa.Column("region", s(16), nullable=False),
            sa.Column("industry_code", s(8), nullable=False), sa.Column("sector", s(64), nullable=False),
            sa.Column("identifier_prefix", s(64), nullable=False), sa.Column("timezone", s(64), nullable=False),
            sa.Column("attributes", sa.JSON, nullable=False),
            sa.Column("created", sa.DateTime, nullable=False), sa.Column("updated", sa.DateTime, nullable=False))

        def per_enterprise(name, key, columns, types):
            return sa.Table(
                name, md,
                sa.Column("enterprise_id", s(64), sa.ForeignKey("enterprises.enterprise_id"), primary_key=True),
                sa.Column(key, s(128), primary_key=True),
                *[sa.Column(c, types.get(c, s(400)), nullable=True) for c in columns])

        self.t_nodes = per_enterprise("boundary_nodes", "node_id", NODE_COLUMNS, {})
        self.t_meters = per_enterprise("meters", "meter_id", METER_COLUMNS,
                                     {"rollover": sa.Float, "is_main": sa.Boolean, "installed": s(10),
                                      "removed": s(10)})
        self.t_products = per_enterprise("products", "product", PRODUCT_COLUMNS, {})
        self.t_accounts = per_enterprise("accounts", "account", ACCOUNT_COLUMNS, {})
        self.t_audit = sa.Table(
            "registry_audit", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("who", s(300), nullable=False), sa.Column("what", s(16), nullable=False),
            sa.Column("tbl", s(32), nullable=False), sa.Column("enterprise_id", s(64), nullable=False, index=True),
            sa.Column("key", s(128), nullable=False), sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("before", sa.JSON, nullable=True), sa.Column("after", sa.JSON, nullable=True))
        create_tables(md, self.engine, error=RegistryError)
        self._tables = {"boundary_nodes": (self.t_nodes, "node_id", NODE_COLUMNS),
                        "meters": (self.t_meters, "meter_id", METER_COLUMNS),
                        "products": (self.t_products, "product", PRODUCT_COLUMNS),
                        "accounts": (self.t_accounts, "account", ACCOUNT_COLUMNS)}

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writes
    def _audit(self, conn, who, what, tbl, eid, key, before, after, at) -> None:
        conn.execute(sa.insert(self.t_audit).values(who=who, what=what, tbl=tbl, enterprise_id=eid, key=key, at=at,
                                                  before=before, after=after))

    def put_enterprise(self, record: Mapping, *, who: str, conn=None) -> str:
        """Create or update one enterprise (``record`` holds ``enterprise_id`` and the columns);
        returns ``created``, ``updated`` or ``unchanged``."""
        if conn is None:
            with self.engine.begin() as c:
                return self.put_enterprise(record, who=who, conn=c)
        eid = check_enterprise_id(record.get("enterprise_id"))
        new = {c: (record.get(c) if c == "attributes" else str(record.get(c) or "")) for c in _ENTERPRISE_COLUMNS}
        new["attributes"] = json.loads(json.dumps(new["attributes"] or {}, default=str, ensure_ascii=False))
        t = self.t_enterprises
        row = conn.execute(sa.select(t).where(t.c.enterprise_id == eid)).first()
        now = _now()
        if row is None:
            conn.execute(sa.insert(t).values(enterprise_id=eid, created=now, updated=now, **new))
            self._audit(conn, who, "create", "enterprises", eid, eid, None, new, now)
            return "created"
        old = {c: row._mapping[c] for c in _ENTERPRISE_COLUMNS}
        if old == new:
            return "unchanged"
        conn.execute(sa.update(t).where(t.c.enterprise_id == eid).values(updated=now, **new))
        self._audit(conn, who, "update", "enterprises", eid, eid, old, new, now)
        return "updated"

    def sync(self, table: str, enterprise_id: str, rows: Iterable[Mapping], *, who: str, prune: bool = False,
             keep: Iterable[str] = (), conn=None) -> SyncCounts:
        """Make ``table``'s rows of the enterprise those of ``rows`` (keyed by the table's key):
        new rows inserted, changed ones updated, each audited with before/after; stored rows not in
        ``rows`` are deleted with ``prune``, else kept (and reported).  ``keep``: columns the source
        does not carry (a file without a ``device_id`` column) — a stored row keeps its values there
        (e.g. a device link the platform wrote), a new row gets none."""
        if conn is None:
            with self.engine.begin() as c:
                return self.sync(table, enterprise_id, rows, who=who, prune=prune, keep=keep, conn=c)
        keep = set(keep)
        t, key, columns = self._tables[table]
        have = {r._mapping[key]: {c: _plain(r._mapping[c]) for c in columns}
                for r in conn.execute(sa.select(t).where(t.c.enterprise_id == enterprise_id))}
        out, now = SyncCounts(), _now()
        seen = set()
        for r in rows:
            k = str(r[key])
            seen.add(k)
            old = have.get(k)
            new = {c: old[c] if (c in keep and old is not None) else _plain(r.get(c)) for c in columns}
            if old is None:
                conn.execute(sa.insert(t).values(enterprise_id=enterprise_id, **{key: k}, **new))
                self._audit(conn, who, "create", table, enterprise_id, k, None, new, now)
                out.created.append(k)
            elif old != new:
                conn.execute(sa.update(t).where(t.c.enterprise_id == enterprise_id, getattr(t.c, key) == k)
                             .values(**new))
                self._audit(conn, who, "update", table, enterprise_id, k, old, new, now)
                out.updated.append(k)
            else:
                out.unchanged += 1
        for k in sorted(set(have) - seen):
            if prune:
                conn.execute(sa.delete(t).where(t.c.enterprise_id == enterprise_id, getattr(t.c, key) == k))
                self._audit(conn, who, "delete", table, enterprise_id, k, have[k], None, now)
                out.deleted.append(k)
            else:
                out.kept.append(k)
        return out

    def set_meter_devices(self, enterprise_id: str, links: Mapping[str, str], *, who: str) -> list[str]:
        """Write meters' ``device_id`` links ``{meter_id: device_id}`` in one transaction, each change
        audited (before/after as :meth:`sync` records them); returns the meters whose link changed.
        An unknown meter is a :class:`RegistryError` and nothing is written."""
        eid = self._require(enterprise_id)
        t = self.t_meters
        changed, now = [], _now()
        with self.engine.begin() as conn:
            rows = {r._mapping["meter_id"]: {c: _plain(r._mapping[c]) for c in METER_COLUMNS}
                    for r in conn.execute(sa.select(t).where(t.c.enterprise_id == eid,
                                                             t.c.meter_id.in_([str(m) for m in links])))}
            unknown = sorted(str(m) for m in links if str(m) not in rows)
            if unknown:
                raise RegistryError(f"enterprise {eid!r} has no meters {unknown}")
            for meter_id, device_id in sorted(links.items()):
                old = rows[str(meter_id)]
                new = {**old, "device_id": _plain(device_id or None)}
                if new == old:
                    continue
                conn.execute(sa.update(t).where(t.c.enterprise_id == eid, t.c.meter_id == str(meter_id))
                             .values(device_id=new["device_id"]))
                self._audit(conn, who, "update", "meters", eid, str(meter_id), old, new, now)
                changed.append(str(meter_id))
        return changed

    # ------------------------------------------------------------------ reads (always per enterprise)
    def _require(self, enterprise_id: str) -> str:
        eid = check_enterprise_id(enterprise_id)
        with self.engine.connect() as conn:
            if conn.execute(sa.select(self.t_enterprises.c.enterprise_id)
                            .where(self.t_enterprises.c.enterprise_id == eid)).first() is None:
                known = ", ".join(self.enterprise_ids()) or "none yet; see `workbench registry import`"
                raise RegistryError(f"unknown enterprise {eid!r} (known: {known})")
        return eid

    def enterprise_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(self.t_enterprises.c.enterprise_id)
                                     .order_by(self.t_enterprises.c.enterprise_id)).scalars())

    def enterprise(self, enterprise_id: str) -> dict:
        """One enterprise's record (the attributes merged in, as its enterprise.json had them)."""
        eid = self._require(enterprise_id)
        with self.engine.connect() as conn:
            r = dict(conn.execute(sa.select(self.t_enterprises).where(self.t_enterprises.c.enterprise_id == eid))
                     .first()._mapping)
        attributes = r.pop("attributes") or {}
        return {**attributes, **{k: v for k, v in r.items() if v != "" or k not in attributes}}

    def record(self, enterprise_id: str) -> dict:
        """The enterprise's record as its ``enterprise.json`` reads: :meth:`enterprise` with its
        ``products`` (product, column, unit, names, node) when it has any — what a report made
        from the lake alone needs."""
        rec = self.enterprise(enterprise_id)
        products = self.table("products", rec["enterprise_id"]).drop(columns="enterprise_id")
        if len(products):
            rec["products"] = [{k: v for k, v in p.items() if v not in ("", None)}
                               for p in products.fillna("").to_dict("records")]
        return rec

    def enterprises_table(self) -> pd.DataFrame:
        cols = ["enterprise_id", "name_zh", "name_en", "region", "industry_code", "sector", "identifier_prefix"]
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(sa.select(*[getattr(self.t_enterprises.c, c) for c in cols])
                                             .order_by(self.t_enterprises.c.enterprise_id)).all(), columns=cols)

    def table(self, table: str, enterprise_id: str) -> pd.DataFrame:
        """``table``'s rows of one enterprise (key column first)."""
        eid = self._require(enterprise_id)
        t, key, columns = self._tables[table]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.enterprise_id == eid).order_by(getattr(t.c, key))).all()
        return pd.DataFrame([dict(r._mapping) for r in rows], columns=["enterprise_id", key, *columns])

    def boundary(self, enterprise_id: str):
        """The enterprise's :class:`workbench.core.boundary.Boundary`."""
        from workbench.core.boundary import Boundary

        nodes = self.table("boundary_nodes", enterprise_id).drop(columns="enterprise_id")
        if nodes.empty:
            raise RegistryError(f"enterprise {enterprise_id!r} has no boundary nodes")
        return Boundary(nodes.fillna(""))

    def meters(self, enterprise_id: str, *, at=None) -> pd.DataFrame:
        """The enterprise's meter register (the columns of ``meters.csv``); ``at``: only the meters
        in service on that date (installed ≤ at, removed empty or > at)."""
        m = self.table("meters", enterprise_id).drop(columns="enterprise_id")
        if at is not None and len(m):
            day = pd.Timestamp(at).date().isoformat()
            m = m[(m["installed"].fillna("") <= day) & (m["removed"].isna() | (m["removed"].fillna("") > day))]
        return m.reset_index(drop=True)

    def audit_log(self, enterprise_id: str | None = None) -> pd.DataFrame:
        q = sa.select(self.t_audit).order_by(self.t_audit.c.id)
        if enterprise_id is not None:
            q = q.where(self.t_audit.c.enterprise_id == check_enterprise_id(enterprise_id))
        with self.engine.connect() as conn:
            return pd.DataFrame([dict(r._mapping) for r in conn.execute(q)])
