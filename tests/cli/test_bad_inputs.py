"""Every ``workbench`` command on bad input: exit code 2 and one line a person can act on.

The click tree is walked (every command of every group, so a command added later is covered
without editing this file).  Each parameter that takes a file (``click.Path``/``click.File``,
and the string options that name a database or a lake: ``--registry``, ``--db``, ``--lake`` …)
is given every file of the corpus of :mod:`tests.cli.badfiles`; each parameter that takes a
folder is given folders with one bad file among good ones (or a file where the folder should
be); options with something to parse are given impossible values (``--period 2025-13``).  The
other required parameters get valid values in a temporary folder.

What must come out: exit code 2; exactly one non-empty line (stdout and stderr together; a
trailing newline allowed); the line names the file (its name) or the option/value; no traceback
and no internal message (exception class names, errno, codec and parser jargon).  Click's own
usage errors are held to the same rule: the ``workbench`` group prints them as one line
(``error: Invalid value for '--year': … (see `workbench calc --help`)``), because a person
fixing a command line needs the one sentence, not the usage block.

Most cases run in-process through ``CliRunner``; the long-running commands (servers, the gateway,
the monitor, the simulator) and a sample of the others run as real processes
(``python -m workbench.cli``) with a timeout, which also shows nothing reaches stderr but the line.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import badfiles
import click
import pytest
from click.testing import CliRunner

from workbench.cli.main import main

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

#: commands that serve or loop until stopped: only their bad-input paths, with a timeout (and one real process each)
LONG_RUNNING = {"gateway", "devices monitor", "devices simulate", "idnode serve", "schedule serve"}
SUBPROCESS_TIMEOUT = 60
#: for the long-running commands, these files of the corpus (each costs a process start)
SUBPROCESS_FILES = ("empty.csv", "random.csv", "utf16.csv", "png.png", "invalid.json", "truncated.csv")

#: what a person should never have to read
FORBIDDEN = re.compile(
    r"Traceback|\b\w+(Error|Exception|Invalid|Warning)\b(?<!WorkbenchError)|BadZipFile|Errno|errno|codec can't|"
    r"\bC error\b|<class |object at 0x|\bpyarrow\b|\bpandas\b|sqlalchemy|sqlite3\.|File \"|line \d+, in ")

#: string options that name a database file or a lake folder: given bad files too
STORE_OPTIONS = {"registry_url", "db", "db_url", "alarms_db", "lake_root", "labels_url", "certification_url"}

#: files a command writes but reads first when they exist (merged into)
READ_OUTPUTS = {"credentials", "file"}

#: impossible values of options that have something to parse (param name → values)
BAD_VALUES = {
    "period": ["2025-13", "2025-02-30"],
    "period_start": ["2025-13"],
    "start": ["2025-02-30"],
    "before": ["2025-02-30"],
    "since": ["25:61"],
    "year": ["twenty"],
    "region": ["Atlantis"],
    "gwp": ["AR9"],
    "partition": ["3/2"],
    "broker": ["http://broker"],
    "broker_url": ["mqtt://host:99999"],
    "prefix": ["not a prefix"],
    "enterprise": ["../etc"],
    "enterprise_id": ["no such enterprise!"],
    "query": ["SELEC nonsense FROM nowhere"],
    "upstreams": ["nonsense"],
    "identity": ["not-an-identity"],
    "config_json": ["{not json", "@missing.json"],
    "args_json": ["{not json"],
    "value_added": ["-5"],
    "province": ["CN-XX"],
    "device_id": ["NO-SUCH-DEVICE"],
    "status": ["sleeping"],
    "admin": ["no-colon"],
    "now_text": ["2025-13-45T00:00"],
    "at_text": ["2025-02-30T06:00"],
    "idnode_url": ["ftp://node.example"],
}


def walk(group: click.Group, path=()):
    """(name path, command) of every command under ``group``, depth first."""
    for name in sorted(group.commands):
        cmd = group.commands[name]
        if isinstance(cmd, click.Group):
            yield from walk(cmd, path + (name,))
        else:
            yield path + (name,), cmd


COMMANDS = {" ".join(p): c for p, c in walk(main)}


def _kind(param: click.Parameter) -> str | None:
    """``file`` · ``folder`` (an existing one) · ``out`` (a folder the command makes) · ``store``
    (a database or lake named by a string) · None."""
    t = param.type
    if isinstance(t, click.File):
        return "file"
    if isinstance(t, click.Path):
        if t.file_okay and not t.exists and param.name not in READ_OUTPUTS:
            return None                 # a file the command writes (an existing one is replaced)
        if t.file_okay:
            return "file"
        return "folder" if t.exists else "out"
    if param.name in STORE_OPTIONS and not param.is_flag:
        return "store"
    return None


@dataclass(frozen=True)
class Case:
    command: str
    param: str            # the parameter given the bad input
    value: str            # corpus file name, folder case, or the bad option value
    kind: str             # file | folder | out | store | value
    names: tuple          # any of these must appear in the message

    @property
    def id(self) -> str:
        return f"{self.command}|{self.param}|{self.value}"


CORPUS_NAMES = sorted(badfiles.corpus_bytes())

#: the folders each folder parameter takes: (command, param) → "ent" | "demo" | "demo-activity" | "certs"
FOLDER_CASES = {
    ("registry import", "folders"): "ent",
    ("demo load", "data_dir"): "demo",
    ("lake load-demo", "data_dir"): "demo",
    ("demo latest-period", "data_dir"): "demo-activity",
    # (the simulator looks at --cert-dir only for the registry's devices: the shared registry has none)
    ("devices simulate", "cert_dir"): "none",
    ("gateway", "cert_dir"): "certs",
    ("grade", "region_dir"): "region",
}


def folder_cases(which: str) -> list[tuple[str, str, str]]:
    """(case name, the bad file's name in the folder, the corpus file in it)."""
    if which == "none":
        return []
    if which == "certs":
        return [(f"certs-{n}", "ca.crt", n) for n in ("empty.csv", "random.csv", "png.png")]
    if which == "region":       # a region directory (workbench grade) with one table replaced
        return [(f"region-{t}-{n}", t, n) for t in ("enterprises.csv", "energy.csv", "value_added.csv")
                for n in CORPUS_NAMES if n.endswith(".csv")]
    cases = badfiles.dir_cases(CORPUS_NAMES, demo=which != "ent")
    if which == "demo-activity":
        cases = [c for c in cases if c[1] == "activity.csv"]
    return cases


def cases() -> list[Case]:
    out = []
    for name, cmd in COMMANDS.items():
        for p in cmd.params:
            kind = _kind(p)
            flag = p.opts[0] if isinstance(p, click.Option) else p.human_readable_name
            if kind in ("file", "store"):
                names = CORPUS_NAMES if name not in LONG_RUNNING else SUBPROCESS_FILES
                if kind == "store":
                    # (an empty file is a good empty SQLite database)
                    names = [n for n in names if n in ("random.csv", "png.png", "utf16.csv")
                             and (name not in LONG_RUNNING or n in SUBPROCESS_FILES)]
                out += [Case(name, p.name, n, kind, (n,)) for n in names]
            elif kind == "folder":
                which = FOLDER_CASES.get((name, p.name))
                if which is None:
                    raise AssertionError(f"`workbench {name}` takes a folder ({flag}): add its bad folders to "
                                         f"FOLDER_CASES in {__file__}")
                out += [Case(name, p.name, case, kind, (target,)) for case, target, *_ in folder_cases(which)]
                out.append(Case(name, p.name, "random.csv", "file", ("random.csv",)))   # a file, not a folder
            elif kind == "out":
                out.append(Case(name, p.name, "random.csv", "file", ("random.csv",)))   # a file is in the way
            for v in BAD_VALUES.get(p.name, []):
                out.append(Case(name, p.name, v, "value", (v.lstrip("@"), flag, p.name)))
    return out


ALL_CASES = cases()


# ----------------------------------------------------------------------------------- fixtures
@dataclass
class World:
    root: Path
    corpus: dict
    folders: dict
    lake: Path
    registry: Path
    good: dict


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    from workbench.ingestion import ingest
    from workbench.lake.store import Lake
    from workbench.registry import MasterData, import_enterprise

    root = tmp_path_factory.mktemp("bad-inputs")
    corpus = badfiles.make_corpus(root / "corpus")
    folders = {}
    for demo in (False, True):
        folders.update(badfiles.make_dirs(root / ("demo-folders" if demo else "folders"), corpus, demo=demo))
    for case, _, bad in folder_cases("certs"):
        d = root / "folders" / case
        d.mkdir(parents=True, exist_ok=True)
        for f in ("device.crt", "device.key", "ca.crt"):
            (d / f).write_bytes(corpus[bad].read_bytes())
        folders[case] = (d, bad)
    from workbench.demo.region import generate_region

    region = Path(generate_region(root / "good" / "region", enterprises=3, seed=1)["out"])
    for case, target, bad in folder_cases("region"):
        shutil.copytree(region, root / "folders" / case)
        (root / "folders" / case / target).write_bytes(corpus[bad].read_bytes())
        folders[case] = (root / "folders" / case, target)
    ent = badfiles.good_enterprise(root / "good" / "ent-a",
                                   doc={**badfiles.ENTERPRISE, "identifier_prefix": "88.123.4567"})
    demo = badfiles.good_demo_dir(root / "good" / "demo")
    registry = root / "registry.db"
    md = MasterData(f"sqlite:///{registry}")
    try:
        import_enterprise(md, ent, who="test")
        lake = Lake(root / "lake", enterprise="ent-a")
        lake.register_master_data(md)
    finally:
        md.dispose()
    from connectors import files

    readings = root / "good" / "readings.csv"
    readings.write_text(badfiles.READINGS, encoding="utf-8")
    ingest(lake, files.read_csv(readings, kind="readings", defaults={"quantity": "active_energy", "unit": "kWh"}),
           sender="test")                   # the quality report needs some readings
    good = {"activity": demo / "activity.csv", "meters": ent / "meters.csv", "boundary": ent / "boundary.csv",
            "ent": ent, "demo": demo, "region": region}
    return World(root, corpus, folders, root / "lake", registry, good)


@pytest.fixture(scope="session")
def env(world, tmp_path_factory):
    """Environment of every run: passwords set (so commands get as far as their input), the lake
    and registry defaults in the temporary folder, crash logs there too."""
    e = {"WB_GATEWAY_PASSWORD": "pw", "WB_MONITOR_PASSWORD": "pw", "WB_MANAGER_PASSWORD": "pw",
         "WB_BROKER_ADMIN_PASSWORD": "pw", "WORKBENCH_LAKE": str(world.lake),
         "WORKBENCH_REGISTRY": str(world.registry), "WORKBENCH_LOG_DIR": str(world.root / "crash-logs"),
         "WORKBENCH_ENTERPRISE": ""}
    return e


def _closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


#: optional parameters given a value anyway: where the command keeps its state (never the repository's data/)
ALWAYS = {"lake_root", "registry_url", "db", "db_url", "alarms_db", "credentials", "pki", "out", "output_dir"}


def _scenarios_config(work: Path) -> Path:
    """A good `workbench models scenarios --config` file."""
    path = work / "scenarios.yaml"
    path.write_text("measures:\n  green: {lever: green_electricity, share: 0.5}\n", encoding="utf-8")
    return path


def valid(world: World, name: str, param: click.Parameter, work: Path):
    """A valid value for a parameter the case does not test (None: leave it out)."""
    port = valid.port
    table = {
        "file": world.good["activity"], "files": world.good["activity"], "paths": world.good["activity"],
        "meters": world.good["meters"], "boundary_csv": world.good["boundary"], "boundary": None,
        "folders": world.good["ent"], "data_dir": world.good["demo"],
        "out": work / "out", "output_dir": work / "out", "broker_dir": work / "broker",
        "broker_pid": "999999999", "device": "M0001", "device_id": "M0001", "cmd": "restart",
        "config_json": "{}", "enterprise": "ent-a", "enterprise_id": "ent-a", "prefix": "88.123.4567",
        "db": f"sqlite:///{work / 'devices.db'}", "db_url": f"sqlite:///{work / 'handles.db'}",
        "alarms_db": f"sqlite:///{work / 'alarms.db'}", "registry_url": f"sqlite:///{world.registry}",
        "lake_root": str(world.lake), "identity": "300:88.123.4567/admin", "item": "raw_coal", "kind": "ncv",
        "query": "SELECT 1", "period": "2025-03", "broker": f"mqtt://127.0.0.1:{port}",
        "broker_url": f"mqtt://127.0.0.1:{port}", "credentials": work / "creds.json", "pki": work / "pki",
        "name": "alice", "role": "analyst", "enterprises": "ent-a",
        "region_dir": world.good["region"],
        "product": "cement", "year": "2025",
        "run_a": "1", "run_b": "2", "run": "1",
        "start": "2025-03", "end": "2025-03", "config": _scenarios_config(work),
    }
    if name in ("registry import", "demo load") and param.name == "registry_url":
        return f"sqlite:///{work / 'registry.db'}"          # imports write: each case its own database
    if param.name in table and (param.required or param.name in ALWAYS):
        return table[param.name]
    if param.required:
        raise AssertionError(f"no valid value for the required {param.human_readable_name} of `workbench {name}`: "
                             f"add one to valid() in {__file__}")
    return None


valid.port = _closed_port()


def argv(world: World, case: Case, work: Path) -> list[str]:
    """The command line of ``case``: the bad input in its parameter, valid values elsewhere."""
    cmd = COMMANDS[case.command]
    args: list[str] = case.command.split()
    (work / "creds.json").write_text("{}", encoding="utf-8")      # a good (empty) credentials file
    positional: list[str] = []
    for p in cmd.params:
        if p.name == case.param:
            if case.kind == "value":
                v = case.value
            elif case.kind == "folder":
                v = world.folders[case.value][0]
            else:
                v = world.corpus[case.value]
        else:
            v = valid(world, case.command, p, work)
        if v is None or (isinstance(p, click.Option) and p.is_flag):
            continue
        if isinstance(p, click.Argument):
            positional.append(str(v))
        else:
            args += [p.opts[0], str(v)]
    if "--encoding" in {o for p in cmd.params for o in getattr(p, "opts", [])} and case.value.startswith(
            ("gbk", "big5")):
        args += ["--encoding", "utf-8"]                     # GBK/Big5 bytes forced as UTF-8
    return args + ["--"] + positional if positional else args


# ----------------------------------------------------------------------------------- checks
def _crash(output: str) -> str:
    """The end of the crash log the output points to (what went wrong, for the failure message)."""
    m = re.search(r"details are in (\S+\.log)", output)
    if not m or not Path(m.group(1)).exists():
        return ""
    return "\n".join(Path(m.group(1)).read_text(encoding="utf-8").splitlines()[-6:])


def check(case: Case, exit_code: int, output: str) -> None:
    lines = output.rstrip("\n").split("\n")
    assert exit_code == 2, f"exit code {exit_code} (want 2):\n{output}{_crash(output)}"
    assert len(lines) == 1 and lines[0].strip(), f"want exactly one line, got {len(lines)}:\n{output}"
    line = lines[0]
    bad = FORBIDDEN.search(line)
    assert not bad, f"internal words ({bad.group(0)!r}) in: {line}"
    assert any(n.lower() in line.lower() for n in case.names), f"does not name any of {case.names}: {line}"


@contextlib.contextmanager
def _alarm(seconds: int, what: str):
    """Fail instead of hanging (the in-process commands must not wait on a broker or a server)."""
    def ring(*_):
        raise TimeoutError(f"{what} did not finish within {seconds} s")

    import logging

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    log_state = (list(root.handlers), root.level)
    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        for s, h in handlers.items():                   # a command may have set its own
            signal.signal(s, h)
        root.handlers[:], root.level = log_state[0], log_state[1]   # … and its own logging (the gateway does)


#: in-process: every case (the long-running commands too: their bad input is refused before they
#: start serving, and the alarm turns a command that starts anyway into a failure, not a hang)
IN_PROCESS = ALL_CASES


@pytest.mark.parametrize("case", IN_PROCESS, ids=[c.id for c in IN_PROCESS])
def test_bad_input_is_one_line(case, world, env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                     # defaults like devices.db land here, not in the repo
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    args = argv(world, case, tmp_path)
    with _alarm(60, f"workbench {' '.join(args)}"):
        r = CliRunner().invoke(main, args, catch_exceptions=True)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise AssertionError(f"workbench {' '.join(args)} raised {r.exception!r}") from r.exception
    check(case, r.exit_code, r.output)


#: real processes: the long-running commands, and a sample of the others
SUBPROCESS_SAMPLE = [next(c for c in ALL_CASES if c.command == cmd) for cmd in sorted(LONG_RUNNING)] + [
    c for c in ALL_CASES
    if (c.command, c.value) in {("calc", "random.csv"), ("lake ingest", "utf16.csv"), ("report inventory", "2025-13"),
                                ("registry import", "ent-boundary.csv-empty.csv"), ("quality report", "invalid.yaml")}]


def test_bad_input_in_a_real_process(world, env, tmp_path):
    """``python -m workbench.cli …`` as a user runs it: stdout + stderr hold the one line, nothing else."""
    penv = {**os.environ, **env, "PYTHONPATH": str(REPO)}

    def run(i_case):
        i, case = i_case
        work = tmp_path / str(i)
        work.mkdir()
        args = argv(world, case, work)
        try:
            p = subprocess.run([PYTHON, "-m", "workbench.cli", *args], check=False, cwd=work, env=penv,
                               capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            return case, args, None, "timed out"
        return case, args, p.returncode, p.stdout + p.stderr

    failures = []
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for case, args, code, out in pool.map(run, enumerate(SUBPROCESS_SAMPLE)):
            try:
                assert code is not None, out
                check(case, code, out)
            except AssertionError as exc:
                failures.append(f"workbench {' '.join(args)}: {exc}")
    assert not failures, f"{len(failures)} of {len(SUBPROCESS_SAMPLE)}:\n" + "\n\n".join(failures)


def test_every_command_is_reached():
    """The walk finds the commands (a group added without commands, or a broken walk, shows here)."""
    assert {"calc", "lake ingest", "registry import", "report inventory", "gateway"} <= set(COMMANDS)
    covered = {c.command for c in ALL_CASES}
    without = sorted(set(COMMANDS) - covered)
    # commands with nothing to parse wrongly: they take no file and no option with an impossible value
    assert set(without) <= {"factors sets", "lake batches", "lake rollup", "registry audit", "devices list",
                            "idnode token revoke", "devices register", "idnode register", "lake sync",
                            "devices command", "devices push-config", "devices cert issue",
                            "verify keygen", "models list"}, without    # keygen: an output path and a variable


# ----------------------------------------------------------------------------------- minimal good files
@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_registry_import_takes_files_with_only_the_required_columns(encoding, tmp_path):
    """Hand-written enterprise.json (id + a name), boundary.csv (node_id, parent_id, level) and
    meters.csv (meter_id, node_id, unit), in UTF-8 and in GB18030 (Chinese in a name column)."""
    boundary = "node_id,parent_id,level,name_zh\nENT,,enterprise,甲企业\nF01,ENT,facility,一号厂\n"
    folder = badfiles.good_enterprise(tmp_path / "ent-a", encoding=encoding, boundary=boundary)
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    r = CliRunner().invoke(main, ["registry", "import", str(folder), "--registry", db, "--json"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["registry", "show", "--enterprise", "ent-a", "--registry", db, "--json"])
    assert r.exit_code == 0, r.output
    shown = __import__("json").loads(r.output)
    assert [m["meter_id"] for m in shown["meters"]] == ["M0001", "M0002"]
    assert {n["name_zh"] for n in shown["boundary_nodes"]} == {"甲企业", "一号厂"}


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_lake_ingest_takes_a_meters_file_with_only_the_required_columns(encoding, tmp_path):
    meters = tmp_path / "meters.csv"
    meters.write_bytes("meter_id,node_id,unit,备注\nM0001,F01,kWh,一号表\n".encode(encoding))
    readings = tmp_path / "readings.csv"
    readings.write_text("meter_id,ts,value,quantity,unit\nM0001,2025-03-01 00:00,1.5,active_energy,kWh\n"
                        "M0001,2025-03-01 00:15,2.5,active_energy,kWh\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["lake", "ingest", str(readings), "--kind", "readings", "--meters", str(meters),
                                  "--lake", str(tmp_path / "lake")])
    assert r.exit_code == 0, r.output
    assert __import__("json").loads(r.output)["rows_curated"] == 2
