"""The certification review page (issue 14, point 7; seed §9.4): pending enterprise carbon-efficiency
grades and product carbon labels, each with its evidence — the activity data (ledger rows), the
factors (ids, values, sources), a data-quality score and the verification status — and approve or
reject with a comment.

**Where the items come from**: grades from the certification store
(:class:`workbench.grading.certificates.GradeCertificates`, ``workbench grade … --submit``), labels
from the label store (:class:`workbench.products.store.LabelStore`, ``workbench product label``).
``workbench apps serve --certification-db URL --labels-db URL`` gives them to the page.

**Who sees and who decides** (checked here, where the stores are read and written, not only by
hiding widgets): the queue holds the items of the enterprises granted to the user — the stores are
asked for those enterprises only (``*``: all), and ``?enterprise=`` of one not granted is refused
and logged.  Only the ``reviewer`` role has ``review`` (separation of duties,
:mod:`workbench.apps.auth`): other roles see the queue read-only, the buttons disabled.
:func:`decide` is the one way a decision is made: it reads the item's enterprise from its store and
calls ``Principal.act("review", enterprise, detail)`` — a refusal (wrong role, enterprise not
granted) is logged and changes nothing, whatever the browser sends; an accepted decision is logged
in the users' audit and stored with user, time and comment in the item's store (its events table).
A rejection needs a comment.

**Publication**: an approved label is published to the identifier node at once
(:func:`workbench.products.store.publish`) when the server was given one (``--idnode URL``, the
credentials from the environment: a bearer token, or a user's password — never on the command line);
the page shows the identifier and its resolution URL.  A label approved while the node could not be
reached stays ``approved`` and is published with the "publish approved" button later.

**Data-quality score**: :func:`workbench.grading.certificates.grade_quality` (fixed when the grade
was submitted) and :func:`~workbench.grading.certificates.label_quality` (from the label's evidence)
— 100 × the mean of five checks, each shown with its value.

**Verification status**: the latest check of the enterprise's verification package for the item's
year, as recorded in the certification store (``verification_checks``) — "not verified" when none.
A reviewer records one by uploading the package (the ZIP of ``workbench verify export``) on the
page: :func:`check_uploaded_package` runs :func:`workbench.verification.check_package` on it (the
key inside the package: not pinned, said in the status) and records the result.  The verification
package itself keeps no record of checks; this is where they are kept.
"""
from __future__ import annotations

import hashlib
import html
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from workbench.apps.auth import ALL, AccessDenied
from workbench.core.errors import WorkbenchError

__all__ = ["DECISIONS", "IdNodeAccess", "ReviewError", "ReviewItem", "check_uploaded_package", "decide", "decided_items",
           "page", "publish_label", "queue", "scope_of"]

DECISIONS = ("approve", "reject")
#: the largest verification package the page accepts (bytes)
MAX_PACKAGE = 200 * 1024 * 1024


class ReviewError(WorkbenchError, ValueError):
    """A decision that cannot be made as asked (unknown item, not pending, no reason for a rejection)."""


