"""A care update met by a database outage is 503 and stores nothing; the retry goes through."""

import pytest

from tests.helpers.outages import assert_unavailable, sqlite_write_locked
from tests.helpers.updates import SERVICE, from_service, release, share

ONLY_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"database_busy_timeout_seconds": 0.2})


@ONLY_SQLITE
async def test_an_update_met_by_an_outage_is_503_and_stores_nothing(
    world, example, clock, database_url
):
    notice = await release(world, example, clock.today)
    await world.headers(SERVICE)
    before = await world.counts()
    with sqlite_write_locked(database_url):
        response = await share(
            world, notice["sent"][SERVICE], from_service(clock.today), **{"idempotency-key": "k"}
        )
    assert_unavailable(response)
    assert await world.counts() == before
    again = await share(
        world, notice["sent"][SERVICE], from_service(clock.today), **{"idempotency-key": "k"}
    )
    assert again.status_code == 202 and "idempotent-replayed" not in again.headers
