"""Signed messages to recipients: made, sealed, stored and queued for delivery.

A message is a disclosure (what the policy lets one recipient see of one notice version), a
cancellation (a disclosure it held no longer stands), or a consent withdrawal (a disclosure it
holds relied on a consent the person has withdrawn). Both are JWS signed with the exchange's
current key, sealed at rest, numbered in the recipient's inbox and queued in the caller's
transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit, jose, outbox
from app.models import Message, Organisation, ReleaseNotice
from app.policy import Policy
from app.sealing import DataKeys, place

DISCLOSURE, CANCELLATION, CONSENT_WITHDRAWN = "disclosure", "cancellation", "consent_withdrawn"
TYP = {
    DISCLOSURE: "disclosure+jwt",
    CANCELLATION: "cancellation+jwt",
    CONSENT_WITHDRAWN: "consent-withdrawn+jwt",
}


@dataclass(frozen=True)
class Context:
    """What the use cases need from the running exchange, built once in create_app."""

    policy: Policy
    keyring: jose.KeyRing
    data_keys: DataKeys
    issuer: str


@dataclass(frozen=True)
class Sent:
    organisation: Organisation
    role: str
    message_id: uuid.UUID | None
    kind: str = DISCLOSURE


async def held(session: AsyncSession, series_id: uuid.UUID) -> dict[uuid.UUID, Message]:
    """Per recipient, the latest message it holds about any version of this notice: a
    disclosure or a cancellation. A revoked message was never sent, and a consent withdrawal
    only annotates the disclosure it names: neither is what a recipient holds."""
    messages = await session.scalars(
        select(Message)
        .join(ReleaseNotice, ReleaseNotice.id == Message.notice_id)
        .where(
            ReleaseNotice.series_id == series_id,
            Message.kind.in_((DISCLOSURE, CANCELLATION)),
            Message.revoked_at.is_(None),
        )
        .order_by(Message.sequence)
    )
    return {m.recipient_organisation_id: m for m in messages}


async def cancel(
    session: AsyncSession,
    notice: ReleaseNotice,
    cancelled: Message,
    reason: str,
    context: Context,
    now: datetime,
) -> Sent:
    organisation = await session.get_one(Organisation, cancelled.recipient_organisation_id)
    message = await queue(
        session,
        CANCELLATION,
        notice,
        organisation,
        {"reason": reason},
        context,
        now,
        supersedes=cancelled.id,
    )
    return Sent(organisation, organisation.kind, message.id, CANCELLATION)


async def queue(
    session: AsyncSession,
    kind: str,
    notice: ReleaseNotice,
    organisation: Organisation,
    claims: dict[str, Any],
    context: Context,
    now: datetime,
    *,
    disclosure_id: uuid.UUID | None = None,
    supersedes: uuid.UUID | None = None,
) -> Message:
    """Sign a message for one recipient, seal and store it, and queue its deliveries."""
    message_id = uuid.uuid4()
    signed = {
        "iss": context.issuer,
        "aud": organisation.code,
        "iat": int(now.timestamp()),
        "jti": str(message_id),
        "notice_id": str(notice.id),
        **({"supersedes": str(supersedes)} if supersedes else {}),
        **claims,
    }
    jws = jose.sign(context.keyring, signed, typ=TYP[kind])
    sealed = context.data_keys.seal(jws.encode(), place("message", "jws_sealed", message_id))
    message = Message(
        id=message_id,
        kind=kind,
        notice_id=notice.id,
        disclosure_id=disclosure_id,
        supersedes_id=supersedes,
        recipient_organisation_id=organisation.id,
        sequence=await outbox.next_sequence(session, organisation.id),
        jws_sealed=sealed.blob,
        jws_key_id=sealed.key_id,
        created_at=now,
    )
    session.add(message)
    audit.append(
        session,
        "message.signed",
        at=now,
        notice_id=notice.id,
        message_id=message_id,
        subject_organisation_id=organisation.id,
        details={
            "kind": kind,
            "kid": context.keyring.current.kid,
            "jws_sha256": audit.sha256_hex(jws),
            "sequence": message.sequence,
            "supersedes": str(supersedes) if supersedes else None,
        },
    )
    await session.flush()  # deliveries reference the message
    await outbox.enqueue(session, message, now)
    return message
