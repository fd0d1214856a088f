"""Benchmark: identifier resolutions/s of the enterprise node (``workbench idnode serve``), measured with wrk.

    python benchmarks/resolution.py [--ids 100000] [--duration 20] [--workers 2] [--connections 16]
                                    [--backends sqlite,postgresql] [--pg-url URL] [--quick]

1. **Records** — ``--ids`` product identifiers ``<prefix>/<class>.<model>.<date>.<serial>`` (the
   ``product`` scheme of ``workbench.identifiers.model.DEFAULT_SCHEMES``: a cement plant's product
   lots), each with a ``URL``, a ``DESC`` (JSON), a ``CARBON.FOOTPRINT`` of the lot and HS_ADMIN at
   100.  Registered with ``HandleStore.put_many`` (idempotent bulk registration).
   * SQLite: the populated database is cached as ``benchmarks/.data/resolution/ids-<N>-<prefix>-<layout>.sqlite``
     and reused while its handle count, parameters and the store's table layout match.
   * PostgreSQL: ``--pg-url`` (a SQLAlchemy URL of any database on the server to use), else a private
     throw-away cluster started here from the installed binaries on a free port (never the machine's
     own PostgreSQL on 5432) and stopped at the end; the node reaches it through its Unix-domain
     socket, as a node on the database's host would (``--pg-tcp``: over TCP loopback instead).  The records go into a dedicated database
     ``wb_bench_resolution_<N>_<layout>``, reused when it already holds the right count.
   (``<layout>``: a hash of the store's table layout, so a cache from an older store is never reused.)
2. **Node** — ``python -m workbench.cli.main idnode serve --workers W [--cache-size …]`` as a child
   process in its own process group (killed as a group at exit, Ctrl-C included); the script waits
   until it resolves.
3. **Correctness** — a few random identifiers are resolved with httpx and compared with the store's
   records (and an unregistered one must be 404), once per run.
4. **Load** — ``wrk --latency -t<T> -c<C> -d<D>s`` over loopback with a generated Lua script that
   picks a registered suffix uniformly at random for every request (``math.randomseed`` per wrk
   thread; the suffix list is read by the script from a file).  A Python load generator would be the
   bottleneck itself.  *cached* runs start the node with a cache for every identifier and warm it
   with ordered passes over all identifiers first; *uncached* runs start it with ``--cache-size 0``
   (every resolution reads the database) after a short random warm-up (connection pools, page cache).

Prints resolutions/s and p50/p99 latency per (backend, mode), wrk's error counts (must be 0), and
whether the targets are met.  Targets (issue 4, point 10; 2-core machine, load generator included):
≥ 10,000 resolutions/s cached, ≥ 5,000/s uncached, p99 < 10 ms.

``--flood`` (issue 10, point 5) measures instead what a wrong-password flood does to anonymous
resolution, on a copy of the SQLite database with an admin handle, against ``workbench idnode serve
--workers 1`` (``--flood-workers``): one client resolving random identifiers one after another for
``--flood-seconds`` s — quiet, then while ``--flood-clients`` (4) other clients send wrong-password
PUTs as fast as they are answered — and reports the resolution median/p99 of both, the flood's
answers by status, and the time a wrong-password PUT takes for an existing and for an unknown user
(sequential, alternating, medians of ``--login-samples`` each).  A node that has the failed-login
limiter runs twice: with its defaults, and with it off (``--login-burst 0``: what moving the
password hash off the event loop does alone; the timing comparison runs on this one).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import glob
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT / "benchmarks" / ".data" / "resolution"
PREFIX = "88.123.4567"
SYSTEM_PG_PORT = 5432
TARGETS = {"cached": 10_000, "uncached": 5_000}
TARGET_P99_MS = 10.0
WHO = "benchmark:resolution"

# A cement plant's product lots: (class, model, Chinese name, English name, tCO2e per t).
PRODUCTS = (
    ("CEM", "PO425", "普通硅酸盐水泥 P·O 42.5", "Ordinary Portland cement P·O 42.5", 0.62),
    ("CEM", "PO425R", "普通硅酸盐水泥 P·O 42.5R", "Ordinary Portland cement P·O 42.5R", 0.64),
    ("CEM", "PO525", "普通硅酸盐水泥 P·O 52.5", "Ordinary Portland cement P·O 52.5", 0.71),
    ("CEM", "PC425", "复合硅酸盐水泥 P·C 42.5", "Composite Portland cement P·C 42.5", 0.55),
    ("CEM", "PS425", "矿渣硅酸盐水泥 P·S·A 42.5", "Slag Portland cement P·S·A 42.5", 0.47),
    ("CLK", "GPC", "通用硅酸盐水泥熟料", "General Portland cement clinker", 0.86),
)
FIRST_DAY = dt.date(2025, 1, 1)
DAYS = 365


# --------------------------------------------------------------------------- records
def product_fields(i: int) -> dict:
    """Scheme fields of product lot ``i`` (0-based): products cycle, then days, serial = i + 1."""
    p = PRODUCTS[i % len(PRODUCTS)]
    day = FIRST_DAY + dt.timedelta(days=(i // len(PRODUCTS)) % DAYS)
    return {"class": p[0], "model": p[1], "date": day, "serial": i + 1}


def suffixes(n: int) -> list[str]:
    from workbench.identifiers.model import DEFAULT_SCHEMES

    scheme = DEFAULT_SCHEMES["product"]
    first = scheme.make(product_fields(0))          # validates the scheme once (make parses back)
    tpl = scheme.template
    out = [first]
    for i in range(1, n):                           # str.format is what make() does, minus the check
        out.append(tpl.format(**product_fields(i)))
    return out


def product_record(i: int, suffix: str, prefix: str, rng: random.Random):
    from workbench.identifiers.model import (
        HandleRecord,
        admin_value,
        carbon_value,
        desc_value,
        url_value,
    )

    f = product_fields(i)
    p = PRODUCTS[i % len(PRODUCTS)]
    tonnes = rng.choice((30, 33, 35, 40, 50))       # one truck / lot
    intensity = p[4] * rng.uniform(0.95, 1.05)
    rec = HandleRecord(f"{prefix}/{suffix}")
    rec.add(url_value(f"https://carbon.example.cn/products/{suffix}", index=1))
    rec.add(desc_value(kind="product", name_zh=p[2], name_en=p[3], index=2,
                       product_class=f["class"], model=f["model"], production_date=f["date"].isoformat(),
                       serial=f["serial"], facility="F01", quantity_t=tonnes))
    rec.add(carbon_value("CARBON.FOOTPRINT", index=3, value=round(tonnes * intensity, 3),
                         period=f["date"].strftime("%Y-%m"), standard="GB/T 32150-2015",
                         basis="cradle-to-gate, per lot"))
    rec.add(admin_value(prefix))
    return rec


def register(store, prefix: str, sfx: list[str], console, label: str) -> dict:
    """Bulk-register all records (idempotent) with a progress bar; returns the counts."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    rng = random.Random(20250101)
    chunk = 5_000
    total = {"new": 0, "updated": 0, "unchanged": 0, "total": 0}
    bulk = getattr(store, "put_many", None)
    if bulk is None:
        from workbench.cli.idnode import register_records
        bulk = lambda recs, **kw: register_records(store, recs, **kw)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task(f"{label}: registering", total=len(sfx))
        for start in range(0, len(sfx), chunk):
            recs = [product_record(i, sfx[i], prefix, rng) for i in range(start, min(len(sfx), start + chunk))]
            counts = bulk(recs, who=WHO, batch_size=1_000)
            for k in total:
                total[k] += counts[k]
            progress.advance(task, len(recs))
    return total


