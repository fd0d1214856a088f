"""The import wizard for analysts (``notebooks/import.ipynb``): file → preview → mapping → ingest →
quality report, in ipywidgets, calling the same steps as ``workbench import``
(:func:`workbench.imports.import_file`).

Every control maps to one flag of the command (the kind, unit, register type, meter, period,
column meanings); *Preview* is ``--dry-run``, *Import* stores, *Save mapping* is
``--save-mapping``.  The wizard keeps the last outcome (:attr:`ImportWizard.outcome`) so a notebook
cell — or a test — can read the numbers the widgets show.
"""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from workbench.imports import ImportOutcome, import_file, load_mapping, save_mapping

__all__ = ["ImportWizard"]

_AUTO = "(detect)"


class ImportWizard:
    """An ipywidgets form over :func:`workbench.imports.import_file` for one lake (and enterprise)."""

    def __init__(self, lake, *, enterprise: str | None = None, path=None, sender: str | None = None):
        import ipywidgets as w

        self.lake = lake.for_enterprise(enterprise) if enterprise and enterprise != lake.enterprise else lake
        self.sender = sender
        self.outcome: ImportOutcome | None = None
        self.quality: dict | None = None
        self.error: str | None = None
        self.path = w.Text(value=str(path or ""), description="文件 File", layout=w.Layout(width="70%"))
        self.upload = w.FileUpload(description="上传 Upload", multiple=False)
        self.kind = w.Dropdown(options=[_AUTO, "readings", "activity", "statistics", "production", "invoice", "manual"],
                               value=_AUTO, description="类型 Kind")
        self.unit = w.Text(description="单位 Unit", placeholder="kWh, 万kWh, m3, t …")
        self.register = w.Dropdown(options=[_AUTO, "interval", "cumulative"], value=_AUTO, description="读数 Register")
        self.meter = w.Text(description="表计 Meter", placeholder="a file without a meter column")
        self.period = w.Text(description="期间 Period", placeholder="YYYY-MM")
        self.node = w.Text(description="节点 Node", placeholder="node of new meters")
        self.columns = w.Textarea(description="列 Columns", placeholder="读数=value\n备注=ignore",
                                  layout=w.Layout(width="70%", height="5em"))
        self.mapping = w.Text(description="映射 Mapping", placeholder="mapping YAML to replay or save",
                              layout=w.Layout(width="70%"))
        self.register_meters = w.Checkbox(description="登记新表计 Register new meters", value=False)
        self.preview_button = w.Button(description="预览 Preview", button_style="info", icon="eye")
        self.import_button = w.Button(description="导入 Import", button_style="success", icon="upload")
        self.save_button = w.Button(description="保存映射 Save mapping", icon="save")
        self.status = w.HTML()
        self.out = w.Output()
        self.preview_button.on_click(lambda _: self.preview())
        self.import_button.on_click(lambda _: self.ingest())
        self.save_button.on_click(lambda _: self.save_mapping())
        self.upload.observe(self._uploaded, names="value")
        self.widget = w.VBox([
            w.HTML("<h3>导入数据 · Import data</h3>"),
            w.HBox([self.path, self.upload]),
            w.HBox([self.kind, self.register]), w.HBox([self.unit, self.meter]), w.HBox([self.period, self.node]),
            self.columns, self.mapping, self.register_meters,
            w.HBox([self.preview_button, self.import_button, self.save_button]), self.status, self.out,
        ])

    def _ipython_display_(self):  # pragma: no cover - a front end shows the widget
        from IPython.display import display

        display(self.widget)

    # ------------------------------------------------------------------ the steps
    def hints(self) -> dict:
        """The form as the command's flags."""
        cols = {}
        for line in self.columns.value.splitlines():
            if "=" in line:
                h, m = line.rsplit("=", 1)
                cols[h.strip()] = "-" if m.strip() == "ignore" else m.strip()
        pick = (lambda v: None if v in ("", _AUTO) else v)
        return {"kind": pick(self.kind.value), "unit": pick(self.unit.value.strip()),
                "register": pick(self.register.value), "meter": pick(self.meter.value.strip()),
                "period": pick(self.period.value.strip()), "node": pick(self.node.value.strip()), "columns": cols}

    def _run(self, dry_run: bool) -> ImportOutcome | None:
        self.error = None
        path = Path(self.path.value.strip())
        try:
            replay = None
            m = self.mapping.value.strip()
            if m and Path(m).exists():
                replay = load_mapping(m)
            self.outcome = import_file(path, lake=self.lake, dry_run=dry_run, hints=self.hints(), mapping=replay,
                                       register_new_meters=self.register_meters.value, sender=self.sender)
        except Exception as exc:  # noqa: BLE001 - shown in the form, one line, as the CLI does
            from workbench.core.errors import WorkbenchError

            if not isinstance(exc, (WorkbenchError, ValueError, KeyError, OSError)):
                raise
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.status.value = f"<b style='color:#b00'>错误 Error:</b> {html.escape(self.error)}"
            return None
        self._show(self.outcome)
        return self.outcome

    def preview(self) -> ImportOutcome | None:
        """``--dry-run``: what would be stored and quarantined, and every guess."""
        return self._run(True)

    def ingest(self) -> ImportOutcome | None:
        """Store the file, then run the quality rules over the months it touched."""
        out = self._run(False)
        if out is not None and out.batch_id and out.status == "stored":
            self.quality = self._quality(out)
        return out

    def save_mapping(self) -> str | None:
        if self.outcome is None or not self.mapping.value.strip():
            self.status.value = "先预览，并填写映射文件名 · preview first and name the mapping file"
            return None
        where = save_mapping(self.outcome.plan, self.mapping.value.strip())
        self.status.value = f"映射已保存 · mapping saved: {html.escape(where)}"
        return where

    def _quality(self, out: ImportOutcome) -> dict | None:
        if out.plan.kind != "readings" or "readings" not in self.lake.tables():
            return None
        from workbench.reports.quality import quality_report

        months = self.lake.sql(f"SELECT min(ts) AS a, max(ts) AS b FROM readings WHERE batch_id = '{out.batch_id}'")
        a, b = months["a"].iat[0], months["b"].iat[0]
        if pd.isna(a):
            return None
        period = f"{pd.Timestamp(a):%Y-%m-%d}..{pd.Timestamp(b) + pd.Timedelta(days=1):%Y-%m-%d}"
        out_dir = Path(self.lake.root) / "reports" / f"quality-{out.batch_id}"
        res = quality_report(self.lake, self.lake.get_state("quality_rules"), period=period, out=out_dir)
        with self.out:
            s = res["summary"]
            from IPython.display import HTML, display

            display(HTML(f"<h4>数据质量 · Data quality</h4><p>{html.escape(str({k: v for k, v in s.items() if not isinstance(v, (list, dict))}))}</p>"
                         f"<p>report: {html.escape(str(res['html']))}</p>"))
        return res

    # ------------------------------------------------------------------ showing
    def _show(self, out: ImportOutcome) -> None:
        from IPython.display import HTML, display

        p = out.plan
        verb = ("预览（未存储）· Preview — nothing stored" if out.dry_run else f"已导入 · Imported: batch {out.batch_id}")
        self.status.value = (f"<b>{html.escape(verb)}</b> — {html.escape(p.kind)}, {html.escape(str(p.encoding or ''))}, "
                             f"{out.rows:,} rows; {'would store' if out.dry_run else 'stored'} {out.stored:,}, "
                             f"{'would quarantine' if out.dry_run else 'quarantined'} {out.quarantined:,}")
        self.out.clear_output()
        with self.out:
            guesses = pd.DataFrame([g.to_dict() for g in p.guesses])
            if len(guesses):
                display(HTML("<h4>判断 · Guesses (override with the flag)</h4>"))
                display(guesses[["what", "value", "why", "flag", "given"]])
            for warn in p.warnings:
                display(HTML(f"<p style='color:#b60'>⚠ {html.escape(warn)}</p>"))
            if len(out.first_rows):
                display(HTML("<h4>前几行 · First rows as stored</h4>"))
                display(out.first_rows.drop(columns=[c for c in ("batch_id", "enterprise_id") if c in out.first_rows]))
            if out.totals:
                display(HTML("<h4>合计 · Totals (normalised units)</h4>"))
                t = pd.DataFrame(out.totals)
                display(t)
                self._plot(t)
            if out.quarantined:
                display(HTML(f"<h4>隔离 · Quarantined ({out.quarantined:,})</h4>"))
                display(out.quarantine[[c for c in ("row", "column", "reason") if c in out.quarantine]].head(20))
            if len(out.proposed_meters):
                display(HTML("<h4>新表计 · Meters not in the register</h4>"))
                display(out.proposed_meters)

    @staticmethod
    def _plot(t: pd.DataFrame) -> None:
        import matplotlib.pyplot as plt

        from workbench.reports.quality import _setup_font

        _setup_font()      # meter and item names are Chinese
        key = "meter" if "meter" in t else "item"
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(t) + 1))
        ax.barh(t[key].astype(str), t["quantity"])
        units = sorted(set(t["unit"]))
        ax.set_xlabel(", ".join(units))
        ax.invert_yaxis()
        fig.tight_layout()
        plt.show()

    def _uploaded(self, change) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
        name = Path(f["name"]).name
        target = Path(self.lake.root) / "uploads" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(f["content"]))
        self.path.value = str(target)
