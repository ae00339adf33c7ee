"""Who may do what: organisation kinds, scopes, the caller, client secrets. No web framework."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum

# A client id is 1 to 64 visible ASCII characters (RFC 6749 appendix A.1 allows VSCHAR, space
# included; the exchange's own are cli_ and base64url). Nothing else reaches the database.
CLIENT_ID = r"^[\x20-\x7e]{1,64}$"


class Scope(StrEnum):
    RELEASE_NOTICES_WRITE = "release-notices:write"
    CONSENTS_WRITE = "consents:write"
    MESSAGES_READ = "messages:read"
    SUBSCRIPTIONS_WRITE = "subscriptions:write"
    ACKNOWLEDGEMENTS_WRITE = "acknowledgements:write"
    AUDIT_READ = "audit:read"
    ADMIN = "admin"
    METRICS_READ = "metrics:read"  # /metrics alone: what Prometheus's credential should hold
    REPORTS_READ = "reports:read"  # aggregates only; a prison sees its own releases
    UPDATES_WRITE = "updates:write"  # a recipient shares a care update with the other one


ORGANISATION_KINDS = (
    "prison",
    "probation_provider",
    "substance_misuse_service",
    "auditor",
    "operator",
)
# The kinds a notice's messages go to: the recipients on a release plan.
RECIPIENT_KINDS = ("probation_provider", "substance_misuse_service")

KIND_SCOPES: dict[str, frozenset[Scope]] = {
    # A prison reads, subscribes to and acknowledges the alerts about its notices
    # (receipt.overdue): the only messages it is sent.
    "prison": frozenset(
        {
            Scope.RELEASE_NOTICES_WRITE,
            Scope.CONSENTS_WRITE,
            Scope.REPORTS_READ,
            Scope.MESSAGES_READ,
            Scope.SUBSCRIPTIONS_WRITE,
            Scope.ACKNOWLEDGEMENTS_WRITE,
        }
    ),
    "probation_provider": frozenset(
        {
            Scope.MESSAGES_READ,
            Scope.SUBSCRIPTIONS_WRITE,
            Scope.ACKNOWLEDGEMENTS_WRITE,
            Scope.UPDATES_WRITE,
        }
    ),
    "substance_misuse_service": frozenset(
        {
            Scope.CONSENTS_WRITE,
            Scope.MESSAGES_READ,
            Scope.SUBSCRIPTIONS_WRITE,
            Scope.ACKNOWLEDGEMENTS_WRITE,
            Scope.UPDATES_WRITE,
        }
    ),
    "auditor": frozenset({Scope.AUDIT_READ, Scope.REPORTS_READ}),
    "operator": frozenset({Scope.ADMIN, Scope.METRICS_READ, Scope.REPORTS_READ}),
}


@dataclass(frozen=True)
class Caller:
    """An authenticated client, acting for exactly one organisation."""

    client_id: str
    organisation_id: uuid.UUID
    organisation_code: str
    kind: str
    scopes: frozenset[str]


def hash_secret(secret: str) -> str:
    """Client secrets are 256-bit random values, so a plain SHA-256 is a sound verifier."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_client_credentials() -> tuple[str, str]:
    return "cli_" + secrets.token_urlsafe(12), secrets.token_urlsafe(32)
