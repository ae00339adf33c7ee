"""Personal data at rest and its end, on both databases: nothing is stored in plain, data keys
rotate, and retention purges a notice's data past its period while its log and its place in every
inbox stay. (Migration 0003, which seals older data, is in tests/storage/test_migration_0003.py.)
The `exchange` command runs its own event loop, so it is called in a thread.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam, select, text

from app.consent.decisions import body_of
from app.keys.sealing import SealError, load_data_keys
from app.main import create_app
from app.messages.outbox import jws_of
from app.notices import retention
from app.storage.log_tables import AuditEntry
from app.storage.models import IdempotencyKey, Message
from app.worker.loop import http_client, purge_expired, run_once
from tests.helpers.documents import personal_values
from tests.helpers.receiver import closed_port, running_receiver
from tests.helpers.retention import backdate, leaks, readable, stored

ISSUER = "http://exchange.test"
CONCERNS = "Plans to visit his two children (aged 4 and 7) on the day of release."


async def post(world, body: Any, path: str = "/v1/release-notices", **headers: str) -> dict:
    headers = {**await world.headers("MDI"), **headers}
    response = await world.api.post(path, json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


async def subscribe(world, code: str, url: str) -> None:
    response = await world.api.post(
        "/v1/subscriptions", json={"url": url}, headers=await world.headers(code)
    )
    assert response.status_code == 201, response.text


async def audit_rows(world) -> list[tuple]:
    async with world.sessions() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(e.id, e.action, e.notice_id, e.message_id, e.details) for e in rows]


async def verified(api: httpx.AsyncClient, jws: str, audience: str) -> dict[str, Any]:
    keys = (await api.get("/.well-known/jwks.json")).json()["keys"]
    (key,) = [jwt.PyJWK(k) for k in keys if k["kid"] == jwt.get_unverified_header(jws)["kid"]]
    return jwt.decode(jws, key, algorithms=["ES256"], audience=audience, issuer=ISSUER)


async def inbox(world, api: httpx.AsyncClient | None = None) -> list[dict[str, Any]]:
    response = await (api or world.api).get("/v1/messages", headers=await world.headers("N07"))
    assert response.status_code == 200, response.text
    return response.json()["items"]


def amended(example: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(example)
    body["release"]["accommodation"]["status"] = "settled"
    return body


# --- sealed at rest ------------------------------------------------------------------------------


async def test_no_column_of_any_table_holds_personal_data_in_plain(world, example):
    await subscribe(world, "N07", "http://127.0.0.1:9/hooks")
    # A client may build its Idempotency-Key from personal data: it is not stored as given.
    key = f"{example['person']['noms_number']}-{example['person']['family_name']}"
    first = await post(world, example, **{"idempotency-key": key})
    second = await post(world, amended(example), f"/v1/release-notices/{first['id']}/amendments")
    counts = await world.counts()
    assert all(counts[t] for t in ("disclosure", "message", "delivery", "idempotency_key"))

    assert await leaks(world, personal_values(example)) == []

    # The inbox still gets the JWS, opened and verifiable, with the values in it.
    items = await inbox(world)
    assert [m["notice_id"] for m in items] == [first["id"], second["id"]]
    claims = await verified(world.api, items[-1]["jws"], "N07")
    assert claims["sub"] == example["person"]["noms_number"]
    assert claims["disclosure"]["safeguarding"]["concerns"] == CONCERNS
    assert CONCERNS in readable(items[-1]["jws"])  # so the scan above would have found it

    notice, messages, _ = await stored(world, first["id"])
    assert notice.body_key_id == world.data_keys.current and notice.body_sealed
    assert body_of(world.data_keys, notice) == example
    assert all(m.jws_key_id == world.data_keys.current for m in messages)


async def test_a_sealed_payload_copied_into_another_row_does_not_open_there(world, example):
    n07, sms = (uuid.UUID(r["message_id"]) for r in (await post(world, example))["recipients"])
    copy_over = text(
        "UPDATE message SET jws_sealed = (SELECT jws_sealed FROM message WHERE id = :a) "
        "WHERE id = :b"
    ).bindparams(bindparam("a", type_=sa.Uuid()), bindparam("b", type_=sa.Uuid()))
    async with world.sessions() as session, session.begin():
        await session.execute(copy_over, {"a": sms, "b": n07})
    async with world.sessions() as session:
        moved, original = await session.get_one(Message, n07), await session.get_one(Message, sms)
    assert moved.jws_sealed == original.jws_sealed and moved.jws_key_id == original.jws_key_id
    assert jwt.decode(jws_of(world.data_keys, original), options={"verify_signature": False})
    with pytest.raises(SealError):
        jws_of(world.data_keys, moved)


async def test_rotate_data_seals_new_notices_with_the_new_key_and_old_ones_still_open(
    world, example, settings, run, monkeypatch
):
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(settings.data_dir))  # the app's data keys
    old_key = world.data_keys.current
    before = await post(world, example)

    rotated = await asyncio.to_thread(run, "keys", "rotate-data")
    assert rotated.exit_code == 0, rotated.stderr
    new_key = json.loads(rotated.stdout)["data_key_id"]
    assert new_key != old_key
    assert load_data_keys(settings.sealing_keys_dir, create=False).current == new_key

    restarted = create_app(settings)
    transport = httpx.ASGITransport(app=restarted)
    async with (
        restarted.router.lifespan_context(restarted),
        httpx.AsyncClient(transport=transport, base_url=ISSUER) as api,
    ):
        mdi = await world.headers("MDI")
        response = await api.post("/v1/release-notices", json=example, headers=mdi)
        assert response.status_code == 202, response.text
        after = response.json()
        items = await inbox(world, api)
        assert [m["notice_id"] for m in items] == [before["id"], after["id"]]
        for item in items:  # both open, old key and new
            assert (await verified(api, item["jws"], "N07"))["jti"] == item["id"]

    for notice_id, key in ((before["id"], old_key), (after["id"], new_key)):
        notice, messages, _ = await stored(world, notice_id)
        assert notice.body_key_id == key
        assert {m.jws_key_id for m in messages} == {key}


# --- retention -----------------------------------------------------------------------------------


async def test_purge_erases_an_old_notices_data_and_keeps_its_log(world, example, settings):
    with running_receiver() as receiver:
        await subscribe(world, "N07", receiver.url)
        await subscribe(world, "SMS-LEEDS", f"http://127.0.0.1:{closed_port()}")
        old = await post(world, example, **{"idempotency-key": "old"})
        recent = await post(world, example, **{"idempotency-key": "recent"})
        async with http_client() as client:  # N07 delivered; SMS-LEEDS refused, to be retried
            assert await run_once(world.sessions, client, settings, data_keys=world.data_keys) == 4
    await backdate(world, old["id"], days=91)
    log_before = await audit_rows(world)

    assert await purge_expired(world.sessions, settings) == retention.Purged(1, 2)

    notice, messages, deliveries = await stored(world, old["id"])
    assert (notice.body_sealed, notice.body_key_id) == (None, None)
    assert notice.purged_at is not None
    assert len(messages) == 2
    assert all((m.jws_sealed, m.jws_key_id) == (None, None) for m in messages)
    assert all(m.purged_at == notice.purged_at for m in messages)
    states = sorted((d.state, d.last_error, d.leased_until) for d in deliveries)
    assert states == [("dead", "purged", None), ("delivered", None, None)]
    async with world.sessions() as session:
        keys = (await session.scalars(select(IdempotencyKey.key_sha256))).all()
    assert keys == [world.data_keys.idempotency_ref("recent")]

    log_after = await audit_rows(world)
    assert log_after[: len(log_before)] == log_before  # every earlier entry, unchanged
    [(_, action, notice_id, _, details)] = log_after[len(log_before) :]
    assert (action, notice_id) == ("notice.purged", notice.id)
    assert details == {"messages": sorted(str(m.id) for m in messages), "retention_days": 90}

    kept, kept_messages, kept_deliveries = await stored(world, recent["id"])
    assert kept.purged_at is None and body_of(world.data_keys, kept) == example
    assert all(jws_of(world.data_keys, m) for m in kept_messages)
    assert sorted(d.state for d in kept_deliveries) == ["delivered", "pending"]

    assert await purge_expired(world.sessions, settings) == retention.Purged(0, 0)
    assert await audit_rows(world) == log_after


async def test_an_attempt_in_flight_when_its_notice_is_purged_does_not_revive_it(
    world, example, settings
):
    with running_receiver(script=[500], delay=1.0) as receiver:
        await subscribe(world, "N07", receiver.url)
        notice_id = (await post(world, example))["id"]
        await backdate(world, notice_id, 91)
        async with http_client() as client:
            attempt = asyncio.create_task(
                run_once(world.sessions, client, settings, data_keys=world.data_keys)
            )
            while not (await stored(world, notice_id))[2][0].leased_until:  # claimed: sending
                assert not attempt.done()
                await asyncio.sleep(0.01)
            assert await purge_expired(world.sessions, settings) == retention.Purged(1, 2)
            assert await attempt == 1
        assert [r.answered for r in receiver.requests] == [500]
    [delivery] = (await stored(world, notice_id))[2]
    # The failure came back after the purge: not recorded, and not queued for a retry.
    assert (delivery.state, delivery.last_error, delivery.attempts) == ("dead", "purged", 0)
    assert await world.sql("SELECT id FROM delivery_attempt") == []
    assert [e[1] for e in await audit_rows(world) if e[1].startswith("delivery.")] == [
        "delivery.queued"
    ]


@pytest.mark.parametrize(
    ("days_setting", "old_age", "young_age"), [(None, 91, 89), ("30", 31, 29), ("1", 1.1, 0.9)]
)
async def test_retention_purge_command_uses_the_configured_period(
    world, example, run, monkeypatch, days_setting, old_age, young_age
):
    if days_setting:
        monkeypatch.setenv("EXCHANGE_RETENTION_DAYS", days_setting)
    old, young = await post(world, example), await post(world, example)
    await backdate(world, old["id"], old_age)
    await backdate(world, young["id"], young_age)

    result = await asyncio.to_thread(run, "retention", "purge")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"notices": 1, "messages": 2}
    assert (await stored(world, old["id"]))[0].purged_at is not None
    young_notice, young_messages, _ = await stored(world, young["id"])
    assert young_notice.purged_at is None and young_notice.body_sealed
    assert all(m.purged_at is None and m.jws_sealed for m in young_messages)
    [details] = [e[4] for e in await audit_rows(world) if e[1] == "notice.purged"]
    assert details["retention_days"] == int(days_setting or 90)


async def test_after_purge_the_api_tells_what_happened_without_the_data(
    world, api, example, settings
):
    notices = [await post(world, example) for _ in range(3)]
    purged = notices[1]
    await backdate(world, purged["id"], 100)
    assert (await purge_expired(world.sessions, settings)).notices == 1
    later = await post(world, example)

    items = await inbox(world)
    assert [m["sequence"] for m in items] == [1, 2, 3, 4]  # gap-free, the purged one kept
    assert [m["notice_id"] for m in items] == [n["id"] for n in (*notices, later)]
    assert items[1]["jws"] is None and items[1]["purged_at"] is not None
    for item in (items[0], items[2], items[3]):
        assert item["purged_at"] is None
        assert (await verified(api, item["jws"], "N07"))["notice_id"] == item["notice_id"]
    one = await api.get(f"/v1/messages/{items[1]['id']}", headers=await world.headers("N07"))
    assert one.status_code == 200 and one.json()["jws"] is None

    mdi, path = await world.headers("MDI"), f"/v1/release-notices/{purged['id']}"
    status = await api.get(path, headers=mdi)
    assert status.status_code == 200, status.text
    assert status.json()["purged_at"] is not None and status.json()["status"] == "accepted"
    assert {r["organisation_code"] for r in status.json()["recipients"]} == {"N07", "SMS-LEEDS"}

    before = await world.counts()
    for response in (
        await api.post(f"{path}/amendments", json=amended(example), headers=mdi),
        await api.post(f"{path}/cancellation", json={"reason": "other"}, headers=mdi),
    ):
        assert response.status_code == 409, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert await world.counts() == before


async def test_a_series_whose_first_version_was_purged_can_still_be_amended(
    world, example, settings
):
    first = await post(world, example)
    second = await post(world, amended(example), f"/v1/release-notices/{first['id']}/amendments")
    await backdate(world, first["id"], 100)
    assert (await purge_expired(world.sessions, settings)).notices == 1
    assert (await stored(world, second["id"]))[0].purged_at is None

    third = await post(world, example, f"/v1/release-notices/{second['id']}/amendments")
    assert third["version"] == 3 and third["series_id"] == first["id"]
    items = await inbox(world)
    assert [m["jws"] is None for m in items] == [True, False, False]
    assert items[2]["supersedes"] == items[1]["id"]


async def test_the_worker_purges_on_its_schedule(world, example, settings):
    fast = {"retention_days": 1, "retention_purge_interval_seconds": 0.2, "embedded_worker": True}
    worker_app = create_app(settings.model_copy(update=fast))
    async with worker_app.router.lifespan_context(worker_app):
        old, recent = await post(world, example), await post(world, example)
        await backdate(world, old["id"], 2)  # while the worker runs: one of its passes purges
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (await stored(world, old["id"]))[0].purged_at is None:
            assert loop.time() < deadline, "the worker did not purge within 10 s"
            await asyncio.sleep(0.05)
    notice, messages, _ = await stored(world, old["id"])
    assert notice.body_sealed is None and all(m.jws_sealed is None for m in messages)
    assert (await stored(world, recent["id"]))[0].purged_at is None


async def test_a_late_message_keeps_its_notice_until_its_own_period_is_over(
    world, example, settings
):
    """A cancellation sent near the end of a notice's period is delivered, not purged unsent."""
    posted = (await world.post_notice(example)).json()
    await backdate(world, posted["id"], 100)
    cancelled = await world.api.post(
        f"/v1/release-notices/{posted['id']}/cancellation",
        json={"reason": "release_cancelled"},
        headers=await world.headers("MDI"),
    )
    assert cancelled.status_code == 202, cancelled.text
    assert await purge_expired(world.sessions, settings) == retention.Purged(0, 0)
    notice, messages, _ = await stored(world, posted["id"])
    assert notice.purged_at is None and all(m.jws_sealed for m in messages)

    await backdate(world, posted["id"], 100)  # its cancellation's period is over too
    assert (await purge_expired(world.sessions, settings)).notices == 1
