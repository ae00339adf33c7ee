"""A log entry as a value, before it is written (app/audit/entries.py writes it): pure, so a
planner can say which entries a use case makes without a database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One log entry, as append takes it."""

    action: str
    at: datetime
    actor_organisation_id: uuid.UUID | None = None
    actor_client_id: str | None = None
    notice_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    subject_organisation_id: uuid.UUID | None = None
    person_ref: str | None = None
    details: dict[str, Any] | None = None


def about_message(message: Any, action: str, *, at: datetime, details: dict[str, Any]) -> Entry:
    """A log entry about a message: its notice, and its recipient as the subject."""
    return Entry(
        action,
        at=at,
        notice_id=message.notice_id,
        message_id=message.id,
        subject_organisation_id=message.recipient_organisation_id,
        details=details,
    )