def schema_fingerprint() -> str:
    """8 hex digits naming the store's table layout: a cached database written by an older layout
    of ``HandleStore`` is not reused (its rows may lack what the resolver reads now)."""
    import hashlib

    from workbench.identifiers.store import HandleStore

    md = HandleStore("sqlite://").metadata
    layout = [(t.name, [(c.name, str(c.type), c.nullable) for c in t.columns],
               sorted(str(i.name) for i in t.indexes)) for t in md.sorted_tables]
    return hashlib.sha256(repr(layout).encode()).hexdigest()[:8]


def count_handles(store, prefix: str) -> int:
    return store.list(prefix, page_size=0)[0]


# --------------------------------------------------------------------------- helpers
def free_port(exclude=(SYSTEM_PG_PORT,)) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in exclude:
            return port


def machine_facts() -> dict:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "usable cores": len(os.sched_getaffinity(0)), "cpu": cpu,
            "python": platform.python_version(), "platform": platform.platform()}


# --------------------------------------------------------------------------- wrk
def ensure_wrk(console) -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get") and Path("/etc/debian_version").exists():
        console.print("wrk not found: running [bold]apt-get install -y wrk[/] (Debian package)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=False)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed (Debian/Ubuntu: apt-get install wrk) — it is the load "
                         "generator of this benchmark; a Python one would be the bottleneck itself")
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return (out.stdout + out.stderr).strip().splitlines()[0]


