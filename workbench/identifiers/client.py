"""Python client of the enterprise identifier node (seed §10.2.2): :class:`Client` and :class:`AsyncClient`.

Used by notebooks, apps and connectors to register, resolve and manage identifiers over the node's
Handle.net-style JSON REST API (:mod:`workbench.identifiers.server`)::

    from workbench.identifiers import Client

    with Client("http://127.0.0.1:8000", username="300:88.123.4567/admin", password="…") as c:
        c.register_many(records)                        # POST /api/batch, chunked, idempotent
        rec = c.resolve("88.123.4567/node.F01")         # HandleRecord (a table in Jupyter)
        parent = rec.first("REF").value

:class:`AsyncClient` has the same methods as coroutines (``await c.resolve(…)``).

Design (sans-IO): every operation is a generator in this module that *yields* request
descriptions (:class:`_Request`) and receives :class:`httpx.Response` objects back; it validates
arguments, builds the requests and parses the replies.  The two clients only drive these
generators — one with :class:`httpx.Client`, one with :class:`httpx.AsyncClient` — so request
building, response parsing, error mapping and chunking exist once.

Retries: requests that are safe to repeat (reads, and ``/api/batch`` chunks — the node's batch
registration is idempotent) are retried on transport errors (time-outs, refused or dropped
connections) and on HTTP 502/503/504, ``retries`` times with a short exponential back-off.
Single writes (register, modify, delete, mint) are sent once: repeating one whose reply was lost
could report a misleading error (e.g. 'handle already exists' for the client's own write).

Errors are :class:`ClientError` (``response_code``, ``status``, ``message``, ``handle``), with one
subclass per Handle response code (:class:`HandleNotFound` for 100, :class:`AuthenticationError`
for 402/403 and HTTP 401, …) and :class:`TransportFailure` when the node could not be reached.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import quote

import httpx

from workbench.core.errors import WorkbenchError
from workbench.identifiers.model import (
    HandleRecord,
    HandleValue,
    HandleValueError,
    Identifier,
    parse_identifier,
)

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ClientError",
    "HandleExists",
    "HandleNotFound",
    "InvalidHandle",
    "InvalidValue",
    "NotResponsible",
    "PermissionDenied",
    "ServerError",
    "TransportFailure",
    "ValueExists",
    "ValuesNotFound",
]

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF = 0.2            # seconds; doubled per attempt
DEFAULT_CHUNK_SIZE = 1000
RETRY_STATUSES = frozenset({502, 503, 504})
BATCH_PATH = "/api/batch"
BATCH_COUNTS = ("total", "new", "updated", "unchanged")


# --------------------------------------------------------------------------- errors


class ClientError(WorkbenchError):
    """The node refused a request (or could not be reached).

    ``response_code`` is the Handle REST ``responseCode`` of the reply (``None`` when the reply
    had none, e.g. a proxy error or an unknown endpoint), ``status`` the HTTP status (``None``
    for transport failures), ``message`` the node's message, ``handle`` the handle concerned.
    """

    def __init__(self, message: str, *, response_code: int | None = None, status: int | None = None,
                 handle: str | None = None):
        super().__init__(message)
        self.message = message
        self.response_code = response_code
        self.status = status
        self.handle = handle
        #: for :meth:`Client.register_many`: counts of the chunks written before the failure
        self.partial: dict | None = None

    def __str__(self) -> str:
        parts = [self.message]
        if self.handle:
            parts.append(f"handle {self.handle}")
        if self.response_code is not None:
            parts.append(f"responseCode {self.response_code}")
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


class HandleNotFound(ClientError):
    """responseCode 100: the handle does not exist."""


class HandleExists(ClientError):
    """responseCode 101: the handle exists already (``register(…, overwrite=False)``)."""


class InvalidHandle(ClientError):
    """responseCode 102: malformed handle."""


class ValuesNotFound(ClientError):
    """responseCode 200 on a write: none of the given indices exist."""


class ValueExists(ClientError):
    """responseCode 201: a value at that index exists already."""


class InvalidValue(ClientError):
    """responseCode 202: malformed value, record or request."""


class NotResponsible(ClientError):
    """responseCode 301: the node does not serve that prefix."""


class PermissionDenied(ClientError):
    """responseCode 400: authenticated, but the HS_ADMIN permissions do not allow the operation."""


class AuthenticationError(ClientError):
    """responseCode 402 (credentials needed) or 403 (wrong credentials), or HTTP 401."""


class ServerError(ClientError):
    """responseCode 2 or an HTTP 5xx: the node failed."""


class TransportFailure(ClientError):
    """The node could not be reached or did not answer in time (after the retries)."""


_BY_CODE: dict[int, type[ClientError]] = {
    100: HandleNotFound, 101: HandleExists, 102: InvalidHandle, 200: ValuesNotFound, 201: ValueExists,
    202: InvalidValue, 301: NotResponsible, 400: PermissionDenied, 402: AuthenticationError,
    403: AuthenticationError, 2: ServerError,
}


# --------------------------------------------------------------------------- requests (pure)


@dataclass(frozen=True)
class _Request:
    """What to send; the drivers turn it into an httpx request."""

    method: str
    path: str
    params: tuple = ()
    json: Any = None
    auth: bool = False            # send the credentials
    retry: bool = False           # safe to repeat on transport errors
    handle: str | None = None     # for error messages
    meta: dict = field(default_factory=dict, compare=False)


def _ident(handle: str | Identifier) -> Identifier:
    return parse_identifier(handle)


def handle_path(handle: str | Identifier) -> str:
    """``/api/handles/<prefix>/<suffix>`` with both parts percent-encoded (``/`` inside the suffix kept)."""
    ident = _ident(handle)
    return f"/api/handles/{quote(ident.prefix, safe='')}/{quote(ident.suffix, safe='/')}"


def _encoded_user(username: str) -> str:
    """Validate ``index:prefix/suffix`` and URL-encode it as the node expects (``300%3A88.1.2/admin``)."""
    index, sep, handle = username.partition(":")
    if not sep or not index.isdigit():
        raise ValueError(f"username {username!r}: expected 'index:prefix/suffix', e.g. '300:88.123.4567/admin'")
    parse_identifier(handle)
    return quote(username, safe="/")


def _record(record: HandleRecord | Mapping) -> HandleRecord:
    if isinstance(record, HandleRecord):
        return record
    if isinstance(record, Mapping):
        return HandleRecord.from_json(record)
    raise TypeError(f"expected a HandleRecord (or its JSON), got {type(record).__name__}")


def _values(values) -> list[HandleValue]:
    if isinstance(values, HandleValue):
        return [values]
    if isinstance(values, HandleRecord):
        return values.values
    out = []
    for v in values:
        out.append(v if isinstance(v, HandleValue) else HandleValue.from_json(v))
    return out


def _index_params(indices) -> list[tuple[str, str]]:
    if indices is None:
        return []
    if isinstance(indices, int):
        indices = [indices]
    out = []
    for i in indices:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"index {i!r} is not an integer")
        out.append(("index", str(i)))
    return out


def _bool(flag: bool) -> str:
    return "true" if flag else "false"


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --------------------------------------------------------------------------- replies (pure)


def _json(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        return None


def error_from_response(response: httpx.Response, handle: str | None = None) -> ClientError:
    """The :class:`ClientError` (subclass) for an error reply."""
    body = _json(response)
    rc = message = None
    if isinstance(body, Mapping):
        rc = body.get("responseCode")
        rc = rc if isinstance(rc, int) and not isinstance(rc, bool) else None
        message = body.get("message") or body.get("detail")
        if isinstance(body.get("handle"), str):
            handle = body["handle"]
    if not isinstance(message, str):
        message = response.reason_phrase or f"HTTP {response.status_code}"
    if rc is None:                                       # not a Handle reply: say which request
        try:
            message = f"{message}: {response.request.method} {response.request.url.path}"
        except RuntimeError:                             # a Response built without its request
            pass
    if rc is not None and rc in _BY_CODE:
        cls = _BY_CODE[rc]
    elif response.status_code == 401:
        cls = AuthenticationError
    elif response.status_code >= 500:
        cls = ServerError
    else:
        cls = ClientError
    return cls(message, response_code=rc, status=response.status_code, handle=handle)


def _expect(response: httpx.Response, handle: str | None, ok_codes=(1,)) -> dict:
    """The JSON body of a successful Handle reply; raises the mapped :class:`ClientError` otherwise."""
    body = _json(response)
    rc = body.get("responseCode") if isinstance(body, Mapping) else None
    if response.status_code >= 400 or rc not in ok_codes:
        if response.status_code < 400 and not isinstance(body, Mapping):
            raise ClientError(f"unexpected reply (not Handle JSON): {response.text[:200]!r}",
                              status=response.status_code, handle=handle)
        raise error_from_response(response, handle)
    return body


# --------------------------------------------------------------------------- operations (sans-IO)
#
# Each operation is a generator: it yields _Request objects, is sent the httpx.Response for each,
# and returns the result.  ClientErrors from the transport are thrown into it (so it can annotate).


def _op_resolve(handle, types, indices, auth):
    ident = _ident(handle)
    params = [("type", t) for t in ([types] if isinstance(types, str) else (types or ()))]
    params += _index_params(indices)
    resp = yield _Request("GET", handle_path(ident), tuple(params), auth=auth, retry=True, handle=str(ident))
    body = _expect(resp, str(ident), ok_codes=(1, 200))      # 200: filters matched nothing → empty record
    try:
        return HandleRecord.from_json({"handle": str(ident), "values": body.get("values") or []})
    except HandleValueError as exc:
        raise ClientError(f"the node sent an invalid record: {exc}", status=resp.status_code,
                          handle=str(ident)) from None


def _op_exists(handle):
    ident = _ident(handle)
    resp = yield _Request("GET", handle_path(ident), retry=True, handle=str(ident))
    try:
        _expect(resp, str(ident), ok_codes=(1, 200))
    except HandleNotFound:
        return False
    return True


def _op_register(record, overwrite):
    rec = _record(record)
    h = str(rec.identifier)
    resp = yield _Request("PUT", handle_path(rec.identifier), (("overwrite", _bool(overwrite)),),
                          json={"values": [v.to_json() for v in rec.values]}, auth=True, handle=h)
    _expect(resp, h)
    return resp.status_code == 201


def _op_modify(handle, values):
    ident = _ident(handle)
    vals = _values(values)
    if not vals:
        raise ValueError("modify() needs at least one value")
    params = _index_params([v.index for v in vals]) + [("overwrite", "true")]
    resp = yield _Request("PUT", handle_path(ident), tuple(params), json={"values": [v.to_json() for v in vals]},
                          auth=True, handle=str(ident))
    _expect(resp, str(ident))


def _op_delete(handle, indices):
    ident = _ident(handle)
    resp = yield _Request("DELETE", handle_path(ident), tuple(_index_params(indices)), auth=True,
                          handle=str(ident))
    _expect(resp, str(ident))


def _op_list(prefix, page, page_size):
    params = [("prefix", prefix)]
    if page is not None:
        params.append(("page", str(int(page))))
    if page_size is not None:
        params.append(("pageSize", str(int(page_size))))
    resp = yield _Request("GET", "/api/handles", tuple(params), auth=True, retry=True)
    body = _expect(resp, None)
    return int(body.get("totalCount") or 0), list(body.get("handles") or [])


def _op_reverse(filters: Mapping):
    if not filters:
        raise ValueError("reverse() needs at least one TYPE=value filter, e.g. reverse(URL='https://…')")
    params = []
    for k, v in filters.items():
        for item in ([v] if isinstance(v, (str, int)) else v):
            params.append((k, str(item)))
    resp = yield _Request("GET", "/api/hrls/handles/", tuple(params), retry=True)
    body = _json(resp)
    if resp.status_code >= 400 or not isinstance(body, list):
        if resp.status_code < 400:
            raise ClientError(f"unexpected reverse look-up reply: {resp.text[:200]!r}", status=resp.status_code)
        raise error_from_response(resp)
    return [str(h) for h in body]


def _op_mint(prefix, values):
    parse_identifier(f"{prefix}/x")                     # validates the prefix
    vals = _values(values)
    resp = yield _Request("PUT", f"/api/handles/{quote(prefix, safe='')}/", (("mintNewSuffix", "true"),),
                          json={"values": [v.to_json() for v in vals]}, auth=True, handle=f"{prefix}/")
    body = _expect(resp, f"{prefix}/")
    return str(body["handle"])


def _op_ancestry(handle, ref_type, max_depth, auth):
    """The record of ``handle``, then the record its ``ref_type`` value names, and so on to the root."""
    chain: list[HandleRecord] = []
    seen: set[str] = set()
    current: Identifier | None = _ident(handle)
    while current is not None:
        if current.key in seen:
            raise ClientError(f"{ref_type} chain loops back to {current}", handle=str(current))
        if len(chain) >= max_depth:
            raise ClientError(f"{ref_type} chain longer than {max_depth}", handle=str(_ident(handle)))
        seen.add(current.key)
        record = yield from _op_resolve(current, None, None, auth)
        chain.append(record)
        ref = record.first(ref_type)
        current = parse_identifier(ref.value) if ref is not None and ref.format == "string" else None
    return chain


def _op_register_many(records, chunk_size):
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size {chunk_size!r} must be a positive integer")
    counts = {k: 0 for k in BATCH_COUNTS}
    counts["chunks"] = 0
    for chunk in _chunks(records, chunk_size):
        payload = [_record(r).to_json() for r in chunk]
        try:
            resp = yield _Request("POST", BATCH_PATH, json={"records": payload}, auth=True, retry=True,
                                  meta={"records": len(payload)})
            reply = _expect(resp, None)
        except ClientError as exc:
            exc.partial = dict(counts)
            raise
        for k in BATCH_COUNTS:
            n = reply.get(k, len(payload) if k == "total" else 0)
            counts[k] += int(n or 0)
        counts["chunks"] += 1
    return counts


# --------------------------------------------------------------------------- drivers



class _BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` (a service token from ``workbench idnode token issue``)."""

    def __init__(self, token: str):
        self._header = f"Bearer {token}"

    def auth_flow(self, request):
        request.headers["Authorization"] = self._header
        yield request

