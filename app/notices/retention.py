"""Retention: once a notice is older than the retention period, its data goes; its log stays.

A notice is purged once it, and every message it caused, is older than the retention period (a
cancellation or consent withdrawal sent late keeps it until that message's period is over).
Purging removes the sealed notice body, the sealed payload of every message it caused, the
notes of their acknowledgements, and the idempotency keys that would replay its answer; rows
keep their ids, hashes, states, acknowledgement codes and dates (the release's, each
appointment's: a date names nobody), so the exchange log and each notice's status still tell
what happened. A delivery still pending then can never be made: it becomes
dead. Each purged notice is a log entry (an erasure).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import entries as audit
from app.messages import lock_order
from app.messages.outbox import DEAD, PENDING
from app.storage.models import (
    Acknowledgement,
    CareUpdate,
    Delivery,
    IdempotencyKey,
    Message,
    StoredNotice,
)


@dataclass(frozen=True)
class Purged:
    notices: int
    messages: int


async def purge(
    session: AsyncSession, *, older_than: timedelta, now: datetime, limit: int = 500
) -> Purged:
    """Purge up to `limit` notices received before now - older_than, in the caller's transaction."""
    notice_ids = await _expired(session, cutoff=now - older_than, limit=limit)
    if not notice_ids:
        return Purged(0, 0)
    messages = await _erase(session, notice_ids, now=now)
    for notice_id in notice_ids:
        audit.append(
            session,
            "notice.purged",
            at=now,
            notice_id=notice_id,
            details={
                "messages": sorted(str(m) for m, n in messages if n == notice_id),
                "retention_days": older_than.days,
            },
        )
    return Purged(len(notice_ids), len(messages))


async def _expired(session: AsyncSession, *, cutoff: datetime, limit: int) -> Sequence[uuid.UUID]:
    """Up to `limit` notices not yet purged, oldest first, received before `cutoff` and with no
    message since."""
    recent_message = exists().where(
        Message.notice_id == StoredNotice.id, Message.created_at >= cutoff
    )
    return (
        await session.scalars(
            select(StoredNotice.id)
            .where(
                StoredNotice.received_at < cutoff,
                StoredNotice.purged_at.is_(None),
                ~recent_message,  # a late cancellation or withdrawal keeps it for its period
            )
            .order_by(StoredNotice.received_at)
            .limit(limit)
        )
    ).all()


async def _erase(
    session: AsyncSession, notice_ids: Sequence[uuid.UUID], *, now: datetime
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """The notices' sealed bodies, their messages' payloads and their acknowledgements' notes
    erased, their pending deliveries dead and their idempotency keys deleted: the (message,
    notice) pairs of the messages purged."""
    await session.execute(
        update(StoredNotice)
        .where(StoredNotice.id.in_(notice_ids))
        .values(body_sealed=None, body_key_id=None, purged_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(  # the care updates about them: shared between recipients, sealed alike
        update(CareUpdate)
        .where(CareUpdate.notice_id.in_(notice_ids))
        .values(body_sealed=None, body_key_id=None)
        .execution_options(synchronize_session=False)
    )
    messages = (
        await session.execute(
            update(Message)
            .where(Message.notice_id.in_(notice_ids), Message.purged_at.is_(None))
            .values(jws_sealed=None, jws_key_id=None, purged_at=now)
            .returning(Message.id, Message.notice_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    await session.execute(
        update(Acknowledgement)
        .where(
            Acknowledgement.message_id.in_(
                select(Message.id).where(Message.notice_id.in_(notice_ids))
            ),
            Acknowledgement.note_sealed.is_not(None),
        )
        .values(note_sealed=None, note_key_id=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Delivery)
        .where(
            lock_order.deliveries(
                Delivery.message_id.in_([m for m, _ in messages]), Delivery.state == PENDING
            )
        )
        .values(state=DEAD, leased_until=None, lease_token=None, last_error="purged")
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.notice_id.in_(notice_ids))
        .execution_options(synchronize_session=False)
    )
    return [(m, n) for m, n in messages]
