"""Wire formats of the API besides the release notice itself (which is app/notice.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


# A point in time with its offset, held in UTC; one that cannot be is a validation error.
UtcInstant = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenResponse(Wire):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105
    expires_in: int
    scope: str


MessageKind = Literal["disclosure", "cancellation"]
NoticeState = Literal["accepted", "not_routed", "superseded", "cancelled"]


class RoutedRecipient(Wire):
    organisation_code: str
    role: Literal["probation_provider", "substance_misuse_service"]
    kind: MessageKind = Field(
        description="`disclosure`: what the policy lets this recipient see of this version. "
        "`cancellation`: a disclosure it was sent earlier no longer stands."
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

    state: Literal["pending", "delivered", "dead"]
    attempts: int
    delivered_at: datetime | None


class RecipientStatus(RoutedRecipient):
    supersedes: uuid.UUID | None = Field(description="The earlier message this one replaces.")
    deliveries: list[DeliveryStatus]


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


class CancellationIn(Wire):
    reason: Literal["entered_in_error", "release_cancelled", "other"] = Field(
        description="`entered_in_error`: it should never have been sent (wrong person, wrong "
        "prison). `release_cancelled`: the release will not happen as notified. `other`."
    )


class MessageOut(Wire):
    id: uuid.UUID
    kind: MessageKind
    notice_id: uuid.UUID
    supersedes: uuid.UUID | None = Field(description="The earlier message this one replaces.")
    sequence: int
    created_at: datetime
    jws: str | None = Field(
        description="Compact JWS (ES256; typ disclosure+jwt or cancellation+jwt); verify with "
        "the JWKS. Null once purged after the retention period."
    )
    purged_at: datetime | None


class MessagePage(Wire):
    items: list[MessageOut]
    next_cursor: str | None


class SubscriptionIn(Wire):
    url: AnyHttpUrl = Field(
        description="Where messages are POSTed; must resolve to a public address."
    )


class SubscriptionOut(Wire):
    id: uuid.UUID
    url: str
    status: Literal["active", "disabled"]
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="The whsec_ signing secret. Shown once; store it now.")


class SubscriptionPage(Wire):
    items: list[SubscriptionOut]
    next_cursor: str | None


class AuditEntryOut(Wire):
    id: int
    recorded_at: datetime
    action: str
    actor_organisation_id: uuid.UUID | None
    actor_client_id: str | None
    notice_id: uuid.UUID | None
    message_id: uuid.UUID | None
    subject_organisation_id: uuid.UUID | None
    details: dict[str, object]


class AuditPage(Wire):
    items: list[AuditEntryOut]
    next_cursor: str | None


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


Kind = Literal["prison", "probation_provider", "substance_misuse_service", "auditor", "operator"]


class OrganisationIn(Wire):
    kind: Kind
    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$", description="e.g. MDI, N07")
    name: str = Field(min_length=1, max_length=200)


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


class ClientIn(Wire):
    scopes: str | None = Field(
        default=None, description="Space-separated; default: every scope the kind allows."
    )
    public_key: str | None = Field(
        default=None,
        max_length=8192,
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


class SecretRotationIn(Wire):
    overlap_seconds: int = Field(
        default=86400, ge=0, le=30 * 86400, description="How long the old secret keeps working."
    )


class SecretRotated(Wire):
    client_id: str
    client_secret: str = Field(description="Shown once.")
    previous_secret_valid_until: datetime | None
