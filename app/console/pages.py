"""The console's pages for auditors and operators alike."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.console.web import SignedIn, render

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, person: SignedIn) -> HTMLResponse:
    return render(request, "overview.html", person=person, title="Overview", section="overview")
