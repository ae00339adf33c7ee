"""The console as create_app serves it: its assets, the shell (app/console/web.py), signing in
(app/console/signing_in.py) and the pages. Built only when an OpenID issuer is configured."""

from __future__ import annotations

import secrets
from pathlib import Path, PurePosixPath

import jinja2
from fastapi import FastAPI, HTTPException, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from app.console import log_pages, operators, pages, signing_in, verify_pages
from app.console.cookies import Cookies
from app.console.provider import Provider
from app.console.signin import SignInRefused
from app.console.web import (
    ASSET_SUFFIXES,
    ASSETS,
    HERE,
    PACKAGES,
    Console,
    Refusal,
    refused_page,
    security_headers,
)
from app.keys.signing_keys import KeyFileError, _read_private, create_once
from app.settings import PROJECT_ROOT, Settings

SECRET_FILE = Path("console") / "session-secret"


class AssetFiles(StaticFiles):
    """A package's files the console's pages may use (ASSET_SUFFIXES), and nothing else of it:
    not its example HTML pages, templates, sources or docs."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if PurePosixPath(path).suffix.lower() not in ASSET_SUFFIXES:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def stored_secret(data_dir: Path) -> str:
    """The deployment's session secret kept in <data_dir>/console/session-secret (made once,
    owner-only, as the other keys): every worker process and every restart signs and opens
    the console's cookies with the same one."""
    path = data_dir / SECRET_FILE
    if not path.exists():  # another worker may make it at the same moment: theirs stays
        create_once(path, secrets.token_urlsafe(48).encode())
    secret = _read_private(path).decode().strip()  # refuses a file group or others may use
    if len(secret) < 32:
        raise KeyFileError(f"{path}: a console session secret of 32 characters at least")
    return secret


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the console under /console: its assets, sign-in and the pages given."""
    assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret
    packages = settings.console_assets_dir or PROJECT_ROOT / "node_modules"
    if not (packages / PACKAGES["govuk"]).is_dir():
        raise RuntimeError(f"the console's assets are not installed in {packages}: run `npm ci`")
    secret = settings.console_session_secret or stored_secret(settings.data_dir)
    secure = settings.console_base.startswith("https://")
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    templates.globals["error_title"] = False
    templates.globals["section"] = ""
    templates.globals["also"] = None
    app.state.console = Console(
        settings,
        Cookies(secret, settings.console_session_minutes * 60),
        Provider(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret),
        templates,
        secure,
    )
    css = (packages / PACKAGES["govuk"] / "govuk-frontend.min.css").read_text()
    css = css.replace("url(/assets/", f"url({ASSETS}/govuk/assets/")

    async def govuk_css() -> Response:
        return Response(css, media_type="text/css")

    app.add_api_route(
        f"{ASSETS}/govuk-frontend.css", govuk_css, include_in_schema=False, tags=["console"]
    )
    for name, path in PACKAGES.items():
        app.mount(f"{ASSETS}/{name}", AssetFiles(directory=packages / path), name=f"console-{name}")
    app.mount(f"{ASSETS}/console", AssetFiles(directory=HERE / "static"), name="console-own")
    for module in (signing_in, pages, log_pages, verify_pages, operators):
        app.include_router(module.router)
    app.add_exception_handler(Refusal, refused_page)
    app.add_exception_handler(SignInRefused, signing_in.sign_in_refused)
    app.middleware("http")(security_headers)
