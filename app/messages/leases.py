"""Leasing due deliveries to workers: claimed, renewed while they wait, released unsent.

Only deliveries whose message has its inbox number are claimed (app/messages/sequencer.py):
the webhook carries the number, so delivery waits for it.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    Update,
    bindparam,
    exists,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.keys.sealing import DataKeys, SealError
from app.messages import lock_order
from app.messages.outbox import PENDING, REVOKED, SUPERSEDED, opened, signing_secrets
from app.messages.supersession import superseded
from app.storage.models import Delivery, Message, Subscription

log = logging.getLogger("exchange.outbox")


@dataclass(frozen=True)
class Claimed:
    delivery_id: uuid.UUID
    lease_token: uuid.UUID
    attempts: int
    subscription_id: uuid.UUID
    url: str
    secrets: tuple[str, ...]  # the current secret, then a rotated-out one still in its overlap
    kind: str
    message_id: uuid.UUID
    notice_id: uuid.UUID
    supersedes: uuid.UUID | None
    recipient_organisation_id: uuid.UUID
    sequence: int
    jws: str
    created_at: datetime
    leased_until: datetime | None = None  # the lease this claim holds runs out then


_delivery, _subscription, _message = Delivery.__table__, Subscription.__table__, Message.__table__


def _now() -> BindParameter:
    return bindparam("now", type_=_delivery.c.next_attempt_at.type)


def _unleased() -> ColumnElement[bool]:
    return or_(_delivery.c.leased_until.is_(None), _delivery.c.leased_until < _now())


@functools.cache
def _claiming() -> tuple[Update, Select]:
    """A claim's statements, built once (a worker claims many times a second): the lease of the
    chosen rows still pending and unleased, until :until; then what it reads of each delivery
    it leased, as columns, not ORM objects."""
    lease = (
        update(_delivery)
        .where(
            _delivery.c.id.in_(bindparam("chosen", expanding=True)),
            _delivery.c.state == PENDING,
            _unleased(),
        )
        .values(
            leased_until=bindparam("until", type_=_delivery.c.leased_until.type),
            lease_token=bindparam("token", type_=_delivery.c.lease_token.type),
        )
        .returning(_delivery.c.id)
    )
    claimed = (
        select(
            _delivery.c.id.label("delivery_id"),
            _delivery.c.attempts,
            _subscription.c.id.label("subscription_id"),
            _subscription.c.url,
            _subscription.c.secret,
            _subscription.c.previous_secret,
            _subscription.c.previous_secret_expires_at,
            _message.c.id.label("message_id"),
            _message.c.kind,
            _message.c.notice_id,
            _message.c.supersedes_id,
            _message.c.recipient_organisation_id,
            _message.c.sequence,
            _message.c.created_at,
            _message.c.revoked_at,
            _message.c.withdrawn_at,
            _message.c.jws_sealed,
            _message.c.jws_key_id,
            superseded(_message.c.id).label("superseded"),
        )
        .select_from(
            _delivery.join(_subscription, _subscription.c.id == _delivery.c.subscription_id).join(
                _message, _message.c.id == _delivery.c.message_id
            )
        )
        .where(_delivery.c.id.in_(bindparam("claimed", expanding=True)))
    )
    return lease, claimed


async def claim_due(
    session: AsyncSession,
    data_keys: DataKeys,
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
    in_flight: Mapping[uuid.UUID, int] | None = None,
    per_subscription: int | None = None,
) -> list[Claimed]:
    """Lease up to `limit` due deliveries to this worker until now + lease.

    Oldest due first, and no more of any one subscription than makes `per_subscription` with
    what this worker already has `in_flight` to it: so one slow or failing endpoint cannot take
    every slot. On PostgreSQL the candidates are locked FOR UPDATE SKIP LOCKED, so
    workers never wait on each other; on SQLite (one writer at a time) the guarded UPDATE is the
    claim. Either way only rows still pending and unleased are taken, and an expired lease (a
    worker that died mid-send) makes a delivery due again.
    """
    token = uuid.uuid4()
    connection = await session.connection()
    leased_ids = await _lease(
        connection,
        locking=session.bind.dialect.name == "postgresql",
        token=token,
        now=now,
        until=now + lease,
        limit=limit,
        taken=Counter(in_flight or {}),
        per_subscription=per_subscription,
    )
    if not leased_ids:
        return []
    claimed, withheld = await _read_leased(
        connection, data_keys, leased_ids, token=token, now=now, until=now + lease
    )
    await _withhold(connection, withheld)
    return claimed


async def _lease(
    connection: AsyncConnection,
    *,
    locking: bool,
    token: uuid.UUID,
    now: datetime,
    until: datetime,
    limit: int,
    taken: Counter[uuid.UUID],
    per_subscription: int | None,
) -> list[uuid.UUID]:
    """Lease up to `limit` due deliveries under `token` until `until`: their ids. `taken` counts
    this worker's claims per subscription, those leased here included."""
    leased_ids: list[uuid.UUID] = []
    # On SQLite another claim may take a candidate between this SELECT and the UPDATE (its
    # guard then skips the row): look again, past the rows that are leased now.
    for _ in range(5):
        wanted = limit - len(leased_ids)
        busy = [
            s for s, n in taken.items() if per_subscription is not None and n >= per_subscription
        ]
        candidates = await connection.execute(
            _candidates(locking, bool(busy)),
            {
                "now": now,
                "limit": wanted if per_subscription is None else min(wanted * 4, 2000),
                "busy": busy,
            },
        )
        chosen = _choose(candidates, taken, wanted=wanted, per_subscription=per_subscription)
        if not chosen:
            break
        leased = {"chosen": chosen, "now": now, "until": until, "token": token}
        leased_ids += (await connection.execute(_claiming()[0], leased)).scalars()
        if len(leased_ids) == limit or locking:
            break  # PostgreSQL's row locks made every chosen row this claim's
    return leased_ids


