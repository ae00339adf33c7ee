"""Care updates: a recipient of a release shares one with the release's other recipient.

The POST honours Idempotency-Key as the notice POSTs do: a repeat gets the first answer again and
shares nothing more.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.callers import UpdateWriter
from app.api.deps import Now, Session, SigningDep
from app.api.idempotent import Done, IdempotencyKey, once
from app.api.problems import PROBLEMS, documented
from app.notices import idempotency
from app.updates import sharing
from app.updates.document import CareUpdate
from app.wire.schemas import RoutedRecipient
from app.wire.updates import CareUpdateAccepted

router = APIRouter(prefix="/v1/messages", tags=["care-updates"])

POST_PROBLEMS = {
    **PROBLEMS,
    409: documented(
        "Your disclosure of the release was cancelled or withdrawn with its consent, the "
        "release was closed by a recall, or the Idempotency-Key was used for another request."
    ),
    413: documented("The body is larger than 256 KiB."),
    415: documented("The body is not application/json."),
}


def _accepted(shared: sharing.Shared) -> CareUpdateAccepted:
    row = shared.update
    return CareUpdateAccepted(
        id=row["id"],
        series_id=row["series_id"],
        notice_id=row["notice_id"],
        recorded_at=row["recorded_at"],
        closes_release=row["recall_date"],
        recipients=[
            RoutedRecipient(
                organisation_code=organisation.code,
                role=role,
                kind="care_update",
                message_id=message_id,
            )
            for organisation, role, message_id in shared.sent
        ],
    )


@router.post(
    "/{message_id}/updates",
    name="share",
    status_code=202,
    response_model=CareUpdateAccepted,
    responses=POST_PROBLEMS,
)
async def share(
    message_id: uuid.UUID,
    body: CareUpdate,
    request: Request,
    caller: UpdateWriter,
    session: Session,
    signing: SigningDep,
    now: Now,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Share an update about the person with the release's other recipient.

    `{message_id}` is any message you received about the release (404 for anyone else's). A
    substance misuse service's update goes to the probation provider on the release plan, a
    probation provider's to the substance misuse service: each is decided by the care-update
    policy (what is sent, what is withheld and why), signed, and delivered as the event
    `care_update.created`. A service sends `engagement`, `assessment`, `clinical_note` and must
    answer `safeguarding`; a probation provider sends `accommodation`, `drug_appointments`,
    `risk_to_staff` and `recall` (which closes the release: its engagement deadlines stop and
    no update follows). Clinical notes and the assessment reach probation only with the
    person's `treatment_to_probation` consent. An `attended` event counts as an `attended`
    acknowledgement of your disclosure, once a day. No date before the release or after today.
    """

    async def done() -> Done:
        shared = await sharing.share_update(
            session, message_id, body, caller=caller, signing=signing, now=now
        )
        answer = _accepted(shared).model_dump(mode="json")
        return idempotency.Answer(202, answer, None), shared.update["notice_id"]

    return await once(
        request,
        session,
        caller,
        data_keys=signing.data_keys,
        key=idempotency_key,
        body=body.model_dump(mode="json", exclude_unset=True),
        now=now,
        work=done,
        keyed_request=True,
    )
