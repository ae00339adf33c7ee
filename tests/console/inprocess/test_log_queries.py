"""The log page's queries. A GET that looks something up writes an `audit.consulted` entry in
the person's name, so it is refused when another site sent the browser there (SameSite=Lax
cookies ride on a top-level cross-site navigation): no other site can make the log say that
this auditor looked someone up. A typed prison number is POSTed with the CSRF token and only
its keyed hash is ever in a URL (history, proxies' logs, the paging links, a return address).
Filters a person can type or a link can carry answer the form's errors, never a 500."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.storage.log_tables import AuditEntry
from tests.console.inprocess.conftest import signed_in

CROSS_SITE = {
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "navigate",
    "Referer": "https://evil.example/",
}


async def _consulted(sessions, **where) -> list[AuditEntry]:
    async with sessions() as session:
        statement = select(AuditEntry).where(AuditEntry.action == "audit.consulted")
        for name, value in where.items():
            statement = statement.where(getattr(AuditEntry, name) == value)
        return list((await session.scalars(statement)).all())


async def test_a_cross_site_navigation_looks_nothing_up_as_the_auditor(app, browser, sessions):
    cookie = signed_in(app, "auditor-alice", "AUDIT", "auditor")
    ref = app.state.data_keys.person_ref("A1234BC")
    for path, params in [
        ("/console/log", {"noms_number": "A1234BC"}),  # chosen by the attacker's page
        ("/console/log", {"person": ref}),
        ("/console/log/1", {}),
    ]:
        response = await browser.get(path, params=params, headers={**cookie, **CROSS_SITE})
        assert response.status_code == 403, path
    assert await _consulted(sessions) == []
    # From the console's own pages, the same look-up is logged.
    same = await browser.get(
        "/console/log", params={"person": ref}, headers={**cookie, "Sec-Fetch-Site": "same-origin"}
    )
    assert same.status_code == 200
    assert len(await _consulted(sessions, person_ref=ref)) == 1


async def test_a_typed_prison_number_is_never_put_in_a_url(app, browser, sessions):
    cookie = signed_in(app, "auditor-alice", "AUDIT", "auditor")
    page = await browser.get("/console/log", headers=cookie)
    form = re.search(r'<form method="(\w+)" action="/console/log"', page.text).group(1)
    assert form == "post"
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    sent = await browser.post(
        "/console/log", data={"csrf_token": csrf, "noms_number": "a1234bc"}, headers=cookie
    )
    ref = app.state.data_keys.person_ref("A1234BC")
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/console/log?person={ref}"
    assert await _consulted(sessions, person_ref=ref) == []  # logged by the GET, once
    shown = await browser.get(sent.headers["location"], headers=cookie)
    assert shown.status_code == 200 and "A1234BC" not in shown.text
    assert len(await _consulted(sessions, person_ref=ref)) == 1

    forged = await browser.post("/console/log", data={"noms_number": "A1234BC"}, headers=cookie)
    assert forged.status_code == 403  # no CSRF token

    # The session has ended: the address carried on to sign in holds no number.
    expired = await browser.get("/console/log", params={"noms_number": "A1234BC", "action": "x"})
    assert expired.status_code == 303
    assert "A1234BC" not in expired.headers["location"]
    assert "action" in expired.headers["location"]


async def test_a_badly_typed_prison_number_is_the_forms_error(app, browser):
    cookie = signed_in(app, "auditor-alice", "AUDIT", "auditor")
    page = await browser.get("/console/log", headers=cookie)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    sent = await browser.post(
        "/console/log", data={"csrf_token": csrf, "noms_number": "nonsense"}, headers=cookie
    )
    assert sent.status_code == 400 and "Enter a prison number like A1234BC" in sent.text


@pytest.mark.parametrize(
    "query",
    [
        {"after": "\u00b2"},
        {"after": "9" * 30},
        {"after": str(2**63)},
        {"until": "9999-12-31"},
        {"since": "9999-12-31"},
        {"person": "A1234BC"},
    ],
    ids=["superscript-digit", "huge-cursor", "past-bigint", "last-day", "last-day-since", "raw"],
)
async def test_bad_filters_get_the_form_not_a_server_error(app, browser, sessions, query):
    cookie = signed_in(app, "auditor-alice", "AUDIT", "auditor")
    response = await browser.get("/console/log", params=query, headers=cookie)
    assert response.status_code == 400, f"{query}: {response.status_code}"
    assert "There is a problem" in response.text
    assert await _consulted(sessions) == []


@pytest.mark.parametrize("entry_id", ["0", str(2**63), "9" * 30])
async def test_an_entry_that_cannot_exist_is_not_found(app, browser, entry_id):
    cookie = signed_in(app, "auditor-alice", "AUDIT", "auditor")
    response = await browser.get(f"/console/log/{entry_id}", headers=cookie)
    assert response.status_code == 404
