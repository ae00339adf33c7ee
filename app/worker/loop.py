"""The delivery worker: claim due deliveries, send them, record the outcomes, commit.

The worker owns its transactions (app/worker/transactions.py): each pass of the pool records the
outcomes of the attempts that ended meanwhile and claims the next deliveries, in one short
transaction (one commit for them all), so a slow receiver never holds a database transaction open.
Claims run ahead of the sends (app/worker/pool.py), so sending never waits for the database,
and a pass waits until most of them have started, so that one pass settles and claims many
deliveries in one transaction, however many. It also purges data past its retention period, once per
EXCHANGE_RETENTION_PURGE_INTERVAL_SECONDS, in a transaction of its own, and once a second
sequences new log entries into the log's tree and signs a checkpoint when one is due
(app/audit/tree.py), in another, and once per EXCHANGE_DEADLINE_SCAN_SECONDS looks for deadlines
passed unmet and sends their alerts (app/alerts/scan.py), a batch per transaction. Before each
pass claims, it numbers the messages committed since
the last in their recipients' inboxes (app/messages/sequencer.py): a delivery waits for its
message's number, which its webhook carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import tree as log_tree
from app.audit.signer import LogSigner, load_log_signer
from app.keys.sealing import DataKeys
from app.messages import leases
from app.messages.signed import Signing
from app.messages.wakeup import Listener
from app.messages.webhook import CONNECT_TIMEOUT_SECONDS, TOTAL_TIMEOUT_SECONDS
from app.notices import retention
from app.settings import Settings
from app.worker.pool import Pool, attempt, claims_ahead, lease_renewal_due, still_ready
from app.worker.transactions import (
    alert_overdue,
    claim,
    number,
    record_and_claim,
    record_outcomes,
    release,
    renew,
)

log = logging.getLogger("exchange.worker")
LOG_INTERVAL_SECONDS = 1.0  # how often a worker sequences the exchange log


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's trusted roots, read once per process."""
    return ssl.create_default_context()


def http_client(timeout_seconds: float = TOTAL_TIMEOUT_SECONDS) -> httpx.AsyncClient:
    """The client webhooks are sent with: bounded timeouts, no redirects, no ambient proxies,
    certificates verified against the system's roots."""
    connect = min(CONNECT_TIMEOUT_SECONDS, timeout_seconds)
    return httpx.AsyncClient(
        verify=_tls(),
        timeout=httpx.Timeout(timeout_seconds, connect=connect),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": "nps-exchange"},
    )


