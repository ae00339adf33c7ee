"""What cancelling a notice, or replacing what an amendment's recipients held, does, decided
without a database (pure).

Given what the use case read (the notice's messages and their deliveries, as a
app/messages/retraction_plan.Retraction; for a notice entered in error the person's consent
records and what carries them), the plan says which messages stop, which recipients are told
that what they hold no longer stands (a cancellation to sign for each), the log entries, and
the consent records voided. The caller signs, then writes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.access.identity import Caller
from app.audit.entry import Entry
from app.consent.plan import voided_entry
from app.messages.kinds import CANCELLATION, CARE_UPDATE, DISCLOSURE
from app.messages.retraction_plan import Retraction
from app.messages.to_sign import ToSign
from app.notices.plan import Carrier, Record, standing_of, unsupported

ENTERED_IN_ERROR = "entered_in_error"


@dataclass(frozen=True)
class Closed:
    """The version cancelled (closed already), as the plan needs it."""

    id: uuid.UUID
    version: int
    person_ref: str | None
    versions: frozenset[uuid.UUID]  # every version's id


@dataclass(frozen=True)
class Told:
    """The cancellations to sign, and the log entries to write before their own."""

    entries: tuple[Entry, ...]
    to_sign: tuple[ToSign, ...]


@dataclass(frozen=True)
class Cancelled(Told):
    voided: tuple[uuid.UUID, ...] = ()  # consent records nothing in force carries any more
    lost: tuple[str, ...] = ()  # their scopes, withdrawn (app/consent/withdrawal.consent_lost)
    standing: Mapping[str, bool] = field(default_factory=dict)  # the consent left, if any lost


def _telling(
    still: Iterable[Any],
    *,
    reason: str,
    organisations: Mapping[uuid.UUID, Any],
    new_id: Callable[[], uuid.UUID],
) -> list[ToSign]:
    """A cancellation, naming it, for each message its recipient may still hold."""
    return [
        ToSign(
            CANCELLATION,
            new_id(),
            organisations[message.recipient_id],
            {"reason": reason},
            supersedes=message.id,
        )
        for message in still
    ]


def plan_cancel(
    closed: Closed,
    retraction: Retraction,
    *,
    reason: str,
    caller: Caller,
    organisations: Mapping[uuid.UUID, Any],
    records: Iterable[Record] = (),
    carriers: Iterable[Carrier] = (),
    now: datetime,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Cancelled:
    """Cancel the version: every recipient's disclosure not yet delivered is never sent, and
    each that may hold one is told; a care update about the release not yet delivered is never
    sent either, and one perhaps delivered is sent no more. Entered in error, it voids the
    consent records that rested on its versions alone (`records` and `carriers`: the person's,
    read once it was closed)."""
    actor = {"actor_organisation_id": caller.organisation_id, "actor_client_id": caller.client_id}
    cancelled = Entry(
        "notice.cancelled",
        at=now,
        notice_id=closed.id,
        **actor,
        person_ref=closed.person_ref,
        details={"reason": reason, "version": closed.version},
    )
    held = retraction.held().values()
    still = [s for m in held if (s := retraction.retract_held(m, "cancelled"))]
    for update in [m for m in retraction.messages if m.kind == CARE_UPDATE]:
        retraction.retract(update, "cancelled")  # a care update about it: no longer sent
    to_sign = _telling(still, reason=reason, organisations=organisations, new_id=new_id)
    voided: list[Record] = []
    if reason == ENTERED_IN_ERROR and closed.person_ref:
        voided = unsupported(records, carriers, replaced=closed.versions, still=frozenset())
    person = {**actor, "person_ref": closed.person_ref}
    gone = {r.id for r in voided}
    return Cancelled(
        entries=(
            cancelled,
            *retraction.entries,
            *(voided_entry(r, now=now, **person) for r in voided),
        ),
        to_sign=tuple(to_sign),
        voided=tuple(r.id for r in voided),
        lost=tuple(sorted({r.scope for r in voided})),
        standing=standing_of([r for r in records if r.id not in gone], now) if gone else {},
    )


def plan_replaced(
    retraction: Retraction,
    holders: Mapping[uuid.UUID, uuid.UUID],
    *,
    disclosed_to: frozenset[uuid.UUID],
    organisations: Mapping[uuid.UUID, Any],
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Told:
    """An amendment replaces the disclosures the recipients held (`holders`: recipient to the
    message it held, read before the amendment was decided). One the new version discloses to
    its recipient again is superseded: not sent if it has not gone yet. Any other is stopped
    with the ones before it that never went, and its recipient, if it may hold one after all,
    is told it no longer stands."""
    still = []
    for recipient_id, message_id in holders.items():
        message = retraction.message(message_id)
        if message.kind != DISCLOSURE:
            continue
        if recipient_id in disclosed_to:  # its new message supersedes it
            retraction.retract(message, "superseded")
        elif held := retraction.retract_held(message, "superseded"):
            still.append(held)
    to_sign = _telling(
        still,
        reason="amended_not_shared",
        organisations=organisations,
        new_id=new_id,
    )
    return Told(entries=tuple(retraction.entries), to_sign=tuple(to_sign))
