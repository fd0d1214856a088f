"""The researchers' model registry (issue 15 point 7): a new forecaster plugs into the notebooks,
the CLI (``workbench models list|backtest --model NAME``) and the apps without touching the core.

A model is a class (or a factory) making :class:`Forecaster` objects::

    class Theta(Forecaster):
        name = "theta"
        def fit(self, y): ...                      # y: pd.Series on a regular DatetimeIndex
        def predict(self, horizon, level=0.9): ... # DataFrame: mean, lower, upper on the future index

Three ways to make it known, looked up in this order by :func:`get`:

1. :func:`register` in the running process (a notebook: ``register("theta", Theta)``);
2. an entry point of the group ``workbench.models`` in any installed distribution's metadata::

       [project.entry-points."workbench.models"]
       theta = "my_package.theta:Theta"

3. the built-ins of :data:`BUILTIN` (the same names as the package's own entry points, so that they
   are found in a checkout that was not reinstalled — as :mod:`workbench.core.regime` does).

The base class gives every model :meth:`Forecaster.simulate` (sample paths from the predictive
distribution, for probabilities of exceeding an allowance) from its intervals when it has no
better sampler of its own.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.core.plugins import entry_points_of, load_entry_point

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "Forecaster", "ModelError", "available", "get", "make", "register",
           "unregister"]

ENTRY_POINT_GROUP = "workbench.models"
#: the package's own models (also declared as entry points in pyproject.toml)
BUILTIN = {
    "seasonal_naive": "workbench.models.forecast:SeasonalNaive",
    "ets": "workbench.models.forecast:ETS",
    "sarimax": "workbench.models.forecast:SARIMAX",
    "prophet": "workbench.models.forecast:ProphetForecaster",
    "linear": "workbench.models.forecast:LinearLags",
    "svr": "workbench.models.forecast:SVRLags",
    "mlp": "workbench.models.forecast:MLPLags",
}
_REGISTERED: dict[str, object] = {}


class ModelError(WorkbenchError, ValueError):
    pass


class Forecaster:
    """One forecasting model: :meth:`fit` on a series, :meth:`predict` with intervals.

    Subclasses set ``name`` and implement ``fit(y)`` (returning ``self``) and
    ``predict(horizon, level)`` returning a frame indexed by the ``horizon`` future times with the
    columns ``mean``, ``lower``, ``upper`` (central ``level`` interval).  ``season``: the seasonal
    period in samples (7 for daily data); ``seed``: for models that draw random numbers.
    """
    name = "forecaster"

    def __init__(self, season: int = 7, seed: int = 0, **params):
        self.season = int(season)
        self.seed = int(seed)
        self.params = params
        self.y_: pd.Series | None = None

    def fit(self, y: pd.Series) -> Forecaster:  # pragma: no cover - the interface
        raise NotImplementedError

    def predict(self, horizon: int, level: float = 0.9) -> pd.DataFrame:  # pragma: no cover - the interface
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers for subclasses
    def _check(self, y) -> pd.Series:
        if not isinstance(y, pd.Series) or not isinstance(y.index, pd.DatetimeIndex):
            raise ModelError(f"{self.name}: fit needs a pandas Series on a DatetimeIndex")
        if y.isna().any():
            raise ModelError(f"{self.name}: the series has {int(y.isna().sum())} missing values; fill them first")
        if len(y) < 2 * self.season + 2:
            raise ModelError(f"{self.name}: {len(y)} points are too few for season {self.season}")
        freq = y.index.freq or pd.infer_freq(y.index)
        if freq is None:
            raise ModelError(f"{self.name}: the series' index has no regular frequency")
        y = y.astype(float).copy()
        y.index = pd.DatetimeIndex(y.index, freq=freq)
        self.y_ = y
        return y

    def future_index(self, horizon: int) -> pd.DatetimeIndex:
        y = self.y_
        return pd.date_range(y.index[-1] + y.index.freq, periods=int(horizon), freq=y.index.freq)

    def simulate(self, horizon: int, n: int = 1000, seed: int | None = None) -> np.ndarray:
        """``n`` sample paths (n × horizon) of the predictive distribution.  Default: independent
        normal draws with mean ``mean`` and σ = (upper − lower) / (2 · 1.6449) from the 90 %
        interval (models with a sampler of their own override this)."""
        f = self.predict(horizon, level=0.9)
        sigma = ((f["upper"] - f["lower"]) / (2 * 1.6448536269514722)).to_numpy()
        rng = np.random.default_rng(self.seed if seed is None else seed)
        return f["mean"].to_numpy() + rng.standard_normal((int(n), int(horizon))) * sigma


def register(name: str, factory, *, replace: bool = False) -> None:
    """Make ``factory`` (a :class:`Forecaster` subclass or a callable returning one) known as
    ``name`` in this process."""
    key = name.strip().lower()
    if not key:
        raise ModelError("a model needs a name")
    if key in _REGISTERED and not replace:
        raise ModelError(f"model {key!r} is already registered (replace=True to override)")
    if not callable(factory):
        raise ModelError(f"model {key!r}: {factory!r} is not a class or a factory")
    _REGISTERED[key] = factory


def unregister(name: str) -> None:
    _REGISTERED.pop(name.strip().lower(), None)


def _entry_points() -> dict:
    return entry_points_of(ENTRY_POINT_GROUP, BUILTIN)


def available() -> list[str]:
    """Every model name: registered, from entry points, built in."""
    return sorted(set(_REGISTERED) | set(_entry_points()))


def get(name: str):
    """The factory of model ``name`` (registered first, then entry points, then built-ins)."""
    key = (name or "").strip().lower()
    if key in _REGISTERED:
        return _REGISTERED[key]
    eps = _entry_points()
    if key not in eps:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(available())}")
    obj = load_entry_point(eps[key], ModelError)
    if not callable(obj):
        raise ModelError(f"entry point '{key}' ({eps[key].value}) is not a model class or factory")
    return obj


def make(name_or_model, **params) -> Forecaster:
    """A fresh, unfitted model: ``name_or_model`` a registered name, a factory, or a Forecaster
    (whose class is instantiated again with its parameters)."""
    if isinstance(name_or_model, Forecaster):
        m = name_or_model
        return type(m)(season=m.season, seed=m.seed, **{**m.params, **params})
    factory = get(name_or_model) if isinstance(name_or_model, str) else name_or_model
    model = factory(**params)
    if not isinstance(model, Forecaster):
        raise ModelError(f"model {name_or_model!r} made {type(model).__name__}, not a Forecaster")
    return model
