"""The exchange log, for auditors: what happened, to which notice, by whom. Never values."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit, disclosures
from app.api.deps import DataKeysDep, Now
from app.api.notices import disclosures_out
from app.api.pages import Cursor, Limit, after, next_cursor
from app.auth import AuditReader
from app.db import Session
from app.identity import Caller
from app.models import AuditEntry, ReleaseNotice
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
    caller: AuditReader,
    session: Session,
    data_keys: DataKeysDep,
    now: Now,
    noms_number: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Z][0-9]{4}[A-Z]{2}$",
            description="Entries about this person (prison number, e.g. A1234BC). The log holds "
            "only a keyed hash of it; this query is logged with that hash, never the number.",
        ),
    ] = None,
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
    """Log entries in the order they were written, filtered. The query is itself logged
    (`audit.consulted`)."""
    person_ref = data_keys.person_ref(noms_number) if noms_number else None
    query = select(AuditEntry).where(AuditEntry.id > after(cursor))
    if person_ref:
        # The person's own entries, and every entry about a notice of theirs.
        query = query.where(
            or_(
                AuditEntry.person_ref == person_ref,
                AuditEntry.notice_id.in_(
                    select(ReleaseNotice.id).where(ReleaseNotice.person_ref == person_ref)
                ),
            )
        )
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
    consulted(
        session,
        caller,
        now,
        "entries",
        person_ref=person_ref,
        notice_id=notice_id,
        filters={
            "action": action,
            "organisation_id": str(organisation_id) if organisation_id else None,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "cursor": cursor,
            "returned": len(rows),
        },
    )
    return AuditPage(
        items=[AuditEntryOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor([r.id for r in rows], limit),
    )


def consulted(
    session: AsyncSession,
    caller: Caller,
    now: datetime,
    what: str,
    *,
    person_ref: str | None = None,
    notice_id: uuid.UUID | None = None,
    filters: dict[str, Any] | None = None,
) -> None:
    """An auditor's query is itself a log entry (DPA 2018 s.62: consultation), in the query's
    transaction: ids, codes and the person's keyed hash only."""
    audit.append(
        session,
        "audit.consulted",
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        notice_id=notice_id,
        person_ref=person_ref,
        details={"query": what, **{k: v for k, v in (filters or {}).items() if v is not None}},
    )


@router.get(
    "/notices/{notice_id}/disclosures",
    name="notice-disclosures",
    response_model=NoticeDisclosures,
    responses=PROBLEMS,
)
async def notice_disclosures(
    notice_id: uuid.UUID, caller: AuditReader, session: Session, now: Now
) -> NoticeDisclosures:
    """Any notice's disclosures, as its prison sees them at /v1/release-notices/{id}/disclosures.
    The query is itself logged (`audit.consulted`)."""
    answer = disclosures_out(*await disclosures.of_notice(session, notice_id, None))
    consulted(session, caller, now, "notice_disclosures", notice_id=notice_id)
    return answer
