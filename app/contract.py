"""The published contract: openapi/openapi.json and schemas/*.json, generated from the code.

`python -m app.contract write` regenerates them (make contract); `check` exits non-zero when the
committed files differ from what the code would generate, and the test suite runs the same check.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from app.api import webhook_schemas as schemas_webhooks
from app.api.webhooks import claims_schema
from app.disclosure.policy_files import load_policy
from app.messages.kinds import ALERTS, CANCELLATION, CARE_UPDATE, CONSENT_WITHDRAWN, DISCLOSURE
from app.notices.document import ReleaseNotice
from app.settings import PROJECT_ROOT, Settings
from app.updates.document import DOCUMENTS, CareUpdate
from app.wire import audit as schemas_audit
from app.wire import messages as schemas_messages
from app.wire import reports as schemas_reports
from app.wire import schemas
from app.wire import subscriptions as schemas_subscriptions

SCHEMA_BASE = "https://nps-exchange.example/schemas/"
PUBLISHED: dict[str, type[BaseModel]] = {
    "release-notice.v1.json": ReleaseNotice,
    "care-update.v1.json": CareUpdate,
    "notice-accepted.v1.json": schemas.NoticeAccepted,
    "notice-status.v1.json": schemas.NoticeStatus,
    "message.v1.json": schemas_messages.MessageOut,
    "acknowledgement.v1.json": schemas.AcknowledgementOut,
    "subscription.v1.json": schemas_subscriptions.SubscriptionCreated,
    "consent.v1.json": schemas.ConsentOut,
    "consent-withdrawal.v1.json": schemas.WithdrawalOut,
    "notice-disclosures.v1.json": schemas.NoticeDisclosures,
    "audit-entry.v1.json": schemas_audit.AuditEntryOut,
    "continuity-of-care-report.v1.json": schemas_reports.ContinuityReport,
    "timeliness-report.v1.json": schemas_reports.TimelinessReport,
    "problem.json": schemas.ProblemOut,
    claims_schema(CANCELLATION): schemas_webhooks.CancellationClaims,
    claims_schema(CONSENT_WITHDRAWN): schemas_webhooks.ConsentWithdrawnClaims,
    **{claims_schema(kind): schemas_webhooks.AlertClaims for kind in ALERTS},
}
# A disclosure's claims follow the policy: published for the policy this repository ships.
SHIPPED_POLICY = PROJECT_ROOT / "consent"
EXAMPLES = {
    "release-notice.v1.json": ["examples/release-notice.json"],
    "care-update.v1.json": [
        "examples/care-update-from-service.json",
        "examples/care-update-from-probation.json",
    ],
}


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def json_schema(name: str, model: type[BaseModel], root: Path) -> dict[str, Any]:
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE + name,
        **model.model_json_schema(),
    }
    if name in EXAMPLES:
        examples = [root / "schemas" / path for path in EXAMPLES[name]]
        document["examples"] = [json.loads(path.read_text()) for path in examples]
    return document


def openapi() -> dict[str, Any]:
    from app.main import create_app

    # Keys are made in a throwaway folder: the document does not depend on them.
    with tempfile.TemporaryDirectory() as data_dir:
        return create_app(Settings(data_dir=Path(data_dir)), embedded_worker=False).openapi()


def published() -> dict[str, type[BaseModel]]:
    """Every published schema's model, by file name."""
    policy = load_policy(SHIPPED_POLICY, ReleaseNotice, DOCUMENTS)
    return {
        **PUBLISHED,
        claims_schema(DISCLOSURE): schemas_webhooks.disclosure_claims(policy),
        claims_schema(CARE_UPDATE): schemas_webhooks.care_update_claims(policy),
    }


def generated(root: Path = PROJECT_ROOT) -> dict[Path, str]:
    files = {root / "openapi" / "openapi.json": _dump(openapi())}
    for name, model in published().items():
        files[root / "schemas" / name] = _dump(json_schema(name, model, root))
    return files


def drift(root: Path = PROJECT_ROOT) -> list[Path]:
    return [p for p, text in generated(root).items() if not p.exists() or p.read_text() != text]


def main(argv: list[str]) -> int:
    if argv[1:] == ["write"]:
        for path, text in generated().items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return 0
    if argv[1:] == ["check"]:
        stale = drift()
        for path in stale:
            print(f"out of date: {path.relative_to(PROJECT_ROOT)} (run `make contract`)")
        return 1 if stale else 0
    print("usage: python -m app.contract write|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
