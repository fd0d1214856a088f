"""Identifier middleware (seed §10.2.1): attach identifiers to incoming records, quarantine the rest.

Every record a connector delivers names its *source* — the object it was measured on or booked to.
This step asks a :class:`SourceRegistry` which industrial-internet identifier that source has and
whether the identifier is registered on the enterprise node; records of a registered source get an
``identifier`` column, records of an unregistered source are returned separately with the reason,
for quarantine — never dropped, never "fixed".

Sources per kind of :class:`connectors.ConnectorResult` (after :mod:`workbench.ingestion.mapping`):

===========  ==========================================================================
readings     ``meter_id`` (entity ``meter``)
activity     ``node_id``, else ``facility`` (entity ``node``; Chinese/aliased headers such as
             ``节点``/``设施`` are recognised as :mod:`workbench.core.activity` recognises them)
invoice      ``node_id`` (set by an ``account`` mapping), else ``meter_id``, else ``account_no``
             (entity ``account``: only a mapping registry knows accounts — map them to nodes)
===========  ==========================================================================

The first non-empty column of the list is a row's source.  A kind not in this table, or a frame
without any of its source columns, passes through untouched (no ``identifier`` column, nothing
rejected).

Identifiers are derived exactly as :func:`workbench.identifiers.model.records_from_boundary` names
boundary nodes: the boundary's ``identifier`` column when given, else the suffix scheme of the
node's level (``node.{node_id}``; ``meter.{meter_id}`` for meters) under the enterprise prefix.

Look-ups are per *distinct* source: a batch of a million readings from a few dozen meters costs a
few dozen derivations and one bulk existence query, and answers are cached on the registry.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.identifiers.model import (
    DEFAULT_SCHEMES,
    Identifier,
    IdentifierError,
    SuffixScheme,
    SuffixSchemeError,
    parse_identifier,
)

__all__ = ["SOURCE_COLUMNS", "Resolution", "SourceRegistry", "attach_identifiers", "source_columns"]

#: per kind: the source columns in order of preference, with the entity each names
SOURCE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "readings": (("meter_id", "meter"),),
    "activity": (("node_id", "node"), ("facility", "node")),
    "invoice": (("node_id", "node"), ("meter_id", "meter"), ("account_no", "account")),
}


@dataclass(frozen=True)
class Resolution:
    """The answer for one source: its identifier (``None`` if it has none registered), the
    identifier that was looked for, and the reason when it is not registered."""

    entity: str
    code: str
    identifier: str | None
    candidate: str | None = None
    reason: str = ""

    @property
    def registered(self) -> bool:
        return self.identifier is not None


def _identifier_key(text) -> str | None:
    return _key_of_text(str(text))


@functools.lru_cache(maxsize=1 << 16)      # pure; streams check the same identifiers batch after batch
def _key_of_text(text: str) -> str | None:
    try:
        return parse_identifier(text).key
    except IdentifierError:
        return None


class SourceRegistry:
    """Which identifier a source (``entity``, ``code``) has, and whether it is registered.

    Build one with :meth:`from_store` (the local node's :class:`~workbench.identifiers.store.HandleStore`),
    :meth:`from_resolver` (anything answering ``handle -> bool``, e.g. a client's ``exists``) or
    :meth:`from_mapping` (a plain ``source -> identifier`` table, for tests and hand-kept lists).

    ``ttl``: seconds an answer is cached (``None``: until :meth:`clear`).  A store registry also
    forgets answers about handles written since (the store's audit feed, when it has one), so a
    meter registered between two batches is seen by the second.
    """

    def __init__(self, *, prefix: str | None = None, boundary=None,
                 schemes: Mapping[str, SuffixScheme] | None = None,
                 identifiers: Mapping | None = None,
                 exists_many: Callable[[list[Identifier]], set[str]] | None = None,
                 describe: str = "registry", ttl: float | None = 300.0, store=None):
        if prefix is None and identifiers is None:
            raise ValueError("a SourceRegistry needs a prefix (to derive identifiers) or an identifiers mapping")
        self.prefix = prefix
        self.schemes = {**DEFAULT_SCHEMES, **(schemes or {})}
        self.describe = describe
        self.ttl = ttl
        self._exists_many = exists_many
        self._store = store
        self._change = store.last_change() if store is not None else None
        self._explicit = self._explicit_table(identifiers) if identifiers is not None else None
        self._boundary = self._boundary_table(boundary, prefix) if boundary is not None else {}
        self._cache: dict[tuple[str, str], tuple[float, Resolution]] = {}
        self._lock = threading.Lock()
        self.lookups = 0           # existence checks made (distinct identifiers, all calls)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_store(cls, store, prefix: str, *, boundary=None, schemes=None, ttl: float | None = 300.0):
        """Identifiers derived under ``prefix`` and confirmed to exist in ``store`` (one query per
        900 distinct identifiers)."""
        def exists_many(idents: list[Identifier]) -> set[str]:
            return store.existing(i.key for i in idents)

        return cls(prefix=prefix, boundary=boundary, schemes=schemes, exists_many=exists_many,
                   describe="the identifier store", ttl=ttl, store=store)

    @classmethod
    def from_resolver(cls, resolver, prefix: str, *, boundary=None, schemes=None, ttl: float | None = 300.0):
        """Identifiers derived under ``prefix``, confirmed by ``resolver``: a callable
        ``handle -> bool`` or an object with an ``exists(handle)`` method (sync or async — a
        coroutine's answers for one batch are awaited together)."""
        return cls(prefix=prefix, boundary=boundary, schemes=schemes, ttl=ttl,
                   exists_many=_resolver_exists_many(resolver), describe="the resolver")

    @classmethod
    def from_mapping(cls, identifiers: Mapping, *, exists=None, ttl: float | None = None):
        """A fixed table: ``{code: identifier}`` or ``{(entity, code): identifier}`` (entities
        ``meter``, ``node``, ``account``).  A source in the table is registered; with ``exists``
        (as in :meth:`from_resolver`) its identifier must also resolve."""
        return cls(identifiers=identifiers, ttl=ttl, describe="the mapping",
                   exists_many=_resolver_exists_many(exists) if exists is not None else None)

    # ------------------------------------------------------------------ tables
    @staticmethod
    def _explicit_table(identifiers: Mapping) -> dict:
        out = {}
        for k, v in dict(identifiers).items():
            key = tuple(str(x) for x in k) if isinstance(k, tuple) else (None, str(k))
            out[key] = None if v is None or (isinstance(v, float) and np.isnan(v)) or str(v) == "" else str(v)
        return out

    def _boundary_table(self, boundary, prefix) -> dict:
        """node_id → (level, identifier text) as :func:`records_from_boundary` names them."""
        from workbench.identifiers.model import records_from_boundary

        nodes = boundary.nodes if hasattr(boundary, "nodes") else pd.DataFrame(boundary)
        if hasattr(boundary, "nodes"):
            recs = records_from_boundary(boundary, prefix, schemes=self.schemes, children=False, admin=False)
            return {n: (lvl, str(r.identifier)) for n, lvl, r in zip(nodes["node_id"], nodes["level"], recs)}
        out = {}
        nodes = nodes.fillna("")
        for row in nodes.to_dict("records"):
            node, level = str(row.get("node_id", "")), str(row.get("level", ""))
            ident = str(row.get("identifier", "") or "")
            if not ident:
                scheme = self.schemes.get(level)
                if scheme is None:
                    continue
                try:
                    ident = str(Identifier(prefix, scheme.make({f: node for f in scheme.fields})))
                except (SuffixSchemeError, IdentifierError):
                    continue
            out[node] = (level, ident)
        return out

    # ------------------------------------------------------------------ derivation
    def candidate(self, entity: str, code: str) -> tuple[str | None, str]:
        """The identifier ``(entity, code)`` should have, or ``(None, why not)``."""
        if self._explicit is not None:
            hit = self._explicit.get((entity, code), self._explicit.get((None, code), "<absent>"))
            if hit == "<absent>" or hit is None:
                return None, f"not in {self.describe}"
            return hit, ""
        if code in self._boundary:
            return self._boundary[code][1], ""
        scheme = self.schemes.get(entity)
        if scheme is None and entity == "node":
            scheme = SuffixScheme("node", "node.{node_id}")
        if scheme is None:
            return None, f"no identifier scheme for {entity} codes"
        try:
            return str(Identifier(self.prefix, scheme.make({f: code for f in scheme.fields}))), ""
        except (SuffixSchemeError, IdentifierError) as exc:
            return None, f"cannot form an identifier: {exc}"

    # ------------------------------------------------------------------ resolution
    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def _expire(self) -> None:
        now = time.monotonic()
        if self.ttl is not None:
            for k in [k for k, (t, _) in self._cache.items() if now - t > self.ttl]:
                del self._cache[k]
        if self._store is not None and self._change is not None and hasattr(self._store, "changes_since"):
            self._change, changed = self._store.changes_since(self._change)
            if changed is None:
                self._cache.clear()
            elif changed:
                for k in [k for k, (_, r) in self._cache.items()
                          if r.candidate and _identifier_key(r.candidate) in changed]:
                    del self._cache[k]

    def resolve(self, entity: str, codes: Iterable) -> dict[str, Resolution]:
        """Resolutions of distinct ``codes`` of one entity (cached ones reused; one existence
        check for all the others)."""
        codes = [str(c) for c in dict.fromkeys(codes)]
        with self._lock:
            self._expire()
            out = {c: self._cache[(entity, c)][1] for c in codes if (entity, c) in self._cache}
            todo = [c for c in codes if c not in out]
            if not todo:
                return out
            cands = {c: self.candidate(entity, c) for c in todo}
            idents: dict[str, Identifier] = {}
            fresh: dict[str, Resolution] = {}
            for c, (text, why) in cands.items():
                if text is None:
                    fresh[c] = Resolution(entity, c, None, None, why)
                    continue
                try:
                    idents[c] = parse_identifier(text)
                except IdentifierError as exc:
                    fresh[c] = Resolution(entity, c, None, text, f"malformed identifier: {exc}")
            if idents:
                if self._exists_many is None:
                    found = {i.key for i in idents.values()}
                else:
                    self.lookups += len({i.key for i in idents.values()})
                    found = self._exists_many(list(dict.fromkeys(idents.values())))
                for c, i in idents.items():
                    fresh[c] = (Resolution(entity, c, str(i), str(i)) if i.key in found else
                                Resolution(entity, c, None, str(i), f"{i} not found in {self.describe}"))
            now = time.monotonic()
            for c, r in fresh.items():
                self._cache[(entity, c)] = (now, r)
            out.update(fresh)
            return out

    def identifier_of(self, entity: str, code) -> Resolution:
        return self.resolve(entity, [code])[str(code)]


def _resolver_exists_many(resolver) -> Callable[[list[Identifier]], set[str]]:
    exists = resolver if callable(resolver) and not hasattr(resolver, "exists") else getattr(resolver, "exists", None)
    if exists is None or not callable(exists):
        raise TypeError(f"resolver {resolver!r}: need a callable handle -> bool or an object with exists(handle)")

    def exists_many(idents: list[Identifier]) -> set[str]:
        answers = [exists(str(i)) for i in idents]
        if any(inspect.isawaitable(a) for a in answers):
            answers = _await_all(answers)
        return {i.key for i, ok in zip(idents, answers) if ok}

    return exists_many


def _await_all(answers: list) -> list:
    async def gather():
        return await asyncio.gather(*[a if inspect.isawaitable(a) else _value(a) for a in answers])

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(gather())
    # called from inside an event loop (e.g. a notebook): run the coroutines on a loop of their own
    box: dict = {}

    def run():
        try:
            box["out"] = asyncio.run(gather())
        except BaseException as exc:  # noqa: BLE001 — re-raised in the caller's thread
            box["err"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "err" in box:
        raise box["err"]
    return box["out"]


async def _value(v):
    return v


# ---------------------------------------------------------------------------- the step
def _canonical_header(col) -> str | None:
    """The activity column a header stands for (as :func:`workbench.core.activity.normalize_activity`)."""
    import re

    from workbench.core.activity import _HEADER_MAP, _key

    canon = _HEADER_MAP.get(_key(col))
    if canon is None and isinstance(col, str):
        for part in re.split(r"[\s/()（）]+", col):
            if _key(part) in _HEADER_MAP:
                return _HEADER_MAP[_key(part)]
    return canon


def source_columns(data: pd.DataFrame, kind: str) -> list[tuple[str, str]]:
    """``[(column in data, entity)]`` naming a row's source, in order of preference."""
    wanted = SOURCE_COLUMNS.get(kind, ())
    if kind == "activity":
        found: dict[str, str] = {}
        for col in data.columns:
            canon = _canonical_header(col)
            if canon in ("node_id", "facility") and canon not in found:
                found[canon] = col
        return [(found[c], e) for c, e in wanted if c in found]
    return [(c, e) for c, e in wanted if c in data.columns]


def _codes(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Per-row codes into the distinct stripped texts of ``s`` (missing and blank → -1).

    Factorises first and strips only the distinct values: a million rows of a few dozen codes
    cost one hash pass."""
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    texts = [str(u).strip() for u in uniq]
    merged, first = {}, []
    lut = np.empty(len(texts) + 1, np.int32)
    for k, t in enumerate(texts):
        if t == "":
            lut[k] = -1
            continue
        if t not in merged:
            merged[t] = len(first)
            first.append(t)
        lut[k] = merged[t]
    lut[-1] = -1
    return lut[codes], first


def _payload(rows: pd.DataFrame) -> list[str]:
    return [json.dumps({str(k): (None if (v is None or (not isinstance(v, (list, dict)) and pd.isna(v))) else str(v))
                        for k, v in r.items()}, ensure_ascii=False) for r in rows.to_dict("records")]


def attach_identifiers(data: pd.DataFrame, kind: str, registry: SourceRegistry, *,
                       known: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``data`` into ``(accepted, rejected)``.

    ``accepted``: the rows whose source is registered, with an ``identifier`` column (the
    registered identifier; a row that already carried one keeps its own spelling once it is
    verified to be the same identifier).  ``rejected``: ``row`` (the ``row`` column, else the
    position + 2 as in :mod:`workbench.ingestion.mapping`), ``column``, ``reason`` and ``payload`` (JSON of
    the original row) — e.g. ``source not registered: meter M0099 (88.123.4567/meter.M0099 not
    found in the identifier store)``.  Rejected are: rows without a source, rows whose source has
    no registered identifier, rows whose own ``identifier`` differs from the registered one, and
    rows whose source ``known`` (``code → identifier`` already on record elsewhere, e.g. the lake's
    meter registry) says differs from the registry.

    Kinds without a source column (see the module doc) pass through: ``(data, empty)``.
    Vectorised: the registry is asked once per distinct source; per-row work is integer codes.
    """
    cols = source_columns(data, kind)
    empty = pd.DataFrame(columns=["row", "column", "reason", "payload"])
    if not cols:
        return data, empty
    n = len(data)
    id_cats: list[str] = []                 # distinct identifiers; rows hold codes into them
    id_index: dict[str, int] = {}
    why_cats: list[str] = []                # distinct reasons
    why_index: dict[str, int] = {}
    col_names = [c for c, _ in cols] + ["identifier"]

    def code_of(table, index, text):
        if text not in index:
            index[text] = len(table)
            table.append(text)
        return index[text]

    id_code = np.full(n, -1, np.int32)
    why_code = np.full(n, -1, np.int32)
    col_code = np.zeros(n, np.int8)
    src_code = np.full(n, -1, np.int32)     # code into the chosen column's distinct values
    chosen = np.full(n, -1, np.int8)        # which source column a row's source is in
    known_keys = {str(k): _identifier_key(v) for k, v in (known or {}).items() if v is not None and str(v) != ""}
    per_col = []
    for j, (col, ent) in enumerate(cols):
        codes, texts = _codes(data[col])
        take = (chosen < 0) & (codes >= 0)
        chosen[take] = j
        src_code[take] = codes[take]
        col_code[take] = j
        per_col.append((col, ent, texts))
    no_src = chosen < 0
    if no_src.any():
        why_code[no_src] = code_of(why_cats, why_index, f"no source to identify: {', '.join(c for c, _ in cols)} empty")
    for j, (col, ent, texts) in enumerate(per_col):
        sel = chosen == j
        every = bool(sel.all())
        rows = slice(None) if every else np.flatnonzero(sel)   # one source column: no gathers
        if not every and not rows.size:
            continue
        used = np.flatnonzero(np.bincount(src_code[rows], minlength=len(texts)))
        res = registry.resolve(ent, [texts[u] for u in used])
        id_lut = np.full(len(texts), -1, np.int32)
        why_lut = np.full(len(texts), -1, np.int32)
        for u in used:
            code = texts[u]
            r = res[code]
            if not r.registered:
                why_lut[u] = code_of(why_cats, why_index, f"source not registered: {ent} {code} ({r.reason})")
            elif code in known_keys and known_keys[code] != _identifier_key(r.identifier):
                why_lut[u] = code_of(why_cats, why_index, f"identifier conflict: {ent} {code} is recorded as "
                                                          f"{known[code]} but registered as {r.identifier}")
            else:
                id_lut[u] = code_of(id_cats, id_index, r.identifier)
        codes_here = src_code[rows]
        id_code[rows] = id_lut[codes_here]
        why_code[rows] = why_lut[codes_here]
    # rows that carry their own identifier: verify, never overwrite
    if "identifier" in data.columns:
        c_codes, c_texts = _codes(data["identifier"])
        pos = np.flatnonzero((c_codes >= 0) & (why_code < 0))
        if pos.size:
            base = len(id_cats) + 1          # fixed before the loop adds carried spellings
            pair = c_codes[pos].astype(np.int64) * base + id_code[pos]
            for pv in np.unique(pair):
                c, i = divmod(int(pv), base)
                at = pos[pair == pv]
                if _identifier_key(c_texts[c]) == _identifier_key(id_cats[i]):
                    id_code[at] = code_of(id_cats, id_index, c_texts[c])  # keep the row's own spelling
                    continue
                # one reason per (carried identifier, source): few distinct values
                for j in np.unique(chosen[at]):
                    col, ent, texts = per_col[j]
                    sub = at[chosen[at] == j]
                    for u in np.unique(src_code[sub]):
                        hit = sub[src_code[sub] == u]
                        why_code[hit] = code_of(why_cats, why_index, f"identifier mismatch: the row says {c_texts[c]}, "
                                                f"but {ent} {texts[u]} is registered as {id_cats[i]}")
                        col_code[hit] = len(cols)
    rejected = why_code >= 0
    categories = pd.Index(id_cats, dtype=object)
    if not rejected.any():
        out = data.copy(deep=False)
        out["identifier"] = pd.Categorical.from_codes(id_code, categories=categories)
        return out, empty
    keep = ~rejected
    accepted = data[keep].copy()
    accepted["identifier"] = pd.Categorical.from_codes(id_code[keep], categories=categories)
    bad_rows = data[rejected]
    rowno = (pd.to_numeric(bad_rows["row"], errors="coerce").to_numpy() if "row" in bad_rows.columns
             else np.flatnonzero(rejected) + 2)
    out_rej = pd.DataFrame({
        "row": rowno,
        "column": np.array(col_names, dtype=object)[col_code[rejected]],
        "reason": np.array(why_cats, dtype=object)[why_code[rejected]],
        "payload": _payload(bad_rows),
    })
    return accepted, out_rej