class _Base:
    """Configuration shared by both clients; the request → httpx keyword translation."""

    def __init__(self, base_url: str, *, username: str | None = None, password: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, transport=None, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, verify=True, headers: Mapping | None = None,
                 token: str | None = None):
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        if token is not None and username is not None:
            raise ValueError("give username/password or a token, not both")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries {retries!r} must be a non-negative integer")
        self.base_url = str(base_url).rstrip("/")
        self.username = username
        self.retries = retries
        self.backoff = float(backoff)
        self._auth = httpx.BasicAuth(_encoded_user(username), password) if username is not None else None
        if token is not None:
            self._auth = _BearerAuth(token)
        self._http_kwargs = {"base_url": self.base_url, "timeout": httpx.Timeout(timeout), "transport": transport,
                             "verify": verify, "headers": {"Accept": "application/json", **(headers or {})}}

    def __repr__(self) -> str:
        who = f", username={self.username!r}" if self.username else ""
        return f"{type(self).__name__}({self.base_url!r}{who})"

    def _request_kwargs(self, req: _Request) -> dict:
        kw: dict[str, Any] = {"method": req.method, "url": req.path}
        if req.params:
            kw["params"] = list(req.params)
        if req.json is not None:
            kw["json"] = req.json
        if req.auth and self._auth is not None:
            kw["auth"] = self._auth
        return kw

    def _attempts(self, req: _Request) -> int:
        return 1 + (self.retries if req.retry else 0)

    def _delay(self, attempt: int) -> float:
        return self.backoff * (2 ** attempt)

    @staticmethod
    def _failure(req: _Request, exc: Exception) -> TransportFailure:
        return TransportFailure(f"{req.method} {req.path}: {type(exc).__name__}: {exc}", handle=req.handle)


