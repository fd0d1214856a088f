"""A drop folder: files that people or systems put into a shared folder are ingested once.

Seed §7.2 c): systems that cannot be queried directly export files (meter exports, ERP lists,
statistical workbooks, PDF reports) into a folder; :class:`DropFolder` turns each new file into a
:class:`connectors.ConnectorResult` and hands it to ``ingest`` (normally
``workbench.ingestion.ingest``).

Guarantees
----------
* **Exactly once per (content, path).**  A file's identity is the SHA-256 of its bytes plus its
  path relative to the folder.  The state lives in SQLite (``state_db``) and a file is marked done
  only after ``ingest(result)`` has *returned*; a crash in between means the file is offered again
  (the lake recognises the same bytes from the same source as a duplicate upload, so the net effect
  stays once).  Same content under another name → recorded as ``duplicate`` of the first path,
  not ingested.  Same path with new content (a daily export overwriting itself) → a new file.
* **No half-written files.**  Ignored: temporary names (``*.part``, ``*.tmp``, ``*.crdownload``,
  ``*.partial``, ``*.download``, ``*.filepart``, ``~$*`` Office owner files, hidden/lock files);
  files modified less than ``settle_seconds`` ago; files whose size or mtime differ from the
  previous look (the previous scan) or changed while being read.
* **Failures are not retried forever.**  A file the reader cannot parse is recorded with
  ``status='error'`` and its reason (:meth:`DropFolder.errors`), and is tried again only when its
  content changes (or after :meth:`DropFolder.retry`).  An ``ingest`` callback that raises is a
  failure of the *destination*, not of the file: the file is not marked, the attempt is logged in
  the ``attempts`` table, and the next scan tries again.
* **Nothing is deleted.**  Files stay in the drop folder unless ``archive=True``: then, after the
  state is committed, done files move to ``archive/`` and unparseable ones to ``errors/`` (name
  clashes get the content hash appended).
"""
from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import ConnectorResult

__all__ = ["TEMP_SUFFIXES", "DropFolder", "ScanReport", "read"]

name = "dropfolder"
log = logging.getLogger(__name__)

TEMP_SUFFIXES = (".part", ".tmp", ".temp", ".crdownload", ".partial", ".download", ".filepart", ".swp",
                 ".lock", ".opdownload")
