"""The exchange log as its verifier tests reach it: tampering behind the service's back,
`exchange audit verify` run on it, and a leaf's entry."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
from sqlalchemy.engine import make_url

from app.storage.db import is_sqlite
from app.storage.log_tables import AuditEntry, AuditLeaf

TRIGGERS = [
    f"{table}_no_{event}"
    for table in ("audit_entry", "audit_leaf", "audit_node", "audit_checkpoint")
    for event in ("update", "delete")
]


async def tamper(database_url: str, *statements: str) -> None:
    url = make_url(database_url)
    if is_sqlite(database_url):

        def change() -> None:
            connection = sqlite3.connect(url.database)
            try:
                for trigger in TRIGGERS:
                    connection.execute(f"DROP TRIGGER IF EXISTS {trigger}")
                for statement in statements:
                    connection.execute(statement)
                connection.commit()
            finally:
                connection.close()

        await asyncio.to_thread(change)
        return
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            for statement in statements:
                await connection.execute(statement)
    finally:
        await connection.close()


async def verified(run, signer) -> tuple[int, str]:
    result = await asyncio.to_thread(run, "audit", "verify", "--verifier-key", signer.verifier_key)
    return result.exit_code, result.output


async def leaf(world, index: int) -> AuditEntry:
    async with world.sessions() as session:
        row = await session.get_one(AuditLeaf, index)
        return await session.get_one(AuditEntry, row.entry_id)


OLD = "2000-01-01 00:00:00"
