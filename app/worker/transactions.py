"""The delivery worker's transactions: numbering messages, claiming, recording outcomes, or
both of the last in one pass; and the overdue scan's batches.

Each is a transaction of its own, opened here and committed here, and each fails alone: a
traceback could carry SQL parameters, so failures are logged by type only.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.alerts.scan import passed_ids, scan_due
from app.keys.sealing import DataKeys
from app.messages import leases, outcomes, sequencer
from app.messages.signed import Signing
from app.messages.webhook import Outcome
from app.settings import Settings
from app.storage.db import outage

log = logging.getLogger("exchange.worker")
ALERT_BATCH = 100  # deadlines looked at per transaction of the overdue scan


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    data_keys: DataKeys,
    *,
    now: datetime,
    limit: int,
    waiting: Mapping[uuid.UUID, int] | None = None,
    ahead: int | None = None,
) -> list[leases.Claimed]:
    """A claim in a transaction of its own. With `waiting` (the pool's claims not yet started,
    per subscription), no subscription gets more than `ahead` waiting at once."""
    async with sessions() as session, session.begin():
        return await _claim_in(
            session, settings, data_keys, now=now, limit=limit, waiting=waiting, ahead=ahead
        )


async def _claim_in(
    session: AsyncSession,
    settings: Settings,
    data_keys: DataKeys,
    *,
    now: datetime,
    limit: int,
    waiting: Mapping[uuid.UUID, int] | None,
    ahead: int | None,
) -> list[leases.Claimed]:
    return await leases.claim_due(
        session,
        data_keys,
        now=now,
        limit=limit,
        lease=timedelta(seconds=settings.delivery_lease_seconds),
        in_flight=waiting,
        per_subscription=ahead,
    )


async def record_outcomes(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    ended: list[tuple[leases.Claimed, Outcome]],
    *,
    clock: Callable[[], datetime],
) -> list[str | None]:
    """The outcomes of attempts that have ended, settled in one transaction: each delivery's
    state (None where its lease was lost). Should that transaction fail, each is settled again
    in one of its own, so that one outcome's fault costs no other its record."""
    draws = [random.random() for _ in ended]  # noqa: S311 - jitter, not a secret
    try:
        async with sessions() as session, session.begin():
            states = await outcomes.settle_many(
                session, ended, clock(), draws=draws, schedule=settings.retry_schedule
            )
    except Exception:
        if len(ended) == 1:
            raise
        states = []
        for one in ended:
            try:
                states += await record_outcomes(sessions, settings, [one], clock=clock)
            except Exception as exc:  # its lease runs out and it is sent again: at least once
                log.error(
                    "recording delivery %s failed (%s)", one[0].delivery_id, type(exc).__name__
                )
                states.append(None)
        return states
    _log_recorded(ended, states)
    return states


def _log_recorded(ended: list[tuple[leases.Claimed, Outcome]], states: list[str | None]) -> None:
    for (item, outcome), state in zip(ended, states, strict=True):
        log.info(
            "delivery %s attempt %d: %s (%s)",
            item.delivery_id,
            item.attempts + 1,
            state,
            outcome.status_code or outcome.error,
        )


async def record_and_claim(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    data_keys: DataKeys,
    *,
    ended: list[tuple[leases.Claimed, Outcome]],
    room: int,
    waiting: Mapping[uuid.UUID, int],
    ahead: int,
) -> list[leases.Claimed]:
    """The outcomes of attempts that have ended, then a claim of as many as there is room for,
    in one transaction: a pass of the pool costs one commit, not two. Should it fail, each is
    done again in a transaction of its own (recording then settles one outcome at a time if it
    must), so that a fault in one costs the other nothing."""
    if ended and room > 0:
        draws = [random.random() for _ in ended]  # noqa: S311 - jitter, not a secret
        now = datetime.now(UTC)
        try:
            async with sessions() as session, session.begin():
                states = await outcomes.settle_many(
                    session, ended, now, draws=draws, schedule=settings.retry_schedule
                )
                claimed = await _claim_in(
                    session, settings, data_keys, now=now, limit=room, waiting=waiting, ahead=ahead
                )
        except Exception as exc:  # a traceback could carry SQL parameters: type only
            log.warning("recording and claiming together failed (%s): apart", type(exc).__name__)
        else:
            _log_recorded(ended, states)
            return claimed
    if ended:
        try:
            await record_outcomes(sessions, settings, ended, clock=lambda: datetime.now(UTC))
        except Exception as exc:  # a traceback could carry SQL parameters: type only
            log.error("recording deliveries failed (%s)", type(exc).__name__)
    if room <= 0:
        return []
    try:
        return await claim(
            sessions,
            settings,
            data_keys,
            now=datetime.now(UTC),
            limit=room,
            waiting=waiting,
            ahead=ahead,
        )
    except Exception as exc:  # a traceback could carry SQL parameters: type only
        log.error("claiming deliveries failed (%s)", type(exc).__name__)
        return []


