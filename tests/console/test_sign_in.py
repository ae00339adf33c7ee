"""Signing in to the console through a real OpenID provider, in a real browser."""

from __future__ import annotations

from sqlalchemy import select

from app.storage.log_tables import AuditEntry
from tests.console.conftest import axe, screenshot, sign_in


async def test_an_auditor_signs_in_and_out_and_is_logged_as_themselves(
    world, served, page, sessions
):
    await sign_in(page, served, "auditor-alice", start="/console/?welcome=1")
    assert page.url == served + "/console/?welcome=1"  # back where they asked
    await page.goto(served + "/console/")
    assert await page.locator("h1").inner_text() == "Overview"
    assert "auditor-alice" in await page.locator(".console-person").inner_text()
    cookie = next(c for c in await page.context.cookies() if c["name"] == "console_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/console"
    assert await axe(page) == []
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign out").click()
    assert await page.locator("h1").inner_text() == "You have signed out"
    assert not [c for c in await page.context.cookies() if c["name"] == "console_session"]
    await page.goto(served + "/console/")
    assert "/console/sign-in" in page.url
    assert await axe(page) == []
    await screenshot(page, "sign-in")
    async with sessions() as session:
        entries = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.in_(("console.signed_in", "console.signed_out")))
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(e.action, e.actor_client_id, e.actor_organisation_id) for e in entries] == [
        ("console.signed_in", "person:auditor-alice", world.ids["AUDIT"]),
        ("console.signed_out", "person:auditor-alice", world.ids["AUDIT"]),
    ]


async def test_a_person_of_a_prison_is_refused(world, served, page):
    await sign_in(page, served, "prison-pat")
    assert await page.locator("h1").inner_text() == "You could not be signed in"
    assert "auditor and operator organisations only" in await page.content()
    assert await axe(page) == []
    assert not [c for c in await page.context.cookies() if c["name"] == "console_session"]
    await page.goto(served + "/console/")
    assert "/console/sign-in" in page.url


async def test_a_person_of_an_unregistered_organisation_is_refused(world, served, page):
    await sign_in(page, served, "nobody-nia")
    assert "not registered with the exchange" in await page.content()
