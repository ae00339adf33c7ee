"""Verify in your browser: the page, and the three things its script fetches (the latest signed
checkpoint and an entry's inclusion proof, as the API answers them, but without a verifier key:
the auditor brings their own), and a consistency proof from the checkpoint the browser verified
before. The checks themselves run in the browser (static/verify.mjs)."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from app.access.identity import Scope
from app.audit import tree as log_tree
from app.console.log_pages import consulted
from app.console.web import SignedIn, Transaction, needs, render
from app.wire.errors import Problem

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
Index = Annotated[int, Query(ge=0, le=2**53)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@router.get("/verify", response_class=HTMLResponse)
async def verify_page(
    request: Request, person: SignedIn, leaf_index: Annotated[int, Query(ge=0)] = 0
) -> HTMLResponse:
    needs(person, Scope.AUDIT_READ)
    return render(
        request,
        "verify.html",
        person=person,
        title="Verify in your browser",
        section="verify",
        leaf_index=leaf_index,
    )


@router.get("/verify/checkpoint")
async def checkpoint(person: SignedIn, session: Transaction) -> JSONResponse:
    """The latest checkpoint's signed note: the browser checks its signature itself."""
    needs(person, Scope.AUDIT_READ)
    row = await log_tree.latest_checkpoint(session)
    if row is None:
        return JSONResponse({"error": "The log has no checkpoint yet."}, status_code=404)
    return JSONResponse({"tree_size": row.tree_size, "note": row.note})


@router.get("/verify/proof")
async def proof(
    request: Request, person: SignedIn, *, leaf_index: Index, tree_size: Index, session: Transaction
) -> JSONResponse:
    """An entry, its leaf hash and its audit path (RFC 9162 2.1.3) in the tree of tree_size."""
    needs(person, Scope.AUDIT_READ)
    try:
        entry, leaf_hash, path = await log_tree.inclusion(session, leaf_index, tree_size)
    except Problem as refused:
        return JSONResponse({"error": refused.detail}, status_code=refused.status)
    await consulted(
        request,
        session,
        person,
        what="inclusion_proof",
        notice_id=entry.notice_id,
        filters={"leaf_index": leaf_index, "tree_size": tree_size},
    )
    return JSONResponse(
        {
            "leaf_index": leaf_index,
            "tree_size": tree_size,
            "leaf_hash": _b64(leaf_hash),
            "entry": log_tree.entry_document(entry),
            "hashes": [_b64(h) for h in path],
        }
    )


@router.get("/verify/consistency")
async def consistency(
    request: Request, person: SignedIn, *, first: Index, second: Index, session: Transaction
) -> JSONResponse:
    """That the tree of `first` entries is a prefix of the tree of `second` (RFC 9162 2.1.4):
    the browser checks it from the checkpoint it verified before to the latest."""
    needs(person, Scope.AUDIT_READ)
    try:
        path = await log_tree.consistency(session, first, second)
    except Problem as refused:
        return JSONResponse({"error": refused.detail}, status_code=refused.status)
    await consulted(
        request,
        session,
        person,
        what="consistency_proof",
        filters={"first": first, "second": second},
    )
    return JSONResponse({"first": first, "second": second, "hashes": [_b64(h) for h in path]})
