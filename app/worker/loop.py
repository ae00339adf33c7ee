"""The delivery worker: claim due deliveries, send them, record the outcomes, commit.

The worker owns its transactions (app/worker/transactions.py): each pass of the pool records the
outcomes of the attempts that ended meanwhile and claims the next deliveries, in one short
transaction (one commit for them all), so a slow receiver never holds a database transaction open.
Claims run ahead of the sends (up to claims_ahead per subscription, their leases renewed while they
wait), so sending never waits for the database, and a pass waits until most of them have
started, so that one pass settles and claims many deliveries: a pass costs a few milliseconds
whatever its size. It also purges data past its retention period, once per
EXCHANGE_RETENTION_PURGE_INTERVAL_SECONDS, in a transaction of its own, and once a second
sequences new log entries into the log's tree and signs a checkpoint when one is due
(app/audit/tree.py), in another. Before each pass claims, it numbers the messages committed since
the last in their recipients' inboxes (app/messages/sequencer.py): a delivery waits for its
message's number, which its webhook carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import tree as log_tree
from app.audit.signer import LogSigner, load_log_signer
from app.keys.sealing import DataKeys
from app.messages import leases
from app.messages.wakeup import Listener
from app.messages.webhook import (
    CONNECT_TIMEOUT_SECONDS,
    TOTAL_TIMEOUT_SECONDS,
    Outcome,
    send,
    webhook_body,
)
from app.notices import retention
from app.settings import Settings
from app.worker.transactions import claim, number, record, record_and_claim, release, renew

log = logging.getLogger("exchange.worker")
LOG_INTERVAL_SECONDS = 1.0  # how often a worker sequences the exchange log
ROUNDS_AHEAD = 10  # claims_ahead: this many rounds of attempts claimed ahead of the pool
RECORD_WITHIN_SECONDS = 0.05  # an ended attempt waits at most this long for its pass


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's trusted roots, read once per process (reading them takes tens of ms)."""
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
    data_keys: DataKeys,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Number what was committed unnumbered, claim what is due now (a batch), deliver it all,
    and return how many were attempted. One pass, for tests and tools: run_forever is the
    worker, and shares itself out."""
    await number(sessions)
    claimed = await claim(sessions, settings, data_keys, clock(), settings.worker_batch_size, None)
    await asyncio.gather(*(deliver(sessions, client, settings, item, clock) for item in claimed))
    return len(claimed)


async def attempt(client: httpx.AsyncClient, settings: Settings, item: leases.Claimed) -> Outcome:
    """One attempt at one claimed delivery; no database."""
    body = webhook_body(
        kind=item.kind,
        message_id=str(item.message_id),
        notice_id=str(item.notice_id),
        supersedes=str(item.supersedes) if item.supersedes else None,
        sequence=item.sequence,
        jws=item.jws,
        created_at=item.created_at,
    )
    return await send(
        client,
        url=item.url,
        signing_secrets=item.secrets,
        message_id=str(item.message_id),
        body=body,
        allowed=settings.webhook_allowed_cidrs,
        deadline_seconds=settings.webhook_timeout_seconds,
    )


async def deliver(
    sessions: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    settings: Settings,
    item: leases.Claimed,
    clock: Callable[[], datetime],
) -> str | None:
    """One attempt at one claimed delivery, then its outcome recorded in a transaction of its
    own: a slow receiver never holds a database transaction open."""
    outcome = await attempt(client, settings, item)
    return (await record(sessions, settings, [(item, outcome)], clock))[0]


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


def lease_lasts(item: leases.Claimed, now: datetime, whole_attempt: timedelta) -> bool:
    """PURE: whether a claimed delivery may start now: its lease must outlast a whole attempt,
    or another worker could claim and send it while this one still is."""
    return item.leased_until is None or now + whole_attempt < item.leased_until


def claims_ahead(settings: Settings) -> int:
    """PURE: how many claims of one subscription the pool may hold waiting for room: ROUNDS_AHEAD
    rounds of its attempts. Their leases are renewed while they wait (lease_renewal_due)."""
    return settings.worker_subscription_concurrency * ROUNDS_AHEAD


def lease_renewal_due(
    item: leases.Claimed, now: datetime, lease: timedelta, whole_attempt: timedelta
) -> bool:
    """PURE: whether a claim waiting for room should have its lease renewed now: once it has
    less left than halfway from a whole lease down to a whole attempt. Passes come at least every
    worker_poll_seconds, so it is renewed well before it could no longer start."""
    if item.leased_until is None:
        return False
    return item.leased_until - now < whole_attempt + (lease - whole_attempt) / 2


def still_ready(
    ready: Iterable[leases.Claimed], asked: Sequence[leases.Claimed], kept: Sequence[leases.Claimed]
) -> list[leases.Claimed]:
    """PURE: what waits once a renewal of `asked` came back `kept`, from what `ready` holds now
    (attempts that ended while it ran may have started some: they stay started, never queued
    again): the renewed in their new lease, those asked and not kept given up, the rest as they
    were. Told apart by lease, not delivery: the same delivery may be claimed again."""
    renewed = {(c.delivery_id, c.lease_token): c for c in kept}
    was_asked = {(c.delivery_id, c.lease_token) for c in asked}
    return [
        renewed.get(key, item)
        for item in ready
        if (key := (item.delivery_id, item.lease_token)) in renewed or key not in was_asked
    ]


async def run_forever(
    sessions: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    settings: Settings,
    data_keys: DataKeys,
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
    loop = asyncio.get_running_loop()
    log_signer = log_signer or load_log_signer(settings)
    kick = asyncio.Event()
    stop_waiter = asyncio.ensure_future(stop.wait())
    stop_waiter.add_done_callback(lambda _: kick.set())
    listener = Listener(settings.database_url, kick)
    in_flight: dict[asyncio.Task[Outcome], leases.Claimed] = {}
    per_subscription: Counter[uuid.UUID] = Counter()  # attempts in flight
    ready: deque[leases.Claimed] = deque()  # claimed, waiting for room
    ended: list[tuple[leases.Claimed, Outcome]] = []  # attempts over, outcomes not yet recorded
    cap, ahead = settings.worker_subscription_concurrency, claims_ahead(settings)
    most_ready = settings.worker_concurrency * ROUNDS_AHEAD
    whole_attempt = timedelta(seconds=settings.webhook_timeout_seconds)
    lease = timedelta(seconds=settings.delivery_lease_seconds)
    pace = Pace()

    def start_ready() -> None:
        """Start what is ready, oldest first, while the pool and its subscription have room;
        never with less of its lease left than a whole attempt may take."""
        for _ in range(len(ready)):
            item = ready.popleft()
            if len(in_flight) >= settings.worker_concurrency:
                ready.appendleft(item)
                return
            if per_subscription[item.subscription_id] >= cap:
                ready.append(item)
            elif not lease_lasts(item, datetime.now(UTC), whole_attempt):
                log.warning("delivery %s waited out its lease: not sent", item.delivery_id)
            else:
                task = asyncio.create_task(attempt(client, settings, item))
                in_flight[task] = item
                per_subscription[item.subscription_id] += 1
                task.add_done_callback(finished)
                pace.started += 1

    def finished(task: asyncio.Task[Outcome]) -> None:
        item = in_flight.pop(task)
        per_subscription[item.subscription_id] -= 1
        if per_subscription[item.subscription_id] <= 0:
            del per_subscription[item.subscription_id]
        if task.cancelled() or task.exception() is not None:
            failure = "cancelled" if task.cancelled() else type(task.exception()).__name__
            log.error("delivery attempt failed (%s)", failure)  # its lease runs out: sent again
        else:
            ended.append((item, task.result()))
        if not stop.is_set():
            start_ready()
        if stop.is_set() or pace.due(len(ready)):
            kick.set()
        elif pace.recording is None:
            pace.recording = loop.call_later(RECORD_WITHIN_SECONDS, kick.set)

    async def record_ended() -> None:
        if ended:
            batch = ended[:]
            del ended[:]
            try:
                await record(sessions, settings, batch, lambda: datetime.now(UTC))
            except Exception as exc:  # a traceback could carry SQL parameters: type only
                log.error("recording deliveries failed (%s)", type(exc).__name__)

    next_purge = next_log = next_sweep = loop.time()
    try:
        while not stop.is_set():
            kick.clear()
            pace.passing()
            await listener.ensure()
            await number(sessions)  # before claiming: a delivery waits for its message's number
            if loop.time() >= next_purge:
                next_purge = loop.time() + settings.retention_purge_interval_seconds
                await _purge(sessions, settings)
            if loop.time() >= next_log:  # at most once a second: the sequencer's scan is bounded
                next_log = loop.time() + LOG_INTERVAL_SECONDS
                sweep = loop.time() >= next_sweep
                if sweep:
                    next_sweep = loop.time() + log_tree.SWEEP_SECONDS
                await _advance_log(sessions, settings, log_signer, sweep=sweep)
            now = datetime.now(UTC)
            if any(lease_renewal_due(item, now, lease, whole_attempt) for item in ready):
                asked = list(ready)
                kept = await renew(sessions, asked, now + lease)
                if kept is not None:  # attempts that ended meanwhile may have started some
                    left = still_ready(ready, asked, kept)
                    ready.clear()
                    ready.extend(left)
            room = min(most_ready - len(ready), settings.worker_batch_size)
            batch = ended[:]
            del ended[:]
            waiting = Counter(item.subscription_id for item in ready)
            claimed = await record_and_claim(
                sessions, settings, data_keys, batch, room, waiting, ahead
            )
            ready.extend(claimed)
            start_ready()
            pace.passed(len(ready), more_due=len(claimed) >= room)
            if claimed and len(claimed) == room:
                continue  # there may be more due: claim again while there is room
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.worker_poll_seconds):
                    await kick.wait()
        if in_flight:
            await asyncio.wait(list(in_flight))
        await record_ended()
        await release(sessions, list(ready))
    finally:
        pace.passing()
        stop_waiter.cancel()
        await listener.close()


class Pace:
    """When the pool's next pass is due: once `refill_after` attempts have started since the
    last (three quarters of what it left ready); once nothing is ready, if the last claim may
    have left deliveries due (it took all the room it had); else on a timer once an attempt has
    ended. At a trickle (each notification's pass claims a notice's deliveries, and that is all
    that is due) an ended attempt so waits for the next notification's pass, which records it
    and claims in one transaction, or for the timer: not a pass of its own. (A claim also falls
    short of its room when some of what it leased is withheld rather than sent; what is due
    after those then waits for the timer too, at most RECORD_WITHIN_SECONDS.)"""

    def __init__(self) -> None:
        self.started = 0
        self.refill_after = 1
        self.more_due = True
        self.recording: asyncio.TimerHandle | None = None

    def passing(self) -> None:
        if self.recording is not None:
            self.recording.cancel()
            self.recording = None

    def passed(self, ready: int, *, more_due: bool) -> None:
        self.started = 0
        self.refill_after = max(1, 3 * ready // 4)
        self.more_due = more_due

    def due(self, ready: int) -> bool:
        """PURE: whether a pass is due now, with this many claims ready."""
        return self.started >= self.refill_after or (not ready and self.more_due)


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
