"""PURE: reading the policy files in consent/ and checking them before anything is decided.

A policy that names a field the notice does not have, a consent scope, condition or transform
that does not exist, or that would keep safeguarding from the probation provider, stops the
service at start-up with a message naming the file and the rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel

from app.access.identity import RECIPIENT_KINDS
from app.disclosure.policy import (
    CONDITIONS,
    MAX_VERSION_LENGTH,
    RELEASE_NOTICE,
    SAFEGUARDING,
    TRANSFORMS,
    Policy,
    PolicyError,
    Rule,
)


def load_policy(
    directory: Path,
    notice_model: type[BaseModel],
    others: Mapping[str, type[BaseModel]] | None = None,
) -> Policy:
    """Read every *.yaml policy file in directory, check it, and hash exactly what was read.

    Each file governs one document, named by its `document` key (`release-notice` when it has
    none): the release notice (`notice_model`) or one of `others` (e.g. `care-update`), whose
    model each pointer is checked against. The policy returned is the release notice's; the
    others' are `for_document` of it, with the same version and hash, which cover every file.
    Anything wrong stops here, naming the file and the rule: a policy that cannot be trusted
    must not decide anything.
    """
    models = {RELEASE_NOTICE: notice_model, **(others or {})}
    digest, versions, rules = _read(directory, models)
    version = "+".join(versions)
    if len(version) > MAX_VERSION_LENGTH:
        raise PolicyError(
            f"the versions together ({version!r}) pass {MAX_VERSION_LENGTH} characters"
        )
    scopes = consent_scopes(notice_model)
    policies = {}
    for name, model in models.items():
        pointers = schema_pointers(model)
        policy = Policy(
            version,
            digest.hexdigest(),
            tuple(rules[name]),
            pointers=frozenset(pointers),
            document=name,
        )
        check_policy(policy, pointers, scopes)
        policies[name] = policy
    _check_ids_unique([r for named in rules.values() for r in named])
    main = policies.pop(RELEASE_NOTICE)
    return replace(main, others=policies)


def _read(
    directory: Path, models: Mapping[str, type[BaseModel]]
) -> tuple[Any, list[str], dict[str, list[Rule]]]:
    """Every file's bytes hashed, its version, and its rules by the document it governs."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise PolicyError(f"no policy files (*.yaml) in {directory}")
    digest = hashlib.sha256()
    versions: list[str] = []
    rules: dict[str, list[Rule]] = {name: [] for name in models}
    for path in files:
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw + b"\0")
        try:
            document = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise PolicyError(f"{path.name}: not YAML ({exc})") from None
        if not isinstance(document, dict) or "version" not in document or "rules" not in document:
            raise PolicyError(f"{path.name}: needs `version` and `rules`")
        if not isinstance(document["rules"], list):
            raise PolicyError(f"{path.name}: `rules` must be a list")
        governs = document.get("document", RELEASE_NOTICE)
        if governs not in models:
            raise PolicyError(
                f"{path.name}: `document` must be one of {', '.join(models)}, not {governs!r}"
            )
        versions.append(str(document["version"]))
        for index, item in enumerate(document["rules"]):
            rules[governs].append(_rule(path.name, index, item))
    return digest, versions, rules


def _check_ids_unique(rules: Iterable[Rule]) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise PolicyError(f"{rule.source or 'policy'}: rule {rule.id}: duplicate rule id")
        seen.add(rule.id)


REQUIRED = {"id", "recipient", "effect", "fields", "lawful_basis", "purpose", "rationale"}
KEYS = REQUIRED | {"requires", "unless", "reason", "transform"}


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _rule(filename: str, index: int, item: Any) -> Rule:
    where = f"{filename}: rule {index + 1}"
    if not isinstance(item, dict):
        raise PolicyError(f"{where}: not a mapping")
    where = f"{filename}: rule {item.get('id', index + 1)}"
    _check_common(where, item)
    effect = item["effect"]
    if effect == "allow":
        values = _allow_values(where, item)
    elif effect == "deny":
        values = _deny_values(where, item)
    else:
        raise PolicyError(f"{where}: effect must be allow or deny")
    return Rule(
        id=item["id"],
        recipient=item["recipient"],
        effect=effect,
        fields=tuple(item["fields"]),
        lawful_basis=tuple(item["lawful_basis"]),
        purpose=item["purpose"],
        rationale=item["rationale"],
        source=filename,
        **values,
    )


def _check_common(where: str, item: dict[str, Any]) -> None:
    """The keys every rule has, whatever its effect."""
    if unknown := set(item) - KEYS:
        raise PolicyError(f"{where}: unknown keys {sorted(unknown)}")
    if missing := REQUIRED - set(item):
        raise PolicyError(f"{where}: missing {sorted(missing)}")
    for key in ("id", "purpose", "rationale"):
        if not _text(item[key]):
            raise PolicyError(f"{where}: `{key}` must be text")
    fields, basis = item["fields"], item["lawful_basis"]
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise PolicyError(f"{where}: `fields` must be a list of JSON Pointers")
    if not isinstance(basis, list) or not basis or not all(_text(b) for b in basis):
        raise PolicyError(f"{where}: `lawful_basis` must be a list of citations")


