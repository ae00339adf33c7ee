"""PURE: the disclosure policy, as data, and the decision it makes for one recipient.

A decision is made leaf by leaf (arrays count as one leaf). For each leaf of the notice:
a deny rule in force withholds it; otherwise an allow rule in force sends it; otherwise it is
withheld, naming the allow rule whose consent was missing, or no rule at all. Nothing is sent
that no rule allows. Leaves are then gathered back into the highest pointers that share one
outcome, so a manifest reads `/safeguarding` rather than listing every member.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel

RECIPIENT_KINDS = ("probation_provider", "substance_misuse_service")
NO_RULE = "default-deny"
REASON_NO_RULE = "no_rule_allows"
REASON_NO_CONSENT = "consent_not_given"
MAX_VERSION_LENGTH = 32  # disclosure.policy_version


class PolicyError(ValueError):
    """A policy file that cannot be trusted to decide anything: the service must not start."""


@dataclass(frozen=True)
class Rule:
    id: str
    recipient: str
    effect: Literal["allow", "deny"]
    fields: tuple[str, ...]
    basis: str
    purpose: str
    rationale: str
    reason: str | None = None  # for deny rules: the reason code recorded in the manifest
    requires_consent: str | None = None  # allow rules: in force only with this consent
    unless_consent: str | None = None  # deny rules: not in force when this consent is given

    def covers(self, pointer: str) -> bool:
        return any(pointer == f or pointer.startswith(f + "/") for f in self.fields)

    def in_force(self, consents: Mapping[str, bool]) -> bool:
        if self.effect == "allow":
            return self.requires_consent is None or consents.get(self.requires_consent, False)
        return self.unless_consent is None or not consents.get(self.unless_consent, False)


@dataclass(frozen=True)
class Policy:
    version: str
    sha256: str
    rules: tuple[Rule, ...]

    def for_recipient(self, kind: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.recipient == kind)


@dataclass(frozen=True)
class Withheld:
    path: str
    rule: str
    reason: str


@dataclass(frozen=True)
class Decision:
    recipient: str
    disclosure: dict[str, Any]
    fields_sent: tuple[str, ...]
    manifest: tuple[Withheld, ...] = field(default=())

    @property
    def discloses_anything(self) -> bool:
        return bool(self.disclosure)


# --- loading -------------------------------------------------------------------------------


def load_policy(directory: Path, notice_model: type[BaseModel]) -> Policy:
    """Read every *.yaml policy file in directory, check it, and hash exactly what was read."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise PolicyError(f"no policy files (*.yaml) in {directory}")
    digest = hashlib.sha256()
    versions, rules = [], []
    for path in files:
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw + b"\0")
        document = yaml.safe_load(raw)
        if not isinstance(document, dict) or "version" not in document or "rules" not in document:
            raise PolicyError(f"{path.name}: needs `version` and `rules`")
        versions.append(str(document["version"]))
        for index, item in enumerate(document["rules"] or []):
            rules.append(_rule(path.name, index, item))
    version = "+".join(versions)
    if len(version) > MAX_VERSION_LENGTH:
        raise PolicyError(
            f"the versions together ({version!r}) pass {MAX_VERSION_LENGTH} characters"
        )
    policy = Policy(version=version, sha256=digest.hexdigest(), rules=tuple(rules))
    check_policy(policy, schema_pointers(notice_model))
    return policy


def _rule(filename: str, index: int, item: Any) -> Rule:
    where = f"{filename}: rule {index + 1}"
    if not isinstance(item, dict):
        raise PolicyError(f"{where}: not a mapping")
    known = set(Rule.__dataclass_fields__)
    unknown = set(item) - known
    if unknown:
        raise PolicyError(f"{where} ({item.get('id')}): unknown keys {sorted(unknown)}")
    missing = {"id", "recipient", "effect", "fields", "basis", "purpose", "rationale"} - set(item)
    if missing:
        raise PolicyError(f"{where} ({item.get('id')}): missing {sorted(missing)}")
    fields = item["fields"]
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise PolicyError(f"{where} ({item['id']}): `fields` must be a list of JSON Pointers")
    return Rule(**{**item, "fields": tuple(fields)})


def schema_pointers(model: type[BaseModel]) -> frozenset[str]:
    """Every JSON Pointer a rule may name: objects and their members, not inside arrays."""
    pointers: set[str] = set()

    def walk(current: type[BaseModel], prefix: str) -> None:
        for name, info in current.model_fields.items():
            pointer = f"{prefix}/{name}"
            pointers.add(pointer)
            for candidate in _models_in(info.annotation):
                walk(candidate, pointer)

    walk(model, "")
    return frozenset(pointers)


