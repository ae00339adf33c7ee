"""PURE retry planning: what happens to a delivery after an attempt, and when it is tried again.

No clock, no randomness, no I/O: the worker passes the time, a uniform draw for the jitter and
what the receiver answered, and gets back a Plan. Table-driven tests pin every branch.
"""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

# Standard Webhooks: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
STANDARD_SCHEDULE: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
)
# Each wait is spread by up to this fraction either way, so that receivers recovering from an
# outage are not hit by every delayed message at the same second.
JITTER = 0.1
# A receiver's Retry-After may lengthen a wait, never shorten it, and never beyond this.
MAX_RETRY_AFTER = timedelta(hours=24)
# Retry-After means "come back then" only on these (RFC 9110 section 10.2.3; RFC 6585).
RETRY_AFTER_STATUSES = frozenset({429, 503})
GONE = 410  # the receiver says the endpoint is gone for good: its subscription is disabled

State = Literal["delivered", "pending", "dead"]


@dataclass(frozen=True)
class Plan:
    state: State  # the delivery's state after the attempt
    next_attempt_at: datetime | None = None  # when "pending": when it is due again
    disable_subscription: bool = False  # the endpoint answered 410 Gone


def scheduled_delay(
    attempts_made: int, schedule: Sequence[timedelta] = STANDARD_SCHEDULE
) -> timedelta | None:
    """The schedule's wait after `attempts_made` failed attempts; None when it is spent."""
    if attempts_made < 1:
        raise ValueError("at least one attempt has been made before a retry is planned")
    if attempts_made > len(schedule):
        return None
    return schedule[attempts_made - 1]


def max_attempts(schedule: Sequence[timedelta] = STANDARD_SCHEDULE) -> int:
    return len(schedule) + 1


def retry_after_delay(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header as a wait: delay-seconds or an HTTP-date; None if absent, unreadable
    or longer than 64 characters. A date in the past is no wait at all; delay-seconds beyond
    MAX_RETRY_AFTER are read as MAX_RETRY_AFTER (plan caps a later date the same way)."""
    if not value or len(value) > 64:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() also takes "²" and other digits
        return timedelta(seconds=min(int(value), int(MAX_RETRY_AFTER.total_seconds())))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is not an HTTP-date
        return None
    return max(when - now, timedelta())


def plan(
    *,
    attempts_made: int,
    status_code: int | None,
    retry_after: str | None,
    now: datetime,
    draw: float,
    schedule: Sequence[timedelta] = STANDARD_SCHEDULE,
) -> Plan:
    """What follows attempt number `attempts_made` (1 for the first).

    2xx is delivered. Any other answer, or none, is retried on the schedule, spread by the
    jitter (draw is uniform in [0, 1)) and lengthened by a Retry-After on 429 or 503 up to
    MAX_RETRY_AFTER; once the schedule is spent the delivery is dead. 410 also disables the
    subscription: its pending deliveries wait, and go out if the recipient re-enables it.
    """
    if not 0.0 <= draw < 1.0:
        raise ValueError("draw must be in [0, 1)")
    if status_code is not None and 200 <= status_code < 300:
        return Plan("delivered")
    gone = status_code == GONE
    delay = scheduled_delay(attempts_made, schedule)
    if delay is None:
        return Plan("dead", disable_subscription=gone)
    delay = delay * (1 + JITTER * (2 * draw - 1))
    asked = retry_after_delay(retry_after, now) if status_code in RETRY_AFTER_STATUSES else None
    if asked is not None:
        delay = max(delay, min(asked, MAX_RETRY_AFTER))
    return Plan("pending", now + delay, disable_subscription=gone)
