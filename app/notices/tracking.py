"""What became of a prison's notice: every version, and per recipient its message, deliveries
and acknowledgements.

Read only; never a payload value, only ids, codes and states, and what recipients told the
prison with their acknowledgements: appointments' days and notes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, Row, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.access.identity import Caller
from app.deadlines.rules import state_of
from app.keys.sealing import DataKeys
from app.messages import acknowledgements
from app.messages.kinds import CANCELLATION, CARE_UPDATE, CONSENT_WITHDRAWN, DISCLOSURE
from app.messages.supersession import superseded_by
from app.storage.models import (
    Acknowledgement,
    Deadline,
    Delivery,
    Disclosure,
    Message,
    Organisation,
    StoredNotice,
)
from app.wire.errors import Problem


@dataclass(frozen=True)
class Acknowledged:
    status: str
    appointment_date: date | None
    note: str | None
    recorded_at: datetime
    late: bool = False


@dataclass(frozen=True)
class Owed:
    """A deadline of the recipient's about its message, and its state (app/deadlines/rules.py)."""

    kind: str
    due_on: date
    due_at: datetime
    state: str
    met_at: datetime | None
    alerted_at: datetime | None


@dataclass(frozen=True)
class RecipientTracking:
    organisation_code: str
    role: str
    kind: str
    message_id: uuid.UUID | None
    supersedes: uuid.UUID | None
    superseded_by: uuid.UUID | None  # the later message that replaced this one, if one did
    deliveries: list[Delivery]
    acknowledgements: list[Acknowledged]  # oldest first
    deadlines: list[Owed]  # by when they fall

    @property
    def acknowledgement(self) -> str | None:
        """The latest status the recipient gave."""
        return self.acknowledgements[-1].status if self.acknowledgements else None

    @property
    def appointment_date(self) -> date | None:
        """The appointment's day the latest status gave, if it gave one."""
        return self.acknowledgements[-1].appointment_date if self.acknowledgements else None


@dataclass(frozen=True)
class Tracking:
    notice: StoredNotice
    versions: list[StoredNotice]  # the whole series, oldest first
    recipients: list[RecipientTracking]

    @property
    def superseded_by(self) -> uuid.UUID | None:
        return next((v.id for v in self.versions if v.supersedes_id == self.notice.id), None)


async def track(
    session: AsyncSession,
    notice_id: uuid.UUID,
    *,
    caller: Caller,
    data_keys: DataKeys,
    now: datetime,
) -> Tracking:
    """A notice of the caller's own with its history and recipients, their deadlines' states as
    of `now`; else 404."""
    notice = await session.get(StoredNotice, notice_id)
    if notice is None or notice.organisation_id != caller.organisation_id:
        raise Problem(404, "Not found", "No such release notice.")
    versions = (
        await session.scalars(
            select(StoredNotice)
            .where(StoredNotice.series_id == notice.series_id)
            .order_by(StoredNotice.version)
        )
    ).all()
    sent = await _what_was_sent(session, notice_id)
    return Tracking(notice, list(versions), _recipients(sent, data_keys, now=now))


@dataclass(frozen=True)
class _Sent:
    """What one notice version was decided and sent to, as read."""

    decided: Sequence[Row[tuple[uuid.UUID, str, str]]]  # disclosure id, role, organisation code
    # Each message with its recipient's code and kind and the message that replaced it, if any.
    messages: Sequence[Row[tuple[Message, str, str, uuid.UUID | None]]]
    deliveries: Sequence[Delivery]
    acknowledged: Mapping[uuid.UUID, Sequence[Acknowledgement]]
    deadlines: Sequence[Deadline]


def _about_the_notice() -> ColumnElement[bool]:
    """A message about the notice itself: not a care update's, nor one replacing a care
    update's (a `consent_withdrawn` naming it): care updates are never the prison's."""
    replaced = aliased(Message)
    of_update = exists().where(replaced.id == Message.supersedes_id, replaced.kind == CARE_UPDATE)
    return (Message.kind != CARE_UPDATE) & ~of_update


