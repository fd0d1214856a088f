"""What several ``workbench`` commands share: opening the master data named on the command line."""
from __future__ import annotations

from pathlib import Path

from workbench.cli.errors import fail

__all__ = ["master_data"]


def master_data(url: str | None):
    """The master data at ``url`` (default ``$WORKBENCH_REGISTRY`` or data/registry.db; a plain path
    is a SQLite file); a SQLite file that does not exist is an error, not a new empty database."""
    from workbench.registry import MasterData, default_url

    url = url or default_url()
    if "://" not in url:
        url = f"sqlite:///{Path(url).resolve()}"
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:" and not Path(url[len("sqlite:///"):]).exists():
        fail(f"master data {url}: no such database (load it with `workbench registry import DIR`)")
    return MasterData(url)
