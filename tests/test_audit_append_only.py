"""The exchange log refuses to be changed through SQL, on both databases (migration 0006)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import is_sqlite

CHANGES = {
    "update": "UPDATE audit_entry SET action = 'nothing.happened'",
    "update-details": "UPDATE audit_entry SET details = '{}'",
    "delete": "DELETE FROM audit_entry",
    "delete-one": "DELETE FROM audit_entry WHERE id = (SELECT min(id) FROM audit_entry)",
    "truncate": "TRUNCATE audit_entry",
}


@pytest.mark.parametrize("change", CHANGES)
async def test_an_entry_once_written_cannot_be_changed_or_removed(
    world, example, database_url, change
):
    if change == "truncate" and is_sqlite(database_url):
        pytest.skip("SQLite has no TRUNCATE")
    assert (await world.post_notice(example)).status_code == 202
    before = await world.sql("SELECT id, action, details FROM audit_entry ORDER BY id")
    assert before
    with pytest.raises(DBAPIError, match="append-only"):
        async with world.sessions() as session, session.begin():
            await session.execute(text(CHANGES[change]))
    assert await world.sql("SELECT id, action, details FROM audit_entry ORDER BY id") == before


async def test_new_entries_are_still_written(world, example):
    assert (await world.post_notice(example)).status_code == 202
    first = len(await world.sql("SELECT id FROM audit_entry"))
    assert (await world.post_notice(example)).status_code == 202
    assert len(await world.sql("SELECT id FROM audit_entry")) > first