def _allow_values(where: str, item: dict[str, Any]) -> dict[str, Any]:
    """An allow rule's own keys: what it requires, and its transform."""
    values: dict[str, Any] = {}
    requires = item.get("requires")
    if requires == "statutory":
        pass
    elif isinstance(requires, dict) and len(requires) == 1 and "consent" in requires:
        values["requires_consent"] = str(requires["consent"])
    elif isinstance(requires, dict) and len(requires) == 1 and "safeguarding" in requires:
        values["condition"] = str(requires["safeguarding"])
    else:
        raise PolicyError(
            f"{where}: an allow rule `requires` one of: statutory, {{consent: SCOPE}}, "
            "{safeguarding: CONDITION}"
        )
    for key in ("unless", "reason"):
        if key in item:
            raise PolicyError(f"{where}: `{key}` belongs to deny rules")
    transform = item.get("transform")
    if transform is not None and not _text(transform):
        raise PolicyError(f"{where}: `transform` must be the name of one, e.g. month")
    values["transform"] = transform
    return values


def _deny_values(where: str, item: dict[str, Any]) -> dict[str, Any]:
    """A deny rule's own keys: its reason code, and the consent that lifts it."""
    values: dict[str, Any] = {}
    for key in ("requires", "transform"):
        if key in item:
            raise PolicyError(f"{where}: `{key}` belongs to allow rules")
    if not isinstance(item.get("reason"), str) or not item["reason"]:
        raise PolicyError(f"{where}: a deny rule needs a `reason` code")
    values["reason"] = item["reason"]
    unless = item.get("unless")
    if unless is not None:
        if not (isinstance(unless, dict) and list(unless) == ["consent"]):
            raise PolicyError(f"{where}: `unless` must be {{consent: SCOPE}}")
        values["unless_consent"] = str(unless["consent"])
    return values


def schema_pointers(model: type[BaseModel]) -> dict[str, Any]:
    """Every JSON Pointer a rule may name, with its type: objects and their members, not
    inside arrays."""
    pointers: dict[str, Any] = {}

    def walk(current: type[BaseModel], prefix: str) -> None:
        for name, info in current.model_fields.items():
            pointer = f"{prefix}/{name}"
            pointers[pointer] = info.annotation
            for candidate in _models_in(info.annotation):
                walk(candidate, pointer)

    walk(model, "")
    return pointers


def consent_scopes(model: type[BaseModel]) -> frozenset[str]:
    """The consent scopes a notice can record (its `consent` items' `scope` codes)."""
    item = next(iter(_models_in(model.model_fields["consent"].annotation, into_lists=True)))
    return frozenset(get_args(item.model_fields["scope"].annotation))


def _models_in(annotation: Any, *, into_lists: bool = False) -> Iterable[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if getattr(annotation, "__origin__", None) is list and not into_lists:
        return  # arrays are leaves: rules cannot reach inside them
    for arg in getattr(annotation, "__args__", ()):
        yield from _models_in(arg, into_lists=into_lists)


def _is_date(annotation: Any) -> bool:
    return annotation is date or any(_is_date(a) for a in get_args(annotation))


def check_policy(policy: Policy, pointers: Mapping[str, Any], scopes: frozenset[str]) -> None:
    seen: set[str] = set()
    for rule in policy.rules:
        where = f"{rule.source or 'policy'}: rule {rule.id}"
        if rule.id in seen:
            raise PolicyError(f"{where}: duplicate rule id")
        seen.add(rule.id)
        if rule.recipient not in RECIPIENT_KINDS:
            raise PolicyError(f"{where}: unknown recipient kind {rule.recipient!r}")
        for scope in (rule.requires_consent, rule.unless_consent):
            if scope is not None and scope not in scopes:
                raise PolicyError(f"{where}: unknown consent scope {scope!r}")
        if rule.condition is not None and rule.condition not in CONDITIONS:
            raise PolicyError(f"{where}: unknown safeguarding condition {rule.condition!r}")
        if rule.transform is not None and rule.transform not in TRANSFORMS:
            raise PolicyError(f"{where}: unknown transform {rule.transform!r}")
        for pointer in rule.fields:
            if pointer not in pointers:
                document = policy.document.replace("-", " ")
                raise PolicyError(f"{where}: {pointer!r} is not a field of the {document}")
            if rule.transform and not _is_date(pointers[pointer]):
                raise PolicyError(f"{where}: {pointer!r} is not a date to transform")
    _check_safeguarding_reaches_probation(policy, [p for p in pointers if _under(p, SAFEGUARDING)])


def _under(pointer: str, prefix: str) -> bool:
    return pointer == prefix or pointer.startswith(prefix + "/")


def _check_safeguarding_reaches_probation(policy: Policy, safeguarding: list[str]) -> None:
    """Safeguarding goes to the probation provider whatever the consent: no deny rule may touch
    it, and an allow rule that needs nothing (statutory) must cover every part of it whole."""
    rules = policy.for_recipient("probation_provider")
    for rule in rules:
        if rule.effect == "deny" and any(
            _under(f, SAFEGUARDING) or _under(SAFEGUARDING, f) for f in rule.fields
        ):
            raise PolicyError(
                f"{rule.source}: rule {rule.id}: safeguarding must always reach the probation "
                "provider; a deny rule may not cover it"
            )
    for pointer in safeguarding:
        covering = [r for r in rules if r.covers(pointer)]
        if any(
            r.effect == "allow" and r.requires == "statutory" and not r.transform for r in covering
        ):
            continue
        if covering:  # name the rule that falls short
            rule = covering[0]
            raise PolicyError(
                f"{rule.source}: rule {rule.id}: safeguarding must always reach the probation "
                f"provider, but {pointer!r} needs a statutory allow rule without a transform, "
                f"and this one requires {rule.requires}"
                + (f" with transform {rule.transform!r}" if rule.transform else "")
            )
        files = ", ".join(sorted({r.source for r in policy.rules if r.source})) or "policy"
        raise PolicyError(
            f"{files}: safeguarding must always reach the probation provider, but no probation "
            f"rule sends {pointer!r}"
        )