async def run_once(
    sessions: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    settings: Settings,
    *,
    data_keys: DataKeys,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Number what was committed unnumbered, claim what is due now (a batch), deliver it all,
    and return how many were attempted. One pass, for tests and tools: run_forever is the
    worker, and shares itself out."""
    await number(sessions)
    claimed = await claim(
        sessions, settings, data_keys, now=clock(), limit=settings.worker_batch_size
    )
    await asyncio.gather(
        *(deliver(sessions, client, settings, item=item, clock=clock) for item in claimed)
    )
    return len(claimed)


async def deliver(
    sessions: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    settings: Settings,
    *,
    item: leases.Claimed,
    clock: Callable[[], datetime],
) -> str | None:
    """One attempt at one claimed delivery, then its outcome recorded in a transaction of its
    own: a slow receiver never holds a database transaction open."""
    outcome = await attempt(client, settings, item)
    return (await record_outcomes(sessions, settings, [(item, outcome)], clock=clock))[0]


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
    *,
    data_keys: DataKeys,
    signing: Signing | None,
    stop: asyncio.Event,
    log_signer: LogSigner | None = None,
) -> None:
    """Deliver until `stop` is set, then finish the attempts under way (graceful drain).

    Up to worker_concurrency attempts are in flight at once, at most
    worker_subscription_concurrency of them to any one subscription. Claims run ahead: a
    claimed delivery waits, ready, until its subscription and the pool have room, and starts
    the moment an attempt ends, so that sending never waits for the database. Each pass records
    the outcomes that ended meanwhile and claims again (up to claims_ahead ready per
    subscription, ROUNDS_AHEAD rounds of worker_concurrency in all), and renews the leases of
    claims that have waited long enough for it (lease_renewal_due), so that none waits its lease
    out however slow its receiver. A pass runs when three quarters of what the last one left
    ready has started (so a pass settles and claims many deliveries, not one), when nothing is
    ready and the last claim may have left some due (Pace), when PostgreSQL notifies that
    messages were stored or numbered, or after worker_poll_seconds (SQLite's only wake-up).
    Each pass first numbers the messages committed since the last (app/messages/sequencer.py).
    An ended attempt is recorded within RECORD_WITHIN_SECONDS. What is still ready when the
    worker stops is released, due again at once.
    """
    log_signer = log_signer or load_log_signer(settings)
    kick = asyncio.Event()
    stop_waiter = asyncio.ensure_future(stop.wait())
    stop_waiter.add_done_callback(lambda _: kick.set())
    listener = Listener(settings.database_url, kick)
    pool = Pool(client, settings, kick=kick, stop=stop)
    worker = Worker(
        sessions, settings, data_keys, pool=pool, log_signer=log_signer, signing=signing
    )
    try:
        while not stop.is_set():
            kick.clear()
            pool.pace.passing()
            await listener.ensure()
            if await worker.run_pass():
                continue  # there may be more due: claim again while there is room
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.worker_poll_seconds):
                    await kick.wait()
        await worker.drain()
    finally:
        pool.pace.passing()
        stop_waiter.cancel()
        await listener.close()


class Worker:
    """The worker's passes over the database, for its pool: each numbers the messages committed
    since the last, purges and sequences the log when they are due, renews the leases of claims
    that have waited long, then records what ended and claims again in one transaction."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        data_keys: DataKeys,
        *,
        pool: Pool,
        log_signer: LogSigner,
        signing: Signing | None = None,
    ) -> None:
        self.sessions, self.settings, self.data_keys = sessions, settings, data_keys
        self.pool, self.log_signer, self.signing = pool, log_signer, signing
        self._loop = asyncio.get_running_loop()
        self._next_purge = self._next_log = self._next_sweep = self._loop.time()
        self._next_scan = self._loop.time()

    async def run_pass(self) -> bool:
        """One pass; whether its claim took all the room it had (more may be due at once)."""
        await number(self.sessions)  # before claiming: a delivery waits for its message's number
        await self._housekeeping()
        await self._renew_waiting()
        return await self._record_and_claim()

    async def drain(self) -> None:
        """Once stopped: the attempts under way finished and their outcomes recorded, and what
        is still ready released, due again at once."""
        await self.pool.finish()
        ended = self.pool.take_ended()
        if ended:
            try:
                await record_outcomes(
                    self.sessions, self.settings, ended, clock=lambda: datetime.now(UTC)
                )
            except Exception as exc:  # a traceback could carry SQL parameters: type only
                log.error("recording deliveries failed (%s)", type(exc).__name__)
        await release(self.sessions, list(self.pool.ready))

    async def _housekeeping(self) -> None:
        """The retention purge, once per its interval; the log's sequencer, at most once a
        second (its scan is bounded), with a sweep once per log_tree.SWEEP_SECONDS; the overdue
        scan (app/alerts/scan.py), once per deadline_scan_seconds, if the worker signs."""
        now = self._loop.time()
        if now >= self._next_purge:
            self._next_purge = now + self.settings.retention_purge_interval_seconds
            await _purge(self.sessions, self.settings)
        now = self._loop.time()
        if now >= self._next_log:
            self._next_log = now + LOG_INTERVAL_SECONDS
            sweep = now >= self._next_sweep
            if sweep:
                self._next_sweep = now + log_tree.SWEEP_SECONDS
            await _advance_log(self.sessions, self.settings, self.log_signer, sweep=sweep)
        now = self._loop.time()
        if self.signing is not None and now >= self._next_scan:
            self._next_scan = now + self.settings.deadline_scan_seconds
            await alert_overdue(self.sessions, self.signing, now=datetime.now(UTC))

    async def _renew_waiting(self) -> None:
        """Renew the leases of what is ready once any is due for it (lease_renewal_due)."""
        lease = timedelta(seconds=self.settings.delivery_lease_seconds)
        whole_attempt = timedelta(seconds=self.settings.webhook_timeout_seconds)
        now = datetime.now(UTC)
        if any(
            lease_renewal_due(item, now, lease=lease, whole_attempt=whole_attempt)
            for item in self.pool.ready
        ):
            asked = list(self.pool.ready)
            kept = await renew(self.sessions, asked, now + lease)
            if kept is not None:  # attempts that ended meanwhile may have started some
                self.pool.keep_ready(still_ready(self.pool.ready, asked, kept))

    async def _record_and_claim(self) -> bool:
        pool = self.pool
        room = pool.room()
        claimed = await record_and_claim(
            self.sessions,
            self.settings,
            self.data_keys,
            ended=pool.take_ended(),
            room=room,
            waiting=pool.waiting(),
            ahead=claims_ahead(self.settings),
        )
        pool.add(claimed)
        pool.pace.passed(len(pool.ready), more_due=len(claimed) >= room)
        return bool(claimed) and len(claimed) == room


async def _purge(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    try:
        purged = await purge_expired(sessions, settings)
        if purged.notices:
            log.info("purged %d notices past retention", purged.notices)
    except Exception as exc:
        log.error("retention purge failed (%s)", type(exc).__name__)


async def advance_log(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    signer: LogSigner,
    *,
    now: datetime | None = None,
    sweep: bool = False,
) -> tuple[int, bool]:
    """Sequence what was logged since the last pass and sign a checkpoint if one is due, in a
    transaction of its own: how many entries it sequenced, and whether it signed. Cheap when
    there is nothing to do (a few index lookups)."""
    now = now or datetime.now(UTC)
    async with sessions() as session, session.begin():
        sequenced = await log_tree.sequence(session, now, sweep=sweep)
        signed = await log_tree.checkpoint(
            session,
            signer,
            now,
            every_entries=settings.checkpoint_every_entries,
            every_seconds=settings.checkpoint_every_seconds,
        )
    return sequenced, signed


async def _advance_log(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    signer: LogSigner,
    *,
    sweep: bool,
) -> None:
    try:
        await advance_log(sessions, settings, signer, sweep=sweep)
    except Exception as exc:  # a traceback could carry SQL parameters: type only
        log.error("sequencing the log failed (%s)", type(exc).__name__)