#: Generated per run.  {suffix_file} {path_prefix} {seed} {mode} {stop_after} {threads}.
LUA = r"""-- generated by benchmarks/resolution.py
local suffixes = {}
for line in io.lines("{suffix_file}") do suffixes[#suffixes + 1] = line end
local n = #suffixes
local path_prefix = "{path_prefix}"
local mode = "{mode}"            -- "random": uniform over all suffixes; "cycle": in order (warm-up)
local stop_after = {stop_after}  -- cycle mode: responses after which wrk exits
local nthreads = {threads}
local counter = 0

function setup(thread)           -- main state: number the threads
  counter = counter + 1
  thread:set("tid", counter)
end

function init(args)              -- thread state
  math.randomseed({seed} + 7919 * (tid or 1))
  math.random(); math.random()
  pos = (tid or 1) - 1 - nthreads
  seen = 0
end

if mode == "random" then
  request = function()
    return wrk.format("GET", path_prefix .. suffixes[math.random(n)])
  end
else
  request = function()           -- thread t walks t, t + T, t + 2T, ... (wrapping round)
    pos = pos + nthreads
    return wrk.format("GET", path_prefix .. suffixes[(pos % n) + 1])
  end
  response = function(status, headers, body)
    seen = seen + 1
    if status ~= 200 then io.write("WARM-STATUS " .. status .. "\n") end
    if seen >= stop_after then   -- wrk would wait out -d: leave as soon as the pass is done
      io.write("WARMED " .. seen .. "\n"); io.flush(); os.exit(0)
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def write_lua(path: Path, suffix_file: Path, prefix: str, *, mode: str = "random", seed: int = 1,
              stop_after: int = 0, threads: int = 1) -> Path:
    text = LUA
    for k, v in {"suffix_file": str(suffix_file), "path_prefix": f"/api/handles/{prefix}/", "mode": mode,
                 "seed": str(seed), "stop_after": str(stop_after), "threads": str(threads)}.items():
        text = text.replace("{" + k + "}", v)
    path.write_text(text, encoding="utf-8")
    return path


def warm_pass(wrk: str, url: str, script: Path, *, connections: int, n: int) -> float:
    """One ordered pass over all ``n`` ids (one wrk thread; the script exits after ``n`` responses)."""
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(60, n // 200)}s", "--timeout=5s", "-s", str(script), url]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    text = out.stdout + out.stderr
    if out.returncode != 0 or f"WARMED {n}" not in text or "WARM-STATUS" in text:
        raise RuntimeError(f"warm-up pass failed (exit {out.returncode}): {' '.join(cmd)}\n{text[-3000:]}")
    return time.perf_counter() - t0


def run_wrk(wrk: str, url: str, script: Path, *, threads: int, connections: int, duration: float,
            timeout_s: int = 5) -> dict:
    cmd = [wrk, "--latency", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
           f"--timeout={timeout_s}s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    text = out.stdout + out.stderr
    m = re.search(r"^RESULT (\{.*\})$", text, re.MULTILINE)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed (exit {out.returncode}): {' '.join(cmd)}\n{text[-3000:]}")
    r = json.loads(m.group(1))
    rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
    r["rps"] = float(rps.group(1)) if rps else r["requests"] / (r["duration_us"] / 1e6)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    r["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    r["socket_errors"] = r["connect"] + r["read"] + r["write"] + r["timeout"]
    r["errors"] = r["socket_errors"] + max(r["non2xx"], r["status"])
    r["cmd"] = " ".join(cmd)
    r["text"] = text
    return r


# --------------------------------------------------------------------------- PostgreSQL
def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    cands = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    cands.sort(key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0, reverse=True)
    return Path(cands[0]).parent if cands else None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free loopback port (initdb + pg_ctl), private socket
    directory, removed on :meth:`stop`.  As root, initdb/pg_ctl run as ``postgres`` (or ``nobody``):
    PostgreSQL refuses to run as root."""

    def __init__(self, console):
        self.console = console
        self.bin = _pg_bin()
        if self.bin is None:
            raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found on PATH or under "
                             "/usr/lib/postgresql/*/bin: install Debian's 'postgresql' or give --pg-url")
        self.base = Path(tempfile.mkdtemp(prefix="wb-bench-pg-"))
        self.run_as = {}
        if os.geteuid() == 0:
            import pwd
            for name in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    pw = pwd.getpwnam(name)
                    break
            else:
                raise SystemExit("running as root and no 'postgres'/'nobody' user to run PostgreSQL as")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
            self.run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            self.env = dict(os.environ, HOME=str(self.base), USER=pw.pw_name, LOGNAME=pw.pw_name)
        else:
            self.env = dict(os.environ)
        self.base.chmod(0o700)
        self.data = self.base / "data"
        self.log = self.base / "postgresql.log"
        self.port = None
        self.started = False

    def _run(self, *args, check=True, timeout=120):
        return subprocess.run([str(a) for a in args], cwd=self.base, env=self.env, capture_output=True,
                              text=True, check=check, timeout=timeout, **self.run_as)

    def start(self) -> str:
        self._run(self.bin / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        last = ""
        for _ in range(3):                      # port taken between choice and start: another one
            self.port = free_port()
            opts = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                    "-c shared_buffers=256MB -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            r = self._run(self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-o", opts, "-w", "-t", "60",
                          "start", check=False)
            if r.returncode == 0:
                self.started = True
                return self.url("postgres")
            last = r.stdout + r.stderr + (self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "")
        raise SystemExit(f"could not start the private PostgreSQL:\n{last}")

    def url(self, dbname: str, socket: bool = False) -> str:
        if socket:   # the Unix-domain socket: how a node reaches a PostgreSQL on its own host
            return f"postgresql+psycopg://postgres@/{dbname}?host={self.base}&port={self.port}"
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def version(self) -> str:
        return self._run(self.bin / "postgres", "--version", check=False).stdout.strip()

    def stop(self) -> None:
        if self.started:
            self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False)
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)


