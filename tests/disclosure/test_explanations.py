"""What each recipient of a notice was sent and why, as its prison and an auditor read it
(GET .../disclosures), held against the signed messages; and `exchange policy explain`, which
must tell a notice never posted the same way."""

from __future__ import annotations

import copy
import json
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from app.disclosure.policy_files import load_policy
from app.notices import examples
from app.notices.document import ReleaseNotice
from app.updates.document import DOCUMENTS
from tests.helpers.documents import leaves, under

ROOT = Path(__file__).resolve().parents[2]
CONSENT_DIR = ROOT / "consent"
POLICY = load_policy(CONSENT_DIR, ReleaseNotice, DOCUMENTS)
RULES = {
    r["id"]: r for r in yaml.safe_load((CONSENT_DIR / "release-notice.yaml").read_text())["rules"]
}
ISSUER = "http://exchange.test"
PROBATION, SMS = "probation_provider", "substance_misuse_service"
CLINICAL = "probation_clinical_details"
ROLES = {"N07": PROBATION, "SMS-LEEDS": SMS}
DOB = "/person/date_of_birth"


def consent(scope: str, decision: str, at: str) -> dict[str, str]:
    return {"scope": scope, "decision": decision, "recorded_at": at, "recorded_by": "Healthcare"}


def with_consents(example: dict[str, Any], records: list[dict[str, str]]) -> dict[str, Any]:
    """The example with these consents, their times moved with the example's (to today)."""
    body = copy.deepcopy(example)
    body["consent"] = examples.moved(records, datetime.now(UTC).date() - examples.WRITTEN_ON)
    return body


SMS_GIVEN = consent(SMS, "given", "2026-11-18T14:05:00Z")
CLINICAL_REFUSED = consent(CLINICAL, "refused", "2026-11-18T14:06:00Z")
CLINICAL_GIVEN = consent(CLINICAL, "given", "2026-11-19T09:30:00Z")
SMS_WITHDRAWN = consent(SMS, "refused", "2026-11-21T10:00:00Z")
CASES = {  # consent records -> (the consents standing, consents relied per recipient)
    "as-in-the-example": (
        [SMS_GIVEN, CLINICAL_REFUSED],
        {SMS: True, CLINICAL: False},
        {"N07": [], "SMS-LEEDS": [SMS]},
    ),
    "clinical-given-later": (
        [SMS_GIVEN, CLINICAL_REFUSED, CLINICAL_GIVEN],
        {SMS: True, CLINICAL: True},
        {"N07": [CLINICAL], "SMS-LEEDS": [SMS]},
    ),
    "treatment-consent-refused-later": (
        [SMS_GIVEN, SMS_WITHDRAWN],
        {SMS: False},
        {"N07": [], "SMS-LEEDS": []},
    ),
    "none-recorded": ([], {}, {"N07": [], "SMS-LEEDS": []}),
}


def no_nulls(value: Any) -> Any:
    """The same account with absent and null members alike (the CLI leaves nulls out)."""
    if isinstance(value, dict):
        return {k: no_nulls(v) for k, v in value.items() if v is not None}
    return [no_nulls(v) for v in value] if isinstance(value, list) else value


def basis(rule_id: str) -> dict[str, Any]:
    """What a rule rests on, read from the YAML itself."""
    item = RULES[rule_id]
    out = {k: item[k] for k in ("effect", "lawful_basis", "purpose")}
    requires = item.get("requires")
    if isinstance(requires, dict):
        out |= {"requires": "consent", "consent": requires["consent"]}
    elif requires:
        out["requires"] = requires
    if "unless" in item:
        out["consent"] = item["unless"]["consent"]
    return out


async def post(world, body: dict[str, Any], code: str = "MDI") -> dict[str, Any]:
    response = await world.post_notice(body, code)
    assert response.status_code == 202, response.text
    return response.json()


