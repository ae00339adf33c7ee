"""Reports: the continuity-of-care measure and timeliness, aggregates with small numbers
suppressed, for auditors and operators (every release) and prisons (their own)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.access.identity import Caller
from app.api.callers import ReportReader
from app.api.deps import Now, Session
from app.api.problems import PROBLEMS
from app.reports import grouping, reporting
from app.wire.base import IsoDate
from app.wire.errors import invalid
from app.wire.reports import (
    CONTINUITY_DEFINITION,
    ContinuityReport,
    ReportBy,
    TimelinessReport,
)

router = APIRouter(prefix="/v1/reports", tags=["reports"])
EVERY_RELEASE = ("auditor", "operator")  # any other kind sees its own releases only

From = Annotated[
    IsoDate,
    Query(alias="from", description="The first release date counted (YYYY-MM-DD)."),
]
To = Annotated[
    IsoDate,
    Query(
        description="The last release date counted (YYYY-MM-DD): not before `from`, and at most "
        "five years after it (2021-03-01 to 2026-03-01 is allowed)."
    ),
]
By = Annotated[
    ReportBy,
    Query(description="Group by `prison` (its code), `service` (its code) or `month` (YYYY-MM)."),
]
SELECTION = (
    " A release is a notice whose version in force (accepted) has its release date in [from, "
    "to] and names a substance misuse service on its release plan; one per notice, however "
    "amended; cancelled notices are out, and notices stored before release dates were kept "
    "(migration 0011) are not counted. Auditors and operators see every release, a prison its "
    "own. Counts from 1 to 4 are suppressed (null, and named in `suppressed`); a cell that "
    "subtraction would reveal is suppressed too; there is no totals row."
)


def _asked(caller: Caller, start: date, end: date, *, by: grouping.By) -> grouping.Asked:
    """The question, or a 422 naming the parameter; a prison's narrowed to its own releases."""
    wrong = grouping.problem(start, end)
    if wrong is not None:
        raise invalid([{"pointer": f"/{wrong[0]}", "detail": wrong[1]}])
    own = None if caller.kind in EVERY_RELEASE else caller.organisation_id
    return grouping.Asked(start, end, by, organisation_id=own)


@router.get(
    "/continuity-of-care",
    name="continuity-of-care",
    response_model=ContinuityReport,
    responses=PROBLEMS,
    description=CONTINUITY_DEFINITION
    + " Releases not engaged fall in exactly one category of `breakdown`, tried in its order. "
    "A group is provisional while any of its releases is inside its window." + SELECTION,
)
async def continuity_of_care(
    caller: ReportReader,
    session: Session,
    now: Now,
    request: Request,
    start: From,
    to: To,
    by: By = "month",
) -> ContinuityReport:
    """The continuity-of-care measure per group of releases."""
    asked = _asked(caller, start, to, by=by)
    windows = request.app.state.settings.windows
    return await reporting.continuity_of_care(session, asked, windows=windows, now=now)


@router.get(
    "/timeliness",
    name="timeliness",
    response_model=TimelinessReport,
    responses=PROBLEMS,
    description="Per group of releases, a row per kind of recipient: `receipt`, the hours from "
    "a disclosure message of the version in force being available to its first "
    "acknowledgement (any status), and the share overdue (acknowledged after the end of the "
    "receipt deadline's day, or not at all once it passed); `first_appointment`, the days from "
    "release to the first appointment acknowledged (booked, attended or did not attend), and for "
    "the substance misuse service the share of releases whose window closed with no attended "
    "appointment within it. Medians and 90th percentiles interpolate linearly between closest "
    "ranks; a median or percentile is withheld with its count, a share when its numerator, its "
    "denominator or their difference is 1 to 4." + SELECTION,
)
async def timeliness(
    caller: ReportReader,
    session: Session,
    now: Now,
    request: Request,
    start: From,
    to: To,
    by: By = "month",
) -> TimelinessReport:
    """How quickly recipients acknowledge and see people, per group of releases."""
    asked = _asked(caller, start, to, by=by)
    windows = request.app.state.settings.windows
    return await reporting.timeliness_of(session, asked, windows=windows, now=now)
