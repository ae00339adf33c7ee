"""Idempotency-Key: a POST repeated with the same key is answered as the first time, once only.

The key belongs to the organisation that sent it. The first request with a key records a hash
of what it asked (method, path and the body in canonical JSON) and, in the same transaction, the
answer it got. A repeat with the same request gets that answer again and changes nothing; a
repeat with a different request is a 409. Keys are kept as keyed hashes (DataKeys.idempotency_ref:
a client may build them from personal data, which a plain hash would not hide) until their
notice's data is purged.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.storage.models import IdempotencyKey
from app.wire.errors import Problem

KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # printable ASCII, no spaces


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]
    location: str | None


def fingerprint(method: str, path: str, body: Any) -> str:
    """What a request asked, as a hash: the same JSON in any key order or spacing is the same."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def _answer(row: IdempotencyKey, request_sha256: str) -> Answer:
    if row.request_sha256 != request_sha256:
        raise Problem(
            409,
            "Idempotency key reused",
            "This Idempotency-Key was used for a different request; use a new key.",
        )
    if row.status_code is None or row.response is None:  # cannot be seen: written in one go
        raise Problem(409, "Conflict", "The first request with this key is still in progress.")
    return Answer(row.status_code, row.response, row.location)


async def claim(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    key_ref: str,
    *,
    request_sha256: str,
    now: datetime,
) -> tuple[IdempotencyKey | None, Answer | None]:
    """Claim the key (by its keyed hash) for this request, the request's first write, or get the
    earlier answer.

    Returns (the claimed row, None) for a new key, or (None, the answer) for a repeat. One
    statement for a new key: the insert does nothing if the key is there. Two requests racing
    with one key: the second's insert waits for the first to commit, then does nothing, and the
    second reads the first one's answer (or, if the first rolled back, inserts after all).
    """
    ident = {"organisation_id": organisation_id, "key_sha256": key_ref}
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    inserted = await session.execute(
        dialect.insert(IdempotencyKey)
        .values(**ident, request_sha256=request_sha256, created_at=now)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key_sha256)
    )
    if inserted.first() is None:
        existing = await session.get(IdempotencyKey, ident, populate_existing=True)
        if existing is None:  # pragma: no cover - a conflicting row is committed, or ours
            raise RuntimeError("an idempotency key conflicted, then could not be read")
        return None, _answer(existing, request_sha256)
    row = IdempotencyKey(**ident, request_sha256=request_sha256, created_at=now)
    make_transient_to_detached(row)  # the row as inserted: remember() updates it at the flush
    session.add(row)
    return row, None


def remember(row: IdempotencyKey, answer: Answer, notice_id: uuid.UUID | None) -> None:
    """Record the answer beside the claimed key, in the same transaction as the work."""
    row.status_code = answer.status_code
    row.response = answer.body
    row.location = answer.location
    row.notice_id = notice_id
