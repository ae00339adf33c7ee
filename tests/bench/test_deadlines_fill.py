"""bench/deadlines_fill.py: the shape the deadlines phase measures, exactly as asked: the open
deadlines all fresh and in the future, every met deadline met by an acknowledgement."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from app.storage.db import is_sqlite
from bench import deadlines_fill
from bench.deadlines_fill import Shape
from bench.world import asyncpg_dsn

OPEN = "met_at IS NULL AND stopped_at IS NULL AND alerted_at IS NULL"


async def test_the_scan_shape_has_exactly_the_open_deadlines_asked(database_url):
    if is_sqlite(database_url):
        pytest.skip("the benchmark fills PostgreSQL")
    now = datetime.now(UTC)
    dsn = asyncpg_dsn(database_url)
    connection = await asyncpg.connect(dsn)
    try:
        ids = {
            kind: await deadlines_fill.organisations(
                connection, prefix=prefix, kind=kind, count=2, now=now
            )
            for prefix, kind in (
                ("HMP", "prison"),
                ("PDU", "probation_provider"),
                ("SMS", "substance_misuse_service"),
            )
        }
        shape = Shape.scan(1_000, 101, now.date())
        written = await deadlines_fill.fill(
            dsn,
            shape,
            prisons=ids["prison"],
            probation=ids["probation_provider"],
            services=ids["substance_misuse_service"],
            now=now,
        )
        assert written["message"] == 1_000 and written["deadline"] == 1_500
        assert await connection.fetchval(f"SELECT count(*) FROM deadline WHERE {OPEN}") == 101
        assert not await connection.fetchval(
            f"SELECT count(*) FROM deadline WHERE {OPEN} AND due_at <= $1", now
        )
        unmet = await connection.fetchval(
            "SELECT count(*) FROM deadline d WHERE d.met_at IS NOT NULL AND NOT EXISTS ("
            "SELECT 1 FROM acknowledgement a WHERE a.message_id = d.message_id)"
        )
        assert unmet == 0
        assert not await connection.fetchval(
            "SELECT count(*) FROM deadline WHERE alerted_at IS NOT NULL AND due_at > $1", now
        )
    finally:
        await connection.close()
