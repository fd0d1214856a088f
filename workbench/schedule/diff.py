"""What changed between two runs: inputs, figures and rows of their tabular outputs.

:func:`diff_runs` compares run A (before) with run B (after):

* **inputs** — the lake batches in scope that B read and A did not (a correction, a late bill),
  those A read and B did not, and changes of the meter register, boundary or enterprise record
  (from the runs' input manifests, :mod:`workbench.schedule.inputs`);
* **figures** — from each run's ledger (the output table with ``tco2e`` and ``source`` columns,
  ``ledger*.parquet`` first): total emissions Σ tco2e, by source Σ tco2e per ``source``, by
  facility Σ tco2e per ``facility`` (else ``node_id``), in tCO2e; each changed figure with
  before, after and delta = after − before;
* **rows** — every table of both output folders (Parquet, CSV, each sheet of an XLSX workbook)
  matched by file name (and sheet), rows matched by key: ``record_id`` when unique, else the
  first column when unique and not a float, else the non-float columns together, else the row
  number.  Rows added, removed, and changed cells (numbers with their delta).  A table whose
  changes equal an earlier table's (the XLSX ledger sheet and the Parquet ledger) says so instead
  of listing them again.

Numbers are equal when |after − before| ≤ 1e-9 · max(1, |before|).  :func:`to_markdown` and
:func:`to_html` write the result for people (headings in Chinese and English).
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "NOTE_NAMES",
    "FigureChange",
    "RunDiff",
    "TableDiff",
    "compare_tables",
    "diff_folders",
    "diff_runs",
    "figures",
    "read_tables",
    "to_html",
    "to_markdown",
]

#: file names of the notes the scheduler writes into a run's folder (never compared)
NOTE_NAMES = ("restatement.md", "restatement.html", "rerun.md", "rerun.html")
_SKIP_SUFFIX = (".ipynb", ".html", ".htm", ".md", ".png", ".svg", ".pdf", ".json", ".txt", ".log")
ROWS_KEPT = 200


@dataclass
class FigureChange:
    group: str          # total | source | facility
    key: str
    label: str
    before: float | None
    after: float | None
    unit: str = "tCO2e"

    @property
    def delta(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before


@dataclass
class RowChange:
    change: str         # added | removed | changed
    key: str
    column: str = ""
    before: object = None
    after: object = None
    delta: float | None = None


@dataclass
class TableDiff:
    table: str
    key: list
    added: int = 0
    removed: int = 0
    changed: int = 0
    rows: list = field(default_factory=list)
    columns_added: list = field(default_factory=list)
    columns_removed: list = field(default_factory=list)
    same_as: str = ""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.columns_added or self.columns_removed)

    def signature(self):
        return (tuple(sorted((r.change, r.key, r.column) for r in self.rows)), self.added, self.removed, self.changed)


@dataclass
class RunDiff:
    a: dict
    b: dict
    inputs_added: list = field(default_factory=list)
    inputs_removed: list = field(default_factory=list)
    master_changed: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    files_only_a: list = field(default_factory=list)
    files_only_b: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def inputs_changed(self) -> bool:
        return bool(self.a.get("input_hash") != self.b.get("input_hash"))

    @property
    def no_change(self) -> bool:
        return not self.figures and all(t.empty for t in self.tables) and not self.files_only_a \
            and not self.files_only_b

    def summary(self) -> str:
        """``no change`` or ``N figure(s) changed, M row(s) changed`` (rows of distinct tables)."""
        if self.no_change:
            return "no change"
        rows = sum(t.added + t.removed + t.changed for t in self.tables if not t.same_as)
        parts = [f"{len(self.figures)} figure(s) changed"] if self.figures else []
        if rows:
            parts.append(f"{rows} row(s) changed")
        if self.files_only_a or self.files_only_b:
            parts.append(f"{len(self.files_only_a) + len(self.files_only_b)} file(s) added or removed")
        return ", ".join(parts) or "tables changed"

    def to_dict(self) -> dict:
        return {"a": self.a.get("id"), "b": self.b.get("id"), "summary": self.summary(),
                "inputs_added": self.inputs_added, "inputs_removed": self.inputs_removed,
                "master_changed": self.master_changed,
                "figures": [{"group": f.group, "key": f.key, "label": f.label, "before": f.before, "after": f.after,
                             "delta": f.delta, "unit": f.unit} for f in self.figures],
                "tables": [{"table": t.table, "key": t.key, "added": t.added, "removed": t.removed,
                            "changed": t.changed, "same_as": t.same_as} for t in self.tables if not t.empty]}


# --------------------------------------------------------------------------------- reading
def read_tables(folder) -> dict[str, pd.DataFrame]:
    """Every table of a run's folder: ``name`` → DataFrame (``book.xlsx#sheet`` for sheets)."""
    out: dict[str, pd.DataFrame] = {}
    folder = Path(folder)
    if not folder.is_dir():
        return out
    for f in sorted(folder.rglob("*")):
        if not f.is_file() or f.name in NOTE_NAMES or f.suffix.lower() in _SKIP_SUFFIX:
            continue
        rel = f.relative_to(folder).as_posix()
        try:
            if f.suffix.lower() == ".parquet":
                out[rel] = pd.read_parquet(f)
            elif f.suffix.lower() == ".csv":
                out[rel] = pd.read_csv(f, encoding="utf-8-sig")
            elif f.suffix.lower() in (".xlsx", ".xlsm"):
                for sheet, df in pd.read_excel(f, sheet_name=None).items():
                    out[f"{rel}#{sheet}"] = df
        except Exception:  # noqa: BLE001,S112 - an output that is no readable table is compared by its hash only
            continue
    return out


