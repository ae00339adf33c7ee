"""The auditors' pages: the log (the filters of GET /v1/audit/entries, a NOMS number hashed
before it is used, paging, each entry's details) and a notice's disclosures (per recipient,
fields sent and withheld, each withheld field with its rule, reason and the rule's citations:
never a value). Each query is itself logged (`audit.consulted`), as the person, and only when
the browser was not sent here by another site. A prison number is typed into a POSTed form and
only its keyed hash is ever in a URL."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Scope
from app.audit import entries as audit
from app.audit import filters
from app.console.web import Form, Person, Refusal, SignedIn, Transaction, log, needs, render
from app.disclosure import explanations as disclosures
from app.storage.log_tables import AuditEntry, AuditLeaf
from app.storage.models import Organisation
from app.wire.errors import Problem

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
PAGE = 25
NOMS = re.compile(r"^[A-Z][0-9]{4}[A-Z]{2}$")
ACTION = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


FIELDS = ("notice_id", "action", "organisation", "since", "until")
CURSOR = re.compile(r"[0-9]{1,18}")  # an entry's id: a BIGINT, never more
PERSON_REF = re.compile(r"[0-9a-f]{64}")  # the keyed hash of a prison number
LARGEST_ID = 2**63 - 1
CROSS_SITE = ("cross-site", "same-site")


async def consulted(
    request: Request, session: AsyncSession, person: Person, *, what: str, **about: Any
) -> None:
    """The person's query, as a log entry in the page's transaction (as the API logs a
    client's): ids, codes and the person's keyed hash only. Refused when another site sent
    the browser here (Sec-Fetch-Site), so that no other site can log a query in their name."""
    if request.headers.get("sec-fetch-site", "").lower() in CROSS_SITE:
        log.warning("console query refused: sent from another site, path %s", request.url.path)
        raise Refusal(
            403,
            "Opened from another site",
            "This page was opened from another site, so nothing was looked up or logged in "
            "your name. Open it from the console's own pages.",
        )
    details = {k: v for k, v in about.pop("filters", {}).items() if v not in (None, "")}
    await audit.append_many(
        session,
        [
            audit.Entry(
                "audit.consulted",
                at=datetime.now(UTC),
                actor_organisation_id=person.caller.organisation_id,
                actor_client_id=person.caller.client_id,
                details={"query": what, "via": "console", **details},
                **about,
            )
        ],
    )


async def _codes(session: AsyncSession) -> dict[uuid.UUID, str]:
    rows = (await session.execute(select(Organisation.id, Organisation.code))).all()
    return {id_: code for id_, code in rows}


def _day(value: str, name: str, errors: dict[str, str]) -> date | None:
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        day = None
    if value and (day is None or day == date.max):
        errors[name] = "Enter a date as YYYY-MM-DD, for example 2026-12-01"
        return None
    return day


def _filters(given: dict[str, str], codes: dict[uuid.UUID, str]) -> tuple[dict[str, Any], dict]:
    """The filters as given (for the form) and as the query takes them, with any errors. The
    person is their keyed hash (`person`), never their number."""
    given.setdefault("noms_number", "")
    errors: dict[str, str] = {}
    notice_id = None
    if given["person"] and not PERSON_REF.fullmatch(given["person"]):
        errors["noms_number"] = "Enter a prison number like A1234BC"
    if given["notice_id"]:
        try:
            notice_id = uuid.UUID(given["notice_id"])
        except ValueError:
            errors["notice_id"] = "Enter a notice ID as shown in the log"
    if given["action"] and not ACTION.fullmatch(given["action"]):
        errors["action"] = "Enter an action like notice.received"
    by_code = {code: id_ for id_, code in codes.items()}
    organisation_id = by_code.get(given["organisation"]) if given["organisation"] else None
    if given["organisation"] and organisation_id is None:
        errors["organisation"] = "Enter the code of a registered organisation, like MDI"
    since = _day(given["since"], "since", errors)
    until = _day(given["until"], "until", errors)
    after = 0
    if given["after"]:
        if CURSOR.fullmatch(given["after"]) and int(given["after"]) <= LARGEST_ID:
            after = int(given["after"])
        else:
            errors["after"] = "The page asked for does not exist: start from the first page"
    query = {
        "person_ref": given["person"] or None,
        "notice_id": notice_id,
        "action": given["action"] or None,
        "organisation_id": organisation_id,
        "since": datetime.combine(since, time(), UTC) if since else None,
        # the day given is included: entries before the start of the next one
        "until": datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
        "after": after,
    }
    return {"given": given, "errors": errors}, query


def _given(values: Mapping[str, str], *names: str) -> dict[str, str]:
    return {k: str(values.get(k, "")).strip() for k in names}


@router.post("/log")
async def log_search(
    request: Request, person: SignedIn, form: Form, *, session: Transaction
) -> Response:
    """The filter form, POSTed with its CSRF token: a typed prison number becomes its keyed
    hash here, and the browser is sent on to the GET that carries only that hash (so the
    number is never in a URL, a browser's history or an access log)."""
    needs(person, Scope.AUDIT_READ)
    given = _given(form, "noms_number", "person", *FIELDS)
    given["noms_number"] = given["noms_number"].upper()
    errors: dict[str, str] = {}
    if given["noms_number"]:
        if NOMS.fullmatch(given["noms_number"]):
            given["person"] = request.app.state.data_keys.person_ref(given["noms_number"])
        else:
            errors["noms_number"] = "Enter a prison number like A1234BC"
    checked, _ = _filters({**given, "after": ""}, await _codes(session))
    checked["errors"] = {**errors, **checked["errors"]}
    if checked["errors"]:
        return _render_log(request, person, checked, status=400)
    kept = {k: v for k, v in given.items() if v and k != "noms_number"}
    return RedirectResponse("/console/log?" + urlencode(kept), status_code=303)


@router.get("/log", response_class=HTMLResponse)
async def log_page(request: Request, person: SignedIn, session: Transaction) -> HTMLResponse:
    needs(person, Scope.AUDIT_READ)
    codes = await _codes(session)
    form, query = _filters(_given(request.query_params, "person", "after", *FIELDS), codes)
    rows: list[AuditEntry] = []
    next_after = None
    if form["errors"]:
        return _render_log(request, person, form, status=400, codes=codes)
    given = form["given"]
    after = query.pop("after")
    statement = filters.entries_where(select(AuditEntry).where(AuditEntry.id > after), **query)
    rows = list((await session.scalars(statement.order_by(AuditEntry.id).limit(PAGE))).all())
    next_after = rows[-1].id if len(rows) == PAGE else None
    await consulted(
        request,
        session,
        person,
        what="entries",
        person_ref=query["person_ref"],
        notice_id=query["notice_id"],
        filters={
            "action": query["action"],
            "organisation_id": str(query["organisation_id"] or "") or None,
            "since": given["since"],
            "until": given["until"],
            "cursor": str(after) if after else None,
            "returned": len(rows),
        },
    )
    return _render_log(request, person, form, rows=rows, codes=codes, next_after=next_after)


def _render_log(
    request: Request,
    person: Person,
    form: dict[str, Any],
    *,
    status: int = 200,
    rows: list[AuditEntry] | None = None,
    codes: dict[uuid.UUID, str] | None = None,
    next_after: int | None = None,
) -> HTMLResponse:
    given = form["given"]
    return render(
        request,
        "log.html",
        status=status,
        person=person,
        title="The log",
        section="log",
        form=form,
        rows=rows or [],
        codes=codes or {},
        kept={k: v for k, v in given.items() if v and k not in ("after", "noms_number")},
        next_after=next_after,
        first_page=not given.get("after"),
    )


@router.get("/log/{entry_id}", response_class=HTMLResponse)
async def entry_page(
    request: Request, entry_id: int, person: SignedIn, *, session: Transaction
) -> HTMLResponse:
    needs(person, Scope.AUDIT_READ)
    entry = await session.get(AuditEntry, entry_id) if 0 < entry_id <= LARGEST_ID else None
    if entry is None:
        raise Refusal(404, "Page not found", "There is no log entry with this number.")
    leaf = await session.scalar(select(AuditLeaf.leaf_index).where(AuditLeaf.entry_id == entry_id))
    await consulted(
        request,
        session,
        person,
        what="entry",
        notice_id=entry.notice_id,
        filters={"entry_id": entry_id},
    )
    return render(
        request,
        "entry.html",
        person=person,
        title=f"Log entry {entry.id}",
        section="log",
        entry=entry,
        leaf=leaf,
        codes=await _codes(session),
        details=json.dumps(entry.details or {}, indent=2, sort_keys=True, ensure_ascii=False),
    )


@router.get("/notices/{notice_id}/disclosures", response_class=HTMLResponse)
async def disclosures_page(
    request: Request, notice_id: uuid.UUID, person: SignedIn, *, session: Transaction
) -> HTMLResponse:
    needs(person, Scope.AUDIT_READ)
    try:
        notice, decided = await disclosures.of_notice(session, notice_id, None)
    except Problem as missing:
        raise Refusal(
            404, "Page not found", "There is no release notice with this ID."
        ) from missing
    await consulted(request, session, person, what="notice_disclosures", notice_id=notice_id)
    return render(
        request,
        "disclosures.html",
        person=person,
        title="A notice's disclosures",
        section="log",
        notice=notice,
        recipients=[disclosures.account(d) for d in decided],
    )
