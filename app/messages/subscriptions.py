"""The use cases of a recipient's webhook subscriptions. Never commits.

A subscription is active (delivered to), disabled (by its recipient, or because its endpoint
answered 410 Gone: its pending deliveries wait until it is active again) or deleted (for good:
its pending deliveries are dead). Its signing secret can be rotated with an overlap, during
which deliveries are signed with both secrets.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Caller
from app.audit import entries as audit
from app.messages import lock_order
from app.messages.outbox import DEAD, PENDING, wake_workers
from app.messages.webhook import DestinationRefused, IPNetwork, new_secret, resolve_destination
from app.storage.models import Delivery, Subscription
from app.wire.errors import Problem, invalid

ACTIVE, DISABLED, DELETED = "active", "disabled", "deleted"
BY_RECIPIENT = "recipient"  # a disabled_reason; the worker sets "gone" on a 410
DELETED_ERROR = "subscription deleted"


async def subscribe(
    session: AsyncSession,
    caller: Caller,
    url: str,
    *,
    allowed: Sequence[IPNetwork],
    now: datetime,
) -> Subscription:
    """A new active subscription with a fresh whsec_ secret, if the URL may be called at all."""
    await _vet(url, allowed)
    subscription = Subscription(
        id=uuid.uuid4(),
        organisation_id=caller.organisation_id,
        url=url,
        secret=new_secret(),
        status=ACTIVE,
        created_at=now,
    )
    session.add(subscription)
    _log(session, "subscription.created", caller, subscription=subscription, now=now)
    return subscription


async def own(
    session: AsyncSession, caller: Caller, subscription_id: uuid.UUID, *, lock: bool = False
) -> Subscription:
    """The caller's subscription; another organisation's answers 404, as if it did not exist.

    With `lock`, its row is locked to the end of the transaction and read afresh, so changes to
    it and to its deliveries (a deletion, a redelivery) happen one after the other.
    """
    query = select(Subscription).where(Subscription.id == subscription_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    subscription = await session.scalar(query)
    if subscription is None or subscription.organisation_id != caller.organisation_id:
        raise Problem(404, "Not found", "No such subscription.")
    return subscription


def not_active(subscription: Subscription) -> Problem:
    return Problem(
        409,
        "Subscription not active",
        f"This subscription is {subscription.status}: nothing is delivered to it.",
        extra={"subscription_status": subscription.status},
    )


async def change(
    session: AsyncSession,
    caller: Caller,
    subscription_id: uuid.UUID,
    *,
    status: str | None,
    url: str | None,
    allowed: Sequence[IPNetwork],
    now: datetime,
) -> Subscription:
    """Re-enable or disable a subscription, or move it to a new (vetted) URL.

    Re-enabling clears whatever disabled it, a 410 included; its pending deliveries are due at
    once (their attempts kept).
    A deleted subscription cannot be changed (409).
    """
    if status is None and url is None:
        raise invalid([{"pointer": "", "detail": "give a status, a url, or both"}])
    if url is not None:
        await _vet(url, allowed)  # before the row is locked: resolving may take a while
    subscription = await own(session, caller, subscription_id, lock=True)
    if subscription.status == DELETED:
        raise Problem(409, "Subscription deleted", "A deleted subscription cannot be changed.")
    if url is not None and url != subscription.url:
        subscription.url = url
        _log(session, "subscription.url_changed", caller, subscription=subscription, now=now)
    if status == ACTIVE and subscription.status != ACTIVE:
        await _enable(session, caller, subscription, now=now)
    elif status == DISABLED and subscription.status == ACTIVE:
        subscription.status, subscription.disabled_reason = DISABLED, BY_RECIPIENT
        subscription.disabled_at = now
        _log(
            session,
            "subscription.disabled",
            caller,
            subscription=subscription,
            now=now,
            reason=BY_RECIPIENT,
        )
    return subscription


async def _enable(
    session: AsyncSession, caller: Caller, subscription: Subscription, *, now: datetime
) -> None:
    """Clear whatever disabled the subscription; its pending deliveries are due at once."""
    was = subscription.disabled_reason
    subscription.status, subscription.disabled_reason = ACTIVE, None
    subscription.disabled_at = None
    # What waited goes out now, not at the next step of a back-off the recipient has fixed.
    due = await session.execute(
        update(Delivery)
        .where(
            lock_order.deliveries(
                Delivery.subscription_id == subscription.id,
                Delivery.state == PENDING,
                Delivery.next_attempt_at > now,
            )
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    await wake_workers(session)
    _log(
        session,
        "subscription.enabled",
        caller,
        subscription=subscription,
        now=now,
        was_disabled_by=was,
        made_due=due.rowcount,
    )


async def delete(
    session: AsyncSession, caller: Caller, subscription_id: uuid.UUID, *, now: datetime
) -> Subscription:
    """Stop delivering to it for good; its messages stay in the inbox. Its pending deliveries,
    one being sent included (its outcome is then not recorded), are dead. The subscription is
    locked first, then its deliveries in id order (app/messages/lock_order.py): a worker recording
    outcomes meanwhile waits, or is waited for, and never deadlocks with it."""
    subscription = await own(session, caller, subscription_id, lock=True)
    already = subscription.status == DELETED
    subscription.status = DELETED
    subscription.disabled_at = subscription.disabled_at or now
    # leased_until stays: a delivery claimed and never settled may have been sent (dispatch.retract)
    settled = await session.execute(
        update(Delivery)
        .where(
            lock_order.deliveries(
                Delivery.subscription_id == subscription.id, Delivery.state == PENDING
            )
        )
        .values(state=DEAD, lease_token=None, last_error=DELETED_ERROR)
        .execution_options(synchronize_session=False)
    )
    if not already or settled.rowcount:
        _log(
            session,
            "subscription.deleted",
            caller,
            subscription=subscription,
            now=now,
            dead=settled.rowcount,
        )
    return subscription


async def rotate_secret(
    session: AsyncSession,
    caller: Caller,
    subscription_id: uuid.UUID,
    *,
    overlap: timedelta,
    now: datetime,
) -> Subscription:
    """A new signing secret. The current one becomes the previous secret, which signs beside
    the new one until now + overlap (overlap 0: not at all); a previous secret still in its
    overlap is dropped."""
    subscription = await own(session, caller, subscription_id, lock=True)
    if subscription.status == DELETED:
        raise Problem(
            409, "Subscription deleted", "A deleted subscription has no secret to rotate."
        )
    keep = overlap > timedelta(0)
    subscription.previous_secret = subscription.secret if keep else None
    subscription.previous_secret_expires_at = now + overlap if keep else None
    subscription.secret = new_secret()
    _log(
        session,
        "subscription.secret_rotated",
        caller,
        subscription=subscription,
        now=now,
        overlap_seconds=int(overlap.total_seconds()),
    )
    return subscription


async def _vet(url: str, allowed: Sequence[IPNetwork]) -> None:
    try:
        await resolve_destination(url, allowed)
    except DestinationRefused as exc:
        raise invalid([{"pointer": "/url", "detail": str(exc)}]) from None


def _log(
    session: AsyncSession,
    action: str,
    caller: Caller,
    *,
    subscription: Subscription,
    now: datetime,
    **details: object,
) -> None:
    audit.append(
        session,
        action,
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        details={"subscription_id": str(subscription.id), **details},
    )
