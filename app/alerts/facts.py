"""What the messages and acknowledgements say of a batch of deadlines passed: the overdue
scan's reads (app/alerts/scan.py), a few whatever the batch's size, and each deadline as the
planner takes it (`Due`).

A receipt concerns its message: it stops when that message no longer stands (superseded,
cancelled, withdrawn, revoked, purged). Engagement and an at_risk concern the release: they
stand while the service's latest message about the release (a disclosure or a cancellation,
not revoked) is a disclosure that stands, whichever version; an engagement deadline of an
earlier message than that one is superseded (the later one has its own), and one whose release
and day were told already is not told again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.alerts.plan import Due
from app.deadlines.rules import BOOKED_OR_ATTENDED, ENGAGEMENT, RECEIPT, attended_by
from app.messages.kinds import CANCELLATION, DISCLOSURE
from app.messages.signed import made_in_order
from app.messages.supersession import superseded_by
from app.storage.models import Acknowledgement, Deadline, Message, Organisation, StoredNotice

PROBATION = "probation_provider"


@dataclass(frozen=True)
class Acknowledged:
    id: uuid.UUID
    message_id: uuid.UUID
    series_id: uuid.UUID
    organisation_id: uuid.UUID
    status: str
    appointment_date: date | None
    recorded_at: datetime


@dataclass(frozen=True)
class Held:
    """An organisation's latest message about a release: a disclosure or a cancellation."""

    message_id: uuid.UUID
    why_not: str | None  # why it is not a disclosure that stands; None if it is
    organisation: Organisation


@dataclass(frozen=True)
class Facts:
    notices: Mapping[uuid.UUID, StoredNotice]  # each deadline's notice version
    stopped: Mapping[uuid.UUID, str | None]  # per message: why it no longer stands, or None
    acknowledged: list[Acknowledged]  # on the messages of the deadlines' releases
    held: Mapping[tuple[uuid.UUID, uuid.UUID], Held]  # (series, organisation): its latest
    told: frozenset[tuple[uuid.UUID, uuid.UUID, date]]  # engagement alerted: series, owner, day
    organisations: Mapping[uuid.UUID, Organisation]

    def due(self, deadline: Deadline) -> Due:
        notice = self.notices[deadline.notice_id]
        raised_by = self._by_id.get(deadline.acknowledgement_id)
        told = (deadline.series_id, deadline.organisation_id, deadline.due_on) in self.told
        return Due(
            id=deadline.id,
            kind=deadline.kind,
            message_id=deadline.message_id,
            notice_id=deadline.notice_id,
            series_id=deadline.series_id,
            owner=self.organisations[deadline.organisation_id],
            due_on=deadline.due_on,
            stopped=self._stopped(deadline),
            met=self._met(deadline, notice.release_date, raised_by),
            prison=self.organisations[notice.organisation_id],
            probation=self._probation.get(deadline.series_id),
            person_ref=notice.person_ref,
            missed_on=raised_by.appointment_date if raised_by else None,
            told_before=deadline.kind == ENGAGEMENT and told,
        )

    # The batch's facts indexed once, so that each deadline's look is a few lookups, not a walk
    # of every acknowledgement and holder of the batch (which grew as the batch squared).
    @cached_property
    def _by_id(self) -> dict[uuid.UUID | None, Acknowledged]:
        return {a.id: a for a in self.acknowledged}

    @cached_property
    def _by_owner(self) -> dict[tuple[uuid.UUID, uuid.UUID], list[Acknowledged]]:
        owners: dict[tuple[uuid.UUID, uuid.UUID], list[Acknowledged]] = {}
        for a in self.acknowledged:
            owners.setdefault((a.organisation_id, a.series_id), []).append(a)
        return owners

    @cached_property
    def _probation(self) -> dict[uuid.UUID, Organisation]:
        """Per release, the first probation provider holding a disclosure of it that stands."""
        standing: dict[uuid.UUID, Organisation] = {}
        for (series_id, _), held in self.held.items():
            if held.organisation.kind == PROBATION and held.why_not is None:
                standing.setdefault(series_id, held.organisation)
        return standing

    def _stopped(self, deadline: Deadline) -> str | None:
        """Why the deadline no longer stands (see the module), or None."""
        if deadline.kind == RECEIPT:
            return self.stopped.get(deadline.message_id, "purged")
        held = self.held.get((deadline.series_id, deadline.organisation_id))
        if held is None:
            return "revoked"
        if held.why_not is not None:
            return held.why_not
        if self.stopped.get(deadline.message_id) == "purged":
            return "purged"
        if deadline.kind == ENGAGEMENT and held.message_id != deadline.message_id:
            return "superseded"
        return None

    def _met(
        self, deadline: Deadline, released: date | None, raised_by: Acknowledged | None
    ) -> bool:
        """Whether an acknowledgement meets the deadline after all: any of its message, for a
        receipt; an attendance within the window on the release, for engagement; for an
        at_risk, a booking or attendance dated after the missed appointment, or recorded
        since it."""
        owner = self._by_owner.get((deadline.organisation_id, deadline.series_id), ())
        if deadline.kind == RECEIPT:
            return any(a.message_id == deadline.message_id for a in owner)
        if deadline.kind == ENGAGEMENT:
            return any(
                attended_by(
                    a.status, a.appointment_date, due_on=deadline.due_on, release_date=released
                )
                for a in owner
            )
        missed = raised_by.appointment_date if raised_by else None
        since = raised_by.recorded_at if raised_by else deadline.created_at
        return any(
            a.status in BOOKED_OR_ATTENDED
            and (
                a.recorded_at > since
                or (
                    missed is not None
                    and a.appointment_date is not None
                    and a.appointment_date > missed
                )
            )
            for a in owner
        )


