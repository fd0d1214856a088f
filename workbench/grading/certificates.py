"""Certification of enterprise carbon-efficiency grades (issue 14, point 7; seed §9.4 a): the grades
awaiting a reviewer's decision, the decisions, and the verification checks the reviewers ran.

A grade is **submitted** as ``pending`` with its evidence (:meth:`GradeCertificates.submit`, from
:func:`~workbench.grading.grade_evidence`: L, K, the benchmark, every energy record with its factors
and file row, the value added, the flags — plus the factors' provenance from the factor library and
the data-quality score below, both fixed at submission); a reviewer **approves** or **rejects** it
with a comment (a rejection needs one; who and when are kept).  Only a graded row is submitted: a
row whose data cannot carry a grade (``status`` not ``ok``) is refused.  Every step is an event
(``certificate_events``: certificate, enterprise, time, who, action, status before and after,
comment) written in the same transaction as the change.  The design mirrors
:class:`workbench.products.store.LabelStore` (the product labels' queue), so the review page treats
both alike::

    pending ──approve──► approved
       └─────reject────► rejected        (a new submission of the same enterprise, period and
                                          scheme is refused while one is pending)

Who may decide is the review page's to check (``Principal.act("review", enterprise, …)``,
:mod:`workbench.apps.auth`); this store records what was decided.  Reads take the enterprise
(``list(enterprise=…)``: an id or several, filtered in the query), so a page never receives
another enterprise's rows.

**Verification checks** (``verification_checks``): the outcome of
:func:`workbench.verification.check_package` on an enterprise's verification package, as a reviewer
ran it (:meth:`GradeCertificates.record_check` takes ``CheckResult.to_dict()``; this layer does not
import the verification package, which sits above it).  :meth:`~GradeCertificates.verification_status`
gives the latest check of an enterprise and year — what the review page shows as the item's
verification status ("not verified" when none was checked).

**Data-quality score** of a certification item (:func:`grade_quality`, :func:`label_quality`): the
share of the checks a reviewer would otherwise make by hand that the evidence passes, 0–100.
Each check is a fraction in [0, 1]; the score is ``100 × mean(checks)``; the checks are kept with
the score so the page shows why it is what it is.

=====================  =============================================================================
grade check            value
=====================  =============================================================================
value_added_months     months of the period with value added ÷ months of the period
energy_months          months of the period with at least one energy record ÷ months of the period
traced                 energy and zero-carbon rows naming their file row and at least one factor id
                       ÷ all those rows (1 when there are none: nothing to trace)
verified_factors       factors used that the library marks verified ÷ factors used (a value given on
                       a record, not in the library, counts as verified: it is the site's)
benchmark              1 when the industry benchmark counts at least ``SMALL_BENCHMARK`` enterprises,
                       else 0
=====================  =============================================================================

=====================  =============================================================================
label check            value
=====================  =============================================================================
months                 months of the label's period with ledger rows ÷ months of the period
primary_data           the footprint's share of tCO2e from primary (metered or billed) data
traced                 ledger rows carrying the SHA-256 of their raw file ÷ ledger rows
factors                factors listed with provenance and marked verified ÷ factor ids the ledger
                       names (0 when the evidence lists none)
conserved              1 when the allocation adds back to the ledger (|residual| ≤ 1e-6 × total,
                       at least 1e-9 tCO2e), else 0
=====================  =============================================================================

The store is SQLite by default (``data/certification.db``, or ``$WORKBENCH_CERTIFICATION``), or any
SQLAlchemy URL (:mod:`workbench.core.sqlstore`).
"""
from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import pandas as pd
import sqlalchemy as sa

from workbench.core.sqlstore import create_engine, create_tables
from workbench.grading.engine import SMALL_BENCHMARK, GradeEvidence
from workbench.grading.errors import GradingError
from workbench.identifiers.model import utc_timestamp

