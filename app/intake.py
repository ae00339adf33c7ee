"""The use case: accept a release notice. Route, decide, sign, and queue, in the caller's
transaction, with a log entry for each step. Never commits: the caller owns the transaction.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit, jose, outbox
from app.errors import Problem, invalid
from app.identity import Caller
from app.models import Delivery, Disclosure, Message, Organisation, ReleaseNotice
from app.notice import ReleaseNotice as NoticeBody
from app.policy import Policy, consents_from_records, decide

MESSAGE_TYPE = "disclosure+jwt"
# Which member of the release plan names which kind of recipient.
ROUTES = (
    ("probation_provider", "probation_provider"),
    ("substance_misuse_service", "substance_misuse_service"),
)


@dataclass(frozen=True)
class Routed:
    organisation: Organisation
    role: str
    message_id: uuid.UUID | None


@dataclass(frozen=True)
class Accepted:
    notice: ReleaseNotice
    recipients: list[Routed]


async def route(session: AsyncSession, notice: NoticeBody) -> list[tuple[Organisation, str]]:
    """The registered, enabled organisations the release plan names; 422 for any that is not."""
    wanted = [
        (member, role, getattr(notice.release_plan, member))
        for member, role in ROUTES
        if getattr(notice.release_plan, member)
    ]
    codes = {code for _, _, code in wanted}
    found = {
        o.code: o
        for o in await session.scalars(select(Organisation).where(Organisation.code.in_(codes)))
    }
    routed, errors = [], []
    for member, role, code in wanted:
        organisation = found.get(code)
        if organisation is None or organisation.kind != role or organisation.disabled_at:
            errors.append(
                {
                    "pointer": f"/release_plan/{member}",
                    "detail": f"{code!r} is not a registered {role.replace('_', ' ')}",
                }
            )
        else:
            routed.append((organisation, role))
    if errors:
        raise invalid(errors)
    return routed


async def accept_notice(
    session: AsyncSession,
    notice: NoticeBody,
    *,
    caller: Caller,
    policy: Policy,
    keyring: jose.KeyRing,
    issuer: str,
    now: datetime,
) -> Accepted:
    if notice.release.prison_code != caller.organisation_code:
        raise invalid(
            [
                {
                    "pointer": "/release/prison_code",
                    "detail": f"you act for {caller.organisation_code}: post only its releases",
                }
            ]
        )
    recipients = await route(session, notice)
    body = notice.model_dump(mode="json", exclude_unset=True)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    row = ReleaseNotice(
        id=uuid.uuid4(),
        organisation_id=caller.organisation_id,
        body=body,
        body_sha256=audit.sha256_hex(canonical),
        status="accepted",
        received_at=now,
    )
    session.add(row)
    await session.flush()  # tables have no relationship(): flush in foreign-key order by hand
    actor = {"actor_organisation_id": caller.organisation_id, "actor_client_id": caller.client_id}
    audit.append(
        session,
        "notice.received",
        at=now,
        notice_id=row.id,
        **actor,
        details={"body_sha256": row.body_sha256, "recipients": [o.code for o, _ in recipients]},
    )
    consents = consents_from_records(body.get("consent", []))
    routed = []
    for organisation, role in recipients:
        message_id = await _disclose(
            session, row, organisation, role, consents, policy, keyring, issuer, now
        )
        routed.append(Routed(organisation, role, message_id))
    return Accepted(row, routed)


async def _disclose(
    session: AsyncSession,
    notice: ReleaseNotice,
    organisation: Organisation,
    role: str,
    consents: dict[str, bool],
    policy: Policy,
    keyring: jose.KeyRing,
    issuer: str,
    now: datetime,
) -> uuid.UUID | None:
    """Decide what one recipient gets; sign and queue it if anything at all is allowed."""
    decision = decide(policy, notice.body, role, consents)
    manifest = [{"path": w.path, "rule": w.rule, "reason": w.reason} for w in decision.manifest]
    disclosure = Disclosure(
        id=uuid.uuid4(),
        notice_id=notice.id,
        recipient_organisation_id=organisation.id,
        recipient_role=role,
        fields_sent=list(decision.fields_sent),
        manifest=manifest,
        policy_version=policy.version,
        policy_hash=policy.sha256,
        decided_at=now,
    )
    session.add(disclosure)
    ids = {"notice_id": notice.id, "subject_organisation_id": organisation.id}
    audit.append(
        session,
        "disclosure.decided",
        at=now,
        **ids,
        details={
            "disclosure_id": str(disclosure.id),
            "role": role,
            "fields_sent": list(decision.fields_sent),
            "withheld": manifest,
            "policy_version": policy.version,
            "policy_hash": policy.sha256,
        },
    )
    if not decision.discloses_anything:
        return None  # nothing allowed: not even the fact of the notice leaves the exchange

    message_id = uuid.uuid4()
    claims = {
        "iss": issuer,
        "aud": organisation.code,
        "iat": int(now.timestamp()),
        "jti": str(message_id),
        "notice_id": str(notice.id),
        "disclosure": decision.disclosure,
        "manifest": manifest,
        "policy": {"version": policy.version, "sha256": policy.sha256},
    }
    noms_number = decision.disclosure.get("person", {}).get("noms_number")
    if noms_number:  # the subject is named only where the policy lets the recipient see it
        claims["sub"] = noms_number
    jws = jose.sign(keyring, claims, typ=MESSAGE_TYPE)
    await session.flush()  # the disclosure, before the message that references it
    message = Message(
        id=message_id,
        notice_id=notice.id,
        disclosure_id=disclosure.id,
        recipient_organisation_id=organisation.id,
        sequence=await outbox.next_sequence(session, organisation.id),
        jws=jws,
        created_at=now,
    )
    session.add(message)
    audit.append(
        session,
        "message.signed",
        at=now,
        message_id=message_id,
        **ids,
        details={
            "kid": keyring.current.kid,
            "jws_sha256": audit.sha256_hex(jws),
            "sequence": message.sequence,
        },
    )
    await session.flush()  # deliveries reference the message
    await outbox.enqueue(session, message, now)
    return message_id


@dataclass(frozen=True)
class RecipientTracking:
    organisation_code: str
    role: str
    message_id: uuid.UUID | None
    deliveries: list[Delivery]


async def track(
    session: AsyncSession, notice_id: uuid.UUID, caller: Caller
) -> tuple[ReleaseNotice, list[RecipientTracking]]:
    """A notice of the caller's own, and per recipient its message and deliveries; else 404."""
    notice = await session.get(ReleaseNotice, notice_id)
    if notice is None or notice.organisation_id != caller.organisation_id:
        raise Problem(404, "Not found", "No such release notice.")
    routed = (
        await session.execute(
            select(Organisation.code, Disclosure.recipient_role, Message.id)
            .join(Organisation, Organisation.id == Disclosure.recipient_organisation_id)
            .outerjoin(Message, Message.disclosure_id == Disclosure.id)
            .where(Disclosure.notice_id == notice_id)
            .order_by(Disclosure.recipient_role)
        )
    ).all()
    deliveries = (
        await session.scalars(
            select(Delivery)
            .join(Message, Message.id == Delivery.message_id)
            .where(Message.notice_id == notice_id)
            .order_by(Delivery.created_at, Delivery.id)
        )
    ).all()
    return notice, [
        RecipientTracking(
            code, role, message_id, [d for d in deliveries if d.message_id == message_id]
        )
        for code, role, message_id in routed
    ]