@dataclass(frozen=True)
class IdNodeAccess:
    """Where approved labels are published: the identifier node's URL and how the apps log in —
    ``token`` (a service token, ``workbench idnode token issue``) or ``username`` and ``password``
    (an ``INDEX:PREFIX/SUFFIX`` identity that may write the prefix).  The secret is never shown."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def client(self):
        from workbench.identifiers.client import Client

        if self.token:
            return Client(self.url, token=self.token)
        return Client(self.url, username=self.username, password=self.password)


@dataclass
class ReviewItem:
    """A grade or a label as the page lists it."""

    kind: str                       # "grade" | "label"
    item_id: str
    enterprise_id: str
    subject: str                    # what is certified, in one line
    period: str
    year: int
    status: str
    submitted_by: str
    submitted_at: str
    decided_by: str
    decided_at: str
    comment: str
    quality: dict
    evidence: dict
    identifier: str = ""
    published_to: str = ""
    brief: str = ""                 # the subject in a few words, for the item list

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.item_id}"


def scope_of(principal):
    """The enterprises whose items ``principal`` may read: ``None`` for every enterprise (granted
    ``*``), else the granted ids (possibly empty); ``[]`` for a role that may not read."""
    if not principal.may("read"):
        return []
    return None if ALL in principal.enterprises else sorted(principal.enterprises)


def _grade_item(c) -> ReviewItem:
    from workbench.grading.certificates import grade_quality

    ev = c.evidence or {}
    lvl = {"low": "低碳 low", "medium": "中碳 medium", "high": "高碳 high"}.get(c.level, c.level)
    sub = (f"碳效等级 / grade {c.grade} · L {_f(c.l, 4)} tCO2/万元 ({lvl}) · K {_f(c.k, 4)} · "
           f"benchmark L {_f(c.benchmark_l, 4)} · {c.scheme}")
    return ReviewItem("grade", c.certificate_id, c.enterprise_id, sub, c.period, c.year, c.status, c.created_by,
                      c.created_at, c.decided_by, c.decided_at, c.comment,
                      ev.get("quality") or (grade_quality(ev) if ev else {"score": c.quality, "checks": []}), ev,
                      brief=f"{c.name_zh} 等级 / grade {c.grade}")


def _label_item(lab, *, evidence: bool = True) -> ReviewItem:
    from workbench.grading.certificates import label_quality, period_year

    ev = lab.evidence or {}
    sub = (f"产品碳标识 / label {lab.name_zh} {lab.name_en}{' batch ' + lab.batch_id if lab.batch_id else ''} · "
           f"{_f(lab.kgco2e_per_unit, 2)} kgCO2e/{lab.declared_unit} · {lab.identifier}")
    q = label_quality(ev, lab.period) if evidence and ev else {"score": None, "checks": []}
    return ReviewItem("label", lab.label_id, lab.enterprise_id, sub, lab.period, period_year(lab.period), lab.status,
                      lab.created_by, lab.created_at, lab.decided_by, lab.decided_at, lab.comment, q, ev,
                      lab.identifier, lab.published_to,
                      brief=f"{lab.name_zh} {lab.name_en}{' ' + lab.batch_id if lab.batch_id else ''} "
                            f"{_f(lab.kgco2e_per_unit, 2)} kgCO2e/{lab.declared_unit}")


def queue(principal, *, labels=None, certificates=None, enterprise: str | None = None) -> list[ReviewItem]:
    """The pending items ``principal`` may read, with their evidence: the stores are asked for the
    granted enterprises only (or ``enterprise``, checked first — refused and logged when not
    granted).  Grades first, then labels, oldest first."""
    scope = _scope(principal, enterprise)
    if scope == []:
        return []
    items = []
    if certificates is not None:
        items += [_grade_item(c) for c in certificates.pending(enterprise=scope)]
    if labels is not None:
        items += [_label_item(lab) for lab in labels.pending(enterprise=scope)]
    return sorted(items, key=lambda i: (i.kind != "grade", i.submitted_at, i.item_id))


def decided_items(principal, *, labels=None, certificates=None, enterprise: str | None = None,
                  limit: int = 200) -> list[ReviewItem]:
    """The items already decided (approved, rejected, published) of the enterprises ``principal``
    may read, newest decision first (without evidence)."""
    scope = _scope(principal, enterprise)
    if scope == []:
        return []
    items = []
    if certificates is not None:
        items += [_grade_item(c) for c in certificates.list(enterprise=scope) if c.status != "pending"]
    if labels is not None:
        items += [_label_item(lab, evidence=False) for lab in labels.list(enterprise=scope) if lab.status != "pending"]
    return sorted(items, key=lambda i: (i.decided_at, i.item_id), reverse=True)[:limit]


def _scope(principal, enterprise):
    if enterprise:
        principal.require("read", enterprise)
        return [enterprise]
    return scope_of(principal)


def _item(kind: str, item_id: str, labels, certificates):
    """(the stored object, its enterprise) — read to learn whose it is, never returned to a caller
    who may not read it."""
    if kind == "grade":
        from workbench.grading.certificates import CertificationError

        if certificates is None:
            raise ReviewError("no certification store configured (workbench apps serve --certification-db)")
        try:
            obj = certificates.get(item_id)
        except CertificationError:
            raise ReviewError(f"no grade {item_id!r} to review") from None
        return obj, obj.enterprise_id
    if kind == "label":
        from workbench.products.errors import LabelError

        if labels is None:
            raise ReviewError("no label store configured (workbench apps serve --labels-db)")
        try:
            obj = labels.get(item_id)
        except LabelError:
            raise ReviewError(f"no label {item_id!r} to review") from None
        return obj, obj.enterprise_id
    raise ReviewError(f"kind {kind!r}: grade or label")


def decide(principal, kind: str, item_id: str, decision: str, comment: str = "", *, labels=None,
           certificates=None, idnode: IdNodeAccess | None = None) -> dict:
    """Approve or reject a pending grade (``kind="grade"``) or label (``"label"``) as ``principal``.

    The item's enterprise is read from its store and the decision checked there:
    ``principal.act("review", enterprise, detail)`` raises :class:`~workbench.apps.auth.AccessDenied`
    (logged) for a role without ``review`` or an enterprise not granted, and logs the decision
    otherwise; the store keeps it with the user, the time and the comment.  A rejection needs a
    comment.  An approved label is then published to ``idnode`` (when given): its identifier and
    resolution URL are returned.  Returns ``{"kind", "item_id", "enterprise_id", "status",
    "identifier", "resolution_url", "message"}``."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision {decision!r}: approve or reject")
    comment = (comment or "").strip()
    obj, enterprise = _item(kind, item_id, labels, certificates)
    principal.require("review", enterprise)                 # a refusal is logged and raises
    if obj.status != "pending":
        raise ReviewError(f"{kind} {item_id} is {obj.status}, not pending")
    if decision == "reject" and not comment:
        raise ReviewError("驳回需要说明理由 / a rejection needs a comment saying why")
    what = (f"grade {obj.grade} {obj.period} ({obj.scheme})" if kind == "grade"
            else f"label {obj.identifier} {obj.period}")
    principal.act("review", enterprise, f"{decision} {kind} {item_id}: {what}" + (f" — {comment}" if comment else ""))
    store = certificates if kind == "grade" else labels
    done = (store.approve(item_id, who=principal.name, comment=comment) if decision == "approve"
            else store.reject(item_id, who=principal.name, comment=comment))
    out = {"kind": kind, "item_id": item_id, "enterprise_id": enterprise, "status": done.status, "identifier": "",
           "resolution_url": "", "message": f"{kind} {item_id}: {done.status} by {principal.name}"}
    if kind == "label" and decision == "approve":
        out.update(publish_label(principal, labels, idnode, item_id))
    return out


