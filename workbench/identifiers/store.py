"""Handle record storage for the enterprise identifier node (seed §10.2.2): SQLAlchemy Core.

One store, any SQLAlchemy URL (``sqlite:///path`` by default use; PostgreSQL with the same code).
Tables:

* ``handles(key, handle, created, updated)`` — ``key`` is :attr:`Identifier.key` (ASCII lower-cased),
  ``handle`` the spelling it was registered with;
* ``values(key, idx, type, format, data JSON, ttl, timestamp, admin_read, admin_write, pub_read,
  pub_write, refs JSON)`` — one row per Handle value (``refs`` keeps :attr:`HandleValue.references`);
* ``audit(id, who, what, handle, at, before JSON, after JSON)`` — one row per change, written in
  the same transaction as the change;
* ``refusals(id, at, client, who, method, path, status, rc, reason)`` — the node's security log:
  one row per request it refused (invalid input, failed or missing authentication, insufficient
  permissions, rate limiting), written by :meth:`HandleStore.record_refusals` and read with
  :meth:`HandleStore.refusals`.

Every write runs in ONE transaction: a failing value, a failed permission check (``check=``
callback) or a constraint violation leaves nothing written.  HS_SECKEY secrets are stored hashed
(``hashlib.scrypt`` with a random salt, text form ``scrypt$n$r$p$salt$hash``), never readable by
the public, and verified in constant time (:func:`verify_secret`); :meth:`HandleStore.verify`
spends one scrypt of the store's cost whether or not the user exists, so its timing does not tell
which users exist.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence

import sqlalchemy as sa

from workbench.core.errors import WorkbenchError
from workbench.core.sqlstore import create_engine, create_tables, is_memory
from workbench.identifiers.model import (
    HandleRecord,
    HandleValue,
    HandleValueError,
    Identifier,
    IdentifierError,
    admin_value,
    parse_identifier,
    utc_timestamp,
)

__all__ = [
    "HandleExists",
    "HandleNotFound",
    "HandleStore",
    "InvalidValue",
    "StoreError",
    "ValueExists",
    "ValuesNotFound",
    "hash_secret",
    "is_secret_hash",
    "same_values",
    "value_digest",
    "verify_secret",
]

SECRET_TYPE = "HS_SECKEY"


# --------------------------------------------------------------------------- errors


class StoreError(WorkbenchError):
    """A store operation refused; ``response_code`` is the Handle REST responseCode."""

    response_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class HandleNotFound(StoreError):
    response_code = 100


class HandleExists(StoreError):
    response_code = 101


class ValuesNotFound(StoreError):
    response_code = 200


class ValueExists(StoreError):
    response_code = 201


class InvalidValue(StoreError):
    response_code = 202


# --------------------------------------------------------------------------- secrets

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_secret(secret: str, *, n: int = _SCRYPT_N, r: int = _SCRYPT_R, p: int = _SCRYPT_P) -> str:
    """``scrypt$n$r$p$<salt b64>$<hash b64>`` of ``secret`` (UTF-8) with a fresh 16-byte salt."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode("ascii")
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(digest)}"


def _parse_hash(stored: str):
    parts = stored.split("$") if isinstance(stored, str) else []
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None
    if n < 2 or n & (n - 1) or not (1 <= r <= 64 and 1 <= p <= 16) or n > 2**20 or not salt or len(digest) != 32:
        return None
    return n, r, p, salt, digest


def is_secret_hash(text: str) -> bool:
    return _parse_hash(text) is not None


def verify_secret(secret: str, stored: str) -> bool:
    """True if ``secret`` matches the ``scrypt$…`` hash ``stored`` (constant-time comparison)."""
    parsed = _parse_hash(stored)
    if parsed is None or not isinstance(secret, str):
        return False
    n, r, p, salt, digest = parsed
    try:
        got = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, digest)


# --------------------------------------------------------------------------- store

Check = Callable[[HandleRecord | None, HandleRecord | None], None]


def _like_prefix(prefix: str) -> str:
    """LIKE pattern for keys under ``prefix`` (wildcards in the prefix escaped)."""
    esc = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return esc + "/%"


