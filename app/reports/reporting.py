"""The reports, as a request or a command asks for them: read (app/reports/reading.py, one
SELECT each), decide (continuity, timeliness: pure), and answer in the wire's words. Nothing is
written; the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines.calendar import today
from app.deadlines.rules import Windows
from app.reports import continuity, reading, timeliness
from app.reports.grouping import Asked
from app.wire.reports import (
    CONTINUITY_DEFINITION,
    ContinuityBreakdown,
    ContinuityGroup,
    ContinuityReport,
    TimelinessReport,
    TimelinessRow,
)

TIMELINESS_DEFINITION = (
    "Per kind of recipient: hours from a message being available to its first acknowledgement, "
    "and days from release to the first appointment acknowledged; medians and 90th percentiles "
    "by linear interpolation."
)


def _frame(asked: Asked, windows: Windows, now: datetime) -> dict:
    return {
        "from_": asked.start,
        "to": asked.end,
        "by": asked.by,
        "window_days": windows.engagement_days,
        "generated_at": now,
    }


async def continuity_of_care(
    session: AsyncSession, asked: Asked, *, windows: Windows, now: datetime
) -> ContinuityReport:
    """The continuity-of-care measure per group of the releases asked for."""
    releases = await reading.releases(session, asked)
    groups = continuity.tally(releases, windows, today=today(now), by=asked.by)
    return ContinuityReport(
        **_frame(asked, windows, now),
        definition=CONTINUITY_DEFINITION,
        groups=[
            ContinuityGroup(
                group=g.key,
                released=g.released,
                engaged_within_21_days=g.engaged,
                rate=g.rate,
                breakdown=ContinuityBreakdown(**g.breakdown),
                provisional=g.provisional,
                suppressed=list(g.suppressed),
            )
            for g in groups
        ],
    )


async def timeliness_of(
    session: AsyncSession, asked: Asked, *, windows: Windows, now: datetime
) -> TimelinessReport:
    """The timeliness report per group of the releases asked for, per kind of recipient."""
    sent = await reading.messages(session, asked)
    rows = timeliness.tally(sent, windows, now=now, today=today(now), by=asked.by)
    return TimelinessReport(
        **_frame(asked, windows, now),
        definition=TIMELINESS_DEFINITION,
        rows=[
            TimelinessRow(
                group=r.key,
                recipient_kind=r.kind,
                receipt=r.receipt,
                first_appointment=r.first_appointment,
                suppressed=list(r.suppressed),
            )
            for r in rows
        ],
    )
