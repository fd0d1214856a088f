"""Push ingestion over HTTP (seed §7.2 b: enterprise systems preferably *push* their data).

:func:`create_app` returns a FastAPI app with

``POST /v1/push/{source}``  ``Authorization: Bearer <token>``; body JSON
    ``{"kind": "readings" | "activity", "records": [...]}`` or CSV (``Content-Type: text/csv``,
    kind in ``?kind=`` or the ``X-Workbench-Kind`` header).  The payload is validated (pydantic);
    the request body bytes, **exactly as received**, become the raw-zone bytes of a
    :class:`~connectors.ConnectorResult` handed to the ``ingest`` callback (normally
    ``lambda r: lake.ingest(r, sender=r.metadata["sender"])``).
    202 → ``{"status": "accepted", "request_id", "source", "kind", "records", "sha256", "summary"}``
    where ``summary`` is what ``ingest`` returned (a dict, or ``.to_dict()`` of it);
    401 no/unknown/revoked token · 403 a valid token of another source · 413 too large ·
    415 unsupported content type · 422 invalid payload (every problem listed, with its location) ·
    500 ingest failed.  Nothing reaches ``ingest`` unless authenticated and valid.
``GET /v1/health``  liveness.

Tokens are per source system and stored **hashed** (scrypt with a random salt per token) in a
JSON file managed by :class:`TokenStore`; the plain token is shown once, by :meth:`TokenStore.issue`.
A token has the form ``wbp_<id>.<secret>``: the id finds the stored hash, the secret is checked in
constant time.  Every request is logged (``logging`` logger ``connectors.webhook.audit``) and kept in
an :class:`AuditLog` (in memory, optionally appended to a JSON-lines file): who (source, token id,
client address), what (kind, records, bytes, sha256), when, outcome.  Tokens are never logged.

The OpenAPI description is at ``/openapi.json`` (Swagger UI at ``/docs``).
"""
from __future__ import annotations

import base64
import collections
import contextlib
import csv
import datetime as _dt
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from . import ConnectorResult

__all__ = [
    "ActivityRecord",
    "AuditLog",
    "PushPayload",
    "ReadingRecord",
    "TokenInfo",
    "TokenStore",
    "create_app",
    "hash_token",
    "serve",
    "verify_token",
]

name = "webhook"
log = logging.getLogger("connectors.webhook")
audit_log = logging.getLogger("connectors.webhook.audit")

SOURCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_TOKEN_RE = re.compile(r"^wbp_([0-9a-f]{16})\.([A-Za-z0-9_-]{20,200})$")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------------------------------------
# tokens
# ---------------------------------------------------------------------------------------------
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1


