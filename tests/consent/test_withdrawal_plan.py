"""The planner of what a lost consent takes back (app/consent/withdrawal_plan.py), without a
database: which messages are revoked and decided again, which are withdrawn and their recipients
told, what is logged, table-driven, and with hypothesis against a plain statement of the rule."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.consent.withdrawal_plan import Lost, Relying, plan_withdrawal, to_decide
from app.messages.kinds import CARE_UPDATE, CONSENT_WITHDRAWN, DISCLOSURE
from app.messages.retraction_plan import Attempt, Held
from app.messages.states import DELIVERED, PENDING, REVOKED
from app.notices import examples
from app.notices.document import ReleaseNotice
from tests.helpers.policies import CLINICAL, POLICY, PROBATION, SMS

# The suite's wall clock (moved by --today), to the hour: every date below is relative to it.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
PERSON = "p" * 64
BODY = ReleaseNotice.model_validate(examples.release_notice(NOW.date())).model_dump(
    mode="json", exclude_unset=True
)


@dataclass(frozen=True)
class Organisation:
    id: uuid.UUID
    code: str


N07, LEEDS = Organisation(uuid.uuid4(), "N07"), Organisation(uuid.uuid4(), "SMS-LEEDS")
ORGANISATIONS = {o.id: o for o in (N07, LEEDS)}
ROLE = {N07.id: PROBATION, LEEDS.id: SMS}

TREATMENT = "treatment_to_probation"
UNTRIED = {"state": PENDING}
TRIED = {"state": PENDING, "attempts": 1}
IN_FLIGHT = {"state": PENDING, "leased": timedelta(seconds=30)}
GONE = {"state": DELIVERED, "attempts": 1, "leased": timedelta(seconds=-30)}


def ids():
    counter = itertools.count(1)
    return lambda: uuid.UUID(int=next(counter))


def relying(to=N07, relied=(CLINICAL,), *, stands=True, is_open=True, notice=None) -> Relying:
    message = Held(uuid.uuid4(), DISCLOSURE, notice or uuid.uuid4(), to.id)
    return Relying(message, ROLE[to.id], frozenset(relied), stands, is_open)


def delivery(of: Relying, state=PENDING, leased: timedelta | None = None, attempts=0) -> Attempt:
    leased_until = NOW + leased if leased is not None else None
    return Attempt(uuid.uuid4(), of.message.id, state, leased_until, attempts)


def lost(messages, deliveries, scopes=(CLINICAL,), standing=None) -> Lost:
    standing = standing if standing is not None else dict.fromkeys(scopes, False)
    return Lost(PERSON, tuple(scopes), tuple(messages), tuple(deliveries), ORGANISATIONS, standing)


def planned(read: Lost, bodies=None):
    if bodies is None:
        bodies = {n: BODY for n in to_decide(read, now=NOW)}
    return plan_withdrawal(read, bodies=bodies, policy=POLICY, now=NOW, new_id=ids())


@pytest.mark.parametrize(
    ("to", "deliveries", "stands", "is_open", "opened", "revoked", "decided", "sent"),
    [
        (N07, [UNTRIED], True, True, True, True, True, DISCLOSURE),
        (N07, [UNTRIED, UNTRIED], True, True, True, True, True, DISCLOSURE),
        (LEEDS, [UNTRIED], True, True, True, True, True, None),  # nothing left to share
        (N07, [UNTRIED], False, True, True, True, False, None),
        (N07, [UNTRIED], True, False, True, True, False, None),
        (N07, [UNTRIED], True, True, False, True, False, None),
        (N07, [GONE], True, True, True, False, False, CONSENT_WITHDRAWN),
        (N07, [GONE, UNTRIED], True, True, True, False, False, CONSENT_WITHDRAWN),
        (N07, [TRIED], True, True, True, False, False, CONSENT_WITHDRAWN),
        (N07, [IN_FLIGHT], True, True, True, False, False, CONSENT_WITHDRAWN),
        (N07, [], True, True, True, False, False, CONSENT_WITHDRAWN),
    ],
    ids=[
        "undelivered: decided again",
        "two undelivered",
        "undelivered, nothing allowed now",
        "undelivered, replaced since",
        "undelivered, notice closed or purged",
        "undelivered, body cannot be opened",
        "delivered",
        "delivered to one of two",
        "tried",
        "in flight",
        "in the inbox only",
    ],
)
def test_a_message_that_relied_on_the_consent_is_revoked_or_its_recipient_told(
    to, deliveries, stands, is_open, opened, revoked, decided, sent
):
    scope = CLINICAL if to is N07 else SMS
    message = relying(to, (scope,), stands=stands, is_open=is_open)
    rows = [delivery(message, **d) for d in deliveries]
    read = lost([message], rows, scopes=(scope,))
    notice = message.message.notice_id
    wanted = [notice] if revoked and stands and is_open else []
    assert to_decide(read, now=NOW) == wanted
    plan = planned(read, {notice: BODY} if opened else {})

    assert plan.revoked == ((message.message.id,) if revoked else ())
    assert plan.withdrawn == (() if revoked else (message.message.id,))
    assert len(plan.disclosures) == int(decided)
    assert [s.kind for s in plan.to_sign] == ([sent] if sent else [])
    actions = ["message.revoked"] * revoked + ["disclosure.decided"] * decided
    assert [e.action for e in plan.entries] == actions
    assert {e.person_ref for e in plan.entries} <= {PERSON}
    stopped = {s.delivery_id: s.state for s in plan.retraction.stops.values()}
    assert stopped == {r.id: REVOKED for r in rows if r.state == PENDING and r.leased_until is None}
    for s in plan.to_sign:
        assert (s.supersedes, s.notice_id, s.organisation) == (message.message.id, notice, to)
    assert plan.notified == tuple(s.message_id for s in plan.to_sign if s.kind != DISCLOSURE)
    assert plan.redisclosed == tuple(s.message_id for s in plan.to_sign if s.kind == DISCLOSURE)


def test_probation_decided_again_gets_the_notice_without_what_the_consent_allowed():
    message = relying(N07, (CLINICAL,))
    plan = planned(lost([message], [delivery(message)], standing={CLINICAL: False, SMS: True}))
    [row], [again] = plan.disclosures, plan.to_sign
    assert (again.disclosure_id, row["recipient_role"]) == (row["id"], PROBATION)
    assert row["notice_id"] == message.message.notice_id and row["consents_relied"] == []
    assert "clinical_notes" not in again.claims["disclosure"]["nps_use"]["treatment_in_custody"]
    assert {"consent_not_given"} <= {w["reason"] for w in again.claims["manifest"]}
    [decided] = [e for e in plan.entries if e.action == "disclosure.decided"]
    assert decided.details["disclosure_id"] == str(row["id"])


def test_a_recipient_told_is_sent_the_scope_and_when_and_the_message_it_names():
    message = relying(LEEDS, (SMS,))
    plan = planned(lost([message], [delivery(message, **GONE)], scopes=(SMS,)))
    [told] = plan.to_sign
    assert told.claims == {"scope": SMS, "withdrawn_at": int(NOW.timestamp())}
    assert (told.kind, told.supersedes) == (CONSENT_WITHDRAWN, message.message.id)
    assert plan.entries == () and plan.disclosures == ()  # its log entries come when it is signed


def test_several_scopes_deal_with_each_message_once_for_the_first_scope_it_relied_on():
    both, clinical_only = relying(N07, (SMS, CLINICAL)), relying(N07, (CLINICAL,))
    elsewhere = relying(LEEDS, ("another_scope",))
    went = [delivery(m, **GONE) for m in (both, clinical_only, elsewhere)]
    plan = planned(lost([both, clinical_only, elsewhere], went, scopes=(SMS, CLINICAL)))
    told = [(s.supersedes, s.claims["scope"]) for s in plan.to_sign]
    assert told == [(both.message.id, SMS), (clinical_only.message.id, CLINICAL)]
    assert plan.withdrawn == (both.message.id, clinical_only.message.id)


def test_nothing_relied_on_plans_nothing():
    plan = planned(lost([], []))
    assert (plan.revoked, plan.withdrawn, plan.disclosures, plan.to_sign) == ((), (), (), ())
    assert plan.entries == () and plan.retraction.stops == {}


SHAPE = st.lists(st.sampled_from([UNTRIED, TRIED, IN_FLIGHT, GONE]), max_size=2)
MESSAGES = st.lists(
    st.tuples(
        st.sampled_from([N07, LEEDS]),
        st.sets(st.sampled_from([SMS, CLINICAL, "other"]), min_size=1),
        st.booleans(),  # stands
        st.booleans(),  # open
        st.booleans(),  # its body can be opened
        SHAPE,
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(MESSAGES, st.permutations([SMS, CLINICAL]), st.integers(1, 2))
def test_every_message_that_relied_on_a_lost_scope_is_dealt_with_once_by_the_rule(
    shapes, order, how_many
):
    scopes = tuple(order[:how_many])
    messages, rows, sealed = [], [], set()
    for to, relied, stands, is_open, opens, shape in shapes:
        message = relying(to, relied, stands=stands, is_open=is_open)
        messages.append(message)
        rows += [delivery(message, **d) for d in shape]
        if not opens:
            sealed.add(message.message.notice_id)
    read = lost(messages, rows, scopes=scopes)
    bodies = {n: BODY for n in to_decide(read, now=NOW) if n not in sealed}
    plan = planned(read, bodies)

    def never_went(m: Relying) -> bool:
        mine = [r for r in rows if r.message_id == m.message.id]
        return bool(mine) and all(r.leased_until is None and r.attempts == 0 for r in mine)

    # Scope by scope, each message in the order read, once.
    dealt = list({m: None for s in scopes for m in messages if s in m.relied})
    revoked = [m.message.id for m in dealt if never_went(m)]
    assert set(plan.revoked) == set(revoked)
    assert set(plan.withdrawn) == {m.message.id for m in dealt} - set(revoked)
    again = [m for m in dealt if never_went(m) and m.stands and m.open]
    assert to_decide(read, now=NOW) == list(dict.fromkeys(m.message.notice_id for m in again))
    redecided = [m for m in again if m.message.notice_id not in sealed]
    assert [d["notice_id"] for d in plan.disclosures] == [m.message.notice_id for m in redecided]
    told = {s.supersedes: s.claims["scope"] for s in plan.to_sign if s.kind == CONSENT_WITHDRAWN}
    assert told == {
        m.message.id: next(s for s in scopes if s in m.relied)
        for m in dealt
        if m.message.id in plan.withdrawn
    }
    for s in plan.to_sign:
        if s.kind == DISCLOSURE:
            assert s.supersedes in plan.revoked
            assert s.disclosure_id in {d["id"] for d in plan.disclosures}
    actions = [e.action for e in plan.entries]
    assert actions.count("message.revoked") == len(revoked)
    assert actions.count("disclosure.decided") == len(redecided)
    assert all(e.person_ref == PERSON for e in plan.entries)
    for stop in plan.retraction.stops.values():
        [row] = [r for r in rows if r.id == stop.delivery_id]
        assert row.state == PENDING and row.leased_until is None
        assert any(m.message.id == row.message_id for m in dealt)


def test_a_care_updates_message_is_decided_again_as_a_care_update():
    """A care update's message that relied on `treatment_to_probation`, never delivered: revoked
    and its update decided again under the care-update policy, as a care update again."""
    update_id = uuid.uuid4()
    message = Held(uuid.uuid4(), CARE_UPDATE, uuid.uuid4(), N07.id)
    about = {"series_id": str(uuid.uuid4()), "update": {"id": str(update_id), "from": "SMS-LEEDS"}}
    found = Relying(
        message,
        PROBATION,
        frozenset({TREATMENT}),
        True,
        True,
        update=update_id,
        about_update=about,
    )
    read = lost([found], [delivery(found)], scopes=(TREATMENT,))
    assert to_decide(read, now=NOW) == [update_id]
    body = {
        "safeguarding": {"children_contact": "no", "vulnerable_adults_contact": "no"},
        "clinical_note": "Clinical.",
    }
    plan = planned(read, bodies={update_id: body})
    assert plan.revoked == (message.id,)
    [again] = plan.to_sign
    assert (again.kind, again.supersedes, again.notice_id) == (
        CARE_UPDATE,
        message.id,
        message.notice_id,
    )
    assert again.claims["disclosure"] == {"safeguarding": body["safeguarding"]}
    assert again.claims["update"] == about["update"]
    [row] = plan.disclosures
    assert row["care_update_id"] == update_id and row["consents_relied"] == []