def _source_names() -> dict:
    try:
        from workbench.regimes import default_regime

        r = default_regime()
        zh, en = r.source_names("zh"), r.source_names("en")
        return {k: f"{en.get(k, k)} {zh.get(k, '')}".strip() for k in zh}
    except Exception:  # noqa: BLE001 - labels only
        return {}


def _ledger(tables: dict) -> tuple[str, pd.DataFrame] | None:
    cands = [(n, t) for n, t in tables.items() if {"tco2e", "source"} <= set(t.columns)]
    if not cands:
        return None
    cands.sort(key=lambda nt: (("ledger" not in nt[0].lower()), not nt[0].endswith(".parquet"), nt[0]))
    return cands[0]


def figures(tables: dict) -> dict[tuple[str, str], float]:
    """(group, key) → tCO2e from the run's ledger: ``("total", "")``, ``("source", S)``,
    ``("facility", F)``; {} when the outputs hold no ledger."""
    found = _ledger(tables)
    if found is None:
        return {}
    _, led = found
    t = pd.to_numeric(led["tco2e"], errors="coerce").fillna(0.0)
    out = {("total", ""): float(t.sum())}
    for k, v in t.groupby(led["source"].astype(str)).sum().items():
        out[("source", str(k))] = float(v)
    fac = "facility" if "facility" in led else ("node_id" if "node_id" in led else None)
    if fac:
        for k, v in t.groupby(led[fac].fillna("").astype(str)).sum().items():
            out[("facility", str(k))] = float(v)
    return out


def _same_number(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return abs(b - a) <= 1e-9 * max(1.0, abs(a))


def _num(v) -> float | None:
    if isinstance(v, bool | np.bool_):
        return None
    if isinstance(v, int | float | np.integer | np.floating):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.replace(",", ""))
        except ValueError:
            return None
    return None


def _missing(v) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v)) if np.ndim(v) == 0 else False
    except (TypeError, ValueError):
        return False


def _same(a, b) -> tuple[bool, float | None]:
    """(equal, delta when both are numbers)."""
    if _missing(a) or (isinstance(a, str) and a == ""):
        a = None
    if _missing(b) or (isinstance(b, str) and b == ""):
        b = None
    if a is None or b is None:
        return a is None and b is None, None
    x, y = _num(a), _num(b)
    if x is not None and y is not None:
        return _same_number(x, y), y - x
    return str(a) == str(b), None


def _key(a: pd.DataFrame, b: pd.DataFrame) -> list:
    def unique(cols):
        return all(not df.duplicated(subset=cols).any() for df in (a, b)) and all(c in df for c in cols for df in (a, b))

    if "record_id" in a and "record_id" in b and unique(["record_id"]):
        return ["record_id"]
    if len(a.columns) and a.columns[0] in b and not pd.api.types.is_float_dtype(a[a.columns[0]]) \
            and unique([a.columns[0]]):
        return [a.columns[0]]
    cols = [c for c in a.columns if c in b and not pd.api.types.is_float_dtype(a[c])
            and not pd.api.types.is_float_dtype(b[c])]
    if cols and unique(cols):
        return cols
    return []


