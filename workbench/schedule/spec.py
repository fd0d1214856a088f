"""Schedules in YAML: which notebook runs, with which parameters, when, and where its outputs go.

A schedules file (or every ``*.yaml``/``*.yml`` file of a folder, names unique across them)::

    defaults:                         # optional: keys every schedule of this file takes unless it sets them
      timezone: Asia/Shanghai
      output: output/scheduled/${name}
    schedules:
      - name: cement-monthly          # letters, digits, . _ - (unique)
        notebook: notebooks/inventory.ipynb
        cron: "0 6 2 * *"             # 5-field cron (workbench.schedule.cron): 06:00 on the 2nd
        timezone: Asia/Shanghai       # default Asia/Shanghai
        parameters:                   # the notebook's papermill parameters (workbench.schedule.periods)
          lake: data/lake
          enterprise_id: demo-cement
          period_start: ${month-1}
          period_end: ${month-1}
        output: output/scheduled/${name}   # each run writes into OUTPUT/run-NNNNN/
        start: 2026-01-01             # optional: fire times before it are never due
        max_catch_up: 12              # optional: at most this many missed fire times run at once
        enabled: true                 # optional
        inputs:                       # optional: what the input hash covers (default: from the parameters)
          lake: data/lake
          enterprise: demo-cement
          start: ${month-1}
          end: ${month-1}
          tables: [activity, invoices, consumption, production]
        paths: [lake]                 # optional: more parameters that are paths (made absolute)

A file may also hold one schedule (a mapping with ``name``) or a list of them.  Relative paths
(``notebook``, ``output``, the ``lake``/``catalog``/``output_dir`` parameters and those listed in
``paths``) are relative to the folder the command runs in, as every other path of the
``workbench`` command; they are made absolute before the notebook runs (papermill runs it in its
output folder).  ``output_dir`` is set by the scheduler to the run's folder when the notebook
takes that parameter.  Every problem is one :class:`ScheduleFileError` naming the file and key:
``schedules/demo.yaml: schedules[0].cron: '0 6 2 *' has 4 field(s), not 5 …``.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.errors import WorkbenchError
from workbench.schedule import periods
from workbench.schedule.cron import CronError, cron_trigger, zone

__all__ = [
    "DEFAULT_TIMEZONE",
    "INPUT_TABLES",
    "PATH_PARAMETERS",
    "Schedule",
    "ScheduleError",
    "ScheduleFileError",
    "load_schedules",
    "notebook_parameters",
]

DEFAULT_TIMEZONE = "Asia/Shanghai"
#: parameters whose values are paths (made absolute; the notebook runs in its output folder)
PATH_PARAMETERS = ("lake", "catalog", "output_dir")
#: the lake tables an input hash may cover (what the inventory reads by default)
INPUT_TABLES = ("activity", "invoices", "consumption", "production", "readings", "telemetry")
DEFAULT_INPUT_TABLES = ("activity", "invoices", "consumption", "production")

_KEYS = {"name", "notebook", "cron", "timezone", "parameters", "output", "start", "max_catch_up", "enabled",
         "inputs", "paths", "description"}
_INPUT_KEYS = {"lake", "enterprise", "start", "end", "tables", "catalog"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class ScheduleError(WorkbenchError):
    """Base error of the scheduled runs (:mod:`workbench.schedule`)."""


class ScheduleFileError(ScheduleError, ValueError):
    """A schedules file that cannot be used: ``FILE: KEY: what is wrong`` on one line."""


@dataclass(frozen=True)
class Schedule:
    """One schedule as read from its file (paths as written; see the module doc)."""

    name: str
    notebook: str
    cron: str
    timezone: str = DEFAULT_TIMEZONE
    parameters: dict = field(default_factory=dict)
    output: str = "output/scheduled/${name}"
    start: dt.date | None = None
    max_catch_up: int = 12
    enabled: bool = True
    inputs: dict = field(default_factory=dict)
    paths: tuple = ()
    description: str = ""
    file: str = ""
    index: int = 0

    @property
    def trigger(self):
        return cron_trigger(self.cron, self.timezone)

    @property
    def tz(self):
        return zone(self.timezone)

    def where(self, key: str = "") -> str:
        """``FILE: schedules[N].KEY`` for messages about this schedule."""
        return f"{self.file}: schedules[{self.index}]" + (f".{key}" if key else "")

    def notebook_path(self) -> Path:
        return Path(self.notebook).resolve()

    def resolve(self, at: dt.datetime) -> dict:
        """The notebook's parameters for the run whose reference (fire) time is ``at``: templates
        filled in (:mod:`workbench.schedule.periods`), path parameters absolute."""
        at = at.astimezone(self.tz)
        ints = _int_parameters(str(self.notebook_path()))
        out = {}
        for k, v in self.parameters.items():
            v = periods.expand(v, at, name=self.name, integer=k in ints)
            if k in PATH_PARAMETERS or k in self.paths:
                v = _absolute(v)
            out[k] = v
        return out

    def output_folder(self, at: dt.datetime) -> Path:
        return Path(_absolute(periods.expand(self.output, at.astimezone(self.tz), name=self.name)))

    def input_scope(self, params: dict, at: dt.datetime) -> dict:
        """What the run reads, for its input hash: ``{lake, enterprise, start, end, tables}`` from the
        ``inputs`` key, else from the parameters (``lake``; ``enterprise_id`` or ``enterprise``;
        ``period_start``/``period_end``, ``period`` or ``year``), or ``{catalog}``."""
        at = at.astimezone(self.tz)
        given = {k: periods.expand(v, at, name=self.name) for k, v in self.inputs.items()}
        scope: dict = {}
        lake = given.get("lake", params.get("lake"))
        catalog = given.get("catalog", params.get("catalog"))
        if lake:
            scope["lake"] = _absolute(str(lake))
            scope["enterprise"] = str(given.get("enterprise") or params.get("enterprise_id")
                                      or params.get("enterprise") or "")
            start = given.get("start") or params.get("period_start") or params.get("period")
            end = given.get("end") or params.get("period_end") or params.get("period")
            year = params.get("year")
            if not start and year not in (None, ""):
                start, end = f"{int(year):04d}-01", f"{int(year):04d}-12"
            scope["start"], scope["end"] = str(start or ""), str(end or start or "")
            scope["tables"] = list(given.get("tables") or DEFAULT_INPUT_TABLES)
        elif catalog:
            scope["catalog"] = _absolute(str(catalog))
        return scope

    def fingerprint(self) -> str:
        """SHA-256 of the definition (what would change the runs)."""
        d = {"notebook": self.notebook, "cron": self.cron, "timezone": self.timezone, "parameters": self.parameters,
             "output": self.output, "inputs": self.inputs}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def _absolute(v):
    if isinstance(v, str) and v and "://" not in v:
        return str(Path(v).expanduser().resolve())
    return v


@functools.lru_cache(maxsize=64)
def _inspect(path: str, mtime: float) -> dict:
    """The assignments of the cell tagged ``parameters`` (what papermill's ``inspect_notebook``
    reports for a Python notebook), read with ``json`` and ``ast`` — without importing papermill,
    so that a cron tick with nothing due stays cheap."""
    import ast

    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in doc.get("cells", []):
        if cell.get("cell_type") != "code" or "parameters" not in (cell.get("metadata", {}).get("tags") or []):
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        tree = ast.parse(src)
        out = {}
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
            for t in targets:
                if isinstance(t, ast.Name):
                    out[t.id] = {"name": t.id, "default": ast.get_source_segment(src, node.value)}
        return out
    return {}


def notebook_parameters(path) -> dict:
    """The parameters a notebook declares in its cell tagged ``parameters`` (name → {name,
    default}); {} if it has none."""
    p = Path(path)
    return _inspect(str(p.resolve()), p.stat().st_mtime)


def _int_parameters(path: str) -> set:
    try:
        params = notebook_parameters(path)
    except (OSError, ValueError, SyntaxError, AttributeError, TypeError):
        return set()
    return {k for k, v in params.items() if str(v.get("default", "")).strip().lstrip("-").isdigit()}


# --------------------------------------------------------------------------------- loading
def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
        if not files:
            raise ScheduleFileError(f"{path}: no schedules in this folder (no *.yaml or *.yml file)")
        return files
    if not path.exists():
        raise ScheduleFileError(f"{path}: no such file or folder (write a schedules YAML file, e.g. schedules/demo.yaml)")
    return [path]


def _loader():
    """YAML's safe loader without its date type: a date is text here, checked where it is a key
    (an impossible date names its key instead of failing the whole file)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
                                      for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    return Loader


