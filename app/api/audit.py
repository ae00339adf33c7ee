"""The exchange log, for auditors: what happened, to which notice, by whom. Never values."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from app import disclosures
from app.api.notices import disclosures_out
from app.api.pages import Cursor, Limit, after, next_cursor
from app.auth import AuditReader
from app.db import Session
from app.models import AuditEntry
from app.problems import PROBLEMS
from app.schemas import (
    AuditEntryOut,
    AuditPage,
    NoticeDisclosures,
    UtcInstant,
)

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("/entries", name="list-entries", response_model=AuditPage, responses=PROBLEMS)
async def list_entries(
    _: AuditReader,
    session: Session,
    notice_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    organisation_id: Annotated[
        uuid.UUID | None, Query(description="Entries where it acted or received.")
    ] = None,
    since: UtcInstant | None = None,
    until: UtcInstant | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> AuditPage:
    """Log entries in the order they were written, filtered."""
    query = select(AuditEntry).where(AuditEntry.id > after(cursor))
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
    rows = (await session.scalars(query.order_by(AuditEntry.id).limit(limit))).all()
    return AuditPage(
        items=[AuditEntryOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor([r.id for r in rows], limit),
    )


@router.get(
    "/notices/{notice_id}/disclosures",
    name="notice-disclosures",
    response_model=NoticeDisclosures,
    responses=PROBLEMS,
)
async def notice_disclosures(
    notice_id: uuid.UUID, _: AuditReader, session: Session
) -> NoticeDisclosures:
    """Any notice's disclosures, as its prison sees them at /v1/release-notices/{id}/disclosures."""
    return disclosures_out(*await disclosures.of_notice(session, notice_id, None))
