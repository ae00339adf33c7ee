"""Delivery recovery for a recipient: every attempt of a subscription's deliveries, a message
sent again, everything since a time sent again. Never commits.

Sending again follows one rule: a subscription with a pending delivery of the message has it
made due now (its attempts, and so its place in the retry schedule, kept); one without gets a
new pending delivery, due now, with a fresh retry schedule. A receiver dedupes by webhook-id
(the message id), which stays the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Caller
from app.audit import entries as audit
from app.messages import lock_order, subscriptions
from app.messages.outbox import PENDING, wake_workers
from app.messages.supersession import superseded, superseded_by
from app.storage.columns import UTCDateTime
from app.storage.models import Delivery, DeliveryAttempt, Message, Subscription
from app.wire.errors import Problem, invalid

RECOVERY_LIMIT = 10_000  # messages per recover call
CHUNK = 500  # ids per statement: well under every driver's parameter limit


# --- what became of each delivery --------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRecord:
    delivery: Delivery
    sequence: int
    kind: str
    attempts: list[DeliveryAttempt]


async def deliveries(
    session: AsyncSession,
    caller: Caller,
    subscription_id: uuid.UUID,
    *,
    state: str | None,
    offset: int,
    limit: int,
) -> list[DeliveryRecord]:
    """A page of the subscription's deliveries, newest first, each with every attempt: those
    of messages numbered in the inbox (the others are not yet due)."""
    subscription = await subscriptions.own(session, caller, subscription_id)
    query = (
        select(Delivery, Message.sequence, Message.kind)
        .join(Message, Message.id == Delivery.message_id)
        .where(Delivery.subscription_id == subscription.id, Message.sequence.is_not(None))
    )
    if state is not None:
        query = query.where(Delivery.state == state)
    rows = (
        await session.execute(
            query.order_by(Delivery.created_at.desc(), Delivery.id.desc())
            .offset(offset)
            .limit(limit)
        )
    ).all()
    attempts: dict[uuid.UUID, list[DeliveryAttempt]] = {d.id: [] for d, _, _ in rows}
    if attempts:
        found = await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(list(attempts)))
            .order_by(DeliveryAttempt.attempted_at, DeliveryAttempt.id)
        )
        for attempt in found:
            attempts[attempt.delivery_id].append(attempt)
    return [DeliveryRecord(d, sequence, kind, attempts[d.id]) for d, sequence, kind in rows]


# --- one message, again ------------------------------------------------------------------


def unsendable(message: Message, superseded_by: uuid.UUID | None) -> str | None:
    """Why a message may no longer be sent (as leases.claim_due decides), or None; with the
    message that replaced it, if one did (supersession.superseded_by)."""
    if message.revoked_at is not None:
        return "revoked"
    if message.withdrawn_at is not None:
        return "withdrawn"
    if message.purged_at is not None or not message.jws_sealed or not message.jws_key_id:
        return "purged"
    if superseded_by is not None:
        return "superseded"
    return None


def _sendable() -> ColumnElement[bool]:
    """unsendable(message, its replacement) is None, in SQL."""
    return and_(
        Message.revoked_at.is_(None),
        Message.withdrawn_at.is_(None),
        Message.purged_at.is_(None),
        Message.jws_sealed.is_not(None),
        Message.jws_key_id.is_not(None),
        ~superseded(Message.id),
    )


WHY = {
    "revoked": "it was stopped before it was delivered anywhere",
    "withdrawn": "the consent it relied on was withdrawn",
    "purged": "its payload was purged after the retention period",
    "superseded": "a later message replaced it, and that one is sent instead",
}


async def redeliver(
    session: AsyncSession,
    caller: Caller,
    message_id: uuid.UUID,
    *,
    subscription_id: uuid.UUID | None,
    now: datetime,
) -> list[uuid.UUID]:
    """Send one of the caller's messages again, now, to each of its active subscriptions (or
    only the one named); the deliveries that will send it."""
    message = await session.get(Message, message_id)
    if message is None or message.recipient_organisation_id != caller.organisation_id:
        raise Problem(404, "Not found", "No such message.")
    if message.sequence is None:  # not in the inbox until numbered (app/api/messages.py)
        raise Problem(404, "Not found", "No such message.")
    named = None
    if subscription_id is not None:
        named = await subscriptions.own(session, caller, subscription_id, lock=True)
    replaced_by = await session.scalar(select(superseded_by(message.id)))
    reason = unsendable(message, replaced_by)
    if reason is not None:
        raise Problem(
            409,
            "Message not sendable",
            f"This message can no longer be sent ({reason}): {WHY[reason]}.",
            extra={"reason": reason}
            | ({"superseded_by": str(replaced_by)} if reason == "superseded" else {}),
        )
    if named is not None:
        if named.status != subscriptions.ACTIVE:
            raise subscriptions.not_active(named)
        targets = [named.id]
    else:
        targets = list(await _lock_active(session, caller))
        if not targets:
            raise Problem(
                409, "No active subscription", "You have no active subscription to send it to."
            )
    queued = await _queue(session, [message.id], targets, now=now)
    audit.append(
        session,
        "message.redelivery_requested",
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        notice_id=message.notice_id,
        message_id=message.id,
        subject_organisation_id=caller.organisation_id,
        details={
            "subscriptions": sorted(str(s) for s in targets),
            "deliveries": sorted(str(d) for d in queued.ids),
            "made_due": queued.made_due,
            "added": queued.added,
        },
    )
    return queued.ids


async def _lock_active(session: AsyncSession, caller: Caller) -> Sequence[uuid.UUID]:
    """The caller's active subscriptions, locked (in id order) against a concurrent change."""
    return (
        await session.scalars(
            select(Subscription.id)
            .where(
                Subscription.organisation_id == caller.organisation_id,
                Subscription.status == subscriptions.ACTIVE,
            )
            .order_by(Subscription.id)
            .with_for_update()
        )
    ).all()


