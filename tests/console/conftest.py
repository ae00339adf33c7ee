"""The console in a real browser: Debian's Chromium driven by Playwright, the exchange served
by uvicorn on a loopback port in the test's own event loop, and a real OpenID provider
(oidc-provider, tests/console/oidc_provider.mjs) that the browser signs in through.

Where Chromium or the npm packages are missing these tests skip, saying why; under CI
(CI=true) that is a failure: `make test` installs both.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CONSOLE_TEST_CHROMIUM", "/usr/bin/chromium")
ARTEFACTS = ROOT / "var" / "test-artefacts" / "console"
CHROMIUM_ARGS = [
    # As root in a container, and on a closed network (python-svc.md: Chromium's own
    # background connections are refused there, many at a time, without these).
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (under CI the console's browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def console_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def oidc(console_port: int) -> Iterator[dict[str, Any]]:
    """The local OpenID provider, for the whole session (one per xdist worker)."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "oidc-provider").is_dir():
        _missing("node or the npm packages are missing: run `npm ci` (make test does)")
    redirect = f"http://127.0.0.1:{console_port}/console/callback"
    process = subprocess.Popen(
        [node, str(ROOT / "tests" / "console" / "oidc_provider.mjs"), "--redirect-uri", redirect],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        pytest.fail("the local OpenID provider did not start")
    yield json.loads(line)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
async def world(world: Any) -> Any:
    """The suite's organisations, AUDIT's and OPS's with an API client each (every scope their
    kind allows): a person acts with their organisation's clients' scopes, none without one."""
    for code in ("AUDIT", "OPS"):
        await world.credentials(code)
    return world


@pytest.fixture
def settings(settings: Settings, oidc: dict[str, Any], console_port: int) -> Settings:
    """The suite's settings, with the console on: the local provider as the issuer."""
    return settings.model_copy(
        update={
            "oidc_issuer": oidc["issuer"],
            "oidc_client_id": oidc["client_id"],
            "oidc_client_secret": oidc["client_secret"],
            "console_url": f"http://127.0.0.1:{console_port}/console",
            "console_session_secret": "a-test-secret-of-this-deployment-0123456789",
        }
    )


@pytest.fixture
async def served(app: FastAPI, console_port: int) -> AsyncIterator[str]:
    """The app (its lifespan already entered by the app fixture) on a real loopback port."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=console_port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{console_port}"
    server.should_exit = True
    await task


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    # bypass_csp: axe-core is injected as a script of the test, which the CSP would refuse.
    context = await browser.new_context(viewport={"width": 1200, "height": 900}, bypass_csp=True)
    context.set_default_timeout(20_000)  # generous: the suite shares two cores
    yield await context.new_page()
    await context.close()


async def sign_in(page: Any, base: str, login: str, *, start: str = "/console/") -> None:
    """Through the console's sign-in page and the provider's own login form."""
    await page.goto(base + start)
    await page.get_by_role("button", name="Sign in").click()
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", "any password: the test provider checks none")
    await page.get_by_role("button", name="Sign-in").click()
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url(lambda url: url.startswith(base + "/console"))
    # Signed in, the callback's page sends the browser on (its own navigation, same-origin);
    # refused, it is the page saying why.
    await page.locator("h1", has_not_text="You are signed in").wait_for()


async def screenshot(page: Any, name: str) -> None:
    """A test artefact (var/test-artefacts/console/, not committed)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


async def axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it stands."""
    await page.add_script_tag(path=str(ROOT / "node_modules" / "axe-core" / "axe.min.js"))
    result = await page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
