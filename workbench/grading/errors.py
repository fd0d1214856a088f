"""The grading package's errors: one base, :class:`GradingError`."""
from __future__ import annotations

from workbench.core.errors import DataError, WorkbenchError

__all__ = ["GradingDataError", "GradingError", "UnknownSchemeError"]


class GradingError(WorkbenchError, ValueError):
    """Anything the grading refuses: a period it cannot read, a scheme that is malformed."""


class GradingDataError(DataError, GradingError):
    """A region's input files that cannot be graded; ``str()`` names file, row and column."""


class UnknownSchemeError(GradingError, LookupError):
    """No grading scheme by that name."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0]) if self.args else ""
