"""A fresh decision, told as the prison reads it (sent, withheld, the bases), and recorded: the
disclosure row, its log entry, the claims of the message it allows. Pure, so a planner decides
without a database."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.audit.entry import Entry
from app.disclosure.policy import Decision, Policy, decide


def explanation(policy: Policy, decision: Decision) -> dict[str, Any]:
    """A fresh decision, told as a stored one is (see account())."""
    allowed = [
        {"path": a.path, "rule": a.rule, **({"transform": a.transform} if a.transform else {})}
        for a in decision.allowed
    ]
    withheld = [{"path": w.path, "rule": w.rule, "reason": w.reason} for w in decision.manifest]
    return {
        "role": decision.recipient,
        "sent": allowed,
        "withheld": withheld,
        "bases": policy.bases({a["rule"] for a in allowed} | {w["rule"] for w in withheld}),
        "consents_relied": sorted(decision.consents_relied),
        "policy": {"version": policy.version, "sha256": policy.sha256},
    }


def disclosure(
    policy: Policy,
    body: Mapping[str, Any],
    recipient: tuple[Any, str],
    *,
    standing: Mapping[str, bool],
    notice_id: uuid.UUID,
    now: datetime,
    disclosure_id: uuid.UUID,
) -> tuple[dict[str, Any], Entry, dict[str, Any] | None]:
    """What one recipient gets: the disclosure row, its log entry, and the claims of the message
    to sign, or None if nothing at all is allowed (not even the fact of the notice leaves)."""
    organisation, role = recipient
    decision = decide(policy, body, role, consents=standing)
    told = explanation(policy, decision)  # the same account disclosures.py gives back
    allowed, manifest = told["sent"], told["withheld"]
    row = {
        "id": disclosure_id,
        "notice_id": notice_id,
        "recipient_organisation_id": organisation.id,
        "recipient_role": role,
        "fields_sent": list(decision.fields_sent),
        "manifest": manifest,
        "allowed": allowed,
        "bases": told["bases"],
        "consents_relied": sorted(decision.consents_relied),
        "policy_version": policy.version,
        "policy_hash": policy.sha256,
        "decided_at": now,
    }
    entry = Entry(
        "disclosure.decided",
        at=now,
        notice_id=notice_id,
        subject_organisation_id=organisation.id,
        details={
            "disclosure_id": str(disclosure_id),
            "role": role,
            "allowed": allowed,
            "withheld": manifest,
            "consents_relied": row["consents_relied"],
            "policy_version": policy.version,
            "policy_hash": policy.sha256,
        },
    )
    if not decision.discloses_anything:
        return row, entry, None
    claims: dict[str, Any] = {
        "disclosure": decision.disclosure,
        "manifest": manifest,
        "policy": {"version": policy.version, "sha256": policy.sha256},
    }
    if transformed := [a for a in allowed if "transform" in a]:
        claims["transformed"] = transformed
    noms_number = decision.disclosure.get("person", {}).get("noms_number")
    if noms_number:  # the subject is named only where the policy lets the recipient see it
        claims["sub"] = noms_number
    return row, entry, claims


def update_claims(
    *,
    update_id: uuid.UUID,
    series_id: uuid.UUID,
    author_code: str,
    author_role: str,
    recorded_at: datetime,
) -> dict[str, Any]:
    """What a care update's message says of the update besides its decision: which update,
    about which release, from whom, when (app/updates; decided again by app/consent)."""
    return {
        "series_id": str(series_id),
        "update": {
            "id": str(update_id),
            "from": author_code,
            "role": author_role,
            "recorded_at": int(recorded_at.timestamp()),
        },
    }
