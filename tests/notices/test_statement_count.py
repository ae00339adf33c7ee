"""How many SQL statements accepting, amending and cancelling a notice send, counted on the real
engine on both databases (a count, not a timing: the same on any machine). Each use case reads
what it needs, plans, then writes each table once (app/notices/intake.py), on PostgreSQL all
in one statement (app/storage/batch.py)."""

from __future__ import annotations

import copy
import uuid

from tests.helpers.statements import statements

RECIPIENTS = ("N07", "SMS-LEEDS")


async def _subscribed(world) -> dict[str, str]:
    for code in RECIPIENTS:
        response = await world.api.post(
            "/v1/subscriptions",
            json={"url": f"http://127.0.0.1:9/{code}"},
            headers=await world.headers(code),
        )
        assert response.status_code == 201, response.text
    return await world.headers("MDI") | {"idempotency-key": str(uuid.uuid4())}


def _writes_after_reads(seen: list[str]) -> None:
    """Once the notice's row is written, nothing more is read (a write's own lock aside)."""
    first = next(i for i, s in enumerate(seen) if "INSERT INTO release_notice" in s)
    assert not [s for s in seen[first:] if s.startswith("SELECT")], seen[first:]


async def test_a_first_version_reads_then_writes_each_table_once(
    app, world, unnumbered_api, example
):
    headers = await _subscribed(world)
    with statements(app) as seen:  # the request alone: the sequencer numbers after its commit
        response = await unnumbered_api.post("/v1/release-notices", json=example, headers=headers)
    assert response.status_code == 202, response.text
    assert all(r["message_id"] for r in response.json()["recipients"])
    print("first version", len(seen), *seen, sep="\n  ")
    _writes_after_reads(seen)
    # The caller's token, the key's claim and its answer, 4 reads (recipients, the person's
    # lock, their consents, the subscriptions), and the writes: on PostgreSQL one statement for
    # every table (app/storage/batch.py), on SQLite one per table (8: the deadlines' too).
    postgresql = app.state.sessions.kw["bind"].dialect.name == "postgresql"
    assert len(seen) <= (8 if postgresql else 15), seen
    writes = [s for s in seen if "INSERT INTO" in s and "idempotency_key" not in s]
    assert len(writes) == (1 if postgresql else 8), writes
    assert any("INSERT INTO deadline" in s for s in writes) or postgresql, writes


async def test_an_amendment_and_a_cancellation_counted(app, world, unnumbered_api, example):
    headers = await _subscribed(world)
    first = await world.api.post("/v1/release-notices", json=example, headers=headers)
    assert first.status_code == 202, first.text
    notice_id = first.json()["id"]
    amended = copy.deepcopy(example)
    amended["consent"] = amended["consent"][1:]  # drops the consent the treatment service had
    with statements(app) as seen:
        response = await unnumbered_api.post(
            f"/v1/release-notices/{notice_id}/amendments",
            json=amended,
            headers=headers | {"idempotency-key": str(uuid.uuid4())},
        )
    assert response.status_code == 202, response.text
    print("amendment", len(seen), *seen, sep="\n  ")
    latest = response.json()["id"]
    with statements(app) as seen:
        response = await unnumbered_api.post(
            f"/v1/release-notices/{latest}/cancellation",
            json={"reason": "entered_in_error"},
            headers=headers | {"idempotency-key": str(uuid.uuid4())},
        )
    assert response.status_code == 202, response.text
    print("cancellation", len(seen), *seen, sep="\n  ")
