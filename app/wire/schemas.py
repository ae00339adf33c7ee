"""Wire formats of the API besides the release notice itself (which is app/notices/document.py)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.wire import base
from app.wire.base import Instant, IsoDate, RequestBody, Wire, one_line, plain_text

Name = one_line(200)  # an organisation's, or whoever recorded a consent
Scopes = one_line(1000, min_length=0)
KeyText = plain_text(8192)  # PEM, or a JWK as a string


class TokenResponse(Wire):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105
    expires_in: int
    scope: str


MessageKind = Literal[
    "disclosure",
    "cancellation",
    "consent_withdrawn",
    "receipt_overdue",
    "engagement_overdue",
    "engagement_at_risk",
    "care_update",
]
DeliveryState = Literal["pending", "delivered", "dead", "revoked", "superseded"]
NoticeState = Literal["accepted", "not_routed", "superseded", "cancelled"]


class RoutedRecipient(Wire):
    organisation_code: str
    role: Literal["probation_provider", "substance_misuse_service"]
    kind: MessageKind = Field(
        description="`disclosure`: what the policy lets this recipient see of this version. "
        "`cancellation`: a disclosure it was sent earlier no longer stands. "
        "`consent_withdrawn`: a disclosure it was sent relied on a consent now withdrawn."
    )
    message_id: uuid.UUID | None = Field(
        description="The signed message, or null when the policy allowed nothing to be sent."
    )


class NoticeAccepted(Wire):
    id: uuid.UUID
    series_id: uuid.UUID = Field(description="The first version's id, shared by every version.")
    version: int
    status: NoticeState
    status_reason: str | None = Field(
        description="Why, as a code: e.g. `release_reason_transferred` for a notice sent to "
        "nobody, `amended`, `cancelled_entered_in_error`."
    )
    received_at: datetime
    recipients: list[RoutedRecipient]


class DeliveryStatus(Wire):
    """One delivery to one of the recipient's webhook endpoints (which are theirs to know)."""

    state: DeliveryState = Field(
        description="`revoked`: stopped, as its message may no longer be sent (revoked before "
        "any attempt, or withdrawn with its consent). `superseded`: stopped, as a later message "
        "replaced this one; an attempt made before may have reached the recipient."
    )
    attempts: int
    delivered_at: datetime | None


# --- acknowledgements: what a recipient says became of a message -----------------------------

AcknowledgementStatus = Literal[
    "received", "accepted", "appointment_booked", "attended", "did_not_attend", "declined"
]
NOTE_MAX = 500
Note = plain_text(NOTE_MAX)
APPOINTMENT_DATE = (
    "The appointment's day, YYYY-MM-DD: required with `appointment_booked`, `attended` and "
    "`did_not_attend`, and given with no other status. Never before the release date; for "
    "`attended` and `did_not_attend`, never after today (in England and Wales)."
)
APPOINTMENT_DATE_GIVEN = (
    "The appointment's day, with `appointment_booked`, `attended` and `did_not_attend`; null "
    "with any other status."
)


class AcknowledgementIn(RequestBody):
    status: AcknowledgementStatus = Field(
        description="`received`: the message reached your case system (any kind of message). "
        "For a disclosure only: `accepted` (you take the referral or case on), "
        "`appointment_booked`, `attended`, `did_not_attend` (each with its `appointment_date`), "
        "`declined` (the referral was declined, by you or by the person). Any order; each is "
        "added to the record."
    )
    appointment_date: IsoDate | None = Field(default=None, description=APPOINTMENT_DATE)
    note: Note | None = Field(
        default=None,
        description="Optional plain text, at most 500 characters. The prison that posted the "
        "notice reads it: write only what it may know. Kept sealed, and purged with the "
        "notice's data after the retention period; never in the exchange log.",
    )


class AcknowledgementOut(Wire):
    id: uuid.UUID
    message_id: uuid.UUID
    status: AcknowledgementStatus
    appointment_date: date | None = Field(description=APPOINTMENT_DATE_GIVEN)
    note: str | None = Field(description="Null when none was given, or once purged.")
    recorded_at: datetime
    late: bool = Field(
        description="Recorded after a deadline it met had passed (`receipt_due`, or "
        "`engagement_due` for an attendance): counted as met late."
    )


