"""Many series at once on ``dask.distributed`` (issue 15 point 8).

:func:`backtest_many` runs :func:`workbench.models.forecast.backtest` on every series of a mapping
and :func:`detect_many` the 15-minute anomaly detector on every meter of a wide frame — serially
when no client is given, else as one task per chunk of series on the Dask cluster.  Each task is a
pure function of its series and its parameters (models are seeded), so the results are the same
serially and on any cluster; the rows come back in the order of the input.

:func:`client` opens a :class:`dask.distributed.LocalCluster` (``n_workers`` processes, one thread
each, no dashboard) or connects to a running scheduler (``address="tcp://host:8786"``).
"""
from __future__ import annotations

from contextlib import contextmanager

import pandas as pd

from workbench.models import anomalies as A
from workbench.models.forecast import backtest

__all__ = ["backtest_many", "client", "detect_many"]


@contextmanager
def client(address: str | None = None, *, n_workers: int = 2, processes: bool = True, threads_per_worker: int = 1):
    """A ``dask.distributed.Client``: to the scheduler at ``address``, or to a new LocalCluster of
    ``n_workers`` workers (closed on exit)."""
    from dask.distributed import Client, LocalCluster

    if address:
        c = Client(address)
        try:
            yield c
        finally:
            c.close()
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=processes,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def _backtest_chunk(items, model, kw) -> list[dict]:
    rows = []
    for key, y in items:
        r = backtest(y, model, **kw)
        row = {"series": key, "model": r["model"], **r["metrics"]}
        row.update({f"baseline_{k}": v for k, v in r.get("baseline", {}).items()})
        for col in ("total_pit", "total_z"):                # per fold: for calibration curves over many series
            per = r["folds"].groupby("model", sort=False)[col].apply(tuple)
            row[f"{col}s"] = per.iloc[0]
            if len(per) > 1:
                row[f"baseline_{col}s"] = per.iloc[1]
        rows.append(row)
    return rows


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def backtest_many(series, model="seasonal_naive", *, client=None, chunk: int = 4, **kw) -> pd.DataFrame:
    """One row per series: its backtest metrics (mape, smape, mase, coverage, total_coverage), the
    folds' ``total_pits`` and ``total_zs`` (:func:`workbench.models.forecast.total_pit`,
    :func:`~workbench.models.forecast.total_z`: for calibration curves over many series) and the baseline's (``baseline_…``).  ``series``: a mapping key → pd.Series; ``model``: a name or a factory
    (a class defined in a notebook travels to the workers by value); ``kw``: :func:`backtest`'s."""
    items = list(series.items())
    parts = _chunks(items, max(1, int(chunk)))
    if client is None:
        rows = [r for p in parts for r in _backtest_chunk(p, model, kw)]
    else:
        futures = client.map(_backtest_chunk, parts, model=model, kw=kw, pure=False)
        rows = [r for res in client.gather(futures) for r in res]
    return pd.DataFrame(rows)


def detect_many(wide: pd.DataFrame, *, client=None, chunk: int = 50, defaults: A.Defaults = A.DEFAULTS):
    """:func:`workbench.models.anomalies.detect_intervals` of a wide 15-minute frame, its blocks of
    ``chunk`` meters (the sparse STL operators applied to a block at once) spread over the cluster;
    returns (detections, z).  The whole detection, drift and the forest included, is
    :func:`~workbench.models.anomalies.detect_frame` with ``client=``."""
    from dataclasses import replace

    return A.detect_intervals(wide, defaults=replace(defaults, block=max(1, int(chunk))), client=client)
