"""The run store: every scheduled or manual run of a notebook, one row each (SQLAlchemy Core).

SQLite by default (``data/schedule.db``), PostgreSQL (or any SQLAlchemy URL) by URL, opened with
:func:`workbench.core.sqlstore.create_engine`.  A row of ``schedule_runs``:

=================  ===============================================================================
id                 the run number (``workbench schedule history``, ``diff RUN_A RUN_B``)
schedule           the schedule's name; ``notebook`` and its ``notebook_sha256``
parameters         the notebook's parameters as run (JSON, templates filled in; ``output_dir`` too)
params_key         SHA-256 of the parameters without ``output_dir``: runs of the same schedule and
                   key are the same report (the same period), run again
scheduled_for      the fire time the run stands for (UTC ISO); a re-run of a past period keeps it
slot               ``schedule@scheduled_for`` for runs the scheduler starts (unique: a fire time runs
                   once, whichever process gets there first); empty for manual runs
kind               ``first`` · ``rerun`` (inputs unchanged since the previous run of the key) ·
                   ``restatement`` (inputs changed); ``previous_run_id`` links the run compared with
change             ``no change`` or what changed (``3 figure(s), 2 row(s) changed``)
trigger            ``run-due`` · ``serve`` · ``manual`` · ``restate``; ``triggered_by`` user@host
code_version       ``git:<commit>[+dirty]`` or ``workbench <version>``
input_hash         SHA-256 of the input manifest (``input_manifest``: the lake batches in scope)
status             ``running`` · ``succeeded`` · ``failed`` (``error``: one line)
output_dir         the run's folder; ``outputs``: ``[{path, sha256, bytes}]`` relative to it
diff_path          the restatement/re-run note (Markdown; HTML beside it)
started_at, finished_at, duration_s, host, pid
=================  ===============================================================================
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket

import sqlalchemy as sa

from workbench.core.sqlstore import create_engine, create_tables
from workbench.schedule.spec import ScheduleError

__all__ = ["RunNotFound", "RunStore", "RunStoreError", "default_url", "utc_text"]

metadata = sa.MetaData()
runs = sa.Table(
    "schedule_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("schedule", sa.String(100), nullable=False, index=True),
    sa.Column("notebook", sa.Text, nullable=False),
    sa.Column("notebook_sha256", sa.String(64)),
    sa.Column("parameters", sa.Text, nullable=False),
    sa.Column("params_key", sa.String(64), nullable=False, index=True),
    sa.Column("scheduled_for", sa.String(32), nullable=False),
    sa.Column("slot", sa.String(140), unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("previous_run_id", sa.Integer),
    sa.Column("change", sa.Text),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("triggered_by", sa.String(200)),
    sa.Column("code_version", sa.String(80)),
    sa.Column("input_hash", sa.String(64)),
    sa.Column("input_manifest", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("output_dir", sa.Text),
    sa.Column("outputs", sa.Text),
    sa.Column("diff_path", sa.Text),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32)),
    sa.Column("duration_s", sa.Float),
    sa.Column("host", sa.String(200)),
    sa.Column("pid", sa.Integer),
)

_JSON = ("parameters", "input_manifest", "outputs")


class RunStoreError(ScheduleError, RuntimeError):
    """The run store cannot be opened or written."""


class RunNotFound(ScheduleError, LookupError):
    """No run of that id."""


def default_url() -> str:
    """``$WORKBENCH_SCHEDULE_DB`` or ``data/schedule.db`` (a plain path is a SQLite file)."""
    return os.environ.get("WORKBENCH_SCHEDULE_DB") or "data/schedule.db"


def utc_text(t: dt.datetime) -> str:
    """``t`` as the store keeps times: UTC, ISO 8601 to the second (sortable as text)."""
    return t.astimezone(dt.UTC).isoformat(timespec="seconds")


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class RunStore:
    """The runs at ``url`` (a SQLAlchemy URL, or a path of a SQLite file, made if missing unless
    ``create`` is false: then a missing file is an error — nothing has been recorded there)."""

    def __init__(self, url: str | None = None, *, create: bool = True):
        url = url or default_url()
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            url = url[len("sqlite:///"):]
        if url == ":memory:":
            url = "sqlite://"
        if "://" not in url:
            from pathlib import Path

            p = Path(url).expanduser()
            if p.is_dir():
                raise RunStoreError(f"{url}: a folder, not a database file")
            if not create and not p.exists():
                raise RunStoreError(f"{url}: no such run store (runs are recorded by `workbench schedule run-due` "
                                    "or `serve`; --db names the store)")
            p.parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{p.resolve()}"
        self.url = url
        self.engine = create_engine(url, error=RunStoreError)
        for attempt in range(3):
            try:
                create_tables(metadata, self.engine, error=RunStoreError)
                break
            except RunStoreError as exc:
                # two processes (a cron run-due and serve) creating the tables at once: the loser
                # sees "already exists" — the tables are there, look again
                if "already exists" not in str(exc) or attempt == 2:
                    raise

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writing
    def start(self, **fields) -> int | None:
        """Insert a ``running`` row; its id, or ``None`` when its ``slot`` is taken (the fire time
        was run, or is being run, by another process)."""
        row = {"status": "running", "started_at": _now_text(), "host": socket.gethostname(), "pid": os.getpid(),
               **fields}
        for k in _JSON:
            if k in row and not isinstance(row[k], str):
                row[k] = json.dumps(row[k], ensure_ascii=False, default=str)
        try:
            with self.engine.begin() as c:
                return int(c.execute(runs.insert().values(**row)).inserted_primary_key[0])
        except sa.exc.IntegrityError:
            return None

    def update(self, run_id: int, **fields) -> None:
        for k in _JSON:
            if k in fields and not isinstance(fields[k], str):
                fields[k] = json.dumps(fields[k], ensure_ascii=False, default=str)
        with self.engine.begin() as c:
            c.execute(runs.update().where(runs.c.id == run_id).values(**fields))

    def finish(self, run_id: int, *, status: str, started: dt.datetime, **fields) -> None:
        end = dt.datetime.now(dt.UTC)
        self.update(run_id, status=status, finished_at=end.isoformat(timespec="milliseconds"),
                    duration_s=round((end - started).total_seconds(), 3), **fields)

    def mark_interrupted(self) -> list[int]:
        """Runs left ``running`` by a process of this host that no longer exists: ``failed``
        (``interrupted``).  Returns their ids."""
        host = socket.gethostname()
        with self.engine.connect() as c:
            rows = c.execute(sa.select(runs.c.id, runs.c.pid).where(runs.c.status == "running",
                                                                    runs.c.host == host)).all()
        gone = [r.id for r in rows if r.pid and r.pid != os.getpid() and not _alive(r.pid)]
        for rid in gone:
            self.update(rid, status="failed", error="interrupted: the process running it ended",
                        finished_at=_now_text())
        return gone

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _row(r) -> dict:
        d = dict(r._mapping)
        for k in _JSON:
            if d.get(k):
                d[k] = json.loads(d[k])
        return d

    def get(self, run_id) -> dict:
        try:
            rid = int(run_id)
        except (TypeError, ValueError):
            raise RunNotFound(f"run {run_id!r}: not a run number (see `workbench schedule history`)") from None
        with self.engine.connect() as c:
            r = c.execute(sa.select(runs).where(runs.c.id == rid)).first()
        if r is None:
            raise RunNotFound(f"run {run_id}: no such run in {self.engine.url.render_as_string(hide_password=True)} "
                              "(see `workbench schedule history`)")
        return self._row(r)

    def history(self, name: str | None = None, limit: int | None = None) -> list[dict]:
        """Runs, newest first (of schedule ``name`` when given)."""
        q = sa.select(runs).order_by(runs.c.id.desc())
        if name:
            q = q.where(runs.c.schedule == name)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as c:
            return [self._row(r) for r in c.execute(q).all()]

    def last_slot(self, name: str) -> str | None:
        """The latest fire time (UTC text) the scheduler has started a run for, of schedule ``name``."""
        with self.engine.connect() as c:
            return c.execute(sa.select(sa.func.max(runs.c.scheduled_for))
                             .where(runs.c.schedule == name, runs.c.slot.is_not(None))).scalar()

    def previous(self, name: str, params_key: str, before: int | None = None) -> dict | None:
        """The latest succeeded run of schedule ``name`` with ``params_key`` (before run ``before``)."""
        q = sa.select(runs).where(runs.c.schedule == name, runs.c.params_key == params_key,
                                  runs.c.status == "succeeded")
        if before is not None:
            q = q.where(runs.c.id < before)
        with self.engine.connect() as c:
            r = c.execute(q.order_by(runs.c.id.desc()).limit(1)).first()
        return self._row(r) if r is not None else None

    def latest_per_key(self, name: str) -> list[dict]:
        """For each ``params_key`` of schedule ``name``: its latest succeeded run."""
        with self.engine.connect() as c:
            ids = c.execute(sa.select(sa.func.max(runs.c.id)).where(runs.c.schedule == name,
                                                                    runs.c.status == "succeeded")
                            .group_by(runs.c.params_key)).scalars().all()
            rows = c.execute(sa.select(runs).where(runs.c.id.in_(ids)).order_by(runs.c.scheduled_for)).all() \
                if ids else []
        return [self._row(r) for r in rows]

    def last_run(self, name: str) -> dict | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(runs).where(runs.c.schedule == name).order_by(runs.c.id.desc()).limit(1)).first()
        return self._row(r) if r is not None else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
