"""The worker's pool: the attempts in flight and the claims ready for them, in memory.

Claims run ahead of the sends (up to claims_ahead per subscription, their leases renewed while
they wait), so that sending never waits for the database: a claim starts the moment its
subscription and the pool have room. The pool notes each attempt's end and says when the next
pass is due (Pace); the passes themselves, which record and claim, are the loop's
(app/worker/loop.py). Nothing here opens a database transaction.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import httpx

from app.messages import leases
from app.messages.webhook import Outcome, send, webhook_body
from app.settings import Settings

log = logging.getLogger("exchange.worker")
ROUNDS_AHEAD = 10  # claims_ahead: this many rounds of attempts claimed ahead of the pool
RECORD_WITHIN_SECONDS = 0.05  # an ended attempt waits at most this long for its pass


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


def lease_lasts(item: leases.Claimed, now: datetime, whole_attempt: timedelta) -> bool:
    """PURE: whether a claimed delivery may start now: its lease must outlast a whole attempt,
    or another worker could claim and send it while this one still is."""
    return item.leased_until is None or now + whole_attempt < item.leased_until


def claims_ahead(settings: Settings) -> int:
    """PURE: how many claims of one subscription the pool may hold waiting for room: ROUNDS_AHEAD
    rounds of its attempts. Their leases are renewed while they wait (lease_renewal_due)."""
    return settings.worker_subscription_concurrency * ROUNDS_AHEAD


def lease_renewal_due(
    item: leases.Claimed, now: datetime, *, lease: timedelta, whole_attempt: timedelta
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


class Pool:
    """What the worker holds between its passes, in one place: the attempts in flight (and how
    many go to each subscription), the claims ready and waiting for room, and the attempts ended
    whose outcomes are not yet recorded. It starts attempts and notes their ends, and sets `kick`
    when a pass is due (Pace); the passes (Worker) record and claim for it."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        *,
        kick: asyncio.Event,
        stop: asyncio.Event,
    ) -> None:
        self.client, self.settings = client, settings
        self.kick, self.stop = kick, stop
        self.in_flight: dict[asyncio.Task[Outcome], leases.Claimed] = {}
        self.per_subscription: Counter[uuid.UUID] = Counter()  # attempts in flight
        self.ready: deque[leases.Claimed] = deque()  # claimed, waiting for room
        self.ended: list[tuple[leases.Claimed, Outcome]] = []  # outcomes not yet recorded
        self.pace = Pace()
        self._whole_attempt = timedelta(seconds=settings.webhook_timeout_seconds)
        self._loop = asyncio.get_running_loop()

    def room(self) -> int:
        """How many a pass may claim: up to ROUNDS_AHEAD rounds of worker_concurrency ready, at
        most a batch at a time."""
        most_ready = self.settings.worker_concurrency * ROUNDS_AHEAD
        return min(most_ready - len(self.ready), self.settings.worker_batch_size)

    def waiting(self) -> Counter[uuid.UUID]:
        """The claims ready and not yet started, per subscription."""
        return Counter(item.subscription_id for item in self.ready)

    def take_ended(self) -> list[tuple[leases.Claimed, Outcome]]:
        """The attempts ended since this was last asked, to be recorded by the caller."""
        ended, self.ended = self.ended, []
        return ended

    def add(self, claimed: Iterable[leases.Claimed]) -> None:
        """New claims, ready; started at once where there is room."""
        self.ready.extend(claimed)
        self.start_ready()

    def keep_ready(self, left: Iterable[leases.Claimed]) -> None:
        """What is ready from now on, in place of what was (still_ready after a renewal)."""
        left = list(left)
        self.ready.clear()
        self.ready.extend(left)

    def start_ready(self) -> None:
        """Start what is ready, oldest first, while the pool and its subscription have room;
        never with less of its lease left than a whole attempt may take."""
        cap = self.settings.worker_subscription_concurrency
        for _ in range(len(self.ready)):
            item = self.ready.popleft()
            if len(self.in_flight) >= self.settings.worker_concurrency:
                self.ready.appendleft(item)
                return
            if self.per_subscription[item.subscription_id] >= cap:
                self.ready.append(item)
            elif not lease_lasts(item, datetime.now(UTC), self._whole_attempt):
                log.warning("delivery %s waited out its lease: not sent", item.delivery_id)
            else:
                self._start(item)

    async def finish(self) -> None:
        """Wait for the attempts under way to end; none is started once `stop` is set."""
        if self.in_flight:
            await asyncio.wait(list(self.in_flight))

    def _start(self, item: leases.Claimed) -> None:
        task = asyncio.create_task(attempt(self.client, self.settings, item))
        self.in_flight[task] = item
        self.per_subscription[item.subscription_id] += 1
        task.add_done_callback(self._finished)
        self.pace.started += 1

    def _finished(self, task: asyncio.Task[Outcome]) -> None:
        item = self.in_flight.pop(task)
        self.per_subscription[item.subscription_id] -= 1
        if self.per_subscription[item.subscription_id] <= 0:
            del self.per_subscription[item.subscription_id]
        if task.cancelled() or task.exception() is not None:
            failure = "cancelled" if task.cancelled() else type(task.exception()).__name__
            log.error("delivery attempt failed (%s)", failure)  # its lease runs out: sent again
        else:
            self.ended.append((item, task.result()))
        if not self.stop.is_set():
            self.start_ready()
        if self.stop.is_set() or self.pace.due(len(self.ready)):
            self.kick.set()
        elif self.pace.recording is None:
            self.pace.recording = self._loop.call_later(RECORD_WITHIN_SECONDS, self.kick.set)


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
