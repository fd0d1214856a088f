"""Period templates in schedule parameters: ``${month-1}`` is the month before the run.

A schedule's parameter values (and its output folder) may hold placeholders that are filled in
from the run's *reference time* — the cron fire time in the schedule's timezone (a catch-up or
a re-run of a past period uses that period's fire time, never the wall clock)::

    ${UNIT}            the unit containing the reference time
    ${UNIT-N}          N units earlier          ${UNIT+N}   N units later
    ${UNIT-N.start}    its first finer unit     ${UNIT-N.end}   its last finer unit
    ${name}            the schedule's name
    $$                 a literal ``$``

============  ==============  ========================  =============================
UNIT          text            ``.start`` / ``.end``     example at 2026-04-02 06:00
============  ==============  ========================  =============================
``date``      ``YYYY-MM-DD``  (none)                    ``${date-1}`` → 2026-04-01
``month``     ``YYYY-MM``     first / last day          ``${month-1}`` → 2026-03,
                                                        ``${month-1.end}`` → 2026-03-31
``quarter``   ``YYYY-Qn``     first / last month        ``${quarter-1}`` → 2026-Q1,
                                                        ``${quarter-1.end}`` → 2026-03
``year``      ``YYYY``        first / last month        ``${year-1}`` → 2025,
                                                        ``${year-1.start}`` → 2025-01
============  ==============  ========================  =============================

Arithmetic is calendar arithmetic on the unit's index: the month index is ``12·year + month − 1``,
the quarter index ``4·year + (month − 1) // 3`` (quarter 1 = January–March), so ``${month-1}`` in
January is December of the year before and ``${quarter-1}`` in Q1 is Q4 of the year before.
A value that is exactly one ``${year…}`` placeholder (without ``.start``/``.end``) is an ``int``
when the notebook's default for that parameter is one (see :func:`expand`).
"""
from __future__ import annotations

import calendar
import datetime as dt
import re

from workbench.core.errors import WorkbenchError

__all__ = ["UNITS", "TemplateError", "check", "expand", "period_value"]

UNITS = ("date", "month", "quarter", "year")

_PLACEHOLDER = re.compile(r"\$\$|\$\{([^}]*)\}")
_EXPR = re.compile(r"(date|month|quarter|year)(?:([+-])(\d{1,4}))?(?:\.(start|end))?")


class TemplateError(WorkbenchError, ValueError):
    """A placeholder that is not one of the template syntax's (the message names it)."""


def period_value(unit: str, at: dt.date, offset: int = 0, part: str | None = None) -> str:
    """The text of the ``unit`` containing ``at``, shifted by ``offset`` units.

    Parameters
    ----------
    unit : ``date`` | ``month`` | ``quarter`` | ``year``
    at : the reference date (the run's fire time in the schedule's timezone, as a date)
    offset : units to shift, negative for earlier (``-1``: the previous one)
    part : ``None``; ``start``/``end`` for the first/last month of a quarter or year
        (``YYYY-MM``) or the first/last day of a month (``YYYY-MM-DD``)

    Formulas: month index m = 12·year + (month − 1) + offset → ``f"{m // 12:04d}-{m % 12 + 1:02d}"``;
    quarter index q = 4·year + (month − 1) // 3 + offset → year q // 4, quarter q % 4 + 1,
    months 3·(q % 4) + 1 … 3·(q % 4) + 3; year y = year + offset; date = at + offset days.
    """
    if unit == "date":
        if part:
            raise TemplateError(f"${{date.{part}}}: a date has no .start/.end")
        return (at + dt.timedelta(days=offset)).isoformat()
    if unit == "month":
        m = 12 * at.year + at.month - 1 + offset
        y, mo = divmod(m, 12)
        mo += 1
        if part == "start":
            return f"{y:04d}-{mo:02d}-01"
        if part == "end":
            return f"{y:04d}-{mo:02d}-{calendar.monthrange(y, mo)[1]:02d}"
        return f"{y:04d}-{mo:02d}"
    if unit == "quarter":
        q = 4 * at.year + (at.month - 1) // 3 + offset
        y, qi = divmod(q, 4)
        if part == "start":
            return f"{y:04d}-{3 * qi + 1:02d}"
        if part == "end":
            return f"{y:04d}-{3 * qi + 3:02d}"
        return f"{y:04d}-Q{qi + 1}"
    if unit == "year":
        y = at.year + offset
        if part == "start":
            return f"{y:04d}-01"
        if part == "end":
            return f"{y:04d}-12"
        return f"{y:04d}"
    raise TemplateError(f"unknown period unit {unit!r} (use one of {', '.join(UNITS)})")


def _parse(token: str) -> tuple[str, int, str | None] | None:
    """(unit, offset, part) of a placeholder's inside, ``None`` for ``name``; TemplateError else."""
    t = token.replace(" ", "")
    if t == "name":
        return None
    m = _EXPR.fullmatch(t)
    if not m:
        raise TemplateError(f"${{{token}}} is not a placeholder (write ${{month-1}}, ${{quarter-1.start}}, "
                            f"${{year-1}}, ${{date}} or ${{name}})")
    unit, sign, n, part = m.groups()
    if unit == "date" and part:
        raise TemplateError(f"${{{token}}}: a date has no .start/.end")
    return unit, (-int(n) if sign == "-" else int(n or 0)), part


def check(text: str) -> None:
    """Raise :class:`TemplateError` naming the first bad placeholder of ``text``."""
    for m in _PLACEHOLDER.finditer(text):
        if m.group(0) != "$$":
            _parse(m.group(1))
    rest = _PLACEHOLDER.sub("", text)
    if "${" in rest:
        raise TemplateError(f"{text!r}: a '${{' without its closing '}}'")


def expand(value, at: dt.datetime | dt.date, *, name: str = "", integer: bool = False):
    """``value`` with its placeholders filled in for the reference time ``at``.

    Non-strings are returned unchanged; lists and mappings are expanded element by element.
    ``integer``: a value that is exactly one placeholder of a year (``${year-1}``) becomes an
    ``int`` (for a notebook parameter whose default is an integer).
    """
    if isinstance(value, list):
        return [expand(v, at, name=name) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, at, name=name) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    day = at.date() if isinstance(at, dt.datetime) else at

    def fill(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        parsed = _parse(m.group(1))
        if parsed is None:
            return name
        unit, offset, part = parsed
        return period_value(unit, day, offset, part)

    check(value)
    out = _PLACEHOLDER.sub(fill, value)
    if integer and out.isdigit():
        m = _PLACEHOLDER.fullmatch(value.strip())
        if m and m.group(0) != "$$" and (p := _parse(m.group(1))) is not None and p[0] == "year" and not p[2]:
            return int(out)
    return out
