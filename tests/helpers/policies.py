"""Disclosure policies for tests: hand-made YAML rules loaded from a folder, the real consent/
files, and hypothesis strategies for notices and consent histories."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from hypothesis import settings
from hypothesis import strategies as st

from app.disclosure.policy import Policy
from app.disclosure.policy_files import load_policy
from app.notices.document import ReleaseNotice
from app.updates.document import DOCUMENTS

ROOT = Path(__file__).resolve().parents[2]  # the repository


CONSENT_DIR = ROOT / "consent"


EXAMPLE: dict[str, Any] = json.loads((ROOT / "schemas/examples/release-notice.json").read_text())


POLICY = load_policy(CONSENT_DIR, ReleaseNotice, DOCUMENTS)


PROBATION, SMS = "probation_provider", "substance_misuse_service"


CLINICAL = "probation_clinical_details"


def rule(id_: str, *fields: str, recipient: str = PROBATION, effect: str = "allow", **extra: Any):
    """A policy rule as its YAML mapping; allow rules are statutory unless told otherwise."""
    item: dict[str, Any] = {"id": id_, "recipient": recipient, "effect": effect}
    item |= {"purpose": f"{id_} purpose.", "rationale": "Why.", "lawful_basis": [f"{id_} basis"]}
    item |= {"fields": list(fields) or ["/nps_use"]}
    if effect == "allow":
        item["requires"] = "statutory"
    item |= extra
    return {k: v for k, v in item.items() if v is not None}


SAFEGUARDING = rule("t.safeguarding", "/safeguarding")  # every valid policy needs it


def load(directory: Path, rules: list[Any], *, safeguarding: bool = True, name="p.yaml") -> Policy:
    directory.mkdir(parents=True, exist_ok=True)
    document = {"version": "t1", "rules": [*rules, *([SAFEGUARDING] if safeguarding else [])]}
    (directory / name).write_text(yaml.safe_dump(document, sort_keys=False))
    return load_policy(directory, ReleaseNotice)


BASE = datetime(2026, 11, 1, tzinfo=UTC)


ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))]


SCOPES = [SMS, CLINICAL]


OPTIONAL = {  # members a notice may leave out, by section
    "person": ["crn", "pnc_number"],
    "release": ["on_licence", "accommodation"],
    "release_plan": ["responsible_officer", "substance_misuse_service", "treatment_appointment"],
    "nps_use": [k for k in EXAMPLE["nps_use"] if k != "status"],
    "safeguarding": ["concerns"],
}


@st.composite
def instants(draw: st.DrawFn) -> str:  # a few minutes apart, in several offsets: ties happen
    at = BASE + timedelta(minutes=draw(st.integers(0, 12)))
    return at.astimezone(draw(st.sampled_from(ZONES))).isoformat()


@st.composite
def histories(draw: st.DrawFn, endings: bool = True) -> list[dict[str, Any]]:
    records = []
    for _ in range(draw(st.integers(0, 5))):
        item = {"scope": draw(st.sampled_from(SCOPES)), "recorded_at": draw(instants())}
        item |= {"decision": draw(st.sampled_from(["given", "refused"])), "recorded_by": "HC"}
        for ending in ("withdrawn_at", "expires_at") if endings else ():
            item[ending] = draw(st.none() | instants())
        records.append(item)
    return records


@st.composite
def notices(draw: st.DrawFn, history: list[dict[str, Any]]) -> dict[str, Any]:
    notice = copy.deepcopy(EXAMPLE)
    for section, members in OPTIONAL.items():
        for member in draw(st.sets(st.sampled_from(members))):
            notice[section].pop(member)
    for section in draw(st.sets(st.sampled_from(["other_substance_use", "wider_needs"]))):
        del notice[section]
    for member in ("children_contact", "vulnerable_adults_contact"):
        notice["safeguarding"][member] = draw(st.sampled_from(["yes", "no", "unknown"]))
    kept = ("scope", "decision", "recorded_at", "recorded_by")
    notice["consent"] = [{k: r[k] for k in kept} for r in history]
    ReleaseNotice.model_validate(notice)
    return notice


PROPERTY = settings(max_examples=100, deadline=None)
