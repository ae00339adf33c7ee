"""Webhook subscriptions of a recipient organisation, and recovering their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response
from sqlalchemy import select

from app.api.callers import SubscriptionWriter
from app.api.deps import Now, Session, SettingsDep
from app.api.pages import Cursor, Limit, after, next_offset
from app.api.problems import PROBLEMS, documented
from app.messages import recovery, subscriptions
from app.messages.outbox import previous_secret_until
from app.storage.models import Subscription
from app.wire.schemas import DeliveryState
from app.wire.subscriptions import (
    DeliveryAttemptOut,
    DeliveryOut,
    DeliveryPage,
    Recovery,
    RecoveryIn,
    SubscriptionChange,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPage,
    SubscriptionSecretRotated,
    SubscriptionSecretRotationIn,
)

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])
NOT_ACTIVE = {**PROBLEMS, 409: documented("The subscription is not active (or is deleted).")}


def _out(s: Subscription, now: datetime) -> SubscriptionOut:
    return SubscriptionOut(
        id=s.id,
        url=s.url,
        status=s.status,
        disabled_reason=s.disabled_reason,
        disabled_at=s.disabled_at,
        previous_secret_expires_at=previous_secret_until(s, now),
        created_at=s.created_at,
    )


@router.post(
    "", name="create", status_code=201, response_model=SubscriptionCreated, responses=PROBLEMS
)
async def create(
    body: SubscriptionIn,
    response: Response,
    caller: SubscriptionWriter,
    session: Session,
    settings: SettingsDep,
    now: Now,
) -> SubscriptionCreated:
    """Register a webhook endpoint. The signing secret is in this answer and never again."""
    subscription = await subscriptions.subscribe(
        session, caller, str(body.url), allowed=settings.webhook_allowed_cidrs, now=now
    )
    response.headers["Location"] = f"/v1/subscriptions/{subscription.id}"
    response.headers["Cache-Control"] = "no-store"
    return SubscriptionCreated(**_out(subscription, now).model_dump(), secret=subscription.secret)


@router.get("", name="list", response_model=SubscriptionPage, responses=PROBLEMS)
async def list_subscriptions(
    caller: SubscriptionWriter,
    session: Session,
    now: Now,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> SubscriptionPage:
    """Your organisation's subscriptions, deleted ones included, without their secrets."""
    rows = (
        await session.scalars(
            select(Subscription)
            .where(Subscription.organisation_id == caller.organisation_id)
            .order_by(Subscription.created_at, Subscription.id)
            .offset(after(cursor))
            .limit(limit)
        )
    ).all()
    return SubscriptionPage(
        items=[_out(s, now) for s in rows], next_cursor=next_offset(cursor, len(rows), limit)
    )


@router.get("/{subscription_id}", name="get", response_model=SubscriptionOut, responses=PROBLEMS)
async def get(
    subscription_id: uuid.UUID, caller: SubscriptionWriter, session: Session, now: Now
) -> SubscriptionOut:
    """One subscription, without its secret."""
    return _out(await subscriptions.own(session, caller, subscription_id), now)


@router.patch(
    "/{subscription_id}", name="change", response_model=SubscriptionOut, responses=NOT_ACTIVE
)
async def change(
    subscription_id: uuid.UUID,
    body: SubscriptionChange,
    caller: SubscriptionWriter,
    session: Session,
    settings: SettingsDep,
    now: Now,
) -> SubscriptionOut:
    """Re-enable a disabled subscription (whatever disabled it, a 410 Gone included: its pending
    deliveries then go out), disable it, or give it a new URL. A deleted one is 409."""
    subscription = await subscriptions.change(
        session,
        caller,
        subscription_id,
        status=body.status,
        url=str(body.url) if body.url is not None else None,
        allowed=settings.webhook_allowed_cidrs,
        now=now,
    )
    return _out(subscription, now)


@router.delete("/{subscription_id}", name="delete", status_code=204, responses=PROBLEMS)
async def delete(
    subscription_id: uuid.UUID, caller: SubscriptionWriter, session: Session, now: Now
) -> Response:
    """Stop delivering to this endpoint for good: its pending deliveries are dead. Messages
    stay in the inbox."""
    await subscriptions.delete(session, caller, subscription_id, now=now)
    return Response(status_code=204)


@router.post(
    "/{subscription_id}/secret-rotation",
    name="rotate-secret",
    response_model=SubscriptionSecretRotated,
    responses=NOT_ACTIVE,
)
async def rotate_secret(
    subscription_id: uuid.UUID,
    response: Response,
    caller: SubscriptionWriter,
    session: Session,
    now: Now,
    body: Annotated[SubscriptionSecretRotationIn | None, Body()] = None,
) -> SubscriptionSecretRotated:
    """A new signing secret, shown in this answer only. Until previous_secret_expires_at each
    delivery carries two signatures, one with each secret, so the receiver can switch over."""
    overlap = (body or SubscriptionSecretRotationIn()).overlap_seconds
    subscription = await subscriptions.rotate_secret(
        session, caller, subscription_id, overlap=timedelta(seconds=overlap), now=now
    )
    response.headers["Cache-Control"] = "no-store"
    return SubscriptionSecretRotated(
        **_out(subscription, now).model_dump(), secret=subscription.secret
    )


@router.get(
    "/{subscription_id}/deliveries",
    name="list-deliveries",
    response_model=DeliveryPage,
    responses=PROBLEMS,
)
async def list_deliveries(
    subscription_id: uuid.UUID,
    caller: SubscriptionWriter,
    session: Session,
    state: Annotated[DeliveryState | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> DeliveryPage:
    """The subscription's deliveries, newest first, each with every attempt made (time, status
    code, latency, error). Never a payload: fetch the message from the inbox."""
    records = await recovery.deliveries(
        session, caller, subscription_id, state=state, offset=after(cursor), limit=limit
    )
    return DeliveryPage(
        items=[_delivery(r) for r in records],
        next_cursor=next_offset(cursor, len(records), limit),
    )


def _delivery(record: recovery.DeliveryRecord) -> DeliveryOut:
    d = record.delivery
    return DeliveryOut(
        id=d.id,
        message_id=d.message_id,
        sequence=record.sequence,
        kind=record.kind,
        state=d.state,
        attempt_count=d.attempts,
        next_attempt_at=d.next_attempt_at if d.state == "pending" else None,
        delivered_at=d.delivered_at,
        last_error=d.last_error,
        attempts=[
            DeliveryAttemptOut.model_validate(a, from_attributes=True) for a in record.attempts
        ],
    )


@router.post(
    "/{subscription_id}/recover",
    name="recover",
    status_code=202,
    response_model=Recovery,
    responses=NOT_ACTIVE,
)
async def recover(
    subscription_id: uuid.UUID,
    body: RecoveryIn,
    caller: SubscriptionWriter,
    session: Session,
    now: Now,
) -> Recovery:
    """Send again every message of yours created in [since, until) that may still be sent, to
    this subscription, oldest first: at most 10,000 a call. When not `complete`, call again
    with `since` = `next_since`. Receivers dedupe by webhook-id, which is the message id."""
    done = await recovery.recover(
        session, caller, subscription_id, since=body.since, until=body.until, now=now
    )
    return Recovery(queued=done.queued, complete=done.complete, next_since=done.next_since)
