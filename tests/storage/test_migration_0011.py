"""Migration 0011 on a database with notices and acknowledgements: the notices stored before it
have no release date in clear (their bodies hold it, until 0013 copies it), and going down
refuses while an appointment's day is stored, which it would lose.

Migrations run their own event loop, so they are called in a thread (as in
tests/storage/test_migrations.py).
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from app.storage import migrate
from app.storage.models import Acknowledgement, StoredNotice
from tests.helpers.acknowledgements import acknowledge, dated, recorded, released
from tests.helpers.consents import post, recipients


async def columns(world, table: str) -> set[str]:
    async with world.sessions() as session:
        connection = await session.connection()
        found = await connection.run_sync(lambda c: sa.inspect(c).get_columns(table))
    return {c["name"] for c in found}


async def dates(world) -> tuple[list[date | None], list[date | None]]:
    """The release dates of the notices, and the appointments' days, read as their columns."""
    async with world.sessions() as session:
        released = await session.scalars(sa.select(StoredNotice.release_date))
        days = await session.scalars(sa.select(Acknowledgement.appointment_date))
        return list(released), sorted(days, key=str)


async def downgrade_to(world, config: Any, revision: str) -> None:
    await world.sessions.kw["bind"].dispose()  # no pooled connection holds a table
    await asyncio.to_thread(command.downgrade, config, revision)


async def test_0011_keeps_what_was_stored_and_will_not_drop_an_appointments_day(
    world, example, clock, database_url, settings
):
    config = migrate.config(database_url)
    release = clock.today - timedelta(days=2)
    booked_on = clock.today + timedelta(days=4)
    message_id = recipients(await post(world, released(example, release)))["N07"]
    recorded(await acknowledge(world, message_id, {"status": "received"}), message_id)
    booked = dated("appointment_booked", booked_on)
    recorded(await acknowledge(world, message_id, booked), message_id)
    assert await dates(world) == ([release], [booked_on, None])
    try:
        with pytest.raises(RuntimeError, match="appointment dates stored"):
            await downgrade_to(world, config, "0010")
        async with world.sessions() as session, session.begin():
            await session.execute(sa.update(Acknowledgement).values(appointment_date=None))
        await downgrade_to(world, config, "0010")
        assert "release_date" not in await columns(world, "release_notice")
        assert "appointment_date" not in await columns(world, "acknowledgement")
        kept = await world.sql("SELECT status FROM acknowledgement ORDER BY recorded_at")
        assert kept == [("received",), ("appointment_booked",)]
    finally:
        await world.sessions.kw["bind"].dispose()
        await asyncio.to_thread(migrate.upgrade, database_url, "0011")
        try:
            at_0011 = await dates(world)
        finally:  # 0013 opens the bodies: it needs the data keys that sealed them
            await world.sessions.kw["bind"].dispose()
            keys = settings.sealing_keys_dir
            await asyncio.to_thread(migrate.upgrade, database_url, data_keys_dir=keys)
    # Stored before 0011: no release date in clear, until 0013 copies it from the body
    # (tests/storage/test_migration_0013.py).
    assert at_0011 == ([None], [None, None])
    assert await dates(world) == ([release], [None, None])
