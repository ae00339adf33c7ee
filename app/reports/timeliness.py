"""The timeliness report, decided without a database (pure).

Per group of releases and per kind of recipient:

- `receipt`: over the disclosure messages of the versions in force (not revoked), the hours from
  a message's creation (when it was first available) to its first acknowledgement of any
  status; `share_overdue` is (first acknowledged after the receipt deadline, or not at all and
  the deadline passed) over (acknowledged, or the deadline passed). The deadline is the end,
  in England and Wales, of `Windows.receipt_due`.
- `first_appointment`: over the releases whose message to the recipient stands (neither
  withdrawn nor revoked), the days from the release date to the earliest appointment the
  recipient acknowledged (booked, attended or did not attend) on any version's message. For
  the substance misuse service, `share_overdue` is (no `attended` within the window, and the
  window closed) over (the window closed); null for the probation provider.

Medians and 90th percentiles interpolate linearly (grouping.percentile), to one decimal. Counts
of 1 to 4 are suppressed, with the median and 90th percentile of that count; a share is
withheld when its numerator, its denominator or their difference (the complement's count) is 1
to 4.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from app.deadlines import calendar
from app.deadlines.calendar import end_of
from app.deadlines.rules import Windows
from app.reports import suppression
from app.reports.grouping import By, Place, percentile

PROBATION, SMS = "probation_provider", "substance_misuse_service"
KINDS = (PROBATION, SMS)


@dataclass(frozen=True)
class Sent:
    """One disclosure message of a version in force, as read: where its release falls, its
    recipient's kind, when it was created and first acknowledged, whether it stands, and the
    recipient's earliest appointment (and attended appointment) on or after the release date."""

    place: Place
    kind: str
    created_at: datetime
    first_acknowledged_at: datetime | None
    stands: bool
    first_appointment: date | None = None
    first_attended: date | None = None


@dataclass
class _Tally:
    hours: list[float] = field(default_factory=list)
    receipt_overdue: int = 0
    receipt_due: int = 0
    days: list[float] = field(default_factory=list)
    engagement_overdue: int = 0
    engagement_closed: int = 0


@dataclass(frozen=True)
class Row:
    """One group's figures for one kind of recipient, as published."""

    key: str
    kind: str
    receipt: dict[str, float | int | None]
    first_appointment: dict[str, float | int | None]
    suppressed: tuple[str, ...]


def _add(
    tally: _Tally, sent: Sent, *, deadline: datetime, windows: Windows, now: datetime, today: date
) -> None:
    acknowledged = sent.first_acknowledged_at
    if acknowledged is not None:
        tally.hours.append((acknowledged - sent.created_at).total_seconds() / 3600)
    if acknowledged is not None or now > deadline:
        tally.receipt_due += 1
        tally.receipt_overdue += (acknowledged or now) > deadline
    if not sent.stands:
        return
    release = sent.place.release_date
    if sent.first_appointment is not None:
        tally.days.append(float((sent.first_appointment - release).days))
    if sent.kind == SMS and today > windows.engagement_due(release):
        tally.engagement_closed += 1
        attended = sent.first_attended
        tally.engagement_overdue += not (attended and windows.engaged_in_window(attended, release))


def tally(
    sent: Iterable[Sent], windows: Windows, *, now: datetime, today: date, by: By
) -> list[Row]:
    """Per group (in the order of keys) a row per kind of recipient, small numbers suppressed."""
    tallies: dict[str, dict[str, _Tally]] = {}
    deadlines: dict[date, datetime] = {}  # the receipt deadline, once per day made available
    for message in sent:
        key = message.place.key(by)
        group = tallies.get(key)
        if group is None:
            group = tallies[key] = {kind: _Tally() for kind in KINDS}
        # Windows.receipt_due counts from the day (in England and Wales) it was made available.
        made = calendar.today(message.created_at)
        deadline = deadlines.get(made)
        if deadline is None:
            deadline = deadlines[made] = end_of(windows.receipt_due(message.created_at))
        counted = group.get(message.kind)
        if counted is None:  # a kind of recipient the report does not know yet
            counted = group[message.kind] = _Tally()
        _add(counted, message, deadline=deadline, windows=windows, now=now, today=today)
    return [_row(key, kind, tallies[key][kind]) for key in sorted(tallies) for kind in tallies[key]]


def _spread(values: list[float], prefix: str, unit: str) -> tuple[dict, list[str]]:
    count = len(values)
    if suppression.small(count):
        names = [f"{prefix}.{n}" for n in ("count", f"median_{unit}", f"p90_{unit}")]
        return {"count": None, f"median_{unit}": None, f"p90_{unit}": None}, names
    median, p90 = percentile(values, 0.5), percentile(values, 0.9)
    return {
        "count": count,
        f"median_{unit}": None if median is None else round(median, 1),
        f"p90_{unit}": None if p90 is None else round(p90, 1),
    }, []


def _share(numerator: int, denominator: int, *, name: str, hidden: list[str]) -> float | None:
    if suppression.withheld(numerator, denominator):
        hidden.append(name)
    return suppression.share(numerator, denominator)


def _row(key: str, kind: str, tally: _Tally) -> Row:
    receipt, hidden = _spread(tally.hours, "receipt", "hours")
    receipt["share_overdue"] = _share(
        tally.receipt_overdue, tally.receipt_due, name="receipt.share_overdue", hidden=hidden
    )
    appointment, more = _spread(tally.days, "first_appointment", "days")
    hidden += more
    appointment["share_overdue"] = (
        _share(
            tally.engagement_overdue,
            tally.engagement_closed,
            name="first_appointment.share_overdue",
            hidden=hidden,
        )
        if kind == SMS
        else None
    )
    return Row(key, kind, receipt, appointment, tuple(hidden))
