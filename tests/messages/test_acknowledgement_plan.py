"""The planner of an acknowledgement (app/messages/acknowledgement_plan.py), without a database:
which are refused, and with which problem first, the row and its log entry, and the rules of an
appointment's day, table-driven, and with hypothesis over every message state, status, note,
appointment and release day, and instant."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.access.identity import Caller
from app.messages.acknowledgement_plan import (
    Acknowledged,
    appointment_problem,
    plan_acknowledgement,
    today_in_england_and_wales,
)
from app.messages.kinds import CANCELLATION, CONSENT_WITHDRAWN, DISCLOSURE
from app.wire.errors import Problem

# The suite's wall clock (moved by --today), to the hour: every date below is relative to it.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
TODAY = NOW.astimezone(ZoneInfo("Europe/London")).date()  # today in England and Wales
RELEASED = TODAY - timedelta(days=7)  # the release of the messages below, unless said otherwise
N07 = Caller("client-n07", uuid.uuid4(), "N07", "probation_provider", frozenset())
STATUSES = ["received", "accepted", "appointment_booked", "attended", "did_not_attend", "declined"]
DATED = {"appointment_booked", "attended", "did_not_attend"}


def message(
    kind=DISCLOSURE, *, revoked=False, withdrawn=False, purged=False, release_date=RELEASED
) -> Acknowledged:
    return Acknowledged(
        id=uuid.uuid4(),
        kind=kind,
        notice_id=uuid.uuid4(),
        recipient_id=N07.organisation_id,
        revoked=revoked,
        withdrawn=withdrawn,
        purged=purged,
        person_ref="p" * 64,
        release_date=release_date,
    )


def planned(read: Acknowledged, status="received", with_note=False, day=None, now=NOW):
    """Planned at `now`; `day` is the appointment's, given as days after TODAY (None: none)."""
    return plan_acknowledgement(
        read,
        status=status,
        appointment_date=None if day is None else TODAY + timedelta(days=day),
        with_note=with_note,
        caller=N07,
        now=now,
        new_id=lambda: ACK_ID,
    )


ACK_ID = uuid.UUID(int=1)


@pytest.mark.parametrize(
    ("read", "status", "with_note", "day", "problem"),
    [
        (message(revoked=True), "received", False, None, (409, None, "revoked before delivery")),
        (message(withdrawn=True), "accepted", True, 0, (409, None, "withdrawn with its consent")),
        (message(revoked=True, purged=True), "attended", True, None, (409, None, "revoked")),
        (message(CANCELLATION), "accepted", False, None, (422, "/status", "a cancellation")),
        (message(CONSENT_WITHDRAWN), "attended", True, 0, (422, "/status", "consent_withdrawn")),
        (message(purged=True), "received", True, None, (422, "/note", "purged")),
        (message(CANCELLATION, purged=True), "declined", True, None, (422, "/status", "received")),
        (message(), "attended", False, None, (422, "/appointment_date", "required with attended")),
        (message(), "received", False, 0, (422, "/appointment_date", "not received")),
        (message(purged=True), "attended", True, 1, (422, "/appointment_date", "after today")),
        (message(purged=True), "attended", True, 0, (422, "/note", "purged")),
    ],
    ids=[
        "revoked",
        "withdrawn",
        "revoked comes first",
        "a cancellation accepted",
        "a consent withdrawal attended",
        "a note on a purged message",
        "the status comes before the note",
        "attended with no day",
        "received with a day",
        "the day comes before the note",
        "a note on a purged message attended today",
    ],
)
def test_what_cannot_be_acknowledged_is_refused_with_the_first_problem(
    read, status, with_note, day, problem
):
    code, pointer, words = problem
    with pytest.raises(Problem) as refused:
        planned(read, status, with_note, day)
    assert refused.value.status == code and words in refused.value.detail
    pointers = [e["pointer"] for e in refused.value.extra.get("errors", [])]
    assert pointers == ([pointer] if pointer else [])


