"""No personal data in logs: the whole flow, good and bad input, logged at DEBUG."""

from __future__ import annotations

import logging

import httpx
import pytest
import sqlalchemy.exc
from sqlalchemy import text

from app.api.problems import ContainUnexpected
from app.cli import diagnostics as logs
from app.worker.loop import http_client, run_once
from tests.helpers.documents import personal_values
from tests.helpers.receiver import running_receiver


@pytest.fixture(autouse=True)
def exchange_logging(caplog: pytest.LogCaptureFixture) -> None:
    """As the `exchange` command sets logging up, then everything else at DEBUG."""
    logs.quiet_value_loggers()
    caplog.set_level(logging.DEBUG)


async def test_the_flow_logs_no_personal_data(world, example, settings, caplog) -> None:
    with running_receiver(script=[500]) as receiver:
        await world.api.post(
            "/v1/subscriptions", json={"url": receiver.url}, headers=await world.headers("N07")
        )
        assert (await world.post_notice(example)).status_code == 202
        broken = {**example, "person": {**example["person"], "noms_number": "Daniel Hughes"}}
        assert (await world.post_notice(broken)).status_code == 422
        async with http_client() as client:
            await run_once(world.sessions, client, settings, data_keys=world.data_keys)
    assert caplog.records, "expected the worker to log its attempt"
    for value in personal_values(example):
        assert value not in caplog.text


async def test_an_unexpected_error_is_a_bare_500_problem_and_logs_no_values(
    world, example, caplog
) -> None:
    """A database error's message carries the SQL parameters (the notice itself): never logged."""
    headers = await world.headers("MDI")
    await rename("release_notice", "release_notice_away", world)
    try:
        response = await world.api.post("/v1/release-notices", json=example, headers=headers)
    finally:
        await rename("release_notice_away", "release_notice", world)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The exchange failed to answer."
    assert "unhandled" in caplog.text
    for value in personal_values(example):
        assert value not in caplog.text
        assert value not in response.text


async def rename(table: str, to: str, world) -> None:
    async with world.sessions() as session, session.begin():
        await session.execute(text(f"ALTER TABLE {table} RENAME TO {to}"))


async def test_a_database_too_busy_to_lend_a_connection_is_a_503_to_retry(caplog) -> None:
    """When every pooled connection stays busy past the pool's wait (SQLAlchemy's TimeoutError,
    as under the benchmark's overload), nothing was committed: 503 with Retry-After, not 500."""

    async def overloaded(scope, receive, send) -> None:
        raise sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached")

    transport = httpx.ASGITransport(app=ContainUnexpected(overloaded))
    async with httpx.AsyncClient(transport=transport, base_url="http://exchange.test") as client:
        response = await client.post("/v1/release-notices", json={})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert response.json()["title"] == "Busy"
    assert "database busy (TimeoutError)" in caplog.text
