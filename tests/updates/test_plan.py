"""The care update's planner, without a database: who may share, where it goes, and (property
tests over generated updates and consents) that no clinical field reaches probation without the
person's `treatment_to_probation` consent, while engagement and safeguarding always do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.access.identity import Caller
from app.keys.sealing import Sealed
from app.messages.kinds import CARE_UPDATE
from app.updates.document import EVENTS, EXIT_REASONS, CareUpdate
from app.updates.plan import Holder, Read, plan_update
from app.wire.errors import Problem
from tests.helpers.policies import POLICY

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
TODAY = NOW.date()
RELEASED = TODAY - timedelta(days=10)
CLINICAL = ("/assessment", "/clinical_note")
SCOPES = ("substance_misuse_service", "probation_clinical_details", "treatment_to_probation")


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    code: str
    kind: str


SMS = Org(uuid.uuid4(), "SMS-LEEDS", "substance_misuse_service")
N07 = Org(uuid.uuid4(), "N07", "probation_provider")
CALLER = Caller("cli_sms", SMS.id, SMS.code, SMS.kind, frozenset({"updates:write"}))


def read(**changes) -> Read:
    base = Read(
        notice_id=uuid.uuid4(),
        series_id=uuid.uuid4(),
        status="accepted",
        release_date=RELEASED,
        person_ref="p" * 64,
        closed_on=None,
        holders=(
            Holder(N07, N07.kind, uuid.uuid4(), stands=True),
            Holder(SMS, SMS.kind, uuid.uuid4(), stands=True),
        ),
        standing={},
    )
    return replace(base, **changes)


def plan(body: dict, found: Read, caller: Caller = CALLER):
    return plan_update(
        CareUpdate.model_validate(body, strict=False),
        body,
        found,
        caller=caller,
        about=uuid.uuid4(),
        policy=POLICY,
        today=TODAY,
        now=NOW,
        sealed=Sealed("k", b"sealed"),
        body_sha256="0" * 64,
        update_id=uuid.uuid4(),
    )


SAFE = {"children_contact": "no", "vulnerable_adults_contact": "unknown"}
BODY = {"engagement": [{"event": "assessed", "date": str(RELEASED)}], "safeguarding": SAFE}


def test_an_update_goes_to_the_other_recipient_only():
    planned = plan(BODY, read())
    assert [(o.code, role) for o, role, _ in planned.sent] == [("N07", "probation_provider")]
    [message] = planned.to_sign
    assert (message.kind, message.organisation) == (CARE_UPDATE, N07)
    assert [e.action for e in planned.entries] == ["care_update.received", "disclosure.decided"]
    assert all(e.person_ref == "p" * 64 for e in planned.entries)
    assert planned.disclosures[0]["care_update_id"] == planned.update["id"]


def test_one_that_holds_nothing_that_stands_is_sent_nothing():
    holders = (Holder(N07, N07.kind, uuid.uuid4(), stands=False), read().holders[1])
    planned = plan(BODY, read(holders=holders))
    assert [m for _, _, m in planned.sent] == [None] and planned.to_sign == ()


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"status": "cancelled"}, 409),
        ({"closed_on": RELEASED}, 409),
        ({"holders": (Holder(N07, N07.kind, uuid.uuid4(), stands=True),)}, 409),
        ({"holders": (Holder(SMS, SMS.kind, uuid.uuid4(), stands=False),)}, 409),
    ],
    ids=["cancelled", "recalled", "not on the plan", "withdrawn"],
)
def test_who_may_not_share(changes, status):
    with pytest.raises(Problem) as raised:
        plan(BODY, read(**changes))
    assert raised.value.status == status


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"engagement": BODY["engagement"]}, "/safeguarding"),
        ({**BODY, "recall": {"date": str(TODAY), "kind": "recalled"}}, "/recall"),
        ({"safeguarding": SAFE, "engagement": [{"event": "exited", "date": str(TODAY)}]}, None),
    ],
)
def test_what_a_service_may_not_say(body, pointer):
    with pytest.raises(Problem) as raised:
        plan(body, read())
    pointers = [e["pointer"] for e in raised.value.extra["errors"]]
    assert (pointer or "/engagement/0/exit_reason") in pointers


days = st.integers(0, 10).map(lambda n: RELEASED + timedelta(days=n))
events = st.builds(
    lambda event, day, reason: {
        "event": event,
        "date": str(day),
        **({"exit_reason": reason} if event == "exited" else {}),
    },
    st.sampled_from(EVENTS),
    days,
    st.sampled_from(EXIT_REASONS),
)
answers = st.sampled_from(["yes", "no", "unknown"])
updates = st.fixed_dictionaries(
    {
        "safeguarding": st.fixed_dictionaries(
            {"children_contact": answers, "vulnerable_adults_contact": answers}
        )
    },
    optional={
        "engagement": st.lists(events, max_size=4, unique_by=lambda e: (e["event"], e["date"])),
        "assessment": st.fixed_dictionaries(
            {},
            optional={
                "nps_use_identified": st.booleans(),
                "nps_categories": st.lists(
                    st.sampled_from(["synthetic_cannabinoid", "stimulant_type"]), unique=True
                ),
                "harm_reduction_advice_given": st.booleans(),
            },
        ),
        "clinical_note": st.text(alphabet="abc def", min_size=1, max_size=30),
    },
)
consents = st.fixed_dictionaries({}, optional={s: st.booleans() for s in SCOPES})


@settings(max_examples=200, deadline=None)
@given(body=updates, standing=consents)
def test_no_clinical_field_reaches_probation_without_consent(body, standing):
    planned = plan(body, read(standing=standing))
    [message] = planned.to_sign  # safeguarding is always there, so something is always sent
    sent = message.claims["disclosure"]
    withheld = {w["path"]: w["reason"] for w in message.claims["manifest"]}
    consented = standing.get("treatment_to_probation", False)
    for pointer in CLINICAL:
        member = pointer[1:]
        if member not in body:
            assert member not in sent and pointer not in withheld
        elif consented:
            assert sent[member] == body[member]
        else:
            assert member not in sent and withheld[pointer] == "consent_not_given"
    assert sent["safeguarding"] == body["safeguarding"]  # whatever the consent
    assert sent.get("engagement") == body.get("engagement")
    relied = set(planned.disclosures[0]["consents_relied"])
    clinical = set(body) & {"assessment", "clinical_note"}
    assert relied == ({"treatment_to_probation"} if consented and clinical else set())


@settings(max_examples=50, deadline=None)
@given(standing=consents)
def test_a_recall_and_the_risk_to_staff_reach_the_service_whatever_the_consent(standing):
    caller = Caller("cli_n07", N07.id, N07.code, N07.kind, frozenset({"updates:write"}))
    body = {
        "recall": {"date": str(TODAY), "kind": "returned_to_custody"},
        "risk_to_staff": {"level": "high"},
        "accommodation": {"status": "rough_sleeping"},
    }
    planned = plan(body, read(standing=standing), caller=caller)
    [message] = planned.to_sign
    assert message.organisation == SMS and planned.recall == TODAY
    sent = message.claims["disclosure"]
    assert sent["recall"] == body["recall"] and sent["risk_to_staff"] == body["risk_to_staff"]
    assert ("accommodation" in sent) == standing.get("substance_misuse_service", False)


def test_attended_days_are_recorded_once_and_not_again():
    body = {
        **BODY,
        "engagement": [
            {"event": "attended", "date": str(RELEASED)},
            {"event": "attended", "date": str(RELEASED + timedelta(days=1))},
        ],
    }
    found = read(attended=frozenset({RELEASED}))
    planned = plan(body, found)
    assert planned.attended == (RELEASED + timedelta(days=1),)
    assert planned.acknowledged == found.holders[1].message_id  # the service's own disclosure


def test_dates_are_checked_against_the_release_and_today():
    body = {
        **BODY,
        "engagement": [
            {"event": "assessed", "date": str(RELEASED - timedelta(days=1))},
            {"event": "attended", "date": str(TODAY + timedelta(days=1))},
        ],
    }
    with pytest.raises(Problem) as raised:
        plan(body, read())
    details = {e["pointer"]: e["detail"] for e in raised.value.extra["errors"]}
    assert details["/engagement/0/date"].startswith("is before the release")
    assert details["/engagement/1/date"].startswith("is after today")
