"""The exchange log: append only. Entries carry identifiers, codes and hashes, never values."""

from __future__ import annotations

import functools
import hashlib
import itertools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, ScalarSelect, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.util import identity_key

from app.audit.entry import Entry, about_message
from app.storage.db import flush_pending
from app.storage.log_tables import AuditEntry
from app.storage.models import StoredNotice
from app.wire.canonical import canonical_json

__all__ = ["Entry", "about_message", "append", "append_many", "rows_of", "sha256_hex"]


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _person_in_session(session: AsyncSession, notice_id: uuid.UUID) -> str | None:
    """The person_ref of the notice, if the session holds it (loaded or added), without a query."""
    notice = session.identity_map.get(identity_key(StoredNotice, notice_id))
    if notice is None:
        notice = next(
            (o for o in session.new if isinstance(o, StoredNotice) and o.id == notice_id), None
        )
    return notice.person_ref if isinstance(notice, StoredNotice) else None


def append(
    session: AsyncSession,
    action: str,
    *,
    at: datetime,
    actor_organisation_id: uuid.UUID | None = None,
    actor_client_id: str | None = None,
    notice_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
    subject_organisation_id: uuid.UUID | None = None,
    person_ref: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add a log entry to the caller's transaction: it lands with the event or not at all.

    person_ref (a keyed hash of the NOMS number) names the person the event concerns. An entry
    about a notice concerns that notice's person: without a person_ref it takes the notice's,
    read from the notice in the session if it is there, else by the INSERT itself (the notice is
    already stored). A plain value lets one flush write all its entries in one statement."""
    canonical_json(details or {})  # what the log cannot hash exactly it refuses now, not later
    person: str | ScalarSelect[str | None] | None = person_ref
    if person is None and notice_id is not None:
        person = _person_in_session(session, notice_id) or (
            select(StoredNotice.person_ref).where(StoredNotice.id == notice_id).scalar_subquery()
        )
    session.add(
        AuditEntry(
            recorded_at=at,
            action=action,
            actor_organisation_id=actor_organisation_id,
            actor_client_id=actor_client_id,
            notice_id=notice_id,
            message_id=message_id,
            subject_organisation_id=subject_organisation_id,
            person_ref=person,
            details=details or {},
        )
    )


@functools.cache
def _inserting(by_notice: bool) -> Insert:
    """The entries' INSERT (executemany), built once: by_notice, it reads the person_ref of the
    notice each entry is about itself."""
    statement = insert(AuditEntry.__table__)
    if not by_notice:
        return statement
    person = (
        select(StoredNotice.person_ref)
        .where(StoredNotice.id == bindparam("notice_person"))
        .scalar_subquery()
    )
    return statement.values(person_ref=person)


def rows_of(session: AsyncSession, entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """The entries as rows of the log's table, in order. Each takes the person_ref as append's
    do: its own, or its notice's from the session; where the session does not hold the notice,
    the row names it as `notice_person`, for the INSERT to read its person_ref (app/audit's
    `_inserting(by_notice=True)`)."""
    rows = []
    for entry in entries:
        canonical_json(entry.details or {})  # what the log cannot hash exactly: refused now
        person = entry.person_ref
        if person is None and entry.notice_id is not None:
            person = _person_in_session(session, entry.notice_id)
        reads = person is None and entry.notice_id is not None
        row = {
            "recorded_at": entry.at,
            "action": entry.action,
            "actor_organisation_id": entry.actor_organisation_id,
            "actor_client_id": entry.actor_client_id,
            "notice_id": entry.notice_id,
            "message_id": entry.message_id,
            "subject_organisation_id": entry.subject_organisation_id,
            "details": entry.details or {},
        }
        row["notice_person" if reads else "person_ref"] = entry.notice_id if reads else person
        rows.append(row)
    return rows


async def append_many(session: AsyncSession, entries: Sequence[Entry]) -> None:
    """Write log entries in the caller's transaction now, in order, each run of them one
    executemany INSERT, where append's would be one ORM object each, written at the next flush.
    They take the person_ref as append's do. What the session has pending is flushed first, so
    that the entries follow anything appended before them and see the rows it adds."""
    if not entries:
        return
    await flush_pending(session)
    connection = await session.connection()
    for by_notice, run in itertools.groupby(
        rows_of(session, entries), key=lambda row: "notice_person" in row
    ):
        await _insert(connection, list(run), by_notice)


async def _insert(connection: AsyncConnection, rows: list[dict[str, Any]], by_notice: bool) -> None:
    await connection.execute(_inserting(by_notice), rows)
