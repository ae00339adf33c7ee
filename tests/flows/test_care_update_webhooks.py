"""A care update delivered by a real worker pass to a real receiver, both ways, checked as a
recipient checks it (tests/flows/test_webhooks_contract.py): the OpenAPI webhook's headers and
body, the Standard Webhooks signature, the JWS verified with jwcrypto, the published
schemas/care-update-claims.v1.json; and the update's own schema and examples."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from jsonschema import Draft202012Validator

from tests.flows.test_webhooks_contract import recipients  # noqa: F401  (the fixture)
from tests.helpers.acknowledgements import released
from tests.helpers.updates import NOTE, from_service, shared

ROOT = Path(__file__).resolve().parents[2]


async def test_care_updates_both_ways_are_what_the_contract_says(recipients, world, example, clock):  # noqa: F811
    response = await world.post_notice(released(example, clock.today - timedelta(days=5)))
    assert response.status_code == 202, response.text
    sent = {r["organisation_code"]: r["message_id"] for r in response.json()["recipients"]}
    await recipients.deliver(2)  # the two disclosures

    body = from_service(clock.today - timedelta(days=1))
    answer = await shared(world, sent["SMS-LEEDS"], body)
    [probation] = await recipients.deliver(1)
    assert (probation.code, probation.type) == ("N07", "care_update.created")
    assert probation.data["message_id"] == answer["recipients"][0]["message_id"]
    assert probation.claims["update"]["id"] == answer["id"]
    assert probation.claims["disclosure"]["safeguarding"] == body["safeguarding"]
    assert NOTE not in json.dumps(probation.claims)

    recall = {"recall": {"date": clock.today.isoformat(), "kind": "recalled"}}
    await shared(world, sent["N07"], recall, code="N07")
    [service] = await recipients.deliver(1)
    assert (service.code, service.type) == ("SMS-LEEDS", "care_update.created")
    assert service.claims["disclosure"] == recall


def test_the_published_update_schema_holds_its_examples():
    schema = json.loads((ROOT / "schemas" / "care-update.v1.json").read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    assert len(schema["examples"]) == 2
    for example in schema["examples"]:
        validator.validate(example)
    assert list(validator.iter_errors({"engagement": [], "surprise": 1}))
