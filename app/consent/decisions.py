"""Deciding one recipient's disclosure of one notice version, and queueing what it allows.

Used where a consent withdrawal decides a notice again; intake decides through its planner
(app/notices/plan.py), with the same app/disclosure/explained.disclosure. Never commits: the
caller owns the transaction.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import entries as audit
from app.disclosure.explained import disclosure
from app.keys.sealing import DataKeys, Sealed, place
from app.messages.kinds import DISCLOSURE
from app.messages.signed import Draft, Signing, draft, store
from app.storage.models import Disclosure, Message, Organisation, StoredNotice


def body_of(data_keys: DataKeys, notice: StoredNotice) -> dict[str, Any] | None:
    """A stored notice's body, opened; None once purged."""
    if notice.body_sealed is None or notice.body_key_id is None:
        return None
    sealed = Sealed(notice.body_key_id, notice.body_sealed)
    return json.loads(data_keys.open(sealed, place("release_notice", "body_sealed", notice.id)))


def decided(
    session: AsyncSession,
    notice: StoredNotice,
    body: dict[str, Any],
    *,
    recipient: tuple[Organisation, str],
    standing: dict[str, bool],
    signing: Signing,
    now: datetime,
    holders: dict[uuid.UUID, Message],
) -> Draft | None:
    """Decide what one recipient (organisation, role) gets, record the decision, and draft the
    signed message if anything at all is allowed (signed.store numbers and queues it)."""
    organisation, _ = recipient
    row, entry, claims = disclosure(
        signing.policy,
        body,
        recipient,
        standing=standing,
        notice_id=notice.id,
        now=now,
        disclosure_id=uuid.uuid4(),
    )
    session.add(Disclosure(**row))
    audit.append(
        session,
        entry.action,
        at=now,
        notice_id=notice.id,
        subject_organisation_id=organisation.id,
        details=entry.details,
    )
    if claims is None:
        return None  # nothing allowed: not even the fact of the notice leaves the exchange
    previous = holders.get(organisation.id)
    return draft(
        DISCLOSURE,
        notice,
        organisation,
        claims,
        signing,
        now,
        disclosure_id=row["id"],
        supersedes=previous.id if previous else None,
    )


async def disclose(
    session: AsyncSession,
    notice: StoredNotice,
    body: dict[str, Any],
    *,
    recipient: tuple[Organisation, str],
    standing: dict[str, bool],
    signing: Signing,
    now: datetime,
    holders: dict[uuid.UUID, Message],
) -> uuid.UUID | None:
    """Decide what one recipient gets; sign and queue it if anything at all is allowed."""
    drafted = decided(
        session,
        notice,
        body,
        recipient=recipient,
        standing=standing,
        signing=signing,
        now=now,
        holders=holders,
    )
    if drafted is None:
        return None
    return (await store(session, [drafted], now))[0].id
