"""One way to open the SQL databases of the platform's small stores (identifier node, device
registry, alarms): SQLite by default, PostgreSQL (or any SQLAlchemy URL) by URL."""
from __future__ import annotations

import sqlalchemy as sa

__all__ = ["create_engine", "create_tables", "is_memory"]


def is_memory(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    """WAL: readers (worker processes, services) never block on a writer; wait, don't fail, while
    another process holds the write lock."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def create_engine(url: str, *, echo: bool = False, error: type[Exception] | None = None) -> sa.Engine:
    """An engine for ``url``.  In-memory SQLite: one shared connection (else every connection
    would see its own empty database); file SQLite: usable from any thread, WAL mode.
    ``error``: the store's error class, raised with one line when ``url`` is no database URL."""
    try:
        return _engine(url, echo)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError):
        if error is None:
            raise
        raise error(f"{url}: not a database URL (sqlite:///FILE or postgresql+psycopg://…)") from None


def create_tables(metadata: sa.MetaData, engine: sa.Engine, *, error: type[Exception]) -> None:
    """Create the store's tables; a file that is no database, or a server that does not answer,
    is ``error`` with one line (the URL without its password, and the database's reason)."""
    try:
        metadata.create_all(engine)
    except sa.exc.DBAPIError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        url = engine.url.render_as_string(hide_password=True)
        raise error(f"{url}: cannot open the database ({reason})") from None


def _engine(url: str, echo: bool) -> sa.Engine:
    if is_memory(url):
        from sqlalchemy.pool import StaticPool

        return sa.create_engine(url, echo=echo, poolclass=StaticPool, connect_args={"check_same_thread": False})
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, echo=echo)
