"""Acknowledgements: what a recipient says became of a message it was sent.

`received` may acknowledge any message; the rest (accepted, appointment booked, attended, did
not attend, declined) only a disclosure. Statuses come in any order, each a new row: people miss
appointments and rebook. An appointment's status carries its day, checked against the release
date of the notice (app/messages/acknowledgement_plan.py). A message revoked before delivery, or
withdrawn with its consent, has nothing to acknowledge. The optional note may name the person:
it is sealed like a notice body, shown to the recipient and to the prison that posted the
notice, purged with the notice's data (app/notices/retention.py), and never logged. A purged
message may still be acknowledged, by code only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from app.access.identity import Caller
from app.deadlines.rules import AT_RISK, ENGAGEMENT, RECEIPT
from app.keys.sealing import DataKeys, Sealed, place
from app.messages import outbox
from app.messages.acknowledgement_plan import Acknowledged, Owed, plan_acknowledgement
from app.messages.kinds import DISCLOSURE
from app.messages.signed import write
from app.storage.batch import Rows
from app.storage.models import (
    Acknowledgement,
    Deadline,
    EngagementOutcome,
    Message,
    StoredNotice,
)
from app.wire.errors import Problem


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


async def _own_message(session: AsyncSession, message_id: uuid.UUID, caller: Caller) -> Message:
    message = await session.scalar(select(Message).where(Message.id == message_id))
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
    appointment_date: date | None,
    note: str | None,
    caller: Caller,
    data_keys: DataKeys,
    now: datetime,
    care_update_id: uuid.UUID | None = None,
) -> Recorded:
    """Record one acknowledgement of the caller's own message, with its log entry: it reads the
    message (locked) and its notice, and for a disclosure the deadlines it may answer; plans
    (app/messages/acknowledgement_plan.py), seals the note, then writes the row, the at_risk it
    raises and the entry (one statement on PostgreSQL), the release's outcome with the recipient
    (for a disclosure), and the deadlines it meets. `care_update_id`: the care update whose
    `attended` event it records (app/updates), not posted as itself."""
    message = await _locked(session, message_id, caller)
    owed = await _owed(session, message) if message.kind == DISCLOSURE else []
    plan = plan_acknowledgement(
        message,
        status=status,
        appointment_date=appointment_date,
        with_note=note is not None,
        caller=caller,
        now=now,
        owed=owed,
    )
    row, entry = {**plan.row, "care_update_id": care_update_id}, plan.entry
    if care_update_id is not None:
        details = {**(entry.details or {}), "care_update_id": str(care_update_id)}
        entry = replace(entry, details=details)
    if note is not None:
        sealed = data_keys.seal(note.encode(), place("acknowledgement", "note_sealed", row["id"]))
        row = {**row, "note_sealed": sealed.blob, "note_key_id": sealed.key_id}
    rows: list[Rows] = [(Acknowledgement.__table__, [row])]
    if plan.at_risk is not None:
        rows.append((Deadline.__table__, [plan.at_risk]))
        await outbox.wake_workers(session)  # the overdue scan tells the probation provider
    await write(session, rows, [entry])
    if message.kind == DISCLOSURE and message.series_id is not None:
        await session.execute(_outcome_kept(session.bind.dialect.name, message, row))
    if plan.met:
        await session.execute(
            update(Deadline)
            .where(Deadline.id.in_(plan.met), Deadline.met_at.is_(None))
            .values(met_at=now)
        )
    return Recorded(Acknowledgement(**row), message.notice_id)


LATEST = (
    "latest_status",
    "latest_appointment_date",
    "latest_recorded_at",
    "latest_acknowledgement_id",
)


def _outcome_kept(dialect: str, message: Acknowledged, row: dict[str, Any]) -> Insert:
    """The upsert that keeps the release's outcome with the recipient (models.EngagementOutcome,
    read by the continuity report): the acknowledgement becomes the latest only if later (by
    recorded_at, then id, as the report has always ordered them), and an attended day joins
    the list unless there already."""
    table = EngagementOutcome.__table__
    attended = row["appointment_date"] if row["status"] == "attended" else None
    added = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).values(
        series_id=message.series_id,
        organisation_id=message.recipient_id,
        latest_status=row["status"],
        latest_appointment_date=row["appointment_date"],
        latest_recorded_at=row["recorded_at"],
        latest_acknowledgement_id=row["id"],
        attended_days=None if attended is None else attended.isoformat(),
    )
    new, old = added.excluded, table.c
    later = or_(
        new.latest_recorded_at > old.latest_recorded_at,
        and_(
            new.latest_recorded_at == old.latest_recorded_at,
            new.latest_acknowledgement_id > old.latest_acknowledgement_id,
        ),
    )
    day, days = new.attended_days, old.attended_days
    listed = ("," + days + ",").contains("," + day + ",")
    return added.on_conflict_do_update(
        index_elements=[old.series_id, old.organisation_id],
        set_={
            **{name: case((later, new[name]), else_=old[name]) for name in LATEST},
            "attended_days": case(
                (day.is_(None) | listed, days),
                (days.is_(None), day),
                else_=days + "," + day,
            ),
        },
    )


async def _owed(session: AsyncSession, message: Acknowledged) -> list[Owed]:
    """The recipient's deadlines the acknowledgement may answer, none stopped: the message's
    receipt and the release's engagement not yet met, and every at_risk of the release (one
    missed appointment raises one), each with its notice version's release date."""
    mine = (Deadline.series_id == message.series_id) & (
        Deadline.organisation_id == message.recipient_id
    )
    found = await session.execute(
        select(Deadline.id, Deadline.kind, Deadline.due_on, Deadline.due_at)
        .add_columns(Deadline.met_at.is_not(None), StoredNotice.release_date)
        .join(StoredNotice, StoredNotice.id == Deadline.notice_id)
        .where(
            Deadline.stopped_at.is_(None),
            or_(
                (Deadline.message_id == message.id)
                & (Deadline.kind == RECEIPT)
                & Deadline.met_at.is_(None),
                mine & (Deadline.kind == ENGAGEMENT) & Deadline.met_at.is_(None),
                mine & (Deadline.kind == AT_RISK),
            ),
        )
    )
    return [Owed(*row) for row in found]


