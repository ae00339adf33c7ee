"""JSON documents by pointer, independent of the app: for checking what a decision sent."""

from __future__ import annotations

import re
from typing import Any


def leaves(node: Any, pointer: str = "") -> dict[str, Any]:
    """Every leaf of a JSON document by pointer; arrays and empty objects are leaves."""
    if isinstance(node, dict) and node:
        return {p: v for k, sub in node.items() for p, v in leaves(sub, f"{pointer}/{k}").items()}
    return {pointer: node}


def under(pointer: str, prefix: str) -> bool:
    return pointer == prefix or pointer.startswith(prefix + "/")


def personal_values(notice: dict[str, Any]) -> list[str]:
    """What identifies the person in a notice as sent, or tells about them in free text: the
    values that must never reach a log, a metric or the exchange log. Taken from the notice a
    test posted, so that the check moves with its dates."""
    person, plan = notice["person"], notice["release_plan"]
    officer = plan.get("responsible_officer") or {}
    texts = [
        notice["nps_use"].get("treatment_in_custody", {}).get("clinical_notes"),
        notice.get("other_substance_use", {}).get("notes"),
        notice["safeguarding"].get("concerns"),
        (plan.get("treatment_appointment") or {}).get("location"),
    ]
    clauses = [c.strip() for t in texts if t for c in re.split(r"[;,.()]", t)]
    values = [
        *(person.get(k) for k in ("noms_number", "crn", "pnc_number", "date_of_birth")),
        *(person.get(k) for k in ("given_name", "family_name")),
        officer.get("name"),
        officer.get("email"),
        *texts,
        *(c for c in clauses if len(c) >= 8),  # a part of a text leaks as surely as the whole
    ]
    return [v for v in values if v]
