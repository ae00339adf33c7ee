"""When a consent stops standing (withdrawn, refused anew, or voided: app/consent/records.py), it
takes effect at once.

Every disclosure message about the person that relied on that consent (it would have sent less
without it) is dealt with in the caller's transaction:

- never delivered anywhere (it has deliveries, none delivered or in flight): it is revoked, so
  it is never sent and the inbox withholds it; if it still stands (no newer disclosure or
  cancellation replaced it), the notice is decided again for that recipient under the consents
  that stand now, and if anything is still allowed a new message supersedes it;
- otherwise the recipient may hold it: its other pending deliveries stop, the inbox withholds
  it, and the recipient gets a `consent.withdrawn` message naming it and the scope, to act on
  (stop using and delete what relied on the consent).

Later notices respect it because every decision reads the person's records. The caller holds
the person's lock (consents.lock_person), so no notice for them is decided meanwhile.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.access.identity import Caller
from app.consent import records as consents
from app.consent.decisions import body_of, disclose
from app.keys.sealing import SealError
from app.messages.kinds import CANCELLATION, CONSENT_WITHDRAWN, DISCLOSURE
from app.messages.signed import Signing, queue, retract
from app.storage.models import Consent, Disclosure, Message, Organisation, StoredNotice

log = logging.getLogger("exchange.withdrawal")


@dataclass
class Effects:
    revoked: list[uuid.UUID] = field(default_factory=list)
    redisclosed: list[uuid.UUID] = field(default_factory=list)
    notified: list[uuid.UUID] = field(default_factory=list)


@dataclass
class Withdrawal:
    consent: Consent
    effects: Effects


async def withdraw_consent(
    session: AsyncSession,
    noms_number: str,
    consent_id: uuid.UUID,
    *,
    caller: Caller,
    signing: Signing,
    now: datetime,
) -> Withdrawal:
    person_ref = signing.data_keys.person_ref(noms_number)
    await consents.lock_person(session, person_ref)
    await consents.know_person(session, person_ref, caller)
    record = await consents.withdraw(session, person_ref, consent_id, caller, now)
    return Withdrawal(record, await consent_lost(session, person_ref, record.scope, signing, now))


async def record_decision(
    session: AsyncSession,
    noms_number: str,
    *,
    scope: str,
    decision: str,
    recorded_at: datetime,
    recorded_by: str,
    expires_at: datetime | None,
    caller: Caller,
    signing: Signing,
    now: datetime,
) -> Consent:
    """Record a consent decision; a refusal takes effect at once, as a withdrawal does."""
    person_ref = signing.data_keys.person_ref(noms_number)
    await consents.lock_person(session, person_ref)
    await consents.know_person(session, person_ref, caller)
    record = await consents.record_consent(
        session,
        person_ref,
        scope=scope,
        decision=decision,
        recorded_at=recorded_at,
        recorded_by=recorded_by,
        expires_at=expires_at,
        caller=caller,
        now=now,
    )
    await session.flush()
    await consent_lost(session, person_ref, scope, signing, now)
    return record


async def consent_lost(
    session: AsyncSession,
    person_ref: str,
    scope: str,
    signing: Signing,
    now: datetime,
    *,
    standing: dict[str, bool] | None = None,
) -> Effects:
    """Deal with every message that relied on `scope`, if the person's consent to it does not
    stand now (another record may still give it). `standing` is the person's standing consent
    now, if the caller has read it since the last change to their records."""
    effects = Effects()
    if standing is None:
        standing = await consents.standing(session, person_ref, now)
    if standing.get(scope):
        return effects
    relying = await _relying(session, person_ref, scope)
    for message, disclosure, notice, stands in relying:
        if await retract(session, message, now, "consent_withdrawn"):
            effects.revoked.append(message.id)
            if stands and notice.status == "accepted" and notice.purged_at is None:
                replaced = await _redecide(
                    session, message, disclosure, notice, standing, signing, now
                )
                if replaced is not None:
                    effects.redisclosed.append(replaced)
            continue
        message.withdrawn_at = now
        organisation = await session.get_one(Organisation, message.recipient_organisation_id)
        told = await queue(
            session,
            CONSENT_WITHDRAWN,
            notice,
            organisation,
            {"scope": scope, "withdrawn_at": int(now.timestamp())},
            signing,
            now,
            supersedes=message.id,
        )
        effects.notified.append(told.id)
    return effects


async def _relying(
    session: AsyncSession, person_ref: str, scope: str
) -> list[tuple[Message, Disclosure, StoredNotice, bool]]:
    """The person's disclosure messages that relied on the scope and were not yet revoked,
    withdrawn or purged, each with whether it still stands (nothing newer replaced it)."""
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
            select(Message, Disclosure, StoredNotice, ~replaced)
            .join(Disclosure, Disclosure.id == Message.disclosure_id)
            .join(StoredNotice, StoredNotice.id == Message.notice_id)
            .where(
                StoredNotice.person_ref == person_ref,
                Message.kind == DISCLOSURE,
                Message.revoked_at.is_(None),
                Message.withdrawn_at.is_(None),
                Message.purged_at.is_(None),
            )
            .order_by(
                Message.recipient_organisation_id,
                Message.created_at,
                Message.stored_order,
                Message.id,
            )
        )
    ).all()
    return [(m, d, n, bool(s)) for m, d, n, s in rows if scope in (d.consents_relied or [])]


async def _redecide(
    session: AsyncSession,
    message: Message,
    disclosure: Disclosure,
    notice: StoredNotice,
    standing: dict[str, bool],
    signing: Signing,
    now: datetime,
) -> uuid.UUID | None:
    try:
        body = body_of(signing.data_keys, notice)
    except SealError as exc:  # a lost data key must not stop the withdrawal itself
        log.error("notice %s cannot be decided again: %s", notice.id, exc)
        return None
    if body is None:
        return None
    organisation = await session.get_one(Organisation, message.recipient_organisation_id)
    return await disclose(
        session,
        notice,
        body,
        recipient=(organisation, disclosure.recipient_role),
        standing=standing,
        signing=signing,
        now=now,
        holders={organisation.id: message},
    )
