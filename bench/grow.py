"""Grow an exchange database to many notices by cloning the ones stored, in SQL (PostgreSQL only).

Posting a million notices through the API takes hours; this clones, in set-based INSERT ...
SELECT rounds, every row intake (and the worker) wrote for the notices already stored: the
notice, its idempotency key, the person's consent records and the notices that carried each,
disclosures, messages, deliveries and their attempts, acknowledgements, and the log entries
about the person. The unit of cloning is a
person: each clone is a new person (a new random person_ref), so their notices, series and
consents stay their own, and every reference among their rows points to the clone's rows.

Clones look like a year of real traffic: each person's rows move back in time by one random
shift (uniform over `days`), keeping their own gaps. Their deliveries are settled (a pending one
is delivered, with its attempt and its `delivery.succeeded` entry), and a clone older than the
retention period is purged as app/notices/retention.py would have purged it (body and payloads gone,
idempotency key deleted, a `notice.purged` entry). Every clone's message is numbered, its
recipient's inbox going on from its counter without a gap, as the sequencer would have numbered
it, even where the original still waits for the sequencer (no worker ran): that one is numbered
after them. Given the data keys, the sealed values kept are sealed again for the
clone's own row (a sealed value names its row); without them they are copied and do not open.
Cloned log entries are not sequenced into the Merkle tree, and their details keep the original's
values but for the person and the row ids they name.

How: the people to clone and their rows are copied once into temporary tables (bench/
grow_setup.py), and each round (bench/grow_sql.py, one transaction of up to BATCH_NOTICES
notices) reads those, never the tables it grows. While the rounds run, the indexes no constraint
needs are dropped (and built again after, even if a round fails), and foreign keys are not
checked row by row (session_replication_role = replica: a superuser's connection); every one of
them is checked once, set-wise, after the last round. Ends with VACUUM ANALYZE.

Nothing else may use the database meanwhile. Run the app on it afterwards without the embedded
worker, or its log sequencer will start hashing the millions of cloned entries into the tree.

    python -m bench.grow DATABASE_URL TARGET_NOTICES [DATA_KEYS_DIR]
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from app.keys.sealing import DataKeys, Sealed, load_data_keys, place
from bench import grow_setup as setup
from bench import grow_sql as sql
from bench.world import asyncpg_dsn

BATCH_NOTICES = 100_000  # notices cloned per transaction
log = logging.getLogger("bench.grow")


def dsn(database_url: str) -> str:
    """An asyncpg DSN from the exchange's SQLAlchemy URL, which must be PostgreSQL's."""
    if make_url(database_url).get_backend_name() != "postgresql":
        raise ValueError("bench.grow works on PostgreSQL only")
    return asyncpg_dsn(database_url)


async def grow(
    database_url: str,
    target_notices: int,
    *,
    data_keys_dir: Path | None = None,
    days: float = 365,
    retention_days: int = 90,
    batch_notices: int = BATCH_NOTICES,
) -> int:
    """Clone stored notices until `target_notices` are stored (or as close as whole people
    allow); return how many are stored after."""
    keys = load_data_keys(data_keys_dir, create=False) if data_keys_dir else None
    spent: Counter[str] = Counter()
    connection = await asyncpg.connect(
        dsn(database_url), server_settings={"temp_buffers": "512MB", "work_mem": "256MB"}
    )
    try:
        stored = await connection.fetchval("SELECT count(*) FROM release_notice")
        if stored >= target_notices:
            return stored
        await _timed(connection, spent, "sources", setup.SOURCES)
        indexes = await connection.fetch(setup.SECONDARY_INDEXES, setup.CLONED)
        try:
            for name, _ in indexes:
                await connection.execute(f"DROP INDEX {name}")
            while stored < target_notices:
                want = min(target_notices - stored, batch_notices)
                async with connection.transaction():
                    await connection.execute("SET LOCAL synchronous_commit = off")
                    await connection.execute("SET LOCAL session_replication_role = replica")
                    await connection.execute("SET LOCAL jit = off")  # compiling costs more
                    added = await _round(connection, want, keys, days, retention_days, spent)
                if not added:
                    break  # no whole person fits in what is left
                stored += added
                log.info("%d notices stored", stored)
            began = time.perf_counter()
            await _check_references(connection)
            spent["foreign keys"] += time.perf_counter() - began
        finally:  # the schema is whole again whatever happened
            await connection.execute("SET maintenance_work_mem = '1GB'")
            for _, definition in indexes:
                await _timed(connection, spent, "indexes", definition)
        await connection.execute(setup.DROP_SOURCES)
        await _timed(connection, spent, "vacuum analyze", "VACUUM ANALYZE")
        log.info("seconds spent: %s", ", ".join(f"{k} {v:.1f}" for k, v in spent.most_common()))
        return stored
    finally:
        await connection.close()


async def _check_references(connection: asyncpg.Connection) -> None:
    """Every foreign key of the grown tables holds (the rounds did not check them row by row)."""
    for name, table, column, parent, key, columns in await connection.fetch(
        setup.FOREIGN_KEYS, setup.CLONED
    ):
        if columns != 1:
            raise NotImplementedError(f"{name}: a foreign key of {columns} columns")
        if broken := await connection.fetchval(setup.orphans(table, column, parent, key)):
            raise RuntimeError(f"{name}: {broken} rows of {table} name no {parent}")


async def _timed(
    connection: asyncpg.Connection, spent: Counter[str], name: str, statement: str, *args: Any
) -> None:
    began = time.perf_counter()
    await connection.execute(statement, *args)
    spent[name] += time.perf_counter() - began


async def _round(
    connection: asyncpg.Connection,
    want: int,
    keys: DataKeys | None,
    days: float,
    retention_days: int,
    spent: Counter[str],
) -> int:
    """Clone whole people with at most `want` notices between them; the notices cloned."""
    now = datetime.now(UTC)
    sources = await connection.fetchval("SELECT max(upto) FROM source_person") or 0
    if not sources:
        return 0
    copies = -(-want // sources)

    async def step(name: str, statement: str, *args: Any) -> None:
        await _timed(connection, spent, name, statement, *args)

    await step("maps", sql.MAPS)
    await step("person_map", sql.PEOPLE, want, days, copies, sources)
    await step("analyze", "ANALYZE person_map")
    await step("notice_map", sql.NOTICES, now, retention_days)
    for table, statement in sql.ROW_MAPS:
        await step("analyze", f"ANALYZE {table}")
        await step(table, statement)
    await step("analyze", "ANALYZE id_map")
    if keys is not None:
        began = time.perf_counter()
        for table, column, query in sql.KEPT_SEALED:
            await _reseal(connection, keys, table, column, query)
        spent["reseal"] += time.perf_counter() - began
        await step("analyze", "ANALYZE sealed")
    for table, statement in sql.INSERTS:
        await step(table, statement)
    await step("audit_entry", sql.INSERT_PURGED_ENTRIES, retention_days)
    return await connection.fetchval("SELECT count(*) FROM notice_map")


async def _reseal(
    connection: asyncpg.Connection, keys: DataKeys, table: str, column: str, query: str
) -> None:
    """Seal each kept value again for the clone's row, into the temporary table `sealed`."""
    records: list[tuple[Any, str, bytes]] = []
    for old_id, new_id, key_id, blob in await connection.fetch(query):
        value = keys.open(Sealed(key_id, blob), place(table, column, old_id))
        again = keys.seal(value, place(table, column, new_id))
        records.append((new_id, again.key_id, again.blob))
    await connection.copy_records_to_table("sealed", records=records)


async def database_size(database_url: str) -> int:
    connection = await asyncpg.connect(dsn(database_url))
    try:
        return await connection.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await connection.close()


async def main(database_url: str, target: int, data_keys_dir: str | None) -> None:
    began = time.perf_counter()
    keys_dir = Path(data_keys_dir) if data_keys_dir else None
    stored = await grow(database_url, target, data_keys_dir=keys_dir)
    seconds = time.perf_counter() - began
    size = await database_size(database_url)
    print(f"notices={stored} seconds={seconds:.0f} database_size={size / 2**30:.2f} GiB")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