async def _locked(session: AsyncSession, message_id: uuid.UUID, caller: Caller) -> Acknowledged:
    """The caller's own message, numbered, with its notice's purge, person and release date, in
    one read that locks the message: a purge or withdrawal of it waits for us, or has committed
    and is seen here. 404 for another's, or one not yet in the inbox."""
    found = (
        await session.execute(
            select(Message.id, Message.kind, Message.notice_id, Message.recipient_organisation_id)
            .add_columns(Message.sequence, Message.revoked_at, Message.withdrawn_at)
            .add_columns(Message.purged_at, StoredNotice.purged_at, StoredNotice.person_ref)
            .add_columns(StoredNotice.release_date, StoredNotice.series_id)
            .join(StoredNotice, StoredNotice.id == Message.notice_id)
            .where(Message.id == message_id)
            .with_for_update(of=Message.__table__)
        )
    ).one_or_none()
    if found is None:
        raise Problem(404, "Not found", "No such message.")
    id_, kind, notice_id, recipient_id, sequence, revoked, withdrawn, *rest = found
    *purged, person_ref, release_date, series_id = rest
    if recipient_id != caller.organisation_id:
        raise Problem(404, "Not found", "No such message.")
    if sequence is None:  # not in the inbox until numbered (app/api/messages.py)
        raise Problem(404, "Not found", "No such message.")
    return Acknowledged(
        id=id_,
        kind=kind,
        notice_id=notice_id,
        recipient_id=recipient_id,
        revoked=revoked is not None,
        withdrawn=withdrawn is not None,
        purged=any(p is not None for p in purged),
        person_ref=person_ref,
        release_date=release_date,
        series_id=series_id,
    )


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
    session: AsyncSession, message_id: uuid.UUID, acknowledgement_id: uuid.UUID, *, caller: Caller
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


@dataclass(frozen=True)
class Latest:
    """A message's latest acknowledgement, without its note: what the inbox shows of it."""

    id: uuid.UUID
    status: str
    appointment_date: date | None
    recorded_at: datetime
    late: bool


async def latest_of(
    session: AsyncSession, message_ids: Iterable[uuid.UUID], caller: Caller
) -> dict[uuid.UUID, Latest]:
    """Per message of these that the caller acknowledged, its latest acknowledgement (the last
    one listed, oldest first): for the caller's inbox."""
    ids = list(set(message_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(Acknowledgement.message_id, Acknowledgement.id, Acknowledgement.status)
        .add_columns(Acknowledgement.appointment_date, Acknowledgement.recorded_at)
        .add_columns(Acknowledgement.late)
        .where(
            Acknowledgement.message_id.in_(ids),
            Acknowledgement.organisation_id == caller.organisation_id,
        )
        .order_by(Acknowledgement.recorded_at, Acknowledgement.id)
    )
    return {message_id: Latest(*rest) for message_id, *rest in rows}
