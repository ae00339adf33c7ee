"""The reports' reads: a fixed number of SELECTs whatever the number of releases.

The releases in range are one pass over release_notice by its release_date index: the versions
in force (accepted) dated in [from, to] (of one prison, when asked for a prison), each with its
latest disclosure to a substance misuse service. The continuity report joins each to the
service's outcome as kept when acknowledgements arrive (models.EngagementOutcome: one row per
series and recipient), never reading acknowledgements. The timeliness report joins
acknowledgements through the series' messages to each recipient and reduces them in SQL (GROUP
BY for the earliest days), so Python sees one row per release, or per message.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import (
    CTE,
    Boolean,
    Date,
    Select,
    and_,
    case,
    exists,
    func,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.messages.kinds import DISCLOSURE
from app.reports.continuity import Release
from app.reports.grouping import Asked, Place
from app.reports.timeliness import Sent
from app.storage.columns import UTCDateTime
from app.storage.models import (
    Acknowledgement,
    Disclosure,
    EngagementOutcome,
    Message,
    Organisation,
    StoredNotice,
)

SMS = "substance_misuse_service"
ACCEPTED = "accepted"
APPOINTMENT_STATUSES = ("appointment_booked", "attended", "did_not_attend")


def _releases(asked: Asked) -> CTE:
    """One row per release: the version in force and its latest disclosure to a service."""
    notice, chosen, newer = StoredNotice, aliased(Disclosure), aliased(Disclosure)
    later = (
        select(newer.id)
        .where(
            newer.notice_id == chosen.notice_id,
            newer.recipient_role == SMS,
            newer.care_update_id.is_(None),
            or_(
                newer.decided_at > chosen.decided_at,
                and_(newer.decided_at == chosen.decided_at, newer.id > chosen.id),
            ),
        )
        .correlate(chosen)
    )
    query = (
        select(
            notice.id.label("notice_id"),
            notice.series_id,
            notice.release_date,
            notice.organisation_id.label("prison_id"),
            chosen.id.label("disclosure_id"),
            chosen.recipient_organisation_id.label("service_id"),
        )
        .join(
            chosen,
            and_(
                chosen.notice_id == notice.id,
                chosen.recipient_role == SMS,
                chosen.care_update_id.is_(None),  # a care update's decision is not the release's
            ),
        )
        .where(
            notice.status == ACCEPTED,
            notice.release_date >= asked.start,
            notice.release_date <= asked.end,
            ~exists(later),
        )
    )
    if asked.organisation_id is not None:
        query = query.where(notice.organisation_id == asked.organisation_id)
    return query.cte("releases")


def _series_acknowledgements(base: CTE, recipient: Any, key: Any) -> Select[Any]:
    """Every acknowledgement, by `recipient`, of a message of the release's series to it,
    with `key` (a column of `base`, whose rows hold the series_id and release_date)."""
    version, message, ack = aliased(StoredNotice), aliased(Message), Acknowledgement
    return (
        select(key.label("key"), base.c.release_date)
        .select_from(base)
        .join(version, version.series_id == base.c.series_id)
        .join(
            message,
            and_(
                message.notice_id == version.id,
                message.kind == DISCLOSURE,
                message.recipient_organisation_id == recipient,
            ),
        )
        .join(ack, and_(ack.message_id == message.id, ack.organisation_id == recipient))
    )


def _earliest(status: Any, ack_day: Any, release_day: Any) -> Any:
    """The earliest appointment day, on or after the release, of acknowledgements so."""
    return type_coerce(func.min(case((and_(status, ack_day >= release_day), ack_day))), Date)


def continuity_statement(asked: Asked) -> Select[Any]:
    """One row per release: its place, its message's state, and the service's outcome as kept
    (models.EngagementOutcome): its latest acknowledgement and the days it attended."""
    releases = _releases(asked)
    prison, service, sent = aliased(Organisation), aliased(Organisation), aliased(Message)
    outcome = EngagementOutcome
    return (
        select(
            releases.c.release_date,
            prison.code.label("prison"),
            service.code.label("service"),
            _stands(sent).label("message_stands"),
            outcome.latest_status,
            outcome.latest_appointment_date,
            outcome.attended_days,
        )
        .select_from(releases)
        .join(prison, prison.id == releases.c.prison_id)
        .join(service, service.id == releases.c.service_id)
        .outerjoin(
            sent,
            and_(
                sent.notice_id == releases.c.notice_id,
                sent.disclosure_id == releases.c.disclosure_id,
            ),
        )
        .outerjoin(
            outcome,
            and_(
                outcome.series_id == releases.c.series_id,
                outcome.organisation_id == releases.c.service_id,
            ),
        )
    )


def _stands(sent: Any) -> Any:
    """Whether the release's message to the service stands: sent, neither withdrawn nor revoked."""
    stands = and_(sent.id.is_not(None), sent.withdrawn_at.is_(None), sent.revoked_at.is_(None))
    return type_coerce(stands, Boolean)


