"""Migration 0005 on a database with subscriptions: before it, DELETE set a subscription
"disabled", so every disabled one was deleted by its owner and must not become re-enableable;
its downgrade turns deleted back into disabled, and refuses when that would lose a meaning.

Migrations run their own event loop, so they are called in a thread (as in
tests/storage/test_migrations.py).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from app.storage import migrate
from app.storage.db import is_sqlite, make_engine

U, S, T = sa.Uuid(), sa.String(), sa.DateTime(timezone=True)
ORGANISATION = sa.table(
    "organisation",
    *(sa.column(c, t) for c, t in dict(id=U, code=S, kind=S, name=S, created_at=T).items()),
)
SUBSCRIPTION = sa.table(
    "subscription",
    *(
        sa.column(c, t)
        for c, t in dict(
            id=U, organisation_id=U, url=S, secret=S, status=S, created_at=T, disabled_at=T
        ).items()
    ),
)


async def statuses(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(sa.select(SUBSCRIPTION.c.url, SUBSCRIPTION.c.status))
            ).all()
    finally:
        await engine.dispose()
    return dict(rows)


async def execute(url: str, statement: sa.Executable) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(statement)
    finally:
        await engine.dispose()


async def test_0005_makes_deleted_what_delete_disabled_and_its_downgrade_undoes_it(database_url):
    config = migrate.config(database_url)
    try:
        await asyncio.to_thread(command.downgrade, config, "0004")
        now, org = datetime.now(UTC), uuid.uuid4()
        await execute(
            database_url,
            sa.insert(ORGANISATION).values(
                id=org, code="N07", kind="probation_provider", name="N", created_at=now
            ),
        )
        for name, status in (("kept", "active"), ("gone", "disabled")):
            await execute(
                database_url,
                sa.insert(SUBSCRIPTION).values(
                    id=uuid.uuid4(),
                    organisation_id=org,
                    url=name,
                    secret="whsec_x",
                    status=status,
                    created_at=now,
                    disabled_at=now if status == "disabled" else None,
                ),
            )
        await asyncio.to_thread(migrate.upgrade, database_url)
        assert await statuses(database_url) == {"kept": "active", "gone": "deleted"}

        await asyncio.to_thread(command.downgrade, config, "0004")
        assert await statuses(database_url) == {"kept": "active", "gone": "disabled"}

        # A subscription paused (not deleted) has no place in 0004: the downgrade refuses.
        await asyncio.to_thread(migrate.upgrade, database_url)
        await execute(
            database_url,
            sa.text(
                "UPDATE subscription SET status = 'disabled', disabled_reason = 'gone'"
                " WHERE url = 'kept'"
            ),
        )
        with pytest.raises(RuntimeError, match="cannot be undone"):
            await asyncio.to_thread(command.downgrade, config, "0004")
    finally:
        # PostgreSQL's database is shared by the run: leave it at head and empty.
        if not is_sqlite(database_url):
            await asyncio.to_thread(migrate.upgrade, database_url)
            await execute(database_url, sa.text("DELETE FROM subscription"))
            await execute(database_url, sa.text("DELETE FROM organisation"))
