"""Delivery by real `exchange worker` processes against a real loopback receiver.

Each worker is the console script, started as a subprocess with EXCHANGE_* settings, on the
test's database and data dir (its data keys open the sealed payloads), logging to a file. Waits
poll the database or the receiver; their deadlines guard against hanging and time nothing, save
that with a 30 s poll, a 25 s deadline shows whether LISTEN/NOTIFY woke the workers.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from subprocess import DEVNULL
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.messages.retry import JITTER
from app.storage.db import is_sqlite
from app.storage.models import Delivery, DeliveryAttempt, Subscription
from tests.helpers.receiver import Received, Receiver, running_receiver

ROOT = Path(__file__).resolve().parents[2]
EXCHANGE = str(Path(sys.executable).parent / "exchange")
RECIPIENTS = ("N07", "SMS-LEEDS")  # the example notice's recipients
DELIVERED = re.compile(r"delivery ([0-9a-f-]{36}) attempt \d+: delivered")


@pytest.fixture
def postgresql_only(database_url: str) -> None:
    if is_sqlite(database_url):
        pytest.skip("workers in separate processes claiming at once is PostgreSQL's case")


# --- worker processes --------------------------------------------------------------------


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def delivered(self) -> set[uuid.UUID]:
        """The deliveries this worker logged as delivered."""
        return {uuid.UUID(m) for m in DELIVERED.findall(self.log_text())}


def worker_env(settings, **overrides: str) -> dict[str, str]:
    """The environment of a worker on the test's database and data dir; overrides are settings
    without their EXCHANGE_ prefix, e.g. worker_concurrency="4"."""
    python_path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(python_path),  # the code under test, not an installed copy
        "EXCHANGE_DATABASE_URL": settings.database_url,
        "EXCHANGE_DATA_DIR": str(settings.data_dir),
        "EXCHANGE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8",
        "EXCHANGE_WORKER_POLL_SECONDS": "0.1",
        **{f"EXCHANGE_{name.upper()}": value for name, value in overrides.items()},
    }


@asynccontextmanager
async def worker_processes(tmp_path: Path) -> AsyncIterator[Callable[[dict], Awaitable[Worker]]]:
    """start(env) starts a worker; whatever is still running at the end is killed."""
    started: list[Worker] = []

    async def start(env: dict[str, str]) -> Worker:
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                EXCHANGE, "worker", env=env, stdin=DEVNULL, stdout=DEVNULL, stderr=stderr
            )
        started.append(Worker(process, log))
        return started[-1]

    try:
        yield start
    finally:
        for worker in started:
            if worker.process.returncode is None:
                worker.process.kill()
                await worker.process.wait()


async def stop(*workers: Worker) -> list[int]:
    """SIGTERM to each, then their exit codes once they have drained (the finally of
    worker_processes kills any that do not stop)."""
    for worker in workers:
        if worker.process.returncode is None:  # one that died already shows its own code
            worker.process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(asyncio.gather(*(w.process.wait() for w in workers)), 20)
    except TimeoutError:
        logs = "\n".join(w.log_text()[-2000:] for w in workers if w.process.returncode is None)
        raise AssertionError(f"a worker did not stop on SIGTERM:\n{logs}") from None


async def until(
    condition: Callable[[], Awaitable[bool]],
    what: str,
    running: Iterable[Worker] = (),
    within: float = 25.0,
) -> None:
    """Poll until `condition` holds; fail at once if a worker that should be running exits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        for worker in running:
            if worker.process.returncode is not None:
                raise AssertionError(
                    f"a worker exited ({worker.process.returncode}) before {what}:\n"
                    + worker.log_text()[-3000:]
                )
        if loop.time() > deadline:
            raise AssertionError(f"no {what} within {within} s")
        await asyncio.sleep(0.05)


# --- the exchange's side -----------------------------------------------------------------


async def subscribe(world, code: str, url: str) -> str:
    response = await world.api.post(
        "/v1/subscriptions", json={"url": url}, headers=await world.headers(code)
    )
    assert response.status_code == 201, response.text
    return response.json()["secret"]


async def post(world, example) -> dict[str, uuid.UUID]:
    """Post the example; its message id per recipient code."""
    response = await world.post_notice(example)
    assert response.status_code == 202, response.text
    routed = {r["organisation_code"]: r["message_id"] for r in response.json()["recipients"]}
    assert set(routed) == set(RECIPIENTS) and None not in routed.values(), routed
    return {code: uuid.UUID(message_id) for code, message_id in routed.items()}


@dataclass(frozen=True)
class Row:
    id: uuid.UUID
    state: str
    attempts: int
    leased: bool
    message_id: uuid.UUID
    path: str  # of its subscription's URL