def _models_in(annotation: Any) -> Iterable[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = getattr(annotation, "__origin__", None)
    if origin is list:  # arrays are leaves: rules cannot reach inside them
        return
    for arg in getattr(annotation, "__args__", ()):
        yield from _models_in(arg)


def check_policy(policy: Policy, pointers: frozenset[str]) -> None:
    seen: set[str] = set()
    for rule in policy.rules:
        where = f"rule {rule.id}"
        if rule.id in seen:
            raise PolicyError(f"{where}: duplicate rule id")
        seen.add(rule.id)
        if rule.recipient not in RECIPIENT_KINDS:
            raise PolicyError(f"{where}: unknown recipient kind {rule.recipient!r}")
        if rule.effect not in ("allow", "deny"):
            raise PolicyError(f"{where}: effect must be allow or deny")
        if rule.effect == "deny" and not rule.reason:
            raise PolicyError(f"{where}: a deny rule needs a `reason` code")
        if rule.effect == "allow" and rule.unless_consent:
            raise PolicyError(f"{where}: `unless_consent` belongs to deny rules")
        if rule.effect == "deny" and rule.requires_consent:
            raise PolicyError(f"{where}: `requires_consent` belongs to allow rules")
        for pointer in rule.fields:
            if pointer not in pointers:
                raise PolicyError(f"{where}: {pointer!r} is not a field of the release notice")


# --- deciding ------------------------------------------------------------------------------


def consents_from_records(records: Iterable[Mapping[str, Any]]) -> dict[str, bool]:
    """The latest decision per consent scope, by instant; given is True, anything else False.

    Times are compared as instants, not text, so offsets cannot reorder them; a time without
    an offset cannot be ordered and is refused. When two decisions share an instant, the
    refusal wins.
    """
    latest: dict[str, tuple[datetime, bool]] = {}
    for record in records:
        at = record["recorded_at"]
        at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        if at.tzinfo is None:
            raise ValueError("a consent time must carry its UTC offset")
        given = record["decision"] == "given"
        scope = record["scope"]
        if scope not in latest or (at, not given) > (latest[scope][0], not latest[scope][1]):
            latest[scope] = (at, given)
    return {scope: given for scope, (_, given) in latest.items()}


def decide(
    policy: Policy, notice: Mapping[str, Any], recipient: str, consents: Mapping[str, bool]
) -> Decision:
    rules = policy.for_recipient(recipient)
    outcomes: dict[str, tuple[str, ...]] = {}
    disclosure: dict[str, Any] = {}
    for pointer, value in _leaves(notice, ""):
        outcome = _leaf_outcome(rules, pointer, consents)
        outcomes[pointer] = outcome
        if outcome[0] == "sent":
            _place(disclosure, pointer, value)
    grouped = _group(notice, "", outcomes, top=True)
    sent = tuple(p for p, o in grouped if o[0] == "sent")
    manifest = tuple(Withheld(p, o[1], o[2]) for p, o in grouped if o[0] == "withheld")
    return Decision(recipient, disclosure, sent, manifest)


def _leaf_outcome(
    rules: tuple[Rule, ...], pointer: str, consents: Mapping[str, bool]
) -> tuple[str, ...]:
    matching = [r for r in rules if r.covers(pointer)]
    for rule in matching:
        if rule.effect == "deny" and rule.in_force(consents):
            return ("withheld", rule.id, rule.reason or REASON_NO_RULE)
    if any(r.effect == "allow" and r.in_force(consents) for r in matching):
        return ("sent",)
    for rule in matching:
        if rule.effect == "allow":
            return ("withheld", rule.id, REASON_NO_CONSENT)
    return ("withheld", NO_RULE, REASON_NO_RULE)


def _leaves(node: Any, pointer: str) -> Iterable[tuple[str, Any]]:
    if isinstance(node, Mapping) and node:
        for key, value in node.items():
            yield from _leaves(value, f"{pointer}/{key}")
    else:
        yield pointer, node


def _place(target: dict[str, Any], pointer: str, value: Any) -> None:
    *parents, last = pointer.split("/")[1:]
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def _group(
    node: Any, pointer: str, outcomes: Mapping[str, tuple[str, ...]], *, top: bool = False
) -> list[tuple[str, tuple[str, ...]]]:
    """The highest pointers whose whole subtree shares one outcome."""
    if not (isinstance(node, Mapping) and node):
        return [(pointer, outcomes[pointer])]
    children = [_group(v, f"{pointer}/{k}", outcomes) for k, v in node.items()]
    flat = [entry for child in children for entry in child]
    if (
        not top
        and len({outcome for _, outcome in flat}) == 1
        and all(len(child) == 1 for child in children)
    ):
        return [(pointer, flat[0][1])]
    return flat
