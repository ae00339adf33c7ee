"""What each recipient of a notice was sent, what was withheld and why, and on what basis.

Never a value: paths, rule ids, reason codes and the bases the rules rest on. The same account
is given for a notice that was posted (from the stored decisions) and for one that never was
(`exchange policy explain`, from a fresh decision), so a policy change can be reviewed first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.disclosure.explained import explanation
from app.storage.models import Disclosure, Message, Organisation, StoredNotice
from app.wire.errors import Problem

__all__ = ["Decided", "account", "explanation", "of_notice"]


@dataclass(frozen=True)
class Decided:
    disclosure: Disclosure
    organisation_code: str
    message_id: uuid.UUID | None


def account(decided: Decided) -> dict[str, Any]:
    """A stored decision: who, when, the message it made, and the explanation."""
    d = decided.disclosure
    return {
        "organisation_code": decided.organisation_code,
        "role": d.recipient_role,
        "decided_at": d.decided_at,
        "message_id": decided.message_id,
        # Decisions stored before rules were recorded name the paths only.
        "sent": d.allowed or [{"path": p, "rule": "unrecorded"} for p in d.fields_sent],
        "withheld": d.manifest,
        "bases": d.bases or {},
        "consents_relied": d.consents_relied or [],
        "policy": {"version": d.policy_version, "sha256": d.policy_hash},
    }


async def of_notice(
    session: AsyncSession, notice_id: uuid.UUID, organisation_id: uuid.UUID | None
) -> tuple[StoredNotice, list[Decided]]:
    """The decisions about one notice version, oldest first; 404 unless it is the caller's own
    (organisation_id), or the caller may see every notice (None: an auditor)."""
    notice = await session.get(StoredNotice, notice_id)
    if notice is None or organisation_id not in (None, notice.organisation_id):
        raise Problem(404, "Not found", "No such release notice.")
    rows = (
        await session.execute(
            select(Disclosure, Organisation.code, Message.id)
            .join(Organisation, Organisation.id == Disclosure.recipient_organisation_id)
            .outerjoin(Message, Message.disclosure_id == Disclosure.id)
            .where(Disclosure.notice_id == notice_id, Disclosure.care_update_id.is_(None))
            .order_by(Disclosure.decided_at, Disclosure.recipient_role)
        )
    ).all()
    return notice, [Decided(d, code, message_id) for d, code, message_id in rows]
