"""/metrics is for operators: an access token with the `admin` scope, as Prometheus's `oauth2`
client credentials get one. Anyone else is refused with a problem, and learns nothing."""

from __future__ import annotations

import pytest

from tests.conftest import ORGANISATIONS

PROBLEM = "application/problem+json"


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


@pytest.mark.parametrize(
    "code", {kind: code for kind, code in ORGANISATIONS if kind != "operator"}.values()
)
async def test_a_token_without_the_admin_scope_is_forbidden(world, code) -> None:
    response = await world.api.get("/metrics", headers=await world.headers(code))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert "'admin'" in response.json()["detail"]
    assert "exchange_" not in response.text


async def test_an_operator_token_gets_the_metrics(world) -> None:
    await world.api.post("/oauth/token", data={"grant_type": "client_credentials"})  # counted
    response = await world.api.get("/metrics", headers=await world.headers("OPS"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert 'exchange_client_auth_failures_total{reason="missing"} 1.0' in response.text
