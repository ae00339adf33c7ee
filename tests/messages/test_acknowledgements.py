"""Acknowledgements: a recipient tells the prison what became of a message, on both databases.

Each status is recorded and shown to the prison with its note, an appointment's with its day;
refusals write nothing; another organisation's message does not exist; a revoked or withdrawn
message has nothing to be acknowledged; the note is sealed at rest, purged with its notice, and
never in the log. Dates come from the suite's clock (`clock.today`, UTC's date): "today" in
England and Wales is that day or the next, so a day "after today" here is two days on.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.notices import idempotency, retention
from app.storage.db import is_sqlite
from app.worker.loop import purge_expired
from tests.helpers.acknowledgements import (
    NOTE,
    STATUSES,
    acknowledge,
    acks,
    counts,
    dated,
    notice_status,
    recorded,
    released,
)
from tests.helpers.consents import SMS, as_json, carried, change, hexid, post, recipients, withdrawn
from tests.helpers.messages import subscribe
from tests.helpers.problems import assert_problem
from tests.helpers.receiver import closed_port
from tests.helpers.retention import backdate, leaks

REPLAYED = "idempotent-replayed"


async def bearer(world, code: str, scopes: str) -> dict[str, str]:
    """Headers for a new client of the organisation holding only these scopes."""
    client_id, secret = await world.credentials(code, scopes)
    response = await world.api.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def acknowledgement_log(world) -> list[dict[str, Any]]:
    rows = await world.sql(
        "SELECT actor_organisation_id, actor_client_id, notice_id, message_id,"
        " subject_organisation_id, details FROM audit_entry"
        " WHERE action = 'acknowledgement.recorded' ORDER BY id"
    )
    return [
        {
            "actor": hexid(actor),
            "client": client,
            "notice": hexid(notice),
            "message": hexid(message),
            "subject": hexid(subject),
            "details": as_json(details),
        }
        for actor, client, notice, message, subject, details in rows
    ]


# --- recording ---------------------------------------------------------------------------------


async def test_each_status_is_recorded_in_any_order_and_read_back_oldest_first(
    world, example, clock
):
    today = clock.today
    message_id = recipients(await post(world, released(example, today - timedelta(days=5))))["N07"]
    first, second = today - timedelta(days=3), today  # people miss appointments and rebook
    order = [("received", None), ("accepted", None), ("appointment_booked", first)]
    order += [("did_not_attend", first), ("declined", None), ("appointment_booked", second)]
    order += [("attended", second)]
    assert {status for status, _ in order} == set(STATUSES)
    answers = []
    for i, (status, on) in enumerate(order):
        before = await counts(world)
        body = {"status": status, **({"note": f"{NOTE} ({i})"} if i % 2 else {})}
        body |= {"appointment_date": on.isoformat()} if on else {}
        answer = recorded(await acknowledge(world, message_id, body), message_id)
        assert (answer["status"], answer["note"]) == (status, body.get("note"))
        assert answer["appointment_date"] == body.get("appointment_date")
        after = await world.counts()
        assert after["acknowledgement"] == before["acknowledgement"] + 1
        assert after["audit_entry"] == before["audit_entry"] + 1
        answers.append(answer)

    headers = await world.headers("N07")
    listed = await world.api.get(acks(message_id), headers=headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": answers, "next_cursor": None}
    first_page = await world.api.get(acks(message_id), params={"limit": 3}, headers=headers)
    assert first_page.json() == {"items": answers[:3], "next_cursor": "3"}
    rest = await world.api.get(acks(message_id), params={"cursor": "3"}, headers=headers)
    assert rest.json()["items"] == answers[3:]
    for answer in answers:
        one = await world.api.get(f"{acks(message_id)}/{answer['id']}", headers=headers)
        assert one.status_code == 200 and one.json() == answer


async def test_a_note_of_500_characters_is_kept_whole(world, example):
    message_id = recipients(await post(world, example))["SMS-LEEDS"]
    note = "Rebooked.\n\t" + "x" * 489
    assert len(note) == 500
    answer = recorded(
        await acknowledge(world, message_id, {"status": "accepted", "note": note}, "SMS-LEEDS"),
        message_id,
    )
    assert answer["note"] == note


@pytest.mark.parametrize(
    ("body", "content_type", "status", "pointer"),
    [
        ({"status": "seen"}, None, 422, "/status"),
        ({"status": "RECEIVED"}, None, 422, "/status"),
        ({}, None, 422, "/status"),
        ({"note": NOTE}, None, 422, "/status"),
        ({"status": "accepted", "note": "x" * 501}, None, 422, "/note"),
        ({"status": "accepted", "note": ""}, None, 422, "/note"),
        ({"status": "accepted", "note": 42}, None, 422, "/note"),
        ({"status": "accepted", "note": "bell \x07"}, None, 422, "/note"),
        ({"status": "accepted", "seen_by": "Dr Okafor"}, None, 422, "/seen_by"),
        ({"status": "appointment_booked"}, None, 422, "/appointment_date"),
        ({"status": "attended", "appointment_date": None}, None, 422, "/appointment_date"),
        ({"status": "attended", "appointment_date": "01/12/2026"}, None, 422, "/appointment_date"),
        ({"status": "attended", "appointment_date": "2026-02-30"}, None, 422, "/appointment_date"),
        ({"status": "attended", "appointment_date": 20261201}, None, 422, "/appointment_date"),
        (
            {"status": "attended", "appointment_date": "2026-12-01T10:00:00Z"},
            None,
            422,
            "/appointment_date",
        ),
        (["received"], None, 422, ""),
        (b'{"status": "received"', "application/json", 422, ""),
        (b"status=received", "application/x-www-form-urlencoded", 415, None),
        (b'{"status": "received"}', "text/plain", 415, None),
    ],
)
async def test_a_refused_acknowledgement_is_a_problem_that_writes_nothing(
    world, example, body, content_type, status, pointer
):
    message_id = recipients(await post(world, example))["N07"]
    before = await counts(world)
    headers = await world.headers("N07")
    if content_type is None:
        response = await world.api.post(acks(message_id), json=body, headers=headers)
    else:
        headers["content-type"] = content_type
        response = await world.api.post(acks(message_id), content=body, headers=headers)
    problem = assert_problem(response, status)
    if pointer is not None:
        assert pointer in [e["pointer"] for e in problem["errors"]], problem
    assert await world.counts() == before


# --- whose message, and which scope --------------------------------------------------------------


async def test_another_organisations_message_does_not_exist(world, example):
    sent = recipients(await post(world, example))
    other = recipients(await post(world, example))["N07"]
    mine = recorded(await acknowledge(world, sent["N07"], {"status": "received"}), sent["N07"])
    before = await counts(world)
    for code, message_id in (("N99", sent["N07"]), ("SMS-LEEDS", sent["N07"]), ("N07", None)):
        target = message_id or str(uuid.uuid4())
        assert_problem(await acknowledge(world, target, {"status": "received"}, code), 404)
        headers = await world.headers(code)
        assert_problem(await world.api.get(acks(target), headers=headers), 404)
        one = await world.api.get(f"{acks(target)}/{mine['id']}", headers=headers)
        assert_problem(one, 404)
    # Its own acknowledgement under another message of its own is not found either.
    wrong = await world.api.get(f"{acks(other)}/{mine['id']}", headers=await world.headers("N07"))
    assert_problem(wrong, 404)
    assert await world.counts() == before


async def test_acknowledging_needs_its_scope_and_reading_either_recipient_scope(world, example):
    message_id = recipients(await post(world, example))["N07"]
    reader = await bearer(world, "N07", "messages:read")
    writer = await bearer(world, "N07", "acknowledgements:write")
    subscriber = await bearer(world, "N07", "subscriptions:write")
    await world.headers("OPS")  # its first token adds a client; counts() adds the others
    before = await counts(world)
    for headers in (reader, subscriber, await world.headers("OPS"), await world.headers("AUDIT")):
        response = await world.api.post(
            acks(message_id), json={"status": "received"}, headers=headers
        )
        problem = assert_problem(response, 403)
        assert "acknowledgements:write" in problem["detail"]
        assert 'scope="acknowledgements:write"' in response.headers["www-authenticate"]
    # A prison holds the scope for the alerts it is sent, but this message is not its own.
    response = await world.api.post(
        acks(message_id), json={"status": "received"}, headers=await world.headers("MDI")
    )
    assert_problem(response, 404)
    assert await world.counts() == before

    response = await world.api.post(acks(message_id), json={"status": "received"}, headers=writer)
    answer = recorded(response, message_id)
    for headers in (reader, writer):
        listed = await world.api.get(acks(message_id), headers=headers)
        assert listed.status_code == 200 and listed.json()["items"] == [answer]
    for headers in (subscriber, await world.headers("OPS")):
        response = await world.api.get(acks(message_id), headers=headers)
        challenge = response.headers["www-authenticate"]
        assert assert_problem(response, 403)
        assert 'scope="messages:read acknowledgements:write"' in challenge


# --- what cannot be acknowledged -----------------------------------------------------------------


async def test_a_message_revoked_before_delivery_has_nothing_to_acknowledge(world, example):
    await subscribe(world, "N07", f"http://127.0.0.1:{closed_port()}/hooks")  # never attempted
    accepted = await post(world, example)
    message_id = recipients(accepted)["N07"]
    await change(world, accepted["id"], "cancellation", {"reason": "entered_in_error"})
    revoked = {hexid(m): at for m, at in await world.sql("SELECT id, revoked_at FROM message")}
    assert revoked[hexid(message_id)] is not None
    before = await counts(world)
    for status in ("received", "accepted"):
        problem = assert_problem(await acknowledge(world, message_id, {"status": status}), 409)
        assert "revoked" in problem["detail"]
    assert await world.counts() == before


async def test_a_message_withdrawn_with_its_consent_has_nothing_to_acknowledge(world, example):
    message_id = recipients(await post(world, example))["SMS-LEEDS"]  # inbox only: held
    answer = await withdrawn(world, (await carried(world, SMS))["id"])
    [notified] = answer["notified"]
    before = await counts(world)
    for status in ("received", "declined"):
        response = await acknowledge(world, message_id, {"status": status}, "SMS-LEEDS")
        assert "withdrawn" in assert_problem(response, 409)["detail"]
    assert await world.counts() == before

    # The consent.withdrawn message itself may be acknowledged as received, and only so.
    problem = assert_problem(
        await acknowledge(world, notified, {"status": "accepted"}, "SMS-LEEDS"), 422
    )
    assert [e["pointer"] for e in problem["errors"]] == ["/status"]
    assert await world.counts() == before
    recorded(await acknowledge(world, notified, {"status": "received"}, "SMS-LEEDS"), notified)


async def test_a_cancellation_may_only_be_received(world, example):
    accepted = await post(world, example)  # inbox only: the disclosure may be held, so it stays
    cancelled = await change(world, accepted["id"], "cancellation", {"reason": "other"})
    cancellation = recipients(cancelled)["N07"]
    assert cancellation != recipients(accepted)["N07"]
    before = await counts(world)
    for status in STATUSES[1:]:
        problem = assert_problem(await acknowledge(world, cancellation, {"status": status}), 422)
        assert [e["pointer"] for e in problem["errors"]] == ["/status"]
        assert "cancellation" in problem["errors"][0]["detail"]
    assert await world.counts() == before
    recorded(await acknowledge(world, cancellation, {"status": "received"}), cancellation)
    # The disclosure it cancels was held, not revoked: it may still be acknowledged.
    held = recipients(accepted)["N07"]
    recorded(await acknowledge(world, held, {"status": "declined"}), held)


# --- what the prison sees, and the log -----------------------------------------------------------


async def test_the_posting_prison_sees_each_status_day_and_note_in_order(world, example, clock):
    accepted = await post(world, released(example, clock.today - timedelta(days=2)))
    sent = recipients(accepted)
    before = await notice_status(world, accepted["id"])
    shown = ("acknowledgement", "appointment_date", "acknowledgements")
    assert {code: tuple(r[k] for k in shown) for code, r in before.items()} == {
        "N07": (None, None, []),
        "SMS-LEEDS": (None, None, []),
    }
    missed = (clock.today - timedelta(days=1)).isoformat()
    steps = [("received", None, None), ("appointment_booked", missed, NOTE)]
    steps += [("did_not_attend", missed, "Rebooking.")]
    for status, on, note in steps:
        body = {"status": status, **({"note": note} if note else {})}
        body |= {"appointment_date": on} if on else {}
        recorded(await acknowledge(world, sent["N07"], body), sent["N07"])
    recorded(
        await acknowledge(world, sent["SMS-LEEDS"], {"status": "accepted"}, "SMS-LEEDS"),
        sent["SMS-LEEDS"],
    )

    seen = await notice_status(world, accepted["id"])
    assert (seen["N07"]["acknowledgement"], seen["N07"]["appointment_date"]) == (
        "did_not_attend",
        missed,
    )
    assert [
        (a["status"], a["appointment_date"], a["note"]) for a in seen["N07"]["acknowledgements"]
    ] == steps
    times = [a["recorded_at"] for a in seen["N07"]["acknowledgements"]]
    assert times == sorted(times)
    assert (seen["SMS-LEEDS"]["acknowledgement"], seen["SMS-LEEDS"]["appointment_date"]) == (
        "accepted",
        None,
    )
    assert [a["note"] for a in seen["SMS-LEEDS"]["acknowledgements"]] == [None]
    # The latest status's day: a status without one after it shows none.
    recorded(await acknowledge(world, sent["N07"], {"status": "declined"}), sent["N07"])
    latest = (await notice_status(world, accepted["id"]))["N07"]
    assert (latest["acknowledgement"], latest["appointment_date"]) == ("declined", None)
    other_prison = await world.api.get(
        f"/v1/release-notices/{accepted['id']}", headers=await world.headers("LPI")
    )
    assert_problem(other_prison, 404)


async def test_each_acknowledgement_is_logged_with_ids_codes_and_days_never_the_note(
    world, example, clock
):
    accepted = await post(world, released(example, clock.today))
    message_id = recipients(accepted)["N07"]
    with_note = recorded(
        await acknowledge(world, message_id, dated("attended", clock.today, note=NOTE)),
        message_id,
    )
    without = recorded(await acknowledge(world, message_id, {"status": "received"}), message_id)
    n07 = hexid(world.ids["N07"])
    entries = await acknowledgement_log(world)
    assert [{k: v for k, v in e.items() if k != "client"} for e in entries] == [
        {
            "actor": n07,
            "notice": hexid(accepted["id"]),
            "message": hexid(message_id),
            "subject": n07,
            "details": {
                "acknowledgement_id": answer["id"],
                "status": status,
                "appointment_date": on,
                "message_kind": "disclosure",
                "with_note": note,
                "met": met,  # the message's receipt, by the first; nothing left for the second
                "late": [],
            },
        }
        for answer, status, on, note, met in (
            (with_note, "attended", clock.today.isoformat(), True, ["receipt"]),
            (without, "received", None, False, []),
        )
    ]
    assert all(e["client"].startswith("cli_") for e in entries)
    log = await world.sql("SELECT * FROM audit_entry")
    assert not any("Okafor" in json.dumps(list(r), default=str) for r in log)

    auditor = await world.api.get(
        "/v1/audit/entries",
        params={"action": "acknowledgement.recorded"},
        headers=await world.headers("AUDIT"),
    )
    assert auditor.status_code == 200, auditor.text
    assert [e["details"]["status"] for e in auditor.json()["items"]] == ["attended", "received"]
    assert "Okafor" not in auditor.text


# --- sealed at rest, and purged with the notice --------------------------------------------------


async def test_the_note_is_sealed_at_rest_and_purged_with_its_notice(
    world, example, settings, clock
):
    notice = released(example, clock.today - timedelta(days=1))
    old, recent = await post(world, notice), await post(world, notice)
    old_message, recent_message = recipients(old)["N07"], recipients(recent)["N07"]
    for message_id in (old_message, recent_message):
        body = dated("appointment_booked", clock.today, note=NOTE)
        response = await acknowledge(world, message_id, body, **{"idempotency-key": message_id})
        recorded(response, message_id)
    assert await leaks(world, [NOTE, "Okafor"]) == []
    rows = await world.sql("SELECT note_sealed, note_key_id FROM acknowledgement")
    assert len(rows) == 2
    assert all(sealed and key == world.data_keys.current for sealed, key in rows)

    await backdate(world, old["id"], days=91)
    assert (await purge_expired(world.sessions, settings)).notices == 1

    rows = await world.sql(
        "SELECT a.message_id, a.status, a.note_sealed, a.note_key_id FROM acknowledgement a"
    )
    kept = {hexid(m): (status, sealed is not None, key) for m, status, sealed, key in rows}
    assert kept == {
        hexid(old_message): ("appointment_booked", False, None),
        hexid(recent_message): ("appointment_booked", True, world.data_keys.current),
    }
    purged_view = await notice_status(world, old["id"])
    assert purged_view["N07"]["acknowledgement"] == "appointment_booked"
    assert [a["note"] for a in purged_view["N07"]["acknowledgements"]] == [None]
    recent_view = await notice_status(world, recent["id"])
    assert [a["note"] for a in recent_view["N07"]["acknowledgements"]] == [NOTE]
    listed = await world.api.get(acks(old_message), headers=await world.headers("N07"))
    assert [a["note"] for a in listed.json()["items"]] == [None]
    # The purged notice's idempotency key went with it; the recent one's stays.
    keys = [k for (k,) in await world.sql("SELECT key_sha256 FROM idempotency_key")]
    assert keys == [world.data_keys.idempotency_ref(recent_message)]

    # A purged message may still be acknowledged, by its code and day only; its release date
    # stays (a date names nobody) and still holds the day to it.
    before = await counts(world)
    noted = await acknowledge(world, old_message, dated("attended", clock.today, note=NOTE))
    assert [e["pointer"] for e in assert_problem(noted, 422)["errors"]] == ["/note"]
    early = await acknowledge(world, old_message, dated("attended", clock.today - timedelta(2)))
    assert "before the release date" in assert_problem(early, 422)["errors"][0]["detail"]
    assert await world.counts() == before
    answer = recorded(
        await acknowledge(world, old_message, dated("attended", clock.today)), old_message
    )
    assert (answer["note"], answer["appointment_date"]) == (None, clock.today.isoformat())


# --- Idempotency-Key -----------------------------------------------------------------------------


async def test_a_repeat_with_its_key_gets_the_first_answer_and_records_nothing(
    world, example, clock
):
    sent = recipients(await post(world, example))
    body = dated("appointment_booked", clock.today + timedelta(days=10), note=NOTE)
    key = {"idempotency-key": "ack-7d1c0c9e"}
    first = await acknowledge(world, sent["N07"], body, **key)
    answer = recorded(first, sent["N07"])
    assert REPLAYED not in first.headers
    after_first = await counts(world)

    again = await acknowledge(world, sent["N07"], dict(reversed(body.items())), **key)
    assert again.status_code == 201 and again.json() == answer
    assert again.headers["location"] == first.headers["location"]
    assert again.headers[REPLAYED] == "true"
    assert await world.counts() == after_first

    # The key with another body (another day), or for another message, is a conflict that
    # records nothing.
    rebooked = {**body, "appointment_date": (clock.today + timedelta(days=11)).isoformat()}
    assert_problem(await acknowledge(world, sent["N07"], rebooked, **key), 409)
    assert await world.counts() == after_first
    response = await acknowledge(world, sent["SMS-LEEDS"], body, "SMS-LEEDS", **key)
    recorded(response, sent["SMS-LEEDS"])  # another organisation's key space
    assert (await world.counts())["acknowledgement"] == after_first["acknowledgement"] + 1
    other_message = recipients(await post(world, example))["N07"]
    before = await counts(world)
    assert_problem(await acknowledge(world, other_message, body, **key), 409)
    assert await world.counts() == before

    # Neither the remembered answer nor the request's fingerprint gives the note away.
    [(request_sha256, response_json)] = [
        (request, answer)
        for organisation, request, answer in await world.sql(
            "SELECT organisation_id, request_sha256, response FROM idempotency_key"
        )
        if hexid(organisation) == hexid(world.ids["N07"])
    ]
    assert as_json(response_json)["note"] is None and NOTE not in json.dumps(as_json(response_json))
    plain = idempotency.fingerprint("POST", acks(sent["N07"]), body)
    assert request_sha256 != plain


async def test_a_note_racing_the_purge_of_its_notice_is_not_kept(world, example, database_url):
    """The acknowledgement waits for a purge that has its message locked, then sees it purged.
    (On SQLite, writers take turns for the whole database; there is no row lock to test.)"""
    if is_sqlite(database_url):
        pytest.skip("row locks are PostgreSQL's; SQLite serialises every writer")
    accepted = await post(world, example)
    message_id = recipients(accepted)["N07"]
    await backdate(world, accepted["id"], days=91)
    await counts(world)
    async with world.sessions() as purging:
        purged = await retention.purge(
            purging, older_than=timedelta(days=90), now=datetime.now(UTC)
        )
        assert purged.notices == 1
        racing = asyncio.create_task(
            acknowledge(world, message_id, {"status": "accepted", "note": NOTE})
        )
        await asyncio.sleep(0.5)
        assert not racing.done(), "the acknowledgement did not wait for the purge's lock"
        await purging.commit()
    response = await racing
    assert [e["pointer"] for e in assert_problem(response, 422)["errors"]] == ["/note"]
    assert await world.sql("SELECT id FROM acknowledgement") == []
