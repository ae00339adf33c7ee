"""A notice is either wholly accepted, with everything it will cause, or not at all (DESIGN 3.5).

Faults are injected into the real database, never by mocking: a table renamed away, or a
deferred foreign key that only a COMMIT checks. PostgreSQL's database is shared by the whole run,
so every fault is undone in a `finally`.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from app.storage.db import is_sqlite

PROBLEM = "application/problem+json"

# A deferred foreign key that every new delivery violates: the flush succeeds, the COMMIT fails.
TRIPWIRE_TABLES = [
    "CREATE TABLE tripwire_target (id INTEGER PRIMARY KEY)",
    "CREATE TABLE tripwire (target_id INTEGER"
    " REFERENCES tripwire_target (id) DEFERRABLE INITIALLY DEFERRED)",
]
TRIPWIRE_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER tripwire_on_delivery AFTER INSERT ON delivery"
        " BEGIN INSERT INTO tripwire (target_id) VALUES (1); END"
    ],
    "postgresql": [
        "CREATE FUNCTION tripwire_on_delivery() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN INSERT INTO tripwire (target_id) VALUES (1); RETURN NEW; END $$",
        "CREATE TRIGGER tripwire_on_delivery AFTER INSERT ON delivery"
        " FOR EACH ROW EXECUTE FUNCTION tripwire_on_delivery()",
    ],
}
TRIPWIRE_REMOVAL = {
    "sqlite": ["DROP TRIGGER IF EXISTS tripwire_on_delivery"],
    "postgresql": [
        "DROP TRIGGER IF EXISTS tripwire_on_delivery ON delivery",
        "DROP FUNCTION IF EXISTS tripwire_on_delivery()",
    ],
}
TRIPWIRE_TABLES_REMOVAL = ["DROP TABLE IF EXISTS tripwire", "DROP TABLE IF EXISTS tripwire_target"]


async def ddl(world, *statements: str) -> None:
    async with world.sessions() as session, session.begin():
        for statement in statements:
            await session.execute(text(statement))


@contextlib.asynccontextmanager
async def renamed_away(world, table: str) -> AsyncIterator[None]:
    """`table` is missing for the duration, so any write to it fails."""
    await ddl(world, f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        yield
    finally:
        await ddl(world, f"ALTER TABLE {table}_away RENAME TO {table}")


@contextlib.asynccontextmanager
async def failing_commit(world, dialect: str) -> AsyncIterator[None]:
    """Any transaction that adds a delivery fails at COMMIT, after all its statements ran."""
    try:
        await ddl(world, *TRIPWIRE_TABLES, *TRIPWIRE_TRIGGER[dialect])
        yield
    finally:
        await ddl(world, *TRIPWIRE_REMOVAL[dialect], *TRIPWIRE_TABLES_REMOVAL)


async def subscribe(world, code: str) -> None:
    response = await world.api.post(
        "/v1/subscriptions",
        json={"url": f"http://127.0.0.1:9/{code}"},
        headers=await world.headers(code),
    )
    assert response.status_code == 201, response.text


async def prepared(world, subscribers: tuple[str, ...] = ("N07", "SMS-LEEDS")) -> None:
    """Recipients subscribed (so the notice would queue deliveries) and MDI's token made."""
    for code in subscribers:
        await subscribe(world, code)
    await world.headers("MDI")


async def state(world) -> dict[str, int]:
    """Rows in every table, and every organisation's last inbox sequence number."""
    sequences = await world.sql("SELECT code, message_sequence FROM organisation")
    return {**await world.counts(), **{f"{code}.message_sequence": n for code, n in sequences}}


def assert_server_error(response: Any) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 500
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("table", "subscribers"),
    [
        # After the notice, its log entry, N07's disclosure and N07's sequence number.
        pytest.param("message", ("N07", "SMS-LEEDS"), id="part-way-at-the-first-message"),
        # Only the last recipient subscribes: its deliveries are the last rows of all, written
        # by the flush that the commit itself makes.
        pytest.param("delivery", ("SMS-LEEDS",), id="last-step-at-the-deliveries"),
    ],
)
async def test_a_notice_that_fails_part_way_leaves_nothing_behind(
    world, example, table, subscribers
):
    await prepared(world, subscribers)
    before = await state(world)

    async with renamed_away(world, table):
        response = await world.post_notice(example)

    assert_server_error(response)
    after = await state(world)
    for name in ("release_notice", "disclosure", "message", "audit_entry", "N07.message_sequence"):
        assert after[name] == before[name], name
    assert after == before
    # The fault was the only thing wrong: with the table back, the same notice is accepted.
    assert (await world.post_notice(example)).status_code == 202


async def test_a_notice_whose_commit_fails_is_refused_and_leaves_nothing_behind(
    world, example, database_url
):
    await prepared(world)
    before = await state(world)

    async with failing_commit(world, "sqlite" if is_sqlite(database_url) else "postgresql"):
        response = await world.post_notice(example)

    # Not a 202 for a notice that was never stored: the commit runs before the response.
    assert_server_error(response)
    assert await state(world) == before
    assert (await world.post_notice(example)).status_code == 202


@pytest.mark.parametrize(
    ("member", "code"),
    [
        pytest.param("probation_provider", "N98", id="unregistered-probation-provider"),
        pytest.param("probation_provider", "SMS-LEEDS", id="probation-provider-of-wrong-kind"),
        # Refused although N07, routed before it, is a valid recipient.
        pytest.param("substance_misuse_service", "SMS-YORK", id="unregistered-second-recipient"),
    ],
)
async def test_a_rejected_notice_leaves_nothing_behind(world, example, member, code):
    await prepared(world)
    before = await state(world)
    notice = copy.deepcopy(example)
    notice["release_plan"][member] = code

    response = await world.post_notice(notice)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert f"/release_plan/{member}" in response.text
    assert await state(world) == before
