"""The reports' bodies: the continuity-of-care measure and timeliness, aggregates only."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import ConfigDict, Field

from app.wire.base import Wire

ReportBy = Literal["prison", "service", "month"]
SUPPRESSED = (
    "Counts from 1 to 4 are suppressed (official statistics' practice): null here, and named in "
    "`suppressed`; 0 is shown."
)
CONTINUITY_DEFINITION = (
    "Continuity of care (after PHOF C20, OHID): of the releases whose version in force names a "
    "substance misuse service that was sent the notice, the share whose service acknowledged "
    "`attended` with an appointment dated from the release date to window_days after it."
)
CATEGORY = "Releases not engaged, in exactly one category (see `breakdown`); null if suppressed."


class _Report(Wire):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: date = Field(alias="from", description="The first release date counted.")
    to: date = Field(description="The last release date counted.")
    by: ReportBy = Field(
        description="What the groups are: a prison's code, a service's, or a month (YYYY-MM)."
    )
    window_days: int = Field(
        description="The engagement window in days (the setting engagement_days, 21 by default)."
    )
    generated_at: datetime
    definition: str


class ContinuityBreakdown(Wire):
    no_consent: int | None = Field(
        description="The version in force sent the service no message (the policy allowed "
        "nothing, as consent was not given), or its message was withdrawn or revoked."
    )
    still_in_window: int | None = Field(
        description="Not engaged yet, and the window is still open."
    )
    no_acknowledgement: int | None = Field(description="The service never acknowledged the notice.")
    received_no_appointment: int | None = Field(
        description="The service's latest acknowledgement is `received` or `accepted`."
    )
    appointment_outside_window: int | None = Field(
        description="The latest is an appointment booked or attended dated after the window."
    )
    did_not_attend: int | None = Field(description="The latest is `did_not_attend`.")
    declined: int | None = Field(description="The latest is `declined`.")
    appointment_not_recorded: int | None = Field(
        description="The latest is an appointment booked within the window, never recorded as "
        "attended (a category the issue's list leaves out)."
    )


class ContinuityGroup(Wire):
    group: str = Field(description="The prison's code, the service's code, or YYYY-MM.")
    released: int | None = Field(description="Releases in the group; null if suppressed.")
    engaged_within_21_days: int | None = Field(
        description="Releases engaged within the window (window_days); null if suppressed."
    )
    rate: float | None = Field(
        description="engaged_within_21_days / released to 3 places; null when either is "
        "suppressed (then `rate` is in `suppressed`) or nothing was released."
    )
    breakdown: ContinuityBreakdown
    provisional: bool = Field(
        description="Some release of the group is still inside its window: the figures may change."
    )
    suppressed: list[str] = Field(description="The members withheld. " + SUPPRESSED)


class ContinuityReport(_Report):
    """The continuity-of-care measure per group of releases. Releases are notice series whose
    version in force (accepted) has its release date in [from, to] and names a substance misuse
    service; notices stored before release dates were kept (migration 0011) are not counted.
    No totals row: it would give suppressed cells away by difference."""

    groups: list[ContinuityGroup]


class ReceiptFigures(Wire):
    count: int | None = Field(description="Messages acknowledged (any status).")
    median_hours: float | None = Field(description="From available to first acknowledged.")
    p90_hours: float | None
    share_overdue: float | None = Field(
        description="Acknowledged after the receipt deadline, or not at all and it passed, over "
        "the messages acknowledged or whose deadline passed; 3 places."
    )


class AppointmentFigures(Wire):
    count: int | None = Field(description="Releases with an appointment acknowledged.")
    median_days: float | None = Field(description="From release to the first appointment's day.")
    p90_days: float | None
    share_overdue: float | None = Field(
        description="Substance misuse service only (null for probation): no attended "
        "appointment within the window, over the releases whose window closed; 3 places."
    )


class TimelinessRow(Wire):
    group: str
    recipient_kind: Literal["probation_provider", "substance_misuse_service"]
    receipt: ReceiptFigures
    first_appointment: AppointmentFigures
    suppressed: list[str] = Field(
        description="The members withheld, as `receipt.count`, `first_appointment.p90_days`... "
        "Counts of 1 to 4 are suppressed with their median and 90th percentile; a share is "
        "withheld when its numerator, its denominator or their difference is 1 to 4."
    )


class TimelinessReport(_Report):
    """Per group of releases (selected as the continuity report's), a row per kind of
    recipient. Medians and 90th percentiles interpolate linearly between closest ranks."""

    rows: list[TimelinessRow]
