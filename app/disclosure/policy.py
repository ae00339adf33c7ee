"""PURE: the disclosure policy, as data, and the decision it makes for one recipient.

A decision is made leaf by leaf (arrays count as one leaf). For each leaf of the notice:
a deny rule in force withholds it; otherwise an allow rule in force sends it; otherwise it is
withheld, naming the allow rule whose consent was missing, or no rule at all. Nothing is sent
that no rule allows. Leaves are then gathered back into the highest pointers that share one
outcome, so a manifest reads `/safeguarding` rather than listing every member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

NO_RULE = "default-deny"
REASON_NO_RULE = "no_rule_allows"
REASON_NO_CONSENT = "consent_not_given"
REASON_NO_CONDITION = "condition_not_met"
MAX_VERSION_LENGTH = 32  # disclosure.policy_version
SAFEGUARDING = "/safeguarding"  # always reaches the probation provider: checked at start-up
# The documents a policy file may govern (its `document` key): a release notice, by default, or
# a care update one recipient of a release shares with the other (app/updates).
RELEASE_NOTICE, CARE_UPDATE = "release-notice", "care-update"


def _contact(notice: Mapping[str, Any], member: str) -> bool:
    safeguarding = notice.get("safeguarding")
    return isinstance(safeguarding, Mapping) and safeguarding.get(member) == "yes"


# Safeguarding conditions a rule may require, decided from the notice itself.
CONDITIONS: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "children_at_risk": lambda n: _contact(n, "children_contact"),
    "children_or_adults_at_risk": lambda n: (
        _contact(n, "children_contact") or _contact(n, "vulnerable_adults_contact")
    ),
}
# Transforms an allow rule may apply to the dates it sends (ISO 8601 text).
TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "month": lambda value: value[:7] if isinstance(value, str) else value,
    "year": lambda value: value[:4] if isinstance(value, str) else value,
}


class PolicyError(ValueError):
    """A policy file that cannot be trusted to decide anything: the service must not start."""


@dataclass(frozen=True)
class Rule:
    id: str
    recipient: str
    effect: Literal["allow", "deny"]
    fields: tuple[str, ...]
    lawful_basis: tuple[str, ...]  # citations, e.g. "UK GDPR Article 9(2)(h)"
    purpose: str
    rationale: str
    reason: str | None = None  # deny rules: the reason code recorded in the manifest
    requires_consent: str | None = None  # allow rules: in force only with this consent
    condition: str | None = (
        None  # allow rules: in force only when this safeguarding condition holds
    )
    unless_consent: str | None = None  # deny rules: not in force when this consent is given
    transform: str | None = None  # allow rules: what is sent instead of the value (e.g. month)
    source: str = ""  # the file it came from, for messages

    @property
    def requires(self) -> str:
        """What an allow rule rests on: `consent`, `safeguarding`, or `statutory` (nothing)."""
        if self.requires_consent:
            return "consent"
        return "safeguarding" if self.condition else "statutory"

    def covers(self, pointer: str) -> bool:
        return any(pointer == f or pointer.startswith(f + "/") for f in self.fields)

    def reach(self, pointer: str) -> int:
        """How closely the rule names the pointer: the length of its longest covering field."""
        return max(len(f) for f in self.fields if pointer == f or pointer.startswith(f + "/"))

    def in_force(self, consents: Mapping[str, bool], notice: Mapping[str, Any]) -> bool:
        if self.effect == "allow":
            if self.requires_consent is not None:
                return consents.get(self.requires_consent, False)
            return self.condition is None or CONDITIONS[self.condition](notice)
        return self.unless_consent is None or not consents.get(self.unless_consent, False)


# A leaf's outcome (("sent", rule, transform) or ("withheld", rule, reason)), and the consent
# scopes a sent leaf relied on.
Outcome = tuple[tuple[str, ...], frozenset[str]]


@dataclass(frozen=True)
class Covering:
    """The rules of one recipient kind that cover one pointer, as the decision reads them:
    positions in the kind's rules, so that which are in force is looked up, not worked out."""

    denies: tuple[int, ...]  # the deny rules, in the policy's order
    allows: tuple[int, ...]  # the allow rules, the closest first (the policy's order among equals)
    # What a sent leaf relies on besides its allow rule's consent: the deny rules it lifts.
    unless: frozenset[str]
    # Withheld when no rule is in force: the first allow rule and why, or no rule at all.
    missing: tuple[str, str]

    @classmethod
    def of(cls, rules: tuple[Rule, ...], pointer: str) -> Covering:
        covering = [(at, r) for at, r in enumerate(rules) if r.covers(pointer)]
        allows = [(at, r) for at, r in covering if r.effect == "allow"]
        missing = (NO_RULE, REASON_NO_RULE)
        if allows:
            first = allows[0][1]
            missing = (
                first.id,
                REASON_NO_CONSENT if first.requires_consent else REASON_NO_CONDITION,
            )
        return cls(
            denies=tuple(at for at, r in covering if r.effect == "deny"),
            allows=tuple(
                at for at, r in sorted(allows, key=lambda a: (-a[1].reach(pointer), a[0]))
            ),
            unless=frozenset(
                r.unless_consent for _, r in covering if r.effect == "deny" and r.unless_consent
            ),
            missing=missing,
        )

    def outcome(self, rules: tuple[Rule, ...], in_force: tuple[bool, ...]) -> Outcome:
        """A deny in force wins; then the allow rule in force that names the leaf most closely;
        else withheld, naming why."""
        for at in self.denies:
            if in_force[at]:
                return ("withheld", rules[at].id, rules[at].reason or REASON_NO_RULE), frozenset()
        for at in self.allows:
            if in_force[at]:
                chosen = rules[at]
                relied = (
                    self.unless | {chosen.requires_consent}
                    if chosen.requires_consent
                    else self.unless
                )
                return ("sent", chosen.id, chosen.transform or ""), relied
        return ("withheld", *self.missing), frozenset()


