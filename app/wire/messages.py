"""Wire formats of a recipient's inbox: its messages, each marked if a later one replaced it,
with the latest acknowledgement the recipient gave it."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from app.wire.schemas import (
    APPOINTMENT_DATE_GIVEN,
    SUPERSEDED_BY,
    SUPERSEDES,
    AcknowledgementStatus,
    MessageKind,
    Wire,
)


class LatestAcknowledgement(Wire):
    """The latest acknowledgement you gave a message: its status, and the appointment's day."""

    id: uuid.UUID
    status: AcknowledgementStatus
    appointment_date: date | None = Field(description=APPOINTMENT_DATE_GIVEN)
    recorded_at: datetime
    late: bool = Field(description="Recorded after a deadline it met had passed.")


class MessageOut(Wire):
    id: uuid.UUID
    kind: MessageKind
    notice_id: uuid.UUID
    supersedes: uuid.UUID | None = Field(
        description=SUPERSEDES + " It may be one you never received (revoked): its own "
        "`supersedes` names the one before."
    )
    superseded_by: uuid.UUID | None = Field(
        description=SUPERSEDED_BY + " A superseded message is kept as it was (with its JWS, "
        "unless it was revoked), but no longer sent: act on the one that replaced it."
    )
    sequence: int
    created_at: datetime
    jws: str | None = Field(
        description="Compact JWS (ES256; typ disclosure+jwt, cancellation+jwt, "
        "consent-withdrawn+jwt, care-update+jwt or an alert's); verify with the JWKS (or "
        "/v1/signing-keys for a key no longer in it). Null when the message is encrypted (see "
        "`jwe`), once purged after the retention period, once revoked, or once withdrawn with "
        "the consent it relied on."
    )
    jwe: str | None = Field(
        description="When your organisation had registered an encryption key as the message "
        "was made: the same signed message encrypted to that key, a compact JWE (RSA-OAEP-256, "
        "A256GCM, cty JWT, kid your key's). Decrypt it with your private key, then verify the "
        "JWS inside as above. Null otherwise, and once purged, revoked or withdrawn."
    )
    purged_at: datetime | None
    revoked_at: datetime | None = Field(
        description="When it was stopped before any attempt to send it was made (its notice "
        "amended or cancelled, or its consent withdrawn): it was never sent, and never will be."
    )
    acknowledgement: LatestAcknowledgement | None = Field(
        description="The latest acknowledgement you gave this message (every one, with its "
        "note, at /v1/messages/{id}/acknowledgements); null when you have given none."
    )


class MessagePage(Wire):
    items: list[MessageOut]
    next_cursor: str | None
