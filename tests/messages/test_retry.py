"""The retry plan (app/messages/retry.py): pure, so every branch is a row in a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.messages.retry import (
    JITTER,
    MAX_RETRY_AFTER,
    STANDARD_SCHEDULE,
    Plan,
    max_attempts,
    plan,
    retry_after_delay,
    scheduled_delay,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PROPERTY = settings(max_examples=200, deadline=None)
S, M, H = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)

# Standard Webhooks, as it states it: at once, then these waits after each failure.
STANDARD = [5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 14 * H, 20 * H, 24 * H]


def test_the_default_schedule_is_standard_webhooks() -> None:
    assert list(STANDARD_SCHEDULE) == STANDARD
    assert max_attempts() == 10  # the first at once, then nine retries
    assert sum(STANDARD_SCHEDULE, timedelta()) == timedelta(seconds=272_105)


@pytest.mark.parametrize(
    ("attempts_made", "delay"),
    [*((n, d) for n, d in enumerate(STANDARD, start=1)), (10, None), (11, None), (1000, None)],
)
def test_scheduled_delay(attempts_made: int, delay: timedelta | None) -> None:
    assert scheduled_delay(attempts_made) == delay


@pytest.mark.parametrize("attempts_made", [0, -1])
def test_a_retry_needs_an_attempt_first(attempts_made: int) -> None:
    message = "at least one attempt has been made before a retry is planned"
    with pytest.raises(ValueError, match=f"^{message}$"):
        scheduled_delay(attempts_made)


def at(delay: timedelta) -> datetime:
    return NOW + delay


# draw 0.5 is no jitter; 0.0 the earliest (-10%); just under 1 the latest (+10%).
LATEST = 0.999999
CASES = [
    # (attempts made, status, Retry-After, draw) -> plan
    ("2xx delivers", 1, 200, None, 0.5, Plan("delivered")),
    ("204 delivers", 7, 204, None, 0.5, Plan("delivered")),
    ("299 delivers", 1, 299, None, 0.5, Plan("delivered")),
    ("500 waits 5 s", 1, 500, None, 0.5, Plan("pending", at(5 * S))),
    ("no answer waits", 2, None, None, 0.5, Plan("pending", at(5 * M))),
    ("3xx is a failure", 1, 302, None, 0.5, Plan("pending", at(5 * S))),
    ("304 is a failure", 1, 304, None, 0.5, Plan("pending", at(5 * S))),
    ("1xx is a failure", 1, 100, None, 0.5, Plan("pending", at(5 * S))),
    ("earliest jitter", 3, 500, None, 0.0, Plan("pending", at(27 * M))),
    (
        "latest jitter",
        3,
        500,
        None,
        LATEST,
        Plan("pending", at(30 * M * (1 + JITTER * (2 * LATEST - 1)))),
    ),
    ("ninth failure waits 24 h", 9, 500, None, 0.5, Plan("pending", at(24 * H))),
    ("tenth failure is dead", 10, 500, None, 0.5, Plan("dead")),
    ("dead ignores Retry-After", 10, 503, "60", 0.5, Plan("dead")),
    ("longer Retry-After on 503", 1, 503, "120", 0.5, Plan("pending", at(120 * S))),
    ("longer Retry-After on 429", 1, 429, "120", 0.5, Plan("pending", at(120 * S))),
    ("shorter Retry-After ignored", 4, 429, "10", 0.5, Plan("pending", at(2 * H))),
    ("Retry-After capped at 24 h", 1, 503, "999999999", 0.5, Plan("pending", at(MAX_RETRY_AFTER))),
    (
        "HTTP-date capped at 24 h",
        1,
        503,
        "Tue, 08 Dec 2026 09:00:00 GMT",
        0.5,
        Plan("pending", at(MAX_RETRY_AFTER)),
    ),
    ("Retry-After on 500 ignored", 1, 500, "120", 0.5, Plan("pending", at(5 * S))),
    (
        "HTTP-date Retry-After",
        1,
        503,
        "Tue, 01 Dec 2026 09:10:00 GMT",
        0.5,
        Plan("pending", at(10 * M)),
    ),
    ("past HTTP-date", 2, 503, "Tue, 01 Dec 2026 08:00:00 GMT", 0.5, Plan("pending", at(5 * M))),
    ("garbage Retry-After", 1, 503, "soon", 0.5, Plan("pending", at(5 * S))),
    ("negative Retry-After", 1, 503, "-30", 0.5, Plan("pending", at(5 * S))),
    ("410 disables, retries later", 1, 410, None, 0.5, Plan("pending", at(5 * S), True)),
    ("410 at the end is dead", 10, 410, None, 0.5, Plan("dead", None, True)),
    ("404 does not disable", 1, 404, None, 0.5, Plan("pending", at(5 * S))),
]


@pytest.mark.parametrize(
    ("attempts", "status", "retry_after", "draw", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_plan(attempts, status, retry_after, draw, expected) -> None:
    got = plan(
        attempts_made=attempts, status_code=status, retry_after=retry_after, now=NOW, draw=draw
    )
    assert got == expected


@pytest.mark.parametrize("draw", [-0.1, 1.0, 2.0])
def test_the_draw_must_be_uniform_in_zero_to_one(draw: float) -> None:
    with pytest.raises(ValueError, match=r"^draw must be in \[0, 1\)$"):
        plan(attempts_made=1, status_code=500, retry_after=None, now=NOW, draw=draw)


def test_a_shorter_schedule_is_followed_and_spent_sooner() -> None:
    short = (timedelta(milliseconds=200),) * 3
    kwargs = {"status_code": 500, "retry_after": None, "now": NOW, "draw": 0.5, "schedule": short}
    assert plan(attempts_made=3, **kwargs) == Plan("pending", at(timedelta(milliseconds=200)))
    assert plan(attempts_made=4, **kwargs) == Plan("dead")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", timedelta()),
        ("30", 30 * S),
        (" 30 ", 30 * S),
        ("Tue, 01 Dec 2026 09:00:30 GMT", 30 * S),
        ("Tue, 01 Dec 2026 08:00:00 GMT", timedelta()),
        (None, None),
        ("", None),
        ("1.5", None),
        ("\u00b2", None),  # str.isdigit() says yes to "²"; int() does not
        ("\u0663", None),  # an Arabic-Indic three
        ("Tue, 01 Dec 2026 09:00:30", None),  # no zone: not an HTTP-date
        ("x" * 100, None),
        ("0" * 62 + "30", 30 * S),  # 64 characters: the longest read
        ("86401", MAX_RETRY_AFTER),  # a second past the cap
        ("9" * 64, MAX_RETRY_AFTER),  # past what a timedelta holds
        ("0" * 63 + "30", None),  # 65: too long to be worth reading
        ("9" * 5000, None),  # int() refuses this many digits: never reached
    ],
)
def test_retry_after_delay(value: str | None, expected: timedelta | None) -> None:
    assert retry_after_delay(value, NOW) == expected


@PROPERTY
@given(
    attempts=st.integers(1, 12),
    status=st.one_of(st.none(), st.integers(100, 599)),
    retry_after=st.one_of(st.none(), st.integers(0, 10**7).map(str), st.text(max_size=20)),
    draw=st.floats(0.0, 1.0, exclude_max=True),
)
def test_property_waits_stay_within_the_jittered_schedule_and_the_cap(
    attempts, status, retry_after, draw
) -> None:
    got = plan(
        attempts_made=attempts, status_code=status, retry_after=retry_after, now=NOW, draw=draw
    )
    if status is not None and 200 <= status < 300:
        assert got == Plan("delivered")
        return
    assert got.disable_subscription == (status == 410)
    if attempts >= max_attempts():
        assert got.state == "dead"
        assert got.next_attempt_at is None
        return
    assert got.state == "pending"
    assert got.next_attempt_at is not None
    wait = got.next_attempt_at - NOW
    scheduled = STANDARD_SCHEDULE[attempts - 1]
    assert scheduled * (1 - JITTER) <= wait
    assert wait <= max(scheduled * (1 + JITTER), MAX_RETRY_AFTER)
    if status not in (429, 503):
        assert wait <= scheduled * (1 + JITTER)  # only those may lengthen a wait