@dataclass(frozen=True)
class Policy:
    version: str
    sha256: str
    rules: tuple[Rule, ...]
    # The pointers a notice can have (`load_policy` passes the notice's): which rules cover
    # each is worked out once, here; any other pointer is worked out as it is met. Worth it:
    # deciding reads a table, a third of the time (bench/README.md, "The policy's tables").
    pointers: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    # The document these rules govern, and the policies of the other documents, read from the
    # same files: they share the version and the hash, which cover every file.
    document: str = RELEASE_NOTICE
    others: Mapping[str, Policy] = field(default_factory=dict, compare=False, repr=False)
    _by_kind: Mapping[str, tuple[Rule, ...]] = field(init=False, compare=False, repr=False)
    _covering: Mapping[tuple[str, str], Covering] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        by_kind: dict[str, list[Rule]] = {}
        for rule in self.rules:
            by_kind.setdefault(rule.recipient, []).append(rule)
        kinds = {kind: tuple(rules) for kind, rules in by_kind.items()}
        covering = {
            (k, p): Covering.of(rules, p) for k, rules in kinds.items() for p in self.pointers
        }
        # Frozen: each table is set once, here, and read-only from then on.
        object.__setattr__(self, "_by_kind", MappingProxyType(kinds))
        object.__setattr__(self, "_covering", MappingProxyType(covering))

    def for_document(self, document: str) -> Policy:
        """The policy of that document: this one, or one read with it from the same files."""
        if document == self.document:
            return self
        found = self.others.get(document)
        if found is None:
            raise PolicyError(f"no policy governs the {document} document")
        return found

    def for_recipient(self, kind: str) -> tuple[Rule, ...]:
        return self._by_kind.get(kind, ())

    def in_force(
        self, kind: str, consents: Mapping[str, bool], notice: Mapping[str, Any]
    ) -> tuple[bool, ...]:
        """Whether each of the recipient kind's rules is in force, in the policy's order."""
        return tuple(r.in_force(consents, notice) for r in self.for_recipient(kind))

    def routes(self, kind: str, consents: Mapping[str, bool]) -> bool:
        """Whether the recipient kind is on a release under the consent that stands: one of its
        allow rules rests on no consent, or on one that stands. A kind that loses the consent
        its rules rest on (the treatment service's `substance_misuse_service`) is off the
        release; losing a consent that only hid some fields leaves it on."""
        return any(
            r.requires_consent is None or consents.get(r.requires_consent, False)
            for r in self.for_recipient(kind)
            if r.effect == "allow"
        )

    def covering(self, kind: str, pointer: str) -> Covering:
        """The recipient kind's rules that cover the pointer."""
        found = self._covering.get((kind, pointer))
        return found if found is not None else Covering.of(self.for_recipient(kind), pointer)

    def bases(self, rule_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What each of these rules rested on, to be recorded with a decision it made."""
        by_id = {r.id: r for r in self.rules}
        found = {}
        for rule in (by_id[i] for i in sorted(rule_ids) if i in by_id):
            basis: dict[str, Any] = {
                "effect": rule.effect,
                "requires": rule.requires if rule.effect == "allow" else None,
                "consent": rule.requires_consent or rule.unless_consent,
                "condition": rule.condition,
                "lawful_basis": list(rule.lawful_basis),
                "purpose": rule.purpose,
            }
            found[rule.id] = {k: v for k, v in basis.items() if v is not None}
        return found


@dataclass(frozen=True)
class Withheld:
    path: str
    rule: str
    reason: str


@dataclass(frozen=True)
class Allowed:
    path: str
    rule: str
    transform: str | None = None


@dataclass(frozen=True)
class Decision:
    recipient: str
    disclosure: dict[str, Any]
    allowed: tuple[Allowed, ...] = field(default=())
    manifest: tuple[Withheld, ...] = field(default=())
    # The consent scopes the disclosure relied on: without them it would have sent less.
    consents_relied: frozenset[str] = field(default=frozenset())

    @property
    def fields_sent(self) -> tuple[str, ...]:
        return tuple(a.path for a in self.allowed)

    @property
    def discloses_anything(self) -> bool:
        return bool(self.disclosure)


# --- deciding ------------------------------------------------------------------------------


def _instant(value: Any) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if at.tzinfo is None:
        raise ValueError("a consent time must carry its UTC offset")
    return at


def consents_from_records(
    records: Iterable[Mapping[str, Any]], now: datetime | None = None
) -> dict[str, bool]:
    """Per consent scope, whether consent stands at `now`: True only if it is given.

    Each record is a decision at `recorded_at` (given or refused); a withdrawal (`withdrawn_at`)
    and an expiry (`expires_at`) are each a refusal from then on. The latest event by instant
    counts, not by text, so offsets cannot reorder them; a time without an offset is refused.
    When two events share an instant, the refusal wins. A consent or an expiry after `now` has
    not happened yet; a refusal or withdrawal on record counts from `now` at the latest.
    """
    latest: dict[str, tuple[datetime, bool]] = {}

    def event(scope: str, at: datetime, given: bool) -> None:
        if now is not None and at > now:
            return
        if scope not in latest or (at, not given) > (latest[scope][0], not latest[scope][1]):
            latest[scope] = (at, given)

    def on_record(at: datetime) -> datetime:
        # A refusal or withdrawal on record has happened, even if stamped after the clock this
        # decision read (a request that waited for it, a clock a little fast): it counts from
        # now at the latest. A consent, or an expiry, in the future has not happened yet.
        return min(at, now) if now is not None else at

    for record in records:
        scope, given = record["scope"], record["decision"] == "given"
        at = _instant(record["recorded_at"])
        event(scope, at if given else on_record(at), given)
        if record.get("expires_at") is not None:
            event(scope, _instant(record["expires_at"]), False)
        if record.get("withdrawn_at") is not None:
            event(scope, on_record(_instant(record["withdrawn_at"])), False)
    return {scope: given for scope, (_, given) in latest.items()}


def decide(
    policy: Policy, notice: Mapping[str, Any], recipient: str, *, consents: Mapping[str, bool]
) -> Decision:
    """What one recipient may see of the notice, and what is withheld and why."""
    outcomes: dict[str, tuple[str, ...]] = {}
    disclosure: dict[str, Any] = {}
    relied: set[str] = set()
    rules = policy.for_recipient(recipient)
    in_force = policy.in_force(recipient, consents, notice)
    for pointer, value in _leaves(notice, ""):
        outcome, leaf_relied = policy.covering(recipient, pointer).outcome(rules, in_force)
        outcomes[pointer] = outcome
        if outcome[0] == "sent":
            transform = TRANSFORMS.get(outcome[2]) if outcome[2] else None
            _place(disclosure, pointer, transform(value) if transform else value)
            relied |= leaf_relied
    grouped = _group(notice, "", outcomes, top=True)
    allowed = tuple(Allowed(p, o[1], o[2] or None) for p, o in grouped if o[0] == "sent")
    manifest = tuple(Withheld(p, o[1], o[2]) for p, o in grouped if o[0] == "withheld")
    return Decision(recipient, disclosure, allowed, manifest, frozenset(relied))


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