@pytest.mark.parametrize(
    ("read", "status", "with_note", "day"),
    [
        (message(), "accepted", True, None),
        (message(CANCELLATION), "received", False, None),
        (message(purged=True), "did_not_attend", False, -2),
        (message(), "appointment_booked", True, 12),
    ],
    ids=[
        "a disclosure accepted, with a note",
        "a cancellation received",
        "purged, no note, missed two days ago",
        "booked for later, with a note",
    ],
)
def test_an_acknowledgement_is_one_row_and_one_entry_without_the_note(read, status, with_note, day):
    plan = planned(read, status, with_note, day)
    appointment = None if day is None else TODAY + timedelta(days=day)
    assert plan.row == {
        "id": ACK_ID,
        "message_id": read.id,
        "organisation_id": N07.organisation_id,
        "client_id": N07.client_id,
        "status": status,
        "appointment_date": appointment,
        "note_sealed": None,
        "note_key_id": None,
        "recorded_at": NOW,
        "late": False,
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
        "appointment_date": appointment.isoformat() if appointment else None,  # a day, no value
        "message_kind": read.kind,
        "with_note": with_note,
        "met": [],
        "late": [],
    }


# --- an appointment's day ----------------------------------------------------------------------

# (status, the day given, the release day; each as days after today, None for none or unknown)
ALLOWED = {
    "received, no day": ("received", None, -7),
    "accepted, no day": ("accepted", None, 9),
    "declined, no day, release unknown": ("declined", None, None),
    "booked ahead, before a release to come": ("appointment_booked", 30, 9),
    "booked on the day of release": ("appointment_booked", 9, 9),
    "booked, recorded after the day": ("appointment_booked", -3, -7),
    "attended today": ("attended", 0, -7),
    "attended on the day of release": ("attended", -7, -7),
    "missed today, released today": ("did_not_attend", 0, 0),
    "missed long ago, release unknown": ("did_not_attend", -400, None),
    "booked long after": ("appointment_booked", 365, -7),
}
REFUSED = {
    "received with a day": ("received", 0, -7, "given only with appointment_booked, attended"),
    "accepted with a day": ("accepted", 2, -7, "not accepted"),
    "declined with a day": ("declined", -7, -7, "not declined"),
    "booked with no day": ("appointment_booked", None, -7, "required with appointment_booked"),
    "attended with no day": ("attended", None, None, "required with attended"),
    "missed with no day": ("did_not_attend", None, 9, "required with did_not_attend"),
    "booked the day before release": ("appointment_booked", 8, 9, "before the release date"),
    "booked before a past release": ("appointment_booked", -8, -7, "before the release date"),
    "attended tomorrow": ("attended", 1, -7, "after today"),
    "missed next month": ("did_not_attend", 30, -7, "after today"),
    "attended tomorrow, release unknown": ("attended", 1, None, "after today"),
    "attended before release": ("attended", -8, -7, "before the release date"),
    "attended today, released later": ("attended", 0, 9, "before the release date"),
    "attended tomorrow, released later": ("attended", 1, 9, "after today"),  # the first problem
}


def day(offset: int | None) -> date | None:
    return None if offset is None else TODAY + timedelta(days=offset)


@pytest.mark.parametrize(("status", "given", "released"), ALLOWED.values(), ids=ALLOWED)
def test_an_appointment_day_that_holds_is_recorded(status, given, released):
    assert appointment_problem(status, day(given), release_date=day(released), today=TODAY) is None
    plan = planned(message(release_date=day(released)), status, day=given)
    assert plan.row["appointment_date"] == day(given)


@pytest.mark.parametrize(("status", "given", "released", "words"), REFUSED.values(), ids=REFUSED)
def test_an_appointment_day_that_does_not_hold_is_a_422_naming_the_field(
    status, given, released, words
):
    with pytest.raises(Problem) as refused:
        planned(message(release_date=day(released)), status, day=given)
    assert refused.value.status == 422
    [error] = refused.value.extra["errors"]
    assert error["pointer"] == "/appointment_date" and words in error["detail"]
    if "release" in words:  # the recipient was sent the release date: the problem says it
        assert day(released).isoformat() in error["detail"]