def publish_label(principal, labels, idnode: IdNodeAccess | None, label_id: str) -> dict:
    """Publish an approved label to the identifier node (a reviewer of its enterprise; checked and
    audited as ``review``).  Without a node, or when it cannot be reached, the label stays
    ``approved`` and the message says why."""
    from workbench.identifiers.client import ClientError
    from workbench.products.errors import LabelError
    from workbench.products.label import resolution_url
    from workbench.products.store import publish

    lab, enterprise = _item("label", label_id, labels, None)
    principal.require("review", enterprise)
    if idnode is None:
        return {"status": lab.status, "message": f"label {label_id}: {lab.status}; not published — no identifier "
                                                 "node configured (workbench apps serve --idnode URL)"}
    try:
        with idnode.client() as c:
            ident = publish(label_id, c, store=labels, who=principal.name)
    except (ClientError, LabelError) as exc:
        return {"status": labels.get(label_id).status,
                "message": f"label {label_id}: approved, not published — {exc}"}
    url = resolution_url(idnode.url, ident)
    principal.act("review", enterprise, f"publish label {label_id}: {ident} at {idnode.url}")
    return {"status": "published", "identifier": ident, "resolution_url": url,
            "message": f"label {label_id}: published as {ident} — {url}"}


def check_uploaded_package(principal, certificates, data: bytes, filename: str = "package.zip") -> dict:
    """Check a verification package (bytes of the ZIP) with :func:`workbench.verification.check_package`
    and record the result in the certification store — by a reviewer of the enterprise the package
    names (checked and audited as ``review``).  Returns the recorded row with ``status``
    (:meth:`~workbench.grading.certificates.GradeCertificates.verification_status`)."""
    from workbench.verification import VerificationError, check_package

    if certificates is None:
        raise ReviewError("no certification store configured (workbench apps serve --certification-db)")
    principal.require("review")
    if not data:
        raise ReviewError("no file uploaded")
    if len(data) > MAX_PACKAGE:
        raise ReviewError(f"{filename}: larger than {MAX_PACKAGE // 2**20} MB")
    digest = hashlib.sha256(data).hexdigest()
    with tempfile.TemporaryDirectory(prefix="wb-review-") as tmp:
        path = Path(tmp) / "package.zip"
        path.write_bytes(data)
        try:
            res = check_package(path)
        except VerificationError as exc:
            raise ReviewError(f"{filename}: {str(exc).replace(str(path), filename)}") from None
    d = res.to_dict()
    d["path"] = filename
    ent, year = d.get("enterprise"), d.get("year")
    if not ent or year is None:
        raise ReviewError(f"{filename}: the manifest names no enterprise and year")
    principal.act("review", ent, f"verification package {filename} sha256:{digest} {year}: "
                                 f"{'ok' if res.ok else f'FAILED ({len(res.problems)} problems)'}")
    row = certificates.record_check(d, who=principal.name, package=filename, package_sha256=digest)
    row["status"] = certificates.verification_status(ent, int(year))
    return row


