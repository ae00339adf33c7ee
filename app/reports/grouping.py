"""What a report is asked for, and how its releases are grouped (pure).

A release is grouped by its prison's code, its substance misuse service's code, or the month
(YYYY-MM) of its release date; groups are given in the order of their keys.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

By = Literal["prison", "service", "month"]
BY: tuple[By, ...] = ("prison", "service", "month")
LONGEST_SPAN_YEARS = 5  # `to` at most five years (by the calendar) after `from`


@dataclass(frozen=True)
class Asked:
    """A report's question: releases dated in [start, end], grouped `by`; only the releases of
    the prison `organisation_id` when given (a prison sees its own only)."""

    start: date
    end: date
    by: By = "month"
    organisation_id: uuid.UUID | None = None


def problem(start: date, end: date) -> tuple[str, str] | None:
    """What is wrong with a range, as (the parameter, why), or None."""
    if start > end:
        return "to", f"must not be before from ({start.isoformat()})"
    if end > _years_on(start, LONGEST_SPAN_YEARS):
        return "to", "must be at most five years after from"
    return None


def _years_on(day: date, years: int) -> date:
    """The same day `years` on (29 February: the 28th, in a year without one)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Place:
    """Where a release falls: its day, its prison's code and its service's code."""

    release_date: date
    prison: str
    service: str

    def key(self, by: By) -> str:
        if by == "prison":
            return self.prison
        if by == "service":
            return self.service
        return _month(self.release_date)


@functools.lru_cache(maxsize=4096)
def _month(day: date) -> str:
    """A day's month as YYYY-MM (a few hundred distinct days in a report: each formatted once)."""
    return day.strftime("%Y-%m")


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The `fraction` quantile of the values by linear interpolation between the closest ranks
    (numpy's default; statistics.quantiles' "inclusive" method); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
