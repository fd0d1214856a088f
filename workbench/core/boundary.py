"""Accounting boundary (核算边界): enterprise → facility → workshop → process → meter/device.

Each node carries its 分项 class (seed §7.1 b): main production (主要生产), auxiliary
production (辅助生产), non-production (非生产) or external supply (外供能源及载能工质).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from workbench.core.errors import WorkbenchError

__all__ = ["LEVELS", "CLASSIFICATIONS", "CLASSIFICATION_NAMES_ZH", "Boundary", "BoundaryError"]

LEVELS = ("enterprise", "facility", "workshop", "process", "meter")
CLASSIFICATIONS = ("main_production", "auxiliary", "non_production", "external_supply")
CLASSIFICATION_NAMES_ZH = {
    "main_production": "主要生产",
    "auxiliary": "辅助生产",
    "non_production": "非生产",
    "external_supply": "外供能源及载能工质",
}
COLUMNS = ("node_id", "parent_id", "level", "name_zh", "name_en", "classification", "identifier")


class BoundaryError(WorkbenchError, ValueError):
    pass


@dataclass
class Boundary:
    """The boundary hierarchy as a validated table (one row per node)."""

    nodes: pd.DataFrame

    def __post_init__(self):
        df = self.nodes.copy()
        missing = [c for c in ("node_id", "parent_id", "level") if c not in df.columns]
        if missing:
            raise BoundaryError(f"boundary table lacks columns {missing}")
        for c in COLUMNS:
            if c not in df.columns:
                df[c] = ""
            df[c] = df[c].fillna("").astype(str)
        if df["node_id"].duplicated().any():
            raise BoundaryError(f"duplicate node ids: {sorted(set(df.loc[df['node_id'].duplicated(), 'node_id']))}")
        bad = sorted(set(df["level"]) - set(LEVELS))
        if bad:
            raise BoundaryError(f"unknown levels {bad}; levels are {LEVELS}")
        bad = sorted(set(df["classification"]) - set(CLASSIFICATIONS) - {""})
        if bad:
            raise BoundaryError(f"unknown 分项 classes {bad}; classes are {CLASSIFICATIONS}")
        ids = set(df["node_id"])
        orphans = df[(df["parent_id"] != "") & ~df["parent_id"].isin(ids)]
        if len(orphans):
            raise BoundaryError(f"nodes with unknown parent: {orphans['node_id'].tolist()}")
        roots = df[df["parent_id"] == ""]
        if len(roots) != 1 or roots["level"].iloc[0] != "enterprise":
            raise BoundaryError("the boundary needs exactly one root node of level 'enterprise'")
        # walk every node up to the root first, so that a cycle is reported as a cycle
        self._parent = dict(zip(df["node_id"], df["parent_id"]))
        self._ancestors = {n: self._walk(n) for n in df["node_id"]}
        rank = {lvl: i for i, lvl in enumerate(LEVELS)}
        parent_level = df["parent_id"].map(dict(zip(df["node_id"], df["level"])))
        child_rank = df["level"].map(rank)
        wrong = df[(df["parent_id"] != "") & (parent_level.map(rank) >= child_rank)]
        if len(wrong):
            raise BoundaryError(f"levels must nest enterprise→facility→workshop→process→meter: {wrong['node_id'].tolist()}")
        self.nodes = df.set_index("node_id", drop=False)

    @classmethod
    def read_csv(cls, path) -> "Boundary":
        return cls(pd.read_csv(path, dtype=str, keep_default_na=False))

    def _walk(self, node: str) -> list[str]:
        out, seen = [node], {node}
        while self._parent.get(out[-1]):
            nxt = self._parent[out[-1]]
            if nxt in seen:
                raise BoundaryError(f"cycle in boundary at {nxt}")
            out.append(nxt)
            seen.add(nxt)
        return out

    @property
    def enterprise(self) -> str:
        return self.nodes.loc[self.nodes["parent_id"] == "", "node_id"].iloc[0]

    def ancestors(self, node: str) -> list[str]:
        """The node and its ancestors up to the enterprise."""
        if node not in self._ancestors:
            raise BoundaryError(f"unknown boundary node '{node}'")
        return self._ancestors[node]

    def ancestor_at(self, node: str, level: str) -> str:
        """The node's ancestor of ``level``, or the node itself if it sits above that level."""
        chain = self.ancestors(node)
        for n in chain:
            if self.nodes.at[n, "level"] == level:
                return n
        return chain[0]

    def facility_of(self, nodes) -> pd.Series:
        """Vectorised facility look-up (enterprise-level nodes map to the enterprise)."""
        nodes = pd.Series(nodes, dtype=str)
        mapping = {n: self.ancestor_at(n, "facility") for n in pd.unique(nodes)}
        return nodes.map(mapping)

    def classification_of(self, nodes) -> pd.Series:
        """分项 class of each node, inherited from the nearest ancestor that has one."""
        nodes = pd.Series(nodes, dtype=str)
        def cls(n):
            for a in self.ancestors(n):
                c = self.nodes.at[a, "classification"]
                if c:
                    return c
            return ""
        return nodes.map({n: cls(n) for n in pd.unique(nodes)})

    def name(self, node: str, lang: str = "zh") -> str:
        return self.nodes.at[node, f"name_{lang}"] or node

    def children(self, node: str) -> list[str]:
        return self.nodes.loc[self.nodes["parent_id"] == node, "node_id"].tolist()

    def facilities(self) -> list[str]:
        return self.nodes.loc[self.nodes["level"] == "facility", "node_id"].tolist()
