"""Manual entry (seed §7.2 e): activity data that cannot be collected automatically.

Two ways in, one validation path (:func:`workbench.core.activity.normalize_activity`, the same as for
templates, ledgers and every other connector):

* :class:`ManualEntryForm` — an ipywidgets form for JupyterLab and Voila (no custom JavaScript):
  来源/品种 drop-downs labelled in Chinese from the factor library, 数量, 单位, 期间, 设施, 凭证 and
  录入人.  On submit the record is validated; a problem is shown in the form with the field named
  as in :class:`workbench.core.activity.ActivityDataError` (file/row/column) and nothing is sent; a good
  record goes to ``ingest(ConnectorResult(kind="activity", raw=<the submitted form as JSON>,
  metadata={"sender": <录入人>, …}))``.
* :func:`read_manual_file` — a CSV/XLSX of manually kept records (for ``workbench import manual
  FILE``).
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from workbench.core.activity import (
    CATEGORY_UNITS,
    SOURCE_ALIASES,
    SOURCE_CATEGORIES,
    ActivityDataError,
    Problem,
    normalize_activity,
)
from workbench.core.factors import default_library

from . import ConnectorResult

__all__ = ["FORM_FIELDS", "SOURCE_LABELS", "ManualEntryForm", "read", "read_manual_file"]

name = "manual"
ORIGIN = "manual entry form"

#: source code → Chinese label (the first alias of workbench.core.activity.SOURCE_ALIASES)
SOURCE_LABELS = {code: names[0] for code, names in SOURCE_ALIASES.items()}

#: form field → header of the record as validated (these are workbench.core.activity header aliases,
#: so a validation message names the field exactly as the form labels it)
FORM_FIELDS = {
    "source": "来源",
    "item": "品种",
    "quantity": "数量",
    "unit": "单位",
    "period": "期间",
    "facility": "设施",
    "document": "凭证",
    "data_tier": "数据级别",
    "record_id": "记录编号",
}
WHO_LABEL = "录入人"

#: unit suggestions per item category (free text is accepted; the validator decides)
UNIT_CHOICES = {
    "fuel": ["t", "吨", "kg"],
    "gas_fuel": ["万Nm3", "Nm3", "GJ"],
    "carbonate": ["t", "吨"],
    "gas": ["t", "kg"],
    "electricity": ["MWh", "kWh", "万kWh"],
    "heat": ["GJ", "百万千焦", "MJ"],
}

_WHO_COLUMNS = ("录入人", "填报人", "填表人", "记录人", "who", "entered_by", "sender")


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


class ManualEntryForm:
    """An ipywidgets form for one activity record at a time.

    ``ingest`` is called with a :class:`ConnectorResult` for every valid submission (normally
    ``workbench.ingestion.ingest``); ``facilities`` (names or codes) fill the 设施 suggestions; ``who`` pre-fills
    录入人.  Display it with ``display(form)`` or put ``form.widget`` into a layout.  Without a
    browser: set ``form.<field>.value`` and call :meth:`submit`.
    """

    def __init__(self, ingest: Callable[[ConnectorResult], object], library=None, *,
                 facilities: list[str] | None = None, who: str = "", source: str = "manual-entry"):
        import ipywidgets as w

        self.ingest = ingest
        self.library = library or default_library()
        self.source_name = source
        self.submitted: list[str] = []  # record ids sent
        items = self.library.items
        self._items = items
        self._category = dict(zip(items["item"], items["category"]))
        self._default_unit = dict(zip(items["item"], items["default_unit"]))
        def lay():  # one Layout per widget: the error border marks one field only
            return w.Layout(width="420px")

        style = {"description_width": "72px"}
        self.source = w.Dropdown(options=[(f"{lab}（{code}）", code) for code, lab in SOURCE_LABELS.items()],
                                 value="combustion", description=FORM_FIELDS["source"], layout=lay(), style=style)
        self.item = w.Dropdown(options=[], description=FORM_FIELDS["item"], layout=lay(), style=style)
        self.quantity = w.Text(value="", placeholder="例如 120.5", description=FORM_FIELDS["quantity"],
                               layout=lay(), style=style)
        self.unit = w.Combobox(options=[], value="", placeholder="t / 万Nm3 / MWh / GJ …", ensure_option=False,
                               description=FORM_FIELDS["unit"], layout=lay(), style=style)
        self.period = w.Text(value="", placeholder="YYYY-MM，例如 2025-03", description=FORM_FIELDS["period"],
                             layout=lay(), style=style)
        self.facility = w.Combobox(options=list(facilities or []), value="", ensure_option=False,
                                   placeholder="设施/车间名称或节点编号", description=FORM_FIELDS["facility"],
                                   layout=lay(), style=style)
        self.document = w.Text(value="", placeholder="凭证：发票号、台账页、抄表单 …", description=FORM_FIELDS["document"],
                               layout=lay(), style=style)
        self.data_tier = w.Dropdown(options=[("一级 实测 primary", "primary"), ("二级 secondary", "secondary"),
                                             ("替代/估算 proxy", "proxy")], value="primary",
                                    description=FORM_FIELDS["data_tier"], layout=lay(), style=style)
        self.who = w.Text(value=who, placeholder="姓名", description=WHO_LABEL, layout=lay(), style=style)
        self.button = w.Button(description="提交 Submit", button_style="primary", icon="check")
        self.status = w.HTML(value="")
        self._fields = {"source": self.source, "item": self.item, "quantity": self.quantity, "unit": self.unit,
                        "period": self.period, "facility": self.facility, "document": self.document,
                        "data_tier": self.data_tier, "who": self.who}
        self.source.observe(self._on_source, names="value")
        self.item.observe(self._on_item, names="value")
        self.button.on_click(self._on_submit)
        self._on_source({"new": self.source.value})
        self.widget = w.VBox([w.HTML("<b>手工录入活动数据 Manual activity entry</b>"), self.source, self.item,
                              self.quantity, self.unit, self.period, self.facility, self.document, self.data_tier,
                              self.who, self.button, self.status])

    # ------------------------------------------------------------------ display
    def _ipython_display_(self):  # pragma: no cover - needs a kernel
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs):  # pragma: no cover - needs a kernel
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ choices
    def item_options(self, source: str) -> list[tuple[str, str]]:
        """(Chinese label, item code) of the factor-library items reportable under ``source``."""
        cats = SOURCE_CATEGORIES.get(source, set())
        sub = self._items[self._items["category"].isin(cats)]
        return [(f"{r.name_zh}（{r.item}）", r.item) for r in sub.itertuples()]

    def unit_options(self, item: str | None) -> list[str]:
        cat = self._category.get(item)
        if cat is None:
            return []
        default = str(self._default_unit.get(item) or "")
        key = "gas_fuel" if cat == "fuel" and "Nm3" in default else cat
        opts = list(UNIT_CHOICES.get(key, [])) or list(CATEGORY_UNITS.get(cat, ()))
        return opts

    def _on_source(self, change):
        opts = self.item_options(change["new"])
        self.item.options = opts
        self.item.value = opts[0][1] if opts else None

    def _on_item(self, change):
        opts = self.unit_options(change["new"])
        self.unit.options = opts
        self.unit.value = opts[0] if opts else ""

    # ------------------------------------------------------------------ submit
    def values(self) -> dict:
        """The form as entered (field → text), as it will be stored in the raw zone."""
        return {k: ("" if wdg.value is None else str(wdg.value)) for k, wdg in self._fields.items()}

    def _show(self, ok: bool, text: str):
        color = "#1e7e34" if ok else "#c82333"
        self.status.value = f'<div style="color:{color};white-space:pre-wrap">{html.escape(text)}</div>'

    def _mark(self, field_names: set[str]):
        for k, wdg in self._fields.items():
            wdg.layout.border = "2px solid #c82333" if k in field_names else ""

    def _on_submit(self, _button=None):
        self.submit()

    def submit(self) -> ConnectorResult | None:
        """Validate the form and send it; returns the result sent, or ``None`` (error shown)."""
        vals = self.values()
        self._mark(set())
        if not vals["who"].strip():
            self._show(False, f"{ORIGIN}, column '{WHO_LABEL}': 请填写录入人 (who entered the record is required)")
            self._mark({"who"})
            return None
        now = _now()
        record_id = f"manual-{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"
        row = {FORM_FIELDS[k]: vals[k] for k in ("source", "item", "quantity", "unit", "period", "facility",
                                                "document", "data_tier")}
        row[FORM_FIELDS["record_id"]] = record_id
        try:
            data = normalize_activity(pd.DataFrame([row]), origin=ORIGIN, library=self.library, first_row=1)
        except ActivityDataError as exc:
            self._show(False, "\n".join(str(p) for p in exc.problems))
            back = {v: k for k, v in FORM_FIELDS.items()}
            self._mark({back.get(p.column, p.column) for p in exc.problems})
            return None
        who = vals["who"].strip()
        payload = {"form": "workbench.manual_entry", "version": 1, "submitted_at": now.isoformat(timespec="seconds"),
                   "who": who, "record_id": record_id, "fields": {k: vals[k] for k in vals if k != "who"}}
        raw = json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8")
        meta = {"connector": name, "source": self.source_name, "origin": ORIGIN, "sender": who,
                "entered_at": payload["submitted_at"], "record_id": record_id,
                "rejected": pd.DataFrame(columns=["row", "column", "reason", "payload", "origin"]), "records": 1}
        result = ConnectorResult(data, meta, kind="activity", raw=raw, raw_name=f"{record_id}.json")
        try:
            self.ingest(result)
        except Exception as exc:  # noqa: BLE001 - show what the destination said, keep the form filled
            self._show(False, f"未保存 not saved: {type(exc).__name__}: {exc}")
            return None
        self.submitted.append(record_id)
        r = data.iloc[0]
        self._show(True, f"已提交 saved {record_id}: {SOURCE_LABELS.get(r['source'], r['source'])} "
                         f"{r['item']} {r['quantity']:g} {r['unit']} {r['period'] or ''}".rstrip())
        self.quantity.value = ""
        self.document.value = ""
        return result


# ------------------------------------------------------------------------------ files
def _who_values(path: Path) -> list[str]:
    """Distinct values of a 录入人/填报人/who column, if the file has one."""
    from .files import (
        _clean_header,
        _decode,
        _parse_csv_text,
        _sniff_delimiter,
        read_xlsx_tables,
    )

    names = {_clean_header(c).lower() for c in _WHO_COLUMNS}
    vals: list[str] = []
    if path.suffix.lower() in (".csv", ".txt"):
        raw = path.read_bytes()
        delim = _sniff_delimiter(raw[:4096].split(b"\n", 1)[0].decode("latin-1"))
        dec = _decode(raw, str(path), None, delim)
        parsed = _parse_csv_text(dec.text, str(path), delim, dec.text.endswith("\n"))
        for i, h in enumerate(parsed.header):
            if h.lower() in names:
                vals = [rec[i].strip() for rec in parsed.records if rec[i].strip()]
    else:
        for t in read_xlsx_tables(path):
            for c in t.data.columns:
                if str(c).lower() in names:
                    vals += [str(v).strip() for v in t.data[c] if v is not None and str(v).strip()]
    return list(dict.fromkeys(vals))


def read_manual_file(path, *, library=None, sender: str | None = None, strict: bool = True,
                     sheet=None) -> ConnectorResult:
    """A CSV/XLSX of manually kept activity records (the calc-template columns), validated by
    :func:`workbench.core.activity.normalize_activity`.

    ``strict=True`` (for ``workbench import manual FILE``): any bad record raises
    :class:`ActivityDataError` listing every problem (file, row, column) and nothing is returned —
    the person who keeps the file fixes it.  ``strict=False``: good records in ``data``, the rest
    in ``metadata["rejected"]`` as the other file connectors do.  ``sender`` (who is accountable)
    defaults to the values of a 录入人/填报人/who column.
    """
    from .files import FileFormatError, read_csv, read_xlsx

    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            res = read_csv(path, kind="activity", library=library, source="manual-file")
        elif suffix in (".xlsx", ".xlsm"):
            res = read_xlsx(path, kind="activity", library=library, source="manual-file", sheet=sheet)
        else:
            raise ActivityDataError([Problem(str(path), None, None,
                                             f"unsupported file type '{suffix}' (use CSV or XLSX)")])
    except FileFormatError as exc:
        raise ActivityDataError([Problem(exc.file, exc.row, exc.column, exc.message)]) from None
    rej = res.metadata.get("rejected")
    if strict and rej is not None and len(rej):
        raise ActivityDataError([Problem(o if o else str(path), int(r), c, why)
                                 for r, c, why, o in zip(rej["row"], rej["column"], rej["reason"], rej["origin"])])
    res.metadata["connector"] = name
    who = [sender] if sender else _who_values(path)
    res.metadata["sender"] = ", ".join(who) if who else None
    if not who:
        res.metadata.setdefault("warnings", []).append(
            "no sender: pass sender= or keep a 录入人 column — manual data needs someone accountable")
    return res


#: the connector protocol (``workbench.connectors`` entry point ``manual``)
read = read_manual_file
