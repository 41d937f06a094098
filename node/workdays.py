"""Working days (工作日) from the official Chinese calendar.

Deadlines of government services are counted in working days: weekends do not count, public
holidays (法定节假日) do not count, and the weekend days the State Council declares as make-up
workdays (调休上班) do count.  :mod:`chinese_calendar` knows the published schedule; for years it
does not cover yet (the schedule is announced each November for the following year) we fall
back to Monday-Friday and log a warning once per year.

Conventions used everywhere in onestop:

* ``add_workdays(start, n)`` is the n-th working day *after* ``start`` (``start`` itself is the
  acceptance day and does not count); ``n == 0`` means "the same day" (即办).
* ``workdays_between(a, b)`` counts the working days ``d`` with ``a < d <= b`` (negative when
  ``b`` is before ``a``), so ``workdays_between(a, add_workdays(a, n)) == n``.
* A deadline is ``red`` once the day is after it, ``yellow`` when at most
  :data:`WARN_WORKDAYS` working days remain, ``green`` otherwise.
"""

from __future__ import annotations

import datetime as dt
import logging

import chinese_calendar

from sync import figures

log = logging.getLogger("onestop.workdays")

#: A deadline turns yellow (预警) when this many working days or fewer remain.
WARN_WORKDAYS = 2

GREEN, YELLOW, RED = "green", "yellow", "red"
STATUSES = (GREEN, YELLOW, RED)

_warned_years: set[int] = set()


def is_workday(day: dt.date) -> bool:
    """Whether government offices work on ``day`` (holidays and make-up workdays included)."""
    if isinstance(day, dt.datetime):
        day = day.date()
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning(
                "chinese_calendar has no holiday data for %d; counting Monday-Friday as "
                "working days (update the chinesecalendar package)",
                day.year,
            )
        return day.weekday() < 5


def covered(day: dt.date) -> bool:
    """Whether the installed calendar has official data for ``day``'s year."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def add_workdays(start: dt.date, n: int) -> dt.date:
    """The n-th working day after ``start`` (``start`` for n == 0; backwards for n < 0)."""
    day = start
    step = 1 if n >= 0 else -1
    left = abs(n)
    while left:
        day += dt.timedelta(days=step)
        if is_workday(day):
            left -= 1
    return day


def workdays_between(a: dt.date, b: dt.date) -> int:
    """Working days ``d`` with ``a < d <= b``; negative (``b < d <= a``) when ``b < a``."""
    if b == a:
        return 0
    if b < a:
        return -workdays_between(b, a)
    n = 0
    day = a
    while day < b:
        day += dt.timedelta(days=1)
        if is_workday(day):
            n += 1
    return n


def status(deadline: dt.date, today: dt.date) -> str:
    """``green``, ``yellow`` (at most :data:`WARN_WORKDAYS` working days left) or ``red``."""
    if figures.overdue(deadline, today):
        return RED
    if workdays_between(today, deadline) <= WARN_WORKDAYS:
        return YELLOW
    return GREEN


def overdue_workdays(deadline: dt.date, today: dt.date) -> int:
    """Working days past the deadline (0 when not overdue)."""
    return max(0, workdays_between(deadline, today))