async def release(sessions: async_sessionmaker[AsyncSession], items: list[leases.Claimed]) -> None:
    if not items:
        return
    try:
        async with sessions() as session, session.begin():
            await leases.release(session, items)
    except Exception as exc:  # their leases run out instead
        log.error("releasing deliveries failed (%s)", type(exc).__name__)


async def renew(
    sessions: async_sessionmaker[AsyncSession], items: list[leases.Claimed], until: datetime
) -> list[leases.Claimed] | None:
    """Claims waiting for room, their leases extended to `until`; any whose lease was lost
    meanwhile (another worker has it), or whose message or subscription was stopped, is left out.
    None if the transaction failed: the claims keep their leases as they were, and one that runs
    out then stops its claim from starting."""
    try:
        async with sessions() as session, session.begin():
            kept = await leases.renew(session, items, until)
    except Exception as exc:  # a traceback could carry SQL parameters: type only
        log.error("renewing leases failed (%s)", type(exc).__name__)
        return None
    renewed = []
    for item in items:
        if (item.delivery_id, item.lease_token) in kept:
            renewed.append(replace(item, leased_until=until))
        else:
            log.warning("delivery %s: its claim was given up while it waited", item.delivery_id)
    return renewed


async def number(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Number the committed messages still unnumbered in their recipients' inboxes
    (app/messages/sequencer.py), a batch per transaction, until none is left: how many this one
    numbered. A failure (such as waiting out lock_timeout) is logged and left for the next
    pass: the messages stay unnumbered, and their deliveries wait, until one succeeds."""
    numbered = 0
    while True:
        try:
            async with sessions() as session, session.begin():
                batch = await sequencer.number(session)
        except Exception as exc:  # a traceback could carry SQL parameters: type only
            log.error("numbering messages failed (%s)", type(exc).__name__)
            return numbered
        numbered += batch
        if batch < sequencer.BATCH:
            return numbered


async def alert_overdue(
    sessions: async_sessionmaker[AsyncSession], signing: Signing, *, now: datetime
) -> int:
    """Look at every deadline passed by `now` (app/alerts/scan.py), a batch per transaction,
    until none is left; how many it looked at. A batch that fails is looked at again one
    deadline at a time, so that one that cannot be alerted (logged by its id, left open for the
    next pass) holds none of the others back."""
    looked = 0
    while True:
        try:
            async with sessions() as session, session.begin():
                batch = await scan_due(session, signing, now=now, limit=ALERT_BATCH)
        except Exception as exc:  # a traceback could carry SQL parameters: type only
            log.error("alerting overdue deadlines failed (%s)", type(exc).__name__)
            if outage(exc) is not None:  # the database, not a deadline: the next pass tries
                return looked
            try:
                return looked + await _one_at_a_time(sessions, signing, now=now)
            except Exception as again:
                log.error("alerting overdue deadlines failed (%s)", type(again).__name__)
                return looked
        looked += batch
        if batch < ALERT_BATCH:
            return looked


async def _one_at_a_time(
    sessions: async_sessionmaker[AsyncSession], signing: Signing, *, now: datetime
) -> int:
    looked, failed = 0, set[uuid.UUID]()
    while True:
        async with sessions() as session:
            next_ids = await passed_ids(session, now=now, limit=1, skip=failed)
        if not next_ids:
            return looked
        try:
            async with sessions() as session, session.begin():
                looked += await scan_due(session, signing, now=now, limit=1, only=next_ids[0])
        except Exception as exc:  # a traceback could carry SQL parameters: type only
            failed.add(next_ids[0])
            log.error("deadline %s could not be alerted (%s)", next_ids[0], type(exc).__name__)
