"""Acknowledgements: a recipient tells the prison what became of a message it was sent.

The POST honours Idempotency-Key as the notice POSTs do: a repeat gets the first answer again
and records nothing more.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.callers import AcknowledgementReader, AcknowledgementWriter
from app.api.deps import DataKeysDep, Now, Session
from app.api.idempotent import IdempotencyKey
from app.api.pages import Cursor, Limit, after, next_offset
from app.api.problems import PROBLEMS, documented
from app.keys.sealing import DataKeys
from app.messages import acknowledgements
from app.notices import idempotency
from app.storage.models import Acknowledgement
from app.wire.schemas import AcknowledgementIn, AcknowledgementOut, AcknowledgementPage

router = APIRouter(prefix="/v1/messages", tags=["acknowledgements"])

POST_PROBLEMS = {
    **PROBLEMS,
    409: documented(
        "The message was revoked before delivery or withdrawn with its consent, so there is "
        "nothing to acknowledge; or the Idempotency-Key was used for another request."
    ),
    413: documented("The body is larger than 256 KiB."),
    415: documented("The body is not application/json."),
}


def _location(message_id: uuid.UUID, acknowledgement_id: uuid.UUID) -> str:
    return f"{router.prefix}/{message_id}/acknowledgements/{acknowledgement_id}"


def _out(row: Acknowledgement, data_keys: DataKeys) -> AcknowledgementOut:
    return AcknowledgementOut(
        id=row.id,
        message_id=row.message_id,
        status=row.status,
        appointment_date=row.appointment_date,
        note=acknowledgements.note_of(data_keys, row),
        recorded_at=row.recorded_at,
        late=row.late,
    )


@router.post(
    "/{message_id}/acknowledgements",
    name="record",
    status_code=201,
    response_model=AcknowledgementOut,
    responses=POST_PROBLEMS,
)
async def post_acknowledgement(
    message_id: uuid.UUID,
    body: AcknowledgementIn,
    request: Request,
    caller: AcknowledgementWriter,
    session: Session,
    data_keys: DataKeysDep,
    now: Now,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Tell the prison that posted the notice what became of a message you were sent.

    `received` acknowledges any message; the other statuses only a disclosure. Post as many as
    happen, in any order (a missed appointment, then a new one). `appointment_booked`,
    `attended` and `did_not_attend` each need the appointment's day (`appointment_date`), and no
    other status takes one: never before the release date, and for `attended` and
    `did_not_attend` never after today in England and Wales (422 otherwise). The prison sees
    each status and day, and the note with it: write in the note only what the prison may
    know. A message revoked before delivery or withdrawn with its consent cannot be
    acknowledged (409); one whose data was purged after the retention period can, without a
    note.
    """
    claimed = None
    if idempotency_key is not None:
        asked = idempotency.fingerprint(
            request.method, request.url.path, body.model_dump(mode="json", exclude_unset=True)
        )
        # Keyed, unlike a notice's: a short note is guessable from a plain hash of the request.
        asked = data_keys.idempotency_ref(asked)
        key_ref = data_keys.idempotency_ref(idempotency_key)
        claimed, earlier = await idempotency.claim(
            session, caller.organisation_id, key_ref, request_sha256=asked, now=now
        )
        if earlier is not None:
            # The answer is kept without the note, which lives sealed in its own row only.
            first = await acknowledgements.one(
                session, message_id, uuid.UUID(earlier.body["id"]), caller=caller
            )
            headers = {"idempotent-replayed": "true", "location": earlier.location or ""}
            answer = _out(first, data_keys).model_dump(mode="json")
            return JSONResponse(answer, earlier.status_code, headers=headers)
    recorded = await acknowledgements.acknowledge(
        session,
        message_id,
        status=body.status,
        appointment_date=body.appointment_date,
        note=body.note,
        caller=caller,
        data_keys=data_keys,
        now=now,
    )
    row = recorded.acknowledgement
    answer = _out(row, data_keys).model_dump(mode="json")
    location = _location(message_id, row.id)
    if claimed is not None:
        kept = idempotency.Answer(201, {**answer, "note": None}, location)
        idempotency.remember(claimed, kept, recorded.notice_id)
    return JSONResponse(answer, 201, headers={"location": location})


@router.get(
    "/{message_id}/acknowledgements",
    name="list",
    response_model=AcknowledgementPage,
    responses=PROBLEMS,
)
async def list_acknowledgements(
    message_id: uuid.UUID,
    caller: AcknowledgementReader,
    session: Session,
    data_keys: DataKeysDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> AcknowledgementPage:
    """Your acknowledgements of one of your messages, oldest first."""
    rows = await acknowledgements.of_message(
        session, message_id, caller, offset=after(cursor), limit=limit
    )
    return AcknowledgementPage(
        items=[_out(r, data_keys) for r in rows],
        next_cursor=next_offset(cursor, len(rows), limit),
    )


@router.get(
    "/{message_id}/acknowledgements/{acknowledgement_id}",
    name="get",
    response_model=AcknowledgementOut,
    responses=PROBLEMS,
)
async def get(
    message_id: uuid.UUID,
    acknowledgement_id: uuid.UUID,
    caller: AcknowledgementReader,
    session: Session,
    data_keys: DataKeysDep,
) -> AcknowledgementOut:
    """One acknowledgement of one of your messages."""
    found = await acknowledgements.one(session, message_id, acknowledgement_id, caller=caller)
    return _out(found, data_keys)
