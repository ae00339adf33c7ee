"""What others see of a care update: the auditor no value, the prison nothing."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import timedelta

from app.updates.document import Accommodation
from tests.helpers.consents import consent, record, withdraw
from tests.helpers.updates import (
    PROBATION,
    SERVICE,
    from_service,
    received,
    release,
    shared,
)


async def test_an_auditor_cannot_recover_an_updates_values_from_its_log_entry(
    world, example, clock
):
    """The auditor's entry is meant to name the update's sections, never a value. It also
    carries `body_sha256`, a plain SHA-256 of the canonical body: a care update without free
    text is a handful of enumerations and days, so the auditor recovers it by trying them all
    (here: six accommodation statuses, a few weeks of days). The idempotency code keys its
    request hash for exactly this reason; the log entry does not."""

    notice = await release(world, example, clock.today)
    secret = {"accommodation": {"status": "rough_sleeping", "since": clock.today.isoformat()}}
    await shared(world, notice["sent"][PROBATION], secret, code=PROBATION)
    response = await world.api.get(
        "/v1/audit/entries",
        params={"noms_number": "A1234BC", "action": "care_update.received"},
        headers=await world.headers("AUDIT"),
    )
    [entry] = response.json()["items"]
    seen = entry["details"].get("body_sha256")
    statuses = Accommodation.model_fields["status"].annotation.__args__
    days = [(clock.today - timedelta(days=n)).isoformat() for n in range(30)]
    recovered = None
    for status, day in itertools.product(statuses, days):
        guess = {"accommodation": {"status": status, "since": day}}
        canonical = json.dumps(guess, sort_keys=True, separators=(",", ":"))
        if hashlib.sha256(canonical.encode()).hexdigest() == seen:
            recovered = guess
    assert recovered is None, f"the auditor read the update: {recovered}"


async def test_the_prison_sees_nothing_of_a_care_update(world, example, clock):
    """Care updates are never the prison's: its tracking leaves out their messages. But a
    withdrawal of `treatment_to_probation` tells probation with a `consent_withdrawn` message
    about the update's message, and the prison's tracking of its notice lists that one: the
    prison learns that the service shared an update with probation, and when."""

    notice = await release(world, example, clock.today)
    given = await record(world, consent("treatment_to_probation", "given"), code=SERVICE)
    await shared(world, notice["sent"][SERVICE], from_service(clock.today))
    await received(world, PROBATION)  # numbered: probation holds it, so it is told
    response = await withdraw(world, given["id"], code=SERVICE)
    assert response.status_code == 200, response.text

    tracked = await world.api.get(
        f"/v1/release-notices/{notice['id']}", headers=await world.headers("MDI")
    )
    assert tracked.status_code == 200, tracked.text
    kinds = [r["kind"] for r in tracked.json()["recipients"]]
    assert kinds == ["disclosure", "disclosure"], tracked.json()["recipients"]


async def test_an_auditor_sees_that_a_recall_was_shared_not_its_day(world, example, clock):
    notice = await release(world, example, clock.today)
    day = (clock.today - timedelta(days=1)).isoformat()
    recall = {"recall": {"date": day, "kind": "recalled"}}
    await shared(world, notice["sent"][PROBATION], recall, code=PROBATION)
    response = await world.api.get(
        "/v1/audit/entries",
        params={"noms_number": "A1234BC", "action": "care_update.received"},
        headers=await world.headers("AUDIT"),
    )
    [entry] = response.json()["items"]
    assert entry["details"]["sections"] == ["recall"]
    assert day not in json.dumps(entry) and "recalled" not in json.dumps(entry["details"])
