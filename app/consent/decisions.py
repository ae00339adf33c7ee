"""Deciding one recipient's disclosure of one notice version, and queueing what it allows.

Used wherever a notice is decided: intake (a new notice or an amendment) and a consent
withdrawal (a notice decided again). Never commits: the caller owns the transaction.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import entries as audit
from app.disclosure.explanations import explanation
from app.disclosure.policy import decide
from app.keys.sealing import DataKeys, Sealed, place
from app.messages.signed import DISCLOSURE, Context, Draft, draft, store
from app.storage.models import Disclosure, Message, Organisation, ReleaseNotice


def body_of(data_keys: DataKeys, notice: ReleaseNotice) -> dict[str, Any] | None:
    """A stored notice's body, opened; None once purged."""
    if notice.body_sealed is None or notice.body_key_id is None:
        return None
    sealed = Sealed(notice.body_key_id, notice.body_sealed)
    return json.loads(data_keys.open(sealed, place("release_notice", "body_sealed", notice.id)))


def decided(
    session: AsyncSession,
    notice: ReleaseNotice,
    body: dict[str, Any],
    organisation: Organisation,
    role: str,
    standing: dict[str, bool],
    context: Context,
    now: datetime,
    holders: dict[uuid.UUID, Message],
) -> Draft | None:
    """Decide what one recipient gets, record the decision, and draft the signed message if
    anything at all is allowed (dispatch.store numbers and queues it). No query: the recipient's
    inbox counter is locked only once the slow part, deciding and signing, is done."""
    policy = context.policy
    decision = decide(policy, body, role, standing)
    told = explanation(policy, decision)  # the same account disclosures.py gives back
    allowed, manifest = told["sent"], told["withheld"]
    disclosure = Disclosure(
        id=uuid.uuid4(),
        notice_id=notice.id,
        recipient_organisation_id=organisation.id,
        recipient_role=role,
        fields_sent=list(decision.fields_sent),
        manifest=manifest,
        allowed=allowed,
        bases=told["bases"],
        consents_relied=sorted(decision.consents_relied),
        policy_version=policy.version,
        policy_hash=policy.sha256,
        decided_at=now,
    )
    session.add(disclosure)
    audit.append(
        session,
        "disclosure.decided",
        at=now,
        notice_id=notice.id,
        subject_organisation_id=organisation.id,
        details={
            "disclosure_id": str(disclosure.id),
            "role": role,
            "allowed": allowed,
            "withheld": manifest,
            "consents_relied": disclosure.consents_relied,
            "policy_version": policy.version,
            "policy_hash": policy.sha256,
        },
    )
    if not decision.discloses_anything:
        return None  # nothing allowed: not even the fact of the notice leaves the exchange
    claims: dict[str, Any] = {
        "disclosure": decision.disclosure,
        "manifest": manifest,
        "policy": {"version": policy.version, "sha256": policy.sha256},
    }
    if transformed := [a for a in allowed if "transform" in a]:
        claims["transformed"] = transformed
    noms_number = decision.disclosure.get("person", {}).get("noms_number")
    if noms_number:  # the subject is named only where the policy lets the recipient see it
        claims["sub"] = noms_number
    previous = holders.get(organisation.id)
    return draft(
        DISCLOSURE,
        notice,
        organisation,
        claims,
        context,
        now,
        disclosure_id=disclosure.id,
        supersedes=previous.id if previous else None,
    )


async def disclose(
    session: AsyncSession,
    notice: ReleaseNotice,
    body: dict[str, Any],
    organisation: Organisation,
    role: str,
    standing: dict[str, bool],
    context: Context,
    now: datetime,
    holders: dict[uuid.UUID, Message],
) -> uuid.UUID | None:
    """Decide what one recipient gets; sign and queue it if anything at all is allowed."""
    drafted = decided(session, notice, body, organisation, role, standing, context, now, holders)
    if drafted is None:
        return None
    return (await store(session, [drafted], now))[0].id
