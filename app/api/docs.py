"""The interactive API documentation, /docs (Swagger UI) and /redoc (ReDoc), served whole by the
exchange: no CDN and no web fonts, so both work on a closed network.

The pages are FastAPI's own (get_swagger_ui_html, get_redoc_html); their scripts, style sheet and
icon are the copies that the fastapi-offline package ships (Swagger UI 5 and ReDoc 2, both of
which read OpenAPI 3.1), served under /docs-assets.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
# Images only from the exchange itself (or inline). ReDoc's footer shows Redocly's logo from
# their CDN and hides it when it fails to load: this stops the browser from even trying.
POLICY = "img-src 'self' data:"


def assets_dir() -> Path:
    """Where fastapi-offline keeps its copies of the files."""
    return Path(fastapi_offline.__file__).with_name("static")


def install(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets on app (which must have docs_url=redoc_url=None).

    The assets' directory is checked here: a missing one stops start-up, not a page view."""
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.get("/docs", include_in_schema=False, tags=["docs"])
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = base(request)
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            oauth2_redirect_url=None,  # tokens come from POST /oauth/token, pasted as bearer
            swagger_ui_parameters={"validatorUrl": None},  # the online validator: never
        )
        page.headers["content-security-policy"] = POLICY
        return page

    @app.get("/redoc", include_in_schema=False, tags=["docs"])
    async def redoc(request: Request) -> HTMLResponse:
        root = base(request)
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["content-security-policy"] = POLICY
        return page
