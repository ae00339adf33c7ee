"""Migration 0015 adds the care updates' table and its links, and goes down again, on both
databases; it refuses to go down while a care update is stored, since its messages, deliveries
and acknowledgements would outlive it as if they were a notice's.

Migrations run their own event loop, so they are called in a thread (as in
tests/storage/test_migrations.py).
"""

from __future__ import annotations

import asyncio

import pytest
from alembic import command

from app.storage import migrate
from tests.helpers.updates import SERVICE, from_service, release, shared


async def migrate_to(world, database_url: str, revision: str, down: bool = False) -> None:
    config = migrate.config(database_url)
    await world.sessions.kw["bind"].dispose()  # no pooled connection holds a table
    step = command.downgrade if down else command.upgrade
    try:
        await asyncio.to_thread(step, config, revision)
    finally:
        await world.sessions.kw["bind"].dispose()


async def test_0015_goes_down_and_up_again_without_updates(world, database_url):
    await migrate_to(world, database_url, "0014", down=True)
    tables = await world.sql(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'care_update'"
        if "postgresql" in database_url
        else "SELECT count(*) FROM sqlite_master WHERE name = 'care_update'"
    )
    assert tables[0][0] == 0
    await migrate_to(world, database_url, "head")
    assert (await world.sql("SELECT count(*) FROM care_update"))[0][0] == 0


async def test_0015_refuses_to_go_down_over_a_stored_update(world, example, clock, database_url):
    notice = await release(world, example, clock.today)
    await shared(world, notice["sent"][SERVICE], from_service(clock.today))
    with pytest.raises(RuntimeError, match="care updates are stored"):
        await migrate_to(world, database_url, "0014", down=True)
    assert (await world.sql("SELECT count(*) FROM care_update"))[0][0] == 1
