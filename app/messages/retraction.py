"""Reading what stopping a notice's messages needs, and writing the plan
(app/messages/retraction_plan.py), in the caller's transaction.

The deliveries are read FOR UPDATE in id order (app/messages/lock_order.py): a worker's claim
waits, or has committed and is seen here. A statement per table writes the plan.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.messages.kinds import CANCELLATION, CARE_UPDATE, DISCLOSURE
from app.messages.retraction_plan import Attempt, Held, Retraction
from app.messages.signed import made_in_order
from app.storage.models import Delivery, Message, StoredNotice


async def read_series(
    session: AsyncSession, series_id: uuid.UUID, *, with_updates: bool = False
) -> list[Held]:
    """Every disclosure and cancellation of any version of the notice, in the order made (those
    revoked too); `with_updates`, the care updates' messages about it as well (a cancellation
    stops them)."""
    kinds = (DISCLOSURE, CANCELLATION, *((CARE_UPDATE,) if with_updates else ()))
    rows = await session.execute(
        select(
            Message.id,
            Message.kind,
            Message.notice_id,
            Message.recipient_organisation_id,
            Message.revoked_at.is_not(None),
        )
        .join(StoredNotice, StoredNotice.id == Message.notice_id)
        .where(
            StoredNotice.series_id == series_id,
            Message.kind.in_(kinds),
        )
        .order_by(*made_in_order())
    )
    return [Held(*row) for row in rows]


async def locked(session: AsyncSession, messages: list[Held], *, now: datetime) -> Retraction:
    """What stopping these messages needs: the deliveries of those that may still be stopped
    (disclosures not revoked), locked. A caller that also reads the recipients' subscriptions
    reads them first (app/messages/lock_order.py)."""
    return Retraction(messages, await locked_deliveries(session, messages), now=now)


async def locked_deliveries(session: AsyncSession, messages: list[Held]) -> list[Attempt]:
    """The deliveries of the messages that may still be stopped (disclosures, and care updates'
    messages, not revoked), locked FOR UPDATE in id order, as a Retraction of them takes them."""
    stoppable = (DISCLOSURE, CARE_UPDATE)
    message_ids = [m.id for m in messages if m.kind in stoppable and not m.revoked]
    if not message_ids:
        return []
    rows = await session.execute(
        select(Delivery.id, Delivery.message_id, Delivery.state)
        .add_columns(Delivery.leased_until, Delivery.attempts)
        .where(Delivery.message_id.in_(message_ids))
        .order_by(Delivery.id)  # app/messages/lock_order.py
        .with_for_update()
    )
    return [Attempt(*row) for row in rows]


async def write(session: AsyncSession, retraction: Retraction) -> None:
    """The plan's deliveries stopped (one statement, in id order) and its messages revoked (one
    more). Its log entries are the caller's to write, with the rest of its own."""
    connection = await session.connection()
    if retraction.stops:
        delivery = Delivery.__table__
        await connection.execute(
            update(delivery)
            .where(delivery.c.id == bindparam("stopped"))
            .values(state=bindparam("new_state"), lease_token=None, last_error=bindparam("why")),
            [
                {"stopped": s.delivery_id, "new_state": s.state, "why": s.why}
                for _, s in sorted(retraction.stops.items())
            ],
        )
    if retraction.revoked:
        message = Message.__table__
        await connection.execute(
            update(message)
            .where(message.c.id.in_(retraction.revoked))
            .values(revoked_at=retraction.now)
        )
