"""Waking delivery workers at once on PostgreSQL: LISTEN on the channel the outbox NOTIFYs.

The poll stays as the fallback: if the listening connection cannot be made or is lost, the
worker logs it once, keeps polling, and tries to listen again after a pause.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
from sqlalchemy.engine import make_url

from app.messages.outbox import CHANNEL
from app.storage.db import is_sqlite

log = logging.getLogger("exchange.worker")
RETRY_SECONDS = 5.0


class Listener:
    """Sets `kick` whenever messages are stored (to be numbered), numbered, or deliveries
    queued, for as long as it is open."""

    def __init__(self, database_url: str, kick: asyncio.Event) -> None:
        self._dsn = (
            None
            if is_sqlite(database_url)
            else make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._kick = kick
        self._connection: asyncpg.Connection | None = None
        self._next_try = 0.0

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def ensure(self) -> None:
        """Listen, unless already listening, on SQLite, or too soon after a failed try."""
        if self._dsn is None or self.listening or time.monotonic() < self._next_try:
            return
        await self.close()
        try:
            connection = await asyncpg.connect(self._dsn, timeout=5)
            await connection.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            self._next_try = time.monotonic() + RETRY_SECONDS
            log.warning("not listening for new deliveries (%s): polling", type(exc).__name__)
            return
        self._connection = connection
        self._kick.set()  # anything queued while nobody listened is due now

    def _notified(self, *_: object) -> None:
        self._kick.set()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            await connection.close(timeout=5)
