"""Push ingestion over HTTP (seed §7.2 b: enterprise systems preferably *push* their data).

:func:`create_app` returns a FastAPI app with

``POST /v1/push/{source}``  ``Authorization: Bearer <token>``; body JSON
    ``{"kind": "readings" | "activity", "records": [...]}`` or CSV (``Content-Type: text/csv``,
    kind in ``?kind=`` or the ``X-Workbench-Kind`` header).  The payload is validated (pydantic);
    the request body bytes, **exactly as received**, become the raw-zone bytes of a
    :class:`~connectors.ConnectorResult` handed to the ``ingest`` callback (normally
    ``lambda r: workbench.ingestion.ingest(lake, r, sender=r.metadata["sender"])``).
    202 → ``{"status": "accepted", "request_id", "source", "kind", "records", "sha256", "summary"}``
    where ``summary`` is what ``ingest`` returned (a dict, or ``.to_dict()`` of it);
    401 no/unknown/revoked token · 403 a valid token of another source · 413 too large ·
    415 unsupported content type or charset · 422 invalid body or parameters (every problem
    listed, with its location) · 429 too many failed authentications from the client's address
    (``Retry-After``) · 500 ingest failed (or a bug).  Nothing reaches ``ingest`` unless
    authenticated and valid.  Every answer carries ``X-Request-ID`` (the audit entry's id).
``GET /v1/health``  liveness.

**Hostile input.**  The body is checked at the boundary, so whatever is sent gets a 4xx with a
one-line reason (``detail``; ``errors`` lists each problem with its record/row and field) or is
accepted — never a 500:

* JSON must be UTF-8 (RFC 8259; a BOM is tolerated): UTF-16/32, invalid UTF-8 and a declared
  ``charset`` other than UTF-8 are refused.  It is parsed twice: first by pydantic-core's parser
  (jiter), which is strict (no NaN/Infinity, no lone ``\\uD800`` surrogates) and stops at 200
  levels of nesting, then — known to be shallow, so Python's ``json`` cannot run out of
  recursion — by ``json`` with hooks that refuse duplicate keys (two readers of the raw bytes must
  not disagree on a record) and integers beyond any float (400 digits); a float that overflows
  (``1e400`` → inf) is refused by the models, which take finite numbers only.  The root must be
  an object; record fields are scalars (string, number, boolean, null), at most
  :data:`MAX_FIELDS` distinct names per push; ``true`` is no number; meter codes, quantities and
  units hold no control characters or line breaks.
* CSV is decoded as the file connector decodes files (:func:`connectors.files.detect_encoding`:
  UTF-8 with or without BOM, GBK, GB18030, or the declared ``charset``; UTF-16/32, NUL and other
  control characters refused); header names must be unique, a field at most 131,072 characters
  (Python's ``csv`` limit), blank lines and all-blank rows are skipped.
* An activity push must have the required columns (``source, item, quantity, unit``, under their
  names or a :data:`workbench.core.activity.HEADER_ALIASES` alias) and no record whose fields are all
  blank; ``row`` and ``identifier`` are reserved for the lake.
* An unknown query parameter, a kind other than readings/activity, or one that disagrees with the
  body's → 422.  Bodies over ``max_body_bytes`` (20 MiB) or ``max_records`` records → 413.
* Parsing runs in worker threads (at most 4 at a time), never on the event loop.

**Tokens** are per source system and stored **hashed** (scrypt with a random salt per token) in a
JSON file managed by :class:`TokenStore`; the plain token is shown once, by :meth:`TokenStore.issue`.
A token has the form ``wbp_<id>.<secret>``: the id finds the stored hash, the secret is checked in
constant time.  Checking takes one scrypt whether the id exists or not (an unknown id is checked
against a dummy hash of the same cost), in a worker thread.  Failed authentications are counted
per client address (IPv6: per /64) by :class:`AuthThrottle`: after ``auth_failures`` (10) within
``auth_window`` (60 s) the address gets 429 with ``Retry-After`` — answered by the middleware,
before routing, and without any scrypt; one address's checks run one at a time, so a burst of
parallel guesses cannot outrun the count.  Successful authentications do not count and
``/v1/health`` is never throttled; but while an address is throttled all its pushes wait, good
token or not (checking it would cost the scrypt the throttle saves), so a pusher sharing an
address (NAT) with an attacker waits too.  Behind a reverse proxy, run uvicorn with
``--proxy-headers --forwarded-allow-ips=<proxy>`` so that the client address is the real one.

**Audit.** Every request to ``/v1/push/…`` — refused, throttled, failed or crashed, any method —
is kept exactly once in an :class:`AuditLog` (in memory, optionally appended to a JSON-lines
file) and logged (``logging`` logger ``connectors.webhook.audit``): who (source, token id, client
address), what (method, path, content type, kind, records, bytes, sha256), when (time, duration),
outcome (status, outcome, message).  Tokens are never logged.  The record is written by an ASGI
middleware around the app, so an exception anywhere (a bug) is also audited and answered with a
JSON 500 carrying the request id.

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
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import pandas as pd
import pydantic_core
from fastapi import Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect

from workbench.core.errors import WorkbenchError

from . import ConnectorResult

__all__ = [
    "ActivityRecord",
    "AuditLog",
    "AuthThrottle",
    "Problem",
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
PUSH_PREFIX = "/v1/push/"
#: nesting jiter (pydantic-core's JSON parser) accepts; deeper JSON is refused before Python parses it
MAX_JSON_DEPTH = 200
#: distinct field names in one push (a DataFrame of 10^5 sparse columns would exhaust memory)
MAX_FIELDS = 256
#: fields an activity push may not set: the lake reads them as its own row numbers / identifiers
RESERVED_FIELDS = ("row", "identifier")
#: charset names accepted for CSV → the codec used (GB2312/CP936 labels mean GBK in practice)
CSV_CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "gbk": "gbk", "gb2312": "gbk",
                "cp936": "gbk", "gb18030": "gb18030"}
KINDS = ("readings", "activity")


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
        got = hashlib.scrypt(token.encode("utf-8", "surrogatepass"), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=32)
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def _scrypt_params(hashed: str) -> tuple[int, int, int] | None:
    """(n, r, p) of a :func:`hash_token` string, or None."""
    parts = hashed.split("$") if isinstance(hashed, str) else []
    if len(parts) != 6 or parts[0] != "scrypt" or not all(x.isdigit() for x in parts[1:4]):
        return None
    return int(parts[1]), int(parts[2]), int(parts[3])


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
        self._dummies: dict[tuple[int, int, int], str] = {}
        if self.path.exists():
            self._load()
        self._dummy_hash()  # computed now, so the first miss costs no more than any other

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

    def _dummy_hash(self) -> str:
        """A hash of a random secret with the scrypt parameters of the newest active token (of
        ``cost`` when there is none): checking an unknown id against it costs what checking a
        known id costs, so the answer time does not tell which token ids exist."""
        with self._lock:
            tokens = self._data["tokens"]
            params = next((p for t in reversed(tokens) if t.get("revoked_at") is None
                           for p in [_scrypt_params(t.get("hash"))] if p), None)
            params = params or (self.cost, SCRYPT_R, SCRYPT_P)
            if params not in self._dummies:
                n, r, p = params
                self._dummies[params] = hash_token(secrets.token_urlsafe(32), n=n, r=r, p=p)
            return self._dummies[params]

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
        """The source a (non-revoked) ``token`` belongs to, or None.  Runs one scrypt whatever the
        token (malformed, unknown id, revoked, wrong secret, right): call it off the event loop."""
        token = token or ""
        m = _TOKEN_RE.match(token)
        with self._lock:
            self._load()
            entry = None
            if m:
                entry = next((t for t in self._data["tokens"] if t["id"] == m.group(1) and t["revoked_at"] is None), None)
            dummy = self._dummy_hash() if entry is None else None
        if entry is None:
            # same work whether or not the id exists; a malformed token is checked at its usual length
            verify_token(token if m else "wbp_" + "0" * 60, dummy)
            return None
        if not verify_token(token, entry["hash"]):
            return None
        return TokenInfo(entry["id"], entry["source"], entry.get("label"))


# ---------------------------------------------------------------------------------------------
# throttling failed authentications
# ---------------------------------------------------------------------------------------------
def client_key(host: str | None) -> str:
    """The address failed authentications are counted under: the IPv4 address, the /64 of an
    IPv6 address (one host usually holds a whole /64), or the host string as given."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
        if ip.version == 6:
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.ip_network(f"{ip.exploded}/64", strict=False))
        return str(ip)
    except ValueError:
        return host[:100]


