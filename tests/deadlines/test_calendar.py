"""The calendar of England and Wales and the deadlines' windows, against published dates.

Every date here is a fact of the calendar (gov.uk's bank holidays, the clock changes), not
relative to today: these hold whatever day the suite runs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.deadlines.calendar import end_of, is_working_day, today, working_days_after
from app.deadlines.rules import Windows

# England and Wales's bank holidays in 2027, as gov.uk publishes them (Christmas and Boxing Day
# fall on a weekend, so the 27th and 28th are substitute days).
BANK_HOLIDAYS_2027 = [
    date(2027, 1, 1),
    date(2027, 3, 26),
    date(2027, 3, 29),
    date(2027, 5, 3),
    date(2027, 5, 31),
    date(2027, 8, 30),
    date(2027, 12, 27),
    date(2027, 12, 28),
]


@pytest.mark.parametrize("holiday", BANK_HOLIDAYS_2027)
def test_bank_holidays_are_not_working_days(holiday: date) -> None:
    assert holiday.weekday() < 5
    assert not is_working_day(holiday)


def test_a_year_has_its_weekdays_less_its_bank_holidays() -> None:
    days = [
        date.fromordinal(d)
        for d in range(date(2027, 1, 1).toordinal(), date(2028, 1, 1).toordinal())
    ]
    working = [d for d in days if is_working_day(d)]
    weekdays = [d for d in days if d.weekday() < 5]
    assert sorted(set(weekdays) - set(working)) == BANK_HOLIDAYS_2027


@pytest.mark.parametrize(
    ("day", "count", "expected"),
    [
        (date(2026, 12, 7), 1, date(2026, 12, 8)),  # Monday to Tuesday
        (date(2026, 12, 11), 1, date(2026, 12, 14)),  # Friday to Monday
        (date(2026, 12, 12), 1, date(2026, 12, 14)),  # Saturday to Monday
        (
            date(2026, 12, 24),
            1,
            date(2026, 12, 29),
        ),  # Christmas, a weekend, Boxing Day's substitute
        (date(2027, 3, 25), 1, date(2027, 3, 30)),  # Good Friday, a weekend, Easter Monday
        (date(2027, 12, 24), 1, date(2027, 12, 29)),  # two substitute days
        (date(2026, 12, 7), 0, date(2026, 12, 7)),
        (date(2026, 12, 7), 5, date(2026, 12, 14)),
    ],
)
def test_working_days_after(day: date, count: int, expected: date) -> None:
    assert working_days_after(day, count) == expected


@pytest.mark.parametrize(
    ("day", "ends_at"),
    [
        (date(2026, 12, 7), datetime(2026, 12, 8, 0, 0, tzinfo=UTC)),  # GMT
        (date(2026, 7, 1), datetime(2026, 7, 1, 23, 0, tzinfo=UTC)),  # BST
        (date(2027, 3, 27), datetime(2027, 3, 28, 0, 0, tzinfo=UTC)),  # the clocks go forward after
        (date(2027, 3, 28), datetime(2027, 3, 28, 23, 0, tzinfo=UTC)),  # a 23-hour day
        (date(2027, 10, 30), datetime(2027, 10, 30, 23, 0, tzinfo=UTC)),  # they go back after
        (date(2027, 10, 31), datetime(2027, 11, 1, 0, 0, tzinfo=UTC)),  # a 25-hour day
    ],
)
def test_a_day_ends_at_midnight_in_london(day: date, ends_at: datetime) -> None:
    assert end_of(day) == ends_at


def test_the_day_is_londons_not_utcs() -> None:
    assert today(datetime(2026, 7, 3, 23, 30, tzinfo=UTC)) == date(2026, 7, 4)  # BST: Saturday
    assert today(datetime(2026, 12, 4, 23, 30, tzinfo=UTC)) == date(2026, 12, 4)  # GMT: Friday


def test_receipt_is_due_by_the_end_of_the_next_working_day() -> None:
    windows = Windows()
    # Friday 23:30 UTC in summer is Saturday in London: the next working day is Monday.
    assert windows.receipt_due(datetime(2026, 7, 3, 23, 30, tzinfo=UTC)) == date(2026, 7, 6)
    assert windows.receipt_due(datetime(2026, 12, 7, 9, 0, tzinfo=UTC)) == date(2026, 12, 8)
    assert Windows(receipt_working_days=0).receipt_due(
        datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    ) == date(2026, 12, 7)


def test_engagement_window_is_21_days_from_release_inclusive() -> None:
    windows, released = Windows(), date(2026, 12, 7)
    assert windows.engagement_due(released) == date(2026, 12, 28)
    assert windows.engaged_in_window(date(2026, 12, 28), released)
    assert windows.engaged_in_window(released, released)
    assert not windows.engaged_in_window(date(2026, 12, 29), released)
    assert not windows.engaged_in_window(date(2026, 12, 6), released)
    assert Windows(engagement_days=2).engagement_due(released) == date(2026, 12, 9)
