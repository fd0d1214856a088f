"""The researchers' model registry (issue 15 point 7): built-ins found without reinstalling, a
model registered in the process and one declared as an entry point both backtest through the same
API; a broken plug-in names itself."""
from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.models import forecast as F
from workbench.models import registry as R

ROOT = Path(__file__).resolve().parents[2]


class NaiveDrift(R.Forecaster):
    """ŷ_{T+h} = y_T + h · (y_T − y_1)/(T − 1); σ_h = σ̂ √(h (1 + h/(T−1))) (FPP3 §5.5)."""
    name = "naive_drift"

    def fit(self, y):
        y = self._check(y).to_numpy()
        self.slope_ = (y[-1] - y[0]) / (len(y) - 1)
        self.sigma_ = float(np.std(np.diff(y) - self.slope_, ddof=1))
        return self

    def predict(self, horizon, level=0.9):
        T, h = len(self.y_), np.arange(1, horizon + 1)
        mean = self.y_.iloc[-1] + h * self.slope_
        half = 1.6448536269514722 * self.sigma_ * np.sqrt(h * (1 + h / (T - 1)))
        return pd.DataFrame({"mean": mean, "lower": mean - half, "upper": mean + half}, index=self.future_index(horizon))


@pytest.fixture
def clean():
    yield
    R.unregister("naive_drift")


def test_builtins_match_the_declared_entry_points():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["workbench.models"]
    assert declared == R.BUILTIN
    for name in R.BUILTIN:
        assert issubclass(R.get(name), R.Forecaster)
    with pytest.raises(R.ModelError, match="unknown model 'nope'"):
        R.get("nope")


def test_a_registered_model_backtests_through_the_same_api(clean):
    R.register("naive_drift", NaiveDrift)
    assert "naive_drift" in R.available()
    y = pd.Series(np.arange(60, dtype=float) * 2 + 5, index=pd.date_range("2025-01-01", periods=60, freq="D"))
    f = R.make("naive_drift").fit(y).predict(3)
    assert f["mean"].tolist() == [125.0, 127.0, 129.0]      # 123 + h · 2
    r = F.backtest(y, "naive_drift", horizon=7, folds=2)
    assert r["model"] == "naive_drift" and r["metrics"]["mase"] == pytest.approx(0.0)
    with pytest.raises(R.ModelError, match="already registered"):
        R.register("naive_drift", NaiveDrift)


def test_an_entry_point_plugs_in_and_a_broken_one_names_itself(monkeypatch):
    eps = [EntryPoint("drifty", "tests_models_plugin:NaiveDrift", R.ENTRY_POINT_GROUP),
           EntryPoint("broken", "no_such_module_xyz:Model", R.ENTRY_POINT_GROUP)]
    from workbench.core import plugins

    monkeypatch.setattr(plugins, "entry_points", lambda group: eps if group == R.ENTRY_POINT_GROUP else [])
    import sys
    import types
    mod = types.ModuleType("tests_models_plugin")
    mod.NaiveDrift = NaiveDrift
    monkeypatch.setitem(sys.modules, "tests_models_plugin", mod)
    assert {"drifty", "broken", "ets"} <= set(R.available())
    assert isinstance(R.make("drifty"), NaiveDrift)
    with pytest.raises(R.ModelError, match="entry point 'broken'.*cannot be loaded"):
        R.get("broken")
