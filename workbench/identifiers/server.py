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
authenticated callers with read permission.  Status mapping: 401 for rc 402 (no credentials),
403 rc 403 (wrong credentials) and 403 rc 400 (insufficient permissions).
"""
from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Iterable
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from workbench.identifiers.model import (
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
from workbench.identifiers.store import HandleStore, StoreError

__all__ = ["ApiError", "IdentifierNode", "create_app"]

MAX_BODY_BYTES = 64 * 1024
MAX_BATCH_RECORDS = 2000
MAX_BATCH_BYTES = 16 * 1024 * 1024
MAX_HOPS = 8
HOPS_HEADER = "x-resolution-hops"
HTTP_STATUS = {1: 200, 2: 500, 100: 404, 101: 409, 102: 400, 200: 400, 201: 409, 202: 400,
               301: 400, 402: 401}
RC_INSUFFICIENT_PERMISSIONS = 400
RC_AUTHENTICATION_NEEDED = 402
RC_AUTHENTICATION_FAILED = 403


class ApiError(Exception):
    def __init__(self, rc: int, message: str, handle: str | None = None, status: int | None = None):
        super().__init__(message)
        self.rc, self.message, self.handle = rc, message, handle
        self.status = status or HTTP_STATUS.get(rc, 403 if 400 <= rc < 500 else 400)


def _reply(rc: int, handle: str | None, status: int = 200, **extra) -> JSONResponse:
    return JSONResponse({"responseCode": rc, "handle": handle, **extra}, status_code=status)


def _identity_text(index: int, handle: str) -> str:
    return f"{index}:{handle}"


def _dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class IdentifierNode:
    """ASGI app of an enterprise identifier node: fast resolution + recursion in front of ``api``.

    Attributes: ``api`` (the FastAPI app with every Handle route and the OpenAPI document),
    ``store``, ``prefix``, ``cache`` (own records), ``forward_cache``, ``upstreams``.
    """

    def __init__(self, api: FastAPI, store: HandleStore, prefix: str, *, cache: RecordCache,
                 upstreams: Upstreams, forward_cache: ForwardCache, negative_ttl: float, max_ttl: float,
                 upstream_timeout: float):
        self.api, self.store, self.prefix = api, store, prefix
        self._prefix_key = prefix.lower()
        self.cache, self.upstreams, self.forward_cache = cache, upstreams, forward_cache
        self.negative_ttl, self.max_ttl, self.upstream_timeout = negative_ttl, max_ttl, upstream_timeout
        self._http = None

    @property
    def openapi(self):
        return self.api.openapi

    def changed(self) -> None:
        """A write happened in this process: re-sync the record cache on the next request
        (thread-safe: only a number is set; the event loop does the rest)."""
        self.cache._next_sync = 0.0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith("/api/handles/"):
            text = scope["path"][13:]
            pfx, sep, suffix = text.partition("/")
            if sep and suffix:
                pkey = pfx.lower()
                if pkey == self._prefix_key:
                    anonymous = not any(k == b"authorization" for k, _ in scope["headers"])
                    if anonymous and not scope["query_string"] and await self._resolve_own(text, send):
                        return
                elif self.upstreams:
                    upstream = self.upstreams.for_prefix(suffix if pkey == "0.na" else pfx)
                    if upstream and (pkey != "0.na" or suffix.lower() != self._prefix_key):
                        await self._forward(upstream, scope, send)
                        return
        await self.api(scope, receive, send)

    async def _resolve_own(self, text: str, send) -> bool:
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
        hops = int(hops_text) if hops_text.isdigit() else 0
        text = scope["path"][13:]
        if hops >= MAX_HOPS:
            await _send(send, 508, _dumps({"responseCode": 2, "handle": text,
                                           "message": f"resolution loop: more than {MAX_HOPS} hops"}))
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
        except Exception as exc:  # noqa: BLE001 - any transport failure: serve stale or say so
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


async def _send(send, status: int, body: bytes, *, cache: str | None = None, age: float | None = None):
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if cache:
        headers.append((b"x-cache", cache.encode()))
    if age is not None:
        headers.append((b"age", str(int(age)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(store: HandleStore, prefix: str, *, admins: Iterable[str] = (),
               upstreams: Upstreams | dict | None = None, cache_size: int = 100_000,
               coherence: float = 0.2, forward_cache_size: int = 100_000, negative_ttl: float = 30.0,
               max_ttl: float = 86400.0, upstream_timeout: float = 5.0,
               max_body_bytes: int = MAX_BODY_BYTES, title: str = "Enterprise identifier node") -> IdentifierNode:
    """The node serving ``prefix`` from ``store`` (an ASGI app, see :class:`IdentifierNode`).

    ``admins`` are ``index:handle`` identities with every permission (the prefix administrators).
    ``upstreams`` maps other prefixes to upstream node URLs for recursive resolution.
    ``cache_size`` own records cached (0: every resolution reads the store), kept coherent with
    the store's change feed every ``coherence`` seconds.  OpenAPI at ``/openapi.json``.
    """
    our_prefix = prefix.lower()
    parse_identifier(f"{prefix}/x")                    # validates the prefix
    if not isinstance(upstreams, Upstreams):
        upstreams = Upstreams(upstreams)
    admin_set = set()
    for a in admins:
        idx, _, h = a.partition(":")
        admin_set.add((int(idx), parse_identifier(h).key))

    app = FastAPI(title=title, description=__doc__.split("\n\n")[0])

    # ---------------------------------------------------------------- errors
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _reply(exc.rc, exc.handle, exc.status, message=exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errs = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _reply(202, None, 400, message=f"invalid request: {errs}")

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception):
        return _reply(2, None, 500, message=f"server error: {type(exc).__name__}")

    # ---------------------------------------------------------------- helpers
    def ident_of(pfx: str, suffix: str) -> tuple[Identifier, str]:
        text = f"{pfx}/{suffix}"
        try:
            ident = parse_identifier(text)
        except IdentifierError as exc:
            raise ApiError(102, str(exc), text) from None
        ours = ident.suffix.lower() == our_prefix if ident.is_admin else ident.prefix.lower() == our_prefix
        if not ours:
            raise ApiError(301, f"this server is not responsible for prefix {ident.prefix!r}", text)
        return ident, text

    def caller(request: Request, handle: str | None, required: bool) -> tuple[int, str] | None:
        """``(index, handle key)`` of the authenticated caller; ``None`` if anonymous and not required."""
        header = request.headers.get("authorization")
        if not header:
            if required:
                raise ApiError(RC_AUTHENTICATION_NEEDED, "authentication needed", handle)
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer":                   # service tokens (workbench idnode token issue)
            who = store.token_identity(token.strip())
            if who is None:
                raise ApiError(RC_AUTHENTICATION_FAILED, "invalid, expired or revoked token", handle)
            return who
        if scheme.lower() != "basic":
            raise ApiError(RC_AUTHENTICATION_NEEDED, "use HTTP Basic (index:prefix/suffix) or a Bearer token",
                           handle)
        try:
            text = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(RC_AUTHENTICATION_FAILED, "malformed Basic credentials", handle) from None
        user, _, password = text.partition(":")
        user = unquote(user)
        if ":" not in user and user.isdigit():          # client did not URL-encode the ':' in the user
            rest_user, _, password = password.partition(":")
            user = f"{user}:{unquote(rest_user)}"
        idx, _, uhandle = user.partition(":")
        try:
            uindex, uident = int(idx), parse_identifier(uhandle)
        except (ValueError, IdentifierError):
            raise ApiError(RC_AUTHENTICATION_FAILED, "user must be 'index:prefix/suffix'", handle) from None
        if not store.verify(uident, uindex, password):
            raise ApiError(RC_AUTHENTICATION_FAILED, "authentication failed", handle)
        return uindex, uident.key

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
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(202, f"{what} too large (more than {limit} bytes)", handle)
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise ApiError(202, f"{what} too large (more than {limit} bytes)", handle)
        try:
            return json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(202, f"invalid JSON: {exc}", handle) from None

    def values_from_body(body, ident: Identifier, handle: str) -> list[HandleValue]:
        if isinstance(body, list):
            items = body
        elif isinstance(body, dict) and ("values" in body or "value" in body):
            if "handle" in body:
                try:
                    if parse_identifier(body["handle"]) != ident:
                        raise ApiError(202, f"body handle {body['handle']!r} differs from the path", handle)
                except IdentifierError as exc:
                    raise ApiError(102, str(exc), handle) from None
            items = body.get("values", body.get("value"))
        else:
            raise ApiError(202, 'body must be {"values": [...]} or {"handle": ..., "values": [...]}', handle)
        if not isinstance(items, list):
            raise ApiError(202, "'values' must be a list", handle)
        try:
            values = [HandleValue.from_json(v) for v in items]
            HandleRecord(ident, values)                 # duplicate indices
        except HandleValueError as exc:
            raise ApiError(202, f"invalid value: {exc}", handle) from None
        return values

    def index_params(request: Request, handle: str, allow_various: bool = False):
        raw = request.query_params.getlist("index")
        if not raw:
            return None
        if allow_various and any(r.lower() == "various" for r in raw):
            return "various"
        try:
            out = [int(r) for r in raw]
        except ValueError:
            raise ApiError(202, f"index must be integers{' or various' if allow_various else ''}: {raw}",
                           handle) from None
        return out

    def bool_param(request: Request, name: str, default: bool, handle: str | None) -> bool:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ApiError(202, f"{name} must be true or false, not {raw!r}", handle)

    def store_call(handle: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StoreError as exc:
            raise ApiError(exc.response_code, exc.message, handle) from None
        except HandleValueError as exc:
            raise ApiError(202, f"invalid value: {exc}", handle) from None

    # ---------------------------------------------------------------- routes
    @app.get("/api/handles", summary="List handles under a prefix")
    def list_handles(request: Request, prefix: str | None = None, page: int = 0, pageSize: int | None = None):
        user = caller(request, None, required=True)
        if not is_server_admin(user):
            raise ApiError(RC_INSUFFICIENT_PERMISSIONS, "insufficient permissions: listing handles needs "
                           "a prefix administrator", None)
        if not prefix:
            raise ApiError(102, "query parameter 'prefix' is required", None)
        if prefix.lower() != our_prefix:
            raise ApiError(301, f"this server is not responsible for prefix {prefix!r}", None)
        if page < 0 or (pageSize is not None and pageSize < 0):
            raise ApiError(202, "page and pageSize must not be negative", None)
        total, handles = store.list(prefix, page, pageSize)
        return {"responseCode": 1, "handle": None, "prefix": prefix, "totalCount": str(total),
                "page": page, "pageSize": pageSize, "handles": handles}

    @app.get("/api/handles/{pfx}/{suffix:path}", summary="Resolve a handle")
    def resolve(pfx: str, suffix: str, request: Request):
        ident, handle = ident_of(pfx, suffix)
        user = caller(request, handle, required=False)
        indices = index_params(request, handle)
        types = request.query_params.getlist("type") or None
        record = store.get(ident)
        if record is None:
            raise ApiError(100, "handle not found", handle)
        public_only = bool_param(request, "publicOnly", False, handle)
        private_ok = not public_only and may_read_private(user, record)
        values = [v for v in record.values if v.pub_read or private_ok]
        if indices is not None or types is not None:
            idx, tps = set(indices or ()), set(types or ())
            values = [v for v in values if v.index in idx or v.type in tps]
            if not values:
                return _reply(200, handle, 200, message="values not found", values=[])
        return _reply(1, handle, 200, values=[v.to_json() for v in values])

    @app.put("/api/handles/{pfx}/{suffix:path}", summary="Create or modify a handle")
    async def put_handle(pfx: str, suffix: str, request: Request):
        mint = bool_param(request, "mintNewSuffix", False, f"{pfx}/{suffix}")
        if mint:
            if suffix:
                raise ApiError(102, "mintNewSuffix=true is used on /api/handles/{prefix}/", f"{pfx}/{suffix}")
            suffix = uuid.uuid4().hex
        ident, handle = ident_of(pfx, suffix)
        user = caller(request, handle, required=True)
        body = await read_body(request, handle)
        values = values_from_body(body, ident, handle)
        overwrite = bool_param(request, "overwrite", True, handle) and not mint
        indices = index_params(request, handle, allow_various=True)
        created, _ = store_call(handle, store.put, ident, values, overwrite=overwrite, indices=indices,
                                who=who_text(user), check=write_check(user, handle))
        node.changed()
        return _reply(1, handle, 201 if created else 200)

    @app.delete("/api/handles/{pfx}/{suffix:path}", summary="Delete a handle or some of its values")
    def delete_handle(pfx: str, suffix: str, request: Request):
        ident, handle = ident_of(pfx, suffix)
        user = caller(request, handle, required=True)
        indices = index_params(request, handle)
        store_call(handle, store.delete, ident, indices, who=who_text(user), check=write_check(user, handle))
        node.changed()
        return _reply(1, handle, 200)

    @app.post("/api/batch", summary="Register many handles at once (idempotent; one transaction)")
    async def batch(request: Request):
        user = caller(request, None, required=True)
        body = await read_body(request, None, limit=MAX_BATCH_BYTES, what="batch")
        items = body.get("records") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ApiError(202, 'body must be {"records": [{"handle": ..., "values": [...]}, ...]}', None)
        if len(items) > MAX_BATCH_RECORDS:
            raise ApiError(202, f"at most {MAX_BATCH_RECORDS} records per batch, got {len(items)}", None)
        overwrite = bool_param(request, "overwrite", True, None)
        records = []
        for i, item in enumerate(items):
            where = item.get("handle") if isinstance(item, dict) and isinstance(item.get("handle"), str) else None
            try:
                rec = HandleRecord.from_json(item)
            except IdentifierError as exc:
                raise ApiError(102, f"record {i}: {exc}", where) from None
            except HandleValueError as exc:
                raise ApiError(202, f"record {i}: invalid value: {exc}", where) from None
            ident_of(rec.identifier.prefix, rec.identifier.suffix)       # ours?
            records.append(rec)

        def check(before, after):
            write_check(user, str((after or before).identifier))(before, after)

        counts = await run_in_threadpool(store_call, None, store.put_many, records, who=who_text(user),
                                         check=check, batch_size=max(1, len(records)), overwrite=overwrite)
        node.changed()
        return {"responseCode": 1, "handle": None, **counts}

    def reverse(request: Request):
        params = request.query_params
        pfx = params.get("prefix") or None
        limit = params.get("limit", "1000")
        if not limit.isdigit():
            raise ApiError(202, "limit must be a non-negative integer", None)
        filters = [(k, v) for k, v in params.multi_items() if k not in ("prefix", "limit", "page", "pageSize")]
        if not filters:
            raise ApiError(202, "give at least one TYPE=value filter, e.g. URL=https://…", None)
        result: set[str] | None = None
        for t, v in filters:
            found = set(store.reverse(v, type=t, prefix=pfx, limit=int(limit)))
            result = found if result is None else result & found
        return JSONResponse(sorted(result or ()))

    app.get("/api/hrls/handles/", summary="Reverse look-up: handles by value")(reverse)
    app.get("/hrls/handles/", summary="Reverse look-up (pyhandle path)")(reverse)
    node = IdentifierNode(app, store, prefix, cache=RecordCache(store, cache_size, coherence=coherence),
                          upstreams=upstreams, forward_cache=ForwardCache(forward_cache_size),
                          negative_ttl=negative_ttl, max_ttl=max_ttl, upstream_timeout=upstream_timeout)
    return node
