"""The delivery worker: claim due deliveries, send them, record the outcomes, commit.

The worker owns its transactions: one to claim (short), then one per settled delivery, so a
slow receiver never holds a database transaction open. It also purges data past its retention
period, once per EXCHANGE_RETENTION_PURGE_INTERVAL_SECONDS, in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import outbox, retention
from app.delivery import send, webhook_body
from app.sealing import DataKeys
from app.settings import Settings

log = logging.getLogger("exchange.worker")


def http_client() -> httpx.AsyncClient:
    """The client webhooks are sent with: bounded timeouts, no redirects, no ambient proxies."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(15.0, connect=5.0),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": "nps-exchange"},
    )


async def run_once(
    sessions: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    settings: Settings,
    data_keys: DataKeys,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Deliver what is due now; return how many deliveries were attempted."""
    async with sessions() as session, session.begin():
        claimed = await outbox.claim_due(
            session,
            data_keys,
            now=clock(),
            limit=settings.worker_batch_size,
            lease=timedelta(seconds=settings.delivery_lease_seconds),
        )
    if not claimed:
        return 0

    async def deliver(item: outbox.Claimed) -> None:
        body = webhook_body(
            kind=item.kind,
            message_id=str(item.message_id),
            notice_id=str(item.notice_id),
            supersedes=str(item.supersedes) if item.supersedes else None,
            sequence=item.sequence,
            jws=item.jws,
            created_at=item.created_at,
        )
        outcome = await send(
            client,
            url=item.url,
            secret=item.secret,
            message_id=str(item.message_id),
            body=body,
            allowed=settings.webhook_allowed_cidrs,
        )
        async with sessions() as session, session.begin():
            state = await outbox.settle(session, item, outcome, clock())
        log.info(
            "delivery %s attempt %d: %s (%s)",
            item.delivery_id,
            item.attempts + 1,
            state,
            outcome.status_code or outcome.error,
        )

    await asyncio.gather(*(deliver(item) for item in claimed))
    return len(claimed)


async def purge_expired(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: datetime | None = None,
) -> retention.Purged:
    """Purge everything past the retention period, a batch per transaction."""
    older_than = timedelta(days=settings.retention_days)
    now = now or datetime.now(UTC)
    notices = messages = 0
    while True:
        async with sessions() as session, session.begin():
            batch = await retention.purge(session, older_than=older_than, now=now)
        notices, messages = notices + batch.notices, messages + batch.messages
        if batch.notices == 0:
            return retention.Purged(notices, messages)


async def run_forever(
    sessions: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    settings: Settings,
    data_keys: DataKeys,
    stop: asyncio.Event,
) -> None:
    """Poll until `stop` is set; a batch under way is finished first (graceful drain)."""
    loop = asyncio.get_running_loop()
    next_purge = loop.time()
    while not stop.is_set():
        if loop.time() >= next_purge:
            next_purge = loop.time() + settings.retention_purge_interval_seconds
            try:
                purged = await purge_expired(sessions, settings)
                if purged.notices:
                    log.info("purged %d notices past retention", purged.notices)
            except Exception as exc:
                log.error("retention purge failed (%s)", type(exc).__name__)
        try:
            attempted = await run_once(sessions, client, settings, data_keys)
        except Exception as exc:  # a traceback could carry SQL parameters: log the type only
            log.error(
                "worker pass failed (%s); retrying after the poll interval", type(exc).__name__
            )
            attempted = 0
        if attempted:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.worker_poll_seconds)
