"""One base error for the whole workbench, and the problem type that names file, row and column.

Every error the package raises derives from :class:`WorkbenchError` (and, where callers expect
it, from the matching built-in: ``ValueError`` for bad input, ``LookupError``/``KeyError`` for
something not found, ``RuntimeError`` for a failing system), so one ``except WorkbenchError``
catches them all and nothing else.  Bad *data* is a :class:`DataError`: ``str()`` is its first
:class:`Problem` — ``file, row N, column 'C': message`` — and ``problems`` lists them all.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorkbenchError", "DataError", "Problem"]


class WorkbenchError(Exception):
    """Base class of every error raised by the workbench and its connectors."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with input data: where (file, 1-based row as a spreadsheet shows it, the
    column as headed in the file) and what."""

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.message}"


class DataError(WorkbenchError, ValueError):
    """Bad input data.  ``str()`` is the first problem (by row); ``problems`` lists them all and
    ``file``, ``row``, ``column`` are the first one's."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("a DataError needs at least one Problem")
        problems = sorted(problems, key=lambda p: (p.row if p.row is not None else -1))
        self.problems = problems
        first = problems[0]
        self.file, self.row, self.column = first.file, first.row, first.column
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(str(first) + more)
