"""The forecasts & scenarios page (issue 15 point 9; seed §8.5, §9.2 碳排放量预估模型, §9.5).

**Forecast** — the enterprise's daily emissions (:func:`workbench.models.forecast.daily_emissions`:
the inventory's monthly ledger shaped by its meters, summing to it exactly) up to a cutoff, a model
of the registry (:mod:`workbench.models.registry`: a researcher's model installed by entry point
appears in the list without a change here) forecasting the rest of the year with its 90 % interval,
the year's total against an allowance (碳配额) with the probability of exceeding it
(:func:`~workbench.models.forecast.year_outlook`), and a rolling-origin backtest of the model beside
the seasonal-naive baseline.

**Scenarios** — measures written as the scenario file of :mod:`workbench.models.scenario_config`
(pre-filled by :func:`~workbench.models.scenario_config.example_config`, its figures marked as assumptions), evaluated on the
inventory (:func:`workbench.models.scenarios.evaluate` for the whole package,
:func:`~workbench.models.scenarios.mac_curve` per measure): emissions and carbon efficiency before
and after, the steps each lever took, the MAC table and curve.

Thin, like every page: the figures are the package's; the enterprise's lake is opened through the
principal (:meth:`~workbench.apps.auth.Principal.lake`), so a user reads only granted enterprises.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ["ForecastView", "forecast_view", "inventory_of", "page", "scenario_view"]

HORIZON = 28            # days per backtest fold
FOLDS = 6               # rolling origins: the backtest, and the calibration of the year's spread
LEVEL = 0.9


def inventory_of(principal, lake_root, enterprise: str, start: str | None = None, end: str | None = None):
    """``(inventory, lake)`` of a granted enterprise over ``start``..``end`` (default: the latest
    twelve months of data).  The grant is checked where the lake is opened."""
    from workbench.inventory.compute import compute_inventory_from_lake
    from workbench.inventory.footprint import available_span

    lake = principal.lake(Path(lake_root), enterprise)
    if not (start and end):
        span = available_span(lake)
        if span is None:
            raise ValueError(f"{enterprise}: the lake holds no activity data yet")
        last = pd.Period(span[1], "M")
        first = max(pd.Period(span[0], "M"), last - 11)
        start, end = start or str(first), end or str(last)
    return compute_inventory_from_lake(lake, enterprise, start, end), lake


@dataclass
class ForecastView:
    """What the forecast tab shows: the daily series, the forecast of the rest of the year, the
    year's outlook (:func:`~workbench.models.forecast.year_outlook`) and the backtest."""
    daily: pd.DataFrame
    observed: pd.Series
    forecast: pd.DataFrame
    outlook: dict
    backtest: pd.DataFrame
    cutoff: pd.Timestamp


def default_cutoff(daily: pd.DataFrame) -> pd.Timestamp:
    """The last day of data, except when the data end on 31 December: then 30 September of that
    year, so that there is a rest of the year to forecast (and to compare with what happened) —
    unless that would leave less than eight weeks of data."""
    last = daily.index[-1]
    sept = pd.Timestamp(year=last.year, month=9, day=30)
    whole_year = (last.month, last.day) == (12, 31)
    return sept if whole_year and sept - daily.index[0] >= pd.Timedelta("56D") else last


