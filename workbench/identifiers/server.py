"""Enterprise identifier node: Handle.net-compatible JSON REST API over a :class:`HandleStore`.

``create_app(store, prefix, admins=["300:88.100.24/admin"])`` serves (reference: identifiers-and-iot.md):

====== ======================================= =================================================
GET    /api/handles/{prefix}/{suffix}          ``index=`` / ``type=`` (repeat, union), ``publicOnly=``
PUT    /api/handles/{prefix}/{suffix}          ``overwrite=`` (default true), ``index=`` (repeat / ``various``)
PUT    /api/handles/{prefix}/?mintNewSuffix=true  201 + the minted handle
DELETE /api/handles/{prefix}/{suffix}          ``index=`` (repeat); none deletes the handle
GET    /api/handles?prefix=P                   ``page`` (0-based), ``pageSize`` (0 → count only); authenticated
GET    /api/hrls/handles/?URL=…  (and /hrls/handles/)  reverse look-up → JSON list of handles
POST   /api/batch                              ``{"records": [{"handle", "values"}, …]}`` (≤ 2,000):
                                               idempotent bulk registration in one transaction
====== ======================================= =================================================

Resolution (seed §10.2.3).  ``create_app`` returns an :class:`IdentifierNode`, a plain ASGI app in
front of the FastAPI one: an anonymous ``GET /api/handles/{prefix}/{suffix}`` without query
parameters for a handle of OUR prefix is answered from a :class:`~workbench.identifiers.resolver.RecordCache`
(or straight from the store when ``cache_size=0``) without FastAPI's routing overhead — the same
JSON as the full route; a GET for a prefix we do not own is forwarded to the configured upstream
node (longest prefix match, ``*`` default) and its answer cached for its ttl (stale answers are
served, marked ``x-cache: STALE``, while the upstream is unreachable).  Everything else goes to
the FastAPI app.

Every JSON reply carries ``responseCode`` and ``handle`` (``message`` on errors).  Writes need
HTTP Basic authentication as ``index:prefix/suffix`` (user URL-encoded, ``300%3A88.100.24/admin``)
checked against the hashed HS_SECKEY at that index, or a service's ``Authorization: Bearer``
token (issued for such an identity, stored as a sha256 digest, revocable, optionally expiring).  Authorisation:

* identities in ``admins`` (prefix administrators, i.e. holders of ``0.NA/<prefix>``) may do anything;
* others need an HS_ADMIN value of the *existing* record naming them (directly, or via an
  HS_VLIST group handle in this store) with the permission bit for the operation
  (add/modify/remove value, add/modify/remove admin, delete handle, read value).

Non-public values (``pub_read`` false, always the case for HS_SECKEY) are returned only to
authenticated callers with read permission.

Status mapping (HTTP status · Handle ``responseCode``):

====== ==============================================================================
200    rc 1 success; rc 200 "values not found" when a resolution's filters match nothing
201    rc 1, handle created
400    rc 102 invalid handle · rc 202 invalid value, parameter or body (not JSON, too large,
       nested deeper than 32, lone surrogates or NUL in text, numbers out of range,
       conflicting repeats of a one-valued parameter) · rc 200 values not found (writes) ·
       rc 301 prefix not ours
401    rc 402 authentication needed (no credentials, or an unknown scheme)
403    rc 403 authentication failed · rc 400 insufficient permissions
404    rc 100 handle not found · rc 4 no such route
405    rc 5 method not supported on this route
409    rc 101 handle exists · rc 201 value exists
415    rc 4 body is not ``application/json``
429    rc 3 too many failed logins from this client address (``Retry-After`` header, seconds)
502    rc 2 upstream node unreachable (forwarded resolutions only) · 508 rc 2 resolution loop
====== ==============================================================================

A 500 (rc 2) means a bug in the node, never bad input: every input is validated where it
enters (bounded integers, valid UTF-8 text without NUL, JSON depth and size limits, one value per
one-valued parameter), and refused with a 4xx.

Hardening.  Password checks (scrypt) run in a small thread pool (``auth_concurrency`` threads, 1 by
default) off the event loop, so resolution is not slowed by a flood of wrong passwords; an unknown
user costs the same scrypt as a known one (:meth:`HandleStore.verify`).  Failed logins are limited
per client address by a token bucket (:class:`LoginLimiter`: ``login_burst`` failures, refilled at
``login_per_minute``): a request that presents credentials takes a token before they are checked,
and gets it back if they are right; with the bucket empty it is answered 429 (rc 3, ``Retry-After``)
without any hashing, before any routing, after a delay of up to ``login_tarpit`` (1 s) so that a
client repeating it is slowed down rather than served cheap refusals at full speed.  Anonymous
requests never touch the limiter.  Every refused request (4xx other than "not found" and "exists";
429s as one row per client per 10 s with the count of the others) is logged to the ``workbench.identifiers.refusals`` logger and kept in
the store's ``refusals`` table (:class:`RefusalLog`: client address, identity or claimed identity,
method, path as sent, status, rc, reason, time; :meth:`HandleStore.refusals`, ``workbench idnode
refusals``).  The OpenAPI document at ``/openapi.json`` describes every parameter, body and reply.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import concurrent.futures
import contextlib
import json
import logging
import math
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterable
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from workbench.core.errors import WorkbenchError
from workbench.identifiers.model import (
    FORMATS,
    MAX_INDEX,
    MAX_TTL,
    STRING_MAX_BYTES,
    TYPE_MAX_CHARS,
    HandleRecord,
    HandleValue,
    HandleValueError,
    Identifier,
    IdentifierError,
    _ascii_lower,
    parse_identifier,
    parse_permissions,
)
from workbench.identifiers.resolver import (
    ForwardCache,
    RecordCache,
    Upstreams,
    answer_ttl,
)
from workbench.identifiers.store import HandleStore, StoreError, _now

__all__ = ["ApiError", "IdentifierNode", "LoginLimiter", "RefusalLog", "create_app"]

log = logging.getLogger(__name__)
refusal_logger = logging.getLogger("workbench.identifiers.refusals")

MAX_BODY_BYTES = 64 * 1024
MAX_BATCH_RECORDS = 2000
MAX_BATCH_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 32                      # a Handle record needs 6; site data a few more
MAX_PAGE = 2**31 - 1
MAX_PAGE_SIZE = 10_000
MAX_REVERSE_LIMIT = 10_000
DEFAULT_REVERSE_LIMIT = 1000
MAX_REVERSE_FILTERS = 8
MAX_REPEATS = 100                        # values of one repeatable query parameter
MAX_HOPS = 8
HOPS_HEADER = "x-resolution-hops"
HTTP_STATUS = {1: 200, 2: 500, 3: 429, 4: 400, 5: 405, 100: 404, 101: 409, 102: 400, 200: 400, 201: 409,
               202: 400, 301: 400, 402: 401}
RC_SERVER_TOO_BUSY = 3
RC_PROTOCOL_ERROR = 4
RC_OPERATION_NOT_SUPPORTED = 5
RC_INSUFFICIENT_PERMISSIONS = 400
RC_AUTHENTICATION_NEEDED = 402
RC_AUTHENTICATION_FAILED = 403
# answers that are refusals (logged and kept); 404 "handle not found" and 409 "exists" are not
REFUSAL_STATUSES = frozenset({400, 401, 403, 405, 413, 415, 429, 431, 508})
DEFAULT_LOGIN_BURST = 10
DEFAULT_LOGIN_PER_MINUTE = 6.0
DEFAULT_AUTH_CONCURRENCY = 1
DEFAULT_LOGIN_TARPIT = 1.0

_DIGITS = re.compile(r"[0-9]{1,10}")                 # ASCII only; str.isdigit() also takes '²'
_PREFIX_PATTERN = r"^88(\.[0-9]{1,10}){2,8}$"
_TYPE_PATTERN = r"^[^\s\x00-\x1f\x7f]+$"


class ApiError(WorkbenchError):
    """A refusal: Handle response code ``rc``, a one-line ``message``, the ``handle`` concerned."""

    def __init__(self, rc: int, message: str, handle: str | None = None, status: int | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.rc, self.message, self.handle = rc, message, handle
        self.status = status or HTTP_STATUS.get(rc, 403 if 400 <= rc < 500 else 400)
        self.headers = headers


def _json_bytes(obj) -> bytes:
    """Compact JSON, UTF-8; text UTF-8 cannot carry (a lone surrogate echoed from a request) is
    written as a JSON ``\\u`` escape instead of failing."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")


