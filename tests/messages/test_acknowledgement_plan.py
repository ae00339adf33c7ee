"""The planner of an acknowledgement (app/messages/acknowledgement_plan.py), without a database:
which are refused, and with which problem first, the row and its log entry, table-driven, and
with hypothesis over every message state, status and note."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.access.identity import Caller
from app.messages.acknowledgement_plan import Acknowledged, plan_acknowledgement
from app.messages.kinds import CANCELLATION, CONSENT_WITHDRAWN, DISCLOSURE
from app.wire.errors import Problem

# The suite's wall clock (moved by --today), to the hour: every date below is relative to it.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
N07 = Caller("client-n07", uuid.uuid4(), "N07", "probation_provider", frozenset())
STATUSES = ["received", "accepted", "appointment_booked", "attended", "did_not_attend", "declined"]


def message(kind=DISCLOSURE, *, revoked=False, withdrawn=False, purged=False) -> Acknowledged:
    return Acknowledged(
        id=uuid.uuid4(),
        kind=kind,
        notice_id=uuid.uuid4(),
        recipient_id=N07.organisation_id,
        revoked=revoked,
        withdrawn=withdrawn,
        purged=purged,
        person_ref="p" * 64,
    )


def planned(read: Acknowledged, status="received", with_note=False):
    return plan_acknowledgement(
        read, status=status, with_note=with_note, caller=N07, now=NOW, new_id=lambda: ACK_ID
    )


ACK_ID = uuid.UUID(int=1)


@pytest.mark.parametrize(
    ("read", "status", "with_note", "problem"),
    [
        (message(revoked=True), "received", False, (409, None, "revoked before delivery")),
        (message(withdrawn=True), "accepted", True, (409, None, "withdrawn with its consent")),
        (message(revoked=True, purged=True), "declined", True, (409, None, "revoked")),
        (message(CANCELLATION), "accepted", False, (422, "/status", "a cancellation message")),
        (message(CONSENT_WITHDRAWN), "attended", True, (422, "/status", "consent_withdrawn")),
        (message(purged=True), "received", True, (422, "/note", "purged")),
        (message(CANCELLATION, purged=True), "declined", True, (422, "/status", "received")),
    ],
    ids=[
        "revoked",
        "withdrawn",
        "revoked comes first",
        "a cancellation accepted",
        "a consent withdrawal attended",
        "a note on a purged message",
        "the status comes before the note",
    ],
)
def test_what_cannot_be_acknowledged_is_refused_with_the_first_problem(
    read, status, with_note, problem
):
    code, pointer, words = problem
    with pytest.raises(Problem) as refused:
        planned(read, status, with_note)
    assert refused.value.status == code and words in refused.value.detail
    pointers = [e["pointer"] for e in refused.value.extra.get("errors", [])]
    assert pointers == ([pointer] if pointer else [])


@pytest.mark.parametrize(
    ("read", "status", "with_note"),
    [
        (message(), "accepted", True),
        (message(CANCELLATION), "received", False),
        (message(purged=True), "did_not_attend", False),
    ],
    ids=["a disclosure accepted, with a note", "a cancellation received", "purged, no note"],
)
def test_an_acknowledgement_is_one_row_and_one_entry_without_the_note(read, status, with_note):
    plan = planned(read, status, with_note)
    assert plan.row == {
        "id": ACK_ID,
        "message_id": read.id,
        "organisation_id": N07.organisation_id,
        "client_id": N07.client_id,
        "status": status,
        "note_sealed": None,
        "note_key_id": None,
        "recorded_at": NOW,
    }
    entry = plan.entry
    assert (entry.action, entry.at, entry.person_ref) == ("acknowledgement.recorded", NOW, "p" * 64)
    assert (entry.actor_organisation_id, entry.actor_client_id) == (
        N07.organisation_id,
        "client-n07",
    )
    assert (entry.notice_id, entry.message_id) == (read.notice_id, read.id)
    assert entry.subject_organisation_id == read.recipient_id
    assert entry.details == {
        "acknowledgement_id": str(ACK_ID),
        "status": status,
        "message_kind": read.kind,
        "with_note": with_note,
    }


@given(
    st.builds(
        message,
        st.sampled_from([DISCLOSURE, CANCELLATION, CONSENT_WITHDRAWN]),
        revoked=st.booleans(),
        withdrawn=st.booleans(),
        purged=st.booleans(),
    ),
    st.sampled_from(STATUSES),
    st.booleans(),
)
def test_an_acknowledgement_is_recorded_exactly_when_the_rules_allow_it(read, status, with_note):
    """A message never sent or withdrawn has nothing to acknowledge; only a disclosure is more
    than received; a purged message takes no note. Otherwise one row, its entry naming it."""
    if read.revoked or read.withdrawn:
        expected = (409, None)
    elif status != "received" and read.kind != DISCLOSURE:
        expected = (422, "/status")
    elif with_note and read.purged:
        expected = (422, "/note")
    else:
        expected = None
    try:
        plan = planned(read, status, with_note)
    except Problem as refused:
        errors = refused.extra.get("errors", [{"pointer": None}])
        assert (refused.status, errors[0]["pointer"]) == expected
        return
    assert expected is None
    assert plan.entry.details["acknowledgement_id"] == str(plan.row["id"])
    assert (plan.row["message_id"], plan.row["status"]) == (read.id, status)
