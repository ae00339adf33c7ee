"""The continuity-of-care measure, decided without a database (pure).

A release (app/reports/reporting.py reads them) is engaged when its substance misuse service
acknowledged `attended` with an appointment dated within the window (`Windows.engaged_in_window`).
Every other release falls in exactly one category, tried in this order: `no_consent` (the
version in force sent the service no message, or its message was withdrawn or revoked),
`still_in_window` (today is not past the window's last day), then by the service's latest
acknowledgement: none, `no_acknowledgement`; received or accepted,
`received_no_appointment`; an appointment booked or attended dated after the window,
`appointment_outside_window`; `did_not_attend`; `declined`; an appointment booked within the
window but never recorded attended, `appointment_not_recorded`. A status the exchange may add
later counts as received (any acknowledgement says the message arrived).

Groups add the releases up, then suppress small numbers (app/reports/suppression.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from app.deadlines.rules import Windows
from app.reports import suppression
from app.reports.grouping import By, Place

RELEASED, ENGAGED, RATE = "released", "engaged_within_21_days", "rate"
CATEGORIES = (
    "no_consent",
    "still_in_window",
    "no_acknowledgement",
    "received_no_appointment",
    "appointment_outside_window",
    "did_not_attend",
    "declined",
    "appointment_not_recorded",
)
APPOINTMENTS = ("appointment_booked", "attended")


@dataclass(frozen=True)
class Release:
    """One release as read: where it falls, whether its message to the service stands, the
    service's latest acknowledgement on any version's message, and the earliest day it
    acknowledged `attended` on or after the release date."""

    place: Place
    message_stands: bool
    latest_status: str | None = None
    latest_date: date | None = None
    first_attended: date | None = None


@dataclass(frozen=True)
class Group:
    """A group's figures as published: None where suppressed (or, for the rate, undefined)."""

    key: str
    released: int | None
    engaged: int | None
    rate: float | None
    breakdown: dict[str, int | None]
    provisional: bool
    suppressed: tuple[str, ...]


def classify(release: Release, windows: Windows, today: date) -> str:
    """ENGAGED, or the one category the release falls in."""
    return _classified(release, windows.engagement_due(release.place.release_date), today)


def _classified(release: Release, due: date, today: date) -> str:
    """classify, given the last day of the release's window (`Windows.engagement_due`)."""
    day = release.place.release_date
    attended = release.first_attended
    if attended is not None and day <= attended <= due:  # Windows.engaged_in_window
        return ENGAGED
    if not release.message_stands:
        return "no_consent"
    if today <= due:
        return "still_in_window"
    status, on = release.latest_status, release.latest_date
    if status is None:
        return "no_acknowledgement"
    if status in APPOINTMENTS:
        inside = on is not None and day <= on <= due
        return (
            "appointment_not_recorded"
            if inside and status != "attended"
            else ("appointment_outside_window")
        )
    if status in ("did_not_attend", "declined"):
        return status
    return "received_no_appointment"  # received, accepted, or a status added later


def tally(releases: Iterable[Release], windows: Windows, *, today: date, by: By) -> list[Group]:
    """Each group's counts, rate and flags, small numbers suppressed, in the order of keys."""
    counts: dict[str, dict[str, int]] = {}
    provisional: dict[str, bool] = {}
    dues: dict[date, date] = {}  # each release date's window's last day, worked out once
    for release in releases:
        day = release.place.release_date
        due = dues.get(day)
        if due is None:
            due = dues[day] = windows.engagement_due(day)
        key = release.place.key(by)
        cells = counts.get(key)
        if cells is None:
            cells = counts[key] = dict.fromkeys((ENGAGED, *CATEGORIES), 0)
            provisional[key] = False
        cells[_classified(release, due, today)] += 1
        if today <= due:  # the window still open
            provisional[key] = True
    return [_published(key, counts[key], provisional[key]) for key in sorted(counts)]


def _published(key: str, cells: dict[str, int], provisional: bool) -> Group:
    released = sum(cells.values())
    hidden = suppression.partition((RELEASED, released), cells)
    withheld = RELEASED in hidden or ENGAGED in hidden
    rate = None if withheld or not released else round(cells[ENGAGED] / released, 3)
    shown = suppression.shown({RELEASED: released, **cells}, hidden)
    order = (RELEASED, ENGAGED, *CATEGORIES)
    return Group(
        key=key,
        released=shown[RELEASED],
        engaged=shown[ENGAGED],
        rate=rate,
        breakdown={category: shown[category] for category in CATEGORIES},
        provisional=provisional,
        suppressed=tuple(name for name in order if name in hidden) + ((RATE,) if withheld else ()),
    )
