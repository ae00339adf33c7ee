"""The policy's start-up checks and decision rules (consent/README.md), table-driven over
hand-made YAML policies and the real consent/ files, and properties over generated notices and
consent histories. Pure: no database."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from app.disclosure.policy import Policy, PolicyError, consents_from_records, decide
from app.disclosure.policy_files import load_policy
from app.notices.document import ReleaseNotice
from tests.helpers.documents import leaves, under
from tests.helpers.policies import (
    BASE,
    CLINICAL,
    CONSENT_DIR,
    EXAMPLE,
    POLICY,
    PROBATION,
    PROPERTY,
    SCOPES,
    SMS,
    histories,
    load,
    notices,
    rule,
)

REAL_YAML = CONSENT_DIR / "release-notice.yaml"
NOTES = "/nps_use/treatment_in_custody/clinical_notes"
DOB = "/person/date_of_birth"


# --- start-up refusals ------------------------------------------------------------------------

DENY = {"effect": "deny", "reason": "not_necessary"}
# fmt: off
REFUSALS = {  # each names the file and rule `t.bad`, and says what is wrong
    "unknown-consent-requires": (rule("t.bad", requires={"consent": "gp_sharing"}), "gp_sharing"),
    "unknown-consent-unless": (rule("t.bad", **DENY, unless={"consent": "gp"}), "consent scope"),
    "unknown-condition": (rule("t.bad", requires={"safeguarding": "adults_at_risk"}), "condition"),
    "unknown-transform": (rule("t.bad", DOB, transform="week"), "transform 'week'"),
    "transform-not-a-date": (rule("t.bad", "/person/given_name", transform="month"), "not a date"),
    "transform-on-object": (rule("t.bad", "/person", transform="year"), "not a date"),
    "transform-on-bool": (rule("t.bad", "/release/on_licence", transform="year"), "not a date"),
    "basis-missing": (rule("t.bad", lawful_basis=None), "lawful_basis"),
    "basis-empty": (rule("t.bad", lawful_basis=[]), "lawful_basis"),
    "basis-not-a-list": (rule("t.bad", lawful_basis="UK GDPR Article 6"), "lawful_basis"),
    "basis-empty-text": (rule("t.bad", lawful_basis=[""]), "lawful_basis"),
    "requires-missing": (rule("t.bad", requires=None), "requires"),
    "requires-two-forms":
        (rule("t.bad", requires={"consent": SMS, "safeguarding": "children_at_risk"}), "requires"),
    "requires-sometimes": (rule("t.bad", requires="sometimes"), "requires"),
    "requires-a-list": (rule("t.bad", requires=["statutory"]), "requires"),
    "requires-empty": (rule("t.bad", requires={}), "requires"),
    "deny-requires": (rule("t.bad", **DENY, requires="statutory"), "`requires` belongs"),
    "deny-transform": (rule("t.bad", DOB, **DENY, transform="month"), "`transform` belongs"),
    "allow-unless": (rule("t.bad", unless={"consent": CLINICAL}), "`unless` belongs"),
    "allow-reason": (rule("t.bad", reason="not_necessary"), "`reason` belongs"),
    "deny-safeguarding": (rule("t.bad", "/safeguarding", **DENY), "safeguarding must"),
    "deny-safeguarding-member": (rule("t.bad", "/safeguarding/concerns", **DENY), "safeguarding"),
    "deny-safeguarding-unless":
        (rule("t.bad", "/safeguarding/children_contact", **DENY, unless={"consent": CLINICAL}),
         "a deny rule may not cover it"),
    "root-is-not-a-pointer": (rule("t.bad", ""), "not a field"),
    # The whole policy (no statutory safeguarding rule added): safeguarding is not covered.
    "safeguarding-consent-gated-only":
        ([rule("t.bad", "/safeguarding", requires={"consent": CLINICAL})], "safeguarding must"),
    "safeguarding-condition-only":
        ([rule("t.bad", "/safeguarding", requires={"safeguarding": "children_at_risk"})], "safe"),
    "safeguarding-members-only":
        ([rule("t.bad", "/safeguarding/children_contact", "/safeguarding/concerns")], "safe"),
    "safeguarding-for-the-treatment-service":
        ([rule("t.bad", "/safeguarding", recipient=SMS)], "safeguarding must"),
    "transform-a-list": (rule("t.bad", DOB, transform=["month"]), "transform"),
    "basis-blank-text": (rule("t.bad", lawful_basis=["   "]), "lawful_basis"),
}
# Where no probation rule covers a part of safeguarding, there is no rule to name: the file.
NO_RULE_TO_NAME = {"safeguarding-members-only", "safeguarding-for-the-treatment-service"}
BUG: dict[str, tuple[Any, str]] = {}  # refusals that fail today: (the exception, why)
# fmt: on


def marks(case: str) -> Any:
    raises, why = BUG.get(case, (None, None))
    return pytest.mark.xfail(strict=True, raises=raises, reason=f"BUG: {why}") if why else ()


@pytest.mark.parametrize(
    ("bad", "says"), [pytest.param(*v, id=k, marks=marks(k)) for k, v in REFUSALS.items()]
)
def test_a_bad_rule_is_refused_naming_file_and_rule(
    tmp_path: Path, bad, says: str, request: pytest.FixtureRequest
) -> None:
    rules, whole = (bad, True) if isinstance(bad, list) else ([rule("t.fine"), bad], False)
    with pytest.raises(PolicyError) as refused:
        load(tmp_path / "consent", rules, safeguarding=not whole, name="sharing.yaml")
    case = request.node.callspec.id
    named = "sharing.yaml: " if case in NO_RULE_TO_NAME else "sharing.yaml: rule t.bad:"
    assert str(refused.value).startswith(named), refused.value
    assert says in str(refused.value)


@pytest.mark.parametrize("bad", [v[0] for k, v in REFUSALS.items() if k.startswith("safeg")])
def test_safeguarding_not_always_reaching_probation_is_refused(tmp_path: Path, bad) -> None:
    with pytest.raises(PolicyError, match="safeguarding must always reach the probation provider"):
        load(tmp_path, bad, safeguarding=False)


BAD_FILES = {
    "not-yaml": ("rules: [unclosed", "not YAML"),
    "rules-not-a-list": ("rules: {}", "list"),
}


@pytest.mark.parametrize(("text", "says"), BAD_FILES.values(), ids=BAD_FILES)
def test_a_bad_file_is_refused_naming_it(tmp_path: Path, text: str, says: str) -> None:
    load(tmp_path, [])  # p.yaml is valid; the broken file beside it refuses the whole policy
    (tmp_path / "q.yaml").write_text("version: t1\n" + text)
    with pytest.raises(PolicyError, match=rf"^q\.yaml: .*{says}"):
        load_policy(tmp_path, ReleaseNotice)


def by_id(rules: list[dict[str, Any]], rule_id: str) -> dict[str, Any]:
    return next(r for r in rules if r["id"] == rule_id)


def set_(rule_id: str, **changes: Any):
    return lambda rules: by_id(rules, rule_id).update(changes)


# fmt: off
REAL_EDITS = {  # edits of the real file: each is refused, naming the file and rule when it can
    "safeguarding-consent-gated":
        (set_("probation.safeguarding", requires={"consent": SMS}), "probation.safeguarding"),
    "safeguarding-removed": (lambda rs: rs.remove(by_id(rs, "probation.safeguarding")), "file"),
    "deny-on-concerns":
        (lambda rs: rs.append(rule("p.x", "/safeguarding/concerns", **DENY)), "p.x"),
    "pnc-mistyped": (set_("sms.no-criminal-record-identifiers", fields=["/person/pnc_numbr"]),
                     "sms.no-criminal-record-identifiers: '/person/pnc_numbr' is not a field"),
    "month-of-a-name": (set_("sms.date-of-birth-month", fields=["/person/family_name"]),
                        "sms.date-of-birth-month: '/person/family_name' is not a date"),
}
# fmt: on


@pytest.mark.parametrize(("change", "names"), REAL_EDITS.values(), ids=REAL_EDITS.keys())
def test_edits_of_the_real_policy_are_refused(tmp_path: Path, change, names: str) -> None:
    document = yaml.safe_load(REAL_YAML.read_text())
    change(document["rules"])
    (tmp_path / REAL_YAML.name).write_text(yaml.safe_dump(document))
    where = "release-notice.yaml:" if names == "file" else f"release-notice.yaml: rule {names}"
    with pytest.raises(PolicyError, match=f"^{re.escape(where)}"):
        load_policy(tmp_path, ReleaseNotice)


ACCEPTED = {  # the checks are not broader than the README says
    "sms-deny-on-safeguarding": rule("t.ok", "/safeguarding", recipient=SMS, **DENY),
    "consent-rule-on-concerns": rule("t.ok", "/safeguarding/concerns", requires={"consent": SMS}),
    "year-of-release": rule("t.ok", "/release/release_date", transform="year"),
    "month-of-last-use": rule("t.ok", "/nps_use/last_use_date", transform="month"),
    "readme-example-crn-deny": rule("t.ok", "/person/crn", recipient=SMS, **DENY),
}


@pytest.mark.parametrize("extra", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_valid_policies_load(tmp_path: Path, extra: dict[str, Any]) -> None:
    policy = load(tmp_path, [extra])
    assert [r.id for r in policy.rules] == ["t.ok", "t.safeguarding"]
    sent = decide(policy, EXAMPLE, PROBATION, consents={}).disclosure
    assert sent["safeguarding"] == EXAMPLE["safeguarding"]


# --- decisions over hand-made policies (for the treatment service: no safeguarding rule) ----


def sms(id_: str, *fields: str, **extra: Any) -> dict[str, Any]:
    return rule(id_, *fields, recipient=SMS, **extra)


def notice_with(children: str = "no", adults: str = "no", drop: str | None = None) -> dict:
    notice = copy.deepcopy(EXAMPLE)
    notice["safeguarding"] |= {"children_contact": children, "vulnerable_adults_contact": adults}
    if drop:
        del notice["nps_use"]["treatment_in_custody"][drop]
    return notice


def outcome(decision, pointer: str) -> tuple[Any, ...]:
    """What became of one leaf: ("sent", rule, transform, value) or ("withheld", rule, reason)."""
    sent = leaves(decision.disclosure) if decision.disclosure else {}
    (entry,) = [a for a in decision.allowed if under(pointer, a.path)] or [None]
    if entry is not None:
        return ("sent", entry.rule, entry.transform, sent[pointer])
    (withheld,) = [w for w in decision.manifest if under(pointer, w.path)]
    assert pointer not in sent
    return ("withheld", withheld.rule, withheld.reason)


def W(rule_id: str, reason: str = "not_necessary") -> tuple[str, ...]:
    return ("withheld", rule_id, reason)


PERSON, NAME, STATUS = sms("t.person", "/person"), "/person/given_name", "/nps_use/status"
MONTH, YEAR = sms("t.month", DOB, transform="month"), sms("t.year", DOB, transform="year")
DENY_DOB, DENY_PERSON = sms("t.deny-dob", DOB, **DENY), sms("t.deny-person", "/person", **DENY)
MONTH_IF_SMS = sms("t.month-if", DOB, transform="month", requires={"consent": SMS})
NPS_CLINICAL = sms("t.nps-clinical", "/nps_use", requires={"consent": CLINICAL})
NPS_CHILDREN = sms("t.nps-children", "/nps_use", requires={"safeguarding": "children_at_risk"})
BY_PERSON = {NAME: ("sent", "t.person", None, "Daniel")}
AS_MONTH, AS_YEAR = ("sent", "t.month", "month", "1994-03"), ("sent", "t.year", "year", "1994")
# fmt: off
DECISIONS = {  # id: (rules, consents, {pointer: outcome})
    "closest-wins": ([PERSON, MONTH], {}, {DOB: AS_MONTH, **BY_PERSON}),
    "closest-wins-listed-last": ([MONTH, PERSON], {}, {DOB: AS_MONTH, **BY_PERSON}),
    "closest-year": ([PERSON, YEAR], {}, {DOB: AS_YEAR}),
    "tie-first-in-file": ([MONTH, YEAR, PERSON], {}, {DOB: AS_MONTH}),
    "tie-first-in-file-swapped": ([YEAR, MONTH], {}, {DOB: AS_YEAR}),
    "deny-beats-closer-allow": ([PERSON, MONTH, DENY_DOB], {}, {DOB: W("t.deny-dob"), **BY_PERSON}),
    "deny-listed-first": ([DENY_DOB, MONTH], {}, {DOB: W("t.deny-dob")}),
    "broad-deny-beats-close-allow": ([MONTH, DENY_PERSON], {}, {DOB: W("t.deny-person")}),
    "closest-not-in-force-falls-back":
        ([PERSON, MONTH_IF_SMS], {SMS: False}, {DOB: ("sent", "t.person", None, "1994-03-17")}),
    "closest-in-force-with-consent":
        ([PERSON, MONTH_IF_SMS], {SMS: True}, {DOB: ("sent", "t.month-if", "month", "1994-03")}),
    "names-first-allow-not-in-force":
        ([NPS_CLINICAL, NPS_CHILDREN], {}, {STATUS: W("t.nps-clinical", "consent_not_given")}),
    "names-first-allow-not-in-force-swapped":
        ([NPS_CHILDREN, NPS_CLINICAL], {}, {STATUS: W("t.nps-children", "condition_not_met")}),
    "uncovered-is-default-deny": ([PERSON], {}, {STATUS: W("default-deny", "no_rule_allows")}),
}
# fmt: on


@pytest.mark.parametrize(("rules", "consents", "want"), DECISIONS.values(), ids=DECISIONS.keys())
def test_decisions(tmp_path: Path, rules: list, consents: dict, want: dict) -> None:
    decision = decide(load(tmp_path, rules), notice_with(), SMS, consents=consents)
    assert {p: outcome(decision, p) for p in want} == want


@pytest.mark.parametrize("children", ["yes", "no", "unknown"])
@pytest.mark.parametrize("adults", ["yes", "no", "unknown"])
@pytest.mark.parametrize("condition", ["children_at_risk", "children_or_adults_at_risk"])
def test_a_condition_rule_is_in_force_only_when_it_holds(tmp_path, children, adults, condition):
    policy = load(tmp_path, [sms("t.if", "/nps_use", requires={"safeguarding": condition})])
    holds = children == "yes" or (condition == "children_or_adults_at_risk" and adults == "yes")
    decision = decide(
        policy, notice_with(children, adults), SMS, consents={SMS: True, CLINICAL: True}
    )
    sent = ("sent", "t.if", None, "current")
    assert outcome(decision, STATUS) == (sent if holds else W("t.if", "condition_not_met"))
    assert decision.consents_relied == frozenset()


NOTES_UNLESS = sms("t.notes", NOTES, **DENY, unless={"consent": CLINICAL})
NPS, NPS_IF_SMS = sms("t.nps", "/nps_use"), sms("t.c", "/nps_use", requires={"consent": SMS})
DENY_TREATMENT = sms("t.tic", "/nps_use/treatment_in_custody", **DENY)
BOTH = {SMS: True, CLINICAL: True}
# fmt: off
RELIED = {  # id: (rules, consents, member of treatment_in_custody dropped, consents relied)
    "consent-rule-sent": ([NPS_IF_SMS], {SMS: True}, None, {SMS}),
    "statutory-needs-none": ([PERSON, NPS], BOTH, None, set()),
    "unless-of-deny-over-sent-leaf": ([NPS, NOTES_UNLESS], {CLINICAL: True}, None, {CLINICAL}),
    "unless-deny-leaf-absent": ([NPS, NOTES_UNLESS], {CLINICAL: True}, "clinical_notes", set()),
    "consent-refused": ([NPS_IF_SMS], {SMS: False}, None, set()),
    "unless-deny-under-deny-in-force": ([NPS, NOTES_UNLESS, DENY_TREATMENT], BOTH, None, set()),
    "both": ([NPS_IF_SMS, NOTES_UNLESS], BOTH, None, {SMS, CLINICAL}),
}
# fmt: on


@pytest.mark.parametrize(("rules", "consents", "drop", "relied"), RELIED.values(), ids=RELIED)
def test_consents_relied(tmp_path: Path, rules, consents, drop, relied) -> None:
    decision = decide(load(tmp_path, rules), notice_with(drop=drop), SMS, consents=consents)
    assert decision.consents_relied == relied


def basis_from_yaml(item: dict[str, Any]) -> dict[str, Any]:
    basis = {k: item[k] for k in ("effect", "lawful_basis", "purpose")}
    requires = item.get("requires")
    if isinstance(requires, dict):
        ((form, value),) = requires.items()
        basis |= {"requires": form, ("consent" if form == "consent" else "condition"): value}
    elif requires is not None:
        basis["requires"] = requires
    if "unless" in item:
        basis["consent"] = item["unless"]["consent"]
    return basis


def test_bases_record_what_each_named_rule_rests_on(tmp_path: Path) -> None:
    expected = {r["id"]: basis_from_yaml(r) for r in yaml.safe_load(REAL_YAML.read_text())["rules"]}
    assert POLICY.bases([*expected, "default-deny"]) == expected
    assert POLICY.bases(["sms.date-of-birth-month"]) == {
        k: expected[k] for k in ["sms.date-of-birth-month"]
    }
    hand = load(tmp_path, [NPS_CHILDREN, DENY_DOB, NOTES_UNLESS])
    assert hand.bases(["t.nps-children", "t.deny-dob", "t.notes"]) == {
        r["id"]: basis_from_yaml(r) for r in (NPS_CHILDREN, DENY_DOB, NOTES_UNLESS)
    }


# --- properties over the real policy ----------------------------------------------------------

# fmt: off
# fmt: on


CONDITION_MEMBERS = {"children_at_risk": ["children_contact"]}
CONDITION_MEMBERS["children_or_adults_at_risk"] = ["children_contact", "vulnerable_adults_contact"]


def in_force(r, consents: dict[str, bool], notice: dict[str, Any]) -> bool:
    if r.effect == "deny":
        return r.unless_consent is None or consents.get(r.unless_consent) is not True
    if r.requires_consent is not None:
        return consents.get(r.requires_consent) is True
    members = CONDITION_MEMBERS.get(r.condition, [])
    return r.condition is None or any(notice["safeguarding"][m] == "yes" for m in members)


def checked(notice: dict, recipient: str, consents: dict, gated: frozenset = frozenset()):
    """Decide, and check (1): every sent leaf is covered by an allow rule in force and no deny
    rule in force, and is the notice's value or its transform by the closest such allow; and
    that none rests on a consent in `gated` alone (nor escaped a deny lifted by one)."""
    decision, source = decide(POLICY, notice, recipient, consents=consents), leaves(notice)
    for pointer, value in (leaves(decision.disclosure) if decision.disclosure else {}).items():
        covering = [r for r in POLICY.rules if r.recipient == recipient and r.covers(pointer)]
        live = [r for r in covering if in_force(r, consents, notice)]
        assert not [r for r in live if r.effect == "deny"], pointer
        allows = [r for r in live if r.effect == "allow"]
        assert [r for r in allows if r.requires_consent not in gated], pointer
        assert not [r for r in covering if r.unless_consent in gated], pointer
        closest = max(allows, key=lambda r: max(len(f) for f in r.fields if under(pointer, f)))
        shape = {None: "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[closest.transform]
        as_date = datetime.strptime(source[pointer], "%Y-%m-%d") if closest.transform else None
        assert value == (as_date.strftime(shape) if as_date else source[pointer]), pointer
    assert not decision.consents_relied & gated
    return decision


@PROPERTY
@given(data=st.data(), minutes=st.integers(0, 15))
def test_property_what_is_sent_is_within_the_rules(data, minutes: int) -> None:
    history = data.draw(histories())
    notice = data.draw(notices(history))
    consents = consents_from_records(history, BASE + timedelta(minutes=minutes))
    checked(notice, SMS, consents)
    probation = checked(notice, PROBATION, consents)  # (4) safeguarding, whatever the consents
    assert probation.disclosure["safeguarding"] == notice["safeguarding"]
    assert not [w for w in probation.manifest if under(w.path, "/safeguarding")]


@PROPERTY
@given(data=st.data(), withdrawn=st.sampled_from([None, *SCOPES]))
def test_property_nothing_consent_gated_leaves_without_its_consent(data, withdrawn) -> None:
    """(2) No consent stands (each given is withdrawn at once: None), or (3) one scope's
    consents are withdrawn after every record: nothing resting on them is sent."""
    history = data.draw(histories(endings=withdrawn is not None))
    history.append(
        {"scope": withdrawn or SMS, "decision": "given", "recorded_at": f"{BASE:%FT%TZ}"}
    )
    history[-1]["recorded_by"] = "HC"  # a consent of that scope given, at least once
    notice = data.draw(notices(history))
    later = BASE + timedelta(hours=1)  # after every event of the history
    for item in history:
        if item["decision"] == "given" and withdrawn in (None, item["scope"]):
            item["withdrawn_at"] = item["recorded_at"] if withdrawn is None else later.isoformat()
    consents = consents_from_records(history, later)
    gated = frozenset(SCOPES if withdrawn is None else [withdrawn])
    assert not [scope for scope in gated if consents.get(scope)]
    probation, treatment = (checked(notice, kind, consents, gated) for kind in (PROBATION, SMS))
    if SMS in gated:  # the treatment service gets nothing at all
        assert treatment.disclosure == {} and not treatment.discloses_anything
    if CLINICAL in gated:
        assert NOTES not in leaves(probation.disclosure)


# A condition, a consent, a deny lifted by a consent and a transform: what makes a leaf's
# outcome differ between two notices of one shape.
MIXED = [NPS_CHILDREN, NOTES_UNLESS, MONTH_IF_SMS, PERSON, DENY_TREATMENT]


@PROPERTY
@given(data=st.data())
def test_property_the_tables_built_at_load_decide_as_the_rules_worked_out_afresh(
    tmp_path_factory, data
) -> None:
    """A loaded policy works out, once, which rules cover each of the notice's pointers: its
    decisions, over notices of every condition and consent, are those of a policy of the same
    rules that works them out leaf by leaf."""
    built = load(tmp_path_factory.mktemp("mixed"), MIXED)
    for _ in range(data.draw(st.integers(2, 8))):
        history = data.draw(histories())
        notice = data.draw(notices(history))
        consents = consents_from_records(history, BASE + timedelta(hours=1))
        for kind in (SMS, PROBATION):
            afresh = Policy(built.version, built.sha256, built.rules)
            assert decide(built, notice, kind, consents=consents) == decide(
                afresh, notice, kind, consents=consents
            )


def oracle(history: list[dict[str, Any]], now: datetime | None) -> dict[str, bool]:
    """Latest event per scope by instant; at a shared instant any refusal wins; a future consent
    or expiry is ignored, a refusal or withdrawal on record counts from `now` at the latest."""
    events: dict[str, list[tuple[datetime, bool]]] = {}
    for item in history:
        times = [("decision", item["recorded_at"], item["decision"] == "given")]
        times += [(k, item[k], False) for k in ("withdrawn_at", "expires_at") if item.get(k)]
        for kind, text, given_ in times:
            at = datetime.fromisoformat(text).astimezone(UTC)
            if now is not None and not given_ and kind != "expires_at" and at > now:
                at = now  # a refusal on record counts from now at the latest
            if now is None or at <= now:
                events.setdefault(item["scope"], []).append((at, given_))
    result = {}
    for scope, happened in events.items():
        last = max(at for at, _ in happened)
        result[scope] = all(given_ for at, given_ in happened if at == last)
    return result


@PROPERTY
@given(history=histories(), minutes=st.none() | st.integers(0, 15))
def test_property_consents_from_records_matches_an_oracle(history, minutes) -> None:
    now = None if minutes is None else BASE + timedelta(minutes=minutes)
    assert consents_from_records(history, now) == oracle(history, now)
