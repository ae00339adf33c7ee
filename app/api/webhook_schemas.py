"""What a recipient receives: each webhook event's body, and the claims of each signed message.

The bodies are documented in the OpenAPI `webhooks` section (app/api/webhooks.py); the claims
are published as schemas/<kind>-claims.v1.json, one per kind of message. A disclosure's claims
follow the policy that decides them (app/disclosure/claims_schema.py), so their model is made for a
policy.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from app.disclosure import claims_schema as disclosed
from app.disclosure.policy import (
    CARE_UPDATE,
    NO_RULE,
    REASON_NO_CONDITION,
    REASON_NO_CONSENT,
    REASON_NO_RULE,
    TRANSFORMS,
    Policy,
)
from app.notices.document import NomsNumber, OrganisationCode, ReleaseNotice
from app.updates.document import CareUpdate
from app.wire.base import ConsentScope
from app.wire.schemas import CancellationReason, PolicyRef, Wire

POINTER = r"^(/[a-z0-9_]+)+$"  # a member of the release notice, as a JSON Pointer


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def absent(description: str) -> Any:
    """A member that is sometimes left out (never null): not required, and no default."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


# --- the webhook events --------------------------------------------------------------------


class EventData(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["jws"]}, {"required": ["jwe"]}]},
    )

    message_id: uuid.UUID = Field(
        description="The message: the same as the `webhook-id` header and the JWS's `jti`, and "
        "the same on every retry and redelivery. Deduplicate on it."
    )
    notice_id: uuid.UUID = Field(
        description="The notice version the message is about (the JWS's `notice_id`)."
    )
    sequence: int = Field(
        ge=1,
        description="Your organisation's inbox number for the message. Numbers have no gaps, "
        "and deliveries may arrive out of order: read a missing one with "
        "`GET /v1/messages?after=SEQ`.",
    )
    jws: str = absent(
        "The signed message, a compact JWS (ES256; `kid` in `/.well-known/jwks.json`, or at "
        "`GET /v1/signing-keys/{kid}` after a key rotation). Its header `typ` and its claims "
        "are those of the event. Absent when `jwe` is sent."
    )
    jwe: str = absent(
        "Instead of `jws` when your organisation has registered an encryption key: the same "
        "signed message encrypted to that key, a compact JWE (RSA-OAEP-256, A256GCM, `cty` "
        "JWT, `kid` your key's). Decrypt it with your private key, then verify the JWS inside."
    )


REPLACES = (
    "The message this one replaces: the last one made for you about the notice (your disclosure "
    "of the version that an amendment corrected, or the cancellation of an earlier version that "
    "stopped going to you), or one decided again after a consent it relied on was withdrawn "
    "before it was sent. It may be one you never received (revoked before any attempt): your "
    "inbox has it, with its own `supersedes`. The replaced message shows `superseded_by` there. "
    "Absent for a first disclosure."
)


class DisclosureData(EventData):
    supersedes: uuid.UUID = absent(REPLACES)


class CancellationData(EventData):
    supersedes: uuid.UUID = Field(description="The disclosure that no longer stands.")


class ConsentWithdrawnData(EventData):
    supersedes: uuid.UUID = Field(
        description="The disclosure that relied on the consent now withdrawn."
    )


class CareUpdateData(EventData):
    supersedes: uuid.UUID = absent(
        "The care update message this one replaces: decided again, and never sent, after a "
        "consent it relied on was withdrawn. Absent for a first one."
    )


class Event(Wire):
    type: str
    timestamp: datetime = Field(
        description="When the message was made (UTC, whole seconds); the same on every retry. "
        "When this attempt was made is the `webhook-timestamp` header."
    )


class DisclosureCreated(Event):
    """What the policy lets you see of one version of a release notice."""

    type: Literal["disclosure.created"]
    data: DisclosureData


class NoticeCancelled(Event):
    """A disclosure you were sent no longer stands."""

    type: Literal["notice.cancelled"]
    data: CancellationData


class ConsentWithdrawn(Event):
    """A disclosure you were sent relied on a consent the person has withdrawn."""

    type: Literal["consent.withdrawn"]
    data: ConsentWithdrawnData


class ReceiptOverdue(Event):
    """A disclosure was not acknowledged by the end of its `receipt_due` day."""

    type: Literal["receipt.overdue"]
    data: EventData


class EngagementOverdue(Event):
    """No attended appointment was recorded within the window after a release."""

    type: Literal["engagement.overdue"]
    data: EventData