def _key_text(row, key) -> str:
    return " · ".join("" if _missing(row[k]) else str(row[k]) for k in key)


def compare_tables(name: str, a: pd.DataFrame, b: pd.DataFrame) -> TableDiff:
    """Rows added, removed and changed between table ``a`` (before) and ``b`` (after)."""
    key = _key(a, b)
    d = TableDiff(table=name, key=key or ["row number"])
    d.columns_added = [c for c in b.columns if c not in a.columns]
    d.columns_removed = [c for c in a.columns if c not in b.columns]
    common = [c for c in a.columns if c in b.columns and c not in key]
    if key:
        ka = {_key_text(r, key): r for _, r in a.iterrows()}
        kb = {_key_text(r, key): r for _, r in b.iterrows()}
    else:
        ka = {str(i + 1): r for i, (_, r) in enumerate(a.iterrows())}
        kb = {str(i + 1): r for i, (_, r) in enumerate(b.iterrows())}
    for k in kb:
        if k not in ka:
            d.added += 1
            if len(d.rows) < ROWS_KEPT:
                tco2e = kb[k].get("tco2e") if hasattr(kb[k], "get") else None
                d.rows.append(RowChange("added", k, "tco2e" if _num(tco2e) is not None else "", None,
                                        tco2e if _num(tco2e) is not None else None, _num(tco2e)))
    for k in ka:
        if k not in kb:
            d.removed += 1
            if len(d.rows) < ROWS_KEPT:
                tco2e = ka[k].get("tco2e") if hasattr(ka[k], "get") else None
                n = _num(tco2e)
                d.rows.append(RowChange("removed", k, "tco2e" if n is not None else "",
                                        tco2e if n is not None else None, None, -n if n is not None else None))
    for k, ra in ka.items():
        rb = kb.get(k)
        if rb is None:
            continue
        hit = False
        for c in common:
            same, delta = _same(ra[c], rb[c])
            if not same:
                hit = True
                if len(d.rows) < ROWS_KEPT:
                    d.rows.append(RowChange("changed", k, str(c), _plain(ra[c]), _plain(rb[c]), delta))
        d.changed += hit
    return d


def _plain(v):
    if _missing(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


# --------------------------------------------------------------------------------- comparing
def diff_folders(folder_a, folder_b, a: dict | None = None, b: dict | None = None) -> RunDiff:
    """Compare the outputs in two folders (``a``/``b``: the runs' records, for inputs and labels)."""
    a, b = dict(a or {}), dict(b or {})
    d = RunDiff(a=a, b=b)
    for which, folder in (("A", folder_a), ("B", folder_b)):
        if not folder or not Path(folder).is_dir():
            d.notes.append(f"the outputs of run {which} ({folder}) are no longer there")
    ta, tb = read_tables(folder_a) if folder_a else {}, read_tables(folder_b) if folder_b else {}
    # figures
    fa, fb = figures(ta), figures(tb)
    if not fa and not fb:
        d.notes.append("no ledger among the outputs (a table with tco2e and source columns): no figures compared")
    names = _source_names()
    order = {"total": 0, "source": 1, "facility": 2}
    for g, k in sorted(set(fa) | set(fb), key=lambda gk: (order[gk[0]], gk[1])):
        before, after = fa.get((g, k)), fb.get((g, k))
        if before is not None and after is not None and _same_number(before, after):
            continue
        label = {"total": "total 排放总量", "source": f"by source 分类: {names.get(k, k)}",
                 "facility": f"by facility 设施: {k}"}[g]
        d.figures.append(FigureChange(g, k, label, before, after))
    # tables
    seen: dict = {}
    ledger = (_ledger(tb) or _ledger(ta) or ("", None))[0]
    # the ledger first, then whole files (Parquet, CSV), then workbook sheets
    for name in sorted(set(ta) & set(tb), key=lambda n: (n != ledger, "#" in n, n)):
        td = compare_tables(name, ta[name], tb[name])
        if not td.empty:
            sig = td.signature()
            if sig in seen:
                td.same_as = seen[sig]
            else:
                seen[sig] = name
        d.tables.append(td)
    d.files_only_a = sorted(set(ta) - set(tb))
    d.files_only_b = sorted(set(tb) - set(ta))
    # inputs
    ma, mb = a.get("input_manifest") or {}, b.get("input_manifest") or {}
    la = {(x["table"], x["batch_id"]): x for x in ma.get("batches_listed", [])}
    lb = {(x["table"], x["batch_id"]): x for x in mb.get("batches_listed", [])}
    d.inputs_added = [lb[k] for k in sorted(set(lb) - set(la))]
    d.inputs_removed = [la[k] for k in sorted(set(la) - set(lb))]
    for k in sorted(set(la) & set(lb)):
        if la[k].get("rows") != lb[k].get("rows"):
            d.inputs_added.append({**lb[k], "note": f"rows in scope {la[k].get('rows')} → {lb[k].get('rows')}"})
    for k, what in (("meters", "meter register 计量器具"), ("boundary", "boundary 边界"),
                    ("enterprise", "enterprise record 企业信息")):
        if ma.get("master", {}).get(k) != mb.get("master", {}).get(k) and ma and mb:
            d.master_changed.append(what)
    return d


def diff_runs(a: dict, b: dict) -> RunDiff:
    """Compare run ``a`` (before) with run ``b`` (after): records of :class:`RunStore`."""
    return diff_folders(a.get("output_dir"), b.get("output_dir"), a, b)


# --------------------------------------------------------------------------------- writing
def _fmt(v, digits: int = 6) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int | float):
        return f"{v:,.{digits}f}"
    return str(v)