# ------------------------------------------------------------------------------ tables for the page
def _f(x, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(v) else f"{v:,.{digits}f}"


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def queue_table(items: list[ReviewItem], verification: dict) -> pd.DataFrame:
    cols = ["kind", "enterprise_id", "period", "subject", "quality", "verification", "submitted_by", "submitted_at",
            "id"]
    return pd.DataFrame([{"kind": "碳效等级 grade" if i.kind == "grade" else "产品标识 label",
                          "enterprise_id": i.enterprise_id, "period": i.period, "subject": i.subject,
                          "quality": (i.quality or {}).get("score"),
                          "verification": verification.get((i.enterprise_id, i.year), {}).get("state", "-"),
                          "submitted_by": i.submitted_by, "submitted_at": i.submitted_at, "id": i.item_id}
                         for i in items], columns=cols)


def decided_table(items: list[ReviewItem], node_url: str = "") -> pd.DataFrame:
    from workbench.products.label import resolution_url

    cols = ["kind", "enterprise_id", "period", "status", "decided_by", "decided_at", "comment", "identifier",
            "resolution_url", "subject", "id"]
    rows = []
    for i in items:
        url = ""
        if i.kind == "label" and i.status == "published":
            base = i.published_to if str(i.published_to).startswith("http") else node_url
            url = resolution_url(base, i.identifier) if base else ""
        rows.append({"kind": i.kind, "enterprise_id": i.enterprise_id, "period": i.period, "status": i.status,
                     "decided_by": i.decided_by, "decided_at": i.decided_at, "comment": i.comment,
                     "identifier": i.identifier if i.kind == "label" else "", "resolution_url": url,
                     "subject": i.subject, "id": i.item_id})
    return pd.DataFrame(rows, columns=cols)


def activity_table(item: ReviewItem) -> pd.DataFrame:
    """The activity data behind the item: a grade's energy records (and own zero-carbon power
    deducted), a label's ledger rows."""
    ev = item.evidence or {}
    if item.kind == "grade":
        cols = ["record_id", "period", "source", "item", "quantity", "unit", "emission_factor", "ef_unit",
                "emission_factor_id", "tco2e", "document", "notes"]
        rows = [{"role": "energy", **r} for r in ev.get("energy", [])]
        rows += [{"role": "zero-carbon deducted", **r} for r in ev.get("zero_carbon", [])]
        return pd.DataFrame(rows).reindex(columns=["role", *cols]) if rows else pd.DataFrame(columns=["role", *cols])
    cols = ["record_id", "period", "facility", "classification", "source", "item", "quantity", "unit", "tco2e",
            "data_tier", "document", "lake_batch", "raw_sha256", "factor_ids"]
    rows = ev.get("ledger", [])
    return pd.DataFrame(rows).reindex(columns=cols) if rows else pd.DataFrame(columns=cols)


def factor_table(item: ReviewItem) -> pd.DataFrame:
    """The factors the item's figures used: id, kind, item, value, unit, source (document, table,
    year, region), verified."""
    cols = ["factor_id", "kind", "item", "value", "unit", "document", "table", "year", "region", "verified", "records"]
    rows = (item.evidence or {}).get("factors", [])
    df = pd.DataFrame(rows)
    if "items" in df and "item" not in df:
        df = df.rename(columns={"items": "item"})
    if "year" in df:                                       # a year, not a quantity ("2023", not "2,023")
        df["year"] = ["" if pd.isna(y) else str(int(float(y))) for y in df["year"]]
    return df.reindex(columns=cols) if len(df) else pd.DataFrame(columns=cols)


def value_added_table(item: ReviewItem) -> pd.DataFrame:
    rows = (item.evidence or {}).get("value_added", []) if item.kind == "grade" else []
    return pd.DataFrame(rows).reindex(columns=["period", "value_added_10k_cny", "row"])


def quality_table(item: ReviewItem) -> pd.DataFrame:
    return pd.DataFrame((item.quality or {}).get("checks", []), columns=["check", "value", "detail"])


def _summary_html(item: ReviewItem, verification: dict) -> str:
    ev = item.evidence or {}
    q = (item.quality or {}).get("score")
    extra = ""
    if item.kind == "grade":
        b = ev.get("benchmark", {}) or {}
        flags = "; ".join(f.get("text", "") for f in ev.get("flags", [])) or "-"
        extra = (f"<br>行业基准 / benchmark: {_e(b.get('industry'))} {_e(b.get('industry_name_zh'))}, "
                 f"{_e(b.get('n'))} enterprises, L_ind {_f(b.get('benchmark_l'), 4)} tCO2/万元 · "
                 f"标记 / flags: {_e(flags)}")
    else:
        e = (ev.get("check") or {})
        extra = (f"<br>分配 / allocation: {_e((ev.get('allocation') or {}).get('statement_en'))} · ledger "
                 f"{_f(e.get('ledger_tco2e'))} tCO2e, allocated {_f(e.get('allocated_tco2e'))}")
    return (f"<div id='item-summary'><b id='item-kind'>{'碳效等级 / Enterprise grade' if item.kind == 'grade' else '产品碳标识 / Product label'}</b>"
            f" · <span id='item-enterprise'>{_e(item.enterprise_id)}</span> · {_e(item.period)}<br>"
            f"<span id='item-subject'>{_e(item.subject)}</span>{extra}<br>"
            f"数据质量 / data quality <b id='quality'>{'-' if q is None else f'{q:.1f}'}</b> / 100 · "
            f"核查 / verification: <span id='verification' data-state='{_e(verification.get('state', ''))}'>"
            f"{_e(verification.get('text', '-'))}</span><br>"
            f"提交 / submitted by {_e(item.submitted_by)} at {_e(item.submitted_at)} · id <code>{_e(item.item_id)}</code></div>")


# ------------------------------------------------------------------------------ the page
def page(principal, lake_root, *, labels=None, certificates=None, idnode=None):
    """The page for one session's principal (``labels``, ``certificates``, ``idnode``: the stores
    and the identifier node ``workbench apps serve`` was given)."""
    import panel as pn

    from workbench.apps.auth import ALL as _ALL

    args = pn.state.session_args or {}
    asked = args.get("enterprise", [b""])[0].decode("utf-8", "replace") if args else ""
    if asked:
        try:
            principal.require("read", asked)                # logged as a refused read
        except AccessDenied:
            return pn.pane.Alert(f"无权访问 / Not permitted: {asked}", alert_type="danger", name="denied")
    if labels is None and certificates is None:
        return pn.pane.Alert("未配置审核数据 / No review stores configured: `workbench apps serve --certification-db URL "
                             "--labels-db URL`", alert_type="warning")
    reviewer = principal.may("review")
    role = (f"{principal.name} ({principal.role}) · " + ("可审核 / you may decide" if reviewer else
            "只读：仅审核员可决定 / read-only: only reviewers decide (separation of duties)"))
    scope = "全部企业 / every enterprise" if _ALL in principal.enterprises else ", ".join(sorted(principal.enterprises))
    head = pn.pane.HTML(f"<span id='who'>{_e(role)}</span> · 企业 / enterprises: {_e(scope or '-')}"
                        + (f" · 发布至 / publishing to {_e(idnode.url)}" if idnode is not None else
                           " · 未配置标识节点 / no identifier node configured"), sizing_mode="stretch_width")
    message = pn.pane.Alert("", alert_type="danger", visible=False, name="message")
    notice = pn.pane.Alert("", alert_type="success", visible=False, name="notice")
    ent_filter = pn.widgets.Select(label="企业 / Enterprise", options=["全部 / all"], value="全部 / all")
    item_select = pn.widgets.Select(label="待审核项 / Pending item", options={}, sizing_mode="stretch_width")

    def table(name, page_size=12):
        return pn.widgets.Tabulator(pd.DataFrame(), pagination="local", page_size=page_size, disabled=True,
                                    show_index=False, sizing_mode="stretch_width", css_classes=[f"review-{name}"])

    pending_view, decided_view = table("pending"), table("decided")
    activity, factors, value_added, quality = table("activity", 10), table("factors"), table("value-added"), \
        table("quality")
    summary = pn.pane.HTML("", sizing_mode="stretch_width")
    published = pn.pane.HTML("", sizing_mode="stretch_width")
    comment = pn.widgets.TextAreaInput(label="审核意见 / Comment (驳回必填 / required to reject)", value="",
                                       height=80, sizing_mode="stretch_width")
    approve = pn.widgets.Button(label="批准 / Approve", button_type="success", disabled=True)
    reject = pn.widgets.Button(label="驳回 / Reject", button_type="danger", disabled=True)
    republish = pn.widgets.Button(label="发布已批准标识 / Publish approved labels", button_type="primary",
                                  disabled=not reviewer or labels is None or idnode is None)
    upload = pn.widgets.FileInput(accept=".zip", multiple=False, disabled=not reviewer or certificates is None)
    check_btn = pn.widgets.Button(label="检查核查包 / Check verification package", button_type="primary",
                                  disabled=not reviewer or certificates is None)
    state: dict = {"items": {}, "verification": {}}

    def verification_of(ent: str, year: int) -> dict:
        if certificates is None:
            return {"state": "not_verified", "text": "未核查 / not verified (no certification store)"}
        return certificates.verification_status(ent, year)

    def current() -> ReviewItem | None:
        return state["items"].get(item_select.value)

    def show(*_):
        item = current()
        if item is None:
            summary.object = "<div id='item-summary'>没有待审核项 / Nothing pending</div>"
            for t in (activity, factors, value_added, quality):
                t.value = pd.DataFrame()
            approve.disabled = reject.disabled = True
            return
        v = state["verification"].get((item.enterprise_id, item.year)) or verification_of(item.enterprise_id,
                                                                                           item.year)
        summary.object = _summary_html(item, v)
        activity.value = activity_table(item)
        factors.value = factor_table(item)
        value_added.value = value_added_table(item)
        quality.value = quality_table(item)
        may = principal.may("review", item.enterprise_id)
        approve.disabled = reject.disabled = not may

    def refresh(*_):
        ent = None if ent_filter.value.startswith("全部") else ent_filter.value
        try:
            items = queue(principal, labels=labels, certificates=certificates, enterprise=ent or (asked or None))
            done = decided_items(principal, labels=labels, certificates=certificates, enterprise=ent or (asked or None))
        except Exception as exc:  # noqa: BLE001 - one line, the page stays
            message.object, message.visible = str(exc), True
            return
        state["verification"] = {(i.enterprise_id, i.year): verification_of(i.enterprise_id, i.year) for i in items}
        state["items"] = {i.key: i for i in items}
        keep = item_select.value
        item_select.options = {f"{'碳效等级 grade' if i.kind == 'grade' else '产品标识 label'} · {i.enterprise_id} · "
                               f"{i.period} · {i.brief} · {i.item_id[:8]}": i.key for i in items}
        item_select.value = keep if keep in state["items"] else (items[0].key if items else None)
        pending_view.value = queue_table(items, state["verification"])
        decided_view.value = decided_table(done, idnode.url if idnode is not None else "")
        ents = sorted({i.enterprise_id for i in items} | {i.enterprise_id for i in done})
        opts = ["全部 / all", *ents]
        if ent_filter.options != opts and not ent:
            ent_filter.options = opts
        show()

    def on_decision(decision):
        def run(_):
            notice.visible = message.visible = False
            item = current()
            if item is None:
                message.object, message.visible = "未选择 / Nothing selected", True
                return
            try:
                res = decide(principal, item.kind, item.item_id, decision, comment.value, labels=labels,
                             certificates=certificates, idnode=idnode)
            except Exception as exc:  # noqa: BLE001 - refused: say so, keep the page
                message.object, message.visible = str(exc), True
                refresh()
                return
            notice.object = _e(res["message"])
            notice.visible = True
            if res.get("identifier"):
                published.object = (f"<div id='published'>已发布 / published: <code id='published-identifier'>"
                                    f"{_e(res['identifier'])}</code> · 解析 / resolves at <a id='resolution-url' "
                                    f"href='{_e(res['resolution_url'])}' target='_blank'>{_e(res['resolution_url'])}"
                                    "</a></div>")
            comment.value = ""
            refresh()
        return run

    def on_republish(_):
        notice.visible = message.visible = False
        done = []
        for lab in (labels.list(enterprise=scope_of(principal), status="approved") if labels is not None else []):
            if principal.may("review", lab.enterprise_id):
                done.append(publish_label(principal, labels, idnode, lab.label_id)["message"])
        notice.object = _e("; ".join(done) or "没有待发布的标识 / no approved label waiting")
        notice.visible = True
        refresh()

    def on_check(_):
        notice.visible = message.visible = False
        try:
            row = check_uploaded_package(principal, certificates, upload.value or b"", upload.filename or "package.zip")
        except Exception as exc:  # noqa: BLE001 - refused or unreadable: one line
            message.object, message.visible = str(exc), True
            return
        notice.object = _e(row["status"]["text"])
        notice.visible = True
        refresh()

    approve.on_click(on_decision("approve"))
    reject.on_click(on_decision("reject"))
    republish.on_click(on_republish)
    check_btn.on_click(on_check)
    item_select.param.watch(show, "value")
    ent_filter.param.watch(refresh, "value")
    refresh()
    evidence_tabs = pn.Tabs(("活动数据 / Activity data", pn.Column(activity, value_added)),
                            ("排放因子 / Factors", factors),
                            ("数据质量 / Data quality", quality),
                            ("核查 / Verification", pn.Column(
                                pn.pane.Markdown("上传企业的核查包（`workbench verify export` 的 ZIP）以检查并记录 / "
                                                 "Upload the enterprise's verification package (the ZIP of `workbench "
                                                 "verify export`) to check it and record the result."),
                                pn.Row(upload, check_btn))), dynamic=False)
    return pn.Column(
        pn.pane.Markdown("## 审核认证 / Certification review"), head, message, notice, published,
        pn.Tabs(("待审核 / Pending", pn.Column(pn.Row(ent_filter), pending_view, item_select, summary, evidence_tabs,
                                               comment, pn.Row(approve, reject))),
                ("已决定 / Decided", pn.Column(republish, decided_view)), dynamic=False),
        sizing_mode="stretch_width")
