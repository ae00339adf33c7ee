"""Bad input and abuse, through the real flow in the browser: a callback with a wrong state
or from an unknown issuer, an open redirect in the return address, a session cookie signed by
another deployment, a callback with no sign-in under way. Each is refused with a page saying
why, and logged (the reason, never a token or a claim)."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlencode, urlsplit

from app.console.cookies import Cookies
from tests.console.conftest import sign_in


async def _attempt(page, served: str) -> str:
    """A sign-in started in this browser (its attempt cookie set), stopped before the
    provider: the state it sent there."""
    response = await page.request.get(served + "/console/sign-in/start", max_redirects=0)
    assert response.status == 303
    return parse_qs(urlsplit(response.headers["location"]).query)["state"][0]


async def _refused(page) -> str:
    assert await page.locator("h1").inner_text() == "You could not be signed in"
    assert not [c for c in await page.context.cookies() if c["name"] == "console_session"]
    return await page.locator("main").inner_text()


async def test_a_callback_with_a_wrong_state_is_refused(world, served, page, caplog):
    caplog.set_level(logging.WARNING, "exchange.console")
    await _attempt(page, served)
    await page.goto(served + "/console/callback?code=a-code&state=forged")
    assert "state does not match" in await _refused(page)
    assert "console sign-in refused: wrong_state" in caplog.text


async def test_a_callback_naming_an_unknown_issuer_is_refused(world, served, page, caplog):
    caplog.set_level(logging.WARNING, "exchange.console")
    state = await _attempt(page, served)
    query = urlencode({"code": "a-code", "state": state, "iss": "http://evil.example"})
    await page.goto(served + "/console/callback?" + query)
    assert "unknown identity provider" in await _refused(page)
    assert "console sign-in refused: unknown_issuer" in caplog.text


async def test_a_replayed_callback_is_refused(world, served, page, caplog):
    caplog.set_level(logging.WARNING, "exchange.console")
    callbacks = []
    page.on("request", lambda r: callbacks.append(r.url) if "/callback?" in r.url else None)
    await sign_in(page, served, "auditor-alice")
    await page.context.clear_cookies()
    await page.goto(callbacks[0])  # the same code and state again, in a browser with no attempt
    assert "No sign-in was under way" in await _refused(page)
    assert "console sign-in refused: no_attempt" in caplog.text


async def test_an_open_redirect_in_the_return_address_goes_home(world, served, page):
    for target in ("https://evil.example/", "//evil.example/console/", "/\\evil.example"):
        await page.context.clear_cookies()
        await page.goto(served + "/console/sign-in?return_to=" + target)
        await page.get_by_role("button", name="Sign in").click()
        await page.fill("input[name=login]", "auditor-alice")
        await page.fill("input[name=password]", "any")
        await page.get_by_role("button", name="Sign-in").click()
        await page.get_by_role("button", name="Continue").click()
        await page.wait_for_url(served + "/console/")


async def test_a_session_cookie_from_another_deployment_is_refused(world, served, page, caplog):
    caplog.set_level(logging.WARNING, "exchange.console")
    theirs = Cookies("another deployment's own secret, long enough", 1800)
    sealed = theirs.seal_session({"sub": "operator-olu", "org": "OPS", "role": "operator"})
    await page.context.add_cookies(
        [{"name": "console_session", "value": sealed, "domain": "127.0.0.1", "path": "/console"}]
    )
    response = await page.goto(served + "/console/operators")
    assert response.status == 401
    assert "not made by this service" in await page.locator("main").inner_text()
    assert "console session cookie refused: bad_signature" in caplog.text
    assert not [c for c in await page.context.cookies() if c["name"] == "console_session"]
