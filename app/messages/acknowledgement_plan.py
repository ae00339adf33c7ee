"""What acknowledging a message does, decided without a database (pure): whether it may be
acknowledged so (a problem to raise if not), the acknowledgement's row and its log entry. The
note is sealed and the plan written by app/messages/acknowledgements.py.

An appointment's acknowledgement carries its day. Days are those of England and Wales: "today"
is the date in Europe/London at the moment of the request, and today itself is not the future.

It meets the recipient's deadlines it answers (app/deadlines): the message's receipt, whatever
the status; engagement, with an `attended` appointment dated within the window; an at_risk not
yet told, with a later booking or attendance. One recorded after a deadline it meets had passed
is late. A substance misuse service's `did_not_attend` raises an at_risk, due at once: the
probation provider on the release is told (app/alerts) unless a booking or attendance comes
first. A missed appointment already reported raises no second at_risk.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.access.identity import Caller
from app.audit.entry import Entry
from app.deadlines.calendar import today as today_in_england_and_wales
from app.deadlines.rules import (
    AT_RISK,
    BOOKED_OR_ATTENDED,
    ENGAGEMENT,
    RECEIPT,
    SUBSTANCE_MISUSE_SERVICE,
    attended_by,
)
from app.deadlines.rules import row as deadline_row
from app.messages.kinds import DISCLOSURE
from app.wire.errors import Problem, invalid

RECEIVED = "received"
DATED = ("appointment_booked", "attended", "did_not_attend")  # each carries the appointment's day
HAPPENED = ("attended", "did_not_attend")  # of an appointment whose day has come


@dataclass(frozen=True)
class Acknowledged:
    """The message acknowledged, as read (locked) with its notice."""

    id: uuid.UUID
    kind: str
    notice_id: uuid.UUID
    recipient_id: uuid.UUID
    revoked: bool
    withdrawn: bool
    purged: bool  # the message's data, or its notice's, was purged
    person_ref: str | None  # its notice's person
    release_date: date | None  # its notice's; None when it cannot be known (purged, unreadable)
    series_id: uuid.UUID | None = None  # its notice's series


@dataclass(frozen=True)
class Owed:
    """A deadline of the recipient's about the message or its release, neither met nor stopped
    (it may have been alerted already), as read."""

    id: uuid.UUID
    kind: str
    due_on: date  # for an at_risk, the missed appointment's day
    due_at: datetime
    met: bool = False  # an at_risk is read even once met: one missed appointment raises one
    release_date: date | None = None  # of the deadline's own notice version


@dataclass(frozen=True)
class Acknowledgement:
    row: dict[str, Any]  # without the note: the caller seals it into note_sealed, note_key_id
    entry: Entry
    met: tuple[uuid.UUID, ...] = ()  # the deadlines it meets
    at_risk: dict[str, Any] | None = None  # the at_risk deadline row it raises


def meets(owed: Owed, *, status: str, appointment_date: date | None) -> bool:
    """Whether an acknowledgement so meets that deadline: any meets a receipt; an attended
    appointment dated within the window (from the release date of the deadline's notice to
    the deadline's day) meets engagement; a later booking or attendance takes an at_risk back."""
    if owed.met:
        return False
    if owed.kind == RECEIPT:
        return True
    if owed.kind == ENGAGEMENT:
        return attended_by(
            status, appointment_date, due_on=owed.due_on, release_date=owed.release_date
        )
    return owed.kind == AT_RISK and status in BOOKED_OR_ATTENDED


def appointment_problem(
    status: str, appointment_date: date | None, *, release_date: date | None, today: date
) -> str | None:
    """What is wrong with the appointment's day given with this status, or None. Each status of
    an appointment needs its day, no other takes one; no appointment is before the release
    (unknown: not checked), and one attended or missed is not after today."""
    if status not in DATED:
        if appointment_date is None:
            return None
        return f"is given only with {', '.join(DATED[:-1])} or {DATED[-1]}, not {status}"
    if appointment_date is None:
        return f"is required with {status}: the appointment's day, YYYY-MM-DD"
    if status in HAPPENED and appointment_date > today:
        return f"is after today ({today.isoformat()} in England and Wales): it has not happened"
    if release_date is not None and appointment_date < release_date:
        return f"is before the release date, {release_date.isoformat()}"
    return None


def _refuse(
    message: Acknowledged,
    *,
    status: str,
    appointment_date: date | None,
    with_note: bool,
    now: datetime,
) -> None:
    """Raise the first problem, if any: a message revoked or withdrawn has nothing to
    acknowledge (409); only a disclosure may be more than `received`; an appointment's day must
    be given, and hold, with exactly the statuses of an appointment (appointment_problem); a
    purged message takes no note (422s, in that order)."""
    if message.revoked or message.withdrawn:
        why = "revoked before delivery" if message.revoked else "withdrawn with its consent"
        raise Problem(409, "Conflict", f"This message was {why}: there is nothing to acknowledge.")
    if status != RECEIVED and message.kind != DISCLOSURE:
        raise invalid(
            [{"pointer": "/status", "detail": f"a {message.kind} message may only be received"}]
        )
    today = today_in_england_and_wales(now)
    wrong = appointment_problem(
        status, appointment_date, release_date=message.release_date, today=today
    )
    if wrong is not None:
        raise invalid([{"pointer": "/appointment_date", "detail": wrong}])
    if with_note and message.purged:
        raise invalid(
            [{"pointer": "/note", "detail": "the message's data has been purged: give no note"}]
        )


def plan_acknowledgement(
    message: Acknowledged,
    *,
    status: str,
    appointment_date: date | None,
    with_note: bool,
    caller: Caller,
    now: datetime,
    owed: Sequence[Owed] = (),
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Acknowledgement:
    """One acknowledgement of the caller's own message (read as theirs already), or the first
    problem with it (_refuse); the deadlines of `owed` it meets, whether it is late, and the
    at_risk it raises."""
    _refuse(message, status=status, appointment_date=appointment_date, with_note=with_note, now=now)
    met = [o for o in owed if meets(o, status=status, appointment_date=appointment_date)]
    late = sorted({o.kind for o in met if o.kind != AT_RISK and o.due_at <= now})
    row = {
        "id": new_id(),
        "message_id": message.id,
        "organisation_id": caller.organisation_id,
        "client_id": caller.client_id,
        "status": status,
        "appointment_date": appointment_date,
        "note_sealed": None,
        "note_key_id": None,
        "recorded_at": now,
        "late": bool(late),
    }
    entry = Entry(
        "acknowledgement.recorded",
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        notice_id=message.notice_id,
        message_id=message.id,
        subject_organisation_id=message.recipient_id,
        person_ref=message.person_ref,
        details={
            "acknowledgement_id": str(row["id"]),
            "status": status,
            "appointment_date": appointment_date.isoformat() if appointment_date else None,
            "message_kind": message.kind,
            "with_note": with_note,
            "met": sorted({o.kind for o in met}),
            "late": late,
        },
    )
    at_risk = None
    raised = {o.due_on for o in owed if o.kind == AT_RISK}  # one missed appointment, one at_risk
    missed = status == "did_not_attend" and caller.kind == SUBSTANCE_MISUSE_SERVICE
    if missed and appointment_date is not None and appointment_date not in raised:
        at_risk = _at_risk(
            message,
            acknowledgement_id=row["id"],
            missed_on=appointment_date,
            now=now,
            new_id=new_id,
        )
    return Acknowledgement(row, entry, tuple(o.id for o in met), at_risk)


def _at_risk(
    message: Acknowledged,
    *,
    acknowledgement_id: uuid.UUID,
    missed_on: date,
    now: datetime,
    new_id: Callable[[], uuid.UUID],
) -> dict[str, Any]:
    """The at_risk a missed appointment raises: due now, owed by the service that missed it,
    its day the appointment's."""
    return deadline_row(
        AT_RISK,
        message_id=message.id,
        notice_id=message.notice_id,
        series_id=message.series_id,
        owner_id=message.recipient_id,
        due_on=missed_on,
        due_at=now,
        now=now,
        acknowledgement_id=acknowledgement_id,
        new_id=new_id,
    )
