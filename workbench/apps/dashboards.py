"""The Voila dashboards behind the apps' login (issue 13, point 4).

``workbench apps serve`` starts, beside the Panel server, one Voila server (``python -m
workbench.apps.dashboards``, its own process: Voila owns its Tornado application) serving
:data:`DASHBOARDS` on the next port.  The login is the apps' own:

* :func:`identity_provider` (Jupyter Server's identity seam) accepts a request only with
  the session cookie the apps' login page set (``user``, signed with the same cookie secret,
  passed in ``$WORKBENCH_COOKIE_SECRET``, never on a command line) and only for a user the
  users database still knows as enabled; anything else is sent to the apps' ``/login``.  The
  kernel websocket goes through the same check, and Voila lets the browser send the kernel comm
  messages only (no code).
* :func:`prelaunch_hook` writes the user, the users database and the lake into the notebook's
  parameters (after its ``parameters`` cell, as papermill does), so the notebook reads the lake
  through :meth:`~workbench.apps.auth.Principal.lake` — each user's grants enforced where the
  data is read; ``?enterprise=`` asks for one (refused when not granted).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["DASHBOARDS", "command", "identity_provider", "main", "prelaunch_hook"]

ROOT = Path(__file__).resolve().parents[2]
#: name → (title zh, title en, notebook path relative to the repository)
DASHBOARDS = {"overview": ("月度概览", "Monthly overview", "notebooks/dashboards/overview.ipynb")}
#: days a login stays valid (Panel's default for its ``user`` cookie)
COOKIE_DAYS = 1

_settings: dict = {}          # users_db, lake_root, login_url of this process


def _store():
    from workbench.apps.auth import UserStore

    if "store" not in _settings:
        _settings["store"] = UserStore(_settings["users_db"])
    return _settings["store"]


def identity_provider():
    """The identity provider class (Jupyter Server's ``IdentityProvider``; built when called, so
    jupyter_server is imported only by the dashboards' process)."""
    from jupyter_server.auth.identity import IdentityProvider, User
    from tornado import web

    class LoginRedirect(web.RequestHandler):
        """Voila's own /login: the apps' login page instead."""

        def get(self):
            self.redirect(_settings["login_url"])

    class Provider(IdentityProvider):
        @property
        def auth_enabled(self) -> bool:
            return True

        @property
        def login_available(self) -> bool:
            return True

        def get_user(self, handler):
            raw = handler.get_secure_cookie("user", max_age_days=COOKIE_DAYS)
            if not raw:
                return None
            name = raw.decode("utf-8", "replace")
            client = handler.request.remote_ip or ""
            if _store().principal(name, client=client) is None:      # unknown or disabled since
                return None
            return User(username=name, name=name)

        def get_handlers(self) -> list:
            return [(r"/login", LoginRedirect)]

    return Provider


def prelaunch_hook(handler, notebook, cwd):
    """Put the session's user, the users database and the lake into the notebook's parameters
    (and ``enterprise`` when the URL asks ``?enterprise=``); returns the notebook."""
    from papermill.parameterize import parameterize_notebook

    user = handler.current_user
    name = getattr(user, "username", None)
    if not name:
        from tornado import web

        raise web.HTTPError(403)
    _ = handler.xsrf_token        # sets the _xsrf cookie Voila's page posts back when it closes its kernel
    params = {"user": name, "users_db": _settings["users_db"], "lake_root": _settings["lake_root"]}
    asked = handler.get_argument("enterprise", "")
    if asked:
        params["enterprise"] = asked
    for cell in notebook.cells:                 # papermill reads every cell's tags
        cell.metadata.setdefault("tags", [])
    notebook.metadata.setdefault("papermill", {})
    return parameterize_notebook(notebook, params)


def command(notebook: str, *, address: str, port: int, lake_root, login_url: str) -> list[str]:
    """The command line of a dashboard's process — no secret in it: the cookie secret and the users
    database's URL (which may hold a password) go in its environment, ``$WORKBENCH_COOKIE_SECRET``
    and ``$WORKBENCH_USERS``."""
    return [sys.executable, "-m", "workbench.apps.dashboards", str(ROOT / notebook), "--address", address,
            "--port", str(port), "--lake", str(Path(lake_root).resolve()), "--login-url", login_url]


def main(argv=None) -> None:
    """``python -m workbench.apps.dashboards NOTEBOOK --port P --lake L --login-url U`` with
    ``$WORKBENCH_COOKIE_SECRET`` and ``$WORKBENCH_USERS`` (the users database's SQLAlchemy URL) set:
    serve one dashboard with Voila behind the apps' login."""
    ap = argparse.ArgumentParser(prog="workbench.apps.dashboards")
    ap.add_argument("notebook")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--lake", required=True)
    ap.add_argument("--login-url", required=True)
    args = ap.parse_args(argv)
    secret, users = os.environ.get("WORKBENCH_COOKIE_SECRET"), os.environ.get("WORKBENCH_USERS")
    if not secret or not users or "://" not in users:
        sys.exit("workbench.apps.dashboards: set $WORKBENCH_COOKIE_SECRET (the apps' cookie secret) and "
                 "$WORKBENCH_USERS (the users database's SQLAlchemy URL)")
    _settings.update(users_db=users, lake_root=args.lake, login_url=args.login_url)

    # the workbench's Voila template (lab without CDN links: nothing is loaded from the internet)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(Path(__file__).with_name("jupyter")),
                                                             os.environ.get("JUPYTER_PATH", "")) if p)
    from traitlets.config import Config
    from voila.app import Voila

    c = Config()
    c.Voila.ip = args.address
    c.Voila.port = args.port
    c.Voila.open_browser = False
    c.Voila.cookie_secret = secret.encode()
    c.Voila.identity_provider_class = identity_provider()
    c.VoilaConfiguration.prelaunch_hook = prelaunch_hook
    c.VoilaConfiguration.show_tracebacks = False
    c.VoilaConfiguration.template = "workbench"
    # Panel's lab extension expects JupyterLab's shell and fails in Voila's page (a console error)
    c.VoilaConfiguration.extension_denylist = ["@pyviz/jupyterlab_pyviz"]
    c.VoilaConfiguration.file_allowlist = [r"favicon\.ico"]        # the one file served beside the notebook
    app = Voila(config=c)
    app.initialize([args.notebook])
    parent = os.getppid()

    def orphaned():                       # the apps' server is gone (even killed): stop too
        if os.getppid() != parent:
            IOLoop.current().stop()

    from tornado.ioloop import IOLoop, PeriodicCallback

    PeriodicCallback(orphaned, 2000).start()
    app.start()


if __name__ == "__main__":
    main()