def ensure_database(server_url: str, dbname: str) -> str:
    """Create ``dbname`` on the server of ``server_url`` unless it exists; its SQLAlchemy URL."""
    import sqlalchemy as sa

    url = sa.engine.make_url(server_url)
    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            there = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": dbname}).first()
            if not there:
                conn.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
    finally:
        eng.dispose()
    return url.set(database=dbname).render_as_string(hide_password=False), version


# --------------------------------------------------------------------------- the node
class Node:
    """``workbench idnode serve`` in its own process group; :meth:`stop` kills the group."""

    def __init__(self, db_url: str, prefix: str, *, workers: int, cache_size: int | None, log: Path,
                 supported: set[str], extra: list[str] = (), env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "workbench.cli", "idnode", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--db", db_url, "--prefix", prefix]
        if "--workers" in supported:
            cmd += ["--workers", str(workers)]
        if cache_size is not None and "--cache-size" in supported:
            cmd += ["--cache-size", str(cache_size)]
        # a log line per request would be measured too
        if "--no-access-log" in supported:
            cmd.append("--no-access-log")
        elif "--log-level" in supported:
            cmd += ["--log-level", "warning"]
        cmd += list(extra)
        self.cmd = cmd
        self.log = log
        env = dict(os.environ, **(env or {}),
                   PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
        self._fh = open(log, "wb")              # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, probe_path: str, timeout: float = 60.0) -> float:
        import httpx

        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + probe_path, timeout=2.0).status_code == 200:
                    return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"node did not answer within {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, n: int = 3000) -> str:
        self._fh.flush()
        return self.log.read_bytes()[-n:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        else:                                   # leader gone: make sure no worker is left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._fh.close()


def serve_flags() -> set[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "idnode", "serve", "--help"], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=False)
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout))


def check_correctness(node: Node, store, prefix: str, sfx: list[str], rng: random.Random, k: int = 5) -> str:
    """Resolve ``k`` random identifiers over HTTP and compare with the store; an unknown one → 404."""
    import httpx

    with httpx.Client(base_url=node.url, timeout=10.0) as client:
        for s in rng.sample(sfx, k):
            r = client.get(f"/api/handles/{prefix}/{s}")
            want = store.get(f"{prefix}/{s}")
            if r.status_code != 200 or want is None:
                raise RuntimeError(f"{prefix}/{s}: HTTP {r.status_code} (in store: {want is not None}) {r.text[:300]}")
            body = r.json()
            got = sorted(body.get("values", []), key=lambda v: v["index"])
            exp = sorted((v.to_json() for v in want.values if v.pub_read), key=lambda v: v["index"])
            if body.get("responseCode") != 1 or body.get("handle", "").lower() != f"{prefix}/{s}".lower() or got != exp:
                raise RuntimeError(f"{prefix}/{s}: resolved record differs from the store:\n{body}\nvs\n{exp}")
        r = client.get(f"/api/handles/{prefix}/NOT.REGISTERED.20250101.999999999")
        if r.status_code != 404 or r.json().get("responseCode") != 100:
            raise RuntimeError(f"unregistered identifier: HTTP {r.status_code} {r.text[:300]} (want 404, code 100)")
    return f"{k} random ids = store records, unknown id → 404/100"


# --------------------------------------------------------------------------- flood (issue 10)
FLOOD_PASSWORD = "bench-admin-secret"
FLOOD_ENV = "WB_BENCH_ADMIN_PW"


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))] if xs else float("nan")


def probe_resolution(url: str, prefix: str, sfx: list[str], seconds: float, rng: random.Random) -> dict:
    """One client resolving random ids one after another for ``seconds``: latencies in ms."""
    import httpx

    lat, bad = [], 0
    with httpx.Client(base_url=url, timeout=30.0) as c:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            r = c.get(f"/api/handles/{prefix}/{rng.choice(sfx)}")
            lat.append((time.perf_counter() - t0) * 1e3)
            bad += r.status_code != 200
    return {"n": len(lat), "p50_ms": statistics.median(lat), "p99_ms": _percentile(lat, 99),
            "max_ms": max(lat), "non200": bad}


