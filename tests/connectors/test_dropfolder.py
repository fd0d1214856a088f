"""connectors.dropfolder: each new file ingested once — across restarts, duplicates, half-written
files, failing readers and failing destinations."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from connectors import ConnectorResult
from connectors.dropfolder import DropFolder

READINGS = "表号,采集时间,指标,读数,单位\nM001,2025-01-01 00:00:00,active_energy,12.5,kWh\n"
ACTIVITY = "来源,品种,数量,单位,期间\n燃料燃烧,原煤,120.5,吨,2025-01\n"


class Sink:
    """An ingest callback that records what it got (and can be told to fail)."""

    def __init__(self):
        self.results: list[ConnectorResult] = []
        self.fail = 0

    def __call__(self, result: ConnectorResult):
        if self.fail:
            self.fail -= 1
            raise RuntimeError("lake unavailable")
        self.results.append(result)

    @property
    def names(self) -> list[str]:
        return [r.raw_name for r in self.results]


def age(path: Path, seconds: float = 60) -> None:
    """Make a file look written ``seconds`` ago."""
    t = time.time() - seconds
    os.utime(path, (t, t))


@pytest.fixture
def drop(tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


def make(folder: Path, name: str, text: str, old: bool = True, encoding="utf-8") -> Path:
    p = folder / name
    p.write_bytes(text.encode(encoding))
    if old:
        age(p)
    return p


def test_files_ingested_once_also_after_restart(drop, tmp_path):
    make(drop, "meter.csv", READINGS)
    make(drop, "活动.csv", ACTIVITY, encoding="gbk")
    sink = Sink()
    df = DropFolder(drop, tmp_path / "state.db", ingest=sink)
    rep = df.scan_once()
    assert sorted(rep.ingested) == ["meter.csv", "活动.csv"]
    kinds = {r.raw_name: r.kind for r in sink.results}
    assert kinds == {"meter.csv": "readings", "活动.csv": "activity"}
    meta = next(r.metadata for r in sink.results if r.raw_name == "meter.csv")
    assert meta["drop_path"] == "meter.csv" and len(meta["sha256"]) == 64
    assert df.scan_once().ingested == []
    # a new process on the same state ingests nothing again
    again = DropFolder(drop, tmp_path / "state.db", ingest=sink)
    rep2 = again.scan_once()
    assert rep2.ingested == [] and sorted(rep2.known) == ["meter.csv", "活动.csv"]
    assert len(sink.results) == 2
    assert sorted(again.history()["status"]) == ["ingested", "ingested"]
    assert sorted(p.name for p in drop.iterdir()) == ["meter.csv", "活动.csv"]  # nothing deleted


def test_same_content_under_another_name_is_a_duplicate(drop, tmp_path):
    make(drop, "a.csv", READINGS)
    sink = Sink()
    df = DropFolder(drop, tmp_path / "state.db", ingest=sink)
    df.scan_once()
    make(drop, "a (copy).csv", READINGS)
    rep = df.scan_once()
    assert rep.duplicates == [("a (copy).csv", "a.csv")] and rep.ingested == []
    assert sink.names == ["a.csv"]
    hist = df.history().set_index("path")
    assert hist.loc["a (copy).csv", "status"] == "duplicate" and hist.loc["a (copy).csv", "duplicate_of"] == "a.csv"
    assert df.scan_once().duplicates == []  # recorded once


def test_same_path_with_new_content_is_a_new_file(drop, tmp_path):
    p = make(drop, "daily.csv", READINGS)
    sink = Sink()
    df = DropFolder(drop, tmp_path / "state.db", ingest=sink)
    df.scan_once()
    p.write_text(READINGS + "M001,2025-01-01 00:15:00,active_energy,13,kWh\n", encoding="utf-8")
    age(p)
    df.scan_once()  # the size changed since the last look: wait one more look
    rep = df.scan_once()
    assert rep.ingested == ["daily.csv"] and len(sink.results) == 2
    os.utime(p, None)  # touched, same content
    age(p, 30)
    assert df.scan_once().ingested == []


def test_temporary_names_are_ignored_until_renamed(drop, tmp_path):
    part = make(drop, "meter.csv.part", READINGS)
    make(drop, "~$book.xlsx", "lock")
    make(drop, "export.csv.crdownload", READINGS)
    make(drop, "x.tmp", READINGS)
    sink = Sink()
    df = DropFolder(drop, tmp_path / "state.db", ingest=sink)
    rep = df.scan_once()
    assert rep.ingested == [] and rep.errors == []
    assert set(rep.ignored) >= {"meter.csv.part", "~$book.xlsx", "export.csv.crdownload", "x.tmp"}
    part.rename(drop / "meter.csv")
    assert df.scan_once().ingested == ["meter.csv"]


def test_growing_file_is_not_ingested_until_stable(drop, tmp_path):
    p = make(drop, "growing.csv", READINGS)
    sink = Sink()
    df = DropFolder(drop, tmp_path / "state.db", ingest=sink, settle_seconds=5)
    os.utime(p, None)  # just written
    rep = df.scan_once()
    assert rep.ingested == [] and "settle" in rep.pending[0][1]
    with p.open("a", encoding="utf-8") as fh:  # the writer appends between two looks
        fh.write("M001,2025-01-01 00:15:00,active_energy,13,kWh\n")
    age(p)  # even with an old mtime, the size differs from the last look
    rep = df.scan_once()
    assert rep.ingested == [] and "changed since the last look" in rep.pending[0][1]
    rep = df.scan_once()  # two equal looks, settled
    assert rep.ingested == ["growing.csv"]
    assert len(sink.results[0].data) == 2  # the whole file, not the first half


def test_recently_modified_file_waits_for_settle_time(drop, tmp_path):
    make(drop, "new.csv", READINGS, old=False)
    now = [time.time()]
    sink = Sink()
    df = DropFolder(drop, tmp_path / "state.db", ingest=sink, settle_seconds=2, clock=lambda: now[0])
    assert df.scan_once().ingested == []
    now[0] += 3
    assert df.scan_once().ingested == ["new.csv"]


def test_ingest_that_raises_is_retried_next_scan(drop, tmp_path):
    make(drop, "meter.csv", READINGS)
    sink = Sink()
    sink.fail = 1
    df = DropFolder(drop, tmp_path / "state.db", ingest=sink)
    rep = df.scan_once()
    assert rep.ingested == [] and rep.failed[0][0] == "meter.csv" and "lake unavailable" in rep.failed[0][1]
    assert len(df.history()) == 0  # not marked done
    assert len(df.attempts()) == 1
    # also after a restart
    df2 = DropFolder(drop, tmp_path / "state.db", ingest=sink)
    assert df2.scan_once().ingested == ["meter.csv"]
    assert df2.scan_once().ingested == []
    assert sink.names == ["meter.csv"]


def test_unreadable_file_recorded_in_errors_and_not_retried(drop, tmp_path):
    bad = make(drop, "broken.csv", "表号,时间,读数\nM1,2025-01-01 00:00,1\n", encoding="utf-16")
    sink = Sink()
    df = DropFolder(drop, tmp_path / "state.db", ingest=sink)
    rep = df.scan_once()
    assert rep.errors and rep.errors[0][0] == "broken.csv" and "UTF-16" in rep.errors[0][1]
    errs = df.errors()
    assert errs["path"].tolist() == ["broken.csv"] and "UTF-16" in errs["reason"].iloc[0]
    # not retried while the content is the same — also not by a restarted watcher
    assert df.scan_once().errors == []
    calls = []
    df2 = DropFolder(drop, tmp_path / "state.db", ingest=sink,
                     reader=lambda p: calls.append(p) or (_ for _ in ()).throw(AssertionError("re-read")))
    assert df2.scan_once().errors == [] and calls == []
    # the same broken bytes under another name: recorded as an error without parsing
    make(drop, "broken2.csv", bad.read_bytes().decode("utf-16"), encoding="utf-16")
    assert "could not be read" in df.scan_once().errors[0][1]
    # fixed content → read again (once two looks agree)
    make(drop, "broken.csv", READINGS)
    assert df.scan_once().pending[0][0] == "broken.csv"
    assert df.scan_once().ingested == ["broken.csv"]
    assert bad.exists()  # nothing is deleted without archive=True


def test_archive_moves_files_after_commit(drop, tmp_path):
    make(drop, "meter.csv", READINGS)
    make(drop, "dup.csv", READINGS)
    make(drop, "bad.csv", "", encoding="utf-8")
    sink = Sink()
    df = DropFolder(drop, tmp_path / "state.db", ingest=sink, archive=True)
    rep = df.scan_once()
    assert rep.ingested == ["dup.csv"] and rep.duplicates == [("meter.csv", "dup.csv")]
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == []
    assert sorted(p.name for p in (drop / "archive").iterdir()) == ["dup.csv", "meter.csv"]
    assert [p.name for p in (drop / "errors").iterdir()] == ["bad.csv"]
    hist = df.history().set_index("path")
    assert hist.loc["dup.csv", "archived_to"] == "archive/dup.csv"
    # a file of the same name arriving later does not overwrite the archived one
    make(drop, "dup.csv", READINGS + "M002,2025-01-01 00:00:00,active_energy,1,kWh\n")
    assert df.scan_once().ingested == ["dup.csv"]
    assert len(list((drop / "archive").iterdir())) == 3


def test_watch_polls_until_stopped(drop, tmp_path):
    sink = Sink()
    df = DropFolder(drop, tmp_path / "state.db", ingest=sink, settle_seconds=0.2)
    stop = threading.Event()
    t = threading.Thread(target=df.watch, args=(stop,), kwargs={"poll": 0.1}, daemon=True)
    t.start()
    try:
        make(drop, "late.csv", READINGS, old=False)
        deadline = time.time() + 10
        while not sink.results and time.time() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(5)
    assert not t.is_alive()
    assert sink.names == ["late.csv"]