def _delta(v) -> str:
    if v is None:
        return "–"
    return f"{v:+,.6f}"


def _title(d: RunDiff) -> str:
    kind = d.b.get("kind") or ""
    if kind == "restatement":
        return "Restatement 重述"
    if kind == "rerun":
        return "Re-run 重新运行"
    return "Comparison 比较"


def _period(run: dict) -> str:
    p = run.get("parameters") or {}
    for a, b in (("period_start", "period_end"),):
        if p.get(a) or p.get(b):
            return p.get(a) if p.get(a) == p.get(b) else f"{p.get(a)} – {p.get(b)}"
    for k in ("period", "year"):
        if p.get(k):
            return str(p[k])
    return ""


def _md_cell(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(d: RunDiff, *, rows_per_table: int = 50) -> str:
    """The diff for people, in Markdown."""
    a, b = d.a, d.b
    lines = [f"# {_title(d)} — {b.get('schedule', '')} {_period(b)}".rstrip(), ""]
    lines.append(f"Run {b.get('id', 'B')} ({b.get('kind', '')}, {b.get('trigger', '')} by {b.get('triggered_by', '')}, "
                 f"{b.get('started_at', '')}) compared with run {a.get('id', 'A')} ({a.get('started_at', '')}).")
    lines.append("")
    lines.append(f"**Result 结论:** {d.summary()}.")
    lines.append("")
    lines += ["## Inputs 输入数据", ""]
    if d.inputs_changed:
        lines.append(f"Input hash 输入哈希 `{(a.get('input_hash') or '')[:12]}` → `{(b.get('input_hash') or '')[:12]}`: "
                     "the data were corrected 数据已更正.")
    else:
        lines.append(f"Input hash 输入哈希 unchanged 未变 (`{(b.get('input_hash') or '')[:12]}`).")
    lines.append("")
    if d.inputs_added or d.inputs_removed:
        lines += ["| | table 表 | batch 批次 | file 文件 | rows in scope 行数 | stored 入湖时间 |", "|---|---|---|---|---:|---|"]
        for sign, xs in (("+ new 新增", d.inputs_added), ("− gone 移除", d.inputs_removed)):
            for x in xs:
                lines.append(f"| {sign} | {x.get('table')} | `{x.get('batch_id')}` | {_md_cell(x.get('raw_name', ''))} | "
                             f"{x.get('rows')} | {x.get('stored_at', '')} |" + (f" {x['note']}" if x.get("note") else ""))
        lines.append("")
    if d.master_changed:
        lines += [f"Master data changed 主数据变化: {', '.join(d.master_changed)}.", ""]
    if a.get("code_version") != b.get("code_version"):
        lines += [f"Code version 代码版本: `{a.get('code_version')}` → `{b.get('code_version')}`.", ""]
    lines += ["## Changed figures 数字变化 (tCO2e)", ""]
    if d.figures:
        lines += ["| figure 项目 | before 原值 | after 新值 | delta 变化 |", "|---|---:|---:|---:|"]
        for f in d.figures:
            lines.append(f"| {_md_cell(f.label)} | {_fmt(f.before)} | {_fmt(f.after)} | {_delta(f.delta)} |")
    else:
        lines.append("No figure changed 数字无变化.")
    lines.append("")
    lines += ["## Changed rows 行变化", ""]
    changed = [t for t in d.tables if not t.empty]
    if not changed:
        lines += ["No row changed in any table 各表无变化.", ""]
    for t in changed:
        head = f"### {t.table}"
        lines += [head, ""]
        if t.same_as:
            lines += [f"The same changes as {t.same_as} 与其相同.", ""]
            continue
        lines.append(f"Key 键: {', '.join(map(str, t.key))} — {t.added} added 新增, {t.removed} removed 删除, "
                     f"{t.changed} changed 修改.")
        if t.columns_added or t.columns_removed:
            lines.append(f"Columns added 新列: {', '.join(map(str, t.columns_added)) or '–'}; "
                         f"removed 删除列: {', '.join(map(str, t.columns_removed)) or '–'}.")
        lines += ["", "| change 变化 | key 键 | column 列 | before 原值 | after 新值 | delta 变化 |",
                  "|---|---|---|---:|---:|---:|"]
        for r in t.rows[:rows_per_table]:
            lines.append(f"| {r.change} | {_md_cell(r.key)} | {_md_cell(r.column)} | {_md_cell(_fmt(r.before))} | "
                         f"{_md_cell(_fmt(r.after))} | {_delta(r.delta)} |")
        more = t.added + t.removed + t.changed - min(len(t.rows), rows_per_table)
        if more > 0:
            lines.append(f"| … | {more} more | | | | |")
        lines.append("")
    if d.files_only_a or d.files_only_b:
        lines += ["## Tables only in one run 仅一方有的表", ""]
        lines += [f"- only in run {a.get('id', 'A')}: {x}" for x in d.files_only_a]
        lines += [f"- only in run {b.get('id', 'B')}: {x}" for x in d.files_only_b]
        lines.append("")
    for n in d.notes:
        lines.append(f"Note 注: {n}")
    return "\n".join(lines).rstrip() + "\n"


def to_html(d: RunDiff, *, rows_per_table: int = 50) -> str:
    """The diff as a self-contained HTML page (the Markdown's content, tables as tables)."""
    md = to_markdown(d, rows_per_table=rows_per_table)
    out, table = [], []

    def flush():
        if not table:
            return
        head, *body = [r for r in table if not set(r.replace("|", "").strip()) <= set("-:")]
        cells = [c.strip() for c in head.strip().strip("|").split("|")]
        out.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in cells) + "</tr></thead><tbody>")
        for r in body:
            cells = [c.strip().replace("\\|", "|") for c in _split_row(r)]
            out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in cells) + "</tr>")
        out.append("</tbody></table>")
        table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("### "):
            out.append(f"<h3>{_inline(line[4:])}</h3>")
        elif line.startswith("## "):
            out.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.startswith("- "):
            out.append(f"<p>• {_inline(line[2:])}</p>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    flush()
    style = ("body{font-family:'Noto Sans CJK SC','Noto Sans',sans-serif;margin:2em;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
             "th{background:#f2f2f2}td:nth-last-child(-n+3){text-align:right;font-variant-numeric:tabular-nums}"
             "code{background:#f5f5f5}")
    title = html.escape(md.splitlines()[0].lstrip("# "))
    return (f"<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


def _split_row(r: str) -> list[str]:
    parts, cur, i = [], "", 0
    s = r.strip()[1:-1] if r.strip().endswith("|") else r.strip()[1:]
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] == "|":
            cur += "\\|"
            i += 2
            continue
        if s[i] == "|":
            parts.append(cur)
            cur = ""
        else:
            cur += s[i]
        i += 1
    parts.append(cur)
    return parts


def _inline(text: str) -> str:
    """Markdown's ``code`` and **bold** in escaped HTML."""
    import re

    t = html.escape(text)
    t = re.sub(r"`([^`]*)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]*)\*\*", r"<strong>\1</strong>", t)