def forecast_view(inventory, lake, *, model: str = "ets", cutoff=None, allowance_t: float | None = None,
                  efficiency_target: float | None = None, n: int = 1000, seed: int = 0) -> ForecastView:
    """The forecast tab's figures for one inventory (tCO2e per day).  Without ``allowance_t`` the
    year so far's daily pace × the year's days stands in for it, without ``efficiency_target`` the
    year so far's carbon efficiency (``outlook["allowance_default"]``, ``outlook["target_default"]``).
    Carbon efficiency (tCO2e/万元) is forecast when every day up to the cutoff has value added."""
    from workbench.models.forecast import (
        backtest,
        daily_emissions,
        spread_scale,
        value_added_per_day,
        year_outlook,
    )
    from workbench.models.registry import make

    daily = daily_emissions(inventory, lake)
    cut = pd.Timestamp(cutoff) if cutoff else default_cutoff(daily)
    y = daily["total"][daily.index <= cut].asfreq("D")
    if len(y) < 3 * 7:
        raise ValueError(f"only {len(y)} days up to {cut.date()}: a forecast needs three weeks at least")
    year_end = pd.Timestamp(year=cut.year, month=12, day=31)
    remaining = int((year_end - y.index[-1]).days)
    fitted = make(model, season=7, seed=seed).fit(y)          # one fit: the plotted forecast and the outlook
    fc = (fitted.predict(remaining, level=LEVEL) if remaining > 0
          else pd.DataFrame(columns=["mean", "lower", "upper"]))
    days = 366 if year_end.is_leap_year else 365
    pace = float(y[y.index.year == cut.year].mean()) * days
    va = value_added_per_day(inventory).reindex(y.index)
    this_year = y.index.year == cut.year
    has_va = bool(va.notna().all() and va[this_year].sum() > 0)
    target = (float(y[this_year].sum() / va[this_year].sum()) if efficiency_target is None else efficiency_target) \
        if has_va else None
    folds = min(FOLDS, max(1, (len(y) - 2 * 7 - 2) // HORIZON))
    bt = backtest(y, model, horizon=HORIZON, folds=folds, level=LEVEL)
    scale = spread_scale(bt["folds"].loc[bt["folds"]["model"] == bt["model"], "total_z"])
    outlook = year_outlook(y, allowance_t=pace if allowance_t is None else allowance_t, model=model, n=n, seed=seed,
                           output=va if has_va else None, efficiency_target=target, spread_scale=scale,
                           fitted=fitted)
    outlook["allowance_default"] = allowance_t is None
    outlook["target_default"] = efficiency_target is None
    outlook["calibration_folds"] = folds
    rows = [{"model": model, **bt["metrics"]}]
    if "baseline" in bt and model != "seasonal_naive":
        rows.append({"model": "seasonal_naive (baseline)", **bt["baseline"]})
    return ForecastView(daily, y, fc, outlook, pd.DataFrame(rows), cut)


def scenario_view(inventory, config):
    """``(package, curve)``: every measure of ``config`` (the scenario file's YAML text, or a mapping)
    applied together (:func:`~workbench.models.scenarios.evaluate`) and the MAC curve of the measures
    (:func:`~workbench.models.scenarios.mac_curve`)."""
    from workbench.models.scenario_config import load_config
    from workbench.models.scenarios import ScenarioError, evaluate, mac_curve

    if isinstance(config, str):
        import yaml

        try:
            config = yaml.safe_load(config)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ScenarioError(f"scenario file: not valid YAML: {getattr(exc, 'problem', None) or exc}{at}") from None
    cfg = load_config(config)
    package = evaluate(inventory, cfg.package, name=cfg.name, prices=cfg.prices)
    curve = mac_curve(inventory, cfg.measures, prices=cfg.prices)
    return package, curve


def _fmt(x, spec=",.1f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def page(principal, lake_root):
    """The page for one session's principal."""
    import holoviews as hv
    import holoviews.plotting.bokeh  # the plotting backend, without a notebook's output
    import panel as pn

    from workbench.apps.server import granted_enterprises, selection_widgets
    from workbench.models.registry import available
    from workbench.models.scenario_config import example_config
    from workbench.models.scenarios import mac_plot

    root = Path(lake_root)
    visible, asked, refused = granted_enterprises(principal, root)
    if refused is not None:
        return refused
    enterprise, start, end = selection_widgets(visible, asked)
    models = sorted(available())
    model = pn.widgets.Select(name="模型 / Model", options=models, value="ets" if "ets" in models else models[0])
    cutoff = pn.widgets.TextInput(name="截止日 / Cutoff (YYYY-MM-DD)", value="")
    allowance = pn.widgets.TextInput(name="配额 / Allowance (tCO2e)", value="")
    target = pn.widgets.TextInput(name="碳效目标 / Efficiency target (tCO2e/万元)", value="")
    message = pn.pane.Alert("", alert_type="danger", visible=False, name="message")
    fc_head = pn.pane.Markdown("", name="forecast_headline", sizing_mode="stretch_width")
    fc_plot = pn.pane.HoloViews(None, sizing_mode="stretch_width", min_height=360, name="forecast_plot")
    fc_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, name="backtest",
                                    sizing_mode="stretch_width")
    config = pn.widgets.TextAreaInput(name="情景文件 (YAML) / Scenario file (YAML)", value="", height=260,
                                      sizing_mode="stretch_width")
    run = pn.widgets.Button(name="计算情景 / Evaluate", button_type="primary")
    sc_head = pn.pane.Markdown("", name="scenario_headline", sizing_mode="stretch_width")
    sc_message = pn.pane.Alert("", alert_type="danger", visible=False, name="scenario_message")
    mac_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, name="mac",
                                     sizing_mode="stretch_width")
    mac_pane = pn.pane.HoloViews(None, sizing_mode="stretch_width", min_height=340, name="mac_plot")
    steps = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, name="steps",
                                 sizing_mode="stretch_width")
    sources = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, name="by_source",
                                   sizing_mode="stretch_width")
    cache: dict = {}
    busy = {"filling": False}

    def current():
        key = (enterprise.value, start.value.strip(), end.value.strip())
        if key not in cache:
            cache[key] = inventory_of(principal, root, *key)
        return cache[key]

    def forecast(*_):
        if busy["filling"]:
            return
        message.visible = False
        try:
            inv, lake = current()
            allow = float(allowance.value) if allowance.value.strip() else None
            tgt = float(target.value) if target.value.strip() else None
            v = forecast_view(inv, lake, model=model.value, cutoff=cutoff.value.strip() or None, allowance_t=allow,
                              efficiency_target=tgt)
        except Exception as exc:  # noqa: BLE001 - shown in one line, the page stays
            message.object, message.visible = f"{exc}", True
            return
        o = v.outlook
        busy["filling"] = True              # defaults shown in the fields, without running the forecast again
        try:
            if o["allowance_default"]:
                allowance.value = f"{o['allowance_t']:.0f}"
            if o["target_default"] and "efficiency_target" in o:
                target.value = f"{o['efficiency_target']:.4f}"
        finally:
            busy["filling"] = False
        fc_head.object = (
            f"**{enterprise.value}** · {o['year']} · 模型 / model **{o['model']}** · 截至 / up to {v.cutoff.date()}: "
            f"实际 / observed <span id='observed'>{_fmt(o['observed_t'])}</span> t · "
            f"全年预测 / year forecast <span id='forecast'>{_fmt(o['forecast_t'])}</span> t "
            f"(90 %: <span id='p05'>{_fmt(o['p05_t'])}</span> – <span id='p95'>{_fmt(o['p95_t'])}</span>; "
            f"校准 / calibrated × <span id='spread'>{o['spread_scale']:.2f}</span> on {o['calibration_folds']} "
            f"backtest folds) · "
            f"配额 / allowance {_fmt(o.get('allowance_t'))} t"
            + (" (默认：今年至今速度 × 全年天数 / default: the year so far's pace × its days)" if o["allowance_default"] else "")
            + " · 超配额概率 / P(exceed) "
            f"<span id='p_exceed'>{_fmt(100 * o.get('p_exceed_allowance', float('nan')), '.1f')}</span> %"
            + ("" if "efficiency" not in o else
               f" · 全年碳效 / the year's carbon efficiency <span id='efficiency'>{_fmt(o['efficiency'], '.4f')}</span>"
               f" tCO2e/万元 (90 %: {_fmt(o['efficiency_p05'], '.4f')} – {_fmt(o['efficiency_p95'], '.4f')}) · 目标 / target "
               f"{_fmt(o['efficiency_target'], '.4f')}" + (" (默认：今年至今 / default: the year so far)" if o["target_default"] else "")
               + f" · P(exceed) <span id='p_exceed_target'>"
               f"{_fmt(100 * o.get('p_exceed_efficiency_target', float('nan')), '.1f')}</span> %"))
        obs = hv.Curve((v.observed.index, v.observed.values), "day", "tCO2e", label="实际 / observed")
        parts = [obs]
        if len(v.forecast):
            f = v.forecast
            parts += [hv.Area((f.index, f["lower"].values, f["upper"].values), "day", ["lower", "upper"],
                              label="90 %").opts(alpha=0.25, color="orange"),
                      hv.Curve((f.index, f["mean"].values), "day", "tCO2e", label="预测 / forecast").opts(color="orange")]
        fc_plot.object = hv.Overlay(parts).opts(responsive=True, min_height=340, legend_position="top_left",
                                                title="日排放与预测 / daily emissions and forecast")
        fc_table.value = v.backtest.drop(columns=[c for c in ("total_pits",) if c in v.backtest]).round(3)

    def scenarios(*_):
        sc_message.visible = False
        try:
            inv, _ = current()
            if not config.value.strip():
                config.value = example_config(inv)
            package, curve = scenario_view(inv, config.value)
        except Exception as exc:  # noqa: BLE001 - shown in one line, the page stays
            sc_message.object, sc_message.visible = f"{exc}", True
            return
        s = package.summary()
        sc_head.object = (
            f"**{s['period_start']}..{s['period_end']}** · 排放 / emissions <span id='before'>{_fmt(s['before_tco2e'])}</span>"
            f" → <span id='after'>{_fmt(s['after_tco2e'])}</span> tCO2e (减少 / avoided "
            f"<span id='avoided'>{_fmt(s['avoided_tco2e'])}</span>, {_fmt(s['avoided_pct'], '.2f')} %) · "
            f"碳效 / carbon efficiency <span id='ce_before'>{_fmt(s['carbon_efficiency_before'], '.4f')}</span> → "
            f"<span id='ce_after'>{_fmt(s['carbon_efficiency_after'], '.4f')}</span> tCO2e/万元 · "
            f"成本 / cost <span id='cost'>{_fmt(s['cost_cny'], ',.0f')}</span> 元 · "
            f"<span id='cost_per_t'>{_fmt(s['cost_per_tco2e'], ',.1f')}</span> 元/tCO2e")
        mac_table.value = curve[["measure", "levers", "avoided_tco2e", "cost_cny", "cost_per_tco2e", "incremental_tco2e",
                                 "incremental_cost_per_tco2e", "cumulative_after_tco2e", "on_curve"]].round(3)
        mac_pane.object = mac_plot(curve) if curve["on_curve"].any() else None
        steps.value = package.steps
        sources.value = package.by_source().round(3)

    def reset(*_):
        config.value = ""
        busy["filling"] = True
        allowance.value = target.value = ""
        busy["filling"] = False
        busy["scenarios_stale"] = True
        forecast()
        if tabs.active == 1:
            scenarios_once()

    def scenarios_once(*_):
        # the scenarios are evaluated when their tab is first shown (and again on "Evaluate"),
        # so that the forecast is not kept waiting for them
        if busy.get("scenarios_stale", True) and tabs.active == 1:
            busy["scenarios_stale"] = False
            scenarios()

    for w in (enterprise, start, end):
        w.param.watch(reset, "value")
    for w in (model, cutoff, allowance, target):
        w.param.watch(forecast, "value")
    run.on_click(scenarios)
    forecast()
    tabs = pn.Tabs(
        ("排放预测 / Forecast", pn.Column(pn.Row(model, cutoff, allowance, target), fc_head, fc_plot,
                                          pn.pane.Markdown("回测 / Backtest (MAPE, sMAPE in %; MASE < 1 beats the "
                                                           "seasonal naive; coverage: days inside their 90 % "
                                                           "interval; total_coverage: 28-day totals inside theirs, "
                                                           "before calibration)"),
                                          fc_table, sizing_mode="stretch_width")),
        ("减排情景 / Scenarios", pn.Column(config, run, sc_message, sc_head, mac_pane, mac_table,
                                           pn.pane.Markdown("按来源 / by source"), sources,
                                           pn.pane.Markdown("措施步骤 / steps"), steps, sizing_mode="stretch_width")),
        dynamic=False)
    tabs.param.watch(scenarios_once, "active")
    return pn.Column(pn.pane.Markdown("## 预测与情景 / Forecasts & scenarios"), pn.Row(enterprise, start, end),
                     message, tabs, sizing_mode="stretch_width")

