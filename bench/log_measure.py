"""Time what issue 8 item 5 sets targets for, on a log that bench.log_fill made.

- `verify_seconds`: `exchange audit verify` run as the real console script (wall seconds);
- `inclusion_seconds`: log_tree.inclusion for random leaves in the tree at full size, a fresh
  session each, as a request has;
- `person_query_seconds`: GET /v1/audit/entries?noms_number=... as its handler runs it (the
  keyed hash, the query, the consultation it logs), committed as the request's session is.
Each returns one duration a call; `percentile` summarises them. Nothing personal is printed.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from app import log_tree
from app.api.audit import list_entries
from app.db import make_engine, make_sessionmaker
from app.identity import Caller
from app.sealing import load_data_keys
from app.settings import Settings

AUDITOR = Caller(
    client_id="bench-auditor",
    organisation_id=uuid.UUID(int=8_5),
    organisation_code="AUDBENCH",
    kind="auditor",
    scopes=frozenset({"audit:read"}),
)


def percentile(durations: list[float], share: float) -> float:
    ordered = sorted(durations)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def verify_seconds(database_url: str, data_dir: Path, project: Path) -> tuple[float, str]:
    """Wall seconds of `exchange audit verify` with project's code, and its last output line."""
    environment = {
        **os.environ,
        "EXCHANGE_DATABASE_URL": database_url,
        "EXCHANGE_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(project),
    }
    command = [str(Path(sys.executable).with_name("exchange")), "audit", "verify"]
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 (our own console script)
        command, env=environment, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"audit verify failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return seconds, done.stdout.strip().splitlines()[-1]


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
