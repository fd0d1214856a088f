"""Transformation and mapping (seed §8.1 c, §10.2.1 a): source-system codes → boundary and identifiers.

A mapping file (CSV or YAML list) ties the codes that arrive from other systems — meter numbers,
ERP material codes, invoice account numbers — to the enterprise's meters, items and boundary nodes:

| column | meaning |
|---|---|
| source | the sending system (as in ``ConnectorResult.metadata['source']``), ``*`` for any |
| kind | ``meter`` (a meter code → ``meter_id``), ``material`` (ERP code → factor-library ``item``), ``account`` (invoice/ledger account → ``node_id``) |
| code | the code as the source writes it |
| meter_id, item, node_id, identifier | what it maps to (the columns that apply to the kind) |

Records whose code maps to nothing are returned separately with the reason, for quarantine —
never dropped.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

__all__ = ["Mapping"]

_COLUMNS = ["source", "kind", "code", "meter_id", "item", "node_id", "identifier"]


class Mapping:
    def __init__(self, table: pd.DataFrame, *, origin: str = "<mapping>"):
        t = table.copy()
        for c in _COLUMNS:
            if c not in t:
                t[c] = ""
            t[c] = t[c].fillna("").astype(str).str.strip()
        bad = sorted(set(t["kind"]) - {"meter", "material", "account"})
        if bad:
            raise ValueError(f"{origin}: unknown mapping kinds {bad} (meter, material, account)")
        dup = t.duplicated(["source", "kind", "code"], keep=False)
        if dup.any():
            raise ValueError(f"{origin}: codes mapped twice: {t.loc[dup, ['source', 'kind', 'code']].drop_duplicates().values.tolist()}")
        self.table = t[_COLUMNS]
        self.origin = origin

    @classmethod
    def read(cls, path) -> "Mapping":
        path = Path(path)
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml
            rows = yaml.safe_load(path.read_text(encoding="utf-8")) or []
            return cls(pd.DataFrame(rows.get("mappings", rows) if isinstance(rows, dict) else rows), origin=str(path))
        return cls(pd.read_csv(path, dtype=str, keep_default_na=False), origin=str(path))

    def _lookup(self, kind: str, source: str) -> pd.DataFrame:
        t = self.table[(self.table["kind"] == kind) & self.table["source"].isin([source, "*"])]
        # a source-specific row wins over a wildcard one
        return t.sort_values("source", key=lambda s: s.eq("*")).drop_duplicates("code")

    def apply(self, df: pd.DataFrame, *, kind: str, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Mapped records and the unmapped ones (with ``reason`` and ``payload``)."""
        df = df.copy()
        if "row" not in df:
            df["row"] = range(2, len(df) + 2)
        if kind == "readings":
            return self._map(df, "meter", "meter_id", source, {"meter_id": "meter_id", "node_id": "node_id",
                                                               "identifier": "identifier"})
        if kind == "activity":
            unmapped = []
            if "item" in df:
                m = self._lookup("material", source)
                if len(m):
                    codes = dict(zip(m["code"], m["item"]))
                    df["item"] = df["item"].astype(str).map(lambda c: codes.get(c, c))
            col = "node_id" if "node_id" in df else ("facility" if "facility" in df else None)
            if col is not None:
                df, un = self._map(df, "account", col, source, {"node_id": "node_id"}, required=False)
                unmapped.append(un)
            un = pd.concat(unmapped, ignore_index=True) if unmapped else pd.DataFrame()
            return df, un
        if kind == "invoice":
            return self._map(df, "account", "account_no", source, {"node_id": "node_id", "item": "item"})
        return df, pd.DataFrame()

    def _map(self, df, kind, column, source, targets, required=True):
        m = self._lookup(kind, source)
        codes = df[column].astype(str).str.strip()
        hit = codes.isin(set(m["code"]))
        if not required:  # codes that are not in the mapping pass through unchanged (e.g. node ids)
            hit = pd.Series(True, index=df.index)
        out = df[hit].copy()
        mm = m.set_index("code")
        for dst, src_col in targets.items():
            vals = codes[hit].map(mm[src_col]) if len(mm) else pd.Series(index=out.index, dtype=object)
            keep = vals.notna() & vals.ne("")
            if dst in out:
                out.loc[keep, dst] = vals[keep]
            else:
                out[dst] = vals.where(keep, "")
        missed = df[~hit]
        unmapped = pd.DataFrame({
            "row": missed["row"].to_numpy(),
            "column": column,
            "reason": [f"{kind} code '{c}' from source '{source}' maps to nothing ({self.origin})" for c in codes[~hit]],
            "payload": [json.dumps({k: (None if pd.isna(v) else str(v)) for k, v in r.items()}, ensure_ascii=False)
                        for r in missed.to_dict("records")],
        })
        return out.reset_index(drop=True), unmapped
