"""Who may see what in the apps (seed §10.4.2 c): users, roles, enterprise grants and the audit log.

A :class:`UserStore` keeps, in one SQL database (SQLite by default, any SQLAlchemy URL):

==========  ==================================================================================
users       name, role, the password as an scrypt hash (``scrypt$n$r$p$salt$hash``, never the
            password), created, disabled
grants      (user, enterprise_id): the enterprises a user may see; ``*`` is every enterprise and
            is never implied, not even for an admin
audit       every login (accepted or refused), export, grant, revoke, user change and refused
            read: when, who, action, enterprise, detail, client, ok
==========  ==================================================================================

Roles and what they may do (:data:`PERMISSIONS`):

=========  ========================================================================
verifier   read (evidence, reports, exports) — never writes
analyst    read, export, import data, acknowledge alarms
manager    read, export, acknowledge alarms
reviewer   read, export, review: approve or reject pending grades and product labels
           (the certification review page, :mod:`workbench.apps.review`)
admin      all of the above but review, and manage users; still sees only the
           enterprises granted
=========  ========================================================================

Separation of duties: only a ``reviewer`` decides a certification.  No other role has ``review``
— not the admin (who creates users and grants, so could otherwise certify through an account of
their own making), not the manager or analyst (who run and submit the enterprise's data, so would
certify their own figures) — and a reviewer neither imports data nor manages users.  A decision is
checked where it is made (``Principal.act("review", enterprise, …)``), for the item's enterprise.

:meth:`UserStore.authenticate` returns a :class:`Principal` or ``None``; it spends one scrypt
whether the user exists or not (an unknown name is checked against a dummy hash), so the answer
time does not tell which names exist, and refuses a name after :data:`MAX_FAILURES` failed
logins within :data:`LOCKOUT` until that window has passed.  Data is reached through
:meth:`Principal.lake`, which checks the grant *where the data is read*: an app that forgets to
hide a widget still cannot read another enterprise's rows.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from workbench.apps.roles import ALL, PERMISSIONS, ROLES
from workbench.core.errors import WorkbenchError
from workbench.core.sqlstore import create_engine, create_tables
from workbench.identifiers.store import hash_secret, verify_secret

__all__ = ["ALL", "LOCKOUT", "MAX_FAILURES", "PERMISSIONS", "ROLES", "AccessDenied", "AuthError", "Principal",
           "UserStore"]

MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_ENTERPRISE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class AuthError(WorkbenchError, ValueError):
    """A user, role, grant or password that cannot be accepted."""


class AccessDenied(WorkbenchError, PermissionError):
    """The user may not do this (a role without the permission, an enterprise not granted)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Principal:
    """An authenticated user: name, role, the enterprises granted (``*``: all) and the store
    that checks and logs what they do."""

    name: str
    role: str
    enterprises: frozenset
    store: UserStore | None = None
    client: str = ""

    def may(self, action: str, enterprise: str | None = None) -> bool:
        """Whether the role allows ``action`` and, for ``enterprise``, it is granted."""
        if action not in PERMISSIONS.get(self.role, ()):
            return False
        return enterprise is None or ALL in self.enterprises or enterprise in self.enterprises

    def require(self, action: str, enterprise: str | None = None) -> None:
        """Raise :class:`AccessDenied` (and log the refusal) unless :meth:`may`."""
        if self.may(action, enterprise):
            return
        if self.store is not None:
            self.store.log(self.name, f"denied:{action}", enterprise=enterprise, ok=False, client=self.client)
        what = f"{action} {enterprise}" if enterprise else action
        raise AccessDenied(f"user {self.name!r} ({self.role}) may not {what}")

    def visible(self, enterprises) -> list[str]:
        """The enterprises of ``enterprises`` this user may read, in their order."""
        return [e for e in enterprises if self.may("read", e)]

    def lake(self, root, enterprise: str):
        """The enterprise's lake, opened only when the user may read it (checked here, where the
        data is read)."""
        from workbench.lake.store import Lake

        self.require("read", enterprise)
        return Lake(root, enterprise=enterprise)

    def act(self, action: str, enterprise: str | None, detail: str) -> None:
        """Check that the user may ``action`` on ``enterprise`` and log it (``detail``: on what) —
        call it before doing the thing, so a refusal does nothing and is logged too."""
        self.require(action, enterprise)
        if self.store is not None:
            self.store.log(self.name, action, enterprise=enterprise, detail=detail, client=self.client)

    def exported(self, enterprise: str | None, what: str) -> None:
        """Check and log an export (``what``: the view and format)."""
        self.act("export", enterprise, what)