class HandleJSONResponse(JSONResponse):
    """The node's JSON reply (see :func:`_json_bytes`)."""

    def render(self, content) -> bytes:
        return _json_bytes(content)


def _reply(rc: int, handle: str | None, status: int = 200, headers: dict | None = None,
           **extra) -> HandleJSONResponse:
    return HandleJSONResponse({"responseCode": rc, "handle": handle, **extra}, status_code=status,
                              headers=headers)


def _identity_text(index: int, handle: str) -> str:
    return f"{index}:{handle}"


_dumps = _json_bytes


def _safe_text(text: str, limit: int = 500) -> str:
    """``text`` cut to ``limit`` and made storable: no lone surrogates, no NUL."""
    text = text[:limit]
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")


def _client_of(scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


# --------------------------------------------------------------------------- failed-login limiter


class LoginLimiter:
    """Failed logins per client address: a token bucket each (thread-safe).

    A client holds up to ``burst`` tokens, refilled at ``per_minute`` per minute.  A request
    presenting credentials takes one (:meth:`acquire`) before they are checked and gives it back
    when they are right (:meth:`refund`), so only failures use the bucket up, and a client with an
    empty bucket is refused before any password is hashed.  ``burst=0`` disables the limiter.
    At most ``max_clients`` buckets are kept (least recently used dropped: a fresh bucket is full).
    """

    def __init__(self, burst: int = DEFAULT_LOGIN_BURST, per_minute: float = DEFAULT_LOGIN_PER_MINUTE,
                 max_clients: int = 100_000):
        if burst < 0 or per_minute <= 0 or max_clients < 1:
            raise ValueError("login limiter: burst ≥ 0, per_minute > 0, max_clients ≥ 1")
        self.burst, self.rate = int(burst), per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: collections.OrderedDict[str, list[float]] = collections.OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.burst > 0

    def _bucket(self, client: str, now: float) -> list[float]:
        # [tokens, last refill, last refusal logged, refusals not logged since]
        b = self._buckets.get(client)
        if b is None:
            b = self._buckets[client] = [float(self.burst), now, -math.inf, 0]
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            b[0] = min(float(self.burst), b[0] + (now - b[1]) * self.rate)
            b[1] = now
            self._buckets.move_to_end(client)
        return b

    def acquire(self, client: str, now: float | None = None) -> float:
        """Take a token: 0.0 if one was taken, else the seconds until one is available."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            b = self._bucket(client, now)
            if b[0] >= 1.0:
                b[0] -= 1.0
                return 0.0
            return (1.0 - b[0]) / self.rate

    def blocked(self, client: str, now: float | None = None) -> float:
        """Seconds until ``client`` may try a login again (0.0: it may now); takes nothing."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            if client not in self._buckets:
                return 0.0
            b = self._bucket(client, now)
            return 0.0 if b[0] >= 1.0 else (1.0 - b[0]) / self.rate

    def note_refusal(self, client: str, every: float = 10.0, now: float | None = None) -> int | None:
        """A 429 for ``client``: the number of earlier 429s not logged (≥ 0) if this one is to be
        logged — the first, then one each ``every`` seconds — else ``None`` (counted instead), so a
        flood of refused logins leaves a complete count but not a row per request."""
        now = time.monotonic() if now is None else now
        with self._lock:
            b = self._bucket(client, now)
            if now - b[2] >= every:
                b[2], n, b[3] = now, b[3], 0
                return int(n)
            b[3] += 1
            return None

    def refund(self, client: str) -> None:
        """Give back the token of a successful login."""
        if not self.enabled:
            return
        with self._lock:
            b = self._buckets.get(client)
            if b is not None:
                b[0] = min(float(self.burst), b[0] + 1.0)


# --------------------------------------------------------------------------- refusal log


class RefusalLog:
    """Refused requests → the ``workbench.identifiers.refusals`` logger at once, and the store's
    ``refusals`` table in batches from a background thread (every ``interval`` s), so a flood of
    refusals costs a queue append per request, not a transaction.  At most ``max_queue`` rows wait;
    beyond that rows are counted and the count is recorded as one row of its own."""

    def __init__(self, store: HandleStore, *, interval: float = 0.5, max_queue: int = 10_000):
        self.store, self.interval, self.max_queue = store, interval, max_queue
        self._rows: collections.deque = collections.deque()
        self._dropped = 0
        self._lock = threading.Lock()
        # one flush at a time: a flush returns only once what was queued before it is written, even
        # when the writer thread had taken those rows and was still writing them
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = False

    def record(self, *, client: str, who: str, method: str, path: str, status: int, rc: int,
               reason: str) -> None:
        row = {"at": None, "client": _safe_text(client, 100), "who": _safe_text(who), "method": _safe_text(method, 16),
               "path": _safe_text(path, 600), "status": status, "rc": rc, "reason": _safe_text(reason, 600)}
        level = logging.WARNING if status in (401, 403, 429) else logging.INFO
        if refusal_logger.isEnabledFor(level):
            refusal_logger.log(level, "refused %s %s from %s (%s): %d rc %d %s", row["method"], row["path"],
                               row["client"], row["who"], status, rc, row["reason"])
        row["at"] = _now()
        with self._lock:
            if len(self._rows) >= self.max_queue:
                self._dropped += 1
                return
            self._rows.append(row)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="idnode-refusals", daemon=True)
                self._thread.start()

    def _take(self) -> list[dict]:
        with self._lock:
            rows = list(self._rows)
            self._rows.clear()
            dropped, self._dropped = self._dropped, 0
        if dropped:
            rows.append({"at": _now(), "client": "-", "who": "-", "method": "-", "path": "-", "status": 0,
                         "rc": 0, "reason": f"{dropped} refused requests not recorded: refusal queue full"})
        return rows

    def flush(self) -> int:
        """Write every waiting row now; returns how many.  When it returns, every row recorded
        before the call is in the store (or its failure logged)."""
        with self._flushing:
            rows = self._take()
            if rows:
                try:
                    self.store.record_refusals(rows)
                except Exception:
                    log.exception("could not record %d refused requests", len(rows))
            return len(rows)

    def _run(self) -> None:
        idle = 0
        while not self._stop:
            self._wake.wait(self.interval)
            self._wake.clear()
            idle = 0 if self.flush() else idle + 1
            if idle * self.interval >= 30:            # nothing for 30 s: stop; record() starts it again
                with self._lock:
                    if not self._rows:
                        self._thread = None
                        return

    def close(self) -> None:
        """Stop the writer thread and write what waits (a later :meth:`record` starts it again)."""
        with self._lock:
            thread, self._stop = self._thread, True
        self._wake.set()
        if thread is not None:
            thread.join(5)
        with self._lock:
            self._thread, self._stop = None, False
        self.flush()