async def _planned_for_its_dates(session: AsyncSession) -> None:
    """On PostgreSQL, plan this transaction's statements for the values they are sent with: a
    prepared statement's sixth execution on a connection may otherwise get a generic plan, made
    without knowing how many releases the dates take in (about 0.5 s slower over a year of
    70,000 releases; bench/README.md, "Deadlines and reports")."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def releases(session: AsyncSession, asked: Asked) -> Iterator[Release]:
    """The releases asked for, as continuity.Release: one SELECT, its rows as plain tuples."""
    await _planned_for_its_dates(session)
    result = await session.execute(continuity_statement(asked))
    return (
        Release(Place(day, prison, service), bool(stands), status, on, first_attended(days, day))
        for day, prison, service, stands, status, on, days in result
    )


def first_attended(days: str | None, release_date: date) -> date | None:
    """The earliest of the attended days kept (EngagementOutcome.attended_days: ISO days,
    comma-separated) on or after the release date; ISO days compare as their text does."""
    if days is None:
        return None
    after = release_date.isoformat()
    found = [day for day in days.split(",") if day >= after]
    return date.fromisoformat(min(found)) if found else None


def _sent(releases: CTE) -> CTE:
    """The disclosure messages (not revoked) of the releases' versions in force, each with its
    recipient's kind."""
    message, disclosure = aliased(Message), aliased(Disclosure)
    return (
        select(
            releases.c.series_id,
            releases.c.release_date,
            releases.c.prison_id,
            releases.c.service_id,
            message.id.label("message_id"),
            message.recipient_organisation_id.label("recipient_id"),
            message.created_at,
            message.withdrawn_at,
            disclosure.recipient_role.label("kind"),
        )
        .select_from(releases)
        .join(
            message,
            and_(
                message.notice_id == releases.c.notice_id,
                message.kind == DISCLOSURE,
                message.revoked_at.is_(None),
            ),
        )
        .join(disclosure, disclosure.id == message.disclosure_id)
        .cte("sent")
    )


def timeliness_statement(asked: Asked) -> Select[Any]:
    """One row per disclosure message (not revoked) of a version in force: its release's
    place, its recipient's kind, when it was created and first acknowledged, and its
    recipient's earliest appointment and attended days on the series' messages."""
    releases = _releases(asked)
    sent, ack = _sent(releases), Acknowledgement
    firsts = (
        select(ack.message_id, type_coerce(func.min(ack.recorded_at), UTCDateTime).label("at"))
        .join(sent, sent.c.message_id == ack.message_id)
        .group_by(ack.message_id)
        .cte("firsts")
    )
    acked = (
        _series_acknowledgements(sent, sent.c.recipient_id, sent.c.message_id)
        .add_columns(ack.status, ack.appointment_date)
        .cte("acked")
    )
    day = acked.c.appointment_date
    days = (
        select(
            acked.c.key,
            _earliest(acked.c.status.in_(APPOINTMENT_STATUSES), day, acked.c.release_date).label(
                "first_appointment"
            ),
            _earliest(acked.c.status == "attended", day, acked.c.release_date).label(
                "first_attended"
            ),
        )
        .group_by(acked.c.key)
        .cte("days")
    )
    prison, service = aliased(Organisation), aliased(Organisation)
    return (
        select(
            sent.c.release_date,
            prison.code.label("prison"),
            service.code.label("service"),
            sent.c.kind,
            sent.c.created_at,
            firsts.c.at.label("first_acknowledged_at"),
            type_coerce(sent.c.withdrawn_at.is_(None), Boolean).label("stands"),
            days.c.first_appointment,
            days.c.first_attended,
        )
        .select_from(sent)
        .join(prison, prison.id == sent.c.prison_id)
        .join(service, service.id == sent.c.service_id)
        .outerjoin(firsts, firsts.c.message_id == sent.c.message_id)
        .outerjoin(days, days.c.key == sent.c.message_id)
    )


async def messages(session: AsyncSession, asked: Asked) -> Iterator[Sent]:
    """The disclosure messages of the releases asked for, as timeliness.Sent: one SELECT, its
    rows as plain tuples."""
    await _planned_for_its_dates(session)
    result = await session.execute(timeliness_statement(asked))
    return (
        Sent(Place(day, prison, service), kind, created, acked, bool(stands), first, attended)
        for day, prison, service, kind, created, acked, stands, first, attended in result
    )
