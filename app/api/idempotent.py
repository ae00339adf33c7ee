"""Idempotency-Key on a POST that answers 202 with what it caused: the notices' and the care
updates' (app/notices/idempotency.py keeps the keys). A repeat gets the first answer again, with
`idempotent-replayed: true`, and changes nothing; the same key with another request is a 409."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Caller
from app.keys.sealing import DataKeys
from app.notices import idempotency

IdempotencyKey = Annotated[
    str | None,
    Header(
        pattern=idempotency.KEY_PATTERN,
        description="Any unique string up to 255 printable characters, e.g. a UUID. The same "
        "key with the same body gets the first answer again; with another body, 409.",
    ),
]
# What the work did: its answer, and the notice whose retention the key shares.
Done = tuple[idempotency.Answer, uuid.UUID | None]


async def once(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    *,
    data_keys: DataKeys,
    key: str | None,
    body: Any,
    now: Any,
    work: Callable[[], Awaitable[Done]],
    keyed_request: bool = False,
) -> JSONResponse:
    """Do the work and give its answer, or, for a repeated Idempotency-Key, answer as the first
    time. `keyed_request`: keep the request's hash keyed too (DataKeys.idempotency_ref), for a
    body whose free text a plain hash would let someone guess."""
    claimed = None
    if key is not None:
        asked = idempotency.fingerprint(request.method, request.url.path, body)
        if keyed_request:
            asked = data_keys.idempotency_ref(asked)
        key_ref = data_keys.idempotency_ref(key)
        claimed, earlier = await idempotency.claim(
            session, caller.organisation_id, key_ref, request_sha256=asked, now=now
        )
        if earlier is not None:
            headers = {"idempotent-replayed": "true"}
            if earlier.location:
                headers["location"] = earlier.location
            return JSONResponse(earlier.body, earlier.status_code, headers=headers)
    answer, notice_id = await work()
    if claimed is not None:
        idempotency.remember(claimed, answer, notice_id)
    headers = {"location": answer.location} if answer.location else {}
    return JSONResponse(answer.body, answer.status_code, headers=headers)