# --------------------------------------------------------------------------- request input


def _json_limits(value, handle: str | None) -> None:
    """Depth ≤ MAX_JSON_DEPTH, every string UTF-8-encodable without NUL, numbers finite (iterative)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            if depth > MAX_JSON_DEPTH:
                raise ApiError(202, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", handle)
            for k, x in v.items():
                _text_ok(k, handle)
                stack.append((x, depth + 1))
        elif isinstance(v, list):
            if depth > MAX_JSON_DEPTH:
                raise ApiError(202, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", handle)
            stack.extend((x, depth + 1) for x in v)
        elif isinstance(v, str):
            _text_ok(v, handle)


def _text_ok(text: str, handle: str | None) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(202, "text in the body is not valid Unicode (lone surrogate)", handle) from None
    if "\x00" in text:
        raise ApiError(202, "text in the body contains a NUL character", handle)


def _finite(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"number {text} is out of range")
    return x


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, handle: str | None):
    """The JSON document in ``raw``, or :class:`ApiError` (rc 202) saying what is wrong with it:
    not UTF-8/JSON, NaN/Infinity or a number beyond float range, nesting, text that cannot be stored."""
    try:
        doc = json.loads(raw or b"null", parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise ApiError(202, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", handle) from None
    except UnicodeDecodeError:
        raise ApiError(202, "body is not UTF-8 text", handle) from None
    except ValueError as exc:              # JSONDecodeError, int digit limit, our number checks
        raise ApiError(202, f"invalid JSON: {str(exc).splitlines()[0][:200]}", handle) from None
    _json_limits(doc, handle)
    return doc


def _is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return True                          # curl --data-binary without -H, old clients
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class Params:
    """The query parameters of one request, read strictly: one-valued parameters may be given
    once (a repeat is refused, as the OpenAPI document says: no silent "last one wins"), integers are ASCII digits within bounds, booleans are
    ``true``/``false``.  Every problem is an :class:`ApiError` (400, rc 202)."""

    def __init__(self, request: Request, handle: str | None):
        self.items = request.query_params.multi_items()
        self.handle = handle

    def all(self, name: str) -> list[str]:
        values = [v for k, v in self.items if k == name]
        if len(values) > MAX_REPEATS:
            raise ApiError(202, f"more than {MAX_REPEATS} values of {name!r}", self.handle)
        return values

    def one(self, name: str) -> str | None:
        values = self.all(name)
        if len(values) > 1:
            raise ApiError(202, f"{name!r} given {len(values)} times: give it once", self.handle)
        return values[0] if values else None

    def integer(self, name: str, default: int | None, lo: int, hi: int) -> int | None:
        raw = self.one(name)
        if raw is None:
            return default
        if not _DIGITS.fullmatch(raw) or not lo <= int(raw) <= hi:
            raise ApiError(202, f"{name} must be an integer {lo}..{hi}, not {raw[:40]!r}", self.handle)
        return int(raw)

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.one(name)
        if raw is None:
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ApiError(202, f"{name} must be true or false, not {raw[:40]!r}", self.handle)

    def indices(self, allow_various: bool = False) -> list[int] | str | None:
        raw = self.all("index")
        if not raw:
            return None
        out = []
        for r in raw:
            if allow_various and r == "various":
                continue
            if not _DIGITS.fullmatch(r) or not 1 <= int(r) <= MAX_INDEX:
                raise ApiError(202, f"index must be integers 1..{MAX_INDEX}{' or various' if allow_various else ''}, "
                               f"not {r[:40]!r}", self.handle)
            out.append(int(r))
        return "various" if len(out) < len(raw) else out

    def types(self) -> list[str] | None:
        raw = self.all("type")
        for t in raw:
            if not 1 <= len(t) <= TYPE_MAX_CHARS:
                raise ApiError(202, f"type must be 1..{TYPE_MAX_CHARS} characters", self.handle)
        return raw or None


def _type_name_ok(t: str) -> bool:
    """A value type as HandleValue accepts it: 1..128 characters, no whitespace or control characters."""
    return 1 <= len(t) <= TYPE_MAX_CHARS and not any(
        ch.isspace() or unicodedata.category(ch).startswith("C") for ch in t)


# --------------------------------------------------------------------------- the node (ASGI)


class IdentifierNode:
    """ASGI app of an enterprise identifier node: fast resolution + recursion in front of ``api``.

    Attributes: ``api`` (the FastAPI app with every Handle route and the OpenAPI document),
    ``store``, ``prefix``, ``cache`` (own records), ``forward_cache``, ``upstreams``,
    ``login_limiter`` and ``refusal_log``.
    """

    def __init__(self, api: FastAPI, store: HandleStore, prefix: str, *, cache: RecordCache,
                 upstreams: Upstreams, forward_cache: ForwardCache, negative_ttl: float, max_ttl: float,
                 upstream_timeout: float, login_limiter: LoginLimiter | None = None,
                 refusal_log: RefusalLog | None = None, login_tarpit: float = 0.0):
        self.api, self.store, self.prefix = api, store, prefix
        self._prefix_key = prefix.lower()
        self.cache, self.upstreams, self.forward_cache = cache, upstreams, forward_cache
        self.negative_ttl, self.max_ttl, self.upstream_timeout = negative_ttl, max_ttl, upstream_timeout
        self.login_limiter, self.refusal_log, self.login_tarpit = login_limiter, refusal_log, login_tarpit
        self._limit_logins = login_limiter is not None and login_limiter.enabled
        self._http = None

    @property
    def openapi(self):
        return self.api.openapi

    def changed(self) -> None:
        """A write happened in this process: re-sync the record cache on the next request
        (thread-safe: only a number is set; the event loop does the rest)."""
        self.cache._next_sync = 0.0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        credentials = False
        for k, _ in scope["headers"]:
            if k == b"authorization":
                credentials = True
                break
        if credentials and self._limit_logins:
            wait = self.login_limiter.blocked(_client_of(scope))
            if wait:                                   # locked out: refused before any routing or hashing
                await self._too_many(scope, send, wait)
                return
        if scope["method"] == "GET" and scope["path"].startswith("/api/handles/"):
            text = scope["path"][13:]
            pfx, sep, suffix = text.partition("/")
            if sep and suffix:
                pkey = pfx.lower()
                if pkey == self._prefix_key:
                    if not credentials and not scope["query_string"] and await self._resolve_own(text, send):
                        return
                elif self.upstreams:
                    upstream = self.upstreams.for_prefix(suffix if pkey == "0.na" else pfx)
                    if upstream and (pkey != "0.na" or suffix.lower() != self._prefix_key):
                        await self._forward(upstream, scope, send)
                        return
        await self.api(scope, receive, send)

    async def _too_many(self, scope, send, wait: float) -> None:
        # the answer waits (tarpit): a client hammering wrong passwords gets one try per
        # connection per ``login_tarpit`` s instead of a cheap 429 it can repeat at full speed
        if self.login_tarpit:
            await asyncio.sleep(min(wait, self.login_tarpit))
        client = _client_of(scope)
        seconds = max(1, math.ceil(wait))
        message = f"too many failed logins from {client}: retry in {seconds} s"
        path = scope["path"]
        handle = _safe_text(path[13:], 400) if path.startswith("/api/handles/") and len(path) > 13 else None
        body = _dumps({"responseCode": RC_SERVER_TOO_BUSY, "handle": handle, "message": message})
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(seconds).encode())]})
        await send({"type": "http.response.body", "body": body})
        self.note_locked_out(scope, 429, message)

    def note_locked_out(self, scope, status: int, message: str) -> None:
        """Record a 429 in the refusal log, one row per client per 10 s with the count of the rest."""
        if self.refusal_log is None:
            return
        client = _client_of(scope)
        skipped = self.login_limiter.note_refusal(client)
        if skipped is None:
            return
        if skipped:
            message += f" ({skipped} more 429s to this address since the last row)"
        self.refusal_log.record(client=client, who="locked out", method=scope.get("method", "?"),
                                path=_path_as_sent(scope), status=status, rc=RC_SERVER_TOO_BUSY, reason=message)

    async def _resolve_own(self, text: str, send) -> bool:
        if not text.isascii():
            try:
                text.encode("utf-8")                   # uvicorn never passes a lone surrogate; others may
            except UnicodeEncodeError:
                return False                           # the API answers rc 102
        cache = self.cache
        cache.sync()
        # Identifier.key of the text.  No validation here: only valid identifiers are stored, so a
        # key that is found is valid, and anything not found goes to the API (rc 100 or 102)
        key = _ascii_lower(text)
        values = cache.get(key) if cache.size else None
        if values is None:
            values = self.store.public_values_json(key)
            if values is None:
                return False                               # the API answers with rc 100
            cache.put(key, values)
        body = b'{"responseCode":1,"handle":' + _dumps(text) + b',"values":' + values + b"}"
        await _send(send, 200, body)
        return True

    async def _forward(self, upstream: str, scope, send) -> None:
        headers = dict(scope["headers"])
        hops_text = headers.get(HOPS_HEADER.encode(), b"0").decode("latin-1")
        hops = int(hops_text) if _DIGITS.fullmatch(hops_text) else 0
        text = scope["path"][13:]
        if hops >= MAX_HOPS:
            await _send(send, 508, _dumps({"responseCode": 2, "handle": text,
                                           "message": f"resolution loop: more than {MAX_HOPS} hops"}))
            if self.refusal_log is not None:
                self.refusal_log.record(client=_client_of(scope), who="anonymous", method="GET",
                                        path=_path_as_sent(scope), status=508, rc=2,
                                        reason=f"resolution loop: {hops} hops")
            return
        target = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        now = time.monotonic()
        fc = self.forward_cache
        entry = fc.fresh(target, now)
        if entry is not None:
            await _send(send, entry[0], entry[1], cache="HIT", age=now - entry[2])
            return
        if self._http is None:
            import httpx
            self._http = httpx.AsyncClient(timeout=self.upstream_timeout)
        try:
            # credentials are never passed on: an upstream answers us as an anonymous resolver
            r = await self._http.get(upstream + target, headers={HOPS_HEADER: str(hops + 1),
                                                                 "accept": "application/json"})
        except Exception as exc:
            stale = fc.stale(target)
            if stale is not None:
                await _send(send, stale[0], stale[1], cache="STALE", age=now - stale[2])
            else:
                await _send(send, 502, _dumps({"responseCode": 2, "handle": text,
                                               "message": f"upstream node {upstream} unreachable: "
                                                          f"{type(exc).__name__}"}))
            return
        ttl = answer_ttl(r.content, negative_ttl=self.negative_ttl, max_ttl=self.max_ttl)
        if ttl:
            fc.put(target, (r.status_code, r.content, now, now + ttl))
        await _send(send, r.status_code, r.content, cache="MISS")


def _path_as_sent(scope) -> str:
    raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "backslashreplace")
    text = raw.decode("latin-1")
    if scope.get("query_string"):
        text += "?" + scope["query_string"].decode("latin-1")
    return text


async def _send(send, status: int, body: bytes, *, cache: str | None = None, age: float | None = None):
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if cache:
        headers.append((b"x-cache", cache.encode()))
    if age is not None:
        headers.append((b"age", str(int(age)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- the Handle API


def create_app(store: HandleStore, prefix: str, *, admins: Iterable[str] = (),
               upstreams: Upstreams | dict | None = None, cache_size: int = 100_000,
               coherence: float = 0.2, forward_cache_size: int = 100_000, negative_ttl: float = 30.0,
               max_ttl: float = 86400.0, upstream_timeout: float = 5.0,
               max_body_bytes: int = MAX_BODY_BYTES, login_burst: int = DEFAULT_LOGIN_BURST,
               login_per_minute: float = DEFAULT_LOGIN_PER_MINUTE,
               auth_concurrency: int = DEFAULT_AUTH_CONCURRENCY, login_tarpit: float = DEFAULT_LOGIN_TARPIT,
               title: str = "Enterprise identifier node") -> IdentifierNode:
    """The node serving ``prefix`` from ``store`` (an ASGI app, see :class:`IdentifierNode`).

    ``admins`` are ``index:handle`` identities with every permission (the prefix administrators).
    ``upstreams`` maps other prefixes to upstream node URLs for recursive resolution.
    ``cache_size`` own records cached (0: every resolution reads the store), kept coherent with
    the store's change feed every ``coherence`` seconds.  ``login_burst``/``login_per_minute``:
    the failed-login limiter per client address (``login_burst=0`` disables it); ``login_tarpit``:
    seconds (at most) a locked-out client waits for its 429;
    ``auth_concurrency``: password checks running at once (each a scrypt, off the event loop).
    OpenAPI at ``/openapi.json``.
    """
    our_prefix = prefix.lower()
    parse_identifier(f"{prefix}/x")                    # validates the prefix
    if not isinstance(upstreams, Upstreams):
        upstreams = Upstreams(upstreams)
    if auth_concurrency < 1:
        raise ValueError("auth_concurrency must be at least 1")
    admin_set = set()
    for a in admins:
        idx, _, h = a.partition(":")
        admin_set.add((int(idx), parse_identifier(h).key))
    store._dummy()                                     # made now: the first unknown user costs no extra hash
    limiter = LoginLimiter(login_burst, login_per_minute)
    refusals = RefusalLog(store)
    hashing = concurrent.futures.ThreadPoolExecutor(auth_concurrency, thread_name_prefix="idnode-auth")

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        refusals.close()                               # what is queued reaches the store

    app = FastAPI(title=title, description=__doc__.split("\n\n")[0], lifespan=lifespan,
                  default_response_class=HandleJSONResponse)

    # ---------------------------------------------------------------- errors
    def refused(request: Request, status: int, rc: int, message: str) -> None:
        if status in REFUSAL_STATUSES or (status == 404 and rc == RC_PROTOCOL_ERROR):
            who = getattr(request.state, "who", None) or "anonymous"
            refusals.record(client=_client_of(request.scope), who=who, method=request.method,
                            path=_path_as_sent(request.scope), status=status, rc=rc, reason=message)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        if exc.status == 429:
            node.note_locked_out(request.scope, 429, exc.message)
        else:
            refused(request, exc.status, exc.rc, exc.message)
        return _reply(exc.rc, exc.handle, exc.status, headers=exc.headers, message=exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errs = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        refused(request, 400, 202, f"invalid request: {errs}")
        return _reply(202, None, 400, message=f"invalid request: {errs}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        rc = RC_OPERATION_NOT_SUPPORTED if exc.status_code == 405 else RC_PROTOCOL_ERROR
        message = f"{request.method} {_safe_text(request.url.path, 200)}: {exc.detail}"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette names the methods of the first route matching the path; name them all
            allowed = sorted({m for r in app.router.routes if getattr(r, "methods", None)
                              and r.matches(request.scope)[0] != Match.NONE for m in r.methods})
            if re.fullmatch(r"/api/handles/[^/]+/", request.url.path):
                allowed = ["PUT"]                      # /api/handles/{prefix}/: minting only
            headers = {"Allow": ", ".join(allowed)}
        refused(request, exc.status_code, rc, message)
        return _reply(rc, None, exc.status_code, headers=headers, message=message)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception):
        # a bug, not bad input (input is validated where it enters): say so, log it (Starlette
        # re-raises it after this reply, so the server logs the traceback too)
        log.error("server error on %s %s: %r", request.method, request.url.path[:200], exc)
        return _reply(2, None, 500, message=f"server error: {type(exc).__name__}")

    # ---------------------------------------------------------------- helpers
    def ident_of(pfx: str, suffix: str) -> tuple[Identifier, str]:
        text = f"{pfx}/{suffix}"
        try:
            ident = parse_identifier(text)
        except IdentifierError as exc:
            raise ApiError(102, str(exc)[:300], _safe_text(text, 400)) from None
        ours = ident.suffix.lower() == our_prefix if ident.is_admin else ident.prefix.lower() == our_prefix
        if not ours:
            raise ApiError(301, f"this server is not responsible for prefix {ident.prefix!r}", text)
        return ident, text

    def check_basic(token: str, handle: str | None, request: Request) -> tuple[int, str]:
        """``(index, key)`` of valid Basic credentials (runs in the hashing pool: one scrypt)."""
        try:
            text = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ApiError(RC_AUTHENTICATION_FAILED, "malformed Basic credentials", handle) from None
        user, _, password = text.partition(":")
        user = unquote(user)
        if ":" not in user and _DIGITS.fullmatch(user):      # client did not URL-encode the ':' in the user
            rest_user, _, password = password.partition(":")
            user = f"{user}:{unquote(rest_user)}"
        request.state.who = f"claimed {_safe_text(user, 420)}"
        idx, _, uhandle = user.partition(":")
        try:
            if not _DIGITS.fullmatch(idx) or not 1 <= int(idx) <= MAX_INDEX:
                raise ValueError(idx)
            uindex, uident = int(idx), parse_identifier(uhandle)
        except (ValueError, IdentifierError):
            raise ApiError(RC_AUTHENTICATION_FAILED, "user must be 'index:prefix/suffix'", handle) from None
        if not store.verify(uident, uindex, password):
            raise ApiError(RC_AUTHENTICATION_FAILED, "authentication failed", handle)
        return uindex, uident.key

    async def caller(request: Request, handle: str | None, required: bool) -> tuple[int, str] | None:
        """``(index, handle key)`` of the authenticated caller; ``None`` if anonymous and not required.

        Credentials are checked off the event loop; a client out of failed-login tokens gets 429."""
        header = request.headers.get("authorization")
        if not header:
            if required:
                raise ApiError(RC_AUTHENTICATION_NEEDED, "authentication needed", handle)
            return None
        client = _client_of(request.scope)
        wait = limiter.acquire(client)
        if wait:
            seconds = max(1, math.ceil(wait))
            raise ApiError(RC_SERVER_TOO_BUSY, f"too many failed logins from {client}: retry in {seconds} s",
                           handle, status=429, headers={"Retry-After": str(seconds)})
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer":                   # service tokens (workbench idnode token issue)
            who = await run_in_threadpool(store.token_identity, token.strip())
            if who is None:
                request.state.who = "bearer token (invalid)"
                raise ApiError(RC_AUTHENTICATION_FAILED, "invalid, expired or revoked token", handle)
        elif scheme.lower() == "basic":
            loop = asyncio.get_running_loop()
            who = await loop.run_in_executor(hashing, check_basic, token, handle, request)
        else:
            raise ApiError(RC_AUTHENTICATION_NEEDED, "use HTTP Basic (index:prefix/suffix) or a Bearer token",
                           handle)
        limiter.refund(client)
        request.state.who = _identity_text(*who)
        return who

    def who_text(user: tuple[int, str] | None) -> str:
        return "anonymous" if user is None else _identity_text(*user)

    def is_server_admin(user) -> bool:
        return user is not None and tuple(user) in admin_set

    def permissions(user, record: HandleRecord | None) -> dict[str, bool]:
        """Union of HS_ADMIN permissions of ``record`` that name ``user`` (directly or via HS_VLIST)."""
        granted = {}
        if user is None or record is None:
            return granted
        uindex, ukey = user
        for v in record.by_type("HS_ADMIN"):
            if v.format != "admin":
                continue
            ref_key, ref_index = parse_identifier(v.value["handle"]).key, v.value["index"]
            match = (ref_key, ref_index) == (ukey, uindex)
            if not match and ref_key != record.identifier.key:
                group = store.get(ref_key, indices=[ref_index])
                if group is not None:
                    for g in group.values:
                        if g.type == "HS_VLIST" and g.format == "vlist":
                            match = any((parse_identifier(r["handle"]).key, r["index"]) == (ukey, uindex)
                                        for r in g.value)
            if match:
                for k, on in parse_permissions(v.value["permissions"]).items():
                    granted[k] = granted.get(k, False) or on
        return granted

    def may_read_private(user, record) -> bool:
        return is_server_admin(user) or permissions(user, record).get("read_value", False)

    def write_check(user, handle_text: str):
        def check(before: HandleRecord | None, after: HandleRecord | None):
            if is_server_admin(user):
                return
            if before is None:
                raise ApiError(RC_INSUFFICIENT_PERMISSIONS, "insufficient permissions: creating handles "
                               "needs a prefix administrator", handle_text)
            perms = permissions(user, before)
            need = set()
            if after is None:
                need.add("delete_handle")
            else:
                old = {v.index: v for v in before.values}
                new = {v.index: v for v in after.values}
                for i, v in new.items():
                    adm = v.type == "HS_ADMIN" or (i in old and old[i].type == "HS_ADMIN")
                    if i not in old:
                        need.add("add_admin" if adm else "add_value")
                    elif old[i] != v:
                        need.add("modify_admin" if adm else "modify_value")
                for i, v in old.items():
                    if i not in new:
                        need.add("remove_admin" if v.type == "HS_ADMIN" else "remove_value")
            missing = sorted(n for n in need if not perms.get(n, False))
            if missing:
                raise ApiError(RC_INSUFFICIENT_PERMISSIONS, f"insufficient permissions: {', '.join(missing)}",
                               handle_text)
        return check

    async def read_body(request: Request, handle: str | None, limit: int = max_body_bytes, what: str = "record"):
        if not _is_json_type(request.headers.get("content-type")):
            raise ApiError(RC_PROTOCOL_ERROR, f"{what} must be JSON (Content-Type: application/json)",
                           handle, status=415)
        declared = request.headers.get("content-length")
        if declared and (not declared.isascii() or not declared.isdigit() or len(declared) > 12
                         or int(declared) > limit):
            raise ApiError(202, f"{what} too large (more than {limit} bytes)", handle)
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise ApiError(202, f"{what} too large (more than {limit} bytes)", handle)
        if len(raw) > 256 * 1024:                      # a big batch: parse it off the event loop
            return await run_in_threadpool(parse_json, bytes(raw), handle)
        return parse_json(bytes(raw), handle)

    def values_from_body(body, ident: Identifier, handle: str) -> list[HandleValue]:
        if isinstance(body, list):
            items = body
        elif isinstance(body, dict) and ("values" in body or "value" in body):
            if "values" in body and "value" in body:
                raise ApiError(202, "give 'values' or 'value', not both", handle)
            if "handle" in body:
                try:
                    if parse_identifier(body["handle"]) != ident:
                        raise ApiError(202, f"body handle {body['handle']!r} differs from the path", handle)
                except IdentifierError as exc:
                    raise ApiError(102, str(exc)[:300], handle) from None
            items = body.get("values", body.get("value"))
        else:
            raise ApiError(202, 'body must be {"values": [...]} or {"handle": ..., "values": [...]}', handle)
        if not isinstance(items, list):
            raise ApiError(202, "'values' must be a list", handle)
        try:
            values = [HandleValue.from_json(v) for v in items]
            HandleRecord(ident, values)                 # duplicate indices
        except HandleValueError as exc:
            raise ApiError(202, f"invalid value: {str(exc)[:300]}", handle) from None
        return values

    def path_suffix(request: Request, pfx: str, suffix: str) -> str:
        """The suffix as the path has it.  Starlette's route pattern ends in ``$``, which also matches
        before a trailing newline, so ``/api/handles/P/%0A`` arrives with an empty ``suffix`` —
        taken from the path instead, it is judged (and refused, 400) as written, not mistaken for
        the mint route."""
        if suffix:
            return suffix
        path, head = request.scope.get("path", ""), f"/api/handles/{pfx}/"
        return path[len(head):] if path.startswith(head) else suffix

    def mint_only(request: Request) -> ApiError:
        return ApiError(RC_OPERATION_NOT_SUPPORTED, f"{request.method} needs a suffix: /api/handles/{{prefix}}/ "
                        "serves only PUT ?mintNewSuffix=true", None, status=405, headers={"Allow": "PUT"})

    def store_call(handle: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StoreError as exc:
            raise ApiError(exc.response_code, exc.message, handle) from None
        except HandleValueError as exc:
            raise ApiError(202, f"invalid value: {str(exc)[:300]}", handle) from None

    # ---------------------------------------------------------------- routes
    @app.get("/api/handles", summary="List handles under a prefix")
    async def list_handles(request: Request):
        q = Params(request, None)
        pfx = q.one("prefix")
        page = q.integer("page", 0, 0, MAX_PAGE)
        page_size = q.integer("pageSize", None, 0, MAX_PAGE_SIZE)
        user = await caller(request, None, required=True)
        if not is_server_admin(user):
            raise ApiError(RC_INSUFFICIENT_PERMISSIONS, "insufficient permissions: listing handles needs "
                           "a prefix administrator", None)
        if not pfx:
            raise ApiError(102, "query parameter 'prefix' is required", None)
        if pfx.lower() != our_prefix:
            raise ApiError(301, f"this server is not responsible for prefix {pfx[:80]!r}", None)
        total, handles = await run_in_threadpool(store.list, pfx, page, page_size)
        return {"responseCode": 1, "handle": None, "prefix": pfx, "totalCount": str(total),
                "page": page, "pageSize": page_size, "handles": handles}

    def resolve_values(ident: Identifier, handle: str, user, indices, types, public_only: bool):
        record = store.get(ident)
        if record is None:
            raise ApiError(100, "handle not found", handle)
        private_ok = not public_only and may_read_private(user, record)
        values = [v for v in record.values if v.pub_read or private_ok]
        if indices is not None or types is not None:
            idx, tps = set(indices or ()), set(types or ())
            values = [v for v in values if v.index in idx or v.type in tps]
            if not values:
                return _reply(200, handle, 200, message="values not found", values=[])
        return _reply(1, handle, 200, values=[v.to_json() for v in values])

    @app.get("/api/handles/{pfx}/{suffix:path}", summary="Resolve a handle")
    async def resolve(pfx: str, suffix: str, request: Request):
        suffix = path_suffix(request, pfx, suffix)
        if not suffix:
            raise mint_only(request)
        ident, handle = ident_of(pfx, suffix)
        q = Params(request, handle)
        indices, types = q.indices(), q.types()
        public_only = q.boolean("publicOnly", False)
        q.boolean("auth", False)                       # pyhandle's flag: checked, not needed
        user = await caller(request, handle, required=False)
        return await run_in_threadpool(resolve_values, ident, handle, user, indices, types, public_only)

    @app.put("/api/handles/{pfx}/{suffix:path}", summary="Create or modify a handle")
    async def put_handle(pfx: str, suffix: str, request: Request):
        suffix = path_suffix(request, pfx, suffix)
        q = Params(request, _safe_text(f"{pfx}/{suffix}", 400))
        mint = q.boolean("mintNewSuffix", False)
        if mint:
            if suffix:
                raise ApiError(102, "mintNewSuffix=true is used on /api/handles/{prefix}/", q.handle)
            if q.all("index"):
                raise ApiError(202, "mintNewSuffix=true creates a handle: index= does not apply", q.handle)
            suffix = uuid.uuid4().hex
        ident, handle = ident_of(pfx, suffix)
        q.handle = handle
        overwrite = q.boolean("overwrite", True) and not mint
        indices = q.indices(allow_various=True)
        user = await caller(request, handle, required=True)
        body = await read_body(request, handle)
        values = values_from_body(body, ident, handle)
        created, _ = await run_in_threadpool(store_call, handle, store.put, ident, values, overwrite=overwrite,
                                             indices=indices, who=who_text(user), check=write_check(user, handle))
        node.changed()
        return _reply(1, handle, 201 if created else 200)

    @app.delete("/api/handles/{pfx}/{suffix:path}", summary="Delete a handle or some of its values")
    async def delete_handle(pfx: str, suffix: str, request: Request):
        suffix = path_suffix(request, pfx, suffix)
        if not suffix:
            raise mint_only(request)
        ident, handle = ident_of(pfx, suffix)
        indices = Params(request, handle).indices()
        user = await caller(request, handle, required=True)
        await run_in_threadpool(store_call, handle, store.delete, ident, indices, who=who_text(user),
                                check=write_check(user, handle))
        node.changed()
        return _reply(1, handle, 200)

    @app.post("/api/batch", summary="Register many handles at once (idempotent; one transaction)")
    async def batch(request: Request):
        overwrite = Params(request, None).boolean("overwrite", True)
        user = await caller(request, None, required=True)
        body = await read_body(request, None, limit=MAX_BATCH_BYTES, what="batch")
        items = body.get("records") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ApiError(202, 'body must be {"records": [{"handle": ..., "values": [...]}, ...]}', None)
        if len(items) > MAX_BATCH_RECORDS:
            raise ApiError(202, f"at most {MAX_BATCH_RECORDS} records per batch, got {len(items)}", None)

        def records_of(items):
            records = []
            for i, item in enumerate(items):
                where = item.get("handle") if isinstance(item, dict) and isinstance(item.get("handle"), str) else None
                where = _safe_text(where, 400) if where is not None else None
                try:
                    rec = HandleRecord.from_json(item)
                except IdentifierError as exc:
                    raise ApiError(102, f"record {i}: {str(exc)[:300]}", where) from None
                except HandleValueError as exc:
                    raise ApiError(202, f"record {i}: invalid value: {str(exc)[:300]}", where) from None
                ident_of(rec.identifier.prefix, rec.identifier.suffix)       # ours?
                records.append(rec)
            return records

        records = await run_in_threadpool(records_of, items)

        def check(before, after):
            write_check(user, str((after or before).identifier))(before, after)

        counts = await run_in_threadpool(store_call, None, store.put_many, records, who=who_text(user),
                                         check=check, batch_size=max(1, len(records)), overwrite=overwrite)
        node.changed()
        return {"responseCode": 1, "handle": None, **counts}

    async def reverse(request: Request):
        q = Params(request, None)
        pfx = q.one("prefix")
        if pfx is not None:
            try:
                parse_identifier(f"{pfx}/x")
            except IdentifierError:
                raise ApiError(102, f"prefix {pfx[:80]!r} is not a prefix like 88.123.4567", None) from None
        limit = q.integer("limit", DEFAULT_REVERSE_LIMIT, 0, MAX_REVERSE_LIMIT)
        filters = [(k, v) for k, v in q.items if k not in ("prefix", "limit", "page", "pageSize")]
        if not filters:
            raise ApiError(202, "give at least one TYPE=value filter, e.g. URL=https://…", None)
        if len(filters) > MAX_REVERSE_FILTERS:
            raise ApiError(202, f"at most {MAX_REVERSE_FILTERS} TYPE=value filters", None)
        if len({t for t, _ in filters}) < len(filters):
            raise ApiError(202, "give each TYPE=value filter once", None)
        for t, v in filters:
            if not _type_name_ok(t):
                raise ApiError(202, f"filter type {t[:40]!r} is not a value type (1..{TYPE_MAX_CHARS} "
                               "characters, no whitespace or control characters)", None)

        def look_up():
            result: set[str] | None = None
            for t, v in filters:
                found = set(store.reverse(v, type=t, prefix=pfx, limit=limit))
                result = found if result is None else result & found
            return sorted(result or ())

        return HandleJSONResponse(await run_in_threadpool(look_up))

    app.get("/api/hrls/handles/", summary="Reverse look-up: handles by value")(reverse)
    app.get("/hrls/handles/", summary="Reverse look-up (pyhandle path)")(reverse)

    document = openapi_document(prefix, title=title, description=__doc__.split("\n\n")[0],
                                forwarding=bool(upstreams), max_body_bytes=max_body_bytes)
    app.openapi = lambda: document                       # the hand-written description (see below)

    node = IdentifierNode(app, store, prefix, cache=RecordCache(store, cache_size, coherence=coherence),
                          upstreams=upstreams, forward_cache=ForwardCache(forward_cache_size),
                          negative_ttl=negative_ttl, max_ttl=max_ttl, upstream_timeout=upstream_timeout,
                          login_limiter=limiter, refusal_log=refusals, login_tarpit=login_tarpit)
    return node


# --------------------------------------------------------------------------- OpenAPI


def openapi_document(prefix: str, *, title: str, description: str, forwarding: bool,
                     max_body_bytes: int = MAX_BODY_BYTES) -> dict:
    """The OpenAPI 3.1 description of the node: every parameter with its bounds, every request body
    (the Handle record and batch shapes) and every status the node answers with — and only those
    (invalid input is 400 here, never FastAPI's 422).  Routes read their input themselves (strictly,
    see :class:`Params` and :func:`parse_json`), so this is written out rather than derived."""
    ref = lambda name: {"$ref": f"#/components/schemas/{name}"}
    index_int = {"type": "integer", "minimum": 1, "maximum": MAX_INDEX}
    index_any = {"oneOf": [index_int, {"type": "string", "pattern": r"^[0-9]{1,10}$"}]}
    type_name = {"type": "string", "minLength": 1, "maxLength": TYPE_MAX_CHARS, "pattern": _TYPE_PATTERN}
    schemas = {
        "Error": {"type": "object", "required": ["responseCode", "handle", "message"],
                  "properties": {"responseCode": {"type": "integer"},
                                 "handle": {"type": ["string", "null"]},
                                 "message": {"type": "string"}}},
        "Reference": {"type": "object", "additionalProperties": False, "required": ["handle", "index"],
                      "properties": {"handle": {"type": "string"}, "index": index_any}},
        "ValueData": {"type": "object", "additionalProperties": False, "required": ["format", "value"],
                      "properties": {"format": {"type": "string", "enum": list(FORMATS)},
                                     "value": {"description": "text for string/key/base64/hex; "
                                               "{handle, index, permissions} for admin; [{handle, index}] "
                                               "for vlist; an object for site"}}},
        "HandleValueIn": {
            "type": "object", "additionalProperties": False, "required": ["index", "type", "data"],
            "description": "A Handle value as written (pyhandle's forms too: index as text, data as text).",
            "properties": {
                "index": index_any,
                "type": type_name,
                "data": {"oneOf": [{"type": "string", "maxLength": STRING_MAX_BYTES}, ref("ValueData")]},
                "ttl": {"oneOf": [{"type": "integer", "minimum": 0, "maximum": MAX_TTL},
                                  {"type": "string", "pattern": r"^[0-9]{1,10}$"}]},
                "timestamp": {"type": ["string", "null"],
                              "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$"},
                "permissions": {"type": "string", "pattern": "^[01]{4}$",
                                "description": "admin_read admin_write pub_read pub_write as 0/1"},
                "references": {"type": ["array", "null"], "items": ref("Reference")},
                "auth": {"description": "enterprise-node variant; ignored"},
            }},
        "HandleValue": {
            "type": "object", "required": ["index", "type", "data", "ttl", "timestamp"],
            "properties": {"index": index_int, "type": {"type": "string"}, "data": ref("ValueData"),
                           "ttl": {"type": "integer", "minimum": 0, "maximum": MAX_TTL},
                           "timestamp": {"type": "string"}, "permissions": {"type": "string"},
                           "references": {"type": "array", "items": {"type": "object"}}}},
        "RecordBody": {
            "description": f"≤ {max_body_bytes} bytes; ``value`` is the enterprise-node spelling of ``values``.",
            "oneOf": [
                {"type": "object", "anyOf": [{"required": ["values"]}, {"required": ["value"]}],
                 "properties": {"handle": {"type": "string"},
                                "values": {"type": "array", "items": ref("HandleValueIn")},
                                "value": {"type": "array", "items": ref("HandleValueIn")}}},
                {"type": "array", "items": ref("HandleValueIn")}]},
        "BatchBody": {
            "type": "object", "required": ["records"],
            "description": f"≤ {MAX_BATCH_BYTES} bytes, ≤ {MAX_BATCH_RECORDS} records; JSON nesting ≤ {MAX_JSON_DEPTH}.",
            "properties": {"records": {"type": "array", "maxItems": MAX_BATCH_RECORDS, "items": {
                "type": "object", "required": ["handle"],
                "properties": {"handle": {"type": "string"},
                               "values": {"type": "array", "items": ref("HandleValueIn")},
                               "value": {"type": "array", "items": ref("HandleValueIn")}}}}}},
        "Resolution": {
            "type": "object", "required": ["responseCode", "handle", "values"],
            "properties": {"responseCode": {"type": "integer", "enum": [1, 200]},
                           "handle": {"type": "string"}, "message": {"type": "string"},
                           "values": {"type": "array", "items": ref("HandleValue")}}},
        "Written": {"type": "object", "required": ["responseCode", "handle"],
                    "properties": {"responseCode": {"type": "integer", "enum": [1]},
                                   "handle": {"type": "string"}}},
        "Listing": {
            "type": "object", "required": ["responseCode", "prefix", "totalCount", "page", "pageSize", "handles"],
            "properties": {"responseCode": {"type": "integer", "enum": [1]}, "handle": {"type": "null"},
                           "prefix": {"type": "string"}, "totalCount": {"type": "string", "pattern": "^[0-9]+$"},
                           "page": {"type": "integer", "minimum": 0},
                           "pageSize": {"type": ["integer", "null"], "minimum": 0},
                           "handles": {"type": "array", "items": {"type": "string"}}}},
        "BatchResult": {
            "type": "object", "required": ["responseCode", "new", "updated", "unchanged", "total"],
            "properties": {"responseCode": {"type": "integer", "enum": [1]}, "handle": {"type": "null"},
                           **{k: {"type": "integer", "minimum": 0} for k in ("new", "updated", "unchanged", "total")}}},
    }
    reasons = {200: "success", 201: "created (rc 1)", 400: "rc 102 invalid handle, 202 invalid value or "
               "parameter or body, 200 values not found, 301 prefix not ours",
               401: "rc 402 authentication needed", 403: "rc 403 authentication failed, 400 insufficient permissions",
               404: "rc 100 handle not found", 409: "rc 101 handle exists, 201 value exists",
               415: "rc 4 the body is not application/json",
               429: "rc 3 too many failed logins from this address",
               502: "rc 2 upstream node unreachable", 508: "rc 2 resolution loop"}
    json_of = lambda schema: {"application/json": {"schema": schema}}

    def responses(ok: dict, *codes: int) -> dict:
        out = {str(k): {"description": reasons.get(k, "success"), "content": json_of(v)} for k, v in ok.items()}
        for c in codes:
            out[str(c)] = {"description": reasons[c], "content": json_of(ref("Error"))}
            if c == 429:
                out[str(c)]["headers"] = {"Retry-After": {"required": True, "description": "seconds",
                                                          "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
        return out

    def query(name: str, schema: dict, description: str, required: bool = False) -> dict:
        return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}

    boolean = {"type": "boolean"}
    pfx_schema = ({"type": "string", "pattern": r"^(88(\.[0-9]{1,10}){2,8}|0\.NA)$", "maxLength": 64}
                  if forwarding else {"type": "string", "enum": [prefix]})
    path_params = [
        {"name": "pfx", "in": "path", "required": True, "schema": pfx_schema,
         "description": f"the prefix {prefix} (also 0.NA, with {prefix} as suffix: the prefix handle)"
                        + ("; other prefixes are forwarded upstream" if forwarding else "")},
        {"name": "suffix", "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _TYPE_PATTERN},
         "description": "1..255 bytes UTF-8, no whitespace or control characters; may contain '/'"},
    ]
    index_q = query("index", {"type": "array", "maxItems": MAX_REPEATS, "items": index_int},
                    "value indices (repeat the parameter)")
    security_opt = [{}, {"basic": []}, {"bearer": []}]
    security_req = [{"basic": []}, {"bearer": []}]
    auth_codes = (401, 403, 429)
    resolve_codes = (400, *auth_codes, 404) + ((502, 508) if forwarding else ())
    record_body = {"required": True, "content": json_of(ref("RecordBody"))}
    paths = {
        "/api/handles/{pfx}/{suffix}": {
            "get": {"summary": "Resolve a handle", "operationId": "resolve", "security": security_opt,
                    "parameters": path_params + [
                        index_q,
                        query("type", {"type": "array", "maxItems": MAX_REPEATS,
                                       "items": {"type": "string", "minLength": 1, "maxLength": TYPE_MAX_CHARS}},
                              "value types (repeat; union with index)"),
                        query("publicOnly", boolean, "only public values, even for an authorised caller"),
                        query("auth", boolean, "pyhandle's flag; ignored")],
                    "responses": responses({200: ref("Resolution")}, *resolve_codes)},
            "put": {"summary": "Create or modify a handle", "operationId": "putHandle", "security": security_req,
                    "parameters": path_params + [
                        query("overwrite", boolean, "replace an existing handle/value (default true)"),
                        query("index", {"type": "array", "maxItems": MAX_REPEATS,
                                        "items": {"oneOf": [index_int, {"type": "string", "enum": ["various"]}]}},
                              "write only these indices of the body (various: all), keeping the others"),
                        query("mintNewSuffix", {"type": "boolean", "enum": [False]},
                              "true only on /api/handles/{pfx}/")],
                    "requestBody": record_body,
                    "responses": responses({200: ref("Written"), 201: ref("Written")}, 400, *auth_codes, 404, 409,
                                           415)},
            "delete": {"summary": "Delete a handle or some of its values", "operationId": "deleteHandle",
                       "security": security_req, "parameters": path_params + [index_q],
                       "responses": responses({200: ref("Written")}, 400, *auth_codes, 404)},
        },
        "/api/handles/{pfx}/": {
            "put": {"summary": "Create a handle with a new random suffix", "operationId": "mintHandle",
                    "security": security_req,
                    "parameters": [path_params[0], query("mintNewSuffix", {"type": "boolean", "enum": [True]},
                                                         "must be true", required=True)],
                    "requestBody": record_body,
                    "responses": responses({201: ref("Written")}, 400, *auth_codes, 415)},
        },
        "/api/handles": {
            "get": {"summary": "List handles under a prefix (prefix administrators)", "operationId": "listHandles",
                    "security": security_req,
                    "parameters": [query("prefix", {"type": "string", "enum": [prefix]}, "the prefix", required=True),
                                   query("page", {"type": "integer", "minimum": 0, "maximum": MAX_PAGE},
                                         "0-based page"),
                                   query("pageSize", {"type": "integer", "minimum": 0, "maximum": MAX_PAGE_SIZE},
                                         "handles per page (0: count only; absent: all)")],
                    "responses": responses({200: ref("Listing")}, 400, *auth_codes)},
        },
        "/api/batch": {
            "post": {"summary": "Register many handles at once (idempotent; one transaction)",
                     "operationId": "batch", "security": security_req,
                     "parameters": [query("overwrite", boolean, "replace differing existing records (default true)")],
                     "requestBody": {"required": True, "content": json_of(ref("BatchBody"))},
                     "responses": responses({200: ref("BatchResult")}, 400, *auth_codes, 409, 415)},
        },
    }
    reverse_op = {
        "summary": "Reverse look-up: handles having a public value", "security": [{}],
        "parameters": [
            query("URL", {"type": "string"}, "a URL value to look for; any other value type works the same "
                  f"way as a parameter of its own (TYPE=value, each once, ≤ {MAX_REVERSE_FILTERS}, intersected)"),
            query("prefix", {"type": "string", "pattern": _PREFIX_PATTERN, "maxLength": 64}, "only under this prefix"),
            query("limit", {"type": "integer", "minimum": 0, "maximum": MAX_REVERSE_LIMIT},
                  f"at most this many handles per filter (default {DEFAULT_REVERSE_LIMIT})")],
        "responses": responses({200: {"type": "array", "items": {"type": "string"}}}, 400),
    }
    paths["/api/hrls/handles/"] = {"get": {**reverse_op, "operationId": "reverseLookup"}}
    paths["/hrls/handles/"] = {"get": {**reverse_op, "operationId": "reverseLookupPyhandle"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic",
                      "description": "user index:prefix/suffix (URL-encoded), the HS_SECKEY secret"},
            "bearer": {"type": "http", "scheme": "bearer", "description": "a token from `workbench idnode token issue`"}}},
    }