class AuthThrottle:
    """Sliding-window count of failed authentications per client address.

    An address with ``max_failures`` failures within the last ``window`` seconds is refused
    (:meth:`retry_after` gives the seconds until its oldest counted failure leaves the window)
    before any token is checked, so a flood of bad tokens costs a dictionary look-up, not a scrypt.
    :meth:`turn` runs one address's token checks one at a time, so parallel guesses are counted
    before the next one is checked.  At most ``max_clients`` addresses are remembered (the one that
    failed longest ago is forgotten first).  Used from the event loop only (no locking).
    """

    def __init__(self, max_failures: int = 10, window: float = 60.0, *, max_clients: int = 65_536,
                 clock: Callable[[], float] = time.monotonic):
        if max_failures < 1 or window <= 0:
            raise ValueError("max_failures must be ≥ 1 and window > 0")
        self.max_failures, self.window = int(max_failures), float(window)
        self.max_clients, self.clock = max_clients, clock
        self._failures: collections.OrderedDict[str, collections.deque] = collections.OrderedDict()
        self._turns: dict[str, list] = {}  # key → [anyio.Lock, users]

    def retry_after(self, key: str) -> int | None:
        """Seconds ``key`` must wait (≥ 1), or None when it may try."""
        q = self._failures.get(key)
        if q is None:
            return None
        now = self.clock()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        if len(q) < self.max_failures:
            return None
        return max(1, math.ceil(q[0] + self.window - now))

    def failed(self, key: str) -> None:
        """Count one failed authentication of ``key``."""
        q = self._failures.get(key)
        if q is None:
            q = self._failures[key] = collections.deque(maxlen=self.max_failures)
        else:
            self._failures.move_to_end(key)
        q.append(self.clock())
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    @contextlib.asynccontextmanager
    async def turn(self, key: str):
        """Serialise the token checks of one address."""
        slot = self._turns.get(key)
        if slot is None:
            slot = self._turns[key] = [anyio.Lock(), 0]
        slot[1] += 1
        try:
            async with slot[0]:
                yield
        finally:
            slot[1] -= 1
            if slot[1] == 0:
                del self._turns[key]


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
        status = entry.get("status")
        level = logging.INFO if isinstance(status, int) and status < 400 else logging.WARNING
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
        # split at "\n" only: a value may hold U+2028 or U+0085 unescaped, where splitlines() would split
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").split("\n") if line.strip()]


# ---------------------------------------------------------------------------------------------
# payload models
# ---------------------------------------------------------------------------------------------
def _no_bool(v):
    """JSON ``true``/``false`` is no number (pydantic would read it as 1.0/0.0)."""
    if isinstance(v, bool):
        raise ValueError("must be a number, not true/false")
    return v