def hash_token(token: str, *, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
               p: int = SCRYPT_P) -> str:
    """``scrypt$n$r$p$<salt>$<hash>`` (base64) of ``token`` with a random 16-byte salt."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(token.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode("ascii")
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(digest)}"


def verify_token(token: str, hashed: str) -> bool:
    """Whether ``token`` matches ``hashed`` (from :func:`hash_token`); constant-time comparison."""
    try:
        algo, n, r, p, salt, digest = hashed.split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(token.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), dklen=32)
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


@dataclass(frozen=True)
class TokenInfo:
    """An authenticated token: which source system it belongs to."""

    token_id: str
    source: str
    label: str | None = None


class TokenStore:
    """Per-source push tokens, hashed, in a JSON file (mode 0600, atomically rewritten).

    ``issue(source)`` returns a new plain token once — give it to the source system; only its
    scrypt hash is kept.  Changes made by another process (``issue``/``revoke`` from a shell) are
    picked up on the next request (the file is re-read when its modification time changes).
    """

    def __init__(self, path: str | os.PathLike, *, cost: int = SCRYPT_N):
        self.path = Path(path)
        self.cost = int(cost)
        self._lock = threading.RLock()
        self._mtime: float | None = None
        self._data: dict = {"version": 1, "algorithm": "scrypt", "tokens": []}
        self._dummy = hash_token(secrets.token_urlsafe(16), n=self.cost)
        if self.path.exists():
            self._load()

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r}, {len(self.list())} token(s))"

    def _load(self) -> None:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime_ns
            except FileNotFoundError:
                return
            if mtime != self._mtime:
                self._data = json.loads(self.path.read_text(encoding="utf-8"))
                self._mtime = mtime

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self._data, fh, indent=1, ensure_ascii=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._mtime = self.path.stat().st_mtime_ns

    def issue(self, source: str, *, label: str | None = None) -> str:
        """A new token for ``source``; returns the plain token (it is not stored)."""
        if not re.match(SOURCE_PATTERN, source):
            raise ValueError(f"source '{source}' must match {SOURCE_PATTERN}")
        token_id = secrets.token_hex(8)
        token = f"wbp_{token_id}.{secrets.token_urlsafe(32)}"
        with self._lock:
            self._load()
            self._data["tokens"].append({"id": token_id, "source": source, "label": label,
                                         "hash": hash_token(token, n=self.cost), "created_at": _now(),
                                         "revoked_at": None})
            self._save()
        return token

    def revoke(self, *, token_id: str | None = None, source: str | None = None) -> int:
        """Revoke one token (by id) or every token of a source; returns how many were revoked."""
        if token_id is None and source is None:
            raise ValueError("give token_id= or source=")
        n = 0
        with self._lock:
            self._load()
            for t in self._data["tokens"]:
                if t["revoked_at"] is None and (t["id"] == token_id or (token_id is None and t["source"] == source)):
                    t["revoked_at"] = _now()
                    n += 1
            if n:
                self._save()
        return n

    def list(self, source: str | None = None) -> list[dict]:
        """Tokens (id, source, label, created/revoked) — never the hashes."""
        with self._lock:
            self._load()
            return [{k: v for k, v in t.items() if k != "hash"} for t in self._data["tokens"]
                    if source is None or t["source"] == source]

    def authenticate(self, token: str | None) -> TokenInfo | None:
        """The source a (non-revoked) ``token`` belongs to, or None."""
        m = _TOKEN_RE.match(token or "")
        with self._lock:
            self._load()
            entry = None
            if m:
                entry = next((t for t in self._data["tokens"] if t["id"] == m.group(1) and t["revoked_at"] is None), None)
        if entry is None:
            verify_token(token or "", self._dummy)  # same work whether or not the id exists
            return None
        if not verify_token(token, entry["hash"]):
            return None
        return TokenInfo(entry["id"], entry["source"], entry.get("label"))


# ---------------------------------------------------------------------------------------------
# audit
# ---------------------------------------------------------------------------------------------
class AuditLog:
    """Every push request: kept in memory (last ``maxlen``) and appended to ``path`` (JSON lines)."""

    def __init__(self, path: str | os.PathLike | None = None, *, maxlen: int = 10_000):
        self.path = Path(path) if path is not None else None
        self.entries: collections.deque = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, entry: dict) -> None:
        with self._lock:
            self.entries.append(entry)
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        level = logging.INFO if entry.get("status", 500) < 400 else logging.WARNING
        audit_log.log(level, "push source=%s token=%s client=%s kind=%s records=%s bytes=%s status=%s outcome=%s %s",
                      entry.get("source"), entry.get("token_id"), entry.get("client"), entry.get("kind"),
                      entry.get("records"), entry.get("bytes"), entry.get("status"), entry.get("outcome"),
                      entry.get("message") or "")

    def __iter__(self):
        return iter(list(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def read(self) -> list[dict]:
        """All entries of the file (or the in-memory ones when there is no file)."""
        if self.path is None or not self.path.exists():
            return list(self.entries)
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# payload models
# ---------------------------------------------------------------------------------------------
class ReadingRecord(BaseModel):
    """One meter reading (canonical ``readings`` columns)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    meter_id: str = Field(min_length=1, max_length=128, description="the source system's meter code")
    ts: _dt.datetime = Field(description="ISO 8601; naive = Asia/Shanghai local time, or with offset")
    quantity: str = Field(min_length=1, max_length=64, description="what is measured, e.g. active_energy")
    value: float | None = Field(allow_inf_nan=False, description="reading; null = missing")
    unit: str = Field(min_length=1, max_length=32, description="as written, e.g. kWh, Nm3, 万kWh")
    register_: Literal["interval", "cumulative"] | None = Field(
        default=None, alias="register", description="interval (consumption in the interval starting at ts) "
                                                     "or cumulative (register reading at ts)")


