"""Webhook subscriptions of a recipient organisation."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy import select

from app import subscriptions
from app.api.deps import Now, SettingsDep
from app.api.pages import Cursor, Limit, after, next_offset
from app.auth import SubscriptionWriter
from app.db import Session
from app.models import Subscription
from app.problems import PROBLEMS
from app.schemas import SubscriptionCreated, SubscriptionIn, SubscriptionOut, SubscriptionPage

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])


def _out(s: Subscription) -> SubscriptionOut:
    return SubscriptionOut(id=s.id, url=s.url, status=s.status, created_at=s.created_at)


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
    return SubscriptionCreated(**_out(subscription).model_dump(), secret=subscription.secret)


@router.get("", name="list", response_model=SubscriptionPage, responses=PROBLEMS)
async def list_subscriptions(
    caller: SubscriptionWriter, session: Session, cursor: Cursor = None, limit: Limit = 50
) -> SubscriptionPage:
    """Your organisation's subscriptions, without their secrets."""
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
        items=[_out(s) for s in rows], next_cursor=next_offset(cursor, len(rows), limit)
    )


@router.get("/{subscription_id}", name="get", response_model=SubscriptionOut, responses=PROBLEMS)
async def get(
    subscription_id: uuid.UUID, caller: SubscriptionWriter, session: Session
) -> SubscriptionOut:
    """One subscription, without its secret."""
    return _out(await subscriptions.own(session, caller, subscription_id))


@router.delete("/{subscription_id}", name="delete", status_code=204, responses=PROBLEMS)
async def delete(
    subscription_id: uuid.UUID, caller: SubscriptionWriter, session: Session, now: Now
) -> Response:
    """Stop delivering to this endpoint. Messages stay in the inbox."""
    await subscriptions.disable(session, caller, subscription_id, now)
    return Response(status_code=204)