def flood_worker(url: str, prefix: str, seconds: float, clients: int) -> None:
    """``--flood-worker``: ``clients`` threads sending wrong-password PUTs until ``seconds`` pass;
    prints the answers by status as JSON."""
    import threading
    from collections import Counter

    import httpx

    counts: Counter = Counter()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def run(i: int) -> None:
        local: Counter = Counter()
        body = {"values": [{"index": 1, "type": "URL", "data": "https://flood.example/"}]}
        with httpx.Client(base_url=url, timeout=30.0, auth=(f"300:{prefix}/admin", f"wrong-{i}")) as c:
            while time.perf_counter() < deadline:
                try:
                    local[c.put(f"/api/handles/{prefix}/flood.{i}", json=body).status_code] += 1
                except httpx.HTTPError as exc:
                    local[type(exc).__name__] += 1
        with lock:
            counts.update(local)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("FLOOD " + json.dumps({str(k): v for k, v in counts.items()}), flush=True)


def login_timing(url: str, prefix: str, n: int) -> dict:
    """Wrong-password PUTs, one at a time, alternating an existing user (the admin) and unknown ones:
    client-side times in ms (medians) and the answers' statuses."""
    import httpx

    known, unknown, statuses = [], [], set()
    body = {"values": [{"index": 1, "type": "URL", "data": "https://timing.example/"}]}
    with httpx.Client(base_url=url, timeout=30.0) as c:
        for i in range(n + 2):                   # the first pair warms the connection and the pool
            for user, out in ((f"300:{prefix}/admin", known), (f"300:{prefix}/nobody.{i}", unknown)):
                t0 = time.perf_counter()
                r = c.put(f"/api/handles/{prefix}/timing.{i}", json=body, auth=(user, "not-the-password"))
                if i >= 2:
                    out.append((time.perf_counter() - t0) * 1e3)
                statuses.add(r.status_code)
    return {"known_ms": statistics.median(known), "unknown_ms": statistics.median(unknown),
            "known_p90_ms": _percentile(known, 90), "unknown_p90_ms": _percentile(unknown, 90),
            "n": n, "statuses": sorted(statuses)}


def flood_run(args, sfx, flags, workdir, console) -> list[dict]:
    import sqlite3

    db_url, _version = prepare_sqlite(args, sfx, console)
    src = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    copy = workdir / "flood.sqlite"
    dst = sqlite3.connect(copy)
    src.backup(dst)                                  # a consistent copy: the cached database stays as it is
    src.close()
    dst.close()
    configs = [("node defaults", [])]
    if "--login-burst" in flags:
        configs = [("limiter on (defaults)", []), ("limiter off", ["--login-burst", "0"])]
    rng = random.Random(11)
    results = []
    for label, extra in configs:
        node = Node(f"sqlite:///{copy}", args.prefix, workers=args.flood_workers, cache_size=None,
                    log=workdir / f"node-flood-{len(results)}.log", supported=flags,
                    extra=["--admin", f"300:{args.prefix}/admin", "--admin-password-env", FLOOD_ENV, *extra],
                    env={FLOOD_ENV: FLOOD_PASSWORD})
        try:
            node.wait_ready(f"/api/handles/{args.prefix}/{sfx[0]}")
            probe_resolution(node.url, args.prefix, sfx, 1.0, rng)          # warm-up
            quiet = probe_resolution(node.url, args.prefix, sfx, args.flood_seconds, rng)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--flood-worker", node.url, args.prefix,
                   str(args.flood_seconds + 2.0), str(args.flood_clients)]
            flooders = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(1.0)
            flooded = probe_resolution(node.url, args.prefix, sfx, args.flood_seconds, rng)
            out, _ = flooders.communicate(timeout=args.flood_seconds + 60)
            m = re.search(r"^FLOOD (\{.*\})$", out, re.MULTILINE)
            answers = json.loads(m.group(1)) if m else {"worker output": out[-500:]}
            timing = None
            if not extra and len(configs) == 2:
                pass                                  # the limiter would answer 429 after a few: time it when off
            else:
                time.sleep(0.5)
                timing = login_timing(node.url, args.prefix, args.login_samples)
        finally:
            node.stop()
        results.append({"config": label, "quiet": quiet, "flooded": flooded, "answers": answers,
                        "timing": timing, "node_cmd": " ".join(node.cmd)})
        console.print(f"flood, {label}: resolution p50 {quiet['p50_ms']:.2f} → {flooded['p50_ms']:.2f} ms, "
                      f"p99 {quiet['p99_ms']:.2f} → {flooded['p99_ms']:.2f} ms "
                      f"({quiet['n']:,} / {flooded['n']:,} resolutions); flood answers {answers}"
                      + (f"; wrong password: existing user {timing['known_ms']:.1f} ms, unknown user "
                         f"{timing['unknown_ms']:.1f} ms (medians of {timing['n']})" if timing else ""))
    return results


