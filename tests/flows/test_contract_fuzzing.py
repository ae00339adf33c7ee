"""The whole OpenAPI contract, fuzzed with schemathesis against the app, on both databases.

Every operation is called with the token of the organisation kind it is for and, in turn, with
another kind's token or none: no answer may be a 5xx, stray from the contract (status code,
content type, headers, body schema) or accept what the schema refuses; a secured operation
serves nothing to a call without a token. The documented examples run first (their dates moved to
today: intake refuses release dates far from the day a notice arrives), so the success paths
are reached; then the boundary cases and a bounded number of generated ones, the same on every
run (derandomized), so that the suite stays quick and a failure is reproducible.

The app runs in an event loop of its own (hypothesis calls each case synchronously), one per
database for the whole module, in a database of its own, which the cases fill as they go.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from app import contract
from app.access import organisations as admin
from app.main import create_app
from app.notices import examples
from app.settings import Settings
from tests.conftest import ISSUER, ORGANISATIONS, World, migrated_postgres_database

# Whom each operation is for, by path (the rest need no token).
FOR = {
    "/v1/organisations": "OPS",
    "/v1/release-notices": "MDI",
    "/v1/people": "MDI",
    "/v1/subscriptions": "N07",
    "/v1/messages": "N07",
    "/v1/encryption-key": "N07",
    "/v1/audit": "AUDIT",
}
# A code of each organisation kind, and no token at all (None), taken in turn.
CALLERS = ["MDI", "N07", "SMS-LEEDS", "AUDIT", "OPS", None]
# Left out, saying why: the contract's 422 also covers rules no JSON Schema can state (a release
# date near the day the notice arrives, a key that must parse, a proof within the log's tree),
# so a schema-valid request may rightly be refused; and the test sends real tokens itself,
# checking the refusal of a missing one directly, where ignored_auth assumes generated ones.
LEFT_OUT = [positive_data_acceptance, ignored_auth]


def _document() -> dict[str, Any]:
    """The app's own OpenAPI document (the committed one, as test_contract checks), its example
    dates moved to today."""
    return examples.moved(contract.openapi(), datetime.now(UTC).date() - examples.WRITTEN_ON)


# The coverage phase makes every boundary case of every field, some 660 for a release notice:
# the notice's own tests (test_intake_*) cover its fields; here its examples and a bounded number
# of generated ones run.
NOTICE_BODIES = "^/v1/release-notices(/[^/]+/amendments)?$"
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {"include-path-regex": NOTICE_BODIES, "phases": {"coverage": {"enabled": False}}}
        ]
    }
)
schema = schemathesis.openapi.from_dict(_document(), config=CONFIG)


@dataclass
class Exchange:
    portal: BlockingPortal
    world: World
    tokens: dict[str, str]
    turn: Iterator[str | None]

    def send(self, case: Any, code: str | None) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[code]}"} if code else {}
        request = case.as_transport_kwargs(base_url=ISSUER, headers=headers)
        if not request.get("cookies"):
            request.pop("cookies", None)
        if isinstance(request.get("data"), bytes | str):  # httpx takes raw bodies as content
            request["content"] = request.pop("data")
        return self.portal.call(lambda: self.world.api.request(**request))


async def _start(settings: Settings, stack: AsyncExitStack) -> tuple[World, dict[str, str]]:
    app = create_app(settings)
    await stack.enter_async_context(app.router.lifespan_context(app))
    api = await stack.enter_async_context(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)
    )
    world = World(api, app.state.sessions, app.state.data_keys, app.state.signing)
    async with world.sessions() as session, session.begin():
        for kind, code in ORGANISATIONS:
            organisation = await admin.add_organisation(
                session, kind=kind, code=code, name=f"{code} test", now=datetime.now(UTC)
            )
            world.ids[code] = organisation.id
    return world, {code: await world.token(code) for code in CALLERS if code}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def fuzzed_database(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzzed") / "exchange.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        yield from migrated_postgres_database("exchange_fuzzed")


@pytest.fixture(scope="module")
def exchange(fuzzed_database: str, tmp_path_factory) -> Iterator[Exchange]:
    settings = Settings(
        database_url=fuzzed_database,
        data_dir=Path(tmp_path_factory.mktemp("fuzzed-data")),
        issuer=ISSUER,
        embedded_worker=False,
    )
    with start_blocking_portal() as portal:
        stack = AsyncExitStack()
        try:
            world, tokens = portal.call(_start, settings, stack)
            yield Exchange(portal, world, tokens, itertools.cycle(CALLERS))
        finally:
            portal.call(stack.aclose)


def _about_credentials(case: Any) -> bool:
    about = getattr(case.meta.phase.data, "parameter", None) if case.meta else None
    return (about or "").lower() == "authorization"


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_the_contract(case, exchange: Exchange) -> None:
    path = case.operation.path
    owner = next((code for prefix, code in FOR.items() if path.startswith(prefix)), None)
    other = next(exchange.turn)
    callers = [other, owner] if other != owner else [owner]
    if _about_credentials(case):  # a case that drops or mangles the token is sent as it is
        callers = [None]
    for code in callers:
        response = exchange.send(case, code)
        case.validate_response(response, excluded_checks=LEFT_OUT)
        if owner and code is None:  # a secured operation serves nothing without a token
            assert not 200 <= response.status_code < 300, response.text


# --- the documented examples, each accepted as it stands -------------------------------------


def _example(name: str) -> dict[str, Any]:
    [body] = schema.raw_schema["components"]["schemas"][name]["examples"]
    return body


async def test_every_documented_request_body_that_can_be_accepted_is(world) -> None:
    """The examples are what the fuzzing's success paths start from, and what a developer
    copies: each one, moved to today, is accepted where what it names exists. (The
    subscription's URL is an example domain, which resolves nowhere: a loopback one stands in.)"""
    notice = await world.post_notice(_example("ReleaseNotice"))
    assert notice.status_code == 202, notice.text
    [n07] = [r for r in notice.json()["recipients"] if r["organisation_code"] == "N07"]
    message = f"/v1/messages/{n07['message_id']}"
    subscribed = await world.api.post(
        "/v1/subscriptions",
        json={"url": "http://127.0.0.1:9/hooks"},
        headers=await world.headers("N07"),
    )
    subscription = f"/v1/subscriptions/{subscribed.json()['id']}"
    answers = [
        ("OrganisationIn", "POST", "/v1/organisations", "OPS"),
        ("ClientIn", "POST", "/v1/organisations/N07/clients", "OPS"),
        ("ConsentIn", "POST", "/v1/people/A1234BC/consents", "MDI"),
        ("AcknowledgementIn", "POST", f"{message}/acknowledgements", "N07"),
        ("RedeliveryIn", "POST", f"{message}/redeliver", "N07"),
        ("RecoveryIn", "POST", f"{subscription}/recover", "N07"),
        ("SubscriptionSecretRotationIn", "POST", f"{subscription}/secret-rotation", "N07"),
        ("SubscriptionChange", "PATCH", subscription, "N07"),
        ("EncryptionKeyIn", "PUT", "/v1/encryption-key", "N07"),
        (
            "CancellationIn",
            "POST",
            f"/v1/release-notices/{notice.json()['id']}/cancellation",
            "MDI",
        ),
    ]
    for name, method, path, code in answers:
        response = await world.api.request(
            method, path, json=_example(name), headers=await world.headers(code)
        )
        assert response.status_code < 300, (name, response.text)
        if name == "ClientIn":
            rotated = await world.api.post(
                f"{path}/{response.json()['client_id']}/secret",
                json=_example("SecretRotationIn"),
                headers=await world.headers(code),
            )
            assert rotated.status_code == 200, rotated.text
