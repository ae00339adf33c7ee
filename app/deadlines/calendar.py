"""The calendar of England and Wales (pure): its days, its working days, the end of a day.

A day is a date in Europe/London. A working day is a weekday that is not a bank holiday in
England and Wales (the two share their bank holidays); the holidays come from the `holidays`
library, which knows the rules, substitute days included, for any year. "By the end of a day"
is before the midnight that ends it in London, whichever of GMT and BST is in force.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

ENGLAND_AND_WALES = ZoneInfo("Europe/London")


@functools.cache
def _bank_holidays() -> holidays.HolidayBase:
    """England's bank holidays (Wales has the same), built on first use and filled in per year
    as asked."""
    return holidays.country_holidays("GB", subdiv="ENG")


def today(now: datetime) -> date:
    """The date in England and Wales at `now` (an aware instant)."""
    return now.astimezone(ENGLAND_AND_WALES).date()


def is_working_day(day: date) -> bool:
    """A weekday that is not a bank holiday in England and Wales."""
    return day.weekday() < 5 and day not in _bank_holidays()


def working_days_after(day: date, count: int) -> date:
    """The `count`-th working day after `day` (`day` itself when count is 0)."""
    for _ in range(count):
        day += timedelta(days=1)
        while not is_working_day(day):
            day += timedelta(days=1)
    return day


def end_of(day: date) -> datetime:
    """The instant (UTC) that ends `day` in England and Wales: the midnight that starts the
    next."""
    return datetime.combine(day + timedelta(days=1), time(), ENGLAND_AND_WALES).astimezone(UTC)