def value_digest(data) -> str:
    """sha256 hex of a value's data as canonical JSON (the reverse look-up key)."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _trusted_value(**fields) -> HandleValue:
    """A :class:`HandleValue` from fields known to be valid (read back from the store, or a
    validated value re-stamped), skipping ``__post_init__``'s checks."""
    out = object.__new__(HandleValue)
    out.__dict__.update(fields)
    return out


def public_json(record: HandleRecord) -> str:
    """The JSON array of ``record``'s public values, in index order, exactly as resolution returns it."""
    return json.dumps([v.to_json() for v in sorted(record.values, key=lambda v: v.index) if v.pub_read],
                      ensure_ascii=False, separators=(",", ":"))


def _comparable(value: HandleValue) -> dict:
    """A value's JSON without its timestamp: a retried registration must not count as a change
    just because the clock moved."""
    out = value.to_json()
    out.pop("timestamp", None)
    return out


def same_values(stored: HandleRecord, incoming: HandleRecord) -> bool:
    """True if ``incoming`` would change nothing in ``stored`` (timestamps aside; a plain-text
    HS_SECKEY matches the stored hash of the same secret)."""
    if len(stored) != len(incoming):
        return False
    for new in incoming.values:
        old = stored.get(new.index)
        if old is None:
            return False
        if new.type == SECRET_TYPE and old.type == SECRET_TYPE and not is_secret_hash(new.value):
            if not verify_secret(new.value, old.value):
                return False
            a, b = _comparable(old), _comparable(new)
            a.pop("data"), b.pop("data")
            b.update(pub_read=False, pub_write=False)
            if {k: a[k] for k in a if k in b} != {k: b[k] for k in b if k in a}:
                return False
        elif _comparable(old) != _comparable(new):
            return False
    return True


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


