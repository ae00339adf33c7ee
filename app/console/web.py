"""The console's shell: assets, templates, the signed session, sign-in and sign-out, and what
every page needs (who is signed in, their transaction, the CSRF check, a refusal's page)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.access import organisations as admin
from app.access.identity import Caller
from app.console import sessions, signin
from app.console.cookies import SESSION, CookieRefused, Cookies
from app.console.provider import Provider
from app.console.signin import SignInRefused
from app.settings import Settings

log = logging.getLogger("exchange.console")
HERE = Path(__file__).resolve().parent
ASSETS = "/console/assets"
# Where each asset package is served from (installed by `npm ci` from package-lock.json).
PACKAGES = {
    "govuk": "govuk-frontend/dist/govuk",
    "moj": "@ministryofjustice/frontend/moj",
    "plot": "@observablehq/plot/dist",
    "d3": "d3/dist",
}
NAV = {
    "auditor": [
        ("/console/", "Overview", "overview"),
        ("/console/log", "The log", "log"),
        ("/console/verify", "Verify in your browser", "verify"),
    ],
    "operator": [
        ("/console/", "Overview", "overview"),
        ("/console/operators", "Organisations", "operators"),
        ("/console/operators-health", "Subscriptions and keys", "health"),
    ],
}
# The files of the asset packages served: what pages use (stylesheets, scripts, fonts, images),
# never the packages' example pages, templates, sources or docs.
ASSET_SUFFIXES = frozenset({".css", ".js", ".mjs", ".woff", ".woff2", ".png", ".svg", ".ico"})
ASSET_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
# 'unsafe-inline' styles: Observable Plot writes style attributes and a <style> element into
# each figure it draws (its scripts stay 'self' only).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)


class Refusal(Exception):
    """A page that says no: its status, title and what the person is told."""

    def __init__(self, status: int, title: str, detail: str, *, sign_out: bool = False) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.sign_out = status, title, detail, sign_out


@dataclass(frozen=True)
class Console:
    """What the console's routes need, built by install() from the settings."""

    settings: Settings
    cookies: Cookies
    provider: Provider
    templates: jinja2.Environment
    secure: bool

    @property
    def redirect_uri(self) -> str:
        return self.settings.console_base + "/callback"

    def cookie(self, name: str) -> str:
        """A cookie's name: over https with the __Host- prefix (Secure, Path=/, no Domain: no
        other host, subdomain or plain-http page can set or shadow it)."""
        return "__Host-" + name if self.secure else name

    @property
    def cookie_path(self) -> str:
        return "/" if self.secure else "/console"


@dataclass(frozen=True)
class Person:
    """Who is signed in, as each request finds them: their caller (their organisation's
    clients' scopes, their subject as the actor), role, the session's CSRF token and ID."""

    caller: Caller
    sub: str
    role: str | None
    csrf: str
    session_id: str

    @property
    def kind(self) -> str:
        return self.caller.kind

    @property
    def organisation_code(self) -> str:
        return self.caller.organisation_code


def console_of(request: Request) -> Console:
    return request.app.state.console


