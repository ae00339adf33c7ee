"""/metrics is for operators: an access token with the `metrics:read` scope, as Prometheus's
`oauth2` client credentials get one from an operator's client that holds that scope alone. Such
a client can do nothing else; anyone without the scope is refused with a problem, and learns
nothing."""

from __future__ import annotations

import pytest

from tests.conftest import ORGANISATIONS

PROBLEM = "application/problem+json"
FORM = {"grant_type": "client_credentials"}


async def test_without_a_token_metrics_are_refused(api) -> None:
    response = await api.get("/metrics")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "exchange_" not in response.text


async def test_a_token_that_is_not_valid_is_refused(api) -> None:
    response = await api.get("/metrics", headers={"authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


def assert_forbidden(response, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == PROBLEM
    assert f"'{scope}'" in response.json()["detail"]
    assert "exchange_" not in response.text


@pytest.mark.parametrize(
    "code", {kind: code for kind, code in ORGANISATIONS if kind != "operator"}.values()
)
async def test_a_token_of_any_other_kind_is_forbidden(world, code) -> None:
    response = await world.api.get("/metrics", headers=await world.headers(code))
    assert_forbidden(response, "metrics:read")


async def token(world, scopes: str | None) -> dict[str, str]:
    """The headers of a token for a new operator client holding these scopes (None: all)."""
    client = await world.credentials("OPS", scopes)
    response = await world.api.post("/oauth/token", data=FORM, auth=client)
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def test_a_metrics_only_client_gets_the_metrics_and_nothing_else(world) -> None:
    await world.api.post("/oauth/token", data=FORM)  # a failure, counted
    prometheus = await token(world, "metrics:read")
    response = await world.api.get("/metrics", headers=prometheus)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert 'exchange_client_auth_failures_total{reason="missing"} 1.0' in response.text

    # What an operator's full client may do, this one may not: its credential is no key to
    # the exchange.
    refused = [
        await world.api.post(
            "/v1/organisations/N07/clients", json={"scopes": "messages:read"}, headers=prometheus
        ),
        await world.api.get("/v1/organisations", headers=prometheus),
        await world.api.post("/v1/organisations/N07/disable", headers=prometheus),
    ]
    for response in refused:
        assert_forbidden(response, "admin")
    assert len(await world.sql("SELECT id FROM api_client")) == 1  # Prometheus's own


async def test_an_operator_client_holds_both_scopes_unless_narrowed(world) -> None:
    full = await token(world, None)
    assert (await world.api.get("/metrics", headers=full)).status_code == 200
    assert (await world.api.get("/v1/organisations", headers=full)).status_code == 200

    admin_only = await token(world, "admin")
    assert (await world.api.get("/v1/organisations", headers=admin_only)).status_code == 200
    assert_forbidden(await world.api.get("/metrics", headers=admin_only), "metrics:read")


async def test_only_an_operator_client_may_hold_the_metrics_scope(world) -> None:
    response = await world.api.post(
        "/v1/organisations/N07/clients",
        json={"scopes": "metrics:read"},
        headers=await token(world, "admin"),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