def _scalar(v):
    """A record field of an activity push: string, number, boolean or null — a table cell."""
    if isinstance(v, float) and not math.isfinite(v):  # 1e400 parses to inf
        raise ValueError("number out of range (not a finite 64-bit float)")
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    kind = {list: "an array", dict: "an object"}.get(type(v), type(v).__name__)
    raise ValueError(f"must be a string, number, boolean or null, not {kind}")


#: control characters (C0 but tab, DEL, C1) and line/paragraph separators: never part of a code
_CODE_FORBIDDEN = r"\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029"  # regex escapes, valid in Python and ECMA
_CODE_BAD = re.compile(f"[{_CODE_FORBIDDEN}]")


def _code(v: str) -> str:
    """A meter code, quantity or unit: no control characters or line breaks (they are no part of
    a code, and ``str.splitlines`` — used on such text downstream — would split at them)."""
    m = None if v.isprintable() else _CODE_BAD.search(v)  # isprintable: the fast, common case
    if m:
        raise ValueError(f"contains the control character U+{ord(m.group()):04X}")
    return v


Code = Annotated[str, AfterValidator(_code)]
_CODE_SCHEMA = {"pattern": f"^[^{_CODE_FORBIDDEN}]*$"}  # documented; checked by _code (a plainer message)
Scalar = Annotated[Any, BeforeValidator(_scalar),
                   WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"},
                                             {"type": "null"}]})]