# 23:30 UTC is the next day in London in summer (BST), the same day in winter (GMT).
SUMMER = datetime(NOW.year, 7, 1, 23, 30, tzinfo=UTC)
WINTER = datetime(NOW.year, 1, 15, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "today"),
    [
        (SUMMER, date(NOW.year, 7, 2)),
        (WINTER, date(NOW.year, 1, 15)),
        (SUMMER.replace(hour=22, minute=59), date(NOW.year, 7, 1)),
        (WINTER.astimezone(ZoneInfo("Pacific/Auckland")), date(NOW.year, 1, 15)),
    ],
    ids=["late evening in summer", "late evening in winter", "before midnight BST", "from NZ"],
)
def test_today_is_the_day_in_england_and_wales(now, today):
    assert today_in_england_and_wales(now) == today
    read = message(release_date=today - timedelta(days=1))
    attended_today = plan_acknowledgement(
        read, status="attended", appointment_date=today, with_note=False, caller=N07, now=now
    )
    assert attended_today.entry.details["appointment_date"] == today.isoformat()
    with pytest.raises(Problem, match="after today"):
        plan_acknowledgement(
            read,
            status="attended",
            appointment_date=today + timedelta(days=1),
            with_note=False,
            caller=N07,
            now=now,
        )


# --- every state, status, note and day, with hypothesis -----------------------------------------

offsets = st.one_of(st.none(), st.integers(-60, 60))


@given(
    st.builds(
        message,
        st.sampled_from([DISCLOSURE, CANCELLATION, CONSENT_WITHDRAWN]),
        revoked=st.booleans(),
        withdrawn=st.booleans(),
        purged=st.booleans(),
        release_date=offsets.map(day),
    ),
    st.sampled_from(STATUSES),
    st.booleans(),
    offsets,
)
def test_an_acknowledgement_is_recorded_exactly_when_the_rules_allow_it(
    read, status, with_note, given
):
    """A message never sent or withdrawn has nothing to acknowledge; only a disclosure is more
    than received; an appointment's status needs its day and no other takes one, never before
    the release (when known), and never after today if it happened or was missed; a purged
    message takes no note. Otherwise one row, its entry naming it and the day."""
    appointment = day(given)
    day_wrong = (
        (status in DATED) != (appointment is not None)
        or (status in ("attended", "did_not_attend") and appointment > TODAY)
        or bool(appointment and read.release_date and appointment < read.release_date)
    )
    if read.revoked or read.withdrawn:
        expected = (409, None)
    elif status != "received" and read.kind != DISCLOSURE:
        expected = (422, "/status")
    elif day_wrong:
        expected = (422, "/appointment_date")
    elif with_note and read.purged:
        expected = (422, "/note")
    else:
        expected = None
    try:
        plan = planned(read, status, with_note, given)
    except Problem as refused:
        errors = refused.extra.get("errors", [{"pointer": None}])
        assert (refused.status, errors[0]["pointer"]) == expected
        return
    assert expected is None
    assert plan.entry.details["acknowledgement_id"] == str(plan.row["id"])
    assert (plan.row["message_id"], plan.row["status"]) == (read.id, status)
    assert plan.row["appointment_date"] == appointment
    assert plan.entry.details["appointment_date"] == (appointment and appointment.isoformat())


@given(st.datetimes(datetime(1970, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_the_day_of_england_and_wales_is_never_the_future_and_the_next_one_is(instant):
    """Whatever the instant, an appointment attended on that day in London is not in the future,
    and one on the day after is, whatever the day in UTC."""
    today = instant.astimezone(ZoneInfo("Europe/London")).date()
    assert appointment_problem("attended", today, release_date=None, today=today) is None
    assert today_in_england_and_wales(instant) == today
    read = message(release_date=None)
    plan = plan_acknowledgement(
        read,
        status="did_not_attend",
        appointment_date=today,
        with_note=False,
        caller=N07,
        now=instant,
    )
    assert plan.row["appointment_date"] == today
    with pytest.raises(Problem, match="after today"):
        plan_acknowledgement(
            read,
            status="did_not_attend",
            appointment_date=today + timedelta(days=1),
            with_note=False,
            caller=N07,
            now=instant,
        )
