"""The planner of a cancellation and of what an amendment replaces (app/notices/cancel_plan.py),
without a database: who is told, what is logged, which consent records are voided."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app.access.identity import Caller
from app.messages.kinds import CANCELLATION, DISCLOSURE
from app.messages.retraction_plan import Attempt, Held, Retraction
from app.messages.states import DELIVERED, PENDING
from app.notices.cancel_plan import Closed, plan_cancel, plan_replaced
from app.notices.plan import Carrier, Record

# The suite's wall clock (moved by --today), to the hour: every date below is relative to it.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
PRISON = Caller("client", uuid.uuid4(), "MDI", "prison", frozenset())
NOTICE, EARLIER = uuid.uuid4(), uuid.uuid4()


@dataclass(frozen=True)
class Organisation:
    id: uuid.UUID
    code: str


N07, SMS = Organisation(uuid.uuid4(), "N07"), Organisation(uuid.uuid4(), "SMS-LEEDS")
ORGANISATIONS = {o.id: o for o in (N07, SMS)}


def sent(to: Organisation, *, went: bool) -> tuple[Held, Attempt]:
    message = Held(uuid.uuid4(), DISCLOSURE, NOTICE, to.id)
    leased = NOW - timedelta(minutes=1) if went else None
    state = DELIVERED if went else PENDING
    return message, Attempt(uuid.uuid4(), message.id, state, leased, int(went))


def record(scope: str, *, made_from: uuid.UUID | None = EARLIER) -> Record:
    return Record(uuid.uuid4(), scope, "given", NOW, "Healthcare", notice_id=made_from)


@pytest.mark.parametrize(
    ("went", "told"),
    [((True, True), ["N07", "SMS-LEEDS"]), ((True, False), ["N07"]), ((False, False), [])],
)
def test_whoever_may_hold_a_disclosure_is_told_and_the_rest_never_get_it(went, told):
    (n07, n07_delivery), (sms, sms_delivery) = sent(N07, went=went[0]), sent(SMS, went=went[1])
    retraction = Retraction([n07, sms], [n07_delivery, sms_delivery], now=NOW)
    plan = plan_cancel(
        Closed(NOTICE, 2, "p" * 64, frozenset({NOTICE})),
        retraction,
        reason="release_cancelled",
        caller=PRISON,
        organisations=ORGANISATIONS,
        now=NOW,
    )
    assert [s.organisation.code for s in plan.to_sign] == told
    assert all(
        s.kind == CANCELLATION and s.claims == {"reason": "release_cancelled"} for s in plan.to_sign
    )
    actions = [e.action for e in plan.entries]
    assert actions == ["notice.cancelled"] + ["message.revoked"] * (2 - len(told))
    assert plan.voided == () and plan.lost == ()


def test_entered_in_error_voids_only_what_rested_on_its_versions_alone():
    alone, elsewhere, through_api = record("a"), record("b"), record("c", made_from=None)
    other_notice = uuid.uuid4()
    carriers = [
        Carrier(alone.id, EARLIER, False),
        Carrier(elsewhere.id, EARLIER, False),
        Carrier(elsewhere.id, other_notice, True),
    ]
    plan = plan_cancel(
        Closed(NOTICE, 2, "p" * 64, frozenset({NOTICE, EARLIER})),
        Retraction([], [], now=NOW),
        reason="entered_in_error",
        caller=PRISON,
        organisations={},
        records=[alone, elsewhere, through_api],
        carriers=carriers,
        now=NOW,
    )
    assert plan.voided == (alone.id,) and plan.lost == ("a",)
    assert [e.action for e in plan.entries] == ["notice.cancelled", "consent.voided"]


def test_an_amendment_supersedes_what_it_discloses_again_and_tells_the_rest():
    (n07, n07_delivery), (sms, sms_delivery) = sent(N07, went=True), sent(SMS, went=True)
    retraction = Retraction([n07, sms], [n07_delivery, sms_delivery], now=NOW)
    told = plan_replaced(
        retraction,
        {N07.id: n07.id, SMS.id: sms.id},
        disclosed_to=frozenset({N07.id}),
        organisations=ORGANISATIONS,
    )
    assert [(s.organisation.code, s.supersedes) for s in told.to_sign] == [("SMS-LEEDS", sms.id)]
    assert told.to_sign[0].claims == {"reason": "amended_not_shared"}
    assert told.entries == () and retraction.stops == {}  # both went: nothing left to stop