async def _what_was_sent(session: AsyncSession, notice_id: uuid.UUID) -> _Sent:
    decided = (
        await session.execute(
            select(Disclosure.id, Disclosure.recipient_role, Organisation.code)
            .join(Organisation, Organisation.id == Disclosure.recipient_organisation_id)
            .where(Disclosure.notice_id == notice_id, Disclosure.care_update_id.is_(None))
            .order_by(Disclosure.recipient_role)
        )
    ).all()
    messages = (
        await session.execute(
            select(Message, Organisation.code, Organisation.kind, superseded_by(Message.id))
            .join(Organisation, Organisation.id == Message.recipient_organisation_id)
            .where(Message.notice_id == notice_id, _about_the_notice())
            .order_by(Message.created_at, Message.stored_order, Message.id)
        )
    ).all()
    deliveries = (
        await session.scalars(
            select(Delivery)
            .join(Message, Message.id == Delivery.message_id)
            .where(Message.notice_id == notice_id, _about_the_notice())
            .order_by(Delivery.created_at, Delivery.id)
        )
    ).all()
    acknowledged = await acknowledgements.of_messages(session, (m.id for m, *_ in messages))
    deadlines = (
        await session.scalars(
            select(Deadline)
            .join(Message, Message.id == Deadline.message_id)
            .where(Message.notice_id == notice_id)
            .order_by(Deadline.due_at, Deadline.id)
        )
    ).all()
    return _Sent(decided, messages, deliveries, acknowledged, deadlines)


def _owed(
    sent: _Sent, message: Message | None, *, replaced_by: uuid.UUID | None, now: datetime
) -> list[Owed]:
    """The message's deadlines and their states: none stands once the message does not."""
    if message is None:
        return []
    standing = (
        replaced_by is None
        and message.revoked_at is None
        and message.withdrawn_at is None
        and message.purged_at is None
    )
    return [
        Owed(
            d.kind,
            d.due_on,
            d.due_at,
            state_of(
                met_at=d.met_at,
                stopped_at=d.stopped_at,
                alerted_at=d.alerted_at,
                due_at=d.due_at,
                standing=standing,
                now=now,
            ),
            d.met_at,
            d.alerted_at,
        )
        for d in sent.deadlines
        if d.message_id == message.id
    ]


def _recipients(sent: _Sent, data_keys: DataKeys, *, now: datetime) -> list[RecipientTracking]:
    """A row per recipient decided on (with its disclosure's message, if one was sent), then
    one per cancellation or withdrawal sent."""
    replaced_by = {m.id: by for m, _, _, by in sent.messages}

    def row(message: Message | None, *, kind: str, code: str, role: str) -> RecipientTracking:
        return RecipientTracking(
            organisation_code=code,
            role=role,
            kind=kind,
            message_id=message.id if message else None,
            supersedes=message.supersedes_id if message else None,
            superseded_by=replaced_by.get(message.id) if message else None,
            deliveries=[d for d in sent.deliveries if message and d.message_id == message.id],
            acknowledgements=[
                Acknowledged(
                    a.status,
                    a.appointment_date,
                    acknowledgements.note_of(data_keys, a),
                    a.recorded_at,
                    a.late,
                )
                for a in (sent.acknowledged[message.id] if message else [])
            ],
            deadlines=_owed(
                sent, message, replaced_by=replaced_by.get(message.id) if message else None, now=now
            ),
        )

    by_disclosure = {m.disclosure_id: m for m, *_ in sent.messages if m.disclosure_id}
    return [
        row(by_disclosure.get(disclosure_id), kind=DISCLOSURE, code=code, role=role)
        for disclosure_id, role, code in sent.decided
    ] + [
        row(m, kind=m.kind, code=code, role=kind)
        for m, code, kind, _ in sent.messages
        if m.kind in (CANCELLATION, CONSENT_WITHDRAWN)
    ]