def _choose(
    candidates: Iterable[tuple[uuid.UUID, uuid.UUID]],
    taken: Counter[uuid.UUID],
    *,
    wanted: int,
    per_subscription: int | None,
) -> list[uuid.UUID]:
    """PURE: up to `wanted` of the (delivery, subscription) candidates, in their order, none of
    a subscription that has `per_subscription` taken; each chosen is counted in `taken`."""
    chosen: list[uuid.UUID] = []
    for delivery_id, subscription_id in candidates:
        if per_subscription is not None and taken[subscription_id] >= per_subscription:
            continue
        taken[subscription_id] += 1
        chosen.append(delivery_id)
        if len(chosen) == wanted:
            break
    return chosen


async def _read_leased(
    connection: AsyncConnection,
    data_keys: DataKeys,
    leased_ids: list[uuid.UUID],
    *,
    token: uuid.UUID,
    now: datetime,
    until: datetime,
) -> tuple[list[Claimed], dict[str, list[uuid.UUID]]]:
    """What is sent of each delivery leased, and those never to be sent (by the state they
    take): their message was purged, revoked or withdrawn, or replaced by a later message, since
    it was queued. A payload that cannot be opened keeps its lease and is left out."""
    claimed: list[Claimed] = []
    withheld: dict[str, list[uuid.UUID]] = {REVOKED: [], SUPERSEDED: []}
    for row in await connection.execute(_claiming()[1], {"claimed": leased_ids}):
        try:
            jws = opened(data_keys, row.message_id, row)
        except SealError as exc:  # a missing data key: keep the lease, send the others
            log.error("delivery %s: its payload cannot be opened (%s)", row.delivery_id, exc)
            continue
        if jws is None or row.superseded:  # since it was queued: never to be sent
            # purged, revoked or withdrawn; or replaced by a later message (its recipient may
            # hold it, from an attempt under way when it was replaced: it is not sent again)
            withheld[REVOKED if jws is None else SUPERSEDED].append(row.delivery_id)
            continue
        claimed.append(
            Claimed(
                delivery_id=row.delivery_id,
                lease_token=token,
                attempts=row.attempts,
                subscription_id=row.subscription_id,
                url=row.url,
                secrets=signing_secrets(row, now),
                kind=row.kind,
                message_id=row.message_id,
                notice_id=row.notice_id,
                supersedes=row.supersedes_id,
                recipient_organisation_id=row.recipient_organisation_id,
                sequence=row.sequence,
                jws=jws,
                created_at=row.created_at,
                leased_until=until,
            )
        )
    return claimed, withheld


