"""The apps' browser tests: `workbench apps serve` on a free port (``serve_apps``), Debian's
Chromium driven by Playwright (``browser``) and the page helpers (``ui``: a page that records
console errors, the login, a screenshot in ``$WORKBENCH_TEST_ARTIFACTS``, default
``output/test-artifacts``)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("WORKBENCH_TEST_ARTIFACTS", ROOT / "output" / "test-artifacts"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def serve_apps():
    """``start(lake_root, users_db_path, *more apps-serve options, env={...}) -> base URL``: a server
    per call, stopped after the module."""
    procs = []

    def start(lake_root, users_db, *options, env=None) -> str:
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKBENCH_COOKIE_SECRET": "test-secret-" + "x" * 32, **(env or {})}
        proc = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "apps", "serve", "--port", str(port),
                                 "--lake", str(lake_root), "--db", str(users_db), *options],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/login", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None:
                    raise AssertionError(proc.stdout.read()) from None
                time.sleep(0.3)
        return base

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


def new_page(browser):
    """A page and the list its console errors and page errors go to."""
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def login(page, base, user, password):
    page.goto(f"{base}/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login")
    page.wait_for_load_state("networkidle")


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="session")
def ui():
    return SimpleNamespace(page=new_page, login=login, shot=shot, artifacts=ARTIFACTS)
