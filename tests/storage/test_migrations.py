"""The migrations, on both databases: they build exactly the schema app/storage/models.py
describes, and every one of them goes down and up again.

app.storage.migrate and alembic's commands run their own event loop, so they are called in a thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from app.storage import migrate
from app.storage.db import make_engine
from app.storage.models import Base

MODEL_TABLES = set(Base.metadata.tables)


@dataclass(frozen=True)
class Schema:
    tables: set[str]
    revision: str | None
    differences: list[Any]  # what autogenerate would put in a new migration


def _read(connection: Connection) -> Schema:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return Schema(
        tables=set(inspect(connection).get_table_names()),
        revision=context.get_current_revision(),
        differences=compare_metadata(context, Base.metadata),
    )


async def schema(url: str) -> Schema:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_read)
    finally:
        await engine.dispose()


async def alembic(name: str, url: str, revision: str) -> None:
    await asyncio.to_thread(getattr(command, name), migrate.config(url), revision)


async def test_the_migrations_build_exactly_the_models(database_url):
    found = await schema(database_url)

    assert found.revision == migrate.head_revision()
    assert found.tables == MODEL_TABLES | {"alembic_version"}
    assert found.differences == [], "models and migrations disagree: a migration is missing"


async def test_every_migration_goes_down_and_up_again(database_url):
    """Down to base, then up one revision at a time, each undone and redone on the way."""
    script = ScriptDirectory.from_config(migrate.config(database_url))
    revisions = list(reversed(list(script.walk_revisions("base", "heads"))))
    assert revisions, "no migrations found"
    try:
        await alembic("downgrade", database_url, "base")
        at_base = await schema(database_url)
        assert at_base.revision is None
        assert at_base.tables <= {"alembic_version"}, "the downgrade left tables behind"

        for revision in revisions:
            await alembic("upgrade", database_url, revision.revision)
            await alembic("downgrade", database_url, "-1")
            assert (await schema(database_url)).revision == revision.down_revision
            await alembic("upgrade", database_url, revision.revision)
    finally:
        # PostgreSQL's database is shared by the run: leave it at head whatever happened.
        await asyncio.to_thread(migrate.upgrade, database_url)

    at_head = await schema(database_url)
    assert at_head.revision == migrate.head_revision()
    assert at_head.tables == MODEL_TABLES | {"alembic_version"}
    assert at_head.differences == []
