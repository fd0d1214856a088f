"""``workbench models …``: anomaly detection, backtests and the model registry (issue 15).

    workbench models list
    workbench models detect   --lake DIR --enterprise ID [--start D] [--end D] [--labels anomalies.csv]
                              [--alarms-db URL] [--out FILE.csv] [--json]
    workbench models backtest --lake DIR --enterprise ID [--model NAME] [--meter M …] [--horizon 28]
                              [--folds 3] [--workers N | --scheduler tcp://HOST:8786] [--out FILE.csv] [--json]

``detect`` runs :func:`workbench.models.anomalies.detect` on the enterprise's interval consumption;
``--labels`` scores the detections (precision, recall per kind); ``--alarms-db`` raises one
``ANOMALY`` alarm per meter in the monitoring app's alarm store
(:func:`workbench.devices.alarms.raise_anomalies`; the live page lists them).  ``backtest`` runs
rolling-origin backtests of every meter's daily consumption against the seasonal-naive baseline,
serially, on a LocalCluster of ``--workers`` or on the scheduler at ``--scheduler``.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from workbench.cli.errors import fail, read_input
from workbench.cli.lake import DEFAULT_LAKE, _lake

__all__ = ["models_group"]

_lake_option = click.option("--lake", "lake_root", default=DEFAULT_LAKE, show_default=True,
                            help="Lake root (folder or fsspec URL); env WORKBENCH_LAKE.")
_enterprise_option = click.option("--enterprise", "enterprise", required=True, envvar="WORKBENCH_ENTERPRISE",
                                  help="The enterprise (its enterprise_id; env WORKBENCH_ENTERPRISE).")


def _date(value, name):
    import pandas as pd

    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        fail(f"{name}: {value!r} is not a date (YYYY-MM-DD)")


@click.group("models")
def models_group():
    """Analytics and models: anomaly detection, forecasts and backtests, the model registry."""


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(as_json):
    """The forecasting models known (registered, entry points of workbench.models, built in)."""
    from workbench.models import registry as R

    names = R.available()
    if as_json:
        click.echo(json.dumps(names))
    else:
        for n in names:
            click.echo(n)


@models_group.command("detect")
@_lake_option
@_enterprise_option
@click.option("--start", default=None, help="First day (YYYY-MM-DD, inclusive).")
@click.option("--end", default=None, help="Last day (YYYY-MM-DD, exclusive).")
@click.option("--labels", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Labelled anomalies (a demo plant's anomalies.csv) to score the detections against.")
@click.option("--alarms-db", "alarms_db", default=None, envvar="WORKBENCH_ALARMS_DB",
              help="Raise the detections as ANOMALY alarms in this alarm store (SQLAlchemy URL).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the detections (CSV).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def detect_command(lake_root, enterprise, start, end, labels, alarms_db, out, as_json):
    """Anomalies in the enterprise's 15-minute consumption (STL robust z, stuck runs, IsolationForest)."""
    from workbench.models import anomalies as A

    lake = _lake(lake_root, enterprise)
    t0, t1 = _date(start, "--start"), _date(end, "--end")
    # bad input refused before the work
    truth = read_input(labels, A.read_labels, label="--labels") if labels is not None else None
    store = None
    if alarms_db:
        from workbench.devices.alarms import AlarmStore

        store = AlarmStore(alarms_db)
    try:
        det = A.detect(lake, start=t0, end=t1)
        result = {"enterprise": enterprise, "detections": len(det),
                  "by_kind": {k: int(v) for k, v in det["kind"].value_counts().sort_index().items()},
                  "drift_unchecked": det.attrs.get("drift_unchecked", [])}
        if truth is not None:
            s = A.score(det, truth)
            result["score"] = {"precision": s["precision"], "recall": s["recall"], "per_kind": s["per_kind"]}
        if store is not None:
            from workbench.devices.alarms import raise_anomalies

            result["alarms"] = len(raise_anomalies(store, enterprise, det))
    finally:
        if store is not None:
            store.dispose()
    if out is not None:
        det.to_csv(out, index=False)
        result["out"] = str(out)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, default=str))
        return
    click.echo(det.to_string(index=False) if len(det) else "no anomalies / 未检出异常")
    click.echo(f"{len(det)} detection(s) / 检出 {len(det)} 处: {result['by_kind']}")
    if result["drift_unchecked"]:
        click.echo(f"drift not checked (no twin meter) / 无对照表、未检漂移: {', '.join(result['drift_unchecked'])}")
    if "score" in result:
        sc = result["score"]
        for k, v in sc["per_kind"].items():
            click.echo(f"  {k:<6} recall {v['found']}/{v['labels']}  precision {v['true']}/{v['detections']}")
        click.echo(f"  overall precision {sc['precision']:.2f} recall {sc['recall']:.2f}")
    if "alarms" in result:
        click.echo(f"{result['alarms']} ANOMALY alarm(s) raised / 已生成告警")


