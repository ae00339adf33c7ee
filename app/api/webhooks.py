"""The webhooks the exchange sends, for the OpenAPI document's `webhooks` section.

Never served: each operation says what the exchange POSTs to a subscription's URL (the event,
its Standard Webhooks headers) and what it does with each answer. The claims inside each signed
message are published in schemas/<kind>-claims.v1.json.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response

from app.api.webhook_schemas import (
    CareUpdateCreated,
    ConsentWithdrawn,
    DisclosureCreated,
    EngagementAtRisk,
    EngagementOverdue,
    NoticeCancelled,
    ReceiptOverdue,
)
from app.messages.kinds import (
    CANCELLATION,
    CARE_UPDATE,
    CONSENT_WITHDRAWN,
    DISCLOSURE,
    ENGAGEMENT_AT_RISK,
    ENGAGEMENT_OVERDUE,
    RECEIPT_OVERDUE,
    TYP,
)
from app.messages.retry import (
    GONE,
    JITTER,
    MAX_RETRY_AFTER,
    RETRY_AFTER_STATUSES,
    STANDARD_SCHEDULE,
    max_attempts,
)
from app.messages.webhook import CONNECT_TIMEOUT_SECONDS, EVENT_TYPES, MAX_RESPONSE_BYTES
from app.messages.webhook import TOTAL_TIMEOUT_SECONDS as ATTEMPT_SECONDS

SCHEMAS = "https://nps-exchange.example/schemas/"
SIGNATURE = r"^v1,[A-Za-z0-9+/]+={0,2}( v1,[A-Za-z0-9+/]+={0,2})*$"


def claims_schema(kind: str) -> str:
    """The published schema of a kind of message's claims, named after its JWS `typ`."""
    return TYP[kind].removesuffix("+jwt") + "-claims.v1.json"


def standard_webhooks_headers(
    webhook_id: Annotated[
        uuid.UUID,
        Header(description="The message id (`data.message_id`): the same on every retry."),
    ],
    webhook_timestamp: Annotated[
        int, Header(description="When this attempt was made, in unix seconds.")
    ],
    webhook_signature: Annotated[
        str,
        Header(
            pattern=SIGNATURE,
            description='`v1,` and the base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.'
            "{body}\" keyed with your subscription's whsec_ secret (base64-decoded, without its "
            "prefix). While a rotated-out secret is in its overlap, two signatures separated by "
            "a space, one per secret: accept the message when either verifies. Any Standard "
            "Webhooks library does this.",
        ),
    ],
) -> None:
    """The headers of every delivery (Standard Webhooks)."""


def _span(wait: timedelta) -> str:
    seconds = int(wait.total_seconds())
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


RETRY_AFTER = {
    "description": "Seconds, or an HTTP date: lengthens the wait before the next attempt "
    f"(never shortens it), up to {_span(MAX_RETRY_AFTER)}.",
    "schema": {"type": "string"},
}
SCHEDULE = (
    f"tried at once, then again after {', '.join(_span(w) for w in STANDARD_SCHEDULE)}, each wait "
    f"spread by up to {JITTER:.0%} either way"
)
RETRIES = (
    f"A delivery is {SCHEDULE}, always with the same `webhook-id` and the same bytes. When "
    f"the last of its {max_attempts()} attempts fails, the delivery is `dead` "
    "(`GET /v1/subscriptions/{id}/deliveries` shows it, and `POST /v1/messages/{id}/redeliver` "
    "sends it again)."
)
ANSWERS: dict[int | str, dict[str, Any]] = {
    GONE: {
        "description": "Gone: your subscription is disabled (`disabled_reason` `gone`). Its "
        "deliveries, and those of messages made meanwhile, wait, and go out when you re-enable "
        'it (`PATCH /v1/subscriptions/{id}` with `{"status": "active"}`).'
    },
    **{
        status: {
            "description": f"A failed attempt. A delivery is {SCHEDULE}; a `Retry-After` "
            "may lengthen the wait.",
            "headers": {"Retry-After": RETRY_AFTER},
        }
        for status in sorted(RETRY_AFTER_STATUSES)
    },
    "default": {
        "description": "Any other answer is a failed attempt, and so are a redirect (never "
        f"followed), no whole answer within {ATTEMPT_SECONDS:.0f} s ({CONNECT_TIMEOUT_SECONDS:.0f}"
        f" s to connect) and no connection. {RETRIES}"
    },
}
RECEIVED = (
    "Received: answer any 2xx once you have stored the event. The body of your answer is not "
    f"kept (at most {MAX_RESPONSE_BYTES // 1024} KiB of it is read)."
)

router = APIRouter(tags=["webhooks"], dependencies=[Depends(standard_webhooks_headers)])