class AcknowledgementPage(Wire):
    items: list[AcknowledgementOut] = Field(description="Oldest first.")
    next_cursor: str | None


class RecipientAcknowledgement(Wire):
    status: AcknowledgementStatus
    appointment_date: date | None = Field(description=APPOINTMENT_DATE_GIVEN)
    note: str | None = Field(description="The recipient's note, written for you; null if none.")
    recorded_at: datetime
    late: bool = Field(
        description="Recorded after a deadline it met had passed (`receipt_due`, or "
        "`engagement_due` for an attendance): counted as met late."
    )


SUPERSEDES = (
    "The earlier message to this recipient that this one replaces; for a consent withdrawal, "
    "the one that relied on the consent (withdrawn, not replaced)."
)
SUPERSEDED_BY = (
    "The later message to this recipient that replaced this one: a disclosure of a later "
    "version, or a cancellation. Null while this one stands."
)


DeadlineKind = Literal["receipt", "engagement", "at_risk"]
DeadlineState = Literal["open", "met", "overdue", "stopped"]


class DeadlineStatus(Wire):
    kind: DeadlineKind = Field(
        description="`receipt`: the recipient acknowledges the message. `engagement`: the "
        "substance misuse service records an `attended` appointment within 21 days of release. "
        "`at_risk`: raised by a missed appointment; the probation provider is told unless a "
        "booking or attendance comes first."
    )
    due_on: date = Field(description="By the end of this day in England and Wales.")
    due_at: datetime = Field(description="That end, as an instant (UTC).")
    state: DeadlineState = Field(
        description="`met` (perhaps late: see the acknowledgements' `late`); `stopped` (the "
        "message no longer stands: superseded, cancelled, withdrawn); `overdue` (passed unmet: "
        "those who can act are told); `open`."
    )
    met_at: datetime | None
    alerted_at: datetime | None = Field(description="When the overdue event was sent; null if not.")


class RecipientStatus(RoutedRecipient):
    supersedes: uuid.UUID | None = Field(description=SUPERSEDES)
    superseded_by: uuid.UUID | None = Field(description=SUPERSEDED_BY)
    deliveries: list[DeliveryStatus]
    acknowledgement: AcknowledgementStatus | None = Field(
        description="The latest status the recipient gave this message; null when none."
    )
    appointment_date: date | None = Field(
        description="The appointment's day that latest status gave (`appointment_booked`, "
        "`attended`, `did_not_attend`); null with any other status, or none."
    )
    acknowledgements: list[RecipientAcknowledgement] = Field(
        description="Every acknowledgement of this message, oldest first."
    )
    deadlines: list[DeadlineStatus] = Field(
        description="What the recipient owes about this message, by when, and its state."
    )


class NoticeVersion(Wire):
    id: uuid.UUID
    version: int
    status: NoticeState
    status_reason: str | None
    received_at: datetime


class NoticeStatus(NoticeAccepted):
    supersedes: uuid.UUID | None = Field(description="The version this one amended.")
    superseded_by: uuid.UUID | None = Field(description="The version that amended this one.")
    cancelled_at: datetime | None
    purged_at: datetime | None = Field(
        description="When the body and payloads were purged; the log keeps every entry."
    )
    recipients: list[RecipientStatus]  # type: ignore[assignment]
    history: list[NoticeVersion] = Field(description="Every version of this notice, oldest first.")


CancellationReason = Literal["entered_in_error", "release_cancelled", "other"]


class CancellationIn(RequestBody):
    reason: CancellationReason = Field(
        description="`entered_in_error`: it should never have been sent (wrong person, wrong "
        "prison). `release_cancelled`: the release will not happen as notified. `other`."
    )


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


Kind = Literal["prison", "probation_provider", "substance_misuse_service", "auditor", "operator"]


class OrganisationIn(RequestBody):
    kind: Kind
    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$", description="e.g. MDI, N07")
    name: Name


class OrganisationOut(Wire):
    id: uuid.UUID
    code: str
    kind: Kind
    name: str
    created_at: datetime
    disabled_at: datetime | None


