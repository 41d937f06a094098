"""Working days from the Chinese calendar: holidays, make-up workdays, the fallback."""

from __future__ import annotations

import datetime as dt
import logging

import chinese_calendar
import pytest

from node import workdays
from node.workdays import (
    GREEN,
    RED,
    WARN_WORKDAYS,
    YELLOW,
    add_workdays,
    is_workday,
    overdue_workdays,
    status,
    workdays_between,
)

D = dt.date


def test_installed_calendar_knows_2026() -> None:
    # The tests below rely on the published 2026 schedule (State Council notice of Nov 2025):
    # National Day + Mid-Autumn: 1-7 October off (plus 25 September, Mid-Autumn, a Friday);
    # make-up workdays Sunday 20 September and Saturday 10 October.
    assert workdays.covered(D(2026, 10, 1))
    assert chinese_calendar.get_holiday_detail(D(2026, 10, 1)) == (True, "National Day")


@pytest.mark.parametrize(
    "day,expected",
    [
        (D(2026, 9, 30), True),  # Wednesday before the holiday
        (D(2026, 10, 1), False),  # National Day
        (D(2026, 10, 5), False),  # a Monday inside the holiday
        (D(2026, 10, 7), False),  # last holiday day (Wednesday)
        (D(2026, 10, 8), True),  # back to work
        (D(2026, 10, 10), True),  # Saturday make-up workday (调休上班)
        (D(2026, 10, 11), False),  # ordinary Sunday
        (D(2026, 9, 20), True),  # Sunday make-up workday
        (D(2026, 9, 25), False),  # Mid-Autumn Festival (Friday)
        (D(2026, 9, 26), False),  # ordinary Saturday
    ],
)
def test_is_workday_2026(day: dt.date, expected: bool) -> None:
    assert is_workday(day) is expected


def test_add_workdays_over_national_day() -> None:
    # The first working day after 30 September is 8 October.
    assert add_workdays(D(2026, 9, 30), 1) == D(2026, 10, 8)
    # 8 Oct (Thu), 9 Oct (Fri), 10 Oct (Saturday make-up workday).
    assert add_workdays(D(2026, 9, 30), 3) == D(2026, 10, 10)
    # Ten working days from Monday 28 September: 29, 30 Sep, 8, 9, 10, 12, 13, 14, 15, 16 Oct.
    assert add_workdays(D(2026, 9, 28), 10) == D(2026, 10, 16)
    assert add_workdays(D(2026, 9, 28), 20) == D(2026, 10, 30)
    # 0 days (即办) is the same day; negative counts go backwards.
    assert add_workdays(D(2026, 10, 3), 0) == D(2026, 10, 3)
    assert add_workdays(D(2026, 10, 8), -1) == D(2026, 9, 30)
    # From inside the holiday the count starts on the first working day after it.
    assert add_workdays(D(2026, 10, 2), 1) == D(2026, 10, 8)


def test_make_up_workday_counts() -> None:
    # Friday 18 Sep -> Sunday 20 Sep (make-up) is the next working day; 19 Sep is not.
    assert add_workdays(D(2026, 9, 18), 1) == D(2026, 9, 20)
    assert workdays_between(D(2026, 9, 18), D(2026, 9, 21)) == 2


def test_workdays_between_is_inverse_of_add() -> None:
    start = D(2026, 9, 21)
    for n in range(0, 30):
        assert workdays_between(start, add_workdays(start, n)) == n
    assert workdays_between(D(2026, 10, 8), D(2026, 9, 30)) == -1
    assert workdays_between(D(2026, 10, 1), D(2026, 10, 7)) == 0


def test_status_thresholds() -> None:
    deadline = D(2026, 10, 16)  # Friday
    assert WARN_WORKDAYS == 2
    assert status(deadline, D(2026, 10, 13)) == GREEN  # 3 working days left
    assert status(deadline, D(2026, 10, 14)) == YELLOW  # 2 left
    assert status(deadline, D(2026, 10, 16)) == YELLOW  # the deadline day itself
    assert status(deadline, D(2026, 10, 17)) == RED  # Saturday after: overdue
    assert overdue_workdays(deadline, D(2026, 10, 17)) == 0
    assert overdue_workdays(deadline, D(2026, 10, 20)) == 2
    # Before the holiday a deadline after it is far away in working days.
    assert status(D(2026, 10, 9), D(2026, 9, 29)) == GREEN  # 30 Sep, 8, 9 Oct: 3 left
    assert status(D(2026, 10, 8), D(2026, 9, 29)) == YELLOW


def test_years_outside_the_calendar_fall_back_to_monday_to_friday(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    year = 2099
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(D(year, 1, 1))
    monkeypatch.setattr(workdays, "_warned_years", set())
    with caplog.at_level(logging.WARNING, logger="onestop.workdays"):
        assert is_workday(D(year, 1, 1)) is True  # a Thursday: no holiday data
        assert is_workday(D(year, 1, 3)) is False  # Saturday
        assert add_workdays(D(year, 1, 2), 1) == D(year, 1, 5)  # Friday -> Monday
    warnings = [r for r in caplog.records if str(year) in r.getMessage()]
    assert len(warnings) == 1  # logged once per year, not per call
    assert not workdays.covered(D(year, 1, 1))
    # Across the boundary of the data: a deadline counted from late 2026 into 2027 works.
    assert add_workdays(D(2026, 12, 31), 1) >= D(2027, 1, 1)
