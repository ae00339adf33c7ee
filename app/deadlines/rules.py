"""When a disclosure's deadlines fall (pure).

`receipt_due`: the day by whose end a recipient acknowledges a disclosure: the
`receipt_working_days`-th working day in England and Wales after the day it was first
available. `engagement_due`: the last day of the window, `engagement_days` after the release
date, on which an `attended` appointment counts as engagement (the continuity-of-care measure:
treatment started within 21 days of release). A deadline passes at the end of its day
(calendar.end_of).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from app.deadlines.calendar import today, working_days_after

RECEIPT, ENGAGEMENT, AT_RISK = "receipt", "engagement", "at_risk"
BOOKED_OR_ATTENDED = ("appointment_booked", "attended")  # what takes an at_risk back


@dataclass(frozen=True)
class Windows:
    """How long each deadline allows: the settings' receipt_working_days and engagement_days."""

    receipt_working_days: int = 1
    engagement_days: int = 21

    def receipt_due(self, available_at: datetime) -> date:
        """The day by whose end a message first available at `available_at` is received."""
        return working_days_after(today(available_at), self.receipt_working_days)

    def engagement_due(self, release_date: date) -> date:
        """The last day on which an attended appointment is within the window."""
        return release_date + timedelta(days=self.engagement_days)

    def engaged_in_window(self, appointment_date: date, release_date: date) -> bool:
        """Whether an appointment on that day is within the window of that release."""
        return release_date <= appointment_date <= self.engagement_due(release_date)


SUBSTANCE_MISUSE_SERVICE = "substance_misuse_service"


def due_days(
    recipient_kind: str, *, release_date: date | None, available_at: datetime, windows: Windows
) -> dict[str, date]:
    """The days a disclosure's deadlines fall on, by kind: its receipt, whoever it goes to; and
    engagement, for a substance misuse service when the release date is known and its window
    has not closed before the message is available (a notice sent that late gives the service
    nothing it could meet; the continuity-of-care report still counts the release)."""
    due = {RECEIPT: windows.receipt_due(available_at)}
    if recipient_kind == SUBSTANCE_MISUSE_SERVICE and release_date is not None:
        engagement = windows.engagement_due(release_date)
        if engagement >= today(available_at):
            due[ENGAGEMENT] = engagement
    return due


def claims_of(due: dict[str, date]) -> dict[str, str]:
    """The deadlines as a disclosure's signed claims state them: `receipt_due` and, if it has
    one, `engagement_due`, each a day (YYYY-MM-DD) by whose end in England and Wales."""
    return {f"{kind}_due": day.isoformat() for kind, day in due.items()}


OPEN, MET, OVERDUE, STOPPED = "open", "met", "overdue", "stopped"


def state_of(
    *,
    met_at: datetime | None,
    stopped_at: datetime | None,
    alerted_at: datetime | None,
    due_at: datetime,
    standing: bool,
    now: datetime,
) -> str:
    """A deadline's state as the prison's view shows it: `met` (even late); `stopped` (the
    message it concerns no longer stands: superseded, cancelled, withdrawn, revoked);
    `overdue` (passed unmet, alerted or about to be); else `open`."""
    if met_at is not None:
        return MET
    if stopped_at is not None or not standing:
        return STOPPED
    if alerted_at is not None or due_at <= now:
        return OVERDUE
    return OPEN


def attended_by(
    status: str, appointment_date: date | None, *, due_on: date, release_date: date | None
) -> bool:
    """Whether an acknowledgement meets an engagement deadline due on `due_on`: `attended`, on
    a day from the release date (when known) to the deadline's."""
    return (
        status == "attended"
        and appointment_date is not None
        and appointment_date <= due_on
        and (release_date is None or release_date <= appointment_date)
    )


def row(
    kind: str,
    *,
    message_id: uuid.UUID,
    notice_id: uuid.UUID,
    series_id: uuid.UUID,
    owner_id: uuid.UUID,
    due_on: date,
    due_at: datetime,
    now: datetime,
    acknowledgement_id: uuid.UUID | None = None,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> dict[str, Any]:
    """A deadline's row about a message (of that notice version and series), owed by
    `owner_id`, its recipient; neither met, stopped nor alerted."""
    return {
        "id": new_id(),
        "kind": kind,
        "message_id": message_id,
        "notice_id": notice_id,
        "series_id": series_id,
        "organisation_id": owner_id,
        "acknowledgement_id": acknowledgement_id,
        "due_on": due_on,
        "due_at": due_at,
        "created_at": now,
        **dict.fromkeys(("met_at", "stopped_at", "stopped_reason", "alerted_at")),
    }
