"""Five-field cron expressions, with POSIX cron's meaning, on APScheduler's ``CronTrigger``.

``minute hour day-of-month month day-of-week`` as in ``crontab(5)``:

* day of week ``0`` and ``7`` are Sunday, ``1`` Monday … ``6`` Saturday (names ``sun`` … ``sat``
  too).  APScheduler 3 numbers weekdays from Monday = 0, so the field is translated here to
  weekday names (``0 6 * * 0`` fires on Sundays, not Mondays);
* when both day of month and day of week are restricted, the job runs when *either* matches
  (``0 6 1 * 1``: the 1st of each month and every Monday), as cron does — two triggers joined
  with APScheduler's ``OrTrigger``; APScheduler alone would require both.

Times are in the schedule's timezone (``zoneinfo`` name, default ``Asia/Shanghai``).
"""
from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workbench.core.errors import WorkbenchError

__all__ = ["CronError", "cron_trigger", "fire_times", "latest_fire_time", "next_fire_times", "zone"]

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAME_TO_CRON = {d: i for i, d in enumerate(_DAYS)}


class CronError(WorkbenchError, ValueError):
    """A cron expression or timezone that cannot be used (the message says why)."""


def zone(name: str) -> ZoneInfo:
    """The IANA timezone ``name`` (``Asia/Shanghai``)."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise CronError(f"{name!r} is not a timezone (an IANA name such as Asia/Shanghai or UTC)") from None


def _dow_number(text: str) -> int:
    t = text.strip().lower()
    if t in _NAME_TO_CRON:
        return _NAME_TO_CRON[t]
    if t.isdigit() and 0 <= int(t) <= 7:
        return int(t) % 7
    raise CronError(f"day of week {text!r}: use 0–7 (0 and 7 are Sunday) or sun … sat")


def _weekdays(field: str) -> list[int]:
    """The cron weekdays (0 = Sunday) a day-of-week field selects: comma-separated ``*``, ``N``,
    ``A-B`` (7 is Sunday too), each optionally ``/STEP`` (``N/STEP``: from N to 7)."""
    days: set[int] = set()
    for part in field.split(","):
        step = None
        if "/" in part:
            part, s = part.split("/", 1)
            if not s.isdigit() or int(s) < 1:
                raise CronError(f"day of week step {s!r}: a positive whole number")
            step = int(s)
        if part == "*":
            lo, hi = 0, 7
        elif "-" in part:
            a, b = part.split("-", 1)
            lo, hi = _dow_number(a), _dow_number(b)
            if b.strip() == "7":
                hi = 7
            if hi < lo:
                raise CronError(f"day of week range {part!r} runs backwards")
        else:
            lo = _dow_number(part)
            hi = 7 if step is not None else lo
        days.update(d % 7 for d in range(lo, hi + 1, step or 1))
    return sorted(days)


def cron_trigger(expr: str, timezone: str = "Asia/Shanghai"):
    """An APScheduler trigger firing as the 5-field cron ``expr`` does in ``timezone``."""
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    tz = zone(timezone)
    if not isinstance(expr, str):
        raise CronError(f"{expr!r} is not a cron expression (5 fields: minute hour day month weekday)")
    fields = expr.split()
    if len(fields) != 5:
        raise CronError(f"{expr!r} has {len(fields)} field(s), not 5 (minute hour day-of-month month day-of-week, "
                        "e.g. '0 6 2 * *')")
    minute, hour, dom, month, dow = fields
    if re.search(r"[?LW#]", expr):
        raise CronError(f"{expr!r}: '?', 'L', 'W' and '#' are not cron (crontab(5)) syntax")
    days = _weekdays(dow.lower())
    aps_dow = "*" if len(days) == 7 else ",".join(_DAYS[d] for d in days)

    def make(day, day_of_week):
        try:
            return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week, timezone=tz)
        except ValueError as exc:
            raise CronError(f"{expr!r}: {exc}") from None

    if not dom.startswith("*") and not dow.startswith("*"):     # cron: either day field matches
        return OrTrigger([make(dom, "*"), make("*", aps_dow)])
    return make(dom, aps_dow)


def _aware(t: dt.datetime, tz) -> dt.datetime:
    return t.replace(tzinfo=tz) if t.tzinfo is None else t.astimezone(tz)


def _next(trigger, t: dt.datetime) -> dt.datetime | None:
    """The first fire time at or after ``t``."""
    return trigger.get_next_fire_time(None, t)


def fire_times(trigger, after: dt.datetime, until: dt.datetime, *, limit: int | None = None) -> list[dt.datetime]:
    """Fire times ``f`` with ``after < f ≤ until`` (oldest first; the last ``limit`` when given)."""
    tz = getattr(trigger, "timezone", None) or trigger.triggers[0].timezone
    after, until = _aware(after, tz), _aware(until, tz)
    out: list[dt.datetime] = []
    t = _next(trigger, after + dt.timedelta(microseconds=1))
    while t is not None and t <= until:
        out.append(t)
        if limit is not None and len(out) > limit:
            out.pop(0)
        t = _next(trigger, t + dt.timedelta(microseconds=1))
    return out


def next_fire_times(trigger, after: dt.datetime, n: int = 1) -> list[dt.datetime]:
    """The next ``n`` fire times strictly after ``after``."""
    tz = getattr(trigger, "timezone", None) or trigger.triggers[0].timezone
    out: list[dt.datetime] = []
    t = _aware(after, tz)
    while len(out) < n:
        t = _next(trigger, t + dt.timedelta(microseconds=1))
        if t is None:
            break
        out.append(t)
    return out


def latest_fire_time(trigger, until: dt.datetime, *, horizon_days: int = 366 * 30) -> dt.datetime | None:
    """The last fire time at or before ``until`` (searched back up to ``horizon_days``)."""
    tz = getattr(trigger, "timezone", None) or trigger.triggers[0].timezone
    until = _aware(until, tz)
    window = 1
    while window <= horizon_days:
        found = fire_times(trigger, until - dt.timedelta(days=window), until, limit=1)
        if found:
            return found[-1]
        window *= 4
    return None