def _webhook(kind: str, name: str, summary: str, *, what: str) -> Any:
    """Document one event type: the kind of message it carries, and what to do with it."""
    description = (
        f"{what}\n\n`data` carries the signed message: a JWS whose header `typ` is "
        f"`{TYP[kind]}` (or, for a recipient with an encryption key, a JWE of it). Check the "
        "`webhook-signature` first (transport), then the JWS (origin and content) with any JOSE "
        "library: ES256, the key its `kid` names in `/.well-known/jwks.json`, `aud` your "
        f"organisation's code. Its claims: {SCHEMAS}{claims_schema(kind)} "
        f"(`schemas/{claims_schema(kind)}`)."
    )
    return router.post(
        EVENT_TYPES[kind],
        name=name,
        summary=summary,
        description=description,
        status_code="2XX",  # type: ignore[arg-type]  # OpenAPI's range: any 2xx will do
        response_class=Response,
        response_description=RECEIVED,
        responses=ANSWERS,
    )


@_webhook(
    DISCLOSURE,
    "disclosure_created",
    "A disclosure: what the policy lets you see of a release notice",
    what=(
        "What the policy lets you see of one version of a release notice, with what it withheld "
        "and why. After an amendment, the new version's disclosure names the one it replaces "
        "(`supersedes`)."
    ),
)
async def disclosure_created(event: DisclosureCreated) -> None: ...


@_webhook(
    CANCELLATION,
    "notice_cancelled",
    "A cancellation: a disclosure you were sent no longer stands",
    what=(
        "A disclosure you were sent (`supersedes`) no longer stands: the notice was cancelled, or "
        "a corrected version of it no longer goes to you. The claims say why."
    ),
)
async def notice_cancelled(event: NoticeCancelled) -> None: ...


@_webhook(
    CONSENT_WITHDRAWN,
    "consent_withdrawn",
    "A consent withdrawal: stop using what relied on it",
    what=(
        "A disclosure you were sent (`supersedes`) relied on a consent that no longer stands: stop "
        "using, and delete, what it gave you on the strength of that consent."
    ),
)
async def consent_withdrawn(event: ConsentWithdrawn) -> None: ...


ALERTED = (
    " Acknowledge it `received` like any message; act on it in your own systems: the exchange "
    "sends each alert once, and a deadline met late is shown as late in the acknowledgements."
)


@_webhook(
    RECEIPT_OVERDUE,
    "receipt_overdue",
    "A disclosure was not acknowledged in time",
    what=(
        "The recipient named in `deadline.owed_by` did not acknowledge the disclosure "
        "`concerning` by the end of its `receipt_due` day (the next working day in England and "
        "Wales after it was first available). Sent to that recipient and to the prison that "
        "posted the notice." + ALERTED
    ),
)
async def receipt_overdue(event: ReceiptOverdue) -> None: ...


@_webhook(
    ENGAGEMENT_OVERDUE,
    "engagement_overdue",
    "No treatment appointment attended within 21 days of release",
    what=(
        "The substance misuse service recorded no `attended` appointment dated within the "
        "window (release date to `engagement_due`, 21 days after it): the continuity-of-care "
        "measure is missed. Sent to the service and to the probation provider on the same "
        "release (if it holds a disclosure of it that stands), so the responsible officer can "
        "help the person re-engage." + ALERTED
    ),
)
async def engagement_overdue(event: EngagementOverdue) -> None: ...


@_webhook(
    ENGAGEMENT_AT_RISK,
    "engagement_at_risk",
    "A treatment appointment was missed",
    what=(
        "The substance misuse service recorded `did_not_attend` (on "
        "`missed_appointment_date`) and no booking or attendance since. Sent at once to the "
        "probation provider on the same release (if it holds a disclosure of it that stands)."
        + ALERTED
    ),
)
async def engagement_at_risk(event: EngagementAtRisk) -> None: ...


@_webhook(
    CARE_UPDATE,
    "care_update_created",
    "A care update from the release's other recipient",
    what=(
        "The other recipient of a release you hold shared an update about the person "
        "(`POST /v1/messages/{id}/updates`): from a substance misuse service, engagement "
        "events, safeguarding, and with the person's `treatment_to_probation` consent what "
        "assessment found and a clinical note; from a probation provider, accommodation, drug "
        "appointments set by a licence or order, risk to staff, and a recall, which closes the "
        "release. The claims say what the policy sent you and what it withheld and why. "
        "Acknowledge it `received` like any message; share your own with "
        "`POST /v1/messages/{id}/updates`."
    ),
)
async def care_update_created(event: CareUpdateCreated) -> None: ...
