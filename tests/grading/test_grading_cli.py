"""`workbench grade --region DIR --period P`: the distribution printed, the grades written (CSV,
Parquet), JSON, and bad input in one line with exit code 2."""
from __future__ import annotations

import json

import hand_region
import pandas as pd
import pytest
from click.testing import CliRunner

from workbench.cli.main import main
from workbench.grading import grade_region


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    return hand_region.write(tmp_path_factory.mktemp("cli-region"))


def run(*args):
    return CliRunner().invoke(main, ["grade", *map(str, args)])


def test_prints_the_distribution_and_writes_csv(region, tmp_path):
    out = tmp_path / "grades.csv"
    r = run("--region", region, "--period", "2025-01", "--out", out)
    assert r.exit_code == 0, r.output
    assert "浙江碳效码" in r.output and "period 2025-01 · 12 enterprises" in r.output
    assert "1  一级（碳效高） / grade 1 (high efficiency): 0" in r.output
    assert "4  四级 / grade 4: 2" in r.output and "未评级 / ungraded: 4" in r.output
    assert "value_added_zero 1" in r.output
    line = next(x for x in r.output.splitlines() if x.strip().startswith("C30"))
    assert line.split()[:8] == ["C30", "0", "1", "0", "1", "1", "0", "3"] and "0.7333" in line and "非金属矿物制品业" in line
    g = pd.read_csv(out, dtype={"county_code": str})
    pkg = grade_region(region, "2025-01").grades
    assert g["enterprise_id"].tolist() == pkg["enterprise_id"].tolist()
    assert g["grade"].astype("Int64").tolist() == pkg["grade"].astype("Int64").tolist()
    assert g.set_index("enterprise_id").loc["F1", "k"] == pytest.approx(1.5)


def test_parquet_json_and_the_second_scheme(region, tmp_path):
    out = tmp_path / "q.parquet"
    r = run("--region", region, "--period", "2025-Q1", "--scheme", "quintile", "--out", out, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["scheme"]["name"] == "quintile" and doc["scheme"]["illustrative"] is True
    assert doc["period"] == "2025-Q1" and doc["enterprises"] == 12 and doc["out"] == str(out)
    c30 = next(x for x in doc["by_industry"] if x["industry"] == "C30")
    assert c30["total"] == 3 and c30["benchmark_l"] == pytest.approx(1100 / 1575)
    assert len(pd.read_parquet(out)) == 12


@pytest.mark.parametrize("args, says", [
    (["--period", "2025-13"], "--period: period '2025-13' is not a month"),
    (["--period", "2025-01", "--scheme", "nope"], "--scheme: no grading scheme 'nope'"),
])
def test_bad_options_in_one_line(region, args, says):
    r = run("--region", region, *args)
    assert r.exit_code == 2 and says in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_bad_file_in_one_line(region, tmp_path):
    import shutil

    d = tmp_path / "bad"
    shutil.copytree(region, d)
    (d / "value_added.csv").write_text("enterprise_id,period\nF1,2025-01\n", encoding="utf-8")
    r = run("--region", d, "--period", "2025-01")
    assert r.exit_code == 2 and r.output.strip() == (
        f"error: {d}/value_added.csv, row 1: missing column(s) value_added_10k_cny (needs enterprise_id, period, "
        "value_added_10k_cny)"), r.output
