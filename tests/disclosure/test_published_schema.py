"""The disclosure's published schema follows the policy: what can be sent, in which forms, and
what is always there. Pure: hand-made YAML policies and the real consent/ files, no database.
What is actually delivered is checked against the published files in
tests/flows/test_webhooks_contract.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError

from app import contract
from app.api import webhook_schemas as schemas_webhooks
from app.disclosure import claims_schema as disclosed
from app.disclosure.policy import CONDITIONS, TRANSFORMS, consents_from_records, decide
from app.notices.document import ReleaseNotice
from tests.helpers.policies import (
    BASE,
    EXAMPLE,
    POLICY,
    PROBATION,
    PROPERTY,
    SMS,
    histories,
    load,
    notices,
    rule,
)

ROOT = Path(__file__).resolve().parents[2]
NOTICE = ReleaseNotice.model_json_schema()
PUBLISHED = json.loads((ROOT / "schemas" / "disclosure-claims.v1.json").read_text())
FORMATS = Draft202012Validator.FORMAT_CHECKER
DISCLOSURE = Draft202012Validator(PUBLISHED["properties"]["disclosure"], format_checker=FORMATS)
REQUIRED_IN_EVERY_NOTICE = {
    "/person/noms_number",
    "/person/given_name",
    "/person/family_name",
    "/person/date_of_birth",
    "/release/prison_code",
    "/release/release_date",
    "/release/reason",
    "/release_plan/probation_provider",
    "/nps_use/status",
    "/safeguarding/children_contact",
    "/safeguarding/vulnerable_adults_contact",
}


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


def disclosure_validator(policy) -> Draft202012Validator:
    return validator(disclosed.disclosure_schema(NOTICE, disclosed.shape(policy, NOTICE)))


def test_under_the_shipped_policy_every_disclosure_carries_what_every_notice_does() -> None:
    found = disclosed.shape(POLICY, NOTICE)
    # Probation is sent them by statute; the service is sent anything only with consent, which
    # sends it all of them too.
    assert found.always == REQUIRED_IN_EVERY_NOTICE
    assert found.forms["/person/date_of_birth"] == {None, "month"}
    assert {p for p, f in found.forms.items() if f != {None}} == {"/person/date_of_birth"}
    schema = disclosed.disclosure_schema(NOTICE, found)
    assert schema["required"] == ["person", "release", "release_plan", "nps_use", "safeguarding"]
    safeguarding = schema["properties"]["safeguarding"]
    assert safeguarding["required"] == ["children_contact", "vulnerable_adults_contact"]
    assert "pnc_number" in schema["properties"]["person"]["properties"]  # probation gets it


def test_the_published_claims_are_those_of_the_shipped_policy() -> None:
    model = contract.published()["disclosure-claims.v1.json"]
    assert model.model_json_schema() == {
        k: v for k, v in PUBLISHED.items() if k not in ("$schema", "$id")
    }
    assert {"sub", "disclosure", "manifest", "policy"} <= set(PUBLISHED["required"])
    assert not {"supersedes", "transformed"} & set(PUBLISHED["required"])


@pytest.mark.parametrize(
    ("value", "valid"),
    [("1994-03-17", True), ("1994-03", True), ("1994-13", False), ("1994", False), (None, False)],
)
def test_a_date_of_birth_is_whole_or_its_month(value: Any, valid: bool) -> None:
    person = {**EXAMPLE["person"], "date_of_birth": value}
    assert DISCLOSURE.is_valid({**EXAMPLE, "person": person}) is valid


def test_a_policy_that_may_send_only_safeguarding_requires_nothing_else(tmp_path: Path) -> None:
    """Whoever can be sent only safeguarding (here the service, when children are at risk)
    makes every other member optional: and the NOMS number (`sub`) with it."""
    policy = load(
        tmp_path,
        [
            rule("t.all", "/person", "/release", "/release_plan", "/nps_use"),
            rule(
                "t.sms",
                "/safeguarding",
                recipient=SMS,
                requires={"safeguarding": "children_at_risk"},
            ),
        ],
    )
    found = disclosed.shape(policy, NOTICE)
    assert found.always == {p for p in REQUIRED_IN_EVERY_NOTICE if p.startswith("/safeguarding/")}
    schema = schemas_webhooks.disclosure_claims(policy).model_json_schema()
    assert "sub" not in schema["required"]
    assert schema["properties"]["disclosure"]["required"] == ["safeguarding"]
    only = {"safeguarding": EXAMPLE["safeguarding"]}
    disclosure_validator(policy).validate(only)


def test_a_date_only_ever_cut_is_never_valid_whole(tmp_path: Path) -> None:
    policy = load(
        tmp_path,
        [
            rule("t.all", "/person", "/release", "/release_plan", "/nps_use"),
            rule("t.year", "/person/date_of_birth", transform="year"),
        ],
    )
    schema = disclosed.disclosure_schema(NOTICE, disclosed.shape(policy, NOTICE))
    check, person = validator(schema["properties"]["person"]).is_valid, EXAMPLE["person"]
    assert check({**person, "date_of_birth": "1994"})
    assert not check({**person, "date_of_birth": "1994-03"})
    assert not check(person)


def test_what_no_rule_ever_sends_is_not_in_the_schema(tmp_path: Path) -> None:
    policy = load(
        tmp_path,
        [
            rule("t.all", "/person", "/release", "/release_plan", "/nps_use"),
            rule("t.no-pnc", "/person/pnc_number", effect="deny", reason="not_necessary"),
        ],
    )
    schema = disclosed.disclosure_schema(NOTICE, disclosed.shape(policy, NOTICE))
    assert "pnc_number" not in schema["properties"]["person"]["properties"]
    assert set(schema["properties"]) == {
        "person",
        "release",
        "release_plan",
        "nps_use",
        "safeguarding",
    }
    with pytest.raises(ValidationError, match="'pnc_number' was unexpected"):
        validator(schema["properties"]["person"]).validate(EXAMPLE["person"])


def test_every_condition_and_every_transform_is_met_by_some_case() -> None:
    """The cases a shape is found from make every safeguarding condition both hold and not
    hold, and every transform has a published form: else a rule could go unseen."""
    members = list(disclosed._members(NOTICE, NOTICE["$defs"]))
    cases = [notice for _, notice in disclosed._cases(POLICY, NOTICE, members)]
    for condition in CONDITIONS.values():
        assert {condition(notice) for notice in cases} == {True, False}
    assert set(disclosed.TRANSFORMED) == set(TRANSFORMS)
    for name, cut in TRANSFORMS.items():
        validator(disclosed.TRANSFORMED[name]).validate(cut(EXAMPLE["person"]["date_of_birth"]))


@PROPERTY
@given(data=st.data(), kind=st.sampled_from([PROBATION, SMS]))
def test_property_every_disclosure_the_shipped_policy_makes_is_valid(data, kind: str) -> None:
    history = data.draw(histories())
    notice = data.draw(notices(history))
    decision = decide(POLICY, notice, kind, consents=consents_from_records(history, BASE))
    if decision.discloses_anything:
        DISCLOSURE.validate(decision.disclosure)
