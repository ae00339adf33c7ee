"""The auditors' pages: the log (the filters of GET /v1/audit/entries, a NOMS number hashed
before it is used, paging, each entry's details) and a notice's disclosures (per recipient,
fields sent and withheld, each withheld field with its rule, reason and the rule's citations:
never a value). Each query is itself logged (`audit.consulted`), as the person."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Scope
from app.audit import entries as audit
from app.audit import filters
from app.console.web import Person, Refusal, SignedIn, Transaction, needs, render
from app.disclosure import explanations as disclosures
from app.storage.log_tables import AuditEntry, AuditLeaf
from app.storage.models import Organisation
from app.wire.errors import Problem

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
PAGE = 25
NOMS = re.compile(r"^[A-Z][0-9]{4}[A-Z]{2}$")
ACTION = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


async def consulted(session: AsyncSession, person: Person, what: str, **about: Any) -> None:
    """The person's query, as a log entry in the page's transaction (as the API logs a
    client's): ids, codes and the person's keyed hash only."""
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
        return date.fromisoformat(value) if value else None
    except ValueError:
        errors[name] = "Enter a date as YYYY-MM-DD, for example 2026-12-01"
        return None


def _filters(request: Request, codes: dict[uuid.UUID, str]) -> tuple[dict[str, Any], dict]:
    """The filters as typed (for the form) and as the query takes them, with any errors."""
    given = {
        k: request.query_params.get(k, "").strip()
        for k in ("noms_number", "notice_id", "action", "organisation", "since", "until", "after")
    }
    given["noms_number"] = given["noms_number"].upper()
    errors: dict[str, str] = {}
    notice_id = None
    if given["noms_number"] and not NOMS.fullmatch(given["noms_number"]):
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
    after = int(given["after"]) if given["after"].isdigit() else 0
    query = {
        "notice_id": notice_id,
        "action": given["action"] or None,
        "organisation_id": organisation_id,
        "since": datetime.combine(since, time(), UTC) if since else None,
        # the day given is included: entries before the start of the next one
        "until": datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
        "after": after,
    }
    return {"given": given, "errors": errors}, query


@router.get("/log", response_class=HTMLResponse)
async def log_page(request: Request, person: SignedIn, session: Transaction) -> HTMLResponse:
    needs(person, Scope.AUDIT_READ)
    codes = await _codes(session)
    form, query = _filters(request, codes)
    rows: list[AuditEntry] = []
    next_after = None
    if not form["errors"]:
        given = form["given"]
        data_keys = request.app.state.data_keys
        person_ref = data_keys.person_ref(given["noms_number"]) if given["noms_number"] else None
        after = query.pop("after")
        statement = filters.entries_where(
            select(AuditEntry).where(AuditEntry.id > after), person_ref=person_ref, **query
        )
        rows = list((await session.scalars(statement.order_by(AuditEntry.id).limit(PAGE))).all())
        next_after = rows[-1].id if len(rows) == PAGE else None
        await consulted(
            session,
            person,
            "entries",
            person_ref=person_ref,
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
    kept = {k: v for k, v in form["given"].items() if v and k != "after"}
    return render(
        request,
        "log.html",
        person=person,
        title="The log",
        section="log",
        form=form,
        rows=rows,
        codes=codes,
        kept=kept,
        next_after=next_after,
        first_page=not form["given"]["after"],
    )


@router.get("/log/{entry_id}", response_class=HTMLResponse)
async def entry_page(
    request: Request, entry_id: int, person: SignedIn, *, session: Transaction
) -> HTMLResponse:
    needs(person, Scope.AUDIT_READ)
    entry = await session.get(AuditEntry, entry_id)
    if entry is None:
        raise Refusal(404, "Page not found", "There is no log entry with this number.")
    leaf = await session.scalar(select(AuditLeaf.leaf_index).where(AuditLeaf.entry_id == entry_id))
    await consulted(
        session, person, "entry", notice_id=entry.notice_id, filters={"entry_id": entry_id}
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
    await consulted(session, person, "notice_disclosures", notice_id=notice_id)
    return render(
        request,
        "disclosures.html",
        person=person,
        title="A notice's disclosures",
        section="log",
        notice=notice,
        recipients=[disclosures.account(d) for d in decided],
    )