class OrganisationPage(Wire):
    items: list[OrganisationOut]
    next_cursor: str | None


class ClientIn(RequestBody):
    scopes: Scopes | None = Field(
        default=None, description="Space-separated; default: every scope the kind allows."
    )
    public_key: KeyText | None = Field(
        default=None,
        description="PEM or JWK (as a string). Given a key, the client uses private_key_jwt "
        "and gets no secret.",
    )


class ClientOut(Wire):
    client_id: str
    scopes: str
    authentication: Literal["client_secret_basic", "private_key_jwt"]
    created_at: datetime
    disabled_at: datetime | None
    previous_secret_valid_until: datetime | None


class ClientCreated(ClientOut):
    client_secret: str | None = Field(description="Shown once; null for private_key_jwt.")


class ClientPage(Wire):
    items: list[ClientOut]
    next_cursor: str | None


class SecretRotationIn(RequestBody):
    overlap_seconds: int = Field(
        default=86400, ge=0, le=30 * 86400, description="How long the old secret keeps working."
    )


class SecretRotated(Wire):
    client_id: str
    client_secret: str = Field(description="Shown once.")
    previous_secret_valid_until: datetime | None


# --- consent records -------------------------------------------------------------------------


class ConsentIn(RequestBody):
    scope: base.ConsentScope = Field(description=base.CONSENT_SCOPES_SAID)
    decision: Literal["given", "refused"]
    recorded_by: Name = Field(description="Who recorded it, by role, e.g. Healthcare.")
    recorded_at: Instant | None = Field(
        default=None, description="When the person decided; default now. Not in the future."
    )
    expires_at: Instant | None = Field(
        default=None, description="When a consent lapses by itself, if it does."
    )


class ConsentOut(Wire):
    id: uuid.UUID
    scope: base.ConsentScope
    decision: Literal["given", "refused"]
    recorded_at: datetime
    recorded_by: str
    expires_at: datetime | None
    source: Literal["api", "notice"] = Field(
        description="Recorded directly, or made from the first notice to carry it."
    )
    created_at: datetime
    withdrawn_at: datetime | None
    voided_at: datetime | None = Field(
        description="Made from notices, none of which carries it any more (each cancelled as "
        "entered_in_error, or amended to drop it): it counts as never made."
    )


class ConsentHistory(Wire):
    items: list[ConsentOut] = Field(description="Every record, oldest first.")
    next_cursor: str | None
    standing: dict[str, bool] = Field(description="Per scope, whether consent stands now.")


class WithdrawalOut(Wire):
    consent: ConsentOut
    revoked: list[uuid.UUID] = Field(
        description="Messages not yet delivered that relied on it: never to be sent."
    )
    redisclosed: list[uuid.UUID] = Field(
        description="The messages decided again in their place, with what may still be sent."
    )
    notified: list[uuid.UUID] = Field(
        description="consent.withdrawn messages to recipients that may hold what relied on it."
    )


# --- what each recipient was sent, and why ----------------------------------------------------


class FieldSent(Wire):
    path: str
    rule: str
    transform: str | None = None


class FieldWithheld(Wire):
    path: str
    rule: str
    reason: str


class RuleBasis(Wire):
    effect: Literal["allow", "deny"]
    requires: Literal["statutory", "consent", "safeguarding"] | None = None
    consent: str | None = None
    condition: str | None = None
    lawful_basis: list[str]
    purpose: str


class PolicyRef(Wire):
    version: str
    sha256: str


class RecipientDisclosure(Wire):
    """One decision for one recipient: the fields sent and withheld, never a value."""

    organisation_code: str | None = None
    role: Literal["probation_provider", "substance_misuse_service"]
    decided_at: datetime | None = None
    message_id: uuid.UUID | None = None
    sent: list[FieldSent]
    withheld: list[FieldWithheld]
    bases: dict[str, RuleBasis] = Field(description="Each rule named above: what it rests on.")
    consents_relied: list[str]
    policy: PolicyRef


class NoticeDisclosures(Wire):
    notice_id: uuid.UUID
    version: int
    disclosures: list[RecipientDisclosure]
