"""``workbench apps serve``: the apps behind one login (Panel / Bokeh server).

Every page and its websocket need a signed session cookie that only the login page sets, after
:meth:`workbench.apps.auth.UserStore.authenticate` accepted the name and password (a failed login
is logged, repeated failures lock the name).  Each page builds, per session, the
:class:`~workbench.apps.auth.Principal` of the cookie's user (role and grants read then) and reads
data only through it.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["APPS", "auth_provider", "build_apps", "serve"]

#: path → (title zh, title en, module:function that builds the page for a principal)
APPS = {
    "status": ("数据状态", "Data status", "workbench.apps.status:page"),
    "explorer": ("碳足迹浏览", "Footprint explorer", "workbench.apps.explorer:page"),
    "live": ("实时监测", "Live monitoring", "workbench.apps.live:page"),
    "grades": ("区域碳效等级", "Regional carbon-efficiency grades", "workbench.apps.grades:page"),
    "evidence": ("核查证据", "Verification evidence", "workbench.apps.evidence:page"),
    "review": ("审核认证", "Certification review", "workbench.apps.review:page"),
    "forecasts": ("预测与情景", "Forecasts & scenarios", "workbench.apps.forecasts:page"),
}


def auth_provider(store):
    """A Bokeh auth provider whose login page checks names and passwords against ``store``."""
    from panel.auth import BasicAuthProvider, BasicLoginHandler

    class LoginHandler(BasicLoginHandler):
        def _validate(self, username, password):
            return store.authenticate(username, password, client=self.request.remote_ip or "") is not None

        def post(self):
            import tornado.escape

            if self._validate(self.get_argument("username", ""), self.get_argument("password", "")):
                self.set_current_user(self.get_argument("username", "").strip())
                self.redirect(self.get_cookie("next_url", "/") if _local(self.get_cookie("next_url", "/")) else "/")
            else:
                msg = tornado.escape.url_escape("用户名或密码错误 / Wrong user name or password")
                self.redirect(f"{self.request.path}?error={msg}")

    class Provider(BasicAuthProvider):
        @property
        def login_handler(self):
            LoginHandler._login_endpoint = self._login_endpoint
            LoginHandler._login_template = self._login_template
            return LoginHandler

    return Provider(login_template=str(Path(__file__).with_name("templates") / "login.html"))


def _local(url: str) -> bool:
    """A redirect target inside this server (no scheme, no host): never an open redirect."""
    return url.startswith("/") and not url.startswith("//") and "\\" not in url


def current_principal(store):
    """The principal of the session's user (``None``: no user, or one disabled since)."""
    import panel as pn

    request = pn.state.curdoc.session_context.request if pn.state.curdoc and pn.state.curdoc.session_context else None
    client = getattr(request, "remote_ip", "") if request is not None else ""
    user = pn.state.user
    return store.principal(user, client=client or "") if user else None


def granted_enterprises(principal, lake_root):
    """``(enterprises the principal may read, the one asked for in ?enterprise=, refusal)`` — the
    refusal (a Panel alert, the refused read logged) when the URL asks for one not granted, or none
    is granted at all; pages show it instead of anything else."""
    import panel as pn

    from workbench.apps.auth import AccessDenied
    from workbench.lake.store import Lake

    visible = principal.visible(Lake(Path(lake_root)).enterprises())
    args = pn.state.session_args or {}
    asked = args.get("enterprise", [b""])[0].decode("utf-8", "replace") if args else ""
    if asked and asked not in visible:
        try:
            principal.require("read", asked)            # logged as a refused read
        except AccessDenied:
            return visible, asked, pn.pane.Alert(f"无权访问 / Not permitted: {asked}", alert_type="danger",
                                                 name="denied")
    if not visible:
        return visible, asked, pn.pane.Alert("没有可查看的企业 / No enterprise granted to you", alert_type="warning")
    return visible, asked, None


def selection_widgets(visible: list[str], asked: str = ""):
    """The widgets every page starts with: enterprise (the granted ones, ``asked`` first chosen)
    and the month span (``YYYY-MM``; empty: the page's default)."""
    import panel as pn

    enterprise = pn.widgets.Select(name="企业 / Enterprise", options=visible, value=asked or visible[0])
    start = pn.widgets.TextInput(name="起始月 / From (YYYY-MM)", value="")
    end = pn.widgets.TextInput(name="截止月 / To (YYYY-MM)", value="")
    return enterprise, start, end


def _load(target: str):
    import importlib

    module, fn = target.split(":")
    return getattr(importlib.import_module(module), fn)


