"""The operators' pages in the browser: register an organisation, add a client, rotate its
secret, disable it, each logged as the person; a form without its CSRF token is refused; the
subscriptions' health and the keys' IDs."""

from __future__ import annotations

from sqlalchemy import select

from app.storage.log_tables import AuditEntry
from app.storage.models import ApiClient, Organisation
from tests.console.conftest import axe, screenshot, sign_in
from tests.helpers.subscriptions import subscribe


async def test_an_operator_registers_an_organisation_and_manages_its_client(
    world, served, page, sessions
):
    await sign_in(page, served, "operator-olu", start="/console/operators")
    assert await page.locator("h1").inner_text() == "Organisations"
    assert await axe(page) == []
    await page.select_option("#kind", "probation_provider")
    await page.fill("#code", "N08")
    await page.fill("#name", "Probation North")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Register").click()
    assert page.url.startswith(served + "/console/operators/N08")
    assert "N08 is registered." in await page.locator(".govuk-notification-banner").inner_text()
    async with page.expect_navigation():
        await page.get_by_role("button", name="Add a client with a secret").click()
    first = await page.locator("#client-secret").inner_text()
    assert len(first) > 30
    assert await axe(page) == []
    await screenshot(page, "operators")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Rotate secret").click()
    second = await page.locator("#client-secret").inner_text()
    assert second != first
    async with page.expect_navigation():
        await page.get_by_role("button", name="Disable cli_").click()
    assert "Disabled" in await page.locator("#clients").inner_text()
    await page.reload()
    assert not await page.locator("#client-secret").count()  # shown once, never again

    await page.goto(served + "/console/operators")
    await page.fill("#code", "N08")
    await page.fill("#name", "Again")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Register").click()
    assert "already exists" in await page.locator(".govuk-error-summary").inner_text()

    async with sessions() as session:
        n08 = await session.scalar(select(Organisation).where(Organisation.code == "N08"))
        assert n08.kind == "probation_provider" and n08.name == "Probation North"
        client = await session.scalar(select(ApiClient).where(ApiClient.organisation_id == n08.id))
        assert client.disabled_at is not None
        changes = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.actor_client_id)
                .where(AuditEntry.subject_organisation_id == n08.id)
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [tuple(c) for c in changes] == [
        ("organisation.created", "person:operator-olu"),
        ("client.created", "person:operator-olu"),
        ("client.secret_rotated", "person:operator-olu"),
        ("client.disabled", "person:operator-olu"),
    ]


async def test_a_form_without_its_csrf_token_is_refused(world, served, page, sessions):
    await sign_in(page, served, "operator-olu", start="/console/operators")
    for token in (None, "forged-token"):
        form = {"kind": "prison", "code": "EVIL", "name": "Forged"}
        if token:
            form["csrf_token"] = token
        response = await page.request.post(served + "/console/operators", form=form)
        assert response.status == 403
        assert "Form refused" in await response.text()
    async with sessions() as session:
        assert await session.scalar(select(Organisation).where(Organisation.code == "EVIL")) is None


async def test_subscriptions_health_and_key_ids(world, log, served, page):
    await subscribe(world, "N07", "http://127.0.0.1:9/nps")  # loopback: allowed in tests
    await sign_in(page, served, "operator-olu", start="/console/operators-health")
    rows = await page.locator("#subscriptions tbody tr").all_inner_texts()
    assert len(rows) == 1 and "N07" in rows[0] and "127.0.0.1:9/nps" in rows[0]
    assert await page.locator("#log-verifier-key").inner_text() == log.verifier_key
    assert await axe(page) == []
    await screenshot(page, "health")
