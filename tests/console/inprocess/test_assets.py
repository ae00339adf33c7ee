"""The console's assets: of the npm packages, only what pages use (stylesheets, scripts, fonts,
images) is served, never their example pages (govuk-frontend has hundreds, a password input and
a "Sign in" button among them: pages of the exchange's own origin), templates, sources or docs;
and every asset is sent with `Content-Security-Policy: default-src 'none'` and nosniff."""

from __future__ import annotations

import httpx
import pytest

from app.settings import PROJECT_ROOT

MODULES = PROJECT_ROOT / "node_modules"  # installed by `npm ci`


@pytest.fixture
def settings(settings):
    if not (MODULES / "govuk-frontend").is_dir():
        pytest.skip("no node_modules with govuk-frontend: run `npm ci`")
    return settings.model_copy(update={"console_assets_dir": MODULES})


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.mark.parametrize(
    "path",
    [
        "govuk/components/password-input/template-default.html",
        "govuk/components/button/template.njk",
        "govuk/components/button/fixtures.json",
        "govuk/components/button/_index.scss",
        "govuk/components/button/README.md",
        "govuk/govuk-frontend.min.js.map",
    ],
)
async def test_only_the_files_pages_use_are_served(client, path):
    response = await client.get(f"/console/assets/{path}")
    assert response.status_code == 404, f"{path}: {response.headers.get('content-type')}"


@pytest.mark.parametrize(
    "path",
    [
        "govuk-frontend.css",
        "govuk/govuk-frontend.min.js",
        "govuk/assets/images/favicon.ico",
        "moj/moj-frontend.min.css",
        "plot/plot.umd.min.js",
        "d3/d3.min.js",
        "console/verify.mjs",
    ],
)
async def test_the_assets_pages_use_are_served_with_no_power_of_a_page(client, path):
    response = await client.get(f"/console/assets/{path}")
    assert response.status_code == 200, path
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["x-content-type-options"] == "nosniff"
