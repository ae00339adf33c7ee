"""What a consent that stops standing takes back, decided without a database (pure).

Given what app/consent/withdrawal.py read (the person's disclosure messages that relied on a
scope lost, each with whether it still stands; their deliveries, locked; their recipients; the
consent that stands now), and the bodies of the notices to decide again, the plan says, with
app/messages/retraction_plan.Retraction, for each such message in turn:

- never delivered anywhere (it has deliveries, none claimed or tried): it is revoked; if it
  still stands (nothing newer replaced it) on a notice accepted and not purged, the notice is
  decided again for its recipient under the consent that stands, and if anything is still
  allowed a new disclosure supersedes it. A care update's message is decided again while its
  release is open (its version in force accepted, no recall) and its recipient still holds a
  disclosure there and is still routed to it by the consent that stands (Policy.routes: the
  service is not once `substance_misuse_service` is lost), as sharing an update requires;
- otherwise its recipient may hold it: its pending deliveries not in flight stop, it is
  withdrawn, and the recipient is sent a `consent.withdrawn` message naming it and the scope.

The plan holds the rows, the messages to sign, the log entries and what each message became;
the caller signs, then writes it. Pure: ids come from `new_id`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.audit.entry import Entry
from app.disclosure.explained import disclosure
from app.disclosure.policy import CARE_UPDATE as CARE_UPDATE_DOCUMENT
from app.disclosure.policy import RELEASE_NOTICE, Policy
from app.messages.kinds import CONSENT_WITHDRAWN
from app.messages.retraction_plan import CONSENT_WITHDRAWN as WHY
from app.messages.retraction_plan import Attempt, Held, Retraction
from app.messages.to_sign import ToSign


@dataclass(frozen=True)
class Relying:
    """A disclosure message (or a care update's message) that relied on a scope lost, as
    read."""

    message: Held
    role: str  # the recipient's, as the disclosure was decided for
    relied: frozenset[str]  # every scope its disclosure relied on
    stands: bool  # no disclosure or cancellation (not revoked) replaced it
    # It may be decided again: its notice is accepted and not purged; for a care update's, the
    # release's version in force is, no recall closed it, and the recipient holds a disclosure.
    open: bool
    # A care update's message: the update decided again (its id, whose body is read) and what
    # its message says of the update besides the decision (explained.update_claims).
    update: uuid.UUID | None = None
    about_update: Mapping[str, Any] | None = None

    @property
    def decides(self) -> uuid.UUID:
        """What is decided again: the update's body, or the notice's."""
        return self.update or self.message.notice_id


@dataclass(frozen=True)
class Lost:
    """Everything the plan needs, read in the caller's transaction under the person's lock."""

    person_ref: str
    scopes: tuple[str, ...]  # the scopes lost, in the order they are dealt with
    relying: tuple[Relying, ...]  # per recipient, in the order made
    deliveries: tuple[Attempt, ...]  # the relying messages', locked
    organisations: Mapping[uuid.UUID, Any]  # the recipients
    standing: Mapping[str, bool]  # the person's consent per scope now


@dataclass(frozen=True)
class Taken:
    """The plan. `retraction` holds the deliveries stopped and the messages revoked."""

    retraction: Retraction
    withdrawn: tuple[uuid.UUID, ...]  # messages its recipient may hold
    disclosures: tuple[dict[str, Any], ...]  # the disclosure rows decided again
    entries: tuple[Entry, ...]  # in the order of the messages dealt with
    to_sign: tuple[ToSign, ...]
    redisclosed: tuple[uuid.UUID, ...]  # the new disclosures' message ids
    notified: tuple[uuid.UUID, ...]  # the consent.withdrawn messages' ids

    @property
    def revoked(self) -> tuple[uuid.UUID, ...]:
        return tuple(self.retraction.revoked)


def _each(lost: Lost) -> Iterator[tuple[str, Relying]]:
    """Each relying message once, with the scope it is dealt with for: scope by scope, and in
    the order read within a scope."""
    dealt: set[uuid.UUID] = set()
    for scope in lost.scopes:
        for relying in lost.relying:
            if scope in relying.relied and relying.message.id not in dealt:
                dealt.add(relying.message.id)
                yield scope, relying


def _retraction(lost: Lost, now: datetime) -> Retraction:
    return Retraction([r.message for r in lost.relying], lost.deliveries, now=now)


def to_decide(lost: Lost, *, now: datetime) -> list[uuid.UUID]:
    """The notices the plan decides again (their bodies are what it needs of them): those of
    the messages it revokes that still stand on a notice accepted and not purged."""
    retraction = _retraction(lost, now)
    wanted = [
        r.decides
        for _, r in _each(lost)
        if retraction.retract(r.message, WHY) and r.stands and r.open
    ]
    return list(dict.fromkeys(wanted))


def plan_withdrawal(
    lost: Lost,
    *,
    bodies: Mapping[uuid.UUID, Mapping[str, Any] | None],
    policy: Policy,
    now: datetime,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Taken:
    """What losing `lost.scopes` takes back: see the module. `bodies`: the notices (and care
    updates) to_decide names, opened; one missing (or None: purged) is not decided again."""
    retraction = _retraction(lost, now)
    withdrawn, disclosures, entries, to_sign = [], [], [], []
    redisclosed, notified = [], []
    for scope, relying in _each(lost):
        message = relying.message
        organisation = lost.organisations[message.recipient_id]
        before = len(retraction.entries)
        if not retraction.retract(message, WHY):
            withdrawn.append(message.id)
            told = _told(message, organisation, scope=scope, now=now, new_id=new_id)
            to_sign.append(told)
            notified.append(told.message_id)
            continue
        entries += retraction.entries[before:]
        body = bodies.get(relying.decides)
        if not (relying.stands and relying.open and body is not None):
            continue
        if relying.update and not policy.routes(relying.role, lost.standing):
            continue  # the consent that routes it to the release is lost: it is sent no update
        row, entry, claims = disclosure(
            policy.for_document(CARE_UPDATE_DOCUMENT if relying.update else RELEASE_NOTICE),
            body,
            (organisation, relying.role),
            standing=lost.standing,
            notice_id=message.notice_id,
            now=now,
            disclosure_id=new_id(),
        )
        disclosures.append({**row, "care_update_id": relying.update})
        entries.append(entry)
        if claims is not None:  # nothing allowed: not even the fact of the notice is sent
            claims |= relying.about_update or {}
            again = _again(message, organisation, claims, disclosure_id=row["id"], new_id=new_id)
            to_sign.append(again)
            redisclosed.append(again.message_id)
    return Taken(
        retraction=retraction,
        withdrawn=tuple(withdrawn),
        disclosures=tuple(disclosures),
        entries=tuple(replace(e, person_ref=lost.person_ref) for e in entries),
        to_sign=tuple(to_sign),
        redisclosed=tuple(redisclosed),
        notified=tuple(notified),
    )


def _told(
    message: Held,
    organisation: Any,
    *,
    scope: str,
    now: datetime,
    new_id: Callable[[], uuid.UUID],
) -> ToSign:
    """The consent.withdrawn message naming what its recipient may hold, and the scope."""
    return ToSign(
        CONSENT_WITHDRAWN,
        new_id(),
        organisation,
        {"scope": scope, "withdrawn_at": int(now.timestamp())},
        supersedes=message.id,
        notice_id=message.notice_id,
    )


def _again(
    message: Held,
    organisation: Any,
    claims: dict[str, Any],
    *,
    disclosure_id: uuid.UUID,
    new_id: Callable[[], uuid.UUID],
) -> ToSign:
    """The disclosure decided again, superseding the one revoked."""
    return ToSign(
        message.kind,
        new_id(),
        organisation,
        claims,
        disclosure_id=disclosure_id,
        supersedes=message.id,
        notice_id=message.notice_id,
    )
