"""The console's overview, for auditors and operators alike: the exchange at a glance, as plots
(Observable Plot, drawn in the browser) each with a table of its numbers (served, for screen
readers and without JavaScript)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.access.identity import Scope
from app.console import figures
from app.console.web import SignedIn, Transaction, needs, render

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, person: SignedIn, session: Transaction) -> HTMLResponse:
    needs(person, Scope.REPORTS_READ)
    found = await figures.overview(
        session, windows=request.app.state.settings.windows, now=datetime.now(UTC)
    )
    return render(
        request,
        "overview.html",
        person=person,
        title="Overview",
        section="overview",
        figures=found,
        # For the page's script; "<" escaped so that no value can close the script element.
        figures_json=json.dumps(found).replace("<", "\\u003c"),
    )
