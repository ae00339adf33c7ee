"""Release notices: a prison posts them and follows what became of them."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy import select

from app import intake
from app.api.deps import KeyRingDep, Now, PolicyDep, SettingsDep
from app.auth import PrisonCaller
from app.db import Session
from app.models import Delivery, Disclosure, Message, Organisation, ReleaseNotice
from app.notice import ReleaseNotice as NoticeBody
from app.problems import Problem
from app.schemas import (
    DeliveryStatus,
    NoticeAccepted,
    NoticeStatus,
    ProblemOut,
    RecipientStatus,
    RoutedRecipient,
)

router = APIRouter(prefix="/v1/release-notices", tags=["release-notices"])
PROBLEMS = {
    s: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for s in (401, 403, 404, 422)
}


@router.post("", name="create", status_code=202, response_model=NoticeAccepted, responses=PROBLEMS)
async def create(
    notice: NoticeBody,
    response: Response,
    caller: PrisonCaller,
    session: Session,
    policy: PolicyDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    now: Now,
) -> NoticeAccepted:
    """Accept a release notice: each recipient's disclosure is decided, signed and queued."""
    accepted = await intake.accept_notice(
        session,
        notice,
        caller=caller,
        policy=policy,
        keyring=keyring,
        issuer=settings.issuer,
        now=now,
    )
    response.headers["Location"] = f"/v1/release-notices/{accepted.notice.id}"
    return NoticeAccepted(
        id=accepted.notice.id,
        status=accepted.notice.status,
        received_at=accepted.notice.received_at,
        recipients=[
            RoutedRecipient(
                organisation_code=r.organisation.code, role=r.role, message_id=r.message_id
            )
            for r in accepted.recipients
        ],
    )


@router.get("/{notice_id}", name="get", response_model=NoticeStatus, responses=PROBLEMS)
async def get(notice_id: uuid.UUID, caller: PrisonCaller, session: Session) -> NoticeStatus:
    """What became of a notice: per recipient, its message and each delivery's state."""
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
        await session.scalars(select(Delivery).join(Message).where(Message.notice_id == notice_id))
    ).all()
    by_message: dict[uuid.UUID, list[DeliveryStatus]] = {}
    for d in deliveries:
        by_message.setdefault(d.message_id, []).append(
            DeliveryStatus(
                subscription_id=d.subscription_id,
                state=d.state,
                attempts=d.attempts,
                delivered_at=d.delivered_at,
            )
        )
    return NoticeStatus(
        id=notice.id,
        status=notice.status,
        received_at=notice.received_at,
        recipients=[
            RecipientStatus(
                organisation_code=code,
                role=kind,
                message_id=message_id,
                deliveries=by_message.get(message_id, []) if message_id else [],
            )
            for code, kind, message_id in routed
        ],
    )
