"""What sharing a care update does, decided without a database (pure).

plan_update takes what app/updates/sharing.py read (the release's version in force, what the
author and the release's other recipients hold of it, whether a recall closed it, the person's
consent records, the recipients' subscriptions) and the update, and returns a Plan, or raises
the problem that refuses it:

- the author must hold a disclosure of the release that stands (409, the same whatever
  happened, if it was cancelled or replaced, or withdrawn with the consent that routes it to
  the release: losing one that only hid some fields leaves it on); only then is it told that
  the release is not accepted or that a recall closed it (409);
- the update must be plausible: its sections the author's to give, the service's safeguarding
  answered, an exit with its reason, no date before the release or after today (422);
- it goes to each other recipient on the release plan that holds a disclosure of the release
  that stands (never the prison, never anyone else): the care-update policy decides, per
  recipient, what it is sent and what is withheld and why, under the consent that stands now;
- a recall closes the release: the caller stops its open engagement deadlines;
- an `attended` event from a service is recorded as an `attended` acknowledgement of the
  service's own disclosure, once a day (`attended`).

The Plan holds the update's row, the disclosure rows, the messages to sign, the log entries and
what was sent to whom. Pure: no SQL, no web, no clock; ids come from `new_id`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from app.access.identity import Caller
from app.audit.entry import Entry
from app.disclosure.explained import disclosure, update_claims
from app.disclosure.policy import CARE_UPDATE as DOCUMENT
from app.disclosure.policy import Policy
from app.keys.sealing import Sealed
from app.messages.kinds import CARE_UPDATE
from app.messages.to_sign import ToSign
from app.updates.document import SERVICE, CareUpdate, attended_days, implausible
from app.wire.errors import Problem, invalid

ACCEPTED = "accepted"


@dataclass(frozen=True)
class Holder:
    """A recipient on the release plan, and what it holds of the release: its latest message
    (a disclosure or a cancellation, not revoked), and whether that is a disclosure that still
    stands: not cancelled, replaced or purged and, if it was withdrawn with a consent lost, its
    recipient still routed to the release by the consent that stands (the plan adds that,
    `_on_release`): a disclosure withdrawn for a consent that only hid some of its fields
    still stands."""

    organisation: Any
    role: str
    message_id: uuid.UUID | None
    stands: bool
    numbered: bool = True  # in its inbox already
    withdrawn: bool = False  # its disclosure was withdrawn with a consent lost


@dataclass(frozen=True)
class Read:
    """Everything the plan needs, read under the person's lock."""

    notice_id: uuid.UUID  # the release's version in force (or its latest)
    series_id: uuid.UUID
    status: str  # of that version
    release_date: date | None
    person_ref: str
    closed_on: date | None  # a recall's day, if one closed the release
    holders: tuple[Holder, ...]  # the recipients on the release plan
    standing: Mapping[str, bool]  # the person's consent per scope now
    # Days the author's current disclosure is acknowledged `attended` already: a day known
    # only of an earlier version's disclosure still meets the current one's engagement.
    attended: frozenset[date] = frozenset()
    subscribed: Mapping[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    update: dict[str, Any]  # the care_update row
    disclosures: tuple[dict[str, Any], ...]
    entries: tuple[Entry, ...]
    to_sign: tuple[ToSign, ...]
    sent: tuple[tuple[Any, str, uuid.UUID | None], ...]  # (organisation, role, message id)
    recall: date | None  # closes the release: its open engagement deadlines stop
    attended: tuple[date, ...]  # days to record as attended of `acknowledged`
    acknowledged: uuid.UUID | None  # the author's own disclosure message


def refusal(read: Read, caller: Caller) -> Problem | None:
    """Why the caller may not share an update about this release now, or None. A caller that
    holds no disclosure that stands is told only that, the same whatever happened since: the
    release's status, and a recall, are told only to a caller still on it."""
    mine = next((h for h in read.holders if h.organisation.id == caller.organisation_id), None)
    if mine is None or mine.message_id is None or not mine.stands:
        return Problem(
            409,
            "Conflict",
            "You hold no disclosure of this release that stands (none, or it was cancelled, "
            "replaced or withdrawn with its consent): you cannot share updates about it.",
        )
    if read.status != ACCEPTED:
        return Problem(409, "Conflict", f"The release notice is {read.status}: nothing to update.")
    if read.closed_on is not None:
        return Problem(
            409,
            "Release closed",
            f"The person was recalled or returned to custody on {read.closed_on.isoformat()}: "
            "the release takes no more updates.",
        )
    return None


def _on_release(read: Read, policy: Policy) -> Read:
    """The read with a holder's withdrawn disclosure standing only while the release notice's
    policy still routes its role to the release under the consent that stands
    (Policy.routes): probation stays on it when `probation_clinical_details` is refused, the
    service leaves it when `substance_misuse_service` is."""
    holders = tuple(
        replace(h, stands=h.stands and (not h.withdrawn or policy.routes(h.role, read.standing)))
        for h in read.holders
    )
    return replace(read, holders=holders)


def plan_update(
    update: CareUpdate,
    body: Mapping[str, Any],
    read: Read,
    *,
    caller: Caller,
    about: uuid.UUID,
    policy: Policy,
    today: date,
    now: datetime,
    sealed: Sealed,
    body_sha256: str,  # a keyed hash (DataKeys.body_ref): never in the log
    update_id: uuid.UUID,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Plan:
    """What sharing the update does: see the module. `about` is the caller's own message the
    update was posted about; `today` is the day in England and Wales."""
    read = _on_release(read, policy)
    problem = refusal(read, caller)
    if problem is not None:
        raise problem
    errors = implausible(
        update, dict(body), author=caller.kind, release_date=read.release_date, today=today
    )
    if errors:
        raise invalid(errors)
    row = {
        "id": update_id,
        "series_id": read.series_id,
        "notice_id": read.notice_id,
        "person_ref": read.person_ref,
        "organisation_id": caller.organisation_id,
        "client_id": caller.client_id,
        "author_role": caller.kind,
        "about_message_id": about,
        "body_sealed": sealed.blob,
        "body_key_id": sealed.key_id,
        "body_sha256": body_sha256,
        "recall_date": update.recall.date if update.recall else None,
        "recorded_at": now,
    }
    return _planned(update, body, read, row=row, caller=caller, policy=policy, new_id=new_id)


def _planned(
    update: CareUpdate,
    body: Mapping[str, Any],
    read: Read,
    *,
    row: dict[str, Any],
    caller: Caller,
    policy: Policy,
    new_id: Callable[[], uuid.UUID],
) -> Plan:
    """The plan of an update found plausible, its row made: each recipient's decision and
    message, the log entries, and the attendances it records."""
    update_id, now = row["id"], row["recorded_at"]
    extra = update_claims(
        update_id=update_id,
        series_id=read.series_id,
        author_code=caller.organisation_code,
        author_role=caller.kind,
        recorded_at=now,
    )
    decided = _decide(body, read, caller=caller, policy=policy, extra=extra, now=now, new_id=new_id)
    rows, decided_entries, to_sign, sent = decided
    received = Entry(
        "care_update.received",
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        notice_id=read.notice_id,
        message_id=row["about_message_id"],
        person_ref=read.person_ref,
        details={
            "care_update_id": str(update_id),
            "series_id": str(read.series_id),
            "role": caller.kind,
            "sections": sorted(body),  # names, never a value: no hash of it, no recall's day
            "recipients": [o.code for o, _, _ in sent],
        },
    )
    mine = next(h for h in read.holders if h.organisation.id == caller.organisation_id)
    attended: tuple[date, ...] = ()
    if caller.kind == SERVICE and mine.numbered:
        attended = tuple(d for d in attended_days(update) if d not in read.attended)
    return Plan(
        update=row,
        disclosures=tuple(rows),
        entries=(received, *(replace(e, person_ref=read.person_ref) for e in decided_entries)),
        to_sign=tuple(to_sign),
        sent=tuple(sent),
        recall=row["recall_date"],
        attended=attended,
        acknowledged=mine.message_id if attended else None,
    )


def _decide(
    body: Mapping[str, Any],
    read: Read,
    *,
    caller: Caller,
    policy: Policy,
    extra: Mapping[str, Any],
    now: datetime,
    new_id: Callable[[], uuid.UUID],
) -> tuple[list[dict[str, Any]], list[Entry], list[ToSign], list[tuple[Any, str, Any]]]:
    """Each other recipient's decision, log entry and message (if it holds the release that
    stands and anything is allowed), and what it was sent."""
    rows, entries, to_sign, sent = [], [], [], []
    governs = policy.for_document(DOCUMENT)
    for holder in read.holders:
        if holder.organisation.id == caller.organisation_id:
            continue
        if not holder.stands:  # it holds nothing of the release that stands: nothing goes
            sent.append((holder.organisation, holder.role, None))
            continue
        row, entry, claims = disclosure(
            governs,
            body,
            (holder.organisation, holder.role),
            standing=read.standing,
            notice_id=read.notice_id,
            now=now,
            disclosure_id=new_id(),
        )
        update_id = extra["update"]["id"]
        rows.append({**row, "care_update_id": uuid.UUID(update_id)})
        entries.append(
            replace(entry, details={**(entry.details or {}), "care_update_id": update_id})
        )
        message_id = None
        if claims is not None:
            message_id = new_id()
            to_sign.append(
                ToSign(
                    CARE_UPDATE,
                    message_id,
                    holder.organisation,
                    {**claims, **extra},
                    disclosure_id=row["id"],
                )
            )
        sent.append((holder.organisation, holder.role, message_id))
    return rows, entries, to_sign, sent
