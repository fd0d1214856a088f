"""Files as users write them (issue 12, point 4, first cases): an activity table without periods,
a meters file with only the required columns, bad meters files — a clear result, never a traceback."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from workbench.cli.main import main
from workbench.lake.store import Lake

READINGS = ("meter_id,ts,quantity,value,unit\n"
            "M1,2026-03-01 00:00,active_energy,1.5,kWh\nM1,2026-03-01 00:15,active_energy,2.5,kWh\n")


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_activity_without_a_period_is_quarantined_with_the_reason(tmp_path):
    f = tmp_path / "ledger.csv"
    f.write_text("source,item,quantity,unit,period\ncombustion,natural_gas,12,万Nm3,2026-02\n"
                 "combustion,natural_gas,7,万Nm3,\n", encoding="utf-8")
    r = _invoke("lake", "ingest", f, "--kind", "activity", "--enterprise", "ent-q", "--lake", tmp_path / "lake")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert (rep["rows_curated"], rep["rows_quarantined"]) == (1, 1)
    q = Lake(tmp_path / "lake", enterprise="ent-q").sql("SELECT row, reason FROM quarantine")
    assert q["row"].tolist() == [3] and q["reason"][0].startswith("period: missing")
    # no period column at all: every row waits in quarantine, nothing fails
    g = tmp_path / "no-period.csv"
    g.write_text("source,item,quantity,unit\ncombustion,natural_gas,12,万Nm3\n", encoding="utf-8")
    r = _invoke("lake", "ingest", g, "--kind", "activity", "--enterprise", "ent-q", "--lake", tmp_path / "lake")
    # nothing stored is a failed import (exit 2, one line naming the file and the reason); the row is kept
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "no-period.csv" in r.output and "period: missing" in r.output
    q = Lake(tmp_path / "lake", enterprise="ent-q").sql("SELECT reason FROM quarantine WHERE payload LIKE '%no-period%'")
    assert len(q) == 1 and q["reason"][0].startswith("period: missing")


def test_a_meters_file_with_only_the_required_columns_works_in_gbk_too(tmp_path):
    (tmp_path / "r.csv").write_text(READINGS, encoding="utf-8")
    (tmp_path / "m.csv").write_bytes("meter_id,node_id,unit\nM1,锅炉房,kWh\n".encode("gbk"))
    r = _invoke("lake", "ingest", tmp_path / "r.csv", "--kind", "readings", "--meters", tmp_path / "m.csv",
                "--enterprise", "ent-q", "--lake", tmp_path / "lake")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["rows_curated"] == 2
    m = Lake(tmp_path / "lake", enterprise="ent-q").meters(normalized=True).iloc[0]
    assert (m["node_id"], m["register"], m["is_main"]) == ("锅炉房", "interval", False)


@pytest.mark.parametrize("content, says", [
    (b"x,y\n1,2\n", "column 'meter_id' is missing"),
    (b"\x00\x01\xff\xfe\x80", "not text"),
    (b"", "the file is empty"),
])
def test_a_bad_meters_file_is_one_line_and_exit_2(tmp_path, content, says):
    (tmp_path / "r.csv").write_text(READINGS, encoding="utf-8")
    (tmp_path / "bad.csv").write_bytes(content)
    r = _invoke("lake", "ingest", tmp_path / "r.csv", "--kind", "readings", "--meters", tmp_path / "bad.csv",
                "--enterprise", "ent-q", "--lake", tmp_path / "lake")
    assert r.exit_code == 2 and "Traceback" not in r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "bad.csv" in lines[0] and says in lines[0]