def _read_yaml(path: Path):
    import yaml

    raw = path.read_bytes()
    if not raw.strip():
        raise ScheduleFileError(f"{path}: the file is empty (a schedules file holds 'schedules:' with a list)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ScheduleFileError(f"{path}: not UTF-8 text (a schedules file is YAML)") from None
    if "\x00" in text:
        raise ScheduleFileError(f"{path}: not a text file (a schedules file is YAML)")
    try:
        return yaml.load(text, Loader=_loader())  # a SafeLoader without dates
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ScheduleFileError(f"{path}: not valid YAML: {getattr(exc, 'problem', None) or 'cannot be parsed'}"
                                f"{where}") from None


def load_schedules(path, *, check_notebooks: bool = True) -> list[Schedule]:
    """Every schedule of the file or folder ``path`` (see the module doc), checked.

    ``check_notebooks``: also require each notebook to exist and to declare every parameter
    given (papermill's ``inspect_notebook``)."""
    path = Path(path)
    out: list[Schedule] = []
    seen: dict[str, str] = {}
    for f in _files(path):
        for s in _load_file(f, check_notebooks=check_notebooks):
            if s.name in seen:
                raise ScheduleFileError(f"{s.where('name')}: {s.name!r} is already the name of a schedule "
                                        f"in {seen[s.name]}")
            seen[s.name] = s.where()
            out.append(s)
    return out


def _load_file(path: Path, *, check_notebooks: bool) -> list[Schedule]:
    doc = _read_yaml(path)
    defaults: dict = {}
    if isinstance(doc, dict) and "name" in doc and "schedules" not in doc:
        items = [doc]
    elif isinstance(doc, list):
        items = doc
    elif isinstance(doc, dict):
        unknown = set(doc) - {"schedules", "defaults"}
        if unknown:
            raise ScheduleFileError(f"{path}: {min(map(str, unknown))}: not a key of a schedules file "
                                    "(it holds 'schedules:' and optionally 'defaults:')")
        items = doc.get("schedules")
        if not isinstance(items, list) or not items:
            raise ScheduleFileError(f"{path}: schedules: missing or not a list of schedules")
        defaults = doc.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise ScheduleFileError(f"{path}: defaults: not a mapping")
        bad = set(defaults) - (_KEYS - {"name"})
        if bad:
            raise ScheduleFileError(f"{path}: defaults.{min(map(str, bad))}: not a schedule key "
                                    f"(keys: {', '.join(sorted(_KEYS - {'name'}))})")
    else:
        raise ScheduleFileError(f"{path}: not a schedules file (a YAML mapping with 'schedules:' and a list of "
                                "schedules, each with name, notebook, cron, parameters)")
    return [_schedule(path, i, {**defaults, **item} if isinstance(item, dict) else item, check_notebooks)
            for i, item in enumerate(items)]


def _schedule(path: Path, i: int, item, check_notebooks: bool) -> Schedule:
    where = f"{path}: schedules[{i}]"

    def bad(key: str, message: str):
        raise ScheduleFileError(f"{where}{'.' + key if key else ''}: {message}")

    if not isinstance(item, dict):
        bad("", "not a mapping (a schedule has name, notebook, cron, parameters …)")
    unknown = sorted(map(str, set(item) - _KEYS))
    if unknown:
        bad(unknown[0], f"not a schedule key (keys: {', '.join(sorted(_KEYS))})")
    for key in ("name", "notebook", "cron"):
        if key not in item or item[key] in (None, ""):
            bad(key, "missing (every schedule has name, notebook and cron)")
    name = item["name"]
    if isinstance(name, bool | int | float):
        bad("name", f"{name!r}: YAML reads this name as a {type(name).__name__} — quote it")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        bad("name", f"{name!r}: letters, digits, '.', '_' and '-' only, starting with a letter or digit")
    for key in ("notebook", "cron", "timezone", "output", "description"):
        if key in item and not isinstance(item[key], str):
            bad(key, f"{item[key]!r} is not text")
    tzname = item.get("timezone", DEFAULT_TIMEZONE)
    try:
        zone(tzname)
    except CronError as exc:
        bad("timezone", str(exc))
    try:
        cron_trigger(item["cron"], tzname)
    except CronError as exc:
        bad("cron", str(exc))
    params = item.get("parameters") or {}
    if not isinstance(params, dict):
        bad("parameters", "not a mapping of parameter names to values")
    for k, v in params.items():
        if not isinstance(k, str) or not k.isidentifier():
            bad(f"parameters.{k}", "not a parameter name (a Python identifier)")
        if not isinstance(v, str | int | float | bool | list | type(None)):
            bad(f"parameters.{k}", f"{v!r}: a parameter value is text, a number, true/false or a list")
        try:
            periods.expand(v, dt.date(2000, 1, 1), name=name)
        except periods.TemplateError as exc:
            bad(f"parameters.{k}", str(exc))
    output = item.get("output", "output/scheduled/${name}")
    try:
        periods.check(output)
    except periods.TemplateError as exc:
        bad("output", str(exc))
    start = item.get("start")
    if start is not None:
        if isinstance(start, dt.datetime):
            start = start.date()
        elif isinstance(start, str):
            try:
                start = dt.date.fromisoformat(start.strip())
            except ValueError:
                bad("start", f"{start!r} is not a date (YYYY-MM-DD)")
        elif not isinstance(start, dt.date):
            bad("start", f"{start!r} is not a date (YYYY-MM-DD)")
    mc = item.get("max_catch_up", 12)
    if isinstance(mc, bool) or not isinstance(mc, int) or mc < 1:
        bad("max_catch_up", f"{mc!r}: a whole number ≥ 1")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        bad("enabled", f"{enabled!r}: true or false")
    inputs = item.get("inputs") or {}
    if not isinstance(inputs, dict):
        bad("inputs", "not a mapping (lake, enterprise, start, end, tables)")
    unknown = sorted(map(str, set(inputs) - _INPUT_KEYS))
    if unknown:
        bad(f"inputs.{unknown[0]}", f"not an inputs key ({', '.join(sorted(_INPUT_KEYS))})")
    tables = inputs.get("tables")
    if tables is not None:
        if not isinstance(tables, list) or not tables:
            bad("inputs.tables", "a list of lake tables")
        for t in tables:
            if t not in INPUT_TABLES:
                bad("inputs.tables", f"{t!r} is not a lake table a run reads ({', '.join(INPUT_TABLES)})")
    for k in ("start", "end", "lake", "enterprise", "catalog"):
        if k in inputs:
            if not isinstance(inputs[k], str):
                bad(f"inputs.{k}", f"{inputs[k]!r} is not text")
            try:
                periods.check(inputs[k])
            except periods.TemplateError as exc:
                bad(f"inputs.{k}", str(exc))
    paths = item.get("paths") or []
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        bad("paths", "a list of parameter names")
    notebook = item["notebook"]
    if not notebook.endswith(".ipynb"):
        bad("notebook", f"{notebook}: not a Jupyter notebook (.ipynb)")
    if check_notebooks:
        nb = Path(notebook)
        if not nb.is_file():
            bad("notebook", f"{notebook}: no such notebook (relative paths are from {Path.cwd()})")
        try:
            declared = notebook_parameters(nb)
        except (OSError, UnicodeDecodeError, ValueError, SyntaxError, AttributeError, TypeError) as exc:
            bad("notebook", f"{notebook}: not a readable notebook ({type(exc).__name__.replace('Error', '').lower() or 'unreadable'}"
                            f"{': ' + str(exc).splitlines()[0] if str(exc) else ''})")
        if not declared:
            bad("notebook", f"{notebook}: has no cell tagged 'parameters' (papermill needs one)")
        for k in params:
            if k not in declared:
                bad(f"parameters.{k}", f"not a parameter of {notebook} (it takes: {', '.join(declared)})")
        for k in paths:
            if k not in declared:
                bad("paths", f"{k!r} is not a parameter of {notebook}")
    return Schedule(name=name, notebook=notebook, cron=item["cron"], timezone=tzname, parameters=dict(params),
                    output=output, start=start, max_catch_up=mc, enabled=enabled, inputs=dict(inputs),
                    paths=tuple(paths), description=item.get("description", ""), file=str(path), index=i)