__all__ = [
    "DEFAULT_URL",
    "ENV",
    "STATUSES",
    "CertificationError",
    "GradeCertificate",
    "GradeCertificates",
    "certificate_evidence",
    "evidence_factors",
    "grade_quality",
    "label_quality",
    "period_months",
    "store_url",
    "submit_graded",
]

DEFAULT_URL = "sqlite:///data/certification.db"
#: the environment variable naming the certification store
ENV = "WORKBENCH_CERTIFICATION"
STATUSES = ("pending", "approved", "rejected")
_FACTOR_COLUMNS = (("ncv", "ncv_factor_id", "ncv", "ncv_unit"),
                   ("carbon_content", "carbon_content_factor_id", "carbon_content", ""),
                   ("oxidation_rate", "oxidation_rate_factor_id", "oxidation_rate", ""),
                   ("emission_factor", "emission_factor_id", "emission_factor", "ef_unit"))


class CertificationError(GradingError):
    """A submission or decision the certification store refuses (not graded, not pending, no reason)."""


_meta = sa.MetaData()
_certs = sa.Table(
    "grade_certificates", _meta,
    sa.Column("certificate_id", sa.String(64), primary_key=True),
    sa.Column("enterprise_id", sa.String(128), nullable=False, index=True),
    sa.Column("name_zh", sa.String(200), nullable=False, default=""),
    sa.Column("period", sa.String(16), nullable=False),
    sa.Column("scheme", sa.String(64), nullable=False),
    sa.Column("grade", sa.Integer, nullable=False),
    sa.Column("level", sa.String(16), nullable=False, default=""),
    sa.Column("l", sa.Float, nullable=True),
    sa.Column("k", sa.Float, nullable=True),
    sa.Column("benchmark_l", sa.Float, nullable=True),
    sa.Column("quality", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("evidence_json", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("decided_by", sa.String(200), nullable=False, default=""),
    sa.Column("decided_at", sa.String(40), nullable=False, default=""),
    sa.Column("comment", sa.Text, nullable=False, default=""),
)
_events = sa.Table(
    "certificate_events", _meta,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("certificate_id", sa.String(64), nullable=False, index=True),
    sa.Column("enterprise_id", sa.String(128), nullable=False, index=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("from_status", sa.String(16), nullable=False, default=""),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, default=""),
)
_checks = sa.Table(
    "verification_checks", _meta,
    sa.Column("check_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("enterprise_id", sa.String(128), nullable=False, index=True),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("problems", sa.Integer, nullable=False),
    sa.Column("signer", sa.String(200), nullable=False, default=""),
    sa.Column("key_pinned", sa.Boolean, nullable=False, default=False),
    sa.Column("package", sa.String(300), nullable=False, default=""),
    sa.Column("package_sha256", sa.String(64), nullable=False, default=""),
    sa.Column("total_tco2e", sa.Float, nullable=True),
    sa.Column("result_json", sa.Text, nullable=False),
    sa.Column("checked_by", sa.String(200), nullable=False),
    sa.Column("checked_at", sa.String(40), nullable=False),
)
_FIELDS = ("certificate_id", "enterprise_id", "name_zh", "period", "scheme", "grade", "level", "l", "k",
           "benchmark_l", "quality", "status", "created_by", "created_at", "decided_by", "decided_at", "comment")


# ------------------------------------------------------------------------------ pure helpers
def _json_safe(obj):
    """JSON-ready: non-finite floats and pandas' NA → None, numpy scalars → Python."""
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item"):
        return _json_safe(obj.item())
    try:
        if pd.isna(obj):
            return None
    except (TypeError, ValueError):
        pass
    return str(obj)


def _num(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def period_months(period: str) -> tuple:
    """The months (``YYYY-MM``) of a grading period (``2025-03``, ``2025-Q1``, ``2025``) or a label's
    span (``2025-01/2025-12``)."""
    from workbench.grading.periods import parse_period

    start, _, end = str(period).partition("/")
    if not end:
        return parse_period(start).months
    y0, m0, y1, m1 = int(start[:4]), int(start[5:7]), int(end[:4]), int(end[5:7])
    out, y, m = [], y0, m0
    while (y, m) <= (y1, m1):
        out.append(f"{y}-{m:02d}")
        y, m = (y, m + 1) if m < 12 else (y + 1, 1)
    return tuple(out)


def period_year(period: str) -> int:
    """The reporting year of a period or span (its last month's year): what a verification
    package covers."""
    return int(period_months(period)[-1][:4])


def evidence_factors(rows: Iterable[Mapping], library=None) -> list[dict]:
    """The factors the ``rows`` (ledger rows of the grade evidence: ``*_factor_id`` columns) used,
    one per factor id, with the library's value, unit, document, table, year, region, verified
    flag and note; an id the library does not hold is a value given on the record (its value and
    unit from the row, ``document`` the row's, ``verified`` ``None``)."""
    from workbench.core.factors import default_library

    lib = library or default_library()
    table = lib.table.set_index("factor_id")
    seen: dict[str, dict] = {}
    for r in rows:
        for kind, id_col, value_col, unit_col in _FACTOR_COLUMNS:
            fid = str(r.get(id_col) or "")
            if not fid:
                continue
            if fid in seen:
                seen[fid]["records"] += 1
                continue
            if fid in table.index:
                t = table.loc[fid]
                seen[fid] = {"factor_id": fid, "kind": kind, "item": str(t["item"]), "value": _num(t["value"]),
                             "unit": str(t["unit"]), "document": str(t["document"]), "table": str(t["table"]),
                             "year": None if _num(t["year"]) is None else int(t["year"]),
                             "region": str(t["region"]), "verified": bool(t["verified"]),
                             "note": "" if t["note"] is None or (isinstance(t["note"], float)) else str(t["note"]),
                             "records": 1}
            else:
                seen[fid] = {"factor_id": fid, "kind": kind, "item": str(r.get("item", "")),
                             "value": _num(r.get(value_col)), "unit": str(r.get(unit_col, "") if unit_col else ""),
                             "document": str(r.get("document", "")), "table": "given on the record", "year": None,
                             "region": "", "verified": None, "note": "", "records": 1}
    return list(seen.values())


def grade_quality(evidence: Mapping) -> dict:
    """The data-quality score of a grade's evidence (see the module doc): ``{"score": 0–100,
    "checks": [{"check", "value", "detail"}]}``.  ``evidence``: :func:`certificate_evidence`."""
    row = evidence.get("row", {})
    expected = int(row.get("months_expected") or 0) or len(period_months(evidence.get("period", row.get("period"))))
    energy = list(evidence.get("energy", []))
    rows = energy + list(evidence.get("zero_carbon", []))
    va_months = int(row.get("months") or 0)
    e_months = len({r.get("period") for r in energy if r.get("period")})
    traced = [r for r in rows if r.get("document") and any(r.get(c) for _, c, _, _ in _FACTOR_COLUMNS)]
    factors = list(evidence.get("factors", []))
    verified = [f for f in factors if f.get("verified") is not False]
    n = int(row.get("benchmark_n") or 0)
    checks = [
        ("value_added_months", min(va_months / expected, 1.0) if expected else 0.0,
         f"{va_months}/{expected} months with value added"),
        ("energy_months", min(e_months / expected, 1.0) if expected else 0.0,
         f"{e_months}/{expected} months with energy records"),
        ("traced", len(traced) / len(rows) if rows else 1.0,
         f"{len(traced)}/{len(rows)} rows name their file row and factor"),
        ("verified_factors", len(verified) / len(factors) if factors else (0.0 if rows else 1.0),
         f"{len(verified)}/{len(factors)} factors verified"),
        ("benchmark", 1.0 if n >= SMALL_BENCHMARK else 0.0,
         f"benchmark of {n} enterprises (at least {SMALL_BENCHMARK})"),
    ]
    return _score(checks)


def label_quality(evidence: Mapping, period: str | None = None) -> dict:
    """The data-quality score of a product label's evidence (``ProductLabel.evidence``; see the
    module doc), ``period`` the label's (default the evidence's)."""
    ledger = list(evidence.get("ledger", []))
    months = period_months(period or evidence.get("period", ""))
    have = {str(r.get("period")) for r in ledger} & set(months)
    primary = _num(evidence.get("primary_data_share"))
    hashed = [r for r in ledger if r.get("raw_sha256")]
    named = set()
    for r in ledger:
        for fid in str(r.get("factor_ids") or "").replace(",", ";").split(";"):
            if fid.strip():
                named.add(fid.strip())
    listed = {str(f.get("factor_id")): f for f in evidence.get("factors", [])}
    good = [f for f in named if f in listed and listed[f].get("document") and listed[f].get("verified") is not False]
    check = evidence.get("check", {}) or {}
    total = abs(_num(check.get("ledger_tco2e")) or 0.0)
    residual = _num(check.get("allocation_residual_tco2e"))
    conserved = residual is not None and abs(residual) <= max(1e-6 * total, 1e-9)
    checks = [
        ("months", len(have) / len(months) if months else 0.0, f"{len(have)}/{len(months)} months with ledger rows"),
        ("primary_data", min(max(primary, 0.0), 1.0) if primary is not None else 0.0,
         "primary data share " + (f"{primary:.1%}" if primary is not None else "unknown")),
        ("traced", len(hashed) / len(ledger) if ledger else 0.0,
         f"{len(hashed)}/{len(ledger)} ledger rows carry their raw file's SHA-256"),
        ("factors", len(good) / len(named) if named else 0.0,
         f"{len(good)}/{len(named)} factors listed with provenance and verified" if named
         else "no factor ids in the evidence"),
        ("conserved", 1.0 if conserved else 0.0,
         "allocation adds back to the ledger" + ("" if conserved else f" — residual {residual}")),
    ]
    return _score(checks)


def _score(checks) -> dict:
    return {"score": round(100.0 * sum(v for _, v, _ in checks) / len(checks), 1),
            "checks": [{"check": c, "value": round(float(v), 4), "detail": d} for c, v, d in checks]}


def certificate_evidence(evidence: GradeEvidence | Mapping, library=None) -> dict:
    """What a grade certificate keeps: :meth:`GradeEvidence.to_dict` with ``factors``
    (:func:`evidence_factors`) and ``quality`` (:func:`grade_quality`) added."""
    d = dict(evidence.to_dict() if isinstance(evidence, GradeEvidence) else evidence)
    d = _json_safe(d)
    if "factors" not in d:
        d["factors"] = _json_safe(evidence_factors(list(d.get("energy", [])) + list(d.get("zero_carbon", [])),
                                                   library))
    d["quality"] = grade_quality(d)
    return d


def store_url(url: str | None = None) -> str:
    """The certification store's URL: ``url`` (a plain path is a SQLite file), else
    ``$WORKBENCH_CERTIFICATION``, else ``data/certification.db``."""
    url = url or os.environ.get(ENV) or DEFAULT_URL
    return url if "://" in url else f"sqlite:///{url}"


# ------------------------------------------------------------------------------ the store
@dataclass
class GradeCertificate:
    """A grade submitted for certification: what was graded, its evidence, its review state."""

    certificate_id: str
    enterprise_id: str
    name_zh: str
    period: str
    scheme: str
    grade: int
    level: str
    l: float | None                 # carbon efficiency L, tCO2/万元
    k: float | None
    benchmark_l: float | None
    quality: float
    status: str
    created_by: str
    created_at: str
    decided_by: str = ""
    decided_at: str = ""
    comment: str = ""
    evidence: dict = field(default_factory=dict)

    @property
    def year(self) -> int:
        return period_year(self.period)

    def as_dict(self, *, evidence: bool = True) -> dict:
        d = asdict(self)
        if not evidence:
            d.pop("evidence")
        return d


class GradeCertificates:
    """Grade certifications and their review, and the verification checks reviewers ran, in a SQL
    database (default ``sqlite:///data/certification.db``; see the module doc)."""

    def __init__(self, url: str | None = None):
        self.url = store_url(url)
        self.engine = create_engine(self.url, error=CertificationError)
        create_tables(_meta, self.engine, error=CertificationError)

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.dispose()

    # ---------------------------------------------------------------- writes
    def submit(self, evidence: GradeEvidence | Mapping, *, who: str, library=None) -> GradeCertificate:
        """Store a graded enterprise's grade as ``pending`` with its evidence
        (:func:`certificate_evidence`); returns it as stored.  Refused: no submitter, a row without
        a grade (its status says why), one already pending for the same enterprise, period and scheme."""
        if not who:
            raise CertificationError("submit: who is submitting the grade?")
        ev = certificate_evidence(evidence, library)
        row = ev.get("row", {})
        ent, period = str(ev.get("enterprise_id") or row.get("enterprise_id") or ""), str(ev.get("period") or "")
        if ev.get("grade") is None or row.get("status") != "ok":
            raise CertificationError(f"{ent} {period}: not graded ({row.get('status') or 'no grade'}) — only a graded "
                                     "enterprise is submitted for certification")
        scheme = str((ev.get("scheme") or {}).get("name") or row.get("scheme") or "")
        now = utc_timestamp()
        values = {"certificate_id": uuid.uuid4().hex, "enterprise_id": ent, "name_zh": str(row.get("name_zh") or ""),
                  "period": period, "scheme": scheme, "grade": int(ev["grade"]), "level": str(row.get("level") or ""),
                  "l": _num(row.get("l")), "k": _num(row.get("k")), "benchmark_l": _num(row.get("benchmark_l")),
                  "quality": float(ev["quality"]["score"]), "status": "pending",
                  "evidence_json": json.dumps(ev, ensure_ascii=False), "created_by": who, "created_at": now,
                  "decided_by": "", "decided_at": "", "comment": ""}
        c_ = _certs.c
        with self.engine.begin() as c:
            dup = c.execute(sa.select(c_.certificate_id).where(c_.enterprise_id == ent, c_.period == period,
                                                               c_.scheme == scheme, c_.status == "pending")).first()
            if dup:
                raise CertificationError(f"{ent} {period} ({scheme}) is already pending as certificate {dup[0]}")
            c.execute(_certs.insert().values(**values))
            self._event(c, values["certificate_id"], ent, who, "submit", "", "pending", "")
        return self._cert(values)

    def approve(self, certificate_id: str, *, who: str, comment: str = "") -> GradeCertificate:
        """pending → approved, by ``who`` (a reviewer; the caller checks the role)."""
        return self._decide(certificate_id, who, comment, "approved")

    def reject(self, certificate_id: str, *, who: str, comment: str) -> GradeCertificate:
        """pending → rejected, by ``who``; a rejection needs its reason."""
        if not (comment or "").strip():
            raise CertificationError("a rejection needs a comment saying why")
        return self._decide(certificate_id, who, comment, "rejected")

    def _decide(self, certificate_id, who, comment, to) -> GradeCertificate:
        if not who:
            raise CertificationError(f"{to}: who decides?")
        now = utc_timestamp()
        with self.engine.begin() as c:
            cur = self._row(c, certificate_id)
            if cur["status"] != "pending":
                raise CertificationError(f"certificate {certificate_id} is {cur['status']}, not pending: "
                                         f"it cannot be {to}")
            c.execute(_certs.update().where(_certs.c.certificate_id == certificate_id)
                      .values(status=to, decided_by=who, decided_at=now, comment=comment or ""))
            self._event(c, certificate_id, cur["enterprise_id"], who, "approve" if to == "approved" else "reject",
                        "pending", to, comment or "")
            return self._cert(self._row(c, certificate_id))

    @staticmethod
    def _event(c, certificate_id, enterprise, who, action, before, after, comment) -> None:
        c.execute(_events.insert().values(certificate_id=certificate_id, enterprise_id=enterprise, at=utc_timestamp(),
                                          who=who, action=action, from_status=before, to_status=after,
                                          comment=comment))

    # ---------------------------------------------------------------- reads
    @staticmethod
    def _row(c, certificate_id) -> dict:
        r = c.execute(sa.select(_certs).where(_certs.c.certificate_id == certificate_id)).mappings().first()
        if r is None:
            raise CertificationError(f"no certificate {certificate_id!r}")
        return dict(r)

    @staticmethod
    def _cert(row: Mapping, *, evidence: bool = True) -> GradeCertificate:
        ev = json.loads(row["evidence_json"]) if evidence and row.get("evidence_json") else {}
        return GradeCertificate(**{k: row[k] for k in _FIELDS}, evidence=ev)

    def get(self, certificate_id: str, *, enterprise: str | Iterable[str] | None = None) -> GradeCertificate:
        """One certificate with its evidence; with ``enterprise`` (an id or several), only if it is
        one of theirs."""
        with self.engine.connect() as c:
            row = self._row(c, certificate_id)
        if enterprise is not None:
            ents = [enterprise] if isinstance(enterprise, str) else list(enterprise)
            if row["enterprise_id"] not in ents:
                raise CertificationError(f"no certificate {certificate_id!r} of {', '.join(ents) or 'no enterprise'}")
        return self._cert(row)

    def list(self, *, enterprise: str | Iterable[str] | None = None, status: str | None = None,
             evidence: bool = False) -> list[GradeCertificate]:
        """Certificates, newest first; ``enterprise`` (an id or several) and ``status`` filter in the query."""
        if status is not None and status not in STATUSES:
            raise CertificationError(f"status {status!r}: one of {', '.join(STATUSES)}")
        cols = [_certs] if evidence else [getattr(_certs.c, k) for k in _FIELDS]
        q = sa.select(*cols).order_by(_certs.c.created_at.desc(), _certs.c.certificate_id)
        if enterprise is not None:
            ents = [enterprise] if isinstance(enterprise, str) else list(enterprise)
            q = q.where(_certs.c.enterprise_id.in_(ents))
        if status is not None:
            q = q.where(_certs.c.status == status)
        with self.engine.connect() as c:
            rows = [dict(r) for r in c.execute(q).mappings()]
        return [self._cert(r, evidence=evidence) for r in rows]

    def pending(self, *, enterprise: str | Iterable[str] | None = None) -> list[GradeCertificate]:
        """The certificates awaiting a decision, with their evidence."""
        return self.list(enterprise=enterprise, status="pending", evidence=True)

    def events(self, certificate_id: str) -> list[dict]:
        """The certificate's history, oldest first."""
        q = sa.select(_events).where(_events.c.certificate_id == certificate_id).order_by(_events.c.event_id)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    # ---------------------------------------------------------------- verification checks
    def record_check(self, result: Mapping, *, who: str, package: str = "", package_sha256: str = "") -> dict:
        """Keep the outcome of a verification package check (``CheckResult.to_dict()``: ``ok``,
        ``problems``, ``signer``, ``key_pinned``, ``enterprise``, ``year``, ``total_tco2e`` …) as run by
        ``who``; returns the stored row."""
        if not who:
            raise CertificationError("record_check: who checked the package?")
        ent, year = result.get("enterprise"), result.get("year")
        if not ent or year is None:
            raise CertificationError("record_check: the result names no enterprise and year (not a package's manifest?)")
        values = {"enterprise_id": str(ent), "year": int(year), "ok": bool(result.get("ok")),
                  "problems": len(result.get("problems") or []), "signer": str(result.get("signer") or ""),
                  "key_pinned": bool(result.get("key_pinned")), "package": str(package)[:300],
                  "package_sha256": str(package_sha256), "total_tco2e": _num(result.get("total_tco2e")),
                  "result_json": json.dumps(_json_safe(dict(result)), ensure_ascii=False), "checked_by": who,
                  "checked_at": utc_timestamp()}
        with self.engine.begin() as c:
            values["check_id"] = c.execute(_checks.insert().values(**values)).inserted_primary_key[0]
        return values

    def checks(self, enterprise: str | Iterable[str], year: int | None = None) -> list[dict]:
        """The recorded checks of ``enterprise`` (an id or several; filtered in the query), newest first."""
        ents = [enterprise] if isinstance(enterprise, str) else list(enterprise)
        q = sa.select(_checks).where(_checks.c.enterprise_id.in_(ents)).order_by(_checks.c.check_id.desc())
        if year is not None:
            q = q.where(_checks.c.year == int(year))
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def verification_status(self, enterprise: str, year: int) -> dict:
        """The latest check of ``enterprise``'s package for ``year``: ``{"state": "not_verified" |
        "passed" | "failed", "text": …, "check": the row or None}``."""
        rows = self.checks(enterprise, year)
        if not rows:
            return {"state": "not_verified", "check": None,
                    "text": f"未核查 / not verified: no verification package of {enterprise} {year} checked"}
        r = rows[0]
        key = "pinned key" if r["key_pinned"] else "the key inside the package, not pinned"
        if r["ok"]:
            total = f", total {r['total_tco2e']:,.3f} tCO2e recomputed" if r["total_tco2e"] is not None else ""
            text = (f"核查包已检查通过 / package checked on {r['checked_at']} by {r['checked_by']}: ok — signed by "
                    f"{r['signer']} ({key}){total}")
        else:
            text = (f"核查包检查未通过 / package checked on {r['checked_at']} by {r['checked_by']}: FAILED, "
                    f"{r['problems']} problem(s)")
        return {"state": "passed" if r["ok"] else "failed", "check": r, "text": text}


def submit_graded(store: GradeCertificates, region, period, *, who: str, scheme=None, library=None,
                  enterprises: Iterable[str] | None = None, industry_level: str | None = None,
                  benchmark_scope: str | None = None) -> dict:
    """Submit every graded enterprise of ``region`` (a directory or a loaded
    :class:`~workbench.grading.region.RegionEmissions`) for ``period`` as pending, graded as
    :func:`~workbench.grading.grade_region` grades it (``scheme``, ``industry_level``,
    ``benchmark_scope``); ``enterprises``: only these.  Ungraded rows are not submitted; one already
    pending is skipped.  Returns ``{"submitted": [GradeCertificate], "ungraded": [(enterprise,
    status)], "already_pending": [enterprise]}``."""
    from pathlib import Path

    from workbench.grading.engine import grade_emissions, grade_evidence
    from workbench.grading.region import RegionEmissions, load_region

    em = region if isinstance(region, RegionEmissions) else load_region(Path(region), library)
    rg = grade_emissions(em, period, scheme, visible=enterprises, industry_level=industry_level,
                         benchmark_scope=benchmark_scope)
    out = {"submitted": [], "ungraded": [], "already_pending": []}
    for r in rg.grades.itertuples(index=False):
        if r.status != "ok" or pd.isna(r.grade):
            out["ungraded"].append((r.enterprise_id, r.status))
            continue
        ev = grade_evidence(em, r.enterprise_id, period, rg.scheme, industry_level=rg.industry_level,
                            benchmark_scope=rg.benchmark_scope, graded=rg)
        try:
            out["submitted"].append(store.submit(ev, who=who, library=library))
        except CertificationError as exc:
            if "already pending" not in str(exc):
                raise
            out["already_pending"].append(r.enterprise_id)
    return out
