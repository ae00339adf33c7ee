"""Which notices carry a consent record, and what voids it, on both databases.

A consent decision is a fact about the person; each notice that carries it is evidence of it,
and a decision recorded through the API is evidence of its own. A notice cancelled as
entered_in_error (or amended to drop it) voids only what rested on it alone. Helpers are shared
with tests/consent/test_records.py and tests/consent/test_withdrawal.py.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from typing import Any

import pytest
from alembic import command
from sqlalchemy import update

from app.storage import migrate
from app.storage.db import is_sqlite
from app.storage.models import StoredNotice
from tests.helpers.consents import (
    CLINICAL,
    SMS,
    carried,
    change,
    consent,
    hexid,
    history,
    introduce,
    log,
    post,
    recipients,
    record,
    without_sms,
)
from tests.helpers.messages import inbox


async def carriers(world) -> dict[str, set[str]]:
    """Per consent record, the notice versions that carried it."""
    found: dict[str, set[str]] = {}
    for consent_id, notice_id in await world.sql(
        "SELECT consent_id, notice_id FROM consent_carrier"
    ):
        found.setdefault(hexid(consent_id), set()).add(hexid(notice_id))
    return found


async def served(world, message_id: str | None) -> bool:
    """Whether the treatment service's inbox still serves this message's payload."""
    [item] = [m for m in await inbox(world, "SMS-LEEDS") if m["id"] == message_id]
    return item["jws"] is not None


def cancelled_in_error(world, notice: dict[str, Any]):
    return change(world, notice["id"], "cancellation", {"reason": "entered_in_error"})


async def test_a_consent_two_notices_carry_is_voided_only_when_neither_is_in_force(world, example):
    one = await post(world, example)
    twice = copy.deepcopy(example)
    twice["consent"].append(example["consent"][0])  # the same decision, listed twice
    two = await post(world, twice)
    given, refused = await carried(world, SMS), await carried(world, CLINICAL)
    both = {hexid(one["id"]), hexid(two["id"])}
    assert await carriers(world) == {hexid(given["id"]): both, hexid(refused["id"]): both}

    await cancelled_in_error(world, one)
    listed = await history(world)
    assert listed["standing"] == {SMS: True, CLINICAL: False}
    assert [c["voided_at"] for c in listed["items"]] == [None, None]
    assert await log(world, "consent.voided") == []
    assert await served(world, recipients(two)["SMS-LEEDS"])

    await cancelled_in_error(world, two)
    listed = await history(world)
    assert listed["standing"] == {}
    assert all(c["voided_at"] for c in listed["items"])
    voided = sorted(d["consent_id"] for _, d in await log(world, "consent.voided"))
    assert voided == sorted([given["id"], refused["id"]])  # each once, by the last carrier


async def test_a_consent_stands_while_the_only_notice_carrying_it_is_cancelled_for_a_reason(
    world, example
):
    """Cancelled because the release did not happen: the person did decide."""
    notice = await post(world, example)
    await change(world, notice["id"], "cancellation", {"reason": "release_cancelled"})
    listed = await history(world)
    assert listed["standing"] == {SMS: True, CLINICAL: False}
    assert [c["voided_at"] for c in listed["items"]] == [None, None]


@pytest.mark.parametrize("first", ["recorded", "carried"])
async def test_a_consent_recorded_through_the_api_stands_when_a_notice_carrying_it_is_voided(
    world, example, first
):
    sms = example["consent"][0]
    same = consent(SMS, "given", recorded_at=sms["recorded_at"], recorded_by=sms["recorded_by"])
    if first == "recorded":
        await introduce(world)  # so that the prison may record it
        api = await record(world, same)
        notice = await post(world, example)
    else:
        notice = await post(world, example)
        api = await record(world, same)
    by_id = {c["id"]: c for c in (await history(world))["items"]}
    assert by_id[api["id"]]["source"] == "api"
    # Recorded first, the decision the notice carries is the API's record: no second one.
    assert [c["source"] for c in by_id.values() if c["scope"] == SMS] == (
        ["api"] if first == "recorded" else ["notice", "api"]
    )

    await cancelled_in_error(world, notice)
    listed = await history(world)
    assert listed["standing"] == {SMS: True}  # the refusal, carried only by the notice, is void
    assert {c["id"] for c in listed["items"] if c["voided_at"] is None} == {api["id"]}
    later = await post(world, example | {"consent": []})
    assert await served(world, recipients(later)["SMS-LEEDS"])


async def test_an_amendment_that_drops_a_consent_another_notice_carries_leaves_it_standing(
    world, example
):
    one, two = await post(world, example), await post(world, example)
    given = await carried(world, SMS)

    amended = await change(world, one["id"], "amendments", without_sms(example))
    assert (await history(world))["standing"] == {SMS: True, CLINICAL: False}
    assert (await carried(world, SMS))["voided_at"] is None
    # The person's consent still stands, so the amended notice is shared as the first was.
    assert await served(world, recipients(amended)["SMS-LEEDS"])
    assert await served(world, recipients(two)["SMS-LEEDS"])

    await change(world, two["id"], "amendments", without_sms(example))
    assert (await history(world))["standing"] == {CLINICAL: False}
    assert (await carried(world, SMS))["voided_at"]
    assert [d["consent_id"] for _, d in await log(world, "consent.voided")] == [given["id"]]
    disclosures = [m for m in await inbox(world, "SMS-LEEDS") if m["kind"] == "disclosure"]
    assert disclosures and not any(m["jws"] for m in disclosures)


async def test_the_migration_finds_every_notice_that_carried_a_record(
    world, example, settings, database_url
):
    """0009 reads each stored notice's body: the second notice carrying a record made from the
    first carries it too, so cancelling the first in error leaves it standing."""
    one, two = await post(world, example), await post(world, example)
    before = await carriers(world)
    assert len(before) == 2 and all(len(n) == 2 for n in before.values())
    config = migrate.config(database_url, settings.sealing_keys_dir)
    try:
        await asyncio.to_thread(command.downgrade, config, "0008")
        await asyncio.to_thread(command.upgrade, config, "head")
        assert await carriers(world) == before
    finally:
        # PostgreSQL's database is shared by the run: leave it at head whatever happened.
        if not is_sqlite(database_url):
            await asyncio.to_thread(command.upgrade, config, "head")
    await cancelled_in_error(world, one)
    assert (await history(world))["standing"] == {SMS: True, CLINICAL: False}
    assert await served(world, recipients(two)["SMS-LEEDS"])


async def test_the_migration_takes_a_body_it_cannot_open_as_purged(
    world, example, settings, database_url, caplog
):
    """A body sealed with a data key since lost, or altered, stops no upgrade: that notice is
    known to carry only the records made from it, as if purged, and the count is logged."""
    one, two = await post(world, example), await post(world, example)
    async with world.sessions() as session, session.begin():
        lost = update(StoredNotice).where(StoredNotice.id == uuid.UUID(two["id"]))
        await session.execute(lost.values(body_key_id="lost"))
    caplog.set_level(logging.WARNING, logger="exchange.migrate")
    config = migrate.config(database_url, settings.sealing_keys_dir)
    try:
        await asyncio.to_thread(command.downgrade, config, "0008")
        await asyncio.to_thread(command.upgrade, config, "head")
    finally:
        if not is_sqlite(database_url):
            await asyncio.to_thread(command.upgrade, config, "head")
    given, refused = await carried(world, SMS), await carried(world, CLINICAL)
    only_one = {hexid(one["id"])}
    assert await carriers(world) == {hexid(given["id"]): only_one, hexid(refused["id"]): only_one}
    warnings = [r.getMessage() for r in caplog.records if r.name == "exchange.migrate"]
    [warning] = [w for w in warnings if w.startswith("0009:")]  # 0013 counts it too
    assert warning.startswith("0009: 1 stored notice bodies could not be opened")
    assert example["person"]["noms_number"] not in warning
