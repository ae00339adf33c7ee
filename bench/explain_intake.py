"""Every SQL statement one POST /v1/release-notices runs, and its plan on this database.

Posts one notice in process (bench/posting.py's world), recording each statement the app sends
with its parameters; then replays them in order, each under EXPLAIN (ANALYZE, BUFFERS), in one
transaction that is rolled back, so the plans are those of the real statements on the data as
the POST found it. PostgreSQL only.

    python -m bench.explain_intake DATABASE_URL DATA_DIR [again]

("again": the notice is about a person who has a notice already, as when someone is released a
second time.)
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event

from app.storage import migrate
from bench.grow import dsn
from bench.posting import bench, post_notices

Statement = tuple[str, tuple[Any, ...]]

# What one POST wrote, undone (its messages are still unnumbered: no sequencer runs, so no inbox
# counter moved).
UNDO = [
    "DELETE FROM audit_entry WHERE notice_id = $1",
    "DELETE FROM delivery WHERE message_id IN (SELECT id FROM message WHERE notice_id = $1)",
    "DELETE FROM message WHERE notice_id = $1",
    "DELETE FROM disclosure WHERE notice_id = $1",
    "DELETE FROM consent_carrier WHERE notice_id = $1",
    "DELETE FROM consent WHERE notice_id = $1",
    "DELETE FROM idempotency_key WHERE notice_id = $1",
    "DELETE FROM release_notice WHERE id = $1",
]


async def captured_post(database_url: str, data_dir: Path, *, again: bool) -> list[Statement]:
    """The statements of one POST (not of getting the token before it), in the order sent.
    With `again`, the notice is about a person with a notice already: a second release."""
    person = uuid.uuid4().int % 10**8
    async with bench(database_url, data_dir) as world:
        if again:
            await post_notices(world, 1, first=person)
        await world.headers()  # the token first: its statements are not intake's
        sent: list[Statement] = []

        def record(conn, cursor, statement, parameters, context, executemany) -> None:
            many = executemany and parameters and isinstance(parameters[0], tuple | list)
            for one in parameters if many else [parameters]:
                sent.append((statement, tuple(one or ())))

        engine = world.api._transport.app.state.engine.sync_engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", record)
        try:
            await post_notices(world, 1, first=person, again=again)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return sent


async def explained(database_url: str, statements: list[Statement]) -> list[tuple[str, str]]:
    """Each statement with its EXPLAIN (ANALYZE, BUFFERS), run in order on the data as the POST
    found it: in one transaction that first undoes the POST, and is rolled back."""
    connection = await asyncpg.connect(dsn(database_url))
    plans = []
    try:
        # The POST's notice, the newest: its id is in an array of the one statement that writes
        # every table (app/storage/batch.py), so it is read back rather than picked out of it.
        notice_id = await connection.fetchval(
            "SELECT id FROM release_notice ORDER BY received_at DESC LIMIT 1"
        )
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute("SET LOCAL session_replication_role = replica")  # the log's too
        for undo in UNDO:
            await connection.execute(undo, notice_id)
        await connection.execute("SET LOCAL session_replication_role = origin")
        for statement, parameters in statements:
            if statement.strip().upper() in ("BEGIN", "COMMIT", "ROLLBACK", "SELECT 1"):
                continue
            rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
            plans.append((statement, "\n".join(r[0] for r in rows)))
        await transaction.rollback()
    finally:
        await connection.close()
    return plans


async def main(database_url: str, data_dir: str, again: bool) -> None:
    statements = await captured_post(database_url, Path(data_dir), again=again)
    for statement, plan in await explained(database_url, statements):
        print("=" * 100)
        print(" ".join(statement.split())[:600])
        print("-" * 100)
        print(plan)


if __name__ == "__main__":
    migrate.upgrade(sys.argv[1])
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:] == ["again"]))
