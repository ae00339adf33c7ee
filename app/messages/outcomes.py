"""Recording the outcomes of delivery attempts: the delivery's new state, one attempt row and
one log entry per attempt, all in the caller's transaction.

A worker records every attempt that ended since its last pass at once (settle_many), in a few
bulk statements whatever their number: one UPDATE per distinct new state (a batch of successes
is one), one INSERT of the attempts and one of their log entries.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Update, bindparam, insert, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import entries as audit
from app.messages import lock_order, retry
from app.messages.leases import Claimed
from app.messages.outbox import DELIVERED, PENDING, SETTLED
from app.messages.webhook import Outcome
from app.storage.models import Delivery, DeliveryAttempt, Subscription

_delivery = Delivery.__table__


@functools.cache
def _settling(columns: tuple[str, ...]) -> Update:
    """The UPDATE that moves the deliveries whose (id, lease token) pairs are :leases, still
    pending, to the values :new_<column>: built once per set of columns."""
    return (
        update(_delivery)
        .where(lock_order.deliveries(_leased(), _delivery.c.state == PENDING))
        .values({c: bindparam(f"new_{c}", type_=_delivery.c[c].type) for c in columns})
        .returning(_delivery.c.id)
    )


def _leased() -> ColumnElement[bool]:
    return tuple_(_delivery.c.id, _delivery.c.lease_token).in_(bindparam("leases", expanding=True))


async def settle(
    session: AsyncSession,
    claimed: Claimed,
    outcome: Outcome,
    *,
    now: datetime,
    draw: float = 0.5,
    schedule: Sequence[timedelta] = retry.STANDARD_SCHEDULE,
) -> str | None:
    """Record one attempt: settle_many of one."""
    states = await settle_many(session, [(claimed, outcome)], now, draws=[draw], schedule=schedule)
    return states[0]


def new_values(claimed: Claimed, outcome: Outcome, plan: retry.Plan, *, now: datetime) -> dict:
    """PURE: what one attempt's outcome sets on its delivery, as retry.plan decided."""
    values: dict[str, object] = {
        "state": plan.state,
        "attempts": claimed.attempts + 1,
        "leased_until": None,
        "lease_token": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
    }
    if plan.state == DELIVERED:
        values["delivered_at"] = now
    elif plan.state == PENDING:
        values["next_attempt_at"] = plan.next_attempt_at
    return values


async def settle_many(
    session: AsyncSession,
    ended: Sequence[tuple[Claimed, Outcome]],
    now: datetime,
    *,
    draws: Sequence[float] | None = None,
    schedule: Sequence[timedelta] = retry.STANDARD_SCHEDULE,
) -> list[str | None]:
    """Record attempts and move each delivery on as retry.plan says: delivered, pending again
    (retried later), or dead; a 410 also disables the subscription. Each one's new state, in
    order.

    Only the claim that still holds the lease may do so. An attempt whose lease ran out (another
    worker has claimed the delivery since) records nothing and gets None: the newer claim's
    outcome stands. `draws` are the jitter's uniform draws (0.5: none).

    Locks are taken in the one order (app/messages/lock_order.py), so a DELETE of a subscription
    meanwhile never deadlocks with it.
    """
    draws = draws if draws is not None else [0.5] * len(ended)
    plans = _plans(ended, now, draws=draws, schedule=schedule)
    groups = _grouped(ended, plans, now)
    twice = len({claimed.delivery_id for claimed, _ in ended}) < len(ended)
    await _lock(session, ended, plans, every_delivery=twice or len(groups) > 1)
    if twice:
        # The same delivery twice (a lease ran out, and it was claimed again): which claim
        # holds the lease is told apart one at a time.
        states: list[str | None] = []
        for one, draw in zip(ended, draws, strict=True):
            states += await settle_many(session, [one], now, draws=[draw], schedule=schedule)
        return states
    settled = await _settle_groups(session, groups)
    done = [
        (claimed, outcome, plan)
        for (claimed, outcome), plan in zip(ended, plans, strict=True)
        if claimed.delivery_id in settled
    ]
    await _write_attempts(session, done, now)
    for claimed, _, plan in done:
        if plan.disable_subscription:
            await _disable_gone(session, claimed, now)
    return [
        plan.state if claimed.delivery_id in settled else None
        for (claimed, _), plan in zip(ended, plans, strict=True)
    ]