@models_group.command("backtest")
@_lake_option
@_enterprise_option
@click.option("--model", default="seasonal_naive", show_default=True, help="A model name (`workbench models list`).")
@click.option("--meter", "meters", multiple=True, help="Only these meters (repeatable; default all interval meters).")
@click.option("--horizon", type=click.IntRange(1, 366), default=28, show_default=True, help="Days forecast per fold.")
@click.option("--folds", type=click.IntRange(1, 52), default=3, show_default=True, help="Rolling origins.")
@click.option("--workers", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Dask LocalCluster workers (0: serial).")
@click.option("--scheduler", default=None, help="A running Dask scheduler's address (tcp://host:8786).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the metrics (CSV).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records.")
def backtest_command(lake_root, enterprise, model, meters, horizon, folds, workers, scheduler, out, as_json):
    """Rolling-origin backtests of each meter's daily consumption (MAPE, sMAPE, MASE, coverage)."""
    from workbench.models import anomalies as A
    from workbench.models import parallel as P
    from workbench.models import registry as R

    try:
        R.get(model)
    except R.ModelError as exc:
        fail(f"--model: {exc}")
    lake = _lake(lake_root, enterprise)
    daily, _ = A.interval_matrix(lake, meters=list(meters) or None, freq="1D")
    series = {m: daily[m].interpolate(limit_direction="both").asfreq("D") for m in daily.columns
              if daily[m].notna().sum() >= horizon * (folds + 1) + 16}
    if not series:
        fail(f"no meter of {enterprise} has enough days for {folds} fold(s) of {horizon} days")
    kw = {"horizon": horizon, "folds": folds}
    if scheduler or workers:
        with P.client(scheduler, n_workers=workers or 2) as c:
            res = P.backtest_many(series, model, client=c, **kw)
    else:
        res = P.backtest_many(series, model, **kw)
    per_fold = [c for c in res.columns if c.endswith(("total_pits", "total_zs"))]
    if out is not None:
        res.to_csv(out, index=False)
    if as_json:
        click.echo(res.to_json(orient="records", force_ascii=False))
    else:                                        # the per-fold calibration values: in --out and --json
        click.echo(res.drop(columns=per_fold).round(3).to_string(index=False))


# ------------------------------------------------------------------------------------ scenarios
def _finite(value):
    """A JSON-safe number: NaN and ±inf → None."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):                 # a numpy scalar
        return _finite(value.item())
    return value


def _failing_measure(inv, measures, prices):
    """The first measure that fails alone (its name and error), when a MAC curve failed."""
    from workbench.models.scenarios import ScenarioError, evaluate

    for name, levers in measures.items():
        try:
            evaluate(inv, levers, name=name, prices=prices)
        except ScenarioError as exc:
            return name, exc
    return None, None


@models_group.command("scenarios")
@_lake_option
@_enterprise_option
@click.option("--start", required=True, help="First month (YYYY-MM).")
@click.option("--end", required=True, help="Last month (YYYY-MM, inclusive).")
@click.option("--config", "config", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The measures and prices (YAML; see workbench.models.scenario_config).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the MAC table (CSV).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def scenarios_command(lake_root, enterprise, start, end, config, out, as_json):
    """Reduction measures of a YAML file against the enterprise's inventory: the MAC table (each measure
    alone and its increment in the curve's order) and the whole package (all measures in the file's
    order) before and after, with the carbon efficiency (tCO2e/万元)."""
    from workbench.inventory.compute import compute_inventory_from_lake, months
    from workbench.lake.store import Lake
    from workbench.models.scenario_config import load_config
    from workbench.models.scenarios import ScenarioError, evaluate, mac_curve

    cfg = read_input(config, load_config, label="--config")      # a bad file refused before the work
    try:
        months(start, end)
    except ValueError as exc:
        fail(f"--start/--end: {exc}")
    _lake(lake_root, enterprise)                                   # a malformed enterprise id, in one line
    try:
        inv = compute_inventory_from_lake(Lake(lake_root), enterprise, start, end)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        fail(f"{enterprise} {start}..{end}: {exc.args[0] if exc.args else exc}")
    try:
        curve = mac_curve(inv, cfg.measures, prices=cfg.prices)
    except ScenarioError as exc:
        name, alone = _failing_measure(inv, cfg.measures, cfg.prices)
        fail(f"{config}: measure {name!r}: {alone}" if name is not None else f"{config}: the measures together: {exc}")
    try:
        pkg = evaluate(inv, cfg.package, name=cfg.name, prices=cfg.prices)
    except ScenarioError as exc:
        fail(f"{config}: the package of all measures: {exc}")
    cols = ["measure", "levers", "avoided_tco2e", "cost_cny", "cost_per_tco2e", "on_curve", "incremental_tco2e",
            "incremental_cost_per_tco2e", "cumulative_after_tco2e", "cumulative_carbon_efficiency"]
    table = curve[cols]
    s = pkg.summary()
    result = {"enterprise": enterprise, "period_start": inv.period_start, "period_end": inv.period_end,
              "measures": [{k: _finite(v) for k, v in r.items()} for r in table.to_dict(orient="records")],
              "package": {k: _finite(v) for k, v in s.items()},
              "package_levers": [lv.describe() for lv in cfg.package], "notes": pkg.notes}
    if out is not None:
        table.to_csv(out, index=False)
        result["out"] = str(out)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, default=str))
        return
    show = table[["measure", "avoided_tco2e", "cost_cny", "cost_per_tco2e", "incremental_tco2e",
                  "incremental_cost_per_tco2e"]].rename(columns={
                      "measure": "measure 措施", "avoided_tco2e": "avoided tCO2e", "cost_cny": "cost 元",
                      "cost_per_tco2e": "元/tCO2e", "incremental_tco2e": "incremental tCO2e",
                      "incremental_cost_per_tco2e": "incremental 元/tCO2e"})
    click.echo(f"{inv.enterprise.get('name_zh') or enterprise} {inv.period_start}..{inv.period_end} "
               f"({s['months']} months / 个月)")
    import pandas as pd

    with pd.option_context("display.unicode.east_asian_width", True):   # Chinese names keep the columns straight
        click.echo(show.to_string(index=False, float_format=lambda x: f"{x:,.1f}", na_rep="-"))

    def num(x, fmt):
        return "-" if _finite(x) is None else format(x, fmt)

    click.echo(f"package / 全部措施 ({len(cfg.package)} lever(s), demand first, then on-site supply, then purchases): "
               f"{num(s['before_tco2e'], ',.1f')} → {num(s['after_tco2e'], ',.1f')} tCO2e, "
               f"avoided / 减排 {num(s['avoided_tco2e'], ',.1f')} tCO2e ({num(s['avoided_pct'], '.2f')} %)")
    click.echo(f"carbon efficiency / 碳效率 {num(s['carbon_efficiency_before'], '.4f')} → "
               f"{num(s['carbon_efficiency_after'], '.4f')} tCO2e/万元; cost / 成本 {num(s['cost_cny'], ',.0f')} 元, "
               f"{num(s['cost_per_tco2e'], ',.1f')} 元/tCO2e")
    for note in pkg.notes[1:]:
        click.echo(f"note: {note}")
    if out is not None:
        click.echo(f"MAC table written to {out}")
