"""The use case: a person withdraws a consent, and it takes effect at once.

Every disclosure message about the person that relied on that consent (it would have sent less
without it) is dealt with in the same transaction:

- not yet delivered anywhere (it has deliveries, none delivered or in flight): it is revoked,
  so it is never sent and the inbox withholds it; if it still stands (no newer disclosure or
  cancellation replaced it), the notice is decided again for that recipient under the
  consents that stand now, and if anything is still allowed a new message supersedes it;
- otherwise the recipient may hold it: it gets a `consent.withdrawn` message naming it and the
  scope, to act on (stop using and delete what relied on the consent).

Later notices respect the withdrawal because every decision reads the person's records.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app import audit, consents
from app.dispatch import CANCELLATION, CONSENT_WITHDRAWN, DISCLOSURE, Context, queue
from app.identity import Caller
from app.intake import body_of, disclose
from app.models import Consent, Delivery, Disclosure, Message, Organisation, ReleaseNotice
from app.outbox import DELIVERED, PENDING, REVOKED


@dataclass
class Withdrawal:
    consent: Consent
    revoked: list[uuid.UUID] = field(default_factory=list)
    redisclosed: list[uuid.UUID] = field(default_factory=list)
    notified: list[uuid.UUID] = field(default_factory=list)


async def withdraw_consent(
    session: AsyncSession,
    noms_number: str,
    consent_id: uuid.UUID,
    *,
    caller: Caller,
    context: Context,
    now: datetime,
) -> Withdrawal:
    person_ref = context.data_keys.person_ref(noms_number)
    record = await consents.withdraw(session, person_ref, consent_id, caller, now)
    result = Withdrawal(record)
    standing = await consents.standing(session, person_ref, now)
    if standing.get(record.scope):
        return result  # another record of the same scope still gives it: nothing relied on this
    for message, disclosure, notice, stands in await _relying(session, person_ref, record.scope):
        deliveries = (
            await session.execute(
                select(Delivery.state, Delivery.leased_until).where(
                    Delivery.message_id == message.id
                )
            )
        ).all()
        in_flight = any(leased and leased > now for _, leased in deliveries)
        if deliveries and not in_flight and all(state != DELIVERED for state, _ in deliveries):
            await _revoke(session, message, now)
            result.revoked.append(message.id)
            if not stands:
                continue  # a newer message replaced it: nothing to decide again
            replaced = await _redecide(session, message, disclosure, notice, standing, context, now)
            if replaced is not None:
                result.redisclosed.append(replaced)
        else:
            organisation = await session.get_one(Organisation, message.recipient_organisation_id)
            claims = {"scope": record.scope, "withdrawn_at": int(now.timestamp())}
            told = await queue(
                session,
                CONSENT_WITHDRAWN,
                notice,
                organisation,
                claims,
                context,
                now,
                supersedes=message.id,
            )
            result.notified.append(told.id)
    return result


async def _relying(
    session: AsyncSession, person_ref: str, scope: str
) -> list[tuple[Message, Disclosure, ReleaseNotice, bool]]:
    """The person's disclosure messages that relied on the scope and were neither revoked nor
    purged, each with whether it still stands (nothing newer replaced it)."""
    newer = aliased(Message)
    replaced = exists().where(
        and_(
            newer.supersedes_id == Message.id,
            newer.kind.in_((DISCLOSURE, CANCELLATION)),
            newer.revoked_at.is_(None),
        )
    )
    rows = (
        await session.execute(
            select(Message, Disclosure, ReleaseNotice, ~replaced)
            .join(Disclosure, Disclosure.id == Message.disclosure_id)
            .join(ReleaseNotice, ReleaseNotice.id == Message.notice_id)
            .where(
                ReleaseNotice.person_ref == person_ref,
                Message.kind == DISCLOSURE,
                Message.revoked_at.is_(None),
                Message.purged_at.is_(None),
            )
            .order_by(Message.sequence)
        )
    ).all()
    return [(m, d, n, bool(s)) for m, d, n, s in rows if scope in (d.consents_relied or [])]


async def _revoke(session: AsyncSession, message: Message, now: datetime) -> None:
    message.revoked_at = now
    await session.execute(
        update(Delivery)
        .where(Delivery.message_id == message.id, Delivery.state == PENDING)
        .values(state=REVOKED, leased_until=None, lease_token=None, last_error="revoked")
        .execution_options(synchronize_session=False)
    )
    audit.append(
        session,
        "message.revoked",
        at=now,
        notice_id=message.notice_id,
        message_id=message.id,
        subject_organisation_id=message.recipient_organisation_id,
        details={"reason": "consent_withdrawn"},
    )


async def _redecide(
    session: AsyncSession,
    message: Message,
    disclosure: Disclosure,
    notice: ReleaseNotice,
    standing: dict[str, bool],
    context: Context,
    now: datetime,
) -> uuid.UUID | None:
    body = body_of(context.data_keys, notice)
    if body is None:
        return None
    organisation = await session.get_one(Organisation, message.recipient_organisation_id)
    return await disclose(
        session,
        notice,
        body,
        organisation,
        disclosure.recipient_role,
        standing,
        context,
        now,
        {organisation.id: message},
    )
