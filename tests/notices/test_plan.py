"""The planner of a notice's intake (app/notices/plan.py), without a database: what it writes,
signs and logs for a notice, table-driven, and what it makes of consent records, with hypothesis.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.access.identity import Caller
from app.disclosure.policy_files import load_policy
from app.keys.sealing import Sealed
from app.notices import examples
from app.notices.document import ReleaseNotice
from app.notices.plan import (
    ACCEPTED,
    NOT_ROUTED,
    Carrier,
    Earlier,
    Read,
    Record,
    carry,
    plan_notice,
    standing_of,
    unsupported,
)
from app.updates.document import DOCUMENTS

POLICY = load_policy(Path(__file__).resolve().parents[2] / "consent", ReleaseNotice, DOCUMENTS)
# The suite's wall clock (moved by --today), to the hour: every date below is relative to it.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
PRISON = Caller("client", uuid.uuid4(), "MDI", "prison", frozenset())
PERSON = "p" * 64
SMS_SCOPE = "substance_misuse_service"


@dataclass(frozen=True)
class Organisation:
    id: uuid.UUID
    code: str


N07 = Organisation(uuid.uuid4(), "N07")
SMS = Organisation(uuid.uuid4(), "SMS-LEEDS")
ROUTED = ((N07, "probation_provider"), (SMS, "substance_misuse_service"))


def ids():
    counter = itertools.count(1)
    return lambda: uuid.UUID(int=next(counter))


def planned(body: dict, read: Read, notice_id: uuid.UUID | None = None):
    notice = ReleaseNotice.model_validate(body)
    return plan_notice(
        notice,
        notice.model_dump(mode="json", exclude_unset=True),
        read,
        caller=PRISON,
        policy=POLICY,
        now=NOW,
        person_ref=PERSON,
        sealed=Sealed("key", b"sealed"),
        body_sha256="0" * 64,
        notice_id=notice_id or uuid.uuid4(),
        new_id=ids(),
    )


def example(**changes) -> dict:
    body = copy.deepcopy(examples.release_notice(NOW.date()))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = body
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return body


def record(scope=SMS_SCOPE, decision="given", days_ago=30, **more) -> Record:
    return Record(
        uuid.uuid4(), scope, decision, NOW - timedelta(days=days_ago), "Healthcare", **more
    )


@pytest.mark.parametrize(
    ("body", "recipients", "status", "actions", "signed"),
    [
        (
            example(),
            ROUTED,
            ACCEPTED,
            ["notice.received", "consent.recorded", "consent.recorded"],
            ["N07", "SMS-LEEDS"],
        ),
        (example(consent=[]), ROUTED, ACCEPTED, ["notice.received"], ["N07"]),  # no consent
        (
            example(release__reason="transferred", consent=[]),
            (),
            NOT_ROUTED,
            ["notice.received", "notice.not_routed"],
            [],
        ),
    ],
    ids=["consents carried", "no consent", "not a release"],
)
def test_a_first_version_is_one_row_each_and_a_message_per_recipient_allowed(
    body, recipients, status, actions, signed
):
    notice_id = uuid.uuid4()
    plan = planned(body, Read(recipients=recipients, records=()), notice_id)
    assert plan.notice["status"] == status
    assert plan.notice["id"] == plan.notice["series_id"] == notice_id
    # kept in clear for deadlines and reports, whether the notice is sent to anyone or not
    assert plan.notice["release_date"] == date.fromisoformat(body["release"]["release_date"])
    assert (plan.notice["version"], plan.notice["supersedes_id"]) == (1, None)
    assert [e.action for e in plan.entries] == actions
    assert {e.person_ref for e in (*plan.entries, *plan.decided)} == {PERSON}
    assert len(plan.disclosures) == len(plan.decided) == len(recipients)
    assert [s.organisation.code for s in plan.to_sign] == signed
    assert len(plan.consents) == len(plan.carriers) == len(body["consent"])
    assert [m for *_, m in plan.sent if m] == [s.message_id for s in plan.to_sign]
    assert {s.disclosure_id for s in plan.to_sign} <= {d["id"] for d in plan.disclosures}
    assert plan.withdrawals == plan.voided == ()


def test_a_consent_the_notice_carries_again_makes_no_new_record():
    body = example()
    given_ = body["consent"][0]
    known = Record(
        uuid.uuid4(),
        given_["scope"],
        given_["decision"],
        datetime.fromisoformat(given_["recorded_at"]),
        given_["recorded_by"],
    )
    plan = planned(body, Read(recipients=ROUTED, records=(known,)))
    assert len(plan.consents) == len(body["consent"]) - 1
    assert known.id in {c["consent_id"] for c in plan.carriers}


def test_refusing_a_consent_once_given_withdraws_it_and_the_recipient_gets_less():
    body = example()
    earlier = body["consent"][0]
    refusal = {**earlier, "decision": "refused", "recorded_at": NOW.isoformat()}
    body["consent"] = [refusal]
    given_before = record(days_ago=40)
    plan = planned(body, Read(recipients=ROUTED, records=(given_before,)))
    assert plan.withdrawals == (SMS_SCOPE,)
    assert plan.standing.get(SMS_SCOPE) is not True


def test_a_refusal_never_given_before_withdraws_nothing():
    body = example()
    body["consent"] = [{**body["consent"][0], "decision": "refused"}]
    plan = planned(body, Read(recipients=ROUTED, records=()))
    assert plan.withdrawals == ()


def test_an_amendment_supersedes_what_each_recipient_holds_and_voids_what_it_dropped():
    previous, older = uuid.uuid4(), uuid.uuid4()
    dropped = record(notice_id=previous)
    held = {N07.id: uuid.uuid4(), SMS.id: uuid.uuid4()}
    read = Read(
        recipients=ROUTED,
        records=(dropped,),
        earlier=Earlier(previous, older, 2, frozenset({previous, older})),
        carriers=(Carrier(dropped.id, previous, in_force=False),),
        held=held,
    )
    moved = (NOW + timedelta(days=3)).date()  # the release moved: the new version says when
    plan = planned(example(consent=[], release__release_date=moved.isoformat()), read)
    assert (plan.notice["series_id"], plan.notice["version"]) == (older, 3)
    assert plan.notice["release_date"] == moved
    assert plan.notice["supersedes_id"] == previous
    assert plan.entries[0].action == "notice.amended"
    assert plan.voided == (dropped.id,)
    assert plan.withdrawals == (SMS_SCOPE,)
    assert {s.organisation.id: s.supersedes for s in plan.to_sign} == {N07.id: held[N07.id]}


records = st.builds(
    record,
    scope=st.sampled_from([SMS_SCOPE, "probation_clinical_details"]),
    decision=st.sampled_from(["given", "refused"]),
    days_ago=st.integers(1, 5),
    notice_id=st.one_of(st.none(), st.just(uuid.UUID(int=7)), st.just(uuid.UUID(int=8))),
    voided_at=st.one_of(st.none(), st.just(NOW - timedelta(days=1))),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=6), st.lists(records, max_size=4))
def test_carrying_links_each_decision_once_and_makes_a_record_only_when_none_stands(known, carried):
    notice_id = uuid.uuid4()
    made, carriers = carry(known, carried, notice_id=notice_id, now=NOW)
    decisions = {(r.scope, r.decision, r.recorded_at, r.recorded_by) for r in carried}
    standing = {
        (r.scope, r.decision, r.recorded_at, r.recorded_by) for r in known if r.voided_at is None
    }
    assert len(made) == len(decisions - standing)
    assert all(r.notice_id == notice_id for r in made)
    linked = [c for c, _ in carriers]
    assert len(linked) == len(set(linked))  # never two carriers of one record
    assert {(r.scope, r.decision, r.recorded_at, r.recorded_by) for _, r in carriers} == decisions


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=6), st.data())
def test_only_records_made_from_notices_that_nothing_in_force_carries_are_voided(known, data):
    replaced = frozenset({uuid.UUID(int=7)})
    carriers = [
        Carrier(r.id, data.draw(st.sampled_from([uuid.UUID(int=7), uuid.UUID(int=9)])), in_force)
        for r in known
        for in_force in data.draw(st.lists(st.booleans(), max_size=2))
    ]
    still = frozenset(r.id for r in known if data.draw(st.booleans()))
    voided = unsupported(known, carriers, replaced=replaced, still=still)
    for r in voided:
        assert r.notice_id is not None and r.voided_at is None and r.id not in still
        assert any(c.consent_id == r.id and c.notice_id in replaced for c in carriers)
        assert not any(
            c.consent_id == r.id and c.in_force and c.notice_id not in replaced for c in carriers
        )
    # and voiding them leaves the standing of what stays
    after = [replace(r, voided_at=NOW) if r in voided else r for r in known]
    assert standing_of(after, NOW) == standing_of([r for r in known if r not in voided], NOW)
