"""The disclosure policy (app/disclosure/policy.py) over the real consent/ files: pure, no
database."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.disclosure.policy import (
    TRANSFORMS,
    Policy,
    Rule,
    Withheld,
    consents_from_records,
    decide,
)
from app.disclosure.policy_files import load_policy
from app.notices.document import ReleaseNotice
from app.updates.document import DOCUMENTS
from tests.helpers.documents import leaves, under

ROOT = Path(__file__).resolve().parents[2]
CONSENT_DIR = ROOT / "consent"
EXAMPLE: dict[str, Any] = json.loads((ROOT / "schemas/examples/release-notice.json").read_text())
POLICY = load_policy(CONSENT_DIR, ReleaseNotice, DOCUMENTS)
PROBATION, SMS = "probation_provider", "substance_misuse_service"
CLINICAL = "probation_clinical_details"
CLINICAL_NOTES = "/nps_use/treatment_in_custody/clinical_notes"
PNC = "/person/pnc_number"
NOT_GIVEN, NO_RULE = "consent_not_given", "no_rule_allows"


# --- helpers, independent of app.disclosure.policy ------------------------------------------


def without(document: dict[str, Any], pointers: list[str]) -> dict[str, Any]:
    """A copy of document with the members at pointers removed, and emptied parents too."""
    kept = {p: v for p, v in leaves(document).items() if not any(under(p, w) for w in pointers)}
    out: dict[str, Any] = {}
    for pointer, value in kept.items():
        *parents, last = pointer.split("/")[1:]
        target = out
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return out


def manifest_of(decision) -> set[tuple[str, str, str]]:
    return {(w.path, w.rule, w.reason) for w in decision.manifest}


# --- the real policy on the example notice -----------------------------------------------------

SMS_WITHHELD_WITHOUT_CONSENT = {
    *((f"/person/{m}", "sms.continuity-of-care", NOT_GIVEN) for m in EXAMPLE["person"]),
    *((f"/{s}", "sms.continuity-of-care", NOT_GIVEN) for s in EXAMPLE if s != "person"),
} - {(PNC, "sms.continuity-of-care", NOT_GIVEN)} | {
    (PNC, "sms.no-criminal-record-identifiers", "not_necessary")
}
NOTES_WITHHELD = {(CLINICAL_NOTES, "probation.clinical-notes", NOT_GIVEN)}
EXAMPLE_TABLE = {
    "probation-clinical-refused": (PROBATION, {CLINICAL: False, SMS: True}, NOTES_WITHHELD),
    "probation-no-consents": (PROBATION, {}, NOTES_WITHHELD),
    "probation-clinical-given": (PROBATION, {CLINICAL: True}, set()),
    "sms-no-consents": (SMS, {}, SMS_WITHHELD_WITHOUT_CONSENT),
    "sms-refused": (SMS, {SMS: False, CLINICAL: True}, SMS_WITHHELD_WITHOUT_CONSENT),
    "sms-given": (SMS, {SMS: True}, {(PNC, "sms.no-criminal-record-identifiers", "not_necessary")}),
}


def cases(table: dict[str, tuple]) -> list[Any]:
    return [pytest.param(*values, id=name) for name, values in table.items()]


@pytest.mark.parametrize(("recipient", "consents", "withheld"), cases(EXAMPLE_TABLE))
def test_example_notice(recipient: str, consents: dict[str, bool], withheld: set) -> None:
    decision = decide(POLICY, EXAMPLE, recipient, consents=consents)
    assert manifest_of(decision) == withheld
    expected = without(EXAMPLE, [path for path, _, _ in withheld])
    if recipient == SMS and "person" in expected:  # the treatment service gets the month only
        expected["person"]["date_of_birth"] = EXAMPLE["person"]["date_of_birth"][:7]
    assert decision.disclosure == expected
    assert decision.discloses_anything == bool(decision.disclosure)
    if recipient == PROBATION:
        assert decision.disclosure["safeguarding"] == EXAMPLE["safeguarding"]


def test_sms_without_consent_discloses_nothing_and_accounts_for_every_section() -> None:
    decision = decide(POLICY, EXAMPLE, SMS, consents={CLINICAL: True})
    assert decision.disclosure == {}
    assert decision.fields_sent == ()
    assert not decision.discloses_anything
    paths = [w.path for w in decision.manifest]
    for section in EXAMPLE:
        assert any(under(path, f"/{section}") for path in paths), section


# --- consents_from_records ---------------------------------------------------------------------


def record(scope: str, decision: str, at: str) -> dict[str, str]:
    return {"scope": scope, "decision": decision, "recorded_at": at, "recorded_by": "Healthcare"}


T1, T2 = "2026-11-18T14:05:00Z", "2026-11-18T14:06:00Z"
CONSENT_TABLE = {
    "none": ([], {}),
    "given": ([record(SMS, "given", T1)], {SMS: True}),
    "refused": ([record(SMS, "refused", T1)], {SMS: False}),
    "given-then-refused": ([record(SMS, "given", T1), record(SMS, "refused", T2)], {SMS: False}),
    "refused-then-given": ([record(SMS, "refused", T1), record(SMS, "given", T2)], {SMS: True}),
    "latest-listed-first": ([record(SMS, "given", T2), record(SMS, "refused", T1)], {SMS: True}),
    "scopes-independent": (
        [record(SMS, "given", T1), record(CLINICAL, "refused", T2)],
        {SMS: True, CLINICAL: False},
    ),
    # 15:00+01:00 is 14:00Z, before the refusal at 14:30Z: instants, not text, are compared.
    "offsets-compared-as-instants": (
        [
            record(SMS, "given", "2026-11-18T15:00:00+01:00"),
            record(SMS, "refused", T1[:11] + "14:30:00Z"),
        ],
        {SMS: False},
    ),
    "fractional-seconds-later": (
        [record(SMS, "refused", T1), record(SMS, "given", "2026-11-18T14:05:00.500000Z")],
        {SMS: True},
    ),
    "same-instant-refusal-wins": (
        [record(SMS, "refused", T1), record(SMS, "given", T1.replace("Z", "+00:00"))],
        {SMS: False},
    ),
}


@pytest.mark.parametrize(("records", "expected"), cases(CONSENT_TABLE))
def test_consents_from_records(records: list[dict], expected: dict[str, bool]) -> None:
    assert consents_from_records(records) == expected


def test_consents_from_records_refuses_a_time_without_offset() -> None:
    with pytest.raises(ValueError, match=r"^a consent time must carry its UTC offset$"):
        consents_from_records([record(SMS, "given", "2026-11-18T14:05:00")])


# --- decide over a hand-made policy ------------------------------------------------------------


def rule(id_: str, effect: str, *fields: str, **extra: Any) -> Rule:
    return Rule(id_, PROBATION, effect, fields, ("basis",), "purpose", "rationale", **extra)


SMALL_NOTICE = {"a": {"b": {"c": 1, "d": 2}, "e": 3}, "f": {"g": 4, "h": 5}, "i": 6}
ALLOW_ALL = rule("allow-all", "allow", "/a", "/f", "/i")
DENY_C = rule("deny-c", "deny", "/a/b/c", reason="not_necessary")
NEEDS_X = rule("needs-x", "allow", "/i", requires_consent="x")
UNLESS_X = rule("unless-x", "deny", "/i", reason="private", unless_consent="x")
DEFAULT = ("default-deny", NO_RULE)
DENIED_C = [("/a/b/c", "deny-c", "not_necessary")]
SENT_BUT_C = ("/a/b/d", "/a/e", "/f", "/i")
SMS_ONLY = Rule("sms-a", SMS, "allow", ("/a",), ("basis",), "purpose", "rationale")
# fmt: off
HAND_TABLE = {  # id: (rules, consents, fields sent, manifest as (path, rule, reason))
    "uncovered-is-default-deny":
        ((rule("a", "allow", "/a"),), {}, ("/a",), [("/f", *DEFAULT), ("/i", *DEFAULT)]),
    "deny-beats-allow": ((ALLOW_ALL, DENY_C), {}, SENT_BUT_C, DENIED_C),
    "deny-listed-first": ((DENY_C, ALLOW_ALL), {}, SENT_BUT_C, DENIED_C),
    "wholly-withheld-object-is-one-entry":
        ((ALLOW_ALL, rule("deny-a", "deny", "/a", reason="not_necessary")), {}, ("/f", "/i"),
         [("/a", "deny-a", "not_necessary")]),
    "different-reasons-are-not-grouped":
        ((rule("fg", "allow", "/f/g", requires_consent="x"),), {}, (),
         [("/a", *DEFAULT), ("/f/g", "fg", NOT_GIVEN), ("/f/h", *DEFAULT), ("/i", *DEFAULT)]),
    "requires-consent-absent":
        ((NEEDS_X,), {}, (), [("/a", *DEFAULT), ("/f", *DEFAULT), ("/i", "needs-x", NOT_GIVEN)]),
    "requires-consent-refused":
        ((NEEDS_X,), {"x": False}, (),
         [("/a", *DEFAULT), ("/f", *DEFAULT), ("/i", "needs-x", NOT_GIVEN)]),
    "requires-consent-given":
        ((NEEDS_X,), {"x": True}, ("/i",), [("/a", *DEFAULT), ("/f", *DEFAULT)]),
    "unless-consent-absent":
        ((ALLOW_ALL, UNLESS_X), {}, ("/a", "/f"), [("/i", "unless-x", "private")]),
    "unless-consent-given": ((ALLOW_ALL, UNLESS_X), {"x": True}, ("/a", "/f", "/i"), []),
    "other-recipient-gets-nothing":
        ((SMS_ONLY,), {}, (), [("/a", *DEFAULT), ("/f", *DEFAULT), ("/i", *DEFAULT)]),
}
# fmt: on


@pytest.mark.parametrize(("rules", "consents", "sent", "withheld"), cases(HAND_TABLE))
def test_decide_with_a_small_policy(
    rules: tuple[Rule, ...], consents: dict[str, bool], sent: tuple[str, ...], withheld: list
) -> None:
    decision = decide(Policy("test", "0" * 64, rules), SMALL_NOTICE, PROBATION, consents=consents)
    assert decision.recipient == PROBATION
    assert decision.fields_sent == sent
    assert decision.manifest == tuple(Withheld(*w) for w in withheld)
    assert decision.disclosure == without(SMALL_NOTICE, [w[0] for w in withheld])
    assert decision.discloses_anything == bool(sent)


# --- properties over notices derived from the example ------------------------------------------

OPTIONAL_MEMBERS = {
    "person": ["crn", "pnc_number"],
    "release_plan": ["responsible_officer", "substance_misuse_service", "treatment_appointment"],
    "nps_use": [k for k in EXAMPLE["nps_use"] if k != "status"],
    "other_substance_use": list(EXAMPLE["other_substance_use"]),
    "wider_needs": list(EXAMPLE["wider_needs"]),
    "safeguarding": ["concerns"],
}
OPTIONAL_SECTIONS = ["other_substance_use", "wider_needs"]
BASE_TIME = datetime(2026, 11, 1, tzinfo=UTC)


@st.composite
def consent_records(draw: st.DrawFn) -> list[dict[str, str]]:
    minutes = draw(st.lists(st.integers(0, 50_000), unique=True, max_size=5))
    return [
        record(
            draw(st.sampled_from([SMS, CLINICAL])),
            draw(st.sampled_from(["given", "refused"])),
            (BASE_TIME + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        for m in minutes
    ]


def _drop_some(draw: st.DrawFn, obj: dict[str, Any], keys: list[str]) -> None:
    for key in draw(st.sets(st.sampled_from(keys))) if keys else ():
        obj.pop(key, None)


@st.composite
def notices(draw: st.DrawFn) -> dict[str, Any]:
    notice = copy.deepcopy(EXAMPLE)
    for section, keys in OPTIONAL_MEMBERS.items():
        _drop_some(draw, notice[section], keys)
    treatment = notice["nps_use"].get("treatment_in_custody")
    if treatment is not None:
        _drop_some(draw, treatment, list(treatment))
    _drop_some(draw, notice, OPTIONAL_SECTIONS)
    notice["consent"] = draw(consent_records())
    ReleaseNotice.model_validate(notice)  # the strategy only makes valid notices
    return notice


def latest_consents(records: list[dict[str, str]]) -> dict[str, bool]:
    """Independent of the app: parse the times, keep the latest decision per scope."""
    latest: dict[str, tuple[datetime, bool]] = {}
    for r in records:
        at = datetime.fromisoformat(r["recorded_at"].replace("Z", "+00:00"))
        if r["scope"] not in latest or at > latest[r["scope"]][0]:
            latest[r["scope"]] = (at, r["decision"] == "given")
    return {scope: given_ for scope, (_, given_) in latest.items()}


PROPERTY = settings(max_examples=150, deadline=None)
recipients = st.sampled_from([PROBATION, SMS])


@PROPERTY
@given(notice=notices())
def test_property_consents_from_records_keeps_latest(notice: dict[str, Any]) -> None:
    assert consents_from_records(notice["consent"]) == latest_consents(notice["consent"])


@PROPERTY
@given(notice=notices(), recipient=recipients)
def test_property_disclosure_is_a_faithful_subset(notice: dict[str, Any], recipient: str) -> None:
    decision = decide(POLICY, notice, recipient, consents=latest_consents(notice["consent"]))
    source = leaves(notice)
    transforms = {a.path: a.transform for a in decision.allowed if a.transform}
    for pointer, value in leaves(decision.disclosure).items() if decision.disclosure else ():
        assert pointer in source
        transform = next((t for p, t in transforms.items() if under(pointer, p)), None)
        assert value == (TRANSFORMS[transform](source[pointer]) if transform else source[pointer])


@PROPERTY
@given(notice=notices(), recipient=recipients)
def test_property_every_leaf_sent_or_in_manifest_never_both(
    notice: dict[str, Any], recipient: str
) -> None:
    decision = decide(POLICY, notice, recipient, consents=latest_consents(notice["consent"]))
    sent = leaves(decision.disclosure) if decision.disclosure else {}
    paths = [w.path for w in decision.manifest]
    for pointer in leaves(notice):
        in_manifest = sum(under(pointer, p) for p in paths)
        in_fields_sent = sum(under(pointer, p) for p in decision.fields_sent)
        assert (pointer in sent) != (in_manifest == 1), pointer
        assert in_manifest + in_fields_sent == 1, pointer


@PROPERTY
@given(notice=notices())
def test_property_sms_gets_nothing_without_consent(notice: dict[str, Any]) -> None:
    consents = latest_consents(notice["consent"])
    decision = decide(POLICY, notice, SMS, consents=consents)
    if consents.get(SMS) is not True:
        assert decision.disclosure == {}
        assert not decision.discloses_anything
    else:
        assert decision.disclosure["safeguarding"] == notice["safeguarding"]


@PROPERTY
@given(notice=notices())
def test_property_probation_clinical_notes_and_safeguarding(notice: dict[str, Any]) -> None:
    consents = latest_consents(notice["consent"])
    sent = leaves(decide(POLICY, notice, PROBATION, consents=consents).disclosure)
    if consents.get(CLINICAL) is not True:
        assert CLINICAL_NOTES not in sent
    for member in ("children_contact", "vulnerable_adults_contact"):
        assert sent[f"/safeguarding/{member}"] == notice["safeguarding"][member]


def _in_force(r: Rule, consents: dict[str, bool]) -> bool:
    if r.effect == "allow":  # the real policy has no safeguarding conditions
        return r.requires_consent is None or consents.get(r.requires_consent) is True
    return r.unless_consent is None or consents.get(r.unless_consent) is not True


@PROPERTY
@given(notice=notices(), recipient=recipients)
def test_property_every_sent_leaf_has_an_allow_rule_in_force(
    notice: dict[str, Any], recipient: str
) -> None:
    consents = latest_consents(notice["consent"])
    decision = decide(POLICY, notice, recipient, consents=consents)
    mine = [r for r in POLICY.rules if r.recipient == recipient and _in_force(r, consents)]
    for pointer in leaves(decision.disclosure) if decision.disclosure else ():
        covering = [r for r in mine if any(under(pointer, f) for f in r.fields)]
        assert any(r.effect == "allow" for r in covering), pointer
        assert not any(r.effect == "deny" for r in covering), pointer


def test_which_rules_are_in_force_is_true_or_false() -> None:
    # Read by position in the kind's rules: "no consent on record" is False, not None.
    policy = Policy("test", "0" * 64, (ALLOW_ALL, NEEDS_X, UNLESS_X))
    for consents in ({}, {"x": True}, {"x": False}):
        in_force = policy.in_force(PROBATION, consents, SMALL_NOTICE)
        assert all(type(answer) is bool for answer in in_force), (consents, in_force)
    assert policy.in_force(PROBATION, {}, SMALL_NOTICE) == (True, False, True)


def _counting_covers(monkeypatch) -> list[str]:
    examined: list[str] = []
    covers = Rule.covers

    def counting(rule: Rule, pointer: str) -> bool:
        examined.append(pointer)
        return covers(rule, pointer)

    monkeypatch.setattr(Rule, "covers", counting)
    return examined


def test_the_rules_covering_a_notice_pointer_are_worked_out_when_the_policy_is_built(
    monkeypatch,
) -> None:
    examined = _counting_covers(monkeypatch)
    policy = Policy("test", "0" * 64, (ALLOW_ALL, DENY_C), pointers=frozenset(leaves(SMALL_NOTICE)))
    assert sorted(examined) == sorted(2 * list(leaves(SMALL_NOTICE)))  # each rule asked once ...
    examined.clear()
    first = decide(policy, SMALL_NOTICE, PROBATION, consents={})
    assert examined == []  # ... and never while deciding
    assert first == decide(
        Policy("test", "0" * 64, (ALLOW_ALL, DENY_C)), SMALL_NOTICE, PROBATION, consents={}
    )


def test_a_pointer_the_policy_was_not_built_for_is_decided_and_changes_nothing(
    monkeypatch,
) -> None:
    """A body's keys come from outside: one the policy does not know is decided as it is met,
    by the same rules, and the policy is the same afterwards (nothing it holds can change)."""
    rules, consents, sent, _ = HAND_TABLE["requires-consent-given"]
    policy = Policy("test", "0" * 64, tuple(rules), pointers=frozenset({"/a/b/c"}))
    built = dict(policy._covering)
    examined = _counting_covers(monkeypatch)
    first = decide(policy, SMALL_NOTICE, PROBATION, consents=consents)
    assert first.fields_sent == sent and sent
    assert "/a/b/c" not in examined and "/a/b/d" in examined
    assert dict(policy._covering) == built
    with pytest.raises(TypeError):
        policy._covering[(PROBATION, "/x")] = policy._covering[(PROBATION, "/a/b/c")]  # type: ignore[index]
    assert decide(policy, SMALL_NOTICE, PROBATION, consents=consents) == first