async def _withhold(connection: AsyncConnection, withheld: Mapping[str, list[uuid.UUID]]) -> None:
    """The deliveries never to be sent, each moved to its state and its lease given up."""
    for state, ids in withheld.items():
        if ids:
            await connection.execute(
                update(_delivery)
                .where(_delivery.c.id.in_(ids))
                .values(state=state, leased_until=None, lease_token=None, last_error="withheld")
            )


@functools.cache
def _active_subscriptions() -> Select[tuple[uuid.UUID]]:
    return select(_subscription.c.id).where(_subscription.c.status == "active")


@functools.cache
def _unnumbered() -> Select[tuple[uuid.UUID]]:
    """The messages still waiting for their inbox number: a few, on a partial index."""
    return select(_message.c.id).where(_message.c.sequence.is_(None))


def _candidates(locking: bool, skip_busy: bool) -> Select[tuple[uuid.UUID, uuid.UUID]]:
    """Due, unleased deliveries of active subscriptions whose message has its number, oldest
    due first (up to :limit); on PostgreSQL locked, skipping rows that other claims hold (not
    their messages: a subquery is not locked). With skip_busy, the subscriptions
    in :busy (already at their cap) are left out. Built once per shape, as every claim's
    statement is: a worker claims many times a second."""
    candidates = (
        select(_delivery.c.id, _delivery.c.subscription_id)
        .where(
            _delivery.c.state == PENDING,
            _delivery.c.next_attempt_at <= _now(),
            _delivery.c.subscription_id.in_(_active_subscriptions()),
            _delivery.c.message_id.not_in(_unnumbered()),
            _unleased(),
        )
        .order_by(_delivery.c.next_attempt_at)
        .limit(bindparam("limit", type_=Integer))
    )
    if skip_busy:
        candidates = candidates.where(
            _delivery.c.subscription_id.not_in(bindparam("busy", expanding=True))
        )
    if locking:
        candidates = candidates.with_for_update(skip_locked=True)
    return candidates


def _held(items: Sequence[Claimed], *conditions: ColumnElement[bool]) -> Update:
    """An UPDATE of the deliveries still pending under these claims' leases (that meet
    `conditions`), locked in id order."""
    leases = [(c.delivery_id, c.lease_token) for c in items]
    held = tuple_(_delivery.c.id, _delivery.c.lease_token).in_(leases)
    return update(_delivery).where(
        lock_order.deliveries(held, _delivery.c.state == PENDING, *conditions)
    )


async def release(session: AsyncSession, items: Sequence[Claimed]) -> None:
    """Give up claims not sent (a worker stopping): each delivery still pending under this
    lease is due again at once, for any worker, instead of when its lease runs out."""
    connection = await session.connection()
    await connection.execute(_held(items).values(leased_until=None, lease_token=None))


async def renew(
    session: AsyncSession, items: Sequence[Claimed], until: datetime
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Extend the leases of claims still waiting to be sent to `until`: the deliveries whose
    lease this worker still holds (none has run out and been claimed again since), of a
    subscription still active and a message neither revoked, withdrawn nor superseded since
    the claim. The others are not renewed: their claims are given up, and a claim finds them
    withheld. The (delivery, lease token) pairs renewed."""
    live = exists().where(
        _message.c.id == _delivery.c.message_id,
        _message.c.revoked_at.is_(None),
        _message.c.withdrawn_at.is_(None),
        ~superseded(_message.c.id),
    )
    held = _held(items, live, _delivery.c.subscription_id.in_(_active_subscriptions()))
    connection = await session.connection()
    renewed = held.values(leased_until=until).returning(_delivery.c.id, _delivery.c.lease_token)
    return {(delivery_id, token) for delivery_id, token in await connection.execute(renewed)}
