"""The log's filters, as the API (GET /v1/audit/entries) and the console's log page use them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select

from app.storage.log_tables import AuditEntry


def entries_where(
    query: Select[tuple[AuditEntry]],
    *,
    person_ref: str | None,
    notice_id: uuid.UUID | None,
    action: str | None,
    organisation_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[tuple[AuditEntry]]:
    """The query narrowed to the entries the filters given ask for."""
    if person_ref:  # every entry about a notice of theirs holds it too (audit.append)
        query = query.where(AuditEntry.person_ref == person_ref)
    if notice_id:
        query = query.where(AuditEntry.notice_id == notice_id)
    if action:
        query = query.where(AuditEntry.action == action)
    if organisation_id:
        query = query.where(
            (AuditEntry.actor_organisation_id == organisation_id)
            | (AuditEntry.subject_organisation_id == organisation_id)
        )
    if since:
        query = query.where(AuditEntry.recorded_at >= since)
    if until:
        query = query.where(AuditEntry.recorded_at < until)
    return query
