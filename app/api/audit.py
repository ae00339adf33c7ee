"""The exchange log, for auditors: what happened, to which notice, by whom. Never values."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from app import disclosures, log_tree
from app.api.deps import LogSignerDep
from app.api.notices import disclosures_out
from app.api.pages import Cursor, Limit, after, next_cursor
from app.auth import AuditReader
from app.db import Session
from app.errors import Problem
from app.models import AuditEntry
from app.problems import PROBLEMS
from app.schemas import (
    AuditEntryOut,
    AuditPage,
    NoticeDisclosures,
    UtcInstant,
)
from app.schemas_log import CheckpointOut, ConsistencyProofOut, InclusionProofOut

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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


TreeIndex = Annotated[int, Query(ge=0, le=2**53)]


@router.get(
    "/checkpoint", name="latest-checkpoint", response_model=CheckpointOut, responses=PROBLEMS
)
async def latest_checkpoint(
    _: AuditReader, session: Session, signer: LogSignerDep
) -> CheckpointOut:
    """The latest signed checkpoint of the log's tree (c2sp.org/tlog-checkpoint)."""
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
    _: AuditReader, session: Session, leaf_index: TreeIndex, tree_size: TreeIndex
) -> InclusionProofOut:
    """The audit path of leaf leaf_index in the tree of tree_size leaves (RFC 9162 2.1.3)."""
    entry, leaf_hash, path = await log_tree.inclusion(session, leaf_index, tree_size)
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
    _: AuditReader, session: Session, first: TreeIndex, second: TreeIndex
) -> ConsistencyProofOut:
    """That the tree of first leaves is a prefix of the tree of second (RFC 9162 2.1.4)."""
    path = await log_tree.consistency(session, first, second)
    return ConsistencyProofOut(first=first, second=second, hashes=[_b64(h) for h in path])
