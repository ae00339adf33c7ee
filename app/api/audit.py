"""The exchange log, for auditors: what happened, to which notice, by whom. Never values."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Caller
from app.api.callers import AuditReader
from app.api.deps import DataKeysDep, LogSignerDep, Now, Session
from app.api.notices import disclosures_out
from app.api.pages import IN_DIGITS, Cursor, Limit, after, next_cursor
from app.api.problems import PROBLEMS
from app.audit import entries as audit
from app.audit import export as log_export
from app.audit import filters
from app.audit import tree as log_tree
from app.disclosure import explanations as disclosures
from app.storage.log_tables import AuditEntry
from app.wire.audit import (
    AuditEntryOut,
    AuditPage,
    CheckpointOut,
    ConsistencyProofOut,
    InclusionProofOut,
)
from app.wire.base import Instant
from app.wire.errors import Problem
from app.wire.schemas import (
    NoticeDisclosures,
)

router = APIRouter(prefix="/v1/audit", tags=["audit"])
ACTION = r"^[a-z][a-z0-9_.]{0,63}$"  # what was done: lower case words, dot-separated


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
    action: Annotated[
        str | None, Query(pattern=ACTION, description="e.g. notice.received, client.created.")
    ] = None,
    organisation_id: Annotated[
        uuid.UUID | None, Query(description="Entries where it acted or received.")
    ] = None,
    since: Instant | None = None,
    until: Instant | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> AuditPage:
    """Log entries in the order they were written, filtered. The query is itself logged
    (`audit.consulted`)."""
    person_ref = data_keys.person_ref(noms_number) if noms_number else None
    query = filters.entries_where(
        select(AuditEntry).where(AuditEntry.id > after(cursor)),
        person_ref=person_ref,
        notice_id=notice_id,
        action=action,
        organisation_id=organisation_id,
        since=since,
        until=until,
    )
    rows = (await session.scalars(query.order_by(AuditEntry.id).limit(limit))).all()
    await consulted(
        session,
        caller,
        now,
        what="entries",
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


async def consulted(
    session: AsyncSession,
    caller: Caller,
    now: datetime,
    *,
    what: str,
    person_ref: str | None = None,
    notice_id: uuid.UUID | None = None,
    filters: dict[str, Any] | None = None,
) -> None:
    """An auditor's query is itself a log entry (DPA 2018 s.62: consultation), in the query's
    transaction: ids, codes and the person's keyed hash only. Written at once, by one INSERT
    (an ORM object and the commit's flush cost a proof 0.6 ms of its 8 ms of CPU)."""
    entry = audit.Entry(
        "audit.consulted",
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        notice_id=notice_id,
        person_ref=person_ref,
        details={"query": what, **{k: v for k, v in (filters or {}).items() if v is not None}},
    )
    await audit.append_many(session, [entry])


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
    await consulted(session, caller, now, what="notice_disclosures", notice_id=notice_id)
    return answer


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


TreeIndex = Annotated[int, Query(ge=0, le=2**53), IN_DIGITS]


@router.get(
    "/checkpoint", name="latest-checkpoint", response_model=CheckpointOut, responses=PROBLEMS
)
async def latest_checkpoint(
    _: AuditReader, session: Session, signer: LogSignerDep
) -> CheckpointOut:
    """The latest signed checkpoint of the log's tree (c2sp.org/tlog-checkpoint). Not logged
    as a consultation: it names no entry, and monitors poll it."""
    row = await log_tree.latest_checkpoint(session)
    if row is None:
        raise Problem(404, "Not found", "The log has no checkpoint yet.")
    return CheckpointOut(
        tree_size=row.tree_size,
        root_hash=_b64(row.root_hash),
        signed_at=row.signed_at,
        note=row.note,
        verifier_key=signer.verifier_key,
    )


@router.get(
    "/proofs/inclusion",
    name="inclusion-proof",
    response_model=InclusionProofOut,
    responses=PROBLEMS,
)
async def inclusion_proof(
    caller: AuditReader,
    session: Session,
    now: Now,
    leaf_index: TreeIndex,
    tree_size: TreeIndex,
) -> InclusionProofOut:
    """The audit path of leaf leaf_index in the tree of tree_size leaves (RFC 9162 2.1.3), with
    the entry it proves. The query is itself logged (`audit.consulted`)."""
    entry, leaf_hash, path = await log_tree.inclusion(session, leaf_index, tree_size)
    await consulted(
        session,
        caller,
        now,
        what="inclusion_proof",
        notice_id=entry.notice_id,
        filters={"leaf_index": leaf_index, "tree_size": tree_size},
    )
    return InclusionProofOut(
        leaf_index=leaf_index,
        tree_size=tree_size,
        leaf_hash=_b64(leaf_hash),
        entry=log_tree.entry_document(entry),
        hashes=[_b64(h) for h in path],
    )


@router.get(
    "/proofs/consistency",
    name="consistency-proof",
    response_model=ConsistencyProofOut,
    responses=PROBLEMS,
)
async def consistency_proof(
    caller: AuditReader, session: Session, now: Now, first: TreeIndex, second: TreeIndex
) -> ConsistencyProofOut:
    """That the tree of first leaves is a prefix of the tree of second (RFC 9162 2.1.4). The
    query is itself logged (`audit.consulted`)."""
    path = await log_tree.consistency(session, first, second)
    await consulted(
        session, caller, now, what="consistency_proof", filters={"first": first, "second": second}
    )
    return ConsistencyProofOut(first=first, second=second, hashes=[_b64(h) for h in path])


@router.get(
    "/export",
    name="export",
    response_class=StreamingResponse,
    responses={
        **PROBLEMS,
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "The latest checkpoint, then every leaf it covers with its entry.",
        },
    },
)
async def export(
    caller: AuditReader, session: Session, now: Now, request: Request, signer: LogSignerDep
) -> StreamingResponse:
    """The log up to its latest checkpoint as NDJSON: a `checkpoint` line (its note and the
    verifier key), then one line per leaf (`leaf_index`, `leaf_hash`, `entry`), in order. The
    export is itself logged (`audit.consulted`)."""
    await consulted(session, caller, now, what="export")
    sessions = request.app.state.sessions

    async def body() -> AsyncIterator[bytes]:
        async with sessions() as reading:  # the request's own session commits before this runs
            async for line in log_export.lines(reading, signer.verifier_key):
                yield line

    return StreamingResponse(body(), media_type="application/x-ndjson")