async def accounts(world, notice_id: str) -> tuple[dict[str, Any], str]:
    """The prison's and the auditor's reading, which must agree; and both as text."""
    mine = await world.api.get(
        f"/v1/release-notices/{notice_id}/disclosures", headers=await world.headers("MDI")
    )
    audited = await world.api.get(
        f"/v1/audit/notices/{notice_id}/disclosures", headers=await world.headers("AUDIT")
    )
    assert mine.status_code == audited.status_code == 200, (mine.text, audited.text)
    assert mine.json() == audited.json()
    return mine.json(), mine.text + audited.text


async def claims_of(world, code: str, message_id: str) -> dict[str, Any]:
    """A recipient's message, verified with PyJWT against the published JWKS only."""
    response = await world.api.get(f"/v1/messages/{message_id}", headers=await world.headers(code))
    assert response.status_code == 200, response.text
    token = response.json()["jws"]
    assert jwt.get_unverified_header(token)["typ"] == "disclosure+jwt"
    keys = (await world.api.get("/.well-known/jwks.json")).json()["keys"]
    (key,) = [jwt.PyJWK(k) for k in keys if k["kid"] == jwt.get_unverified_header(token)["kid"]]
    return jwt.decode(token, key, algorithms=["ES256"], audience=code, issuer=ISSUER)


@pytest.mark.parametrize("case", list(CASES))
async def test_each_account_is_what_the_signed_message_carries(world, example, case) -> None:
    records, _, relied = CASES[case]
    accepted = await post(world, with_consents(example, records))
    account, _ = await accounts(world, accepted["id"])
    assert (account["notice_id"], account["version"]) == (accepted["id"], 1)
    by_code = {d["organisation_code"]: d for d in account["disclosures"]}
    assert {c: d["role"] for c, d in by_code.items()} == ROLES
    message_ids = {r["organisation_code"]: r["message_id"] for r in accepted["recipients"]}
    for code, entry in by_code.items():
        decided_at = datetime.fromisoformat(entry["decided_at"])
        assert decided_at == datetime.fromisoformat(accepted["received_at"])
        assert entry["message_id"] == message_ids[code]
        assert entry["consents_relied"] == relied[code]
        assert entry["policy"] == {"version": POLICY.version, "sha256": POLICY.sha256}
        named = {f["rule"] for f in entry["sent"] + entry["withheld"]} - {"default-deny"}
        assert {rule: no_nulls(b) for rule, b in entry["bases"].items()} == {
            rule: basis(rule) for rule in named
        }
        if entry["message_id"] is None:  # nothing allowed: nothing signed, nothing in the inbox
            assert entry["sent"] == [] and code == "SMS-LEEDS" and not relied[code]
            inbox = await world.api.get("/v1/messages", headers=await world.headers(code))
            assert inbox.json()["items"] == []
            continue
        claims = await claims_of(world, code, entry["message_id"])
        assert (claims["jti"], claims["notice_id"]) == (entry["message_id"], accepted["id"])
        assert claims["iat"] == int(decided_at.timestamp())
        assert claims["manifest"] == entry["withheld"]
        assert claims["policy"] == entry["policy"]
        assert claims.get("transformed", []) == [f for f in entry["sent"] if f.get("transform")]
        sent_paths = [f["path"] for f in entry["sent"]]
        disclosed = leaves(claims["disclosure"])
        for pointer in disclosed:  # each disclosed leaf under exactly one sent path
            assert sum(under(pointer, p) for p in sent_paths) == 1, pointer
        assert all(any(under(p, s) for p in disclosed) for s in sent_paths)


async def test_no_withheld_value_is_ever_shown(world, example) -> None:
    """Nothing consented: the treatment service is refused everything, probation the notes."""
    body = with_consents(example, [consent(SMS, "refused", "2026-11-18T14:05:00Z")])
    accepted = await post(world, body)
    account, text = await accounts(world, accepted["id"])
    source, values = leaves(body), set()
    for entry in account["disclosures"]:
        assert entry["withheld"], entry["organisation_code"]
        for withheld in entry["withheld"]:
            for pointer, value in source.items():
                if under(pointer, withheld["path"]):
                    values |= strings(value)
    for must in ("2001/0123456A", body["nps_use"]["treatment_in_custody"]["clinical_notes"]):
        assert must in values
    # Only codes that name whom an account is about may appear (a consent's scope is a role).
    assert {v for v in values if v in text} <= {*ROLES, *ROLES.values()}
    assert body["person"]["date_of_birth"][:7] not in text


def strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {s for v in value.values() for s in strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in strings(v)}
    return {value} if isinstance(value, str) else set()


async def test_the_treatment_service_gets_the_month_of_birth_only(world, example) -> None:
    accepted = await post(world, example)
    account, _ = await accounts(world, accepted["id"])
    (entry,) = [d for d in account["disclosures"] if d["organisation_code"] == "SMS-LEEDS"]
    month = {"path": DOB, "rule": "sms.date-of-birth-month", "transform": "month"}
    assert month in entry["sent"]
    claims = await claims_of(world, "SMS-LEEDS", entry["message_id"])
    assert claims["disclosure"]["person"]["date_of_birth"] == example["person"]["date_of_birth"][:7]
    assert claims["transformed"] == [month]
    assert example["person"]["date_of_birth"] not in json.dumps(claims)
    (n07,) = [r["message_id"] for r in accepted["recipients"] if r["organisation_code"] == "N07"]
    probation = await claims_of(world, "N07", n07)
    assert probation["disclosure"]["person"]["date_of_birth"] == example["person"]["date_of_birth"]
    assert "transformed" not in probation


async def test_who_may_read_an_account(world, example) -> None:
    ours = (await post(world, example))["id"]
    theirs_body = copy.deepcopy(example)
    theirs_body["release"]["prison_code"] = "LPI"
    theirs = (await post(world, theirs_body, "LPI"))["id"]
    unknown = str(uuid.uuid4())

    async def status(code: str, path: str) -> int:
        response = await world.api.get(path, headers=await world.headers(code))
        if response.status_code != 200:  # a problem, saying nothing of the notice
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "disclosures" not in response.json()
        return response.status_code

    prison, audit = "/v1/release-notices/{}/disclosures", "/v1/audit/notices/{}/disclosures"
    assert await status("MDI", prison.format(ours)) == 200
    assert await status("LPI", prison.format(theirs)) == 200
    assert await status("MDI", prison.format(theirs)) == 404  # another prison's: not found
    assert await status("LPI", prison.format(ours)) == 404
    assert await status("MDI", prison.format(unknown)) == 404
    assert await status("AUDIT", audit.format(ours)) == 200  # an auditor: any notice
    assert await status("AUDIT", audit.format(theirs)) == 200
    assert await status("AUDIT", audit.format(unknown)) == 404
    for code, path in [("N07", prison), ("N07", audit), ("MDI", audit), ("AUDIT", prison)]:
        assert await status(code, path.format(ours)) == 403


# --- exchange policy explain ------------------------------------------------------------------


def explain(run, notice: Path, recipient: str) -> dict[str, Any]:
    result = run("policy", "explain", "--notice", str(notice), "--recipient", recipient)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


COMPARED = ("role", "sent", "withheld", "bases", "consents_relied", "policy")


@pytest.mark.parametrize("case", list(CASES))
async def test_explain_tells_a_notice_as_the_exchange_decided_it(
    world, run, example, tmp_path: Path, case
) -> None:
    records, standing, _ = CASES[case]
    body = with_consents(example, records)
    account, _ = await accounts(world, (await post(world, body))["id"])
    notice = tmp_path / "notice.json"
    notice.write_text(json.dumps(body))
    for entry in account["disclosures"]:
        explained = explain(run, notice, entry["role"])
        assert explained["consents"] == standing
        assert {k: no_nulls(explained[k]) for k in COMPARED} == {
            k: no_nulls(entry[k]) for k in COMPARED
        }