class HandleStore:
    """Handle records in a SQL database (see module doc).

    ``who`` on write methods names the actor for the audit table (e.g. ``"300:88.100.24/admin"``).
    ``check(before, after)`` on write methods is called inside the transaction with the record
    before and after the change (``None`` for absent); raising from it aborts the whole write.
    """

    def __init__(self, url: str = "sqlite://", *, scrypt_n: int = _SCRYPT_N, echo: bool = False):
        self.engine = create_engine(url, echo=echo, error=StoreError)
        self.scrypt_n = scrypt_n
        self._public_sql = None
        self._readers = threading.local()
        self._reader_fairies: list = []              # keeps reader connections out of the pool
        md = self.metadata = sa.MetaData()
        self.handles = sa.Table(
            "handles", md,
            sa.Column("key", sa.String(400), primary_key=True),
            sa.Column("handle", sa.String(400), nullable=False),
            sa.Column("created", sa.DateTime, nullable=False),
            sa.Column("updated", sa.DateTime, nullable=False),
            # JSON array of the public values as the API returns them, rendered at write time:
            # resolving is one primary-key look-up of ready text
            sa.Column("public", sa.Text, nullable=False),
        )
        self.values = sa.Table(
            "values", md,
            sa.Column("key", sa.String(400), sa.ForeignKey("handles.key", ondelete="CASCADE"), primary_key=True),
            sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("type", sa.String(128), nullable=False, index=True),
            sa.Column("format", sa.String(16), nullable=False),
            sa.Column("data", sa.JSON, nullable=True),
            sa.Column("ttl", sa.Integer, nullable=False),
            sa.Column("timestamp", sa.String(40), nullable=False),
            sa.Column("admin_read", sa.Boolean, nullable=False),
            sa.Column("admin_write", sa.Boolean, nullable=False),
            sa.Column("pub_read", sa.Boolean, nullable=False),
            sa.Column("pub_write", sa.Boolean, nullable=False),
            sa.Column("refs", sa.JSON, nullable=True),
            # sha256 of the value's canonical JSON: indexed exact-match reverse look-up
            sa.Column("digest", sa.String(64), nullable=False),
            sa.Index("ix_values_type_digest", "type", "digest"),
        )
        self.audit = sa.Table(
            "audit", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("who", sa.String(500), nullable=False),
            sa.Column("what", sa.String(40), nullable=False),
            sa.Column("handle", sa.String(400), nullable=False, index=True),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("before", sa.JSON, nullable=True),
            sa.Column("after", sa.JSON, nullable=True),
        )
        self.refusals_table = sa.Table(
            "refusals", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.DateTime, nullable=False, index=True),
            sa.Column("client", sa.String(100), nullable=False, index=True),   # client address, no port
            sa.Column("who", sa.String(500), nullable=False),      # identity, or the identity claimed
            sa.Column("method", sa.String(16), nullable=False),
            sa.Column("path", sa.String(600), nullable=False),     # as sent (percent-encoded), cut
            sa.Column("status", sa.Integer, nullable=False),
            sa.Column("rc", sa.Integer, nullable=False),           # Handle responseCode of the answer
            sa.Column("reason", sa.String(600), nullable=False),
        )
        self.tokens = sa.Table(
            "tokens", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("digest", sa.String(64), nullable=False, unique=True),   # sha256 of the token
            sa.Column("identity", sa.String(420), nullable=False),            # index:handle key
            sa.Column("label", sa.String(200), nullable=False),
            sa.Column("created", sa.DateTime, nullable=False),
            sa.Column("expires", sa.DateTime, nullable=True),
            sa.Column("revoked", sa.DateTime, nullable=True),
        )
        create_tables(md, self.engine, error=StoreError)
        self._dummy_hash: str | None = None          # for users that do not exist (see verify)

    # -- helpers
    @staticmethod
    def _ident(handle: str | Identifier) -> Identifier:
        return parse_identifier(handle)

    def _load(self, conn, key: str) -> HandleRecord | None:
        return self._load_many(conn, [key]).get(key)

    def _load_many(self, conn, keys: Sequence[str]) -> dict[str, HandleRecord]:
        """Records of ``keys`` that exist (one query per chunk: handles LEFT JOIN values)."""
        h, v = self.handles, self.values
        out: dict[str, HandleRecord] = {}
        for start in range(0, len(keys), 900):          # stay under SQLite's parameter limit
            chunk = list(keys[start:start + 900])
            q = (sa.select(h.c.key.label("hkey"), h.c.handle, v).select_from(h.outerjoin(v, v.c.key == h.c.key))
                 .where(h.c.key.in_(chunk) if len(chunk) > 1 else h.c.key == chunk[0])
                 .order_by(h.c.key, v.c.idx))
            values: dict[str, list] = {}
            spelled: dict[str, str] = {}
            for r in conn.execute(q).mappings():
                spelled[r["hkey"]] = r["handle"]
                lst = values.setdefault(r["hkey"], [])
                if r["idx"] is not None:
                    lst.append(self._value(r))
            for k, vals in values.items():
                out[k] = HandleRecord(spelled[k], vals)
        return out

    @staticmethod
    def _value(r) -> HandleValue:
        # rows were validated when written: rebuild without validating again
        return _trusted_value(index=r["idx"], type=r["type"], data={"format": r["format"], "value": r["data"]},
                              ttl=r["ttl"], timestamp=r["timestamp"], admin_read=r["admin_read"],
                              admin_write=r["admin_write"], pub_read=r["pub_read"], pub_write=r["pub_write"],
                              references=list(r["refs"] or []))

    def _row(self, key: str, v: HandleValue) -> dict:
        return {"key": key, "idx": v.index, "type": v.type, "format": v.format, "data": v.value,
                "ttl": v.ttl, "timestamp": v.timestamp, "admin_read": v.admin_read,
                "admin_write": v.admin_write, "pub_read": v.pub_read, "pub_write": v.pub_write,
                "refs": v.references or None, "digest": value_digest(v.value)}

    def _prepare(self, v: HandleValue, now: str) -> HandleValue:
        """Stamp a value being written; hash HS_SECKEY secrets and make them non-public."""
        fields = {**v.__dict__, "timestamp": now}
        if v.type == SECRET_TYPE:
            if v.format not in ("string", "key"):
                raise InvalidValue(f"value {v.index}/{SECRET_TYPE}: format must be 'string' or 'key'")
            if not is_secret_hash(v.value):
                fields["data"] = {"format": v.format, "value": hash_secret(v.value, n=self.scrypt_n)}
            fields["pub_read"] = False
            fields["pub_write"] = False
            return HandleValue(**fields)
        # ``v`` was validated when it was made and ``now`` is a valid timestamp: copy without
        # validating again (bulk loads spend most of their time there otherwise)
        return _trusted_value(**fields)

    @staticmethod
    def _audit_json(rec: HandleRecord | None):
        return rec.to_json() if rec is not None else None

    def _write(self, conn, key: str, handle: str, before: HandleRecord | None, after: HandleRecord | None,
               what: str, who: str, check: Check | None):
        if check is not None:
            check(before, after)
        now = _now()
        if after is None:
            conn.execute(sa.delete(self.values).where(self.values.c.key == key))
            conn.execute(sa.delete(self.handles).where(self.handles.c.key == key))
        else:
            if before is None:
                try:
                    conn.execute(sa.insert(self.handles).values(key=key, handle=handle, created=now, updated=now,
                                                                public=public_json(after)))
                except sa.exc.IntegrityError:
                    raise HandleExists(f"handle {handle} already exists") from None
            else:
                conn.execute(sa.update(self.handles).where(self.handles.c.key == key)
                             .values(updated=now, public=public_json(after)))
            old = {v.index: v for v in (before.values if before else [])}
            new = {v.index: v for v in after.values}
            gone = [i for i in old if i not in new]
            if gone:
                conn.execute(sa.delete(self.values).where(self.values.c.key == key, self.values.c.idx.in_(gone)))
            for i, v in new.items():
                if i in old and old[i] == v:
                    continue
                if i in old:
                    conn.execute(sa.update(self.values).where(self.values.c.key == key, self.values.c.idx == i)
                                 .values(**{k: x for k, x in self._row(key, v).items() if k not in ("key", "idx")}))
                else:
                    conn.execute(sa.insert(self.values).values(**self._row(key, v)))
        conn.execute(sa.insert(self.audit).values(who=who, what=what, handle=handle, at=now,
                                                  before=self._audit_json(before),
                                                  after=self._audit_json(after)))

    # -- reads
    def get(self, handle: str | Identifier, indices: Iterable[int] | None = None,
            types: Iterable[str] | None = None) -> HandleRecord | None:
        """The record (``None`` if absent); with ``indices`` and/or ``types`` only the values that
        match any of them (Handle semantics: union) — possibly none."""
        ident = self._ident(handle)
        with self.engine.connect() as conn:
            rec = self._load(conn, ident.key)
        if rec is None or (indices is None and types is None):
            return rec
        idx, tps = set(indices or ()), set(types or ())
        return HandleRecord(rec.identifier, [v for v in rec.values if v.index in idx or v.type in tps])

    def ensure_admin(self, admin: str, password: str, *, who: str = "idnode:bootstrap") -> bool:
        """Create the admin handle ``INDEX:PREFIX/SUFFIX`` (HS_SECKEY at INDEX holding ``password``,
        hashed by the store, and HS_ADMIN naming itself) unless it exists; True if created.
        A malformed ``admin`` raises :class:`~workbench.identifiers.model.IdentifierError`."""
        idx_text, _, handle = admin.partition(":")
        if not idx_text.isdigit() or not handle:
            raise IdentifierError(f"{admin!r}: expected INDEX:PREFIX/SUFFIX, e.g. 300:88.123.4567/admin")
        index = int(idx_text)
        ident = parse_identifier(handle)
        if self.exists(ident):
            return False
        seckey = HandleValue(index=index, type="HS_SECKEY", data={"format": "string", "value": password})
        hs_admin_index = 100 if index != 100 else 101
        self.create(HandleRecord(ident, [seckey, admin_value(str(ident), index=hs_admin_index,
                                                             admin_index=index)]), who=who)
        return True

    def exists(self, handle: str | Identifier) -> bool:
        ident = self._ident(handle)
        with self.engine.connect() as conn:
            return conn.execute(sa.select(self.handles.c.key).where(self.handles.c.key == ident.key)).first() is not None

    def list(self, prefix: str, page: int = 0, page_size: int | None = None) -> tuple[int, list[str]]:
        """``(total, handles)`` under ``prefix`` ordered by key; ``page`` is 0-based; ``page_size``
        ``None`` → all, ``0`` → count only (empty list)."""
        cond = self.handles.c.key.like(_like_prefix(prefix), escape="\\")
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(self.handles).where(cond)).scalar_one()
            if page_size == 0:
                return total, []
            q = sa.select(self.handles.c.handle).where(cond).order_by(self.handles.c.key)
            if page_size is not None:
                q = q.limit(page_size).offset(max(0, page) * page_size)
            return total, [r.handle for r in conn.execute(q)]

    def reverse(self, value: str, type: str = "URL", prefix: str | None = None, limit: int = 1000) -> list[str]:
        """Handles having a public ``type`` value whose data equals ``value`` (reverse look-up;
        an indexed match on (type, digest of the value))."""
        v, h = self.values, self.handles
        # key in the select list: PostgreSQL requires DISTINCT's ORDER BY columns to be selected
        q = (sa.select(h.c.key, h.c.handle).join(v, v.c.key == h.c.key)
             .where(v.c.type == type, v.c.digest == value_digest(value), v.c.pub_read.is_(True))
             .order_by(h.c.key).distinct().limit(limit))
        if prefix:
            q = q.where(h.c.key.like(_like_prefix(prefix), escape="\\"))
        with self.engine.connect() as conn:
            return [r.handle for r in conn.execute(q)]

    def public_values_json(self, key: str) -> bytes | None:
        """JSON array (UTF-8) of the public values of the handle with ``key``, in index order, as
        the API returns them; ``None`` if there is no such handle.  One primary-key look-up of the
        text rendered at write time (:func:`public_json`), on a per-thread DBAPI connection kept
        open (in autocommit, so every read sees the latest commit) — the node's resolution path."""
        reader = getattr(self._readers, "conn", None)
        if reader is None:
            reader = self._readers.conn = self._open_reader()
        if reader is False:                          # in-memory SQLite: share the engine's connection
            with self.engine.connect() as conn:
                rows = conn.exec_driver_sql(self._public_sql, (key,)).all()
        else:
            cur = reader.cursor()                        # cheap; a cursor per call stays thread-safe
            try:
                cur.execute(self._public_sql, (key,))
                rows = cur.fetchall()
            finally:
                cur.close()
        return rows[0][0].encode("utf-8") if rows else None

    def close(self) -> None:
        """Close the resolution readers and every pooled connection."""
        for fairy in self._reader_fairies:
            with contextlib.suppress(Exception):         # best effort: the server may be gone already
                fairy.invalidate()                       # closes the DBAPI connection
        self._reader_fairies.clear()
        self._readers = threading.local()
        self.engine.dispose()

    def _open_reader(self):
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._public_sql = f"SELECT public FROM handles WHERE key = {mark}"
        if is_memory(str(self.engine.url)):
            return False
        fairy = self.engine.raw_connection()         # kept for the life of this thread
        dbapi = fairy.driver_connection
        if self.engine.dialect.name == "postgresql":
            dbapi.autocommit = True
        elif self.engine.dialect.name == "sqlite":
            dbapi.isolation_level = None             # autocommit: no read transaction left open
        self._reader_fairies.append(fairy)
        return dbapi

    def get_by_key(self, key: str) -> HandleRecord | None:
        """The record whose :attr:`Identifier.key` is ``key`` (one query; the resolver's path)."""
        with self.engine.connect() as conn:
            return self._load(conn, key)

    def existing(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` (:attr:`Identifier.key` values) are registered (one query per 900)."""
        keys = sorted(set(keys))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 900):      # under SQLite's parameter limit
                chunk = keys[start:start + 900]
                found.update(r[0] for r in conn.execute(
                    sa.select(self.handles.c.key).where(self.handles.c.key.in_(chunk))))
        return found

    def last_change(self) -> int:
        """Id of the latest audit row (0 if none): every write adds one, so this is a change counter."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.coalesce(sa.func.max(self.audit.c.id), 0))).scalar_one()

    def changes_since(self, change_id: int, limit: int = 10_000) -> tuple[int, set[str] | None]:
        """``(latest id, keys of handles written after change_id)``; keys is ``None`` if more than
        ``limit`` changes happened (the caller should forget everything it cached)."""
        a = self.audit
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(a.c.id, a.c.handle).where(a.c.id > change_id)
                                .order_by(a.c.id).limit(limit + 1)).all()
        if not rows:
            return change_id, set()
        if len(rows) > limit:
            return self.last_change(), None
        keys = set()
        for r in rows:
            try:
                keys.add(parse_identifier(r.handle).key)
            except ValueError:
                pass
        return rows[-1].id, keys

    def audit_rows(self, handle: str | None = None) -> list[dict]:
        """Audit rows (oldest first), optionally of one handle (as spelled when written)."""
        q = sa.select(self.audit).order_by(self.audit.c.id)
        if handle is not None:
            q = q.where(self.audit.c.handle == handle)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def verify(self, handle: str | Identifier, index: int, secret: str) -> bool:
        """True if ``handle`` has an HS_SECKEY value at ``index`` matching ``secret``.

        Takes one query and one scrypt whether or not the user exists: an unknown user is checked
        against a dummy hash of the store's cost (made once), so the answer time does not reveal
        which users exist.  (A user whose stored hash has another cost than ``scrypt_n`` differs.)
        """
        try:
            ident = self._ident(handle)
        except ValueError:
            ident = None
        row = None
        if ident is not None and isinstance(index, int) and 1 <= index <= 2**31 - 1:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(self.values.c.type, self.values.c.data).where(
                    self.values.c.key == ident.key, self.values.c.idx == index)).first()
        if row is None or row.type != SECRET_TYPE:
            verify_secret(secret, self._dummy())          # the same work as for a real user
            return False
        return verify_secret(secret, row.data)

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = hash_secret(secrets.token_urlsafe(16), n=self.scrypt_n)
        return self._dummy_hash

    # -- the security log: refused requests
    def record_refusals(self, rows: Sequence[dict]) -> None:
        """Append refused requests (dicts with the ``refusals`` columns except ``id``) in one
        transaction.  Texts are cut to their column widths; ``at`` defaults to now (UTC)."""
        if not rows:
            return
        widths = {c.name: c.type.length for c in self.refusals_table.columns if getattr(c.type, "length", None)}
        now = _now()
        out = []
        for r in rows:
            row = {k: r.get(k) for k in ("at", "client", "who", "method", "path", "status", "rc", "reason")}
            row["at"] = row["at"] or now
            for k, n in widths.items():
                row[k] = str(row[k] if row[k] is not None else "")[:n]
            out.append(row)
        with self.engine.begin() as conn:
            conn.execute(sa.insert(self.refusals_table), out)

    def refusals(self, *, since: _dt.datetime | None = None, client: str | None = None,
                 status: int | None = None, limit: int = 1000) -> list[dict]:
        """Refused requests, newest first (at most ``limit``), optionally since a (naive UTC) time,
        from one client address or with one HTTP status."""
        t = self.refusals_table
        q = sa.select(t).order_by(t.c.id.desc()).limit(max(0, int(limit)))
        if since is not None:
            q = q.where(t.c.at >= since)
        if client is not None:
            q = q.where(t.c.client == client)
        if status is not None:
            q = q.where(t.c.status == status)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    # -- bearer tokens for services (gateways, apps)
    def issue_token(self, identity: str, *, label: str = "", expires: _dt.datetime | None = None,
                    who: str = "system") -> str:
        """A new bearer token acting as ``identity`` (``index:prefix/suffix``, which must hold an
        HS_SECKEY or be a handle in this store).  Only its sha256 is stored; the token is returned
        once.  Audited."""
        idx, _, handle = identity.partition(":")
        if not idx.isdigit():
            raise InvalidValue(f"identity {identity!r}: expected INDEX:PREFIX/SUFFIX")
        ident = self._ident(handle)
        token = "wbt_" + secrets.token_urlsafe(32)
        now = _now()
        with self.engine.begin() as conn:
            if self._load(conn, ident.key) is None:
                raise HandleNotFound(f"identity handle {ident} not found")
            conn.execute(sa.insert(self.tokens).values(
                digest=hashlib.sha256(token.encode()).hexdigest(), identity=f"{int(idx)}:{ident.key}",
                label=label, created=now, expires=expires))
            conn.execute(sa.insert(self.audit).values(who=who, what="token_issue", handle=str(ident), at=now,
                                                      before=None, after={"identity": identity, "label": label}))
        return token

    def token_identity(self, token: str) -> tuple[int, str] | None:
        """``(index, handle key)`` the bearer ``token`` acts as; ``None`` if unknown, revoked or expired."""
        if not isinstance(token, str) or not token:
            return None
        t = self.tokens
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.identity, t.c.expires, t.c.revoked).where(
                t.c.digest == hashlib.sha256(token.encode()).hexdigest())).first()
        if row is None or row.revoked is not None or (row.expires is not None and row.expires <= _now()):
            return None
        idx, _, key = row.identity.partition(":")
        return int(idx), key

    def revoke_tokens(self, *, identity: str | None = None, label: str | None = None, token: str | None = None,
                      who: str = "system") -> int:
        """Revoke tokens matching all given criteria; returns how many.  Audited."""
        t = self.tokens
        cond = [t.c.revoked.is_(None)]
        if token is not None:
            cond.append(t.c.digest == hashlib.sha256(token.encode()).hexdigest())
        if identity is not None:
            idx, _, handle = identity.partition(":")
            cond.append(t.c.identity == f"{int(idx)}:{self._ident(handle).key}")
        if label is not None:
            cond.append(t.c.label == label)
        if len(cond) == 1:
            raise ValueError("give a token, an identity or a label to revoke")
        now = _now()
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.identity, t.c.label).where(*cond)).all()
            if rows:
                conn.execute(sa.update(t).where(t.c.id.in_([r.id for r in rows])).values(revoked=now))
                for r in rows:
                    conn.execute(sa.insert(self.audit).values(
                        who=who, what="token_revoke", handle=r.identity.partition(":")[2], at=now,
                        before={"identity": r.identity, "label": r.label}, after=None))
        return len(rows)

    # -- writes
    def create(self, record: HandleRecord, *, who: str = "system", check: Check | None = None) -> HandleRecord:
        """Register a new record; :class:`HandleExists` if the handle is taken."""
        ident = record.identifier
        now = utc_timestamp()
        after = HandleRecord(ident, [self._prepare(v, now) for v in record.values])
        with self.engine.begin() as conn:
            before = self._load(conn, ident.key)
            if before is not None:
                raise HandleExists(f"handle {ident} already exists")
            self._write(conn, ident.key, str(ident), None, after, "create", who, check)
        return after

    def put(self, record: HandleRecord | str | Identifier, values: Sequence[HandleValue] | None = None, *,
            overwrite: bool = True, indices: Iterable[int] | str | None = None, who: str = "system",
            check: Check | None = None) -> tuple[bool, HandleRecord]:
        """Create or change a record; returns ``(created, record_after)``.

        ``put(record)`` or ``put(handle, values)``.  Without ``indices``: create the handle, or —
        if it exists — replace all its values (``overwrite=False`` → :class:`HandleExists`).
        With ``indices`` (a list of indices or ``"various"`` = every index in the body): write only
        those values into the existing record, keeping the others (``overwrite=False`` and an index
        already present → :class:`ValueExists`; absent handle → :class:`HandleNotFound`).
        """
        if isinstance(record, HandleRecord):
            if values is not None:
                raise TypeError("put(record) or put(handle, values), not both")
            ident, body = record.identifier, record.values
        else:
            ident, body = self._ident(record), list(values or [])
            try:
                HandleRecord(ident, body)              # duplicate indices → invalid
            except HandleValueError as exc:
                raise InvalidValue(str(exc)) from None
        now = utc_timestamp()
        with self.engine.begin() as conn:
            before = self._load(conn, ident.key)
            if indices is None:
                if before is not None and not overwrite:
                    raise HandleExists(f"handle {ident} already exists")
                after = HandleRecord(ident, [self._prepare(v, now) for v in body])
                what = "create" if before is None else "replace"
            else:
                if before is None:
                    raise HandleNotFound(f"handle {ident} not found")
                wanted = None if indices == "various" else {int(i) for i in indices}
                chosen = [v for v in body if wanted is None or v.index in wanted]
                if not chosen:
                    raise ValuesNotFound(f"handle {ident}: no values in the body at indices {sorted(wanted or [])}")
                after = HandleRecord(before.identifier, before.values)
                for v in chosen:
                    if v.index in after:
                        if not overwrite:
                            raise ValueExists(f"handle {ident}: value at index {v.index} already exists")
                        after.replace(self._prepare(v, now))
                    else:
                        after.add(self._prepare(v, now))
                what = "modify"
            self._write(conn, ident.key, str(before.identifier) if before else str(ident),
                        before, after, what, who, check)
        return before is None, after

    def delete(self, handle: str | Identifier, indices: Iterable[int] | None = None, *, who: str = "system",
               check: Check | None = None) -> HandleRecord:
        """Delete the handle, or only the values at ``indices``; returns the record before.
        :class:`HandleNotFound` / :class:`ValuesNotFound` if absent."""
        ident = self._ident(handle)
        with self.engine.begin() as conn:
            before = self._load(conn, ident.key)
            if before is None:
                raise HandleNotFound(f"handle {ident} not found")
            if indices is None:
                after, what = None, "delete"
            else:
                idx = {int(i) for i in indices}
                missing = sorted(i for i in idx if i not in before)
                if missing:
                    raise ValuesNotFound(f"handle {ident}: no values at indices {missing}")
                after = HandleRecord(before.identifier, [v for v in before.values if v.index not in idx])
                what = "remove_values"
            self._write(conn, ident.key, str(before.identifier), before, after, what, who, check)
        return before

    def put_many(self, records: Sequence[HandleRecord], *, who: str = "system",
                 check: Check | None = None, batch_size: int = 500, overwrite: bool = True) -> dict:
        """Register many records idempotently (bulk loads; a retried batch changes nothing).

        Each record is created if absent, replaced if its values differ (timestamps aside), and
        skipped if identical (no write, no audit row); ``overwrite=False`` makes a differing
        existing record an error (:class:`HandleExists`).  Every ``batch_size`` records commit in
        one transaction: a failure (invalid value, ``check`` refusing, a duplicate handle within
        the input) leaves that whole batch unwritten and is raised.  Returns counts ``new``,
        ``updated``, ``unchanged``, ``total``.
        """
        records = list(records)
        counts = {"new": 0, "updated": 0, "unchanged": 0, "total": len(records)}
        seen: dict[str, str] = {}
        for rec in records:
            key = rec.identifier.key
            if key in seen:
                raise InvalidValue(f"handle {rec.identifier} given twice in one batch (also as {seen[key]})")
            seen[key] = str(rec.identifier)
        for start in range(0, len(records), max(1, batch_size)):
            batch = records[start:start + batch_size]
            now, at = utc_timestamp(), _now()
            with self.engine.begin() as conn:
                existing = self._load_many(conn, [r.identifier.key for r in batch])
                handle_rows, value_rows, audit_rows = [], [], []
                for rec in batch:
                    ident = rec.identifier
                    before = existing.get(ident.key)
                    if before is not None and same_values(before, rec):
                        counts["unchanged"] += 1
                        continue
                    if before is not None and not overwrite:
                        raise HandleExists(f"handle {ident} already exists with other values")
                    after = HandleRecord(ident, [self._prepare(v, now) for v in rec.values])
                    if before is not None:              # rare on bulk loads: the general path
                        self._write(conn, ident.key, str(before.identifier), before, after, "replace", who, check)
                        counts["updated"] += 1
                        continue
                    if check is not None:
                        check(None, after)
                    handle_rows.append({"key": ident.key, "handle": str(ident), "created": at, "updated": at,
                                        "public": public_json(after)})
                    value_rows.extend(self._row(ident.key, v) for v in after.values)
                    audit_rows.append({"who": who, "what": "create", "handle": str(ident), "at": at,
                                       "before": None, "after": after.to_json()})
                    counts["new"] += 1
                if handle_rows:
                    conn.execute(sa.insert(self.handles), handle_rows)
                    if value_rows:
                        conn.execute(sa.insert(self.values), value_rows)
                    conn.execute(sa.insert(self.audit), audit_rows)
        return counts