class EngagementAtRisk(Event):
    """A substance misuse service recorded a missed appointment, and no booking since."""

    type: Literal["engagement.at_risk"]
    data: EventData


class CareUpdateCreated(Event):
    """An update about the person from the release's other recipient."""

    type: Literal["care_update.created"]
    data: CareUpdateData


# --- the signed messages' claims -----------------------------------------------------------


class Claims(Wire):
    """The claims every signed message carries."""

    iss: str = Field(description="The exchange that signed it: its issuer URL.")
    aud: OrganisationCode = Field(description="Your organisation's code: check it is yours.")
    iat: int = Field(description="When it was signed, in unix seconds.")
    jti: uuid.UUID = Field(
        description="The message's id: the `webhook-id` header, the event's `message_id` and "
        "the inbox item's `id`."
    )
    notice_id: uuid.UUID = Field(description="The notice version it is about.")


class CancellationClaims(Claims):
    """A cancellation (JWS `typ` `cancellation+jwt`, event `notice.cancelled`): a disclosure
    you were sent no longer stands."""

    supersedes: uuid.UUID = Field(description="The disclosure that no longer stands.")
    reason: Literal[CancellationReason, "amended_not_shared"] = Field(
        description="`entered_in_error`: the notice should never have been sent (wrong "
        "person, wrong prison). `release_cancelled`: the release will not happen as notified. "
        "`other`: the prison cancelled it for another reason. `amended_not_shared`: a corrected "
        "version of the notice no longer goes to you (its release plan no longer names you, "
        "the release is no longer into the community, or the policy allows you nothing of it)."
    )


class ConsentWithdrawnClaims(Claims):
    """A consent withdrawal (JWS `typ` `consent-withdrawn+jwt`, event `consent.withdrawn`): a
    disclosure you were sent relied on a consent that no longer stands (the person withdrew it
    or refused it since, or it came in a notice entered in error). Stop using, and delete,
    what it gave you on the strength of that consent."""

    supersedes: uuid.UUID = Field(description="The disclosure that relied on the consent.")
    scope: ConsentScope = Field(description="The consent that no longer stands.")
    withdrawn_at: int = Field(description="When it stopped standing, in unix seconds.")


class DeadlinePassed(Wire):
    id: uuid.UUID = Field(description="The deadline: the same in every event about it.")
    kind: Literal["receipt", "engagement", "at_risk"] = Field(
        description="`receipt`: a disclosure's acknowledgement. `engagement`: an attended "
        "appointment within the window after release. `at_risk`: a missed appointment."
    )
    due_on: date = Field(
        description="The day by whose end it was due, in England and Wales (for an at_risk, "
        "the missed appointment's day)."
    )
    owed_by: OrganisationCode = Field(description="The organisation that owes it.")


class AlertClaims(Claims):
    """An alert about a deadline (JWS `typ` `receipt-overdue+jwt`, `engagement-overdue+jwt` or
    `engagement-at-risk+jwt`): ids, codes and days only; never anything about the person that
    you do not hold already. `notice_id` is the notice version of the message it concerns."""

    deadline: DeadlinePassed
    concerning: uuid.UUID = Field(
        description="The disclosure message the deadline is about: the recipient's own (your "
        "message, if the deadline is yours; for a prison, the message id in its notice's "
        "status view)."
    )
    series_id: uuid.UUID = Field(description="The release notice, whatever its version.")
    missed_appointment_date: date = absent(
        "For `engagement.at_risk` only: the day of the appointment missed."
    )


class Transformed(Wire):
    path: str = Field(pattern=POINTER, description="A member sent changed.")
    rule: str = Field(description="The rule that changed it.")
    transform: Literal[tuple(TRANSFORMS)] = Field(  # type: ignore[valid-type]
        description="How: `month` (a date cut to YYYY-MM), `year` (cut to YYYY)."
    )


class Deadlines(Wire):
    """What you owe about this disclosure, and by when: each a day, met by the end of that day
    in England and Wales (working days without weekends and England and Wales's bank holidays).
    When one passes unmet, the exchange tells those who can act (events `receipt.overdue`,
    `engagement.overdue`)."""

    receipt_due: date = Field(
        description="Acknowledge it (`received`, or any later status) by the end of this day: "
        "the next working day after the day it was first available to you."
    )
    engagement_due: date = absent(
        "For a substance misuse service only: record an `attended` appointment dated within "
        "the window, from the release date to this day (21 days after it), the "
        "continuity-of-care measure. Absent for other recipients."
    )