# --------------------------------------------------------------------------- driver
def prepare_sqlite(args, sfx, console) -> tuple[str, str]:
    from workbench.identifiers.store import HandleStore

    db = DATA / f"ids-{args.ids}-{args.prefix}-{args.schema}.sqlite"
    meta = db.with_suffix(".json")
    want = {"ids": args.ids, "prefix": args.prefix, "scheme": "product", "first": sfx[0], "last": sfx[-1],
            "schema": args.schema}
    url = f"sqlite:///{db}"
    if db.exists() and meta.exists():
        try:
            ok = {k: json.loads(meta.read_text()).get(k) for k in want} == want
        except ValueError:
            ok = False
        if ok and count_handles(HandleStore(url), args.prefix) == args.ids:
            console.print(f"sqlite: reusing [bold]{db.relative_to(ROOT)}[/] ({args.ids:,} identifiers)")
            return url, "SQLite " + _sqlite_version()
    meta.unlink(missing_ok=True)
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")):
        p.unlink(missing_ok=True)
    store = HandleStore(url)
    t0 = time.perf_counter()
    counts = register(store, args.prefix, sfx, console, "sqlite")
    dt_ = time.perf_counter() - t0
    n = count_handles(store, args.prefix)
    if n != args.ids:
        raise SystemExit(f"sqlite: {n} handles after loading, expected {args.ids}")
    store.engine.dispose()
    meta.write_text(json.dumps({**want, "seconds": dt_, "counts": counts}, indent=1))
    console.print(f"sqlite: registered {counts['new']:,} new identifiers in {dt_:.1f} s "
                  f"({args.ids / dt_:,.0f}/s) → {db.relative_to(ROOT)}")
    return url, "SQLite " + _sqlite_version()


def _sqlite_version() -> str:
    import sqlite3
    return sqlite3.sqlite_version


def prepare_postgres(args, sfx, console, stack) -> tuple[str, str]:
    from workbench.identifiers.store import HandleStore

    if args.pg_url:
        server_url, where = args.pg_url, "given server (--pg-url)"
    else:
        pg = PrivatePostgres(console)
        stack.callback(pg.stop)
        with console.status("postgresql: initdb + pg_ctl start (private throw-away cluster)…"):
            server_url = pg.start()
        if args.pg_socket:
            server_url = pg.url("postgres", socket=True)
        where = (f"private cluster on port {pg.port}, reached through "
                 f"{'its Unix socket' if args.pg_socket else 'TCP 127.0.0.1'} (fsync off; stopped at exit)")
    dbname = f"wb_bench_resolution_{args.ids}_{args.schema}"
    url, version = ensure_database(server_url, dbname)
    console.print(f"postgresql: {where}, PostgreSQL {version}, database {dbname}")
    store = HandleStore(url)
    n = count_handles(store, args.prefix)
    if n == args.ids and store.exists(f"{args.prefix}/{sfx[-1]}") and store.exists(f"{args.prefix}/{sfx[0]}"):
        console.print(f"postgresql: reusing {n:,} registered identifiers")
    else:
        t0 = time.perf_counter()
        counts = register(store, args.prefix, sfx, console, "postgresql")
        dt_ = time.perf_counter() - t0
        n = count_handles(store, args.prefix)
        if n != args.ids:
            raise SystemExit(f"postgresql: {n} handles under {args.prefix} after loading, expected {args.ids} "
                             "(a database left over with other records? drop it)")
        console.print(f"postgresql: registered {counts['new']:,} new ({counts['unchanged']:,} unchanged) "
                      f"in {dt_:.1f} s ({args.ids / dt_:,.0f}/s)")
    store.engine.dispose()
    import sqlalchemy as sa

    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with console.status("postgresql: VACUUM (ANALYZE) (so that autovacuum does not run during the timed runs)…"), \
            eng.connect() as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE)")
    eng.dispose()
    return url, f"PostgreSQL {version}"


