"""The outbox: deliveries added in the caller's transaction, and the workers told of them.

Claiming them is app/messages/leases.py; settling their outcomes, app/messages/outcomes.py.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import entries as audit
from app.keys.sealing import DataKeys, Sealed, place
from app.messages.states import DEAD, DELIVERED, PENDING
from app.messages.states import REVOKED as REVOKED  # its callers import the states here
from app.messages.states import SUPERSEDED as SUPERSEDED
from app.storage.db import flush_pending
from app.storage.models import Delivery, Message, Subscription

SETTLED = {
    DELIVERED: "delivery.succeeded",
    PENDING: "delivery.failed",
    DEAD: "delivery.dead",
}
QUEUEING = ("active", "disabled")  # subscriptions that get new deliveries (not deleted ones)
CHANNEL = "exchange_deliveries"  # PostgreSQL NOTIFY: messages to number or deliveries are due
WOKEN = "exchange.outbox.woken"  # session.info: the transaction that has told the workers


async def subscribers(
    session: AsyncSession, recipient_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Per recipient, its subscriptions that get new deliveries (not deleted ones: a disabled
    one's wait, and go out if it is re-enabled), read FOR SHARE: a DELETE waits for this
    transaction, then kills what it queued. Workers are told (at commit) if there are any."""
    recipients = set(recipient_ids)
    found: dict[uuid.UUID, list[uuid.UUID]] = {r: [] for r in recipients}
    if not recipients:
        return found
    # On PostgreSQL the same statement tells the workers (at commit; PostgreSQL folds one
    # notification sent for each row into one), unless this transaction has told them already.
    notify = session.bind.dialect.name == "postgresql" and not _woken(session)
    columns = [Subscription.organisation_id, Subscription.id]
    if notify:
        columns.append(func.pg_notify(CHANNEL, ""))
    rows = (
        await session.execute(
            select(*columns)
            .where(
                Subscription.organisation_id.in_(recipients),
                Subscription.status.in_(QUEUEING),
            )
            .order_by(Subscription.id)
            .with_for_update(read=True)
        )
    ).all()
    for organisation_id, subscription_id, *_ in rows:
        found[organisation_id].append(subscription_id)
    if rows and notify:
        _woke(session)
    return found


def deliveries_of(
    messages: Sequence[Message], now: datetime, subscribed: Mapping[uuid.UUID, list[uuid.UUID]]
) -> tuple[list[dict[str, Any]], list[audit.Entry]]:
    """One pending delivery per subscription of each message's recipient, as rows to insert,
    and a log entry for each (pure)."""
    rows, entries = [], []
    for message in messages:
        for subscription_id in subscribed[message.recipient_organisation_id]:
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "message_id": message.id,
                    "subscription_id": subscription_id,
                    "state": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
            entries.append(
                audit.about_message(
                    message,
                    "delivery.queued",
                    at=now,
                    details={"subscription_id": str(subscription_id)},
                )
            )
    return rows, entries


async def enqueue(
    session: AsyncSession,
    messages: Sequence[Message],
    now: datetime,
    *,
    subscribed: Mapping[uuid.UUID, list[uuid.UUID]] | None = None,
) -> None:
    """Queue, now, one pending delivery per subscription of each message's recipient (as
    `subscribers` finds them, or has found them in this transaction: `subscribed`), each
    logged. (Intake and the other use cases queue through app/messages/signed.store.)"""
    if subscribed is None:
        subscribed = await subscribers(session, (m.recipient_organisation_id for m in messages))
    rows, entries = deliveries_of(messages, now, subscribed)
    await flush_pending(session)  # the messages, if they are pending
    if rows:
        await (await session.connection()).execute(insert(Delivery.__table__), rows)
    await audit.append_many(session, entries)


async def wake_workers(session: AsyncSession) -> None:
    """On PostgreSQL, tell listening workers that there are messages to number or deliveries
    due, when this transaction commits (a rolled-back one tells nobody). Once per transaction
    is enough: PostgreSQL folds the same notification sent twice in one transaction into one."""
    if session.bind.dialect.name == "postgresql" and not _woken(session):
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
        _woke(session)


def _woken(session: AsyncSession) -> bool:
    """Whether the session's transaction has told the workers already."""
    told = session.info.get(WOKEN)
    return told is not None and told() is session.sync_session.get_transaction()


def _woke(session: AsyncSession) -> None:
    session.info[WOKEN] = weakref.ref(session.sync_session.get_transaction())


def previous_secret_until(subscription: Any, now: datetime) -> datetime | None:
    """Until when the previous secret still signs; None if it does not (any more)."""
    until = subscription.previous_secret_expires_at
    if subscription.previous_secret and until is not None and until > now:
        return until
    return None


def signing_secrets(subscription: Any, now: datetime) -> tuple[str, ...]:
    """The secrets a delivery is signed with now: the current one first, then the previous one
    while its overlap lasts. Each gives one `v1,` entry of the webhook-signature header."""
    if previous_secret_until(subscription, now) is None or not subscription.previous_secret:
        return (subscription.secret,)
    return (subscription.secret, subscription.previous_secret)


def jws_of(data_keys: DataKeys, message: Message) -> str | None:
    """A stored message's compact JWS, opened; None once purged, revoked before delivery, or
    withdrawn with the consent it relied on."""
    return opened(data_keys, message.id, message)


def opened(data_keys: DataKeys, message_id: uuid.UUID, stored: Any) -> str | None:
    """jws_of, from the message's stored columns (an ORM object or a row of them)."""
    if stored.revoked_at or stored.withdrawn_at or not stored.jws_sealed or not stored.jws_key_id:
        return None  # retention.purge and revocation settle its deliveries in their transaction
    sealed = Sealed(stored.jws_key_id, stored.jws_sealed)
    return data_keys.open(sealed, place("message", "jws_sealed", message_id)).decode()
