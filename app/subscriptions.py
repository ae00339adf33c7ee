"""The use cases of a recipient's webhook subscriptions. Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.delivery import DestinationRefused, IPNetwork, new_secret, resolve_destination
from app.errors import Problem, invalid
from app.identity import Caller
from app.models import Subscription


async def subscribe(
    session: AsyncSession,
    caller: Caller,
    url: str,
    *,
    allowed: Sequence[IPNetwork],
    now: datetime,
) -> Subscription:
    """A new active subscription with a fresh whsec_ secret, if the URL may be called at all."""
    try:
        await resolve_destination(url, allowed)
    except DestinationRefused as exc:
        raise invalid([{"pointer": "/url", "detail": str(exc)}]) from None
    subscription = Subscription(
        id=uuid.uuid4(),
        organisation_id=caller.organisation_id,
        url=url,
        secret=new_secret(),
        status="active",
        created_at=now,
    )
    session.add(subscription)
    _log(session, "subscription.created", caller, subscription, now)
    return subscription


async def own(session: AsyncSession, caller: Caller, subscription_id: uuid.UUID) -> Subscription:
    """The caller's subscription; another organisation's answers 404, as if it did not exist."""
    subscription = await session.get(Subscription, subscription_id)
    if subscription is None or subscription.organisation_id != caller.organisation_id:
        raise Problem(404, "Not found", "No such subscription.")
    return subscription


async def disable(
    session: AsyncSession, caller: Caller, subscription_id: uuid.UUID, now: datetime
) -> None:
    """Stop delivering to it; its messages stay in the inbox."""
    subscription = await own(session, caller, subscription_id)
    if subscription.status != "disabled":
        subscription.status, subscription.disabled_at = "disabled", now
        _log(session, "subscription.disabled", caller, subscription, now)


def _log(
    session: AsyncSession, action: str, caller: Caller, subscription: Subscription, now: datetime
) -> None:
    audit.append(
        session,
        action,
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        details={"subscription_id": str(subscription.id)},
    )
