"""What recipients are actually sent satisfies the published contract, on both databases.

Notices, consents, withdrawals, amendments and cancellations go through the API; the real worker
delivers to a real loopback receiver. Each delivery is checked as a recipient would check it,
with the committed files and independent libraries, never the models that made it: its headers
against the OpenAPI webhook's parameters and its Standard Webhooks signature (standardwebhooks),
its body against the webhook's request body schema, its JWS with jwcrypto against the served
JWKS (decrypted first with jwcrypto when it is a JWE), and its claims against
schemas/<kind>-claims.v1.json, formats checked.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError
from jwcrypto import jwk, jws
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from app.messages.kinds import TYP
from app.messages.sequencer import number
from app.messages.webhook import EVENT_TYPES
from app.storage.models import Deadline
from app.worker.loop import http_client, run_once
from app.worker.transactions import alert_overdue
from tests.helpers.consents import CLINICAL, SMS, carried, consent, record, withdraw
from tests.helpers.encryption import Recipient, register
from tests.helpers.receiver import Received, running_receiver

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "http://exchange.test"
OPENAPI = json.loads((ROOT / "openapi" / "openapi.json").read_text())
FORMATS = Draft202012Validator.FORMAT_CHECKER
# Each event type: the JWS typ of the message it carries, and the schema of its claims.
EVENTS = {
    "disclosure.created": ("disclosure+jwt", "disclosure-claims.v1.json"),
    "notice.cancelled": ("cancellation+jwt", "cancellation-claims.v1.json"),
    "consent.withdrawn": ("consent-withdrawn+jwt", "consent-withdrawn-claims.v1.json"),
    "receipt.overdue": ("receipt-overdue+jwt", "receipt-overdue-claims.v1.json"),
    "engagement.overdue": ("engagement-overdue+jwt", "engagement-overdue-claims.v1.json"),
    "engagement.at_risk": ("engagement-at-risk+jwt", "engagement-at-risk-claims.v1.json"),
    "care_update.created": ("care-update+jwt", "care-update-claims.v1.json"),
}
NOTICES = "/v1/release-notices"


def published(name: str) -> Draft202012Validator:
    schema = json.loads((ROOT / "schemas" / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


CLAIMS = {event: published(name) for event, (_, name) in EVENTS.items()}
NOTICE = published("release-notice.v1.json")


def in_openapi(pointer: str) -> Draft202012Validator:
    """A validator for the schema at this pointer of the OpenAPI document, whose $refs it
    resolves in the document itself."""
    resource = Resource.from_contents(OPENAPI, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:openapi", resource)
    return Draft202012Validator(
        {"$ref": f"urn:openapi#{pointer}"}, registry=registry, format_checker=FORMATS
    )


@dataclass(frozen=True)
class Delivered:
    code: str  # the recipient
    type: str
    data: dict[str, Any]
    claims: dict[str, Any]


@dataclass
class Recipients:
    """N07 and SMS-LEEDS, each subscribed to its own path of one loopback receiver."""

    world: Any
    settings: Any
    jwks: jwk.JWKSet
    secrets: dict[str, str] = field(default_factory=dict)
    keys: dict[str, Recipient] = field(default_factory=dict)  # those that registered one
    seen: int = 0
    receiver: Any = None

    async def deliver(self, expected: int) -> list[Delivered]:
        """One worker pass, which must attempt `expected` deliveries: each one checked."""
        async with http_client() as client:
            sent = await run_once(
                self.world.sessions, client, self.settings, data_keys=self.world.data_keys
            )
        assert sent == expected
        received = self.receiver.wait_for(self.seen + expected)[self.seen :]
        self.seen += expected
        return sorted((self.check(r) for r in received), key=lambda d: (d.code, d.type))

    def check(self, request: Received) -> Delivered:
        code = request.path.rsplit("/", 1)[-1]
        event = json.loads(request.body)
        operation = f"/webhooks/{event['type']}/post"
        assert request.headers["content-type"] == "application/json"
        for parameter in OPENAPI["webhooks"][event["type"]]["post"]["parameters"]:
            assert parameter["in"] == "header" and parameter["required"]
            value: Any = request.headers[parameter["name"]]
            if parameter["schema"]["type"] == "integer":
                value = int(value)
            Draft202012Validator(parameter["schema"], format_checker=FORMATS).validate(value)
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
        assert Webhook(self.secrets[code]).verify(request.body, request.headers) == event
        in_openapi(f"{operation}/requestBody/content/application~1json/schema").validate(event)
        data = event["data"]
        assert request.headers["webhook-id"] == data["message_id"]
        compact = self.keys[code].decrypt(data["jwe"])[1] if code in self.keys else data["jws"]
        typ, _ = EVENTS[event["type"]]
        claims = self.verified(compact, typ)
        CLAIMS[event["type"]].validate(claims)
        assert claims["aud"] == code and claims["iss"] == ISSUER
        assert (claims["jti"], claims["notice_id"]) == (data["message_id"], data["notice_id"])
        assert claims.get("supersedes") == data.get("supersedes")
        return Delivered(code, event["type"], data, claims)

    def verified(self, compact: str, typ: str) -> dict[str, Any]:
        token = jws.JWS()
        token.deserialize(compact)
        header = token.jose_header
        assert (header["alg"], header["typ"]) == ("ES256", typ)
        token.verify(self.jwks.get_key(header["kid"]), alg="ES256")
        return json.loads(token.payload)


@pytest.fixture
async def recipients(world, settings):
    jwks = jwk.JWKSet.from_json((await world.api.get("/.well-known/jwks.json")).text)
    found = Recipients(world, settings, jwks)
    with running_receiver() as receiver:
        found.receiver = receiver
        for code in ("N07", "SMS-LEEDS"):
            response = await world.api.post(
                "/v1/subscriptions",
                json={"url": f"{receiver.url}/{code}"},
                headers=await world.headers(code),
            )
            assert response.status_code == 201, response.text
            found.secrets[code] = response.json()["secret"]
        yield found


async def posted(world, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await world.api.post(path, json=body, headers=await world.headers("MDI"))
    assert response.status_code == 202, response.text
    return response.json()


def messages(answer: dict[str, Any], kind: str = "disclosure") -> dict[str, str]:
    return {
        r["organisation_code"]: r["message_id"] for r in answer["recipients"] if r["kind"] == kind
    }


def with_consents(example: dict[str, Any], sms: str, clinical: str) -> dict[str, Any]:
    body = copy.deepcopy(example)
    decisions = {SMS: sms, CLINICAL: clinical}
    for item in body["consent"]:
        item["decision"] = decisions[item["scope"]]
    return body


async def test_with_consent_each_recipient_kind_gets_what_its_schema_describes(
    recipients, world, example
):
    first = await posted(world, NOTICES, example)
    probation, treatment = await recipients.deliver(2)

    assert (probation.code, probation.type) == ("N07", "disclosure.created")
    assert probation.claims["disclosure"]["person"] == example["person"]
    assert "clinical_notes" not in probation.claims["disclosure"]["nps_use"]["treatment_in_custody"]
    assert "transformed" not in probation.claims and "supersedes" not in probation.data
    assert (treatment.code, treatment.type) == ("SMS-LEEDS", "disclosure.created")
    person = treatment.claims["disclosure"]["person"]
    assert person["date_of_birth"] == example["person"]["date_of_birth"][:7]  # its month only
    assert "pnc_number" not in person
    assert treatment.claims["transformed"] == [
        {"path": "/person/date_of_birth", "rule": "sms.date-of-birth-month", "transform": "month"}
    ]
    assert {m["path"] for m in treatment.claims["manifest"]} == {"/person/pnc_number"}
    assert messages(first) == {
        "N07": probation.data["message_id"],
        "SMS-LEEDS": treatment.data["message_id"],
    }
    # What the treatment service gets is not a notice: the notice's schema refuses its month.
    with pytest.raises(ValidationError, match="is not a 'date'"):
        NOTICE.validate({**example, "person": person})


async def test_without_consent_probation_still_gets_safeguarding_and_the_service_nothing(
    recipients, world, example
):
    body = with_consents(example, sms="refused", clinical="refused")
    body["safeguarding"] = {"children_contact": "no", "vulnerable_adults_contact": "yes"}
    answer = await posted(world, NOTICES, body)
    assert messages(answer)["SMS-LEEDS"] is None
    [probation] = await recipients.deliver(1)

    assert probation.code == "N07"
    assert probation.claims["disclosure"]["safeguarding"] == body["safeguarding"]


async def test_a_notice_with_only_what_is_required_is_disclosed_as_described(
    recipients, world, example
):
    required = {
        "person": {k: example["person"][k] for k in NOTICE.schema["$defs"]["Person"]["required"]},
        "release": {
            "prison_code": "MDI",
            **{k: example["release"][k] for k in ("release_date", "reason")},
        },
        "release_plan": {"probation_provider": "N07"},
        "nps_use": {"status": "past"},
        "safeguarding": {"children_contact": "unknown", "vulnerable_adults_contact": "no"},
    }
    await posted(world, NOTICES, required)
    [probation] = await recipients.deliver(1)
    assert probation.claims["disclosure"] == required and probation.claims["manifest"] == []


async def test_clinical_consent_given_then_refused_and_withdrawn(recipients, world, example):
    """Given, the clinical notes go to probation; refused before delivery, that message is
    revoked and a replacement without them is sent; the treatment service's consent withdrawn
    after delivery, it is told to stop using what relied on it."""
    first = await posted(world, NOTICES, with_consents(example, sms="given", clinical="given"))
    await record(world, consent(CLINICAL, "refused"))
    probation, treatment = await recipients.deliver(2)

    assert probation.data["supersedes"] == messages(first)["N07"]  # never sent, replaced
    assert "clinical_notes" not in probation.claims["disclosure"]["nps_use"]["treatment_in_custody"]
    assert "supersedes" not in treatment.data
    given = await carried(world, SMS)
    assert (await withdraw(world, given["id"])).status_code == 200
    [told] = await recipients.deliver(1)

    assert (told.code, told.type) == ("SMS-LEEDS", "consent.withdrawn")
    assert told.data["supersedes"] == treatment.data["message_id"]
    assert (told.claims["scope"], told.claims["supersedes"]) == (SMS, treatment.data["message_id"])


async def test_an_amendment_replaces_each_message_and_a_recipient_left_out_is_told(
    recipients, world, example
):
    first = await posted(world, NOTICES, example)
    before = {d.code: d.data["message_id"] for d in await recipients.deliver(2)}
    corrected = copy.deepcopy(example)
    corrected["safeguarding"]["concerns"] = "Contact with the children only under supervision."
    second = await posted(world, f"{NOTICES}/{first['id']}/amendments", corrected)
    replaced = await recipients.deliver(2)

    assert [(d.code, d.type, d.data["supersedes"]) for d in replaced] == [
        ("N07", "disclosure.created", before["N07"]),
        ("SMS-LEEDS", "disclosure.created", before["SMS-LEEDS"]),
    ]
    for delivered in replaced:
        assert delivered.claims["disclosure"]["safeguarding"] == corrected["safeguarding"]
    after = {d.code: d.data["message_id"] for d in replaced}
    del corrected["release_plan"]["substance_misuse_service"]
    del corrected["release_plan"]["treatment_appointment"]
    await posted(world, f"{NOTICES}/{second['id']}/amendments", corrected)
    probation, treatment = await recipients.deliver(2)

    assert (probation.type, probation.data["supersedes"]) == ("disclosure.created", after["N07"])
    assert (treatment.type, treatment.claims["reason"]) == (
        "notice.cancelled",
        "amended_not_shared",
    )
    assert treatment.claims["supersedes"] == after["SMS-LEEDS"]


@pytest.mark.parametrize("reason", ["entered_in_error", "release_cancelled"])
async def test_a_cancellation_tells_each_holder(recipients, world, example, reason):
    first = await posted(world, NOTICES, example)
    before = {d.code: d.data["message_id"] for d in await recipients.deliver(2)}
    await posted(world, f"{NOTICES}/{first['id']}/cancellation", {"reason": reason})
    # Entered in error, the consent it carried was never given: the service is told that too.
    told = await recipients.deliver(3 if reason == "entered_in_error" else 2)

    cancelled = [
        (d.code, d.claims["reason"], d.claims["supersedes"])
        for d in told
        if d.type == "notice.cancelled"
    ]
    assert cancelled == [(code, reason, before[code]) for code in ("N07", "SMS-LEEDS")]
    withdrawn = [(d.code, d.claims["scope"]) for d in told if d.type == "consent.withdrawn"]
    assert withdrawn == ([("SMS-LEEDS", SMS)] if reason == "entered_in_error" else [])


async def test_an_encrypted_message_is_a_jwe_of_a_message_its_schema_describes(
    recipients, world, example
):
    recipients.keys["SMS-LEEDS"] = Recipient()
    await register(world, "SMS-LEEDS", recipients.keys["SMS-LEEDS"])
    await posted(world, NOTICES, example)
    probation, treatment = await recipients.deliver(2)

    assert "jws" in probation.data and "jwe" not in probation.data
    assert "jwe" in treatment.data and "jws" not in treatment.data
    assert (
        treatment.claims["disclosure"]["person"]["date_of_birth"]
        == example["person"]["date_of_birth"][:7]
    )


def test_the_formats_the_contract_uses_are_checked() -> None:
    """jsonschema checks "date-time" only with rfc3339-validator installed, and skips any format
    it has no checker for: without this, "formats checked" above would be silently untrue."""
    assert {"date", "date-time", "uuid"} <= set(FORMATS.checkers)
    assert not FORMATS.conforms("1994-04", "date-time")
    assert FORMATS.conforms("2026-12-08T10:00:00Z", "date-time")


def test_every_event_the_exchange_sends_is_a_documented_webhook() -> None:
    assert set(OPENAPI["webhooks"]) == set(EVENT_TYPES.values()) == set(EVENTS)
    assert {typ for typ, _ in EVENTS.values()} == set(TYP.values())
    for kind, event in EVENT_TYPES.items():
        typ, claims = EVENTS[event]
        operation = OPENAPI["webhooks"][event]["post"]
        assert TYP[kind] == typ and f"`schemas/{claims}`" in operation["description"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        name = body["$ref"].rsplit("/", 1)[1]
        assert OPENAPI["components"]["schemas"][name]["properties"]["type"]["const"] == event
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        answers = operation["responses"]
        assert set(answers) == {"2XX", "410", "429", "503", "default"}
        assert all("Retry-After" in answers[status]["headers"] for status in ("429", "503"))


async def test_alerts_are_delivered_as_their_contract_describes(recipients, world, example):
    """An engagement alert, delivered by a real worker pass to a real receiver: its headers,
    body and claims as the OpenAPI webhooks and the published claims schema describe them."""
    answer = await posted(world, NOTICES, example)
    sent = {d.code: d.data["message_id"] for d in await recipients.deliver(2)}
    async with world.sessions() as session, session.begin():  # the engagement window has ended
        past = datetime.now(UTC) - timedelta(minutes=1)
        await session.execute(
            update(Deadline).where(Deadline.kind == "engagement").values(due_at=past)
        )
    assert await alert_overdue(world.sessions, world.signing, now=datetime.now(UTC)) == 1
    async with world.sessions() as session, session.begin():
        await number(session)
    told = await recipients.deliver(2)
    assert [(d.code, d.type) for d in told] == [
        ("N07", "engagement.overdue"),
        ("SMS-LEEDS", "engagement.overdue"),
    ]
    for d in told:
        assert d.claims["deadline"]["owed_by"] == "SMS-LEEDS"
        assert d.claims["concerning"] == sent["SMS-LEEDS"]
        assert d.claims["series_id"] == answer["series_id"]
