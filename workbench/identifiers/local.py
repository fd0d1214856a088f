"""A throw-away enterprise identifier node in this process, for notebooks, tests and demos.

::

    from workbench.identifiers import LocalNode

    with LocalNode(prefix="88.123.4567") as node:        # temp SQLite file, free 127.0.0.1 port
        with node.client() as c:                         # authenticated as the admin
            c.register(record)
            c.resolve("88.123.4567/node.F01")

The node is the real one — :class:`~workbench.identifiers.store.HandleStore` +
:func:`~workbench.identifiers.server.create_app` served by uvicorn in a daemon thread — so what
works here works against ``workbench idnode serve``.  Not meant for production: one thread,
loopback only, and a temp database unless ``db`` is given.
"""
from __future__ import annotations

import secrets
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

from workbench.identifiers.model import parse_identifier

__all__ = ["LocalNode"]


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalNode:
    """Start an enterprise identifier node on a free loopback port (a context manager).

    Parameters
    ----------
    prefix : str
        The enterprise prefix served, e.g. ``"88.123.4567"``.
    db : str, optional
        SQLAlchemy URL of the handle store; ``None`` → a SQLite file in a temp directory removed
        on exit.
    admin : str, optional
        The prefix administrator ``index:prefix/suffix``; default ``300:<prefix>/admin``.  Its
        handle (HS_SECKEY + HS_ADMIN) is created on start unless it exists.
    admin_password : str, optional
        Its secret; default a random token (see :attr:`admin_password`).
    scrypt_n : int, optional
        scrypt cost for stored secrets (lower it in tests, e.g. ``2**10``).
    host : str
        Interface to listen on (loopback by default).
    app_kwargs : dict, optional
        Extra keyword arguments for :func:`~workbench.identifiers.server.create_app`.

    Attributes (while running): :attr:`url`, :attr:`store`, :attr:`prefix`, :attr:`admin`,
    :attr:`admin_password`, :attr:`app`; :meth:`client` / :meth:`async_client` give clients
    authenticated as the admin.
    """

    def __init__(self, prefix: str = "88.123.4567", *, db: str | None = None, admin: str | None = None,
                 admin_password: str | None = None, scrypt_n: int | None = None, host: str = "127.0.0.1",
                 app_kwargs: dict | None = None, startup_timeout: float = 10.0):
        parse_identifier(f"{prefix}/x")                 # validates the prefix early
        self.prefix = prefix
        self.admin = admin or f"300:{prefix}/admin"
        self.admin_password = admin_password or secrets.token_urlsafe(16)
        self.db = db
        self.host = host
        self.scrypt_n = scrypt_n
        self.app_kwargs = dict(app_kwargs or {})
        self.startup_timeout = startup_timeout
        self.url: str | None = None
        self.store = None
        self.app = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None

    # -- life cycle
    def start(self) -> Self:
        """Create the store and admin handle, and serve; returns self."""
        if self._thread is not None:
            raise RuntimeError("LocalNode is already running")
        import uvicorn

        from workbench.identifiers.server import create_app
        from workbench.identifiers.store import HandleStore

        try:
            if self.db is None:
                self._tmpdir = tempfile.mkdtemp(prefix="wb-idnode-")
                self.db = f"sqlite:///{Path(self._tmpdir) / 'idnode.db'}"
            kwargs = {} if self.scrypt_n is None else {"scrypt_n": self.scrypt_n}
            self.store = HandleStore(self.db, **kwargs)
            self.store.ensure_admin(self.admin, self.admin_password, who="localnode:bootstrap")
            # treated as an opaque ASGI app (FastAPI today; may become a wrapper)
            self.app = create_app(self.store, self.prefix, admins=[self.admin], **self.app_kwargs)
            port = _free_port(self.host)
            config = uvicorn.Config(self.app, host=self.host, port=port, log_level="warning",
                                    lifespan="auto", access_log=False)
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._server.run, name=f"localnode-{port}", daemon=True)
            self._thread.start()
            deadline = time.monotonic() + self.startup_timeout
            while not self._server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the identifier node did not start on {self.host}:{port}")
                time.sleep(0.01)
            self.url = f"http://{self.host}:{port}"
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving, release the store and remove the temp database (if one was made)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.startup_timeout)
        self._server = self._thread = None
        self.url = None
        if self.store is not None:
            self.store.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            self.db = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"LocalNode({self.prefix!r}, {state})"

    # -- clients
    def _check_running(self) -> None:
        if not self.running:
            raise RuntimeError("LocalNode is not running: use it as 'with LocalNode(…) as node:' or call start()")

    def client(self, *, anonymous: bool = False, **kwargs):
        """A :class:`~workbench.identifiers.client.Client` of this node, authenticated as the admin
        (``anonymous=True``: without credentials)."""
        from workbench.identifiers.client import Client

        self._check_running()
        creds = {} if anonymous else {"username": self.admin, "password": self.admin_password}
        return Client(self.url, **creds, **kwargs)

    def async_client(self, *, anonymous: bool = False, **kwargs):
        """An :class:`~workbench.identifiers.client.AsyncClient` of this node (admin unless ``anonymous``)."""
        from workbench.identifiers.client import AsyncClient

        self._check_running()
        creds = {} if anonymous else {"username": self.admin, "password": self.admin_password}
        return AsyncClient(self.url, **creds, **kwargs)
