"""The overdue scan: find the deadlines that have passed, and tell those who can act.

`scan_due` reads, plans, then writes, in the caller's transaction: the deadlines passed and not
yet looked at (a few rows of the partial index `ix_deadline_open`, locked FOR UPDATE SKIP LOCKED
on PostgreSQL, so that workers scanning side by side take different ones; on SQLite after
taking the database's write lock), then what the
messages and acknowledgements say of them now: whether each message still stands, whether an
acknowledgement meets the deadline after all, and who holds a disclosure of the release. The
pure planner (app/alerts/plan.py) says which are stopped, met or alerted; the events are signed
(app/messages/signed.draft) and stored with their deliveries and log entries as any message is,
and the deadlines marked, in the same transaction: each deadline is alerted once, whatever the
number of workers, and a worker that stops before it commits leaves it for the next.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.plan import Due, plan_alerts
from app.deadlines.rules import AT_RISK, ENGAGEMENT, RECEIPT
from app.messages import outbox
from app.messages.kinds import CANCELLATION, DISCLOSURE
from app.messages.signed import Signing, draft, made_in_order, to_store, write
from app.messages.supersession import superseded_by
from app.storage.models import (
    OPEN_DEADLINE,
    Acknowledgement,
    Deadline,
    Message,
    Organisation,
    StoredNotice,
)

PROBATION = "probation_provider"
BOOKED_OR_ATTENDED = ("appointment_booked", "attended")


async def scan_due(
    session: AsyncSession, signing: Signing, *, now: datetime, limit: int = 100
) -> int:
    """Look at up to `limit` deadlines passed by `now`, oldest first: stop, meet or alert each
    (see the module). How many it looked at; fewer than `limit` means none is left."""
    if not await _any_passed(session, now=now):  # cheap, and takes no lock
        return 0
    if session.bind.dialect.name == "sqlite":
        await _write_lock(session)
    passed = await _passed(session, now=now, limit=limit)
    if not passed:
        return 0
    facts = await _facts(session, passed)
    plan = plan_alerts((facts.due(d) for d in passed), now=now)
    drafts = [draft(s, facts.notices[s.notice_id], signing=signing, now=now) for s in plan.to_sign]
    subscribed = await outbox.subscribers(session, {d.organisation.id for d in drafts})
    stored = to_store(session, drafts, now, subscribed=subscribed, logged=plan.entries)
    await write(session, stored.rows(), stored.entries)
    await _mark(session, plan.alerted, now=now, column="alerted_at")
    await _mark(session, plan.met, now=now, column="met_at")
    if plan.stopped:
        await session.execute(
            update(Deadline.__table__)
            .where(Deadline.__table__.c.id == bindparam("b_id"))
            .values(stopped_at=now, stopped_reason=bindparam("b_reason")),
            [{"b_id": id_, "b_reason": why} for id_, why in plan.stopped],
        )
    return len(passed)


async def _any_passed(session: AsyncSession, *, now: datetime) -> bool:
    found = await session.scalar(
        select(Deadline.id).where(text(OPEN_DEADLINE), Deadline.due_at <= now).limit(1)
    )
    return found is not None


async def _write_lock(session: AsyncSession) -> None:
    """On SQLite, the database's write lock, taken before the deadlines are read, so that two
    scans never read the same ones (SQLite has no row locks): the second reads after the first
    commits."""
    await session.execute(
        update(Deadline)
        .where(Deadline.id.is_(None))  # no row: the statement is for its lock
        .values(kind=Deadline.kind)
        .execution_options(synchronize_session=False)
    )


async def _passed(session: AsyncSession, *, now: datetime, limit: int) -> list[Deadline]:
    """The deadlines passed and not yet looked at, oldest first, locked (skipping those another
    worker holds): an index range scan of ix_deadline_open."""
    return list(
        await session.scalars(
            select(Deadline)
            .where(text(OPEN_DEADLINE), Deadline.due_at <= now)
            .order_by(Deadline.due_at, Deadline.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


async def _mark(
    session: AsyncSession, ids: Iterable[uuid.UUID], *, now: datetime, column: str
) -> None:
    ids = list(ids)
    if ids:
        await session.execute(update(Deadline).where(Deadline.id.in_(ids)).values({column: now}))


@dataclass(frozen=True)
class _Acknowledged:
    id: uuid.UUID
    message_id: uuid.UUID
    series_id: uuid.UUID
    organisation_id: uuid.UUID
    status: str
    appointment_date: date | None
    recorded_at: datetime


@dataclass(frozen=True)
class _Facts:
    """What the messages and acknowledgements say of a batch of deadlines, as read."""

    notices: Mapping[uuid.UUID, StoredNotice]  # each deadline's notice version
    stopped: Mapping[uuid.UUID, str | None]  # per message: why it no longer stands, or None
    acknowledged: list[_Acknowledged]  # on the messages of the deadlines' releases
    probation: Mapping[uuid.UUID, Organisation]  # per release: holding a disclosure that stands
    organisations: Mapping[uuid.UUID, Organisation]

    def due(self, deadline: Deadline) -> Due:
        notice = self.notices[deadline.notice_id]
        raised_by = next(
            (a for a in self.acknowledged if a.id == deadline.acknowledgement_id), None
        )
        return Due(
            id=deadline.id,
            kind=deadline.kind,
            message_id=deadline.message_id,
            notice_id=deadline.notice_id,
            series_id=deadline.series_id,
            owner=self.organisations[deadline.organisation_id],
            due_on=deadline.due_on,
            stopped=self.stopped.get(deadline.message_id, "purged"),
            met=self._met(deadline, notice.release_date, raised_by),
            prison=self.organisations[notice.organisation_id],
            probation=self.probation.get(deadline.series_id),
            person_ref=notice.person_ref,
            missed_on=raised_by.appointment_date if raised_by else None,
        )

    def _met(
        self, deadline: Deadline, released: date | None, raised_by: _Acknowledged | None
    ) -> bool:
        """Whether an acknowledgement meets the deadline after all: any of its message, for a
        receipt; an attendance within the window on the release, for engagement; a booking or
        attendance since the missed appointment, for an at_risk."""
        owner = [a for a in self.acknowledged if a.organisation_id == deadline.organisation_id]
        owner = [a for a in owner if a.series_id == deadline.series_id]
        if deadline.kind == RECEIPT:
            return any(a.message_id == deadline.message_id for a in owner)
        if deadline.kind == ENGAGEMENT:
            return any(
                a.status == "attended"
                and a.appointment_date is not None
                and a.appointment_date <= deadline.due_on
                and (released is None or released <= a.appointment_date)
                for a in owner
            )
        since = raised_by.recorded_at if raised_by else deadline.created_at
        return deadline.kind == AT_RISK and any(
            a.status in BOOKED_OR_ATTENDED and a.recorded_at > since for a in owner
        )


async def _facts(session: AsyncSession, passed: list[Deadline]) -> _Facts:
    """The batch's notices and messages, the acknowledgements and holders of their releases,
    and the organisations concerned: four reads whatever the batch's size."""
    notices, stopped = await _messages(session, {d.message_id for d in passed})
    series = {d.series_id for d in passed}
    acknowledged = await _acknowledgements(session, series)
    probation = await _probation(session, series)
    wanted = {d.organisation_id for d in passed} | {n.organisation_id for n in notices.values()}
    organisations = {
        o.id: o
        for o in await session.scalars(select(Organisation).where(Organisation.id.in_(wanted)))
    }
    organisations |= {o.id: o for o in probation.values()}
    return _Facts(notices, stopped, acknowledged, probation, organisations)


