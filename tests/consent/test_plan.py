"""The planner of a consent record recorded or withdrawn through the API (app/consent/plan.py),
without a database: which withdrawals are refused and how, the row stored, its log entry and the
consent that stands after, table-driven, and with hypothesis over histories of records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.access.identity import Caller
from app.consent.plan import recorded, standing_of, withdrawn
from app.wire.errors import Problem
from tests.helpers.policies import CLINICAL, SMS

# The suite's wall clock (moved by --today), to the hour: every date below is relative to it.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
PERSON = "p" * 64
SERVICE = Caller("client", uuid.uuid4(), "SMS-LEEDS", "substance_misuse_service", frozenset())


def row(scope=SMS, decision="given", days_ago=10, **more) -> dict:
    """A consent record as read: every column."""
    return {
        "id": uuid.uuid4(),
        "person_ref": PERSON,
        "scope": scope,
        "decision": decision,
        "recorded_at": NOW - timedelta(days=days_ago),
        "recorded_by": "Healthcare",
        "expires_at": None,
        "organisation_id": uuid.uuid4(),
        "notice_id": None,
        "created_at": NOW - timedelta(days=days_ago),
        "withdrawn_at": None,
        "voided_at": None,
        "withdrawn_by_organisation_id": None,
        **more,
    }


def withdrawing(records, consent_id):
    return withdrawn(records, consent_id, person_ref=PERSON, caller=SERVICE, now=NOW)


@pytest.mark.parametrize(
    ("record", "status", "title"),
    [
        (row(decision="refused"), 409, "Not a consent"),
        (row(withdrawn_at=NOW - timedelta(days=1)), 409, "Already withdrawn"),
        (row(voided_at=NOW - timedelta(days=1)), 409, "Already withdrawn"),
        (row(decision="refused", withdrawn_at=NOW), 409, "Not a consent"),
        (None, 404, "Not found"),
    ],
    ids=["a refusal", "withdrawn already", "voided", "a refusal, withdrawn", "not the person's"],
)
def test_a_withdrawal_that_cannot_be_made_is_refused(record, status, title):
    records = [row(), *([record] if record else [])]
    with pytest.raises(Problem) as refused:
        withdrawing(records, record["id"] if record else uuid.uuid4())
    assert (refused.value.status, refused.value.title) == (status, title)


def test_a_withdrawal_stamps_the_record_logs_it_and_the_consent_stops_standing():
    given_, other = row(), row(CLINICAL)
    change = withdrawing([given_, other], given_["id"])
    assert change.row == {
        **given_,
        "withdrawn_at": NOW,
        "withdrawn_by_organisation_id": SERVICE.organisation_id,
    }
    assert given_["withdrawn_at"] is None  # what was read is left as it was
    assert change.entry.action == "consent.withdrawn"
    assert (change.entry.person_ref, change.entry.notice_id) == (PERSON, None)
    assert change.entry.actor_organisation_id == SERVICE.organisation_id
    assert change.entry.actor_client_id == SERVICE.client_id
    assert change.entry.details == {
        "consent_id": str(given_["id"]),
        "person_ref": PERSON,
        "scope": SMS,
    }
    assert change.standing == {SMS: False, CLINICAL: True}


@pytest.mark.parametrize(
    ("decision", "expires_in", "stands"),
    [("given", None, True), ("given", timedelta(days=30), True), ("refused", None, False)],
    ids=["given", "given until a date", "refused"],
)
def test_a_decision_recorded_is_one_row_and_one_entry(decision, expires_in, stands):
    expires_at = NOW + expires_in if expires_in else None
    change = recorded(
        [row(decision="refused" if decision == "given" else "given", days_ago=20)],
        scope=SMS,
        decision=decision,
        recorded_at=NOW - timedelta(hours=1),
        recorded_by="Keyworker",
        expires_at=expires_at,
        person_ref=PERSON,
        caller=SERVICE,
        now=NOW,
        new_id=lambda: uuid.UUID(int=1),
    )
    assert change.row["id"] == uuid.UUID(int=1)
    assert (change.row["decision"], change.row["expires_at"]) == (decision, expires_at)
    assert change.row["organisation_id"] == SERVICE.organisation_id
    assert change.row["notice_id"] is None and change.row["created_at"] == NOW
    assert change.row["withdrawn_at"] is change.row["voided_at"] is None
    assert change.entry.action == "consent.recorded" and change.entry.person_ref == PERSON
    assert change.entry.details == {
        "consent_id": str(uuid.UUID(int=1)),
        "person_ref": PERSON,
        "scope": SMS,
        "decision": decision,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }
    assert change.standing == {SMS: stands}


records = st.builds(
    row,
    scope=st.sampled_from([SMS, CLINICAL]),
    decision=st.sampled_from(["given", "refused"]),
    days_ago=st.integers(0, 5),
    withdrawn_at=st.one_of(st.none(), st.just(NOW - timedelta(days=1))),
    voided_at=st.one_of(st.none(), st.just(NOW - timedelta(days=2))),
    expires_at=st.one_of(st.none(), st.just(NOW + timedelta(days=1))),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(records, min_size=1, max_size=6), st.data())
def test_a_withdrawal_made_stops_its_scope_and_leaves_the_others(known, data):
    record = data.draw(st.sampled_from(known))
    before = standing_of(known, NOW)
    try:
        change = withdrawing(known, record["id"])
    except Problem as refused:
        standing_record = record["withdrawn_at"] is None and record["voided_at"] is None
        assert not (record["decision"] == "given" and standing_record)
        assert refused.status == 409
        return
    assert change.standing[record["scope"]] is False
    assert {s: v for s, v in change.standing.items() if s != record["scope"]} == {
        s: v for s, v in before.items() if s != record["scope"]
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=6), st.sampled_from([SMS, CLINICAL]))
def test_a_refusal_recorded_now_stops_its_scope_and_leaves_the_others(known, scope):
    change = recorded(
        known,
        scope=scope,
        decision="refused",
        recorded_at=NOW,
        recorded_by="Keyworker",
        expires_at=None,
        person_ref=PERSON,
        caller=SERVICE,
        now=NOW,
    )
    assert change.standing[scope] is False
    before = standing_of(known, NOW)
    assert {s: v for s, v in change.standing.items() if s != scope} == {
        s: v for s, v in before.items() if s != scope
    }
