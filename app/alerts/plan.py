"""What the overdue scan does with the deadlines that have passed, decided without a database.

Each deadline passed is looked at once, with what the messages and acknowledgements say of it
now (read by app/alerts/facts.py): one that no longer stands (its message, or for engagement and
an at_risk the service's hold on the release: superseded, cancelled, withdrawn, revoked, purged)
is stopped; one an acknowledgement met after all (on another message of the release) is met;
the rest are alerted: a signed event to each who can act, and a log entry. An engagement
deadline of an amended release whose day was told already is marked alerted and tells nobody
again. Who is told:

- `receipt.overdue`: the recipient that owes the acknowledgement, and the prison that posted
  the notice;
- `engagement.overdue`: the substance misuse service, and the probation provider on the same
  release, if it holds a disclosure of it that stands;
- `engagement.at_risk` (a missed appointment, no booking or attendance since): the probation
  provider on the release, as above.

An event carries ids, codes and days only: the deadline, who owes it, the message it concerns,
and for an at_risk the missed appointment's day. Pure: no SQL, no web, no clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.audit.entry import Entry
from app.deadlines.rules import AT_RISK, ENGAGEMENT, RECEIPT
from app.messages.kinds import ENGAGEMENT_AT_RISK, ENGAGEMENT_OVERDUE, RECEIPT_OVERDUE
from app.messages.to_sign import ToSign
from app.messages.webhook import EVENT_TYPES

EVENT = {RECEIPT: RECEIPT_OVERDUE, ENGAGEMENT: ENGAGEMENT_OVERDUE, AT_RISK: ENGAGEMENT_AT_RISK}


@dataclass(frozen=True)
class Due:
    """A deadline that has passed, neither met, stopped nor alerted, with the facts of it."""

    id: uuid.UUID
    kind: str
    message_id: uuid.UUID  # the disclosure it concerns
    notice_id: uuid.UUID
    series_id: uuid.UUID
    owner: Any  # the organisation that owes it: id, code, kind
    due_on: date
    stopped: str | None  # why its message no longer stands; None while it does
    met: bool  # an acknowledgement meets it after all
    prison: Any  # the organisation that posted the notice
    probation: Any | None  # the probation provider holding a disclosure of it that stands
    person_ref: str | None = None
    missed_on: date | None = None  # an at_risk's missed appointment
    told_before: bool = False  # engagement: its release and day were told already (amended)


@dataclass(frozen=True)
class Alerts:
    alerted: tuple[uuid.UUID, ...]
    met: tuple[uuid.UUID, ...]
    stopped: tuple[tuple[uuid.UUID, str], ...]  # (deadline, why)
    to_sign: tuple[ToSign, ...]
    entries: tuple[Entry, ...]


def told(due: Due) -> list[Any]:
    """Who is told of a deadline passed: see the module."""
    if due.kind == RECEIPT:
        return [due.owner, due.prison]
    if due.kind == ENGAGEMENT:
        return [due.owner, *([due.probation] if due.probation else [])]
    return [due.probation] if due.probation else []


def claims(due: Due) -> dict[str, Any]:
    """What an event says: the deadline, who owes it, the message it concerns."""
    said: dict[str, Any] = {
        "deadline": {
            "id": str(due.id),
            "kind": due.kind,
            "due_on": due.due_on.isoformat(),
            "owed_by": due.owner.code,
        },
        "concerning": str(due.message_id),
        "series_id": str(due.series_id),
    }
    if due.missed_on is not None:
        said["missed_appointment_date"] = due.missed_on.isoformat()
    return said


def plan_alerts(
    due: Iterable[Due], *, now: datetime, new_id: Callable[[], uuid.UUID] = uuid.uuid4
) -> Alerts:
    """Each deadline stopped, met, or alerted to those it tells (see the module)."""
    alerted, met, stopped, to_sign, entries = [], [], [], [], []
    for d in due:
        if d.stopped is not None:
            stopped.append((d.id, d.stopped))
            entries.append(_entry(d, "deadline.stopped", now, reason=d.stopped))
            continue
        if d.met:
            met.append(d.id)
            continue
        alerted.append(d.id)
        events = [
            ToSign(EVENT[d.kind], new_id(), organisation, claims(d), notice_id=d.notice_id)
            for organisation in ([] if d.told_before else told(d))
        ]
        to_sign += events
        entries.append(
            _entry(
                d,
                "deadline.overdue",
                now,
                event=EVENT_TYPES[EVENT[d.kind]],
                told=[e.organisation.code for e in events],
                messages=[str(e.message_id) for e in events],
                **({"told_before": True} if d.told_before else {}),
            )
        )
    return Alerts(tuple(alerted), tuple(met), tuple(stopped), tuple(to_sign), tuple(entries))


def _entry(due: Due, action: str, now: datetime, **details: Any) -> Entry:
    return Entry(
        action,
        at=now,
        notice_id=due.notice_id,
        message_id=due.message_id,
        subject_organisation_id=due.owner.id,
        person_ref=due.person_ref,
        details={
            "deadline_id": str(due.id),
            "kind": due.kind,
            "due_on": due.due_on.isoformat(),
            **details,
        },
    )