def one_run(args, backend, mode, db_url, store, sfx, suffix_file, wrk, flags, workdir, console, rng) -> dict:
    cache = args.ids if mode == "cached" else 0
    node = Node(db_url, args.prefix, workers=args.workers, cache_size=cache if args.cache_flag else None,
                log=workdir / f"node-{backend}-{mode}.log", supported=flags)
    try:
        ready = node.wait_ready(f"/api/handles/{args.prefix}/{sfx[0]}")
        note = check_correctness(node, store, args.prefix, sfx, rng)
        warm = {}
        if mode == "cached":
            # ordered passes over every identifier: with W worker processes each pass lands on
            # whichever worker holds the connection, so several passes (fresh connections each)
            passes = args.warmup_passes if args.warmup_passes is not None else max(1, 2 * args.workers)
            script = write_lua(workdir / "warm-cycle.lua", suffix_file, args.prefix, mode="cycle",
                               stop_after=args.ids)
            t0 = time.perf_counter()
            for _ in range(passes):         # fresh connections each pass
                warm_pass(wrk, node.url, script, connections=args.connections, n=args.ids)
            warm = {"what": f"{passes} ordered pass(es) over all {args.ids:,} ids", "requests": passes * args.ids,
                    "seconds": time.perf_counter() - t0}
        else:
            script = write_lua(workdir / "warm-random.lua", suffix_file, args.prefix, mode="random", seed=99)
            t0 = time.perf_counter()
            w = run_wrk(wrk, node.url, script, threads=args.threads, connections=args.connections,
                        duration=args.warmup_seconds)
            warm = {"what": f"{args.warmup_seconds:.0f} s random (pools, page cache)", "requests": w["requests"],
                    "seconds": time.perf_counter() - t0}
        note += "; " + check_correctness(node, store, args.prefix, sfx, rng) if mode == "cached" else ""
        script = write_lua(workdir / f"run-{backend}-{mode}.lua", suffix_file, args.prefix, mode="random",
                           seed=args.seed)
        r = run_wrk(wrk, node.url, script, threads=args.threads, connections=args.connections,
                    duration=args.duration)
        if node.proc.poll() is not None:
            raise RuntimeError(f"node died during the run:\n{node.tail()}")
    finally:
        node.stop()
    r.update(backend=backend, mode=mode, ready_s=ready, warm=warm, correctness=note, node_cmd=" ".join(node.cmd))
    return r


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=100_000, help="registered identifiers (default 100,000)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per timed wrk run (default 20)")
    ap.add_argument("--workers", type=int, default=2, help="node worker processes (default 2 = cores)")
    ap.add_argument("--connections", type=int, default=16,
                    help="wrk connections (default 16: at 32 the p99 on 2 cores roughly doubles for little more throughput)")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: leaves the cores to the node)")
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma list of sqlite, postgresql")
    ap.add_argument("--modes", default="cached,uncached", help="comma list of cached, uncached")
    ap.add_argument("--pg-url", default=None,
                    help="SQLAlchemy URL of a PostgreSQL server to use (any database on it; a dedicated "
                         "database wb_bench_resolution_<ids> is created); default: a private throw-away cluster")
    ap.add_argument("--pg-tcp", dest="pg_socket", action="store_false",
                    help="private cluster: the node connects over TCP loopback instead of the Unix socket")
    ap.add_argument("--prefix", default=PREFIX, help=f"enterprise prefix (default {PREFIX})")
    ap.add_argument("--warmup-passes", type=int, default=None,
                    help="cached runs: ordered passes over all ids before timing (default 2 × workers)")
    ap.add_argument("--warmup-seconds", type=float, default=3.0, help="uncached runs: random warm-up (default 3)")
    ap.add_argument("--seed", type=int, default=42, help="Lua math.randomseed base (default 42)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2,000 ids, 3 s runs")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    ap.add_argument("--flood", action="store_true",
                    help="measure resolution latency under a wrong-password flood instead (SQLite; see above)")
    ap.add_argument("--flood-seconds", type=float, default=12.0, help="--flood: seconds per phase (default 12)")
    ap.add_argument("--flood-clients", type=int, default=4, help="--flood: wrong-password clients (default 4)")
    ap.add_argument("--flood-workers", type=int, default=1, help="--flood: node worker processes (default 1)")
    ap.add_argument("--login-samples", type=int, default=40,
                    help="--flood: wrong-password PUTs timed per user kind (default 40)")
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--flood-worker":
        flood_worker(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
        return 0
    args = ap.parse_args(argv)
    if args.quick:
        args.ids, args.duration = 2_000, 3.0
        args.warmup_seconds = min(args.warmup_seconds, 1.0)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(backends) - {"sqlite", "postgresql"} or set(modes) - {"cached", "uncached"} or not backends or not modes:
        ap.error("--backends: sqlite,postgresql; --modes: cached,uncached")

    from rich.console import Console
    from rich.table import Table

    from workbench.identifiers.store import HandleStore

    console = Console() if sys.stdout.isatty() else Console(width=150)
    # SIGTERM → the same clean-up as Ctrl-C (node process groups, PostgreSQL)
    signal.signal(signal.SIGTERM, _interrupt)
    facts = machine_facts()
    wrk = ensure_wrk(console)
    wver = wrk_version(wrk)
    flags = serve_flags()
    args.cache_flag = "--cache-size" in flags
    console.print(f"machine: {facts['cores']} cores ({facts['usable cores']} usable), {facts['cpu']}; "
                  f"Python {facts['python']}; {facts['platform']}")
    console.print(f"load generator: {wver}")
    console.print(f"wrk: {args.threads} thread(s), {args.connections} connections, {args.duration:.0f} s per run, "
                  f"uniform random ids; node: {args.workers} worker(s)")
    missing = [f for f in ("--workers", "--cache-size") if f not in flags]
    if missing:
        console.print(f"[yellow]warning:[/] `workbench idnode serve` has no {', '.join(missing)} yet — "
                      "runs use its defaults (one worker; cached and uncached are then the same server)")

    DATA.mkdir(parents=True, exist_ok=True)
    args.schema = schema_fingerprint()
    with console.status(f"building {args.ids:,} product suffixes…"):
        sfx = suffixes(args.ids)
    suffix_file = DATA / f"suffixes-{args.ids}.txt"
    text = "\n".join(sfx) + "\n"
    if not suffix_file.exists() or suffix_file.read_text() != text:
        suffix_file.write_text(text)
    console.print(f"identifiers: {args.ids:,} like {args.prefix}/{sfx[0]} … {args.prefix}/{sfx[-1]} "
                  f"(scheme product = class.model.date.serial)")

    if args.flood:
        with tempfile.TemporaryDirectory(prefix="bench-flood-") as workdir:
            try:
                flood = flood_run(args, sfx, flags, Path(workdir), console)
            except KeyboardInterrupt:
                console.print("[red]interrupted[/]")
                return 130
        if args.json:
            args.json.write_text(json.dumps({"facts": facts, "flood": flood}, indent=1))
        return 0

    results = []
    rng = random.Random(7)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-resolution-")))
        try:
            for backend in backends:
                if backend == "sqlite":
                    db_url, version = prepare_sqlite(args, sfx, console)
                else:
                    db_url, version = prepare_postgres(args, sfx, console, stack)
                store = HandleStore(db_url)
                for mode in modes:
                    load = os.getloadavg()[0]
                    with console.status(f"{backend} {mode}: node up, correctness, warm-up, wrk {args.duration:.0f} s…"):
                        r = one_run(args, backend, mode, db_url, store, sfx, suffix_file, wrk, flags, workdir,
                                    console, rng)
                    r["version"], r["load_before"] = version, load
                    results.append(r)
                    ok = r["rps"] >= TARGETS[mode] and r["p99_us"] / 1e3 < TARGET_P99_MS and r["errors"] == 0
                    console.print(f"{backend} {mode}: {r['rps']:,.0f} resolutions/s, p50 {r['p50_us'] / 1e3:.2f} ms, "
                                  f"p99 {r['p99_us'] / 1e3:.2f} ms, errors {r['errors']} — warm-up "
                                  f"{r['warm']['what']}: {r['warm']['requests']:,} requests in "
                                  f"{r['warm']['seconds']:.1f} s; check: {r['correctness']}; "
                                  f"load average before: {load:.2f}"
                                  + ("" if ok else "  [red]target missed[/]"))
                store.engine.dispose()
        except KeyboardInterrupt:
            console.print("[red]interrupted[/] — stopping the node and PostgreSQL")
            return 130

    t = Table(title=f"Identifier resolution over loopback — {args.ids:,} registered ids, wrk {args.threads} thread(s), "
                    f"{args.duration:.0f} s per run, {facts['cores']} cores (load generator included)")
    for c in ("backend", "mode", "workers", "connections", "resolutions/s", "p50 ms", "p99 ms", "max ms",
              "errors", "target met"):
        t.add_column(c, justify="right" if c not in ("backend", "mode") else "left")
    for r in results:
        met = r["rps"] >= TARGETS[r["mode"]] and r["p99_us"] / 1e3 < TARGET_P99_MS and r["errors"] == 0
        t.add_row(r["backend"], r["mode"], str(args.workers), str(args.connections), f"{r['rps']:,.0f}",
                  f"{r['p50_us'] / 1e3:.2f}", f"{r['p99_us'] / 1e3:.2f}", f"{r['max_us'] / 1e3:.1f}",
                  f"{r['errors']}" + (f" (non-2xx {r['non2xx']}, socket {r['socket_errors']})" if r["errors"] else ""),
                  "[green]yes[/]" if met else "[red]no[/]")
    console.print(t)
    console.print(f"targets: ≥ {TARGETS['cached']:,}/s cached, ≥ {TARGETS['uncached']:,}/s uncached, "
                  f"p99 < {TARGET_P99_MS:.0f} ms, 0 errors")
    for r in results:
        console.print(f"  {r['backend']} {r['mode']}: {r['version']}; node: {r['node_cmd']}", highlight=False)
    if args.json:
        keep = [{k: v for k, v in r.items() if k != "text"} for r in results]
        args.json.write_text(json.dumps({"facts": facts, "wrk": wver, "args": {k: str(v) for k, v in vars(args).items()},
                                         "results": keep}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