async def read(session: AsyncSession, passed: list[Deadline]) -> Facts:
    """The batch's notices and messages, the acknowledgements, holders and engagement alerts
    of their releases, and the organisations concerned: five reads (six if an organisation
    holds nothing of a release), whatever the batch's size."""
    notices, stopped = await _messages(session, {d.message_id for d in passed})
    series = {d.series_id for d in passed}
    acknowledged = await _acknowledgements(session, series)
    held = await _held(session, series)
    told = await _told(session, series)
    wanted = {d.organisation_id for d in passed} | {n.organisation_id for n in notices.values()}
    organisations = {h.organisation.id: h.organisation for h in held.values()}
    missing = wanted - set(organisations)
    if missing:
        found = await session.scalars(select(Organisation).where(Organisation.id.in_(missing)))
        organisations |= {o.id: o for o in found}
    return Facts(notices, stopped, acknowledged, held, told, organisations)


async def _messages(
    session: AsyncSession, message_ids: set[uuid.UUID]
) -> tuple[dict[uuid.UUID, StoredNotice], dict[uuid.UUID, str | None]]:
    """Each message's notice version, and why the message no longer stands (None: it does)."""
    rows = await session.execute(
        select(Message.id, Message.revoked_at, Message.withdrawn_at, Message.purged_at)
        .add_columns(superseded_by(Message.id), StoredNotice)
        .join(StoredNotice, StoredNotice.id == Message.notice_id)
        .where(Message.id.in_(message_ids))
        .options(defer(StoredNotice.body_sealed, raiseload=True))  # an alert never opens it
    )
    notices: dict[uuid.UUID, StoredNotice] = {}
    stopped: dict[uuid.UUID, str | None] = {}
    for id_, revoked, withdrawn, purged, replaced_by, notice in rows:
        notices[notice.id] = notice
        stopped[id_] = _why_stopped(
            purged=purged is not None or notice.purged_at is not None,
            cancelled=notice.status == "cancelled",
            replaced=replaced_by is not None,
            withdrawn=withdrawn is not None,
            revoked=revoked is not None,
        )
    return notices, stopped


def _why_stopped(**facts: bool) -> str | None:
    """The first fact that stops a message's deadlines, in this order; None if none holds."""
    names = {"replaced": "superseded"}
    return next((names.get(name, name) for name, holds in facts.items() if holds), None)


async def _acknowledgements(session: AsyncSession, series: set[uuid.UUID]) -> list[Acknowledged]:
    rows = await session.execute(
        select(Acknowledgement.id, Acknowledgement.message_id, StoredNotice.series_id)
        .add_columns(Acknowledgement.organisation_id, Acknowledgement.status)
        .add_columns(Acknowledgement.appointment_date, Acknowledgement.recorded_at)
        .join(Message, Message.id == Acknowledgement.message_id)
        .join(StoredNotice, StoredNotice.id == Message.notice_id)
        .where(StoredNotice.series_id.in_(series))
    )
    return [Acknowledged(*row) for row in rows]


async def _held(
    session: AsyncSession, series: set[uuid.UUID]
) -> dict[tuple[uuid.UUID, uuid.UUID], Held]:
    """Per release and organisation, its latest message about it (a disclosure or a
    cancellation, not revoked), and why that is not a disclosure that stands, if it is not."""
    rows = await session.execute(
        select(StoredNotice.series_id, StoredNotice.status, Message.id, Message.kind)
        .add_columns(Message.withdrawn_at, Message.purged_at, Organisation)
        .join(Message, Message.notice_id == StoredNotice.id)
        .join(Organisation, Organisation.id == Message.recipient_organisation_id)
        .where(
            StoredNotice.series_id.in_(series),
            Message.kind.in_((DISCLOSURE, CANCELLATION)),
            Message.revoked_at.is_(None),
        )
        .order_by(*made_in_order())
    )
    held: dict[tuple[uuid.UUID, uuid.UUID], Held] = {}
    for series_id, status, message_id, kind, withdrawn, purged, organisation in rows:
        why_not = _why_stopped(
            purged=purged is not None,
            cancelled=kind == CANCELLATION or status == "cancelled",
            withdrawn=withdrawn is not None,
        )
        held[series_id, organisation.id] = Held(message_id, why_not, organisation)
    return held


async def _told(
    session: AsyncSession, series: set[uuid.UUID]
) -> frozenset[tuple[uuid.UUID, uuid.UUID, date]]:
    """The engagement deadlines of these releases already alerted: release, owner, day."""
    rows = await session.execute(
        select(Deadline.series_id, Deadline.organisation_id, Deadline.due_on).where(
            Deadline.series_id.in_(series),
            Deadline.kind == ENGAGEMENT,
            Deadline.alerted_at.is_not(None),
        )
    )
    return frozenset((s, o, d) for s, o, d in rows)
