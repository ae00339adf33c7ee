"""Personal data at rest and its age: what a row of any table leaks, and a notice made older."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam, select, text

from app.storage.models import Base, Delivery, Message, StoredNotice

JWS = re.compile(r"[\w-]{16,}\.[\w-]{16,}\.[\w-]{16,}")


BACKDATE = text("UPDATE release_notice SET received_at = :at WHERE id = :id").bindparams(
    bindparam("at", type_=StoredNotice.received_at.type), bindparam("id", type_=sa.Uuid())
)


BACKDATE_MESSAGES = text("UPDATE message SET created_at = :at WHERE notice_id = :id").bindparams(
    bindparam("at", type_=Message.created_at.type), bindparam("id", type_=sa.Uuid())
)


def readable(value: Any) -> str:
    """A stored value as text, with the segments of any compact JWS in it decoded too."""
    if isinstance(value, bytes | memoryview):
        value = bytes(value).decode("latin-1")
    found = value if isinstance(value, str) else json.dumps(value, default=str)
    decoded = []
    for segment in (s for token in JWS.findall(found) for s in token.split(".")):
        with contextlib.suppress(ValueError):
            decoded.append(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return "\n".join([found, *(d.decode("latin-1") for d in decoded)])


async def leaks(world, values: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, value) for each personal value found in a raw row of any table."""
    found = []
    for table in Base.metadata.sorted_tables:
        for row in await world.sql(f"SELECT * FROM {table.name}"):
            for column, stored in row._mapping.items():
                found += [(table.name, column, v) for v in values if v in readable(stored)]
    return found


async def backdate(world, notice_id: str, days: float) -> None:
    """Make a notice, and the messages it caused then, `days` old."""
    async with world.sessions() as session, session.begin():
        at = datetime.now(UTC) - timedelta(days=days)
        await session.execute(BACKDATE, {"at": at, "id": uuid.UUID(notice_id)})
        await session.execute(BACKDATE_MESSAGES, {"at": at, "id": uuid.UUID(notice_id)})


async def stored(world, notice_id: str) -> tuple[StoredNotice, list[Message], list[Delivery]]:
    async with world.sessions() as session:
        notice = await session.get_one(StoredNotice, uuid.UUID(notice_id))
        messages = list(
            await session.scalars(select(Message).where(Message.notice_id == notice.id))
        )
        ids = [m.id for m in messages]
        deliveries = list(
            await session.scalars(select(Delivery).where(Delivery.message_id.in_(ids)))
        )
    return notice, messages, deliveries