def _plans(
    ended: Sequence[tuple[Claimed, Outcome]],
    now: datetime,
    *,
    draws: Sequence[float],
    schedule: Sequence[timedelta],
) -> list[retry.Plan]:
    """PURE: what retry.plan makes of each attempt's outcome."""
    return [
        retry.plan(
            attempts_made=claimed.attempts + 1,
            status_code=outcome.status_code,
            retry_after=outcome.retry_after,
            now=now,
            draw=draw,
            schedule=schedule,
        )
        for (claimed, outcome), draw in zip(ended, draws, strict=True)
    ]


def _grouped(
    ended: Sequence[tuple[Claimed, Outcome]], plans: Sequence[retry.Plan], now: datetime
) -> dict[tuple, list[Claimed]]:
    """PURE: the claims by the new values their outcomes set (new_values), each group one
    UPDATE."""
    groups: dict[tuple, list[Claimed]] = {}
    for (claimed, outcome), plan in zip(ended, plans, strict=True):
        key = tuple(sorted(new_values(claimed, outcome, plan, now=now).items()))
        groups.setdefault(key, []).append(claimed)
    return groups


async def _settle_groups(
    session: AsyncSession, groups: dict[tuple, list[Claimed]]
) -> set[uuid.UUID]:
    """One UPDATE per group, of the deliveries still pending under their claims' leases: the
    ids of those it moved on."""
    connection = await session.connection()
    settled: set[uuid.UUID] = set()
    for key, members in groups.items():
        values = dict(key)
        result = await connection.execute(
            _settling(tuple(values)),
            {"leases": [(c.delivery_id, c.lease_token) for c in members]}
            | {f"new_{column}": value for column, value in values.items()},
        )
        settled.update(result.scalars())
    return settled


async def _write_attempts(
    session: AsyncSession, done: Sequence[tuple[Claimed, Outcome, retry.Plan]], now: datetime
) -> None:
    """The attempt rows and log entries of the attempts settled, one INSERT of each."""
    if not done:
        return
    connection = await session.connection()
    await connection.execute(
        insert(DeliveryAttempt.__table__),
        [
            {
                "delivery_id": claimed.delivery_id,
                "attempted_at": now,
                "status_code": outcome.status_code,
                "latency_ms": outcome.latency_ms,
                "error": outcome.error,
            }
            for claimed, outcome, _ in done
        ],
    )
    await audit.append_many(
        session,
        [
            audit.Entry(
                action=SETTLED[plan.state],
                at=now,
                notice_id=claimed.notice_id,
                message_id=claimed.message_id,
                subject_organisation_id=claimed.recipient_organisation_id,
                details={
                    "delivery_id": str(claimed.delivery_id),
                    "attempt": claimed.attempts + 1,
                    "status_code": outcome.status_code,
                    "error": outcome.error,
                },
            )
            for claimed, outcome, plan in done
        ],
    )


async def _lock(
    session: AsyncSession,
    ended: Sequence[tuple[Claimed, Outcome]],
    plans: Sequence[retry.Plan],
    *,
    every_delivery: bool,
) -> None:
    """Take settle_many's locks in the one order (app/messages/lock_order.py): the subscriptions
    that a 410 disables, then, where more than one statement writes them, every delivery, by id.
    (One statement locks its own in id order.)"""
    gone = [
        c.subscription_id for (c, _), p in zip(ended, plans, strict=True) if p.disable_subscription
    ]
    await lock_order.lock_subscriptions(session, gone)
    if every_delivery:
        leases = [(claimed.delivery_id, claimed.lease_token) for claimed, _ in ended]
        await lock_order.lock_deliveries(
            session, _leased(), _delivery.c.state == PENDING, leases=leases
        )


async def _disable_gone(session: AsyncSession, claimed: Claimed, now: datetime) -> None:
    """The endpoint answered 410 Gone: stop sending to it until its recipient re-enables it."""
    result = await session.execute(
        update(Subscription)
        .where(Subscription.id == claimed.subscription_id, Subscription.status == "active")
        .values(status="disabled", disabled_reason="gone", disabled_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        audit.append(
            session,
            "subscription.disabled",
            at=now,
            subject_organisation_id=claimed.recipient_organisation_id,
            details={"subscription_id": str(claimed.subscription_id), "reason": "gone"},
        )
