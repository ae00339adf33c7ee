"""Migration 0013 on both databases: the notices stored before 0011, which have no release date in
clear, get the one their sealed body holds; a purged notice, and one whose body cannot be opened
(a data key since lost, altered), stay NULL without stopping the upgrade, counted in one warning;
a table of several batches is read and written a batch at a time; with no notice to backfill the
data keys are not loaded; going down undoes nothing, and going up again works.

Notices are stored "before 0011" as tests/storage/test_migration_0011.py does: posted at head,
then the database taken down to 0010 (the column goes) and up again. Migrations run their own
event loop, so they are called in a thread (as in tests/storage/test_migrations.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from app.keys.sealing import place
from app.storage import migrate
from app.storage.models import StoredNotice
from app.worker.loop import purge_expired
from tests.helpers.acknowledgements import released
from tests.helpers.consents import post
from tests.helpers.retention import backdate

WARNING = "0013: {} stored notice bodies could not be opened"


async def release_dates(world) -> dict[uuid.UUID, date | None]:
    async with world.sessions() as session:
        rows = await session.execute(sa.select(StoredNotice.id, StoredNotice.release_date))
        return dict(rows.all())


async def migrate_to(world, url: str, name: str, revision: str, keys: Path | None = None) -> None:
    """Upgrade or downgrade the test's database, with these data keys (None: the settings')."""
    await world.sessions.kw["bind"].dispose()  # no pooled connection holds a table
    await asyncio.to_thread(getattr(command, name), migrate.config(url, keys), revision)


def warnings_of_0013(caplog) -> list[str]:
    found = [r.getMessage() for r in caplog.records if r.name == "exchange.migrate"]
    return [m for m in found if m.startswith("0013:")]


@contextmanager
def statements_on_notices() -> Iterator[list[tuple[str, int]]]:
    """Each statement on release_notice any engine sends meanwhile: (SELECT or UPDATE, rows of
    parameters)."""
    seen: list[tuple[str, int]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if "release_notice" in statement and verb in ("SELECT", "UPDATE"):
            seen.append((verb, len(parameters) if executemany else 1))

    sa.event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(Engine, "before_cursor_execute", record)


async def test_0013_gives_the_notices_stored_before_0011_the_release_date_their_bodies_hold(
    world, example, clock, database_url, settings, caplog
):
    releases = [clock.today - timedelta(days=days) for days in (1, 2, 3, 4, 5)]
    posted = [await post(world, released(example, on)) for on in releases]
    kept, also_kept, purged, lost, altered = (uuid.UUID(p["id"]) for p in posted)
    await backdate(world, posted[2]["id"], days=settings.retention_days + 1)
    assert (await purge_expired(world.sessions, settings)).notices == 1
    async with world.sessions() as session, session.begin():
        where = StoredNotice.id == lost
        await session.execute(sa.update(StoredNotice).where(where).values(body_key_id="lost"))
        blob = await session.scalar(
            sa.select(StoredNotice.body_sealed).where(StoredNotice.id == altered)
        )
        flipped = blob[:-1] + bytes([blob[-1] ^ 1])
        where = StoredNotice.id == altered
        await session.execute(sa.update(StoredNotice).where(where).values(body_sealed=flipped))
    keys = settings.sealing_keys_dir
    caplog.set_level(logging.WARNING, logger="exchange.migrate")
    try:
        # Stored before 0011: no release date in clear.
        await migrate_to(world, database_url, "downgrade", "0010")
        await migrate_to(world, database_url, "upgrade", "0012", keys)
        assert set((await release_dates(world)).values()) == {None}
        caplog.clear()
        await migrate_to(world, database_url, "upgrade", "0013", keys)
    finally:
        await migrate_to(world, database_url, "upgrade", "head", keys)
    expected = {kept: releases[0], also_kept: releases[1], purged: None, lost: None, altered: None}
    assert await release_dates(world) == expected
    [warning] = warnings_of_0013(caplog)
    assert warning.startswith(WARNING.format(2))
    ids = [uuid.UUID(p["id"]) for p in posted]
    for personal in (example["person"]["noms_number"], *map(str, ids), *(i.hex for i in ids)):
        assert personal not in warning  # no personal data, no ids

    # Going down undoes nothing (the dates are copies of the bodies'); up again, the same.
    try:
        await migrate_to(world, database_url, "downgrade", "0012", keys)
        assert await release_dates(world) == expected
    finally:
        await migrate_to(world, database_url, "upgrade", "head", keys)
    assert await release_dates(world) == expected


async def test_0013_reads_and_dates_a_large_table_a_batch_at_a_time(
    world, clock, database_url, settings
):
    """Notices of several batches, each read by one SELECT and dated by one UPDATE."""
    config = migrate.config(database_url)
    batch = ScriptDirectory.from_config(config).get_revision("0013").module.BATCH
    count = 2 * batch + batch // 2
    now, keys = datetime.now(UTC), world.data_keys
    rows: list[dict[str, Any]] = []
    expected: dict[uuid.UUID, date | None] = {}
    for i in range(count):
        notice_id, on = uuid.uuid4(), clock.today - timedelta(days=i % 30)
        body = json.dumps({"release": {"release_date": on.isoformat()}}).encode()
        sealed = keys.seal(body, place("release_notice", "body_sealed", notice_id))
        rows.append(
            {
                "id": notice_id,
                "organisation_id": world.ids["MDI"],
                "series_id": notice_id,
                "version": 1,
                "body_sealed": sealed.blob,
                "body_key_id": sealed.key_id,
                "body_sha256": "0" * 64,
                "release_date": None,
                "status": "accepted",
                "received_at": now,
            }
        )
        expected[notice_id] = on
    try:
        await migrate_to(world, database_url, "downgrade", "0012")
        async with world.sessions() as session, session.begin():
            await session.execute(sa.insert(StoredNotice), rows)
        with statements_on_notices() as seen:
            await migrate_to(world, database_url, "upgrade", "0013", settings.sealing_keys_dir)
    finally:
        await migrate_to(world, database_url, "upgrade", "head", settings.sealing_keys_dir)
    assert await release_dates(world) == expected
    reads = [n for verb, n in seen if verb == "SELECT"]
    writes = [n for verb, n in seen if verb == "UPDATE"]
    assert len(reads) == 4  # three batches, then none left
    assert writes == [batch, batch, batch // 2]


async def test_0013_loads_no_data_keys_when_there_is_no_notice_to_backfill(
    world, example, clock, database_url, settings, tmp_path
):
    """Dated notices, and an undated one purged, need no body opened: no data keys are read
    (a fresh database has none)."""
    dated = await post(world, released(example, clock.today))
    gone = await post(world, released(example, clock.today - timedelta(days=1)))
    await backdate(world, gone["id"], days=settings.retention_days + 1)
    assert (await purge_expired(world.sessions, settings)).notices == 1
    async with world.sessions() as session, session.begin():
        where = StoredNotice.id == uuid.UUID(gone["id"])
        await session.execute(sa.update(StoredNotice).where(where).values(release_date=None))
    nowhere = tmp_path / "no-data-keys"
    try:
        await migrate_to(world, database_url, "downgrade", "0012", nowhere)
        await migrate_to(world, database_url, "upgrade", "0013", nowhere)
    finally:
        await migrate_to(world, database_url, "upgrade", "head", settings.sealing_keys_dir)
    assert not nowhere.exists()
    found = await release_dates(world)
    assert found == {uuid.UUID(dated["id"]): clock.today, uuid.UUID(gone["id"]): None}
