"""Many series on dask.distributed (issue 15 point 8): a 2-worker LocalCluster (shared by the module)
gives the same metrics and detections as a serial run, a model class defined outside the package
travels to the workers, and a scheduler address is honoured."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.models import parallel as P
from workbench.models import registry as R


@pytest.fixture(scope="module")
def dask_client():
    with P.client(n_workers=2, processes=True) as c:
        yield c


def _series(k, n=200):
    rng = np.random.default_rng(k)
    t = np.arange(n)
    return pd.Series(50 + 5 * k + 8 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 2, n),
                     index=pd.date_range("2024-01-01", periods=n, freq="D"))


class Mean(R.Forecaster):
    """ŷ = mean of the training series; ±z·s (a model defined in a notebook or a test)."""
    name = "mean"

    def fit(self, y):
        self._check(y)
        return self

    def predict(self, horizon, level=0.9):
        m, s = self.y_.mean(), self.y_.std()
        idx = self.future_index(horizon)
        return pd.DataFrame({"mean": m, "lower": m - 1.645 * s, "upper": m + 1.645 * s}, index=idx)


def test_backtests_on_the_cluster_equal_the_serial_run(dask_client):
    series = {f"S{k}": _series(k) for k in range(5)}
    kw = {"horizon": 14, "folds": 2, "seed": 7}
    serial = P.backtest_many(series, "mlp", chunk=2, **kw)          # the MLP draws random numbers: seeded
    dist = P.backtest_many(series, "mlp", client=dask_client, chunk=2, **kw)
    pd.testing.assert_frame_equal(serial, dist)
    assert list(dist["series"]) == list(series) and dist["baseline_mase"].notna().all()
    other = P.backtest_many(series, Mean, client=dask_client, **kw)
    assert (other["model"] == "mean").all()
    pd.testing.assert_frame_equal(other, P.backtest_many(series, Mean, **kw))


def test_detection_on_the_cluster_equals_the_serial_run(dask_client):
    rng = np.random.default_rng(3)
    idx = pd.date_range("2025-03-01", periods=96 * 14, freq="15min")
    base = 100 + 30 * np.sin(2 * np.pi * np.arange(len(idx)) / 96)
    wide = pd.DataFrame({f"M{k}": base * (1 + 0.1 * k) + rng.normal(0, 1, len(idx)) for k in range(6)}, index=idx)
    wide.iloc[500, 2] *= 30                                        # one spike on M2
    det_s, z_s = P.detect_many(wide, chunk=2)
    det_d, z_d = P.detect_many(wide, client=dask_client, chunk=2)
    pd.testing.assert_frame_equal(det_s, det_d)
    pd.testing.assert_frame_equal(z_s, z_d)
    assert det_d[["meter_id", "kind"]].values.tolist() == [["M2", "spike"]]
    assert det_d["ts_start"].iloc[0] == idx[500]


def test_a_scheduler_address_is_used(dask_client):
    addr = dask_client.scheduler.address
    with P.client(addr) as c:
        assert c.scheduler.address == addr
        out = P.backtest_many({"a": _series(1)}, "linear", client=c, horizon=7, folds=1)
    assert out["series"].tolist() == ["a"]
