"""Resolution caches and upstream forwarding for the identifier node (seed §10.2.3 recursive resolution).

Two caches, both bounded LRU dictionaries of ready-to-send JSON bytes:

* :class:`RecordCache` — the node's OWN records (public values of a handle, as served to anonymous
  resolvers).  Authoritative data must never be stale for long: a write through this process
  invalidates its key at once, and :meth:`RecordCache.sync` follows the store's change feed (the
  audit table's ids) at most every ``coherence`` seconds, so other worker processes and bulk loads
  writing to the same database are seen within that interval.
* :class:`ForwardCache` — answers of UPSTREAM nodes for prefixes this node does not own, kept for
  the time-to-live the answer states (the smallest ``ttl`` of its values, as Handle resolvers do;
  "handle not found" for ``negative_ttl``), and served stale when the upstream is unreachable.

:class:`Upstreams` maps prefixes to upstream base URLs by longest hierarchical match
(``88.100`` serves ``88.100.24``; ``*`` is the default).
"""
from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Mapping

__all__ = ["ForwardCache", "RecordCache", "Upstreams", "answer_ttl"]


class _LRU:
    """A bounded least-recently-used mapping (``size`` 0 disables it)."""

    def __init__(self, size: int):
        self.size = max(0, int(size))
        self._d: OrderedDict = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key):
        d = self._d
        try:
            value = d[key]
        except KeyError:
            self.misses += 1
            return None
        d.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key, value) -> None:
        if not self.size:
            return
        d = self._d
        d[key] = value
        d.move_to_end(key)
        while len(d) > self.size:
            d.popitem(last=False)

    def pop(self, key) -> None:
        self._d.pop(key, None)

    def clear(self) -> None:
        self._d.clear()

    def __len__(self) -> int:
        return len(self._d)

    def stats(self) -> dict:
        return {"entries": len(self._d), "size": self.size, "hits": self.hits, "misses": self.misses}


class RecordCache(_LRU):
    """Public values (JSON bytes) of this node's own handles, keyed by :attr:`Identifier.key`."""

    def __init__(self, store, size: int = 100_000, *, coherence: float = 0.2):
        super().__init__(size)
        self.store = store
        self.coherence = float(coherence)
        self._change = store.last_change() if self.size else 0
        self._next_sync = time.monotonic() + self.coherence

    def sync(self, now: float | None = None) -> None:
        """Forget entries written (by anyone) since the last sync; cheap when nothing changed.
        Called on the request path, at most once per ``coherence`` seconds."""
        now = time.monotonic() if now is None else now
        if not self.size or now < self._next_sync:
            return
        self._next_sync = now + self.coherence
        self._change, keys = self.store.changes_since(self._change)
        if keys is None:
            self.clear()
        else:
            for k in keys:
                self.pop(k)


def answer_ttl(body: bytes, *, negative_ttl: float, max_ttl: float) -> float | None:
    """Seconds an upstream answer may be cached: the smallest value ``ttl`` of a success
    (responseCode 1), ``negative_ttl`` for "handle not found" (100); ``None`` → don't cache."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    rc = doc.get("responseCode") if isinstance(doc, dict) else None
    if rc == 100:
        return negative_ttl
    if rc not in (1, 200):
        return None
    ttls = [v.get("ttl") for v in doc.get("values") or [] if isinstance(v, dict)]
    ttls = [t for t in ttls if isinstance(t, int | float) and t >= 0]
    return float(min(min(ttls), max_ttl)) if ttls else float(min(negative_ttl, max_ttl))


class ForwardCache(_LRU):
    """Upstream answers ``(status, body, stored_at, expires_at)`` by request target (path + query)."""

    def fresh(self, target: str, now: float):
        entry = self.get(target)
        if entry is not None and entry[3] > now:
            return entry
        return None

    def stale(self, target: str):
        return self._d.get(target)


class Upstreams:
    """Prefix → upstream node base URL, by longest hierarchical match; ``"*"`` is the default."""

    def __init__(self, mapping: Mapping[str, str] | None = None):
        self._map = {}
        for prefix, url in (mapping or {}).items():
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(f"upstream for {prefix!r} must be an http(s) URL, not {url!r}")
            self._map[prefix.lower().strip(".")] = url.rstrip("/")

    def __bool__(self) -> bool:
        return bool(self._map)

    def for_prefix(self, prefix: str) -> str | None:
        parts = prefix.lower().split(".")
        for n in range(len(parts), 0, -1):
            url = self._map.get(".".join(parts[:n]))
            if url:
                return url
        return self._map.get("*")

    def items(self):
        return self._map.items()

    @classmethod
    def parse(cls, specs) -> Upstreams:
        """From ``["88.200=http://host:port", "*=http://…"]`` (the CLI's ``--upstream``)."""
        mapping = {}
        for spec in specs or ():
            prefix, sep, url = spec.partition("=")
            if not sep or not prefix:
                raise ValueError(f"--upstream {spec!r}: expected PREFIX=URL")
            mapping[prefix.strip()] = url.strip()
        return cls(mapping)
