"""Release notices: a prison posts them, amends or cancels them, and follows what became of them.

Every POST here honours Idempotency-Key: a repeat gets the first answer again and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.callers import PrisonCaller
from app.api.deps import DataKeysDep, Now, Session, SigningDep
from app.api.idempotent import Done, IdempotencyKey, once
from app.api.problems import PROBLEMS, documented
from app.disclosure import explanations as disclosures
from app.notices import cancellation, idempotency, intake, tracking
from app.notices.cancellation import Accepted
from app.notices.document import ReleaseNotice
from app.storage.models import StoredNotice
from app.wire.schemas import (
    CancellationIn,
    DeadlineStatus,
    DeliveryStatus,
    NoticeAccepted,
    NoticeDisclosures,
    NoticeStatus,
    NoticeVersion,
    RecipientAcknowledgement,
    RecipientDisclosure,
    RecipientStatus,
    RoutedRecipient,
)

router = APIRouter(prefix="/v1/release-notices", tags=["release-notices"])

POST_PROBLEMS = {
    **PROBLEMS,
    409: documented("The Idempotency-Key was used for another request, or the notice is closed."),
    413: documented("The body is larger than 256 KiB."),
    415: documented("The body is not application/json."),
}


def _accepted(accepted: Accepted) -> NoticeAccepted:
    notice = accepted.notice
    return NoticeAccepted(
        id=notice.id,
        series_id=notice.series_id,
        version=notice.version,
        status=notice.status,
        status_reason=notice.status_reason,
        received_at=notice.received_at,
        recipients=[
            RoutedRecipient(
                organisation_code=r.organisation.code,
                role=r.role,
                kind=r.kind,
                message_id=r.message_id,
            )
            for r in accepted.recipients
        ],
    )


async def _once(
    request: Request,
    session: Session,
    caller: PrisonCaller,
    *,
    signing: SigningDep,
    key: str | None,
    body: Any,
    now: Now,
    work: Callable[[], Awaitable[Accepted]],
) -> JSONResponse:
    """Do the work and answer 202, or, for a repeated Idempotency-Key, answer as the first time."""

    async def done() -> Done:
        accepted = await work()
        answer = idempotency.Answer(
            202,
            _accepted(accepted).model_dump(mode="json"),
            f"{router.prefix}/{accepted.notice.id}",
        )
        return answer, accepted.notice.id

    return await once(
        request,
        session,
        caller,
        data_keys=signing.data_keys,
        key=key,
        body=body,
        now=now,
        work=done,
    )


@router.post(
    "", name="create", status_code=202, response_model=NoticeAccepted, responses=POST_PROBLEMS
)
async def create(
    notice: ReleaseNotice,
    request: Request,
    caller: PrisonCaller,
    session: Session,
    signing: SigningDep,
    now: Now,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Accept a release notice: each recipient's disclosure is decided, signed and queued.

    A notice whose release reason is not a release into the community is recorded and sent to
    nobody; its status says why.
    """
    return await _once(
        request,
        session,
        caller,
        signing=signing,
        key=idempotency_key,
        body=notice.model_dump(mode="json", exclude_unset=True),
        now=now,
        work=lambda: intake.accept_notice(session, notice, caller=caller, signing=signing, now=now),
    )


@router.post(
    "/{notice_id}/amendments",
    name="amend",
    status_code=202,
    response_model=NoticeAccepted,
    responses=POST_PROBLEMS,
)
async def amend(
    notice_id: uuid.UUID,
    notice: ReleaseNotice,
    request: Request,
    caller: PrisonCaller,
    session: Session,
    signing: SigningDep,
    now: Now,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Replace the latest version of a notice with a corrected whole notice: a new version.

    Each recipient gets a new message that names the one it supersedes; one that no longer gets
    anything gets a cancellation. Only the latest version can be amended (409 otherwise), and
    only for the same person.
    """
    return await _once(
        request,
        session,
        caller,
        signing=signing,
        key=idempotency_key,
        body=notice.model_dump(mode="json", exclude_unset=True),
        now=now,
        work=lambda: intake.accept_notice(
            session, notice, caller=caller, signing=signing, now=now, amends=notice_id
        ),
    )


@router.post(
    "/{notice_id}/cancellation",
    name="cancel",
    status_code=202,
    response_model=NoticeAccepted,
    responses=POST_PROBLEMS,
)
async def cancel(
    notice_id: uuid.UUID,
    body: CancellationIn,
    request: Request,
    caller: PrisonCaller,
    session: Session,
    signing: SigningDep,
    now: Now,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Cancel the latest version of a notice: each recipient that holds it gets a cancellation."""
    return await _once(
        request,
        session,
        caller,
        signing=signing,
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        now=now,
        work=lambda: cancellation.cancel_notice(
            session, notice_id, body.reason, caller=caller, signing=signing, now=now
        ),
    )


@router.get("/{notice_id}", name="get", response_model=NoticeStatus, responses=PROBLEMS)
async def get(
    notice_id: uuid.UUID, caller: PrisonCaller, session: Session, data_keys: DataKeysDep, now: Now
) -> NoticeStatus:
    """What became of a notice: its history, and per recipient its message, deliveries and
    acknowledgements (with the appointments' days, and the notes the recipient wrote for you),
    and its deadlines with their states."""
    found = await tracking.track(session, notice_id, caller=caller, data_keys=data_keys, now=now)
    notice = found.notice
    return NoticeStatus(
        id=notice.id,
        series_id=notice.series_id,
        version=notice.version,
        status=notice.status,
        status_reason=notice.status_reason,
        received_at=notice.received_at,
        supersedes=notice.supersedes_id,
        superseded_by=found.superseded_by,
        cancelled_at=notice.cancelled_at,
        purged_at=notice.purged_at,
        recipients=[
            RecipientStatus(
                organisation_code=r.organisation_code,
                role=r.role,
                kind=r.kind,
                message_id=r.message_id,
                supersedes=r.supersedes,
                superseded_by=r.superseded_by,
                deliveries=[
                    DeliveryStatus(state=d.state, attempts=d.attempts, delivered_at=d.delivered_at)
                    for d in r.deliveries
                ],
                acknowledgement=r.acknowledgement,
                appointment_date=r.appointment_date,
                acknowledgements=[
                    RecipientAcknowledgement(
                        status=a.status,
                        appointment_date=a.appointment_date,
                        note=a.note,
                        recorded_at=a.recorded_at,
                        late=a.late,
                    )
                    for a in r.acknowledgements
                ],
                deadlines=[DeadlineStatus(**vars(d)) for d in r.deadlines],
            )
            for r in found.recipients
        ],
        history=[
            NoticeVersion(
                id=v.id,
                version=v.version,
                status=v.status,
                status_reason=v.status_reason,
                received_at=v.received_at,
            )
            for v in found.versions
        ],
    )


@router.get(
    "/{notice_id}/disclosures",
    name="disclosures",
    response_model=NoticeDisclosures,
    responses=PROBLEMS,
)
async def notice_disclosures(
    notice_id: uuid.UUID, caller: PrisonCaller, session: Session
) -> NoticeDisclosures:
    """Per recipient: the fields sent (with the rule, any transform, and its basis), the fields
    withheld (with rule and reason), and the consents relied on. Never a value."""
    return disclosures_out(*await disclosures.of_notice(session, notice_id, caller.organisation_id))


def disclosures_out(notice: StoredNotice, decided: list[disclosures.Decided]) -> NoticeDisclosures:
    return NoticeDisclosures(
        notice_id=notice.id,
        version=notice.version,
        disclosures=[RecipientDisclosure.model_validate(disclosures.account(d)) for d in decided],
    )
