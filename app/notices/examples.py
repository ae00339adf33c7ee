"""The documented examples: the canonical release notice (schemas/examples/), and a request
body for each other operation that takes one, as the OpenAPI document shows them.

Intake refuses release dates far from the day a notice arrives, so an example written on one
day cannot be posted months later as it stands. Moving every date and time by the same number of
days keeps the example true to itself (the same ages, the same gaps) and postable on any day:
`moved` does that to one example, or to the whole OpenAPI document, which is written as of
WRITTEN_ON like the notice.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]


EXAMPLE = PROJECT_ROOT / "schemas" / "examples" / "release-notice.json"
WRITTEN_ON = date(2026, 11, 22)  # the day the example's dates are true for
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def moved(value: Any, by: timedelta) -> Any:
    """A JSON value with every ISO date and UTC time in it moved by `by`."""
    if isinstance(value, dict):
        return {k: moved(v, by) for k, v in value.items()}
    if isinstance(value, list):
        return [moved(v, by) for v in value]
    if isinstance(value, str) and DATE.match(value):
        return (date.fromisoformat(value) + by).isoformat()
    if isinstance(value, str) and INSTANT.match(value):
        return (datetime.fromisoformat(value) + by).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def release_notice(today: date | None = None) -> dict[str, Any]:
    """The example as written, or as if written `today`."""
    example = json.loads(EXAMPLE.read_text())
    return example if today is None else moved(example, today - WRITTEN_ON)


# An RSA public key (2048 bits) to encrypt a recipient's messages to: only an example.
EXAMPLE_ENCRYPTION_KEY = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx5D3Iy1nOAMrRgUtXJ7E
l59ocZHjkPPo/mvUXguiFAB+Te7eGkoVD4DWha09P07ZWP34jOI86ewmIoRXM7zn
YmT2XqfKulgpNc3KiV2bFmm69rCvoNTCIJ5FisnQW9IJGDYt1pGe8fkyNt42VDd9
93ZrVh8D7o8dvYHIQgbMwbUfwd+1tEB7eEt93YUqQ4aTKinMI34GC0c84fX9S6Ds
aleUjXQp7wK3VNhRTvyYAh5bpCE96LfEDbB8JEWtkyDC/BozmhZhcVws47sk6y9k
QUGkZ6MEkJH6r/tFvZezXdGfcgvcCPhlE5GJKtkf9oKrqjW+2L9PFTW4uGccDjJ1
twIDAQAB
-----END PUBLIC KEY-----
"""

# One request body for each component schema that is one, as of WRITTEN_ON; each one that can
# be accepted (given the organisations and paths it names) is accepted as it stands.
REQUEST_BODIES: dict[str, dict[str, Any]] = {
    "OrganisationIn": {"kind": "probation_provider", "code": "N08", "name": "Probation North"},
    "ClientIn": {"scopes": "messages:read subscriptions:write"},
    "SecretRotationIn": {"overlap_seconds": 86400},
    "CancellationIn": {"reason": "release_cancelled"},
    "ConsentIn": {
        "scope": "substance_misuse_service",
        "decision": "given",
        "recorded_by": "Healthcare",
        "recorded_at": "2026-11-20T10:00:00Z",
    },
    "SubscriptionIn": {"url": "https://hooks.probation.example/nps-exchange"},
    "SubscriptionChange": {"status": "disabled"},
    "SubscriptionSecretRotationIn": {"overlap_seconds": 86400},
    "RecoveryIn": {"since": "2026-11-21T00:00:00Z"},
    "RedeliveryIn": {},
    "AcknowledgementIn": {  # the example notice's release is on 2026-12-01
        "status": "appointment_booked",
        "appointment_date": "2026-12-03",
        "note": "Allocated to a case manager.",
    },
    "EncryptionKeyIn": {"key": EXAMPLE_ENCRYPTION_KEY},
    "CareUpdate": {  # a treatment service's, before the release: no dated event yet
        "assessment": {"nps_use_identified": True, "nps_categories": ["synthetic_cannabinoid"]},
        "safeguarding": {"children_contact": "yes", "vulnerable_adults_contact": "no"},
        "clinical_note": "Wants a reduction plan for Spice; naloxone kit checked.",
    },
}


def with_examples(document: dict[str, Any]) -> dict[str, Any]:
    """Add the examples to an OpenAPI document: the release notice's and REQUEST_BODIES."""
    schemas = document.get("components", {}).get("schemas", {})
    for name, body in {"ReleaseNotice": release_notice(), **REQUEST_BODIES}.items():
        if name in schemas:
            schemas[name]["examples"] = [body]
    return document
