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


class RoutedRecipient(Wire):
    organisation_code: str
    role: Literal["probation_provider", "substance_misuse_service"]
    message_id: uuid.UUID | None = Field(
        description="The signed message, or null when the policy allowed nothing to be sent."
    )


class NoticeAccepted(Wire):
    id: uuid.UUID
    status: str
    received_at: datetime
    recipients: list[RoutedRecipient]


class RecipientStatus(RoutedRecipient):
    deliveries: list[DeliveryStatus]


class DeliveryStatus(Wire):
    """One delivery to one of the recipient's webhook endpoints (which are theirs to know)."""

    state: Literal["pending", "delivered", "dead"]
    attempts: int
    delivered_at: datetime | None


class NoticeStatus(Wire):
    id: uuid.UUID
    status: str
    received_at: datetime
    recipients: list[RecipientStatus]


class MessageOut(Wire):
    id: uuid.UUID
    notice_id: uuid.UUID
    sequence: int
    created_at: datetime
    jws: str = Field(description="Compact JWS (ES256, typ disclosure+jwt); verify with the JWKS.")


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


RecipientStatus.model_rebuild()


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