BAD_NOTICES = {  # change -> the pointer the refusal names
    "noms-number": (lambda n: n["person"].update(noms_number="12345"), "/person/noms_number"),
    "no-safeguarding": (lambda n: n.pop("safeguarding"), "/safeguarding"),
    "unknown-member": (lambda n: n["nps_use"].update(colour="green"), "/nps_use/colour"),
    "consent-scope": (lambda n: n["consent"][0].update(scope="gp"), "/consent/0/scope"),
    "date-as-number": (
        lambda n: n["release"].update(release_date=20261201),
        "/release/release_date",
    ),
}


@pytest.mark.parametrize(("change", "pointer"), BAD_NOTICES.values(), ids=BAD_NOTICES)
def test_explain_refuses_an_invalid_notice(run, example, tmp_path: Path, change, pointer) -> None:
    body = copy.deepcopy(example)
    change(body)
    (tmp_path / "bad.json").write_text(json.dumps(body))
    result = run("policy", "explain", "--notice", str(tmp_path / "bad.json"), "--recipient", SMS)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{pointer}:" in result.stderr


@pytest.mark.parametrize("recipient", ["prison", "auditor", "probation", ""])
def test_explain_refuses_an_unknown_recipient(run, example, tmp_path: Path, recipient) -> None:
    (tmp_path / "n.json").write_text(json.dumps(example))
    result = run(
        "policy", "explain", "--notice", str(tmp_path / "n.json"), "--recipient", recipient
    )
    assert (result.exit_code, result.stdout) == (2, "")
    assert (
        "--recipient must be one of probation_provider, substance_misuse_service" in result.stderr
    )


CRN_DENY = """
  - id: sms.no-probation-case-reference
    recipient: substance_misuse_service
    effect: deny
    reason: not_necessary
    purpose: Data minimisation.
    lawful_basis:
      - UK GDPR Article 5(1)(c) (data minimisation)
    fields:
      - /person/crn
    rationale: A treatment service has no need of the probation case reference number.
"""


def test_explain_uses_the_policy_in_exchange_policy_dir(
    run, example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notice = tmp_path / "notice.json"
    notice.write_text(json.dumps(example))
    before = {kind: explain(run, notice, kind) for kind in (PROBATION, SMS)}
    assert before[SMS]["policy"] == {"version": POLICY.version, "sha256": POLICY.sha256}
    edited = shutil.copytree(CONSENT_DIR, tmp_path / "consent")
    policy_file = edited / "release-notice.yaml"
    text = re.sub(r"^version: .*$", 'version: "crn-test"', policy_file.read_text(), flags=re.M)
    policy_file.write_text(text + CRN_DENY)
    monkeypatch.setenv("EXCHANGE_POLICY_DIR", str(edited))

    after = explain(run, notice, SMS)
    crn = {
        "path": "/person/crn",
        "rule": "sms.no-probation-case-reference",
        "reason": "not_necessary",
    }
    assert sorted(after["withheld"], key=str) == sorted([*before[SMS]["withheld"], crn], key=str)
    assert "/person/crn" in [f["path"] for f in before[SMS]["sent"]]
    assert "/person/crn" not in [f["path"] for f in after["sent"]]
    assert after["bases"]["sms.no-probation-case-reference"]["effect"] == "deny"
    assert after["policy"] == {
        "version": "2026-12-07.1+crn-test",  # care-update.yaml sorts first
        "sha256": load_policy(edited, ReleaseNotice, DOCUMENTS).sha256,
    }
    assert after["policy"]["sha256"] != POLICY.sha256
    unchanged = explain(run, notice, PROBATION)  # the probation rules did not change
    assert {k: unchanged[k] for k in ("sent", "withheld")} == {
        k: before[PROBATION][k] for k in ("sent", "withheld")
    }

    policy_file.write_text(text + CRN_DENY.replace("/person/crn", "/person/crm"))
    broken = run("policy", "explain", "--notice", str(notice), "--recipient", SMS)
    assert (broken.exit_code, broken.stdout) == (2, "")
    assert (
        "release-notice.yaml: rule sms.no-probation-case-reference: '/person/crm' is not a field"
        in broken.stderr
    )
