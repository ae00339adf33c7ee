"""Release notices: a prison posts them and follows what became of them."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app import intake
from app.api.deps import KeyRingDep, Now, PolicyDep, SettingsDep
from app.auth import PrisonCaller
from app.db import Session
from app.notice import ReleaseNotice as NoticeBody
from app.problems import PROBLEMS
from app.schemas import (
    DeliveryStatus,
    NoticeAccepted,
    NoticeStatus,
    RecipientStatus,
    RoutedRecipient,
)

router = APIRouter(prefix="/v1/release-notices", tags=["release-notices"])


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
    notice, recipients = await intake.track(session, notice_id, caller)
    return NoticeStatus(
        id=notice.id,
        status=notice.status,
        received_at=notice.received_at,
        recipients=[
            RecipientStatus(
                organisation_code=r.organisation_code,
                role=r.role,
                message_id=r.message_id,
                deliveries=[
                    DeliveryStatus(state=d.state, attempts=d.attempts, delivered_at=d.delivered_at)
                    for d in r.deliveries
                ],
            )
            for r in recipients
        ],
    )
