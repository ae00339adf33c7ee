"""The console's sessions on the server: which have been signed out. A session cookie names its
session's ID; sign-out records the ID's hash (app/storage/console_tables.py) until the cookie
would have expired, and a cookie whose session has ended is refused, wherever it was copied."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.storage.console_tables import ConsoleSessionEnded


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def has_ended(session: AsyncSession, session_id: str) -> bool:
    found = await session.scalar(
        select(ConsoleSessionEnded.session_sha256).where(
            ConsoleSessionEnded.session_sha256 == _hash(session_id)
        )
    )
    return found is not None


async def end(session: AsyncSession, session_id: str, *, now: datetime, seconds: int) -> None:
    """The session ended now; its cookie lasts `seconds` at most from now. Rows of cookies
    expired since are purged here."""
    await session.execute(delete(ConsoleSessionEnded).where(ConsoleSessionEnded.expires_at < now))
    if not await has_ended(session, session_id):
        session.add(
            ConsoleSessionEnded(
                session_sha256=_hash(session_id),
                ended_at=now,
                expires_at=now + timedelta(seconds=seconds),
            )
        )
