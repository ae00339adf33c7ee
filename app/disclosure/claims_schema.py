"""PURE: what a policy can disclose of a release notice, as a JSON Schema.

A disclosure is the notice as the prison sent it, less what the policy withheld (each withheld
member is named in the message's `manifest`), with some dates cut by a rule's transform (named
in `transformed`). Its schema is the notice's schema, changed in three ways:

- it holds only the members that some recipient can be sent: one no rule ever sends is absent;
- a date that a rule cuts may come in that form too (`month`: YYYY-MM, `year`: YYYY), besides
  or instead of the whole date;
- it requires only what every disclosure carries, whoever gets it and whatever the consents and
  the safeguarding answers: a member the notice itself requires, that each recipient kind is
  sent in every case where it is sent anything at all.

All three are found by the policy itself: `decide` is asked about a notice that holds every
member, for each recipient kind, each combination of the consents the rules name and each
combination of safeguarding answers (the safeguarding conditions read those answers). So the
published schema follows the policy, and a policy that changes what recipients get changes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

from app.access.identity import RECIPIENT_KINDS
from app.disclosure.policy import SAFEGUARDING, Policy, decide

Schema = dict[str, Any]

# What each transform (app/disclosure/policy.py TRANSFORMS) sends instead of a date, as JSON Schema.
TRANSFORMED: dict[str, Schema] = {
    "month": {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"},
    "year": {"type": "string", "pattern": r"^\d{4}$"},
}
_SAID = {"month": "its month only (YYYY-MM)", "year": "its year only (YYYY)"}
_ANNOTATIONS = ("title", "description", "default")  # what a property says besides its type


@dataclass(frozen=True)
class Shape:
    """Per member of the notice (not inside an array) that some recipient can be sent: each
    form it can be sent in (None: as it is, or a transform's name); and the members that
    every disclosure carries."""

    forms: Mapping[str, frozenset[str | None]]
    always: frozenset[str]


@dataclass(frozen=True)
class _Member:
    pointer: str
    schema: Schema  # the property, as the notice's schema gives it
    object: Schema | None  # the object it holds, if it holds one (None: a leaf)
    required: bool  # every notice has it


def _under(pointer: str, prefix: str) -> bool:
    return pointer == prefix or pointer.startswith(prefix + "/")


def _resolved(node: Schema, defs: Mapping[str, Schema]) -> Schema:
    return defs[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node


def _object_in(node: Schema, defs: Mapping[str, Schema]) -> Schema | None:
    """The object (with members) a property holds, itself, by $ref or as a nullable's
    non-null option; None for a leaf (a scalar, or an array: arrays are sent whole)."""
    for option in node.get("anyOf", [node]):
        target = _resolved(option, defs)
        if target.get("type") == "object" and target.get("properties"):
            return target
    return None


def _members(
    node: Schema, defs: Mapping[str, Schema], pointer: str = "", *, required: bool = True
) -> Iterator[_Member]:
    """Every member of the notice, objects and leaves, outside arrays, parents first."""
    needed = set(node.get("required", ()))
    for name, schema in node["properties"].items():
        inner = _object_in(schema, defs)
        member = _Member(f"{pointer}/{name}", schema, inner, required and name in needed)
        yield member
        if inner is not None:
            yield from _members(inner, defs, member.pointer, required=member.required)


def _full(
    node: Schema, defs: Mapping[str, Schema], answers: Mapping[str, str], *, at: str = ""
) -> dict[str, Any]:
    """A notice holding every member: each leaf null, but the safeguarding answers given."""
    found: dict[str, Any] = {}
    for name, schema in node["properties"].items():
        inner = _object_in(schema, defs)
        pointer = f"{at}/{name}"
        found[name] = _full(inner, defs, answers, at=pointer) if inner else answers.get(pointer)
    return found


def _cases(
    policy: Policy, notice_schema: Schema, members: list[_Member]
) -> Iterator[tuple[dict[str, bool], dict[str, Any]]]:
    """Each combination of the consents the rules name and of the safeguarding answers, as
    (consents, a notice holding every member)."""
    defs = notice_schema.get("$defs", {})
    scopes = sorted({s for r in policy.rules for s in (r.requires_consent, r.unless_consent) if s})
    answered = [
        m
        for m in members
        if m.object is None and _under(m.pointer, SAFEGUARDING) and "enum" in m.schema
    ]
    for given in product((False, True), repeat=len(scopes)):
        for answers in product(*(m.schema["enum"] for m in answered)):
            said = {m.pointer: a for m, a in zip(answered, answers, strict=True)}
            yield dict(zip(scopes, given, strict=True)), _full(notice_schema, defs, said)


def shape(policy: Policy, notice_schema: Schema) -> Shape:
    """What the policy can send of a notice with this schema (see the module's docstring)."""
    members = list(_members(notice_schema, notice_schema.get("$defs", {})))
    leaves = [m for m in members if m.object is None]
    forms: dict[str, set[str | None]] = {}
    always: set[str] | None = None
    for consents, notice in _cases(policy, notice_schema, members):
        for kind in RECIPIENT_KINDS:
            decision = decide(policy, notice, kind, consents=consents)
            if not decision.discloses_anything:
                continue  # no message at all
            sent = set()
            for allowed in decision.allowed:
                for leaf in leaves:
                    if _under(leaf.pointer, allowed.path):
                        forms.setdefault(leaf.pointer, set()).add(allowed.transform)
                        sent.add(leaf.pointer)
            always = sent if always is None else always & sent
    required = {m.pointer for m in leaves if m.required}
    return Shape(
        {p: frozenset(f) for p, f in forms.items()}, frozenset((always or set()) & required)
    )


def disclosure_schema(notice_schema: Schema, found: Shape) -> Schema:
    """The notice's schema cut to what can be disclosed (`found`, from `shape`), whole: every
    $ref of the notice's schema written out, so it stands alone inside the claims' schema."""
    defs = notice_schema.get("$defs", {})
    cut = _cut(notice_schema, defs, "", found=found)
    if cut is None:
        raise ValueError("the policy sends nothing to anyone")
    return cut


def _cut(node: Schema, defs: Mapping[str, Schema], pointer: str, *, found: Shape) -> Schema | None:
    properties: Schema = {}
    required = []
    for name, schema in node["properties"].items():
        at = f"{pointer}/{name}"
        inner = _object_in(schema, defs)
        if inner is not None:
            member = _cut(inner, defs, at, found=found)
            if member is None:
                continue
            if {"type": "null"} in schema.get("anyOf", ()):
                member = {"anyOf": [member, {"type": "null"}]}
            properties[name] = {**member, **{k: schema[k] for k in _ANNOTATIONS if k in schema}}
        elif at in found.forms:
            properties[name] = _leaf(_written_out(schema, defs), found.forms[at])
        else:
            continue  # never sent to anyone
        if any(_under(a, at) for a in found.always):
            required.append(name)
    if not properties:
        return None
    kept = {
        k: node[k] for k in ("title", "description", "type", "additionalProperties") if k in node
    }
    return {**kept, "properties": properties, **({"required": required} if required else {})}


def _leaf(schema: Schema, forms: frozenset[str | None]) -> Schema:
    """A leaf property, allowing each transform's form where a rule cuts it."""
    transforms = sorted(f for f in forms if f is not None)
    if not transforms:
        return schema
    said = {k: schema[k] for k in _ANNOTATIONS if k in schema}
    bare = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
    options = bare.get("anyOf", [bare])
    if None not in forms:  # never sent as it is: only a null stays a null
        options = [o for o in options if o == {"type": "null"}]
    cuts = " or ".join(_SAID[t] for t in transforms)
    told = "Sent whole, or" if None in forms else "Sent as"
    description = f"{said.get('description', '')} {told} {cuts} where a rule cuts it, as the "
    said["description"] = (description + "message's `transformed` says.").strip()
    return {**said, "anyOf": [*options, *(TRANSFORMED[t] for t in transforms)]}


def _written_out(node: Any, defs: Mapping[str, Schema]) -> Any:
    """A copy of a schema with every $ref replaced by what it names."""
    if isinstance(node, dict):
        if "$ref" in node:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_written_out(_resolved(node, defs), defs), **rest}
        return {k: _written_out(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_written_out(v, defs) for v in node]
    return node
