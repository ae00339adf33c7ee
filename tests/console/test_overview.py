"""The overview's plots, drawn by Observable Plot in Chromium from the exchange's figures,
each with its table of numbers."""

from __future__ import annotations

import pytest

from tests.console.conftest import axe, screenshot, sign_in
from tests.helpers.acknowledgements import acknowledge
from tests.helpers.receiver import running_receiver
from tests.helpers.subscriptions import subscribe
from tests.helpers.worker import work


@pytest.fixture
async def activity(world, log, settings, example):
    """Deliveries to a real receiver (the first answered 500, so retrying; the five others
    delivered: counts of 1 to 4 are suppressed), and one disclosure acknowledged."""
    with running_receiver(script=[500]) as receiver:
        await subscribe(world, "N07", receiver.url)
        await subscribe(world, "SMS-LEEDS", receiver.url)
        for _ in range(3):
            assert (await world.post_notice(example)).status_code == 202
        assert await work(world, settings) >= 6
    inbox = await world.api.get("/v1/messages", headers=await world.headers("N07"))
    first = inbox.json()["items"][0]["id"]
    response = await acknowledge(world, first, {"status": "received"})
    assert response.status_code == 201, response.text


async def test_the_overview_plots_render_with_data(world, activity, served, page):
    await sign_in(page, served, "auditor-alice")
    assert await page.locator("h1").inner_text() == "Overview"
    plots = page.locator("[data-plot] svg")
    await plots.first.wait_for()
    drawn = await page.eval_on_selector_all(
        "[data-plot]", "els => els.map(e => [e.dataset.plot, !!e.querySelector('svg')])"
    )
    # Timeliness: one acknowledgement is a small number, suppressed as the report suppresses
    # it; no deadline has passed yet. Each says so in place of its plot.
    assert dict(drawn) == {
        "notices": True,
        "disclosures": True,
        "withheld": True,
        "deliveries": True,
        "latency": True,
        "timeliness": False,
        "overdue": False,
        "continuity": True,
    }
    assert "Nothing to plot yet" in await page.locator("[data-plot=timeliness]").inner_text()
    timeliness = await page.locator("#table-timeliness tbody").text_content()
    assert "suppressed or none" in timeliness
    states = await page.locator("#table-deliveries tbody tr").all_text_contents()
    assert any("delivered" in s and s.rstrip().endswith("5") for s in states), states
    assert any("retrying" in s and "suppressed or none" in s for s in states), states
    # six notices from MDI: one stacked bar for this week, and its row in the table
    assert await page.locator("[data-plot=notices] svg rect").count() >= 1
    rows = await page.locator("#table-notices tbody tr").all_text_contents()
    assert len(rows) == 1 and "MDI" in rows[0] and rows[0].rstrip().endswith("6")
    assert await page.locator("[data-plot=withheld] svg rect").count() >= 1
    assert await page.locator("#table-withheld tbody tr").count() >= 1
    continuity = await page.locator("[data-plot=continuity]").inner_text()
    assert "national 53% (2023-24)" in continuity and "ambition 75%" in continuity
    assert await axe(page) == []
    await screenshot(page, "overview")


async def test_an_operator_sees_the_overview_and_their_own_menu(world, log, served, page):
    await sign_in(page, served, "operator-olu")
    # three notices: a small number, suppressed; the continuity plot's reference lines are drawn
    await page.locator("[data-plot=continuity] svg").last.wait_for()
    notices = await page.locator("#table-notices tbody").text_content()
    assert "suppressed or none" in notices
    menu = await page.locator(".govuk-service-navigation__list").inner_text()
    assert "Organisations" in menu and "The log" not in menu
