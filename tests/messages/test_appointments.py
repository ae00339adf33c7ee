"""Appointments carry their day (issue 24, item 1), through the API on both databases: the day
an appointment's status needs, checked against the release and today in England and Wales
(against today only where the release date is not known), and shown in the recipient's inbox
with its latest acknowledgement. (Each status's day shown to the prison, and logged:
tests/messages/test_acknowledgements.py.)

Dates come from the suite's clock (`clock.today`, UTC's date): today in England and Wales is that
day or the next, so a day "after today" here is two days on.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import update

from app.storage.models import StoredNotice
from app.worker.loop import purge_expired
from tests.helpers.acknowledgements import (
    NOTE,
    acknowledge,
    counts,
    dated,
    recorded,
    released,
)
from tests.helpers.consents import post, recipients
from tests.helpers.problems import assert_problem
from tests.helpers.retention import backdate


async def test_an_appointments_day_is_checked_against_the_release_and_today(world, example, clock):
    today = clock.today
    release = today - timedelta(days=3)
    message_id = recipients(await post(world, released(example, release)))["SMS-LEEDS"]
    refused = [
        ({"status": "appointment_booked"}, "required with appointment_booked"),
        (dated("received", today), "given only with appointment_booked, attended"),
        (dated("declined", today), "not declined"),
        (dated("appointment_booked", release - timedelta(days=1)), "before the release date"),
        (dated("attended", release - timedelta(days=1)), "before the release date"),
        (dated("did_not_attend", release - timedelta(days=30)), "before the release date"),
        (dated("attended", today + timedelta(days=2)), "after today"),
        (dated("did_not_attend", today + timedelta(days=2)), "after today"),
    ]
    before = await counts(world)
    for body, words in refused:
        problem = assert_problem(await acknowledge(world, message_id, body, "SMS-LEEDS"), 422)
        [error] = problem["errors"]
        assert error["pointer"] == "/appointment_date" and words in error["detail"], body
        if "release" in words:
            assert release.isoformat() in error["detail"]
    assert await world.counts() == before

    for body in (
        dated("appointment_booked", today + timedelta(days=20)),  # booked ahead
        dated("appointment_booked", release),  # on the day of release
        dated("did_not_attend", release),
        dated("attended", today),  # today is not the future
    ):
        answer = recorded(await acknowledge(world, message_id, body, "SMS-LEEDS"), message_id)
        assert (answer["status"], answer["appointment_date"]) == (
            body["status"],
            body["appointment_date"],
        )


async def test_a_release_to_come_takes_bookings_from_its_day_and_nothing_attended(
    world, example, clock
):
    release = date.fromisoformat(example["release"]["release_date"])
    assert release > clock.today + timedelta(days=1)  # the example's release is days away
    message_id = recipients(await post(world, example))["N07"]
    before = await counts(world)
    for body in (dated("attended", clock.today), dated("appointment_booked", clock.today)):
        problem = assert_problem(await acknowledge(world, message_id, body), 422)
        assert "before the release date" in problem["errors"][0]["detail"]
    assert await world.counts() == before
    recorded(await acknowledge(world, message_id, dated("appointment_booked", release)), message_id)


async def test_a_release_date_not_known_is_not_checked(world, example, settings, clock):
    """A notice stored before release dates were kept (0011) whose body was purged, or could not
    be opened, before 0013 copied its date has none: an appointment's day is checked against
    today only, and the body is not opened for it, held or purged."""
    release = clock.today - timedelta(days=3)
    accepted = await post(world, released(example, release))
    message_id = recipients(accepted)["N07"]
    async with world.sessions() as session, session.begin():
        await session.execute(update(StoredNotice).values(release_date=None))
    early = dated("attended", release - timedelta(days=1))  # the body holds the release
    recorded(await acknowledge(world, message_id, early), message_id)

    await backdate(world, accepted["id"], days=91)
    assert (await purge_expired(world.sessions, settings)).notices == 1
    unknown = dated("did_not_attend", release - timedelta(days=1))  # the body is gone
    recorded(await acknowledge(world, message_id, unknown), message_id)
    before = await counts(world)
    future = dated("did_not_attend", clock.today + timedelta(days=2))
    assert_problem(await acknowledge(world, message_id, future), 422)
    assert await world.counts() == before


async def test_the_inbox_shows_each_message_with_its_latest_acknowledgement(world, example, clock):
    first = recipients(await post(world, released(example, clock.today - timedelta(days=1))))
    second = recipients(await post(world, example))

    async def inbox(code: str) -> dict[str, Any]:
        response = await world.api.get("/v1/messages", headers=await world.headers(code))
        assert response.status_code == 200, response.text
        return {m["id"]: m["acknowledgement"] for m in response.json()["items"]}

    assert await inbox("N07") == {first["N07"]: None, second["N07"]: None}
    recorded(await acknowledge(world, first["N07"], {"status": "received"}), first["N07"])
    booked_on = clock.today + timedelta(days=5)
    booked = recorded(
        await acknowledge(world, first["N07"], dated("appointment_booked", booked_on, note=NOTE)),
        first["N07"],
    )
    shown = {k: booked[k] for k in ("id", "status", "appointment_date", "recorded_at", "late")}
    assert await inbox("N07") == {first["N07"]: shown, second["N07"]: None}
    one = await world.api.get(f"/v1/messages/{first['N07']}", headers=await world.headers("N07"))
    assert one.status_code == 200 and one.json()["acknowledgement"] == shown
    assert NOTE not in one.text  # the note is read with the acknowledgement itself
    # Another recipient's inbox shows its own acknowledgements, none of N07's.
    assert await inbox("SMS-LEEDS") == {first["SMS-LEEDS"]: None, second["SMS-LEEDS"]: None}

    attended = recorded(
        await acknowledge(world, first["N07"], dated("attended", clock.today)), first["N07"]
    )
    assert (await inbox("N07"))[first["N07"]] == {
        k: attended[k] for k in ("id", "status", "appointment_date", "recorded_at", "late")
    }
