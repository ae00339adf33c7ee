"""/docs and /redoc work on a closed network: every asset they load is served by the exchange.

The pages are scanned for any http(s) URL (in src= and href= attributes, url(...) and string
literals alike) outside the exchange's own origin; every asset they reference must answer 200
with the content type a browser needs to use it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

ISSUER = "http://exchange.test"
PAGES = ["/docs", "/redoc"]
ANY_URL = re.compile(r"""https?://[^\s"'<>()]+""")
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)""")
# The OpenAPI document the pages read: Swagger UI's `url: '...'`, ReDoc's spec-url="...".
SPEC_URL = re.compile(r"""(?:\burl:\s*|spec-url=)['"]([^'"]+)['"]""")
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


class References(HTMLParser):
    """The src= and href= of every element: what a browser loads (or links to)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


def referenced(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.found + SPEC_URL.findall(html) + CSS_URL.findall(html)


def foreign(text: str) -> list[str]:
    """Every absolute http(s) URL in text whose origin is not the exchange's."""
    return [url for url in ANY_URL.findall(text) if not url.startswith(ISSUER + "/")]


@pytest.mark.parametrize("page", PAGES)
async def test_the_page_loads_nothing_from_outside_the_exchange(api, page: str) -> None:
    response = await api.get(page)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert foreign(response.text) == []
    assert "fonts.googleapis.com" not in response.text
    # And images from elsewhere (ReDoc's footer logo) are never even tried.
    assert response.headers["content-security-policy"] == "img-src 'self' data:"


@pytest.mark.parametrize("page", PAGES)
async def test_every_asset_the_page_references_is_served(api, page: str) -> None:
    html = (await api.get(page)).text
    assets = referenced(html)
    assert len(assets) >= 3  # a script, the icon and the OpenAPI document at least
    for asset in assets:
        url = urljoin(ISSUER + page, asset)
        assert urlsplit(url).netloc == urlsplit(ISSUER).netloc, url
        response = await api.get(url)
        assert response.status_code == 200, url
        suffix = re.search(r"\.[a-z]+$", urlsplit(url).path)
        assert suffix, url
        assert response.headers["content-type"].startswith(TYPES[suffix.group()]), url
        if suffix.group() == ".css":  # a style sheet's own url(...) would load from elsewhere
            assert [u for u in CSS_URL.findall(response.text) if ANY_URL.match(u)] == []


async def test_swagger_ui_reads_the_openapi_version_the_exchange_publishes(api) -> None:
    """Swagger UI before 5 shows "Unable to render this definition" for OpenAPI 3.1."""
    assert (await api.get("/openapi.json")).json()["openapi"].startswith("3.1.")
    bundle = await api.get("/docs-assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert "isOAS31" in bundle.text  # the selector Swagger UI 5 reads 3.1 documents with


async def test_a_missing_asset_is_a_404_not_an_error(api) -> None:
    assert (await api.get("/docs-assets/no-such-file.js")).status_code == 404