class Client(_Base):
    """Synchronous client of an enterprise identifier node (on :class:`httpx.Client`).

    Parameters
    ----------
    base_url : str
        The node, e.g. ``"http://127.0.0.1:8000"``.
    username, password : str, optional
        ``index:prefix/suffix`` of an HS_SECKEY holder (e.g. ``"300:88.123.4567/admin"``) and its
        secret; needed for writes (sent as HTTP Basic, the user URL-encoded).
    timeout : float
        Seconds per request (connect, read, write, pool).
    transport : httpx transport, optional
        E.g. :class:`httpx.MockTransport` in tests.
    retries : int
        Extra attempts for reads and batch chunks on transport errors / HTTP 502-504.
    """

    def __init__(self, base_url: str, *, username: str | None = None, password: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, transport=None, retries: int = DEFAULT_RETRIES, **kwargs):
        super().__init__(base_url, username=username, password=password, timeout=timeout,
                         transport=transport, retries=retries, **kwargs)
        self._http = httpx.Client(**self._http_kwargs)

    # -- plumbing
    def _send(self, req: _Request) -> httpx.Response:
        attempts = self._attempts(req)
        for attempt in range(attempts):
            try:
                resp = self._http.request(**self._request_kwargs(req))
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts:
                    raise self._failure(req, exc) from exc
            else:
                if resp.status_code not in RETRY_STATUSES or attempt + 1 >= attempts:
                    return resp
            time.sleep(self._delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, op):
        try:
            req = next(op)
            while True:
                try:
                    resp = self._send(req)
                except ClientError as exc:
                    req = op.throw(exc)
                else:
                    req = op.send(resp)
        except StopIteration as stop:
            return stop.value

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- operations
    def resolve(self, handle: str | Identifier, *, types: Iterable[str] | str | None = None,
                indices: Iterable[int] | int | None = None, auth: bool = False) -> HandleRecord:
        """The record of ``handle`` (only values of ``types`` / at ``indices`` if given, union).

        Anonymous by default (public values only); ``auth=True`` sends the credentials, so that
        non-public values the user may read are included.  Raises :class:`HandleNotFound`.
        """
        return self._run(_op_resolve(handle, types, indices, auth))

    def exists(self, handle: str | Identifier) -> bool:
        """True if ``handle`` is registered."""
        return self._run(_op_exists(handle))

    def register(self, record: HandleRecord, *, overwrite: bool = False) -> bool:
        """Create ``record`` (``overwrite=True``: or replace it entirely); True if it was created.

        Raises :class:`HandleExists` when it exists and ``overwrite`` is false.
        """
        return self._run(_op_register(record, overwrite))

    def modify(self, handle: str | Identifier, values: Iterable[HandleValue] | HandleValue) -> None:
        """Add or replace just these values (by index); the record's other values stay."""
        return self._run(_op_modify(handle, values))

    def delete(self, handle: str | Identifier, indices: Iterable[int] | int | None = None) -> None:
        """Delete the values at ``indices``, or the whole handle when ``indices`` is None."""
        return self._run(_op_delete(handle, indices))

    def list(self, prefix: str, page: int | None = None, page_size: int | None = None) -> tuple[int, list[str]]:
        """``(total, handles)`` under ``prefix``; ``page`` is 0-based, ``page_size=0`` counts only."""
        return self._run(_op_list(prefix, page, page_size))

    def reverse(self, filters: Mapping[str, Any] | None = None, /, **more) -> list[str]:
        """Handles having values equal to the filters (all must match), e.g. ``reverse(URL="https://…")``;
        types with dots as a mapping: ``reverse({"CARBON.GRADE": …})``.  ``prefix=``/``limit=`` narrow it."""
        return self._run(_op_reverse({**(filters or {}), **more}))

    def ancestry(self, handle: str | Identifier, *, ref_type: str = "REF", max_depth: int = 32,
                 auth: bool = False) -> list[HandleRecord]:
        """Follow the parent references (``REF`` values, as :func:`records_from_boundary` writes them)
        from ``handle`` up: ``[record, parent, …, root]`` (e.g. meter → process → … → enterprise)."""
        return self._run(_op_ancestry(handle, ref_type, max_depth, auth))

    def mint(self, prefix: str, values: Iterable[HandleValue] | HandleValue) -> str:
        """Register ``values`` under a new suffix chosen by the node; the new handle."""
        return self._run(_op_mint(prefix, values))

    def register_many(self, records: Iterable[HandleRecord], *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict:
        """Register (create / replace / leave unchanged) many records through ``POST /api/batch``,
        ``chunk_size`` per request; chunks are retried on time-outs (the batch is idempotent).

        Returns the summed counts ``total``, ``new``, ``updated``, ``unchanged`` and ``chunks``.
        On failure the :class:`ClientError` carries ``partial``: the counts of chunks already written.
        """
        return self._run(_op_register_many(records, chunk_size))


class AsyncClient(_Base):
    """Asynchronous client (on :class:`httpx.AsyncClient`): the methods of :class:`Client` as coroutines."""

    def __init__(self, base_url: str, *, username: str | None = None, password: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, transport=None, retries: int = DEFAULT_RETRIES, **kwargs):
        super().__init__(base_url, username=username, password=password, timeout=timeout,
                         transport=transport, retries=retries, **kwargs)
        self._http = httpx.AsyncClient(**self._http_kwargs)

    # -- plumbing
    async def _send(self, req: _Request) -> httpx.Response:
        attempts = self._attempts(req)
        for attempt in range(attempts):
            try:
                resp = await self._http.request(**self._request_kwargs(req))
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts:
                    raise self._failure(req, exc) from exc
            else:
                if resp.status_code not in RETRY_STATUSES or attempt + 1 >= attempts:
                    return resp
            await asyncio.sleep(self._delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(self, op):
        try:
            req = next(op)
            while True:
                try:
                    resp = await self._send(req)
                except ClientError as exc:
                    req = op.throw(exc)
                else:
                    req = op.send(resp)
        except StopIteration as stop:
            return stop.value

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # -- operations (see Client for the documentation)
    async def resolve(self, handle: str | Identifier, *, types: Iterable[str] | str | None = None,
                      indices: Iterable[int] | int | None = None, auth: bool = False) -> HandleRecord:
        return await self._run(_op_resolve(handle, types, indices, auth))

    async def exists(self, handle: str | Identifier) -> bool:
        return await self._run(_op_exists(handle))

    async def register(self, record: HandleRecord, *, overwrite: bool = False) -> bool:
        return await self._run(_op_register(record, overwrite))

    async def modify(self, handle: str | Identifier, values: Iterable[HandleValue] | HandleValue) -> None:
        return await self._run(_op_modify(handle, values))

    async def delete(self, handle: str | Identifier, indices: Iterable[int] | int | None = None) -> None:
        return await self._run(_op_delete(handle, indices))

    async def list(self, prefix: str, page: int | None = None,
                   page_size: int | None = None) -> tuple[int, list[str]]:
        return await self._run(_op_list(prefix, page, page_size))

    async def reverse(self, filters: Mapping[str, Any] | None = None, /, **more) -> list[str]:
        return await self._run(_op_reverse({**(filters or {}), **more}))

    async def ancestry(self, handle: str | Identifier, *, ref_type: str = "REF", max_depth: int = 32,
                       auth: bool = False) -> list[HandleRecord]:
        return await self._run(_op_ancestry(handle, ref_type, max_depth, auth))

    async def mint(self, prefix: str, values: Iterable[HandleValue] | HandleValue) -> str:
        return await self._run(_op_mint(prefix, values))

    async def register_many(self, records: Iterable[HandleRecord], *,
                            chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict:
        return await self._run(_op_register_many(records, chunk_size))


for _name in ("resolve", "exists", "register", "modify", "delete", "list", "reverse", "ancestry", "mint",
              "register_many"):
    getattr(AsyncClient, _name).__doc__ = getattr(Client, _name).__doc__
del _name
