"""The auditors' log and a notice's disclosures, in the browser: filters, the prison number
hashed before use, paging, an entry's details, withheld fields with their citations."""

from __future__ import annotations

from sqlalchemy import select

from app.storage.log_tables import AuditEntry
from tests.console.conftest import axe, screenshot, sign_in


async def test_the_log_filters_pages_and_shows_an_entry(world, log, served, page, sessions):
    await sign_in(page, served, "auditor-alice", start="/console/log")
    assert page.url == served + "/console/log"
    everything = await page.locator("#entries tbody tr").count()
    assert everything == 25  # a full page: three notices make more entries than that
    assert await axe(page) == []
    await screenshot(page, "log")
    async with page.expect_navigation():
        await page.get_by_role("link", name="Next page").click()
    assert "after=" in page.url and await page.locator("#entries tbody tr").count() > 0

    await page.goto(served + "/console/log")
    await page.fill("#action", "notice.received")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Apply filters").click()
    actions = await page.locator("#entries tbody tr td:nth-child(3)").all_inner_texts()
    assert actions == ["notice.received"] * 3

    await page.goto(served + "/console/log")
    await page.fill("#noms_number", "a1234bc")  # typed in lower case: taken as A1234BC
    async with page.expect_navigation():
        await page.get_by_role("button", name="Apply filters").click()
    about_person = await page.locator("#entries tbody tr").count()
    assert 0 < about_person <= 25
    assert "A1234BC" not in page.url.split("?")[0]
    await page.fill("#noms_number", "Z9999ZZ")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Apply filters").click()
    assert await page.locator("#no-entries").is_visible()

    await page.fill("#noms_number", "not a number")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Apply filters").click()
    assert "There is a problem" in await page.locator(".govuk-error-summary").inner_text()
    assert (await page.title()).startswith("Error:")

    await page.goto(served + "/console/log?action=notice.received")
    async with page.expect_navigation():
        await page.locator("#entries tbody tr a").first.click()
    assert await page.locator("h1").inner_text() == f"Log entry {page.url.rsplit('/', 1)[1]}"
    assert "notice.received" in await page.locator(".govuk-summary-list").inner_text()
    assert await axe(page) == []

    async with sessions() as session:
        consulted = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "audit.consulted"))
        ).all()
    people = {e.actor_client_id for e in consulted}
    assert people == {"person:auditor-alice"}
    hashed = [e for e in consulted if e.person_ref]
    assert hashed and all("A1234BC" not in str(e.details) for e in consulted)


async def test_a_notices_disclosures_show_withheld_fields_with_citations_never_values(
    world, log, served, page, example
):
    await sign_in(page, served, "auditor-alice", start="/console/log?action=notice.received")
    async with page.expect_navigation():
        await page.locator("#entries tbody tr td:nth-child(5) a").first.click()
    assert await page.locator("h1").inner_text() == "A notice's disclosures"
    text = await page.locator("main").inner_text()
    assert "N07" in text and "SMS-LEEDS" in text
    withheld = page.locator(".console-withheld tbody tr")
    assert await withheld.count() > 0
    assert await page.locator(".console-citation").count() > 0  # e.g. UK GDPR Article ...
    assert example["person"]["noms_number"] not in text
    assert await axe(page) == []
    await screenshot(page, "disclosures")


async def test_an_operator_cannot_read_the_log(world, served, page):
    await sign_in(page, served, "operator-olu", start="/console/log")
    assert await page.locator("h1").inner_text() == "Not for your organisation"