class ReadingRecord(BaseModel):
    """One meter reading (canonical ``readings`` columns)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    meter_id: Code = Field(min_length=1, max_length=128, description="the source system's meter code",
                           json_schema_extra=_CODE_SCHEMA)
    ts: _dt.datetime = Field(description="ISO 8601; naive = Asia/Shanghai local time, or with offset")
    quantity: Code = Field(min_length=1, max_length=64, description="what is measured, e.g. active_energy",
                           json_schema_extra=_CODE_SCHEMA)
    value: float | None = Field(allow_inf_nan=False, description="reading; null = missing")
    unit: Code = Field(min_length=1, max_length=32, description="as written, e.g. kWh, Nm3, 万kWh",
                       json_schema_extra=_CODE_SCHEMA)
    register_: Literal["interval", "cumulative"] | None = Field(
        default=None, alias="register", description="interval (consumption in the interval starting at ts) "
                                                     "or cumulative (register reading at ts)")

    _value_not_bool = field_validator("value", mode="before")(lambda cls, v: _no_bool(v))


class ActivityRecord(BaseModel):
    """One activity record (the columns of the calc template, mapped or not — validated downstream
    by ``workbench.core.activity``).  Any fields are accepted as long as they are scalars (a record is a
    table row); the usual ones are typed.  A record whose fields are all blank is refused (the
    lake would drop it as spreadsheet padding), as are the field names the lake reserves."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)
    __pydantic_extra__: dict[str, Scalar]

    source: str | None = None
    item: str | None = None
    quantity: float | None = Field(default=None, allow_inf_nan=False)
    unit: str | None = None
    period: str | None = Field(default=None, pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    node_id: str | None = None
    facility: str | None = None
    document: str | None = None

    _quantity_not_bool = field_validator("quantity", mode="before")(lambda cls, v: _no_bool(v))

    @model_validator(mode="after")
    def _not_empty(self):
        extra = self.model_extra or {}
        for key in extra:
            if not key.strip():
                raise ValueError("a field name is empty")
            if key in RESERVED_FIELDS:
                raise ValueError(f"field '{key}' is reserved (the lake sets it)")
        values = [getattr(self, f) for f in self.model_fields_set if f in type(self).model_fields]
        values += list(extra.values())
        # blank as the lake sees it (Python's str.strip), so no record the lake would drop gets in
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            raise ValueError("empty record (every field is blank)")
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


class ErrorItem(BaseModel):
    loc: str = Field(description="where: `body`, `records[3].value`, `row 2 (line 3): value`, `query: kind` …")
    msg: str
    type: str


class ProblemDetail(BaseModel):
    """The body of every refusal: one line, then the problems one by one."""

    detail: str = Field(description="what is wrong, on one line")
    errors: list[ErrorItem] | None = Field(default=None, description="every problem found (at most 50)")
    request_id: str | None = None


def _printable(text: str, limit: int = 100) -> str:
    """``text`` safe for one log line: at most ``limit`` characters, each control, separator or
    surrogate character escaped (``\\n``, ``\\x00``, ``\\ud800``); Chinese text stays as it is."""
    text = text[:limit]
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class Problem(WorkbenchError):
    """A request the client must change: ``status`` (4xx), a one-line ``message``, the located
    ``errors``.  :func:`_parse` raises nothing else for any body."""

    def __init__(self, status: int, message: str, errors: list | None = None, headers: dict | None = None,
                 outcome: str = "invalid"):
        # the pusher's own field names and headers appear in messages: keep every message one line
        message = _printable(message, 500)
        errors = [{**e, "loc": _printable(str(e["loc"]), 200), "msg": _printable(e["msg"], 300)}
                  for e in errors] if errors else errors
        super().__init__(message)
        self.status, self.message, self.errors, self.headers, self.outcome = status, message, errors, headers, outcome


# ---------------------------------------------------------------------------------------------
# body parsing
# ---------------------------------------------------------------------------------------------
def _media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """(lower-case media type, lower-case parameters) of a Content-Type header."""
    parts = (header or "").split(";")
    params = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"').strip().lower()
    return parts[0].strip().lower(), params


def _loc(loc: tuple, *, csv_lines: list[int] | None = None) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            if csv_lines is not None and not out:
                line = csv_lines[part] if 0 <= part < len(csv_lines) else part + 2
                out = f"row {part + 1} (line {line})"
            else:
                out += f"[{part}]"
        elif part in KINDS and not out:
            continue  # the discriminator tag pydantic puts first
        else:
            out += ((": " if csv_lines is not None else ".") if out else "") + str(part)
    return out.strip() or "body"


def _errors(exc: ValidationError, *, prefix: tuple = (), csv_lines: list[int] | None = None,
            limit: int = 50) -> list[dict]:
    return [{"loc": _loc(prefix + tuple(e["loc"]), csv_lines=csv_lines), "msg": e["msg"].removeprefix("Value error, "),
             "type": e["type"]} for e in exc.errors(include_url=False)[:limit]]


def _invalid(what: str, errs: list[dict], total: int | None = None) -> Problem:
    total = len(errs) if total is None else total
    return Problem(422, f"{what}: {total} problem(s); first: {errs[0]['loc']}: {errs[0]['msg']}", errs)


class _BadNumber(str):
    """A JSON number that is no finite 64-bit float (kept as its text, to be reported with its place)."""


class _DuplicateKeys(dict):
    """A JSON object that had a key twice (``dups``), to be reported with its place."""

    dups: list


_FLOAT_MAX = sys.float_info.max


class _StrictJson:
    """Python's ``json`` with hooks that mark (not raise — the place is not known yet) duplicate
    keys and integers beyond any float; ``marked`` says whether the document needs a search for
    them.  Floats are parsed natively (``1e400`` → inf): the models refuse non-finite numbers."""

    def __init__(self):
        self.marked = False

    def pairs(self, pairs):
        d = dict(pairs)
        if len(d) != len(pairs):
            self.marked = True
            seen, dups = set(), []
            for k, _ in pairs:
                if k in seen and k not in dups:
                    dups.append(k)
                seen.add(k)
            d = _DuplicateKeys(d)
            d.dups = dups
        return d

    def integer(self, text: str):
        # integers longer than any float are not converted at all (int() is quadratic)
        if len(text) > 330 or abs(v := int(text)) > _FLOAT_MAX:
            self.marked = True
            return _BadNumber(text)
        return v

    def constant(self, text: str):  # NaN, Infinity: refused by jiter before; kept as a second guard
        self.marked = True
        return _BadNumber(text)

    def loads(self, text: str):
        return json.loads(text, object_pairs_hook=self.pairs, parse_int=self.integer, parse_constant=self.constant)


def _marked_problems(doc, limit: int = 50) -> list[dict]:
    """The duplicate keys and bad numbers of ``doc`` with their places (``records[2].value``)."""
    out, stack = [], [("", doc)]
    while stack and len(out) < limit:
        path, v = stack.pop()
        if isinstance(v, _BadNumber):
            out.append({"loc": path or "body", "type": "number_out_of_range",
                        "msg": f"number {v[:40]}{'…' if len(v) > 40 else ''} is out of range (a finite 64-bit float)"})
        elif isinstance(v, dict):
            for k in getattr(v, "dups", ()):
                out.append({"loc": path or "body", "type": "duplicate_key",
                            "msg": f"key '{_printable(k, 60)}' appears more than once"})
            stack.extend((f"{path}.{k}" if path else str(k), x) for k, x in reversed(v.items()))
        elif isinstance(v, list):
            stack.extend((f"{path}[{i}]", x) for i, x in reversed(list(enumerate(v))))
    return out


def _position(body: bytes, line: int, column: int) -> int:
    """Byte offset of jiter's (line, byte column), both 1-based."""
    start = 0
    for _ in range(line - 1):
        start = body.index(b"\n", start) + 1
    return start + column - 1


def _json_error_message(exc: ValueError, body: bytes) -> str:
    """jiter's message, made plainer for the cases a pusher can hardly guess."""
    msg = str(exc)
    m = re.search(r" at line (\d+) column (\d+)$", msg)
    where = m.group(0) if m else ""
    what = msg[: m.start()] if m else msg
    if m and what in ("expected value", "invalid number"):
        with contextlib.suppress(ValueError):
            pos = _position(body, int(m.group(1)), int(m.group(2)))
            near = body[max(0, pos - 1): pos + 9]
            if re.match(rb"-?(NaN|Infinity)|.(NaN|Infinity)", near, re.DOTALL):
                what = "NaN and Infinity are not JSON numbers (RFC 8259)"
    if what == "recursion limit exceeded":
        what = f"nested more than {MAX_JSON_DEPTH} levels deep"
    elif "surrogate" in what or what == "unexpected end of hex escape":
        what = "a \\uD800-\\uDFFF escape that is not half of a surrogate pair (no Unicode character)"
    elif what == "number out of range":
        what = "a number with too many digits"
    return f"body is not valid JSON: {what}{where}"


def _load_json(body: bytes):
    """The JSON document of ``body`` (UTF-8, optional BOM), or :class:`Problem` 422."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(body) >= 2 and b"\x00" in body[:4]):
        raise Problem(422, "body is UTF-16 or UTF-32: JSON must be UTF-8 (RFC 8259)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        col = exc.start - (body.rfind(b"\n", 0, exc.start) + 1) + 1
        raise Problem(422, f"body is not UTF-8: byte 0x{body[exc.start]:02x} at line {line} column {col} "
                           "(JSON must be UTF-8, RFC 8259)") from None
    # 1) strict, bounded-depth parse (jiter): syntax, nesting, NaN, lone surrogates, giant numbers
    try:
        pydantic_core.from_json(body, allow_inf_nan=False, cache_strings=False)
    except ValueError as exc:
        raise Problem(422, _json_error_message(exc, body)) from None
    # 2) the document itself, with duplicate keys and non-finite numbers marked (depth ≤ 200 here)
    parser = _StrictJson()
    try:
        doc = parser.loads(text)
    except ValueError as exc:  # not expected after (1); kept so that nothing but Problem leaves
        raise Problem(422, f"body is not valid JSON: {exc}") from None
    if parser.marked:
        errs = _marked_problems(doc)
        raise _invalid("invalid JSON", errs)
    return doc


def _check_kind(kind: str | None, where: str) -> str | None:
    if kind is not None and kind not in KINDS:
        raise Problem(422, f"{where} must be 'readings' or 'activity', not '{_printable(kind, 40)}'",
                      [{"loc": where, "msg": "must be readings or activity", "type": "enum"}])
    return kind


def _kind_hint(query_kind: str | None, header_kind: str | None) -> str | None:
    """The kind given outside the body (``?kind=`` / ``X-Workbench-Kind``), checked."""
    q = _check_kind(query_kind, "query: kind")
    h = _check_kind(header_kind, "header: X-Workbench-Kind")
    if q and h and q != h:
        raise Problem(422, f"?kind={q} and X-Workbench-Kind: {h} disagree")
    return q or h


def _parse_json(body: bytes, kind_hint: str | None, max_records: int) -> tuple[str, list[dict]]:
    doc = _load_json(body)
    if not isinstance(doc, dict):
        got = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(doc), "a number")
        raise Problem(422, f"the body must be a JSON object {{\"kind\": ..., \"records\": [...]}}, not {got}",
                      [{"loc": "body", "msg": f"must be an object, not {got}", "type": "model_type"}])
    records = doc.get("records")
    if isinstance(records, list) and len(records) > max_records:
        raise Problem(413, f"too many records ({len(records)} > {max_records}); split the push", outcome="too_large")
    try:
        payload = _PAYLOAD.validate_python(doc)
    except ValidationError as exc:
        raise _invalid("invalid payload", _errors(exc), exc.error_count()) from None
    if kind_hint and kind_hint != payload.kind:
        raise Problem(422, f"the body's kind '{payload.kind}' differs from the kind '{kind_hint}' given "
                           "in ?kind= / X-Workbench-Kind")
    return payload.kind, [r.model_dump(exclude_unset=True, by_alias=True) for r in payload.records]


def _decode_csv(body: bytes, charset: str | None) -> str:
    from .files import FileFormatError, detect_encoding

    try:
        text, _ = detect_encoding(body, origin="CSV body", encoding=charset)
    except FileFormatError as exc:  # its row is the physical line (header = 1): say line, as below
        where = [f"line {exc.row}"] if exc.row is not None else []
        where += [f"column '{exc.column}'"] if exc.column else []
        raise Problem(422, f"CSV {', '.join(where) or 'body'}: {exc.message}") from None
    return text


def _parse_csv(body: bytes, charset: str | None, kind: str | None, max_records: int) -> tuple[str, list[dict]]:
    if kind is None:
        raise Problem(422, "CSV needs the kind: ?kind=readings|activity or header X-Workbench-Kind")
    reader = csv.reader(io.StringIO(_decode_csv(body, charset), newline=""))
    rows: list[dict] = []
    lines: list[int] = []  # physical line each record starts on
    try:
        header = next(reader, None)
        if header is None:
            raise Problem(422, "CSV has no header line")
        names = [h.strip() for h in header]
        if len(names) > MAX_FIELDS:
            raise Problem(422, f"CSV header has {len(names)} columns (at most {MAX_FIELDS})")
        first: dict[str, int] = {}
        for i, h in enumerate(names):
            if h and h in first:
                raise Problem(422, f"CSV header: column '{_printable(h, 60)}' appears twice "
                                   f"(columns {first[h] + 1} and {i + 1})")
            first.setdefault(h, i)
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue  # blank line or spreadsheet padding (,,,)
            n = len(rows) + 1
            if len(cells) > len(names):
                raise Problem(422, f"CSV row {n} (line {line}) has more fields than the header "
                                   f"({len(cells)} > {len(names)})")
            rec = {}
            for col, (h, v) in enumerate(zip(names, cells)):
                if not v.strip():
                    continue
                if not h:
                    raise Problem(422, f"CSV row {n} (line {line}): a value in column {col + 1}, which has "
                                       "no name in the header")
                rec[h] = v.strip()
            rows.append(rec)
            lines.append(line)
            if len(rows) > max_records:
                raise Problem(413, f"too many records (> {max_records}); split the push", outcome="too_large")
    except csv.Error as exc:
        raise Problem(422, f"CSV line {reader.line_num}: {exc}") from None
    if not rows:
        raise Problem(422, "CSV has no data rows (a header line and at least one row are needed)")
    try:
        recs = _RECORDS[kind].validate_python(rows)
    except ValidationError as exc:
        raise _invalid("invalid CSV", _errors(exc, csv_lines=lines), exc.error_count()) from None
    return kind, [r.model_dump(exclude_unset=True, by_alias=True) for r in recs]


def _check_columns(kind: str, records: list[dict]) -> None:
    """A push's columns: few enough for a table, and an activity push has the required ones."""
    columns = set().union(*records)
    if len(columns) > MAX_FIELDS:
        raise Problem(422, f"the records have {len(columns)} distinct fields (at most {MAX_FIELDS})")
    if kind == "activity":
        from workbench.core.activity import ActivityDataError, normalize_activity

        try:  # the header check of the one validation path (aliases, bilingual headers), on no rows
            normalize_activity(pd.DataFrame(columns=sorted(columns)), origin="push")
        except ActivityDataError as exc:
            header = [p for p in exc.problems if p.row == 1]
            if header:
                raise Problem(422, f"activity push: {header[0].message}",
                              [{"loc": "records", "msg": header[0].message, "type": "missing_columns"}]) from None


def _parse(body: bytes, content_type: str | None, kind_hint: str | None, max_records: int,
           header_kind: str | None = None) -> tuple[str, list[dict]]:
    """(kind, records as dicts) of a request body, or :class:`Problem` (4xx) — nothing else.

    ``content_type``: the Content-Type header (missing = JSON); ``kind_hint``: ``?kind=`` (and
    ``header_kind`` the ``X-Workbench-Kind`` header), checked against the body's kind for JSON,
    needed for CSV."""
    ctype, params = _media_type(content_type)
    kind = _kind_hint(kind_hint, header_kind)
    charset = params.get("charset")
    if not body.strip():
        raise Problem(422, "empty body: send {\"kind\": ..., \"records\": [...]} or CSV")
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        if charset is not None and charset not in ("utf-8", "utf8"):
            raise Problem(415, f"charset '{_printable(charset, 40)}' is not supported: JSON must be UTF-8 (RFC 8259)",
                          outcome="unsupported_media_type")
        kind, records = _parse_json(body, kind, max_records)
    elif ctype in ("text/csv", "application/csv"):
        if charset is not None and charset not in CSV_CHARSETS:
            raise Problem(415, f"charset '{_printable(charset, 40)}' is not supported for CSV: use utf-8, gbk "
                               "or gb18030", outcome="unsupported_media_type")
        kind, records = _parse_csv(body, CSV_CHARSETS.get(charset), kind, max_records)
        try:
            _check_columns(kind, records)
        except Problem as p:  # a CSV column whose every cell is blank gives no field at all
            if p.errors and p.errors[0]["type"] == "missing_columns":
                p.message += "; a column blank in every row counts as missing"
            raise
        return kind, records
    else:
        raise Problem(415, f"unsupported content type '{_printable(ctype, 60)}': use application/json or text/csv",
                      outcome="unsupported_media_type")
    _check_columns(kind, records)
    return kind, records


def _summary(value) -> dict:
    """What ``ingest`` returned, as a JSON object (stored data is never reported as a failure
    because its report does not serialise: then the report's text is given)."""
    if value is None:
        return {}
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    elif hasattr(value, "__dataclass_fields__"):
        import dataclasses

        value = dataclasses.asdict(value)
    try:
        value = jsonable_encoder(value)
    except (TypeError, ValueError):
        return {"result": _printable(str(value), 500)}
    return value if isinstance(value, dict) else {"result": value}


def _prepare(body: bytes, content_type: str | None, query_kind: str | None, header_kind: str | None,
             max_records: int) -> tuple[str, pd.DataFrame, str]:
    """(kind, records as a table, sha256 of the body) — the CPU work of a push, for a worker
    thread.  A :class:`Problem` carries the sha256 too (the audit keeps it for refusals)."""
    sha256 = hashlib.sha256(body).hexdigest()
    try:
        kind, records = _parse(body, content_type, query_kind, max_records, header_kind)
    except Problem as p:
        p.sha256 = sha256
        raise
    return kind, pd.DataFrame.from_records(records), sha256


# ---------------------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------------------
_BEARER = HTTPBearer(auto_error=False, scheme_name="SourceToken",
                     description="Per-source push token (`wbp_<id>.<secret>`), issued with TokenStore.issue")
_AUDIT_KEY = "connectors.webhook.audit"
_OUTCOMES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
             429: "rate_limited"}


