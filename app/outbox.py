"""The outbox: deliveries added in the caller's transaction, claimed by workers, settled."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.delivery import Outcome, next_attempt_delay
from app.models import Delivery, DeliveryAttempt, Message, Organisation, Subscription
from app.sealing import DataKeys, Sealed, SealError, place

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
REVOKED = "revoked"  # its message was withdrawn before it was delivered: never sent
log = logging.getLogger("exchange.outbox")


async def next_sequence(session: AsyncSession, organisation_id: uuid.UUID) -> int:
    """The recipient's next inbox number. The row lock keeps the sequence gap-free."""
    result = await session.execute(
        update(Organisation)
        .where(Organisation.id == organisation_id)
        .values(message_sequence=Organisation.message_sequence + 1)
        .returning(Organisation.message_sequence)
    )
    return result.scalar_one()


async def enqueue(session: AsyncSession, message: Message, now: datetime) -> list[uuid.UUID]:
    """One pending delivery per active subscription of the message's recipient."""
    subscription_ids = (
        await session.scalars(
            select(Subscription.id).where(
                Subscription.organisation_id == message.recipient_organisation_id,
                Subscription.status == "active",
            )
        )
    ).all()
    for subscription_id in subscription_ids:
        session.add(
            Delivery(
                id=uuid.uuid4(),
                message_id=message.id,
                subscription_id=subscription_id,
                state=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        audit.append(
            session,
            "delivery.queued",
            at=now,
            notice_id=message.notice_id,
            message_id=message.id,
            subject_organisation_id=message.recipient_organisation_id,
            details={"subscription_id": str(subscription_id)},
        )
    return list(subscription_ids)


@dataclass(frozen=True)
class Claimed:
    delivery_id: uuid.UUID
    lease_token: uuid.UUID
    attempts: int
    url: str
    secret: str
    kind: str
    message_id: uuid.UUID
    notice_id: uuid.UUID
    supersedes: uuid.UUID | None
    recipient_organisation_id: uuid.UUID
    sequence: int
    jws: str
    created_at: datetime


async def claim_due(
    session: AsyncSession, data_keys: DataKeys, *, now: datetime, limit: int, lease: timedelta
) -> list[Claimed]:
    """Lease up to `limit` due deliveries to this worker until now + lease.

    One UPDATE ... WHERE id IN (due) RETURNING: atomic on SQLite (one writer at a time); on
    PostgreSQL the inner SELECT skips rows other workers hold, so workers never wait on each other.
    An expired lease (a worker that died mid-send) makes the delivery due again.
    """
    due = (
        select(Delivery.id)
        .where(
            Delivery.state == PENDING,
            Delivery.next_attempt_at <= now,
            Delivery.subscription_id.in_(
                select(Subscription.id).where(Subscription.status == "active")
            ),
            or_(Delivery.leased_until.is_(None), Delivery.leased_until < now),
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    token = uuid.uuid4()
    claimed_ids = (
        await session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(due.scalar_subquery()))
            .values(leased_until=now + lease, lease_token=token)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not claimed_ids:
        return []
    rows = await session.execute(
        select(Delivery, Subscription.url, Subscription.secret, Message)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(Message, Message.id == Delivery.message_id)
        .where(Delivery.id.in_(claimed_ids))
    )
    claimed, withheld = [], []
    for d, url, secret, m in rows:
        try:
            jws = jws_of(data_keys, m)
        except SealError as exc:  # a missing data key: keep the lease, send the others
            log.error("delivery %s: its payload cannot be opened (%s)", d.id, exc)
            continue
        if jws is None:  # purged, revoked or withdrawn since it was queued: never to be sent
            withheld.append(d.id)
            continue
        claimed.append(
            Claimed(
                delivery_id=d.id,
                lease_token=token,
                attempts=d.attempts,
                url=url,
                secret=secret,
                kind=m.kind,
                message_id=m.id,
                notice_id=m.notice_id,
                supersedes=m.supersedes_id,
                recipient_organisation_id=m.recipient_organisation_id,
                sequence=m.sequence,
                jws=jws,
                created_at=m.created_at,
            )
        )
    if withheld:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(withheld))
            .values(state=REVOKED, leased_until=None, lease_token=None, last_error="withheld")
            .execution_options(synchronize_session=False)
        )
    return claimed


def jws_of(data_keys: DataKeys, message: Message) -> str | None:
    """A stored message's compact JWS, opened; None once purged, revoked before delivery, or
    withdrawn with the consent it relied on."""
    if (
        message.revoked_at
        or message.withdrawn_at
        or not message.jws_sealed
        or not message.jws_key_id
    ):
        return None  # retention.purge and revocation settle its deliveries in their transaction
    sealed = Sealed(message.jws_key_id, message.jws_sealed)
    return data_keys.open(sealed, place("message", "jws_sealed", message.id)).decode()


async def settle(
    session: AsyncSession, claimed: Claimed, outcome: Outcome, now: datetime
) -> str | None:
    """Record one attempt and move the delivery on: delivered, retried later, or dead.

    Only the claim that still holds the lease may do so. A worker whose lease ran out (another
    worker has claimed the delivery since) records nothing and gets None: the newer claim's
    outcome stands.
    """
    attempts = claimed.attempts + 1
    values: dict[str, object] = {
        "attempts": attempts,
        "leased_until": None,
        "lease_token": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
    }
    if outcome.delivered:
        state, action = DELIVERED, "delivery.succeeded"
        values["delivered_at"] = now
    else:
        delay = next_attempt_delay(attempts)
        if delay is None:
            state, action = DEAD, "delivery.dead"
        else:
            state, action = PENDING, "delivery.failed"
            values["next_attempt_at"] = now + delay
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.id == claimed.delivery_id,
            Delivery.lease_token == claimed.lease_token,
            Delivery.state == PENDING,
        )
        .values(state=state, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    session.add(
        DeliveryAttempt(
            delivery_id=claimed.delivery_id,
            attempted_at=now,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
        )
    )
    audit.append(
        session,
        action,
        at=now,
        notice_id=claimed.notice_id,
        message_id=claimed.message_id,
        subject_organisation_id=claimed.recipient_organisation_id,
        details={
            "delivery_id": str(claimed.delivery_id),
            "attempt": attempts,
            "status_code": outcome.status_code,
            "error": outcome.error,
        },
    )
    return state
