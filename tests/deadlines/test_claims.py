"""A disclosure states its deadlines in its signed claims (issue 24, item 2), from the settings'
windows, here shortened: receipt by the end of the day it arrives (0 working days), engagement
within 2 days of release. Checked on the message each recipient reads, verified with PyJWT."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.deadlines.calendar import end_of, today
from app.settings import Settings
from tests.conftest import ISSUER
from tests.helpers.acknowledgements import notice_status, released
from tests.helpers.consents import post
from tests.helpers.messages import inbox, verified


@pytest.fixture
def settings(database_url: str, tmp_path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        issuer=ISSUER,
        embedded_worker=False,
        receipt_working_days=0,
        engagement_days=2,
    )


async def test_shortened_windows_are_the_deadlines_stated_and_stored(world, example, clock):
    released_on = clock.today + timedelta(days=1)
    before = today(datetime.now(UTC))
    accepted = await post(world, released(example, released_on))
    after = today(datetime.now(UTC))
    stated = {}
    for code in ("N07", "SMS-LEEDS"):
        (item,) = await inbox(world, code)
        _, claims = await verified(world.api, item["jws"], code)
        stated[code] = claims["deadlines"]
    assert stated["N07"]["receipt_due"] in {before.isoformat(), after.isoformat()}
    assert set(stated["N07"]) == {"receipt_due"}  # engagement is the service's alone
    assert stated["SMS-LEEDS"] == {
        "receipt_due": stated["N07"]["receipt_due"],
        "engagement_due": (released_on + timedelta(days=2)).isoformat(),
    }
    shown = (await notice_status(world, accepted["id"]))["SMS-LEEDS"]["deadlines"]
    assert [(d["kind"], d["due_on"], d["state"]) for d in shown] == [
        ("receipt", stated["N07"]["receipt_due"], "open"),
        ("engagement", stated["SMS-LEEDS"]["engagement_due"], "open"),
    ]
    due_on = datetime.fromisoformat(shown[1]["due_on"]).date()
    assert datetime.fromisoformat(shown[1]["due_at"]) == end_of(due_on)
