"""Anomaly detection (issue 15 point 3): robust z, stuck runs and scoring by hand; the detectors on
the demo cement plant's lake scored against its planted labels; detections become meter alarms
that the enterprise (and only it) sees."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from notebook_run import execute_notebook

from workbench.devices.alarms import (
    AlarmError,
    AlarmStore,
    meter_subject,
    raise_anomalies,
)
from workbench.lake.store import Lake
from workbench.models import anomalies as A


def test_robust_z_by_hand():
    # median 3, |x − 3| = 2 1 0 1 97 → MAD 1, σ̂ = 1.4826: z(100) = 97 / 1.4826 = 65.4256
    z = A.robust_z([1, 2, 3, 4, 100])
    assert z[4] == pytest.approx(97 / 1.4826, rel=1e-12)
    assert z[2] == 0.0
    assert z[0] == pytest.approx(-2 / 1.4826)
    # MAD 0 (more than half equal): mean absolute deviation × 1.2533: |dev| = 0 0 0 4 → 1 × 1.2533
    assert A.robust_z([5, 5, 5, 9])[3] == pytest.approx(4 / 1.2533)


def test_stuck_runs_skip_zeros_and_short_runs():
    y = [1, 2, 2, 2, 2, 3, 0, 0, 0, 0, 0, 4, 4, 4, 5]
    assert A.stuck_runs(y, 4) == [(1, 5)]          # four 2s; five zeros are a stop; three 4s too short
    assert A.stuck_runs(y, 3) == [(1, 5), (11, 14)]


def test_stl_z_finds_a_planted_spike_without_echoes():
    rng = np.random.default_rng(1)
    n = 96 * 28
    y = 100 + 30 * np.sin(2 * np.pi * np.arange(n) / 96) + rng.normal(0, 1, n)
    y[96 * 10 + 40] *= 20
    z = A.stl_residual_z(y, 96, clean_above=25)
    hot = np.flatnonzero(np.abs(z) >= 25)
    assert hot.tolist() == [96 * 10 + 40]            # no echo a day before or after


def test_score_by_hand():
    t = pd.Timestamp
    labels = pd.DataFrame([
        ("M1", "spike", t("2025-01-05 10:00"), t("2025-01-05 10:00")),
        ("M2", "stuck", t("2025-02-01 00:00"), t("2025-02-01 23:45")),
        ("M3", "gap", t("2025-03-01 00:00"), t("2025-03-01 05:00")),
    ], columns=["meter_id", "kind", "ts_start", "ts_end"])
    det = pd.DataFrame([
        ("M1", t("2025-01-05 10:00"), t("2025-01-05 10:00"), "spike"),     # true
        ("M1", t("2025-06-01 10:00"), t("2025-06-01 10:00"), "spike"),     # false
        ("M3", t("2025-03-01 02:00"), t("2025-03-01 02:00"), "spike"),     # on a gap: true, finds no value label
    ], columns=["meter_id", "ts_start", "ts_end", "kind"])
    s = A.score(det, labels)
    assert s["per_kind"]["spike"] == {"labels": 1, "found": 1, "recall": 1.0, "detections": 3, "true": 2,
                                      "precision": 2 / 3}
    assert s["per_kind"]["stuck"]["recall"] == 0.0
    assert s["recall"] == 0.5 and s["precision"] == 2 / 3 and s["n_labels"] == 2


@pytest.fixture(scope="module")
def cement(demo_data, tmp_path_factory):
    from workbench.demo.load import load_demo

    ent = json.loads((demo_data / "enterprise.json").read_text(encoding="utf-8"))["enterprise_id"]
    root = tmp_path_factory.mktemp("anomalies") / "lake"
    load_demo(demo_data, root, enterprise=ent)
    lake = Lake(root, enterprise=ent)
    lake.root_dir = root
    return lake, A.detect(lake), A.read_labels(demo_data / "anomalies.csv")


def test_demo_plant_scored_with_the_defaults(cement):
    _, det, labels = cement
    s = A.score(det, labels)
    # every spike and the stuck meter found, nothing else flagged
    assert s["per_kind"]["spike"]["recall"] == 1.0 and s["per_kind"]["spike"]["precision"] == 1.0
    assert s["per_kind"]["stuck"]["recall"] == 1.0 and s["per_kind"]["stuck"]["precision"] == 1.0
    assert s["precision"] >= 0.8
    # the 8 % month-long drift is not found by these detectors (recall 0): 4 of 5 value labels
    assert s["per_kind"]["drift"]["recall"] == 0.0
    assert s["recall"] == pytest.approx(0.8)
    # the detectors do not read the lake's quality flags: the spike's time is the label's
    spikes = labels[labels["kind"] == "spike"]
    assert set(det.loc[det["kind"] == "spike", "ts_start"]) == set(spikes["ts_start"])


def test_filters_are_pushed_down(cement):
    lake, _, _ = cement
    wide, units = A.interval_matrix(lake, start="2025-05-01", end="2025-05-03", meters=["M0007", "M0012"])
    assert list(wide.columns) == ["M0007", "M0012"] and len(wide) == 2 * 96
    assert wide.index.min() == pd.Timestamp("2025-05-01") and set(units) == {"kWh"}
    with pytest.raises(A.AnomalyError):
        A.interval_matrix(lake, start="2030-01-01", end="2030-01-02")


def test_detections_become_alarms_of_the_enterprise_only(cement, tmp_path):
    lake, det, _ = cement
    store = AlarmStore(f"sqlite:///{tmp_path / 'alarms.db'}")
    raised = raise_anomalies(store, lake.enterprise, det)
    assert len(raised) == det["meter_id"].nunique()
    mine = store.alarms_of(lake.enterprise)
    assert {a.device_id for a in mine} == {meter_subject(lake.enterprise, m) for m in det["meter_id"]}
    a = next(a for a in mine if a.details["meter_id"] == "M0012")
    assert a.type == "ANOMALY" and a.severity == "MAJOR" and a.details["kinds"] == ["stuck"]
    assert store.alarms_of("someone-else") == []
    assert store.alarms_of(lake.enterprise[:-1]) == []         # a prefix of the id is another enterprise
    # raising again updates the same alarms
    assert len(raise_anomalies(store, lake.enterprise, det)) == len(raised)
    assert len(store.alarms_of(lake.enterprise)) == len(raised)
    with pytest.raises(AlarmError):
        meter_subject("a:b", "M1")
    store.dispose()


def test_cli_detect_scores_and_raises_alarms(cement, demo_data, tmp_path):
    from click.testing import CliRunner

    from workbench.cli.main import main

    lake, det, _ = cement
    db = f"sqlite:///{tmp_path / 'alarms.db'}"
    r = CliRunner().invoke(main, ["models", "detect", "--lake", str(lake.root_dir),
                                  "--enterprise", lake.enterprise, "--labels", str(demo_data / "anomalies.csv"),
                                  "--alarms-db", db, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["detections"] == len(det) and out["alarms"] == det["meter_id"].nunique()
    assert out["score"]["per_kind"]["spike"]["found"] == 3
    assert len(AlarmStore(db).alarms_of(lake.enterprise)) == out["alarms"]
    bad = tmp_path / "labels.csv"
    bad.write_text("meter_id,kind,ts_start,ts_end\nM1,spike,yesterday,2025-01-01\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["models", "detect", "--lake", str(lake.root_dir), "--enterprise", lake.enterprise,
                                  "--labels", str(bad)])
    assert r.exit_code == 2 and "row 2, column ts_start" in r.output


NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _run(name, tmp_path, **params):
    import nbformat

    out = tmp_path / name
    execute_notebook(str(NOTEBOOKS / name), str(out), kernel_name="python3", cwd=str(tmp_path),
                        progress_bar=False, execution_timeout=300, parameters=params)
    nb = nbformat.read(out, as_version=4)
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_anomalies_notebook(cement, demo_data, tmp_path):
    lake, det, _ = cement
    db = f"sqlite:///{tmp_path / 'alarms.db'}"
    text = _run("anomalies.ipynb", tmp_path, lake_root=str(lake.root_dir), enterprise=lake.enterprise,
                labels=str(demo_data / "anomalies.csv"), alarms_db=db)
    assert "overall precision 1.00, recall 0.80" in text
    assert f"{det['meter_id'].nunique()} ANOMALY alarm(s)" in text


def test_forecast_notebook(cement, tmp_path):
    lake, _, _ = cement
    text = _run("forecast.ipynb", tmp_path, lake_root=str(lake.root_dir), enterprise=lake.enterprise,
                cutoff="2025-09-30", models="seasonal_naive,linear", model="linear", folds=2, n_paths=200)
    assert "mee-avg:CN-ZJ:2023" in text and "main meter(s) M0001: 273 天 / days" in text   # factor id; Jan–Sep
    assert "P(超出 / exceed)" in text and "carbon efficiency" in text


def test_add_a_model_notebook(cement, tmp_path):
    lake, _, _ = cement
    text = _run("add_a_model.ipynb", tmp_path, lake_root=str(lake.root_dir), enterprise=lake.enterprise, folds=2)
    assert "'theta'" in text and "identical: True" in text


def test_cli_models_list_and_backtest(cement, tmp_path):
    from click.testing import CliRunner

    from workbench.cli.main import main

    lake, _, _ = cement
    r = CliRunner().invoke(main, ["models", "list", "--json"])
    assert r.exit_code == 0 and {"ets", "prophet", "sarimax", "linear", "svr", "mlp"} <= set(json.loads(r.output))
    args = ["models", "backtest", "--lake", str(lake.root_dir), "--enterprise", lake.enterprise, "--meter", "M0002",
            "--meter", "M0007", "--model", "linear", "--horizon", "14", "--folds", "2", "--out", str(tmp_path / "m.csv"),
            "--json"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [x["series"] for x in rows] == ["M0002", "M0007"] and all(x["model"] == "linear" for x in rows)
    assert pd.read_csv(tmp_path / "m.csv")["baseline_mase"].notna().all()
    r = CliRunner().invoke(main, args[:10] + ["--model", "nope"])
    assert r.exit_code == 2 and "unknown model 'nope'" in r.output
