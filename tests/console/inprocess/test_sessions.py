"""A console session: ended on the server when the person signs out (a copy of the cookie is
refused from then on), shared by every worker process of a deployment (one session secret,
kept in the data directory), and holding no more scopes than the person's organisation's API
clients hold (issue 26: "the same scopes as their organisation's API clients")."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select

from app.access import organisations as admin
from app.console.cookies import CookieRefused
from app.main import create_app
from app.storage.models import Organisation
from tests.console.inprocess.conftest import signed_in

SECRET_PANEL = 'id="client-secret"'


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def test_a_session_cookie_replayed_after_sign_out_is_refused(app, browser, sessions):
    cookie = signed_in(app, "operator-olu", "OPS", "operator")
    before = await browser.get("/console/operators", headers=cookie)
    assert before.status_code == 200
    csrf = _csrf(before.text)

    out = await browser.post("/console/sign-out", data={"csrf_token": csrf}, headers=cookie)
    assert out.status_code == 200 and "You have signed out" in out.text
    assert 'console_session=""' in out.headers["set-cookie"]  # deleted in this browser only

    # The same cookie, replayed after sign-out (copied from a shared computer, a proxy ...).
    after = await browser.get("/console/operators", headers=cookie)
    registered = await browser.post(
        "/console/operators",
        data={"csrf_token": csrf, "kind": "operator", "code": "EVIL", "name": "After sign-out"},
        headers=cookie,
    )
    async with sessions() as session:
        evil = await session.scalar(select(Organisation).where(Organisation.code == "EVIL"))
    assert (after.status_code, registered.status_code, evil) == (401, 401, None)
    assert "Your session has ended" in after.text

    # Another session of the same person is not affected.
    other = await browser.get(
        "/console/operators", headers=signed_in(app, "operator-olu", "OPS", "operator")
    )
    assert other.status_code == 200


async def test_a_person_holds_no_more_than_their_organisations_clients(app, browser, sessions):
    async with sessions() as session, session.begin():
        await admin.add_organisation(
            session, kind="operator", code="MONITOR", name="Monitoring", now=datetime.now(UTC)
        )
        await session.flush()
        await admin.add_client(
            session, organisation_code="MONITOR", scopes="metrics:read", now=datetime.now(UTC)
        )
    cookie = signed_in(app, "mo-on-call", "MONITOR")
    page = await browser.get("/console/operators", headers=cookie)
    minted = None
    if page.status_code == 200:
        minted = await browser.post(
            "/console/operators/OPS/add-client",
            data={"csrf_token": _csrf(page.text)},
            headers=cookie,
        )
    assert page.status_code == 403, (
        "a person of an organisation whose clients hold only metrics:read is an operator "
        f"with admin: /console/operators {page.status_code}; a new OPS client secret minted: "
        f"{minted is not None and SECRET_PANEL in minted.text}"
    )


async def test_an_organisation_with_no_enabled_client_has_no_people_in_the_console(
    app, browser, sessions
):
    async with sessions() as session, session.begin():
        await admin.add_organisation(
            session, kind="auditor", code="NOCLIENT", name="No client", now=datetime.now(UTC)
        )
    page = await browser.get("/console/log", headers=signed_in(app, "nobody", "NOCLIENT"))
    assert page.status_code == 403


def test_two_workers_of_one_deployment_accept_each_others_cookies(settings):
    settings = settings.model_copy(update={"console_session_secret": None})
    worker_1, worker_2 = create_app(settings), create_app(settings)  # as serve --workers 2
    sealed = worker_1.state.console.cookies.seal_attempt(
        {"s": "state", "n": "n", "v": "v", "r": "/console/"}
    )
    try:
        worker_2.state.console.cookies.open_attempt(sealed)
    except CookieRefused as refused:
        raise AssertionError(
            f"worker 2 refuses worker 1's sign-in cookie ({refused.reason}): "
            "the callback fails whenever it reaches another worker"
        ) from None
    secret = settings.data_dir / "console" / "session-secret"
    assert secret.stat().st_mode & 0o077 == 0  # owner-only, as the other keys