class ActivityRecord(BaseModel):
    """One activity record (the columns of the calc template, mapped or not — validated downstream
    by ``workbench.activity``).  Any fields are accepted; the usual ones are typed."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    source: str | None = None
    item: str | None = None
    quantity: float | None = Field(default=None, allow_inf_nan=False)
    unit: str | None = None
    period: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    node_id: str | None = None
    facility: str | None = None
    document: str | None = None

    @model_validator(mode="after")
    def _not_empty(self):
        if not self.model_fields_set and not self.model_extra:
            raise ValueError("empty record")
        return self


class ReadingsPush(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["readings"]
    records: list[ReadingRecord] = Field(min_length=1)


class ActivityPush(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["activity"]
    records: list[ActivityRecord] = Field(min_length=1)


PushPayload = Annotated[ReadingsPush | ActivityPush, Field(discriminator="kind")]
_PAYLOAD = TypeAdapter(PushPayload)
_RECORDS = {"readings": TypeAdapter(list[ReadingRecord]), "activity": TypeAdapter(list[ActivityRecord])}


class PushAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    request_id: str
    source: str
    kind: str
    records: int
    sha256: str
    summary: dict = Field(description="what the ingest step returned (e.g. the lake's ingest report)")


class Problem(Exception):
    def __init__(self, status: int, message: str, errors: list | None = None, headers: dict | None = None,
                 outcome: str = "invalid"):
        super().__init__(message)
        self.status, self.message, self.errors, self.headers, self.outcome = status, message, errors, headers, outcome


def _loc(loc: tuple, *, csv_rows: bool = False) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f" row {part + 1} (line {part + 2})" if csv_rows else f"[{part}]"
        elif part in ("readings", "activity") and not out:
            continue  # the discriminator tag pydantic puts first
        else:
            out += ("." if out and not csv_rows else (": " if out else "")) + str(part)
    return out.strip() or "body"


def _errors(exc: ValidationError, *, prefix: tuple = (), csv_rows: bool = False, limit: int = 50) -> list[dict]:
    out = []
    for e in exc.errors(include_url=False)[:limit]:
        out.append({"loc": _loc(prefix + tuple(e["loc"]), csv_rows=csv_rows), "msg": e["msg"], "type": e["type"]})
    return out


def _parse(body: bytes, content_type: str, kind_hint: str | None, max_records: int) -> tuple[str, list[dict]]:
    """(kind, records as dicts) of a request body, or :class:`Problem`."""
    ctype = content_type.split(";")[0].strip().lower()
    if not body.strip():
        raise Problem(422, "empty body: send {\"kind\": ..., \"records\": [...]} or CSV")
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Problem(422, f"body is not valid JSON: {exc}") from exc
        if isinstance(doc, dict) and isinstance(doc.get("records"), list) and len(doc["records"]) > max_records:
            raise Problem(413, f"too many records ({len(doc['records'])} > {max_records}); split the push",
                          outcome="too_large")
        try:
            payload = _PAYLOAD.validate_python(doc)
        except ValidationError as exc:
            errs = _errors(exc)
            raise Problem(422, f"invalid payload: {len(exc.errors())} problem(s); first: {errs[0]['loc']}: {errs[0]['msg']}",
                          errs) from exc
        return payload.kind, [r.model_dump(exclude_unset=True, by_alias=True) for r in payload.records]
    if ctype in ("text/csv", "application/csv"):
        if kind_hint not in ("readings", "activity"):
            raise Problem(422, "CSV needs the kind: ?kind=readings|activity or header X-Workbench-Kind")
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise Problem(422, f"CSV is not UTF-8: {exc}") from exc
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = []
        for i, row in enumerate(reader):
            if None in row:
                raise Problem(422, f"CSV row {i + 1} (line {reader.line_num}) has more fields than the header")
            rows.append({k.strip(): v.strip() for k, v in row.items() if isinstance(v, str) and v.strip() != ""})
        if reader.fieldnames is None or not rows:
            raise Problem(422, "CSV has no data rows (a header line and at least one row are needed)")
        if len(rows) > max_records:
            raise Problem(413, f"too many records ({len(rows)} > {max_records}); split the push", outcome="too_large")
        try:
            recs = _RECORDS[kind_hint].validate_python(rows)
        except ValidationError as exc:
            errs = _errors(exc, csv_rows=True)
            raise Problem(422, f"invalid CSV: {len(exc.errors())} problem(s); first: {errs[0]['loc']}: {errs[0]['msg']}",
                          errs) from exc
        return kind_hint, [r.model_dump(exclude_unset=True, by_alias=True) for r in recs]
    raise Problem(415, f"unsupported content type '{ctype}': use application/json or text/csv",
                  outcome="unsupported_media_type")


def _printable(text: str, limit: int = 100) -> str:
    """``text`` safe for a log line: control characters escaped, at most ``limit`` characters."""
    text = text[:limit]
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _summary(value) -> dict:
    if value is None:
        return {}
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    elif hasattr(value, "__dataclass_fields__"):
        import dataclasses

        value = dataclasses.asdict(value)
    value = jsonable_encoder(value)
    return value if isinstance(value, dict) else {"result": value}


# ---------------------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------------------
_BEARER = HTTPBearer(auto_error=False, scheme_name="SourceToken",
                     description="Per-source push token (`wbp_<id>.<secret>`), issued with TokenStore.issue")


def create_app(ingest: Callable[[ConnectorResult], Any], tokens: TokenStore | str | os.PathLike, *,
               audit: AuditLog | str | os.PathLike | None = None, max_body_bytes: int = 20 * 2 ** 20,
               max_records: int = 200_000, title: str = "Carbon Efficiency Workbench — push ingestion"):
    """The push-ingestion FastAPI app.  ``ingest(result)`` is called (in a worker thread) once per
    accepted request; ``tokens`` is a :class:`TokenStore` or its file; ``audit`` an :class:`AuditLog`,
    a JSON-lines path or None (memory only).  ``app.state.audit`` / ``app.state.tokens`` expose them."""
    from starlette.concurrency import run_in_threadpool

    store = tokens if isinstance(tokens, TokenStore) else TokenStore(tokens)
    audit_store = audit if isinstance(audit, AuditLog) else AuditLog(audit)

    app = FastAPI(
        title=title,
        version="1.0",
        description=(
            "Enterprise systems (EMS, ERP, MES, meter gateways) push activity data and meter readings "
            "to the workbench (碳效工作台), seed §7.2 b.  Each source system has its own bearer token. "
            "The body is stored in the raw zone exactly as received, then prepared into the curated lake."
        ),
        openapi_tags=[{"name": "push", "description": "data push from source systems"},
                      {"name": "ops", "description": "operations"}],
    )
    app.state.audit = audit_store
    app.state.tokens = store

    json_schema = _PAYLOAD.json_schema(ref_template="#/components/schemas/{model}")
    defs = json_schema.pop("$defs", {})

    @app.get("/v1/health", tags=["ops"], summary="Liveness")
    def health() -> dict:
        return {"status": "ok", "service": "workbench-push", "time": _now()}

    @app.post(
        "/v1/push/{source}",
        tags=["push"],
        status_code=202,
        response_model=PushAccepted,
        summary="Push readings or activity records from a source system",
        responses={
            401: {"description": "no, unknown or revoked token"},
            403: {"description": "the token belongs to another source system"},
            413: {"description": "body or record count too large"},
            415: {"description": "content type other than JSON or CSV"},
            422: {"description": "invalid payload; `errors` lists every problem with its location"},
            500: {"description": "the ingest step failed; nothing was accepted"},
        },
        openapi_extra={
            "parameters": [{"name": "kind", "in": "query", "required": False,
                            "description": "kind of a CSV body (readings | activity)",
                            "schema": {"type": "string", "enum": ["readings", "activity"]}}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": json_schema,
                                         "example": {"kind": "readings", "records": [
                                             {"meter_id": "EMS-0001", "ts": "2024-05-01T00:15:00+08:00",
                                              "quantity": "active_energy", "value": 12.5, "unit": "kWh",
                                              "register": "interval"}]}},
                    "text/csv": {"schema": {"type": "string"},
                                 "example": "meter_id,ts,quantity,value,unit\n"
                                            "EMS-0001,2024-05-01T00:15:00,active_energy,12.5,kWh\n"},
                },
            },
        },
    )
    async def push(request: Request,
                   source: Annotated[str, PathParam(description=f"source system name ({SOURCE_PATTERN}); "
                                                                "must be the source the token was issued for")],
                   credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None):
        request_id = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:10]
        entry: dict = {"time": _now(), "request_id": request_id, "source": _printable(source), "token_id": None,
                       "client": request.client.host if request.client else None, "method": "POST",
                       "path": _printable(request.url.path, 200), "content_type": _printable(request.headers.get("content-type") or ""),
                       "bytes": None, "sha256": None, "kind": None, "records": None}

        def finish(status: int, outcome: str, content: dict, headers: dict | None = None, message: str | None = None):
            entry.update(status=status, outcome=outcome, message=message)
            audit_store.record(entry)
            return JSONResponse(content, status_code=status, headers=headers)

        # 1 who — before reading the body
        challenge = {"WWW-Authenticate": 'Bearer realm="workbench-push"'}
        if credentials is None:
            return finish(401, "unauthorized", {"detail": "missing bearer token (Authorization: Bearer <token>)"},
                          challenge, "no token")
        info = await run_in_threadpool(store.authenticate, credentials.credentials)
        if info is None:
            return finish(401, "unauthorized", {"detail": "invalid or revoked token"},
                          {"WWW-Authenticate": 'Bearer realm="workbench-push", error="invalid_token"'}, "bad token")
        entry["token_id"] = info.token_id
        if info.source != source:
            return finish(403, "forbidden", {"detail": f"this token is not allowed to push as '{source}'"},
                          message=f"token of '{info.source}' used for '{source}'")
        # 2 what
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            return finish(413, "too_large", {"detail": f"body larger than {max_body_bytes} bytes"})
        body = bytearray()
        async for part in request.stream():
            body.extend(part)
            if len(body) > max_body_bytes:
                return finish(413, "too_large", {"detail": f"body larger than {max_body_bytes} bytes"})
        body = bytes(body)
        entry["bytes"] = len(body)
        entry["sha256"] = hashlib.sha256(body).hexdigest()
        kind_hint = request.query_params.get("kind") or request.headers.get("x-workbench-kind")
        try:
            kind, records = _parse(body, request.headers.get("content-type", ""), kind_hint, max_records)
        except Problem as p:
            content = {"detail": p.message}
            if p.errors:
                content["errors"] = p.errors
            return finish(p.status, p.outcome, content, p.headers, p.message)
        entry["kind"], entry["records"] = kind, len(records)
        data = pd.DataFrame.from_records(records)
        is_csv = "csv" in (request.headers.get("content-type") or "")
        meta = {"connector": name, "source": source, "origin": f"POST {request.url.path}",
                "sender": f"{source}:{info.token_id}", "request_id": request_id,
                "content_type": request.headers.get("content-type"), "client": entry["client"],
                "records": len(records)}
        result = ConnectorResult(data, meta, kind=kind, raw=body,
                                 raw_name=f"push-{source}-{request_id}.{'csv' if is_csv else 'json'}")
        # 3 hand on
        try:
            out = await run_in_threadpool(ingest, result)
            summary = _summary(out)
        except Exception as exc:
            log.exception("push %s from %s: ingest failed", request_id, source)
            return finish(500, "error", {"detail": f"ingest failed: {type(exc).__name__}: {exc}",
                                         "request_id": request_id}, message=f"{type(exc).__name__}: {exc}")
        content = PushAccepted(request_id=request_id, source=source, kind=kind, records=len(records),
                               sha256=entry["sha256"], summary=summary).model_dump()
        return finish(202, "accepted", content)

    base_openapi = app.openapi

    def openapi():
        if app.openapi_schema is None:
            schema = base_openapi()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs)
        return app.openapi_schema

    app.openapi = openapi
    return app


def serve(ingest: Callable[[ConnectorResult], Any], tokens, *, host: str = "127.0.0.1", port: int = 8700,
          audit=None, **uvicorn_options) -> None:  # pragma: no cover - thin wrapper
    """Run :func:`create_app` with uvicorn (blocking).  Put TLS in front (or pass ssl_* options)."""
    import uvicorn

    uvicorn.run(create_app(ingest, tokens, audit=audit), host=host, port=port, **uvicorn_options)