def _throttled(wait: int) -> JSONResponse:
    return JSONResponse({"detail": f"too many failed authentications from this address; retry after {wait} s"},
                        status_code=429, headers={"Retry-After": str(wait)})


class _AuditMiddleware:
    """Keeps one audit entry for every request under ``/v1/push/``, whatever happens inside.

    A POST from an address :class:`AuthThrottle` refuses is answered here (429), before routing.
    The entry (who/what/when) is made before the app runs and put in the ASGI scope; the push
    handler fills in what it learns (token id, kind, records, outcome).  The entry gets the status
    actually sent and is recorded just before the last body chunk goes out — so a client that has
    its answer can rely on the audit having it — or, when the app raises (a bug, answered here
    with a JSON 500) or is cancelled, then.  The router's own 404/405 answers are audited too."""

    def __init__(self, app, audit: AuditLog, throttle: AuthThrottle | None = None):
        self.app, self.audit, self.throttle = app, audit, throttle

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(PUSH_PREFIX.rstrip("/")):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        client = scope.get("client")
        entry = {"time": _now(),
                 "request_id": _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:10],
                 "source": _printable(scope["path"][len(PUSH_PREFIX):]) or None, "token_id": None,
                 "client": client[0] if client else None, "method": scope.get("method"),
                 "path": _printable(scope["path"], 200), "content_type": _printable(headers.get("content-type", "")),
                 "bytes": None, "sha256": None, "kind": None, "records": None,
                 "status": None, "outcome": None, "message": None}
        scope[_AUDIT_KEY] = entry
        state = {"status": None, "recorded": False}

        def record():
            if not state["recorded"]:
                state["recorded"] = True
                self._record(entry, state["status"], started)

        async def send_audited(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", entry["request_id"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record()
            await send(message)

        wait = None
        if self.throttle is not None and scope.get("method") == "POST":
            wait = self.throttle.retry_after(client_key(entry["client"]))
        try:
            if wait:  # fast path for a flood from a throttled address: no routing, no dependencies
                entry.update(outcome="rate_limited", message=f"throttled for {wait} s")
                await _throttled(wait)(scope, receive, send_audited)
            else:
                await self.app(scope, receive, send_audited)
        except Exception as exc:  # a bug: answer it, keep it
            log.exception("push %s: unhandled %s", entry["request_id"], type(exc).__name__)
            entry["outcome"] = "error"
            entry["message"] = _printable(f"internal error: {type(exc).__name__}: {exc}", 300)
            if state["status"] is None:
                response = JSONResponse({"detail": f"internal error; request id {entry['request_id']}",
                                         "request_id": entry["request_id"]}, status_code=500)
                with contextlib.suppress(Exception):
                    await response(scope, receive, send_audited)
        except BaseException:  # cancelled (client gone, shutdown): keep it, then let it go on
            entry["outcome"] = entry["outcome"] or "cancelled"
            record()
            raise
        finally:
            record()

    def _record(self, entry, status, started):
        entry["status"] = status
        if entry["outcome"] is None:
            entry["outcome"] = (_OUTCOMES.get(status) or ("accepted" if status and status < 300 else
                                                          "rejected" if status and status < 500 else "error"))
        entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        try:
            self.audit.record(entry)
        except Exception:  # the audit store itself failed (disk full …): say so loudly
            log.exception("push %s: could not write the audit entry %s", entry["request_id"], entry)


def create_app(ingest: Callable[[ConnectorResult], Any], tokens: TokenStore | str | os.PathLike, *,
               audit: AuditLog | str | os.PathLike | None = None, max_body_bytes: int = 20 * 2 ** 20,
               max_records: int = 200_000, auth_failures: int = 10, auth_window: float = 60.0,
               max_parallel_parses: int = 4,
               title: str = "Carbon Efficiency Workbench — push ingestion"):
    """The push-ingestion FastAPI app.  ``ingest(result)`` is called (in a worker thread) once per
    accepted request; ``tokens`` is a :class:`TokenStore` or its file; ``audit`` an :class:`AuditLog`,
    a JSON-lines path or None (memory only).  ``auth_failures`` failed authentications per client
    address within ``auth_window`` seconds lead to 429 (:class:`AuthThrottle`); at most
    ``max_parallel_parses`` bodies are parsed at once (memory).  ``app.state.audit`` /
    ``app.state.tokens`` / ``app.state.throttle`` expose them."""
    store = tokens if isinstance(tokens, TokenStore) else TokenStore(tokens)
    audit_store = audit if isinstance(audit, AuditLog) else AuditLog(audit)
    throttle = AuthThrottle(auth_failures, auth_window)
    parse_slots = anyio.CapacityLimiter(max_parallel_parses)

    app = FastAPI(
        title=title,
        version="1.0",
        description=(
            "Enterprise systems (EMS, ERP, MES, meter gateways) push activity data and meter readings "
            "to the workbench (碳效工作台), seed §7.2 b.  Each source system has its own bearer token. "
            "The body is stored in the raw zone exactly as received, then prepared into the curated lake. "
            "Every refusal is JSON with a one-line `detail` and, where it applies, `errors` naming the "
            "record/row and field."
        ),
        openapi_tags=[{"name": "push", "description": "data push from source systems"},
                      {"name": "ops", "description": "operations"}],
    )
    app.state.audit = audit_store
    app.state.tokens = store
    app.state.throttle = throttle
    app.add_middleware(_AuditMiddleware, audit=audit_store, throttle=throttle)

    json_schema = _PAYLOAD.json_schema(ref_template="#/components/schemas/{model}")
    defs = json_schema.pop("$defs", {})
    for model in ("ReadingsPush", "ActivityPush"):  # the record limit is the app's (413 above it)
        defs[model]["properties"]["records"]["maxItems"] = max_records

    request_id = {"X-Request-ID": {"description": "the id of this request's audit entry",
                                   "schema": {"type": "string"}}}

    def problem(description: str, headers: dict | None = None) -> dict:
        return {"description": description, "model": ProblemDetail, "headers": {**request_id, **(headers or {})}}

    www_authenticate = {"WWW-Authenticate": {"description": "Bearer challenge", "schema": {"type": "string"}}}

    @app.get("/v1/health", tags=["ops"], summary="Liveness")
    async def health() -> dict:  # async: answered on the loop, never queued behind busy worker threads
        return {"status": "ok", "service": "workbench-push", "time": _now()}

    @app.post(
        "/v1/push/{source}",
        tags=["push"],
        status_code=202,
        response_model=PushAccepted,
        summary="Push readings or activity records from a source system",
        responses={
            202: {"description": "accepted and handed to the ingest step", "headers": request_id},
            401: problem("no, unknown or revoked token", www_authenticate),
            403: problem("the token belongs to another source system"),
            413: problem("body larger than the limit, or too many records"),
            415: problem("content type other than JSON or CSV, or an unsupported charset"),
            422: problem("invalid body or kind; `errors` lists every problem with its location"),
            429: problem("too many failed authentications from this address; retry after `Retry-After` s",
                         {"Retry-After": {"description": "seconds", "schema": {"type": "integer", "minimum": 1}}}),
            500: problem("the ingest step failed (or a bug); nothing was accepted"),
        },
        openapi_extra={
            "parameters": [
                {"name": "kind", "in": "query", "required": False,
                 "description": "kind of the body: needed for CSV; for JSON it must agree with the body's `kind`",
                 "schema": {"type": "string", "enum": list(KINDS)}},
                {"name": "X-Workbench-Kind", "in": "header", "required": False,
                 "description": "the same as `?kind=` (for clients that cannot change the URL)",
                 "schema": {"type": "string", "enum": list(KINDS)}},
            ],
            "requestBody": {
                "required": True,
                "description": f"at most {max_body_bytes} bytes; JSON must be UTF-8; CSV may be UTF-8, GBK "
                               "or GB18030 (`charset=` parameter, or detected)",
                "content": {
                    "application/json": {"schema": json_schema,
                                         "example": {"kind": "readings", "records": [
                                             {"meter_id": "EMS-0001", "ts": "2024-05-01T00:15:00+08:00",
                                              "quantity": "active_energy", "value": 12.5, "unit": "kWh",
                                              "register": "interval"}]}},
                    "text/csv": {"schema": {"type": "string", "maxLength": max_body_bytes},
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
        entry: dict = request.scope[_AUDIT_KEY]
        entry["source"] = _printable(source)
        request_id = entry["request_id"]

        def finish(status: int, outcome: str, content: dict, headers: dict | None = None, message: str | None = None):
            entry.update(outcome=outcome, message=message)
            return JSONResponse(content, status_code=status, headers=headers)

        # 1 who — before reading the body (an address that keeps failing was refused by the middleware)
        key = client_key(entry["client"])
        challenge = {"WWW-Authenticate": 'Bearer realm="workbench-push"'}
        if credentials is None:
            throttle.failed(key)
            return finish(401, "unauthorized", {"detail": "missing bearer token (Authorization: Bearer <token>)"},
                          challenge, "no token")
        async with throttle.turn(key):
            wait = throttle.retry_after(key)  # the guesses queued before this one may have failed
            if wait:
                entry.update(outcome="rate_limited", message=f"throttled for {wait} s")
                return _throttled(wait)
            info = await run_in_threadpool(store.authenticate, credentials.credentials)
            if info is None:
                throttle.failed(key)
                return finish(401, "unauthorized", {"detail": "invalid or revoked token"},
                              {"WWW-Authenticate": 'Bearer realm="workbench-push", error="invalid_token"'}, "bad token")
        entry["token_id"] = info.token_id
        if info.source != source:
            return finish(403, "forbidden", {"detail": f"this token is not allowed to push as '{_printable(source)}'"},
                          message=f"token of '{info.source}' used for '{_printable(source)}'")
        # 2 what — an unknown or repeated query parameter is a mistake worth telling (?knd=activity)
        unknown = sorted({k for k in request.query_params if k != "kind"})
        if unknown or len(request.query_params.getlist("kind")) > 1:
            msg = (f"unknown query parameter '{_printable(unknown[0], 60)}' (the only one is kind)" if unknown
                   else "query parameter kind given more than once")
            return finish(422, "invalid", {"detail": msg, "errors": [
                {"loc": f"query: {_printable(unknown[0], 60) if unknown else 'kind'}", "msg": msg, "type": "query"}]},
                message=msg)
        declared = request.headers.get("content-length") or ""
        if declared.isascii() and declared.isdigit() and int(declared) > max_body_bytes:
            return finish(413, "too_large", {"detail": f"body larger than {max_body_bytes} bytes"})
        body = bytearray()
        try:
            async for part in request.stream():
                body.extend(part)
                if len(body) > max_body_bytes:
                    return finish(413, "too_large", {"detail": f"body larger than {max_body_bytes} bytes"})
        except ClientDisconnect:
            entry["bytes"] = len(body)
            return finish(499, "client_disconnected", {"detail": "the client went away"},
                          message=f"disconnected after {len(body)} bytes")
        body = bytes(body)
        entry["bytes"] = len(body)
        content_type = request.headers.get("content-type")
        try:
            kind, data, entry["sha256"] = await anyio.to_thread.run_sync(
                _prepare, body, content_type, request.query_params.get("kind"),
                request.headers.get("x-workbench-kind"), max_records, limiter=parse_slots)
        except Problem as p:
            entry["sha256"] = p.sha256
            content = {"detail": p.message}
            if p.errors:
                content["errors"] = p.errors
            return finish(p.status, p.outcome, content, p.headers, p.message)
        entry["kind"], entry["records"] = kind, len(data)
        is_csv = _media_type(content_type)[0].endswith("csv")
        meta = {"connector": name, "source": source, "origin": f"POST {request.url.path}",
                "sender": f"{source}:{info.token_id}", "request_id": request_id,
                "content_type": content_type, "client": entry["client"],
                "records": len(data), "sha256": entry["sha256"]}
        result = ConnectorResult(data, meta, kind=kind, raw=body,
                                 raw_name=f"push-{source}-{request_id}.{'csv' if is_csv else 'json'}")
        # 3 hand on
        try:
            out = await run_in_threadpool(ingest, result)
        except Exception as exc:
            log.exception("push %s from %s: ingest failed", request_id, source)
            return finish(500, "error", {"detail": _printable(f"ingest failed: {type(exc).__name__}: {exc}", 500),
                                         "request_id": request_id},
                          message=_printable(f"{type(exc).__name__}: {exc}", 300))
        content = PushAccepted(request_id=request_id, source=source, kind=kind, records=len(data),
                               sha256=entry["sha256"], summary=_summary(out)).model_dump()
        return finish(202, "accepted", content)

    base_openapi = app.openapi

    def openapi():
        if app.openapi_schema is None:
            schema = base_openapi()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs)
            op = schema["paths"]["/v1/push/{source}"]["post"]
            for param in op["parameters"]:
                if param["name"] == "source":  # documented, not validated before authentication
                    param["schema"].update(pattern=SOURCE_PATTERN, maxLength=64)
        return app.openapi_schema

    app.openapi = openapi
    return app


def serve(ingest: Callable[[ConnectorResult], Any], tokens, *, host: str = "127.0.0.1", port: int = 8700,
          audit=None, app_options: dict | None = None, **uvicorn_options) -> None:  # pragma: no cover - thin wrapper
    """Run :func:`create_app` with uvicorn (blocking).  Put TLS in front (or pass ssl_* options);
    behind a proxy pass ``proxy_headers=True, forwarded_allow_ips=...`` so that failed
    authentications are counted per real client address."""
    import uvicorn

    uvicorn.run(create_app(ingest, tokens, audit=audit, **(app_options or {})), host=host, port=port,
                **uvicorn_options)