async def _transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per page, committed when the handler returns (as the API's)."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with maker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


Transaction = Annotated[AsyncSession, Depends(_transaction, scope="function")]


async def current_person(request: Request, session: Transaction) -> Person:
    """The person the session cookie names, their organisation read now (disabled since, or
    no longer of a console kind, or its clients hold no scope: refused; the session signed
    out: refused). No cookie: off to sign in, and back here."""
    console = console_of(request)
    value = request.cookies.get(console.cookie(SESSION))
    if not value:
        # Back here after signing in; a prison number is never carried on in an address.
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "noms_number"]
        target = request.url.path + (f"?{urlencode(kept)}" if kept else "")
        raise Refusal(303, "Sign in", signin.safe_return_to(target))
    try:
        data = console.cookies.open_session(value)
    except CookieRefused as refused:
        log.warning("console session cookie refused: %s", refused.reason)
        detail = (
            "Your session has ended: sign in again."
            if refused.reason == "expired"
            else "Your session cookie was not made by this service: sign in again."
        )
        raise Refusal(401, "Sign in again", detail, sign_out=True) from refused
    if await sessions.has_ended(session, data["sid"]):
        log.warning("console session cookie refused: its session was signed out")
        raise Refusal(401, "Sign in again", "Your session has ended: sign in again.", sign_out=True)
    try:
        organisation = await admin.organisation_by_code(session, str(data["org"]))
        scopes = signin.admitted(
            organisation.kind,
            disabled=organisation.disabled_at is not None,
            client_scopes=await admin.enabled_client_scopes(session, organisation.id),
        )
    except (admin.AdminError, SignInRefused, KeyError) as error:
        log.warning("console session refused: its organisation no longer admits it")
        raise Refusal(
            403, "Access refused", "Your organisation no longer has access.", sign_out=True
        ) from error
    person = signin.Person(str(data["sub"]), organisation.code, data.get("role"))
    caller = Caller(person.actor, organisation.id, organisation.code, organisation.kind, scopes)
    return Person(caller, person.sub, person.role, data["csrf"], data["sid"])


SignedIn = Annotated[Person, Depends(current_person)]


def needs(person: Person, scope: str) -> None:
    if scope not in person.caller.scopes:
        raise Refusal(
            403,
            "Not for your organisation",
            f"This page needs the {scope!r} scope, which your organisation does not hold.",
        )


async def checked_form(request: Request, person: SignedIn) -> dict[str, str]:
    """A POSTed form, once its CSRF token matches the session's; else 403 (and logged)."""
    form = await request.form()
    given = form.get("csrf_token")
    if not isinstance(given, str) or not secrets.compare_digest(given, person.csrf):
        log.warning("console form refused: no or wrong CSRF token, path %s", request.url.path)
        raise Refusal(
            403,
            "Form refused",
            "The form was not sent from this console "
            "(its security token is missing or wrong). Go back and try again.",
        )
    return {k: v for k, v in form.items() if isinstance(v, str)}


Form = Annotated[dict[str, str], Depends(checked_form)]


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    person: Person | None = None,
    **context: Any,
) -> HTMLResponse:
    console = console_of(request)
    page = console.templates.get_template(template).render(
        assets=ASSETS,
        person=person,
        csrf=person.csrf if person else "",
        nav=NAV.get(person.kind, []) if person else [],
        **context,
    )
    return HTMLResponse(page, status_code=status)


def set_cookie(
    response: Response, console: Console, *, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        console.cookie(name),
        value,
        max_age=max_age,
        path=console.cookie_path,
        httponly=True,
        samesite="lax",
        secure=console.secure,
    )


def clear_cookie(response: Response, console: Console, name: str) -> None:
    response.delete_cookie(
        console.cookie(name),
        path=console.cookie_path,
        httponly=True,
        samesite="lax",
        secure=console.secure,
    )


def refused_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refusal)
    if exc.status == 303:
        target = "/console/sign-in?" + str(httpx.QueryParams({"return_to": exc.detail}))
        return RedirectResponse(target, status_code=303)
    response = render(
        request,
        "message.html",
        status=exc.status,
        title=exc.title,
        error_title=True,
        paragraphs=[exc.detail],
        link=("/console/sign-in", "Sign in") if exc.sign_out else None,
    )
    if exc.sign_out:
        clear_cookie(response, console_of(request), SESSION)
    return response


async def security_headers(request: Request, call_next: Any) -> Response:
    response: Response = await call_next(request)
    if request.url.path.startswith(ASSETS):
        # A stylesheet, script, font or image: never a page of the console's origin.
        response.headers["Content-Security-Policy"] = ASSET_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
    elif request.url.path.startswith("/console"):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response
