"""How many SQL statements accepting, amending and cancelling a notice send, counted on the real
engine on both databases (a count, not a timing: the same on any machine). Each use case reads
what it needs, plans, then writes each table once (app/notices/intake.py)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

RECIPIENTS = ("N07", "SMS-LEEDS")


@contextmanager
def statements(app) -> Iterator[list[str]]:
    """Every statement the app's engine sends while the block runs."""
    engine = app.state.sessions.kw["bind"].sync_engine
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split())[:160])

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def _subscribed(world) -> dict[str, str]:
    for code in RECIPIENTS:
        response = await world.api.post(
            "/v1/subscriptions",
            json={"url": f"http://127.0.0.1:9/{code}"},
            headers=await world.headers(code),
        )
        assert response.status_code == 201, response.text
    return await world.headers("MDI") | {"idempotency-key": str(uuid.uuid4())}


async def test_a_first_version_costs_at_most_six_statements(app, world, example):
    headers = await _subscribed(world)
    with statements(app) as seen:
        response = await world.api.post("/v1/release-notices", json=example, headers=headers)
    assert response.status_code == 202, response.text
    assert all(r["message_id"] for r in response.json()["recipients"])
    print("first version", len(seen), *seen, sep="\n  ")
    assert len(seen) <= 6, seen
