"""The one order in which transactions lock deliveries and their subscriptions.

Two transactions that each lock several rows, in different orders, can each end up waiting for
a row the other holds: on PostgreSQL one of them is then aborted as a deadlock. So every
statement that writes several deliveries locks them in id order, and a transaction that writes
both a subscription and its deliveries locks the subscription first (as a DELETE, a PATCH, a
recovery and a worker that records a 410 Gone all do). Then of two such transactions the one
that waits holds nothing the other still needs. (SQLite has one writer at a time: the locking
clauses compile to nothing there.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.storage.models import Delivery, Subscription

_delivery = Delivery.__table__


def deliveries(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """`delivery.id IN` the deliveries that meet `conditions`, locked FOR UPDATE in id order:
    the WHERE clause of an UPDATE of many deliveries. A row that a concurrent transaction
    changes is read afresh once that one ends, and left out if it no longer meets them."""
    # Not correlated: the subquery reads delivery on its own, whatever the outer statement is.
    return _delivery.c.id.in_(_in_order(conditions).correlate(None))


async def lock_deliveries(
    session: AsyncSession, *conditions: ColumnElement[bool], **parameters: Any
) -> None:
    """Lock the deliveries that meet `conditions` (with these bound `parameters`) now, in id
    order, for a transaction that goes on to write them in several statements."""
    await (await session.connection()).execute(_in_order(conditions), parameters)


def _in_order(conditions: Iterable[ColumnElement[bool]]) -> Select[tuple[uuid.UUID]]:
    return select(_delivery.c.id).where(*conditions).order_by(_delivery.c.id).with_for_update()


async def lock_subscriptions(session: AsyncSession, ids: Iterable[uuid.UUID]) -> None:
    """Lock these subscriptions (FOR NO KEY UPDATE: new deliveries' foreign keys pass), in id
    order, before any of their deliveries."""
    wanted = sorted(set(ids))
    if wanted:
        await session.execute(
            select(Subscription.id)
            .where(Subscription.id.in_(wanted))
            .order_by(Subscription.id)
            .with_for_update(key_share=True)
        )
