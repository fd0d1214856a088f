"""Scheduled pull from a REST/JSON API (seed §7.2 b: push preferred, otherwise scheduled pull).

:class:`RestPull` GETs ``base_url + path`` with httpx — bearer token (or any header), query
parameters, an incremental watermark parameter (``?since=<last committed>``), page-number or
next-link pagination — and hands every page to the caller's ``ingest`` callback as a
:class:`~connectors.ConnectorResult` whose ``raw`` is the response body **exactly as received**.
The watermark (the largest ``watermark_field`` value delivered) is committed to a
:class:`~connectors.sql.WatermarkStore` only **after** ``ingest`` returned:

* ``ordered=True`` (the API returns records ascending by the watermark field, as incremental APIs
  do): committed after every page, but never splitting a group of records sharing the page's last
  watermark value — so a crash between pages re-delivers at most one page (plus that tie group);
* ``ordered=False``: committed once, after the last page of the run.

Transient failures — connection errors, timeouts, HTTP 5xx/429, a body that is not JSON — are
retried ``retries`` times with exponential backoff; then :class:`~connectors.sql.ConnectorError`
names the URL (secrets masked) and the last committed watermark.  Other HTTP 4xx fail at once.
Nothing is committed past a failure.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import pandas as pd

from workbench.core.errors import WorkbenchError

from . import ConnectorResult
from .sql import (
    ConnectorError,
    PullSummary,
    WatermarkedPull,
    WatermarkStore,
    _as_store,
    format_watermark,
    run_every,
    safe_name_part,
    to_frame,
)

__all__ = ["ConnectorError", "RestPull", "WatermarkStore", "read"]

name = "rest"
log = logging.getLogger("connectors.rest")

_SECRET = re.compile(r"(token|key|secret|password|passwd|pwd|signature|sig|auth)", re.IGNORECASE)
_RECORD_KEYS = ("data", "items", "records", "results", "rows")


class _Retryable(WorkbenchError):
    pass


def mask_http_url(url: str) -> str:
    """``url`` with user-info passwords and secret-looking query parameters replaced by ``***``."""
    parts = urlsplit(str(url))
    netloc = re.sub(r":[^:@/]*@", ":***@", parts.netloc)
    query = urlencode([(k, "***" if _SECRET.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _get_path(obj, path: str | None):
    """``obj["a"]["b"]`` for ``path="a.b"`` (None when missing)."""
    if path is None:
        return obj
    for part in path.split("."):
        if isinstance(obj, Mapping) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return None
    return obj


def _wm_key(value):
    """Sort key for watermark values as APIs send them: numbers, ISO timestamps, other strings."""
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (0, value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        value = value.isoformat()
    text = str(value)
    try:
        t = _dt.datetime.fromisoformat(text)  # 3.11+: also "…Z"
    except ValueError:
        return (2, text)
    if t.tzinfo is not None:
        return (1, t.timestamp())
    return (1, (t - _dt.datetime(1970, 1, 1)).total_seconds())


def _param_value(value):
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return value


class RestPull(WatermarkedPull):
    """Incremental pull of a JSON API.

    Parameters
    ----------
    base_url, path : the endpoint is ``base_url`` joined with ``path``.
    params : fixed query parameters.
    token : sent as ``<auth_header>: <auth_scheme> <token>`` (default ``Authorization: Bearer …``);
        ``auth_scheme=None`` sends the bare token (e.g. ``auth_header="X-API-Key"``).
    headers : other request headers.
    watermark_param : query parameter carrying the last committed watermark (``since``).
    watermark_field : dotted path of the watermark in each record (``updated_at``, ``meta.seq``).
    records_field : dotted path of the record list in the body (default: the body if it is a list,
        else the first of ``data``/``items``/``records``/``results``/``rows``).
    pagination : ``"none"``, ``"page"`` (``page_param`` = first_page, first_page+1 …, until an empty
        or short page) or ``"next"`` (follow ``next_field`` in the body — dotted path, relative or
        absolute URL — or an HTTP ``Link: <…>; rel="next"`` header, until there is none).
    page_size, page_size_param : page size to ask for (and to detect the last, short page).
    kind, columns, defaults, keep_unmapped : canonical kind, mapping (dotted source field →
        canonical column; nested objects are flattened ``a.b``), constants — as in :class:`SqlPull`.
    source : sending system (metadata ``source``).  state : :class:`WatermarkStore` or its path.
    ordered : records come ascending by the watermark field (commit per page) — see module doc.
    timeout, retries, backoff : per request; retry after ``backoff``·2^i s (or ``Retry-After``).
    transport, verify : passed to :class:`httpx.Client` (tests, custom CAs).
    """

    def __init__(self, base_url: str, path: str = "", *, params: Mapping[str, Any] | None = None,
                 token: str | None = None, auth_header: str = "Authorization", auth_scheme: str | None = "Bearer",
                 headers: Mapping[str, str] | None = None, watermark_param: str | None = None,
                 watermark_field: str | None = None, records_field: str | None = None,
                 pagination: str = "none", page_param: str = "page", first_page: int = 1,
                 page_size: int | None = None, page_size_param: str | None = None, next_field: str | None = "next",
                 max_pages: int = 10_000, kind: str, columns: Mapping[str, str] | None = None,
                 defaults: Mapping[str, Any] | None = None, keep_unmapped: bool = True, source: str,
                 state, state_key: str | None = None, name: str | None = None, initial_watermark=None,
                 ordered: bool = True, timeout: float = 30.0, retries: int = 3, backoff: float = 0.5,
                 transport=None, verify=True):
        if pagination not in ("none", "page", "next"):
            raise ValueError("pagination must be 'none', 'page' or 'next'")
        if kind not in ("readings", "activity", "invoice"):
            raise ValueError(f"unknown kind '{kind}'")
        if watermark_param and not watermark_field:
            raise ValueError("watermark_param needs watermark_field (where the watermark is in each record)")
        self.url = urljoin(base_url.rstrip("/") + "/", path.lstrip("/")) if path else base_url
        self.origin = mask_http_url(self.url)
        self.params = dict(params or {})
        self.headers = dict(headers or {})
        if token is not None:
            self.headers[auth_header] = f"{auth_scheme} {token}" if auth_scheme else token
        self.watermark_param, self.watermark_field, self.records_field = watermark_param, watermark_field, records_field
        self.pagination, self.page_param, self.first_page = pagination, page_param, int(first_page)
        self.page_size, self.page_size_param, self.next_field = page_size, page_size_param, next_field
        self.max_pages = int(max_pages)
        self.kind, self.columns, self.defaults, self.keep_unmapped = kind, dict(columns or {}), dict(defaults or {}), keep_unmapped
        self.source = source
        self.store = _as_store(state)
        self.state_key = state_key or f"rest:{source}:{self.origin}:{watermark_field}"
        self.name = name or (urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1] or source)
        self.initial_watermark = initial_watermark
        self.ordered = ordered
        self.timeout, self.retries, self.backoff = float(timeout), int(retries), float(backoff)
        self.transport, self.verify = transport, verify

    def __repr__(self) -> str:
        return f"RestPull({self.origin!r}, key={self.state_key!r})"

    # -- public ---------------------------------------------------------------------------------
    def run(self, ingest: Callable[[ConnectorResult], Any]) -> PullSummary:
        """Fetch every page after the committed watermark: ``ingest(result)`` per page, then commit."""
        import httpx

        committed = self.watermark
        summary = PullSummary(key=self.state_key, watermark_before=committed, watermark_after=committed)
        params = dict(self.params)
        if self.watermark_param and committed is not None:
            params[self.watermark_param] = _param_value(committed)
        if self.pagination == "page" and self.page_size and self.page_size_param:
            params[self.page_size_param] = self.page_size
        url, page_no, pages, run_max = self.url, self.first_page, 0, None
        with httpx.Client(headers=self.headers, timeout=self.timeout, transport=self.transport,
                          verify=self.verify, follow_redirects=True) as client:
            while True:
                if self.pagination == "page":
                    params[self.page_param] = page_no
                resp, body = self._get(client, url, params, committed)
                pages += 1
                records = self._records(body, resp)
                next_url = self._next_url(body, resp) if self.pagination == "next" else None
                if self.pagination == "page":
                    more = bool(records) and not (self.page_size and len(records) < self.page_size)
                elif self.pagination == "next":
                    more = bool(next_url) and next_url != str(resp.request.url)
                else:
                    more = False
                if records:
                    wms = self._watermarks(records, resp)
                    page_max = max(wms, key=_wm_key) if wms else None
                    result = self._result(records, resp, wms, page=pages, committed=committed)
                    out = ingest(result)  # raises → nothing more is committed
                    summary.chunks += 1
                    summary.rows += len(records)
                    summary.results.append(out)
                    if page_max is not None and (run_max is None or _wm_key(page_max) > _wm_key(run_max)):
                        run_max = page_max
                    if self.ordered and page_max is not None:
                        if more:  # the last tie group may continue on the next page: not yet complete
                            lower = [w for w in wms if _wm_key(w) < _wm_key(page_max)]
                            safe = max(lower, key=_wm_key) if lower else None
                        else:
                            safe = page_max
                        committed = self._commit(committed, safe, result)
                if not more:
                    break
                if pages >= self.max_pages:
                    log.warning("REST source %s: stopped after max_pages=%d; the next run continues",
                                self.origin, self.max_pages)
                    break
                if self.pagination == "page":
                    page_no += 1
                else:
                    url, params = next_url, {}
        if not self.ordered and run_max is not None:
            committed = self._commit(committed, run_max, None)
        summary.watermark_after = committed
        return summary

    def run_every(self, seconds: float, ingest: Callable[[ConnectorResult], Any], *,
                  max_runs: int | None = None, stop_event: threading.Event | None = None,
                  on_error: str = "log") -> list[PullSummary]:
        """:meth:`run` every ``seconds`` until ``max_runs`` or ``stop_event`` (see :func:`connectors.sql.run_every`);
        a failed run is logged and the schedule goes on."""
        return run_every(lambda: self.run(ingest), seconds, max_runs=max_runs, stop_event=stop_event,
                         on_error=on_error, key=self.state_key)

    # -- plumbing -------------------------------------------------------------------------------
    def _commit(self, committed, value, result):
        if value is None or (committed is not None and _wm_key(value) <= _wm_key(committed)):
            return committed
        info = {"source": self.source}
        if result is not None:
            info.update(raw_name=result.raw_name, sha256=result.sha256, rows=len(result.data))
        self.store.set(self.state_key, value, **info)
        return value

    def _fail(self, url: str, what: str, committed) -> ConnectorError:
        shown = mask_http_url(url)
        return ConnectorError(
            f"REST source GET {shown} {what} — last committed watermark "
            f"{self.watermark_field} = {format_watermark(committed)}; nothing after it was committed, "
            f"the next run resumes from there", origin=shown, watermark=committed)

    def _get(self, client, url: str, params: Mapping, committed):
        import httpx

        full = str(httpx.URL(url, params=params)) if params else url
        err = "failed"
        for attempt in range(self.retries + 1):
            retry_after = None
            try:
                resp = client.get(url, params=params or None)
                code = resp.status_code
                if code >= 500 or code == 429:
                    ra = resp.headers.get("Retry-After", "")
                    retry_after = float(ra) if ra.replace(".", "", 1).isdigit() else None
                    raise _Retryable(f"HTTP {code} {resp.reason_phrase}: {resp.text[:200].strip()}")
                if code >= 400:
                    hint = " (check the token)" if code in (401, 403) else ""
                    raise self._fail(full, f"answered HTTP {code} {resp.reason_phrase}{hint}: "
                                           f"{resp.text[:200].strip()}", committed)
                try:
                    body = json.loads(resp.content)
                except ValueError as exc:
                    raise _Retryable(f"response is not valid JSON ({exc}): {resp.content[:80]!r}") from exc
                return resp, body
            except httpx.TimeoutException as exc:
                err = f"timed out after {self.timeout:g} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                err = f"connection failed ({type(exc).__name__}: {exc})"
            except _Retryable as exc:
                err = str(exc)
            if attempt < self.retries:
                wait = min(retry_after if retry_after is not None else self.backoff * 2 ** attempt, 60.0)
                log.warning("REST source %s: %s (attempt %d/%d, retrying in %.2fs)", mask_http_url(full), err,
                            attempt + 1, self.retries + 1, wait)
                time.sleep(wait)
        raise self._fail(full, f"failed after {self.retries + 1} attempt(s): {err}", committed)

    def _records(self, body, resp) -> list:
        if self.records_field is not None:
            recs = _get_path(body, self.records_field)
        elif isinstance(body, list):
            recs = body
        else:
            recs = next((body[k] for k in _RECORD_KEYS if isinstance(body, Mapping) and isinstance(body.get(k), list)), None)
        if not isinstance(recs, list) or not all(isinstance(r, Mapping) for r in recs):
            where = f"'{self.records_field}'" if self.records_field else "the body (or data/items/records/results/rows)"
            raise ConnectorError(f"REST source {mask_http_url(str(resp.request.url))}: {where} is not a list of "
                                 f"JSON objects", origin=self.origin, watermark=self.watermark)
        return recs

    def _next_url(self, body, resp) -> str | None:
        nxt = _get_path(body, self.next_field) if self.next_field and isinstance(body, Mapping) else None
        if not nxt:
            nxt = resp.links.get("next", {}).get("url")
        return urljoin(str(resp.request.url), str(nxt)) if nxt else None

    def _watermarks(self, records, resp) -> list:
        if not self.watermark_field:
            return []
        wms = [_get_path(r, self.watermark_field) for r in records]
        missing = sum(w is None for w in wms)
        if missing:
            raise ConnectorError(f"REST source {mask_http_url(str(resp.request.url))}: {missing} record(s) "
                                 f"without watermark field '{self.watermark_field}'", origin=self.origin,
                                 watermark=self.watermark)
        return wms

    def _result(self, records, resp, wms, *, page: int, committed) -> ConnectorResult:
        df = pd.json_normalize(records)
        data = to_frame(df, kind=self.kind, columns=self.columns, defaults=self.defaults,
                        keep_unmapped=self.keep_unmapped, origin=self.origin, watermark=committed)
        if wms:
            lo, hi = min(wms, key=_wm_key), max(wms, key=_wm_key)
            span = f"{safe_name_part(lo)}-{safe_name_part(hi)}"
        else:
            span = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
            lo = hi = None
        ext = "json" if "json" in resp.headers.get("content-type", "json") else "txt"
        meta = {
            "connector": name,
            "source": self.source,
            "origin": mask_http_url(str(resp.request.url)),
            "http_status": resp.status_code,
            "content_type": resp.headers.get("content-type"),
            "watermark_field": self.watermark_field,
            "watermark_after": _param_value(committed),
            "watermark_from": _param_value(lo),
            "watermark_to": _param_value(hi),
            "page": page,
            "records": len(records),
        }
        return ConnectorResult(data, meta, kind=self.kind, raw=resp.content,
                               raw_name=f"rest-{safe_name_part(self.name)}-{span}-p{page}.{ext}")


def read(url: str, *, params: Mapping | None = None, token: str | None = None, records_field: str | None = None,
         kind: str = "readings", columns: Mapping[str, str] | None = None, defaults: Mapping[str, Any] | None = None,
         source: str = "rest", timeout: float = 30.0, retries: int = 2, transport=None) -> ConnectorResult:
    """One GET of ``url`` (no watermark, no pagination) as one :class:`ConnectorResult`."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pull = RestPull(url, params=params, token=token, records_field=records_field, kind=kind, columns=columns,
                        defaults=defaults, source=source, state=f"{tmp}/state.db", timeout=timeout,
                        retries=retries, transport=transport)
        got: list[ConnectorResult] = []
        pull.run(got.append)
    if got:
        return got[0]
    return ConnectorResult(pd.DataFrame(), {"connector": name, "source": source, "origin": mask_http_url(url),
                                            "records": 0}, kind=kind)
