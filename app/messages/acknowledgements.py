"""Acknowledgements: what a recipient says became of a message it was sent.

`received` may acknowledge any message; the rest (accepted, appointment booked, attended, did
not attend, declined) only a disclosure. Statuses come in any order, each a new row: people miss
appointments and rebook. A message revoked before delivery, or withdrawn with its consent, has
nothing to acknowledge. The optional note may name the person: it is sealed like a notice body,
shown to the recipient and to the prison that posted the notice, purged with the notice's data
(app/notices/retention.py), and never logged. A purged message may still be acknowledged, by code
only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Caller
from app.audit import entries as audit
from app.keys.sealing import DataKeys, Sealed, place
from app.messages.kinds import DISCLOSURE
from app.storage.models import Acknowledgement, Message, StoredNotice
from app.wire.errors import Problem, invalid

RECEIVED = "received"


@dataclass(frozen=True)
class Recorded:
    acknowledgement: Acknowledgement
    notice_id: uuid.UUID  # the notice the message came of, whose retention the note shares


def note_of(data_keys: DataKeys, acknowledgement: Acknowledgement) -> str | None:
    """The note, opened; None when there was none, or once purged."""
    if acknowledgement.note_sealed is None or acknowledgement.note_key_id is None:
        return None
    sealed = Sealed(acknowledgement.note_key_id, acknowledgement.note_sealed)
    where = place("acknowledgement", "note_sealed", acknowledgement.id)
    return data_keys.open(sealed, where).decode()


async def _own_message(
    session: AsyncSession, message_id: uuid.UUID, caller: Caller, *, lock: bool = False
) -> Message:
    query = select(Message).where(Message.id == message_id)
    if lock:  # a purge or withdrawal of it waits for us, or has committed and is seen here
        query = query.with_for_update().execution_options(populate_existing=True)
    message = await session.scalar(query)
    if message is None or message.recipient_organisation_id != caller.organisation_id:
        raise Problem(404, "Not found", "No such message.")
    if message.sequence is None:  # not in the inbox until numbered (app/api/messages.py)
        raise Problem(404, "Not found", "No such message.")
    return message


async def acknowledge(
    session: AsyncSession,
    message_id: uuid.UUID,
    *,
    status: str,
    note: str | None,
    caller: Caller,
    data_keys: DataKeys,
    now: datetime,
) -> Recorded:
    """Record one acknowledgement of the caller's own message, with its log entry."""
    message = await _own_message(session, message_id, caller, lock=True)
    if message.revoked_at is not None or message.withdrawn_at is not None:
        why = "revoked before delivery" if message.revoked_at else "withdrawn with its consent"
        raise Problem(409, "Conflict", f"This message was {why}: there is nothing to acknowledge.")
    if status != RECEIVED and message.kind != DISCLOSURE:
        raise invalid(
            [{"pointer": "/status", "detail": f"a {message.kind} message may only be received"}]
        )
    notice = await session.get_one(StoredNotice, message.notice_id)
    purged = message.purged_at is not None or notice.purged_at is not None
    if note is not None and purged:
        raise invalid(
            [{"pointer": "/note", "detail": "the message's data has been purged: give no note"}]
        )
    row = Acknowledgement(
        id=uuid.uuid4(),
        message_id=message.id,
        organisation_id=caller.organisation_id,
        client_id=caller.client_id,
        status=status,
        recorded_at=now,
    )
    if note is not None:
        sealed = data_keys.seal(note.encode(), place("acknowledgement", "note_sealed", row.id))
        row.note_sealed, row.note_key_id = sealed.blob, sealed.key_id
    session.add(row)
    audit.append(
        session,
        "acknowledgement.recorded",
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        notice_id=message.notice_id,
        message_id=message.id,
        subject_organisation_id=message.recipient_organisation_id,
        details={
            "acknowledgement_id": str(row.id),
            "status": status,
            "message_kind": message.kind,
            "with_note": note is not None,
        },
    )
    await session.flush()
    return Recorded(row, message.notice_id)


async def of_message(
    session: AsyncSession, message_id: uuid.UUID, caller: Caller, *, offset: int, limit: int
) -> list[Acknowledgement]:
    """The caller's acknowledgements of its own message, oldest first; 404 for another's."""
    await _own_message(session, message_id, caller)
    return list(
        await session.scalars(
            select(Acknowledgement)
            .where(
                Acknowledgement.message_id == message_id,
                Acknowledgement.organisation_id == caller.organisation_id,
            )
            .order_by(Acknowledgement.recorded_at, Acknowledgement.id)
            .offset(offset)
            .limit(limit)
        )
    )


async def one(
    session: AsyncSession, message_id: uuid.UUID, acknowledgement_id: uuid.UUID, caller: Caller
) -> Acknowledgement:
    """One of the caller's acknowledgements of its own message; 404 otherwise."""
    await _own_message(session, message_id, caller)
    found = await session.get(Acknowledgement, acknowledgement_id)
    if (
        found is None
        or found.message_id != message_id
        or found.organisation_id != caller.organisation_id
    ):
        raise Problem(404, "Not found", "No such acknowledgement of this message.")
    return found


async def of_messages(
    session: AsyncSession, message_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Acknowledgement]]:
    """Per message, its acknowledgements oldest first: for the prison's view of its notice."""
    ids = list(set(message_ids))
    found: dict[uuid.UUID, list[Acknowledgement]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await session.scalars(
        select(Acknowledgement)
        .where(Acknowledgement.message_id.in_(ids))
        .order_by(Acknowledgement.recorded_at, Acknowledgement.id)
    )
    for row in rows:
        found[row.message_id].append(row)
    return found