DISCLOSURE_DOC = """A disclosure (JWS `typ` `disclosure+jwt`, event `disclosure.created`):
what the policy lets you see of one version of a release notice, what it withheld and why."""


def disclosure_claims(policy: Policy) -> type[BaseModel]:
    """The claims of a disclosure decided by this policy: which members of the notice it can
    carry, in which forms, and which it always carries, are the policy's
    (app/disclosure/claims_schema.py)."""
    notice = ReleaseNotice.model_json_schema()
    found = disclosed.shape(policy, notice)
    named = "/person/noms_number" in found.always
    sub = "The person's NOMS number (`/person/noms_number` of the disclosure)."
    return create_model(
        "DisclosureClaims",
        __base__=Claims,
        __doc__=DISCLOSURE_DOC,
        sub=(NomsNumber, Field(description=sub) if named else absent(f"{sub} Absent unless sent.")),
        supersedes=(uuid.UUID, absent(REPLACES)),
        disclosure=(
            _decided(notice, found),
            Field(
                description="What you may see of the notice: the release notice "
                "(release-notice.v1.json) as the prison sent it, without what was withheld "
                "(each withheld member is in `manifest`) and with some dates cut (see "
                "`transformed`). A member that is neither here nor in `manifest` was not sent "
                "by the prison."
            ),
        ),
        manifest=(list[_withheld(policy)], WITHHELD),  # type: ignore[misc]
        transformed=(
            list[Transformed],
            absent("Each member sent changed, and how; absent when none was."),
        ),
        policy=(PolicyRef, Field(description="The policy that decided: its version and hash.")),
        deadlines=(Deadlines, Field(description="What you owe about it, and by when.")),
    )


WITHHELD = Field(description="Each member withheld from you and why; never its value.")


def _decided(document: dict[str, Any], found: disclosed.Shape) -> Any:
    return Annotated[dict[str, Any], WithJsonSchema(disclosed.disclosure_schema(document, found))]


def _withheld(policy: Policy) -> type[BaseModel]:
    reasons = {REASON_NO_RULE, REASON_NO_CONSENT, REASON_NO_CONDITION}
    reasons |= {r.reason for r in policy.rules if r.reason}
    return create_model(
        "Withheld",
        __base__=Wire,
        path=(str, Field(pattern=POINTER, description="A member withheld, with all it holds.")),
        rule=(str, Field(description=f"The rule that withheld it (`{NO_RULE}`: none sends it).")),
        reason=(
            Literal[tuple(sorted(reasons))],  # type: ignore[valid-type]
            Field(
                description="Why: `consent_not_given` (the person has not given the consent "
                "this needs), `condition_not_met` (nobody is at the risk the rule is for), "
                "`not_necessary` (you do not need it), `no_rule_allows` (no rule sends it)."
            ),
        ),
    )


class UpdateAuthor(Wire):
    id: uuid.UUID = Field(description="The update: every message it caused carries it.")
    from_: OrganisationCode = Field(alias="from", description="The organisation that sent it.")
    role: Literal["probation_provider", "substance_misuse_service"] = Field(
        description="What the sender is to the release."
    )
    recorded_at: int = Field(description="When the exchange received it, in unix seconds.")


CARE_UPDATE_DOC = """A care update (JWS `typ` `care-update+jwt`, event `care_update.created`): what
the release's other recipient shared about the person, as the care-update policy lets you see
it, what it withheld and why."""


def care_update_claims(policy: Policy) -> type[BaseModel]:
    """The claims of a care update decided by this policy's care-update rules."""
    governs = policy.for_document(CARE_UPDATE)
    document = CareUpdate.model_json_schema()
    found = disclosed.shape(governs, document)
    return create_model(
        "CareUpdateClaims",
        __base__=Claims,
        __doc__=CARE_UPDATE_DOC,
        supersedes=(uuid.UUID, absent("The care update message decided again in its place.")),
        series_id=(uuid.UUID, Field(description="The release notice, whatever its version.")),
        update=(UpdateAuthor, Field(description="Which update, from whom, and when.")),
        disclosure=(
            _decided(document, found),
            Field(
                description="What you may see of the update (care-update.v1.json), without "
                "what was withheld (each withheld member is in `manifest`)."
            ),
        ),
        manifest=(list[_withheld(governs)], WITHHELD),  # type: ignore[misc]
        policy=(PolicyRef, Field(description="The policy that decided: its version and hash.")),
    )
