"""What acknowledging a message does, decided without a database (pure): whether it may be
acknowledged so (a problem to raise if not), the acknowledgement's row and its log entry. The
note is sealed and the plan written by app/messages/acknowledgements.py.

An appointment's acknowledgement carries its day. Days are those of England and Wales: "today"
is the date in Europe/London at the moment of the request, and today itself is not the future.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.access.identity import Caller
from app.audit.entry import Entry
from app.deadlines.calendar import today as today_in_england_and_wales
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


@dataclass(frozen=True)
class Acknowledgement:
    row: dict[str, Any]  # without the note: the caller seals it into note_sealed, note_key_id
    entry: Entry


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
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Acknowledgement:
    """One acknowledgement of the caller's own message (read as theirs already), or the first
    problem with it (_refuse)."""
    _refuse(message, status=status, appointment_date=appointment_date, with_note=with_note, now=now)
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
        },
    )
    return Acknowledgement(row, entry)