# --- everything since a time, again -----------------------------------------------------


@dataclass(frozen=True)
class Recovered:
    queued: int
    next_since: datetime | None

    @property
    def complete(self) -> bool:
        return self.next_since is None


async def recover(
    session: AsyncSession,
    caller: Caller,
    subscription_id: uuid.UUID,
    *,
    since: datetime,
    until: datetime | None,
    now: datetime,
    limit: int = RECOVERY_LIMIT,
) -> Recovered:
    """Send again, to one active subscription, every sendable message of the caller's created in
    [since, until): at most `limit`, oldest first, cut between two instants so that `next_since`
    continues exactly where this call stopped."""
    subscription = await subscriptions.own(session, caller, subscription_id, lock=True)
    _check_window(since=since, until=until, now=now)
    if subscription.status != subscriptions.ACTIVE:
        raise subscriptions.not_active(subscription)
    window = [
        Message.recipient_organisation_id == caller.organisation_id,
        Message.created_at >= since,
        _sendable(),
    ]
    if until is not None:
        window.append(Message.created_at < until)
    batch, next_since = await _oldest(session, window, limit=limit)
    queued = await _queue(session, batch, [subscription.id], now=now)
    audit.append(
        session,
        "subscription.recovery_requested",
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        subject_organisation_id=caller.organisation_id,
        details={
            "subscription_id": str(subscription.id),
            "since": since.isoformat(),
            "until": until.isoformat() if until else None,
            "messages": len(batch),
            "made_due": queued.made_due,
            "added": queued.added,
            "complete": next_since is None,
        },
    )
    return Recovered(len(batch), next_since)


def _check_window(*, since: datetime, until: datetime | None, now: datetime) -> None:
    """PURE: refuse (422) a window that starts in the future or ends before it starts."""
    errors = []
    if since > now:
        errors.append({"pointer": "/since", "detail": "is in the future"})
    if until is not None and since >= until:
        errors.append({"pointer": "/since", "detail": "is not before until"})
    if errors:
        raise invalid(errors)


async def _oldest(
    session: AsyncSession, window: Sequence[ColumnElement[bool]], *, limit: int
) -> tuple[list[uuid.UUID], datetime | None]:
    """The oldest messages in the window, at most `limit` cut between two instants (more only
    when more than `limit` share the first instant: one transaction's, taken whole), and when
    the rest of the window begins (None if nothing is left)."""
    rows = (
        await session.execute(
            select(Message.id, Message.created_at)
            .where(*window)
            .order_by(Message.created_at, Message.stored_order, Message.id)
            .limit(limit + 1)
        )
    ).all()
    if len(rows) <= limit:
        return [m for m, _ in rows], None
    next_since = rows[limit].created_at
    batch = [m for m, created_at in rows if created_at < next_since]
    if batch:
        return batch, next_since
    batch = list(
        await session.scalars(select(Message.id).where(*window, Message.created_at == next_since))
    )
    after = await session.scalar(
        select(Message.created_at)
        .where(*window, Message.created_at > next_since)
        .order_by(Message.created_at)
        .limit(1)
    )
    return batch, after


# --- the one rule ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Queued:
    ids: list[uuid.UUID]
    made_due: int
    added: int


async def _queue(
    session: AsyncSession,
    message_ids: Sequence[uuid.UUID],
    subscription_ids: Sequence[uuid.UUID],
    *,
    now: datetime,
) -> Queued:
    """Each message due now at each subscription: a pending delivery of it made due (one
    already overdue keeps its place), else a new one (also when the pending one is being
    attempted right now). A statement per CHUNK messages."""
    ids: list[uuid.UUID] = []
    made_due = added = 0
    at = literal(now, UTCDateTime())
    for chunk in _chunks(message_ids):
        pending = (
            await session.execute(
                update(Delivery)
                .where(
                    lock_order.deliveries(
                        Delivery.message_id.in_(chunk),
                        Delivery.subscription_id.in_(subscription_ids),
                        Delivery.state == PENDING,
                        # One being attempted now is left to its worker, whose outcome would set
                        # its next attempt anew: a new delivery sends the message again instead.
                        or_(Delivery.leased_until.is_(None), Delivery.leased_until <= at),
                    )
                )
                .values(
                    next_attempt_at=case(
                        (Delivery.next_attempt_at > at, at), else_=Delivery.next_attempt_at
                    )
                )
                .returning(Delivery.id, Delivery.message_id, Delivery.subscription_id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        have = {(m, s) for _, m, s in pending}
        new = [
            {
                "id": uuid.uuid4(),
                "message_id": m,
                "subscription_id": s,
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for m in chunk
            for s in subscription_ids
            if (m, s) not in have
        ]
        if new:
            await session.execute(insert(Delivery), new)
        ids += [d for d, _, _ in pending] + [row["id"] for row in new]
        made_due, added = made_due + len(pending), added + len(new)
    if ids:
        await wake_workers(session)
    return Queued(ids, made_due, added)


def _chunks(items: Sequence[uuid.UUID]) -> Iterator[list[uuid.UUID]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])
