"""The exchange log refuses to be changed through SQL, on both databases (migration 0006)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.storage.db import is_sqlite

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
    # (PostgreSQL refuses TRUNCATE of a table others reference before its trigger is asked.)
    with pytest.raises(DBAPIError, match=r"append-only|truncate a table referenced"):
        async with world.sessions() as session, session.begin():
            await session.execute(text(CHANGES[change]))
    assert await world.sql("SELECT id, action, details FROM audit_entry ORDER BY id") == before


@pytest.mark.parametrize("table", ["audit_leaf", "audit_node", "audit_checkpoint"])
async def test_the_tree_and_its_checkpoints_refuse_change_too(world, database_url, table):
    statements = [f"UPDATE {table} SET {KEY[table]} = 1", f"DELETE FROM {table}"]
    if not is_sqlite(database_url):
        statements.append(f"TRUNCATE {table}")
    async with world.sessions() as session, session.begin():
        await session.execute(text(ROWS[table]), {"h": bytes(32)})
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            async with world.sessions() as session, session.begin():
                await session.execute(text(statement))
    assert len(await world.sql(f"SELECT * FROM {table}")) == 1


KEY = {"audit_leaf": "leaf_index", "audit_node": "level", "audit_checkpoint": "tree_size"}
ROWS = {
    "audit_leaf": "INSERT INTO audit_leaf (leaf_index, entry_id, leaf_hash, sequenced_at)"
    " SELECT 0, min(id), :h, CURRENT_TIMESTAMP FROM audit_entry",
    "audit_node": "INSERT INTO audit_node (level, position, hash) VALUES (0, 0, :h)",
    "audit_checkpoint": "INSERT INTO audit_checkpoint (tree_size, root_hash, signed_at, note)"
    " VALUES (0, :h, CURRENT_TIMESTAMP, 'note')",
}


async def test_new_entries_are_still_written(world, example):
    assert (await world.post_notice(example)).status_code == 202
    first = len(await world.sql("SELECT id FROM audit_entry"))
    assert (await world.post_notice(example)).status_code == 202
    assert len(await world.sql("SELECT id FROM audit_entry")) > first
