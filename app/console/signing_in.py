"""Signing in and out: the console's sign-in page, the authorization request, the provider's
callback (state, code with PKCE, ID token, organisation), and sign-out. A refusal is a page
saying why, and a line in the process log naming the reason (never a token or claim)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.access import organisations as admin
from app.audit import entries as audit
from app.console import sessions, signin
from app.console.cookies import ATTEMPT, ATTEMPT_SECONDS, SESSION, CookieRefused
from app.console.signin import SignInRefused
from app.console.web import (
    Form,
    SignedIn,
    Transaction,
    clear_cookie,
    console_of,
    log,
    render,
    set_cookie,
)
from app.keys import jose

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, return_to: str | None = None) -> HTMLResponse:
    start = "/console/sign-in/start?" + str(
        httpx.QueryParams({"return_to": signin.safe_return_to(return_to)})
    )
    return render(request, "sign_in.html", title="Sign in", start=start)


@router.get("/sign-in/start")
async def sign_in_start(request: Request, return_to: str | None = None) -> Response:
    """Off to the provider: state, nonce and the PKCE verifier kept in a signed cookie."""
    console = console_of(request)
    attempt = signin.Attempt.start(return_to)
    found = await console.provider.discovery(request.app.state.console_http)
    target = signin.authorization_url(
        found.authorization_endpoint,
        client_id=console.provider.client_id,
        redirect_uri=console.redirect_uri,
        attempt=attempt,
    )
    response = RedirectResponse(target, status_code=303)
    sealed = console.cookies.seal_attempt(attempt.as_dict())
    set_cookie(response, console, name=ATTEMPT, value=sealed, max_age=ATTEMPT_SECONDS)
    return response


@router.get("/callback")
async def callback(request: Request, session: Transaction) -> Response:
    """The provider's answer: state, the code exchanged with the verifier, the ID token
    checked, the person's organisation admitted, then the session. Logged as the person."""
    console = console_of(request)
    attempt = _attempt(request)
    code = _code(request, attempt)
    client = request.app.state.console_http
    token = await console.provider.exchange_code(
        client, code=code, redirect_uri=console.redirect_uri, verifier=attempt.verifier
    )
    keys = await console.provider.keys(client, jose.unverified_kid(token))
    claims = signin.check_id_token(
        keys,
        token,
        issuer=console.provider.issuer,
        client_id=console.provider.client_id,
        nonce=attempt.nonce,
    )
    person = signin.person_of(
        claims,
        organisation_claim=console.settings.oidc_organisation_claim,
        role_claim=console.settings.oidc_role_claim,
    )
    try:
        organisation = await admin.organisation_by_code(session, person.organisation_code)
    except admin.AdminError as error:
        raise SignInRefused(
            "unknown_organisation", "Your organisation is not registered with the exchange."
        ) from error
    signin.admitted(
        organisation.kind,
        disabled=organisation.disabled_at is not None,
        client_scopes=await admin.enabled_client_scopes(session, organisation.id),
    )
    audit.append(
        session,
        "console.signed_in",
        at=datetime.now(UTC),
        actor_organisation_id=organisation.id,
        actor_client_id=person.actor,
        details={"role": person.role} if person.role else None,
    )
    # A page of the console's own sends the browser on: the provider's redirect makes this
    # request a cross-site one, and the page asked for may log a query as the person.
    response = render(
        request, "signed_in.html", title="You are signed in", target=attempt.return_to
    )
    sealed = console.cookies.seal_session(
        {"sub": person.sub, "org": organisation.code, "role": person.role}
    )
    set_cookie(
        response, console, name=SESSION, value=sealed, max_age=console.cookies.session_seconds
    )
    clear_cookie(response, console, ATTEMPT)
    return response


def _attempt(request: Request) -> signin.Attempt:
    """The sign-in under way, from its signed cookie."""
    value = request.cookies.get(console_of(request).cookie(ATTEMPT))
    if not value:
        raise SignInRefused("no_attempt", "No sign-in was under way in this browser: start again.")
    try:
        return signin.Attempt.from_dict(console_of(request).cookies.open_attempt(value))
    except CookieRefused as refused:
        raise SignInRefused(
            f"attempt_{refused.reason}",
            "The sign-in took too long or was not started here: start again.",
        ) from refused


def _code(request: Request, attempt: signin.Attempt) -> str:
    """The authorization code, once the answer's state and issuer (RFC 9207) are this
    sign-in's and it is not an error."""
    params = request.query_params
    signin.check_state(attempt, params.get("state"))
    issuer = params.get("iss")
    if issuer is not None and issuer != console_of(request).provider.issuer:
        raise SignInRefused("unknown_issuer", "The answer came from an unknown identity provider.")
    if params.get("error"):
        raise SignInRefused("provider_error", "The identity provider did not sign you in.")
    code = params.get("code")
    if not code:
        raise SignInRefused("no_code", "The identity provider's answer holds no code.")
    return code


@router.post("/sign-out")
async def sign_out(
    request: Request, person: SignedIn, _: Form, *, session: Transaction
) -> Response:
    """The session ended on the server (its cookie, wherever copied, refused from now on) and
    in this browser; then a link to the provider's end-session endpoint, if it has one."""
    console = console_of(request)
    now = datetime.now(UTC)
    await sessions.end(session, person.session_id, now=now, seconds=console.cookies.session_seconds)
    audit.append(
        session,
        "console.signed_out",
        at=now,
        actor_organisation_id=person.caller.organisation_id,
        actor_client_id=person.caller.client_id,
    )
    response = render(
        request,
        "message.html",
        title="You have signed out",
        paragraphs=["Your console session has ended."],
        link=("/console/sign-in", "Sign in again"),
        also=await _provider_sign_out(request),
    )
    clear_cookie(response, console, SESSION)
    return response


async def _provider_sign_out(request: Request) -> tuple[str, str] | None:
    """The provider's end-session endpoint (OpenID Connect RP-Initiated Logout 1.0), as a
    link: the person is still signed in there until they follow it."""
    console = console_of(request)
    try:
        found = await console.provider.discovery(request.app.state.console_http)
    except SignInRefused:
        return None
    if not found.end_session_endpoint:
        return None
    endpoint = found.end_session_endpoint
    query = str(httpx.QueryParams({"client_id": console.provider.client_id}))
    target = f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
    return target, "Sign out of your identity provider too"


def sign_in_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRefused)
    log.warning("console sign-in refused: %s", exc.reason)
    response = render(
        request,
        "message.html",
        status=403 if exc.reason.endswith(("refused", "disabled", "organisation")) else 400,
        title="You could not be signed in",
        error_title=True,
        paragraphs=[exc.detail],
        link=("/console/sign-in", "Start again"),
    )
    clear_cookie(response, console_of(request), ATTEMPT)
    return response