async def _messages(
    session: AsyncSession, message_ids: set[uuid.UUID]
) -> tuple[dict[uuid.UUID, StoredNotice], dict[uuid.UUID, str | None]]:
    """Each message's notice version, and why the message no longer stands (None: it does)."""
    rows = await session.execute(
        select(Message.id, Message.revoked_at, Message.withdrawn_at, Message.purged_at)
        .add_columns(superseded_by(Message.id), StoredNotice)
        .join(StoredNotice, StoredNotice.id == Message.notice_id)
        .where(Message.id.in_(message_ids))
    )
    notices: dict[uuid.UUID, StoredNotice] = {}
    stopped: dict[uuid.UUID, str | None] = {}
    for id_, revoked, withdrawn, purged, replaced_by, notice in rows:
        notices[notice.id] = notice
        stopped[id_] = _why_stopped(
            cancelled=notice.status == "cancelled",
            replaced=replaced_by is not None,
            withdrawn=withdrawn is not None,
            revoked=revoked is not None,
            purged=purged is not None or notice.purged_at is not None,
        )
    return notices, stopped


def _why_stopped(**facts: bool) -> str | None:
    """The first fact that stops a message's deadlines, in this order; None if none holds."""
    names = {"replaced": "superseded"}
    return next((names.get(name, name) for name, holds in facts.items() if holds), None)


async def _acknowledgements(session: AsyncSession, series: set[uuid.UUID]) -> list[_Acknowledged]:
    rows = await session.execute(
        select(Acknowledgement.id, Acknowledgement.message_id, StoredNotice.series_id)
        .add_columns(Acknowledgement.organisation_id, Acknowledgement.status)
        .add_columns(Acknowledgement.appointment_date, Acknowledgement.recorded_at)
        .join(Message, Message.id == Acknowledgement.message_id)
        .join(StoredNotice, StoredNotice.id == Message.notice_id)
        .where(StoredNotice.series_id.in_(series))
    )
    return [_Acknowledged(*row) for row in rows]


async def _probation(session: AsyncSession, series: set[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Per release, the probation provider whose latest message about it (a disclosure or a
    cancellation, not revoked) is a disclosure that stands: the one an engagement alert tells."""
    rows = await session.execute(
        select(StoredNotice.series_id, Message.kind, Message.withdrawn_at, Organisation)
        .join(Message, Message.notice_id == StoredNotice.id)
        .join(Organisation, Organisation.id == Message.recipient_organisation_id)
        .where(
            StoredNotice.series_id.in_(series),
            Organisation.kind == PROBATION,
            Message.kind.in_((DISCLOSURE, CANCELLATION)),
            Message.revoked_at.is_(None),
        )
        .order_by(*made_in_order())
    )
    latest: dict[tuple[uuid.UUID, uuid.UUID], tuple[str, Any, Organisation]] = {}
    for series_id, kind, withdrawn, organisation in rows:
        latest[series_id, organisation.id] = (kind, withdrawn, organisation)
    return {
        series_id: organisation
        for (series_id, _), (kind, withdrawn, organisation) in latest.items()
        if kind == DISCLOSURE and withdrawn is None
    }
