"""Wire formats of a recipient's subscriptions: the endpoints, their deliveries, and recovery."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AnyHttpUrl, Field

from app.wire.base import Instant, RequestBody, Uuid, Wire
from app.wire.schemas import DeliveryState, MessageKind


class SubscriptionIn(RequestBody):
    url: AnyHttpUrl = Field(
        description="Where messages are POSTed; must resolve to a public address."
    )


class SubscriptionOut(Wire):
    id: uuid.UUID
    url: str
    status: Literal["active", "disabled", "deleted"] = Field(
        description="`active`: delivered to. `disabled`: not delivered to for now; its pending "
        "deliveries wait and go out once it is active again. `deleted`: for good."
    )
    disabled_reason: Literal["recipient", "gone"] | None = Field(
        description="Why it is disabled: `recipient` (you asked), `gone` (the endpoint answered "
        "410 Gone)."
    )
    disabled_at: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="After a secret rotation, deliveries are signed with the previous secret "
        "too until then; null when only the current secret signs."
    )
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="The whsec_ signing secret. Shown once; store it now.")


class SubscriptionPage(Wire):
    items: list[SubscriptionOut]
    next_cursor: str | None


class SubscriptionChange(RequestBody):
    status: Literal["active", "disabled"] | None = Field(
        default=None,
        description="`active` re-enables a disabled subscription, whatever disabled it; "
        "`disabled` stops deliveries to it until then.",
    )
    url: AnyHttpUrl | None = Field(
        default=None, description="A new endpoint; must resolve to a public address."
    )


class SubscriptionSecretRotationIn(RequestBody):
    overlap_seconds: int = Field(
        default=86400,
        ge=0,
        le=7 * 86400,
        description="How long deliveries are signed with the old secret too (0: not at all).",
    )


class SubscriptionSecretRotated(SubscriptionOut):
    secret: str = Field(description="The new whsec_ signing secret. Shown once; store it now.")


class DeliveryAttemptOut(Wire):
    attempted_at: datetime
    status_code: int | None = Field(description="The endpoint's answer; null if none came.")
    latency_ms: int
    error: str | None = Field(description="Why it failed, e.g. `timed out`; null on success.")


class DeliveryOut(Wire):
    id: uuid.UUID
    message_id: uuid.UUID
    sequence: int = Field(description="The message's number in your inbox.")
    kind: MessageKind
    state: DeliveryState = Field(
        description="`pending`: to be attempted at next_attempt_at. `delivered`. `dead`: retries "
        "spent, or the subscription deleted. `revoked`: the message may no longer be sent "
        "(revoked, withdrawn or purged). `superseded`: a later message replaced it, and is sent "
        "instead; this one stays in your inbox, marked `superseded_by`."
    )
    attempt_count: int
    next_attempt_at: datetime | None = Field(description="When pending: the next attempt.")
    delivered_at: datetime | None
    last_error: str | None
    attempts: list[DeliveryAttemptOut] = Field(description="Every attempt, oldest first.")


class DeliveryPage(Wire):
    items: list[DeliveryOut] = Field(description="Newest first.")
    next_cursor: str | None


class RedeliveryIn(RequestBody):
    subscription_id: Uuid | None = Field(
        default=None, description="Only to this subscription; default: every active one."
    )


class Redelivery(Wire):
    deliveries: list[uuid.UUID] = Field(
        description="The deliveries that will send it now: a pending one made due, or a new one."
    )


class RecoveryIn(RequestBody):
    since: Instant = Field(description="Messages created at or after this time ...")
    until: Instant | None = Field(default=None, description="... and before this one.")


class Recovery(Wire):
    queued: int = Field(description="How many messages will be sent again.")
    complete: bool = Field(description="Whether every message of the window was queued.")
    next_since: datetime | None = Field(
        description="When not complete: call again with this as `since` for the rest."
    )