async def deliveries(world) -> list[Row]:
    async with world.sessions() as session:
        rows = await session.execute(
            select(
                Delivery.id,
                Delivery.state,
                Delivery.attempts,
                Delivery.leased_until,
                Delivery.message_id,
                Subscription.url,
            ).join(Subscription, Subscription.id == Delivery.subscription_id)
        )
        return [
            Row(i, state, attempts, leased is not None, message, urlsplit(url).path)
            for i, state, attempts, leased, message, url in rows
        ]


async def attempts_of(world) -> list[DeliveryAttempt]:
    async with world.sessions() as session:
        return list(
            await session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.attempted_at))
        )


def all_delivered(world, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        rows = await deliveries(world)
        return len(rows) == count and all(r.state == "delivered" for r in rows)

    return check


def answered(receiver: Receiver) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(received(receiver))

    return check


def received(receiver: Receiver) -> list[Received]:
    with receiver.lock:
        return list(receiver.requests)


def arrivals(requests: Iterable[Received]) -> Counter[tuple[str, uuid.UUID]]:
    """How often each message reached each endpoint: (path, webhook-id) -> count."""
    return Counter((r.path, uuid.UUID(r.headers["webhook-id"])) for r in requests)


# --- the tests ---------------------------------------------------------------------------


async def test_a_receiver_that_fails_three_times_gets_the_same_message_then_takes_it(
    world, example, settings, tmp_path
):
    with running_receiver(script=[500, 500, 500]) as receiver:
        secret = await subscribe(world, "N07", receiver.url)
        message_id = (await post(world, example))["N07"]
        env = worker_env(settings, webhook_retry_schedule="0.2,0.2,0.2,0.2")
        async with worker_processes(tmp_path) as start:
            worker = await start(env)
            await until(all_delivered(world, 1), "delivery", [worker])
            assert await stop(worker) == [0], worker.log_text()
        requests = received(receiver)

    assert [r.answered for r in requests] == [500, 500, 500, 204]
    assert {r.headers["webhook-id"] for r in requests} == {str(message_id)}
    assert len({r.body for r in requests}) == 1  # a retry resends the same bytes
    for request in requests:  # each attempt signed afresh, for its own timestamp
        Webhook(secret).verify(request.body, request.headers)
    [row] = await deliveries(world)
    assert (row.state, row.attempts, row.leased, row.message_id) == (
        "delivered",
        4,
        False,
        message_id,
    )
    attempts = await attempts_of(world)
    assert [a.status_code for a in attempts] == [500, 500, 500, 204]
    assert {a.delivery_id for a in attempts} == {row.id}
    # No retry went out before the schedule's wait (less its jitter) had passed.
    earliest = timedelta(seconds=0.2) * (1 - JITTER)
    gaps = [b.attempted_at - a.attempted_at for a, b in pairwise(attempts)]
    assert all(gap >= earliest for gap in gaps), gaps
    log = worker.log_text()
    assert f"delivery {row.id} attempt 4: delivered" in log
    person = example["person"]
    assert person["noms_number"] not in log and person["family_name"] not in log  # ids only


async def test_the_worker_process_does_not_log_a_subscribers_url(
    world, example, settings, tmp_path
):
    token = "url-token-" + uuid.uuid4().hex  # receivers put credentials in query strings
    with running_receiver() as receiver:
        await subscribe(world, "N07", f"{receiver.url}?token={token}")
        await post(world, example)
        async with worker_processes(tmp_path) as start:
            worker = await start(worker_env(settings))
            await until(all_delivered(world, 1), "delivery", [worker])
            assert await stop(worker) == [0], worker.log_text()
        [request] = received(receiver)
    assert request.path.endswith(token)  # it was sent to that URL ...
    log = worker.log_text()
    assert "attempt 1: delivered" in log
    assert token not in log  # ... and only the delivery's id was logged


@pytest.mark.usefixtures("postgresql_only")
async def test_three_worker_processes_deliver_every_message_exactly_once(
    world, example, settings, tmp_path, record_property
):
    """60 notices to two recipients with two endpoints each: 120 messages, 240 webhooks.

    The poll is 30 s, so what is posted while the workers run (and once they are idle) can only
    be picked up through LISTEN/NOTIFY wake-ups or the end of another attempt in time."""
    before, during, idle, endpoints = 40, 15, 5, 2
    webhooks = (before + during + idle) * len(RECIPIENTS) * endpoints
    with running_receiver(delay=0.1) as receiver:  # keeps a lone early starter from doing all
        for code in RECIPIENTS:
            for n in range(endpoints):
                await subscribe(world, code, f"{receiver.url}/{code}/{n}")
        await world.headers("MDI")
        messages = [await post(world, example) for _ in range(before)]
        env = worker_env(
            settings,
            worker_poll_seconds="30",
            worker_concurrency="4",
            worker_batch_size="4",
            worker_subscription_concurrency="2",
        )
        async with worker_processes(tmp_path) as start:
            workers = [await start(env) for _ in range(3)]
            await until(answered(receiver), "a first webhook", workers)
            messages += [await post(world, example) for _ in range(during)]  # while they work
            count = len(messages) * len(RECIPIENTS) * endpoints
            await until(all_delivered(world, count), f"{count} deliveries", workers)
            messages += [await post(world, example) for _ in range(idle)]  # once they are idle
            await until(all_delivered(world, webhooks), f"{webhooks} deliveries", workers)
            assert await stop(*workers) == [0, 0, 0], [w.log_text()[-2000:] for w in workers]
        requests = received(receiver)

    expected = {
        (f"/hooks/{code}/{n}", by_code[code])
        for by_code in messages
        for code in RECIPIENTS
        for n in range(endpoints)
    }
    assert len(expected) == webhooks
    got = arrivals(requests)
    duplicates = sum(got.values()) - len(got)
    record_property("duplicate_webhooks", duplicates)
    assert set(got) == expected  # every message at every endpoint
    assert duplicates == 0, [key for key, n in got.items() if n > 1]
    rows = await deliveries(world)
    assert {(r.path, r.message_id) for r in rows} == expected
    assert {(r.state, r.attempts, r.leased) for r in rows} == {("delivered", 1, False)}
    assert len(await attempts_of(world)) == webhooks
    # Every worker did part of the work, and no delivery was recorded by two of them.
    shares = [worker.delivered() for worker in workers]
    record_property("shares", [len(share) for share in shares])
    assert all(shares), [len(share) for share in shares]
    assert sum(len(share) for share in shares) == webhooks
    assert set().union(*shares) == {r.id for r in rows}


async def test_a_worker_killed_mid_batch_loses_nothing_once_another_takes_over(
    world, example, settings, tmp_path, record_property
):
    """At least once: the deliveries the killed worker had in flight stay leased until their
    lease runs out, then a new worker sends them again."""
    notices = 10
    with running_receiver(delay=1.0) as receiver:  # slow: a batch is always in flight
        for code in RECIPIENTS:
            await subscribe(world, code, f"{receiver.url}/{code}")
        messages = [await post(world, example) for _ in range(notices)]
        total = notices * len(RECIPIENTS)
        env = worker_env(
            settings,
            webhook_timeout_seconds="1.5",
            delivery_lease_seconds="3",
            webhook_retry_schedule="0.2,0.2,0.2,0.2,0.2",
            worker_concurrency="4",
            worker_batch_size="4",
        )
        async with worker_processes(tmp_path) as start:
            doomed = await start(env)

            async def mid_batch() -> bool:
                rows = await deliveries(world)
                return bool(received(receiver)) and any(
                    r.state == "pending" and r.leased for r in rows
                )

            await until(mid_batch, "webhooks answered with others in flight", [doomed])
            doomed.process.kill()
            assert await doomed.process.wait() == -signal.SIGKILL
            rows = await deliveries(world)
            abandoned = {r.message_id for r in rows if r.state == "pending" and r.leased}
            assert abandoned, "the worker was killed with nothing in flight"
            assert sum(r.state == "delivered" for r in rows) < total

            receiver.delay = 0.0
            successor = await start(env)
            await until(all_delivered(world, total), f"{total} deliveries", [successor])
            assert await stop(successor) == [0], successor.log_text()
        requests = received(receiver)

    rows = await deliveries(world)
    assert {(r.state, r.leased) for r in rows} == {("delivered", False)}
    expected = {(f"/hooks/{code}", by_code[code]) for by_code in messages for code in RECIPIENTS}
    got = arrivals(requests)
    assert set(got) == expected  # none lost
    # Anything that arrived twice was in flight at the kill, or had a failed attempt on record.
    failed = {a.delivery_id for a in await attempts_of(world) if a.status_code != 204}
    retried = {r.message_id for r in rows if r.id in failed}
    twice = {message_id for (_, message_id), n in got.items() if n > 1}
    assert twice <= abandoned | retried, (twice, abandoned, retried)
    assert {r.id for r in rows if r.message_id in abandoned} <= successor.delivered()
    record_property("in_flight_at_kill", len(abandoned))
    record_property("duplicate_webhooks", sum(got.values()) - len(got))
