"""Entry points of the package's plug-in groups, one way for every group.

The regimes (``workbench.regimes``), the grading schemes (``workbench.grading_schemes``) and the
forecasting models (``workbench.models``) are found the same way: the entry points an installed
distribution declares for the group, over the package's own built-ins (the same names as its
pyproject entry points, so that a checkout that was not reinstalled still finds them).  A plug-in
that fails to load is named in the error: group, name and target.
"""
from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

__all__ = ["entry_points_of", "load_entry_point"]


def entry_points_of(group: str, builtin: dict | None = None) -> dict[str, EntryPoint]:
    """``{name: EntryPoint}`` of ``group``: the ``builtin`` ``{name: "module:attr"}`` first, replaced
    by an installed distribution's entry point of the same name."""
    eps = {name: EntryPoint(name, value, group) for name, value in (builtin or {}).items()}
    eps.update({ep.name: ep for ep in entry_points(group=group)})
    return eps


def load_entry_point(ep: EntryPoint, error: type[Exception]):
    """The object behind ``ep``; a failure to import it raises ``error`` naming the plug-in."""
    try:
        return ep.load()
    except Exception as exc:  # a broken plug-in must say which one it is
        raise error(f"entry point '{ep.name}' ({ep.value}) of {ep.group} cannot be loaded: {exc}") from exc
