"""The planner of stopping messages (app/messages/retraction_plan.py), without a database: which
deliveries stop and how, which messages are revoked, and what a recipient still holds,
table-driven, and with hypothesis against a plain statement of the rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.messages.kinds import CANCELLATION, DISCLOSURE
from app.messages.retraction_plan import CONSENT_WITHDRAWN, Attempt, Held, Retraction
from app.messages.states import DELIVERED, PENDING, REVOKED, SUPERSEDED

# The suite's wall clock (moved by --today), to the hour: every date below is relative to it.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
NOTICE, RECIPIENT, OTHER = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def message(kind: str = DISCLOSURE, recipient: uuid.UUID = RECIPIENT, **extra) -> Held:
    return Held(new_id(), kind, NOTICE, recipient, **extra)


def delivery(of: Held, state: str = PENDING, leased: timedelta | None = None, attempts=0):
    return Attempt(new_id(), of.id, state, NOW + leased if leased is not None else None, attempts)


UNTRIED = {"state": PENDING}
TRIED = {"state": PENDING, "attempts": 1}
IN_FLIGHT = {"state": PENDING, "leased": timedelta(seconds=30)}
LEASE_LAPSED = {"state": PENDING, "leased": timedelta(seconds=-30)}
GONE = {"state": DELIVERED, "attempts": 1, "leased": timedelta(seconds=-30)}


@pytest.mark.parametrize(
    ("deliveries", "why", "revoked", "stopped"),
    [
        ([UNTRIED], "cancelled", True, [REVOKED]),
        ([UNTRIED, UNTRIED], "superseded", True, [REVOKED, REVOKED]),
        ([TRIED], "cancelled", False, [SUPERSEDED]),
        ([TRIED], CONSENT_WITHDRAWN, False, [REVOKED]),
        ([IN_FLIGHT, UNTRIED], "cancelled", False, [None, SUPERSEDED]),
        ([LEASE_LAPSED], "superseded", False, [SUPERSEDED]),
        ([GONE, UNTRIED], "cancelled", False, [None, SUPERSEDED]),
        ([], "cancelled", False, []),  # inbox only: its recipient may have read it
    ],
    ids=[
        "untried",
        "two untried",
        "tried",
        "tried, consent",
        "in flight",
        "lapsed",
        "gone",
        "inbox only",
    ],
)
def test_a_retraction_stops_what_is_pending_and_revokes_what_never_went(
    deliveries, why, revoked, stopped
):
    held = message()
    rows = [delivery(held, **d) for d in deliveries]
    plan = Retraction([held], rows, now=NOW)
    assert plan.retract(held, why) is revoked
    assert [plan.stops[r.id].state if r.id in plan.stops else None for r in rows] == stopped
    assert all(s.why == why for s in plan.stops.values())
    assert plan.revoked == ([held.id] if revoked else [])
    assert [e.action for e in plan.entries] == (["message.revoked"] if revoked else [])
    assert plan.retract(held, why) is revoked  # once more: nothing new
    assert len(plan.entries) == int(revoked)


def test_held_walks_back_past_what_never_went_and_stops_at_a_cancellation():
    cancelled = message(CANCELLATION)
    sent, never, gone_elsewhere = message(), message(), message(recipient=OTHER)
    revoked_before = message(revoked=True)
    rows = [delivery(sent, **GONE), delivery(never), delivery(gone_elsewhere, **GONE)]
    order = [cancelled, sent, gone_elsewhere, never, revoked_before]
    plan = Retraction(order, rows, now=NOW)
    assert plan.held() == {RECIPIENT: never, OTHER: gone_elsewhere}
    assert plan.retract_held(never, "cancelled") == sent
    assert plan.revoked == [never.id]
    plan = Retraction([cancelled, never], [delivery(never)], now=NOW)
    assert plan.retract_held(never, "cancelled") is None  # it holds the cancellation


SHAPES = st.lists(
    st.lists(st.sampled_from([UNTRIED, TRIED, IN_FLIGHT, LEASE_LAPSED, GONE]), max_size=3),
    min_size=1,
    max_size=5,
)


@given(SHAPES, st.sampled_from(["cancelled", "superseded", CONSENT_WITHDRAWN]))
def test_what_a_recipient_still_holds_is_its_latest_message_that_may_have_gone(shapes, why):
    """Walking back from the latest disclosure: each one never claimed nor tried is revoked, and
    the first that may have reached its recipient is what it holds after all."""
    messages = [message() for _ in shapes]
    rows = [delivery(m, **d) for m, shape in zip(messages, shapes, strict=True) for d in shape]
    plan = Retraction(messages, rows, now=NOW)
    still = plan.retract_held(messages[-1], why)

    def never_went(m: Held) -> bool:
        mine = [r for r in rows if r.message_id == m.id]
        return bool(mine) and all(r.leased_until is None and r.attempts == 0 for r in mine)

    expected = next((m for m in reversed(messages) if not never_went(m)), None)
    assert still == expected
    walked = messages[messages.index(expected) if expected else 0 :]
    assert set(plan.revoked) == {m.id for m in walked if never_went(m)}
    for stop in plan.stops.values():
        [row] = [r for r in rows if r.id == stop.delivery_id]
        assert row.state == PENDING and not (row.leased_until and row.leased_until > NOW)
