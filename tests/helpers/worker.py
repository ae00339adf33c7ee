"""The delivery worker run by a test: one pass, or run_forever for as long as a block runs, and
waiting until a transaction waits on a lock."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from app.storage.db import is_sqlite
from app.worker.loop import (
    http_client,
    run_forever,
    run_once,
)


async def work(world, settings, at: datetime | None = None) -> int:
    """One worker pass (at this time, or now): how many deliveries it attempted."""
    async with http_client() as client:
        clock = (lambda: at) if at else (lambda: datetime.now(UTC))
        return await run_once(
            world.sessions, client, settings, data_keys=world.data_keys, clock=clock
        )


async def until_waiting_or_done(world, database_url: str, task: asyncio.Task) -> None:
    """Until another transaction waits on a lock (PostgreSQL: FOR SHARE holds the DELETE back),
    or the task has ended (it did not wait: the assertions after say whether that was wrong).
    SQLite shows no waiters: its writer waits on the file lock for a moment given here."""
    if is_sqlite(database_url):
        await asyncio.sleep(0.2)
        return
    waiting = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = asyncio.get_running_loop().time() + 30
    while not task.done() and (await world.sql(waiting))[0][0] == 0:
        assert asyncio.get_running_loop().time() < deadline, "the DELETE never reached its lock"
        await asyncio.sleep(0.01)


async def subscribe(world, code: str, url: str) -> tuple[str, str]:
    response = await world.api.post(
        "/v1/subscriptions", json={"url": url}, headers=await world.headers(code)
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["secret"]


@contextlib.asynccontextmanager
async def worker(world, settings):
    stop = asyncio.Event()
    async with http_client(settings.webhook_timeout_seconds) as client:
        task = asyncio.create_task(
            run_forever(
                world.sessions,
                client,
                settings,
                data_keys=world.data_keys,
                signing=world.signing,
                stop=stop,
            )
        )
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


def replace_settings(settings, **changes):
    return settings.model_copy(update=changes)
