"""FailureThrottle (app/access/throttle.py), pure: no database, no clock; times are given."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.access.throttle import FailureThrottle, Key

LIMIT, WINDOW = 3, 60.0
A = ("cli_a", "10.0.0.1")
A_ELSEWHERE = ("cli_a", "10.0.0.2")  # the same client from another source
B = ("cli_b", "10.0.0.1")  # another client from the same source

Step = Callable[[FailureThrottle], None]


def fail(key: Key, *times: float) -> Step:
    def step(throttle: FailureThrottle) -> None:
        for t in times:
            throttle.failed(key, t)

    return step


def ok(key: Key) -> Step:
    return lambda throttle: throttle.succeeded(key)


def withdraw(key: Key, at: float) -> Step:
    return lambda throttle: throttle.withdraw(key, at)


# (steps, key asked about, when, expected retry_after)
CASES: dict[str, tuple[list[Step], Key, float, float]] = {
    "nothing failed": ([], A, 0, 0),
    "under the limit": ([fail(A, 0, 1)], A, 2, 0),
    "at the limit: until the oldest leaves": ([fail(A, 10, 11, 12)], A, 20, 10 + WINDOW - 20),
    "over the limit: until too few remain": ([fail(A, 10, 11, 12, 13)], A, 20, 11 + WINDOW - 20),
    "just inside the window": ([fail(A, 0, 1, 2)], A, 59.5, 0.5),
    "a failure exactly a window old is gone": ([fail(A, 0, 1, 2)], A, 60, 0),
    "failures older than the window are forgotten": ([fail(A, 0, 1, 70, 71)], A, 72, 0),
    "succeeded() clears": ([fail(A, 0, 1, 2), ok(A)], A, 3, 0),
    "after succeeded() counting starts again": ([fail(A, 0, 1, 2), ok(A), fail(A, 4, 5)], A, 6, 0),
    "another source's success does not clear": ([fail(A, 0, 1, 2), ok(A_ELSEWHERE)], A, 3, 57),
    "another source is independent": ([fail(A, 0, 1, 2)], A_ELSEWHERE, 3, 0),
    "another client is independent": ([fail(A, 0, 1, 2)], B, 3, 0),
    "a withdrawn failure does not count": ([fail(A, 0, 1, 2), withdraw(A, 1)], A, 3, 0),
    "withdrawing takes back that failure only": (
        [fail(A, 10, 11, 12, 13), withdraw(A, 13)],
        A,
        20,
        10 + WINDOW - 20,
    ),
    "withdrawing another source's failure changes nothing": (
        [fail(A, 0, 1, 2), withdraw(A_ELSEWHERE, 1)],
        A,
        3,
        57,
    ),
    "withdrawing a failure never counted changes nothing": (
        [fail(A, 0, 1, 2), withdraw(A, 5)],
        A,
        3,
        57,
    ),
    "others' failures do not count": ([fail(A_ELSEWHERE, 0, 1), fail(B, 2), fail(A, 3)], A, 4, 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_retry_after(case: str) -> None:
    steps, key, now, expected = CASES[case]
    throttle = FailureThrottle(limit=LIMIT, window_seconds=WINDOW)
    for step in steps:
        step(throttle)
    assert throttle.retry_after(key, now) == pytest.approx(expected)


def test_max_keys_forgets_the_least_recently_failing_pair() -> None:
    throttle = FailureThrottle(limit=LIMIT, window_seconds=WINDOW, max_keys=2)
    fail(A, 0, 1, 2)(throttle)
    fail(B, 3)(throttle)
    fail(A, 4)(throttle)  # A fails again: B is now the least recent
    fail(A_ELSEWHERE, 5)(throttle)  # a third pair: B is forgotten, A kept
    assert throttle.retry_after(A, 6) > 0
    fail(B, 6, 7)(throttle)  # had B been kept, 7 would be its third failure
    assert throttle.retry_after(B, 8) == 0
    # B's return made three pairs again, and A, the least recently failing, was forgotten.
    assert throttle.retry_after(A, 8) == 0


# --- the property: refused exactly when `limit` failures lie in (t - window, t] ------------

KEYS = [A, A_ELSEWHERE, B]
steps = st.lists(st.tuples(st.sampled_from(KEYS), st.integers(0, 40), st.booleans()), max_size=60)


@given(limit=st.integers(1, 5), window=st.integers(1, 100), steps=steps)
def test_refused_iff_limit_failures_in_the_window(limit: int, window: int, steps) -> None:
    """Steps are (key, seconds since the last step, whether it is a failure); after every step
    each key is asked about. Integer times keep the window's edges exact."""
    throttle = FailureThrottle(limit=limit, window_seconds=window)
    history: dict[Key, list[int]] = {key: [] for key in KEYS}
    t = 0
    for key, gap, failed in steps:
        t += gap
        if failed:
            throttle.failed(key, t)
            history[key].append(t)
        for asked in KEYS:
            recent = [f for f in history[asked] if t - window < f <= t]
            wait = throttle.retry_after(asked, t)
            assert (wait > 0) == (len(recent) >= limit), (asked, t, history[asked], wait)
            assert wait <= window

    for asked in KEYS:  # told to wait, a pair that waits exactly that long may try again
        wait = throttle.retry_after(asked, t)
        if wait > 0:
            assert throttle.retry_after(asked, t + wait) == 0