TEMP_PREFIXES = ("~$", ".~lock", ".", "~")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    sha256       TEXT NOT NULL,
    path         TEXT NOT NULL,              -- relative to the drop folder, POSIX separators
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('ingested', 'duplicate', 'error')),
    duplicate_of TEXT,
    reason       TEXT,
    kind         TEXT,
    records      INTEGER,
    rejected     INTEGER,
    at           TEXT NOT NULL,
    archived_to  TEXT,
    PRIMARY KEY (sha256, path)
);
CREATE INDEX IF NOT EXISTS files_path ON files (path, size, mtime_ns);
CREATE TABLE IF NOT EXISTS attempts (
    path   TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    at     TEXT NOT NULL,
    error  TEXT NOT NULL
);
"""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass
class ScanReport:
    """What one :meth:`DropFolder.scan_once` did (paths relative to the folder)."""

    ingested: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)   # (path, duplicate of)
    errors: list[tuple[str, str]] = field(default_factory=list)       # (path, reason) — parse failed
    failed: list[tuple[str, str]] = field(default_factory=list)       # (path, error) — ingest raised
    pending: list[tuple[str, str]] = field(default_factory=list)      # (path, why not yet)
    known: list[str] = field(default_factory=list)                    # already done earlier
    ignored: list[str] = field(default_factory=list)                  # temporary names

    def __str__(self) -> str:
        return (f"ingested {len(self.ingested)}, duplicates {len(self.duplicates)}, errors {len(self.errors)}, "
                f"ingest failures {len(self.failed)}, pending {len(self.pending)}, known {len(self.known)}")


def _default_reader(kind: str | None, options: dict) -> Callable[[Path], ConnectorResult]:
    from .files import read_any

    def reader(path: Path) -> ConnectorResult:
        return read_any(path, kind=kind, **options)

    return reader


def read(source, **options) -> ConnectorResult:
    """One file read the way the drop folder reads it (the connector protocol)."""
    from .files import read_any

    return read_any(source, **options)


class DropFolder:
    """Watch ``folder`` and hand every new, complete file to ``ingest`` exactly once.

    ``reader(path) -> ConnectorResult`` defaults to :func:`connectors.files.read_any` (CSV/XLSX/PDF,
    readings or activity sniffed from the header unless ``kind`` is given; ``reader_options`` are
    passed on, e.g. ``{"defaults": {"unit": "kWh", "quantity": "active_energy"}}``).
    ``clock`` is injectable for tests.
    """

    def __init__(self, folder, state_db, *, ingest: Callable[[ConnectorResult], object],
                 patterns=("*.csv", "*.xlsx", "*.pdf"), settle_seconds: float = 1.0,
                 reader: Callable[[Path], ConnectorResult] | None = None, kind: str | None = None,
                 reader_options: dict | None = None, archive: bool = False,
                 source: str | None = None, clock: Callable[[], float] = time.time):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"drop folder {self.folder} does not exist")
        self.state_db = Path(state_db)
        self.ingest = ingest
        self.patterns = tuple(p.lower() for p in patterns)
        self.settle_seconds = float(settle_seconds)
        self.reader = reader or _default_reader(kind, dict(reader_options or {}))
        self.archive = archive
        self.source = source
        self.clock = clock
        self._looks: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        with self._connect() as con:
            con.executescript(_SCHEMA)

    # ------------------------------------------------------------------ state
    def _connect(self) -> sqlite3.Connection:
        self.state_db.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.state_db, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        return con

    def history(self) -> pd.DataFrame:
        """Every file recorded: sha256, path, size, status, duplicate_of, reason, records, at …"""
        with self._connect() as con:
            return pd.read_sql_query("SELECT * FROM files ORDER BY at, path", con)

    def errors(self) -> pd.DataFrame:
        """Files that could not be read (path, sha256, reason, at); they are not retried until
        their content changes or :meth:`retry` is called."""
        with self._connect() as con:
            return pd.read_sql_query("SELECT path, sha256, reason, at, archived_to FROM files "
                                     "WHERE status = 'error' ORDER BY at, path", con)

    def attempts(self) -> pd.DataFrame:
        """Ingest callbacks that raised (the file stays un-done and is offered again)."""
        with self._connect() as con:
            return pd.read_sql_query("SELECT * FROM attempts ORDER BY at", con)

    def retry(self, path=None) -> int:
        """Forget error records (of ``path``, or all) so the next scan reads those files again
        (e.g. after a reader fix).  Returns how many were forgotten."""
        with self._connect() as con:
            if path is None:
                cur = con.execute("DELETE FROM files WHERE status = 'error'")
            else:
                cur = con.execute("DELETE FROM files WHERE status = 'error' AND path = ?", (self._rel(Path(path)),))
            return cur.rowcount

    # ------------------------------------------------------------------ scanning
    def _rel(self, path: Path) -> str:
        p = path if path.is_absolute() else self.folder / path
        return p.relative_to(self.folder).as_posix()

    @staticmethod
    def is_temporary(name: str) -> bool:
        low = name.lower()
        return low.endswith(TEMP_SUFFIXES) or name.startswith(TEMP_PREFIXES)

    def _candidates(self, report: ScanReport) -> list[Path]:
        out = []
        for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
            if not entry.is_file(follow_symlinks=False):
                continue
            if self.is_temporary(entry.name):
                report.ignored.append(entry.name)
                continue
            low = entry.name.lower()
            if any(fnmatch.fnmatchcase(low, p) for p in self.patterns):
                out.append(Path(entry.path))
        return out

    def scan_once(self) -> ScanReport:
        """Look at the folder once; ingest every new, settled file.  Thread-safe (serialised)."""
        with self._lock:
            report = ScanReport()
            con = self._connect()
            try:
                seen = set()
                for path in self._candidates(report):
                    rel = self._rel(path)
                    seen.add(rel)
                    try:
                        self._one(con, path, rel, report)
                    except FileNotFoundError:
                        report.pending.append((rel, "disappeared while being read"))
                        self._looks.pop(rel, None)
                # forget looks of files that are gone
                for rel in list(self._looks):
                    if rel not in seen:
                        del self._looks[rel]
            finally:
                con.close()
            if report.ingested or report.duplicates or report.errors or report.failed:
                log.info("drop folder %s: %s", self.folder, report)
            return report

    def _one(self, con: sqlite3.Connection, path: Path, rel: str, report: ScanReport) -> None:
        st = path.stat()
        look = (st.st_size, st.st_mtime_ns)
        prev = self._looks.get(rel)
        self._looks[rel] = look
        # already done with exactly this path/size/mtime: no need to read it again
        row = con.execute("SELECT status, archived_to FROM files WHERE path = ? AND size = ? AND mtime_ns = ?",
                          (rel, st.st_size, st.st_mtime_ns)).fetchone()
        if row is not None:
            report.known.append(rel)
            if self.archive and row[1] is None:
                self._archive(con, path, rel, row[0], None)
            return
        if prev is not None and prev != look:
            report.pending.append((rel, "size or modification time changed since the last look"))
            return
        age = self.clock() - st.st_mtime
        if age < self.settle_seconds:
            report.pending.append((rel, f"modified {max(age, 0):.1f} s ago (settle time {self.settle_seconds:g} s)"))
            return
        raw = path.read_bytes()
        sha = hashlib.sha256(raw).hexdigest()
        st2 = path.stat()
        if (st2.st_size, st2.st_mtime_ns) != look or len(raw) != st.st_size:
            self._looks[rel] = (st2.st_size, st2.st_mtime_ns)
            report.pending.append((rel, "changed while being read"))
            return
        known = con.execute("SELECT status, archived_to FROM files WHERE sha256 = ? AND path = ?", (sha, rel)).fetchone()
        if known is not None:  # same content, touched (mtime changed): nothing to do
            con.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE sha256 = ? AND path = ?",
                        (st.st_size, st.st_mtime_ns, sha, rel))
            con.commit()
            report.known.append(rel)
            return
        first = con.execute("SELECT path FROM files WHERE sha256 = ? AND status = 'ingested' ORDER BY at LIMIT 1",
                            (sha,)).fetchone()
        if first is not None:
            self._record(con, sha, rel, st, "duplicate", duplicate_of=first[0],
                         reason=f"same content as {first[0]}")
            report.duplicates.append((rel, first[0]))
            if self.archive:
                self._archive(con, path, rel, "duplicate", sha)
            return
        failed = con.execute("SELECT path, reason FROM files WHERE sha256 = ? AND status = 'error' LIMIT 1",
                             (sha,)).fetchone()
        if failed is not None:
            reason = f"same content as {failed[0]}, which could not be read: {failed[1]}"
            self._record(con, sha, rel, st, "error", reason=reason)
            report.errors.append((rel, reason))
            if self.archive:
                self._archive(con, path, rel, "error", sha)
            return
        # ---- parse
        try:
            result = self.reader(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure is this file's problem
            reason = f"{type(exc).__name__}: {exc}"
            self._record(con, sha, rel, st, "error", reason=reason)
            report.errors.append((rel, reason))
            log.warning("drop folder: cannot read %s: %s", rel, reason)
            if self.archive:
                self._archive(con, path, rel, "error", sha)
            return
        if result.raw is not None and hashlib.sha256(result.raw).hexdigest() != sha:
            report.pending.append((rel, "changed while being parsed"))
            self._looks[rel] = (-1, -1)
            return
        meta = result.metadata
        meta.setdefault("origin", str(path))
        meta["drop_folder"] = str(self.folder)
        meta["drop_path"] = rel
        meta["sha256"] = sha  # already computed to recognise the file
        meta["file_mtime"] = _dt.datetime.fromtimestamp(st.st_mtime, _dt.UTC).isoformat(timespec="seconds")
        if self.source:
            meta["source"] = self.source
        # ---- hand on; mark done only after ingest returned
        try:
            self.ingest(result)
        except Exception as exc:  # noqa: BLE001 - the destination failed, the file is fine
            err = f"{type(exc).__name__}: {exc}"
            con.execute("INSERT INTO attempts (path, sha256, at, error) VALUES (?, ?, ?, ?)", (rel, sha, _now(), err))
            con.commit()
            report.failed.append((rel, err))
            log.warning("drop folder: ingest of %s failed (will retry): %s", rel, err)
            return
        rejected = meta.get("rejected")
        self._record(con, sha, rel, st, "ingested", kind=result.kind,
                     records=len(result.data) if result.data is not None else None,
                     rejected=len(rejected) if isinstance(rejected, pd.DataFrame) else None)
        report.ingested.append(rel)
        if self.archive:
            self._archive(con, path, rel, "ingested", sha)

    def _record(self, con, sha, rel, st, status, *, duplicate_of=None, reason=None, kind=None,
                records=None, rejected=None) -> None:
        con.execute("INSERT OR REPLACE INTO files (sha256, path, size, mtime_ns, status, duplicate_of, reason, kind, "
                    "records, rejected, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (sha, rel, st.st_size, st.st_mtime_ns, status, duplicate_of, reason, kind, records, rejected,
                     _now()))
        con.commit()

    def _archive(self, con, path: Path, rel: str, status: str, sha: str | None) -> None:
        """Move a done file to archive/ (errors to errors/) — after its state was committed."""
        sub = "errors" if status == "error" else "archive"
        dest_dir = self.folder / sub
        dest_dir.mkdir(exist_ok=True)
        dest = dest_dir / path.name
        if dest.exists():
            tag = (sha or hashlib.sha256(path.read_bytes()).hexdigest())[:12]
            dest = dest_dir / f"{path.stem}.{tag}{path.suffix}"
        n = 1
        while dest.exists():
            dest = dest_dir / f"{path.stem}.{n}{path.suffix}"
            n += 1
        shutil.move(str(path), str(dest))
        con.execute("UPDATE files SET archived_to = ? WHERE path = ? AND status = ? AND archived_to IS NULL",
                    (dest.relative_to(self.folder).as_posix(), rel, status))
        con.commit()
        self._looks.pop(rel, None)

    # ------------------------------------------------------------------ watching
    def watch(self, stop_event: threading.Event, poll: float = 5.0, *, use_watchdog: bool = True,
              on_report: Callable[[ScanReport], None] | None = None) -> None:
        """Scan until ``stop_event`` is set: on file-system events (watchdog) and every ``poll``
        seconds (network shares often deliver no events).  While files are settling, the next look
        comes after ``settle_seconds``.  Errors of a scan are logged, never end the loop."""
        wake = threading.Event()
        observer = None
        if use_watchdog:
            try:
                from watchdog.events import FileSystemEventHandler
                from watchdog.observers import Observer

                class _Handler(FileSystemEventHandler):
                    def on_any_event(self, event):
                        wake.set()

                observer = Observer()
                observer.schedule(_Handler(), str(self.folder), recursive=False)
                observer.daemon = True
                observer.start()
            except Exception as exc:  # noqa: BLE001 - fall back to polling
                log.warning("drop folder: no file-system events (%s); polling every %s s", exc, poll)
                observer = None
        try:
            while not stop_event.is_set():
                wake.clear()
                try:
                    report = self.scan_once()
                except Exception:
                    log.exception("drop folder: scan of %s failed", self.folder)
                    report = ScanReport()
                if on_report is not None:
                    on_report(report)
                timeout = poll
                if report.pending or report.failed:
                    timeout = min(poll, max(self.settle_seconds, 0.05))
                deadline = time.monotonic() + timeout
                while not stop_event.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    if wake.wait(min(left, 0.1)):
                        break
        finally:
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)
