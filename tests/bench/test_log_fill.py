"""bench/log_fill.py and bench/log_measure.py: a small log filled as the benchmark fills a million
entries, sequenced by the worker's own sequencer, verifies, and answers the timed queries."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import asyncpg
import pytest

from app.audit import rows as log_rows
from app.storage.db import is_sqlite
from bench.log_fill import fill, sequence_all
from bench.log_measure import inclusion_seconds, person_query_seconds
from bench.world import asyncpg_dsn


async def actions(database_url: str) -> Counter[str]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT action, count(*), count(person_ref) FROM audit_entry GROUP BY action"
        )
    finally:
        await connection.close()
    assert all(named == count for _, count, named in rows)  # every entry names its person
    return Counter({action: count for action, count, _ in rows})


async def test_a_filled_log_sequences_verifies_and_answers(
    database_url, tmp_path, run, monkeypatch
):
    if is_sqlite(database_url):
        pytest.skip("the benchmark fills PostgreSQL, by COPY")
    data_dir = tmp_path / "var"  # where `run` points EXCHANGE_DATA_DIR: verify finds the log key
    sample = await fill(database_url, data_dir, 700, 30)
    assert sample and all(re.fullmatch(r"[A-Z][0-9]{4}[A-Z]{2}", noms) for noms in sample)
    written = await actions(database_url)
    assert written.total() == 700
    for action in ("notice.received", "disclosure.decided", "message.signed", "delivery.queued"):
        assert written[action] > 0

    await sequence_all(database_url, data_dir)

    async def refused(
        *_: object, **__: object
    ) -> None:  # details are filled as the exchange stores them
        raise AssertionError("a filled entry's spliced document missed")

    monkeypatch.setattr(log_rows, "_again", refused)
    result = await asyncio.to_thread(run, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "ok: 700 leaves" in result.output

    assert len(await inclusion_seconds(database_url, 5)) == 5
    # each person query must find entries (person_query_seconds refuses an empty page)
    assert len(await person_query_seconds(database_url, data_dir, sample, 5)) == 5
