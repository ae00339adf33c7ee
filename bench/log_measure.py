"""Time what issue 8 item 5 sets targets for, on a log that bench.log_fill made.

- `inclusion_seconds`: log_tree.inclusion for random leaves in the tree at full size, a fresh
  session each, as a request has;
- `person_query_seconds`: GET /v1/audit/entries?noms_number=... as its handler runs it (the
  keyed hash, the query, the consultation it logs), committed as the request's session is.
Each returns one duration a call (bench.httpload.percentile summarises them); `exchange audit
verify` is timed as a command by bench.log_phase. Nothing personal is printed.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from app.access.identity import Caller
from app.api.audit import list_entries
from app.audit import tree as log_tree
from app.keys.sealing import load_data_keys
from app.settings import Settings
from app.storage.db import make_engine, make_sessionmaker

AUDITOR = Caller(
    client_id="bench-auditor",
    organisation_id=uuid.UUID(int=8_5),
    organisation_code="AUDBENCH",
    kind="auditor",
    scopes=frozenset({"audit:read"}),
)


async def inclusion_seconds(database_url: str, calls: int) -> list[float]:
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    rng = random.Random(8_5)
    durations = []
    try:
        async with sessions() as session:
            size = await log_tree.tree_size(session)
        for _ in range(calls):
            index = rng.randrange(size)
            started = time.perf_counter()
            async with sessions() as session:
                await log_tree.inclusion(session, index, size)
            durations.append(time.perf_counter() - started)
    finally:
        await engine.dispose()
    return durations


async def person_query_seconds(
    database_url: str, data_dir: Path, noms_numbers: list[str], calls: int
) -> list[float]:
    settings = Settings(database_url=database_url, data_dir=data_dir)
    data_keys = load_data_keys(settings.sealing_keys_dir)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    rng = random.Random(8_5)
    durations = []
    try:
        for _ in range(calls):
            noms = rng.choice(noms_numbers)
            started = time.perf_counter()
            async with sessions() as session, session.begin():
                page = await list_entries(
                    AUDITOR, session, data_keys, datetime.now(UTC), noms_number=noms
                )
            durations.append(time.perf_counter() - started)
            if not page.items:
                raise RuntimeError("a person query found no entries")
    finally:
        await engine.dispose()
    return durations