class UserStore:
    """Users, grants and the audit log in a SQL database (see the module doc)."""

    def __init__(self, url: str = "sqlite://", *, scrypt_n: int = 2**14, echo: bool = False):
        self.url = url
        self.scrypt_n = scrypt_n
        self.engine = create_engine(url, echo=echo, error=AuthError)
        md = sa.MetaData()
        self.users = sa.Table(
            "users", md,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("password_hash", sa.String(200), nullable=False),
            sa.Column("created", sa.DateTime, nullable=False),
            sa.Column("disabled", sa.Boolean, nullable=False, default=False))
        self.grants = sa.Table(
            "grants", md,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("enterprise_id", sa.String(64), primary_key=True))
        self.audit = sa.Table(
            "audit", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.DateTime, nullable=False, index=True),
            sa.Column("actor", sa.String(64), nullable=False, index=True),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=True),
            sa.Column("detail", sa.String(500), nullable=True),
            sa.Column("client", sa.String(100), nullable=True),
            sa.Column("ok", sa.Boolean, nullable=False))
        create_tables(md, self.engine, error=AuthError)
        self._dummy = hash_secret(secrets.token_urlsafe(16), n=scrypt_n)

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ users
    def add(self, name: str, role: str, password: str, *, by: str = "admin") -> None:
        """A new user (the password hashed here; it is never stored nor logged)."""
        name = _check_name(name)
        _check_role(role)
        _check_password(password, name)
        with self.engine.begin() as con:
            if con.execute(sa.select(self.users.c.name).where(self.users.c.name == name)).first():
                raise AuthError(f"user {name!r} exists (`workbench users passwd` changes a password)")
            con.execute(self.users.insert().values(name=name, role=role, created=_now(), disabled=False,
                                                   password_hash=hash_secret(password, n=self.scrypt_n)))
        self.log(by, "user_add", detail=f"{name} as {role}")

    def set_password(self, name: str, password: str, *, by: str = "admin") -> None:
        _check_password(password, name)
        self._update(name, password_hash=hash_secret(password, n=self.scrypt_n))
        self.log(by, "user_password", detail=name)

    def set_role(self, name: str, role: str, *, by: str = "admin") -> None:
        _check_role(role)
        self._update(name, role=role)
        self.log(by, "user_role", detail=f"{name} → {role}")

    def disable(self, name: str, *, by: str = "admin") -> None:
        self._update(name, disabled=True)
        self.log(by, "user_disable", detail=name)

    def _update(self, name: str, **values) -> None:
        with self.engine.begin() as con:
            n = con.execute(self.users.update().where(self.users.c.name == name).values(**values)).rowcount
        if not n:
            raise AuthError(f"no user {name!r} (`workbench users list` shows them)")

    def grant(self, name: str, enterprise: str, *, by: str = "admin") -> None:
        """Let ``name`` see ``enterprise`` (``*``: every enterprise)."""
        if enterprise != ALL and not _ENTERPRISE.match(enterprise or ""):
            raise AuthError(f"enterprise {enterprise!r}: not an enterprise id (letters, digits, . _ -)")
        self._user(name)
        with self.engine.begin() as con:
            exists = con.execute(sa.select(self.grants).where(self.grants.c.name == name,
                                                              self.grants.c.enterprise_id == enterprise)).first()
            if not exists:
                con.execute(self.grants.insert().values(name=name, enterprise_id=enterprise))
        self.log(by, "grant", enterprise=enterprise, detail=name)

    def revoke(self, name: str, enterprise: str, *, by: str = "admin") -> None:
        self._user(name)
        with self.engine.begin() as con:
            n = con.execute(self.grants.delete().where(self.grants.c.name == name,
                                                       self.grants.c.enterprise_id == enterprise)).rowcount
        if not n:
            raise AuthError(f"user {name!r} has no grant for {enterprise!r}")
        self.log(by, "revoke", enterprise=enterprise, detail=name)

    def _user(self, name: str):
        with self.engine.connect() as con:
            row = con.execute(sa.select(self.users).where(self.users.c.name == name)).mappings().first()
        if row is None:
            raise AuthError(f"no user {name!r} (`workbench users list` shows them)")
        return row

    def enterprises_of(self, name: str) -> frozenset:
        with self.engine.connect() as con:
            rows = con.execute(sa.select(self.grants.c.enterprise_id).where(self.grants.c.name == name)).all()
        return frozenset(r[0] for r in rows)

    def list(self) -> list[dict]:
        """Every user with role, state and grants (no hashes)."""
        with self.engine.connect() as con:
            users = con.execute(sa.select(self.users.c.name, self.users.c.role, self.users.c.created,
                                          self.users.c.disabled).order_by(self.users.c.name)).mappings().all()
            grants = con.execute(sa.select(self.grants)).all()
        by = {}
        for n, e in grants:
            by.setdefault(n, []).append(e)
        return [{"name": u["name"], "role": u["role"], "created": u["created"].isoformat(timespec="seconds"),
                 "disabled": bool(u["disabled"]), "enterprises": sorted(by.get(u["name"], []))} for u in users]

    # ------------------------------------------------------------------ logins
    def authenticate(self, name: str, password: str, *, client: str = "") -> Principal | None:
        """The :class:`Principal` for a right name and password, else ``None`` (and the failure
        logged); a locked-out name is refused without looking at the password."""
        name = name.strip() if isinstance(name, str) else ""
        if self.locked(name):
            self.log(name or "?", "login", detail="locked out after repeated failures", client=client, ok=False)
            return None
        row = None
        if _NAME.match(name):
            with self.engine.connect() as con:
                row = con.execute(sa.select(self.users).where(self.users.c.name == name)).mappings().first()
        if row is None or row["disabled"]:
            verify_secret(password or "", self._dummy)       # the same work as for a real user
            self.log(name[:64] or "?", "login", detail="unknown or disabled user", client=client, ok=False)
            return None
        if not verify_secret(password or "", row["password_hash"]):
            self.log(name, "login", detail="wrong password", client=client, ok=False)
            return None
        self.log(name, "login", client=client)
        return Principal(name, row["role"], self.enterprises_of(name), self, client)

    def principal(self, name: str, *, client: str = "") -> Principal | None:
        """The :class:`Principal` of a user already authenticated (a signed session cookie names
        them): role and grants read now, so a revoke or a disable takes effect at the next page;
        ``None`` for a user that no longer exists or is disabled."""
        with self.engine.connect() as con:
            row = con.execute(sa.select(self.users).where(self.users.c.name == name)).mappings().first()
        if row is None or row["disabled"]:
            return None
        return Principal(name, row["role"], self.enterprises_of(name), self, client)

    def locked(self, name: str) -> bool:
        """Whether ``name`` had :data:`MAX_FAILURES` failed logins within :data:`LOCKOUT`
        (counted since its last accepted one)."""
        since = _now() - LOCKOUT
        a = self.audit.c
        with self.engine.connect() as con:
            last_ok = con.execute(sa.select(sa.func.max(a.at)).where(
                a.actor == name, a.action == "login", a.ok.is_(True))).scalar()
            start = max(since, last_ok) if last_ok else since
            q = sa.select(sa.func.count()).where(a.actor == name, a.action == "login", a.ok.is_(False), a.at > start)
            return con.execute(q).scalar() >= MAX_FAILURES

    # ------------------------------------------------------------------ audit
    def log(self, actor: str, action: str, *, enterprise: str | None = None, detail: str = "", client: str = "",
            ok: bool = True) -> None:
        with self.engine.begin() as con:
            con.execute(self.audit.insert().values(at=_now(), actor=str(actor)[:64], action=action[:64],
                                                   enterprise_id=enterprise, detail=(detail or "")[:500],
                                                   client=(client or "")[:100], ok=ok))

    def audit_log(self, *, actor: str | None = None, action: str | None = None, limit: int = 1000) -> list[dict]:
        q = sa.select(self.audit).order_by(self.audit.c.id.desc()).limit(limit)
        if actor:
            q = q.where(self.audit.c.actor == actor)
        if action:
            q = q.where(self.audit.c.action == action)
        with self.engine.connect() as con:
            return [dict(r) for r in con.execute(q).mappings()]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise AuthError(f"user name {name!r}: letters, digits and . _ @ - (at most 64, not starting with a sign)")
    return name


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AuthError(f"role {role!r}: one of {', '.join(ROLES)}")


def _check_password(password: str, name: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AuthError(f"the password must have at least {MIN_PASSWORD} characters")
    if password.strip().lower() == name.lower():
        raise AuthError("the password must not be the user name")
