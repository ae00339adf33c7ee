"""Migration 0003 seals what was stored before it, on both databases: each notice body and
message payload stored in plain by 0002 opens, sealed in its own place, with the data keys the
migration was given; the downgrade restores the plaintext (empty where purged meanwhile).

app.storage.migrate, alembic's commands and the `exchange` command run their own event loop, so they
are called in a thread; the database is made blank as tests/storage/test_migrations.py does, by
going to base.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.keys.sealing import Sealed, SealError, load_data_keys, place
from app.notices import retention
from app.settings import Settings
from app.storage import migrate
from app.storage.db import is_sqlite, make_engine, make_sessionmaker
from app.storage.models import Message, StoredNotice
from app.worker.loop import purge_expired

U, S, J, T = sa.Uuid(), sa.String(), sa.JSON(), sa.DateTime(timezone=True)


def table(table_name: str, /, **types: Any) -> sa.TableClause:
    return sa.table(table_name, *(sa.column(c, t) for c, t in types.items()))


ORGANISATION = table("organisation", id=U, code=S, kind=S, name=S, created_at=T)
NOTICE_0002 = table(
    "release_notice", id=U, organisation_id=U, body=J, body_sha256=S, status=S, received_at=T
)
DISCLOSURE_0002 = table(
    "disclosure", id=U, notice_id=U, recipient_organisation_id=U, recipient_role=S,
    fields_sent=J, manifest=J, policy_version=S, policy_hash=S, decided_at=T,
)  # fmt: skip
MESSAGE_0002 = table(
    "message", id=U, notice_id=U, disclosure_id=U, recipient_organisation_id=U,
    sequence=sa.BigInteger(), jws=sa.Text(), created_at=T,
)  # fmt: skip


@contextlib.asynccontextmanager
async def engine_for(url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


def jws_for(body: dict[str, Any]) -> str:
    return jwt.encode({"sub": body["person"]["noms_number"]}, "k" * 32, algorithm="HS256")


async def seed_0002(url: str, bodies: list[dict[str, Any]]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Notices, the last received 200 days ago, with a disclosure and message each, as in 0002."""
    now, org, zeros = datetime.now(UTC), uuid.uuid4(), "0" * 64
    async with engine_for(url) as engine, engine.begin() as connection:
        organisation = {"id": org, "code": "MDI", "kind": "prison", "name": "M", "created_at": now}
        await connection.execute(sa.insert(ORGANISATION).values(**organisation))
        seeded = []
        for i, body in enumerate(bodies, 1):
            notice, disclosure, message = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            age = timedelta(days=200 if i == len(bodies) else 1)
            await connection.execute(sa.insert(NOTICE_0002).values(
                id=notice, organisation_id=org, body=body, body_sha256=zeros, status="accepted",
                received_at=now - age,
            ))  # fmt: skip
            await connection.execute(sa.insert(DISCLOSURE_0002).values(
                id=disclosure, notice_id=notice, recipient_organisation_id=org, fields_sent=[],
                recipient_role="probation_provider", manifest=[], policy_version="1",
                policy_hash=zeros, decided_at=now,
            ))  # fmt: skip
            await connection.execute(sa.insert(MESSAGE_0002).values(
                id=message, notice_id=notice, disclosure_id=disclosure, created_at=now - age,
                recipient_organisation_id=org, sequence=i, jws=jws_for(body),
            ))  # fmt: skip
            seeded.append((notice, message))
    return seeded


async def read(url: str, statement: sa.Select) -> dict[uuid.UUID, tuple]:
    async with engine_for(url) as engine, engine.connect() as connection:
        return {r[0]: tuple(r[1:]) for r in await connection.execute(statement)}


@pytest.mark.parametrize("how", ["app.storage.migrate", "exchange db upgrade"])
async def test_migration_0003_seals_existing_data_and_its_downgrade_restores_it(
    database_url, run, tmp_path, example, how, request
):
    keys_dir = tmp_path / "keys" if how == "app.storage.migrate" else tmp_path / "var" / "data-keys"
    second_body = copy.deepcopy(example)
    second_body["release"]["accommodation"]["status"] = "settled"
    bodies = [example, second_body]
    try:
        await asyncio.to_thread(command.downgrade, migrate.config(database_url), "base")
        await asyncio.to_thread(migrate.upgrade, database_url, "0002")
        seeded = await seed_0002(database_url, bodies)

        if how == "app.storage.migrate":
            await asyncio.to_thread(migrate.upgrade, database_url, data_keys_dir=keys_dir)
        else:  # the run fixture's EXCHANGE_DATA_DIR is tmp_path/var: its data-keys are used
            result = await asyncio.to_thread(run, "db", "upgrade")
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception
            assert result.exit_code == 0, result.stderr
        keys = load_data_keys(keys_dir, create=False)

        notices = await read(
            database_url,
            select(StoredNotice.id, StoredNotice.body_sealed, StoredNotice.body_key_id)
            .add_columns(StoredNotice.series_id, StoredNotice.version),
        )  # fmt: skip
        messages = await read(
            database_url, select(Message.id, Message.jws_sealed, Message.jws_key_id, Message.kind)
        )
        for (notice, message), body in zip(seeded, bodies, strict=True):
            blob, key_id, series_id, version = notices[notice]
            assert key_id == keys.current and (series_id, version) == (notice, 1)
            opened = keys.open(Sealed(key_id, blob), place("release_notice", "body_sealed", notice))
            assert json.loads(opened) == body
            blob, key_id, kind = messages[message]
            jws = keys.open(Sealed(key_id, blob), place("message", "jws_sealed", message))
            assert (jws.decode(), kind) == (jws_for(body), "disclosure")
        (first, first_message), (second, second_message) = seeded
        with pytest.raises(SealError):  # each value is bound to its own row
            elsewhere = place("release_notice", "body_sealed", second)
            keys.open(Sealed(keys.current, notices[first][0]), elsewhere)

        # Purge the old one at head, then go back: plaintext again, empty where purged.
        async with engine_for(database_url) as engine:
            purged = await purge_expired(make_sessionmaker(engine), Settings())
        assert purged == retention.Purged(1, 1)
        await asyncio.to_thread(command.downgrade, migrate.config(database_url, keys_dir), "0002")
        restored = await read(database_url, select(NOTICE_0002.c.id, NOTICE_0002.c.body))
        assert restored == {first: (example,), second: ({},)}
        payloads = await read(database_url, select(MESSAGE_0002.c.id, MESSAGE_0002.c.jws))
        assert payloads == {first_message: (jws_for(example),), second_message: ("",)}
    finally:
        # PostgreSQL's database is shared by the run: leave it at head whatever happened.
        if not is_sqlite(database_url):
            await asyncio.to_thread(migrate.upgrade, database_url, data_keys_dir=keys_dir)