def build_apps(store, lake_root, *, alarms=None, dashboards: dict | None = None, **services) -> dict:
    """``{path: callable}`` for :func:`panel.serve`: each callable builds its page for the session's
    principal (a page without one says so and shows nothing).  ``alarms``: the device monitor's
    :class:`~workbench.devices.alarms.AlarmStore`, given to the pages that take it; ``services``:
    more keyword arguments given the same way to the pages whose signature names them (the review
    page's ``labels``, ``certificates``, ``idnode``).  ``dashboards``: ``{name: port}`` of the Voila
    dashboards the index links to."""
    import inspect

    import panel as pn

    offered = {"alarms": alarms, **services}

    def guarded(build):
        params = inspect.signature(build).parameters
        extra = {k: v for k, v in offered.items() if k in params}

        def app():
            who = current_principal(store)
            if who is None:
                return pn.pane.Markdown("未登录或账号已停用 / Not logged in, or the account is disabled.")
            return build(who, lake_root, **extra)
        return app

    apps = {path: guarded(_load(target)) for path, (_, _, target) in APPS.items()}

    def index():
        from workbench.apps.dashboards import DASHBOARDS

        who = current_principal(store)
        links = "\n".join(f"* [{zh} / {en}](./{path})" for path, (zh, en, _) in APPS.items())
        request = pn.state.curdoc.session_context.request if pn.state.curdoc and pn.state.curdoc.session_context else None
        host = (request.headers.get("Host", "") if request is not None else "").rsplit(":", 1)[0] or "127.0.0.1"
        links += "".join(f"\n* [{DASHBOARDS[name][0]} / {DASHBOARDS[name][1]} (Voila)](http://{host}:{p}/)"
                         for name, p in (dashboards or {}).items())
        name = f"{who.name} ({who.role})" if who else "-"
        return pn.Column(pn.pane.Markdown(f"# 碳效工作台 / Carbon Efficiency Workbench\n\n{name} · "
                                          f"[退出 / log out](./logout)\n\n{links}"))

    apps["index"] = index
    return apps


def serve(lake_root, users_db, *, address: str = "127.0.0.1", port: int = 5006, show: bool = False,
          cookie_secret: str | None = None, on_ready=None, alarms_db=None, oidc=None,
          dashboard_port: int | None = None, services: dict | None = None):
    """Serve every app (blocks until stopped).  ``cookie_secret``: signs the session cookies (default
    ``$WORKBENCH_COOKIE_SECRET``, else a random one per start: sessions end with the server).
    ``alarms_db``: the device monitor's alarm store (URL or :class:`AlarmStore`) for the live page.
    ``dashboard_port``: the first port of the Voila dashboards (default ``port + 1``; ``-1``: none),
    each its own process (:mod:`workbench.apps.dashboards`) stopped with the server.  ``services``:
    keyword arguments for the pages that ask for them (:func:`build_apps`)."""
    import panel as pn

    from workbench.apps.auth import UserStore

    store = users_db if isinstance(users_db, UserStore) else UserStore(users_db)
    secret = cookie_secret or os.environ.get("WORKBENCH_COOKIE_SECRET") or secrets.token_urlsafe(32)
    alarms = alarms_db
    if isinstance(alarms_db, str):
        from workbench.devices.alarms import AlarmStore

        alarms = AlarmStore(alarms_db)
    ports = _dashboard_ports(port, dashboard_port)
    apps = build_apps(store, Path(lake_root), alarms=alarms, dashboards=ports, **(services or {}))
    provider = auth_provider(store)
    if oidc is not None:            # single sign-on beside the password login: an OIDCConfig (workbench.apps.oidc)
        from workbench.apps.oidc import with_oidc

        provider = with_oidc(provider, store, oidc)
    server = pn.serve(apps, address=address, port=port, show=show, start=False, title="碳效工作台",
                      index=str(Path(__file__).with_name("templates") / "index.html"),
                      auth_provider=provider, cookie_secret=secret,
                      websocket_origin=[f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"])
    procs = _start_dashboards(ports, address=address, lake_root=lake_root, users_db=store.url, secret=secret,
                              login_url=f"http://{'127.0.0.1' if address in ('', '0.0.0.0') else address}:{server.port}/login")
    server.dashboards = ports
    if on_ready is not None:
        server.io_loop.add_callback(on_ready, server)
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():      # SIGTERM: stop, then stop the dashboards
        signal.signal(signal.SIGTERM, lambda *_: server.io_loop.add_callback_from_signal(server.io_loop.stop))
    try:
        server.start()
        server.io_loop.start()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except Exception:  # noqa: BLE001 - it is stopped regardless
                proc.kill()


def _dashboard_ports(port: int, first: int | None) -> dict:
    """``{dashboard: port}``: from ``first`` (default ``port + 1``; 0: free ports; -1: none)."""
    from workbench.apps.dashboards import DASHBOARDS

    if first is not None and first < 0:
        return {}
    out = {}
    for i, name in enumerate(DASHBOARDS):
        if first == 0 or port == 0:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                out[name] = s.getsockname()[1]
        else:
            out[name] = (first or port + 1) + i
    return out


def _start_dashboards(ports: dict, *, address, lake_root, users_db, secret, login_url) -> list:
    """The Voila processes (the cookie secret in their environment, not on a command line)."""
    import subprocess

    from workbench.apps.dashboards import DASHBOARDS, command

    env = {**os.environ, "WORKBENCH_COOKIE_SECRET": secret, "WORKBENCH_USERS": users_db}
    return [subprocess.Popen(command(DASHBOARDS[name][2], address=address, port=p, lake_root=lake_root,
                                     login_url=login_url), env=env)
            for name, p in ports.items()]
